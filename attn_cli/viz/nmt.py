"""NMT pictures: Bahdanau et al. (2015) Fig. 3-style alignments, source × output, with Luong et al.'s
(2015, §3.2) local-p window centres p_t marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from attn_cli.viz.core import heatmap


def alignments(
    model: Any,
    batch: dict[str, torch.Tensor],
    hyps: list[Any],
    src_tokens: list[list[str]],
    tgt_itos: list[str],
    out_dir: Path,
    *,
    bos: int,
    split: str,
    name: str,
) -> list[Path]:
    """One heatmap per decoded hypothesis: the weights each output token (and ``</s>``) was produced with.

    ``hyps`` are the decoder's hypotheses for ``batch``; the weights are those of a teacher-forced pass
    over each hypothesis (the model's own attention, not the beam's bookkeeping), cut to the real source
    tokens; ``bos`` starts each teacher-forced target. Run under ``torch.no_grad()``.
    """
    paths = []
    for i, hyp in enumerate(hyps):
        src = src_tokens[i]
        out_tokens = [tgt_itos[t] for t in hyp.tokens] + ["</s>"]
        tgt_in = torch.tensor([[bos, *hyp.tokens]])
        res = model(batch["src"][i : i + 1, : len(src) or 1], batch["src_len"][i : i + 1], tgt_in)
        weights = res["attn"][0, :, : len(src)]  # (T_out, Tk)
        marks = []
        if res.get("centers") is not None:
            marks = [(t, int(round(float(p)))) for t, p in enumerate(res["centers"][0]) if round(float(p)) < len(src)]
        title = f"{name}: example {i}" + (" (red: local-p centres p_t)" if marks else "")
        paths.append(
            heatmap(
                weights,
                out_tokens,
                src,
                out_dir / f"alignment-{split}-{i}.png",
                title=title,
                xlabel="source",
                ylabel="output",
                marks=marks,
            )
        )
    return paths
