"""Volume networks come from the same blocks as image networks: only the layer classes change."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from effnas.models import build
from effnas.models.blocks import MBConv, SqueezeExcite
from effnas.space import presets
from effnas.space.arch import ArchSpec

TINY_3D = ArchSpec.parse("3d in_c1 stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k5_s2_e3_c16_se0.25 head_c32")


@pytest.mark.parametrize("name", ["efficientnet-b0", "mobilenetv2", "mnasnet-a1"])
def test_presets_as_volume_networks_give_finite_logits(name):
    torch.manual_seed(0)
    arch = replace(presets.get(name).arch(), dims=3, in_channels=1)
    model = build(arch, num_classes=2).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 1, 19, 19, 19))
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_layers_are_3d_throughout():
    model = build(TINY_3D, num_classes=3)
    kinds = {type(m) for m in model.modules()}
    assert {nn.Conv3d, nn.BatchNorm3d, nn.AdaptiveAvgPool3d} <= kinds
    assert not kinds & {nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d}
    assert model.stem[0].in_channels == 1 and model.stem[0].kernel_size == (3, 3, 3)
    depthwise = next(m for m in model.modules() if isinstance(m, MBConv)).depthwise[0]
    assert depthwise.groups == depthwise.in_channels and len(depthwise.kernel_size) == 3


def test_one_block_implementation_for_both_dimensionalities():
    """The same module tree, parameter by parameter: a 3-D kernel has one more axis of the same size."""
    image = build(replace(TINY_3D, dims=2, in_channels=1), num_classes=3)
    volume = build(TINY_3D, num_classes=3)
    assert [type(m).__name__ for m in image.modules() if isinstance(m, (MBConv, SqueezeExcite))] == \
        [type(m).__name__ for m in volume.modules() if isinstance(m, (MBConv, SqueezeExcite))]
    flat, deep = image.state_dict(), volume.state_dict()
    assert list(flat) == list(deep)
    for key, tensor in flat.items():
        shape = tuple(tensor.shape)
        expected = shape + (shape[-1],) if tensor.ndim == 4 else shape  # k x k -> k x k x k
        assert tuple(deep[key].shape) == expected, key


def test_forward_features_keep_depth_height_width():
    model = build(TINY_3D, num_classes=3).eval()
    x = torch.randn(2, 1, 9, 12, 16)
    features = model.forward_features(x)
    assert features.shape == (2, 32, 3, 3, 4)
    assert torch.equal(model.forward_head(features), model(x))


def test_se_squeezes_the_whole_volume_and_reads_block_input_width():
    model = build(ArchSpec.parse("3d stem_c32 ir_r1_k3_s1_e6_c16_se0.25"))
    block = next(m for m in model.modules() if isinstance(m, MBConv))
    assert block.se.reduce.out_channels == 8 and isinstance(block.se.reduce, nn.Conv3d)
    se = block.se.eval()
    x = torch.randn(1, 192, 3, 4, 5)
    gate = torch.sigmoid(se.expand(se.act(se.reduce(x.mean((2, 3, 4), keepdim=True)))))
    assert torch.allclose(se(x), x * gate)


def test_stochastic_depth_masks_whole_volumes():
    model = build(ArchSpec.parse("3d ir_r3_k3_s1_e2_c32"), drop_path=0.5).train()
    block = [m for m in model.modules() if isinstance(m, MBConv)][2]
    torch.manual_seed(0)
    x = torch.randn(64, 32, 2, 2, 2)
    branch = block.project(block.se(block.depthwise(block.expand(x))))
    torch.manual_seed(0)
    kept = (block(x) - x).flatten(1)
    dropped = kept.abs().amax(1) == 0
    assert 0 < dropped.sum() < 64  # some samples lose the branch, wholly
    assert torch.allclose(kept[~dropped], branch.flatten(1)[~dropped] / (1 - block.drop_path_rate), atol=1e-5)
