"""Leaf modules with flat, typed arguments (timm's style): decisions made once in __init__.

Every block takes ``dims``: 2 builds Conv2d / BatchNorm2d, 3 builds Conv3d / BatchNorm3d from the same
code, so an image network and a volume network differ in their layer classes only.
"""
from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}
CONVS: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: nn.Conv3d}
BATCH_NORMS: dict[int, type[nn.Module]] = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
POOLS: dict[int, type[nn.Module]] = {2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the residual branch per sample, rescale the survivors."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class ConvBnAct(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1, *,
                 groups: int = 1, act: str | None = "silu", bn_eps: float = 1e-5,
                 bn_momentum: float = 0.1, dims: int = 2) -> None:
        layers: list[nn.Module] = [
            CONVS[dims](in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
            BATCH_NORMS[dims](out_channels, eps=bn_eps, momentum=bn_momentum),
        ]
        if act is not None:
            layers.append(ACTIVATIONS[act](inplace=True))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int, *, act: str = "silu", dims: int = 2) -> None:
        super().__init__()
        self.reduce = CONVS[dims](channels, reduced, 1)
        self.act = ACTIVATIONS[act](inplace=True)
        self.expand = CONVS[dims](reduced, channels, 1)
        self.spatial = tuple(range(2, 2 + dims))  # the axes squeezed: (H, W) or (D, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(self.spatial, keepdim=True)
        scale = self.expand(self.act(self.reduce(scale)))
        return x * scale.sigmoid()


class MBConv(nn.Module):
    """Inverted residual (``expand`` True) or depthwise-separable block, with optional SE."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int, stride: int,
                 mid_channels: int, expand: bool, se_channels: int, skip: bool, act: str,
                 drop_path_rate: float, bn_eps: float, bn_momentum: float, dims: int = 2) -> None:
        super().__init__()
        conv = {"bn_eps": bn_eps, "bn_momentum": bn_momentum, "dims": dims}
        self.has_skip = skip and stride == 1 and in_channels == out_channels
        self.drop_path_rate = drop_path_rate
        self.expand = ConvBnAct(in_channels, mid_channels, act=act, **conv) if expand else nn.Identity()
        self.depthwise = ConvBnAct(mid_channels, mid_channels, kernel, stride, groups=mid_channels,
                                   act=act, **conv)
        self.se = SqueezeExcite(mid_channels, se_channels, act=act, dims=dims) if se_channels else nn.Identity()
        self.project = ConvBnAct(mid_channels, out_channels, act=None, **conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.has_skip:
            out = drop_path(out, self.drop_path_rate, self.training) + x
        return out
