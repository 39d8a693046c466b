"""The recurrent spatial transformer (Sønderby et al. 2015): its affine grid on cases with a known
answer, the per-step loss, the cluttered MNIST sequences, and the tiny recipe end to end."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attn_cli import run
from attn_cli.attention.spatial import affine_grid, sample
from attn_cli.data.sequences import place_row, sequence
from attn_cli.errors import AttnError
from attn_cli.models.rst import IDENTITY, RecurrentST, SequenceCNN, sequence_loss
from attn_cli.viz.rst import glimpse_corners


def test_identity_affine_grid_returns_the_image() -> None:
    x = torch.rand(2, 3, 7, 11)
    theta = torch.tensor(IDENTITY).view(1, 2, 3).expand(2, -1, -1)
    assert torch.allclose(sample(x, affine_grid(theta, (7, 11))), x, atol=1e-6)


def test_a_known_translation_shifts_by_whole_pixels() -> None:
    # x_s = x_t + 2k/W reads the pixel k columns to the right: the output is the input moved k left
    x = torch.rand(1, 1, 5, 7)
    k = 2
    theta = torch.tensor([[[1.0, 0.0, 2 * k / 7], [0.0, 1.0, 0.0]]])
    out = sample(x, affine_grid(theta, (5, 7)))
    assert torch.allclose(out[..., : 7 - k], x[..., k:], atol=1e-5)
    assert torch.allclose(out[..., 7 - k :], torch.zeros(1, 1, 5, k), atol=1e-6)  # outside the image: zeros


def test_a_zoom_reads_the_centre_at_the_downsampled_size() -> None:
    # A = diag(1/2, 1/2): the 4×4 output covers the central 4×4 pixels of an 8×8 image exactly
    x = torch.arange(64.0).view(1, 1, 8, 8)
    theta = torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]])
    assert torch.allclose(sample(x, affine_grid(theta, (4, 4))), x[..., 2:6, 2:6], atol=1e-4)


def test_the_untrained_model_glimpses_the_whole_image_at_every_step() -> None:
    cfg = RecurrentST.Config(loc_channels=(3,), hidden=7, downsample=1.0, channels=(3,), fc=11)
    model = RecurrentST(cfg, image_shape=[1, 13, 17], classes=5, seq_len=3)
    x = torch.rand(2, 1, 13, 17)
    out = model(x)
    assert out["logits"].shape == (2, 3, 5) and out["theta"].shape == (2, 3, 2, 3)
    assert torch.allclose(out["glimpses"], x[:, None].expand(-1, 3, -1, -1, -1), atol=1e-5)
    box = glimpse_corners(out["theta"][0])  # (T, 5, 2): the identity's box is the image's border
    assert torch.allclose(box[:, :4], torch.tensor([[-1.0, -1], [1, -1], [1, 1], [-1, 1]]).expand(3, -1, -1))


def test_the_steps_emit_different_transforms_once_trained() -> None:
    # the same encoding enters the GRU at every step; the state makes the steps differ once W ≠ 0
    torch.manual_seed(0)
    cfg = RecurrentST.Config(loc_channels=(3,), hidden=7, downsample=2.0, channels=(3,), fc=11)
    model = RecurrentST(cfg, image_shape=[1, 11, 13], classes=5, seq_len=3)
    torch.nn.init.normal_(model.affine.weight, std=0.5)
    theta = model(torch.rand(2, 1, 11, 13))["theta"]
    assert not torch.allclose(theta[:, 0], theta[:, 1])
    assert model(torch.rand(2, 1, 11, 13))["glimpses"].shape == (2, 3, 1, 5, 6)  # ⌊11/2⌋ × ⌊13/2⌋


def test_loc_scale_scales_the_learned_part_of_the_transform() -> None:
    # A_t = b + s · W h_t: the same weights at s = 0.5 move A_t half as far from b as at s = 1
    torch.manual_seed(1)
    base = {"loc_channels": (3,), "hidden": 7, "downsample": 2.0, "channels": (3,), "fc": 11}
    full = RecurrentST(RecurrentST.Config(**base), image_shape=[1, 11, 13], classes=5, seq_len=2)
    half = RecurrentST(RecurrentST.Config(**base, loc_scale=0.5), image_shape=[1, 11, 13], classes=5, seq_len=2)
    torch.nn.init.normal_(full.affine.weight, std=0.5)
    half.load_state_dict(full.state_dict())
    x = torch.rand(2, 1, 11, 13)
    identity = torch.tensor(IDENTITY).view(2, 3)
    assert torch.allclose(half(x)["theta"] - identity, 0.5 * (full(x)["theta"] - identity), atol=1e-6)


@pytest.mark.parametrize(
    ("model_cls", "cfg", "message"),
    [
        (
            RecurrentST,
            {"loc_channels": (3, 5, 7)},
            "model.loc_channels: 3 conv3/pool layers leave no pixels of a 13×17",
        ),
        (RecurrentST, {"loc_channels": (3,), "downsample": 4.0, "channels": (3, 5)}, "model.channels: 2 .* of a 3×4"),
        (SequenceCNN, {"channels": (3, 5, 7)}, "model.channels: 3 conv3/pool layers leave no pixels of a 13×17"),
    ],
)
def test_a_stack_too_deep_for_the_image_is_a_user_error(model_cls: type, cfg: dict, message: str) -> None:
    with pytest.raises(AttnError, match=message):
        model_cls(model_cls.Config(**cfg), image_shape=[1, 13, 17], classes=5, seq_len=3)


def test_the_per_step_loss_averages_the_digits() -> None:
    # uniform logits: log K whatever the labels; then one confident, right step and one uniform step
    y = torch.tensor([[1, 4, 0]])
    assert math.isclose(float(sequence_loss(torch.zeros(1, 3, 5), y)), math.log(5), rel_tol=1e-6)
    logits = torch.zeros(1, 2, 5)
    logits[0, 0, 3] = 100.0
    assert math.isclose(float(sequence_loss(logits, torch.tensor([[3, 2]]))), math.log(5) / 2, rel_tol=1e-5)
    logits = torch.randn(3, 2, 7)
    y = torch.randint(0, 7, (3, 2))
    per_step = (F.cross_entropy(logits[:, 0], y[:, 0]) + F.cross_entropy(logits[:, 1], y[:, 1])) / 2
    assert torch.allclose(sequence_loss(logits, y), per_step)


@pytest.mark.parametrize(
    ("model_cls", "cfg"),
    [
        (RecurrentST, {"loc_channels": (3,), "hidden": 7, "channels": (3,), "fc": 11}),
        (SequenceCNN, {"channels": (3,), "fc": 11}),
    ],
)
def test_predict_scores_every_digit(model_cls: type, cfg: dict) -> None:
    model = model_cls(model_cls.Config(**cfg), image_shape=[1, 13, 17], classes=5, seq_len=3)
    x, y = torch.rand(2, 1, 13, 17), torch.randint(0, 5, (2, 3))
    out = model.predict(x, y)
    logits = model.logits(x)
    assert out["pred"].shape == (2, 3)
    expected = sum(F.cross_entropy(logits[:, t], y[:, t], reduction="none") for t in range(3))
    assert torch.allclose(out["loss"], expected, atol=1e-5)


def test_rows_stay_inside_the_canvas_left_to_right() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        tops, lefts = place_row(rng, 3, 100)
        assert (tops >= 0).all() and (tops <= 72).all()
        assert lefts[0] >= 0 and lefts[-1] + 28 <= 100 and (np.diff(lefts) == 28).all()


def test_sequences_read_left_to_right() -> None:
    # digit d is a solid block of grey level 10·(d+1): each 28-pixel column band holds one label's grey
    labels = np.arange(10)
    images = np.repeat((10 * (labels + 1)).astype(np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    x, y = sequence(images, labels, np.random.default_rng(3), pieces=0)
    assert x.shape == (10, 100, 100) and y.shape == (10, 3)
    assert (y[:, 0] == labels).all()  # each example starts with its own digit
    for i in range(10):
        greys = [int(v) for v in np.unique(x[i]) if v]
        left_to_right = [int(x[i][:, c].max()) for c in range(100) if x[i][:, c].any()][::28]
        assert sorted(greys) == sorted({10 * (d + 1) for d in y[i]})
        assert left_to_right == [10 * (d + 1) for d in y[i]]


def test_sequences_are_seeded_and_clutter_adds_pieces() -> None:
    images = np.zeros((4, 28, 28), np.uint8)
    images[:, 8:20, 8:20] = 200
    labels = np.arange(4)
    a, ya = sequence(images, labels, np.random.default_rng(7))
    b, yb = sequence(images, labels, np.random.default_rng(7))
    clean, _ = sequence(images, labels, np.random.default_rng(7), pieces=0)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert (a >= clean).all() and a.sum() > clean.sum()  # the pieces only add ink, clipped at white
    assert a.max() <= 255


def test_tiny_rst_trains_evaluates_and_draws_its_glimpses(generated_data: Path, tmp_path: Path) -> None:
    summary = run.train("vision", "tiny/rst", runs_dir=tmp_path, data_dir=generated_data, progress=False)
    metrics = run.evaluate("vision", Path(summary["run_dir"]), data_dir=generated_data, split="test")["metrics"]
    assert 0.0 <= metrics["digit_error"] <= 100.0 and 0.0 <= metrics["seq_error"] <= 100.0
    assert metrics["seq_error"] >= metrics["digit_error"]  # a sequence is wrong when any digit is
    paths = run.visualize("vision", Path(summary["run_dir"]), data_dir=generated_data, n=2)
    assert len(paths) == 2 and all(p.name.startswith("rst-steps-") and p.stat().st_size > 1000 for p in paths)
