"""Luong, Pham & Manning (2015), "Effective Approaches to Attention-based NMT", and its base,
Sutskever, Vinyals & Le (2014), "Sequence to Sequence Learning with Neural Networks".

Decoder (Luong §3):
    h_t  = LSTM(h_{t-1}, [ỹ_{t-1}; h̃_{t-1}])     input feeding (§3.3); without it, LSTM(h_{t-1}, ỹ_{t-1})
    c_t  = Σ_s a_t(s) h̄_s                          global (§3.1) or local-m / local-p (§3.2)
    h̃_t = tanh(W_c [c_t; h_t])                     eq. (5)
    p(y_t | y_<t, x) = softmax(W_s h̃_t)            eq. (6)
With ``attention: none`` the decoder is Sutskever's: p = softmax(W_s h_t).

Switches make the paper's ablation ladder a list of recipes: ``reverse_source``,
``dropout``, ``attention``/``score``, ``input_feed``, stacked ``enc_layers``/``dec_layers``.

Deviations, stated:
* ``bidirectional: true`` (the default for the Multi30k recipes, as in JoeyNMT and
  Bahdanau) is not in Luong et al., whose encoder is a unidirectional stack; set it
  false (with ``init: encoder_final``) for the paper's architecture.
* ``init: bridge`` starts the decoder from tanh(W_b h_enc) of the encoder's last layer
  (h and c alike), needed when encoder and decoder widths differ.
* Parameters are initialised U(−0.1, 0.1) as in the paper (``init_range``); the Multi30k recipes
  train with Adam. The paper's protocol (§4.1: 4 × 1000 LSTMs, plain SGD at lr 1, batch 128,
  norm clip 5, dropout 0.2, 12 epochs halving the rate every epoch after the 8th; without dropout
  10 and the 5th) is in the ``luong-{global-general,global-dot,global-location,local-m,local-p,
  local-p-dot}-sgd`` recipes, on WMT'14 En→De. One difference they keep: our training loss is the
  mean NLL per target token, while Luong's code (nmt.hybrid, trainLSTM.m) divides the summed NLL by
  the batch's sentences and measures the clipping norm without the embeddings, so at lr 1 our
  unclipped steps are shorter by about the mean target length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from attn_cli.attention.soft import Attention
from attn_cli.errors import AttnError
from attn_cli.nn.encoder_decoder import EncoderDecoder, output_layer, uniform_init
from attn_cli.nn.rnn import FeedLSTM, RaggedSteps, RNNEncoder
from attn_cli.registry import MODELS


@dataclass(frozen=True)
class LuongConfig:
    emb_dim: int = 256
    enc_hidden: int = 256  # per direction
    hidden: int = 256  # decoder
    enc_layers: int = 1
    dec_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    attention: Literal["none", "global", "local-m", "local-p"] = "global"
    score: Literal["dot", "general", "concat", "location"] = "general"
    input_feed: bool = True
    reverse_source: bool = False
    window: int = 10  # D in Luong §3.2 (σ = D/2)
    max_src_len: int = 100  # location score's output size
    init: Literal["bridge", "encoder_final", "zero"] = "bridge"
    init_range: float = 0.1


@MODELS.register("luong", task="nmt")
class LuongNMT(EncoderDecoder):
    Config = LuongConfig
    grouped_memory = True  # step_logits serves a beam's hypotheses from their sentence's one memory row

    def __init__(self, cfg: LuongConfig, src_vocab: int, tgt_vocab: int, pad_id: int = 0, **_: Any) -> None:
        super().__init__()
        self.cfg, self.pad_id = cfg, pad_id
        dirs = 2 if cfg.bidirectional else 1
        self.encoder = RNNEncoder(
            src_vocab,
            cfg.emb_dim,
            cfg.enc_hidden,
            cfg.enc_layers,
            cfg.bidirectional,
            cfg.dropout,
            "lstm",
            cfg.reverse_source,
            pad_id,
            final_cell=cfg.init == "encoder_final",
        )
        key_dim = cfg.enc_hidden * dirs
        if cfg.init == "encoder_final" and (key_dim != cfg.hidden or cfg.enc_layers != cfg.dec_layers):
            raise AttnError(
                "model.init=encoder_final needs encoder and decoder of equal width and depth; use init: bridge"
            )
        self.tgt_embed = nn.Embedding(tgt_vocab, cfg.emb_dim, padding_idx=pad_id)
        self.drop = nn.Dropout(cfg.dropout)
        self.attn = None
        if cfg.attention != "none":
            self.attn = Attention(
                cfg.score, cfg.hidden, key_dim, kind=cfg.attention, window=cfg.window, max_len=cfg.max_src_len
            )
            self.W_c = nn.Linear(key_dim + cfg.hidden, cfg.hidden, bias=False)  # eq. (5)
        if cfg.attention != "none" and cfg.input_feed:
            self.cell = FeedLSTM(cfg.emb_dim, cfg.hidden, cfg.hidden, cfg.dec_layers, cfg.dropout)
        else:
            self.rnn = nn.LSTM(
                cfg.emb_dim,
                cfg.hidden,
                cfg.dec_layers,
                batch_first=True,
                dropout=cfg.dropout if cfg.dec_layers > 1 else 0.0,
            )
        if cfg.init == "bridge":
            self.bridge = nn.Linear(key_dim, cfg.hidden * cfg.dec_layers)
        self.out = nn.Linear(cfg.hidden, tgt_vocab)  # W_s, eq. (6)
        uniform_init(self, cfg.init_range)

    # -- state ------------------------------------------------------------------------------
    def init_state(self, mem: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Decoder state, batch first: h, c (B, L, H); feed h̃_0 = 0 (B, H); t (B,) step index."""
        b, cfg = mem["memory"].size(0), self.cfg
        if cfg.init == "bridge":
            h = torch.tanh(self.bridge(mem["h"][:, -1])).view(b, cfg.dec_layers, cfg.hidden)
            c = h
        elif cfg.init == "encoder_final":
            h, c = mem["h"], mem["c"]
        else:
            h = c = mem["memory"].new_zeros(b, cfg.dec_layers, cfg.hidden)
        state = {"h": h.contiguous(), "c": c.contiguous(), "t": torch.zeros(b, dtype=torch.long, device=h.device)}
        if self.attn is not None and cfg.input_feed:
            state["feed"] = h.new_zeros(b, cfg.hidden)
        return state

    def _attend(self, query: torch.Tensor, mem: dict[str, Any], steps: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """query (B, Tq, H) -> attentional hidden h̃ (B, Tq, H) and the attention output."""
        a = self.attn(query, mem["memory"], mem["keys"], mem["mask"], mem["src_len"], steps)
        return torch.tanh(self.W_c(torch.cat([a.context, query], dim=-1))), a

    # -- teacher forcing --------------------------------------------------------------------
    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Output features (B, Tq, H) for ``tgt_in`` (B, Tq) (BOS-prefixed; :meth:`project` makes logits),
        attention weights (B, Tq, Tk) and local-p centres (B, Tq)."""
        mem = self.encode(src, src_len)
        state = self.init_state(mem)
        if self.attn is not None and self.cfg.input_feed:
            return self._feed_loop(tgt_in, state, mem)
        emb = self.drop(self.tgt_embed(tgt_in))  # (B, Tq, E)
        b, tq = tgt_in.shape
        out, _ = self.rnn(emb, (state["h"].transpose(0, 1).contiguous(), state["c"].transpose(0, 1).contiguous()))
        hidden, weights, centers = out, None, None  # (B, Tq, H)
        if self.attn is not None:
            steps = torch.arange(tq, device=src.device).expand(b, tq)  # (B, Tq)
            hidden, a = self._attend(out, mem, steps)
            weights, centers = a.weights, a.centers
        return {"hidden": self.drop(hidden), "attn": weights, "centers": centers}

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """Output layer W_s (eq. 6): features (..., H) -> logits (..., V)."""
        return output_layer(hidden, self.out)

    def _feed_loop(
        self, tgt_in: torch.Tensor, state: dict[str, torch.Tensor], mem: dict[str, Any]
    ) -> dict[str, torch.Tensor | None]:
        """Input feeding forces a step loop; run it over the still-unfinished sentences only.

        The same maths as :meth:`step_logits` per step (tests/test_nmt_training.py checks outputs and
        gradients against that plain loop), laid out for speed: the embeddings, dropout and the input
        half of the gates only for real tokens, at once (:meth:`RaggedSteps.pack`); the memory and the
        recurrent and W_c weights read through the ragged loop, so their gradients are summed once (the
        memory's and keys' through the attention's products as one bmm, :meth:`RaggedSteps.matmul`)."""
        ragged = RaggedSteps((tgt_in != self.pad_id).sum(1))  # lengths: BOS + words
        order = ragged.order
        x_gates = self.cell.precompute(self.drop(self.tgt_embed(ragged.pack(tgt_in)))).split(ragged.active)
        mem = {k: mem[k].index_select(0, order) for k in ("memory", "keys", "mask", "src_len")}
        h, c, feed = (state[k].index_select(0, order) for k in ("h", "c", "feed"))
        outs, ws, cs = [], [], []
        for t, n in enumerate(ragged.active):
            if n < h.size(0):  # sentences ended: drop their rows (sorted, so the last ones)
                h, c, feed = h[:n], c[:n], feed[:n]
            top, h, c = self.cell.step(x_gates[t], feed, h, c, ragged)  # (n, H)
            mem_t = {k: ragged.rows(v, n) for k, v in mem.items()}
            step = torch.full((n, 1), t, device=tgt_in.device)
            a = self.attn(
                top.unsqueeze(1), mem_t["memory"], mem_t["keys"], mem_t["mask"], mem_t["src_len"], step, ragged.matmul
            )
            feed = torch.tanh(ragged.linear(torch.cat([a.context.squeeze(1), top], dim=-1), self.W_c.weight))  # eq. (5)
            outs.append(feed)
            ws.append(a.weights.squeeze(1))
            if a.centers is not None:
                cs.append(a.centers.squeeze(1))
        hidden = ragged.pad(self.drop(torch.cat(outs)))  # (B, Tq, H)
        weights = ragged.pad(torch.cat(ws))  # (B, Tq, Tk)
        centers = ragged.pad(torch.cat(cs)) if cs else None  # (B, Tq)
        return {"hidden": hidden, "attn": weights, "centers": centers}

    # -- one step (search) ------------------------------------------------------------------
    def step_logits(
        self, y_prev: torch.Tensor, state: dict[str, torch.Tensor], mem: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """:meth:`step` before the softmax (search normalises only the scores it keeps).

        ``state`` may hold G rows per ``mem`` row (``grouped_memory``): the G hypotheses of a beam
        attend to their sentence's one memory row as G queries of one bmm (row i·G + g is hypothesis g of sentence i)."""
        emb = self.tgt_embed(y_prev)  # (n·G, E)
        t = state["t"]
        new = {"t": t + 1}
        attn = None
        n = mem["memory"].size(0)
        if self.attn is not None and self.cfg.input_feed:
            top, h, c = self.cell.step(self.cell.precompute(emb), state["feed"], state["h"], state["c"])
            hidden, a = self._attend(top.view(n, -1, top.size(-1)), mem, t.view(n, -1))  # (n, G, H)
            hidden = hidden.flatten(0, 1)
            new["feed"] = hidden
            attn = a.weights.flatten(0, 1)  # (n·G, Tk)
        else:
            out, (h, c) = self.rnn(
                emb.unsqueeze(1), (state["h"].transpose(0, 1).contiguous(), state["c"].transpose(0, 1).contiguous())
            )
            h, c = h.transpose(0, 1), c.transpose(0, 1)
            hidden = out.squeeze(1)
            if self.attn is not None:
                hidden, a = self._attend(out.view(n, -1, out.size(-1)), mem, t.view(n, -1))  # (n, G, H)
                hidden = hidden.flatten(0, 1)
                attn = a.weights.flatten(0, 1)
        new["h"], new["c"] = h, c
        return self.project(hidden), new, attn


@dataclass(frozen=True)
class Seq2SeqConfig(LuongConfig):
    """Sutskever et al. (2014): a deep LSTM on the reversed source, no attention (§3.3, §3.4).

    These defaults are the paper's (4 layers, U(−0.08, 0.08), no dropout); the ``seq2seq`` recipe
    shrinks it for Multi30k (2 × 256) and adds dropout 0.3, like every Multi30k NMT recipe
    (Sutskever et al. use none): ``--set model.dropout=0`` for the paper's.
    """

    attention: Literal["none", "global", "local-m", "local-p"] = "none"
    reverse_source: bool = True
    bidirectional: bool = False
    enc_layers: int = 4
    dec_layers: int = 4
    init: Literal["bridge", "encoder_final", "zero"] = "encoder_final"
    input_feed: bool = False
    dropout: float = 0.0
    init_range: float = 0.08  # §3.4: U(−0.08, 0.08)


@MODELS.register("seq2seq", task="nmt")
class Seq2Seq(LuongNMT):
    """Sutskever et al. (2014): Luong's decoder with ``attention: none``; the encoder's final state starts it."""

    Config = Seq2SeqConfig
