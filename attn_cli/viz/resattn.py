"""Pictures of the two 2017 image-classification attention models, drawn from a model and a batch:

* :func:`viz_masks` — Residual Attention Network (Wang et al. 2017, Fig. 1/5): every attention module's
  soft mask, averaged over its channels and upsampled to the image, laid over the input, from the
  first stage (fine, low-level) to the last (coarse, object-level);
* :func:`viz_zoom` — RA-CNN (Fu et al. 2017, Fig. 1/5): the nested attended squares of every scale drawn
  on the image, beside the zoomed input each scale classified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle

from attn_cli.errors import AttnError
from attn_cli.viz.core import save

COLOURS = ("lime", "orange", "cyan", "magenta")


def _img(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) -> grey (H, W) for one channel, colour (H, W, 3) for three."""
    if x.size(0) == 3:
        return x.permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    return x.mean(0).cpu().numpy()


def viz_masks(model: Any, batch: dict[str, torch.Tensor], out_dir: Path, title: str) -> list[Path]:
    """Residual attention: one row per image, the input then each module's mean mask over it (jet, α 0.5)."""
    x = batch["x"]
    masks = model.masks(x)  # each (B, C_m, H_m, W_m)
    if not masks:
        raise AttnError("this resattn recipe has mask: none (the ResNet baseline); there is no mask to draw")
    pred = model.logits(x).argmax(-1)
    h, w = x.shape[-2:]
    paths = []
    for i in range(x.size(0)):
        fig, axes = plt.subplots(1, 1 + len(masks), figsize=(1.9 * (1 + len(masks)), 2.2), squeeze=False)
        image = _img(x[i])
        axes[0, 0].imshow(image, cmap="gray")
        axes[0, 0].set_title(f"label {int(batch['y'][i])} pred {int(pred[i])}", fontsize=7)
        for m, mask in enumerate(masks):
            mean = mask[i : i + 1].mean(1, keepdim=True)  # (1, 1, H_m, W_m)
            up = F.interpolate(mean, size=(h, w), mode="bilinear", align_corners=False)[0, 0].cpu().numpy()
            ax = axes[0, m + 1]
            ax.imshow(image, cmap="gray")
            ax.imshow(up, cmap="jet", alpha=0.5)
            ax.set_title(f"module {m + 1} ({mask.size(-1)}×{mask.size(-2)})", fontsize=7)
        for ax in axes[0]:
            ax.axis("off")
        fig.suptitle(title, fontsize=8)
        paths.append(save(fig, out_dir / f"resattn-masks-{i}.png"))
    return paths


def nested_boxes(boxes: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each scale's box (B, 3) is in the coordinates of the crop before it; map all to scale 1's coordinates
    (centre c' = c_prev + tl_prev·c, half side tl' = tl_prev·tl)."""
    out: list[torch.Tensor] = []
    for box in boxes:
        if out:
            prev = out[-1]
            centre = prev[:, :2] + prev[:, 2:] * box[:, :2]
            box = torch.cat([centre, prev[:, 2:] * box[:, 2:]], dim=1)
        out.append(box)
    return out


def square_in_pixels(box: torch.Tensor, size: int) -> tuple[float, float, float]:
    """A box (tx, ty, tl) in normalised coordinates -> imshow's (left, top, side) on a size×size image: the
    normalised u is the pixel coordinate (u + 1)·size/2 − 0.5 (pixel centres), so the square spans tl·size pixels."""
    tx, ty, tl = (float(v) for v in box)
    return (tx - tl + 1) * size / 2 - 0.5, (ty - tl + 1) * size / 2 - 0.5, tl * size


def viz_zoom(model: Any, batch: dict[str, torch.Tensor], out_dir: Path, title: str) -> list[Path]:
    """RA-CNN: scale 1's input with every scale's square on it (nested), then each scale's zoomed input."""
    x = batch["x"]
    att = model.attend(x)
    preds = model.predict(x, batch["y"])
    boxes = nested_boxes(att["boxes"])
    paths = []
    for i in range(x.size(0)):
        inputs = att["inputs"]
        fig, axes = plt.subplots(1, 1 + len(inputs), figsize=(2.2 * (1 + len(inputs)), 2.5), squeeze=False)
        size = inputs[0].size(-1)
        ax = axes[0, 0]
        ax.imshow(_img(inputs[0][i]), cmap="gray", vmin=0, vmax=1)
        for s, box in enumerate(boxes):
            x0, y0, side = square_in_pixels(box[i], size)
            ax.add_patch(Rectangle((x0, y0), side, side, fill=False, edgecolor=COLOURS[s % 4], lw=1.2))
        ax.set_title(f"label {int(batch['y'][i])}, fused pred {int(preds['pred'][i])}", fontsize=7)
        for s, inp in enumerate(inputs):
            a = axes[0, s + 1]
            a.imshow(_img(inp[i]), cmap="gray", vmin=0, vmax=1)
            a.set_title(f"scale {s + 1} input (pred {int(preds[f'pred_scale{s + 1}'][i])})", fontsize=7)
        for a in axes[0]:
            a.axis("off")
        fig.suptitle(title, fontsize=8)
        paths.append(save(fig, out_dir / f"racnn-zoom-{i}.png"))
    return paths
