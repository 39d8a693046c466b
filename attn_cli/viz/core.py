"""The visualisation core every family draws with (always headless, always PNG, always atomic).

* :func:`heatmap` — a rows × columns weight matrix with tick labels (alignments, hop weights).
* :func:`overlay` — an attention map upsampled over an image (captioning, glimpses).
* :func:`image_grid` — images in a grid with titles (STN inputs/outputs, DRAW canvases).
* :func:`panels` — one image then one panel per step, each with its own overlay and caption
  (Show, Attend and Tell's per-word figure).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from attn_cli.io import atomic_write  # noqa: E402


def _as_np(x: object) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()  # type: ignore[union-attr]
    return np.asarray(x, dtype=np.float32)


def save(fig: plt.Figure, path: str | Path, dpi: int = 110) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def heatmap(
    weights: object,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | Path,
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    marks: Sequence[tuple[int, int]] = (),
) -> Path:
    """Draw ``weights`` (R, C) with labelled rows/columns, darker = more attention (Bahdanau Fig. 3)."""
    w = _as_np(weights)
    rows, cols = w.shape
    fig, ax = plt.subplots(figsize=(max(3.0, 0.42 * cols + 1.5), max(2.5, 0.42 * rows + 1.2)))
    ax.imshow(w, cmap="gray_r", vmin=0.0, vmax=max(1e-9, float(w.max())), aspect="auto")
    ax.set_xticks(range(cols), labels=list(col_labels), rotation=90, fontsize=9)
    ax.set_yticks(range(rows), labels=list(row_labels), fontsize=9)
    for r, c in marks:
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    if title:
        ax.set_title(title, fontsize=10, pad=30)
    return save(fig, path)


def _upsample(attn: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a small (h, w) map to ``shape`` (H, W) without extra dependencies."""
    h, w = attn.shape
    ys = np.linspace(0, h - 1, shape[0])
    xs = np.linspace(0, w - 1, shape[1])
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = attn[y0][:, x0] * (1 - wx) + attn[y0][:, x1] * wx
    bot = attn[y1][:, x0] * (1 - wx) + attn[y1][:, x1] * wx
    return top * (1 - wy) + bot * wy


def _show_image(ax: plt.Axes, image: np.ndarray) -> None:
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = np.transpose(image, (1, 2, 0))
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    ax.axis("off")


def overlay(image: object, attn: object, path: str | Path, *, title: str = "", alpha: float = 0.6) -> Path:
    """An attention map (h, w), upsampled to the image and drawn over it."""
    fig, ax = plt.subplots(figsize=(3, 3))
    _overlay_ax(ax, _as_np(image), _as_np(attn), title, alpha)
    return save(fig, path)


def _overlay_ax(ax: plt.Axes, img: np.ndarray, attn: np.ndarray, title: str, alpha: float) -> None:
    _show_image(ax, img)
    size = img.shape[-2:] if img.ndim == 3 and img.shape[0] in (1, 3) else img.shape[:2]
    ax.imshow(_upsample(attn, tuple(size)), cmap="jet", alpha=alpha, extent=(-0.5, size[1] - 0.5, size[0] - 0.5, -0.5))
    if title:
        ax.set_title(title, fontsize=9)


def image_grid(
    images: Sequence[object], path: str | Path, *, titles: Sequence[str] = (), ncols: int = 8, suptitle: str = ""
) -> Path:
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.7 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show_image(ax, _as_np(images[i]))
            if i < len(titles):
                ax.set_title(titles[i], fontsize=8)
        else:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return save(fig, path)


def panels(
    image: object, maps: Sequence[object], words: Sequence[str], path: str | Path, *, ncols: int = 6, alpha: float = 0.6
) -> Path:
    """The image, then one panel per word with that step's attention overlaid."""
    img = _as_np(image)
    n = len(maps) + 1
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.0 * ncols, 2.1 * nrows), squeeze=False)
    flat = list(axes.flat)
    _show_image(flat[0], img)
    for i, ax in enumerate(flat[1:]):
        if i < len(maps):
            _overlay_ax(ax, img, _as_np(maps[i]), words[i] if i < len(words) else "", alpha)
        else:
            ax.axis("off")
    return save(fig, path)


def line_plot(
    series: dict[str, Sequence[float]],
    xs: Sequence[float],
    path: str | Path,
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
) -> Path:
    """Curves sharing an x axis (learning curves, length generalisation)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, ys in series.items():
        ax.plot(list(xs), list(ys), marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path)
