"""NSGA-II, TPE and random search at equal budget on Fashion-MNIST (issue 22): for each of 3 seeds, one study per
sampler (the same trials, epochs and training subset), then the top 3 of each front (the order `effnas confirm`
uses) retrained at the reference budget, and the hypervolume of each confirmed front with one reference point
common to all (accuracy 0, 1.1 x the costliest confirmed MACs). Prints each sampler's hypervolumes, the paired
differences against random, and whether any mean difference is outside the seed noise (2 standard errors of the
paired differences).

    EFFNAS_BENCH_DIR=/tmp/samplers .venv/bin/python -m tests.benchmarks.bench_samplers        # ~35 min, 2 cores

Studies run through the real `effnas search` command; the confirmations through search.worker.run_trial (one
training per distinct architecture, seed 1, kept in EFFNAS_BENCH_DIR/confirmed.json: a rerun resumes, and an
architecture on several fronts is trained once, so the fronts are compared on the same measurements). Skips with
one line where the Debian package dataset-fashion-mnist is not installed.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna

from effnas.search import halving, record, selection
from effnas.search.data import idx
from tests.benchmarks import bench_proxies

ROOT = Path(__file__).resolve().parents[2]
SAMPLERS = ("nsga2", "tpe", "random")
SEEDS = (0, 1, 2)
TRIALS = int(os.environ.get("EFFNAS_BENCH_TRIALS", "6"))
TOP = 3
STUDY = ["--dataset", "fashion-mnist", "--resolution", "32", "--epochs", "1", "--train-samples", "1000",
         "--val-fraction", "0.05"]


def search(url: str, sampler: str, seed: int) -> str:
    name = f"{sampler}-{seed}"
    done = subprocess.run([sys.executable, "-m", "effnas.studies.cli", "search", "--study", name, "--storage", url,
                           "--sampler", sampler, "--seed", str(seed), "--trials", str(TRIALS), *STUDY], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise RuntimeError(f"effnas search {name} exited {done.returncode}: {done.stderr[-2000:]}")
    return name


def top_of_front(url: str, name: str) -> list[record.TrialRecord]:
    done = selection.measured(record.read_all(optuna.load_study(study_name=name, storage=url).get_trials()))
    order = halving.nondominated_order([(r.accuracy, float(r.macs)) for r in done])
    return [done[i] for i in order[:TOP]]


def main() -> dict | None:
    if idx.fashion_mnist_missing(idx.fashion_mnist_root()):
        print("bench_samplers: skipped: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        return {"skipped": True}
    folder = Path(os.environ.get("EFFNAS_BENCH_DIR") or tempfile.mkdtemp(prefix="effnas-samplers-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("EFFNAS_BENCH_RESULTS", str(folder / "confirmed.json"))
    url = f"sqlite:///{folder}/studies.db"
    scale = bench_proxies.QUICK  # the proxies' reference budget: 3 epochs on the same 1,000-image subset
    fronts = {(s, seed): top_of_front(url, search(url, s, seed)) for seed in SEEDS for s in SAMPLERS}
    confirmed = {}
    for front in fronts.values():
        for r in front:
            if r.arch not in confirmed:
                confirmed[r.arch] = bench_proxies.train(r.arch, epochs=scale.reference_epochs,
                                                        samples=scale.reference_samples, seed=1, scale=scale)[0]
    reference = 1.1 * max(float(r.macs) for front in fronts.values() for r in front)
    volume = {key: selection.hypervolume([confirmed[r.arch] for r in front], [float(r.macs) for r in front],
                                         max_macs=reference) for key, front in fronts.items()}
    rows = {}
    for s in SAMPLERS:
        values = [volume[(s, seed)] for seed in SEEDS]
        rows[s] = values
        print(f"{s}: hypervolume {', '.join(f'{v:.3f}' for v in values)}; mean {statistics.fmean(values):.3f} ± "
              f"{statistics.stdev(values):.3f}", flush=True)
    verdicts = {}
    for s in ("nsga2", "tpe"):
        diffs = [a - b for a, b in zip(rows[s], rows["random"])]
        mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
        outside = abs(mean) > 2 * sd / math.sqrt(len(diffs))
        verdicts[s] = {"differences": diffs, "mean": mean, "outside_noise": outside}
        print(f"{s} - random: {', '.join(f'{d:+.3f}' for d in diffs)}; mean {mean:+.3f} "
              f"({'outside' if outside else 'within'} the seed noise, 2 standard errors = "
              f"{2 * sd / math.sqrt(len(diffs)):.3f})", flush=True)
    out = {"trials": TRIALS, "top": TOP, "hypervolume": {f"{s}-{seed}": v for (s, seed), v in volume.items()},
           "against_random": verdicts, "folder": str(folder)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
