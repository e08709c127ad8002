"""Registry of search strategies; each is a stock Optuna sampler (no sampler ABC of our own), seeded
afresh for every trial so that workers sharing a study explore instead of repeating each other."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from space.errors import UserError

Sampler = optuna.samplers.BaseSampler


@dataclass(frozen=True)
class Strategy:
    name: str
    build: Callable[[int, int], Sampler]  # (seed, trials) -> the stock sampler
    metric_names: tuple[str, ...]
    directions: tuple[str, ...]
    about: str

    def make(self, seed: int, trials: int) -> Sampler:
        return PerTrialSeed(lambda s: self.build(s, trials), seed)


class PerTrialSeed(Sampler):
    """A stock sampler seeded afresh for every trial from (study seed, trial number).

    Every worker of a study seeds its sampler alike, so with one fixed seed parallel workers draw the
    same proposals. Trial numbers are unique across workers: seeding by number makes workers draw
    differently, while one worker alone draws the same sequence on every run. The stock samplers keep
    what they learn in the storage (NSGA-II's generations and parents, TPE's observations), not in the
    object, so a fresh object per trial loses nothing.
    """

    def __init__(self, build: Callable[[int], Sampler], seed: int) -> None:
        self.build, self.seed = build, seed
        self.recent: dict[int, Sampler] = {}

    def for_trial(self, number: int) -> Sampler:
        sampler = self.recent.get(number)
        if sampler is None:
            if len(self.recent) >= 64:  # trials in flight on Ray workers are told out of order
                self.recent.pop(next(iter(self.recent)))
            sampler = self.recent[number] = self.build((self.seed * 2_654_435_761 + number * 40_503) % 2**32)
        return sampler

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.for_trial(trial.number).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.for_trial(trial.number).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.for_trial(trial.number).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.for_trial(trial.number).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.for_trial(trial.number).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.recent.clear()


def _nsga2(seed: int, trials: int) -> Sampler:
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 3)))


def _tpe(seed: int, trials: int) -> Sampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=max(2, min(10, trials // 3)))


def _random(seed: int, trials: int) -> Sampler:
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
