"""``cifar10:PATH``: CIFAR-10's python batches (``data_batch_*``, ``test_batch``), unpickled safely."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effnas.space.errors import UserError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's python batches are pickles: this unpickler rebuilds numpy arrays and plain containers
    and refuses everything else, so a crafted batch cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


def read_batches(root: Path, pattern: str = "data_batch_*") -> tuple[torch.Tensor, torch.Tensor]:
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
            labels.append(torch.tensor(_labels(batch[b"labels"], len(data)), dtype=torch.long))
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError, IndexError) as exc:
            raise UserError(f"unreadable CIFAR-10 batch {str(path)!r}: {exc}") from None
    return torch.cat(images), torch.cat(labels)


def _labels(raw: Any, count: int) -> list[int]:
    """A batch's labels, checked: a flat list of ints in range(10), one per image; else a ValueError saying
    what is wrong."""
    values = raw.tolist() if isinstance(raw, np.ndarray) else raw
    if not isinstance(values, (list, tuple)) or not all(type(value) is int for value in values):
        raise ValueError(f"its labels are not a flat list of ints ({type(raw).__name__})")
    if len(values) != count:
        raise ValueError(f"it holds {len(values):,} labels for {count:,} images")
    wrong = next((value for value in values if not 0 <= value < len(CLASSES)), None)
    if wrong is not None:
        raise ValueError(f"label {wrong} is not a class (0 to {len(CLASSES) - 1})")
    return list(values)
