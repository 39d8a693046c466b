"""Recurrent building blocks for the NMT and captioning decoders.

* :class:`RNNEncoder` — embeddings + (bi)directional stacked LSTM/GRU over padded batches
  (packed, so padding never leaks into the backward direction), optional source reversal
  (Sutskever et al. 2014 §3.3) with outputs put back in source order, so attention
  positions always index the original words.
* :class:`FeedLSTM` — a stacked LSTM stepped one token at a time whose first layer takes
  ``[x_t; f_t]`` (Luong's input feeding, Bahdanau's context input). The x-part of the
  first layer's gates (W_x x_t + b) is computed for all steps in one matmul before the
  loop; each step then does one fused matmul for ``[f_t; h_{t-1}]``.
"""

from __future__ import annotations

import torch
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
        self.reverse, self.cell, self.layers = reverse, cell, layers
        self.dirs = 2 if bidirectional else 1
        self.out_dim = hidden * self.dirs

    def forward(
        self, src: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """src (B, Tk) -> memory (B, Tk, dirs·H), final h (layers, B, dirs·H), final c (same) or None."""
        if self.reverse:
            src = reverse_padded(src, lengths)
        x = self.drop(self.embed(src))  # (B, Tk, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, Tk, dirs·H)
        if self.reverse:
            memory = reverse_padded(memory, lengths)
        h, c = state if self.cell == "lstm" else (state, None)

        def merge(s: torch.Tensor) -> torch.Tensor:  # (layers·dirs, B, H) -> (layers, B, dirs·H)
            s = s.view(self.layers, self.dirs, s.size(1), s.size(2))
            return torch.cat([s[:, d] for d in range(self.dirs)], dim=-1)

        return memory, merge(h), merge(c) if c is not None else None


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
        return self.x_proj(x)

    def step(
        self, x_gates: torch.Tensor, feed: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step. x_gates (B, 4H); feed (B, F); h, c (B, layers, H) -> (top output (B, H), h, c)."""
        gates = x_gates + self.rec0(torch.cat([feed, h[:, 0]], dim=-1))  # (B, 4H)
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


class RaggedSteps:
    """Run a step loop only over the sequences still going (PackedSequence-style, by hand).

    Rows are sorted by length (descending); at step t only the first ``active[t]`` rows
    are computed. With random batches the longest sentence is often twice the mean, so
    this halves the work of a teacher-forced decoder loop. :meth:`pad` turns the per-step
    outputs back into a (B, T, ...) tensor in the caller's original row order (zeros at
    padding).
    """

    def __init__(self, lengths: torch.Tensor) -> None:
        self.order = torch.argsort(lengths, descending=True, stable=True)  # (B,)
        self.inverse = torch.argsort(self.order)  # (B,)
        sorted_lengths = lengths[self.order].tolist()
        steps = max(sorted_lengths) if sorted_lengths else 0
        self.active = [sum(1 for n in sorted_lengths if n > t) for t in range(steps)]
        self.batch_sizes = torch.tensor(self.active, dtype=torch.long)
        self.steps = steps
        self._views: dict[tuple[int, int], torch.Tensor] = {}

    def rows(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """The first ``n`` rows of ``x``, one shared view per (tensor, n): the slice's backward
        (a full-size zero tensor) then runs once per distinct n, not once per step."""
        if n == x.size(0):
            return x
        key = (id(x), n)
        if key not in self._views:
            self._views[key] = x[:n]
        return self._views[key]

    def pad(self, outs: list[torch.Tensor]) -> torch.Tensor:
        """Per-step outputs (active[t], ...) -> (B, T, ...) in the original row order."""
        packed = torch.nn.utils.rnn.PackedSequence(torch.cat(outs, 0), self.batch_sizes)
        padded, _ = pad_packed_sequence(packed, batch_first=True)  # (B, T, ...) sorted
        return padded.index_select(0, self.inverse)
