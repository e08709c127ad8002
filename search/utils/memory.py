"""How much memory a device has free: the bound every allocation effnas plans is checked against."""
from __future__ import annotations

import os
from typing import Any

from effnas.space.errors import UserError

GIB = 1 << 30


def available_bytes(device: Any = "cpu") -> int:
    """Free memory on ``device``: the host's available RAM, or a CUDA device's free memory."""
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def device_memory(device: str | None) -> int | None:
    """What a trial on ``device`` (a --device value) can use: a CUDA device's total memory, else the host's
    available memory; None (no bound) for an unknown device."""
    if device is None:
        return None
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            return None  # a driver without the workers' GPUs: checked where the trial runs
        index = torch.device(device).index if ":" in device else 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    return available_bytes("cpu")


def gib(n: float) -> str:
    return f"{n / GIB:,.1f} GiB"


def check_fits(count: int, resolution: int, *, where: str, channels: int = 3, dims: int = 2,
               itemsize: int = 1) -> None:
    """Refuse a dataset whose samples (uint8 images, or float32 volumes with ``itemsize`` 4) at ``resolution``
    would not fit in the host's free memory."""
    need = count * channels * resolution**dims * itemsize
    free = available_bytes("cpu")
    if need > 0.8 * free:
        samples = "images" if dims == 2 else "volumes"
        raise UserError(f"dataset {where!r}: {count:,} {samples} at {'x'.join([str(resolution)] * dims)} need "
                        f"{gib(need)} in memory and {gib(free)} are free; lower --resolution")
