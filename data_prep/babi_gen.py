"""The embedded bAbI-style task (no download): task-1-like "where is X?" stories, generated here.

Each story has 2-9 statements "<person> <verb> to the <place>"; each question asks where a
person is, answered by their latest move (the single supporting fact), as in bAbI task 1.
Written in the same prepared format as :mod:`data_prep.babi` (task number 1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_prep.babi import write_prepared
from data_prep.base import DATASETS, DatasetSpec

PEOPLE = ("mary", "john", "sandra", "daniel")
PLACES = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
VERBS = (("moved",), ("went",), ("journeyed",), ("travelled",), ("went", "back"))


@dataclass(frozen=True)
class BabiGenConfig:
    train: int = 600
    val: int = 100
    test: int = 200
    seed: int = 7


def generate(n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    while len(out) < n:
        story: list[list[str]] = []
        where: dict[str, int] = {}
        for _ in range(rng.randint(2, 9)):
            who = rng.choice(PEOPLE)
            where[who] = len(story)
            story.append([who, *rng.choice(VERBS), "to", "the", rng.choice(PLACES)])
        who = rng.choice(sorted(where))
        fact = where[who]
        out.append(
            {
                "story": story,
                "question": ["where", "is", who],
                "answer": story[fact][-1],
                "supporting": [fact],
                "task": 1,
            }
        )
    return out


def build_gen(cfg: BabiGenConfig, source: Path | None, out: Path) -> dict[str, Any]:
    rng = random.Random(cfg.seed)
    splits = {s: generate(getattr(cfg, s), rng) for s in ("train", "val", "test")}
    return {**write_prepared({1: splits}, out), "note": "generated task-1-like stories"}


DATASETS.add(
    "babi-gen",
    DatasetSpec(
        name="babi-gen",
        task="memory",
        summary="generated bAbI-task-1-like stories (the offline default for the memory family)",
        Config=BabiGenConfig,
        build=build_gen,
        default_name=lambda cfg: "babi-gen",
        needs_source=False,
    ),
)
