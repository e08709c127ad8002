"""Registry of search strategies; each is a stock Optuna sampler (no sampler ABC of our own)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna

from space.errors import UserError


@dataclass(frozen=True)
class Strategy:
    name: str
    make: Callable[[int, int], optuna.samplers.BaseSampler]  # (seed, trials) -> sampler
    metric_names: tuple[str, ...]
    directions: tuple[str, ...]
    about: str


def _nsga2(seed: int, trials: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 3)))


def _tpe(seed: int, trials: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=max(2, min(10, trials // 3)))


def _random(seed: int, trials: int) -> optuna.samplers.BaseSampler:
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
