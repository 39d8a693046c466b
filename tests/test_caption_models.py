"""Show-Attend-Tell and the video captioner: the paper's equations checked by hand, free-running evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attn_cli.errors import AttnError
from attn_cli.metrics.attention import attention_in_box, box_coverage, word_correctness
from attn_cli.models.sat import ShowAttendTell, ShowTell
from attn_cli.models.video import VideoCaptioner
from attn_cli.nn.captioner import doubly_stochastic_penalty
from attn_cli.nn.search import beam_search, greedy

META = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3, "vocab_size": 11, "input_kind": "image"}
META = {**META, "input_shape": [1, 20, 28]}


def _batch(b: int = 3, t: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(b, 1, 20, 28, generator=gen)
    tok_out = torch.randint(4, 11, (b, t), generator=gen)
    tok_out[0, 3:] = 0  # a shorter caption, padded
    tok_out[0, 3] = 3
    tok_in = torch.cat([torch.full((b, 1), 2), tok_out[:, :-1]], 1)
    return x, tok_in, tok_out


def _sat(**kw: object) -> ShowAttendTell:
    torch.manual_seed(0)
    cfg = ShowAttendTell.Config(channels=(5, 7), emb_dim=11, hidden=13, attn_dim=7, **kw)
    return ShowAttendTell(cfg, **META)


def test_doubly_stochastic_penalty_matches_a_hand_computation() -> None:
    # one caption of 3 steps (the third is padding) over L = 2 locations
    alphas = torch.tensor([[[0.75, 0.25], [0.5, 0.5], [0.0, 1.0]]])
    steps = torch.tensor([[True, True, False]])
    # Σ_t α: location 0 -> 1.25, location 1 -> 0.75; Σ_i (1 - ·)² = 0.0625 + 0.0625
    assert doubly_stochastic_penalty(alphas, steps).tolist() == pytest.approx([0.125])


def test_soft_loss_adds_lambda_times_the_penalty() -> None:
    x, tok_in, tok_out = _batch()
    with_pen, without = _sat(doubly_stochastic=2.0), _sat(doubly_stochastic=0.0)
    with_pen.eval(), without.eval()
    loss_a, logs = with_pen.loss(x, tok_in, tok_out)
    loss_b, _ = without.loss(x, tok_in, tok_out)
    assert float((loss_a - loss_b).detach()) == pytest.approx(2.0 * float(logs["ds_penalty"]), rel=1e-5)


def test_beta_gate_scales_the_expected_context() -> None:
    model = _sat(gate=True)
    dec = model.decoder
    with torch.no_grad():
        dec.f_beta.weight.zero_()
        dec.f_beta.bias.fill_(-1.0)
    x, _, _ = _batch()
    mem = model.encode(x)
    out = dec._step(torch.full((3,), 2), dec.init_state(mem), mem)
    expected = torch.sigmoid(torch.tensor(-1.0)) * torch.bmm(out["alpha"].unsqueeze(1), mem["feats"]).squeeze(1)
    assert torch.allclose(out["z"], expected, atol=1e-6)
    assert out["beta"].tolist() == pytest.approx([1 / (1 + math.e)] * 3)
    assert torch.allclose(out["alpha"].sum(-1), torch.ones(3))


def test_no_gate_means_the_plain_expected_context() -> None:
    model = _sat(gate=False)
    x, _, _ = _batch()
    mem = model.encode(x)
    out = model.decoder._step(torch.full((3,), 2), model.decoder.init_state(mem), mem)
    assert out["beta"] is None
    assert torch.allclose(out["z"], torch.bmm(out["alpha"].unsqueeze(1), mem["feats"]).squeeze(1), atol=1e-6)


def _attention_grad(model: ShowAttendTell) -> float:
    x, tok_in, tok_out = _batch()
    model.train()
    loss, _ = model.loss(x, tok_in, tok_out)
    model.zero_grad()
    loss.backward()
    score = model.decoder.score
    return sum(float(p.grad.abs().sum()) for p in (score.W_q.weight, score.v.weight) if p.grad is not None)


def test_hard_attention_reinforce_gradient_reaches_the_attention_network() -> None:
    # always sample (never the expected location), no doubly stochastic penalty: the likelihood
    # alone cannot reach f_att ...
    torch.manual_seed(1)
    assert (
        _attention_grad(
            _sat(
                attention="hard",
                gate=False,
                expected_prob=0.0,
                doubly_stochastic=0.0,
                reinforce_weight=0.0,
                entropy=0.0,
            )
        )
        == 0
    )
    # ... the REINFORCE term (eq. (12)) does, and so does the entropy bonus
    torch.manual_seed(1)
    assert (
        _attention_grad(_sat(attention="hard", gate=False, expected_prob=0.0, doubly_stochastic=0.0, entropy=0.0)) > 0
    )
    torch.manual_seed(1)
    assert (
        _attention_grad(
            _sat(attention="hard", gate=False, expected_prob=0.0, doubly_stochastic=0.0, reinforce_weight=0.0)
        )
        > 0
    )


def test_hard_attention_moving_average_baseline_updates_in_training_only() -> None:
    model = _sat(attention="hard", gate=False, expected_prob=0.0, doubly_stochastic=0.0, baseline_decay=0.5)
    x, tok_in, tok_out = _batch()
    model.train()
    _, logs1 = model.loss(x, tok_in, tok_out)
    first = float(model.baseline.value)
    _, logs2 = model.loss(x, tok_in, tok_out)
    assert float(logs2["baseline"]) == pytest.approx(first)  # the value before this batch's update
    model.eval()
    before = float(model.baseline.value)
    model.loss(x, tok_in, tok_out)
    assert float(model.baseline.value) == before


def test_moving_average_baseline_uses_the_masked_rows_only() -> None:
    from attn_cli.attention.reinforce import MovingAverageBaseline

    b = MovingAverageBaseline(decay=0.5).train()
    reward = torch.tensor([-1.0, -3.0, -100.0])
    keep = torch.tensor([True, True, False])
    assert b(reward, keep).tolist() == [-2.0, -2.0, -2.0]  # first batch: its own masked mean
    assert float(b.value) == -2.0
    assert b(torch.tensor([-4.0, 50.0]), torch.tensor([True, False])).tolist() == [-2.0, -2.0]
    assert float(b.value) == -3.0  # 0.5·(−2) + 0.5·(−4): the unmasked 50 is ignored
    assert b(torch.tensor([7.0]), torch.tensor([False])).tolist() == [-3.0]  # nothing sampled: unchanged
    assert float(b.value) == -3.0


def test_hard_attention_adds_the_doubly_stochastic_penalty_like_the_authors_code() -> None:
    x, tok_in, tok_out = _batch()
    kw = {"attention": "hard", "gate": False, "expected_prob": 1.0}  # expected context: no sampling noise
    with_pen, without = _sat(doubly_stochastic=2.0, **kw), _sat(doubly_stochastic=0.0, **kw)
    with_pen.train(), without.train()
    loss_a, logs = with_pen.loss(x, tok_in, tok_out)
    loss_b, _ = without.loss(x, tok_in, tok_out)
    assert float(logs["ds_penalty"]) > 0
    assert float((loss_a - loss_b).detach()) == pytest.approx(2.0 * float(logs["ds_penalty"]), rel=1e-5)


def test_step_decoding_equals_the_teacher_forced_pass() -> None:
    model = _sat()
    model.eval()
    x, tok_in, _ = _batch()
    with torch.no_grad():
        full = model(x, tok_in)["logits"].log_softmax(-1)  # (B, T, V)
        mem = model.encode(x)
        state = model.init_state(mem)
        for t in range(tok_in.size(1)):
            lp, state, _ = model.step(tok_in[:, t], state, mem)
            assert torch.allclose(lp, full[:, t], atol=1e-5)


def test_beam_one_equals_greedy_and_captions_come_from_the_image_alone() -> None:
    model = _sat()
    model.eval()
    x, _, _ = _batch()
    mem = model.encode(x)
    g = greedy(model, mem, 3, 2, 3, 9)
    b1 = beam_search(model, mem, 3, 2, 3, 1, 9, 0.0)
    assert [h.tokens for h in g] == [h.tokens for h in b1]
    assert all(h.attn is not None and h.attn.shape == (len(h.tokens), 5 * 7) for h in g)


@pytest.mark.parametrize("model_cls", [ShowTell, ShowAttendTell])
def test_models_train_without_nan(model_cls: type) -> None:
    torch.manual_seed(0)
    cfg = model_cls.Config(channels=(5, 7), emb_dim=11, hidden=13)
    model = model_cls(cfg, **META)
    x, tok_in, tok_out = _batch()
    loss, _ = model.loss(x, tok_in, tok_out)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(("frames", "frame_grid"), [("cnn2d", 0), ("cnn3d", 0), ("both", 0), ("both", 2)])
def test_video_model_attends_over_frames(frames: str, frame_grid: int) -> None:
    torch.manual_seed(0)
    meta = {**META, "input_kind": "video", "input_shape": [7, 1, 12, 16]}
    cfg = VideoCaptioner.Config(frames=frames, channels=(5,), channels3d=(3,), hidden=13, frame_grid=frame_grid)
    model = VideoCaptioner(cfg, **meta)
    x = torch.rand(3, 7, 1, 12, 16)
    _, tok_in, tok_out = _batch()
    loss, _ = model.loss(x, tok_in, tok_out)
    loss.backward()
    model.eval()
    hyps = greedy(model, model.encode(x), 3, 2, 3, 6)
    assert all(h.attn.shape == (len(h.tokens), 7) for h in hyps)  # (words, frames)
    assert all(torch.allclose(h.attn.sum(-1), torch.ones(len(h.tokens))) for h in hyps)


def test_frame_grid_keeps_the_layout_of_each_frame() -> None:
    """frame_grid=k: each frame's 2-D vector is its CNN map average-pooled to k×k and flattened (so two
    frames that differ only in where a digit is get different vectors); 0: the map's mean."""
    from attn_cli.nn.image_encoders import FrameEncoder

    torch.manual_seed(0)
    x = torch.rand(2, 3, 1, 16, 16)  # (B, T, C, H, W)
    flat = FrameEncoder([3, 1, 16, 16], "cnn2d", (4, 6), (3,), patch=1, grid=2)
    pooled = FrameEncoder([3, 1, 16, 16], "cnn2d", (4, 6), (3,), patch=1, grid=0)
    pooled.load_state_dict(flat.state_dict())
    assert flat.out_dim == 6 * 2 * 2 and pooled.out_dim == 6
    fmap = flat.cnn2d.body(x.flatten(0, 1))  # (B·T, 6, 4, 4)
    want = torch.nn.functional.adaptive_avg_pool2d(fmap, 2).flatten(1).view(2, 3, -1)
    assert torch.allclose(flat(x), want, atol=1e-6)
    assert torch.allclose(pooled(x), fmap.mean((2, 3)).view(2, 3, -1), atol=1e-6)
    # a blob on the left half vs the same blob on the right half: the flattened layouts swap halves
    left = torch.zeros(1, 1, 1, 16, 16)
    left[..., 6:10, 2:6] = 1.0
    right = left.flip(-1)
    with torch.no_grad():
        a, b = flat(left).view(6, 2, 2), flat(right).view(6, 2, 2)
    assert not torch.allclose(a, b, atol=1e-3)


def test_frame_grid_finer_than_the_map_is_an_error() -> None:
    from attn_cli.nn.image_encoders import FrameEncoder

    with pytest.raises(AttnError, match=r"frame_grid 5 is finer than the 2-D CNN's 4×4 map; use at most 4"):
        FrameEncoder([3, 1, 16, 16], "both", (4, 6), (3,), patch=1, grid=5)


def test_video_basic_has_no_attention_weights() -> None:
    meta = {**META, "input_kind": "video", "input_shape": [5, 1, 12, 16]}
    model = VideoCaptioner(VideoCaptioner.Config(attention="mean", channels=(5,), hidden=13), **meta)
    model.eval()
    hyps = greedy(model, model.encode(torch.rand(2, 5, 1, 12, 16)), 2, 2, 3, 4)
    assert all(h.attn is None for h in hyps)


# -- attention correctness ---------------------------------------------------------------------


def test_attention_correctness_on_a_hand_built_example() -> None:
    # a 2×2 grid over a 4×4 image: each cell is 2×2 pixels, weights in row-major order
    alpha = np.array([0.5, 0.25, 0.25, 0.0])
    assert attention_in_box(alpha, (2, 2), (4, 4), [[0, 0, 2, 2]]) == pytest.approx(0.5)  # exactly cell (0, 0)
    # 3 px wide: cell (0, 0) whole, half of cell (0, 1): 0.5 + 0.25 / 2
    assert attention_in_box(alpha, (2, 2), (4, 4), [[0, 0, 3, 2]]) == pytest.approx(0.625)
    assert attention_in_box(alpha, (2, 2), (4, 4), [[0, 0, 4, 4]]) == pytest.approx(1.0)
    # a grid that does not divide the image: 3 cells over 4 px, each 4/3 px
    cov = box_coverage((1, 3), (1, 4), [[0, 0, 1, 1]])
    assert cov.tolist() == pytest.approx([0.75, 0.0, 0.0])
    objects = [("three", [0, 0, 2, 2]), ("seven", [2, 2, 4, 4]), ("three", [2, 0, 4, 2])]
    alphas = np.array([[1.0, 0, 0, 0], [0.5, 0.25, 0.25, 0.0], [0, 0, 0, 1.0], [0.25, 0.25, 0.25, 0.25]])
    words = ["a", "three", "seven", "nine"]
    # "a" and "nine" name no digit of the image; "three" counts both of its boxes (cells 0 and 1)
    assert word_correctness(words, alphas, objects, (2, 2), (4, 4)) == pytest.approx([0.75, 1.0])
    # lead=1 scores the map one step earlier: "three" with α_0 (1.0 in cell 0), "seven" with α_1 (0.0 in cell 3)
    assert word_correctness(words, alphas, objects, (2, 2), (4, 4), lead=1) == pytest.approx([1.0, 0.0])
    assert word_correctness(["three"], alphas, objects, (2, 2), (4, 4), lead=1) == []  # no step before it


def test_temporal_correctness_on_a_hand_built_example() -> None:
    from attn_cli.metrics.attention import segment_correctness

    alphas = np.array([[0.25] * 4, [0.5, 0.25, 0.25, 0.0], [0.0, 0.0, 0.25, 0.75], [0.25] * 4])
    words = ["three", "left", "down", "up"]  # "up" is a third motion word: no third segment, skipped
    assert segment_correctness(words, alphas, [[0, 2], [2, 4]], ("left", "right", "up", "down")) == pytest.approx(
        [0.75, 1.0]
    )


def test_grid_position_vectors_are_added_per_location() -> None:
    from attn_cli.nn.image_encoders import GridCNN

    torch.manual_seed(0)
    plain = GridCNN((1, 60, 60), (8, 16, 16))
    placed = GridCNN((1, 60, 60), (8, 16, 16), position=True)
    placed.body.load_state_dict(plain.body.state_dict())
    x = torch.rand(2, 1, 60, 60)
    a, b = plain(x), placed(x)
    assert placed.position.shape == (7 * 7, 16)
    torch.testing.assert_close(b - a, placed.position.expand_as(a))
    assert not torch.allclose(placed.position[0], placed.position[-1])


def test_without_context_input_the_lstm_never_sees_the_glimpse() -> None:
    """context_input=false: ẑ_t reaches the word through eq. (7) only, so the next state ignores it."""
    torch.manual_seed(0)
    m = _sat(context_input=False).eval()
    assert m.decoder.lstm.input_size == m.cfg.emb_dim
    x, tok_in, _ = _batch()
    mem = m.encode(x)
    state = m.init_state(mem)
    other = dict(mem, feats=torch.randn_like(mem["feats"]))  # a different glimpse, same attention
    lp_a, (h_a, _), _ = m.step(tok_in[:, 0], state, mem)
    lp_b, (h_b, _), _ = m.step(tok_in[:, 0], state, other)
    torch.testing.assert_close(h_a, h_b)
    assert not torch.allclose(lp_a, lp_b)
    assert _sat().decoder.lstm.input_size > m.cfg.emb_dim  # eq. (1), the default


def test_grounded_decoder_sees_the_image_only_through_the_current_attention() -> None:
    """init=zeros + context_input=false: (h_0, c_0) = 0 and the word of step t depends on the image only via ẑ_t."""
    m = _sat(context_input=False, init="zeros").eval()
    assert m.decoder.init_h is None and m.decoder.init_c is None  # no f_init parameters left unused
    x, tok_in, _ = _batch()
    mem = m.encode(x)
    h0, c0 = m.init_state(mem)
    assert h0.shape == (x.size(0), m.cfg.hidden) and not h0.any() and not c0.any()
    # a different image with the same glimpse ẑ_1: the first word's distribution cannot change
    other = m.encode(torch.rand_like(x))
    lp_a, state_a, alpha_a = m.step(tok_in[:, 0], (h0, c0), mem)
    z = torch.bmm(alpha_a.unsqueeze(1), mem["feats"]).squeeze(1)  # (B, D) the glimpse of step 1
    same_glimpse = dict(other, feats=z.unsqueeze(1).expand_as(mem["feats"]).contiguous())
    same_glimpse["keys"] = m.decoder.score.keys(same_glimpse["feats"])
    lp_b, state_b, _ = m.step(tok_in[:, 0], (h0, c0), same_glimpse)
    torch.testing.assert_close(lp_a, lp_b)
    torch.testing.assert_close(state_a[0], state_b[0])
    assert not torch.allclose(lp_a, m.step(tok_in[:, 0], (h0, c0), other)[0])  # the glimpse does matter


@pytest.mark.parametrize(("kw", "msg"), [({"init": "random"}, "model.init"), ({"attention": "none"}, "blind")])
def test_decoder_init_errors(kw: dict, msg: str) -> None:
    from attn_cli.errors import AttnError
    from attn_cli.nn.captioner import CaptionDecoder

    args = {
        "attention": "soft",
        "emb_dim": 4,
        "hidden": 5,
        "attn_dim": 3,
        "dropout": 0.0,
        "gate": True,
        "init": "zeros",
    }
    with pytest.raises(AttnError, match=msg):
        CaptionDecoder(6, 9, **{**args, **kw})


def test_box_targets_are_normalised_box_maps_on_the_naming_words_only() -> None:
    from attn_cli.metrics.attention import box_targets

    objects = [("three", [0, 0, 2, 2]), ("seven", [2, 2, 4, 4]), ("three", [2, 0, 4, 2])]
    words = ["a", "three", "and", "a", "seven", "<eos>"]
    t = box_targets(words, objects, (2, 2), (4, 4), steps=7)
    assert t.shape == (7, 4)
    np.testing.assert_allclose(t[1], [0.5, 0.5, 0.0, 0.0])  # both "three" boxes: the union, normalised
    np.testing.assert_allclose(t[4], [0.0, 0.0, 0.0, 1.0])
    assert not t[[0, 2, 3, 5, 6]].any()
    assert box_targets(words, objects, (2, 2), (4, 4), steps=3)[1].sum() == pytest.approx(1.0)  # cut at steps


def test_attention_supervision_adds_lambda_times_the_cross_entropy() -> None:
    """Liu et al. (2017): loss + λ_a Σ_t −Σ_i β_ti log α_ti, and its gradient reaches the attention network."""
    x, tok_in, tok_out = _batch()
    meta = dict(META, has_boxes=True)
    torch.manual_seed(0)
    cfg = ShowAttendTell.Config(channels=(5, 7), emb_dim=11, hidden=13, attn_dim=7, attn_supervision=0.5)
    m = ShowAttendTell(cfg, **meta).eval()
    alpha = m(x, tok_in)["alpha"]  # (B, T, L)
    target = torch.zeros_like(alpha)
    target[:, 1, 0] = 1.0  # the second word names an object in cell 0
    base, _ = m.loss(x, tok_in, tok_out)
    sup, logs = m.loss(x, tok_in, tok_out, target)
    expected = -torch.log(alpha[:, 1, 0]).mean()
    torch.testing.assert_close(sup - base, 0.5 * expected)
    torch.testing.assert_close(logs["attn_sup"], expected)
    m.zero_grad()
    (sup - base).backward()
    assert m.decoder.score.parameters().__next__().grad.abs().sum() > 0


@pytest.mark.parametrize(("weight", "boxes", "msg"), [(-1.0, True, "must be >= 0"), (1.0, False, "needs object boxes")])
def test_attention_supervision_errors(weight: float, boxes: bool, msg: str) -> None:
    from attn_cli.errors import AttnError

    cfg = ShowAttendTell.Config(channels=(5, 7), emb_dim=11, hidden=13, attn_dim=7, attn_supervision=weight)
    with pytest.raises(AttnError, match=msg):
        ShowAttendTell(cfg, **dict(META, has_boxes=boxes))
