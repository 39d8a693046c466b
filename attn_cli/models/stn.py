"""Spatial Transformer Networks (Jaderberg, Simonyan, Zisserman & Kavukcuoglu, NIPS 2015).

A localisation net f_loc(U) -> θ (§3.1), a grid generator T_θ(G) (§3.2, eq. (1): affine;
projective; thin-plate spline with a k×k grid of control points) and the bilinear sampler
(§3.3, eq. (5)) — all from :mod:`attn_cli.attention.spatial` — in front of a classifier:
ST-FCN, ST-CNN (Table 1), or a ResNet-style backbone (the slides' "STN + ResNet-50" trial).
``transformers > 1`` runs several transformers in parallel on the same input and stacks their
outputs as channels (the 2×ST-CNN of the MNIST addition experiment, Appendix A).

Deviations: the localisation nets are FC 32-32 (ST-FCN) or conv5(20)-pool-conv5(20)-pool-FC32
(ST-CNN) with the last layer initialised to the identity transform; the output size of the
transformer is ``out_size`` (0 keeps the input size); the classifier sizes are ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from attn_cli.attention.spatial import affine_grid, projective_grid, sample, tps_control_points, tps_grid
from attn_cli.nn.classifier import Classifier
from attn_cli.nn.cnn import SmallCNN, classifier, mlp
from attn_cli.registry import MODELS


def n_params(transform: str, tps_k: int) -> int:
    return {"affine": 6, "projective": 8, "tps": 2 * tps_k * tps_k}[transform]


def identity_params(transform: str, tps_k: int) -> torch.Tensor:
    if transform == "affine":
        return torch.tensor([1.0, 0, 0, 0, 1, 0])
    if transform == "projective":
        return torch.tensor([1.0, 0, 0, 0, 1, 0, 0, 0])
    return torch.zeros(2 * tps_k * tps_k)  # offsets of the control points


class SpatialTransformer(nn.Module):
    """One ST layer: U (B, C, H, W) -> (V (B, C, h, w), grid (B, h, w, 2), θ)."""

    control: torch.Tensor  # (K², 2) the TPS control points (a buffer)

    def __init__(
        self, in_shape: tuple[int, int, int], transform: str, loc: str, out_size: tuple[int, int], tps_k: int
    ) -> None:
        super().__init__()
        self.transform, self.out_size, self.tps_k = transform, out_size, tps_k
        k = n_params(transform, tps_k)
        self.loc: nn.Module
        if loc == "fc":
            self.loc = mlp(in_shape[0] * in_shape[1] * in_shape[2], (32, 32), k)
        else:
            self.loc = SmallCNN(in_shape, k, channels=(20, 20), kernel=5, fc=32)
        last = [m for m in self.loc.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.copy_(identity_params(transform, tps_k))
        self.register_buffer("control", tps_control_points(tps_k), persistent=False)

    def grid(self, params: torch.Tensor) -> torch.Tensor:
        b = params.size(0)
        if self.transform == "affine":
            return affine_grid(params.view(b, 2, 3), self.out_size)
        if self.transform == "projective":
            hom = torch.cat([params, params.new_ones(b, 1)], 1).view(b, 3, 3)
            return projective_grid(hom, self.out_size)
        return tps_grid(self.control + params.view(b, -1, 2), self.control, self.out_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        params: torch.Tensor = self.loc(x)  # (B, P)
        grid = self.grid(params)  # (B, h, w, 2)
        return sample(x, grid), grid, params


@MODELS.register("stn", task="vision")
class STN(Classifier):
    picture = "transform"  # what `attn visualize` draws: input, sampling grid, output (Jaderberg et al. Fig. 1)

    @dataclass(frozen=True)
    class Config:
        transform: Literal["affine", "projective", "tps", "none"] = "affine"
        loc: Literal["fc", "cnn"] = "cnn"
        classifier: Literal["fc", "cnn", "resnet"] = "cnn"
        transformers: int = 1  # parallel transformers; their outputs are stacked as channels
        out_size: int = 0  # side of the transformed image; 0: the input's size
        tps_k: int = 4  # thin-plate spline control points on a k×k grid (16 in the paper)
        hidden: tuple[int, ...] = (128, 128)  # FC classifier
        channels: tuple[int, ...] = (32, 32)  # CNN classifier (or ResNet stage widths)
        kernel: int = 5
        fc: int = 256

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        c, h, w = image_shape
        size = (cfg.out_size, cfg.out_size) if cfg.out_size else (h, w)
        self.sts = nn.ModuleList(
            []
            if cfg.transform == "none"
            else [
                SpatialTransformer((c, h, w), cfg.transform, cfg.loc, size, cfg.tps_k) for _ in range(cfg.transformers)
            ]
        )
        in_shape = (c * max(1, len(self.sts)), *size) if self.sts else (c, h, w)
        self.net = classifier(
            cfg.classifier, in_shape, classes, tuple(cfg.hidden), tuple(cfg.channels), cfg.kernel, cfg.fc
        )

    def transform(self, x: torch.Tensor) -> dict[str, Any]:
        """Every transformer's output, grid and parameters."""
        outs = [st(x) for st in self.sts]
        return {
            "transformed": [o[0] for o in outs],  # each (B, C, h, w)
            "grids": [o[1] for o in outs],  # each (B, h, w, 2)
            "params": [o[2] for o in outs],
        }

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat(self.transform(x)["transformed"], 1) if self.sts else x  # (B, C', h, w)
        out: torch.Tensor = self.net(inputs)  # (B, K)
        return out
