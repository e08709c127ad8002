"""Every choice effnas makes from measured trials, in one place: the Pareto front, its hypervolume,
MnasNet's reward, the chosen baseline, the best triple and the most accurate trial.

The CLI's summary, the progress line, the scaling study and the reports all call these functions
on trial records (:mod:`search.record`), so they cannot disagree.
"""
from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from effnas.search.record import TrialRecord

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


def measured(records: Sequence[TrialRecord], *, merge: bool = False) -> list[TrialRecord]:
    """Complete trials with an accuracy and a cost, in trial-number order.

    With ``merge``, trials that measured the same architecture at the same resolution and budget (an old
    study, or one that allowed repeats) are one record: the first, with their mean accuracy.
    """
    done = sorted((quality(r) for r in records if r.state == "COMPLETE" and r.macs is not None
                   and (r.accuracy is not None or r.score is not None)), key=lambda r: r.number)
    if not merge:
        return done
    groups: dict[tuple, list[TrialRecord]] = {}
    for r in done:
        key = (r.arch, r.resolution, r.epochs, r.replicate) if r.arch is not None else (r.number,)
        groups.setdefault(key, []).append(r)
    return [g[0] if len(g) == 1 else dataclasses.replace(g[0], accuracy=statistics.fmean(x.accuracy for x in g))
            for g in groups.values()]


def quality(r: TrialRecord) -> TrialRecord:
    """The record with its quality objective in ``accuracy``: a trained trial's accuracy, or in a study of a
    zero-cost ``--evaluator`` the trial's score (larger is expected better), which every choice here -- the
    front, the baseline, confirm's candidates -- then ranks by, as it ranks by a short training's accuracy."""
    return r if r.accuracy is not None or r.score is None else dataclasses.replace(r, accuracy=r.score)


def pareto_front(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The non-dominated complete trials on (accuracy up, MACs down), cheapest first (repeats merged)."""
    done = measured(records, merge=True)
    mask = pareto_mask([r.accuracy for r in done], [r.macs for r in done])
    return sorted((r for r, keep in zip(done, mask) if keep), key=lambda r: r.macs)


def choose_baseline(records: Sequence[TrialRecord], *, target_macs: float) -> TrialRecord | None:
    """The Pareto trial with the highest MnasNet reward at ``target_macs``; ties go to the earlier trial.

    In a zero-cost study the reward is taken of each front trial's score rank among the study's trials, scaled
    to (0, 1] (a score has no accuracy's scale: jacob_cov is negative, synflow spans orders of magnitude, and the
    reward of a raw score would favour the costliest network or ignore the MACs)."""
    front = pareto_front(records)
    if not front or not target_macs:
        return None
    if any(r.score is not None and r.accuracy is None for r in records):
        scores = sorted(r.accuracy for r in measured(records, merge=True))
        value = {id(r): (1 + sum(s < r.accuracy for s in scores)) / len(scores) for r in front}
        return max(front, key=lambda r: (mnas_reward(value[id(r)], r.macs, target_macs), -r.number))
    return max(front, key=lambda r: (mnas_reward(r.accuracy, r.macs, target_macs), -r.number))


def most_accurate(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The highest validation accuracy; ties go to fewer MACs, then the earlier trial (repeats merged)."""
    done = measured(records, merge=True)
    return max(done, key=lambda r: (r.accuracy, -r.macs, -r.number)) if done else None


@dataclass(frozen=True)
class TripleScore:
    """A triple of a scaling study's grid, over every training of it (one per seed)."""

    alpha: float
    beta: float
    gamma: float
    numbers: tuple[int, ...]
    accuracy: float  # mean over its trainings
    accuracy_sd: float | None  # None with a single training
    reward: float  # mean MnasNet reward at the nominal target
    reward_sd: float | None
    macs: int
    macs_ratio: float  # real, after rounding

    @property
    def n(self) -> int:
        return len(self.numbers)


def score_triples(records: Sequence[TrialRecord], *, target_macs: float) -> list[TripleScore]:
    """Every measured triple of a scaling grid, best first.

    A triple is judged at its real cost: by MnasNet's reward at the nominal target, ACC x (real MACs /
    T)^-0.07 with T = 2^phi x the baseline's MACs, so a triple that rounding made costlier than the others
    pays for it (2.39x against a 2x target: -1.2 %) and a cheaper one gains. A triple trained with several
    seeds is scored by its mean. Ties go to fewer MACs, then the earlier trial.
    """
    groups: dict[tuple[float, float, float], list[TrialRecord]] = {}
    for r in measured([r for r in records if r.role in (None, "grid") and r.alpha is not None]):
        groups.setdefault((r.alpha, r.beta, r.gamma), []).append(r)
    scores = []
    for (alpha, beta, gamma), group in groups.items():
        accuracy = [r.accuracy for r in group]
        reward = [mnas_reward(r.accuracy, r.macs, target_macs) for r in group]
        scores.append(TripleScore(alpha=alpha, beta=beta, gamma=gamma, numbers=tuple(r.number for r in group),
                                  accuracy=statistics.fmean(accuracy), accuracy_sd=_sd(accuracy),
                                  reward=statistics.fmean(reward), reward_sd=_sd(reward), macs=group[0].macs,
                                  macs_ratio=group[0].macs_ratio))
    return sorted(scores, key=lambda s: (-s.reward, s.macs, s.numbers[0]))


def choose_triple(records: Sequence[TrialRecord], *, target_macs: float) -> TripleScore | None:
    """The chosen triple of a scaling grid (see :func:`score_triples`)."""
    scores = score_triples(records, target_macs=target_macs)
    return scores[0] if scores else None


def _sd(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


@dataclass(frozen=True)
class Fidelity:
    """How well a cheap proxy (a study's short training) ranks architectures as a longer training does."""

    tau: float | None  # Kendall's tau between the proxy accuracy and the confirmed mean
    p_value: float | None
    n: int  # architectures with both
    seed_noise: float | None  # pooled sd of an architecture's accuracy over seeds
    spread: float | None  # sd of the confirmed means across architectures

    def warnings(self) -> list[str]:
        found = []
        if self.tau is not None and self.tau < 0.5:
            found.append(f"the proxy ranks architectures poorly (Kendall tau {self.tau:.2f} < 0.5): its front may be "
                         "mostly noise")
        if self.seed_noise is not None and self.spread is not None and self.seed_noise > self.spread:
            found.append(f"seed noise (sd {self.seed_noise:.4f}) is larger than the spread between architectures "
                         f"(sd {self.spread:.4f}): one training per architecture cannot rank them")
        return found


def proxy_fidelity(proxy: Sequence[float], confirmed: Sequence[Sequence[float]]) -> Fidelity:
    """``proxy[i]``: architecture i's accuracy in the study; ``confirmed[i]``: its accuracies at the longer budget,
    one per seed. Kendall's tau (with its p-value) needs two architectures; the noise needs two seeds."""
    from scipy.stats import kendalltau

    means = [statistics.fmean(c) for c in confirmed]
    tau = p_value = None
    if len(proxy) >= 2 and len(set(proxy)) > 1 and len(set(means)) > 1:
        result = kendalltau(proxy, means)
        tau, p_value = float(result.statistic), float(result.pvalue)
    variances = [statistics.variance(c) for c in confirmed if len(c) > 1]
    noise = statistics.fmean(variances) ** 0.5 if variances else None
    spread = statistics.stdev(means) if len(means) > 1 else None
    return Fidelity(tau=tau, p_value=p_value, n=len(proxy), seed_noise=noise, spread=spread)
