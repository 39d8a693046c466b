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
however long the sequence. The counting experiments (§5.1) use R = 0, no NO-OP and d = 2; binary
addition (the authors' ``train_add.cpp``) R = 0, NO-OP and d = 2, with 100 hidden units.

The list RNN (§3.1, "Doubly-linked lists"; Table 2's "List RNN 40+5") replaces each stack by a list under a
fixed read/write head with actions INSERT, LEFT, RIGHT (and NO-OP), :func:`list_update`. The paper does not
say which cells the hidden layer reads from a list: here the head and the d − 1 cells to its left (where
INSERT moves the cells it displaces), the list's counterpart of a stack's top d. The authors' released code
has no list RNN.

Deviations: every sequence starts with empty stacks and a zero hidden state (the authors' code runs
one stream and empties the stacks every 1,000 sequences); training is by minibatches of whole
sequences with Adam (theirs: SGD, lr 0.1 halved when validation entropy stops falling, BPTT 50, one
update per symbol, random restarts on the harder tasks: ours are ``scripts/restarts.sh`` and the joulin table's
best-of-N rows, picked by validation entropy).

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
INSERT, LEFT, RIGHT, LIST_NOOP = 0, 1, 2, 3


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


def list_update(memory: torch.Tensor, actions: torch.Tensor, written: torch.Tensor, head: int) -> torch.Tensor:
    """The list update of §3.1 ("Doubly-linked lists"), the head fixed at cell ``head``:

        L_t[i] = a[RIGHT] L_{t-1}[i+1] + a[LEFT] L_{t-1}[i-1] + a[INSERT] · (σ(D h_t)   if i = HEAD
                                                                              L_{t-1}[i+1] if i < HEAD
                                                                              L_{t-1}[i]   if i > HEAD)
                 (+ a[NO-OP] L_{t-1}[i])

    so RIGHT and LEFT slide the list under the head, and INSERT writes at the head and moves the cells on its
    left one further left (the cells on its right stay). Beyond either end the list reads the empty value −1.
    memory: (B, K, S); actions: (B, K, 3 or 4) over INSERT, LEFT, RIGHT (, NO-OP); written: (B, K). Returns
    (B, K, S)."""
    empty = memory.new_full(memory.shape[:2] + (1,), EMPTY)  # (B, K, 1)
    from_right = torch.cat([memory[..., 1:], empty], dim=-1)  # (B, K, S): L_{t-1}[i+1]
    from_left = torch.cat([empty, memory[..., :-1]], dim=-1)  # (B, K, S): L_{t-1}[i-1]
    inserted = torch.cat([from_right[..., :head], written.unsqueeze(-1), memory[..., head + 1 :]], dim=-1)
    new = actions[..., RIGHT, None] * from_right + actions[..., LEFT, None] * from_left
    new = new + actions[..., INSERT, None] * inserted
    if actions.size(-1) > LIST_NOOP:
        new = new + actions[..., LIST_NOOP, None] * memory
    return new


def round_actions(actions: torch.Tensor) -> torch.Tensor:
    """The one-hot of each stack's most probable action (§3.1, "Rounding": discrete actions at test time)."""
    return F.one_hot(actions.argmax(-1), actions.size(-1)).to(actions.dtype)


class MemoryRNN(nn.Module):
    """The recurrence shared by the stack and the list RNN (eqs. 2, 3 and 6): a sigmoid hidden layer that reads
    ``depth`` cells of each memory, a softmax over the memory's actions per memory, the memory's own update
    (:meth:`update`), the next-symbol softmax. Subclasses give the update, the cells read and the names."""

    memory_model = True  # attn visualize draws its memories and actions
    memory_name = "stack"

    def __init__(
        self, hidden: int, memories: int, depth: int, size: int, recurrence: bool, vocab: int, *,
        action_names: tuple[str, ...], head: int = 0,
    ) -> None:  # fmt: skip
        """``head``: the cell read first (the stack's top, the list's head); ``action_names`` in the order of a_t."""
        super().__init__()
        if depth > size:
            raise AttnError(f"model.depth={depth} reads below the bottom of a {self.memory_name} of {size}; "
                            f"set model.depth <= model.{self.memory_name}_size")  # fmt: skip
        self.hidden, self.memories, self.depth, self.size = hidden, memories, depth, size
        self.action_names, self.head = action_names, head
        self.n_actions = len(action_names)
        self.embed = nn.Embedding(vocab, hidden)  # U x_t for a one-hot x_t
        self.recur = nn.Linear(hidden, hidden, bias=False) if recurrence else None  # R
        self.read = nn.Linear(memories * depth, hidden, bias=False)  # P
        self.out = nn.Linear(hidden, vocab)  # V
        self.act = nn.Linear(hidden, memories * self.n_actions)  # A
        self.push = nn.Linear(hidden, memories)  # D

    def update(self, memory: torch.Tensor, actions: torch.Tensor, pushed: torch.Tensor) -> torch.Tensor:
        """The memories after one step: memory (B, K, S), actions (B, K, A), pushed (B, K) the written value σ(D h_t)."""
        raise NotImplementedError

    def cells_read(self, memory: torch.Tensor) -> torch.Tensor:
        """The ``depth`` cells of each memory the hidden layer reads: (B, K, S) -> (B, K, depth)."""
        raise NotImplementedError

    def forward(self, inp: torch.Tensor, *, rounding: bool = False, keep_memory: bool = False) -> dict[str, Any]:
        """inp: (B, T) symbols. Returns ``logits`` (B, T, V), ``actions`` (B, T, K, A) (rounded if asked) and,
        with ``keep_memory``, ``memory`` (B, T, K, S) after each step."""
        b, t = inp.shape
        x = self.embed(inp)  # (B, T, H)
        h = x.new_zeros(b, self.hidden)  # (B, H)
        memory = x.new_full((b, self.memories, self.size), EMPTY)  # (B, K, S)
        logits, actions, memories = [], [], []
        for step in range(t):
            pre = x[:, step] + self.read(self.cells_read(memory).reshape(b, -1))  # (B, H)
            if self.recur is not None:
                pre = pre + self.recur(h)
            h = torch.sigmoid(pre)
            a = torch.softmax(self.act(h).view(b, self.memories, self.n_actions), dim=-1)  # (B, K, A)
            if rounding:
                a = round_actions(a)
            memory = self.update(memory, a, torch.sigmoid(self.push(h)))
            logits.append(self.out(h))
            actions.append(a)
            if keep_memory:
                memories.append(memory)
        out: dict[str, Any] = {"logits": torch.stack(logits, 1), "actions": torch.stack(actions, 1)}
        if keep_memory:
            out["memory"] = torch.stack(memories, 1)
        return out


@MODELS.register("stack-rnn", task="patterns")
class StackRNN(MemoryRNN):
    @dataclass(frozen=True)
    class Config:
        hidden: int = 40  # Joulin & Mikolov Table 2: 40 hidden units
        stacks: int = 10  # k stacks
        depth: int = 2  # top elements of each stack read into the hidden layer (the authors' -depth 2)
        stack_size: int = 256  # elements per stack: more than the longest test sequence pushes
        noop: bool = True  # a NO-OP action beside PUSH and POP (§3.1; not used on the counting tasks)
        hidden_recurrence: bool = True  # R h_{t-1} in eq. (6); 0 on the toy tasks (§5.1)

    def __init__(self, cfg: Config, *, vocab: int, **meta: Any) -> None:
        actions = ("PUSH", "POP", "NO-OP") if cfg.noop else ("PUSH", "POP")
        super().__init__(cfg.hidden, cfg.stacks, cfg.depth, cfg.stack_size, cfg.hidden_recurrence, vocab,
                         action_names=actions)  # fmt: skip
        self.cfg = cfg

    def update(self, memory: torch.Tensor, actions: torch.Tensor, pushed: torch.Tensor) -> torch.Tensor:
        return stack_update(memory, actions, pushed)

    def cells_read(self, memory: torch.Tensor) -> torch.Tensor:
        return memory[..., : self.depth]  # the top d elements, s^d_{t-1} of eq. (6)


@MODELS.register("list-rnn", task="patterns")
class ListRNN(MemoryRNN):
    """The List RNN of §3.1 ("Doubly-linked lists"): the stack RNN with each stack replaced by a list under a
    read/write head, actions INSERT, LEFT, RIGHT (and NO-OP), updated by :func:`list_update`."""

    @dataclass(frozen=True)
    class Config:
        hidden: int = 40  # Joulin & Mikolov Table 2: List RNN 40+5
        lists: int = 5
        depth: int = 2  # cells read into the hidden layer: the head and the d - 1 to its left
        list_size: int = 257  # cells per list, the head in the middle: 128 on either side
        noop: bool = True  # a NO-OP action beside INSERT, LEFT and RIGHT ("we can add a NO-OP operation as well")
        hidden_recurrence: bool = True  # R h_{t-1}; 0 on the toy tasks (§5.1)

    memory_name = "list"

    def __init__(self, cfg: Config, *, vocab: int, **meta: Any) -> None:
        if cfg.depth > cfg.list_size // 2 + 1:
            raise AttnError(f"model.depth={cfg.depth} reads beyond the left end of a list of {cfg.list_size}; "
                            f"set model.list_size >= {2 * cfg.depth - 1}")  # fmt: skip
        actions = ("INSERT", "LEFT", "RIGHT", "NO-OP") if cfg.noop else ("INSERT", "LEFT", "RIGHT")
        super().__init__(cfg.hidden, cfg.lists, cfg.depth, cfg.list_size, cfg.hidden_recurrence, vocab,
                         action_names=actions, head=cfg.list_size // 2)  # fmt: skip
        self.cfg = cfg

    def update(self, memory: torch.Tensor, actions: torch.Tensor, pushed: torch.Tensor) -> torch.Tensor:
        return list_update(memory, actions, pushed, self.head)

    def cells_read(self, memory: torch.Tensor) -> torch.Tensor:
        # the head, then leftwards: where INSERT moves the previous cells, so d = 2 reads what a stack's top 2 hold
        return memory[..., self.head - self.depth + 1 : self.head + 1].flip(-1)


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

    def forward(self, inp: torch.Tensor, *, rounding: bool = False, keep_memory: bool = False) -> dict[str, Any]:
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

    def forward(self, inp: torch.Tensor, *, rounding: bool = False, keep_memory: bool = False) -> dict[str, Any]:
        """inp: (B, T). ``logits`` (B, T, V)."""
        h, _ = self.lstm(self.embed(inp))  # (B, T, H)
        return {"logits": self.out(h)}
