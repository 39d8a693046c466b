"""The memory family through the CLI: errors exit 2 with one line; a tiny run evaluates, records, tabulates, draws."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_memory_pipeline_and_errors(dirs: dict[str, Path]) -> None:
    assert run_cli("prepare", "babi-gen")[0] == 0
    code, _, err = run_cli("train", "memory", "--recipe", "tiny/memn2n", "--set", "data.tasks=21")
    assert code == 2 and "unknown bAbI task 21" in err
    code, _, err = run_cli("train", "memory", "--recipe", "tiny/memn2n", "--set", "data.tasks=2")
    assert code == 2 and "has no task 2" in err
    code, _, err = run_cli("train", "memory", "--recipe", "tiny/ntm")
    assert code == 2 and "attn prepare ntm-copy" in err
    code, _, err = run_cli("train", "memory", "--recipe", "tiny/memn2n", "--set", "data.dataset=babi-1k")
    assert code == 2 and "attn prepare babi --source" in err

    code, out, err = run_cli("train", "memory", "--recipe", "tiny/memn2n", "--set", "train.threads=1")
    assert code == 0, err
    # (a failed start leaves an empty run directory behind; take the one that trained)
    run_dir = next(p.parent for p in (dirs["runs"] / "memory").rglob("train_done.json"))
    code, _, err = run_cli("eval", "memory", "--run", str(run_dir), "--record")
    assert code == 0, err
    rec = json.loads(next(dirs["results"].rglob("result.json")).read_text())
    assert rec["metrics"]["mean_error"]["unit"].startswith("%") and "error/qa1" in rec["metrics"]
    rows = [json.loads(line) for line in (run_dir / "eval" / "test" / "predictions.jsonl").read_text().splitlines()]
    assert all(isinstance(r["id"], int) and r["task"] == 1 for r in rows)
    code, out, _ = run_cli("table", "memn2n", "--format", "markdown")
    assert code == 0 and "Mean error" in out
    code, out, _ = run_cli("visualize", "memn2n", "--run", str(run_dir), "--n", "2")
    assert code == 0 and len(list((run_dir / "viz").glob("hops-*.png"))) == 2
    code, _, err = run_cli("visualize", "ntm", "--run", str(run_dir))
    assert code == 2 and "not 'ntm'" in err


def test_reader_errors(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "reader", "--recipe", "tiny/attentive-reader")
    assert code == 2 and "attn prepare cloze-gen" in err
    code, _, err = run_cli("prepare", "cloze-multi30k", "--source", str(dirs["data"]))
    assert code == 2 and "train.1.en.gz is missing" in err


def test_per_task_runs_are_recorded_per_task() -> None:
    from attn_cli.config import load_recipe
    from attn_cli.registry import TASKS

    spec = TASKS.get("memory")
    assert spec.dataset_of(load_recipe("memory", "memn2n-pe-ls-rn", ["data.tasks=7"])) == "babi-1k-qa7"
    assert spec.dataset_of(load_recipe("memory", "memn2n-pe-ls-rn-joint")) == "babi-1k"
    assert spec.dataset_of(load_recipe("memory", "memn2n-pe-ls-rn-joint-10k", ["data.tasks=1-2,4-20"])) == "babi-10k"
