"""A light index of every name and recipe key the command line checks, readable without torch.

The registries (:mod:`attn_cli.registry`) fill up by importing every model, task and
dataset module, which imports torch and Lightning: seconds of start-up before a typo in
``attn train nmtt`` could be reported. So the names that arguments are checked against —
tasks, their models, datasets, and the keys and types of every config section a recipe
or ``--set`` may name — are written once into ``names.json`` beside this module
(``python -m attn_cli.names`` rewrites it; ``tests/test_cli_fast.py`` fails when it is
stale). The command line checks its arguments here first and imports the heavy stack
only for the work itself. The checks raise the same messages as the full loader
(:func:`attn_cli.config.recipe_from_dict`), which still checks everything again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from attn_cli.config import (
    Reference,
    TrainConfig,
    _load_raw,
    apply_overrides,
    available_recipes,
    build,
    coerce,
    parse_override,
    resolve_recipe_path,
)
from attn_cli.errors import AttnError, closest, unknown

INDEX_FILE = Path(__file__).with_name("names.json")
TOP_LEVEL = ("data", "eval", "train", "reference", "description")


# ---------------------------------------------------------------------------------------------
# types as JSON: "int", "float", "bool", "str", "None", "any", {"literal": [...]}, {"union": [...]},
# {"tuple": T}, {"list": T}; anything else is "any" (checked only by the full loader)


def encode_type(tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in (int, float, bool, str):
        return tp.__name__
    if tp is type(None):
        return "None"
    if origin is Literal:
        return {"literal": list(args)}
    if origin in (typing.Union, types.UnionType):
        return {"union": [encode_type(a) for a in args]}
    if origin in (tuple, list) and args:
        return {origin.__name__: encode_type(args[0])}
    return "any"


def decode_type(code: Any) -> Any:
    simple = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None), "any": Any}
    if isinstance(code, str):
        return simple[code]
    if "literal" in code:
        return Literal[tuple(code["literal"])]
    if "union" in code:
        return typing.Union[tuple(decode_type(c) for c in code["union"])]  # noqa: UP007 (built at run time)
    if "tuple" in code:
        return tuple[decode_type(code["tuple"]), ...]
    return list[decode_type(code["list"])]


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: encode_type(hints[f.name]) for f in dataclasses.fields(cls) if f.init}


def build_index() -> dict[str, Any]:
    """The index from the live registries (imports every plugin, hence torch)."""
    from attn_cli.preparation import preparation
    from attn_cli.registry import MODELS, TASKS

    datasets = preparation().DATASETS

    return {
        "tasks": {
            name: {"models": spec.model_names(), "data": _fields(spec.data_config), "eval": _fields(spec.eval_config)}
            for name, spec in TASKS.items()
        },
        "models": {name: _fields(cls.Config) for name, cls in MODELS.items()},
        "datasets": {
            name: {"task": spec.task, "options": _fields(spec.Config), "version": spec.version}
            for name, spec in datasets.items()
        },
    }


def index_text(index: dict[str, Any]) -> str:
    return json.dumps(index, indent=1, sort_keys=True) + "\n"


@functools.cache
def load_index() -> dict[str, Any]:
    return json.loads(INDEX_FILE.read_text(encoding="utf-8"))


def check_prepared_version(manifest: dict[str, Any], root: Path) -> None:
    """Refuse a dataset prepared under an older ``dataset_version`` of its preparer: a version is bumped when
    the prepared files change meaning (e.g. CIFAR-10 stored in class order before version 2, so a partial
    validation saw 4 classes of 10), and training on the old files would silently repeat that."""
    spec = load_index()["datasets"].get(manifest.get("dataset"))
    have, want = int(manifest.get("dataset_version", 1)), int(spec.get("version", 1)) if spec else 1
    if have < want:
        source = f" --source {manifest['source']}" if manifest.get("source") else ""
        name = f" --name {root.name}" if root.name != manifest["dataset"] else ""
        raise AttnError(
            f"{root} was prepared by an older attn (dataset version {have}; this one needs version {want}); "
            f"prepare it again: `attn prepare {manifest['dataset']}{source}{name} --force`"
        )


def tasks() -> list[str]:
    return sorted(load_index()["tasks"])


# ---------------------------------------------------------------------------------------------
# checks


def check_task(task: str) -> None:
    if task not in load_index()["tasks"]:
        raise unknown("task", task, tasks())


def check_prepare(target: str, dataset: str | None, overrides: list[str]) -> None:
    """``attn prepare TARGET [--dataset NAME] [--set key=value]``: a task or a dataset and its options,
    as :func:`attn_cli.run.prepare` checks them."""
    index = load_index()
    if target in index["tasks"]:
        if dataset is None:
            names = [n for n, d in index["datasets"].items() if d["task"] == target]
            raise AttnError(f"`attn prepare {target}` needs --dataset; one of: {', '.join(names)}")
        if dataset not in index["datasets"]:
            raise unknown("dataset", dataset, index["datasets"])
        name = dataset
    elif target not in index["datasets"]:
        raise unknown("task or dataset", target, [*index["tasks"], *index["datasets"]])
    else:
        name = target
    _check_section(index["datasets"][name]["options"], apply_overrides({}, overrides), "prepare")


def check_visualize_target(target: str) -> None:
    index = load_index()
    if target not in index["tasks"] and target not in index["models"]:
        raise unknown("task or model", target, [*index["tasks"], *index["models"]])


def check_overrides(overrides: list[str]) -> None:
    for text in overrides:
        parse_override(text)


def eval_sections(overrides: list[str]) -> dict[str, Any]:
    """``attn eval --set`` values as sections; evaluation takes only eval.*, data.* and train.* keys."""
    sections: dict[str, Any] = apply_overrides({}, overrides)
    unknown_sections = set(sections) - {"eval", "train", "data"}
    if unknown_sections:
        raise AttnError(f"attn eval only takes --set eval.*, data.* or train.* (got {sorted(unknown_sections)[0]!r})")
    return sections


def _check_section(fields: dict[str, Any], data: dict[str, Any], where: str) -> None:
    """Unknown keys and values of the wrong type, with :func:`attn_cli.config.build`'s messages."""
    for key, value in data.items():
        path = f"{where}.{key}"
        if key not in fields:
            hint = closest(str(key), fields)
            msg = f"unknown recipe key {path!r}" + (f" (did you mean {where + '.' + hint!r}?)" if hint else "")
            raise AttnError(msg + f"; valid keys here: {', '.join(sorted(fields))}")
        coerce(value, decode_type(fields[key]), path)


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise AttnError(f"{key} must be a mapping, got {value!r}")
    return value


def check_recipe_data(data: dict[str, Any], name: str, task: str) -> None:
    """What :func:`attn_cli.config.recipe_from_dict` checks, from the index instead of the registries."""
    index = load_index()
    data = dict(data)
    file_task = data.pop("task", None)
    if file_task is not None and file_task != task:
        raise AttnError(f"recipe {name} is for task {file_task!r}, not {task!r}")
    spec = index["tasks"][task]
    data.pop("name", None)
    model_raw = dict(_section(data, "model"))
    data.pop("model", None)
    model_name = model_raw.pop("name", None)
    if model_name is None:
        raise AttnError(f"recipe {name} has no model.name; models: {', '.join(spec['models'])}")
    if model_name not in spec["models"]:
        raise unknown(f"model for task {task!r}", str(model_name), spec["models"])
    _check_section(index["models"][model_name], model_raw, "model")
    extra = set(data) - set(TOP_LEVEL)
    if extra:
        key = sorted(extra)[0]
        hint = closest(key, {*TOP_LEVEL, "model", "task", "base"})
        raise AttnError(
            f"unknown recipe key {key!r}"
            + (f" (did you mean {hint!r}?)" if hint else "")
            + "; valid top-level keys: base, task, description, model, data, train, eval, reference"
        )
    _check_section(spec["data"], _section(data, "data"), "data")
    _check_section(spec["eval"], _section(data, "eval"), "eval")
    build(TrainConfig, _section(data, "train"), "train")
    build(Reference, _section(data, "reference"), "reference")


def check_train(task: str, recipe: str | None, overrides: list[str], resume: Path | None) -> None:
    """Every check of ``attn train`` that needs no torch: task, recipe, ``--set`` keys and values."""
    check_task(task)
    check_overrides(overrides)
    if resume is not None:
        saved = Path(resume) / "recipe.yaml"
        if saved.is_file():  # a missing run directory is reported by the full path, with its own message
            data = _load_raw(saved, task)
            check_recipe_data(apply_overrides(data, overrides), str(data.get("name", saved.parent.name)), task)
        return
    if recipe is None:
        raise AttnError(f"give --recipe NAME (one of: {', '.join(available_recipes(task))}) or --resume RUN_DIR")
    path, name = resolve_recipe_path(task, recipe)
    data = apply_overrides(_load_raw(path, task), overrides)
    check_recipe_data(data, str(data.get("name", name)), task)


# ---------------------------------------------------------------------------------------------
# attn recipes


def budget(train: TrainConfig) -> str:
    """A recipe's training budget in words: whichever of epochs, steps and minutes it sets."""
    parts = []
    if train.max_epochs is not None and train.max_epochs != -1:
        parts.append(f"{train.max_epochs} epochs")
    if train.max_steps != -1:
        parts.append(f"{train.max_steps} steps")
    if train.max_time_min is not None:
        parts.append(f"{train.max_time_min:g} min")
    return ", ".join(parts) or "unlimited"


def list_recipes(task: str | None = None) -> list[dict[str, str]]:
    """One row per recipe (task, recipe, model, budget, batch size, description), from the YAML files alone."""
    if task is not None:
        check_task(task)
    rows = []
    for t in [task] if task else tasks():
        for name in available_recipes(t):
            row = {"task": t, "recipe": name, "model": "?", "budget": "", "batch": "", "description": ""}
            try:
                data = _load_raw(resolve_recipe_path(t, name)[0], t)
                check_recipe_data(data, name, t)
                train = build(TrainConfig, _section(data, "train"), "train")
                row.update(
                    model=str(data["model"]["name"]),
                    budget=budget(train),
                    batch=(
                        f"≤{tokens} tok"
                        if (tokens := _section(data, "data").get("batch_tokens"))
                        else str(train.batch_size)
                    ),
                    description=str(data.get("description", "")),
                )
            except AttnError as err:
                row["description"] = f"(broken: {err})"
            rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    """``python -m attn_cli.names``: rewrite names.json from the registries (``--check``: only compare)."""
    text = index_text(build_index())
    if "--check" in argv:
        stale = INDEX_FILE.read_text(encoding="utf-8") != text
        print(f"{INDEX_FILE} is {'stale: run python -m attn_cli.names' if stale else 'up to date'}")
        return int(stale)
    INDEX_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {INDEX_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
