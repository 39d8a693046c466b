"""The NTM algorithmic tasks of Graves et al. (2014) §4.1-4.2: copy and repeat copy, generated here.

Copy: a sequence of random 8-bit vectors (length 1-20 in training), then a delimiter flag on
an extra input channel; the target is the same sequence, emitted after the delimiter with no
input. Repeat copy: the input sequence plus a scalar repeat count (1-10, normalised) on a
further channel; the target is the sequence repeated that many times, then an end marker.

Training sequences are drawn on the fly from ``(seed, index)`` (see
:class:`attn_cli.data.memory.NtmDataset`); this preparation fixes the validation set
(lengths 1-20) and the test sets at the lengths of the paper's generalisation figures
(10, 20, ..., 120), so every run is scored on the same sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from attn_cli.data.copy_tasks import draw, sample
from data_prep.base import DATASETS, DatasetSpec


@dataclass(frozen=True)
class NtmTaskConfig:
    kind: Literal["copy", "repeat-copy"] = "copy"
    width: int = 8
    val_size: int = 256
    test_size: int = 64  # per test length
    test_lengths: tuple[int, ...] = tuple(range(10, 130, 10))  # Fig. 4-5: 10 ... 120
    seed: int = 11


def build_ntm(cfg: NtmTaskConfig, source: Path | None, out: Path) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(cfg.seed)
    val = [draw(cfg.kind, cfg.width, gen, 1, 20) for _ in range(cfg.val_size)]
    test = []
    for length in cfg.test_lengths:
        for _ in range(cfg.test_size):
            reps = int(torch.randint(1, 11, (1,), generator=gen)) if cfg.kind == "repeat-copy" else 1
            test.append({**sample(cfg.kind, length, cfg.width, gen, reps), "length": torch.tensor(length)})
    torch.save({"val": val, "test": test}, out / "eval_sets.pt")
    return {"kind": cfg.kind, "width": cfg.width, "counts": {"val": len(val), "test": len(test)}}


for _kind in ("copy", "repeat-copy"):
    DATASETS.add(
        f"ntm-{_kind}",
        DatasetSpec(
            name=f"ntm-{_kind}",
            task="memory",
            summary=f"NTM {_kind} task (Graves et al. 2014): random 8-bit vectors, training lengths 1-20",
            Config=NtmTaskConfig,
            build=lambda cfg, src, out, _k=_kind: build_ntm(NtmTaskConfig(**{**cfg.__dict__, "kind": _k}), src, out),
            default_name=lambda cfg, _k=_kind: f"ntm-{_k}",
            needs_source=False,
        ),
    )
