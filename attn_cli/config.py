"""Recipes are data: YAML -> frozen, typed dataclasses (DESIGN §3.6).

A recipe file looks like::

    base: luong-global-general      # optional; a sibling recipe (or path) whose keys this one overrides
    task: nmt
    description: one line shown by `attn recipes`
    model: {name: luong, attention: general, input_feed: true, ...}   # typed by the model's Config
    data: {dataset: multi30k, ...}                                    # typed by the task's DataConfig
    train: {max_epochs: 12, lr: 1.0e-3, monitor: val/bleu, ...}      # TrainConfig below
    eval: {beam: 5, ...}                                              # typed by the task's EvalConfig
    reference: {source: "Luong et al. 2015, Table 1", metrics: {bleu: 19.0}}

Defaults live only in the dataclasses. Unknown keys are errors with a
did-you-mean; ``--set a.b=c`` overrides are parsed as YAML scalars and then
coerced to the field's declared type, so ``--set train.lr=1e-3`` is a float and
``--set model.input_feed=false`` a bool.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from attn_cli.errors import AttnError, closest, unknown

REPO_ROOT = Path(__file__).resolve().parent.parent


def shipped_recipes() -> Path:
    """The project's recipe tree: ``recipes/`` beside the package in a source tree or an editable
    install, ``attn_cli/recipes/`` inside an installed wheel (setup.py copies it there)."""
    packaged = Path(__file__).resolve().parent / "recipes"
    return packaged if packaged.is_dir() else REPO_ROOT / "recipes"


def recipe_roots() -> list[Path]:
    """Where recipe names are looked up, first match wins: ``$ATTN_RECIPES`` alone when set, else the
    user's own ``./recipes`` (when there is one) and then the project's recipes."""
    if "ATTN_RECIPES" in os.environ:
        return [Path(os.environ["ATTN_RECIPES"])]
    roots: list[Path] = []
    for root in (Path.cwd() / "recipes", shipped_recipes()):
        if root.is_dir() and all(root.resolve() != r.resolve() for r in roots):
            roots.append(root)
    return roots or [shipped_recipes()]


@dataclass(frozen=True)
class TrainConfig:
    """How to train; shared by every task. Built into a Lightning Trainer by :mod:`attn_cli.trainer`."""

    max_epochs: int = 10
    max_steps: int = -1  # -1: no step limit
    max_time_min: float | None = None  # wall-clock budget for the fit loop, minutes
    batch_size: int = 64
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = 1.0e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    # "none"; "plateau": multiply lr by lr_decay when the monitor stalls for lr_patience validations (stepped once
    # after each validation, per epoch or every val_every_steps; AttnModule.step_plateau);
    # "halve_after": multiply by lr_decay every epoch from epoch lr_decay_start (Luong et al. §4.1);
    # "step": multiply by lr_decay after every lr_step_epochs epochs from epoch lr_decay_start, i.e.
    # lr · lr_decay^(max(0, epoch − lr_decay_start) // lr_step_epochs) (Sukhbaatar et al. §4.2: halved every 25
    # epochs per task, every 15 jointly; the authors' release starts that staircase when linear start ends);
    # "linear": lr · max(min_lr / lr, 1 − step / max_steps), stepped every update, reaching 0 (or min_lr) at
    # train.max_steps (Mnih et al. 2014 §4: "the learning rate annealed linearly to 0 over the course of training")
    lr_schedule: Literal["none", "plateau", "halve_after", "step", "linear"] = "none"
    lr_decay: float = 0.5
    lr_patience: int = 1  # plateau: validations without improvement before the rate is cut
    lr_decay_start: int = 0
    lr_step_epochs: int = 1
    min_lr: float = 0.0  # the schedules never lower the rate below this (a long plateau run otherwise freezes)
    grad_clip: float = 5.0  # 0 disables
    grad_clip_algorithm: Literal["norm", "value"] = "norm"
    val_every_steps: int | None = None  # None: validate once per epoch
    limit_val_batches: float = 1.0
    monitor: str = "val/loss"
    monitor_mode: Literal["min", "max"] = "min"
    patience: int = 0  # early-stopping patience in validations; 0 disables
    # stop as soon as a validation's train.monitor reaches this value (>= for max, <= for min): a run that has
    # solved its task (BLEU 100, error 0) stops there; None trains to the schedule
    stop_at: float | None = None
    # also write last.ckpt every N steps (resume granularity); unset: every 10 minutes on GPU, never on CPU; 0: never
    checkpoint_every_steps: int | None = None
    seed: int = 42
    deterministic: bool = False
    precision: str = "auto"  # auto: bf16-mixed on GPUs with bfloat16, else 16-mixed; 32-true on CPU
    accelerator: str = "auto"
    devices: str = "auto"  # "auto", a count ("4") or a list ("0,1")
    num_nodes: int = 1
    strategy: str = "auto"  # auto: ddp when more than one device
    num_workers: int = 0
    log_every_n_steps: int = 50
    threads: int = 0  # torch intra-op threads on CPU; 0 leaves torch's default
    # stop the run (keeping the last good checkpoint) when a training loss is NaN/inf or above this bound:
    # a diverging run otherwise trains on for hours and reports perplexity inf; 0 keeps only the NaN/inf check
    max_loss: float = 1.0e6
    # torch.compile the training computation: a model's own `compile_for_training` (DRAW compiles one time
    # step) or else its forward; the first steps pay the compilation (minutes), the rest run fused kernels
    compile: bool = False
    # also keep a weights-only checkpoint at every validation, checkpoints/val-step<N>.ckpt, with val-step<N>.json
    # beside it (the training's wall and CPU seconds to that step): what `attn bench time-to` decodes to find the
    # first checkpoint that reaches a BLEU (attn_cli.callbacks.KeepValCheckpoints)
    keep_val_checkpoints: bool = False

    def __post_init__(self) -> None:
        if self.lr_schedule == "linear" and self.max_steps <= 0:
            raise AttnError(
                "train.lr_schedule=linear anneals the rate to 0 over train.max_steps updates, but train.max_steps is"
                f" {self.max_steps}; set train.max_steps to the run's number of updates"
            )
        if self.keep_val_checkpoints and self.limit_val_batches == 0:
            raise AttnError(
                "train.keep_val_checkpoints=true keeps a checkpoint at each validation, but train.limit_val_batches=0"
                " turns validation off; give train.limit_val_batches a positive value or leave keep_val_checkpoints off"
            )


@dataclass(frozen=True)
class Reference:
    """The paper's numbers for this recipe, with where they come from."""

    source: str = ""
    dataset: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Recipe:
    task: str
    name: str
    model_name: str
    model: Any
    data: Any
    eval: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    reference: Reference = field(default_factory=Reference)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data in recipe-file shape (``model.name`` inside the model section)."""
        data = to_dict(self)
        data["model"] = {"name": data.pop("model_name"), **data["model"]}
        return data


# ---------------------------------------------------------------------------------------------
# strict, typed construction


def to_dict(obj: Any) -> Any:
    """Dataclasses (nested) -> plain dicts/lists, suitable for YAML/JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` to type ``tp`` or raise an AttnError naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except AttnError as err:
                errors.append(err)
        raise errors[0] if errors else AttnError(f"{where}: cannot be null")
    if origin is Literal:
        if value in args:
            return value
        raise unknown(f"value for {where}", str(value), [str(a) for a in args])
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise AttnError(f"{where} must be a mapping, got {value!r}")
        return build(tp, value, where)
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            value = [value]
        item_tp = args[0] if args else Any
        items = [coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise AttnError(f"{where} must be a mapping, got {value!r}")
        key_tp, val_tp = args if args else (Any, Any)
        return {coerce(k, key_tp, where): coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise AttnError(f"{where} expects true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise AttnError(f"{where} expects an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise AttnError(f"{where} expects an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise AttnError(f"{where} expects a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise AttnError(f"{where} expects a string, got {value!r}")
    raise TypeError(f"unsupported config type {_type_name(tp)} at {where}")


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: v >= low


def _positive(v: Any) -> bool:
    return v > 0


def _positive_or(*special: Any) -> Callable[[Any], bool]:
    return lambda v: v in special or v > 0


# the values Lightning's Trainer(precision=...) takes, and our "auto" (bf16-mixed on GPU, 32-true on CPU)
PRECISIONS = ("auto", "64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64", "32", "16", "bf16")


def _strategies() -> list[str]:
    from lightning.pytorch.strategies import StrategyRegistry  # only when a recipe names a strategy

    return list(StrategyRegistry.available_strategies())


# Value checks (issue 24): a recipe or `--set` value outside its range is refused when the recipe is built,
# before anything is written. Without them a batch size of 0 or a negative time budget trained 0 steps and
# saved the untrained model as "best", and `vocab_size=-1` turned every word into <unk>. Keyed by the
# field's dotted path as `build` names it (recipe sections, and `prepare` for `attn prepare --set`).
VALUE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "train.max_epochs": (_positive_or(-1), "a positive number of epochs, or -1 for no limit"),
    "train.max_steps": (_positive_or(-1), "a positive number of steps, or -1 for no limit"),
    "train.max_time_min": (_positive_or(None), "a positive number of minutes, or null for no limit"),
    "train.batch_size": (_positive, "a positive batch size"),
    "train.lr": (_positive, "a positive learning rate"),
    "train.momentum": (_at_least(0), "0 or more"),
    "train.weight_decay": (_at_least(0), "0 or more"),
    "train.lr_decay": (lambda v: 0 < v <= 1, "a factor in (0, 1]"),
    "train.lr_patience": (_at_least(0), "0 or more validations"),
    "train.lr_decay_start": (_at_least(0), "an epoch, 0 or more"),
    "train.lr_step_epochs": (_at_least(1), "1 or more epochs"),
    "train.min_lr": (_at_least(0), "0 or more"),
    "train.grad_clip": (_at_least(0), "0 (off) or a positive bound"),
    "train.val_every_steps": (_positive_or(None), "a positive number of steps, or null for once per epoch"),
    # 0 is Lightning's "no validation": the speed benchmark times training alone with it
    "train.limit_val_batches": (_at_least(0), "0 (no validation), a fraction (<= 1.0) or a number of batches"),
    "train.patience": (_at_least(0), "0 (off) or a number of validations"),
    "train.checkpoint_every_steps": (_positive_or(None), "a positive number of steps, or null"),
    "train.num_nodes": (_at_least(1), "1 or more"),
    "train.num_workers": (_at_least(0), "0 or more"),
    "train.log_every_n_steps": (_at_least(1), "1 or more"),
    "train.threads": (_at_least(0), "0 (torch's default) or more"),
    "train.max_loss": (_at_least(0), "0 (NaN/inf check only) or a positive bound"),
    "train.accelerator": (lambda v: v in ("auto", "cpu", "gpu", "cuda"), "one of auto, cpu, gpu, cuda"),
    "train.precision": (lambda v: v in PRECISIONS, "one of " + ", ".join(PRECISIONS)),
    "train.strategy": (lambda v: v == "auto" or v in _strategies(), "auto or a Lightning strategy such as ddp"),
    "eval.beam": (_at_least(1), "1 (greedy) or more"),
    "eval.val_beam": (_at_least(1), "1 (greedy) or more"),
    "eval.samples": (_at_least(0), "0 or more"),
    "eval.workers": (_at_least(0), "0 (one single-threaded worker per thread) or a number of workers"),
    "data.eval_batch_size": (_positive, "a positive batch size"),
    "data.batch_tokens": (_at_least(0), "0 (sentence batches) or a positive number of tokens"),
    "data.n_train": (_at_least(0), "0 (all) or more"),
    "data.n_eval": (_at_least(0), "0 (all) or more"),
    "data.memory_size": (_positive, "a positive number of memories"),
    "data.train_size": (_positive, "a positive number of sequences"),
    "data.min_len": (_positive, "a positive length"),
    "data.val_size": (_positive, "a positive number of sequences"),
    "data.test_per_n": (_positive, "a positive number of sequences per size"),
    "prepare.vocab_size": (lambda v: v == 0 or v > 4, "0 (no limit) or more than the 4 special tokens"),
    "prepare.sp_vocab_size": (lambda v: v > 4, "more than the 4 special tokens"),
    "prepare.min_freq": (_at_least(1), "1 or more"),
}


def _sizes(v: Any) -> bool:
    """A size, or a list of sizes (one per layer), all positive; a field of another type passes."""
    items = v if isinstance(v, (list, tuple)) else [v]
    return all(x > 0 for x in items if isinstance(x, int) and not isinstance(x, bool))


# model sizes by field name: a 0-wide layer builds and "trains" (with warnings only), so it is refused here
_MODEL_SIZES = [
    *("attn_dim", "context_size", "controller", "dec", "dec_layers", "emb_dim", "embed_dim", "enc", "enc_hidden"),
    *("enc_layers", "fc", "gate_hidden", "glimpse_dim", "glimpse_size", "glimpses", "hg", "hidden", "hl", "hops"),
    *("kernel", "layers", "max_src_len", "passes", "patch", "read_n", "readout_dim", "scales", "slot_width"),
    *("slots", "steps", "tps_k", "transformers", "write_n", "z"),
    *("stacks", "depth", "stack_size"),
]
VALUE_CHECKS.update({f"model.{name}": (_sizes, "a positive size (or list of sizes)") for name in _MODEL_SIZES})


def check_value(path: str, value: Any) -> None:
    """Raise an AttnError when ``value`` is outside the range :data:`VALUE_CHECKS` gives for ``path``."""
    rule = VALUE_CHECKS.get(path)
    if rule is not None and not rule[0](value):
        raise AttnError(f"{path}={value!r} is invalid: it must be {rule[1]}; fix the recipe or its --set")


def build(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data`` strictly: unknown keys are errors, values are coerced."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            hint = closest(str(key), fields)
            msg = f"unknown recipe key {path!r}"
            msg += f" (did you mean {(where + '.' if where else '') + hint!r}?)" if hint else ""
            if not fields:  # e.g. eval.beam for a family whose evaluation has no options
                raise AttnError(msg + f"; {where or 'this section'} takes no keys for this task: leave {path} out")
            raise AttnError(msg + f"; valid keys here: {', '.join(sorted(fields))}")
        kwargs[key] = coerce(value, hints[key], path)
        check_value(path, kwargs[key])
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise AttnError(f"recipe {where or 'file'} is missing required key(s): {', '.join(missing)}")
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# files, inheritance and overrides


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def available_recipes(task: str) -> list[str]:
    """Recipe names for ``task`` in every recipe root: ``<root>/<task>/*.yaml``, then
    ``<root>/tiny/<task>/*.yaml`` (as tiny/NAME)."""
    roots = recipe_roots()
    own = {p.stem for root in roots for p in (root / task).glob("*.yaml")}
    tiny = {f"tiny/{p.stem}" for root in roots for p in (root / "tiny" / task).glob("*.yaml")}
    return sorted(own) + sorted(tiny)


def resolve_recipe_path(task: str, recipe: str) -> tuple[Path, str]:
    """``recipe`` is a name (``luong-local-p``, ``tiny/luong-local-p``) or a path to a YAML file."""
    as_path = Path(recipe)
    if recipe.endswith((".yaml", ".yml")) or as_path.is_file():
        if not as_path.is_file():
            raise AttnError(f"recipe file {recipe} does not exist")
        return as_path, as_path.stem
    rel = Path("tiny", task, f"{recipe[5:]}.yaml") if recipe.startswith("tiny/") else Path(task, f"{recipe}.yaml")
    for root in recipe_roots():
        if (root / rel).is_file():
            return root / rel, recipe
    raise unknown(f"recipe for task {task!r}", recipe, available_recipes(task))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        # libyaml's safe loader when present: the same documents, parsed several times faster (`attn recipes`
        # reads every recipe and its bases)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise AttnError(f"recipe {path} is not valid YAML{where}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AttnError(f"recipe {path} must be a mapping of keys to values")
    return data


def _load_raw(path: Path, task: str | None, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path.resolve() in seen:
        raise AttnError(f"recipe {path} inherits from itself through 'base:'")
    data = _read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    base_task = data.get("task", task)
    if base_task is None:
        raise AttnError(f"recipe {path} uses 'base:' but names no task")
    candidate = path.parent / f"{base}.yaml"
    base_path = candidate if candidate.is_file() else resolve_recipe_path(base_task, str(base))[0]
    parent = _load_raw(base_path, base_task, (*seen, path.resolve()))
    child_model = data.get("model") or {}
    if "name" in child_model and child_model["name"] != (parent.get("model") or {}).get("name"):
        parent = {**parent, "model": {}}  # another model: the base's model keys do not apply
    if "reference" in data:
        # the paper's numbers belong to one row: a child's reference replaces its base's whole,
        # so a variant never shows its base's number under its own name
        parent = {k: v for k, v in parent.items() if k != "reference"}
    return _deep_merge(parent, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=c`` -> (["a", "b"], yaml-parsed c)."""
    if "=" not in text:
        raise AttnError(f"--set expects key=value (e.g. train.lr=0.001), got {text!r}")
    key, raw = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise AttnError(f"--set has an empty key in {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise AttnError(f"--set {text}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value
    return data


def recipe_from_dict(data: dict[str, Any], name: str, task: str | None = None) -> Recipe:
    """Build a typed Recipe; the model's and task's own config classes type their sections."""
    from attn_cli.registry import MODELS, TASKS

    data = dict(data)
    file_task = data.pop("task", None)
    task = task or file_task
    if task is None:
        raise AttnError(f"recipe {name} names no task (add 'task: ...')")
    if file_task is not None and file_task != task:
        raise AttnError(f"recipe {name} is for task {file_task!r}, not {task!r}")
    spec = TASKS.get(task)
    data.pop("name", None)
    model_raw = dict(data.pop("model", None) or {})
    model_name = model_raw.pop("name", None)
    if model_name is None:
        raise AttnError(f"recipe {name} has no model.name; models: {', '.join(spec.model_names())}")
    if model_name not in spec.model_names():
        raise unknown(f"model for task {task!r}", str(model_name), spec.model_names())
    model_cls = MODELS.get(model_name)
    model = build(model_cls.Config, model_raw, "model")
    known = {"data", "eval", "train", "reference", "description"}
    extra = set(data) - known
    if extra:
        key = sorted(extra)[0]
        hint = closest(key, known | {"model", "task", "base"})
        raise AttnError(
            f"unknown recipe key {key!r}"
            + (f" (did you mean {hint!r}?)" if hint else "")
            + "; valid top-level keys: base, task, description, model, data, train, eval, reference"
        )
    return Recipe(
        task=task,
        name=name,
        description=str(data.get("description", "")),
        model_name=str(model_name),
        model=model,
        data=build(spec.data_config, data.get("data") or {}, "data"),
        eval=build(spec.eval_config, data.get("eval") or {}, "eval"),
        train=build(TrainConfig, data.get("train") or {}, "train"),
        reference=build(Reference, data.get("reference") or {}, "reference"),
    )


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML; :func:`load_recipe` on it gives an equal Recipe."""
    data = recipe.to_dict()
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_recipe(task: str, recipe: str, overrides: list[str] | None = None) -> Recipe:
    """Load recipe NAME or PATH for ``task``, following ``base:`` and applying ``--set`` overrides."""
    path, name = resolve_recipe_path(task, recipe)
    data = _load_raw(path, task)
    data = apply_overrides(data, list(overrides or []))
    return recipe_from_dict(data, name=str(data.pop("name", name)), task=task)
