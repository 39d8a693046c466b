"""Pictures of a stack RNN reading a pattern (Joulin & Mikolov 2015, Table 3 and Fig. 3): what each stack holds and
which action it takes at every step, under the input symbols and the predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from attn_cli.viz.core import line_plot, save  # core selects the headless Agg backend

SHOWN_DEPTH = 8  # stack elements drawn for the busiest stack


def stack_trace(
    model: Any, batch: dict[str, torch.Tensor], path: Path, *, symbols: str, rounding: bool = False
) -> Path:
    """One sequence (batch of one): four panels over time — every stack's top element s_t[0], P(PUSH) and
    P(POP) of every stack, and the top ``SHOWN_DEPTH`` elements of the stack whose P(PUSH) varies most over the sequence. Column
    labels are ``input→prediction`` (``symbols``: the pattern's, in id order); a red label marks a wrong prediction of a deterministic symbol."""
    out = model(batch["inp"], rounding=rounding, keep_stacks=True)
    length = int(batch["mask"][0].sum())
    stacks = out["stacks"][0, :length].numpy()  # (T, K, S)
    actions = out["actions"][0, :length].numpy()  # (T, K, A)
    pred = out["logits"][0, :length].argmax(-1)
    inp, tgt, scored = batch["inp"][0, :length], batch["tgt"][0, :length], batch["scored"][0, :length]
    labels = [f"{symbols[int(i)]}→{symbols[int(p)]}" for i, p in zip(inp, pred, strict=True)]
    wrong = [bool(s) and int(p) != int(t) for p, t, s in zip(pred, tgt, scored, strict=True)]
    busiest = int(actions[:, :, 0].std(0).argmax())  # the stack whose PUSH probability varies most: a counter
    k = stacks.shape[1]
    fig, axes = plt.subplots(4, 1, figsize=(max(6.0, 0.3 * length + 2), 2.2 + 0.25 * (3 * k + SHOWN_DEPTH)),
                             gridspec_kw={"height_ratios": [k, k, k, SHOWN_DEPTH]})  # fmt: skip
    panels = (
        (stacks[:, :, 0].T, "top element s_t[0] of each stack", "stack", "viridis", (-1.0, 1.0)),
        (actions[:, :, 0].T, "P(PUSH)", "stack", "gray_r", (0.0, 1.0)),
        (actions[:, :, 1].T, "P(POP)", "stack", "gray_r", (0.0, 1.0)),
        (stacks[:, busiest, :SHOWN_DEPTH].T, f"stack {busiest}, top {SHOWN_DEPTH} elements", "depth", "viridis",
         (-1.0, 1.0)),
    )  # fmt: skip
    for ax, (values, title, ylabel, cmap, (lo, hi)) in zip(axes, panels, strict=True):
        ax.imshow(values, cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xticks([])
    axes[-1].set_xticks(range(length), labels=labels, rotation=90, fontsize=7)
    for tick, bad in zip(axes[-1].get_xticklabels(), wrong, strict=True):
        if bad:
            tick.set_color("red")
    n = int(batch["n"][0])
    fig.suptitle(f"n = {n}{' (rounded actions)' if rounding else ''}: input→prediction", fontsize=10)
    return save(fig, path)


def accuracy_by_n(metrics: dict[str, float], label: str, max_n: int, out_dir: Path) -> Path:
    """% of the test sequences correct at each size n (``accuracy/n{n}`` of an evaluation), the paper's Fig. 2;
    the title says where training stopped."""
    sizes = sorted(int(k.split("/n")[1]) for k in metrics if k.startswith("accuracy/n"))
    return line_plot(
        {label: [metrics[f"accuracy/n{n}"] for n in sizes]},
        sizes,
        out_dir / "accuracy_by_n.png",
        xlabel="n",
        ylabel="% of sequences correct",
        title=f"trained on n ≤ {max_n}",
    )
