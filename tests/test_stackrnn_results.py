"""The patterns records recompute from their saved predictions (the paper's protocol: every sequence's
correctness is saved, so the per-size accuracies, ``solved_n`` and ``accuracy_beyond`` follow from them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from attn_cli.io import record_file
from attn_cli.tables.base import record_predictions
from attn_cli.tasks.patterns import pattern_metrics

RESULTS = Path(__file__).resolve().parent.parent / "results"
RECORDS = [p for p in sorted(RESULTS.rglob("result.json")) if json.loads(p.read_text())["task"] == "patterns"]
# the test records (a restart's validation record scores the validation sizes, which are the training sizes)
TEST_RECORDS = [p for p in RECORDS if json.loads(p.read_text()).get("split", "test") == "test"]


@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(RESULTS)) for p in RECORDS])
def test_patterns_metrics_recompute_from_predictions(path: Path) -> None:
    rec = json.loads(path.read_text())
    rows = sorted(record_predictions(path), key=lambda r: r["id"])
    max_n = int(yaml.safe_load(record_file(path.parent, "recipe.yaml").read_text())["data"]["max_n"])
    got = pattern_metrics(rows, max_n)
    for name, metric in rec["metrics"].items():
        assert got[name] == pytest.approx(metric["value"], abs=1e-3), name  # nll rows are rounded to 4 decimals


@pytest.mark.parametrize("path", TEST_RECORDS, ids=[str(p.relative_to(RESULTS)) for p in TEST_RECORDS])
def test_patterns_records_are_tested_beyond_the_training_sizes(path: Path) -> None:
    """The paper's protocol (§5.1, Table 2's caption): trained on n < 20, tested on every n up to 60."""
    rec = json.loads(path.read_text())
    data = yaml.safe_load(record_file(path.parent, "recipe.yaml").read_text())["data"]
    sizes = sorted(int(k.split("/n")[1]) for k in rec["metrics"] if k.startswith("accuracy/n"))
    assert data["max_n"] < 20 and sizes == list(range(2, 61)) and data["test_per_n"] == 20
    assert "accuracy_beyond" in rec["metrics"]
