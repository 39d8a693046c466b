"""The memory task: bAbI question answering (MemN2N, DMN) and the NTM algorithmic tasks (copy, repeat copy).

One task, two kinds of data, told apart by the prepared dataset (``meta["kind"]``):

* ``qa`` (bAbI): cross-entropy on the single answer; rows carry the task number, so one
  joint run is scored per task: ``error/qaN`` (%), ``mean_error`` (%) over the tasks in the
  run, ``failed_tasks`` (error > 5%, Sukhbaatar et al.'s criterion), ``accuracy``. The
  DMN adds its supporting-fact gate loss when asked. Linear start (MemN2N §4.2) is switched
  off here, once, when validation loss stops falling.
* ``seq`` (the NTM tasks): binary cross-entropy on the output bits; ``bits_per_seq`` is that
  cost summed over a sequence in bits (Graves et al. 2014, Fig. 3-4), reported per test
  size (``bits_per_seq/len20``) together with the wrong bits after thresholding; on dynamic
  N-grams also the Bayes-optimal estimator's cost (``optimal_bits_per_seq``, Eq. 10).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from attn_cli.config import Recipe
from attn_cli.data.copy_tasks import NTM_TASKS
from attn_cli.data.memory import MemoryDataConfig, MemoryDataModule
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS, TASKS
from attn_cli.tasks.base import AttnModule, Task

FAIL_THRESHOLD = 5.0  # % error above which a bAbI task counts as failed
# every NTM task's test sizes (data_prep.ntm_tasks: copy lengths 10 ... 120, associative recall items, ...)
NTM_TEST_SIZES = sorted({n for t in NTM_TASKS.values() for n in t.test_sizes})


@dataclass(frozen=True)
class MemoryEvalConfig:
    pass


def linear_start_update(model: torch.nn.Module, best: torch.Tensor, val_loss: float, epochs_done: int = 0) -> bool:
    """MemN2N §4.2: while the hops are linear, put the softmax back when validation loss stops falling.

    ``best`` (a 0-d buffer) holds the best validation loss of the linear phase. A model whose
    ``cfg.linear_start_epochs`` is N > 0 instead stays linear for its first N epochs (``epochs_done``
    counts the finished ones), as the authors' Matlab release does (20 per task, 30 joint): under Adam
    the paper's rule fires after one or two epochs, before the linear model has found the chain of
    facts that a multi-hop task such as qa16 needs. Returns True when this call switched the softmax on.
    """
    if not hasattr(model, "softmax_on") or bool(model.softmax_on):
        return False
    fixed = int(getattr(getattr(model, "cfg", None), "linear_start_epochs", 0))
    if fixed > 0:
        if epochs_done < fixed:
            return False
    elif val_loss < float(best):
        best.fill_(val_loss)
        return False
    model.softmax_on.fill_(True)
    return True


def qa_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """bAbI: per-task error (%), mean error over the tasks present, failed tasks (> 5%), accuracy, loss."""
    by_task: dict[int, list[bool]] = defaultdict(list)
    for r in rows:
        by_task[int(r["task"])].append(bool(r["correct"]))
    errors = {n: 100.0 * (1 - sum(v) / len(v)) for n, v in sorted(by_task.items())}
    metrics = {f"error/qa{n}": e for n, e in errors.items()}
    metrics["mean_error"] = sum(errors.values()) / len(errors)
    metrics["failed_tasks"] = float(sum(e > FAIL_THRESHOLD for e in errors.values()))
    metrics["accuracy"] = 100.0 * sum(bool(r["correct"]) for r in rows) / len(rows)
    metrics["loss"] = sum(r["nll"] for r in rows) / len(rows)
    return metrics


def seq_metrics(rows: list[dict[str, Any]], final: bool = True) -> dict[str, float]:
    """NTM tasks: bits per sequence overall and, in final scoring (not validation), per length (with wrong bits)."""
    by_len: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_len[int(r["length"])].append(r)
    metrics = {"bits_per_seq": sum(r["bits"] for r in rows) / len(rows)}
    if final:
        for n, rs in sorted(by_len.items()):
            metrics[f"bits_per_seq/len{n}"] = sum(r["bits"] for r in rs) / len(rs)
            metrics[f"bit_errors/len{n}"] = sum(r["bit_errors"] for r in rs) / len(rs)
    if "optimal_bits" in rows[0]:  # dynamic N-grams: the Bayes-optimal estimator's cost, the paper's floor
        metrics["optimal_bits_per_seq"] = sum(r["optimal_bits"] for r in rows) / len(rows)
        metrics["excess_bits_per_seq"] = metrics["bits_per_seq"] - metrics["optimal_bits_per_seq"]
    metrics["loss"] = metrics["bits_per_seq"] * math.log(2)
    return metrics


class MemoryModule(AttnModule):
    def build_model(self, recipe: Recipe, meta: dict[str, Any]) -> torch.nn.Module:
        return MODELS.get(recipe.model_name)(recipe.model, **meta)

    def __init__(self, recipe: Recipe, meta: dict[str, Any]) -> None:
        super().__init__(recipe, meta)
        self.kind = meta["kind"]
        self.register_buffer("ls_best", torch.tensor(float("inf")))

    # -- losses ---------------------------------------------------------------------------
    def _qa(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, Any], torch.Tensor]:
        out = self.model(batch["story"], batch["story_len"], batch["question"])
        nll = F.cross_entropy(out["logits"], batch["answer"], reduction="none")  # (B,)
        return out, nll

    def _seq(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, Any], torch.Tensor]:
        out = self.model(batch["inp"])
        bce = F.binary_cross_entropy_with_logits(out["logits"], batch["tgt"], reduction="none")  # (B, T, W+1)
        per_seq = (bce * batch["out_mask"][..., None]).sum((1, 2))  # (B,) nats
        return out, per_seq

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.kind == "qa":
            out, nll = self._qa(batch)
            loss = nll.mean()
            if out.get("gate_loss") is not None:
                loss = loss + out["gate_loss"](batch["supporting"])
        else:
            _, per_seq = self._seq(batch)
            loss = per_seq.mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    # -- evaluation -----------------------------------------------------------------------
    def predict_rows(self, batch: dict[str, torch.Tensor], split: str, *, final: bool = True) -> list[dict[str, Any]]:
        rows = []
        if self.kind == "qa":
            out, nll = self._qa(batch)
            pred = out["logits"].argmax(-1)
            answers = self.data.answers if self.data is not None else None
            for i in range(len(batch["ids"])):
                p, a = int(pred[i]), int(batch["answer"][i])
                rows.append(
                    {
                        "id": int(batch["ids"][i]),
                        "task": int(batch["task"][i]),
                        "pred": answers[p] if answers else p,
                        "answer": answers[a] if answers else a,
                        "correct": p == a,
                        "nll": round(float(nll[i]), 4),  # 4 decimals: a 20-task test set stays < 2 MB to record
                    }
                )
            return rows
        out, per_seq = self._seq(batch)
        wrong = ((out["logits"] > 0).float() != batch["tgt"]) & batch["out_mask"][..., None]  # (B, T, W+1)
        for i in range(len(batch["ids"])):
            rows.append(
                {
                    "id": int(batch["ids"][i]),
                    "length": int(batch["length"][i]),
                    "bits": float(per_seq[i]) / math.log(2),
                    "bit_errors": int(wrong[i].sum()),
                    **({"optimal_bits": float(batch["optimal_bits"][i])} if "optimal_bits" in batch else {}),
                }
            )
        return rows

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        return qa_metrics(rows) if self.kind == "qa" else seq_metrics(rows, final)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        loss = self.trainer.callback_metrics.get("val/loss")
        if loss is not None and not self.trainer.sanity_checking:
            linear_start_update(self.model, self.ls_best, float(loss), self.current_epoch + 1)


def longest_first(ds: Any, n: int, scan: int = 4096) -> list[int]:
    """Indices of the first example of each length among the first ``scan`` of ``ds``, longest first, at most
    ``n``: `attn visualize` on an NTM test set then draws the longest test sequences (length 120 on copy,
    Graves et al. Fig. 6), which the first ``n`` examples (the shortest length) would never reach."""
    first: dict[int, int] = {}
    for i in range(min(scan, len(ds))):
        first.setdefault(int(ds[i]["length"]), i)
    return [first[length] for length in sorted(first, reverse=True)[:n]]


class MemoryTask(Task):
    name = "memory"
    summary = "memory and reasoning: End-to-End Memory Networks, Dynamic Memory Networks (bAbI), the NTM tasks"
    data_config = MemoryDataConfig
    eval_config = MemoryEvalConfig
    module_class = MemoryModule
    metric_units = {
        "mean_error": "% (mean over bAbI tasks)",
        "failed_tasks": "tasks with error > 5%",
        "accuracy": "% of questions",
        "loss": "nats per example",
        "bits_per_seq": "bits per sequence (binary cross-entropy, log2)",
        **{f"error/qa{n}": "% of the task's test questions" for n in range(1, 21)},
        **{f"bits_per_seq/len{n}": "bits per sequence at this test size" for n in NTM_TEST_SIZES},
        **{f"bit_errors/len{n}": "wrong output bits per sequence (threshold 0.5)" for n in NTM_TEST_SIZES},
        "optimal_bits_per_seq": "bits per sequence of the Bayes-optimal N-gram estimator (Graves et al. Eq. 10)",
        "excess_bits_per_seq": "bits per sequence above the Bayes-optimal N-gram estimator",
    }

    def dataset_of(self, recipe: Recipe) -> str:
        """``babi-1k`` for joint runs; ``babi-1k-qa3`` for a run trained on task 3 alone (per-task columns)."""
        from attn_cli.data.babi_tasks import parse_tasks

        ds = str(recipe.data.dataset)
        if ds.startswith("babi-") and recipe.data.tasks != "all" and len(parse_tasks(recipe.data.tasks)) == 1:
            return f"{ds}-qa{parse_tasks(recipe.data.tasks)[0]}"
        return ds

    def datamodule(self, recipe: Recipe, data_dir: Path) -> MemoryDataModule:
        t = recipe.train
        return MemoryDataModule(recipe.data, data_dir, t.batch_size, t.seed, t.num_workers)

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        """The first ``n`` examples of ``split``: hop (or episode) weights over a bAbI story, or an NTM's
        read and write weightings and, once the run has been evaluated, its length-generalisation curve
        (:mod:`attn_cli.viz.memory`)."""
        from attn_cli.data.memory import collate_babi, collate_seq
        from attn_cli.viz import memory as viz

        ds = dm.dataset(split)
        idx = range(min(n, len(ds)))
        module.eval()
        if dm.kind == "qa":
            with torch.no_grad():
                return viz.story_hops(
                    module.model, collate_babi([ds[i] for i in idx]), [ds.rows[i] for i in idx],
                    memory_size=ds.mem, answers=dm.answers, out_dir=out_dir, split=split,
                    label=getattr(module.model, "hop_name", "hop"),
                    per_pass=getattr(module.model, "passes_follow_facts", False),
                )  # fmt: skip
        if not getattr(module.model, "attends", True):
            raise AttnError(f"{module.recipe.model_name} has no memory weightings to draw; visualise an ntm run")
        with torch.no_grad():
            paths = viz.ntm_weightings(
                module.model, [collate_seq([ds[i]]) for i in longest_first(ds, n)], out_dir, split
            )
        metrics_path = Path(out_dir).parent / "eval" / "test" / "metrics.json"
        if metrics_path.is_file():
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))["metrics"]
            kind = dm.meta["task_kind"]
            paths += viz.length_generalisation(
                metrics, module.recipe.name, out_dir, task=kind, size=NTM_TASKS[kind].size_name
            )
        return paths


TASKS.add("memory", MemoryTask())
