"""The captioning decoder and training loss of Show, Attend and Tell (Xu et al., ICML 2015 §3.1.2, §4),
shared by Show and Tell, Show-Attend-Tell (``models/sat.py``) and the video captioners of Yao et al.
(2015, ``models/video.py``): :class:`Captioner` is the base each of them subclasses.

A base, not one paper's model: it lives here so that those files subclass it on equal terms. The
equations it implements (eq. (1)-(5), (7)-(12), (14)), the hard-attention REINFORCE scales and the
deliberate deviations are set out in the docstring of :mod:`attn_cli.models.sat`.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.core import masked_softmax
from attn_cli.attention.reinforce import MovingAverageBaseline, categorical_sample, reinforce_loss
from attn_cli.attention.scores import AdditiveScore
from attn_cli.errors import AttnError
from attn_cli.nn.image_encoders import GridCNN

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
