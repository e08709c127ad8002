"""Folder datasets (issue 14): a 5,000-image synthetic folder of 128 px PNGs loaded at 128 px the resident way
(decoded in memory, one process) against the image cache (decoded once on every core into a memory-mapped
entry, streamed from it), first load and cached load; each load runs in a fresh process and reports its wall time,
its peak RSS and the private (anonymous) memory it holds once loaded -- the part that cannot be paged out.

Then one training epoch over the streamed set (the search space's smallest network at 128 px, one torch thread),
its batches read ahead by reader threads (search/readahead.py) against read in the training thread, with the
cache file's pages dropped from the page cache before each epoch (cold: every batch is a disk read) and kept
(warm). Each figure is the median of three epochs, each in a fresh process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
IMAGES, SIDE, CLASSES = 5000, 128, 10

LOAD = """
import json, resource, sys, time
start = time.perf_counter()
from search.data import load_dataset
if sys.argv[1] == "none":  # the imports alone: the baseline every load's peak is measured against
    data, stored = None, 0
else:
    data = load_dataset(sys.argv[1], resolution=int(sys.argv[2]))
    stored = data.train_x.numel() + data.val_x.numel()
seconds = time.perf_counter() - start
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
anon = int(status["RssAnon"].split()[0]) * 1024  # private memory now; memory-mapped file pages are RssFile
print(json.dumps({"seconds": seconds, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "stored": stored, "anon": anon}))
"""


EPOCH = """
import json, os, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from models import build
from search import readahead
from search.data import load_dataset
from search.settings import TrainSettings
from search.train import WarmupCosine, make_optimizer, train_epoch
from space import presets
from space.searchspace import SearchSpace
if sys.argv[3] == "direct":  # batches gathered in the training thread, as before read-ahead
    readahead.needs_reading = lambda x, device: False
data = load_dataset(sys.argv[1], resolution=int(sys.argv[2]))
if sys.argv[4] == "cold":  # drop the cache entry's pages: every batch is read from the disk
    for path in Path(os.environ["EFFNAS_CACHE"]).rglob("*.npy"):
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
torch.manual_seed(0)
model = build(SearchSpace.around(presets.efficientnet("efficientnet-b0", role="base")).smallest(), num_classes=data.num_classes)
settings = TrainSettings(epochs=1, batch_size=32, device="cpu")
optimizer = make_optimizer(model, settings)
schedule = WarmupCosine.for_training(settings, len(data.train_y) // 32)
model = model.to(memory_format=torch.channels_last)
stats = train_epoch(model, data, optimizer, schedule, settings, generator=torch.Generator().manual_seed(0),
                    device=torch.device("cpu"))
print(json.dumps({"seconds": stats.seconds, "loss": stats.loss}))
"""


def make_folder(root: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for n in range(IMAGES):
        folder = root / f"class{n % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        # smooth noise compresses like a photo more than white noise does
        small = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((SIDE, SIDE), Image.BILINEAR).save(folder / f"{n}.png")


def load(spec: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD, spec, str(SIDE)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def epoch(spec: str, env: dict, reading: str, cache: str) -> dict:
    out = subprocess.run([sys.executable, "-c", EPOCH, spec, str(SIDE), reading, cache], cwd=ROOT,
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def epochs(spec: str, env: dict) -> dict:
    """Median epoch seconds of each (reading, page cache) pair; the losses agree (the same batches either way)."""
    times, losses = {}, set()
    for cache in ("cold", "warm"):
        for reading in ("direct", "read-ahead"):
            runs = [epoch(spec, env, reading, cache) for _ in range(3)]
            times[reading, cache] = float(np.median([r["seconds"] for r in runs]))
            losses |= {round(r["loss"], 6) for r in runs}
    print(f"  one epoch of the smallest network, {IMAGES * 4 // 5:,} streamed images at {SIDE} px, batch 32, one "
          f"torch thread (median of 3):")
    for cache in ("cold", "warm"):
        direct, ahead = times["direct", cache], times["read-ahead", cache]
        print(f"    {cache} page cache: read in the training thread {direct:5.1f} s, read ahead {ahead:5.1f} s "
              f"({ahead / direct:.2f}x)")
    print(f"    training losses: {sorted(losses)} (one value: read-ahead changes no batch)")
    return {f"{reading} {cache}": t for (reading, cache), t in times.items()}


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "imgs"
        make_folder(root)
        stored = sum(p.stat().st_size for p in root.rglob("*.png"))
        spec = f"folder:{root}"
        cache = {"EFFNAS_CACHE": str(Path(tmp) / "cache"), "EFFNAS_CACHE_MIN_IMAGES": "1"}
        baseline = load("none", {})["peak_rss"]
        figures = {"resident": load(spec, {"EFFNAS_CACHE_MIN_IMAGES": str(10**9)}),
                   "cache_first": load(spec, cache), "cache_again": load(spec, cache)}
        tensors = figures["resident"]["stored"]
        print(f"{IMAGES:,} PNGs at {SIDE} px ({stored / 2**20:.0f} MiB of files, {tensors / 2**20:.0f} MiB as uint8 "
              f"tensors), {os.cpu_count()} cores:")
        base_anon = load("none", {})["anon"]
        for name, f in figures.items():
            f["peak_over_imports"] = f["peak_rss"] - baseline
            print(f"  {name:<12} {f['seconds']:6.1f} s   peak RSS {f['peak_rss'] / 2**20:6.0f} MiB, "
                  f"{f['peak_over_imports'] / 2**20:.0f} MiB over the imports' {baseline / 2**20:.0f} MiB "
                  f"= {f['peak_over_imports'] / tensors:.2f}x the tensors; private memory held after the load "
                  f"{(f['anon'] - base_anon) / tensors:.2f}x")
        print("  (the cache's figures count its memory-mapped pages, which the kernel can drop and read again)")
        resident = figures["resident"]["seconds"]
        print(f"  first load, cache / resident: {figures['cache_first']['seconds'] / resident:.2f}x;"
              f" cached load / resident: {figures['cache_again']['seconds'] / resident:.2f}x")
        streamed_epochs = epochs(spec, cache)
    return {**figures, "epochs": streamed_epochs}


if __name__ == "__main__":
    main()
