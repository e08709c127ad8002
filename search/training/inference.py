"""A trained network loaded for inference (``effnas predict``, ``export``, ``bench RUN``): a run folder or a
checkpoint as a user names it, its inference weights (the moving average when the run kept one), and what
its inputs need."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from effnas.search.training.checkpoint import (
    CONFIG,
    EMA_PREFIX,
    EMA_WEIGHTS,
    STATE,
    WEIGHTS,
    latest_checkpoint,
    load_weights,
    read_config,
    read_tensors,
    require,
)
from effnas.space.errors import UserError


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
    config = read_config(path.parent.parent)
    if (path / EMA_WEIGHTS).exists():
        ema = read_tensors(path / EMA_WEIGHTS)
        weights = {k[len(EMA_PREFIX):]: v for k, v in ema.items() if k.startswith(EMA_PREFIX)}
        return check_finite(weights, path / EMA_WEIGHTS), config, "ema"
    return check_finite(read_tensors(path / WEIGHTS), path / WEIGHTS), config, "model"


def check_finite(weights: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """``weights`` when every floating-point tensor is finite; a NaN or inf (a diverged run, a damaged file) is
    refused with the file's and the tensor's name."""
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{str(path)!r} holds non-finite weights (NaN or inf in {name!r}): the run diverged "
                            "or the file is damaged")
    return weights


def check_finite_output(output: torch.Tensor, what: str) -> None:
    """An output a user would read (logits, an export's check) must be finite."""
    if not bool(torch.isfinite(output).all()):
        raise UserError(f"{what} gives non-finite outputs (NaN or inf): its weights or batch-norm statistics are "
                        "broken")


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

    @property
    def dims(self) -> int:
        """Spatial dimensions of the network's input: 2 for images, 3 for volumes."""
        from effnas.space import presets

        return presets.network(self.config["network"]).dims

    def check_images(self, command: str) -> None:
        """Refuse ``command`` (which feeds images) on a volume network."""
        if self.dims != 2:
            raise UserError(f"{command} takes images, and {str(self.path)!r} holds a {self.dims}-D (volume) network")

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0-255 float) images -> the network's input, with the training split's mean and std."""
        shape = (1, -1, *[1] * (images.ndim - 2))
        mean = torch.tensor(self.config["mean"], device=images.device).view(shape)
        std = torch.tensor(self.config["std"], device=images.device).view(shape)
        return (images.float() / 255.0 - mean) / std


def load_trained(text: str) -> Trained:
    """The network of a run folder or checkpoint, in eval mode on the CPU, with its inference weights."""
    from effnas.models import build
    from effnas.space import presets

    path = checkpoint_of(text)
    weights, config, kind = inference_weights(path)
    spec = presets.network(config["network"])
    channels = spec.in_channels
    require(len(config["mean"]) == channels, path.parent.parent / CONFIG,
            f"mean and std have {len(config['mean'])} values and the network takes {channels} input channels")
    model = build(spec, num_classes=config["num_classes"], dropout=0.0, drop_path=0.0)
    load_weights(model, weights, path / (EMA_WEIGHTS if kind == "ema" else WEIGHTS))
    return Trained(model=model.eval(), config=config, weights=kind, path=path)


