"""``effnas train``: full training of one network into ``runs/train/NAME``.

The network is any text :func:`space.presets.network` reads (preset, reference, arch string) or a trial of
a study (``--from-study``). Training is the engine of a NAS trial (search/train.py) plus what a long run
needs: augmentation on the data's device, an optional moving average of the weights, a checkpoint after
every epoch (search/checkpoint.py), resumption from the last one, DistributedDataParallel under torch's
launcher, and at the end one evaluation of the validation split (and of ``--test``, never used for a
choice) that predict, export and the report read.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from models import build
from search import checkpoint, distributed
from search.augment import make_augment
from search.data import Dataset, check_spec, dataset_channels, dims_of, load_dataset, load_test, subset
from search.files import check_writable
from search.record import read as read_record
from search.settings import as_recorded_now
from search.train import (
    WarmupCosine,
    batch_logits,
    evaluation_sums,
    make_optimizer,
    memory_layout,
    pick_device,
    recalibrate_batch_norm,
    steps_per_epoch,
    train_epoch,
)
from search.worker import place
from space import presets
from space.arch import ArchSpec
from space.cost import Network, cost
from space.errors import UserError
from space.references import ResNetSpec
from studies import __version__
from studies.config import FIELD_BY_NAME, StudyConfig, load_config
from studies.progress import EpochProgress
from studies.storage import mask_url, open_storage

# may change between a run and its resumption (compile and cuda_graphs are for study trials only)
IDENTITY_EXCLUDES = ("devices", "device", "name", "out", "storage", "compile", "cuda_graphs")
EXAMPLES = 24  # validation images shown with their predictions on the report page
NAME_MAX = 255  # bytes in one file name (ext4, xfs, btrfs, tmpfs)


@dataclass(frozen=True)
class Source:
    """Where the network comes from; a study also says which data, split seed and validation share it used."""

    text: str  # what presets.network() reads back: a preset or reference name, or an arch string
    label: str
    resolution: int
    name: str  # the run's default folder name
    study: dict[str, Any] = field(default_factory=dict)


def resolve_source(config: StudyConfig, *, arch: str | None, from_study: str | None,
                   trial: str | None) -> Source:
    if (arch is None) == (from_study is None):
        raise UserError("give the network to train (a preset, reference or arch string) or --from-study NAME, "
                        "not both")
    if arch is not None:
        if trial is not None:
            raise UserError("--trial goes with --from-study")
        spec, preset = presets.resolve(arch)
        if preset is not None or isinstance(spec, ResNetSpec):
            return Source(text=arch, label=arch, resolution=preset.resolution if preset else 224, name=arch)
        digest = hashlib.sha1(str(spec).encode()).hexdigest()[:8]
        return Source(text=str(spec), label=f"arch-{digest}", resolution=224, name=f"arch-{digest}")
    trial = trial or "baseline"
    storage = open_storage(config.storage, write=False)
    if trial == "confirmed":
        return _confirmed(storage, from_study, config)
    study = _load_study(storage, from_study, config)
    if trial == "baseline":
        if study.user_attrs.get("kind") != "nas":
            raise UserError(f"--trial baseline needs a NAS study; {from_study!r} is a {study.user_attrs.get('kind')} "
                            "study: give a trial number")
        from studies.nas import chosen_baseline

        chosen = chosen_baseline(study)
    elif trial.isdigit():
        matches = [t for t in study.get_trials(deepcopy=False) if t.number == int(trial)]
        if not matches or matches[0].state.name != "COMPLETE":
            raise UserError(f"study {from_study!r} has no complete trial {trial}")
        chosen = read_record(matches[0])
    else:
        raise UserError(f"--trial {trial!r}: expected a trial number, baseline or confirmed")
    return Source(text=chosen.arch, label=f"study {from_study} trial {chosen.number}",
                  resolution=int(chosen.resolution), name=f"{from_study}-trial{chosen.number}",
                  study=_study_data(study))


def _load_study(storage: Any, name: str, config: StudyConfig):
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise UserError(f"no study {name!r} in {mask_url(config.storage)}") from None


def _confirmed(storage: Any, name: str, config: StudyConfig) -> Source:
    """The confirmed baseline that ``effnas confirm`` stores on the study NAME-confirm."""
    import optuna

    confirm = name if name.endswith("-confirm") else f"{name}-confirm"
    if confirm not in optuna.get_all_study_names(storage):
        raise UserError(f"study {name!r} has no confirmation ({confirm!r} is not in {mask_url(config.storage)}); "
                        f"run `effnas confirm --study {name}` first")
    study = _load_study(storage, confirm, config)
    attrs = study.user_attrs
    if attrs.get("kind") != "confirm" or "confirmed_baseline" not in attrs:
        raise UserError(f"study {confirm!r} holds no confirmed baseline yet; run `effnas confirm --study {name}` "
                        "to the end")
    return Source(text=str(attrs["confirmed_baseline"]), label=f"study {name} confirmed baseline",
                  resolution=int(attrs["confirmed_resolution"]), name=f"{name}-confirmed", study=_study_data(study))


def _study_data(study: Any) -> dict[str, Any]:
    """The data a study trained on: the defaults of a run from it, so its validation split is the study's."""
    import json

    attrs = study.user_attrs
    try:
        settings = json.loads(attrs.get("config", "{}"))
    except ValueError:
        settings = {}
    found = {"dataset": attrs.get("dataset", settings.get("dataset")), "seed": attrs.get("seed", settings.get("seed")),
             "val_fraction": settings.get("val_fraction")}
    return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True)
class Plan:
    """A checked run, before anything is written."""

    config: StudyConfig
    spec: Network
    source: Source
    folder: Path
    device: torch.device
    identity: dict[str, Any]

    @property
    def devices(self) -> int:
        return self.config.run.devices


def plan_train(config: StudyConfig, *, arch: str | None, from_study: str | None, trial: str | None,
               resume: str | None) -> Plan:
    """Check every input and find the run's folder; a folder holding another run is refused."""
    if resume is not None:
        if arch is not None or from_study is not None:
            raise UserError("--resume goes on with a run's own network and settings: give no ARCH or --from-study")
        return _plan_resume(config, resume)
    source = resolve_source(config, arch=arch, from_study=from_study, trial=trial)
    chosen = {"resolution": source.resolution, **source.study}
    config = _with_defaults(config, {k: v for k, v in chosen.items() if k not in config.explicit})
    folder = Path(config.run.out) / (config.run.name or source.name)
    return _check(config, source, folder)


def _with_defaults(config: StudyConfig, values: dict[str, Any]) -> StudyConfig:
    train = {k: values.pop(k) for k in list(values) if k in {f.name for f in dataclasses.fields(config.train)}}
    return dataclasses.replace(config, **values, train=dataclasses.replace(config.train, **train))


def _plan_resume(config: StudyConfig, resume: str) -> Plan:
    folder = Path(resume)
    if not (folder / checkpoint.CONFIG).is_file():
        folder = Path(config.run.out) / resume
    if not (folder / checkpoint.CONFIG).is_file():
        raise UserError(f"--resume {resume!r}: no training run there (nor under {config.run.out!r})")
    saved = checkpoint.read_config(folder)
    unknown = sorted(set(saved["settings"]) - set(FIELD_BY_NAME) - {"space"})
    if unknown:
        raise UserError(f"{str(folder / checkpoint.CONFIG)!r} records unknown setting(s) {', '.join(unknown)} "
                        "(edited, or written by another version?)")
    settings = {**as_recorded_now(saved["settings"]), **{k: v for k, v in config.to_dict().items()
                                                if k in ("devices", "device") and k in config.explicit}}
    resumed = load_config(overrides={k: v for k, v in settings.items() if k != "space"}, command="train")
    source = Source(text=saved["network"], label=saved["label"], resolution=saved["resolution"], name=folder.name)
    return _check(resumed, source, folder)


def _identity(config: StudyConfig, spec: Network, source: Source) -> dict[str, Any]:
    settings = {k: v for k, v in config.to_dict().items() if k != "space"}
    return {"arch": str(spec), "network": source.text, "label": source.label, "resolution": config.resolution,
            "settings": settings}


def _check(config: StudyConfig, source: Source, folder: Path) -> Plan:
    check_spec(config.dataset)
    spec, source = _for_dataset(presets.network(source.text), source, config.dataset)
    config = _augment_for(config)
    check_name_lengths(folder)
    run, train = config.run, config.train
    if run.test is not None:
        check_spec(run.test)
        if run.test == "digits":
            raise UserError("--test digits: the bundled digits are all in the training/validation split; give a "
                            "held-out folder:PATH or cifar10:PATH")
    parts = run.devices * run.micro_batches
    if train.batch_size % parts:
        raise UserError(f"--batch-size {train.batch_size} must be a multiple of --devices x --micro-batches = {parts}")
    make_augment(run.augment, crop_scale=run.crop_scale)
    device = pick_device(train.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {train.device}: CUDA is not available on this machine")
    distributed.check_devices(run.devices, device)
    out = Path(run.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {run.out!r} exists and is not a directory")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{str(folder)!r} exists and is not a directory")
    check_writable(folder, what="run folder", directory=True)
    identity = _identity(config, spec, source)
    if (folder / checkpoint.CONFIG).is_file():
        saved = checkpoint.read_config(folder)
        differ = _differences(saved, identity)
        if differ:
            raise UserError(f"{str(folder)!r} holds a run with another {', '.join(differ)}; give --name NAME for a "
                            f"new run, or --resume {str(folder)!r} to go on with its own settings")
    elif folder.is_dir() and any(folder.iterdir()):
        raise UserError(f"{str(folder)!r} exists and is not a training run; give --name NAME")
    return Plan(config=config, spec=spec, source=source, folder=folder, device=device, identity=identity)


def check_name_lengths(folder: Path) -> None:
    """Every name in the run's folder within the file system's limit, before any is looked up or made."""
    for part in folder.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise UserError(f"run folder name {part[:40]!r}... has {len(os.fsencode(part))} bytes; a file name takes "
                            f"at most {NAME_MAX} (shorten --name or --out)")


def _for_dataset(spec: Network, source: Source, dataset: str) -> tuple[Network, Source]:
    """The network as it trains on ``dataset``: of the data's dimensionality (refused otherwise), and a volume
    network takes the volumes' channels."""
    dims, network_dims = dims_of(dataset), getattr(spec, "dims", 2)
    if dims != network_dims:
        samples = "images" if dims == 2 else "volumes"
        raise UserError(f"dataset {dataset!r} holds {samples}, but {source.label} is a {network_dims}-D network; "
                        f"give a {dims}-D network{' (an arch string starting with 3d)' if dims == 3 else ''} or a "
                        f"{network_dims}-D dataset")
    if dims == 3 and isinstance(spec, ArchSpec) and spec.in_channels != dataset_channels(dataset):
        spec = dataclasses.replace(spec, in_channels=dataset_channels(dataset))
        source = dataclasses.replace(source, text=str(spec))
    return spec, source


def _augment_for(config: StudyConfig) -> StudyConfig:
    """Crops and flips are of images: a volume dataset trains with --augment none, its default; an explicit
    image augmentation on volumes is refused."""
    if dims_of(config.dataset) == 2 or config.run.augment == "none":
        return config
    if "augment" in config.explicit:
        raise UserError(f"--augment {config.run.augment}: crops and flips are of images, and dataset "
                        f"{config.dataset!r} holds volumes; give --augment none (the default for volumes)")
    return dataclasses.replace(config, run=dataclasses.replace(config.run, augment="none"))


def _differences(saved: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    out = [k for k in ("arch", "resolution") if saved.get(k) != identity[k]]
    old, new = as_recorded_now(saved.get("settings", {})), identity["settings"]
    out += [k for k in sorted(set(old) | set(new)) if k not in IDENTITY_EXCLUDES and old.get(k) != new.get(k)]
    return out


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of epoch ``epoch`` on rank ``rank``: every epoch's randomness (data order, crops, dropout) is a
    function of (seed, epoch, rank), so a run resumed at an epoch boundary draws what it would have drawn."""
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**31 - 1)


def train(plan: Plan, *, err: TextIO = sys.stderr) -> dict[str, Any]:
    """Train (or resume, or only report) the planned run in this process, one of ``world`` ranks."""
    ranks = distributed.setup(plan.device)
    try:
        return _train(plan, ranks, err)
    finally:
        ranks.close()


def _train(plan: Plan, ranks: distributed.Ranks, err: TextIO) -> dict[str, Any]:
    config, folder, device = plan.config, plan.folder, ranks.device
    settings, run = config.train, config.run
    data = place(load_dataset(config.dataset, resolution=config.resolution, seed=config.seed,
                              val_fraction=settings.val_fraction), device)
    test = load_test(run.test, resolution=config.resolution, classes=data.classes) if run.test else None
    if ranks.main:
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / checkpoint.CONFIG).is_file():
            checkpoint.write_json(folder / checkpoint.CONFIG, _run_config(plan, data))
    ranks.barrier()
    torch.manual_seed(config.seed)
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
    net = ranks.wrap(model)
    generator = torch.Generator(device=data.train_x.device)
    augment = make_augment(run.augment, crop_scale=run.crop_scale)
    for epoch in range(len(history), settings.epochs):
        generator.manual_seed(epoch_seed(config.seed, epoch))
        torch.manual_seed(epoch_seed(config.seed, epoch, ranks.rank))
        bar = EpochProgress(epoch=epoch + 1, epochs=settings.epochs, images_per_step=settings.batch_size,
                            stream=err) if ranks.main else None
        stats = train_epoch(net, data, optimizer, schedule, settings, generator=generator, device=device,
                            augment=augment, shard=(ranks.rank, ranks.world), micro_batches=run.micro_batches,
                            ema=ema, on_step=bar.step if bar else None)
        row = _validate(model, ema, data, ranks, settings.batch_size)
        loss, seconds = ranks.sum([stats.loss, stats.seconds])
        row.update(epoch=epoch + 1, train_loss=loss / ranks.world, lr=schedule.peak * _last_factor(schedule),
                   images_per_second=stats.images * ranks.world / max(seconds / ranks.world, 1e-9),
                   seconds=seconds / ranks.world, world_size=ranks.world)
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
    from search.train import lr_factor

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


def _run_config(plan: Plan, data: Dataset) -> dict[str, Any]:
    c = cost(plan.spec, plan.config.resolution, num_classes=data.num_classes)
    return {**plan.identity, "version": __version__, "num_classes": data.num_classes, "classes": list(data.classes),
            "split": data.split, "mean": data.mean.flatten().tolist(), "std": data.std.flatten().tolist(),
            "params": c.params, "macs": c.macs}


def _save(plan: Plan, model: nn.Module, ema: nn.Module | None, optimizer: torch.optim.Optimizer,
          schedule: WarmupCosine, history: list[dict[str, Any]], data: Dataset) -> None:
    metadata = {"arch": str(plan.spec), "num_classes": str(data.num_classes), "resolution": str(plan.config.resolution),
                "format": "pt"}
    state = {"schedule": schedule.state_dict(), "history": history, "seed": plan.config.seed,
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
