"""Deep Recurrent Attention Model (Ba, Mnih & Kavukcuoglu, "Multiple Object Recognition with
Visual Attention", ICLR 2015), for sequences of digits.

§3: glimpse network g_n = Rect(G_image(ρ(x, l_n))) ⊙ Rect(Linear(l_n)) (the product of "what" and
"where"), G_image convolutional layers followed by a fully connected layer (``glimpse_net: conv``;
``linear`` is one linear layer on the raw patch, the simpler variant this file had before);
recurrent network of two layers: r^(1) (classification) and r^(2) (emission, initialised by the
context network from a coarse view of the whole image); the emission network maps r^(2) to the
next location; after ``glimpses`` glimpses per object the classification network emits one digit
from r^(1). Training (§4): the log-likelihood of the digit sequence plus REINFORCE for the
locations with the reward "every digit so far is correct" (one reward per sequence here) and a
learned baseline.

Gradients: the REINFORCE term trains the location pathway — emission network, r^(2) and the
context network — and stops at r^(2)'s input: r^(2) reads r^(1)'s output with the gradient
stopped, so the glimpse network, r^(1) and the classifier learn from the log-likelihood alone (as
RAM here; the paper's joint objective also lets the REINFORCE term reach r^(1)). The baseline reads
r^(2) detached. (The emission network used to read r^(2) detached, which left r^(2) and the context
network with no gradient at all: a fixed random location pathway.)

Deviations: LSTM cells for r^(1), r^(2); the context network is conv5(16)-pool-conv5(16)-pool-FC
on the image average-pooled to at most 32×32; G_image's filters (``glimpse_channels``, 5×5 then
3×3, "same" padding, no pooling on a glimpse of only g×g pixels, the scales stacked as channels)
are our choice, the paper's sizes were not checked; evaluation follows the policy's mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.reinforce import emit_location, reinforce_loss
from attn_cli.attention.spatial import retina
from attn_cli.nn.cnn import SmallCNN
from attn_cli.registry import MODELS


class GlimpseCNN(nn.Module):
    """G_image (Ba et al. §3): convolutional layers, ReLU, then a fully connected layer."""

    def __init__(self, in_channels: int, size: int, channels: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, width in enumerate(channels):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c, width, k, padding=k // 2), nn.ReLU()]
            c = width
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(c * size * size, out_dim)

    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        """patch (B, S, C, g, g), the retina's scales -> (B, out_dim)."""
        out: torch.Tensor = self.fc(self.conv(patch.flatten(1, 2)).flatten(1))  # conv over (B, S·C, g, g)
        return out


@MODELS.register("dram", task="vision")
class DRAM(nn.Module):
    kind = "sequence"
    picture = "glimpses"  # what `attn visualize` draws: the glimpse path (as RAM's)

    @dataclass(frozen=True)
    class Config:
        glimpses: int = 3  # per digit
        glimpse_size: int = 12
        scales: int = 2
        hidden: int = 256
        std: float = 0.17
        context_size: int = 32
        glimpse_net: Literal["conv", "linear"] = "conv"  # G_image: conv layers + FC (Ba et al.), or one linear layer
        glimpse_channels: tuple[int, ...] = (64, 64, 128)  # conv: filters per layer (5×5, then 3×3)

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, seq_len: int = 1, **meta: Any) -> None:
        super().__init__()
        self.cfg, self.seq_len = cfg, seq_len
        c, h, _ = image_shape
        self.pool = max(1, h // cfg.context_size)
        side = h // self.pool
        self.context = SmallCNN((c, side, side), 2 * cfg.hidden, channels=(16, 16), kernel=5, fc=cfg.hidden)
        if cfg.glimpse_net == "conv":
            self.what: nn.Module = GlimpseCNN(cfg.scales * c, cfg.glimpse_size, cfg.glimpse_channels, cfg.hidden)
        else:
            self.what = nn.Sequential(nn.Flatten(), nn.Linear(cfg.scales * c * cfg.glimpse_size**2, cfg.hidden))
        self.where = nn.Linear(2, cfg.hidden)
        self.r1 = nn.LSTMCell(cfg.hidden, cfg.hidden)
        self.r2 = nn.LSTMCell(cfg.hidden, cfg.hidden)
        self.emission = nn.Linear(cfg.hidden, 2)
        self.baseliner = nn.Linear(cfg.hidden, 1)
        self.classify = nn.Linear(cfg.hidden, classes)

    def forward(self, x: torch.Tensor, sample_locations: bool) -> dict[str, torch.Tensor]:
        """logits (B, S, K), locations (B, S·G, 2), log π and baselines (B, S·G)."""
        cfg, b = self.cfg, x.size(0)
        coarse = F.avg_pool2d(x, self.pool) if self.pool > 1 else x
        h2, c2 = self.context(coarse).chunk(2, -1)  # (B, hidden) each: r^(2) initial state
        h1 = c1 = x.new_zeros(b, cfg.hidden)
        logits, locs, logps, bases = [], [], [], []
        for _ in range(self.seq_len):
            for _ in range(cfg.glimpses):
                mean = torch.tanh(self.emission(h2))  # (B, 2): REINFORCE trains r^(2) and the context net
                loc, logp, base = emit_location(mean, cfg.std, sample_locations, self.baseliner, h2)
                if logp is not None and base is not None:
                    logps.append(logp)
                    bases.append(base)
                locs.append(loc)
                patch, _ = retina(x, loc, cfg.glimpse_size, cfg.scales)  # (B, S, C, g, g)
                g = F.relu(self.what(patch)) * F.relu(self.where(loc))  # (B, hidden)
                h1, c1 = self.r1(g, (h1, c1))
                h2, c2 = self.r2(h1.detach(), (h2, c2))  # REINFORCE stops here
            logits.append(self.classify(h1))
        out = {"logits": torch.stack(logits, 1), "locations": torch.stack(locs, 1)}
        if logps:
            out["log_pi"], out["baseline"] = torch.stack(logps, 1), torch.stack(bases, 1)
        return out

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        out = self(x, sample_locations=True)
        ce = F.cross_entropy(out["logits"].flatten(0, 1), y.flatten())
        reward = (out["logits"].argmax(-1) == y).all(1).float()  # (B,)
        rl = reinforce_loss(out["log_pi"], reward, out["baseline"])
        mse = F.mse_loss(out["baseline"], reward[:, None].expand_as(out["baseline"]))
        return ce * self.seq_len + rl + mse, {"ce": float(ce.detach()), "reward": float(reward.mean())}

    def predict(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self(x, sample_locations=False)["logits"]
        return {"pred": logits.argmax(-1), "loss": F.cross_entropy(logits.transpose(1, 2), y, reduction="none").sum(1)}
