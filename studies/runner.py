"""One runner for every study kind: check the dataset and the executor on the driver before anything is
written, open the storage, drive the executor with a progress line, and on Ctrl-C (wherever it lands)
fail and requeue the trials this process holds."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from effnas.search import lifecycle, record, selection
from effnas.search.data.kinds import check_spec, dims_of
from effnas.search.executors import make_executor
from effnas.search.trial import Budget, Candidate, Proposal, TrialPlanner, TrialTemplate
from effnas.search.utils.memory import device_memory
from effnas.space.arch import ArchSpec
from effnas.space.cost import cost
from effnas.space.errors import Terminated, UserError
from effnas.studies.config import DEFAULT_STORAGE, StudyConfig, with_dims
from effnas.studies.progress import Progress
from effnas.studies.storage import check_storage_url, open_storage


@dataclass(frozen=True)
class DataInfo:
    num_classes: int
    split: dict
    channels: int  # what the networks' stems take: 3 for images, the volumes' channels otherwise


def settle_dims(config: StudyConfig, *, arch: ArchSpec) -> StudyConfig:
    """The study's dimensionality, and the defaults that follow from it (see ``DIMS_DEFAULTS``).

    ``--dims`` decides; without it a 3-D architecture (``3d`` in its string) or a volume dataset makes the
    study 3-D, and anything else 2-D. The dataset must then hold samples of that dimensionality.
    """
    if config.dims is not None:
        dims = config.dims
    elif arch.dims != 2 or "dataset" not in config.explicit:
        dims = arch.dims
    else:
        dims = dims_of(config.dataset)
    config = with_dims(config, dims=dims)
    if dims_of(config.dataset) != dims:
        samples = "images" if dims_of(config.dataset) == 2 else "volumes"
        allowed = "digits, cifar10:PATH or folder:PATH" if dims == 2 else "shapes3d or volumes:PATH"
        raise UserError(f"dataset {config.dataset!r} holds {samples}, but the study is {dims}-D; give a {dims}-D "
                        f"dataset ({allowed}) or --dims {dims_of(config.dataset)}")
    return config


def preflight(config: StudyConfig) -> DataInfo:
    """Check the storage and the executor's settings, and load the dataset on the driver: a bad one fails
    here, before anything is written. With the local executor the loaded copy stays cached for the trials."""
    check_storage_url(config.storage, write=True, create_default_dir=config.storage == DEFAULT_STORAGE)
    make_executor(config.executor, config.execution).check()
    check_spec(config.dataset)
    from effnas.search.worker import load_cached

    data = load_cached(config.dataset, resolution=config.resolution, split_seed=config.seed,
                       val_fraction=config.train.val_fraction, device=driver_device(config),
                       train_samples=config.train.train_samples)
    return DataInfo(num_classes=data.num_classes, split=dict(data.split), channels=data.channels)


def driver_device(config: StudyConfig):
    import torch

    from effnas.search.utils.devices import pick_device

    if config.executor == "ray":
        return torch.device("cpu")  # the driver only counts classes; workers load their own copy
    try:
        device = pick_device(config.train.device)
    except RuntimeError as exc:
        raise UserError(f"--device {config.train.device}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {config.train.device}: CUDA is not available on this machine")
    return device


def template(config: StudyConfig, num_classes: int) -> TrialTemplate:
    """What every trial of the study shares. Only a NAS study (``search``) may score instead of training: a study
    file's ``evaluator`` key does not reach scale, family or confirm, whose trials must train."""
    train = config.train if config.command == "search" else dataclasses.replace(config.train, evaluator="train")
    return TrialTemplate(dataset=config.dataset, num_classes=num_classes, seed=config.seed, train=train)


def storage_for(config: StudyConfig) -> optuna.storages.BaseStorage:
    """The study's storage; the default SQLite file's folder is created on first use."""
    return open_storage(config.storage, write=True, create_default_dir=config.storage == DEFAULT_STORAGE)


SETUP_WAIT = 30.0  # seconds a joining worker waits for the creator to finish setting a new study up


def create_or_join(name: str, storage: optuna.storages.BaseStorage, *, directions: list[str],
                   sampler: optuna.samplers.BaseSampler | None, setup: Callable[[optuna.Study], None]) -> optuna.Study:
    """Create the study and set it up, or join it once its creator has set it up.

    Exactly one of the workers that start a study together creates it (Optuna refuses the others), so
    set-up work such as queueing the base architecture happens once per study, whatever the race. The
    set-up writes the ``kind`` attribute last; a joiner waits for it, and takes over the set-up if the
    creator died before finishing it.
    """
    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, directions=directions)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        deadline = time.monotonic() + SETUP_WAIT
        while "kind" not in study.user_attrs and time.monotonic() < deadline:
            time.sleep(0.2)
        if "kind" in study.user_attrs:
            return study
    setup(study)
    return study


def drive(config: StudyConfig, planner: TrialPlanner, *, total: int, header: str, err: TextIO,
          replicate: Callable[[str], TrialPlanner] | None = None) -> None:
    """Run the configured executor until the planner is done, with a progress line on ``err``.

    ``replicate(device)`` rebuilds the planner in a worker process (``--workers``); it must be picklable.
    """
    recovered = planner.recover()
    if recovered:
        print(f"effnas: requeued trial(s) {', '.join(map(str, recovered))} left running by a dead worker", file=err)
    executor = make_executor(config.executor, config.execution)
    print(f"effnas: {header}; {executor.threads_note()}", file=err)
    study = planner.study
    evaluator = config.train.evaluator
    progress = Progress(total=total, done=len(planner.complete_trials()), stream=err,
                        score=evaluator if evaluator != "train" else None)

    def on_trial(candidate: Candidate | None, outcome: str) -> None:
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED))
        ours = {t.number for t in planner.complete_trials()}
        done = record.read_all(t for t in finished if t.number in ours)
        best = selection.most_accurate(done)
        progress.update(done=len(done), failed=sum(t.state == TrialState.FAIL for t in finished),
                        stopped=sum(t.user_attrs.get("stopped_at") is not None for t in finished),
                        best=(best.accuracy, best.macs) if best else None)

    try:
        executor.run(planner, on_trial=on_trial, replicate=replicate)
    except KeyboardInterrupt as stop:
        lifecycle.release_own_trials(study, reason="terminated (SIGTERM)" if isinstance(stop, Terminated)
                                     else "interrupted")
        raise
    finally:
        progress.close()


def train_list(config: StudyConfig, study: optuna.Study, proposals: dict[tuple, Proposal], *,
               param_names: tuple[str, ...], marks: dict[str, Any], num_classes: int, header: str,
               err: TextIO) -> None:
    """Train a fixed list of proposals (a scaling grid, a family, the architectures to confirm) into ``study``.

    Each proposal is keyed by the values of its params (``param_names``), which is what the study records
    for it; the next missing key is queued before every ask, so the study resumes like any other and a
    failed or killed trial is simply asked again. ``marks`` (user attributes) tell the trials of this list
    from others in the same study (none: every trial is of this list).
    """

    def ours(trial: FrozenTrial) -> bool:
        return all(trial.user_attrs.get(k) == v for k, v in marks.items())

    def key_of(trial: FrozenTrial) -> tuple | None:
        if not ours(trial) or not set(param_names) <= set(trial.params):
            return None
        key = tuple(round(float(trial.params[n]), 6) for n in param_names)
        return key if key in proposals else None

    def queue_next() -> bool:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING,
                                                          TrialState.WAITING))
        if any(t.state == TrialState.WAITING and ours(t) for t in trials):
            return True  # a queued (or requeued) proposal is next; its params are set only once asked
        missing = [k for k in proposals if k not in {key_of(t) for t in trials}]
        if missing:
            study.enqueue_trial(dict(zip(param_names, missing[0])), user_attrs=marks)
        return bool(missing)

    def propose(trial: optuna.Trial) -> Proposal:
        return proposals[tuple(round(trial.suggest_float(n, 0.0, 1e6), 6) for n in param_names)]

    check_memory(config, proposals.values(), num_classes=num_classes)
    planner = TrialPlanner(study=study, propose=propose, budget=Budget(), template=template(config, num_classes),
                           n_trials=len(proposals), target_macs=study.user_attrs["base_macs"],
                           objectives=("accuracy", "macs"), before_ask=queue_next,
                           counts_toward=lambda t: key_of(t) is not None, reuse_duplicates=True)
    drive(config, planner, total=len(proposals), header=header, err=err)


def trial_device(config: StudyConfig) -> str | None:
    """The device a trial of this study trains on: the local workers' first --devices entry, else --device;
    None on Ray, whose workers' devices the driver cannot see."""
    if config.executor == "ray":
        return None
    devices = config.execution.worker_devices
    return devices[0] if devices else config.train.device


def check_memory(config: StudyConfig, proposals: Iterable[Proposal], *, num_classes: int) -> None:
    """A fixed list (grid, family, confirmation) is refused before anything trains when one of its networks
    cannot train on the device: every proposal must be trained, so none may be skipped as infeasible."""
    budget = Budget(memory=device_memory(trial_device(config)), batch_size=config.train.batch_size)
    if budget.memory is None:
        return
    for proposal in proposals:
        problems = budget.violations(proposal.arch, proposal.resolution,
                                     cost(proposal.arch, proposal.resolution, num_classes=num_classes))
        if problems:
            raise UserError(f"{proposal.arch} at {proposal.resolution}: {problems[0]}; lower --batch-size or the "
                            "resolution")
