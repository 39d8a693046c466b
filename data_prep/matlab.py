"""MATLAB v5 cells, structs and strings: what the Stanford Dogs lists and the Stanford Cars devkit hold.

:func:`data_prep.svhn.read_mat5` reads numeric arrays only (SVHN format 2); this reader also returns
char arrays as ``str``, cell arrays as lists (column-major order) and struct arrays as lists of dicts,
walking the same data elements (:func:`data_prep.svhn._elements`). Array layout (MATLAB "MAT-File
Format", v5): a miMATRIX element holds array flags (class in the low byte), dimensions, name, then the
class's payload — real part for numbers, UTF-16/UTF-8 code units for chars, one miMATRIX per cell, and
for structs the field-name length, the names, and one miMATRIX per (element, field).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.svhn import _TYPES, MI_COMPRESSED, MI_MATRIX, _elements

CELL, STRUCT, CHAR = 1, 2, 4


def _value(payload: bytes, endian: str) -> tuple[str, Any]:
    sub = _elements(payload, endian)
    if not sub:  # an empty miMATRIX: MATLAB's []
        return "", None
    cls = struct.unpack(endian + "I", sub[0][1][:4])[0] & 0xFF
    dims = tuple(int(d) for d in np.frombuffer(sub[1][1], dtype=endian + "i4"))
    name = sub[2][1].decode("ascii")
    n = int(np.prod(dims))
    if cls == CELL:
        return name, [_value(p, endian)[1] for _, p in sub[3 : 3 + n]]
    if cls == STRUCT:
        width = struct.unpack(endian + "i", sub[3][1][:4])[0]
        blob = sub[4][1]
        fields = [blob[i : i + width].split(b"\0")[0].decode("ascii") for i in range(0, len(blob), width)]
        values = [_value(p, endian)[1] for _, p in sub[5:]]
        k = len(fields)
        return name, [dict(zip(fields, values[e * k : (e + 1) * k])) for e in range(n)]
    rtype, real = sub[3]
    if cls == CHAR:
        codes = np.frombuffer(real, dtype=endian + "u2") if rtype in (4, 17) else np.frombuffer(real, dtype="u1")
        if rtype == 16:  # miUTF8
            return name, real.decode("utf-8")
        return name, "".join(map(chr, codes.reshape(dims, order="F").reshape(-1, order="C")))
    if rtype not in _TYPES:
        raise AttnError(f"MATLAB element type {rtype} is not supported")
    return name, np.frombuffer(real, dtype=endian + _TYPES[rtype]).reshape(dims, order="F")


def read_mat5_any(path: Path) -> dict[str, Any]:
    """Every variable of a MATLAB v5 .mat file: numbers as arrays, strings, cells as lists, structs as dicts."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise AttnError(f"{path} does not exist") from err
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        raise AttnError(f"{path} is not a MATLAB v5 .mat file (bad header); download it again")
    endian = "<" if data[126:128] == b"IM" else ">"
    out: dict[str, Any] = {}
    try:
        todo = _elements(data[128:], endian)
        while todo:
            mtype, payload = todo.pop(0)
            if mtype == MI_COMPRESSED:
                todo = _elements(zlib.decompress(payload), endian) + todo
            elif mtype == MI_MATRIX:
                name, value = _value(payload, endian)
                out[name] = value
    except (AttnError, zlib.error, struct.error, IndexError, ValueError, UnicodeDecodeError) as err:
        raise AttnError(f"{path} is a damaged MATLAB file ({err}); download it again") from err
    return out
