"""Volume datasets: volumes:PATH (.npy and NIfTI, any sizes, resized) and the bundled shapes3d."""
from __future__ import annotations

import builtins
import gzip

import numpy as np
import pytest
import torch

from effnas.search.data import volumes
from effnas.search.data.kinds import check_kind, dims_of, load_dataset
from effnas.search.data.volumes import check_size, resize_volumes
from effnas.search.utils.memory import check_fits
from effnas.space.errors import UserError

nibabel = pytest.importorskip("nibabel")


def save_nifti(path, array):
    nibabel.save(nibabel.Nifti1Image(np.asarray(array, dtype=np.float32), np.eye(4)), str(path))


def make_volumes(root, *, per_class=3, classes=("a", "b")):
    """Each class mixes sizes and formats: .npy (D x H x W and 1 x D x H x W), .nii and .nii.gz."""
    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            shape = (6 + i, 9, 7 + 2 * i)
            volume = rng.normal(index, 0.1, size=shape).astype(np.float32)
            np.save(folder / f"{i}.npy", volume if i % 2 else volume[np.newaxis])
        save_nifti(folder / "x.nii", rng.normal(index, 0.1, size=(10, 11, 12)))
        save_nifti(folder / "y.nii.gz", rng.normal(index, 0.1, size=(5, 5, 5, 1)))
    return root


def test_volumes_of_mixed_sizes_and_formats_load_resized_and_split_by_seed(tmp_path):
    root = make_volumes(tmp_path / "v")
    spec = f"volumes:{root}"
    a = load_dataset(spec, resolution=8, seed=0, val_fraction=0.4)
    b = load_dataset(spec, resolution=8, seed=0, val_fraction=0.4)
    c = load_dataset(spec, resolution=8, seed=3, val_fraction=0.4)
    assert a.train_x.shape[1:] == (1, 8, 8, 8) and a.train_x.dtype == torch.float32
    assert (a.dims, a.channels, a.num_classes) == (3, 1, 2) and a.scale == 1.0
    assert len(a.train_y) + len(a.val_y) == 10 and a.split["validation"] == 4
    assert torch.equal(a.val_x, b.val_x) and not torch.equal(a.val_x, c.val_x)
    assert a.mean.shape == (1, 1, 1, 1, 1)
    # the class is in the values (mean 0 or 1), and resizing keeps it
    values = torch.cat([a.train_x, a.val_x]).mean((1, 2, 3, 4))
    labels = torch.cat([a.train_y, a.val_y])
    assert torch.allclose(values, labels.float(), atol=0.1)


def test_channels_come_first_for_npy_and_last_for_nifti(tmp_path):
    for name, value in (("a", 0.0), ("b", 1.0)):
        (tmp_path / name).mkdir()
        volume = np.stack([np.full((4, 4, 4), value), np.full((4, 4, 4), value + 10)])
        np.save(tmp_path / name / "c.npy", volume)  # 2 x D x H x W
        save_nifti(tmp_path / name / "c.nii", np.moveaxis(volume, 0, -1))  # X x Y x Z x 2
    data = load_dataset(f"volumes:{tmp_path}", resolution=4, val_fraction=0.25)
    assert data.channels == 2
    everything = torch.cat([data.train_x, data.val_x])
    assert torch.equal(everything[:, 1] - everything[:, 0], torch.full((4, 4, 4, 4), 10.0))


def test_resize_grows_trilinearly_and_shrinks_by_area():
    ramp = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(1, 1, 8, 8, 8)
    shrunk = resize_volumes(ramp, size=4)
    assert torch.allclose(shrunk[0, 0, :, 0, 0], torch.tensor([0.5, 2.5, 4.5, 6.5]))  # means of pairs
    constant = torch.full((1, 2, 3, 9, 20), 7.0)
    assert torch.allclose(resize_volumes(constant, size=6), torch.full((1, 2, 6, 6, 6), 7.0))
    assert resize_volumes(ramp, size=8) is ramp


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        np.save(path, data)


BAD_VOLUMES = [
    ("img.npy", np.zeros((28, 28), np.float32), "rank 2.*expected D x H x W or C x D x H x W"),
    ("deep.npy", np.zeros((1, 2, 3, 4, 5), np.float32), "rank 5"),
    ("two.npy", np.zeros((2, 5, 5, 5), np.float32), "2 channel\\(s\\) but .* has 1"),
    ("flat.npy", np.zeros((4, 0, 4), np.float32), "empty axis cannot be resized"),
    ("nan.npy", np.full((4, 4, 4), np.nan, np.float32), "NaN or infinite"),
    ("cplx.npy", np.zeros((4, 4, 4), np.complex64), "complex64 values"),
    ("junk.npy", b"not numpy at all", "unreadable volume"),
    ("junk.nii", b"garbage" * 60, "unreadable NIfTI volume"),
    ("junk.nii.gz", gzip.compress(b"garbage" * 60), "unreadable NIfTI volume"),
    ("junk2.nii.gz", b"not even gzip", "unreadable NIfTI volume"),
]


@pytest.mark.parametrize("name, content, message", BAD_VOLUMES, ids=[b[0] for b in BAD_VOLUMES])
def test_bad_volumes_name_the_file(tmp_path, name, content, message):
    root = tmp_path / "v"
    for label in ("a", "b"):
        write(root / label / "ok.npy", np.ones((5, 5, 5), np.float32))
    write(root / "b" / name, content)
    with pytest.raises(UserError, match=message) as info:
        load_dataset(f"volumes:{root}", resolution=4)
    assert name in str(info.value)


def test_truncated_nifti(tmp_path):
    root = tmp_path / "v"
    for label in ("a", "b"):
        write(root / label / "ok.npy", np.ones((5, 5, 5), np.float32))
    save_nifti(tmp_path / "whole.nii", np.ones((8, 8, 8)))
    write(root / "b" / "cut.nii", (tmp_path / "whole.nii").read_bytes()[:400])
    with pytest.raises(UserError, match="unreadable NIfTI volume .*cut.nii"):
        load_dataset(f"volumes:{root}", resolution=4)


def test_folder_layout_errors(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(UserError, match="no volumes"):
        load_dataset(f"volumes:{tmp_path}", resolution=4)
    write(tmp_path / "a" / "x.npy", np.ones((3, 3, 3), np.float32))
    with pytest.raises(UserError, match="at least two classes"):
        load_dataset(f"volumes:{tmp_path}", resolution=4)
    with pytest.raises(UserError, match="no class sub-folders"):
        load_dataset(f"volumes:{tmp_path / 'a'}", resolution=4)


def test_nifti_without_nibabel_says_how_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_nibabel(name, *args, **kwargs):
        if name.startswith("nibabel"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nibabel)
    with pytest.raises(UserError, match="effnas\\[nifti\\]"):
        volumes.read_volume(tmp_path / "x.nii")


def test_memory_is_bounded_before_loading(tmp_path):
    check_fits(100, 16, where="v", channels=1, dims=3, itemsize=4)
    with pytest.raises(UserError, match="volumes at 512x512x512 need .* lower --resolution"):
        check_fits(10**6, 512, where="v", channels=4, dims=3, itemsize=4)
    check_size(tmp_path / "v.npy", shape=(64, 64, 64))
    with pytest.raises(UserError, match="v.npy' has shape \\(100000, 100000, 100000\\)"):
        check_size(tmp_path / "v.npy", shape=(100_000, 100_000, 100_000))


def test_kinds_know_their_dimensionality():
    assert [dims_of(s) for s in ("digits", "cifar10:/x", "folder:/x", "shapes3d", "volumes:/x")] == [2, 2, 2, 3, 3]
    for bad in ("shapes3d:/x", "volumes", "digits:/x", "voxels:/x"):
        with pytest.raises(UserError, match="unknown dataset"):
            check_kind(bad)
    with pytest.raises(UserError, match="needs a path"):
        load_dataset("volumes:", resolution=4)
    with pytest.raises(UserError, match="not a directory"):
        load_dataset("volumes:/does/not/exist", resolution=4)


def test_classes_and_channels_are_known_without_loading_the_dataset(tmp_path):
    from effnas.search.data.kinds import dataset_channels, dataset_classes

    root = make_volumes(tmp_path / "v", classes=("a", "b", "c"))
    assert (dataset_classes(f"volumes:{root}"), dataset_channels(f"volumes:{root}")) == (3, 1)
    assert (dataset_classes("shapes3d"), dataset_channels("shapes3d")) == (5, 1)
    assert (dataset_classes("digits"), dataset_channels("digits")) == (10, 3)
