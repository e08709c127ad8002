"""A confirmation read back: the architectures a confirm study retrained, their mean and spread over seeds,
how well the NAS study's proxy ranked them (Kendall's tau), and the baseline the longer training confirms."""
from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from effnas.search import record, selection
from effnas.search.record import TrialRecord
from effnas.search.selection import Fidelity


@dataclass(frozen=True)
class Entry:
    """One architecture to confirm."""

    id: int  # its key in the confirm study (params "entry", "replicate")
    role: str
    label: str
    arch: str
    source_trial: int | None  # the NAS trial it retrains; None for a reference
    proxy_accuracy: float | None  # that trial's accuracy in the NAS study


@dataclass(frozen=True)
class Confirmed:
    entry: Entry
    accuracies: list[float]
    macs: int
    params: int

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else None


@dataclass(frozen=True)
class ConfirmResult:
    study: str
    epochs: int
    rows: list[Confirmed]  # by confirmed mean, best first
    fidelity: Fidelity
    baseline: Confirmed | None  # the confirmed choice among the study's trials

    def to_dict(self) -> dict[str, Any]:
        f = self.fidelity
        return {"study": self.study, "epochs": self.epochs, "kendall_tau": f.tau, "kendall_p": f.p_value,
                "architectures": f.n, "seed_noise": f.seed_noise, "spread": f.spread, "warnings": f.warnings(),
                "confirmed_baseline": self.baseline.entry.arch if self.baseline else None,
                "confirmed_trial": self.baseline.entry.source_trial if self.baseline else None,
                "rows": [{"role": c.entry.role, "label": c.entry.label, "source_trial": c.entry.source_trial,
                          "arch": c.entry.arch, "macs": c.macs, "params": c.params, "study_accuracy":
                          c.entry.proxy_accuracy, "mean": c.mean, "sd": c.sd, "seeds": len(c.accuracies)}
                         for c in self.rows]}


def confirm_result(study: optuna.Study) -> ConfirmResult:
    entries = {e["id"]: Entry(**e) for e in json.loads(study.user_attrs.get("entries", "[]"))}
    groups: dict[int, list[TrialRecord]] = {}
    for r in selection.measured(record.read_all(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))):
        groups.setdefault(int(r.choices["entry"]), []).append(r)
    rows = sorted((Confirmed(entry=entries[i], accuracies=[r.accuracy for r in g], macs=g[0].macs, params=g[0].params)
                   for i, g in groups.items() if i in entries), key=lambda c: (-c.mean, c.macs))
    from_study = [c for c in rows if c.entry.source_trial is not None]
    found = selection.proxy_fidelity([c.entry.proxy_accuracy for c in from_study],
                                     [c.accuracies for c in rows if c.entry.source_trial is not None])
    noise = selection.proxy_fidelity([], [c.accuracies for c in rows])
    found = dataclasses.replace(found, seed_noise=noise.seed_noise, spread=noise.spread)
    pseudo = [TrialRecord(number=c.entry.source_trial, state="COMPLETE", choices={}, datetime_start=None,
                          datetime_complete=None, accuracy=c.mean, macs=c.macs) for c in from_study]
    chosen = selection.choose_baseline(pseudo, target_macs=float(study.user_attrs["target_macs"]))
    baseline = next((c for c in from_study if chosen is not None and c.entry.source_trial == chosen.number), None)
    return ConfirmResult(study=study.study_name, epochs=int(study.user_attrs["epochs"]), rows=rows, fidelity=found,
                         baseline=baseline)
