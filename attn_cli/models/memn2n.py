"""End-To-End Memory Networks (Sukhbaatar, Szlam, Weston & Fergus, NeurIPS 2015), bAbI QA.

Memories m_i = Σ_j l_j ∘ A x_ij + T_A(i), outputs c_i likewise with C and T_C (§4.1); each hop
is :func:`attn_cli.attention.memory.memory_hop` (Eq. 1-2); u^{k+1} = u^k + o^k (Eq. 5) or
H u^k + o^k with layer-wise tying (§2.2); â = softmax(W(o^K + u^K)) (Eq. 3).

* ``encoding``: ``bow`` (l_j = 1) or ``pe`` (position encoding, §4.1). ``pe_form``: ``paper``, the
  printed l_kj = (1 − j/J) − (k/d)(1 − 2j/J) with J the words of *that* sentence, or ``release``, the
  authors' Matlab l_kj = 1 + 4(k − (d+1)/2)(j − (J+1)/2)/(dJ) with one J for the run (the longest
  training sentence or question, plus the time word): about twice the printed formula at a fixed J,
  centred on 1, a word's weight set by its position alone. The recipes use ``release``: with the printed
  formula no run learned qa16 (basic induction), with the release's the same recipe does (docs/memory.md).
* ``temporal``: T_A, T_C indexed by recency (the latest statement is 0), §4.1.
* ``random_noise``: during training, each story gets up to ceil(10% of its own length) empty
  memories at random time steps, i.e. its temporal indices skip (§4.1 "RN"), so the model does
  not overfit T_A; :func:`time_index` draws them as the authors' Matlab release does.
* ``linear_start``: the hop softmaxes are removed until validation loss stops falling,
  then put back (§4.2), or, with ``linear_start_epochs`` N > 0, for the first N epochs as the authors'
  release does (20 per task, 30 joint; :func:`attn_cli.tasks.memory.linear_start_update`); the switch
  is a buffer, so it survives a checkpoint.
* ``tying``: ``adjacent`` (A^{k+1} = C^k, B = A^1) or ``layerwise`` (A^k, C^k shared, u
  mapped by H), §2.2.
* ``empty_slots``: the hop softmax (Eq. 1) also runs over the memory's empty slots, as the authors' release
  does: its memory is ``config.sz`` = min(50, the longest training story) slots, the unused ones filled with the
  nil word, whose embeddings it holds at zero, and its softmax is not masked, so each empty slot is a zero
  memory with logit uᵀ0 = 0 that takes a share of p and gives nothing to o. A short story's hop can thereby
  put little weight on every real memory, which the yes/no tasks use ("is X in Y?": no memory matches); with
  the slots masked, p sums to 1 over the story and per task qa6 had 24.1% test error against 9.1% with them
  (records ``babi-1k-qa6/memn2n-pe-ls-rn@masked`` and ``memn2n-pe-ls-rn``; qa9 24.5 → 13.6, qa10 32.1 → 19.7,
  qa18 32.0 → 16.4 against the masked records in git history; docs/memory.md). The paper does not mention it.

The paper's training details (§4.2) and where each lives; "Matlab" is the authors' release
(facebookarchive/MemNN, MemN2N-babi-matlab):

* PE, temporal encoding, linear start, RN: the switches above; the memory holds the latest 50
  statements (``data.memory_size``), as in §4.2 and Matlab's ``config.sz``, and temporal indices
  stop at 49 as Matlab's do.
* N(0, 0.1) initialisation of every weight: ``init_std`` (Matlab ``Weight.m``: 0.1 · randn).
* Batches of 32, 3 hops, adjacent tying, d = 50 joint / 20 per task, 60 epochs joint / 100 per task: the
  recipes (Matlab ``config_babi_joint.m`` / ``config_babi.m``).
* SGD with the rate halved every 15 epochs (joint) / 25 (per task), restarted when linear start ends
  (``train_linear_start.m``): the ``-sgd`` recipes (``train.lr_schedule: step`` from ``train.lr_decay_start``),
  ``memn2n-pe-ls-rn-joint-sgd`` being the joint row of ``attn table memn2n``. Matlab sums the loss over the
  batch (``CrossEntropyLoss.size_average = false``) and takes steps of 0.005 (with linear start) on that sum,
  clipping each weight's gradient at norm 40; our loss is the batch mean, so the same steps are lr 0.16
  (0.005 × 32) and a clip at 1.25 (40 / 32).
* 10% of each task's training questions held out for validation: ``data_prep/babi.py``.

Deviations:

* The answer matrix W is its own (answers × d) parameter, not tied to C^K, because bAbI's
  answers ("n,s", "nothing") are their own vocabulary here.
* Optimiser of the per-task columns, LW joint and 10k (``memn2n-pe-ls-rn-joint`` and the recipes built on it):
  Adam at lr 0.005, constant, gradient norm clipped at 40 on the batch-mean loss; they were recorded with it.
  The joint row is the ``-sgd`` recipe, the release's optimiser and schedule. Jointly Adam's linear phase stalls
  (validation error 43-51%, with spikes to 66%, from its third linear epoch to its thirtieth, where SGD's falls
  from 45% to 37%), yet given the release's 60 epochs after it Adam ends level with SGD (docs/memory.md).
* Gradient clipping: one global norm (as the paper words it); Matlab clips each weight matrix on its own.
* Linear start: the recipes keep Matlab's fixed 20 (per task) or 30 (joint) linear epochs. The ``-sgd``
  recipes then run the whole schedule again, as Matlab (90 epochs joint, 120 per task); the Adam recipes
  count them inside their 60 / 100 epochs. §4.2's rule (``linear_start_epochs: 0``, the 10k recipe) fires after
  one or two epochs under Adam.
* The paper reports the best of 10 runs by training error; a recipe is one run (``train.seed``). N seeds:
  ``scripts/babi_seeds.sh`` (each run recorded on test, validation and training), the pick by validation or
  training error from the records: ``scripts/babi_best_of.py`` and ``attn table memn2n-joint-restarts``;
  the joint column of ``attn table memn2n`` is the best of N by validation error (docs/memory.md).
* Matlab adds the temporal index as an extra word of the sentence, so it is also scaled by the PE weight of
  the last position; here T_A(i) is added unscaled, as the paper's m_i = Σ_j A x_ij + T_A(i) writes it.
* Matlab draws each batch with replacement and holds out a random 10% of all questions for joint
  training; here each epoch is a permutation and 10% of each task is held out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn

from attn_cli.attention.core import lengths_to_mask
from attn_cli.attention.memory import memory_hop
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS


def position_encoding(lengths: torch.Tensor, max_len: int, dim: int) -> torch.Tensor:
    """l_kj = (1 − j/J) − (k/d)(1 − 2j/J), j = 1..J word, k = 1..d dimension (Sukhbaatar et al. §4.1).

    lengths (...,) words per sentence -> (..., max_len, dim); positions past J are 0.
    """
    j = torch.arange(1, max_len + 1, dtype=torch.float32, device=lengths.device)  # (L,)
    k = torch.arange(1, dim + 1, dtype=torch.float32, device=lengths.device)  # (D,)
    big_j = lengths.clamp(min=1).float()[..., None, None]  # (..., 1, 1)
    jj = j[:, None]  # (L, 1)
    enc = (1 - jj / big_j) - (k / dim) * (1 - 2 * jj / big_j)  # (..., L, D)
    return enc * (jj <= big_j).float()


def release_position_encoding(max_len: int, dim: int, big_j: int) -> torch.Tensor:
    """l_kj = 1 + 4(k − (d+1)/2)(j − (J+1)/2)/(dJ), J fixed for the run: the authors' PE (Matlab ``build_model.m``).

    -> (max_len, dim), j = 1..max_len word, k = 1..d dimension. J is the longest sentence of the training data
    plus one (Matlab counts the time word), the same for every sentence and the question, so a word's weight
    depends on its position alone, not on the length of its sentence; the weights are centred on 1. About
    twice the paper's printed formula (:func:`position_encoding`) taken at a fixed J. Positions past a
    sentence's end hold the padding word, whose embedding is 0.
    """
    j = torch.arange(1, max_len + 1, dtype=torch.float32)[:, None]  # (L, 1)
    k = torch.arange(1, dim + 1, dtype=torch.float32)  # (D,)
    return 1 + 4 * (k - (dim + 1) / 2) * (j - (big_j + 1) / 2) / (dim * big_j)  # (L, D)


def time_index(story_len: torch.Tensor, m: int, noise: float = 0.0) -> torch.Tensor:
    """(B, M) temporal index of each memory slot, 0 = the latest statement (Sukhbaatar et al. §4.1).

    story_len (B,) statements per story, oldest first in slots 0..len-1; padded slots get 0 (they
    are masked). With ``noise`` > 0 (training with RN) each story gets its own number of empty
    memories n, uniform on 0..ceil(noise × len), placed at random among its len + n time steps, so
    its indices are a sorted random len-subset of 0..len+n-1 — the authors' Matlab release
    (MemN2N-babi-matlab/train.m: ``nblank = randi([0, ceil(size(d,2) * randomize_time)])``,
    ``randperm``). The count depends on the story alone, never on the batch's padding: the latest
    statement of a 2-statement story keeps index 0 in 5 of 6 draws, as at test time, where there
    is no noise.
    """
    dev = story_len.device
    pos = torch.arange(m, device=dev)  # (M,)
    recency = (story_len[:, None] - 1 - pos).clamp(min=0)  # (B, M)
    if noise <= 0:
        return recency
    b = story_len.numel()
    most = torch.ceil(story_len.double() * noise).long()  # (B,) the most empties a story can get
    n_blank = (torch.rand(b, device=dev, dtype=torch.float64) * (most + 1)).long()  # (B,) uniform 0..most
    slots = m + math.ceil(m * noise)  # P >= len + n for every story
    steps = torch.arange(slots, device=dev)  # (P,)
    keys = torch.rand(b, slots, device=dev).masked_fill(steps >= (story_len + n_blank)[:, None], 2.0)  # (B, P)
    blank = keys.argsort(1).argsort(1) < n_blank[:, None]  # (B, P) n random time steps of the story's own
    kept = torch.sort(blank.to(torch.uint8), dim=1, stable=True).indices  # (B, P) non-blank steps first, ascending
    # the r-th most recent statement takes the r-th non-blank step; padded slots stay 0
    return kept.gather(1, recency) * (pos < story_len[:, None])


@MODELS.register("memn2n", task="memory")
class MemN2N(nn.Module):
    emb: nn.ModuleList  # the embedding matrices A, C (per hop, as the tying says)

    @dataclass(frozen=True)
    class Config:
        embed_dim: int = 20
        hops: int = 3
        encoding: Literal["bow", "pe"] = "pe"
        pe_form: Literal["paper", "release"] = "paper"  # the paper's printed PE formula, or the authors' Matlab one
        temporal: bool = True
        random_noise: float = 0.0  # fraction of empty memories inserted in training (paper RN: 0.1)
        linear_start: bool = False
        linear_start_epochs: int = 0  # 0: the paper's rule (until validation loss stops falling); N: N epochs
        tying: Literal["adjacent", "layerwise"] = "adjacent"
        init_std: float = 0.1
        # the release's unmasked memory: the hop softmax also runs over the empty slots (zero memories) of a
        # memory of min(50, the longest training story) slots; False masks them (p sums to 1 over the story)
        empty_slots: bool = False

    def __init__(
        self,
        cfg: Config,
        *,
        vocab: int,
        answers: int,
        max_story: int,
        max_words: int = 0,
        memory_slots: int = 0,
        **meta: Any,
    ) -> None:
        super().__init__()
        self.cfg, self.max_story = cfg, max_story
        # the release's memory size: min(50, the longest training story), config.sz in config_babi*.m
        self.memory_slots = min(memory_slots, max_story) if memory_slots > 0 else max_story
        if cfg.encoding == "pe" and cfg.pe_form == "release" and max_words < 1:
            raise AttnError(
                "memn2n with pe_form=release needs max_words (the longest training sentence or question), which "
                "the bAbI datamodule supplies; train it on a prepared bAbI set or set model.pe_form=paper"
            )
        self.pe_j = max_words + 1  # the release PE's J: the longest training sentence or question, + the time word
        d, k = cfg.embed_dim, cfg.hops
        n_emb = k + 1 if cfg.tying == "adjacent" else 2  # adjacent: E_0..E_K; layer-wise: A, C
        self.emb = nn.ModuleList(nn.Embedding(vocab, d, padding_idx=0) for _ in range(n_emb))
        self.time = nn.ParameterList(nn.Parameter(torch.empty(max_story, d)) for _ in range(n_emb))
        self.q_emb = nn.Embedding(vocab, d, padding_idx=0) if cfg.tying == "layerwise" else None
        self.h = nn.Linear(d, d, bias=False) if cfg.tying == "layerwise" else None
        self.out = nn.Linear(d, answers, bias=False)  # W
        for p in self.parameters():
            nn.init.normal_(p, 0.0, cfg.init_std)
        for e in self.emb:
            cast(nn.Embedding, e).weight.data[0].zero_()
        # linear start (§4.2): False until the task switches the softmax back on
        self.register_buffer("softmax_on", torch.tensor(not cfg.linear_start))

    def _a(self, hop: int) -> int:
        return hop if self.cfg.tying == "adjacent" else 0

    def _c(self, hop: int) -> int:
        return hop + 1 if self.cfg.tying == "adjacent" else 1

    def _encode(self, ids: torch.Tensor, table: int | nn.Embedding) -> torch.Tensor:
        """ids (..., L) -> (..., D), BoW or position-encoded sum over words."""
        emb: torch.Tensor = (self.emb[table] if isinstance(table, int) else table)(ids)  # (..., L, D)
        if self.cfg.encoding == "pe" and self.cfg.pe_form == "release":
            # J stays the training data's: a longer test sentence continues the same linear weights past it
            emb = emb * release_position_encoding(ids.size(-1), emb.size(-1), self.pe_j).to(emb.device)
        elif self.cfg.encoding == "pe":
            emb = emb * position_encoding((ids != 0).sum(-1), ids.size(-1), emb.size(-1))
        return emb.sum(-2)

    def forward(self, story: torch.Tensor, story_len: torch.Tensor, question: torch.Tensor) -> dict[str, Any]:
        """story (B, M, L), story_len (B,), question (B, Lq) -> logits (B, answers), attn (B, K, M)."""
        b, m, _ = story.shape
        mask = lengths_to_mask(story_len, m)  # (B, M)
        noise = self.cfg.random_noise if self.training else 0.0
        t_idx = time_index(story_len, m, noise).clamp(max=self.max_story - 1)  # (B, M)
        u = self._encode(question, self.q_emb if self.q_emb is not None else 0)  # (B, D)
        soft = bool(self.softmax_on)
        # a story longer than the release's memory would be cut to it there; here it keeps max_story slots, none empty
        empty = (self.memory_slots - story_len).clamp(min=0) if self.cfg.empty_slots else None  # (B,)
        weights = []
        for hop in range(self.cfg.hops):
            ia, ic = self._a(hop), self._c(hop)
            mem_in = self._encode(story, ia)  # (B, M, D)
            mem_out = self._encode(story, ic)  # (B, M, D)
            if self.cfg.temporal:
                mem_in = mem_in + self.time[ia][t_idx]
                mem_out = mem_out + self.time[ic][t_idx]
            o, p = memory_hop(u, mem_in, mem_out, mask, softmax=soft, empty=empty)  # (B, D), (B, M)
            u = (self.h(u) if self.h is not None else u) + o  # (B, D)
            weights.append(p)
        return {"logits": self.out(u), "attn": torch.stack(weights, 1)}  # (B, A), (B, K, M)
