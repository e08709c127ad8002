"""Reference networks that are not EfficientNet-style: ResNet-18/34/50 with torchvision's definitions.

A reference is named, not written in the block grammar: ``resnet18`` is the whole spec. Its exact cost
is in :mod:`space.cost` beside the EfficientNet's, its module in ``models/resnet.py``. They are what an
EfficientNet user compares a found architecture against (``effnas show resnet18``, ``effnas train resnet50``,
a trial whose arch is ``resnet18``).
"""
from __future__ import annotations

from dataclasses import dataclass

from effnas.space.errors import UserError

RESNET_WIDTHS = (64, 128, 256, 512)  # torchvision's planes per layer
RESNET_STEM = 64


@dataclass(frozen=True)
class ResNetStage:
    """One of the four layers of a ResNet, described with the field names the stage tables use."""

    block: str  # basic | bottleneck
    repeats: int
    stride: int
    channels: int  # output channels: planes x expansion
    planes: int
    kernel: int = 3
    se: float = 0.0
    skip: bool = True
    activation: str = "relu"

    @property
    def expansion(self) -> float:
        """torchvision's ``expansion``: output channels over the block's inner width."""
        return float(self.channels // self.planes)


@dataclass(frozen=True)
class ResNetSpec:
    """torchvision's ResNet v1.5 (the stride on the bottleneck's 3x3): a name, a block kind, four layer depths."""

    name: str
    block: str
    layers: tuple[int, int, int, int]

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    @property
    def dims(self) -> int:
        """References are image networks (what EfficientNet users compare against)."""
        return 2

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def stem(self) -> int:
        return RESNET_STEM

    @property
    def head(self) -> int:
        """Features into the classifier."""
        return RESNET_WIDTHS[-1] * self.expansion

    @property
    def stages(self) -> tuple[ResNetStage, ...]:
        return tuple(ResNetStage(block=self.block, repeats=n, stride=1 if i == 0 else 2,
                                 channels=planes * self.expansion, planes=planes)
                     for i, (n, planes) in enumerate(zip(self.layers, RESNET_WIDTHS)))

    @property
    def num_blocks(self) -> int:
        return sum(self.layers)

    def __str__(self) -> str:
        return self.name


REFERENCES: dict[str, ResNetSpec] = {
    "resnet18": ResNetSpec("resnet18", "basic", (2, 2, 2, 2)),
    "resnet34": ResNetSpec("resnet34", "basic", (3, 4, 6, 3)),
    "resnet50": ResNetSpec("resnet50", "bottleneck", (3, 4, 6, 3)),
}


def get(name: str) -> ResNetSpec:
    try:
        return REFERENCES[name]
    except KeyError:
        raise UserError(f"unknown reference {name!r}; available: {', '.join(REFERENCES)}") from None
