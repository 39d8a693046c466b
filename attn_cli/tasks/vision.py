"""The visual attention task: RAM, DRAM, STN, DRAW and their FC/CNN baselines on MNIST variants.

Metrics: ``error`` (top-1 error, %) for classifiers, ``seq_error`` (a sequence is wrong if any
digit is) and ``digit_error`` for DRAM, ``nll`` (the DRAW variational bound, nats per image) for
generation. Every model follows one contract: ``loss(x, y) -> (loss, logs)``,
``predict(x, y) -> per-example tensors`` and ``kind`` in {classify, sequence, generate}.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from attn_cli.config import Recipe
from attn_cli.data.vision import VisionDataConfig, VisionDataModule
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS, TASKS
from attn_cli.tasks.base import AttnModule, Task


@dataclass(frozen=True)
class VisionEvalConfig:
    seed: int = 0  # DRAW: the posterior samples of the evaluation bound are drawn from this seed
    samples: int = 0  # RAM: 0 follows the policy's mean; M > 0 averages M sampled glimpse trajectories


@runtime_checkable
class VisionModel(Protocol):
    """The contract of the module docstring, checked on every registered vision model by
    tests/test_models.py. ``predict`` takes ``seed`` (DRAW) or ``samples``/``seed`` (RAM) as keywords."""

    kind: str  # "classify", "sequence" or "generate"

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]: ...

    def predict(self, x: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> dict[str, torch.Tensor]: ...


class VisionModule(AttnModule):
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # a model whose loss depends on the schedule (RA-CNN's alternating phases) takes the global step
        step = {"step": self.global_step} if "step" in inspect.signature(self.model.loss).parameters else {}
        loss, logs = self.model.loss(batch["x"], batch["y"], **step)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        for k, v in logs.items():
            self.log(f"train/{k}", v, batch_size=len(batch["ids"]))
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Parameters the model holds fixed at this step (``resting_parameters``, RA-CNN's alternation) lose their
        gradient, so the optimizer skips them: a zero gradient would still move them by Adam's momentum."""
        resting = getattr(self.model, "resting_parameters", None)
        if resting is not None:
            for p in resting(self.global_step):
                p.grad = None

    def predict_rows(self, batch: dict[str, torch.Tensor], split: str, *, final: bool = True) -> list[dict[str, Any]]:
        kind = self.model.kind
        seed = self.recipe.eval.seed * 1_000_003 + int(batch["ids"][0])  # per batch, reproducible
        if kind == "generate":
            out = self.model.predict(batch["x"], batch["y"], seed=seed)
        elif self.recipe.eval.samples > 0:
            if "samples" not in inspect.signature(self.model.predict).parameters:
                raise AttnError(f"eval.samples applies to RAM only, not {self.recipe.model_name}")
            out = self.model.predict(batch["x"], batch["y"], samples=self.recipe.eval.samples, seed=seed)
        else:
            out = self.model.predict(batch["x"], batch["y"])
        rows = []
        for i in range(len(batch["ids"])):
            row: dict[str, Any] = {"id": int(batch["ids"][i])}
            if kind == "generate":
                row.update(nll=float(out["nll"][i]), lx=float(out["lx"][i]), lz=float(out["lz"][i]))
            else:
                pred, label = out["pred"][i], batch["y"][i]
                row.update(pred=pred.tolist(), label=label.tolist(), loss=float(out["loss"][i]))
                # further predictions a model makes beside its own (RA-CNN: each scale's), each scored below
                row.update({k: out[k][i].tolist() for k in out if k.startswith("pred_")})
            rows.append(row)
        return rows

    def glimpse_protocol(self) -> str:
        """How a RAM-like model chose its glimpses for these scores (nothing for other models): a record's note
        must say whether the error is of the policy's mean path or of Monte-Carlo sampled paths, which on
        60×60 clutter differ by several points (docs/vision.md, RAM)."""
        if "samples" not in inspect.signature(self.model.predict).parameters:
            return ""
        m, seed = self.recipe.eval.samples, self.recipe.eval.seed
        if m > 0:
            return f"; glimpses: class probabilities averaged over {m} paths sampled from the location policy (eval.seed {seed})"
        return "; glimpses: the location policy's mean path"

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        kind = self.model.kind
        n = len(rows)
        if kind == "generate":
            self.metrics_info = {"nll": "one-sample variational bound −log p(x) ≤ L^x + L^z, nats per image"}
            return {"nll": sum(r["nll"] for r in rows) / n, "lz": sum(r["lz"] for r in rows) / n}
        loss = sum(r["loss"] for r in rows) / n
        if kind == "sequence":
            wrong = [np.asarray(r["pred"]) != np.asarray(r["label"]) for r in rows]
            return {
                "seq_error": 100.0 * sum(bool(w.any()) for w in wrong) / n,
                "digit_error": 100.0 * sum(int(w.sum()) for w in wrong) / sum(w.size for w in wrong),
                "loss": loss,
            }
        self.metrics_info = {"metric": "top-1 error (%) on the full split" + self.glimpse_protocol()}
        extra = {  # pred_scale1 -> error_scale1: the error of each further prediction (RA-CNN's scales)
            "error_" + k.removeprefix("pred_"): 100.0 * sum(r[k] != r["label"] for r in rows) / n
            for k in rows[0]
            if k.startswith("pred_")
        }
        return {"error": 100.0 * sum(r["pred"] != r["label"] for r in rows) / n, "loss": loss, **extra}


class VisionTask(Task):
    name = "vision"
    summary = "visual attention: RAM, DRAM, spatial transformers, DRAW on MNIST and its variants"
    data_config = VisionDataConfig
    eval_config = VisionEvalConfig
    module_class = VisionModule
    metric_units = {"error": "%", "seq_error": "%", "digit_error": "%", "nll": "nats", "lz": "nats", "loss": "nats"}

    def datamodule(self, recipe: Recipe, data_dir: Path) -> VisionDataModule:
        t = recipe.train
        dm = VisionDataModule(recipe.data, data_dir, t.batch_size, t.seed, t.num_workers)
        generative = getattr(recipe.model, "mode", "") == "generate"  # DRAW's generation mode: no labels needed
        if not dm.manifest.get("labelled", True) and not generative:
            raise AttnError(
                f"{recipe.data.dataset} has no labels (a density-estimation set); train a DRAW generation recipe "
                f"on it (draw-gen, draw-gen-noattn), not {recipe.name}"
            )
        return dm

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        from attn_cli.viz.resattn import viz_masks, viz_zoom
        from attn_cli.viz.rst import viz_affine_steps
        from attn_cli.viz.vision import viz_draw, viz_glimpses, viz_stn

        name = module.recipe.model_name
        # the model says what it draws (its ``picture``), so a new glimpse model needs no edit here
        pictures = {
            "glimpses": viz_glimpses,
            "transform": viz_stn,
            "canvas": viz_draw,
            "masks": viz_masks,
            "zoom": viz_zoom,
            "affine-steps": viz_affine_steps,
        }
        fn = pictures.get(getattr(module.model, "picture", ""))
        if fn is None:
            drawable = [n for n in MODELS.names_where("task", "vision") if getattr(MODELS.get(n), "picture", "")]
            raise AttnError(
                f"{name} ({module.recipe.name}) has no attention to draw; visualise a run of {', '.join(drawable)}"
            )
        ds = dm.dataset(split)
        batch = dm.collate([ds[i] for i in range(min(n, len(ds)))])
        module.eval()
        with torch.no_grad():
            return fn(module.model, batch, out_dir, f"{module.recipe.name} ({split})")


TASKS.add("vision", VisionTask())
