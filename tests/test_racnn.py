"""RA-CNN (Fu et al. 2017): the APN box, the boxcar crop and its gradient by finite differences, the ranking
loss on a hand case, which loss trains which part, the per-scale errors the task scores, the pictures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attn_cli.attention.zoom import box_from_apn, boxcar_mask, crop_zoom, ranking_loss
from attn_cli.config import load_recipe
from attn_cli.errors import AttnError
from attn_cli.models.racnn import RACNN
from attn_cli.nn.vgg import VGGTrunk
from attn_cli.registry import TASKS
from tests.conftest import run_cli


def tiny(scales: int = 3) -> RACNN:
    torch.manual_seed(0)
    cfg = RACNN.Config(scales=scales, size=16, channels=(5, 7), apn_hidden=11)
    return RACNN(cfg, [1, 40, 40], 10)


def test_apn_boxes_stay_inside_the_image_and_above_the_smallest_side() -> None:
    raw = torch.tensor([[0.0, 0.0, 0.0], [50.0, -50.0, 50.0], [-50.0, 50.0, -50.0], [3.0, 1.0, -1.0]])
    box = box_from_apn(raw, min_half=1 / 3)
    tl = box[:, 2]
    assert torch.allclose(box[0], torch.tensor([0.0, 0.0, 2 / 3]))  # zero outputs: a centred box
    assert torch.all(tl >= 1 / 3 - 1e-6) and torch.all(tl <= 1.0)
    assert torch.all(box[:, :2].abs() + tl[:, None] <= 1.0 + 1e-6)  # the square never leaves the image


def test_boxcar_mask_is_a_soft_square_on_pixel_centres() -> None:
    box = torch.tensor([[0.0, 0.0, 0.5], [0.5, -0.5, 0.25]])
    mask = boxcar_mask(box, 8, 12, sharpness=50.0)  # (2, 1, 8, 12): distinct sides catch swapped axes
    assert mask.shape == (2, 1, 8, 12)
    hard = (mask > 0.5).float()
    assert hard[0, 0].sum() == 4 * 6  # half the height (4 of 8 rows) by half the width (6 of 12 columns)
    rows, cols = hard[1, 0].nonzero(as_tuple=True)
    # centre (0.5, -0.5), half side 0.25: x in [0.25, 0.75] holds the centres of columns 8, 9 (7 and 10 sit on the
    # edges, where the mask is 0.5), y in [-0.75, -0.25] those of rows 1, 2
    assert set(rows.tolist()) == {1, 2} and set(cols.tolist()) == {8, 9}
    soft = boxcar_mask(box, 8, 12, sharpness=0.5)
    assert torch.all((soft > 0) & (soft < 1))  # the logistic keeps every pixel's gradient alive


def test_a_full_box_returns_the_image() -> None:
    image = torch.rand(2, 3, 9, 9)
    zoomed, _ = crop_zoom(image, torch.tensor([[0.0, 0.0, 1.0]] * 2), 9, sharpness=200.0)
    assert torch.allclose(zoomed, image, atol=1e-4)


def test_crop_gradient_matches_finite_differences() -> None:
    """The APN's gradient: d(crop)/d(tx, ty, tl) through the boxcar mask and the bilinear zoom, against central
    differences (float64; the box sits off the pixel grid, where the bilinear map is smooth)."""
    torch.manual_seed(0)
    image = torch.rand(2, 3, 11, 13, dtype=torch.float64)
    box = torch.tensor([[0.13, -0.21, 0.47], [-0.31, 0.17, 0.58]], dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 3, 7, 7, dtype=torch.float64)

    def f(b: torch.Tensor) -> torch.Tensor:
        return (crop_zoom(image, b, 7, sharpness=1.5)[0] * weights).sum()

    assert torch.autograd.gradcheck(f, (box,), eps=1e-6, atol=1e-5)
    f(box).backward()
    assert box.grad is not None and box.grad.abs().min() > 0  # every box coordinate moves the crop


def test_ranking_loss_on_a_hand_case() -> None:
    p = torch.tensor([[0.5, 0.4, 0.7], [0.2, 0.3, 0.35], [0.9, 0.6, 0.1]])
    # example 1: 0.5 − 0.4 + 0.05 = 0.15, then 0.4 − 0.7 + 0.05 < 0 -> 0.15
    # example 2: both gaps ≤ 0 (0.3 − 0.35 + 0.05 = 0 exactly) -> 0
    # example 3: 0.9 − 0.6 + 0.05 = 0.35, 0.6 − 0.1 + 0.05 = 0.55 -> 0.9
    assert torch.isclose(ranking_loss(p, 0.05), torch.tensor((0.15 + 0.0 + 0.9) / 3))
    assert ranking_loss(torch.tensor([[0.1, 0.5, 0.9]]), 0.05) == 0  # each scale already more confident


def test_each_loss_trains_only_its_own_part() -> None:
    """The cross-entropies reach the sub-networks and never the APNs; the ranking loss reaches the APNs and never
    the sub-networks (the paper's alternation, within one update)."""
    model = tiny()
    x, y = torch.rand(4, 1, 40, 40), torch.tensor([1, 2, 3, 4])
    out = model.scales_forward(x)
    sum(torch.nn.functional.cross_entropy(logits, y) for logits in out["logits"]).backward()  # type: ignore[union-attr]
    assert all(p.grad is None for p in model.apns.parameters())
    assert all(p.grad is not None for p in model.nets.parameters())
    model.zero_grad(set_to_none=True)
    out = model.scales_forward(x)
    first = {"input": out["inputs"][0], "logits": out["logits"][0], "fmap": out["fmaps"][0]}
    ranking_loss(model.true_class_probs(first, y), 0.5).backward()  # a wide margin: every gap is active
    assert all(p.grad is None for p in [*model.nets.parameters(), *model.heads.parameters()])
    assert all(p.grad is not None for p in model.apns.parameters())
    # the APNs start from zero output weights, so at first only their output layers see a non-zero gradient
    assert all(apn[-1].weight.grad.abs().sum() > 0 for apn in model.apns)  # type: ignore[union-attr,index]


def test_scales_see_nested_zoomed_crops() -> None:
    model = tiny()
    att = model.attend(torch.rand(3, 1, 40, 40))
    assert [tuple(i.shape) for i in att["inputs"]] == [(3, 1, 16, 16)] * 3
    assert [tuple(b.shape) for b in att["boxes"]] == [(3, 3)] * 2


def test_configuration_errors() -> None:
    with pytest.raises(AttnError, match="at least 2 scales"):
        tiny(scales=1)
    with pytest.raises(AttnError, match="too small"):
        RACNN(RACNN.Config(size=4, channels=(3, 5, 7)), [1, 40, 40], 10)


def test_the_task_scores_every_scale_and_fusion(generated_data: Path) -> None:
    recipe = load_recipe("vision", "tiny/racnn")
    spec = TASKS.get("vision")
    dm = spec.datamodule(recipe, generated_data)
    module = spec.module(recipe, dm.meta).eval()
    batch = dm.collate([dm.dataset("val")[i] for i in range(6)])
    with torch.no_grad():
        rows = module.predict_rows(batch, "val")
    scores = module.score(rows, "val")
    keys = {"error", "loss", "error_scale1", "error_scale2", "error_scale3", "error_fused12", "error_fused123"}
    assert set(scores) == keys
    wrong = sum(r["pred_fused123"] != r["label"] for r in rows)
    assert scores["error_fused123"] == scores["error"] == pytest.approx(100.0 * wrong / 6)


def test_nested_boxes_map_to_the_first_scale() -> None:
    from attn_cli.viz.resattn import nested_boxes

    b1 = torch.tensor([[0.5, -0.5, 0.5]])
    b2 = torch.tensor([[-1.0, 1.0, 0.5]])  # the crop's left-bottom corner region, half its side
    out = nested_boxes([b1, b2])
    assert torch.allclose(out[1], torch.tensor([[0.0, 0.0, 0.25]]))


def test_squares_are_drawn_where_the_crop_is() -> None:
    from attn_cli.viz.resattn import square_in_pixels

    assert square_in_pixels(torch.tensor([0.0, 0.0, 1.0]), 8) == (-0.5, -0.5, 8.0)  # the whole image, edge to edge
    assert square_in_pixels(torch.tensor([0.5, -0.5, 0.25]), 8) == (4.5, 0.5, 2.0)  # columns 5-6, rows 1-2


def test_zoom_pictures(tmp_path: Path) -> None:
    from attn_cli.viz.resattn import viz_zoom

    model = tiny().eval()
    batch = {"x": torch.rand(2, 1, 40, 40), "y": torch.tensor([3, 5])}
    with torch.no_grad():
        paths = viz_zoom(model, batch, tmp_path, "test")
    assert [p.name for p in paths] == ["racnn-zoom-0.png", "racnn-zoom-1.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


@pytest.mark.parametrize(
    ("recipe", "shape"),
    [
        ("racnn-fashion-zoom", [1, 56, 56]),
        ("racnn-cifar10", [3, 32, 32]),
        pytest.param("racnn-cub", [3, 224, 224], marks=pytest.mark.slow),  # VGG-sized sub-networks at 224×224
    ],
)
def test_each_recipe_builds_and_takes_a_step(recipe: str, shape: list[int]) -> None:
    """A smoke test per recipe: the model it describes, forward and backward on two images of its dataset's shape."""
    r = load_recipe("vision", recipe)
    model = RACNN(r.model, shape, 10)
    loss, logs = model.loss(torch.rand(2, *shape), torch.tensor([1, 7]))
    loss.backward()
    assert torch.isfinite(loss) and set(logs) == {"ce", "fused_ce", "rank"}


@pytest.mark.ddp
@pytest.mark.parametrize(
    ("recipe", "sets"),
    [
        ("tiny/racnn", []),
        ("tiny/racnn", ["--set", "model.alternate=phases", "--set", "model.phase_updates=1"]),
        pytest.param("tiny/resattn", [], marks=pytest.mark.slow),
    ],
)
def test_trains_under_two_process_ddp(recipe: str, sets: list[str], generated_data: Path, tmp_path: Path) -> None:
    """The recipes run unchanged apart from --devices under DDP: every parameter is in every step's graph (the
    RA-CNN's two losses each reach their own part in the same update; with alternate=phases the resting part
    enters with weight 0), so DDP's reducer has nothing unused."""
    import json
    import os
    import subprocess

    from tests.conftest import ATTN_EXE

    env = {**os.environ, "ATTN_DATA": str(generated_data), "OMP_NUM_THREADS": "1"}
    run_dir = tmp_path / "run"
    args = [
        "train",
        "vision",
        "--recipe",
        recipe,
        "--devices",
        "2",
        "--accelerator",
        "cpu",
        "--run-dir",
        str(run_dir),
        *sets,
    ]
    proc = subprocess.run([ATTN_EXE, *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads((run_dir / "train_done.json").read_text())
    assert done["steps"] == 4


def phased(phase_updates: int = 2) -> RACNN:
    torch.manual_seed(0)
    cfg = RACNN.Config(
        scales=3, size=16, channels=(5, 7), apn_hidden=11, alternate="phases", phase_updates=phase_updates
    )
    return RACNN(cfg, [1, 40, 40], 10)


def grads(params: object) -> list[float]:
    return [float(p.grad.abs().sum()) if p.grad is not None else -1.0 for p in params]  # type: ignore[attr-defined]


def test_phases_train_the_classification_nets_then_the_apns() -> None:
    """alternate=phases (Fu et al. §3.5): phase_updates updates of the classification nets with the APNs fixed,
    then as many of the APNs with the nets fixed; every parameter stays in the graph (weight 0 at rest)."""
    model = phased(phase_updates=2)
    x, y = torch.rand(4, 1, 40, 40), torch.tensor([1, 2, 3, 4])
    assert [model.phase(s) for s in range(6)] == ["classify", "classify", "apn", "apn", "classify", "classify"]
    loss, logs = model.loss(x, y, step=1)
    loss.backward()
    assert set(logs) == {"ce", "fused_ce", "phase_apn"} and logs["phase_apn"] == 0.0
    assert all(g == 0.0 for g in grads(model.apns.parameters()))  # in the graph, but no gradient
    assert all(g > 0.0 for g in grads([model.nets[0].net[0].weight, model.heads[2].weight, model.fused[1].weight]))
    assert model.resting_parameters(1) == list(model.apns.parameters())
    model.zero_grad(set_to_none=True)
    loss, logs = model.loss(x, y, step=2)
    loss.backward()
    assert set(logs) == {"rank", "phase_apn"} and logs["phase_apn"] == 1.0
    nets = [*model.nets.parameters(), *model.heads.parameters(), *model.fused.parameters()]
    assert all(g == 0.0 for g in grads(nets))
    assert all(float(apn[-1].weight.grad.abs().sum()) > 0 for apn in model.apns)  # type: ignore[index,union-attr]
    assert model.resting_parameters(3) == nets and tiny().resting_parameters(3) == []


@pytest.mark.filterwarnings("ignore:.*self.trainer. reference is not registered")  # training_step logs, no Trainer
def test_the_task_keeps_the_resting_part_fixed_under_adam(generated_data: Path) -> None:
    """A zero gradient still moves a parameter by Adam's momentum: the vision task drops the resting part's
    gradients before the optimizer step, so the APNs do not move in a classification phase (global step 0)."""
    recipe = load_recipe("vision", "tiny/racnn", ["model.alternate=phases", "model.phase_updates=3"])
    spec = TASKS.get("vision")
    dm = spec.datamodule(recipe, generated_data)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    module = spec.module(recipe, dm.meta).train()
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    for p in module.parameters():  # momentum everywhere, as after an APN phase
        p.grad = torch.ones_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    apn = module.model.apns[0][-1].weight  # type: ignore[index]
    net = module.model.nets[1].net[0].weight  # type: ignore[index]
    before_apn, before_net = apn.detach().clone(), net.detach().clone()
    module.training_step(batch, 0).backward()
    assert apn.grad is not None and float(apn.grad.abs().sum()) == 0.0  # without the hook Adam would move it
    module.on_before_optimizer_step(opt)
    opt.step()
    assert torch.equal(apn, before_apn) and not torch.equal(net, before_net)


def test_phase_configuration_errors() -> None:
    with pytest.raises(AttnError, match="unknown RA-CNN alternation .*did you mean 'phases'"):
        RACNN(RACNN.Config(size=16, channels=(5, 7), alternate="phase"), [1, 40, 40], 10)
    with pytest.raises(AttnError, match="phase_updates=0"):
        phased(phase_updates=0)


def test_a_phased_recipe_trains_from_the_cli(dirs: dict[str, Path], generated_data: Path) -> None:
    """A smoke test of the phase schedule through Lightning: 4 updates, phases of 1 (classify, APN, ...)."""
    import json

    run_dir = dirs["runs"] / "phased"
    sets = ["--set", "model.alternate=phases", "--set", "model.phase_updates=1"]
    args = ["--data-dir", str(generated_data), "train", "vision", "--recipe", "tiny/racnn", "--run-dir", str(run_dir)]
    code, _, err = run_cli(*args, *sets)
    assert code == 0, err
    assert json.loads((run_dir / "train_done.json").read_text())["steps"] == 4


def vgg_racnn(size: int = 32, cin: int = 3, **kw: str) -> RACNN:
    torch.manual_seed(0)
    cfg = RACNN.Config(scales=2, size=size, apn_hidden=5, backbone="vgg19", **kw)  # type: ignore[arg-type]
    return RACNN(cfg, [cin, 40, 40], 10)


@pytest.mark.parametrize("cin", [3, 1])
def test_vgg19_sub_networks_build_with_random_weights_and_take_a_step(cin: int) -> None:
    """model.backbone=vgg19 (the paper's sub-networks, here from scratch): conv5_4 maps of 512 × (size/16)²;
    grey images are repeated over R, G, B. No weights are read and nothing is downloaded."""
    model = vgg_racnn(cin=cin)
    assert all(isinstance(net, VGGTrunk) for net in model.nets)
    assert model.nets[0](torch.rand(2, cin, 32, 32)).shape == (2, 512, 2, 2)
    loss, _ = model.loss(torch.rand(2, cin, 40, 40), torch.tensor([1, 7]))
    loss.backward()
    assert torch.isfinite(loss) and model.nets[1].features[0].weight.grad is not None  # type: ignore[index]
    assert model.pretrained_backbones() is None  # no backbone_weights: from scratch


def test_vgg_trunk_has_torchvisions_layout() -> None:
    """The ``features.*`` names and shapes of torchvision's vgg19 (less the last pool, which holds nothing), so
    its ImageNet state dict loads by name. torchvision is optional: skipped without it."""
    tv = pytest.importorskip("torchvision")
    theirs = {f"features.{k}": v.shape for k, v in tv.models.vgg19(weights=None).features.state_dict().items()}
    ours = {k: v.shape for k, v in VGGTrunk("vgg19").state_dict().items()}
    assert ours == theirs


def test_backbone_weights_load_from_a_torchvision_state_dict_file(tmp_path: Path) -> None:
    """model.backbone_weights=FILE: every scale's VGG-19 starts from the file's ``features.*`` tensors (the
    classifier's are ignored); no torchvision needed."""
    from attn_cli.pretrained import load_pretrained

    torch.manual_seed(3)
    source = VGGTrunk("vgg19")
    state = {**source.state_dict(), "classifier.0.weight": torch.zeros(3, 5)}
    torch.save(state, tmp_path / "vgg19.pth")
    model = vgg_racnn(size=16, backbone_weights=str(tmp_path / "vgg19.pth"))
    info = load_pretrained(model, tmp_path)
    assert info is not None and info["tensors"] == 2 * 32  # 16 convs (weight, bias) per scale, 2 scales
    for net in model.nets:
        assert torch.equal(net.features[34].weight, source.features[34].weight)  # type: ignore[index]


def test_backbone_weight_errors(tmp_path: Path) -> None:
    from attn_cli.pretrained import load_pretrained

    with pytest.raises(AttnError, match="does not exist; pass a torchvision vgg19 state dict"):
        load_pretrained(vgg_racnn(size=16, backbone_weights=str(tmp_path / "none.pth")), tmp_path)
    torch.save(VGGTrunk("vgg16").state_dict(), tmp_path / "vgg16.pth")
    with pytest.raises(AttnError, match="does not fit vgg19"):
        load_pretrained(vgg_racnn(size=16, backbone_weights=str(tmp_path / "vgg16.pth")), tmp_path)
    with pytest.raises(AttnError, match="set model.backbone=vgg19 too"):
        RACNN(RACNN.Config(size=16, channels=(5, 7), backbone_weights="imagenet"), [1, 40, 40], 10)
    with pytest.raises(AttnError, match="unknown RA-CNN backbone .*did you mean 'vgg19'"):
        RACNN(RACNN.Config(size=16, channels=(5, 7), backbone="vgg"), [1, 40, 40], 10)
    with pytest.raises(AttnError, match="2 channels"):
        vgg_racnn(cin=2)


def test_imagenet_weights_offline_is_one_line_naming_the_file_option(
    dirs: dict[str, Path], generated_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline (or without torchvision) and no cached weights: one line naming --set model.backbone_weights=FILE,
    exit 2, no run directory. Nothing is downloaded."""
    monkeypatch.setenv("ATTN_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached ImageNet weights
    run_dir = dirs["runs"] / "vgg"
    sets = ["model.backbone=vgg19", "model.backbone_weights=imagenet", "model.scales=2"]
    args = ["--data-dir", str(generated_data), "train", "vision", "--recipe", "tiny/racnn", "--run-dir", str(run_dir)]
    code, _, err = run_cli(*args, *[a for s in sets for a in ("--set", s)])
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert "--set model.backbone_weights=FILE" in err and "Traceback" not in err
    assert not run_dir.exists()
