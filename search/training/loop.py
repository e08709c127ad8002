"""The training engine: one optimizer, one learning-rate schedule, one epoch, evaluation and batch-norm
recalibration. A NAS trial (:func:`train_and_evaluate`) and a full training run (``effnas train``) are
both made of these pieces, so there is one training loop to change.

AdamW with a linear warmup and a cosine decay per step, label smoothing, decoupled weight decay on
weights only; stochastic depth and dropout live in the model. On CUDA: bf16 autocast. channels_last
everywhere (oneDNN's depthwise convolutions run 2-3x faster so on CPU; channels_last_3d for volumes on
CPU). On CPU the same seed gives the same result. Nothing waits for the GPU inside an epoch but a read of
the "loss not finite" flag every NAN_CHECK_EVERY steps; evaluation sums on the device. A dataset kept on the
host (streamed, or too large for the GPU) is read ahead by reader threads (:mod:`search.data.readahead`).
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from effnas.search.data.dataset import Dataset
from effnas.search.data.readahead import batches
from effnas.search.settings import TrainSettings
from effnas.search.training.optim import WarmupCosine, make_optimizer, steps_per_epoch
from effnas.search.utils.devices import memory_layout

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the trial fails, the study goes on."""


@dataclass(frozen=True)
class TrainResult:
    accuracy: float  # at the last epoch trained (a rung's, when the trial was stopped there)
    loss: float
    train_seconds: float
    images_per_second: float
    rung_accuracy: dict[int, float] = field(default_factory=dict)  # epochs -> accuracy where it was judged
    stopped_at: int | None = None  # the rung (epochs) at which the trial was stopped; None: trained in full


Judge = Callable[[int, float], bool]  # (epochs trained, validation accuracy) -> go on?
NAN_CHECK_EVERY = 32  # steps between reads of the on-device "loss not finite" flag (each read waits for the GPU)


class Augment(Protocol):
    """What a full run does to a training batch; ``params`` draws for the whole global batch (so every rank
    draws alike and takes its slice), ``apply`` transforms uint8 images into float pixels (0-255)."""

    def params(self, count: int, generator: torch.Generator) -> torch.Tensor: ...

    def apply(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor: ...


@dataclass
class EpochStats:
    loss: float  # mean training loss of this process's batches
    steps: int
    images: int  # images seen by this process
    seconds: float


OnStep = Callable[[int, int, torch.Tensor], None]  # (step in epoch, steps per epoch, loss on the device)


def train_epoch(model: nn.Module, data: Dataset, optimizer: torch.optim.Optimizer, schedule: WarmupCosine,
                settings: TrainSettings, *, generator: torch.Generator, device: torch.device,
                augment: Augment | None = None, shard: tuple[int, int] = (0, 1), micro_batches: int = 1,
                ema: torch.optim.swa_utils.AveragedModel | None = None, on_step: OnStep | None = None,
                forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> EpochStats:
    """One pass over the training data in the generator's order, ``settings.batch_size`` images a step.

    ``shard`` = (rank, world): this process trains on its slice of every global batch (DistributedDataParallel
    averages the gradients); ``micro_batches`` splits that slice further and accumulates the gradients, which
    is what several ranks with per-device batch norm compute, in one process. ``forward`` replaces
    ``model(images)`` (a step captured as a CUDA graph, see :class:`GraphedStep`).
    """
    cuda = device.type == "cuda"
    rank, world = shard
    count = len(data.train_y)
    steps = steps_per_epoch(count, settings.batch_size)
    per_rank = settings.batch_size // world
    per_micro = per_rank // micro_batches
    layout = memory_layout(data.train_x.ndim, device=device)
    loss_sum = torch.zeros((), device=device)
    diverged = torch.zeros((), dtype=torch.bool, device=device)  # read every NAN_CHECK_EVERY steps, not each
    start = time.perf_counter()
    model.train()
    order = torch.randperm(count, generator=generator, device=data.train_x.device)
    if micro_batches == 1 and world == 1:
        pieces = [slice(None)]
    else:  # this rank's slice of each global batch, in micro-batches
        pieces = [slice(rank * per_rank + i * per_micro, rank * per_rank + (i + 1) * per_micro)
                  for i in range(micro_batches)]
    batch_index = [order[batch * settings.batch_size:(batch + 1) * settings.batch_size] for batch in range(steps)]
    with contextlib.closing(batches(data.train_x, [index[piece] for index in batch_index for piece in pieces],
                                    device)) as read:
        for batch, index in enumerate(batch_index):
            drawn = augment.params(len(index), generator) if augment is not None else None
            schedule.apply(optimizer)
            optimizer.zero_grad(set_to_none=True)
            for number, piece in enumerate(pieces):
                images, labels = next(read), data.train_y[index[piece]].to(device, non_blocking=True)
                if augment is not None:
                    images = augment.apply(images, drawn[piece])
                images = data.normalize(images).contiguous(memory_format=layout)
                with _no_sync(model, last=number == len(pieces) - 1):
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda,
                                        cache_enabled=forward is None):
                        logits = model(images) if forward is None else forward(images)
                        loss = F.cross_entropy(logits, labels, label_smoothing=settings.label_smoothing)
                    diverged |= ~torch.isfinite(loss.detach())
                    (loss / micro_batches if micro_batches > 1 else loss).backward()
                loss_sum += loss.detach() / micro_batches
            if settings.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            schedule.step += 1
            if ema is not None:
                ema.update_parameters(unwrap(model))
            if on_step is not None:
                on_step(batch + 1, steps, loss)
            if (batch + 1) % NAN_CHECK_EVERY == 0 or batch + 1 == steps:
                if bool(diverged):  # the one host-device synchronisation of a stretch of steps
                    raise TrainingDiverged("the loss became NaN or infinite within steps "
                                           f"{schedule.step - NAN_CHECK_EVERY}..{schedule.step}")
    return EpochStats(loss=float(loss_sum) / steps, steps=steps, images=steps * per_rank,
                      seconds=time.perf_counter() - start)


class GraphedStep:
    """The training forward and backward of full batches replayed as CUDA graphs.

    A small network's step is bound by the host launching its ~1,000 kernels, not by the GPU; a graph
    launches them all at once. Captured once per trial (a few warm-up steps, no compiler); a batch of another
    size (an epoch's last) runs eagerly. Batch-norm statistics, dropout and stochastic depth run inside the
    graph; the warm-up's effect on the running statistics is undone by the recalibration before validation.
    """

    def __init__(self, model: nn.Module, data: Dataset, batch_size: int, device: torch.device) -> None:
        self.model, self.batch_size = model, batch_size
        sample = torch.randn((batch_size, *data.train_x.shape[1:]), device=device)
        sample = sample.contiguous(memory_format=memory_layout(sample.ndim, device=device))
        model.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False):
            self.graphed = torch.cuda.make_graphed_callables(model, (sample,))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[0] == self.batch_size:
            return self.graphed(images)
        return type(self.model).forward(self.model, images)


def _spans(count: int, batch_size: int) -> list[slice]:
    """Consecutive batches of ``count`` rows."""
    return [slice(begin, min(count, begin + batch_size)) for begin in range(0, count, batch_size)]


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _no_sync(model: nn.Module, *, last: bool):
    """DistributedDataParallel averages gradients once per step: not after each micro-batch but the last."""
    if isinstance(model, nn.parallel.DistributedDataParallel) and not last:
        return model.no_sync()
    return contextlib.nullcontext()


def train_and_evaluate(model: nn.Module, data: Dataset, settings: TrainSettings, device: torch.device, *,
                       seed: int, judge_at: tuple[int, ...] = (), judge: Judge | None = None) -> TrainResult:
    """A NAS trial: train ``model`` on ``data`` and return its validation accuracy.

    After each epoch count in ``judge_at`` the model is evaluated and ``judge`` decides whether training goes
    on (successive halving); the schedule stays the one of ``settings.epochs`` either way, and evaluating
    draws no random numbers, so a trial judged on the way trains exactly as one that is not.
    """
    cuda = device.type == "cuda"
    model = model.to(device, memory_format=memory_layout(data.train_x.ndim, device=device))
    optimizer = make_optimizer(model, settings)
    generator = torch.Generator(device=data.train_x.device).manual_seed(seed)
    steps = steps_per_epoch(len(data.train_y), settings.batch_size)
    schedule = WarmupCosine.for_training(settings, steps)
    batch = max(256, settings.batch_size)
    stopped_at, rung_accuracy = None, {}
    start = time.perf_counter()
    forward = GraphedStep(model, data, settings.batch_size, device) if settings.cuda_graphs and cuda else None
    if settings.compile and forward is None:
        torch.compiler.reset()  # a worker compiles one architecture per trial: never hit dynamo's recompile limit
        trained = torch.compile(model)  # shares the parameters; evaluation stays eager
    else:
        trained = model
    for epoch in range(settings.epochs):
        train_epoch(trained, data, optimizer, schedule, settings, generator=generator, device=device,
                    forward=forward)
        if judge is not None and epoch + 1 in judge_at:
            recalibrate_batch_norm(model, data, batch_size=batch)
            accuracy, val_loss = evaluate(model, data, batch_size=batch, device=device)
            rung_accuracy[epoch + 1] = accuracy
            if not judge(epoch + 1, accuracy):
                stopped_at = epoch + 1
                break
    if stopped_at is None:
        recalibrate_batch_norm(model, data, batch_size=batch)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if stopped_at is None:
        accuracy, val_loss = evaluate(model, data, batch_size=batch, device=device)
        rung_accuracy[settings.epochs] = accuracy
    return TrainResult(accuracy=accuracy, loss=val_loss, train_seconds=seconds,
                       images_per_second=schedule.step * settings.batch_size / max(seconds, 1e-9),
                       rung_accuracy=rung_accuracy, stopped_at=stopped_at)


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, data: Dataset, *, batch_size: int, max_images: int = 2048) -> None:
    """Re-estimate batch-norm statistics with the final weights (a cumulative average).

    After a few hundred steps the running averages still mix in statistics of early weights and
    understate the trained network badly (on digits: 56 % against 83 % for the same weights);
    the standard NAS remedy is one forward pass over training images in train mode.
    """
    norms = [m for m in model.modules() if isinstance(m, BATCH_NORMS)]
    if not norms:
        return
    model.eval()
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    count = min(len(data.train_y), max_images)
    device = next(model.parameters()).device
    for images in batches(data.train_x, _spans(count, batch_size), device):
        images = data.normalize(images)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            model(images.contiguous(memory_format=memory_layout(images.ndim, device=device)))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


def batch_logits(model: nn.Module, images: torch.Tensor, normalize: Callable[[torch.Tensor], torch.Tensor], *,
                 batch_size: int, device: torch.device):
    """(first index, float logits) for every batch of ``images`` through ``model`` in eval mode."""
    cuda = device.type == "cuda"
    model.eval()
    spans = _spans(len(images), batch_size)
    for span, batch in zip(spans, batches(images, spans, device)):
        batch = normalize(batch).contiguous(memory_format=memory_layout(batch.ndim, device=device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            yield span.start, model(batch).float()


@torch.no_grad()
def evaluation_sums(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                    normalize: Callable[[torch.Tensor], torch.Tensor], *, batch_size: int,
                    device: torch.device) -> tuple[int, float, int]:
    """(correct, summed cross-entropy, count): what ranks add up before dividing. The sums stay on the device
    until the end: one synchronisation per evaluation, not two per batch."""
    correct = torch.zeros((), dtype=torch.long, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    for begin, logits in batch_logits(model, images, normalize, batch_size=batch_size, device=device):
        target = labels[begin:begin + batch_size].to(device, non_blocking=True)
        loss_sum += F.cross_entropy(logits, target, reduction="sum").double()
        correct += (logits.argmax(1) == target).sum()
    return int(correct), float(loss_sum), len(labels)


def evaluate(model: nn.Module, data: Dataset, *, batch_size: int, device: torch.device) -> tuple[float, float]:
    """(validation accuracy, mean validation loss)."""
    correct, loss_sum, total = evaluation_sums(model, data.val_x, data.val_y, data.normalize, batch_size=batch_size,
                                               device=device)
    return correct / total, loss_sum / total
