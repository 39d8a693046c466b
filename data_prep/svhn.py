"""SVHN (Netzer et al. 2011), format 2 (cropped 32×32 digits: ``{train,test,extra}_32x32.mat``).

The .mat files are MATLAB v5; they are read by the small v5 reader below (numeric arrays,
zlib-compressed or not), so scipy is not needed. ``X`` is (32, 32, 3, N) uint8 and ``y`` is
(N, 1) with 10 standing for the digit 0 (mapped to 0 here).

Format 1 (full house-number images with ``digitStruct.mat``) is MATLAB v7.3, i.e. HDF5, which
needs h5py; it is not supported here and asks for format 2 instead.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from attn_cli.registry import DATASETS
from data_prep.base import DatasetSpec, RawFile
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
        raise AttnError(f"{path} is MATLAB v7.3 (HDF5, SVHN format 1); use the format-2 *_32x32.mat files")
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
