"""GPU figures (issue 14): whether torch.compile pays off for a trial, and how busy one GPU is while a study of
default-size trials runs on it with 1, 2 and 4 trial processes (``--workers K --devices cuda:0``), sampled
through NVML every 0.1 s, with trials per minute and the per-trial time. B0's throughput against timm is
bench_train's (python -m tests.benchmarks.bench_train cuda). Without a CUDA GPU it says so and stops.

Needs torch, optuna (the study) and nvidia-ml-py; not ray, plotly or fvcore.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
STUDY_TRIALS = int(os.environ.get("EFFNAS_BENCH_TRIALS", "24"))


def compile_payoff(resolution: int = 32, batch: int = 32, images: int = 1437) -> dict:
    """Seconds of a default trial's epoch (digits' 1,437 training images at 32 px, batch 32) eager and compiled,
    the compile time, and after how many epochs compiling pays for itself."""
    from effnas.models import build
    from effnas.search.settings import TrainSettings
    from effnas.search.training.loop import GraphedStep, train_epoch
    from effnas.search.training.optim import WarmupCosine, make_optimizer
    from effnas.space import presets
    from tests.benchmarks.bench_train import synthetic

    device = torch.device("cuda")
    data = synthetic(resolution, images, device)
    settings = TrainSettings(batch_size=batch, epochs=4)
    out = {}
    variants = (False, "graphs", True, "reduce-overhead") if "--all" in sys.argv else (False, "graphs")
    for compiled in variants:
        torch.manual_seed(0)
        model = build(presets.network("efficientnet-b0"), num_classes=1000).to(device,
                                                                               memory_format=torch.channels_last)
        optimizer = make_optimizer(model, settings)
        schedule = WarmupCosine(peak=settings.peak_lr, total=10**6, warmup=1)
        begin = time.perf_counter()
        forward = GraphedStep(model, data, batch, device) if compiled == "graphs" else None
        capture = time.perf_counter() - begin
        mode = None if compiled is True else compiled
        net = model if compiled in (False, "graphs") else torch.compile(model, mode=mode)
        generator = torch.Generator(device=device).manual_seed(0)
        times = []
        for _ in range(4):
            torch.cuda.synchronize()
            start = time.perf_counter()
            train_epoch(net, data, optimizer, schedule, settings, generator=generator, device=device, forward=forward)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        name = {False: "eager", True: "compiled"}.get(compiled, compiled)
        out[name] = {"first_epoch_s": times[0] + capture, "epoch_s": statistics.median(times[1:])}
    graphs = out["graphs"]
    print(f"B0 at {resolution} px, batch {batch}, {images} images an epoch: eager {out['eager']['epoch_s']:.2f} "
          f"s/epoch; CUDA graphs (GraphedStep) {graphs['epoch_s']:.2f} s/epoch after "
          f"{graphs['first_epoch_s'] - graphs['epoch_s']:.1f} s of capture and first epoch")
    if "compiled" not in out:
        return out
    eager, compiled = out["eager"]["epoch_s"], out["compiled"]["epoch_s"]
    compile_s = out["compiled"]["first_epoch_s"] - compiled
    out["compile_s"] = compile_s
    out["break_even_epochs"] = compile_s / (eager - compiled) if eager > compiled else float("inf")
    print(f"B0 at {resolution} px, batch {batch}, {images} images an epoch: eager {eager:.2f} s/epoch; compiled "
          f"{compiled:.2f} s/epoch after {compile_s:.1f} s of compiling: pays off after "
          f"{out['break_even_epochs']:.1f} epochs of one trial (each trial compiles its own architecture); "
          f"with CUDA graphs (mode reduce-overhead) {out['reduce-overhead']['epoch_s']:.2f} s/epoch after "
          f"{out['reduce-overhead']['first_epoch_s'] - out['reduce-overhead']['epoch_s']:.1f} s")
    return out


def mps_daemon(folder: str) -> dict | None:
    """Start NVIDIA's Multi-Process Service for this user, with its pipes in ``folder``; the environment a client
    needs, or None where the control binary is missing. It changes no GPU setting; ``stop_mps`` quits it."""
    control = shutil.which("nvidia-cuda-mps-control")
    if control is None:
        return None
    env = {"CUDA_MPS_PIPE_DIRECTORY": f"{folder}/pipe", "CUDA_MPS_LOG_DIRECTORY": f"{folder}/log"}
    for path in env.values():
        os.makedirs(path, exist_ok=True)
    subprocess.run([control, "-d"], env={**os.environ, **env}, check=True)
    return env


def stop_mps(env: dict) -> None:
    subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, env={**os.environ, **env}, timeout=30)


def busy_during_study(workers: int, extra: tuple[str, ...] = (), env: dict | None = None, label: str = "") -> dict:
    import optuna
    import pynvml

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            samples.append(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/g.db"
        command = [sys.executable, "-m", "effnas.studies.cli", "search", "--study", "gpu", "--storage", url, "--trials",
                   str(STUDY_TRIALS), "--workers", str(workers), "--devices", "cuda:0", *extra]
        thread = threading.Thread(target=sample, daemon=True)
        start = time.perf_counter()
        thread.start()
        try:
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240,
                                    env={**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(
                                        [str(ROOT), os.environ.get("PYTHONPATH", "")])})
        except subprocess.TimeoutExpired as exc:
            print(f"{workers} workers: no end after 240 s; stderr: {(exc.stderr or b'')[-1500:]!r}")
            return {}
        wall = time.perf_counter() - start
        stop.set()
        thread.join()
        if result.returncode != 0:
            print(result.stderr[-2000:])
            return {}
        study = optuna.load_study(study_name="gpu", storage=url)
        trials = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"
                  and "train_seconds" in t.user_attrs]
        per_trial = statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
        train = statistics.median(t.user_attrs["train_seconds"] for t in trials)
    steady = samples[len(samples) // 10: max(len(samples) // 10 + 1, len(samples) * 9 // 10)]
    figures = {"workers": workers, "trials_per_minute": len(trials) / wall * 60, "wall_s": wall,
               "median_trial_s": per_trial, "median_train_s": train,
               "busy_fraction": sum(s > 0 for s in steady) / len(steady), "mean_utilization": statistics.mean(steady)}
    print(f"{workers} trial process(es) on one GPU{' ' + ' '.join(extra) if extra else ''}{label}: "
          f"{figures['trials_per_minute']:.1f} trials/min ({len(trials)} in {wall:.0f} s, process start-up included), "
          f"median trial {per_trial:.2f} s of which training {train:.2f} s; NVML utilization mean "
          f"{figures['mean_utilization']:.0f} %, busy in {figures['busy_fraction']:.0%} of samples")
    return figures


def main() -> dict:
    """All figures; ``--workers K`` measures only K trial processes: eager, with --cuda-graphs, and under MPS."""
    if not torch.cuda.is_available():
        print("no CUDA GPU on this machine: compile and GPU utilisation not measured")
        return {}
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    figures = {"compile": compile_payoff()} if "--no-compile" not in sys.argv else {}
    if "--workers" in sys.argv:
        workers = int(sys.argv[sys.argv.index("--workers") + 1])
        figures["eager"] = busy_during_study(workers)
        figures["graphs"] = busy_during_study(workers, ("--cuda-graphs",))
        with tempfile.TemporaryDirectory() as folder:
            env = mps_daemon(folder)
            if env is None:
                print("nvidia-cuda-mps-control not found: MPS not measured")
                return figures
            try:
                figures["mps"] = busy_during_study(workers, env=env, label=" under MPS")
                figures["mps_graphs"] = busy_during_study(workers, ("--cuda-graphs",), env=env, label=" under MPS")
            finally:
                stop_mps(env)
        return figures
    for workers in (1, 2, 4):
        figures[f"default_{workers}"] = busy_during_study(workers)
    for workers in (1, 4):
        figures[f"graphs_{workers}"] = busy_during_study(workers, ("--cuda-graphs",))
    return figures


if __name__ == "__main__":
    main()
