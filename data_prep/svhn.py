"""SVHN (Netzer et al. 2011): format 2 (``svhn``) and format 1 (``svhn-multi``).

Format 2, cropped 32×32 digits (``{train,test,extra}_32x32.mat``): MATLAB v5 files, read by the small
v5 reader below (numeric arrays, zlib-compressed or not), so scipy is not needed. ``X`` is
(32, 32, 3, N) uint8 and ``y`` is (N, 1) with 10 standing for the digit 0 (mapped to 0 here).

Format 1, whole house-number images (``{train,test}/*.png`` with ``{train,test}/digitStruct.mat``):
the multi-digit sequences of Ba et al. (2014, DRAM §5.2) and Goodfellow et al. (2014). digitStruct.mat
is MATLAB v7.3, i.e. HDF5, read with h5py. Preprocessing as Goodfellow et al. §5.1: the union of
the digits' boxes, grown by 30% in x and y, cropped and resized to ``size``×``size`` (64); images
with more than ``max_digits`` (5) digits are dropped and counted. The label is the digit sequence
left to right padded with class 10 ("no digit") to ``max_digits``, so a DRAM recipe reads
``seq_len = 5`` outputs of 11 classes (deviation: Ba et al. emit an end token; the padding class plays
its part with a fixed number of steps). Missing images are an error; images that do not decode are
skipped and counted (``undecodable_skipped``).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import DATASETS, DatasetSpec, RawFile
from data_prep.mnist import write_splits

_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
MI_MATRIX, MI_COMPRESSED = 14, 15


def _elements(buf: bytes, endian: str) -> list[tuple[int, bytes]]:
    """Split a v5 byte stream into (type, payload) data elements (small-element format included)."""
    out, pos = [], 0
    while pos + 8 <= len(buf):
        mtype, nbytes = struct.unpack(endian + "II", buf[pos : pos + 8])
        if mtype >> 16:  # small data element: 2-byte size, 2-byte type, 4 bytes of data
            out.append((mtype & 0xFFFF, buf[pos + 4 : pos + 4 + (mtype >> 16)]))
            pos += 8
            continue
        payload = buf[pos + 8 : pos + 8 + nbytes]
        if len(payload) < nbytes:
            raise AttnError("truncated MATLAB element")
        out.append((mtype, payload))
        pos += 8 + nbytes + ((-nbytes) % 8 if mtype != MI_COMPRESSED else 0)
    return out


def read_mat5(path: Path) -> dict[str, np.ndarray]:
    """Numeric variables of a MATLAB v5 .mat file as numpy arrays (column-major order respected)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise AttnError(f"{path} does not exist") from err
    if len(data) < 128:
        raise AttnError(f"{path} is too short to be a MATLAB file")
    if data[:19] == b"MATLAB 7.3 MAT-file" or data[:8] == b"\x89HDF\r\n\x1a\n":
        raise AttnError(
            f"{path} is MATLAB v7.3 (HDF5, SVHN format 1); for svhn use the format-2 *_32x32.mat files "
            f"(format 1 is the svhn-multi dataset)"
        )
    endian = "<" if data[126:128] == b"IM" else ">"
    if data[126:128] not in (b"IM", b"MI"):
        raise AttnError(f"{path} is not a MATLAB v5 .mat file (bad header)")
    out: dict[str, np.ndarray] = {}
    try:
        todo = _elements(data[128:], endian)
        while todo:
            mtype, payload = todo.pop(0)
            if mtype == MI_COMPRESSED:
                todo = _elements(zlib.decompress(payload), endian) + todo
                continue
            if mtype != MI_MATRIX:
                continue
            sub = _elements(payload, endian)
            dims = np.frombuffer(sub[1][1], dtype=endian + "i4")
            name = sub[2][1].decode("ascii")
            rtype, real = sub[3]
            if rtype not in _TYPES:
                continue  # cells/structs/chars: not needed here
            arr = np.frombuffer(real, dtype=endian + _TYPES[rtype])
            out[name] = arr.reshape(tuple(int(d) for d in dims), order="F")
    except (zlib.error, struct.error, IndexError, ValueError) as err:
        raise AttnError(f"{path} is a damaged MATLAB file ({err}); download it again") from err
    return out


def load_svhn_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    mat = read_mat5(path)
    if "X" not in mat or "y" not in mat:
        raise AttnError(f"{path} has no X/y arrays; is it an SVHN format-2 file (*_32x32.mat)?")
    x = np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.uint8)  # (N, 3, 32, 32)
    y = mat["y"].reshape(-1).astype(np.int64) % 10  # label 10 means digit 0
    if len(x) != len(y):
        raise AttnError(f"{path}: {len(x)} images but {len(y)} labels")
    return x, y


@dataclass(frozen=True)
class SvhnConfig:
    n_val: int = 5000  # held out from the end of train
    extra: bool = False  # also train on extra_32x32.mat


def build_svhn(cfg: SvhnConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    x, y = load_svhn_split(source / "train_32x32.mat")
    if cfg.extra:
        ex, ey = load_svhn_split(source / "extra_32x32.mat")
        x, y = np.concatenate([x, ex]), np.concatenate([y, ey])
    if not 0 <= cfg.n_val < len(x):
        raise AttnError(f"n_val={cfg.n_val} must be below the {len(x)} training images")
    cut = len(x) - cfg.n_val
    splits = {
        "train": (x[:cut], y[:cut]),
        "val": (x[cut:], y[cut:]),
        "test": load_svhn_split(source / "test_32x32.mat"),
    }
    return {**write_splits(out, splits), "note": "SVHN format 2 (cropped 32×32 digits)"}


def read_digit_struct(path: Path) -> list[tuple[str, list[tuple[int, float, float, float, float]]]]:
    """``digitStruct.mat`` (MATLAB v7.3 / HDF5) -> [(file name, [(label, left, top, width, height), ...])]."""
    try:
        import h5py
    except ImportError as err:
        raise AttnError("SVHN format 1 (digitStruct.mat is MATLAB v7.3) needs h5py: pip install h5py") from err
    if not path.is_file():
        raise AttnError(f"{path} does not exist; --source must hold train/ and test/ of SVHN format 1")
    try:
        with h5py.File(path, "r") as f:
            ds = f["digitStruct"]
            names, boxes = ds["name"], ds["bbox"]
            out = []
            for i in range(names.shape[0]):
                name = "".join(chr(int(c)) for c in np.asarray(f[names[i][0]]).reshape(-1))
                box = f[boxes[i][0]]

                def field(key: str, box: Any = box) -> list[float]:
                    d = box[key]
                    if d.shape[0] == 1 and d.dtype != h5py.ref_dtype:
                        return [float(np.asarray(d).reshape(-1)[0])]
                    return [float(np.asarray(f[d[j][0]]).reshape(-1)[0]) for j in range(d.shape[0])]

                cols = [field(k) for k in ("label", "left", "top", "width", "height")]
                out.append((name, [(int(c[0]) % 10, *c[1:]) for c in zip(*cols)]))
            return out
    except (OSError, KeyError, ValueError, TypeError, IndexError) as err:
        raise AttnError(f"{path} is not an SVHN format-1 digitStruct.mat ({type(err).__name__}: {err})") from err


@dataclass(frozen=True)
class SvhnMultiConfig:
    size: int = 64  # side of the stored crops
    expand: float = 0.3  # grow the digits' union box by this share in x and y (Goodfellow et al.)
    max_digits: int = 5  # longer sequences are dropped (and counted)
    n_val: int = 5000  # held out from the end of train
    limit: int = 0  # keep the first n images of each split (0: all) — for quick trials


def _crop_sequences(cfg: SvhnMultiConfig, folder: Path) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    from PIL import Image, UnidentifiedImageError

    entries = read_digit_struct(folder / "digitStruct.mat")
    if cfg.limit:
        entries = entries[: cfg.limit]
    xs, ys, too_long, bad = [], [], 0, 0
    for name, digits in entries:
        if len(digits) > cfg.max_digits:
            too_long += 1
            continue
        path = folder / name
        if not path.is_file():
            raise AttnError(f"{path} is missing; digitStruct.mat names it (is --source the format-1 folder?)")
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            bad += 1
            continue
        left = min(d[1] for d in digits)
        top = min(d[2] for d in digits)
        right = max(d[1] + d[3] for d in digits)
        bottom = max(d[2] + d[4] for d in digits)
        gx, gy = (right - left) * cfg.expand / 2, (bottom - top) * cfg.expand / 2
        w, h = img.size
        crop = (max(0, left - gx), max(0, top - gy), min(w, right + gx), min(h, bottom + gy))
        patch = img.resize((cfg.size, cfg.size), Image.BILINEAR, box=crop)
        xs.append(np.asarray(patch, dtype=np.uint8).transpose(2, 0, 1))  # (3, size, size)
        labels = [d[0] for d in digits] + [10] * (cfg.max_digits - len(digits))
        ys.append(labels)
    if not xs:
        raise AttnError(f"{folder}: no usable image (too long: {too_long}, undecodable: {bad})")
    x = np.stack(xs)
    y = np.asarray(ys, dtype=np.int64)
    return x, y, {"too_long_skipped": too_long, "undecodable_skipped": bad}


def build_svhn_multi(cfg: SvhnMultiConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    x, y, train_counts = _crop_sequences(cfg, source / "train")
    if not 0 <= cfg.n_val < len(x):
        raise AttnError(f"n_val={cfg.n_val} must be below the {len(x)} usable training images")
    tx, ty, test_counts = _crop_sequences(cfg, source / "test")
    cut = len(x) - cfg.n_val
    splits = {"train": (x[:cut], y[:cut]), "val": (x[cut:], y[cut:]), "test": (tx, ty)}
    skipped = {k: train_counts[k] + test_counts[k] for k in train_counts}
    if any(skipped.values()):
        import sys

        print(
            f"warning: svhn-multi skipped {skipped['too_long_skipped']} images with more than "
            f"{cfg.max_digits} digits and {skipped['undecodable_skipped']} that do not decode",
            file=sys.stderr,
        )
    return {
        **write_splits(out, splits),
        **skipped,
        "note": f"SVHN format 1: digit sequences ≤ {cfg.max_digits}, padded with class 10, {cfg.size}×{cfg.size} crops",
    }


_URL = "http://ufldl.stanford.edu/housenumbers/"
DATASETS.add(
    "svhn",
    DatasetSpec(
        name="svhn",
        task="vision",
        summary="SVHN format 2 (train/test[/extra]_32x32.mat), point --source at your copy",
        Config=SvhnConfig,
        build=build_svhn,
        default_name=lambda cfg: "svhn",
        raw_files=[RawFile(n, _URL + n) for n in ("train_32x32.mat", "test_32x32.mat")],
    ),
)
DATASETS.add(
    "svhn-multi",
    DatasetSpec(
        name="svhn-multi",
        task="vision",
        summary="SVHN format 1 (train/, test/ with digitStruct.mat): digit sequences for DRAM, --source your copy",
        Config=SvhnMultiConfig,
        build=build_svhn_multi,
        default_name=lambda cfg: "svhn-multi",
    ),
)
