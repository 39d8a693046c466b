"""The algorithmic patterns of Joulin & Mikolov (2015) §5.1, generated on the fly from a seed.

Each example is one sequence of a pattern, read one symbol at a time and predicted one symbol ahead,
as in the paper's stream of concatenated sequences: the input starts with the symbol that ended the
previous sequence and the target ends with the symbol that starts the next one (for the counting
patterns always ``a``: predicting it is predicting where the sequence ends). Patterns (the paper's
Table 1 and §5.1; the generators follow the authors' ``task.h``):

* ``anbn``, ``anbncn``, ``anbncndn``: aⁿbⁿ, aⁿbⁿcⁿ, aⁿbⁿcⁿdⁿ;
* ``anb2n``: aⁿb²ⁿ;
* ``anbmcnm``: aⁿbᵐcⁿ⁺ᵐ with n + m the drawn length and 1 ≤ m < n + m;
* ``memorise``: n symbols from {b, c}, the separator ``a``, then the n symbols reversed;
* ``addition``: binary addition (§5.1, "Binary addition"; the authors' ``generate_addition`` in base 2),
  e.g. ``101+1=011.``: two numbers written most significant digit first, whose lengths add up to n
  (the first length uniform in [0, n]; a number of length 0 is written ``0``; otherwise its leading
  digit is 1), then their sum written in reverse (least significant digit first) and ``.``.

A sequence counts as correct only if every *deterministic* symbol is predicted (§5.1): for the
counting patterns every symbol after the first ``b`` (aⁿbᵐcⁿ⁺ᵐ: after the first ``c``) including the
next sequence's ``a``; for memorisation the reversed half; for addition the sum and its ``.``. Those
positions are ``scored``. Training is on every symbol (the paper's patterns are unsupervised: "we do
not have access to the boundary of any sequence"), except for addition, which the paper makes
supervised ("the location of the deterministic tokens is provided"; the authors' ``train_add.cpp``
back-propagates only from the symbols after ``=``): its ``trained`` positions are the scored ones.

Training draws n uniformly in [2, n_max(epoch)] with the authors' curriculum: n_max starts at 2 and
grows by one each epoch of ``train_size`` sequences up to ``max_n`` (``train_toy.cpp``: nmax =
min(e + 3, nmaxmax), exclusive). Validation draws n in [2, max(max_n, 19)] (the authors' validation
range); the test set holds ``test_per_n`` sequences at each n in [2, ``test_max_n``] (the paper tests
n up to 60), so lengths beyond training are scored. Validation and test sequences come from fixed
seeds, independent of the run's seed: every run is scored on the same sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from attn_cli.data.common import FixedItems, GeneratedDataModule
from attn_cli.errors import AttnError

# pattern -> its symbols, in the order of their ids (the vocabulary)
PATTERNS: dict[str, str] = {
    "anbn": "ab",
    "anbncn": "abc",
    "anbncndn": "abcd",
    "anb2n": "ab",
    "anbmcnm": "abc",
    "memorise": "abc",
    "addition": "+=.01",  # the authors' dictionary order: + = . then the digits
}
PLUS, EQUALS, END, DIGIT0 = range(4)  # the ids of addition's symbols ("+=.01")
SUPERVISED = ("addition",)  # trained on the deterministic symbols only (§5.1)
VAL_SEED, TEST_SEED = 1_000_003, 2_000_003


def _randint(lo: int, hi: int, gen: torch.Generator) -> int:
    """Uniform integer in [lo, hi]."""
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


def sequence(pattern: str, n: int, gen: torch.Generator) -> tuple[list[int], list[bool], int]:
    """One sequence of ``pattern`` at size ``n``: (symbols, scored, next first symbol).

    ``scored[i]`` says whether symbol i is deterministic given the symbols before it; the next
    sequence's first symbol is scored too for the counting patterns (the caller appends it)."""
    if pattern in ("anbn", "anbncn", "anbncndn"):
        k = len(PATTERNS[pattern])
        seq = [c for c in range(k) for _ in range(n)]
        return seq, [i > n for i in range(len(seq))], 0
    if pattern == "anb2n":
        seq = [0] * n + [1] * (2 * n)
        return seq, [i > n for i in range(len(seq))], 0
    if pattern == "anbmcnm":
        m = _randint(1, n - 1, gen)
        first = n - m
        seq = [0] * first + [1] * m + [2] * n
        return seq, [i > n for i in range(len(seq))], 0
    if pattern == "memorise":
        half = [_randint(1, 2, gen) for _ in range(n)]
        seq = [*half, 0, *reversed(half)]
        return seq, [i > n for i in range(len(seq))], _randint(1, 2, gen)
    if pattern == "addition":
        return addition(n, gen)
    raise AttnError(f"unknown pattern {pattern!r}; pick one of {', '.join(PATTERNS)}")


def _binary(length: int, gen: torch.Generator) -> list[int]:
    """A binary number of ``length`` digits, most significant first, as addition's symbol ids: leading digit 1,
    the others uniform; length 0 is the number 0 (the authors' ``generate_addition``)."""
    if length == 0:
        return [DIGIT0]
    return [DIGIT0 + 1] + [DIGIT0 + _randint(0, 1, gen) for _ in range(length - 1)]


def addition(n: int, gen: torch.Generator) -> tuple[list[int], list[bool], int]:
    """``x+y=`` then the sum least significant digit first and ``.``, the two numbers' lengths adding up to n:
    (symbols, scored, next first symbol). The scored symbols are the sum's digits and the ``.``; the next
    sequence's first digit is that of a fresh sequence of size n (``0`` when its first number has length 0)."""
    first = _randint(0, n, gen)
    x, y = _binary(first, gen), _binary(n - first, gen)
    total = int("".join(str(d - DIGIT0) for d in x), 2) + int("".join(str(d - DIGIT0) for d in y), 2)
    digits = [DIGIT0 + int(c) for c in reversed(f"{total:b}")]
    seq = [*x, PLUS, *y, EQUALS, *digits, END]
    start = len(x) + len(y) + 2  # the first digit of the sum
    nxt = DIGIT0 if _randint(0, n, gen) == 0 else DIGIT0 + 1
    return seq, [i >= start for i in range(len(seq))], nxt


def example(pattern: str, n: int, gen: torch.Generator) -> dict[str, Any]:
    """``inp`` (T,) the previous symbol then the sequence; ``tgt`` (T,) the sequence then the next sequence's
    first symbol; ``scored`` (T,) True where the target is deterministic; ``trained`` (T,) True where the
    training loss reads the target; ``n``."""
    seq, scored, nxt = sequence(pattern, n, gen)
    if pattern == "addition":
        last = END
    else:
        last = len(PATTERNS[pattern]) - 1 if pattern != "memorise" else _randint(1, 2, gen)
    next_scored = pattern not in ("memorise", "addition")  # only the counting patterns' next ``a`` is certain
    scored_t = torch.tensor([*scored, next_scored])
    return {
        "inp": torch.tensor([last, *seq]),
        "tgt": torch.tensor([*seq, nxt]),
        "scored": scored_t,
        "trained": scored_t if pattern in SUPERVISED else torch.ones_like(scored_t),
        "n": n,
    }


def curriculum_max(epoch: int, max_n: int) -> int:
    """The largest n drawn in training epoch ``epoch`` (Joulin & Mikolov's code: one more each epoch, from 2)."""
    return max(2, min(epoch + 2, max_n))


@dataclass(frozen=True)
class PatternsDataConfig:
    dataset: str = "anbn"  # the pattern: anbn, anbncn, anbncndn, anb2n, anbmcnm, memorise, addition
    max_n: int = 14  # largest n in training (the authors' script: -nmax 15, exclusive)
    curriculum: bool = True  # grow the largest n by one per epoch from 2 (else draw up to max_n from the start)
    train_size: int = 2000  # sequences per epoch (the authors' -nseq)
    val_size: int = 500
    test_max_n: int = 60  # test n = 2 .. test_max_n
    test_per_n: int = 20
    eval_batch_size: int = 128


class TrainPatterns(Dataset[dict[str, Any]]):
    """Training sequences drawn from ``(seed, index)``; the index carries the epoch (``epoch * size + i``),
    which sets the curriculum's largest n."""

    def __init__(self, cfg: PatternsDataConfig, seed: int) -> None:
        self.cfg, self.seed = cfg, seed

    def __len__(self) -> int:
        return self.cfg.train_size

    def __getitem__(self, i: int) -> dict[str, Any]:
        cfg = self.cfg
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        top = curriculum_max(i // cfg.train_size, cfg.max_n) if cfg.curriculum else cfg.max_n
        return {**example(cfg.dataset, _randint(2, top, gen), gen), "id": i}


def collate_patterns(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad to the longest: ``inp``/``tgt`` (B, T) (padding 0), ``mask`` (B, T) real symbols, ``scored`` and
    ``trained`` (B, T) (False on padding)."""
    t = max(len(x["inp"]) for x in items)
    b = len(items)
    inp = torch.zeros(b, t, dtype=torch.long)  # (B, T)
    tgt = torch.zeros(b, t, dtype=torch.long)  # (B, T)
    mask = torch.zeros(b, t, dtype=torch.bool)  # (B, T)
    scored = torch.zeros(b, t, dtype=torch.bool)  # (B, T)
    trained = torch.zeros(b, t, dtype=torch.bool)  # (B, T)
    for i, x in enumerate(items):
        n = len(x["inp"])
        inp[i, :n], tgt[i, :n], mask[i, :n] = x["inp"], x["tgt"], True
        scored[i, :n], trained[i, :n] = x["scored"], x["trained"]
    return {
        "inp": inp,
        "tgt": tgt,
        "mask": mask,
        "scored": scored,
        "trained": trained,
        "n": torch.tensor([x["n"] for x in items]),
        "ids": torch.tensor([x["id"] for x in items]),
    }


class PatternsDataModule(GeneratedDataModule):
    """No prepared files: every split is generated from its seed (training from the run's)."""

    train_collate = staticmethod(collate_patterns)
    eval_collate = staticmethod(collate_patterns)

    def __init__(self, cfg: PatternsDataConfig, batch_size: int, seed: int, num_workers: int = 0) -> None:
        super().__init__()
        if cfg.dataset not in PATTERNS:
            raise AttnError(f"unknown pattern {cfg.dataset!r}; set data.dataset to one of {', '.join(PATTERNS)}")
        if not 2 <= cfg.max_n <= cfg.test_max_n:
            raise AttnError(
                f"data.max_n={cfg.max_n} must be at least 2 and at most data.test_max_n={cfg.test_max_n}; "
                "set them so the test range covers training"
            )
        self.cfg, self.batch_size, self.seed, self.num_workers = cfg, batch_size, seed, num_workers
        self.meta = {"vocab": len(PATTERNS[cfg.dataset]), "pattern": cfg.dataset, "max_n": cfg.max_n}
        self.splits: dict[str, Dataset[dict[str, Any]]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        cfg = self.cfg
        gen = torch.Generator().manual_seed(VAL_SEED)
        val_top = max(cfg.max_n, 19)
        val = [example(cfg.dataset, _randint(2, val_top, gen), gen) for _ in range(cfg.val_size)]
        gen = torch.Generator().manual_seed(TEST_SEED)
        test = [example(cfg.dataset, n, gen) for n in range(2, cfg.test_max_n + 1) for _ in range(cfg.test_per_n)]
        self.splits = {"train": TrainPatterns(cfg, self.seed), "val": FixedItems(val), "test": FixedItems(test)}
