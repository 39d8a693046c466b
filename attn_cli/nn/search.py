"""Greedy and batched beam search over any step decoder (NMT, captioning), plus ensembles.

A *step decoder* is any object with two methods (models implement them; no Lightning):

``init_state(memory) -> state``
    ``memory`` and ``state`` are pytrees (tensor / tuple / list / dict / None) whose
    tensors all have the batch as their first dimension.
``step(y_prev, state, memory) -> (log_probs, state, attn)``
    ``y_prev`` (B,) previous tokens; ``log_probs`` (B, V); ``attn`` (B, Tk) weights or None.

Optionally ``grouped_memory = True``: ``step`` then also accepts G consecutive state rows per
memory row (row i·G + g is hypothesis g of memory row i), so that beam search keeps one memory row per sentence, not K: the K
queries of a sentence attend to it in one bmm and pruning a sentence copies one memory row.

Optionally ``step_logits(...)``, the same with unnormalised scores in place of ``log_probs``
(a new tensor: search overwrites it).
Search then normalises only what it keeps: the K best scores of each row minus the row's
log-sum-exp. That is exact (a row's order is the same before and after log-softmax) and
skips two full (B·K, V) passes per step — at beam 5 these passes, not the decoder, were
most of the step time after the output projection. The log-sum-exp itself reuses the row
maximum topk found (:func:`_log_normaliser_`); the top K of each row come from a chunked
search that reads the row once (:func:`_row_topk`).

Beam search keeps K hypotheses per sentence in one batch of B·K rows (the first step, where
all K are the same BOS row, runs one row per sentence and copies it: four fifths of that
step at beam 5, nearly all the rows search ever computes for a dead hypothesis), moves a
hypothesis that emits EOS to its sentence's finished list (score normalised by the
GNMT length penalty ((5+|Y|)/6)^α; α = 0 is no normalisation), and drops a sentence
from the batch (pruning state and memory rows) as soon as its best candidate has
finished or K hypotheses have. At the length limit EOS is forced. With K = 1 it returns
exactly what :func:`greedy` returns. Histories are not carried along: each step stores its
chosen tokens, back-pointers and attention rows (:class:`_Trace`), and only the finished
hypotheses are rebuilt, once, at the end; the finished-hypothesis bookkeeping stays on
tensors, with one transfer per step (which sentences are done).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch


class StepDecoder(Protocol):
    def init_state(self, memory: Any) -> Any: ...

    def step(self, y_prev: torch.Tensor, state: Any, memory: Any) -> tuple[torch.Tensor, Any, torch.Tensor | None]: ...


def select(tree: Any, index: torch.Tensor) -> Any:
    """Index the batch dimension of every tensor in a pytree."""
    if tree is None:
        return None
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, index)
    if isinstance(tree, tuple):
        return tuple(select(t, index) for t in tree)
    if isinstance(tree, list):
        return [select(t, index) for t in tree]
    if isinstance(tree, dict):
        return {k: select(v, index) for k, v in tree.items()}
    return tree  # scalars, strings: shared by every row


@dataclass
class Hypothesis:
    tokens: list[int]  # without BOS and EOS
    score: float  # length-normalised log probability
    log_prob: float  # raw sum of log probabilities (EOS included)
    attn: torch.Tensor | None  # (len(tokens), Tk) float32 on the CPU: the weights each output token was produced with


def length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha if alpha else 1.0


def _scorer(decoder: StepDecoder) -> tuple[Any, bool]:
    """The decoder's step function and whether its scores still need normalising."""
    fn = getattr(decoder, "step_logits", None)
    return (fn, True) if fn is not None else (decoder.step, False)


def _limits(max_len: int | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """Per-sentence output limits (B,): a sentence's result never depends on its batch-mates."""
    if isinstance(max_len, torch.Tensor):
        return max_len.to(device=device, dtype=torch.long).clamp_min(1)
    return torch.full((batch,), max(1, int(max_len)), dtype=torch.long, device=device)


@torch.no_grad()
def greedy(
    decoder: StepDecoder, memory: Any, batch: int, bos: int, eos: int, max_len: int | torch.Tensor
) -> list[Hypothesis]:
    """Arg-max decoding; ``max_len`` (int or (B,) tensor) tokens at most, EOS forced at the limit."""
    state = decoder.init_state(memory)
    device = _device_of(memory, state)
    limit = _limits(max_len, batch, device)
    step, normalise = _scorer(decoder)
    y = torch.full((batch,), bos, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    tokens, attns, logp = [], [], torch.zeros(batch, device=device)
    for t in range(int(limit.max())):
        out, state, attn = step(y, state, memory)  # (B, V) log probs or logits
        row_max, arg = out.max(-1, keepdim=True)  # (B, 1)
        y = torch.where(t >= limit - 1, torch.full_like(y, eos), arg.squeeze(1))
        lp = out.gather(1, y[:, None]).squeeze(1)
        if normalise:
            lp = lp - _log_normaliser_(out, row_max).squeeze(1)
        logp += torch.where(done, torch.zeros_like(logp), lp)
        tokens.append(y)
        attns.append(attn)
        done |= y == eos
        if bool(done.all()):
            break
    toks = torch.stack(tokens, 1).tolist()  # (B, T)
    att = torch.stack(attns, 1) if attns and attns[0] is not None else None  # (B, T, Tk)
    out = []
    for b in range(batch):
        seq = toks[b]
        n = seq.index(eos) if eos in seq else len(seq)
        out.append(
            Hypothesis(seq[:n], float(logp[b]), float(logp[b]), att[b, :n].float().cpu() if att is not None else None)
        )
    return out


@torch.no_grad()
def beam_search(
    decoder: StepDecoder,
    memory: Any,
    batch: int,
    bos: int,
    eos: int,
    beam: int,
    max_len: int | torch.Tensor,
    alpha: float = 1.0,
) -> list[Hypothesis]:
    """Batched beam search; returns the best finished hypothesis of each sentence."""
    trace = _beam(decoder, memory, batch, bos, eos, beam, max_len, alpha)
    return [trace.hypothesis(max(ends, key=lambda e: e.score)) for ends in trace.finished]


@torch.no_grad()
def beam_search_nbest(
    decoder: StepDecoder,
    memory: Any,
    batch: int,
    bos: int,
    eos: int,
    beam: int,
    max_len: int | torch.Tensor,
    alpha: float = 1.0,
) -> list[list[Hypothesis]]:
    """:func:`beam_search`, returning every finished hypothesis of each sentence, best first (``attn
    translate --n-best``): at least one, at most K plus those that finished in the step that ended it."""
    trace = _beam(decoder, memory, batch, bos, eos, beam, max_len, alpha)
    return [[trace.hypothesis(e) for e in sorted(ends, key=lambda e: -e.score)] for ends in trace.finished]


@dataclass
class _End:
    """A hypothesis that emitted EOS at ``step`` as entry ``beam`` of its sentence's block."""

    step: int
    sentence: int
    beam: int
    score: float  # length-normalised
    log_prob: float


class _Trace:
    """What beam search keeps per step instead of growing histories: back-pointers.

    Step t's entries are its alive blocks × K, flattened in the search's row order: ``token`` the word
    each new hypothesis ends with, ``origin`` the beam (of the same sentence, step t−1) it extends,
    ``ended`` whether it is a finished one (EOS with a finite score) and ``score`` its log probability;
    ``attn`` row r holds the weights row r attended with at step t (before reordering). A finished
    hypothesis is rebuilt by walking its origins back, once, instead of copying every alive
    hypothesis's tokens and attention at every step (a cost quadratic in the length).
    """

    def __init__(self, batch: int, beam: int, alpha: float) -> None:
        self.k, self.alpha = beam, alpha
        self.finished: list[list[_End]] = [[] for _ in range(batch)]
        self.alive: list[list[int]] = []  # per step: the sentence of each block
        self.blocks: list[dict[int, int]] = []  # per step: sentence -> its block index
        self.offsets: list[int] = []  # per step: index of its first entry in the flattened history
        self._steps: list[tuple[torch.Tensor, ...]] = []
        self._attn: list[torch.Tensor] = []
        self.tokens: list[int] = []
        self.origins: list[int] = []
        self.attn: torch.Tensor | None = None

    def add(
        self,
        alive: list[int],
        token: torch.Tensor,
        origin: torch.Tensor,
        ended: torch.Tensor,
        score: torch.Tensor,
        attn: torch.Tensor | None,
    ) -> None:
        """One step's (n, K) entries and its (n·K, Tk) attention; nothing leaves the device here."""
        self.offsets.append(self.offsets[-1] + len(self.alive[-1]) * self.k if self.alive else 0)
        self.alive.append(alive)
        self.blocks.append({s: i for i, s in enumerate(alive)})
        self._steps.append((token.view(-1), origin.view(-1), ended.view(-1), score.view(-1)))
        if attn is not None:
            self._attn.append(attn)

    def close(self) -> None:
        """Bring the history to the CPU once, as lists (one transfer, not one per step or hypothesis),
        and list each sentence's finished hypotheses in the order they ended (step, then rank)."""
        token, origin, ended, score = (torch.cat(parts) for parts in zip(*self._steps))
        self.tokens, self.origins = token.tolist(), origin.tolist()
        self.attn = torch.cat(self._attn) if self._attn else None
        rows = ended.nonzero().view(-1)
        for row, raw in zip(rows.tolist(), score[rows].tolist()):
            t = bisect.bisect_right(self.offsets, row) - 1
            block, beam = divmod(row - self.offsets[t], self.k)
            sentence = self.alive[t][block]
            self.finished[sentence].append(_End(t, sentence, beam, raw / length_penalty(t + 1, self.alpha), raw))

    def hypothesis(self, end: _End) -> Hypothesis:
        """Walk ``end``'s back-pointers: its tokens (EOS excluded) and the attention each was produced with."""
        k, s = self.k, end.sentence
        row = self.offsets[end.step] + self.blocks[end.step][s] * k + end.beam
        beam = self.origins[row]
        tokens, att_rows = [], []
        for t in range(end.step - 1, -1, -1):
            block = self.blocks[t][s]
            row = self.offsets[t] + block * k + beam
            tokens.append(self.tokens[row])
            beam = self.origins[row]
            att_rows.append(self.offsets[t] + block * k + beam)
        tokens.reverse()
        att_rows.reverse()
        attn = None
        if self.attn is not None:
            attn = self.attn.index_select(0, torch.tensor(att_rows, dtype=torch.long, device=self.attn.device))
            attn = attn.float().cpu()
        return Hypothesis(tokens, end.score, end.log_prob, attn)


def _log_normaliser_(out: torch.Tensor, row_max: torch.Tensor) -> torch.Tensor:
    """log Σ_v exp(out_v) per row (R, 1), given each row's maximum (R, 1) (search has it from topk);
    ``out`` is overwritten.

    The same value as ``torch.logsumexp``, in three passes over (R, V) instead of five and no new
    (R, V) tensor: at beam 5 these passes and their fresh buffers, not arithmetic, were what the
    normaliser cost."""
    return out.sub_(row_max).exp_().sum(-1, keepdim=True).log_().add_(row_max)


def _row_topk(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x.topk(k, dim=1)`` for (R, V) rows with k ≪ V, reading each row once instead of sorting it.

    The row is cut into chunks of about √V; a row's k best entries lie in the k chunks with the
    largest maxima (an entry outside them is beaten by those k maxima), so one max per chunk, a
    topk over the chunk maxima and one over those k chunks (plus the remainder columns) find them.
    Values and their order are torch.topk's; only exact ties may pick another index."""
    rows, v = x.shape
    width = max(k, math.isqrt(v))
    chunks = v // width
    if chunks <= k:
        return x.topk(k, dim=1)
    best_chunks = x[:, : chunks * width].unflatten(1, (chunks, width)).amax(2).topk(k, dim=1).indices  # (R, k)
    cols = (best_chunks[:, :, None] * width + torch.arange(width, device=x.device)).view(rows, k * width)
    if chunks * width < v:
        cols = torch.cat([cols, torch.arange(chunks * width, v, device=x.device).expand(rows, -1)], dim=1)
    values, pos = x.gather(1, cols).topk(k, dim=1)
    return values, cols.gather(1, pos)


def _beam(
    decoder: StepDecoder,
    memory: Any,
    batch: int,
    bos: int,
    eos: int,
    beam: int,
    max_len: int | torch.Tensor,
    alpha: float,
) -> _Trace:
    """The search itself: every finished hypothesis of each sentence, as back-pointers into a :class:`_Trace`."""
    k = beam
    device = _device_of(memory, None)
    limit = _limits(max_len, batch, device)  # (B,) per sentence
    limits = limit.tolist()
    rows = torch.arange(batch, device=device).repeat_interleave(k)  # (B*K,)
    grouped = bool(getattr(decoder, "grouped_memory", False))  # one memory row per sentence, shared by its K
    mem, state = memory, decoder.init_state(memory)  # one row per sentence until the first step has run
    alive = list(range(batch))  # original sentence index of each alive block of K rows
    scores = torch.full((batch, k), -math.inf, device=device)
    scores[:, 0] = 0.0
    n_finished = torch.zeros(batch, dtype=torch.long, device=device)  # per alive block
    block_rows = torch.arange(batch, device=device)[:, None] * k  # (B, 1) first row of each block
    y = torch.full((batch,), bos, dtype=torch.long, device=device)
    trace = _Trace(batch, k, alpha)
    step, normalise = _scorer(decoder)
    for t in range(max(limits)):
        n = len(alive)
        out, state, attn = step(y, state, mem)  # (n*K, V) log probs or logits; (n, V) at the first step
        if t == 0:  # a sentence's K hypotheses start as the same BOS row: its step is computed once, then copied
            out, state = out.index_select(0, rows), select(state, rows)
            attn = attn.index_select(0, rows) if attn is not None else None
            if not grouped:
                mem = select(memory, rows)
        kk = min(k, out.size(-1))
        # the K best continuations of each row: the sentence's K best over K·V are among them
        best, best_tok = _row_topk(out, kk)  # (n*K, kk)
        limit_reached = t >= min(limits[s] for s in alive) - 1
        eos_out = out[:, eos : eos + 1].clone() if limit_reached else None  # the normaliser overwrites out
        lse = _log_normaliser_(out, best[:, :1]) if normalise else 0.0  # (n*K, 1)
        best = best - lse
        if eos_out is not None:  # force EOS at each sentence's limit
            at_limit = (t >= limit[alive] - 1).repeat_interleave(k)  # (n*K,)
            forced = torch.full_like(best, -math.inf)
            forced[:, :1] = eos_out - lse
            best = torch.where(at_limit[:, None], forced, best)
            best_tok = torch.where(at_limit[:, None], torch.full_like(best_tok, eos), best_tok)
        cand = (scores.view(-1, 1) + best).view(n, k * kk)  # (n, K*kk)
        top_scores, top_idx = cand.topk(k, dim=1)  # (n, K)
        origin = top_idx // kk  # (n, K) beam each candidate extends
        token = best_tok.view(n, k * kk).gather(1, top_idx)  # (n, K)
        state = select(state, (block_rows[:n] + origin).view(-1))
        is_eos = token == eos  # (n, K)
        ended = is_eos & (top_scores > -math.inf)
        trace.add(alive, token, origin, ended, top_scores, attn)
        n_finished += ended.sum(1)
        # a sentence is done once its best candidate has finished or K of its hypotheses have
        done = is_eos[:, 0] | (n_finished >= k)
        keep_blocks = [i for i, d in enumerate(done.tolist()) if not d]  # the step's one transfer
        if not keep_blocks:
            break
        top_scores = top_scores.masked_fill(is_eos, -math.inf)
        y = token.view(-1)
        if len(keep_blocks) < n:  # prune finished sentences from every batched tensor
            blocks = torch.tensor(keep_blocks, device=device)
            keep_rows = (blocks[:, None] * k + torch.arange(k, device=device)[None, :]).view(-1)
            state, y = select(state, keep_rows), y.index_select(0, keep_rows)
            mem = select(mem, blocks if grouped else keep_rows)
            top_scores, n_finished = top_scores.index_select(0, blocks), n_finished.index_select(0, blocks)
            alive = [alive[i] for i in keep_blocks]
        scores = top_scores
    trace.close()
    return trace


class Ensemble:
    """Several step decoders as one: the average of their probabilities (Luong et al. §4.1's ensembles).

    ``memory`` and ``state`` are tuples with one entry per member. Attention is the
    members' mean. An ensemble of one returns its member's output unchanged.
    """

    def __init__(self, members: list[StepDecoder]) -> None:
        self.members = members
        self.grouped_memory = all(getattr(m, "grouped_memory", False) for m in members)

    def init_state(self, memory: tuple) -> tuple:
        return tuple(m.init_state(mem) for m, mem in zip(self.members, memory))

    def step(
        self, y_prev: torch.Tensor, state: tuple, memory: tuple
    ) -> tuple[torch.Tensor, tuple, torch.Tensor | None]:
        outs = [m.step(y_prev, s, mem) for m, s, mem in zip(self.members, state, memory)]
        if len(outs) == 1:
            lp, s, a = outs[0]
            return lp, (s,), a
        lps = torch.stack([o[0] for o in outs])  # (M, B, V)
        lp = torch.logsumexp(lps, 0) - math.log(len(outs))
        attns = [o[2] for o in outs if o[2] is not None]
        attn = torch.stack(attns).mean(0) if attns else None
        return lp, tuple(o[1] for o in outs), attn

    def step_logits(
        self, y_prev: torch.Tensor, state: tuple, memory: tuple
    ) -> tuple[torch.Tensor, tuple, torch.Tensor | None]:
        """Scores for search: one member's own (unnormalised, if it offers them), else :meth:`step`'s."""
        if len(self.members) == 1:
            fn, _ = _scorer(self.members[0])
            out, s, a = fn(y_prev, state[0], memory[0])
            return out, (s,), a
        return self.step(y_prev, state, memory)


def _device_of(*trees: Any) -> torch.device:
    for tree in trees:
        found = _first_tensor(tree)
        if found is not None:
            return found.device
    return torch.device("cpu")


def _first_tensor(tree: Any) -> torch.Tensor | None:
    if isinstance(tree, torch.Tensor):
        return tree
    if isinstance(tree, (tuple, list)):
        for t in tree:
            if (found := _first_tensor(t)) is not None:
                return found
    if isinstance(tree, dict):
        for t in tree.values():
            if (found := _first_tensor(t)) is not None:
                return found
    return None
