"""Cluttered MNIST sequences of Sønderby, Sønderby, Maaløe & Winther, "Recurrent Spatial Transformer
Networks" (arXiv:1509.05329, §3 "cluttered MNIST sequences"), the data of the RNN-SPN.

The construction follows the authors' released generator (``create_mnist_sequence.py`` in
github.com/skaae/recurrent-spatial-transformer-code, read for this file; its constants are the
keyword defaults below): three 28×28 digits side by side, left to right, on a 100×100 canvas; the
row starts at a random horizontal offset around the centre and a random height, and each further
digit moves up or down by the same random slope (at most half a digit per digit), the whole row kept
inside the canvas; then eight 9×9 crops of random digits are pasted at random places on a clutter
canvas (a later piece overwrites an earlier one) and added to the digits, clipped to white. The label
is the three digits in reading order.

Deviations: the authors drew the clutter crops from a fixed bank of 100,000 crops of training
digits for every split; here they come from the digits of the batch being drawn (as
:func:`attn_cli.data.distort.clutter` does for RAM's cluttered sets), so the test set's clutter
comes from test digits. The authors stored one fixed training set of 60,000 sequences; with
``data.resample`` we draw fresh ones every batch (the prepared val/test splits stay fixed).
"""

from __future__ import annotations

import numpy as np

Digits = tuple[np.ndarray, np.ndarray]


def place_row(rng: np.random.Generator, count: int, size: int, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (tops, lefts), each (count,), of one row of ``count`` digits on a size×size canvas.

    Authors' rule: left = centred offset ± itself, top = uniform over the canvas plus ``k · slope``
    for the k-th digit with slope uniform in [-side/2, side/2), each top clamped into the canvas.
    """
    centred = (size - count * side) // 2
    left0 = centred + (int(rng.integers(-centred, centred)) if centred > 0 else 0)
    top0 = int(rng.integers(0, size))
    slope = int(rng.integers(-(side // 2), side // 2))
    lefts = left0 + side * np.arange(count)
    tops = np.clip(top0 + slope * np.arange(count), 0, size - side)
    return tops, lefts


def sequence(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    count: int = 3,
    size: int = 100,
    pieces: int = 8,
    piece: int = 9,
) -> Digits:
    """``count`` digits in a row on a size×size canvas with ``pieces`` piece×piece distractors.

    ``images`` (N, 28, 28) uint8, ``labels`` (N,) -> canvases (N, size, size) uint8, labels (N, count):
    example i reads digit i first, then ``count - 1`` partners drawn from the batch.
    """
    n, side, _ = images.shape
    partner = rng.integers(0, n, (n, count - 1))
    idx = np.concatenate([np.arange(n)[:, None], partner], 1)  # (N, count)
    digits = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        tops, lefts = place_row(rng, count, size, side)
        for k in range(count):
            digits[i, tops[k] : tops[k] + side, lefts[k] : lefts[k] + side] = images[idx[i, k]]
    noise = np.zeros((n, size, size), np.uint8)
    src = rng.integers(0, n, (n, pieces))
    sy = rng.integers(0, side - piece, (n, pieces))
    sx = rng.integers(0, side - piece, (n, pieces))
    ty = rng.integers(0, size - piece, (n, pieces))
    tx = rng.integers(0, size - piece, (n, pieces))
    for i in range(n):
        for k in range(pieces):
            crop = images[src[i, k], sy[i, k] : sy[i, k] + piece, sx[i, k] : sx[i, k] + piece]
            noise[i, ty[i, k] : ty[i, k] + piece, tx[i, k] : tx[i, k] + piece] = crop
    canvas = np.minimum(digits.astype(np.int16) + noise, 255).astype(np.uint8)  # (N, size, size)
    return canvas, labels[idx]
