"""What the pages show, computed without drawing anything (optuna.visualization's split): the numbers come
from search/selection, as in the CLI, and tests check them without a browser."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search import selection
from search.record import TrialRecord
from search.selection import TripleScore


@dataclass(frozen=True)
class FrontInfo:
    numbers: list[int]
    accuracy: list[float]
    macs: list[float]
    on_front: list[bool]
    infeasible_numbers: list[int]
    infeasible_macs: list[float]
    baseline: int | None
    front_numbers: list[int]
    hypervolume: list[float]  # after each complete trial, in completion order
    hypervolume_reference_macs: float


def front_info(records: Sequence[TrialRecord], *, target_macs: float | None) -> FrontInfo:
    done = selection.measured(records)
    numbers = [r.number for r in done]
    accuracy = [float(r.accuracy) for r in done]
    macs = [float(r.macs) for r in done]
    front = {r.number for r in selection.pareto_front(done)}
    chosen = selection.choose_baseline(done, target_macs=target_macs) if target_macs else None
    infeasible = [r for r in records if r.infeasible is not None]
    by_completion = sorted(done, key=lambda r: r.datetime_complete)
    reference = max(macs) * 1.1 if macs else 1.0
    history = selection.hypervolume_history([float(r.accuracy) for r in by_completion],
                                            [float(r.macs) for r in by_completion], max_macs=reference)
    return FrontInfo(numbers=numbers, accuracy=accuracy, macs=macs, on_front=[n in front for n in numbers],
                     infeasible_numbers=[r.number for r in infeasible],
                     infeasible_macs=[float(r.macs) for r in infeasible],
                     baseline=chosen.number if chosen else None,
                     front_numbers=[n for n in numbers if n in front], hypervolume=history,
                     hypervolume_reference_macs=reference)


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
