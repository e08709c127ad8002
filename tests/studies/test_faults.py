"""Fault injection: kills at random points, injected exceptions and NaNs, concurrent and dead workers on a
real PostgreSQL server, interrupts, corrupted inputs. The study must lose nothing."""
from __future__ import annotations

import io
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
import torch
from optuna.trial import TrialState

from effnas.search.training.loop import TrainingDiverged
from effnas.space.errors import UserError
from effnas.studies.config import load_config
from tests.clirun import ROOT, assert_user_error, effnas, kill_when
from tests.pgserver import PASSWORD, PostgresServer, binaries

TINY = "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"
FAST = ["--dataset", "digits", "--epochs", "1", "--resolution", "8", "--batch-size", "128", "--base", TINY]
pytestmark = pytest.mark.slow


def popen(*args: str) -> subprocess.Popen:
    # Ctrl-C's default action even where the suite itself runs with SIGINT ignored (a shell's `cmd &`): Python
    # installs its KeyboardInterrupt handler only for a SIGINT that was not ignored at start.
    return subprocess.Popen([sys.executable, "-m", "effnas.studies.cli", *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def states(url: str, name: str) -> dict[str, list[int]]:
    study = optuna.load_study(study_name=name, storage=url)
    out: dict[str, list[int]] = {}
    for t in study.get_trials(deepcopy=False):
        out.setdefault(t.state.name, []).append(t.number)
    return out


def test_injected_faults_are_recorded_and_the_study_finishes(tmp_path, monkeypatch):
    import effnas.search.executors.local as executors
    from effnas.studies.nas import run_search

    faults = {1: RuntimeError("injected failure"), 2: TrainingDiverged("loss became nan at step 3"),
              3: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
              4: UserError("unreadable image 'x.png'")}
    real = executors.run_trial

    def faulty(spec, **kwargs):
        if spec.number in faults:
            raise faults[spec.number]
        return real(spec, **kwargs)

    monkeypatch.setattr(executors, "run_trial", faulty)
    url = f"sqlite:///{tmp_path}/f.db"
    config = load_config(overrides={"study": "f", "storage": url, "trials": 4, "dataset": "digits", "epochs": 1,
                                    "resolution": 8, "batch_size": 128, "base": TINY})
    run_search(config, out=io.StringIO(), err=io.StringIO())
    study = optuna.load_study(study_name="f", storage=url)
    failed = {t.number: t.user_attrs["error"] for t in study.get_trials(states=(TrialState.FAIL,))}
    assert set(failed) == set(faults)
    assert "RuntimeError: injected failure" in failed[1] and "nan" in failed[2]
    assert "OutOfMemoryError" in failed[3] and "unreadable image" in failed[4]
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_real_nans_stop_the_study_after_max_failures(tmp_path):
    url = f"sqlite:///{tmp_path}/n.db"
    result = effnas("search", "--study", "n", "--storage", url, "--trials", "5", "--lr", "1e30",
                    "--max-failures", "2", *FAST)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "2 trials failed in a row" in result.stderr.strip().splitlines()[-1]
    study = optuna.load_study(study_name="n", storage=url)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 2 and all("TrainingDiverged" in t.user_attrs["error"] for t in failed)
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_kills_at_four_random_points_lose_no_complete_trial(tmp_path):
    url = f"sqlite:///{tmp_path}/k.db"
    args = ["search", "--study", "k", "--storage", url, "--trials", "20", *FAST]
    rng = random.Random(20261121)
    kept: set[int] = set()

    def complete_now() -> int:  # read-only: the test never creates the file before effnas does
        with sqlite3.connect(f"file:{tmp_path / 'k.db'}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM trials WHERE state='COMPLETE'").fetchone()[0]

    for point in range(1, 5):
        process = popen(*args)
        # Kill once the run has added 1-3 complete trials, then a random fraction of a trial (~0.3 s) later: in
        # training, in tell, in the next ask. Tied to progress, not to a fixed delay that a faster start-up
        # outruns (a fixed 2.5-8 s let the whole study finish first once start-up got 1.5 s faster).
        target = len(kept) + rng.randint(1, 3)
        kill_when(process, lambda target=target: complete_now() >= target, timeout=120, every=0.05,
                  after=rng.uniform(0.0, 0.4))
        process.communicate()
        if os.path.exists(tmp_path / "k.db"):
            complete = set(states(url, "k").get("COMPLETE", []))
            assert kept <= complete, f"complete trials lost: {kept - complete}"
            kept = complete
        print(f"kill point {point}: {len(kept)} complete trials kept")
    result = effnas(*args)
    assert result.returncode == 0, result.stderr
    final = states(url, "k")
    assert len(final["COMPLETE"]) == 20 and "RUNNING" not in final and kept <= set(final["COMPLETE"])
    print(f"4 SIGKILLs at 4 random points; 0 complete trials lost; resumed to {len(final['COMPLETE'])} "
          f"complete, {len(final.get('FAIL', []))} failed (dead runs' trials, requeued)")


@pytest.mark.parametrize("signum, status, reason", [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_ctrl_c_or_sigterm_fails_the_running_trial_and_resumes(tmp_path, signum, status, reason):
    """Ctrl-C (SIGINT) and SIGTERM (SLURM, Kubernetes, `timeout`) alike: the trial in flight is failed and
    requeued, one line says so, exit 130 or 143, and the same command finishes the study."""
    url = f"sqlite:///{tmp_path}/i.db"
    args = ["search", "--study", "i", "--storage", url, "--trials", "6", *FAST]
    process = popen(*args)
    deadline, ready = time.time() + 180, False
    while time.time() < deadline and not ready:
        time.sleep(0.2)
        try:
            with sqlite3.connect(tmp_path / "i.db", timeout=5) as conn:
                done = conn.execute("SELECT COUNT(*) FROM trials WHERE state='COMPLETE'").fetchone()[0]
                running = conn.execute("SELECT COUNT(*) FROM trials t JOIN trial_params p USING (trial_id) "
                                       "WHERE t.state='RUNNING'").fetchone()[0]
        except sqlite3.OperationalError:
            continue
        ready = done >= 1 and running > 0
    assert ready, "the study never had a running trial"
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("effnas: ") and "requeued" in err.strip().splitlines()[-1]
    interrupted = states(url, "i")
    assert "RUNNING" not in interrupted and interrupted.get("FAIL")
    result = effnas(*args)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="i", storage=url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert all(t.user_attrs["error"] == reason for t in failed)
    retried = {t.user_attrs.get("retry_of") for t in study.trials}
    assert {t.number for t in failed} <= retried
    by_number = {t.number: t for t in study.trials}
    for retry in (t for t in study.trials if t.user_attrs.get("retry_of") is not None):
        origin = by_number[retry.user_attrs["retry_of"]]  # a retry trains as the trial it retries would have
        assert retry.params == origin.params and retry.user_attrs["seed"] == origin.user_attrs["seed"]


def test_stale_heartbeat_of_another_host_is_failed_and_retried(tmp_path):
    from effnas.search.lifecycle import GRACE_PERIOD, recover_dead_trials, trial_id
    from effnas.studies.storage import open_storage

    url = f"sqlite:///{tmp_path}/h.db"
    storage = open_storage(url, write=True)
    study = optuna.create_study(study_name="h", storage=storage)
    trial = study.ask()
    trial.suggest_int("x", 0, 10)
    trial.set_user_attr("worker", "another-host:123")
    storage.record_heartbeat(trial_id(trial))
    assert recover_dead_trials(study) == []  # fresh heartbeat: alive
    with sqlite3.connect(tmp_path / "h.db") as conn:
        conn.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', ?)", (f"-{GRACE_PERIOD + 5} seconds",))
    assert recover_dead_trials(study) == [trial.number]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs["retry_of"] == trial.number


def test_a_trial_whose_worker_died_before_recording_itself_is_failed_after_the_grace_period(tmp_path):
    from datetime import datetime, timedelta

    from effnas.search.lifecycle import GRACE_PERIOD, recover_dead_trials
    from effnas.studies.storage import open_storage

    url = f"sqlite:///{tmp_path}/n.db"
    study = optuna.create_study(study_name="n", storage=open_storage(url, write=True))
    trial = study.ask()  # killed right after ask: no worker, no heartbeat, no params
    assert recover_dead_trials(study) == []  # young: its worker may still be about to record itself
    with sqlite3.connect(tmp_path / "n.db") as conn:
        old = datetime.now() - timedelta(seconds=GRACE_PERIOD + 5)
        conn.execute("UPDATE trials SET datetime_start = ?", (old.isoformat(sep=" "),))
    assert recover_dead_trials(study) == [trial.number]
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 1 and failed[0].user_attrs["error"] == "its worker died before recording itself"


def test_corrupted_inputs(tmp_path):
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    (tmp_path / "imgs" / "b").mkdir(parents=True)
    for name in ("a/1.png", "a/2.png", "b/1.png"):  # three: two stay to train on after the validation split
        (tmp_path / "imgs" / name).write_bytes(b"\x89PNG garbage")
    result = effnas("search", "--dataset", f"folder:{tmp_path / 'imgs'}", "--storage",
                    f"sqlite:///{tmp_path}/x.db", cwd=tmp_path)
    assert_user_error(result, "unreadable image")
    (tmp_path / "cifar").mkdir()
    (tmp_path / "cifar" / "data_batch_1").write_bytes(b"not a pickle")
    result = effnas("search", "--dataset", f"cifar10:{tmp_path / 'cifar'}", "--storage",
                    f"sqlite:///{tmp_path}/x.db", cwd=tmp_path)
    assert_user_error(result, "unreadable CIFAR-10 batch")
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)
    result = effnas("search", "--storage", f"sqlite:///{broken}", *FAST, cwd=tmp_path)
    assert_user_error(result, "storage")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.db", "cifar", "imgs"]


needs_postgres = pytest.mark.skipif(binaries() is None, reason="needs Debian's postgresql (installed by .ci/run)")


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


@needs_postgres
def test_a_dead_worker_is_detected_and_its_trial_retried(postgres):
    url = postgres.create_database("deadworker")
    args = ["search", "--study", "d", "--storage", url, "--trials", "12", *FAST]
    victim = popen(*args)
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.1)
        try:  # a trial that recorded its worker: the survivors see at once that its pid is gone
            running = [t for t in optuna.load_study(study_name="d", storage=url).get_trials(
                states=(TrialState.RUNNING,)) if t.params and "worker" in t.user_attrs]
        except KeyError:
            continue
        if running:
            break
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    survivors = [popen(*args) for _ in range(2)]
    for s in survivors:
        _, err = s.communicate(timeout=600)
        assert s.returncode == 0, err
    study = optuna.load_study(study_name="d", storage=url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 12
    assert not study.get_trials(states=(TrialState.RUNNING,))
    dead = [t for t in study.get_trials(states=(TrialState.FAIL,)) if "died" in t.user_attrs.get("error", "")]
    assert dead and {t.number for t in dead} <= {t.user_attrs.get("retry_of") for t in study.trials}


@needs_postgres
def test_password_never_appears(postgres, tmp_path):
    url = postgres.create_database("secret")
    search = effnas("search", "--study", "s", "--storage", url, "--trials", "2", *FAST)
    assert search.returncode == 0, search.stderr
    report = effnas("report", "--storage", url, "--out", str(tmp_path / "r"), "--export", str(tmp_path / "t.csv"))
    assert report.returncode == 0, report.stderr
    bad = effnas("search", "--study", "s", "--storage", url.replace(f":{postgres.port}/", ":1/"), *FAST)
    assert_user_error(bad, "cannot open storage")
    wrong = effnas("report", "--storage", url.replace(PASSWORD, PASSWORD + "x"), "--out", str(tmp_path / "w"))
    assert_user_error(wrong, "cannot open storage")
    for result in (search, report, bad, wrong):
        assert PASSWORD not in result.stdout + result.stderr
    assert "***" in bad.stderr
    study = optuna.load_study(study_name="s", storage=url)
    assert PASSWORD not in repr(study.user_attrs) and PASSWORD not in repr([t.user_attrs for t in study.trials])
    for path in list((tmp_path / "r").iterdir()) + [tmp_path / "t.csv"]:
        assert PASSWORD not in path.read_text(errors="ignore"), path
