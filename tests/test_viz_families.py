"""The family pictures of attn_cli/viz/ drawn straight from a model and a batch (no LightningModule, no
trainer): one picture per example, named as `attn visualize` names them, the cut-offs each one applies."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attn_cli.config import load_recipe
from attn_cli.registry import MODELS, TASKS


def _model_and_data(task: str, recipe_name: str, data: Path) -> tuple[torch.nn.Module, object]:
    recipe = load_recipe(task, recipe_name)
    dm = TASKS.get(task).datamodule(recipe, data)
    dm.setup("test")
    torch.manual_seed(0)
    return MODELS.get(recipe.model_name)(recipe.model, **dm.meta).eval(), dm


@pytest.mark.parametrize(("recipe", "label"), [("tiny/memn2n", "hop"), ("tiny/dmn", "episode")])
def test_story_hops_one_heatmap_per_story(recipe: str, label: str, generated_data: Path, tmp_path: Path) -> None:
    from attn_cli.data.memory import collate_babi
    from attn_cli.viz.memory import story_hops

    model, dm = _model_and_data("memory", recipe, generated_data)
    ds = dm.dataset("test")
    with torch.no_grad():
        paths = story_hops(
            model, collate_babi([ds[i] for i in range(3)]), ds.rows[:3], memory_size=ds.mem, answers=dm.answers,
            label=label, out_dir=tmp_path, split="test",
        )  # fmt: skip
    assert [p.name for p in paths] == [f"{label}s-test-{i}.png" for i in range(3)]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_fact_marks_box_fact_t_on_pass_t_for_the_dmn() -> None:
    from attn_cli.viz.memory import fact_marks

    ranks = torch.tensor([0, 2, 0, 1, 0])  # 2 supporting facts: statement 3 first, then statement 1
    assert fact_marks(ranks, 3, per_pass=True) == [(3, 0), (1, 1), (1, 2)]  # pass 3 re-reads the last fact
    assert sorted(fact_marks(ranks, 2, per_pass=False)) == [(1, 0), (1, 1), (3, 0), (3, 1)]  # MemN2N: every hop
    assert fact_marks(torch.tensor([0, 2, 0]), 3, per_pass=True) == [(1, 1), (1, 2)]  # fact 1 out of memory
    assert fact_marks(torch.zeros(4, dtype=torch.long), 3, per_pass=True) == []


def test_ntm_weightings_and_length_curve(generated_data: Path, tmp_path: Path) -> None:
    from attn_cli.data.memory import collate_seq
    from attn_cli.viz.memory import length_generalisation, ntm_weightings

    model, dm = _model_and_data("memory", "tiny/ntm", generated_data)
    ds = dm.dataset("test")
    with torch.no_grad():
        paths = ntm_weightings(model, [collate_seq([ds[i]]) for i in range(2)], tmp_path, "test")
    assert [p.name for p in paths] == [f"ntm-{h}-test-{i}.png" for i in range(2) for h in ("read", "write")]
    metrics = {"bits_per_seq/len20": 3.0, "bits_per_seq/len10": 1.0, "bit_errors/len20": 2.0, "bit_errors/len10": 0.0}
    curve = length_generalisation({**metrics, "loss": 2.0}, "ntm", tmp_path)
    assert [p.name for p in curve] == ["length-generalisation-errors.png", "length-generalisation-cost.png"]
    assert length_generalisation({"bits_per_seq": 1.0}, "ntm", tmp_path / "none") == []


@pytest.mark.parametrize("recipe", ["tiny/attentive-reader", "tiny/impatient-reader"])
def test_reader_document_attention(recipe: str, generated_data: Path, tmp_path: Path) -> None:
    from attn_cli.viz.reader import document_attention

    model, dm = _model_and_data("reader", recipe, generated_data)
    ds = dm.dataset("test")
    with torch.no_grad():
        paths = document_attention(
            model, dm.collate([ds[i] for i in range(2)]), ds.rows[:2], max_doc_len=dm.cfg.max_doc_len,
            out_dir=tmp_path, split="test",
        )  # fmt: skip
    assert [p.name for p in paths] == ["reader-test-0.png", "reader-test-1.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_a_datamodule_hands_out_its_splits(generated_data: Path) -> None:
    for task, recipe in (("nmt", "tiny/bahdanau"), ("memory", "tiny/memn2n"), ("reader", "tiny/attentive-reader")):
        _, dm = _model_and_data(task, recipe, generated_data)
        test = dm.dataset("test")
        assert len(test) > 0 and dm.dataset("test") is test  # read once, kept


@pytest.mark.parametrize(
    ("task", "recipe", "expect"),
    [
        ("memory", "tiny/dmn", "episodes-test-0.png"),
        ("memory", "tiny/memn2n", "hops-test-0.png"),
        ("memory", "tiny/ntm-lstm", "has no memory weightings to draw"),
        ("reader", "tiny/deep-lstm-reader", "has no attention to draw"),
    ],
)
def test_task_asks_the_model_what_it_draws(
    task: str, recipe: str, expect: str, generated_data: Path, tmp_path: Path
) -> None:
    """`attn visualize` asks the model (``hop_name``, ``attends``), not its name: DMN's passes are
    episodes, a model without attention is refused with one line."""
    from attn_cli.errors import AttnError

    spec = TASKS.get(task)
    r = load_recipe(task, recipe)
    dm = spec.datamodule(r, generated_data)
    dm.setup("test")
    torch.manual_seed(0)
    module = spec.module(r, dm.meta)
    if expect.endswith(".png"):
        paths = spec.visualize(module, dm, "test", 1, tmp_path)
        assert [p.name for p in paths] == [expect]
    else:
        with pytest.raises(AttnError, match=expect):
            spec.visualize(module, dm, "test", 1, tmp_path)
