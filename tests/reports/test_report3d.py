"""End to end in 3-D: the real commands search, scale, family-train and confirm volume networks on the bundled
shapes3d, record ``dims``, and `effnas report` draws the volume stages and renders in Chromium."""
from __future__ import annotations

import re

import optuna
import pytest
from optuna.trial import TrialState

from effnas.reports.html import safe_name
from effnas.space.arch import ArchSpec
from effnas.space.cost import cost
from tests.clirun import effnas
from tests.reports.test_report import CHROMIUM, render

BASE = "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 ir_r1_k3_s2_e3_c24 head_c32"
TRAIN = ["--epochs", "1", "--resolution", "8", "--batch-size", "64"]
SPACE = "[space]\nkernel = [3]\nexpansion = [1, 3]\n"  # small kernels: 3-D depthwise backward is slow on CPU
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def volume_storage(tmp_path_factory):
    root = tmp_path_factory.mktemp("vol")
    url = f"sqlite:///{root}/s.db"
    (root / "study.toml").write_text(SPACE)
    runs = [
        ("search", "--dims", "3", "--study", "vol", "--trials", "3", "--base", BASE, "--sampler", "random",
         "--seed", "1", "--config", str(root / "study.toml"), *TRAIN),
        ("scale", "--study", "vol", "--step", "0.25", "--max-coef", "1.5", *TRAIN),  # 3-D from the baseline's arch
        ("family", "--from-study", "vol", "--phi", "0", "1", "--train", "--epochs", "1", "--batch-size", "64"),
        ("confirm", "--study", "vol", "--top", "1", "--seeds", "1", "--epochs", "1", "--batch-size", "64",
         "--references", "stem_c8 ds_r1_k3_s2_c8 head_c16"),  # an arch string, made 3-D like the study
    ]
    outputs = []
    for args in runs:
        result = effnas(*args, "--storage", url)
        assert result.returncode == 0, (args[0], result.stderr[-3000:])
        outputs.append(result.stdout)
    out = root / "report"
    result = effnas("report", "--storage", url, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return url, out, outputs


def test_the_study_and_its_trials_record_dims_and_exact_3d_costs(volume_storage):
    url, _, outputs = volume_storage
    study = optuna.load_study(study_name="vol", storage=url)
    assert study.user_attrs["dims"] == 3 and study.user_attrs["dataset"] == "shapes3d"
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3
    for trial in complete:
        attrs = trial.user_attrs
        arch = ArchSpec.parse(attrs["arch"])
        assert attrs["dims"] == 3 and (arch.dims, arch.in_channels) == (3, 1)
        c = cost(arch, attrs["resolution"], num_classes=5)
        assert (attrs["params"], attrs["macs"]) == (c.params, c.macs) == (c.params, trial.values[1])
    assert "resolution 8x8x8 voxels" in outputs[0]


def test_scaling_in_3d_uses_the_cube_law(volume_storage):
    url, _, outputs = volume_storage
    study = optuna.load_study(study_name="vol-scaling", storage=url)
    assert study.user_attrs["dims"] == 3 and study.user_attrs["baseline"].startswith("3d in_c1 ")
    grid = [t for t in study.get_trials(states=(TrialState.COMPLETE,)) if t.user_attrs.get("role") == "grid"]
    assert {(t.user_attrs["alpha"], t.user_attrs["beta"], t.user_attrs["gamma"]) for t in grid} == \
        {(1.0, 1.0, 1.25), (1.25, 1.25, 1.0)}
    for t in grid:
        a = t.user_attrs
        assert a["nominal"] == pytest.approx(a["alpha"] * a["beta"] ** 2 * a["gamma"] ** 3) and a["dims"] == 3
    assert "Chosen triple under alpha*beta^2*gamma^3 ~ 2" in outputs[1]
    assert "alpha*beta^2*gamma^3 =" in outputs[2]
    family = optuna.load_study(study_name="vol-family", storage=url)
    assert family.user_attrs["dims"] == 3
    members = family.get_trials(states=(TrialState.COMPLETE,))
    assert len(members) == 2 and all(t.user_attrs["arch"].startswith("3d in_c1 ") for t in members)
    for t in members:
        a = t.user_attrs
        assert a["nominal_ratio"] == pytest.approx((a["alpha"] * a["beta"] ** 2 * a["gamma"] ** 3) ** a["phi"])


def test_confirm_retrains_volume_networks_beside_3d_references(volume_storage):
    url, _, _ = volume_storage
    confirm = optuna.load_study(study_name="vol-confirm", storage=url)
    trials = confirm.get_trials(states=(TrialState.COMPLETE,))
    roles = {t.user_attrs["role"] for t in trials}
    assert "reference" in roles and trials
    for t in trials:
        arch = ArchSpec.parse(t.user_attrs["arch"])
        assert (arch.dims, arch.in_channels) == (3, 1) and t.user_attrs["dims"] == 3
        assert t.user_attrs["macs"] == cost(arch, 8, num_classes=5).macs


def test_the_report_draws_volume_stages(volume_storage):
    _, out, _ = volume_storage
    page = (out / safe_name("vol")).read_text()
    assert "3-D (volumes)" in page
    assert "4×4×4" in page and "2×2×2" in page and "1×1×1" in page  # per-stage D×H×W at an 8^3 input
    scaling = (out / safe_name("vol-scaling")).read_text()
    assert "αβ²γ³ ≈ 2" in scaling and 'id="triples"' in scaling and 'id="family-macs"' in scaling
    assert "nominal αβ²γ³" in scaling and "8×8×8" in scaling  # the triples table and the baseline line
    family = (out / safe_name("vol-family")).read_text()
    assert "αβ²γ³ =" in family and "(αβ²γ³)^φ" in family


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_the_3d_pages_render_in_chromium(volume_storage, tmp_path):
    url, out, _ = volume_storage
    study = optuna.load_study(study_name="vol", storage=url)
    dom = render(out / safe_name("vol"), f"--user-data-dir={tmp_path / 'a'}")
    pareto = re.split(r'id="(?:confirmed|hypervolume)"', dom.split('id="pareto"', 1)[1], maxsplit=1)[0]
    assert len(re.findall(r'class="point[ "]', pareto)) == len(study.get_trials(states=(TrialState.COMPLETE,))) == 3
    assert "main-svg" in pareto
    assert len(re.findall(r'class="stage', dom)) >= 3  # the stage drawings
    scaling = render(out / safe_name("vol-scaling"), f"--user-data-dir={tmp_path / 'b'}")
    assert scaling.split('id="triples"', 1)[1].count("main-svg") >= 1
