from __future__ import annotations

import pytest

from effnas.space import presets
from effnas.space.compound import scale
from effnas.space.cost import cost
from effnas.space.errors import UserError
from effnas.space.rounding import round_filters, round_repeats

# Parameter counts of the reference EfficientNets (1000 classes), as timm reports them.
REFERENCE_PARAMS = {
    "efficientnet-b0": 5_288_548, "efficientnet-b1": 7_794_184, "efficientnet-b2": 9_109_994,
    "efficientnet-b3": 12_233_232, "efficientnet-b4": 19_341_616, "efficientnet-b5": 30_389_784,
    "efficientnet-b6": 43_040_704, "efficientnet-b7": 66_347_960,
    "mobilenetv2": 3_504_872, "mnasnet-a1": 3_887_038, "mnasnet-b1": 4_383_312,
}


@pytest.mark.parametrize("channels, width, expected", [
    (32, 1.0, 32), (32, 1.1, 32), (16, 1.1, 16), (40, 1.1, 48), (1280, 1.1, 1408), (1280, 2.0, 2560),
    (32, 1.4, 48), (24, 1.4, 32), (112, 1.2, 136), (4, 1.0, 8), (20, 1.0, 24), (100, 0.5, 48),
])
def test_round_filters(channels, width, expected):
    assert round_filters(channels, width) == expected


def test_round_repeats_ceils():
    assert [round_repeats(r, 1.2) for r in (1, 2, 3, 4)] == [2, 3, 4, 5]
    assert round_repeats(3, 1.0) == 3


@pytest.mark.parametrize("name", list(REFERENCE_PARAMS))
def test_preset_params_match_reference(name):
    preset = presets.get(name)
    assert cost(preset.arch(), preset.resolution).params == REFERENCE_PARAMS[name]


def test_b0_exact():
    c = cost(presets.get("efficientnet-b0").arch(), 224)
    assert (c.params, c.macs) == (5_288_548, 385_814_752)


def test_scale_scales_stem_and_head():
    b7 = presets.get("efficientnet-b7").arch()
    assert (b7.stem, b7.head) == (64, 2560)


@pytest.mark.parametrize("kwargs", [{"width": 0}, {"depth": -1}, {"width": float("inf")}])
def test_scale_rejects_bad_multipliers(kwargs):
    with pytest.raises(UserError):
        scale(presets.get("efficientnet-b0").arch(), **kwargs)
