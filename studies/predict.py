"""``effnas predict``: the top-k classes of image files under a trained network."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from search.data.images import read_image
from search.training.inference import load_trained
from space.errors import UserError


def predict(text: str, images: list[str], *, top_k: int = 5) -> list[dict[str, Any]]:
    """One row per image: its path and the ``top_k`` (class, probability) pairs, most probable first."""
    if top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    missing = [p for p in images if not Path(p).is_file()]
    if missing:
        raise UserError(f"image {missing[0]!r} does not exist")
    trained = load_trained(text)
    trained.check_images("predict")
    batch = torch.stack([read_image(Path(p), trained.resolution) for p in images])
    with torch.no_grad():
        probabilities = trained.model(trained.normalize(batch).contiguous(memory_format=torch.channels_last))
        probabilities = probabilities.float().softmax(1)
    k = min(top_k, probabilities.shape[1])
    values, indices = probabilities.topk(k, dim=1)
    return [{"image": path, "top": [{"class": trained.classes[int(i)], "probability": float(v)}
                                    for v, i in zip(row_values, row_indices)]}
            for path, row_values, row_indices in zip(images, values, indices)]
