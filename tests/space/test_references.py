"""References (ResNet-18/34/50): exact cost from the name alone, against the module and fvcore."""
from __future__ import annotations

import pytest

from effnas.models import build
from effnas.space import presets
from effnas.space.cost import cost, stage_costs
from effnas.space.errors import UserError
from effnas.space.references import REFERENCES
from tests.space.test_cost import fvcore_macs


def test_resnet18_has_torchvisions_parameter_count():
    assert cost(REFERENCES["resnet18"], 224).params == 11_689_512


@pytest.mark.parametrize("name", list(REFERENCES))
@pytest.mark.parametrize("resolution, num_classes", [(224, 1000), (37, 10)])
def test_reference_cost_matches_module_and_fvcore(name, resolution, num_classes):
    spec = REFERENCES[name]
    model = build(spec, num_classes=num_classes)
    expected = cost(spec, resolution, num_classes=num_classes)
    assert expected.params == sum(p.numel() for p in model.parameters())
    assert expected.macs == fvcore_macs(model, resolution)


def test_stage_costs_add_up_and_name_the_layers():
    rows = stage_costs(REFERENCES["resnet50"], 224)
    assert [r.name for r in rows] == ["stem", "stage0", "stage1", "stage2", "stage3", "head"]
    assert [r.out_size for r in rows[:-1]] == [56, 56, 28, 14, 7]
    assert rows[-2].out_channels == 2048


def test_one_function_turns_any_text_into_a_spec():
    assert presets.network("resnet34") is REFERENCES["resnet34"]
    assert str(presets.network("efficientnet-b0")) == str(presets.get("efficientnet-b0").arch())
    assert str(presets.network("ir_r1_k3_s1_e6_c8")).endswith("head_c1280")
    with pytest.raises(UserError, match="resnet18"):
        presets.network("resnet19")


def test_references_are_refused_where_only_stages_make_sense():
    with pytest.raises(UserError, match="reference"):
        presets.efficientnet("resnet18", role="the base")
    from effnas.space.compound import scale

    with pytest.raises(UserError, match="resnet18"):
        scale(REFERENCES["resnet18"], width=1.1)
