"""scripts/babi_per_task.sh: a per-task column; scripts/babi_seeds.sh: its restarts, each recorded on test and on
validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "scripts" / "babi_seeds.sh"


def seeds(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SEEDS), *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_babi_seeds_without_seeds_prints_its_usage() -> None:
    proc = seeds("tiny/dmn")
    assert proc.returncode == 2 and "usage: scripts/babi_seeds.sh RECIPE SEEDS [TASKS]" in proc.stderr


def test_babi_seeds_records_each_restart_on_test_and_validation_and_skips_it_after(tmp_path: Path) -> None:
    from attn_cli import run

    run.prepare("babi-gen", data_dir=tmp_path / "data")
    env = {
        **os.environ,
        "ATTN_DATA": str(tmp_path / "data"),
        "ATTN_RUNS": str(tmp_path / "runs"),
        "ATTN_RESULTS": str(tmp_path / "results"),
        "DATASET": "babi-gen",
        "OMP_NUM_THREADS": "1",
        # the console script sits beside this interpreter (CI runs pytest through .venv/bin/python)
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    proc = seeds("tiny/dmn", "3", "1", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dest = tmp_path / "results" / "memory" / "babi-gen-qa1"
    test, val = (json.loads((dest / d / "result.json").read_text()) for d in ("tiny-dmn-seed3", "tiny-dmn-seed3-val"))
    assert (test["split"], val["split"]) == ("test", "val")
    assert test["seed"] == val["seed"] == 3 and test["run_dir"] == val["run_dir"]
    assert "--set train.seed=3" in test["commands"][0] and "--set data.tasks=1" in test["commands"][0]
    again = seeds("tiny/dmn", "3", "1", env=env)
    assert again.returncode == 0 and "qa1 seed 3: recorded already" in again.stdout
    assert len(list((tmp_path / "runs" / "memory" / "tiny" / "dmn-qa1").iterdir())) == 1


def test_babi_per_task_records_a_task_once_under_the_recipes_record_name(tmp_path: Path) -> None:
    from attn_cli import run

    run.prepare("babi-gen", data_dir=tmp_path / "data")
    env = {
        **os.environ,
        "ATTN_DATA": str(tmp_path / "data"),
        "ATTN_RUNS": str(tmp_path / "runs"),
        "ATTN_RESULTS": str(tmp_path / "results"),
        "DATASET": "babi-gen",
        "OMP_NUM_THREADS": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    script = ["bash", str(REPO / "scripts" / "babi_per_task.sh"), "tiny/dmn", "1"]
    proc = subprocess.run(script, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "results" / "memory" / "babi-gen-qa1" / "tiny-dmn" / "result.json").read_text())
    assert record["split"] == "test" and "--set data.tasks=1" in record["commands"][0]
    again = subprocess.run(script, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert again.returncode == 0 and "qa1: recorded already" in again.stdout
