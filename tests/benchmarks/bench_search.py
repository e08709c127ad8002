"""`effnas search` on its embedded default: wall time, best accuracy, and effnas's overhead per trial.

Targets (issue 3): >= 20 complete trials in <= 300 s on the 2-core CPU machine; overhead (wall time
minus training time) <= 0.3 s per trial.
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


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "effnas.studies.cli", "search"], cwd=tmp, check=True,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        study = optuna.load_study(study_name="effnas", storage=f"sqlite:///{tmp}/runs/effnas.db")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    first = min(t.datetime_start for t in study.trials)
    last = max(t.datetime_complete for t in trials)
    loop = (last - first).total_seconds()
    train = sum(t.user_attrs["train_seconds"] for t in trials)
    evaluation = sum(t.user_attrs["eval_seconds"] for t in trials)
    overhead = (loop - train - evaluation) / len(trials)
    overhead_with_eval = (loop - train) / len(trials)
    best = max(t.user_attrs["accuracy"] for t in trials)
    print(f"default study: {len(trials)} complete trials in {wall:.1f} s wall (target: >= 20 in <= 300 s); "
          f"trial loop {loop:.1f} s, training {train:.1f} s, validation {evaluation:.1f} s")
    print(f"best validation accuracy {best:.4f}; overhead per trial {overhead:.3f} s excluding validation, "
          f"{overhead_with_eval:.3f} s including it (target <= 0.3 s)")
    return {"wall_s": wall, "trials": len(trials), "best_accuracy": best, "overhead_s": overhead}


if __name__ == "__main__":
    main()
