"""The RL-NTM's algorithmic tasks (Zaremba & Sutskever 2015, "Reinforcement Learning Neural Turing Machines -
Revised", arXiv:1505.00521, §5), generated on the fly from a seed.

Every example is an input tape and the output tape the model must write. Symbols: ``BLANK`` (what a head
reads off either end of the input tape), ``END`` (the ∅ that ends the input and the output), the repeat
counts of RepeatCopy, then ``symbols`` data symbols. C is the task's complexity, the number of data symbols:

* ``copy``: x₁…x_C∅ → x₁…x_C∅;
* ``duplicated-input``: x₁x₁x₁x₂x₂x₂…x_Cx_Cx_C∅ → x₁…x_C∅ (each symbol ``duplicates`` times; the authors'
  ``repeatInputCurriculum``);
* ``reverse``: x₁…x_C∅ → x_C…x₁∅ (the input head may move both ways);
* ``repeat-copy``: m x₁…x_C∅ → (x₁…x_C)^m ∅, the count m ∈ [1, ``max_repeats``] a symbol of its own at the
  front of the tape (the authors' ``repeatCopyN`` puts it there too);
* ``forward-reverse``: Reverse with an input head that may only stay or move forward (the authors'
  ``force_input_forward``), so the sequence has to go through the memory tape.

Training examples come with the paper's curriculum (§5.1, after Zaremba & Sutskever 2014 "Learning to
Execute", as the authors' ``train_curriculum0.lua`` does it): the complexity reached, D, rises by one
when the moving average of the per-symbol error of the examples drawn at D falls below a threshold;
each example draws e ~ Geometric(½) (P(e = k) = 2^-(k+1)) and takes, with probability 0.1, C uniform in
[1, ``max_length``]; else with probability 0.25 C uniform in [1, D + e]; else C = D + e (all clipped to
``max_length``). The level D is training state, kept by the task module (and in its checkpoints), so a
training batch is made from its example ids in the training step (:func:`curriculum_batch`): the
loader hands out ids only. Validation draws C uniformly in [1, ``max_length``]; the test set holds
``test_per_length`` examples at every C in [1, ``test_max_length``], so lengths beyond training are
scored. Both come from fixed seeds, whatever the run's seed.

A model gets ``steps`` = |input| + 2 |output| time steps for an example (ours: the paper does not give its
budget; it is enough for every task's program, RepeatCopy's 2mC included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from attn_cli.data.common import FixedItems, GeneratedDataModule
from attn_cli.errors import AttnError

BLANK, END = 0, 1  # off the input tape; the ∅ ending input and output
VAL_SEED, TEST_SEED = 3_000_017, 4_000_037
P_UNIFORM_ALL, P_UNIFORM_LEVEL = 0.1, 0.25  # the curriculum's mixture (train_curriculum0.lua)


@dataclass(frozen=True)
class TapesDataConfig:
    dataset: str = "copy"  # copy, duplicated-input, reverse, repeat-copy, forward-reverse
    symbols: int = 10  # data symbols
    max_length: int = 20  # the curriculum's largest complexity C (data symbols per sequence)
    curriculum: bool = True  # the paper's curriculum over C (else C uniform in [1, max_length] from the start)
    curriculum_threshold: float = 0.25  # advance when the average per-symbol error at the level is below this
    curriculum_decay: float = 0.8  # of that moving average (one value per update)
    curriculum_refractory: int = 100  # updates at least between two advances
    duplicates: int = 3  # duplicated-input: copies of each symbol on the input tape
    max_repeats: int = 3  # repeat-copy: the largest repeat count m
    train_size: int = 10000  # example ids per epoch
    val_size: int = 200
    test_max_length: int = 40  # test C = 1 .. test_max_length
    test_per_length: int = 10
    eval_batch_size: int = 100


def vocab_size(cfg: TapesDataConfig) -> int:
    """BLANK, END, the repeat counts 1..max_repeats, then the data symbols."""
    return first_symbol(cfg) + cfg.symbols


def first_symbol(cfg: TapesDataConfig) -> int:
    """The index of the first data symbol."""
    return 2 + cfg.max_repeats


def _count_symbol(m: int) -> int:
    return 1 + m  # counts 1..max_repeats follow END


def _data(cfg: TapesDataConfig, length: int, gen: torch.Generator) -> list[int]:
    first = first_symbol(cfg)
    return torch.randint(first, first + cfg.symbols, (length,), generator=gen).tolist()


def _copy(cfg: TapesDataConfig, xs: list[int], gen: torch.Generator) -> tuple[list[int], list[int]]:
    return xs, xs


def _duplicated(cfg: TapesDataConfig, xs: list[int], gen: torch.Generator) -> tuple[list[int], list[int]]:
    return [x for x in xs for _ in range(cfg.duplicates)], xs


def _reverse(cfg: TapesDataConfig, xs: list[int], gen: torch.Generator) -> tuple[list[int], list[int]]:
    return xs, xs[::-1]


def _repeat_copy(cfg: TapesDataConfig, xs: list[int], gen: torch.Generator) -> tuple[list[int], list[int]]:
    m = int(torch.randint(1, cfg.max_repeats + 1, (1,), generator=gen))
    return [_count_symbol(m), *xs], xs * m


Maker = Callable[[TapesDataConfig, list[int], torch.Generator], tuple[list[int], list[int]]]


@dataclass(frozen=True)
class TapeTask:
    make: Maker  # (config, data symbols, generator) -> (input tape without END, output without END)
    forward_only: bool = False  # the input head may not move left


TASKS: dict[str, TapeTask] = {
    "copy": TapeTask(_copy),
    "duplicated-input": TapeTask(_duplicated),
    "reverse": TapeTask(_reverse),
    "repeat-copy": TapeTask(_repeat_copy),
    "forward-reverse": TapeTask(_reverse, forward_only=True),
}


def example(cfg: TapesDataConfig, length: int, gen: torch.Generator) -> dict[str, Any]:
    """``inp`` (Tin,) the input tape ending in END; ``tgt`` (Tout,) the output ending in END; ``length`` C."""
    inp, out = TASKS[cfg.dataset].make(cfg, _data(cfg, length, gen), gen)
    return {"inp": torch.tensor([*inp, END]), "tgt": torch.tensor([*out, END]), "length": length}


def draw_length(level: int, max_length: int, gen: torch.Generator) -> tuple[int, bool]:
    """The curriculum's complexity C for one example at level D = ``level``, and whether it was drawn at D + e
    (the examples whose errors move the level, the authors' ``relevant_cases``)."""
    extra = 0
    while float(torch.rand((), generator=gen)) < 0.5:
        extra += 1
    top = min(level + extra, max_length)
    if float(torch.rand((), generator=gen)) < P_UNIFORM_ALL:
        return int(torch.randint(1, max_length + 1, (1,), generator=gen)), False
    if float(torch.rand((), generator=gen)) < P_UNIFORM_LEVEL:
        return int(torch.randint(1, top + 1, (1,), generator=gen)), False
    return top, True


def collate_tapes(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad to the longest: ``inp`` (B, Tin) and ``tgt`` (B, Tout) padded with BLANK, their lengths ``in_len`` and
    ``out_len`` (B,), the step budget ``steps`` (B,), ``length`` C (B,), ``relevant`` (B,) and ``ids`` (B,)."""
    b = len(items)
    inp = torch.full((b, max(len(x["inp"]) for x in items)), BLANK, dtype=torch.long)  # (B, Tin)
    tgt = torch.full((b, max(len(x["tgt"]) for x in items)), BLANK, dtype=torch.long)  # (B, Tout)
    for i, x in enumerate(items):
        inp[i, : len(x["inp"])], tgt[i, : len(x["tgt"])] = x["inp"], x["tgt"]
    in_len = torch.tensor([len(x["inp"]) for x in items])
    out_len = torch.tensor([len(x["tgt"]) for x in items])
    return {
        "inp": inp,
        "tgt": tgt,
        "in_len": in_len,
        "out_len": out_len,
        "steps": in_len + 2 * out_len,
        "length": torch.tensor([x["length"] for x in items]),
        "relevant": torch.tensor([bool(x.get("relevant", True)) for x in items]),
        "ids": torch.tensor([x["id"] for x in items]),
    }


def curriculum_batch(cfg: TapesDataConfig, seed: int, ids: torch.Tensor, level: int) -> dict[str, torch.Tensor]:
    """The training batch of example ids ``ids`` at curriculum level ``level``: example i comes from its own
    generator seeded by (``seed``, i), so a resumed run draws what the killed one would have."""
    items = []
    for i in ids.tolist():
        gen = torch.Generator().manual_seed(seed * 1_000_003 + int(i))
        if cfg.curriculum:
            length, relevant = draw_length(level, cfg.max_length, gen)
        else:
            length, relevant = int(torch.randint(1, cfg.max_length + 1, (1,), generator=gen)), True
        items.append({**example(cfg, length, gen), "relevant": relevant, "id": int(i)})
    return collate_tapes(items)


class TrainIds(Dataset[dict[str, Any]]):
    """Example ids only: the training step turns them into examples at the curriculum's current level."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"id": i}


def collate_ids(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {"ids": torch.tensor([x["id"] for x in items])}


class TapesDataModule(GeneratedDataModule):
    """No prepared files: validation and test are generated from fixed seeds, training in the training step."""

    train_collate = staticmethod(collate_ids)
    eval_collate = staticmethod(collate_tapes)

    def __init__(self, cfg: TapesDataConfig, batch_size: int, seed: int, num_workers: int = 0) -> None:
        super().__init__()
        if cfg.dataset not in TASKS:
            raise AttnError(f"unknown tape task {cfg.dataset!r}; set data.dataset to one of {', '.join(TASKS)}")
        if not 1 <= cfg.max_length <= cfg.test_max_length:
            raise AttnError(
                f"data.max_length={cfg.max_length} must be at least 1 and at most data.test_max_length="
                f"{cfg.test_max_length}; set them so the test lengths cover training"
            )
        if cfg.symbols < 2 or cfg.max_repeats < 1 or cfg.duplicates < 1:
            raise AttnError("data.symbols must be at least 2, data.max_repeats and data.duplicates at least 1")
        self.cfg, self.batch_size, self.seed, self.num_workers = cfg, batch_size, seed, num_workers
        self.meta = {
            "vocab": vocab_size(cfg),
            "tape_task": cfg.dataset,
            "forward_only": TASKS[cfg.dataset].forward_only,
            "max_length": cfg.max_length,
        }
        self.splits: dict[str, Dataset[dict[str, Any]]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        cfg = self.cfg
        gen = torch.Generator().manual_seed(VAL_SEED)
        lengths = torch.randint(1, cfg.max_length + 1, (cfg.val_size,), generator=gen).tolist()
        val = [example(cfg, n, gen) for n in lengths]
        gen = torch.Generator().manual_seed(TEST_SEED)
        test = [example(cfg, n, gen) for n in range(1, cfg.test_max_length + 1) for _ in range(cfg.test_per_length)]
        self.splits = {"train": TrainIds(cfg.train_size), "val": FixedItems(val), "test": FixedItems(test)}
