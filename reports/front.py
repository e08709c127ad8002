"""What a NAS study's Pareto plot and hypervolume chart show, computed without drawing anything.

The front, the hypervolume and the chosen baseline come from search/selection, as in the CLI.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search import selection
from search.record import TrialRecord


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
