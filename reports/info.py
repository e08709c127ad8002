"""What the pages show, computed without drawing anything (optuna.visualization's split): the numbers come
from search/selection, as in the CLI, and tests check them without a browser."""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from effnas.search import halving, selection
from effnas.search.record import TrialRecord
from effnas.search.selection import TripleScore


@dataclass(frozen=True)
class Point:
    """One marker of the Pareto plot: an architecture (its repeats merged), a stopped or an infeasible trial."""

    numbers: tuple[int, ...]
    arch: str
    accuracy: float  # the mean over repeats; a stopped trial's at its last rung; 0 when never trained
    sd: float | None  # over repeats
    macs: float
    params: int
    kind: str  # front, dominated, baseline, stopped, infeasible
    label: str | None = None  # a name drawn beside the point (the base)
    note: str | None = None  # why it is drawn as it is


@dataclass(frozen=True)
class FrontInfo:
    points: list[Point]
    numbers: list[int]  # every complete trial
    baseline: int | None
    front_numbers: list[int]
    infeasible_macs: list[float]
    hypervolume: list[float]  # after each complete trial, in completion order
    hypervolume_reference_macs: float


def front_info(records: Sequence[TrialRecord], *, target_macs: float | None,
               base_label: str = "the base") -> FrontInfo:
    done = selection.measured(records)
    merged = selection.measured(records, merge=True)
    scored = any(r.score is not None for r in done)
    front = {r.number for r in selection.pareto_front(records)}
    chosen = selection.choose_baseline(records, target_macs=target_macs) if target_macs else None
    points = []
    for r in merged:
        repeats = [x for x in done if (x.arch, x.resolution, x.epochs) == (r.arch, r.resolution, r.epochs)]
        kind = "baseline" if chosen is not None and r.number == chosen.number else (
            "front" if r.number in front else "dominated")
        sd = statistics.stdev(x.accuracy for x in repeats) if len(repeats) > 1 else None
        points.append(Point(numbers=tuple(x.number for x in repeats), arch=r.arch, accuracy=r.accuracy, sd=sd,
                            macs=float(r.macs), params=int(r.params or 0), kind=kind,
                            label=base_label if any(x.enqueued for x in repeats) else None,
                            note=f"{len(repeats)} trainings, mean" if len(repeats) > 1 else None))
    for r in records:
        if r.stopped_at is not None and r.macs is not None:
            at = halving.rung_accuracies(r.rung_accuracy).get(r.stopped_at, 0.0)
            points.append(Point(numbers=(r.number,), arch=str(r.arch), accuracy=at, sd=None, macs=float(r.macs),
                                params=int(r.params or 0), kind="stopped",
                                note=f"stopped by successive halving after {r.stopped_at} of {r.epochs} epochs"))
        elif r.infeasible is not None and not scored:  # at 0 a score study's infeasible trials would look best
            points.append(Point(numbers=(r.number,), arch=str(r.arch), accuracy=0.0, sd=None, macs=float(r.macs),
                                params=int(r.params or 0), kind="infeasible", note=r.infeasible))
    by_completion = sorted(done, key=lambda r: r.datetime_complete)
    reference = max(float(r.macs) for r in done) * 1.1 if done else 1.0
    history = selection.hypervolume_history([float(r.accuracy) for r in by_completion],
                                            [float(r.macs) for r in by_completion], max_macs=reference)
    return FrontInfo(points=points, numbers=[r.number for r in done], baseline=chosen.number if chosen else None,
                     front_numbers=sorted(front), infeasible_macs=[p.macs for p in points if p.kind == "infeasible"],
                     hypervolume=history, hypervolume_reference_macs=reference)


@dataclass(frozen=True)
class ScalingInfo:
    """What a scaling study's page shows: every triple's score, the chosen one and why."""

    scores: list[TripleScore]  # best first
    chosen: TripleScore
    target_macs: float
    phi: float
    base_macs: int

    @property
    def nominal_ratio(self) -> float:
        return 2.0**self.phi


def scaling_info(records: Sequence[TrialRecord], *, base_macs: int, phi: float) -> ScalingInfo | None:
    target = base_macs * 2.0**phi
    scores = selection.score_triples(records, target_macs=target)
    if not scores:
        return None
    return ScalingInfo(scores=scores, chosen=scores[0], target_macs=target, phi=phi, base_macs=base_macs)


def reliability(scores: Sequence[TripleScore]) -> str:
    """How much a choice among triples could be noise, in words."""
    if len(scores) < 2:
        return "Only one triple was measured."
    first, second = scores[0], scores[1]
    gap = first.reward - second.reward
    noise = [s.reward_sd for s in (first, second) if s.reward_sd is not None]
    if not noise:
        return (f"The runner-up trails by {gap:.4f} in reward, from a single training each; the seed noise was not "
                "measured (--seeds 3 retrains the best triples before one is chosen).")
    verdict = "more than" if gap > max(noise) else "within"
    return f"The runner-up trails by {gap:.4f} in reward, {verdict} the seed noise (sd {max(noise):.4f})."
