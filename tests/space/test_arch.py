from __future__ import annotations

import random

import pytest

from effnas.space import presets
from effnas.space.arch import ArchSpec, StageSpec
from effnas.space.errors import UserError
from tests.archgen import random_arch


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_presets_round_trip(name):
    arch = presets.get(name).arch()
    assert ArchSpec.parse(str(arch)) == arch


@pytest.mark.parametrize("seed", range(5))
def test_random_archs_round_trip(seed):
    rng = random.Random(seed)
    for _ in range(50):
        arch = random_arch(rng)
        assert ArchSpec.parse(str(arch)) == arch


def test_timm_strings_parse():
    stage = StageSpec.parse("ir_r2_k5_s2_e6_c40_se0.25")
    assert (stage.block, stage.repeats, stage.kernel, stage.stride, stage.expansion, stage.channels, stage.se) == (
        "ir", 2, 5, 2, 6.0, 40, 0.25)
    ds = StageSpec.parse("ds_r1_k3_s1_c16_noskip_nre")
    assert ds.block == "ds" and not ds.skip and ds.relu and ds.expansion == 1.0
    arch = ArchSpec.parse("ir_r1_k3_s1_e6_c8")
    assert (arch.stem, arch.head) == (32, 1280)
    assert ArchSpec.parse("stem_c24 ir_r1_k3_s1_e6_c8 head_c64").head == 64


@pytest.mark.parametrize("text, message", [
    ("ir_r1_k4_s1_e6_c16", "kernel must be odd"),
    ("ir_r1_k3_s3_e6_c16", "stride must be 1 or 2"),
    ("ir_r0_k3_s1_e6_c16", "repeats"),
    ("ir_r1_k3_s1_e6_c-16", "channels"),
    ("ir_r1_k3_s1_e6_c16_se1.5", "se ratio"),
    ("ir_r1_k3_s1_e6_c16_se0", "se ratio"),
    ("xx_r1_k3_s1_e6_c16", "unknown block type"),
    ("ir_r1_k3_s1_e6", "lacks the 'c'"),
    ("ir_r1_k3_s1_e6_c16_q3", "unknown option"),
    ("ir_r1_k3_s1_eX_c16", "needs a number"),
    ("ir_r1_k3_s1_e0.5_c16", "expansion"),
    ("ds_r1_k3_s1_e6_c16", "no expansion"),
    ("ir_r1_k3_s1_e6_c16 head_c0", "head channels"),
    ("stem_cx ir_r1_k3_s1_e6_c16", "integer"),
    ("", "empty"),
])
def test_malformed_strings_name_the_bad_value(text, message):
    with pytest.raises(UserError, match=message):
        ArchSpec.parse(text)


def test_unknown_preset_lists_presets():
    with pytest.raises(UserError, match="efficientnet-b0.*mnasnet-b1"):
        presets.resolve("efficientnet-b9")
