"""Files effnas reads and writes: bounded reads, atomic writes, and output paths checked before any work.

Every file effnas writes goes through :func:`write_atomic` (a temporary file beside it, then a rename),
so a kill at any moment leaves the old file or the new one, never half of one. Every output path is
checked with :func:`check_writable` before anything is written, so a bad path fails alone.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from effnas.space.errors import UserError

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def read_bounded(path: str | os.PathLike, *, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (not a device, a FIFO or a directory)."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UserError(f"{what} {str(path)!r} does not exist") from None
    except OSError as exc:
        raise UserError(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{what} {str(path)!r} is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{what} {str(path)!r} is not a regular file")
    if info.st_size > limit:
        raise UserError(f"{what} {str(path)!r} has {info.st_size:,} bytes; at most {limit:,} are read")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise UserError(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UserError(f"{what} {str(path)!r} has more than {limit:,} bytes")
    return data


def check_writable(path: str | os.PathLike, *, what: str, directory: bool = False) -> None:
    """Raise UserError unless ``path`` (a file, or a directory if ``directory``) can be written.

    The nearest existing ancestor must be a directory in which a file can really be made: a probe is
    created and removed there, since permissions alone do not tell (root, /proc, read-only mounts).
    """
    path = Path(path)
    if path.exists():
        if directory and not path.is_dir():
            raise UserError(f"{what} {str(path)!r} exists and is not a directory")
        if not directory and path.is_dir():
            raise UserError(f"{what} {str(path)!r} is a directory")
        if not directory and not os.access(path, os.W_OK):
            raise UserError(f"{what} {str(path)!r} is not writable")
    ancestor = path if directory and path.is_dir() else path.parent
    while not ancestor.exists():
        if ancestor.is_symlink():
            raise UserError(f"{what} {str(path)!r}: {str(ancestor)!r} is a dangling link")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{what} {str(path)!r}: {str(ancestor)!r} is not a directory")
    try:
        handle, probe = tempfile.mkstemp(dir=ancestor, prefix=".effnas-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{what} {str(path)!r}: cannot write in {str(ancestor)!r} "
                        f"({exc.strerror or exc})") from None


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Remove what a killed :func:`write_atomic` left behind in ``folder`` (SIGKILL leaves no chance to)."""
    for leftover in Path(folder).glob(".*.tmp"):
        if leftover.is_file() and leftover.name.count(".") >= 3:
            leftover.unlink(missing_ok=True)


def temporary_beside(path: Path, *, suffix: str = ".tmp") -> tuple[int, Path]:
    """(open handle, name) of a new temporary file in ``path``'s folder, to be renamed onto ``path``: readable as a
    plain ``open()`` would have made it (mkstemp's own mode, 0600, would follow the file through the rename)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.fchmod(handle, 0o666 & ~_UMASK)
    return handle, Path(temporary)


def made_plainly(folder: Path) -> Path:
    """``folder`` (a ``tempfile.mkdtemp`` folder, 0700, to be renamed into place) given the mode ``mkdir`` would
    have: others may read what it becomes, as the umask allows (a cache shared by a machine's users)."""
    os.chmod(folder, 0o777 & ~_UMASK)
    return folder


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    handle, temporary = temporary_beside(path)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def write_together(files: dict[Path, bytes]) -> None:
    """Write several files (of one folder) so that a failure (a full disk) leaves none of them changed: each goes
    to a temporary file first, and only when all are whole are they renamed into place."""
    written: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            handle, temporary = temporary_beside(Path(path))
            written.append((temporary, Path(path)))
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        for temporary, path in written:
            os.replace(temporary, path)
    finally:
        for temporary, _ in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
