"""Bahdanau, Cho & Bengio (2015), "Neural Machine Translation by Jointly Learning to Align and Translate"
(RNNsearch), and its baseline RNNencdec (Cho et al. 2014) with ``attention: false``.

App. A.2.2 of the paper, per target step i:
    e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j)                   alignment model (additive score)
    α_ij = softmax_j e_ij,   c_i = Σ_j α_ij h_j                eq. (5)-(6)
    s_i  = f(s_{i-1}, y_{i-1}, c_i)                            gated unit (GRU), input [E y_{i-1}; c_i]
    t̃_i = U_o s_{i-1} + V_o E y_{i-1} + C_o c_i               deep output ...
    t_i  = max(t̃_{i,2j-1}, t̃_{i,2j})                          ... with a maxout layer
    p(y_i | ...) = softmax(W_o t_i)
    s_0  = tanh(W_s h←_1)                                      from the backward encoder's first state

Deviations, stated: ``cell: lstm`` is offered beside the paper's GRU (the LSTM variant is
the one benchmarked against JoeyNMT); dropout on embeddings and before the readout
(the paper used none); RNNencdec keeps the context fixed at the encoder's final state
(Cho et al. use c = tanh(V h_T)). Initialisation and training follow the Luong recipes, not
App. B: every parameter is U(−0.1, 0.1) (``init_range``), where the paper draws the recurrent
matrices random orthogonal, W_a and U_a from N(0, 0.001²), V_a and the biases 0 and every other
matrix from N(0, 0.01²) (App. B.1); the recipes train with Adam (lr 1e-3, halved on a plateau),
batches of 64 and the gradient norm clipped at 5, where the paper uses Adadelta (ε = 1e-6,
ρ = 0.95), minibatches of 80 and clips at 1 (App. B.2) — ``--set train.grad_clip=1
--set train.batch_size=80`` gets two of the three; Adadelta is not among ``train.optimizer``'s
choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn

from attn_cli.attention.core import Matmul, bmm
from attn_cli.attention.soft import Attention
from attn_cli.nn.encoder_decoder import EncoderDecoder, output_layer, uniform_init
from attn_cli.nn.rnn import FeedLSTM, RaggedSteps, RNNEncoder
from attn_cli.registry import MODELS


@dataclass(frozen=True)
class BahdanauConfig:
    emb_dim: int = 256  # m = 620 in the paper
    enc_hidden: int = 256  # n = 1000 per direction in the paper
    hidden: int = 256
    attn_dim: int = 256  # n' = 1000
    readout_dim: int = 256  # l = 500 (maxout outputs)
    maxout: bool = True
    cell: Literal["gru", "lstm"] = "gru"
    bidirectional: bool = True
    attention: bool = True  # false: RNNencdec
    dropout: float = 0.3
    init_range: float = 0.1


@MODELS.register("bahdanau", task="nmt")
class RNNSearch(EncoderDecoder):
    Config = BahdanauConfig
    grouped_memory = True  # step_logits serves a beam's hypotheses from their sentence's one memory row

    def __init__(self, cfg: BahdanauConfig, src_vocab: int, tgt_vocab: int, pad_id: int = 0, **_: Any) -> None:
        super().__init__()
        self.cfg, self.pad_id = cfg, pad_id
        dirs = 2 if cfg.bidirectional else 1
        key_dim = cfg.enc_hidden * dirs
        self.encoder = RNNEncoder(
            src_vocab,
            cfg.emb_dim,
            cfg.enc_hidden,
            1,
            cfg.bidirectional,
            cfg.dropout,
            cfg.cell,
            False,
            pad_id,
            final_cell=False,
        )
        self.tgt_embed = nn.Embedding(tgt_vocab, cfg.emb_dim, padding_idx=pad_id)
        self.drop = nn.Dropout(cfg.dropout)
        self.attn = Attention("additive", cfg.hidden, key_dim, attn_dim=cfg.attn_dim) if cfg.attention else None
        self.W_s = nn.Linear(cfg.enc_hidden, cfg.hidden)  # s_0 = tanh(W_s h←_1)
        if cfg.cell == "lstm":
            self.cell = FeedLSTM(cfg.emb_dim, key_dim, cfg.hidden, 1, 0.0)
        else:
            self.gru = nn.GRUCell(cfg.emb_dim + key_dim, cfg.hidden)
        pieces = 2 if cfg.maxout else 1
        self.U_o = nn.Linear(cfg.hidden, pieces * cfg.readout_dim)
        self.V_o = nn.Linear(cfg.emb_dim, pieces * cfg.readout_dim, bias=False)
        self.C_o = nn.Linear(key_dim, pieces * cfg.readout_dim, bias=False)
        self.W_o = nn.Linear(cfg.readout_dim, tgt_vocab)
        uniform_init(self, cfg.init_range)

    def init_state(self, mem: dict[str, Any]) -> dict[str, torch.Tensor]:
        last = mem["h"][:, -1]  # (B, dirs·n)
        first_backward = last[:, self.cfg.enc_hidden :] if self.cfg.bidirectional else last
        s0 = torch.tanh(self.W_s(first_backward))  # (B, H)
        state = {"s": s0}
        if self.cfg.cell == "lstm":
            state["c"] = s0
        return state

    def _context(
        self, s_prev: torch.Tensor, mem: dict[str, Any], matmul: Matmul = bmm
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """c_i (n·G, Dk) and α_i (n·G, Tk) for states ``s_prev`` (n·G, H): G rows per ``mem`` row, 1 in training,
        a beam's hypotheses in search (``grouped_memory``), which attend to their sentence's memory row as G
        queries of one bmm; ``matmul`` is the training loop's (:meth:`RaggedSteps.matmul`)."""
        n = mem["h"].size(0)
        if self.attn is None:  # RNNencdec: a fixed summary of the source
            summary = mem["h"][:, -1]
            return (summary if n == s_prev.size(0) else summary.repeat_interleave(s_prev.size(0) // n, 0)), None
        a = self.attn(s_prev.view(n, -1, s_prev.size(-1)), mem["memory"], mem["keys"], mem["mask"], matmul=matmul)
        return a.context.flatten(0, 1), a.weights.flatten(0, 1)

    def _advance(
        self,
        emb: torch.Tensor,
        x_gates: torch.Tensor | None,
        ctx: torch.Tensor,
        state: dict[str, torch.Tensor],
        loop: RaggedSteps | None = None,
    ) -> dict[str, torch.Tensor]:
        if x_gates is not None:  # the LSTM cell (its input gates precomputed); the GRU takes the embedding
            h, c = state["s"].unsqueeze(1), state["c"].unsqueeze(1)
            top, h, c = self.cell.step(x_gates, ctx, h, c, loop)
            return {"s": top, "c": c.squeeze(1)}
        return {"s": self.gru(torch.cat([emb, ctx], dim=-1), state["s"])}

    def _readout(self, s_prev: torch.Tensor, emb: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """The deep output t_i (..., l), before W_o."""
        t = self.U_o(s_prev) + self.V_o(emb) + self.C_o(ctx)  # (..., 2l)
        if self.cfg.maxout:
            t = t.view(*t.shape[:-1], self.cfg.readout_dim, 2).max(-1).values  # (..., l)
        out: torch.Tensor = self.drop(t)
        return out

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        return output_layer(hidden, self.W_o)  # (..., V)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Readout features (B, Tq, l) for ``tgt_in`` (B, Tq) (BOS-prefixed; :meth:`project` makes logits)
        and attention weights (B, Tq, Tk).

        The maths of :meth:`step_logits` per step (tests/test_nmt_training.py checks outputs and gradients
        against that plain loop), run over the still-unfinished sentences only (:class:`RaggedSteps`): the
        embeddings and the input half of the LSTM gates for real tokens only, at once; the memory, keys and
        recurrent weight read through the ragged loop so their gradients are summed once; the deep output
        batched over all steps."""
        mem = self.encode(src, src_len)
        state = self.init_state(mem)
        ragged = RaggedSteps((tgt_in != self.pad_id).sum(1))  # lengths: BOS + words
        order = ragged.order
        emb = self.drop(self.tgt_embed(ragged.pack(tgt_in)))  # (N, E) real tokens, step by step
        embs = emb.split(ragged.active)
        x_gates = self.cell.precompute(emb).split(ragged.active) if self.cfg.cell == "lstm" else None
        mem = {k: mem[k].index_select(0, order) for k in ("memory", "keys", "mask", "h") if mem.get(k) is not None}
        state = {k: v.index_select(0, order) for k, v in state.items()}
        prev, ctxs, ws = [], [], []
        for t, n in enumerate(ragged.active):
            if n < state["s"].size(0):  # sentences ended: drop their rows (sorted, so the last ones)
                state = {k: v[:n] for k, v in state.items()}
            ctx, w = self._context(state["s"], {k: ragged.rows(v, n) for k, v in mem.items()}, ragged.matmul)
            prev.append(state["s"])
            ctxs.append(ctx)
            ws.append(w)
            state = self._advance(embs[t], x_gates[t] if x_gates is not None else None, ctx, state, ragged)
        hidden = self._readout(torch.cat(prev), emb, torch.cat(ctxs))  # (N, l), batched over time
        weights = ragged.pad(torch.cat(cast(list[torch.Tensor], ws))) if self.attn is not None else None
        return {"hidden": ragged.pad(hidden), "attn": weights, "centers": None}  # (B, Tq, l), (B, Tq, Tk)

    def step_logits(
        self, y_prev: torch.Tensor, state: dict[str, torch.Tensor], mem: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """:meth:`step` before the softmax (search normalises only the scores it keeps)."""
        emb = self.tgt_embed(y_prev)  # (B, E)
        ctx, w = self._context(state["s"], mem)
        logits = self.project(self._readout(state["s"], emb, ctx))
        x_gates = self.cell.precompute(emb) if self.cfg.cell == "lstm" else None
        return logits, self._advance(emb, x_gates, ctx, state), w
