"""The memory family's records recompute from their saved predictions (per-task error, bits, accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attn_cli.tables.base import record_predictions
from attn_cli.tasks.memory import qa_metrics, seq_metrics
from attn_cli.tasks.reader import accuracy_metrics

RESULTS = Path(__file__).resolve().parent.parent / "results"
RECORDS = [p for p in sorted(RESULTS.rglob("result.json")) if json.loads(p.read_text())["task"] in ("memory", "reader")]


@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(RESULTS)) for p in RECORDS])
def test_memory_metrics_recompute_from_predictions(path: Path) -> None:
    rec = json.loads(path.read_text())
    rows = sorted(record_predictions(path), key=lambda r: r["id"])
    if rec["task"] == "reader":
        got = accuracy_metrics(rows)
    elif "task" in rows[0]:
        got = qa_metrics(rows)
    else:
        got = seq_metrics(rows)
    for name, metric in rec["metrics"].items():
        assert got[name] == pytest.approx(metric["value"], abs=1e-6), name


def test_best_of_n_picks_the_test_error_of_the_seed_its_criterion_picks() -> None:
    from attn_cli.tables.memory import _pick

    agg = _pick("train", (1, 2, 3))
    assert [r.split for r in agg.refs] == ["train"] * 3 + ["test"] * 3
    assert [r.recipe for r in agg.refs[:3]] == [f"memn2n-pe-ls-rn-seed{s}" for s in (1, 2, 3)]
    # training errors 9, 2, 5 -> seed 2 -> its test error 40; a tie goes to the first seed
    assert agg.fn([9.0, 2.0, 5.0, 10.0, 40.0, 20.0]) == 40.0
    assert agg.fn([3.0, 3.0, 5.0, 10.0, 40.0, 20.0]) == 10.0


def test_the_dmn_restarts_pick_per_task_the_test_error_of_the_lowest_validation_error() -> None:
    from attn_cli.tables.base import CURVE_MIN
    from attn_cli.tables.memory import DMN_SEEDS, _dmn_best, _dmn_restart_refs

    assert DMN_SEEDS[0] == 42  # the per-task column's own run is one of the restarts
    refs = _dmn_restart_refs(8)
    k = len(DMN_SEEDS)
    assert [r.recipe for r in refs[:k]] == ["dmn-supervised", *(f"dmn-supervised-seed{s}" for s in DMN_SEEDS[1:])]
    assert {r.metric for r in refs[:k]} == {f"{CURVE_MIN}val/mean_error"} and {r.metric for r in refs[k:]} == {
        "error/qa8"
    }
    assert {r.dataset for r in refs} == {"babi-1k-qa8"}
    first, rest = [0.0] * (2 * k), [0.0] * (2 * k)
    first[:k], first[k:] = [3.0, *[5.0] * (k - 1)], [10.0, *[2.0] * (k - 1)]  # seed 42 validates best: its test error
    rest[:k], rest[k:] = [4.0, *[1.0] * (k - 1)], [1.0, *[30.0] * (k - 1)]  # a later seed validates best
    tie = [2.0] * k + [7.0, *[9.0] * (k - 1)]  # a tie goes to the first seed
    mean = _dmn_best((8, 9, 10), lambda v: sum(v) / len(v))
    assert len(mean.refs) == 3 * 2 * k
    assert mean.fn(first + rest + tie) == pytest.approx((10.0 + 30.0 + 7.0) / 3)


SEED_VAL = sorted(RESULTS.glob("memory/babi-1k-qa*/dmn-supervised-seed*-val/result.json"))


@pytest.mark.parametrize("path", SEED_VAL, ids=[str(p.parent.relative_to(RESULTS)) for p in SEED_VAL])
def test_a_dmn_restarts_validation_record_equals_the_lowest_validation_error_of_its_learning_curve(path: Path) -> None:
    """What lets the restarts pick seed 42, which has no validation record, from its learning curve alone."""
    from attn_cli.io import read_curve

    curve = read_curve(path.parent.parent / path.parent.name.removesuffix("-val"))
    best = min(float(row["val/mean_error"]) for row in curve if row.get("val/mean_error"))
    assert json.loads(path.read_text())["metrics"]["mean_error"]["value"] == pytest.approx(best, abs=1e-4)
