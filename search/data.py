"""Datasets: images (``digits``, bundled; ``cifar10:PATH``; ``folder:PATH``) and volumes (``shapes3d``, bundled;
``volumes:PATH``).

Every image dataset becomes uint8 N x 3 x R x R images at the study's resolution, every volume dataset
float32 N x C x R x R x R volumes, plus labels; either is split once into train and validation with a
seeded permutation of the training data: the search never sees a test split. The split is held in memory,
except for a folder large enough for the image cache: its split is the memory-mapped cache file and two lists
of rows (:class:`Rows`), and each batch reads its own rows, so a dataset larger than RAM streams from disk.
"""
from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from search import imagecache, shapes3d
from search.folders import check_classes, class_files, class_names
from search.memory import check_fits
from search.volumes import load_volumes, read_volume, resize_volumes, volume_files
from space.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
KINDS = ("digits", "cifar10:PATH", "folder:PATH", "shapes3d", "volumes:PATH")
BUNDLED = ("digits", "shapes3d")
SPATIAL_DIMS = {"digits": 2, "cifar10": 2, "folder": 2, "shapes3d": 3, "volumes": 3}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
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


def dims_of(spec: str) -> int:
    """The spatial dimensions of a dataset spec's samples (2: images, 3: volumes), from its kind alone."""
    return SPATIAL_DIMS[check_kind(spec)[0]]


def check_kind(spec: str) -> tuple[str, str]:
    """A spec's (kind, path text), checked for form only."""
    if not isinstance(spec, str) or not spec:
        raise UserError(f"empty dataset spec; expected one of: {', '.join(KINDS)}")
    if spec in BUNDLED:
        return spec, ""
    kind, sep, path = spec.partition(":")
    if kind not in SPATIAL_DIMS or kind in BUNDLED or not sep:
        raise UserError(f"unknown dataset {spec!r}; expected one of: {', '.join(KINDS)}")
    return kind, path


def check_spec(spec: str) -> tuple[str, Path | None]:
    """Validate a dataset spec without loading it: (kind, path)."""
    kind, path = check_kind(spec)
    if kind in BUNDLED:
        return kind, None
    if not path:
        raise UserError(f"dataset {spec!r} needs a path after '{kind}:'")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"dataset path {str(root)!r} is not a directory")
    return kind, root


def dataset_classes(spec: str) -> int:
    """The classes a dataset's classifier has, found without decoding an image or reading a volume."""
    kind, root = check_spec(spec)
    if kind in ("digits", "cifar10"):
        return 10
    if kind == "shapes3d":
        return len(shapes3d.CLASSES)
    if kind == "volumes":
        return max(index for _, index in volume_files(root)) + 1
    files = image_files(root)
    if not files:
        raise UserError(f"folder dataset {str(root)!r} has no images")
    return max(index for _, index in files) + 1


def dataset_channels(spec: str) -> int:
    """The input channels a dataset's networks take: 3 for images, 1 for shapes3d, a volume file's otherwise."""
    kind, root = check_spec(spec)
    if kind == "shapes3d":
        return 1
    if kind != "volumes":
        return 3
    return read_volume(volume_files(root)[0][0]).shape[0]


def load_dataset(spec: str, *, resolution: int, seed: int = 0, val_fraction: float = 0.2) -> Dataset:
    kind, root = check_spec(spec)
    if kind == "shapes3d":
        volumes, labels = shapes3d.generate()
        check_fits(len(labels), resolution, where=spec, channels=1, dims=3, itemsize=4)
        return _split(spec, resize_volumes(volumes, size=resolution), labels, seed=seed, val_fraction=val_fraction,
                      classes=class_names_of(kind, root))
    if kind == "volumes":
        files = volume_files(root)
        split_sizes(spec, len(files), val_fraction)  # before a volume is read
        volumes, labels = load_volumes(root, resolution=resolution, files=files)
        return _split(spec, volumes, labels, seed=seed, val_fraction=val_fraction, classes=class_names_of(kind, root),
                      owned=True)
    mapped = False
    if kind == "digits":
        images, labels = _digits()
    elif kind == "cifar10":
        images, labels = _cifar10(root, "data_batch_*")
    else:
        files = folder_images(root)
        split_sizes(spec, len(files), val_fraction)  # before an image is decoded or written to the cache
        images, labels, mapped = _folder(root, resolution, files=files)
    return _split(spec, _resize(images, resolution), labels, seed=seed, val_fraction=val_fraction,
                  classes=class_names_of(kind, root), lazy=mapped, owned=not mapped)


def class_names_of(kind: str, root: Path | None) -> tuple[str, ...]:
    """The name of each label: the class sub-folders' names, CIFAR-10's, or the digits themselves."""
    if kind == "digits":
        return tuple(str(d) for d in range(10))
    if kind == "cifar10":
        return CIFAR10_CLASSES
    if kind == "shapes3d":
        return tuple(shapes3d.CLASSES)
    return class_names(root)


def load_test(spec: str, *, resolution: int, classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """A held-out set (uint8 images, labels in the training set's class numbering): a folder whose class
    sub-folders are named as the training classes, or CIFAR-10's ``test_batch``."""
    kind, root = check_spec(spec)
    if kind in BUNDLED:
        raise UserError(f"{kind} has no held-out test set: all its samples are in the training/validation split; "
                        "give --test folder:PATH or cifar10:PATH")
    if kind == "cifar10":
        if tuple(classes) != CIFAR10_CLASSES:
            raise UserError(f"--test {spec!r}: CIFAR-10's classes are not the training data's {list(classes)}")
        images, labels = _cifar10(root, "test_batch")
        return _resize(images, resolution), labels
    if kind == "volumes":
        raise UserError(f"--test {spec!r}: a held-out set of volumes is not supported; give folder:PATH")
    images, labels, _ = _folder(root, resolution)  # a held-out set: evaluated batch by batch, mapped or not
    names = class_names(root)
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise UserError(f"--test {spec!r}: class folder(s) {', '.join(map(repr, unknown))} are not classes of the "
                        f"training data ({', '.join(classes)})")
    renumber = torch.tensor([classes.index(n) for n in names], dtype=torch.long)
    return images, renumber[labels]


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 handwritten digits (8 x 8, values 0..16) as uint8 RGB images, read from the file
    scikit-learn ships (what its ``load_digits`` reads) without importing scikit-learn: that import alone
    (scipy with it) takes about 1.5 s, longer than a default trial's data loading."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the bundled digits dataset comes with scikit-learn, which is not installed: "
                        "pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    images = torch.from_numpy(table[:, :-1].reshape(-1, 8, 8))
    gray = images.float().mul(255.0 / 16.0).round().to(torch.uint8)
    return gray.unsqueeze(1).expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(table[:, -1].astype(np.int64))


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's python batches are pickles: this unpickler rebuilds numpy arrays and plain containers
    and refuses everything else, so a crafted batch cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


def _cifar10(root: Path, pattern: str = "data_batch_*") -> tuple[torch.Tensor, torch.Tensor]:
    batches = sorted(p for p in root.glob(pattern) if p.is_file())
    if not batches:
        raise UserError(f"no CIFAR-10 batches ({pattern}) in {str(root)!r}")
    images, labels = [], []
    for path in batches:
        try:
            with open(path, "rb") as handle:
                batch = _ArraysOnly(handle, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            images.append(torch.from_numpy(data.copy()))
            labels.append(torch.tensor(_cifar10_labels(batch[b"labels"], len(data)), dtype=torch.long))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError, IndexError) as exc:
            raise UserError(f"unreadable CIFAR-10 batch {str(path)!r}: {exc}") from None
    return torch.cat(images), torch.cat(labels)


def _cifar10_labels(raw: Any, count: int) -> list[int]:
    """A batch's labels, checked: a flat list of ints in range(10), one per image; else a ValueError saying
    what is wrong."""
    values = raw.tolist() if isinstance(raw, np.ndarray) else raw
    if not isinstance(values, (list, tuple)) or not all(type(value) is int for value in values):
        raise ValueError(f"its labels are not a flat list of ints ({type(raw).__name__})")
    if len(values) != count:
        raise ValueError(f"it holds {len(values):,} labels for {count:,} images")
    wrong = next((value for value in values if not 0 <= value < len(CIFAR10_CLASSES)), None)
    if wrong is not None:
        raise ValueError(f"label {wrong} is not a class (0 to {len(CIFAR10_CLASSES) - 1})")
    return list(values)


def image_files(root: Path) -> list[tuple[Path, int]]:
    """(image, class index) of a folder dataset: one sub-folder per class, images anywhere below it."""
    return class_files(root, accept=lambda path: path.suffix.lower() in IMAGE_SUFFIXES, kind="folder")


def folder_images(root: Path) -> list[tuple[Path, int]]:
    """A folder dataset's :func:`image_files`, checked: some images, in at least two classes."""
    files = image_files(root)
    check_classes(files, root=root, kind="folder", noun="images")
    return files


def read_image(path: Path, resolution: int) -> torch.Tensor:
    """One image file as uint8 3 x R x R, as a folder dataset reads it (and ``effnas predict`` too)."""
    return torch.from_numpy(imagecache.decode_image(path, resolution))


def _folder(root: Path, resolution: int, *,
            files: list[tuple[Path, int]] | None = None) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(images, labels, whether the images are the memory-mapped cache): a large folder is decoded once on every
    core and then mapped (its size is checked against the cache's disk), a small one decoded into memory.
    ``files``: the folder's :func:`folder_images`, when the caller has them already."""
    if files is None:
        files = folder_images(root)
    if len(files) >= imagecache.min_images():
        images, labels = imagecache.cached_images(root, files, resolution)
        return torch.from_numpy(images), torch.from_numpy(labels), True
    check_fits(len(files), resolution, where=str(root))
    images = torch.empty((len(files), 3, resolution, resolution), dtype=torch.uint8)
    for row, (path, _) in enumerate(files):
        images[row] = read_image(path, resolution)
    return images, torch.tensor([index for _, index in files], dtype=torch.long), False


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


def _split(name: str, images: torch.Tensor, labels: torch.Tensor, *, seed: int, val_fraction: float,
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
    mean, std = _channel_stats(train_x, scale)
    return Dataset(
        name=name, train_x=train_x, train_y=labels[train], val_x=val_x, val_y=labels[val],
        num_classes=int(labels.max()) + 1, mean=mean, std=std, scale=scale, classes=classes,
        split={"train": len(train), "validation": n_val, "val_fraction": val_fraction, "split_seed": seed},
    )


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


def _channel_stats(x: torch.Tensor | Rows, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
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
