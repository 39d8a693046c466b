"""The handwriting task: Graves (2013) prediction and synthesis networks on lines of pen offsets.

Training minimises the sequence log-loss of eq. (26) (a mixture-density NLL per point, summed over the line,
averaged over the batch). Scoring follows Tables 2-3 of the paper: ``nll`` is that loss in nats per line
(the paper's "Log-Loss", negative because a density over normalised offsets can exceed 1), ``sse`` the mean
squared error per point between the expected next offset Σⱼ πⱼ μⱼ and the real one (Δx, Δy; normalised
units), and ``nll_per_point``. Teacher-forced, as the paper's numbers are: these are likelihoods, not samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from attn_cli.config import Recipe
from attn_cli.data.handwriting import HandwritingDataConfig, HandwritingDataModule
from attn_cli.registry import TASKS
from attn_cli.tasks.base import AttnModule, Task

SHEET_TEXT = "more of national temperament"  # the line of the paper's Figs. 14-16
BIASES = (0.0, 0.5, 1.0, 2.0)


@runtime_checkable
class HandwritingModel(Protocol):
    """What the task, ``attn generate`` and the pictures call on a handwriting model (:mod:`attn_cli.models.graves`)."""

    conditional: bool  # True: it writes a given text through the soft window (synthesis)
    alphabet: str

    def __call__(
        self, strokes: torch.Tensor, chars: torch.Tensor, char_len: torch.Tensor
    ) -> dict[str, torch.Tensor]: ...

    def sample(self, chars: torch.Tensor | None, *, steps: int, bias: float = 0.0,
               generator: torch.Generator | None = None, prime: torch.Tensor | None = None) -> dict[str, torch.Tensor]: ...  # fmt: skip


@dataclass(frozen=True)
class HandwritingEvalConfig:
    pass


def line_losses(model: Any, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The model's outputs and the NLL of eq. (26) per line (B,), in nats."""
    from attn_cli.models.graves import mixture_nll

    out = model(batch["inp"], batch["chars"], batch["char_len"])
    nll = mixture_nll(out["y"], batch["tgt"]) * batch["mask"]  # (B, T)
    return out, nll.sum(1)


class HandwritingModule(AttnModule):
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        _, per_line = line_losses(self.model, batch)
        loss = per_line.mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    def predict_rows(self, batch: dict[str, torch.Tensor], split: str, *, final: bool = True) -> list[dict[str, Any]]:
        from attn_cli.models.graves import mixture_mean

        out, per_line = line_losses(self.model, batch)
        err = ((mixture_mean(out["y"]) - batch["tgt"][..., :2]) ** 2).sum(-1) * batch["mask"]  # (B, T)
        return [
            {
                "id": int(batch["ids"][i]),
                "nll": round(float(per_line[i]), 3),
                "points": int(batch["mask"][i].sum()),
                "sse": round(float(err[i].sum()), 4),
            }
            for i in range(len(batch["ids"]))
        ]

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        points = sum(r["points"] for r in rows)
        nll = sum(r["nll"] for r in rows)
        return {
            "nll": nll / len(rows),
            "nll_per_point": nll / max(1, points),
            "sse": sum(r["sse"] for r in rows) / max(1, points),
            "loss": nll / len(rows),
        }


class HandwritingTask(Task):
    name = "handwriting"
    summary = "handwriting: Graves (2013) prediction and synthesis networks (the soft window over the text)"
    data_config = HandwritingDataConfig
    eval_config = HandwritingEvalConfig
    module_class = HandwritingModule
    metric_units = {
        "nll": "nats per line (eq. 26; the paper's Log-Loss)",
        "nll_per_point": "nats per pen point",
        "sse": "mean squared error per point of the expected offset (normalised units; the paper's SSE)",
        "loss": "nats per line",
    }

    def datamodule(self, recipe: Recipe, data_dir: Path) -> HandwritingDataModule:
        t = recipe.train
        return HandwritingDataModule(recipe.data, data_dir, t.batch_size, t.seed, t.num_workers)

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        """Synthesis: for the first ``n`` lines of ``split``, a written line of their text with its window
        weights under it (the paper's Fig. 13), a sheet of the paper's line at biases 0, 0.5, 1, 2 (Fig. 15)
        and lines written in the style of real lines of ``split`` (priming, Fig. 16). Prediction: a sheet of
        unconditioned samples at those biases (Fig. 11)."""
        from attn_cli.viz import handwriting as viz

        ds = dm.dataset(split)
        model = module.model
        lines = [(ds.text(i), torch.from_numpy(ds.offsets(i).copy())) for i in range(min(n, len(ds)))]
        return viz.run_pictures(model, lines, out_dir, split, sheet_text=SHEET_TEXT, biases=BIASES)


TASKS.add("handwriting", HandwritingTask())
