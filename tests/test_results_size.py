"""results/ stays small enough to travel (the GPU machine carries at most 64 MiB of the tracked tree) and to clone:
records keep their facts and small files, larger text is gzipped, views of the predictions are not kept."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

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


def _record(src: Path, dest: Path) -> tuple[list[str], list[str]]:
    dest.mkdir(parents=True, exist_ok=True)
    kept, left_out = records._copy_predictions(src, dest)
    (dest / "result.json").write_text(json.dumps({"predictions": kept}), encoding="utf-8")
    return kept, left_out


def test_small_predictions_are_kept_as_they_are_and_views_of_them_dropped(tmp_path: Path) -> None:
    src = _eval_dir(tmp_path, 3)
    (src / "attention-test-0.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 400)  # over the gzip threshold
    kept, left_out = _record(src, tmp_path / "rec")
    assert kept == ["attention-test-0.png", "predictions.jsonl"] and left_out == []
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == [*kept, "result.json"]
    assert (tmp_path / "rec" / "predictions.jsonl").read_bytes() == (src / "predictions.jsonl").read_bytes()


def test_large_predictions_are_gzipped_deterministically_and_read_back_the_same(tmp_path: Path) -> None:
    src = _eval_dir(tmp_path, 2_000)
    assert (src / "predictions.jsonl").stat().st_size > records.RECORD_GZIP_OVER
    kept, _ = _record(src, tmp_path / "a")
    _record(src, tmp_path / "b")
    packed = (tmp_path / "a" / "predictions.jsonl.gz").read_bytes()
    assert kept == ["predictions.jsonl.gz"] and packed == (tmp_path / "b" / "predictions.jsonl.gz").read_bytes()
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
    kept, left_out = _record(src, tmp_path / "rec")
    size = (src / "predictions.jsonl").stat().st_size
    assert kept == [] and len(left_out) == 1 and left_out[0].startswith(f"predictions.jsonl ({size} bytes; ")
    assert "gzipped; kept in the run)" in left_out[0]
    with pytest.raises(AttnError, match="lists no predictions.jsonl"):
        record_predictions(tmp_path / "rec" / "result.json")


def test_a_large_picture_is_recorded_with_a_palette_and_the_same_bytes_twice(tmp_path: Path) -> None:
    import io

    import numpy as np
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
    kept, _ = records._copy_predictions(src, dest)
    first = (dest / "attention-test-0.png").read_bytes()
    assert sorted(kept) == ["attention-test-0.png", "broken.png"] and len(first) < len(raw.getvalue())
    with Image.open(io.BytesIO(first)) as im:
        assert im.mode == "P" and im.size == (400, 400)
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
