"""How well a cheap proxy ranks architectures as a longer training does (issue 12): Kendall's tau, with its
p-value, between each proxy's accuracy and a 10-epoch training's, over 16 architectures of the default space
(B0 among them) on digits; the seed noise of the default proxy against the spread between architectures; and
each proxy's time per trial. The default study's budget is chosen from this table.

Every run goes through search.worker.run_trial, exactly as a study's trial does. Takes ~30 min on 2 cores.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import optuna
import torch

from effnas.search.selection import proxy_fidelity
from effnas.search.settings import TrainSettings
from effnas.search.trial import TrialSpec
from effnas.search.worker import run_trial
from effnas.space import presets
from effnas.space.searchspace import SearchSpace

ARCHITECTURES = 16
REFERENCE = {"epochs": 10, "resolution": 32}
PROXIES = [{"epochs": 1, "resolution": 32}, {"epochs": 2, "resolution": 32}, {"epochs": 3, "resolution": 32},
           {"epochs": 1, "resolution": 64}, {"epochs": 2, "resolution": 16}]


def architectures(count: int) -> list[str]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace.around(presets.get("efficientnet-b0").arch())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    found = [str(space.base)]
    while len(found) < count:
        trial = study.ask()
        arch = str(space.suggest(trial))
        study.tell(trial, 0.0)
        if arch not in found:
            found.append(arch)
    return found


def accuracy(arch: str, *, epochs: int, resolution: int, seed: int, batch: int = 32) -> tuple[float, float]:
    spec = TrialSpec(number=seed, arch=arch, resolution=resolution, dataset="digits", num_classes=10, split_seed=0,
                     seed=seed, train=TrainSettings(epochs=epochs, batch_size=batch,
                                                   device=os.environ.get("EFFNAS_BENCH_DEVICE", "cpu")))
    start = time.perf_counter()
    result = run_trial(spec)
    return result["accuracy"], time.perf_counter() - start


def main() -> dict:
    torch.set_num_threads(2)
    archs = architectures(ARCHITECTURES)
    reference = [accuracy(a, seed=1, **REFERENCE)[0] for a in archs]
    print(f"reference: {REFERENCE['epochs']} epochs at {REFERENCE['resolution']} px, {len(archs)} architectures; "
          f"accuracy {min(reference):.3f}..{max(reference):.3f}", flush=True)
    rows = []
    for proxy in PROXIES:
        measured = [accuracy(a, seed=0, **proxy) for a in archs]
        values = [m[0] for m in measured]
        f = proxy_fidelity(values, [[r] for r in reference])
        seconds = statistics.fmean(m[1] for m in measured)
        rows.append({**proxy, "tau": f.tau, "p": f.p_value, "seconds": seconds, "values": values})
        print(f"proxy {proxy['epochs']} epoch(s) at {proxy['resolution']} px: Kendall tau {f.tau:.2f} (p = "
              f"{f.p_value:.3g}), {seconds:.1f} s per trial; 20 trials ~{20 * seconds:.0f} s", flush=True)
    default = PROXIES[0]
    second = [accuracy(a, seed=2, **default)[0] for a in archs]
    noise = proxy_fidelity(rows[0]["values"], [[x, y] for x, y in zip(rows[0]["values"], second)])
    print(f"seed noise of the {default['epochs']}-epoch {default['resolution']} px proxy: sd {noise.seed_noise:.4f} "
          f"against a spread of {noise.spread:.4f} between architectures", flush=True)
    reference_noise = statistics.stdev(reference)
    print(f"spread of the reference accuracies: sd {reference_noise:.4f}")
    return {"rows": rows, "seed_noise": noise.seed_noise, "spread": noise.spread}


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
