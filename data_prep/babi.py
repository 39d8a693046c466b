"""bAbI v1.2 (Weston et al. 2015): the 20 QA tasks, 1k and 10k, parsed into stories with supporting facts.

Reads the official archive ``tasks_1-20_v1-2.tar.gz`` (or its extracted folder) from
``--source``, else downloads it when online. Layout used: ``tasks_1-20_v1-2/en`` (1k) and
``en-10k`` (10k); ``en-valid*`` are the same data pre-split and are not needed, because we
hold out 10% of each task's training questions ourselves, as Sukhbaatar et al. (2015) did.

File format: every line is ``ID text``; IDs restart at 1 when a new story starts; a
question line is ``ID question?<TAB>answer<TAB>supporting ids``. Each question becomes one
example holding the statements of its story *so far* (questions are not memories), the
question, the answer, the supporting facts as indices into those statements and the number
of its story in the file (``story_id``).

Validation holds out whole stories (:func:`split_val`), as bAbI's own ``en-valid`` split does:
a story's questions share its statements, and often ask the same thing with the same answer
(qa2: "where is the football?" twice, nothing moved in between), so a held-out question whose
story trained in other questions is partly a training question. Until 2026-12-06 the split
drew questions; on the DMN's qa2 run 74 of its 100 validation questions had a training
question of the same story with the same words and answer (13.5% validation error on those,
61.5% on the other 26, 64.5% on test): validation said 26% where test said 64.5%.

Output: ``qa{N}/{train,val,test}.jsonl`` for each task and ``vocab.json``. Options
(``--set``): ``size=1k|10k``, ``tasks=all|1,2,4-20``, ``val_fraction``, ``seed``.
A missing task file is an error naming the file; ``--tasks ...`` (or ``--set tasks=...``) without that task
carries on with the others (our copy of the 10k set lacks ``qa3`` train).
"""

from __future__ import annotations

import random
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from attn_cli.data.babi_tasks import TASK_NAMES, format_tasks, parse_tasks
from attn_cli.errors import AttnError
from attn_cli.io import write_json, write_jsonl
from data_prep.base import DATASETS, DatasetSpec, RawFile

ARCHIVE = "tasks_1-20_v1-2.tar.gz"
URL = "http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz"
_LINE = re.compile(r"^(\d+) (.*)$")


def tokenize(text: str) -> list[str]:
    """Lower-cased words, punctuation dropped ("Where is Mary?" -> where is mary)."""
    return [w for w in re.split(r"[^a-z0-9,']+", text.lower().replace(",", " ")) if w]


def parse_stories(lines: list[str], where: str = "<text>", task: int = 0) -> list[dict[str, Any]]:
    """Parse bAbI lines into question examples (see the module docstring).

    Each example: ``story`` (list of token lists), ``question`` (tokens), ``answer`` (str;
    "n,s" for multi-word answers), ``supporting`` (indices into ``story``), ``task``,
    ``story_id`` (0 for the file's first story, counting every story, with questions or not).
    """
    examples: list[dict[str, Any]] = []
    story: list[list[str]] = []
    line_to_story: dict[int, int] = {}  # file line id -> index in ``story``
    prev_id = 0
    story_id = -1
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        m = _LINE.match(raw.strip("\n"))
        if m is None:
            raise AttnError(f"{where}:{lineno}: malformed line {raw[:40]!r}; every line must start with 'ID '")
        line_id, text = int(m.group(1)), m.group(2)
        if line_id == 1 or line_id <= prev_id:
            story, line_to_story = [], {}  # ids restart: a new story
            story_id += 1
        prev_id = line_id
        if "\t" in text:
            parts = text.split("\t")
            question, answer = parts[0], parts[1].strip() if len(parts) > 1 else ""
            if not answer:
                raise AttnError(f"{where}:{lineno}: question {question.strip()!r} has no answer after the tab")
            support = []
            for s in (parts[2] if len(parts) > 2 else "").split():
                if not s.isdigit() or int(s) not in line_to_story:
                    raise AttnError(f"{where}:{lineno}: supporting fact {s!r} is not a statement of this story")
                support.append(line_to_story[int(s)])
            examples.append(
                {
                    "story": [list(s) for s in story],
                    "question": tokenize(question),
                    "answer": answer.lower(),
                    "supporting": support,
                    "task": task,
                    "story_id": story_id,
                }
            )
        elif text.rstrip().endswith("?"):
            raise AttnError(f"{where}:{lineno}: question {text.strip()!r} has no answer (expected '?<TAB>answer')")
        else:
            line_to_story[line_id] = len(story)
            story.append(tokenize(text))
    return examples


@dataclass(frozen=True)
class BabiConfig:
    size: Literal["1k", "10k"] = "1k"
    tasks: str = "all"  # "all" or e.g. "1,2,4-20"
    val_fraction: float = 0.1  # held out of each task's training questions (Sukhbaatar et al. §4.2)
    seed: int = 1


def _decode(data: bytes, where: str) -> list[str]:
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise AttnError(f"{where} is not UTF-8 text (byte {err.start}); use the official bAbI files") from err


def _reader(source: Path) -> tuple[Any, list[str]]:
    """(read(name) -> lines | None, all member names) for an archive or an extracted folder."""
    if source.is_file():
        try:
            tar = tarfile.open(source)  # noqa: SIM115 - stays open for read() below
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as err:
            raise AttnError(f"{source} is not a readable bAbI archive ({err}); download it again") from err
        # members are only read, never extracted; still, an archive naming a path outside itself is not
        # the official one (a traversal attempt, or a broken repack): refuse it whole
        outside = next((n for n in members if n.startswith("/") or ".." in Path(n).parts), None)
        if outside is not None:
            raise AttnError(f"{source} has a member outside the archive ({outside!r}); use the official archive")

        def read(name: str) -> list[str] | None:
            m = members.get(name)  # a cut archive already failed in getmembers() above
            return None if m is None else _decode(tar.extractfile(m).read(), f"{source}:{name}")

        return read, list(members)
    root = source if (source / "tasks_1-20_v1-2").is_dir() else source.parent
    names = [str(p.relative_to(root)) for p in root.rglob("*.txt")]

    def read_dir(name: str) -> list[str] | None:
        p = root / name
        return _decode(p.read_bytes(), str(p)) if p.is_file() else None

    return read_dir, names


def _task_file(folder: str, n: int, split: str) -> str:
    return f"tasks_1-20_v1-2/{folder}/qa{n}_{TASK_NAMES[n]}_{split}.txt"


def write_prepared(per_task: dict[int, dict[str, list[dict]]], out: Path) -> dict[str, Any]:
    """Write ``qa{N}/{split}.jsonl`` and the shared ``vocab.json``; returns manifest facts."""
    words: set[str] = set()
    answers: set[str] = set()
    max_sent, max_story = 0, 0
    for splits in per_task.values():
        for rows in splits.values():
            for ex in rows:
                for s in ex["story"]:
                    words.update(s)
                    max_sent = max(max_sent, len(s))
                words.update(ex["question"])
                answers.add(ex["answer"])
                max_story = max(max_story, len(ex["story"]))
    counts = {}
    for n, splits in sorted(per_task.items()):
        for split, rows in splits.items():
            write_jsonl(out / f"qa{n}" / f"{split}.jsonl", [{"id": i, **ex} for i, ex in enumerate(rows)])
            counts[f"qa{n}/{split}"] = len(rows)
    write_json(out / "vocab.json", {"words": ["<pad>", "<unk>", *sorted(words)], "answers": sorted(answers)})
    return {
        "tasks": sorted(per_task),
        "counts": counts,
        "vocab": {"words": len(words) + 2, "answers": len(answers)},
        "max_sentence_len": max_sent,
        "max_story_len": max_story,
    }


def split_val(
    rows: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, val): whole stories, drawn at random, held out until they hold ``fraction`` of the questions.

    No story has questions on both sides (see the module docstring for why); validation gets at least
    round(fraction · questions), overshooting by less than one story's questions. Order is kept.
    """
    stories = sorted({r["story_id"] for r in rows})
    random.Random(seed).shuffle(stories)
    per_story: dict[int, int] = {}
    for r in rows:
        per_story[r["story_id"]] = per_story.get(r["story_id"], 0) + 1
    target, held, val = int(round(fraction * len(rows))), 0, set()
    for sid in stories:
        if held >= target:
            break
        val.add(sid)
        held += per_story[sid]
    return [r for r in rows if r["story_id"] not in val], [r for r in rows if r["story_id"] in val]


def build_babi(cfg: BabiConfig, source: Path | None, out: Path) -> dict[str, Any]:
    if source is None:
        raise AttnError("bAbI needs --source (the official tasks_1-20_v1-2.tar.gz or its folder)")
    if source.is_dir() and (source / ARCHIVE).is_file():
        source = source / ARCHIVE
    read, _ = _reader(source)
    folder = "en" if cfg.size == "1k" else "en-10k"
    tasks = parse_tasks(cfg.tasks)
    per_task: dict[int, dict[str, list[dict]]] = {}
    for n in tasks:
        parsed = {}
        for split in ("train", "test"):
            name = _task_file(folder, n, split)
            lines = read(name)
            if lines is None:
                rest = format_tasks([t for t in tasks if t != n])
                raise AttnError(
                    f"{source} has no {name}; prepare the other tasks with --tasks {rest}"
                    + (f" --set size={cfg.size}" if cfg.size != "1k" else "")
                )
            parsed[split] = parse_stories(lines, name, n)
        train, val = split_val(parsed["train"], cfg.val_fraction, cfg.seed + n)
        per_task[n] = {"train": train, "val": val, "test": parsed["test"]}
    facts = write_prepared(per_task, out)
    return {
        **facts,
        "size": cfg.size,
        "val_split": "stories",
        "note": f"{folder}; val = whole stories holding {cfg.val_fraction:.0%} of train's questions per task",
    }


DATASETS.add(
    "babi",
    DatasetSpec(
        name="babi",
        task="memory",
        summary="bAbI v1.2 QA tasks 1-20 (Weston et al. 2015), 1k or 10k, whole stories (10% of train) held out to validate",
        Config=BabiConfig,
        build=build_babi,
        default_name=lambda cfg: f"babi-{cfg.size}",
        raw_files=[RawFile(ARCHIVE, URL)],
    ),
)
