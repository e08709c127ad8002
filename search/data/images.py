"""``folder:PATH``: one sub-folder of image files per class, decoded at the study's resolution (a large folder
once, into the memory-mapped image cache)."""
from __future__ import annotations

from pathlib import Path

import torch

from effnas.search.data import imagecache
from effnas.search.data.folders import check_classes, class_files
from effnas.search.utils.memory import check_fits

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


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


def read_folder(root: Path, resolution: int, *,
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
