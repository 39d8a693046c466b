"""Attention shapes and masks for every score and kind (distinct small sizes: B=3, Tq=5, Tk=7, D=11)."""

from __future__ import annotations

from typing import cast

import pytest
import torch

from attn_cli.attention.core import lengths_to_mask, masked_softmax
from attn_cli.attention.scores import CHUNK_ELEMENTS, SCORES, AdditiveScore, additive_energy
from attn_cli.attention.soft import Attention, gaussian_window, local_window
from attn_cli.errors import AttnError

B, TQ, TK, DQ, DK = 3, 5, 7, 11, 13


def inputs(dq: int = DQ, dk: int = DK) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    query = torch.randn(B, TQ, dq)
    memory = torch.randn(B, TK, dk)
    src_len = torch.tensor([7, 4, 1])
    return query, memory, lengths_to_mask(src_len, TK), src_len


def test_masked_softmax_zeroes_masked_and_sums_to_one() -> None:
    scores = torch.randn(B, TQ, TK)
    mask = lengths_to_mask(torch.tensor([7, 4, 1]), TK).unsqueeze(1)
    w = masked_softmax(scores, mask)
    assert torch.all(w[1, :, 4:] == 0) and torch.all(w[2, :, 1:] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, TQ))
    empty = masked_softmax(scores, torch.zeros(B, 1, TK, dtype=torch.bool))
    assert torch.all(empty == 0) and not torch.isnan(empty).any()


@pytest.mark.parametrize("score", sorted(SCORES))
@pytest.mark.parametrize("kind", ["global", "local-m", "local-p"])
def test_every_score_and_kind(score: str, kind: str) -> None:
    dk = DQ if score == "dot" else DK
    query, memory, mask, src_len = inputs(dk=dk)
    attn = Attention(score, DQ, dk, kind=kind, window=2, max_len=TK)
    keys = attn.keys(memory)
    steps = torch.arange(TQ).expand(B, TQ)
    out = attn(query, memory, keys, mask, src_len, steps)
    assert out.context.shape == (B, TQ, dk) and out.weights.shape == (B, TQ, TK)
    assert torch.all(out.weights[~mask.unsqueeze(1).expand(B, TQ, TK)] == 0), "padding got attention"
    if kind == "global":
        torch.testing.assert_close(out.weights.sum(-1), torch.ones(B, TQ))
        assert out.centers is None
    else:
        assert out.centers.shape == (B, TQ)
        outside = ~local_window(out.centers.detach(), TK, 2)
        assert torch.all(out.weights[outside] == 0), "weight outside the window [p_t - D, p_t + D]"
        assert torch.all(out.weights.sum(-1) <= 1 + 1e-5)
    torch.testing.assert_close(out.context, torch.bmm(out.weights, memory))
    memory.requires_grad_(True)
    out = attn(query, memory, attn.keys(memory), mask, src_len, steps)
    out.context.sum().backward()  # differentiable end to end
    assert memory.grad is not None
    assert all(p.grad is not None for p in attn.parameters())


def test_local_m_centres_are_target_positions_clamped_to_the_source() -> None:
    query, memory, mask, src_len = inputs()
    attn = Attention("general", DQ, DK, kind="local-m", window=1)
    out = attn(query, memory, attn.keys(memory), mask, src_len, torch.arange(TQ).expand(B, TQ))
    assert out.centers[0].tolist() == [0, 1, 2, 3, 4]
    assert out.centers[1].tolist() == [0, 1, 2, 3, 3]  # length 4: clamped to position 3
    assert out.centers[2].tolist() == [0, 0, 0, 0, 0]


def test_local_p_gaussian_matches_the_paper() -> None:
    centers = torch.tensor([[2.5]])
    g = gaussian_window(centers, 6, sigma=1.0)  # σ = D/2 with D = 2
    expected = torch.exp(-((torch.arange(6.0) - 2.5) ** 2) / 2.0)
    torch.testing.assert_close(g[0, 0], expected)
    query, memory, mask, src_len = inputs()
    attn = Attention("general", DQ, DK, kind="local-p", window=2)
    out = attn(query, memory, attn.keys(memory), mask, src_len)
    assert torch.all(out.centers >= 0) and torch.all(out.centers <= src_len[:, None].float())


def test_dot_needs_equal_widths_and_location_has_a_limit() -> None:
    with pytest.raises(AttnError, match="dot attention needs"):
        Attention("dot", DQ, DK)
    attn = Attention("location", DQ, DK, max_len=5)
    with pytest.raises(ValueError, match="covers 5 source positions"):
        attn.keys(torch.randn(B, TK, DK))


@pytest.mark.parametrize("score", sorted(SCORES))
def test_every_score_has_the_gradient_of_its_formula(score: str) -> None:
    """Each score's gradients (query, memory, parameters) pass torch's finite-difference check in double
    precision: the additive score's in-place tanh and the dot scores' batched product keep the maths."""
    dk = DQ if score == "dot" else DK
    torch.manual_seed(0)
    scorer = SCORES[score](DQ, dk, max_len=TK).double()
    query = torch.randn(2, 3, DQ, dtype=torch.double, requires_grad=True)
    memory = torch.randn(2, TK, dk, dtype=torch.double, requires_grad=True)
    params = list(scorer.parameters())

    def f(q: torch.Tensor, m: torch.Tensor, *_: torch.Tensor) -> torch.Tensor:
        return scorer.score(q, scorer.keys(m))

    assert torch.autograd.gradcheck(f, (query, memory, *params))


@pytest.mark.parametrize("chunk", [1, CHUNK_ELEMENTS])
def test_additive_energy_in_blocks_matches_the_plain_formula(chunk: int) -> None:
    """Bahdanau eq. (6) written out, v_aᵀ tanh(W_a s + U_a h) as one broadcast tensor, against what the score
    computes on the CPU: energies, masked weights and the gradients of query, memory and every parameter, on
    ragged source lengths (B=3 in blocks of one sentence; with the default block these sizes take the plain
    formula)."""
    torch.manual_seed(0)
    attn = Attention("additive", DQ, DK, attn_dim=11)
    query, memory, mask, _ = inputs()
    query.requires_grad_(True)
    memory.requires_grad_(True)
    scorer = cast(AdditiveScore, attn.scorer)

    def plain() -> torch.Tensor:
        pre = scorer.W_q(query)[:, :, None] + scorer.W_k(memory)[:, None]  # (B, Tq, Tk, A)
        return (torch.tanh(pre) * scorer.v.weight[0]).sum(-1)  # (B, Tq, Tk)

    def blocked() -> torch.Tensor:
        return additive_energy(scorer.W_q(query), scorer.keys(memory), scorer.v.weight, chunk)

    def grads(energy: torch.Tensor) -> list[torch.Tensor]:
        weights = masked_softmax(energy, mask.unsqueeze(1))
        loss = (weights * torch.linspace(-1, 1, TK)).sum() + (energy * mask.unsqueeze(1)).square().sum()
        inputs_ = [query, memory, *scorer.parameters()]
        return [g.clone() for g in torch.autograd.grad(loss, inputs_)]

    want, got = plain(), blocked()
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    assert not torch.equal(got[0], got[1])  # the sentences differ: a block mixing rows would be caught
    for g, w in zip(grads(got), grads(want), strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # the search's path: one reused block buffer
        torch.testing.assert_close(blocked(), want.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(attn.scorer.score(query, scorer.keys(memory)), want, atol=1e-6, rtol=1e-5)


def test_additive_energy_gradient_passes_gradcheck_in_blocks() -> None:
    """Finite differences in double precision through the blocked backward: 5 sentences in blocks of 2, 2, 1."""
    torch.manual_seed(0)
    q = torch.randn(5, 2, 3, dtype=torch.double, requires_grad=True)
    keys = torch.randn(5, 4, 3, dtype=torch.double, requires_grad=True)
    v = torch.randn(1, 3, dtype=torch.double, requires_grad=True)
    block = 2 * (2 * 4 * 3)  # two sentences' (Tq, Tk, A)
    assert torch.autograd.gradcheck(lambda a, b, c: additive_energy(a, b, c, block), (q, keys, v))
    with torch.no_grad():
        want = (torch.tanh(q[:, :, None] + keys[:, None]) * v[0]).sum(-1)
        torch.testing.assert_close(additive_energy(q, keys, v, block), want)
