"""Memory attention, once each: the MemN2N hop, the DMN episodic gate + attention GRU, NTM addressing.

Dimension legend: B batch, M memory slots (sentences / NTM rows), D embedding / slot width.
Every function returns its output **and** the weights it used, so ``visualize`` and the
tests are generic.
"""

from __future__ import annotations

import torch

from attn_cli.attention.core import masked_softmax


def memory_hop(
    u: torch.Tensor,
    m: torch.Tensor,
    c: torch.Tensor,
    mask: torch.Tensor | None,
    softmax: bool = True,
    empty: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One MemN2N hop (Sukhbaatar et al. 2015, Eq. 1-2): p = softmax(uᵀ m_i), o = Σ_i p_i c_i.

    u (B, D) controller state; m, c (B, M, D) input and output memories; mask (B, M) True = a
    real sentence. ``softmax=False`` is the paper's linear start (§4.2): p = uᵀ m_i on the kept
    slots, no normalisation. ``empty`` (B,): the number of empty slots the softmax also runs over, as
    the authors' Matlab release does (its memory is a fixed number of slots, the unused ones all the nil
    word, whose embeddings are kept at zero, and its softmax is not masked): each is a zero memory, logit
    uᵀ0 = 0 and output 0, so it only adds ``empty`` · e⁰ to the denominator (one extra logit log(empty)).
    Returns o (B, D) and p (B, M) over the real slots (with ``empty``, p sums to less than 1).
    """
    scores = torch.einsum("bd,bmd->bm", u, m)  # (B, M)
    linear = scores if mask is None else scores * mask.to(scores.dtype)
    if softmax and empty is not None:
        sink = torch.log(empty.to(scores.dtype))[:, None]  # (B, 1): -inf where there is no empty slot
        full = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask
        p = masked_softmax(torch.cat([scores, sink], 1), torch.cat([full, empty[:, None] > 0], 1))[:, :-1]
    else:
        p = masked_softmax(scores, mask) if softmax else linear  # (B, M)
    o = torch.einsum("bm,bmd->bd", p, c)  # (B, D)
    return o, p


def episodic_gate(
    facts: torch.Tensor, q: torch.Tensor, mem: torch.Tensor, mlp: torch.nn.Module, mask: torch.Tensor | None
) -> torch.Tensor:
    """DMN attention gate (Kumar et al. 2016, §2.4; feature set of Xiong et al. 2016, Eq. 6-8).

    g_t = σ(MLP(z(c_t, m, q))), z = [c∘q, c∘m, |c−q|, |c−m|]. facts (B, M, D); q, mem (B, D);
    ``mlp`` maps 4D -> 1. Returns gates (B, M), 0 on masked slots.
    Deviation: Kumar et al.'s z also holds cᵀWq, cᵀWm and c, m, q themselves; the four
    similarity features are what Xiong et al. found sufficient.
    """
    qe, me = q[:, None].expand_as(facts), mem[:, None].expand_as(facts)  # (B, M, D)
    z = torch.cat([facts * qe, facts * me, (facts - qe).abs(), (facts - me).abs()], dim=-1)  # (B, M, 4D)
    g = torch.sigmoid(mlp(z).squeeze(-1))  # (B, M)
    return g if mask is None else g * mask.to(g.dtype)


def attention_gru(
    facts: torch.Tensor, gates: torch.Tensor, cell: torch.nn.GRUCell
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gated episode GRU (Kumar et al. 2016, Eq. 4): h_t = g_t GRU(c_t, h_{t−1}) + (1 − g_t) h_{t−1}.

    facts (B, M, D), gates (B, M) (0 on padding, so padding leaves h unchanged). Returns the
    episode e = h_M (B, H) and the gates (B, M).
    """
    b, m, _ = facts.shape
    h = facts.new_zeros(b, cell.hidden_size)  # (B, H)
    for t in range(m):
        g = gates[:, t : t + 1]  # (B, 1)
        h = g * cell(facts[:, t], h) + (1 - g) * h
    return h, gates


def ntm_address(
    memory: torch.Tensor,
    key: torch.Tensor,
    beta: torch.Tensor,
    gate: torch.Tensor,
    shift: torch.Tensor,
    gamma: torch.Tensor,
    w_prev: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """NTM content + location addressing (Graves et al. 2014, §3.3, Eq. 5-9).

    memory (B, N, W); key (B, W); beta (B, 1) ≥ 0 key strength; gate (B, 1) in [0, 1];
    shift (B, S) a softmax over the S = 2r+1 shifts −r..r; gamma (B, 1) ≥ 1; w_prev (B, N).
    Returns w (B, N) (sums to one) and the intermediate weightings {content, gated, shifted}.
    """
    # Eq. 6's cosine similarity K[k, M(i)] = k·M(i) / (‖k‖ ‖M(i)‖) from one product and sum (faster than bmm at
    # the NTM's shapes): F.cosine_similarity divides the whole (B, N, W) memory, and its backward, ~3× the time
    dot = (memory * key[:, None]).sum(-1)  # (B, N)
    norms = torch.linalg.vector_norm(memory, dim=-1) * torch.linalg.vector_norm(key, dim=-1, keepdim=True)
    sim = dot / norms.clamp_min(1e-8)  # (B, N)
    w_c = torch.softmax(beta * sim, dim=-1)  # (B, N)  Eq. 5-6
    w_g = gate * w_c + (1 - gate) * w_prev  # (B, N)  Eq. 7
    r = shift.size(1) // 2
    # circular convolution, Eq. 8: w~(i) = Σ_j w_g(j) s(i − j) = Σ_k s(k) w_g(i − k), k = −r..r; windows[i, m] =
    # w_g(i + m − r), so shift k = r − m: the window against the flipped shift distribution
    padded = torch.cat([w_g[:, w_g.size(1) - r :], w_g, w_g[:, :r]], dim=1)  # (B, N + 2r)
    windows = padded.unfold(1, shift.size(1), 1)  # (B, N, S)
    w_s = torch.bmm(windows, shift.flip(-1)[:, :, None]).squeeze(-1)  # (B, N)
    # Eq. 9 as exp(γ log w): the same value as w ** γ, whose backward masks zero bases (3 extra ops a call)
    w_p = torch.exp(gamma * torch.log(w_s + 1e-12))  # (B, N)  Eq. 9
    w = w_p / w_p.sum(-1, keepdim=True)  # (B, N)
    return w, {"content": w_c, "gated": w_g, "shifted": w_s}
