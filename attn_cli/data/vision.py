"""Prepared image datasets (uint8 .npy, see :mod:`data_prep.mnist`) as a LightningDataModule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from attn_cli.data.common import eval_loader, train_loader
from attn_cli.errors import AttnError
from attn_cli.tasks.base import AttnDataModule
from data_prep.base import require_prepared


@dataclass(frozen=True)
class VisionDataConfig:
    dataset: str = "glyphs"  # a prepared dataset under the data dir
    binarize: bool = False  # threshold at 0.5 (DRAW's binarised MNIST)
    n_train: int = 0  # use only the first n training images (0: all) — for CPU budgets
    eval_batch_size: int = 256


class ImageSet(Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray, np.ndarray]:
        return i, self.x[i], self.y[i]


class Collate:
    def __init__(self, binarize: bool) -> None:
        self.binarize = binarize

    def __call__(self, items: list[tuple[int, np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        x = torch.from_numpy(np.stack([it[1] for it in items])).float() / 255.0  # (B, C, H, W)
        if self.binarize:
            x = (x > 0.5).float()
        return {
            "ids": torch.tensor([it[0] for it in items]),
            "x": x,
            "y": torch.from_numpy(np.stack([it[2] for it in items])).long(),  # (B,) or (B, K)
        }


class VisionDataModule(AttnDataModule):
    def __init__(self, cfg: VisionDataConfig, data_dir: Path, batch_size: int, seed: int, num_workers: int) -> None:
        super().__init__()
        self.cfg, self.root = cfg, Path(data_dir) / cfg.dataset
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.manifest = require_prepared(
            Path(data_dir),
            cfg.dataset,
            f"attn prepare {cfg.dataset}" + ("" if cfg.dataset.startswith("glyphs") else " --source DIR"),
        )
        self._sets: dict[str, ImageSet] = {}
        y = np.load(self.root / "train_y.npy", mmap_mode="r")
        self.meta: dict[str, Any] = {
            "image_shape": list(self.manifest["image_shape"]),
            "classes": int(self.manifest["classes"]),
            "seq_len": int(y.shape[1]) if y.ndim == 2 else 1,
            "dataset": cfg.dataset,
        }
        self.collate = Collate(cfg.binarize)

    def _load(self, split: str) -> ImageSet:
        if split not in self._sets:
            try:
                x = np.load(self.root / f"{split}_x.npy", mmap_mode="r")
                y = np.load(self.root / f"{split}_y.npy")
            except (FileNotFoundError, ValueError) as err:
                raise AttnError(
                    f"{self.root}: {split} files missing or damaged; run `attn prepare {self.cfg.dataset} --force`"
                ) from err
            if split == "train" and self.cfg.n_train:
                x, y = x[: self.cfg.n_train], y[: self.cfg.n_train]
            self._sets[split] = ImageSet(np.asarray(x), y)
        return self._sets[split]

    def setup(self, stage: str | None = None) -> None:
        return None

    def train_dataloader(self) -> Any:
        return train_loader(self._load("train"), self.batch_size, self.seed, self.collate, num_workers=self.num_workers)

    def val_dataloader(self) -> Any:
        return self.split_loader("val")

    def split_loader(self, split: str) -> Any:
        return eval_loader(self._load(split), self.cfg.eval_batch_size, self.collate, num_workers=self.num_workers)
