"""Workers that share a study explore instead of repeating each other: different proposals per worker,
the base architecture trained once, no architecture trained twice — on one SQLite file and on PostgreSQL."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from effnas.space import presets
from effnas.space.searchspace import SearchSpace
from tests.clirun import ROOT
from tests.pgserver import PostgresServer, binaries

BASE = "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 ir_r1_k3_s2_e3_c24 head_c32"
FAST = ["--dataset", "digits", "--epochs", "1", "--resolution", "8", "--batch-size", "128", "--base", BASE]
pytestmark = pytest.mark.slow


def start(*args: str, threads: int = 1) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-m", "effnas.studies.cli", "search", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_study(url: str, name: str, trials: int) -> dict:
    study = optuna.load_study(study_name=name, storage=url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    archs = Counter(t.user_attrs["arch"] for t in complete)
    base = presets.resolve(BASE)[0]
    assert len(complete) == trials
    assert len(archs) == trials, f"architectures trained more than once: {[a for a, n in archs.items() if n > 1]}"
    assert archs[str(base)] == 1, "the base architecture must be trained exactly once"
    assert not study.get_trials(states=(TrialState.RUNNING,))
    for t in study.get_trials(states=(TrialState.PRUNED,)):
        twin = t.user_attrs.get("duplicate_of")
        assert twin is None or study.trials[twin].user_attrs["arch"] == t.user_attrs["arch"]
    workers = Counter(t.user_attrs["worker"] for t in complete)
    return {"workers": sorted(workers.values()), "pruned duplicates": sum(
        "duplicate_of" in t.user_attrs for t in study.trials)}


def run_workers(url: str, name: str, trials: int, count: int, stagger: float) -> dict:
    processes = []
    for _ in range(count):
        processes.append(start("--study", name, "--storage", url, "--trials", str(trials), *FAST))
        time.sleep(stagger)
    for p in processes:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
    return check_study(url, name, trials)


def test_two_workers_started_together_on_one_sqlite_file(tmp_path):
    for attempt, stagger in enumerate((0.0, 2.0)):  # at once, and two seconds apart while the first creates
        url = f"sqlite:///{tmp_path}/w{attempt}.db"
        figures = run_workers(url, "w", 10, 2, stagger)
        assert len(figures["workers"]) == 2, figures  # both did work
        print(f"2 workers on SQLite, stagger {stagger} s: {figures}")


@pytest.mark.skipif(binaries() is None, reason="needs Debian's postgresql (installed by .ci/run)")
def test_four_workers_on_postgres():
    server = PostgresServer().start()
    try:
        url = server.create_database("four", driver="psycopg2")  # the other tests use README's postgresql://
        figures = run_workers(url, "four", 16, 4, 0.0)
        assert len(figures["workers"]) >= 3, figures
        print(f"4 workers on PostgreSQL, --trials 16: 16 complete, 16 distinct, base once; {figures}")
    finally:
        server.stop()


def test_one_process_never_trains_an_architecture_twice(tmp_path):
    """A space of 4 stages x 2 kernels x 2 se = few architectures: NSGA-II would repeat itself."""
    url = f"sqlite:///{tmp_path}/d.db"
    study_file = tmp_path / "study.toml"
    study_file.write_text("[space]\nexpansion = [3]\nwidth = [1.0]\nkernel = [3, 5]\nse = [0.0, 0.25]\n"
                          "[space.stages.0]\nrepeats = [1, 1]\n[space.stages.1]\nrepeats = [2, 2]\n"
                          "[space.stages.2]\nrepeats = [1, 1]\n")
    space = SearchSpace.around(presets.resolve(BASE)[0], overrides={"expansion": [3], "width": [1.0],
                                                                    "kernel": [3, 5], "se": [0.0, 0.25]},
                               stage_overrides={0: {"repeats": [1, 1]}, 1: {"repeats": [2, 2]},
                                                2: {"repeats": [1, 1]}})
    assert space.distinct() == 64
    p = start("--study", "d", "--storage", url, "--trials", "12", "--config", str(study_file), *FAST)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="d", storage=url)
    archs = [t.user_attrs["arch"] for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert len(archs) == len(set(archs)) == 12


def test_a_space_smaller_than_the_trials_is_refused(tmp_path):
    from tests.clirun import assert_user_error, effnas

    study_file = tmp_path / "study.toml"
    study_file.write_text("[space]\nexpansion = [3]\nwidth = [1.0]\nkernel = [3]\nse = [0.0]\nrepeats = [1, 1]\n")
    result = effnas("search", "--config", str(study_file), "--trials", "2", "--storage",
                    f"sqlite:///{tmp_path}/x.db", *FAST, cwd=tmp_path)
    assert_user_error(result, "1 distinct architectures")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]


def test_workers_flag_shares_one_sqlite_study_and_a_killed_parent_resumes(tmp_path):
    """--workers 2: two trial processes on one study; SIGKILL of the parent takes its workers down with it
    (each requeues what it held), and the same command finishes the study exactly."""
    import signal

    url = f"sqlite:///{tmp_path}/w.db"
    args = ["--study", "w", "--storage", url, "--trials", "12", "--workers", "2", "--threads-per-worker", "1", *FAST]
    parent = start(*args)
    deadline = time.time() + 240
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="w", storage=url)
        except KeyError:
            continue
        running = {t.user_attrs.get("worker") for t in study.get_trials(states=(TrialState.RUNNING,))}
        if len(study.get_trials(states=(TrialState.COMPLETE,))) >= 2 and len(running) >= 1:
            break
    parent.send_signal(signal.SIGKILL)
    parent.communicate()
    time.sleep(3)  # the workers get SIGTERM from the kernel when their parent dies
    orphans = subprocess.run(["pgrep", "-f", "effnas-worker|multiprocessing.spawn"], capture_output=True, text=True)
    assert not [line for line in orphans.stdout.split() if line], "workers outlived their parent"
    resumed = start(*args)
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    figures = check_study(url, "w", 12)
    assert len(figures["workers"]) >= 2, figures
    study = optuna.load_study(study_name="w", storage=url)
    interrupted = [t for t in study.get_trials(states=(TrialState.FAIL,))]
    assert all("SIGTERM" in t.user_attrs.get("error", "") or "died" in t.user_attrs.get("error", "")
               for t in interrupted)
