"""Shared fixtures: an isolated data/runs/results tree per test, and the shared datasets when present."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
# The console script installed beside the interpreter running the tests (CI runs `.venv/bin/python -m pytest`
# without the venv on PATH, so `shutil.which("attn")` would miss it or find another install).
ATTN_EXE = str(Path(sys.executable).parent / "attn")
SHARED_DATA = Path(os.environ.get("ATTN_SHARED_DATA", REPO.parent / "shared" / "data"))


def recorded_rows(path: Path, rec: dict) -> list[dict]:
    """A record's saved predictions (``path`` its result.json, ``rec`` its content) for the recompute tests; a skip,
    saying so, where they were left out (a record no table reads, results/ under its 30 MB:
    scripts/shrink_results.py --leave-out refuses a table's record)."""
    from attn_cli.tables.base import record_predictions

    if not rec["predictions"] and rec.get("predictions_left_out"):
        pytest.skip(f"predictions left out of the record: {rec['predictions_left_out'][0]}")
    return record_predictions(path)


torch.set_num_threads(1)
# and so does every trainer the tests build (attn_cli.threads reads it before the CPUs it is given)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def committed_sha() -> Iterator[None]:
    """Runs trained by the tests name a fixed clean sha: `attn record` refuses runs of uncommitted code, and
    whether the checkout running the tests has uncommitted changes must not decide whether a test passes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTN_GIT_SHA", "0123abcd")
        yield


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Fresh data/runs/results directories, also exported as ATTN_DATA/ATTN_RUNS/ATTN_RESULTS."""
    out = {name: tmp_path / name for name in ("data", "runs", "results")}
    for name, path in out.items():
        path.mkdir()
        monkeypatch.setenv(f"ATTN_{name.upper()}", str(path))
    monkeypatch.delenv("ATTN_RUN_DIR", raising=False)
    return out


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; tests using it are marked ``data`` and skip cleanly without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process (as `attn ...`), returning (exit code, stdout, stderr)."""
    import contextlib
    import io

    from attn_cli.cli import entrypoint

    out, err = io.StringIO(), io.StringIO()
    code = 0
    import sys

    argv = sys.argv
    sys.argv = ["attn", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                entrypoint()
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def generated_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with every generated (no-source) dataset that a tiny recipe uses, prepared once."""
    from attn_cli import run
    from attn_cli.config import available_recipes, load_recipe
    from attn_cli.registry import TASKS
    from data_prep.base import DATASETS

    root = tmp_path_factory.mktemp("generated-data")
    wanted = set()
    for task in TASKS.names():
        for name in available_recipes(task):
            if name.startswith("tiny/"):
                wanted.add(str(getattr(load_recipe(task, name).data, "dataset", "")))
    for name in sorted(wanted):
        if name in DATASETS and not DATASETS.get(name).needs_source:
            run.prepare(name, data_dir=root)
    return root


@pytest.fixture
def worker_pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The worker count of every :class:`attn_cli.tasks.base.PredictWorkers` pool started while the test runs."""
    from attn_cli.tasks.base import PredictWorkers

    pools: list[int] = []
    real_init = PredictWorkers.__init__

    def counted(self: PredictWorkers, workers: int, threads_each: int) -> None:
        pools.append(workers)
        real_init(self, workers, threads_each)

    monkeypatch.setattr(PredictWorkers, "__init__", counted)
    return pools
