from __future__ import annotations

import pytest
import torch

from effnas.models import build
from effnas.models.blocks import MBConv, drop_path
from effnas.space import presets
from effnas.space.arch import ArchSpec
from effnas.space.errors import UserError


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_presets_build_and_give_finite_logits(name):
    arch = presets.get(name).arch()
    model = build(arch, num_classes=10).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 64, 64))
    assert logits.shape == (1, 10)
    assert torch.isfinite(logits).all()


def test_forward_features_and_head_compose():
    model = build(ArchSpec.parse("ds_r1_k3_s1_c16_se0.25 ir_r2_k5_s2_e6_c24 head_c64"), num_classes=3).eval()
    x = torch.randn(2, 3, 32, 32)
    features = model.forward_features(x)
    assert features.shape == (2, 64, 8, 8)
    assert torch.equal(model.forward_head(features), model(x))


def test_skip_and_stochastic_depth_rates():
    model = build(ArchSpec.parse("ir_r3_k3_s2_e6_c16 ir_r1_k3_s1_e6_c16_noskip"), drop_path=0.2)
    blocks = [m for m in model.modules() if isinstance(m, MBConv)]
    assert [b.has_skip for b in blocks] == [False, True, True, False]
    assert [b.drop_path_rate for b in blocks] == pytest.approx([0.0, 0.05, 0.1, 0.15])


def test_drop_path_is_per_sample_and_unbiased():
    torch.manual_seed(0)
    x = torch.ones(4000, 1, 2, 2)
    out = drop_path(x, 0.25, training=True)
    per_sample = out.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()
    assert out.mean().item() == pytest.approx(1.0, abs=0.05)
    assert torch.equal(drop_path(x, 0.25, training=False), x)


def test_batch_norm_settings():
    arch = ArchSpec.parse("ir_r1_k3_s1_e6_c8")
    bn = next(m for m in build(arch, batch_norm="reference").modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)
    bn = next(m for m in build(arch).modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert (bn.eps, bn.momentum) == (1e-5, 0.1)
    with pytest.raises(UserError, match="batch_norm"):
        build(arch, batch_norm="tf")


def test_se_width_comes_from_block_input():
    model = build(ArchSpec.parse("stem_c32 ir_r1_k3_s1_e6_c16_se0.25"))
    block = next(m for m in model.modules() if isinstance(m, MBConv))
    assert block.se.reduce.out_channels == 8  # int(32 * 0.25), not 192 * 0.25
