"""Pictures of a stack or list RNN reading a pattern (Joulin & Mikolov 2015, Table 3 and Fig. 3): what each stack
(list) holds and which action it takes at every step, under the input symbols and the predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from attn_cli.viz.core import line_plot, save  # core selects the headless Agg backend

SHOWN_DEPTH = 8  # cells drawn for the busiest memory


def stack_trace(
    model: Any, batch: dict[str, torch.Tensor], path: Path, *, symbols: str, rounding: bool = False
) -> Path:
    """One sequence (batch of one) read by a stack or list RNN: panels over time — every memory's first read cell
    (a stack's top s_t[0], a list's head), the probability of each action for every memory, and ``SHOWN_DEPTH``
    cells around that first cell of the memory whose first action (PUSH / INSERT) varies most over the sequence.
    Column labels are ``input→prediction`` (``symbols``: the pattern's, in id order); a red label marks a wrong
    prediction of a deterministic symbol."""
    out = model(batch["inp"], rounding=rounding, keep_memory=True)
    length = int(batch["mask"][0].sum())
    memory = out["memory"][0, :length].numpy()  # (T, K, S)
    actions = out["actions"][0, :length].numpy()  # (T, K, A)
    pred = out["logits"][0, :length].argmax(-1)
    inp, tgt, scored = batch["inp"][0, :length], batch["tgt"][0, :length], batch["scored"][0, :length]
    labels = [f"{symbols[int(i)]}→{symbols[int(p)]}" for i, p in zip(inp, pred, strict=True)]
    wrong = [bool(s) and int(p) != int(t) for p, t, s in zip(pred, tgt, scored, strict=True)]
    busiest = int(actions[:, :, 0].std(0).argmax())  # the memory whose PUSH / INSERT probability varies most
    name, head, k = model.memory_name, model.head, memory.shape[1]
    lo = max(0, head - SHOWN_DEPTH // 2)  # a stack from its top down; a list around its head
    first, where = ("top element s_t[0]", "top") if head == 0 else ("head cell", "head")
    panels = [(memory[:, :, head].T, f"{first} of each {name}", name, "viridis", (-1.0, 1.0))]
    panels += [
        (actions[:, :, a].T, f"P({action})", name, "gray_r", (0.0, 1.0)) for a, action in enumerate(model.action_names)
    ]
    panels.append((memory[:, busiest, lo : lo + SHOWN_DEPTH].T,
                   f"{name} {busiest}, cells {lo - head} to {lo - head + SHOWN_DEPTH - 1} from the {where}",
                   "cell", "viridis", (-1.0, 1.0)))  # fmt: skip
    heights = [k] * (len(panels) - 1) + [SHOWN_DEPTH]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 0.3 * length + 2), 2.2 + 0.25 * sum(heights)),
                             gridspec_kw={"height_ratios": heights})  # fmt: skip
    for ax, (values, title, ylabel, cmap, (vmin, vmax)) in zip(axes, panels, strict=True):
        ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xticks([])
    shown = panels[-1][0].shape[0]  # SHOWN_DEPTH, or fewer for a smaller memory
    axes[-1].set_yticks(range(shown), labels=[str(lo - head + i) for i in range(shown)], fontsize=7)  # from top/head
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
