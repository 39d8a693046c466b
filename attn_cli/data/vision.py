"""Prepared image datasets (uint8 .npy, see :mod:`data_prep.mnist`) as a LightningDataModule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from attn_cli.data.base import AttnDataModule
from attn_cli.data.common import eval_loader, train_loader
from attn_cli.data.distort import DIGITS, redistort
from attn_cli.data.prepared import require_prepared
from attn_cli.errors import AttnError


@dataclass(frozen=True)
class VisionDataConfig:
    dataset: str = "glyphs"  # a prepared dataset under the data dir
    # binarised images (DRAW's generation task), see :func:`binarize_split`:
    #   fixed     each pixel drawn once from Bernoulli(intensity) with a seed that depends only on the split
    #             (the stochastically binarised MNIST of Salakhutdinov & Murray 2008, which DRAW's Table 2 uses);
    #   dynamic   training images redrawn every batch (seeded by the batch's epoch-tagged ids, so a resumed
    #             run draws the same bytes); validation and test are the fixed draw;
    #   threshold / true   intensity > 0.5 (before 2026-11-26 `true` was the only mode: its NLLs are not
    #             comparable with the papers'); false: grey levels in [0, 1]
    binarize: Literal["fixed", "dynamic", "threshold"] | bool = False
    n_train: int = 0  # use only the first n training images (0: all) — for CPU budgets
    eval_batch_size: int = 256
    # train on fresh distortions: every batch re-derives its images from the dataset's source digits
    # (a derived dataset: mnist-rts, mnist-cluttered-60, ...) with a draw fixed by (seed, epoch, batch);
    # validation and test stay the prepared, fixed sets
    resample: bool = False


BINARIZE_SEED = 20080716  # Salakhutdinov & Murray, ICML 2008: one fixed draw per split, whatever the run's seed
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def binarize_mode(value: str | bool) -> str:
    """``data.binarize`` as one of ``none``, ``threshold``, ``fixed``, ``dynamic`` (``true`` is ``threshold``)."""
    if value is True:
        return "threshold"
    return "none" if value is False else str(value)


def bernoulli_u8(x_u8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw of pixel ~ Bernoulli(intensity / 255), as uint8 0/255."""
    p = np.asarray(x_u8, dtype=np.float32) / 255.0
    return np.where(rng.random(p.shape, dtype=np.float32) < p, 255, 0).astype(np.uint8)


def binarize_split(x_u8: np.ndarray, split: str, chunk: int = 4096) -> np.ndarray:
    """A fixed stochastic binarisation: pixel ~ Bernoulli(intensity / 255), as uint8 0/255.

    The draw depends only on the split and the image's position (``BINARIZE_SEED``), never on the
    run's seed or ``data.n_train``, so every run trains and is scored on the same bytes — the
    property the binarised MNIST of DRAW's Table 2 (Salakhutdinov & Murray 2008) has. It is our
    own draw, not their files: bounds are comparable with each other exactly, with the paper's up
    to the draw.
    """
    out = np.empty(x_u8.shape, dtype=np.uint8)
    rng = np.random.default_rng([BINARIZE_SEED, _SPLIT_CODES.get(split, 3)])
    for lo in range(0, len(x_u8), chunk):  # chunks keep the float copy small; the draw is the same stream
        out[lo : lo + chunk] = bernoulli_u8(x_u8[lo : lo + chunk], rng)
    return out


class ImageSet(Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray, np.ndarray]:
        return i, self.x[i], self.y[i]


class Collate:
    """Items -> a batch; ``threshold`` binarises here (``fixed`` images arrive binarised)."""

    def __init__(self, binarize: str = "none") -> None:
        self.binarize = binarize

    def __call__(self, items: list[tuple[int, np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        return self.batch([it[0] for it in items], np.stack([it[1] for it in items]), np.stack([it[2] for it in items]))

    def batch(self, ids: list[int], x_u8: np.ndarray, y: np.ndarray) -> dict[str, torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(x_u8)).float() / 255.0  # (B, C, H, W)
        if x.ndim == 3:
            x = x[:, None]
        if self.binarize == "threshold":
            x = (x > 0.5).float()
        return {
            "ids": torch.tensor(ids),
            "x": x,
            "y": torch.from_numpy(np.asarray(y)).long(),  # (B,) or (B, K)
        }


class ResampleCollate(Collate):
    """Source digits -> a fresh draw of the derived construction, one generator per batch.

    The sampler hands out ``epoch * n + i`` (:class:`~attn_cli.data.common.TrainBatches` with
    ``epoch_ids``), so the draw depends only on (seed, epoch, the batch's examples): the same
    bytes after a resume, new ones every epoch.
    """

    def __init__(self, binarize: str, kind: str, seed: int, n: int) -> None:
        super().__init__(binarize)
        self.kind, self.seed, self.n = kind, seed, n

    def __call__(self, items: list[tuple[int, np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        ids = [it[0] for it in items]
        rng = np.random.default_rng([self.seed, *ids[:1], len(ids)])
        x, y = redistort(self.kind, np.stack([it[1] for it in items]), np.stack([it[2] for it in items]), rng)
        if self.binarize == "dynamic":
            x = bernoulli_u8(x, rng)
        return self.batch([i % self.n for i in ids], x, y)


class DynamicBinarizeCollate(Collate):
    """Training images binarised afresh every batch, the draw fixed by (seed, epoch, the batch's ids)."""

    def __init__(self, seed: int, n: int) -> None:
        super().__init__("none")
        self.seed, self.n = seed, n

    def __call__(self, items: list[tuple[int, np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        ids = [it[0] for it in items]
        rng = np.random.default_rng([self.seed, BINARIZE_SEED, *ids[:1], len(ids)])
        x = bernoulli_u8(np.stack([it[1] for it in items]), rng)
        return self.batch([i % self.n for i in ids], x, np.stack([it[2] for it in items]))


class EpochIds(Dataset):
    """``ImageSet`` indexed by ``epoch * n + i`` (the sampler's epoch-tagged ids)."""

    def __init__(self, base: ImageSet) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, v: int) -> tuple[int, np.ndarray, np.ndarray]:
        _, x, y = self.base[v % len(self.base)]
        return v, x, y


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
        self.binarize = binarize_mode(cfg.binarize)
        self.collate = Collate(self.binarize)

    def dataset(self, split: str) -> ImageSet:
        """Split ``split`` as a dataset (images, labels), read on first use and kept."""
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
            fixed = self.binarize == "fixed" or (self.binarize == "dynamic" and split != "train")
            self._sets[split] = ImageSet(binarize_split(x, split) if fixed else np.asarray(x), y)
        return self._sets[split]

    def setup(self, stage: str | None = None) -> None:
        return None

    def train_dataloader(self) -> Any:
        if self.cfg.resample:
            digits = EpochIds(self._digits())
            if self.binarize == "fixed":
                raise AttnError(
                    "data.binarize: fixed keeps one draw per image, data.resample makes new images every batch; "
                    "use data.binarize: dynamic (or threshold) with data.resample"
                )
            collate = ResampleCollate(self.binarize, self.manifest["derived"], self.seed, len(digits))
            return train_loader(
                digits, self.batch_size, self.seed, collate, num_workers=self.num_workers, epoch_ids=True
            )
        train = self.dataset("train")
        if self.binarize == "dynamic":
            return train_loader(
                EpochIds(train),
                self.batch_size,
                self.seed,
                DynamicBinarizeCollate(self.seed, len(train)),
                num_workers=self.num_workers,
                epoch_ids=True,
            )
        return train_loader(train, self.batch_size, self.seed, self.collate, num_workers=self.num_workers)

    def _digits(self) -> ImageSet:
        """The training split's source digits, for ``data.resample``."""
        name = self.cfg.dataset
        if "derived" not in self.manifest:
            raise AttnError(
                f"data.resample needs a derived dataset (mnist-rts, mnist-cluttered-60, ...); {name!r} is not one"
            )
        try:
            x = np.load(self.root / f"{DIGITS}_x.npy")
            y = np.load(self.root / f"{DIGITS}_y.npy")
        except (FileNotFoundError, ValueError) as err:
            raise AttnError(
                f"{self.root} has no source digits to resample (prepared by an older attn); "
                f"run `attn prepare vision --dataset {name} --source DIR --force`"
            ) from err
        if self.cfg.n_train:
            x, y = x[: self.cfg.n_train], y[: self.cfg.n_train]
        return ImageSet(x, y)

    def val_dataloader(self) -> Any:
        return self.split_loader("val")

    def split_loader(self, split: str) -> Any:
        return eval_loader(self.dataset(split), self.cfg.eval_batch_size, self.collate, num_workers=self.num_workers)
