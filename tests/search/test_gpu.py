"""The CUDA path: bf16 autocast, channels_last, the dataset resident on the GPU. Skips without a GPU."""
from __future__ import annotations

import pytest
import torch

from effnas.search.settings import TrainSettings
from effnas.search.trial import TrialSpec
from effnas.search.worker import run_trial

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_trial_trains_on_the_gpu_with_data_resident():
    from effnas.search.worker import _DATA_CACHE

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
    import effnas.search.worker as worker

    monkeypatch.setattr("effnas.search.data.dataset.GPU_SHARE", 0.0)
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


@pytest.mark.parametrize("share, on_gpu", [(0.5, True), (0.0, False)])
def test_a_streamed_folder_goes_on_the_gpu_only_where_it_fits(tmp_path, monkeypatch, share, on_gpu):
    import numpy as np
    from PIL import Image

    import effnas.search.worker as worker
    from effnas.search.data.dataset import Rows

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for n in range(40):
            pixels = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{n}.png")
    monkeypatch.setenv("EFFNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1")
    monkeypatch.setattr("effnas.search.data.dataset.GPU_SHARE", share)
    monkeypatch.setattr(worker, "_DATA_CACHE", {})
    spec = TrialSpec(number=4, arch="stem_c16 ds_r1_k3_s1_c16 ir_r2_k3_s2_e4_c24 head_c128",
                     dataset=f"folder:{tmp_path / 'imgs'}", resolution=16, num_classes=2, split_seed=0, seed=0,
                     train=TrainSettings(epochs=2, batch_size=16, device="cuda"))
    result = run_trial(spec)
    assert result["device"].startswith("cuda:") and 0.0 <= result["accuracy"] <= 1.0
    data = next(iter(worker._DATA_CACHE.values()))
    if on_gpu:  # copied chunk by chunk onto the device
        assert isinstance(data.train_x, torch.Tensor) and data.train_x.is_cuda
    else:  # streamed from the mapped cache; batches travel
        assert isinstance(data.train_x, Rows) and data.train_x.device.type == "cpu"


def test_host_batches_are_read_ahead_pinned_and_arrive_on_the_gpu_unchanged():
    from effnas.search.data.dataset import Rows
    from effnas.search.data.readahead import batches, gather

    base = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    rows = Rows(base, torch.randperm(64)[:48])
    assert gather(rows, torch.tensor([1, 2]), pin=True).is_pinned()
    picks = [torch.tensor([5, 0, 7]), slice(0, 16), slice(40, 48)]
    for source in (rows, rows[0:48]):  # streamed rows, and a host-kept tensor
        for got, pick in zip(batches(source, picks, torch.device("cuda")), picks, strict=True):
            assert got.is_cuda and torch.equal(got.cpu(), rows[0:48][pick])
