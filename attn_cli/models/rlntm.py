"""RL-NTM (Zaremba & Sutskever 2015, "Reinforcement Learning Neural Turing Machines - Revised",
arXiv:1505.00521): an LSTM controller driving three discrete Interfaces, its tape moves trained by REINFORCE.

The Interfaces (the paper's Table 1):

* **input tape** — read: the symbols in a window around the head (positions p-w … p+w, ``BLANK`` off either
  end); action: move the head by −1, 0 or +1 (the head stays on the tape: it is clamped to its cells);
  with ``forward_only`` (ForwardReverse) the −1 move is masked out;
* **memory tape** — read: the vectors in a window around its head (zeros off the ends); write: a vector
  v = tanh(W_v f) into the cell under the head with a gate e = σ(W_e f), m ← (1 − e) m + e v (learnt by
  backpropagation); action: move by −1, 0 or +1, clamped to ``memory_cells``;
* **output tape** — action: emit or not; write: a distribution over the vocabulary, softmax(W_y f), scored
  against the output symbol under the output head when the model emits (then the head advances);
* **miscellaneous** — the previous step's three actions, embedded, are part of the next input.

At step t the controller reads x_t = [input window; memory window; previous actions], h_t = LSTM(x_t, h_{t-1});
f = h_t for the LSTM controller. The **direct-access controller** (``direct_access``, the revised paper's
second controller) also hands the current reads straight to every output layer, f = [h_t; one-hot input
window; memory window], so a symbol under the input head can be copied to the output or the memory tape
without passing through the LSTM (the authors' code: ``direct_input_input``/``direct_mem_input``, with
``super_direct`` gating the copy). The moves are sampled from their softmaxes in training and are the most
probable ones in evaluation.

Training (the task module, :mod:`attn_cli.tasks.tapes`): the log-likelihood of the emitted predictions is
maximised by backpropagation; the moves and the emit decisions get REINFORCE (Williams 1992) with the reward
r_t = log p(y_t) of the symbol emitted at t (0 when nothing is emitted), each action weighted by the reward
still to come R_t = Σ_{i≥t} r_i less a learned baseline b_t (``attention.reinforce``). The baseline is the
authors': a separate LSTM reads the input tape backwards once, and w·ReLU(A h_t + B g) + c from its last
state g and the controller's state h_t (detached, so the baseline's squared error trains the baseline alone).
Deviation: that value is the reward per output symbol still to write and b_t is it times their number
(the authors' predicts R_t itself; with Adam at 1e-3 a bias would need some 10⁴ updates to reach the −50
nats of an untrained 20-symbol sequence, and until then the advantages are that large). When the output symbols still to write fill every step left, emitting is forced (the authors'
``OutputActionConstraints``): every output is written within the ``steps`` budget.

What we could not check against the revised paper's text (none was reachable here; these follow the authors'
released code for the first version, ilyasu123/rlntm, and our reading): the window widths (code: input ±2,
memory read ±3, write ±2; ours: one width per tape, one written cell), the write rule, the direct-access
controller's exact form, the time budget, and the per-step penalty for outputs not yet written (the
code's ``remaining_gains``; ours forces the emission instead). No entropy bonus (the code's runs set it to 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.core import masked_softmax
from attn_cli.attention.reinforce import categorical_sample
from attn_cli.registry import MODELS

BLANK = 0  # the symbol read off the input tape (attn_cli.data.tapes.BLANK; models do not import data)
MOVES = 3  # −1, 0, +1 as indices 0, 1, 2
STAY, NO_EMIT = 1, 0


def read_tape(tape: torch.Tensor, pos: torch.Tensor, length: torch.Tensor, radius: int) -> torch.Tensor:
    """Symbols at positions pos − radius … pos + radius of each row; BLANK where a position is off the tape.

    tape: (B, L) symbols; pos, length: (B,). Returns (B, 2·radius + 1)."""
    offsets = torch.arange(-radius, radius + 1, device=tape.device)
    idx = pos[:, None] + offsets  # (B, K)
    inside = (idx >= 0) & (idx < length[:, None])
    return torch.where(inside, tape.gather(1, idx.clamp(0, tape.size(1) - 1)), BLANK)


def read_memory(memory: torch.Tensor, pos: torch.Tensor, radius: int) -> torch.Tensor:
    """The vectors at cells pos − radius … pos + radius; zeros off the tape. memory: (B, M, W). Returns (B, K, W)."""
    offsets = torch.arange(-radius, radius + 1, device=memory.device)
    idx = pos[:, None] + offsets  # (B, K)
    inside = (idx >= 0) & (idx < memory.size(1))
    cells = memory.gather(1, idx.clamp(0, memory.size(1) - 1)[..., None].expand(-1, -1, memory.size(2)))
    return cells * inside[..., None].to(memory.dtype)


def write_memory(memory: torch.Tensor, pos: torch.Tensor, gate: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """m[pos] ← (1 − e) m[pos] + e v for each row, the other cells unchanged (a new tensor: autograd keeps the old).

    memory: (B, M, W); pos: (B,); gate e: (B, 1) in [0, 1] (0 writes nothing); value v: (B, W)."""
    at = F.one_hot(pos, memory.size(1)).to(memory.dtype)[..., None]  # (B, M, 1)
    return memory + at * gate[:, None, :] * (value[:, None, :] - memory)


def move_head(pos: torch.Tensor, move: torch.Tensor, last: torch.Tensor | int) -> torch.Tensor:
    """pos + (move − 1), clamped to [0, last]: a head at an end that moves off it stays. move: (B,) in {0, 1, 2}."""
    moved = pos + move - STAY
    return torch.minimum(moved.clamp_min(0), torch.as_tensor(last, device=pos.device))


def _act(probs: torch.Tensor, sample: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(action (B,), log π(action) (B,), entropy (B,)): sampled, or the most probable action with entropy 0."""
    if sample:
        return categorical_sample(probs)
    action = probs.argmax(-1)
    log_pi = probs.gather(1, action[:, None]).squeeze(1).clamp_min(1e-12).log()
    return action, log_pi, torch.zeros_like(log_pi)


@MODELS.register("rlntm", task="tapes")
class RLNTM(nn.Module):
    @dataclass(frozen=True)
    class Config:
        hidden: int = 64  # LSTM controller units
        embed: int = 16  # width of a symbol's and of a previous action's embedding
        memory_cells: int = 64  # memory tape length: longer than any test sequence
        memory_width: int = 16  # a memory cell's vector
        input_window: int = 1  # the input head reads p − w … p + w
        memory_window: int = 1  # the memory head reads m − w … m + w
        direct_access: bool = False  # the revised paper's direct-access controller (else the LSTM controller)
        baseline_hidden: int = 32  # the baseline's LSTM over the input tape

    input_moves: torch.Tensor  # (3,) bool: the input moves allowed

    def __init__(self, cfg: Config, *, vocab: int, forward_only: bool = False, **meta: Any) -> None:
        super().__init__()
        self.cfg, self.vocab = cfg, vocab
        n_in, n_mem = 2 * cfg.input_window + 1, 2 * cfg.memory_window + 1
        self.symbol = nn.Embedding(vocab, cfg.embed)
        self.previous = nn.Embedding(2 * MOVES + 2, cfg.embed)  # input move, memory move, emit: one table
        self.controller = nn.LSTMCell(n_in * cfg.embed + n_mem * cfg.memory_width + 3 * cfg.embed, cfg.hidden)
        feat = cfg.hidden + ((n_in * vocab + n_mem * cfg.memory_width) if cfg.direct_access else 0)
        self.input_move = nn.Linear(feat, MOVES)
        self.memory_move = nn.Linear(feat, MOVES)
        self.emit = nn.Linear(feat, 2)
        self.predict = nn.Linear(feat, vocab)
        self.write_value = nn.Linear(feat, cfg.memory_width)
        self.write_gate = nn.Linear(feat, 1)
        self.baseline_symbol = nn.Embedding(vocab, cfg.embed)  # its own: the baseline's error trains it alone
        self.baseline_reader = nn.LSTM(cfg.embed, cfg.baseline_hidden, batch_first=True)
        self.baseline_state = nn.Linear(cfg.hidden, cfg.baseline_hidden)
        self.baseline_out = nn.Linear(cfg.baseline_hidden, 1)
        # (3,) the input moves allowed: ForwardReverse forbids −1
        self.register_buffer("input_moves", torch.tensor([not forward_only, True, True]), persistent=False)

    def forward(
        self,
        inp: torch.Tensor,
        in_len: torch.Tensor,
        out_len: torch.Tensor,
        steps: torch.Tensor,
        *,
        sample: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Run the machine on input tapes ``inp`` (B, Tin) of lengths ``in_len`` until each row has written its
        ``out_len`` symbols (at most ``steps`` (B,) steps). Returns, per step t < T (the last step any row ran):

        ``logits`` (B, T, V) the output distribution; ``out_pos`` (B, T) the output head before the step;
        ``emitted`` (B, T) bool; ``active`` (B, T) bool, the row still running; ``log_pi`` (B, T) the log
        probability of the step's three actions (0 when inactive); ``entropy`` (B, T); ``baseline`` (B, T);
        ``in_pos`` and ``mem_pos`` (B, T) where the input and memory heads were.
        """
        cfg = self.cfg
        b = inp.size(0)
        h = inp.new_zeros(b, cfg.hidden, dtype=torch.float)
        c = torch.zeros_like(h)
        memory = h.new_zeros(b, cfg.memory_cells, cfg.memory_width)  # (B, M, W)
        in_pos = torch.zeros_like(in_len)
        mem_pos = torch.zeros_like(in_len)
        out_pos = torch.zeros_like(in_len)
        prev = torch.tensor([STAY, STAY, NO_EMIT], device=inp.device).expand(b, 3)  # (B, 3)
        table_offset = torch.tensor([0, MOVES, 2 * MOVES], device=inp.device)
        _, (g, _) = self.baseline_reader(self.baseline_symbol(inp.flip(1)))  # reads the tape backwards
        g = g[-1]  # (B, Hb)
        keys = ("logits", "out_pos", "emitted", "active", "log_pi", "entropy", "baseline", "in_pos", "mem_pos")
        trace: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
        for t in range(int(steps.max())):
            active = (t < steps) & (out_pos < out_len)  # (B,)
            if not bool(active.any()):
                break
            symbols = read_tape(inp, in_pos, in_len, cfg.input_window)  # (B, Kin)
            cells = read_memory(memory, mem_pos, cfg.memory_window)  # (B, Kmem, W)
            x = torch.cat(
                [self.symbol(symbols).flatten(1), cells.flatten(1), self.previous(prev + table_offset).flatten(1)], 1
            )
            h, c = self.controller(x, (h, c))
            f = h
            if cfg.direct_access:
                f = torch.cat([h, F.one_hot(symbols, self.vocab).to(h.dtype).flatten(1), cells.flatten(1)], 1)
            must_emit = (out_len - out_pos) >= (steps - t)  # (B,) the outputs left fill the steps left
            emit_ok = torch.stack([~must_emit, torch.ones_like(must_emit)], 1)  # (B, 2): no, yes
            a_in, lp_in, ent_in = _act(masked_softmax(self.input_move(f), self.input_moves), sample)
            a_mem, lp_mem, ent_mem = _act(torch.softmax(self.memory_move(f), -1), sample)
            a_out, lp_out, ent_out = _act(masked_softmax(self.emit(f), emit_ok), sample)
            memory = write_memory(memory, mem_pos, torch.sigmoid(self.write_gate(f)), torch.tanh(self.write_value(f)))
            emitted = (a_out == 1) & active
            # per output symbol still to write, times their number (see the module's docstring)
            per_symbol = self.baseline_out(torch.relu(self.baseline_state(h.detach()) + g)).squeeze(1)  # (B,)
            baseline = per_symbol * (out_len - out_pos)  # (B,)
            step = {
                "logits": self.predict(f),
                "out_pos": out_pos,
                "emitted": emitted,
                "active": active,
                "log_pi": (lp_in + lp_mem + lp_out) * active,
                "entropy": (ent_in + ent_mem + ent_out) * active,
                "baseline": baseline,
                "in_pos": in_pos,
                "mem_pos": mem_pos,
            }
            for k in keys:
                trace[k].append(step[k])
            still = active.long()
            in_pos = move_head(in_pos, STAY + (a_in - STAY) * still, in_len - 1)
            mem_pos = move_head(mem_pos, STAY + (a_mem - STAY) * still, cfg.memory_cells - 1)
            out_pos = out_pos + emitted.long()
            prev = torch.stack([a_in, a_mem, a_out], 1)
        return {k: torch.stack(v, 1) for k, v in trace.items()}
