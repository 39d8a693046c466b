"""Bring recorded files to the form `attn record` now writes, keeping results/ under its 30 MB: pictures over
``RECORD_PNG_OVER`` with a 256-colour palette (attn_cli.records.palette_png), learning curves and the prediction files a result.json lists over
``RECORD_GZIP_OVER`` gzipped (``learning_curve.csv.gz`` read by attn_cli.io.read_curve; the list renamed), and a record's
predictions whose floats are all float32 values written in their shortest float32 form, the record marked
``"prediction_floats": "float32"`` (attn_cli.records.float32_predictions: lossless, checked row by row before
anything is written). A picture already palette-encoded is left alone unless it is over ``RECORD_PNG_LARGE`` (then
it gets palette_png's 64 colours). A ``cpu_seconds.json`` written by hand
beside a record (CPU seconds of a record made before ``train_cpu_s`` was recorded) is folded into its result.json
as ``cpu_seconds`` (read by attn_cli.tables.budget), saving the file-system block each took. A validation or
training-split record whose learning curve is byte for byte its test record's (the same run) drops its copy and
names the test record as ``learning_curve_of`` (attn_cli.records.shared_file, what `attn eval --record` now does);
the same for a byte-identical ``recipe.yaml`` (``recipe_of``, 2026-12-08).

With ``--leave-out FOLDER...`` (record folders under results/ that no table reads) it leaves those records'
prediction files out instead, as `attn eval --record` does for a file too large to keep: each named under
``predictions_left_out`` with its size and the commit whose tree still holds it, the metrics, curve, recipe
and command kept.

usage: python scripts/shrink_results.py   (from the repository root; prints what it shrank)
       python scripts/shrink_results.py --leave-out results/memory/babi-1k/NAME ...
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from attn_cli.io import SHARED, atomic_write, write_json
from attn_cli.records import (
    RECORD_GZIP_OVER,
    RECORD_PNG_LARGE,
    RECORD_PNG_OVER,
    RECORD_TEXT,
    curve_sibling,
    float32_predictions,
    palette_png,
    shared_file,
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
        elif path.name == "result.json" and (sibling := _share_with_sibling(path)):
            print(f"{path.parent}: shares its learning curve or recipe with {sibling}")
        elif path.suffix == ".png" and size > RECORD_PNG_OVER:
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as im:
                # palette-encoded already: at the size palette_png keeps, or with its 64 colours (so that running
                # the script again leaves it alone)
                if im.mode == "P" and (size <= RECORD_PNG_LARGE or len(im.getcolors(256) or range(257)) <= 64):
                    continue
            smaller = palette_png(data)
            if len(smaller) < len(data):
                atomic_write(path, smaller)
                print(f"{name}: {len(data)} -> {len(smaller)} bytes")


def leave_out(folder: Path, results: Path = Path("results"), commit: str = "") -> None:
    """Leave ``folder``'s prediction files out of its record, named with their size and the commit that holds them
    (``commit``, else HEAD's); refuses a record a table over ``results`` reads (its predictions are what the tests
    recompute the table's numbers from)."""
    result = folder / "result.json"
    info = json.loads(result.read_text(encoding="utf-8"))
    key = (info["task"], info["dataset"], info.get("name") or info["recipe"], info.get("split", "test"))
    if key in _read_by_tables(results):
        raise SystemExit(f"{folder} is read by a table: its predictions stay")
    if not commit:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, check=True, text=True)
        commit = commit.stdout.strip()
    gone = []
    for name in info.get("predictions", []):
        size = (folder / name).stat().st_size
        gone.append(f"{name} ({size} bytes; left out of results/ under its 30 MB, not a table row; in commit {commit})")
        (folder / name).unlink()
    info["predictions"] = []
    info["predictions_left_out"] = [*info.get("predictions_left_out", []), *gone]
    info.pop("prediction_floats", None)
    write_json(result, info)
    print(f"{folder}: predictions left out ({len(gone)} files)")


@functools.cache
def _read_by_tables(results_dir: Path) -> frozenset[tuple[str, str, str, str]]:
    """The keys of every record some table looks up while `attn table --all` renders (rows, orders, the rules that
    pick a run by validation), found by rendering them over results/ once and noting each lookup."""
    import attn_cli.tables  # noqa: F401  (registers the tables)
    from attn_cli.registry import TABLES
    from attn_cli.tables.base import all_tables_markdown, load_results

    seen: set[tuple[str, str, str, str]] = set()

    class Noted(dict):  # type: ignore[type-arg]
        def get(self, key, default=None):  # type: ignore[no-untyped-def]
            seen.add(key)
            return super().get(key, default)

        def __getitem__(self, key):  # type: ignore[no-untyped-def]
            seen.add(key)
            return super().__getitem__(key)

        def __contains__(self, key):  # type: ignore[no-untyped-def]
            seen.add(key)
            return super().__contains__(key)

    results = Noted(load_results(results_dir))
    all_tables_markdown([t for _, t in TABLES.items()], results)
    return frozenset(seen)


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


def _share_with_sibling(result: Path) -> str | None:
    """A record's curve and recipe, when the record it may share with (attn_cli.records.curve_sibling: the test
    record of a ``-<split>`` record, the plain record of a ``<label>+<how>`` one) holds the same bytes from the same
    run: removed here, that record named as ``learning_curve_of`` / ``recipe_of``. Returns the sibling when anything
    was shared."""
    info = json.loads(result.read_text(encoding="utf-8"))
    split, folder = info.get("split", "test"), result.parent
    name = curve_sibling(folder.name, split)
    if not name:
        return None
    done = None
    for key, names in SHARED.items():
        if key not in info and (shared := shared_file(folder, folder.parent / name, str(info.get("run_dir")), names)):
            info[key] = done = shared
    if done:
        write_json(result, info)
    return done


if __name__ == "__main__":
    if sys.argv[1:2] == ["--leave-out"]:
        for arg in sys.argv[2:]:
            leave_out(Path(arg))
    else:
        main()
