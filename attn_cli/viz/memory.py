"""Memory pictures: a bAbI story's sentences × hops (Sukhbaatar et al. 2015, Fig. 2) or DMN episodes
(Kumar et al. 2016), and an NTM's read and write weightings over time (Graves et al. 2014, Fig. 6)
with its length-generalisation curve and the learning curves of recorded runs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
import yaml

from attn_cli.io import read_curve
from attn_cli.viz.core import heatmap, line_plot, save


def fact_marks(ranks: torch.Tensor, passes: int, *, per_pass: bool) -> list[tuple[int, int]]:
    """(memory, hop) cells to box: ``ranks`` (M,) holds k on the k-th supporting fact, 0 elsewhere.

    ``per_pass``: hop t boxes the fact it is asked to read, the t-th supporting fact, and a hop past the
    question's last fact K boxes fact K again (the DMN's supervision, :func:`attn_cli.models.dmn.pass_targets`;
    Kumar et al. 2016 §3); a fact that fell out of memory boxes nothing. Otherwise every supporting fact is
    boxed on every hop (MemN2N: no hop is told which fact to read).
    """
    present = [(j, int(r)) for j, r in enumerate(ranks.tolist()) if r > 0]
    if not per_pass:
        return [(j, t) for j, _ in present for t in range(passes)]
    last = max((r for _, r in present), default=0)
    return [(j, t) for t in range(passes) for j, r in present if r == min(t + 1, last)]


def story_hops(
    model: Any,
    batch: dict[str, torch.Tensor],
    rows: list[dict[str, Any]],
    *,
    memory_size: int,
    answers: list[str],
    label: str,
    out_dir: Path,
    split: str,
    per_pass: bool = False,
) -> list[Path]:
    """One heatmap per story of ``batch`` (its raw ``rows``: story, question, answer, task): the sentences
    kept in memory (the last ``memory_size``) × ``label``s (hop or episode), supporting facts boxed in red:
    with ``per_pass``, the t-th supporting fact on hop t only (:func:`fact_marks`)."""
    out = model(batch["story"], batch["story_len"], batch["question"])
    paths = []
    for i, ex in enumerate(rows):
        m = int(batch["story_len"][i])
        start = max(0, len(ex["story"]) - memory_size)
        sents = [" ".join(s) for s in ex["story"][start:]] or [""]
        weights = out["attn"][i, :, :m].T  # (M, K)
        pred = answers[int(out["logits"][i].argmax())]
        marks = fact_marks(batch["supporting"][i, :m], weights.size(1), per_pass=per_pass)
        title = f"{' '.join(ex['question'])}? answer: {ex['answer']}, predicted: {pred} (qa{ex['task']})"
        cols = [f"{label} {k + 1}" for k in range(weights.size(1))]
        paths.append(heatmap(weights, sents, cols, out_dir / f"{label}s-{split}-{i}.png", title=title, marks=marks))
    return paths


def ntm_weightings(model: Any, batches: list[dict[str, torch.Tensor]], out_dir: Path, split: str) -> list[Path]:
    """Read and write weightings over time of each one-sequence batch, cut to the locations actually used
    (weight > 0.05 somewhere; the first 16 when none is)."""
    paths = []
    for i, batch in enumerate(batches):
        out = model(batch["inp"])
        for head in ("read", "write"):
            w = out[f"{head}_w"][0].T  # (N, T)
            used = (w.max(1).values > 0.05).nonzero()[:, 0]
            lo, hi = (int(used.min()), int(used.max()) + 1) if len(used) else (0, min(16, w.size(0)))
            w = w[lo:hi]
            paths.append(
                heatmap(
                    w,
                    [str(r) for r in range(lo, hi)],
                    [str(t) for t in range(w.size(1))],
                    out_dir / f"ntm-{head}-{split}-{i}.png",
                    title=f"{head} weightings, length {int(batch['length'][0])}",
                    xlabel="time",
                    ylabel="location",
                )
            )
    return paths


def length_generalisation(
    metrics: dict[str, float], name: str, out_dir: Path, *, task: str = "copy", size: str = "sequence length"
) -> list[Path]:
    """Wrong bits per sequence (``bit_errors/lenN``, the issue's target: < 1 up to length 60) and cost per
    sequence (``bits_per_seq/lenN``, the y axis of Graves et al. Fig. 4) against the test sizes of an
    evaluation's ``metrics``; nothing when it scored no sizes."""
    lens = sorted(int(k.split("len")[1]) for k in metrics if k.startswith("bits_per_seq/len"))
    if not lens:
        return []
    return [
        line_plot(
            {name: [metrics[f"{key}/len{x}"] for x in lens]},
            lens,
            out_dir / f"length-generalisation-{stem}.png",
            xlabel=size,
            ylabel=ylabel,
            title=f"{task}: {ylabel} by test {size}",
        )
        for key, stem, ylabel in (
            ("bit_errors", "errors", "wrong bits per sequence"),
            ("bits_per_seq", "cost", "cost per sequence (bits)"),
        )
    ]


def learning_curves(records: dict[str, Path], path: Path, *, title: str, floor: float | None = None) -> Path:
    """Cost per sequence (bits) against sequences seen, one curve per recorded run (``label -> record folder``),
    as Graves et al. draw their learning curves (Fig. 3, 7, 10, 13, 18): the logged training cost (the mean
    over one batch, every ``log_every_n_steps``) as a line and the validation cost as dots. Sequences seen
    are (step + 1) × the record's batch size. ``floor``: a dashed line (the Bayes-optimal N-gram cost)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, folder in records.items():
        batch = int(yaml.safe_load((folder / "recipe.yaml").read_text(encoding="utf-8"))["train"]["batch_size"])
        rows = read_curve(folder)
        train = [((int(r["step"]) + 1) * batch, float(r["train/loss"]) / math.log(2)) for r in rows if r["train/loss"]]
        val = [((int(r["step"]) + 1) * batch, float(r["val/bits_per_seq"])) for r in rows if r.get("val/bits_per_seq")]
        (line,) = ax.plot(*zip(*train), lw=0.8, alpha=0.8, label=f"{label} (training)")
        if val:
            ax.plot(*zip(*val), "o", ms=4, color=line.get_color(), label=f"{label} (validation)")
    if floor is not None:
        ax.axhline(floor, ls="--", color="k", lw=1, label="Bayes-optimal")
    ax.set_xlabel("sequences seen")
    ax.set_ylabel("cost per sequence (bits)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save(fig, path)
