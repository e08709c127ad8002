"""``effnas bench``: measured latency of any network (preset, reference, arch string) or of a trained run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models import build
from search.bench import measure_latency
from search.checkpoint import CONFIG, STATE, load_trained
from search.train import pick_device
from space import presets
from space.errors import UserError


def bench(text: str, *, device: str = "cpu", batch: int = 1, resolution: int | None = None, num_classes: int = 1000,
          dtype: str | None = None, warmup: int = 10, runs: int = 50, threads: int | None = None) -> dict[str, Any]:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    target = pick_device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    path = Path(text).expanduser()
    if (path / CONFIG).is_file() or (path / STATE).is_file():
        trained = load_trained(text)
        model, size, label = trained.model, resolution or trained.resolution, str(trained.path)
    else:
        spec, preset = presets.resolve(text)
        model = build(spec, num_classes=num_classes, dropout=0.0, drop_path=0.0)
        size, label = resolution or (preset.resolution if preset else 224), str(spec)
    if threads is not None:
        torch.set_num_threads(threads)
    result = measure_latency(model, resolution=size, device=target, batch=batch, dtype=dtype, warmup=warmup,
                             runs=runs)
    return {"network": label, **result.to_dict()}
