"""Lightning callbacks that every training run can use: stop at a target, plain progress lines.

:mod:`attn_cli.trainer` adds them from the recipe (``train.stop_at``) and from where stdout goes
(a terminal gets rich's progress bar, a pipe or a file gets :class:`LogLines`).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import lightning as L
from lightning.pytorch.callbacks import Callback


class StopAtTarget(Callback):
    """Stop training once ``monitor`` reaches ``target`` (``>=`` when ``mode`` is max, ``<=`` when min).

    A run that has solved its task (the demo's toy NMT reaches BLEU 100 in a few epochs) has nothing
    left to learn; training on costs minutes and changes no result. Lightning's ``EarlyStopping``
    threshold compares strictly (``>``), so a metric that tops out at exactly its maximum (BLEU
    100, error 0) would never stop it; this compares inclusively. Checked after every validation,
    and agreed across processes (any rank that reached it stops all, as ``EarlyStopping`` does).
    """

    def __init__(self, monitor: str, mode: str, target: float) -> None:
        self.monitor, self.mode, self.target = monitor, mode, float(target)
        self.reached_at_step: int | None = None

    def reached(self, value: float) -> bool:
        return value >= self.target if self.mode == "max" else value <= self.target

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        value = trainer.callback_metrics.get(self.monitor)
        done = value is not None and self.reached(float(value))
        if trainer.strategy.reduce_boolean_decision(done, all=False):
            trainer.should_stop = True
            self.reached_at_step = trainer.global_step


class LogLines(Callback):
    """One plain line per validation (or per epoch without one) while training: step, metrics, elapsed time.

    Rich's progress bar redraws one terminal line; into a pipe or a file (``make demo | tee log``,
    a batch job's log) it writes nothing for minutes. These lines are what a log reader wants
    instead. Rank zero only.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.start = time.perf_counter()
        self.last_step = -1

    def _write(self, trainer: L.Trainer, *, validated: bool) -> None:
        if not trainer.is_global_zero:
            return
        self.last_step = trainer.global_step
        # after a validation its metrics first; at an epoch end without one, the training metrics only
        # (the validation metrics still held would be stale)
        metrics = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if v.numel() == 1 and (validated or not k.startswith("val"))
        }
        shown = " ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items(), key=lambda kv: not kv[0].startswith("val")))
        line = f"epoch {trainer.current_epoch} step {trainer.global_step} {shown} elapsed {time.perf_counter() - self.start:.1f}s"
        print(" ".join(line.split()), file=self.stream or sys.stdout, flush=True)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._write(trainer, validated=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self.last_step:  # this epoch ended without a validation
            self._write(trainer, validated=False)
