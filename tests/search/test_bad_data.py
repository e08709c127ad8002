"""Bad datasets and a bad image cache: each is a UserError (one line, exit status 2) raised before anything is
decoded or written, or -- a broken cache entry -- decoded again; and decoding into the cache prints nothing but its
progress bar."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from effnas.search.data import cifar10, imagecache, kinds
from effnas.search.data.volumes import read_volume
from effnas.space.errors import UserError
from tests.clirun import ROOT, assert_user_error
from tests.studies.test_bad_input import FAST, run, snapshot


def make_folder(root, *, per_class: int, classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for n in range(per_class):
            Image.fromarray(rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)).save(root / name / f"{n}.png")
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("EFFNAS_CACHE", str(folder))
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1")
    return folder


def no_decoding(*args, **kwargs):
    raise AssertionError("decoded")


# 1. The pool's decoding processes inherited effnas's SIGTERM handler: the pool's shutdown SIGTERM then printed
# "Process ForkPoolWorker-1: Traceback ... Terminated", or hung the pool, in some runs. Each load here starts eight
# decoding processes (one image a chunk), and is repeated: with the inherited handler 5 runs in 6 failed.
LOADS = textwrap.dedent("""
    import os, sys
    from effnas.search.data import imagecache
    from effnas.search.utils import signals
    from effnas.search.data.kinds import load_dataset

    imagecache.CHUNK = 1
    os.cpu_count = lambda: 8
    signals.install()  # as the CLI does
    for n in range(int(sys.argv[2])):
        os.environ["EFFNAS_CACHE"] = f"{sys.argv[3]}/{n}"  # a new entry each time: the pool runs every time
        load_dataset(f"folder:{sys.argv[1]}", resolution=8)
""")


def test_decoding_into_the_cache_prints_no_traceback(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=8)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EFFNAS_CACHE_MIN_IMAGES": "5", "OMP_NUM_THREADS": "1"}
    loads = subprocess.Popen([sys.executable, "-c", LOADS, str(root), "8", str(tmp_path / "cache")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = loads.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(loads.pid, signal.SIGKILL)  # the decoding processes too
        loads.communicate()
        pytest.fail("decoding into the cache hung")
    assert loads.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "Terminated" not in stderr, stderr[-3000:]
    assert stderr.count("decoding images into the cache") == 8


def test_decoding_processes_leave_signals_to_the_parent():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        imagecache.default_signals()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


# 2. A broken entry is decoded again, not a traceback.
def truncate_images(entry):
    path = entry / "images.npy"
    os.truncate(path, path.stat().st_size - 100)


def garbage_labels(entry):
    (entry / "labels.npy").write_bytes(b"not an array" * 10)


def pickled_labels(entry):
    np.save(entry / "labels.npy", np.array([{"x": 1}] * 4, dtype=object), allow_pickle=True)


def other_labels(entry):
    np.save(entry / "labels.npy", np.zeros(8, dtype=np.int64))


def other_shape(entry):
    np.save(entry / "images.npy", np.zeros((8, 3, 4, 4), dtype=np.uint8))


BREAKS = [truncate_images, lambda e: (e / "images.npy").unlink(), garbage_labels, pickled_labels, other_labels,
          other_shape, lambda e: (e / "done").unlink(), lambda e: (e / "labels.npy").unlink()]


@pytest.mark.parametrize("damage", BREAKS, ids=["truncated images", "no images", "garbage labels", "pickled labels",
                                                "other labels", "other shape", "no done", "no labels"])
def test_a_broken_entry_is_decoded_again(tmp_path, cache, damage):
    root = make_folder(tmp_path / "imgs", per_class=4)
    first = kinds.load_dataset(f"folder:{root}", resolution=8)
    images, labels = first.train_x[0:len(first.train_x)].clone(), first.train_y.clone()
    del first  # its memory map reads the entry that is damaged next
    [entry] = cache.iterdir()
    damage(entry)
    again = kinds.load_dataset(f"folder:{root}", resolution=8)
    assert torch.equal(again.train_x[0:len(again.train_x)], images) and torch.equal(again.train_y, labels)
    assert [p.name for p in cache.iterdir()] == [entry.name]  # rebuilt in its place, no scratch left
    assert sorted(p.name for p in entry.iterdir()) == ["done", "images.npy", "labels.npy", "meta.json"]


def test_an_entry_broken_again_and_again_is_an_error(tmp_path, cache, monkeypatch):
    root = make_folder(tmp_path / "imgs", per_class=4)
    monkeypatch.setattr(imagecache, "open_entry", lambda *args: None)
    with pytest.raises(UserError, match="broken again"):
        kinds.load_dataset(f"folder:{root}", resolution=8)


# 3. The split is checked from the file count, before anything is decoded, read or cached.
def test_a_split_with_nothing_to_train_on_fails_before_the_cache(tmp_path, cache, monkeypatch):
    root = make_folder(tmp_path / "imgs", per_class=4)
    monkeypatch.setattr(imagecache, "build_entry", no_decoding)
    monkeypatch.setattr(imagecache, "decode_image", no_decoding)
    with pytest.raises(UserError, match="leaves 0 to train on"):
        kinds.load_dataset(f"folder:{root}", resolution=8, val_fraction=0.9999)
    assert not cache.exists()


def test_a_split_with_nothing_to_train_on_exits_2_and_writes_nothing(tmp_path, cache, monkeypatch):
    make_folder(tmp_path / "imgs", per_class=4)
    cache.mkdir()
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "5")  # run() passes the environment on
    before = snapshot(tmp_path)
    result, _ = run(["search", "--dataset", "folder:imgs", "--storage", "sqlite:///x.db", "--val-fraction", "0.9999",
                     *FAST], tmp_path)
    assert_user_error(result, "to train on")
    assert snapshot(tmp_path) == before


def test_a_training_split_of_one_image_is_refused(tmp_path, cache, monkeypatch):
    root = make_folder(tmp_path / "imgs", per_class=1)
    monkeypatch.setattr(imagecache, "decode_image", no_decoding)
    with pytest.raises(UserError, match="leaves 1 to train on; training needs at least 2"):
        kinds.load_dataset(f"folder:{root}", resolution=8)
    assert not cache.exists()


def test_a_training_split_of_one_volume_is_refused(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / "v" / name).mkdir(parents=True)
        np.save(tmp_path / "v" / name / "0.npy", np.ones((4, 4, 4), dtype=np.float32))
    monkeypatch.setattr("effnas.search.data.volumes.load_volumes", no_decoding)
    with pytest.raises(UserError, match="training needs at least 2"):
        kinds.load_dataset(f"volumes:{tmp_path / 'v'}", resolution=8)


def test_the_smallest_split_that_trains_loads(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=2)  # 4 images: 1 to validate, 3 to train
    loaded = kinds.load_dataset(f"folder:{root}", resolution=8)
    assert loaded.split["train"] == 3 and loaded.split["validation"] == 1


# 4. The cache threshold.
@pytest.mark.parametrize("text", ["abc", "-1", "1.5", ""])
def test_a_bad_cache_threshold_names_the_variable(monkeypatch, text):
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", text)
    with pytest.raises(UserError, match="EFFNAS_CACHE_MIN_IMAGES"):
        imagecache.min_images()


def test_the_cache_threshold_takes_whole_numbers(monkeypatch):
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "0")
    assert imagecache.min_images() == 0
    monkeypatch.delenv("EFFNAS_CACHE_MIN_IMAGES")
    assert imagecache.min_images() == 2000


# 5. CIFAR-10 batches whose labels do not match their images.
def write_batch(folder, labels, *, images=5):
    data_ = np.zeros((images, 3072), dtype=np.uint8)
    with open(folder / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": data_, b"labels": labels}, handle)


@pytest.mark.parametrize("labels, message", [
    ([0, 1, 2, 3, 4, 5], "6 labels for 5 images"),
    ([0, 1, 2, 3], "4 labels for 5 images"),
    ([[0], [1], [2], [3], [4]], "not a flat list of ints"),
    (np.zeros((5, 1), dtype=np.int64), "not a flat list of ints"),
    ([0, 1, 2, 3, 10], "label 10 is not a class"),
    ([0, 1, 2, 3, -1], "label -1 is not a class"),
    ([0.0, 1.0, 2.0, 3.0, 4.0], "not a flat list of ints"),
    ([True, False, True, False, True], "not a flat list of ints"),
    ([0, 1, 2, 3, 2**70], "not a class"),
    (b"\x00\x01\x02\x03\x04", "not a flat list of ints"),
    (None, "not a flat list of ints"),
])
def test_cifar10_labels_are_one_int_class_per_image(tmp_path, labels, message):
    write_batch(tmp_path, labels)
    with pytest.raises(UserError, match=f"unreadable CIFAR-10 batch .*{message}"):
        kinds.load_dataset(f"cifar10:{tmp_path}", resolution=8)


def test_cifar10_labels_may_be_an_array(tmp_path):
    write_batch(tmp_path, np.array([0, 1, 2, 3, 9], dtype=np.int32))
    images, labels = cifar10.read_batches(tmp_path)
    assert labels.tolist() == [0, 1, 2, 3, 9] and len(images) == 5


# 6. A volume past float32's range is refused without numpy's overflow warning (a second stderr line).
@pytest.mark.parametrize("value, message", [(1e300, "beyond float32's range"), (np.inf, "NaN or infinite"),
                                            (np.nan, "NaN or infinite")])
def test_a_volume_that_float32_cannot_hold_is_refused_without_a_warning(tmp_path, value, message):
    path = tmp_path / "v.npy"
    np.save(path, np.full((4, 4, 4), value, dtype=np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserError, match=message):
            read_volume(path)
