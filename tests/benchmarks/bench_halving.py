"""Plain search against successive halving at the same total training epochs (issue 12).

For each of 3 seeds: a plain NSGA-II study (--trials 20 --epochs 3: 60 epochs) and a successive-halving study
(--rungs 1,3 --eta 3, grown one top-rung trial at a time until it has spent as many epochs); then the top 4 of
each front (the order `effnas confirm` uses) are retrained at 9 epochs, and the hypervolume of each confirmed
front is computed with one reference point common to all (accuracy 0, 1.1 x the costliest confirmed MACs).
EFFNAS_BENCH_DEVICE=cuda runs the trainings on a GPU.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna

from search import fidelity, record, selection
from search.settings import TrainSettings
from search.trial import TrialSpec
from search.worker import run_trial

ROOT = Path(__file__).resolve().parents[2]
BUDGET = int(os.environ.get("EFFNAS_BENCH_EPOCHS", "60"))
DEVICE = os.environ.get("EFFNAS_BENCH_DEVICE", "cpu")
SEEDS = (0, 1, 2)
TOP, LONG = 4, 9


def effnas(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "studies.cli", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})


def epochs_spent(url: str, name: str) -> int:
    """Epochs actually trained: a complete trial's epochs, a stopped trial's up to its rung, none for a
    duplicate or an over-budget sample (never trained)."""
    trained = 0
    for t in optuna.load_study(study_name=name, storage=url).trials:
        a = t.user_attrs
        trained += a.get("stopped_at") or (a.get("epochs", 0) if t.state.name == "COMPLETE" else 0)
    return trained


def top_of_front(url: str, name: str) -> list[tuple[str, int]]:
    done = selection.measured(record.read_all(optuna.load_study(study_name=name, storage=url).trials), merge=True)
    order = fidelity.nondominated_order([(r.accuracy, float(r.macs)) for r in done])
    return [(done[i].arch, int(done[i].macs)) for i in order[:TOP]]


CONFIRMED: dict[str, float] = {}


def confirmed(arch: str) -> float:
    if arch not in CONFIRMED:
        spec = TrialSpec(number=0, arch=arch, resolution=32, dataset="digits", num_classes=10, split_seed=0, seed=7,
                         train=TrainSettings(epochs=LONG, batch_size=32, device=DEVICE))
        CONFIRMED[arch] = run_trial(spec)["accuracy"]
    return CONFIRMED[arch]


def main() -> dict:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fronts = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/h.db"
        common = ["--storage", url, "--device", DEVICE]
        for seed in SEEDS:
            plain = f"plain-{seed}"
            effnas("search", "--study", plain, "--trials", str(BUDGET // 3), "--epochs", "3", "--seed", str(seed),
                   *common)
            halving, trials = f"halving-{seed}", 1
            while True:
                effnas("search", "--study", halving, "--trials", str(trials), "--rungs", "1,3", "--eta", "3",
                       "--seed", str(seed), *common)
                if epochs_spent(url, halving) >= BUDGET:
                    break
                trials += 1
            for name in (plain, halving):
                fronts[name] = {"epochs": epochs_spent(url, name), "top": top_of_front(url, name)}
                print(f"{name}: {fronts[name]['epochs']} epochs", flush=True)
    points = {name: [(confirmed(arch), macs) for arch, macs in f["top"]] for name, f in fronts.items()}
    reference = 1.1 * max(m for p in points.values() for _, m in p)
    rows = []
    for name, f in fronts.items():
        hv = selection.hypervolume([a for a, _ in points[name]], [m for _, m in points[name]], max_macs=reference)
        rows.append({"study": name, "epochs": f["epochs"], "confirmed_hv": hv})
        print(f"{name:10s} {f['epochs']:4d} epochs  confirmed-front hypervolume {hv:.4f}", flush=True)
    for method in ("plain", "halving"):
        values = [r["confirmed_hv"] for r in rows if r["study"].startswith(method)]
        print(f"{method}: hypervolume {statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f} over "
              f"{len(values)} seeds (top {TOP} retrained at {LONG} epochs; reference {reference:,.0f} MACs)")
    print(json.dumps(rows))
    return {"rows": rows}


if __name__ == "__main__":
    main()
