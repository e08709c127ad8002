"""Trial records (search/record) -> pandas DataFrame: the reports' table of trials, and the export."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import optuna
import pandas as pd

from effnas.search import record

COLUMNS = ("number", "state", *record.ATTRS, "datetime_start", "datetime_complete")


def study_records(study: optuna.Study, skipped: list[str] | None = None) -> list[record.TrialRecord]:
    """The records of ``study``'s trials; a trial whose record is not effnas's (another tool's, edited) is left
    out, and ``skipped`` gets one line saying which and why."""
    records = []
    for trial in study.get_trials(deepcopy=False):
        reason = record.unreadable(trial)
        if reason is None:
            records.append(record.read(trial))
        elif skipped is not None:
            skipped.append(f"study {study.study_name!r}, trial {trial.number}: left out, {reason}")
    return records


def trials_frame(records: Sequence[record.TrialRecord]) -> pd.DataFrame:
    """One row per trial: number, state, the record's attributes, duration and ``param_*`` columns."""
    rows = []
    for r in records:
        row: dict[str, Any] = {name: getattr(r, name) for name in COLUMNS}
        row["duration_s"] = (r.datetime_complete - r.datetime_start).total_seconds() \
            if r.datetime_start and r.datetime_complete else None
        for name, value in r.choices.items():
            row[f"param_{name}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else list(COLUMNS))
    return frame.dropna(axis=1, how="all") if len(frame) else frame


def study_config(study: optuna.Study) -> dict[str, Any]:
    try:
        config = json.loads(study.user_attrs.get("config", "{}"))
    except (TypeError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}
