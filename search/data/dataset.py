"""A dataset in memory (or memory-mapped): uint8 N x 3 x R x R images or float32 N x C x R x R x R volumes and
their labels, split once into train and validation by a seeded permutation of the training data (the search never
sees a test split). A folder large enough for the image cache is split as two lists of rows (:class:`Rows`) of the
memory-mapped cache file, and each batch reads its own rows, so a dataset larger than RAM streams from disk.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from effnas.search.utils.memory import available_bytes, check_fits
from effnas.space.errors import UserError

MIN_TRAIN = 2  # samples a training split needs: batch norm's statistics take two samples in a batch


class Rows:
    """The rows ``index`` of ``base`` (N x ...), not copied: ``rows[i]``, ``rows[a:b]`` and ``rows[indices]`` read
    only the rows asked for -- from a memory-mapped file, the page cache or the disk."""

    def __init__(self, base: torch.Tensor, index: torch.Tensor) -> None:
        self.base, self.index = base, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: int | slice | torch.Tensor) -> torch.Tensor:
        if isinstance(key, int):
            return self.base[int(self.index[key])]
        index = self.index[key.cpu() if isinstance(key, torch.Tensor) else key]
        return torch.index_select(self.base, 0, index)  # releases the GIL (a reader thread's gather), unlike []

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.index), *self.base.shape[1:]))

    @property
    def ndim(self) -> int:
        return self.base.ndim

    @property
    def dtype(self) -> torch.dtype:
        return self.base.dtype

    @property
    def device(self) -> torch.device:
        return self.base.device

    def numel(self) -> int:
        return math.prod(self.shape)

    def element_size(self) -> int:
        return self.base.element_size()

    def to(self, device: torch.device | str, *, chunk: int = 1024) -> torch.Tensor | Rows:
        """The rows as one tensor on ``device`` (a GPU the set fits on), copied ``chunk`` rows at a time, so the
        host never holds more than a chunk of them; on the base's own device, the rows themselves (as
        ``Tensor.to`` returns the tensor)."""
        if torch.device(device) == self.base.device:
            return self
        out = torch.empty(self.shape, dtype=self.dtype, device=device)
        for begin in range(0, len(self), chunk):
            out[begin:begin + chunk] = self[begin:begin + chunk].to(device)
        return out


def subset(x: torch.Tensor | Rows, key: slice) -> torch.Tensor | Rows:
    """The rows ``key`` of ``x``, not copied: a view of a tensor, fewer rows of :class:`Rows`."""
    return Rows(x.base, x.index[key]) if isinstance(x, Rows) else x[key]


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor | Rows  # uint8 N x 3 x R x R images, or float32 N x C x R x R x R volumes
    train_y: torch.Tensor  # int64
    val_x: torch.Tensor | Rows
    val_y: torch.Tensor
    num_classes: int
    mean: torch.Tensor = field(repr=False)
    std: torch.Tensor = field(repr=False)
    split: dict = field(default_factory=dict)
    scale: float = 255.0  # what the stored values are divided by before normalising (1 for float volumes)
    classes: tuple[str, ...] = ()  # the name of each label

    def to(self, device: torch.device | str) -> Dataset:
        move = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "val_x", "val_y", "mean", "std")}
        return Dataset(name=self.name, num_classes=self.num_classes, split=self.split, scale=self.scale,
                       classes=self.classes, **move)

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def dims(self) -> int:
        """Spatial dimensions: 2 for images, 3 for volumes."""
        return self.train_x.ndim - 2

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Float images, normalised where the statistics are: a batch of a host-kept set travels first, as stored."""
        return (images.float() / self.scale - self.mean) / self.std


RESIZE_CHUNK = 256  # images resized at a time: the float copy of a chunk is all the resize adds to memory


def resize_images(images: torch.Tensor, resolution: int) -> torch.Tensor:
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


def split(name: str, images: torch.Tensor, labels: torch.Tensor, *, seed: int, val_fraction: float,
           classes: tuple[str, ...], lazy: bool = False, owned: bool = False) -> Dataset:
    """Train and validation by a seeded permutation. ``lazy``: the two sides are rows of ``images`` (a memory
    map), not copies; ``owned`` (``images`` is the caller's to overwrite): its rows are put in the split's order in
    place and the two sides are views of it, so the split adds nothing to memory; else they are copies. Either
    way each side holds the same images in the same order."""
    count = len(labels)
    _, n_val = split_sizes(name, count, val_fraction)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    if lazy:
        train_x, val_x = Rows(images, train), Rows(images, val)
    elif owned:
        permute_rows(images, order)
        train_x, val_x = images[n_val:], images[:n_val]
    else:
        train_x, val_x = images[train], images[val]
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    mean, std = channel_stats(train_x, scale)
    return Dataset(
        name=name, train_x=train_x, train_y=labels[train], val_x=val_x, val_y=labels[val],
        num_classes=int(labels.max()) + 1, mean=mean, std=std, scale=scale, classes=classes,
        split={"train": len(train), "validation": n_val, "val_fraction": val_fraction, "split_seed": seed},
    )


def train_subset(data: Dataset, count: int | None, *, seed: int) -> Dataset:
    """``data`` with its training split cut to a stratified, seeded subset of ``count`` samples (``--train-samples``;
    None: the whole split). Each class keeps its share of the split (largest remainders make the total exact),
    its samples drawn by a seeded permutation, so every trial of a study, and the study resumed, trains on the same
    subset. The validation split and the normalisation statistics stay the whole split's: accuracies compare with a
    study trained on all of it. A streamed split stays streamed (fewer rows of the same file)."""
    if count is None:
        return data
    total = len(data.train_y)
    if count > total:
        raise UserError(f"--train-samples {count:,}: the training split of {data.name!r} holds {total:,} samples "
                        f"({data.split.get('validation', 0):,} more are its validation split)")
    labels = data.train_y.cpu()
    counts = torch.bincount(labels, minlength=data.num_classes)
    quota = counts.double() * count / total
    take = quota.floor().long()
    order = torch.argsort(take - quota, stable=True)  # the largest remainders first, ties to the lower class
    take[order[:count - int(take.sum())]] += 1
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label, wanted in enumerate(take.tolist()):
        members = (labels == label).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:wanted]])
    index = torch.cat(chosen).sort().values  # in the split's order
    train_x = Rows(data.train_x.base, data.train_x.index[index]) if isinstance(data.train_x, Rows) else \
        data.train_x[index.to(data.train_x.device)]
    return dataclasses.replace(data, train_x=train_x, train_y=data.train_y[index.to(data.train_y.device)],
                               split={**data.split, "train_samples": count})


def split_sizes(name: str, count: int, val_fraction: float) -> tuple[int, int]:
    """(training, validation) samples of a split of ``count`` samples, known from the count alone, so a dataset
    too small for its split fails before a sample is read: validation takes at least one, and training must keep
    at least MIN_TRAIN."""
    n_val = max(1, int(round(count * val_fraction)))
    if count - n_val < MIN_TRAIN:
        raise UserError(f"dataset {name!r} has {count:,} samples: a validation fraction of {val_fraction:g} "
                        f"holds out {n_val:,} and leaves {max(0, count - n_val):,} to train on; training needs at "
                        f"least {MIN_TRAIN} (add samples or lower --val-fraction)")
    return count - n_val, n_val


def permute_rows(x: torch.Tensor, order: torch.Tensor) -> None:
    """``x[:] = x[order]`` in place, holding one row aside instead of a second copy of ``x``: each cycle of the
    permutation moves its rows one step along (a Python step per row: ~15 ms for 5,000 images)."""
    rows, source = x.numpy(), order.numpy()
    placed = np.zeros(len(source), dtype=bool)
    for start in range(len(source)):
        if placed[start]:
            continue
        held, at = rows[start].copy(), start
        while True:  # row ``at`` takes row source[at], whose old value is still there (or held, for the start)
            placed[at] = True
            nxt = int(source[at])
            if nxt == start:
                rows[at] = held
                break
            rows[at] = rows[nxt]
            at = nxt


STATS_IN_ONE_PASS = 1 << 23  # elements: up to here a float copy of the training set is small (<= 32 MB)
STATS_CHUNK = 1 << 20  # elements summed at a time past it (an 8 MB float64 copy)


def channel_stats(x: torch.Tensor | Rows, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of ``x / scale`` (N x C x ...), shaped to broadcast over a batch. A large set
    is summed chunk by chunk in float64, so the statistics add one chunk's copy to memory, not the set's."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    axes = (0, *range(2, x.ndim))  # every axis but the channels
    if x.numel() <= STATS_IN_ONE_PASS:
        values = (x if isinstance(x, torch.Tensor) else x[0:len(x)]).float().div(scale)
        return values.mean(dim=axes).view(shape), values.std(dim=axes).clamp_min(1e-3).view(shape)
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros(x.shape[1], dtype=torch.float64)
    step = max(1, STATS_CHUNK // max(1, x[0].numel()))
    for begin in range(0, len(x), step):
        chunk = x[begin:begin + step].to(torch.float64).div_(scale)
        total += chunk.sum(dim=axes)
        squares += chunk.square_().sum(dim=axes)
    n = x.numel() // x.shape[1]
    mean = total / n
    std = ((squares - n * mean * mean) / max(1, n - 1)).clamp_min(0).sqrt()
    return mean.float().view(shape), std.float().clamp_min(1e-3).view(shape)


GPU_SHARE = 0.5  # of a GPU's free memory a dataset may take: the rest is the trials' (several may share it)


def fits_on(device: torch.device, data: Dataset) -> bool:
    """Whether the dataset goes whole onto ``device``; one that does not stays on the host and each batch
    travels (the training and evaluation loops read host-resident batches ahead). On the CPU it is already there;
    an accelerator other than CUDA (not a --device value today) whose free memory effnas cannot read keeps it on
    the host."""
    if device.type == "cpu":
        return True
    if device.type != "cuda":
        return False
    size = sum(t.numel() * t.element_size() for t in (data.train_x, data.val_x))
    return size <= GPU_SHARE * available_bytes(device)


def place(data: Dataset, device: torch.device) -> Dataset:
    """The dataset as training on ``device`` reads it: whole on the device where it fits; else its samples stay on
    the host (a streamed set stays streamed), each batch travels as stored and is normalised on the device, so
    only the normalisation statistics go there."""
    if fits_on(device, data):
        return data.to(device)
    return dataclasses.replace(data, mean=data.mean.to(device), std=data.std.to(device))
