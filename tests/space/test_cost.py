"""cost() is exact: params equal the module's, MACs equal fvcore's conv + linear count."""
from __future__ import annotations

import random

import pytest
import torch
from fvcore.nn import FlopCountAnalysis

from effnas.models import build
from effnas.space.arch import ArchSpec
from effnas.space.cost import cost
from effnas.space.errors import UserError
from tests.archgen import random_arch


def fvcore_macs(model: torch.nn.Module, resolution: int | tuple[int, ...]) -> int:
    """fvcore's conv + linear count on one input: a 3-channel square of side ``resolution``, or any C x ... shape."""
    shape = (3, resolution, resolution) if isinstance(resolution, int) else resolution
    analysis = FlopCountAnalysis(model.eval(), torch.zeros(1, *shape))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    counts = analysis.by_operator()
    return int(counts.get("conv", 0) + counts.get("linear", 0) + counts.get("addmm", 0))


@pytest.mark.parametrize("seed", range(8))
def test_cost_matches_module_and_fvcore(seed):
    """8 seeds x 25 = 200 random architectures over the whole grammar, odd sizes included."""
    rng = random.Random(1000 + seed)
    for _ in range(25):
        arch = random_arch(rng)
        resolution = rng.randint(32, 256)
        num_classes = rng.randint(1, 20)
        model = build(arch, num_classes=num_classes)
        expected = cost(arch, resolution, num_classes=num_classes)
        assert expected.params == sum(p.numel() for p in model.parameters()), str(arch)
        assert expected.macs == fvcore_macs(model, resolution), (str(arch), resolution)


def test_b0_matches_fvcore():
    from effnas.space.presets import get

    arch = get("efficientnet-b0").arch()
    assert fvcore_macs(build(arch), 224) == cost(arch, 224).macs == 385_814_752


@pytest.mark.parametrize("resolution", [0, -3, 2.5, True])
def test_cost_rejects_bad_resolution(resolution):
    with pytest.raises(UserError, match="resolution"):
        cost(ArchSpec.parse("ir_r1_k3_s1_e6_c8"), resolution)


def test_cost_rejects_bad_num_classes():
    with pytest.raises(UserError, match="num_classes"):
        cost(ArchSpec.parse("ir_r1_k3_s1_e6_c8"), 32, num_classes=0)


def test_inference_activations_count_the_largest_layer_alive_at_once():
    from effnas.space import presets
    from effnas.space.cost import activations, inference_activations

    b0 = presets.network("efficientnet-b0")
    # stage 2's first block at 224 px: input 16x112², expanded 96x112², after the stride-2 depthwise 96x56², out 24x56²
    assert inference_activations(b0, 224) == 16 * 112**2 + 96 * 112**2 + 96 * 56**2 + 24 * 56**2 == 1_781_248
    assert inference_activations(b0, 224) < activations(b0, 224) / 10  # eval holds a layer, training keeps them all
    assert inference_activations(presets.network("resnet18"), 224) == 3 * 64 * 56**2
