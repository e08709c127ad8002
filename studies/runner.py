"""One runner for every study kind: check the dataset and the executor on the driver before anything is
written, open the storage, drive the executor with a progress line, and on Ctrl-C (wherever it lands)
fail and requeue the trials this process holds."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

import optuna

from search import lifecycle, record, selection
from search.data import check_spec
from search.executors import make_executor
from search.trial import Candidate, TrialPlanner, TrialTemplate
from space.errors import UserError
from studies.config import DEFAULT_STORAGE, StudyConfig
from studies.progress import Progress
from studies.storage import open_storage


@dataclass(frozen=True)
class DataInfo:
    num_classes: int
    split: dict


def check_data(config: StudyConfig) -> DataInfo:
    """Check the executor's settings and load the dataset on the driver: a bad one fails here, before
    anything is written. With the local executor the loaded copy stays cached for the trials."""
    make_executor(config.executor, **config.executor_settings()).check()
    check_spec(config.dataset)
    from search.worker import load_cached

    data = load_cached(config.dataset, resolution=config.resolution, split_seed=config.seed,
                       val_fraction=config.train.val_fraction, device=driver_device(config))
    return DataInfo(num_classes=data.num_classes, split=dict(data.split))


def driver_device(config: StudyConfig):
    import torch

    from search.train import pick_device

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
    return TrialTemplate(dataset=config.dataset, num_classes=num_classes, seed=config.seed, train=config.train)


def storage_for(config: StudyConfig) -> optuna.storages.BaseStorage:
    """The study's storage; the default SQLite file's folder is created on first use."""
    return open_storage(config.storage, create_default_dir=config.storage == DEFAULT_STORAGE)


def drive(config: StudyConfig, planner: TrialPlanner, *, total: int, header: str, err: TextIO) -> None:
    """Run the configured executor until the planner is done, with a progress line on ``err``."""
    recovered = planner.recover()
    if recovered:
        print(f"effnas: requeued trial(s) {', '.join(map(str, recovered))} left running by a dead worker", file=err)
    print(f"effnas: {header}", file=err)
    study = planner.study
    progress = Progress(total=total, done=len(planner.complete_trials()), stream=err)

    def on_trial(candidate: Candidate, outcome: str) -> None:
        done = record.read_all(planner.complete_trials())
        failed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)))
        best = selection.most_accurate(done)
        progress.update(done=len(done), failed=failed, best=(best.accuracy, best.macs) if best else None)

    try:
        make_executor(config.executor, **config.executor_settings()).run(planner, on_trial=on_trial)
    except KeyboardInterrupt:
        lifecycle.release_own_trials(study, reason="interrupted")
        raise
    finally:
        progress.close()
