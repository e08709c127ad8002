"""``digits``: scikit-learn's bundled handwritten digits, read without importing scikit-learn."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from effnas.space.errors import UserError

CLASSES = tuple(str(d) for d in range(10))


def read_digits() -> tuple[torch.Tensor, torch.Tensor]:
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
