"""Compound scaling as pure functions on specs: width/depth scaling with the reference rounding, the
(alpha, beta, gamma) grid under alpha * beta^2 * gamma^2 ~ 2, and the scaled members and family with
their exact costs. Modules never see multipliers."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from space.arch import ArchSpec
from space.cost import cost
from space.errors import UserError
from space.rounding import round_filters, round_repeats


def check_multiplier(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise UserError(f"{name} must be a positive number, got {value!r}")


def scale(arch: ArchSpec, *, width: float = 1.0, depth: float = 1.0) -> ArchSpec:
    """The architecture with every channel count (stem and head too) and repeat count scaled."""
    if not isinstance(arch, ArchSpec):
        raise UserError(f"width and depth scaling apply to EfficientNet-style specs, not to {str(arch)!r}")
    check_multiplier("width", width)
    check_multiplier("depth", depth)
    stages = tuple(
        replace(s, channels=round_filters(s.channels, width), repeats=round_repeats(s.repeats, depth))
        for s in arch.stages
    )
    return ArchSpec(stages=stages, stem=round_filters(arch.stem, width), head=round_filters(arch.head, width))


@dataclass(frozen=True)
class Triple:
    """Compound-scaling coefficients: depth alpha, width beta, resolution gamma."""

    alpha: float
    beta: float
    gamma: float

    @property
    def nominal(self) -> float:
        """alpha * beta^2 * gamma^2: the MACs multiplier the triple stands for at phi = 1."""
        return self.alpha * self.beta**2 * self.gamma**2


def check_coefficients(triple: Triple) -> None:
    for name in ("alpha", "beta", "gamma"):
        value = getattr(triple, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value < math.inf:
            raise UserError(f"{name} must be a number >= 1, got {value!r}")


def compound_grid(*, step: float = 0.05, tolerance: float = 0.1, max_coef: float = 2.0,
                  target: float = 2.0) -> list[Triple]:
    """Every (alpha, beta, gamma) on a grid from 1 to max_coef with |alpha*beta^2*gamma^2 - target| <= tolerance."""
    if not step > 0 or math.isinf(step):
        raise UserError(f"step must be > 0, got {step}")
    if not tolerance >= 0 or math.isinf(tolerance):
        raise UserError(f"tolerance must be >= 0, got {tolerance}")
    if not 1 <= max_coef < math.inf:
        raise UserError(f"max-coef must be >= 1, got {max_coef}")
    count = int(math.floor((max_coef - 1) / step + 1e-9)) + 1
    values = [round(1 + i * step, 10) for i in range(count)]
    return [Triple(a, b, g) for a in values for b in values for g in values
            if abs(a * b * b * g * g - target) <= tolerance + 1e-12]


def scale_resolution(resolution: int, gamma: float, phi: float, *, multiple: int = 8) -> int:
    """resolution * gamma^phi, to the nearest multiple of ``multiple`` (never below it)."""
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise UserError(f"resolution multiple must be a positive integer, got {multiple!r}")
    return max(multiple, int(math.floor(resolution * gamma**phi / multiple + 0.5)) * multiple)


@dataclass(frozen=True)
class Member:
    """One scaled network: the baseline at phi under a triple, with its exact cost."""

    phi: float
    depth: float
    width: float
    resolution: int
    arch: ArchSpec
    params: int
    macs: int
    macs_ratio: float  # real, after rounding channels, repeats and resolution
    nominal_ratio: float  # (alpha * beta^2 * gamma^2)^phi

    def to_dict(self) -> dict:
        return {"phi": self.phi, "depth": self.depth, "width": self.width, "resolution": self.resolution,
                "params": self.params, "macs": self.macs, "macs_ratio": self.macs_ratio,
                "nominal_ratio": self.nominal_ratio, "arch": str(self.arch)}


def member(base: ArchSpec, *, resolution: int, triple: Triple, phi: float, multiple: int = 8,
           num_classes: int = 1000) -> Member:
    check_coefficients(triple)
    if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not 0 <= phi < math.inf:
        raise UserError(f"phi must be a number >= 0, got {phi!r}")
    depth, width = triple.alpha**phi, triple.beta**phi
    scaled = scale(base, width=width, depth=depth)
    size = scale_resolution(resolution, triple.gamma, phi, multiple=multiple)
    base_macs = cost(base, resolution, num_classes=num_classes).macs
    c = cost(scaled, size, num_classes=num_classes)
    return Member(phi=phi, depth=round(depth, 6), width=round(width, 6), resolution=size, arch=scaled,
                  params=c.params, macs=c.macs, macs_ratio=c.macs / base_macs, nominal_ratio=triple.nominal**phi)


def family(base: ArchSpec, *, resolution: int, triple: Triple, phis: list[float], multiple: int = 8,
           num_classes: int = 1000) -> list[Member]:
    return [member(base, resolution=resolution, triple=triple, phi=p, multiple=multiple, num_classes=num_classes)
            for p in phis]
