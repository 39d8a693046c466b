"""`attn bench` of a family other than nmt: what a benchmark file records beside its figure (issue 28 #4).

Never a timed test: the figures are checked for being recorded and consistent, not for their size."""

from __future__ import annotations

from pathlib import Path

from attn_cli.bench import family_lines, run_train_bench
from attn_cli.io import read_json


def test_a_family_bench_records_load_threads_cpu_seconds_and_its_command(generated_data: Path, tmp_path: Path) -> None:
    (row,) = run_train_bench(
        "vision", ["tiny/ram"], steps=3, warmup=1, overrides=[], compare=[], data_dir=generated_data, out=tmp_path
    )
    (path,) = tmp_path.glob("*.json")
    assert path.name == f"tiny_ram-train-{row['device']}.json"  # a recipe's folder is not a folder here
    saved = read_json(path)
    base = saved["baseline"]
    assert saved["task"] == "vision" and saved["git_sha"] and saved["hardware"]["torch_threads"] == base["threads"]
    assert saved["command"]  # how to measure it again
    assert len(base["load_avg_1min"]) == 2 and all(x >= 0 for x in base["load_avg_1min"])
    assert base["train_cpu_s"] > 0 and base["train_examples_cpu_s"] > 0
    if row["device"] == "cpu":
        lines = family_lines(tmp_path)
        assert lines[1].startswith("## Training speed of each family") and lines[-1].startswith("| vision | tiny/ram |")
