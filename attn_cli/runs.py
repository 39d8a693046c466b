"""Run directories and the facts recorded with every run (DESIGN §6).

``runs/<task>/<recipe>/<run-id>/`` holds ``recipe.yaml`` (resolved), ``run.json``
(command, git sha, hardware, versions), ``checkpoints/{best,last}.ckpt``, ``logs/``
(CSV), ``tb/`` (TensorBoard), ``train_done.json`` once training finished, and
``eval/<split>/`` with ``metrics.json`` and predictions. While a training writes into a run
directory it holds ``.lock`` there (:class:`RunLock`).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import platform
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from attn_cli import __version__
from attn_cli.config import REPO_ROOT
from attn_cli.errors import AttnError
from attn_cli.io import read_json


def default_runs_dir() -> Path:
    return Path(os.environ.get("ATTN_RUNS", "runs"))


def default_data_dir() -> Path:
    return Path(os.environ.get("ATTN_DATA", "data"))


def new_run_dir(runs_dir: Path, task: str, recipe: str) -> Path:
    """A fresh ``runs/<task>/<recipe>/<stamp>-<rand>`` path; created by the caller once the data has loaded."""
    while True:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = runs_dir / task / recipe / f"{stamp}-{secrets.token_hex(2)}"
        if not path.exists():
            return path


def git_sha() -> str:
    """HEAD's sha (+ "-dirty" when a tracked file outside ``results/`` has uncommitted changes: what is recorded
    there is output, not the code that ran, and benchmarks rewrite their own files there while they run);
    ATTN_GIT_SHA overrides it where the code runs from a copy without .git (a cluster node's or GPU machine's
    exported tree: the launcher knows the sha it copied)."""
    if os.environ.get("ATTN_GIT_SHA"):
        return os.environ["ATTN_GIT_SHA"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_runtime() -> dict[str, str]:
    """The process settings that change CPU speed: the OpenMP wait policy and spin count, and what
    :func:`attn_cli.heap.keep_freed_memory` did to malloc (unset where the run did not start from ``attn``)."""
    from attn_cli import heap

    names = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    out = {k: os.environ[k] for k in names if k in os.environ}
    out["malloc"] = heap.applied or "not set by the attn entry point (glibc defaults unless MALLOC_* say otherwise)"
    return out


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_runtime": cpu_runtime(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def versions() -> dict[str, str]:
    import lightning
    import sacrebleu

    return {
        "attn": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "sacrebleu": sacrebleu.__version__,
    }


def command_line() -> str:
    argv = list(sys.argv)
    argv[0] = Path(argv[0]).name
    if argv[0] == "__main__.py":  # python -m attn_cli
        argv[0] = "attn"
    return shlex.join(argv)


def run_info(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "command": command_line(),
        "git_sha": git_sha(),
        "hardware": hardware(),
        "versions": versions(),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        **(extra or {}),
    }


def check_run_dir(run_dir: Path) -> Path:
    if not run_dir.is_dir() or not (run_dir / "recipe.yaml").is_file():
        raise AttnError(f"run {run_dir} does not exist (no recipe.yaml there); list runs under runs/<task>/")
    return run_dir


def find_checkpoint(run_dir: Path, which: str = "best") -> Path:
    ckpt = run_dir / "checkpoints" / f"{which}.ckpt"
    if not ckpt.is_file():
        alt = run_dir / "checkpoints" / "last.ckpt"
        if which == "best" and alt.is_file():
            return alt
        raise AttnError(f"run {run_dir} has no {which}.ckpt; train it first or pass --checkpoint")
    return ckpt


def train_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "train_done.json"
    return read_json(path) if path.is_file() else {}


class RunLock:
    """An advisory lock on a run directory, held by the one process that trains into it.

    ``fcntl.flock`` on ``RUN/.lock``: the kernel drops it when the holder exits, however it
    dies, so a second ``attn train`` into the same directory is refused for exactly as long
    as the first one lives. The file names the holder (pid, host) for the refusal message.
    One left behind by a killed process on this host is taken over with a note, and so is
    one left by an earlier run of the same SLURM job (a requeued job restarts, maybe on
    another node, only after its previous run ended); one naming another host is refused,
    since its pid cannot be checked from here (and flock may be local to each host on a
    network file system). Only the launching process (rank zero)
    takes it: Lightning's DDP workers run inside its lifetime; the other ranks an ``srun`` starts check it
    (:meth:`check_as_worker`). ``attn eval`` takes no lock:
    reading a run being trained is allowed.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self.fd: int | None = None
        self.note = ""  # what was taken over, for the command to print

    def acquire(self) -> RunLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = _read_holder(fd)
                os.close(fd)
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    raise self._busy(holder) from None
                raise AttnError(f"cannot lock {self.path} ({err.strerror}); train into a local --run-dir") from err
            # the holder before us may have removed the file between our open and flock: keep the lock
            # only on the file that is there now, or two processes could each lock a different inode
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        holder = _read_holder(fd)
        job = os.environ.get("SLURM_JOB_ID")
        if holder:
            requeued = job is not None and holder.get("slurm_job") == job
            if holder.get("host") != platform.node() and not requeued:
                os.close(fd)
                raise self._busy(holder, other_host=True)
            self.note = f"took over the stale lock of {_describe(holder)} on {self.path.parent} " + (
                f"(an earlier run of SLURM job {job})" if requeued else "(that process is gone)"
            )
        me = {"pid": os.getpid(), "host": platform.node(), **({"slurm_job": job} if job else {})}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode() + b"\n", 0)
        self.fd = fd
        return self

    def check_as_worker(self) -> None:
        """Refuse in a rank above zero that SLURM started itself (``srun``), when another job holds the lock.

        Lightning's own DDP workers live inside rank zero's lifetime and need no check; ``srun`` starts every
        rank at once, so rank zero's refusal alone would leave the others waiting for it in the collective
        set-up (until ``--kill-on-bad-exit`` or the NCCL timeout). Held by this job's rank zero (or not yet
        taken): go on; rank zero takes or refuses it. A lock no one holds, left by a dead process, is not
        ours to judge: rank zero takes it over."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            holder = _read_holder(fd)
            for _ in range(50):  # rank zero may be between locking the file and writing its name in it
                if holder:
                    break
                time.sleep(0.1)
                holder = _read_holder(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            else:  # no one holds it now
                if holder.get("host") == platform.node():
                    return
            job = os.environ.get("SLURM_JOB_ID")
            if job is not None and holder.get("slurm_job") == job:
                return
            raise self._busy(holder, other_host=holder.get("host") != platform.node())
        finally:
            os.close(fd)

    def _busy(self, holder: dict[str, Any], other_host: bool = False) -> AttnError:
        who = _describe(holder) if holder else "another process"
        if other_host:
            return AttnError(
                f"run {self.path.parent} is locked by {who}; if that process is gone, delete {self.path}, "
                "else train into another --run-dir"
            )
        return AttnError(
            f"run {self.path.parent} is being trained by {who}; wait for it, or train into another --run-dir"
        )

    def release(self) -> None:
        if self.fd is None:
            return
        os.unlink(self.path)  # while still holding it: whoever comes next locks a fresh file
        os.close(self.fd)
        self.fd = None


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(fd, 1000, 0) or b"{}")
    except ValueError:
        return {"pid": "?", "host": "?"}
    return holder if isinstance(holder, dict) else {"pid": "?", "host": "?"}


def _describe(holder: dict[str, Any]) -> str:
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
