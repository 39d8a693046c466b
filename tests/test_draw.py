"""DRAW (Gregor et al. 2015): the filterbank against the paper's equations, the attention heads'
initial window, and the generation path's read/write wiring."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from attn_cli.attention.spatial import draw_params, filter_read, filter_write, filterbank, window_bias
from attn_cli.models.draw import DRAW


def _reference_filterbank(gx, gy, log_var, delta, n, height, width):  # noqa: ANN001, ANN202
    """Eq. (19)-(20), (25)-(26) written out with loops, 1-based i and a."""
    b = gx.size(0)
    fx, fy = torch.zeros(b, n, width, dtype=torch.float64), torch.zeros(b, n, height, dtype=torch.float64)
    for k in range(b):
        var = math.exp(float(log_var[k]))
        for i in range(1, n + 1):
            mux = float(gx[k]) + (i - n / 2 - 0.5) * float(delta[k])
            muy = float(gy[k]) + (i - n / 2 - 0.5) * float(delta[k])
            for a in range(1, width + 1):
                fx[k, i - 1, a - 1] = math.exp(-((a - mux) ** 2) / (2 * var))
            for a in range(1, height + 1):
                fy[k, i - 1, a - 1] = math.exp(-((a - muy) ** 2) / (2 * var))
    return fx / fx.sum(-1, keepdim=True), fy / fy.sum(-1, keepdim=True)


def test_filterbank_matches_the_paper_equations() -> None:
    gx, gy = torch.tensor([3.0, 6.5, 1.0]), torch.tensor([2.0, 4.0, 7.0])
    log_var, delta = torch.tensor([0.3, -1.0, 1.5]), torch.tensor([1.0, 2.3, 0.5])
    for height, width, n in ((7, 11, 5), (9, 9, 4), (9, 9, 1)):
        fx, fy = filterbank(gx, gy, log_var, delta, n, height, width)
        rx, ry = _reference_filterbank(gx, gy, log_var, delta, n, height, width)
        assert torch.allclose(fx.double(), rx, atol=1e-6) and torch.allclose(fy.double(), ry, atol=1e-6)


def test_a_filter_far_off_the_image_stays_normalised_with_a_gradient() -> None:
    gx = torch.tensor([-60.0], requires_grad=True)  # ~60 σ left of the image: exp(...) underflows to 0
    fx, _ = filterbank(gx, torch.tensor([5.0]), torch.tensor([0.0]), torch.tensor([1.0]), 3, 9, 9)
    assert torch.isfinite(fx).all() and torch.allclose(fx.sum(-1), torch.ones(1, 3))
    (fx * torch.arange(9.0)).sum().backward()
    assert torch.isfinite(gx.grad).all() and gx.grad.abs().sum() > 0


def test_window_bias_covers_the_whole_image() -> None:
    for n, (height, width) in ((2, (28, 28)), (5, (28, 28)), (12, (100, 100)), (3, (13, 17))):
        p = draw_params(window_bias(n, height, width).expand(2, 5), n, height, width)
        side = max(height, width)
        assert torch.allclose(p["gx"], torch.full((2,), (width + 1) / 2))
        assert torch.allclose(p["gy"], torch.full((2,), (height + 1) / 2))
        assert torch.allclose(p["delta"], torch.full((2,), side / n))
        assert torch.allclose(p["log_var"].exp().sqrt(), torch.full((2,), side / n / 2))
        assert torch.allclose(p["gamma"], torch.ones(2))
        # a constant write patch paints every pixel, and a read of a constant image is that constant
        canvas, _, _ = filter_write(torch.ones(2, 1, n, n), p, height, width)
        assert float(canvas.min()) > 0.1 * float(canvas.max())
        glimpse, _, _ = filter_read(torch.full((2, 1, height, width), 0.7), p, n)
        assert torch.allclose(glimpse, torch.full_like(glimpse, 0.7), atol=1e-5)


def test_write_uses_exp_minus_log_gamma() -> None:
    p = draw_params(torch.tensor([[0.1, -0.2, 0.5, -0.3, 2.0], [0.0, 0.3, -0.5, 0.2, -3.0]]), 3, 8, 8)
    patch = torch.rand(2, 1, 3, 3)
    out, fx, fy = filter_write(patch, p, 8, 8)
    ref = torch.einsum("bnh,bcnm,bmw->bchw", fy, patch, fx) / p["gamma"][:, None, None, None]
    assert torch.allclose(out, ref, atol=1e-6)
    p.pop("log_gamma")  # parameters without log γ (older callers) give the same answer
    assert torch.allclose(filter_write(patch, p, 8, 8)[0], ref, atol=1e-6)


def test_one_read_of_x_and_x_hat_equals_two_reads() -> None:
    torch.manual_seed(0)
    p = draw_params(torch.randn(4, 5) * 0.3, 2, 12, 10)
    x, x_hat = torch.rand(4, 1, 12, 10), torch.rand(4, 1, 12, 10) - 0.5
    both = filter_read(torch.cat([x, x_hat], 1), p, 2)[0]
    fx, fy = filterbank(p["gx"], p["gy"], p["log_var"], p["delta"], 2, 12, 10)
    ref = [torch.einsum("bnh,bchw,bmw->bcnm", fy, im, fx) for im in (x, x_hat)]  # γ Fy x Fxᵀ per image
    assert torch.allclose(both, p["gamma"][:, None, None, None] * torch.cat(ref, 1), atol=1e-6)


def _model(**kw) -> DRAW:  # noqa: ANN003
    torch.manual_seed(0)
    cfg = {"steps": 4, "read_n": 2, "write_n": 5, "enc": 16, "dec": 16, "z": 4} | kw
    return DRAW(DRAW.Config(**cfg), [1, 28, 28], 10)


def test_the_first_glimpse_sees_the_digit() -> None:
    """With the whole-image initial window, the first N=2 read differs between images (the encoder
    has something to encode); the original δ̃ = 1, σ = 1 window read only the four corner pixels."""
    model = _model()
    x = torch.zeros(2, 1, 28, 28)
    x[0, 0, 8:20, 12:16] = 1.0  # a "1"
    x[1, 0, 6:22, 6:22] = 1.0
    x[1, 0, 9:19, 9:19] = 0.0  # a "0"
    r, p = model.read([x, x - 0.5], torch.zeros(2, 16))
    assert r.shape == (2, 2 * 4)
    assert (r[0, :4] - r[1, :4]).abs().max() > 0.05
    assert torch.allclose(p["delta"], torch.full((2,), 14.0))


def test_gradients_reach_both_attention_heads_and_kl_is_positive() -> None:
    model = _model()
    x = (torch.rand(3, 1, 28, 28) > 0.7).float()
    loss, terms = model.loss(x, torch.zeros(3, dtype=torch.long))
    loss.backward()
    for head in (model.read_head, model.write_head):
        assert head.weight.grad.abs().sum() > 0 and head.bias.grad.abs().sum() > 0
    assert terms["lz"] > 0


def test_the_decoder_is_fed_z_and_the_canvas_accumulates_writes() -> None:
    model = _model(steps=3)
    seen = []
    model.decoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    out = model(torch.rand(2, 1, 28, 28).round(), generator=torch.Generator().manual_seed(0))
    assert seen == [torch.Size([2, 4])] * 3  # z_t (B, z) each step
    c = [torch.logit(s.clamp(1e-6, 1 - 1e-6).double()) for s in out["canvases"]]
    assert not torch.allclose(c[1], c[2], atol=1e-4)  # c_t = c_{t−1} + write: the canvas keeps changing


def test_classifier_starts_on_the_whole_image() -> None:
    model = DRAW(DRAW.Config(mode="classify", steps=2, read_n=4, enc=8), [1, 20, 20], 5)
    _, reads = model.glimpses(torch.rand(2, 1, 20, 20))
    assert torch.allclose(reads[0]["delta"], torch.full((2,), 5.0)) and torch.allclose(
        reads[0]["gx"], torch.full((2,), 10.5)
    )


def test_forward_matches_the_paper_recurrence() -> None:
    """Eq. (3)-(8), (11) step by step with the unfused heads equals the fused forward pass."""
    for attention in (True, False):
        model = _model(steps=3, attention=attention)
        x = (torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.7).float()
        out = model(x, generator=torch.Generator().manual_seed(4))
        noise = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(4))
        c = torch.zeros_like(x)
        h_dec, s_dec, s_enc, kl = torch.zeros(2, 16), None, None, torch.zeros(2)
        for t in range(3):
            r, _ = model.read([x, x - torch.sigmoid(c)], h_dec)
            s_enc = model.encoder(torch.cat([r, h_dec], 1), s_enc)
            mu, log_sigma = model.q(s_enc[0]).chunk(2, -1)
            s_dec = model.decoder(mu + log_sigma.exp() * noise[t], s_dec)
            h_dec = s_dec[0]
            c = c + model.write(h_dec)[0]
            kl = kl + 0.5 * (mu**2 + (2 * log_sigma).exp() - 2 * log_sigma - 1).sum(-1)
        lx = torch.nn.functional.binary_cross_entropy_with_logits(c, x, reduction="none").sum((1, 2, 3))
        assert torch.allclose(out["lx"], lx, atol=1e-4) and torch.allclose(out["lz"], kl, atol=1e-5)


def test_train_compile_compiles_one_draw_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train.compile: DRAW compiles its time step (the "eager" backend here: the plumbing, without a C compiler),
    the compiled step computes what the eager one does, and other models compile their forward."""
    from attn_cli import run

    compiled: list[object] = []
    real_compile = torch.compile

    def fake_compile(fn: object, **kw: object) -> object:
        compiled.append(fn)
        return real_compile(fn, backend="eager")

    monkeypatch.setattr(torch, "compile", fake_compile)
    torch.manual_seed(0)
    model = DRAW(DRAW.Config(steps=3, read_n=2, write_n=3, enc=11, dec=13, z=5), [1, 12, 12], 10)
    x = (torch.rand(4, 1, 12, 12) > 0.5).float()
    eager = model(x, generator=torch.Generator().manual_seed(1))
    model.compile_for_training()
    fast = model(x, generator=torch.Generator().manual_seed(1))
    assert len(compiled) == 1 and torch.allclose(eager["lx"], fast["lx"], atol=1e-4)
    assert torch.allclose(eager["lz"], fast["lz"], atol=1e-5)

    data = tmp_path / "d"
    run.prepare("glyphs", data_dir=data, overrides=["train=23", "val=5", "test=7"])
    summary = run.train(
        "vision", "tiny/draw", runs_dir=tmp_path / "r", data_dir=data, progress=False,
        overrides=["train.compile=true", "train.max_steps=2"],
    )  # fmt: skip
    assert summary["run_dir"] and len(compiled) == 2 and getattr(compiled[1], "__name__", "") == "_step"
    whole = DRAW(DRAW.Config(steps=3, read_n=2, write_n=3, enc=11, dec=13, z=5, compile_step=False), [1, 12, 12], 10)
    whole.compile_for_training()
    assert len(compiled) == 3 and getattr(compiled[2], "__name__", "") != "_step"  # the unrolled forward
    # a model without the hook: nn.Module.compile (its forward)
    from attn_cli.config import load_recipe
    from attn_cli.tasks.vision import VisionModule

    module = VisionModule(
        load_recipe("vision", "tiny/fc", ["train.compile=true"]), {"image_shape": [1, 28, 28], "classes": 10}
    )
    module.on_fit_start()
    assert len(compiled) == 4 and getattr(compiled[3], "__name__", "") != "_step"


@pytest.mark.parametrize("mode", ["generate", "classify"])
def test_without_attention_there_are_no_window_heads_and_old_checkpoints_load(mode: str) -> None:
    """Before 2026-12-06 a DRAW without attention built read/write window heads it never used (their
    gradients were None: tests/test_models.py). Such a checkpoint still loads, strictly, its heads dropped."""
    cfg = DRAW.Config(mode=mode, attention=False, steps=3, enc=7, dec=11, z=5)
    model = torch.nn.Sequential(DRAW(cfg, [1, 13, 17], classes=3))  # under a prefix, as in an AttnModule
    assert not any("_head." in name for name, _ in model.named_parameters())
    old = {k: v + 1.0 for k, v in model.state_dict().items()}
    hidden = cfg.enc if mode == "classify" else cfg.dec
    old.update({"0.read_head.weight": torch.zeros(5, hidden), "0.read_head.bias": torch.zeros(5)})
    if mode == "generate":
        old.update({"0.write_head.weight": torch.zeros(5, hidden), "0.write_head.bias": torch.zeros(5)})
    model.load_state_dict(old)
    assert all(torch.equal(v, old[k]) for k, v in model.state_dict().items())
