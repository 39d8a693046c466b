"""The tapes task: the RL-NTM's algorithmic tasks over discrete Interfaces (Zaremba & Sutskever 2015).

Training (arXiv:1505.00521 §4; the model is :mod:`attn_cli.models.rlntm`) adds, per output symbol:

* the negative log-likelihood of the symbols the model emitted (backpropagation: the output and memory
  contents, the controller);
* REINFORCE for every move and emit decision: −Σ_t (R_t − b_t) log π(a_t), with the reward r_t = log p(y_t)
  of the symbol emitted at t, R_t the reward still to come (:func:`attn_cli.attention.reinforce.reward_to_go`)
  and b_t the learned baseline (:func:`attn_cli.attention.reinforce.reinforce_loss`);
* the baseline's squared error (b_t − R_t)².

The curriculum over the complexity C (:mod:`attn_cli.data.tapes`) advances here, after each update, from the
moving average of the per-symbol error of the examples drawn at the current level; the level is a buffer, so
checkpoints carry it and a resumed run continues at the level it had reached.

Scoring, with the most probable actions (``eval.sample`` samples them): an example is correct when every
output symbol is written and right. Metrics: ``seq_accuracy`` (% of sequences), ``symbol_error`` (% of output
symbols wrong), ``loss`` (nats per output symbol), ``curriculum_level`` (the largest C the curriculum had
reached); in final scoring ``accuracy/len{C}`` per test length, ``accuracy_trained`` over the lengths up to
``data.max_length`` and ``accuracy_beyond`` over the longer ones.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from attn_cli.attention.reinforce import reinforce_loss, reward_to_go
from attn_cli.config import Recipe
from attn_cli.data.tapes import TapesDataConfig, TapesDataModule, collate_tapes, curriculum_batch, first_symbol
from attn_cli.errors import AttnError
from attn_cli.registry import TASKS
from attn_cli.tasks.base import AttnModule, Task


@dataclass(frozen=True)
class TapesEvalConfig:
    sample: bool = False  # sample the moves at evaluation (default: the most probable ones)


def tape_metrics(rows: list[dict[str, Any]], max_length: int, final: bool = True) -> dict[str, float]:
    """% of sequences correct, % of output symbols wrong, nats per symbol; in final scoring also per length C,
    over the training lengths and beyond them."""
    symbols = sum(r["symbols"] for r in rows)
    metrics = {
        "seq_accuracy": 100.0 * sum(r["correct"] for r in rows) / len(rows),
        "symbol_error": 100.0 * sum(r["errors"] for r in rows) / symbols,
        "loss": sum(r["nll"] * r["symbols"] for r in rows) / symbols,
    }
    if final:
        by_len: dict[int, list[bool]] = defaultdict(list)
        for r in rows:
            by_len[int(r["length"])].append(bool(r["correct"]))
        for n, v in sorted(by_len.items()):
            metrics[f"accuracy/len{n}"] = 100.0 * sum(v) / len(v)
        for key, beyond in (("accuracy_trained", False), ("accuracy_beyond", True)):
            chosen = [c for n, v in by_len.items() if (n > max_length) == beyond for c in v]
            if chosen:
                metrics[key] = 100.0 * sum(chosen) / len(chosen)
    return metrics


class TapesModule(AttnModule):
    level: torch.Tensor  # () the curriculum's complexity D
    level_error: torch.Tensor  # () moving average of the per-symbol error at D
    level_age: torch.Tensor  # () updates since D last rose

    def __init__(self, recipe: Recipe, meta: dict[str, Any]) -> None:
        super().__init__(recipe, meta)
        self.register_buffer("level", torch.tensor(1))
        self.register_buffer("level_error", torch.tensor(1.0))
        self.register_buffer("level_age", torch.tensor(0))

    def _run(
        self, batch: dict[str, torch.Tensor], sample: bool
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The model's trace, the target under the output head at each step (B, T) and log p(target) (B, T),
        zero where nothing was emitted."""
        out = self.model(batch["inp"], batch["in_len"], batch["out_len"], batch["steps"], sample=sample)
        tgt = batch["tgt"].gather(1, out["out_pos"].clamp(max=batch["tgt"].size(1) - 1))  # (B, T)
        logp = F.log_softmax(out["logits"].float(), -1).gather(-1, tgt[..., None]).squeeze(-1)  # (B, T)
        return out, tgt, logp * out["emitted"]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if "inp" not in batch:  # the loader's ids: examples at the curriculum's level
            batch = curriculum_batch(self.recipe.data, self.recipe.train.seed, batch["ids"], int(self.level))
            batch = {k: v.to(self.device) for k, v in batch.items()}
        out, tgt, logp = self._run(batch, sample=True)
        symbols = batch["out_len"].sum()
        nll = -logp.sum() / symbols
        future = reward_to_go(logp.detach())  # (B, T)
        # reinforce_loss averages over the batch what it sums over steps: per output symbol like the rest
        policy = reinforce_loss(out["log_pi"], future, out["baseline"]) * len(batch["ids"]) / symbols
        baseline = ((out["baseline"] - future) ** 2 * out["active"]).sum() / symbols
        loss = nll + policy + baseline
        self._advance_curriculum(batch, out, tgt)
        n = len(batch["ids"])
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/nll", nll, batch_size=n)
        self.log("train/baseline_mse", baseline, batch_size=n)
        self.log("train/level", self.level.float(), prog_bar=True, batch_size=n)
        return loss

    @torch.no_grad()
    def _advance_curriculum(
        self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor], tgt: torch.Tensor
    ) -> None:
        """The authors' rule: D + 1 when the average error at D falls below the threshold, at most every
        ``curriculum_refractory`` updates; the average restarts at 1 after each rise."""
        cfg: TapesDataConfig = self.recipe.data
        if not cfg.curriculum:
            return
        relevant = batch["relevant"]
        wrong = ((out["logits"].argmax(-1) != tgt) & out["emitted"]).sum(1)  # (B,)
        written = out["emitted"].sum(1)  # (B,)
        # an output not written counts as wrong
        errors = (wrong + batch["out_len"] - written)[relevant].sum()
        symbols = batch["out_len"][relevant].sum()
        if int(symbols) > 0:
            rate = errors.float() / symbols
            self.level_error.mul_(cfg.curriculum_decay).add_((1 - cfg.curriculum_decay) * rate)
        self.level_age.add_(1)
        ready = float(self.level_error) < cfg.curriculum_threshold and int(self.level_age) > cfg.curriculum_refractory
        if ready and int(self.level) < cfg.max_length:
            self.level.add_(1)
            self.level_error.fill_(1.0)
            self.level_age.zero_()

    def predict_rows(self, batch: dict[str, torch.Tensor], split: str, *, final: bool = True) -> list[dict[str, Any]]:
        out, tgt, logp = self._run(batch, sample=self.recipe.eval.sample)
        wrong = ((out["logits"].argmax(-1) != tgt) & out["emitted"]).sum(1)  # (B,)
        missing = batch["out_len"] - out["emitted"].sum(1)  # (B,) outputs never written
        errors = wrong + missing
        nll = -logp.sum(1) / batch["out_len"]
        return [
            {
                "id": int(batch["ids"][i]),
                "length": int(batch["length"][i]),
                "correct": int(errors[i]) == 0,
                "errors": int(errors[i]),
                "symbols": int(batch["out_len"][i]),
                "nll": round(float(nll[i]), 4),
            }
            for i in range(len(batch["ids"]))
        ]

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        return {
            **tape_metrics(rows, int(self.meta["max_length"]), final),
            "curriculum_level": float(self.level),
        }


def longest_trained(ds: Any, max_length: int, n: int) -> list[int]:
    """Indices of the first example of each length C ≤ ``max_length`` in ``ds``, longest first, at most ``n``:
    the pictures show the longest programs the model was trained for, not the test set's first (C = 1)."""
    first: dict[int, int] = {}
    for i in range(len(ds)):
        first.setdefault(int(ds[i]["length"]), i)
    return [first[c] for c in sorted((c for c in first if c <= max_length), reverse=True)[:n]]


class TapesTask(Task):
    name = "tapes"
    summary = (
        "algorithmic tasks over discrete tapes (copy, reverse, repeat copy, ...): RL-NTM (Zaremba & Sutskever 2015)"
    )
    data_config = TapesDataConfig
    eval_config = TapesEvalConfig
    module_class = TapesModule
    metric_units = {
        "seq_accuracy": "% of sequences with every output symbol written and right",
        "symbol_error": "% of output symbols wrong or not written",
        "loss": "nats per output symbol (emitted symbols)",
        "curriculum_level": "largest sequence length C the curriculum had reached",
        "accuracy_trained": "% of test sequences correct, lengths up to training's",
        "accuracy_beyond": "% of test sequences correct, lengths beyond training",
        **{f"accuracy/len{n}": "% of the test sequences of this length correct" for n in range(1, 101)},
    }

    def datamodule(self, recipe: Recipe, data_dir: Path) -> TapesDataModule:
        t = recipe.train
        return TapesDataModule(recipe.data, t.batch_size, t.seed, t.num_workers)

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        """``n`` examples of ``split``, the longest of the training lengths first (:func:`longest_trained`): where
        each head is at every step (:mod:`attn_cli.viz.tapes`);
        once the run has been evaluated, its accuracy at each test length as well."""
        from attn_cli.viz import tapes as viz

        if split == "train":
            raise AttnError("the training split holds example ids only; visualise --split val or test")
        ds = dm.dataset(split)
        module.eval()
        paths = []
        with torch.no_grad():
            for i in longest_trained(ds, int(module.meta["max_length"]), n):
                path = out_dir / f"{split}_{i}_heads.png"
                paths.append(
                    viz.head_trace(module.model, collate_tapes([ds[i]]), path, first_symbol(module.recipe.data))
                )
        metrics_path = Path(out_dir).parent / "eval" / "test" / "metrics.json"
        if metrics_path.is_file():
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))["metrics"]
            paths.append(viz.accuracy_by_length(metrics, module.recipe.name, int(module.meta["max_length"]), out_dir))
        return paths


TASKS.add("tapes", TapesTask())
