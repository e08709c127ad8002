"""Multi-fidelity, multi-objective successive halving (asynchronous, as ASHA and MO-ASHA).

A trial trains with the learning-rate schedule of the top rung and stops at each lower rung to be
judged: it goes on only if it is in the top 1/eta of every result recorded at that rung, ranked by
non-dominated sorting on (accuracy at the rung, MACs). MACs are known before training, so a cheap model
is never stopped by an expensive one's accuracy: it can only be dominated by models at least as cheap.
Within a front, points are ordered to spread along it (an epsilon-net, seeded by the most accurate), so
the top of a large front is not all one corner of it. Optuna forbids ``trial.report`` in multi-objective
studies, so the accuracies at each rung are recorded as a user attribute (``rung_accuracy``).
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from effnas.search.settings import MAX_EPOCHS
from effnas.space.checks import within
from effnas.space.errors import UserError


@dataclass(frozen=True)
class Rungs:
    epochs: tuple[int, ...]  # increasing; the last is the full budget
    eta: float = 3.0

    def __post_init__(self) -> None:
        e = self.epochs
        if not e or any(not within(x, 1, MAX_EPOCHS, integer=True) for x in e):
            raise UserError(f"rungs must be epoch counts from 1 to {MAX_EPOCHS:,}, got {list(e)}")
        if len(e) < 2:
            raise UserError(f"successive halving needs two rungs or more (e.g. 1,3), got {list(e)}; for one "
                            "budget give --epochs")
        if list(e) != sorted(set(e)):
            raise UserError(f"rungs must increase, got {list(e)}")
        if not (self.eta > 1 and math.isfinite(self.eta)):
            raise UserError(f"eta must be a number > 1, got {self.eta}")

    @property
    def top(self) -> int:
        return self.epochs[-1]

    @property
    def enabled(self) -> bool:
        return len(self.epochs) > 1

    def judged_at(self) -> tuple[int, ...]:
        """The epochs after which a trial is judged (every rung but the last)."""
        return self.epochs[:-1]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` dominates ``b``: no worse in every objective, better in one (objectives are maximised)."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def nondominated_order(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of (accuracy, MACs) points, best first: front by front, each front spread out."""
    objectives = [(a, -m) for a, m in points]  # maximise both
    remaining = list(range(len(points)))
    order: list[int] = []
    while remaining:
        front = [i for i in remaining if not any(dominates(objectives[j], objectives[i]) for j in remaining)]
        order += _spread(front, objectives)
        remaining = [i for i in remaining if i not in front]
    return order


def _spread(front: list[int], objectives: list[tuple[float, float]]) -> list[int]:
    """The front's points from the most accurate on, each next the farthest from those already taken."""
    if len(front) <= 2:
        return sorted(front, key=lambda i: (-objectives[i][0], objectives[i][1], i))
    low = [min(objectives[i][k] for i in front) for k in (0, 1)]
    span = [max(objectives[i][k] for i in front) - low[k] or 1.0 for k in (0, 1)]
    unit = {i: tuple((objectives[i][k] - low[k]) / span[k] for k in (0, 1)) for i in front}
    taken = [max(front, key=lambda i: (objectives[i][0], objectives[i][1], -i))]
    while len(taken) < len(front):
        rest = [i for i in front if i not in taken]
        taken.append(max(rest, key=lambda i: (min(math.dist(unit[i], unit[t]) for t in taken), -i)))
    return taken


def goes_on(recorded: Sequence[tuple[float, float]], new: tuple[float, float], *, eta: float) -> bool:
    """Does a trial that reached a rung with ``new`` = (accuracy, MACs) go on, given what others recorded there?

    The first result at a rung always goes on; afterwards, a result goes on if its place in the
    non-dominated order of all results at the rung lies within the top 1/eta.
    """
    points = [*recorded, new]
    place = nondominated_order(points).index(len(points) - 1)
    return place / len(points) <= 1.0 / eta


def rung_accuracies(value: str | None) -> dict[int, float]:
    """A trial's ``rung_accuracy`` attribute: epochs -> validation accuracy at that rung."""
    return {int(k): float(v) for k, v in json.loads(value).items()} if value else {}


def encode(accuracies: dict[int, float]) -> str:
    return json.dumps({str(k): v for k, v in sorted(accuracies.items())})
