"""The bundled volume dataset: deterministic, balanced, learnable in 3-D and not from summary statistics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from effnas.models import build
from effnas.search.data import shapes3d
from effnas.search.data.kinds import load_dataset
from effnas.search.settings import TrainSettings
from effnas.search.training.loop import train_and_evaluate
from effnas.space.arch import ArchSpec

TINY_3D = ArchSpec.parse("3d in_c1 stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32")


@pytest.fixture(scope="module")
def generated():
    return shapes3d.generate()


def test_generated_once_the_same(generated):
    volumes, labels = generated
    again, again_labels = shapes3d.generate.__wrapped__()  # made anew, not the process's cached copy
    assert torch.equal(volumes, again) and torch.equal(labels, again_labels)
    assert volumes.shape == (5 * shapes3d.PER_CLASS, 1, 32, 32, 32) and volumes.dtype == torch.float32
    assert torch.bincount(labels).tolist() == [shapes3d.PER_CLASS] * len(shapes3d.CLASSES)


def test_mass_and_brightness_do_not_give_the_class_away(generated):
    """Summary statistics of a volume (mean, spread, bright-voxel count, 99th percentile) classify at chance."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.preprocessing import StandardScaler

    volumes, labels = generated
    flat = volumes.flatten(1).numpy()
    stats = np.stack([flat.mean(1), flat.std(1), (flat > 0.45).sum(1), np.percentile(flat, 99, axis=1)], 1)
    accuracy = cross_val_score(LogisticRegression(max_iter=2000), StandardScaler().fit_transform(stats),
                               labels.numpy(), cv=5).mean()
    assert accuracy < 0.3  # chance is 0.2
    occupied = np.array([(flat[labels.numpy() == c] > 0.45).sum(1).mean() for c in range(5)])
    assert (occupied.max() - occupied.min()) / occupied.mean() < 0.1  # bright voxels per class within 10 %


def test_load_resizes_and_splits_like_any_dataset():
    a = load_dataset("shapes3d", resolution=12, seed=0)
    b = load_dataset("shapes3d", resolution=12, seed=1)
    assert a.train_x.shape[1:] == (1, 12, 12, 12) and (a.dims, a.channels, a.num_classes) == (3, 1, 5)
    assert a.split["validation"] == 300 and not torch.equal(a.val_y, b.val_y)


def train_once(seed: int) -> float:
    torch.set_num_threads(1)
    data = load_dataset("shapes3d", resolution=12, seed=0)
    torch.manual_seed(seed)
    model = build(TINY_3D, num_classes=5, drop_path=0.1)
    return train_and_evaluate(model, data, TrainSettings(epochs=1), torch.device("cpu"), seed=seed).accuracy


def test_a_3d_network_learns_it_and_the_same_seed_gives_the_same_accuracy():
    first, second = train_once(2), train_once(2)
    assert first == second
    assert first > 0.3  # chance is 0.2
