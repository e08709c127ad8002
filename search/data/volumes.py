"""Volumes for 3-D networks: ``volumes:PATH`` (one sub-folder per class of ``.npy`` and NIfTI files) and
the resize every 3-D dataset goes through.

A volume is D x H x W (one channel) or C x D x H x W; a NIfTI file is X x Y x Z or X x Y x Z x C (its
fourth axis is the channel, as in MONAI's loaders). Each volume is resized to a cube of the study's
resolution as it is read, so a folder of mixed sizes loads into one tensor, and memory is bounded by
the resized data. NIfTI needs nibabel (``pip install 'effnas[nifti]'``).
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from effnas.search.data.folders import check_classes, class_files
from effnas.search.utils.memory import available_bytes, check_fits, gib
from effnas.space.errors import UserError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
VOLUME_SUFFIXES = (".npy", *NIFTI_SUFFIXES)


def volume_files(root: Path) -> list[tuple[Path, int]]:
    """(volume, class index) of a volumes dataset: one sub-folder per class, volumes anywhere below it, in at
    least two classes."""
    files = class_files(root, accept=lambda path: path.name.lower().endswith(VOLUME_SUFFIXES), kind="volumes")
    check_classes(files, root=root, kind="volumes", noun="volumes (.npy, .nii, .nii.gz)")
    return files


def resize_volumes(volumes: torch.Tensor, *, size: int) -> torch.Tensor:
    """N x C x D x H x W float volumes to cubes of side ``size``.

    Axes that grow are interpolated trilinearly first; axes that shrink are then area-averaged, which
    is the 3-D counterpart of the anti-aliased downsampling the images get.
    """
    spatial = tuple(volumes.shape[2:])
    if spatial == (size,) * 3:
        return volumes
    grown = tuple(max(n, size) for n in spatial)
    if grown != spatial:
        volumes = F.interpolate(volumes, size=grown, mode="trilinear", align_corners=False)
    if grown != (size,) * 3:
        volumes = F.interpolate(volumes, size=(size,) * 3, mode="area")
    return volumes


def load_volumes(root: Path, *, resolution: int,
                 files: list[tuple[Path, int]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 N x C x R x R x R volumes and int64 labels from a class-per-sub-folder tree (``files``: its
    :func:`volume_files`, when the caller has them already)."""
    if files is None:
        files = volume_files(root)
    out = None
    for row, (path, _) in enumerate(files):
        volume = read_volume(path)
        if out is None:
            check_fits(len(files), resolution, where=str(root), channels=volume.shape[0], dims=3, itemsize=4)
            out = torch.empty((len(files), volume.shape[0]) + (resolution,) * 3, dtype=torch.float32)
        elif volume.shape[0] != out.shape[1]:
            raise UserError(f"volume {str(path)!r} has {volume.shape[0]} channel(s) but {str(files[0][0])!r} has "
                            f"{out.shape[1]}: volumes may differ in size (each is resized) but not in channels")
        out[row] = resize_volumes(torch.from_numpy(volume).unsqueeze(0), size=resolution)[0]
    return out, torch.tensor([label for _, label in files], dtype=torch.long)


def read_volume(path: Path) -> np.ndarray:
    """One file as a finite float32 C x D x H x W array; anything else is a UserError naming the file."""
    nifti = path.name.lower().endswith(NIFTI_SUFFIXES)
    array = _read_nifti(path) if nifti else _read_npy(path)
    if nifti:
        while array.ndim > 3 and array.shape[-1] == 1:
            array = array[..., 0]  # a single-volume 4-D file (X x Y x Z x 1)
        if array.ndim == 4:
            array = np.moveaxis(array, -1, 0)
    if array.ndim not in (3, 4):
        expected = "X x Y x Z or X x Y x Z x C" if nifti else "D x H x W or C x D x H x W"
        raise UserError(f"volume {str(path)!r} has shape {tuple(array.shape)} (rank {array.ndim}): "
                        f"expected {expected}")
    if array.ndim == 3:
        array = array[np.newaxis]
    if 0 in array.shape:
        raise UserError(f"volume {str(path)!r} has shape {tuple(array.shape)}: an empty axis cannot be resized")
    if not any(np.issubdtype(array.dtype, kind) for kind in (np.bool_, np.integer, np.floating)):
        raise UserError(f"volume {str(path)!r} holds {array.dtype} values; expected real numbers")
    return _finite_float32(array, path)


def _finite_float32(array: np.ndarray, path: Path) -> np.ndarray:
    """``array`` as contiguous float32, refused if a value is NaN, infinite or past float32's range. The cast
    of such a value is checked here, not warned about (numpy's overflow warning would be a second line on
    stderr)."""
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.ascontiguousarray(array, dtype=np.float32)
    if np.isfinite(converted).all():
        return converted
    if np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all():
        limit = float(np.finfo(np.float32).max)
        raise UserError(f"volume {str(path)!r} holds values beyond float32's range (±{limit:.3g})")
    raise UserError(f"volume {str(path)!r} holds NaN or infinite values")


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # the header first: the size is checked before reading
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"unreadable volume {str(path)!r}: {exc}") from None
    check_size(path, shape=array.shape)
    try:
        return np.array(array)
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable volume {str(path)!r}: {exc}") from None


def _read_nifti(path: Path) -> np.ndarray:
    try:
        import nibabel
        from nibabel.filebasedimages import ImageFileError
    except ImportError:
        raise UserError(f"reading NIfTI volumes ({str(path)!r}) needs nibabel: pip install 'effnas[nifti]'") from None
    try:
        image = nibabel.load(path)  # reads the header only
        check_size(path, shape=image.shape)
        with np.errstate(over="ignore", invalid="ignore"):  # a value past float32's range: refused once read
            return np.asarray(image.get_fdata(dtype=np.float32))
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise UserError(f"unreadable NIfTI volume {str(path)!r}: {exc}") from None


def check_size(path: Path, *, shape: tuple[int, ...]) -> None:
    """Refuse, before reading it, one volume whose float32 copy and resize would not fit in free memory."""
    need = 2 * 4 * int(np.prod(shape, dtype=np.float64))
    free = available_bytes("cpu")
    if need > 0.5 * free:
        raise UserError(f"volume {str(path)!r} has shape {tuple(shape)}: reading and resizing it needs {gib(need)} "
                        f"and {gib(free)} are free")
