"""Every choice effnas makes from measured trials, in one place: the Pareto front, its hypervolume,
MnasNet's reward, the chosen baseline, the best triple and the most accurate trial.

The CLI's summary, the progress line, the scaling study and the reports all call these functions
on trial records (:mod:`search.record`), so they cannot disagree.
"""
from __future__ import annotations

from collections.abc import Sequence

from search.record import TrialRecord

MNAS_EXPONENT = -0.07


def mnas_reward(accuracy: float, macs: float, target_macs: float, *, exponent: float = MNAS_EXPONENT) -> float:
    """MnasNet's soft-constrained reward ACC(m) x (MACs(m) / T)^w, w = -0.07."""
    return accuracy * (macs / target_macs) ** exponent


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


def measured(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Complete trials with an accuracy and a cost, in trial-number order."""
    done = [r for r in records if r.state == "COMPLETE" and r.accuracy is not None and r.macs is not None]
    return sorted(done, key=lambda r: r.number)


def pareto_front(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The non-dominated complete trials on (accuracy up, MACs down), cheapest first."""
    done = measured(records)
    mask = pareto_mask([r.accuracy for r in done], [r.macs for r in done])
    return sorted((r for r, keep in zip(done, mask) if keep), key=lambda r: r.macs)


def choose_baseline(records: Sequence[TrialRecord], *, target_macs: float) -> TrialRecord | None:
    """The Pareto trial with the highest MnasNet reward at ``target_macs``; ties go to the earlier trial."""
    front = pareto_front(records)
    if not front or not target_macs:
        return None
    return max(front, key=lambda r: (mnas_reward(r.accuracy, r.macs, target_macs), -r.number))


def most_accurate(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The highest validation accuracy; ties go to fewer MACs, then the earlier trial."""
    done = measured(records)
    return max(done, key=lambda r: (r.accuracy, -r.macs, -r.number)) if done else None


def best_triple(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The grid trial of a scaling study with the highest accuracy (ties: fewer MACs, earlier trial)."""
    return most_accurate([r for r in records if r.role in (None, "grid") and r.alpha is not None])
