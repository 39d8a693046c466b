"""Hard Show-Attend-Tell (Xu et al. 2015 §4.1): the REINFORCE learning signal of eq. (12) on constructed cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attn_cli.models.sat import ShowAttendTell

# two annotation vectors (L = 2) of width 4, fed directly (no CNN)
META = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3, "vocab_size": 6, "input_kind": "features"}
META = {**META, "input_shape": [2, 4]}


def _hard(**kw: object) -> ShowAttendTell:
    torch.manual_seed(0)
    base = {"attention": "hard", "gate": False, "doubly_stochastic": 0.0, "expected_prob": 0.0}
    cfg = ShowAttendTell.Config(emb_dim=5, hidden=7, attn_dim=6, **{**base, **kw})
    return ShowAttendTell(cfg, **META)


def _caption(b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``b`` copies of one image (location 0 = +u, location 1 = −u) and the caption "4 EOS"."""
    u = torch.tensor([1.0, -1.0, 0.5, 2.0])
    x = torch.stack([u, -u]).expand(b, 2, 4).clone()
    tok_out = torch.tensor([[4, 3]]).expand(b, 2).clone()
    tok_in = torch.tensor([[2, 4]]).expand(b, 2).clone()
    return x, tok_in, tok_out


def _log_lik_at(model: ShowAttendTell, x: torch.Tensor, tok_in: torch.Tensor, tok_out: torch.Tensor, loc: int) -> float:
    """log p(y | s_t = loc at every step, a): both locations replaced by annotation ``loc``."""
    fixed = x[:, loc : loc + 1].expand_as(x)
    with torch.no_grad():
        logits = model.decoder.teacher_forced(model.decoder.memory(fixed), tok_in)["logits"]
    return float(-F.cross_entropy(logits[:1].transpose(1, 2), tok_out[:1], reduction="sum"))


def _attention_params(model: ShowAttendTell) -> list[torch.nn.Parameter]:
    return list(model.decoder.score.parameters())


def _alpha(model: ShowAttendTell, x: torch.Tensor, tok_in: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.decoder.teacher_forced(model.decoder.memory(x), tok_in)["alpha"][0]  # (T, L)


def test_reinforce_raises_the_probability_of_the_location_with_the_higher_caption_likelihood() -> None:
    model = _hard(entropy=0.0, reinforce_weight=1.0).train()
    x, tok_in, tok_out = _caption(512)
    good = max((0, 1), key=lambda loc: _log_lik_at(model, x, tok_in, tok_out, loc))
    gap = abs(_log_lik_at(model, x, tok_in, tok_out, 0) - _log_lik_at(model, x, tok_in, tok_out, 1))
    assert gap > 0.05  # the constructed case has a better location
    before = _alpha(model, x, tok_in)[:, good]
    params = _attention_params(model)
    opt = torch.optim.SGD(params, lr=0.5)
    for _ in range(5):  # every location sampled (expected_prob = 0): only REINFORCE reaches f_att
        torch.manual_seed(1)
        loss, _ = model.loss(x, tok_in, tok_out)
        opt.zero_grad()
        model.zero_grad()
        loss.backward()
        opt.step()
    after = _alpha(model, x, tok_in)[:, good]
    assert (after > before).all(), (before, after)


def test_the_likelihood_alone_does_not_reach_the_attention_when_every_location_is_sampled() -> None:
    model = _hard(entropy=0.0, reinforce_weight=0.0).train()
    x, tok_in, tok_out = _caption(8)
    loss, _ = model.loss(x, tok_in, tok_out)
    loss.backward()
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in _attention_params(model))


def test_reinforce_and_entropy_terms_are_per_word_of_the_padded_length() -> None:
    x, tok_in, tok_out = _caption(16)
    x = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))  # captions differ in reward
    w_r, w_e = 0.3, 0.02
    with_terms, plain = _hard(reinforce_weight=w_r, entropy=w_e).train(), _hard(reinforce_weight=0.0, entropy=0.0)
    plain.train()
    torch.manual_seed(5)
    loss_a, logs = with_terms.loss(x, tok_in, tok_out)
    torch.manual_seed(5)  # the same samples
    loss_b, _ = plain.loss(x, tok_in, tok_out)
    t = tok_out.size(1)
    expected = (w_r * float(logs["reinforce"]) - w_e * float(logs["entropy"])) / t
    assert float((loss_a - loss_b).detach()) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_entropy_bonus_flattens_the_attention() -> None:
    model = _hard(entropy=1.0, reinforce_weight=0.0).train()
    x, tok_in, tok_out = _caption(4)
    with torch.no_grad():  # a peaked start
        model.decoder.score.v.weight.mul_(20.0)

    def entropy() -> float:
        a = _alpha(model, x, tok_in)
        return float(-(a * a.clamp_min(1e-12).log()).sum(-1).mean())

    before = entropy()
    opt = torch.optim.SGD(_attention_params(model), lr=0.1)
    loss, _ = model.loss(x, tok_in, tok_out)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert entropy() > before


def test_the_score_is_the_log_probability_of_the_sampled_location_and_the_reward_is_detached() -> None:
    model = _hard().train()
    x, tok_in, _ = _caption(64)
    dec = model.decoder
    mem = dec.memory(x)
    state = dec.init_state(mem)
    torch.manual_seed(0)
    out = dec._step(tok_in[:, 0], state, mem, torch.zeros(64, dtype=torch.bool))
    picked = out["alpha"].gather(1, out["loc"].unsqueeze(1)).squeeze(1)
    assert torch.allclose(out["log_p_loc"], picked.log(), atol=1e-6)
    # the glimpse is the sampled annotation (eq. (9)), not the expected one
    assert torch.equal(out["z"], x[torch.arange(64), out["loc"]])
    # REINFORCE: the reward carries no gradient (the loss' reward comes from a detached NLL)
    loss, logs = model.loss(*_caption(8))
    assert not logs["reinforce"].requires_grad and not logs["baseline"].requires_grad


def test_the_expected_location_is_chosen_per_caption_for_all_its_words() -> None:
    model = _hard(expected_prob=0.5).train()
    x, tok_in, _ = _caption(200)
    torch.manual_seed(2)
    expect = torch.rand(200) < 0.5
    out = model.decoder.teacher_forced(model.decoder.memory(x), tok_in, expect)
    assert out["log_p_loc"] is not None and 40 < int(expect.sum()) < 160
    mem = model.decoder.memory(x)
    expected_ctx = torch.bmm(out["alpha"][:, 0].unsqueeze(1), mem["feats"]).squeeze(1)
    torch.manual_seed(2)
    torch.rand(200)
    z = model.decoder._step(tok_in[:, 0], model.decoder.init_state(mem), mem, expect)["z"]
    assert torch.allclose(z[expect], expected_ctx[expect], atol=1e-6)  # those captions read Σ_i α_i a_i
    assert all(any(torch.equal(z[i], x[i, j]) for j in range(2)) for i in torch.nonzero(~expect).flatten().tolist())


def test_evaluation_uses_the_expected_context_deterministically() -> None:
    model = _hard(expected_prob=0.0).eval()
    x, tok_in, tok_out = _caption(4)
    torch.manual_seed(0)
    a, _ = model.loss(x, tok_in, tok_out)
    torch.manual_seed(1)
    b, _ = model.loss(x, tok_in, tok_out)
    assert float(a.detach()) == float(b.detach())
