"""One trial: params -> arch -> analytic cost -> constraint check -> build -> train -> record.

The driver side (:class:`TrialPlanner`) asks the study, checks the budget before any training and
records results; the worker side (:func:`run_trial`) only builds and trains, so it can run
in-process or on a Ray worker that never touches the storage.
"""
from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.samplers import mnas_reward
from space.arch import ArchSpec
from space.cost import Cost, cost
from space.searchspace import SearchSpace

INFEASIBLE_LIMIT = 1000  # consecutive over-budget samples before giving up


class SearchError(RuntimeError):
    """The search cannot go on (constraints no sample meets, too many failures)."""


class SetupError(ValueError):
    """A setting that names nothing usable (an unreachable cluster, say): a user error."""


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
    dataset: str
    resolution: int
    num_classes: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    label_smoothing: float
    dropout: float
    drop_path: float
    split_seed: int
    seed: int
    device: str = "auto"
    val_fraction: float = 0.2


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


def trial_seed(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number) % (2**31 - 1)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class TrialPlanner:
    """Driver-side half of a trial: asks, checks the budget, and records what workers return."""

    def __init__(self, *, study: optuna.Study, propose: Propose, budget: Budget, template: TrialSpec,
                 n_trials: int, target_macs: float, objectives: tuple[str, ...],
                 before_ask: Callable[[], bool] | None = None,
                 counts_toward: Callable[[FrozenTrial], bool] | None = None) -> None:
        self.study, self.propose, self.budget, self.template = study, propose, budget, template
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

    def next_candidate(self) -> Candidate | None:
        """A feasible trial to run, or None once the study holds (or is running) enough trials."""
        for _ in range(INFEASIBLE_LIMIT):
            complete, running = self.counts()
            if complete + running >= self.n_trials:
                return None
            if self.before_ask is not None and not self.before_ask():
                return None
            trial = self.study.ask()
            trial.set_user_attr("worker", worker_id())
            proposal = self.propose(trial)
            c = cost(proposal.arch, proposal.resolution, num_classes=self.template.num_classes)
            self._record_arch(trial, proposal, c)
            problems = self.budget.violations(c)
            if problems:
                trial.set_user_attr("infeasible", "; ".join(problems))
                self.study.tell(trial, state=TrialState.PRUNED)
                continue
            if self._surplus(trial):
                trial.set_user_attr("error", "surplus: other workers already run the remaining trials")
                self.study.tell(trial, state=TrialState.FAIL)
                return None
            spec = TrialSpec(**{**asdict(self.template), "number": trial.number, "arch": str(proposal.arch),
                                "resolution": proposal.resolution,
                                "seed": trial_seed(self.template.seed, trial.number)})
            return Candidate(trial=trial, spec=spec, cost=c)
        raise SearchError(f"{INFEASIBLE_LIMIT} samples in a row broke the budget ({self.budget}); loosen "
                          "--max-macs / --max-params or narrow the search space")

    def _surplus(self, trial: optuna.Trial) -> bool:
        """Another worker may have asked in the same instant: the later trial yields."""
        ahead = [t for t in self._trials() if t.state == TrialState.COMPLETE or t.number < trial.number]
        return len(ahead) >= self.n_trials

    def _record_arch(self, trial: optuna.Trial, proposal: Proposal, c: Cost) -> None:
        t = self.template
        record = {"arch": str(proposal.arch), "params": c.params, "macs": c.macs, "resolution": proposal.resolution,
                  "epochs": t.epochs, "dataset": t.dataset, "num_classes": t.num_classes,
                  "seed": trial_seed(t.seed, trial.number), **proposal.attrs}
        for key, value in record.items():
            trial.set_user_attr(key, value)

    def complete(self, candidate: Candidate, result: dict[str, Any]) -> list[float] | None:
        """Record a worker's result; None if another worker already declared this trial dead (and requeued it)."""
        trial = candidate.trial
        accuracy = float(result["accuracy"])
        reward = mnas_reward(accuracy, candidate.cost.macs, self.target_macs)
        values = {"accuracy": accuracy, "macs": float(candidate.cost.macs), "reward": reward}
        ordered = [values[name] for name in self.objectives]
        try:
            for key, value in {**result, "reward": reward}.items():
                trial.set_user_attr(key, value)
            self.study.tell(trial, ordered)
        except optuna.exceptions.UpdateFinishedTrialError:
            return None
        return ordered

    def fail(self, candidate: Candidate, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        try:
            candidate.trial.set_user_attr("error", message[:2000])
            self.study.tell(candidate.trial, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # already failed by another worker's recovery


_DATA_CACHE: dict[tuple, Any] = {}
_CACHE_SIZE = 4  # a scaling study trains at a few resolutions


def load_cached(spec: TrialSpec, device: Any) -> Any:
    """Datasets stay resident (on the trial's device) for the life of the process."""
    from search.data import load_dataset

    key = (spec.dataset, spec.resolution, spec.split_seed, spec.val_fraction, str(device))
    if key not in _DATA_CACHE:
        while len(_DATA_CACHE) >= _CACHE_SIZE:
            _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
        data = load_dataset(spec.dataset, resolution=spec.resolution, seed=spec.split_seed,
                            val_fraction=spec.val_fraction)
        _DATA_CACHE[key] = data.to(device)
    return _DATA_CACHE[key]


def run_trial(spec: TrialSpec) -> dict[str, Any]:
    """Worker side: build the candidate, train it, and return the record's measured fields."""
    import torch

    from models import build
    from search.train import TrainSettings, pick_device, train_and_evaluate

    device = pick_device(spec.device)
    data = load_cached(spec, device)
    torch.manual_seed(spec.seed)
    model = build(ArchSpec.parse(spec.arch), num_classes=spec.num_classes, dropout=spec.dropout,
                  drop_path=spec.drop_path)
    settings = TrainSettings(epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr,
                             weight_decay=spec.weight_decay, label_smoothing=spec.label_smoothing, seed=spec.seed)
    start = time.perf_counter()
    result = train_and_evaluate(model, data, settings, device)
    if not math.isfinite(result.loss):
        from search.train import TrainingDiverged

        raise TrainingDiverged(f"validation loss is {result.loss}")
    return {
        "accuracy": result.accuracy,
        "val_loss": result.loss,
        "train_seconds": result.train_seconds,
        "eval_seconds": time.perf_counter() - start - result.train_seconds,
        "images_per_second": result.images_per_second,
        "device": _device_name(device),
    }


def _device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"
