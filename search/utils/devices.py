"""The device helpers: which device a name means, how it is recorded, the memory layout it trains fastest in,
and the threads and caches of this process: the one place that asks torch about devices."""
from __future__ import annotations

import torch


def memory_layout(ndim: int, *, device: torch.device) -> torch.memory_format:
    """The layout a batch of ``ndim`` axes (N C H W images, N C D H W volumes) trains fastest in on ``device``."""
    if ndim == 4:
        return torch.channels_last
    return torch.channels_last_3d if device.type == "cpu" else torch.contiguous_format


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """How a record names a device: ``cuda:<the GPU's model>`` or ``cpu``."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"


def cuda_count() -> int:
    return torch.cuda.device_count()


def set_threads(threads: int) -> None:
    """This process's torch intra-op threads."""
    torch.set_num_threads(threads)


def release_cuda_memory() -> None:
    """Give the CUDA caching allocator's free blocks back (between trials of different sizes)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
