"""Folder datasets (issue 14): a 5,000-image synthetic folder of 128 px PNGs loaded at 128 px the resident way
(decoded in memory, one process) against the image cache (decoded once on every core into a memory-mapped
entry, streamed from it), first load and cached load; each load runs in a fresh process and reports its wall time,
its peak RSS and the private (anonymous) memory it holds once loaded -- the part that cannot be paged out.

Then the streamed set's batches read ahead by reader threads (search/data/readahead.py) against read in the training
thread: the training thread's wait for one epoch's batches with a 10 ms device step between them, with the cache
file's pages dropped (cold: read from the disk) and kept (warm); and a real CPU training epoch of the search
space's smallest network (one torch thread) read both ways, the median of three fresh processes each.
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
from effnas.search.data.kinds import load_dataset
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


WAITS = """
import gc, json, mmap, os, sys, time, warnings
from pathlib import Path
import torch
torch.set_num_threads(1)
from effnas.search.data import readahead
from effnas.search.data.kinds import load_dataset
data = load_dataset(sys.argv[1], resolution=int(sys.argv[2]))
order = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))
indices = [order[b * 32:(b + 1) * 32] for b in range(len(order) // 32)]
step = float(sys.argv[4])

def drop_pages():  # out of this process's mapping, then out of the page cache: every batch is read from the disk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps = [o for o in gc.get_objects() if isinstance(o, mmap.mmap)]
    for mapped in maps:
        mapped.madvise(mmap.MADV_DONTNEED)
    for path in Path(os.environ["EFFNAS_CACHE"]).rglob("*.npy"):
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)

list(readahead.batches(data.train_x, indices if sys.argv[3] == "warm" else indices[:4], torch.device("cpu")))
figures = {}
for reading in ("direct", "read-ahead"):
    if sys.argv[3] == "cold":
        drop_pages()
    read = (data.train_x[i] for i in indices) if reading == "direct" else readahead.batches(data.train_x, indices,
                                                                                          torch.device("cpu"))
    waits = []
    while True:
        began = time.perf_counter()
        batch = next(read, None)
        if batch is None:
            break
        waits.append(time.perf_counter() - began)
        time.sleep(step)  # the device's step: the training thread idles while a GPU computes
    waits.sort()
    figures[reading] = {"total": sum(waits), "median": waits[len(waits) // 2], "p95": waits[int(len(waits) * 0.95)],
                        "max": waits[-1], "batches": len(waits)}
print(json.dumps(figures))
"""

EPOCH = """
import json, sys
import torch
torch.set_num_threads(1)
from effnas.models import build
from effnas.search.data import readahead
from effnas.search.data.kinds import load_dataset
from effnas.search.settings import TrainSettings
from effnas.search.training.optim import WarmupCosine, make_optimizer
from effnas.search.training.loop import train_epoch
from effnas.space import presets
from effnas.space.searchspace import SearchSpace
if sys.argv[3] == "direct":  # batches gathered in the training thread, as before read-ahead
    readahead.needs_reading = lambda x, device: False
data = load_dataset(sys.argv[1], resolution=int(sys.argv[2]))
torch.manual_seed(0)
model = build(SearchSpace.around(presets.efficientnet("efficientnet-b0", role="base")).smallest(),
              num_classes=data.num_classes).to(memory_format=torch.channels_last)
settings = TrainSettings(epochs=1, batch_size=32, device="cpu")
optimizer = make_optimizer(model, settings)
schedule = WarmupCosine.for_training(settings, len(data.train_y) // 32)
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
    os.sync()  # the last load's cache writes flushed first: a load is timed alone, not behind their write-back
    out = subprocess.run([sys.executable, "-c", LOAD, spec, str(SIDE)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(script: str, env: dict, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def reading(spec: str, env: dict, step: float = 0.01) -> dict:
    """How long the training thread waits for the streamed batches of one epoch, read in it or read ahead, with
    the page cache dropped (cold) or full (warm), each in a fresh process; a step of ``step`` seconds between
    batches stands for a GPU's, during which the training thread idles."""
    figures = {cache: run(WAITS, env, spec, str(SIDE), cache, str(step)) for cache in ("cold", "warm")}
    print(f"  the training thread's wait for the batches of one epoch ({IMAGES * 4 // 5:,} streamed images at "
          f"{SIDE} px, batch 32), with a {step * 1000:.0f} ms device step between batches:")
    for cache, both in figures.items():
        for how, key in (("read in the training thread", "direct"), ("read ahead", "read-ahead")):
            f = {k: v * 1e3 for k, v in both[key].items() if k != "batches"}
            print(f"    {cache} page cache, {how:<27} {f['total'] / 1e3:.3f} s in all; per batch: median "
                  f"{f['median']:.2f} ms, 95th percentile {f['p95']:.2f} ms, slowest {f['max']:.1f} ms")
    return figures


def epochs(spec: str, env: dict) -> dict:
    """A real CPU epoch read both ways (median of three fresh processes each): the batches, hence the losses,
    agree; the time shows what reading ahead costs or saves where training, not reading, is the bound."""
    times, losses = {}, set()
    for how in ("direct", "read-ahead"):
        runs = [run(EPOCH, env, spec, str(SIDE), how) for _ in range(3)]
        times[how] = float(np.median([r["seconds"] for r in runs]))
        losses |= {round(r["loss"], 6) for r in runs}
    print(f"  one training epoch of the smallest network on the same set, one torch thread (median of 3): read in "
          f"the training thread {times['direct']:.1f} s, read ahead {times['read-ahead']:.1f} s "
          f"({times['read-ahead'] / times['direct']:.2f}x); training losses {sorted(losses)} "
          f"(one value: the same batches)")
    return times


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
        streamed = {"reading": reading(spec, cache), "epochs": epochs(spec, cache)}
    return {**figures, **streamed}


if __name__ == "__main__":
    main()
