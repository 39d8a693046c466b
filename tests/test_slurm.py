"""The SLURM path under a stand-in SLURM: submit, signal, requeue, resume, evaluate, record (issue 23).

``sbatch``, ``srun`` and ``scontrol`` are small bash programs written into tmp_path and put first on PATH:
``sbatch`` runs the batch script in the foreground with the SLURM_* variables of a one-task job and runs it
again (SLURM_RESTART_COUNT + 1) while ``scontrol requeue`` asked for it; ``srun`` notes its options and pid,
then execs its command, so the signals the tests send reach the real training process. Everything runs on
CPU (``ATTN_ACCELERATOR=cpu``) on the generated toy-reorder data, in subprocesses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from attn_cli import run
from attn_cli.trainer import auto_precision, hpc_checkpoints, periodic_checkpoint
from tests.conftest import ATTN_EXE

REPO = Path(__file__).resolve().parent.parent
SBATCH_SCRIPT = REPO / "scripts" / "slurm" / "train.sbatch"
RECIPE = "tiny/luong-local-p"
STEPS = 240  # long enough that a signal sent after the first step checkpoint lands mid-run
TRAIN = (f"max_steps={STEPS}", "max_epochs=100", "checkpoint_every_steps=2", "val_every_steps=60", "batch_size=7")
TRAIN += ("limit_val_batches=1", "threads=1")

FAKE_SBATCH = r"""#!/usr/bin/env bash
# stand-in sbatch: job $FAKE_JOB_ID, run in the foreground; rerun while `scontrol requeue` asked for it
set -u
script=${@: -1}
export SLURM_JOB_ID=$FAKE_JOB_ID SLURM_JOB_NAME=attn SLURM_NODELIST=localhost SLURM_SUBMIT_DIR=$PWD
export SLURM_NNODES=${SLURM_NNODES:-1} SLURM_NTASKS=${SLURM_NTASKS:-1} SLURM_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-1}
export SLURM_NTASKS_PER_NODE=${SLURM_NTASKS_PER_NODE:-$SLURM_NTASKS}
restart=0
while :; do
  rm -f "$FAKE_STATE/requeue"
  if [ $restart -gt 0 ]; then export SLURM_RESTART_COUNT=$restart; fi
  bash "$script" >>"$FAKE_STATE/job.log" 2>&1
  rc=$?
  echo "$restart $rc" >>"$FAKE_STATE/runs"
  [ -f "$FAKE_STATE/requeue" ] || exit $rc
  restart=$((restart + 1))
done
"""

FAKE_SRUN = r"""#!/usr/bin/env bash
# stand-in srun: one task; notes its options, its command and its pid, then becomes the command
opts=()
while [ $# -gt 0 ] && [[ $1 == -* ]]; do opts+=("$1"); shift; done
echo "${opts[*]} :: $*" >>"$FAKE_STATE/srun"
echo $$ >"$FAKE_STATE/srun.pid"
if [ -n "${FAKE_SRUN_ECHO:-}" ]; then exit 0; fi
export SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0
exec "$@"
"""

FAKE_SCONTROL = r"""#!/usr/bin/env bash
# stand-in scontrol: `requeue JOBID` of this job marks it for sbatch to run again
echo "$*" >>"$FAKE_STATE/scontrol"
[ "$1" = requeue ] && [ "$2" = "$SLURM_JOB_ID" ] || exit 1
[ -n "${FAKE_HOLD:-}" ] || touch "$FAKE_STATE/requeue"
"""


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The stand-in SLURM programs and a data directory with the toy-reorder pairs."""
    root = tmp_path_factory.mktemp("slurm")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    data = root / "data"
    run.prepare("toy-reorder", data_dir=data)
    return {"root": root, "bin": bin_dir, "data": data}


def job_env(slurm: dict[str, Path], job: int, **extra: str) -> dict[str, str]:
    state = slurm["root"] / f"job-{job}"
    state.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "ATTN_"))}
    env.update(
        PATH=f"{slurm['bin']}:{env['PATH']}",
        FAKE_JOB_ID=str(job),
        FAKE_STATE=str(state),
        ATTN=ATTN_EXE,
        ATTN_ACCELERATOR="cpu",
        ATTN_DATA=str(slurm["data"]),
        ATTN_RUNS=str(slurm["root"] / "runs"),
        ATTN_RESULTS=str(slurm["root"] / f"results-{job}"),
        OMP_NUM_THREADS="1",
        TASK="nmt",
        RECIPE=RECIPE,
        ATTN_TRAIN_ARGS=" ".join(f"--set train.{kv}" for kv in TRAIN),
    )
    env.update(extra)
    return env


def sbatch(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        ["sbatch", "--export=ALL", str(SBATCH_SCRIPT)], env=env, cwd=env["FAKE_STATE"], start_new_session=True
    )


def state(env: dict[str, str], name: str) -> str:
    path = Path(env["FAKE_STATE"]) / name
    return path.read_text() if path.is_file() else ""


def run_dir(slurm: dict[str, Path], job: int) -> Path:
    return slurm["root"] / "runs" / "nmt" / RECIPE / f"slurm-{job}"


def signal_mid_run(env: dict[str, str], rd: Path, sig: signal.Signals) -> subprocess.Popen:
    """Submit, wait for the first step checkpoint, then send ``sig`` to the training process."""
    proc = sbatch(env)
    pid_file = Path(env["FAKE_STATE"]) / "srun.pid"
    while not (rd / "checkpoints" / "last.ckpt").is_file() or not pid_file.is_file():
        assert proc.poll() is None, state(env, "job.log")[-3000:]
        time.sleep(0.02)
    os.kill(int(pid_file.read_text()), sig)
    return proc


def final_weights(rd: Path) -> dict[str, torch.Tensor]:
    return torch.load(rd / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")["state_dict"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)


def recorded(slurm: dict[str, Path], job: int) -> dict:
    (path,) = (slurm["root"] / f"results-{job}" / "nmt").glob("*/*/result.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def plain(slurm: dict[str, Path]) -> int:
    """An unsignalled job: train, evaluate, record."""
    env = job_env(slurm, 100, ATTN_EVAL_ARGS="--beam 2")
    assert sbatch(env).wait(timeout=600) == 0, state(env, "job.log")[-3000:]
    assert state(env, "runs") == "0 0\n" and not state(env, "scontrol")
    return 100


def test_sigusr1_requeues_and_the_job_records_the_plain_runs_number(slurm: dict[str, Path], plain: int) -> None:
    """SIGUSR1 mid-run: hpc checkpoint, requeue, resume, evaluate, record: the same number and the same
    final weights as the unsignalled job."""
    env = job_env(slurm, 101, ATTN_EVAL_ARGS="--beam 2")
    rd = run_dir(slurm, 101)
    assert signal_mid_run(env, rd, signal.SIGUSR1).wait(timeout=600) == 0, state(env, "job.log")[-3000:]
    log = state(env, "job.log")
    assert state(env, "runs") == f"0 {128 + signal.SIGUSR1}\n1 0\n", log[-3000:]
    assert state(env, "scontrol") == "requeue 101\n"
    (hpc,) = hpc_checkpoints(rd / "checkpoints")
    step = torch.load(hpc, weights_only=False, map_location="cpu")["global_step"]
    assert 2 <= step < STEPS and f"SIGUSR1 at step {step}: saved {hpc}" in log
    assert "restart 1" in log and len(json.loads((rd / "run.json").read_text())["segments"]) == 2
    assert_same_weights(run_dir(slurm, plain), rd)
    a, b = recorded(slurm, plain), recorded(slurm, 101)
    assert b["metrics"] == a["metrics"] and b["steps"] == a["steps"] == STEPS and b["eval"]["beam"] == 2


def test_sigterm_mid_run_leaves_an_hpc_checkpoint_and_asks_for_a_requeue(slurm: dict[str, Path]) -> None:
    env = job_env(slurm, 102, FAKE_HOLD="1")  # scontrol accepts the requeue but the job is held: one run
    rd = run_dir(slurm, 102)
    code = signal_mid_run(env, rd, signal.SIGTERM).wait(timeout=600)
    assert code == 128 + signal.SIGTERM, state(env, "job.log")[-3000:]
    assert state(env, "scontrol") == "requeue 102\n"
    (hpc,) = hpc_checkpoints(rd / "checkpoints")
    assert 2 <= torch.load(hpc, weights_only=False, map_location="cpu")["global_step"] < STEPS
    assert not (rd / "train_done.json").exists()


@pytest.mark.slow
def test_sigterm_then_requeue_reaches_the_plain_runs_weights(slurm: dict[str, Path], plain: int) -> None:
    env = job_env(slurm, 103)
    rd = run_dir(slurm, 103)
    assert signal_mid_run(env, rd, signal.SIGTERM).wait(timeout=600) == 0, state(env, "job.log")[-3000:]
    assert state(env, "runs") == f"0 {128 + signal.SIGTERM}\n1 0\n"
    assert_same_weights(run_dir(slurm, plain), rd)


def test_a_job_requeued_after_training_goes_straight_to_evaluation(slurm: dict[str, Path], plain: int) -> None:
    """The plain job's run again (same job id, so same run directory): no training step, eval and record."""
    env = job_env(slurm, plain, ATTN_EVAL_ARGS="--beam 2", ATTN_RESULTS=str(slurm["root"] / "results-again"))
    Path(env["FAKE_STATE"], "srun").unlink()
    done = (run_dir(slurm, plain) / "train_done.json").read_text()
    assert sbatch(env).wait(timeout=600) == 0, state(env, "job.log")[-3000:]
    calls = state(env, "srun").splitlines()
    assert len(calls) == 1 and f" eval nmt --run {run_dir(slurm, plain)} " in calls[0]
    assert "training already finished" in state(env, "job.log")
    assert (run_dir(slurm, plain) / "train_done.json").read_text() == done
    (again,) = (slurm["root"] / "results-again" / "nmt").glob("*/*/result.json")
    assert json.loads(again.read_text())["metrics"] == recorded(slurm, plain)["metrics"]
