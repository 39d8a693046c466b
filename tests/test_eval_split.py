"""Evaluation scores the weights and the split it names (issue 23).

``attn eval --split val`` once paired the validation split's hypotheses with the test
split's references (every evaluation was labelled "test"), and inside a SLURM job
Lightning replaced the named checkpoint's weights with the run's newest
``hpc_ckpt_*.ckpt``. Each family's evaluation of a non-test split must give what
validation computes on the same weights, and a planted older hpc checkpoint must change
nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from attn_cli import records, run
from attn_cli.io import read_jsonl
from attn_cli.registry import TASKS
from attn_cli.tasks.base import load_checkpoint
from attn_cli.trainer import build_trainer
from tests.conftest import run_cli

SLURM_JOB = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "attn-train"}


def _validation_metrics(task: str, run_dir: Path, data_dir: Path, overrides: list[str]) -> dict[str, float]:
    """What validation computes on the run's best weights over the whole val split."""
    from attn_cli.config import apply_overrides

    sections: dict[str, Any] = {}
    apply_overrides(sections, overrides)
    module, recipe = load_checkpoint(run_dir / "checkpoints" / "best.ckpt", task, sections)
    dm = TASKS.get(task).datamodule(recipe, data_dir)
    dm.setup("test")
    module.attach(dm)
    trainer = build_trainer(recipe.train, run_dir, for_eval=True, progress=False)
    out = trainer.validate(module, dataloaders=dm.split_loader("val"), verbose=False)[0]
    return {k.removeprefix("val/"): float(v) for k, v in out.items()}


def _train(task: str, recipe: str, data: Path, runs: Path) -> Path:
    summary = run.train(task, recipe, runs_dir=runs, data_dir=data, progress=False, overrides=["train.threads=1"])
    return Path(summary["run_dir"])


# eval.beam=1: the validation protocol decodes greedily (val_beam), so the two decode alike
FAMILIES = [
    ("nmt", "tiny/luong-global-general", ["eval.beam=1"]),
    ("caption", "tiny/show-tell", ["eval.beam=1"]),
    ("vision", "tiny/fc", []),
    ("memory", "tiny/memn2n", []),
    ("memory", "tiny/ntm", []),
    ("reader", "tiny/attentive-reader", []),
]


@pytest.mark.parametrize(("task", "recipe", "overrides"), FAMILIES, ids=[f[1] for f in FAMILIES])
def test_eval_on_val_scores_the_val_split(
    task: str, recipe: str, overrides: list[str], generated_data: Path, tmp_path: Path
) -> None:
    run_dir = _train(task, recipe, generated_data, tmp_path)
    sets = [a for o in overrides for a in ("--set", o)]
    code, out, err = run_cli(
        "--data-dir", str(generated_data), "eval", task, "--run", str(run_dir), "--split", "val", *sets
    )
    assert code == 0, err
    result = json.loads((run_dir / "eval" / "val" / "metrics.json").read_text())
    assert result["split"] == "val"
    rows = read_jsonl(run_dir / "eval" / "val" / "predictions.jsonl")
    expected = _validation_metrics(task, run_dir, generated_data, overrides)
    module, recipe_ = load_checkpoint(run_dir / "checkpoints" / "best.ckpt", task)
    dm = TASKS.get(task).datamodule(recipe_, generated_data)
    dm.setup("test")
    assert len(rows) == len(dm.split_loader("val").dataset)
    if task == "nmt":
        refs = dm.dataset("val").refs
        assert [r["ref"] for r in rows] == [refs[int(r["id"])] for r in rows]
    if task == "caption":
        from attn_cli.tasks.caption import caption_metrics

        items = dm.dataset("val").items
        assert [r["refs"] for r in rows] == [items[int(r["id"])]["refs"] for r in rows]
        # final scoring tokenises with PTB; validation's whitespace scorer on the same rows must agree
        got = caption_metrics(rows, final=False, meteor=False)
    else:
        got = result["metrics"]
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-6), name  # logged values are float32


@pytest.fixture(scope="module")
def trained(generated_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train("nmt", "tiny/luong-global-general", generated_data, tmp_path_factory.mktemp("runs"))


def _plant_hpc_checkpoint(source: Path, dest: Path) -> None:
    """An older checkpoint of other weights, where Lightning's SLURM requeue would have left one."""
    ckpt = torch.load(source, weights_only=True)
    ckpt["state_dict"] = {k: torch.zeros_like(v) for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, dest)


def test_eval_inside_slurm_scores_the_named_checkpoint(
    trained: Path, generated_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    base = ("--data-dir", str(generated_data), "eval", "nmt", "--run", str(trained))
    code, out, err = run_cli(*base)
    assert code == 0, err
    outside = json.loads((trained / "eval" / "test" / "metrics.json").read_text())
    best = trained / "checkpoints" / "best.ckpt"
    assert outside["checkpoint"] == str(best) and f"scoredcheckpoint{best}" in "".join(out.split())
    _plant_hpc_checkpoint(best, trained / "hpc_ckpt_1.ckpt")
    for key, value in SLURM_JOB.items():
        monkeypatch.setenv(key, value)
    assert SLURMEnvironment.detect()  # the variables are what Lightning reads
    code, out, err = run_cli(*base)
    assert code == 0, err
    inside = json.loads((trained / "eval" / "test" / "metrics.json").read_text())
    assert inside["metrics"] == outside["metrics"] and inside["checkpoint"] == str(best)
    (trained / "hpc_ckpt_1.ckpt").unlink()


def test_final_validation_inside_slurm_scores_the_trained_weights(
    generated_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The validation after ``fit`` (a step budget ends between validations) must score the weights
    just trained, not an hpc checkpoint lying in the run directory, and save those as last.ckpt."""
    from lightning.pytorch.callbacks import Callback

    trained_weights: dict[str, torch.Tensor] = {}

    class PlantAtTrainEnd(Callback):
        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            trained_weights.update({k: v.clone() for k, v in pl_module.state_dict().items()})
            root = Path(trainer.default_root_dir)
            trainer.save_checkpoint(str(root / "planted.ckpt"))
            _plant_hpc_checkpoint(root / "planted.ckpt", root / "hpc_ckpt_1.ckpt")

    for key, value in SLURM_JOB.items():
        monkeypatch.setenv(key, value)
    summary = run.train(
        "nmt",
        "tiny/luong-global-general",
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        overrides=["train.max_steps=3", "train.val_every_steps=100", "train.threads=1"],
        extra_callbacks=[PlantAtTrainEnd()],
    )
    last = torch.load(Path(summary["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert trained_weights and all(torch.equal(last[k], v) for k, v in trained_weights.items())
    assert any(v.abs().sum() > 0 for v in last.values())


def test_eval_of_an_averaged_checkpoint_scores_that_file(trained: Path, generated_data: Path, tmp_path: Path) -> None:
    """An averaged checkpoint holds weights only (no optimizer state): evaluation restores exactly it."""
    avg = records.average_checkpoints(
        [trained / "checkpoints" / "best.ckpt", trained / "checkpoints" / "last.ckpt"], tmp_path / "avg.ckpt"
    )
    code, _, err = run_cli(
        "--data-dir", str(generated_data), "eval", "nmt", "--run", str(trained), "--checkpoint", str(avg)
    )
    assert code == 0, err
    result = json.loads((trained / "eval" / "test" / "metrics.json").read_text())
    assert result["checkpoint"] == str(avg) and result["notes"] == [f"scored checkpoint {avg}"]
