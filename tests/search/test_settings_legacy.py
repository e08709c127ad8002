"""Settings recorded before --lr-batch existed keep their meaning: --lr was the peak at any batch size."""
from __future__ import annotations

from effnas.search.settings import TrainSettings
from effnas.studies.train import _differences


def test_a_record_without_lr_batch_keeps_its_peak():
    old = {"epochs": 1, "batch_size": 128, "lr": 3e-3}
    settings = TrainSettings.from_dict(old)
    assert settings.lr_batch == 128 and settings.peak_lr == 3e-3
    assert TrainSettings.from_dict({**old, "lr_batch": 32}).peak_lr == 3e-3 * 4


def test_a_run_saved_before_the_new_settings_resumes_as_the_same_run():
    new = {"batch_size": 64, "lr": 3e-3, "lr_batch": 64, "compile": False, "cuda_graphs": False, "epochs": 3}
    saved = {"arch": "a", "resolution": 32, "settings": {"batch_size": 64, "lr": 3e-3, "epochs": 3}}
    identity = {"arch": "a", "resolution": 32, "settings": new}
    assert _differences(saved, identity) == []
    assert _differences(saved, {**identity, "settings": {**new, "lr_batch": 32}}) == ["lr_batch"]
