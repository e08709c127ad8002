"""The CUDA path in 3-D: Conv3d under bf16 autocast, the volumes resident on the GPU, in the contiguous layout
(channels_last_3d measured slower there). Skips without a GPU; it needs no Optuna."""
from __future__ import annotations

import pytest
import torch

from effnas.models import build
from effnas.search.data.kinds import load_dataset
from effnas.search.settings import TrainSettings
from effnas.search.training.loop import train_and_evaluate
from effnas.search.utils.devices import pick_device
from effnas.space.arch import ArchSpec

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_a_volume_network_trains_on_the_gpu():
    device = pick_device("cuda")
    data = load_dataset("shapes3d", resolution=16, seed=0).to(device)  # what the worker's cache keeps
    assert data.train_x.is_cuda and data.dims == 3
    torch.manual_seed(0)
    model = build(ArchSpec.parse("3d in_c1 stem_c16 ds_r1_k3_s1_c16_se0.25 ir_r2_k3_s2_e4_c24 ir_r2_k5_s2_e4_c40 "
                                 "head_c128"), num_classes=data.num_classes)
    result = train_and_evaluate(model, data, TrainSettings(epochs=4, batch_size=64, device="cuda"), device, seed=0)
    assert next(model.parameters()).is_cuda
    assert model.stem[0].weight.is_contiguous()
    assert result.accuracy > 0.4 and result.loss == result.loss  # chance is 0.2; the loss is not NaN
