"""The distortions of the papers' MNIST-derived datasets (RAM, STN, DRAW, DRAM), one function per kind.

``data_prep.mnist_derived`` stores a deterministic draw of each kind (its docstring has the table of kinds
and papers); with ``data.resample=true`` training draws fresh ones from the same functions for every batch
(:func:`redistort`). They live in the runtime so the preparation layer imports them and not the reverse
(docs/architecture.md). Warps go through :mod:`attn_cli.attention.spatial` (the one grid generator and
sampler).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from attn_cli.attention.spatial import affine_grid, base_grid, projective_grid, sample
from attn_cli.data.sequences import sequence

Digits = tuple[np.ndarray, np.ndarray]


def _warp(images: np.ndarray, grid: torch.Tensor) -> np.ndarray:
    """Bilinear-sample uint8 images (N, h, w) at ``grid`` (N, H, W, 2) -> uint8 (N, H, W)."""
    x = torch.from_numpy(images.astype(np.float32))[:, None]  # (N, 1, h, w)
    out = sample(x, grid)[:, 0]  # (N, H, W)
    return out.round().clamp(0, 255).to(torch.uint8).numpy()


def _pad_center(images: np.ndarray, size: int) -> np.ndarray:
    n, h, w = images.shape
    out = np.zeros((n, size, size), np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    out[:, top : top + h, left : left + w] = images
    return out


def translate(images: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    n, h, w = images.shape
    out = np.zeros((n, size, size), np.uint8)
    tops = rng.integers(0, size - h + 1, n)
    lefts = rng.integers(0, size - w + 1, n)
    for i in range(n):
        out[i, tops[i] : tops[i] + h, lefts[i] : lefts[i] + w] = images[i]
    return out


def clutter(canvas: np.ndarray, pool: np.ndarray, rng: np.random.Generator, pieces: int, piece: int = 8) -> np.ndarray:
    """Add ``pieces`` random piece×piece crops of random ``pool`` digits at random places (max blend)."""
    n, size, _ = canvas.shape
    out = canvas.copy()
    src = rng.integers(0, len(pool), (n, pieces))
    sy = rng.integers(0, pool.shape[1] - piece + 1, (n, pieces))
    sx = rng.integers(0, pool.shape[2] - piece + 1, (n, pieces))
    ty = rng.integers(0, size - piece + 1, (n, pieces))
    tx = rng.integers(0, size - piece + 1, (n, pieces))
    for i in range(n):
        for k in range(pieces):
            crop = pool[src[i, k], sy[i, k] : sy[i, k] + piece, sx[i, k] : sx[i, k] + piece]
            region = out[i, ty[i, k] : ty[i, k] + piece, tx[i, k] : tx[i, k] + piece]
            np.maximum(region, crop, out=region)
    return out


def rotate_scale_translate(
    images: np.ndarray, rng: np.random.Generator, size: int, max_deg: float, scale: tuple[float, float], shift: float
) -> np.ndarray:
    """Rotate ±max_deg, scale in ``scale``, translate by ±``shift`` px, into a size×size canvas."""
    n = len(images)
    canvas = _pad_center(images, size)
    angle = np.deg2rad(rng.uniform(-max_deg, max_deg, n))
    s = rng.uniform(*scale, n)
    t = rng.uniform(-shift, shift, (n, 2)) * 2 / size  # normalised
    # the grid maps output -> input: the inverse of "rotate by a, scale by s, then move by t"
    cos, sin = np.cos(angle) / s, np.sin(angle) / s
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, sin, -sin, cos
    theta[:, :, 2] = -np.einsum("nij,nj->ni", theta[:, :, :2], t)
    return _warp(canvas, affine_grid(torch.from_numpy(theta), (size, size)))


def homography_from_points(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """The (N, 3, 3) homographies mapping ``dst`` (N, 4, 2) onto ``src`` (N, 4, 2) (direct linear transform)."""
    n = len(dst)
    a = np.zeros((n, 8, 8))
    b = np.zeros((n, 8))
    for k in range(4):
        x, y = dst[:, k, 0], dst[:, k, 1]
        u, v = src[:, k, 0], src[:, k, 1]
        a[:, 2 * k] = np.stack([x, y, np.ones(n), 0 * x, 0 * x, 0 * x, -u * x, -u * y], 1)
        a[:, 2 * k + 1] = np.stack([0 * x, 0 * x, 0 * x, x, y, np.ones(n), -v * x, -v * y], 1)
        b[:, 2 * k], b[:, 2 * k + 1] = u, v
    h = np.linalg.solve(a, b[..., None])[..., 0]
    return np.concatenate([h, np.ones((n, 1))], 1).reshape(n, 3, 3)


def projective(images: np.ndarray, rng: np.random.Generator, std_px: float = 5.0) -> np.ndarray:
    n, size, _ = images.shape
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    s = rng.uniform(0.75, 1.0, n)
    dst = corners[None] * s[:, None, None] + rng.normal(0, std_px, (n, 4, 2)) * 2 / size
    hom = homography_from_points(dst, np.repeat(corners[None], n, 0))  # output corners -> input corners
    return _warp(images, projective_grid(torch.from_numpy(hom).float(), (size, size)))


def elastic(images: np.ndarray, rng: np.random.Generator, alpha: float = 34.0, sigma: float = 4.0) -> np.ndarray:
    n, size, _ = images.shape
    disp = torch.from_numpy(rng.uniform(-1, 1, (n, 2, size, size)).astype(np.float32))  # (N, 2, H, W)
    radius = int(math.ceil(3 * sigma))
    k = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).to(torch.float32)
    d = disp.reshape(n * 2, 1, size, size)
    d = F.conv2d(F.pad(d, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    d = F.conv2d(F.pad(d, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    d = d.reshape(n, 2, size, size).permute(0, 2, 3, 1) * alpha * 2 / size  # (N, H, W, 2) normalised
    return _warp(images, base_grid(size, size)[None] + d)


def multi(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, count: int = 2, size: int = 64) -> Digits:
    """``count`` digits left to right, each in its own vertical band with random jitter; label (N, count)."""
    n = len(images)
    partner = np.stack([rng.permutation(n) for _ in range(count - 1)], 1) if count > 1 else np.zeros((n, 0), int)
    idx = np.concatenate([np.arange(n)[:, None], partner], 1)  # (N, count)
    band = size // count
    out = np.zeros((n, size, size), np.uint8)
    tops = rng.integers(0, size - 28 + 1, (n, count))
    lefts = rng.integers(0, max(1, band - 28 + 1 + 4), (n, count))
    for i in range(n):
        for k in range(count):
            left = min(k * band + lefts[i, k], size - 28)
            region = out[i, tops[i, k] : tops[i, k] + 28, left : left + 28]
            np.maximum(region, images[idx[i, k]], out=region)
    return out, labels[idx]


def _rts(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rotate_scale_translate(images, rng, 60, 45.0, (0.7, 1.2), 16.0)


KINDS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], Digits]]] = {
    "translated-60": ("28×28 digit at a random place in 60×60 (RAM)", lambda x, y, r: (translate(x, r, 60), y)),
    "cluttered-60": (
        "60×60 with 4 distractor pieces of 8×8 (RAM)",
        lambda x, y, r: (clutter(translate(x, r, 60), x, r, 4), y),
    ),
    "cluttered-100": (
        "100×100 with 8 distractor pieces of 8×8 (RAM, DRAW)",
        lambda x, y, r: (clutter(translate(x, r, 100), x, r, 8), y),
    ),
    "r": (
        "rotated ±90° (STN distorted MNIST R)",
        lambda x, y, r: (rotate_scale_translate(x, r, 28, 90.0, (1, 1), 0), y),
    ),
    "rts": ("rotated ±45°, scaled 0.7-1.2, translated in 60×60 (STN RTS)", lambda x, y, r: (_rts(x, r), y)),
    "p": ("projective distortion (STN P)", lambda x, y, r: (projective(x, r), y)),
    "e": ("elastic distortion (STN E)", lambda x, y, r: (elastic(x, r), y)),
    "addition": (
        "two RTS-distorted digits as 2 channels of 42×42, label = sum (STN)",
        lambda x, y, r: _addition(x, y, r),
    ),
    "multi": ("two digits side by side in 64×64, label = the sequence (DRAM)", lambda x, y, r: multi(x, y, r)),
    "sequence-100": (
        "three digits in a sloped row on 100×100 with 8 distractor pieces of 9×9, label = the sequence (RNN-SPN)",
        lambda x, y, r: sequence(x, y, r),
    ),
}


def _addition(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> Digits:
    partner = rng.permutation(len(images))
    a = rotate_scale_translate(images, rng, 42, 45.0, (0.7, 1.2), 7.0)
    b = rotate_scale_translate(images[partner], rng, 42, 45.0, (0.7, 1.2), 7.0)
    return np.stack([a, b], 1), labels + labels[partner]


DIGITS = "train_digits"  # the stored source digits of the training split (for data.resample)


def redistort(kind: str, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> Digits:
    """A fresh draw of ``kind`` for a batch of source digits (N, 28, 28) or (N, 1, 28, 28): the same
    construction as the prepared split (distractor pieces and addition partners come from the batch)."""
    return KINDS[kind][1](images[:, 0] if images.ndim == 4 else images, labels, rng)
