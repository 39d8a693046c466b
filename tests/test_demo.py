"""`attn demo`: its --out never deletes what the demo did not write; unknown tasks are one-line errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from attn_cli import run
from attn_cli.config import available_recipes, load_recipe
from tests.conftest import ATTN_EXE, run_cli
from tests.test_cli import one_line_error


def test_out_with_the_users_files_is_refused_and_kept(dirs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mine"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "thesis.tex").write_text("months of work")
    code, _, err = run_cli("demo", "--out", str(out))
    one_line_error(code, err, "not empty and was not written by `attn demo`")
    assert (out / "notes" / "thesis.tex").read_text() == "months of work"
    assert sorted(p.name for p in out.iterdir()) == ["notes"]  # no marker, nothing added


def test_out_that_is_a_file_is_refused(dirs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "a-file"
    out.write_text("keep me")
    code, _, err = run_cli("demo", "--out", str(out))
    one_line_error(code, err, "is a file")
    assert out.read_text() == "keep me"


def test_an_earlier_demo_output_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    run._fresh_demo_dir(out)
    assert (out / run.DEMO_MARKER).is_file()
    (out / "nmt" / "demo-reorder").mkdir(parents=True)
    (out / "nmt" / "demo-reorder" / "old.ckpt").write_text("stale")
    run._fresh_demo_dir(out)
    assert sorted(p.name for p in out.iterdir()) == [run.DEMO_MARKER]
    empty = tmp_path / "empty"
    empty.mkdir()
    run._fresh_demo_dir(empty)
    assert (empty / run.DEMO_MARKER).is_file()


@pytest.mark.parametrize(
    ("task", "message"), [("nosuch", "unknown task 'nosuch'"), ("nmtt", "did you mean 'nmt'"), ("reader", "no demo")]
)
def test_a_task_without_a_demo_is_an_error(dirs: dict[str, Path], tmp_path: Path, task: str, message: str) -> None:
    out = tmp_path / "demo"
    code, out_text, err = run_cli("demo", "--out", str(out), "--task", task)
    one_line_error(code, err, message)
    assert not out.exists(), "nothing is written before the tasks are checked"
    assert "attn demo" not in out_text  # no (empty) table


def test_every_family_has_a_demo_that_stops_at_its_target() -> None:
    """The demo shows each family the suite is known for; the trained ones stop once solved."""
    demos = {t: [n for n in available_recipes(t) if n.startswith("demo-")] for t in ("nmt", "caption", "vision")}
    assert all(demos.values()), demos
    assert load_recipe("nmt", "demo-reorder").train.stop_at == 100.0
    vision = load_recipe("vision", "demo-glimpses")
    assert vision.model_name == "ram" and vision.data.dataset == "glyphs" and vision.train.stop_at == 0.0
    for task, names in demos.items():
        for name in names:
            assert load_recipe(task, name).train.threads == 0, f"{task}/{name}: threads come from the CPUs given"


@pytest.mark.slow
def test_vision_demo_end_to_end_piped(tmp_path: Path) -> None:
    """`attn demo --task vision` into a pipe: a header per recipe, plain progress lines, the table, then a rerun
    into the same --out replaces it."""
    env = {**os.environ, "ATTN_DATA": str(tmp_path / "data")}
    out = tmp_path / "demo"
    for _ in range(2):
        proc = subprocess.run(
            [ATTN_EXE, "demo", "--out", str(out), "--task", "vision"],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert "vision/demo-glimpses: Embedded demo" in proc.stdout
    assert any(line.startswith("epoch ") and " val/error " in line for line in proc.stdout.splitlines())
    assert "glimpses-0.png" in proc.stdout and "s CPU" in proc.stdout
    assert (out / run.DEMO_MARKER).is_file()


def test_the_demo_runs_on_uncommitted_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo records into its own folder, so edited code (a `-dirty` sha) must not stop it, as
    `attn record` into results/ is stopped; its rows carry the dagger."""
    monkeypatch.setenv("ATTN_GIT_SHA", "0123abcd-dirty")
    out = tmp_path / "demo"
    run.demo(out, data_dir=tmp_path / "data", tasks=["memory"], progress=False)
    records = list((out / "results").rglob("result.json"))
    assert records and all('"git_sha": "0123abcd-dirty"' in p.read_text() for p in records)
