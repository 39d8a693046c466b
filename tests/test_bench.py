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


def test_the_census_counts_matrix_products_and_fused_lstm_layers_exactly() -> None:
    """2mkn FLOPs per product; an LSTM layer's gate products 2·T·B·4H·(in + H), and twice that backward."""
    import torch

    from attn_cli.flops import Census, replay

    a, b = torch.rand(7, 5), torch.rand(5, 3)
    with Census() as census:
        a @ b
        a @ b
    assert census.total_flops == 2 * (2 * 7 * 5 * 3) and len(census.calls) == 1
    lstm = torch.nn.LSTM(6, 4, batch_first=True)
    x = torch.rand(2, 9, 6, requires_grad=True)
    with Census() as census:
        out, _ = lstm(x)
    forward = census.total_flops
    if forward:  # the fused CPU layer (mkldnn); other builds decompose it into counted products
        assert forward == 2 * 9 * 2 * 16 * (6 + 4)
    with Census() as census:
        out, _ = lstm(x)
        out.sum().backward()
    assert census.total_flops >= 3 * forward
    timed = replay(census, repeats=1)
    assert timed["limit_s"] > 0 and timed["flops"] == census.total_flops
    assert sum(op["calls"] for op in timed["by_op"].values()) == sum(c.count for c in census.calls.values())


def test_the_nmt_bench_tags_its_file_and_measures_the_limit(generated_data: Path, tmp_path: Path) -> None:
    from attn_cli.bench import run_bench

    (row,) = run_bench(
        "nmt", ["tiny/luong-global-general"], steps=3, overrides=[], data_dir=generated_data, out=tmp_path,
        tag="r2", with_limit=True,
    )  # fmt: skip
    (path,) = tmp_path.glob("*.json")
    assert path.name == f"tiny_luong-global-general-{row['device']}-r2.json"
    saved = read_json(path)
    limit = saved["limit"]
    assert limit["gflop_per_step"] > 0 and limit["distinct_calls"] > 0 and limit["limit_s"] > 0
    assert set(limit["by_op"]) >= {"mm"}  # the decoder's products at least
    assert len(saved["load_avg_1min"]) == 2 and saved["train_cpu_s"] > 0 and saved["command"]
    assert saved["batching"] == "random"  # the tiny recipe's; the peer report names it beside JoeyNMT's
    # decoding is timed over the test loop's batches alone, as the peer times its predict(): less than the whole
    # evaluation (checkpoint load, scoring and writing), and the rate is taken from it
    assert 0 < saved["decode_s"] < saved["eval_wall_s"]
    workers, each = saved["decode_workers"]  # eval.workers=0: one single-threaded search per torch thread
    assert 1 <= workers <= saved["threads"] and each == (1 if workers > 1 else saved["threads"])


def _peer_line(name: str, rep: int, sent: float) -> str:
    return (
        f"PEER joeynmt {name} train_src_tok_s={sent * 10} train_tgt_tok_s={sent * 11} train_sent_s={sent} "
        f"decode_beam5_sent_s={sent / 2} threads=2 rep={rep} load_before=0.1 load_after=0.2"
    )


def test_the_peer_report_gives_median_and_range_of_ratios_taken_pair_by_pair(tmp_path: Path) -> None:
    from attn_cli.bench import report
    from attn_cli.io import write_json

    ours = {1: 200.0, 2: 300.0, 3: 150.0}
    peer = {1: 100.0, 2: 100.0, 3: 100.0}
    (tmp_path / "peer.txt").write_text("\n".join(_peer_line("luong", k, peer[k]) for k in ours) + "\n")
    for k, sent in ours.items():
        write_json(
            tmp_path / f"luong-global-general-cpu-r{k}.json",
            {"train_sent_s": sent, "train_src_tok_s": sent * 10, "train_tgt_tok_s": sent * 11,
             "decode_beam5_sent_s": sent, "threads": 2, "load_avg_1min": [0.3, 0.5 + k], "batching": "tokens ≤960"},
        )  # fmt: skip
    text = report(tmp_path / "peer.txt", tmp_path)
    assert "(JoeyNMT's drawn at random, its sentence batching; ours tokens ≤960:" in text
    (line,) = [x for x in text.splitlines() if "| train sentences/s |" in x]
    assert line.endswith("| 100.0 (100.0–100.0) | 200.0 (150.0–300.0) | **2.00× (1.50×–3.00×)** |")
    assert "| load (1 min) | | 0.30–3.50 |" in text and "| pairs | 3 |" in text
    assert (tmp_path / "README.md").read_text() == text


def test_the_peer_report_sets_our_bf16_runs_beside_the_same_peer_runs(tmp_path: Path) -> None:
    from attn_cli.bench import report
    from attn_cli.io import write_json

    (tmp_path / "peer.txt").write_text("\n".join(_peer_line("luong", k, 100.0) for k in (1, 2)) + "\n")
    for k in (1, 2):
        for suffix, sent in (("", 190.0), ("-bf16", 246.0 + 4 * k)):
            write_json(
                tmp_path / f"luong-global-general-cpu-r{k}{suffix}.json",
                {"train_sent_s": sent, "train_src_tok_s": 1.0, "train_tgt_tok_s": 1.0, "decode_beam5_sent_s": sent,
                 "threads": 2, "batching": "tokens ≤960"},
            )  # fmt: skip
    text = report(tmp_path / "peer.txt", tmp_path)
    assert "| luong / luong-global-general | train sentences/s | 100.0 (100.0–100.0) | 190.0 (190.0–190.0) |" in text
    assert (
        "| luong / luong-global-general (attn in bf16-mixed) | train sentences/s | 100.0 (100.0–100.0) | "
        "252.0 (250.0–254.0) | **2.52× (2.50×–2.54×)** |"
    ) in text
    assert text.count("| pairs | 2 |") == 2 and "JoeyNMT's CPU autocast is float16 only" in text


def test_the_peer_report_names_the_runtime_settings_each_of_our_runs_had(tmp_path: Path) -> None:
    from attn_cli.bench import report
    from attn_cli.io import write_json

    kept = "freed memory kept (mmap threshold 32 MiB, trim threshold 1 GiB)"
    runtimes = {1: {"GOMP_SPINCOUNT": "10000", "malloc": kept}, 2: {"OMP_WAIT_POLICY": "PASSIVE", "malloc": kept}}
    (tmp_path / "peer.txt").write_text("\n".join(_peer_line("luong", k, 100.0) for k in (1, 2, 3)) + "\n")
    for k in (1, 2, 3):
        row = {"train_sent_s": 200.0, "train_src_tok_s": 1.0, "train_tgt_tok_s": 1.0, "decode_beam5_sent_s": 200.0,
               "threads": 2, "hardware": {"cpu_runtime": runtimes[k]} if k in runtimes else {}}  # fmt: skip
        write_json(tmp_path / f"luong-global-general-cpu-r{k}.json", row)
    text = report(tmp_path / "peer.txt", tmp_path)
    (line,) = [x for x in text.splitlines() if "| runtime settings |" in x]
    assert line == (
        "| luong / luong-global-general | runtime settings | defaults | "
        "GOMP_SPINCOUNT=10000, heap kept / OMP_WAIT_POLICY=PASSIVE, heap kept / not recorded | |"
    )


def test_the_peer_report_says_how_each_side_decoded(tmp_path: Path) -> None:
    """Ours searched two batches at once with one thread each; a record from before eval.workers, one batch with
    every thread: the report names both beside JoeyNMT's one batch at a time."""
    from attn_cli.bench import report
    from attn_cli.io import write_json

    (tmp_path / "peer.txt").write_text("\n".join(_peer_line("luong", k, 100.0) for k in (1, 2)) + "\n")
    for k in (1, 2):
        row = {"train_sent_s": 200.0, "train_src_tok_s": 1.0, "train_tgt_tok_s": 1.0, "decode_beam5_sent_s": 200.0,
               "threads": 2, **({"decode_workers": [2, 1]} if k == 1 else {})}  # fmt: skip
        write_json(tmp_path / f"luong-global-general-cpu-r{k}.json", row)
    text = report(tmp_path / "peer.txt", tmp_path)
    (line,) = [x for x in text.splitlines() if "| decoding: batches at once × threads each |" in x]
    assert line.endswith("| 1 × 2 | 1 × 2 / 2 × 1 | |")


def test_a_runtime_text_names_a_malloc_left_alone() -> None:
    from attn_cli.bench import runtime_text

    assert (
        runtime_text({"malloc": "glibc defaults (ATTN_MALLOC=system)"}) == "malloc: glibc defaults (ATTN_MALLOC=system)"
    )
    assert runtime_text({}) == "defaults"


def test_the_peer_report_still_reads_a_single_unrepeated_pair(tmp_path: Path) -> None:
    from attn_cli.bench import report
    from attn_cli.io import write_json

    (tmp_path / "peer.txt").write_text(_peer_line("bahdanau", 1, 80.0).replace(" rep=1", "") + "\n")
    write_json(
        tmp_path / "bahdanau-lstm-cpu.json",
        {"train_sent_s": 120.0, "train_src_tok_s": 1.0, "train_tgt_tok_s": 1.0, "decode_beam5_sent_s": 60.0,
         "threads": 2},
    )  # fmt: skip
    text = report(tmp_path / "peer.txt", tmp_path)
    assert "| bahdanau / bahdanau-lstm | train sentences/s | 80.0 | 120.0 | **1.50×** |" in text
    assert "ours random:" in text  # a record from before the batching was recorded: random batches then


def test_the_nmt_profile_writes_one_training_update_and_one_beam_batch(generated_data: Path, tmp_path: Path) -> None:
    from attn_cli.bench import profile_nmt

    train, beam = profile_nmt("tiny/luong-global-general", [], generated_data, tmp_path, warmup=2, updates=4)
    assert train.name == "profile-tiny_luong-global-general-train.txt" and beam.name.endswith("-beam.txt")
    for path in (train, beam):
        text = path.read_text()
        assert (
            "Self CPU" in text and "# command:" in text and "# runtime settings: " in text
        )  # the profiler's table under our header
    assert "aten::mm" in train.read_text() and "backward" in train.read_text().lower()  # a whole update
    assert "# by input shape, the 25 costliest" in train.read_text() and "Input Shapes" in beam.read_text()
    assert "autocast" not in beam.read_text().splitlines()[0]


def test_a_bf16_profile_searches_under_the_autocast_eval_uses(generated_data: Path, tmp_path: Path) -> None:
    """A bf16-mixed run decodes under autocast in `attn eval`; its beam profile does too (it once profiled a
    float32 search whatever the run's precision), and its products show bfloat16 operands."""
    from attn_cli.bench import profile_nmt

    _, beam = profile_nmt(
        "tiny/luong-global-general", ["train.precision=bf16-mixed"], generated_data, tmp_path, warmup=2, updates=4
    )
    text = beam.read_text()
    assert text.splitlines()[0].endswith(", under bf16-mixed autocast")
    assert "aten::_to_copy" in text  # the casts autocast adds


def test_a_profile_longer_than_the_recipe_is_refused(generated_data: Path, tmp_path: Path) -> None:
    import pytest

    from attn_cli.bench import profile_nmt
    from attn_cli.errors import AttnError

    with pytest.raises(AttnError, match="no training step was profiled"):
        profile_nmt("tiny/luong-global-general", ["train.max_steps=1"], generated_data, tmp_path, updates=4)


def test_a_token_batch_run_is_named_with_its_bound_in_the_peer_report(tmp_path: Path) -> None:
    from attn_cli.bench import _run_batching

    (tmp_path / "recipe.yaml").write_text("data: {batching: tokens, batch_tokens: 960}\n", encoding="utf-8")
    assert _run_batching(tmp_path) == "tokens ≤960"
    (tmp_path / "recipe.yaml").write_text("data: {batching: bucket, batch_tokens: 0}\n", encoding="utf-8")
    assert _run_batching(tmp_path) == "bucket"
