"""How much memory a device has free: the bound every allocation effnas plans is checked against."""
from __future__ import annotations

import os
from typing import Any

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


def gib(n: float) -> str:
    return f"{n / GIB:,.1f} GiB"
