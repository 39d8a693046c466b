"""Build a Lightning Trainer from a recipe's TrainConfig (issue: training spine).

Accelerator auto, devices, nodes, DDP when more than one device, bf16-mixed on GPU,
gradient clipping, step or epoch validation, best checkpoint on a named metric
(``train.monitor``, e.g. ``val/bleu``) plus ``last.ckpt``, early stopping, a wall-clock
budget, CSV and TensorBoard logs. Checkpoints are written atomically.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from attn_cli.config import TrainConfig
from attn_cli.errors import AttnError
from attn_cli.guards import LossGuard, StepCheckpoint
from attn_cli.io import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into memory, then :func:`atomic_write` (temporary file, fsync, rename): a kill or a
    crash of the machine never leaves a truncated checkpoint, and a full disk raises an OSError with
    its errno (torch's own file writer turns that into an anonymous RuntimeError)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(path, buffer.getvalue())


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
        precision = "bf16-mixed" if accelerator == "gpu" else "32-true"
    return accelerator, devices, strategy, precision


def keep_earlier_curve(csv_path: Path) -> Path | None:
    """A resumed run's CSV logger deletes the earlier ``metrics.csv`` (Lightning's CSVLogger starts its
    version folder afresh): move it aside first, as ``metrics.segment-N.csv``, so the whole learning curve stays."""
    import warnings

    from attn_cli.run import is_rank_zero

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
    if cfg.threads > 0 and accelerator == "cpu":
        torch.set_num_threads(cfg.threads)
    progress = sys.stdout.isatty() if progress is None else progress
    cbs: list[Callback] = list(callbacks or [])
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        cbs.append(RichProgressBar(leave=True))
    common: dict[str, Any] = dict(
        accelerator=accelerator,
        devices=devices,
        num_nodes=cfg.num_nodes,
        strategy=strategy,
        precision=precision,
        default_root_dir=str(run_dir),
        enable_progress_bar=progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # our samplers shard by rank (attn_cli.data.common)
        plugins=[AtomicCheckpointIO()],
        deterministic=cfg.deterministic,
    )
    if for_eval:
        return L.Trainer(logger=False, callbacks=cbs, **common)

    ckpt_dir = run_dir / "checkpoints"
    cbs.append(
        ModelCheckpoint(
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
    if cfg.checkpoint_every_steps:
        cbs.append(
            StepCheckpoint(
                dirpath=ckpt_dir,
                filename="last",
                save_top_k=0,
                save_last=True,
                every_n_train_steps=cfg.checkpoint_every_steps,
                enable_version_counter=False,
            )
        )
    cbs.append(LossGuard(cfg.max_loss))
    if os.environ.get("ATTN_FAULT_AT_STEP"):
        cbs.append(FaultInjection(int(os.environ["ATTN_FAULT_AT_STEP"]), os.environ.get("ATTN_FAULT_POINT", "train")))
    if cfg.patience > 0:
        cbs.append(EarlyStopping(monitor=cfg.monitor, mode=cfg.monitor_mode, patience=cfg.patience))
    if cfg.lr_schedule != "none":
        cbs.append(LearningRateMonitor(logging_interval="epoch"))
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
