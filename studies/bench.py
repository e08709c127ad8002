"""``effnas bench``: measured latency of any network (preset, reference, arch string) or of a trained run.

Every input is checked before a tensor is allocated: the resolution, the runs, the threads, and the memory the
benchmark needs (weights, the input batch and its activations) against the device's free memory."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from effnas.models import build
from effnas.search.training.checkpoint import CONFIG, STATE
from effnas.search.training.inference import load_trained
from effnas.search.training.latency import DTYPES, check_counts, measure_latency, pick_dtype
from effnas.search.utils.devices import pick_device
from effnas.search.utils.memory import available_bytes, gib
from effnas.space import presets
from effnas.space.cost import Network, cost, inference_activations
from effnas.space.errors import UserError


def bench(text: str, *, device: str = "cpu", batch: int = 1, resolution: int | None = None, num_classes: int = 1000,
          dtype: str | None = None, warmup: int = 10, runs: int = 50, threads: int | None = None) -> dict[str, Any]:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    target = pick_device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    check_counts(warmup=warmup, runs=runs, batch=batch)
    check_threads(threads)
    dtype = pick_dtype(dtype, target)
    path = Path(text).expanduser()
    model = None
    if (path / CONFIG).is_file() or (path / STATE).is_file():
        trained = load_trained(text)
        model, spec, label = trained.model, presets.network(trained.config["network"]), str(trained.path)
        size, num_classes = resolution or trained.resolution, int(trained.config["num_classes"])
    else:
        spec, preset = presets.resolve(text)
        size, label = resolution or (preset.resolution if preset else 224), str(spec)
    check_memory(spec, resolution=size, batch=batch, num_classes=num_classes, dtype=dtype, device=target)
    if model is None:
        model = build(spec, num_classes=num_classes, dropout=0.0, drop_path=0.0)
    if threads is not None:
        torch.set_num_threads(threads)
    result = measure_latency(model, resolution=size, device=target, batch=batch, dtype=dtype, warmup=warmup,
                             runs=runs)
    return {"network": label, **result.to_dict()}


def check_threads(threads: int | None) -> None:
    """At most one thread per CPU of this machine: more only contend (and torch crashes on absurd counts)."""
    cpus = os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= cpus:
        raise UserError(f"--threads {threads}: this machine has {cpus} CPU(s); give 1 to {cpus}")


def benchmark_memory(spec: Network, *, resolution: int, batch: int, num_classes: int, itemsize: int) -> int:
    """Bytes a benchmark holds, from the analytic cost: the weights, and per image its input and the activations
    alive at once in eval mode (:func:`space.cost.inference_activations`), doubled for the allocator's and the
    convolutions' workspaces."""
    dims = spec.dims
    sample = spec.in_channels * resolution**dims + inference_activations(spec, resolution,
                                                                                         num_classes=num_classes)
    return itemsize * (cost(spec, resolution, num_classes=num_classes).params + 2 * batch * sample)


def check_memory(spec: Network, *, resolution: int, batch: int, num_classes: int, dtype: str,
                 device: torch.device) -> None:
    """Refuse a benchmark that would not fit in the device's free memory, before anything is allocated."""
    need = benchmark_memory(spec, resolution=resolution, batch=batch, num_classes=num_classes,
                            itemsize=DTYPES[dtype].itemsize)
    free = available_bytes(device)
    if need > free:
        raise UserError(f"batch {batch:,} at {resolution}px with {num_classes:,} classes needs ~{gib(need)} "
                        f"(weights, inputs and activations) and {device} has {gib(free)} free; lower --batch, "
                        f"--resolution or --num-classes")
