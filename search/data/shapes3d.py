"""``shapes3d``: the bundled volume dataset, generated on the fly with numpy (nothing to download).

Five classes of solid, each rendered into a 32^3 grid: ball, cube, torus, rod (a long capped cylinder)
and disk (a flat one). Every sample has a random orientation (a uniform random rotation), position,
size, intensity, background level and Gaussian noise, from one fixed seed, so the dataset is the
same on every machine with the same numpy.

Why it is a fair test of a 3-D network: all classes draw their occupied volume from one distribution
(each shape's size is solved from a common target volume), so the object's mass, mean intensity or
voxel count do not give the class away; the orientations are uniform, so no axis, slice or projection
is special (a rod seen end-on and a ball, or a disk seen edge-on and a rod, cast the same shadow);
what separates the classes is their 3-D shape: corners, holes, elongation, flatness.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

CLASSES = ("ball", "cube", "torus", "rod", "disk")
PER_CLASS = 300
GRID = 32
SEED = 20250815
VOLUME = (600.0, 1800.0)  # occupied voxels of the 32^3 grid, the same range for every class
NOISE = 0.1


@functools.lru_cache(maxsize=1)
def generate() -> tuple[torch.Tensor, torch.Tensor]:
    """float32 N x 1 x 32 x 32 x 32 volumes and int64 labels, classes interleaved.

    Made once per process (a few seconds) and shared: callers index or resize it, never write to it.
    """
    rng = np.random.Generator(np.random.PCG64(SEED))
    axis = np.arange(GRID, dtype=np.float32) + 0.5
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    volumes = np.empty((PER_CLASS * len(CLASSES), 1, GRID, GRID, GRID), dtype=np.float32)
    labels = np.empty(len(volumes), dtype=np.int64)
    for i in range(len(volumes)):
        label = i % len(CLASSES)
        volumes[i, 0] = _render(CLASSES[label], rng, points).reshape(GRID, GRID, GRID)
        labels[i] = label
    return torch.from_numpy(volumes), torch.from_numpy(labels)


def _render(shape: str, rng: np.random.Generator, points: np.ndarray) -> np.ndarray:
    volume = rng.uniform(*VOLUME)
    sdf, radius = _SHAPES[shape](volume, rng)
    centre = rng.uniform(radius + 0.5, GRID - radius - 0.5, size=3)
    local = (points - centre.astype(np.float32)) @ _rotation(rng).astype(np.float32)  # in the shape's own frame
    occupancy = np.clip(0.5 - sdf(local), 0.0, 1.0)  # partial volume over one voxel at the surface
    background, foreground = rng.uniform(0.0, 0.2), rng.uniform(0.6, 1.0)
    noise = rng.standard_normal(len(points), dtype=np.float32) * NOISE
    return background + (foreground - background) * occupancy + noise


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (a normalised Gaussian quaternion)."""
    w, x, y, z = (q := rng.normal(size=4)) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _ball(volume: float, rng: np.random.Generator):
    r = (3 * volume / (4 * math.pi)) ** (1 / 3)
    return (lambda p: np.linalg.norm(p, axis=1) - r), r


def _cube(volume: float, rng: np.random.Generator):
    h = volume ** (1 / 3) / 2

    def sdf(p: np.ndarray) -> np.ndarray:
        q = np.abs(p) - h
        return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)

    return sdf, h * math.sqrt(3)


def _cylinder(volume: float, rng: np.random.Generator, length_over_radius: tuple[float, float]):
    ratio = rng.uniform(*length_over_radius)  # full length / radius
    r = (volume / (math.pi * ratio)) ** (1 / 3)
    h = ratio * r / 2

    def sdf(p: np.ndarray) -> np.ndarray:
        d = np.stack([np.linalg.norm(p[:, :2], axis=1) - r, np.abs(p[:, 2]) - h], axis=1)
        return np.minimum(d.max(axis=1), 0.0) + np.linalg.norm(np.maximum(d, 0.0), axis=1)

    return sdf, math.hypot(r, h)


def _torus(volume: float, rng: np.random.Generator):
    ratio = rng.uniform(2.0, 3.0)  # major radius / tube radius
    r = (volume / (2 * math.pi**2 * ratio)) ** (1 / 3)
    big = ratio * r

    def sdf(p: np.ndarray) -> np.ndarray:
        return np.hypot(np.linalg.norm(p[:, :2], axis=1) - big, p[:, 2]) - r

    return sdf, big + r


_SHAPES = {
    "ball": _ball,
    "cube": _cube,
    "torus": _torus,
    "rod": lambda v, rng: _cylinder(v, rng, (4.5, 6.5)),
    "disk": lambda v, rng: _cylinder(v, rng, (0.35, 0.55)),
}
