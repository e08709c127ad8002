"""Datasets by kind: images (``digits``, bundled; ``fashion-mnist``, installed by Debian's dataset-fashion-mnist;
``cifar10:PATH``; ``folder:PATH``; ``idx:PATH``, the MNIST IDX format) and volumes (``shapes3d``, bundled;
``volumes:PATH``).

:data:`KINDS` is the registry, one entry per kind: its dimensionality, its classes and input channels (found
without decoding a sample), its loader and its held-out test set. Every function below reads a kind from it,
so a new kind is one entry. An entry's readers are imported when it is used: this module loads no torch, so
the command line reads the kinds' names (``--help``, validation) for free.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from effnas.space.errors import UserError

if TYPE_CHECKING:
    import torch

    from effnas.search.data.dataset import Dataset

Loader = Callable[[str, "Path | None", int, int, float], "Dataset"]  # (spec, root, resolution, seed, val_fraction)
TestLoader = Callable[[str, "Path | None", int, tuple], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass(frozen=True)
class DatasetKind:
    name: str
    dims: int  # spatial dimensions of a sample: 2 (images) or 3 (volumes)
    bundled: bool  # comes with effnas (no PATH)
    classes: Callable[[Path | None], tuple[str, ...]]  # the name of each label
    class_count: Callable[[Path | None], int]  # the classes, found without decoding a sample
    channels: Callable[[Path | None], int]
    load: Loader
    load_test: TestLoader | None  # None: no held-out set (refused with ``no_test``)
    no_test: str = ""
    installed: Callable[[], Path] | None = None  # a set at a fixed place (no PATH): where it is
    missing: Callable[[Path], str | None] | None = None  # why it cannot be read where it is installed, or None

    @property
    def usage(self) -> str:
        return self.name if self.bundled or self.installed else f"{self.name}:PATH"


def _digits_classes(root: Path | None) -> tuple[str, ...]:
    from effnas.search.data import digits

    return digits.CLASSES


def _load_digits(spec: str, root: Path | None, resolution: int, seed: int, val_fraction: float) -> Dataset:
    from effnas.search.data.dataset import resize_images, split
    from effnas.search.data.digits import CLASSES, read_digits

    images, labels = read_digits()
    return split(spec, resize_images(images, resolution), labels, seed=seed, val_fraction=val_fraction,
                 classes=CLASSES, owned=True)


def _cifar10_classes(root: Path | None) -> tuple[str, ...]:
    from effnas.search.data import cifar10

    return cifar10.CLASSES


def _load_cifar10(spec: str, root: Path | None, resolution: int, seed: int, val_fraction: float) -> Dataset:
    from effnas.search.data.cifar10 import CLASSES, read_batches
    from effnas.search.data.dataset import resize_images, split

    images, labels = read_batches(root, "data_batch_*")
    return split(spec, resize_images(images, resolution), labels, seed=seed, val_fraction=val_fraction,
                 classes=CLASSES, owned=True)


def _test_cifar10(spec: str, root: Path | None, resolution: int,
                  classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    from effnas.search.data.cifar10 import CLASSES, read_batches
    from effnas.search.data.dataset import resize_images

    if tuple(classes) != CLASSES:
        raise UserError(f"--test {spec!r}: CIFAR-10's classes are not the training data's {list(classes)}")
    images, labels = read_batches(root, "test_batch")
    return resize_images(images, resolution), labels


def _folder_names(root: Path | None) -> tuple[str, ...]:
    from effnas.search.data.folders import class_names

    return class_names(root)


def _folder_count(root: Path | None) -> int:
    from effnas.search.data.images import image_files

    files = image_files(root)
    if not files:
        raise UserError(f"folder dataset {str(root)!r} has no images")
    return max(index for _, index in files) + 1


def _load_folder(spec: str, root: Path | None, resolution: int, seed: int, val_fraction: float) -> Dataset:
    from effnas.search.data.dataset import resize_images, split, split_sizes
    from effnas.search.data.folders import class_names
    from effnas.search.data.images import folder_images, read_folder

    files = folder_images(root)
    split_sizes(spec, len(files), val_fraction)  # before an image is decoded or written to the cache
    images, labels, mapped = read_folder(root, resolution, files=files)
    return split(spec, resize_images(images, resolution), labels, seed=seed, val_fraction=val_fraction,
                 classes=class_names(root), lazy=mapped, owned=not mapped)


def _test_folder(spec: str, root: Path | None, resolution: int,
                 classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """A folder whose class sub-folders are named as (some of) the training classes, renumbered to theirs."""
    import torch

    from effnas.search.data.folders import class_names
    from effnas.search.data.images import read_folder

    images, labels, _ = read_folder(root, resolution)  # a held-out set: evaluated batch by batch, mapped or not
    names = class_names(root)
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise UserError(f"--test {spec!r}: class folder(s) {', '.join(map(repr, unknown))} are not classes of the "
                        f"training data ({', '.join(classes)})")
    renumber = torch.tensor([classes.index(n) for n in names], dtype=torch.long)
    return images, renumber[labels]


def _shapes3d_classes(root: Path | None) -> tuple[str, ...]:
    from effnas.search.data import shapes3d

    return tuple(shapes3d.CLASSES)


def _load_shapes3d(spec: str, root: Path | None, resolution: int, seed: int, val_fraction: float) -> Dataset:
    from effnas.search.data import shapes3d
    from effnas.search.data.dataset import split
    from effnas.search.data.volumes import resize_volumes
    from effnas.search.utils.memory import check_fits

    volumes, labels = shapes3d.generate()
    check_fits(len(labels), resolution, where=spec, channels=1, dims=3, itemsize=4)
    return split(spec, resize_volumes(volumes, size=resolution), labels, seed=seed, val_fraction=val_fraction,
                 classes=tuple(shapes3d.CLASSES))


def _volumes_count(root: Path | None) -> int:
    from effnas.search.data.volumes import volume_files

    return max(index for _, index in volume_files(root)) + 1


def _volumes_channels(root: Path | None) -> int:
    from effnas.search.data.volumes import read_volume, volume_files

    return read_volume(volume_files(root)[0][0]).shape[0]


def _load_volumes(spec: str, root: Path | None, resolution: int, seed: int, val_fraction: float) -> Dataset:
    from effnas.search.data.dataset import split, split_sizes
    from effnas.search.data.folders import class_names
    from effnas.search.data.volumes import load_volumes, volume_files

    files = volume_files(root)
    split_sizes(spec, len(files), val_fraction)  # before a volume is read
    volumes, labels = load_volumes(root, resolution=resolution, files=files)
    return split(spec, volumes, labels, seed=seed, val_fraction=val_fraction, classes=class_names(root), owned=True)


def _idx_classes(root: Path | None) -> tuple[str, ...]:
    return tuple(str(label) for label in range(_idx_count(root)))


def _idx_count(root: Path | None) -> int:
    from effnas.search.data import idx

    return idx.class_count(root)


def _idx_loader(class_names: Callable[[Path | None], tuple[str, ...]], *, fixed: bool) -> Loader:
    def load(spec: str, root: Path | None, resolution: int, seed: int, val_fraction: float) -> Dataset:
        from effnas.search.data import idx
        from effnas.search.data.dataset import split, split_sizes

        names = class_names(root)
        split_sizes(spec, len(idx.read_labels(root, idx.TRAIN, classes=len(names) if fixed else None)),
                    val_fraction)  # before an image is read or written to the cache
        images, labels, mapped = idx.load(root, resolution, classes=len(names) if fixed else None)
        return split(spec, images, labels, seed=seed, val_fraction=val_fraction, classes=names, lazy=mapped,
                     owned=not mapped)
    return load


def _test_idx(spec: str, root: Path | None, resolution: int,
              classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The folder's t10k split; its labels must be classes of the training data (the same numbering)."""
    from effnas.search.data import idx

    if not idx.has_split(root, idx.TEST):
        raise UserError(f"--test {spec!r}: {str(root)!r} has no test split ({idx.TEST[0]}[.gz] and "
                        f"{idx.TEST[1]}[.gz])")
    if spec == "fashion-mnist" and tuple(classes) != idx.FASHION_MNIST_CLASSES:
        raise UserError(f"--test {spec!r}: Fashion-MNIST's classes are not the training data's {list(classes)}")
    if spec != "fashion-mnist" and tuple(classes) != tuple(str(n) for n in range(len(classes))):
        raise UserError(f"--test {spec!r}: an IDX set's labels are numbers, and the training data's classes are "
                        f"named {list(classes)[:4]}…; test an IDX set against a model trained on one")
    images, labels, _ = idx.load(root, resolution, names=idx.TEST, classes=len(classes))
    return images, labels


def _fashion_classes(root: Path | None) -> tuple[str, ...]:
    from effnas.search.data import idx

    return idx.FASHION_MNIST_CLASSES


def _fashion_root() -> Path:
    from effnas.search.data import idx

    return idx.fashion_mnist_root()


def _fashion_missing(root: Path) -> str:
    from effnas.search.data import idx

    return idx.fashion_mnist_missing(root)


_BUNDLED_TEST = ("{kind} has no held-out test set: all its samples are in the training/validation split; give "
                 "--test folder:PATH, cifar10:PATH, idx:PATH or fashion-mnist")
KINDS: dict[str, DatasetKind] = {kind.name: kind for kind in (
    DatasetKind("digits", 2, True, _digits_classes, lambda root: 10, lambda root: 3, _load_digits, None,
                _BUNDLED_TEST),
    DatasetKind("cifar10", 2, False, _cifar10_classes, lambda root: 10, lambda root: 3, _load_cifar10,
                _test_cifar10),
    DatasetKind("folder", 2, False, _folder_names, _folder_count, lambda root: 3, _load_folder, _test_folder),
    DatasetKind("shapes3d", 3, True, _shapes3d_classes, lambda root: len(_shapes3d_classes(root)), lambda root: 1,
                _load_shapes3d, None, _BUNDLED_TEST),
    DatasetKind("volumes", 3, False, _folder_names, _volumes_count, _volumes_channels, _load_volumes, None,
                "--test {spec!r}: a held-out set of volumes is not supported; give folder:PATH"),
    DatasetKind("fashion-mnist", 2, False, _fashion_classes, lambda root: 10, lambda root: 3,
                _idx_loader(_fashion_classes, fixed=True), _test_idx, installed=_fashion_root,
                missing=_fashion_missing),
    DatasetKind("idx", 2, False, _idx_classes, _idx_count, lambda root: 3, _idx_loader(_idx_classes, fixed=False),
                _test_idx),
)}


def usage(dims: int | None = None) -> str:
    """The kinds as a user writes them (``digits, cifar10:PATH, …``), of ``dims`` dimensions or all."""
    return ", ".join(kind.usage for kind in KINDS.values() if dims in (None, kind.dims))


def get(spec: str) -> tuple[DatasetKind, str]:
    """A spec's kind and path text, checked for form only."""
    if not isinstance(spec, str) or not spec:
        raise UserError(f"empty dataset spec; expected one of: {usage()}")
    if spec in KINDS and (KINDS[spec].bundled or KINDS[spec].installed):
        return KINDS[spec], ""
    name, sep, path = spec.partition(":")
    kind = KINDS.get(name)
    if kind is None or kind.bundled or kind.installed or not sep:
        raise UserError(f"unknown dataset {spec!r}; expected one of: {usage()}")
    return kind, path


def check_kind(spec: str) -> tuple[str, str]:
    """A spec's (kind name, path text), checked for form only."""
    kind, path = get(spec)
    return kind.name, path


def dims_of(spec: str) -> int:
    """The spatial dimensions of a dataset spec's samples (2: images, 3: volumes), from its kind alone."""
    return get(spec)[0].dims


def _resolved(spec: str) -> tuple[DatasetKind, Path | None]:
    kind, path = get(spec)
    if kind.bundled:
        return kind, None
    if kind.installed is not None:
        root = kind.installed()
        problem = kind.missing(root)
        if problem:
            raise UserError(problem)
        return kind, root
    if not path:
        raise UserError(f"dataset {spec!r} needs a path after '{kind.name}:'")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"dataset path {str(root)!r} is not a directory")
    return kind, root


def check_spec(spec: str) -> tuple[str, Path | None]:
    """Validate a dataset spec without loading it: (kind name, path)."""
    kind, root = _resolved(spec)
    return kind.name, root


def dataset_classes(spec: str) -> int:
    """The classes a dataset's classifier has, found without decoding an image or reading a volume."""
    kind, root = _resolved(spec)
    return kind.class_count(root)


def dataset_channels(spec: str) -> int:
    """The input channels a dataset's networks take: 3 for images, 1 for shapes3d, a volume file's otherwise."""
    kind, root = _resolved(spec)
    return kind.channels(root)


def class_names_of(spec: str) -> tuple[str, ...]:
    """The name of each label: the class sub-folders' names, CIFAR-10's, or the digits themselves."""
    kind, root = _resolved(spec)
    return kind.classes(root)


def load_dataset(spec: str, *, resolution: int, seed: int = 0, val_fraction: float = 0.2) -> Dataset:
    kind, root = _resolved(spec)
    return kind.load(spec, root, resolution, seed, val_fraction)


def load_test(spec: str, *, resolution: int, classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """A held-out set (uint8 images, labels in the training set's class numbering): a folder whose class
    sub-folders are named as the training classes, or CIFAR-10's ``test_batch``."""
    kind, root = _resolved(spec)
    if kind.load_test is None:
        raise UserError(kind.no_test.format(kind=kind.name, spec=spec))
    return kind.load_test(spec, root, resolution, tuple(classes))
