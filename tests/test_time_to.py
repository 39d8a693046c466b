"""Time to a BLEU (issue 28 #2): train.keep_val_checkpoints keeps a checkpoint and its training clocks at every
validation; `attn bench time-to` decodes them in step order until one reaches a target, with JoeyNMT's time to its
own best (a long.sh run's logs) beside it. Never a timed test: the clocks are checked for being recorded, ordered
and carried over a resume, not for their size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attn_cli import run
from attn_cli.callbacks import KeepValCheckpoints, kept_checkpoints
from attn_cli.io import read_json
from attn_cli.tasks.base import load_checkpoint
from tests.conftest import run_cli

RECIPE = "tiny/luong-global-general"
KEEP = ["train.keep_val_checkpoints=true", "train.val_every_steps=2", "train.max_epochs=20", "train.threads=1"]


def _train(data: Path, runs: Path, steps: int) -> Path:
    summary = run.train(
        "nmt", RECIPE, overrides=[*KEEP, f"train.max_steps={steps}"], runs_dir=runs, data_dir=data, progress=False
    )
    return Path(summary["run_dir"])


@pytest.fixture(scope="module")
def kept_run(generated_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(generated_data, tmp_path_factory.mktemp("runs"), 6)


def test_every_validation_keeps_a_loadable_checkpoint_and_its_clocks(kept_run: Path) -> None:
    kept = kept_checkpoints(kept_run)
    assert [step for step, _, _ in kept] == [2, 4, 6]
    walls = [info["wall_s"] for _, _, info in kept]
    assert walls == sorted(walls) and walls[0] > 0
    for step, ckpt, info in kept:
        assert info["step"] == step and info["checkpoint"] == ckpt.name and "val/bleu" in info["metrics"]
        assert 0 < info["train_wall_s"] < info["wall_s"] and info["val_wall_s"] > 0  # validation counted apart
        assert 0 < info["train_cpu_s"] < info["cpu_s"] and info["threads"] == 1
        _, recipe = load_checkpoint(ckpt, "nmt")  # what attn eval reads
        assert recipe.name == RECIPE
        assert "optimizer_states" not in torch.load(ckpt, weights_only=True)  # weights only: a third of the size


def test_a_resumed_run_continues_the_clocks_of_the_checkpoint_it_resumes(generated_data: Path, tmp_path: Path) -> None:
    run_dir = _train(generated_data, tmp_path, 4)
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    state = ckpt["callbacks"]["KeepValCheckpoints"]
    assert state["wall_s"] >= read_json(run_dir / "checkpoints" / "val-step4.json")["wall_s"]
    # as if the first segment had trained for 1000 s: the resumed segment's clocks start there
    ckpt["callbacks"]["KeepValCheckpoints"] = {**state, "wall_s": 1000.0, "cpu_s": 900.0}
    torch.save(ckpt, last)
    run.train("nmt", None, resume=run_dir, overrides=["train.max_steps=6"], runs_dir=tmp_path, data_dir=generated_data)
    resumed = read_json(run_dir / "checkpoints" / "val-step6.json")
    assert 1000 < resumed["wall_s"] < 1300 and 900 < resumed["cpu_s"] < 1200
    assert resumed["val_wall_s"] >= state["val_wall_s"]


def test_the_clocks_before_training_are_the_resumed_ones() -> None:
    keep = KeepValCheckpoints(Path("unused"))
    keep.load_state_dict({"wall_s": 5.0, "cpu_s": 4.0, "val_wall_s": 1.0, "val_cpu_s": 0.5})
    assert keep.state_dict() == {"wall_s": 5.0, "cpu_s": 4.0, "val_wall_s": 1.0, "val_cpu_s": 0.5}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("train.keep_val_checkpoints=maybe", "keep_val_checkpoints"),
        ("train.limit_val_batches=0", "turns validation off"),
    ],
)
def test_a_bad_keep_setting_is_one_line_exit_2(dirs: dict[str, Path], setting: str, message: str) -> None:
    args = ["train", "nmt", "--recipe", RECIPE, "--set", "train.keep_val_checkpoints=true", "--set", setting]
    code, _, err = run_cli(*args)
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert not any(dirs["runs"].rglob("*.ckpt"))  # refused before anything was written


def test_time_to_stops_at_the_first_checkpoint_that_reaches_the_target(
    kept_run: Path, generated_data: Path, tmp_path: Path
) -> None:
    args = ["--data-dir", str(generated_data), "bench", "time-to", "--run", str(kept_run), "--out", str(tmp_path)]
    code, out, err = run_cli(*args, "--target", "0", "--beam", "2", "--tag", "t1")
    assert code == 0, err
    saved = read_json(tmp_path / "time-to-tiny_luong-global-general-t1.json")
    assert saved["reached"] and saved["first"]["step"] == 2 and [c["step"] for c in saved["checkpoints"]] == [2]
    assert saved["first"]["wall_s"] == read_json(kept_run / "checkpoints" / "val-step2.json")["wall_s"]
    assert saved["beam"] == 2 and saved["git_sha"] and saved["hardware"] and saved["command"]
    assert saved["training"]["threads"] == 1 and saved["peer"] is None and saved["training"]["precision"] == "auto"
    # decoded by attn eval itself, into a named evaluation of its own
    assert read_json(kept_run / "eval" / "test@val-step2" / "metrics.json")["info"]["decoding"] == "beam 2"
    assert "first reached at step 2" in out
    from attn_cli.bench import time_to_lines

    row = time_to_lines(tmp_path)[-1]  # the line results/bench/README.md shows
    assert row.startswith("| tiny/luong-global-general | bleu ≥ 0 (beam 2, test) | step 2: **") and "| 1 |" in row


def test_a_target_never_reached_writes_every_score_and_exits_1(
    kept_run: Path, generated_data: Path, tmp_path: Path
) -> None:
    args = ["--data-dir", str(generated_data), "bench", "time-to", "--run", str(kept_run), "--out", str(tmp_path)]
    code, _, err = run_cli(*args, "--target", "101", "--beam", "1")
    assert code == 1 and "bleu 101 not reached: the best of 3 kept checkpoints" in err and "error" not in err
    saved = read_json(tmp_path / "time-to-tiny_luong-global-general.json")
    assert not saved["reached"] and saved["first"] is None and len(saved["checkpoints"]) == 3
    assert saved["best"]["bleu"] == max(c["bleu"] for c in saved["checkpoints"])


def test_time_to_refusals_are_one_line_exit_2(
    kept_run: Path, generated_data: Path, tmp_path: Path, dirs: dict[str, Path]
) -> None:
    plain = run.train("nmt", RECIPE, runs_dir=dirs["runs"], data_dir=generated_data, progress=False)["run_dir"]
    base = ["--data-dir", str(generated_data), "bench", "time-to", "--out", str(tmp_path)]
    cases = [
        ([*base, "--run", plain, "--target", "30"], "train.keep_val_checkpoints=true"),
        ([*base, "--run", str(tmp_path / "nowhere"), "--target", "30"], "does not exist"),
        ([*base, "--target", "30"], "needs --run"),
        ([*base, "--run", str(kept_run), "--target", "30", "--metric", "meteor"], "reports no 'meteor'"),
        ([*base, "--run", str(kept_run), "--target", "30", "--peer", str(tmp_path)], "not a finished JoeyNMT"),
    ]
    for args, message in cases:
        code, _, err = run_cli(*args)
        assert code == 2 and err.startswith("error: ") and message in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("time-to-*.json"))  # nothing written by a refusal


PEER_LOG = """\
2026-12-06 08:45:42,606 - INFO - joeynmt.training - Train config:
2026-12-06 08:45:42,606 - INFO - joeynmt.training - EPOCH 1
2026-12-06 08:46:12,344 - INFO - joeynmt.training - Epoch   1, Step:      100, Batch Loss:    65.217468
2026-12-06 08:48:15,994 - INFO - joeynmt.prediction - Evaluation result (greedy): bleu:  10.34, loss:  42.72
2026-12-06 08:48:15,995 - INFO - joeynmt.training - Hooray! New best validation result [bleu]!
2026-12-06 08:48:16,036 - INFO - joeynmt.training - Checkpoint saved in /w/long/luong-x/model/500.ckpt.
2026-12-06 08:50:40,000 - INFO - joeynmt.prediction - Evaluation result (greedy): bleu:  20.50, loss:  30.00
2026-12-06 08:50:40,100 - INFO - joeynmt.training - Hooray! New best validation result [bleu]!
2026-12-06 08:50:40,606 - INFO - joeynmt.training - Checkpoint saved in /w/long/luong-x/model/1000.ckpt.
2026-12-06 08:53:00,000 - INFO - joeynmt.prediction - Evaluation result (greedy): bleu:  19.00, loss:  31.00
"""
PEER_VALIDATIONS = (
    "Steps: 500\tloss: 42.71598\tacc: 0.48345\tppl: 20.57956\tbleu: 10.34500\tLR: 0.00100000\t*\n"
    "Steps: 1000\tloss: 30.00000\tacc: 0.55000\tppl: 10.00000\tbleu: 20.50000\tLR: 0.00100000\t*\n"
    "Steps: 1500\tloss: 31.00000\tacc: 0.54000\tppl: 11.00000\tbleu: 19.00000\tLR: 0.00100000\t\n"
)


def test_the_peer_time_to_its_best_is_read_from_its_log(tmp_path: Path) -> None:
    from attn_cli.bench import peer_time_to_best
    from attn_cli.errors import AttnError
    from attn_cli.io import write_json

    (tmp_path / "model").mkdir()
    (tmp_path / "train.out").write_text(PEER_LOG)
    (tmp_path / "model" / "validations.txt").write_text(PEER_VALIDATIONS)
    write_json(tmp_path / "train.json", {"steps": 1500, "train_loop_s": 400.0, "validation_s": 37.0})
    with pytest.raises(AttnError, match=r"not a finished JoeyNMT long.sh run \(no decode.json\)"):
        peer_time_to_best(tmp_path)  # stopped before its test decoding: its best so far is not its best
    write_json(tmp_path / "decode.json", {"ckpt": "best.ckpt", "beam": 5, "bleu_detok_lc": 31.2, "bleu_tok_lc": 32.0})
    peer = peer_time_to_best(tmp_path)
    assert peer["best_step"] == 1000 and peer["best_dev_bleu_greedy"] == 20.5
    assert peer["wall_s_to_best"] == 298.0  # 08:45:42.606 -> 08:50:40.606
    assert [v["wall_s"] for v in peer["validations"]] == [153.39, 297.39, 437.39]
    assert peer["test"]["bleu_detok_lc"] == 31.2
    from attn_cli.bench import time_to_lines

    ours = {"step": 1500, "wall_s": 250.4, "cpu_s": 480.2}
    write_json(
        tmp_path / "out" / "time-to-luong-global-general.json",
        {"recipe": "luong-global-general", "metric": "bleu", "target": 32.4, "split": "test", "beam": 5,
         "first": ours, "best": {"step": 1500, "bleu": 33.0}, "checkpoints": [ours, ours, ours], "peer": peer,
         "training": {"threads": 2, "load_avg_1min": [1.5, 2.25]}, "git_sha": "0123abcd"},
    )  # fmt: skip
    (row,) = [x for x in time_to_lines(tmp_path / "out") if x.startswith("| luong")]
    assert row == (
        "| luong-global-general | bleu ≥ 32.4 (beam 5, test) | step 1500: **250 s** (480 CPU s) | 3 | "
        "step 1000: 298 s, test 31.2 | ?, 32-true | 2 | 1.5–2.2 | 0123abcd |"
    )
    training = {"threads": 1, "precision": "bf16-mixed", "hardware": {"cpu": "AMD EPYC", "gpus": []}}
    row_bf16 = {**read_json(tmp_path / "out" / "time-to-luong-global-general.json"), "training": training}
    write_json(tmp_path / "out" / "time-to-luong-global-general-bf16.json", row_bf16)
    rows = [x for x in time_to_lines(tmp_path / "out") if x.startswith("| luong")]
    assert len(rows) == 2 and sum("| AMD EPYC, bf16-mixed | 1 | ? |" in x for x in rows) == 1


def test_a_record_of_a_kept_checkpoint_has_that_checkpoints_steps_and_clocks(
    kept_run: Path, generated_data: Path, tmp_path: Path
) -> None:
    """Scoring val-step4.ckpt of a 6-step run records the model at 4 steps (the equal-update rows of a table),
    with the training seconds to it: not the run's final 6 steps and its whole time."""
    from attn_cli.records import record

    ckpt = kept_run / "checkpoints" / "val-step4.ckpt"
    run.evaluate("nmt", kept_run, data_dir=generated_data, progress=False, checkpoint=ckpt, name="at4")
    result = read_json(record("nmt", kept_run, results_dir=tmp_path, name="at4", allow_dirty=True))
    kept = read_json(ckpt.with_suffix(".json"))
    assert (result["steps"], result["epochs"]) == (4, kept["epoch"])
    assert (result["train_wall_s"], result["train_cpu_s"]) == (kept["wall_s"], kept["cpu_s"])
    assert result["scored_at"] == {"step": 4, "of_steps": 6, "checkpoint": "val-step4.ckpt"}
    assert result["train_wall_s"] < read_json(kept_run / "run.json")["train_wall_s"]
    run.evaluate("nmt", kept_run, data_dir=generated_data, progress=False, name="final")  # best.ckpt: the run's budget
    final = read_json(record("nmt", kept_run, results_dir=tmp_path, name="final", allow_dirty=True))
    assert final["steps"] == 6 and "scored_at" not in final
