"""What an output path may be: never an effnas file that the output did not make, nor an input of the same command.

A user's ``--out`` or ``--export`` may replace a file this kind of output wrote before (last week's CSV, an
earlier ONNX export), but never a study storage (a SQLite database, an Optuna journal), a training run's own
files (its config, metrics, checkpoints: anything inside a run folder but the run's ``export/`` folder, when
the output is an export of that run), an entry of the image cache, or a file the command itself reads. Each is
refused in one line, before any work, by :func:`check_output`.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from effnas.search.data.imagecache import cache_root
from effnas.search.training import checkpoint
from effnas.space.errors import UserError
from effnas.studies.storage import SQLITE_MAGIC

PROBE_BYTES = 1 << 16  # what is read of an existing file to tell a storage or a run's config


def resolved(path: Path) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a loop of symbolic links
        raise UserError(f"{str(path)!r} cannot be resolved ({exc})") from None


def run_folder_of(path: Path) -> Path | None:
    """The training run folder ``path`` (resolved) is or lies in, if any."""
    for folder in (path, *path.parents):
        if _is_run_folder(folder):
            return folder
    return None


def _is_run_folder(folder: Path) -> bool:
    config = folder / checkpoint.CONFIG
    if not config.is_file():
        return False
    if (folder / checkpoint.CHECKPOINTS).is_dir() or (folder / checkpoint.METRICS).is_file():
        return True
    try:  # a run before its first checkpoint: a config.json of a run's shape
        with open(config, "rb") as handle:
            value = json.loads(handle.read(PROBE_BYTES))
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and "network" in value and "settings" in value


def check_outside_cache(target: Path, *, flag: str, shown: str) -> None:
    cache = resolved(cache_root())
    if target.is_relative_to(cache):
        raise UserError(f"{flag} {shown!r} is inside effnas's image cache ({str(cache)!r}); give a path outside it")


def storage_kind(path: Path) -> str | None:
    """'a SQLite database' or 'an Optuna journal storage' where ``path`` is an existing regular file of that kind."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(PROBE_BYTES)
    except OSError:
        return None
    if head.startswith(SQLITE_MAGIC):
        return "a SQLite database (a study storage)"
    first = head.split(b"\n", 1)[0]
    try:
        record = json.loads(first)
    except ValueError:
        return None
    return "an Optuna journal storage" if isinstance(record, dict) and "op_code" in record else None


def check_output(path: Path, *, flag: str, inputs: Iterable[tuple[Path, str]] = (),
                 exports_of: Path | None = None) -> None:
    """Refuse ``path`` (a file or a folder this command is about to write) where it is one of ``inputs`` (path,
    what it is) of the same command, a study storage, inside a training run (but ``exports_of``'s export/ folder:
    an export of that run), or inside the image cache."""
    target = resolved(path)
    shown = str(path)
    for given, what in inputs:
        if given is not None and resolved(given) == target:
            raise UserError(f"{flag} {shown!r} is {what}, which this command reads; give another path")
    run = run_folder_of(target)
    own_exports = resolved(exports_of) / "export" if exports_of is not None else None
    if run is not None and not (own_exports is not None and target.is_relative_to(own_exports)):
        raise UserError(f"{flag} {shown!r} is inside the training run {str(run)!r}, among its files; give a path "
                        "outside it")
    check_outside_cache(target, flag=flag, shown=shown)
    kind = storage_kind(target)
    if kind is not None:
        raise UserError(f"{flag} {shown!r} is {kind}; effnas will not replace it: give another path")


def storage_file(url: str) -> Path | None:
    """The file a storage URL keeps its studies in (SQLite or journal), if it is one."""
    from effnas.studies.storage import sqlite_path

    if url.startswith("journal:"):
        return Path(url[len("journal:"):])
    path = sqlite_path(url)
    return path if path is not None and str(path) not in ("", ":memory:") else None

