"""The on-disk format of a prepared handwriting dataset, shared by its writers (``data_prep.handwriting``), the
datamodule, the pictures and ``attn generate``: plain numpy, no torch.

A line is a sequence of pen offsets ``(Δx, Δy, end_of_stroke)`` (Graves 2013 §4.1): the first row is
``(0, 0, e)``, row ``t`` is point ``t`` minus point ``t-1``, and ``end_of_stroke`` is 1 on the last point
of each stroke (the pen lifts after it). ``y`` points up. Offsets are divided by their standard deviation
over the training lines (per axis, the manifest's ``scale``), the paper's normalisation.

Files of split ``S``: ``S.points.npy`` float32 (sum of line lengths, 3), every line's rows one after
another; ``S.index.npy`` int64 (lines + 1,), line ``i`` is rows ``index[i]:index[i+1]``; ``S.jsonl``, one
row per line (``text``, ``writer``, ``source``). numpy files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from attn_cli.errors import AttnError


def strokes_to_offsets(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """Absolute strokes (each (n, 2), y up) -> offsets (N, 3) with the end-of-stroke flag."""
    kept = [np.asarray(s, dtype=np.float64) for s in strokes if len(s)]
    pts = np.concatenate(kept)  # (N, 2)
    eos = np.zeros(len(pts))
    eos[np.cumsum([len(s) for s in kept]) - 1] = 1.0
    off = np.zeros((len(pts), 3))
    off[1:, :2] = np.diff(pts, axis=0)
    off[:, 2] = eos
    return off


def offsets_to_strokes(offsets: np.ndarray) -> list[np.ndarray]:
    """Offsets (N, 3) -> absolute strokes (each (n, 2)), split after every end-of-stroke point."""
    offsets = np.asarray(offsets, dtype=np.float64)
    pts = np.cumsum(offsets[:, :2], axis=0)  # (N, 2)
    ends = np.flatnonzero(offsets[:, 2] > 0.5) + 1
    return [s for s in np.split(pts, ends) if len(s)]


def write_split(out: Path, split: str, lines: Sequence[np.ndarray], rows: Sequence[dict[str, object]]) -> None:
    """Write one split's offsets (already normalised) and its line descriptions."""
    import json

    index = np.zeros(len(lines) + 1, dtype=np.int64)
    index[1:] = np.cumsum([len(x) for x in lines])
    points = np.concatenate(lines).astype(np.float32) if lines else np.zeros((0, 3), np.float32)
    np.save(out / f"{split}.points.npy", points, allow_pickle=False)
    np.save(out / f"{split}.index.npy", index, allow_pickle=False)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (out / f"{split}.jsonl").write_text(text, encoding="utf-8")


def read_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 3) float32, index (lines + 1,) int64) of one split; damaged files are a user error."""
    try:
        points = np.load(root / f"{split}.points.npy", allow_pickle=False)
        index = np.load(root / f"{split}.index.npy", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise AttnError(f"{root}/{split}.*.npy cannot be read ({err}); prepare {root.name} again with --force") from err
    if points.ndim != 2 or points.shape[1] != 3 or index[-1] != len(points):
        raise AttnError(f"{root}/{split}.points.npy does not match its index; prepare {root.name} again with --force")
    return points, index
