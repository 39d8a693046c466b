"""Our metric numbers equal the reference libraries' on the same hypotheses."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from attn_cli.metrics import caption as caption_metrics
from attn_cli.metrics.text import corpus_bleu

HYPS = ["A dog runs across the green grass.", "Two men are sitting on a bench .", "A girl in a red coat!"]
REFS = ["A dog is running on green grass.", "Two men sit on a bench.", "A little girl wearing a red coat."]


@pytest.mark.parametrize("lowercase", [False, True])
def test_bleu_equals_the_sacrebleu_command_line(tmp_path: Path, lowercase: bool) -> None:
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("\n".join(h.upper() if lowercase else h for h in HYPS) + "\n", encoding="utf-8")
    ref.write_text("\n".join(REFS) + "\n", encoding="utf-8")
    exe = shutil.which("sacrebleu") or str(Path(sys.executable).parent / "sacrebleu")
    args = [exe, str(ref), "-i", str(hyp), "-b", "-w", "6"] + (["-lc"] if lowercase else [])
    cli = float(subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip())
    ours = corpus_bleu([h.upper() if lowercase else h for h in HYPS], REFS, lowercase=lowercase)
    assert round(ours.score, 6) == cli
    assert ("case:lc" in ours.signature) == lowercase and "tok:13a" in ours.signature


def test_caption_metrics_equal_pycocoevalcap_called_directly() -> None:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    hyps = {1: "a dog runs on the grass", 2: "two men sit on a\nbench"}
    refs = {1: ["a dog is running on grass", "the dog runs"], 2: ["two men sit on a bench", "men sitting on a bench"]}
    ours = caption_metrics.caption_scores(hyps, refs)
    if not caption_metrics.java_available():
        pytest.skip("Java is needed for the PTB tokenizer")
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in rs] for i, rs in refs.items()})
    res = tok.tokenize({i: [{"caption": " ".join(h.split())}] for i, h in hyps.items()})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert [ours[f"bleu{n}"] for n in range(1, 5)] == pytest.approx(bleu, abs=0)
    assert ours["cider"] == Cider().compute_score(gts, res)[0]
    assert ours["rouge_l"] == Rouge().compute_score(gts, res)[0]
    assert 0 < ours["meteor"] <= 1


def test_meteor_is_skipped_with_a_warning_without_java(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caption_metrics, "java_available", lambda: False)
    with pytest.warns(UserWarning, match="METEOR skipped"):
        scores = caption_metrics.caption_scores({1: "a dog"}, {1: ["a dog runs"]})
    assert "meteor" not in scores and "cider" in scores


# (run under results/, metric, the rows' prediction and label keys, what the metric is of top-1 accuracy)
RECORDED = [
    ("vision/mnist-rts/cnn-rts@gpu", "error", "pred", "label", lambda acc: 100.0 * (1.0 - acc)),
    ("vision/mnist-rts/stn-cnn-affine-rts@gpu", "error", "pred", "label", lambda acc: 100.0 * (1.0 - acc)),
    ("reader/cloze-multi30k/impatient-reader", "accuracy", "pred", "answer", lambda acc: 100.0 * acc),
]


@pytest.mark.parametrize(("run", "metric", "pred", "label", "of_accuracy"), RECORDED, ids=[r[0] for r in RECORDED])
def test_recorded_top1_equals_torchmetrics(run: str, metric: str, pred: str, label: str, of_accuracy: Any) -> None:
    """The tasks count top-1 by hand on the gathered rows; on recorded predictions that count is
    torchmetrics' micro accuracy (``average="micro"``: the fraction right, not the per-class mean) to
    float32's precision, and not bit for bit: why the tasks do not go through it (docs/architecture.md)."""
    from torchmetrics.functional.classification import multiclass_accuracy

    root = Path(__file__).resolve().parent.parent / "results" / run
    with gzip.open(root / "predictions.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    recorded = json.loads((root / "result.json").read_text())["metrics"][metric]["value"]
    classes = {c: i for i, c in enumerate(sorted({str(r[pred]) for r in rows} | {str(r[label]) for r in rows}))}
    preds = torch.tensor([classes[str(r[pred])] for r in rows])
    target = torch.tensor([classes[str(r[label])] for r in rows])
    acc = float(multiclass_accuracy(preds, target, num_classes=len(classes), average="micro"))
    right = sum(str(r[pred]) == str(r[label]) for r in rows)
    hand = 100.0 * right / len(rows) if metric == "accuracy" else 100.0 * (len(rows) - right) / len(rows)
    assert hand == recorded
    assert of_accuracy(acc) == pytest.approx(recorded, abs=1e-4)
