"""The ``effnas`` command. User errors become one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from studies.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
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


def add_show(commands) -> None:
    p = commands.add_parser("show", help="inspect an architecture: stages, params, MACs")
    p.add_argument("arch", help="a preset name (e.g. efficientnet-b0) or an arch string")
    p.add_argument("--width", type=positive_float, help="width multiplier (default: the preset's, else 1)")
    p.add_argument("--depth", type=positive_float, help="depth multiplier (default: the preset's, else 1)")
    p.add_argument("--resolution", type=positive_int, help="input size (default: the preset's, else 224)")
    p.add_argument("--num-classes", type=positive_int, default=1000)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run_show)


def run_show(args: argparse.Namespace) -> int:
    from studies.show import describe, format_table

    info = describe(args.arch, width=args.width, depth=args.depth, resolution=args.resolution,
                    num_classes=args.num_classes)
    print(json.dumps(info, indent=2) if args.json else format_table(info))
    return 0


def add_search(commands) -> None:
    from studies.config import FIELD_BY_NAME

    p = commands.add_parser("search", help="run (or resume) a NAS study",
                            description="Run a FLOPs-aware multi-objective NAS study; re-running resumes it.")
    add_config_flags(p, tuple(FIELD_BY_NAME))
    p.set_defaults(run=run_search)


def run_search(args: argparse.Namespace) -> int:
    from studies.nas import run_search as search

    search(config_from_args(args))
    return 0


def add_config_flags(p: argparse.ArgumentParser, names: tuple[str, ...], *,
                     defaults: dict[str, str] | None = None) -> None:
    """--config plus one flag per study field; ``defaults`` rewords a default for this command's help."""
    from studies.config import FIELD_BY_NAME

    p.add_argument("--config", metavar="FILE.toml", help="study file; flags override its keys")
    p.set_defaults(config_fields=names)
    for name in names:
        f = FIELD_BY_NAME[name]
        default = (defaults or {}).get(name, "none" if f.default is None else f.default)
        p.add_argument(f.flag, dest=f.name, default=argparse.SUPPRESS, metavar=f.name.upper(),
                       help=f"{f.help} (default: {default})")


def config_from_args(args: argparse.Namespace):
    """The study config of a command: defaults, then --config, then the flags given."""
    from studies.config import FIELD_BY_NAME, load_config

    names = args.config_fields
    overrides = {n: FIELD_BY_NAME[n].parse(getattr(args, n)) for n in names if hasattr(args, n)}
    return load_config(file=args.config, overrides=overrides, fields=names)


def add_grid_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resolution-multiple", type=positive_int, default=8,
                   help="scaled resolutions round to the nearest multiple of this (default: 8)")


def add_scale(commands) -> None:
    from studies.scaling import TRAIN_FIELDS

    p = commands.add_parser("scale", help="grid-search the compound-scaling coefficients alpha, beta, gamma",
                            description="Train every (alpha, beta, gamma) with |alpha*beta^2*gamma^2 - 2| <= "
                                        "tolerance into the study NAME-scaling, and print the best triple.")
    p.add_argument("--baseline", default="best", help="best | TRIAL | PRESET | ARCH (default: best, the chosen "
                                                      "baseline of the NAS study --study)")
    p.add_argument("--phi", type=non_negative_float, default=1.0, help="compound coefficient (default: 1)")
    p.add_argument("--step", type=float, default=0.05, help="grid step (default: 0.05)")
    p.add_argument("--tolerance", type=float, default=0.1, help="allowed |alpha*beta^2*gamma^2 - 2| (default: 0.1)")
    p.add_argument("--max-coef", type=float, default=2.0, help="largest coefficient on the grid (default: 2.0)")
    add_grid_flags(p)
    p.add_argument("--dry-run", action="store_true", help="print the grid; train nothing, write nothing")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_config_flags(p, TRAIN_FIELDS, defaults={"resolution": "the baseline's"})
    p.set_defaults(run=run_scale)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def run_scale(args: argparse.Namespace) -> int:
    from studies.scaling import GridOptions, check_options, grid_rows, resolve_baseline, run_scale

    config = config_from_args(args)
    options = GridOptions(phi=args.phi, step=args.step, tolerance=args.tolerance, max_coef=args.max_coef,
                          resolution_multiple=args.resolution_multiple)
    check_options(options)
    baseline = resolve_baseline(args.baseline, config=config)
    if args.dry_run:
        rows = grid_rows(baseline, options)
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(f"{len(rows)} triples for {baseline.label} at {baseline.resolution}px, phi {options.phi:g}:")
            print(_rows_table(rows, ("alpha", "beta", "gamma", "nominal", "width", "depth", "resolution", "params",
                                     "macs", "macs_ratio")))
        return 0
    best = run_scale(config, baseline, options)
    if args.json:
        print(json.dumps(best, indent=2))
    else:
        print(f"Best triple: alpha {best['alpha']:.2f}, beta {best['beta']:.2f}, gamma {best['gamma']:.2f} "
              f"(trial {best['trial']} of {best['study']!r}): accuracy {best['accuracy']:.4f}, "
              f"{best['macs']:,} MACs ({best['macs_ratio']:.3f}x the baseline), {best['resolution']}px")
    return 0


def add_family(commands) -> None:
    from studies.scaling import TRAIN_FIELDS

    p = commands.add_parser("family", help="derive (and optionally train) the compound-scaled family",
                            description="One row per phi: depth alpha^phi, width beta^phi, resolution "
                                        "r0*gamma^phi, exact params and MACs, real and nominal MACs ratios.")
    p.add_argument("--baseline", help="best | TRIAL | PRESET | ARCH (default with --from-study: its baseline)")
    p.add_argument("--alpha", type=float)
    p.add_argument("--beta", type=float)
    p.add_argument("--gamma", type=float)
    p.add_argument("--from-study", metavar="NAME", help="take alpha, beta, gamma from this scaling study "
                                                        "(NAME or NAME-scaling)")
    p.add_argument("--phi", type=non_negative_float, nargs="+", default=[1.0, 2.0, 3.0],
                   help="compound coefficients (default: 1 2 3)")
    add_grid_flags(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--train", action="store_true", help="train each member and record it in the scaling study")
    p.add_argument("--num-classes", type=positive_int, help="classes the costs are counted for (default: the "
                                                           "study's, else 1000)")
    add_config_flags(p, TRAIN_FIELDS, defaults={"resolution": "the baseline's"})
    p.set_defaults(run=run_family)


def run_family(args: argparse.Namespace) -> int:
    from space.scaling import Triple
    from studies.scaling import Baseline, family_rows, load_scaling_study, resolve_baseline, train_family

    config = config_from_args(args)
    coefficients = (args.alpha, args.beta, args.gamma)
    given = [c is not None for c in coefficients]
    if args.from_study and any(given):
        raise UserError("give either --alpha/--beta/--gamma or --from-study, not both")
    if not args.from_study and not all(given):
        raise UserError("give --alpha, --beta and --gamma, or --from-study NAME")
    scaling_study = None
    if args.from_study:
        from studies.scaling import best_triple

        scaling_study = load_scaling_study(config, args.from_study)
        best = best_triple(scaling_study)
        triple = Triple(best["alpha"], best["beta"], best["gamma"])
    else:
        triple = Triple(*coefficients)
    if args.baseline is None and scaling_study is None:
        raise UserError("--baseline is required without --from-study")
    if args.baseline is None:
        from space.arch import ArchSpec

        attrs = scaling_study.user_attrs
        resolution = config.resolution if "resolution" in config.explicit else int(attrs["base_resolution"])
        baseline = Baseline(ArchSpec.parse(attrs["baseline"]), resolution, attrs.get("baseline_label", "baseline"),
                            int(attrs.get("num_classes", 1000)))
    else:
        baseline = resolve_baseline(args.baseline, config=config)
    if args.num_classes is not None:
        baseline = dataclasses.replace(baseline, num_classes=args.num_classes)
    members = family_rows(baseline, triple, list(args.phi), multiple=args.resolution_multiple)
    rows = [m.to_dict() for m in members]
    if args.train:
        name = scaling_study.study_name if scaling_study is not None else f"{config.study}-scaling"
        accuracy = train_family(config, name, baseline, triple, members, multiple=args.resolution_multiple)
        for row in rows:
            row["accuracy"] = accuracy.get(round(row["phi"], 6))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"Family of {baseline.label} ({baseline.resolution}px) with alpha {triple.alpha:g}, beta "
              f"{triple.beta:g}, gamma {triple.gamma:g} (alpha*beta^2*gamma^2 = {triple.nominal:.4f}):")
        columns = ("phi", "depth", "width", "resolution", "params", "macs", "macs_ratio", "nominal_ratio")
        print(_rows_table(rows, columns + (("accuracy",) if args.train else ())))
        for row in rows:
            print(f"  phi {row['phi']:g}: {row['arch']}")
    return 0


def _rows_table(rows: list[dict], columns: tuple[str, ...]) -> str:
    def fmt(value) -> str:
        if isinstance(value, float):
            return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1e4 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return "" if value is None else str(value)

    from studies.tables import text_table

    return "\n".join(text_table([columns] + [tuple(fmt(r.get(c)) for c in columns) for r in rows]))


def add_report(commands) -> None:
    from studies.config import DEFAULT_STORAGE

    p = commands.add_parser("report", help="write HTML reports of the studies in a storage",
                            description="Write DIR/index.html and one self-contained page per study.")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    p.add_argument("--study", nargs="+", dest="studies", metavar="NAME", help="studies to report (default: all)")
    p.add_argument("--out", default="runs/report", help="output directory (default: runs/report)")
    p.add_argument("--export", metavar="FILE.csv|FILE.parquet", help="also write the trials table to this file")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from studies.report import run_report as report

    pages = report(storage_url=args.storage, names=args.studies, out=args.out, export=args.export)
    print(f"effnas: wrote {len(pages) - 1} study page(s) and {pages[0]}")
    if args.export:
        print(f"effnas: wrote the trials table to {args.export}")
    return 0


def make_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="effnas", description="Architecture search and compound scaling for "
                            "EfficientNet-style networks. MACs are multiply-adds (the paper's \"FLOPs\").")
    from studies import __version__

    parser.add_argument("--version", action="version", version=f"effnas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for add in COMMANDS:
        add(commands)
    return parser


COMMANDS = [add_search, add_scale, add_family, add_report, add_show]


def quiet_libraries() -> None:
    """Optuna's experimental-feature notices and INFO logs are noise to a user of effnas."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # the running trial was failed and requeued; the same command resumes
        print("effnas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _main(argv: list[str] | None) -> int:
    from search.data import DataError
    from search.objective import SearchError, SetupError
    from space.arch import ArchError

    try:
        quiet_libraries()
        args = make_parser().parse_args(argv)
        return args.run(args)
    except (UserError, ArchError, DataError, SetupError) as exc:
        print(f"effnas: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except SearchError as exc:
        print(f"effnas: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
