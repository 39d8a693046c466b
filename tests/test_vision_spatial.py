"""The spatial attention mechanisms: STN grids + sampler, RAM's retina, DRAW's filterbank, REINFORCE."""

from __future__ import annotations

import torch

from attn_cli.attention.spatial import (
    affine_grid,
    corner_to_loc,
    draw_params,
    filter_read,
    filter_write,
    filterbank,
    projective_grid,
    retina,
    sample,
    tps_control_points,
    tps_grid,
)

B, C, H, W = 3, 2, 7, 11


def _image() -> torch.Tensor:
    return torch.rand(B, C, H, W, generator=torch.Generator().manual_seed(5))


def test_identity_affine_returns_the_input() -> None:
    x = _image()
    theta = torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(B, 2, 3)
    assert torch.allclose(sample(x, affine_grid(theta, (H, W))), x, atol=1e-6)


def test_known_translation_moves_a_known_pixel() -> None:
    x = torch.zeros(1, 1, H, W)
    x[0, 0, 3, 5] = 1.0
    shift = 2  # sample 2 pixels to the right: the bright pixel appears 2 columns to the left
    theta = torch.tensor([[[1.0, 0, 2 * shift / W], [0, 1, 0]]])
    y = sample(x, affine_grid(theta, (H, W)))
    assert torch.isclose(y[0, 0, 3, 5 - shift], torch.tensor(1.0), atol=1e-6)
    assert torch.isclose(y.sum(), torch.tensor(1.0), atol=1e-5)


def test_identity_projective_and_tps_return_the_input() -> None:
    x = _image()
    assert torch.allclose(sample(x, projective_grid(torch.eye(3).expand(B, 3, 3), (H, W))), x, atol=1e-5)
    ctrl = tps_control_points(3)
    grid = tps_grid(ctrl.expand(B, -1, -1).clone(), ctrl, (H, W))
    assert torch.allclose(sample(x, grid), x, atol=1e-4)


def test_tps_with_a_shifted_control_grid_is_a_translation() -> None:
    ctrl = tps_control_points(3)
    grid = tps_grid((ctrl + torch.tensor([0.2, -0.1])).unsqueeze(0), ctrl, (5, 7))
    ident = tps_grid(ctrl.unsqueeze(0), ctrl, (5, 7))
    assert grid.shape == (1, 5, 7, 2)
    assert torch.allclose(grid - ident, torch.tensor([0.2, -0.1]).expand_as(grid), atol=1e-4)


def test_retina_patch_contents_at_known_locations_and_scales() -> None:
    size = 17
    x = torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size)
    g, top, left = 3, 5, 7  # scale 0: 3×3 at (5, 7); scale 1: 6×6 starting at (5 - 1.5, ...) -> use even offset
    loc = torch.tensor([corner_to_loc(top, left, g, size, size)])
    patch, thetas = retina(x, loc, g, scales=1)
    assert patch.shape == (1, 1, 1, g, g) and thetas.shape == (1, 1, 2, 3)
    assert torch.allclose(patch[0, 0, 0], x[0, 0, top : top + g, left : left + g], atol=1e-4)
    g2 = 2  # two scales: 2×2 and the 4×4 around the same centre, average-pooled to 2×2
    loc = torch.tensor([corner_to_loc(6, 4, 4, size, size)])  # the 4×4 window at (6, 4) -> 2×2 centre at (7, 5)
    patch, _ = retina(x, loc, g2, scales=2)
    assert torch.allclose(patch[0, 0, 0], x[0, 0, 7:9, 5:7], atol=1e-4)
    big = x[0, 0, 6:10, 4:8]
    assert torch.allclose(patch[0, 1, 0], torch.nn.functional.avg_pool2d(big[None], 2)[0], atol=1e-4)


def test_retina_is_zero_outside_the_image() -> None:
    x = torch.ones(1, 1, 13, 13)
    patch, _ = retina(x, torch.tensor([[1.0, 1.0]]), 4, 1)  # centred on the bottom-right corner
    assert float(patch[0, 0, 0, 0, 0]) == 1.0 and float(patch[0, 0, 0, -1, -1]) == 0.0


def test_filterbank_rows_sum_to_one() -> None:
    n = 5
    gx, gy = torch.tensor([3.0, 6.5, 1.0]), torch.tensor([2.0, 4.0, 7.0])
    fx, fy = filterbank(gx, gy, torch.tensor([0.3, -1.0, 1.5]), torch.tensor([1.0, 2.3, 0.5]), n, H, W)
    assert fx.shape == (3, n, W) and fy.shape == (3, n, H)
    assert torch.allclose(fx.sum(-1), torch.ones(3, n), atol=1e-5)
    assert torch.allclose(fy.sum(-1), torch.ones(3, n), atol=1e-5)


def test_read_then_write_with_identity_parameters_reproduces_the_patch() -> None:
    a = 7
    x = torch.rand(2, 1, a, a, generator=torch.Generator().manual_seed(3))
    params = {
        "gx": torch.full((2,), (a + 1) / 2),
        "gy": torch.full((2,), (a + 1) / 2),
        "log_var": torch.full((2,), -9.0),
        "delta": torch.ones(2),
        "gamma": torch.ones(2),
    }
    glimpse, _, _ = filter_read(x, params, a)
    assert torch.allclose(glimpse, x, atol=1e-4)
    back, _, _ = filter_write(glimpse, params, a, a)
    assert torch.allclose(back, x, atol=1e-4)


def test_draw_params_map_zero_to_the_image_centre() -> None:
    p = draw_params(torch.zeros(2, 5), 5, H, W)
    assert torch.allclose(p["gx"], torch.full((2,), (W + 1) / 2)) and torch.allclose(
        p["gy"], torch.full((2,), (H + 1) / 2)
    )
    assert torch.allclose(p["delta"], torch.full((2,), (max(H, W) - 1) / 4)) and torch.allclose(
        p["gamma"], torch.ones(2)
    )


def test_reinforce_gradients_reach_the_location_network() -> None:
    from attn_cli.models.ram import RAM

    torch.manual_seed(0)
    model = RAM(RAM.Config(glimpses=3, glimpse_size=3, scales=2, hg=5, hl=7, glimpse_dim=11, hidden=13), [1, 17, 17], 5)
    x, y = torch.rand(7, 1, 17, 17), torch.randint(0, 5, (7,))
    loss, terms = model.loss(x, y)
    loss.backward()
    assert model.locator.weight.grad is not None and model.locator.weight.grad.abs().sum() > 0
    assert model.baseliner.weight.grad.abs().sum() > 0
    assert "reinforce" in terms


def test_stn_gradients_reach_the_localisation_net() -> None:
    from attn_cli.models.stn import STN

    for transform in ("affine", "projective", "tps"):
        model = STN(STN.Config(transform=transform, loc="fc", classifier="fc", hidden=(7,), tps_k=3), [1, 11, 11], 5)
        loss, _ = model.loss(torch.rand(3, 1, 11, 11), torch.randint(0, 5, (3,)))
        loss.backward()
        last = [m for m in model.sts[0].loc.modules() if isinstance(m, torch.nn.Linear)][-1]
        assert last.weight.grad.abs().sum() > 0, transform


def test_emit_location_equals_the_step_ram_and_dram_wrote_out() -> None:
    """The shared emission step reproduces, draw for draw, the inline code RAM and DRAM had before it."""
    import math

    from attn_cli.attention.reinforce import emit_location

    torch.manual_seed(0)
    baseliner = torch.nn.Linear(6, 1)
    state = torch.randn(5, 6, requires_grad=True)
    mean = torch.tanh(torch.randn(5, 2) * 3).requires_grad_()  # some entries sample outside [-1, 1]
    std = 0.4

    torch.manual_seed(1)
    loc, log_pi, base = emit_location(mean, std, True, baseliner, state)
    torch.manual_seed(1)
    ref = (mean + std * torch.randn_like(mean)).detach()
    ref_log_pi = (-((ref - mean) ** 2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert (ref.abs() > 1).any()  # the clip is exercised
    assert torch.equal(loc, ref.clamp(-1, 1))
    assert log_pi is not None and base is not None
    assert torch.allclose(log_pi, ref_log_pi)
    assert torch.equal(base, baseliner(state.detach()).squeeze(1))
    (log_pi.sum() + base.sum()).backward()
    assert mean.grad is not None and mean.grad.abs().sum() > 0  # REINFORCE reaches the location network
    assert state.grad is None  # the baseline reads the state detached

    mean_loc, none_pi, none_base = emit_location(mean, std, False, baseliner, state)
    assert torch.equal(mean_loc, mean.clamp(-1, 1)) and none_pi is None and none_base is None
