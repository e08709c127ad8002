"""Per-trial overhead of the Ray executor against the local one (target: <= 1.5 s per trial on CPU).

Overhead = the trial loop's wall time (first trial asked to last trial told) minus the training and
validation time the trials measured, divided by the trials. Ray runs one trial at a time with both
cores here, as the local executor does, so the two differ only in scheduling and transport; the Ray
instance's start and shutdown are reported apart (paid once per command).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[2]
TINY = "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32"
TRIALS = 12


def measure(executor: list[str], tmp: str, name: str) -> dict:
    url = f"sqlite:///{tmp}/b.db"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "effnas.studies.cli", "search", "--study", name, "--storage", url,
                    "--trials", str(TRIALS), "--dataset", "digits", "--epochs", "1", "--resolution", "12",
                    "--base", TINY, *executor], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    wall = time.perf_counter() - start
    trials = optuna.load_study(study_name=name, storage=url).get_trials(states=(TrialState.COMPLETE,))
    loop = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    work = sum(t.user_attrs["train_seconds"] + t.user_attrs["eval_seconds"] for t in trials)
    return {"wall_s": wall, "loop_s": loop, "work_s": work, "overhead_s": (loop - work) / len(trials)}


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        local = measure([], tmp, "local")
        ray = measure(["--executor", "ray", "--max-concurrent", "1", "--cpus-per-trial", "2"], tmp, "ray")
    for name, r in (("local", local), ("ray", ray)):
        print(f"{name:5s}: {TRIALS} trials, command {r['wall_s']:.1f} s, loop {r['loop_s']:.1f} s, "
              f"training+validation {r['work_s']:.1f} s, overhead {r['overhead_s']:.3f} s/trial")
    print(f"ray executor overhead per trial: {ray['overhead_s']:.3f} s (local {local['overhead_s']:.3f} s; "
          f"target <= 1.5 s); Ray start/stop and driver set-up: {ray['wall_s'] - ray['loop_s']:.1f} s once "
          f"(local {local['wall_s'] - local['loop_s']:.1f} s)")
    return {"local": local, "ray": ray}


if __name__ == "__main__":
    main()
