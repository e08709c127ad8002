"""ResNet with torchvision's definitions: its module names, its initialisation, its output shape."""
from __future__ import annotations

import pytest
import torch

from effnas.models import ResNet, build
from effnas.models.resnet import Bottleneck
from effnas.space.references import REFERENCES


def test_names_match_torchvisions_state_dict():
    keys = list(build(REFERENCES["resnet50"]).state_dict())
    assert keys[:5] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"]
    assert "layer1.0.downsample.0.weight" in keys and "layer2.0.downsample.1.running_var" in keys
    assert "layer1.1.downsample.0.weight" not in keys
    assert keys[-2:] == ["fc.weight", "fc.bias"]


def test_bottleneck_strides_on_its_3x3_conv():
    block = build(REFERENCES["resnet50"]).layer2[0]
    assert isinstance(block, Bottleneck)
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)


@pytest.mark.parametrize("name", list(REFERENCES))
def test_builds_and_gives_finite_logits_at_small_sizes(name):
    model = build(REFERENCES[name], num_classes=10).eval()
    assert isinstance(model, ResNet)
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()


def test_torchvisions_weights_give_torchvisions_outputs():
    torchvision = pytest.importorskip("torchvision")  # not installed in CI (no CPU wheel); checked where it is
    theirs = torchvision.models.resnet18(num_classes=7).eval()
    ours = build(REFERENCES["resnet18"], num_classes=7).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 40, 40)
    assert torch.equal(theirs(x), ours(x))
