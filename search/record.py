"""The trial record: the one schema of what effnas writes on a trial and reads back.

Optuna keeps a trial's state, its params (the space's choices) and its values; everything else
effnas knows about a trial is a user_attr named here. Writers go through :func:`write` (an unknown
key is a programming error, caught at once) and readers through :func:`read`, which gives a typed
:class:`TrialRecord`; the CLI, the selection rules and the reports all read records, never raw attrs.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from optuna.trial import FrozenTrial

from effnas.search.lifecycle import write_user_attrs
from effnas.space.checks import is_int, is_number


def attr(when: str, about: str) -> Any:
    """A user_attr of the record: ``when`` it is written (queued, asked, measured, failed)."""
    return dataclasses.field(default=None, metadata={"when": when, "about": about})


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str  # Optuna's: COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    choices: Mapping[str, Any]  # Optuna's params: the search space's choices
    datetime_start: datetime | None
    datetime_complete: datetime | None
    # written when the trial is queued
    enqueued: str | None = attr("queued", "why effnas queued these choices (the base architecture)")
    retry_of: int | None = attr("queued", "the failed trial whose choices this one retries")
    role: str | None = attr("queued", "what the trial is: grid or family (scaling); candidate, baseline or "
                                      "reference (confirm)")
    triple: str | None = attr("queued", "a family member's alpha,beta,gamma")
    source_trial: int | None = attr("queued", "a confirmation's trial of the NAS study it retrains")
    label: str | None = attr("queued", "a confirmation's name for its architecture (trial N, a preset)")
    # written when the trial is asked, before anything trains
    worker: str | None = attr("asked", "HOST:PID of the process that holds the trial")
    arch: str | None = attr("asked", "canonical arch string")
    params: int | None = attr("asked", "exact parameter count")
    macs: int | None = attr("asked", "exact multiply-adds of convolutions and the classifier")
    resolution: int | None = attr("asked", "input size: the side of the square image or cubic volume")
    dims: int | None = attr("asked", "spatial dimensions of the network: 2 (images) or 3 (volumes)")
    epochs: int | None = attr("asked", "training epochs")
    dataset: str | None = attr("asked", "dataset spec")
    num_classes: int | None = attr("asked", "classes of the classifier")
    seed: int | None = attr("asked", "the trial's training seed")
    settings: str | None = attr("asked", "the training settings, JSON")
    infeasible: str | None = attr("asked", "why the trial broke the budget (never trained)")
    duplicate_of: int | None = attr("asked", "the trial that already measured this architecture at this budget")
    alpha: float | None = attr("asked", "depth coefficient of a scaling trial")
    beta: float | None = attr("asked", "width coefficient of a scaling trial")
    gamma: float | None = attr("asked", "resolution coefficient of a scaling trial")
    width: float | None = attr("asked", "width multiplier beta^phi")
    depth: float | None = attr("asked", "depth multiplier alpha^phi")
    phi: float | None = attr("asked", "compound coefficient")
    replicate: int | None = attr("asked", "0 for a configuration's first training, 1, 2, ... for retrainings "
                                          "with other seeds")
    macs_ratio: float | None = attr("asked", "real MACs over the baseline's, after rounding")
    nominal: float | None = attr("asked", "alpha * beta^2 * gamma^k, k = dims")
    nominal_ratio: float | None = attr("asked", "(alpha * beta^2 * gamma^k)^phi")
    latency_ms: float | None = attr("asked", "median latency measured on the driver's device before training "
                                             "(the latency_ms objective; the study's latency attr says how)")
    # written when the worker returns
    accuracy: float | None = attr("measured", "validation accuracy")
    score: float | None = attr("measured", "a zero-cost evaluator's score of the untrained network, in place of an "
                                           "accuracy (--evaluator; larger is expected better)")
    evaluator: str | None = attr("measured", "the zero-cost evaluator that gave the score")
    val_loss: float | None = attr("measured", "validation loss")
    train_seconds: float | None = attr("measured", "training time")
    eval_seconds: float | None = attr("measured", "validation time")
    images_per_second: float | None = attr("measured", "training throughput")
    device: str | None = attr("measured", "where the trial trained")
    threads: int | None = attr("measured", "torch threads the trial trained with (search.utils.cores: the free "
                                           "cores and the network's MACs, or --threads-per-worker)")
    reward: float | None = attr("measured", "MnasNet reward ACC x (MACs/T)^-0.07")
    rung_accuracy: str | None = attr("measured", "successive halving: epochs -> accuracy where judged, JSON")
    stopped_at: int | None = attr("measured", "successive halving: the rung (epochs) at which the trial stopped")
    crashes: int | None = attr("measured", "times the trial's Ray worker died and Ray retried it")
    crash: str | None = attr("measured", "the last error of a worker that died under the trial")
    # written when the trial fails
    error: str | None = attr("failed", "why the trial failed")


ATTRS: dict[str, dataclasses.Field] = {
    f.name: f for f in dataclasses.fields(TrialRecord) if "when" in f.metadata
}
MEASURED: tuple[str, ...] = tuple(n for n, f in ATTRS.items() if f.metadata["when"] == "measured"
                                  and n not in ("reward", "crashes", "crash"))


def check(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as record attributes; a key outside the schema is a bug, not data."""
    unknown = set(values) - set(ATTRS)
    if unknown:
        raise KeyError(f"not keys of the trial record: {', '.join(sorted(unknown))}")
    return dict(values)


def write(trial: Any, values: Mapping[str, Any]) -> None:
    """Set record attributes on a live trial (``optuna.Trial``), in one transaction where the storage allows."""
    write_user_attrs(trial, check(values))


def read(trial: FrozenTrial) -> TrialRecord:
    attrs = trial.user_attrs
    return TrialRecord(number=trial.number, state=trial.state.name, choices=dict(trial.params),
                       datetime_start=trial.datetime_start, datetime_complete=trial.datetime_complete,
                       **{name: attrs.get(name) for name in ATTRS})


def read_all(trials: Iterable[FrozenTrial]) -> list[TrialRecord]:
    return [read(t) for t in trials]


_TYPES = {"int | None": ("a whole number", is_int), "str | None": ("text", lambda v: isinstance(v, str)),
          "float | None": ("a finite number", lambda v: is_number(v) and math.isfinite(v))}


def unreadable(trial: FrozenTrial) -> str | None:
    """Why ``trial``'s record cannot be read as effnas writes it (an attribute of the wrong type, a non-finite
    number, non-finite objective values: written by another tool or edited), or None."""
    for name, f in ATTRS.items():
        value = trial.user_attrs.get(name)
        if value is None or f.type not in _TYPES:
            continue
        what, ok = _TYPES[f.type]
        if not ok(value):
            return f"{name} is {value!r:.40}, not {what}"
    if trial.values is not None and not all(is_number(v) and math.isfinite(v) for v in trial.values):
        return f"its objective values {trial.values!r:.60} are not finite numbers"
    return None
