"""The only place that builds torch modules."""
from __future__ import annotations

from models.efficientnet import EfficientNet, build

__all__ = ["EfficientNet", "build"]
