"""The readers of Hermann et al. (NeurIPS 2015), "Teaching Machines to Read and Comprehend", §4.

All read a document d and a cloze query q and score the entity markers: â = softmax over
the @entityN markers of W_out g(d, q).

* ``deep-lstm-reader`` (§4.2): a 2-layer LSTM reads d ||| q token by token, with skip
  connections from the input to every layer and from every layer to the output; g is the
  output after the last token.
* ``attentive-reader`` (§4.3): bidirectional LSTMs over d (y_d(t)) and q (u = final states);
  m(t) = tanh(W_ym y_d(t) + W_um u), s(t) ∝ exp(w_msᵀ m(t)) (the additive score of
  :class:`attn_cli.attention.scores.AdditiveScore`), r = y_d s, g = tanh(W_rg r + W_ug u).
  ``uniform: true`` is the paper's Uniform Reader (s uniform over the document).
* ``impatient-reader`` (§4.3): re-reads the document for every query token i:
  m(i, t) = tanh(W_dm y_d(t) + W_rm r(i−1) + W_qm y_q(i)), s(i) ∝ exp(w_msᵀ m(i, t)),
  r(i) = y_dᵀ s(i) + tanh(W_rr r(i−1)), g = tanh(W_rg r(|q|) + W_qg u).

Deviations: the output softmax is restricted to the entity markers that occur in the
document (the paper scores the whole vocabulary), for every reader alike. The Deep LSTM Reader
adds a layer: g = tanh(W [y_1; y_2]) at the last token, where the paper scores the concatenation
g = y_1 || y_2 directly (§4.2); the recorded Deep LSTM Reader rows were trained with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attn_cli.attention.core import lengths_to_mask, masked_softmax
from attn_cli.attention.scores import AdditiveScore
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS


def _birnn(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bidirectional LSTM over padded x (B, T, E) -> states (B, T, 2H), u = [fwd last; bwd first] (B, 2H)."""
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    out, (h, _) = lstm(packed)
    states = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]
    return states, torch.cat([h[-2], h[-1]], -1)


@dataclass(frozen=True)
class ReaderConfig:
    embed_dim: int = 100
    hidden: int = 128  # per direction
    attn_dim: int = 128
    dropout: float = 0.1
    uniform: bool = False  # attentive-reader only: the Uniform Reader baseline
    query_first: bool = False  # deep-lstm-reader only: read q ||| d instead of d ||| q (Hermann et al. §4.2)


class _Reader(nn.Module):
    out: nn.Module  # the answer layer over the entities, built by each reader
    Config = ReaderConfig
    reads_one_sequence = False  # True for the Deep LSTM Reader, the only one whose reading order is a choice

    def __init__(self, cfg: ReaderConfig, *, vocab: int, entities: int, entity_offset: int, **meta: Any) -> None:
        super().__init__()
        if cfg.query_first and not self.reads_one_sequence:
            raise AttnError(
                "model.query_first applies to deep-lstm-reader only (the others read d and q with separate "
                "LSTMs); remove it from the recipe"
            )
        self.cfg, self.entities, self.offset = cfg, entities, entity_offset
        self.emb = nn.Embedding(vocab, cfg.embed_dim, padding_idx=0)
        self.drop = nn.Dropout(cfg.dropout)

    def _answer(self, g: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.out(self.drop(g))
        return scores.masked_fill(~cand, torch.finfo(g.dtype).min)  # (B, E)


@MODELS.register("attentive-reader", task="reader")
class AttentiveReader(_Reader):
    def __init__(self, cfg: ReaderConfig, **meta: Any) -> None:
        super().__init__(cfg, **meta)
        h2 = 2 * cfg.hidden
        self.doc_lstm = nn.LSTM(cfg.embed_dim, cfg.hidden, batch_first=True, bidirectional=True)
        self.q_lstm = nn.LSTM(cfg.embed_dim, cfg.hidden, batch_first=True, bidirectional=True)
        self.score = AdditiveScore(h2, h2, cfg.attn_dim)
        self.w_rg, self.w_ug = nn.Linear(h2, h2, bias=False), nn.Linear(h2, h2)
        self.out = nn.Linear(h2, self.entities)

    def forward(self, doc: torch.Tensor, doc_len: torch.Tensor, query: torch.Tensor, q_len: torch.Tensor,
                cand: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
        """doc (B, Td), query (B, Tq), cand (B, E) -> logits (B, E), attn (B, 1, Td)."""
        y_d, _ = _birnn(self.doc_lstm, self.drop(self.emb(doc)), doc_len)  # (B, Td, 2H)
        _, u = _birnn(self.q_lstm, self.drop(self.emb(query)), q_len)  # (B, 2H)
        mask = lengths_to_mask(doc_len, doc.size(1))[:, None]  # (B, 1, Td)
        scores = self.score.score(u[:, None], self.score.keys(y_d))  # (B, 1, Td)
        s = masked_softmax(torch.zeros_like(scores) if self.cfg.uniform else scores, mask)  # (B, 1, Td)
        r = torch.bmm(s, y_d)[:, 0]  # (B, 2H)
        g = torch.tanh(self.w_rg(r) + self.w_ug(u))  # (B, 2H)
        return {"logits": self._answer(g, cand), "attn": s}


@MODELS.register("impatient-reader", task="reader")
class ImpatientReader(_Reader):
    def __init__(self, cfg: ReaderConfig, **meta: Any) -> None:
        super().__init__(cfg, **meta)
        h2 = 2 * cfg.hidden
        self.doc_lstm = nn.LSTM(cfg.embed_dim, cfg.hidden, batch_first=True, bidirectional=True)
        self.q_lstm = nn.LSTM(cfg.embed_dim, cfg.hidden, batch_first=True, bidirectional=True)
        self.score = AdditiveScore(2 * h2, h2, cfg.attn_dim)  # query = [r(i−1); y_q(i)]: W_rm, W_qm in one
        self.w_rr = nn.Linear(h2, h2, bias=False)
        self.w_rg, self.w_qg = nn.Linear(h2, h2, bias=False), nn.Linear(h2, h2)
        self.out = nn.Linear(h2, self.entities)

    def forward(self, doc: torch.Tensor, doc_len: torch.Tensor, query: torch.Tensor, q_len: torch.Tensor,
                cand: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
        """-> logits (B, E), attn (B, Tq, Td): one document attention per query token."""
        y_d, _ = _birnn(self.doc_lstm, self.drop(self.emb(doc)), doc_len)  # (B, Td, 2H)
        y_q, u = _birnn(self.q_lstm, self.drop(self.emb(query)), q_len)  # (B, Tq, 2H), (B, 2H)
        mask = lengths_to_mask(doc_len, doc.size(1))[:, None]  # (B, 1, Td)
        keys = self.score.keys(y_d)  # (B, Td, A)
        r = y_d.new_zeros(y_d.size(0), y_d.size(-1))  # (B, 2H)
        weights = []
        for i in range(query.size(1)):
            s = masked_softmax(self.score.score(torch.cat([r, y_q[:, i]], -1)[:, None], keys), mask)  # (B, 1, Td)
            r_new = torch.bmm(s, y_d)[:, 0] + torch.tanh(self.w_rr(r))  # (B, 2H)
            live = (i < q_len)[:, None].to(r.dtype)  # past the query's end, r stays
            r = live * r_new + (1 - live) * r
            weights.append(s[:, 0])
        g = torch.tanh(self.w_rg(r) + self.w_qg(u))  # (B, 2H)
        return {"logits": self._answer(g, cand), "attn": torch.stack(weights, 1)}


@MODELS.register("deep-lstm-reader", task="reader")
class DeepLSTMReader(_Reader):
    """Hermann et al. (2015) §4.2: a two-layer LSTM reads document and query as one sequence.

    ``query_first: false`` reads d ||| q, ``true`` reads q ||| d; §4.2 feeds the document, a
    delimiter, then the query, and "alternatively" the query first (Table 5 has one Deep LSTM row,
    without saying which order it is). Reading the query first tells the LSTM which entity role it is
    looking for before the document passes, so it only has to hold the matching entity; reading
    it last asks the state to carry every entity through the whole document. Skip connections run
    from the input to both layers and from both layers to the output, y = [y₁(|d|+|q|); y₂(|d|+|q|)],
    and the answer is softmax(W_out y), as in the paper: no extra projection before the output.
    """

    attends = False  # no attention over the document: `attn visualize` has nothing to draw
    reads_one_sequence = True

    def __init__(self, cfg: ReaderConfig, **meta: Any) -> None:
        super().__init__(cfg, **meta)
        h = 2 * cfg.hidden  # same state width as the bidirectional readers
        self.l1 = nn.LSTM(cfg.embed_dim, h, batch_first=True)
        self.l2 = nn.LSTM(cfg.embed_dim + h, h, batch_first=True)  # skip: input to layer 2
        self.out = nn.Linear(2 * h, self.entities)  # skip: both layers to the output

    def forward(self, doc: torch.Tensor, doc_len: torch.Tensor, query: torch.Tensor, q_len: torch.Tensor,
                cand: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
        """doc (B, Td), query (B, Tq) joined as d ||| q (or q ||| d) -> logits (B, E)."""
        b = doc.size(0)
        sep = doc.new_full((b, 1), 2)  # "|||"
        first, first_len, second, second_len = (
            (query, q_len, doc, doc_len) if self.cfg.query_first else (doc, doc_len, query, q_len)
        )
        seqs = [torch.cat([first[i, : first_len[i]], sep[i], second[i, : second_len[i]]]) for i in range(b)]
        lens = torch.tensor([len(s) for s in seqs])
        joint = nn.utils.rnn.pad_sequence(seqs, batch_first=True)  # (B, T)
        x = self.drop(self.emb(joint))  # (B, T, E)
        packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        h1 = pad_packed_sequence(self.l1(packed)[0], batch_first=True)[0]  # (B, T, H)
        p2 = pack_padded_sequence(torch.cat([x, h1], -1), lens, batch_first=True, enforce_sorted=False)
        h2 = pad_packed_sequence(self.l2(p2)[0], batch_first=True)[0]  # (B, T, H)
        last = (lens - 1).to(doc.device)
        ar = torch.arange(b, device=doc.device)
        g = torch.cat([h1[ar, last], h2[ar, last]], -1)  # (B, 2H)
        return {"logits": self._answer(g, cand)}
