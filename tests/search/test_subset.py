"""``--train-samples``: a stratified, seeded subset of the training split; the validation split stays whole."""
from __future__ import annotations

import pytest
import torch

from effnas.search.data import kinds
from effnas.search.data.dataset import train_subset
from effnas.space.errors import UserError


@pytest.fixture(scope="module")
def digits():
    return kinds.load_dataset("digits", resolution=8, seed=0)


def test_each_class_keeps_its_share_and_the_total_is_exact(digits):
    for count in (10, 101, 500, len(digits.train_y)):
        subset = train_subset(digits, count, seed=0)
        assert len(subset.train_y) == len(subset.train_x) == count
        whole = torch.bincount(digits.train_y, minlength=10).double()
        got = torch.bincount(subset.train_y, minlength=10).double()
        assert (got - whole * count / len(digits.train_y)).abs().max() < 1  # each share within one sample


def test_the_subset_is_rows_of_the_training_split(digits):
    subset = train_subset(digits, 100, seed=0)
    rows = {tuple(x.flatten().tolist()) + (int(y),) for x, y in zip(digits.train_x, digits.train_y)}
    assert all(tuple(x.flatten().tolist()) + (int(y),) in rows for x, y in zip(subset.train_x, subset.train_y))


def test_seeded_the_same_and_other_seeds_differ(digits):
    a, b, c = (train_subset(digits, 200, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y)
    assert not torch.equal(a.train_x, c.train_x)


def test_validation_and_statistics_stay_whole(digits):
    subset = train_subset(digits, 50, seed=0)
    assert torch.equal(subset.val_x, digits.val_x) and torch.equal(subset.val_y, digits.val_y)
    assert torch.equal(subset.mean, digits.mean) and torch.equal(subset.std, digits.std)
    assert subset.split == {**digits.split, "train_samples": 50}
    assert train_subset(digits, None, seed=0) is digits


def test_more_than_the_split_holds_is_refused(digits):
    with pytest.raises(UserError, match="holds 1,438 samples"):
        train_subset(digits, 1439, seed=0)


def test_a_streamed_split_stays_streamed(tmp_path, monkeypatch):
    from tests.search.test_idx import make_set

    root = make_set(tmp_path / "set", count=80, test=0)
    monkeypatch.setenv("EFFNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EFFNAS_CACHE_MIN_IMAGES", "1")
    data = kinds.load_dataset(f"idx:{root}", resolution=8)
    subset = train_subset(data, 20, seed=0)
    assert type(subset.train_x) is type(data.train_x) and len(subset.train_x) == 20
    share = torch.bincount(data.train_y).double() * 20 / len(data.train_y)
    assert (torch.bincount(subset.train_y).double() - share).abs().max() < 1
