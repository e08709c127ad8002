"""Random architectures drawn from the whole block grammar, for property tests."""
from __future__ import annotations

import random

from effnas.space.arch import ArchSpec, StageSpec


def random_stage(rng: random.Random) -> StageSpec:
    block = rng.choice(["ds", "ir"])
    return StageSpec(
        block=block,
        repeats=rng.randint(1, 3),
        kernel=rng.choice([3, 5, 7]),
        stride=rng.choice([1, 2]),
        expansion=1.0 if block == "ds" else rng.choice([1.0, 2.5, 3.0, 4.0, 6.0]),
        channels=rng.randint(1, 48),
        se=rng.choice([0.0, 0.0, 0.25, round(rng.uniform(0.05, 1.0), 3)]),
        skip=rng.random() < 0.8,
        relu=rng.random() < 0.2,
    )


def random_arch(rng: random.Random, *, max_stages: int = 5, dims: int = 2) -> ArchSpec:
    """A 2-D RGB architecture, or with ``dims=3`` a volume network with 1-4 input channels."""
    stages = tuple(random_stage(rng) for _ in range(rng.randint(1, max_stages)))
    arch = ArchSpec(stages=stages, stem=rng.randint(4, 40), head=rng.randint(8, 200))
    if dims == 2:
        return arch
    return ArchSpec(stages=arch.stages, stem=arch.stem, head=arch.head, dims=dims, in_channels=rng.randint(1, 4))
