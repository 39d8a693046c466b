"""Datamodules of the memory family: bAbI stories (MemN2N, DMN) and NTM algorithmic sequences.

bAbI batch: ``story`` (B, M, L) word ids (the last ``memory_size`` statements, oldest first),
``story_len`` (B,), ``question`` (B, Lq), ``answer`` (B,), ``supporting`` (B, M) long (0 for a
statement that supports nothing, k for the k-th supporting fact in the order bAbI lists them, which is
the order of reasoning: DMN supervises pass k with the k-th), ``task`` (B,), ``ids`` (B,). NTM batch:
``inp`` (B, T, I), ``tgt`` (B, T, O) (I, O: the task's ``in_width``, ``out_width``; copy W+2, W+1),
``out_mask`` (B, T), ``length`` (B,), ``ids`` (B,), and on dynamic N-grams ``optimal_bits`` (B,).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from attn_cli.data.babi_tasks import parse_tasks
from attn_cli.data.base import AttnDataModule
from attn_cli.data.common import FixedItems, eval_loader, train_loader
from attn_cli.data.copy_tasks import NTM_TASKS, check, draw
from attn_cli.data.prepared import require_prepared
from attn_cli.errors import AttnError
from attn_cli.io import read_jsonl


@dataclass(frozen=True)
class MemoryDataConfig:
    dataset: str = "babi-1k"  # a prepared bAbI set (babi-1k, babi-10k, babi-gen) or ntm-copy, ntm-ngrams, ...
    tasks: str = "all"  # bAbI: "all" (joint training) or e.g. "1" (per-task) or "1,2,4-20"
    memory_size: int = 50  # bAbI: the most recent statements kept as memories (Sukhbaatar et al. §4.2)
    eval_batch_size: int = 128
    train_size: int = 200_000  # NTM: sequences per "epoch", drawn from (seed, index)
    min_len: int = 1  # NTM training sizes (Graves et al.: copy lengths 1-20, associative recall 2-6 items)
    max_len: int = 20


class BabiDataset(Dataset):
    def __init__(self, rows: list[dict[str, Any]], word_ids: dict[str, int], answers: dict[str, int], mem: int):
        self.rows, self.w, self.a, self.mem = rows, word_ids, answers, mem

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ex = self.rows[i]
        start = max(0, len(ex["story"]) - self.mem)
        story = ex["story"][start:] or [[]]
        unk = self.w["<unk>"]
        return {
            "story": [[self.w.get(t, unk) for t in s] for s in story],
            "question": [self.w.get(t, unk) for t in ex["question"]],
            "answer": self.a.get(ex["answer"], 0),
            "supporting": [j - start for j in ex["supporting"]],  # in bAbI's order; < 0: out of memory
            "task": ex["task"],
            "id": i,
        }


def collate_babi(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    b = len(items)
    m = max(len(x["story"]) for x in items)
    length = max(1, max(len(s) for x in items for s in x["story"]))
    lq = max(len(x["question"]) for x in items)
    story = torch.zeros(b, m, length, dtype=torch.long)  # (B, M, L)
    question = torch.zeros(b, lq, dtype=torch.long)  # (B, Lq)
    supporting = torch.zeros(b, m, dtype=torch.long)  # (B, M): k for the k-th supporting fact, else 0
    for i, x in enumerate(items):
        for j, s in enumerate(x["story"]):
            story[i, j, : len(s)] = torch.tensor(s, dtype=torch.long)
        question[i, : len(x["question"])] = torch.tensor(x["question"], dtype=torch.long)
        for k, j in enumerate(x["supporting"], 1):
            if j >= 0:  # a supporting fact older than the kept memories has no slot; its rank stays unused
                supporting[i, j] = k
    return {
        "story": story,
        "story_len": torch.tensor([len(x["story"]) for x in items]),
        "question": question,
        "answer": torch.tensor([x["answer"] for x in items]),
        "supporting": supporting,
        "task": torch.tensor([x["task"] for x in items]),
        "ids": torch.tensor([x["id"] for x in items]),
    }


class NtmDataset(Dataset):
    """Training sequences drawn from ``(seed, index)``: the same index always gives the same sequence."""

    def __init__(self, kind: str, width: int, n: int, seed: int, min_len: int, max_len: int) -> None:
        self.kind, self.width, self.n, self.seed, self.min_len, self.max_len = kind, width, n, seed, min_len, max_len

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return {**draw(self.kind, self.width, gen, self.min_len, self.max_len), "id": i}


def collate_seq(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    t = max(x["inp"].size(0) for x in items)
    b = len(items)
    inp = torch.zeros(b, t, items[0]["inp"].size(1))  # (B, T, W+2)
    tgt = torch.zeros(b, t, items[0]["tgt"].size(1))  # (B, T, W+1)
    mask = torch.zeros(b, t, dtype=torch.bool)  # (B, T)
    for i, x in enumerate(items):
        n = x["inp"].size(0)
        inp[i, :n], tgt[i, :n], mask[i, :n] = x["inp"], x["tgt"], x["out_mask"]
    batch = {
        "inp": inp,
        "tgt": tgt,
        "out_mask": mask,
        "length": torch.stack([torch.as_tensor(x["length"]) for x in items]),
        "ids": torch.tensor([x["id"] for x in items]),
    }
    if "optimal_bits" in items[0]:  # dynamic N-grams: the Bayes-optimal cost of each sequence (B,)
        batch["optimal_bits"] = torch.stack([x["optimal_bits"] for x in items])
    return batch


class MemoryDataModule(AttnDataModule):
    def __init__(self, cfg: MemoryDataConfig, data_dir: Path, batch_size: int, seed: int, num_workers: int = 0):
        super().__init__()
        self.cfg, self.data_dir, self.batch_size, self.seed, self.num_workers = (
            cfg,
            data_dir,
            batch_size,
            seed,
            num_workers,
        )
        hint = (
            f"attn prepare {cfg.dataset}"
            if not cfg.dataset.startswith("babi-") or cfg.dataset == "babi-gen"
            else f"attn prepare babi --source ../shared/data/babi/tasks_1-20_v1-2.tar.gz --set size={cfg.dataset[5:]}"
        )
        self.manifest = require_prepared(data_dir, cfg.dataset, hint)
        self.kind = "seq" if "width" in self.manifest else "qa"
        if self.manifest.get("dataset") == "babi" and self.manifest.get("val_split") != "stories":
            # data_prep.babi before 2026-12-06 held out questions, not stories: validation shared its
            # stories (and often question and answer) with training and read far below test error
            raise AttnError(
                f"dataset {cfg.dataset} was prepared with the old validation split (questions whose stories "
                f"also train, a leak); prepare it again: `{hint} --force`"
            )
        self.splits: dict[str, Dataset] = {}
        if self.kind == "qa":
            vocab = json.loads((data_dir / cfg.dataset / "vocab.json").read_text(encoding="utf-8"))
            self.words, self.answers = vocab["words"], vocab["answers"]
            self.tasks = parse_tasks(cfg.tasks)
            missing = [n for n in self.tasks if n not in self.manifest["tasks"]]
            if missing and cfg.tasks != "all":
                raise AttnError(
                    f"dataset {cfg.dataset} has no task {missing[0]} (prepared: {self.manifest['tasks']}); "
                    f"prepare it or pick another with --set data.tasks=..."
                )
            self.tasks = [n for n in self.tasks if n in self.manifest["tasks"]]
            self.rows: dict[str, list[dict[str, Any]]] = {"train": self._read("train")}
            self.meta = {
                "kind": "qa",
                "vocab": len(self.words),
                "answers": len(self.answers),
                "max_story": cfg.memory_size,
                # the memory slots of MemN2N's release: min(memory_size, the longest training story in statements)
                "memory_slots": min(cfg.memory_size, max((len(r["story"]) for r in self.rows["train"]), default=1)),
                "max_sentence": int(self.manifest.get("max_sentence_len", 12)),
                # the longest training statement or question of these tasks: J of MemN2N's release PE
                "max_words": max((len(s) for r in self.rows["train"] for s in [*r["story"], r["question"]]), default=1),
            }
        else:
            kind, width = self.manifest["kind"], int(self.manifest["width"])
            check(kind, width, cfg.min_len)
            self.meta = {
                "kind": "seq",
                "width": width,
                "in_width": width + NTM_TASKS[kind].in_extra,
                "out_width": width + NTM_TASKS[kind].out_extra,
                "task_kind": kind,
            }

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if self.kind == "qa":
            w = {t: i for i, t in enumerate(self.words)}
            a = {t: i for i, t in enumerate(self.answers)}
            for split in self.split_names():
                rows = self.rows[split] if split in self.rows else self._read(split)
                self.splits[split] = BabiDataset(rows, w, a, self.cfg.memory_size)
        else:
            # plain tensors in dicts and lists (data_prep.ntm_tasks): weights_only needs nothing more, and
            # a full unpickle of a prepared file someone sends you could run code
            path = self.data_dir / self.cfg.dataset / "eval_sets.pt"
            try:
                sets = torch.load(path, weights_only=True)
            except Exception as err:  # damaged zip, or pickled objects beyond tensors (refused)
                raise AttnError(
                    f"{path} is damaged or holds more than tensors ({type(err).__name__}); "
                    f"prepare {self.cfg.dataset} again with --force"
                ) from err
            c = self.cfg
            self.splits["train"] = NtmDataset(
                self.manifest["kind"], self.meta["width"], c.train_size, self.seed, c.min_len, c.max_len
            )
            self.splits["val"], self.splits["test"] = FixedItems(sets["val"]), FixedItems(sets["test"])

    def _read(self, split: str) -> list[dict[str, Any]]:
        """The rows of ``split`` of every selected bAbI task, task by task."""
        rows: list[dict[str, Any]] = []
        for n in self.tasks:
            rows += read_jsonl(self.data_dir / self.cfg.dataset / f"qa{n}" / f"{split}.jsonl")
        return rows

    @property
    def collate(self) -> Any:
        return collate_babi if self.kind == "qa" else collate_seq

    def train_dataloader(self) -> Any:
        return train_loader(
            self.splits["train"], self.batch_size, self.seed, self.collate, num_workers=self.num_workers
        )

    def val_dataloader(self) -> Any:
        return self.split_loader("val")

    def dataset(self, split: str) -> Dataset:
        """Split ``split`` as a dataset (read by :meth:`setup`)."""
        return self.splits[split]

    def split_loader(self, split: str) -> Any:
        return eval_loader(self.splits[split], self.cfg.eval_batch_size, self.collate, num_workers=self.num_workers)
