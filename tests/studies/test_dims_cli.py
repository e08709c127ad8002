"""3-D studies as a user starts them: the embedded 3-D default, how the dimensionality is settled, and bad
volume input as one line and exit 2 with nothing written."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from effnas.search.data.kinds import dims_of
from effnas.space import presets
from effnas.space.arch import ArchSpec
from effnas.space.errors import UserError
from effnas.studies.config import BASE_3D, load_config
from effnas.studies.nas import plan_search
from effnas.studies.runner import settle_dims
from tests.clirun import assert_user_error, effnas

TINY_3D = "3d stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32"


def test_dims_3_alone_plans_the_embedded_3d_default(tmp_path):
    plan = plan_search(load_config(overrides={"dims": 3, "storage": f"sqlite:///{tmp_path}/x.db"}))
    c = plan.config
    assert (c.study, c.dims, c.dataset, c.resolution, c.trials, c.train.epochs) == \
        ("effnas-3d", 3, "shapes3d", 16, 20, 2)
    assert plan.space.base == ArchSpec.parse(f"3d in_c1 {BASE_3D}")  # the dataset's one channel
    assert all(stage.kernel == (3, 5) for stage in plan.space.stages)  # no 7x7x7 kernels by default
    assert plan.space.base_params() is not None  # the base is the first trial, as in 2-D
    assert plan.template.num_classes == 5 and plan.split["validation"] == 300
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("overrides, dims, dataset", [
    ({}, 2, "digits"),
    ({"dataset": "shapes3d"}, 3, "shapes3d"),
    ({"base": TINY_3D}, 3, "shapes3d"),
    ({"dims": 3, "base": "efficientnet-b0"}, 3, "shapes3d"),
    ({"dims": 2, "base": TINY_3D}, 2, "digits"),
])
def test_the_dimensionality_comes_from_dims_the_base_or_the_dataset(overrides, dims, dataset):
    config = load_config(overrides=overrides)
    settled = settle_dims(config, arch=presets.resolve(config.base)[0])
    assert (settled.dims, settled.dataset, dims_of(settled.dataset)) == (dims, dataset, dims)
    assert settled.resolution == (16 if dims == 3 else 32)


def test_a_study_file_key_is_not_overridden_by_the_3d_defaults(tmp_path):
    (tmp_path / "s.toml").write_text("dims = 3\nresolution = 12\nepochs = 1\n[space]\nse = [0.0]\n")
    config = load_config(file=tmp_path / "s.toml")
    settled = settle_dims(config, arch=presets.resolve(config.base)[0])
    assert (settled.resolution, settled.train.epochs, settled.dataset, settled.study) == (12, 1, "shapes3d",
                                                                                          "effnas-3d")
    assert settled.space == {"kernel": [3, 5], "se": [0.0]}
    (tmp_path / "k.toml").write_text("[space]\nkernel = [3, 5, 7]\n")
    assert settle_dims(load_config(file=tmp_path / "k.toml", overrides={"dims": 3}),
                       arch=presets.resolve(config.base)[0]).space == {"kernel": [3, 5, 7]}


@pytest.mark.parametrize("overrides, fragment", [
    ({"dims": 4}, "allowed: 2, 3"),
    ({"dims": 3, "dataset": "digits"}, "holds images, but the study is 3-D"),
    ({"dims": 2, "dataset": "shapes3d"}, "holds volumes, but the study is 2-D"),
    ({"base": TINY_3D, "dataset": "digits"}, "holds images, but the study is 3-D"),
    ({"dataset": "volumes:/no/such/dir"}, "not a directory"),
    ({"dataset": "shapes3d:x"}, "unknown dataset"),
])
def test_bad_dimensionality_is_refused_before_anything_is_written(tmp_path, overrides, fragment):
    with pytest.raises(UserError, match=fragment):
        plan_search(load_config(overrides={"storage": f"sqlite:///{tmp_path}/never.db", **overrides}))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags, fragment", [
    (["--dims", "x"], "--dims"),
    (["--dims", "3", "--dataset", "digits"], "holds images, but the study is 3-D"),
])
def test_bad_dimensionality_is_a_one_line_error(tmp_path, flags, fragment):
    result = effnas("search", "--storage", f"sqlite:///{tmp_path}/never.db", *flags, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert list(tmp_path.iterdir()) == []


def _good(root):
    for label in ("a", "b"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            np.save(root / label / f"{i}.npy", np.full((6 + i, 8, 5), float(label == "b"), np.float32))


def _wrong_rank(root):
    np.save(root / "a" / "slice.npy", np.zeros((28, 28), np.float32))


def _mixed_unresizable(root):
    """Sizes may differ (each is resized), but a volume with other channels cannot be resized to fit."""
    np.save(root / "b" / "two_channels.npy", np.zeros((2, 9, 9, 9), np.float32))


def _empty_axis(root):
    np.save(root / "b" / "flat.npy", np.zeros((9, 0, 9), np.float32))


def _unreadable_nifti(root):
    (root / "a" / "scan.nii.gz").write_bytes(gzip.compress(b"not a NIfTI header" * 30))


@pytest.mark.parametrize("damage, fragment", [
    (_wrong_rank, "slice.npy' has shape (28, 28) (rank 2)"),
    (_mixed_unresizable, "two_channels.npy' has 2 channel(s)"),
    (_empty_axis, "empty axis cannot be resized"),
    (_unreadable_nifti, "unreadable NIfTI volume"),
], ids=["wrong-rank", "mixed-channels", "empty-axis", "unreadable-nifti"])
def test_bad_volumes_are_one_line_errors_and_write_nothing(tmp_path, damage, fragment):
    pytest.importorskip("nibabel")
    data = tmp_path / "data"
    _good(data)
    damage(data)
    work = tmp_path / "work"
    work.mkdir()
    result = effnas("search", "--dataset", f"volumes:{data}", "--storage", f"sqlite:///{work}/x.db", cwd=work)
    assert_user_error(result, fragment)
    assert list(work.iterdir()) == []


def test_show_3d_prints_volumes_per_stage():
    result = effnas("show", "efficientnet-b0", "--dims", "3", "--in-channels", "1", "--resolution", "64",
                    "--num-classes", "2")
    assert result.returncode == 0, result.stderr
    assert "64x64x64 volume, 1 input channel(s), 2 classes" in result.stdout
    assert "32x32x32" in result.stdout and "2x2x2" in result.stdout
    info = json.loads(effnas("show", "efficientnet-b0", "--dims", "3", "--in-channels", "1", "--resolution", "64",
                             "--num-classes", "2", "--json").stdout)
    assert (info["dims"], info["in_channels"]) == (3, 1) and info["arch"].startswith("3d in_c1 ")
    assert [s["out_size"] for s in info["stages"]] == [32, 16, 8, 4, 4, 2, 2]
    again = json.loads(effnas("show", info["arch"], "--resolution", "64", "--num-classes", "2", "--json").stdout)
    assert (again["params"], again["macs"]) == (info["params"], info["macs"])  # the string carries dims, channels


@pytest.mark.parametrize("args, fragment", [
    (["show", "efficientnet-b0", "--dims", "4"], "2 (images) or 3 (volumes)"),
    (["show", "efficientnet-b0", "--in-channels", "0"], "in-channels"),
    (["show", "4d ir_r1_k3_s1_e6_c8"], "dims must be 2"),
])
def test_show_bad_dims(args, fragment):
    assert_user_error(effnas(*args), fragment)


def test_scale_dry_run_in_3d_lists_only_triples_within_tolerance_of_the_cube_law():
    result = effnas("scale", "--dims", "3", "--baseline", "efficientnet-b0", "--resolution", "64", "--dry-run",
                    "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(abs(r["alpha"] * r["beta"] ** 2 * r["gamma"] ** 3 - 2) <= 0.1 + 1e-9 for r in rows)
    assert all(r["nominal"] == pytest.approx(r["alpha"] * r["beta"] ** 2 * r["gamma"] ** 3) for r in rows)
    assert not any((r["alpha"], r["beta"], r["gamma"]) == (1.2, 1.1, 1.15) for r in rows)  # 2.21 in 3-D
    flat = json.loads(effnas("scale", "--baseline", "efficientnet-b0", "--dry-run", "--json").stdout)
    assert {(r["alpha"], r["beta"], r["gamma"]) for r in rows} != {(r["alpha"], r["beta"], r["gamma"]) for r in flat}
    text = effnas("scale", "--dims", "3", "--baseline", "efficientnet-b0", "--resolution", "64", "--dry-run").stdout
    assert text.startswith(f"{len(rows)} triples with |alpha*beta^2*gamma^3 - 2| <= 0.1 (3-D")


def test_family_in_3d_prints_its_constraint_and_real_against_nominal():
    result = effnas("family", "--dims", "3", "--baseline", "efficientnet-b0", "--alpha", "1.2", "--beta", "1.1",
                    "--gamma", "1.1", "--phi", "0", "1", "--resolution", "64", "--num-classes", "2",
                    "--in-channels", "1")
    assert result.returncode == 0, result.stderr
    assert "alpha*beta^2*gamma^3 = 1.9326" in result.stdout and "64x64x64 voxels" in result.stdout
    rows = json.loads(effnas("family", "--dims", "3", "--baseline", "efficientnet-b0", "--alpha", "1.2", "--beta",
                             "1.1", "--gamma", "1.1", "--phi", "0", "1", "--resolution", "64", "--num-classes", "2",
                             "--in-channels", "1", "--json").stdout)
    show = json.loads(effnas("show", "efficientnet-b0", "--dims", "3", "--in-channels", "1", "--resolution", "64",
                             "--num-classes", "2", "--json").stdout)
    assert (rows[0]["params"], rows[0]["macs"]) == (show["params"], show["macs"])
    assert rows[1]["nominal_ratio"] == pytest.approx(1.2 * 1.1**2 * 1.1**3)
    assert rows[1]["macs_ratio"] == pytest.approx(rows[1]["macs"] / rows[0]["macs"])


def test_scale_with_dims_3_starts_from_the_3d_default_study(tmp_path):
    import optuna

    from effnas.studies.scaling import resolve_baseline

    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="effnas", storage=url)  # a 2-D default study is no 3-D baseline
    with pytest.raises(UserError, match="no NAS study 'effnas-3d'"):
        resolve_baseline("best", config=load_config(overrides={"dims": 3, "storage": url}, command="scale"))
