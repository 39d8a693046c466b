"""The handwriting datamodule: prepared lines of pen offsets and their text (:mod:`attn_cli.data.strokes`).

Batch: ``inp`` (B, T, 3) offsets x₁..x_T, ``tgt`` (B, T, 3) the next offsets x₂..x_{T+1}, ``mask`` (B, T) bool
(True: a real target), ``chars`` (B, U) character ids (0 padding, 1 a character outside the alphabet, 2.. the
alphabet), ``char_len`` (B,), ``ids`` (B,) the line's index in its split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from attn_cli.data.base import AttnDataModule
from attn_cli.data.common import eval_loader, train_loader
from attn_cli.data.prepared import require_prepared
from attn_cli.data.strokes import read_split
from attn_cli.errors import AttnError
from attn_cli.io import read_jsonl

PAD, UNKNOWN = 0, 1


@dataclass(frozen=True)
class HandwritingDataConfig:
    dataset: str = "hershey-lines"  # hershey-lines, iam-ondb or hershey-tiny (attn prepare handwriting --dataset ...)
    max_chars: int = 0  # 0: every line; else lines with more characters are left out (every split)
    max_points: int = 0  # 0: every line; else lines with more points are left out (every split)
    n_train: int = 0  # 0: every training line; else the first N that pass the filters
    n_eval: int = 0  # 0: every validation / test line; else the first N
    eval_batch_size: int = 32


def encode(text: str, alphabet: str) -> list[int]:
    """Character ids of ``text``: 2 + its index in ``alphabet``, :data:`UNKNOWN` for a character outside it."""
    index = {c: i + 2 for i, c in enumerate(alphabet)}
    return [index.get(c, UNKNOWN) for c in text]


class LineDataset(Dataset):
    """The lines of one split that pass the recipe's filters, each as offsets and character ids."""

    def __init__(self, points: np.ndarray, index: np.ndarray, rows: list[dict[str, Any]], alphabet: str,
                 keep: list[int]) -> None:  # fmt: skip
        self.points, self.index, self.rows, self.alphabet, self.keep = points, index, rows, alphabet, keep

    def __len__(self) -> int:
        return len(self.keep)

    def offsets(self, i: int) -> np.ndarray:
        j = self.keep[i]
        return self.points[self.index[j] : self.index[j + 1]]

    def text(self, i: int) -> str:
        return str(self.rows[self.keep[i]]["text"])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "offsets": torch.from_numpy(np.array(self.offsets(i))),
            "chars": encode(self.text(i), self.alphabet),
            "id": i,
        }

    def lengths(self) -> list[int]:
        return [int(self.index[j + 1] - self.index[j]) for j in self.keep]


def collate_lines(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    b = len(items)
    t = max(len(x["offsets"]) for x in items) - 1
    u = max(1, max(len(x["chars"]) for x in items))
    inp = torch.zeros(b, t, 3)  # (B, T, 3)
    tgt = torch.zeros(b, t, 3)  # (B, T, 3)
    mask = torch.zeros(b, t, dtype=torch.bool)  # (B, T)
    chars = torch.zeros(b, u, dtype=torch.long)  # (B, U)
    for i, x in enumerate(items):
        n = len(x["offsets"]) - 1
        inp[i, :n], tgt[i, :n], mask[i, :n] = x["offsets"][:-1], x["offsets"][1:], True
        chars[i, : len(x["chars"])] = torch.tensor(x["chars"], dtype=torch.long)
    return {
        "inp": inp,
        "tgt": tgt,
        "mask": mask,
        "chars": chars,
        "char_len": torch.tensor([len(x["chars"]) for x in items]),
        "ids": torch.tensor([x["id"] for x in items]),
    }


class HandwritingDataModule(AttnDataModule):
    def __init__(self, cfg: HandwritingDataConfig, data_dir: Path, batch_size: int, seed: int, num_workers: int = 0):
        super().__init__()
        for name in ("max_chars", "max_points", "n_train", "n_eval"):
            if getattr(cfg, name) < 0:
                raise AttnError(f"data.{name}={getattr(cfg, name)} is invalid: it must be 0 (no limit) or more")
        self.cfg, self.data_dir, self.batch_size, self.seed, self.num_workers = (
            cfg,
            data_dir,
            batch_size,
            seed,
            num_workers,
        )
        hint = (
            "attn prepare handwriting --dataset hershey-lines --source ../shared/data/multi30k/task1"
            if cfg.dataset == "hershey-lines"
            else f"attn prepare handwriting --dataset {cfg.dataset}"
            + (" --source DIR (lineStrokes-all.tar.gz, ascii-all.tar.gz)" if cfg.dataset == "iam-ondb" else "")
        )
        self.manifest = require_prepared(data_dir, cfg.dataset, hint)
        if self.manifest.get("task") != "handwriting":
            raise AttnError(f"dataset {cfg.dataset!r} is not a handwriting dataset; prepare hershey-lines or iam-ondb")
        self.alphabet = str(self.manifest["alphabet"])
        self.meta = {"alphabet": self.alphabet, "scale": list(self.manifest["scale"])}
        self.splits: dict[str, LineDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        root = self.data_dir / self.cfg.dataset
        for split in self.split_names():
            points, index = read_split(root, split)
            rows = read_jsonl(root / f"{split}.jsonl")
            keep = [
                j
                for j, row in enumerate(rows)
                if (not self.cfg.max_chars or len(row["text"]) <= self.cfg.max_chars)
                and (not self.cfg.max_points or index[j + 1] - index[j] <= self.cfg.max_points)
            ]
            limit = self.cfg.n_train if split == "train" else self.cfg.n_eval
            if limit:
                keep = keep[:limit]
            if not keep:
                raise AttnError(
                    f"no {split} line of {self.cfg.dataset} passes data.max_chars={self.cfg.max_chars} / "
                    f"data.max_points={self.cfg.max_points}; raise them (0: no limit)"
                )
            self.splits[split] = LineDataset(points, index, rows, self.alphabet, keep)

    def dataset(self, split: str) -> LineDataset:
        """Split ``split`` as a dataset (read by :meth:`setup`)."""
        return self.splits[split]

    def train_dataloader(self) -> Any:
        ds = self.splits["train"]
        return train_loader(
            ds, self.batch_size, self.seed, collate_lines, lengths=ds.lengths(), num_workers=self.num_workers
        )

    def val_dataloader(self) -> Any:
        return self.split_loader("val")

    def split_loader(self, split: str) -> Any:
        ds = self.splits[split]
        return eval_loader(
            ds, self.cfg.eval_batch_size, collate_lines, lengths=ds.lengths(), num_workers=self.num_workers
        )
