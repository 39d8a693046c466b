"""Visual attention pictures, drawn from a model and a batch of images (``x`` (B, C, H, W), ``y``):

* :func:`viz_glimpses` — RAM / DRAM (Mnih et al. 2014, Fig. 2; Ba et al. 2015): the glimpse trajectory
  and the retina's patches at every scale;
* :func:`viz_stn` — spatial transformers (Jaderberg et al. 2015, Fig. 1/3): the sampling grid on the input
  beside each transformer's output;
* :func:`viz_draw` — DRAW (Gregor et al. 2015, Fig. 3/7): read boxes of a classifier, or the canvas over
  time with the read and write boxes and samples from the prior.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from attn_cli.attention.spatial import retina
from attn_cli.errors import AttnError
from attn_cli.viz.core import image_grid, save


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
    if p is None:
        return
    cx, cy = float(p["gx"][i]) - 1, float(p["gy"][i]) - 1  # 1-based filter centres -> 0-based pixels
    half = float(p["delta"][i]) * n / 2
    ax.add_patch(plt.Rectangle((cx - half, cy - half), 2 * half, 2 * half, fill=False, edgecolor=color, linewidth=1))


def viz_draw(model: Any, batch: dict[str, torch.Tensor], out_dir: Path, title: str) -> list[Path]:
    """DRAW: the canvas over time steps with the read (green) and write (red) boxes; samples from the prior."""
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
