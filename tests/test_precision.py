"""bf16-mixed is the GPU default (attn_cli.trainer) and a CPU option: every family must train and evaluate under it.

CPU autocast in bfloat16 stands in for the GPU here (no GPU in CI): it catches dtype mixes in the models.
Lightning's own mixed-precision plugin refuses to clip a fused optimizer's gradients, under bf16 too, where
there is no loss scaler; :class:`attn_cli.trainer.BF16Mixed` clips them, so the fused Adam stays."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities import GradClipAlgorithmType

from attn_cli import run
from attn_cli.config import TrainConfig
from attn_cli.trainer import BF16Mixed, build_trainer

CASES = [
    ("nmt", "tiny/luong-local-p"),
    ("nmt", "tiny/bahdanau-lstm"),
    ("caption", "tiny/sat-hard"),
    ("caption", "tiny/video-temporal"),
    ("memory", "tiny/dmn"),
    ("memory", "tiny/memn2n"),
    ("memory", "tiny/ntm"),
    ("reader", "tiny/impatient-reader"),
    ("vision", "tiny/ram"),
    ("vision", "tiny/draw"),
    ("vision", "tiny/stn-tps-fcn"),
    ("vision", "tiny/dram"),
]


@pytest.mark.parametrize(("task", "recipe"), CASES, ids=[r for _, r in CASES])
def test_trains_and_evaluates_in_bf16_mixed(task: str, recipe: str, generated_data: Path, tmp_path: Path) -> None:
    _train_and_evaluate(task, recipe, generated_data, tmp_path)  # with oneDNN on, as a user's run


def _train_and_evaluate(task: str, recipe: str, generated_data: Path, tmp_path: Path) -> None:
    summary = run.train(
        task,
        recipe,
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        overrides=[
            "train.precision=bf16-mixed",
            "train.max_steps=3",
            "train.max_epochs=10",
            "train.max_time_min=null",
            "train.threads=1",
        ],
    )
    assert summary["steps"] == 3
    result = run.evaluate(task, Path(summary["run_dir"]), data_dir=generated_data, progress=False)
    assert result["metrics"] and all(v == v for v in result["metrics"].values() if isinstance(v, float))  # no NaN


def test_bf16_mixed_clips_a_fused_optimizers_gradients_where_lightnings_plugin_refuses() -> None:
    weight = torch.nn.Parameter(torch.zeros(3))
    weight.grad = torch.tensor([30.0, 40.0, 0.0])  # norm 50
    fused = torch.optim.Adam([weight], fused=True)
    with pytest.raises(RuntimeError, match="fused"):
        MixedPrecision("bf16-mixed", "cpu").clip_gradients(fused, 5.0, GradClipAlgorithmType.NORM)
    BF16Mixed("cpu").clip_gradients(fused, 5.0, GradClipAlgorithmType.NORM)
    assert torch.allclose(weight.grad, torch.tensor([3.0, 4.0, 0.0]))
    BF16Mixed("cpu").clip_gradients(fused, 1.0, GradClipAlgorithmType.VALUE)
    assert torch.equal(weight.grad, torch.tensor([1.0, 1.0, 0.0]))


def test_a_bf16_mixed_run_keeps_the_fused_optimizer_and_clips(generated_data: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(precision="bf16-mixed", accelerator="cpu", threads=1)
    trainer = build_trainer(cfg, tmp_path / "t", for_eval=True, progress=False)
    assert trainer.precision == "bf16-mixed" and isinstance(trainer.precision_plugin, BF16Mixed)
    summary = run.train(
        "nmt",
        "tiny/luong-local-p",
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        overrides=["train.precision=bf16-mixed", "train.max_steps=2", "train.max_time_min=null", "train.threads=1",
                   "train.grad_clip=0.001"],
    )  # fmt: skip
    state = torch.load(Path(summary["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=False)
    (adam,) = state["optimizer_states"]
    assert adam["param_groups"][0]["fused"] is True and state["global_step"] == 2


def test_bf16_mixed_casts_each_weight_once_per_step_and_a_no_grad_use_keeps_its_gradient() -> None:
    """BF16Mixed turns torch's autocast cast cache back on (Lightning 2.6 had it off): a layer called three times in
    one step has its weight cast once, not three times; a first use under ``no_grad`` (a baseline, a greedy pass)
    does not cache a copy without its autograd link, so the use with grad after it still trains the weight
    (Lightning issue 20644's failure)."""
    from torch.profiler import ProfilerActivity, profile

    layer = torch.nn.Linear(8, 8)
    x = torch.randn(4, 8)

    def casts(plugin: MixedPrecision) -> int:
        with profile(activities=[ProfilerActivity.CPU]) as prof, plugin.forward_context():
            layer(layer(layer(x)))
        return sum(e.count for e in prof.key_averages() if e.key == "aten::_to_copy")

    assert casts(MixedPrecision("bf16-mixed", "cpu")) - casts(BF16Mixed("cpu")) == 4  # weight and bias: 3 casts → 1

    with BF16Mixed("cpu").forward_context():
        with torch.no_grad():
            layer(x)
        y = layer(layer(x)).float().sum()
    assert y.requires_grad
    y.backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert layer.bias.grad is not None and layer.bias.grad.abs().sum() > 0
