"""GPU figures (issue 4): training throughput of effnas's EfficientNet-B0 at 224 against torchvision's
efficientnet_b0 on the same GPU, batch and precision (target >= 1.0x), and how busy the GPU is while a
study of small trials shares it through Ray (target >= 85 %). Without a CUDA GPU it says so and stops."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
BATCH = 128


def throughput(model: torch.nn.Module, steps: int = 30) -> float:
    model = model.cuda().to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(BATCH, 3, 224, 224, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (BATCH,), device="cuda")
    for step in range(steps + 10):
        if step == 10:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - start)


def busy_fraction_during_study() -> tuple[float, float]:
    """Sample nvidia-smi's utilization while 4 small trials share the GPU through Ray."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout.split()
            if out:
                samples.append(int(out[0]))

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "studies.cli", "search", "--executor", "ray", "--gpus-per-trial", "0.25",
                   "--cpus-per-trial", "2", "--study", "gpu", "--storage", f"sqlite:///{tmp}/g.db", "--trials", "24",
                   "--epochs", "5", "--resolution", "64", "--batch-size", "256", "--device", "cuda"]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(25)  # Ray's start and the first trials' warm-up are not the steady state
        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        process.wait()
        stop.set()
        thread.join()
    busy = samples[: max(1, int(len(samples) * 0.9))]  # drop the tail, when the queue drains
    return sum(s > 0 for s in busy) / max(1, len(busy)), sum(busy) / max(1, len(busy))


def main() -> dict:
    if not torch.cuda.is_available():
        print("no CUDA GPU on this machine: GPU throughput and utilisation not measured")
        return {}
    from models import build
    from space import presets

    ours = throughput(build(presets.get("efficientnet-b0").arch()))
    figures = {"effnas_images_per_s": ours}
    try:
        import torchvision

        theirs = throughput(torchvision.models.efficientnet_b0())
        figures.update(torchvision_images_per_s=theirs, ratio=ours / theirs)
        print(f"B0 at 224, batch {BATCH}, bf16 autocast, channels_last on {torch.cuda.get_device_name()}: effnas "
              f"{ours:,.0f} img/s, torchvision {theirs:,.0f} img/s, ratio {ours / theirs:.2f} (target >= 1.0)")
    except ImportError:
        print(f"effnas B0: {ours:,.0f} img/s (torchvision not installed: no comparison)")
    fraction, mean = busy_fraction_during_study()
    figures.update(busy_fraction=fraction, mean_utilization=mean)
    print(f"GPU busy {fraction:.0%} of samples (mean utilization {mean:.0f} %) during a study of small trials "
          "sharing it (target >= 85 %)")
    return figures


if __name__ == "__main__":
    main()
