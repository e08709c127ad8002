"""``build(spec)``: the module for any network spec effnas knows (EfficientNet-style arch or reference)."""
from __future__ import annotations

from torch import nn

from effnas.models.efficientnet import BATCH_NORM, EfficientNet
from effnas.models.resnet import ResNet
from effnas.space.arch import ArchSpec
from effnas.space.cost import Network
from effnas.space.errors import UserError
from effnas.space.references import ResNetSpec


def build(arch: Network, *, num_classes: int = 1000, dropout: float = 0.2, drop_path: float = 0.2,
          batch_norm: str = "torch") -> nn.Module:
    """The network for ``arch``; ``batch_norm`` is ``torch`` (defaults) or ``reference`` (eps 1e-3, momentum 0.01)."""
    if batch_norm not in BATCH_NORM:
        raise UserError(f"unknown batch_norm {batch_norm!r}; allowed: {', '.join(BATCH_NORM)}")
    for name, rate in (("dropout", dropout), ("drop_path", drop_path)):
        if not 0.0 <= rate < 1.0:
            raise UserError(f"{name} must be in [0, 1), got {rate}")
    if isinstance(arch, ResNetSpec):
        eps, momentum = BATCH_NORM[batch_norm]
        return ResNet(arch, num_classes=num_classes, dropout=dropout, drop_path=drop_path, bn_eps=eps,
                      bn_momentum=momentum)
    if isinstance(arch, ArchSpec):
        return EfficientNet(arch, num_classes=num_classes, dropout=dropout, drop_path=drop_path,
                            batch_norm=batch_norm)
    raise UserError(f"cannot build {arch!r}: not a network spec")
