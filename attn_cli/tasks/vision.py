"""The visual attention task: RAM, DRAM, STN, DRAW and their FC/CNN baselines on MNIST variants.

Metrics: ``error`` (top-1 error, %) for classifiers, ``seq_error`` (a sequence is wrong if any
digit is) and ``digit_error`` for DRAM, ``nll`` (the DRAW variational bound, nats per image) for
generation. Every model follows one contract: ``loss(x, y) -> (loss, logs)``,
``predict(x, y) -> per-example tensors`` and ``kind`` in {classify, sequence, generate}.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attn_cli.config import Recipe
from attn_cli.data.vision import VisionDataConfig, VisionDataModule
from attn_cli.errors import AttnError
from attn_cli.registry import TASKS
from attn_cli.tasks.base import AttnModule, Task


@dataclass(frozen=True)
class VisionEvalConfig:
    seed: int = 0  # DRAW: the posterior samples of the evaluation bound are drawn from this seed
    samples: int = 0  # RAM: 0 follows the policy's mean; M > 0 averages M sampled glimpse trajectories


class VisionModule(AttnModule):
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, logs = self.model.loss(batch["x"], batch["y"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        for k, v in logs.items():
            self.log(f"train/{k}", v, batch_size=len(batch["ids"]))
        return loss

    def predict_rows(self, batch: dict[str, torch.Tensor], split: str, *, final: bool = True) -> list[dict[str, Any]]:
        kind = self.model.kind
        seed = self.recipe.eval.seed * 1_000_003 + int(batch["ids"][0])  # per batch, reproducible
        if kind == "generate":
            out = self.model.predict(batch["x"], batch["y"], seed=seed)
        elif self.recipe.eval.samples > 0:
            if self.recipe.model_name != "ram":
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
            rows.append(row)
        return rows

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
        self.metrics_info = {"metric": "top-1 error (%) on the full split, policy mean locations for RAM"}
        return {"error": 100.0 * sum(r["pred"] != r["label"] for r in rows) / n, "loss": loss}


class VisionTask(Task):
    name = "vision"
    summary = "visual attention: RAM, DRAM, spatial transformers, DRAW on MNIST and its variants"
    data_config = VisionDataConfig
    eval_config = VisionEvalConfig
    models = ("fc", "cnn", "grid-cnn", "ram", "dram", "stn", "draw")
    module_class = VisionModule
    metric_units = {"error": "%", "seq_error": "%", "digit_error": "%", "nll": "nats", "lz": "nats", "loss": "nats"}

    def datamodule(self, recipe: Recipe, data_dir: Path) -> VisionDataModule:
        t = recipe.train
        dm = VisionDataModule(recipe.data, data_dir, t.batch_size, t.seed, t.num_workers)
        generative = recipe.model_name == "draw" and getattr(recipe.model, "mode", "") == "generate"
        if not dm.manifest.get("labelled", True) and not generative:
            raise AttnError(
                f"{recipe.data.dataset} has no labels (a density-estimation set); train a DRAW generation recipe "
                f"on it (draw-gen, draw-gen-noattn), not {recipe.name}"
            )
        return dm

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        name = module.recipe.model_name
        fn = {"ram": viz_glimpses, "dram": viz_glimpses, "stn": viz_stn, "draw": viz_draw}.get(name)
        if fn is None:
            raise AttnError(
                f"{name} ({module.recipe.name}) has no attention to draw; visualise a ram, dram, stn or draw run"
            )
        ds = dm.dataset(split)
        batch = dm.collate([ds[i] for i in range(min(n, len(ds)))])
        module.eval()
        with torch.no_grad():
            return fn(module.model, batch, out_dir, f"{module.recipe.name} ({split})")


# -- visualisations ---------------------------------------------------------------------------


def _to_px(v: float, size: int) -> float:
    """Normalised coordinate (align_corners=False) -> pixel coordinate for imshow."""
    return (v + 1) * size / 2 - 0.5


def _img(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) -> what imshow draws: grey for one channel, colour for three, else the channels' mean."""
    if x.size(0) == 1:
        return x[0].cpu().numpy()
    if x.size(0) == 3:
        return x.permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    return x.mean(0).cpu().numpy()


def _planes(x: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """(C, H, W) -> the panels to draw: the image itself (grey or colour), or each channel of another C
    (MNIST addition's two digits are two channels: their mean would draw both as one faint picture)."""
    if x.size(0) in (1, 3):
        return [("", _img(x))]
    return [(f"channel {c + 1}", x[c].cpu().numpy()) for c in range(x.size(0))]


def viz_glimpses(model: Any, batch: dict[str, torch.Tensor], out_dir: Path, title: str) -> list[Path]:
    """RAM/DRAM: the glimpse trajectory in green over the digit (squares: each scale), then the glimpses."""
    import matplotlib.pyplot as plt

    from attn_cli.attention.spatial import retina
    from attn_cli.viz.core import save

    cfg = model.cfg
    x = batch["x"]
    out = model(x, sample_locations=False)
    locs = out["locations"]  # (B, T, 2)
    pred = out["logits"].argmax(-1)
    paths = []
    for i in range(x.size(0)):
        _, h, w = x[i].shape
        t_steps = locs.size(1)
        fig, axes = plt.subplots(
            cfg.scales, t_steps + 1, figsize=(1.6 * (t_steps + 1), 1.7 * cfg.scales), squeeze=False
        )
        ax = axes[0, 0]
        ax.imshow(_img(x[i]), cmap="gray")
        px = [_to_px(float(v), w) for v in locs[i, :, 0]]
        py = [_to_px(float(v), h) for v in locs[i, :, 1]]
        ax.plot(px, py, "-o", color="lime", markersize=3, linewidth=1.2)
        for t in range(t_steps):
            for s in range(cfg.scales):
                side = cfg.glimpse_size * 2**s
                ax.add_patch(
                    plt.Rectangle(
                        (px[t] - side / 2, py[t] - side / 2), side, side, fill=False, edgecolor="lime", linewidth=0.6
                    )
                )
        ax.set_title(f"label {batch['y'][i].tolist()} pred {pred[i].tolist()}", fontsize=7)
        for r in range(cfg.scales):
            axes[r, 0].axis("off")
        for t in range(t_steps):
            patch, _ = retina(x[i : i + 1], locs[i : i + 1, t], cfg.glimpse_size, cfg.scales)  # (1, S, C, g, g)
            for s in range(cfg.scales):
                a = axes[s, t + 1]
                a.imshow(_img(patch[0, s]), cmap="gray", vmin=0, vmax=1)
                a.axis("off")
                if s == 0:
                    a.set_title(f"glimpse {t + 1}", fontsize=7)
        fig.suptitle(title, fontsize=8)
        paths.append(save(fig, out_dir / f"glimpses-{i}.png"))
    return paths


def viz_stn(model: Any, batch: dict[str, torch.Tensor], out_dir: Path, title: str) -> list[Path]:
    """STN: the input with the sampling grid drawn on it, beside each transformer's output."""
    import matplotlib.pyplot as plt

    from attn_cli.viz.core import save

    if not model.sts:
        raise AttnError("this stn recipe has transform: none; there is no transformer to draw")
    x = batch["x"]
    res = model.transform(x)
    pred = model.logits(x).argmax(-1)
    paths = []
    k = len(res["grids"])
    colors = ["lime", "orange", "cyan", "magenta"]
    for i in range(x.size(0)):
        _, h, w = x[i].shape
        planes = _planes(x[i])
        fig, axes = plt.subplots(len(planes), 1 + k, figsize=(2.4 * (1 + k), 2.6 * len(planes)), squeeze=False)
        for row, (name, img) in enumerate(planes):
            ax = axes[row, 0]
            ax.imshow(img, cmap="gray")
            for j, grid in enumerate(res["grids"]):
                g = grid[i].cpu().numpy()  # (h', w', 2)
                gx, gy = _to_px(g[..., 0], w), _to_px(g[..., 1], h)
                step = max(1, g.shape[0] // 8)
                for r in list(range(0, g.shape[0], step)) + [g.shape[0] - 1]:
                    ax.plot(gx[r], gy[r], color=colors[j % 4], linewidth=0.6)
                for c in list(range(0, g.shape[1], step)) + [g.shape[1] - 1]:
                    ax.plot(gx[:, c], gy[:, c], color=colors[j % 4], linewidth=0.6)
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            ax.axis("off")
            ax.set_title(f"input {name} + grid (label {batch['y'][i].tolist()})".replace("  ", " "), fontsize=7)
            for j, v in enumerate(res["transformed"]):
                out_planes = _planes(v[i])
                a = axes[row, j + 1]
                a.imshow(out_planes[min(row, len(out_planes) - 1)][1], cmap="gray", vmin=0, vmax=1)
                a.axis("off")
                a.set_title(f"ST {j + 1} output {name} (pred {pred[i].tolist()})".replace("  ", " "), fontsize=7)
        fig.suptitle(title, fontsize=8)
        paths.append(save(fig, out_dir / f"stn-{i}.png"))
    return paths


def _box(ax: Any, p: dict[str, torch.Tensor] | None, i: int, n: int, color: str) -> None:
    import matplotlib.pyplot as plt

    if p is None:
        return
    cx, cy = float(p["gx"][i]) - 1, float(p["gy"][i]) - 1  # 1-based filter centres -> 0-based pixels
    half = float(p["delta"][i]) * n / 2
    ax.add_patch(plt.Rectangle((cx - half, cy - half), 2 * half, 2 * half, fill=False, edgecolor=color, linewidth=1))


def viz_draw(model: Any, batch: dict[str, torch.Tensor], out_dir: Path, title: str) -> list[Path]:
    """DRAW: the canvas over time steps with the read (green) and write (red) boxes; samples from the prior."""
    import matplotlib.pyplot as plt

    from attn_cli.viz.core import image_grid, save

    cfg, x = model.cfg, batch["x"]
    paths = []
    if cfg.mode == "classify":
        logits, reads = model.glimpses(x)
        for i in range(x.size(0)):
            fig, ax = plt.subplots(figsize=(3, 3))
            ax.imshow(_img(x[i]), cmap="gray")
            for t, p in enumerate(reads):
                _box(ax, p, i, cfg.read_n, plt.cm.viridis(t / max(1, len(reads) - 1)))
            ax.set_title(f"read boxes over {len(reads)} glimpses; pred {int(logits[i].argmax())}", fontsize=7)
            ax.axis("off")
            paths.append(save(fig, out_dir / f"draw-reads-{i}.png"))
        return paths
    out = model(x, generator=torch.Generator().manual_seed(0))
    steps = np.unique(np.linspace(0, cfg.steps - 1, min(10, cfg.steps)).round().astype(int))
    for i in range(x.size(0)):
        fig, axes = plt.subplots(1, len(steps) + 1, figsize=(1.5 * (len(steps) + 1), 1.8), squeeze=False)
        axes[0, 0].imshow(_img(x[i]), cmap="gray")
        axes[0, 0].set_title("input", fontsize=7)
        axes[0, 0].axis("off")
        for j, t in enumerate(steps):
            a = axes[0, j + 1]
            a.imshow(_img(out["canvases"][t][i]), cmap="gray", vmin=0, vmax=1)
            _box(a, out["reads"][t], i, cfg.read_n, "lime")
            _box(a, out["writes"][t], i, cfg.write_n, "red")
            a.set_xlim(-0.5, x.size(3) - 0.5)
            a.set_ylim(x.size(2) - 0.5, -0.5)
            a.axis("off")
            a.set_title(f"t={t + 1}", fontsize=7)
        fig.suptitle(title + " — read green, write red", fontsize=8)
        paths.append(save(fig, out_dir / f"draw-canvas-{i}.png"))
    gen = model.generate(16, generator=torch.Generator().manual_seed(1))
    paths.append(
        image_grid(
            [c[0] for c in gen["canvases"][-1]],
            out_dir / "draw-samples.png",
            ncols=8,
            suptitle="samples from the prior",
        )
    )
    return paths


TASKS.add("vision", VisionTask())
