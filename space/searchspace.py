"""A MnasNet-style factorized search space around a base architecture.

Per stage: kernel, expansion (1 means a depthwise-separable block), SE ratio, repeats and a width
ratio of the base channels; strides, stem, head and the resolution stay fixed. Every trial suggests
every parameter under a fixed name, so multivariate samplers see the whole space every time.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from effnas.space.arch import MAX_EXPANSION, MAX_KERNEL, MAX_REPEATS, ArchSpec, StageSpec
from effnas.space.checks import is_number, within
from effnas.space.errors import UserError
from effnas.space.rounding import round_filters

DIMENSIONS = ("kernel", "expansion", "se", "repeats", "width")
DEFAULT_CHOICES: dict[str, tuple] = {
    "kernel": (3, 5, 7),
    "expansion": (1, 3, 4, 6),
    "se": (0.0, 0.25),
    "width": (0.75, 1.0, 1.25),
}
DEFAULT_MAX_REPEATS = 4  # the default space never goes past 4 blocks per stage
MAX_WIDTH_RATIO = 16.0


@dataclass(frozen=True)
class StageChoices:
    kernel: tuple[int, ...]
    expansion: tuple[float, ...]
    se: tuple[float, ...]
    repeats: tuple[int, int]  # inclusive bounds
    width: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("kernel", "expansion", "se", "width"):
            values = getattr(self, name)
            if not values:
                raise UserError(f"search space: {name} needs at least one choice")
            odd = next((v for v in values if not is_number(v)), None)
            if odd is not None:
                raise UserError(f"search space: {name} choices must be numbers, got {odd!r}")
            if len(set(values)) != len(values):
                raise UserError(f"search space: {name} choices repeat: {list(values)}")
        for k in self.kernel:
            if not within(k, 1, MAX_KERNEL, integer=True) or k % 2 == 0:
                raise UserError(f"search space: kernel choices must be odd integers in [1, {MAX_KERNEL}], got {k!r}")
        for e in self.expansion:
            if not within(e, 1, MAX_EXPANSION):
                raise UserError(f"search space: expansion choices must be numbers in [1, {MAX_EXPANSION:g}], "
                                f"got {e!r}")
        for s in self.se:
            if not within(s, 0, 1):
                raise UserError(f"search space: se choices must be in [0, 1], got {s!r}")
        for w in self.width:
            if not within(w, 0, MAX_WIDTH_RATIO, above=True):
                raise UserError(f"search space: width choices must be numbers in (0, {MAX_WIDTH_RATIO:g}], got {w!r}")
        low, high = self.repeats
        if not (within(low, 1, MAX_REPEATS, integer=True) and within(high, low, MAX_REPEATS, integer=True)):
            raise UserError(f"search space: repeats bounds must be integers with 1 <= low <= high <= {MAX_REPEATS}, "
                            f"got {[low, high]}")
        for name in ("expansion", "se", "width"):  # numbers as floats: 3 and 3.0 are one choice
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))


@dataclass(frozen=True)
class SearchSpace:
    base: ArchSpec
    stages: tuple[StageChoices, ...]

    @classmethod
    def around(cls, base: ArchSpec, *, overrides: dict[str, Any] | None = None,
               stage_overrides: dict[int, dict[str, Any]] | None = None) -> SearchSpace:
        """The default choices around ``base``; ``overrides`` apply to every stage, then per stage."""
        overrides = overrides or {}
        stage_overrides = stage_overrides or {}
        _check_keys(overrides, "space")
        for index, values in stage_overrides.items():
            if not 0 <= index < len(base.stages):
                raise UserError(f"search space: stage {index} does not exist; the base has "
                                f"stages 0..{len(base.stages) - 1}")
            _check_keys(values, f"space stage {index}")
        stages = []
        for index, stage in enumerate(base.stages):
            values = {**DEFAULT_CHOICES, "repeats": _default_repeats(stage.repeats)}
            values.update(overrides)
            values.update(stage_overrides.get(index, {}))
            stages.append(StageChoices(
                kernel=tuple(values["kernel"]), expansion=tuple(values["expansion"]), se=tuple(values["se"]),
                repeats=tuple(values["repeats"]), width=tuple(values["width"]),
            ))
        space = cls(base=base, stages=tuple(stages))
        space.largest()  # every point is a valid architecture (channels, repeats within bounds)
        return space

    def suggest(self, trial: Any) -> ArchSpec:
        """Ask ``trial`` (an optuna Trial) for every dimension of every stage."""
        params = {}
        for i, c in enumerate(self.stages):
            params[f"s{i}_kernel"] = trial.suggest_categorical(f"s{i}_kernel", list(c.kernel))
            params[f"s{i}_expansion"] = trial.suggest_categorical(f"s{i}_expansion", list(c.expansion))
            params[f"s{i}_se"] = trial.suggest_categorical(f"s{i}_se", list(c.se))
            params[f"s{i}_repeats"] = trial.suggest_int(f"s{i}_repeats", c.repeats[0], c.repeats[1])
            params[f"s{i}_width"] = trial.suggest_categorical(f"s{i}_width", list(c.width))
        return self.arch(params)

    def arch(self, params: dict[str, Any]) -> ArchSpec:
        stages = []
        for i, base in enumerate(self.base.stages):
            expansion = float(params[f"s{i}_expansion"])
            stages.append(replace(
                base, block="ds" if expansion == 1 else "ir", expansion=expansion,
                kernel=int(params[f"s{i}_kernel"]), se=float(params[f"s{i}_se"]),
                repeats=int(params[f"s{i}_repeats"]),
                channels=round_filters(base.channels, float(params[f"s{i}_width"])),
            ))
        return replace(self.base, stages=tuple(stages))

    def base_params(self) -> dict[str, Any] | None:
        """The parameters that give back the base architecture, or None if it is not a point of the space."""
        params = {}
        for i, (s, c) in enumerate(zip(self.base.stages, self.stages)):
            if s.block == "ir" and s.expansion == 1:
                return None  # an ir block without expansion has no twin here (expansion 1 means ds)
            values = {"kernel": s.kernel, "expansion": s.expansion, "se": s.se, "width": 1.0}
            for name, value in values.items():
                if value not in getattr(c, name):
                    return None
            if not c.repeats[0] <= s.repeats <= c.repeats[1]:
                return None
            params.update({f"s{i}_{k}": v for k, v in values.items()})
            params[f"s{i}_repeats"] = s.repeats
        return params if self.arch(params) == self.base else None

    def smallest(self) -> ArchSpec:
        """The cheapest point: cost grows with every dimension, so take the least of each."""
        return self._extreme(min, 0)

    def largest(self) -> ArchSpec:
        """The costliest point (the greatest of every dimension)."""
        return self._extreme(max, 1)

    def _extreme(self, pick, bound: int) -> ArchSpec:
        return self.arch({
            f"s{i}_{name}": (c.repeats[bound] if name == "repeats" else pick(getattr(c, name)))
            for i, c in enumerate(self.stages) for name in DIMENSIONS
        })

    def distinct(self) -> int:
        """How many different architectures the space holds: widths that round to the same channels are one."""
        total = 1
        for base, c in zip(self.base.stages, self.stages):
            channels = {round_filters(base.channels, w) for w in c.width}
            total *= len(c.kernel) * len(c.expansion) * len(c.se) * (c.repeats[1] - c.repeats[0] + 1) * len(channels)
        return total

    def size(self) -> int:
        total = 1
        for c in self.stages:
            total *= len(c.kernel) * len(c.expansion) * len(c.se) * len(c.width) * (c.repeats[1] - c.repeats[0] + 1)
        return total

    def to_dict(self) -> dict:
        return {
            "base": str(self.base),
            "stages": [{"kernel": list(c.kernel), "expansion": list(c.expansion), "se": list(c.se),
                        "repeats": list(c.repeats), "width": list(c.width)} for c in self.stages],
        }


def _default_repeats(repeats: int) -> tuple[int, int]:
    return max(1, repeats - 1), max(repeats, min(DEFAULT_MAX_REPEATS, repeats + 1))


def _check_keys(values: dict, where: str) -> None:
    unknown = set(values) - set(DIMENSIONS)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(DIMENSIONS)}")
    for key, value in values.items():
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: {key} must be a list, got {value!r}")
        if key == "repeats" and len(value) != 2:
            raise UserError(f"{where}: repeats must be [low, high], got {value!r}")


__all__ = ["SearchSpace", "StageChoices", "StageSpec", "DIMENSIONS", "DEFAULT_CHOICES"]
