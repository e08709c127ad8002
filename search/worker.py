"""What a worker runs: one TrialSpec in, the measured record fields out. It never opens the storage,
so it runs alike in the driver's process (local executor) and on a Ray worker."""
from __future__ import annotations

import math
import time
from typing import Any

import torch

from effnas.models import build
from effnas.search.data.dataset import Dataset, place, train_subset
from effnas.search.data.kinds import load_dataset
from effnas.search.halving import encode
from effnas.search.training.loop import Judge, TrainingDiverged, train_and_evaluate
from effnas.search.trial import TrialSpec
from effnas.search.utils.devices import device_name, pick_device
from effnas.space import presets

_DATA_CACHE: dict[tuple, Dataset] = {}
_CACHE_SIZE = 4  # a scaling study trains at a few resolutions


def load_cached(dataset: str, *, resolution: int, split_seed: int, val_fraction: float,
                device: torch.device, train_samples: int | None = None) -> Dataset:
    """Datasets stay resident (on the trial's device) for the life of the process; ``train_samples``: the
    training split cut to its stratified subset (:func:`search.data.dataset.train_subset`)."""
    key = (dataset, resolution, split_seed, val_fraction, str(device), train_samples)
    if key not in _DATA_CACHE:
        while len(_DATA_CACHE) >= _CACHE_SIZE:
            _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
        data = load_dataset(dataset, resolution=resolution, seed=split_seed, val_fraction=val_fraction)
        _DATA_CACHE[key] = place(train_subset(data, train_samples, seed=split_seed), device)
    return _DATA_CACHE[key]


def zero_cost(spec: TrialSpec, model: torch.nn.Module, data: Dataset, device: torch.device) -> dict[str, Any]:
    """An ``--evaluator`` trial: the untrained network's score on the study's scoring batch (seeded by the
    study's seed, the same images for every trial), no training."""
    from effnas.search.training import zerocost
    from effnas.space.cost import cost

    c = cost(presets.network(spec.arch), spec.resolution, num_classes=spec.num_classes)
    start = time.perf_counter()
    value = zerocost.score(spec.train.evaluator, model, data, seed=spec.split_seed, device=device, macs=c.macs,
                           params=c.params)
    return {"score": value, "evaluator": spec.train.evaluator, "eval_seconds": time.perf_counter() - start,
            "device": device_name(device)}


def run_trial(spec: TrialSpec, *, judge: Judge | None = None) -> dict[str, Any]:
    """Build the candidate, train it, and return the record's measured fields (``judge`` decides at each of
    ``spec.judge_at`` whether training goes on; a stopped trial returns ``stopped_at`` and no accuracy)."""
    device = pick_device(spec.train.device)
    data = load_cached(spec.dataset, resolution=spec.resolution, split_seed=spec.split_seed,
                       val_fraction=spec.train.val_fraction, device=device, train_samples=spec.train.train_samples)
    torch.manual_seed(spec.seed)
    if spec.train.evaluator != "train":  # scored untrained, without dropout masks: the same score for a seed
        return zero_cost(spec, build(presets.network(spec.arch), num_classes=spec.num_classes), data, device)
    model = build(presets.network(spec.arch), num_classes=spec.num_classes, dropout=spec.train.dropout,
                  drop_path=spec.train.drop_path)
    start = time.perf_counter()
    result = train_and_evaluate(model, data, spec.train, device, seed=spec.seed, judge_at=spec.judge_at,
                                judge=judge)
    if not math.isfinite(result.loss):
        raise TrainingDiverged(f"validation loss is {result.loss}")
    outcome = {"stopped_at": result.stopped_at} if result.stopped_at is not None else {"accuracy": result.accuracy}
    if spec.judge_at:
        outcome["rung_accuracy"] = encode(result.rung_accuracy)
    return {
        **outcome,
        "val_loss": result.loss,
        "train_seconds": result.train_seconds,
        "eval_seconds": time.perf_counter() - start - result.train_seconds,
        "images_per_second": result.images_per_second,
        "device": device_name(device),
    }
