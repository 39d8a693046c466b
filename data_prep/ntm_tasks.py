"""The NTM algorithmic tasks of Graves et al. (2014) §4.1-4.2: copy and repeat copy, generated here.

Copy: a sequence of random 8-bit vectors (length 1-20 in training), then a delimiter flag on
an extra input channel; the target is the same sequence, emitted after the delimiter with no
input. Repeat copy: the input sequence plus a scalar repeat count (1-10, normalised) on a
further channel; the target is the sequence repeated that many times, then an end marker.

Training sequences are drawn on the fly from ``(seed, index)`` (see
:class:`attn_cli.data.memory.NtmDataset`); this preparation fixes the validation set
(lengths 1-20) and the test sets at the lengths of the paper's generalisation figures
(10, 20, 30, 50, 120), so every run is scored on the same sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from attn_cli.registry import DATASETS
from data_prep.base import DatasetSpec


@dataclass(frozen=True)
class NtmTaskConfig:
    kind: Literal["copy", "repeat-copy"] = "copy"
    width: int = 8
    val_size: int = 256
    test_size: int = 64  # per test length
    test_lengths: tuple[int, ...] = (10, 20, 30, 50, 120)
    seed: int = 11


def sample(kind: str, length: int, width: int, gen: torch.Generator, repeats: int = 1) -> dict[str, torch.Tensor]:
    """One example: ``inp`` (T, width+2), ``tgt`` (T, width+1), ``out_mask`` (T,) True where scored."""
    seq = torch.randint(0, 2, (length, width), generator=gen).float()  # (L, W)
    if kind == "copy":
        total = 2 * length + 1
        inp = torch.zeros(total, width + 2)
        inp[:length, :width] = seq
        inp[length, width] = 1.0  # delimiter
        tgt = torch.zeros(total, width + 1)
        tgt[length + 1 :, :width] = seq
        mask = torch.zeros(total, dtype=torch.bool)
        mask[length + 1 :] = True
        return {"inp": inp, "tgt": tgt, "out_mask": mask}
    out_len = length * repeats + 1
    total = length + 1 + out_len
    inp = torch.zeros(total, width + 2)
    inp[:length, :width] = seq
    inp[length, width + 1] = repeats / 10.0  # the repeat count, normalised, with the delimiter
    inp[length, width] = 1.0
    tgt = torch.zeros(total, width + 1)
    tgt[length + 1 : length + 1 + length * repeats, :width] = seq.repeat(repeats, 1)
    tgt[-1, width] = 1.0  # end marker
    mask = torch.zeros(total, dtype=torch.bool)
    mask[length + 1 :] = True
    return {"inp": inp, "tgt": tgt, "out_mask": mask}


def draw(kind: str, width: int, gen: torch.Generator, min_len: int, max_len: int) -> dict[str, torch.Tensor]:
    length = int(torch.randint(min_len, max_len + 1, (1,), generator=gen))
    repeats = int(torch.randint(1, 11, (1,), generator=gen)) if kind == "repeat-copy" else 1
    if kind == "repeat-copy":
        length = min(length, 10)  # Graves et al. §4.2: lengths 1-10, repeats 1-10
    return {**sample(kind, length, width, gen, repeats), "length": torch.tensor(length)}


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
