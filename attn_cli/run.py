"""The commands as plain functions: prepare, train, evaluate, visualize, recipes, demo
(recording and checkpoint averaging are :mod:`attn_cli.records`).

``cli.py`` parses arguments and prints; everything that does work is here, callable
from Python and tests. Every function raises :class:`~attn_cli.errors.AttnError` for
user mistakes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import warnings
from collections.abc import Callable
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
from attn_cli.dist import is_rank_zero
from attn_cli.errors import AttnError, unknown
from attn_cli.io import atomic_write, read_json, remove_stale_temps, write_json
from attn_cli.names import check_prepared_version, eval_sections
from attn_cli.preparation import preparation
from attn_cli.pretrained import load_pretrained
from attn_cli.records import eval_dir, record
from attn_cli.registry import TASKS
from attn_cli.runs import (
    check_run_dir,
    find_checkpoint,
    new_run_dir,
    run_info,
)

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
    prep = preparation()
    datasets = prep.DATASETS
    if target in TASKS:
        if dataset is None:
            names = [n for n, spec in datasets.items() if spec.task == target]
            raise AttnError(f"`attn prepare {target}` needs --dataset; one of: {', '.join(names)}")
        ds_name = dataset
    else:
        if target not in datasets:
            raise unknown("task or dataset", target, [*TASKS.names(), *datasets.names()])
        ds_name = target
    spec = datasets.get(ds_name)
    raw: dict[str, Any] = {k: v for k, v in (options or {}).items() if v is not None}
    valid = {f.name for f in dataclasses.fields(spec.Config)}
    for key in raw:
        if key not in valid:
            raise AttnError(
                f"--{key.replace('_', '-')} does not apply to dataset {ds_name} (options: {', '.join(sorted(valid))})"
            )
    raw = apply_overrides(raw, list(overrides or []))
    cfg = build(spec.Config, raw, "prepare")
    return prep.run_prepare(spec, cfg, source=source, data_dir=data_dir, name=name, force=force)


# ---------------------------------------------------------------------------------------------
# train


def _with_devices(overrides: list[str], devices: str | None, accelerator: str | None) -> list[str]:
    out = list(overrides)
    if devices is not None:
        out.append(f"train.devices={devices}")
    if accelerator is not None:
        out.append(f"train.accelerator={accelerator}")
    return out


def _check_data_version(recipe: Recipe, data_dir: Path) -> None:
    """Training refuses data its preparer has since changed (evaluation reads it: a test split's examples
    are the same in every version, only their order or the validation split moved)."""
    dataset = getattr(recipe.data, "dataset", None)
    manifest = data_dir / str(dataset) / "manifest.json"
    if dataset and manifest.is_file():
        check_prepared_version(read_json(manifest), manifest.parent)


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
    ckpts = run_dir / "checkpoints"  # hpc_ckpt_N.ckpt: attn_cli.trainer.Preemption; in run_dir: older runs
    candidates = [ckpts / "last.ckpt", *ckpts.glob("hpc_ckpt_*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")]
    existing = [p for p in candidates if p.is_file()]
    return max(existing, key=lambda p: p.stat().st_mtime) if existing else None


# what a training leaves in its run directory; --overwrite removes these (and nothing else) first
RUN_ARTEFACTS = ("checkpoints", "logs", "tb", "eval", "viz", "run.json", "train_done.json", "train_done.previous.json")


def _check_fresh_start(run_dir: Path, overwrite: bool, *, clear: bool) -> None:
    """A new training must not replace a run's checkpoints and summary unless told to (``--overwrite``);
    ``clear``: with ``overwrite``, delete them now."""
    held = [
        str(p.relative_to(run_dir))
        for p in (run_dir / "train_done.json", *run_dir.glob("checkpoints/*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt"))
        if p.is_file()
    ]
    if not held:
        return
    if not overwrite:
        raise AttnError(
            f"run {run_dir} already holds a training ({', '.join(sorted(held)[:3])}); continue it with "
            f"--resume {run_dir}, or start it over (deleting them) with --overwrite"
        )
    if not clear:
        return
    for name in RUN_ARTEFACTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in run_dir.glob("hpc_ckpt_*.ckpt"):  # Lightning inside SLURM would resume from these
        path.unlink()


def _check_resume_checkpoint(module: Any, path: Path) -> None:
    """Fail before the run is touched when its checkpoint cannot be resumed: unreadable, unsafe
    (weights only, see :func:`~attn_cli.tasks.base.read_checkpoint`), or not this model's weights
    (a ``--set model.*`` that changed the architecture)."""
    from attn_cli.tasks.base import read_checkpoint

    ckpt = read_checkpoint(path)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        first = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), str(err))
        raise AttnError(
            f"checkpoint {path} does not fit this recipe's model ({first.rstrip('.')}); resume without --set model.*"
        ) from err


class _RunStart:
    """Writes what a training segment adds to its run (recipe.yaml, a run.json segment, the previous
    summary moved aside) once training really starts, so that a command failing before that leaves
    the run as it found it. A Lightning callback (``on_train_start``); rank zero only."""

    def __init__(self, run_dir: Path, recipe: Recipe, pretrained: dict[str, Any] | None, extending: bool) -> None:
        self.run_dir, self.recipe, self.pretrained, self.extending = run_dir, recipe, pretrained, extending
        self.done = False
        self.clock: tuple[float, float] | None = None  # (wall, CPU) when this segment's training began

    def callback(self) -> Any:
        from lightning.pytorch.callbacks import Callback

        start = self

        class OnTrainStart(Callback):
            def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
                start.begin()

            def on_save_checkpoint(self, trainer: L.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
                start.checkpointed(trainer.global_step)

        return OnTrainStart()

    def checkpointed(self, step: int) -> None:
        """At each checkpoint this segment saves, its time so far goes into run.json as ``open_segment``: a
        process killed without warning (SIGKILL, a lost machine) cannot add its time when it dies, and the
        next segment adds this instead (:meth:`begin`), so the run's totals count the killed segment up to the
        checkpoint the run resumes from (the updates redone after it count once, as in the kept checkpoints'
        clocks). A segment that ends, or stops on a signal or an error, adds its whole time and drops it."""
        if not self.done or self.clock is None or not is_rank_zero():
            return
        info = read_json(self.run_dir / "run.json")
        info["open_segment"] = {
            "wall_s": round(time.perf_counter() - self.clock[0], 3),
            "cpu_s": round(time.process_time() - self.clock[1], 3),
            "step": step,
        }
        write_json(self.run_dir / "run.json", info)

    def begin(self) -> None:
        if self.done or not is_rank_zero():
            return
        self.done = True
        run_dir = self.run_dir
        atomic_write(run_dir / "recipe.yaml", dump_recipe(self.recipe))
        self.clock = (time.perf_counter(), time.process_time())
        info = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
        killed = info.pop("open_segment", None)
        if killed is not None and info.get("segments"):  # the previous segment died without adding its time
            info["train_wall_s"] = info.get("train_wall_s", 0.0) + killed["wall_s"]
            info["train_cpu_s"] = info.get("train_cpu_s", 0.0) + killed["cpu_s"]
            info["segments"][-1]["ended"] = (
                f"killed; its {killed['wall_s']:.0f} s ({killed['cpu_s']:.0f} CPU s) to its checkpoint at step "
                f"{killed['step']} are counted"
            )
        segment = run_info()
        info.setdefault("first", segment)
        info.setdefault("segments", []).append({k: segment[k] for k in ("command", "git_sha", "started")})
        info["hardware"] = segment["hardware"]
        info["versions"] = segment["versions"]
        if self.pretrained:
            info["pretrained"] = self.pretrained
        write_json(run_dir / "run.json", info)
        if self.extending:  # the old summary stays beside the run until the new one replaces it
            os.replace(run_dir / "train_done.json", run_dir / "train_done.previous.json")


class _LogsJournal:
    """The loggers' folders (``logs/``, ``tb/``) as they were before the trainer was built, to put back
    when a command fails before training starts: the trainer moves ``metrics.csv`` aside, and Lightning
    writes ``hparams.yaml`` and opens a new TensorBoard event file before it restores the optimizer state.
    Text files are kept whole (small); event files are never rewritten, only added, so names suffice."""

    def __init__(self, run_dir: Path) -> None:
        self.dirs = [run_dir / "logs", run_dir / "tb"]
        self.before = {p: p.read_bytes() if p.suffix in (".csv", ".yaml") else None for p in self._files()}

    def _files(self) -> list[Path]:
        return [p for d in self.dirs if d.is_dir() for p in d.rglob("*") if p.is_file()]

    def rollback(self) -> None:
        for path in self._files():
            if path not in self.before:
                path.unlink()
        for path, data in self.before.items():
            if data is not None and (not path.is_file() or path.read_bytes() != data):
                atomic_write(path, data)


def train(
    task: str,
    recipe_name: str | None,
    *,
    overrides: list[str] | None = None,
    runs_dir: Path,
    data_dir: Path,
    resume: Path | None = None,
    run_dir: Path | None = None,
    overwrite: bool = False,
    devices: str | None = None,
    accelerator: str | None = None,
    progress: bool | None = None,
    extra_callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """Train a recipe; returns the summary written to ``train_done.json``.

    The run directory is locked (:class:`~attn_cli.runs.RunLock`) for the whole training; a
    directory that already holds a training is continued only with ``resume`` and started
    over only with ``overwrite``. Everything that can be checked (recipe, hardware, data,
    the checkpoint to resume) is checked before the run is touched.
    """
    from attn_cli.runs import RunLock
    from attn_cli.trainer import resolve_hardware

    if resume is not None and overwrite:
        raise AttnError("--resume continues a run and --overwrite starts one over; give one of them")
    lock: RunLock | None = None
    try:
        spec = TASKS.get(task)
        overrides = _with_devices(list(overrides or []), devices, accelerator)
        ckpt_path: Path | None = None
        extending = False
        if resume is not None:
            run_dir = check_run_dir(Path(resume))
            if is_rank_zero():
                lock = RunLock(run_dir).acquire()
            data = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
            recipe = recipe_from_dict(
                apply_overrides(data, overrides), name=data.get("name", run_dir.parent.name), task=task
            )
            ckpt_path = _newest_resume_checkpoint(run_dir)
            if ckpt_path is None:
                raise AttnError(f"run {run_dir} has no checkpoint to resume from; start it again without --resume")
            extending = (run_dir / "train_done.json").is_file()
            if extending:
                _check_extension(task, run_dir, recipe, overrides)
        else:
            if recipe_name is None:
                raise AttnError(
                    f"give --recipe NAME (one of: {', '.join(available_recipes(task))}) or --resume RUN_DIR"
                )
            recipe = load_recipe(task, recipe_name, overrides)
            if run_dir is None and "ATTN_RUN_DIR" in os.environ and not is_rank_zero():
                run_dir = Path(os.environ["ATTN_RUN_DIR"])  # a DDP worker re-launched by Lightning
            if run_dir is None:
                run_dir = new_run_dir(runs_dir, task, recipe.name)
            elif is_rank_zero() and run_dir.is_dir():  # refused before the data is loaded
                lock = RunLock(run_dir).acquire()
                _check_fresh_start(run_dir, overwrite, clear=False)
        resolve_hardware(recipe.train)  # fail before anything is written
        os.environ["ATTN_RUN_DIR"] = str(run_dir)  # DDP workers started by Lightning reuse this directory

        L.seed_everything(recipe.train.seed, workers=True, verbose=False)
        _check_data_version(recipe, Path(data_dir))
        dm = spec.datamodule(recipe, data_dir)
        dm.prepare_data()
        dm.setup("fit")  # a data error stops here, before the run directory exists
        module = spec.module(recipe, dm.meta)
        module.attach(dm)
        if ckpt_path is not None:
            _check_resume_checkpoint(module, ckpt_path)
        # pretrained weights the recipe names, also before the run directory exists; a resumed run
        # restores every weight from its own checkpoint instead
        pretrained = load_pretrained(module.model, Path(runs_dir)) if ckpt_path is None else None
        run_dir.mkdir(parents=True, exist_ok=True)
        if is_rank_zero() and lock is None:
            lock = RunLock(run_dir).acquire()
        elif not is_rank_zero() and "SLURM_PROCID" in os.environ:
            RunLock(run_dir).check_as_worker()
        if is_rank_zero() and resume is None:
            _check_fresh_start(run_dir, overwrite, clear=True)
        if lock is not None and lock.note:
            warnings.warn(lock.note, stacklevel=1)
        if is_rank_zero():
            remove_stale_temps(run_dir, recursive=True)  # what killed writes of an earlier start left behind
        return _fit(task, recipe, module, dm, run_dir, ckpt_path, pretrained, extending, progress, extra_callbacks)
    finally:
        if lock is not None:
            lock.release()
        if is_rank_zero():
            os.environ.pop("ATTN_RUN_DIR", None)


def _fit(
    task: str,
    recipe: Recipe,
    module: Any,
    dm: Any,
    run_dir: Path,
    ckpt_path: Path | None,
    pretrained: dict[str, Any] | None,
    extending: bool,
    progress: bool | None,
    extra_callbacks: list[Any] | None,
) -> dict[str, Any]:
    from attn_cli.trainer import build_trainer

    start_run = _RunStart(run_dir, recipe, pretrained, extending)
    journal = _LogsJournal(run_dir) if is_rank_zero() else None
    trainer = build_trainer(
        recipe.train, run_dir, progress=progress, callbacks=[*(extra_callbacks or []), start_run.callback()]
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        # the checkpoint named, read weights-only: without a path, Lightning inside SLURM resumes from the
        # newest RUN/hpc_ckpt_*.ckpt of its own accord
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    except BaseException as err:
        if start_run.done:
            # a segment stopped by a signal (Preemption exits 128 + N after its checkpoint) or an error still
            # trained: its time goes into run.json, so a resumed run's totals count every segment
            if is_rank_zero():
                _add_train_time(run_dir, time.perf_counter() - start, time.process_time() - cpu_start)
            raise
        if journal is not None:
            journal.rollback()
        if ckpt_path is not None and isinstance(err, Exception):
            # Lightning restores the optimiser, schedule and loop state only here, inside fit
            first = (str(err).strip().splitlines() or [""])[0]
            raise AttnError(
                f"cannot resume from {ckpt_path} ({type(err).__name__}: {first}); the run is left as it was"
            ) from err
        raise
    start_run.begin()  # a resumed run that had nothing left to train never reaches on_train_start
    best = trainer.checkpoint_callback
    _final_validation(trainer, module, dm, recipe, best)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if not trainer.is_global_zero:
        return {}
    previous = _add_train_time(run_dir, wall, cpu)
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


def _add_train_time(run_dir: Path, wall: float, cpu: float) -> float:
    """Add a segment's wall and CPU seconds to run.json; returns the wall seconds before it.

    CPU seconds are this process's (every thread; not data-loader workers): the figure that stays meaningful
    when the machine is shared and wall time is not (the tables show both)."""
    info = read_json(run_dir / "run.json")
    info.pop("open_segment", None)  # this segment's whole time replaces what its checkpoints noted
    previous = float(info.get("train_wall_s", 0.0))
    info["train_wall_s"] = previous + wall
    info["train_cpu_s"] = info.get("train_cpu_s", 0.0) + cpu
    write_json(run_dir / "run.json", info)
    return previous


def _final_validation(trainer: L.Trainer, module: Any, dm: Any, recipe: Recipe, best: Any) -> None:
    """Validate the final weights when training stopped between validations (step or time budget).

    Lightning only validates on its schedule; a run cut by ``max_steps`` or ``max_time``
    mid-interval would otherwise never score its last weights. If they beat the best so
    far (or nothing was scored yet), they become ``best.ckpt``. The weights are saved as
    ``last.ckpt`` first and validated from that file by name: a ``validate`` without a path
    inside a SLURM job restores the newest ``hpc_ckpt_*.ckpt`` and scores those weights instead.
    """
    import torch

    if getattr(best, "_last_global_step_saved", -1) == trainer.global_step and best.best_model_score is not None:
        return
    last = str(Path(best.dirpath) / "last.ckpt")
    trainer.save_checkpoint(last, weights_only=False)  # the full state: a resume reads it
    metrics = trainer.validate(module, datamodule=dm, ckpt_path=last, weights_only=True, verbose=False)
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
        trainer.save_checkpoint(last)  # its checkpoint callback state now names the new best


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
    src: Path | None = None,
    ref: Path | None = None,
) -> dict[str, Any]:
    """Score a trained run on ``split``; writes ``eval/<split>/{metrics.json, predictions...}``.

    With ``src`` and ``ref`` (NMT), any parallel file pair is scored instead, under the split name ``split``
    (``eval/<split>/``): cut by the run's own preprocessing, out-of-vocabulary words as ``<unk>``
    (:meth:`~attn_cli.data.text.TextDataModule.add_file_split`).

    A named evaluation (the row it will be recorded as, e.g. ``luong-local-p+unk``) writes to
    ``eval/<split>@<name>/`` instead, so that several evaluations of one run can run at once."""
    from attn_cli.tasks.base import load_checkpoint
    from attn_cli.trainer import build_trainer, resolve_hardware

    spec = TASKS.get(task)
    run_dir = check_run_dir(Path(run))
    ckpt = Path(checkpoint) if checkpoint else find_checkpoint(run_dir, "best")
    sections = eval_sections(_with_devices(list(overrides or []), devices, accelerator))
    module, recipe = load_checkpoint(ckpt, task, sections)
    dm = spec.datamodule(recipe, data_dir)
    dm.setup("test")
    file_info: dict[str, str] = {}
    if (src is None) != (ref is None):
        raise AttnError("--src and --ref go together: the source file and its reference translations")
    if src is not None and ref is not None:
        if task != "nmt":
            raise AttnError(f"--src/--ref score parallel text files: an nmt run's option, not {task}'s")
        fixes = dm.add_file_split(split, Path(src), Path(ref))
        file_info = {"src": str(src), "ref": str(ref), **({"fixes": "; ".join(fixes)} if fixes else {})}
    if split not in dm.split_names():
        raise unknown("split", split, dm.split_names())
    resolve_hardware(recipe.train)  # fail before the evaluation directory exists
    out = eval_dir(run_dir, split, name)
    out.mkdir(parents=True, exist_ok=True)
    module.attach(dm, eval_out=out, eval_split=split)
    trainer = build_trainer(recipe.train, run_dir, for_eval=True, progress=progress)
    start = time.perf_counter()
    # the checkpoint named, read weights-only: without a path, Lightning inside a SLURM job (SLURM_* variables)
    # restores the run's newest hpc_ckpt_*.ckpt over these weights and scores that instead
    with warnings.catch_warnings():
        # the warning asks for the training's ModelCheckpoint: evaluation restores the weights alone, on purpose
        warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`")
        trainer.test(module, dataloaders=dm.split_loader(split), ckpt_path=str(ckpt), weights_only=True, verbose=False)
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
        "info": {**module.metrics_info, **file_info},
        "command": run_info()["command"],
        "eval_wall_s": round(seconds, 2),
        "predict_wall_s": round(module.predict_wall_s or 0.0, 3),  # the batches alone (AttnModule.on_test_epoch_end)
        # batches predicted at once, and the torch threads of each (AttnModule.predict_workers)
        "predict_workers": module.predict_threads[0],
        "predict_threads_each": module.predict_threads[1],
        "devices": trainer.world_size,
        "notes": [f"scored checkpoint {ckpt}"],
    }
    write_json(out / "metrics.json", result)
    return result


def rescore(
    task: str, run: Path, predictions: Path, *, split: str = "test", checkpoint: Path | None = None
) -> dict[str, float]:
    """Recompute the metrics from a saved predictions file (no decoding): what was recorded is what they give
    (a record's file read back through float32 where its result.json says so: :func:`attn_cli.io.read_predictions`)."""
    from attn_cli.io import read_predictions
    from attn_cli.tasks.base import load_checkpoint

    run_dir = check_run_dir(Path(run))
    rows = read_predictions(predictions)
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
    if split not in dm.split_names():
        raise unknown("split", split, dm.split_names())
    out = run_dir / "viz"
    out.mkdir(parents=True, exist_ok=True)
    return spec.visualize(module, dm, split, n, out)


# ---------------------------------------------------------------------------------------------
# the embedded demo


DEMO_MARKER = ".attn-demo"  # written into a demo's --out: only a directory holding it is ever replaced


def _demo_plan(tasks: list[str] | None) -> list[tuple[str, str]]:
    """(task, recipe) for every ``demo-*`` recipe of the asked tasks (all by default); an unknown task,
    or one without a demo recipe, is an error before anything runs."""
    known = TASKS.names()
    for task in tasks or []:
        if task not in known:
            raise unknown("task", task, known)
    plan = [(t, n) for t in tasks or known for n in available_recipes(t) if n.startswith("demo-")]
    for task in tasks or []:
        if not any(t == task for t, _ in plan):
            with_demo = sorted({t for t in known if any(n.startswith("demo-") for n in available_recipes(t))})
            raise AttnError(f"task {task!r} has no demo recipe; give --task with one of: {', '.join(with_demo)}")
    return plan


def _fresh_demo_dir(out: Path) -> None:
    """Make ``out`` an empty directory marked as a demo's, deleting only what an earlier demo wrote there.

    A directory that is empty, or that holds :data:`DEMO_MARKER` (an earlier ``attn demo``), is
    (re)used; anything else (the user's own files, a file in place of the directory) is refused
    and left as it was.
    """
    if out.exists() and not out.is_dir():
        raise AttnError(f"--out {out} is a file; give a new or empty directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / DEMO_MARKER).is_file():
            raise AttnError(
                f"--out {out} is not empty and was not written by `attn demo`; give a new or empty directory "
                "(nothing was deleted)"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text(
        "written by `attn demo`; the next `attn demo` with this --out replaces the whole directory\n", encoding="utf-8"
    )


def demo(
    out: Path,
    *,
    data_dir: Path,
    tasks: list[str] | None = None,
    progress: bool | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[Any, list[Path]]:
    """Every ``demo-*`` recipe of every task, end to end on generated data: prepare, train, eval, visualize.

    Results are recorded under ``out/results`` (not ``results/``); returns the summary
    table and the PNG paths. ``out`` must be new, empty or an earlier demo's (see
    :func:`_fresh_demo_dir`); ``say`` receives one line as each recipe starts.
    """
    from attn_cli.tables.base import load_results, summary_table

    plan = _demo_plan(tasks)
    datasets = preparation().DATASETS
    _fresh_demo_dir(out)
    pngs: list[Path] = []
    for task, name in plan:
        recipe = load_recipe(task, name)
        if say is not None:
            say(f"{task}/{name}: {recipe.description}")
        dataset = str(getattr(recipe.data, "dataset", ""))
        if dataset in datasets and not datasets.get(dataset).needs_source:
            prepare(dataset, data_dir=data_dir)
        run_dir = out / task / name
        train(task, name, runs_dir=out, data_dir=data_dir, run_dir=run_dir, progress=progress)
        evaluate(task, run_dir, data_dir=data_dir, progress=progress)
        # the demo records into its own folder, never results/: it runs on whatever code is checked out
        record(task, run_dir, results_dir=out / "results", allow_dirty=True)
        pngs += visualize(task, run_dir, data_dir=data_dir, n=3)
    return summary_table(load_results(out / "results"), title="attn demo (generated data, this machine)"), pngs
