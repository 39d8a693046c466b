"""The project's own digit glyphs: an embedded stand-in for MNIST that needs no download.

Each digit 0-9 is drawn from a 5×7 bitmap, scaled to a 20×20 box with a random stroke
width, slant and offset, and blurred, giving 28×28 uint8 images that look like (crude)
handwriting. Deterministic in the seed. Used by the demos and by tests.
"""

from __future__ import annotations

import numpy as np

_FONT = {
    0: ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    1: ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    2: ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    3: ["11111", "00010", "00100", "00010", "00001", "10001", "01110"],
    4: ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    5: ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    6: ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    7: ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    8: ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    9: ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
}


def _render(digit: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    bitmap = np.array([[int(c) for c in row] for row in _FONT[digit]], dtype=np.float32)  # (7, 5)
    img = np.zeros((size, size), dtype=np.float32)
    box_h, box_w = 20, int(rng.integers(11, 16))
    top = 4 + int(rng.integers(-2, 3))
    left = (size - box_w) // 2 + int(rng.integers(-2, 3))
    slant = float(rng.uniform(-0.25, 0.25))
    thick = float(rng.uniform(0.9, 1.6))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    # map each pixel back to bitmap coordinates (inverse slant), then nearest-neighbour sample
    v = (ys - top) / box_h * 7.0
    u = (xs - left - slant * (ys - size / 2)) / box_w * 5.0
    inside = (v >= 0) & (v < 7) & (u >= 0) & (u < 5)
    img[inside] = bitmap[v[inside].astype(int), u[inside].astype(int)]
    # thicken and soften: a small separable blur scaled by the stroke width
    k = np.array([0.25, 0.5, 1.0, 0.5, 0.25], dtype=np.float32) ** (1.0 / thick)
    k /= k.sum()
    img = np.apply_along_axis(lambda r: np.convolve(r, k, mode="same"), 1, img)
    img = np.apply_along_axis(lambda c: np.convolve(c, k, mode="same"), 0, img)
    img = np.clip(img * 2.2 * thick, 0.0, 1.0)
    return (img * 255).astype(np.uint8)


def make_glyphs(n: int, seed: int, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, size, size) uint8 and labels (n,) uint8, balanced over the ten digits."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    images = np.stack([_render(int(d), rng, size) for d in labels]) if n else np.zeros((0, size, size), np.uint8)
    return images, labels
