"""Residual Attention Network (Wang, Jiang, Qian, Yang, Li, Zhang, Wang & Tang, CVPR 2017).

A stack of attention modules, each a trunk branch T(x) (t pre-activation bottleneck residual units,
He et al. 2016) beside a soft mask branch M(x) of the same output size: bottom-up max-pooling with
residual units and top-down bilinear upsampling, skip connections between the two at every
resolution (§3.2, Fig. 3), then two 1×1 convolutions and the mask activation f1/f2/f3 of
:mod:`attn_cli.attention.soft_mask`. The module's output is H = (1 + M)·T (attention residual
learning, eq. (3)) or M·T (naive attention learning), each module wrapped in p units before and after.

The CIFAR-10 network (§4.1, the layout of the authors' Attention-56/92): a 3×3 stem conv, then three
stages at 32×32, 16×16 and 8×8, each a residual unit (stride 2 from the second on) followed by
``modules[s]`` attention modules, then three residual units, global average pooling and the classifier.
Attention-56 has one module per stage (``modules: [1, 1, 1]``: 1 + 3·12 + 6·3 + 1 = 56 weighted layers
on the trunk), Attention-92 (1, 2, 3). ``mask: none`` drops every mask branch and keeps the trunk: the
plain pre-activation ResNet of equal depth, the baseline of the comparison.

Deviations, all stated in docs/vision.md: the stage widths are a recipe choice (the paper's CIFAR
widths are 256/512/1024 with bottlenecks of a quarter; the CPU recipes use 16/32/64); the mask
branch's depth per stage (``mask_pools``) is 2, 1, 1 max-poolings on 32×32 inputs, from the authors'
CIFAR code rather than the paper's ImageNet 3, 2, 1; no data augmentation is done here (the paper pads
and crops and flips), so errors are higher than the paper's at any budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from attn_cli.attention.soft_mask import COMBINE, MASKS, upsample_to
from attn_cli.errors import AttnError
from attn_cli.nn.classifier import Classifier
from attn_cli.registry import MODELS


class PreActBottleneck(nn.Module):
    """He et al. (2016, "Identity mappings") unit: BN-ReLU-1×1, BN-ReLU-3×3 (stride), BN-ReLU-1×1, plus the
    shortcut (a strided 1×1 conv when the shape changes). (B, cin, H, W) -> (B, cout, H/stride, W/stride)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        mid = max(cout // 4, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(),
            nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, cout, 1, bias=False),
        )
        self.skip: nn.Module = (
            nn.Identity() if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x) + self.skip(x)
        return out


def units(c: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[PreActBottleneck(c, c) for _ in range(n)])


class SoftMaskBranch(nn.Module):
    """§3.2: ``pools`` rounds of max-pool + r units (bottom-up), a skip unit kept at each resolution but the
    lowest, then per round bilinear upsampling + the skip + r units (top-down), and BN-ReLU-1×1 twice. Returns
    the pre-activation mask logits (B, C, H, W); the attention module applies f1/f2/f3."""

    def __init__(self, c: int, pools: int, r: int) -> None:
        super().__init__()
        self.down = nn.ModuleList([nn.Sequential(nn.MaxPool2d(3, 2, 1), units(c, r)) for _ in range(pools)])
        self.skips = nn.ModuleList([PreActBottleneck(c, c) for _ in range(pools - 1)])
        self.up = nn.ModuleList([units(c, r) for _ in range(pools)])
        self.out = nn.Sequential(
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, c, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes, skips = [x], []
        h = x
        for i, down in enumerate(self.down):
            h = down(h)  # (B, C, H/2^(i+1), W/2^(i+1))
            if i < len(self.skips):
                skips.append(self.skips[i](h))
            sizes.append(h)
        for i, up in enumerate(self.up):
            level = len(self.up) - 1 - i  # the resolution this round returns to
            h = upsample_to(h, sizes[level])
            if level > 0:
                h = h + skips[level - 1]  # the skip connection of Fig. 3 at that resolution
            h = up(h)
        logits: torch.Tensor = self.out(h)  # (B, C, H, W)
        return logits


class AttentionModule(nn.Module):
    """p units, then trunk T (t units) beside mask M (``SoftMaskBranch``) combined by ARL or NAL, then p units.
    ``mask=None`` keeps the trunk alone (the ResNet baseline). Returns the output and the mask (or None)."""

    def __init__(self, c: int, mask: str | None, combine: str, pools: int, p: int = 1, t: int = 2, r: int = 1) -> None:
        super().__init__()
        self.pre, self.trunk, self.post = units(c, p), units(c, t), units(c, p)
        self.mask_branch = SoftMaskBranch(c, pools, r) if mask is not None else None
        self.activation = MASKS[mask] if mask is not None else None
        self.combine = COMBINE[combine]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.pre(x)
        trunk: torch.Tensor = self.trunk(x)  # (B, C, H, W)
        if self.mask_branch is None or self.activation is None:
            return self.post(trunk), None
        mask = self.activation(self.mask_branch(x))  # (B, C, H, W)
        out: torch.Tensor = self.post(self.combine(mask, trunk))
        return out, mask


@MODELS.register("resattn", task="vision")
class ResidualAttentionNet(Classifier):
    picture = "masks"

    @dataclass(frozen=True)
    class Config:
        mask: Literal["mixed", "channel", "spatial", "none"] = "mixed"
        learning: Literal["residual", "naive"] = "residual"  # ARL (1 + M)·T, or NAL M·T
        modules: tuple[int, ...] = (1, 1, 1)  # attention modules per stage: Attention-56; (1, 2, 3): Attention-92
        widths: tuple[int, ...] = (256, 512, 1024)  # stage output channels (bottlenecks a quarter)
        stem: int = 32
        mask_pools: tuple[int, ...] = (2, 1, 1)  # max-poolings in each stage's mask branch (CIFAR 32×32)
        final_units: int = 3  # residual units after the last stage

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, **meta: Any) -> None:
        super().__init__()
        if not len(cfg.modules) == len(cfg.widths) == len(cfg.mask_pools):
            raise AttnError(
                "model.modules, model.widths and model.mask_pools need one entry per stage; give lists of equal length"
            )
        self.cfg = cfg
        mask = None if cfg.mask == "none" else cfg.mask
        self.stem = nn.Conv2d(image_shape[0], cfg.stem, 3, 1, 1, bias=False)
        self.entries = nn.ModuleList()
        self.stages = nn.ModuleList()
        c = cfg.stem
        for s, (n, width, pools) in enumerate(zip(cfg.modules, cfg.widths, cfg.mask_pools)):
            self.entries.append(PreActBottleneck(c, width, 1 if s == 0 else 2))
            self.stages.append(nn.ModuleList([AttentionModule(width, mask, cfg.learning, pools) for _ in range(n)]))
            c = width
        self.head = nn.Sequential(
            units(c, cfg.final_units), nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.out = nn.Linear(c, classes)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Pooled features (B, C) and every attention module's mask (B, C_s, H_s, W_s), in order."""
        h: torch.Tensor = self.stem(x)  # (B, stem, H, W)
        masks: list[torch.Tensor] = []
        for entry, stage in zip(self.entries, self.stages):
            h = entry(h)
            for module in stage.children():
                h, mask = module(h)
                if mask is not None:
                    masks.append(mask)
        pooled: torch.Tensor = self.head(h)  # (B, C)
        return pooled, masks

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.out(self.features(x)[0])  # (B, K)
        return out

    def masks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every module's soft mask for ``x`` (B, C, H, W): what ``attn visualize resattn`` draws."""
        return self.features(x)[1]
