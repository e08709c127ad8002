"""Exact analytic parameter and multiply-add counts, computed from the spec alone.

MACs count convolutions and the classifier's linear layer (what fvcore counts for them):
batch norm, activations, pooling and the SE mean are not multiply-adds of weights.
Padding is ``kernel // 2``, so a stride-s conv maps a size n to ``ceil(n / s)``.
Inputs are squares (2-D) or cubes (3-D) of side ``resolution``: a kernel has ``k ** dims`` taps
and a feature map ``size ** dims`` positions, which is all that changes with the dimensionality.
"""
from __future__ import annotations

from dataclasses import dataclass

from effnas.space.arch import ArchSpec, StageSpec
from effnas.space.checks import within
from effnas.space.errors import UserError
from effnas.space.network import blocks
from effnas.space.references import ResNetSpec
from effnas.space.rounding import make_divisible

Network = ArchSpec | ResNetSpec  # any spec effnas can cost and build; both are a space.network.NetworkSpec


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int


@dataclass(frozen=True)
class StageCost:
    name: str
    params: int
    macs: int
    out_channels: int
    out_size: int  # the side of the square (2-D) or cube (3-D) this part outputs


def mid_channels(in_channels: int, stage: StageSpec) -> int:
    """The expanded width of an inverted residual, rounded as timm does; a ds block does not expand."""
    if stage.block == "ds":
        return in_channels
    return make_divisible(in_channels * stage.expansion)


def se_channels(in_channels: int, se: float) -> int:
    """SE width is taken from the block's input, as in the reference code."""
    return max(1, int(in_channels * se))


MAX_RESOLUTION = 8192  # far beyond any EfficientNet input (B7: 600)


def check_resolution(resolution: int) -> None:
    if not within(resolution, 1, MAX_RESOLUTION, integer=True):
        raise UserError(f"resolution must be an integer in [1, {MAX_RESOLUTION}], got {resolution!r}")


def check_num_classes(num_classes: int) -> None:
    if not within(num_classes, 1, integer=True):
        raise UserError(f"num_classes must be a positive integer, got {num_classes!r}")


def _conv(cin: int, cout: int, kernel: int, out_size: int, dims: int, *, groups: int = 1, bias: bool = False,
          bn: bool = True) -> tuple[int, int]:
    weights = cout * (cin // groups) * kernel**dims
    params = weights + (cout if bias else 0) + (2 * cout if bn else 0)
    return params, weights * out_size**dims


def _down(size: int, stride: int) -> int:
    return -(-size // stride)


def _block(cin: int, stage: StageSpec, stride: int, size: int, dims: int) -> tuple[int, int, int]:
    """(params, macs, out_size) of one block whose input is ``cin`` channels at ``size``."""
    params = macs = 0
    mid = mid_channels(cin, stage)
    if stage.block == "ir":
        p, m = _conv(cin, mid, 1, size, dims)
        params, macs = params + p, macs + m
    size = _down(size, stride)
    p, m = _conv(mid, mid, stage.kernel, size, dims, groups=mid)
    params, macs = params + p, macs + m
    if stage.se > 0:
        rd = se_channels(cin, stage.se)
        for a, b in ((mid, rd), (rd, mid)):
            p, m = _conv(a, b, 1, 1, dims, bias=True, bn=False)
            params, macs = params + p, macs + m
    p, m = _conv(mid, stage.channels, 1, size, dims)
    return params + p, macs + m, size


def stage_costs(arch: Network, resolution: int, *, num_classes: int = 1000) -> list[StageCost]:
    """Per-part costs: ``stem``, one entry per stage, then ``head`` (conv, pool, classifier)."""
    check_resolution(resolution)
    check_num_classes(num_classes)
    if isinstance(arch, ResNetSpec):
        return _resnet_stage_costs(arch, resolution, num_classes)
    dims = arch.dims
    size = _down(resolution, 2)
    params, macs = _conv(arch.in_channels, arch.stem, 3, size, dims)
    rows = [StageCost("stem", params, macs, arch.stem, size)]
    walked = list(blocks(arch))
    for index, stage in enumerate(arch.stages):
        params = macs = 0
        for block in (b for b in walked if b.stage_index == index):
            p, m, size = _block(block.in_channels, stage, block.stride, size, dims)
            params, macs = params + p, macs + m
        rows.append(StageCost(f"stage{index}", params, macs, stage.channels, size))
    params, macs = _conv(arch.stages[-1].channels, arch.head, 1, size, dims)
    params += arch.head * num_classes + num_classes
    macs += arch.head * num_classes
    rows.append(StageCost("head", params, macs, num_classes, 1))
    return rows


def _resnet_stage_costs(spec: ResNetSpec, resolution: int, num_classes: int) -> list[StageCost]:
    """torchvision's ResNet: 7x7/2 conv and 3x3/2 max-pool (padded, so each halves rounding up), four layers
    whose first block strides (a 1x1 projection where the shape changes), average pool, linear."""
    size = _down(_down(resolution, 2), 2)
    params, macs = _conv(3, spec.stem, 7, _down(resolution, 2), 2)
    rows = [StageCost("stem", params, macs, spec.stem, size)]
    walked = list(blocks(spec))
    for index, stage in enumerate(spec.stages):
        params = macs = 0
        for block in (b for b in walked if b.stage_index == index):
            cin, out = block.in_channels, _down(size, block.stride)
            if stage.block == "basic":
                convs = [(cin, stage.planes, 3, out), (stage.planes, stage.channels, 3, out)]
            else:
                convs = [(cin, stage.planes, 1, size), (stage.planes, stage.planes, 3, out),
                         (stage.planes, stage.channels, 1, out)]
            if block.stride != 1 or cin != stage.channels:
                convs.append((cin, stage.channels, 1, out))  # the projection shortcut
            for a, b, kernel, at in convs:
                p, m = _conv(a, b, kernel, at, 2)
                params, macs = params + p, macs + m
            size = out
        rows.append(StageCost(f"stage{index}", params, macs, stage.channels, size))
    cin = spec.head
    rows.append(StageCost("head", cin * num_classes + num_classes, cin * num_classes, num_classes, 1))
    return rows


def activations(arch: Network, resolution: int) -> int:
    """Elements one sample keeps for the backward pass, counted from the shapes alone: every convolution's
    output and its batch norm's and activation's (three tensors of the conv's output size; a projection keeps
    two), the stem, the blocks and the head conv. A planning bound for memory, not an exact count (autograd
    frees some, and the SE and pooling add a little). ResNets: 0 (not estimated)."""
    if isinstance(arch, ResNetSpec):
        return 0
    check_resolution(resolution)
    dims = arch.dims
    size = _down(resolution, 2)
    total = 3 * arch.stem * size**dims
    for block in blocks(arch):
        stage = block.stage
        mid = mid_channels(block.in_channels, stage)
        if stage.block == "ir":
            total += 3 * mid * size**dims
        size = _down(size, block.stride)
        total += 3 * mid * size**dims + 2 * stage.channels * size**dims
    return total + 3 * arch.head * size**dims


def inference_activations(arch: Network, resolution: int, *, num_classes: int = 1000) -> int:
    """Elements one sample holds at once in eval mode, at most: the largest layer's input and outputs alive
    together (an inverted residual's input, its expanded map before and after the depthwise convolution, and its
    output; the stem's input and output; the head's). ResNets: three times the largest stage output (a block's
    input, middle and output). A planning bound for memory, not an exact count."""
    check_resolution(resolution)
    if isinstance(arch, ResNetSpec):
        return 3 * max(row.out_channels * row.out_size**arch.dims
                       for row in stage_costs(arch, resolution, num_classes=num_classes))
    dims = arch.dims
    size = _down(resolution, 2)
    peak = arch.in_channels * resolution**dims + arch.stem * size**dims
    for block in blocks(arch):
        cin, mid, before = block.in_channels, mid_channels(block.in_channels, block.stage), size
        size = _down(size, block.stride)
        peak = max(peak, cin * before**dims + mid * before**dims + mid * size**dims + block.out_channels * size**dims)
    return max(peak, arch.stages[-1].channels * size**dims + arch.head * size**dims)


def cost(arch: Network, resolution: int, *, num_classes: int = 1000) -> Cost:
    """Exact parameter count and conv + linear multiply-adds of any spec on a square (or cubic) input."""
    rows = stage_costs(arch, resolution, num_classes=num_classes)
    return Cost(params=sum(r.params for r in rows), macs=sum(r.macs for r in rows))
