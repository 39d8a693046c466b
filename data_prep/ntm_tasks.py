"""The NTM algorithmic tasks of Graves et al. (2014) §4.1-4.5, generated here (no source files).

Copy: random 8-bit vectors (length 1-20 in training), then a delimiter flag on an extra input
channel; the target is the same sequence, emitted after the delimiter with no input. Repeat copy:
the input sequence plus a scalar repeat count (1-10, normalised); the target is the sequence repeated
that many times, then an end marker. Associative recall: 2-6 items of three 6-bit vectors, then a
query item; the target is the item that followed it. Dynamic N-grams: 200 bits from a fresh 6-gram
table per sequence, predicted one at a time. Priority sort: 20 8-bit vectors with priorities in
[-1, 1]; the target is the 16 of highest priority, sorted. The generators are
:data:`attn_cli.data.copy_tasks.NTM_TASKS`.

Training sequences are drawn on the fly from ``(seed, index)`` (see
:class:`attn_cli.data.memory.NtmDataset`); this preparation fixes the validation set (the training
sizes) and the test sets at the sizes of the paper's generalisation figures (copy: lengths 10, 20,
..., 120; associative recall: 2 to 20 items), so every run is scored on the same sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from attn_cli.data.copy_tasks import NTM_TASKS, check, draw, sample
from data_prep.base import DATASETS, DatasetSpec


@dataclass(frozen=True)
class NtmTaskConfig:
    kind: Literal["copy", "repeat-copy", "associative-recall", "ngrams", "priority-sort"] = "copy"
    width: int = 0  # bits per vector; 0: the paper's (8; associative recall 6; N-grams 1)
    val_size: int = 256
    test_size: int = 64  # per test size
    test_lengths: tuple[int, ...] = ()  # (): the paper's (copy 10, 20, ..., 120; see NTM_TASKS)
    seed: int = 11


def build_ntm(cfg: NtmTaskConfig, source: Path | None, out: Path) -> dict[str, Any]:
    task = NTM_TASKS[cfg.kind]
    width = cfg.width or task.width
    test_sizes = cfg.test_lengths or task.test_sizes
    check(cfg.kind, width, min((*test_sizes, task.sizes[0])))
    gen = torch.Generator().manual_seed(cfg.seed)
    val = [draw(cfg.kind, width, gen, *task.sizes) for _ in range(cfg.val_size)]
    test = [sample(cfg.kind, size, width, gen) for size in test_sizes for _ in range(cfg.test_size)]
    torch.save({"val": val, "test": test}, out / "eval_sets.pt")
    return {
        "kind": cfg.kind,
        "width": width,
        "in_width": width + task.in_extra,
        "out_width": width + task.out_extra,
        "test_lengths": list(test_sizes),
        "counts": {"val": len(val), "test": len(test)},
    }


SUMMARIES = {
    "copy": "copy (§4.1): random 8-bit vectors, training lengths 1-20",
    "repeat-copy": "repeat copy (§4.2): 8-bit vectors, lengths 1-10, 1-10 repeats",
    "associative-recall": "associative recall (§4.3): 2-6 items of three 6-bit vectors, then a query",
    "ngrams": "dynamic N-grams (§4.4): 200 bits from a fresh 6-gram table per sequence",
    "priority-sort": "priority sort (§4.5): 20 8-bit vectors with priorities, the top 16 sorted",
}

for _kind in NTM_TASKS:
    DATASETS.add(
        f"ntm-{_kind}",
        DatasetSpec(
            name=f"ntm-{_kind}",
            task="memory",
            summary=f"NTM {SUMMARIES[_kind]} (Graves et al. 2014)",
            Config=NtmTaskConfig,
            build=lambda cfg, src, out, _k=_kind: build_ntm(NtmTaskConfig(**{**cfg.__dict__, "kind": _k}), src, out),
            default_name=lambda cfg, _k=_kind: f"ntm-{_k}",
            needs_source=False,
        ),
    )
