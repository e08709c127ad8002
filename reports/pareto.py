"""Pareto fronts and hypervolume of (accuracy up, MACs down): numbers first, drawing elsewhere."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from search.samplers import mnas_reward


def pareto_mask(accuracy: Sequence[float], macs: Sequence[float]) -> list[bool]:
    """True where no other point is at least as accurate and as cheap, and strictly better in one."""
    points = list(zip(accuracy, macs))
    mask = []
    for i, (a, m) in enumerate(points):
        dominated = any(
            (b >= a and n <= m) and (b > a or n < m) for j, (b, n) in enumerate(points) if j != i
        )
        mask.append(not dominated)
    return mask


def hypervolume(accuracy: Sequence[float], macs: Sequence[float], *, max_macs: float,
                min_accuracy: float = 0.0) -> float:
    """Area dominated by the points within the box [min_accuracy, 1] x [0, max_macs], MACs normalised.

    The reference point is (min_accuracy, max_macs); a point outside the box adds nothing.
    """
    points = sorted((m / max_macs, a) for a, m in zip(accuracy, macs) if m <= max_macs and a > min_accuracy)
    area, best = 0.0, min_accuracy
    # Sweep from cheap to expensive; each point adds the strip it raises above the best so far.
    for m, a in points:
        if a > best:
            area += (a - best) * (1.0 - m)
            best = a
    return area


def hypervolume_history(accuracy: Sequence[float], macs: Sequence[float], *, max_macs: float) -> list[float]:
    """Hypervolume of the first k points, for every k (trials in completion order)."""
    return [hypervolume(accuracy[:k], macs[:k], max_macs=max_macs) for k in range(1, len(accuracy) + 1)]


@dataclass(frozen=True)
class FrontInfo:
    """What the Pareto plot of a NAS study shows, computed without drawing anything."""

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


def front_info(frame: pd.DataFrame, *, target_macs: float | None) -> FrontInfo:
    complete = frame[frame["state"] == "COMPLETE"].sort_values("number") if len(frame) else frame
    numbers = [int(n) for n in complete.get("number", [])]
    accuracy = [float(a) for a in complete.get("accuracy", [])]
    macs = [float(m) for m in complete.get("macs", [])]
    mask = pareto_mask(accuracy, macs)
    front = [n for n, keep in zip(numbers, mask) if keep]
    baseline = None
    if front and target_macs:
        scored = [(mnas_reward(a, m, target_macs), -n, n) for n, a, m, keep in zip(numbers, accuracy, macs, mask)
                  if keep]
        baseline = max(scored)[2]
    infeasible = frame[frame["infeasible"].notna()] if "infeasible" in frame else frame.iloc[0:0]
    by_completion = complete.sort_values("datetime_complete") if len(complete) else complete
    reference = max(macs) * 1.1 if macs else 1.0
    history = hypervolume_history([float(a) for a in by_completion.get("accuracy", [])],
                                  [float(m) for m in by_completion.get("macs", [])], max_macs=reference)
    return FrontInfo(numbers=numbers, accuracy=accuracy, macs=macs, on_front=mask,
                     infeasible_numbers=[int(n) for n in infeasible.get("number", [])],
                     infeasible_macs=[float(m) for m in infeasible.get("macs", [])], baseline=baseline,
                     front_numbers=front, hypervolume=history, hypervolume_reference_macs=reference)
