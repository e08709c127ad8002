"""How well each cheap signal ranks architectures on Fashion-MNIST (issue 22): Kendall's tau, with its p-value,
between each proxy and a longer reference training, over 16 architectures of the default space (B0 among them),
at 32 px: short trainings (epochs), stratified subsets of the training split (``--train-samples``), the zero-cost
evaluators (synflow, naswot, jacob_cov) and the analytic baselines (params, macs); seconds per architecture for
each. The reference is trained with two seeds, so its own noise (tau between its seeds, sd of a seed's accuracy
against the spread between architectures) is stated beside the proxies'.

    .venv/bin/python -m tests.benchmarks.bench_proxies           # what 2 cores allow (~35 min)
    .venv/bin/python -m tests.benchmarks.bench_proxies --full    # the issue's scale: 10-epoch reference on the
                                                                 # whole split, subsets of 5k/10k/20k (hours on CPU)

With ``EFFNAS_BENCH_RESULTS=FILE`` every measurement is kept in FILE as it is taken, and a rerun resumes.
Every training goes through search.worker.run_trial, as a study's trial does; every zero-cost score through
search.training.zerocost.score, as an ``--evaluator`` trial does. Skips with one line where the Debian package
dataset-fashion-mnist is not installed.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from effnas.search.data import idx
from effnas.search.selection import proxy_fidelity
from effnas.search.settings import TrainSettings
from effnas.search.training import zerocost
from effnas.search.trial import TrialSpec
from effnas.search.worker import load_cached, run_trial
from effnas.space import presets
from effnas.space.cost import cost
from tests.benchmarks.bench_fidelity import architectures

DATASET = "fashion-mnist"
RESOLUTION = 32
ARCHITECTURES = 16


@dataclass(frozen=True)
class Scale:
    reference_epochs: int
    reference_samples: int | None  # None: the whole training split
    val_fraction: float
    proxies: tuple[tuple[int, int | None], ...]  # (epochs, train samples)


QUICK = Scale(reference_epochs=3, reference_samples=1000, val_fraction=0.05, proxies=((1, 1000), (1, 500)))
FULL = Scale(reference_epochs=10, reference_samples=None, val_fraction=0.2,
             proxies=((1, None), (3, None), (1, 5000), (1, 10000), (1, 20000)))


def memo(measure):
    """Each measurement kept in ``$EFFNAS_BENCH_RESULTS`` (a JSON file, rewritten whole after each): a benchmark
    stopped part-way resumes where it was, and the figures can be recomputed from the file."""
    path = os.environ.get("EFFNAS_BENCH_RESULTS")

    def measured(arch: str, **kw) -> tuple[float, float]:
        if not path:
            return measure(arch, **kw)
        key = json.dumps([measure.__name__, arch, {k: v for k, v in kw.items() if k != "scale"}], sort_keys=True)
        known = json.loads(open(path).read()) if os.path.exists(path) else {}
        if key not in known:
            known[key] = measure(arch, **kw)
            with open(path + ".tmp", "w") as f:
                json.dump(known, f)
            os.replace(path + ".tmp", path)
        return tuple(known[key])
    return measured


@memo
def train(arch: str, *, epochs: int, samples: int | None, seed: int, scale: Scale) -> tuple[float, float]:
    spec = TrialSpec(number=seed, arch=arch, resolution=RESOLUTION, dataset=DATASET, num_classes=10, split_seed=0,
                     seed=seed, train=TrainSettings(epochs=epochs, batch_size=32, val_fraction=scale.val_fraction,
                                                   train_samples=samples,
                                                   device=os.environ.get("EFFNAS_BENCH_DEVICE", "cpu")))
    start = time.perf_counter()
    result = run_trial(spec)
    return result["accuracy"], time.perf_counter() - start


@memo
def zero_cost(arch: str, *, evaluator: str, scale: Scale) -> tuple[float, float]:
    from effnas.models import build

    start = time.perf_counter()
    data = load_cached(DATASET, resolution=RESOLUTION, split_seed=0, val_fraction=scale.val_fraction,
                       device=torch.device("cpu"))
    c = cost(presets.network(arch), RESOLUTION, num_classes=10)
    torch.manual_seed(0)
    model = build(presets.network(arch), num_classes=10)
    value = zerocost.score(evaluator, model, data, seed=0, device=torch.device("cpu"), macs=c.macs,
                           params=c.params)
    return value, time.perf_counter() - start


def label(epochs: int, samples: int | None) -> str:
    return f"{epochs} epoch(s) on {'the whole split' if samples is None else f'{samples:,} images'}"


def main() -> dict | None:
    if idx.fashion_mnist_missing(idx.fashion_mnist_root()):
        print("bench_proxies: skipped: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        return {"skipped": True}
    scale = FULL if "--full" in sys.argv else QUICK
    torch.set_num_threads(int(os.environ.get("EFFNAS_BENCH_THREADS", "2")))
    archs = architectures(ARCHITECTURES)
    runs = [[train(a, epochs=scale.reference_epochs, samples=scale.reference_samples, seed=s, scale=scale)
             for a in archs] for s in (1, 2)]
    reference = [[runs[0][i][0], runs[1][i][0]] for i in range(len(archs))]
    own = proxy_fidelity([r[0] for r in reference], [[r[1]] for r in reference])
    noise = proxy_fidelity([r[0] for r in reference], reference)
    low, high = min(map(min, reference)), max(map(max, reference))
    print(f"reference: {label(scale.reference_epochs, scale.reference_samples)} at {RESOLUTION} px, "
          f"{len(archs)} architectures, 2 seeds; accuracy {low:.3f}..{high:.3f}; tau between its seeds {own.tau:.2f} "
          f"(p = {own.p_value:.3g}); seed sd {noise.seed_noise:.4f} against a "
          f"spread of {noise.spread:.4f}; {statistics.fmean(t for run in runs for _, t in run):.1f} s per "
          "architecture", flush=True)
    rows = []
    for epochs, samples in scale.proxies:
        measured = [train(a, epochs=epochs, samples=samples, seed=0, scale=scale) for a in archs]
        rows.append(_row(label(epochs, samples), measured, reference))
    for evaluator in ("synflow", "naswot", "jacob_cov", "params", "macs"):
        rows.append(_row(evaluator, [zero_cost(a, evaluator=evaluator, scale=scale) for a in archs], reference))
    out = {"scale": "full" if scale is FULL else "quick", "architectures": archs, "reference": reference,
           "tau_between_reference_seeds": own.tau, "rows": rows}
    print(json.dumps(out))
    return out


def _row(name: str, measured: list[tuple[float, float]], reference: list[list[float]]) -> dict:
    values = [m[0] for m in measured]
    f = proxy_fidelity(values, reference)
    seconds = statistics.fmean(m[1] for m in measured)
    print(f"{name}: Kendall tau {f.tau:.2f} (p = {f.p_value:.3g}), {seconds:.2f} s per architecture", flush=True)
    return {"proxy": name, "tau": f.tau, "p": f.p_value, "seconds": seconds, "values": values}


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
