"""Video description with temporal attention (Yao et al., "Describing Videos by Exploiting Temporal
Structure", ICCV 2015).

§2.1: each frame i becomes a vector v_i — from a 2-D CNN per frame (their GoogLeNet), from a 3-D
CNN over a spatio-temporal neighbourhood ("local" structure), or both concatenated
(:class:`attn_cli.nn.image_encoders.FrameEncoder`; ours are small and learned from pixels).
§2.2, the "global" temporal attention: φ_t(V) = Σ_i α_i^(t) v_i with
e_i^(t) = w^T tanh(W_a h_{t-1} + U_a v_i + b_a) and α^(t) = softmax(e^(t)) over the frames — the
additive score again (:mod:`attn_cli.attention.scores`), so the decoder is the one of
:mod:`attn_cli.models.sat` with frames in place of grid locations.
§2.3: the LSTM reads [E y_{t-1}; φ_t(V)], (h_0, c_0) come from the mean frame vector, the output
layer is a deep output of (E y_{t-1}, h_t, φ_t).

Recipes, in the rows of Yao et al. Table 1: ``video-basic`` (Enc-Dec basic: φ_t = the mean of the
frame vectors at every step, no attention), ``video-local`` (+ 3-D CNN), ``video-temporal`` (+ global
temporal attention), ``video-local-global`` (both).

Deviations: ``frame_grid: k`` keeps a k×k layout of the 2-D CNN map in each frame vector instead
of its mean (Yao et al.'s GoogLeNet vector is pooled): on the moving digits the captions are about
motion, and a pooled frame vector says which digits are there but not where, so no attention over
such frames could tell a motion apart (the moving-MNIST recipes use k = 3; see docs/caption.md).
No gating scalar and no doubly stochastic penalty by default (both optional, as in
the captioning model); Yao et al. sample 26 frames per video and use pretrained CNNs — the
moving-digits data has 12 frames and our CNNs learn from scratch; the 3-D CNN is not pretrained
on action recognition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from attn_cli.errors import AttnError
from attn_cli.nn.captioner import Attention, Captioner
from attn_cli.nn.image_encoders import FrameEncoder
from attn_cli.registry import MODELS


@MODELS.register("video", task="caption")
class VideoCaptioner(Captioner):
    """Frames (B, T, C, H, W) or frame features (B, T, D) -> caption, with or without temporal attention."""

    @dataclass(frozen=True)
    class Config:
        attention: Literal["mean", "soft"] = "soft"  # mean: Enc-Dec basic; soft: temporal attention (§2.2)
        frames: Literal["cnn2d", "cnn3d", "both"] = "cnn2d"  # local (3-D) and/or per-frame (2-D) features
        channels: tuple[int, ...] = (16, 32, 32)  # 2-D CNN stages
        channels3d: tuple[int, ...] = (16, 32)  # 3-D CNN stages
        patch: int = 1  # >1: a patchify stem (conv p×p, stride p) first, for CPU budgets
        frame_grid: int = 0  # 0: 2-D frame vector = mean over the map (Yao); k: its k×k layout, flattened
        emb_dim: int = 64
        hidden: int = 128
        attn_dim: int = 64
        dropout: float = 0.0
        gate: bool = False
        doubly_stochastic: float = 0.0

    def __init__(self, cfg: Config, **meta: Any) -> None:
        shape = list(meta["input_shape"])
        encoder: nn.Module | None
        if meta["input_kind"] == "video_features":
            encoder, dim = None, int(shape[-1])
        elif meta["input_kind"] == "video":
            encoder = FrameEncoder(shape, cfg.frames, cfg.channels, cfg.channels3d, cfg.patch, cfg.frame_grid)
            dim = encoder.out_dim
        else:
            raise AttnError(f"the video model captions videos; this dataset holds {meta['input_kind']}")
        super().__init__(cfg, encoder, dim, meta)
        self.grid = None

    def attention_kind(self) -> Attention:
        kind: Attention = self.cfg.attention
        return kind
