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
import shutil
import signal
import subprocess
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from attn_cli import run
from attn_cli.trainer import auto_precision, hpc_checkpoints, periodic_checkpoint
from tests.conftest import ATTN_EXE

REPO = Path(__file__).resolve().parent.parent
SBATCH_SCRIPT = REPO / "scripts" / "slurm" / "train.sbatch"
RECIPE = "tiny/luong-local-p"
STEPS = 80  # long enough that a signal sent after the first step checkpoint lands mid-run
TRAIN = (f"max_steps={STEPS}", "max_epochs=100", "checkpoint_every_steps=2", "val_every_steps=40", "batch_size=7")
TRAIN += ("limit_val_batches=1", "threads=1")

FAKE_SBATCH = r"""#!/usr/bin/env bash
# stand-in sbatch: job $FAKE_JOB_ID, run in the foreground; rerun while `scontrol requeue` asked for it
set -u
trap 'true' TERM # SIGTERM goes to every process of a job, but sbatch is not one of them: outlive it
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
# stand-in srun: notes its options, its command and the pid of task 0; one task becomes the command,
# several (SLURM_NTASKS on one node) run side by side with their ranks
opts=()
while [ $# -gt 0 ] && [[ $1 == -* ]]; do opts+=("$1"); shift; done
echo "${opts[*]} :: $*" >>"$FAKE_STATE/srun"
if [ -n "${FAKE_SRUN_ECHO:-}" ]; then exit 0; fi
export SLURM_NODEID=0
if [ "${SLURM_NTASKS:-1}" -eq 1 ]; then
  echo $$ >"$FAKE_STATE/srun.pid"
  export SLURM_PROCID=0 SLURM_LOCALID=0
  exec "$@"
fi
pids=()
for ((rank = 0; rank < SLURM_NTASKS; rank++)); do
  SLURM_PROCID=$rank SLURM_LOCALID=$rank "$@" &
  pids+=($!)
done
echo "${pids[0]}" >"$FAKE_STATE/srun.pid"
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
exit $rc
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "ATTN_")) or k == "ATTN_GIT_SHA"}
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
    """Submit, wait for the first step checkpoint, then signal the job as SLURM does: SIGUSR1 (``--signal``
    without ``B:``) to the job step's process, the training; SIGTERM to every process, the batch shell too."""
    proc = sbatch(env)
    pid_file = Path(env["FAKE_STATE"]) / "srun.pid"
    while not (rd / "checkpoints" / "last.ckpt").is_file() or not pid_file.is_file():
        assert proc.poll() is None, state(env, "job.log")[-3000:]
        time.sleep(0.02)
    if sig == signal.SIGTERM:
        os.killpg(proc.pid, sig)
    else:
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
    assert "attn: SIGTERM; waiting for the job step to checkpoint" in state(env, "job.log")  # the shell waited
    assert state(env, "scontrol") == "requeue 102\n"
    (hpc,) = hpc_checkpoints(rd / "checkpoints")
    assert 2 <= torch.load(hpc, weights_only=False, map_location="cpu")["global_step"] < STEPS
    assert not (rd / "train_done.json").exists()
    info = json.loads((rd / "run.json").read_text())  # the stopped segment's time counts in the run's totals
    assert info["train_wall_s"] > 0 and info["train_cpu_s"] > 0


@pytest.mark.slow
def test_sigterm_then_requeue_reaches_the_plain_runs_weights(slurm: dict[str, Path], plain: int) -> None:
    env = job_env(slurm, 103)
    rd = run_dir(slurm, 103)
    assert signal_mid_run(env, rd, signal.SIGTERM).wait(timeout=600) == 0, state(env, "job.log")[-3000:]
    assert state(env, "runs") == f"0 {128 + signal.SIGTERM}\n1 0\n"
    assert_same_weights(run_dir(slurm, plain), rd)


@pytest.mark.slow
@pytest.mark.ddp
def test_two_tasks_stop_together_when_only_rank_0_gets_the_signal(slurm: dict[str, Path]) -> None:
    """Two DDP processes (gloo, one node): SIGUSR1 to rank 0 alone; the all-reduced signal stops both at the same
    step with the same status, both resume, and the job records what an unsignalled two-process job records.
    Without dropout: a checkpoint holds rank 0's random-number state only, so a resumed rank 1 would draw rank 0's
    dropout masks (attn_cli.tasks.base; a follow-up)."""
    two = {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "ATTN_EVAL_ARGS": "--beam 2"}
    two["ATTN_TRAIN_ARGS"] = " ".join(f"--set train.{kv}" for kv in TRAIN) + " --set model.dropout=0"
    plain_env = job_env(slurm, 200, **two)
    assert sbatch(plain_env).wait(timeout=600) == 0, state(plain_env, "job.log")[-3000:]
    env = job_env(slurm, 201, **two)
    rd = run_dir(slurm, 201)
    assert signal_mid_run(env, rd, signal.SIGUSR1).wait(timeout=600) == 0, state(env, "job.log")[-3000:]
    assert state(env, "runs") == "0 138\n1 0\n" and state(env, "scontrol") == "requeue 201\n"
    assert "--devices 2 --accelerator cpu" in state(env, "srun")
    assert_same_weights(run_dir(slurm, 200), rd)
    assert recorded(slurm, 201)["metrics"] == recorded(slurm, 200)["metrics"]


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


# ---------------------------------------------------------------------------------------------
# a signal at a step that still has work after its batch


class SignalAt(L.Callback):
    """Sends this process ``sig`` (a real signal, through the real handlers) as global step ``step`` begins."""

    def __init__(self, step: int, sig: signal.Signals) -> None:
        self.step, self.sig = step, sig

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step - 1:
            os.kill(os.getpid(), self.sig)


CASES = {
    # step 15 validates (val_every_steps=15) and a plateau schedule acts on that validation
    "validation-step": (15, ["train.max_steps=45", "train.val_every_steps=15", "train.batch_size=7"]),
    # step 24 ends the first epoch (24 batches of 250); halve_after steps the rate at each epoch's end
    "epoch-end": (24, ["train.max_epochs=3", "train.batch_size=250", "train.lr_schedule=halve_after"]),
}


@pytest.mark.parametrize("case", [pytest.param("validation-step"), pytest.param("epoch-end", marks=pytest.mark.slow)])
def test_a_signal_where_the_step_has_more_work_resumes_to_the_same_weights(
    case: str, slurm: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint waits for the step's validation (and the epoch's end): taken before them, the resumed run
    skips them and its learning rate, hence its weights, drift from the uninterrupted run's."""
    for var in [v for v in os.environ if v.startswith("SLURM_")]:
        monkeypatch.delenv(var)  # not a SLURM job here: nothing to requeue
    monkeypatch.delenv("ATTN_RUN_DIR", raising=False)
    step, extra = CASES[case]
    common = ["train.max_epochs=100", "train.max_steps=-1", "train.limit_val_batches=1", "train.threads=1"]
    common += ["train.lr_schedule=plateau", "train.lr_patience=0", "train.monitor=val/ppl", "train.monitor_mode=min"]
    overrides = [*common, *extra]

    def train(rd: str, **kw: object) -> dict:
        return run.train(
            "nmt",
            RECIPE,
            runs_dir=tmp_path,
            data_dir=slurm["data"],
            progress=False,
            overrides=overrides,
            run_dir=tmp_path / rd,
            **kw,
        )

    train("plain")
    with pytest.raises(SystemExit) as stopped:
        train("signalled", extra_callbacks=[SignalAt(step, signal.SIGUSR1)])
    assert stopped.value.code == 128 + signal.SIGUSR1
    (hpc,) = hpc_checkpoints(tmp_path / "signalled" / "checkpoints")
    assert torch.load(hpc, weights_only=False, map_location="cpu")["global_step"] == step + 1
    run.train("nmt", None, runs_dir=tmp_path, data_dir=slurm["data"], progress=False, resume=tmp_path / "signalled")
    assert_same_weights(tmp_path / "plain", tmp_path / "signalled")


# ---------------------------------------------------------------------------------------------
# hardware: the GPU count, the tasks, the attn command, the precision


def dry_job(slurm: dict[str, Path], job: int, **extra: str) -> tuple[int, str, str]:
    """Run the batch script with an ``srun`` that only notes its command: (exit code, srun lines, job log)."""
    env = job_env(slurm, job, FAKE_SRUN_ECHO="1", ATTN_ACCELERATOR="gpu")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.update(extra)
    proc = subprocess.run(["sbatch", str(SBATCH_SCRIPT)], env=env, cwd=env["FAKE_STATE"], timeout=60)
    return proc.returncode, state(env, "srun"), state(env, "job.log")


@pytest.mark.parametrize(
    ("job", "given", "per_node"),
    [
        (301, {"SLURM_GPUS_ON_NODE": "4"}, 4),
        (302, {"SLURM_GPUS_PER_NODE": "a100:2"}, 2),  # --gpus-per-node=a100:2
        (303, {"SLURM_JOB_GPUS": "0,1,2"}, 3),  # --gres=gpu:3 on a Slurm that sets no SLURM_GPUS_ON_NODE
        (304, {"SLURM_GPUS": "8", "SLURM_NNODES": "2"}, 4),  # --gpus=8 over two nodes
        (305, {"CUDA_VISIBLE_DEVICES": "0,1"}, 2),
    ],
)
def test_the_gpu_count_comes_from_whichever_option_the_job_used(
    job: int, given: dict[str, str], per_node: int, slurm: dict[str, Path]
) -> None:
    nodes = given.get("SLURM_NNODES", "1")
    tasks = {"SLURM_NTASKS_PER_NODE": str(per_node), "SLURM_NTASKS": str(per_node * int(nodes))}
    code, srun, log = dry_job(slurm, job, SLURM_CPUS_PER_TASK="6", **given, **tasks)
    assert code == 0, log
    (line,) = srun.splitlines()
    assert line.startswith("--kill-on-bad-exit=1 --cpus-per-task=6 :: ")
    assert f" train nmt --recipe {RECIPE} " in line
    assert f"--devices {per_node} --accelerator gpu --set train.num_nodes={nodes}" in line


def test_the_batch_script_refuses_a_job_it_cannot_run(slurm: dict[str, Path]) -> None:
    code, srun, log = dry_job(slurm, 401)
    assert code == 2 and not srun
    assert "error: no GPU in this job; submit with --gpus-per-node=N (or --gres=gpu:N, --gpus=N)" in log
    code, srun, log = dry_job(slurm, 402, SLURM_GPUS_ON_NODE="4")  # four GPUs, one task
    assert code == 2 and not srun
    assert "1 task(s) per node for 4 GPU(s) per node; Lightning runs one process per GPU" in log
    assert "--ntasks-per-node=4" in log
    code, srun, log = dry_job(slurm, 403, ATTN_ACCELERATOR="tpu")
    assert code == 2 and "ATTN_ACCELERATOR must be gpu or cpu, got 'tpu'" in log
    code, srun, log = dry_job(slurm, 404, SLURM_GPUS_ON_NODE="1", RECIPE="")
    assert code == 2 and "error: set RECIPE (see: attn recipes nmt) in the submitting shell" in log


def test_the_attn_command_defaults_to_the_one_on_path_else_the_module(slurm: dict[str, Path]) -> None:
    system = "/usr/bin:/bin"
    assert shutil.which("attn", path=system) is None  # so the second job finds no attn on its PATH
    for job, path, expect in (
        (501, f"{slurm['bin']}:{Path(ATTN_EXE).parent}:{system}", ":: attn train nmt "),
        (502, f"{slurm['bin']}:{system}", ":: python3 -m attn_cli train nmt "),
    ):
        code, srun, log = dry_job(slurm, job, SLURM_GPUS_ON_NODE="1", ATTN="", PATH=path)
        assert code == 0, log
        assert expect in srun, srun


def test_auto_precision_takes_bf16_only_where_the_gpu_has_it() -> None:
    assert auto_precision("gpu", True)[0] == "bf16-mixed"
    precision, why = auto_precision("gpu", False)
    assert precision == "16-mixed" and "loss scaling" in why
    assert auto_precision("cpu", False)[0] == "32-true"


def test_periodic_checkpoints_are_on_by_default_on_gpu_only() -> None:
    import datetime as dt

    assert periodic_checkpoint(None, "gpu") == {"train_time_interval": dt.timedelta(minutes=10)}
    assert periodic_checkpoint(None, "cpu") == {}
    assert periodic_checkpoint(0, "gpu") == {}
    assert periodic_checkpoint(5, "cpu") == {"every_n_train_steps": 5}


# ---------------------------------------------------------------------------------------------
# sweep.sh


def sweep(slurm: dict[str, Path], job: int, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    env = job_env(slurm, job, FAKE_SRUN_ECHO="1", SLURM_GPUS_ON_NODE="1")
    for var in ("TASK", "RECIPE", "ATTN_TRAIN_ARGS"):
        env.pop(var)
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "sweep.sh"), *args],
        env=env,
        cwd=env["FAKE_STATE"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc, state(env, "srun")


def test_sweep_passes_arguments_with_commas_to_the_job(slurm: dict[str, Path]) -> None:
    proc, srun = sweep(slurm, 601, "--train-args", "--set model.channels=[3,5] --set train.lr=0.5", "nmt", RECIPE)
    assert proc.returncode == 0, proc.stderr
    train, evaluate = srun.splitlines()
    assert train.endswith(" --set model.channels=[3,5] --set train.lr=0.5")
    assert " eval nmt " in evaluate and evaluate.endswith(" --beam 5 --record")


@pytest.mark.parametrize(("task", "beam"), [("nmt", True), ("caption", False), ("memory", False)])
def test_sweep_gives_a_beam_only_to_nmt(task: str, beam: bool, slurm: dict[str, Path]) -> None:
    """memory and reader evaluations take no options (eval.beam is an error there), vision's have no beam,
    caption recipes carry their own eval.beam."""
    proc, srun = sweep(slurm, 610 + len(task), task, "tiny/x")
    assert proc.returncode == 0, proc.stderr
    evaluate = srun.splitlines()[1]
    assert f" eval {task} " in evaluate and evaluate.endswith(" --record") and ("--beam 5" in evaluate) is beam


def test_an_eval_key_for_a_family_without_eval_options_says_so() -> None:
    from attn_cli.config import load_recipe
    from attn_cli.errors import AttnError

    with pytest.raises(AttnError, match=r"unknown recipe key 'eval.beam'; eval takes no keys for this task"):
        load_recipe("memory", "tiny/memn2n", ["eval.beam=5"])
    with pytest.raises(AttnError, match=r"unknown recipe key 'eval.beam'; valid keys here: samples, seed"):
        load_recipe("vision", "tiny/ram", ["eval.beam=5"])
