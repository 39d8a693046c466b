"""The stack RNN of Joulin & Mikolov (2015) on hand-computed cases, the patterns it is trained on and
the paper's scoring; the parametrised tests (test_models, test_registry) cover training end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from attn_cli.config import load_recipe
from attn_cli.data.patterns import (
    PATTERNS,
    PatternsDataConfig,
    PatternsDataModule,
    collate_patterns,
    curriculum_max,
    example,
    sequence,
)
from attn_cli.errors import AttnError
from attn_cli.models.stackrnn import EMPTY, ListRNN, StackRNN, list_update, round_actions, stack_update
from attn_cli.tasks.patterns import pattern_metrics
from tests.conftest import run_cli


def test_stack_update_matches_equations_6_and_7_by_hand() -> None:
    # one stack [0.5, 0.2, -1 (empty)], P(PUSH, POP, NO-OP) = (0.6, 0.3, 0.1), σ(D h) = 0.9:
    # s[0] = 0.6·0.9 + 0.3·0.2 + 0.1·0.5 = 0.65
    # s[1] = 0.6·0.5 + 0.3·(-1) + 0.1·0.2 = 0.02
    # s[2] = 0.6·0.2 + 0.3·EMPTY + 0.1·(-1) = -0.28   (popping reads EMPTY below the last element)
    stack = torch.tensor([[[0.5, 0.2, EMPTY]]])  # (B=1, K=1, S=3)
    actions = torch.tensor([[[0.6, 0.3, 0.1]]])  # (1, 1, 3)
    new = stack_update(stack, actions, torch.tensor([[0.9]]))
    assert torch.allclose(new, torch.tensor([[[0.65, 0.02, -0.28]]]))


def test_push_only_and_pop_only_actions_without_noop() -> None:
    stack = torch.tensor([[[0.5, 0.2, 0.7], [0.1, EMPTY, EMPTY]]])  # (1, K=2, S=3)
    actions = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # stack 0 pushes, stack 1 pops (no NO-OP action)
    new = stack_update(stack, actions, torch.tensor([[0.3, 0.9]]))
    assert torch.allclose(new, torch.tensor([[[0.3, 0.5, 0.2], [EMPTY, EMPTY, EMPTY]]]))


def test_rounded_push_then_pop_restores_the_stack() -> None:
    stack = torch.tensor([[[0.25, 0.75, EMPTY, EMPTY]]])
    push = round_actions(torch.tensor([[[0.4, 0.35, 0.25]]]))
    pop = round_actions(torch.tensor([[[0.2, 0.5, 0.3]]]))
    assert push.tolist() == [[[1.0, 0.0, 0.0]]] and pop.tolist() == [[[0.0, 1.0, 0.0]]]
    pushed = stack_update(stack, push, torch.tensor([[0.6]]))
    assert torch.allclose(pushed, torch.tensor([[[0.6, 0.25, 0.75, EMPTY]]]))
    assert torch.equal(stack_update(pushed, pop, torch.tensor([[0.1]])), stack)


def test_two_steps_of_the_model_match_equations_4_to_7() -> None:
    """h_t = σ(U x_t + P s^d_{t-1}) (no R), a_t = softmax(A h_t), the update, y_t = V h_t — by hand, 2 steps."""
    torch.manual_seed(3)
    cfg = StackRNN.Config(hidden=5, stacks=3, depth=2, stack_size=7, noop=True, hidden_recurrence=False)
    m = StackRNN(cfg, vocab=3).eval()
    inp = torch.tensor([[2, 0]])
    with torch.no_grad():
        out = m(inp, keep_memory=True)
        stack = torch.full((1, 3, 7), EMPTY)
        for t in range(2):
            read = stack[..., :2].reshape(1, -1) @ m.read.weight.T  # P s^d_{t-1}
            h = torch.sigmoid(m.embed.weight[inp[:, t]] + read)
            a = torch.softmax((h @ m.act.weight.T + m.act.bias).view(1, 3, 3), -1)
            top = torch.sigmoid(h @ m.push.weight.T + m.push.bias)  # σ(D h_t)
            stack = a[..., 0:1] * torch.cat([top[..., None], stack[..., :-1]], -1) + a[..., 1:2] * torch.cat(
                [stack[..., 1:], torch.full((1, 3, 1), EMPTY)], -1
            ) + a[..., 2:3] * stack  # fmt: skip
            assert torch.allclose(out["logits"][:, t], h @ m.out.weight.T + m.out.bias, atol=1e-6)
            assert torch.allclose(out["actions"][:, t], a, atol=1e-6)
            assert torch.allclose(out["memory"][:, t], stack, atol=1e-6)


def test_list_update_matches_the_papers_three_cases_by_hand() -> None:
    # one list [0.1, 0.2, 0.3, 0.4, 0.5], head at cell 2, P(INSERT, LEFT, RIGHT, NO-OP) = (0.5, 0.2, 0.2, 0.1),
    # σ(D h) = 0.9; beyond either end the list reads -1. RIGHT brings L[i+1], LEFT L[i-1], INSERT writes 0.9 at
    # the head, L[i+1] left of it and keeps L[i] right of it:
    # L[0] = 0.2·0.2 + 0.2·(-1)  + 0.5·0.2 + 0.1·0.1 = -0.05
    # L[1] = 0.2·0.3 + 0.2·0.1   + 0.5·0.3 + 0.1·0.2 =  0.25
    # L[2] = 0.2·0.4 + 0.2·0.2   + 0.5·0.9 + 0.1·0.3 =  0.60   (the head)
    # L[3] = 0.2·0.5 + 0.2·0.3   + 0.5·0.4 + 0.1·0.4 =  0.40
    # L[4] = 0.2·(-1) + 0.2·0.4  + 0.5·0.5 + 0.1·0.5 =  0.18
    memory = torch.tensor([[[0.1, 0.2, 0.3, 0.4, 0.5]]])  # (B=1, K=1, S=5)
    actions = torch.tensor([[[0.5, 0.2, 0.2, 0.1]]])  # (1, 1, 4)
    new = list_update(memory, actions, torch.tensor([[0.9]]), head=2)
    assert torch.allclose(new, torch.tensor([[[-0.05, 0.25, 0.60, 0.40, 0.18]]]))


def test_discrete_list_actions_insert_and_move_the_head() -> None:
    """INSERT twice stacks the values at and left of the head (read as a stack's top two); RIGHT then LEFT
    moves the head and back, losing nothing."""
    cfg = ListRNN.Config(hidden=3, lists=1, depth=2, list_size=5, noop=False, hidden_recurrence=False)
    m = ListRNN(cfg, vocab=2)
    insert, left, right = torch.eye(3)[:, None, None, :]  # (1, 1, 3) one-hot actions, no NO-OP
    memory = torch.full((1, 1, 5), EMPTY)
    memory = m.update(memory, insert, torch.tensor([[0.7]]))
    memory = m.update(memory, insert, torch.tensor([[0.3]]))
    assert torch.allclose(memory, torch.tensor([[[EMPTY, 0.7, 0.3, EMPTY, EMPTY]]]))
    assert torch.allclose(m.cells_read(memory), torch.tensor([[[0.3, 0.7]]]))  # the head, then the cell on its left
    moved = m.update(memory, right, torch.tensor([[0.5]]))
    # the head now sees the empty cell on its right
    assert torch.allclose(moved, torch.tensor([[[0.7, 0.3, EMPTY, EMPTY, EMPTY]]]))
    assert torch.equal(m.update(moved, left, torch.tensor([[0.5]])), memory)


def test_list_rnn_depth_beyond_the_left_end_is_a_one_line_error() -> None:
    with pytest.raises(AttnError, match="set model.list_size >= 7"):
        ListRNN(ListRNN.Config(depth=4, list_size=5), vocab=2)


def test_patterns_and_their_deterministic_symbols() -> None:
    gen = torch.Generator().manual_seed(0)
    seq, scored, nxt = sequence("anbncn", 3, gen)
    assert "".join("abc"[c] for c in seq) == "aaabbbccc" and nxt == 0
    assert scored == [False] * 4 + [True] * 5  # everything after the first b
    ex = example("anbn", 2, gen)
    assert ex["inp"].tolist() == [1, 0, 0, 1, 1] and ex["tgt"].tolist() == [0, 0, 1, 1, 0]
    assert ex["scored"].tolist() == [False, False, False, True, True]  # the second b and the next sequence's a
    for n in range(2, 12):
        s, sc, _ = sequence("anbmcnm", n, gen)
        a, b, c = s.count(0), s.count(1), s.count(2)
        assert a >= 1 and b >= 1 and c == a + b == n and s == sorted(s)
        assert sc.index(True) == a + b + 1  # after the first c
    s, sc, _ = sequence("memorise", 4, gen)
    assert s[4] == 0 and s[5:] == s[:4][::-1] and 0 not in s[:4] and sc == [False] * 5 + [True] * 4
    mem = example("memorise", 4, gen)
    assert not bool(mem["scored"][-1])  # the next sequence's first symbol is random: never scored
    s, _, _ = sequence("anb2n", 3, gen)
    assert s == [0] * 3 + [1] * 6


def _text(ids: torch.Tensor) -> str:
    return "".join(PATTERNS["addition"][int(i)] for i in ids)


def test_binary_addition_writes_the_sum_reversed_and_scores_only_it() -> None:
    gen = torch.Generator().manual_seed(5)
    for n in range(0, 30):
        ex = example("addition", n, gen)
        inp, tgt = _text(ex["inp"]), _text(ex["tgt"])
        assert inp[0] == "." and inp[1:] == tgt[:-1]  # the previous sequence's "." then the sequence
        x, rest = tgt[:-1].split("+")
        y, sum_reversed = rest.split("=")
        assert sum_reversed.endswith(".") and tgt[-1] in "01"
        # the two lengths add up to n (a length-0 number is written "0"), leading digits are 1
        assert len(x.lstrip("0")) + len(y.lstrip("0")) == n
        assert all(len(v) == 1 or v[0] == "1" for v in (x, y))
        assert int(sum_reversed[:-1][::-1], 2) == int(x, 2) + int(y, 2)
        # scored and trained: exactly the sum's digits and its "." (the paper's supervised setting)
        first = tgt.index("=") + 1
        assert ex["scored"].tolist() == [first <= i < len(tgt) - 1 for i in range(len(tgt))]
        assert torch.equal(ex["trained"], ex["scored"])
    assert _text(example("addition", 3, torch.Generator().manual_seed(1))["tgt"]).count("+") == 1
    counting = example("anbn", 3, gen)
    assert bool(counting["trained"].all())  # the unsupervised patterns train on every symbol


def test_addition_trains_on_the_sum_only() -> None:
    """The training loss is the cross-entropy of the sum's digits and "." alone, not of the numbers before "="."""
    from attn_cli.tasks.patterns import PatternsModule

    recipe = load_recipe("patterns", "tiny/stack-rnn-addition")
    gen = torch.Generator().manual_seed(2)
    batch = collate_patterns([{**example("addition", n, gen), "id": n} for n in (3, 6)])
    module = PatternsModule(recipe, {"vocab": 5, "pattern": "addition", "max_n": 5})
    with torch.no_grad():
        loss = module.training_step(batch, 0)
        logits = module.model(batch["inp"])["logits"]  # (B, T, V)
    trained, real = batch["trained"], batch["mask"]
    assert int(trained.sum()) < int(real.sum())
    assert torch.isclose(loss, F.cross_entropy(logits[trained], batch["tgt"][trained]))
    assert not torch.isclose(loss, F.cross_entropy(logits[real], batch["tgt"][real]))


def test_curriculum_grows_one_per_epoch_up_to_max_n() -> None:
    assert [curriculum_max(e, 5) for e in range(6)] == [2, 3, 4, 5, 5, 5]


def test_splits_are_seeded_and_the_test_set_covers_every_size() -> None:
    cfg = PatternsDataConfig(dataset="anbncn", max_n=4, train_size=8, val_size=6, test_max_n=9, test_per_n=3)
    a, b = PatternsDataModule(cfg, 4, seed=1), PatternsDataModule(cfg, 4, seed=2)
    a.setup(), b.setup()
    assert sorted({int(a.dataset("test")[i]["n"]) for i in range(len(a.dataset("test")))}) == list(range(2, 10))
    assert torch.equal(a.dataset("val")[5]["inp"], b.dataset("val")[5]["inp"])  # every run: the same val set
    train_a = [a.dataset("train")[i]["n"] for i in range(8)]  # epoch 0 of the curriculum: n = 2 only
    assert train_a == [2] * 8
    assert max(a.dataset("train")[8 * 5 + i]["n"] for i in range(8)) <= 4


def test_metrics_follow_the_papers_protocol() -> None:
    rows = [
        {"n": 2, "correct": True, "nll": 0.1},
        {"n": 2, "correct": True, "nll": 0.1},
        {"n": 3, "correct": True, "nll": 0.2},
        {"n": 3, "correct": False, "nll": 0.4},
        {"n": 4, "correct": True, "nll": 0.2},
    ]
    m = pattern_metrics(rows, max_n=2)
    assert m["seq_accuracy"] == pytest.approx(80.0) and m["accuracy/n3"] == pytest.approx(50.0)
    assert m["solved_n"] == pytest.approx(100.0 * 2 / 3)  # n = 2 and 4 solved, n = 3 not
    assert m["accuracy_beyond"] == pytest.approx(200.0 / 3)
    assert "solved_n" not in pattern_metrics(rows, max_n=2, final=False)


def test_bad_pattern_settings_are_one_line_errors(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "patterns", "--recipe", "tiny/stack-rnn", "--set", "data.dataset=anbnx")
    assert code == 2 and "unknown pattern 'anbnx'" in err and "Traceback" not in err
    code, _, err = run_cli("train", "patterns", "--recipe", "tiny/stack-rnn", "--set", "data.max_n=8")
    assert code == 2 and "data.test_max_n=7" in err
    code, _, err = run_cli("train", "patterns", "--recipe", "tiny/stack-rnn", "--set", "model.depth=12")
    assert code == 2 and "set model.depth <= model.stack_size" in err
    code, _, err = run_cli("train", "patterns", "--recipe", "tiny/stack-rnn", "--set", "data.test_per_n=0")
    assert code == 2 and "data.test_per_n=0 is invalid" in err
    assert not any(dirs["runs"].rglob("recipe.yaml"))  # nothing half-written


def test_visualize_refuses_a_model_without_stacks(dirs: dict[str, Path]) -> None:
    code, _, err = run_cli("train", "patterns", "--recipe", "tiny/pattern-rnn", "--set", "train.threads=1")
    assert code == 0, err
    run_dir = next(p.parent for p in (dirs["runs"] / "patterns").rglob("train_done.json"))
    code, _, err = run_cli("visualize", "patterns", "--run", str(run_dir))
    assert code == 2 and "has no stack to draw" in err


@pytest.mark.parametrize("recipe", ["tiny/stack-rnn", "tiny/stack-rnn-addition", "tiny/list-rnn"])
def test_visualize_draws_the_stacks_of_a_stack_rnn(dirs: dict[str, Path], recipe: str) -> None:
    """The stack pictures of the counting patterns, of binary addition (with NO-OP) and of the list RNN."""
    code, _, err = run_cli("train", "patterns", "--recipe", recipe, "--set", "train.threads=1")
    assert code == 0, err
    run_dir = next(p.parent for p in (dirs["runs"] / "patterns").rglob("train_done.json"))
    code, out, err = run_cli("visualize", "patterns", "--run", str(run_dir), "--n", "2")
    assert code == 0, err
    pngs = sorted((run_dir / "viz").glob("*.png"))
    assert len(pngs) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert run_cli("eval", "patterns", "--run", str(run_dir))[0] == 0
    assert run_cli("visualize", "patterns", "--run", str(run_dir), "--n", "1")[0] == 0
    assert (run_dir / "viz" / "accuracy_by_n.png").is_file()  # the per-n curve once the run is evaluated
    assert (
        load_recipe("patterns", str(run_dir / "recipe.yaml")).model_name == load_recipe("patterns", recipe).model_name
    )


def test_joulin_table_carries_table_2_and_no_number_for_addition() -> None:
    from attn_cli.registry import TABLES

    rows = {r.key: r for r in TABLES.get("joulin").rows}
    assert rows["list-rnn"].paper == {
        "anbn": 100.0,
        "anbncn": 33.3,
        "anbncndn": 100.0,
        "anb2n": 100.0,
        "anbmcnm": 100.0,
    }
    assert rows["stack-rnn"].paper["anbmcnm"] == 43.3
    # the authors' -hard row carries Table 2's rounding row on every counting pattern, nothing for addition
    assert rows["stack-rnn-rounded"].paper == dict.fromkeys(("anbn", "anbncn", "anbncndn", "anb2n", "anbmcnm"), 100.0)
    assert "addition" not in rows["lstm"].paper and "addition" not in rows["rnn"].paper  # the paper runs neither


def test_unknown_pattern_in_the_datamodule_raises() -> None:
    with pytest.raises(AttnError, match="unknown pattern"):
        PatternsDataModule(PatternsDataConfig(dataset="abc"), 4, seed=1)
