"""Fixtures shared across packages: a small trained run (for predict, export, bench and the report page) and a
folder of digit PNGs (a held-out set for --test, and images for predict)."""
from __future__ import annotations

import pytest

from tests.clirun import effnas

TINY = "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32"
# Tiny networks on a shared 2-core machine: two OpenMP threads per process spin against other processes and made a
# 5-epoch run 17x slower (143 s against 8 s) while a neighbour was busy; results are the same either way.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
RUN = ["--dataset", "digits", "--resolution", "16"]


@pytest.fixture(scope="session", autouse=True)
def image_cache(tmp_path_factory):
    """The decoded-image cache of folder datasets (and of every `effnas` the tests start) in a temporary folder,
    never the user's ~/.cache."""
    import os

    folder = tmp_path_factory.mktemp("image-cache")
    before = os.environ.get("EFFNAS_CACHE")
    os.environ["EFFNAS_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("EFFNAS_CACHE", None)
    else:
        os.environ["EFFNAS_CACHE"] = before


@pytest.fixture(scope="session")
def digit_pngs(tmp_path_factory):
    """digits/CLASS/N.png at 16 px: three images of each class, from the end of the bundled set."""
    from PIL import Image

    from effnas.search.data.kinds import load_dataset

    data = load_dataset("digits", resolution=16, seed=0, val_fraction=0.2)
    root = tmp_path_factory.mktemp("pngs") / "digits"
    seen: dict[int, int] = {}
    for index in range(len(data.val_y) - 1, -1, -1):
        label = int(data.val_y[index])
        if seen.get(label, 0) < 3:
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.val_x[index].permute(1, 2, 0).numpy()).save(root / str(label) / f"{index}.png")
            seen[label] = seen.get(label, 0) + 1
    return root


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, digit_pngs):
    """A finished run with a moving average of the weights and a test set: runs/train/tiny."""
    out = tmp_path_factory.mktemp("train")
    result = effnas("train", TINY, *RUN, "--epochs", "2", "--ema-decay", "0.9", "--test", f"folder:{digit_pngs}",
                    "--out", str(out), "--name", "tiny", env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    return out / "tiny"
