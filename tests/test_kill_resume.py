"""Kill a training run at chosen and random points, resume it, and get the uninterrupted run bit for bit.

The kills are hard (``os._exit(137)``, what SIGKILL leaves: no handler, no flush) and land mid-epoch,
inside a validation, and halfway through writing ``last.ckpt`` (the injectors:
``ATTN_FAULT_AT_STEP``/``ATTN_FAULT_POINT`` in :mod:`attn_cli.trainer`, ``ATTN_FAULT_IN_WRITE`` in
:mod:`attn_cli.io`); one more is a real SIGKILL sent from outside at a random moment. The temporary
file a killed write leaves is gone after the resume, and only such files are ever removed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import torch

from attn_cli import run
from attn_cli.io import TEMP_MARK, atomic_write, remove_stale_temps
from tests.conftest import ATTN_EXE

RECIPE = [
    "--recipe", "tiny/luong-local-p", "--set", "train.max_steps=12", "--set", "train.checkpoint_every_steps=2",
    "--set", "train.val_every_steps=4", "--set", "train.batch_size=7",
]  # fmt: skip
SEED = 20261206  # the random kill points below are drawn from it; change it to try others
_draw = random.Random(SEED)
RANDOM_POINTS = [
    {"ATTN_FAULT_AT_STEP": str(_draw.randint(1, 11)), "ATTN_FAULT_POINT": _draw.choice(["train", "validation"])}
    for _ in range(2)
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kill-data")
    run.prepare("toy-reorder", data_dir=root)
    return root


def attn(*args: str, data: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "ATTN_DATA": str(data), "OMP_NUM_THREADS": "1", **(env or {})}
    full.pop("ATTN_RUN_DIR", None)
    return subprocess.run([ATTN_EXE, *args], capture_output=True, text=True, env=full, timeout=600)


@pytest.fixture(scope="module")
def straight(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    proc = attn("train", "nmt", *RECIPE, "--run-dir", str(run_dir), data=data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def temps(run_dir: Path) -> list[Path]:
    return list(run_dir.rglob(f"*{TEMP_MARK}*"))


def assert_same_run(a: Path, b: Path) -> None:
    for name in ("last.ckpt", "best.ckpt"):
        sa = torch.load(a / "checkpoints" / name, weights_only=False)["state_dict"]
        sb = torch.load(b / "checkpoints" / name, weights_only=False)["state_dict"]
        assert sa.keys() == sb.keys()
        for key in sa:
            torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=f"{name}: {key}")
    # the logging step too: a resumed segment's logged rows carry the uninterrupted run's step numbers
    steps = [
        torch.load(r / "checkpoints" / "last.ckpt", weights_only=False)["loops"]["fit_loop"]["epoch_loop.state_dict"]
        for r in (a, b)
    ]
    assert steps[0] == steps[1]
    done_a = json.loads((a / "train_done.json").read_text())
    done_b = json.loads((b / "train_done.json").read_text())
    assert (done_a["best_score"], done_a["steps"]) == (done_b["best_score"], done_b["steps"])


POINTS = {
    "mid-epoch-step-5": {"ATTN_FAULT_AT_STEP": "5"},
    "validation-at-step-8": {"ATTN_FAULT_AT_STEP": "8", "ATTN_FAULT_POINT": "validation"},
    "writing-the-3rd-last-ckpt": {"ATTN_FAULT_IN_WRITE": "last.ckpt:3"},
    **{f"random-{i}-step-{p['ATTN_FAULT_AT_STEP']}-{p['ATTN_FAULT_POINT']}": p for i, p in enumerate(RANDOM_POINTS)},
}


@pytest.mark.parametrize("point", sorted(POINTS))
def test_killed_run_resumes_to_the_uninterrupted_result(point: str, data: Path, straight: Path, tmp_path: Path) -> None:
    killed = tmp_path / "run"
    proc = attn("train", "nmt", *RECIPE, "--run-dir", str(killed), data=data, env=POINTS[point])
    assert proc.returncode == 137, proc.stderr[-3000:]
    assert not (killed / "train_done.json").exists()
    left = temps(killed)
    if "ATTN_FAULT_IN_WRITE" in POINTS[point]:
        assert [p.parent.name for p in left] == ["checkpoints"], left  # the half-written last.ckpt
    if not (killed / "checkpoints" / "last.ckpt").is_file():
        # killed before the first checkpoint: nothing to resume; the run is started again
        proc = attn("train", "nmt", *RECIPE, "--run-dir", str(killed), data=data)
    else:
        proc = attn("train", "nmt", "--resume", str(killed), data=data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert temps(killed) == []
    assert_same_run(straight, killed)


def test_sigkill_from_outside_at_a_random_moment(data: Path, straight: Path, tmp_path: Path) -> None:
    """A real SIGKILL, sent once the run has a checkpoint, after a random wait (seeded)."""
    killed = tmp_path / "run"
    env = {**os.environ, "ATTN_DATA": str(data), "OMP_NUM_THREADS": "1"}
    env.pop("ATTN_RUN_DIR", None)
    proc = subprocess.Popen(
        [ATTN_EXE, "train", "nmt", *RECIPE, "--run-dir", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (killed / "checkpoints" / "last.ckpt").is_file() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(random.Random(SEED).uniform(0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    # the kill can land after training finished (train_done.json written) but before the process exited:
    # then there is nothing to resume, and the run must already equal the uninterrupted one
    if proc.returncode == -signal.SIGKILL and not (killed / "train_done.json").is_file():
        assert attn("train", "nmt", "--resume", str(killed), data=data).returncode == 0
    assert temps(killed) == []
    assert_same_run(straight, killed)


def test_only_our_dead_writers_temporaries_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    ours_dead = tmp_path / f".last.ckpt.{TEMP_MARK}{host}-{dead.pid}-k2j4h5l6.tmp"
    ours_dead_dir = tmp_path / f".toy.{TEMP_MARK}{host}-{dead.pid}-a1b2c3d4.tmp"
    live = tmp_path / f".last.ckpt.{TEMP_MARK}{host}-{os.getppid()}-q1w2e3r4.tmp"
    other_host = tmp_path / f".last.ckpt.{TEMP_MARK}{host}x-{dead.pid}-z9x8c7v6.tmp"
    not_ours = [tmp_path / ".last.ckpt.abc123.tmp", tmp_path / "notes~attn-.txt", live, other_host]
    for p in [ours_dead, *not_ours]:
        p.write_text("x")
    ours_dead_dir.mkdir()
    (ours_dead_dir / "part").write_text("x")
    assert sorted(remove_stale_temps(tmp_path)) == sorted([ours_dead, ours_dead_dir])
    assert all(p.exists() for p in not_ours) and not ours_dead.exists() and not ours_dead_dir.exists()


def test_an_atomic_write_clears_its_targets_stale_temporary(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".result.json.{TEMP_MARK}{socket.gethostname()}-{dead.pid}-m3n4b5v6.tmp"
    stale.write_text('{"half": ')
    atomic_write(tmp_path / "result.json", "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_a_killed_preparation_leaves_no_dataset_and_its_temporary_is_removed_next_time(tmp_path: Path) -> None:
    proc = attn("prepare", "toy-reorder", data=tmp_path, env={"ATTN_FAULT_IN_WRITE": "manifest.json:1"})
    assert proc.returncode == 137, proc.stderr[-3000:]
    assert not (tmp_path / "toy-reorder").exists()
    left = [p.name.split(TEMP_MARK)[0] for p in tmp_path.iterdir()]
    assert left == [".toy-reorder."], left  # the half-built dataset folder (with a half-written manifest)
    assert attn("prepare", "toy-reorder", data=tmp_path).returncode == 0
    assert temps(tmp_path) == [] and (tmp_path / "toy-reorder" / "manifest.json").is_file()


def test_each_rank_continues_its_own_generator_and_a_new_rank_draws_its_own() -> None:
    """A checkpoint carries every rank's generator; a rank it has none for (resumed on more processes)
    gets a stream of its own, the same on every resume, never a copy of another rank's."""
    from attn_cli.tasks.base import _restore_rng, _rng_state

    torch.manual_seed(3)
    saved = [_rng_state()]
    continued = torch.rand(4)
    _restore_rng(saved, 0, 5)
    assert torch.equal(torch.rand(4), continued)
    _restore_rng(saved, 1, 5)
    rank1 = torch.rand(4)
    _restore_rng(saved, 2, 5)
    rank2 = torch.rand(4)
    assert not torch.equal(rank1, continued) and not torch.equal(rank2, rank1)
    _restore_rng(saved, 1, 5)
    assert torch.equal(torch.rand(4), rank1)


def test_a_run_killed_after_validation_stopped_improving_resumes_from_its_latest_validation(
    data: Path, tmp_path: Path
) -> None:
    """Without periodic checkpoints (the CPU default), ``last.ckpt`` is written at every validation, not only at
    those that improved ``best.ckpt``: monitoring the validation perplexity for a *maximum* makes every validation after
    the first a non-improvement here, and the kill at step 7 must still resume from step 6, not step 2."""
    killed = tmp_path / "run"
    recipe = [
        "--recipe", "tiny/luong-local-p", "--set", "train.max_steps=8", "--set", "train.checkpoint_every_steps=null",
        "--set", "train.val_every_steps=2", "--set", "train.batch_size=7", "--set", "train.monitor=val/ppl",
        "--set", "train.monitor_mode=max",
    ]  # fmt: skip
    proc = attn("train", "nmt", *recipe, "--run-dir", str(killed), data=data, env={"ATTN_FAULT_AT_STEP": "7"})
    assert proc.returncode == 137, proc.stderr[-3000:]
    ckpt = killed / "checkpoints"
    best, last = (torch.load(ckpt / f"{n}.ckpt", weights_only=False)["global_step"] for n in ("best", "last"))
    assert best < 6, "a validation improved the maximum: the test no longer tests a non-improving validation"
    assert last == 6
    info = json.loads((killed / "run.json").read_text())
    noted = info["open_segment"]  # the killed process could not add its time: its checkpoints noted it
    assert noted["step"] == 6 and noted["wall_s"] > 0 and noted["cpu_s"] > 0 and "train_wall_s" not in info
    proc = attn("train", "nmt", "--resume", str(killed), data=data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.load(ckpt / "last.ckpt", weights_only=False)["global_step"] == 8
    info = json.loads((killed / "run.json").read_text())
    first, second = info["segments"]
    assert "open_segment" not in info and "ended" not in second
    assert first["ended"].startswith("killed;") and "to its checkpoint at step 6 are counted" in first["ended"]
    assert info["train_wall_s"] > noted["wall_s"] and info["train_cpu_s"] > noted["cpu_s"]
