from __future__ import annotations

import torch

from effnas.models import build
from effnas.search.data.kinds import load_dataset
from effnas.search.settings import TrainSettings
from effnas.search.training.loop import train_and_evaluate
from effnas.space.arch import ArchSpec

TINY = ArchSpec.parse("stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32")


def train_once(seed: int) -> float:
    data = load_dataset("digits", resolution=12, seed=0)
    torch.manual_seed(seed)
    model = build(TINY, num_classes=10, drop_path=0.1)
    settings = TrainSettings(epochs=1, batch_size=64)
    return train_and_evaluate(model, data, settings, torch.device("cpu"), seed=seed).accuracy


def test_same_seed_same_accuracy_and_it_learns():
    first, second = train_once(3), train_once(3)
    assert first == second
    assert first > 0.3  # chance is 0.1


def test_lr_schedule_warms_up_and_decays():
    from effnas.search.training.optim import lr_factor

    factors = [lr_factor(s, 100, 10) for s in range(100)]
    assert factors[0] == 0.1 and factors[9] == 1.0
    assert all(a >= b for a, b in zip(factors[10:], factors[11:])) and factors[-1] < 0.01
