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
from JSON.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from search.files import write_atomic
from space.errors import UserError

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


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{str(path)!r} does not exist") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{str(path)!r} is not readable JSON: {exc}") from None


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
    tensors, optimizer_meta = _flatten_optimizer(optimizer)
    write_atomic(partial / WEIGHTS, to_bytes(model, metadata))
    if ema is not None:
        write_atomic(partial / EMA_WEIGHTS, to_bytes(ema, metadata))
    write_atomic(partial / OPTIMIZER, to_bytes(tensors))
    write_json(partial / STATE, {**state, "epoch": epoch, "optimizer": optimizer_meta})
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
    state = read_json(path / STATE)
    model = _read_tensors(path / WEIGHTS)
    ema = _read_tensors(path / EMA_WEIGHTS) if (path / EMA_WEIGHTS).exists() else None
    optimizer = _unflatten_optimizer(_read_tensors(path / OPTIMIZER), state.pop("optimizer"))
    return Checkpoint(path=path, model=model, ema=ema, optimizer=optimizer, state=state)


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
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


def checkpoint_of(text: str) -> Path:
    """A checkpoint directory, or a run folder (its newest checkpoint), as a user names either."""
    path = Path(text).expanduser()
    if (path / STATE).is_file() and (path / WEIGHTS).is_file():
        return path
    if (path / CONFIG).is_file():
        latest = latest_checkpoint(path)
        if latest is None:
            raise UserError(f"training run {str(path)!r} has no checkpoint yet")
        return latest
    raise UserError(f"{text!r} is neither a training run folder (with {CONFIG}) nor a checkpoint directory "
                    f"(with {WEIGHTS} and {STATE})")


def inference_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """(weights, the run's config, "ema" | "model"): the weights predict, export and bench use — the moving
    average when the run kept one."""
    path = Path(path)
    config = read_json(path.parent.parent / CONFIG)
    if (path / EMA_WEIGHTS).exists():
        ema = _read_tensors(path / EMA_WEIGHTS)
        return {k[len(EMA_PREFIX):]: v for k, v in ema.items() if k.startswith(EMA_PREFIX)}, config, "ema"
    return _read_tensors(path / WEIGHTS), config, "model"


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
        metrics = [json.loads(line) for line in (folder / METRICS).read_text().splitlines() if line.strip()]
    evaluation = read_json(folder / EVALUATION) if (folder / EVALUATION).exists() else None
    return RunFiles(folder=folder, config=read_json(folder / CONFIG), metrics=metrics, evaluation=evaluation)


def write_metrics(folder: Path, history: list[dict[str, Any]]) -> None:
    write_atomic(Path(folder) / METRICS, "".join(json.dumps(row, sort_keys=True) + "\n" for row in history))


def run_folders(root: Path) -> list[Path]:
    """The run folders under ``root`` (each holds a config.json), by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if (p / CONFIG).is_file()) if root.is_dir() else []


@dataclass
class Trained:
    """A trained network ready for inference, with what its inputs need."""

    model: torch.nn.Module
    config: dict[str, Any]
    weights: str  # "ema" or "model"
    path: Path

    @property
    def resolution(self) -> int:
        return int(self.config["resolution"])

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0-255 float) images -> the network's input, with the training split's mean and std."""
        mean = torch.tensor(self.config["mean"], device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.config["std"], device=images.device).view(1, 3, 1, 1)
        return (images.float() / 255.0 - mean) / std


def load_trained(text: str) -> Trained:
    """The network of a run folder or checkpoint, in eval mode on the CPU, with its inference weights."""
    from models import build
    from space import presets

    path = checkpoint_of(text)
    weights, config, kind = inference_weights(path)
    model = build(presets.network(config["network"]), num_classes=int(config["num_classes"]), dropout=0.0,
                  drop_path=0.0)
    model.load_state_dict(weights)
    return Trained(model=model.eval(), config=config, weights=kind, path=path)
