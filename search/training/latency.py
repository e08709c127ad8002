"""Measured latency of a network: eval mode, a fixed input shape, warm-up runs, then timed runs each
synchronised with the device (torch.utils.benchmark's conventions: report the median, the thread count, the
device and the precision; CUDA work is timed only after ``torch.cuda.synchronize``). The input takes the layout a
batch trains in (:func:`search.utils.devices.memory_layout`: channels_last for images, channels_last_3d or
contiguous for volumes) and the network's own input channels and dimensionality."""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from effnas.search.utils.devices import device_name, memory_layout
from effnas.space.errors import UserError

MIN_WARMUP, MIN_RUNS = 10, 50
MAX_WARMUP, MAX_RUNS = 10_000, 100_000  # bounds on work that would never end (--runs 1e9 is a typo)
LAYOUT_NAMES = {torch.channels_last: "channels_last", torch.channels_last_3d: "channels_last_3d",
                torch.contiguous_format: "contiguous"}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    images_per_second: float  # batch / median
    batch: int
    resolution: int
    device: str
    dtype: str
    memory_format: str
    threads: int
    torch: str
    warmup: int
    runs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_counts(*, warmup: int, runs: int, batch: int) -> None:
    """Refuse too few runs to measure, or so many that the measurement would never end."""
    if warmup < MIN_WARMUP or runs < MIN_RUNS:
        raise UserError(f"latency needs at least {MIN_WARMUP} warm-up and {MIN_RUNS} timed runs, got {warmup} "
                        f"and {runs}")
    if warmup > MAX_WARMUP or runs > MAX_RUNS:
        raise UserError(f"latency takes at most {MAX_WARMUP:,} warm-up and {MAX_RUNS:,} timed runs, got {warmup:,} "
                        f"and {runs:,}")
    if batch < 1:
        raise UserError(f"batch must be >= 1, got {batch}")


def pick_dtype(dtype: str | None, device: torch.device) -> str:
    """``dtype``, by default float32 on CPU and bfloat16 on CUDA."""
    dtype = dtype or ("bfloat16" if device.type == "cuda" else "float32")
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    return dtype


def input_shape(model: nn.Module, *, batch: int, resolution: int) -> tuple[int, ...]:
    """N x C x R x R for an image network, N x C x R x R x R for a volume one: the first convolution's."""
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))), None)
    dims = 3 if isinstance(first, nn.Conv3d) else 2
    channels = first.in_channels if first is not None else 3
    return (batch, channels, *[resolution] * dims)


def measure_latency(model: nn.Module, *, resolution: int, device: torch.device, batch: int = 1,
                    dtype: str | None = None, warmup: int = MIN_WARMUP, runs: int = MIN_RUNS) -> Latency:
    """Time ``model`` (moved, in place, to ``device`` and ``dtype``) on a batch of ``batch`` images (or volumes).
    ``dtype`` defaults to float32 on CPU and bfloat16 on CUDA; p90 is the nearest-rank 90th percentile."""
    check_counts(warmup=warmup, runs=runs, batch=batch)
    dtype = pick_dtype(dtype, device)
    shape = input_shape(model, batch=batch, resolution=resolution)
    layout = memory_layout(len(shape), device=device)
    model = model.eval().to(device=device, dtype=DTYPES[dtype])
    if layout != torch.contiguous_format:
        model = model.to(memory_format=layout)
    x = torch.randn(shape, device=device, dtype=DTYPES[dtype]).contiguous(memory_format=layout)
    cuda = device.type == "cuda"
    times = []
    with torch.inference_mode():
        for index in range(warmup + runs):
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            output = model(x)
            if cuda:
                torch.cuda.synchronize(device)
            if index >= warmup:
                times.append(time.perf_counter() - start)
    if not bool(torch.isfinite(output).all()):
        raise UserError(f"the network gives non-finite outputs (NaN or inf) in {dtype}: a latency of a broken "
                        "network is no measurement (its weights or batch-norm statistics, or the dtype's range)")
    times.sort()
    median = statistics.median(times)
    p90 = times[max(0, math.ceil(0.9 * len(times)) - 1)]
    return Latency(median_ms=median * 1e3, p90_ms=p90 * 1e3, images_per_second=batch / median, batch=batch,
                   resolution=resolution, device=device_name(device), dtype=dtype,
                   memory_format=LAYOUT_NAMES[layout], threads=torch.get_num_threads(),
                   torch=torch.__version__, warmup=warmup, runs=runs)
