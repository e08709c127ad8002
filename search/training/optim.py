"""The optimizer and the learning-rate schedule every training in effnas uses: AdamW with decoupled weight decay
on weights only, a linear warm-up and a cosine decay per step."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from effnas.search.settings import TrainSettings


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW; weight decay on weights only (not on biases and batch-norm affine parameters)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings.peak_lr, fused=True)


def lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Full batches per epoch (the last, partial one is dropped), at least one."""
    return max(1, count // batch_size)


class WarmupCosine:
    """The learning rate of every step: linear warm-up, then cosine decay to zero. Its state is the step."""

    def __init__(self, *, peak: float, total: int, warmup: int, step: int = 0) -> None:
        self.peak, self.total, self.warmup, self.step = peak, total, warmup, step

    @classmethod
    def for_training(cls, settings: TrainSettings, steps: int) -> WarmupCosine:
        """The schedule of ``settings.epochs`` epochs of ``steps`` steps."""
        total = steps * settings.epochs
        return cls(peak=settings.peak_lr, total=total, warmup=max(1, int(total * settings.warmup_fraction)))

    def lr(self) -> float:
        return self.peak * lr_factor(self.step, self.total, self.warmup)

    def apply(self, optimizer: torch.optim.Optimizer) -> None:
        for group in optimizer.param_groups:
            group["lr"] = self.lr()

    def state_dict(self) -> dict[str, Any]:
        return {"peak": self.peak, "total": self.total, "warmup": self.warmup, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.peak, self.total, self.warmup, self.step = state["peak"], state["total"], state["warmup"], state["step"]
