"""Using a trained run from the command line (issue 19): translate, eval on any file pair, caption,
classify, runs, show, and METEOR's fallback without Java. Each command runs on a tiny trained run;
every bad input gives one line and exit code 2."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attn_cli import run
from attn_cli.io import read_json
from tests.conftest import ATTN_EXE, run_cli


def _train(task: str, recipe: str, data: Path, runs: Path, *overrides: str) -> Path:
    summary = run.train(
        task, recipe, runs_dir=runs, data_dir=data, progress=False, overrides=["train.threads=1", *overrides]
    )
    return Path(summary["run_dir"])


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("use-runs")


@pytest.fixture(scope="module")
def nmt_run(generated_data: Path, runs_root: Path) -> Path:
    # long enough to emit words (six steps give empty translations, which would compare trivially)
    return _train("nmt", "tiny/luong-global-general", generated_data, runs_root, "train.max_steps=60")


@pytest.fixture(scope="module")
def caption_run(generated_data: Path, runs_root: Path) -> Path:
    return _train("caption", "tiny/sat-soft", generated_data, runs_root)


@pytest.fixture(scope="module")
def ram_run(generated_data: Path, runs_root: Path) -> Path:
    return _train("vision", "tiny/ram", generated_data, runs_root)


def _cli(data: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin if stdin is not None else "")
    try:
        return run_cli("--data-dir", str(data), *args)
    finally:
        sys.stdin = old


def _one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def _test_sources(data: Path, n: int = 5) -> list[str]:
    return (data / "toy-reorder" / "test.src").read_text(encoding="utf-8").splitlines()[:n]


# ---------------------------------------------------------------------------------------------
# translate


@pytest.mark.parametrize(("beam", "batch_size"), [(1, 0), (3, 0), (3, 7)])
def test_translate_matches_eval_on_the_test_split(
    generated_data: Path, nmt_run: Path, beam: int, batch_size: int
) -> None:
    """What `attn translate` writes for the test split's source lines is what `attn eval` decodes for
    them: the same preprocessing, vocabulary, search and detokeniser, in batches of any size
    (``--batch-size``; 0: the recipe's data.eval_batch_size)."""
    sources = _test_sources(generated_data, 40)
    last = nmt_run / "checkpoints" / "last.ckpt"  # its best is an early one that says nothing yet
    args = ["translate", "--run", str(nmt_run), "--checkpoint", str(last), "--beam", str(beam)]
    args += ["--batch-size", str(batch_size)]
    code, out, err = _cli(generated_data, *args, stdin="\n".join(sources))
    assert code == 0, err
    result = run.evaluate(
        "nmt", nmt_run, data_dir=generated_data, progress=False, overrides=[f"eval.beam={beam}"], checkpoint=last
    )
    assert result["metrics"]["bleu"] >= 0
    rows = [json.loads(line) for line in (nmt_run / "eval" / "test" / "predictions.jsonl").read_text().splitlines()]
    expected = [r["hyp"] for r in sorted(rows, key=lambda r: r["id"])][: len(sources)]
    assert out.splitlines() == expected
    if beam == 1:  # greedy emits words by now (the tiny model's beam prefers stopping at once)
        assert sum(bool(line) for line in expected) > len(expected) // 2


def test_translate_with_workers_writes_what_one_batch_at_a_time_writes(
    generated_data: Path, nmt_run: Path, monkeypatch: pytest.MonkeyPatch, worker_pools: list[int]
) -> None:
    """`attn translate` searches several batches at once on a CPU (the recipe's eval.workers, 0: one worker per
    thread); the lines are the plain loop's, in input order."""
    from attn_cli import use
    from attn_cli.tasks.base import AttnModule

    sources = _test_sources(generated_data, 40)
    options = use.TranslateOptions(beam=3, batch_size=3, n_best=2)
    translator = use.Translator(nmt_run, generated_data, nmt_run / "checkpoints" / "last.ckpt", options)
    pools = worker_pools
    monkeypatch.setattr(AttnModule, "predict_workers", lambda self, batches: (3, 1))
    with_workers = translator.translate(sources)
    assert pools == [3]
    monkeypatch.setattr(AttnModule, "predict_workers", lambda self, batches: (1, 1))
    plain = translator.translate(sources)
    assert pools == [3] and with_workers == plain and len(plain) == len(sources)
    assert [json.loads(line)["line"] for line in plain] == list(range(1, len(sources) + 1))


def test_translate_with_an_ensemble_matches_eval_with_it(generated_data: Path, nmt_run: Path, tmp_path: Path) -> None:
    """`attn translate --ensemble` averages the members' probabilities exactly as `attn eval --ensemble`."""
    import torch

    sources = _test_sources(generated_data, 40)
    last, member = nmt_run / "checkpoints" / "last.ckpt", tmp_path / "member.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)  # a second model: the run's, perturbed
    gen = torch.Generator().manual_seed(0)
    ckpt["state_dict"] = {k: v + 0.01 * torch.randn(v.shape, generator=gen) for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, member)
    both = ["--run", str(nmt_run), "--checkpoint", str(last), "--beam", "1", "--ensemble", str(member)]
    code, out, err = _cli(generated_data, "translate", *both, stdin="\n".join(sources))
    assert code == 0, err
    code, _, err = _cli(generated_data, "eval", "nmt", *both, "--split", "test")
    assert code == 0, err
    rows = [json.loads(line) for line in (nmt_run / "eval" / "test" / "predictions.jsonl").read_text().splitlines()]
    expected = [r["hyp"] for r in sorted(rows, key=lambda r: r["id"])][: len(sources)]
    assert out.splitlines() == expected
    scores = []  # the member was used: the hypotheses' scores are the average's, not the run's alone
    for args in (both, both[:6]):
        _, out, _ = _cli(generated_data, "translate", *args, "--n-best", "1", stdin="\n".join(sources))
        scores.append([json.loads(line)["nbest"][0]["log_prob"] for line in out.splitlines()])
    assert scores[0] != scores[1]


def test_translate_nbest_scores_and_alignments_as_json_lines(generated_data: Path, nmt_run: Path) -> None:
    sources = _test_sources(generated_data, 3)
    code, out, err = _cli(
        generated_data,
        "translate",
        "--run",
        str(nmt_run),
        "--beam",
        "3",
        "--n-best",
        "2",
        "--alignments",
        stdin="\n".join([sources[0], "", *sources[1:]]),
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert rows[1]["nbest"] == []  # a blank line keeps its place
    for row in (rows[0], rows[2], rows[3]):
        assert 1 <= len(row["nbest"]) <= 2
        scores = [h["score"] for h in row["nbest"]]
        assert scores == sorted(scores, reverse=True)
        best = row["nbest"][0]
        assert len(best["alignment"]) == len(best["tokens"])
        assert all(len(weights) == len(row["src_tokens"]) for weights in best["alignment"])
        matrix = np.array(best["alignment"]).reshape(len(best["tokens"]), len(row["src_tokens"]))
        assert np.allclose(matrix.sum(1), 1.0, atol=1e-3)  # each output token's weights over the real source


def test_translate_file_to_file_with_unknown_words(generated_data: Path, nmt_run: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.txt.gz"
    src.write_bytes(gzip.compress(b"the zebra sees a dog\nthe cat likes the xylophone\n"))
    out = tmp_path / "out.txt"
    code, _, err = _cli(
        generated_data, "translate", "--run", str(nmt_run), "--input", str(src), "--output", str(out), "--unk-replace"
    )
    assert code == 0, err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and "wrote 2 lines" in err


def test_translate_interactive_answers_each_line_before_the_next(generated_data: Path, nmt_run: Path) -> None:
    """A line typed, a line back: the answer arrives while stdin is still open."""
    env = {**os.environ, "ATTN_DATA": str(generated_data)}
    proc = subprocess.Popen(
        [ATTN_EXE, "translate", "--run", str(nmt_run), "--interactive", "--beam", "1"]
        + ["--checkpoint", str(nmt_run / "checkpoints" / "last.ckpt")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(_test_sources(generated_data, 1)[0] + "\n")
        proc.stdin.flush()
        first = proc.stdout.readline()  # blocks until the translation is flushed; stdin stays open
        assert first.strip() and proc.poll() is None, proc.stderr
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        (["--run", "nowhere"], "x\n", ["run nowhere does not exist"]),
        ([], "", ["no input"]),
        (["--input", "missing.txt"], "", ["--input missing.txt does not exist"]),
        (["--n-best", "4", "--beam", "2"], "x\n", ["--n-best 4"]),
        (["--ensemble", "missing.ckpt"], "x\n", ["missing.ckpt"]),
        (["--batch-size", "-1"], "x\n", ["--batch-size must be 0", "got -1"]),
    ],
)
def test_translate_errors(generated_data: Path, nmt_run: Path, args: list[str], stdin: str, words: list[str]) -> None:
    full = ["translate", *(["--run", str(nmt_run)] if "--run" not in args else []), *args]
    code, out, err = _cli(generated_data, *full, stdin=stdin)
    _one_line_error(code, err, *words)
    assert out == ""


def test_translate_refuses_another_tasks_run_and_checkpoint(
    generated_data: Path, nmt_run: Path, caption_run: Path
) -> None:
    code, _, err = _cli(generated_data, "translate", "--run", str(caption_run), stdin="x\n")
    _one_line_error(code, err, "caption run", "attn caption")
    ckpt = caption_run / "checkpoints" / "best.ckpt"
    code, _, err = _cli(generated_data, "translate", "--run", str(nmt_run), "--checkpoint", str(ckpt), stdin="x\n")
    _one_line_error(code, err, "from a caption run")


# ---------------------------------------------------------------------------------------------
# eval nmt --src --ref


def test_eval_any_file_pair_and_record_it(generated_data: Path, nmt_run: Path, tmp_path: Path) -> None:
    """The test split given as plain files (the source gzipped) scores as the test split itself, under its own
    name, and is recorded as its own row."""
    root = generated_data / "toy-reorder"
    src = tmp_path / "other.src.gz"
    src.write_bytes(gzip.compress((root / "test.src").read_bytes()))
    ref = tmp_path / "other.ref"
    shutil.copy(root / "test.ref", ref)
    results = tmp_path / "results"
    code, out, err = _cli(
        generated_data,
        "--results-dir",
        str(results),
        "eval",
        "nmt",
        "--run",
        str(nmt_run),
        "--src",
        str(src),
        "--ref",
        str(ref),
        "--name",
        "year2",
        "--record",
    )
    assert code == 0, err
    mine = read_json(nmt_run / "eval" / "year2" / "metrics.json")
    test = run.evaluate("nmt", nmt_run, data_dir=generated_data, progress=False)
    assert mine["metrics"]["bleu"] == pytest.approx(test["metrics"]["bleu"])
    assert mine["metrics"]["ppl"] == pytest.approx(test["metrics"]["ppl"])
    assert mine["info"]["src"] == str(src)
    recorded = list(results.rglob("result.json"))
    assert len(recorded) == 1 and recorded[0].parent.name.endswith("-year2")
    assert "year2" in out


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--src", "a.de"], ["--src and --ref go together"]),
        (["--src", "MISSING", "--ref", "MISSING"], ["MISSING does not exist"]),
        (["--src", "SRC", "--ref", "SHORT"], ["lines"]),
        (["--src", "SRC", "--ref", "SRC", "--name", "test"], ["--name test is a split"]),
        (["--src", "SRC", "--ref", "SRC", "--split", "val"], ["--split", "give one"]),  # not silently ignored
    ],
)
def test_eval_file_pair_errors(
    generated_data: Path, nmt_run: Path, tmp_path: Path, extra: list[str], words: list[str]
) -> None:
    (tmp_path / "src.txt").write_text("the cat sees a dog\nthe dog sees a cat\n", encoding="utf-8")
    (tmp_path / "short.txt").write_text("one line\n", encoding="utf-8")
    subst = {"SRC": str(tmp_path / "src.txt"), "SHORT": str(tmp_path / "short.txt"), "MISSING": "MISSING"}
    code, _, err = _cli(generated_data, "eval", "nmt", "--run", str(nmt_run), *[subst.get(a, a) for a in extra])
    _one_line_error(code, err, *words)
    assert not (nmt_run / "eval" / "src").exists()


# ---------------------------------------------------------------------------------------------
# caption and classify


def _digit_pngs(data: Path, dataset: str, folder: Path, n: int = 2) -> list[Path]:
    """Images of the dataset's own test split, written out as PNG files, as a user would hand them in."""
    x = np.load(data / dataset / "test_x.npy")[:n]  # (n, C, H, W) uint8
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(x):
        path = folder / f"digit-{i}.png"
        Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(path)
        paths.append(path)
    return paths


def test_caption_images_and_folder_with_attention_pictures(
    generated_data: Path, caption_run: Path, tmp_path: Path
) -> None:
    from attn_cli import use

    pngs = _digit_pngs(generated_data, "glyphs-captions", tmp_path / "in")
    rows = use.caption(caption_run, [tmp_path / "in"], viz=tmp_path / "viz", beam=1)
    assert [r["image"] for r in rows] == [str(p) for p in pngs]
    # the same pixels through the evaluation path give the same greedy caption
    result = run.evaluate("caption", caption_run, data_dir=generated_data, progress=False, overrides=["eval.beam=1"])
    assert result
    preds = [
        json.loads(line) for line in (caption_run / "eval" / "test" / "predictions.jsonl").read_text().splitlines()
    ]
    by_id = {p["id"]: p["hyp"] for p in preds}
    assert [r["caption"] for r in rows] == [by_id[0], by_id[1]]
    for row in rows:
        if row["caption"]:
            assert Path(row["picture"]).stat().st_size > 0
    code, out, err = _cli(generated_data, "caption", "--run", str(caption_run), str(pngs[0]))
    assert code == 0, err
    assert out.startswith(str(pngs[0]) + "\t")


def test_classify_top_k_and_glimpse_picture(generated_data: Path, ram_run: Path, tmp_path: Path) -> None:
    from attn_cli import use

    pngs = _digit_pngs(generated_data, "glyphs", tmp_path / "in", n=3)
    rows = use.classify(ram_run, pngs, top=3, viz=tmp_path / "viz")
    for row in rows:
        probs = [t["p"] for t in row["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
        assert Path(row["picture"]).is_file()
    # top-1 is the model's own prediction on the same pixels
    x = np.load(generated_data / "glyphs" / "test_x.npy")[:3]
    import torch

    from attn_cli.tasks.base import load_checkpoint

    module, _ = load_checkpoint(ram_run / "checkpoints" / "best.ckpt", "vision")
    module.eval()
    with torch.no_grad():
        pred = module.model.predict(torch.from_numpy(x).float() / 255.0, torch.zeros(3, dtype=torch.long))["pred"]
    assert [r["top"][0]["class"] for r in rows] == pred.tolist()
    code, out, err = _cli(generated_data, "classify", "--run", str(ram_run), str(pngs[0]), "--top", "2")
    assert code == 0, err
    assert out.count("(") == 2


def test_image_command_errors(
    generated_data: Path, caption_run: Path, ram_run: Path, nmt_run: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    for command, good, other in (("caption", caption_run, nmt_run), ("classify", ram_run, caption_run)):
        code, _, err = _cli(generated_data, command, "--run", str(good), str(fake))
        _one_line_error(code, err, "is not an image")
        code, _, err = _cli(generated_data, command, "--run", str(good), str(empty))
        _one_line_error(code, err, "holds no images")
        code, _, err = _cli(generated_data, command, "--run", str(good), str(tmp_path / "nope.png"))
        _one_line_error(code, err, "does not exist")
        code, _, err = _cli(generated_data, command, "--run", str(other), str(fake))
        _one_line_error(code, err, "run; `attn " + command + "` needs")
        code, _, err = _cli(generated_data, command, "--run", str(tmp_path / "no-run"), str(fake))
        _one_line_error(code, err, "does not exist")


# ---------------------------------------------------------------------------------------------
# runs and show


def test_runs_lists_status_best_and_age_in_80_columns(nmt_run: Path, runs_root: Path, tmp_path: Path) -> None:
    from attn_cli.runs import RunLock

    killed = runs_root / "nmt" / "stopped" / "x"
    killed.mkdir(parents=True)
    shutil.copy(nmt_run / "recipe.yaml", killed / "recipe.yaml")
    running = runs_root / "nmt" / "busy" / "y"
    running.mkdir(parents=True)
    shutil.copy(nmt_run / "recipe.yaml", running / "recipe.yaml")
    record = runs_root / "nmt" / "results" / "a-record"  # a record keeps a copy of its recipe: no run
    record.mkdir(parents=True)
    shutil.copy(nmt_run / "recipe.yaml", record / "recipe.yaml")
    (record / "result.json").write_text("{}", encoding="utf-8")
    lock = RunLock(running).acquire()
    try:
        env = {**os.environ, "ATTN_RUNS": str(runs_root), "COLUMNS": "80"}
        out = subprocess.run([ATTN_EXE, "runs", "nmt"], capture_output=True, text=True, env=env, check=True).stdout
    finally:
        lock.release()
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in out
    assert "running" in out and "killed" in out and "finished" in out
    assert "val/bleu" in out and "a-record" not in out
    assert "(nmt tiny/luong-global-general)" in out  # the recipe of a run whose path does not name it
    code, out, err = run_cli("--runs-dir", str(runs_root), "runs", "nmtt")
    _one_line_error(code, err, "nmtt")
    shutil.rmtree(killed.parent)
    shutil.rmtree(running.parent)
    shutil.rmtree(record.parent)


def test_show_prints_recipe_metrics_and_paths(nmt_run: Path, generated_data: Path) -> None:
    run.evaluate("nmt", nmt_run, data_dir=generated_data, progress=False)
    code, out, err = run_cli("show", str(nmt_run))
    assert code == 0, err
    assert "finished" in out and "best.ckpt" in out and "eval test" in out
    assert "BLEU" in out or "bleu" in out
    assert "model:" in out  # the resolved recipe
    code, _, err = run_cli("show", str(nmt_run / "nope"))
    _one_line_error(code, err, "does not exist")


# ---------------------------------------------------------------------------------------------
# METEOR without Java


def test_meteor_without_java_is_na_in_table_and_record(
    generated_data: Path, caption_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no `java` on PATH, METEOR is a row "n/a (no Java)" in the printed table and a fact in the record."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))  # no java reachable: the machine without a JRE
    results = tmp_path / "results"
    code, out, err = run_cli(
        "--data-dir",
        str(generated_data),
        "--results-dir",
        str(results),
        "eval",
        "caption",
        "--run",
        str(caption_run),
        "--set",
        "eval.meteor=true",
        "--record",
    )
    assert code == 0, err
    assert "n/a (no Java)" in out
    record = read_json(next(results.rglob("result.json")))
    assert record["info"]["meteor"] == "n/a (no Java)"
    assert "meteor" not in record["metrics"]
    assert "no PTB tokenizer" in record["info"]["scorer"]


def test_new_text_is_cut_as_prepare_cut_the_test_split(tmp_path: Path) -> None:
    """Moses tokens, lowercasing and sentencepiece pieces: the preprocessor rebuilt from the manifest
    (what translate and eval --src use) gives the prepared test split's tokens for its raw lines."""
    import random

    from attn_cli.data.text import TextDataModule

    rng = random.Random(3)
    words = ["The", "cat", "sees", "a", "Dog", "quickly", "and", "the", "bird", "isn't", "here"]
    lines = {
        side: [
            " ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) + rng.choice([".", "!", ", right?"])
            for _ in range(120)
        ]
        for side in ("de", "en")
    }
    files = {}
    for split, part in (("train", slice(0, 80)), ("dev", slice(80, 100)), ("test", slice(100, 120))):
        for side in ("de", "en"):
            files[(split, side)] = tmp_path / f"{split}.{side}"
            files[(split, side)].write_text("\n".join(lines[side][part]) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    out = run.prepare(
        "parallel",
        data_dir=data,
        options={
            "src": str(files[("train", "de")]),
            "tgt": str(files[("train", "en")]),
            "dev_src": str(files[("dev", "de")]),
            "dev_tgt": str(files[("dev", "en")]),
            "test_src": str(files[("test", "de")]),
            "test_tgt": str(files[("test", "en")]),
        },
        overrides=["subword=sentencepiece", "sp_vocab_size=40", "min_freq=1"],
    )
    from attn_cli.config import build
    from attn_cli.data.text import NmtDataConfig

    dm = TextDataModule(build(NmtDataConfig, {"dataset": out.name}, "data"), data, 8, 1)
    prep = dm.preprocessor("src")
    prepared = (out / "test.src").read_text(encoding="utf-8").splitlines()
    assert [" ".join(prep(line)) for line in lines["de"][100:120]] == prepared
    assert any("▁" in line for line in prepared) and all(line == line.lower() for line in prepared)
