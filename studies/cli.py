"""The ``effnas`` command: it parses, calls, and prints. User errors become one line on stderr and exit 2."""
from __future__ import annotations

import argparse
import errno
import json
import sys

from effnas.search.utils import signals
from effnas.space.errors import SearchError, Terminated, UserError


class HelpText(argparse.HelpFormatter):
    """--help wrapped at spaces only: a name with a hyphen (fashion-mnist, --train-samples) stays whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class ArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpText)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # one line, no usage block
        raise UserError(message)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_config_flags(p: argparse.ArgumentParser, command: str, *, defaults: dict[str, str] | None = None) -> None:
    """--config plus one flag per setting of ``command``; ``defaults`` rewords a default for its help."""
    from effnas.studies.config import DIMS_DEFAULTS, command_fields

    p.add_argument("--config", metavar="FILE.toml", help="study file; flags override its keys")
    p.set_defaults(command_name=command)
    defaults = {"dims": "the base's or the dataset's, else 2", **(defaults or {})}
    for f in command_fields(command):
        value = f.default_for(command)
        shown = value if not isinstance(value, tuple) else \
            ",".join(v if isinstance(v, str) else f"{v:g}" for v in value)
        if f.name in DIMS_DEFAULTS[3]:
            shown = f"{shown}; in 3-D {'a 3-stage B0' if f.name == 'base' else DIMS_DEFAULTS[3][f.name]}"
        default = defaults.get(f.name, "none" if value is None else shown)
        if f.kind is bool:
            p.add_argument(f.flag, dest=f.name, default=argparse.SUPPRESS, action=argparse.BooleanOptionalAction,
                           help=f"{f.help} (default: {'on' if value else 'off'})")
            continue
        text = f"{f.help}; one of {', '.join(f.choices)}" if f.kind is str and f.choices else f.help
        p.add_argument(f.flag, dest=f.name, default=argparse.SUPPRESS,
                       metavar=f.name.upper().rstrip("S") if f.kind is tuple else f.name.upper(),
                       nargs="+" if f.kind is tuple else None,
                       help=text if "default:" in text else f"{text} (default: {default})")


def config_from_args(args: argparse.Namespace):
    """The study config of a command: defaults, then --config, then the flags given."""
    from effnas.studies.config import command_fields, load_config

    overrides = {f.name: f.parse(getattr(args, f.name)) for f in command_fields(args.command_name)
                 if hasattr(args, f.name)}
    return load_config(file=args.config, overrides=overrides, command=args.command_name)


def spatial_dims(text: str) -> int:
    if text not in ("2", "3"):
        raise argparse.ArgumentTypeError(f"expected 2 (images) or 3 (volumes), got {text!r}")
    return int(text)


def add_show(commands) -> None:
    p = commands.add_parser("show", help="inspect an architecture: stages, params, MACs")
    p.add_argument("arch", help="a preset name (e.g. efficientnet-b0) or an arch string")
    p.add_argument("--width", type=positive_float, help="width multiplier (default: the preset's, else 1)")
    p.add_argument("--depth", type=positive_float, help="depth multiplier (default: the preset's, else 1)")
    p.add_argument("--resolution", type=positive_int, help="input size: the side of the square image or cubic "
                                                           "volume (default: the preset's, else 224)")
    p.add_argument("--num-classes", type=positive_int, default=1000)
    p.add_argument("--dims", type=spatial_dims, help="2 (images, Conv2d) or 3 (volumes, Conv3d) (default: the arch "
                                                     "string's, else 2)")
    p.add_argument("--in-channels", type=positive_int, help="input channels (default: the arch string's, else 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run_show)


def run_show(args: argparse.Namespace) -> int:
    from effnas.studies.show import describe, format_table

    info = describe(args.arch, width=args.width, depth=args.depth, resolution=args.resolution,
                    num_classes=args.num_classes, dims=args.dims, in_channels=args.in_channels)
    print(json.dumps(info, indent=2) if args.json else format_table(info))
    return 0


def add_search(commands) -> None:
    p = commands.add_parser("search", help="run (or resume) a NAS study",
                            description="Run a FLOPs-aware multi-objective NAS study; re-running resumes it.")
    add_config_flags(p, "search")
    p.set_defaults(run=run_search)


def run_search(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # bad flags fail before torch is imported
    from effnas.studies.nas import run_search as search

    search(config)
    return 0


STUDY_NAMES = ("Studies share a root name NAME (--study, default effnas): NAME is the NAS study, `scale` trains "
               "its grid into NAME-scaling, `family --train` its family into NAME-family and `confirm` its "
               "confirmation into NAME-confirm.")


def add_scale(commands) -> None:
    p = commands.add_parser("scale", help="grid-search the compound-scaling coefficients alpha, beta, gamma",
                            description="Train every (alpha, beta, gamma) with |alpha*beta^2*gamma^k - 2| <= "
                                        "tolerance (k = 2 for images, 3 for volumes) into the study NAME-scaling and "
                                        "choose one: the highest MnasNet reward at 2^phi x the baseline's MACs, so "
                                        "each triple is judged at its real (rounded) cost. " + STUDY_NAMES)
    p.add_argument("--dry-run", action="store_true", help="print the grid; train nothing, write nothing")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_config_flags(p, "scale", defaults={"resolution": "the baseline's", "baseline": "best"})
    p.set_defaults(run=run_scale)


def run_scale(args: argparse.Namespace) -> int:
    from effnas.reports.info import reliability
    from effnas.space.compound import constraint
    from effnas.studies.scaling import announce, grid_rows, plan_scale, run_scale
    from effnas.studies.tables import rows_table

    plan = plan_scale(config_from_args(args))
    config = plan.config
    if args.dry_run:
        rows = grid_rows(plan)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(announce(plan, None))
        if len(rows) > config.scale.max_triples:
            print(f"(more than --max-triples {config.scale.max_triples}: `effnas scale` would refuse this grid)")
        print(rows_table(rows, ("alpha", "beta", "gamma", "nominal", "width", "depth", "resolution", "params", "macs",
                                "macs_ratio")))
        return 0
    result = run_scale(plan)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    rows = [{"alpha": s.alpha, "beta": s.beta, "gamma": s.gamma, "real ratio": s.macs_ratio, "seeds": s.n,
             "accuracy": s.accuracy, "sd": s.accuracy_sd, "reward": s.reward} for s in result.scores[:10]]
    print(f"Triples by MnasNet reward at T = 2^phi x the baseline's MACs = {result.target_macs:,.0f} "
          f"(best 10 of {len(result.scores)}):")
    print(rows_table(rows, ("alpha", "beta", "gamma", "real ratio", "seeds", "accuracy", "sd", "reward")))
    c = result.chosen
    print(f"Chosen triple under {constraint(plan.baseline.arch.dims)} ~ 2: alpha {c.alpha:.2f}, beta {c.beta:.2f}, "
          f"gamma {c.gamma:.2f} (trial {c.numbers[0]} of {result.study!r}): accuracy {c.accuracy:.4f}, {c.macs:,} "
          f"MACs ({c.macs_ratio:.3f}x the baseline)")
    print(reliability(result.scores))
    return 0


def add_family(commands) -> None:
    p = commands.add_parser("family", help="derive (and optionally train) the compound-scaled family",
                            description="One row per phi: depth alpha^phi, width beta^phi, resolution "
                                        "r0*gamma^phi, exact params and MACs, real and nominal MACs ratios. "
                                        + STUDY_NAMES)
    p.add_argument("--from-study", metavar="NAME", help="take alpha, beta, gamma and the baseline from the scaling "
                                                        "study NAME-scaling (NAME or NAME-scaling)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--train", action="store_true", help="train each member into the study NAME-family")
    add_config_flags(p, "family", defaults={"resolution": "the baseline's",
                                            "baseline": "the --from-study study's baseline"})
    p.set_defaults(run=run_family)


def run_family(args: argparse.Namespace) -> int:
    from effnas.space.compound import constraint
    from effnas.studies.scaling import derive_family, train_family
    from effnas.studies.tables import input_size, rows_table

    config = config_from_args(args)
    fam = derive_family(config, from_study=args.from_study, training=args.train)
    rows = [m.to_dict() for m in fam.members]
    if args.train:
        accuracy = train_family(fam)
        for row in rows:
            row["accuracy"] = accuracy.get(round(row["phi"], 6))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    t = fam.triple
    print(f"Family of {fam.baseline.label} ({input_size(fam.baseline.resolution, dims=t.dims)}, {fam.num_classes} "
          f"classes) with alpha {t.alpha:g}, beta {t.beta:g}, gamma {t.gamma:g} ({constraint(t.dims)} = "
          f"{t.nominal:.4f}; real against nominal MACs ratios below):")
    columns = ("phi", "depth", "width", "resolution", "params", "macs", "macs_ratio", "nominal_ratio")
    print(rows_table(rows, columns + (("accuracy",) if args.train else ())))
    for row in rows:
        print(f"  phi {row['phi']:g}: {row['arch']}")
    return 0


def add_confirm(commands) -> None:
    p = commands.add_parser("confirm", help="retrain the best of a NAS study longer, with seeds and references",
                            description="Retrain the top --top of the NAS study's front, its chosen baseline, its "
                                        "base and --references at --epochs (default: 5x the study's) with --seeds "
                                        "seeds into NAME-confirm; print mean ± sd per architecture, the proxy "
                                        "fidelity (Kendall tau of the study's accuracy against the confirmed mean) "
                                        "and the confirmed baseline. " + STUDY_NAMES)
    p.add_argument("--json", action="store_true", help="print JSON")
    add_config_flags(p, "confirm", defaults={"epochs": "5x the study's", "dataset": "the study's",
                                             "resolution": "the study's"})
    p.set_defaults(run=run_confirm)


def run_confirm(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from effnas.studies.confirm import run_confirm as confirm
    from effnas.studies.tables import rows_table

    result = confirm(config)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    rows = [{"role": c.entry.role, "label": c.entry.label, "MACs": c.macs, "study acc": c.entry.proxy_accuracy,
             "mean": c.mean, "sd": c.sd, "seeds": len(c.accuracies)} for c in result.rows]
    print(f"Confirmed at {result.epochs} epochs ({result.study!r}), best mean first:")
    print(rows_table(rows, ("role", "label", "MACs", "study acc", "mean", "sd", "seeds"), left=("role", "label")))
    f = result.fidelity
    tau = f"Kendall tau {f.tau:.2f} (p = {f.p_value:.3f})" if f.tau is not None else "Kendall tau: too few"
    noise = (f"seed noise sd {f.seed_noise:.4f} against a spread of {f.spread:.4f} between architectures"
             if f.seed_noise is not None and f.spread is not None else "seed noise: one seed only")
    print(f"Proxy fidelity over {f.n} architectures of the study: {tau}; {noise}.")
    for warning in f.warnings():
        print(f"Warning: {warning}.")
    if result.baseline is not None:
        b = result.baseline
        print(f"Confirmed baseline: {b.entry.label}, accuracy {b.mean:.4f}" + (f" ± {b.sd:.4f}" if b.sd else "")
              + f" at {b.macs:,} MACs (effnas scale now starts from it)\n  {b.entry.arch}")
    return 0


def add_train(commands) -> None:
    p = commands.add_parser("train", help="train one network fully: checkpoints, resume, several devices",
                            description="Train one network into OUT/NAME (config.json, metrics.jsonl, a checkpoint "
                                        "per epoch, evaluation.json); the same command resumes from the last "
                                        "checkpoint.")
    p.add_argument("arch", nargs="?", metavar="ARCH", help="a preset (efficientnet-b0), a reference (resnet18) or an "
                                                          "arch string")
    p.add_argument("--from-study", metavar="NAME", help="train a trial of this study (NAS or scaling) instead")
    p.add_argument("--trial", metavar="N|baseline|confirmed", help="which: a trial number, the NAS study's chosen "
                                                                  "baseline (default), or the baseline that `effnas "
                                                                  "confirm` confirmed")
    p.add_argument("--resume", metavar="RUN", help="go on with this run (a folder, or a name under --out) with its "
                                                   "own network and settings")
    add_config_flags(p, "train", defaults={"resolution": "the study trial's, the preset's, else 224",
                                           "name": "named after the network"})
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    import contextlib

    from effnas.search.training import checkpoint
    from effnas.search.training.distributed import holds_run_folder, launch, launched
    from effnas.studies.train import plan_train, train

    plan = plan_train(config_from_args(args), arch=args.arch, from_study=args.from_study, trial=args.trial,
                      resume=args.resume)
    with checkpoint.held(plan.folder) if holds_run_folder() else contextlib.nullcontext():
        if plan.devices > 1 and not launched():
            return launch(plan.devices, args.argv)
        result = train(plan, threads_note=None if launched() else choose_threads(plan))
    if not result:  # a rank other than 0
        return 0
    parts = [f"{result['label']}: {result['epochs']} epoch(s), validation accuracy {result['val_accuracy']:.4f}"]
    if result["weights"] == "ema":
        parts.append("(moving-average weights)")
    if result["test_accuracy"] is not None:
        parts.append(f"test accuracy {result['test_accuracy']:.4f}")
    print(f"Trained {' '.join(parts)}; run folder {result['folder']}")
    return 0


def choose_threads(plan) -> str | None:
    """A lone CPU run's torch threads by the policy of search.utils.cores (the free cores, the network's MACs),
    set now and said (the returned line) once the run's files are checked; $OMP_NUM_THREADS, where set, is the
    user's choice and wins."""
    import os

    from effnas.search.utils import cores, devices
    from effnas.space.cost import cost

    if plan.device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    meter = cores.CoreMeter()
    macs, free = cost(plan.spec, plan.config.resolution).macs, meter.free()
    threads = cores.threads_for(macs, free=free)
    devices.set_threads(threads)
    return (f"training with {threads} thread(s): {free:.1f} of {meter.cores} core(s) free of other processes, "
            f"{macs:,} MACs per sample (OMP_NUM_THREADS=N fixes them)")


def add_predict(commands) -> None:
    p = commands.add_parser("predict", help="the top-k classes of images under a trained network",
                            description="Classify image files with a training run's network (its moving-average "
                                        "weights when it kept them); class names come from the training data.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a training run folder (its last checkpoint) or a "
                                                            "checkpoint directory")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top-k", type=positive_int, default=5, help="classes per image (default: 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from effnas.studies.predict import predict

    rows = predict(args.checkpoint, args.images, top_k=args.top_k)
    if args.json:  # json.dumps(list(rows), indent=2), written a row at a time
        for index, row in enumerate(rows):
            body = "\n".join("  " + line for line in json.dumps(row, indent=2).splitlines())
            print(("[\n" if index == 0 else ",\n") + body, end="", flush=True)
        print("\n]")
        return 0
    for row in rows:
        ranked = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in row["top"])
        print(f"{row['image']}: {ranked}", flush=True)
    return 0


def add_export(commands) -> None:
    from effnas.studies.config import EXPORT_FORMATS

    p = commands.add_parser("export", help="export a trained network: ONNX, torch.export, timm",
                            description="onnx: checked against torch with onnxruntime; pt2: a torch.export program; "
                                        "timm: a state dict with timm's keys and the recipe that builds the network "
                                        "in timm. Each has a JSON sidecar (resolution, mean, std, classes).")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a training run folder or a checkpoint directory")
    p.add_argument("--format", dest="fmt", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", metavar="PATH", help="file (onnx, pt2) or folder (timm); default RUN/export/")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from effnas.studies.export import export

    result = export(args.checkpoint, fmt=args.fmt, out=args.out)
    checked = f" (max |onnxruntime - torch| = {result['max_abs_error']:.1e})" if args.fmt == "onnx" else ""
    print(f"effnas: wrote {result['path']} from the {result['weights']} weights{checked}")
    return 0


def add_bench(commands) -> None:
    p = commands.add_parser("bench", help="measured latency of a network or a trained run",
                            description="Eval mode, a fixed input, warm-up then timed runs synchronised with the "
                                        "device: median and p90 latency, images/s, with device, dtype, memory "
                                        "format and torch version.")
    p.add_argument("arch", metavar="ARCH|CHECKPOINT", help="a preset, a reference, an arch string, or a training "
                                                           "run folder / checkpoint directory")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--batch", type=positive_int, default=1, help="images per run (default: 1); refused when the "
                   "weights, inputs and activations would exceed the device's free memory")
    p.add_argument("--resolution", type=positive_int, help="input size (default: the run's or preset's, else 224)")
    p.add_argument("--num-classes", type=positive_int, default=1000, help="classes of an untrained network "
                                                                          "(default: 1000)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"),
                   help="default: float32 on CPU, bfloat16 on CUDA")
    p.add_argument("--warmup", type=positive_int, default=10, help="untimed runs first (10 to 10,000, default 10)")
    p.add_argument("--runs", type=positive_int, default=50, help="timed runs (50 to 100,000, default 50)")
    p.add_argument("--threads", type=positive_int, help="CPU threads, 1 to this machine's CPU count (default: "
                                                        "torch's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from effnas.studies.bench import bench

    result = bench(args.arch, device=args.device, batch=args.batch, resolution=args.resolution,
                   num_classes=args.num_classes, dtype=args.dtype, warmup=args.warmup, runs=args.runs,
                   threads=args.threads)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['median_ms']:.3f} ms median, {result['p90_ms']:.3f} ms p90, {result['images_per_second']:,.1f} "
          f"images/s  (batch {result['batch']} at {result['resolution']}px; {result['device']}, {result['dtype']}, "
          f"{result['memory_format']}, {result['threads']} thread(s), torch {result['torch']}; {result['warmup']} "
          f"warm-up + {result['runs']} timed runs)")
    return 0


def add_report(commands) -> None:
    from effnas.studies.config import DEFAULT_STORAGE

    p = commands.add_parser("report", help="write HTML reports of the studies in a storage and of training runs",
                            description="Write DIR/index.html and one self-contained page per study and per "
                                        "training run.")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    p.add_argument("--study", nargs="+", dest="studies", metavar="NAME", help="studies to report (default: all)")
    p.add_argument("--out", default="runs/report", help="output directory (default: runs/report)")
    p.add_argument("--export", metavar="FILE.csv|FILE.parquet", help="also write the trials table to this file")
    p.add_argument("--runs", default="runs/train", metavar="DIR", help="training runs to report, one page each "
                                                                      "(default: runs/train)")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from effnas.studies.report import run_report as report

    pages = report(storage_url=args.storage, names=args.studies, out=args.out, export=args.export, runs=args.runs)
    print(f"effnas: wrote {len(pages) - 1} page(s) and {pages[0]}")
    if args.export:
        print(f"effnas: wrote the trials table to {args.export}")
    return 0


COMMANDS = [add_search, add_confirm, add_scale, add_family, add_train, add_predict, add_export, add_bench, add_report,
            add_show]


def make_parser() -> ArgumentParser:
    from effnas.studies import __version__

    parser = ArgumentParser(prog="effnas", description="Architecture search and compound scaling for "
                            "EfficientNet-style networks. MACs are multiply-adds (the paper's \"FLOPs\").")
    parser.add_argument("--version", action="version", version=f"effnas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for add in COMMANDS:
        add(commands)
    return parser


def quiet_libraries() -> None:
    """Optuna's experimental-feature notices and INFO logs are noise to a user of effnas."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 1 the work could not go on, 2 bad input, 130 Ctrl-C, 143 SIGTERM."""
    signals.install()  # Ctrl-C and SIGTERM raise at a safe point, never inside a database write
    try:
        return _main(argv)
    except Terminated:
        print("effnas: terminated (SIGTERM); trials in flight were failed and requeued: the same command resumes",
              file=sys.stderr)
        return 143
    except KeyboardInterrupt:  # the running trial was failed and requeued; the same command resumes
        print("effnas: interrupted; trials in flight were failed and requeued: the same command resumes",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _main(argv: list[str] | None) -> int:
    try:
        quiet_libraries()
        args = make_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # what torch's launcher gives each process
        return args.run(args)
    except UserError as exc:
        print(f"effnas: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except SearchError as exc:
        print(f"effnas: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not disk_full(exc):
            raise
        where = f" writing {exc.filename!r}" if getattr(exc, "filename", None) else ""
        print(f"effnas: error: no space left on the device{where}; every file effnas writes is whole or not there, "
              "so what was finished is kept: free some space and run the same command again", file=sys.stderr)
        return 1


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def disk_full(exc: BaseException) -> bool:
    """A full disk (or quota) as Python, SQLite or a library's C++ code reports it."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        text = str(exc)
        if "No space left on device" in text or "database or disk is full" in text or "Disk quota exceeded" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
