"""Cloze reading comprehension (Hermann et al., NeurIPS 2015): DeepMind's CNN/Daily Mail files and a cloze
set built here from Multi30k's description task.

**DeepMind question files** (``attn prepare cloze-cnn --source DIR``, DIR holding
``training/``, ``validation/``, ``test/`` of ``*.question`` files): each file is, separated by
blank lines, the URL, the context, the question with ``@placeholder``, the answer (an
``@entityN``), then ``@entityN:Name`` lines (the entity map). Text is already anonymised.

**Multi30k cloze** (``attn prepare cloze-multi30k --source ../shared/data/multi30k/task2``):
every Flickr30k image has five independent English captions. For each image and each
caption chosen as the question (``questions_per_image`` of the five), the other four form
the document; one noun the question shares with the document becomes ``@placeholder`` and
is the answer. Every noun of the example is anonymised as ``@entityN``, with the numbers
permuted per example (Hermann et al. §3), so the answer can only be found by reading.

Nouns: there is no tagger offline, so a word counts as a noun when it is not a function
word, not an -ing/-ly form, seen at least ``min_noun_count`` times in the training
captions, and followed by a function word or the end of the caption in at least half of
its occurrences (heads of noun phrases: "a *dog* runs in the *park*"). This is a heuristic
and says so in the manifest.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attn_cli.errors import AttnError
from attn_cli.io import read_text_lines, write_json, write_jsonl
from data_prep.base import DATASETS, DatasetSpec

PLACEHOLDER = "@placeholder"
_FUNCTION_TEXT = (
    "a an the and or but of in on at to for from with by over under into onto near while as is are was were be "
    "being been his her their its this that these those some one two three four five several many other another "
    "who which what there here he she they it him them up down out off through across along around behind next "
    "front top side each all both very has have had do does not no while during"
)
FUNCTION_WORDS = set(_FUNCTION_TEXT.split())
_TOKEN = re.compile(r"[a-z0-9@']+|[.,!?;]")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def parse_question_file(text: str, where: str = "<question>") -> dict[str, Any]:
    """A DeepMind ``.question`` file -> {url, context, question, answer, entities}; clear errors otherwise."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.strip())]
    if len(blocks) < 4:
        raise AttnError(
            f"{where}: expected URL, context, question, answer and an entity map separated by blank lines; "
            f"found {len(blocks)} block(s)"
        )
    url, context, question, answer = blocks[:4]
    if PLACEHOLDER not in question:
        raise AttnError(f"{where}: the question has no {PLACEHOLDER}")
    if not re.fullmatch(r"@entity\d+", answer):
        raise AttnError(f"{where}: the answer {answer[:30]!r} is not an @entityN marker")
    entities = {}
    for line in "\n".join(blocks[4:]).splitlines():
        key, sep, name = line.partition(":")
        if not sep or not key.startswith("@entity"):
            raise AttnError(f"{where}: bad entity-map line {line[:40]!r}; expected '@entityN:Name'")
        entities[key] = name
    if answer not in context.split():
        raise AttnError(f"{where}: the answer {answer} does not occur in the context")
    return {"url": url, "doc": context.split(), "question": question.split(), "answer": answer, "entities": entities}


def noun_set(captions: list[list[str]], min_count: int) -> set[str]:
    count: Counter[str] = Counter()
    head: Counter[str] = Counter()
    for toks in captions:
        for i, w in enumerate(toks):
            count[w] += 1
            nxt = toks[i + 1] if i + 1 < len(toks) else "."
            if nxt in FUNCTION_WORDS or not nxt.isalpha():
                head[w] += 1
    return {
        w
        for w, c in count.items()
        if c >= min_count
        and w.isalpha()
        and len(w) > 2
        and w not in FUNCTION_WORDS
        and not w.endswith(("ing", "ly"))
        and head[w] >= 0.5 * c
    }


def make_cloze(
    captions: list[list[str]], q_index: int, nouns: set[str], rng: random.Random, max_entities: int
) -> dict[str, Any] | None:
    """One cloze example from an image's captions, or None when the question shares no noun with the document."""
    question = captions[q_index]
    doc_caps = [c for i, c in enumerate(captions) if i != q_index]
    doc_words = {w for c in doc_caps for w in c}
    # a noun that occurs once in the question, so the query has exactly one @placeholder
    shared = sorted({w for w in question if w in nouns and w in doc_words and question.count(w) == 1})
    if not shared:
        return None
    answer = rng.choice(shared)
    ents = sorted({w for c in captions for w in c if w in nouns})[:max_entities]
    if answer not in ents:
        ents = [*ents[: max_entities - 1], answer]
    numbers = rng.sample(range(max_entities), len(ents))  # permuted per example
    marker = {w: f"@entity{n}" for w, n in zip(ents, numbers)}
    doc = [marker.get(w, w) for c in doc_caps for w in c]
    q = [PLACEHOLDER if w == answer else marker.get(w, w) for w in question]
    return {"doc": doc, "question": q, "answer": marker[answer], "entities": {v: k for k, v in marker.items()}}


@dataclass(frozen=True)
class ClozeConfig:
    questions_per_image: int = 2  # Multi30k: how many of the 5 captions become a question
    max_entities: int = 40  # entity markers @entity0..@entity{max-1}
    min_noun_count: int = 5
    seed: int = 3


def write_cloze(splits: dict[str, list[dict]], out: Path, max_entities: int) -> dict[str, Any]:
    words: set[str] = set()
    for rows in splits.values():
        for r in rows:
            words.update(r["doc"])
            words.update(r["question"])
    entity_markers = [f"@entity{i}" for i in range(max_entities)]
    vocab = ["<pad>", "<unk>", "|||", PLACEHOLDER, *entity_markers]
    vocab += sorted(words - set(vocab))
    for split, rows in splits.items():
        write_jsonl(out / f"{split}.jsonl", [{"id": i, **r} for i, r in enumerate(rows)])
    write_json(out / "vocab.json", {"words": vocab, "entities": max_entities})
    return {"counts": {s: len(r) for s, r in splits.items()}, "vocab": {"words": len(vocab), "entities": max_entities}}


def build_multi30k_cloze(cfg: ClozeConfig, source: Path | None, out: Path) -> dict[str, Any]:
    if source is None:
        raise AttnError("cloze-multi30k needs --source ../shared/data/multi30k/task2")
    raw = source / "raw" if (source / "raw").is_dir() else source
    splits_in = {}
    for split, stem in (("train", "train"), ("val", "val"), ("test", "test_2016")):
        caps = []
        for k in range(1, 6):
            path = raw / f"{stem}.{k}.en.gz"
            if not path.is_file():
                raise AttnError(f"{path} is missing; --source must be Multi30k's task2 folder (raw/{stem}.1-5.en.gz)")
            caps.append([tokenize(line) for line in read_text_lines(path)])
        if len({len(c) for c in caps}) != 1:
            raise AttnError(f"{raw}/{stem}.1-5.en.gz have different line counts; the files do not belong together")
        splits_in[split] = list(zip(*caps))
    nouns = noun_set([c for img in splits_in["train"] for c in img], cfg.min_noun_count)
    rng = random.Random(cfg.seed)
    splits: dict[str, list[dict]] = {}
    for split, images in splits_in.items():
        rows = []
        for i, caps in enumerate(images):
            for q in rng.sample(range(5), cfg.questions_per_image):
                ex = make_cloze(list(caps), q, nouns, rng, cfg.max_entities)
                if ex is not None:
                    rows.append({**ex, "image": i})
        splits[split] = rows
    facts = write_cloze(splits, out, cfg.max_entities)
    return {**facts, "nouns": len(nouns), "note": "nouns by the head-of-phrase heuristic (see data_prep/cloze.py)"}


def build_cnn(cfg: ClozeConfig, source: Path | None, out: Path) -> dict[str, Any]:
    if source is None:
        raise AttnError("cloze-cnn needs --source DIR holding training/, validation/ and test/ *.question files")
    splits = {}
    for split, folder in (("train", "training"), ("val", "validation"), ("test", "test")):
        files = sorted((source / folder).glob("*.question"))
        if not files:
            raise AttnError(f"{source / folder} has no *.question files; point --source at DeepMind's questions/ dir")
        rows = []
        for path in files:
            ex = parse_question_file(path.read_text(encoding="utf-8"), str(path))
            rows.append({k: ex[k] for k in ("doc", "question", "answer", "entities")} | {"url": ex["url"]})
        splits[split] = rows
    n_ent = 1 + max(int(e[7:]) for rows in splits.values() for r in rows for e in r["entities"])
    return write_cloze(splits, out, max(n_ent, cfg.max_entities))


DATASETS.add(
    "cloze-multi30k",
    DatasetSpec(
        name="cloze-multi30k",
        task="reader",
        summary="cloze QA built from Multi30k's 5 captions per image: 4 are the document, 1 the @placeholder question",
        Config=ClozeConfig,
        build=build_multi30k_cloze,
        default_name=lambda cfg: "cloze-multi30k",
    ),
)
DATASETS.add(
    "cloze-cnn",
    DatasetSpec(
        name="cloze-cnn",
        task="reader",
        summary="DeepMind CNN/Daily Mail cloze questions (Hermann et al. 2015) from their .question files",
        Config=ClozeConfig,
        build=build_cnn,
        default_name=lambda cfg: "cloze-cnn",
    ),
)


GEN_NOUNS = ("dog", "man", "woman", "child", "ball", "park", "street", "beach", "bike", "car", "horse", "field")
GEN_VERBS = ("runs", "sits", "plays", "walks", "stands")
GEN_ADJ = ("small", "young", "red", "old", "happy")


@dataclass(frozen=True)
class ClozeGenConfig:
    train: int = 400
    val: int = 80
    test: int = 80
    max_entities: int = 12
    seed: int = 5


def build_cloze_gen(cfg: ClozeGenConfig, source: Path | None, out: Path) -> dict[str, Any]:
    """Generated "images": two nouns, five template captions about them; the same cloze construction."""
    rng = random.Random(cfg.seed)
    splits = {}
    for split in ("train", "val", "test"):
        rows: list[dict] = []
        while len(rows) < getattr(cfg, split):
            subj, place = rng.sample(GEN_NOUNS, 2)
            caps = [["a", rng.choice(GEN_ADJ), subj, rng.choice(GEN_VERBS), "in", "the", place, "."] for _ in range(5)]
            ex = make_cloze(caps, rng.randrange(5), set(GEN_NOUNS), rng, cfg.max_entities)
            if ex is not None:
                rows.append(ex)
        splits[split] = rows
    return {**write_cloze(splits, out, cfg.max_entities), "note": "generated template captions"}


DATASETS.add(
    "cloze-gen",
    DatasetSpec(
        name="cloze-gen",
        task="reader",
        summary="generated template captions turned into cloze questions (the offline default for the readers)",
        Config=ClozeGenConfig,
        build=build_cloze_gen,
        default_name=lambda cfg: "cloze-gen",
        needs_source=False,
    ),
)
