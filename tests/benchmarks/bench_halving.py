"""Plain search against successive halving at the same total training epochs (issue 12).

For each of 3 seeds: a plain NSGA-II study (--trials 20 --epochs 3: 60 epochs) and a successive-halving study
(--rungs 1,3 --eta 3, grown until it has spent as many epochs, and compared on the trials that finished
within them); then the top 4 of each front (the order
`effnas confirm` uses) are retrained at 9 epochs with 2 seeds, and the hypervolume of each confirmed front (mean
accuracy over the seeds) is computed with one reference point common to all (accuracy 0, 1.1 x the costliest
confirmed MACs).

Parallel where the machine allows: the six studies run side by side, each with --workers
EFFNAS_BENCH_JOBS // 6 (one torch thread each), and the confirmation trainings fill EFFNAS_BENCH_JOBS processes
(default: every core). Resumable: studies and confirmed accuracies live in EFFNAS_BENCH_DIR (default: a temporary
folder), so a run that stopped goes on where it was. EFFNAS_BENCH_DEVICE=cuda trains on a GPU.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import optuna

from effnas.search import halving, record, selection
from effnas.search.settings import TrainSettings
from effnas.search.trial import TrialSpec
from effnas.search.worker import run_trial

ROOT = Path(__file__).resolve().parents[2]
BUDGET = int(os.environ.get("EFFNAS_BENCH_EPOCHS", "60"))
LONG = int(os.environ.get("EFFNAS_BENCH_LONG", "9"))
DEVICE = os.environ.get("EFFNAS_BENCH_DEVICE", "cpu")
JOBS = int(os.environ.get("EFFNAS_BENCH_JOBS", str(os.cpu_count() or 1)))
SEEDS = (0, 1, 2)
CONFIRM_SEEDS = (7, 8)
TOP = 4
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def effnas(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "effnas.studies.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise RuntimeError(f"effnas {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")


def trained_epochs(trial: optuna.trial.FrozenTrial) -> int:
    """Epochs a trial trained: a complete trial's epochs, a stopped trial's up to its rung, none for a duplicate
    or an over-budget sample (never trained)."""
    a = trial.user_attrs
    return a.get("stopped_at") or (a.get("epochs", 0) if trial.state.name == "COMPLETE" else 0)


def epochs_spent(url: str, name: str) -> int:
    return sum(trained_epochs(t) for t in optuna.load_study(study_name=name, storage=url).trials)


def within_budget(url: str, name: str) -> tuple[list[optuna.trial.FrozenTrial], int]:
    """The trials that finished before the study had spent BUDGET epochs, in completion order, and their epochs:
    a study that ran past the budget (successive halving grows in steps) is compared at exactly the budget."""
    finished = sorted((t for t in optuna.load_study(study_name=name, storage=url).trials if t.datetime_complete),
                      key=lambda t: t.datetime_complete)
    kept, spent = [], 0
    for t in finished:
        if spent + trained_epochs(t) > BUDGET:
            break
        kept.append(t)
        spent += trained_epochs(t)
    return kept, spent


def complete(url: str, name: str) -> int:
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        return 0
    return sum(t.state.name == "COMPLETE" for t in study.trials)


def run_study(url: str, name: str, seed: int, workers: int) -> dict:
    common = ["--storage", url, "--device", DEVICE, "--seed", str(seed), "--workers", str(workers),
              "--threads-per-worker", "1"]
    if name.startswith("plain"):
        effnas("search", "--study", name, "--trials", str(BUDGET // 3), "--epochs", "3", *common)
    else:
        # Grow the study toward the plain one's epochs: jump by what the epochs per top-rung trial so far
        # predict, then one trial at a time, and stop at the first count that reaches the budget.
        trials = max(1, complete(url, name))
        while True:
            effnas("search", "--study", name, "--trials", str(trials), "--rungs", "1,3", "--eta", "3", *common)
            spent = epochs_spent(url, name)
            if spent >= BUDGET:
                break
            trials += max(1, int((BUDGET - spent) // (max(spent, 1) / trials)) - 1)
    trials, spent = within_budget(url, name)
    done = selection.measured(record.read_all(trials), merge=True)
    order = halving.nondominated_order([(r.accuracy, float(r.macs)) for r in done])
    return {"epochs": spent, "trials": len(done), "top": [(done[i].arch, int(done[i].macs)) for i in order[:TOP]]}


def confirm(job: tuple[str, int]) -> float:
    import torch
    torch.set_num_threads(1)
    arch, seed = job
    spec = TrialSpec(number=0, arch=arch, resolution=32, dataset="digits", num_classes=10, split_seed=0, seed=seed,
                     train=TrainSettings(epochs=LONG, batch_size=32, device=DEVICE))
    return run_trial(spec)["accuracy"]


def main() -> dict:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = os.environ.get("EFFNAS_BENCH_DIR") or tempfile.mkdtemp(prefix="bench-halving-")
    Path(folder).mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder}/halving.db"
    optuna.storages.RDBStorage(url)  # Optuna's tables, once, before six threads read the file
    names = [(f"{method}-{seed}", seed) for seed in SEEDS for method in ("plain", "halving")]
    workers = max(1, JOBS // len(names))
    print(f"{len(names)} studies side by side, --workers {workers} each; {DEVICE}; folder {folder}", flush=True)
    with ThreadPoolExecutor(len(names)) as pool:
        fronts = dict(zip([n for n, _ in names], pool.map(lambda ns: run_study(url, ns[0], ns[1], workers), names)))
    for name, f in fronts.items():
        print(f"{name:10s} {f['epochs']:3d} epochs, {f['trials']:2d} complete trials", flush=True)

    cache_file = Path(folder) / "confirmed.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    jobs = sorted({(arch, seed) for f in fronts.values() for arch, _ in f["top"] for seed in CONFIRM_SEEDS}
                  - {tuple(json.loads(k)) for k in cache})
    print(f"confirming {len(jobs)} trainings ({LONG} epochs) on {JOBS} processes", flush=True)
    with ProcessPoolExecutor(JOBS) as pool:
        for job, accuracy in zip(jobs, pool.map(confirm, jobs)):
            cache[json.dumps(list(job))] = accuracy
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, cache_file)

    def mean_confirmed(arch: str) -> float:
        return statistics.fmean(cache[json.dumps([arch, seed])] for seed in CONFIRM_SEEDS)

    points = {name: [(mean_confirmed(arch), macs) for arch, macs in f["top"]] for name, f in fronts.items()}
    reference = 1.1 * max(m for p in points.values() for _, m in p)
    rows = []
    for name, f in fronts.items():
        hv = selection.hypervolume([a for a, _ in points[name]], [m for _, m in points[name]], max_macs=reference)
        rows.append({"study": name, "epochs": f["epochs"], "trials": f["trials"], "confirmed_hv": hv,
                     "confirmed": points[name]})
        print(f"{name:10s} {f['epochs']:3d} epochs {f['trials']:2d} trials  confirmed-front hypervolume {hv:.4f}  "
              f"confirmed accuracies {', '.join(f'{a:.3f}' for a, _ in points[name])}", flush=True)
    seed_sd = statistics.fmean(statistics.stdev(cache[json.dumps([arch, s])] for s in CONFIRM_SEEDS)
                               for f in fronts.values() for arch, _ in f["top"])
    for method in ("plain", "halving"):
        values = [r["confirmed_hv"] for r in rows if r["study"].startswith(method)]
        print(f"{method}: hypervolume {statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f} over "
              f"{len(values)} seeds (top {TOP} retrained at {LONG} epochs x {len(CONFIRM_SEEDS)} seeds; reference "
              f"{reference:,.0f} MACs)")
    print(f"seed sd of one confirmed accuracy: {seed_sd:.4f}")
    print(json.dumps(rows))
    return {"rows": rows}


if __name__ == "__main__":
    main()
