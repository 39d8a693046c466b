"""Soft attention over a memory: global (Bahdanau; Luong §3.1) and local (Luong §3.2, local-m and local-p).

    a_t(s) = softmax_s score(h_t, h̄_s)                        global, Luong eq. (7)
    c_t    = Σ_s a_t(s) h̄_s                                    context
    local-m: p_t = t, a_t restricted to the window [p_t − D, p_t + D]
    local-p: p_t = S · sigmoid(v_pᵀ tanh(W_p h_t))               Luong eq. (9)
             a_t(s) = align(h_t, h̄_s) · exp(−(s − p_t)² / 2σ²),  σ = D/2      Luong eq. (10)

``align`` is the softmax restricted to the window. As in the paper, the Gaussian factor
is applied after the softmax, so local-p weights sum to at most 1 (no renormalisation).
S is each sentence's own source length; positions are 0-based (p_t ∈ [0, S]).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import nn

from attn_cli.attention.core import Matmul, bmm, masked_softmax
from attn_cli.attention.scores import make_score

Kind = Literal["global", "local-m", "local-p"]


class AttentionOutput(NamedTuple):
    context: torch.Tensor  # (B, Tq, Dk)
    weights: torch.Tensor  # (B, Tq, Tk)
    centers: torch.Tensor | None  # (B, Tq) window centres p_t for local attention


def local_window(centers: torch.Tensor, tk: int, width: int) -> torch.Tensor:
    """(B, Tq) centres -> (B, Tq, Tk) bool, True where |s − p_t| ≤ D."""
    positions = torch.arange(tk, device=centers.device, dtype=centers.dtype)  # (Tk,)
    return (positions[None, None, :] - centers.unsqueeze(-1)).abs() <= width


def gaussian_window(centers: torch.Tensor, tk: int, sigma: float) -> torch.Tensor:
    """(B, Tq, Tk) factors exp(−(s − p_t)² / 2σ²)."""
    positions = torch.arange(tk, device=centers.device, dtype=centers.dtype)
    return torch.exp(-((positions[None, None, :] - centers.unsqueeze(-1)) ** 2) / (2 * sigma**2))


class Attention(nn.Module):
    """Score + normalisation; ``keys(memory)`` once per sentence, ``forward`` per step or for all steps."""

    def __init__(
        self,
        score: str,
        query_dim: int,
        key_dim: int,
        kind: Kind = "global",
        window: int = 10,
        attn_dim: int | None = None,
        max_len: int = 100,
    ) -> None:
        super().__init__()
        self.kind, self.window = kind, window
        self.scorer = make_score(score, query_dim, key_dim, attn_dim=attn_dim, max_len=max_len)
        if kind == "local-p":
            hidden = attn_dim or query_dim
            self.W_p = nn.Linear(query_dim, hidden, bias=False)
            self.v_p = nn.Linear(hidden, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.scorer.keys(memory)

    def forward(
        self,
        query: torch.Tensor,  # (B, Tq, Dq)
        memory: torch.Tensor,  # (B, Tk, Dk)
        keys: torch.Tensor,  # whatever self.keys(memory) returned
        mask: torch.Tensor,  # (B, Tk) bool
        src_len: torch.Tensor | None = None,  # (B,) needed by local attention
        step: torch.Tensor | None = None,  # (B, Tq) target positions t, needed by local-m
        matmul: Matmul = bmm,  # the batched product of the scores and the context (a step loop's own)
    ) -> AttentionOutput:
        scores = self.scorer.score(query, keys, matmul)  # (B, Tq, Tk)
        keep = mask.unsqueeze(1)  # (B, 1, Tk)
        centers = None
        if self.kind == "global":
            weights = masked_softmax(scores, keep)
        else:
            if src_len is None:
                raise ValueError("local attention needs the source lengths")
            length = src_len.to(scores.dtype).unsqueeze(1)  # (B, 1)
            if self.kind == "local-m":
                if step is None:
                    raise ValueError("local-m attention needs the target positions")
                centers = torch.minimum(step.to(scores.dtype), length - 1)  # (B, Tq)
            else:
                centers = length * torch.sigmoid(self.v_p(torch.tanh(self.W_p(query)))).squeeze(-1)  # (B, Tq)
            tk = scores.size(-1)
            window_centers = centers.detach() if self.kind == "local-p" else centers
            in_window = keep & local_window(window_centers, tk, self.window)  # (B, Tq, Tk)
            weights = masked_softmax(scores, in_window)
            if self.kind == "local-p":  # gradients reach W_p, v_p through the Gaussian (Luong §3.2)
                weights = weights * gaussian_window(centers, tk, self.window / 2.0)
        context = matmul(weights, memory, False)  # (B, Tq, Dk)
        return AttentionOutput(context, weights, centers)
