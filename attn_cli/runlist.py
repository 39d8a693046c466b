"""``attn runs`` and ``attn show``: what is under ``runs/``, read from the files alone (no torch).

A run's status comes from its files: *running* while a training holds its lock
(:class:`attn_cli.runs.RunLock`, an ``flock`` the kernel drops when the trainer dies, however
it dies), *finished* once ``train_done.json`` is written, *killed* when neither (a training that
stopped without finishing; ``attn train TASK --resume RUN`` continues it).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import yaml

from attn_cli.errors import AttnError


def lock_held(run_dir: Path) -> bool:
    """Whether a live process holds the run's training lock. Probed with a shared, non-blocking ``flock``
    on the existing file only (never created), released at once."""
    try:
        fd = os.open(run_dir / ".lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        return err.errno in (errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)  # closing drops a lock we took
    return False


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def status(run_dir: Path) -> str:
    if lock_held(run_dir):
        return "running"
    return "finished" if (run_dir / "train_done.json").is_file() else "killed"


def age(seconds: float) -> str:
    """A duration in its largest whole unit: 45s, 12m, 5h, 3d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(0, int(seconds))}s"


def started(run_dir: Path) -> dt.datetime:
    """When the run's training first started (run.json), else when its recipe was written."""
    first = (_json(run_dir / "run.json").get("first") or {}).get("started")
    if first:
        try:
            return dt.datetime.fromisoformat(first)
        except ValueError:
            pass
    return dt.datetime.fromtimestamp((run_dir / "recipe.yaml").stat().st_mtime)


def describe(run_dir: Path, now: dt.datetime | None = None) -> dict[str, Any]:
    """One run's row: task, recipe, status, best validation score, age."""
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
    done = _json(run_dir / "train_done.json")
    best = ""
    if done.get("best_score") is not None:
        best = f"{done.get('monitor', 'best')} {done['best_score']:.4g}"
    now = now or dt.datetime.now()
    return {
        "run": run_dir,
        "task": str(recipe.get("task", "?")),
        "recipe": str(recipe.get("name", run_dir.parent.name)),
        "status": status(run_dir),
        "best": best,
        "age": age((now - started(run_dir)).total_seconds()),
        "evaluated": sorted(p.parent.name for p in run_dir.glob("eval/*/metrics.json")),
    }


def list_runs(runs_dir: Path, task: str | None = None) -> list[dict[str, Any]]:
    """Every run under ``runs_dir`` (``runs/<task>/<recipe>/<id>/recipe.yaml``), newest first."""
    root = Path(runs_dir) / task if task else Path(runs_dir)
    if not root.is_dir():
        return []
    now = dt.datetime.now()
    # a record (results/.../result.json, e.g. under runs/demo/results) keeps a copy of its recipe: not a run
    rows = [describe(p.parent, now) for p in root.rglob("recipe.yaml") if not (p.parent / "result.json").is_file()]
    return sorted(rows, key=lambda r: started(r["run"]), reverse=True)


def show_run(run: Path) -> dict[str, Any]:
    """Everything ``attn show`` prints: the row of :func:`describe`, the training summary, each evaluation's
    metrics, the paths, and the resolved recipe as saved."""
    run_dir = Path(run)
    if not (run_dir / "recipe.yaml").is_file():
        raise AttnError(f"run {run_dir} does not exist (no recipe.yaml there); list the runs with `attn runs`")
    info = describe(run_dir)
    info["train"] = _json(run_dir / "train_done.json")
    info["evals"] = {p.parent.name: _json(p).get("metrics", {}) for p in sorted(run_dir.glob("eval/*/metrics.json"))}
    paths: dict[str, Path] = {"recipe": run_dir / "recipe.yaml"}
    paths.update({f"checkpoint {p.stem}": p for p in sorted(run_dir.glob("checkpoints/*.ckpt"))})
    paths.update({f"eval {p.name}": p for p in sorted(run_dir.glob("eval/*")) if p.is_dir()})
    for name, folder in (("logs", "logs"), ("pictures", "viz")):
        if (run_dir / folder).is_dir():
            paths[name] = run_dir / folder
    info["paths"] = paths
    info["recipe_text"] = (run_dir / "recipe.yaml").read_text(encoding="utf-8")
    return info
