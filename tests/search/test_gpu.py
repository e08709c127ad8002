"""The CUDA path: bf16 autocast, channels_last, the dataset resident on the GPU. Skips without a GPU."""
from __future__ import annotations

import pytest
import torch

from search.settings import TrainSettings
from search.trial import TrialSpec
from search.worker import run_trial

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_trial_trains_on_the_gpu_with_data_resident():
    from search.worker import _DATA_CACHE

    spec = TrialSpec(number=0, arch="stem_c16 ds_r1_k3_s1_c16_se0.25 ir_r2_k3_s2_e4_c24 head_c128",
                     dataset="digits", resolution=32, num_classes=10, split_seed=0, seed=0,
                     train=TrainSettings(epochs=2, batch_size=64, device="cuda"))
    result = run_trial(spec)
    assert result["device"].startswith("cuda:") and result["accuracy"] > 0.3
    data = next(iter(_DATA_CACHE.values()))
    assert data.train_x.is_cuda and data.val_x.is_cuda


def test_a_compiled_trial_trains_on_the_gpu():
    spec = TrialSpec(number=1, arch="stem_c16 ds_r1_k3_s1_c16 ir_r2_k3_s2_e4_c24 head_c128", dataset="digits",
                     resolution=32, num_classes=10, split_seed=0, seed=0,
                     train=TrainSettings(epochs=2, batch_size=64, device="cuda", compile=True))
    assert run_trial(spec)["accuracy"] > 0.3


def test_a_dataset_that_does_not_fit_the_gpu_stays_on_the_host(monkeypatch):
    import search.worker as worker

    monkeypatch.setattr(worker, "GPU_SHARE", 0.0)
    monkeypatch.setattr(worker, "_DATA_CACHE", {})
    spec = TrialSpec(number=2, arch="stem_c16 ds_r1_k3_s1_c16 ir_r2_k3_s2_e4_c24 head_c128", dataset="digits",
                     resolution=32, num_classes=10, split_seed=0, seed=0,
                     train=TrainSettings(epochs=2, batch_size=64, device="cuda"))
    result = run_trial(spec)
    assert result["device"].startswith("cuda:") and result["accuracy"] > 0.3
    data = next(iter(worker._DATA_CACHE.values()))
    assert not data.train_x.is_cuda  # batches travelled


def test_a_trial_with_cuda_graphs_trains_like_an_eager_one():
    arch = "stem_c16 ds_r1_k3_s1_c16_se0.25 ir_r2_k3_s2_e4_c24 head_c128"

    def spec(graphs: bool) -> TrialSpec:
        return TrialSpec(number=3, arch=arch, dataset="digits", resolution=32, num_classes=10, split_seed=0, seed=0,
                         train=TrainSettings(epochs=3, batch_size=64, device="cuda", drop_path=0.1,
                                             cuda_graphs=graphs))

    eager, graphed = run_trial(spec(False)), run_trial(spec(True))
    assert graphed["accuracy"] > 0.5 and abs(graphed["accuracy"] - eager["accuracy"]) < 0.15
