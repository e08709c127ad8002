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

from effnas.search import halving, lifecycle, record
from effnas.search.halving import Rungs
from effnas.search.selection import mnas_reward
from effnas.search.settings import TrainSettings
from effnas.space.arch import ArchSpec
from effnas.space.checks import is_int
from effnas.space.cost import Cost, activations, cost
from effnas.space.errors import SearchError
from effnas.space.searchspace import SearchSpace

SKIP_LIMIT = 1000  # consecutive over-budget or already-measured samples before giving up


@dataclass(frozen=True)
class Budget:
    max_macs: int | None = None
    max_params: int | None = None
    memory: int | None = None  # bytes a trial may take on its device (weights, optimizer, activations)
    batch_size: int = 1  # the training batch whose activations count against ``memory``

    def violations(self, arch: Any, resolution: int, c: Cost) -> list[str]:
        """Why ``arch`` at ``resolution`` (costing ``c``) breaks the budget; empty when it fits."""
        found = []
        if self.max_macs is not None and c.macs > self.max_macs:
            found.append(f"macs {c.macs} > max {self.max_macs}")
        if self.max_params is not None and c.params > self.max_params:
            found.append(f"params {c.params} > max {self.max_params}")
        if self.memory is not None:
            need = training_memory(arch, resolution, c, batch_size=self.batch_size)
            if need > self.memory:
                found.append(f"training needs ~{need / 2**30:,.1f} GiB (weights, gradients, AdamW state and the "
                             f"activations of a batch) and the device has {self.memory / 2**30:,.1f} GiB")
        return found


def training_memory(arch: Any, resolution: int, c: Cost, *, batch_size: int) -> int:
    """Bytes a training step needs, from the analytic cost: fp32 weights, gradients and AdamW's two moments
    (16 bytes a parameter) and the fp32 activations a batch keeps for the backward pass."""
    return 16 * c.params + 4 * batch_size * activations(arch, resolution)


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
    judge_at: tuple[int, ...] = ()  # successive halving: epochs after which the trial is judged

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialSpec:
        return cls(**{**values, "train": TrainSettings.from_dict(values["train"]),
                      "judge_at": tuple(values.get("judge_at", ()))})


def score_objective(evaluator: str) -> str:
    """The study objective a zero-cost evaluator's score is (``synflow_score``); ``accuracy`` for training."""
    return "accuracy" if evaluator == "train" else f"{evaluator}_score"


def trial_seed(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number) % (2**31 - 1)


@dataclass(frozen=True)
class TrialTemplate:
    """What every trial of a study shares; the planner adds the architecture, resolution and seed."""

    dataset: str
    num_classes: int
    seed: int
    train: TrainSettings
    rungs: Rungs | None = None  # successive halving; None: every trial trains train.epochs

    def spec(self, *, number: int, arch: ArchSpec, resolution: int, seed: int) -> TrialSpec:
        return TrialSpec(number=number, arch=str(arch), resolution=resolution, dataset=self.dataset,
                         num_classes=self.num_classes, split_seed=self.seed, seed=seed,
                         train=self.train, judge_at=self.rungs.judged_at() if self.rungs else ())


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
    rung_accuracy: dict[int, float] = field(default_factory=dict)  # what it recorded where it was judged
    latency_ms: float | None = None


LatencyOf = Callable[[ArchSpec, int, int], float]  # (arch, resolution, num_classes) -> median ms


class TrialPlanner:
    """Driver-side half of a trial: asks, checks the budget, and records what workers return."""

    def __init__(self, *, study: optuna.Study, propose: Propose, budget: Budget, template: TrialTemplate,
                 n_trials: int, target_macs: float, objectives: tuple[str, ...],
                 before_ask: Callable[[], bool] | None = None,
                 counts_toward: Callable[[FrozenTrial], bool] | None = None, reuse_duplicates: bool = False,
                 latency_of: LatencyOf | None = None) -> None:
        self.study, self.propose, self.budget, self.template = study, propose, budget, template
        self.latency_of = latency_of  # measures each feasible candidate before it trains (latency_ms objective)
        self.n_trials, self.target_macs, self.objectives = n_trials, target_macs, objectives
        self.before_ask = before_ask  # may queue the next trial's params; False: nothing left to ask
        self.counts_toward = counts_toward  # which trials of the study count toward n_trials (default: all)
        # an architecture the study already measured (same arch, resolution and epochs) is never trained
        # again: a NAS study resamples; a study that needs every proposal's result (scaling) reuses it
        self.reuse_duplicates = reuse_duplicates

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
        for _ in range(SKIP_LIMIT):
            complete, running = self.counts()
            if complete + running >= self.n_trials:
                return None
            if self.before_ask is not None and not self.before_ask():
                return None
            trial = self.study.ask()
            record.write(trial, {"worker": lifecycle.worker_id()})
            with lifecycle.params_in_one_transaction(trial):
                proposal = self.propose(trial)
            c = cost(proposal.arch, proposal.resolution, num_classes=self.template.num_classes)
            seed = self._seed(trial)
            self._record_arch(trial, proposal, c, seed)
            problems = self.budget.violations(proposal.arch, proposal.resolution, c)
            if problems:
                record.write(trial, {"infeasible": "; ".join(problems)})
                self.study.tell(trial, state=TrialState.PRUNED)
                continue
            twin = self._twin(trial, proposal)
            if twin is not None:
                self._record_duplicate(trial, twin)
                continue
            if self._surplus(trial):
                record.write(trial, {"error": "surplus: other workers already run the remaining trials"})
                self.study.tell(trial, state=TrialState.FAIL)
                return None
            spec = self.template.spec(number=trial.number, arch=proposal.arch, resolution=proposal.resolution,
                                      seed=seed)
            latency = None
            if self.latency_of is not None:
                latency = self.latency_of(proposal.arch, proposal.resolution, self.template.num_classes)
                record.write(trial, {"latency_ms": latency})
            return Candidate(trial=trial, spec=spec, cost=c, latency_ms=latency)
        raise SearchError(f"{SKIP_LIMIT} samples in a row broke the budget ({self.budget}) or were architectures "
                          "the study had already measured; loosen --max-macs / --max-params or widen the search "
                          "space")

    def _twin(self, trial: optuna.Trial, proposal: Proposal) -> FrozenTrial | None:
        """A trial that measured (or, asked earlier, is measuring) the same architecture at the same budget.

        Every worker records the architecture before it looks for a twin, so of two workers that propose the
        same one at the same instant, the later trial always sees the earlier and yields.
        """
        key = (str(proposal.arch), proposal.resolution, self.template.train.epochs, proposal.attrs.get("replicate"))
        states = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED)
        for other in self.study.get_trials(deepcopy=False, states=states):
            a = other.user_attrs
            if other.number == trial.number or (a.get("arch"), a.get("resolution"), a.get("epochs"),
                                                a.get("replicate")) != key:
                continue
            if other.state == TrialState.PRUNED and a.get("stopped_at") is None:
                continue  # over the budget, or a duplicate itself: nothing was measured
            if other.state != TrialState.RUNNING or (other.number < trial.number and not self.reuse_duplicates):
                return other
        return None

    def _record_duplicate(self, trial: optuna.Trial, twin: FrozenTrial) -> None:
        if self.reuse_duplicates and twin.state == TrialState.COMPLETE:  # its measurement stands for this one
            measured = {k: twin.user_attrs[k] for k in record.MEASURED + ("reward",) if k in twin.user_attrs}
            record.write(trial, {**measured, "duplicate_of": twin.number})
            self.study.tell(trial, list(twin.values))
        else:  # not trained: the sampler proposes another
            record.write(trial, {"duplicate_of": twin.number})
            self.study.tell(trial, state=TrialState.PRUNED)

    def _surplus(self, trial: optuna.Trial) -> bool:
        """Another worker may have asked in the same instant: the later trial yields."""
        ahead = [t for t in self._trials() if t.state == TrialState.COMPLETE or t.number < trial.number]
        return len(ahead) >= self.n_trials

    def _seed(self, trial: optuna.Trial) -> int:
        """The training seed: a retry's is the seed of the trial it retries (queued with it), so a resumed study
        trains what an uninterrupted one would; any other trial's comes from its number."""
        inherited = trial.user_attrs.get("seed") if "retry_of" in trial.user_attrs else None
        if is_int(inherited) and 0 <= inherited < 2**31 - 1:
            return inherited
        return trial_seed(self.template.seed, trial.number)

    def _record_arch(self, trial: optuna.Trial, proposal: Proposal, c: Cost, seed: int) -> None:
        t = self.template
        record.write(trial, {
            "arch": str(proposal.arch), "params": c.params, "macs": c.macs, "resolution": proposal.resolution,
            "dims": proposal.arch.dims,
            "epochs": t.train.epochs, "dataset": t.dataset, "num_classes": t.num_classes,
            "seed": seed, "settings": json.dumps(t.train.to_dict(), sort_keys=True),
            **proposal.attrs,
        })

    def judge(self, candidate: Candidate, epochs: int, accuracy: float) -> bool:
        """Successive halving: record the trial's accuracy at a rung and say whether it goes on."""
        candidate.rung_accuracy[epochs] = accuracy
        record.write(candidate.trial, {"rung_accuracy": halving.encode(candidate.rung_accuracy)})
        recorded = []
        for other in self.study.get_trials(deepcopy=False):
            if other.number != candidate.trial.number and other.user_attrs.get("macs") is not None:
                at = halving.rung_accuracies(other.user_attrs.get("rung_accuracy")).get(epochs)
                if at is not None:
                    recorded.append((at, float(other.user_attrs["macs"])))
        return halving.goes_on(recorded, (accuracy, float(candidate.cost.macs)), eta=self.template.rungs.eta)

    def stop(self, candidate: Candidate, result: dict[str, Any]) -> None:
        """Record a trial that successive halving stopped at a rung (PRUNED: it never reached the full budget)."""
        try:
            record.write(candidate.trial, {**result, "rung_accuracy": halving.encode(candidate.rung_accuracy)})
            self.study.tell(candidate.trial, state=TrialState.PRUNED)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass

    def complete(self, candidate: Candidate, result: dict[str, Any]) -> list[float] | None:
        """Record a worker's result; None if another worker already declared this trial dead (and requeued it)."""
        if result.get("stopped_at") is not None:
            self.stop(candidate, result)
            return None
        trial = candidate.trial
        values = {"macs": float(candidate.cost.macs), "latency_ms": candidate.latency_ms}
        if "score" in result:  # a zero-cost evaluator's: its objective is named after it, and there is no reward
            values[score_objective(result["evaluator"])] = float(result["score"])
            measured = dict(result)
        else:
            accuracy = float(result["accuracy"])
            values["accuracy"] = accuracy
            values["reward"] = mnas_reward(accuracy, candidate.cost.macs, self.target_macs)
            measured = {**result, "reward": values["reward"]}
        missing = [name for name in self.objectives if name not in values]
        if missing:
            raise SearchError(f"the worker's result has no {', '.join(missing)} (it measured "
                              f"{', '.join(sorted(result))}): the study's objectives and its evaluator disagree")
        ordered = [values[name] for name in self.objectives]
        try:
            record.write(trial, measured)
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
