"""MNIST (LeCun et al. 1998) from the official IDX gzip files, and the project's glyphs as the offline default.

Prepared layout (shared by every image dataset of the vision family)::

    <data-dir>/<name>/{train,val,test}_x.npy   uint8 (N, C, H, W)
    <data-dir>/<name>/{train,val,test}_y.npy   int64 (N,) class labels, or (N, K) digit sequences
    <data-dir>/<name>/manifest.json

The validation split is the last ``n_val`` training images (the papers tune on a held-out
part of the 60k training set and report the 10k test set).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import DATASETS, DatasetSpec
from data_prep.glyphs import make_glyphs
from data_prep.idx import MNIST_RAW, load_mnist

SPLITS = ("train", "val", "test")


def write_splits(out: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Write ``{split: (x uint8 (N, C, H, W) or (N, H, W), y)}`` as .npy files; returns manifest facts."""
    counts, shape = {}, None
    for split, (x, y) in splits.items():
        if len(x) != len(y):
            raise AttnError(f"{split}: {len(x)} images but {len(y)} labels; the inputs do not belong together")
        if x.ndim == 3:
            x = x[:, None]  # (N, 1, H, W)
        np.save(out / f"{split}_x.npy", np.ascontiguousarray(x, dtype=np.uint8))
        np.save(out / f"{split}_y.npy", np.ascontiguousarray(y, dtype=np.int64))
        counts[split] = int(len(x))
        shape = list(x.shape[1:])
    classes = int(max(int(np.max(y)) for _, y in splits.values() if len(y)) + 1)
    return {"counts": counts, "image_shape": shape, "classes": classes}


def shuffle_splits(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every split in an order drawn from ``seed`` (the same seed, the same bytes).

    Why: raw files stored per class (CIFAR's JPEG folders, CUB's and Stanford Dogs' lists, GTSRB's class
    folders) give class-ordered splits, and a recipe that validates on a fraction of val
    (``limit_val_batches: 0.4``) would then select its checkpoints on the first classes only."""
    out = {}
    for k, (name, (x, y)) in enumerate(splits.items()):
        order = np.random.default_rng([seed, k]).permutation(len(y))
        out[name] = (x[order], y[order])
    return out


def mnist_splits(source: Path, n_val: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """train/val/test (images (N, 28, 28) uint8, labels (N,)) from the official files in ``source``."""
    raw = load_mnist(source)
    n = len(raw["train_images"])
    if not 0 <= n_val < n:
        raise AttnError(f"n_val={n_val} must be between 0 and {n - 1}")
    cut = n - n_val
    return {
        "train": (raw["train_images"][:cut], raw["train_labels"][:cut]),
        "val": (raw["train_images"][cut:], raw["train_labels"][cut:]),
        "test": (raw["test_images"], raw["test_labels"]),
    }


def glyph_splits(sizes: tuple[int, int, int], seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {s: make_glyphs(n, seed * 10 + k) for k, (s, n) in enumerate(zip(SPLITS, sizes))}


@dataclass(frozen=True)
class MnistConfig:
    n_val: int = 5000  # held out from the 60k training images


@dataclass(frozen=True)
class GlyphConfig:
    train: int = 600
    val: int = 100
    test: int = 200
    seed: int = 3


def build_mnist(cfg: MnistConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    return {**write_splits(out, mnist_splits(source, cfg.n_val)), "note": "MNIST 28×28, official idx files"}


def build_glyphs(cfg: GlyphConfig, source: Path | None, out: Path) -> dict[str, Any]:
    splits = glyph_splits((cfg.train, cfg.val, cfg.test), cfg.seed)
    return {**write_splits(out, splits), "note": "the project's generated digit glyphs (offline stand-in for MNIST)"}


DATASETS.add(
    "mnist",
    DatasetSpec(
        name="mnist",
        task="vision",
        summary="MNIST 28×28 from the official idx .gz files (--source DIR, or downloaded with checksums)",
        Config=MnistConfig,
        build=build_mnist,
        default_name=lambda cfg: "mnist",
        raw_files=MNIST_RAW,
    ),
)
DATASETS.add(
    "glyphs",
    DatasetSpec(
        name="glyphs",
        task="vision",
        summary="the project's generated 28×28 digit glyphs (offline default of the vision family)",
        Config=GlyphConfig,
        build=build_glyphs,
        default_name=lambda cfg: "glyphs",
        needs_source=False,
    ),
)
