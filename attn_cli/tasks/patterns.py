"""The patterns task: next-symbol prediction on the algorithmic patterns of Joulin & Mikolov (2015).

Training minimises the cross-entropy of every next symbol (the paper trains on the whole stream), or, on
binary addition, of the deterministic ones only (the paper's supervised setting; ``trained`` in the batch).
Scoring follows §5.1: a sequence is correct only if the argmax prediction of every deterministic
symbol is right (:mod:`attn_cli.data.patterns` says which are). Metrics:

* ``seq_accuracy``: % of the split's sequences correct;
* final scoring (``attn eval``) adds ``accuracy/n{n}`` per test size n, ``accuracy_beyond``: % correct
  among the sizes beyond training (n > ``data.max_n``), and ``solved_n``: % of the test sizes n at which
  every sequence is correct — the measure of the paper's Table 2 ("percent of n for which the model
  correctly predicts the sequences", n up to 60);
* ``loss``: nats per trained symbol.

``eval.rounding`` evaluates the stack RNN with discrete actions (the table's "+ rounding" row).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from attn_cli.config import Recipe
from attn_cli.data.patterns import PATTERNS, PatternsDataConfig, PatternsDataModule, collate_patterns
from attn_cli.errors import AttnError
from attn_cli.registry import TASKS
from attn_cli.tasks.base import AttnModule, Task


@dataclass(frozen=True)
class PatternsEvalConfig:
    rounding: bool = False  # discrete stack actions at validation and test time (Joulin & Mikolov §3.1)


def pattern_metrics(rows: list[dict[str, Any]], max_n: int, final: bool = True) -> dict[str, float]:
    """Sequence accuracy (%), and in final scoring per size n, beyond training, and the share of sizes solved."""
    metrics = {"seq_accuracy": 100.0 * sum(r["correct"] for r in rows) / len(rows)}
    metrics["loss"] = sum(r["nll"] for r in rows) / len(rows)
    if final:
        by_n: dict[int, list[bool]] = defaultdict(list)
        for r in rows:
            by_n[int(r["n"])].append(bool(r["correct"]))
        for n, v in sorted(by_n.items()):
            metrics[f"accuracy/n{n}"] = 100.0 * sum(v) / len(v)
        beyond = [c for n, v in by_n.items() if n > max_n for c in v]
        if beyond:
            metrics["accuracy_beyond"] = 100.0 * sum(beyond) / len(beyond)
        metrics["solved_n"] = 100.0 * sum(all(v) for v in by_n.values()) / len(by_n)
    return metrics


class PatternsModule(AttnModule):
    def _forward(self, batch: dict[str, torch.Tensor], rounding: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, V) and the cross-entropy of each symbol (B, T), zero where the loss does not read it
        (padding; on addition, the numbers before ``=``)."""
        logits = self.model(batch["inp"], rounding=rounding)["logits"]
        nll = F.cross_entropy(logits.transpose(1, 2), batch["tgt"], reduction="none") * batch["trained"]  # (B, T)
        return logits, nll

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        _, nll = self._forward(batch, rounding=False)
        loss = nll.sum() / batch["trained"].sum()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    def predict_rows(self, batch: dict[str, torch.Tensor], split: str, *, final: bool = True) -> list[dict[str, Any]]:
        logits, nll = self._forward(batch, rounding=self.recipe.eval.rounding)
        wrong = (logits.argmax(-1) != batch["tgt"]) & batch["scored"]  # (B, T)
        per_symbol = nll.sum(1) / batch["trained"].sum(1)  # (B,)
        return [
            {
                "id": int(batch["ids"][i]),
                "n": int(batch["n"][i]),
                "correct": not bool(wrong[i].any()),
                "nll": round(float(per_symbol[i]), 4),
            }
            for i in range(len(batch["ids"]))
        ]

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        return pattern_metrics(rows, int(self.meta["max_n"]), final)


class PatternsTask(Task):
    name = "patterns"
    summary = (
        "algorithmic patterns (aⁿbⁿ, aⁿbⁿcⁿ, ..., memorisation, binary addition): Stack RNN, List RNN, RNN, LSTM "
        "(Joulin & Mikolov 2015)"
    )
    data_config = PatternsDataConfig
    eval_config = PatternsEvalConfig
    module_class = PatternsModule
    metric_units = {
        "seq_accuracy": "% of sequences with every deterministic symbol predicted",
        "accuracy_beyond": "% of test sequences correct, sizes n beyond training",
        "solved_n": "% of test sizes n with every sequence correct (Joulin & Mikolov Table 2)",
        "loss": "nats per trained symbol",
        **{f"accuracy/n{n}": "% of the sequences of this size correct" for n in range(2, 61)},
    }

    def datamodule(self, recipe: Recipe, data_dir: Path) -> PatternsDataModule:
        t = recipe.train
        return PatternsDataModule(recipe.data, t.batch_size, t.seed, t.num_workers)

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        """The first ``n`` sequences of ``split``: each stack's top elements (list's head) and the action probabilities
        over the sequence, under the predicted and true symbols (:mod:`attn_cli.viz.patterns`); once the run
        has been evaluated, its accuracy at each test size n as well (the paper's Fig. 2)."""
        from attn_cli.viz import patterns as viz

        if not getattr(module.model, "memory_model", False):
            raise AttnError(f"{module.recipe.model_name} has no stack to draw; visualise a stack-rnn or list-rnn run")
        ds = dm.dataset(split)
        module.eval()
        paths = []
        with torch.no_grad():
            for i in range(min(n, len(ds))):
                batch = collate_patterns([ds[i]])
                paths.append(
                    viz.stack_trace(
                        module.model, batch, out_dir / f"{split}_{i}_stacks.png",
                        symbols=PATTERNS[module.meta["pattern"]], rounding=module.recipe.eval.rounding,
                    )
                )  # fmt: skip
        metrics_path = Path(out_dir).parent / "eval" / "test" / "metrics.json"
        if metrics_path.is_file():
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))["metrics"]
            paths.append(viz.accuracy_by_n(metrics, module.recipe.name, int(module.meta["max_n"]), out_dir))
        return paths


TASKS.add("patterns", PatternsTask())
