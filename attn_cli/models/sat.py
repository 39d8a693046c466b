"""Show and Tell (Vinyals et al. 2015) and Show, Attend and Tell (Xu et al., ICML 2015), soft and hard.

The decoder of Xu et al. §3.1.2, with the annotation vectors a_i (B, L, D) of a CNN (the code:
:class:`attn_cli.nn.captioner.CaptionDecoder` and the loss of :class:`attn_cli.nn.captioner.Captioner`,
shared with the video captioners):

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

from torch import nn

from attn_cli.errors import AttnError
from attn_cli.nn.captioner import Attention, Captioner
from attn_cli.nn.image_encoders import GridCNN
from attn_cli.registry import MODELS


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
