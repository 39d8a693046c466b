"""DRAM (Ba et al. 2015): the convolutional glimpse network and which loss trains which pathway."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.reinforce import reinforce_loss
from attn_cli.models.dram import DRAM, GlimpseCNN

C, H, K, S = 1, 17, 11, 3  # channels, image side, classes, digits per sequence


def _model(**kw: object) -> DRAM:
    cfg = DRAM.Config(glimpses=2, glimpse_size=5, scales=2, hidden=7, context_size=8, glimpse_channels=(3, 5), **kw)
    return DRAM(cfg, [C, H, H], K, seq_len=S)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, C, H, H, generator=g), torch.randint(0, K, (2, S), generator=g)


def _grads(model: nn.Module) -> dict[str, bool]:
    """Parameter-name prefix -> whether any of its parameters got a non-zero gradient."""
    seen: dict[str, bool] = {}
    for name, p in model.named_parameters():
        part = name.split(".")[0]
        seen[part] = seen.get(part, False) or (p.grad is not None and bool(p.grad.abs().sum() > 0))
    return seen


def test_glimpse_network_is_convolutional_by_default() -> None:
    model = _model()
    assert isinstance(model.what, GlimpseCNN)
    convs = [m for m in model.what.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in convs] == [(2 * C, 3, (5, 5)), (3, 5, (3, 3))]
    patch = torch.rand(4, 2, C, 5, 5)  # (B, scales, C, g, g)
    assert model.what(patch).shape == (4, 7)


def test_linear_glimpse_network_is_a_named_variant() -> None:
    model = _model(glimpse_net="linear")
    assert not any(isinstance(m, nn.Conv2d) for m in model.what.modules())
    assert model.what(torch.rand(4, 2, C, 5, 5)).shape == (4, 7)


@pytest.mark.parametrize("glimpse_net", ["conv", "linear"])
def test_every_parameter_learns(glimpse_net: str) -> None:
    """The emission network once read r^(2) detached: r^(2) and the context network never learned.
    Seeded: at these tiny widths an unlucky initialisation can leave every ReLU of the glimpse network dead."""
    torch.manual_seed(0)
    model = _model(glimpse_net=glimpse_net)
    loss, _ = model.loss(*_data())
    loss.backward()
    assert all(_grads(model).values()), _grads(model)


def test_reinforce_trains_the_location_pathway_and_likelihood_the_rest() -> None:
    x, y = _data()
    torch.manual_seed(0)
    model = _model()
    out = model(x, sample_locations=True)
    F.cross_entropy(out["logits"].flatten(0, 1), y.flatten()).backward(retain_graph=True)
    by_ce = _grads(model)
    assert by_ce["what"] and by_ce["r1"] and by_ce["classify"] and by_ce["where"]
    assert not (by_ce["emission"] or by_ce["r2"] or by_ce["context"] or by_ce["baseliner"])
    model.zero_grad(set_to_none=True)
    reward = torch.tensor([1.0, 0.0])
    reinforce_loss(out["log_pi"], reward, out["baseline"]).backward()
    by_rl = _grads(model)
    assert by_rl["emission"] and by_rl["r2"] and by_rl["context"]
    assert not (by_rl["what"] or by_rl["r1"] or by_rl["classify"] or by_rl["where"])
