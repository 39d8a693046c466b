"""The NTM copy and repeat-copy sequences of Graves et al. (2014) §4.1-4.2, drawn from a generator.

Training draws them on the fly (:class:`attn_cli.data.memory.NtmDataset`) and ``data_prep.ntm_tasks`` fixes
the validation and test sets with the same functions, so they live in the runtime and the preparation layer
imports them (docs/architecture.md).
"""

from __future__ import annotations

import torch


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
