"""Residual Attention Network (Wang et al. 2017): the three mask activations and ARL/NAL on hand-computed
cases, the module wiring, the paper's depths, every recipe's model, the mask pictures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from attn_cli.attention.soft_mask import (
    attention_residual,
    channel_mask,
    mixed_mask,
    naive_attention,
    spatial_mask,
    upsample_to,
)
from attn_cli.config import available_recipes, load_recipe
from attn_cli.errors import AttnError
from attn_cli.models.resattn import AttentionModule, PreActBottleneck, ResidualAttentionNet, SoftMaskBranch
from attn_cli.registry import MODELS


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_mixed_mask_is_a_sigmoid_per_channel_and_position() -> None:
    x = torch.tensor([-2.0, 0.0, 3.0]).view(1, 3, 1, 1)
    assert torch.allclose(mixed_mask(x).flatten(), torch.tensor([sig(-2.0), 0.5, sig(3.0)]))


def test_channel_mask_normalises_over_channels_at_each_position() -> None:
    x = torch.zeros(1, 2, 1, 3)
    x[0, :, 0, 0] = torch.tensor([3.0, 4.0])  # norm 5 -> (0.6, 0.8)
    x[0, :, 0, 1] = torch.tensor([0.0, -2.0])  # -> (0, -1)
    x[0, :, 0, 2] = torch.tensor([1.0, 1.0])  # -> 1/√2 each
    m = channel_mask(x)
    assert torch.allclose(m[0, :, 0, 0], torch.tensor([0.6, 0.8]), atol=1e-5)
    assert torch.allclose(m[0, :, 0, 1], torch.tensor([0.0, -1.0]), atol=1e-5)
    assert torch.allclose(m[0, :, 0, 2], torch.full((2,), 1 / math.sqrt(2)), atol=1e-5)
    b = torch.randn(2, 3, 5, 7)  # distinct sizes: a norm over the wrong axis fails
    assert torch.allclose(channel_mask(b).pow(2).sum(1), torch.ones(2, 5, 7), atol=1e-3)  # up to MASK_EPS


def test_spatial_mask_standardises_each_channel_over_space_then_sigmoid() -> None:
    x = torch.tensor([[1.0, 3.0], [5.0, 5.0]]).view(1, 2, 1, 2)  # channel 0: mean 2, std 1; channel 1 constant
    m = spatial_mask(x)
    assert torch.allclose(m[0, 0, 0], torch.tensor([sig(-1.0), sig(1.0)]), atol=1e-4)
    assert torch.allclose(m[0, 1, 0], torch.full((2,), 0.5))  # constant channel: no spatial preference
    b = torch.randn(2, 3, 5, 7) * 4 + 9
    z = torch.logit(spatial_mask(b))  # back to the standardised values: mean 0, std 1 per (example, channel)
    assert torch.allclose(z.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-3)
    assert torch.allclose(z.std(dim=(2, 3), unbiased=False), torch.ones(2, 3), atol=1e-3)


def test_arl_and_nal_formulas() -> None:
    mask, trunk = torch.tensor([0.0, 0.25, 1.0]), torch.tensor([2.0, -4.0, 3.0])
    assert torch.equal(attention_residual(mask, trunk), torch.tensor([2.0, -5.0, 6.0]))  # (1 + M)·T
    assert torch.equal(naive_attention(mask, trunk), torch.tensor([0.0, -1.0, 3.0]))  # M·T


@pytest.mark.parametrize(("learning", "expect"), [("residual", attention_residual), ("naive", naive_attention)])
def test_attention_module_combines_its_trunk_and_mask_by_the_chosen_rule(learning: str, expect: object) -> None:
    torch.manual_seed(0)
    module = AttentionModule(12, "spatial", learning, pools=2).eval()
    x = torch.randn(2, 12, 7, 5)
    out, mask = module(x)
    pre = module.pre(x)
    want_mask = spatial_mask(module.mask_branch(pre))  # type: ignore[misc]
    want = module.post(expect(want_mask, module.trunk(pre)))  # type: ignore[operator]
    assert mask is not None and torch.allclose(mask, want_mask) and torch.allclose(out, want, atol=1e-6)


def test_mask_branch_returns_to_the_input_size_for_odd_sides() -> None:
    branch = SoftMaskBranch(8, pools=2, r=1)
    x = torch.randn(2, 8, 7, 11)  # 7 -> 4 -> 2 and back
    assert branch(x).shape == x.shape
    assert upsample_to(torch.randn(1, 3, 2, 3), torch.zeros(1, 5, 7, 11)).shape == (1, 3, 7, 11)


def weighted_trunk_layers(model: ResidualAttentionNet) -> int:
    """The paper's depth: stem conv + 3 convs per trunk residual unit + the classifier (no mask branch, no
    projection shortcut)."""
    trunk_units = 0
    for name, module in model.named_modules():
        if isinstance(module, PreActBottleneck) and "mask_branch" not in name:
            trunk_units += 1
    return 1 + 3 * trunk_units + 1


@pytest.mark.parametrize(("modules", "depth"), [((1, 1, 1), 56), ((1, 2, 3), 92)])
@pytest.mark.parametrize("mask", ["mixed", "none"])
def test_attention_56_and_92_have_the_papers_depth_with_or_without_masks(
    modules: tuple[int, ...], depth: int, mask: str
) -> None:
    cfg = ResidualAttentionNet.Config(mask=mask, modules=modules, widths=(8, 12, 16), stem=4)  # type: ignore[arg-type]
    model = ResidualAttentionNet(cfg, [3, 32, 32], 10)
    assert weighted_trunk_layers(model) == depth
    has_masks = any("mask_branch" in n for n, _ in model.named_parameters())
    assert has_masks == (mask != "none")
    masks = model.masks(torch.randn(2, 3, 32, 32))
    assert len(masks) == (sum(modules) if mask != "none" else 0)
    if masks:  # one mask per module, at its stage's resolution and width
        assert [tuple(m.shape[1:]) for m in masks[:2]] == [(8, 32, 32), (12, 16, 16)]


def test_stage_lists_of_unequal_length_are_an_error() -> None:
    cfg = ResidualAttentionNet.Config(modules=(1, 1), widths=(8, 12, 16))
    with pytest.raises(AttnError, match="one entry per stage"):
        ResidualAttentionNet(cfg, [3, 32, 32], 10)


def recipes_of(model: str) -> list[str]:
    return [
        r
        for r in available_recipes("vision")
        if not r.startswith("tiny/") and load_recipe("vision", r).model_name == model
    ]


RESATTN_RECIPES = recipes_of("resattn")


def test_every_comparison_has_a_gpu_and_a_cpu_recipe() -> None:
    stems = ["resattn-56", "resattn-56-channel", "resattn-56-spatial", "resattn-56-nal", "resattn-92", "resattn-92-nal"]
    for width in ("", "-cpu"):
        assert {s + width for s in [*stems, "resnet-56", "resnet-92"]} <= set(RESATTN_RECIPES)


@pytest.mark.parametrize(
    "recipe", [pytest.param(r, marks=[] if r.endswith("-cpu") else [pytest.mark.slow]) for r in RESATTN_RECIPES]
)
def test_each_recipe_builds_and_takes_a_step(recipe: str) -> None:
    """A smoke test per recipe: the model the recipe describes, on two CIFAR-sized images, forward and backward."""
    r = load_recipe("vision", recipe)
    model = MODELS.get("resattn")(r.model, image_shape=[3, 32, 32], classes=10)
    loss, _ = model.loss(torch.rand(2, 3, 32, 32), torch.tensor([1, 7]))
    loss.backward()
    assert torch.isfinite(loss)
    assert (r.model.mask == "none") == ("resnet" in recipe)
    assert (r.model.learning == "naive") == ("-nal" in recipe)


def test_masks_are_drawn_over_the_image(tmp_path: Path) -> None:
    from attn_cli.viz.resattn import viz_masks

    torch.manual_seed(0)
    model = ResidualAttentionNet(ResidualAttentionNet.Config(widths=(8, 12, 16), stem=4), [1, 28, 28], 10).eval()
    batch = {"x": torch.rand(2, 1, 28, 28), "y": torch.tensor([3, 5])}
    with torch.no_grad():
        paths = viz_masks(model, batch, tmp_path, "test")
    assert [p.name for p in paths] == ["resattn-masks-0.png", "resattn-masks-1.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    plain = ResidualAttentionNet(ResidualAttentionNet.Config(mask="none", widths=(8, 12, 16), stem=4), [1, 28, 28], 10)
    with torch.no_grad(), pytest.raises(AttnError, match="no mask to draw"):
        viz_masks(plain.eval(), batch, tmp_path, "test")


@pytest.mark.parametrize(("model", "picture"), [("resattn", "resattn-masks"), ("racnn", "racnn-zoom")])
def test_attn_visualize_draws_a_trained_run(model: str, picture: str, generated_data: Path, tmp_path: Path) -> None:
    from attn_cli import run

    summary = run.train("vision", f"tiny/{model}", runs_dir=tmp_path, data_dir=generated_data, progress=False)
    paths = run.visualize(model, Path(summary["run_dir"]), split="val", n=2, data_dir=generated_data)
    assert sorted(p.name for p in paths) == [f"{picture}-0.png", f"{picture}-1.png"]
    assert all(p.parent.name == "viz" and p.stat().st_size > 0 for p in paths)
