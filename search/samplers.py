"""Registry of search strategies; each is a stock Optuna sampler (no sampler ABC of our own), seeded afresh for
every trial (:mod:`search.seeding`) so that workers sharing a study explore instead of repeating each other."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from effnas.space.errors import UserError

if TYPE_CHECKING:  # Optuna is imported when a sampler is built, not when the registry is read (--help, config)
    from optuna.samplers import BaseSampler as Sampler


@dataclass(frozen=True)
class Strategy:
    name: str
    build: Callable[[int, int], Sampler]  # (seed, trials) -> the stock sampler
    metric_names: tuple[str, ...]
    directions: tuple[str, ...]
    about: str

    def make(self, seed: int, trials: int) -> Sampler:
        from effnas.search.seeding import PerTrialSeed

        return PerTrialSeed(lambda s: self.build(s, trials), seed)


def _nsga2(seed: int, trials: int) -> Sampler:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 3)))


def _tpe(seed: int, trials: int) -> Sampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=max(2, min(10, trials // 3)))


def _random(seed: int, trials: int) -> Sampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


PARETO = (("accuracy", "macs"), ("maximize", "minimize"))
SAMPLERS: dict[str, Strategy] = {
    "nsga2": Strategy("nsga2", _nsga2, *PARETO, "NSGA-II on (accuracy, MACs)"),
    "tpe": Strategy("tpe", _tpe, *PARETO, "multivariate multi-objective TPE on (accuracy, MACs)"),
    "random": Strategy("random", _random, *PARETO, "uniform random sampling"),
    "mnas": Strategy("mnas", _tpe, ("reward",), ("maximize",),
                     "TPE on MnasNet's reward ACC x (MACs/T)^-0.07"),
}


def get(name: str) -> Strategy:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise UserError(f"unknown sampler {name!r}; available: {', '.join(SAMPLERS)}") from None
