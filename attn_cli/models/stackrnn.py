"""Stack-augmented RNN (Joulin & Mikolov 2015, "Inferring Algorithmic Patterns with Stack-Augmented
Recurrent Nets", NIPS) and its RNN and LSTM baselines, predicting the next symbol of a pattern.

The stack RNN (§3.1; equation numbers of the NIPS version) is a sigmoid RNN with k continuous stacks of
scalars. At step t, with x_t the one-hot input and s^d_{t-1} the top d elements of every stack,

    h_t = σ(U x_t + R h_{t-1} + P s^d_{t-1})          (eq. 6; R = 0 with ``hidden_recurrence=False``)
    y_t = softmax(V h_t)                               (eq. 2)
    a_t = softmax(A h_t)  per stack, over PUSH, POP (and NO-OP)           (eq. 3)
    s_t[0] = a_t[PUSH] σ(D h_t) + a_t[POP] s_{t-1}[1] (+ a_t[NO-OP] s_{t-1}[0])   (eq. 4 and §3.1's NO-OP)
    s_t[i] = a_t[PUSH] s_{t-1}[i-1] + a_t[POP] s_{t-1}[i+1] (+ a_t[NO-OP] s_{t-1}[i])   (eq. 5)

so PUSH shifts the stack down and writes σ(D h_t) on top, POP shifts it up, NO-OP leaves it (the paper
writes the NO-OP term for the top only; deeper elements keep their value likewise). A stack holds
``stack_size`` elements; below the last one it reads the empty value −1 ("when the stack is empty, s_t
is set to −1"), and every stack starts empty. With ``rounding`` ("discretizing the controllers at test
time", §3.1) a_t is replaced by the one-hot of its largest action, so the stacks hold exact values
however long the sequence. The counting experiments (§5.1) use R = 0, no NO-OP and d = 2.

Deviations: every sequence starts with empty stacks and a zero hidden state (the authors' code runs
one stream and empties the stacks every 1,000 sequences); training is by minibatches of whole
sequences with Adam (theirs: SGD, lr 0.1 halved when validation entropy stops falling, BPTT 50, one
update per symbol, random restarts on the harder tasks). The list RNN of §3.1 is not here.

Baselines (Table 2): ``pattern-rnn`` is eq. (1)-(2), h_t = σ(U x_t + R h_{t-1}); ``pattern-lstm`` a
one-layer LSTM; both with the stack RNN's hidden size for a matching comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.errors import AttnError
from attn_cli.registry import MODELS

EMPTY = -1.0  # the value of an empty stack cell (the authors' EMPTY_VALUE)
PUSH, POP, NOOP = 0, 1, 2


def stack_update(stack: torch.Tensor, actions: torch.Tensor, pushed: torch.Tensor) -> torch.Tensor:
    """Eqs. (4)-(5) with NO-OP: the new stacks from the old ones, the action probabilities and the pushed values.

    stack: (B, K, S) top first; actions: (B, K, 2 or 3) over PUSH, POP (, NO-OP), summing to 1;
    pushed: (B, K) the value σ(D h_t) a PUSH writes on top. Returns (B, K, S)."""
    empty = stack.new_full(stack.shape[:2] + (1,), EMPTY)  # (B, K, 1)
    pushed_down = torch.cat([pushed.unsqueeze(-1), stack[..., :-1]], dim=-1)  # (B, K, S)
    popped_up = torch.cat([stack[..., 1:], empty], dim=-1)  # (B, K, S)
    new = actions[..., PUSH, None] * pushed_down + actions[..., POP, None] * popped_up
    if actions.size(-1) > NOOP:
        new = new + actions[..., NOOP, None] * stack
    return new


def round_actions(actions: torch.Tensor) -> torch.Tensor:
    """The one-hot of each stack's most probable action (§3.1, "Rounding": discrete actions at test time)."""
    return F.one_hot(actions.argmax(-1), actions.size(-1)).to(actions.dtype)


@MODELS.register("stack-rnn", task="patterns")
class StackRNN(nn.Module):
    @dataclass(frozen=True)
    class Config:
        hidden: int = 40  # Joulin & Mikolov Table 2: 40 hidden units
        stacks: int = 10  # k stacks
        depth: int = 2  # top elements of each stack read into the hidden layer (the authors' -depth 2)
        stack_size: int = 256  # elements per stack: more than the longest test sequence pushes
        noop: bool = True  # a NO-OP action beside PUSH and POP (§3.1; not used on the counting tasks)
        hidden_recurrence: bool = True  # R h_{t-1} in eq. (6); 0 on the toy tasks (§5.1)

    stack_model = True  # attn visualize draws its stacks and actions

    def __init__(self, cfg: Config, *, vocab: int, **meta: Any) -> None:
        super().__init__()
        if cfg.depth > cfg.stack_size:
            raise AttnError(f"model.depth={cfg.depth} reads below the bottom of a stack of {cfg.stack_size}; "
                            "set model.depth <= model.stack_size")  # fmt: skip
        self.cfg = cfg
        self.n_actions = 3 if cfg.noop else 2
        self.embed = nn.Embedding(vocab, cfg.hidden)  # U x_t for a one-hot x_t
        self.recur = nn.Linear(cfg.hidden, cfg.hidden, bias=False) if cfg.hidden_recurrence else None  # R
        self.read = nn.Linear(cfg.stacks * cfg.depth, cfg.hidden, bias=False)  # P
        self.out = nn.Linear(cfg.hidden, vocab)  # V
        self.act = nn.Linear(cfg.hidden, cfg.stacks * self.n_actions)  # A
        self.push = nn.Linear(cfg.hidden, cfg.stacks)  # D

    def forward(self, inp: torch.Tensor, *, rounding: bool = False, keep_stacks: bool = False) -> dict[str, Any]:
        """inp: (B, T) symbols. Returns ``logits`` (B, T, V), ``actions`` (B, T, K, A) (rounded if asked) and,
        with ``keep_stacks``, ``stacks`` (B, T, K, S) after each step."""
        cfg = self.cfg
        b, t = inp.shape
        x = self.embed(inp)  # (B, T, H)
        h = x.new_zeros(b, cfg.hidden)  # (B, H)
        stack = x.new_full((b, cfg.stacks, cfg.stack_size), EMPTY)  # (B, K, S)
        logits, actions, stacks = [], [], []
        for step in range(t):
            pre = x[:, step] + self.read(stack[..., : cfg.depth].reshape(b, -1))  # (B, H)
            if self.recur is not None:
                pre = pre + self.recur(h)
            h = torch.sigmoid(pre)
            a = torch.softmax(self.act(h).view(b, cfg.stacks, self.n_actions), dim=-1)  # (B, K, A)
            if rounding:
                a = round_actions(a)
            stack = stack_update(stack, a, torch.sigmoid(self.push(h)))
            logits.append(self.out(h))
            actions.append(a)
            if keep_stacks:
                stacks.append(stack)
        out: dict[str, Any] = {"logits": torch.stack(logits, 1), "actions": torch.stack(actions, 1)}
        if keep_stacks:
            out["stacks"] = torch.stack(stacks, 1)
        return out


@MODELS.register("pattern-rnn", task="patterns")
class PatternRNN(nn.Module):
    @dataclass(frozen=True)
    class Config:
        hidden: int = 40

    def __init__(self, cfg: Config, *, vocab: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab, cfg.hidden)  # U
        self.recur = nn.Linear(cfg.hidden, cfg.hidden, bias=False)  # R
        self.out = nn.Linear(cfg.hidden, vocab)  # V

    def forward(self, inp: torch.Tensor, *, rounding: bool = False, keep_stacks: bool = False) -> dict[str, Any]:
        """inp: (B, T). ``logits`` (B, T, V) of eqs. (1)-(2); ``rounding`` has nothing to round here."""
        x = self.embed(inp)  # (B, T, H)
        h = x.new_zeros(inp.size(0), self.cfg.hidden)  # (B, H)
        logits = []
        for step in range(inp.size(1)):
            h = torch.sigmoid(x[:, step] + self.recur(h))
            logits.append(self.out(h))
        return {"logits": torch.stack(logits, 1)}


@MODELS.register("pattern-lstm", task="patterns")
class PatternLSTM(nn.Module):
    @dataclass(frozen=True)
    class Config:
        hidden: int = 40

    def __init__(self, cfg: Config, *, vocab: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab, cfg.hidden)
        self.lstm = nn.LSTM(cfg.hidden, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, vocab)

    def forward(self, inp: torch.Tensor, *, rounding: bool = False, keep_stacks: bool = False) -> dict[str, Any]:
        """inp: (B, T). ``logits`` (B, T, V)."""
        h, _ = self.lstm(self.embed(inp))  # (B, T, H)
        return {"logits": self.out(h)}
