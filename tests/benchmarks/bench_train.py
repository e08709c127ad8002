"""Training throughput of effnas's EfficientNet-B0 against timm's efficientnet_b0 (and torchvision's when it
imports) in the same loop -- effnas train's own epoch (search/training/loop.py: AdamW, label smoothing, channels_last,
bf16 autocast on CUDA) on synthetic images resident on the device -- at 32 and 224 px; then the measured
latency of both at batch 1 through the function behind ``effnas bench``.

Imports only torch, models/, search/training/ (torch and numpy) and timm/torchvision, so it runs
on a GPU machine without optuna, ray or plotly:  python -m tests.benchmarks.bench_train [cpu|cuda]
"""
from __future__ import annotations

import sys
import time

import torch

from effnas.models import build
from effnas.search.data.dataset import Dataset
from effnas.search.settings import TrainSettings
from effnas.search.training.latency import measure_latency
from effnas.search.training.loop import train_epoch
from effnas.search.training.optim import WarmupCosine, make_optimizer
from effnas.space import presets

SIZES = {"cpu": {32: (64, 8), 224: (16, 3)}, "cuda": {32: (256, 40), 224: (128, 30)}}  # px: (batch, timed steps)


def synthetic(resolution: int, count: int, device: torch.device) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (count, 3, resolution, resolution), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 1000, (count,), generator=generator)
    stats = torch.full((1, 3, 1, 1), 0.5)
    return Dataset(name="synthetic", train_x=x, train_y=y, val_x=x[:1], val_y=y[:1], num_classes=1000, mean=stats,
                   std=stats).to(device)


def images_per_second(model: torch.nn.Module, resolution: int, device: torch.device, batch: int, steps: int) -> float:
    """Images per second over ``steps`` timed steps of train_epoch, after two warm-up steps."""
    model = model.to(device, memory_format=torch.channels_last)
    settings = TrainSettings(batch_size=batch, epochs=1)
    optimizer = make_optimizer(model, settings)
    warm, timed = synthetic(resolution, 2 * batch, device), synthetic(resolution, steps * batch, device)
    generator = torch.Generator(device=device).manual_seed(0)
    schedule = WarmupCosine(peak=settings.lr, total=steps + 2, warmup=1)
    train_epoch(model, warm, optimizer, schedule, settings, generator=generator, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_epoch(model, timed, optimizer, schedule, settings, generator=generator, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def contenders() -> dict:
    out = {"effnas": lambda: build(presets.network("efficientnet-b0"), num_classes=1000, dropout=0.2, drop_path=0.2)}
    try:
        import timm

        out["timm"] = lambda: timm.create_model("efficientnet_b0", num_classes=1000, drop_rate=0.2,
                                                drop_path_rate=0.2)
    except ImportError as exc:
        print(f"timm does not import here ({exc}): no timm comparison")
    try:
        import torchvision

        out["torchvision"] = lambda: torchvision.models.efficientnet_b0(num_classes=1000)
    except ImportError:
        pass
    return out


def main(kind: str | None = None) -> dict:
    kind = kind or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(kind)
    where = torch.cuda.get_device_name() if kind == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {where}; {'bf16 autocast, ' if kind == 'cuda' else ''}channels_last, "
          "effnas's train_epoch for every model")
    models = contenders()
    figures: dict = {}
    for resolution, (batch, steps) in SIZES[kind].items():
        best = {name: 0.0 for name in models}
        for _ in range(2):  # interleaved, best of two: a shared machine's noise lowers a figure, never raises it
            for name, make in models.items():
                torch.manual_seed(0)
                best[name] = max(best[name], images_per_second(make(), resolution, device, batch, steps))
        figures[resolution] = best
        ratios = "  ".join(f"effnas/{n} {best['effnas'] / best[n]:.2f}" for n in best if n != "effnas")
        print(f"{resolution:>4}px batch {batch}: " + "  ".join(f"{n} {v:,.1f} img/s" for n, v in best.items())
              + (f"  ({ratios})" if ratios else ""))
    for name, make in models.items():
        latency = measure_latency(make(), resolution=224, device=device, batch=1)
        figures[f"latency_{name}"] = latency.to_dict()
        print(f"latency at 224px, batch 1, {name}: median {latency.median_ms:.2f} ms, p90 {latency.p90_ms:.2f} ms, "
              f"{latency.images_per_second:,.1f} img/s ({latency.dtype}, {latency.memory_format}, "
              f"{latency.threads} threads)")
    return figures


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
