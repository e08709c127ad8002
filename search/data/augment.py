"""Training-image augmentation on the device where the images sit: random-resized crop and horizontal flip
as one affine resampling per image (``grid_sample``), a whole batch in a few kernels, no data loader.

The random draws come from the run's data generator for the whole global batch, so every
DistributedDataParallel rank draws the same numbers and takes its own slice: N ranks see exactly the
images one process would.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from effnas.space.errors import UserError

if TYPE_CHECKING:
    import torch

KINDS = ("crop-flip", "crop", "flip", "none")  # the registry: crop and flip are the two parts
# (torch is imported when an augmentation runs: the command line reads KINDS for free)


@dataclass(frozen=True)
class CropFlip:
    """torchvision's RandomResizedCrop (area share in ``scale``, aspect ratio in ``ratio``) and RandomHorizontalFlip."""

    crop: bool = True
    flip: bool = True
    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def params(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """One 2x3 affine matrix per image, mapping output coordinates to input ones (in [-1, 1])."""
        import torch

        u = torch.rand((count, 5), generator=generator, device=generator.device)
        theta = torch.zeros((count, 2, 3), device=generator.device)
        width = height = torch.ones(count, device=generator.device)
        if self.crop:
            area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0]
            log_ratio = math.log(self.ratio[0]) + (math.log(self.ratio[1]) - math.log(self.ratio[0])) * u[:, 1]
            aspect = torch.exp(log_ratio)
            width = torch.sqrt(area * aspect).clamp(max=1.0)  # as a share of the image's side
            height = torch.sqrt(area / aspect).clamp(max=1.0)
            theta[:, 0, 2] = (1 - width) * (2 * u[:, 2] - 1)
            theta[:, 1, 2] = (1 - height) * (2 * u[:, 3] - 1)
        sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if self.flip else torch.ones(count, device=generator.device)
        theta[:, 0, 0] = width * sign
        theta[:, 1, 1] = height
        return theta

    def apply(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """uint8 N x 3 x R x R -> float pixels (0-255) of the crops, resized back to R x R, flipped."""
        import torch.nn.functional as F

        pixels = images.float()
        grid = F.affine_grid(params.to(pixels.device), list(pixels.shape), align_corners=False)
        return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)


def make_augment(kind: str, *, crop_scale: float) -> CropFlip | None:
    if kind not in KINDS:
        raise UserError(f"unknown augmentation {kind!r}; allowed: {', '.join(KINDS)}")
    if kind == "none":
        return None
    return CropFlip(crop="crop" in kind, flip="flip" in kind, scale=(crop_scale, 1.0))
