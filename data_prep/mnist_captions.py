"""Digit captions: canvases of one to three real MNIST digits with generated, differently worded captions.

In the spirit of Mansimov et al. (2016)'s "the digit three is at the top left and the digit
seven is at the bottom right": a 60×60 canvas is divided into a 3×3 grid of 20×20 cells; one to
three digits (the central 20×20 crop of a 28×28 MNIST digit) go into distinct random cells,
each moved by a random jitter of up to ±3 px (pixel-wise max where neighbours touch). Each
canvas gets five references, one per template, all naming every digit and its cell:

=====  ===================================================================================
1      the digit three is at the top left and the digit seven is at the bottom right
2      a three at the top left and a seven at the bottom right
3      there is a three at the top left and there is a seven at the bottom right
4      at the top left there is a three and at the bottom right there is a seven
5      the image shows a seven at the bottom right and a three at the top left   (reversed)
=====  ===================================================================================

Digits are named in reading order (rows top to bottom, then left to right), except template 5.
The digits' tight bounding boxes (pixels above 0, ``[x0, y0, x1, y1)`` in canvas pixels),
labels and cells are stored with every canvas, for attention correctness
(:mod:`attn_cli.metrics.attention`). ``mnist-captions`` draws the digits from the official MNIST
files (train canvases from the training digits less the last ``val_from_train``, val canvases
from those, test canvases from the 10k test digits); ``glyphs-captions`` uses the project's
generated glyphs (offline; the default of the demos and tiny recipes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.data.vocab import NAMES
from data_prep.base import DATASETS, DatasetSpec
from data_prep.captions import write_caption_splits
from data_prep.glyphs import make_glyphs
from data_prep.idx import MNIST_RAW
from data_prep.mnist import mnist_splits

CANVAS, CELL, CROP, JITTER = 60, 20, 20, 3
# the phrase for each cell of the 3×3 grid, (row, col)
PLACES = {
    (0, 0): "at the top left",
    (0, 1): "at the top",
    (0, 2): "at the top right",
    (1, 0): "on the left",
    (1, 1): "in the center",
    (1, 2): "on the right",
    (2, 0): "at the bottom left",
    (2, 1): "at the bottom",
    (2, 2): "at the bottom right",
}


def crop(digits: np.ndarray) -> np.ndarray:
    """The central 20×20 of 28×28 digits (MNIST fits each digit in a 20×20 box centred by mass)."""
    off = (digits.shape[-1] - CROP) // 2
    return digits[..., off : off + CROP, off : off + CROP]


def captions_for(layout: list[tuple[int, tuple[int, int]]]) -> list[str]:
    """The five references for a layout ``[(digit, (row, col)), ...]`` given in reading order."""
    named = [(NAMES[d], PLACES[cell]) for d, cell in layout]
    return [
        " and ".join(f"the digit {w} is {p}" for w, p in named),
        " and ".join(f"a {w} {p}" for w, p in named),
        " and ".join(f"there is a {w} {p}" for w, p in named),
        " and ".join(f"{p} there is a {w}" for w, p in named),
        "the image shows " + " and ".join(f"a {w} {p}" for w, p in reversed(named)),
    ]


def compose(digits: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """``n`` canvases (n, 1, 60, 60) uint8 drawn from ``digits`` (M, 28, 28); one item per canvas."""
    pieces = crop(digits)
    images = np.zeros((n, 1, CANVAS, CANVAS), np.uint8)
    items = []
    for i in range(n):
        k = int(rng.integers(1, 4))
        cells = sorted(int(c) for c in rng.choice(9, size=k, replace=False))  # reading order
        picks = rng.integers(0, len(pieces), size=k)
        layout, boxes = [], []
        for cell, pick in zip(cells, picks):
            row, col = divmod(cell, 3)
            top = int(np.clip(row * CELL + rng.integers(-JITTER, JITTER + 1), 0, CANVAS - CROP))
            left = int(np.clip(col * CELL + rng.integers(-JITTER, JITTER + 1), 0, CANVAS - CROP))
            piece = pieces[pick]
            region = images[i, 0, top : top + CROP, left : left + CROP]
            np.maximum(region, piece, out=region)
            ys, xs = np.nonzero(piece)
            if len(ys):
                box = [left + int(xs.min()), top + int(ys.min()), left + int(xs.max()) + 1, top + int(ys.max()) + 1]
            else:
                box = [left, top, left + CROP, top + CROP]
            digit = int(labels[pick])
            layout.append((digit, (row, col)))
            boxes.append([digit, *box])
        items.append({"id": i, "refs": captions_for(layout), "boxes": boxes, "cells": [list(c) for _, c in layout]})
    return images, items


def build_splits(pools: dict[str, tuple[np.ndarray, np.ndarray]], sizes: dict[str, int], seed: int, out: Path) -> dict:
    splits = {}
    for k, (split, (digits, labels)) in enumerate(pools.items()):
        rng = np.random.default_rng([seed, k])
        images, items = compose(digits, labels, sizes[split], rng)
        np.save(out / f"{split}_x.npy", images)
        splits[split] = items
    facts = write_caption_splits(out, splits)
    return {**facts, "kind": "image", "image_shape": [1, CANVAS, CANVAS], "refs_per_image": 5}


@dataclass(frozen=True)
class MnistCaptionConfig:
    seed: int = 1
    train: int = 30000  # canvases per split
    val: int = 500
    test: int = 1000
    val_from_train: int = 5000  # the last MNIST training digits, reserved for the val canvases


@dataclass(frozen=True)
class GlyphCaptionConfig:
    seed: int = 1
    train: int = 400
    val: int = 40
    test: int = 60
    pool: int = 600  # glyphs rendered per split to draw digits from


def build_mnist(cfg: MnistCaptionConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    pools = mnist_splits(source, cfg.val_from_train)
    sizes = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    return {**build_splits(pools, sizes, cfg.seed, out), "note": "MNIST digits on a 3×3 grid, 5 generated captions"}


def build_glyphs(cfg: GlyphCaptionConfig, source: Path | None, out: Path) -> dict[str, Any]:
    pools = {s: make_glyphs(cfg.pool, cfg.seed * 10 + k) for k, s in enumerate(("train", "val", "test"))}
    sizes = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    return {**build_splits(pools, sizes, cfg.seed, out), "note": "generated glyphs on a 3×3 grid, 5 captions"}


DATASETS.add(
    "mnist-captions",
    DatasetSpec(
        name="mnist-captions",
        task="caption",
        summary="1-3 real MNIST digits on a 60×60 canvas, 5 generated captions + boxes (--source MNIST dir)",
        Config=MnistCaptionConfig,
        build=build_mnist,
        default_name=lambda cfg: "mnist-captions",
        raw_files=MNIST_RAW,
    ),
)
DATASETS.add(
    "glyphs-captions",
    DatasetSpec(
        name="glyphs-captions",
        task="caption",
        summary="the digit-caption generator on the project's own glyphs (offline default)",
        Config=GlyphCaptionConfig,
        build=build_glyphs,
        default_name=lambda cfg: "glyphs-captions",
        needs_source=False,
    ),
)
