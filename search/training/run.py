"""A full training run (``effnas train``) into its run folder: the epochs of the one training engine
(:mod:`search.training.loop`) plus what a long run needs: augmentation on the data's device, an optional moving
average of the weights, a checkpoint after every epoch (:mod:`search.training.checkpoint`), resumption from the
last one, DistributedDataParallel ranks (:mod:`search.training.distributed`), and at the end one evaluation of
the validation split (and of a held-out test set, never used for a choice) that predict, export and the report
read.
"""
from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import torch
from torch import nn

from effnas.models import build
from effnas.search.data.augment import make_augment
from effnas.search.data.dataset import Dataset, place, subset, train_subset
from effnas.search.data.kinds import load_dataset, load_test
from effnas.search.settings import RunSettings, TrainSettings
from effnas.search.training import checkpoint, distributed
from effnas.search.training.loop import batch_logits, evaluation_sums, recalibrate_batch_norm, train_epoch
from effnas.search.training.optim import WarmupCosine, lr_factor, make_optimizer, steps_per_epoch
from effnas.search.utils.devices import memory_layout
from effnas.space.cost import Network, cost
from effnas.space.errors import UserError

EXAMPLES = 24  # validation images shown with their predictions on the report page


class EpochBar(Protocol):
    """What shows an epoch's progress (studies.progress.EpochProgress on the command line)."""

    def step(self, done: int, steps: int, loss: torch.Tensor) -> None: ...

    def close(self, summary: str) -> None: ...


BarFactory = Callable[[int, int, int, TextIO], EpochBar]  # (epoch, epochs, images a step, stream) -> a bar


@dataclass(frozen=True)
class FullRun:
    """A checked full run: the network, its data and settings, its folder and device, and what its config.json
    records besides the data's own figures (``identity``: the settings a resumption must match, and more)."""

    spec: Network
    dataset: str
    resolution: int
    seed: int
    train: TrainSettings
    run: RunSettings
    folder: Path
    device: torch.device
    identity: dict[str, Any]
    threads_note: str | None = None  # how the CPU threads were chosen: said once the run's files are checked


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of epoch ``epoch`` on rank ``rank``: every epoch's randomness (data order, crops, dropout) is a
    function of (seed, epoch, rank), so a run resumed at an epoch boundary draws what it would have drawn."""
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**31 - 1)


def train_run(plan: FullRun, *, bar: BarFactory, err: TextIO | None = None) -> dict[str, Any]:
    """Train (or resume, or only report) the planned run in this process, one of ``world`` ranks."""
    ranks = distributed.setup(plan.device)
    try:
        return _train(plan, ranks, bar, err or sys.stderr)
    finally:
        ranks.close()


def _train(plan: FullRun, ranks: distributed.Ranks, bar_for: BarFactory, err: TextIO) -> dict[str, Any]:
    folder, device = plan.folder, ranks.device
    settings, run = plan.train, plan.run
    data = place(train_subset(load_dataset(plan.dataset, resolution=plan.resolution, seed=plan.seed,
                                           val_fraction=settings.val_fraction), settings.train_samples,
                              seed=plan.seed), device)
    test = load_test(run.test, resolution=plan.resolution, classes=data.classes) if run.test else None
    if ranks.main:
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / checkpoint.CONFIG).is_file():
            checkpoint.write_json(folder / checkpoint.CONFIG, _run_config(plan, data))
    ranks.barrier()
    torch.manual_seed(plan.seed)
    model = build(plan.spec, num_classes=data.num_classes, dropout=settings.dropout, drop_path=settings.drop_path)
    model = model.to(device, memory_format=memory_layout(data.dims + 2, device=device))
    optimizer = make_optimizer(model, settings)
    schedule = WarmupCosine.for_training(settings, steps_per_epoch(len(data.train_y), settings.batch_size))
    ema = None
    if run.ema_decay is not None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(run.ema_decay), use_buffers=False)
    history: list[dict[str, Any]] = []
    latest = checkpoint.latest_checkpoint(folder)
    if latest is not None:
        saved = checkpoint.load_checkpoint(latest)
        checkpoint.check_training_state(saved)
        _restore(saved, model, optimizer, ema)
        schedule.load_state_dict(saved.state["schedule"])
        history = saved.state["history"]
        if ranks.main and saved.epoch < settings.epochs:
            print(f"effnas: resuming {str(folder)!r} after epoch {saved.epoch}", file=err)
    if ranks.main and plan.threads_note and len(history) < settings.epochs:
        print(f"effnas: {plan.threads_note}", file=err)
    net = ranks.wrap(model)
    generator = torch.Generator(device=data.train_x.device)
    augment = make_augment(run.augment, crop_scale=run.crop_scale)
    for epoch in range(len(history), settings.epochs):
        generator.manual_seed(epoch_seed(plan.seed, epoch))
        torch.manual_seed(epoch_seed(plan.seed, epoch, ranks.rank))
        bar = bar_for(epoch + 1, settings.epochs, settings.batch_size, err) if ranks.main else None
        stats = train_epoch(net, data, optimizer, schedule, settings, generator=generator, device=device,
                            augment=augment, shard=(ranks.rank, ranks.world), micro_batches=run.micro_batches,
                            ema=ema, on_step=bar.step if bar else None)
        row = _validate(model, ema, data, ranks, settings.batch_size)
        loss, seconds = ranks.sum([stats.loss, stats.seconds])
        row.update(epoch=epoch + 1, train_loss=loss / ranks.world, lr=schedule.peak * _last_factor(schedule),
                   images_per_second=stats.images * ranks.world / max(seconds / ranks.world, 1e-9),
                   seconds=seconds / ranks.world, world_size=ranks.world, threads=torch.get_num_threads())
        history.append(row)
        if ranks.main:
            _save(plan, model, ema, optimizer, schedule, history, data)
            bar.close(_epoch_summary(row))
        ranks.barrier()
    if not ranks.main:
        return {}
    evaluation_path = folder / checkpoint.EVALUATION
    if not evaluation_path.exists():
        final = ema.module if ema is not None else model
        checkpoint.write_json(evaluation_path, _final_evaluation(final, data, test, settings.batch_size, device,
                                                                 weights="ema" if ema is not None else "model"))
    return summary(folder)


def _restore(saved: checkpoint.Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer,
             ema: nn.Module | None) -> None:
    """The network, its moving average and the optimizer from a checkpoint; files that do not match the run are
    refused with their names."""
    checkpoint.load_weights(model, saved.model, saved.path / checkpoint.WEIGHTS)
    if ema is not None:
        if saved.ema is None:
            raise UserError(f"{str(saved.path)!r} has no {checkpoint.EMA_WEIGHTS} and the run keeps a moving average")
        checkpoint.load_weights(ema, saved.ema, saved.path / checkpoint.EMA_WEIGHTS)
    try:
        checkpoint.restore_optimizer(optimizer, saved.optimizer)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UserError(f"{str(saved.path / checkpoint.OPTIMIZER)!r} does not match the network's parameters "
                        f"(edited or from another run?): {exc}") from None


def _last_factor(schedule: WarmupCosine) -> float:

    return lr_factor(max(0, schedule.step - 1), schedule.total, schedule.warmup)


def _validate(model: nn.Module, ema: nn.Module | None, data: Dataset, ranks: distributed.Ranks,
              batch_size: int) -> dict[str, Any]:
    """Validation accuracy and loss after re-estimating batch-norm statistics; each rank scores a slice."""
    row = {}
    for prefix, net in (("", model), ("ema_", None if ema is None else ema.module)):
        if net is None:
            continue
        recalibrate_batch_norm(net, data, batch_size=max(256, batch_size))
        count = len(data.val_y)
        mine = slice(ranks.rank * count // ranks.world, (ranks.rank + 1) * count // ranks.world)
        sums = evaluation_sums(net, subset(data.val_x, mine), data.val_y[mine], data.normalize,
                               batch_size=max(256, batch_size), device=ranks.device)
        correct, loss_sum, total = ranks.sum(list(sums))
        row.update({f"{prefix}val_accuracy": correct / total, f"{prefix}val_loss": loss_sum / total})
    return row


def _epoch_summary(row: dict[str, Any]) -> str:
    text = f"train loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}, val accuracy {row['val_accuracy']:.4f}"
    if "ema_val_accuracy" in row:
        text += f" (EMA {row['ema_val_accuracy']:.4f})"
    return text + f", {row['images_per_second']:,.0f} img/s"


def _run_config(plan: FullRun, data: Dataset) -> dict[str, Any]:
    c = cost(plan.spec, plan.resolution, num_classes=data.num_classes)
    return {**plan.identity, "num_classes": data.num_classes, "classes": list(data.classes),
            "split": data.split, "mean": data.mean.flatten().tolist(), "std": data.std.flatten().tolist(),
            "params": c.params, "macs": c.macs}


def _save(plan: FullRun, model: nn.Module, ema: nn.Module | None, optimizer: torch.optim.Optimizer,
          schedule: WarmupCosine, history: list[dict[str, Any]], data: Dataset) -> None:
    metadata = {"arch": str(plan.spec), "num_classes": str(data.num_classes), "resolution": str(plan.resolution),
                "format": "pt"}
    state = {"schedule": schedule.state_dict(), "history": history, "seed": plan.seed,
             "rng": "torch.manual_seed(epoch_seed(seed, epoch, rank)) and the data generator reseeded at each epoch"}
    checkpoint.save_checkpoint(plan.folder, epoch=len(history), model=model.state_dict(),
                               ema=None if ema is None else ema.state_dict(), optimizer=optimizer.state_dict(),
                               state=state, metadata=metadata)
    checkpoint.write_metrics(plan.folder, history)


@torch.no_grad()
def predictions(model: nn.Module, images: torch.Tensor, data: Dataset, *, batch_size: int,
                device: torch.device) -> torch.Tensor:
    """Softmax probabilities for ``images`` (uint8, any device; each batch travels), in float32 on the CPU."""
    out = [logits.softmax(1).cpu() for _, logits in batch_logits(model, images, data.normalize,
                                                                   batch_size=batch_size, device=device)]
    return torch.cat(out)


def _scores(probabilities: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, Any]:
    labels = labels.cpu()
    predicted = probabilities.argmax(1)
    confusion = torch.zeros((num_classes, num_classes), dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    loss = torch.nn.functional.nll_loss(probabilities.clamp_min(1e-12).log(), labels).item()
    return {"accuracy": (predicted == labels).double().mean().item(), "loss": loss, "count": len(labels),
            "confusion": confusion.tolist()}


def _final_evaluation(model: nn.Module, data: Dataset, test: tuple[torch.Tensor, torch.Tensor] | None,
                      batch_size: int, device: torch.device, *, weights: str) -> dict[str, Any]:
    """Validation scores, a confusion matrix and example predictions; the test set's scores, once."""
    batch = max(256, batch_size)
    probabilities = predictions(model, data.val_x, data, batch_size=batch, device=device)
    evaluation = {"weights": weights, "classes": list(data.classes),
                  "validation": _scores(probabilities, data.val_y, data.num_classes), "test": None}
    if test is not None:
        evaluation["test"] = _scores(predictions(model, test[0], data, batch_size=batch, device=device), test[1],
                                     data.num_classes)
    predicted = probabilities.argmax(1)
    labels = data.val_y.cpu()
    wrong = [i for i in range(len(labels)) if predicted[i] != labels[i]]
    chosen = sorted(set(range(min(len(labels), EXAMPLES * 2 // 3))) | set(wrong[:EXAMPLES // 3]))
    evaluation["examples"] = [{"index": i, "true": int(labels[i]), "predicted": int(predicted[i]),
                               "probability": float(probabilities[i, predicted[i]]),
                               "png": _png(data.val_x[i])} for i in chosen] if data.dims == 2 else []
    return evaluation


def _png(image: torch.Tensor) -> str:
    """An image (uint8 3 x H x W) as base64 PNG, for a page that embeds its images."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).cpu().numpy()).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def summary(folder: Path) -> dict[str, Any]:
    """What a finished (or resumed) run reports on the command line."""
    files = checkpoint.read_run(folder)
    last = files.metrics[-1] if files.metrics else {}
    evaluation = files.evaluation or {}
    test = evaluation.get("test")
    return {"folder": str(folder), "label": files.config.get("label"), "arch": files.config.get("arch"),
            "epochs": len(files.metrics), "weights": evaluation.get("weights"),
            "val_accuracy": (evaluation.get("validation") or {}).get("accuracy", last.get("val_accuracy")),
            "test_accuracy": test["accuracy"] if test else None,
            "images_per_second": last.get("images_per_second")}
