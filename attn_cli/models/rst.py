"""Recurrent Spatial Transformer Networks (Sønderby, Sønderby, Maaløe & Winther, arXiv:1509.05329),
and the paper's CNN baseline with one softmax per digit.

RNN-SPN (§2): a convolutional encoding c = f_loc(x) of the whole image is the input of a GRU at
every step, h_t = GRU(c, h_{t-1}) (the same c each step); a linear layer maps h_t to the six affine
parameters A_t = W h_t + b (b the identity, W = 0 at the start); the spatial transformer of
Jaderberg et al. samples the glimpse V_t = sample(x, T_{A_t}(G)) on an output grid G smaller than
the input by the ``downsample`` factor d (STN eq. (1) and (5); :mod:`attn_cli.attention.spatial`,
the one grid generator and sampler), and a CNN classifies V_t as digit t. One step per digit; the
cost is the cross-entropy averaged over the digits (:func:`sequence_loss`).

Sizes from the authors' released code (github.com/skaae/recurrent-spatial-transformer-code,
``rnn_spn.py``; the paper gives fewer): f_loc = maxpool2-conv3(20)-maxpool2-conv3(20)-maxpool2-conv3(20)
(valid convolutions, ReLU), GRU of 256 units, d = 3 (100×100 → 33×33 glimpses), the classifier
conv3(32)-maxpool2-conv3(32)-maxpool2-conv3(32)-FC400-softmax. ``cell: lstm`` is offered beside
the authors' GRU. No dropout (the authors' default is 0 too). ``loc_scale`` (1 in the paper; 0.1 in
our recipes) multiplies W h_t: Adam moves each of W's weights by about the learning rate per update,
so with 256 hidden units in step the zero-initialised head's output moved by up to 256 × lr per
update; in our first CPU run (Adam, lr 1e-3) A_t reached translations of -4 (two image widths) and
the glimpses left the image, where the zero-padded sampler returns no gradient to bring them back
(docs/vision.md). The scale slows the transform alone, like a lower learning rate for that layer.

The CNN baseline (``seq-cnn``, the paper's "CNN"): the same convolution stack as the RNN-SPN's
classifier on the whole image (``pool_first``: max-pooled 2× first, 50×50 — still more pixels than the
RNN-SPN's 33×33 glimpses), FC400, and one softmax head per digit position (the authors'
``ffn_spn.py`` has those heads behind its transformer; the baseline's sizes are ours: the
authors' 96 channels at 100×100 do not fit a CPU budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.spatial import affine_grid, sample
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # A = [[1, 0, 0], [0, 1, 0]]: the glimpse is the whole image


def conv_stack(in_channels: int, channels: tuple[int, ...], pool_first: bool) -> nn.Sequential:
    """Valid 3×3 convolutions with ReLU and 2×2 max-pooling between them (and before the first when
    ``pool_first``: the RNN-SPN's f_loc), as in the authors' code."""
    layers: list[nn.Module] = []
    c = in_channels
    for i, width in enumerate(channels):
        if pool_first or i > 0:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(c, width, 3), nn.ReLU()]
        c = width
    return nn.Sequential(*layers, nn.Flatten())


def flat_size(net: nn.Module, shape: tuple[int, int, int], key: str) -> int:
    """The features ``net`` makes of one (C, H, W) image; a stack too deep for the image is the recipe's error."""
    try:
        with torch.no_grad():
            return int(net(torch.zeros(1, *shape)).numel())
    except RuntimeError as err:
        raise AttnError(
            f"model.{key}: {sum(isinstance(m, nn.Conv2d) for m in net.modules())} conv3/pool layers leave no pixels of a {shape[1]}×{shape[2]} input; "
            f"give model.{key} fewer entries (or a smaller downsample)"
        ) from err


def sequence_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The cross-entropy of every digit, averaged over digits and examples: logits (B, T, K), y (B, T)."""
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


class SequenceClassifier(nn.Module):
    """What the vision task calls on a model that reads T digits: ``kind = "sequence"``, ``logits``."""

    kind = "sequence"

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.logits(x)  # (B, T, K)
        loss = sequence_loss(logits, y)
        digit_acc = (logits.argmax(-1) == y).float().mean()
        return loss, {"ce": float(loss.detach()), "digit_acc": float(digit_acc)}

    def predict(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.logits(x)  # (B, T, K)
        return {"pred": logits.argmax(-1), "loss": F.cross_entropy(logits.transpose(1, 2), y, reduction="none").sum(1)}


@MODELS.register("rst", task="vision")
class RecurrentST(SequenceClassifier):
    picture = "affine-steps"  # what `attn visualize` draws: each step's glimpse box over the input

    @dataclass(frozen=True)
    class Config:
        loc_channels: tuple[int, ...] = (20, 20, 20)  # f_loc, a maxpool before each valid conv3
        hidden: int = 256
        cell: Literal["gru", "lstm"] = "gru"
        downsample: float = 3.0  # d: the glimpse is (H/d)×(W/d)
        channels: tuple[int, ...] = (32, 32, 32)  # the glimpse classifier's valid conv3 layers
        fc: int = 400
        # A_t = b + loc_scale · W h_t: below 1, Adam's steps on W move A_t loc_scale times slower (see the docstring)
        loc_scale: float = 1.0

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, seq_len: int = 1, **meta: Any) -> None:
        super().__init__()
        self.cfg, self.seq_len = cfg, seq_len
        c, h, w = image_shape
        self.out_size = (max(1, int(h / cfg.downsample)), max(1, int(w / cfg.downsample)))
        self.encoder = conv_stack(c, tuple(cfg.loc_channels), pool_first=True)
        feats = flat_size(self.encoder, (c, h, w), "loc_channels")
        self.rnn: nn.Module = (nn.GRUCell if cfg.cell == "gru" else nn.LSTMCell)(feats, cfg.hidden)
        self.affine = nn.Linear(cfg.hidden, 6)
        nn.init.zeros_(self.affine.weight)
        with torch.no_grad():
            self.affine.bias.copy_(torch.tensor(IDENTITY))
        conv = conv_stack(c, tuple(cfg.channels), pool_first=False)
        self.classify = nn.Sequential(
            conv,
            nn.Linear(flat_size(conv, (c, *self.out_size), "channels"), cfg.fc),
            nn.ReLU(),
            nn.Linear(cfg.fc, classes),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """logits (B, T, K), theta (B, T, 2, 3) and glimpses (B, T, C, h, w) for the T = seq_len digits."""
        cfg, b = self.cfg, x.size(0)
        code: torch.Tensor = self.encoder(x)  # (B, F): the same input at every step
        h = x.new_zeros(b, cfg.hidden)
        state: Any = h if cfg.cell == "gru" else (h, h)
        thetas, glimpses = [], []
        for _ in range(self.seq_len):
            state = self.rnn(code, state)
            hidden = state if cfg.cell == "gru" else state[0]  # (B, hidden)
            theta = (self.affine.bias + cfg.loc_scale * F.linear(hidden, self.affine.weight)).view(b, 2, 3)  # A_t
            thetas.append(theta)
            glimpses.append(sample(x, affine_grid(theta, self.out_size)))  # (B, C, h, w)
        v = torch.stack(glimpses, 1)  # (B, T, C, h, w)
        logits: torch.Tensor = self.classify(v.flatten(0, 1)).view(b, self.seq_len, -1)  # (B, T, K)
        return {"logits": logits, "theta": torch.stack(thetas, 1), "glimpses": v}

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self(x)["logits"]
        return out


@MODELS.register("seq-cnn", task="vision")
class SequenceCNN(SequenceClassifier):
    @dataclass(frozen=True)
    class Config:
        channels: tuple[int, ...] = (32, 32, 32)  # valid conv3 layers, maxpool2 between them
        fc: int = 400
        pool_first: bool = False  # maxpool2 the image before the first convolution (a CPU budget)

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, seq_len: int = 1, **meta: Any) -> None:
        super().__init__()
        self.cfg, self.seq_len, self.classes = cfg, seq_len, classes
        c, h, w = image_shape
        conv = conv_stack(c, tuple(cfg.channels), pool_first=cfg.pool_first)
        self.body = nn.Sequential(conv, nn.Linear(flat_size(conv, (c, h, w), "channels"), cfg.fc), nn.ReLU())
        self.heads = nn.Linear(cfg.fc, seq_len * classes)  # one softmax per digit position

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.heads(self.body(x)).view(x.size(0), self.seq_len, self.classes)  # (B, T, K)
        return out
