"""The only place that builds torch modules: ``build(spec)`` turns any network spec into a module
(an EfficientNet from an ArchSpec, a ResNet from a reference)."""
from __future__ import annotations

from effnas.models.builder import build
from effnas.models.efficientnet import EfficientNet
from effnas.models.resnet import ResNet

__all__ = ["EfficientNet", "ResNet", "build"]
