"""``effnas predict``: the top-k classes of image files under a trained network.

Images are read and classified in batches of bounded memory (:func:`batch_size`), and rows come out as each
batch is done, so any number of images runs in the memory of a few. Every file is looked at (exists, is an
image) before the first is classified; a network whose output is not finite is an error, never a row of NaN.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from effnas.search.data.images import read_image
from effnas.search.training.inference import Trained, check_finite_output, load_trained
from effnas.space.cost import inference_activations
from effnas.space.errors import UserError

BATCH_BYTES = 256 * 2**20  # what one batch's input and activations may take (float32)
MAX_BATCH = 64


def batch_size(trained: Trained) -> int:
    """Images per batch: as many as fit in BATCH_BYTES of activations at the run's resolution, 1 to MAX_BATCH."""
    from effnas.space import presets

    spec = presets.network(trained.config["network"])
    per_image = 4 * inference_activations(spec, trained.resolution, num_classes=int(trained.config["num_classes"]))
    return max(1, min(MAX_BATCH, BATCH_BYTES // max(per_image, 1)))


def check_images(images: list[str]) -> None:
    """Every image exists and is one, before any is classified: its header is read and its data checked (PIL's
    ``verify``: a truncated or damaged file fails here, not half-way through the output), not yet decoded."""
    from PIL import Image, UnidentifiedImageError

    for path in images:
        if not Path(path).is_file():
            raise UserError(f"image {path!r} does not exist" if not Path(path).exists() else
                            f"image {path!r} is not a regular file")
        try:
            with Image.open(path) as image:
                image.verify()
        except Image.DecompressionBombError:
            raise UserError(f"image {path!r} is too large to decode (PIL's decompression-bomb limit)") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise UserError(f"image {path!r} cannot be read as an image ({exc})") from None


def predict(text: str, images: list[str], *, top_k: int = 5) -> Iterator[dict[str, Any]]:
    """One row per image, in order: its path and the ``top_k`` (class, probability) pairs, most probable first.
    The inputs are checked when called; rows are computed a batch at a time as they are consumed."""
    if top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    missing = [p for p in images if not Path(p).exists()]
    if missing:
        raise UserError(f"image {missing[0]!r} does not exist")
    trained = load_trained(text)
    trained.check_images("predict")
    check_images(images)
    return _rows(trained, images, top_k=top_k, batch=batch_size(trained))


def _rows(trained: Trained, images: list[str], *, top_k: int, batch: int) -> Iterator[dict[str, Any]]:
    for start in range(0, len(images), batch):
        paths = images[start:start + batch]
        pixels = torch.stack([read_image(Path(p), trained.resolution) for p in paths])
        with torch.no_grad():
            logits = trained.model(trained.normalize(pixels).contiguous(memory_format=torch.channels_last)).float()
        for path, row in zip(paths, logits):
            check_finite_output(row, f"the network of {str(trained.path)!r}, on image {path!r},")
        probabilities = logits.softmax(1)
        values, indices = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
        for path, row_values, row_indices in zip(paths, values, indices):
            yield {"image": path, "top": [{"class": trained.classes[int(i)], "probability": float(v)}
                                          for v, i in zip(row_values, row_indices)]}
