"""Residual attention's soft masks (Wang et al., CVPR 2017, "Residual Attention Network"), each once.

An attention module multiplies its trunk output T(x) by a mask M(x) in [0, 1] (or, for the channel
mask, of unit length over channels) computed from the mask branch's last activations x:

* mixed f1 (§3.3, eq. (5)): ``f1(x_{i,c}) = 1 / (1 + exp(-x_{i,c}))``, a sigmoid per channel c and
  spatial position i — the paper's default and its best (Table 1: 5.52% CIFAR-10 error).
* channel f2 (eq. (6)): ``f2(x_{i,c}) = x_{i,c} / ||x_i||``, L2 normalisation over the channels at
  each position i: it removes spatial information and keeps the channel profile (6.24%).
* spatial f3 (eq. (7)): ``f3(x_{i,c}) = 1 / (1 + exp(-(x_{i,c} - mean_c) / std_c))``, each channel
  standardised over the spatial positions, then a sigmoid: it keeps only spatial information (6.33%).

How the mask is combined with the trunk (eq. (3), §3.1):

* attention residual learning (ARL): ``H_{i,c}(x) = (1 + M_{i,c}(x)) · T_{i,c}(x)`` — the mask can
  only enhance features, never remove them, so stacking modules keeps the identity path;
* naive attention learning (NAL): ``H_{i,c}(x) = M_{i,c}(x) · T_{i,c}(x)`` — repeated dot products
  with masks in [0, 1] shrink features module after module (the paper's Table 3 shows its error
  growing with depth).

Shapes: ``x`` and ``trunk`` are (B, C, H, W); every function returns a tensor of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

MASK_EPS = 1e-5  # keeps f2's division and f3's standard deviation away from zero on constant inputs


def mixed_mask(x: torch.Tensor) -> torch.Tensor:
    """f1, eq. (5): a sigmoid at every channel and position. (B, C, H, W) -> (B, C, H, W)."""
    return torch.sigmoid(x)


def channel_mask(x: torch.Tensor) -> torch.Tensor:
    """f2, eq. (6): L2 normalisation over the channels at each position. (B, C, H, W) -> (B, C, H, W)."""
    norm = x.pow(2).sum(dim=1, keepdim=True).add(MASK_EPS).sqrt()  # (B, 1, H, W)
    return x / norm


def spatial_mask(x: torch.Tensor) -> torch.Tensor:
    """f3, eq. (7): each channel standardised over space, then a sigmoid. (B, C, H, W) -> (B, C, H, W)."""
    mean = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    std = x.var(dim=(2, 3), keepdim=True, unbiased=False).add(MASK_EPS).sqrt()  # (B, C, 1, 1)
    return torch.sigmoid((x - mean) / std)


# the recipe's ``model.mask`` picks one; "none" (the plain ResNet of equal depth) has no mask branch at all
MASKS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mixed": mixed_mask,
    "channel": channel_mask,
    "spatial": spatial_mask,
}


def attention_residual(mask: torch.Tensor, trunk: torch.Tensor) -> torch.Tensor:
    """ARL, eq. (3): ``H = (1 + M) · T``. ``mask``, ``trunk`` (B, C, H, W) -> (B, C, H, W)."""
    return (1.0 + mask) * trunk


def naive_attention(mask: torch.Tensor, trunk: torch.Tensor) -> torch.Tensor:
    """NAL (§3.1): ``H = M · T``, the dot product that degrades stacked modules. Shapes as ARL's."""
    return mask * trunk


COMBINE: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "residual": attention_residual,
    "naive": naive_attention,
}


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The mask branch's top-down step (§3.2): bilinear interpolation of ``x`` (B, C, h, w) to the spatial
    size of ``like`` (B, C', H, W); odd sizes (7 -> 3 -> 7) come back exactly."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)
