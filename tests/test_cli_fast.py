"""The command line answers before torch: what it checks without the heavy stack, and how it prints.

Start-up is measured by scripts/bench_startup.py (never timed here); these tests pin the
structure that keeps it short — which commands import torch — and what the light checks say.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from attn_cli import names
from attn_cli.config import load_recipe
from attn_cli.errors import AttnError
from attn_cli.registry import TABLES
from attn_cli.tables.base import compute, display_metric, load_results, rich_table, summary_table
from tests.conftest import REPO, run_cli

LIGHT_COMMANDS = [
    ("--help",),
    ("--version",),
    ("recipes",),
    ("recipes", "nmt"),
    ("table", "xu"),
    ("table", "nmt"),
    ("table", "--list"),
    ("table", "summary"),
    ("train", "nmtt", "--recipe", "x"),
    ("train", "nmt", "--recipe", "bahdanu"),
    ("train", "nmt", "--recipe", "tiny/seq2seq", "--set", "model.hiden=3"),
    ("train", "nmt", "--recipe", "tiny/seq2seq", "--set", "train.lr=fast"),
    ("train", "nmt"),
    ("eval", "nmtt", "--run", "x"),
    ("eval", "nmt", "--run", "x", "--set", "model.hidden=3"),
    ("prepare", "nmtt"),
    ("prepare", "nmt"),
    ("prepare", "toy-reorder", "--set", "min_freqq=2"),
    ("visualize", "ramm", "--run", "x"),
    ("table", "nmtt"),
    ("runs",),
    ("runs", "nmtt"),
    ("show", "x"),
    ("translate", "--run", "x", "--n-best", "-1"),
    ("eval", "nmt", "--run", "x", "--src", "a.de"),
]

# runs each command in turn in one fresh interpreter, noting the heavy modules imported so far
PROBE = """
import contextlib, io, json, sys
from attn_cli.cli import entrypoint
out = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["attn", *argv]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            entrypoint()
            rc = 0
        except SystemExit as exc:
            rc = exc.code or 0
    out.append({"argv": argv, "rc": rc, "heavy": [m for m in ("torch", "lightning") if m in sys.modules]})
print(json.dumps(out))
"""


def test_importing_the_cli_imports_no_torch() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, attn_cli.cli; print([m for m in ('torch', 'lightning') if m in sys.modules])",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_commands_and_argument_errors_answer_without_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(LIGHT_COMMANDS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for result in json.loads(done.stdout.strip().splitlines()[-1]):
        assert result["heavy"] == [], f"attn {' '.join(result['argv'])} imported {result['heavy']}"
        assert result["rc"] in (0, 2), result


def test_the_name_index_is_up_to_date() -> None:
    assert names.load_index() == json.loads(names.index_text(names.build_index())), (
        "attn_cli/names.json is stale: run `python -m attn_cli.names`"
    )


@pytest.mark.parametrize(
    "recipe,overrides",
    [
        ("tiny/seq2seq", ["model.hiden=3"]),
        ("tiny/seq2seq", ["train.lr=fast"]),
        ("tiny/seq2seq", ["data.batchng=bucket"]),
        ("tiny/seq2seq", ["data.batching=buckets"]),
        ("tiny/seq2seq", ["eval.beam=wide"]),
        ("tiny/seq2seq", ["modl.hidden=3"]),
        ("tiny/seq2seq", ["model.name=ram"]),
        ("tiny/luong-local-p", ["model.attention=locl-p"]),
        ("tiny/luong-local-p", ["reference.metrics.bleu=high"]),
    ],
)
def test_light_checks_say_what_the_full_loader_says(recipe: str, overrides: list[str]) -> None:
    with pytest.raises(AttnError) as full:
        load_recipe("nmt", recipe, overrides)
    with pytest.raises(AttnError) as light:
        names.check_train("nmt", recipe, overrides, None)
    assert str(light.value) == str(full.value)


def test_light_checks_pass_what_the_full_loader_accepts() -> None:
    for task in names.tasks():
        for row in names.list_recipes(task):
            assert not row["description"].startswith("(broken"), row
    names.check_train("nmt", "tiny/seq2seq", ["model.hidden=3", "train.lr=0.1", "eval.beam=2"], None)
    load_recipe("nmt", "tiny/seq2seq", ["model.hidden=3", "train.lr=0.1", "eval.beam=2"])


def test_argument_errors_are_one_line() -> None:
    for argv, pattern in (
        (("eval", "nmt", "--run", "x", "--set", "model.hidden=3"), "attn eval only takes --set eval.*"),
        (("prepare", "nmt"), "needs --dataset; one of: "),
        (("prepare", "nmt", "--dataset", "multi31k"), "did you mean 'multi30k'?"),
        (("prepare", "toy-reorder", "--set", "min_freqq=2"), "unknown recipe key 'prepare.min_freqq'"),
        (("visualize", "ramm", "--run", "x"), "did you mean 'ram'?"),
        (("bench", "nmtt"), "unknown task 'nmtt'"),
        (("table", "nmtt"), "did you mean 'nmt'?"),
        # the full loader would fail on this with a TypeError; the light check says what is wrong
        (("train", "nmt", "--recipe", "tiny/seq2seq", "--set", "model=3"), "model must be a mapping, got 3"),
    ):
        code, _, err = run_cli(*argv)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], (argv, err)


def test_recipes_show_their_budget_and_batch_size() -> None:
    rows = {r["recipe"]: r for r in names.list_recipes("nmt")}
    recipe = load_recipe("nmt", "ladder-base")
    assert rows["ladder-base"]["batch"] == f"≤{recipe.data.batch_tokens} tok"  # token batches, from its base
    sgd = load_recipe("nmt", "luong-global-general-sgd")
    assert sgd.data.batch_tokens == 0 and rows["luong-global-general-sgd"]["batch"] == str(sgd.train.batch_size)
    assert f"{recipe.train.max_steps} steps" in rows["ladder-base"]["budget"]
    assert f"{recipe.train.max_epochs} epochs" in rows["ladder-base"]["budget"]
    code, out, _ = run_cli("recipes", "nmt")
    assert code == 0 and "budget" in out and "batch" in out and "ladder-base" in out


def _render(renderable: object, width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", TABLES.names())
def test_every_table_fits_80_columns_with_every_value_whole(name: str) -> None:
    results = load_results(REPO / "results")
    spec = TABLES.get(name)
    text = _render(rich_table(spec, results, 80))
    lines = text.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), name
    assert "…" not in text, name
    _, _, body = compute(spec, results)
    for row in body:
        for cell in row[1:]:
            assert cell.text in text, (name, cell.text)


def test_a_wide_table_keeps_its_paper_layout_on_a_wide_terminal() -> None:
    results = load_results(REPO / "results")
    wide = rich_table(TABLES.get("xu"), results, 400)
    assert len(wide.columns) > 3
    assert [c.header for c in rich_table(TABLES.get("xu"), results, 80).columns] == ["Dataset / model", "paper", "ours"]


def test_summary_fits_80_columns_and_shows_caption_bleu_in_points() -> None:
    results = load_results(REPO / "results")
    text = _render(summary_table(results))
    assert "…" not in text and all(len(line.rstrip()) <= 80 for line in text.splitlines())
    sat = next(rec for key, rec in results.items() if key[0] == "caption" and key[2] == "sat-soft")
    bleu4 = sat["metrics"]["bleu4"]["value"]
    assert bleu4 < 1  # pycocoevalcap's fraction in the record ...
    assert f"{bleu4 * 100:.4g}" in text  # ... shown in points


def test_bleu_is_shown_in_points_everywhere() -> None:
    assert display_metric("bleu4", 0.5731, "BLEU-4 (0-1)") == ("bleu4 (0-100)", pytest.approx(57.31))
    assert display_metric("val/bleu4", 0.25, "BLEU-4 (0-1)") == ("val/bleu4 (0-100)", 25.0)
    assert display_metric("bleu", 38.76, "BLEU (sacreBLEU, 0-100)") == ("bleu (0-100)", 38.76)
    assert display_metric("meteor", 0.3, "METEOR (0-1)") == ("meteor", 0.3)
    caption_bleu = [c for c in (*TABLES.get("xu").columns, *TABLES.get("yao").columns) if "BLEU" in c.header]
    assert caption_bleu and all(c.unit == "0-100" and (c.scale == 100 or not c.ours) for c in caption_bleu)
    nmt_bleu = [
        c for n in ("luong", "luong-attention", "bahdanau") for c in TABLES.get(n).columns if "BLEU" in c.header
    ]
    assert nmt_bleu and all(c.unit == "0-100" and c.scale == 1 for c in nmt_bleu)


def test_eval_summary_prints_one_metric_per_line_and_facts_whole(capsys: pytest.CaptureFixture[str]) -> None:
    from attn_cli import cli

    signature = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.0|" * 2
    cli._print_summary("caption x on test", {"bleu4": 0.25, "cider": 1.5}, {"signature": signature}, {"bleu4": "(0-1)"})
    out = capsys.readouterr().out
    assert "bleu4 (0-100)" in out and "25" in out and signature in out.replace("\n", "")
    assert "…" not in out


def test_a_family_name_prints_its_tables() -> None:
    code, out, _ = run_cli("table", "nmt", "--format", "markdown")
    assert code == 0
    for name in ("luong", "luong-attention", "bahdanau"):
        assert TABLES.get(name).title in out
    assert TABLES.get("xu").title not in out


def test_version() -> None:
    from attn_cli import __version__

    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"attn {__version__}"


def test_a_users_own_recipes_directory_is_searched_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "recipes" / "nmt" / "mine.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("base: tiny/seq2seq\ndescription: my own\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATTN_RECIPES", raising=False)
    rows = {r["recipe"]: r for r in names.list_recipes("nmt")}
    assert rows["mine"]["description"] == "my own" and "luong-local-p" in rows
    assert load_recipe("nmt", "mine").model_name == "seq2seq"
