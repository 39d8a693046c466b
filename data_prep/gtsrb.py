"""GTSRB (Stallkamp et al. 2012), the official layout: one folder per class with a ``GT-<class>.csv``.

Training: ``Final_Training/Images/<00000..00042>/GT-<class>.csv`` (``Filename;Width;Height;Roi.X1;
Roi.Y1;Roi.X2;Roi.Y2;ClassId``) beside the .ppm images. Test: a folder whose CSV
(``GT-final_test.csv``) carries ClassId. Each image is cropped to its ROI and resized to
``size``×``size`` (bilinear, PIL), stored uint8 (N, 3, size, size). Val is the last ``val_fraction`` of
each class's training images; every split is stored in an order drawn from ``seed`` (dataset version 2:
version 1 kept the class folders' order, so a partial validation saw the first classes only).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import DATASETS, DatasetSpec
from data_prep.mnist import shuffle_splits, write_splits


def read_annotated(csv_path: Path, size: int, crop: bool) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    xs, ys = [], []
    with csv_path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    for n, row in enumerate(rows, 2):
        try:
            img = Image.open(csv_path.parent / row["Filename"]).convert("RGB")
            if crop:
                img = img.crop((int(row["Roi.X1"]), int(row["Roi.Y1"]), int(row["Roi.X2"]) + 1, int(row["Roi.Y2"]) + 1))
            label = int(row["ClassId"])
        except (KeyError, ValueError) as err:
            raise AttnError(f"{csv_path}:{n} is not a GTSRB annotation row ({err})") from err
        except OSError as err:
            raise AttnError(f"{csv_path}:{n}: cannot read image {row.get('Filename')} ({err})") from err
        xs.append(np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8).transpose(2, 0, 1))
        ys.append(label)
    return np.stack(xs) if xs else np.zeros((0, 3, size, size), np.uint8), np.asarray(ys, np.int64)


@dataclass(frozen=True)
class GtsrbConfig:
    size: int = 48
    crop: bool = True  # crop to the annotated region of interest
    val_fraction: float = 0.1  # the last fraction of each class's training images
    seed: int = 0  # the order every split is stored in (the training folders are per class)


def build_gtsrb(cfg: GtsrbConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    train_csvs = sorted(p for p in source.rglob("GT-*.csv") if p.name != "GT-final_test.csv")
    test_csvs = sorted(source.rglob("GT-final_test.csv"))
    if not train_csvs or not test_csvs:
        raise AttnError(f"{source} has no GTSRB GT-<class>.csv / GT-final_test.csv files; point --source at GTSRB/")
    tx, ty, vx, vy = [], [], [], []
    for path in train_csvs:
        x, y = read_annotated(path, cfg.size, cfg.crop)
        cut = len(x) - int(round(cfg.val_fraction * len(x)))
        tx.append(x[:cut])
        ty.append(y[:cut])
        vx.append(x[cut:])
        vy.append(y[cut:])
    test = [read_annotated(p, cfg.size, cfg.crop) for p in test_csvs]
    splits = {
        "train": (np.concatenate(tx), np.concatenate(ty)),
        "val": (np.concatenate(vx), np.concatenate(vy)),
        "test": (np.concatenate([t[0] for t in test]), np.concatenate([t[1] for t in test])),
    }
    return {
        **write_splits(out, shuffle_splits(splits, cfg.seed)),
        "note": f"GTSRB, ROI-cropped={cfg.crop}, {cfg.size}×{cfg.size}",
    }


DATASETS.add(
    "gtsrb",
    DatasetSpec(
        name="gtsrb",
        task="vision",
        summary="GTSRB traffic signs from the official folder layout (--source GTSRB/)",
        Config=GtsrbConfig,
        build=build_gtsrb,
        default_name=lambda cfg: "gtsrb",
        version=2,
    ),
)
