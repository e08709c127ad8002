"""``effnas report``: HTML pages for the studies in a storage and the training runs under runs/train, and an
export of the studies' trials."""
from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TextIO

import optuna
import pandas as pd

from effnas.search.training.checkpoint import run_folders
from effnas.search.utils.files import check_writable, write_atomic
from effnas.space.errors import UserError
from effnas.studies.outputs import check_output, storage_file
from effnas.studies.storage import mask_url, open_storage

EXPORT_SUFFIXES = (".csv", ".parquet")
DEFAULT_RUNS = "runs/train"


def run_report(*, storage_url: str, names: list[str] | None, out: str, export: str | None,
               runs: str = DEFAULT_RUNS, err: TextIO | None = None) -> list[Path]:
    """Pages for the studies of ``storage_url`` and the training runs under ``runs``; every output path is
    checked first, so nothing is written on a bad one. Without any training run the storage must hold a study."""
    out_dir = Path(out)
    check_writable(out_dir, what="--out", directory=True)
    read = [(storage_file(storage_url), "the storage")]
    check_output(out_dir, flag="--out", inputs=read)
    if export is not None:
        suffix = Path(export).suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            raise UserError(f"--export {export!r}: the file must end in {' or '.join(EXPORT_SUFFIXES)}")
        if not Path(export).parent.resolve().is_dir():
            raise UserError(f"--export {export!r}: directory {str(Path(export).parent)!r} does not exist")
        check_writable(Path(export), what="--export")
        check_output(Path(export), flag="--export", inputs=read)
    run_dirs = run_folders(Path(runs))
    try:
        storage = open_storage(storage_url, write=False)
        available = optuna.get_all_study_names(storage)
    except UserError:
        if names or export or not run_dirs:
            raise
        storage, available = None, []
    if not available and not run_dirs:
        raise UserError(f"storage {mask_url(storage_url)!r} holds no study")
    chosen = names or sorted(available)
    missing = [n for n in chosen if n not in available]
    if missing:
        raise UserError(f"no study {missing[0]!r} in the storage; available: {', '.join(sorted(available))}")
    from effnas.reports.html import write_report

    err = sys.stderr if err is None else err
    skipped: list[str] = []
    pages = write_report(storage, names=chosen, out=out_dir, storage_label=mask_url(storage_url), runs=run_dirs,
                         skipped=skipped)
    for line in skipped:
        print(f"effnas: {line}", file=err)
    if export is not None:
        export_trials(storage, chosen, Path(export))
    return pages


def export_trials(storage, names: list[str], path: Path) -> None:
    from effnas.reports.frames import study_records, trials_frame

    frames = []
    for name in names:
        frame = trials_frame(study_records(optuna.load_study(study_name=name, storage=storage)))
        frame.insert(0, "study", name)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    if path.suffix.lower() == ".csv":
        write_atomic(path, table.to_csv(index=False))
    else:
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        write_atomic(path, buffer.getvalue())
