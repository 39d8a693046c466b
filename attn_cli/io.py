"""Atomic file writes, JSON/JSONL helpers and dataset manifests (DESIGN §4, §6).

Every file the suite writes goes through :func:`atomic_write` (temp file in the same
directory, fsync, rename), so a killed process never leaves a half-written file.
Whole prepared datasets are built in a temporary directory and renamed into place
by :func:`atomic_dir`. ``mkstemp``/``mkdtemp`` create their files 0600 and folders 0700
(private, for temporary files); what we rename into place gets the mode an ordinary
``open``/``mkdir`` would give, 0666/0777 less the umask, so runs and datasets stay
readable by the group or everyone exactly as the user's umask says.

A process killed mid-write leaves its temporary behind. Their names carry
:data:`TEMP_MARK`, the host and the writer's pid (``.best.ckpt.~attn-node3-4711-x8k2mdq1.ckpt``),
so :func:`remove_stale_temps` can remove exactly those of writers that no longer run
on this host, and nothing else: each atomic write first clears the stale temporaries
of its own target, and ``attn train`` clears a run directory's when it starts.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from attn_cli.errors import AttnError

TEMP_MARK = "~attn-"
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\." + re.escape(TEMP_MARK) + r"(?P<host>.+)-(?P<pid>\d+)-")


def _temp_prefix(path: Path) -> str:
    """``.<name>.~attn-<host>-<pid>-``: the start of every temporary name for ``path`` (see the module doc)."""
    return f".{path.name}.{TEMP_MARK}{socket.gethostname()}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_temps(directory: str | Path, *, target: str | None = None, recursive: bool = False) -> list[Path]:
    """Remove the temporaries that killed atomic writes left in ``directory`` (only ``target``'s if given).

    Only names this module makes, written on this host by a process that has ended, are removed; a
    temporary of a live writer (another DDP rank, a concurrent evaluation) or of another host is kept."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    host = socket.gethostname()
    pattern = f".{glob.escape(target) if target is not None else '*'}.{TEMP_MARK}*"
    removed = []
    for p in directory.rglob(pattern) if recursive else directory.glob(pattern):
        m = _TEMP_NAME.match(p.name)
        if not m or m["host"] != host or int(m["pid"]) == os.getpid() or _alive(int(m["pid"])):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_writes_seen: dict[str, int] = {}


def _killed_in_this_write(path: Path) -> bool:
    """``ATTN_FAULT_IN_WRITE=NAME:K``: the K-th atomic write of a file named NAME is where the kill-and-resume
    tests kill the process, halfway through its bytes. Never set in normal use."""
    spec = os.environ.get("ATTN_FAULT_IN_WRITE")
    if not spec or spec.rpartition(":")[0] != path.name:
        return False
    _writes_seen[path.name] = _writes_seen.get(path.name, 0) + 1
    return _writes_seen[path.name] == int(spec.rpartition(":")[2])


def current_umask() -> int:
    """The process umask. POSIX can only read it by setting it, so it is set and put straight back."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically, mode 0666 less the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, target=path.name)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
            if _killed_in_this_write(path):
                fh.write(data[: len(data) // 2])
                fh.flush()
                os._exit(137)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write to (mode 0666 less the umask); fsynced and renamed onto ``path`` when
    the block succeeds (the temporary keeps ``path``'s suffix: writers such as matplotlib choose the format by it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, target=path.name)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=path.suffix or ".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync_file(Path(tmp))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a directory (mode 0777 less the umask) in a temporary sibling and swap it into ``path``
    when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, target=path.name)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~current_umask())
    try:
        yield tmp
        if path.exists():
            old = tmp.with_name(tmp.name[: -len(".tmp")] + ".old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise AttnError(f"{path} does not exist") from err
    except json.JSONDecodeError as err:
        raise AttnError(f"{path} is not valid JSON (line {err.lineno}); re-create it") from err


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return atomic_write(path, text)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise AttnError(f"{path} does not exist")
    rows = []
    opener = gzip.open if path.suffix == ".gz" else open  # recorded predictions over 2 MB are gzipped
    lineno = 0
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise AttnError(f"{path}:{lineno} is not valid JSON") from err
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise AttnError(f"{path} is a truncated or corrupt gzip file (after line {lineno}); copy it again") from err
    except UnicodeDecodeError as err:
        raise AttnError(f"{path}:{lineno + 1} is not UTF-8 text; copy the file again") from err
    if not rows:
        raise AttnError(f"{path} is empty: no predictions to score; run `attn eval` again")
    return rows


PREDICTION_FLOATS = "prediction_floats"  # result.json key: "float32" when its predictions are written as such


def _as_float32(value: float) -> float:
    """``value`` rounded to the nearest float32, as a Python float (round to nearest even: IEEE 754 §4.3.1)."""
    import struct

    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def _float32_text(value: float) -> str:
    """The shortest decimal that names ``value`` as a float32 (numpy's Dragon4: ``152.03423``, nine significant
    digits at most); :func:`float32_jsonl` checks that each one casts back to ``value``."""
    import numpy as np

    return str(np.float32(value))


def _dumps_float32(obj: Any) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` with every float written by :func:`_float32_text`."""
    if isinstance(obj, float):
        return _float32_text(obj)
    if isinstance(obj, dict):
        items = (f"{json.dumps(k, ensure_ascii=False)}: {_dumps_float32(v)}" for k, v in obj.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(obj, list):
        return "[" + ", ".join(_dumps_float32(v) for v in obj) + "]"
    return json.dumps(obj, ensure_ascii=False)


def restore_float32(obj: Any) -> Any:
    """``obj`` with every float cast through float32: the values a file written by :func:`float32_jsonl` held
    before it was shortened (its ``152.03423`` is float32's 152.0342254638672, which evaluation wrote)."""
    if isinstance(obj, float):
        return _as_float32(obj)
    if isinstance(obj, dict):
        return {k: restore_float32(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [restore_float32(v) for v in obj]
    return obj


def _floats(obj: Any) -> Iterator[float]:
    if isinstance(obj, float):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _floats(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _floats(v)


def float32_jsonl(text: str) -> str | None:
    """JSON lines ``text`` (as :func:`write_jsonl` writes them) with every float in its shortest float32 form, or
    None when that would lose anything: a float that is not a float32 value (a float64 result, a rounded
    ``0.0051``), not finite, no float at all, or a line that does not come back byte for byte.

    Models compute in float32 and evaluation writes each value's float64 repr (``152.0342254638672``, 17
    digits, most of them noise to gzip); nine digits at most name a float32 exactly, so a file of per-example
    losses shrinks by about a third gzipped. The shortened file is exact only for a reader that casts back
    through float32 (:func:`restore_float32`); a record says so in its result.json (:data:`PREDICTION_FLOATS`)
    and :func:`read_predictions` does the cast."""
    out, seen = [], False
    for line in text.splitlines(keepends=True):
        try:
            row = json.loads(line)
            floats = list(_floats(row))
            if any(not math.isfinite(v) or _as_float32(v) != v for v in floats):
                return None
            short = _dumps_float32(row) + "\n"
            back = json.dumps(restore_float32(json.loads(short)), ensure_ascii=False) + "\n"
        except json.JSONDecodeError:
            return None
        if back != line:
            return None
        out.append(short)
        seen = seen or bool(floats)
    return "".join(out) if seen else None


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """A predictions file's rows as evaluation wrote them: :func:`read_jsonl`, with the floats cast back through
    float32 (:func:`restore_float32`) when a ``result.json`` beside it lists the file and declares
    ``"prediction_floats": "float32"`` (a record's file shortened by :func:`float32_jsonl`)."""
    path = Path(path)
    rows = read_jsonl(path)
    result = path.parent / "result.json"
    if result.is_file():
        info = read_json(result)
        if info.get(PREDICTION_FLOATS) == "float32" and path.name in info.get("predictions", []):
            return [restore_float32(row) for row in rows]
    return rows


CURVE_OF = "learning_curve_of"  # result.json: the sibling record (same dataset folder) whose curve this one's is
RECIPE_OF = "recipe_of"  # result.json: the sibling record whose recipe.yaml this one's is
# what a record may share with its sibling instead of holding a copy (attn_cli.records.shared_file): result.json's
# key -> the file's names
SHARED = {CURVE_OF: ("learning_curve.csv", "learning_curve.csv.gz"), RECIPE_OF: ("recipe.yaml",)}


def read_curve(folder: str | Path) -> list[dict[str, str]]:
    """A record's learning curve, ``learning_curve.csv`` or, when it was large, ``learning_curve.csv.gz``
    (attn_cli.records gzips it like other text over ``RECORD_GZIP_OVER``), or that of the sibling record its
    result.json names as ``learning_curve_of`` (a validation record sharing its test record's run and curve,
    attn_cli.records.shared_file); [] when the record has none."""
    import csv

    folder = Path(folder)
    for path, opener in ((folder / "learning_curve.csv", open), (folder / "learning_curve.csv.gz", gzip.open)):
        if path.is_file():
            with opener(path, "rt", encoding="utf-8", newline="") as fh:
                return list(csv.DictReader(fh))
    result = folder / "result.json"
    if result.is_file() and (sibling := read_json(result).get(CURVE_OF)):
        return read_curve(folder.parent / sibling) if sibling != folder.name else []
    return []


def record_file(folder: str | Path, name: str) -> Path:
    """A record's ``recipe.yaml`` (``name``): its own, or that of the sibling record its result.json names as
    ``recipe_of`` (a validation record sharing its test record's run and recipe, attn_cli.records.shared_file).
    The path returned may not exist (a record that has none). Here, not in attn_cli.records, so that the tables
    read it without importing torch."""
    folder = Path(folder)
    own = folder / name
    result = folder / "result.json"
    key = next((k for k, names in SHARED.items() if name in names), None)
    if own.is_file() or key is None or not result.is_file():
        return own
    sibling = read_json(result).get(key)
    return folder.parent / sibling / name if sibling and sibling != folder.name else own


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_enabled() -> bool:
    """False when ``ATTN_OFFLINE`` says so: then nothing (datasets, pretrained weights) is fetched."""
    return os.environ.get("ATTN_OFFLINE", "") not in ("1", "true", "yes")


def read_text_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file, gzip or plain; BOM stripped; clear errors for bad bytes or truncation."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError as err:
        raise AttnError(f"{path} does not exist") from err
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
        raise AttnError(f"{path} is a truncated or corrupt gzip file ({err}); download it again") from err
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise AttnError(
            f"{path} line {line} is not valid UTF-8 (byte {err.start}); re-encode the file as UTF-8"
        ) from err
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # final newline; a missing one is fine
    return [ln.rstrip("\r") for ln in lines]
