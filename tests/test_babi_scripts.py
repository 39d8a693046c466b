"""scripts/babi_per_task.sh: a per-task column; scripts/babi_seeds.sh: its restarts (or a joint recipe's), each
recorded on test, validation and training; scripts/babi_best_of.py: the pick among them, from the records."""

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


def script_env(tmp_path: Path) -> dict[str, str]:
    """The scripts' environment: babi-gen prepared under tmp_path, runs and records there too."""
    from attn_cli import run

    run.prepare("babi-gen", data_dir=tmp_path / "data")
    return {
        **os.environ,
        "ATTN_DATA": str(tmp_path / "data"),
        "ATTN_RUNS": str(tmp_path / "runs"),
        "ATTN_RESULTS": str(tmp_path / "results"),
        "DATASET": "babi-gen",
        "OMP_NUM_THREADS": "1",
        # the console script sits beside this interpreter (CI runs pytest through .venv/bin/python)
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }


def test_babi_seeds_records_each_restart_on_test_validation_and_training_and_skips_it_after(tmp_path: Path) -> None:
    env = script_env(tmp_path)
    proc = seeds("tiny/dmn", "3", "1", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dest = tmp_path / "results" / "memory" / "babi-gen-qa1"
    recs = [json.loads((dest / f"tiny-dmn-seed3{s}" / "result.json").read_text()) for s in ("", "-val", "-train")]
    assert [r["split"] for r in recs] == ["test", "val", "train"]
    assert {r["seed"] for r in recs} == {3} and len({r["run_dir"] for r in recs}) == 1
    assert "--set train.seed=3" in recs[0]["commands"][0] and "--set data.tasks=1" in recs[0]["commands"][0]
    again = seeds("tiny/dmn", "3", "1", env=env)
    assert again.returncode == 0 and "qa1 seed 3: recorded already" in again.stdout
    assert [p.name for p in (tmp_path / "runs" / "memory" / "tiny" / "dmn-qa1").iterdir()] == ["seed3"]


def best_of(*args: str, results: Path) -> subprocess.CompletedProcess[str]:
    script = [sys.executable, str(REPO / "scripts" / "babi_best_of.py"), *args, "--results", str(results)]
    return subprocess.run(script, capture_output=True, text=True, cwd=REPO, timeout=600)


def test_best_of_joint_restarts_picks_from_the_records_and_a_missing_seed_is_one_line(tmp_path: Path) -> None:
    env = script_env(tmp_path)
    proc = seeds("tiny/memn2n", "1 2", "joint", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = tmp_path / "results"
    dest = results / "memory" / "babi-gen"

    def error(seed: int, suffix: str) -> float:
        return float(json.loads((dest / f"tiny-memn2n-seed{seed}{suffix}" / "result.json").read_text())["metrics"]
                     ["mean_error"]["value"])  # fmt: skip

    picked = best_of("tiny/memn2n", "1 2", "--dataset", "babi-gen", results=results)
    assert picked.returncode == 0, picked.stderr
    for suffix, rule in (("-val", "validation error"), ("-train", "training error")):
        seed = 2 if error(2, suffix) < error(1, suffix) else 1  # the first seed on a tie
        line = next(x for x in picked.stdout.splitlines() if x.startswith(f"best of 2 by {rule}"))
        assert f": seed {seed} (" in line and f"test {error(seed, ''):.1f}," in line
    missing = best_of("tiny/memn2n", "1 5", "--dataset", "babi-gen", results=results)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.splitlines() == [
        "error: no train record of tiny-memn2n-seed5 under memory/babi-gen; "
        'run scripts/babi_seeds.sh tiny/memn2n "5" first (or check --dataset)'
    ]
    # seed 1's validation record made again from seed 2's run: its three records no longer come from one run
    run2 = tmp_path / "runs" / "memory" / "tiny" / "memn2n" / "seed2"
    attn = Path(sys.executable).parent / "attn"
    wrong = [
        str(attn),
        "eval",
        "memory",
        "--run",
        str(run2),
        "--split",
        "val",
        "--record",
        "--name",
        "tiny-memn2n-seed1",
    ]
    again = subprocess.run(wrong, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    mixed = best_of("tiny/memn2n", "1 2", "--dataset", "babi-gen", results=results)
    assert mixed.returncode == 2 and mixed.stdout == "" and len(mixed.stderr.splitlines()) == 1
    assert mixed.stderr.startswith("error: the records of tiny-memn2n-seed1 come from different runs (")


def test_babi_per_task_records_a_task_once_under_the_recipes_record_name(tmp_path: Path) -> None:
    env = script_env(tmp_path)
    script = ["bash", str(REPO / "scripts" / "babi_per_task.sh"), "tiny/dmn", "1"]
    proc = subprocess.run(script, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "results" / "memory" / "babi-gen-qa1" / "tiny-dmn" / "result.json").read_text())
    assert record["split"] == "test" and "--set data.tasks=1" in record["commands"][0]
    again = subprocess.run(script, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert again.returncode == 0 and "qa1: recorded already" in again.stdout
