"""Every registered model, built from its tiny recipe and checked the same way (DESIGN §3.9).

After timm's tests/test_models.py: the cases come from the registry, not from a list here. Each
registered model belongs to one task (it names it when it registers: ``task="nmt"``) and has at least
one tiny recipe (``recipes/tiny/<task>/``); every tiny recipe of the model is a case. A case builds
the task's real datamodule on generated data (the session's ``generated_data``), takes one training
batch, builds the task's LightningModule (so the model gets exactly the meta and loss the trainer
gives it) and checks:

* forward and backward through the task's ``training_step``: a finite scalar loss, and a finite
  gradient on every trainable parameter (a parameter left without one is dead weight, or a
  pathway the loss never reaches);
* a few Adam steps on that fixed batch lower the loss the task scores (the random draws of
  sampling models repeated with the same seed each step);
* the contract its family's task calls (the Protocols in ``attn_cli/tasks/{nmt,caption,vision}.py``,
  the output keys of the memory and reader models), called once on the batch with the shapes checked.

A new model is covered by registering it with its task (``@MODELS.register(name, task=...)``) and
giving it a tiny recipe; without the recipe :func:`test_model` fails for it. Tiny recipes keep the file within about
a minute of CPU on one thread; a model too heavy for that gets ``pytest.mark.slow`` (none is now).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from attn_cli.config import available_recipes, load_recipe
from attn_cli.data.tapes import curriculum_batch
from attn_cli.nn.search import select
from attn_cli.registry import MODELS, TASKS
from attn_cli.tasks.base import AttnModule
from attn_cli.tasks.caption import CaptionModel
from attn_cli.tasks.handwriting import HandwritingModel
from attn_cli.tasks.nmt import NmtModel
from attn_cli.tasks.vision import VisionModel


def tasks_of(model: str) -> list[str]:
    """The registered tasks whose models include ``model`` (asked of each task, as the CLI does)."""
    return [task for task in TASKS.names() if model in TASKS.get(task).model_names()]


def tiny_recipes(task: str, model: str) -> list[str]:
    names = [n for n in available_recipes(task) if n.startswith("tiny/")]
    return [n for n in names if load_recipe(task, n).model_name == model]


def cases() -> list[Any]:
    """(task, model, tiny recipe) for every registered model; recipe None where the model has none."""
    out = []
    for model in MODELS.names():
        for task in tasks_of(model):
            recipes = tiny_recipes(task, model) or [None]
            out += [pytest.param(task, model, r, id=f"{task}:{model}:{r or 'no-tiny-recipe'}") for r in recipes]
    return out


CASES = cases()

# training_step logs through self.log, which says each time that no Trainer is attached: here none is wanted
pytestmark = pytest.mark.filterwarnings("ignore:.*self.trainer. reference is not registered")


@pytest.mark.parametrize("model", MODELS.names())
def test_every_registered_model_belongs_to_one_task(model: str) -> None:
    assert tasks_of(model) == [MODELS.tag(model, "task")], f"model {model!r} declares no registered task"


def build(task: str, recipe_name: str, data_dir: Path) -> tuple[AttnModule, dict[str, Any]]:
    """The task's module for ``recipe_name`` and one training batch from its datamodule, seeded."""
    recipe = load_recipe(task, recipe_name)
    spec = TASKS.get(task)
    dm = spec.datamodule(recipe, data_dir)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    torch.manual_seed(0)
    module = spec.module(recipe, dm.meta)
    module.data = dm
    return module.train(), batch


def training_loss(module: AttnModule, batch: dict[str, Any]) -> torch.Tensor:
    """The task's training loss on ``batch``, its random draws (sampling, dropout) the same every call."""
    torch.manual_seed(1)
    return module.training_step(batch, 0)


def scored_loss(module: AttnModule, batch: dict[str, Any]) -> float:
    """The loss the task scores on ``batch``. For classifiers that is the deterministic loss of ``predict``:
    the training loss of RAM and DRAM adds a REINFORCE surrogate whose value need not fall as they learn."""
    model = module.model
    if isinstance(model, VisionModel) and model.kind != "generate":
        with torch.no_grad():
            return float(model.predict(batch["x"], batch["y"])["loss"].mean())
    with torch.no_grad():
        return float(training_loss(module, batch))


@pytest.mark.parametrize(("task", "model", "recipe"), CASES)
def test_model(task: str, model: str, recipe: str | None, generated_data: Path) -> None:
    assert recipe is not None, f"model {model!r} has no tiny recipe: add recipes/tiny/{task}/{model}.yaml"
    module, batch = build(task, recipe, generated_data)
    assert module.recipe.model_name == model

    loss = training_loss(module, batch)
    assert loss.dim() == 0 and torch.isfinite(loss), f"loss {loss}"
    loss.backward()
    params = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    assert params, "a model with no trainable parameters"
    missing = [name for name, p in params if p.grad is None]
    infinite = [name for name, p in params if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not infinite, f"non-finite gradients: {infinite}"
    assert not missing, f"parameters without a gradient: {missing}"
    assert any(p.grad.abs().sum() > 0 for _, p in params if p.grad is not None)


@pytest.mark.parametrize(("task", "model", "recipe"), CASES)
def test_loss_falls_on_a_fixed_batch(task: str, model: str, recipe: str | None, generated_data: Path) -> None:
    if recipe is None:
        pytest.skip("no tiny recipe (test_model fails for it)")
    module, batch = build(task, recipe, generated_data)
    before = scored_loss(module, batch)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(5):
        opt.zero_grad()
        training_loss(module, batch).backward()
        opt.step()
    after = scored_loss(module, batch)
    assert after < before, f"loss {before:.4f} -> {after:.4f} after 5 steps on one batch"


@pytest.mark.parametrize(("task", "model", "recipe"), CASES)
def test_family_contract(task: str, model: str, recipe: str | None, generated_data: Path) -> None:
    if recipe is None:
        pytest.skip("no tiny recipe (test_model fails for it)")
    module, batch = build(task, recipe, generated_data)
    m = module.eval().model
    with torch.no_grad():
        if task == "nmt":
            check_nmt(m, batch, module.meta)
        elif task == "caption":
            check_caption(m, batch, module.meta)
        elif task == "vision":
            check_vision(m, batch)
        elif task == "memory":
            check_memory(m, batch, module.kind)
        elif task == "reader":
            check_reader(m, batch)
        elif task == "handwriting":
            check_handwriting(m, batch)
        elif task == "patterns":
            check_patterns(m, batch, int(module.meta["vocab"]))
        elif task == "tapes":
            check_tapes(m, curriculum_batch(module.recipe.data, 3, batch["ids"], 2), int(module.meta["vocab"]))
        else:
            pytest.fail(f"task {task!r} has no contract check here: add one")


def check_step_decoder(m: Any, memory: Any, b: int, vocab: int) -> None:
    """One decoding step from BOS-like tokens: log-probabilities (or scores) (B, V), weights (B, Tk) or None."""
    state = m.init_state(memory)
    scores, _, attn = m.step(torch.zeros(b, dtype=torch.long), state, memory)
    assert scores.shape == (b, vocab) and torch.isfinite(scores).all()
    assert attn is None or (attn.dim() == 2 and attn.size(0) == b)


def check_nmt(m: Any, batch: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    assert isinstance(m, NmtModel)
    b, t = batch["tgt_in"].shape
    out = m(batch["src"], batch["src_len"], batch["tgt_in"])
    assert out["hidden"].shape[:2] == (b, t)
    vocab = int(meta["tgt_vocab"])
    assert m.project(out["hidden"]).shape == (b, t, vocab)
    if out.get("attn") is not None:
        assert out["attn"].shape[:2] == (b, t) and out["attn"].size(2) == batch["src"].size(1)
    check_step_decoder(m, m.encode(batch["src"], batch["src_len"]), b, vocab)


def check_caption(m: Any, batch: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    assert isinstance(m, CaptionModel)
    assert m.attention_kind() in ("none", "mean", "soft", "hard")
    memory = m.encode(batch["x"])
    n = len(batch["ids"])
    caps = batch["cap_img"]
    nll = m.nll(select(memory, caps), batch["tok_in"], batch["tok_out"])
    assert nll.shape == (len(caps),) and torch.isfinite(nll).all()
    check_step_decoder(m, memory, n, int(meta["vocab_size"]))


def check_vision(m: Any, batch: dict[str, torch.Tensor]) -> None:
    assert isinstance(m, VisionModel)
    assert m.kind in ("classify", "sequence", "generate")
    out = m.predict(batch["x"], batch["y"], seed=3) if m.kind == "generate" else m.predict(batch["x"], batch["y"])
    b = batch["x"].size(0)
    if m.kind == "generate":
        assert out["nll"].shape == (b,) and torch.isfinite(out["nll"]).all()
    else:
        assert out["pred"].shape == batch["y"].shape and out["loss"].shape == (b,)


def check_memory(m: Any, batch: dict[str, torch.Tensor], kind: str) -> None:
    if kind == "qa":
        out = m(batch["story"], batch["story_len"], batch["question"])
        b = batch["story"].size(0)
        assert out["logits"].dim() == 2 and out["logits"].size(0) == b
        assert out["attn"].size(0) == b  # (B, hops or episodes, memories): `attn visualize` draws it
    else:
        out = m(batch["inp"])
        assert out["logits"].shape == batch["tgt"].shape


def check_reader(m: Any, batch: dict[str, torch.Tensor]) -> None:
    out = m(batch["doc"], batch["doc_len"], batch["query"], batch["q_len"], batch["cand"])
    b = batch["doc"].size(0)
    assert out["logits"].dim() == 2 and out["logits"].size(0) == b
    if "attn" in out:  # the attentive readers (the Deep LSTM Reader has none): (B, 1 or Tq, Td), drawn by visualize
        assert out["attn"].size(0) == b and out["attn"].size(-1) == batch["doc"].size(1)


def check_handwriting(m: Any, batch: dict[str, torch.Tensor]) -> None:
    assert isinstance(m, HandwritingModel)
    b, t, _ = batch["inp"].shape
    out = m(batch["inp"], batch["chars"], batch["char_len"])
    assert out["y"].shape[:2] == (b, t) and (out["y"].size(2) - 1) % 6 == 0
    if m.conditional:  # the window's weights over the text, drawn by visualize: (B, T, U)
        assert out["phi"].shape == (b, t, batch["chars"].size(1))
    sample = m.sample(batch["chars"][0, : int(batch["char_len"][0])] if m.conditional else None, steps=5)
    assert sample["offsets"].dim() == 2 and sample["offsets"].size(1) == 3 and len(sample["offsets"]) <= 5


def check_tapes(m: Any, batch: dict[str, torch.Tensor], vocab: int) -> None:
    """The traces `attn visualize` draws and the task scores: (B, T) each, logits (B, T, V), every output written."""
    out = m(batch["inp"], batch["in_len"], batch["out_len"], batch["steps"], sample=False)
    b, t = out["in_pos"].shape
    assert b == len(batch["ids"]) and t <= int(batch["steps"].max())
    assert out["logits"].shape == (b, t, vocab)
    assert all(out[k].shape == (b, t) for k in ("out_pos", "emitted", "active", "log_pi", "baseline", "mem_pos"))
    assert torch.equal(out["emitted"].sum(1), batch["out_len"])


def check_patterns(m: Any, batch: dict[str, torch.Tensor], vocab: int) -> None:
    out = m(batch["inp"], rounding=True)
    assert out["logits"].shape == (*batch["inp"].shape, vocab)
    if getattr(m, "memory_model", False):  # `attn visualize` draws the actions and the stacks/lists: (B, T, K, A|S)
        assert out["actions"].shape[:2] == batch["inp"].shape
        assert set(out["actions"].unique().tolist()) <= {0.0, 1.0}  # rounded: one action per stack and step
        assert m(batch["inp"], keep_memory=True)["memory"].shape[:2] == batch["inp"].shape
