"""Evaluation batches predicted by several workers at once (eval.workers): same rows, same order, torch's
thread count given back, a worker's error raised, the loop's grad/inference/autocast state carried over."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import pytest
import torch

from attn_cli import run
from attn_cli.tasks.base import PredictWorkers
from tests.conftest import run_cli


def test_rows_come_back_in_submission_order_and_the_thread_count_is_restored() -> None:
    before = torch.get_num_threads()
    seen: set[str] = set()

    def rows(i: int) -> list[dict[str, int]]:
        time.sleep(0.02 * ((7 - i) % 4))  # later batches often finish first
        seen.add(threading.current_thread().name)
        return [{"id": 10 * i}, {"id": 10 * i + 1}]

    workers = PredictWorkers(3, 1)
    assert torch.get_num_threads() == 1
    for i in range(8):
        workers.submit(rows, i)
        assert len(workers._pending) <= 6  # at most 2 × workers batches wait
    out = workers.finish()
    assert [r["id"] for r in out] == [10 * i + j for i in range(8) for j in (0, 1)]
    assert len(seen) > 1 and all(name.startswith("attn-predict") for name in seen)
    assert torch.get_num_threads() == before


def test_a_workers_error_is_raised_and_the_threads_still_restored() -> None:
    before = torch.get_num_threads()

    def rows(i: int) -> list[dict[str, int]]:
        if i == 2:
            raise ValueError("batch 2 is broken")
        return [{"id": i}]

    workers = PredictWorkers(2, 1)
    for i in range(4):
        workers.submit(rows, i)
    with pytest.raises(ValueError, match="batch 2 is broken"):
        workers.finish()
    assert torch.get_num_threads() == before


def test_the_loops_grad_inference_and_autocast_state_reach_the_worker() -> None:
    def state() -> list[dict[str, object]]:
        return [{
            "inference": torch.is_inference_mode_enabled(), "grad": torch.is_grad_enabled(),
            "autocast": torch.is_autocast_enabled("cpu"), "dtype": torch.get_autocast_dtype("cpu"),
            "cache": torch.is_autocast_cache_enabled(),
        }]  # fmt: skip

    workers = PredictWorkers(2, 1)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
        workers.submit(state)
    with torch.no_grad():
        workers.submit(state)
    inside, plain = workers.finish()
    assert inside == {"inference": True, "grad": False, "autocast": True, "dtype": torch.bfloat16, "cache": False}
    assert plain["inference"] is False and plain["grad"] is False and plain["autocast"] is False


@pytest.fixture(scope="module")
def trained(generated_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    summary = run.train(
        "nmt", "tiny/luong-global-general", runs_dir=runs, data_dir=generated_data, progress=False,
        overrides=["data.eval_batch_size=4"],
    )  # fmt: skip
    return Path(summary["run_dir"])


def _evaluate(task: str, run_dir: Path, data: Path, workers: int, batch: int, output: str) -> tuple[dict, str]:
    """`attn eval` of ``run_dir``'s test split with ``eval.workers`` and evaluation batches of ``batch``: the
    result and the text of one of the files it wrote."""
    result = run.evaluate(
        task, run_dir, data_dir=data, progress=False,
        overrides=[f"eval.workers={workers}", f"data.eval_batch_size={batch}"],
    )  # fmt: skip
    return result, (run_dir / "eval" / "test" / output).read_text(encoding="utf-8")


def test_eval_with_workers_writes_what_one_batch_at_a_time_writes(trained: Path, generated_data: Path) -> None:
    """Three workers searching their own batches give the hypotheses, BLEU and perplexity of the plain loop."""
    threads = torch.get_num_threads()

    one, hyp_one = _evaluate("nmt", trained, generated_data, 1, 4, "hyp.txt")
    three, hyp_three = _evaluate("nmt", trained, generated_data, 3, 4, "hyp.txt")
    assert (one["predict_workers"], one["predict_threads_each"]) == (1, threads)
    assert (three["predict_workers"], three["predict_threads_each"]) == (3, max(1, threads // 3))
    assert hyp_three == hyp_one and hyp_one.count("\n") > 3 * 4  # more batches than workers
    assert three["metrics"] == one["metrics"]
    assert torch.get_num_threads() == threads


def test_training_validates_the_same_with_workers(
    generated_data: Path, tmp_path: Path, worker_pools: list[int]
) -> None:
    """Validation during training goes through the workers too: the same validation scores, step by step."""
    pools = worker_pools

    def val_history(workers: int) -> list[dict[str, str]]:
        summary = run.train(
            "nmt", "tiny/luong-global-general", runs_dir=tmp_path / str(workers), data_dir=generated_data,
            progress=False, overrides=[f"eval.workers={workers}", "data.eval_batch_size=4"],
        )  # fmt: skip
        with (Path(summary["run_dir"]) / "logs" / "metrics.csv").open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return [
            {k: v for k, v in row.items() if k.startswith("val/") or k == "step"} for row in rows if row.get("val/bleu")
        ]

    one = val_history(1)
    assert one and not pools
    assert val_history(2) == one
    assert pools and set(pools) == {2}  # each validation (and the final one), not the sanity check


def test_a_negative_worker_count_is_one_line(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "nmt", "--recipe", "tiny/seq2seq", "--set", "eval.workers=-1")
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        "error: eval.workers=-1 is invalid: it must be 0 (one single-threaded worker per thread) or a number of "
        "workers; fix the recipe or its --set"
    )


@pytest.mark.parametrize("recipe", ["tiny/sat-hard", "tiny/video-temporal"])
def test_captions_with_workers_are_the_plain_loops(recipe: str, generated_data: Path, tmp_path: Path) -> None:
    """Captioning decodes its batches through the workers too (hard attention decodes with the expected context,
    no random draw): the same captions, attention scores and metrics as one batch at a time."""
    summary = run.train("caption", recipe, runs_dir=tmp_path, data_dir=generated_data, progress=False)
    run_dir = Path(summary["run_dir"])
    one, rows_one = _evaluate("caption", run_dir, generated_data, 1, 1, "predictions.jsonl")
    three, rows_three = _evaluate("caption", run_dir, generated_data, 3, 1, "predictions.jsonl")
    assert one["predict_workers"] == 1 and three["predict_workers"] == 3
    assert rows_three == rows_one and rows_one.count("\n") >= 3
    assert three["metrics"] == one["metrics"]
