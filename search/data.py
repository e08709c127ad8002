"""Datasets as resident tensors: ``digits`` (bundled), ``cifar10:PATH`` and ``folder:PATH``.

Every dataset becomes uint8 images at the study's resolution plus labels, split once into train and
validation with a seeded permutation of the training data: the search never sees a test split.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from search.memory import available_bytes, gib
from space.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
KINDS = ("digits", "cifar10:PATH", "folder:PATH")


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor  # uint8, N x 3 x R x R
    train_y: torch.Tensor  # int64
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    mean: torch.Tensor = field(repr=False)
    std: torch.Tensor = field(repr=False)
    split: dict = field(default_factory=dict)

    def to(self, device: torch.device | str) -> Dataset:
        move = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "val_x", "val_y", "mean", "std")}
        return Dataset(name=self.name, num_classes=self.num_classes, split=self.split, **move)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() / 255.0 - self.mean) / self.std


def check_spec(spec: str) -> tuple[str, Path | None]:
    """Validate a dataset spec without loading it: (kind, path)."""
    if not isinstance(spec, str) or not spec:
        raise UserError(f"empty dataset spec; expected one of: {', '.join(KINDS)}")
    if spec == "digits":
        return "digits", None
    kind, sep, path = spec.partition(":")
    if kind not in ("cifar10", "folder") or not sep:
        raise UserError(f"unknown dataset {spec!r}; expected one of: {', '.join(KINDS)}")
    if not path:
        raise UserError(f"dataset {spec!r} needs a path after '{kind}:'")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"dataset path {str(root)!r} is not a directory")
    return kind, root


MAX_FILES = 2_000_000  # directory entries a folder dataset's scan visits before it gives up


def dataset_classes(spec: str) -> int:
    """The classes a dataset's classifier has, found without decoding an image."""
    kind, root = check_spec(spec)
    if kind in ("digits", "cifar10"):
        return 10
    files = image_files(root)
    if not files:
        raise UserError(f"folder dataset {str(root)!r} has no images")
    return max(index for _, index in files) + 1


def load_dataset(spec: str, *, resolution: int, seed: int = 0, val_fraction: float = 0.2) -> Dataset:
    kind, root = check_spec(spec)
    if kind == "digits":
        images, labels = _digits()
    elif kind == "cifar10":
        images, labels = _cifar10(root)
    else:
        images, labels = _folder(root, resolution)
    return _split(spec, _resize(images, resolution), labels, seed=seed, val_fraction=val_fraction)


def check_fits(count: int, resolution: int, *, where: str) -> None:
    """Refuse a dataset whose images at ``resolution`` would not fit in the host's free memory."""
    need = count * 3 * resolution * resolution
    free = available_bytes("cpu")
    if need > 0.8 * free:
        raise UserError(f"dataset {where!r}: {count:,} images at {resolution}x{resolution} need {gib(need)} in "
                        f"memory and {gib(free)} are free; lower --resolution")


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    gray = torch.from_numpy(bunch.images).float().mul(255.0 / 16.0).round().to(torch.uint8)
    return gray.unsqueeze(1).expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(bunch.target).long()


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's python batches are pickles: this unpickler rebuilds numpy arrays and plain containers
    and refuses everything else, so a crafted batch cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


def _cifar10(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    batches = sorted(p for p in root.glob("data_batch_*") if p.is_file())
    if not batches:
        raise UserError(f"no CIFAR-10 training batches (data_batch_*) in {str(root)!r}")
    images, labels = [], []
    for path in batches:
        try:
            with open(path, "rb") as handle:
                batch = _ArraysOnly(handle, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            images.append(torch.from_numpy(data.copy()))
            labels.append(torch.as_tensor(batch[b"labels"], dtype=torch.long))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError, IndexError) as exc:
            raise UserError(f"unreadable CIFAR-10 batch {str(path)!r}: {exc}") from None
    return torch.cat(images), torch.cat(labels)


def image_files(root: Path) -> list[tuple[Path, int]]:
    """(image, class index) of a folder dataset: one sub-folder per class, images anywhere below it.

    Links are not followed (a link to / would walk the whole disk) and only regular files are opened
    (a FIFO named x.png would block); the scan stops with an error past MAX_FILES entries.
    """
    try:
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)
                         and not e.name.startswith("."))
    except OSError as exc:
        raise UserError(f"folder dataset {str(root)!r} cannot be read: {exc.strerror or exc}") from None
    if not classes:
        raise UserError(f"folder dataset {str(root)!r} has no class sub-folders")
    found, visited = [], 0
    for index, name in enumerate(classes):
        for folder, dirs, files in os.walk(root / name, onerror=lambda exc: None):
            dirs.sort()
            visited += len(dirs) + len(files)
            if visited > MAX_FILES:
                raise UserError(f"folder dataset {str(root)!r} holds more than {MAX_FILES:,} entries; point it at a "
                                "folder of class sub-folders")
            for file in sorted(files):
                path = Path(folder) / file
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.is_symlink():
                    found.append((path, index))
    return found


def _folder(root: Path, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image, UnidentifiedImageError

    files = image_files(root)
    if not files:
        raise UserError(f"folder dataset {str(root)!r} has no images")
    if len({index for _, index in files}) < 2:
        raise UserError(f"folder dataset {str(root)!r} needs images in at least two classes")
    check_fits(len(files), resolution, where=str(root))
    images = torch.empty((len(files), 3, resolution, resolution), dtype=torch.uint8)
    for row, (path, _) in enumerate(files):
        try:
            with Image.open(path) as image:
                pixels = image.convert("RGB").resize((resolution, resolution), Image.BILINEAR)
        except Image.DecompressionBombError as exc:
            raise UserError(f"image {str(path)!r} is too large to decode safely: {exc}") from None
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise UserError(f"unreadable image {str(path)!r}: {exc}") from None
        images[row] = torch.from_numpy(np.asarray(pixels, dtype=np.uint8).copy()).permute(2, 0, 1)
    return images, torch.tensor([index for _, index in files], dtype=torch.long)


RESIZE_CHUNK = 256  # images resized at a time: the float copy of a chunk is all the resize adds to memory


def _resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    check_fits(len(images), resolution, where="resized images")
    out = torch.empty((len(images), images.shape[1], resolution, resolution), dtype=torch.uint8)
    for begin in range(0, len(images), RESIZE_CHUNK):
        chunk = images[begin:begin + RESIZE_CHUNK].float()
        resized = F.interpolate(chunk, size=(resolution, resolution), mode="bilinear", align_corners=False,
                                antialias=images.shape[-1] > resolution)
        out[begin:begin + RESIZE_CHUNK] = resized.round().clamp(0, 255).to(torch.uint8)
    return out


def _split(name: str, images: torch.Tensor, labels: torch.Tensor, *, seed: int, val_fraction: float) -> Dataset:
    count = len(labels)
    n_val = max(1, int(round(count * val_fraction)))
    if count - n_val < 1:
        raise UserError(f"dataset {name!r} has {count} images: too few to split into train and validation")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    train_x = images[train]
    pixels = train_x.float().div(255.0)
    mean = pixels.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
    std = pixels.std(dim=(0, 2, 3)).clamp_min(1e-3).view(1, 3, 1, 1)
    return Dataset(
        name=name, train_x=train_x, train_y=labels[train], val_x=images[val], val_y=labels[val],
        num_classes=int(labels.max()) + 1, mean=mean, std=std,
        split={"train": len(train), "validation": n_val, "val_fraction": val_fraction, "split_seed": seed},
    )
