"""NTM checks against Graves et al. (2014): addressing (Eq. 5-9), writing (Eq. 3-4), the five tasks' data
(§4.1-4.5), the controllers and heads of Tables 2-3, and trainability at init."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from attn_cli.attention.memory import ntm_address
from attn_cli.data.copy_tasks import NTM_TASKS, check, draw, ngram_optimal_bits, sample
from attn_cli.data.memory import collate_seq
from attn_cli.errors import AttnError
from attn_cli.models.ntm import NTM, ntm_write
from tests.conftest import run_cli


def _address(memory: torch.Tensor, w_prev: torch.Tensor, shift: list[float], gate: float = 0.0) -> torch.Tensor:
    b, _, width = memory.shape
    w, _ = ntm_address(
        memory, torch.ones(b, width), torch.ones(b, 1), torch.full((b, 1), gate), torch.tensor([shift] * b),
        torch.ones(b, 1), w_prev,
    )  # fmt: skip
    return w


def test_shift_moves_focus_forward_circularly() -> None:
    # Eq. 8 w~(i) = Σ_j w_g(j) s(i − j): all mass on shift +1 moves the focus from slot i to i + 1 (mod N)
    memory = torch.rand(1, 5, 3)
    w = _address(memory, torch.tensor([[0.0, 0, 0, 0, 1]]), [0.0, 0.0, 1.0])
    assert torch.allclose(w, torch.tensor([[1.0, 0, 0, 0, 0]]), atol=1e-6)
    w = _address(memory, torch.tensor([[0.0, 1, 0, 0, 0]]), [1.0, 0.0, 0.0])  # shift −1
    assert torch.allclose(w, torch.tensor([[1.0, 0, 0, 0, 0]]), atol=1e-6)


def test_content_weighting_is_softmax_of_scaled_cosine() -> None:
    # Eq. 5-6 with g = 1, no shift, γ = 1: w = softmax(β K(k, M_i))
    memory, key, beta = torch.randn(2, 6, 4), torch.randn(2, 4), torch.tensor([[2.0], [0.5]])
    w, parts = ntm_address(
        memory, key, beta, torch.ones(2, 1), torch.tensor([[0.0, 1, 0]] * 2), torch.ones(2, 1), torch.zeros(2, 6)
    )
    cos = (memory @ key[..., None]).squeeze(-1) / (memory.norm(dim=-1) * key.norm(dim=-1, keepdim=True))
    assert torch.allclose(parts["content"], torch.softmax(beta * cos, -1), atol=1e-5)
    assert torch.allclose(w, parts["content"], atol=1e-5)


@pytest.mark.parametrize("shift_range", [1, 2])
def test_addressing_matches_the_equations_term_by_term(shift_range: int) -> None:
    # Eq. 5-9 written out slot by slot (the fast path uses a product-and-sum cosine, an unfolded circular
    # convolution and exp(γ log w)): same weightings, and the same gradients for every input
    g = torch.Generator().manual_seed(3)
    b, n, width, s = 3, 7, 4, 2 * shift_range + 1
    args = [
        torch.randn(b, n, width, generator=g), torch.randn(b, width, generator=g), torch.rand(b, 1, generator=g) * 4,
        torch.rand(b, 1, generator=g), torch.softmax(torch.randn(b, s, generator=g), -1),
        1 + torch.rand(b, 1, generator=g) * 3, torch.softmax(torch.randn(b, n, generator=g), -1),
    ]  # fmt: skip
    args = [a.double().requires_grad_() for a in args]
    memory, key, beta, gate, shift, gamma, w_prev = args
    rows = []
    for i in range(b):
        cos = torch.stack([memory[i, j] @ key[i] / (memory[i, j].norm() * key[i].norm()) for j in range(n)])
        w_g = gate[i] * torch.softmax(beta[i] * cos, 0) + (1 - gate[i]) * w_prev[i]  # Eq. 5-7
        # Eq. 8, w~(k) = Σ_d w_g(k − d) s(d) over the shifts d = −r..r, indices mod N
        r = shift_range
        w_s = torch.stack([sum(w_g[(k - d) % n] * shift[i, d + r] for d in range(-r, r + 1)) for k in range(n)])
        w_p = w_s ** gamma[i]  # Eq. 9
        rows.append(w_p / w_p.sum())
    expect = torch.stack(rows)
    got, _ = ntm_address(*args)
    assert torch.allclose(got, expect, atol=1e-10)
    weights = torch.randn(b, n, generator=g).double()
    grads = torch.autograd.grad((got * weights).sum(), args)
    for grad, ref in zip(grads, torch.autograd.grad((expect * weights).sum(), args)):
        assert torch.allclose(grad, ref, atol=1e-8)


def test_one_head_write_is_the_general_write() -> None:
    # the one-head shortcut of ntm_write against Eq. 3-4 in full: M (1 − w e) + w a
    g = torch.Generator().manual_seed(4)
    memory, w = torch.rand(2, 5, 3, generator=g), torch.softmax(torch.randn(2, 1, 5, generator=g), -1)
    erase, add = torch.rand(2, 1, 3, generator=g), torch.randn(2, 1, 3, generator=g)
    expect = torch.stack([memory[i] * (1 - torch.outer(w[i, 0], erase[i, 0])) + torch.outer(w[i, 0], add[i, 0])
                          for i in range(2)])  # fmt: skip
    assert torch.allclose(ntm_write(memory, w, erase, add), expect, atol=1e-6)


def test_copy_data_alignment() -> None:
    ex = sample("copy", 4, 8, torch.Generator().manual_seed(0))
    inp, tgt, mask = ex["inp"], ex["tgt"], ex["out_mask"]
    assert inp.shape == (9, 10) and tgt.shape == (9, 9)
    assert torch.equal(inp[4], torch.tensor([0.0] * 8 + [1.0, 0.0]))  # delimiter, on its own channel
    assert inp[5:].abs().sum() == 0  # no input while answering
    assert torch.equal(tgt[5:, :8], inp[:4, :8]) and tgt[:5].abs().sum() == 0
    assert mask.tolist() == [False] * 5 + [True] * 4  # only the output phase is scored


def test_batch_rows_are_independent() -> None:
    # the memory, weightings and controller state are per sequence, never shared across the batch
    torch.manual_seed(0)
    model = NTM(NTM.Config(controller=16, slots=12, slot_width=6), in_width=10, out_width=9)
    gen = torch.Generator().manual_seed(1)
    batch = collate_seq([{**draw("copy", 8, gen, 1, 6), "id": i} for i in range(3)])
    full = model(batch["inp"])["logits"]
    alone = model(batch["inp"][1:2])["logits"]
    assert torch.allclose(full[1], alone[0], atol=1e-5)


def test_ntm_addressing_gets_gradient() -> None:
    # At the paper's size, the heads' addressing parameters must receive real gradient from the start.
    # With a constant memory and near-uniform first weightings they got ~1e-7 (five orders below the
    # erase/add gradient): every write spread over all rows, so where a head looked did not matter.
    torch.manual_seed(0)
    model = NTM(NTM.Config(), in_width=10, out_width=9)
    gen = torch.Generator().manual_seed(1)
    batch = collate_seq([{**draw("copy", 8, gen, 1, 20), "id": i} for i in range(4)])
    out = model(batch["inp"])
    bce = F.binary_cross_entropy_with_logits(out["logits"], batch["tgt"], reduction="none")
    (bce * batch["out_mask"][..., None]).sum().backward()
    n_addr = model.cfg.slot_width + 4 + 2 * model.cfg.shift_range
    erase_add = model.write_head.weight.grad[n_addr:].norm()
    assert model.read_head.weight.grad.norm() > 1e-2 * erase_add
    assert model.write_head.weight.grad[:n_addr].norm() > 1e-2 * erase_add
    assert float(out["write_w"][0, 0].max()) > 0.1  # the first write is focused (uniform: 1/128)


def test_bits_per_seq_is_summed_bce_in_bits() -> None:
    # a model that outputs p = 0.5 everywhere costs exactly 1 bit per scored output bit (9 channels)
    ex = sample("copy", 5, 8, torch.Generator().manual_seed(0))
    logits = torch.zeros_like(ex["tgt"])
    bce = F.binary_cross_entropy_with_logits(logits, ex["tgt"], reduction="none")
    bits = float((bce * ex["out_mask"][..., None]).sum()) / math.log(2)
    assert math.isclose(bits, 5 * 9, rel_tol=1e-6)


def test_visualize_draws_the_longest_test_sequences_first() -> None:
    # a test set is ordered by length (64 of length 10 first): the weightings worth drawing are at 120
    from attn_cli.data.common import FixedItems
    from attn_cli.tasks.memory import longest_first

    ds = FixedItems([{"length": torch.tensor(n)} for n in (10, 10, 20, 20, 120, 120)])
    assert longest_first(ds, 2) == [4, 2]
    assert longest_first(ds, 5) == [4, 2, 0]


def test_associative_recall_alignment() -> None:
    # §4.3: items of three 6-bit vectors, each opened by a delimiter (channel 6); the query item sits
    # between two query delimiters (channel 7); the answer is the item after the queried one
    ex = sample("associative-recall", 3, 6, torch.Generator().manual_seed(3))
    inp, tgt, mask = ex["inp"], ex["tgt"], ex["out_mask"]
    assert inp.shape == (20, 8) and tgt.shape == (20, 6)  # 3 x (1 + 3) + 1 + 3 + 1, then 3 to answer
    assert inp[[0, 4, 8], 6].tolist() == [1.0] * 3 and inp[:, 6].sum() == 3
    assert inp[[12, 16], 7].tolist() == [1.0] * 2 and inp[:, 7].sum() == 2
    items = [inp[4 * i + 1 : 4 * i + 4, :6] for i in range(3)]
    query = [i for i in range(3) if torch.equal(items[i], inp[13:16, :6])]
    assert query and query[0] < 2  # the query is an item with a successor
    assert torch.equal(tgt[17:], items[query[0] + 1]) and tgt[:17].abs().sum() == 0
    assert mask.tolist() == [False] * 17 + [True] * 3 and inp[17:].abs().sum() == 0


def test_ngram_optimal_cost_by_hand() -> None:
    # Eq. 10 on seven zeros: bit 6 after an unseen context costs 1 bit; bit 7, after the same context
    # once followed by 0, has P(0) = (1 + 1/2) / (1 + 1) = 3/4
    assert math.isclose(ngram_optimal_bits([0] * 7), 1 - math.log2(0.75))
    assert math.isclose(ngram_optimal_bits([0, 0, 0, 0, 0, 1, 1, 0]), 3.0)  # three unseen contexts


def test_ngram_sequences() -> None:
    gen = torch.Generator().manual_seed(5)
    exs = [sample("ngrams", 200, 1, gen) for _ in range(8)]
    ex = exs[0]
    assert ex["inp"].shape == (199, 1) and torch.equal(ex["inp"][1:], ex["tgt"][:-1])  # predict the next bit
    assert ex["out_mask"].tolist() == [False] * 4 + [True] * 195  # bits 6 ... 200 have a full context
    bits = [int(b) for b in ex["inp"][:, 0].tolist()] + [int(ex["tgt"][-1, 0])]
    assert math.isclose(float(ex["optimal_bits"]), ngram_optimal_bits(bits), rel_tol=1e-6)
    # a fresh table per sequence is learnable within it: the optimal estimator beats a coin (195 bits)
    mean = sum(float(e["optimal_bits"]) for e in exs) / len(exs)
    assert 60 < mean < 195


def test_priority_sort_targets_the_top_vectors_by_priority() -> None:
    ex = sample("priority-sort", 20, 8, torch.Generator().manual_seed(2))
    inp, tgt, mask = ex["inp"], ex["tgt"], ex["out_mask"]
    assert inp.shape == (37, 10) and tgt.shape == (37, 8)  # 20 in, a delimiter, 16 out
    prio = inp[:20, 9]
    assert bool((prio.abs() <= 1).all()) and inp[20, 8] == 1 and inp[:, 8].sum() == 1
    order = sorted(range(20), key=lambda i: -float(prio[i]))[:16]
    assert torch.equal(tgt[21:], inp[order, :8]) and mask.tolist() == [False] * 21 + [True] * 16


@pytest.mark.parametrize("kind", sorted(NTM_TASKS))
def test_generators_are_seeded(kind: str) -> None:
    task = NTM_TASKS[kind]
    a, b = (draw(kind, task.width, torch.Generator().manual_seed(9), *task.sizes) for _ in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = draw(kind, task.width, torch.Generator().manual_seed(10), *task.sizes)
    assert a["inp"].shape != c["inp"].shape or not torch.equal(a["inp"], c["inp"])  # another seed, another draw
    assert a["inp"].size(1) == task.width + task.in_extra and a["tgt"].size(1) == task.width + task.out_extra


def test_unposable_sizes_and_widths_are_refused(generated_data: Path) -> None:
    with pytest.raises(AttnError, match="at least 2 items"):
        check("associative-recall", 6, 1)
    with pytest.raises(AttnError, match="width 1, not 3"):
        check("ngrams", 3, 200)
    base = ("--data-dir", str(generated_data), "train", "memory", "--recipe", "tiny/ntm-associative-recall")
    code, _, err = run_cli(*base, "--set", "data.min_len=1")
    assert code == 2 and "needs at least 2 items" in err and "Traceback" not in err


def test_write_erases_every_head_then_adds() -> None:
    # Eq. 3-4 with two heads on one slot: M' = M (1 − e1)(1 − e2) + a1 + a2, the other slots untouched
    memory = torch.rand(1, 3, 2)
    w = torch.tensor([[[0.0, 1, 0], [0.0, 1, 0]]])  # (B, H, N)
    erase, add = torch.tensor([[[0.5, 1.0], [0.5, 0.0]]]), torch.tensor([[[0.1, 0.2], [0.3, -0.4]]])
    out = ntm_write(memory, w, erase, add)
    expect = memory[0, 1] * torch.tensor([0.25, 0.0]) + torch.tensor([0.4, -0.2])
    assert torch.allclose(out[0, 1], expect) and torch.equal(out[0, [0, 2]], memory[0, [0, 2]])


@pytest.mark.parametrize("controller_type, layers", [("feedforward", 1), ("lstm", 2)])
def test_controllers_and_heads(controller_type: str, layers: int) -> None:
    # Tables 2-3: feed-forward or (stacked) LSTM controllers, several read and write heads; rows of a batch
    # stay independent and every head's first weightings get gradient
    torch.manual_seed(0)
    cfg = NTM.Config(controller=7, controller_type=controller_type, controller_layers=layers, heads=3, slots=11)
    model = NTM(cfg, in_width=5, out_width=3)
    inp = torch.rand(2, 13, 5)
    out = model(inp)
    assert out["logits"].shape == (2, 13, 3) and out["read_w"].shape == (2, 13, 11)
    assert torch.allclose(model(inp[1:])["logits"][0], out["logits"][1], atol=1e-5)
    out["logits"].sum().backward()
    assert bool((model.w0_read.grad.abs().sum(-1) > 0).all()) and model.r0.grad.shape == (3, 20)


def test_learning_curves_from_records(tmp_path: Path) -> None:
    # scripts/ntm_learning_curves.py draws one figure per task from the records' logged curves: here two
    # N-gram records (the LSTM's absent) and no other task
    import runpy

    draw_all = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "ntm_learning_curves.py"))["draw_all"]
    for prefix in ("ntm", "ntm-ff"):
        rec = tmp_path / "memory" / "ntm-ngrams" / f"{prefix}-ngrams"
        rec.mkdir(parents=True)
        (rec / "recipe.yaml").write_text("train: {batch_size: 16}\n")
        (rec / "learning_curve.csv").write_text(
            "epoch,step,train/loss,val/bits_per_seq,val/loss\n0,9,120.0,,\n0,19,110.0,,\n0,19,,150.0,104.0\n"
        )
        (rec / "result.json").write_text('{"metrics": {"optimal_bits_per_seq": {"value": 130.0, "unit": ""}}}')
    paths = draw_all(tmp_path)
    assert [p.name for p in paths] == ["ntm-ngrams-learning-curves.png"] and paths[0].stat().st_size > 1000
    assert draw_all(tmp_path / "empty") == []


def test_ngram_metrics_report_the_optimal_floor() -> None:
    from attn_cli.tasks.memory import seq_metrics

    rows = [
        {"length": 200, "bits": 150.0, "bit_errors": 40, "optimal_bits": 120.0},
        {"length": 200, "bits": 170.0, "bit_errors": 50, "optimal_bits": 140.0},
    ]
    m = seq_metrics(rows)
    assert m["optimal_bits_per_seq"] == 130.0 and m["excess_bits_per_seq"] == 30.0 and m["bits_per_seq/len200"] == 160.0
    assert "optimal_bits_per_seq" not in seq_metrics(
        [{k: v for k, v in r.items() if k != "optimal_bits"} for r in rows]
    )
