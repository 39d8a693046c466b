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


def test_a_finished_run_continues_under_a_larger_budget(generated_data: Path, tmp_path: Path) -> None:
    """--resume on a finished run: refused without a larger budget, continued (same run, new segment) with one."""
    import json

    import pytest

    from attn_cli.errors import AttnError

    common = ["train.max_time_min=null", "train.max_epochs=100", "train.val_every_steps=4", "train.threads=1"]
    first = run.train(
        "nmt",
        "tiny/luong-global-general",
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        overrides=["train.max_steps=4", *common],
    )
    run_dir = Path(first["run_dir"])
    with pytest.raises(AttnError, match="larger budget"):
        run.train("nmt", None, runs_dir=tmp_path, data_dir=generated_data, resume=run_dir)
    with pytest.raises(AttnError, match="already trained 4 steps; raise train.max_steps above 4"):
        run.train(
            "nmt", None, runs_dir=tmp_path, data_dir=generated_data, resume=run_dir, overrides=["train.max_steps=4"]
        )
    with pytest.raises(AttnError, match="raise train.max_epochs"):
        run.train(
            "nmt",
            None,
            runs_dir=tmp_path,
            data_dir=generated_data,
            resume=run_dir,
            overrides=["train.max_steps=-1", "train.max_epochs=0"],
        )
    assert (run_dir / "train_done.json").is_file()  # a refused extension leaves the run as it was
    second = run.train(
        "nmt",
        None,
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        resume=run_dir,
        overrides=["train.max_steps=8"],
    )
    assert second["run_dir"] == str(run_dir) and second["steps"] == 8
    info = json.loads((run_dir / "run.json").read_text())
    assert len(info["segments"]) == 2 and "--resume" not in info["segments"][0]["command"]
    assert json.loads((run_dir / "train_done.previous.json").read_text())["steps"] == 4
    # the first segment's learning curve survives the second (Lightning's CSVLogger would delete it)
    earlier = (run_dir / "logs" / "metrics.segment-1.csv").read_text().splitlines()
    later = (run_dir / "logs" / "metrics.csv").read_text().splitlines()
    step = earlier[0].split(",").index("step")
    assert {int(r.split(",")[step]) for r in earlier[1:]} <= set(range(4))
    assert max(int(r.split(",")[later[0].split(",").index("step")]) for r in later[1:]) >= 4
