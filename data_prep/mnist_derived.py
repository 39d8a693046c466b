"""The papers' MNIST-derived datasets, deterministic from a seed and stored prepared (uint8 .npy).

=============  ======================================================================  ==========
kind           construction                                                            paper
=============  ======================================================================  ==========
translated-60  the 28×28 digit at a uniformly random position in a 60×60 canvas          RAM §4.1
cluttered-60   translated-60 + 4 random 8×8 crops of other digits (pixel-wise max)       RAM §4.1
cluttered-100  100×100 canvas, 8 distractor pieces of 8×8                                RAM/DRAW
r              rotated uniformly in ±90° (28×28)                                         STN §4.1
rts            rotated ±45°, scaled ×[0.7, 1.2], placed at random in 60×60               STN §4.1
p              scaled ×[0.75, 1], each corner moved by N(0, 5²) px: a homography (28×28) STN §4.1
e              elastic: random displacement field smoothed by a Gaussian (Simard 2003)   STN §4.1
addition       two digits, each independently RTS-distorted into 42×42, stacked as 2      STN App. A
               channels; label = their sum (19 classes)
multi          two digits side by side in 64×64 (random jitter); label = the sequence    DRAM §5.1
sequence-100   three digits in a sloped row on 100×100 + 8 distractors of 9×9           RNN-SPN §3
               (:mod:`attn_cli.data.sequences`); label = the sequence
=============  ======================================================================  ==========

Each ``mnist-<kind>`` reads the official MNIST files (``--source``); each ``glyphs-<kind>``
applies the same construction to the project's generated glyphs (offline; the tiny recipes
use them). Warps go through :mod:`attn_cli.attention.spatial` (the one grid generator and
sampler). Deviations: the elastic parameters (α = 34 px, σ = 4 px) are Simard et al.'s,
not stated in the STN paper; the RTS translation range keeps the digit's centre within ±16 px
of the canvas centre.

Besides the derived splits, each preparation keeps the training split's source digits
(``train_digits_x.npy``, ``train_digits_y.npy``): with ``data.resample=true`` training draws fresh
distortions of them for every batch (:func:`attn_cli.data.distort.redistort`) instead of reusing the stored ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.data.distort import DIGITS, KINDS, Digits
from data_prep.base import DATASETS, DatasetSpec
from data_prep.idx import MNIST_RAW
from data_prep.mnist import SPLITS, glyph_splits, mnist_splits, write_splits


@dataclass(frozen=True)
class DerivedConfig:
    seed: int = 1  # the one seed every random draw derives from: same seed, same bytes
    n_train: int = 0  # keep the first n of each split (0: all) — e.g. to fit a CPU budget
    n_val: int = 0
    n_test: int = 0
    val_from_train: int = 5000  # the last images of the official training set that form the val split


@dataclass(frozen=True)
class GlyphDerivedConfig:
    seed: int = 1
    train: int = 600
    val: int = 100
    test: int = 200


BLOCK = 4096  # images drawn per generator; fixed, because the bytes depend on it


def _write_digits(out: Path, x: np.ndarray, y: np.ndarray) -> None:
    np.save(out / f"{DIGITS}_x.npy", np.ascontiguousarray(x[:, None] if x.ndim == 3 else x, dtype=np.uint8))
    np.save(out / f"{DIGITS}_y.npy", np.ascontiguousarray(y, dtype=np.int64))


def derive(kind: str, splits: dict[str, Digits], seed: int, limits: dict[str, int]) -> dict[str, Digits]:
    fn = KINDS[kind][1]
    out = {}
    for k, split in enumerate(SPLITS):
        x, y = splits[split]
        if limits.get(split):
            x, y = x[: limits[split]], y[: limits[split]]
        xs, ys = [], []
        for c, start in enumerate(range(0, len(x), BLOCK)):
            # a generator per (seed, split, block): reproducible and independent of the other splits
            rng = np.random.default_rng([seed, k, c])
            xc, yc = fn(x[start : start + BLOCK], y[start : start + BLOCK], rng)
            xs.append(xc)
            ys.append(yc)
        out[split] = (np.concatenate(xs), np.concatenate(ys))
    return out


def _register(kind: str) -> None:
    summary = KINDS[kind][0]

    def build_mnist(cfg: DerivedConfig, source: Path | None, out: Path) -> dict[str, Any]:
        assert source is not None  # guaranteed by needs_source
        base = mnist_splits(source, cfg.val_from_train)
        limits = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
        x, y = base["train"]
        _write_digits(out, x[: cfg.n_train or None], y[: cfg.n_train or None])
        return {**write_splits(out, derive(kind, base, cfg.seed, limits)), "note": summary, "derived": kind}

    def build_glyphs(cfg: GlyphDerivedConfig, source: Path | None, out: Path) -> dict[str, Any]:
        base = glyph_splits((cfg.train, cfg.val, cfg.test), cfg.seed)
        _write_digits(out, *base["train"])
        return {**write_splits(out, derive(kind, base, cfg.seed, {})), "note": f"glyphs: {summary}", "derived": kind}

    DATASETS.add(
        f"mnist-{kind}",
        DatasetSpec(
            name=f"mnist-{kind}",
            task="vision",
            summary=f"MNIST {summary}",
            Config=DerivedConfig,
            build=build_mnist,
            default_name=lambda cfg, k=kind: f"mnist-{k}",
            raw_files=MNIST_RAW,
        ),
    )
    DATASETS.add(
        f"glyphs-{kind}",
        DatasetSpec(
            name=f"glyphs-{kind}",
            task="vision",
            summary=f"generated glyphs, {summary}",
            Config=GlyphDerivedConfig,
            build=build_glyphs,
            default_name=lambda cfg, k=kind: f"glyphs-{k}",
            needs_source=False,
        ),
    )


for _kind in KINDS:
    _register(_kind)
