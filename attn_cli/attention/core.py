"""The one masked softmax (mask convention: ``bool``, True = keep; DESIGN §3.2), and the batched
product every score and context goes through (:data:`Matmul`)."""

from __future__ import annotations

from collections.abc import Callable

import torch

Matmul = Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor]
"""``matmul(a, x, transpose)``: a @ x (or a @ xᵀ over the last two dims), batched over dim 0. Attention takes
it as an argument so that a teacher-forced step loop can sum the gradient of the memory it reads at every step
in one product after the loop (:meth:`attn_cli.nn.rnn.RaggedSteps.matmul`) instead of one per step."""


def bmm(a: torch.Tensor, x: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """The plain :data:`Matmul`: (B, n, k) @ (B, k, m), or @ xᵀ for x (B, m, k) with ``transpose``."""
    return torch.bmm(a, x.transpose(1, 2) if transpose else x)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None, dim: int = -1) -> torch.Tensor:
    """Softmax of ``scores`` over ``dim`` where ``mask`` is True; masked entries get exactly 0.

    ``mask`` broadcasts against ``scores`` (e.g. (B, 1, Tk) against (B, Tq, Tk)). A row
    with no kept entry returns zeros rather than NaN.
    """
    if mask is None:
        return torch.softmax(scores, dim=dim)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=dim)
    return weights * mask.to(weights.dtype)


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask, True inside each sequence."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)
