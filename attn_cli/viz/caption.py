"""Captioning pictures: per-word attention over the image (Xu et al. 2015, Fig. 2-3) and per-word
attention over a video's frames (Yao et al. 2015, Fig. 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from attn_cli.viz.core import panels, save


def attention_pictures(
    model: Any,
    x: torch.Tensor,
    words: list[list[str]],
    attns: list[torch.Tensor | None],
    out_dir: Path,
    *,
    split: str,
    title: str,
) -> list[Path]:
    """One picture per caption of the inputs ``x``: image panels when the model attends over a spatial grid
    (``model.grid``), else a frame strip; captions without words or attention are skipped."""
    paths = []
    for i, (w, attn) in enumerate(zip(words, attns)):
        if attn is None or not w:
            continue
        if model.grid is not None:
            paths.append(image_panels(x[i], attn, w, model.grid, out_dir / f"attention-{split}-{i}.png"))
        else:
            paths.append(frame_strip(x[i], attn, w, out_dir / f"frames-{split}-{i}.png", title))
    return paths


def image_panels(image: torch.Tensor, attn: torch.Tensor, words: list[str], grid: tuple[int, int], path: Path) -> Path:
    """The image, then one panel per generated word with its α_t upsampled over the image."""
    maps = [attn[t].view(*grid).numpy() for t in range(len(words))]
    return panels(image.numpy(), maps, [f"{w}" for w in words], path)


def frame_strip(video: torch.Tensor, attn: torch.Tensor, words: list[str], path: Path, title: str) -> Path:
    """Frames on top, then one row per word with its attention over the frames (Yao et al. Fig. 4)."""
    import matplotlib.pyplot as plt

    frames = video.numpy()  # (T, C, H, W)
    t = frames.shape[0]
    fig, axes = plt.subplots(
        2,
        1,
        figsize=(max(4, 0.8 * t), 1.2 + 0.3 * len(words)),
        gridspec_kw={"height_ratios": [1, max(1, len(words) / 3)]},
    )
    strip = np.concatenate([f[0] for f in frames], axis=1)  # (H, T·W)
    axes[0].imshow(strip, cmap="gray")
    axes[0].axis("off")
    axes[0].set_title(title, fontsize=9)
    axes[1].imshow(attn[: len(words)].numpy(), aspect="auto", cmap="Greys", vmin=0)
    axes[1].set_yticks(range(len(words)), words, fontsize=7)
    axes[1].set_xticks(range(t), [str(k + 1) for k in range(t)], fontsize=7)
    axes[1].set_xlabel("frame")
    return save(fig, path)
