"""Non-attention image blocks: a fully connected net, a small CNN, and a ResNet-style backbone.

The baselines of RAM's and STN's tables (Mnih et al. 2014 Table 1 "FC, 2 layers", "Convolutional,
2 layers"; Jaderberg et al. 2015 Table 1 "FCN", "CNN") and the classifier behind a spatial
transformer. A ResNet-style backbone (He et al. 2016, basic blocks) stands in for the slides'
"STN + ResNet-50" trial at MNIST scale.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(nn.Flatten(), *layers)


class SmallCNN(nn.Module):
    """conv(k)-ReLU-maxpool(2) per entry of ``channels``, then FC ``fc``-ReLU and the output layer."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        out_dim: int,
        channels: tuple[int, ...] = (32, 32),
        kernel: int = 5,
        fc: int = 256,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_shape[0]
        for width in channels:
            layers += [nn.Conv2d(c, width, kernel, padding=kernel // 2), nn.ReLU(), nn.MaxPool2d(2)]
            c = width
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *in_shape)).numel()
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, fc), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, out)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNetStyle(nn.Module):
    """A stem conv then one basic block per stage (stride 2 after the first), global average pooling."""

    def __init__(self, in_shape: tuple[int, int, int], out_dim: int, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        stem = widths[0]
        blocks: list[nn.Module] = [nn.Conv2d(in_shape[0], stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU()]
        c = stem
        for i, width in enumerate(widths):
            blocks.append(BasicBlock(c, width, 1 if i == 0 else 2))
            c = width
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))  # (B, out)


def classifier(
    kind: str,
    in_shape: tuple[int, int, int],
    out_dim: int,
    hidden: tuple[int, ...],
    channels: tuple[int, ...],
    kernel: int,
    fc: int,
) -> nn.Module:
    """The classifier named ``kind`` (fc | cnn | resnet)."""
    if kind == "fc":
        return mlp(in_shape[0] * in_shape[1] * in_shape[2], hidden, out_dim)
    if kind == "cnn":
        return SmallCNN(in_shape, out_dim, channels, kernel, fc)
    return ResNetStyle(in_shape, out_dim, channels)
