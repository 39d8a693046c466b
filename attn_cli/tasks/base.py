"""What every task family shares: the Task spec, the LightningModule base, gathering and scoring.

A task family (``nmt``, ``caption``, ``vision``, ``memory``) subclasses :class:`Task`
and :class:`AttnModule` and registers the task with ``@TASKS.register``. The spine in
:mod:`attn_cli.run` does the rest: run directories, trainer, checkpoints, resume,
evaluation files, tables.

Evaluation protocol (DESIGN §5): ``validation_step`` / ``test_step`` return a list of
*rows*, one per example, each with an integer ``"id"``. At epoch end the rows of all
ranks are gathered, the duplicates a distributed sampler pads in are dropped by id,
and :meth:`AttnModule.score` computes the metrics once on the full, ordered set, so
N processes give exactly the numbers of one.

Two things are kept apart: the *split* whose examples (and references) are scored, and
whether the scoring is *final* (``attn eval``: the recipe's beam, unk replacement, the
PTB-tokenised caption scorer, per-length NTM scores) or the cheaper protocol that
validation runs during training. ``attn eval --split val`` is final scoring of the
validation split; it once looked up the test split's references for it.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch

from attn_cli import __version__
from attn_cli.config import Recipe, TrainConfig, recipe_from_dict
from attn_cli.data.base import AttnDataModule
from attn_cli.errors import AttnError
from attn_cli.io import write_json, write_jsonl
from attn_cli.registry import MODELS


def gather_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All ranks' rows, deduplicated by ``id`` (first wins) and sorted by id. Identity on one process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        parts: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(parts, rows)
        rows = [row for part in parts for row in part]
    unique: dict[int, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(int(row["id"]), row)
    return [unique[i] for i in sorted(unique)]


def build_optimizer(params: Any, cfg: TrainConfig, *, fused: bool = True) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    # the fused kernel updates all parameters in one pass: ~1.4x faster NMT steps on CPU (results/bench)
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


_ThreadState = tuple[bool, bool, list[tuple[str, torch.dtype]], bool]


def _thread_state() -> _ThreadState:
    """The calling thread's inference mode, grad mode and autocast regions (with their cast cache setting:
    Lightning's is off): thread-local in torch, so a worker thread starts without the ``inference_mode`` and
    autocast that Lightning's loop set around the step."""
    autocast = [(d, torch.get_autocast_dtype(d)) for d in ("cpu", "cuda") if torch.is_autocast_enabled(d)]
    return torch.is_inference_mode_enabled(), torch.is_grad_enabled(), autocast, torch.is_autocast_cache_enabled()


def _in_state(state: _ThreadState, fn: Callable[..., Any], *args: Any) -> Any:
    inference, grad, autocast, cache = state
    with torch.inference_mode(inference), torch.set_grad_enabled(grad and not inference), ExitStack() as stack:
        for device, dtype in autocast:
            stack.enter_context(torch.autocast(device, dtype=dtype, cache_enabled=cache))
        return fn(*args)


class PredictWorkers:
    """Evaluation batches predicted by ``workers`` threads at once, each running torch with
    ``threads // workers`` threads of its own (CTranslate2's ``inter_threads``; Marian's CPU workers).

    One beam search is a chain of small steps; spread over two intra-op threads it waits at every
    step's barrier (OpenMP wakes the other thread for each operator), so on this suite's CPUs two
    threads searched one batch only 1.2× as fast as one (results/bench/decode-threads.json). Two
    single-threaded searches of different batches share nothing and wait for nothing. A batch's rows
    are the same either way (a sentence's result never depends on another batch), and they are
    returned in submission order. At most ``2 × workers`` batches wait at a time.

    Lightning runs the step in the main thread under ``inference_mode`` (and autocast under a mixed
    precision): that thread-local state is carried to the worker with each batch."""

    def __init__(self, workers: int, threads_each: int) -> None:
        self.workers, self.threads_each = workers, threads_each
        self._previous_threads = torch.get_num_threads()
        torch.set_num_threads(threads_each)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="attn-predict")
        self._pending: deque[Future[list[dict[str, Any]]]] = deque()
        self.rows: list[dict[str, Any]] = []

    def submit(self, fn: Callable[..., list[dict[str, Any]]], *args: Any) -> None:
        self._pending.append(self._pool.submit(_in_state, _thread_state(), fn, *args))
        while len(self._pending) > 2 * self.workers:
            self.rows.extend(self._pending.popleft().result())

    def finish(self) -> list[dict[str, Any]]:
        """Every batch's rows, in the order submitted; the pool is shut down and torch's thread count restored
        (a worker's exception is raised here, the other batches cancelled)."""
        try:
            while self._pending:
                self.rows.extend(self._pending.popleft().result())
            return self.rows
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(self._previous_threads)


class AttnModule(L.LightningModule):
    """LightningModule base: model from the registry, optimiser from the recipe, gathered evaluation.

    Subclasses implement :meth:`training_step`, :meth:`predict_rows` (one row per
    example of a batch, free-running for text) and :meth:`score` (rows -> metrics).
    A subclass whose ``predict_rows`` draws no random numbers and changes no state sets
    ``parallel_predict``: on a CPU its evaluation batches are then predicted by several
    single-threaded workers at once (:class:`PredictWorkers`, ``eval.workers``).
    """

    parallel_predict: ClassVar[bool] = False

    def __init__(self, recipe: Recipe, meta: dict[str, Any]) -> None:
        super().__init__()
        self.recipe = recipe
        self.meta = meta
        self.model = self.build_model(recipe, meta)
        self.data: AttnDataModule | None = None  # attach(data): the split datasets (references, vocabularies)
        self.eval_out: Path | None = None  # attach(eval_out=...): where `attn eval` writes predictions
        self.eval_split = "test"  # attach(eval_split=...): the split `attn eval`'s test loop scores
        self.metrics_info: dict[str, str] = {}  # non-numeric facts about the scores (e.g. sacrebleu's signature)
        self._rows: list[dict[str, Any]] = []
        self._workers: PredictWorkers | None = None  # this evaluation loop's, when it has several
        self.predict_threads: tuple[int, int] = (1, 0)  # the last loop's (workers, torch threads each)
        self.predict_wall_s: float | None = None  # the last test loop's batches (see on_test_epoch_end)
        self._test_start = 0.0
        self._rng_to_restore: list[dict[str, torch.Tensor | None]] | None = None
        self.last_metrics: dict[str, float] = {}

    def build_model(self, recipe: Recipe, meta: dict[str, Any]) -> torch.nn.Module:
        return MODELS.get(recipe.model_name)(recipe.model, **meta)

    def attach(self, data: AttnDataModule, *, eval_out: Path | None = None, eval_split: str = "test") -> None:
        """Give the module the data it scores against (references, detokeniser, answer names) and, for
        ``attn eval``, the split its test loop scores and where it writes the predictions.

        Not constructor arguments: a checkpoint rebuilds the module from its recipe and ``meta`` alone
        (:func:`load_checkpoint`), and the same weights are then trained, evaluated or drawn on data
        found only at run time (``--data-dir``, ``--src/--ref`` file splits). Call it before
        ``trainer.fit`` / ``validate`` / ``test``; a module never attached still trains and
        predicts (``predict_rows`` of tasks that need no references)."""
        self.data = data
        self.eval_out = eval_out
        self.eval_split = eval_split

    # -- to implement -------------------------------------------------------------------
    def predict_rows(self, batch: Any, split: str, *, final: bool = True) -> list[dict[str, Any]]:
        """One row per example of ``batch``, drawn from ``split`` (its references come from that split);
        ``final``: the evaluation protocol of ``attn eval``, else validation's."""
        raise NotImplementedError

    def score(self, rows: list[dict[str, Any]], split: str, *, final: bool = True) -> dict[str, float]:
        raise NotImplementedError

    def save_predictions(self, rows: list[dict[str, Any]], out: Path) -> None:
        """Write predictions for ``attn eval``; the default is one JSON line per example."""
        write_jsonl(out / "predictions.jsonl", rows)

    # -- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        cfg = self.recipe.train
        # under 16-mixed a fused optimizer unscales the gradients itself, so Lightning will not clip them: fused
        # everywhere else (bf16-mixed has no scaler; attn_cli.trainer.BF16Mixed lets its gradients be clipped)
        trainer = self._trainer
        fused = trainer is None or str(trainer.precision) != "16-mixed"
        opt = build_optimizer(self.parameters(), cfg, fused=fused)
        if cfg.lr_schedule == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode=cfg.monitor_mode, factor=cfg.lr_decay, patience=cfg.lr_patience, min_lr=cfg.min_lr
            )
            # stepped by on_validation_epoch_end, once per real validation (lr_scheduler_step leaves it alone);
            # handed to Lightning only so that its state travels in the checkpoint. Lightning still looks up the
            # monitor at each epoch end before calling that hook: an epoch can end before the first step-based
            # validation has run, hence strict=False and its warning about the missing metric silenced
            warnings.filterwarnings("ignore", message=r"ReduceLROnPlateau conditioned on metric .* not available")
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": cfg.monitor, "strict": False}}
        if cfg.lr_schedule == "halve_after":
            start, decay, floor = cfg.lr_decay_start, cfg.lr_decay, cfg.min_lr / cfg.lr
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: max(floor, decay ** max(0, e - start + 1)))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        if cfg.lr_schedule == "step":
            # a function of the epoch count alone, which the scheduler's state_dict (last_epoch) carries through a
            # checkpoint: a resumed run continues the staircase where it stopped. The staircase starts at epoch
            # lr_decay_start: MemN2N's release runs its whole schedule again once linear start ends (train_linear_start.m)
            start, every, decay, floor = cfg.lr_decay_start, cfg.lr_step_epochs, cfg.lr_decay, cfg.min_lr / cfg.lr
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: max(floor, decay ** (max(0, e - start) // every)))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        if cfg.lr_schedule == "linear":
            # a function of the update count, stepped after every update; the scheduler's last_epoch (the count)
            # travels in the checkpoint, so a resumed run continues down the same line. RAM's schedule (Mnih et
            # al. 2014 §4): from lr to 0 over the run's max_steps updates (not below min_lr)
            total, floor = cfg.max_steps, cfg.min_lr / cfg.lr
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(floor, 1.0 - s / total))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        return opt

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """Lightning's stepping, except for the plateau schedule, which :meth:`step_plateau` steps.

        Lightning steps a ``ReduceLROnPlateau`` at each epoch end (``interval: epoch``) or every N epoch-local
        batches (``interval: step``) on the *latest logged* score: with ``train.val_every_steps`` a score was
        counted again at every epoch end until the next validation (RAM on MNIST validates every ~2.3 epochs,
        so a stale score counted twice or three times and the rate was halved six times in a handful of real
        validations), and when validations are closer than an epoch all but the last were skipped."""
        if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            super().lr_scheduler_step(scheduler, metric)

    # -- evaluation -----------------------------------------------------------------------
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._predict(batch, "val", False)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._predict(batch, self.eval_split, True)

    def _predict(self, batch: Any, split: str, final: bool) -> None:
        if self._workers is None:
            self._rows.extend(self.predict_rows(batch, split, final=final))
        else:
            self._workers.submit(lambda: self.predict_rows(batch, split, final=final))

    def predict_workers(self, batches: int) -> tuple[int, int]:
        """(workers, torch threads each) for an evaluation loop of ``batches`` batches. ``eval.workers``:
        0 (auto) gives one single-threaded worker per torch thread of the run, at most one per batch, on a
        CPU and where ``parallel_predict`` allows; 1 is the plain loop with every thread on each batch."""
        asked = int(getattr(self.recipe.eval, "workers", 1))
        threads = torch.get_num_threads()
        if not self.parallel_predict or self.device.type != "cpu" or asked == 1:
            return 1, threads
        workers = min(threads if asked == 0 else asked, max(1, batches))
        return max(1, workers), max(1, threads // max(1, workers))

    def _start_loop(self, batches: Any) -> None:
        self._rows = []
        total = sum(batches) if isinstance(batches, list) else batches
        workers, each = self.predict_workers(int(total) if math.isfinite(total) else 1 << 30)
        self.predict_threads = (workers, each)
        self._workers = PredictWorkers(workers, each) if workers > 1 else None

    def _finish_workers(self) -> None:
        if self._workers is not None:
            workers, self._workers = self._workers, None
            self._rows.extend(workers.finish())

    def _loop_rows(self) -> list[dict[str, Any]]:
        """This loop's rows of every rank, deduplicated."""
        self._finish_workers()
        rows, self._rows = gather_rows(self._rows), []
        return rows

    def on_validation_epoch_start(self) -> None:
        self._start_loop(self.trainer.num_val_batches if not self.trainer.sanity_checking else 1)

    def on_test_epoch_start(self) -> None:
        self._start_loop(self.trainer.num_test_batches)
        self._test_start = time.perf_counter()

    def on_validation_epoch_end(self) -> None:
        rows = self._loop_rows()
        if self.trainer.sanity_checking or not rows:
            return
        metrics = self.score(rows, "val", final=False)
        # every rank holds the same gathered rows, so the values agree without a reduction (and every rank's
        # plateau schedule takes the same step)
        logged = {f"val/{k}": float(v) for k, v in metrics.items()}
        self.log_dict(logged, prog_bar=True, sync_dist=False)
        self.step_plateau(logged)

    def step_plateau(self, logged: dict[str, float]) -> None:
        """Step the plateau schedule once on this validation's ``train.monitor``: ``lr_patience`` then counts
        validations, as its recipes mean. Called from the validation epoch end, before ``ModelCheckpoint``
        saves (``on_validation_end``), so every checkpoint, ``last.ckpt`` and a preemption's among them, holds
        the schedule's state after this validation and a resumed run continues where the killed one stood."""
        sched = self.lr_schedulers() if self.trainer.state.fn == "fit" else None
        if not isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return
        monitor = self.recipe.train.monitor
        if monitor not in logged:
            raise AttnError(
                f"train.lr_schedule=plateau follows train.monitor={monitor}, which validation does not report "
                f"(it reports {', '.join(sorted(logged))}); set train.monitor to one of these"
            )
        sched.step(logged[monitor])

    def on_test_epoch_end(self) -> None:
        # wall seconds of the test loop's batches: reading them, the search, the rows (strings, unk replacement);
        # not the checkpoint load, the scoring or the writing around them. What a decoding speed is (`attn bench`
        # times this, as the JoeyNMT harness times its predict() without loading or scoring)
        self._finish_workers()
        self.predict_wall_s = time.perf_counter() - self._test_start
        rows = self._loop_rows()
        self.last_metrics = self.score(rows, self.eval_split, final=True) if rows else {}
        if self.eval_out is not None and self.trainer.is_global_zero:
            self.save_predictions(rows, self.eval_out)

    # -- checkpoints ----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["attn"] = {
            "version": __version__,
            "task": self.recipe.task,
            "recipe": self.recipe.to_dict(),
            "meta": self.meta,
        }
        checkpoint["attn_rng"] = self._rng_states()

    def _rng_states(self) -> list[dict[str, torch.Tensor | None]]:
        """Every rank's generator states, in rank order: each rank draws its own dropout masks, so a resumed
        rank 1 must continue rank 1's stream, not rank 0's (the checkpoint is written by rank 0 only, so the
        states are gathered; every rank calls this hook when a checkpoint is saved)."""
        state = _rng_state()
        world = self.trainer.world_size if self._trainer is not None else 1
        if world == 1 or not torch.distributed.is_initialized():
            return [state]
        states: list[Any] = [None] * world
        torch.distributed.all_gather_object(states, state)
        return states

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("attn_rng")
        if isinstance(saved, torch.Tensor):  # checkpoints before per-rank states: rank 0's CPU state
            saved = [{"cpu": saved, "cuda": None}]
        self._rng_to_restore = saved
        resume_after_processed_batches(checkpoint)

    def on_fit_start(self) -> None:
        if self.recipe.train.compile:
            hook = getattr(self.model, "compile_for_training", None)
            if hook is not None:
                hook()
            else:
                self.model.compile()

    def on_train_start(self) -> None:
        # dropout draws continue exactly where the killed run stopped
        if self._rng_to_restore is not None:
            _restore_rng(self._rng_to_restore, self.global_rank, self.global_step)
            self._rng_to_restore = None

    def on_train_epoch_start(self) -> None:
        """Tell our batch samplers the epoch: Lightning calls ``set_epoch`` on a loader's ``sampler``
        only, never on a ``batch_sampler``, so without this every epoch would draw the first epoch's
        batches in the first epoch's order (and ``data.resample`` the first epoch's distortions).
        A run resumed mid-epoch skips this hook; its sampler state (epoch, batches consumed) comes
        from the checkpoint instead."""
        loaders = self.trainer.train_dataloader
        for loader in loaders if isinstance(loaders, (list, tuple)) else [loaders]:
            sampler = getattr(loader, "batch_sampler", None)
            if callable(getattr(sampler, "set_epoch", None)):
                sampler.set_epoch(self.current_epoch)


def _rng_state() -> dict[str, torch.Tensor | None]:
    """This process's CPU generator and, when CUDA is in use, its current device's generator."""
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _restore_rng(states: list[dict[str, torch.Tensor | None]], rank: int, step: int) -> None:
    """Continue ``rank``'s own streams. A rank the checkpoint has no state for (the run resumed on more
    processes than saved it) gets streams seeded from rank 0's state, its rank and the step: not the
    uninterrupted run's draws (there was none for that rank) but its own, never another rank's copy."""
    if rank < len(states):
        state = states[rank]
        torch.set_rng_state(state["cpu"])  # type: ignore[arg-type]
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"])  # type: ignore[arg-type]
        return
    base = int(hashlib.sha256(states[0]["cpu"].numpy().tobytes()).hexdigest()[:15], 16)  # type: ignore[union-attr]
    torch.manual_seed((base + 1_000_003 * rank + step) % 2**63)


def resume_after_processed_batches(checkpoint: dict[str, Any]) -> None:
    """Make a mid-epoch checkpoint resume at the first batch its weights have not seen.

    A checkpoint written in ``on_train_batch_end`` (every N steps, or by a kill-safe save)
    already holds the optimizer step of the batch in flight, but Lightning counts that
    batch as not yet *completed* and would replay it on restart. Here the batch counters
    and our loader's position (``attn_cli.data.common.TrainBatches``) are both set to the
    number of batches *processed*, so the resumed run continues exactly where the
    uninterrupted one would. Its logging step (``_batches_that_stepped``, saved before Lightning
    counts the batch) is moved on by that batch too: Lightning adds it only to a restart it sees as
    mid-batch, which these counters no longer show, and the resumed segment's logged rows would
    otherwise carry the step before theirs.
    """
    fit = (checkpoint.get("loops") or {}).get("fit_loop")
    if not fit or "epoch_loop.batch_progress" not in fit:
        return
    progress = fit["epoch_loop.batch_progress"]
    state = fit.get("epoch_loop.state_dict")
    in_flight = progress["total"]["processed"] - progress["total"]["completed"]  # 1: saved in on_train_batch_end
    if in_flight == 1 and isinstance(state, dict) and "_batches_that_stepped" in state:
        state["_batches_that_stepped"] += 1
    done = progress["current"]["processed"]
    total = progress["total"]["processed"]
    for key in ("ready", "started", "processed", "completed"):
        progress["current"][key] = done
        progress["total"][key] = total
    for state in (fit.get("state_dict") or {}).get("combined_loader", []):
        if isinstance(state, dict) and "consumed" in state:
            state["consumed"] = done


class Task:
    """A task family: which models it trains, how its data and evaluation are configured."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    data_config: ClassVar[type]
    eval_config: ClassVar[type]
    module_class: ClassVar[type[AttnModule]]

    def model_names(self) -> list[str]:
        """The models registered as this task's (``@MODELS.register(name, task=...)``), sorted."""
        return MODELS.names_where("task", self.name)

    def datamodule(self, recipe: Recipe, data_dir: Path) -> AttnDataModule:
        raise NotImplementedError

    def module(self, recipe: Recipe, meta: dict[str, Any]) -> AttnModule:
        return self.module_class(recipe, meta)

    def dataset_of(self, recipe: Recipe) -> str:
        """The dataset name used in result paths (results/<task>/<dataset>/<recipe>)."""
        return str(getattr(recipe.data, "dataset", "default"))

    def visualize(self, module: AttnModule, dm: AttnDataModule, split: str, n: int, out_dir: Path) -> list[Path]:
        raise AttnError(f"task {self.name!r} has no visualisation yet")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, unpickled with ``weights_only=True``: tensors, numbers, strings and
    containers only. A full unpickle runs whatever callables the file names (a ``__reduce__`` payload)
    before any check could refuse it, so a checkpoint someone sends you must never get one; ours
    (Lightning's dict, the ``attn`` metadata, the RNG state) need nothing more."""
    import pickle

    if not path.is_file():
        raise AttnError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # the safe unpickler names what it refused ("Unsupported global: GLOBAL io.open ..."); anything else
        # it cannot read is damage
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found is None:
            raise AttnError(f"checkpoint {path} is corrupt or truncated (UnpicklingError); use another") from err
        raise AttnError(
            f"checkpoint {path} holds pickled objects other than weights ({found.group(1)}), which could run "
            "code; refused (load only checkpoints written by attn)"
        ) from err
    except Exception as err:  # torch raises several types for damaged zip/pickle data
        raise AttnError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}); use another") from err
    info = ckpt.get("attn") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or "task" not in info or "state_dict" not in ckpt:
        raise AttnError(f"{path} is not an attn checkpoint (no 'attn' metadata)")
    return ckpt


def load_checkpoint(path: Path, task: str, overrides: dict[str, Any] | None = None) -> tuple[AttnModule, Recipe]:
    """Rebuild the module stored in an attn checkpoint; clear errors for corrupt, foreign or unsafe files."""
    from attn_cli.registry import TASKS

    ckpt = read_checkpoint(path)
    info = ckpt["attn"]
    if info["task"] != task:
        raise AttnError(f"checkpoint {path} is of task {info['task']!r}, not {task!r}; use `attn eval {info['task']}`")
    data = dict(info["recipe"])
    for section, values in (overrides or {}).items():
        data[section] = {**(data.get(section) or {}), **values}
    recipe = recipe_from_dict(data, name=data.get("name", "checkpoint"), task=task)
    module = TASKS.get(task).module(recipe, info["meta"])
    module.load_state_dict(ckpt["state_dict"])
    return module, recipe


def perplexity(nll_sum: float, n_tokens: int) -> float:
    """exp(mean token NLL); overflow-safe."""
    if n_tokens <= 0:
        return float("nan")
    mean = nll_sum / n_tokens
    return math.exp(mean) if mean < 700 else float("inf")


def write_metrics(out: Path, metrics: dict[str, Any]) -> Path:
    return write_json(out / "metrics.json", metrics)
