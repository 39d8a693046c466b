"""Recipes: strict keys, typed overrides, inheritance, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from attn_cli.config import TrainConfig, build, coerce, dump_recipe, load_recipe, parse_override
from attn_cli.errors import AttnError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_set_overrides_are_typed_by_the_field() -> None:
    r = load_recipe(
        "nmt",
        "tiny/luong-global-general",
        ["train.lr=0.5", "model.input_feed=false", "train.max_steps=7", "eval.beam=2"],
    )
    assert r.train.lr == 0.5 and isinstance(r.train.lr, float)
    assert r.model.input_feed is False
    assert r.train.max_steps == 7 and r.eval.beam == 2


def test_unknown_key_suggests_the_closest() -> None:
    with pytest.raises(AttnError, match=r"unknown recipe key 'train.lrr' \(did you mean 'train.lr'\?\)"):
        load_recipe("nmt", "tiny/luong-global-general", ["train.lrr=1"])


def test_wrong_value_type_names_the_key() -> None:
    with pytest.raises(AttnError, match="train.max_steps expects an integer"):
        load_recipe("nmt", "tiny/luong-global-general", ["train.max_steps=many"])
    with pytest.raises(AttnError, match="model.input_feed expects true/false"):
        load_recipe("nmt", "tiny/luong-global-general", ["model.input_feed=sometimes"])


def test_literal_values_are_checked() -> None:
    with pytest.raises(AttnError, match=r"unknown value for model.score 'genral' \(did you mean 'general'\?\)"):
        load_recipe("nmt", "tiny/luong-global-general", ["model.score=genral"])


def test_unknown_recipe_lists_the_available_and_the_closest() -> None:
    with pytest.raises(AttnError, match=r"did you mean 'luong-local-p'\?.*valid: .*bahdanau"):
        load_recipe("nmt", "luong-locl-p")


def test_base_inheritance_and_model_switch(tmp_path: Path) -> None:
    r = load_recipe("nmt", "luong-local-p")
    assert r.model.attention == "local-p" and r.model.score == "general" and r.train.batch_size == 64
    s2s = load_recipe("nmt", "seq2seq")
    assert s2s.model_name == "seq2seq" and s2s.model.attention == "none"  # base's luong keys dropped


def test_a_childs_reference_replaces_its_bases_whole(tmp_path: Path) -> None:
    base = "task: nmt\nmodel: {name: luong}\nreference: {source: P Table 1, metrics: {bleu: 20.9, ppl: 5.9}}\n"
    write(tmp_path / "base.yaml", base)
    own = load_recipe("nmt", str(write(tmp_path / "own.yaml", "base: base\nreference: {source: P Table 4}\n")))
    assert own.reference.source == "P Table 4" and own.reference.metrics == {}  # no number borrowed from the base
    alias = load_recipe("nmt", str(write(tmp_path / "alias.yaml", "base: base\ntask: nmt\n")))
    assert alias.reference.metrics == {"bleu": 20.9, "ppl": 5.9}  # an alias without its own block keeps the base's


def test_recipe_from_a_path_and_cycle(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "base: b\ntask: nmt\nmodel: {name: luong}\n")
    write(tmp_path / "b.yaml", "base: a\ntask: nmt\nmodel: {name: luong}\n")
    with pytest.raises(AttnError, match="inherits from itself"):
        load_recipe("nmt", str(a))


def test_missing_model_name_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(AttnError, match="has no model.name"):
        load_recipe("nmt", str(write(tmp_path / "x.yaml", "task: nmt\nmodel: {hidden: 3}\n")))
    with pytest.raises(AttnError, match="not valid YAML"):
        load_recipe("nmt", str(write(tmp_path / "y.yaml", "task: nmt\nmodel: [unclosed\n")))
    with pytest.raises(AttnError, match="is for task 'vision'"):
        load_recipe("nmt", str(write(tmp_path / "z.yaml", "task: vision\nmodel: {name: luong}\n")))


def test_dump_round_trip(tmp_path: Path) -> None:
    r = load_recipe("nmt", "luong-global-dot", ["train.seed=3"])
    again = load_recipe("nmt", str(write(tmp_path / "r.yaml", dump_recipe(r))))
    assert again == r.__class__(**{**r.__dict__, "name": again.name})


def test_parse_override_and_coerce_edge_cases() -> None:
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    with pytest.raises(AttnError, match="key=value"):
        parse_override("train.lr")
    assert coerce(3, float, "x") == 3.0
    assert coerce("7", int, "x") == 7
    assert coerce(None, int | None, "x") is None
    assert coerce(["a", "b"], tuple[str, ...], "x") == ("a", "b")
    with pytest.raises(AttnError, match="must be a mapping"):
        build(TrainConfig, {"lr": 1.0}, "train") and coerce(3, TrainConfig, "train")
