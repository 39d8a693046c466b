"""Alignment scores: Luong et al. (2015) §3.1 eq. (8) and Bahdanau et al. (2015) eq. (6)/App. A.1.2.

Each score is a module with two pure methods, so the key-side work is done once per
source sentence and not at every decoder step (no caching on ``self``):

* ``keys(memory) -> projected``: (B, Tk, Dk) -> whatever ``score`` needs
* ``score(query, projected, matmul) -> (B, Tq, Tk)`` for a query (B, Tq, Dq); ``matmul`` is the batched
  product the dot-product scores use (:data:`attn_cli.attention.core.Matmul`; plain ``bmm`` by default)

=========  ==========================================  ==============================
name       score(h_t, h̄_s)                              paper
=========  ==========================================  ==============================
dot        h_tᵀ h̄_s                                     Luong eq. (8), first case
general    h_tᵀ W_a h̄_s                                 Luong eq. (8), second case
concat     v_aᵀ tanh(W_a [h_t; h̄_s])                    Luong eq. (8), third case
additive   v_aᵀ tanh(W_a s_{i-1} + U_a h_j)             Bahdanau eq. (6), App. A.1.2
location   a_t = softmax(W_a h_t)  (query only)         Luong eq. (9)
=========  ==========================================  ==============================

``concat`` and ``additive`` are the same function (W_a [q; h] = W_q q + W_k h), so they
share :class:`AdditiveScore`; Xu et al.'s soft attention (eq. 4) is the same score too.
"""

from __future__ import annotations

import torch
from torch import nn

from attn_cli.attention.core import Matmul, bmm
from attn_cli.errors import AttnError, unknown


class Score(nn.Module):
    """What every score implements: the two pure methods of the module docstring."""

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, query: torch.Tensor, keys: torch.Tensor, matmul: Matmul = bmm) -> torch.Tensor:
        raise NotImplementedError


class DotScore(Score):
    """Luong eq. (8) ``dot``; needs query and key widths equal."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int | None = None, max_len: int = 0) -> None:
        super().__init__()
        if query_dim != key_dim:
            raise AttnError(
                f"dot attention needs the decoder width ({query_dim}) to equal the encoder output width ({key_dim}); "
                "change model.hidden or model.enc_hidden"
            )

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return memory  # (B, Tk, D)

    def score(self, query: torch.Tensor, keys: torch.Tensor, matmul: Matmul = bmm) -> torch.Tensor:
        return matmul(query, keys, True)  # (B, Tq, Tk)


class GeneralScore(Score):
    """Luong eq. (8) ``general``: h_tᵀ W_a h̄_s, computed as h_t · (W_a h̄_s) with W_a h̄_s precomputed."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int | None = None, max_len: int = 0) -> None:
        super().__init__()
        self.W_a = nn.Linear(key_dim, query_dim, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        projected: torch.Tensor = self.W_a(memory)  # (B, Tk, Dq)
        return projected

    def score(self, query: torch.Tensor, keys: torch.Tensor, matmul: Matmul = bmm) -> torch.Tensor:
        return matmul(query, keys, True)  # (B, Tq, Tk)


class AdditiveScore(Score):
    """v_aᵀ tanh(W_q q + W_k h): Bahdanau's alignment model and Luong's ``concat``.

    Bahdanau et al. App. A.1.2: e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j), with U_a h_j
    precomputed for all j. ``attn_dim`` is n' in the paper (defaults to the query width).
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int | None = None, max_len: int = 0) -> None:
        super().__init__()
        attn_dim = attn_dim or query_dim
        self.W_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.W_k = nn.Linear(key_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        projected: torch.Tensor = self.W_k(memory)  # (B, Tk, A)
        return projected

    def score(self, query: torch.Tensor, keys: torch.Tensor, matmul: Matmul = bmm) -> torch.Tensor:
        q = self.W_q(query)  # (B, Tq, A)
        # tanh in place on the fresh sum: one (B, Tq, Tk, A) tensor, not two (its backward needs only the result)
        scores: torch.Tensor = self.v(torch.tanh_(q.unsqueeze(2) + keys.unsqueeze(1)))  # (B, Tq, Tk, 1)
        return scores.squeeze(-1)  # (B, Tq, Tk)


class LocationScore(Score):
    """Luong eq. (9): a_t = softmax(W_a h_t) — scores from the target state alone.

    W_a maps to ``max_len`` source positions; a source longer than that is a
    configuration error (raise ``model.max_src_len``). Deviation: positions past the
    sentence end are masked by :func:`masked_softmax` like every other score.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int | None = None, max_len: int = 100) -> None:
        super().__init__()
        self.max_len = max_len
        self.W_a = nn.Linear(query_dim, max_len)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        if memory.size(1) > self.max_len:
            raise ValueError(f"location attention covers {self.max_len} source positions, got {memory.size(1)}")
        return memory

    def score(self, query: torch.Tensor, keys: torch.Tensor, matmul: Matmul = bmm) -> torch.Tensor:
        scores: torch.Tensor = self.W_a(query)  # (B, Tq, max_len)
        return scores[..., : keys.size(1)]  # (B, Tq, Tk)


SCORES: dict[str, type[Score]] = {
    "dot": DotScore,
    "general": GeneralScore,
    "concat": AdditiveScore,
    "additive": AdditiveScore,
    "location": LocationScore,
}


def make_score(name: str, query_dim: int, key_dim: int, attn_dim: int | None = None, max_len: int = 100) -> Score:
    if name not in SCORES:
        raise unknown("attention score", name, SCORES)
    return SCORES[name](query_dim, key_dim, attn_dim=attn_dim, max_len=max_len)
