"""The cheap proxies of a NAS study from the command line: ``--train-samples`` (a stratified subset) and
``--evaluator`` (a zero-cost score in place of a trained accuracy): recorded, fixed on resume, refused where
they cannot apply, and an IDX folder as the study's data."""
from __future__ import annotations

import json

import optuna
from optuna.trial import TrialState

from tests.clirun import assert_user_error, effnas
from tests.search.test_idx import make_set
from tests.studies.test_search_cli import FAST, load


def test_a_subset_study_records_its_subset_and_keeps_it_on_resume(tmp_path):
    root = make_set(tmp_path / "idx", count=60, test=10)
    db = tmp_path / "s.db"
    args = ["search", "--storage", f"sqlite:///{db}", *FAST, "--dataset", f"idx:{root}", "--train-samples", "20"]
    first = effnas(*args, "--trials", "2")
    assert first.returncode == 0, first.stderr
    assert "stratified subset of 20 of the 48 training images" in first.stderr
    study = load(db, "effnas")
    assert json.loads(study.user_attrs["split"])["train_samples"] == 20
    assert json.loads(study.user_attrs["config"])["train_samples"] == 20
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert json.loads(trial.user_attrs["settings"])["train_samples"] == 20
    assert effnas(*args, "--trials", "3").returncode == 0  # resumed with the same subset
    assert len(load(db, "effnas").get_trials(states=(TrialState.COMPLETE,))) == 3
    before = len(load(db, "effnas").trials)
    changed = effnas("search", "--storage", f"sqlite:///{db}", *FAST, "--dataset", f"idx:{root}",
                     "--train-samples", "30", "--trials", "4")
    assert_user_error(changed, "another")
    assert len(load(db, "effnas").trials) == before  # nothing added by the refused resume


def test_a_subset_larger_than_the_split_exits_2_and_writes_nothing(tmp_path):
    result = effnas("search", "--storage", "sqlite:///s.db", *FAST, "--train-samples", "5000", "--trials", "1",
                    cwd=tmp_path)
    assert_user_error(result, "--train-samples 5,000: the training split of 'digits' holds 1,438 samples")
    assert list(tmp_path.iterdir()) == []
    assert_user_error(effnas("search", "--train-samples", "1", cwd=tmp_path), "train_samples must be >= 2")
    assert list(tmp_path.iterdir()) == []


def test_a_zero_cost_study_records_scores_and_its_objective(tmp_path):
    db = tmp_path / "s.db"
    result = effnas("search", "--storage", f"sqlite:///{db}", *FAST, "--evaluator", "synflow", "--trials", "4")
    assert result.returncode == 0, result.stderr
    assert "synflow score up" in result.stdout and "zero-cost synflow score" in result.stderr
    study = load(db, "effnas")
    assert study.metric_names == ["synflow_score", "macs"] and study.user_attrs["evaluator"] == "synflow"
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 4
    for trial in complete:
        attrs = trial.user_attrs
        assert attrs["evaluator"] == "synflow" and trial.values[0] == attrs["score"] > 0
        assert "accuracy" not in attrs and "train_seconds" not in attrs
    again = effnas("search", "--storage", f"sqlite:///{db}", *FAST, "--trials", "5")  # training now: refused
    assert_user_error(again, "evaluator 'synflow' -> 'train'")


def test_zero_cost_with_what_needs_a_training_is_refused(tmp_path):
    for extra, message in ((["--sampler", "mnas"], "Pareto samplers"),
                           (["--rungs", "1,3", "--epochs", "3"], "nothing for successive halving"),
                           (["--evaluator", "grad_norm"], "unknown evaluator")):
        args = ["search", "--storage", "sqlite:///s.db", *FAST, "--trials", "2", "--evaluator", "naswot", *extra]
        assert_user_error(effnas(*args, cwd=tmp_path), message)
    assert list(tmp_path.iterdir()) == []


def test_confirm_trains_the_front_of_a_zero_cost_study(tmp_path):
    db = tmp_path / "s.db"
    assert effnas("search", "--storage", f"sqlite:///{db}", *FAST, "--evaluator", "params",
                  "--trials", "4").returncode == 0
    result = effnas("confirm", "--storage", f"sqlite:///{db}", "--top", "2", "--seeds", "1", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "Proxy fidelity over" in result.stdout
    confirmed = optuna.load_study(study_name="effnas-confirm", storage=f"sqlite:///{db}")
    trained = confirmed.get_trials(states=(TrialState.COMPLETE,))
    assert trained and all(0 <= t.user_attrs["accuracy"] <= 1 and "score" not in t.user_attrs for t in trained)


def test_the_report_of_a_zero_cost_study_names_its_score(tmp_path):
    db = tmp_path / "s.db"
    assert effnas("search", "--storage", f"sqlite:///{db}", *FAST, "--evaluator", "naswot",
                  "--trials", "3").returncode == 0
    result = effnas("report", "--storage", f"sqlite:///{db}", "--out", str(tmp_path / "pages"))
    assert result.returncode == 0 and "left out" not in result.stderr, result.stderr
    [page] = [p for p in (tmp_path / "pages").glob("effnas-*.html")]
    text = page.read_text()
    assert "Pareto front: naswot score against MACs" in text and "was scored once" in text
    assert "Chosen baseline: <b>trial" in text and "naswot score" in text


def test_a_study_made_before_evaluator_is_a_trained_one():
    from effnas.studies.nas import recipe_changes

    old = {"lr": 0.003, "lr_batch": 32, "batch_size": 32}
    assert recipe_changes(old, {**old, "evaluator": "train"}) == []
    assert recipe_changes(old, {**old, "evaluator": "synflow"}) == ["evaluator 'train' -> 'synflow'"]
