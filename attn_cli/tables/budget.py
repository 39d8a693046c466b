"""What a table row cost to train, read from its records: updates × batch, device, wall time, CPU seconds.

Issue 29: a comparison between two rows means something only at an equal budget, so every row shows the
budget its numbers were trained under, and an ordering the paper claims is checked only between cells
trained for the same number of updates (or of examples seen) unless the table declares "same wall clock"
(:class:`attn_cli.tables.base.Order`).

Every figure comes from a record (``results/<task>/<dataset>/<name>/``): ``steps``, ``epochs``,
``train_wall_s``, ``hardware`` and ``budget`` from ``result.json``; the batch size from
``budget.batch_size`` (recorded since issue 29), else the record's ``recipe.yaml``; CPU seconds from
``train_cpu_s`` (recorded since issue 29), else the record's ``cpu_seconds``, measured by hand (``train_cpu_s``,
or ``train_and_eval_cpu_s`` for a measurement around training and evaluation; a ``cpu_seconds.json`` beside the
record until 2026-12-06, when it was folded into result.json to save a file-system block per record).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Budget:
    """One record's training budget."""

    steps: int | None  # optimiser updates
    batch: int | None  # examples per update (None for token batches: their count varies)
    epochs: int | None
    device: str  # "H200", "CPU ×1" (torch threads)
    wall_s: float | None  # training wall time, every segment of a resumed run
    cpu_s: float | None  # CPU seconds of the training process, where recorded
    cpu_what: str  # "" (training) or "train+eval" (a measurement around both)
    time_min: float | None  # the recipe's wall-clock cap (train.max_time_min), None when uncapped
    tokens: int | None = None  # token batches: at most this many (padded) tokens per update

    @property
    def examples(self) -> int | None:
        return None if self.steps is None or self.batch is None else self.steps * self.batch


@functools.cache
def _recipe_batch(path: str) -> int | None:
    from attn_cli.io import record_file

    recipe = record_file(Path(path).parent, "recipe.yaml")
    if not recipe.is_file():
        return None
    data = yaml.load(recipe.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    batch = (data.get("train") or {}).get("batch_size")
    return int(batch) if batch is not None else None


def _noted_cpu(rec: dict[str, Any]) -> tuple[float | None, str]:
    data = rec.get("cpu_seconds") or {}
    if "train_cpu_s" in data:
        return float(data["train_cpu_s"]), ""
    if "train_and_eval_cpu_s" in data:
        return float(data["train_and_eval_cpu_s"]), "train+eval"
    return None, ""


def _device(hardware: dict[str, Any]) -> str:
    gpus = hardware.get("gpus") or []
    if gpus:
        name = str(gpus[0]).removeprefix("NVIDIA ")
        return name if len(gpus) == 1 else f"{len(gpus)}×{name}"
    threads = hardware.get("torch_threads")
    return f"CPU ×{threads}" if threads else "CPU"


def of_record(rec: dict[str, Any]) -> Budget:
    """The budget a record states (see the module docstring for where each figure comes from)."""
    plan = rec.get("budget") or {}
    path = str(rec.get("_path", ""))
    tokens = plan.get("batch_tokens")
    batch = None if tokens else plan.get("batch_size")
    if batch is None and not tokens and path:
        batch = _recipe_batch(path)
    cpu, what = (rec["train_cpu_s"], "") if rec.get("train_cpu_s") is not None else (None, "")
    if cpu is None:
        cpu, what = _noted_cpu(rec)
    time_min = plan.get("max_time_min")
    return Budget(
        steps=rec.get("steps"),
        batch=batch,
        epochs=rec.get("epochs"),
        device=_device(rec.get("hardware") or {}),
        wall_s=rec.get("train_wall_s"),
        cpu_s=cpu,
        cpu_what=what,
        time_min=float(time_min) if time_min else None,
        tokens=int(tokens) if tokens else None,
    )


def _span(values: Sequence[float], fmt: str) -> str:
    """One figure, or the range of several: "4,204", "1,500–3,100"."""
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else f"{format(low, fmt)}–{format(high, fmt)}"


def updates_text(budgets: list[Budget]) -> str:
    """ "4,204×64 (5 ep)" for one record ("7,000×≤960 tok (16 ep)" on token batches); "20 runs: 1,500–3,100×32
    (100 ep)" for a cell or row of several."""
    steps = [b.steps for b in budgets if b.steps is not None]
    if not steps:
        return "?"
    batches = [str(b) for b in sorted({b.batch for b in budgets if b.batch is not None})]
    batches += [f"≤{t} tok" for t in sorted({b.tokens for b in budgets if b.tokens})]
    text = _span(steps, ",") + ("×" + "/".join(batches) if batches else "")
    epochs = [b.epochs for b in budgets if b.epochs]
    if epochs:
        text += f" ({_span(epochs, ',')} ep)"
    return text if len(budgets) == 1 else f"{len(budgets)} runs: {text}"


def _duration(seconds: list[float]) -> str:
    top = max(seconds)
    if top < 120:
        return _span(seconds, ".0f") + " s"
    if top < 7200:
        return _span([s / 60 for s in seconds], ".1f") + " min"
    return _span([s / 3600 for s in seconds], ".1f") + " h"


def device_text(budgets: list[Budget]) -> str:
    return " / ".join(sorted({b.device for b in budgets}))


def time_text(budgets: list[Budget]) -> str:
    """Training wall time ("18.0 min"; a range over several records), and CPU seconds where every record has them."""
    walls = [b.wall_s for b in budgets if b.wall_s is not None]
    text = _duration(walls) if walls else "?"
    cpus = [b.cpu_s for b in budgets if b.cpu_s is not None]
    if cpus and len(cpus) == len(budgets):
        what = {b.cpu_what for b in budgets} - {""}
        text += f", {_span(cpus, ',.0f')} CPU s" + (f" ({'/'.join(sorted(what))})" if what else "")
    return text


def cap_text(budgets: list[Budget]) -> str:
    """The wall-clock cap a cell was trained under, and the time it took: "cap 18 min, 18.1 min"."""
    caps = sorted({f"{b.time_min:g}" for b in budgets if b.time_min})
    return f"cap {'/'.join(caps) if caps else 'none'}" + (" min" if caps else "") + f", {time_text(budgets)}"


def same_updates(left: list[Budget], right: list[Budget]) -> bool:
    """Whether two cells were trained for the same number of updates, or on the same number of examples,
    record by record (a cell computed from several records, such as a mean over twenty tasks, pairs them
    in order)."""
    if len(left) != len(right) or not left:
        return False
    steps = [(a.steps, b.steps) for a, b in zip(left, right)]
    if all(x is not None and x == y for x, y in steps):
        return True
    examples = [(a.examples, b.examples) for a, b in zip(left, right)]
    return all(x is not None and x == y for x, y in examples)


def same_wall_clock(left: list[Budget], right: list[Budget]) -> bool:
    """Whether two cells were trained under the same wall-clock cap (``train.max_time_min``), record by record."""
    if len(left) != len(right) or not left:
        return False
    return all(a.time_min is not None and a.time_min == b.time_min for a, b in zip(left, right))
