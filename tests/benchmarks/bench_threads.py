"""Threads on a busy machine (issue 24.1): the embedded default `effnas search`, idle and beside one and two
processes that each keep a core busy, with the old policy (torch's default: one thread per core, i.e.
`--threads-per-worker <cores>`) and the new one (search.utils.cores: the free cores, one thread for a small
network), A and B alternated under the same load. First, the break-even of a second thread: a training step's
time at 1 and 2 threads for three network sizes, idle and beside one busy process.

    python -m tests.benchmarks.bench_threads            # EFFNAS_BENCH_TIMEOUT=480 caps each study (seconds)

Target: the new policy no slower idle (within noise) and at most 2.5x its idle time beside one competitor.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = float(os.environ.get("EFFNAS_BENCH_TIMEOUT", "480"))
NETWORKS = {"tiny": "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32",
            "small": "stem_c16 ds_r1_k3_s1_c16_se0.25 ir_r2_k3_s2_e4_c24 ir_r2_k5_s2_e4_c40 head_c128",
            "b0": "efficientnet-b0"}


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def competitors(count: int):
    """``count`` processes, each keeping a core busy."""
    processes = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(count)]
    for process in processes:
        process.start()
    time.sleep(1.0 if count else 0.0)
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.join()


def step_times(resolution: int = 32, batch: int = 32) -> dict[str, dict[int, float]]:
    """Median seconds of a training step (AdamW, channels_last) per network and thread count, alternated."""
    import torch

    from effnas.models import build
    from effnas.space import presets

    out: dict[str, dict[int, float]] = {}
    for name, text in NETWORKS.items():
        spec = presets.network(text)
        runs: dict[int, list[float]] = {1: [], 2: []}
        for threads in (1, 2, 1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            model = build(spec, num_classes=10).to(memory_format=torch.channels_last)
            optimizer = torch.optim.AdamW(model.parameters())
            x = torch.randn(batch, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)
            y = torch.randint(0, 10, (batch,))
            times = []
            for _ in range(8):
                start = time.perf_counter()
                loss = torch.nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                times.append(time.perf_counter() - start)
            runs[threads].append(statistics.median(times[2:]))
        out[name] = {k: statistics.median(v) for k, v in runs.items()}
    return out


def default_study(extra: list[str]) -> dict:
    """Seconds of `effnas search` (its embedded default) in a fresh folder, and the trials it finished."""
    import optuna

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        try:
            subprocess.run([sys.executable, "-m", "effnas.studies.cli", "search", *extra], cwd=folder, timeout=TIMEOUT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        seconds = time.perf_counter() - start
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name="effnas", storage=f"sqlite:///{folder}/runs/effnas.db")
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        threads = sorted({t.user_attrs.get("threads") for t in complete} - {None})
    return {"seconds": seconds, "finished": finished, "complete": len(complete), "threads": threads}


def main() -> dict:
    from effnas.search.utils.cores import usable_cores

    cores = usable_cores()
    results: dict = {"cores": cores, "steps": {}, "studies": {}}
    for load in (0, 1):
        with competitors(load):
            results["steps"][load] = step_times()
        for name, by in results["steps"][load].items():
            print(f"step at 32 px, batch 32, {load} busy: {name:5s} 1 thread {by[1] * 1e3:6.0f} ms, 2 threads "
                  f"{by[2] * 1e3:6.0f} ms", flush=True)
    policies = {"old": ["--threads-per-worker", str(cores)], "new": []}
    for load in (0, 1, 2):
        for policy, extra in policies.items():  # A then B under the same load
            with competitors(load):
                run = default_study(extra)
            results["studies"][(load, policy)] = run
            shown = f"{run['seconds']:.0f} s" if run["finished"] else f"> {TIMEOUT:.0f} s ({run['complete']}/20)"
            print(f"default study, {load} busy process(es), {policy} policy: {shown}, threads {run['threads']}",
                  flush=True)
    idle = results["studies"][(0, "new")]["seconds"]
    busy = results["studies"][(1, "new")]
    print(f"new policy beside one busy process: {busy['seconds'] / idle:.2f}x its idle time (target <= 2.5x); "
          f"idle new/old {idle / results['studies'][(0, 'old')]['seconds']:.2f}", flush=True)
    return results


if __name__ == "__main__":
    main()
