"""The captioning task: Show and Tell, Show-Attend-Tell (soft/hard) and video description.

Training is teacher-forced on (image, caption) pairs. Evaluation is free-running — greedy
(``eval.beam: 1``) or beam search (:mod:`attn_cli.nn.search`) from the image alone, never
teacher-forced — and scored with pycocoevalcap (PTB tokenizer, BLEU-1..4, METEOR, ROUGE-L,
CIDEr) against *all* references of each image. Perplexity (Yao et al.'s fourth column) is the
teacher-forced per-word perplexity of all references (EOS included). Where the dataset stores
object boxes (the digit captions), ``attn_correct`` is the share of attention mass inside the box
of the digit each generated digit word names (:mod:`attn_cli.metrics.attention`), averaged over
those words. Validation during training uses greedy decoding and skips METEOR and the PTB
tokenizer (seconds of Java per validation); ``attn eval`` reports everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from attn_cli.config import Recipe
from attn_cli.data.caption import CaptionDataConfig, CaptionDataModule, collate
from attn_cli.data.vocab import MOVES, NAMES
from attn_cli.errors import AttnError
from attn_cli.io import write_json, write_jsonl
from attn_cli.metrics.attention import box_targets, segment_correctness, word_correctness
from attn_cli.metrics.caption import caption_scores, java_available
from attn_cli.nn.search import Hypothesis, beam_search, greedy, select
from attn_cli.registry import TASKS
from attn_cli.tasks.base import AttnModule, Task, perplexity

MOTIONS = tuple(MOVES)
NO_JAVA_SCORER = "pycocoevalcap on lower-cased whitespace tokens (no Java: no PTB tokenizer), all references"
DIGIT_WORDS = frozenset(NAMES)


def digit_objects(boxes: list) -> list[tuple[str, list]]:
    """(name, [x0, y0, x1, y1]) per stored digit box ``[label, x0, y0, x1, y1]``."""
    return [(NAMES[int(b[0])], b[1:]) for b in boxes]


@dataclass(frozen=True)
class CaptionEvalConfig:
    beam: int = 3  # 1 = greedy
    val_beam: int = 1  # decoding of the validation scores during training
    alpha: float = 0.0  # beam length penalty ((5+|Y|)/6)^α; 0 = raw log-probability
    max_len: int = 0  # output limit in words; 0: the longest training caption + 5
    meteor: bool = True  # METEOR's Java start-up costs ~15 s; the tiny (test) recipes switch it off
    # batches decoded at once on a CPU, each by one worker with threads/workers torch threads (AttnModule
    # .predict_workers): 0 = auto, one single-threaded worker per thread; 1 = one batch at a time, every thread on it
    workers: int = 0


@runtime_checkable
class CaptionModel(Protocol):
    """What this task calls on a registered captioning model (tests/test_models.py checks every one):
    the training loss, the image encoder, the step-decoder protocol of :mod:`attn_cli.nn.search`, the
    teacher-forced NLL for perplexity, and what attention correctness and `attn visualize` need."""

    cfg: Any
    grid: tuple[int, int] | None  # the annotation grid (rows, cols); None for frames (video)
    pad: int
    bos: int
    eos: int

    def loss(
        self, x: torch.Tensor, tok_in: torch.Tensor, tok_out: torch.Tensor, attn_target: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, Any]]: ...

    def encode(self, x: torch.Tensor) -> Any: ...

    def init_state(self, memory: Any) -> Any: ...

    def step(self, y_prev: torch.Tensor, state: Any, memory: Any) -> tuple[torch.Tensor, Any, torch.Tensor | None]: ...

    def nll(self, memory: Any, tok_in: torch.Tensor, tok_out: torch.Tensor) -> torch.Tensor: ...

    def attention_kind(self) -> str: ...


class CaptionModule(AttnModule):
    # the encoder, teacher-forced NLL and greedy / beam search draw no random numbers at evaluation (hard attention
    # decodes with the expected context, sat.py), so batches may be decoded by several workers at once
    parallel_predict = True

    def __init__(self, recipe: Recipe, meta: dict[str, Any]) -> None:
        super().__init__(recipe, meta)
        self.itos: list[str] = meta["itos"]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x = batch["x"].index_select(0, batch["cap_img"])  # one input row per caption
        target = self.attn_targets(batch) if getattr(self.model.cfg, "attn_supervision", 0.0) else None
        loss, logs = self.model.loss(x, batch["tok_in"], batch["tok_out"], target)
        n = len(batch["cap_img"])
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        for k, v in logs.items():
            self.log(f"train/{k}", v, batch_size=n)
        return loss

    def attn_targets(self, batch: dict[str, Any]) -> torch.Tensor:
        """(N, T, L) ground-truth attention maps for the digit words of each training caption (box_targets)."""
        grid, hw = self.model.grid, tuple(self.meta["input_shape"][-2:])
        steps = batch["tok_out"].size(1)
        rows = []
        for n, img in enumerate(batch["cap_img"].tolist()):
            objects = digit_objects(batch["boxes"][img])
            rows.append(box_targets(self.words(batch["tok_out"][n].tolist()), objects, grid, hw, steps))
        return torch.from_numpy(np.stack(rows)).to(batch["x"].device)

    # -- evaluation -------------------------------------------------------------------------
    def decode(self, memory: dict[str, torch.Tensor], batch_size: int, beam: int) -> list[Hypothesis]:
        """Free-running captions from the image alone (the references are never fed in)."""
        ev, m = self.recipe.eval, self.model
        max_len = ev.max_len or int(self.meta["max_len"])
        if beam == 1:
            return greedy(m, memory, batch_size, m.bos, m.eos, max_len)
        return beam_search(m, memory, batch_size, m.bos, m.eos, beam, max_len, ev.alpha)

    def words(self, tokens: list[int]) -> list[str]:
        return [self.itos[t] for t in tokens]

    def predict_rows(self, batch: dict[str, torch.Tensor], split: str, *, final: bool = True) -> list[dict[str, Any]]:
        memory = self.model.encode(batch["x"])
        nll = self.model.nll(select(memory, batch["cap_img"]), batch["tok_in"], batch["tok_out"])  # (N,)
        ntok = (batch["tok_out"] != self.model.pad).sum(1)  # (N,)
        per_img_nll = torch.zeros(len(batch["ids"])).index_add_(0, batch["cap_img"], nll.float().cpu())
        per_img_tok = torch.zeros(len(batch["ids"]), dtype=torch.long).index_add_(0, batch["cap_img"], ntok.cpu())
        beam = self.recipe.eval.beam if final else self.recipe.eval.val_beam
        hyps = self.decode(memory, len(batch["ids"]), beam)
        ds = self.data.dataset(split)
        rows = []
        for i, hyp in enumerate(hyps):
            idx = int(batch["ids"][i])
            item = ds.items[idx]
            words = self.words(hyp.tokens)
            row: dict[str, Any] = {
                "id": idx,
                "image": item.get("file", idx),
                "hyp": " ".join(words),
                "refs": item["refs"],
                "nll": float(per_img_nll[i]),
                "ntok": int(per_img_tok[i]),
            }
            if "boxes" in item:  # digit canvases
                objects = digit_objects(item["boxes"])
                # does the caption name exactly the digits there are?
                row["digits_ok"] = sorted(w for w in words if w in DIGIT_WORDS) == sorted(n for n, _ in objects)
                if hyp.attn is not None and self.model.grid is not None:
                    alphas, hw = hyp.attn.numpy(), tuple(self.meta["input_shape"][-2:])
                    row["attn_correct"] = word_correctness(words, alphas, objects, self.model.grid, hw)
                    # the same score for the map one word earlier: attention reading the digit ahead of naming it
                    row["attn_correct_prev"] = word_correctness(words, alphas, objects, self.model.grid, hw, lead=1)
            if "events" in item:  # moving digits: are both motions named, in order?
                row["motion_ok"] = [w for w in words if w in MOTIONS] == [e[1] for e in item["events"]]
            if "segments" in item and hyp.attn is not None and self.model.grid is None:
                row["temporal_correct"] = segment_correctness(words, hyp.attn.numpy(), item["segments"], MOTIONS)
            rows.append(row)
        return rows

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        metrics = caption_metrics(rows, final=final, meteor=final and self.recipe.eval.meteor)
        ev = self.recipe.eval
        beam = ev.beam if final else ev.val_beam
        java = java_available()
        self.metrics_info = {
            "decoding": "free-running, " + ("greedy" if beam == 1 else f"beam {beam}"),
            "scorer": ("pycocoevalcap, PTB tokenizer, all references" if java else NO_JAVA_SCORER)
            if final
            else "pycocoevalcap without PTB tokenizer or METEOR (validation)",
        }
        if final and ev.meteor and "meteor" not in metrics:
            # said in the printed table and the record, not only in a warning that scrolls away (docs/caption.md)
            self.metrics_info["meteor"] = "n/a (no Java)" if not java else "n/a (METEOR timed out)"
        return metrics

    def save_predictions(self, rows: list[dict[str, Any]], out: Path) -> None:
        """predictions.jsonl (ids, hypothesis, references, per-word attention correctness) and
        captions.json in the COCO results format ({"image_id", "caption"})."""
        write_jsonl(out / "predictions.jsonl", rows)
        write_json(out / "captions.json", [{"image_id": r["image"], "caption": r["hyp"]} for r in rows])


def caption_metrics(rows: list[dict[str, Any]], *, final: bool = True, meteor: bool = True) -> dict[str, float]:
    """Metrics of prediction rows (pure: what ``attn eval`` records recomputes from predictions.jsonl).

    ``final``: PTB-tokenised pycocoevalcap scores; else whitespace tokens (validation).
    """
    hyps = {r["id"]: r["hyp"] for r in rows}
    refs = {r["id"]: r["refs"] for r in rows}
    metrics = caption_scores(hyps, refs, tokenize=final, meteor=meteor)
    metrics["ppl"] = perplexity(sum(r["nll"] for r in rows), sum(r["ntok"] for r in rows))
    for key, name in (("motion_ok", "motion_acc"), ("digits_ok", "digit_acc")):
        hits = [r[key] for r in rows if key in r]
        if hits:
            metrics[name] = float(np.mean(hits))
    for key, count in (
        ("attn_correct", "attn_words"),
        ("attn_correct_prev", "attn_words_prev"),
        ("temporal_correct", "temporal_words"),
    ):
        scores = [s for r in rows for s in r.get(key, [])]
        if scores:
            metrics[key] = float(np.mean(scores))
            metrics[count] = float(len(scores))
    return metrics


class CaptionTask(Task):
    name = "caption"
    summary = "image and video captioning: Show and Tell, Show-Attend-Tell soft/hard, temporal attention"
    data_config = CaptionDataConfig
    eval_config = CaptionEvalConfig
    module_class = CaptionModule
    metric_units = {
        "bleu1": "BLEU-1 (pycocoevalcap, 0-1)",
        "bleu2": "BLEU-2 (0-1)",
        "bleu3": "BLEU-3 (0-1)",
        "bleu4": "BLEU-4 (0-1)",
        "meteor": "METEOR (0-1)",
        "rouge_l": "ROUGE-L (0-1)",
        "cider": "CIDEr",
        "ppl": "perplexity per word of the references (EOS included)",
        "attn_correct": "share of attention mass inside the named digit's box (0-1)",
        "attn_words": "digit words scored for attention correctness",
        "attn_correct_prev": "the same for the attention map one step before each digit word (0-1)",
        "attn_words_prev": "digit words with a step before them",
        "motion_acc": "share of videos whose caption names both motions correctly, in order (0-1)",
        "digit_acc": "share of canvases whose caption names exactly their digits, as a multiset (0-1)",
        "temporal_correct": "share of frame attention inside the segment a motion word describes (0-1)",
        "temporal_words": "motion words scored for temporal attention correctness",
    }

    def datamodule(self, recipe: Recipe, data_dir: Path) -> CaptionDataModule:
        t = recipe.train
        return CaptionDataModule(recipe.data, data_dir, t.batch_size, t.seed, t.num_workers)

    def visualize(self, module: AttnModule, dm: Any, split: str, n: int, out_dir: Path) -> list[Path]:
        """Per-word attention maps over the image (Xu et al. Fig. 2-3), or frame-attention strips (video),
        of the first ``n`` inputs of ``split`` as the recipe's beam captions them (:mod:`attn_cli.viz.caption`)."""
        from attn_cli.viz.caption import attention_pictures

        model = module.model
        if model.attention_kind() in ("none", "mean"):
            raise AttnError(
                f"{module.recipe.name} ({model.attention_kind()} context) has no attention to draw; "
                "visualise a sat or video-temporal run"
            )
        ds = dm.dataset(split)
        batch = collate([{"id": i, "x": ds.x[i], "caps": ds.items[i]["tokens"][:1]} for i in range(min(n, len(ds)))])
        module.eval()
        with torch.no_grad():
            memory = model.encode(batch["x"])
            hyps = module.decode(memory, len(batch["ids"]), module.recipe.eval.beam)
        title = f"{module.recipe.name} ({model.attention_kind()} attention)"
        words = [module.words(hyp.tokens) for hyp in hyps]
        return attention_pictures(model, batch["x"], words, [h.attn for h in hyps], out_dir, split=split, title=title)


TASKS.add("caption", CaptionTask())
