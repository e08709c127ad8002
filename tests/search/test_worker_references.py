"""A trial whose arch is a reference name trains through the same worker as any candidate (the path
``effnas confirm`` retrains references through)."""
from __future__ import annotations

from effnas.search.settings import TrainSettings
from effnas.search.trial import TrialSpec
from effnas.search.worker import run_trial


def test_run_trial_trains_a_reference_by_name():
    spec = TrialSpec(number=0, arch="resnet18", resolution=16, dataset="digits", num_classes=10, split_seed=0,
                     seed=0, train=TrainSettings(epochs=1, batch_size=64, device="cpu"))
    result = run_trial(spec)
    assert 0.1 < result["accuracy"] <= 1.0 and result["device"] == "cpu"
