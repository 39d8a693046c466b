"""Lightning callbacks that every training run can use: stop at a target, plain progress lines, a checkpoint
kept at every validation with the training time it took.

:mod:`attn_cli.trainer` adds them from the recipe (``train.stop_at``, ``train.keep_val_checkpoints``) and from
where stdout goes (a terminal gets rich's progress bar, a pipe or a file gets :class:`LogLines`).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from attn_cli.io import read_json, write_json


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


KEPT_PREFIX = "val-step"
CLOCKS = ("wall_s", "cpu_s", "val_wall_s", "val_cpu_s")


class KeepValCheckpoints(Callback):
    """``train.keep_val_checkpoints``: at every validation of the fit, ``checkpoints/val-step<N>.ckpt`` (weights
    only) and ``val-step<N>.json`` beside it, written atomically after the checkpoint: the step, the validation
    metrics and how much training it took to get there (issue 28: time to a BLEU, ``attn bench time-to``).

    The clocks start with the first training batch (``on_train_start``, as the JoeyNMT harness starts its own):
    ``wall_s`` and ``cpu_s`` (CPU seconds of this process, every thread; rank zero's under DDP) include the
    validations, ``train_wall_s`` and ``train_cpu_s`` leave them out; the time spent saving the kept checkpoints
    themselves is left out of both, since a run without this option would not spend it. The clocks go into
    every checkpoint of the run (this callback's state) and a resumed run continues them from the checkpoint it
    resumes, so the steps redone after a kill count once; a run that starts keeping checkpoints only when
    resumed starts its clocks at zero there.
    """

    def __init__(self, ckpt_dir: Path) -> None:
        self.ckpt_dir = Path(ckpt_dir)
        self.base = dict.fromkeys(CLOCKS, 0.0)  # the clocks of earlier segments (from the resumed checkpoint)
        self.start: tuple[float, float] | None = None  # (wall, CPU) when this segment's training began
        self.val_start: tuple[float, float] | None = None
        self.val = [0.0, 0.0]  # this segment's validation (wall, CPU)
        self.skipped = [0.0, 0.0]  # this segment's own checkpoint saving (wall, CPU), left out of the clocks

    @staticmethod
    def _now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def clocks(self) -> dict[str, float]:
        """The training time so far, earlier segments included (see the class docstring)."""
        if self.start is None:
            return dict(self.base)
        wall, cpu = self._now()
        return {
            "wall_s": self.base["wall_s"] + wall - self.start[0] - self.skipped[0],
            "cpu_s": self.base["cpu_s"] + cpu - self.start[1] - self.skipped[1],
            "val_wall_s": self.base["val_wall_s"] + self.val[0],
            "val_cpu_s": self.base["val_cpu_s"] + self.val[1],
        }

    def state_dict(self) -> dict[str, Any]:
        return self.clocks()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base = {k: float(state_dict.get(k, 0.0)) for k in CLOCKS}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start, self.val, self.skipped = self._now(), [0.0, 0.0], [0.0, 0.0]

    def _in_fit(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and trainer.state.fn == "fit" and self.start is not None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._in_fit(trainer):
            self.val_start = self._now()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._in_fit(trainer) or self.val_start is None:
            return
        begun = self._now()
        self.val[0] += begun[0] - self.val_start[0]
        self.val[1] += begun[1] - self.val_start[1]
        self.val_start = None
        clocks = self.clocks()
        step = trainer.global_step
        path = self.ckpt_dir / f"{KEPT_PREFIX}{step}.ckpt"
        trainer.save_checkpoint(path, weights_only=True)
        if trainer.is_global_zero:
            metrics = {
                k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1 and k.startswith("val")
            }
            write_json(
                path.with_suffix(".json"),
                {
                    "step": step,
                    "epoch": trainer.current_epoch,
                    "checkpoint": path.name,
                    **{k: round(v, 3) for k, v in clocks.items()},
                    "train_wall_s": round(clocks["wall_s"] - clocks["val_wall_s"], 3),
                    "train_cpu_s": round(clocks["cpu_s"] - clocks["val_cpu_s"], 3),
                    "metrics": metrics,
                    "threads": torch.get_num_threads(),
                    "load_avg_1min": round(os.getloadavg()[0], 2),
                    "saved": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                },
            )
        done = self._now()
        self.skipped[0] += done[0] - begun[0]
        self.skipped[1] += done[1] - begun[1]


def kept_checkpoints(run_dir: Path) -> list[tuple[int, Path, dict[str, Any]]]:
    """(step, checkpoint, its json) for each checkpoint :class:`KeepValCheckpoints` kept in ``run_dir``, in step
    order; a json without its checkpoint (deleted since) is left out."""
    kept = []
    for info_path in (Path(run_dir) / "checkpoints").glob(f"{KEPT_PREFIX}*.json"):
        tail = info_path.stem[len(KEPT_PREFIX) :]
        ckpt = info_path.with_suffix(".ckpt")
        if tail.isdigit() and ckpt.is_file():
            kept.append((int(tail), ckpt, read_json(info_path)))
    return sorted(kept, key=lambda k: k[0])
