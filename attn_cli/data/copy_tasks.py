"""The NTM algorithmic tasks of Graves et al. (2014) §4.1-4.5, drawn from a seeded generator.

Copy (§4.1), repeat copy (§4.2), associative recall (§4.3), dynamic N-grams (§4.4) and priority
sort (§4.5). Each example is ``inp`` (T, in_width), ``tgt`` (T, out_width), ``out_mask`` (T,) True
where the output is scored, and ``length``: the task's size (sequence length, number of items or
bits), the x axis of the paper's generalisation figures. Training draws them on the fly
(:class:`attn_cli.data.memory.NtmDataset`) and ``data_prep.ntm_tasks`` fixes the validation and test
sets with the same functions, so they live in the runtime and the preparation layer imports them
(docs/architecture.md). The tasks are a registry (:data:`NTM_TASKS`), never a chain of ifs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from attn_cli.errors import AttnError

Example = dict[str, torch.Tensor]

ITEM_VECTORS = 3  # associative recall: vectors per item (§4.3)
NGRAM_CONTEXT = 5  # dynamic N-grams: 6-grams, i.e. the next bit given the previous five (§4.4)


@dataclass(frozen=True)
class NtmTask:
    """One task: its generator ``make(size, width, gen)`` and the paper's sizes.

    ``width`` is the paper's bits per vector; the input has ``in_extra`` channels more (delimiters,
    counts, priorities) and the output ``out_extra`` (repeat copy's end marker).
    """

    make: Callable[[int, int, torch.Generator], Example]
    width: int
    sizes: tuple[int, int]  # training sizes (inclusive), also the validation set's
    test_sizes: tuple[int, ...]
    in_extra: int
    out_extra: int
    size_name: str  # what ``length`` counts, for figure axes
    smallest: int = 1  # the least size with something to score
    fixed_width: bool = False  # True: the width is part of the task (N-grams are single bits)


def _copy(length: int, width: int, gen: torch.Generator) -> Example:
    """§4.1: the sequence, a delimiter on its own channel, then the sequence again with no input."""
    seq = torch.randint(0, 2, (length, width), generator=gen).float()  # (L, W)
    total = 2 * length + 1
    inp = torch.zeros(total, width + 2)  # (T, W+2)
    inp[:length, :width] = seq
    inp[length, width] = 1.0  # delimiter
    tgt = torch.zeros(total, width + 1)  # (T, W+1)
    tgt[length + 1 :, :width] = seq
    mask = torch.zeros(total, dtype=torch.bool)  # (T,)
    mask[length + 1 :] = True
    return {"inp": inp, "tgt": tgt, "out_mask": mask}


def _repeat_copy(length: int, width: int, gen: torch.Generator) -> Example:
    """§4.2: the sequence, then the repeat count (1-10, divided by 10) beside the delimiter; the target is the
    sequence that many times and an end marker on an extra output channel."""
    repeats = int(torch.randint(1, 11, (1,), generator=gen))
    seq = torch.randint(0, 2, (length, width), generator=gen).float()  # (L, W)
    out_len = length * repeats + 1
    total = length + 1 + out_len
    inp = torch.zeros(total, width + 2)  # (T, W+2)
    inp[:length, :width] = seq
    inp[length, width + 1] = repeats / 10.0
    inp[length, width] = 1.0
    tgt = torch.zeros(total, width + 1)  # (T, W+1)
    tgt[length + 1 : length + 1 + length * repeats, :width] = seq.repeat(repeats, 1)
    tgt[-1, width] = 1.0  # end marker
    mask = torch.zeros(total, dtype=torch.bool)  # (T,)
    mask[length + 1 :] = True
    return {"inp": inp, "tgt": tgt, "out_mask": mask}


def _associative_recall(items: int, width: int, gen: torch.Generator) -> Example:
    """§4.3: ``items`` items of three ``width``-bit vectors, each opened by a delimiter (channel W); then a
    query item between two query delimiters (channel W+1); the target is the item that followed it."""
    vecs = torch.randint(0, 2, (items, ITEM_VECTORS, width), generator=gen).float()  # (I, 3, W)
    query = int(torch.randint(0, items - 1, (1,), generator=gen))  # any item but the last has a successor
    step = ITEM_VECTORS + 1
    start = items * step  # the query delimiter
    total = start + ITEM_VECTORS + 2 + ITEM_VECTORS
    inp = torch.zeros(total, width + 2)  # (T, W+2)
    for i in range(items):
        inp[i * step, width] = 1.0
        inp[i * step + 1 : (i + 1) * step, :width] = vecs[i]
    inp[start, width + 1] = 1.0
    inp[start + 1 : start + 1 + ITEM_VECTORS, :width] = vecs[query]
    inp[start + 1 + ITEM_VECTORS, width + 1] = 1.0
    answer = start + ITEM_VECTORS + 2
    tgt = torch.zeros(total, width)  # (T, W)
    tgt[answer:] = vecs[query + 1]
    mask = torch.zeros(total, dtype=torch.bool)  # (T,)
    mask[answer:] = True
    return {"inp": inp, "tgt": tgt, "out_mask": mask}


def ngram_optimal_bits(bits: list[int]) -> float:
    """The Bayes-optimal cost (bits) of predicting ``bits[5:]`` one at a time (§4.4, Eq. 10): with each
    context's probability drawn from Beta(1/2, 1/2), P(1 | N1, N0, c) = (N1 + 1/2) / (N1 + N0 + 1), where
    N1, N0 count the ones and zeros seen so far after the same five-bit context c."""
    counts: dict[tuple[int, ...], list[int]] = {}
    cost = 0.0
    for t in range(NGRAM_CONTEXT, len(bits)):
        n0, n1 = counts.setdefault(tuple(bits[t - NGRAM_CONTEXT : t]), [0, 0])
        p1 = (n1 + 0.5) / (n1 + n0 + 1)
        cost -= math.log2(p1 if bits[t] else 1 - p1)
        counts[tuple(bits[t - NGRAM_CONTEXT : t])][bits[t]] += 1
    return cost


def _ngrams(length: int, width: int, gen: torch.Generator) -> Example:
    """§4.4: a fresh 6-gram table per sequence (32 probabilities from Beta(1/2, 1/2)) generates ``length`` bits;
    the network sees one bit per step and predicts the next. The first five bits (uniform) have no full
    context and are not scored. ``optimal_bits`` is :func:`ngram_optimal_bits` of the sequence."""
    # Beta(1/2, 1/2) is the arcsine law: sin²(πU/2) for U uniform, so the generator alone fixes the table
    probs = torch.sin(math.pi / 2 * torch.rand(2**NGRAM_CONTEXT, generator=gen)) ** 2  # (32,)
    draws = torch.rand(length, generator=gen).tolist()
    bits = [int(u < 0.5) for u in draws[:NGRAM_CONTEXT]]
    for t in range(NGRAM_CONTEXT, length):
        ctx = int("".join(map(str, bits[t - NGRAM_CONTEXT : t])), 2)
        bits.append(int(draws[t] < float(probs[ctx])))
    seq = torch.tensor(bits, dtype=torch.float32)[:, None]  # (L, 1)
    mask = torch.zeros(length - 1, dtype=torch.bool)  # (T,) step t predicts bit t+1
    mask[NGRAM_CONTEXT - 1 :] = True
    return {
        "inp": seq[:-1],
        "tgt": seq[1:],
        "out_mask": mask,
        "optimal_bits": torch.tensor(ngram_optimal_bits(bits)),
    }


def _priority_sort(length: int, width: int, gen: torch.Generator) -> Example:
    """§4.5: ``length`` random vectors, each with a priority drawn from U[-1, 1] on channel W+1, then a
    delimiter; the target is the 4/5 of them with the highest priorities (16 of 20), highest first."""
    keep = length * 4 // 5
    vecs = torch.randint(0, 2, (length, width), generator=gen).float()  # (L, W)
    priority = torch.rand(length, generator=gen) * 2 - 1  # (L,)
    total = length + 1 + keep
    inp = torch.zeros(total, width + 2)  # (T, W+2)
    inp[:length, :width] = vecs
    inp[:length, width + 1] = priority
    inp[length, width] = 1.0
    tgt = torch.zeros(total, width)  # (T, W)
    tgt[length + 1 :] = vecs[priority.argsort(descending=True)[:keep]]
    mask = torch.zeros(total, dtype=torch.bool)  # (T,)
    mask[length + 1 :] = True
    return {"inp": inp, "tgt": tgt, "out_mask": mask}


NTM_TASKS: dict[str, NtmTask] = {
    "copy": NtmTask(_copy, 8, (1, 20), tuple(range(10, 130, 10)), 2, 1, "sequence length"),
    "repeat-copy": NtmTask(_repeat_copy, 8, (1, 10), (5, 10, 15, 20), 2, 1, "sequence length"),
    "associative-recall": NtmTask(
        _associative_recall, 6, (2, 6), (2, 4, 6, 8, 10, 12, 15, 20), 2, 0, "items", smallest=2
    ),
    "ngrams": NtmTask(_ngrams, 1, (200, 200), (200,), 0, 0, "bits", smallest=NGRAM_CONTEXT + 1, fixed_width=True),
    "priority-sort": NtmTask(_priority_sort, 8, (20, 20), (20,), 2, 0, "input vectors", smallest=2),
}


def check(kind: str, width: int, smallest: int) -> None:
    """Refuse sizes or widths the task cannot be posed with (raised before any file or batch is made)."""
    task = NTM_TASKS[kind]
    if smallest < task.smallest:
        raise AttnError(
            f"ntm-{kind} needs at least {task.smallest} {task.size_name}, not {smallest}; "
            f"raise data.min_len (or the test lengths) to {task.smallest} or more"
        )
    if task.fixed_width and width != task.width:
        raise AttnError(f"ntm-{kind} has width {task.width}, not {width}; prepare it without --set width")


def sample(kind: str, length: int, width: int, gen: torch.Generator) -> Example:
    """One example of ``kind`` at size ``length`` with ``width``-bit vectors, and its ``length``."""
    return {**NTM_TASKS[kind].make(length, width, gen), "length": torch.tensor(length)}


def draw(kind: str, width: int, gen: torch.Generator, min_len: int, max_len: int) -> Example:
    """One example with its size drawn uniformly from ``min_len`` … ``max_len``."""
    length = int(torch.randint(min_len, max_len + 1, (1,), generator=gen))
    return sample(kind, length, width, gen)
