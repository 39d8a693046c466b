"""The reader task: cloze reading comprehension (Hermann et al. 2015, "Teaching Machines to Read and
Comprehend"): the Deep LSTM, Attentive and Impatient Readers on CNN/Daily Mail-style cloze questions.

A task of its own, beside ``memory``, because its data are documents with anonymised entities
(:mod:`attn_cli.data.cloze`): the answer is one of the entities of the document, the metric is
``accuracy`` (% of questions) with the mean cross-entropy as ``loss``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from attn_cli.config import Recipe
from attn_cli.data.cloze import ClozeDataConfig, ClozeDataModule
from attn_cli.errors import AttnError
from attn_cli.registry import TASKS
from attn_cli.tasks.base import AttnModule, Task


@dataclass(frozen=True)
class ReaderEvalConfig:
    """Nothing to choose: every question is scored over all its document's entities."""


def accuracy_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Cloze questions: % answered correctly and the mean cross-entropy (what a record recomputes)."""
    return {
        "accuracy": 100.0 * sum(bool(r["correct"]) for r in rows) / len(rows),
        "loss": sum(r["nll"] for r in rows) / len(rows),
    }


class ReaderModule(AttnModule):
    """Cross-entropy over the document's entities (the candidates), scored by accuracy."""

    def _forward(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, Any], torch.Tensor]:
        out = self.model(batch["doc"], batch["doc_len"], batch["query"], batch["q_len"], batch["cand"])
        return out, F.cross_entropy(out["logits"], batch["answer"], reduction="none")

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        _, nll = self._forward(batch)
        loss = nll.mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    def predict_rows(self, batch: dict[str, torch.Tensor], split: str, *, final: bool = True) -> list[dict[str, Any]]:
        out, nll = self._forward(batch)
        pred = out["logits"].argmax(-1)
        return [
            {
                "id": int(batch["ids"][i]),
                "pred": f"@entity{int(pred[i])}",
                "answer": f"@entity{int(batch['answer'][i])}",
                "correct": bool(pred[i] == batch["answer"][i]),
                "nll": float(nll[i]),
            }
            for i in range(len(batch["ids"]))
        ]

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        return accuracy_metrics(rows)


class ReaderTask(Task):
    name = "reader"
    summary = "cloze reading comprehension: Deep LSTM, Uniform, Attentive and Impatient Readers"
    data_config = ClozeDataConfig
    eval_config = ReaderEvalConfig
    module_class = ReaderModule
    metric_units = {"accuracy": "% of cloze questions", "loss": "nats per question"}

    def datamodule(self, recipe: Recipe, data_dir: Path) -> ClozeDataModule:
        t = recipe.train
        return ClozeDataModule(recipe.data, data_dir, t.batch_size, t.seed, t.num_workers)

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        """Hermann et al. Fig. 3: the document's tokens shaded by the reader's attention
        (:func:`attn_cli.viz.reader.document_attention`)."""
        from attn_cli.viz.reader import document_attention

        if not getattr(module.model, "attends", True):
            raise AttnError("the Deep LSTM Reader has no attention to draw; visualise an attentive or impatient reader")
        ds = dm.dataset(split)
        idx = range(min(n, len(ds)))
        module.eval()
        with torch.no_grad():
            return document_attention(
                module.model, dm.collate([ds[i] for i in idx]), [ds.rows[i] for i in idx],
                max_doc_len=dm.cfg.max_doc_len, out_dir=out_dir, split=split,
            )  # fmt: skip


TASKS.add("reader", ReaderTask())
