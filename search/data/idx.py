"""``idx:PATH`` and ``fashion-mnist``: image sets in the MNIST IDX format (MNIST, Fashion-MNIST, KMNIST, EMNIST).

A folder holds ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (each raw or ``.gz``), and for the
held-out test split ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``. An IDX file is a 4-byte magic
number (two zero bytes, the element type -- 0x08, unsigned bytes --, the number of dimensions), one big-endian
uint32 per dimension, then the elements in C order. Every file is checked whole: its magic number, its
dimensions against the memory they would take (before a byte of data is read), its length against its header
(a truncated file, or one longer than it says, a gzip bomb among them: at most the header's size plus one byte is
ever decompressed), the two files of a split against each other, and every label against the classes.

The training split is what a study splits into training and validation; the test split is read only by
``effnas train --test``, never by anything that chooses. The grey images are given three equal channels (as the
digits are, and as ``effnas predict`` reads an image file); a set of at least ``$EFFNAS_CACHE_MIN_IMAGES``
images is resized once into the memory-mapped image cache (:mod:`search.data.imagecache`) and streamed from it.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from effnas.search.data import imagecache
from effnas.search.utils.memory import available_bytes, check_fits, gib
from effnas.space.errors import UserError

if TYPE_CHECKING:
    import torch

TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
UBYTE = 0x08
MAX_SIDE = 4096  # pixels: an IDX image side past this is a damaged header, not a dataset of this tool
MAX_IMAGES = 50_000_000
RESIZE_CHUNK = 1024  # images resized at a time

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")


def fashion_mnist_root() -> Path:
    """Where Fashion-MNIST is installed: ``$EFFNAS_FASHION_MNIST``, else Debian's package's folder."""
    return Path(os.environ.get("EFFNAS_FASHION_MNIST") or FASHION_MNIST_ROOT)


def fashion_mnist_missing(root: Path) -> str | None:
    """Why Fashion-MNIST cannot be read at ``root`` (not installed), or None."""
    if root.is_dir() and has_split(root, TRAIN):
        return None
    return (f"dataset 'fashion-mnist' is not installed: {str(root)!r} holds no Fashion-MNIST IDX files; install "
            "it with `apt-get install dataset-fashion-mnist` (or set EFFNAS_FASHION_MNIST to a folder holding "
            "them)")


def find(root: Path, stem: str) -> Path:
    """``root/stem`` or ``root/stem.gz`` (the raw file where both are)."""
    for name in (stem, stem + ".gz"):
        path = root / name
        if path.is_file():
            return path
    raise UserError(f"IDX dataset {str(root)!r} has no {stem} (or {stem}.gz)")


def has_split(root: Path, names: tuple[str, str]) -> bool:
    return all((root / n).is_file() or (root / (n + ".gz")).is_file() for n in names)


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _read_exactly(handle: BinaryIO, size: int, path: Path, what: str) -> np.ndarray:
    """``size`` bytes of ``handle`` as a writable uint8 array (read into it: no second copy)."""
    data = np.empty(size, dtype=np.uint8)
    view, filled = memoryview(data), 0
    while filled < size:
        got = handle.readinto(view[filled:])
        if not got:
            raise UserError(f"IDX file {str(path)!r} is truncated: its header promises {size:,} bytes of {what}, "
                            f"it holds {filled:,}")
        filled += got
    return data


def _header(handle: BinaryIO, path: Path, *, ndim: int, what: str) -> tuple[int, ...]:
    magic = _read_exactly(handle, 4, path, "header")
    if bytes(magic[:2]) != b"\0\0" or magic[2] != UBYTE or magic[3] != ndim:
        raise UserError(f"IDX file {str(path)!r} is not an IDX file of {what}: magic number "
                        f"0x{bytes(magic).hex()}, expected 0x0000{UBYTE:02x}{ndim:02x} (unsigned bytes, {ndim} "
                        f"dimension(s))")
    shape = tuple(int(d) for d in _read_exactly(handle, 4 * ndim, path, "header").view(">u4"))
    _check_shape(path, shape)
    size = int(np.prod(shape, dtype=np.int64))
    if size > 0.8 * available_bytes("cpu"):
        raise UserError(f"IDX file {str(path)!r}: its {' x '.join(map(str, shape))} {what} need {gib(size)} in "
                        f"memory and {gib(available_bytes('cpu'))} are free")
    return shape


def read_shape(path: Path, *, ndim: int, what: str) -> tuple[int, ...]:
    """The dimensions an IDX file's header gives, checked (magic number, bounds, memory) without reading its data."""
    try:
        with _open(path) as handle:
            return _header(handle, path, ndim=ndim, what=what)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"unreadable IDX file {str(path)!r}: {exc}") from None


def read_idx(path: Path, *, ndim: int, what: str) -> np.ndarray:
    """The uint8 array of an IDX file of ``ndim`` dimensions, checked (see the module's docstring)."""
    try:
        with _open(path) as handle:
            shape = _header(handle, path, ndim=ndim, what=what)
            size = int(np.prod(shape, dtype=np.int64))
            data = _read_exactly(handle, size, path, what)
            if handle.read(1):
                raise UserError(f"IDX file {str(path)!r} is longer than its header says ({size + 4 + 4 * ndim:,} "
                                "bytes): damaged, or not the file it is named")
    except (OSError, EOFError, zlib.error) as exc:  # gzip's CRC and length checks, a bad gzip stream, a disk error
        raise UserError(f"unreadable IDX file {str(path)!r}: {exc}") from None
    return data.reshape(shape)


def _check_shape(path: Path, shape: tuple[int, ...]) -> None:
    if not 1 <= shape[0] <= MAX_IMAGES:
        raise UserError(f"IDX file {str(path)!r} says it holds {shape[0]:,} items: expected 1 to {MAX_IMAGES:,}")
    if any(not 1 <= side <= MAX_SIDE for side in shape[1:]):
        raise UserError(f"IDX file {str(path)!r} says its images are {' x '.join(map(str, shape[1:]))}: each side "
                        f"must be 1 to {MAX_SIDE}")


def read_labels(root: Path, names: tuple[str, str], *, classes: int | None = None) -> np.ndarray:
    """A split's labels (int64), each checked to be one of ``classes`` (when known)."""
    path = find(root, names[1])
    labels = read_idx(path, ndim=1, what="labels").astype(np.int64)
    if classes is not None and labels.max() >= classes:
        wrong = int(labels[labels >= classes][0])
        raise UserError(f"IDX file {str(path)!r}: label {wrong} is out of range (the dataset's classes are 0 to "
                        f"{classes - 1})")
    return labels


def read_split(root: Path, names: tuple[str, str], *, classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N x H x W uint8 images, N labels) of a split, the two files checked against each other."""
    labels = read_labels(root, names, classes=classes)
    images = read_idx(find(root, names[0]), ndim=3, what="images")
    _check_counts(root, names, len(images), len(labels))
    return images, labels


def _check_counts(root: Path, names: tuple[str, str], images: int, labels: int) -> None:
    if images != labels:
        raise UserError(f"IDX dataset {str(root)!r}: {find(root, names[0]).name} holds {images:,} images and "
                        f"{find(root, names[1]).name} {labels:,} labels")


def class_count(root: Path) -> int:
    """The classes of a generic IDX set: 0 to the largest training label (read from the small labels file)."""
    return int(read_labels(root, TRAIN).max()) + 1


def resized(images: np.ndarray, resolution: int, out: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """Grey N x H x W images as uint8 N x 3 x R x R (bilinear, antialiased when shrinking), chunk by chunk, into
    ``out`` where given."""
    import torch
    import torch.nn.functional as F

    count = len(images)
    if out is None:
        check_fits(count, resolution, where="resized images")
        out = torch.empty((count, 3, resolution, resolution), dtype=torch.uint8)
    target = torch.from_numpy(out) if isinstance(out, np.ndarray) else out
    for begin in range(0, count, RESIZE_CHUNK):
        chunk = torch.from_numpy(np.ascontiguousarray(images[begin:begin + RESIZE_CHUNK])).unsqueeze(1)
        if chunk.shape[-2:] != (resolution, resolution):
            chunk = F.interpolate(chunk.float(), size=(resolution, resolution), mode="bilinear", align_corners=False,
                                  antialias=chunk.shape[-1] > resolution).round().clamp(0, 255).to(torch.uint8)
        target[begin:begin + len(chunk)] = chunk.expand(-1, 3, -1, -1)
    return target


def _entry_key(root: Path, names: tuple[str, str], resolution: int) -> str:
    digest = hashlib.sha256(f"effnas-idx v{imagecache.FORMAT} {resolution}\n".encode())
    for stem in names:
        path = find(root, stem).resolve()
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def load(root: Path, resolution: int, *, names: tuple[str, str] = TRAIN,
         classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(uint8 N x 3 x R x R images, labels, whether the images are the memory-mapped cache) of a split."""
    import torch

    labels = read_labels(root, names, classes=classes)
    path = find(root, names[0])
    _check_counts(root, names, read_shape(path, ndim=3, what="images")[0], len(labels))  # before a cache entry
    check_fits(len(labels), resolution, where=str(root))  # the resized three-channel images

    def images() -> np.ndarray:  # the labels are read and checked once, above
        pixels = read_idx(path, ndim=3, what="images")
        _check_counts(root, names, len(pixels), len(labels))  # the file may have changed since its header was read
        return pixels

    if len(labels) < imagecache.min_images():
        return resized(images(), resolution), torch.from_numpy(labels), False

    def fill(out: np.ndarray, report) -> None:
        pixels = images()
        for begin in range(0, len(pixels), RESIZE_CHUNK * 8):
            resized(pixels[begin:begin + RESIZE_CHUNK * 8], resolution, out[begin:begin + RESIZE_CHUNK * 8])
            report(min(len(pixels), begin + RESIZE_CHUNK * 8), 1)

    mapped, labels = imagecache.cached_arrays(_entry_key(root, names, resolution), labels, resolution, fill)
    return torch.from_numpy(mapped), torch.from_numpy(labels), True
