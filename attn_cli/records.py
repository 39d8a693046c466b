"""Records and checkpoint files: what outlives a run directory.

* :func:`record` copies an evaluated run's durable facts (metrics with units, commands, git sha, hardware,
  wall times, predictions, learning curve, the sha256 of the checkpoint scored and of any pretrained weights
  the run started from) into ``results/<task>/<dataset>/<recipe>/`` (DESIGN §6), the files the tables are
  built from.
* :func:`average_checkpoints` averages the parameters of several checkpoints of one model
  (Junczys-Dowmunt et al. 2016; OpenNMT's ``-average``).

Kept apart from :mod:`attn_cli.run` (training and evaluation) because neither needs a trainer: they read
and write files only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from attn_cli.config import dump_recipe, recipe_from_dict
from attn_cli.errors import AttnError
from attn_cli.io import (
    PREDICTION_FLOATS,
    SHARED,
    atomic_path,
    atomic_write,
    float32_jsonl,
    read_json,
    sha256_file,
    write_json,
)
from attn_cli.registry import TASKS
from attn_cli.runs import check_run_dir, train_summary


def average_checkpoints(paths: list[Path], out: Path) -> Path:
    """Average the parameters of several checkpoints of one model (Junczys-Dowmunt et al. 2016; OpenNMT's
    ``-average``): floating-point tensors are averaged, everything else (metadata, step) comes from the last one."""
    import torch

    from attn_cli.tasks.base import load_checkpoint, read_checkpoint

    if len(paths) < 2:
        raise AttnError("give at least two checkpoints to average")
    tasks = set()
    ckpts = []
    for path in paths:
        ckpt = read_checkpoint(Path(path))  # weights only: readable, safe, an attn checkpoint
        load_checkpoint(Path(path), task=str(ckpt["attn"].get("task")))  # and its weights fit its model
        tasks.add((ckpt["attn"]["task"], ckpt["attn"]["recipe"]["model"]["name"]))
        ckpts.append(ckpt)
    if len(tasks) > 1:
        raise AttnError(f"checkpoints come from different models ({sorted(tasks)}); average one model's checkpoints")
    keys = ckpts[0]["state_dict"].keys()
    if any(c["state_dict"].keys() != keys for c in ckpts):
        raise AttnError("checkpoints have different parameters; were they trained with the same recipe?")
    merged = dict(ckpts[-1])
    merged["state_dict"] = {
        k: (
            torch.stack([c["state_dict"][k] for c in ckpts]).mean(0)
            if ckpts[-1]["state_dict"][k].is_floating_point()
            else ckpts[-1]["state_dict"][k]
        )
        for k in keys
    }
    merged.pop("optimizer_states", None)
    merged.pop("lr_schedulers", None)
    merged["attn"] = {**merged["attn"], "averaged_from": [str(p) for p in paths]}
    with atomic_path(out) as tmp:
        torch.save(merged, tmp)
    return out


# ---------------------------------------------------------------------------------------------
# record: a run's evaluation -> results/<task>/<dataset>/<recipe>/


def eval_dir(run_dir: Path, split: str, name: str | None = None) -> Path:
    """Where an evaluation of ``run_dir`` on ``split`` writes: ``eval/<split>``, or ``eval/<split>@<name>``."""
    return run_dir / "eval" / (split if not name else f"{split}@{name.replace('/', '-')}")


def record(
    task: str,
    run: Path,
    *,
    split: str = "test",
    results_dir: Path,
    name: str | None = None,
    allow_dirty: bool = False,
    note: str = "",
) -> Path:
    """Copy an evaluated run's durable facts into ``results/`` (small files only). A run trained from uncommitted
    code (a ``-dirty`` git sha in any segment) is refused unless ``allow_dirty``: its sha does not name the code
    that ran, and the tables mark such rows with a dagger. ``note``: why the row differs from the paper, which
    a table says beside an ordering the row fails (``attn record --note``)."""
    run_dir = check_run_dir(Path(run))
    named = eval_dir(run_dir, split, name)
    src = named if (named / "metrics.json").is_file() else run_dir / "eval" / split
    metrics_path = src / "metrics.json"
    if not metrics_path.is_file():
        raise AttnError(
            f"run {run_dir} has no {split} evaluation; run `attn eval {task} --run {run_dir} --split {split}` first"
        )
    ev = read_json(metrics_path)
    data = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    recipe = recipe_from_dict(dict(data), name=data["name"], task=task)
    spec = TASKS.get(task)
    info = read_json(run_dir / "run.json")
    dirty = [s["git_sha"] for s in info.get("segments", []) if str(s.get("git_sha", "")).endswith("-dirty")]
    if dirty and not allow_dirty:
        raise AttnError(
            f"run {run_dir} was trained from uncommitted code (git sha {dirty[-1]}); commit and train again, "
            "or add --allow-dirty to record it marked † in the tables"
        )
    done = train_summary(run_dir)
    # --name records one evaluation of a run as its own table row (e.g. "luong-local-p+unk");
    # a non-test split is recorded beside the test record, never over it: results/.../<name>-val/
    label = name or recipe.name.replace("/", "-")
    dest = results_dir / task / spec.dataset_of(recipe) / (label + ("" if split == "test" else f"-{split}"))
    dest.mkdir(parents=True, exist_ok=True)
    units = getattr(spec, "metric_units", {})
    result = {
        "task": task,
        "dataset": spec.dataset_of(recipe),
        "split": split,
        "recipe": recipe.name,
        **({"name": name} if name else {}),  # the row tables look up: the name, else the recipe
        **({"note": note} if note else {}),
        "model": recipe.model_name,
        "metrics": {k: {"value": v, "unit": units.get(k, "")} for k, v in ev["metrics"].items()},
        "eval": ev["eval"],
        "info": ev.get("info", {}),
        "reference": dataclasses.asdict(recipe.reference),
        "commands": [s["command"] for s in info.get("segments", [])] + [ev.get("command", "")],
        "git_sha": info.get("segments", [{}])[-1].get("git_sha", "unknown"),
        "hardware": info.get("hardware", {}),
        "versions": info.get("versions", {}),
        "train_wall_s": info.get("train_wall_s"),
        "train_cpu_s": info.get("train_cpu_s"),
        "eval_wall_s": ev.get("eval_wall_s"),
        "epochs": done.get("epochs"),
        "steps": done.get("steps"),
        "seed": recipe.train.seed,
        "budget": {  # the tables' budget cells and equal-budget checks read these (attn_cli/tables/budget.py)
            "batch_size": recipe.train.batch_size,
            "max_epochs": recipe.train.max_epochs,
            "max_steps": recipe.train.max_steps,
            "max_time_min": recipe.train.max_time_min,
            # token batches (NMT's data.batching=tokens): up to this many tokens per update, not batch_size sentences
            **({"batch_tokens": tokens} if (tokens := getattr(recipe.data, "batch_tokens", 0)) else {}),
        },
        "run_dir": str(run_dir),
    }
    checkpoint = Path(str(ev.get("checkpoint", "")))
    if checkpoint.is_file():  # what a later run's pretrained weights are matched against (_pretrained_from)
        result["checkpoint"] = {"path": str(checkpoint), "sha256": sha256_file(checkpoint)}
        result.update(_kept_checkpoint_budget(checkpoint, done))
    if info.get("pretrained"):
        result["pretrained"] = _pretrained_from(info["pretrained"], results_dir)
    result.update(_copy_predictions(src, dest))
    _hand_back(dest)
    _copy_learning_curve(run_dir / "logs", dest)
    atomic_write(dest / "recipe.yaml", dump_recipe(recipe))
    sibling = curve_sibling(dest.name, split)
    for key, names in SHARED.items():
        # the test record of the same run holds the same curve (and recipe): one copy in results/
        if sibling and (shared := shared_file(dest, dest.parent / sibling, str(run_dir), names)):
            result[key] = shared
    write_json(dest / "result.json", result)
    return dest / "result.json"


def _kept_checkpoint_budget(checkpoint: Path, done: dict[str, Any]) -> dict[str, Any]:
    """A kept validation checkpoint (``train.keep_val_checkpoints``: ``val-step<N>.ckpt`` and its ``.json``) scores
    the model as it was at step N, not at the end of the run: its steps, epoch and training seconds (validations
    included, as the run's totals) are the record's budget, and ``scored_at`` says which step of how many."""
    from attn_cli.callbacks import KEPT_PREFIX  # (imports Lightning: only when recording)

    facts = checkpoint.with_suffix(".json")
    if not checkpoint.name.startswith(KEPT_PREFIX) or not facts.is_file():
        return {}
    kept = read_json(facts)
    return {
        "steps": kept["step"],
        "epochs": kept["epoch"],
        "train_wall_s": kept["wall_s"],
        "train_cpu_s": kept["cpu_s"],
        "scored_at": {"step": kept["step"], "of_steps": done.get("steps"), "checkpoint": checkpoint.name},
    }


def _pretrained_from(pretrained: dict[str, Any], results_dir: Path) -> dict[str, Any]:
    """The pretrained weights a run started from (run.json's ``pretrained``: file and sha256), with the record of
    the run that made them when one is in ``results_dir``: the record whose scored checkpoint has the same sha256.

    A row built on a pretrained encoder (the digit-caption ``-pre`` rows on ``grid-cnn-28``) is only as
    trustworthy as that encoder: the sha256 names the very bytes, the record how they were trained and scored.
    """
    digest = pretrained.get("sha256")
    if digest:
        for path in sorted(results_dir.rglob("result.json")):
            if read_json(path).get("checkpoint", {}).get("sha256") == digest:
                return {**pretrained, "record": path.parent.relative_to(results_dir).as_posix()}
    return dict(pretrained)


def _copy_learning_curve(logs: Path, dest: Path) -> None:
    """The run's logged curve (every segment of a resumed run, in order) as ``learning_curve.csv``, gzipped
    (``learning_curve.csv.gz``, deterministic) when over ``RECORD_GZIP_OVER``."""
    import csv
    import io

    segments = sorted(logs.glob("metrics.segment-*.csv"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    parts = [*segments, *([logs / "metrics.csv"] if (logs / "metrics.csv").is_file() else [])]
    if not parts:
        return
    keys: list[str] = []
    rows: list[dict[str, str]] = []
    for part in parts:
        with part.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            keys += [k for k in reader.fieldnames or [] if k not in keys]
            rows += list(reader)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    name, other = "learning_curve.csv", "learning_curve.csv.gz"
    if len(data) > RECORD_GZIP_OVER:  # read back by attn_cli.io.read_curve, either form
        import gzip

        data, name, other = gzip.compress(data, mtime=0), other, name
    atomic_write(dest / name, data)
    (dest / other).unlink(missing_ok=True)


def curve_sibling(folder: str, split: str) -> str | None:
    """The record folder whose learning curve the record ``folder`` (of ``split``) may share, or None: a non-test
    split's test record (``<label>-val`` → ``<label>``) and another scoring of the same run, recorded with
    ``--name <label>+<how>`` (``+mc10``: Monte-Carlo evaluation, ``+unk``: unk replacement) → ``<label>``.
    :func:`shared_file` then checks that the two come from the same run and hold the same bytes."""
    label = folder[: -len(split) - 1] if split != "test" and folder.endswith(f"-{split}") else folder
    base = label.split("+", 1)[0]
    return base if base and base != folder else None


def shared_file(dest: Path, sibling: Path, run_dir: str, names: tuple[str, ...]) -> str | None:
    """When the record in ``sibling`` (the test record of the same label) was scored from the same run and holds
    a byte-identical file of ``names`` (its learning curve, or its resolved recipe), remove ``dest``'s copy and
    return the sibling's folder name (result.json's ``learning_curve_of`` / ``recipe_of``, which
    :func:`attn_cli.io.read_curve` and :func:`attn_cli.io.record_file` follow); else None and ``dest`` keeps its own. A
    validation or training-split record of a run (the pick-by-validation rows) would otherwise repeat its test
    record's curve and recipe: 64 curves held 0.9 MB of results/, 60 recipes 0.25 MB (a block each)."""
    if sibling == dest or not (sibling / "result.json").is_file():
        return None
    if read_json(sibling / "result.json").get("run_dir") != run_dir:
        return None
    for name in names:
        mine, theirs = dest / name, sibling / name
        if mine.is_file():
            if not theirs.is_file() or theirs.read_bytes() != mine.read_bytes():
                return None
            mine.unlink()
            return sibling.name
    return None


def _hand_back(dest: Path) -> None:
    """Before ``dest``'s curve and recipe are rewritten, every sibling record sharing them (``learning_curve_of`` /
    ``recipe_of`` naming ``dest``) gets its own copy back: re-recording a test row — from another run, or from the
    same run trained further — never changes the curve or recipe of the validation record beside it
    (``scripts/shrink_results.py`` shares them again where the bytes still match)."""
    for key, names in SHARED.items():
        held = next((name for name in names if (dest / name).is_file()), None)
        if held is None:
            continue
        for result in sorted(dest.parent.glob("*/result.json")):
            info = read_json(result)
            if info.get(key) == dest.name and result.parent != dest:
                atomic_write(result.parent / held, (dest / held).read_bytes())
                del info[key]
                write_json(result, info)


RECORD_GZIP_OVER = 4_096  # bytes (one file-system block): a text file over this is recorded gzipped (results/ < 30 MB: test_results_size.py)
RECORD_FILE_LIMIT = 2_000_000  # bytes: a file over this even gzipped is left out of results/ (the run keeps it)
# Views of predictions.jsonl that evaluation writes for outside tools (hyp.txt / ref.txt for sacrebleu's command
# line, captions.json in the COCO results format): the record's predictions regenerate them (results/README.md).
RECORD_DERIVED = ("hyp.txt", "ref.txt", "captions.json")
RECORD_TEXT = (".jsonl", ".json", ".txt", ".csv")  # gzip shrinks these; PNGs are compressed already
RECORD_PNG_OVER = 64_000  # bytes: a picture over this is recorded with a 256-colour palette (about half the size)
RECORD_PNG_LARGE = 128_000  # bytes: one still over this with that palette gets 64 colours (a third smaller again)


def palette_png(data: bytes) -> bytes:
    """``data`` (a PNG) re-encoded with an adaptive 256-colour palette (median cut: deterministic, so recording
    the same picture twice gives the same bytes), or 64 colours when the 256-colour one is still over
    ``RECORD_PNG_LARGE``; the original when that is not smaller. Attention maps and weightings are drawn from a
    colour map of 256 entries, so 256 colours lose next to nothing; 64 show the map in 64 steps (faint contour
    bands on smooth attention, e.g. Show-Attend-and-Tell's nine-panel figures: 250 kB → 120 kB)."""
    import io

    from PIL import Image

    def encoded(colours: int) -> bytes:
        out = io.BytesIO()
        with Image.open(io.BytesIO(data)) as im:
            im.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT).save(out, "PNG", optimize=True)
        return out.getvalue()

    try:
        best = encoded(256)
        if len(best) > RECORD_PNG_LARGE:
            best = encoded(64)
    except (OSError, ValueError):  # not a picture PIL reads: recorded as it is
        return data
    return best if len(best) < len(data) else data


def _float32_form(data: bytes) -> bytes | None:
    """A predictions file's bytes with its floats in their shortest float32 form (:func:`attn_cli.io.float32_jsonl`),
    None when that would lose anything (then it is recorded as it is)."""
    try:
        short = float32_jsonl(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    return None if short is None else short.encode("utf-8")


def _copy_predictions(src: Path, dest: Path) -> dict[str, Any]:
    """Copy the evaluation's prediction files into a record: as they are when small, text gzipped when over
    ``RECORD_GZIP_OVER``, pictures over ``RECORD_PNG_OVER`` with a palette (:func:`palette_png`) (``mtime=0``:
    recording the same file twice gives the same bytes), and left out (named, with their size, the run keeps
    them) when still over ``RECORD_FILE_LIMIT``. ``predictions.jsonl`` has its floats written in their shortest
    float32 form when every one is a float32 value (:func:`_float32_form`; a third smaller gzipped for per-example
    losses). Files a re-recording replaces (the other of ``x`` / ``x.gz``, a derived view) are removed, so a
    record never holds two versions. Returns the result.json entries that describe them: ``predictions`` (the
    names kept), ``prediction_floats`` ("float32", which :func:`attn_cli.io.read_predictions` reads back through)
    and ``predictions_left_out``, the last two only where they apply."""
    import gzip

    kept, left_out, floats = [], [], ""
    for p in sorted(src.iterdir()):
        if not p.is_file() or p.name == "metrics.json":
            continue
        written = ""
        if p.name not in RECORD_DERIVED:
            data, name = p.read_bytes(), p.name
            short = _float32_form(data) if name == "predictions.jsonl" else None
            data = data if short is None else short
            if len(data) > RECORD_GZIP_OVER and p.suffix in RECORD_TEXT:
                data, name = gzip.compress(data, mtime=0), f"{p.name}.gz"
            elif len(data) > RECORD_PNG_OVER and p.suffix == ".png":
                data = palette_png(data)
            if len(data) < RECORD_FILE_LIMIT:
                atomic_write(dest / name, data)
                kept.append(written := name)
                floats = "float32" if short is not None else floats
            else:
                packed = f"; {len(data)} gzipped" if name != p.name else ""
                left_out.append(f"{p.name} ({p.stat().st_size} bytes{packed}; kept in the run)")
        for stale in {p.name, f"{p.name}.gz"} - {written}:
            (dest / stale).unlink(missing_ok=True)
    return {
        "predictions": kept,
        **({PREDICTION_FLOATS: floats} if floats else {}),
        **({"predictions_left_out": left_out} if left_out else {}),
    }


def float32_predictions(result_json: Path) -> tuple[str, int, int] | None:
    """Rewrite a record's predictions in the form `attn record` now writes them (:func:`_copy_predictions`): floats
    in their shortest float32 form, the record marked ``"prediction_floats": "float32"``. Only when every float
    of the file is a float32 value and every row reads back (:func:`attn_cli.io.read_predictions`) byte for byte
    as it was (:func:`attn_cli.io.float32_jsonl` checks both); else None and nothing is touched. Returns the
    file's name and its size before and after.

    Every moment between the writes is a valid record: the marker comes first (casting the old float32 values
    through float32 leaves them as they are), a renamed file (``.gz`` dropped or added) is listed once written,
    and the old one is removed last."""
    import gzip

    info = read_json(result_json)
    listed = [n for n in ("predictions.jsonl", "predictions.jsonl.gz") if n in info.get("predictions", [])]
    if info.get(PREDICTION_FLOATS) or not listed:
        return None
    old = result_json.parent / listed[0]
    raw = old.read_bytes()
    short = _float32_form(gzip.decompress(raw) if old.suffix == ".gz" else raw)
    if short is None:
        return None
    data, name = short, "predictions.jsonl"
    if len(data) > RECORD_GZIP_OVER:
        data, name = gzip.compress(data, mtime=0), "predictions.jsonl.gz"
    info = _with_entry(info, "predictions", PREDICTION_FLOATS, "float32")
    write_json(result_json, info)
    atomic_write(result_json.parent / name, data)
    if name != old.name:
        info["predictions"] = [name if n == old.name else n for n in info["predictions"]]
        write_json(result_json, info)
        old.unlink()
    return name, len(raw), len(data)


def _with_entry(info: dict[str, Any], after: str, key: str, value: Any) -> dict[str, Any]:
    """``info`` with ``key: value`` placed right after ``after`` (where `attn record` puts it)."""
    out: dict[str, Any] = {}
    for k, v in info.items():
        out[k] = v
        if k == after:
            out[key] = value
    return out
