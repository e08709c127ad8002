"""Batches read ahead: while one batch trains, reader threads gather the rows of the next few.

A dataset on the training device needs none of this: a batch is an index into a tensor already there. A
host-kept one does -- a streamed folder (its rows come from a memory-mapped file: the page cache, or the disk
on a cold read) or a set too large for the GPU (each batch travels). Its batches are read here, in the order
the loop will ask for them, up to ``depth`` ahead on ``readers`` threads; a reader gathers with
``torch.index_select``, which releases the GIL, so the gathering and a cold read overlap the step in the
training thread. For a GPU, a reader also pins the batch, so its copy to the device runs asynchronously.

Threads rather than DataLoader processes: the rows are decoded already (uint8 in the cache), so a read is a
gather, not Python work, and a thread shares the process's memory map with no start-up and no pickling. The
batches come out in order and their contents do not depend on timing: a trial gives the same result read
ahead or not.
"""
from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

from effnas.search.data.dataset import Rows

DEPTH = 4  # batches gathered ahead of the one in use
READERS = 2  # threads gathering them

Key = TypeVar("Key")
Value = TypeVar("Value")


def read_ahead(read: Callable[[Key], Value], keys: Iterable[Key], *, depth: int = DEPTH,
               readers: int = READERS) -> Iterator[Value]:
    """``read(key)`` for every key, in the keys' order, each started up to ``depth`` keys before it is asked for.
    An error in a read is raised where its value would have been; closing the iterator early (a ``break``, an
    exception in the loop) drops the reads not yet started and waits for the running ones."""
    keys = iter(keys)
    pending: collections.deque[Future] = collections.deque()
    with ThreadPoolExecutor(max_workers=readers, thread_name_prefix="effnas-read") as pool:
        try:
            pending.extend(pool.submit(read, key) for key in itertools.islice(keys, max(1, depth)))
            while pending:
                value = pending.popleft().result()
                pending.extend(pool.submit(read, key) for key in itertools.islice(keys, 1))
                yield value
        finally:
            for future in pending:
                future.cancel()


def needs_reading(x: torch.Tensor | Rows, device: torch.device) -> bool:
    """Whether batches of ``x`` must be read for training on ``device``: streamed rows, or a host-kept set. A set
    on ``cuda:0`` is on ``cuda`` (the current device, as ``--device auto`` and ``cuda`` name it)."""
    return isinstance(x, Rows) or not same_device(x.device, device)


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether ``a`` and ``b`` are one device, where a device without an index is any of its kind's (the current)."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def gather(x: torch.Tensor | Rows, index: torch.Tensor | slice, *, pin: bool = False) -> torch.Tensor:
    """The rows ``index`` of ``x`` as one tensor (a reader's work; pinned for an asynchronous copy to a GPU)."""
    if isinstance(x, Rows) or isinstance(index, slice):
        rows = x[index]
    else:
        rows = torch.index_select(x, 0, index.to(x.device))
    return rows.pin_memory() if pin and rows.device.type == "cpu" else rows


def batches(x: torch.Tensor | Rows, indices: Iterable[torch.Tensor | slice], device: torch.device,
            ) -> Iterator[torch.Tensor]:
    """The rows of ``x`` for each index in turn, on ``device`` (as stored, not normalised): indexed directly where
    ``x`` is there already, else read ahead and copied over batch by batch."""
    if not needs_reading(x, device):
        yield from (x[index] for index in indices)
        return
    pin = device.type == "cuda" and torch.cuda.is_available()
    for rows in read_ahead(lambda index: gather(x, index, pin=pin), indices):
        yield rows.to(device, non_blocking=True)
