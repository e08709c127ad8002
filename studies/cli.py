"""The ``effnas`` command. User errors become one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import json
import sys

from search.data import DataError
from search.objective import SearchError
from space.arch import ArchError
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
    from studies.config import FIELDS

    p = commands.add_parser("search", help="run (or resume) a NAS study",
                            description="Run a FLOPs-aware multi-objective NAS study; re-running resumes it.")
    p.add_argument("--config", metavar="FILE.toml", help="study file; flags override its keys")
    for f in FIELDS:
        default = "none" if f.default is None else f.default
        p.add_argument(f.flag, dest=f.name, default=argparse.SUPPRESS, metavar=f.name.upper(),
                       help=f"{f.help} (default: {default})")
    p.set_defaults(run=run_search)


def config_from_args(args: argparse.Namespace):
    from studies.config import FIELDS, load_config

    overrides = {f.name: f.parse(getattr(args, f.name)) for f in FIELDS if hasattr(args, f.name)}
    return load_config(file=args.config, overrides=overrides)


def run_search(args: argparse.Namespace) -> int:
    from studies.nas import run_search as search

    search(config_from_args(args))
    return 0


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
    parser = ArgumentParser(prog="effnas", description=__doc__)
    from studies import __version__

    parser.add_argument("--version", action="version", version=f"effnas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for add in COMMANDS:
        add(commands)
    return parser


COMMANDS = [add_search, add_report, add_show]


def quiet_libraries() -> None:
    """Optuna's experimental-feature notices and INFO logs are noise to a user of effnas."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    try:
        args = make_parser().parse_args(argv)
        return args.run(args)
    except (UserError, ArchError, DataError) as exc:
        print(f"effnas: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except SearchError as exc:
        print(f"effnas: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("effnas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
