"""Handwriting pictures (Graves 2013): written lines as SVG and PNG, the soft window's weights φ(t, u) as a
characters × pen-steps heat map under the line it wrote (Fig. 13), sample sheets at several biases (Fig. 15)
and primed samples (Fig. 16)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attn_cli.data.handwriting import encode
from attn_cli.data.strokes import offsets_to_strokes
from attn_cli.io import atomic_write
from attn_cli.viz.core import plt, save

STEPS_PER_CHAR = 40  # a sampling budget per character; the window's stop rule ends a line well before it
UNCONDITIONED_STEPS = 300


def draw_line(ax: Any, offsets: Any, *, color: str = "black") -> None:
    """One line of pen offsets (T, 3) as strokes, pen lifts as gaps, equal x and y scales."""
    for stroke in offsets_to_strokes(np.asarray(offsets)):
        ax.plot(stroke[:, 0], stroke[:, 1], color=color, linewidth=1.2, solid_capstyle="round")
    ax.set_aspect("equal", adjustable="datalim")
    ax.axis("off")


def write_svg(offsets: Any, path: Path, *, title: str = "") -> Path:
    """The line as an SVG of polylines (y flipped to SVG's downward axis), 20 px per normalised unit."""
    strokes = [s * np.array([20.0, -20.0]) for s in offsets_to_strokes(np.asarray(offsets))]
    pts = np.concatenate(strokes) if strokes else np.zeros((1, 2))
    lo, hi = pts.min(0) - 10, pts.max(0) + 10
    width, height = hi - lo
    body = "".join(
        '<polyline fill="none" stroke="black" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" '
        f'points="{" ".join(f"{x - lo[0]:.1f},{y - lo[1]:.1f}" for x, y in s)}"/>\n'
        for s in strokes
    )
    text = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}">\n<title>{_xml(title)}</title>\n{body}</svg>\n'
    )
    return atomic_write(path, text)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def line_png(offsets: Any, path: Path, *, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(10, 1.8))
    draw_line(ax, offsets)
    if title:
        ax.set_title(title, fontsize=9)
    return save(fig, path)


def window_figure(offsets: Any, phi: Any, text: str, path: Path, *, title: str = "") -> Path:
    """The written line above its window weights φ (T, U): one row per character, one column per pen step."""
    phi = np.asarray(phi.detach().cpu() if hasattr(phi, "detach") else phi)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 2.2 + 0.16 * len(text)), height_ratios=(1, 2))
    draw_line(top, offsets)
    if title:
        top.set_title(title, fontsize=9)
    bottom.imshow(phi.T, cmap="gray_r", aspect="auto", interpolation="nearest", vmin=0.0)
    bottom.set_yticks(range(len(text)), labels=[c if c != " " else "␣" for c in text], fontsize=7)
    bottom.set_xlabel("pen step t")
    bottom.set_ylabel("character u")
    return save(fig, path)


def sheet(lines: Sequence[tuple[str, Any]], path: Path, *, title: str = "") -> Path:
    """Several written lines stacked, each under its label."""
    fig, axes = plt.subplots(len(lines), 1, figsize=(10, 1.5 * len(lines)), squeeze=False)
    for ax, (label, offsets) in zip(axes[:, 0], lines):
        draw_line(ax, offsets)
        ax.set_title(label, fontsize=9, loc="left")
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def write(
    model: Any, text: str | None, *, bias: float, seed: int, prime: tuple[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Sample one line: ``text`` through the window (synthesis) or nothing (prediction); ``prime`` a real line
    (its text, its offsets (P, 3)) whose style the sample continues."""
    gen = torch.Generator().manual_seed(seed)
    if not model.conditional:
        return dict(model.sample(None, steps=UNCONDITIONED_STEPS, bias=bias, generator=gen))
    assert text is not None
    full = f"{prime[0]} {text}" if prime is not None else text
    chars = torch.tensor(encode(full, model.alphabet), dtype=torch.long)
    out = dict(
        model.sample(chars, steps=STEPS_PER_CHAR * len(text), bias=bias, generator=gen,
                     prime=prime[1] if prime is not None else None)
    )  # fmt: skip
    return out


def run_pictures(
    model: Any,
    lines: Sequence[tuple[str, torch.Tensor]],
    out_dir: Path,
    split: str,
    *,
    sheet_text: str,
    biases: Sequence[float],
) -> list[Path]:
    """What ``attn visualize handwriting`` draws for a run (see :meth:`HandwritingTask.visualize`)."""
    paths = []
    with torch.no_grad():
        if not model.conditional:
            samples = [
                (f"bias {b:g}, seed {s}", write(model, None, bias=b, seed=s)["offsets"]) for b in biases for s in (0, 1)
            ]
            return [sheet(samples, out_dir / "samples.png", title="prediction network: unconditioned samples")]
        for i, (text, _) in enumerate(lines):
            out = write(model, text, bias=1.0, seed=i)
            paths.append(
                window_figure(out["offsets"], out["phi"][:, : len(text)], text, out_dir / f"window-{split}-{i}.png",
                              title=f"{text!r} (bias 1, seed {i}): window weights φ(t, u) below")
            )  # fmt: skip
        samples = [(f"bias {b:g}", write(model, sheet_text, bias=b, seed=0)["offsets"]) for b in biases]
        paths.append(
            sheet(
                samples, out_dir / "biases.png", title=f"{sheet_text!r} at biases {', '.join(f'{b:g}' for b in biases)}"
            )
        )
        primed = []
        for i, (text, offsets) in enumerate(lines):
            primed.append((f"real ({split} line {i}): {text}", offsets))
            primed.append(
                (
                    "primed with it: " + sheet_text,
                    write(model, sheet_text, bias=1.0, seed=i, prime=(text, offsets))["offsets"],
                )
            )
        paths.append(
            sheet(primed, out_dir / f"primed-{split}.png", title="priming: real lines and samples in their style")
        )
    return paths
