"""Build a Lightning Trainer from a recipe's TrainConfig (issue: training spine).

Accelerator auto, devices, nodes, DDP when more than one device, bf16-mixed on GPUs that
have it (else 16-mixed with loss scaling), gradient clipping, step or epoch validation,
best checkpoint on a named metric (``train.monitor``, e.g. ``val/bleu``) plus ``last.ckpt``
(and one per validation with ``train.keep_val_checkpoints``), early stopping, a wall-clock
budget, CSV and TensorBoard logs. Checkpoints are written atomically; SIGUSR1 and SIGTERM
save one and requeue the SLURM job (:class:`Preemption`).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.utilities import GradClipAlgorithmType

from attn_cli.callbacks import KeepValCheckpoints, LogLines, StopAtTarget
from attn_cli.config import TrainConfig
from attn_cli.dist import is_rank_zero
from attn_cli.errors import AttnError
from attn_cli.guards import LossGuard, StepCheckpoint
from attn_cli.io import atomic_write
from attn_cli.threads import use_available_cpus


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into memory, then :func:`atomic_write` (temporary file, fsync, rename): a kill or a
    crash of the machine never leaves a truncated checkpoint, and a full disk raises an OSError with
    its errno (torch's own file writer turns that into an anonymous RuntimeError)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(path, buffer.getvalue())


class BF16Mixed(MixedPrecision):
    """Lightning's ``bf16-mixed`` (autocast to bfloat16, float32 weights and optimiser), except that a fused
    optimizer's gradients may be clipped. Lightning refuses any fused optimizer together with gradient
    clipping because under ``16-mixed`` such an optimizer unscales the gradients itself, after the clip
    would have run; bfloat16 has float32's exponent range and no loss scaler, so there is nothing to
    unscale and the clip sees the true gradients. Without this the optimiser falls back to torch's
    one-tensor-at-a-time Adam (the fused kernel keeps the whole update in one pass)."""

    def __init__(self, device: str) -> None:
        super().__init__("bf16-mixed", device)

    def autocast_context_manager(self) -> torch.autocast:
        """torch's autocast with its cast cache on, torch's default: within one step (one ``forward_context``)
        each float32 weight is cast to bfloat16 once. Lightning 2.6 turned the cache off (Lightning issue 20644:
        a weight first cast under a nested ``no_grad`` was cached without its autograd link), so every call of
        a module re-cast its weights — in a decoder called once per target position, per beam step or per
        glimpse, the same weights dozens of times per step (Lightning issue 21611). The torch this suite runs
        no longer caches a cast made without grad mode (``tests/test_precision.py`` checks that a weight used
        under ``no_grad`` and then with grad inside one step still gets its gradient)."""
        return torch.autocast(self.device, dtype=torch.bfloat16, cache_enabled=True)

    def clip_gradients(
        self,
        optimizer: Any,
        clip_val: int | float = 0.0,
        gradient_clip_algorithm: GradClipAlgorithmType = GradClipAlgorithmType.NORM,
    ) -> None:
        if self.scaler is not None:  # never for bf16-mixed; kept so that a scaler would get Lightning's check
            super().clip_gradients(optimizer, clip_val, gradient_clip_algorithm)
            return
        Precision.clip_gradients(self, optimizer, clip_val, gradient_clip_algorithm)


class BestAndLastCheckpoint(ModelCheckpoint):
    """``best.ckpt`` on the monitored metric, and ``last.ckpt`` at *every* validation. Lightning (2.6) refreshes
    ``last.ckpt`` only at a validation that also saved a top-k checkpoint: once validation stopped improving,
    ``last.ckpt`` stayed at the last improvement, and a run killed without warning (SIGKILL, a lost machine)
    resumed from there, losing every update since (on the CPU, where no periodic checkpoint runs by default,
    9,000 updates of a feed-forward NTM copy run did)."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if self._should_skip_saving_checkpoint(trainer) or self._should_save_on_train_epoch_end(trainer):
            return  # saved at this step already (an improvement), or not a validation that saves
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class FaultInjection(Callback):
    """Kill the process hard (``os._exit``) at global step N: how the kill-and-resume tests simulate a crash.

    ``ATTN_FAULT_AT_STEP=N`` kills after training batch N (mid-epoch); with ``ATTN_FAULT_POINT=validation``
    it kills inside the first validation at or after step N instead. (A kill halfway through writing a
    file is :mod:`attn_cli.io`'s ``ATTN_FAULT_IN_WRITE``.) Never set in normal use.
    """

    def __init__(self, step: int, point: str = "train") -> None:
        if point not in ("train", "validation"):
            raise AttnError(f"ATTN_FAULT_POINT must be train or validation, got {point!r}")
        self.step, self.point = step, point

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.point == "train" and trainer.global_step >= self.step:
            os._exit(137)

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.point == "validation" and trainer.global_step >= self.step and not trainer.sanity_checking:
            os._exit(137)


def say(message: str) -> None:
    """One ``attn:`` line on stderr from rank zero: what the cluster log should show (Lightning's own info
    lines are silenced by the CLI)."""
    if is_rank_zero():
        print(f"attn: {message}", file=sys.stderr, flush=True)


HPC_PREFIX = "hpc_ckpt_"


def hpc_checkpoints(ckpt_dir: Path) -> list[Path]:
    """The preemption checkpoints in ``ckpt_dir``, oldest first (``hpc_ckpt_1.ckpt``, ``hpc_ckpt_2.ckpt``, ...)."""

    def number(path: Path) -> int:
        tail = path.stem[len(HPC_PREFIX) :]
        return int(tail) if tail.isdigit() else -1

    return sorted((p for p in ckpt_dir.glob(f"{HPC_PREFIX}*.ckpt") if number(p) >= 0), key=number)


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes: ``ARRAYID_TASKID`` for an array task, else ``SLURM_JOB_ID``."""
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID") or None


class Preemption(Callback):
    """SIGUSR1 or SIGTERM during training: finish the batch, save ``checkpoints/hpc_ckpt_N.ckpt``, requeue the
    SLURM job, exit with status 128 + signal number; ``attn train --resume`` goes on from that checkpoint.

    SLURM sends SIGUSR1 ahead of the time limit when the job asks for it (``--signal=USR1@120``) and SIGTERM on
    preemption, ``scancel`` and at the limit itself (SIGKILL follows after the grace time). Lightning's own
    handlers (``SLURMEnvironment(auto_requeue=True)``, ``signal_connector.py`` in Lightning 2.6) save nothing on
    SIGTERM ("Bypassing SIGTERM") and on SIGUSR1 save from inside the signal handler, which Python runs between
    two bytecodes wherever the main thread happens to be: possibly half-way through an optimiser step, a
    checkpoint whose weights and step counter disagree. Here the handler only notes the signal; the checkpoint is
    taken in ``on_train_batch_end`` (where ``ModelCheckpoint(every_n_train_steps=...)`` saves) of the first batch
    that has no validation or epoch end still to come, and a run resumed from it is bit-identical to an
    uninterrupted one (tests/test_slurm.py). With several processes,
    the ranks agree through one all-reduce of the signal number per batch, so they all save at the same step and
    exit with the same status (each rank may get the signal at a different moment, or only one rank gets it). The file lives in ``checkpoints/``, not in the run
    directory, because under SLURM Lightning restores the newest ``<default_root_dir>/hpc_ckpt_*.ckpt`` into
    any later ``validate``/``test`` call that names no checkpoint. Older preemption checkpoints are removed
    once the new one is written.
    """

    SIGNALS = (signal.SIGUSR1, signal.SIGTERM)

    def __init__(self, ckpt_dir: Path) -> None:
        self.ckpt_dir = Path(ckpt_dir)
        self.received: int | None = None
        self._replaced: dict[int, Any] = {}

    def _note(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after Lightning registered its handlers (Trainer._run), so these replace them while training runs
        self.received = None
        if threading.current_thread() is not threading.main_thread():
            return  # Python lets only the main thread set handlers (a notebook's worker thread, say)
        for sig in self.SIGNALS:
            self._replaced[sig] = signal.getsignal(sig)
            signal.signal(sig, self._note)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for sig, handler in self._replaced.items():
            signal.signal(sig, handler)
        self._replaced = {}

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        signum = self.received or 0
        if trainer.world_size > 1:  # the signal any rank got (the larger number if two differ), 0 for none
            received = torch.tensor(signum, device=trainer.strategy.root_device)
            signum = int(trainer.strategy.reduce(received, reduce_op="max"))
        if not signum or self._more_to_do(trainer):
            return
        name = signal.Signals(signum).name
        existing = hpc_checkpoints(self.ckpt_dir)
        number = int(existing[-1].stem[len(HPC_PREFIX) :]) + 1 if existing else 1
        path = self.ckpt_dir / f"{HPC_PREFIX}{number}.ckpt"
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            for old in existing:
                old.unlink(missing_ok=True)
            say(f"{name} at step {trainer.global_step}: saved {path}")
            self._requeue()
        raise SystemExit(128 + signum)

    @staticmethod
    def _more_to_do(trainer: L.Trainer) -> bool:
        """Whether this step still has work after its batch (a validation, the epoch's end: a learning-rate
        schedule steps on their results). A checkpoint taken before that work resumes without it, and the resumed
        run drifts from the uninterrupted one; so the stop waits for the next batch. The test is Lightning's own
        (``_should_check_val_fx``, private in Lightning 2.6, checked by tests/test_slurm.py)."""
        loop = trainer.fit_loop.epoch_loop
        return loop.batch_progress.is_last_batch or loop._should_check_val_fx(trainer.fit_loop._data_fetcher)

    @staticmethod
    def _requeue() -> None:
        job = slurm_job_id()
        if job is None:
            say("not a SLURM job, so nothing to requeue; continue with `attn train TASK --resume RUN_DIR`")
            return
        try:
            code = subprocess.call(["scontrol", "requeue", job])
        except FileNotFoundError:
            say(f"scontrol not found: job {job} was not requeued; resubmit it to resume")
            return
        say(f"requeued SLURM job {job}" if code == 0 else f"`scontrol requeue {job}` failed (exit {code})")


def parse_devices(devices: str) -> int | list[int] | str:
    text = str(devices).strip()
    if text in ("auto", "-1"):
        return "auto" if text == "auto" else -1
    if "," in text:
        return [int(d) for d in text.split(",") if d.strip()]
    try:
        return int(text)
    except ValueError:
        raise AttnError(f"train.devices must be 'auto', a count or a list like '0,1', got {devices!r}") from None


def auto_precision(accelerator: str, bf16_supported: bool) -> tuple[str, str]:
    """``train.precision=auto``: (precision, why). bf16-mixed on a GPU with bfloat16 arithmetic (Ampere and
    later); on older GPUs (V100, T4) bf16 is only emulated, slowly, so 16-mixed, for which Lightning adds the
    gradient scaler that keeps small fp16 gradients from underflowing; 32-true on CPU."""
    if accelerator != "gpu":
        return "32-true", "CPU"
    if bf16_supported:
        return "bf16-mixed", "the GPU has bfloat16"
    return "16-mixed", "the GPU has no native bfloat16: float16 with loss scaling"


def resolve_hardware(cfg: TrainConfig) -> tuple[str, int | list[int] | str, str, str]:
    """(accelerator, devices, strategy, precision), checking that what was asked for exists."""
    accelerator = cfg.accelerator
    devices = parse_devices(cfg.devices)
    has_gpu = torch.cuda.is_available()
    if accelerator in ("gpu", "cuda"):
        if not has_gpu:
            raise AttnError(
                "a GPU was requested (train.accelerator=gpu) but none is available; "
                "use --set train.accelerator=cpu or --devices on a GPU machine"
            )
        wanted = len(devices) if isinstance(devices, list) else devices
        if isinstance(wanted, int) and wanted > torch.cuda.device_count():
            raise AttnError(f"{wanted} GPUs requested but {torch.cuda.device_count()} available; lower --devices")
    if accelerator == "auto":
        accelerator = "gpu" if has_gpu else "cpu"
    if accelerator == "cpu" and isinstance(devices, list):
        raise AttnError("a device list like '0,1' needs GPUs; on CPU give a process count, e.g. --devices 2")
    count = len(devices) if isinstance(devices, list) else (devices if isinstance(devices, int) else 1)
    cores = os.cpu_count() or 1
    if accelerator == "cpu" and isinstance(devices, int) and not 1 <= devices <= cores:
        # each CPU "device" is a process: more than the cores (or a count below 1) is a typo, not a plan
        raise AttnError(f"--devices {devices} on CPU: give a process count from 1 to {cores} (this machine's cores)")
    if isinstance(devices, int) and devices != -1 and devices < 1:
        raise AttnError(f"--devices {devices}: give a positive count, a list like '0,1', or auto")
    if devices == "auto":
        count = torch.cuda.device_count() if accelerator == "gpu" else 1
        devices = count if accelerator == "gpu" else 1
    strategy = cfg.strategy
    if strategy == "auto" and (count > 1 or cfg.num_nodes > 1):
        strategy = "ddp"
    precision = cfg.precision
    if precision == "auto":
        bf16 = accelerator == "gpu" and torch.cuda.is_bf16_supported(including_emulation=False)
        precision = auto_precision(accelerator, bf16)[0]
    return accelerator, devices, strategy, precision


GPU_CHECKPOINT_MINUTES = 10


def periodic_checkpoint(every_steps: int | None, accelerator: str) -> dict[str, Any]:
    """How often ``last.ckpt`` is refreshed between validations (``train.checkpoint_every_steps``), as
    ModelCheckpoint arguments. N > 0: every N optimiser steps; 0: never. Unset: every
    ``GPU_CHECKPOINT_MINUTES`` minutes of training on GPU, so a job killed without warning (a node failure,
    SIGKILL) loses minutes rather than the epoch since the last validation; never on CPU, where the runs
    are short and the test suite's runs should not pay for it."""
    if every_steps:
        return {"every_n_train_steps": every_steps}
    if every_steps is None and accelerator == "gpu":
        return {"train_time_interval": dt.timedelta(minutes=GPU_CHECKPOINT_MINUTES)}
    return {}


def keep_earlier_curve(csv_path: Path) -> Path | None:
    """A resumed run's CSV logger deletes the earlier ``metrics.csv`` (Lightning's CSVLogger starts its
    version folder afresh): move it aside first, as ``metrics.segment-N.csv``, so the whole learning curve stays."""
    import warnings

    # what that warning announces no longer happens: the earlier curve is moved aside below
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    if not csv_path.is_file() or not is_rank_zero():
        return None
    n = len(list(csv_path.parent.glob("metrics.segment-*.csv"))) + 1
    kept = csv_path.with_name(f"metrics.segment-{n}.csv")
    csv_path.replace(kept)
    return kept


def build_trainer(
    cfg: TrainConfig,
    run_dir: Path,
    *,
    callbacks: list[Callback] | None = None,
    for_eval: bool = False,
    progress: bool | None = None,
) -> L.Trainer:
    accelerator, devices, strategy, precision = resolve_hardware(cfg)
    use_available_cpus(cfg.threads)
    progress = sys.stdout.isatty() if progress is None else progress
    cbs: list[Callback] = list(callbacks or [])
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        cbs.append(RichProgressBar(leave=True))
    else:
        cbs.append(LogLines())
    plugins: list[Any] = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        # Lightning's SLURM signal handling off: Preemption below handles SIGUSR1 and SIGTERM at a batch boundary
        plugins.append(SLURMEnvironment(auto_requeue=False))
    if cfg.precision == "auto" and accelerator == "gpu":
        say(f"precision {precision}: {auto_precision(accelerator, precision == 'bf16-mixed')[1]}")
    if precision == "bf16-mixed":  # the plugin carries the precision (Lightning takes one or the other)
        plugins.append(BF16Mixed("cuda" if accelerator == "gpu" else "cpu"))
    common: dict[str, Any] = dict(
        accelerator=accelerator,
        devices=devices,
        num_nodes=cfg.num_nodes,
        strategy=strategy,
        precision=None if precision == "bf16-mixed" else precision,
        default_root_dir=str(run_dir),
        enable_progress_bar=progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # our samplers shard by rank (attn_cli.data.common)
        plugins=plugins,
        deterministic=cfg.deterministic,
    )
    if for_eval:
        return L.Trainer(logger=False, callbacks=cbs, **common)

    ckpt_dir = run_dir / "checkpoints"
    cbs.append(
        BestAndLastCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor=cfg.monitor,
            mode=cfg.monitor_mode,
            save_top_k=1,
            save_last=True,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        )
    )
    periodic = periodic_checkpoint(cfg.checkpoint_every_steps, accelerator)
    if periodic:
        cbs.append(
            StepCheckpoint(
                dirpath=ckpt_dir,
                filename="last",
                save_top_k=0,
                save_last=True,
                enable_version_counter=False,
                **periodic,
            )
        )
    if cfg.keep_val_checkpoints:
        cbs.append(KeepValCheckpoints(ckpt_dir))
    cbs.append(Preemption(ckpt_dir))
    cbs.append(LossGuard(cfg.max_loss))
    if os.environ.get("ATTN_FAULT_AT_STEP"):
        cbs.append(FaultInjection(int(os.environ["ATTN_FAULT_AT_STEP"]), os.environ.get("ATTN_FAULT_POINT", "train")))
    if cfg.patience > 0:
        cbs.append(EarlyStopping(monitor=cfg.monitor, mode=cfg.monitor_mode, patience=cfg.patience))
    if cfg.stop_at is not None:
        cbs.append(StopAtTarget(cfg.monitor, cfg.monitor_mode, cfg.stop_at))
    if cfg.lr_schedule != "none":
        # the linear schedule moves every update: log it where it moves (log_every_n_steps), the others per epoch
        cbs.append(LearningRateMonitor(logging_interval="step" if cfg.lr_schedule == "linear" else "epoch"))
    keep_earlier_curve(run_dir / "logs" / "metrics.csv")
    loggers = [
        CSVLogger(str(run_dir), name="logs", version=""),
        TensorBoardLogger(str(run_dir), name="tb", version="", default_hp_metric=False),
    ]
    return L.Trainer(
        max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps,
        max_time={"minutes": cfg.max_time_min} if cfg.max_time_min else None,
        gradient_clip_val=cfg.grad_clip or None,
        gradient_clip_algorithm=cfg.grad_clip_algorithm,
        val_check_interval=cfg.val_every_steps,
        check_val_every_n_epoch=None if cfg.val_every_steps else 1,
        limit_val_batches=cfg.limit_val_batches,
        log_every_n_steps=cfg.log_every_n_steps,
        num_sanity_val_steps=0,
        logger=loggers,
        callbacks=cbs,
        **common,
    )
