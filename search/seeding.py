"""Seeding a stock Optuna sampler afresh for every trial (:class:`PerTrialSeed`), so that workers sharing a
study explore instead of repeating each other."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

Sampler = optuna.samplers.BaseSampler


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
