"""Which recorded runs trained under the old plateau-schedule stepping, and did it change their learning rate?

Until commit e106549 Lightning stepped ``ReduceLROnPlateau`` at each epoch end on the latest logged validation
score. With step-based validation (``train.val_every_steps``) an epoch end with no validation since the last one
counted the same score again (*stale*), and of several validations within one epoch only the last was seen
(*skipped*). This script lists every record whose recipe says ``lr_schedule: plateau``, counts stale and skipped
validations from the epoch length and validation interval, and, where the record keeps its learning curve,
compares the rate cuts it logged with those of a schedule stepped once per validation replayed on the logged
validation scores (exact up to the first cut where the two differ: after it the run itself would have differed).

    python scripts/plateau_audit.py [results]   # a Markdown report on stdout
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from attn_cli.io import read_curve, read_json


def epoch_length(rec: dict[str, Any], curve: list[dict[str, str]]) -> int | None:
    """Training batches per epoch: from the curve's epoch-start learning-rate rows, else exact when the run
    stopped at its ``max_epochs`` on an epoch boundary (``steps / epochs``)."""
    starts = sorted({int(r["step"]) for r in curve if any(k.startswith("lr-") and v for k, v in r.items())} - {0})
    if starts:
        return starts[0]
    budget = rec.get("budget", {})
    if budget.get("max_epochs") == rec.get("epochs") and budget.get("max_steps", -1) == -1:
        return int(rec["steps"]) // int(rec["epochs"])
    return None


def old_stepping(steps: int, every: int, length: int) -> tuple[int, int, int]:
    """(epoch-end steps taken, stale ones, validations never stepped on) under the old stepping."""
    taken = stale = 0
    last_seen = 0
    seen: set[int] = set()
    for end in range(length, steps + 1, length):
        latest = end // every  # the number of validations run by this epoch end
        if latest == 0:
            continue  # no score yet: Lightning skipped the step (strict=False)
        taken += 1
        stale += latest == last_seen
        seen.add(latest)
        last_seen = latest
    last_end = (steps // length) * length
    skipped = sum(1 for v in range(1, last_end // every + 1) if v not in seen)
    return taken, stale, skipped


def replayed_cuts(train: dict[str, Any], scores: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The (step, new rate) cuts of a ReduceLROnPlateau stepped once on each of ``scores``."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=float(train["lr"]))
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        mode=train["monitor_mode"],
        factor=float(train.get("lr_decay", 0.5)),
        patience=int(train.get("lr_patience", 1)),
        min_lr=float(train.get("min_lr", 0.0)),
    )
    cuts = []
    for step, score in scores:
        before = opt.param_groups[0]["lr"]
        sched.step(score)
        if not math.isclose(opt.param_groups[0]["lr"], before):
            cuts.append((step, opt.param_groups[0]["lr"]))
    return cuts


def _cuts(cuts: list[tuple[int, float]]) -> str:
    return ", ".join(f"{s:,}: {lr:.3g}" for s, lr in cuts) or "none"


def main(root: Path) -> None:
    print("| record | sha | updates | batches/epoch | val every | epoch-end steps (stale, skipped) | "
          "rate cuts logged (step: lr) | once per validation, replayed |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    lengths: dict[tuple[str, int], int] = {}  # (dataset, batch size) -> batches per epoch, for curve-less records
    records = []
    for recipe_file in sorted(root.glob("*/*/*/recipe.yaml")):
        train = yaml.safe_load(recipe_file.read_text())["train"]
        if train.get("lr_schedule") != "plateau":
            continue
        rec = read_json(recipe_file.parent / "result.json")
        curve = read_curve(recipe_file.parent)
        length = epoch_length(rec, curve)
        if length:
            lengths[(rec["dataset"], int(train["batch_size"]))] = length
        records.append((recipe_file.parent, train, rec, curve, length))
    for folder, train, rec, curve, length in records:
        length = length or lengths.get((rec["dataset"], int(train["batch_size"])))
        every, steps = train.get("val_every_steps"), int(rec["steps"])
        if every and length:
            taken, stale, skipped = old_stepping(steps, int(every), length)
            stepping = f"{taken} ({stale}, {skipped})"
        else:
            stepping = "once per epoch: unaffected" if not every else "epoch length unknown"
        monitor = train["monitor"]
        scores = [(int(r["step"]), float(r[monitor])) for r in curve if r.get(monitor)]
        lr_rows = [(int(r["step"]), float(v)) for r in curve for k, v in r.items() if k.startswith("lr-") and v]
        logged = [(s, lr) for (s, lr), (_, before) in zip(lr_rows[1:], lr_rows) if not math.isclose(lr, before)]
        replay = _cuts(replayed_cuts(train, scores)) if scores else "no learning curve recorded"
        print(
            f"| {folder.relative_to(root)} | {rec['git_sha'][:9]} | {steps:,} | {length or '?'} | {every or 'epoch'} "
            f"| {stepping} | {_cuts(logged) if curve else '–'} | {replay} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
