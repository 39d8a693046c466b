"""The table engine: a declarative :class:`Table` + recorded results -> rich / Markdown / CSV / LaTeX.

A table lists rows and columns the way the paper lays them out. Every cell says
where its number comes from: ``(task, dataset, recipe, split, metric)``, each field
taken from the cell, else the row, else the column, else the table. The paper's
number for a cell sits in its own column beside ours (``Row.paper[col.key]``).
Columns with ``delta=True`` show "(+1.3)" against the previous row that has a
value in the same section, as in Luong et al.'s Table 1; the best of our values in a column is bold.

Nothing here is typed by hand: a cell with no record renders as "–".
"""

from __future__ import annotations

import csv
import io
import json
import math
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
    ``predictions.jsonl.gz`` when `attn record` gzipped it (``run.RECORD_GZIP_OVER``). Tests and scripts
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
            headers.append(f"{col.header} (paper)" if col.ours else col.header)
            groups.append(col.group)
        if col.ours:
            headers.append(f"{col.header} (ours)" if col.paper else col.header)
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

    out = [f"### {table.title}", "", f"Paper numbers: {table.source}.", ""]
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


def rich_table(table: Table, results: dict) -> Any:
    from rich.table import Table as RichTable

    groups, headers, body = compute(table, results)
    caption = f"paper: {table.source}" + (f"\n{DIRTY_NOTE}" if _marked(body) else "")
    rt = RichTable(title=table.title, caption=caption)
    for i, h in enumerate(headers):
        label = f"{groups[i]}\n{h}" if groups[i] else h
        rt.add_column(label, justify="left" if i == 0 else "right")
    for row in body:
        section = row[0].text and all(not c.text for c in row[1:])
        rt.add_row(
            *[
                f"[bold]{c.text}[/bold]" if c.bold else (f"[italic]{c.text}[/italic]" if section and i == 0 else c.text)
                for i, c in enumerate(row)
            ]
        )
    return rt


def summary_table(results: dict, title: str = "recorded results") -> Any:
    """Every record as one row (task, dataset, recipe, split, metrics, wall time): ``attn table summary``."""
    from rich.table import Table as RichTable

    rt = RichTable(title=title)
    for col in ("task", "dataset", "recipe", "split", "metrics", "train wall"):
        rt.add_column(col, justify="right" if col == "train wall" else "left")
    for (task, dataset, recipe, split), rec in sorted(results.items()):
        metrics = ", ".join(
            f"{k}={v['value']:.4g}" if isinstance(v, dict) and isinstance(v.get("value"), (int, float)) else f"{k}=?"
            for k, v in rec["metrics"].items()
        )
        wall = rec.get("train_wall_s")
        rt.add_row(task, dataset, recipe, split, metrics, f"{wall:.0f} s" if wall else "")
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
