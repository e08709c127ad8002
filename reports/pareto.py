"""Pareto fronts and hypervolume of (accuracy up, MACs down): numbers first, drawing elsewhere."""
from __future__ import annotations

from collections.abc import Sequence


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
