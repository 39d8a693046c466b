"""Bring recorded files to the form `attn record` now writes, keeping results/ under its 30 MB: pictures over
``RECORD_PNG_OVER`` with a 256-colour palette (attn_cli.records.palette_png), learning curves and the prediction files a result.json lists over
``RECORD_GZIP_OVER`` gzipped (``learning_curve.csv.gz`` read by attn_cli.io.read_curve; the list renamed), and a record's
predictions whose floats are all float32 values written in their shortest float32 form, the record marked
``"prediction_floats": "float32"`` (attn_cli.records.float32_predictions: lossless, checked row by row before
anything is written). A picture already palette-encoded is left alone. A ``cpu_seconds.json`` written by hand
beside a record (CPU seconds of a record made before ``train_cpu_s`` was recorded) is folded into its result.json
as ``cpu_seconds`` (read by attn_cli.tables.budget), saving the file-system block each took. A validation or
training-split record whose learning curve is byte for byte its test record's (the same run) drops its copy and
names the test record as ``learning_curve_of`` (attn_cli.records.shared_curve, what `attn eval --record` now does).

usage: python scripts/shrink_results.py   (from the repository root; prints what it shrank)
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
from pathlib import Path

from PIL import Image

from attn_cli.io import atomic_write, write_json
from attn_cli.records import (
    CURVE_OF,
    RECORD_GZIP_OVER,
    RECORD_PNG_OVER,
    RECORD_TEXT,
    float32_predictions,
    palette_png,
    shared_curve,
)


def main() -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "results"], capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        path = Path(name)
        if not path.is_file():
            continue
        size = path.stat().st_size
        if path.name == "cpu_seconds.json" and (path.parent / "result.json").is_file():
            _fold_cpu_seconds(path)
            print(f"{name}: folded into result.json")
        elif path.name == "learning_curve.csv" and size > RECORD_GZIP_OVER:
            atomic_write(path.with_name(path.name + ".gz"), gzip.compress(path.read_bytes(), mtime=0))
            path.unlink()
            print(f"{name}: gzipped")
        elif path.suffix in RECORD_TEXT and size > RECORD_GZIP_OVER and _listed_prediction(path):
            # a prediction file its result.json lists: gzipped, and the list renamed to match
            atomic_write(path.with_name(path.name + ".gz"), gzip.compress(path.read_bytes(), mtime=0))
            result = path.parent / "result.json"
            info = json.loads(result.read_text(encoding="utf-8"))
            info["predictions"] = [f"{n}.gz" if n == path.name else n for n in info["predictions"]]
            write_json(result, info)
            path.unlink()
            print(f"{name}: gzipped")
        elif path.name == "result.json" and (shortened := float32_predictions(path)):
            kept, before, after = shortened
            print(f"{path.parent / kept}: floats in float32 form, {before} -> {after} bytes")
        elif path.name == "result.json" and (sibling := _share_curve(path)):
            print(f"{path.parent}: the learning curve is {sibling}'s")
        elif path.suffix == ".png" and size > RECORD_PNG_OVER:
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as im:
                if im.mode == "P":
                    continue
            smaller = palette_png(data)
            if len(smaller) < len(data):
                atomic_write(path, smaller)
                print(f"{name}: {len(data)} -> {len(smaller)} bytes")


def _fold_cpu_seconds(path: Path) -> None:
    """The note's facts under ``cpu_seconds`` in the record beside it (written first), then the note removed."""
    result = path.parent / "result.json"
    info = json.loads(result.read_text(encoding="utf-8"))
    note = json.loads(path.read_text(encoding="utf-8"))
    if info.get("cpu_seconds", note) != note:
        raise SystemExit(f"{result} already holds other cpu_seconds than {path}; fold it by hand")
    write_json(result, {**info, "cpu_seconds": note})
    path.unlink()


def _listed_prediction(path: Path) -> bool:
    result = path.parent / "result.json"
    if path.name == "result.json" or not result.is_file():
        return False
    return path.name in json.loads(result.read_text(encoding="utf-8")).get("predictions", [])


def _share_curve(result: Path) -> str | None:
    """A non-test record's curve, when its test record (the folder without the ``-<split>`` suffix) holds the same
    bytes from the same run: removed here, the test record named as ``learning_curve_of``."""
    info = json.loads(result.read_text(encoding="utf-8"))
    split, folder = info.get("split", "test"), result.parent
    if split == "test" or CURVE_OF in info or not folder.name.endswith(f"-{split}"):
        return None
    sibling = folder.parent / folder.name[: -len(split) - 1]
    shared = shared_curve(folder, sibling, str(info.get("run_dir")))
    if shared:
        info[CURVE_OF] = shared
        write_json(result, info)
    return shared


if __name__ == "__main__":
    main()
