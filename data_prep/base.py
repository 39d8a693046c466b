"""The preparation protocol shared by every dataset.

A dataset registers a :class:`DatasetSpec` in ``DATASETS``. ``attn prepare`` builds
the spec's ``Config`` from the command line, then :func:`run_prepare` calls
``spec.build(cfg, source, out)`` on a temporary directory and renames it into
``<data-dir>/<name>`` only when it succeeded, with ``manifest.json`` written last:
a half-prepared dataset is never visible. Raw files come from ``--source`` or, when
``spec.download`` is set and the network is reachable, from the official location
with checksums.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attn_cli import __version__
from attn_cli.config import to_dict
from attn_cli.errors import AttnError
from attn_cli.io import atomic_dir, download_enabled, read_json, remove_stale_temps, sha256_file, write_json
from attn_cli.registry import Registry

PREP_VERSION = 1


@dataclass(frozen=True)
class RawFile:
    """A file of an official distribution: where to get it and what it must hash to."""

    name: str
    url: str
    sha256: str | None = None
    md5: str | None = None  # a published MD5; checked only when no SHA-256 is known


@dataclass
class DatasetSpec:
    name: str
    task: str
    summary: str
    Config: type
    build: Callable[[Any, Path | None, Path], dict[str, Any]]
    default_name: Callable[[Any], str]
    raw_files: list[RawFile] = field(default_factory=list)
    needs_source: bool = True  # False for generated datasets
    version: int = 1  # raised when this dataset's prepared files change (2: CIFAR, CUB, Dogs, Cars, GTSRB shuffled)


# the preparation layer's own registry: every module of this package registers its datasets here, and the
# runtime reaches it only through its one entry point, attn_cli.run.preparation (docs/architecture.md)
DATASETS: Registry[DatasetSpec] = Registry("dataset", plugins=("data_prep",))


def download(files: list[RawFile], dest: Path, dataset: str) -> Path:
    """Fetch official files into ``dest`` (verifying checksums); offline -> one clear error."""
    dest.mkdir(parents=True, exist_ok=True)
    for raw in files:
        target = dest / raw.name
        if target.is_file() and _matches(raw, target):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        try:
            with urllib.request.urlopen(raw.url, timeout=30) as resp, tmp.open("wb") as fh:
                while block := resp.read(1 << 20):
                    fh.write(block)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            tmp.unlink(missing_ok=True)
            raise AttnError(
                f"cannot download {dataset} ({raw.url}: {getattr(err, 'reason', err)}); "
                f"offline? pass --source DIR with the official files"
            ) from err
        if raw.sha256 and (got := sha256_file(tmp)) != raw.sha256:
            tmp.unlink(missing_ok=True)
            raise AttnError(f"{raw.url} has checksum {got[:12]}…, expected {raw.sha256[:12]}…; download again")
        if not raw.sha256 and raw.md5 and (got := md5_file(tmp)) != raw.md5:
            tmp.unlink(missing_ok=True)
            raise AttnError(f"{raw.url} has MD5 {got[:12]}…, expected {raw.md5[:12]}…; download again")
        os.replace(tmp, target)
    return dest


def _matches(raw: RawFile, path: Path) -> bool:
    """Whether an already downloaded file has the published checksum (none published: keep it)."""
    if raw.sha256:
        return sha256_file(path) == raw.sha256
    return raw.md5 is None or md5_file(path) == raw.md5


def resolve_source(spec: DatasetSpec, source: Path | None, data_dir: Path) -> Path | None:
    if source is not None:
        if not Path(source).exists():
            raise AttnError(f"--source {source} does not exist; point it at the official {spec.name} files")
        return Path(source)
    if not spec.needs_source:
        return None
    if spec.raw_files and download_enabled():
        return download(spec.raw_files, data_dir / "raw" / spec.name, spec.name)
    raise AttnError(f"{spec.name} needs its raw files: pass --source DIR (no download available offline)")


def run_prepare(
    spec: DatasetSpec, cfg: Any, *, source: Path | None, data_dir: Path, name: str | None, force: bool
) -> Path:
    name = name or spec.default_name(cfg)
    out = data_dir / name
    src = resolve_source(spec, source, data_dir)
    manifest_path = out / "manifest.json"
    config = to_dict(cfg)
    if manifest_path.is_file() and not force:
        old = read_json(manifest_path)
        if (
            old.get("config") == config
            and old.get("source") == (str(src) if src else None)
            and old.get("prep_version") == PREP_VERSION
            and old.get("dataset_version", 1) == spec.version
        ):
            return out  # idempotent: same inputs, same outputs
    remove_stale_temps(data_dir)  # what killed preparations of any dataset left behind
    with atomic_dir(out) as tmp:
        facts = spec.build(cfg, src, tmp)
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        write_json(
            tmp / "manifest.json",
            {
                "dataset": spec.name,
                "task": spec.task,
                "name": name,
                "config": config,
                "source": str(src) if src else None,
                "prepared": dt.datetime.now().isoformat(timespec="seconds"),
                "attn_version": __version__,
                "prep_version": PREP_VERSION,
                "dataset_version": spec.version,
                "files": files,
                **facts,
            },
        )
    return out


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
