"""The one door from the runtime to the preparation layer, :mod:`data_prep`.

``data_prep`` depends on ``attn_cli`` (vocabularies, the manifest contract, the generators in
``attn_cli/data/``) and never the reverse, with one exception kept here: preparing a dataset is a use
case (``attn prepare``, the demo, the CLI's name index), so :mod:`attn_cli.run` and :mod:`attn_cli.names`
reach the datasets through :func:`preparation`. The import is lazy, so training and evaluation never load
the preparers; ``tests/test_layers.py`` allows no other ``data_prep`` import in ``attn_cli``
(docs/architecture.md).
"""

from __future__ import annotations

from types import ModuleType


def preparation() -> ModuleType:
    """:mod:`data_prep.base`, with its ``DATASETS`` registry and ``run_prepare``."""
    import data_prep.base

    return data_prep.base
