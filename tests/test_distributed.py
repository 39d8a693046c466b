"""Distributed evaluation equals one process; a killed run resumes to the same result."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from attn_cli import run
from tests.conftest import ATTN_EXE

ATTN = ATTN_EXE


def cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([ATTN, *args], capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr[-3000:])
    return proc


@pytest.mark.ddp
def test_two_process_gloo_evaluation_equals_one_process(generated_data: Path, tmp_path: Path) -> None:
    summary = run.train("nmt", "tiny/luong-global-general", runs_dir=tmp_path, data_dir=generated_data, progress=False)
    run_dir = Path(summary["run_dir"])
    env = {**os.environ, "ATTN_DATA": str(generated_data), "OMP_NUM_THREADS": "1"}
    # 301 test sentences: not divisible by 2, so the sampler pads a duplicate that must be dropped
    cli("eval", "nmt", "--run", str(run_dir), "--beam", "2", env=env)
    one = json.loads((run_dir / "eval" / "test" / "metrics.json").read_text())
    preds_one = (run_dir / "eval" / "test" / "predictions.jsonl").read_text()
    cli("eval", "nmt", "--run", str(run_dir), "--beam", "2", "--devices", "2", "--accelerator", "cpu", env=env)
    two = json.loads((run_dir / "eval" / "test" / "metrics.json").read_text())
    assert two["devices"] == 2 and one["devices"] == 1
    assert two["metrics"] == one["metrics"]
    assert (run_dir / "eval" / "test" / "predictions.jsonl").read_text() == preds_one


def _final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


@pytest.mark.parametrize("processes", [1, pytest.param(2, marks=pytest.mark.ddp)], ids=["one", "two-gloo"])
def test_killed_run_resumes_to_the_same_result(generated_data: Path, tmp_path: Path, processes: int) -> None:
    """Bit for bit, weights included: with two processes each rank's dropout stream must continue its own
    (the checkpoint carries every rank's generator state; restoring rank 0's on both parts by ~1e-3)."""
    env = {**os.environ, "ATTN_DATA": str(generated_data), "OMP_NUM_THREADS": "1"}
    devices = ["--devices", "2", "--accelerator", "cpu"] if processes == 2 else []
    common = [
        *devices,
        "--recipe",
        "tiny/luong-local-p",
        "--set",
        "train.max_steps=12",
        "--set",
        "train.checkpoint_every_steps=2",
        "--set",
        "train.val_every_steps=4",
        "--set",
        "train.batch_size=7",
    ]
    straight = tmp_path / "straight"
    cli("train", "nmt", *common, "--run-dir", str(straight), env=env)
    killed = tmp_path / "killed"
    proc = cli("train", "nmt", *common, "--run-dir", str(killed), env={**env, "ATTN_FAULT_AT_STEP": "7"}, check=False)
    assert proc.returncode == 137 and not (killed / "train_done.json").exists()
    assert (killed / "checkpoints" / "last.ckpt").is_file()
    cli("train", "nmt", "--resume", str(killed), env=env)
    a, b = _final_state(straight), _final_state(killed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    done_a = json.loads((straight / "train_done.json").read_text())
    done_b = json.loads((killed / "train_done.json").read_text())
    assert done_a["best_score"] == done_b["best_score"] and done_a["steps"] == done_b["steps"] == 12
    states = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=False)["attn_rng"]
    assert len(states) == processes
    if processes == 2:
        assert not torch.equal(states[0]["cpu"], states[1]["cpu"])
