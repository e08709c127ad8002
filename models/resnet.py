"""ResNet-18/34/50 with torchvision's definitions (v1.5: the bottleneck strides on its 3x3), written here
so effnas needs no torchvision. Module names match torchvision's, so its state dicts (and timm's) load.

Optional ``dropout`` before the classifier and per-sample stochastic depth on the residual branch (as timm's
ResNet offers them) are off by default; neither adds a parameter or a key.
"""
from __future__ import annotations

import torch
from torch import nn

from effnas.models.blocks import drop_path
from effnas.space.cost import check_num_classes
from effnas.space.network import blocks
from effnas.space.references import ResNetSpec, ResNetStage


def _bn(channels: int, eps: float, momentum: float) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, stage: ResNetStage, stride: int, *, drop_path_rate: float, eps: float,
                 momentum: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, stage.planes, 3, stride, 1, bias=False)
        self.bn1 = _bn(stage.planes, eps, momentum)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(stage.planes, stage.channels, 3, 1, 1, bias=False)
        self.bn2 = _bn(stage.channels, eps, momentum)
        self.downsample = _projection(cin, stage.channels, stride, eps, momentum)
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(drop_path(out, self.drop_path_rate, self.training) + identity)


class Bottleneck(nn.Module):
    def __init__(self, cin: int, stage: ResNetStage, stride: int, *, drop_path_rate: float, eps: float,
                 momentum: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, stage.planes, 1, bias=False)
        self.bn1 = _bn(stage.planes, eps, momentum)
        self.conv2 = nn.Conv2d(stage.planes, stage.planes, 3, stride, 1, bias=False)
        self.bn2 = _bn(stage.planes, eps, momentum)
        self.conv3 = nn.Conv2d(stage.planes, stage.channels, 1, bias=False)
        self.bn3 = _bn(stage.channels, eps, momentum)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(cin, stage.channels, stride, eps, momentum)
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(drop_path(out, self.drop_path_rate, self.training) + identity)


def _projection(cin: int, cout: int, stride: int, eps: float, momentum: float) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout, eps, momentum))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    def __init__(self, spec: ResNetSpec, *, num_classes: int = 1000, dropout: float = 0.0, drop_path: float = 0.0,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1) -> None:
        super().__init__()
        check_num_classes(num_classes)
        self.arch = spec
        self.conv1 = nn.Conv2d(3, spec.stem, 7, 2, 3, bias=False)
        self.bn1 = _bn(spec.stem, bn_eps, bn_momentum)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        total, walked = spec.num_blocks, list(blocks(spec))
        for number, stage in enumerate(spec.stages, start=1):
            self.add_module(f"layer{number}", nn.Sequential(*(
                BLOCKS[stage.block](b.in_channels, stage, b.stride, drop_path_rate=drop_path * b.index / total,
                                    eps=bn_eps, momentum=bn_momentum)
                for b in walked if b.stage_index == number - 1)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(spec.head, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
