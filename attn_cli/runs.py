"""Run directories and the facts recorded with every run (DESIGN §6).

``runs/<task>/<recipe>/<run-id>/`` holds ``recipe.yaml`` (resolved), ``run.json``
(command, git sha, hardware, versions), ``checkpoints/{best,last}.ckpt``, ``logs/``
(CSV), ``tb/`` (TensorBoard), ``train_done.json`` once training finished, and
``eval/<split>/`` with ``metrics.json`` and predictions.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import secrets
import shlex
import subprocess
import sys
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
    """HEAD's sha (+ "-dirty"); ATTN_GIT_SHA overrides it where the code runs from a copy without .git
    (a cluster node's or GPU machine's exported tree: the launcher knows the sha it copied)."""
    if os.environ.get("ATTN_GIT_SHA"):
        return os.environ["ATTN_GIT_SHA"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
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
