"""Recurrent building blocks for the NMT and captioning decoders.

* :class:`RNNEncoder` — embeddings + (bi)directional stacked LSTM/GRU over padded batches
  (packed, so padding never leaks into the backward direction), optional source reversal
  (Sutskever et al. 2014 §3.3) with outputs put back in source order, so attention
  positions always index the original words.
* :class:`FeedLSTM` — a stacked LSTM stepped one token at a time whose first layer takes
  ``[x_t; f_t]`` (Luong's input feeding, Bahdanau's context input). The x-part of the
  first layer's gates (W_x x_t + b) is computed for all steps in one matmul before the
  loop; each step then does one fused matmul for ``[f_t; h_{t-1}]``.
* :class:`RaggedSteps` — a teacher-forced step loop over the still-running sentences only, whose
  backward sums the gradients of what every step reads (attention memory, recurrent weights) once
  (:class:`LoopGrad`), not once per step: a weight's as one matmul, the attention memory's as one bmm.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``x`` (B, T, ...) within its length; padding stays at the end."""
    t = x.size(1)
    ar = torch.arange(t, device=x.device)[None, :]  # (1, T)
    idx = torch.where(ar < lengths[:, None], lengths[:, None] - 1 - ar, ar)  # (B, T)
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)


class RNNEncoder(nn.Module):
    """Embeddings + (bi)directional stacked LSTM/GRU; see the module docstring.

    Two ways to run the same recurrence over a padded batch. Packed (``pack_padded_sequence``) gives
    the final cell state c the decoder needs with ``final_cell`` (Sutskever's ``init: encoder_final``),
    but torch's packed CPU LSTM slices its precomputed input gates at every step, and each slice's
    backward writes a full-size zero tensor: on Multi30k batches that made the encoder 40% of a
    training update. Otherwise each layer and direction runs unpacked over the padded batch (the
    backward direction over each sentence reversed within its length, so padding always comes after
    the words and never reaches a state that is kept), with the same weights; outputs past a sentence
    end are computed, then zeroed, and the final h is read at the last word.
    """

    def __init__(
        self,
        vocab: int,
        emb_dim: int,
        hidden: int,
        layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        cell: str = "lstm",
        reverse: bool = False,
        pad_id: int = 0,
        final_cell: bool = True,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, emb_dim, padding_idx=pad_id)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(
            emb_dim,
            hidden,
            layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.reverse, self.cell, self.layers, self.final_cell = reverse, cell, layers, final_cell
        self.min_group = 8  # rows per length group below which one padded run is cheaper than two
        self.min_saving = 0.15  # the share of the padded grid that two length halves must save
        self.dirs = 2 if bidirectional else 1
        self.out_dim = hidden * self.dirs

    def forward(
        self, src: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """src (B, Tk) -> memory (B, Tk, dirs·H), final h (layers, B, dirs·H), final c (same) or None."""
        if self.reverse:
            src = reverse_padded(src, lengths)
        x = self.drop(self.embed(src))  # (B, Tk, E)
        if self.final_cell and self.cell == "lstm":
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed)
            memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, Tk, dirs·H)
            h, c = state
        else:
            memory, h = self._unpacked_sorted(x, lengths)
            c = None
        if self.reverse:
            memory = reverse_padded(memory, lengths)

        def merge(s: torch.Tensor) -> torch.Tensor:  # (layers·dirs, B, H) -> (layers, B, dirs·H)
            s = s.view(self.layers, self.dirs, s.size(1), s.size(2))
            return torch.cat([s[:, d] for d in range(self.dirs)], dim=-1)

        return memory, merge(h), merge(c) if c is not None else None

    def _unpacked_sorted(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_unpacked` on the batch cut by length into a longer and a shorter half, each padded only to
        its own longest sentence: a random batch's source grid is about half padding, the halves' much less.
        A batch whose halves would save less than ``self.min_saving`` of the grid (length-bucketed batches
        are nearly unpadded) runs whole: two half-size runs cost more than the padding they skip."""
        b, t = x.shape[:2]
        if b < 2 * self.min_group:
            return self._unpacked(x, lengths)
        order = torch.argsort(lengths, descending=True, stable=True)  # (B,)
        longer = (b + 1) // 2  # rows in tensor_split's first half: the longer sentences, padded to t
        if longer * t + (b - longer) * int(lengths[order[longer]]) > (1 - self.min_saving) * b * t:
            return self._unpacked(x, lengths)
        mems, finals = [], []
        for rows in order.tensor_split(2):
            group_lengths = lengths[rows]
            width = int(group_lengths.max())
            memory, h = self._unpacked(x[rows.to(x.device), :width], group_lengths)
            mems.append(F.pad(memory, (0, 0, 0, t - width)))  # (b_g, Tk, dirs·H)
            finals.append(h)
        inverse = torch.argsort(order).to(x.device)
        return torch.cat(mems).index_select(0, inverse), torch.cat(finals, dim=1).index_select(1, inverse)

    def _unpacked(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, Tk, E) -> memory (B, Tk, dirs·H) zero past each length, final h (layers·dirs, B, H)
        in ``nn.LSTM``'s order, one unpacked run per layer and direction with ``self.rnn``'s weights."""
        b, t = x.shape[:2]
        last = (lengths - 1).to(x.device).view(b, 1, 1).expand(b, 1, self.rnn.hidden_size)  # (B, 1, H)
        finals, inp = [], x
        for layer in range(self.layers):
            outs = []
            for d in range(self.dirs):
                suffix = f"l{layer}" + ("_reverse" if d else "")
                weights = [
                    getattr(self.rnn, f"{kind}_{suffix}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                ]
                seq = reverse_padded(inp, lengths) if d else inp
                h0 = seq.new_zeros(1, b, self.rnn.hidden_size)
                args = (weights, True, 1, 0.0, self.training, False, True)  # one layer, one direction, batch first
                lstm = self.cell == "lstm"
                out = torch.lstm(seq, (h0, h0), *args)[0] if lstm else torch.gru(seq, h0, *args)[0]  # (B, Tk, H)
                finals.append(out.gather(1, last).squeeze(1))  # (B, H) the state after the last word
                outs.append(reverse_padded(out, lengths) if d else out)
            inp = torch.cat(outs, dim=-1)  # (B, Tk, dirs·H)
            if layer < self.layers - 1:
                inp = F.dropout(inp, self.rnn.dropout, self.training)
        mask = (torch.arange(t, device=x.device)[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)  # (B, Tk, 1)
        return inp * mask, torch.stack(finals)


class FeedLSTM(nn.Module):
    """Stacked LSTM cells; layer 0 input is [x_t; f_t]. Gates follow torch.nn.LSTM (i, f, g, o)."""

    def __init__(self, x_dim: int, feed_dim: int, hidden: int, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden, self.layers = hidden, layers
        self.x_proj = nn.Linear(x_dim, 4 * hidden)  # W_x x + b, batched over time
        self.rec0 = nn.Linear(feed_dim + hidden, 4 * hidden, bias=False)  # [f; h] -> gates
        self.upper = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(layers - 1))
        self.drop = nn.Dropout(dropout)

    def precompute(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, x_dim) -> (B, T, 4H): the input part of layer 0's gates for every step at once."""
        gates: torch.Tensor = self.x_proj(x)
        return gates

    def step(
        self,
        x_gates: torch.Tensor,
        feed: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        loop: RaggedSteps | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step. x_gates (B, 4H); feed (B, F); h, c (B, layers, H) -> (top output (B, H), h, c).

        Inside a teacher-forced ``loop`` the recurrent product goes through :meth:`RaggedSteps.linear`,
        so its weight gradient is one matmul over all steps."""
        fh = torch.cat([feed, h[:, 0]], dim=-1)  # (B, F + H)
        rec = self.rec0(fh) if loop is None else loop.linear(fh, self.rec0.weight)
        gates = x_gates + rec  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=-1)
        c0 = torch.sigmoid(f) * c[:, 0] + torch.sigmoid(i) * torch.tanh(g)
        h0 = torch.sigmoid(o) * torch.tanh(c0)
        hs, cs, inp = [h0], [c0], h0
        for layer, cell in enumerate(self.upper, start=1):
            hl, cl = cell(self.drop(inp), (h[:, layer], c[:, layer]))
            hs.append(hl)
            cs.append(cl)
            inp = hl
        return inp, torch.stack(hs, 1), torch.stack(cs, 1)


class LoopGrad:
    """The gradient of one tensor that a step loop reads at every step, summed by the loop's own ops.

    Left to autograd, each read would produce its own full-size gradient: ``x[:n]`` backward writes a
    zero tensor of x's size and copies the n rows in, and a weight used in ``x_t @ Wᵀ`` at every step
    gets one (out × in) product and one accumulation per step. Here the reads (:class:`_PrefixRows`,
    :class:`_LoopLinear`) file their gradients with this object instead, and :class:`_Enter` hands the
    sum to autograd once, after every step's backward has run (the steps consume its output, so the
    engine runs it last): prefix rows are added in place into one buffer, and the weight gradient is
    one matmul, Σ_t g_tᵀ x_t = [g_1; …; g_T]ᵀ [x_1; …; x_T]. A memory read by a batched product at every
    step (:class:`_RowsMatmul`: attention scores against the keys, the context from the memory) files the
    two factors of its per-sentence gradient, Σ_t L_tᵀ R_t, and gets it as one bmm over all steps
    instead of a (n_t, Tk, D) product and a full-size addition per step. Double backward is not supported.
    """

    def __init__(self) -> None:
        self.rows: torch.Tensor | None = None  # summed prefix-row gradients, the tensor's full size
        self.grads: list[torch.Tensor] = []  # g_t of each x_t @ Wᵀ (n_t, out)
        self.inputs: list[torch.Tensor] = []  # x_t (n_t, in)
        self.factors: list[tuple[torch.Tensor, torch.Tensor]] = []  # (L_t (n_t, q_t, K), R_t (n_t, q_t, M))
        self.size: torch.Size | None = None  # the full size of the tensor a product reads (B, K, M)

    def add_rows(self, grad: torch.Tensor, size: torch.Size) -> None:
        if self.rows is None:
            self.rows = grad.new_zeros(size)
        self.rows[: grad.size(0)] += grad

    def take(self) -> torch.Tensor | None:
        """The summed gradient, emptying this object (a second backward starts from nothing)."""
        total = self.rows
        if self.grads:
            product = torch.cat(self.grads).t() @ torch.cat(self.inputs)  # (out, in)
            total = product if total is None else total + product
        if self.factors and self.size is not None:
            product = self._factor_product(self.size)
            total = product if total is None else total + product
        self.rows, self.grads, self.inputs, self.factors = None, [], [], []
        return total

    def _factor_product(self, size: torch.Size) -> torch.Tensor:
        """Σ_t L_tᵀ R_t per sentence as one bmm: the steps' factors laid side by side along a step axis,
        zero for the rows that had ended, (B, ΣS, K)ᵀ @ (B, ΣS, M) -> (B, K, M)."""
        width = sum(left.size(1) for left, _ in self.factors)
        first_left, first_right = self.factors[0]
        lefts = first_left.new_zeros(size[0], width, first_left.size(2))  # (B, ΣS, K)
        rights = first_right.new_zeros(size[0], width, first_right.size(2))  # (B, ΣS, M)
        offset = 0
        for left, right in self.factors:
            n, q = left.shape[:2]
            lefts[:n, offset : offset + q] = left
            rights[:n, offset : offset + q] = right
            offset += q
        return torch.bmm(lefts.transpose(1, 2), rights)


class _Enter(torch.autograd.Function):
    """Identity on x whose backward adds what the loop filed in its :class:`LoopGrad`."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, acc: LoopGrad) -> torch.Tensor:
        ctx.acc, ctx.dtype = acc, x.dtype
        ctx.set_materialize_grads(False)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor | None) -> tuple[torch.Tensor | None, None]:
        total = ctx.acc.take()
        if total is not None:
            total = total.to(ctx.dtype)  # under autocast the steps' gradients may be bf16
        if grad is not None:
            total = grad if total is None else total + grad
        return total, None


class _PrefixRows(torch.autograd.Function):
    """x[:n]; the backward adds the n rows of gradient into the :class:`LoopGrad` buffer."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, n: int, acc: LoopGrad) -> torch.Tensor:
        ctx.acc, ctx.size = acc, x.shape
        ctx.set_materialize_grads(False)
        return x[:n]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor | None) -> tuple[None, None, None]:
        if grad is not None:
            ctx.acc.add_rows(grad, ctx.size)
        return None, None, None


class _LoopLinear(torch.autograd.Function):
    """x @ Wᵀ; the backward returns x's gradient and files (g, x) for the weight's one matmul.

    Under autocast both operands are cast to its dtype first, as ``F.linear`` would be."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, acc: LoopGrad) -> torch.Tensor:
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        ctx.acc, ctx.x_dtype = acc, x.dtype
        x, weight_c = x.to(dtype), weight.to(dtype)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, weight_c)
        return x @ weight_c.t()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor | None) -> tuple[torch.Tensor | None, None, None]:
        if grad is None:
            return None, None, None
        x, weight = ctx.saved_tensors
        grad = grad.to(weight.dtype)
        if ctx.needs_input_grad[1]:
            ctx.acc.grads.append(grad)
            ctx.acc.inputs.append(x)
        return ((grad @ weight).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None), None, None


class _RowsMatmul(torch.autograd.Function):
    """a @ x[:n] (or a @ x[:n]ᵀ), batched; the backward returns a's gradient and files the factors of
    x's, (a, g) or (g, a), for the one bmm of :meth:`LoopGrad.take`.

    Under autocast both operands are cast to its dtype first, as ``torch.bmm`` would be."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, x: torch.Tensor, n: int, transpose: bool, acc: LoopGrad) -> torch.Tensor:
        device = a.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else a.dtype
        rows = x[:n].to(dtype)  # (n, K, M)
        a = a.to(dtype)
        ctx.acc, ctx.transpose, ctx.a_dtype = acc, transpose, a.dtype
        acc.size = x.shape
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(a, rows)
        return torch.bmm(a, rows.transpose(1, 2) if transpose else rows)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor | None) -> tuple[torch.Tensor | None, None, None, None, None]:
        if grad is None:
            return None, None, None, None, None
        a, rows = ctx.saved_tensors
        grad = grad.to(rows.dtype)
        if ctx.needs_input_grad[1]:
            ctx.acc.factors.append((grad, a) if ctx.transpose else (a, grad))
        grad_a = None
        if ctx.needs_input_grad[0]:
            grad_a = torch.bmm(grad, rows if ctx.transpose else rows.transpose(1, 2)).to(ctx.a_dtype)
        return grad_a, None, None, None, None


class RaggedSteps:
    """Run a step loop only over the sequences still going (PackedSequence-style, by hand).

    Rows are sorted by length (descending); at step t only the first ``active[t]`` rows
    are computed. With random batches the longest sentence is often twice the mean, so
    this halves the work of a teacher-forced decoder loop. :meth:`pack` lays out a (B, T, ...)
    input step by step, :meth:`rows` and :meth:`linear` read what every step shares
    (:class:`LoopGrad` sums their gradients once), and :meth:`pad` turns the per-step outputs
    back into a (B, T, ...) tensor in the caller's original row order (zeros at padding).
    """

    def __init__(self, lengths: torch.Tensor) -> None:
        self.order = torch.argsort(lengths, descending=True, stable=True)  # (B,)
        self.inverse = torch.argsort(self.order)  # (B,)
        sorted_lengths = lengths[self.order].tolist()
        steps = max(sorted_lengths) if sorted_lengths else 0
        self.active = [sum(1 for n in sorted_lengths if n > t) for t in range(steps)]
        self.batch_sizes = torch.tensor(self.active, dtype=torch.long)
        self.steps = steps
        self._entered: dict[int, tuple[torch.Tensor, LoopGrad]] = {}
        self._reads: dict[int, tuple[torch.Tensor, torch.Tensor, int, LoopGrad]] = {}  # rows() outputs

    def _enter(self, x: torch.Tensor) -> tuple[torch.Tensor, LoopGrad]:
        if id(x) not in self._entered:
            acc = LoopGrad()
            self._entered[id(x)] = (_Enter.apply(x, acc), acc)  # type: ignore[no-untyped-call]
        return self._entered[id(x)]

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) in the caller's row order -> (Σ active, ...): step 0's rows, then step 1's, ...,
        each step's the sorted rows still going; ``.split(self.active)`` gives the per-step inputs.

        One gather for all steps: slicing x[:, t][:n] per step would make each step's backward write a
        full-size zero tensor, and the positions past a sentence's end are never computed."""
        b, t = x.shape[:2]
        keep = torch.arange(b)[None, :] < self.batch_sizes[:, None]  # (T', B)
        sorted_rows = self.order.repeat(self.steps, 1)  # (T', B)
        flat = sorted_rows * t + torch.arange(self.steps, device=x.device)[:, None]  # (T', B) index into B·T
        return x.reshape(b * t, *x.shape[2:]).index_select(0, flat[keep.to(x.device)])

    def rows(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """The first ``n`` rows of ``x`` (sorted order); their gradient is summed in one buffer, or, where
        :meth:`matmul` reads them, by one product after the loop."""
        if not x.requires_grad:
            return x[:n]
        entered, acc = self._enter(x)
        out: torch.Tensor = _PrefixRows.apply(entered, n, acc)  # type: ignore[no-untyped-call]
        self._reads[id(out)] = (out, entered, n, acc)
        return out

    def matmul(self, a: torch.Tensor, x: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        """The :data:`~attn_cli.attention.core.Matmul` of a step inside the loop: a @ x (or a @ xᵀ). Where x
        is what :meth:`rows` returned this loop, x's gradient is not formed per step: its factors are filed
        and summed over all steps in one bmm (:class:`_RowsMatmul`); otherwise a plain bmm."""
        read = self._reads.get(id(x))
        if read is None or read[0] is not x:
            return torch.bmm(a, x.transpose(1, 2) if transpose else x)
        _, entered, n, acc = read
        out: torch.Tensor = _RowsMatmul.apply(a, entered, n, transpose, acc)  # type: ignore[no-untyped-call]
        return out

    def linear(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """x @ weightᵀ, the weight's gradient one matmul over every step of the loop."""
        if not weight.requires_grad:
            return x @ weight.t()
        entered, acc = self._enter(weight)
        out: torch.Tensor = _LoopLinear.apply(x, entered, acc)  # type: ignore[no-untyped-call]
        return out

    def pad(self, packed_data: torch.Tensor) -> torch.Tensor:
        """The per-step outputs concatenated, (Σ active, ...) as :meth:`pack` orders them -> (B, T, ...)
        in the original row order."""
        packed = torch.nn.utils.rnn.PackedSequence(packed_data, self.batch_sizes)
        padded, _ = pad_packed_sequence(packed, batch_first=True)  # (B, T, ...) sorted
        return padded.index_select(0, self.inverse)
