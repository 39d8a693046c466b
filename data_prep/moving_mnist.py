"""Moving digits: short videos of real MNIST digits with generated captions describing their motion.

Each video has T = 12 frames of 48×48 and two motion segments of 6 frames. One or two digits
(central 20×20 crops of MNIST digits) start at random places; in the first segment one digit
moves 2 px per frame in one of four directions, in the second segment a digit (the same one when
the video has one digit, else the other) moves in a direction of its own; a digit that is not
moving stands still. Start places are drawn so every move stays inside the frame. Captions name
the motions in order, so the words of the second half refer to the second half of the video —
what temporal attention (Yao et al. 2015 §2.2) should find:

=====  ===========================================================================
1      the digit three moves left and then the digit seven moves down
2      a three moves to the left then a seven moves down
3      first the three goes left and then the seven goes down
4      the three is moving left and after that the seven is moving down
5      the digit three moves left before the digit seven moves down
=====  ===========================================================================

(with one digit: "... and then the digit three moves down", "... then it moves down" is not used:
every template names the digit again.) Per-frame boxes ``[x0, y0, x1, y1)`` of every digit and the
frame range of each segment are stored for analysis. ``moving-mnist-captions`` uses the official
MNIST files (``--source``); ``glyphs-moving-captions`` the project's glyphs (offline).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.data.vocab import MOVES, NAMES
from data_prep.base import DATASETS, DatasetSpec
from data_prep.captions import write_caption_splits
from data_prep.glyphs import make_glyphs
from data_prep.idx import MNIST_RAW
from data_prep.mnist import mnist_splits
from data_prep.mnist_captions import CROP, crop

SIZE, FRAMES, SPEED = 48, 12, 2
SEG = FRAMES // 2


def motion_captions(events: list[tuple[int, str]]) -> list[str]:
    """Five references for two events ``[(digit, direction), (digit, direction)]``."""
    (d1, m1), (d2, m2) = [(NAMES[d], m) for d, m in events]
    return [
        f"the digit {d1} moves {m1} and then the digit {d2} moves {m2}",
        f"a {d1} moves {'to the ' + m1 if m1 in ('left', 'right') else m1} then a {d2} moves "
        + (f"to the {m2}" if m2 in ("left", "right") else m2),
        f"first the {d1} goes {m1} and then the {d2} goes {m2}",
        f"the {d1} is moving {m1} and after that the {d2} is moving {m2}",
        f"the digit {d1} moves {m1} before the digit {d2} moves {m2}",
    ]


def _start(rng: np.random.Generator, moves: list[tuple[int, int]]) -> tuple[int, int]:
    """A start (x, y) from which the digit's moves (summed over segments) stay inside the frame."""
    travel = SPEED * SEG
    lo = [0, 0]
    hi = [SIZE - CROP, SIZE - CROP]
    for axis in (0, 1):
        pos = neg = 0
        cum = 0
        for mv in moves:
            cum += mv[axis] * travel
            pos, neg = max(pos, cum), min(neg, cum)
        lo[axis], hi[axis] = -neg, SIZE - CROP - pos
    return int(rng.integers(lo[0], hi[0] + 1)), int(rng.integers(lo[1], hi[1] + 1))


def compose(digits: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """``n`` videos (n, T, 1, 48, 48) uint8 and one item per video."""
    pieces = crop(digits)
    videos = np.zeros((n, FRAMES, 1, SIZE, SIZE), np.uint8)
    items = []
    names = list(MOVES)
    for i in range(n):
        k = int(rng.integers(1, 3))
        picks = rng.integers(0, len(pieces), size=k)
        movers = [0, 0] if k == 1 else [0, 1]
        dirs = [names[int(j)] for j in rng.integers(0, 4, size=2)]
        own = [[MOVES[dirs[s]] for s in range(2) if movers[s] == j] for j in range(k)]
        pos = [list(_start(rng, own[j])) for j in range(k)]
        boxes = np.zeros((FRAMES, k, 4), np.int64)
        for t in range(FRAMES):
            if t > 0:  # move the segment's digit between frames t-1 and t
                mover = movers[0 if t <= SEG else 1]
                dx, dy = MOVES[dirs[0 if t <= SEG else 1]]
                pos[mover][0] += dx * SPEED
                pos[mover][1] += dy * SPEED
            for j in range(k):
                x, y = pos[j]
                region = videos[i, t, 0, y : y + CROP, x : x + CROP]
                np.maximum(region, pieces[picks[j]], out=region)
                ys, xs = np.nonzero(pieces[picks[j]])
                full = (x, y, x + CROP, y + CROP)
                boxes[t, j] = (x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1) if len(ys) else full
        events = [(int(labels[picks[movers[s]]]), dirs[s]) for s in range(2)]
        items.append(
            {
                "id": i,
                "refs": motion_captions(events),
                "digits": [int(labels[p]) for p in picks],
                "events": [[movers[s], dirs[s]] for s in range(2)],
                "segments": [[0, SEG + 1], [SEG, FRAMES]],  # frames spanned by each motion
                "frame_boxes": boxes.tolist(),
            }
        )
    return videos, items


def build_splits(pools: dict[str, tuple[np.ndarray, np.ndarray]], sizes: dict[str, int], seed: int, out: Path) -> dict:
    splits = {}
    for k, (split, (digits, labels)) in enumerate(pools.items()):
        videos, items = compose(digits, labels, sizes[split], np.random.default_rng([seed, 100 + k]))
        np.save(out / f"{split}_x.npy", videos)
        splits[split] = items
    facts = write_caption_splits(out, splits)
    return {**facts, "kind": "video", "video_shape": [FRAMES, 1, SIZE, SIZE], "refs_per_video": 5}


@dataclass(frozen=True)
class MovingConfig:
    seed: int = 1
    train: int = 20000
    val: int = 300
    test: int = 600
    val_from_train: int = 5000


@dataclass(frozen=True)
class GlyphMovingConfig:
    seed: int = 1
    train: int = 200
    val: int = 30
    test: int = 40
    pool: int = 400


def build_mnist(cfg: MovingConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None
    pools = mnist_splits(source, cfg.val_from_train)
    facts = build_splits(pools, {"train": cfg.train, "val": cfg.val, "test": cfg.test}, cfg.seed, out)
    return {**facts, "note": "moving MNIST digits, 12 frames, two motions, 5 captions"}


def build_glyphs(cfg: GlyphMovingConfig, source: Path | None, out: Path) -> dict[str, Any]:
    pools = {s: make_glyphs(cfg.pool, cfg.seed * 10 + k) for k, s in enumerate(("train", "val", "test"))}
    facts = build_splits(pools, {"train": cfg.train, "val": cfg.val, "test": cfg.test}, cfg.seed, out)
    return {**facts, "note": "moving glyphs, 12 frames, two motions, 5 captions"}


DATASETS.add(
    "moving-mnist-captions",
    DatasetSpec(
        name="moving-mnist-captions",
        task="caption",
        summary="videos of 1-2 moving MNIST digits with captions of their two motions (--source MNIST dir)",
        Config=MovingConfig,
        build=build_mnist,
        default_name=lambda cfg: "moving-mnist-captions",
        raw_files=MNIST_RAW,
    ),
)
DATASETS.add(
    "glyphs-moving-captions",
    DatasetSpec(
        name="glyphs-moving-captions",
        task="caption",
        summary="the moving-digits video generator on the project's glyphs (offline)",
        Config=GlyphMovingConfig,
        build=build_glyphs,
        default_name=lambda cfg: "glyphs-moving-captions",
        needs_source=False,
    ),
)
