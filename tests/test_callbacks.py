"""train.stop_at (stop once the monitor reaches a target) and the plain progress lines of a piped run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from attn_cli import run
from attn_cli.callbacks import StopAtTarget
from tests.conftest import ATTN_EXE

FC = "tiny/fc"  # FC on the generated glyphs: 600 training images, one validation per epoch


@pytest.fixture(scope="module")
def glyphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    run.prepare("glyphs", data_dir=data)
    return data


def test_target_is_inclusive_in_the_monitor_direction() -> None:
    bleu = StopAtTarget("val/bleu", "max", 100.0)
    assert bleu.reached(100.0) and bleu.reached(100.5) and not bleu.reached(99.99)
    error = StopAtTarget("val/error", "min", 0.0)
    assert error.reached(0.0) and not error.reached(0.5)


def _train(glyphs: Path, runs: Path, *extra: str) -> dict:
    overrides = ["train.max_steps=-1", "train.max_epochs=3", *extra]
    return run.train("vision", FC, overrides=overrides, runs_dir=runs, data_dir=glyphs, progress=False)


def test_stop_at_ends_training_at_the_first_validation_that_reaches_it(glyphs: Path, tmp_path: Path) -> None:
    full = _train(glyphs, tmp_path / "a", "train.stop_at=-1")  # an error below 0 is never reached
    stopped = _train(glyphs, tmp_path / "b", "train.stop_at=100")  # any error reaches 100%
    assert full["steps"] > 0 and stopped["steps"] * 3 == full["steps"]
    assert stopped["best_score"] is not None and Path(stopped["best_checkpoint"]).is_file()


def test_stop_at_is_typed(glyphs: Path, tmp_path: Path) -> None:
    from attn_cli.errors import AttnError

    with pytest.raises(AttnError, match="stop_at"):
        _train(glyphs, tmp_path, "train.stop_at=high")


def test_piped_training_prints_one_plain_line_per_validation_and_epoch(glyphs: Path, tmp_path: Path) -> None:
    env = {**os.environ, "ATTN_DATA": str(glyphs), "ATTN_RUNS": str(tmp_path / "runs")}
    args = ["train", "vision", "--recipe", FC, "--set", "train.max_epochs=3", "--set", "train.max_steps=25"]
    proc = subprocess.run([ATTN_EXE, *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("epoch ")]
    # epoch 0 validates after its 19 batches; epoch 1 is cut at step 25 by max_steps, before its validation
    assert len(lines) == 2, proc.stdout
    number = r"-?[\d.]+(e-?\d+)?"
    assert re.fullmatch(rf"epoch 0 step 19 val/error {number} val/loss {number} .*elapsed [\d.]+s", lines[0]), lines[0]
    assert re.fullmatch(rf"epoch 1 step 25 train/loss {number}.* elapsed [\d.]+s", lines[1]), lines[1]
    assert "val/" not in lines[1], "an epoch without validation shows no stale validation metrics"
