"""Pictures of an RL-NTM at work (Zaremba & Sutskever 2015, the execution traces of their Fig. 4-5): where the
input, memory and output heads are at every step, and which steps wrote a symbol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from attn_cli.viz.core import line_plot, save  # core selects the headless Agg backend


def symbol_name(s: int, symbols_from: int) -> str:
    """BLANK "_", END "∅", repeat counts "×m", data symbols "a", "b", ..."""
    if s == 0:
        return "_"
    if s == 1:
        return "∅"
    if s < symbols_from:
        return f"×{s - 1}"
    return chr(ord("a") + (s - symbols_from) % 26)


def head_trace(model: Any, batch: dict[str, torch.Tensor], path: Path, first: int) -> Path:
    """One example (a batch of one), the most probable actions: three panels over time, the input head's
    position (y labels: the input tape), the memory head's, and the output head's, with a dot where a symbol
    was written, labelled with it (red when wrong). ``first``: the first data symbol (after the repeat counts)."""
    out = model(batch["inp"], batch["in_len"], batch["out_len"], batch["steps"], sample=False)
    steps = out["in_pos"].size(1)
    t = list(range(steps))
    in_len, out_len = int(batch["in_len"][0]), int(batch["out_len"][0])
    inp = [symbol_name(int(s), first) for s in batch["inp"][0, :in_len]]
    tgt = batch["tgt"][0, :out_len]
    emitted = out["emitted"][0]
    pos = out["out_pos"][0]
    pred = out["logits"][0].argmax(-1)
    fig, axes = plt.subplots(3, 1, figsize=(max(6.0, 0.25 * steps + 2), 8), sharex=True)
    axes[0].step(t, out["in_pos"][0].tolist(), where="post", color="tab:blue")
    axes[0].set_yticks(range(in_len), labels=inp, fontsize=7)
    axes[0].set_ylabel("input head")
    axes[1].step(t, out["mem_pos"][0].tolist(), where="post", color="tab:green")
    axes[1].set_ylabel("memory head (cell)")
    axes[1].set_ylim(-0.5, int(out["mem_pos"][0].max()) + 0.5)
    axes[1].yaxis.get_major_locator().set_params(integer=True)
    axes[2].step(t, pos.tolist(), where="post", color="tab:gray")
    for step in range(steps):
        if bool(emitted[step]):
            p, y = int(pos[step]), int(pred[step])
            ok = y == int(tgt[min(p, out_len - 1)])
            axes[2].plot(step, p, "o", color="black" if ok else "red", markersize=4)
            axes[2].annotate(symbol_name(y, first), (step, p), textcoords="offset points", xytext=(0, 5),
                             fontsize=7, ha="center", color="black" if ok else "red")  # fmt: skip
    axes[2].set_yticks(range(out_len), labels=[symbol_name(int(s), first) for s in tgt], fontsize=7)
    axes[2].set_ylabel("output head (target)")
    axes[2].set_xlabel("time step")
    fig.suptitle(f"C = {int(batch['length'][0])}: head positions over time (dots: symbols written)", fontsize=10)
    return save(fig, path)


def accuracy_by_length(metrics: dict[str, float], label: str, max_length: int, out_dir: Path) -> Path:
    """% of the test sequences correct at each length C (``accuracy/len{C}`` of an evaluation)."""
    sizes = sorted(int(k.split("/len")[1]) for k in metrics if k.startswith("accuracy/len"))
    return line_plot(
        {label: [metrics[f"accuracy/len{n}"] for n in sizes]},
        sizes,
        out_dir / "accuracy_by_length.png",
        xlabel="sequence length C",
        ylabel="% of sequences correct",
        title=f"trained on C ≤ {max_length}",
    )
