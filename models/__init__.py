"""The only place that builds torch modules: ``build(spec)`` turns any network spec into a module
(an EfficientNet from an ArchSpec, a ResNet from a reference)."""
from __future__ import annotations

from models.builder import build
from models.efficientnet import EfficientNet
from models.resnet import ResNet

__all__ = ["EfficientNet", "ResNet", "build"]
