"""The one rounding rule for channel counts, and the one for repeats (the reference EfficientNet's)."""
from __future__ import annotations

import math

CHANNEL_DIVISOR = 8


def make_divisible(value: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """``value`` to the nearest multiple of ``divisor`` (never below it), plus one step if that falls 10 % short.

    timm's ``make_divisible`` and the reference ``round_filters`` are this function.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def round_filters(channels: int, width: float, *, divisor: int = CHANNEL_DIVISOR) -> int:
    """Scale ``channels`` by ``width`` and round as the reference does."""
    return make_divisible(channels * width, divisor)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's block count by ``depth``, rounding up as the reference does."""
    return int(math.ceil(repeats * depth))
