"""The commands as plain functions: prepare, train, evaluate, visualize, record, recipes.

``cli.py`` parses arguments and prints; everything that does work is here, callable
from Python and tests. Every function raises :class:`~attn_cli.errors.AttnError` for
user mistakes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from attn_cli.config import (
    Recipe,
    apply_overrides,
    available_recipes,
    build,
    dump_recipe,
    load_recipe,
    recipe_from_dict,
)
from attn_cli.errors import AttnError, unknown
from attn_cli.io import atomic_write, read_json, remove_stale_temps, write_json
from attn_cli.registry import DATASETS, MODELS, TASKS
from attn_cli.runs import (
    check_run_dir,
    find_checkpoint,
    new_run_dir,
    run_info,
    train_summary,
)


def global_rank() -> int:
    """This process's rank as the launcher set it (0 when not distributed)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def is_rank_zero() -> bool:
    return global_rank() == 0


# ---------------------------------------------------------------------------------------------
# prepare


def prepare(
    target: str,
    *,
    dataset: str | None = None,
    source: Path | None = None,
    data_dir: Path,
    options: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    name: str | None = None,
    force: bool = False,
) -> Path:
    """Prepare dataset ``target`` (or ``--dataset`` of task ``target``) into ``data_dir/<name>``."""
    from data_prep.base import run_prepare

    if target in TASKS:
        if dataset is None:
            names = [n for n, spec in DATASETS.items() if spec.task == target]
            raise AttnError(f"`attn prepare {target}` needs --dataset; one of: {', '.join(names)}")
        ds_name = dataset
    else:
        if target not in DATASETS:
            raise unknown("task or dataset", target, [*TASKS.names(), *DATASETS.names()])
        ds_name = target
    spec = DATASETS.get(ds_name)
    raw: dict[str, Any] = {k: v for k, v in (options or {}).items() if v is not None}
    valid = {f.name for f in dataclasses.fields(spec.Config)}
    for key in raw:
        if key not in valid:
            raise AttnError(
                f"--{key.replace('_', '-')} does not apply to dataset {ds_name} (options: {', '.join(sorted(valid))})"
            )
    raw = apply_overrides(raw, list(overrides or []))
    cfg = build(spec.Config, raw, "prepare")
    return run_prepare(spec, cfg, source=source, data_dir=data_dir, name=name, force=force)


# ---------------------------------------------------------------------------------------------
# train


def _with_devices(overrides: list[str], devices: str | None, accelerator: str | None) -> list[str]:
    out = list(overrides)
    if devices is not None:
        out.append(f"train.devices={devices}")
    if accelerator is not None:
        out.append(f"train.accelerator={accelerator}")
    return out


BUDGET_KEYS = ("train.max_steps", "train.max_epochs", "train.max_time_min")


def _check_extension(task: str, run_dir: Path, recipe: Recipe, overrides: list[str]) -> None:
    """A finished run continues only under a larger budget (``--set train.max_steps=N`` and the like):
    its weights, optimiser state, schedule and clock go on from the last checkpoint, and the run's
    history (run.json) gains a segment."""
    if not any(o.split("=", 1)[0].strip() in BUDGET_KEYS for o in overrides):
        raise AttnError(
            f"run {run_dir} already finished training; evaluate it with `attn eval {task} --run {run_dir}`, "
            "or continue it under a larger budget: --resume RUN --set train.max_steps=N (or max_epochs, max_time_min)"
        )
    done, t = read_json(run_dir / "train_done.json"), recipe.train
    steps, epochs = int(done.get("steps") or 0), int(done.get("epochs") or 0)
    seconds = float(read_json(run_dir / "run.json").get("train_wall_s") or 0.0)
    if t.max_steps != -1 and t.max_steps <= steps:
        raise AttnError(f"run {run_dir} already trained {steps} steps; raise train.max_steps above {steps}")
    if t.max_epochs is not None and t.max_epochs != -1 and t.max_epochs <= epochs:
        raise AttnError(f"run {run_dir} already trained {epochs} epochs; raise train.max_epochs above {epochs}")
    if t.max_time_min is not None and t.max_time_min * 60 <= seconds:
        raise AttnError(
            f"run {run_dir} already trained {seconds / 60:.1f} minutes; raise train.max_time_min above that"
        )


def _newest_resume_checkpoint(run_dir: Path) -> Path | None:
    candidates = [run_dir / "checkpoints" / "last.ckpt", *run_dir.glob("hpc_ckpt_*.ckpt")]
    existing = [p for p in candidates if p.is_file()]
    return max(existing, key=lambda p: p.stat().st_mtime) if existing else None


def train(
    task: str,
    recipe_name: str | None,
    *,
    overrides: list[str] | None = None,
    runs_dir: Path,
    data_dir: Path,
    resume: Path | None = None,
    run_dir: Path | None = None,
    devices: str | None = None,
    accelerator: str | None = None,
    progress: bool | None = None,
    extra_callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """Train a recipe; returns the summary written to ``train_done.json``."""
    from attn_cli.trainer import build_trainer, resolve_hardware

    spec = TASKS.get(task)
    overrides = _with_devices(list(overrides or []), devices, accelerator)
    ckpt_path: Path | None = None
    extending = False
    if resume is not None:
        run_dir = check_run_dir(Path(resume))
        data = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
        recipe = recipe_from_dict(
            apply_overrides(data, overrides), name=data.get("name", run_dir.parent.name), task=task
        )
        ckpt_path = _newest_resume_checkpoint(run_dir)
        if ckpt_path is None:
            raise AttnError(f"run {run_dir} has no checkpoint to resume from; start it again without --resume")
        if not zipfile.is_zipfile(ckpt_path):  # torch checkpoints are zip files: a cut copy has no central directory
            raise AttnError(f"{ckpt_path} is truncated or not a checkpoint; copy it again, or train afresh")
        extending = (run_dir / "train_done.json").is_file()
        if extending:
            _check_extension(task, run_dir, recipe, overrides)
    else:
        if recipe_name is None:
            raise AttnError(f"give --recipe NAME (one of: {', '.join(available_recipes(task))}) or --resume RUN_DIR")
        recipe = load_recipe(task, recipe_name, overrides)
        resolve_hardware(recipe.train)  # fail before anything is written
        if run_dir is None and "ATTN_RUN_DIR" in os.environ and not is_rank_zero():
            run_dir = Path(os.environ["ATTN_RUN_DIR"])  # a DDP worker re-launched by Lightning
        if run_dir is None:
            run_dir = new_run_dir(runs_dir, task, recipe.name)
    os.environ["ATTN_RUN_DIR"] = str(run_dir)  # DDP workers started by Lightning reuse this directory
    if is_rank_zero():
        remove_stale_temps(run_dir, recursive=True)  # what killed writes of an earlier start left behind

    L.seed_everything(recipe.train.seed, workers=True, verbose=False)
    dm = spec.datamodule(recipe, data_dir)
    dm.prepare_data()
    dm.setup("fit")  # a data error stops here, before the run directory exists
    module = spec.module(recipe, dm.meta)
    module.data = dm
    # pretrained weights the recipe names, also before the run directory exists; a resumed run
    # restores every weight from its own checkpoint instead
    pretrained = module.load_pretrained(Path(runs_dir)) if ckpt_path is None else None
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_rank_zero():
        atomic_write(run_dir / "recipe.yaml", dump_recipe(recipe))
        info = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
        segment = run_info()
        info.setdefault("first", segment)
        info.setdefault("segments", []).append({k: segment[k] for k in ("command", "git_sha", "started")})
        info["hardware"] = segment["hardware"]
        info["versions"] = segment["versions"]
        if pretrained:
            info["pretrained"] = pretrained
        write_json(run_dir / "run.json", info)
    trainer = build_trainer(recipe.train, run_dir, progress=progress, callbacks=extra_callbacks)
    if extending and is_rank_zero():  # the old summary stays beside the run until the new one replaces it
        os.replace(run_dir / "train_done.json", run_dir / "train_done.previous.json")
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if ckpt_path else None)
    finally:
        if is_rank_zero():
            os.environ.pop("ATTN_RUN_DIR", None)
    best = trainer.checkpoint_callback
    _final_validation(trainer, module, dm, recipe, best)
    wall = time.perf_counter() - start
    if not trainer.is_global_zero:
        return {}
    previous = read_json(run_dir / "run.json").get("train_wall_s", 0.0)
    info = read_json(run_dir / "run.json")
    info["train_wall_s"] = previous + wall
    write_json(run_dir / "run.json", info)
    score = best.best_model_score
    summary = {
        "run_dir": str(run_dir),
        "task": task,
        "recipe": recipe.name,
        "monitor": recipe.train.monitor,
        "best_score": float(score) if score is not None else None,
        "best_checkpoint": str(best.best_model_path or find_checkpoint(run_dir, "last")),
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "train_wall_s": round(previous + wall, 2),
        "stopped_by": "time budget" if trainer.fit_loop.max_batches and _timer_done(trainer) else "schedule",
    }
    write_json(run_dir / "train_done.json", summary)
    return summary


def _final_validation(trainer: L.Trainer, module: Any, dm: Any, recipe: Recipe, best: Any) -> None:
    """Validate the final weights when training stopped between validations (step or time budget).

    Lightning only validates on its schedule; a run cut by ``max_steps`` or ``max_time``
    mid-interval would otherwise never score its last weights. If they beat the best so
    far (or nothing was scored yet), they become ``best.ckpt``.
    """
    import torch

    if getattr(best, "_last_global_step_saved", -1) == trainer.global_step and best.best_model_score is not None:
        return
    metrics = trainer.validate(module, datamodule=dm, verbose=False)
    value = (metrics[0] if metrics else {}).get(recipe.train.monitor)
    if value is None:
        return
    value = torch.as_tensor(float(value))
    old = best.best_model_score
    improved = old is None or (value > old if recipe.train.monitor_mode == "max" else value < old)
    if improved:
        path = str(Path(best.dirpath) / "best.ckpt")
        trainer.save_checkpoint(path)
        best.best_model_score, best.best_model_path = value, path
    trainer.save_checkpoint(str(Path(best.dirpath) / "last.ckpt"))


def _timer_done(trainer: L.Trainer) -> bool:
    from lightning.pytorch.callbacks import Timer

    return any(
        isinstance(cb, Timer) and cb.time_remaining() is not None and cb.time_remaining() <= 0
        for cb in trainer.callbacks
    )


# ---------------------------------------------------------------------------------------------
# evaluate


def evaluate(
    task: str,
    run: Path,
    *,
    split: str = "test",
    overrides: list[str] | None = None,
    checkpoint: Path | None = None,
    data_dir: Path,
    devices: str | None = None,
    accelerator: str | None = None,
    progress: bool | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Score a trained run on ``split``; writes ``eval/<split>/{metrics.json, predictions...}``.

    A named evaluation (the row it will be recorded as, e.g. ``luong-local-p+unk``) writes to
    ``eval/<split>@<name>/`` instead, so that several evaluations of one run can run at once."""
    from attn_cli.tasks.base import load_checkpoint
    from attn_cli.trainer import build_trainer, resolve_hardware

    spec = TASKS.get(task)
    run_dir = check_run_dir(Path(run))
    ckpt = Path(checkpoint) if checkpoint else find_checkpoint(run_dir, "best")
    sections: dict[str, Any] = {}
    apply_overrides(sections, _with_devices(list(overrides or []), devices, accelerator))
    unknown_sections = set(sections) - {"eval", "train", "data"}
    if unknown_sections:
        raise AttnError(f"attn eval only takes --set eval.*, data.* or train.* (got {sorted(unknown_sections)[0]!r})")
    module, recipe = load_checkpoint(ckpt, task, sections)
    dm = spec.datamodule(recipe, data_dir)
    dm.setup("test")
    if split not in dm.split_names():
        raise unknown("split", split, dm.split_names())
    resolve_hardware(recipe.train)  # fail before the evaluation directory exists
    out = eval_dir(run_dir, split, name)
    out.mkdir(parents=True, exist_ok=True)
    module.eval_out = out
    module.data = dm
    trainer = build_trainer(recipe.train, run_dir, for_eval=True, progress=progress)
    start = time.perf_counter()
    trainer.test(module, dataloaders=dm.split_loader(split), verbose=False)
    seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return {}
    result = {
        "task": task,
        "split": split,
        "recipe": recipe.name,
        "model": recipe.model_name,
        "checkpoint": str(ckpt),
        "eval": dataclasses.asdict(recipe.eval),
        "metrics": module.last_metrics,
        "info": module.metrics_info,
        "command": run_info()["command"],
        "eval_wall_s": round(seconds, 2),
        "devices": trainer.world_size,
    }
    write_json(out / "metrics.json", result)
    return result


def rescore(
    task: str, run: Path, predictions: Path, *, split: str = "test", checkpoint: Path | None = None
) -> dict[str, float]:
    """Recompute the metrics from a saved predictions file (no decoding): what was recorded is what they give."""
    from attn_cli.io import read_jsonl
    from attn_cli.tasks.base import load_checkpoint

    run_dir = check_run_dir(Path(run))
    rows = read_jsonl(predictions)
    ids = [r.get("id") if isinstance(r, dict) else None for r in rows]
    if any(not isinstance(i, int) or isinstance(i, bool) for i in ids):
        raise AttnError(f"{predictions} has rows without an integer 'id'; give a predictions file `attn eval` wrote")
    if sorted(ids) != list(range(len(ids))):  # ids are dataset indices: a whole split holds 0..n-1 once each
        raise AttnError(
            f"{predictions} is misaligned: its ids are not 0..{len(ids) - 1} once each; "
            "give a predictions file `attn eval` wrote for one whole split"
        )
    module, _ = load_checkpoint(Path(checkpoint) if checkpoint else find_checkpoint(run_dir, "best"), task)
    try:
        return module.score(sorted(rows, key=lambda r: r["id"]), split)
    except KeyError as err:
        raise AttnError(f"{predictions} has no {err} field; is it a {task} predictions file?") from err


def average_checkpoints(paths: list[Path], out: Path) -> Path:
    """Average the parameters of several checkpoints of one model (Junczys-Dowmunt et al. 2016; OpenNMT's
    ``-average``): floating-point tensors are averaged, everything else (metadata, step) comes from the last one."""
    import torch

    from attn_cli.tasks.base import load_checkpoint

    if len(paths) < 2:
        raise AttnError("give at least two checkpoints to average")
    tasks = set()
    ckpts = []
    for path in paths:
        load_checkpoint(Path(path), task=_task_of(Path(path)))  # validates: readable, an attn checkpoint
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
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
    from attn_cli.io import atomic_path

    with atomic_path(out) as tmp:
        torch.save(merged, tmp)
    return out


def _task_of(path: Path) -> str:
    import torch

    try:
        info = torch.load(path, map_location="cpu", weights_only=False).get("attn") or {}
    except Exception as err:
        raise AttnError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__})") from err
    if "task" not in info:
        raise AttnError(f"{path} is not an attn checkpoint (no 'attn' metadata)")
    return str(info["task"])


# ---------------------------------------------------------------------------------------------
# record: a run's evaluation -> results/<task>/<dataset>/<recipe>/


def eval_dir(run_dir: Path, split: str, name: str | None = None) -> Path:
    """Where an evaluation of ``run_dir`` on ``split`` writes: ``eval/<split>``, or ``eval/<split>@<name>``."""
    return run_dir / "eval" / (split if not name else f"{split}@{name.replace('/', '-')}")


def record(task: str, run: Path, *, split: str = "test", results_dir: Path, name: str | None = None) -> Path:
    """Copy an evaluated run's durable facts into ``results/`` (small files only)."""
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
        "eval_wall_s": ev.get("eval_wall_s"),
        "epochs": done.get("epochs"),
        "steps": done.get("steps"),
        "seed": recipe.train.seed,
        "budget": {
            "max_epochs": recipe.train.max_epochs,
            "max_steps": recipe.train.max_steps,
            "max_time_min": recipe.train.max_time_min,
        },
        "run_dir": str(run_dir),
    }
    result["predictions"], left_out = _copy_predictions(src, dest)
    _copy_learning_curve(run_dir / "logs", dest)
    if left_out:
        result["predictions_left_out"] = left_out
    atomic_write(dest / "recipe.yaml", dump_recipe(recipe))
    write_json(dest / "result.json", result)
    return dest / "result.json"


def _copy_learning_curve(logs: Path, dest: Path) -> None:
    """The run's logged curve (every segment of a resumed run, in order) as ``learning_curve.csv``."""
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
    atomic_write(dest / "learning_curve.csv", text.getvalue())


RECORD_FILE_LIMIT = 2_000_000  # bytes per predictions file kept in results/ (the repository stays small)


def _copy_predictions(src: Path, dest: Path) -> tuple[list[str], list[str]]:
    """Copy the evaluation's prediction files into a record: as they are when small, gzipped when
    over the limit, and left out (named, with their size, the run keeps them) when even that is too big."""
    import gzip

    kept, left_out = [], []
    for p in sorted(src.iterdir()):
        if not p.is_file() or p.name == "metrics.json":
            continue
        if p.stat().st_size < RECORD_FILE_LIMIT:
            atomic_write(dest / p.name, p.read_bytes())
            kept.append(p.name)
            continue
        packed = gzip.compress(p.read_bytes(), mtime=0)
        if len(packed) < RECORD_FILE_LIMIT:
            atomic_write(dest / f"{p.name}.gz", packed)
            kept.append(f"{p.name}.gz")
        else:
            left_out.append(f"{p.name} ({p.stat().st_size} bytes; {len(packed)} gzipped; kept in the run)")
    return kept, left_out


# ---------------------------------------------------------------------------------------------
# visualize, recipes


def visualize(
    target: str, run: Path, *, split: str = "test", n: int = 4, data_dir: Path, checkpoint: Path | None = None
) -> list[Path]:
    from attn_cli.tasks.base import load_checkpoint

    if n < 1:
        raise AttnError(f"--n {n}: give how many examples to draw, 1 or more")
    run_dir = check_run_dir(Path(run))
    data = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    task = data.get("task")
    model_name = (data.get("model") or {}).get("name")
    if target not in (task, model_name):
        raise AttnError(
            f"run {run_dir} is a {task}/{model_name} run, not {target!r}; use `attn visualize {task} --run {run_dir}`"
        )
    spec = TASKS.get(task)
    ckpt = Path(checkpoint) if checkpoint else find_checkpoint(run_dir, "best")
    module, recipe = load_checkpoint(ckpt, task)
    module.eval()
    dm = spec.datamodule(recipe, data_dir)
    dm.setup("test")
    module.data = dm
    if split not in dm.split_names():
        raise unknown("split", split, dm.split_names())
    out = run_dir / "viz"
    out.mkdir(parents=True, exist_ok=True)
    return spec.visualize(module, dm, split, n, out)


def list_recipes(task: str | None = None) -> list[dict[str, str]]:
    tasks = [task] if task else TASKS.names()
    rows = []
    for t in tasks:
        TASKS.get(t)
        for name in available_recipes(t):
            try:
                recipe = load_recipe(t, name)
                rows.append({"task": t, "recipe": name, "model": recipe.model_name, "description": recipe.description})
            except AttnError as err:
                rows.append({"task": t, "recipe": name, "model": "?", "description": f"(broken: {err})"})
    return rows


def models_of(task: str) -> list[str]:
    return [m for m in MODELS.names() if m in TASKS.get(task).model_names()]


def resolved(recipe: Recipe) -> str:
    return dump_recipe(recipe)


# ---------------------------------------------------------------------------------------------
# tables


def table(name: str | None, *, fmt: str, all_: bool, list_: bool, results_dir: Path, out: Path | None) -> Any:
    from attn_cli.registry import TABLES
    from attn_cli.tables.base import all_tables_markdown, load_results, render, rich_table

    if fmt not in ("rich", "markdown", "csv", "latex"):
        raise unknown("table format", fmt, ["rich", "markdown", "csv", "latex"])
    if list_:
        return (
            "".join(f"{n:<20} {t.title}\n" for n, t in TABLES.items())
            + f"{'summary':<20} every recorded result, one row each\n"
        )
    results = load_results(results_dir)
    if name == "summary":
        from attn_cli.tables.base import summary_table

        return summary_table(results)
    if all_:
        text = all_tables_markdown([t for _, t in TABLES.items()], results)
        target = out or results_dir / "TABLES.md"
        atomic_write(target, text)
        return f"wrote {target}\n"
    if name is None:
        raise AttnError(f"name a table (one of: {', '.join(TABLES.names())}) or pass --all")
    spec = TABLES.get(name)
    if fmt == "rich" and out is None:
        return rich_table(spec, results)
    text = render(spec, results, "markdown" if fmt == "rich" else fmt)  # type: ignore[arg-type]
    if out is not None:
        atomic_write(out, text)
    return text


# ---------------------------------------------------------------------------------------------
# the embedded demo


def demo(
    out: Path, *, data_dir: Path, tasks: list[str] | None = None, progress: bool | None = None
) -> tuple[Any, list[Path]]:
    """Every ``demo-*`` recipe of every task, end to end on generated data: prepare, train, eval, visualize.

    Results are recorded under ``out/results`` (not ``results/``); returns the summary
    table and the PNG paths.
    """
    from attn_cli.tables.base import load_results, summary_table

    if out.exists():
        shutil.rmtree(out)
    pngs: list[Path] = []
    for task in tasks or TASKS.names():
        for name in [n for n in available_recipes(task) if n.startswith("demo-")]:
            recipe = load_recipe(task, name)
            dataset = str(getattr(recipe.data, "dataset", ""))
            if dataset in DATASETS and not DATASETS.get(dataset).needs_source:
                prepare(dataset, data_dir=data_dir)
            run_dir = out / task / name
            train(task, name, runs_dir=out, data_dir=data_dir, run_dir=run_dir, progress=progress)
            evaluate(task, run_dir, data_dir=data_dir, progress=progress)
            record(task, run_dir, results_dir=out / "results")
            pngs += visualize(task, run_dir, data_dir=data_dir, n=3)
    return summary_table(load_results(out / "results"), title="attn demo (generated data, this machine)"), pngs
