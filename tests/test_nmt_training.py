"""The fast teacher-forced training path of the NMT models against a plain per-step loop.

``LuongNMT.forward`` and ``RNNSearch.forward`` run the decoder over the still-running sentences only
(``RaggedSteps``), sum the gradients of the memory and of the recurrent weights once (``LoopGrad``) and
run the encoder unpacked. The references below do none of that: a packed encoder, every sentence at
every step, plain modules. Outputs and every parameter's gradient must agree; a gradient filed to the
wrong rows, lost, or counted twice fails.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attn_cli.attention.core import lengths_to_mask
from attn_cli.config import load_recipe
from attn_cli.nn.rnn import RaggedSteps, RNNEncoder, reverse_padded
from attn_cli.registry import MODELS

V_SRC, V_TGT, BOS = 17, 19, 2


def build(recipe: str, overrides: list[str]) -> Any:
    torch.manual_seed(0)
    r = load_recipe("nmt", recipe, ["model.dropout=0", *overrides])
    return MODELS.get(r.model_name)(r.model, src_vocab=V_SRC, tgt_vocab=V_TGT, pad_id=0).train()


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Five sentences, ragged on both sides, with tied and single-token target lengths."""
    g = torch.Generator().manual_seed(3)
    src_len = torch.tensor([7, 3, 5, 1, 6])
    tgt_len = torch.tensor([4, 6, 1, 6, 3])  # BOS + words
    src = torch.randint(4, V_SRC, (5, 7), generator=g) * lengths_to_mask(src_len, 7)
    tgt_in = torch.randint(4, V_TGT, (5, 6), generator=g) * lengths_to_mask(tgt_len, 6)
    tgt_in[:, 0] = BOS
    target = torch.randint(4, V_TGT, (5, 6), generator=g)
    return src, src_len, tgt_in, target


def packed_encode(m: Any, src: torch.Tensor, src_len: torch.Tensor) -> dict[str, Any]:
    """The encoder run packed, as torch documents it: the reference for the unpacked run."""
    enc = m.encoder
    x = reverse_padded(src, src_len) if enc.reverse else src
    packed = pack_padded_sequence(enc.embed(x), src_len, batch_first=True, enforce_sorted=False)
    out, state = enc.rnn(packed)
    memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
    if enc.reverse:
        memory = reverse_padded(memory, src_len)
    h, c = state if enc.cell == "lstm" else (state, None)

    def merge(s: torch.Tensor) -> torch.Tensor:  # (layers·dirs, B, H) -> (B, layers, dirs·H)
        s = s.view(enc.layers, enc.dirs, s.size(1), s.size(2))
        return torch.cat([s[:, d] for d in range(enc.dirs)], dim=-1).transpose(0, 1)

    mem = {"memory": memory, "mask": lengths_to_mask(src_len, src.size(1)), "src_len": src_len, "h": merge(h)}
    mem["c"] = merge(c) if c is not None else None
    if m.attn is not None:
        mem["keys"] = m.attn.keys(memory)
    return mem


def luong_reference(m: Any, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, Any]:
    """Luong §3 with input feeding, every sentence at every step."""
    mem = packed_encode(m, src, src_len)
    state = m.init_state(mem)
    h, c, feed = state["h"], state["c"], state["feed"]
    emb = m.tgt_embed(tgt_in)  # (B, Tq, E)
    outs, ws, cs = [], [], []
    for t in range(tgt_in.size(1)):
        top, h, c = m.cell.step(m.cell.x_proj(emb[:, t]), feed, h, c)  # (B, H)
        step = torch.full((src.size(0), 1), t)
        a = m.attn(top[:, None], mem["memory"], mem["keys"], mem["mask"], mem["src_len"], step)
        feed = torch.tanh(m.W_c(torch.cat([a.context[:, 0], top], dim=-1)))  # eq. (5)
        outs.append(feed)
        ws.append(a.weights[:, 0])
        if a.centers is not None:
            cs.append(a.centers[:, 0])
    return {
        "hidden": torch.stack(outs, 1),
        "attn": torch.stack(ws, 1),
        "centers": torch.stack(cs, 1) if cs else None,
    }


def bahdanau_reference(m: Any, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, Any]:
    """Bahdanau App. A.2.2, every sentence at every step, the deep output step by step."""
    mem = packed_encode(m, src, src_len)
    state = m.init_state(mem)
    emb = m.tgt_embed(tgt_in)
    outs, ws = [], []
    for t in range(tgt_in.size(1)):
        ctx, w = m._context(state["s"], mem)
        outs.append(m._readout(state["s"], emb[:, t], ctx))
        ws.append(w)
        x_gates = m.cell.x_proj(emb[:, t]) if m.cfg.cell == "lstm" else None
        state = m._advance(emb[:, t], x_gates, ctx, state)
    return {"hidden": torch.stack(outs, 1), "attn": torch.stack(ws, 1) if m.attn is not None else None}


CASES = [
    ("tiny/luong-global-general", [], luong_reference),
    ("tiny/luong-local-p", [], luong_reference),
    ("tiny/luong-local-m-dot", ["model.input_feed=true"], luong_reference),
    (
        "tiny/luong-global-general",
        ["model.dec_layers=2", "model.enc_layers=2", "model.reverse_source=true"],
        luong_reference,
    ),
    (
        "tiny/luong-global-general",
        ["model.bidirectional=false", "model.init=encoder_final", "model.enc_hidden=13"],
        luong_reference,
    ),
    ("tiny/bahdanau", [], bahdanau_reference),
    ("tiny/bahdanau-lstm", [], bahdanau_reference),
    ("tiny/rnnencdec", [], bahdanau_reference),
]


@pytest.mark.parametrize(("recipe", "overrides", "reference"), CASES, ids=lambda c: c if isinstance(c, str) else None)
def test_training_forward_and_gradients_match_a_plain_step_loop(
    recipe: str, overrides: list[str], reference: Any
) -> None:
    m = build(recipe, overrides)
    src, src_len, tgt_in, target = batch()
    real = tgt_in != 0  # (B, Tq)

    def loss_and_grads(out: dict[str, Any]) -> tuple[dict[str, Any], list[torch.Tensor]]:
        logp = torch.log_softmax(m.project(out["hidden"]), -1)  # (B, Tq, V)
        loss = -logp.gather(2, target[..., None])[..., 0][real].sum()
        if out["attn"] is not None:  # the weights are outputs too (alignment losses, visualisation)
            loss = loss + (out["attn"][real] * torch.linspace(0, 1, out["attn"].size(-1))).sum()
        m.zero_grad()
        loss.backward()
        return out, [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in m.parameters()]

    fast, fast_grads = loss_and_grads(m(src, src_len, tgt_in))
    ref, ref_grads = loss_and_grads(reference(m, src, src_len, tgt_in))
    torch.testing.assert_close(fast["hidden"][real], ref["hidden"][real], atol=1e-5, rtol=1e-4)
    assert (fast["hidden"][~real] == 0).all()
    if ref["attn"] is not None:
        torch.testing.assert_close(fast["attn"][real], ref["attn"][real], atol=1e-5, rtol=1e-4)
    if ref.get("centers") is not None:
        torch.testing.assert_close(fast["centers"][real], ref["centers"][real], atol=1e-5, rtol=1e-4)
    for (name, _), got, want in zip(m.named_parameters(), fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4, msg=lambda s, n=name: f"gradient of {n}: {s}")
    assert any(g.abs().sum() > 0 for g in fast_grads)


def test_loop_gradients_are_summed_once_per_backward() -> None:
    """A second backward through the same graph (retain_graph) adds the same gradient again, no more:
    the loop's summed gradients are handed over and emptied by each backward."""
    torch.manual_seed(0)
    memory = torch.randn(4, 3, 5, requires_grad=True)
    weight = torch.randn(6, 5, requires_grad=True)
    ragged = RaggedSteps(torch.tensor([1, 3, 2, 3]))
    out = sum((ragged.linear(ragged.rows(memory, n).sum(1), weight) ** 2).sum() for n in ragged.active)
    out.backward(retain_graph=True)
    once = memory.grad.clone(), weight.grad.clone()
    out.backward()
    torch.testing.assert_close(memory.grad, 2 * once[0])
    torch.testing.assert_close(weight.grad, 2 * once[1])
    m2, w2 = memory.detach().requires_grad_(), weight.detach().requires_grad_()
    plain = sum((m2[:n].sum(1) @ w2.t()).pow(2).sum() for n in ragged.active)
    torch.testing.assert_close(torch.autograd.grad(plain, [m2, w2]), list(once))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_unpacked_encoder_matches_the_packed_one(cell: str) -> None:
    """Same weights, padded batch: the unpacked run (no final cell state), whole or in length halves,
    gives the packed run's memory, final h and gradients, for stacked bidirectional and reversed
    unidirectional encoders; with lengths spread (cut in halves) and nearly equal (run whole)."""
    for src_len, (layers, bidirectional, reverse) in [
        (torch.tensor([4, 7, 2, 1]), (2, True, False)),
        (torch.tensor([4, 7, 2, 1]), (3, False, True)),
        (torch.tensor([7, 6, 7, 7]), (2, True, False)),
    ]:
        src = torch.randint(1, 11, (4, 7), generator=torch.Generator().manual_seed(5)) * lengths_to_mask(src_len, 7)
        torch.manual_seed(0)
        packed = RNNEncoder(11, 6, 5, layers, bidirectional, 0.0, cell, reverse, 0, final_cell=True)
        unpacked = RNNEncoder(11, 6, 5, layers, bidirectional, 0.0, cell, reverse, 0, final_cell=False)
        unpacked.load_state_dict(packed.state_dict())
        halves = RNNEncoder(11, 6, 5, layers, bidirectional, 0.0, cell, reverse, 0, final_cell=False)
        halves.load_state_dict(packed.state_dict())
        halves.min_group = 1  # the batch cut into a longer and a shorter half, each padded to its own length
        grads = []
        for enc in (packed, unpacked, halves):
            memory, h, _ = enc(src, src_len)
            grads.append((memory, h, torch.autograd.grad((memory**2).sum() + h.sum(), list(enc.parameters()))))
        (m1, h1, g1), *others = grads
        for m2, h2, g2 in others:
            torch.testing.assert_close(m2, m1)
            torch.testing.assert_close(h2, h1)
            for a, b in zip(g1, g2, strict=True):
                torch.testing.assert_close(b, a)


def test_loop_linear_under_autocast_follows_linear() -> None:
    """Under bf16 autocast (``train.precision=bf16-mixed``) the loop's product is computed in bf16 like
    ``F.linear``, and the float32 input and weight get float32 gradients of the same value."""
    torch.manual_seed(0)
    x = torch.randn(5, 7, requires_grad=True)
    weight = torch.randn(3, 7, requires_grad=True)
    ragged = RaggedSteps(torch.tensor([5]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = ragged.linear(x, weight)
        plain = torch.nn.functional.linear(x, weight)
    assert fast.dtype == plain.dtype == torch.bfloat16
    torch.testing.assert_close(fast, plain)
    fast_grads = torch.autograd.grad((fast.float() ** 2).sum(), [x, weight])
    plain_grads = torch.autograd.grad((plain.float() ** 2).sum(), [x, weight])
    for got, want in zip(fast_grads, plain_grads, strict=True):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=0.1, rtol=0.02)


def test_loop_matmul_gradient_is_one_product_over_the_steps() -> None:
    """The attention products of a step loop (scores against the keys, transposed; the context from the
    memory) file their memory gradients for one bmm after the loop: the same gradients as plain slices
    and bmm, also where the same memory is read elementwise in the same loop (both filings add up),
    for queries of several rows (a beam's G hypotheses), and once per backward under retain_graph."""
    torch.manual_seed(0)
    keys = torch.randn(4, 3, 6, requires_grad=True)  # (B, Tk, H)
    memory = torch.randn(4, 3, 5, requires_grad=True)  # (B, Tk, D)
    queries = torch.randn(3, 4, 2, 6, requires_grad=True)  # (T, B, G, H)
    ragged = RaggedSteps(torch.tensor([1, 3, 2, 3]))

    def loss(matmul: Any, rows: Any) -> torch.Tensor:
        total = torch.zeros(())
        for t, n in enumerate(ragged.active):
            k_t, m_t = rows(keys, n), rows(memory, n)
            weights = torch.softmax(matmul(queries[t, :n], k_t, True), -1)  # (n, G, Tk)
            context = matmul(weights, m_t, False)  # (n, G, D)
            total = total + (context**2).sum() + (m_t * t).sum()
        return total

    fast = loss(ragged.matmul, ragged.rows)
    assert fast.grad_fn is not None
    fast.backward(retain_graph=True)
    once = [x.grad.clone() for x in (keys, memory, queries)]
    fast.backward()
    for x, g in zip((keys, memory, queries), once, strict=True):
        torch.testing.assert_close(x.grad, 2 * g)
    plain = loss(lambda a, x, tr: torch.bmm(a, x.transpose(1, 2) if tr else x), lambda x, n: x[:n])
    torch.testing.assert_close(fast, plain)
    want = torch.autograd.grad(plain, [keys, memory, queries])
    for got, expected in zip(once, want, strict=True):
        torch.testing.assert_close(got, expected)
    probe = RaggedSteps(torch.tensor([2, 1]))
    read = probe.rows(memory[:2], 2)
    assert type(probe.matmul(torch.randn(2, 1, 3), read).grad_fn).__name__ == "_RowsMatmulBackward"
    assert type(probe.matmul(torch.randn(2, 1, 3), read.clone()).grad_fn).__name__ == "BmmBackward0"


def test_loop_matmul_under_autocast_follows_bmm() -> None:
    """Under bf16 autocast the loop's batched product is computed in bf16 like ``torch.bmm``, and the
    float32 memory gets a float32 gradient of the same value."""
    torch.manual_seed(0)
    memory = torch.randn(3, 4, 5, requires_grad=True)
    a = torch.randn(3, 1, 4, requires_grad=True)
    ragged = RaggedSteps(torch.tensor([2, 2, 1]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = ragged.matmul(a, ragged.rows(memory, 3))
        plain = torch.bmm(a, memory)
    assert fast.dtype == plain.dtype == torch.bfloat16
    torch.testing.assert_close(fast, plain)
    fast_grads = torch.autograd.grad((fast.float() ** 2).sum(), [a, memory])
    plain_grads = torch.autograd.grad((plain.float() ** 2).sum(), [a, memory])
    for got, want in zip(fast_grads, plain_grads, strict=True):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=0.1, rtol=0.02)


def test_fused_token_nll_matches_cross_entropy() -> None:
    """The training loss's fused NLL gives ``F.cross_entropy``'s values and logit gradients (per-token
    weights, so a gradient routed to the wrong row or target fails), for logits far from zero too, and
    a bf16 gradient for bf16 logits (autocast)."""
    from attn_cli.tasks.nmt import token_nll

    g = torch.Generator().manual_seed(7)
    logits = (torch.randn(7, 11, generator=g) * 30 + 500).requires_grad_()  # a large offset: needs the max shift
    target = torch.randint(0, 11, (7,), generator=g)
    weights = torch.rand(7, generator=g)
    got = token_nll(logits, target)
    want = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(got, want)
    grad_got = torch.autograd.grad((got * weights).sum(), logits)[0]
    grad_want = torch.autograd.grad((want * weights).sum(), logits)[0]
    torch.testing.assert_close(grad_got, grad_want)
    half = logits.detach().bfloat16().requires_grad_()
    nll = token_nll(half, target)
    assert nll.dtype == torch.float32
    assert torch.autograd.grad(nll.sum(), half)[0].dtype == torch.bfloat16
