"""A folder dataset decoded once: uint8 images at the study's resolution in a memory-mapped file on disk.

The first load of a large ``folder:PATH`` decodes its images on every core (a progress bar on stderr) into
``images.npy`` (N x 3 x R x R, uint8) beside ``labels.npy``; every later load -- a resumed study, the
other workers of this machine, each trial process -- maps that file instead of decoding again. An entry is
keyed by the file list (relative path, size, modification time and class of every image) and the resolution,
so a changed, added or removed image makes a new entry; entries are written to a temporary folder and renamed
into place, so a kill never leaves half an entry and two workers decoding at once both end with a whole one. An
entry is checked as it is opened (its arrays' shapes against the file list and resolution); one that fails the
check -- a truncated or deleted file, a disk error -- is moved aside and decoded again.

The cache lives in ``$EFFNAS_CACHE`` (default ``~/.cache/effnas``); folders of fewer than
``$EFFNAS_CACHE_MIN_IMAGES`` images (default 2,000) are decoded in memory as before, since decoding them is quick.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from effnas.search.utils.files import made_plainly
from effnas.search.utils.processes import pid_alive
from effnas.space.errors import UserError

FORMAT = 1  # bump when the entry's layout changes
CHUNK = 64  # images a decoding process returns at a time
OPEN_TRIES = 3  # an entry found broken this many times in a row (decoded again each time) is an error


def cache_root() -> Path:
    return Path(os.environ.get("EFFNAS_CACHE") or Path.home() / ".cache" / "effnas")


def min_images() -> int:
    """``$EFFNAS_CACHE_MIN_IMAGES``: the images a folder needs for the cache (0: every folder goes through it)."""
    text = os.environ.get("EFFNAS_CACHE_MIN_IMAGES", "2000")
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise UserError(f"EFFNAS_CACHE_MIN_IMAGES={text!r}: expected a whole number of images, 0 or more")
    return value


def entry_key(root: Path, files: Sequence[tuple[Path, int]], resolution: int) -> str:
    digest = hashlib.sha256(f"effnas-images v{FORMAT} {resolution}\n".encode())
    for path, index in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\0{index}\n".encode())
    return digest.hexdigest()[:32]


def decode_image(path: str | os.PathLike, resolution: int) -> np.ndarray:
    """One image file as uint8 3 x R x R (RGB, bilinear), as every folder dataset reads it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = image.convert("RGB").resize((resolution, resolution), Image.BILINEAR)
    except Image.DecompressionBombError as exc:
        raise UserError(f"image {str(path)!r} is too large to decode safely: {exc}") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UserError(f"unreadable image {str(path)!r}: {exc}") from None
    return np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8).transpose(2, 0, 1))


def decode(job: tuple[list[str], int]) -> np.ndarray:
    """Decode a chunk of images to uint8 k x 3 x R x R (runs in a pool process: PIL and numpy only)."""
    paths, resolution = job
    out = np.empty((len(paths), 3, resolution, resolution), dtype=np.uint8)
    for row, path in enumerate(paths):
        out[row] = decode_image(path, resolution)
    return out


def cached_images(root: Path, files: Sequence[tuple[Path, int]], resolution: int, *,
                  err=None) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of a folder dataset from its cache entry, decoding it first if there is none or the one
    there is broken. The images are a copy-on-write memory map, read from disk when the split copies them out."""
    labels = np.asarray([index for _, index in files], dtype=np.int64)
    paths = [str(path) for path, _ in files]
    return cached_arrays(entry_key(root, files, resolution), labels, resolution,
                         lambda images, report: _decode_files(images, paths, resolution, report), err=err)


Fill = Callable[[np.ndarray, Callable[[int, int], None]], None]  # (N x 3 x R x R map, report(done, processes))


def cached_arrays(key: str, labels: np.ndarray, resolution: int, fill: Fill, *,
                  err=None) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the cache entry ``key``, made first by ``fill`` (which writes every image into the
    entry's memory map and reports its progress) where there is none or the one there is broken. A folder's
    entry is decoded from its image files; an IDX set's from its arrays (:mod:`search.data.idx`)."""
    entry = cache_root() / key
    for _ in range(OPEN_TRIES):
        if entry.exists():
            opened = open_entry(entry, labels, resolution)
            if opened is not None:
                return opened
            discard_entry(entry)
        build_entry(entry, labels, resolution, fill, err=err if err is not None else sys.stderr)
    raise UserError(f"image cache entry {str(entry)!r} was broken again after decoding it {OPEN_TRIES} times; "
                    "check the disk of EFFNAS_CACHE, or set EFFNAS_CACHE to another folder")


def open_entry(entry: Path, expected: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The entry's (images, labels) if it is whole -- ``done`` written, images N x 3 x R x R uint8 as long as
    their header says, labels the ``expected`` ones -- else None. Nothing in it is unpickled."""
    try:
        if not (entry / "done").is_file():
            return None
        images = np.load(entry / "images.npy", mmap_mode="c", allow_pickle=False)
        labels = np.load(entry / "labels.npy", allow_pickle=False)
    except (FileNotFoundError, ValueError, EOFError):  # missing, truncated (shorter than its header says), not .npy
        return None
    except OSError as exc:  # out of memory or file handles, a disk error: the entry may be whole, so it stays
        raise UserError(f"image cache entry {str(entry)!r} cannot be opened ({exc.strerror or exc})") from None
    if images.shape != (len(expected), 3, resolution, resolution) or images.dtype != np.uint8:
        return None
    if labels.shape != expected.shape or labels.dtype != expected.dtype or not np.array_equal(labels, expected):
        return None
    return images, labels


def discard_entry(entry: Path) -> None:
    """Remove a broken entry so that it can be decoded again.

    It is not rebuilt in place: other processes (this machine's workers, trial processes, other hosts on a shared
    cache) may have its files mapped, and rewriting a mapped file changes what they read; nor can a finished
    entry be renamed over a folder that is still there. Instead the entry is first renamed to a scratch name of
    this process -- one atomic step, after which every reader sees either the old entry or none, and a process
    with the old files mapped keeps its mapping -- then deleted (by :func:`_remove_dead_scratch` if this process
    dies first). Two processes that find it broken at once: one renames it, the other finds it gone; both decode,
    and the first finished entry is kept, as for any entry decoded twice. At worst the slower one moves aside the
    entry the other has just decoded, which is then decoded once more: work lost, never a wrong image read."""
    try:
        aside = Path(tempfile.mkdtemp(prefix=f".{entry.name}.{socket.gethostname()}.{os.getpid()}.",
                                      dir=entry.parent))
        try:
            os.rename(entry, aside / "broken")
        except FileNotFoundError:  # another process moved it first
            pass
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    except OSError as exc:
        raise UserError(f"image cache entry {str(entry)!r} is broken and cannot be removed "
                        f"({exc.strerror or exc}); delete it, or set EFFNAS_CACHE to another folder") from None


def build_entry(entry: Path, labels: np.ndarray, resolution: int, fill: Fill, *, err) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_scratch(entry)
        need = len(labels) * 3 * resolution * resolution
        free = shutil.disk_usage(entry.parent).free
        if need > 0.9 * free:
            raise UserError(f"image cache {str(entry.parent)!r}: the decoded images need {need / 2**30:,.1f} GiB and "
                            f"{free / 2**30:,.1f} GiB are free; set EFFNAS_CACHE to a larger disk")
        scratch = made_plainly(Path(tempfile.mkdtemp(prefix=f".{entry.name}.{socket.gethostname()}.{os.getpid()}.",
                                                     dir=entry.parent)))
    except OSError as exc:
        raise UserError(f"image cache {str(entry.parent)!r} is not writable ({exc.strerror or exc}); set "
                        "EFFNAS_CACHE to a writable folder") from None
    done = 0
    try:
        images = np.lib.format.open_memmap(scratch / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=(len(labels), 3, resolution, resolution))
        start = shown = time.monotonic()

        def report(count: int, processes: int) -> None:
            nonlocal done, shown
            done = count
            if done == len(labels) or time.monotonic() - shown >= 0.5:
                _progress(err, done, len(labels), time.monotonic() - start, processes)
                shown = time.monotonic()

        fill(images, report)
        images.flush()
        del images
        np.save(scratch / "labels.npy", np.asarray(labels, dtype=np.int64))
        (scratch / "meta.json").write_text(json.dumps({"format": FORMAT, "images": len(labels),
                                                       "resolution": resolution}))
        (scratch / "done").touch()
        try:
            os.rename(scratch, entry)
        except OSError:  # another worker finished the same entry first: theirs is as good
            if not (entry / "done").exists():
                raise
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        if err is not None and hasattr(err, "write"):
            err.write("\n" if done else "")
    shutil.rmtree(scratch, ignore_errors=True)  # left only when another worker's entry won


def _decode_files(images: np.ndarray, paths: list[str], resolution: int, report) -> None:
    """Decode image files into ``images`` on every core, a chunk per pool task."""
    jobs = [(paths[i:i + CHUNK], resolution) for i in range(0, len(paths), CHUNK)]
    processes = max(1, min(os.cpu_count() or 1, len(jobs)))
    done = 0
    with multiprocessing.get_context("fork").Pool(processes, initializer=default_signals) as pool:
        for number, chunk in enumerate(pool.imap(decode, jobs)):
            images[number * CHUNK:number * CHUNK + len(chunk)] = chunk
            done += len(chunk)
            report(done, processes)


def default_signals() -> None:
    """A decoding process's signals (the pool's initializer). The fork copied effnas's handler, which would raise
    :class:`Terminated`, traceback and all, when the pool ends its processes with SIGTERM, as every shutdown does:
    SIGTERM gets its default action back and ends them quietly. SIGINT is ignored: a Ctrl-C reaches the whole
    process group, and the parent, interrupted, ends the pool itself."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _remove_dead_scratch(entry: Path) -> None:
    """Scratch folders of this entry whose process (on this host: a shared cache may serve several) died, a
    kill mid-decode, are removed before decoding again."""
    prefix = f".{entry.name}.{socket.gethostname()}."
    for scratch in entry.parent.glob(f"{prefix}*"):
        pid = scratch.name[len(prefix):].split(".")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(scratch, ignore_errors=True)


def _progress(err, done: int, total: int, seconds: float, processes: int) -> None:
    width = 24
    filled = width * done // max(1, total)
    err.write(f"\rdecoding images into the cache [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} "
              f"on {processes} processes, {seconds:.0f}s")
    err.flush()
