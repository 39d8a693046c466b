"""The fine-grained sets RA-CNN was built for (Fu et al. 2017, §4.1): Stanford Dogs and Stanford Cars.
(CUB-200-2011 is :mod:`data_prep.cub`.)

* ``stanford-dogs`` (Khosla et al. 2011): ``Images/<wnid>-<breed>/*.jpg`` plus ``train_list.mat`` /
  ``test_list.mat`` from ``lists.tar`` (``file_list``: a cell of relative paths, ``labels``: 1..120);
  12,000 training and 8,580 test images.
* ``stanford-cars`` (Krause et al. 2013): ``cars_train/*.jpg``, ``cars_test/*.jpg``, the devkit's
  ``cars_train_annos.mat`` and ``cars_test_annos_withlabels.mat`` (struct arrays ``annotations`` with
  ``bbox_x1..y2``, ``class`` 1..196, ``fname``); 8,144 training and 8,041 test images.

``--source`` is the folder holding the unpacked files, or the official archives themselves (``images.tar``,
``lists.tar``; ``cars_train.tgz``, ``cars_test.tgz``, ``car_devkit.tgz``, the test annotations), which are
unpacked into a temporary folder. Images are resized to ``size``×``size`` (optionally cropped to the
annotated box first) and stored uint8 (N, 3, size, size), labels 0-based; val = every ``val_every``-th
training image, as CUB, and every split stored in an order drawn from ``seed`` (dataset version 2: Stanford
Dogs' lists are sorted by breed, so version 1's val began with the first breeds only).

Checksums (SHA-256, verified on download): the two Stanford Dogs archives and the four Stanford Cars files as
TensorFlow Datasets publishes them (``tensorflow_datasets/url_checksums/stanford_dogs.txt`` and ``cars196.txt``
in github.com/tensorflow/datasets, commits 24211da and 31f1255; Dogs' ``lists.tar`` sum is also the one public
staging scripts verify). The Cars entries keep the MD5 sums torchvision's ``StanfordCars`` publishes for the
same files. Their former host, ai.stanford.edu, no longer serves the Cars files: offline or not, most users
will pass --source.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import DATASETS, DatasetSpec, RawFile
from data_prep.matlab import read_mat5_any
from data_prep.mnist import shuffle_splits, write_splits

DOGS_URL = "http://vision.stanford.edu/aditya86/ImageNetDogs/"
DOGS_RAW = [
    RawFile("images.tar", DOGS_URL + "images.tar", "a443fc2f9a851aa1a7b8e4fa4af94b8459fce2c9f5a2f4dd4669cf9673a4ec58"),
    RawFile("lists.tar", DOGS_URL + "lists.tar", "34b47cacd9a98b5d150e084f24d29391c084c55272295ec65c85651bc35f4d6c"),
]
CARS_URL = "https://ai.stanford.edu/~jkrause/"
CARS_RAW = [
    RawFile(
        "cars_train.tgz",
        CARS_URL + "car196/cars_train.tgz",
        "512b227b30e2f0a8aab9e09485786ab4479582073a144998da74d64b801fd288",
        md5="065e5b463ae28d29e77c1b4b166cfe61",
    ),
    RawFile(
        "cars_test.tgz",
        CARS_URL + "car196/cars_test.tgz",
        "bffea656d6f425cba3c91c6d83336e4c5f86c6cffd8975b0f375d3a10da8e243",
        md5="4ce7ebf6a94d07f1952d94dd34c4d501",
    ),
    RawFile(
        "car_devkit.tgz",
        CARS_URL + "cars/car_devkit.tgz",
        "b97deb463af7d58b6bfaa18b2a4de9829f0f79e8ce663dfa9261bf7810e9accd",
        md5="c3b158d763b6e2245038c8ad08e45376",
    ),
    RawFile(
        "cars_test_annos_withlabels.mat",
        CARS_URL + "car196/cars_test_annos_withlabels.mat",
        "790f75be8ea34eeded134cc559332baf23e30e91367e9ddca97d26ed9b895f05",
        md5="b0a2b23655a3edd16d84508592a98d10",
    ),
]


@dataclass(frozen=True)
class FineGrainedConfig:
    size: int = 224
    bbox: bool = False  # Cars: crop to the annotated box first (Dogs: the whole image)
    val_every: int = 10
    seed: int = 0  # the order every split is stored in (the official lists are sorted by class)


@contextmanager
def unpacked(source: Path) -> Iterator[Path]:
    """``source`` as a folder: itself when it is one holding no archives, else every .tar/.tgz in it (or
    ``source`` itself when it is an archive) unpacked into a temporary folder, with the loose files beside
    them linked in. The official archives are trusted: members are extracted with the ``data`` filter."""
    archives = [source] if source.is_file() else sorted([*source.glob("*.tar"), *source.glob("*.tgz")])
    if not archives:
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="attn-unpack-") as tmp:
        root = Path(tmp)
        for archive in archives:
            try:
                with tarfile.open(archive) as tar:
                    tar.extractall(root, filter="data")
            except (tarfile.TarError, OSError, EOFError) as err:
                raise AttnError(f"{archive} is not a readable tar archive ({err}); download it again") from err
        if source.is_dir():
            for loose in source.iterdir():
                if loose.is_file() and loose not in archives and not (root / loose.name).exists():
                    (root / loose.name).symlink_to(loose.resolve())
        yield root


def _find(root: Path, name: str) -> Path:
    hits = sorted(root.rglob(name))
    if not hits:
        raise AttnError(f"{name} not found under the source; --source must hold the official files or archives")
    return hits[0]


def _load(path: Path, size: int, box: tuple[float, float, float, float] | None) -> np.ndarray:
    from PIL import Image

    try:
        img = Image.open(path).convert("RGB")
    except OSError as err:
        raise AttnError(f"cannot read {path.name} ({err})") from err
    if box is not None:
        img = img.crop(tuple(int(v) for v in box))
    return np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)


def _splits(cfg: FineGrainedConfig, train: list[tuple[np.ndarray, int]], test: list[tuple[np.ndarray, int]]) -> dict:
    if cfg.val_every < 2:
        raise AttnError(f"val_every={cfg.val_every}: give 2 or more (every N-th training image is held out)")
    parts = {
        "train": [t for i, t in enumerate(train) if i % cfg.val_every != cfg.val_every - 1],
        "val": [t for i, t in enumerate(train) if i % cfg.val_every == cfg.val_every - 1],
        "test": test,
    }
    empty = np.zeros((0, 3, cfg.size, cfg.size), np.uint8)
    splits = {
        k: (np.stack([x for x, _ in v]) if v else empty, np.asarray([y for _, y in v], np.int64))
        for k, v in parts.items()
    }
    return shuffle_splits(splits, cfg.seed)


def _list(path: Path) -> list[tuple[str, int]]:
    mat = read_mat5_any(path)
    if "file_list" not in mat or "labels" not in mat:
        raise AttnError(f"{path} has no file_list/labels; is it Stanford Dogs' train_list.mat / test_list.mat?")
    files = [f if isinstance(f, str) else f[0] for f in mat["file_list"]]
    labels = np.asarray(mat["labels"]).reshape(-1).astype(int)
    if len(files) != len(labels):
        raise AttnError(f"{path}: {len(files)} files but {len(labels)} labels")
    return list(zip(files, labels.tolist()))


def build_dogs(cfg: FineGrainedConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    with unpacked(source) as root:
        images = _find(root, "Images")
        split = {
            name: [(_load(images / f, cfg.size, None), y - 1) for f, y in _list(_find(root, f"{name}_list.mat"))]
            for name in ("train", "test")
        }
    facts = write_splits(out, _splits(cfg, split["train"], split["test"]))
    return {**facts, "note": f"Stanford Dogs {cfg.size}×{cfg.size}"}


def _annotations(path: Path) -> list[dict[str, Any]]:
    mat = read_mat5_any(path)
    annos = mat.get("annotations")
    if not isinstance(annos, list) or not annos or "fname" not in annos[0] or "class" not in annos[0]:
        raise AttnError(f"{path} has no annotations struct with fname and class; is it the Stanford Cars devkit file?")
    return annos


def _car(a: dict[str, Any], folder: Path, cfg: FineGrainedConfig) -> tuple[np.ndarray, int]:
    box = tuple(float(np.asarray(a[k]).reshape(-1)[0]) for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"))
    label = int(np.asarray(a["class"]).reshape(-1)[0]) - 1
    return _load(folder / a["fname"], cfg.size, box if cfg.bbox else None), label  # type: ignore[arg-type]


def build_cars(cfg: FineGrainedConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None
    with unpacked(source) as root:
        train_dir, test_dir = _find(root, "cars_train"), _find(root, "cars_test")
        train = [_car(a, train_dir, cfg) for a in _annotations(_find(root, "cars_train_annos.mat"))]
        test = [_car(a, test_dir, cfg) for a in _annotations(_find(root, "cars_test_annos_withlabels.mat"))]
    facts = write_splits(out, _splits(cfg, train, test))
    return {**facts, "note": f"Stanford Cars {cfg.size}×{cfg.size}" + (", cropped to the boxes" if cfg.bbox else "")}


DATASETS.add(
    "stanford-dogs",
    DatasetSpec(
        name="stanford-dogs",
        task="vision",
        summary="Stanford Dogs, 120 breeds: Images/ + train_list.mat/test_list.mat, or images.tar + lists.tar",
        Config=FineGrainedConfig,
        build=build_dogs,
        default_name=lambda cfg: "stanford-dogs",
        raw_files=DOGS_RAW,
        version=2,
    ),
)
DATASETS.add(
    "stanford-cars",
    DatasetSpec(
        name="stanford-cars",
        task="vision",
        summary="Stanford Cars, 196 classes: cars_train/, cars_test/ and the devkit annotations (or their archives)",
        Config=FineGrainedConfig,
        build=build_cars,
        default_name=lambda cfg: "stanford-cars",
        raw_files=CARS_RAW,
        version=2,
    ),
)
