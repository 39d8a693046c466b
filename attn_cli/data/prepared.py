"""The runtime's side of the preparation contract: a prepared dataset is a directory with ``manifest.json``.

``data_prep`` writes the manifest last (:func:`data_prep.base.run_prepare`), so its presence means the
dataset is whole; the datamodules read it here and never import the preparation layer
(docs/architecture.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attn_cli.errors import AttnError
from attn_cli.io import read_json


def require_prepared(data_dir: Path, name: str, hint: str) -> dict[str, Any]:
    """The manifest of prepared dataset ``name``, or an error naming the command that makes it."""
    manifest = data_dir / name / "manifest.json"
    if not manifest.is_file():
        raise AttnError(f"dataset {name!r} is not prepared in {data_dir}; run `{hint}` first")
    return read_json(manifest)
