"""The ``luong-*-sgd`` recipes: Luong et al. (2015) §4.1's own protocol on WMT'14 En→De, built at tiny size."""

from __future__ import annotations

import pytest
import torch

from attn_cli.config import load_recipe
from attn_cli.tasks.nmt import NmtModule

SGD_RECIPES = [
    "luong-global-general-sgd",
    "luong-global-dot-sgd",
    "luong-global-location-sgd",
    "luong-local-m-sgd",
    "luong-local-p-sgd",
    "luong-local-p-dot-sgd",
]
TINY = ["model.emb_dim=7", "model.enc_hidden=11", "model.hidden=11"]  # 4 layers kept; widths shrunk
V_SRC, V_TGT = 13, 17


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, V_SRC, (3, 5), generator=g)
    src[2, 3:] = 0  # a shorter source (PAD = 0)
    tgt = torch.randint(4, V_TGT, (3, 6), generator=g)
    return {"src": src, "src_len": torch.tensor([5, 5, 3]), "tgt_in": tgt, "tgt_out": tgt.roll(-1, 1)}


@pytest.mark.parametrize("name", SGD_RECIPES)
def test_sgd_recipe_is_the_papers_protocol(name: str) -> None:
    r = load_recipe("nmt", name)
    m, t = r.model, r.train
    assert (m.enc_layers, m.dec_layers, m.enc_hidden, m.hidden, m.emb_dim) == (4, 4, 1000, 1000, 1000)
    assert not m.bidirectional and m.init == "encoder_final" and m.reverse_source and m.input_feed
    assert (m.dropout, m.init_range) == (0.2, 0.1)
    assert (t.optimizer, t.lr, t.momentum, t.batch_size, t.max_epochs) == ("sgd", 1.0, 0.0, 128, 12)
    assert (t.grad_clip, t.grad_clip_algorithm) == (5.0, "norm")
    assert (r.data.dataset, r.data.max_len) == ("wmt14-en-de", 50)


@pytest.mark.parametrize("name", SGD_RECIPES)
def test_sgd_recipe_builds_trains_a_step_and_halves_after_epoch_8(name: str) -> None:
    recipe = load_recipe("nmt", name, TINY)
    vocab = {"src": [f"s{i}" for i in range(V_SRC)], "tgt": [f"t{i}" for i in range(V_TGT)]}
    module = NmtModule(recipe, {"src_vocab": V_SRC, "tgt_vocab": V_TGT, "pad_id": 0, "vocab": vocab})
    params = list(module.model.parameters())
    assert all(p.abs().max() <= 0.1 for p in params)  # U(-0.1, 0.1), every parameter
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.SGD)
    before = [p.detach().clone() for p in params]
    nll, ntok = module._nll(_batch())
    (nll.sum() / ntok.sum()).backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, params, strict=True))
    lrs = []
    for _ in range(12):  # the lr each epoch trains with, then the epoch-end step
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == pytest.approx([1.0] * 8 + [0.5, 0.25, 0.125, 0.0625])
