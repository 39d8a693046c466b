"""bAbI parsing, the generated tasks, cloze construction and the DeepMind question files."""

from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path

import pytest

from attn_cli import run
from attn_cli.data.babi_tasks import parse_tasks
from attn_cli.errors import AttnError
from data_prep.babi import parse_stories
from data_prep.cloze import PLACEHOLDER, make_cloze, parse_question_file
from tests.conftest import run_cli

TRICKY = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Sandra moved to the garden.
6 Where is Daniel? \thallway\t4
7 John moved to the office.
8 Where is John? \toffice\t7 2
1 Sandra travelled to the office.
2 Where is Sandra? \toffice\t1
1 Mary got the football there.
"""


def test_story_parser_restarting_ids_several_questions_supporting_lists() -> None:
    ex = parse_stories(TRICKY.splitlines(), "tricky.txt", task=2)
    assert len(ex) == 4
    # questions are not memories; the story grows across its questions
    assert ex[0]["story"] == [["mary", "moved", "to", "the", "bathroom"], ["john", "went", "to", "the", "hallway"]]
    assert len(ex[1]["story"]) == 4 and ex[1]["supporting"] == [2]
    # supporting-fact lists map file ids (7, 2) to statement indices, in order
    assert ex[2]["supporting"] == [4, 1] and ex[2]["answer"] == "office" and ex[2]["task"] == 2
    # the ids restart: a fresh story of one statement
    assert ex[3]["story"] == [["sandra", "travelled", "to", "the", "office"]] and ex[3]["supporting"] == [0]
    assert ex[3]["question"] == ["where", "is", "sandra"]


def test_batches_rank_the_supporting_facts_in_babis_order() -> None:
    from attn_cli.data.memory import BabiDataset, collate_babi

    ex = parse_stories(TRICKY.splitlines(), "tricky.txt", task=2)
    words = {w: i for i, w in enumerate(["<pad>", "<unk>"] + sorted({t for e in ex for s in e["story"] for t in s}))}
    answers = {a: i for i, a in enumerate(sorted({e["answer"] for e in ex}))}
    batch = collate_babi([BabiDataset(ex, words, answers, mem=5)[i] for i in (1, 2)])
    # "where is John?": statement 4 first, then statement 1 (the DMN's passes 1 and 2)
    assert batch["supporting"].tolist() == [[0, 0, 1, 0, 0], [0, 2, 0, 0, 1]]
    # three kept memories: statement 1 (John's 2nd fact) is out of memory and has no slot; the 1st keeps rank 1
    batch = collate_babi([BabiDataset(ex, words, answers, mem=3)[2]])
    assert batch["supporting"].tolist() == [[0, 0, 1]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Mary moved to the bathroom.\n", "malformed line"),
        ("1 Mary moved.\n2 Where is Mary?\n", "has no answer"),
        ("1 Mary moved.\n2 Where is Mary? \t\t1\n", "has no answer"),
        ("1 Mary moved.\n2 Where is Mary? \tgarden\t5\n", "supporting fact '5'"),
    ],
)
def test_story_parser_errors(text: str, message: str) -> None:
    with pytest.raises(AttnError, match=message):
        parse_stories(text.splitlines(), "bad.txt")


def test_task_lists() -> None:
    from attn_cli.data.babi_tasks import format_tasks

    assert format_tasks([1, 2, 4, 5, 6, 20]) == "1-2,4-6,20" and parse_tasks("1-2,4-6,20") == [1, 2, 4, 5, 6, 20]
    assert parse_tasks("all") == list(range(1, 21))
    assert parse_tasks("1,2,4-6") == [1, 2, 4, 5, 6]
    with pytest.raises(AttnError, match="unknown bAbI task 21"):
        parse_tasks("3,21")
    with pytest.raises(AttnError, match="bad task list"):
        parse_tasks("one")


def _archive(tmp_path: Path, missing: str | None = None) -> Path:
    from attn_cli.data.babi_tasks import TASK_NAMES

    path = tmp_path / "tasks_1-20_v1-2.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for n in (1, 3):
            for split in ("train", "test"):
                name = f"tasks_1-20_v1-2/en-10k/qa{n}_{TASK_NAMES[n]}_{split}.txt"
                if name.endswith(missing or "-"):
                    continue
                data = (TRICKY * 3).encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_missing_task_file_is_named_and_other_tasks_carry_on(tmp_path: Path) -> None:
    src = _archive(tmp_path, missing="qa3_three-supporting-facts_train.txt")
    with pytest.raises(
        AttnError, match=r"no tasks_1-20_v1-2/en-10k/qa3_three-supporting-facts_train.txt.*--tasks 1 --set size=10k"
    ):
        run.prepare("babi", source=src, data_dir=tmp_path / "data", overrides=["size=10k", "tasks=1,3"])
    out = run.prepare("babi", source=src, data_dir=tmp_path / "data", overrides=["size=10k", "tasks=1"])
    assert (out / "qa1" / "train.jsonl").is_file() and not (out / "qa3").exists()
    code, _, err = run_cli(
        "--data-dir", str(tmp_path / "d2"), "prepare", "babi", "--source", str(src), "--set", "tasks=22"
    )
    assert code == 2 and "unknown bAbI task 22" in err
    # the --tasks option is the same as --set tasks=...
    code, _, err = run_cli(
        "--data-dir", str(tmp_path / "d3"), "prepare", "babi", "--source", str(src), "--set", "size=10k", "--tasks", "1"
    )
    assert code == 0, err
    assert (tmp_path / "d3").is_dir() and list((tmp_path / "d3").glob("*/qa1/train.jsonl"))


def test_prepare_options_that_do_not_apply_are_refused(tmp_path: Path) -> None:
    code, _, err = run_cli("--data-dir", str(tmp_path), "prepare", "toy-reorder", "--tasks", "1")
    assert code == 2 and "--tasks does not apply to dataset toy-reorder" in err


def test_an_extracted_folder_works_like_the_archive(tmp_path: Path) -> None:
    with tarfile.open(_archive(tmp_path)) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    for src in (tmp_path / "x", tmp_path / "x" / "tasks_1-20_v1-2"):
        out = run.prepare("babi", source=src, data_dir=tmp_path / "data", overrides=["size=10k", "tasks=3"], force=True)
        assert (out / "qa3" / "test.jsonl").is_file()


def test_validation_is_a_tenth_of_train(tmp_path: Path) -> None:
    out = run.prepare("babi", source=_archive(tmp_path), data_dir=tmp_path / "data", overrides=["size=10k", "tasks=1"])
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    tenth = round(0.1 * (counts["qa1/train"] + counts["qa1/val"]))
    # whole stories: at least a tenth of the questions, over by less than one story (TRICKY's longest has 3)
    assert tenth <= counts["qa1/val"] < tenth + 3 and manifest["val_split"] == "stories"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_validation_holds_out_whole_stories(seed: int) -> None:
    """A held-out question must not share its story with a training question: the old question-level split
    left 74 of qa2's 100 validation questions with a training twin (same story, question and answer)."""
    from data_prep.babi import split_val

    rows = parse_stories((TRICKY * 20).splitlines(), "tricky.txt", task=2)
    assert [r["story_id"] for r in rows[:5]] == [0, 0, 0, 1, 3]  # the question-less story 2 is counted too
    train, val = split_val(rows, 0.1, seed)
    assert {r["story_id"] for r in train}.isdisjoint({r["story_id"] for r in val})
    assert len(train) + len(val) == len(rows) and len(val) >= round(0.1 * len(rows))


def test_a_babi_set_with_the_old_leaky_split_is_refused(tmp_path: Path) -> None:
    import json

    out = run.prepare("babi", source=_archive(tmp_path), data_dir=tmp_path / "data", overrides=["size=10k", "tasks=1"])
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["val_split"]  # as data_prep.babi wrote it before the split held out whole stories
    (out / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(
        "--data-dir", str(tmp_path / "data"), "train", "memory", "--recipe", "tiny/memn2n",
        "--set", "data.dataset=babi-10k", "--set", "data.tasks=1", "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 2 and "old validation split" in err and "--force" in err
    assert err.count("\n") <= 1 and not (tmp_path / "run" / "checkpoints").exists()


def test_the_datamodule_gives_memn2n_the_longest_training_sentence(tmp_path: Path) -> None:
    """J of MemN2N's release PE: the longest statement or question of the run's training rows (TRICKY: "daniel
    went back to the hallway", 6 words; its questions have 3)."""
    from attn_cli.data.memory import MemoryDataConfig, MemoryDataModule

    run.prepare("babi", source=_archive(tmp_path), data_dir=tmp_path / "data", overrides=["size=10k", "tasks=1"])
    dm = MemoryDataModule(MemoryDataConfig(dataset="babi-10k", tasks="1"), tmp_path / "data", 4, 0)
    longest = max(len(s) for r in dm.rows["train"] for s in [*r["story"], r["question"]])
    assert dm.meta["max_words"] == longest == 6
    # the release's memory size, config.sz = min(50, the longest training story in statements)
    stories = [len(r["story"]) for r in dm.rows["train"]]
    assert dm.meta["memory_slots"] == min(50, max(stories)) and 1 < dm.meta["memory_slots"] <= 50


def test_generated_babi_has_its_answer_in_the_supporting_fact(tmp_path: Path) -> None:
    from data_prep.babi_gen import generate

    for ex in generate(53, random.Random(3)):
        fact = ex["story"][ex["supporting"][0]]
        assert fact[0] == ex["question"][-1] and fact[-1] == ex["answer"]


def test_cloze_answer_in_document_and_entities_permuted() -> None:
    caps = [
        ["a", "dog", "runs", "in", "the", "park", "."],
        ["the", "dog", "plays", "with", "a", "ball", "."],
        ["a", "brown", "dog", "in", "a", "park", "."],
        ["a", "dog", "and", "a", "ball", "."],
        ["a", "dog", "catches", "the", "ball", "in", "the", "park", "."],
    ]
    nouns = {"dog", "park", "ball"}
    rng = random.Random(0)
    markers = set()
    for q in range(5):
        for _ in range(7):
            ex = make_cloze(caps, q, nouns, rng, max_entities=11)
            assert ex is not None
            assert ex["answer"] in ex["doc"] and ex["question"].count(PLACEHOLDER) == 1
            assert not {"dog", "park", "ball"} & set(ex["doc"] + ex["question"])  # anonymised
            markers.add(next(m for m, w in ex["entities"].items() if w == "dog"))
    assert len(markers) > 3  # the same noun gets different @entityN across examples


FIXTURE = """http://www.cnn.com/2015/03/01/example

@entity0 said on monday that @entity1 will visit @entity2 next week .

@placeholder will visit @entity2

@entity1

@entity0:John Smith
@entity1:Mary Jones
@entity2:Paris
"""


def test_deepmind_question_file(tmp_path: Path) -> None:
    ex = parse_question_file(FIXTURE, "q.question")
    assert ex["url"].startswith("http") and ex["answer"] == "@entity1"
    assert ex["question"][0] == PLACEHOLDER and ex["entities"]["@entity2"] == "Paris"
    for split in ("training", "validation", "test"):
        (tmp_path / "q" / split).mkdir(parents=True)
        (tmp_path / "q" / split / "a.question").write_text(FIXTURE)
    out = run.prepare("cloze-cnn", source=tmp_path / "q", data_dir=tmp_path / "data")
    assert (out / "test.jsonl").is_file()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://x\n\nctx", "found 2 block"),
        (FIXTURE.replace("@placeholder", "@entity1"), "no @placeholder"),
        (FIXTURE.replace("\n@entity1\n", "\nMary\n"), "not an @entityN"),
        (FIXTURE.replace("@entity2:Paris", "Paris"), "bad entity-map line"),
    ],
)
def test_deepmind_question_file_errors(text: str, message: str) -> None:
    with pytest.raises(AttnError, match=message):
        parse_question_file(text, "q.question")


@pytest.mark.data
def test_real_babi_archive(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "babi" / "tasks_1-20_v1-2.tar.gz"
    with pytest.raises(AttnError, match="qa3_three-supporting-facts_train.txt"):
        run.prepare("babi", source=src, data_dir=tmp_path, overrides=["size=10k", "tasks=3"])
    out = run.prepare("babi", source=src, data_dir=tmp_path, overrides=["tasks=2"])
    assert (out / "qa2" / "test.jsonl").is_file()


@pytest.mark.data
@pytest.mark.slow
def test_real_multi30k_cloze(shared_data: Path, tmp_path: Path) -> None:
    import json

    out = run.prepare("cloze-multi30k", source=shared_data / "multi30k" / "task2", data_dir=tmp_path)
    for line in (out / "val.jsonl").read_text().splitlines():
        ex = json.loads(line)
        assert ex["answer"] in ex["doc"] and ex["question"].count(PLACEHOLDER) == 1
