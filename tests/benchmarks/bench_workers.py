"""`--workers 2` against `--workers 1` (issue 14): trials per minute of one tiny study on this machine, each
worker with one torch thread, with the same trials to do."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 24
TINY = ["--dataset", "digits", "--epochs", "1", "--resolution", "32", "--batch-size", "64", "--base",
        "stem_c16 ds_r1_k3_s1_c16_se0.25 ir_r2_k3_s2_e4_c24 ir_r2_k5_s2_e4_c40 head_c128"]


def run(workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/w.db"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "effnas.studies.cli", "search", "--study", "w", "--storage", url,
                        "--trials", str(TRIALS), "--workers", str(workers), "--threads-per-worker", "1", *TINY],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - start
        study = optuna.load_study(study_name="w", storage=url)
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    return {"workers": workers, "wall_s": wall, "trials_per_minute": len(complete) / wall * 60}


def main() -> dict:
    one, two = run(1), run(2)
    print(f"{TRIALS} small trials, {os.cpu_count()} cores: --workers 1 {one['trials_per_minute']:.1f} trials/min "
          f"({one['wall_s']:.0f} s), --workers 2 {two['trials_per_minute']:.1f} trials/min ({two['wall_s']:.0f} s): "
          f"ratio {two['trials_per_minute'] / one['trials_per_minute']:.2f} (start-up included)")
    return {"one": one, "two": two}


if __name__ == "__main__":
    main()
