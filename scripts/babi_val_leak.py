"""How much bAbI validation leaks from training under a question-level split, and what it did to a run.

bAbI stories carry several questions; each question's example holds its story so far. The split used until
2026-12-06 (kept below as :func:`question_split`, a copy of the old ``data_prep.babi.split_val``) held out
10% of the *questions*, so most held-out questions shared their story with training questions, often with
the same question and answer (qa2 asks "where is the football?" twice while nothing moves). The story
split (:func:`data_prep.babi.split_val`) holds out whole stories, as bAbI's own ``en-valid`` does.

For each task, from the official archive: held-out questions whose story also trains, and those with a
training *twin* (same story, same question, same answer), under both splits. With ``--predictions`` (a
run's ``eval/val/predictions.jsonl`` made on the old split) and ``--task N``: that run's validation error
on questions with and without a twin.

    python scripts/babi_val_leak.py ../shared/data/babi/tasks_1-20_v1-2.tar.gz [--predictions P --task N]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from data_prep.babi import BabiConfig, _reader, _task_file, parse_stories, split_val


def question_split(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """The pre-2026-12-06 split: 10% of the questions at random, whatever their story."""
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    val = set(idx[: int(round(fraction * len(rows)))])
    return [r for i, r in enumerate(rows) if i not in val], [r for i, r in enumerate(rows) if i in val]


def leaks(train: list[dict[str, Any]], val: list[dict[str, Any]]) -> tuple[list[bool], list[bool]]:
    """Per validation question: (its story also trains, a training question of that story is its twin)."""
    by_story: dict[int, list[dict[str, Any]]] = {}
    for r in train:
        by_story.setdefault(r["story_id"], []).append(r)
    shared = [r["story_id"] in by_story for r in val]
    twin = [
        any(t["question"] == r["question"] and t["answer"] == r["answer"] for t in by_story.get(r["story_id"], []))
        for r in val
    ]
    return shared, twin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="tasks_1-20_v1-2.tar.gz (or its folder)")
    ap.add_argument("--predictions", type=Path, help="a run's eval/val/predictions.jsonl, made on the old split")
    ap.add_argument("--task", type=int, help="the task of --predictions (a run on one task)")
    args = ap.parse_args()
    cfg = BabiConfig()
    read, _ = _reader(args.source)
    print(
        "| task | val questions (old / story split) | story also trains (old / story) | twin in train (old / story) |"
    )
    print("| --- | --- | --- | --- |")
    for n in range(1, 21):
        name = _task_file("en", n, "train")
        rows = parse_stories(read(name), name, n)
        old_train, old_val = question_split(rows, cfg.val_fraction, cfg.seed + n)
        new_train, new_val = split_val(rows, cfg.val_fraction, cfg.seed + n)
        (s_old, t_old), (s_new, t_new) = leaks(old_train, old_val), leaks(new_train, new_val)
        print(f"| {n} | {len(old_val)} / {len(new_val)} | {sum(s_old)} / {sum(s_new)} | {sum(t_old)} / {sum(t_new)} |")
        if args.predictions and args.task == n:
            preds = [json.loads(line) for line in args.predictions.read_text(encoding="utf-8").splitlines()]
            correct = {int(p["id"]): bool(p["correct"]) for p in preds}
            for label, pick in (("with a training twin", True), ("without one", False)):
                got = [correct[i] for i, t in enumerate(t_old) if t == pick]
                err = 100 * (1 - sum(got) / len(got)) if got else float("nan")
                print(f"  qa{n} run, validation questions {label}: {len(got)}, error {err:.1f}%")


if __name__ == "__main__":
    main()
