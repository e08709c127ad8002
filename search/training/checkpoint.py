"""A training run's folder and its checkpoints: the one home of their layout, writers and readers.

::

    runs/train/NAME/
      config.json        what the run is: network, data, split, settings, class names, normalisation
      metrics.jsonl      one JSON object per finished epoch (rewritten whole after each checkpoint)
      checkpoints/epoch-0003/
        model.safetensors      the network's weights and buffers (metadata: arch, classes, resolution)
        ema.safetensors        the exponential moving average of the weights, when the run keeps one
        optimizer.safetensors  AdamW's moments and step counts
        state.json             epoch, schedule, optimizer hyper-parameters, seeds, the metrics so far
      evaluation.json    after the last epoch: validation (and test) accuracy, confusion matrix, examples

A checkpoint is written into ``epoch-NNNN.tmp-PID`` and renamed when complete, and an older one is renamed
away before it is removed: a rename is atomic, so a SIGKILL at any point leaves a complete checkpoint (the
previous or the new one), never half of one. Nothing is unpickled: tensors come from safetensors, the rest
from JSON, and the JSON is checked where it is read (:func:`read_config`, :func:`load_checkpoint`,
:func:`read_run`): an edited or damaged file is refused with its name, never half used.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from effnas.search.utils.files import read_bounded, write_atomic
from effnas.space.arch import MAX_CHANNELS
from effnas.space.checks import is_number, within
from effnas.space.cost import MAX_RESOLUTION
from effnas.space.errors import UserError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
EVALUATION = "evaluation.json"
CHECKPOINTS = "checkpoints"
WEIGHTS = "model.safetensors"
EMA_WEIGHTS = "ema.safetensors"
OPTIMIZER = "optimizer.safetensors"
STATE = "state.json"
EMA_PREFIX = "module."  # AveragedModel keeps the averaged network as .module
_EPOCH_DIR = re.compile(r"epoch-(\d{4,})")


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


MAX_JSON_BYTES = 512 * 2**20  # a run's JSON files (an evaluation with its example images is a few MB)


def read_text(path: Path) -> str:
    """A run file's text: a regular file (never a device or a FIFO, which would never end or never come) of
    bounded size, in UTF-8."""
    data = read_bounded(path, limit=MAX_JSON_BYTES, what="run file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{str(path)!r} is not text (binary data at byte {exc.start})") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except ValueError as exc:
        raise UserError(f"{str(path)!r} is not readable JSON: {exc}") from None


def require(ok: bool, path: Path, what: str) -> None:
    if not ok:
        raise UserError(f"{str(path)!r} is not a file effnas wrote (edited or damaged?): {what}")


def _is_int(value: Any, low: int, high: int) -> bool:
    return within(value, low, high, integer=True)


def _is_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _check_object(value: Any, path: Path, keys: dict[str, type] | None = None) -> dict[str, Any]:
    """``value`` if it is a JSON object holding ``keys`` of their types."""
    require(isinstance(value, dict), path, f"expected a JSON object, got {type(value).__name__}")
    for key, kind in (keys or {}).items():
        require(key in value, path, f"no {key!r}")
        require(isinstance(value[key], kind) and not isinstance(value[key], bool), path,
                 f"{key!r} must be {kind.__name__ if kind is not list else 'a list'}, got {value[key]!r:.60}")
    return value


def read_config(folder: Path) -> dict[str, Any]:
    """A run's config.json, checked for what predict, export, bench and --resume read from it."""
    path = Path(folder) / CONFIG
    config = _check_object(read_json(path), path, {"network": str, "arch": str, "label": str, "settings": dict,
                                                   "resolution": int, "num_classes": int, "classes": list,
                                                   "mean": list, "std": list})
    require(_is_int(config["resolution"], 1, MAX_RESOLUTION), path,
             f"resolution must be in [1, {MAX_RESOLUTION}], got {config['resolution']!r}")
    require(_is_int(config["num_classes"], 1, MAX_CHANNELS), path,
             f"num_classes must be in [1, {MAX_CHANNELS}], got {config['num_classes']!r}")
    classes = config["classes"]
    require(len(classes) == config["num_classes"] and all(isinstance(c, str) for c in classes), path,
             f"classes must be {config['num_classes']} names (num_classes), got {len(classes)}")
    mean, std = config["mean"], config["std"]
    require(len(mean) == len(std) and 1 <= len(mean) <= MAX_CHANNELS and all(map(_is_number, mean + std)), path,
             "mean and std must be lists of as many numbers as input channels")
    require(all(s > 0 for s in std), path, "std must be > 0")
    return config


def to_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """safetensors bytes of tensors on any device and in any memory format."""
    return save_tensors({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, metadata=metadata)


@dataclass
class Checkpoint:
    path: Path
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    optimizer: dict[str, Any]  # torch's optimizer state_dict format
    state: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])


def save_checkpoint(folder: Path, *, epoch: int, model: dict[str, torch.Tensor], ema: dict[str, torch.Tensor] | None,
                    optimizer: dict[str, Any], state: dict[str, Any], metadata: dict[str, str]) -> Path:
    """Write checkpoint ``epoch`` of the run in ``folder`` and remove the older ones; returns its directory."""
    root = Path(folder) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"epoch-{epoch:04d}"
    partial = root / f"{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        tensors, optimizer_meta = _flatten_optimizer(optimizer)
        write_atomic(partial / WEIGHTS, to_bytes(model, metadata))
        if ema is not None:
            write_atomic(partial / EMA_WEIGHTS, to_bytes(ema, metadata))
        write_atomic(partial / OPTIMIZER, to_bytes(tensors))
        write_json(partial / STATE, {**state, "epoch": epoch, "optimizer": optimizer_meta})
    except BaseException:  # a full disk, an interrupt: the previous checkpoint stands, no half of this one
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if final.exists():  # a run killed after this rename, before the clean-up below
        _remove(final)
    os.replace(partial, final)
    for other in root.iterdir():
        if other != final:
            _remove(other)
    return final


def _remove(path: Path) -> None:
    """Rename out of the checkpoints' namespace first, so a half-removed directory is never taken for one."""
    doomed = path.with_name(f"{path.name}.tmp-removing-{os.getpid()}")
    try:
        os.replace(path, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    root = Path(folder) / CHECKPOINTS
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _EPOCH_DIR.fullmatch(p.name))
             and (p / STATE).is_file()]
    return max(found)[1] if found else None


def load_checkpoint(path: Path) -> Checkpoint:
    path = Path(path)
    state = _check_state(read_json(path / STATE), path / STATE)
    model = read_tensors(path / WEIGHTS)
    ema = read_tensors(path / EMA_WEIGHTS) if (path / EMA_WEIGHTS).exists() else None
    optimizer = _unflatten_optimizer(read_tensors(path / OPTIMIZER), state.pop("optimizer"))
    return Checkpoint(path=path, model=model, ema=ema, optimizer=optimizer, state=state)


def _check_state(state: Any, path: Path) -> dict[str, Any]:
    """state.json, checked for what :func:`load_checkpoint` reads from it."""
    _check_object(state, path, {"epoch": int, "optimizer": dict})
    require(_is_int(state["epoch"], 1, 2**31), path, f"epoch must be >= 1, got {state['epoch']!r}")
    _check_object(state["optimizer"], path, {"param_groups": list, "scalars": dict})
    return state


def check_training_state(saved: Checkpoint) -> None:
    """What a full training run resumes from besides the tensors: the schedule and one history row an epoch."""
    path, state = saved.path / STATE, saved.state
    _check_object(state, path, {"schedule": dict, "history": list})
    require(len(state["history"]) == saved.epoch and all(isinstance(r, dict) for r in state["history"]), path,
             f"epoch {saved.epoch} and {len(state['history'])} history rows do not agree")
    require(all(_is_number(state["schedule"].get(k)) for k in ("peak", "total", "warmup", "step")), path,
             "schedule must hold peak, total, warmup and step")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_tensors(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"checkpoint file {str(path)!r} is missing") from None
    except Exception as exc:  # safetensors raises its own error types for a corrupt header
        raise UserError(f"checkpoint file {str(path)!r} is not readable safetensors: {exc}") from None


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        index, _, key = name.partition(".")
        state.setdefault(int(index), {})[key] = tensor
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def restore_optimizer(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
    """Load an optimizer's state, each moment in its parameter's memory layout: safetensors stores tensors
    contiguous, and a fused AdamW walks a channels_last weight and its moments element by element in memory,
    so a moment in another layout would be paired with the wrong weights."""
    optimizer.load_state_dict(state_dict)
    for param, values in optimizer.state.items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                values[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


@dataclass
class RunFiles:
    """What a run folder holds, as the report reads it."""

    folder: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    evaluation: dict[str, Any] | None


def read_run(folder: Path) -> RunFiles:
    folder = Path(folder)
    metrics = []
    if (folder / METRICS).exists():
        metrics = [_metrics_row(line, folder / METRICS) for line in read_text(folder / METRICS).splitlines()
                   if line.strip()]
    evaluation = read_json(folder / EVALUATION) if (folder / EVALUATION).exists() else None
    if evaluation is not None:
        _check_object(evaluation, folder / EVALUATION)
    config = _check_object(read_json(folder / CONFIG), folder / CONFIG)
    require(isinstance(config.get("settings", {}), dict), folder / CONFIG, "'settings' must be an object")
    return RunFiles(folder=folder, config=config, metrics=metrics, evaluation=evaluation)


def _metrics_row(line: str, path: Path) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise UserError(f"{str(path)!r} is not readable JSON lines: {exc}") from None
    _check_object(row, path, {"epoch": int})
    return row


def write_metrics(folder: Path, history: list[dict[str, Any]]) -> None:
    write_atomic(Path(folder) / METRICS, "".join(json.dumps(row, sort_keys=True) + "\n" for row in history))


def run_folders(root: Path) -> list[Path]:
    """The run folders under ``root`` (each holds a config.json), by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if os.path.lexists(p / CONFIG)) if root.is_dir() else []


@contextlib.contextmanager
def held(folder: Path) -> Iterator[None]:
    """The run folder (made if new) held for this process alone while the block runs: a second ``effnas train``
    into it is refused, not let in to interleave its checkpoints with this one's. The hold is an advisory lock
    on the folder itself, which the kernel drops when the process ends, however it ends, so a killed run leaves
    no lock file and nothing to clean up."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise UserError(f"run folder {str(folder)!r} cannot be opened: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"run folder {str(folder)!r} is in use by another `effnas train` (still running); wait "
                            "for it to end, or give --name NAME for another run") from None
        except OSError as exc:  # a file system without locks
            raise UserError(f"run folder {str(folder)!r} cannot be locked for this run: {exc.strerror or exc}") \
                from None
        yield
    finally:
        os.close(handle)


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """``model.load_state_dict(weights)``, refused with the file's name when they do not match the network."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise UserError(f"{str(path)!r} does not hold the weights of the network in the run's {CONFIG} (edited "
                        f"or from another run?): {detail[:300]}") from None
