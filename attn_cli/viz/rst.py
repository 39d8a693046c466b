"""The recurrent spatial transformer's glimpses (Sønderby et al. 2015, Fig. 2/3): the input with each
step's affine glimpse drawn as the quadrilateral its sampling grid covers (one colour per step, the
step's number in a corner), beside each step's transformed output V_t and the digit read from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from attn_cli.viz.core import save
from attn_cli.viz.vision import _img, _to_px

COLOURS = ("lime", "orange", "cyan", "magenta", "yellow", "red")
# the output grid's corners in normalised coordinates, homogeneous, in drawing order (a closed path)
CORNERS = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]])


def glimpse_corners(theta: torch.Tensor) -> torch.Tensor:
    """Where the glimpse's corners fall in the input: theta (T, 2, 3) -> (T, 5, 2) normalised (x, y),
    the STN eq. (1) map of the output's corners (the path closes on the first)."""
    return torch.einsum("tij,kj->tki", theta, CORNERS.to(theta))


def viz_affine_steps(model: Any, batch: dict[str, torch.Tensor], out_dir: Path, title: str) -> list[Path]:
    """One PNG per example: the input with the glimpse box of every step, then each step's glimpse."""
    x = batch["x"]
    out = model(x)
    pred = out["logits"].argmax(-1)  # (B, T)
    paths = []
    for i in range(x.size(0)):
        _, h, w = x[i].shape
        steps = out["theta"].size(1)
        fig, axes = plt.subplots(1, steps + 1, figsize=(2.2 * (steps + 1), 2.5), squeeze=False)
        ax = axes[0, 0]
        ax.imshow(_img(x[i]), cmap="gray", vmin=0, vmax=1)
        corners = glimpse_corners(out["theta"][i]).cpu().numpy()  # (T, 5, 2)
        for t in range(steps):
            colour = COLOURS[t % len(COLOURS)]
            px = [_to_px(float(v), w) for v in corners[t, :, 0]]
            py = [_to_px(float(v), h) for v in corners[t, :, 1]]
            ax.plot(px, py, color=colour, linewidth=1.2)
            ax.text(px[0], py[0], str(t + 1), color=colour, fontsize=7, va="bottom", clip_on=True)  # off-image: hidden
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.axis("off")
        ax.set_title(f"label {batch['y'][i].tolist()} pred {pred[i].tolist()}", fontsize=7)
        for t in range(steps):
            a = axes[0, t + 1]
            a.imshow(np.clip(_img(out["glimpses"][i, t]), 0, 1), cmap="gray", vmin=0, vmax=1)
            a.axis("off")
            a.set_title(f"step {t + 1} ({COLOURS[t % len(COLOURS)]}): {int(pred[i, t])}", fontsize=7)
        fig.suptitle(title, fontsize=8)
        paths.append(save(fig, out_dir / f"rst-steps-{i}.png"))
    return paths
