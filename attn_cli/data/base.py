"""The datamodule base every modality's datamodule extends.

It lives in the data layer, below the tasks that use it (docs/architecture.md): a datamodule reads prepared
data and knows nothing of the task that trains on it.
"""

from __future__ import annotations

from typing import Any

import lightning as L


class AttnDataModule(L.LightningDataModule):
    """A datamodule that also exposes ``meta`` (vocabulary sizes etc.) and per-split loaders."""

    meta: dict[str, Any]

    def split_loader(self, split: str) -> Any:
        raise NotImplementedError

    def split_names(self) -> list[str]:
        return ["train", "val", "test"]
