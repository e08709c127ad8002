"""Measured latency of a network: eval mode, a fixed input shape, warm-up runs, then timed runs each
synchronised with the device (torch.utils.benchmark's conventions: report the median, the thread count, the
device and the precision; CUDA work is timed only after ``torch.cuda.synchronize``). Imports only torch."""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from space.errors import UserError

MIN_WARMUP, MIN_RUNS = 10, 50
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


def device_label(device: torch.device) -> str:
    return f"cuda:{torch.cuda.get_device_name(device)}" if device.type == "cuda" else "cpu"


def measure_latency(model: nn.Module, *, resolution: int, device: torch.device, batch: int = 1,
                    dtype: str | None = None, warmup: int = MIN_WARMUP, runs: int = MIN_RUNS,
                    channels_last: bool = True) -> Latency:
    """Time ``model`` (moved, in place, to ``device`` and ``dtype``) on a batch of ``batch`` images.
    ``dtype`` defaults to float32 on CPU and bfloat16 on CUDA; p90 is the nearest-rank 90th percentile."""
    if warmup < MIN_WARMUP or runs < MIN_RUNS:
        raise UserError(f"latency needs at least {MIN_WARMUP} warm-up and {MIN_RUNS} timed runs, got {warmup} "
                        f"and {runs}")
    if batch < 1:
        raise UserError(f"batch must be >= 1, got {batch}")
    dtype = dtype or ("bfloat16" if device.type == "cuda" else "float32")
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.eval().to(device=device, dtype=DTYPES[dtype], memory_format=layout)
    x = torch.randn(batch, 3, resolution, resolution, device=device, dtype=DTYPES[dtype])
    x = x.contiguous(memory_format=layout)
    cuda = device.type == "cuda"
    times = []
    with torch.inference_mode():
        for index in range(warmup + runs):
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize(device)
            if index >= warmup:
                times.append(time.perf_counter() - start)
    times.sort()
    median = statistics.median(times)
    p90 = times[max(0, math.ceil(0.9 * len(times)) - 1)]
    return Latency(median_ms=median * 1e3, p90_ms=p90 * 1e3, images_per_second=batch / median, batch=batch,
                   resolution=resolution, device=device_label(device), dtype=dtype,
                   memory_format="channels_last" if channels_last else "contiguous", threads=torch.get_num_threads(),
                   torch=torch.__version__, warmup=warmup, runs=runs)
