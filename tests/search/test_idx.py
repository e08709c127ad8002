"""IDX datasets (``idx:PATH``, ``fashion-mnist``): the format read raw and gzipped, every bad file one error, the
cache path identical to the in-memory one, the t10k split as the held-out test set only."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from effnas.search.data import idx, kinds
from effnas.space.errors import UserError
from tests.clirun import assert_user_error, effnas


def idx_bytes(array: np.ndarray, *, magic: bytes | None = None) -> bytes:
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_idx(folder, stem: str, array: np.ndarray, *, gz: bool = False, **kw) -> None:
    data = idx_bytes(array, **kw)
    if gz:
        (folder / (stem + ".gz")).write_bytes(gzip.compress(data))
    else:
        (folder / stem).write_bytes(data)


def make_set(folder, *, count: int = 40, test: int = 20, classes: int = 4, side: int = 28, gz: bool = False,
             seed: int = 0):
    """A small IDX set: images whose brightness says their class (so a network can learn it)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for stems, n in ((idx.TRAIN, count), (idx.TEST, test)):
        if not n:
            continue
        labels = np.arange(n) % classes
        images = (labels[:, None, None] * (255 // classes) + rng.integers(0, 20, (n, side, side))).clip(0, 255)
        write_idx(folder, stems[0], images, gz=gz)
        write_idx(folder, stems[1], labels, gz=gz)
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_raw_and_gzipped_files_read_alike(tmp_path, gz):
    root = make_set(tmp_path / "set", gz=gz)
    plain = make_set(tmp_path / "plain")
    data = kinds.load_dataset(f"idx:{root}", resolution=16, seed=3)
    again = kinds.load_dataset(f"idx:{plain}", resolution=16, seed=3)
    assert data.train_x.shape == (32, 3, 16, 16) and data.num_classes == 4 and data.classes == ("0", "1", "2", "3")
    assert torch.equal(data.train_x, again.train_x) and torch.equal(data.train_y, again.train_y)
    assert torch.equal(data.train_x[:, 0], data.train_x[:, 2])  # grey: three equal channels
    assert kinds.dataset_classes(f"idx:{root}") == 4 and kinds.dataset_channels(f"idx:{root}") == 3


def test_at_its_own_resolution_the_pixels_are_the_files(tmp_path):
    root = make_set(tmp_path / "set", count=10, test=0, side=8)
    images, labels = idx.read_split(root, idx.TRAIN)
    loaded, loaded_labels, mapped = idx.load(root, 8)
    assert not mapped and torch.equal(loaded[:, 1], torch.from_numpy(images)) and np.array_equal(loaded_labels, labels)


def test_the_cache_gives_the_images_memory_gives(tmp_path, monkeypatch):
    root = make_set(tmp_path / "set", count=60)
    memory = kinds.load_dataset(f"idx:{root}", resolution=12, seed=1)
    monkeypatch.setenv("EFFNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1")
    cached = kinds.load_dataset(f"idx:{root}", resolution=12, seed=1)
    assert not isinstance(cached.train_x, torch.Tensor)  # rows of the memory-mapped entry
    assert torch.equal(cached.train_x[0:len(cached.train_x)], memory.train_x)
    assert torch.equal(cached.val_y, memory.val_y)
    [entry] = [p for p in (tmp_path / "cache").iterdir()]
    assert (entry / "done").is_file()
    kinds.load_dataset(f"idx:{root}", resolution=12, seed=1)  # opened again, not rebuilt
    assert [p for p in (tmp_path / "cache").iterdir()] == [entry]


def test_the_test_split_is_read_only_as_the_held_out_set(tmp_path):
    root = make_set(tmp_path / "set", count=40, test=12)
    data = kinds.load_dataset(f"idx:{root}", resolution=16)
    assert data.split["train"] + data.split["validation"] == 40  # t10k is in neither
    images, labels = kinds.load_test(f"idx:{root}", resolution=16, classes=data.classes)
    assert images.shape == (12, 3, 16, 16) and labels.tolist() == [i % 4 for i in range(12)]
    no_test = make_set(tmp_path / "train-only", test=0)
    with pytest.raises(UserError, match="has no test split"):
        kinds.load_test(f"idx:{no_test}", resolution=16, classes=data.classes)


def test_a_test_label_outside_the_training_classes_is_refused(tmp_path):
    root = make_set(tmp_path / "set", count=40, test=0, classes=3)
    write_idx(root, idx.TEST[0], np.zeros((4, 28, 28)))
    write_idx(root, idx.TEST[1], np.array([0, 1, 2, 7]))
    with pytest.raises(UserError, match="label 7 is out of range"):
        kinds.load_test(f"idx:{root}", resolution=16, classes=("0", "1", "2"))


def bad(tmp_path, name: str):
    """A set with one damaged file; returns its folder."""
    root = make_set(tmp_path / name, count=20, test=0)
    images = np.zeros((20, 28, 28), dtype=np.uint8)
    path = root / idx.TRAIN[0]
    if name == "magic":
        write_idx(root, idx.TRAIN[0], images, magic=b"\0\0\x08\x01")
    elif name == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif name == "longer":
        path.write_bytes(path.read_bytes() + b"\0" * 10)
    elif name == "counts":
        write_idx(root, idx.TRAIN[0], images[:19])
    elif name == "not-gzip":
        path.unlink()
        (root / (idx.TRAIN[0] + ".gz")).write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    elif name == "bomb":  # a small header over a gzip stream that inflates to 200 MB: read no further than it says
        path.unlink()
        with gzip.open(root / (idx.TRAIN[0] + ".gz"), "wb", compresslevel=1) as f:
            f.write(idx_bytes(images))
            chunk = b"\0" * (1 << 20)
            for _ in range(200):
                f.write(chunk)
    elif name == "huge-header":  # a header that promises 50M images of 4096 x 4096: refused before reading
        path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 50_000_000, 4096, 4096))
    elif name == "empty":
        path.write_bytes(b"")
    elif name == "missing":
        path.unlink()
    return root


@pytest.mark.parametrize("name, message", [
    ("magic", "magic number 0x00000801"),
    ("truncated", "is truncated"),
    ("longer", "longer than its header says"),
    ("counts", "holds 19 images and"),
    ("not-gzip", "unreadable IDX file"),
    ("bomb", "longer than its header says"),
    ("huge-header", "free"),
    ("empty", "is truncated"),
    ("missing", "has no train-images-idx3-ubyte"),
])
def test_every_bad_file_is_one_error(tmp_path, name, message):
    root = bad(tmp_path, name)
    with pytest.raises(UserError, match=message):
        kinds.load_dataset(f"idx:{root}", resolution=8)


def test_a_label_out_of_fashion_mnists_classes_is_refused(tmp_path, monkeypatch):
    root = make_set(tmp_path / "fashion", count=20, test=0, classes=10)
    write_idx(root, idx.TRAIN[1], np.array([i % 10 for i in range(19)] + [12]))
    monkeypatch.setenv("EFFNAS_FASHION_MNIST", str(root))
    with pytest.raises(UserError, match="label 12 is out of range"):
        kinds.load_dataset("fashion-mnist", resolution=8)


def test_fashion_mnist_is_the_installed_copy_with_its_labels(tmp_path, monkeypatch):
    root = make_set(tmp_path / "fashion", count=30, test=10, classes=10, gz=True)
    monkeypatch.setenv("EFFNAS_FASHION_MNIST", str(root))
    data = kinds.load_dataset("fashion-mnist", resolution=8)
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot" and data.num_classes == 10
    assert kinds.load_test("fashion-mnist", resolution=8, classes=data.classes)[0].shape == (10, 3, 8, 8)
    assert kinds.usage(2).split(", ").count("fashion-mnist") == 1


def test_a_missing_fashion_mnist_names_the_package(tmp_path):
    result = effnas("search", "--dataset", "fashion-mnist", "--trials", "1", "--storage",
                    f"sqlite:///{tmp_path}/s.db", cwd=tmp_path, env={"EFFNAS_FASHION_MNIST": str(tmp_path / "none")})
    assert_user_error(result, "apt-get install dataset-fashion-mnist")
    assert list(tmp_path.iterdir()) == []


def test_a_bad_idx_file_exits_2_and_writes_nothing(tmp_path):
    root = bad(tmp_path / "data", "truncated")
    out = tmp_path / "work"
    out.mkdir()
    result = effnas("search", "--dataset", f"idx:{root}", "--trials", "1", "--storage", "sqlite:///s.db", cwd=out)
    assert_user_error(result, "is truncated")
    assert list(out.iterdir()) == []
    assert_user_error(effnas("search", "--dataset", "idx:", "--trials", "1", cwd=out), "needs a path")
    assert_user_error(effnas("search", "--dataset", "fashion-mnist:/x", "--trials", "1", cwd=out), "unknown dataset")
    assert list(out.iterdir()) == []
