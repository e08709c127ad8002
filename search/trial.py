"""One trial: params -> arch -> analytic cost -> budget check -> (worker trains) -> record.

The driver side (:class:`TrialPlanner`) asks the study, checks the budget before any training and
records results; the worker side (:func:`search.worker.run_trial`) only builds and trains, so it can
run in-process or on a Ray worker that never touches the storage.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import lifecycle, record
from search.selection import mnas_reward
from search.settings import TrainSettings
from space.arch import ArchSpec
from space.cost import Cost, cost
from space.errors import SearchError
from space.searchspace import SearchSpace

INFEASIBLE_LIMIT = 1000  # consecutive over-budget samples before giving up


@dataclass(frozen=True)
class Budget:
    max_macs: int | None = None
    max_params: int | None = None

    def violations(self, c: Cost) -> list[str]:
        found = []
        if self.max_macs is not None and c.macs > self.max_macs:
            found.append(f"macs {c.macs} > max {self.max_macs}")
        if self.max_params is not None and c.params > self.max_params:
            found.append(f"params {c.params} > max {self.max_params}")
        return found


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to train one candidate (plain data, picklable)."""

    number: int
    arch: str
    resolution: int
    dataset: str
    num_classes: int
    split_seed: int
    seed: int
    train: TrainSettings

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialSpec:
        return cls(**{**values, "train": TrainSettings(**values["train"])})


def trial_seed(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number) % (2**31 - 1)


@dataclass(frozen=True)
class TrialTemplate:
    """What every trial of a study shares; the planner adds the architecture, resolution and seed."""

    dataset: str
    num_classes: int
    seed: int
    train: TrainSettings

    def spec(self, *, number: int, arch: ArchSpec, resolution: int) -> TrialSpec:
        return TrialSpec(number=number, arch=str(arch), resolution=resolution, dataset=self.dataset,
                         num_classes=self.num_classes, split_seed=self.seed, seed=trial_seed(self.seed, number),
                         train=self.train)


@dataclass(frozen=True)
class Proposal:
    """What a study proposes for one trial: an architecture at a resolution, plus record fields."""

    arch: ArchSpec
    resolution: int
    attrs: dict[str, Any] = field(default_factory=dict)


Propose = Callable[[optuna.Trial], Proposal]


def space_proposer(space: SearchSpace, resolution: int) -> Propose:
    """The NAS study's proposals: a point of the search space at the study's fixed resolution."""
    return lambda trial: Proposal(arch=space.suggest(trial), resolution=resolution)


@dataclass
class Candidate:
    trial: optuna.Trial
    spec: TrialSpec
    cost: Cost
    latency_ms: float | None = None


LatencyOf = Callable[[ArchSpec, int, int], float]  # (arch, resolution, num_classes) -> median ms


class TrialPlanner:
    """Driver-side half of a trial: asks, checks the budget, and records what workers return."""

    def __init__(self, *, study: optuna.Study, propose: Propose, budget: Budget, template: TrialTemplate,
                 n_trials: int, target_macs: float, objectives: tuple[str, ...],
                 before_ask: Callable[[], bool] | None = None,
                 counts_toward: Callable[[FrozenTrial], bool] | None = None,
                 latency_of: LatencyOf | None = None) -> None:
        self.study, self.propose, self.budget, self.template = study, propose, budget, template
        self.latency_of = latency_of  # measures each feasible candidate before it trains (latency_ms objective)
        self.n_trials, self.target_macs, self.objectives = n_trials, target_macs, objectives
        self.before_ask = before_ask  # may queue the next trial's params; False: nothing left to ask
        self.counts_toward = counts_toward  # which trials of the study count toward n_trials (default: all)

    def _trials(self) -> list[FrozenTrial]:
        trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        return [t for t in trials if self.counts_toward is None or self.counts_toward(t)]

    def counts(self) -> tuple[int, int]:
        trials = self._trials()
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        return complete, len(trials) - complete

    def complete_trials(self) -> list[FrozenTrial]:
        return [t for t in self._trials() if t.state == TrialState.COMPLETE]

    def done(self) -> bool:
        return self.counts()[0] >= self.n_trials

    def recover(self) -> list[int]:
        """Fail and requeue the trials of workers that died (see :mod:`search.lifecycle`)."""
        return lifecycle.recover_dead_trials(self.study)

    def next_candidate(self) -> Candidate | None:
        """A feasible trial to run, or None once the study holds (or is running) enough trials."""
        for _ in range(INFEASIBLE_LIMIT):
            complete, running = self.counts()
            if complete + running >= self.n_trials:
                return None
            if self.before_ask is not None and not self.before_ask():
                return None
            trial = self.study.ask()
            record.write(trial, {"worker": lifecycle.worker_id()})
            proposal = self.propose(trial)
            c = cost(proposal.arch, proposal.resolution, num_classes=self.template.num_classes)
            self._record_arch(trial, proposal, c)
            problems = self.budget.violations(c)
            if problems:
                record.write(trial, {"infeasible": "; ".join(problems)})
                self.study.tell(trial, state=TrialState.PRUNED)
                continue
            if self._surplus(trial):
                record.write(trial, {"error": "surplus: other workers already run the remaining trials"})
                self.study.tell(trial, state=TrialState.FAIL)
                return None
            spec = self.template.spec(number=trial.number, arch=proposal.arch, resolution=proposal.resolution)
            latency = None
            if self.latency_of is not None:
                latency = self.latency_of(proposal.arch, proposal.resolution, self.template.num_classes)
                record.write(trial, {"latency_ms": latency})
            return Candidate(trial=trial, spec=spec, cost=c, latency_ms=latency)
        raise SearchError(f"{INFEASIBLE_LIMIT} samples in a row broke the budget ({self.budget}); loosen "
                          "--max-macs / --max-params or narrow the search space")

    def _surplus(self, trial: optuna.Trial) -> bool:
        """Another worker may have asked in the same instant: the later trial yields."""
        ahead = [t for t in self._trials() if t.state == TrialState.COMPLETE or t.number < trial.number]
        return len(ahead) >= self.n_trials

    def _record_arch(self, trial: optuna.Trial, proposal: Proposal, c: Cost) -> None:
        t = self.template
        record.write(trial, {
            "arch": str(proposal.arch), "params": c.params, "macs": c.macs, "resolution": proposal.resolution,
            "epochs": t.train.epochs, "dataset": t.dataset, "num_classes": t.num_classes,
            "seed": trial_seed(t.seed, trial.number), "settings": json.dumps(t.train.to_dict(), sort_keys=True),
            **proposal.attrs,
        })

    def complete(self, candidate: Candidate, result: dict[str, Any]) -> list[float] | None:
        """Record a worker's result; None if another worker already declared this trial dead (and requeued it)."""
        trial = candidate.trial
        accuracy = float(result["accuracy"])
        reward = mnas_reward(accuracy, candidate.cost.macs, self.target_macs)
        values = {"accuracy": accuracy, "macs": float(candidate.cost.macs), "reward": reward,
                  "latency_ms": candidate.latency_ms}
        ordered = [values[name] for name in self.objectives]
        try:
            record.write(trial, {**result, "reward": reward})
            self.study.tell(trial, ordered)
        except optuna.exceptions.UpdateFinishedTrialError:
            return None
        return ordered

    def fail(self, candidate: Candidate, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        try:
            record.write(candidate.trial, {"error": message[:2000]})
            self.study.tell(candidate.trial, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # already failed by another worker's recovery
