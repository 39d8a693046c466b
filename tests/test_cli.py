"""The CLI's bad-input contract: one line, exit code 2, no traceback, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from attn_cli import records, run
from tests.conftest import ATTN_EXE, run_cli


def one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert pattern in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(generated_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    summary = run.train("nmt", "tiny/luong-global-general", runs_dir=runs, data_dir=generated_data, progress=False)
    return Path(summary["run_dir"])


def test_help_has_examples() -> None:
    for cmd in (
        "prepare",
        "train",
        "eval",
        "evaluate",
        "visualize",
        "table",
        "recipes",
        "record",
        "bench",
        "average",
        "demo",
    ):
        code, out, _ = run_cli(cmd, "--help")
        assert code == 0 and "Example: attn" in out, cmd


def test_unknown_task(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "nmtt", "--recipe", "x")
    one_line_error(code, err, "unknown task 'nmtt' (did you mean 'nmt'?)")


def test_unknown_recipe(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "nmt", "--recipe", "bahdanu")
    one_line_error(code, err, "did you mean 'bahdanau'?")


def test_unknown_recipe_key_and_wrong_type(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "nmt", "--recipe", "tiny/seq2seq", "--set", "model.hiden=3")
    one_line_error(code, err, "did you mean 'model.hidden'?")
    code, _, err = run_cli("train", "nmt", "--recipe", "tiny/seq2seq", "--set", "train.lr=fast")
    one_line_error(code, err, "train.lr expects a number")


def test_missing_prepared_dataset_names_the_command(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "nmt", "--recipe", "tiny/seq2seq")
    one_line_error(code, err, "run `attn prepare toy-reorder` first")
    code, _, err = run_cli("train", "nmt", "--recipe", "luong-global-general")
    one_line_error(code, err, "attn prepare nmt --dataset multi30k")
    assert not any(dirs["runs"].rglob("*")), "a run that could not load its data leaves no run directory"


def test_source_missing_or_wrong(dirs: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = run_cli("prepare", "nmt", "--dataset", "multi30k", "--source", str(tmp_path / "nope"))
    one_line_error(code, err, "--source")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("prepare", "nmt", "--dataset", "multi30k", "--source", str(tmp_path / "empty"))
    one_line_error(code, err, "has no train.de.gz")
    assert not any(p.name.startswith("multi30k") for p in dirs["data"].iterdir())


def test_offline_download_names_source(dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code, _, err = run_cli("prepare", "nmt", "--dataset", "multi30k")
    one_line_error(code, err, "pass --source DIR")


def test_downloads_are_checksum_verified(tmp_path: Path) -> None:
    """A download whose bytes do not hash to the recorded sha256 is an error and leaves nothing behind;
    one that does is kept and not fetched again."""
    import hashlib

    from attn_cli.errors import AttnError
    from data_prep.base import RawFile, download

    served = tmp_path / "served.zip"
    served.write_bytes(b"not the archive")
    good = hashlib.sha256(served.read_bytes()).hexdigest()
    dest = tmp_path / "raw"
    with pytest.raises(AttnError, match=r"has checksum .*expected 000000000000…; download again"):
        download([RawFile("a.zip", served.as_uri(), "0" * 64)], dest, "demo")
    assert list(dest.iterdir()) == []  # neither the file nor a .part
    download([RawFile("a.zip", served.as_uri(), good)], dest, "demo")
    served.unlink()  # a second call must not need the network: the kept file verifies
    assert download([RawFile("a.zip", served.as_uri(), good)], dest, "demo") == dest


def test_photo_caption_archives_carry_a_sha256() -> None:
    from data_prep.caption_photos import COCO_ZIP, KARPATHY_ZIP
    from data_prep.idx import MNIST_RAW

    for raw in (KARPATHY_ZIP, COCO_ZIP, *MNIST_RAW):
        assert raw.sha256 and len(raw.sha256) == 64 and int(raw.sha256, 16) >= 0, raw


def test_corrupt_and_foreign_checkpoints(
    trained: Path, generated_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTN_DATA", str(generated_data))
    best = trained / "checkpoints" / "best.ckpt"
    truncated = tmp_path / "trunc.ckpt"
    truncated.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    code, _, err = run_cli("eval", "nmt", "--run", str(trained), "--checkpoint", str(truncated))
    one_line_error(code, err, "corrupt or truncated")
    import torch

    foreign = tmp_path / "foreign.ckpt"
    ckpt = torch.load(best, weights_only=False)
    ckpt["attn"]["task"] = "vision"
    torch.save(ckpt, foreign)
    code, _, err = run_cli("eval", "nmt", "--run", str(trained), "--checkpoint", str(foreign))
    one_line_error(code, err, "is of task 'vision', not 'nmt'")
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, plain)
    code, _, err = run_cli("eval", "nmt", "--run", str(trained), "--checkpoint", str(plain))
    one_line_error(code, err, "not an attn checkpoint")


def test_resume_finished_or_missing(
    trained: Path, generated_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTN_DATA", str(generated_data))
    code, _, err = run_cli("train", "nmt", "--resume", str(trained))
    one_line_error(code, err, "already finished")
    code, _, err = run_cli("train", "nmt", "--resume", str(tmp_path / "gone"))
    one_line_error(code, err, "does not exist")


def test_devices_unavailable(dirs: dict[str, Path], generated_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("ATTN_DATA", str(generated_data))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli("train", "nmt", "--recipe", "tiny/seq2seq", "--accelerator", "gpu", "--devices", "2")
    one_line_error(code, err, "none is available")
    assert not any(dirs["runs"].rglob("*"))


def test_empty_predictions_file(
    trained: Path, generated_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTN_DATA", str(generated_data))
    empty = tmp_path / "predictions.jsonl"
    empty.write_text("", encoding="utf-8")
    code, _, err = run_cli("eval", "nmt", "--run", str(trained), "--from-predictions", str(empty))
    one_line_error(code, err, "is empty")


def test_rescore_from_predictions_matches(trained: Path, generated_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTN_DATA", str(generated_data))
    result = run.evaluate("nmt", trained, data_dir=generated_data, progress=False)
    again = run.rescore("nmt", trained, trained / "eval" / "test" / "predictions.jsonl")
    assert again == result["metrics"]
    # the test loop's batches are timed apart from the whole evaluation (checkpoint load, scoring, writing)
    assert 0 < result["predict_wall_s"] < result["eval_wall_s"]


def test_record_and_table(trained: Path, generated_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run.evaluate("nmt", trained, data_dir=generated_data, progress=False)
    path = records.record("nmt", trained, results_dir=tmp_path / "results")
    rec = json.loads(path.read_text())
    for key in (
        "task",
        "dataset",
        "split",
        "recipe",
        "metrics",
        "commands",
        "git_sha",
        "hardware",
        "train_wall_s",
        "seed",
        "predictions",
    ):
        assert key in rec, key
    assert rec["metrics"]["bleu"]["unit"].startswith("BLEU")
    # the budget the tables show and compare: updates of a batch, and the training process's CPU seconds
    assert rec["budget"]["batch_size"] == yaml.safe_load((trained / "recipe.yaml").read_text())["train"]["batch_size"]
    assert rec["train_cpu_s"] > 0 and rec["steps"] > 0
    listed = set(rec["predictions"]) & {"predictions.jsonl", "predictions.jsonl.gz"}  # gzipped over 4 kB
    assert len(listed) == 1 and not (path.parent / "hyp.txt").exists()  # hyp.txt: a view of it
    # a validation record sits beside the test record, it does not overwrite it
    run.evaluate("nmt", trained, split="val", data_dir=generated_data, progress=False)
    val = records.record("nmt", trained, split="val", results_dir=tmp_path / "results")
    assert val.parent.name == path.parent.name + "-val" and path.is_file()
    assert json.loads(val.read_text())["split"] == "val"
    # --name makes another row of the same run (e.g. after unk replacement), looked up by that name
    from attn_cli.tables.base import load_results

    named = records.record("nmt", trained, results_dir=tmp_path / "results", name="mine+unk", note="3 updates")
    assert named.parent.name == "mine+unk" and json.loads(named.read_text())["recipe"] == rec["recipe"]
    assert json.loads(named.read_text())["note"] == "3 updates" and "note" not in rec  # why it differs, if said
    keys = {k[2:] for k in load_results(tmp_path / "results")}
    assert {(rec["recipe"], "test"), (rec["recipe"], "val"), ("mine+unk", "test")} <= keys
    # two records claiming the same row are refused, not silently shadowed
    clash = tmp_path / "results" / "nmt" / "copy" / "result.json"
    clash.parent.mkdir(parents=True)
    clash.write_text(path.read_text())
    code, _, err = run_cli("--results-dir", str(tmp_path / "results"), "table", "luong")
    one_line_error(code, err, "both record nmt/")


def test_record_gzips_large_predictions_and_names_what_it_leaves_out(
    trained: Path, generated_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from attn_cli.io import read_jsonl
    from attn_cli.tables.base import record_predictions

    run.evaluate("nmt", trained, data_dir=generated_data, progress=False)
    preds = trained / "eval" / "test" / "predictions.jsonl"
    monkeypatch.setattr(records, "RECORD_GZIP_OVER", 100)  # predictions.jsonl is now "large"
    path = records.record("nmt", trained, results_dir=tmp_path / "results")
    rec = json.loads(path.read_text())
    assert "predictions.jsonl.gz" in rec["predictions"] and "predictions.jsonl" not in rec["predictions"]
    assert rec["prediction_floats"] == "float32"  # the nll are float32 values, kept in their shortest form
    assert record_predictions(path) == read_jsonl(preds)  # and cast back exactly
    assert run.rescore("nmt", trained, path.parent / "predictions.jsonl.gz") == run.rescore("nmt", trained, preds)
    monkeypatch.setattr(records, "RECORD_FILE_LIMIT", 10)  # nothing fits, even gzipped
    rec = json.loads(records.record("nmt", trained, results_dir=tmp_path / "r2").read_text())
    assert rec["predictions"] == [] and any(x.startswith("predictions.jsonl (") for x in rec["predictions_left_out"])


def test_record_refuses_a_run_of_uncommitted_code_unless_allowed(
    trained: Path, generated_data: Path, tmp_path: Path
) -> None:
    import shutil

    run.evaluate("nmt", trained, data_dir=generated_data, progress=False)
    dirty = tmp_path / "run"
    shutil.copytree(trained, dirty)
    info = json.loads((dirty / "run.json").read_text())
    info["segments"][0]["git_sha"] = "0123abcd-dirty"  # as `attn train` writes it from a tree with local edits
    (dirty / "run.json").write_text(json.dumps(info))
    results = tmp_path / "results"
    code, _, err = run_cli("--results-dir", str(results), "record", "nmt", "--run", str(dirty))
    one_line_error(code, err, "uncommitted code (git sha 0123abcd-dirty)")
    assert "--allow-dirty" in err and not results.exists()
    code, _, err = run_cli("--results-dir", str(results), "record", "nmt", "--run", str(dirty), "--allow-dirty")
    assert code == 0, err
    assert json.loads(next(results.rglob("result.json")).read_text())["git_sha"].endswith("-dirty")


def test_console_script_exit_code(tmp_path: Path) -> None:
    exe = ATTN_EXE
    env = {**os.environ, "ATTN_DATA": str(tmp_path)}
    proc = subprocess.run(
        [exe, "train", "nmt", "--recipe", "tiny/seq2seq"], capture_output=True, text=True, env=env, timeout=120
    )
    one_line_error(proc.returncode, proc.stderr, "attn prepare toy-reorder")


def test_checkpoint_averaging(trained: Path, tmp_path: Path) -> None:
    import torch

    best, last = trained / "checkpoints" / "best.ckpt", trained / "checkpoints" / "last.ckpt"
    a = torch.load(best, weights_only=False)
    shifted = dict(a)
    shifted["state_dict"] = {k: v + 2 if v.is_floating_point() else v for k, v in a["state_dict"].items()}
    other = tmp_path / "shifted.ckpt"
    torch.save(shifted, other)
    out = records.average_checkpoints([best, other], tmp_path / "avg.ckpt")
    avg = torch.load(out, weights_only=False)["state_dict"]
    for k, v in a["state_dict"].items():
        if v.is_floating_point():
            torch.testing.assert_close(avg[k], v + 1)
    code, _, err = run_cli("average", str(best), "--out", str(tmp_path / "x.ckpt"))
    one_line_error(code, err, "at least two checkpoints")
    assert last.is_file()


def test_eval_records_a_named_row(trained: Path, generated_data: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    base = ["--data-dir", str(generated_data), "--results-dir", str(results)]
    code, _, err = run_cli(*base, "eval", "nmt", "--run", str(trained), "--name", "x+unk")
    one_line_error(code, err, "--name names a record; add --record")
    code, out, err = run_cli(
        *base, "eval", "nmt", "--run", str(trained), "--set", "eval.unk_replace=true", "--record", "--name", "x+unk"
    )
    assert code == 0, err
    rec = json.loads(next(results.rglob("x+unk/result.json")).read_text())
    assert rec["name"] == "x+unk" and rec["eval"]["unk_replace"] is True
    from attn_cli.io import read_curve

    curve = read_curve(next(results.rglob("x+unk/result.json")).parent)  # .csv, or .csv.gz over 4 kB
    assert "step" in curve[0] and len(curve) >= 1  # the run's logged curve travels with the record


def test_a_validation_record_shares_its_test_records_curve(trained: Path, generated_data: Path, tmp_path: Path) -> None:
    """A -val record of the run its test record scored keeps no second copy of the learning curve or the recipe
    (results/ < 30 MB): it names the test record (``learning_curve_of``, ``recipe_of``) and reads its curve and
    recipe; re-recording the test row (here from another run) first hands the validation record its own copies back."""
    import shutil

    from attn_cli.io import read_curve, record_file

    results = tmp_path / "results"
    base = ["--data-dir", str(generated_data), "--results-dir", str(results)]
    for split in ("test", "val"):
        code, _, err = run_cli(*base, "eval", "nmt", "--run", str(trained), "--split", split, "--record", "--name", "r")
        assert code == 0, err
    test_dir, val_dir = next(results.rglob("r/result.json")).parent, next(results.rglob("r-val/result.json")).parent
    curve = read_curve(test_dir)
    assert curve and not list(val_dir.glob("learning_curve.csv*"))
    assert json.loads((val_dir / "result.json").read_text())["learning_curve_of"] == "r"
    assert read_curve(val_dir) == curve
    recipe = (test_dir / "recipe.yaml").read_bytes()
    assert (
        not (val_dir / "recipe.yaml").exists() and json.loads((val_dir / "result.json").read_text())["recipe_of"] == "r"
    )
    assert record_file(val_dir, "recipe.yaml") == test_dir / "recipe.yaml" == record_file(test_dir, "recipe.yaml")
    other = tmp_path / "copy-of-run"  # another run directory: the test row re-recorded from it
    shutil.copytree(trained, other)
    (other / "logs" / "metrics.csv").write_text("step,train/loss\n0,9.5\n")
    code, _, err = run_cli(*base, "eval", "nmt", "--run", str(other), "--record", "--name", "r")
    assert code == 0, err
    assert read_curve(test_dir) == [{"step": "0", "train/loss": "9.5"}]
    assert read_curve(val_dir) == curve and "learning_curve_of" not in json.loads((val_dir / "result.json").read_text())
    assert (val_dir / "recipe.yaml").read_bytes() == recipe and "recipe_of" not in json.loads(
        (val_dir / "result.json").read_text()
    )


def test_another_scoring_of_a_run_shares_its_plain_records_curve(
    trained: Path, generated_data: Path, tmp_path: Path
) -> None:
    """``--name r+how`` (Monte-Carlo, unk replacement: the same run scored another way) keeps no second copy of the
    curve that the record ``r`` of the same run holds; a ``+`` record of another run keeps its own."""
    import shutil

    from attn_cli.io import read_curve
    from attn_cli.records import curve_sibling

    assert [curve_sibling(f, s) for f, s in [("r+mc10", "test"), ("r+mc10-val", "val"), ("r-val", "val")]] == ["r"] * 3
    assert curve_sibling("r", "test") is None and curve_sibling("+x", "test") is None
    results = tmp_path / "results"
    base = ["--data-dir", str(generated_data), "--results-dir", str(results)]
    for name in ("r", "r+unk"):
        code, _, err = run_cli(*base, "eval", "nmt", "--run", str(trained), "--record", "--name", name)
        assert code == 0, err
    plain, other = next(results.rglob("r/result.json")).parent, next(results.rglob("r+unk/result.json")).parent
    assert json.loads((other / "result.json").read_text())["learning_curve_of"] == "r"
    assert not list(other.glob("learning_curve.csv*")) and read_curve(other) == read_curve(plain)
    copy = tmp_path / "copy-of-run"  # another run: its "+" record is not the same run's, so it keeps its curve
    shutil.copytree(trained, copy)
    code, _, err = run_cli(*base, "eval", "nmt", "--run", str(copy), "--record", "--name", "r+beam")
    assert code == 0, err
    beam = next(results.rglob("r+beam/result.json")).parent
    assert "learning_curve_of" not in json.loads((beam / "result.json").read_text()) and read_curve(beam)


def test_ensemble_perplexity_is_the_ensembles(trained: Path, generated_data: Path, tmp_path: Path) -> None:
    """The ensemble's perplexity comes from its averaged probabilities, not from the first member alone."""
    import math

    import torch

    best = trained / "checkpoints" / "best.ckpt"
    ckpt = torch.load(best, weights_only=False)
    gen = torch.Generator().manual_seed(3)
    ckpt["state_dict"] = {
        k: v + 0.05 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
        for k, v in ckpt["state_dict"].items()
    }
    other = tmp_path / "other.ckpt"
    torch.save(ckpt, other)

    def ppl(**kw: object) -> float:
        return run.evaluate("nmt", trained, data_dir=generated_data, progress=False, **kw)["metrics"]["ppl"]

    pa, pb = ppl(), ppl(checkpoint=other)
    pe = ppl(overrides=[f"eval.ensemble=[{other}]"])
    assert pe != pytest.approx(pa) and pe != pytest.approx(pb)
    assert math.log(pe) <= (math.log(pa) + math.log(pb)) / 2 + 1e-6  # Jensen: mixing never loses on average


def test_eval_without_perplexity_decodes_the_same(trained: Path, generated_data: Path) -> None:
    """eval.perplexity=false skips the teacher-forced pass only: same outputs, no ppl metric."""
    full = run.evaluate("nmt", trained, data_dir=generated_data, progress=False)
    hyp_full = (trained / "eval" / "test" / "hyp.txt").read_text(encoding="utf-8")
    fast = run.evaluate("nmt", trained, data_dir=generated_data, progress=False, overrides=["eval.perplexity=false"])
    assert "ppl" in full["metrics"] and "ppl" not in fast["metrics"]
    assert fast["metrics"]["bleu"] == full["metrics"]["bleu"]
    assert (trained / "eval" / "test" / "hyp.txt").read_text(encoding="utf-8") == hyp_full


def test_named_evaluations_of_one_run_do_not_share_a_folder(
    trained: Path, generated_data: Path, tmp_path: Path
) -> None:
    """Two named evaluations of one run (run side by side in scripts) each write and record their own output."""
    results = tmp_path / "results"
    base = ["--data-dir", str(generated_data), "--results-dir", str(results)]
    for name, flags in (("plain", []), ("plain+unk", ["--set", "eval.unk_replace=true"])):
        code, _, err = run_cli(*base, "eval", "nmt", "--run", str(trained), *flags, "--record", "--name", name)
        assert code == 0, err
    assert (trained / "eval" / "test@plain" / "metrics.json").is_file()
    assert (trained / "eval" / "test@plain+unk" / "metrics.json").is_file()
    # recording the first again after the second ran still takes the first's own evaluation
    assert records.record("nmt", trained, results_dir=results, name="plain").is_file()
    rec = {n: json.loads(next(results.rglob(f"{n}/result.json")).read_text()) for n in ("plain", "plain+unk")}
    assert rec["plain"]["eval"]["unk_replace"] is False and rec["plain+unk"]["eval"]["unk_replace"] is True
