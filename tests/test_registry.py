"""Everything registered is tested the same way (DESIGN §3.9): every tiny recipe trains and evaluates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attn_cli import run
from attn_cli.config import available_recipes, load_recipe
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS, TABLES, TASKS, Registry
from data_prep.base import DATASETS

TINY = [(task, name) for task in TASKS.names() for name in available_recipes(task) if name.startswith("tiny/")]
ALL = [(task, name) for task in TASKS.names() for name in available_recipes(task)]


def test_every_task_has_tiny_recipes() -> None:
    for task in TASKS.names():
        assert any(name.startswith("tiny/") for name in available_recipes(task)), task


def test_every_model_is_used_by_a_tiny_recipe() -> None:
    used = {load_recipe(t, n).model_name for t, n in TINY}
    for task in TASKS.names():
        for model in TASKS.get(task).model_names():
            assert model in MODELS
            assert model in used, f"model {model!r} of task {task!r} has no tiny recipe"


@pytest.mark.parametrize(("task", "name"), ALL, ids=[f"{t}:{n}" for t, n in ALL])
def test_every_recipe_loads_and_round_trips(task: str, name: str, tmp_path: Path) -> None:
    from attn_cli.config import dump_recipe

    recipe = load_recipe(task, name)
    path = tmp_path / "r.yaml"
    path.write_text(dump_recipe(recipe), encoding="utf-8")
    again = load_recipe(task, str(path))
    assert again.model == recipe.model and again.train == recipe.train and again.data == recipe.data
    assert recipe.description, f"{task}/{name} needs a description"


@pytest.mark.parametrize(("task", "name"), TINY, ids=[f"{t}:{n}" for t, n in TINY])
def test_tiny_recipe_trains_and_evaluates(task: str, name: str, generated_data: Path, tmp_path: Path) -> None:
    recipe = load_recipe(task, name)
    summary = run.train(
        task, name, runs_dir=tmp_path / "runs", data_dir=generated_data, progress=False, overrides=["train.threads=1"]
    )
    run_dir = Path(summary["run_dir"])
    assert summary["steps"] > 0
    assert (run_dir / "recipe.yaml").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert load_recipe(task, str(run_dir / "recipe.yaml")).model == recipe.model
    result = run.evaluate(task, run_dir, split="test", data_dir=generated_data, progress=False)
    metrics = json.loads((run_dir / "eval" / "test" / "metrics.json").read_text())
    assert metrics["metrics"] == result["metrics"] and result["metrics"]
    assert any((run_dir / "eval" / "test").glob("predictions*"))


def test_generated_datasets_need_no_source() -> None:
    generated = [n for n, spec in DATASETS.items() if not spec.needs_source]
    assert "toy-reorder" in generated


def test_tables_reference_known_tasks() -> None:
    for name, table in TABLES.items():
        for row in table.rows:
            task = row.ref.task or table.ref.task
            assert task is None or task in TASKS, f"table {name} row {row.label}"


def test_a_task_asks_the_registry_for_its_models() -> None:
    """The facts a name registers with are what the registry answers by: a model's ``task`` is its family."""
    reg: Registry[object] = Registry("widget", plugins=())
    reg.register("a", task="nmt")(object())
    reg.register("b", task="vision")(object())
    reg.add("c", object(), task="nmt")
    reg.add("d", object())
    assert reg.names_where("task", "nmt") == ["a", "c"]
    assert reg.names_where("task", "caption") == []
    assert reg.tag("b", "task") == "vision" and reg.tag("d", "task") is None
    with pytest.raises(AttnError, match="unknown widget 'e'"):
        reg.tag("e", "task")
    assert TASKS.get("nmt").model_names() == ["bahdanau", "luong", "seq2seq"]
    assert MODELS.tag("ram", "task") == "vision"
