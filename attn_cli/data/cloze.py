"""The cloze datamodule for the readers: ``doc`` (B, Td), ``doc_len``, ``query`` (B, Tq), ``q_len``,
``answer`` (B,) entity number, ``cand`` (B, E) bool (entities in the document), ``ids``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from attn_cli.data.base import AttnDataModule
from attn_cli.data.common import eval_loader, train_loader
from attn_cli.data.prepared import require_prepared
from attn_cli.io import read_jsonl


@dataclass(frozen=True)
class ClozeDataConfig:
    dataset: str = "cloze-multi30k"
    eval_batch_size: int = 128
    max_doc_len: int = 0  # truncate documents (tokens); 0 keeps all (CNN documents run to ~2,000)


class ClozeDataset(Dataset):
    def __init__(self, rows: list[dict], w: dict[str, int], max_doc: int) -> None:
        self.rows, self.w, self.max_doc = rows, w, max_doc

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.rows[i]
        doc = r["doc"][: self.max_doc] if self.max_doc else r["doc"]
        unk = self.w["<unk>"]
        return {
            "doc": [self.w.get(t, unk) for t in doc],
            "query": [self.w.get(t, unk) for t in r["question"]],
            "answer": int(r["answer"][7:]),
            "cands": sorted({int(t[7:]) for t in doc if t.startswith("@entity")}),
            "id": i,
        }


def collate_cloze(items: list[dict[str, Any]], entities: int) -> dict[str, torch.Tensor]:
    b = len(items)
    td, tq = max(len(x["doc"]) for x in items), max(len(x["query"]) for x in items)
    doc, query = torch.zeros(b, td, dtype=torch.long), torch.zeros(b, tq, dtype=torch.long)
    cand = torch.zeros(b, entities, dtype=torch.bool)
    for i, x in enumerate(items):
        doc[i, : len(x["doc"])] = torch.tensor(x["doc"])
        query[i, : len(x["query"])] = torch.tensor(x["query"])
        cand[i, x["cands"]] = True
    return {
        "doc": doc,
        "doc_len": torch.tensor([len(x["doc"]) for x in items]),
        "query": query,
        "q_len": torch.tensor([len(x["query"]) for x in items]),
        "answer": torch.tensor([x["answer"] for x in items]),
        "cand": cand,
        "ids": torch.tensor([x["id"] for x in items]),
    }


class ClozeDataModule(AttnDataModule):
    def __init__(self, cfg: ClozeDataConfig, data_dir: Path, batch_size: int, seed: int, num_workers: int = 0):
        super().__init__()
        self.cfg, self.data_dir, self.batch_size, self.seed, self.num_workers = (
            cfg, data_dir, batch_size, seed, num_workers,
        )  # fmt: skip
        hint = f"attn prepare {cfg.dataset} --source ..."
        if cfg.dataset == "cloze-multi30k":
            hint = "attn prepare cloze-multi30k --source ../shared/data/multi30k/task2"
        require_prepared(data_dir, cfg.dataset, hint)
        vocab = json.loads((data_dir / cfg.dataset / "vocab.json").read_text(encoding="utf-8"))
        self.words, self.n_entities = vocab["words"], int(vocab["entities"])
        self.meta = {
            "kind": "cloze",
            "vocab": len(self.words),
            "entities": self.n_entities,
            "entity_offset": self.words.index("@entity0"),
        }
        self.splits: dict[str, ClozeDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        w = {t: i for i, t in enumerate(self.words)}
        for split in self.split_names():
            rows = read_jsonl(self.data_dir / self.cfg.dataset / f"{split}.jsonl")
            self.splits[split] = ClozeDataset(rows, w, self.cfg.max_doc_len)

    def collate(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return collate_cloze(items, self.n_entities)

    def train_dataloader(self) -> Any:
        ds = self.splits["train"]
        lengths = [len(r["doc"]) for r in ds.rows]
        return train_loader(ds, self.batch_size, self.seed, self.collate, lengths=lengths, num_workers=self.num_workers)

    def val_dataloader(self) -> Any:
        return self.split_loader("val")

    def dataset(self, split: str) -> ClozeDataset:
        """Split ``split`` as a dataset (read by :meth:`setup`)."""
        return self.splits[split]

    def split_loader(self, split: str) -> Any:
        ds = self.splits[split]
        lengths = [len(r["doc"]) for r in ds.rows]
        return eval_loader(ds, self.cfg.eval_batch_size, self.collate, lengths=lengths, num_workers=self.num_workers)
