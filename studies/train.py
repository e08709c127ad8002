"""``effnas train``: full training of one network into ``runs/train/NAME``.

The network is any text :func:`space.presets.network` reads (preset, reference, arch string) or a trial of
a study (``--from-study``). This module plans the run (its network, settings, folder and device, checked
before anything is written; a resumption's settings from its folder) and hands it to the full-run loop,
:func:`search.training.run.train_run`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from effnas.search import catalog
from effnas.search.data.augment import make_augment
from effnas.search.data.kinds import check_spec, dataset_channels, dims_of
from effnas.search.settings import as_recorded_now
from effnas.search.training import checkpoint, distributed
from effnas.search.training.run import FullRun, train_run
from effnas.search.utils.devices import pick_device
from effnas.search.utils.files import check_writable
from effnas.space import presets
from effnas.space.arch import ArchSpec
from effnas.space.cost import Network
from effnas.space.errors import UserError
from effnas.space.references import ResNetSpec
from effnas.studies import __version__
from effnas.studies.config import FIELD_BY_NAME, StudyConfig, load_config
from effnas.studies.outputs import check_outside_cache, resolved, run_folder_of
from effnas.studies.progress import EpochProgress
from effnas.studies.storage import mask_url, open_storage

# may change between a run and its resumption (compile and cuda_graphs are for study trials only)
IDENTITY_EXCLUDES = ("devices", "device", "name", "out", "storage", "compile", "cuda_graphs")
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
    chosen = catalog.trial_of(study, trial)
    return Source(text=chosen.arch, label=f"study {from_study} trial {chosen.number}",
                  resolution=int(chosen.resolution), name=f"{from_study}-trial{chosen.number}",
                  study=_study_data(study))


def _load_study(storage: Any, name: str, config: StudyConfig):
    study = catalog.get(storage, name)
    if study is None:
        raise UserError(f"no study {name!r} in {mask_url(config.storage)}")
    return study


def _confirmed(storage: Any, name: str, config: StudyConfig) -> Source:
    """The confirmed baseline that ``effnas confirm`` stores on the study NAME-confirm."""
    suffix = catalog.SUFFIXES[catalog.CONFIRM]
    confirm = name if name.endswith(suffix) else catalog.companion(name, catalog.CONFIRM)
    if confirm not in catalog.present(storage):
        raise UserError(f"study {name!r} has no confirmation ({confirm!r} is not in {mask_url(config.storage)}); "
                        f"run `effnas confirm --study {name}` first")
    study = _load_study(storage, confirm, config)
    attrs = study.user_attrs
    if attrs.get("kind") != catalog.CONFIRM or "confirmed_baseline" not in attrs:
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
                            "held-out folder:PATH, cifar10:PATH, idx:PATH or fashion-mnist")
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
    _check_home(folder)
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


def _check_home(folder: Path) -> None:
    """A run folder of its own: not inside another run's folder, nor in the image cache."""
    target = resolved(folder)
    outer = run_folder_of(target.parent)
    if outer is not None:
        raise UserError(f"run folder {str(folder)!r} would be inside the training run {str(outer)!r}, among its "
                        "files; give --out a folder of runs (default runs/train)")
    check_outside_cache(target, flag="run folder", shown=str(folder))


def check_name_lengths(folder: Path) -> None:
    """Every name in the run's folder within the file system's limit, before any is looked up or made."""
    for part in folder.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise UserError(f"run folder name {part[:40]!r}... has {len(os.fsencode(part))} bytes; a file name takes "
                            f"at most {NAME_MAX} (shorten --name or --out)")


def _for_dataset(spec: Network, source: Source, dataset: str) -> tuple[Network, Source]:
    """The network as it trains on ``dataset``: of the data's dimensionality (refused otherwise), and a volume
    network takes the volumes' channels."""
    dims, network_dims = dims_of(dataset), spec.dims
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


def train(plan: Plan, *, err: TextIO | None = None, threads_note: str | None = None) -> dict[str, Any]:
    """Train (or resume, or only report) the planned run in this process, one of ``world`` ranks."""
    config = plan.config
    run = FullRun(spec=plan.spec, dataset=config.dataset, resolution=config.resolution, seed=config.seed,
                  train=config.train, run=config.run, folder=plan.folder, device=plan.device,
                  identity={**plan.identity, "version": __version__}, threads_note=threads_note)
    return train_run(run, bar=_bar, err=err)


def _bar(epoch: int, epochs: int, images_per_step: int, stream: TextIO) -> EpochProgress:
    return EpochProgress(epoch=epoch, epochs=epochs, images_per_step=images_per_step, stream=stream)
