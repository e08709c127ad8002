"""Compound scaling as pure functions on specs: width/depth scaling with the reference rounding, the
(alpha, beta, gamma) grid under alpha * beta^2 * gamma^k ~ 2, and the scaled members and family with
their exact costs. Modules never see multipliers.

k is the number of spatial dimensions: MACs grow with depth d, with width squared (a convolution's
input and output channels) and with the resolution r to the power k (r^2 positions in an image,
r^3 in a volume), so the paper's alpha * beta^2 * gamma^2 ~ 2 is the 2-D case of d * w^2 * r^k.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from effnas.space.arch import ArchSpec, check_dims
from effnas.space.checks import within
from effnas.space.cost import cost
from effnas.space.errors import UserError
from effnas.space.rounding import round_filters, round_repeats

MAX_MULTIPLIER = 64.0  # width or depth: B7 is 2.0 x 3.1
MAX_COEFFICIENT = 4.0  # alpha, beta, gamma: the paper's are 1.2, 1.1, 1.15
MAX_PHI = 16.0  # B7 is about phi = 6 with the paper's triple
MAX_GRID_POINTS = 1_000_000  # (alpha, beta, gamma) points a grid search enumerates


def check_multiplier(name: str, value: float) -> None:
    if not within(value, 0, MAX_MULTIPLIER, above=True):
        raise UserError(f"{name} must be a number in (0, {MAX_MULTIPLIER:g}], got {value!r}")


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
    return replace(arch, stages=stages, stem=round_filters(arch.stem, width), head=round_filters(arch.head, width))


def constraint(dims: int) -> str:
    """The compound-scaling constraint's left side for ``dims`` spatial dimensions, as printed."""
    return f"alpha*beta^2*gamma^{check_dims(dims)}"


@dataclass(frozen=True)
class Triple:
    """Compound-scaling coefficients: depth alpha, width beta, resolution gamma, for networks of ``dims``
    spatial dimensions (the exponent of gamma)."""

    alpha: float
    beta: float
    gamma: float
    dims: int = 2

    @property
    def nominal(self) -> float:
        """alpha * beta^2 * gamma^dims: the MACs multiplier the triple stands for at phi = 1."""
        return self.alpha * self.beta**2 * self.gamma**self.dims


def check_coefficients(triple: Triple) -> None:
    for name in ("alpha", "beta", "gamma"):
        value = getattr(triple, name)
        if not within(value, 1, MAX_COEFFICIENT):
            raise UserError(f"{name} must be a number in [1, {MAX_COEFFICIENT:g}], got {value!r}")


def check_phi(phi: float) -> None:
    if not within(phi, 0, MAX_PHI):
        raise UserError(f"phi must be a number in [0, {MAX_PHI:g}], got {phi!r}")


def compound_grid(*, step: float = 0.05, tolerance: float = 0.1, max_coef: float = 2.0,
                  target: float = 2.0, dims: int = 2) -> list[Triple]:
    """Every (alpha, beta, gamma) on a grid from 1 to max_coef with |alpha*beta^2*gamma^dims - target| <= tolerance."""
    if not step > 0 or math.isinf(step):
        raise UserError(f"step must be > 0, got {step}")
    if not tolerance >= 0 or math.isinf(tolerance):
        raise UserError(f"tolerance must be >= 0, got {tolerance}")
    if not 1 <= max_coef <= MAX_COEFFICIENT:
        raise UserError(f"max-coef must be in [1, {MAX_COEFFICIENT:g}], got {max_coef}")
    count = int(math.floor((max_coef - 1) / step + 1e-9)) + 1
    if count**3 > MAX_GRID_POINTS:
        raise UserError(f"a grid from 1 to {max_coef:g} in steps of {step:g} has {count**3:,} (alpha, beta, gamma) "
                        f"points, more than {MAX_GRID_POINTS:,}; raise --step or lower --max-coef")
    check_dims(dims)
    values = [round(1 + i * step, 10) for i in range(count)]
    return [Triple(a, b, g, dims=dims) for a in values for b in values for g in values
            if abs(_product(a * b * b, g, dims) - target) <= tolerance + 1e-12]


def _product(value: float, factor: float, times: int) -> float:
    """value * factor * ... (``times`` factors), multiplied left to right as the 2-D grid always was."""
    for _ in range(times):
        value *= factor
    return value


def scale_resolution(resolution: int, gamma: float, phi: float, *, multiple: int = 8) -> int:
    """resolution * gamma^phi, to the nearest multiple of ``multiple`` (never below it)."""
    if not within(multiple, 1, integer=True):
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
    nominal_ratio: float  # (alpha * beta^2 * gamma^dims)^phi

    def to_dict(self) -> dict:
        return {"phi": self.phi, "depth": self.depth, "width": self.width, "resolution": self.resolution,
                "params": self.params, "macs": self.macs, "macs_ratio": self.macs_ratio,
                "nominal_ratio": self.nominal_ratio, "arch": str(self.arch)}


def member(base: ArchSpec, *, resolution: int, triple: Triple, phi: float, multiple: int = 8,
           num_classes: int = 1000) -> Member:
    check_coefficients(triple)
    if triple.dims != base.dims:
        raise UserError(f"a triple under {constraint(triple.dims)} cannot scale a {base.dims}-D architecture; "
                        f"its constraint is {constraint(base.dims)}")
    check_phi(phi)
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
