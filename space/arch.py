"""Architecture specs that round-trip through timm's block-string grammar.

A stage is one block string, e.g. ``ir_r2_k3_s2_e6_c24_se0.25``; an architecture is the
stages separated by spaces, with optional ``stem_cN`` and ``head_cN`` tokens, and two more that
only appear when they differ from an RGB image network: ``3d`` (the network is volumetric: Conv3d,
cubic kernels and inputs) and ``in_cN`` (N input channels instead of 3). A 2-D, 3-channel
architecture therefore prints exactly as in timm's grammar.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from effnas.space.checks import within
from effnas.space.errors import UserError

BLOCK_TYPES = ("ds", "ir")
DEFAULT_STEM = 32
DEFAULT_HEAD = 1280
# Bounds far beyond any EfficientNet (B7: kernel 5, 13 repeats, 640 channels, expansion 6), so that a typo
# fails at once instead of allocating terabytes or looping for hours.
MAX_KERNEL = 63
MAX_REPEATS = 256
MAX_CHANNELS = 1 << 16
MAX_EXPANSION = 64.0
MAX_STAGES = 64
DEFAULT_IN_CHANNELS = 3
SPATIAL_DIMS = (2, 3)  # images and volumes


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``repeats`` identical blocks, the first with ``stride``."""

    block: str = "ir"
    repeats: int = 1
    kernel: int = 3
    stride: int = 1
    expansion: float = 1.0
    channels: int = 16
    se: float = 0.0
    skip: bool = True
    relu: bool = False

    def __post_init__(self) -> None:
        if self.block not in BLOCK_TYPES:
            raise UserError(f"unknown block type {self.block!r}; allowed: {', '.join(BLOCK_TYPES)}")
        _check_int("repeats", self.repeats, minimum=1, maximum=MAX_REPEATS)
        _check_int("kernel", self.kernel, minimum=1, maximum=MAX_KERNEL)
        if self.kernel % 2 == 0:
            raise UserError(f"kernel must be odd, got {self.kernel}")
        if self.stride not in (1, 2):
            raise UserError(f"stride must be 1 or 2, got {self.stride}")
        _check_int("channels", self.channels, minimum=1, maximum=MAX_CHANNELS)
        if not (isinstance(self.expansion, (int, float)) and 1 <= self.expansion <= MAX_EXPANSION):
            raise UserError(f"expansion must be a number in [1, {MAX_EXPANSION:g}], got {self.expansion}")
        if self.block == "ds" and self.expansion != 1:
            raise UserError(f"a ds block has no expansion conv: expansion must be 1, got {self.expansion}")
        if not (isinstance(self.se, (int, float)) and 0 <= self.se <= 1):
            raise UserError(f"se ratio must be in (0, 1] (or absent), got {self.se}")
        object.__setattr__(self, "expansion", float(self.expansion))
        object.__setattr__(self, "se", float(self.se))

    @property
    def activation(self) -> str:
        return "relu" if self.relu else "silu"

    @classmethod
    def parse(cls, text: str) -> StageSpec:
        parts = text.strip().split("_")
        block, options = parts[0], parts[1:]
        if block not in BLOCK_TYPES:
            raise UserError(f"unknown block type {block!r} in {text!r}; allowed: {', '.join(BLOCK_TYPES)}")
        values: dict = {"block": block}
        for option in options:
            key, value = _split_option(option, text)
            if key in values:
                raise UserError(f"option {key!r} given twice in {text!r}")
            values[key] = value
        for required in ("r", "k", "s", "c"):
            if required not in values:
                raise UserError(f"block {text!r} lacks the {required!r} option")
        if values.get("se") == 0:
            raise UserError(f"se ratio must be in (0, 1], got 0 in {text!r}; leave se out for no SE")
        return cls(
            block=block,
            repeats=values["r"],
            kernel=values["k"],
            stride=values["s"],
            expansion=values.get("e", 1.0),
            channels=values["c"],
            se=values.get("se", 0.0),
            skip=not values.get("noskip", False),
            relu=values.get("nre", False),
        )

    def __str__(self) -> str:
        tokens = [self.block, f"r{self.repeats}", f"k{self.kernel}", f"s{self.stride}",
                  f"e{_fmt(self.expansion)}", f"c{self.channels}"]
        if self.se > 0:
            tokens.append(f"se{_fmt(self.se)}")
        if not self.skip:
            tokens.append("noskip")
        if self.relu:
            tokens.append("nre")
        return "_".join(tokens)


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: stem conv, stages, head conv (then pool, dropout, linear).

    ``dims`` is 2 for images (Conv2d, k x k kernels) and 3 for volumes (Conv3d, k x k x k kernels);
    ``in_channels`` is what the stem convolves (3 for RGB, often 1 for a volume).
    """

    stages: tuple[StageSpec, ...]
    stem: int = DEFAULT_STEM
    head: int = DEFAULT_HEAD
    dims: int = 2
    in_channels: int = DEFAULT_IN_CHANNELS

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            raise UserError("an architecture needs at least one stage")
        if len(self.stages) > MAX_STAGES:
            raise UserError(f"an architecture has at most {MAX_STAGES} stages, got {len(self.stages)}")
        _check_int("stem channels", self.stem, minimum=1, maximum=MAX_CHANNELS)
        _check_int("head channels", self.head, minimum=1, maximum=MAX_CHANNELS)
        check_dims(self.dims)
        _check_int("input channels", self.in_channels, minimum=1, maximum=MAX_CHANNELS)

    @classmethod
    def parse(cls, text: str) -> ArchSpec:
        if not isinstance(text, str) or not text.strip():
            raise UserError("empty architecture string")
        stages, extras = [], {}
        for token in text.split():
            match = re.fullmatch(r"(stem|head|in)_c(\S*)", token)
            dims = re.fullmatch(r"(\d+)d", token)
            if match:
                name, value = match.groups()
                key = "in_channels" if name == "in" else name
                if key in extras:
                    raise UserError(f"{name + '_c'!r} given twice in {text!r}")
                extras[key] = _parse_int(value, f"{name}_c", token)
            elif dims:
                if "dims" in extras:
                    raise UserError(f"the dimensionality is given twice in {text!r}")
                extras["dims"] = check_dims(int(dims.group(1)))
            else:
                stages.append(StageSpec.parse(token))
        return cls(stages=tuple(stages), **extras)

    def __str__(self) -> str:
        tokens = [f"{self.dims}d"] if self.dims != 2 else []
        if self.in_channels != DEFAULT_IN_CHANNELS:
            tokens.append(f"in_c{self.in_channels}")
        tokens += [f"stem_c{self.stem}"] + [str(s) for s in self.stages] + [f"head_c{self.head}"]
        return " ".join(tokens)

    @property
    def num_blocks(self) -> int:
        return sum(s.repeats for s in self.stages)


_FLAGS = {"noskip", "nre"}
_INT_OPTIONS = {"r", "k", "s", "c"}
_FLOAT_OPTIONS = {"e", "se"}


def _split_option(option: str, text: str) -> tuple[str, object]:
    if option in _FLAGS:
        return option, True
    match = re.fullmatch(r"(se|[a-z])(.*)", option)
    if not match:
        raise UserError(f"malformed option {option!r} in {text!r}")
    key, value = match.groups()
    if key in _INT_OPTIONS:
        return key, _parse_int(value, key, text)
    if key in _FLOAT_OPTIONS:
        try:
            number = float(value)
        except ValueError:
            raise UserError(f"option {key!r} needs a number, got {value!r} in {text!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise UserError(f"option {key!r} needs a finite number, got {value!r} in {text!r}")
        return key, number
    allowed = ", ".join(sorted(_INT_OPTIONS | _FLOAT_OPTIONS | _FLAGS))
    raise UserError(f"unknown option {option!r} in {text!r}; allowed: {allowed}")


def _parse_int(value: str, key: str, text: str) -> int:
    if not re.fullmatch(r"-?\d+", value):
        raise UserError(f"option {key!r} needs an integer, got {value!r} in {text!r}")
    return int(value)


def check_dims(dims: object) -> int:
    """2 (images) or 3 (volumes); anything else names the allowed values."""
    if isinstance(dims, bool) or dims not in SPATIAL_DIMS:
        raise UserError(f"dims must be 2 (images) or 3 (volumes), got {dims!r}")
    return int(dims)


def _check_int(name: str, value: object, *, minimum: int, maximum: int) -> None:
    if not within(value, minimum, maximum, integer=True):
        shown = value if not isinstance(value, int) or abs(value) < 10**12 else f"{value:.3g}"
        raise UserError(f"{name} must be an integer in [{minimum}, {maximum}], got {shown!r}")


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))
