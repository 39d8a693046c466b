"""The RL-NTM of Zaremba & Sutskever (2015): its tape Interfaces on hand-computed cases, REINFORCE on a bandit
whose expected gradient is known, the tasks and the curriculum; the parametrised tests (test_models,
test_registry) cover the model contract and training end to end for every tiny recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attn_cli.attention.reinforce import categorical_sample, reinforce_loss, reward_to_go
from attn_cli.config import load_recipe
from attn_cli.data.tapes import (
    BLANK,
    END,
    TapesDataConfig,
    TapesDataModule,
    collate_tapes,
    curriculum_batch,
    draw_length,
    example,
    first_symbol,
)
from attn_cli.errors import AttnError
from attn_cli.models.rlntm import RLNTM, move_head, read_memory, read_tape, write_memory
from attn_cli.registry import TASKS
from attn_cli.tasks.tapes import tape_metrics
from tests.conftest import run_cli

# training_step logs through self.log, which says each time that no Trainer is attached: here none is wanted
pytestmark = pytest.mark.filterwarnings("ignore:.*self.trainer. reference is not registered")


def test_input_tape_reads_a_window_and_blanks_off_either_end() -> None:
    tape = torch.tensor([[5, 6, 7, END, BLANK], [8, 9, END, BLANK, BLANK]])  # (B=2, L=5), lengths 4 and 3
    length = torch.tensor([4, 3])
    assert read_tape(tape, torch.tensor([0, 1]), length, 1).tolist() == [[BLANK, 5, 6], [8, 9, END]]
    # the last cell of each tape: the right neighbour is off the tape, not the padding
    assert read_tape(tape, torch.tensor([3, 2]), length, 1).tolist() == [[7, END, BLANK], [9, END, BLANK]]
    assert read_tape(tape, torch.tensor([1, 0]), length, 2).tolist() == [
        [BLANK, 5, 6, 7, END],
        [BLANK, BLANK, 8, 9, END],
    ]


def test_heads_move_by_minus_one_zero_plus_one_and_stay_at_the_ends() -> None:
    pos = torch.tensor([0, 0, 2, 4, 4])
    move = torch.tensor([0, 2, 1, 2, 0])  # −1, +1, 0, +1, −1
    assert move_head(pos, move, 4).tolist() == [0, 1, 2, 4, 3]
    # per-row ends (input tapes of different lengths)
    assert move_head(torch.tensor([2, 2]), torch.tensor([2, 2]), torch.tensor([2, 5])).tolist() == [2, 3]


def test_memory_write_replaces_one_cell_by_its_gate_and_reads_a_window() -> None:
    memory = torch.arange(2 * 4 * 3, dtype=torch.float).view(2, 4, 3)  # (B=2, M=4, W=3)
    value = torch.tensor([[1.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
    new = write_memory(memory, torch.tensor([1, 3]), torch.tensor([[1.0], [0.25]]), value)
    assert torch.equal(new[0, 1], value[0])  # gate 1: replaced
    assert torch.allclose(new[1, 3], 0.75 * memory[1, 3])  # gate ¼ towards 0
    untouched = torch.ones(2, 4, dtype=torch.bool)
    untouched[0, 1] = untouched[1, 3] = False
    assert torch.equal(new[untouched], memory[untouched])
    cells = read_memory(new, torch.tensor([0, 3]), 1)  # (B, 3, W)
    assert torch.equal(cells[0, 0], torch.zeros(3)) and torch.equal(cells[0, 2], value[0])
    assert torch.equal(cells[1, 2], torch.zeros(3)) and torch.equal(cells[1, 0], memory[1, 2])


def test_reinforce_gradient_on_a_bandit_matches_the_analytic_gradient() -> None:
    """Three arms with rewards r = (1, 0, 2) under π = softmax(θ): ∂E[r]/∂θ_a = π_a (r_a − Σ_b π_b r_b). The
    score-function estimate from samples, with or without a baseline, must agree with it (Williams 1992)."""
    torch.manual_seed(3)
    theta = torch.tensor([0.3, -0.2, 0.1], requires_grad=True)
    rewards = torch.tensor([1.0, 0.0, 2.0])
    pi = torch.softmax(theta.detach(), 0)
    analytic = pi * (rewards - (pi * rewards).sum())
    n = 200_000
    for baseline in (None, torch.full((n,), 1.1)):
        theta.grad = None
        probs = torch.softmax(theta, 0).expand(n, 3)
        arm, log_pi, _ = categorical_sample(probs)
        reinforce_loss(log_pi, rewards[arm], baseline).backward()
        assert torch.allclose(-theta.grad, analytic, atol=0.01), (baseline is None, -theta.grad, analytic)


def test_reward_to_go_sums_the_rewards_not_yet_received() -> None:
    reward = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.0, 0.0, 0.0, -1.0]])
    assert reward_to_go(reward).tolist() == [[-0.5, -1.5, 0.5, 0.0], [-1.0, -1.0, -1.0, -1.0]]


def _model(forward_only: bool = False, direct: bool = False) -> RLNTM:
    torch.manual_seed(0)
    cfg = RLNTM.Config(hidden=7, embed=5, memory_cells=11, memory_width=3, baseline_hidden=5, direct_access=direct)
    return RLNTM(cfg, vocab=9, forward_only=forward_only)


def _batch(dataset: str, lengths: list[int]) -> dict[str, torch.Tensor]:
    cfg = TapesDataConfig(dataset=dataset, symbols=4, max_length=5, max_repeats=3)
    gen = torch.Generator().manual_seed(5)
    return collate_tapes([{**example(cfg, n, gen), "id": i} for i, n in enumerate(lengths)])


@pytest.mark.parametrize("direct", [False, True])
def test_every_output_is_written_within_the_step_budget(direct: bool) -> None:
    b = _batch("repeat-copy", [1, 3, 5])
    m = _model(direct=direct)
    for sample in (True, False):
        out = m(b["inp"], b["in_len"], b["out_len"], b["steps"], sample=sample)
        assert out["emitted"].sum(1).tolist() == b["out_len"].tolist()  # forced at the end if need be
        assert not (out["emitted"] & ~out["active"]).any()
        assert (out["log_pi"][~out["active"]] == 0).all()
        assert (out["in_pos"] < b["in_len"][:, None]).all() and (out["mem_pos"] < 11).all()


def test_forward_reverse_input_head_never_moves_left() -> None:
    b = _batch("forward-reverse", [2, 4, 5])
    out = _model(forward_only=True)(b["inp"], b["in_len"], b["out_len"], b["steps"], sample=True)
    assert (out["in_pos"].diff(dim=1) >= 0).all()
    free = _model()(b["inp"], b["in_len"], b["out_len"], b["steps"], sample=True)
    assert (free["in_pos"].diff(dim=1) < 0).any()  # the same seed with −1 allowed does move left


def test_tasks_write_the_papers_outputs() -> None:
    cfg = TapesDataConfig(symbols=4, max_repeats=3, duplicates=3)
    a = first_symbol(cfg)  # counts 1..3 are symbols 2..4, data symbols 5..8
    assert a == 5
    gen = torch.Generator().manual_seed(0)
    for name, check in (
        ("copy", lambda x, y: y == x),
        ("reverse", lambda x, y: y == x[:-1][::-1] + [END]),
        ("forward-reverse", lambda x, y: y == x[:-1][::-1] + [END]),
        ("duplicated-input", lambda x, y: x[:-1] == [s for s in y[:-1] for _ in range(3)]),
        ("repeat-copy", lambda x, y: y[:-1] == x[1:-1] * (x[0] - 1) and 2 <= x[0] <= 4),
    ):
        ex = example(TapesDataConfig(dataset=name, symbols=4), 4, gen)
        x, y = ex["inp"].tolist(), ex["tgt"].tolist()
        assert x[-1] == END and y[-1] == END and check(x, y), (name, x, y)
        assert all(s >= a for s in y[:-1])


def test_curriculum_draws_around_its_level_and_is_seeded() -> None:
    gen = torch.Generator().manual_seed(1)
    draws = [draw_length(3, 20, gen) for _ in range(4000)]
    at_level = [n for n, relevant in draws if relevant]
    assert min(at_level) == 3 and max(n for n, _ in draws) <= 20
    share = sum(1 for n in at_level if n == 3) / len(at_level)
    assert share == pytest.approx(0.5, abs=0.03)  # e = 0 with probability ½
    assert sum(not r for _, r in draws) / len(draws) == pytest.approx(0.1 + 0.9 * 0.25, abs=0.03)
    cfg = TapesDataConfig(max_length=20)
    ids = torch.tensor([7, 12, 40])
    one, two = curriculum_batch(cfg, 5, ids, 4), curriculum_batch(cfg, 5, ids, 4)
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not torch.equal(curriculum_batch(cfg, 6, ids, 4)["inp"], one["inp"])


def test_the_curriculum_rises_when_the_error_at_its_level_is_low() -> None:
    recipe = load_recipe("tapes", "tiny/rlntm")
    dm = TASKS.get("tapes").datamodule(recipe, Path("."))
    dm.setup("fit")
    module = TASKS.get("tapes").module(recipe, dm.meta)
    ids = next(iter(dm.train_dataloader()))
    module.training_step(ids, 0)
    assert int(module.level) == 1 and float(module.level_error) > 0.25  # an untrained model is mostly wrong
    module.level_error.fill_(0.0)  # as if the last updates had been right
    module.level_age.fill_(recipe.data.curriculum_refractory + 1)
    module.training_step(ids, 1)  # 0.8·0 + 0.2·error < 0.25 for any error rate ≤ 1
    assert int(module.level) == 2 and float(module.level_error) == 1.0 and int(module.level_age) == 0
    assert int(module.state_dict()["level"]) == 2  # checkpoints carry the level


def test_metrics_count_sequences_symbols_and_lengths() -> None:
    rows = [
        {"id": 0, "length": 1, "correct": True, "errors": 0, "symbols": 2, "nll": 0.5},
        {"id": 1, "length": 2, "correct": False, "errors": 1, "symbols": 3, "nll": 1.0},
        {"id": 2, "length": 3, "correct": True, "errors": 0, "symbols": 4, "nll": 0.0},
    ]
    m = tape_metrics(rows, max_length=2)
    assert m["seq_accuracy"] == pytest.approx(200 / 3) and m["symbol_error"] == pytest.approx(100 / 9)
    assert m["loss"] == pytest.approx(4 / 9)
    assert m["accuracy_trained"] == 50.0 and m["accuracy_beyond"] == 100.0 and m["accuracy/len2"] == 0.0
    assert "accuracy/len1" not in tape_metrics(rows, max_length=2, final=False)


def test_bad_tape_settings_are_one_line_errors(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "tapes", "--recipe", "tiny/rlntm", "--set", "data.dataset=revers")
    assert code == 2 and "unknown tape task 'revers'" in err and "Traceback" not in err
    code, _, err = run_cli("train", "tapes", "--recipe", "tiny/rlntm", "--set", "data.max_length=9")
    assert code == 2 and "data.test_max_length=5" in err
    code, _, err = run_cli("train", "tapes", "--recipe", "tiny/rlntm", "--set", "data.symbols=1")
    assert code == 2 and "data.symbols must be at least 2" in err
    assert not any(dirs["runs"].rglob("recipe.yaml"))  # nothing half-written


def test_unknown_tape_task_in_the_datamodule_raises() -> None:
    with pytest.raises(AttnError, match="unknown tape task"):
        TapesDataModule(TapesDataConfig(dataset="sort"), 4, seed=1)


def test_tiny_recipe_trains_evaluates_and_draws_the_heads(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "tapes", "--recipe", "tiny/rlntm-direct", "--set", "train.threads=1")
    assert code == 0, err
    run_dir = next(p.parent for p in (dirs["runs"] / "tapes").rglob("train_done.json"))
    code, _, err = run_cli("visualize", "tapes", "--run", str(run_dir), "--split", "train")
    assert code == 2 and "--split val or test" in err
    assert run_cli("eval", "tapes", "--run", str(run_dir))[0] == 0
    code, _, err = run_cli("visualize", "tapes", "--run", str(run_dir), "--n", "2")
    assert code == 0, err
    pngs = sorted((run_dir / "viz").glob("*.png"))
    # the first examples of C = 3 and 2 (the longest training lengths; 3 test examples per length)
    assert [p.name for p in pngs] == ["accuracy_by_length.png", "test_3_heads.png", "test_6_heads.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
