"""The step learning-rate schedule (lr · decay^((epoch − start) // N)): MemN2N's "halved every 25 epochs"
(Sukhbaatar et al. §4.2), from the end of linear start as the authors' release, one implementation any recipe
can name, that continues its staircase through a resume."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from attn_cli import run
from attn_cli.config import load_recipe
from attn_cli.errors import AttnError
from attn_cli.tasks.vision import VisionModule

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


def _epoch_lrs(run_dir: Path) -> list[float]:
    """The learning rate the LearningRateMonitor logged at each epoch's start, in step order over every segment."""
    by_step: dict[int, float] = {}
    for path in (run_dir / "logs").glob("metrics*.csv"):
        for row in csv.DictReader(path.open()):
            value = next((v for k, v in row.items() if k.startswith("lr-") and v), None)
            if value is not None:
                by_step[int(row["step"])] = float(value)
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
