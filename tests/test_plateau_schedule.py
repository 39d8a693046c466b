"""The plateau learning-rate schedule (``train.lr_schedule=plateau``) steps once per real validation.

Lightning steps a ``ReduceLROnPlateau`` at epoch ends on the latest logged score: with step-based validation
(``train.val_every_steps``) that counted a stale score again at every epoch end, or skipped validations when
they were closer than an epoch. RAM on MNIST validates every ~2.3 epochs and its rate was halved six times in a
handful of real validations. These runs use validation intervals that do not divide the epoch (12 batches).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from attn_cli import run
from attn_cli.errors import AttnError
from tests.conftest import ATTN_EXE

# toy-reorder has 6,000 training pairs: 12 batches of 500 per epoch. Monitoring perplexity in "max" mode makes
# nearly every validation a non-improvement, so with patience 0 the rate moves at almost every validation.
PLATEAU = [
    "train.lr_schedule=plateau", "train.lr_patience=0", "train.lr_decay=0.5", "train.lr=0.01",
    "train.monitor=val/ppl", "train.monitor_mode=max", "train.batch_size=500", "train.max_steps=-1",
    "train.max_time_min=null", "train.limit_val_batches=1", "train.threads=1",
]  # fmt: skip


class Validations(L.Callback):
    """After each validation of the fit (not the run's closing validation of the last weights, which scores
    them after training and must not move the schedule): (global step, score, scheduler steps, rate)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float, int, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn != "fit":
            return
        sched = trainer.lr_scheduler_configs[0].scheduler
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        score = float(trainer.callback_metrics["val/ppl"])
        self.seen.append((trainer.global_step, score, int(sched.last_epoch), lr))


@pytest.mark.parametrize(("every", "epochs"), [(5, 3), (17, 6)])
def test_the_plateau_schedule_steps_once_after_each_validation(
    every: int, epochs: int, generated_data: Path, tmp_path: Path
) -> None:
    """every=5: two or three validations per epoch (the old stepping took one of them); every=17: a validation
    every ~1.4 epochs (the old stepping counted the previous score again at the epoch ends between)."""
    probe = Validations()
    summary = run.train(
        "nmt",
        "tiny/luong-global-general",
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        overrides=[*PLATEAU, f"train.max_epochs={epochs}", f"train.val_every_steps={every}"],
        extra_callbacks=[probe],
    )
    steps = [s for s, *_ in probe.seen]
    assert steps == list(range(every, 12 * epochs + 1, every)) and any(s % 12 for s in steps)
    assert [n for _, _, n, _ in probe.seen] == list(range(1, len(steps) + 1))
    # the rates are those of a ReduceLROnPlateau fed exactly these scores, one step each
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    replay = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0)
    expected = []
    for _, score, _, _ in probe.seen:
        replay.step(score)
        expected.append(opt.param_groups[0]["lr"])
    assert [lr for *_, lr in probe.seen] == pytest.approx(expected)
    assert expected[-1] < 0.01 / 2  # the schedule did act, more than once
    last = torch.load(Path(summary["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["lr_schedulers"][0]["last_epoch"] == len(steps)


def test_the_plateau_schedule_needs_a_monitor_that_validation_reports(generated_data: Path, tmp_path: Path) -> None:
    """A monitor validation never logs would leave the rate untouched for the whole run, silently."""
    with pytest.raises(AttnError, match=r"train.monitor=val/accuracy, which validation does not report .*val/ppl"):
        run.train(
            "nmt",
            "tiny/luong-global-general",
            runs_dir=tmp_path,
            data_dir=generated_data,
            progress=False,
            overrides=[*PLATEAU, "train.max_steps=5", "train.val_every_steps=5", "train.monitor=val/accuracy"],
        )


def _attn(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "ATTN_DATA": str(data), "OMP_NUM_THREADS": "1", **(env or {})}
    full.pop("ATTN_RUN_DIR", None)
    return subprocess.run([ATTN_EXE, *args], capture_output=True, text=True, env=full, timeout=600)


def _schedule(run_dir: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return ckpt["lr_schedulers"][0], ckpt["state_dict"]


def test_a_killed_plateau_run_resumes_with_its_schedule(generated_data: Path, tmp_path: Path) -> None:
    """Killed hard at step 13, after the validations at steps 5 and 10 had moved the rate, the run resumes from
    the last checkpoint and ends with the uninterrupted run's schedule state and weights."""
    args = ["train", "nmt", "--recipe", "tiny/luong-global-general"]
    for item in [*PLATEAU, "train.max_epochs=2", "train.val_every_steps=5", "train.checkpoint_every_steps=2"]:
        args += ["--set", item]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    proc = _attn(generated_data, *args, "--run-dir", str(straight))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _attn(generated_data, *args, "--run-dir", str(killed), env={"ATTN_FAULT_AT_STEP": "13"})
    assert proc.returncode == 137, proc.stderr[-3000:]
    at_kill, _ = _schedule(killed)
    assert at_kill["last_epoch"] == 2 and at_kill["_last_lr"][0] < 0.01
    proc = _attn(generated_data, "train", "nmt", "--resume", str(killed))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sched_a, weights_a), (sched_b, weights_b) = _schedule(straight), _schedule(killed)
    assert sched_a["last_epoch"] == sched_b["last_epoch"] == 4  # validations at steps 5, 10, 15, 20
    assert sched_a == sched_b
    for key in weights_a:
        torch.testing.assert_close(weights_a[key], weights_b[key], rtol=0, atol=0, msg=key)
