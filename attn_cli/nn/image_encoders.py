"""Image and video encoders for captioning: annotation vectors a = {a_1..a_L}, a_i ∈ R^D (Xu et al. §3.1.1).

* :class:`GridCNN` — a small CNN trained from scratch (conv3×3-ReLU-maxpool per stage) whose last
  feature map (D, h, w) is flattened to L = h·w annotation vectors, as Xu et al. take the
  14×14×512 conv5_4 map of VGG (L = 196, D = 512). For the digit captions: 60×60 -> 7×7 × 64.
* :class:`FrameEncoder` — one vector per video frame: :class:`GridCNN` averaged over the grid
  (Yao et al. 2015 §2.1 use GoogLeNet per frame) or pooled to a coarse k×k layout and flattened
  (``grid=k``: the vector then also says *where* things are in the frame), a 3-D convolution over (time, height, width)
  for local motion features (Yao et al. §2.1, "exploiting local structure"; theirs is a
  pretrained 3-D CNN on HOG/HOF/MBH volumes, ours learns from pixels), or both concatenated.
* :func:`torchvision_backbone` / :func:`extract_features` — ResNet/VGG feature grids for real
  photos (Flickr8k/30k, COCO) with ImageNet weights from a local file or torchvision's download,
  computed once and cached on disk. torchvision is imported lazily: it is not a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.errors import AttnError
from attn_cli.io import sha256_file

TORCHVISION_HINT = "pip install torch==2.14.1 torchvision==0.29.1"


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

    def load_trunk(self, spec: str, runs_dir: Path) -> dict[str, Any]:
        """Load ``body`` (the conv stages, not the position vectors) from a trained attn checkpoint.

        ``spec``: a checkpoint file, a run directory (its best checkpoint), or ``vision/RECIPE`` — the
        newest finished run of that recipe under ``runs_dir``. The checkpoint must hold a GridCNN
        under some ``...trunk.body.`` prefix (e.g. the ``grid-cnn`` classifier) with the same stages.
        """
        from attn_cli.runs import find_checkpoint

        if spec.startswith("vision/"):
            base = Path(runs_dir) / spec
            done = [p.parent for p in base.glob("*/train_done.json")]
            if not done:
                raise AttnError(
                    f"model.encoder_weights: no finished run of {spec} under {runs_dir}; "
                    f"train it first: attn train vision --recipe {spec.split('/', 1)[1]}"
                )
            path = find_checkpoint(max(done, key=lambda p: (p / "train_done.json").stat().st_mtime))
        else:
            path = Path(spec)
            path = find_checkpoint(path) if path.is_dir() else path
        if not path.is_file():
            raise AttnError(f"model.encoder_weights: {path} does not exist")
        try:
            # weights only: a full unpickle runs whatever a checkpoint someone sends you names
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # damaged zip / pickle, or pickled objects beyond weights: several types
            raise AttnError(
                f"model.encoder_weights: {path} is corrupt or not a checkpoint, or holds more than weights "
                f"({type(err).__name__})"
            ) from err
        state = state.get("state_dict", state) if isinstance(state, dict) else {}
        body = {k.split("trunk.body.", 1)[1]: v for k, v in state.items() if "trunk.body." in k}
        if not body:
            raise AttnError(f"model.encoder_weights: {path} holds no GridCNN trunk (no '...trunk.body.*' weights)")
        try:
            self.body.load_state_dict(body)
        except RuntimeError as err:
            raise AttnError(
                f"model.encoder_weights: the trunk in {path} does not fit model.channels {self.channels}: "
                + str(err).splitlines()[-1].strip()
            ) from err
        return {"encoder_weights": str(path), "sha256": sha256_file(path), "tensors": len(body)}

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


# -- torchvision backbones for real photos --------------------------------------------------------

BACKBONES = {
    # name: (torchvision constructor, children to drop at the end, feature width D); the grid is
    # (size/32)² for ResNets (layer4), (size/16)² for VGG (conv5_3 / conv5_4 before the last max-pool)
    "resnet18": ("resnet18", 2, 512),
    "resnet50": ("resnet50", 2, 2048),
    "resnet101": ("resnet101", 2, 2048),
    "vgg16": ("vgg16", 0, 512),
    "vgg19": ("vgg19", 0, 512),
}


def _torchvision() -> Any:
    try:
        import torchvision
    except ImportError as err:
        raise AttnError(f"photo encoders need torchvision, which is not installed; run `{TORCHVISION_HINT}`") from err
    return torchvision


def check_backbone(name: str) -> None:
    """An unknown encoder name is an error before any image is read (torchvision not needed)."""
    if name not in BACKBONES:
        from attn_cli.errors import unknown

        raise unknown("image encoder", name, [*BACKBONES, "none"])


def _load_state_dict(model: nn.Module, weights: str, name: str) -> None:
    path = Path(weights)
    if not path.is_file():
        raise AttnError(f"encoder weights {weights} do not exist; pass a torchvision {name} state dict (.pth)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors differ by how the file is broken
        raise AttnError(
            f"encoder weights {weights} cannot be read as a state dict ({type(err).__name__}); "
            f"save one with torch.save(model.state_dict(), FILE)"
        ) from err
    if not isinstance(state, dict):
        raise AttnError(
            f"encoder weights {weights} hold a {type(state).__name__}, not a state dict; save model.state_dict()"
        )
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # same keys, tensors of other shapes
        raise AttnError(
            f"encoder weights {weights} do not fit torchvision's {name} (tensor shapes differ); pass a {name} state dict"
        ) from err
    if result.missing_keys or result.unexpected_keys:
        example = (result.missing_keys or result.unexpected_keys)[0]
        raise AttnError(
            f"encoder weights {weights} do not fit torchvision's {name} ({len(result.missing_keys)} missing, "
            f"{len(result.unexpected_keys)} unexpected keys, e.g. {example!r}); pass a {name} state dict"
        )


def _imagenet_weights(tv: Any, ctor: str, name: str) -> Any:
    """torchvision's ImageNet weights: from its cache (``$TORCH_HOME/hub/checkpoints``) or downloaded."""
    from data_prep.base import download_enabled

    default = tv.models.get_model_weights(ctor).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(default.url).name
    if not cached.is_file() and not download_enabled():
        raise AttnError(
            f"offline (ATTN_OFFLINE) and no local weights for {name}; pass --set encoder_weights=FILE "
            f"(a torchvision {name} state dict)"
        )
    try:
        return getattr(tv.models, ctor)(weights=default)
    except Exception as err:  # urllib/ssl/socket errors when offline, wrapped differently across versions
        raise AttnError(
            f"cannot download ImageNet weights for {name} ({type(err).__name__}); offline? "
            f"pass a local state dict with --set encoder_weights=FILE"
        ) from err


def torchvision_backbone(name: str, weights: str | None = None, pretrained: bool = True) -> nn.Module:
    """A frozen conv trunk (eval mode) returning (B, D, h, w): ResNet up to layer4, or VGG's conv5 before its last max-pool.

    ``weights``: a local ``.pth`` state dict of the full torchvision model (``torch.save(m.state_dict(), f)``).
    Without it and with ``pretrained``, torchvision's ImageNet weights: from its cache, else downloaded
    (offline, ``ATTN_OFFLINE=1`` or no network: one clear error). ``pretrained=False``: random init.
    """
    check_backbone(name)
    tv = _torchvision()
    ctor, drop, _ = BACKBONES[name]
    if weights:
        model = getattr(tv.models, ctor)(weights=None)
        _load_state_dict(model, weights, name)
    elif pretrained:
        model = _imagenet_weights(tv, ctor, name)
    else:
        model = getattr(tv.models, ctor)(weights=None)
    if name.startswith("vgg"):
        trunk = nn.Sequential(*list(model.features.children())[:-1])  # conv5_x + ReLU, before the last pool
    else:
        trunk = nn.Sequential(*list(model.children())[:-drop])  # without avgpool and fc
    return trunk.eval().requires_grad_(False)


def _rgb(path: Path) -> Any:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except Exception as err:  # PIL's decoders raise OSError, SyntaxError, ValueError, EOFError, ... by format
        reason = " ".join(str(err).split())
        raise AttnError(
            f"image {path} cannot be decoded ({type(err).__name__}: {reason}); `attn prepare` skips such images"
        ) from err


@torch.no_grad()
def extract_features(
    paths: Sequence[Path],
    name: str,
    *,
    weights: str | None,
    size: int = 224,
    batch: int = 32,
    out: Path | None = None,
    net: nn.Module | None = None,
) -> np.ndarray:
    """Annotation vectors (N, L, D) float16 for image files, in order, via a frozen torchvision trunk.

    Each image is converted to RGB, resized to ``size``×``size`` (aspect not kept) and normalised with
    the ImageNet mean and std. Images go through the trunk ``batch`` at a time; with ``out`` the rows
    are written straight into that ``.npy`` file (memory-mapped, returned), so a split larger than
    memory is never held whole (COCO's train2014 with resnet50: 113k × 49 × 2048 × 2 bytes ≈ 23 GB).
    ``net``: an already built trunk for ``name`` (one per preparation, not one per call). An image
    that does not decode is an error here: :mod:`data_prep.caption_photos` drops those beforehand.
    Deterministic: the trunk is in eval mode and the same inputs give the same batches.
    """
    check_backbone(name)
    tv = _torchvision()
    net = net if net is not None else torchvision_backbone(name, weights)
    tf = tv.transforms.Compose(
        [
            tv.transforms.Resize((size, size)),
            tv.transforms.ToTensor(),
            tv.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    grid = net(torch.zeros(1, 3, size, size)).shape  # (1, D, h, w): the shape of an empty split too
    shape = (len(paths), grid[2] * grid[3], grid[1])
    if out is not None:
        feats = np.lib.format.open_memmap(out, mode="w+", dtype=np.float16, shape=shape)
    else:
        feats = np.empty(shape, np.float16)
    for start in range(0, len(paths), batch):
        imgs = torch.stack([tf(_rgb(Path(p))) for p in paths[start : start + batch]])
        fmap = net(imgs)  # (B, D, h, w)
        feats[start : start + len(imgs)] = fmap.flatten(2).transpose(1, 2).half().numpy()  # (B, L, D)
    if isinstance(feats, np.memmap):
        feats.flush()
    return feats
