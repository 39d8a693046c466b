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

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

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
        if q.device.type == "cpu" and not torch.is_autocast_enabled("cpu") and q.size(0) == keys.size(0):
            return additive_energy(q, keys, self.v.weight)  # (B, Tq, Tk)
        return _plain_energy(q, keys, self.v.weight)


def _plain_energy(q: torch.Tensor, keys: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """v_aᵀ tanh(q_i + k_j) as one broadcast (B, Tq, Tk, A) tensor, the tanh in place on the fresh sum (one such
    tensor, not two: its backward needs only the result) -> (B, Tq, Tk)."""
    return F.linear(torch.tanh_(q.unsqueeze(2) + keys.unsqueeze(1)), v).squeeze(-1)


CHUNK_ELEMENTS = 1 << 17
"""Elements of the (b, Tq, Tk, A) block :func:`additive_energy` works on at a time: 512 KB in float32, a
block that stays in a core's L2 cache between the sum, the tanh and the product with v_a."""


def additive_energy(q: torch.Tensor, keys: torch.Tensor, v: torch.Tensor, chunk: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """e = v_aᵀ tanh(q_i + k_j) for q (B, Tq, A), keys (B, Tk, A), v (1, A) -> (B, Tq, Tk); Bahdanau eq. (6).

    The same values as ``tanh(q[:, :, None] + keys[:, None]) @ v_aᵀ``, computed a few sentences at a time
    (``chunk`` elements of the (B, Tq, Tk, A) sum): the sum, its tanh and the product with v_a each read the
    block while it is still in cache, where the whole tensor (4 MB for a beam-5 step of 64 Multi30k sentences)
    goes through memory three times. Recorded at one CPU thread (results/bench/speed-ab/additive-energy.json):
    the forward alone 1.1-1.2x as fast at beam-5 shapes, forward and backward 1.7-1.9x with several queries
    per sentence; for a tensor of two blocks or less (one query of a short source: a training or greedy step)
    the blocks measured no gain or a loss, and that takes the plain formula. With gradients,
    :class:`_AdditiveEnergy` runs the backward in the same blocks."""
    if q.size(0) * q.size(1) * keys.size(1) * q.size(2) <= 2 * chunk:  # two blocks at most: they do not pay
        return _plain_energy(q, keys, v)
    if torch.is_grad_enabled() and (q.requires_grad or keys.requires_grad or v.requires_grad):
        out: torch.Tensor = _AdditiveEnergy.apply(q, keys, v, chunk)  # type: ignore[no-untyped-call]
        return out
    return _energy_forward(q, keys, v, chunk, keep=False)[0]


def _chunks(q: torch.Tensor, keys: torch.Tensor, chunk: int) -> list[tuple[int, int]]:
    """Row ranges [s, e) of the batch, each a block of at most ``chunk`` elements (one sentence at least)."""
    b, per_row = q.size(0), q.size(1) * keys.size(1) * q.size(2)
    rows = max(1, chunk // max(1, per_row))
    return [(s, min(b, s + rows)) for s in range(0, b, rows)]


def _energy_forward(
    q: torch.Tensor, keys: torch.Tensor, v: torch.Tensor, chunk: int, keep: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The energies (B, Tq, Tk) and, with ``keep``, every tanh(q_i + k_j) (B, Tq, Tk, A) for the backward;
    without, one block's buffer is reused."""
    b, tq, tk, a = q.size(0), q.size(1), keys.size(1), q.size(2)
    ranges = _chunks(q, keys, chunk)
    out = q.new_empty(b, tq, tk)
    hidden = q.new_empty(b if keep else ranges[0][1], tq, tk, a)
    w = v.reshape(a)
    for s, e in ranges:
        block = hidden[s:e] if keep else hidden[: e - s]  # (b, Tq, Tk, A)
        torch.add(q[s:e].unsqueeze(2), keys[s:e].unsqueeze(1), out=block)
        torch.matmul(block.tanh_(), w, out=out[s:e])
    return out, hidden if keep else None


class _AdditiveEnergy(torch.autograd.Function):
    """:func:`additive_energy` with its gradient, block by block as the forward.

    The forward keeps the tanh values y (as autograd would for tanh alone); the backward forms
    ∂e/∂(q_i + k_j) = g (1 − y²) v_a once per block, and from it q's gradient (summed over j), the keys'
    (summed over i) and v_a's (Σ g y). Double backward raises (``once_differentiable``)."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, keys: torch.Tensor, v: torch.Tensor, chunk: int) -> torch.Tensor:
        out, hidden = _energy_forward(q, keys, v, chunk, keep=True)
        ctx.chunk = chunk
        ctx.save_for_backward(q, keys, v, hidden)
        return out

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, None]:
        q, keys, v, hidden = ctx.saved_tensors
        tq, a = q.size(1), q.size(2)
        w = v.reshape(a)
        grad = grad.contiguous()
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        grad_q = torch.empty_like(q) if need_q else None
        grad_k = torch.empty_like(keys) if need_k else None
        grad_v = torch.zeros_like(w) if need_v else None
        ranges = _chunks(q, keys, ctx.chunk)
        # one query per sentence (a training step): the keys' gradient is the block itself, formed in place
        direct = grad_k is not None and tq == 1
        buffer = None if direct else hidden.new_empty(ranges[0][1], *hidden.shape[1:])  # (b, Tq, Tk, A)
        for s, e in ranges:
            y, g = hidden[s:e], grad[s:e]  # (b, Tq, Tk, A), (b, Tq, Tk)
            if grad_v is not None:
                grad_v.addmv_(y.reshape(-1, a).t(), g.reshape(-1))  # Σ g y
            pre = grad_k[s:e].unsqueeze(1) if direct else buffer[: e - s]  # type: ignore[index,index]
            torch.mul(g.unsqueeze(-1), w, out=pre)  # g v_a
            torch.ops.aten.tanh_backward.grad_input(pre, y, grad_input=pre)  # g v_a (1 − y²)
            if grad_q is not None:
                grad_q[s:e] = pre.sum(2)
            if grad_k is not None and not direct:
                grad_k[s:e] = pre.sum(1)
        return grad_q, grad_k, grad_v.view_as(v) if grad_v is not None else None, None


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
