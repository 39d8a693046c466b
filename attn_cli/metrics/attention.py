"""Attention correctness: how much of a word's attention falls on the object the word names.

In the spirit of Liu et al. (2017, "Attention Correctness in Neural Image Captioning"): for each
generated word that names an object with a ground-truth box, the share of that step's attention
mass inside the box; averaged over all such words of a split.

Geometry: the L = h·w attention weights sit on an h×w grid that tiles the H×W image evenly
(cell (r, c) covers rows [r·H/h, (r+1)·H/h) and columns [c·W/w, (c+1)·W/w)), each cell's weight
spread uniformly over its pixels — the same convention as the upsampled overlays of Xu et al.'s
figures. A box ``[x0, y0, x1, y1)`` (pixels, end exclusive) then receives Σ_cells α_cell ·
|cell ∩ box| / |cell|. When the image holds several objects the word names (two "three"s), the
union of their boxes counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np


def box_coverage(grid: tuple[int, int], image_hw: tuple[int, int], boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """(h·w,) share of each grid cell's area inside the union of ``boxes`` ([x0, y0, x1, y1), pixels)."""
    h, w = grid
    height, width = image_hw
    inside = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in boxes:
        inside[max(0, int(y0)) : max(0, int(y1)), max(0, int(x0)) : max(0, int(x1))] = True
    ys = np.linspace(0, height, h + 1)
    xs = np.linspace(0, width, w + 1)
    # exact fractional overlap: integrate the pixel mask over each (possibly fractional) cell
    cov = np.zeros((h, w))
    py = np.arange(height)
    px = np.arange(width)
    for r in range(h):
        wy = np.clip(np.minimum(py + 1, ys[r + 1]) - np.maximum(py, ys[r]), 0, None)  # (H,) row overlap
        for c in range(w):
            wx = np.clip(np.minimum(px + 1, xs[c + 1]) - np.maximum(px, xs[c]), 0, None)  # (W,)
            area = wy.sum() * wx.sum()
            cov[r, c] = float(wy @ inside @ wx) / area if area else 0.0
    return cov.reshape(-1)


@lru_cache(maxsize=65536)
def _coverage(grid: tuple[int, int], image_hw: tuple[int, int], boxes: tuple[tuple[float, ...], ...]) -> np.ndarray:
    return box_coverage(grid, image_hw, boxes)


def _by_name(objects: Sequence[tuple[str, Sequence[float]]]) -> dict[str, tuple[tuple[float, ...], ...]]:
    """Boxes per object name (two "three"s: both boxes)."""
    by_name: dict[str, list[tuple[float, ...]]] = {}
    for name, box in objects:
        by_name.setdefault(name, []).append(tuple(box))
    return {name: tuple(boxes) for name, boxes in by_name.items()}


def attention_in_box(
    alpha: np.ndarray, grid: tuple[int, int], image_hw: tuple[int, int], boxes: Sequence[Sequence[float]]
) -> float:
    """Attention mass (α over h·w cells, summing to 1) inside the union of ``boxes``."""
    cov = _coverage(tuple(grid), tuple(image_hw), tuple(tuple(b) for b in boxes))
    return float(np.asarray(alpha, dtype=np.float64).reshape(-1) @ cov)


def word_correctness(
    words: Sequence[str],
    alphas: np.ndarray,
    objects: Sequence[tuple[str, Sequence[float]]],
    grid: tuple[int, int],
    image_hw: tuple[int, int],
    lead: int = 0,
) -> list[float]:
    """One score per word of ``words`` that names an object of ``objects`` ((name, box) pairs); ``alphas`` (T, L).

    ``lead`` = k scores the map of k steps *before* the word instead (a diagnostic: does the model look
    at the object ahead of naming it?); words with fewer than k steps before them are skipped.
    """
    by_name = _by_name(objects)
    return [
        attention_in_box(alphas[t - lead], grid, image_hw, by_name[word])
        for t, word in enumerate(words)
        if word in by_name and lead <= t < len(alphas) + lead
    ]


def box_targets(
    words: Sequence[str],
    objects: Sequence[tuple[str, Sequence[float]]],
    grid: tuple[int, int],
    image_hw: tuple[int, int],
    steps: int,
) -> np.ndarray:
    """(steps, h·w) attention targets (Liu et al. 2017's "strong supervision"): for each word that
    names an object, its box coverage normalised to sum to one (the ground-truth map β_t); zero rows
    elsewhere. Words past ``steps`` are dropped.
    """
    by_name = _by_name(objects)
    out = np.zeros((steps, grid[0] * grid[1]), np.float32)
    for t, word in enumerate(words[:steps]):
        if word in by_name:
            cov = _coverage(grid, image_hw, by_name[word])
            if cov.sum() > 0:
                out[t] = cov / cov.sum()
    return out


def segment_correctness(
    words: Sequence[str], alphas: np.ndarray, segments: Sequence[Sequence[int]], cues: Sequence[str]
) -> list[float]:
    """Temporal attention correctness: the k-th cue word (a motion: "left", "down", ...) describes segment k.

    One score per cue word: the share of that step's attention over frames (``alphas`` (T, F))
    inside frames ``[start, end)`` of its segment. Cue words past the last segment are skipped.
    """
    out, k = [], 0
    for t, word in enumerate(words):
        if word in cues:
            if k < len(segments) and t < len(alphas):
                start, end = segments[k]
                out.append(float(np.asarray(alphas[t], dtype=np.float64)[start:end].sum()))
            k += 1
    return out
