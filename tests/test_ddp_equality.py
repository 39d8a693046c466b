"""Two processes (DDP over gloo, on CPU) give what one process gives (DESIGN §5; issue 24).

Training: W processes at batch size B/W take, step by step, the halves of the one-process batch of
size B (:class:`attn_cli.data.common.TrainBatches` cuts one permutation and deals its batches to the
ranks), and DDP averages their gradients; with a loss that is a mean over examples the updates agree up
to float rounding. Evaluation: the sampler pads the ranks' shares to equal length with repeated
examples, which are dropped by id before scoring, so on an uneven number of examples the 2-process
CIDEr and accuracy equal the 1-process ones exactly. (BLEU: ``tests/test_distributed.py``.)

Everything runs through the real CLI in subprocesses: Lightning's ``ddp`` launcher re-runs the
command line for rank 1, which under pytest would be pytest itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from attn_cli import run
from tests.test_distributed import cli

pytestmark = pytest.mark.ddp

TWO = ("--devices", "2", "--accelerator", "cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp-data")
    for name in ("glyphs", "glyphs-captions"):
        run.prepare(name, data_dir=root)
    return root


def env_for(data: Path) -> dict[str, str]:
    env = {**os.environ, "ATTN_DATA": str(data), "OMP_NUM_THREADS": "1"}
    env.pop("ATTN_RUN_DIR", None)
    return env


def test_two_process_training_equals_one_process_at_the_same_global_batch(data: Path, tmp_path: Path) -> None:
    # tiny/fc: no dropout, no batch norm, cross-entropy averaged over examples
    common = ["train", "vision", "--recipe", "tiny/fc", "--set", "train.max_steps=5", "--set", "train.lr=0.01"]
    one, two = tmp_path / "one", tmp_path / "two"
    cli(*common, "--set", "train.batch_size=32", "--run-dir", str(one), "--accelerator", "cpu", env=env_for(data))
    cli(*common, "--set", "train.batch_size=16", "--run-dir", str(two), *TWO, env=env_for(data))
    a = torch.load(one / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(two / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["global_step"] == b["global_step"] == 5
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], rtol=1e-5, atol=1e-6, msg=key)
    done = [json.loads((d / "train_done.json").read_text()) for d in (one, two)]
    assert done[0]["steps"] == done[1]["steps"] == 5
    assert done[0]["best_score"] == pytest.approx(done[1]["best_score"], abs=1e-9)


def _eval_both(task: str, run_dir: Path, data: Path, *extra: str) -> tuple[dict, dict]:
    out = run_dir / "eval" / "test"
    cli("eval", task, "--run", str(run_dir), *extra, "--accelerator", "cpu", env=env_for(data))
    one = json.loads((out / "metrics.json").read_text())
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "metrics.json"}
    cli("eval", task, "--run", str(run_dir), *extra, *TWO, env=env_for(data))
    two = json.loads((out / "metrics.json").read_text())
    assert sorted(p.name for p in out.iterdir() if p.name != "metrics.json") == sorted(files)
    assert (one["devices"], two["devices"]) == (1, 2)
    # the predictions themselves, row by row: a failure shows which examples differ, not only the scores
    for name, before in files.items():
        if name.endswith(".jsonl"):
            a, b = before.decode().splitlines(), (out / name).read_text().splitlines()
            differ = [(x, y) for x, y in zip(a, b) if x != y]
            assert len(a) == len(b) and not differ, (name, len(a), len(b), differ[:3], one["metrics"], two["metrics"])
        else:
            assert (out / name).read_bytes() == before, name
    return one["metrics"], two["metrics"]


def test_two_process_accuracy_equals_one_process(data: Path, tmp_path: Path) -> None:
    summary = run.train("vision", "tiny/fc", runs_dir=tmp_path, data_dir=data, progress=False)
    run_dir = Path(summary["run_dir"])
    # batches of 7 over the test split: an odd number of batches, so rank 1 gets a padded repeat
    one, two = _eval_both("vision", run_dir, data, "--set", "data.eval_batch_size=7")
    assert "error" in one and one == two


def test_two_process_cider_equals_one_process(data: Path, tmp_path: Path) -> None:
    summary = run.train("caption", "tiny/show-tell", runs_dir=tmp_path, data_dir=data, progress=False)
    run_dir = Path(summary["run_dir"])
    # 5 test images in batches of 1: rank 0 decodes 3, rank 1 decodes 2 and a repeat that is dropped
    one, two = _eval_both("caption", run_dir, data, "--set", "data.n_eval=5", "--set", "data.eval_batch_size=1")
    assert "cider" in one and "bleu4" in one and one == two
