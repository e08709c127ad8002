"""Leaf modules with flat, typed arguments (timm's style): decisions made once in __init__."""
from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}


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
                 bn_momentum: float = 0.1) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum),
        ]
        if act is not None:
            layers.append(ACTIVATIONS[act](inplace=True))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int, *, act: str = "silu") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = ACTIVATIONS[act](inplace=True)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.expand(self.act(self.reduce(scale)))
        return x * scale.sigmoid()


class MBConv(nn.Module):
    """Inverted residual (``expand`` True) or depthwise-separable block, with optional SE."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int, stride: int,
                 mid_channels: int, expand: bool, se_channels: int, skip: bool, act: str,
                 drop_path_rate: float, bn_eps: float, bn_momentum: float) -> None:
        super().__init__()
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.has_skip = skip and stride == 1 and in_channels == out_channels
        self.drop_path_rate = drop_path_rate
        self.expand = ConvBnAct(in_channels, mid_channels, act=act, **bn) if expand else nn.Identity()
        self.depthwise = ConvBnAct(mid_channels, mid_channels, kernel, stride, groups=mid_channels,
                                   act=act, **bn)
        self.se = SqueezeExcite(mid_channels, se_channels, act=act) if se_channels else nn.Identity()
        self.project = ConvBnAct(mid_channels, out_channels, act=None, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.has_skip:
            out = drop_path(out, self.drop_path_rate, self.training) + x
        return out
