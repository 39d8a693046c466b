"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) and the small-object "zoom" set built from it for RA-CNN.

``fashion-mnist``: the four official idx ``.gz`` files (same names and IDX format as MNIST, read by
:mod:`data_prep.idx`), 28×28 grey, 10 classes; val = the last 5,000 training images, as MNIST.

``fashion-zoom``: what makes RA-CNN's zooming matter with the data we hold. Each Fashion-MNIST item is
resized (bilinear) to a random side in [``min_side``, ``max_side``] pixels and placed at a random
position on a ``canvas``×``canvas`` black image, over ``clutter`` random 8×8 pieces cut from other items
of the same split (pixel-wise max, as RAM's cluttered MNIST): a small object in clutter, the setting of
the fine-grained datasets at toy scale. Every draw derives from ``seed`` and the split, so the same seed
gives the same bytes. The item's box (x, y, side) is kept in ``{split}_box.npy`` for the pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import DATASETS, DatasetSpec, RawFile
from data_prep.idx import MNIST_FILES
from data_prep.mnist import SPLITS, glyph_splits, mnist_splits, write_splits

FASHION_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
FASHION_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_RAW = [RawFile(name, FASHION_MIRROR + name, FASHION_SHA256[name]) for name in MNIST_FILES.values()]
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
PIECE = 8  # the side of a clutter piece


@dataclass(frozen=True)
class FashionConfig:
    n_val: int = 5000  # held out from the 60k training images


@dataclass(frozen=True)
class ZoomConfig:
    seed: int = 1
    canvas: int = 56
    min_side: int = 12
    max_side: int = 20
    clutter: int = 6
    n_val: int = 5000
    n_train: int = 0  # keep the first n training images (0: all) — for CPU budgets


@dataclass(frozen=True)
class GlyphZoomConfig:
    seed: int = 1
    canvas: int = 40
    min_side: int = 10
    max_side: int = 16
    clutter: int = 4
    train: int = 600
    val: int = 100
    test: int = 200


def place_small(
    items: np.ndarray, rng: np.random.Generator, canvas: int, sides: tuple[int, int], clutter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each item (N, H, W) uint8 resized to a random side in ``sides`` and put at a random spot of a canvas
    with ``clutter`` 8×8 pieces of other items: images (N, canvas, canvas) uint8 and boxes (N, 3) (x, y, side)."""
    from PIL import Image

    lo, hi = sides
    if not 1 <= lo <= hi <= canvas:
        raise AttnError(f"min_side={lo}, max_side={hi}: need 1 <= min_side <= max_side <= canvas={canvas}")
    n, h, w = items.shape
    out = np.zeros((n, canvas, canvas), np.uint8)
    boxes = np.zeros((n, 3), np.int64)
    for i in range(n):
        for _ in range(clutter):
            src = items[rng.integers(n)]
            py, px = rng.integers(0, h - PIECE + 1), rng.integers(0, w - PIECE + 1)
            cy, cx = rng.integers(0, canvas - PIECE + 1), rng.integers(0, canvas - PIECE + 1)
            region = out[i, cy : cy + PIECE, cx : cx + PIECE]
            np.maximum(region, src[py : py + PIECE, px : px + PIECE], out=region)
        side = int(rng.integers(lo, hi + 1))
        small = np.asarray(Image.fromarray(items[i]).resize((side, side), Image.BILINEAR), dtype=np.uint8)
        y, x = int(rng.integers(0, canvas - side + 1)), int(rng.integers(0, canvas - side + 1))
        region = out[i, y : y + side, x : x + side]
        np.maximum(region, small, out=region)
        boxes[i] = (x, y, side)
    return out, boxes


def zoom_splits(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], cfg: ZoomConfig | GlyphZoomConfig, out: Path
) -> dict[str, Any]:
    built = {}
    for k, split in enumerate(SPLITS):
        x, y = splits[split]
        if x.ndim == 4:
            x = x[:, 0]  # (N, H, W)
        rng = np.random.default_rng([cfg.seed, k])
        img, boxes = place_small(np.asarray(x), rng, cfg.canvas, (cfg.min_side, cfg.max_side), cfg.clutter)
        np.save(out / f"{split}_box.npy", boxes)
        built[split] = (img, y)
    facts = write_splits(out, built)
    return {**facts, "note": f"small objects ({cfg.min_side}-{cfg.max_side} px) in {cfg.canvas}×{cfg.canvas} clutter"}


def build_fashion(cfg: FashionConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    facts = write_splits(out, mnist_splits(source, cfg.n_val))
    return {**facts, "class_names": list(FASHION_CLASSES), "note": "Fashion-MNIST 28×28, official idx files"}


def build_zoom(cfg: ZoomConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None
    splits = mnist_splits(source, cfg.n_val)
    if cfg.n_train:
        splits["train"] = (splits["train"][0][: cfg.n_train], splits["train"][1][: cfg.n_train])
    return {**zoom_splits(splits, cfg, out), "class_names": list(FASHION_CLASSES)}


def build_glyph_zoom(cfg: GlyphZoomConfig, source: Path | None, out: Path) -> dict[str, Any]:
    return zoom_splits(glyph_splits((cfg.train, cfg.val, cfg.test), cfg.seed), cfg, out)


DATASETS.add(
    "fashion-mnist",
    DatasetSpec(
        name="fashion-mnist",
        task="vision",
        summary="Fashion-MNIST 28×28 from the official idx .gz files (--source DIR, or downloaded with checksums)",
        Config=FashionConfig,
        build=build_fashion,
        default_name=lambda cfg: "fashion-mnist",
        raw_files=FASHION_RAW,
    ),
)
DATASETS.add(
    "fashion-zoom",
    DatasetSpec(
        name="fashion-zoom",
        task="vision",
        summary="RA-CNN's small-object set: Fashion-MNIST items at 12-20 px in a 56×56 cluttered canvas (--source)",
        Config=ZoomConfig,
        build=build_zoom,
        default_name=lambda cfg: "fashion-zoom",
        raw_files=FASHION_RAW,
    ),
)
DATASETS.add(
    "glyphs-zoom",
    DatasetSpec(
        name="glyphs-zoom",
        task="vision",
        summary="the zoom construction on the generated glyphs (offline; the RA-CNN tiny recipe's data)",
        Config=GlyphZoomConfig,
        build=build_glyph_zoom,
        default_name=lambda cfg: "glyphs-zoom",
        needs_source=False,
    ),
)
