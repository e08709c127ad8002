"""`effnas scale` and `effnas family` as a user runs them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from tests.clirun import ROOT, assert_user_error, effnas
from tests.studies.test_search_cli import _count, _running_with_params

TINY = "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"
GRID = ["--step", "0.2", "--max-coef", "1.6", "--tolerance", "0.1"]  # 5 triples
TRAIN = ["--dataset", "digits", "--epochs", "1", "--resolution", "8", "--batch-size", "64"]


def test_family_of_b0_is_b2_at_phi_one():
    result = effnas("family", "--baseline", "efficientnet-b0", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15",
                    "--phi", "1", "2", "3", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["phi"] for r in rows] == [1, 2, 3]
    first = rows[0]
    assert (first["width"], first["depth"], first["resolution"], first["params"]) == (1.1, 1.2, 256, 9_109_994)
    b2 = json.loads(effnas("show", "efficientnet-b2", "--json").stdout)
    assert first["arch"] == b2["arch"]
    assert rows[0]["macs"] < rows[1]["macs"] < rows[2]["macs"]
    assert rows[1]["nominal_ratio"] == pytest.approx(1.92027**2)
    for key in ("phi", "depth", "width", "resolution", "params", "macs", "macs_ratio", "nominal_ratio", "arch"):
        assert key in first


def test_scale_dry_run_json():
    result = effnas("scale", "--baseline", "efficientnet-b0", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert any((r["alpha"], r["beta"], r["gamma"]) == (1.2, 1.1, 1.15) for r in rows)
    assert all(abs(r["alpha"] * r["beta"] ** 2 * r["gamma"] ** 2 - 2) <= 0.1 + 1e-9 for r in rows)
    keys = {"alpha", "beta", "gamma", "nominal", "width", "depth", "resolution", "params", "macs", "macs_ratio"}
    assert keys <= set(rows[0])
    paper = next(r for r in rows if (r["alpha"], r["beta"], r["gamma"]) == (1.2, 1.1, 1.15))
    assert (paper["resolution"], paper["params"]) == (256, 9_109_994)


def test_scale_dry_run_writes_nothing(tmp_path):
    result = effnas("scale", "--baseline", TINY, "--dry-run", "--storage", f"sqlite:///{tmp_path}/s.db", *GRID,
                    cwd=tmp_path)
    assert result.returncode == 0 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, fragment", [
    (["scale", "--baseline", "efficientnet-b0", "--dry-run", "--step", "0"], "step"),
    (["scale", "--baseline", "efficientnet-b0", "--dry-run", "--step", "-1"], "step"),
    (["scale", "--baseline", "efficientnet-b0", "--dry-run", "--tolerance", "-0.1"], "tolerance"),
    (["scale", "--baseline", "efficientnet-b0", "--dry-run", "--max-coef", "0.5"], "max-coef"),
    (["scale", "--baseline", "efficientnet-b9", "--dry-run"], "unknown preset"),
    (["scale", "--baseline", "best", "--dry-run"], "does not exist"),
    (["scale", "--baseline", "efficientnet-b0", "--dry-run", "--tolerance", "0", "--step", "0.3"], "no triple"),
    (["family", "--baseline", "efficientnet-b0", "--alpha", "0.9", "--beta", "1.1", "--gamma", "1.1"], "alpha"),
    (["family", "--baseline", "efficientnet-b0", "--alpha", "1.2", "--beta", "1.1"], "--gamma"),
    (["family", "--baseline", "efficientnet-b0", "--alpha", "1.2", "--beta", "1", "--gamma", "1", "--phi", "-1"],
     "phi"),
    (["family", "--from-study", "nope"], "does not exist"),
])
def test_bad_input(tmp_path, args, fragment):
    result = effnas(*args, "--storage", f"sqlite:///{tmp_path}/s.db", cwd=tmp_path)
    assert_user_error(result, fragment)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_best_of_a_nas_study_without_complete_trials(tmp_path):
    db = tmp_path / "s.db"
    study = optuna.create_study(study_name="empty", storage=f"sqlite:///{db}", directions=["maximize", "minimize"])
    study.set_user_attr("kind", "nas")
    before = db.stat().st_mtime_ns
    result = effnas("scale", "--study", "empty", "--storage", f"sqlite:///{db}", "--baseline", "best", *GRID, *TRAIN)
    assert_user_error(result, "no complete trial")
    assert db.stat().st_mtime_ns == before
    assert optuna.get_all_study_names(f"sqlite:///{db}") == ["empty"]


@pytest.mark.slow
def test_real_scaling_study_resumes_after_kill_then_family(tmp_path):
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    args = ["scale", "--study", "tiny", "--storage", url, "--baseline", TINY, *GRID, *TRAIN]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "studies.cli", *args], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (_count(db, "COMPLETE") >= 1 and _running_with_params(db)):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _count(db, "COMPLETE") < 5
    result = effnas(*args, "--json")
    assert result.returncode == 0, result.stderr
    best = json.loads(result.stdout)
    study = optuna.load_study(study_name="tiny-scaling", storage=url)
    assert study.user_attrs["kind"] == "scaling" and study.metric_names == ["accuracy", "macs"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    triples = {(t.user_attrs["alpha"], t.user_attrs["beta"], t.user_attrs["gamma"]) for t in complete}
    assert len(complete) == len(triples) == 5 and not study.get_trials(states=(TrialState.RUNNING,))
    for t in complete:
        for key in ("alpha", "beta", "gamma", "width", "depth", "macs_ratio", "arch", "params", "macs", "resolution"):
            assert key in t.user_attrs
    top = max(complete, key=lambda t: (t.user_attrs["accuracy"], -t.user_attrs["macs"]))
    assert (best["alpha"], best["beta"], best["gamma"]) == (top.user_attrs["alpha"], top.user_attrs["beta"],
                                                            top.user_attrs["gamma"])
    again = effnas(*args, "--json")  # complete: nothing more is trained
    assert again.returncode == 0 and len(optuna.load_study(study_name="tiny-scaling", storage=url).trials) == \
        len(study.trials)

    family = effnas("family", "--from-study", "tiny", "--storage", url, "--phi", "1", "2", "--json", "--train",
                    *TRAIN[:-4])
    assert family.returncode == 0, family.stderr
    rows = json.loads(family.stdout)
    assert [r["phi"] for r in rows] == [1, 2] and all(r["accuracy"] is not None for r in rows)
    assert rows[0]["resolution"] == 8 or rows[0]["resolution"] > 0

    report = effnas("report", "--storage", url, "--out", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr
    page = next(p for p in (tmp_path / "r").glob("tiny-scaling-*.html"))
    text = page.read_text()
    assert 'id="grid"' in text and 'id="family"' in text and "Chosen triple" in text
