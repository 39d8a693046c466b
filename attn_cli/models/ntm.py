"""Neural Turing Machine (Graves, Wayne & Danihelka 2014) and its LSTM baseline, for the paper's five tasks.

A controller reads [x_t, r_{t−1}] (every read head's vector of the previous step): an LSTM (one or
more layers, Table 3) or a feed-forward network (tanh layers, Table 2). Each write head then each
read head is addressed by :func:`attn_cli.attention.memory.ntm_address` (content then location,
§3.3, Eq. 5-9). The writes erase then add (§3.2, Eq. 3-4); with several write heads every erase
applies before every add, M̃ = M ∏_h (1 − w_h e_h), M = M̃ + Σ_h w_h a_h, which is the paper's
"erasures can be performed in any order". A read is r_t = Σ_i w_t(i) M_t(i) (Eq. 2); the output is
y_t = W[h_t, r_t] (logits of the output bits). ``heads`` is the paper's #Heads (Tables 2-3), read
and write heads alike. The tasks' widths come from the data (``in_width``, ``out_width``).

Deviations: the memory starts at a small constant (1e-6) and the first read vectors and
weightings are learned biases passed through a softmax, choices of later reimplementations
(Collier & Beel 2018) that the paper leaves open. The weighting biases start focused on slot 0
(logit ``init_focus`` = 10 there, 0 elsewhere: w_0(0) ≈ 0.994), not near uniform: with a constant
memory, a (near-)uniform first weighting spreads every write over all 128 rows, the rows stay
(near-)identical, reads return the same vector wherever they look, and the gradients of both heads'
addressing parameters (key, β, g, s, γ) vanish — at the Glorot-range random start of Collier &
Beel's ``learned_init`` they are ~1e-7, five orders below the erase/add gradients, and a 20,000-update
run still wrote with weightings no sharper than 0.05 (``test_ntm_addressing_gets_gradient``). A
focused start is a point from which location addressing (Eq. 7-9: g → 0, shift +1) walks the memory
at once. The paper trains with RMSProp, the recipes state what they use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.memory import ntm_address
from attn_cli.registry import MODELS

State = list[tuple[torch.Tensor, torch.Tensor]]  # per LSTM layer (h, c), each (B, C); empty for feed-forward


def ntm_write(memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """Every write head's erase, then every add (§3.2, Eq. 3-4): M̃ = M ∏_h (1 − w_h e_h), M' = M̃ + Σ_h w_h a_h.

    memory (B, N, W); w (B, H, N) write weightings; erase (B, H, W) in [0, 1]; add (B, H, W).
    """
    erased, added = w[..., None] * erase[:, :, None], w[..., None] * add[:, :, None]  # (B, H, N, W)
    if w.size(1) == 1:  # one write head (the copy tasks): no product or sum over heads
        return memory * (1 - erased[:, 0]) + added[:, 0]  # (B, N, W)
    return memory * (1 - erased).prod(1) + added.sum(1)  # (B, N, W)


@MODELS.register("ntm", task="memory")
class NTM(nn.Module):
    @dataclass(frozen=True)
    class Config:
        controller: int = 100  # units per controller layer (Graves et al. Tables 2-3: 100 on copy)
        controller_type: Literal["lstm", "feedforward"] = "lstm"
        controller_layers: int = 1  # priority sort's LSTM controller has 2 (Table 3: 2 x 100)
        heads: int = 1  # read heads, and as many write heads (Tables 2-3: #Heads)
        slots: int = 128  # N memory locations
        slot_width: int = 20  # W per location
        shift_range: int = 1  # shifts −1, 0, +1
        init_focus: float = 10.0  # logit of slot 0 in the learned first weightings (0: uniform, see docstring)

    def __init__(self, cfg: Config, *, in_width: int, out_width: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        n, w, s, h = cfg.slots, cfg.slot_width, 2 * cfg.shift_range + 1, cfg.heads
        sizes = [in_width + h * w] + [cfg.controller] * cfg.controller_layers
        self.layers = nn.ModuleList(
            nn.LSTMCell(a, b) if cfg.controller_type == "lstm" else nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])
        )
        self.addr_sizes = [w, 1, 1, s, 1]  # key, beta, gate, shift, gamma
        self.read_head = nn.Linear(cfg.controller, h * sum(self.addr_sizes))
        self.write_head = nn.Linear(cfg.controller, h * (sum(self.addr_sizes) + 2 * w))  # + erase, add
        self.out = nn.Linear(cfg.controller + h * w, out_width)
        self.r0 = nn.Parameter(torch.randn(h, w) * 0.01)
        focus = torch.zeros(h, n)
        focus[:, 0] = cfg.init_focus  # focused, not uniform: see the module docstring (symmetry breaking)
        self.w0_read = nn.Parameter(focus.clone())
        self.w0_write = nn.Parameter(focus.clone())

    def _control(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """x (B, I + H·W) -> the last layer's output (B, C) and the new LSTM state."""
        new: State = []
        for k, layer in enumerate(self.layers):
            if isinstance(layer, nn.LSTMCell):
                hc = layer(x, state[k])
                new.append(hc)
                x = hc[0]
            else:
                x = torch.tanh(layer(x))
        return x, new

    def _address(self, params: torch.Tensor, memory: torch.Tensor, w_prev: torch.Tensor) -> torch.Tensor:
        """params (B, H, A), memory (B, N, W), w_prev (B, H, N) -> w (B, H, N); heads go through
        ``ntm_address`` as extra batch rows."""
        b, h, _ = params.shape
        key, beta, gate, shift, gamma = params.reshape(b * h, -1).split(self.addr_sizes, dim=-1)
        mem = memory[:, None].expand(-1, h, -1, -1).reshape(b * h, *memory.shape[1:])  # (B·H, N, W)
        w, _ = ntm_address(
            mem, torch.tanh(key), F.softplus(beta), torch.sigmoid(gate), torch.softmax(shift, -1),
            1 + F.softplus(gamma), w_prev.reshape(b * h, -1),
        )  # fmt: skip
        return w.view(b, h, -1)  # (B, H, N)

    def forward(self, inp: torch.Tensor) -> dict[str, torch.Tensor]:
        """inp (B, T, I) -> logits (B, T, O), read_w / write_w (B, T, N): the first read and write head's
        weightings (what `attn visualize` draws)."""
        b, t, _ = inp.shape
        cfg = self.cfg
        h_n, wd = cfg.heads, cfg.slot_width
        memory = inp.new_full((b, cfg.slots, wd), 1e-6)  # (B, N, W)
        r = self.r0.expand(b, -1, -1).reshape(b, h_n * wd)  # (B, H·W)
        w_r = torch.softmax(self.w0_read, -1).expand(b, -1, -1)  # (B, H, N)
        w_w = torch.softmax(self.w0_write, -1).expand(b, -1, -1)  # (B, H, N)
        zeros = inp.new_zeros(b, cfg.controller)
        state: State = [(zeros, zeros) for layer in self.layers if isinstance(layer, nn.LSTMCell)]
        ctrls, read_vectors, reads, writes = [], [], [], []
        na = sum(self.addr_sizes)
        for step in range(t):
            ctrl, state = self._control(torch.cat([inp[:, step], r], -1), state)  # (B, C)
            wp = self.write_head(ctrl).view(b, h_n, -1)  # (B, H, A + 2W)
            w_w = self._address(wp[..., :na], memory, w_w)  # (B, H, N)
            erase, add = torch.sigmoid(wp[..., na : na + wd]), torch.tanh(wp[..., na + wd :])  # (B, H, W)
            memory = ntm_write(memory, w_w, erase, add)  # (B, N, W)
            w_r = self._address(self.read_head(ctrl).view(b, h_n, -1), memory, w_r)  # (B, H, N)
            # Eq. 2, r = Σ_i w(i) M(i), as a product and sum: ~1.3× bmm's speed at B·H×N×W = 16×128×20 on a CPU
            r = (w_r[..., None] * memory[:, None]).sum(2).reshape(b, h_n * wd)  # (B, H·W)
            ctrls.append(ctrl)
            read_vectors.append(r)
            reads.append(w_r[:, 0])
            writes.append(w_w[:, 0])
        # the output y_t = W[h_t, r_t] of every step in one matmul, after the recurrence
        logits = self.out(torch.cat([torch.stack(ctrls, 1), torch.stack(read_vectors, 1)], -1))  # (B, T, O)
        return {"logits": logits, "read_w": torch.stack(reads, 1), "write_w": torch.stack(writes, 1)}


@MODELS.register("ntm-lstm", task="memory")
class LSTMBaseline(nn.Module):
    """The LSTM baseline of Graves et al. (2014) §4: a stacked LSTM straight from inputs to output bits.

    The paper's sizes (Table 4): 3 layers of 256 on copy, repeat copy and associative recall, 3 x 128 on
    N-grams and priority sort; the recipes state theirs.
    """

    attends = False  # no memory, so no weightings for `attn visualize` to draw

    @dataclass(frozen=True)
    class Config:
        hidden: int = 256
        layers: int = 3

    def __init__(self, cfg: Config, *, in_width: int, out_width: int, **meta: Any) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_width, cfg.hidden, cfg.layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden, out_width)

    def forward(self, inp: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden, _ = self.lstm(inp)  # (B, T, H)
        return {"logits": self.out(hidden)}
