"""Trials -> pandas DataFrame: the only interface between the search and the reports."""
from __future__ import annotations

import json
from typing import Any

import optuna
import pandas as pd

RECORD_COLUMNS = ("accuracy", "macs", "params", "reward", "arch", "resolution", "epochs", "dataset", "seed",
                  "device", "train_seconds", "val_loss", "infeasible", "error", "retry_of", "enqueued",
                  "alpha", "beta", "gamma", "width", "depth", "phi", "macs_ratio", "nominal", "role")


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, the record's user_attrs, duration and ``param_*`` columns."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        for key in RECORD_COLUMNS:
            row[key] = t.user_attrs.get(key)
        row["datetime_start"] = t.datetime_start
        row["datetime_complete"] = t.datetime_complete
        row["duration_s"] = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_start and t.datetime_complete else None
        for name, value in t.params.items():
            row[f"param_{name}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["number", "state", *RECORD_COLUMNS])
    return frame.dropna(axis=1, how="all") if len(frame) else frame


def study_config(study: optuna.Study) -> dict[str, Any]:
    try:
        return json.loads(study.user_attrs.get("config", "{}"))
    except (TypeError, ValueError):
        return {}
