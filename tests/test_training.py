"""Training-spine behaviour that only shows over several epochs."""

from __future__ import annotations

from pathlib import Path

from attn_cli import run


def test_plateau_schedule_with_step_validation_crossing_epochs(generated_data: Path, tmp_path: Path) -> None:
    """An epoch that ends before the first step-based validation must not crash the LR plateau schedule."""
    summary = run.train(
        "nmt",
        "tiny/luong-global-general",
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        overrides=[
            "train.lr_schedule=plateau",
            "train.max_steps=-1",
            "train.max_epochs=2",
            "train.batch_size=64",
            "train.val_every_steps=100",
            "train.threads=1",
        ],
    )
    assert summary["epochs"] == 2 and summary["best_score"] is not None


def test_time_budget_stops_and_still_scores(generated_data: Path, tmp_path: Path) -> None:
    summary = run.train(
        "nmt",
        "tiny/luong-global-general",
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        overrides=["train.max_time_min=0.02", "train.max_steps=-1", "train.max_epochs=100", "train.threads=1"],
    )
    assert summary["epochs"] < 100 and summary["best_score"] is not None
    assert Path(summary["best_checkpoint"]).is_file()
