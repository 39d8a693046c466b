"""Neural Turing Machine (Graves, Wayne & Danihelka 2014) and its LSTM baseline, for copy / repeat copy.

An LSTM controller reads [x_t, r_{t−1}]; one write head then one read head are addressed by
:func:`attn_cli.attention.memory.ntm_address` (content then location, §3.3, Eq. 5-9). The write
erases then adds (§3.2, Eq. 3-4); the read is r_t = Σ_i w_t(i) M_t(i) (Eq. 2); the output is
y_t = W[h_t, r_t] (logits of the output bits).

Deviations: the memory starts at a small constant (1e-6) and the first read vector and
weightings are learned biases passed through a softmax, choices of later reimplementations
(Collier & Beel 2018) that the paper leaves open. The weighting biases start focused on slot 0
(logit ``init_focus`` = 10 there, 0 elsewhere: w_0(0) ≈ 0.994), not near uniform: with a constant
memory, a (near-)uniform first weighting spreads every write over all 128 rows, the rows stay
(near-)identical, reads return the same vector wherever they look, and the gradients of both heads'
addressing parameters (key, β, g, s, γ) vanish — at the Glorot-range random start of Collier &
Beel's ``learned_init`` they are ~1e-7, five orders below the erase/add gradients, and a 20,000-update
run still wrote with weightings no sharper than 0.05 (``test_ntm_addressing_gets_gradient``). A
focused start is a point from which location addressing (Eq. 7-9: g → 0, shift +1) walks the memory
at once. One read and one write head (the paper's copy setup); the paper trains with RMSProp, the
recipes state what they use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.memory import ntm_address
from attn_cli.registry import MODELS


@MODELS.register("ntm", task="memory")
class NTM(nn.Module):
    @dataclass(frozen=True)
    class Config:
        controller: int = 100  # LSTM controller units (Graves et al. Table 2: 100)
        slots: int = 128  # N memory locations
        slot_width: int = 20  # W per location
        shift_range: int = 1  # shifts −1, 0, +1
        init_focus: float = 10.0  # logit of slot 0 in the learned first weightings (0: uniform, see docstring)

    def __init__(self, cfg: Config, *, width: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        n, w, s = cfg.slots, cfg.slot_width, 2 * cfg.shift_range + 1
        self.in_dim, self.out_dim = width + 2, width + 1
        self.cell = nn.LSTMCell(self.in_dim + w, cfg.controller)
        self.addr_sizes = [w, 1, 1, s, 1]  # key, beta, gate, shift, gamma
        self.read_head = nn.Linear(cfg.controller, sum(self.addr_sizes))
        self.write_head = nn.Linear(cfg.controller, sum(self.addr_sizes) + 2 * w)  # + erase, add
        self.out = nn.Linear(cfg.controller + w, self.out_dim)
        self.r0 = nn.Parameter(torch.randn(w) * 0.01)
        focus = torch.zeros(n)
        focus[0] = cfg.init_focus  # focused, not uniform: see the module docstring (symmetry breaking)
        self.w0_read = nn.Parameter(focus.clone())
        self.w0_write = nn.Parameter(focus.clone())

    def _address(self, params: torch.Tensor, memory: torch.Tensor, w_prev: torch.Tensor) -> torch.Tensor:
        key, beta, gate, shift, gamma = params.split(self.addr_sizes, dim=-1)
        w, _ = ntm_address(
            memory, torch.tanh(key), F.softplus(beta), torch.sigmoid(gate), torch.softmax(shift, -1),
            1 + F.softplus(gamma), w_prev,
        )  # fmt: skip
        return w  # (B, N)

    def forward(self, inp: torch.Tensor) -> dict[str, torch.Tensor]:
        """inp (B, T, I) -> logits (B, T, O), read_w / write_w (B, T, N)."""
        b, t, _ = inp.shape
        cfg = self.cfg
        memory = inp.new_full((b, cfg.slots, cfg.slot_width), 1e-6)  # (B, N, W)
        r = self.r0.expand(b, -1)  # (B, W)
        w_r = torch.softmax(self.w0_read, 0).expand(b, -1)  # (B, N)
        w_w = torch.softmax(self.w0_write, 0).expand(b, -1)  # (B, N)
        h = c = inp.new_zeros(b, cfg.controller)
        logits, reads, writes = [], [], []
        na = sum(self.addr_sizes)
        for step in range(t):
            h, c = self.cell(torch.cat([inp[:, step], r], -1), (h, c))  # (B, C)
            wp = self.write_head(h)
            w_w = self._address(wp[:, :na], memory, w_w)  # (B, N)
            erase, add = torch.sigmoid(wp[:, na : na + cfg.slot_width]), torch.tanh(wp[:, na + cfg.slot_width :])
            memory = memory * (1 - w_w[..., None] * erase[:, None]) + w_w[..., None] * add[:, None]  # Eq. 3-4
            w_r = self._address(self.read_head(h), memory, w_r)  # (B, N)
            r = torch.einsum("bn,bnw->bw", w_r, memory)  # (B, W)  Eq. 2
            logits.append(self.out(torch.cat([h, r], -1)))
            reads.append(w_r)
            writes.append(w_w)
        return {"logits": torch.stack(logits, 1), "read_w": torch.stack(reads, 1), "write_w": torch.stack(writes, 1)}


@MODELS.register("ntm-lstm", task="memory")
class LSTMBaseline(nn.Module):
    """The LSTM baseline of Graves et al. (2014) §4: a stacked LSTM straight from inputs to output bits.

    Deviation: the paper's baseline has 3 layers of 256 units; the recipes state their sizes.
    """

    attends = False  # no memory, so no weightings for `attn visualize` to draw

    @dataclass(frozen=True)
    class Config:
        hidden: int = 256
        layers: int = 3

    def __init__(self, cfg: Config, *, width: int, **meta: Any) -> None:
        super().__init__()
        self.lstm = nn.LSTM(width + 2, cfg.hidden, cfg.layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden, width + 1)

    def forward(self, inp: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden, _ = self.lstm(inp)  # (B, T, H)
        return {"logits": self.out(hidden)}
