"""The one-sub-folder-per-class layout (Imagenette's) shared by ``folder:PATH`` and ``volumes:PATH``."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from effnas.space.errors import UserError

MAX_FILES = 2_000_000  # directory entries a dataset's scan visits before it gives up


def class_names(root: Path) -> tuple[str, ...]:
    """The class sub-folders' names, in the order their indices follow."""
    try:
        return tuple(sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)
                            and not e.name.startswith(".")))
    except OSError:
        return ()


def class_files(root: Path, *, accept: Callable[[Path], bool], kind: str) -> list[tuple[Path, int]]:
    """(file, class index) of every accepted file below each class sub-folder, classes in name order.

    Links are not followed (a link to / would walk the whole disk) and only regular files are kept
    (a FIFO named x.png would block); the scan stops with an error past MAX_FILES entries. ``kind`` names
    the dataset in messages (``folder``, ``volumes``).
    """
    try:
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)
                         and not e.name.startswith("."))
    except OSError as exc:
        raise UserError(f"{kind} dataset {str(root)!r} cannot be read: {exc.strerror or exc}") from None
    if not classes:
        raise UserError(f"{kind} dataset {str(root)!r} has no class sub-folders")
    found, visited = [], 0
    for index, name in enumerate(classes):
        for folder, dirs, files in os.walk(root / name, onerror=lambda exc: None):
            dirs.sort()
            visited += len(dirs) + len(files)
            if visited > MAX_FILES:
                raise UserError(f"{kind} dataset {str(root)!r} holds more than {MAX_FILES:,} entries; point it at a "
                                "folder of class sub-folders")
            for file in sorted(files):
                path = Path(folder) / file
                if accept(path) and path.is_file() and not path.is_symlink():
                    found.append((path, index))
    return found


def check_classes(files: list[tuple[Path, int]], *, root: Path, kind: str, noun: str) -> None:
    """A dataset needs samples, in at least two classes."""
    if not files:
        raise UserError(f"{kind} dataset {str(root)!r} has no {noun}")
    if len({index for _, index in files}) < 2:
        raise UserError(f"{kind} dataset {str(root)!r} needs {noun} in at least two classes")
