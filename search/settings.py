"""Settings declared once. A setting is a dataclass field whose metadata carries its help and bounds.

``studies.config`` turns every declaration into a study-file key and a CLI flag with the same
validation, records it in the study's ``config`` attribute, and each trial records the training
settings it ran with (its ``settings`` attribute). Adding a training setting means adding one field to
:class:`TrainSettings` and reading it where it is used.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from effnas.search.data import augment


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            at_most: float | None = None,
            positive: bool = False, optional: bool = False, choices: tuple[str | int, ...] = (),
            pattern: str | None = None, commands: tuple[str, ...] | None = None, flag: str | None = None,
            defaults: dict[str, Any] | None = None) -> Any:
    """A dataclass field with what the boundary needs to validate it.

    ``low`` and ``at_most`` are inclusive, ``high`` exclusive; ``positive`` means strictly > 0; ``optional``
    allows None; ``commands`` names the commands that take it as a flag (None: every command that trains); ``flag`` is
    the flag when it is not ``--`` and the name with dashes; ``defaults`` gives a command its own default.
    """
    metadata = {"help": help, "low": low, "high": high, "at_most": at_most, "positive": positive,
                "optional": optional, "choices": tuple(choices), "pattern": pattern, "commands": commands,
                "flag": flag, "defaults": defaults or {}}
    return dataclasses.field(default=default, metadata=metadata)


def declared(cls: type) -> list[tuple[dataclasses.Field, type]]:
    """The settings of a dataclass (fields made by :func:`setting`) with their resolved types."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if "help" in f.metadata]


# --evaluator: how a NAS trial is measured. train: its validation accuracy after --epochs; the others score the
# untrained network (search.training.zerocost) in place of an accuracy
EVALUATORS = ("train", "synflow", "naswot", "jacob_cov", "params", "macs")

MAX_EPOCHS = 10_000  # a bound on work that would never end: ImageNet recipes train 350-600 epochs

TRIAL_COMMANDS = ("search", "scale", "family", "confirm")  # the commands whose trials train (search.training)
SEARCH_COMMANDS = ("search",)  # the command of a NAS study
FULL_RUN = ("train",)  # the command of a full training run


@dataclass(frozen=True)
class TrainSettings:
    """How a worker trains one candidate, besides the architecture, resolution and seeds."""

    epochs: int = setting(1, "training epochs (of each trial, in a study)", low=1, at_most=MAX_EPOCHS)
    batch_size: int = setting(32, "training batch size", low=1)
    lr: float = setting(3e-3, "peak learning rate (AdamW) at --lr-batch images a step; scaled linearly with "
                              "--batch-size", positive=True)
    lr_batch: int = setting(32, "the batch size at which --lr is given: the peak is lr x batch-size / lr-batch",
                            low=1)
    weight_decay: float = setting(0.05, "decoupled weight decay on weights", low=0)
    label_smoothing: float = setting(0.1, "label smoothing", low=0, high=1)
    warmup_fraction: float = setting(0.1, "share of the steps over which the learning rate warms up", low=0,
                                     high=1)
    dropout: float = setting(0.0, "dropout before the classifier", low=0, high=1)
    drop_path: float = setting(0.0, "stochastic-depth rate of the last block", low=0, high=1)
    grad_clip: float | None = setting(None, "clip the gradients' global norm to this", positive=True, optional=True)
    val_fraction: float = setting(0.2, "share of the training data held out for validation", positive=True,
                                  high=1)
    train_samples: int | None = setting(None, "train on a stratified, seeded subset of this many samples of the "
                                              "training split (a cheaper proxy; the validation split stays whole)",
                                        low=2, optional=True)
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", pattern=r"auto|cpu|cuda(:\d+)?")
    evaluator: str = setting("train", "how each trial is measured: train (its validation accuracy after --epochs) or "
                                      "a zero-cost score of the untrained network in place of an accuracy: synflow, "
                                      "naswot, jacob_cov, params or macs (effnas confirm then trains the front)",
                             choices=EVALUATORS, commands=SEARCH_COMMANDS)
    compile: bool = setting(False, "torch.compile the network for training (pays off on a GPU for trials of "
                                   "many steps; see README); not with --cuda-graphs", commands=TRIAL_COMMANDS)

    cuda_graphs: bool = setting(False, "on CUDA, replay each training step's forward and backward as a CUDA graph "
                                       "(captured per trial in seconds; small trials are bound by kernel launches)",
                                commands=TRIAL_COMMANDS)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainSettings:
        """Settings recorded by this or an earlier version: a record without ``lr_batch`` was made when --lr
        was the peak at any batch size, which is lr_batch = batch_size."""
        return cls(**as_recorded_now(values))

    @property
    def peak_lr(self) -> float:
        """The learning rate at the top of the schedule: --lr scaled linearly from --lr-batch to --batch-size."""
        return self.lr * self.batch_size / self.lr_batch

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def as_recorded_now(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings recorded by this or an earlier version, as this one records them: a record without ``lr_batch``
    was made when --lr was the peak at any batch size, which is lr_batch = batch_size."""
    return {"lr_batch": settings.get("batch_size", TrainSettings.batch_size), **settings}


@dataclass(frozen=True)
class ExecutorSettings:
    """Where and how a study's trials run: the local executor's worker processes, a Ray cluster's resources, and
    when failures stop the study. Each executor reads the ones it uses."""

    workers: int = setting(1, "local executor: trial processes on this machine, all on the same study", low=1,
                           at_most=64, commands=SEARCH_COMMANDS)
    worker_devices: tuple[str, ...] | None = setting(None, "local executor: devices the workers take in turn, e.g. "
                                                           "cuda:0,cuda:1 (default: each trial's --device)",
                                                     optional=True, pattern=r"cpu|cuda(:\d+)?",
                                                     commands=SEARCH_COMMANDS, flag="--devices")
    threads_per_worker: int | None = setting(None, "local executor: torch threads per worker (default: chosen per "
                                                   "trial from the free cores and the network's size)", low=1,
                                             at_most=1024, optional=True,
                                             commands=TRIAL_COMMANDS)
    max_failures: int = setting(5, "consecutive failed trials that stop the study (and Ray's retries)", low=1,
                                commands=TRIAL_COMMANDS)
    address: str | None = setting(None, "Ray cluster to join (HOST:PORT); default: a local Ray instance",
                                  optional=True, pattern=r"[^\s]+", commands=TRIAL_COMMANDS)
    gpus_per_trial: float = setting(0.0, "GPUs per Ray trial (fractional: small trials share one GPU)", low=0,
                                    commands=TRIAL_COMMANDS)
    cpus_per_trial: float = setting(1.0, "CPUs per Ray trial", positive=True, commands=TRIAL_COMMANDS)
    max_concurrent: int | None = setting(None, "Ray trials at once (default: as resources allow)", low=1,
                                         optional=True, commands=TRIAL_COMMANDS)


@dataclass(frozen=True)
class RunSettings:
    """A full training run (``effnas train``), besides the training settings: what a NAS trial never does."""

    ema_decay: float | None = setting(None, "keep an exponential moving average of the weights with this decay per "
                                            "step (e.g. 0.999); validation, predict and export then use it",
                                      positive=True, high=1, optional=True, commands=FULL_RUN)
    augment: str = setting("crop-flip", "augmentation of the training images, on their device (volumes: none, "
                                        "their default)",
                           choices=augment.KINDS, commands=FULL_RUN)
    crop_scale: float = setting(0.25, "smallest area share of a random-resized crop", positive=True, high=1,
                                commands=FULL_RUN)
    micro_batches: int = setting(1, "split each step's batch into this many micro-batches (gradient accumulation)",
                                 low=1, commands=FULL_RUN)
    devices: int = setting(1, "processes, one per device (GPUs, or CPU processes with gloo), started by torch's "
                              "launcher; under torchrun its world size", low=1, commands=FULL_RUN)
    test: str | None = setting(None, "held-out data evaluated once at the end, never used for a choice: "
                                     "folder:PATH, cifar10:PATH (its test_batch), idx:PATH or fashion-mnist (their "
                                     "t10k files)", optional=True, commands=FULL_RUN)
    name: str | None = setting(None, "the run's folder under --out (default: named after the network)",
                               optional=True, pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*", commands=FULL_RUN)
    out: str = setting("runs/train", "where training runs live", pattern=r".+", commands=FULL_RUN)
