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
