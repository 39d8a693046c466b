"""The memory task: bAbI question answering (MemN2N, DMN) and the NTM algorithmic tasks (copy, repeat copy).

One task, two kinds of data, told apart by the prepared dataset (``meta["kind"]``):

* ``qa`` (bAbI): cross-entropy on the single answer; rows carry the task number, so one
  joint run is scored per task: ``error/qaN`` (%), ``mean_error`` (%) over the tasks in the
  run, ``failed_tasks`` (error > 5%, Sukhbaatar et al.'s criterion), ``accuracy``. The
  DMN adds its supporting-fact gate loss when asked. Linear start (MemN2N §4.2) is switched
  off here, once, when validation loss stops falling.
* ``seq`` (NTM copy): binary cross-entropy on the output bits; ``bits_per_seq`` is that
  cost summed over a sequence in bits (Graves et al. 2014, Fig. 3-4), reported per test
  length (``bits_per_seq/len20``) together with the wrong bits after thresholding.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from attn_cli.config import Recipe
from attn_cli.data.cloze import ClozeDataConfig, ClozeDataModule
from attn_cli.data.memory import MemoryDataConfig, MemoryDataModule
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS, TASKS
from attn_cli.tasks.base import AttnModule, Task

FAIL_THRESHOLD = 5.0  # % error above which a bAbI task counts as failed


@dataclass(frozen=True)
class MemoryEvalConfig:
    pass


def linear_start_update(model: torch.nn.Module, best: torch.Tensor, val_loss: float) -> bool:
    """MemN2N §4.2: while the hops are linear, put the softmax back when validation loss stops falling.

    ``best`` (a 0-d buffer) holds the best validation loss of the linear phase. Returns True
    when this call switched the softmax on.
    """
    if not hasattr(model, "softmax_on") or bool(model.softmax_on):
        return False
    if val_loss < float(best):
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
    metrics["loss"] = metrics["bits_per_seq"] * math.log(2)
    return metrics


def accuracy_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "accuracy": 100.0 * sum(bool(r["correct"]) for r in rows) / len(rows),
        "loss": sum(r["nll"] for r in rows) / len(rows),
    }


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
                }
            )
        return rows

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        return qa_metrics(rows) if self.kind == "qa" else seq_metrics(rows, final)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        loss = self.trainer.callback_metrics.get("val/loss")
        if loss is not None and not self.trainer.sanity_checking:
            linear_start_update(self.model, self.ls_best, float(loss))


class MemoryTask(Task):
    name = "memory"
    summary = "memory and reasoning: End-to-End Memory Networks, Dynamic Memory Networks (bAbI), NTM copy"
    data_config = MemoryDataConfig
    eval_config = MemoryEvalConfig
    models = ("dmn", "memn2n", "ntm", "ntm-lstm")
    module_class = MemoryModule
    metric_units = {
        "mean_error": "% (mean over bAbI tasks)",
        "failed_tasks": "tasks with error > 5%",
        "accuracy": "% of questions",
        "loss": "nats per example",
        "bits_per_seq": "bits per sequence (binary cross-entropy, log2)",
        **{f"error/qa{n}": "% of the task's test questions" for n in range(1, 21)},
        **{f"bits_per_seq/len{n}": "bits per sequence at this length" for n in (10, 20, 30, 50, 120)},
        **{f"bit_errors/len{n}": "wrong output bits per sequence (threshold 0.5)" for n in (10, 20, 30, 50, 120)},
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
        if dm.kind == "qa":
            return story_hops(module, dm, split, n, out_dir)
        return ntm_weightings(module, dm, split, n, out_dir)


def story_hops(module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
    """MemN2N Fig. 2: the story's sentences × hops (or DMN episodes), supporting facts boxed in red."""
    from attn_cli.data.memory import collate_babi
    from attn_cli.viz.core import heatmap

    ds = dm.splits[split]
    idx = list(range(min(n, len(ds))))
    batch = collate_babi([ds[i] for i in idx])
    module.eval()
    with torch.no_grad():
        out = module.model(batch["story"], batch["story_len"], batch["question"])
    label = "episode" if module.recipe.model_name == "dmn" else "hop"
    paths = []
    for i in idx:
        ex = ds.rows[i]
        m = int(batch["story_len"][i])
        start = max(0, len(ex["story"]) - ds.mem)
        sents = [" ".join(s) for s in ex["story"][start:]] or [""]
        weights = out["attn"][i, :, :m].T  # (M, K)
        pred = dm.answers[int(out["logits"][i].argmax())]
        marks = [(j, k) for j in range(m) if bool(batch["supporting"][i, j]) for k in range(weights.size(1))]
        title = f"{' '.join(ex['question'])}? answer: {ex['answer']}, predicted: {pred} (qa{ex['task']})"
        cols = [f"{label} {k + 1}" for k in range(weights.size(1))]
        paths.append(heatmap(weights, sents, cols, out_dir / f"{label}s-{split}-{i}.png", title=title, marks=marks))
    return paths


def ntm_weightings(module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
    """NTM Fig. 6: read and write weightings over time (locations actually used), and the
    length-generalisation curve when the run has been evaluated."""
    import json

    from attn_cli.data.memory import collate_seq
    from attn_cli.viz.core import heatmap, line_plot

    if module.recipe.model_name != "ntm":
        raise AttnError(f"{module.recipe.model_name} has no memory weightings to draw; visualise an ntm run")
    ds = dm.splits[split]
    paths = []
    module.eval()
    for i in range(min(n, len(ds))):
        batch = collate_seq([ds[i]])
        with torch.no_grad():
            out = module.model(batch["inp"])
        for head in ("read", "write"):
            w = out[f"{head}_w"][0].T  # (N, T)
            used = (w.max(1).values > 0.05).nonzero()[:, 0]
            lo, hi = (int(used.min()), int(used.max()) + 1) if len(used) else (0, min(16, w.size(0)))
            w = w[lo:hi]
            paths.append(
                heatmap(
                    w,
                    [str(r) for r in range(lo, hi)],
                    [str(t) for t in range(w.size(1))],
                    out_dir / f"ntm-{head}-{split}-{i}.png",
                    title=f"{head} weightings, length {int(batch['length'][0])}",
                    xlabel="time",
                    ylabel="location",
                )
            )
    metrics_path = Path(out_dir).parent / "eval" / "test" / "metrics.json"
    if metrics_path.is_file():
        m = json.loads(metrics_path.read_text(encoding="utf-8"))["metrics"]
        lens = sorted(int(k.split("len")[1]) for k in m if k.startswith("bits_per_seq/len"))
        if lens:
            paths.append(
                line_plot(
                    {module.recipe.name: [m[f"bits_per_seq/len{x}"] for x in lens]},
                    lens,
                    out_dir / "length-generalisation.png",
                    xlabel="sequence length",
                    ylabel="bits per sequence",
                    title="copy: generalisation past the training lengths (1-20)",
                )
            )
    return paths


TASKS.add("memory", MemoryTask())


# ---------------------------------------------------------------------------------------------
# the readers (Hermann et al. 2015): a task of their own, because their data are documents


class ReaderModule(AttnModule):
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
    eval_config = MemoryEvalConfig
    models = ("attentive-reader", "deep-lstm-reader", "impatient-reader")
    module_class = ReaderModule
    metric_units = {"accuracy": "% of cloze questions", "loss": "nats per question"}

    def datamodule(self, recipe: Recipe, data_dir: Path) -> ClozeDataModule:
        t = recipe.train
        return ClozeDataModule(recipe.data, data_dir, t.batch_size, t.seed, t.num_workers)

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        """Hermann et al. Fig. 3: the document's tokens shaded by the reader's attention."""
        from attn_cli.viz.core import heatmap

        if module.recipe.model_name == "deep-lstm-reader":
            raise AttnError("the Deep LSTM Reader has no attention to draw; visualise an attentive or impatient reader")
        ds = dm.splits[split]
        idx = list(range(min(n, len(ds))))
        batch = dm.collate([ds[i] for i in idx])
        module.eval()
        with torch.no_grad():
            out, _ = module._forward(batch)
        paths = []
        for i in idx:
            row = ds.rows[i]
            doc = (row["doc"][: dm.cfg.max_doc_len] if dm.cfg.max_doc_len else row["doc"])[:80]
            w = out["attn"][i, :, : len(doc)]  # (Tq or 1, Td)
            q = row["question"] if w.size(0) > 1 else [" ".join(row["question"])]
            w = w[: len(q)]
            pred = f"@entity{int(out['logits'][i].argmax())}"
            marks = [(r, t) for r in range(w.size(0)) for t, tok in enumerate(doc) if tok == row["answer"]]
            paths.append(
                heatmap(
                    w, [s[:60] for s in q], doc, out_dir / f"reader-{split}-{i}.png",
                    title=f"answer {row['answer']}, predicted {pred} (red: the answer in the document)", marks=marks,
                )
            )  # fmt: skip
        return paths


TASKS.add("reader", ReaderTask())
