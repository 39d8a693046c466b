"""CUB-200-2011 (Wah et al. 2011), the official layout of ``CUB_200_2011/``.

``images.txt`` (id path), ``image_class_labels.txt`` (id class, 1-based), ``train_test_split.txt``
(id is_train) and ``images/<path>``. Images are resized to ``size``×``size`` (optionally cropped
to ``bounding_boxes.txt`` first) and stored uint8 (N, 3, size, size); labels 0-based. The val
split is every ``val_every``-th training image; every split is stored in an order drawn from ``seed``
(dataset version 2: ``images.txt`` is sorted by class, so version 1's val began with the first species only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import DATASETS, DatasetSpec, RawFile
from data_prep.finegrained import unpacked
from data_prep.mnist import shuffle_splits, write_splits

# SHA-256 as TensorFlow Datasets publishes it (tensorflow_datasets/url_checksums/caltech_birds2011.txt, commit 333639b)
CUB_RAW = [
    RawFile(
        "CUB_200_2011.tgz",
        "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
        "0c685df5597a8b24909f6a7c9db6d11e008733779a671760afef78feb49bf081",
    )
]


def _table(path: Path, width: int) -> dict[int, list[str]]:
    if not path.is_file():
        raise AttnError(f"{path} does not exist; --source must be the CUB_200_2011 folder")
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != width + 1:
            raise AttnError(f"{path}:{n} should have {width + 1} fields, has {len(parts)}")
        out[int(parts[0])] = parts[1:]
    return out


@dataclass(frozen=True)
class CubConfig:
    size: int = 224
    bbox: bool = False  # crop to the annotated bounding box first
    val_every: int = 10
    seed: int = 0  # the order every split is stored in (images.txt is sorted by class)


def build_cub(cfg: CubConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    with unpacked(source) as root:  # the folder, or the official CUB_200_2011.tgz (downloaded when online)
        folder = root if (root / "images.txt").is_file() else root / "CUB_200_2011"
        return _build_cub(cfg, folder, out)


def _build_cub(cfg: CubConfig, source: Path, out: Path) -> dict[str, Any]:
    from PIL import Image

    images = _table(source / "images.txt", 1)
    labels = _table(source / "image_class_labels.txt", 1)
    split = _table(source / "train_test_split.txt", 1)
    boxes = _table(source / "bounding_boxes.txt", 4) if cfg.bbox else {}
    if set(images) != set(labels) or set(images) != set(split):
        raise AttnError(f"{source}: images.txt, image_class_labels.txt and train_test_split.txt list different ids")
    parts: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], []), "test": ([], [])}
    n_train = 0
    for i in sorted(images):
        try:
            img = Image.open(source / "images" / images[i][0]).convert("RGB")
        except OSError as err:
            raise AttnError(f"cannot read {images[i][0]} ({err})") from err
        if cfg.bbox:
            x, y, w, h = (float(v) for v in boxes[i])
            img = img.crop((int(x), int(y), int(x + w), int(y + h)))
        arr = np.asarray(img.resize((cfg.size, cfg.size), Image.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)
        if split[i][0] == "1":
            name = "val" if n_train % cfg.val_every == cfg.val_every - 1 else "train"
            n_train += 1
        else:
            name = "test"
        parts[name][0].append(arr)
        parts[name][1].append(int(labels[i][0]) - 1)
    splits = {
        k: (np.stack(xs) if xs else np.zeros((0, 3, cfg.size, cfg.size), np.uint8), np.asarray(ys, np.int64))
        for k, (xs, ys) in parts.items()
    }
    return {**write_splits(out, shuffle_splits(splits, cfg.seed)), "note": f"CUB-200-2011 {cfg.size}×{cfg.size}"}


DATASETS.add(
    "cub",
    DatasetSpec(
        name="cub",
        task="vision",
        summary="CUB-200-2011 birds: the official CUB_200_2011/ folder or .tgz (--source, or downloaded with checksum)",
        Config=CubConfig,
        build=build_cub,
        default_name=lambda cfg: "cub",
        raw_files=CUB_RAW,
        version=2,
    ),
)
