"""A run directory has one trainer at a time, is never started over by accident, and a command
that fails leaves it byte for byte as it was (issue 24)."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attn_cli import run
from attn_cli.runs import RunLock
from tests.conftest import run_cli
from tests.test_cli import one_line_error

RECIPE = "tiny/luong-global-general"


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(generated_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    summary = run.train("nmt", RECIPE, runs_dir=runs, data_dir=generated_data, progress=False)
    return Path(summary["run_dir"])


@pytest.fixture
def killed(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished run as a killed one leaves it: checkpoints, no train_done.json."""
    run_dir = tmp_path / "killed"
    shutil.copytree(finished, run_dir)
    (run_dir / "train_done.json").unlink()
    return run_dir


def _train(data: Path, *args: str) -> tuple[int, str, str]:
    return run_cli("--data-dir", str(data), "train", "nmt", *args)


def test_a_finished_run_is_not_started_over_without_overwrite(
    finished: Path, generated_data: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    before = snapshot(run_dir)
    code, _, err = _train(generated_data, "--recipe", RECIPE, "--run-dir", str(run_dir))
    one_line_error(code, err, "already holds a training")
    assert "--overwrite" in err and snapshot(run_dir) == before
    code, _, err = _train(generated_data, "--resume", str(run_dir), "--overwrite")
    one_line_error(code, err, "give one of them")
    (run_dir / "hpc_ckpt_3.ckpt").write_bytes(b"old")
    code, _, err = _train(generated_data, "--recipe", RECIPE, "--run-dir", str(run_dir), "--overwrite")
    assert code == 0, err
    info = json.loads((run_dir / "run.json").read_text())
    assert len(info["segments"]) == 1  # a new run, not a segment of the old one
    assert not (run_dir / "hpc_ckpt_3.ckpt").exists() and not (run_dir / "eval").exists()
    assert (run_dir / "checkpoints" / "best.ckpt").read_bytes() != before["checkpoints/best.ckpt"]
    assert not (run_dir / ".lock").exists()


def test_a_run_dir_in_use_refuses_a_second_training(killed: Path, generated_data: Path) -> None:
    """A second `attn train` into a directory another process trains into is refused, naming that process;
    evaluating the run meanwhile is allowed."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from attn_cli.runs import RunLock; "
            "RunLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); sys.stdin.read()",
            str(killed),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = snapshot(killed)
        code, _, err = _train(generated_data, "--resume", str(killed))
        one_line_error(code, err, f"is being trained by pid {holder.pid} on {platform.node()}")
        code, _, err = _train(generated_data, "--recipe", RECIPE, "--run-dir", str(killed), "--overwrite")
        one_line_error(code, err, f"pid {holder.pid}")
        assert snapshot(killed) == before
        code, _, err = run_cli("--data-dir", str(generated_data), "eval", "nmt", "--run", str(killed))
        assert code == 0, err
    finally:
        holder.communicate("")
    # the holder ended without releasing: the kernel dropped its flock, the file names it, the next takes over
    lock = RunLock(killed).acquire()
    assert lock.note.startswith(f"took over the stale lock of pid {holder.pid} on {platform.node()}")
    lock.release()


def test_a_stale_lock_is_taken_over(killed: Path, generated_data: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (killed / ".lock").write_text(json.dumps({"pid": dead.pid, "host": platform.node()}))
    with pytest.warns(UserWarning, match=f"took over the stale lock of pid {dead.pid} on {platform.node()}"):
        summary = run.train("nmt", None, runs_dir=killed.parent, data_dir=generated_data, resume=killed, progress=False)
    assert summary["steps"] > 0 and not (killed / ".lock").exists()


def test_a_lock_from_another_host_is_refused(killed: Path, generated_data: Path) -> None:
    (killed / ".lock").write_text(json.dumps({"pid": 7, "host": "node-elsewhere"}))
    code, _, err = _train(generated_data, "--resume", str(killed))
    one_line_error(code, err, "is locked by pid 7 on node-elsewhere; if that process is gone, delete")


def test_a_requeued_slurm_job_takes_over_its_earlier_runs_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SLURM restarts a requeued job (same job id) only after its previous run ended, maybe on another node."""
    from attn_cli.errors import AttnError

    (tmp_path / ".lock").write_text(json.dumps({"pid": 7, "host": "node-elsewhere", "slurm_job": "4242"}))
    monkeypatch.setenv("SLURM_JOB_ID", "4243")
    with pytest.raises(AttnError, match="is locked by pid 7 on node-elsewhere"):
        RunLock(tmp_path).acquire()
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    lock = RunLock(tmp_path).acquire()
    assert lock.note.endswith("(an earlier run of SLURM job 4242)")
    assert json.loads((tmp_path / ".lock").read_text())["slurm_job"] == "4242"
    lock.release()


def test_an_srun_worker_rank_refuses_another_jobs_lock_and_goes_on_under_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """srun starts every rank at once: a rank above zero must refuse a run another job trains (rank zero's
    refusal alone left it waiting in the collective set-up) and go on when its own job's rank zero holds it."""
    from attn_cli.errors import AttnError

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    RunLock(tmp_path).check_as_worker()  # no lock yet: rank zero will take it
    mine = RunLock(tmp_path).acquire()  # this job's rank zero, same host
    RunLock(tmp_path).check_as_worker()
    mine.release()
    monkeypatch.setenv("SLURM_JOB_ID", "4243")
    other = RunLock(tmp_path).acquire()  # another job's training, alive on this host
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    with pytest.raises(AttnError, match="is being trained by pid .* wait for it, or train into another --run-dir"):
        RunLock(tmp_path).check_as_worker()
    other.release()
    (tmp_path / ".lock").write_text(json.dumps({"pid": 7, "host": "node-elsewhere", "slurm_job": "4243"}))
    with pytest.raises(AttnError, match="is locked by pid 7 on node-elsewhere"):
        RunLock(tmp_path).check_as_worker()
    (tmp_path / ".lock").write_text(json.dumps({"pid": 7, "host": "node-elsewhere", "slurm_job": "4242"}))
    RunLock(tmp_path).check_as_worker()  # this job's rank zero on another node
    (tmp_path / ".lock").write_text(json.dumps({"pid": 7, "host": platform.node()}))
    RunLock(tmp_path).check_as_worker()  # a dead process's lock on this host: rank zero takes it over


def test_the_lock_is_exclusive_within_a_host(tmp_path: Path) -> None:
    from attn_cli.errors import AttnError

    first = RunLock(tmp_path).acquire()
    with pytest.raises(AttnError, match="is being trained by pid"):
        RunLock(tmp_path).acquire()
    first.release()
    RunLock(tmp_path).acquire().release()
    assert not (tmp_path / ".lock").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.hidden=17"], "does not fit this recipe's model"),
        (["train.accelerator=gpu"], "a GPU was requested"),
        (["train.nope=1"], "nope"),
    ],
)
def test_a_failed_resume_leaves_the_run_as_it_was(
    overrides: list[str], message: str, killed: Path, generated_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = snapshot(killed)
    assert "logs/metrics.csv" in before and "run.json" in before
    sets = [a for o in overrides for a in ("--set", o)]
    code, _, err = _train(generated_data, "--resume", str(killed), *sets)
    one_line_error(code, err, message)
    assert snapshot(killed) == before


def test_a_resume_from_a_truncated_checkpoint_leaves_the_run_as_it_was(killed: Path, generated_data: Path) -> None:
    last = killed / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    before = snapshot(killed)
    code, _, err = _train(generated_data, "--resume", str(killed))
    one_line_error(code, err, "corrupt or truncated")
    assert snapshot(killed) == before


def test_a_resume_that_fails_inside_lightning_leaves_the_run_as_it_was(killed: Path, generated_data: Path) -> None:
    """A checkpoint whose weights fit but whose optimizer state does not fails in Lightning's restore, after
    the trainer moved the curve aside and the loggers opened their files: all of that is put back."""
    import torch

    last = killed / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    ckpt["optimizer_states"][0]["param_groups"] = []
    torch.save(ckpt, last)
    before = snapshot(killed)
    code, _, err = _train(generated_data, "--resume", str(killed))
    one_line_error(code, err, "cannot resume from")
    assert "the run is left as it was" in err and snapshot(killed) == before


def test_a_resumed_run_gains_one_segment(killed: Path, generated_data: Path) -> None:
    """The counterpart: a resume that trains adds its segment and keeps the earlier curve."""
    segments = len(json.loads((killed / "run.json").read_text())["segments"])
    code, _, err = _train(generated_data, "--resume", str(killed))
    assert code == 0, err
    assert len(json.loads((killed / "run.json").read_text())["segments"]) == segments + 1
    assert (killed / "logs" / "metrics.segment-1.csv").is_file() and (killed / "train_done.json").is_file()
