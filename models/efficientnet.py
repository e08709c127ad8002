"""EfficientNet-style network built from an ArchSpec (a pure function of the spec).

The spec's ``dims`` picks 2-D or 3-D layers and its ``in_channels`` the stem's input; nothing else
about the network depends on them.
"""
from __future__ import annotations

import torch
from torch import nn

from effnas.models.blocks import CONVS, POOLS, ConvBnAct, MBConv
from effnas.space.arch import ArchSpec
from effnas.space.cost import check_num_classes, mid_channels, se_channels
from effnas.space.network import blocks

BATCH_NORM = {"torch": (1e-5, 0.1), "reference": (1e-3, 0.01)}


class EfficientNet(nn.Module):
    def __init__(self, arch: ArchSpec, *, num_classes: int = 1000, dropout: float = 0.2,
                 drop_path: float = 0.2, batch_norm: str = "torch") -> None:
        super().__init__()
        check_num_classes(num_classes)
        eps, momentum = BATCH_NORM[batch_norm]
        bn = {"bn_eps": eps, "bn_momentum": momentum, "dims": arch.dims}
        self.arch = arch
        self.stem = ConvBnAct(arch.in_channels, arch.stem, 3, 2, act=arch.stages[0].activation, **bn)
        total = arch.num_blocks
        self.blocks = nn.Sequential(*(MBConv(
            b.in_channels, b.out_channels, kernel=b.stage.kernel, stride=b.stride,
            mid_channels=mid_channels(b.in_channels, b.stage), expand=b.stage.block == "ir",
            se_channels=se_channels(b.in_channels, b.stage.se) if b.stage.se > 0 else 0, skip=b.stage.skip,
            act=b.stage.activation, drop_path_rate=drop_path * b.index / total, **bn,
        ) for b in blocks(arch)))
        self.head = ConvBnAct(arch.stages[-1].channels, arch.head, act=arch.stages[-1].activation, **bn)
        self.pool = POOLS[arch.dims](1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(arch.head, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, tuple(CONVS.values())):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / m.out_features ** 0.5
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.pool(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

