"""Memory mechanisms and models: position encoding, linear start, hops, episodic gates, NTM addressing, readers."""

from __future__ import annotations

import math
import random

import pytest
import torch

from attn_cli.attention.memory import attention_gru, episodic_gate, memory_hop, ntm_address
from attn_cli.errors import AttnError
from attn_cli.models.memn2n import MemN2N, position_encoding, release_position_encoding, time_index
from attn_cli.tasks.memory import linear_start_update

B, M, L, D, V, A = 3, 5, 7, 11, 13, 17


def test_position_encoding_matches_the_papers_formula() -> None:
    lengths = torch.tensor([7, 4])
    enc = position_encoding(lengths, L, D)  # (2, L, D)
    for b, big_j in enumerate(lengths.tolist()):
        for j in range(1, L + 1):
            for k in range(1, D + 1):
                want = (1 - j / big_j) - (k / D) * (1 - 2 * j / big_j) if j <= big_j else 0.0
                assert enc[b, j - 1, k - 1].item() == pytest.approx(want, abs=1e-6)


def test_release_position_encoding_matches_the_matlab_loop() -> None:
    """MemN2N-babi-matlab build_model.m: weight(i, j) = 1 + 4 (i − (d+1)/2)(j − (J+1)/2) / d / J, i the dimension,
    j the word, J = the longest sentence + 1 (the time word); a sentence reads columns 1..J-1."""
    max_words = 6
    big_j = max_words + 1
    enc = release_position_encoding(max_words, D, big_j)  # (L, D)
    assert enc.shape == (max_words, D)
    for i in range(1, D + 1):
        for j in range(1, max_words + 1):
            want = 1 + 4 * (i - (D + 1) / 2) * (j - (big_j + 1) / 2) / D / big_j
            assert enc[j - 1, i - 1].item() == pytest.approx(want, abs=1e-6)


def test_release_pe_weighs_a_word_by_its_position_alone() -> None:
    """The same words at the same positions encode the same whatever the sentence's length (the printed formula's
    weights move with the length), so "greg" opening "greg is a swan" and "greg is green" matches alike."""
    short, long = torch.tensor([[4, 5, 0, 0]]), torch.tensor([[4, 5, 6, 7]])  # words 6, 7 embed to 0 below
    same = {}
    for form in ("release", "paper"):
        model = MemN2N(MemN2N.Config(embed_dim=D, hops=1, pe_form=form), vocab=V, answers=A, max_story=M, max_words=L)
        with torch.no_grad():
            model.emb[0].weight[6:8] = 0
        same[form] = torch.allclose(model._encode(short, 0), model._encode(long, 0), atol=1e-6)
    assert same == {"release": True, "paper": False}


def test_release_pe_without_max_words_is_an_error() -> None:
    with pytest.raises(AttnError, match="needs max_words"):
        MemN2N(MemN2N.Config(embed_dim=D, pe_form="release"), vocab=V, answers=A, max_story=M)


def _story() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    story = torch.randint(1, V, (B, M, L), generator=g)
    story[0, 3:] = 0  # a story of 3 sentences
    lens = torch.tensor([3, M, 2])
    story[2, 2:] = 0
    return story, lens, torch.randint(1, V, (B, 3), generator=g)


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
@pytest.mark.parametrize("encoding", ["bow", "pe"])
def test_memn2n_shapes_and_masked_weights(tying: str, encoding: str) -> None:
    cfg = MemN2N.Config(embed_dim=D, hops=3, encoding=encoding, tying=tying, random_noise=0.1)
    model = MemN2N(cfg, vocab=V, answers=A, max_story=M)
    story, lens, q = _story()
    out = model(story, lens, q)
    assert out["logits"].shape == (B, A) and out["attn"].shape == (B, 3, M)
    assert torch.allclose(out["attn"].sum(-1), torch.ones(B, 3), atol=1e-5)
    assert out["attn"][0, :, 3:].abs().max() == 0 and out["attn"][2, :, 2:].abs().max() == 0
    out["logits"].sum().backward()


def test_linear_start_switches_the_softmax_back_on() -> None:
    model = MemN2N(MemN2N.Config(embed_dim=D, hops=2, linear_start=True), vocab=V, answers=A, max_story=M)
    story, lens, q = _story()
    assert not bool(model.softmax_on)
    linear = model(story, lens, q)["attn"]
    assert not torch.allclose(linear.sum(-1), torch.ones(B, 2))  # no softmax: weights are raw scores
    best = torch.tensor(float("inf"))
    assert not linear_start_update(model, best, 2.0) and float(best) == 2.0  # still falling
    assert not linear_start_update(model, best, 1.5)
    assert linear_start_update(model, best, 1.6)  # stopped falling: softmax back
    assert bool(model.softmax_on) and "softmax_on" in model.state_dict()
    assert torch.allclose(model(story, lens, q)["attn"].sum(-1), torch.ones(B, 2), atol=1e-5)
    assert not linear_start_update(model, best, 9.0)  # once on, it stays on


def test_linear_start_for_a_fixed_number_of_epochs() -> None:
    """Matlab's release: 20 linear epochs per task whatever validation does; the paper's rule is not consulted."""
    cfg = MemN2N.Config(embed_dim=D, hops=2, linear_start=True, linear_start_epochs=3)
    model = MemN2N(cfg, vocab=V, answers=A, max_story=M)
    best = torch.tensor(float("inf"))
    assert not linear_start_update(model, best, 2.0, epochs_done=1)
    assert not linear_start_update(model, best, 5.0, epochs_done=2)  # validation rose: the rule would switch here
    assert not bool(model.softmax_on)
    assert linear_start_update(model, best, 5.0, epochs_done=3) and bool(model.softmax_on)
    assert not linear_start_update(model, best, 1.0, epochs_done=4)  # once


def test_memory_hop_is_the_papers_equations() -> None:
    u, m, c = torch.randn(B, D), torch.randn(B, M, D), torch.randn(B, M, D)
    o, p = memory_hop(u, m, c, None)
    p_ref = torch.softmax((m @ u[:, :, None])[..., 0], -1)
    assert torch.allclose(p, p_ref, atol=1e-6) and torch.allclose(o, (p_ref[..., None] * c).sum(1), atol=1e-6)


def test_memory_hop_with_empty_slots_is_the_releases_unmasked_memory() -> None:
    """MemN2N-babi-matlab fills a memory of ``sz`` slots with the nil word (embedding held at zero) and runs
    its softmax over all of them: brute force, the story's memories followed by explicit zero memories."""
    u, m, c = torch.randn(B, D), torch.randn(B, M, D), torch.randn(B, M, D)
    lengths, slots = torch.tensor([2, 5, 3]), 9
    mask = torch.arange(M)[None] < lengths[:, None]
    o, p = memory_hop(u, m, c, mask, empty=slots - lengths)
    for b, n in enumerate(lengths.tolist()):
        zeros = torch.zeros(slots - n, D)
        mem, out = torch.cat([m[b, :n], zeros]), torch.cat([c[b, :n], zeros])  # (slots, D)
        p_ref = torch.softmax(mem @ u[b], 0)  # (slots,)
        assert torch.allclose(p[b, :n], p_ref[:n], atol=1e-6) and (p[b, n:] == 0).all()
        assert torch.allclose(o[b], p_ref @ out, atol=1e-6)
        assert p[b].sum() < 1  # the zero slots took their share
    # no empty slot: the masked softmax over the story
    o0, p0 = memory_hop(u, m, c, mask, empty=torch.zeros(B, dtype=torch.long))
    o1, p1 = memory_hop(u, m, c, mask)
    assert torch.allclose(p0, p1, atol=1e-6) and torch.allclose(o0, o1, atol=1e-6)
    # linear start (no softmax): the zero slots add nothing, as in the release
    ol, pl = memory_hop(u, m, c, mask, softmax=False, empty=slots - lengths)
    assert torch.equal(pl, memory_hop(u, m, c, mask, softmax=False)[1])


def test_memn2n_empty_slots_count_from_the_releases_memory_size() -> None:
    """A story of n statements in a memory of ``memory_slots`` leaves memory_slots − n empty slots (none for a
    story at least that long); the output moves with the count, and without the switch nothing changes."""
    torch.manual_seed(0)
    cfg = MemN2N.Config(embed_dim=D, hops=2, empty_slots=True)
    model = MemN2N(cfg, vocab=V, answers=A, max_story=M, memory_slots=4).eval()
    plain = MemN2N(MemN2N.Config(embed_dim=D, hops=2), vocab=V, answers=A, max_story=M).eval()
    plain.load_state_dict(model.state_dict())
    story, question = torch.randint(1, V, (B, M, L)), torch.randint(1, V, (B, 4))
    lengths = torch.tensor([2, 4, 5])
    with torch.no_grad():
        out, ref = model(story, lengths, question), plain(story, lengths, question)
    sums = out["attn"].sum(-1)  # (B, K)
    assert (sums[0] < 1 - 1e-4).all() and torch.allclose(sums[1:], torch.ones(2, 2), atol=1e-5)
    assert not torch.allclose(out["logits"][0], ref["logits"][0]) and torch.allclose(
        out["logits"][1:], ref["logits"][1:]
    )
    assert MemN2N(cfg, vocab=V, answers=A, max_story=M).memory_slots == M  # no count given: the memory's size


def test_episodic_gate_masks_padding_and_gru_ignores_it() -> None:
    facts, q, mem = torch.randn(B, M, D), torch.randn(B, D), torch.randn(B, D)
    mlp = torch.nn.Sequential(torch.nn.Linear(4 * D, 7), torch.nn.Tanh(), torch.nn.Linear(7, 1))
    mask = torch.arange(M)[None] < torch.tensor([2, 5, 3])[:, None]
    g = episodic_gate(facts, q, mem, mlp, mask)
    assert g.shape == (B, M) and (g[~mask] == 0).all() and ((g > 0) & (g < 1))[mask].all()
    cell = torch.nn.GRUCell(D, D)
    e1, _ = attention_gru(facts, g, cell)
    e2, _ = attention_gru(torch.where(mask[..., None], facts, torch.randn(B, M, D)), g, cell)
    assert torch.allclose(e1, e2, atol=1e-6)  # padded facts have no effect


def test_ntm_addressing_weights_sum_to_one() -> None:
    n, w = 13, 7
    g = torch.Generator().manual_seed(1)
    memory, key = torch.randn(B, n, w, generator=g), torch.randn(B, w, generator=g)
    w_prev = torch.softmax(torch.randn(B, n, generator=g), -1)
    shift = torch.softmax(torch.randn(B, 3, generator=g), -1)
    weights, parts = ntm_address(
        memory, key, torch.rand(B, 1) * 5, torch.rand(B, 1), shift, 1 + torch.rand(B, 1) * 3, w_prev
    )
    assert weights.shape == (B, n) and (weights >= 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(B), atol=1e-5)
    for part in parts.values():
        assert torch.allclose(part.sum(-1), torch.ones(B), atol=1e-5)
    # a pure +1 shift with gate 0, gamma 1 rotates the previous weighting by one
    rot, _ = ntm_address(
        memory, key, torch.ones(B, 1), torch.zeros(B, 1), torch.tensor([[0.0, 0.0, 1.0]]).expand(B, 3),
        torch.ones(B, 1), w_prev,
    )  # fmt: skip
    assert torch.allclose(rot, torch.roll(w_prev, 1, dims=1), atol=1e-5)


def test_ntm_model_weightings() -> None:
    from attn_cli.models.ntm import NTM

    model = NTM(NTM.Config(controller=7, slots=11, slot_width=5), in_width=5, out_width=4)
    out = model(torch.rand(B, 13, 5))
    assert out["logits"].shape == (B, 13, 4) and out["read_w"].shape == (B, 13, 11)
    assert torch.allclose(out["write_w"].sum(-1), torch.ones(B, 13), atol=1e-5)


def test_ntm_slots_start_distinguishable() -> None:
    # constant memory + equal first weightings would keep every slot interchangeable forever (equal
    # weights, equal rows, equal gradients); the focused first weightings break that symmetry
    from attn_cli.models.ntm import NTM

    torch.manual_seed(0)
    model = NTM(NTM.Config(controller=7, slots=11, slot_width=5), in_width=5, out_width=4)
    out = model(torch.rand(B, 6, 5))
    assert float(out["write_w"][:, 0].std(-1).min()) > 1e-3  # not uniform at the first write
    loss = out["logits"].sum()
    loss.backward()
    assert float(model.w0_write.grad.std()) > 0  # slots receive different gradients


@pytest.mark.parametrize("name", ["attentive-reader", "impatient-reader", "deep-lstm-reader"])
def test_readers_answer_only_with_document_entities(name: str) -> None:
    from attn_cli.registry import MODELS

    cls = MODELS.get(name)
    model = cls(cls.Config(embed_dim=5, hidden=7, attn_dim=3), vocab=V + 20, entities=11, entity_offset=4)
    doc, query = torch.randint(1, V, (B, 17)), torch.randint(1, V, (B, 5))
    cand = torch.zeros(B, 11, dtype=torch.bool)
    cand[:, [2, 7]] = True
    out = model(doc, torch.tensor([17, 9, 4]), query, torch.tensor([5, 2, 3]), cand)
    assert set(out["logits"].argmax(-1).tolist()) <= {2, 7}
    if "attn" in out:
        assert torch.allclose(out["attn"][1, 0, 9:].sum(), torch.tensor(0.0))


def _matlab_time_index(length: int, noise: float, rng: random.Random) -> list[int]:
    """The authors' loop (MemN2N-babi-matlab/train.m), 0-based, one story: oldest statement first."""
    n_blank = rng.randint(0, math.ceil(length * noise))
    steps = rng.sample(range(length + n_blank), length)
    return sorted(steps, reverse=True)


def test_time_index_without_noise_is_recency() -> None:
    idx = time_index(torch.tensor([3, 5, 1]), 5)
    assert idx.tolist() == [[2, 1, 0, 0, 0], [4, 3, 2, 1, 0], [0, 0, 0, 0, 0]]


def test_random_noise_matches_the_authors_loop_whatever_the_padding() -> None:
    """Each statement's index has the distribution of the Matlab release's, counted by brute force.

    The stories (2, 7 and 23 statements) sit in a batch padded to 50 slots: the padding must not
    add empty memories (the bug this guards against gave a 2-statement story's latest statement
    index 0 in under 2% of draws, against 5/6 in the reference).
    """
    lengths, m, noise, n = (2, 7, 23), 50, 0.1, 6000
    torch.manual_seed(0)
    story_len = torch.tensor(lengths).repeat(n)  # (3n,)
    idx = time_index(story_len, m, noise).view(n, len(lengths), m)  # (n, 3, M)
    rng = random.Random(0)
    for k, length in enumerate(lengths):
        ours = idx[:, k, :length]  # (n, len), oldest first
        assert (ours[:, :-1] > ours[:, 1:]).all() and (idx[:, k, length:] == 0).all()
        assert ours.max() <= length - 1 + math.ceil(length * noise)
        ref = torch.tensor([_matlab_time_index(length, noise, rng) for _ in range(n)])  # (n, len)
        for slot in range(length):  # the distribution of each statement's index: total variation < 0.04
            top = int(max(ours[:, slot].max(), ref[:, slot].max())) + 1
            tv = (torch.bincount(ours[:, slot], minlength=top) - torch.bincount(ref[:, slot], minlength=top)).abs()
            assert tv.sum().item() / (2 * n) < 0.04, (length, slot)


@pytest.mark.parametrize("length", [2, 7, 23])
def test_latest_statement_keeps_index_zero_as_in_the_reference(length: int) -> None:
    """P(latest index = 0) = mean over n = 0..ceil(0.1 len) of len / (len + n): 0.83 for 2 statements."""
    most = math.ceil(length * 0.1)
    want = sum(length / (length + k) for k in range(most + 1)) / (most + 1)
    torch.manual_seed(1)
    idx = time_index(torch.full((20000,), length), 50, 0.1)  # (20000, 50)
    assert (idx[:, length - 1] == 0).float().mean().item() == pytest.approx(want, abs=0.015)


def test_memn2n_uses_noise_only_in_training() -> None:
    model = MemN2N(MemN2N.Config(embed_dim=D, hops=1, random_noise=0.5), vocab=V, answers=A, max_story=M)
    story, lens, q = _story()
    model.eval()
    assert torch.equal(model(story, lens, q)["logits"], model(story, lens, q)["logits"])
    model.train()
    torch.manual_seed(0)
    outs = [model(story, lens, q)["logits"] for _ in range(8)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_kumar_gate_is_the_nine_feature_mlp() -> None:
    from attn_cli.models.dmn import KumarGate

    gate = KumarGate(D, 7)
    facts, q, mem = torch.randn(B, M, D), torch.randn(B, D), torch.randn(B, D)
    mask = torch.arange(M)[None] < torch.tensor([2, 5, 3])[:, None]
    g = gate(facts, q, mem, mask)
    w = gate.bilinear
    for b in range(B):
        for t in range(M):
            c, qb, mb = facts[b, t], q[b], mem[b]
            z = torch.cat(
                [c, mb, qb, c * qb, c * mb, (c - qb).abs(), (c - mb).abs(), (c @ w @ qb)[None], (c @ w @ mb)[None]]
            )  # Kumar et al. §2.3: 7D + 2 features
            want = torch.sigmoid(gate.mlp(z))[0] if mask[b, t] else torch.tensor(0.0)
            assert g[b, t].item() == pytest.approx(want.item(), abs=1e-5)


@pytest.mark.parametrize("features", ["kumar", "xiong"])
def test_dmn_gate_loss_supervises_pass_t_with_the_t_th_supporting_fact(features: str) -> None:
    from attn_cli.models.dmn import DMN

    model = DMN(DMN.Config(embed_dim=5, hidden=7, passes=3, gate_hidden=3, gate_supervision=0.5,
                           gate_features=features, dropout=0.0), vocab=V, answers=A)  # fmt: skip
    story, lens, question = _story()
    out = model(story, lens, question)
    supporting = torch.zeros(B, M, dtype=torch.long)  # rank k on the k-th supporting fact
    supporting[0, 2], supporting[0, 0] = 1, 2  # two facts, the later statement first (as qa2 lists them)
    supporting[1, 4], supporting[1, 1], supporting[1, 3] = 1, 2, 3  # three facts: one per pass
    # story 2 has no supporting fact: no loss
    gates, keep = out["attn"], torch.arange(M)[None] < lens[:, None]  # (B, T, M), (B, M)
    want = []
    for b in range(B):
        k = int(supporting[b].max())
        for t in range(3):
            for j in range(M):
                if k and keep[b, j]:  # pass t+1 picks fact min(t+1, K): passes past the last re-read it
                    hit = int(supporting[b, j]) == min(t + 1, k)
                    want.append(-(torch.log(gates[b, t, j]) if hit else torch.log(1 - gates[b, t, j])))
    loss = out["gate_loss"](supporting)
    assert len(want) == 3 * 3 + 3 * M
    # Kumar et al. §3: the cross-entropy of the gates, summed over a question's facts and passes, per question
    assert loss.item() == pytest.approx(0.5 * torch.stack(want).sum().item() / B, rel=1e-5)
    loss.backward()
    grads = model.gate.mlp[0].weight.grad if features == "kumar" else model.gate_mlp[0].weight.grad
    assert float(grads.abs().sum()) > 0  # the supervision reaches the gate's parameters


def test_dmn_pass_targets_follow_the_order_and_skip_facts_out_of_memory() -> None:
    from attn_cli.models.dmn import pass_targets

    supporting = torch.tensor([[0, 2, 0, 1], [0, 0, 1, 0], [0, 2, 0, 0], [0, 0, 0, 0]])  # (4, 4)
    target, supervised = pass_targets(supporting, 3)
    assert target[0].long().argmax(-1).tolist() == [3, 1, 1]  # 1st fact, 2nd fact, 2nd again
    assert target[1].long().argmax(-1).tolist() == [2, 2, 2]  # one fact: every pass
    assert target.sum(-1).le(1).all()  # one-hot or empty
    # row 2: its 1st fact fell out of the memories (only rank 2 kept): pass 1 is not supervised
    assert supervised.tolist() == [[True] * 3, [True] * 3, [False, True, True], [False] * 3]
    assert target[3].sum() == 0


def test_dmn_gate_loss_on_one_fact_questions_supervises_every_pass_with_the_fact() -> None:
    """On a one-fact question, supervising pass t with the t-th fact is supervising every pass with the fact."""
    from attn_cli.models.dmn import DMN

    model = DMN(DMN.Config(embed_dim=5, hidden=7, passes=3, gate_hidden=3, gate_supervision=1.0), vocab=V, answers=A)
    story, lens, question = _story()
    out = model(story, lens, question)
    supporting = torch.zeros(B, M, dtype=torch.long)
    supporting[torch.arange(B), torch.tensor([2, 4, 0])] = 1
    gates, keep = out["attn"], (torch.arange(M)[None] < lens[:, None])[:, None].expand(-1, 3, -1)  # (B, T, M)
    every_pass = supporting.bool()[:, None].expand_as(gates).float()
    bce = torch.nn.functional.binary_cross_entropy(gates.clamp(1e-6, 1 - 1e-6)[keep], every_pass[keep], reduction="sum")
    assert out["gate_loss"](supporting).item() == pytest.approx(bce.item() / B, rel=1e-6)


def test_dmn_gate_loss_mean_averages_over_every_pass_and_fact() -> None:
    """``gate_loss: mean``, the earlier records' formulation: the same cross-entropy, 1/(kept gates) of the sum."""
    from attn_cli.models.dmn import DMN

    cfg = {"embed_dim": 5, "hidden": 7, "passes": 3, "gate_hidden": 3, "gate_supervision": 1.0, "dropout": 0.0}
    torch.manual_seed(0)
    summed = DMN(DMN.Config(**cfg), vocab=V, answers=A)
    averaged = DMN(DMN.Config(**cfg, gate_loss="mean"), vocab=V, answers=A)
    averaged.load_state_dict(summed.state_dict())
    story, lens, question = _story()
    supporting = torch.zeros(B, M, dtype=torch.long)
    supporting[torch.arange(B), torch.tensor([2, 4, 0])] = 1
    out, keep = summed(story, lens, question), (torch.arange(M)[None] < lens[:, None])[:, None].expand(-1, 3, -1)
    every_pass = supporting.bool()[:, None].expand_as(out["attn"]).float()
    want = torch.nn.functional.binary_cross_entropy(out["attn"].clamp(1e-6, 1 - 1e-6)[keep], every_pass[keep])
    got = averaged(story, lens, question)["gate_loss"](supporting)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert got.item() == pytest.approx(out["gate_loss"](supporting).item() * B / int(keep.sum()), rel=1e-6)


def test_dmn_gate_loss_is_zero_without_supporting_facts() -> None:
    from attn_cli.models.dmn import DMN

    model = DMN(DMN.Config(embed_dim=5, hidden=7, gate_hidden=3, gate_supervision=1.0), vocab=V, answers=A)
    story, lens, question = _story()
    loss = model(story, lens, question)["gate_loss"](torch.zeros(B, M, dtype=torch.long))
    assert loss.item() == 0.0  # not NaN (the mean of nothing)


def test_dmn_rejects_an_unknown_gate_feature_set() -> None:
    from attn_cli.config import build
    from attn_cli.errors import AttnError
    from attn_cli.models.dmn import DMN

    with pytest.raises(AttnError, match="gate_features"):
        build(DMN.Config, {"gate_features": "kumr"}, "model")


def test_deep_lstm_reader_query_first_reads_q_then_d() -> None:
    from attn_cli.models.readers import DeepLSTMReader, ReaderConfig

    torch.manual_seed(0)
    doc_first = DeepLSTMReader(ReaderConfig(embed_dim=5, hidden=7, dropout=0.0), vocab=V, entities=11, entity_offset=4)
    query_first = DeepLSTMReader(
        ReaderConfig(embed_dim=5, hidden=7, dropout=0.0, query_first=True), vocab=V, entities=11, entity_offset=4
    )
    query_first.load_state_dict(doc_first.state_dict())
    doc, query = torch.randint(3, V, (B, 17)), torch.randint(3, V, (B, 5))
    doc_len, q_len = torch.tensor([17, 9, 4]), torch.tensor([5, 2, 3])
    cand = torch.ones(B, 11, dtype=torch.bool)
    qd = query_first(doc, doc_len, query, q_len, cand)["logits"]
    assert torch.allclose(qd, doc_first(query, q_len, doc, doc_len, cand)["logits"], atol=1e-5)  # same as q ||| d
    assert not torch.allclose(qd, doc_first(doc, doc_len, query, q_len, cand)["logits"], atol=1e-3)  # not d ||| q


@pytest.mark.parametrize("name", ["attentive-reader", "impatient-reader"])
def test_query_first_is_refused_by_the_attentive_readers(name: str) -> None:
    from attn_cli.errors import AttnError
    from attn_cli.registry import MODELS

    cls = MODELS.get(name)
    with pytest.raises(AttnError, match="deep-lstm-reader only"):
        cls(cls.Config(embed_dim=5, hidden=7, attn_dim=3, query_first=True), vocab=V, entities=11, entity_offset=4)
