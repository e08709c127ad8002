"""Successive halving and `effnas confirm` end to end, killed and resumed to exactly the asked counts."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from tests.clirun import ROOT, assert_user_error, effnas, kill_when

TINY = "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 ir_r1_k3_s2_e3_c24 head_c32"
FAST = ["--dataset", "digits", "--resolution", "8", "--batch-size", "128", "--base", TINY]
pytestmark = pytest.mark.slow


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "effnas.studies.cli", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_successive_halving_killed_mid_rung_resumes_to_exactly_n(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    # batch 16: an epoch long enough (90 steps) that the kill lands inside the climb to rung 3
    args = ["search", "--study", "sh", "--storage", url, "--trials", "3", "--rungs", "1,3", "--eta", "3", *FAST,
            "--batch-size", "16"]

    def judged_and_running() -> bool:  # a trial went on past rung 1 and trains towards rung 3
        study = optuna.load_study(study_name="sh", storage=url)
        return any(t.state == TrialState.RUNNING and t.user_attrs.get("rung_accuracy") for t in study.trials)

    kill_when(start(*args), judged_and_running)
    result = effnas(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "successive halving over 1,3 epochs" in result.stderr
    study = optuna.load_study(study_name="sh", storage=url)
    assert study.user_attrs["rungs"] == "1,3" and study.user_attrs["epochs"] == 3
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3 and not study.get_trials(states=(TrialState.RUNNING,))
    for t in complete:  # trained to the top rung, judged on the way
        assert t.user_attrs["epochs"] == 3 and set(json.loads(t.user_attrs["rung_accuracy"])) == {"1", "3"}
    stopped = [t for t in study.get_trials(states=(TrialState.PRUNED,)) if t.user_attrs.get("stopped_at")]
    assert stopped and all(json.loads(t.user_attrs["rung_accuracy"]).keys() == {"1"} for t in stopped)
    assert any("died" in t.user_attrs.get("error", "") for t in study.get_trials(states=(TrialState.FAIL,)))
    assert "Pareto front: " in result.stdout  # from top-rung trials only
    bad = effnas("search", "--study", "sh", "--storage", url, "--rungs", "1,3", "--epochs", "5", *FAST)
    assert_user_error(bad, "last rung")


def test_confirm_killed_mid_way_resumes_then_scale_starts_from_the_confirmed_baseline(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    search = effnas("search", "--study", "c", "--storage", url, "--trials", "5", "--epochs", "1", *FAST)
    assert search.returncode == 0, search.stderr[-2000:]
    args = ["confirm", "--study", "c", "--storage", url, "--top", "2", "--seeds", "2", "--epochs", "2",
            "--references", "mobilenetv2"]

    def some_done() -> bool:
        study = optuna.load_study(study_name="c-confirm", storage=url)
        return len(study.get_trials(states=(TrialState.COMPLETE,))) >= 2

    kill_when(start(*args), some_done)
    result = effnas(*args, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    study = optuna.load_study(study_name="c-confirm", storage=url)
    entries = json.loads(study.user_attrs["entries"])
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2 * len(entries) and not study.get_trials(states=(TrialState.RUNNING,))
    roles = {t.user_attrs["role"] for t in complete}
    assert {"candidate", "reference"} <= roles <= {"candidate", "baseline", "reference"}
    assert {e["label"] for e in entries if e["role"] == "reference"} >= {"mobilenetv2"}
    for t in complete:
        assert "seed" in t.user_attrs and t.user_attrs["epochs"] == 2
        assert (t.user_attrs["source_trial"] is None) == (t.user_attrs["role"] == "reference")
    for key in ("kendall_tau", "kendall_p", "seed_noise", "spread", "confirmed_baseline"):
        assert key in study.user_attrs
    assert summary["kendall_tau"] == study.user_attrs["kendall_tau"]
    assert study.user_attrs["kind"] == "confirm" and study.user_attrs["source"] == "c"
    again = effnas(*args)  # complete: nothing more is trained; the summary prints τ
    assert again.returncode == 0 and "Proxy fidelity" in again.stdout
    assert len(optuna.load_study(study_name="c-confirm", storage=url).trials) == len(study.trials)
    scale = effnas("scale", "--study", "c", "--storage", url, "--dry-run")
    assert scale.returncode == 0 and "(confirmed)" in scale.stdout
    report = effnas("report", "--storage", url, "--out", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr
    nas_page = next((tmp_path / "r").glob("c-*.html")).read_text()
    assert "Proxy fidelity" in nas_page and 'id="confirmed"' in nas_page
