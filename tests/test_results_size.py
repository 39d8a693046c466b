"""results/ stays small enough to travel (the GPU machine carries at most 64 MiB of the tracked tree) and to clone:
records keep their facts and small files, larger text is gzipped, float32 values keep their shortest form (read back
exactly), views of the predictions are not kept; and it takes under 30 MB on disk, where a small file costs a block."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attn_cli import records
from attn_cli.errors import AttnError
from attn_cli.tables.base import record_predictions

REPO = Path(__file__).resolve().parent.parent
LIMIT = 30_000_000  # bytes; well above what the records hold now, leaving room for new ones


def _result_files() -> list[Path]:
    """The tracked files under results/; every file there in a copy of the tree without .git (a device machine)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "results"], cwd=REPO, capture_output=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return [p for p in (REPO / "results").rglob("*") if p.is_file()]
    return [REPO / name for name in listed.decode().split("\0") if name and (REPO / name).is_file()]


def test_results_stay_under_30_mb() -> None:
    files = _result_files()
    total = sum(p.stat().st_size for p in files)
    biggest = sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:5]
    largest = ", ".join(f"{p.relative_to(REPO)} ({p.stat().st_size} B)" for p in biggest)
    assert files
    assert total < LIMIT, f"results/ holds {total / 1e6:.1f} MB (limit {LIMIT / 1e6:.0f} MB); largest: {largest}"


def _largest_folders(sizes: dict[Path, int], n: int = 5) -> str:
    """The ``n`` folders results/<task>/<dataset> taking the most of ``sizes`` (bytes per file or folder)."""
    folders: dict[str, int] = {}
    for path, size in sizes.items():
        where = "/".join((path if path.is_dir() else path.parent).relative_to(REPO).parts[:3])
        folders[where] = folders.get(where, 0) + size
    top = sorted(folders.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return ", ".join(f"{name}/ ({size / 1e6:.1f} MB)" for name, size in top)


def test_results_take_under_30_mb_on_disk() -> None:
    """What `du -s results` reads on a clone: each file takes whole blocks (4 kB on ext4), so a thousand small files
    take 4 MB whatever they hold, and each folder a block more. The tracked files and the folders holding them,
    in allocated blocks (``st_blocks``, 512-byte units)."""
    files = _result_files()
    folders = {parent for p in files for parent in p.relative_to(REPO).parents if parent != Path(".")}
    allocated = {p: p.stat().st_blocks * 512 for p in [*files, *(REPO / f for f in folders)]}
    total = sum(allocated.values())
    assert files and REPO / "results" in allocated and total > sum(p.stat().st_size for p in files)
    assert total < LIMIT, (
        f"results/ takes {total / 1e6:.1f} MB on disk (limit {LIMIT / 1e6:.0f} MB; a small file costs a whole "
        f"block); largest folders: {_largest_folders(allocated)}"
    )


def _eval_dir(tmp_path: Path, n: int) -> Path:
    """An evaluation folder as `attn eval nmt` writes it, with ``n`` prediction rows."""
    src = tmp_path / "eval" / "test"
    src.mkdir(parents=True)
    rows = [{"id": i, "hyp": f"a dog runs {i}", "ref": f"a dog is running {i}", "nll": i / 7} for i in range(n)]
    (src / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (src / "hyp.txt").write_text("".join(r["hyp"] + "\n" for r in rows), encoding="utf-8")
    (src / "ref.txt").write_text("".join(r["ref"] + "\n" for r in rows), encoding="utf-8")
    (src / "metrics.json").write_text("{}", encoding="utf-8")
    return src


def _record(src: Path, dest: Path) -> tuple[dict[str, Any], Path]:
    """Copy ``src``'s predictions into ``dest`` with a result.json of the entries `attn record` writes for them."""
    dest.mkdir(parents=True, exist_ok=True)
    entries = records._copy_predictions(src, dest)
    (dest / "result.json").write_text(json.dumps(entries), encoding="utf-8")
    return entries, dest


def test_small_predictions_are_kept_as_they_are_and_views_of_them_dropped(tmp_path: Path) -> None:
    src = _eval_dir(tmp_path, 3)
    (src / "attention-test-0.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 400)  # over the gzip threshold
    entries, _ = _record(src, tmp_path / "rec")
    assert entries == {"predictions": ["attention-test-0.png", "predictions.jsonl"]}  # i / 7: not float32 values
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == [*entries["predictions"], "result.json"]
    assert (tmp_path / "rec" / "predictions.jsonl").read_bytes() == (src / "predictions.jsonl").read_bytes()


def test_large_predictions_are_gzipped_deterministically_and_read_back_the_same(tmp_path: Path) -> None:
    src = _eval_dir(tmp_path, 2_000)
    assert (src / "predictions.jsonl").stat().st_size > records.RECORD_GZIP_OVER
    entries, _ = _record(src, tmp_path / "a")
    _record(src, tmp_path / "b")
    packed = (tmp_path / "a" / "predictions.jsonl.gz").read_bytes()
    assert (
        entries == {"predictions": ["predictions.jsonl.gz"]}
        and packed == (tmp_path / "b" / "predictions.jsonl.gz").read_bytes()
    )
    assert gzip.decompress(packed) == (src / "predictions.jsonl").read_bytes()
    rows = record_predictions(tmp_path / "a" / "result.json")
    assert rows == [json.loads(line) for line in (src / "predictions.jsonl").read_text().splitlines()]


def test_re_recording_leaves_one_version_of_each_file(tmp_path: Path) -> None:
    small, large = _eval_dir(tmp_path / "small", 3), _eval_dir(tmp_path / "large", 2_000)
    dest = tmp_path / "rec"
    _record(small, dest)
    (dest / "hyp.txt").write_text("an older record's view\n", encoding="utf-8")
    _record(large, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["predictions.jsonl.gz", "result.json"]
    _record(small, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["predictions.jsonl", "result.json"]


def test_predictions_too_big_even_gzipped_are_named_and_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _eval_dir(tmp_path, 2_000)
    monkeypatch.setattr(records, "RECORD_FILE_LIMIT", 100)
    entries, _ = _record(src, tmp_path / "rec")
    size = (src / "predictions.jsonl").stat().st_size
    left_out = entries["predictions_left_out"]
    assert (
        entries["predictions"] == []
        and len(left_out) == 1
        and left_out[0].startswith(f"predictions.jsonl ({size} bytes; ")
    )
    assert "gzipped; kept in the run)" in left_out[0]
    with pytest.raises(AttnError, match="lists no predictions.jsonl"):
        record_predictions(tmp_path / "rec" / "result.json")


def test_a_large_picture_is_recorded_with_a_palette_and_the_same_bytes_twice(tmp_path: Path) -> None:
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = (rng.random((400, 400, 3)) * 255).astype("uint8")  # noise: compresses badly, well over the threshold
    raw = io.BytesIO()
    Image.fromarray(pixels).save(raw, "PNG")
    assert len(raw.getvalue()) > records.RECORD_PNG_OVER
    src, dest = tmp_path / "eval", tmp_path / "record"
    src.mkdir()
    dest.mkdir()
    (src / "attention-test-0.png").write_bytes(raw.getvalue())
    (src / "broken.png").write_bytes(b"\x89PNG" + bytes(200_000))  # not a picture PIL reads: kept as it is
    kept = records._copy_predictions(src, dest)["predictions"]
    first = (dest / "attention-test-0.png").read_bytes()
    assert sorted(kept) == ["attention-test-0.png", "broken.png"] and len(first) < len(raw.getvalue())
    with Image.open(io.BytesIO(first)) as im:
        # noise stays over RECORD_PNG_LARGE with 256 colours, so it gets 64
        assert im.mode == "P" and im.size == (400, 400) and len(im.getcolors(256) or []) <= 64
    # a smooth picture whose 256-colour form is under RECORD_PNG_LARGE keeps its 256 colours
    ramp = np.tile(np.arange(256, dtype="uint8"), (300, 2))  # (300, 512): every grey level
    smooth = io.BytesIO()
    Image.fromarray(np.stack([ramp, ramp[:, ::-1], ramp], axis=-1)).save(smooth, "PNG", compress_level=0)
    assert len(smooth.getvalue()) > records.RECORD_PNG_OVER
    with Image.open(io.BytesIO(records.palette_png(smooth.getvalue()))) as im:
        assert im.mode == "P" and len(im.getcolors(256) or []) > 64
    assert (dest / "broken.png").read_bytes() == (src / "broken.png").read_bytes()
    records._copy_predictions(src, dest)
    assert (dest / "attention-test-0.png").read_bytes() == first  # deterministic


def test_a_long_learning_curve_is_recorded_gzipped_and_read_back_either_way(tmp_path: Path) -> None:
    from attn_cli.io import read_curve

    logs, dest = tmp_path / "logs", tmp_path / "record"
    logs.mkdir()
    dest.mkdir()
    (logs / "metrics.csv").write_text("step,train/loss\n" + "".join(f"{i},{1 / (i + 1):.9f}\n" for i in range(6000)))
    records._copy_learning_curve(logs, dest)
    assert not (dest / "learning_curve.csv").exists() and (dest / "learning_curve.csv.gz").is_file()
    rows = read_curve(dest)
    assert len(rows) == 6000 and rows[5]["step"] == "5" and rows[5]["train/loss"] == f"{1 / 6:.9f}"
    first = (dest / "learning_curve.csv.gz").read_bytes()
    records._copy_learning_curve(logs, dest)
    assert (dest / "learning_curve.csv.gz").read_bytes() == first  # deterministic
    (logs / "metrics.csv").write_text("step,train/loss\n0,2.5\n")  # a short curve: plain, the .gz removed
    records._copy_learning_curve(logs, dest)
    assert not (dest / "learning_curve.csv.gz").exists() and read_curve(dest) == [{"step": "0", "train/loss": "2.5"}]
    assert read_curve(tmp_path) == []


def test_a_real_records_float32_predictions_read_back_as_evaluation_wrote_them(tmp_path: Path) -> None:
    """A DRAW record's per-image bounds are float32 values that evaluation wrote as float64 reprs (17 digits);
    the record keeps their shortest float32 form. Writing the evaluation's file again from what the record reads
    back, `attn record` and the converter both give the committed bytes, and reading gives the same rows."""
    real = REPO / "results" / "vision" / "mnist" / "draw-gen@25000steps" / "result.json"
    info = json.loads(real.read_text(encoding="utf-8"))
    assert info["prediction_floats"] == "float32"
    rows = record_predictions(real)
    written = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)  # as write_jsonl wrote it
    assert len(rows) == 10_000 and all(isinstance(r["nll"], float) for r in rows)
    committed = (real.parent / "predictions.jsonl.gz").read_bytes()
    shortened = [json.loads(line) for line in gzip.decompress(committed).decode().splitlines()]
    assert sum(a["nll"] != b["nll"] for a, b in zip(shortened, rows)) > 9_000  # the cast is what restores them
    assert len(gzip.compress(written.encode(), mtime=0)) > 1.4 * len(committed)

    src = tmp_path / "eval"
    src.mkdir()
    (src / "predictions.jsonl").write_text(written, encoding="utf-8")
    entries = records._copy_predictions(src, tmp_path / "recorded")
    assert entries == {"predictions": ["predictions.jsonl.gz"], "prediction_floats": "float32"}
    assert (tmp_path / "recorded" / "predictions.jsonl.gz").read_bytes() == committed

    old = tmp_path / "old"  # the record as it was before the conversion
    old.mkdir()
    (old / "predictions.jsonl.gz").write_bytes(gzip.compress(written.encode(), mtime=0))
    before = {k: v for k, v in info.items() if k != "prediction_floats"}
    (old / "result.json").write_text(json.dumps(before, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert record_predictions(old / "result.json") == rows
    assert records.float32_predictions(old / "result.json") == (
        "predictions.jsonl.gz",
        len(gzip.compress(written.encode(), mtime=0)),
        len(committed),
    )
    assert (old / "predictions.jsonl.gz").read_bytes() == committed
    assert (old / "result.json").read_text(encoding="utf-8") == real.read_text(encoding="utf-8")
    assert record_predictions(old / "result.json") == rows
    assert records.float32_predictions(old / "result.json") is None  # converted once


def test_predictions_with_a_float_that_is_not_float32_are_recorded_as_they_are(tmp_path: Path) -> None:
    """One float64 value (or a rounded ``0.0051``, as the memory family writes) and the whole file keeps its
    reprs: a float32 cast on reading would change that value."""
    from attn_cli.io import float32_jsonl

    src = tmp_path / "eval"
    src.mkdir()
    rows = [{"id": i, "loss": float(np.float32(1 / (i + 3)))} for i in range(400)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    assert float32_jsonl(text) is not None
    for odd in (1 / 3, 0.0051, float("nan")):
        (src / "predictions.jsonl").write_text(text + json.dumps({"id": 400, "loss": odd}) + "\n", encoding="utf-8")
        entries = records._copy_predictions(src, tmp_path / "rec")
        assert entries == {"predictions": ["predictions.jsonl.gz"]}
        assert (
            gzip.decompress((tmp_path / "rec" / "predictions.jsonl.gz").read_bytes())
            == (src / "predictions.jsonl").read_bytes()
        )
    assert float32_jsonl('{"id": 0, "pred": 3}\n') is None  # no float: nothing to shorten, no marker
    assert float32_jsonl('{"id": 0,"loss": 0.5}\n') is None  # not write_jsonl's spacing: would not read back the same
    assert float32_jsonl('{"id": 0, "loss": 0.5}\n\n') is None


def test_a_small_float32_file_is_shortened_and_read_back_exactly_by_rescoring_readers(tmp_path: Path) -> None:
    from attn_cli.io import read_jsonl, read_predictions

    src = tmp_path / "eval"
    src.mkdir()
    values = [float(np.float32(v)) for v in (0.1, -2.5e-9, 3.0e12, 152.0342254638672, -0.0, 7.0)]
    rows = [{"id": i, "nll": v, "parts": [v, {"lx": v / 2}]} for i, v in enumerate(values)]
    (src / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    entries, rec = _record(src, tmp_path / "rec")
    assert entries == {"predictions": ["predictions.jsonl"], "prediction_floats": "float32"}
    assert (rec / "predictions.jsonl").read_text().splitlines()[
        0
    ] == '{"id": 0, "nll": 0.1, "parts": [0.1, {"lx": 0.05}]}'
    assert read_jsonl(rec / "predictions.jsonl")[0]["nll"] == 0.1 != rows[0]["nll"]  # without the marker: not the value
    for read in (read_predictions(rec / "predictions.jsonl"), record_predictions(rec / "result.json")):
        assert read == rows and [json.dumps(r) for r in read] == [json.dumps(r) for r in rows]
    assert read_predictions(src / "predictions.jsonl") == rows  # an evaluation's own file: no result.json, as it is


@pytest.mark.parametrize("key", ["learning_curve_of", "recipe_of"])
def test_a_shared_learning_curve_names_a_record_of_the_same_run_that_holds_one(key: str) -> None:
    # a -val / -train record keeps no copy of its test record's curve or recipe, nor a `<label>+<how>` record (another
    # scoring of the run) its plain record's (records.curve_sibling, records.shared_file, scripts/shrink_results.py)
    from attn_cli.io import SHARED, read_curve, record_file
    from attn_cli.records import curve_sibling

    sharing = [p for p in _result_files() if p.name == "result.json" and key in json.loads(p.read_text())]
    assert sharing  # the 64 pick-by-validation and training-split records of 2026-12-07 (their recipes: 2026-12-08)
    for path in sharing:
        info = json.loads(path.read_text())
        sibling = path.parent.parent / info[key]
        assert info[key] == curve_sibling(path.parent.name, info["split"]), path
        assert json.loads((sibling / "result.json").read_text())["run_dir"] == info["run_dir"], path
        assert not any((path.parent / name).exists() for name in SHARED[key]), path
        if key == "recipe_of":
            assert (
                record_file(path.parent, "recipe.yaml") == sibling / "recipe.yaml"
                and (sibling / "recipe.yaml").is_file()
            )
        else:
            assert read_curve(path.parent), path


def test_leave_out_drops_the_predictions_of_a_record_no_table_reads_and_refuses_a_table_row(tmp_path: Path) -> None:
    """scripts/shrink_results.py --leave-out: a record outside the tables keeps its metrics and names the file it no
    longer holds (with the commit that does); a record a table reads keeps its predictions (exit with a message)."""
    import importlib.util
    import shutil

    spec = importlib.util.spec_from_file_location("shrink_results", REPO / "scripts" / "shrink_results.py")
    assert spec and spec.loader
    shrink = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shrink)
    mnist = tmp_path / "results" / "vision" / "mnist"
    row, other = mnist / "ram-28-6g", mnist / "ram-28-6g@diagnostic"  # a table row; a copy no table names
    shutil.copytree(REPO / "results" / "vision" / "mnist" / "ram-28-6g", row)
    shutil.copytree(row, other)
    before = {**json.loads((row / "result.json").read_text()), "name": "ram-28-6g@diagnostic"}
    (other / "result.json").write_text(json.dumps(before))
    with pytest.raises(SystemExit, match="is read by a table"):
        shrink.leave_out(row, tmp_path / "results", commit="abc1234")
    assert json.loads((row / "result.json").read_text())["predictions"] == ["predictions.jsonl.gz"]
    shrink.leave_out(other, tmp_path / "results", commit="abc1234")
    after = json.loads((other / "result.json").read_text())
    assert (
        after["predictions"] == []
        and after["metrics"] == before["metrics"]
        and (row / "predictions.jsonl.gz").is_file()
    )
    assert "in commit abc1234" in after["predictions_left_out"][-1] and not list(other.glob("predictions*"))
