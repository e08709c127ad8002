"""Folder datasets above the cache threshold are decoded once into a memory-mapped cache entry: the same tensors
as the in-memory decode, the same split, one entry per file list and resolution, nothing half-written."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from effnas.models import build
from effnas.search.data import dataset, imagecache, kinds
from effnas.search.settings import TrainSettings
from effnas.search.training.loop import train_and_evaluate
from effnas.space import presets
from effnas.space.errors import UserError
from tests.clirun import effnas


@pytest.fixture
def folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for n in range(20):
            pixels = rng.integers(0, 256, size=(24, 20, 3), dtype=np.uint8)  # not square: resizing is exercised
            Image.fromarray(pixels).save(root / label / f"{n}.png")
    return root


TINY = "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"


def entries(cache):
    return sorted(p.name for p in cache.iterdir())


def test_the_cache_gives_the_in_memory_dataset_and_decodes_once(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("EFFNAS_CACHE", str(cache))
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1000000")
    resident = kinds.load_dataset(f"folder:{folder}", resolution=16, seed=3)
    assert not cache.exists()
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1")
    cached = kinds.load_dataset(f"folder:{folder}", resolution=16, seed=3)
    assert isinstance(cached.train_x, dataset.Rows) and isinstance(cached.val_x, dataset.Rows)  # streamed, not copied
    for name in ("train_x", "train_y", "val_x", "val_y", "mean", "std"):
        value = getattr(cached, name)
        assert torch.equal(getattr(resident, name), value[0:len(value)]), name
    assert len(entries(cache)) == 1
    order = torch.randperm(len(resident.train_y), generator=torch.Generator().manual_seed(0))
    assert torch.equal(cached.train_x[order[:7]], resident.train_x[order[:7]])  # a batch reads its own rows
    assert torch.equal(cached.val_x[3], resident.val_x[3])
    assert cached.train_x.to("cpu") is cached.train_x  # a CPU trial keeps streaming: nothing is copied

    def trained(dataset):
        torch.manual_seed(0)
        model = build(presets.network(TINY), num_classes=2)
        return train_and_evaluate(model, dataset, TrainSettings(epochs=1, batch_size=8), torch.device("cpu"),
                                  seed=0).accuracy

    assert trained(cached) == trained(resident)  # the same batches, in the same order

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(imagecache, "build_entry", no_decoding)
    again = kinds.load_dataset(f"folder:{folder}", resolution=16, seed=3)
    assert torch.equal(again.train_x[0:len(again.train_x)], cached.train_x[0:len(cached.train_x)])
    monkeypatch.undo()
    monkeypatch.setenv("EFFNAS_CACHE", str(cache))
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1")
    kinds.load_dataset(f"folder:{folder}", resolution=8, seed=3)  # another resolution: another entry
    (folder / "dog" / "0.png").write_bytes((folder / "dog" / "1.png").read_bytes())  # a changed file: another
    kinds.load_dataset(f"folder:{folder}", resolution=16, seed=3)
    assert len(entries(cache)) == 3 and not [e for e in entries(cache) if e.startswith(".")]


def test_an_unreadable_image_leaves_no_entry(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("EFFNAS_CACHE", str(cache))
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1")
    (folder / "cat" / "7.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(UserError, match="unreadable image"):
        kinds.load_dataset(f"folder:{folder}", resolution=16)
    assert entries(cache) == []


def test_large_sets_get_the_same_statistics_chunk_by_chunk(monkeypatch):
    x = torch.randint(0, 256, (300, 3, 9, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    one_pass = dataset.channel_stats(x, 255.0)
    monkeypatch.setattr(dataset, "STATS_IN_ONE_PASS", 0)
    monkeypatch.setattr(dataset, "STATS_CHUNK", 5000)
    chunked = dataset.channel_stats(x, 255.0)
    for a, b in zip(one_pass, chunked):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_a_cached_folder_study_end_to_end(folder, tmp_path):
    cache = tmp_path / "cache"
    env = {"EFFNAS_CACHE": str(cache), "EFFNAS_CACHE_MIN_IMAGES": "1", "OMP_NUM_THREADS": "1"}
    args = ["search", "--dataset", f"folder:{folder}", "--storage", f"sqlite:///{tmp_path}/f.db", "--resolution",
            "8", "--epochs", "1", "--batch-size", "16", "--base", "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"]
    first = effnas(*args, "--trials", "2", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "decoding images into the cache" in first.stderr
    second = effnas(*args, "--trials", "3", env=env, cwd=tmp_path)  # resumes: maps the entry, decodes nothing
    assert second.returncode == 0, second.stderr[-2000:]
    assert "decoding images" not in second.stderr
    assert len(entries(cache)) == 1


def test_a_cached_held_out_set_equals_the_decoded_one(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1000000")
    decoded = kinds.load_test(f"folder:{folder}", resolution=16, classes=("cat", "dog"))
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1")
    cached = kinds.load_test(f"folder:{folder}", resolution=16, classes=("cat", "dog"))
    assert all(torch.equal(a, b) for a, b in zip(decoded, cached))


def test_a_study_that_cannot_fit_fails_before_decoding_into_the_cache(folder, tmp_path):
    cache = tmp_path / "cache"
    env = {"EFFNAS_CACHE": str(cache), "EFFNAS_CACHE_MIN_IMAGES": "1"}
    result = effnas("search", "--dataset", f"folder:{folder}", "--storage", f"sqlite:///{tmp_path}/f.db",
                    "--resolution", "8192", "--trials", "1", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "fits the budget" in result.stderr, result.stderr[-2000:]
    assert "decoding" not in result.stderr and not cache.exists() and not (tmp_path / "f.db").exists()
