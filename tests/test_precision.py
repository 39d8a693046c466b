"""bf16-mixed is the GPU default (attn_cli.trainer): every family must train and evaluate under it.

CPU autocast in bfloat16 stands in for the GPU here (no GPU in CI): it catches dtype mixes in the models,
and Lightning's mixed-precision plugin's refusal to clip a fused optimizer's gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attn_cli import run

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
    # oneDNN has no bf16 LSTM inference primitive (a CPU-only gap; cuDNN has one): the native kernels instead
    with torch.backends.mkldnn.flags(enabled=False):
        _train_and_evaluate(task, recipe, generated_data, tmp_path)


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
