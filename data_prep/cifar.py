"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009), 32×32 RGB, the Residual Attention Network's datasets.

``attn prepare cifar10 --source`` reads either layout and says which it found in the manifest:

* the official python batches: ``cifar-10-python.tar.gz`` or its ``cifar-10-batches-py/`` folder
  (``data_batch_1..5``, ``test_batch``: pickled dicts with ``data`` (10000, 3072) uint8, row-major
  R, G, B planes, and ``labels``) — downloaded with its SHA-256 when online and no ``--source`` is given;
* a folder or ``.tar.gz`` of images ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (the JPEG
  re-encodings in ``../shared/data/cifar10/cifar10-jpg.tar.gz``: lossy, so accuracies are comparable
  with, not bit-identical to, the official batches'), decoded with PIL, classes in the official order.

``attn prepare cifar100`` reads ``cifar-100-python.tar.gz`` (``train``, ``test``; ``fine_labels``, 100
classes). The validation split is every ``val_every``-th official training image (5,000 of 50,000 by
default) — a stride, because the image folders are sorted by class; test is the official 10k. Every split
is then stored in an order drawn from ``seed`` (dataset version 2): version 1 kept the folders' class order,
so a recipe validating on the first 40% of val saw airplanes, cars, birds and cats only.
Pickles are read with ``encoding="bytes"`` from the official, checksum-verified archive only.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import DATASETS, DatasetSpec, RawFile
from data_prep.mnist import shuffle_splits, write_splits

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_RAW = [
    RawFile(
        "cifar-10-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    )
]
CIFAR100_RAW = [
    RawFile(
        "cifar-100-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    )
]


@dataclass(frozen=True)
class CifarConfig:
    val_every: int = 10  # every 10th official training image is held out for validation
    seed: int = 0  # the order every split is stored in (not the class order of the image folders)


def _members(source: Path) -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) of every file under ``source``: a folder, or a .tar/.tar.gz archive."""
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            yield path.relative_to(source).as_posix(), path.read_bytes()
        return
    try:
        with tarfile.open(source) as tar:
            for member in tar:
                if member.isfile():
                    fh = tar.extractfile(member)
                    if fh is not None:
                        yield member.name.lstrip("./"), fh.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise AttnError(f"{source} is not a readable folder or tar archive ({err}); download it again") from err


def _find_archive(source: Path, name: str) -> Path:
    """``source`` itself, the official archive inside it, or the folder the archive unpacks to."""
    if source.is_file():
        return source
    for candidate in (source / name, *sorted(source.glob("*.tar.gz")), *sorted(source.glob("*.tgz"))):
        if candidate.is_file():
            return candidate
    return source


def _unpickle(data: bytes, where: str) -> dict[bytes, Any]:
    try:
        out = pickle.loads(data, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise AttnError(f"{where} is not a CIFAR python batch ({err}); download the archive again") from err
    if not isinstance(out, dict) or b"data" not in out:
        raise AttnError(f"{where} has no b'data' entry; is it a CIFAR python batch?")
    return out


def _batches(files: dict[str, bytes], names: list[str], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in names:
        hit = [k for k in files if k.endswith("/" + name) or k == name]
        if not hit:
            raise AttnError(f"CIFAR python batch {name!r} is missing; --source must hold the official archive")
        batch = _unpickle(files[hit[0]], hit[0])
        xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))  # (N, 3, 32, 32)
        ys.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _decode(data: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data)).convert("RGB")
    except OSError as err:
        raise AttnError(f"cannot decode {where} ({err})") from err
    if img.size != (32, 32):
        raise AttnError(f"{where} is {img.size[0]}×{img.size[1]}, CIFAR images are 32×32")
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)  # (3, 32, 32)


def _images(files: dict[str, bytes], split: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in sorted(files):
        parts = name.split("/")
        if len(parts) < 3 or parts[-3] != split or not parts[-1].lower().endswith((".jpg", ".jpeg", ".png")):
            continue
        if parts[-2] not in CIFAR10_CLASSES:
            raise AttnError(f"{name}: unknown CIFAR-10 class folder {parts[-2]!r}; expected one of {CIFAR10_CLASSES}")
        xs.append(_decode(files[name], name))
        ys.append(CIFAR10_CLASSES.index(parts[-2]))
    if not xs:
        raise AttnError(f"no {split}/<class>/*.jpg images found; --source must hold train/ and test/ class folders")
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def _split(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], cfg: CifarConfig
) -> dict[str, Any]:
    every = cfg.val_every
    if every < 2:
        raise AttnError(f"val_every={every}: give 2 or more (every N-th training image is held out)")
    held = np.arange(len(train[0])) % every == every - 1
    splits = {"train": (train[0][~held], train[1][~held]), "val": (train[0][held], train[1][held]), "test": test}
    return shuffle_splits(splits, cfg.seed)


def build_cifar10(cfg: CifarConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    files = dict(_members(_find_archive(source, CIFAR10_RAW[0].name)))
    if any(k.endswith("data_batch_1") for k in files):
        layout = "official python batches"
        train = _batches(files, [f"data_batch_{i}" for i in range(1, 6)], b"labels")
        test = _batches(files, ["test_batch"], b"labels")
    else:
        layout = "JPEG images per class (lossy re-encodings of the official images)"
        train, test = _images(files, "train"), _images(files, "test")
    facts = write_splits(out, _split(train, test, cfg))
    return {**facts, "class_names": list(CIFAR10_CLASSES), "layout": layout, "note": f"CIFAR-10 32×32, {layout}"}


def build_cifar100(cfg: CifarConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None
    files = dict(_members(_find_archive(source, CIFAR100_RAW[0].name)))
    train = _batches(files, ["train"], b"fine_labels")
    test = _batches(files, ["test"], b"fine_labels")
    return {**write_splits(out, _split(train, test, cfg)), "note": "CIFAR-100 32×32, fine labels"}


DATASETS.add(
    "cifar10",
    DatasetSpec(
        name="cifar10",
        task="vision",
        summary="CIFAR-10 32×32: official python batches (downloaded with checksum) or train/test JPEG class folders",
        Config=CifarConfig,
        build=build_cifar10,
        default_name=lambda cfg: "cifar10",
        raw_files=CIFAR10_RAW,
        version=2,
    ),
)
DATASETS.add(
    "cifar100",
    DatasetSpec(
        name="cifar100",
        task="vision",
        summary="CIFAR-100 32×32, fine labels, from the official python archive (downloaded with checksum)",
        Config=CifarConfig,
        build=build_cifar100,
        default_name=lambda cfg: "cifar100",
        raw_files=CIFAR100_RAW,
        version=2,
    ),
)
