"""The tapes (RL-NTM) records recompute from their saved predictions: every test sequence's correctness, errors
and length are saved, so the per-length accuracies and the shares within and beyond training follow from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from attn_cli.io import record_file
from attn_cli.tables.base import record_predictions
from attn_cli.tasks.tapes import tape_metrics

RESULTS = Path(__file__).resolve().parent.parent / "results"
RECORDS = [p for p in sorted(RESULTS.rglob("result.json")) if json.loads(p.read_text())["task"] == "tapes"]


@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(RESULTS)) for p in RECORDS])
def test_tapes_metrics_recompute_from_predictions(path: Path) -> None:
    rec = json.loads(path.read_text())
    rows = sorted(record_predictions(path), key=lambda r: r["id"])
    max_length = int(yaml.safe_load(record_file(path.parent, "recipe.yaml").read_text())["data"]["max_length"])
    got = tape_metrics(rows, max_length)
    for name, metric in rec["metrics"].items():
        if name != "curriculum_level":  # training state, not a function of the predictions
            assert got[name] == pytest.approx(metric["value"], abs=1e-3), name  # nll rows are rounded
