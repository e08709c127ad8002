"""Short-budget training of one model and its validation accuracy.

AdamW with a linear warmup and a cosine decay per step, label smoothing, decoupled weight decay on
weights only; stochastic depth and dropout live in the model. On CUDA: bf16 autocast. Memory layout, as
measured: images channels_last everywhere (oneDNN's depthwise convolutions run 2-3x faster so on CPU);
volumes channels_last_3d on CPU (1.6x faster than contiguous over the default 3-D space at 16^3, one
thread) but contiguous on CUDA (channels_last_3d made a B0-like 3-D net up to 2.2x slower on an H100 in
bf16). On CPU the same seed gives the same result.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from search.data import Dataset
from search.settings import TrainSettings

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


def memory_layout(ndim: int, *, device: torch.device) -> torch.memory_format:
    """The layout a batch of ``ndim`` axes (N C H W images, N C D H W volumes) trains fastest in on ``device``."""
    if ndim == 4:
        return torch.channels_last
    return torch.channels_last_3d if device.type == "cpu" else torch.contiguous_format


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings.lr, fused=True)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def train_and_evaluate(model: nn.Module, data: Dataset, settings: TrainSettings, device: torch.device, *,
                       seed: int, judge_at: tuple[int, ...] = (), judge: Judge | None = None) -> TrainResult:
    """Train ``model`` on ``data`` (already on ``device``) and return its validation accuracy.

    After each epoch count in ``judge_at`` the model is evaluated and ``judge`` decides whether training goes
    on (successive halving); the schedule stays the one of ``settings.epochs`` either way, and evaluating
    draws no random numbers, so a trial judged on the way trains exactly as one that is not.
    """
    cuda = device.type == "cuda"
    layout = memory_layout(data.train_x.ndim, device=device)
    model = model.to(device, memory_format=layout)
    optimizer = _optimizer(model, settings)
    generator = torch.Generator(device=data.train_x.device).manual_seed(seed)
    count = len(data.train_y)
    steps_per_epoch = max(1, count // settings.batch_size)
    total = steps_per_epoch * settings.epochs
    warmup = max(1, int(total * settings.warmup_fraction))
    step, stopped_at, rung_accuracy = 0, None, {}
    start = time.perf_counter()
    model.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(count, generator=generator, device=data.train_x.device)
        for batch in range(steps_per_epoch):
            index = order[batch * settings.batch_size:(batch + 1) * settings.batch_size]
            images = data.normalize(data.train_x[index]).contiguous(memory_format=layout)
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * _lr_factor(step, total, warmup)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(images), data.train_y[index], label_smoothing=settings.label_smoothing)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            step += 1
        if judge is not None and epoch + 1 in judge_at:
            recalibrate_batch_norm(model, data, batch_size=max(256, settings.batch_size))
            accuracy, val_loss = evaluate(model, data, batch_size=max(256, settings.batch_size), device=device)
            rung_accuracy[epoch + 1] = accuracy
            model.train()
            if not judge(epoch + 1, accuracy):
                stopped_at = epoch + 1
                break
    if stopped_at is None:
        recalibrate_batch_norm(model, data, batch_size=max(256, settings.batch_size))
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if stopped_at is None:
        accuracy, val_loss = evaluate(model, data, batch_size=max(256, settings.batch_size), device=device)
        rung_accuracy[settings.epochs] = accuracy
    return TrainResult(accuracy=accuracy, loss=val_loss, train_seconds=seconds,
                       images_per_second=step * settings.batch_size / max(seconds, 1e-9),
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
    device_type = data.train_x.device.type
    for begin in range(0, count, batch_size):
        images = data.normalize(data.train_x[begin:min(count, begin + batch_size)])
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda"):
            model(images.contiguous(memory_format=memory_layout(images.ndim, device=images.device)))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, *, batch_size: int, device: torch.device) -> tuple[float, float]:
    cuda = device.type == "cuda"
    model.eval()
    correct, loss_sum = 0, 0.0
    for begin in range(0, len(data.val_y), batch_size):
        images = data.normalize(data.val_x[begin:begin + batch_size])
        images = images.contiguous(memory_format=memory_layout(images.ndim, device=device))
        labels = data.val_y[begin:begin + batch_size]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = model(images).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
    total = len(data.val_y)
    return correct / total, loss_sum / total
