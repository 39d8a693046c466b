"""Image and video encoders for captioning: annotation vectors a = {a_1..a_L}, a_i ∈ R^D (Xu et al. §3.1.1).

* :class:`GridCNN` — a small CNN trained from scratch (conv3×3-ReLU-maxpool per stage) whose last
  feature map (D, h, w) is flattened to L = h·w annotation vectors, as Xu et al. take the
  14×14×512 conv5_4 map of VGG (L = 196, D = 512). For the digit captions: 60×60 -> 7×7 × 64.
* :class:`FrameEncoder` — one vector per video frame: :class:`GridCNN` averaged over the grid
  (Yao et al. 2015 §2.1 use GoogLeNet per frame) or pooled to a coarse k×k layout and flattened
  (``grid=k``: the vector then also says *where* things are in the frame), a 3-D convolution over (time, height, width)
  for local motion features (Yao et al. §2.1, "exploiting local structure"; theirs is a
  pretrained 3-D CNN on HOG/HOF/MBH volumes, ours learns from pixels), or both concatenated.

These are building blocks: they take weights already loaded and never search the file system or
download. Pretrained trunks and the torchvision feature extractor for real photos are
:mod:`attn_cli.pretrained` (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.errors import AttnError


class GridCNN(nn.Module):
    """(B, C, H, W) -> annotation vectors (B, L, D) with L = h·w; ``grid`` is (h, w).

    ``position=True`` adds a learned vector p_i to each grid location's annotation, a_i + p_i. A
    small convolutional stack is (nearly) translation-equivariant, so without it a location's vector
    says what is there but hardly where; with it, attending to a location also reads its position,
    while the mean annotation ā (Show and Tell's image vector, SAT's initial state) only gains a
    constant. Not in Xu et al. (whose VGG grid is 14×14 on photos with no position words); the digit
    captions name positions, so their recipes switch it on for every model alike.
    """

    def __init__(
        self, in_shape: Sequence[int], channels: Sequence[int] = (32, 64, 64), patch: int = 1, position: bool = False
    ) -> None:
        super().__init__()
        self.channels = tuple(channels)
        layers: list[nn.Module] = []
        c = in_shape[0]
        if patch > 1:  # a patchify stem (conv p×p, stride p): p² times fewer positions for the stages
            layers += [nn.Conv2d(c, channels[0], patch, stride=patch), nn.ReLU()]
            c, channels = channels[0], channels[1:]
        for width in channels:
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = width
        self.body = nn.Sequential(*layers)
        self.out_dim = c
        with torch.no_grad():
            fmap = self.body(torch.zeros(1, *in_shape))
        self.grid = (int(fmap.size(2)), int(fmap.size(3)))
        self.position = nn.Parameter(0.1 * torch.randn(self.grid[0] * self.grid[1], c)) if position else None

    def load_body(self, body: dict[str, torch.Tensor], source: str) -> None:
        """Load the conv stages (``body``, not the position vectors) from weights already read from ``source``.

        Finding and reading the checkpoint is :func:`attn_cli.pretrained.load_pretrained`'s; a building
        block only checks that the weights fit its stages.
        """
        try:
            self.body.load_state_dict(body)
        except RuntimeError as err:
            raise AttnError(
                f"model.encoder_weights: the trunk in {source} does not fit model.channels {self.channels}: "
                + str(err).splitlines()[-1].strip()
            ) from err

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.body(x)  # (B, D, h, w)
        feats = fmap.flatten(2).transpose(1, 2)  # (B, L, D), row-major over the grid
        return feats + self.position if self.position is not None else feats


class Conv3dEncoder(nn.Module):
    """(B, T, C, H, W) -> (B, T, D): 3×3×3 convolutions (time padded, never pooled), spatial max-pooling."""

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int] = (16, 32), patch: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_shape[1]
        if patch > 1:  # spatial patchify stem, one frame deep
            layers += [nn.Conv3d(c, channels[0], (1, patch, patch), stride=(1, patch, patch)), nn.ReLU()]
            c, channels = channels[0], channels[1:]
        for width in channels:
            layers += [nn.Conv3d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool3d((1, 2, 2))]
            c = width
        self.body = nn.Sequential(*layers)
        self.out_dim = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.body(x.transpose(1, 2))  # (B, D, T, h, w)
        return fmap.mean((3, 4)).transpose(1, 2)  # (B, T, D)


class FrameEncoder(nn.Module):
    """Per-frame vectors (B, T, D) from frames (B, T, C, H, W): ``cnn2d``, ``cnn3d`` or ``both`` (concatenated).

    ``grid=0`` averages the 2-D CNN's map over its locations, as a pooled GoogLeNet vector does: it says
    what is in the frame, hardly where. ``grid=k`` average-pools it to k×k instead and flattens that
    (D2 = k·k·channels): a frame vector that keeps the coarse layout, so that a digit's motion shows as
    a change between the vectors of two frames.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        kind: str,
        channels: Sequence[int],
        channels3d: Sequence[int],
        patch: int = 1,
        grid: int = 0,
    ) -> None:
        super().__init__()
        frame_shape = list(in_shape[1:])
        self.cnn2d = GridCNN(frame_shape, channels, patch) if kind in ("cnn2d", "both") else None
        self.cnn3d = Conv3dEncoder(in_shape, channels3d, patch) if kind in ("cnn3d", "both") else None
        if self.cnn2d is not None and grid > min(self.cnn2d.grid):
            raise AttnError(
                f"frame_grid {grid} is finer than the 2-D CNN's {self.cnn2d.grid[0]}×{self.cnn2d.grid[1]} map; "
                f"use at most {min(self.cnn2d.grid)} (0: average over the map)"
            )
        self.grid = grid
        dim2 = (self.cnn2d.out_dim * max(1, grid) ** 2) if self.cnn2d else 0
        self.out_dim = dim2 + (self.cnn3d.out_dim if self.cnn3d else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        parts = []
        if self.cnn2d is not None:
            ann = self.cnn2d(x.flatten(0, 1))  # (B·T, L, D2)
            if self.grid:
                fmap = ann.transpose(1, 2).unflatten(2, self.cnn2d.grid)  # (B·T, D2, h, w)
                vec = F.adaptive_avg_pool2d(fmap, self.grid).flatten(1)  # (B·T, D2·k·k)
            else:
                vec = ann.mean(1)  # (B·T, D2)
            parts.append(vec.view(b, t, -1))  # (B, T, ·)
        if self.cnn3d is not None:
            parts.append(self.cnn3d(x))  # (B, T, D3)
        return torch.cat(parts, -1)  # (B, T, D)
