"""Pretrained weights, found and loaded for the building blocks that use them (the use-case layer).

``nn/`` modules take weights already loaded (docs/architecture.md); finding them on disk, in run
directories or through torchvision's download is done here:

* :func:`load_pretrained` — the conv stages of a trained attn classifier for a caption model's pixel
  encoder (``model.encoder_weights``: a checkpoint file, a run directory, or ``vision/RECIPE``, the
  newest finished run of that recipe), read weights-only, before a fresh training.
* :func:`torchvision_backbone` / :func:`extract_features` — ResNet/VGG feature grids for real photos
  (Flickr8k/30k, COCO; Xu et al. 2015 §3.1.1 take VGG's 14×14×512 conv5_4 map) with ImageNet weights
  from a local file or torchvision's download, computed once by ``attn prepare`` and cached on disk.
  torchvision is imported lazily: it is not a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from attn_cli.errors import AttnError
from attn_cli.io import download_enabled, sha256_file
from attn_cli.runs import find_checkpoint

TORCHVISION_HINT = "pip install torch==2.14.1 torchvision==0.29.1"


def _trunk_checkpoint(spec: str, runs_dir: Path) -> Path:
    """The checkpoint ``model.encoder_weights`` names: a file, a run directory's best, or ``vision/RECIPE``'s newest."""
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
    return path


def trunk_weights(path: Path) -> dict[str, torch.Tensor]:
    """The GridCNN conv stages in a checkpoint: every ``...trunk.body.*`` tensor, keyed as ``body`` names them."""
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
    return body


def load_pretrained(model: nn.Module, runs_dir: Path) -> dict[str, Any] | None:
    """Before a fresh training (not a resume): load the pretrained weights the model's recipe names, if any.

    A model that can start from pretrained conv stages says so with ``pretrained_encoder()``: the
    ``encoder_weights`` spec and the GridCNN to load, or None; one built on torchvision backbones (RA-CNN's
    VGG-19 sub-networks) with ``pretrained_backbones()``: see :func:`load_backbones`. Returns what was loaded
    (recorded in run.json), or None.
    """
    backbones = getattr(model, "pretrained_backbones", None)
    wanted_backbones = backbones() if backbones is not None else None
    if wanted_backbones is not None:
        return load_backbones(*wanted_backbones)
    ask = getattr(model, "pretrained_encoder", None)
    wanted = ask() if ask is not None else None
    if wanted is None:
        return None
    spec, encoder = wanted
    path = _trunk_checkpoint(spec, runs_dir)
    body = trunk_weights(path)
    encoder.load_body(body, str(path))
    return {"encoder_weights": str(path), "sha256": sha256_file(path), "tensors": len(body)}


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


def _read_state_dict(path: Path, label: str) -> dict[str, Any]:
    """A state dict read weights-only from ``path``; one-line errors that start with ``label`` for a file that is
    no torch file or holds something else."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors differ by how the file is broken
        raise AttnError(
            f"{label} cannot be read as a state dict ({type(err).__name__}); "
            f"save one with torch.save(model.state_dict(), FILE)"
        ) from err
    if not isinstance(state, dict):
        raise AttnError(f"{label}: the file holds a {type(state).__name__}, not a state dict; save model.state_dict()")
    return state


def _load_state_dict(model: nn.Module, weights: str, name: str) -> None:
    path = Path(weights)
    if not path.is_file():
        raise AttnError(f"encoder weights {weights} do not exist; pass a torchvision {name} state dict (.pth)")
    state = _read_state_dict(path, f"encoder weights {weights}")
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


def _imagenet_weights(tv: Any, ctor: str, name: str, option: str = "encoder_weights") -> Any:
    """torchvision's ImageNet weights: from its cache (``$TORCH_HOME/hub/checkpoints``) or downloaded.
    ``option``: the recipe key that takes a local file instead, named in the offline errors."""
    default = tv.models.get_model_weights(ctor).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(default.url).name
    if not cached.is_file() and not download_enabled():
        raise AttnError(
            f"offline (ATTN_OFFLINE) and no local weights for {name}; pass --set {option}=FILE "
            f"(a torchvision {name} state dict)"
        )
    try:
        return getattr(tv.models, ctor)(weights=default)
    except Exception as err:  # urllib/ssl/socket errors when offline, wrapped differently across versions
        raise AttnError(
            f"cannot download ImageNet weights for {name} ({type(err).__name__}); offline? "
            f"pass a local state dict with --set {option}=FILE"
        ) from err


BACKBONE_OPTION = "model.backbone_weights"


def load_backbones(name: str, spec: str, nets: Sequence[Any]) -> dict[str, Any]:
    """Load the torchvision ``name`` weights ``spec`` names into every net (each with ``load_torchvision``).

    ``spec`` is ``imagenet`` (torchvision's ImageNet weights, from its cache or downloaded: needs torchvision
    and, without a cached copy, the network) or a local torchvision state dict file (needs neither). Returns
    what was loaded, for run.json."""
    if spec == "imagenet":
        try:
            tv = _torchvision()
        except AttnError as err:
            raise AttnError(
                f"{BACKBONE_OPTION}=imagenet needs torchvision ({TORCHVISION_HINT}); or pass "
                f"--set {BACKBONE_OPTION}=FILE (a torchvision {name} state dict)"
            ) from err
        state = _imagenet_weights(tv, name, name, option=BACKBONE_OPTION).state_dict()
        where, digest = f"torchvision's ImageNet {name} weights", None
    else:
        path = Path(spec)
        if not path.is_file():
            raise AttnError(
                f"{BACKBONE_OPTION}: {spec} does not exist; pass a torchvision {name} state dict (.pth) or 'imagenet'"
            )
        state = _read_state_dict(path, f"{BACKBONE_OPTION}: {path}")
        where, digest = str(path), sha256_file(path)
    tensors = [net.load_torchvision(state, where) for net in nets]
    return {"backbone_weights": where, "sha256": digest, "backbone": name, "tensors": sum(tensors)}


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
