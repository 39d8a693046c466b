"""The cluster scripts and the visualisation core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attn_cli.viz import core
from tests.conftest import ATTN_EXE

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "scripts" / "sweep.sh"


def sweep(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SWEEP), *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_sweep_dry_run_prints_sbatch_lines() -> None:
    proc = sweep(
        "--dry-run",
        "--nodes",
        "2",
        "--gpus",
        "4",
        "--time",
        "02:00:00",
        "--partition",
        "gpu",
        "nmt",
        "luong-local-p",
        "bahdanau",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    for line, recipe in zip(lines, ("luong-local-p", "bahdanau")):
        assert line.startswith("env ") and " sbatch --export=ALL " in line
        assert line.rstrip().endswith("scripts/slurm/train.sbatch")
        for flag in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--time=02:00:00", "--partition=gpu"):
            assert flag in line, flag
        assert f"RECIPE={recipe}" in line and "TASK=nmt" in line


def test_sweep_local_dry_run_and_bad_usage() -> None:
    proc = sweep("--dry-run", "--local", "nmt", "tiny/seq2seq")
    assert (
        proc.returncode == 0
        and "attn train nmt --recipe tiny/seq2seq --run-dir runs/nmt/tiny/seq2seq/sweep-" in proc.stdout
    )
    assert "attn eval nmt --run runs/nmt/tiny/seq2seq/sweep-" in proc.stdout
    bad = sweep("nmt")
    assert bad.returncode == 2 and "give a TASK and at least one RECIPE" in bad.stderr
    bad = sweep("--frobnicate", "nmt", "x")
    assert bad.returncode == 2 and "unknown option" in bad.stderr


def test_sweep_runs_two_tiny_recipes_locally(generated_data: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ATTN_DATA": str(generated_data),
        "ATTN_RUNS": str(tmp_path / "runs"),
        "ATTN_RESULTS": str(tmp_path / "results"),
        "OMP_NUM_THREADS": "1",
    }
    # the console script sits beside this interpreter (CI runs pytest through .venv/bin/python with no venv on PATH)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    proc = sweep("--local", "--eval-args", "--beam 2", "nmt", "tiny/seq2seq", "tiny/bahdanau", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = sorted((tmp_path / "results" / "nmt" / "toy-reorder").glob("*/result.json"))
    assert [p.parent.name for p in records] == ["tiny-bahdanau", "tiny-seq2seq"]
    assert json.loads(records[0].read_text())["eval"]["beam"] == 2


def test_sbatch_script_is_valid_bash() -> None:
    proc = subprocess.run(
        ["bash", "-n", str(REPO / "scripts" / "slurm" / "train.sbatch")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    text = (REPO / "scripts" / "slurm" / "train.sbatch").read_text()
    assert "--signal=USR1@120" in text and "--requeue" in text and "--resume" in text


def test_viz_core_writes_pngs(tmp_path: Path) -> None:
    w = np.random.default_rng(0).random((5, 7))
    paths = [
        core.heatmap(w, list("abcde"), list("ABCDEFG"), tmp_path / "h.png", title="t", marks=[(0, 1)]),
        core.overlay(np.zeros((28, 28)), np.ones((7, 7)) / 49, tmp_path / "o.png", title="x"),
        core.image_grid([np.zeros((3, 11, 13))] * 5, tmp_path / "g.png", titles=["1", "2"], ncols=3),
        core.panels(np.zeros((28, 28)), [np.eye(7)] * 3, ["a", "b", "c"], tmp_path / "p.png"),
        core.line_plot({"lstm": [1, 2], "ntm": [0, 0]}, [10, 20], tmp_path / "l.png", xlabel="length"),
    ]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "ATTN_DATA": str(tmp_path / "data")}
    proc = subprocess.run(
        [ATTN_EXE, "demo", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "alignment-test-0.png" in proc.stdout and "bleu=" in proc.stdout
