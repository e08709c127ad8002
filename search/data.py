"""Datasets as resident tensors: ``digits`` (bundled), ``cifar10:PATH`` and ``folder:PATH``.

Every dataset becomes uint8 images at the study's resolution plus labels, split once into train and
validation with a seeded permutation of the training data: the search never sees a test split.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from space.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
KINDS = ("digits", "cifar10:PATH", "folder:PATH")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


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
    classes: tuple[str, ...] = ()  # the name of each label

    def to(self, device: torch.device | str) -> Dataset:
        move = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "val_x", "val_y", "mean", "std")}
        return Dataset(name=self.name, num_classes=self.num_classes, split=self.split, classes=self.classes, **move)

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


def load_dataset(spec: str, *, resolution: int, seed: int = 0, val_fraction: float = 0.2) -> Dataset:
    kind, root = check_spec(spec)
    if kind == "digits":
        images, labels = _digits()
        classes = tuple(str(d) for d in range(10))
    elif kind == "cifar10":
        images, labels = _cifar10(root, "data_batch_*")
        classes = CIFAR10_CLASSES
    else:
        images, labels, classes = _folder(root, resolution)
    images = _resize(images, resolution)
    return _split(spec, images, labels, seed=seed, val_fraction=val_fraction, classes=classes)


def load_test(spec: str, *, resolution: int, classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """A held-out set (uint8 images, labels in the training set's class numbering): a folder whose class
    sub-folders are named as the training classes, or CIFAR-10's ``test_batch``."""
    kind, root = check_spec(spec)
    if kind == "digits":
        raise UserError("digits has no held-out test set: all its images are in the training/validation split; "
                        "give --test folder:PATH or cifar10:PATH")
    if kind == "cifar10":
        if tuple(classes) != CIFAR10_CLASSES:
            raise UserError(f"--test {spec!r}: CIFAR-10's classes are not the training data's {list(classes)}")
        images, labels = _cifar10(root, "test_batch")
        return _resize(images, resolution), labels
    images, labels, names = _folder(root, resolution)
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise UserError(f"--test {spec!r}: class folder(s) {', '.join(map(repr, unknown))} are not classes of the "
                        f"training data ({', '.join(classes)})")
    renumber = torch.tensor([classes.index(n) for n in names], dtype=torch.long)
    return images, renumber[labels]


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    gray = torch.from_numpy(bunch.images).float().mul(255.0 / 16.0).round().to(torch.uint8)
    return gray.unsqueeze(1).expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(bunch.target).long()


def _cifar10(root: Path, pattern: str) -> tuple[torch.Tensor, torch.Tensor]:
    batches = sorted(root.glob(pattern))
    if not batches:
        raise UserError(f"no CIFAR-10 batches ({pattern}) in {str(root)!r}")
    images, labels = [], []
    for path in batches:
        try:
            with open(path, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            images.append(torch.from_numpy(data.copy()))
            labels.append(torch.as_tensor(batch[b"labels"], dtype=torch.long))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
            raise UserError(f"unreadable CIFAR-10 batch {str(path)!r}: {exc}") from None
    return torch.cat(images), torch.cat(labels)


def read_image(path: Path, resolution: int) -> torch.Tensor:
    """One image file as uint8 3 x R x R, as a folder dataset reads it (and ``effnas predict`` too)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = image.convert("RGB").resize((resolution, resolution), Image.BILINEAR)
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"unreadable image {str(path)!r}: {exc}") from None
    return torch.from_numpy(np.asarray(pixels, dtype=np.uint8).copy()).permute(2, 0, 1)


def _folder(root: Path, resolution: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"folder dataset {str(root)!r} has no class sub-folders")
    images, labels = [], []
    for index, class_dir in enumerate(classes):
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            images.append(read_image(path, resolution))
            labels.append(index)
    if not images:
        raise UserError(f"folder dataset {str(root)!r} has no images")
    if len(set(labels)) < 2:
        raise UserError(f"folder dataset {str(root)!r} needs images in at least two classes")
    return torch.stack(images), torch.tensor(labels, dtype=torch.long), tuple(p.name for p in classes)


def _resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    resized = F.interpolate(images.float(), size=(resolution, resolution), mode="bilinear", align_corners=False,
                            antialias=images.shape[-1] > resolution)
    return resized.round().clamp(0, 255).to(torch.uint8)


def _split(name: str, images: torch.Tensor, labels: torch.Tensor, *, seed: int, val_fraction: float,
           classes: tuple[str, ...]) -> Dataset:
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
        num_classes=int(labels.max()) + 1, mean=mean, std=std, classes=classes,
        split={"train": len(train), "validation": n_val, "val_fraction": val_fraction, "split_seed": seed},
    )
