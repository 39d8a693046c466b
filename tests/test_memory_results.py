"""The memory family's records recompute from their saved predictions (per-task error, bits, accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attn_cli.tasks.memory import qa_metrics, seq_metrics
from attn_cli.tasks.reader import accuracy_metrics
from tests.conftest import recorded_rows

RESULTS = Path(__file__).resolve().parent.parent / "results"
RECORDS = [p for p in sorted(RESULTS.rglob("result.json")) if json.loads(p.read_text())["task"] in ("memory", "reader")]


@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(RESULTS)) for p in RECORDS])
def test_memory_metrics_recompute_from_predictions(path: Path) -> None:
    rec = json.loads(path.read_text())
    rows = sorted(recorded_rows(path, rec), key=lambda r: r["id"])
    if rec["task"] == "reader":
        got = accuracy_metrics(rows)
    elif "task" in rows[0]:
        got = qa_metrics(rows)
    else:
        got = seq_metrics(rows)
    for name, metric in rec["metrics"].items():
        assert got[name] == pytest.approx(metric["value"], abs=1e-6), name


def test_best_of_n_picks_the_test_error_of_the_seed_its_criterion_picks() -> None:
    from attn_cli.tables.base import pick_lowest

    agg = pick_lowest("train", ("a-seed1", "a-seed2", "a-seed3"), "mean_error")
    assert [r.split for r in agg.refs] == ["train"] * 3 + ["test"] * 3
    assert [r.recipe for r in agg.refs[:3]] == [f"a-seed{s}" for s in (1, 2, 3)]
    # the criterion reads the named metric; the test value, the cell's own (a task's error, failed tasks)
    assert {r.metric for r in agg.refs} == {"mean_error", None}
    # training errors 9, 2, 5 -> seed 2 -> its test error 40; a tie goes to the first seed
    assert agg.fn([9.0, 2.0, 5.0, 10.0, 40.0, 20.0]) == 40.0
    assert agg.fn([3.0, 3.0, 5.0, 10.0, 40.0, 20.0]) == 10.0
