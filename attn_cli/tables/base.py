"""The table engine: a declarative :class:`Table` + recorded results -> rich / Markdown / CSV / LaTeX.

A table lists rows and columns the way the paper lays them out. Every cell says
where its number comes from: ``(task, dataset, recipe, split, metric)``, each field
taken from the cell, else the row, else the column, else the table. The paper's
number for a cell sits in its own column beside ours (``Row.paper[col.key]``).
Columns with ``delta=True`` show "(+1.3)" against the previous row that has a
value in the same section, as in Luong et al.'s Table 1; the best of our values in a column is bold.

Nothing here is typed by hand: a cell with no record renders as "–".

Issue 29: every row shows the budget its numbers were trained under (updates × batch, device, wall time and
CPU seconds, :mod:`attn_cli.tables.budget`), and a table declares the orderings its paper claims
(:class:`Order`: "attention ≤ no attention", as data: two cells and a comparison); the renderer checks each
on our records, only between cells trained for equal budgets, and marks the row ✓, ✗ (with the known
reason), "budgets differ" or "–" (a cell not recorded) in a "Paper's ordering reproduced" column, one
sentence per ordering under the table.

In a terminal a table that cannot fit the console's width with every value whole (``attn table
xu`` at 80 columns) is printed the long way instead: one line per metric under each row's label.
BLEU is shown in points (0-100) everywhere, as sacreBLEU prints it; pycocoevalcap's BLEU is a
fraction, so caption columns scale it (``Col.scale``) and say the unit in their header.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from attn_cli.errors import AttnError
from attn_cli.tables import budget

Format = Literal["rich", "markdown", "csv", "latex"]


@dataclass(frozen=True)
class Ref:
    task: str | None = None
    dataset: str | None = None
    recipe: str | None = None
    split: str | None = None
    metric: str | None = None

    def merge(self, other: Ref | None) -> Ref:
        """Fields of ``other`` win where set."""
        if other is None:
            return self
        return Ref(*(o if o is not None else s for s, o in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[str | None, ...]:
        return (self.task, self.dataset, self.recipe, self.split, self.metric)


@dataclass(frozen=True)
class Col:
    key: str
    header: str
    ref: Ref = Ref()
    better: Literal["max", "min", "none"] = "max"
    digits: int = 1
    scale: float = 1.0  # e.g. 100 to show a fraction as a percentage
    delta: bool = False
    paper: bool = True  # show a paper column beside ours
    group: str = ""  # a header spanning several columns (dataset names in Yao et al.'s table)
    ours: bool = True  # False: a column of reference numbers only (no runs of ours)
    unit: str = ""  # said in the header: "BLEU (0-100, ours)"

    def heading(self, which: str = "") -> str:
        """The header text: "BLEU", "BLEU (0-100)", "BLEU (paper)" or "BLEU (0-100, paper)"."""
        inside = ", ".join(part for part in (self.unit, which) if part)
        return f"{self.header} ({inside})" if inside else self.header


@dataclass(frozen=True)
class Agg:
    """A cell computed from several records' values (each ``Ref`` merged like a cell's override), shown
    only once every one of them is recorded: e.g. the mean error of twenty per-task runs."""

    refs: tuple[Ref, ...]
    fn: Callable[[list[float]], float]


def lowest(values: Sequence[float]) -> int:
    """The index of the lowest value, the first on a tie: the pick among restarts (Sukhbaatar et al. 2015, §4.2,
    by training error; Joulin & Mikolov's script, by validation entropy; issue 29, by validation, never test).
    scripts/babi_best_of.py and the tables' best-of-N cells both pick with it."""
    return min(range(len(values)), key=values.__getitem__)


def pick_lowest(criterion: str, names: Sequence[str], by: str) -> Agg:
    """The test value (the cell's metric) of the run, among the records ``names``, whose ``criterion``-split
    ``by`` metric is lowest, from the records: a best-of-N cell over restarts."""
    refs = tuple(Ref(recipe=n, split=criterion, metric=by) for n in names) + tuple(
        Ref(recipe=n, split="test") for n in names
    )
    n = len(names)
    return Agg(refs, lambda v: v[n + lowest(v[:n])])


@dataclass(frozen=True)
class Row:
    label: str
    ref: Ref = Ref()
    paper: dict[str, float | str] = field(default_factory=dict)
    cells: dict[str, Ref | Agg] = field(default_factory=dict)  # per-column overrides
    section: bool = False  # a header row ("Our NMT systems")
    key: str = ""  # what an Order names the row by; the label when empty (give one where labels repeat)

    @property
    def name(self) -> str:
        return self.key or self.label


Op = Literal["<", "<=", ">", ">="]
OPS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "<": ("<", lambda a, b: a < b),
    "<=": ("≤", lambda a, b: a <= b),
    ">": (">", lambda a, b: a > b),
    ">=": ("≥", lambda a, b: a >= b),
}


@dataclass(frozen=True)
class Order:
    """An ordering the paper claims, as data: ``left op right``, each side one cell of the table, named
    ``(row key, column key)``; the right side may instead be a number the paper compares with (chance).

    Checked on our records (:func:`check_orders`): ✓ when it holds, ✗ when it does not (``why``: the known
    reason, shown beside it; without one, the notes of the records involved, ``attn record --note``), "budgets differ" when the two cells were not trained for the same number of
    updates or examples (``budget="wall clock"``: the same ``train.max_time_min`` cap instead, for a table
    whose comparison is at the same wall clock), "–" when a cell has no record yet.

    Example (DRAW, Gregor et al. 2015 Table 2: attention lowers the NLL bound)::

        Order("attention ≤ no attention", ("draw", "nll"), "<=", ("draw-noattn", "nll"))
    """

    claim: str  # the paper's claim in a few words, shown under the table
    left: tuple[str, str]
    op: Op
    right: tuple[str, str] | float
    budget: Literal["updates", "wall clock"] = "updates"
    why: str = ""  # why it fails where it does (else the records' notes: attn record --note)


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    source: str  # where the paper's numbers come from
    columns: tuple[Col, ...]
    rows: tuple[Row, ...]
    ref: Ref = Ref()
    note: str = ""
    corner: str = "System"
    orders: tuple[Order, ...] = ()  # the paper's orderings this table checks
    no_orders: str = ""  # why a table checks none (every table has orders or says why: tests/test_tables.py)
    # "row": budget columns beside each row (rows are systems); "column": budget rows under the table, one
    # cell per column (columns are systems, rows are tasks: the bAbI tables)
    budgets: Literal["row", "column"] = "row"

    def __post_init__(self) -> None:
        names = [r.name for r in self.rows if not r.section]
        ours = {c.key for c in self.columns if c.ours}
        for order in self.orders:
            if order.op not in OPS:
                raise ValueError(f"table {self.name}: order {order.claim!r}: op {order.op!r} is not one of {list(OPS)}")
            for side in (order.left, order.right):
                if isinstance(side, tuple) and (names.count(side[0]) != 1 or side[1] not in ours):
                    raise ValueError(
                        f"table {self.name}: order {order.claim!r} names {side}: no single row {side[0]!r} "
                        f"with a column of ours {side[1]!r}"
                    )


# ---------------------------------------------------------------------------------------------


def load_results(results_dir: Path) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """All records keyed by (task, dataset, name, split); the name is the recipe's unless
    recorded with ``attn record --name`` (e.g. ``luong-local-p+unk`` beside ``luong-local-p``)."""
    out = {}
    for path in sorted(results_dir.rglob("result.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise AttnError(f"{path} is not valid JSON; re-record it with `attn eval --record`") from err
        key = (rec["task"], rec["dataset"], rec.get("name") or rec["recipe"], rec.get("split", "test"))
        if key in out:
            raise AttnError(f"{path} and {out[key]['_path']} both record {'/'.join(key)}; remove one")
        rec["_path"] = str(path)
        out[key] = rec
    return out


def record_predictions(result_json: Path) -> list[dict[str, Any]]:
    """A record's prediction rows, read from the file its ``result.json`` lists: ``predictions.jsonl``, or
    ``predictions.jsonl.gz`` when `attn record` gzipped it (``records.RECORD_GZIP_OVER``), its floats cast back
    through float32 when the record says they were written so (``"prediction_floats": "float32"``,
    :func:`attn_cli.io.read_predictions`): the very values evaluation wrote. Tests and scripts recompute the
    recorded numbers from these rows with the reference libraries."""
    from attn_cli.io import read_json, read_predictions

    listed = read_json(result_json).get("predictions", [])
    names = [n for n in ("predictions.jsonl", "predictions.jsonl.gz") if n in listed]
    if not names:
        raise AttnError(
            f"{result_json} lists no predictions.jsonl(.gz) (left out: too big); rescore from the run's eval/ folder"
        )
    return read_predictions(result_json.parent / names[0])


DIRTY_MARK = "†"
DIRTY_NOTE = (
    "† a number in this row was recorded from uncommitted code (its record's `git_sha` ends in `-dirty`): "
    "the commit it names is not exactly the code that ran."
)
BUDGET_HEADERS = ("Updates × batch", "Device", "Train time")
ORDER_HEADER = "Paper's ordering reproduced"
ORDERS_INTRO = (
    'Paper\'s orderings, checked on our records (✓ holds, ✗ fails, "budgets differ": not compared, '
    '"–": a cell not recorded yet):'
)


def _record(results: dict, ref: Ref) -> dict[str, Any] | None:
    return results.get((ref.task, ref.dataset, ref.recipe, ref.split or "test"))


def _dirty(results: dict, ref: Ref) -> bool:
    """Whether the record behind ``ref`` was made from a working tree with uncommitted changes."""
    return str((_record(results, ref) or {}).get("git_sha", "")).endswith("-dirty")


def _marked(body: list[list[Cell]]) -> bool:
    return any(row[0].text.endswith(f" {DIRTY_MARK}") for row in body)


def footnotes(table: Table, results: dict, body: list[list[Cell]]) -> list[str]:
    """The paragraphs under a table: its note, the paper's orderings as checked (one line each), and what
    the dagger means when a row carries one."""
    orders = "\n".join([ORDERS_INTRO, *(f"- {v.line}" for v in check_orders(table, results))]) if table.orders else ""
    return [text for text in (table.note, orders, DIRTY_NOTE if _marked(body) else "") if text]


def _value(results: dict, ref: Ref) -> float | None:
    if None in (ref.task, ref.dataset, ref.recipe, ref.metric):
        return None
    rec = _record(results, ref)
    if rec is None:
        return None
    metric = rec["metrics"].get(ref.metric)
    if metric is None:
        return None
    value = metric["value"] if isinstance(metric, dict) else metric
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


@dataclass
class Cell:
    text: str
    value: float | None = None
    bold: bool = False


def _ours(table: Table, row: Row, col: Col, results: dict) -> tuple[float | None, list[Ref], Ref]:
    """Our value of one cell (scaled for display; None when a record is missing), the refs of the records it
    comes from, and the cell's own ref."""
    override = row.cells.get(col.key)
    base = table.ref.merge(col.ref).merge(row.ref)
    if isinstance(override, Agg):
        refs = [base.merge(r) for r in override.refs]
        parts = [_value(results, r) for r in refs]
        value = None if None in parts else override.fn([p for p in parts if p is not None])
        ref = base
    else:
        ref = base.merge(override)
        refs = [ref]
        value = _value(results, ref)
    return (None if value is None else value * col.scale), refs, ref


def _budgets(results: dict, refs: list[Ref]) -> list[budget.Budget]:
    """The budgets of the training runs behind ``refs``, each run once: a joint run's record feeds every task
    row, and one run recorded twice (its test and validation splits, with and without unk replacement) is
    one training."""
    keys = dict.fromkeys((r.task, r.dataset, r.recipe, r.split or "test") for r in refs)
    recs = [results.get(k) for k in keys]
    runs = {rec.get("run_dir") or rec["_path"]: rec for rec in recs if rec is not None}
    return [budget.of_record(rec) for rec in runs.values()]


def _budget_cells(budgets: list[budget.Budget]) -> list[Cell]:
    if not budgets:
        return [Cell("") for _ in BUDGET_HEADERS]
    return [Cell(budget.updates_text(budgets)), Cell(budget.device_text(budgets)), Cell(budget.time_text(budgets))]


@dataclass(frozen=True)
class Verdict:
    """An :class:`Order` checked on our records: its mark and the sentence said under the table."""

    order: Order
    number: int
    mark: str  # "✓", "✗", "budgets differ", "–"
    line: str


def _cell(table: Table, side: tuple[str, str]) -> tuple[Row, Col]:
    """The row and column an ordering's side names (``Table`` checked they exist)."""
    row = next(r for r in table.rows if not r.section and r.name == side[0])
    return row, next(c for c in table.columns if c.key == side[1])


def _side(table: Table, side: tuple[str, str], results: dict) -> tuple[Row, Col, float | None, list[budget.Budget]]:
    row, col = _cell(table, side)
    value, refs, _ = _ours(table, row, col, results)
    return row, col, value, _budgets(results, refs) if value is not None else []


def _notes(table: Table, order: Order, results: dict) -> list[str]:
    """The notes the records behind an ordering's cells carry (``attn record --note``), each once."""
    notes: dict[str, None] = {}
    for side in (order.left, order.right):
        if isinstance(side, tuple):
            for ref in _ours(table, *_cell(table, side), results)[1]:
                notes.update(dict.fromkeys([str((_record(results, ref) or {}).get("note", ""))]))
    return [n for n in notes if n]


def check_orders(table: Table, results: dict) -> list[Verdict]:
    """Each of the table's orderings, checked on the records (see :class:`Order`)."""
    out = []
    for number, order in enumerate(table.orders, 1):
        symbol, holds = OPS[order.op]
        row, col, left, left_budget = _side(table, order.left, results)
        label = row.label
        if isinstance(order.right, tuple):
            right_row, right_col, right, right_budget = _side(table, order.right, results)
            right_label = right_row.label
            if right_col != col:  # the same row (or two rows) in two columns: say which
                label, right_label = f"{label} / {col.heading()}", f"{right_label} / {right_col.heading()}"
        else:
            right_label, right, right_budget = f"{order.right:g}", float(order.right), []
        head = f"({number}) {order.claim}"
        if left is None or right is None:
            missing = " and ".join(name for name, v in ((label, left), (right_label, right)) if v is None)
            out.append(Verdict(order, number, "–", f"– {head}: {missing} not recorded yet."))
            continue
        shown = f"{left:.{col.digits}f} {symbol} {right:.{col.digits}f}"
        if isinstance(order.right, tuple):
            equal = (budget.same_wall_clock if order.budget == "wall clock" else budget.same_updates)(
                left_budget, right_budget
            )
            if not equal:
                what = budget.cap_text if order.budget == "wall clock" else budget.updates_text
                line = (
                    f"budgets differ {head}: not compared (recorded: {left:.{col.digits}f} vs {right:.{col.digits}f}); "
                    f"{label}: {what(left_budget)}, "
                    f"{right_label}: {what(right_budget)}."
                )
                out.append(Verdict(order, number, "budgets differ", line))
                continue
            at = (
                f"at the same wall clock ({budget.time_text(left_budget)} and {budget.time_text(right_budget)})"
                if order.budget == "wall clock"
                else f"at equal updates, both {budget.updates_text(left_budget)}"
            )
        else:
            at = ""
        if holds(left, right):
            out.append(Verdict(order, number, "✓", f"✓ {head}: {shown}{' ' * bool(at)}{at}."))
        else:
            reasons = [order.why] if order.why else _notes(table, order, results)
            why = f" Why: {' '.join(reasons)}" if reasons else ""
            out.append(Verdict(order, number, "✗", f"✗ {head}: {shown} does not hold{' ' * bool(at)}{at}.{why}"))
    return out


def compute(table: Table, results: dict) -> tuple[list[str], list[str], list[list[Cell]]]:
    """(group headers, headers, rows of cells) — the format-independent layout. After the table's own
    columns come the budget columns (``budgets="row"``) and the ordering column (when it declares orders)."""
    headers, groups = [table.corner], [""]
    for col in table.columns:
        if col.paper:
            headers.append(col.heading("paper" if col.ours else ""))
            groups.append(col.group)
        if col.ours:
            headers.append(col.heading("ours" if col.paper else ""))
            groups.append(col.group)
    row_budgets = table.budgets == "row" and any(c.ours for c in table.columns)
    extra = [*(BUDGET_HEADERS if row_budgets else ()), *((ORDER_HEADER,) if table.orders else ())]
    headers += extra
    groups += [""] * len(extra)
    marks: dict[str, dict[str, list[str]]] = {}  # row -> mark -> the numbers of its orderings: "✓ (1, 3)"
    for verdict in check_orders(table, results):
        marks.setdefault(verdict.order.left[0], {}).setdefault(verdict.mark, []).append(str(verdict.number))
    body: list[list[Cell]] = []
    ours: dict[str, list[tuple[int, float]]] = {c.key: [] for c in table.columns}
    column_refs: dict[str, list[Ref]] = {c.key: [] for c in table.columns}
    previous: dict[str, float] = {}
    for row in table.rows:
        cells = [Cell(row.label)]
        dirty = False  # a shown number comes from a -dirty record: the label gets DIRTY_MARK
        if row.section:  # a section starts a new ladder: its first row has no delta
            body.append(cells + [Cell("") for _ in headers[1:]])
            previous = {}
            continue
        row_refs: list[Ref] = []
        for col in table.columns:
            if col.paper:
                paper = row.paper.get(col.key)
                cells.append(
                    Cell(
                        ""
                        if paper is None
                        else (f"{paper:.{col.digits}f}" if isinstance(paper, (int, float)) else str(paper))
                    )
                )
            if not col.ours:
                continue
            value, refs, ref = _ours(table, row, col, results)
            if value is None:
                cells.append(Cell("–" if ref.recipe else ""))
                continue
            dirty = dirty or any(_dirty(results, r) for r in refs)
            row_refs += refs
            column_refs[col.key] += refs
            text = f"{value:.{col.digits}f}"
            if col.delta and col.key in previous:
                text += f" ({value - previous[col.key]:+.{col.digits}f})"
            if col.delta:
                previous[col.key] = value
            cells.append(Cell(text, value))
            ours[col.key].append((len(body), value))
        if dirty:
            cells[0] = Cell(f"{row.label} {DIRTY_MARK}")
        if row_budgets:
            cells += _budget_cells(_budgets(results, row_refs))
        if table.orders:
            cells.append(Cell(", ".join(f"{m} ({', '.join(n)})" for m, n in marks.get(row.name, {}).items())))
        body.append(cells)
    if table.budgets == "column" and any(column_refs.values()):  # a row per budget figure, a cell per column
        for i, header in enumerate(BUDGET_HEADERS):
            cells = [Cell(header)]
            for col in table.columns:
                cells += [Cell("")] if col.paper else []
                if col.ours:
                    cells.append(_budget_cells(_budgets(results, column_refs[col.key]))[i])
            body.append(cells + [Cell("") for _ in extra])
    # bold the best of our values per column
    index = 0
    for col in table.columns:
        index += int(col.paper) + int(col.ours)
        vals = ours[col.key]
        if col.better == "none" or len(vals) < 2:
            continue
        best = max(v for _, v in vals) if col.better == "max" else min(v for _, v in vals)
        for r, v in vals:
            if round(v, col.digits) == round(best, col.digits):
                body[r][index].bold = True
    return groups, headers, body


def render(table: Table, results: dict, fmt: Format = "markdown") -> str:
    groups, headers, body = compute(table, results)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(headers)
        for row in body:
            writer.writerow([c.text for c in row])
        return buf.getvalue()
    if fmt == "latex":
        return _latex(table, results, headers, body)

    # markdown (rich renders from compute() directly in the CLI)
    def md(c: Cell) -> str:
        text = c.text.replace("|", r"\|")
        return f"**{text}**" if c.bold and text else text

    out = [f"### {table.title}", "", _whose(table), ""]
    if any(groups):
        out.append("| " + " | ".join(groups) + " |")
        out.append("|" + "---|" * len(headers))
        out.append("| " + " | ".join(headers) + " |")
    else:
        out.append("| " + " | ".join(headers) + " |")
        out.append("|" + "---|" * len(headers))
    for row in body:
        cells = [md(c) for c in row]
        if row[0].text and all(not c.text for c in row[1:]):
            cells[0] = f"*{cells[0]}*"
        out.append("| " + " | ".join(cells) + " |")
    for text in footnotes(table, results, body):
        out += ["", text]
    return "\n".join(out) + "\n"


def _whose(table: Table) -> str:
    """The line under a Markdown or LaTeX table's title: our dataset and split beside the paper's source."""
    ours = f"Ours: {table.ref.dataset}, {table.ref.split or 'test'} split. " if table.ref.dataset else ""
    return f"{ours}Paper numbers: {table.source}."


# LaTeX's special characters, then the symbols the tables use that need a command (booktabs, amssymb, pifont)
_TEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "%": r"\%",
    "_": r"\_",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "^": r"\^{}",
    "~": r"\textasciitilde{}",
    "<": r"$<$",
    ">": r"$>$",
    "–": "--",
    "—": "---",
    "†": r"\dag{}",
    "×": r"$\times$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "−": "--",
    "✓": r"\checkmark{}",
    "✗": r"\ding{55}",
}


def tex_escape(text: str) -> str:
    """``text`` as LaTeX source: specials escaped, the tables' symbols as commands (one pass, so an escape
    is never escaped again)."""
    return "".join(_TEX.get(ch, ch) for ch in text)


def _latex(table: Table, results: dict, headers: list[str], body: list[list[Cell]]) -> str:
    """A booktabs tabular with, under it, what the Markdown table says under its own: the caption of whose
    numbers are whose, the table's note, the paper's orderings as checked on our records and what a † means
    (a table pasted into a paper keeps the budgets' and the orderings' caveats)."""

    def tex(c: Cell) -> str:
        text = tex_escape(c.text)
        return rf"\textbf{{{text}}}" if c.bold and text else text

    lines = [
        f"% {table.title} (needs booktabs, amssymb, pifont)",
        r"\begin{tabular}{l" + "r" * (len(headers) - 1) + "}",
        r"\toprule",
        " & ".join(tex(Cell(h)) for h in headers) + r" \\",
        r"\midrule",
        *(" & ".join(tex(c) for c in row) + r" \\" for row in body),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    notes = [_whose(table), *footnotes(table, results, body)]
    for note in notes:
        items = [line[2:] for line in note.splitlines() if line.startswith("- ")]
        text = [line for line in note.splitlines() if not line.startswith("- ")]
        lines += ["", r"\par\smallskip{\footnotesize " + tex_escape(" ".join(text)) + "}"]
        if items:
            lines += [r"\begin{itemize}", *(r"\item {\footnotesize " + tex_escape(i) + "}" for i in items)]
            lines.append(r"\end{itemize}")
    return "\n".join(lines) + "\n"


def _styled(cell: Cell, italic: bool = False) -> str:
    from rich.markup import escape

    text = escape(cell.text)
    return f"[bold]{text}[/bold]" if cell.bold and text else (f"[italic]{text}[/italic]" if italic and text else text)


def _caption(table: Table, results: dict, body: list[list[Cell]]) -> str:
    """Whose numbers are whose: our dataset (when the table has one) beside the paper's source, so a table
    that puts Multi30k BLEU beside WMT'14 BLEU says so under it; the paper's orderings as checked; and what
    a † means when a row has one."""
    ours = f"ours: {table.ref.dataset} ({table.ref.split or 'test'}); " if table.ref.dataset else ""
    notes = [text for text in footnotes(table, results, body) if text != table.note]
    return "\n".join([f"{ours}paper: {table.source}", *notes])


LABEL_WIDTH = 24


def rich_table(table: Table, results: dict, width: int | None = None) -> Any:
    """The table for a terminal ``width`` columns wide (None: any width): the paper's layout when it fits
    with no value cut, else :func:`rich_table_long`."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table as RichTable

    groups, headers, body = compute(table, results)
    rt = RichTable(title=table.title, caption=_caption(table, results, body), caption_justify="left")
    for i, h in enumerate(headers):
        label = f"{groups[i]}\n{h}" if groups[i] else h
        rt.add_column(label, justify="left" if i == 0 else "right")
    # the row labels keep room to be read (wrapped at most to LABEL_WIDTH), or the long layout is used
    rt.columns[0].min_width = min(LABEL_WIDTH, max(len(row[0].text) for row in body) if body else 0)
    for row in body:
        section = bool(row[0].text) and all(not c.text for c in row[1:])
        rt.add_row(*[_styled(c, italic=section and i == 0) for i, c in enumerate(row)])
    if width is None:
        return rt
    # laid out at ``width`` on a wider console, an overflowing table shows as longer lines, a cut value as "…"
    probe = Console(width=10 * width, file=io.StringIO(), color_system=None)
    probe.print(rt, width=width)
    lines = probe.file.getvalue().splitlines()  # type: ignore[attr-defined]
    if all(cell_len(line.rstrip()) <= width and "…" not in line for line in lines):
        return rt
    return rich_table_long(table, results)


def rich_table_long(table: Table, results: dict) -> Any:
    """One line per metric under each row's label (paper, ours side by side): any number of columns
    fits a narrow terminal, and no value is cut."""
    from rich.table import Table as RichTable

    _, headers, body = compute(table, results)
    rt = RichTable(title=table.title, caption=_caption(table, results, body), caption_justify="left")
    rt.add_column(table.corner, min_width=min(LABEL_WIDTH, max((len(row[0].text) for row in body), default=0)))
    # the values stay whole (a budget is a long value); the labels wrap
    rt.add_column("paper", justify="right", no_wrap=True)
    rt.add_column("ours", justify="right", no_wrap=True)
    for row in body:
        section = bool(row[0].text) and all(not c.text for c in row[1:])
        rt.add_row(f"[italic]{_styled(row[0])}[/italic]" if section else f"[bold]{_styled(row[0])}[/bold]", "", "")
        if section:
            continue
        index = 1
        for col in table.columns:
            paper = row[index] if col.paper else Cell("")
            ours = row[index + int(col.paper)] if col.ours else Cell("")
            index += int(col.paper) + int(col.ours)
            if paper.text or ours.text:
                label = " ".join(part for part in (col.group, col.heading()) if part)
                rt.add_row(f"  {_styled(Cell(label))}", _styled(paper), _styled(ours))
        for header, cell in zip(headers[index:], row[index:]):  # the budget and ordering columns
            if cell.text:
                rt.add_row(f"  {_styled(Cell(header))}", "", _styled(cell))
    return rt


def display_metric(key: str, value: Any, unit: str = "") -> tuple[str, Any]:
    """A metric as shown to people: BLEU in points (0-100) everywhere, as sacreBLEU prints it.

    pycocoevalcap's BLEU-n is a fraction (its unit says "0-1"), so it is shown ×100; the key
    gains the unit so a reader never wonders which scale a BLEU is on.
    """
    if not key.rsplit("/", 1)[-1].startswith("bleu") or not isinstance(value, (int, float)):
        return key, value
    return f"{key} (0-100)", value * 100 if re.search(r"0-1(?!\d)", unit) else value


def summary_table(results: dict, title: str = "recorded results") -> Any:
    """Every record, its metrics one per line under it (task, dataset, recipe, split, training wall time):
    ``attn table summary`` and the demo's summary; two columns, so it fits any terminal."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    rt = RichTable(title=title)
    rt.add_column("record / metric")
    rt.add_column("value", justify="right")
    for (task, dataset, recipe, split), rec in sorted(results.items()):
        wall = rec.get("train_wall_s")
        rt.add_row(f"[bold]{escape(f'{task} {dataset} {recipe} ({split})')}[/bold]", f"{wall:.0f} s" if wall else "")
        for key, metric in rec["metrics"].items():
            value, unit = (metric.get("value"), metric.get("unit", "")) if isinstance(metric, dict) else (metric, "")
            label, shown = display_metric(key, value, unit)
            rt.add_row(f"  {escape(label)}", f"{shown:.4g}" if isinstance(shown, (int, float)) else "?")
    return rt


MARKS = ("✓", "✗", "budgets differ", "–")


def orders_overview(tables: list[Table], results: dict) -> list[str]:
    """How many of each table's orderings hold, fail, are not compared or wait for a record: the first thing
    a reader of results/TABLES.md should see (issue 29)."""
    lines = ["| table | " + " | ".join(MARKS) + " |", "|---|" + "---|" * len(MARKS)]
    total = dict.fromkeys(MARKS, 0)
    for t in tables:
        counts = dict.fromkeys(MARKS, 0)
        for verdict in check_orders(t, results):
            counts[verdict.mark] += 1
            total[verdict.mark] += 1
        lines.append(f"| {t.name} | " + " | ".join(str(counts[m]) for m in MARKS) + " |")
    lines.append("| **all** | " + " | ".join(f"**{total[m]}**" for m in MARKS) + " |")
    return lines


def all_tables_markdown(tables: list[Table], results: dict) -> str:
    head = [
        "# Result tables",
        "",
        "Generated by `attn table --all` from the records under `results/`; do not edit by hand.",
        "Each record's `result.json` holds the command, resolved recipe, metrics, hardware, wall time and git sha.",
        "Every row shows the budget it was trained under; under each table, the orderings its paper claims are",
        "checked on our records, only between cells trained for the same number of updates or examples",
        '(✓ holds, ✗ fails with the known reason, "budgets differ": not compared, "–": a cell not recorded yet):',
        "",
        *orders_overview(tables, results),
        "",
        "",
    ]
    return "\n".join(head) + "\n".join(render(t, results, "markdown") for t in tables)
