"""cost() is exact in 3-D too: params equal the Conv3d module's, MACs equal fvcore's conv + linear count, on
cubic volumes of random (odd included) sides."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from effnas.models import build
from effnas.space import presets
from effnas.space.cost import cost, stage_costs
from tests.archgen import random_arch
from tests.space.test_cost import fvcore_macs


@pytest.mark.parametrize("seed", range(8))
def test_cost_matches_module_and_fvcore_in_3d(seed):
    """8 seeds x 25 = 200 random 3-D architectures over the whole grammar, 1-4 input channels, sides 5-24."""
    torch.set_num_threads(1)
    rng = random.Random(3000 + seed)
    odd = 0
    for _ in range(25):
        arch = random_arch(rng, dims=3)
        side = rng.randint(5, 24)
        odd += side % 2
        num_classes = rng.randint(1, 20)
        model = build(arch, num_classes=num_classes)
        expected = cost(arch, side, num_classes=num_classes)
        assert expected.params == sum(p.numel() for p in model.parameters()), str(arch)
        assert expected.macs == fvcore_macs(model, (arch.in_channels, side, side, side)), (str(arch), side)
    assert odd  # odd sides, whose stride-2 convolutions round up, are among them


def test_b0_in_3d_matches_fvcore_and_the_module_at_64():
    """EfficientNet-B0 as a volume network, 1 input channel, 2 classes, at 64^3."""
    torch.set_num_threads(2)
    arch = replace(presets.get("efficientnet-b0").arch(), dims=3, in_channels=1)
    model = build(arch, num_classes=2)
    c = cost(arch, 64, num_classes=2)
    assert c.params == sum(p.numel() for p in model.parameters())
    assert c.macs == fvcore_macs(model, (1, 64, 64, 64))


def test_stage_sizes_are_cubes_that_halve_rounding_up():
    arch = replace(presets.get("efficientnet-b0").arch(), dims=3)
    assert [r.out_size for r in stage_costs(arch, 33)] == [17, 17, 9, 5, 3, 3, 2, 2, 1]


def test_the_same_spec_costs_more_per_position_in_3d():
    """A k x k x k kernel has k times the taps of a k x k one: a 1-pixel input makes that the whole story."""
    arch = presets.get("efficientnet-b0").arch()
    volume = replace(arch, dims=3)
    assert cost(volume, 1).params > cost(arch, 1).params
    assert cost(volume, 1).macs > cost(arch, 1).macs
