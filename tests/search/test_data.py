from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from effnas.search.data.kinds import load_dataset
from effnas.space.errors import UserError


def test_digits_resized_and_split_by_seed():
    a = load_dataset("digits", resolution=16, seed=0)
    b = load_dataset("digits", resolution=16, seed=0)
    c = load_dataset("digits", resolution=16, seed=1)
    assert a.train_x.shape[1:] == (3, 16, 16) and a.train_x.dtype == torch.uint8
    assert a.num_classes == 10 and len(a.train_y) + len(a.val_y) == 1797
    assert a.split["validation"] == 359
    assert torch.equal(a.val_y, b.val_y) and not torch.equal(a.val_y, c.val_y)


def make_folder(root, classes=("cat", "dog"), per_class=3, size=(20, 14)):
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((size[1], size[0], 3), 40 * index + i, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_folder_dataset(tmp_path):
    data = load_dataset(f"folder:{make_folder(tmp_path / 'imgs')}", resolution=8, seed=0, val_fraction=0.34)
    assert data.num_classes == 2 and data.train_x.shape[1:] == (3, 8, 8)
    assert len(data.train_y) + len(data.val_y) == 6


def test_cifar10_batches(tmp_path):
    rng = np.random.default_rng(0)
    for i in (1, 2):
        batch = {b"data": rng.integers(0, 255, (5, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3, i]}
        with open(tmp_path / f"data_batch_{i}", "wb") as handle:
            pickle.dump(batch, handle)
    data = load_dataset(f"cifar10:{tmp_path}", resolution=16, seed=0)
    assert data.num_classes == 4 and len(data.train_y) + len(data.val_y) == 10
    assert data.train_x.shape[1:] == (3, 16, 16)


@pytest.mark.parametrize("spec, message", [
    ("mnist", "unknown dataset"),
    ("folder:", "needs a path"),
    ("folder:/does/not/exist", "not a directory"),
    ("cifar10:/does/not/exist", "not a directory"),
])
def test_bad_specs(spec, message):
    with pytest.raises(UserError, match=message):
        load_dataset(spec, resolution=8)


def test_empty_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(UserError, match="no images"):
        load_dataset(f"folder:{tmp_path}", resolution=8)
    with pytest.raises(UserError, match="no class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'a'}", resolution=8)


def test_unreadable_image(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="unreadable image"):
        load_dataset(f"folder:{root}", resolution=8)


def test_cifar_without_batches(tmp_path):
    with pytest.raises(UserError, match="data_batch"):
        load_dataset(f"cifar10:{tmp_path}", resolution=8)


def test_digits_are_scikit_learns_read_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from effnas.search.data.digits import read_digits

    images, labels = read_digits()
    bunch = load_digits()
    expected = torch.from_numpy(bunch.images).float().mul(255.0 / 16.0).round().to(torch.uint8)
    assert torch.equal(images, expected.unsqueeze(1).expand(-1, 3, -1, -1))
    assert torch.equal(labels, torch.from_numpy(bunch.target).long())
    probe = "import sys; from search.data.digits import read_digits; read_digits(); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("seed", range(4))
def test_rows_permuted_in_place_equal_the_permuted_copy(seed):
    from effnas.search.data.dataset import permute_rows

    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (97, 3, 2, 2), dtype=torch.uint8, generator=generator)
    if seed == 0:  # every row a fixed point but a cycle of two
        order = torch.arange(97)
        order[[10, 20]] = order[[20, 10]]
    elif seed == 1:  # short cycles among the first five, a long one after
        order = torch.cat([torch.randperm(5, generator=generator), 5 + torch.randperm(92, generator=generator)])
    else:
        order = torch.randperm(97, generator=generator)
    expected = x[order]
    permute_rows(x, order)
    assert torch.equal(x, expected)


def test_a_split_in_place_equals_the_copied_split():
    from effnas.search.data.dataset import split

    images = torch.randint(0, 256, (200, 3, 4, 4), dtype=torch.uint8)
    labels = torch.randint(0, 10, (200,))
    copied = split("t", images.clone(), labels, seed=3, val_fraction=0.2, classes=())
    in_place = split("t", images, labels, seed=3, val_fraction=0.2, classes=(), owned=True)
    for side in ("train_x", "train_y", "val_x", "val_y", "mean", "std"):
        assert torch.equal(getattr(copied, side), getattr(in_place, side)), side
    assert in_place.train_x.untyped_storage().data_ptr() == images.untyped_storage().data_ptr()  # no copy made
