"""`attn table`: pick tables by name or family and render them; imports no torch.

A family is the task a table's records belong to (``nmt``, ``caption``, ``vision``, ``memory``,
``reader``), so ``attn table nmt`` prints the NMT tables. A table's own name wins over a family's.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from attn_cli.errors import AttnError, unknown
from attn_cli.io import atomic_write
from attn_cli.registry import TABLES
from attn_cli.tables.base import Table, all_tables_markdown, load_results, render, rich_table, summary_table

FORMATS = ("rich", "markdown", "csv", "latex")


def family(table: Table) -> str | None:
    """The task of a table's records: its own reference's, else its columns', else its rows'."""
    refs = [table.ref, *(c.ref for c in table.columns), *(r.ref for r in table.rows)]
    return next((r.task for r in refs if r.task), None)


def families() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, spec in TABLES.items():
        out.setdefault(family(spec) or "other", []).append(name)
    return out


def listing(width: int = 80) -> str:
    """``attn table --list``: every table and its title under its family, wrapped to ``width`` columns."""
    lines = []
    for fam, names in sorted(families().items()):
        lines.append(f"{fam} (attn table {fam}: all of them)")
        for n in names:
            lines.append(
                textwrap.fill(TABLES.get(n).title, width, initial_indent=f"  {n:<16} ", subsequent_indent=" " * 19)
            )
    lines.append(f"{'summary':<18} every recorded result, one row each")
    return "\n".join(lines) + "\n"


def table(
    name: str | None,
    *,
    fmt: str,
    all_: bool,
    list_: bool,
    results_dir: Path,
    out: Path | None,
    width: int | None = None,
) -> Any:
    """Text (markdown, csv, latex, a listing) or rich renderables (a list, one per table) for ``name``:
    a table, a family of tables, or ``summary``. ``width``: the terminal's, for rich tables."""
    if fmt not in FORMATS:
        raise unknown("table format", fmt, FORMATS)
    if list_:
        return listing(width or 80)
    if name is not None and name != "summary" and name not in TABLES and name not in families():
        raise unknown("table or family", name, {*TABLES.names(), *families(), "summary"})
    results = load_results(results_dir)
    if name == "summary":
        return summary_table(results)
    if all_:
        text = all_tables_markdown([t for _, t in TABLES.items()], results)
        target = out or results_dir / "TABLES.md"
        atomic_write(target, text)
        return f"wrote {target}\n"
    if name is None:
        raise AttnError(f"name a table or a family (one of: {', '.join([*families(), *TABLES.names()])}) or pass --all")
    specs = [TABLES.get(name)] if name in TABLES else [TABLES.get(n) for n in families()[name]]
    if fmt == "rich" and out is None:
        return [rich_table(spec, results, width) for spec in specs]
    text = "\n".join(render(spec, results, "markdown" if fmt == "rich" else fmt) for spec in specs)  # type: ignore[arg-type]
    if out is not None:
        atomic_write(out, text)
    return text
