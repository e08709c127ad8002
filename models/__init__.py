"""The only place that builds torch modules: ``build(arch)`` turns an ArchSpec into an EfficientNet."""
from __future__ import annotations

from models.efficientnet import EfficientNet, build

__all__ = ["EfficientNet", "build"]
