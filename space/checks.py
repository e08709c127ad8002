"""The one number check effnas's validators share: is a value a number (a bool is not one) in a range?

Each caller keeps its own message (it names the setting and the range in the user's words); the rule that
``True`` is not 1, that NaN is in no range and that an int is a float where a float is asked for lives here.
"""
from __future__ import annotations

from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def within(value: Any, low: float | None = None, high: float | None = None, *, integer: bool = False,
           above: bool = False) -> bool:
    """``value`` is an int (``integer``) or a number, ``>= low`` (``> low`` where ``above``) and ``<= high``;
    a bound of None is no bound. NaN is within nothing."""
    if not (is_int(value) if integer else is_number(value)):
        return False
    if low is not None and not (value > low if above else value >= low):
        return False
    return high is None or value <= high
