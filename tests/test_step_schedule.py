"""The step learning-rate schedule (lr · decay^((epoch − start) // N)): MemN2N's "halved every 25 epochs"
(Sukhbaatar et al. §4.2), from the end of linear start as the authors' release, one implementation any recipe
can name, that continues its staircase through a resume."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pytest
import torch

from attn_cli import run
from attn_cli.config import load_recipe
from attn_cli.errors import AttnError
from attn_cli.tasks.vision import VisionModule
from tests.conftest import ATTN_EXE

META = {"image_shape": [1, 28, 28], "classes": 10}


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_step_schedule_is_a_staircase_with_a_floor() -> None:
    overrides = ["train.lr=0.01", "train.lr_schedule=step", "train.lr_step_epochs=3", "train.lr_decay=0.5"]
    conf = VisionModule(
        load_recipe("vision", "tiny/fc", [*overrides, "train.min_lr=0.001"]), META
    ).configure_optimizers()
    assert conf["lr_scheduler"]["interval"] == "epoch"
    lrs = [conf["optimizer"].param_groups[0]["lr"]]
    for _ in range(11):
        conf["lr_scheduler"]["scheduler"].step()
        lrs.append(conf["optimizer"].param_groups[0]["lr"])
    # epochs 0-2 at 0.01, 3-5 at 0.005, 6-8 at 0.0025, then the floor 0.001 (0.00125 at 9-11 would be above it)
    assert lrs == pytest.approx([0.01] * 3 + [0.005] * 3 + [0.0025] * 3 + [0.00125] * 3)
    conf = VisionModule(
        load_recipe("vision", "tiny/fc", [*overrides, "train.min_lr=0.002"]), META
    ).configure_optimizers()
    for _ in range(9):
        conf["lr_scheduler"]["scheduler"].step()
    assert conf["optimizer"].param_groups[0]["lr"] == pytest.approx(0.002)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_step_schedule_starts_its_staircase_at_lr_decay_start() -> None:
    """MemN2N's release keeps the rate through linear start and then runs its halving schedule from the top."""
    overrides = ["train.lr=0.01", "train.lr_schedule=step", "train.lr_step_epochs=3", "train.lr_decay_start=4"]
    conf = VisionModule(load_recipe("vision", "tiny/fc", overrides), META).configure_optimizers()
    lrs = [conf["optimizer"].param_groups[0]["lr"]]
    for _ in range(10):
        conf["lr_scheduler"]["scheduler"].step()
        lrs.append(conf["optimizer"].param_groups[0]["lr"])
    # epochs 0-3 (the linear phase) and 4-6 at 0.01, 7-9 at 0.005, 10 at 0.0025
    assert lrs == pytest.approx([0.01] * 7 + [0.005] * 3 + [0.0025])


def test_step_schedule_needs_a_positive_period() -> None:
    with pytest.raises(AttnError, match="lr_step_epochs"):
        load_recipe("vision", "tiny/fc", ["train.lr_schedule=step", "train.lr_step_epochs=0"])


def _step_lrs(run_dir: Path) -> dict[int, float]:
    """The learning rate the LearningRateMonitor logged, by step, over every segment of a run."""
    by_step: dict[int, float] = {}
    for path in (run_dir / "logs").glob("metrics*.csv"):
        for row in csv.DictReader(path.open()):
            value = next((v for k, v in row.items() if k.startswith("lr-") and v), None)
            if value is not None:
                by_step[int(row["step"])] = float(value)
    return by_step


def _epoch_lrs(run_dir: Path) -> list[float]:
    """The learning rate logged at each epoch's start, in step order over every segment."""
    by_step = _step_lrs(run_dir)
    return [by_step[s] for s in sorted(by_step)]


def test_step_schedule_continues_its_staircase_after_a_resume(generated_data: Path, tmp_path: Path) -> None:
    """3 epochs, then resumed to 5: epoch 3 keeps the halved rate (a scheduler restarted from its initial state
    would give it 0.01 again) and epoch 4 is halved once more, as in the uninterrupted run."""
    common = ["train.lr=0.01", "train.lr_schedule=step", "train.lr_step_epochs=2", "train.max_steps=-1"]
    common += ["train.max_time_min=null", "train.threads=1", "train.batch_size=256", "train.limit_val_batches=1"]

    def train(rd: str, epochs: int, resume: bool = False) -> None:
        run.train(
            "memory",
            None if resume else "tiny/memn2n",
            runs_dir=tmp_path,
            data_dir=generated_data,
            progress=False,
            overrides=[f"train.max_epochs={epochs}"] if resume else [*common, f"train.max_epochs={epochs}"],
            run_dir=None if resume else tmp_path / rd,
            resume=tmp_path / rd if resume else None,
        )

    train("straight", 5)
    train("resumed", 3)
    train("resumed", 5, resume=True)
    expected = [0.01, 0.01, 0.005, 0.005, 0.0025]
    assert _epoch_lrs(tmp_path / "straight") == pytest.approx(expected)
    assert _epoch_lrs(tmp_path / "resumed") == pytest.approx(expected)


# -- the linear schedule: RAM's "annealed linearly to 0 over the course of training" (Mnih et al. 2014 §4) ----


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_linear_schedule_falls_by_equal_steps_to_zero_at_max_steps() -> None:
    overrides = ["train.lr=0.01", "train.lr_schedule=linear", "train.max_steps=10", "train.optimizer=sgd"]
    conf = VisionModule(load_recipe("vision", "tiny/fc", overrides), META).configure_optimizers()
    assert conf["lr_scheduler"]["interval"] == "step"
    lrs = [conf["optimizer"].param_groups[0]["lr"]]
    for _ in range(10):
        conf["lr_scheduler"]["scheduler"].step()
        lrs.append(conf["optimizer"].param_groups[0]["lr"])
    assert lrs == pytest.approx([0.01 * (10 - s) / 10 for s in range(11)])
    conf = VisionModule(
        load_recipe("vision", "tiny/fc", [*overrides, "train.min_lr=0.003"]), META
    ).configure_optimizers()
    for _ in range(10):
        conf["lr_scheduler"]["scheduler"].step()
    assert conf["optimizer"].param_groups[0]["lr"] == pytest.approx(0.003)  # the floor, not 0


def test_linear_schedule_needs_a_step_budget() -> None:
    with pytest.raises(AttnError, match=r"lr_schedule=linear .* set train.max_steps"):
        load_recipe("vision", "tiny/fc", ["train.lr_schedule=linear", "train.max_steps=-1"])


def test_linear_schedule_without_a_step_budget_is_a_one_line_cli_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [ATTN_EXE, "train", "vision", "--recipe", "tiny/fc", "--set", "train.lr_schedule=linear",
         "--set", "train.max_steps=-1"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "ATTN_RUNS": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        "error: train.lr_schedule=linear anneals the rate to 0 over train.max_steps updates, but train.max_steps"
        " is -1; set train.max_steps to the run's number of updates"
    ]
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_linear_schedule_continues_its_line_after_a_kill(generated_data: Path, tmp_path: Path) -> None:
    """Killed hard at update 5 and resumed: every logged rate, and the weights at the end, are the
    uninterrupted run's (a scheduler restarted from its initial state would climb back to the full rate)."""
    common = [
        "--recipe", "tiny/ram", "--set", "train.optimizer=sgd", "--set", "train.momentum=0.9",
        "--set", "train.lr=0.05", "--set", "train.lr_schedule=linear", "--set", "train.max_steps=8",
        "--set", "train.max_epochs=100", "--set", "train.checkpoint_every_steps=2", "--set", "train.threads=1",
    ]  # fmt: skip
    env = {**os.environ, "ATTN_DATA": str(generated_data), "OMP_NUM_THREADS": "1"}
    env.pop("ATTN_RUN_DIR", None)

    def attn(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([ATTN_EXE, *args], capture_output=True, text=True, env={**env, **extra}, timeout=600)

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert attn("train", "vision", *common, "--run-dir", str(straight)).returncode == 0
    assert attn("train", "vision", *common, "--run-dir", str(killed), ATTN_FAULT_AT_STEP="5").returncode == 137
    proc = attn("train", "vision", "--resume", str(killed))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lrs = _step_lrs(straight)
    assert lrs == pytest.approx({s: 0.05 * (8 - s) / 8 for s in lrs})  # logged before each update s
    assert sorted(lrs) == list(range(8))
    # the killed segment's last rows may never reach its log (a hard kill flushes nothing); the resumed one
    # starts at the step-4 checkpoint and logs updates 4-7 under their own step numbers, at the line's rates
    resumed = _step_lrs(killed)
    assert set(range(4, 8)) <= set(resumed) <= set(lrs)
    assert resumed == pytest.approx({s: lrs[s] for s in resumed})
    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["lr_schedulers"][0]["last_epoch"] == b["lr_schedulers"][0]["last_epoch"] == 8
    for key in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], rtol=0, atol=0)
