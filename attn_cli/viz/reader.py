"""Reader pictures: the document's tokens shaded by the reader's attention (Hermann et al. 2015, Fig. 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from attn_cli.viz.core import heatmap


def document_attention(
    model: Any,
    batch: dict[str, torch.Tensor],
    rows: list[dict[str, Any]],
    *,
    max_doc_len: int,
    out_dir: Path,
    split: str,
) -> list[Path]:
    """One heatmap per question of ``batch`` (its raw ``rows``: doc, question, answer): query tokens (the
    Impatient Reader's per-token attention) or the whole query (the Attentive Reader's one attention) ×
    the first 80 document tokens the model read (``max_doc_len``, 0: all), the answer's mentions in red."""
    out = model(batch["doc"], batch["doc_len"], batch["query"], batch["q_len"], batch["cand"])
    paths = []
    for i, row in enumerate(rows):
        doc = (row["doc"][:max_doc_len] if max_doc_len else row["doc"])[:80]
        w = out["attn"][i, :, : len(doc)]  # (Tq or 1, Td)
        q = row["question"] if w.size(0) > 1 else [" ".join(row["question"])]
        w = w[: len(q)]
        pred = f"@entity{int(out['logits'][i].argmax())}"
        marks = [(r, t) for r in range(w.size(0)) for t, tok in enumerate(doc) if tok == row["answer"]]
        paths.append(
            heatmap(
                w, [s[:60] for s in q], doc, out_dir / f"reader-{split}-{i}.png",
                title=f"answer {row['answer']}, predicted {pred} (red: the answer in the document)", marks=marks,
            )
        )  # fmt: skip
    return paths
