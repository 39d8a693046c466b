"""The baselines of the RAM and STN tables: a fully connected net and a small CNN.

Mnih et al. (2014) Table 1: "FC, 2 layers (256 hiddens each)" and "Convolutional, 2 layers";
Jaderberg et al. (2015) Table 1: "FCN" and "CNN". Deviation: the CNN is conv5-pool-conv5-pool
with 32 channels and a 256-unit FC layer (the papers give the layer counts, not every size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from attn_cli.nn.classifier import Classifier
from attn_cli.nn.cnn import SmallCNN, mlp
from attn_cli.nn.image_encoders import GridCNN
from attn_cli.registry import MODELS


@MODELS.register("fc", task="vision")
class FC(Classifier):
    @dataclass(frozen=True)
    class Config:
        hidden: tuple[int, ...] = (256, 256)

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        c, h, w = image_shape
        self.net = mlp(c * h * w, tuple(cfg.hidden), classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)  # (B, K)
        return out


@MODELS.register("cnn", task="vision")
class CNN(Classifier):
    @dataclass(frozen=True)
    class Config:
        channels: tuple[int, ...] = (32, 32)
        kernel: int = 5
        fc: int = 256

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        c, h, w = image_shape
        self.net = SmallCNN((c, h, w), classes, tuple(cfg.channels), cfg.kernel, cfg.fc)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)  # (B, K)
        return out


@MODELS.register("grid-cnn", task="vision")
class GridClassifier(Classifier):
    """The digit-caption encoder (:class:`GridCNN`) as a classifier: its L annotation vectors averaged,
    then one linear layer. Trained on MNIST, its conv stages are the pretrained trunk the caption recipes
    load (``model.encoder_weights: vision/grid-cnn-28``), as Xu et al. start from an ImageNet VGG.
    """

    @dataclass(frozen=True)
    class Config:
        channels: tuple[int, ...] = (16, 32, 64)

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = GridCNN(tuple(image_shape), tuple(cfg.channels))
        self.out = nn.Linear(self.trunk.out_dim, classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.out(self.trunk(x).mean(1))  # (B, L, D) -> (B, D) -> (B, K)
        return out
