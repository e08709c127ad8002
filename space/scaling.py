"""Compound scaling as pure functions on specs, with the reference rounding rules."""
from __future__ import annotations

import math
from dataclasses import replace

from space.arch import ArchError, ArchSpec

CHANNEL_DIVISOR = 8


def round_filters(channels: int, width: float, *, divisor: int = CHANNEL_DIVISOR) -> int:
    """Scale ``channels`` by ``width``, to the nearest multiple of ``divisor`` (never 10 % below)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's block count by ``depth``, rounding up as the reference does."""
    return int(math.ceil(repeats * depth))


def check_multiplier(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ArchError(f"{name} must be a positive number, got {value!r}")


def scale(arch: ArchSpec, *, width: float = 1.0, depth: float = 1.0) -> ArchSpec:
    """The architecture with every channel count (stem and head too) and repeat count scaled."""
    check_multiplier("width", width)
    check_multiplier("depth", depth)
    stages = tuple(
        replace(s, channels=round_filters(s.channels, width), repeats=round_repeats(s.repeats, depth))
        for s in arch.stages
    )
    return ArchSpec(stages=stages, stem=round_filters(arch.stem, width), head=round_filters(arch.head, width))
