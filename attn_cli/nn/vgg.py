"""VGG's conv stages (Simonyan & Zisserman, ICLR 2015, Table 1, configurations D = VGG-16 and E = VGG-19).

Laid out exactly as torchvision's ``vgg16().features`` / ``vgg19().features`` (the same ``nn.Sequential``
indices, so the ``features.*`` tensors of a torchvision state dict load by name) without the last max-pool:
the trunk ends at conv5_3 / conv5_4 + ReLU, the map RA-CNN's APN reads (Fu et al. 2017, §3.2) and the grid
Show-Attend-Tell attends over (Xu et al. 2015, §3.1.1). Building it needs no torchvision; loading ImageNet
weights into it is :mod:`attn_cli.pretrained`'s (this module takes weights already loaded).
"""

from __future__ import annotations

import torch
from torch import nn

from attn_cli.errors import AttnError, unknown

# output channels per conv layer, "M" a 2×2 max-pool; the last pool is listed (torchvision's index layout)
VGG_LAYERS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the normalisation torchvision's ImageNet weights were trained with
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_STRIDE = 16  # four max-pools before conv5: the map is (size/16)²
VGG_WIDTH = 512


class VGGTrunk(nn.Module):
    """Images (B, C, S, S) in [0, 1], C = 3 or 1 (grey repeated over R, G, B) -> conv5 map (B, 512, S/16, S/16).

    Inputs are normalised with the ImageNet mean and std inside the module, so ImageNet weights see what they
    were trained on; the statistics are buffers outside the state dict (torchvision's keys load unchanged)."""

    mean: torch.Tensor  # (1, 3, 1, 1)
    std: torch.Tensor  # (1, 3, 1, 1)

    def __init__(self, name: str = "vgg19", cin: int = 3) -> None:
        super().__init__()
        if name not in VGG_LAYERS:
            raise unknown("VGG configuration", name, VGG_LAYERS)
        if cin not in (1, 3):
            raise AttnError(f"{name} reads RGB (or grey) images; the data has {cin} channels")
        layers: list[nn.Module] = []
        c = 3
        for v in VGG_LAYERS[name][:-1]:  # the last max-pool is dropped
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                c = int(v)
        self.name = name
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (B, 3, S, S)
        out: torch.Tensor = self.features((x - self.mean) / self.std)  # (B, 512, S/16, S/16)
        return out

    def load_torchvision(self, state: dict[str, torch.Tensor], where: str) -> int:
        """Load the ``features.*`` tensors of a torchvision ``vgg*`` state dict (the classifier's are ignored);
        returns how many tensors were loaded. Missing or misshapen tensors are an error naming ``where``."""
        conv = {k: v for k, v in state.items() if k.startswith("features.")}
        try:
            result = self.load_state_dict(conv, strict=False)
        except RuntimeError as err:  # same names, other shapes
            raise AttnError(
                f"{where} does not fit {self.name} (tensor shapes differ); pass a {self.name} state dict"
            ) from err
        if result.missing_keys or result.unexpected_keys:
            example = (result.missing_keys or result.unexpected_keys)[0]
            raise AttnError(
                f"{where} does not fit {self.name} ({len(result.missing_keys)} missing, "
                f"{len(result.unexpected_keys)} unexpected tensors, e.g. {example!r}); pass a {self.name} state dict"
            )
        return len(conv)
