"""Greedy and batched beam search over any step decoder (NMT, captioning), plus ensembles.

A *step decoder* is any object with two methods (models implement them; no Lightning):

``init_state(memory) -> state``
    ``memory`` and ``state`` are pytrees (tensor / tuple / list / dict / None) whose
    tensors all have the batch as their first dimension.
``step(y_prev, state, memory) -> (log_probs, state, attn)``
    ``y_prev`` (B,) previous tokens; ``log_probs`` (B, V); ``attn`` (B, Tk) weights or None.

Optionally ``step_logits(...)``, the same with unnormalised scores in place of ``log_probs``.
Search then normalises only what it keeps: the K best scores of each row minus the row's
log-sum-exp. That is exact (a row's order is the same before and after log-softmax) and
skips two full (B·K, V) passes per step — at beam 5 these passes, not the decoder, were
most of the step time after the output projection.

Beam search keeps K hypotheses per sentence in one batch of B·K rows, moves a
hypothesis that emits EOS to its sentence's finished list (score normalised by the
GNMT length penalty ((5+|Y|)/6)^α; α = 0 is no normalisation), and drops a sentence
from the batch (pruning state and memory rows) as soon as its best candidate has
finished or K hypotheses have. At the length limit EOS is forced. With K = 1 it returns
exactly what :func:`greedy` returns.
"""

from __future__ import annotations

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
        y = torch.where(t >= limit - 1, torch.full_like(y, eos), out.argmax(-1))
        lp = out.gather(1, y[:, None]).squeeze(1)
        if normalise:
            lp = lp - torch.logsumexp(out, -1)
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
    return [hyps[0] for hyps in beam_search_nbest(decoder, memory, batch, bos, eos, beam, max_len, alpha)]


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
    k = beam
    device = _device_of(memory, None)
    limit = _limits(max_len, batch, device)  # (B,) per sentence
    rows = torch.arange(batch, device=device).repeat_interleave(k)  # (B*K,)
    mem = select(memory, rows)
    state = decoder.init_state(mem)
    alive = list(range(batch))  # original sentence index of each alive block of K rows
    scores = torch.full((batch, k), -math.inf, device=device)
    scores[:, 0] = 0.0
    seqs = torch.full((batch * k, 0), bos, dtype=torch.long, device=device)  # generated tokens so far
    att_hist: torch.Tensor | None = None  # (n*K, t, Tk)
    y = torch.full((batch * k,), bos, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    step, normalise = _scorer(decoder)
    for t in range(int(limit.max())):
        n = len(alive)
        out, state, attn = step(y, state, mem)  # (n*K, V) log probs or logits
        kk = min(k, out.size(-1))
        # the K best continuations of each row: the sentence's K best over K·V are among them
        best, best_tok = out.topk(kk, dim=1)  # (n*K, kk)
        lse = torch.logsumexp(out, -1, keepdim=True) if normalise else 0.0  # (n*K, 1)
        best = best - lse
        at_limit = (t >= limit[alive] - 1).repeat_interleave(k)  # (n*K,) force EOS at each sentence's limit
        if bool(at_limit.any()):
            eos_lp = out[:, eos : eos + 1] - lse
            forced = torch.full_like(best, -math.inf)
            forced[:, :1] = eos_lp
            best = torch.where(at_limit[:, None], forced, best)
            best_tok = torch.where(at_limit[:, None], torch.full_like(best_tok, eos), best_tok)
        cand = (scores.view(-1, 1) + best).view(n, k * kk)  # (n, K*kk)
        top_scores, top_idx = cand.topk(k, dim=1)  # (n, K)
        origin = top_idx // kk  # (n, K) beam each candidate extends
        token = best_tok.view(n, k * kk).gather(1, top_idx)  # (n, K)
        src_rows = (torch.arange(n, device=device)[:, None] * k + origin).view(-1)  # (n*K,)
        seqs = torch.cat([seqs.index_select(0, src_rows), token.view(-1, 1)], dim=1)
        state = select(state, src_rows)
        if attn is not None:
            step_att = attn.index_select(0, src_rows).unsqueeze(1)  # (n*K, 1, Tk)
            att_hist = step_att if att_hist is None else torch.cat([att_hist.index_select(0, src_rows), step_att], 1)
        is_eos = token == eos  # (n, K)
        keep_blocks = []
        eos_list = is_eos.tolist()
        score_list = top_scores.tolist()
        for i in range(n):
            sent = alive[i]
            for j in range(k):
                if eos_list[i][j] and score_list[i][j] > -math.inf:
                    r = i * k + j
                    toks = seqs[r, :-1].tolist()
                    raw = score_list[i][j]
                    finished[sent].append(
                        Hypothesis(
                            toks,
                            raw / length_penalty(len(toks) + 1, alpha),
                            raw,
                            att_hist[r, :-1].float().cpu() if att_hist is not None else None,
                        )
                    )
            if not (eos_list[i][0] or len(finished[sent]) >= k):
                keep_blocks.append(i)
        top_scores = top_scores.masked_fill(is_eos, -math.inf)
        if not keep_blocks:
            break
        if len(keep_blocks) < n:  # prune finished sentences from every batched tensor
            blocks = torch.tensor(keep_blocks, device=device)
            keep_rows = (blocks[:, None] * k + torch.arange(k, device=device)[None, :]).view(-1)
            seqs, state, mem = seqs.index_select(0, keep_rows), select(state, keep_rows), select(mem, keep_rows)
            att_hist = att_hist.index_select(0, keep_rows) if att_hist is not None else None
            top_scores = top_scores.index_select(0, blocks)
            alive = [alive[i] for i in keep_blocks]
        scores = top_scores
        y = seqs[:, -1]
    return [sorted(hyps, key=lambda h: -h.score) for hyps in finished]


class Ensemble:
    """Several step decoders as one: the average of their probabilities (Luong et al. §4.1's ensembles).

    ``memory`` and ``state`` are tuples with one entry per member. Attention is the
    members' mean. An ensemble of one returns its member's output unchanged.
    """

    def __init__(self, members: list[StepDecoder]) -> None:
        self.members = members

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
