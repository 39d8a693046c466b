"""Show and Tell (Vinyals et al. 2015) and Show, Attend and Tell (Xu et al., ICML 2015), soft and hard.

The decoder of Xu et al. §3.1.2, with the annotation vectors a_i (B, L, D) of a CNN:

* eq. (1)-(3): an LSTM whose input is [E y_{t-1}; ẑ_t]; (h_0, c_0) = (f_init,h(ā), f_init,c(ā)),
  two one-layer tanh MLPs of the mean annotation ā = (1/L) Σ_i a_i.
* eq. (4)-(5): e_ti = f_att(a_i, h_{t-1}) = v_aᵀ tanh(W h_{t-1} + U a_i + b) — the additive score of
  :mod:`attn_cli.attention.scores` (Bahdanau's, reused), α_t = softmax(e_t) over the L locations.
* eq. (7), the deep output: p(y_t | a, y_1^{t-1}) ∝ exp(L_o(E y_{t-1} + L_h h_t + L_z ẑ_t)).
* soft (§4.2): ẑ_t = β_t Σ_i α_ti a_i with the gating scalar β_t = σ(f_β(h_{t-1})) (§4.2.1), trained
  on −log p(y|a) + λ Σ_i (1 − Σ_t α_ti)², the doubly stochastic penalty (eq. (14)).
* hard (§4.1): s_t ~ Multinoulli_L(α_t), ẑ_t = a_{s_t} (eq. (8)-(9)); the gradient estimate of
  eq. (12): ∂log p(y|s̃,a)/∂W + λ_r (log p(y|s̃,a) − b) ∂log p(s̃|a)/∂W + λ_e ∂H[s̃]/∂W, with the
  moving-average baseline b (:class:`attn_cli.attention.reinforce.MovingAverageBaseline`), the
  entropy bonus, and — as the paper does ("with probability 0.5 for a given image") — the sampled
  location replaced by its expected value α_t with probability 0.5. The reward is the caption's
  log-likelihood (eq. (10)-(12)), one per caption, detached; the baseline is subtracted per caption;
  the score is log α_t at the sampled index. λ_r and λ_e apply per word: the REINFORCE and entropy
  terms are divided by T, the batch's padded caption length, with λ_r = 0.1 — the authors' scale
  (arctic-captions: (b − Σ_t cost_t / T)/10 on the attention gradient); why, and what the earlier
  λ_r = 1 on the summed reward did: docs/caption.md ("Hard attention finds the digits once REINFORCE
  has the authors' scale"). The baseline averages the rewards of the captions that sampled their
  locations only (the others' rewards come from the expected context, another policy). The doubly
  stochastic penalty of eq. (14) applies to α_t here too when λ > 0, as in the authors' code
  (arctic-captions adds it before branching on the attention type).

Show and Tell (``show-tell``): the same LSTM and output layer without attention: the image vector
ā sets the initial state and is never seen again.

Deviations, all deliberate: the deep output has a tanh before L_o (the authors' code,
arctic-captions, does the same); the loss is the per-sentence NLL summed over the words and
averaged over the batch (as the paper) but logged per word; the 0.5 choice of the expected
location is drawn once per caption (the paper's "for a given image"; arctic-captions draws it once per
minibatch), not per word; λ_r, λ_e per word (above); hard attention decodes at test time with the
expected context Σ_i α_ti a_i (deterministic, like the authors' sampler), so evaluation needs no
random numbers; Show and Tell puts the image into the initial state (h_0, c_0) instead of feeding
it as the first input (Vinyals et al. §3.1) — the issue asks for the former, it keeps the three
models on one decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.core import masked_softmax
from attn_cli.attention.reinforce import MovingAverageBaseline, categorical_sample, reinforce_loss
from attn_cli.attention.scores import AdditiveScore
from attn_cli.errors import AttnError
from attn_cli.nn.image_encoders import GridCNN
from attn_cli.registry import MODELS

Attention = Literal["none", "mean", "soft", "hard"]


def doubly_stochastic_penalty(alphas: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Σ_i (1 − Σ_t α_ti)² per caption (Xu et al. eq. (14)); ``alphas`` (B, T, L), ``steps`` (B, T) bool."""
    total = (alphas * steps.unsqueeze(-1).to(alphas.dtype)).sum(1)  # (B, L) attention each location received
    return ((1.0 - total) ** 2).sum(-1)  # (B,)


class CaptionDecoder(nn.Module):
    """The LSTM decoder of Xu et al. over annotation vectors (B, L, D); L may be frames (Yao et al.).

    ``attention``: ``none`` (Show and Tell), ``mean`` (the context is ā at every step: Yao et al.'s
    basic encoder-decoder), ``soft`` or ``hard``. Step-decoder protocol of :mod:`attn_cli.nn.search`.
    """

    def __init__(
        self,
        feat_dim: int,
        vocab: int,
        *,
        attention: Attention,
        emb_dim: int,
        hidden: int,
        attn_dim: int,
        dropout: float,
        gate: bool,
        context_input: bool = True,
        init: Literal["mean", "zeros"] = "mean",
    ) -> None:
        super().__init__()
        self.attention, self.gate_on = attention, gate and attention in ("soft", "hard")
        ctx = 0 if attention == "none" else feat_dim
        # eq. (1) feeds ẑ_t to the LSTM; without it ẑ_t reaches the word only through eq. (7)
        self.context_input = context_input and ctx > 0
        if init not in ("mean", "zeros"):
            raise AttnError(f"model.init must be 'mean' or 'zeros', got {init!r}")
        if init == "zeros" and attention not in ("soft", "hard"):
            raise AttnError("model.init=zeros leaves the decoder blind: it needs soft or hard attention")
        self.hidden, self.init_kind = hidden, init
        self.embed = nn.Embedding(vocab, emb_dim)
        # f_init,h / f_init,c of ā (Xu et al. §3.1.2); "zeros": (h_0, c_0) = 0, a deviation (see the docstring)
        self.init_h = nn.Linear(feat_dim, hidden) if init == "mean" else None
        self.init_c = nn.Linear(feat_dim, hidden) if init == "mean" else None
        self.lstm = nn.LSTMCell(emb_dim + (ctx if self.context_input else 0), hidden)  # eq. (1): [E y_{t-1}; ẑ_t]
        self.score = AdditiveScore(hidden, feat_dim, attn_dim) if attention in ("soft", "hard") else None  # f_att
        self.f_beta = nn.Linear(hidden, 1) if self.gate_on else None  # §4.2.1 gating scalar
        self.L_h = nn.Linear(hidden, emb_dim)  # eq. (7)
        self.L_z = nn.Linear(ctx, emb_dim) if ctx else None
        self.L_o = nn.Linear(emb_dim, vocab)
        self.drop = nn.Dropout(dropout)

    # -- memory and state ----------------------------------------------------------------------
    def memory(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image work done once: keys U a_i + b (B, L, A) and the mean annotation ā (B, D)."""
        mem = {"feats": feats, "mean": feats.mean(1)}
        if self.score is not None:
            mem["keys"] = self.score.keys(feats)  # (B, L, A)
        return mem

    def init_state(self, memory: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        mean = memory["mean"]  # (B, D)
        if self.init_h is None or self.init_c is None:
            zero = mean.new_zeros(mean.size(0), self.hidden)  # (B, H)
            return zero, zero
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))  # (B, H) each

    def attend(self, h_prev: torch.Tensor, memory: dict[str, torch.Tensor]) -> torch.Tensor:
        """α_t (B, L), eq. (4)-(5); soft and hard attention only (the others have no score)."""
        assert self.score is not None
        scores = self.score.score(h_prev.unsqueeze(1), memory["keys"]).squeeze(1)  # (B, L)
        return masked_softmax(scores, None)

    # -- one step --------------------------------------------------------------------------------
    def _step(
        self,
        y_prev: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        memory: dict[str, torch.Tensor],
        expect: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        """One word. ``expect`` (B,) bool: hard attention uses the expected context there, else samples.

        ``expect=None`` for hard attention means: expected context everywhere (evaluation).
        """
        h, c = state
        emb = self.embed(y_prev)  # (B, E)
        out: dict[str, Any] = {"alpha": None, "beta": None, "log_p_loc": None, "entropy": None}
        feats = memory["feats"]  # (B, L, D)
        if self.attention == "none":
            z = None
        elif self.attention == "mean":
            z = memory["mean"]  # (B, D)
        else:
            alpha = self.attend(h, memory)  # (B, L)
            out["alpha"] = alpha
            z = torch.bmm(alpha.unsqueeze(1), feats).squeeze(1)  # (B, D) expected context, eq. (13)
            if self.attention == "hard" and expect is not None:
                loc, log_p, ent = categorical_sample(alpha)  # (B,) each; eq. (8)
                sampled = feats[torch.arange(feats.size(0), device=feats.device), loc]  # (B, D) eq. (9)
                z = torch.where(expect.unsqueeze(1), z, sampled)
                out["log_p_loc"], out["entropy"], out["loc"] = log_p, ent, loc
            if self.f_beta is not None:  # gate_on
                beta = torch.sigmoid(self.f_beta(h))  # (B, 1)
                out["beta"] = beta.squeeze(1)
                z = beta * z
        out["z"] = z  # ẑ_t (B, D), the context the LSTM reads
        inp = torch.cat([emb, z], -1) if self.context_input and z is not None else emb
        h, c = self.lstm(inp, (h, c))  # (B, H)
        pre = emb + self.L_h(h) + (self.L_z(z) if self.L_z is not None and z is not None else 0.0)  # eq. (7)
        out["logits"] = self.L_o(self.drop(torch.tanh(pre)))  # (B, V)
        out["state"] = (h, c)
        return out

    def step(
        self, y_prev: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], memory: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """Search protocol: log-probabilities (B, V), new state, α_t (B, L) or None. Deterministic."""
        out = self._step(y_prev, state, memory)
        return F.log_softmax(out["logits"], -1), out["state"], out["alpha"]

    def teacher_forced(
        self, memory: dict[str, torch.Tensor], tok_in: torch.Tensor, expect: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor | None]:
        """Logits (B, T, V) and per-step α (B, T, L), β (B, T), log p(s̃) and entropies (B, T)."""
        state = self.init_state(memory)
        outs = []
        for t in range(tok_in.size(1)):
            o = self._step(tok_in[:, t], state, memory, expect)
            state = o["state"]
            outs.append(o)

        def stack(key: str) -> torch.Tensor | None:
            return torch.stack([o[key] for o in outs], 1) if outs and outs[0][key] is not None else None

        return {k: stack(k) for k in ("logits", "alpha", "beta", "log_p_loc", "entropy")}


class Captioner(nn.Module):
    """Encoder (``encode``: input -> annotations (B, L, D)) + :class:`CaptionDecoder`, with the training loss."""

    kind = "caption"

    def __init__(self, cfg: Any, encoder: nn.Module | None, feat_dim: int, meta: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.pad, self.bos, self.eos = int(meta["pad_id"]), int(meta["bos_id"]), int(meta["eos_id"])
        self.decoder = CaptionDecoder(
            feat_dim,
            int(meta["vocab_size"]),
            attention=self.attention_kind(),
            emb_dim=cfg.emb_dim,
            hidden=cfg.hidden,
            attn_dim=getattr(cfg, "attn_dim", cfg.hidden),
            dropout=cfg.dropout,
            gate=getattr(cfg, "gate", False),
            context_input=getattr(cfg, "context_input", True),
            init=getattr(cfg, "init", "mean"),
        )
        self.baseline = MovingAverageBaseline(getattr(cfg, "baseline_decay", 0.9))
        self.grid: tuple[int, int] | None = getattr(encoder, "grid", None)
        if getattr(cfg, "freeze_encoder", False):
            if not isinstance(encoder, GridCNN):
                raise AttnError("model.freeze_encoder needs a pixel encoder; feature inputs are fixed already")
            encoder.body.requires_grad_(False)  # the position vectors p_i still learn

    def pretrained_encoder(self) -> tuple[str, GridCNN] | None:
        """What ``model.encoder_weights`` names and the pixel encoder it loads into, or None when nothing is
        named; :func:`attn_cli.pretrained.load_pretrained` finds and reads the weights."""
        spec = getattr(self.cfg, "encoder_weights", "")
        if not spec:
            return None
        if not isinstance(self.encoder, GridCNN):
            raise AttnError("model.encoder_weights loads a GridCNN trunk; this dataset gives precomputed features")
        return spec, self.encoder

    def attention_kind(self) -> Attention:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = x.float() if self.encoder is None else self.encoder(x)  # (B, L, D)
        return self.decoder.memory(feats)

    # search protocol (the decoder is the step decoder; memory comes from encode)
    def init_state(self, memory: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder.init_state(memory)

    def step(self, y_prev: torch.Tensor, state: Any, memory: dict[str, torch.Tensor]) -> Any:
        return self.decoder.step(y_prev, state, memory)

    def forward(self, x: torch.Tensor, tok_in: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Teacher-forced pass (expected context for hard attention): logits (B, T, V), alpha (B, T, L)."""
        return self.decoder.teacher_forced(self.encode(x), tok_in)

    def nll(self, memory: dict[str, torch.Tensor], tok_in: torch.Tensor, tok_out: torch.Tensor) -> torch.Tensor:
        """Per-caption summed NLL (B,), teacher-forced, EOS included (for perplexity)."""
        logits = self.decoder.teacher_forced(memory, tok_in)["logits"]  # (B, T, V)
        assert logits is not None  # every step has logits
        nll = F.cross_entropy(logits.transpose(1, 2), tok_out, ignore_index=self.pad, reduction="none")  # (B, T)
        return nll.sum(1)

    def loss(
        self, x: torch.Tensor, tok_in: torch.Tensor, tok_out: torch.Tensor, attn_target: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss and its parts. ``attn_target`` (B, T, L): ground-truth maps β_t for the words that
        name a boxed object (zero rows elsewhere), used when ``cfg.attn_supervision`` > 0.
        """
        memory = self.encode(x)
        keep = tok_out != self.pad  # (B, T)
        b = tok_in.size(0)
        expect = None
        if self.attention_kind() == "hard":
            p = self.cfg.expected_prob if self.training else 1.0
            expect = torch.rand(b, device=tok_in.device) < p  # (B,) per caption, see the module docstring
        out = self.decoder.teacher_forced(memory, tok_in, expect)
        assert out["logits"] is not None  # every step has logits
        nll_tok = F.cross_entropy(out["logits"].transpose(1, 2), tok_out, ignore_index=self.pad, reduction="none")
        nll = nll_tok.sum(1)  # (B,) −log p(y | a), per caption
        loss = nll.mean()
        logs = {"nll_word": nll.detach().sum() / keep.sum()}
        ds_weight = float(getattr(self.cfg, "doubly_stochastic", 0.0))
        if out["alpha"] is not None and ds_weight:
            penalty = doubly_stochastic_penalty(out["alpha"], keep)  # (B,)
            loss = loss + ds_weight * penalty.mean()
            logs["ds_penalty"] = penalty.mean().detach()
        weight = getattr(self.cfg, "attn_supervision", 0.0)
        if weight and attn_target is not None and out["alpha"] is not None:
            # Liu et al. (2017) strong supervision: −Σ_t Σ_i β_ti log α_ti over the supervised words
            ce = -(attn_target * torch.log(out["alpha"].clamp_min(1e-12))).sum(-1)  # (B, T)
            supervised = attn_target.sum(-1) > 0  # (B, T)
            loss = loss + weight * ce.sum(1).mean()
            logs["attn_sup"] = ce.detach().sum() / supervised.sum().clamp_min(1)
        if out["beta"] is not None:
            logs["beta"] = (out["beta"].detach() * keep).sum() / keep.sum()
        if expect is not None and out["log_p_loc"] is not None and out["entropy"] is not None:  # hard, training
            sampled = (keep & ~expect.unsqueeze(1)).to(nll.dtype)  # (B, T) words with a sampled location
            reward = -nll.detach()  # log p(y | s̃, a), per caption (eq. (10)-(12))
            baseline = self.baseline(reward, ~expect)  # (B,) from the sampled captions' rewards only
            rl = reinforce_loss(out["log_p_loc"] * sampled, reward, baseline)
            entropy = (out["entropy"] * sampled).sum(1).mean()
            # eq. (12)'s λ_r and λ_e per word of the batch's padded length T, as arctic-captions takes
            # (b − mean_t cost)/10 and a mean over time: see the module docstring
            steps = tok_out.size(1)
            loss = loss + (self.cfg.reinforce_weight * rl - self.cfg.entropy * entropy) / steps
            logs.update(reinforce=rl.detach(), entropy=entropy.detach(), baseline=baseline.mean())
        return loss, logs


@MODELS.register("show-tell", task="caption")
class ShowTell(Captioner):
    """Vinyals et al. (2015): CNN image vector -> LSTM initial state; no attention."""

    @dataclass(frozen=True)
    class Config:
        channels: tuple[int, ...] = (32, 64, 64)  # GridCNN stages (from scratch); ignored for feature inputs
        position: bool = False  # learned per-location vectors added to the grid (GridCNN docstring)
        encoder_weights: str = ""  # pretrained conv stages (attn_cli.pretrained), e.g. vision/grid-cnn-28
        freeze_encoder: bool = False  # keep them fixed, as Xu et al. keep their VGG
        emb_dim: int = 64
        hidden: int = 128
        dropout: float = 0.0

    def __init__(self, cfg: Config, **meta: Any) -> None:
        encoder, dim = image_encoder(cfg, meta)
        super().__init__(cfg, encoder, dim, meta)

    def attention_kind(self) -> Attention:
        return "none"


@MODELS.register("sat", task="caption")
class ShowAttendTell(Captioner):
    """Xu et al. (2015): soft (§4.2) or hard (§4.1) attention over the L×D annotation grid."""

    @dataclass(frozen=True)
    class Config:
        attention: Literal["soft", "hard"] = "soft"
        channels: tuple[int, ...] = (32, 64, 64)
        position: bool = False  # learned per-location vectors added to the grid (GridCNN docstring)
        encoder_weights: str = ""  # pretrained conv stages (attn_cli.pretrained), e.g. vision/grid-cnn-28
        freeze_encoder: bool = False  # keep them fixed, as Xu et al. keep their VGG
        emb_dim: int = 64
        hidden: int = 128
        attn_dim: int = 64
        dropout: float = 0.0
        gate: bool = True  # β_t (§4.2.1); the paper uses it with soft attention
        # false: ẑ_t is not an LSTM input (a deviation from eq. (1)); the word then sees it only through
        # eq. (7), so the model must look at what it names when it names it (see docs/caption.md)
        context_input: bool = True
        # "zeros": (h_0, c_0) = 0 instead of f_init(ā) (a deviation from §3.1.2); with context_input=false
        # attention at the word's own step is then the decoder's only view of the image
        init: Literal["mean", "zeros"] = "mean"
        # λ of eq. (14); soft, and hard too (the authors' code, arctic-captions, adds it for both kinds)
        doubly_stochastic: float = 1.0
        # λ_a of Liu et al. (2017, "Attention Correctness in Neural Image Captioning"): cross-entropy of α_t
        # against the box map of the object word t names (needs boxes: the digit captions); 0 = Xu et al.
        attn_supervision: float = 0.0
        # λ_r of eq. (12) per word: the REINFORCE term is λ_r/T · (log p(y|s̃,a) − b) ∂log p(s̃|a)/∂W with T the
        # batch's padded caption length; 0.1 is arctic-captions' (b − mean_t cost)/10. Hard only
        reinforce_weight: float = 0.1
        entropy: float = 0.01  # λ_e of eq. (12), likewise per word (λ_e/T · Σ_t H[s̃_t]); hard only
        baseline_decay: float = 0.9  # moving-average baseline b_k = decay·b_{k-1} + (1−decay)·log p(y|s̃,a)
        expected_prob: float = 0.5  # probability of using the expected location instead of a sample (§4.1)

    def __init__(self, cfg: Config, **meta: Any) -> None:
        if cfg.attention == "hard" and not 0.0 <= cfg.expected_prob <= 1.0:
            raise AttnError(f"model.expected_prob must be in [0, 1], got {cfg.expected_prob}")
        if cfg.attn_supervision < 0:
            raise AttnError(f"model.attn_supervision must be >= 0, got {cfg.attn_supervision}")
        if cfg.attn_supervision and not meta.get("has_boxes", False):
            raise AttnError(
                f"model.attn_supervision needs object boxes in the training data; {meta.get('dataset', 'this dataset')} "
                "has none (the MNIST digit captions have them)"
            )
        encoder, dim = image_encoder(cfg, meta)
        super().__init__(cfg, encoder, dim, meta)

    def attention_kind(self) -> Attention:
        kind: Attention = self.cfg.attention
        return kind


def image_encoder(cfg: Any, meta: dict[str, Any]) -> tuple[nn.Module | None, int]:
    """A from-scratch :class:`GridCNN` for pixel inputs; none for precomputed features (B, L, D)."""
    shape = list(meta["input_shape"])
    if meta["input_kind"] == "features":
        return None, int(shape[-1])
    if meta["input_kind"] != "image":
        raise AttnError(
            f"{type(cfg).__qualname__.split('.')[0]} captions images; this dataset holds {meta['input_kind']}"
        )
    enc = GridCNN(shape, cfg.channels, position=cfg.position)
    return enc, enc.out_dim
