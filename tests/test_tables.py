"""The tables' budgets and the paper's orderings (issue 29 #1-#3): every row shows what it cost to train, and
an ordering the paper claims is checked on the records, only between cells trained for equal budgets."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from attn_cli.registry import TABLES
from attn_cli.tables import budget
from attn_cli.tables.base import (
    BUDGET_HEADERS,
    DIRTY_MARK,
    DIRTY_NOTE,
    MARKS,
    ORDER_HEADER,
    Agg,
    Col,
    Order,
    Ref,
    Row,
    Table,
    check_orders,
    compute,
    load_results,
    render,
    rich_table,
    rich_table_long,
    tex_escape,
)
from attn_cli.tables.command import table as table_command


def _record(root: Path, recipe: str, value: float, **facts: Any) -> Path:
    """A record of the toy task: error ``value`` and whatever budget facts are given."""
    folder = root / "toy" / "digits" / recipe
    folder.mkdir(parents=True)
    rec = {"task": "toy", "dataset": "digits", "recipe": recipe, "split": "test", "git_sha": "0123abcd"}
    rec["metrics"] = {"error": {"value": value, "unit": "%"}}
    rec |= facts
    (folder / "result.json").write_text(json.dumps(rec), encoding="utf-8")
    return folder


def _budget(steps: int, batch: int = 64, wall: float = 600.0, cap: float | None = None) -> dict[str, Any]:
    return {
        "steps": steps,
        "epochs": 3,
        "train_wall_s": wall,
        "hardware": {"torch_threads": 1, "gpus": []},
        "budget": {"batch_size": batch, "max_time_min": cap},
    }


def _table(*orders: Order) -> Table:
    return Table(
        name="toy",
        title="Toy",
        source="none",
        ref=Ref(task="toy", dataset="digits", metric="error"),
        columns=(Col("err", "error", better="min", paper=False),),
        rows=(
            Row("plain network", Ref(recipe="plain"), key="plain"),
            Row("attention network", Ref(recipe="attn"), key="attn"),
        ),
        orders=orders,
    )


ATTN_WINS = Order("attention < plain", ("attn", "err"), "<", ("plain", "err"), why="too few updates")


@pytest.mark.parametrize(
    ("plain", "attn", "mark", "said"),
    [
        ((5.0, 1000), (3.0, 1000), "✓", "3.0 < 5.0 at equal updates, both 1,000×64 (3 ep)."),
        ((5.0, 1000), (7.0, 1000), "✗", "7.0 < 5.0 does not hold at equal updates, both 1,000×64 (3 ep). Why: too few"),
        ((5.0, 1000), (3.0, 400), "budgets differ", "not compared (recorded: 3.0 vs 5.0); attention network: 400×64"),
        ((5.0, 1000), None, "–", "attention network not recorded yet."),
    ],
    ids=["holds", "fails", "budgets differ", "missing"],
)
def test_an_ordering_holds_fails_is_not_compared_or_waits_for_a_record(
    tmp_path: Path, plain: tuple[float, int], attn: tuple[float, int] | None, mark: str, said: str
) -> None:
    _record(tmp_path, "plain", plain[0], **_budget(plain[1]))
    if attn is not None:
        _record(tmp_path, "attn", attn[0], **_budget(attn[1]))
    table = _table(ATTN_WINS)
    results = load_results(tmp_path)
    (verdict,) = check_orders(table, results)
    assert verdict.mark == mark and said in verdict.line
    assert verdict.line.startswith(f"{mark} (1) attention < plain")
    # the mark sits on the claim's row, in the ordering column; the sentence under the table
    _, headers, body = compute(table, results)
    assert headers[-1] == ORDER_HEADER
    assert [row[-1].text for row in body] == ["", f"{mark} (1)"]
    text = render(table, results)
    assert f"- {verdict.line}" in text
    assert verdict.line in str(rich_table(table, results).caption).replace("\n", " ")


def test_latex_keeps_the_orderings_the_dagger_and_whose_numbers_are_whose(tmp_path: Path) -> None:
    """A table pasted into a paper keeps what the Markdown says under it, escaped for LaTeX."""
    _record(tmp_path, "plain", 5.0, **_budget(1000))
    _record(tmp_path, "attn", 7.0, **_budget(1000) | {"git_sha": "0123abcd-dirty"})
    text = render(_table(ATTN_WINS), load_results(tmp_path), "latex")
    assert r"\begin{tabular}{lrr" in text and r"\end{tabular}" in text
    assert r"attention network \dag{} & 7.0" in text
    assert r"\item {\footnotesize \ding{55} (1) attention $<$ plain: 7.0 $<$ 5.0 does not hold" in text
    assert r"1,000$\times$64 (3 ep)" in text and "Why: too few updates" in text
    assert "Paper numbers: none." in text and "uncommitted code" in text


def test_tex_escape_escapes_once() -> None:
    assert tex_escape(r"50% of a_b & {c} \ #1 $2 ~") == (
        r"50\% of a\_b \& \{c\} \textbackslash{} \#1 \$2 \textasciitilde{}"
    )


def test_a_failed_ordering_without_a_declared_reason_gives_the_records_notes(tmp_path: Path) -> None:
    _record(tmp_path, "plain", 5.0, **_budget(1000))
    _record(tmp_path, "attn", 7.0, note="T = 16 glimpses, not the paper's 64.", **_budget(1000))
    bare = Order("attention < plain", ("attn", "err"), "<", ("plain", "err"))
    results = load_results(tmp_path)
    (verdict,) = check_orders(_table(bare), results)
    assert verdict.mark == "✗" and verdict.line.endswith("Why: T = 16 glimpses, not the paper's 64.")
    (declared,) = check_orders(_table(ATTN_WINS), results)  # the declaration's reason comes first
    assert declared.line.endswith("Why: too few updates")


def test_equal_examples_seen_is_an_equal_budget_too(tmp_path: Path) -> None:
    """Half the updates at twice the batch: the same examples seen, so the pair is compared."""
    _record(tmp_path, "plain", 5.0, **_budget(1000, batch=64))
    _record(tmp_path, "attn", 3.0, **_budget(500, batch=128))
    (verdict,) = check_orders(_table(ATTN_WINS), load_results(tmp_path))
    assert verdict.mark == "✓"


def test_a_same_wall_clock_ordering_compares_runs_under_the_same_cap(tmp_path: Path) -> None:
    same_clock = Order("attention < plain", ("attn", "err"), "<", ("plain", "err"), budget="wall clock")
    _record(tmp_path / "same", "plain", 5.0, **_budget(1000, cap=30.0))
    _record(tmp_path / "same", "attn", 3.0, **_budget(400, cap=30.0))
    results = load_results(tmp_path / "same")
    (verdict,) = check_orders(_table(same_clock), results)
    assert verdict.mark == "✓" and "at the same wall clock" in verdict.line
    (strict,) = check_orders(_table(ATTN_WINS), results)  # by updates the same pair is not comparable
    assert strict.mark == "budgets differ"
    _record(tmp_path / "other", "plain", 5.0, **_budget(1000, cap=30.0))
    _record(tmp_path / "other", "attn", 3.0, **_budget(400, cap=45.0))
    (verdict,) = check_orders(_table(same_clock), load_results(tmp_path / "other"))
    assert verdict.mark == "budgets differ" and "cap 45 min" in verdict.line and "cap 30 min" in verdict.line


def test_an_ordering_against_a_number_needs_no_budget(tmp_path: Path) -> None:
    _record(tmp_path, "attn", 40.0, **_budget(1000))
    above_chance = Order("attention below chance error", ("attn", "err"), "<", 90.0)
    (verdict,) = check_orders(_table(above_chance), load_results(tmp_path))
    assert verdict.mark == "✓" and verdict.line == "✓ (1) attention below chance error: 40.0 < 90.0."


def test_an_ordering_that_names_no_row_or_column_of_ours_is_refused_where_it_is_declared() -> None:
    with pytest.raises(ValueError, match="no single row 'atn'"):
        _table(Order("typo", ("atn", "err"), "<", ("plain", "err")))
    with pytest.raises(ValueError, match="column of ours 'acc'"):
        _table(Order("typo", ("attn", "acc"), "<", ("plain", "err")))
    with pytest.raises(ValueError, match="op '=<'"):
        _table(Order("typo", ("attn", "err"), "=<", ("plain", "err")))  # type: ignore[arg-type]


def test_the_budget_cells_come_from_the_record(tmp_path: Path) -> None:
    facts = _budget(4204, wall=1086.0)
    facts["hardware"] = {"torch_threads": 4, "gpus": ["NVIDIA H200"]}
    _record(tmp_path, "plain", 5.0, train_cpu_s=1020.4, **facts)
    _, headers, body = compute(_table(), load_results(tmp_path))
    assert headers[-3:] == list(BUDGET_HEADERS)  # no orders declared: no ordering column
    assert [c.text for c in body[0][-3:]] == ["4,204×64 (3 ep)", "H200", "18.1 min, 1,020 CPU s"]
    assert [c.text for c in body[1][1:]] == ["–", "", "", ""]  # no record, no budget
    # a CPU run shows its torch threads; the figures reach the markdown and the long layout whole
    facts["hardware"] = {"torch_threads": 1, "gpus": []}
    _record(tmp_path, "attn", 3.0, **facts)
    results = load_results(tmp_path)
    assert "| attention network | **3.0** | 4,204×64 (3 ep) | CPU ×1 | 18.1 min |" in render(_table(), results)
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(rich_table_long(_table(), results))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Updates × batch" in shown and "18.1 min, 1,020 CPU s" in shown and "CPU ×1" in shown


def test_older_records_give_their_batch_from_recipe_yaml_and_cpu_seconds_from_a_note_in_them(
    tmp_path: Path,
) -> None:
    facts = _budget(1031)
    facts["budget"] = {"max_epochs": 2}  # recorded before batch_size was
    facts["cpu_seconds"] = {"train_and_eval_cpu_s": 69.8, "how": "time"}  # measured by hand
    folder = _record(tmp_path, "plain", 5.0, **facts)
    (folder / "recipe.yaml").write_text("name: plain\ntrain:\n  batch_size: 32\n", encoding="utf-8")
    (rec,) = load_results(tmp_path).values()
    b = budget.of_record(rec)
    assert (b.batch, b.examples, b.cpu_s) == (32, 1031 * 32, 69.8)
    assert budget.time_text([b]) == "10.0 min, 70 CPU s (train+eval)"


def test_a_token_batch_record_shows_its_tokens_not_a_sentence_count(tmp_path: Path) -> None:
    """NMT's token batches hold a varying number of sentences: the cell says the token bound, a comparison with
    such a record goes by updates, and a recipe.yaml's batch_size is not read as the examples per update."""
    facts = _budget(7000)
    facts["budget"] = {"batch_size": 64, "batch_tokens": 960, "max_epochs": 30}
    folder = _record(tmp_path, "plain", 5.0, **facts)
    (folder / "recipe.yaml").write_text("name: plain\ntrain:\n  batch_size: 64\n", encoding="utf-8")
    (rec,) = load_results(tmp_path).values()
    b = budget.of_record(rec)
    assert (b.batch, b.tokens, b.examples) == (None, 960, None)
    assert budget.updates_text([b]).startswith("7,000×≤960 tok")
    assert budget.same_updates([b], [budget.of_record(rec | {"budget": {"batch_size": 64}})])
    assert not budget.same_updates([b], [budget.of_record(rec | {"steps": 6999})])


def test_a_cell_of_many_records_shows_their_range_and_compares_record_by_record(tmp_path: Path) -> None:
    for n, steps in ((1, 300), (2, 500)):
        for recipe, err in (("bow", 20.0), ("pe", 10.0)):
            folder = tmp_path / "toy" / f"qa{n}" / recipe
            folder.mkdir(parents=True)
            rec = {"task": "toy", "dataset": f"qa{n}", "recipe": recipe, "metrics": {"error": {"value": err}}}
            (folder / "result.json").write_text(json.dumps(rec | _budget(steps, batch=32, wall=60.0 * n)))
    mean = Agg(tuple(Ref(dataset=f"qa{n}") for n in (1, 2)), lambda v: sum(v) / len(v))
    table = Table(
        name="babi",
        title="Toy bAbI",
        source="none",
        ref=Ref(task="toy", metric="error"),
        columns=(Col("bow", "BoW", Ref(recipe="bow"), paper=False), Col("pe", "PE", Ref(recipe="pe"), paper=False)),
        rows=(Row("Mean", cells={"bow": mean, "pe": mean}),),
        budgets="column",
        orders=(Order("PE ≤ BoW", ("Mean", "pe"), "<=", ("Mean", "bow")),),
    )
    assert [row[0].text for row in compute(table, {})[2]] == ["Mean"]  # nothing recorded: no budget rows
    results = load_results(tmp_path)
    _, headers, body = compute(table, results)
    assert [row[0].text for row in body] == ["Mean", *BUDGET_HEADERS]
    assert [c.text for c in body[1][1:3]] == ["2 runs: 300–500×32 (3 ep)"] * 2
    assert body[3][1].text == "1.0–2.0 min"
    (verdict,) = check_orders(table, results)
    assert verdict.mark == "✓"
    assert "10.0 ≤ 20.0 at equal updates, both 2 runs: 300–500×32 (3 ep)" in verdict.line


def test_a_row_from_uncommitted_code_is_marked_in_every_layout_and_the_caption_says_why(tmp_path: Path) -> None:
    _record(tmp_path, "plain", 5.0, **_budget(1000))
    _record(tmp_path, "attn", 3.0, **(_budget(1000) | {"git_sha": "0123abcd-dirty"}))
    table, results = _table(ATTN_WINS), load_results(tmp_path)
    assert f"| attention network {DIRTY_MARK} |" in render(table, results)
    assert render(table, results).rstrip().endswith(DIRTY_NOTE)
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(rich_table_long(table, results))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert f"attention network {DIRTY_MARK}" in shown and "uncommitted code" in shown


@pytest.mark.parametrize("name", TABLES.names())
def test_every_table_declares_the_papers_orderings_or_says_why_it_has_none(name: str) -> None:
    spec = TABLES.get(name)
    assert spec.orders or spec.no_orders, f"{name}: declare the paper's orderings (Table.orders) or say why not"


def test_every_table_in_tables_md_shows_budgets_and_its_orderings(tmp_path: Path) -> None:
    results = Path(__file__).resolve().parent.parent / "results"
    out = tmp_path / "TABLES.md"
    table_command(None, fmt="markdown", all_=True, list_=False, results_dir=results, out=out)
    text = out.read_text(encoding="utf-8")
    overview = text.split("\n### ", 1)[0]
    for _, spec in TABLES.items():
        counts = [len([v for v in check_orders(spec, load_results(results)) if v.mark == m]) for m in MARKS]
        assert f"| {spec.name} | {' | '.join(map(str, counts))} |" in overview, spec.name
        section = text.split(f"### {spec.title}\n", 1)[1].split("\n### ", 1)[0]
        assert "Updates × batch" in section, spec.name
        assert (ORDER_HEADER in section and "Paper's orderings, checked" in section) or not spec.orders, spec.name
