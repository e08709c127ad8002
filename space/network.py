"""What every network spec effnas costs and builds declares (:class:`NetworkSpec`), and the block walk.

An EfficientNet (:class:`space.arch.ArchSpec`) and a reference ResNet (:class:`space.references.ResNetSpec`)
are both a stem, stages of repeated blocks and a head. :func:`blocks` is the one place that derives a block's
stride and input channels from its stage: the first repeat of a stage takes the stage's stride and the previous
stage's output channels (the stem's for the first stage); every later repeat has stride 1 and takes the stage's
own channels. The cost model, the builders and the timm mapping all walk a network through it.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class StageLike(Protocol):
    block: str
    repeats: int
    stride: int
    channels: int


class NetworkSpec(Protocol):
    """A network spec: ``dims`` (2 images, 3 volumes), the stem's ``in_channels``, stem and head widths, stages."""

    @property
    def dims(self) -> int: ...

    @property
    def in_channels(self) -> int: ...

    @property
    def stem(self) -> int: ...

    @property
    def head(self) -> int: ...

    @property
    def stages(self) -> Sequence[Any]: ...

    @property
    def num_blocks(self) -> int: ...


@dataclass(frozen=True)
class Block:
    """One block of a network, where the walk puts it."""

    stage: Any  # the StageSpec (or ResNetStage) the block repeats
    stage_index: int
    repeat: int  # its place in its stage: 0 is the first
    index: int  # its place among all the network's blocks
    in_channels: int
    stride: int

    @property
    def out_channels(self) -> int:
        return self.stage.channels


def blocks(spec: NetworkSpec) -> Iterator[Block]:
    """Every block of ``spec`` in order, with its stride and input channels."""
    cin, index = spec.stem, 0
    for stage_index, stage in enumerate(spec.stages):
        for repeat in range(stage.repeats):
            yield Block(stage, stage_index, repeat, index, cin, stage.stride if repeat == 0 else 1)
            cin, index = stage.channels, index + 1
