"""The table engine: a declarative :class:`Table` + recorded results -> rich / Markdown / CSV / LaTeX.

A table lists rows and columns the way the paper lays them out. Every cell says
where its number comes from: ``(task, dataset, recipe, split, metric)``, each field
taken from the cell, else the row, else the column, else the table. The paper's
number for a cell sits in its own column beside ours (``Row.paper[col.key]``).
Columns with ``delta=True`` show "(+1.3)" against the previous row that has a
value in the same section, as in Luong et al.'s Table 1; the best of our values in a column is bold.

Nothing here is typed by hand: a cell with no record renders as "–".

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from attn_cli.errors import AttnError

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


@dataclass(frozen=True)
class Row:
    label: str
    ref: Ref = Ref()
    paper: dict[str, float | str] = field(default_factory=dict)
    cells: dict[str, Ref | Agg] = field(default_factory=dict)  # per-column overrides
    section: bool = False  # a header row ("Our NMT systems")


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
    ``predictions.jsonl.gz`` when `attn record` gzipped it (``records.RECORD_GZIP_OVER``). Tests and scripts
    recompute the recorded numbers from these rows with the reference libraries."""
    from attn_cli.io import read_json, read_jsonl

    listed = read_json(result_json).get("predictions", [])
    names = [n for n in ("predictions.jsonl", "predictions.jsonl.gz") if n in listed]
    if not names:
        raise AttnError(
            f"{result_json} lists no predictions.jsonl(.gz) (left out: too big); rescore from the run's eval/ folder"
        )
    return read_jsonl(result_json.parent / names[0])


DIRTY_MARK = "†"
DIRTY_NOTE = (
    "† a number in this row was recorded from uncommitted code (its record's `git_sha` ends in `-dirty`): "
    "the commit it names is not exactly the code that ran."
)


def _dirty(results: dict, ref: Ref) -> bool:
    """Whether the record behind ``ref`` was made from a working tree with uncommitted changes."""
    rec = results.get((ref.task, ref.dataset, ref.recipe, ref.split or "test")) or {}
    return str(rec.get("git_sha", "")).endswith("-dirty")


def _marked(body: list[list[Cell]]) -> bool:
    return any(row[0].text.endswith(f" {DIRTY_MARK}") for row in body)


def footnotes(table: Table, body: list[list[Cell]]) -> list[str]:
    """The lines under a table: its note, and what the dagger means when a row carries one."""
    return [line for line in (table.note, DIRTY_NOTE if _marked(body) else "") if line]


def _value(results: dict, ref: Ref) -> float | None:
    if None in (ref.task, ref.dataset, ref.recipe, ref.metric):
        return None
    rec = results.get((ref.task, ref.dataset, ref.recipe, ref.split or "test"))
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


def compute(table: Table, results: dict) -> tuple[list[str], list[str], list[list[Cell]]]:
    """(group headers, headers, rows of cells) — the format-independent layout."""
    headers, groups = [table.corner], [""]
    for col in table.columns:
        if col.paper:
            headers.append(col.heading("paper" if col.ours else ""))
            groups.append(col.group)
        if col.ours:
            headers.append(col.heading("ours" if col.paper else ""))
            groups.append(col.group)
    body: list[list[Cell]] = []
    ours: dict[str, list[tuple[int, float]]] = {c.key: [] for c in table.columns}
    previous: dict[str, float] = {}
    for row in table.rows:
        cells = [Cell(row.label)]
        dirty = False  # a shown number comes from a -dirty record: the label gets DIRTY_MARK
        if row.section:  # a section starts a new ladder: its first row has no delta
            body.append(cells + [Cell("") for _ in headers[1:]])
            previous = {}
            continue
        for col in table.columns:
            override = row.cells.get(col.key)
            base = table.ref.merge(col.ref).merge(row.ref)
            ref = base if isinstance(override, Agg) else base.merge(override)
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
            refs = [base.merge(r) for r in override.refs] if isinstance(override, Agg) else [ref]
            if isinstance(override, Agg):
                parts = [_value(results, r) for r in refs]
                value = None if None in parts else override.fn([p for p in parts if p is not None])
            else:
                value = _value(results, ref)
            if value is None:
                cells.append(Cell("–" if ref.recipe else ""))
                continue
            dirty = dirty or any(_dirty(results, r) for r in refs)
            value *= col.scale
            text = f"{value:.{col.digits}f}"
            if col.delta and col.key in previous:
                text += f" ({value - previous[col.key]:+.{col.digits}f})"
            if col.delta:
                previous[col.key] = value
            cells.append(Cell(text, value))
            ours[col.key].append((len(body), value))
        if dirty:
            cells[0] = Cell(f"{row.label} {DIRTY_MARK}")
        body.append(cells)
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

        def tex(c: Cell) -> str:
            text = c.text.replace("%", r"\%").replace("_", r"\_").replace("&", r"\&").replace("–", "--")
            return rf"\textbf{{{text}}}" if c.bold else text

        lines = [r"\begin{tabular}{l" + "r" * (len(headers) - 1) + "}", r"\toprule"]
        lines.append(" & ".join(tex(Cell(h)) for h in headers) + r" \\")
        lines.append(r"\midrule")
        for row in body:
            lines.append(" & ".join(tex(c) for c in row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return f"% {table.title} — paper numbers: {table.source}\n" + "\n".join(lines) + "\n"

    # markdown (rich renders from compute() directly in the CLI)
    def md(c: Cell) -> str:
        text = c.text.replace("|", r"\|")
        return f"**{text}**" if c.bold and text else text

    ours = f"Ours: {table.ref.dataset}, {table.ref.split or 'test'} split. " if table.ref.dataset else ""
    out = [f"### {table.title}", "", f"{ours}Paper numbers: {table.source}.", ""]
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
    for line in footnotes(table, body):
        out += ["", line]
    return "\n".join(out) + "\n"


def _styled(cell: Cell, italic: bool = False) -> str:
    from rich.markup import escape

    text = escape(cell.text)
    return f"[bold]{text}[/bold]" if cell.bold and text else (f"[italic]{text}[/italic]" if italic and text else text)


def _caption(table: Table, body: list[list[Cell]]) -> str:
    """Whose numbers are whose: our dataset (when the table has one) beside the paper's source, so a table
    that puts Multi30k BLEU beside WMT'14 BLEU says so under it; and what a † means when a row has one."""
    ours = f"ours: {table.ref.dataset} ({table.ref.split or 'test'}); " if table.ref.dataset else ""
    return f"{ours}paper: {table.source}" + (f"\n{DIRTY_NOTE}" if _marked(body) else "")


LABEL_WIDTH = 24


def rich_table(table: Table, results: dict, width: int | None = None) -> Any:
    """The table for a terminal ``width`` columns wide (None: any width): the paper's layout when it fits
    with no value cut, else :func:`rich_table_long`."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table as RichTable

    groups, headers, body = compute(table, results)
    rt = RichTable(title=table.title, caption=_caption(table, body))
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

    _, _, body = compute(table, results)
    rt = RichTable(title=table.title, caption=_caption(table, body))
    rt.add_column(table.corner)
    rt.add_column("paper", justify="right")
    rt.add_column("ours", justify="right")
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


def all_tables_markdown(tables: list[Table], results: dict) -> str:
    head = [
        "# Result tables",
        "",
        "Generated by `attn table --all` from the records under `results/`; do not edit by hand.",
        "Each record's `result.json` holds the command, resolved recipe, metrics, hardware, wall time and git sha.",
        "",
    ]
    return "\n".join(head) + "\n".join(render(t, results, "markdown") for t in tables)
