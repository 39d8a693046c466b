"""NTM checks against Graves et al. (2014): addressing (Eq. 5-9), the copy data, and trainability at init."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attn_cli.attention.memory import ntm_address
from attn_cli.data.copy_tasks import draw, sample
from attn_cli.data.memory import collate_seq
from attn_cli.models.ntm import NTM


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
    model = NTM(NTM.Config(controller=16, slots=12, slot_width=6), width=8)
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
    model = NTM(NTM.Config(), width=8)
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
    from attn_cli.data.memory import FixedDataset
    from attn_cli.tasks.memory import longest_first

    ds = FixedDataset([{"length": torch.tensor(n)} for n in (10, 10, 20, 20, 120, 120)])
    assert longest_first(ds, 2) == [4, 2]
    assert longest_first(ds, 5) == [4, 2, 0]
