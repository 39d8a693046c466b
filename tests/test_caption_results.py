"""The captioning records recompute from their saved predictions; evaluation is free-running."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from attn_cli import run
from attn_cli.config import load_recipe
from attn_cli.data.vocab import NAMES
from attn_cli.metrics.caption import java_available
from attn_cli.registry import TASKS
from attn_cli.tables.base import record_predictions
from attn_cli.tasks.caption import DIGIT_WORDS, caption_metrics

RESULTS = Path(__file__).resolve().parent.parent / "results"
RECORDS = [p for p in sorted(RESULTS.rglob("result.json")) if json.loads(p.read_text())["task"] == "caption"]


def _train(recipe: str, runs: Path, data: Path, *overrides: str) -> dict:
    """A tiny caption recipe trained with one thread (seconds)."""
    return run.train(
        "caption", recipe, runs_dir=runs, data_dir=data, progress=False, overrides=["train.threads=1", *overrides]
    )


@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(RESULTS)) for p in RECORDS])
def test_caption_perplexity_and_attention_correctness_recompute(path: Path) -> None:
    rec = json.loads(path.read_text())
    rows = record_predictions(path)
    ppl = math.exp(sum(r["nll"] for r in rows) / sum(r["ntok"] for r in rows))
    assert ppl == pytest.approx(rec["metrics"]["ppl"]["value"], rel=1e-9)
    for key, name in (("motion_ok", "motion_acc"), ("digits_ok", "digit_acc")):
        if name in rec["metrics"]:
            hits = [r[key] for r in rows]
            assert sum(hits) / len(hits) == pytest.approx(rec["metrics"][name]["value"], abs=1e-9)
    for key in ("attn_correct", "attn_correct_prev", "temporal_correct"):
        scores = [s for r in rows for s in r.get(key, [])]
        if key in rec["metrics"]:
            assert sum(scores) / len(scores) == pytest.approx(rec["metrics"][key]["value"], abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(RESULTS)) for p in RECORDS])
def test_caption_metrics_recompute_from_predictions(path: Path) -> None:
    rec = json.loads(path.read_text())
    rows = sorted(record_predictions(path), key=lambda r: r["id"])
    assert all(r["refs"] and isinstance(r["hyp"], str) for r in rows)
    got = caption_metrics(rows, meteor=False)  # METEOR's Java start-up is slow; see the slow test below
    for name, metric in rec["metrics"].items():
        if name != "meteor":
            assert got[name] == pytest.approx(metric["value"], abs=1e-6), name


@pytest.mark.slow
@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(RESULTS)) for p in RECORDS])
def test_caption_meteor_recomputes_from_predictions(path: Path) -> None:
    if not java_available():
        pytest.skip("METEOR needs Java")
    rec = json.loads(path.read_text())
    rows = sorted(record_predictions(path), key=lambda r: r["id"])
    assert caption_metrics(rows)["meteor"] == pytest.approx(rec["metrics"]["meteor"]["value"], abs=1e-6)


def test_evaluation_is_free_running(tmp_path: Path) -> None:
    """The captions of `attn eval` do not change when the references (and so teacher forcing) change."""
    data = tmp_path / "data"
    run.prepare("glyphs-captions", data_dir=data, overrides=["train=16", "val=4", "test=6"])
    recipe = load_recipe("caption", "tiny/sat-soft")
    task = TASKS.get("caption")
    dm = task.datamodule(recipe, data)
    module = task.module(recipe, dm.meta)
    module.attach(dm)
    module.eval()
    batch = next(iter(dm.split_loader("test")))
    with torch.no_grad():
        rows = module.predict_rows(batch, "test")
        scrambled = dict(batch)
        scrambled["tok_in"] = torch.randint(4, len(dm.itos), batch["tok_in"].shape)
        scrambled["tok_out"] = torch.randint(4, len(dm.itos), batch["tok_out"].shape)
        again = module.predict_rows(scrambled, "test")
        # and they are what greedy/beam decoding from the images alone gives
        hyps = module.decode(module.model.encode(batch["x"]), len(batch["ids"]), recipe.eval.beam)
    assert [r["hyp"] for r in rows] == [r["hyp"] for r in again]
    assert [r["hyp"] for r in rows] == [" ".join(module.words(h.tokens)) for h in hyps]
    assert [r["nll"] for r in rows] != [r["nll"] for r in again]  # perplexity does read the references
    for row, item in zip(rows, (dm.dataset("test").items[i] for i in batch["ids"].tolist()), strict=True):
        named = sorted(w for w in row["hyp"].split() if w in DIGIT_WORDS)
        assert row["digits_ok"] == (named == sorted(NAMES[b[0]] for b in item["boxes"]))


def test_digit_accuracy_is_the_share_of_captions_naming_exactly_their_digits() -> None:
    rows = [
        {"id": i, "hyp": "a three", "refs": ["a three"], "nll": 1.0, "ntok": 2, "digits_ok": ok}
        for i, ok in enumerate([True, False, True, True])
    ]
    assert caption_metrics(rows, final=False, meteor=False)["digit_acc"] == pytest.approx(0.75)


def test_visualize_draws_word_attention_and_frame_strips(tmp_path: Path, generated_data: Path) -> None:
    for name, pattern in (("tiny/sat-hard", "attention-test-*.png"), ("tiny/video-temporal", "frames-test-*.png")):
        summary = _train(name, tmp_path, generated_data)
        paths = run.visualize("caption", Path(summary["run_dir"]), n=2, data_dir=generated_data)
        assert paths and all(p.match(pattern) and p.stat().st_size > 0 for p in paths)


def test_visualize_without_attention_is_a_clear_error(tmp_path: Path, generated_data: Path) -> None:
    from attn_cli.errors import AttnError

    summary = _train("tiny/show-tell", tmp_path, generated_data)
    with pytest.raises(AttnError, match="has no attention to draw"):
        run.visualize("caption", Path(summary["run_dir"]), n=1, data_dir=generated_data)


def test_a_meteor_that_does_not_answer_is_skipped_with_a_warning() -> None:
    from attn_cli.metrics.caption import _meteor

    if not java_available():
        pytest.skip("METEOR needs Java")
    with pytest.warns(UserWarning, match="METEOR did not answer"):
        assert _meteor({1: ["a dog"]}, {1: ["a dog"]}, timeout=0.0) is None


def test_attention_supervision_trains_from_the_stored_boxes(tmp_path: Path, generated_data: Path) -> None:
    """model.attn_supervision > 0: the digit words' box maps reach the loss (train/attn_sup is logged)."""
    summary = _train(
        "tiny/sat-soft", tmp_path, generated_data, "train.log_every_n_steps=1", "model.attn_supervision=1.0"
    )
    header, *rows = (Path(summary["run_dir"]) / "logs" / "metrics.csv").read_text().splitlines()
    col = header.split(",").index("train/attn_sup")
    values = [float(r.split(",")[col]) for r in rows if r.split(",")[col]]
    assert values and all(0.0 < v < 10.0 for v in values)  # a cross-entropy over ≤ L cells, finite
