"""End-to-end: the real `effnas search` command against real SQLite storages."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from effnas.space.arch import ArchSpec
from effnas.space.cost import cost
from tests.clirun import ROOT, assert_user_error, effnas

TINY_BASE = "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 ir_r1_k3_s2_e3_c24 head_c32"
FAST = ["--dataset", "digits", "--epochs", "1", "--resolution", "12", "--base", TINY_BASE]


def load(path, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path}")


@pytest.mark.slow
def test_issue_command_records_the_study(tmp_path):
    db = tmp_path / "s.db"
    result = effnas("search", "--study", "e2e", "--storage", f"sqlite:///{db}", "--dataset", "digits",
                    "--trials", "3", "--epochs", "1", "--resolution", "16", "--seed", "0")
    assert result.returncode == 0, result.stderr
    assert "Pareto front" in result.stdout and "Baseline: trial" in result.stdout
    study = load(db, "e2e")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert study.metric_names == ["accuracy", "macs"]
    assert study.user_attrs["kind"] == "nas" and "config" in study.user_attrs and "version" in study.user_attrs
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3
    for trial in complete:
        attrs = trial.user_attrs
        arch = ArchSpec.parse(attrs["arch"])
        c = cost(arch, attrs["resolution"], num_classes=10)
        assert trial.values[1] == c.macs == attrs["macs"] and attrs["params"] == c.params
        assert trial.values[0] == attrs["accuracy"]
        for key in ("epochs", "dataset", "seed", "device", "train_seconds"):
            assert key in attrs


@pytest.mark.slow
def test_same_seed_same_architectures_and_accuracies(tmp_path):
    runs = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.db"
        result = effnas("search", "--study", "d", "--storage", f"sqlite:///{db}", "--trials", "3", "--seed", "7",
                        *FAST)
        assert result.returncode == 0, result.stderr
        runs.append([(t.user_attrs["arch"], t.user_attrs["accuracy"]) for t in load(db, "d").trials])
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path):
    db = tmp_path / "k.db"
    args = [sys.executable, "-m", "effnas.studies.cli", "search", "--study", "k", "--storage", f"sqlite:///{db}",
            "--trials", "5", *FAST]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        if _count(db, "COMPLETE") >= 2 and _running_with_params(db):
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _count(db, "RUNNING") == 1  # the dead run left one behind
    result = effnas("search", "--study", "k", "--storage", f"sqlite:///{db}", "--trials", "5", *FAST)
    assert result.returncode == 0, result.stderr
    study = load(db, "k")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 5
    assert not study.get_trials(states=(TrialState.RUNNING,))
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 1 and "died" in failed[0].user_attrs["error"]
    retried = [t for t in study.trials if t.user_attrs.get("retry_of") == failed[0].number]
    # the dead trial may have been killed half-way through suggesting: what it had chosen is kept
    assert retried and failed[0].params.items() <= retried[0].params.items()


def _running_with_params(db) -> bool:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return bool(conn.execute("SELECT COUNT(*) FROM trials t JOIN trial_params p ON p.trial_id = t.trial_id "
                                     "WHERE t.state = 'RUNNING'").fetchone()[0])
    except sqlite3.OperationalError:
        return False


def _count(db, state: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM trials WHERE state = ?", (state,)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_budget_is_enforced_before_training(tmp_path):
    db = tmp_path / "b.db"
    budget = cost(ArchSpec.parse(TINY_BASE), 12, num_classes=10).macs
    result = effnas("search", "--study", "b", "--storage", f"sqlite:///{db}", "--trials", "2",
                    "--max-macs", str(budget), *FAST)
    assert result.returncode == 0, result.stderr
    study = load(db, "b")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2 and all(t.user_attrs["macs"] <= budget for t in complete)
    for trial in study.get_trials(states=(TrialState.PRUNED,)):
        assert trial.user_attrs["macs"] > budget and "train_seconds" not in trial.user_attrs
        assert "infeasible" in trial.user_attrs


@pytest.mark.slow
def test_mnas_sampler_single_objective_still_records_accuracy_and_macs(tmp_path):
    db = tmp_path / "m.db"
    result = effnas("search", "--study", "m", "--storage", f"sqlite:///{db}", "--trials", "2", "--sampler", "mnas",
                    "--target-macs", "200k", *FAST)
    assert result.returncode == 0, result.stderr
    study = load(db, "m")
    assert study.metric_names == ["reward"]
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.values[0] == pytest.approx(t.user_attrs["accuracy"] * (t.user_attrs["macs"] / 200e3) ** -0.07)


BAD_FLAGS = [
    (["--trials", "0"], "trials"), (["--trials", "x"], "trials"), (["--epochs", "0"], "epochs"),
    (["--resolution", "-1"], "resolution"), (["--batch-size", "0"], "batch_size"),
    (["--sampler", "cmaes"], "nsga2"), (["--max-macs", "0"], "max_macs"), (["--max-params", "-5"], "max_params"),
    (["--target-macs", "zero"], "target-macs"), (["--executor", "slurm"], "local"), (["--seed", "-1"], "seed"),
    (["--lr", "0"], "lr"), (["--label-smoothing", "1"], "label_smoothing"), (["--device", "tpu"], "device"),
    (["--dataset", "mnist"], "unknown dataset"), (["--dataset", "folder:/nope"], "not a directory"),
    (["--dataset", "cifar10:/nope"], "not a directory"), (["--study", ""], "study"),
    (["--base", "efficientnet-b9"], "unknown preset"), (["--base", "ir_r1_k2_s1_e6_c16"], "odd"),
    (["--max-macs", "1000"], "budget"), (["--storage", "nonsense"], "storage"),
    (["--storage", "sqlite:////no/such/dir/x.db"], "does not exist"),
    (["--storage", "postgresql://u:hunter2@127.0.0.1:1/db"], "cannot open storage"),
    (["--bogus", "1"], "unrecognized"),
]


@pytest.mark.parametrize("flags, fragment", BAD_FLAGS)
def test_bad_flags_are_one_line_errors_and_create_nothing(tmp_path, flags, fragment):
    db = tmp_path / "never.db"
    args = ["search", "--storage", f"sqlite:///{db}", *flags] if "--storage" not in flags else ["search", *flags]
    result = effnas(*args, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert "hunter2" not in result.stderr + result.stdout
    assert list(tmp_path.iterdir()) == []


def test_empty_folder_dataset(tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    result = effnas("search", "--dataset", f"folder:{tmp_path / 'data'}", "--storage", f"sqlite:///{tmp_path}/x.db",
                    cwd=tmp_path)
    assert_user_error(result, "no images")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("content, fragment", [
    (None, "does not exist"),
    ("trials = [", "not valid TOML"),
    ("colour = 3", "unknown key"),
    ("trials = 'many'", "trials must be an integer"),
    ("lr = true", "lr must be a number"),
    ("[space]\nkernel = [4]", "odd"),
    ("[space]\nshape = [4]", "unknown key"),
])
def test_bad_toml(tmp_path, content, fragment):
    path = tmp_path / "study.toml"
    if content is not None:
        path.write_text(content)
    result = effnas("search", "--config", str(path), "--storage", f"sqlite:///{tmp_path}/x.db", cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "runs").exists()


def test_storage_that_is_not_sqlite(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("hello")
    result = effnas("search", "--storage", f"sqlite:///{bad}", cwd=tmp_path)
    assert_user_error(result, "not a SQLite database")
    assert bad.read_text() == "hello"


def test_val_fraction_sets_the_split(tmp_path):
    from effnas.studies.config import load_config
    from effnas.studies.nas import plan_search

    plan = plan_search(load_config(overrides={"storage": f"sqlite:///{tmp_path}/v.db", "val_fraction": 0.5,
                                              "resolution": 8, "base": TINY_BASE}))
    assert plan.split["val_fraction"] == 0.5 and plan.split["validation"] == 898  # round(1797 / 2)
    assert plan.template.train.val_fraction == 0.5
    assert list(tmp_path.iterdir()) == []


def test_a_training_setting_is_declared_once_and_recorded(tmp_path):
    """--grad-clip is one field of TrainSettings: a flag, a study-file key, the study's config and each trial's."""
    import json

    url = f"sqlite:///{tmp_path}/g.db"
    (tmp_path / "study.toml").write_text("grad_clip = 2.5\n")
    result = effnas("search", "--study", "g", "--storage", url, "--trials", "1", "--grad-clip", "0.5", *FAST)
    assert result.returncode == 0, result.stderr
    study = load(tmp_path / "g.db", "g")
    assert json.loads(study.user_attrs["config"])["grad_clip"] == 0.5
    assert all(json.loads(t.user_attrs["settings"])["grad_clip"] == 0.5 for t in study.trials)
    from effnas.studies.config import load_config

    assert load_config(file=tmp_path / "study.toml").train.grad_clip == 2.5
    assert_user_error(effnas("search", "--grad-clip", "0", "--storage", url, cwd=tmp_path), "grad_clip")


@pytest.mark.slow
def test_latency_as_a_third_objective(tmp_path):
    db = tmp_path / "l.db"
    result = effnas("search", "--study", "l", "--storage", f"sqlite:///{db}", "--trials", "2",
                    "--objectives", "accuracy,macs,latency_ms", *FAST, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    study = load(db, "l")
    assert study.metric_names == ["accuracy", "macs", "latency_ms"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MINIMIZE"]
    assert "latency ms" in result.stdout and '"runs": 50' in study.user_attrs["latency"]
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert trial.values[2] == trial.user_attrs["latency_ms"] > 0
    again = effnas("search", "--study", "l", "--storage", f"sqlite:///{db}", "--trials", "2", *FAST)
    assert_user_error(again, "objectives accuracy,macs,latency_ms")


def test_latency_objective_needs_a_pareto_sampler(tmp_path):
    result = effnas("search", "--study", "m", "--storage", f"sqlite:///{tmp_path}/m.db", "--sampler", "mnas",
                    "--objectives", "accuracy,macs,latency_ms", *FAST)
    assert_user_error(result, "applies to the Pareto samplers")
    assert list(tmp_path.iterdir()) == []


def test_resuming_with_another_training_recipe_is_refused(tmp_path):
    """Trials of one study must compare: a resume that would train them otherwise is refused before it writes;
    how a trial runs (--device) may change."""
    db = tmp_path / "r.db"
    tiny = ["--storage", f"sqlite:///{db}", "--trials", "1", "--dataset", "digits", "--resolution", "8", "--base",
            "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"]
    assert effnas("search", *tiny).returncode == 0
    before = db.read_bytes()
    for flags, fragment in ((["--lr", "0.01"], "lr 0.003 -> 0.01"), (["--val-fraction", "0.5"], "split")):
        assert_user_error(effnas("search", *tiny, *flags), fragment)
        assert db.read_bytes() == before, flags


def test_what_a_resumed_search_may_change():
    """How a trial runs may change, what it measures may not; a study recorded before --lr-batch existed meant
    --lr as the peak at its batch size."""
    from effnas.studies.nas import recipe_changes

    created = {"lr": 0.003, "lr_batch": 32, "batch_size": 32, "device": "cpu", "compile": False}
    assert recipe_changes(created, {**created, "device": "cuda", "compile": True}) == []
    assert recipe_changes(created, {**created, "batch_size": 64}) == ["batch_size 32 -> 64"]
    old = {"lr": 0.003, "batch_size": 64}  # no lr_batch: the peak was 0.003 at 64
    assert recipe_changes(old, {"lr": 0.003, "batch_size": 64, "lr_batch": 32}) == ["lr_batch 64 -> 32"]
    assert recipe_changes(old, {"lr": 0.003, "batch_size": 64, "lr_batch": 64}) == []
