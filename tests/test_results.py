"""The recorded results are honest: metrics recompute from the saved predictions, tables are generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attn_cli.io import record_file
from attn_cli.metrics.text import corpus_bleu
from attn_cli.registry import TABLES
from attn_cli.tables.base import all_tables_markdown, load_results
from tests.conftest import recorded_rows

RESULTS = Path(__file__).resolve().parent.parent / "results"
RECORDS = sorted(RESULTS.rglob("result.json"))
NMT = [p for p in RECORDS if json.loads(p.read_text())["task"] == "nmt"]

REQUIRED = ("task", "dataset", "split", "recipe", "metrics", "commands", "git_sha", "hardware", "train_wall_s", "seed")


@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(RESULTS)) for p in RECORDS])
def test_record_has_the_required_facts(path: Path) -> None:
    rec = json.loads(path.read_text())
    for key in REQUIRED:
        assert key in rec, key
    for name, metric in rec["metrics"].items():
        assert "value" in metric and "unit" in metric, name
    assert record_file(path.parent, "recipe.yaml").is_file()  # its own, or its test record's (recipe_of)
    for pred in rec.get("predictions", []):
        assert (path.parent / pred).is_file()


@pytest.mark.parametrize("path", NMT, ids=[str(p.relative_to(RESULTS)) for p in NMT])
def test_nmt_bleu_recomputes_from_the_saved_predictions(path: Path) -> None:
    rec = json.loads(path.read_text())
    rows = recorded_rows(path, rec)
    hyps, refs = [r["hyp"] for r in rows], [r["ref"] for r in rows]
    lowercase = "case:lc" in rec.get("info", {}).get("bleu_signature", "case:lc")
    assert corpus_bleu(hyps, refs, lowercase=lowercase).score == pytest.approx(
        rec["metrics"]["bleu"]["value"], abs=1e-9
    )


@pytest.mark.parametrize("path", NMT, ids=[str(p.relative_to(RESULTS)) for p in NMT])
def test_nmt_bleu_cased_and_lowercased_recompute_with_sacrebleu_itself(path: Path) -> None:
    """Both BLEU figures of a record, recomputed with sacreBLEU directly (not our wrapper): the lowercased
    one the tables compare and, where the data was lowercased, the cased one the papers print."""
    import sacrebleu

    rec = json.loads(path.read_text())
    rows = recorded_rows(path, rec)
    hyps, refs = [r["hyp"] for r in rows], [[r["ref"] for r in rows]]
    lowercased = "case:lc" in rec["info"]["bleu_signature"]
    assert sacrebleu.corpus_bleu(hyps, refs, lowercase=lowercased).score == pytest.approx(
        rec["metrics"]["bleu"]["value"], abs=1e-9
    )
    if lowercased:
        assert list(rec["metrics"])[0] == "bleu_cased"  # cased first, as sacreBLEU reports it
        assert sacrebleu.corpus_bleu(hyps, refs).score == pytest.approx(rec["metrics"]["bleu_cased"]["value"], abs=1e-9)


def test_tables_md_is_generated_from_the_records() -> None:
    path = RESULTS / "TABLES.md"
    if not RECORDS:
        pytest.skip("no recorded results yet")
    expected = all_tables_markdown([t for _, t in TABLES.items()], load_results(RESULTS))
    assert path.read_text(encoding="utf-8") == expected, "results/TABLES.md is stale: run `attn table --all`"


def test_git_sha_can_be_given_where_there_is_no_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copied tree (cluster node, GPU machine) has no .git: ATTN_GIT_SHA names the commit it was copied from."""
    from attn_cli.runs import git_sha

    monkeypatch.setenv("ATTN_GIT_SHA", "0123abcd")
    assert git_sha() == "0123abcd"
    monkeypatch.delenv("ATTN_GIT_SHA")
    assert git_sha() != "0123abcd"


def test_git_sha_is_dirty_for_code_changes_not_for_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs under results/ (a benchmark rewriting its own files while it runs) do not make the code
    that ran "-dirty"; an uncommitted change anywhere else does."""
    import subprocess

    import attn_cli.runs as runs

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "bench.json").write_text("{}\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    monkeypatch.setattr(runs, "REPO_ROOT", tmp_path)
    monkeypatch.delenv("ATTN_GIT_SHA", raising=False)
    clean = runs.git_sha()
    assert len(clean) == 40 and not clean.endswith("-dirty")
    (tmp_path / "results" / "bench.json").write_text('{"rate": 1}\n')
    assert runs.git_sha() == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert runs.git_sha() == clean + "-dirty"


def test_per_task_column_mean_and_failed_rows_come_from_all_twenty_records(tmp_path: Path) -> None:
    from attn_cli.tables.base import compute

    def write(n: int, error: float) -> None:
        folder = tmp_path / "memory" / f"babi-1k-qa{n}" / "memn2n-pe"
        folder.mkdir(parents=True)
        rec = {"task": "memory", "dataset": f"babi-1k-qa{n}", "recipe": "memn2n-pe", "split": "test"}
        rec["metrics"] = {f"error/qa{n}": {"value": error, "unit": "%"}}
        (folder / "result.json").write_text(json.dumps(rec), encoding="utf-8")

    table = TABLES.get("memn2n")
    headers = compute(table, load_results(tmp_path))[1]
    col = headers.index("PE (ours)")

    def last_two() -> list[str]:  # the mean and failed-task rows (the budget rows follow them)
        body = {row[0].text: row for row in compute(table, load_results(tmp_path))[2]}
        return [body["Mean error (%)"][col].text, body["Failed tasks (err. > 5%)"][col].text]

    for n in range(1, 20):  # 19 of 20 tasks: no aggregate yet
        write(n, 10.0 if n <= 4 else 1.0)
    assert last_two() == ["–", "–"]
    write(20, 0.0)
    mean = (4 * 10.0 + 15 * 1.0) / 20
    assert last_two() == [f"{mean:.1f}", "4.0"]


def _write_babi(tmp_path: Path, dataset: str, name: str, split: str, mean: float, qa3: float) -> None:
    """A bAbI record as scripts/babi_seeds.sh writes one: one row name, a folder per split (NAME, NAME-val,
    NAME-train)."""
    folder = tmp_path / "memory" / dataset / (name if split == "test" else f"{name}-{split}")
    folder.mkdir(parents=True)
    rec = {"task": "memory", "dataset": dataset, "recipe": name, "split": split}
    rec["metrics"] = {"mean_error": {"value": mean, "unit": "%"}, "error/qa3": {"value": qa3, "unit": "%"}}
    (folder / "result.json").write_text(json.dumps(rec), encoding="utf-8")


@pytest.mark.parametrize("column", ["PE LS RN joint", "PE LS LW joint"])
def test_memn2n_joint_columns_read_the_validation_pick_of_the_release_trained_seeds(
    tmp_path: Path, column: str
) -> None:
    """Each 1k joint column (RN, LW) shows the test error of its -sgd seed (the authors' release schedule) with
    the lowest validation error: not the Adam record, not the seed with the lowest test error."""
    from attn_cli.tables.base import compute
    from attn_cli.tables.memory import JOINT_NAMES, LW_NAMES

    names = JOINT_NAMES if column == "PE LS RN joint" else LW_NAMES
    _write_babi(tmp_path, "babi-1k", "memn2n-pe-ls-rn-joint", "test", 10.0, 1.0)  # Adam: lowest test error of all
    for k, name in enumerate(names):
        val = 30.0 - k if k < 2 else 40.0  # the second seed has the lowest validation error
        _write_babi(tmp_path, "babi-1k", name, "test", 20.0 + k, 22.5 + k)
        _write_babi(tmp_path, "babi-1k", name, "val", val, 0.0)
        _write_babi(tmp_path, "babi-1k", name, "train", 5.0, 0.0)
    _, headers, body = compute(TABLES.get("memn2n"), load_results(tmp_path))
    col = headers.index(f"{column} (ours)")  # the 1k column (the 10k one comes last)
    rows = {row[0].text: row for row in body}
    assert rows["Mean error (%)"][col].text == "21.0"
    assert rows["3"][col].text == "23.5"
    assert rows["3"][headers.index("PE LS RN (ours)")].text == "–"  # a per-task column never reads a joint run


def test_memn2n_10k_column_reads_the_run_with_the_lowest_validation_error(tmp_path: Path) -> None:
    """The 10k column picks among the 10k joint runs by validation error; it waits until each has one."""
    from attn_cli.tables.base import compute
    from attn_cli.tables.memory import TENK_NAMES

    def tenk() -> str:
        _, headers, body = compute(TABLES.get("memn2n"), load_results(tmp_path))
        col = len(headers) - 1 - headers[::-1].index("PE LS RN joint (ours)")  # the last: 10k
        return {row[0].text: row for row in body}["Mean error (%)"][col].text

    for k, name in enumerate(TENK_NAMES):
        _write_babi(tmp_path, "babi-10k", name, "test", 10.0 + k, 0.0)
    assert tenk() == "–"
    for k, name in enumerate(TENK_NAMES):
        _write_babi(tmp_path, "babi-10k", name, "val", 5.0 if k == len(TENK_NAMES) - 1 else 9.0 + k, 0.0)
    assert tenk() == f"{10.0 + len(TENK_NAMES) - 1:.1f}"


def test_rows_from_uncommitted_code_carry_a_dagger_and_the_table_says_why(tmp_path: Path) -> None:
    from attn_cli.tables.base import DIRTY_NOTE, Col, Ref, Row, Table, render, rich_table

    for recipe, bleu, sha in (("clean", 11.0, "0123abcd"), ("edited", 13.0, "0123abcd-dirty")):
        folder = tmp_path / "nmt" / "toy" / recipe
        folder.mkdir(parents=True)
        rec = {"task": "nmt", "dataset": "toy", "recipe": recipe, "split": "test", "git_sha": sha}
        rec["metrics"] = {"bleu": {"value": bleu, "unit": "BLEU"}}
        (folder / "result.json").write_text(json.dumps(rec), encoding="utf-8")
    table = Table(
        name="toy",
        title="Toy",
        source="none",
        columns=(Col("bleu", "BLEU", paper=False),),
        rows=(Row("clean", Ref(recipe="clean")), Row("edited", Ref(recipe="edited")), Row("absent", Ref(recipe="x"))),
        ref=Ref(task="nmt", dataset="toy", metric="bleu"),
        note="A note.",
    )
    results = load_results(tmp_path)
    text = render(table, results)
    assert "| clean | 11.0 |" in text and "| edited † | **13.0** |" in text and "| absent | – |" in text
    assert text.endswith(f"A note.\n\n{DIRTY_NOTE}\n")
    assert DIRTY_NOTE in str(rich_table(table, results).caption)
    del results[("nmt", "toy", "edited", "test")]
    assert "†" not in render(table, results)
