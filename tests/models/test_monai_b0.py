"""EfficientNet-B0 in 3-D against MONAI's EfficientNetBN (a test-only oracle, in the dev extra).

Both count 4,690,942 parameters for 1 input channel and 2 classes, and fvcore counts the same MACs at even
sides. At odd sides they differ, by design: MONAI pads TF-style with padding planned once for B0's
224-pixel input (every stride-2 layer there sees an even size), so a 63^3 volume shrinks like floor(n/2);
effnas pads k // 2 and shrinks like ceil(n/2), which is what space/cost.py counts.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from effnas.models import build
from effnas.space import presets
from effnas.space.cost import cost
from tests.space.test_cost import fvcore_macs

monai_nets = pytest.importorskip("monai.networks.nets")


@pytest.fixture(scope="module")
def both():
    torch.set_num_threads(2)
    arch = replace(presets.get("efficientnet-b0").arch(), dims=3, in_channels=1)
    theirs = monai_nets.EfficientNetBN("efficientnet-b0", pretrained=False, spatial_dims=3, in_channels=1,
                                       num_classes=2)
    return arch, build(arch, num_classes=2), theirs


def test_same_parameters_tensor_by_tensor(both):
    arch, ours, theirs = both
    shapes = sorted(tuple(p.shape) for p in ours.parameters())
    assert shapes == sorted(tuple(p.shape) for p in theirs.parameters())
    assert cost(arch, 64, num_classes=2).params == sum(p.numel() for p in theirs.parameters())


def test_same_macs_at_64_and_where_odd_sides_part(both):
    """effnas's own module is checked against cost() at 64^3 and at odd sides in tests/space/test_cost3d.py."""
    arch, _, theirs = both
    assert fvcore_macs(theirs, (1, 64, 64, 64)) == cost(arch, 64, num_classes=2).macs
    assert fvcore_macs(theirs, (1, 65, 65, 65)) == cost(arch, 64, num_classes=2).macs  # floor: 65 acts as 64
    assert cost(arch, 65, num_classes=2).macs > cost(arch, 64, num_classes=2).macs  # ceil: 65 acts as 66
