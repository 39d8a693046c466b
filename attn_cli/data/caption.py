"""Prepared caption datasets (:mod:`data_prep.captions` layout) as a LightningDataModule.

Training items are (image, caption) pairs — every kept caption of every training image (or the
first ``captions_per_image``), as Xu et al. train on each caption. Evaluation items are images:
the batch carries every tokenised reference (for perplexity) and the row keeps every raw
reference (for BLEU/METEOR/ROUGE-L/CIDEr). Inputs are pixels (``{split}_x.npy``) or features
(``{split}_feats.npy``, from :func:`attn_cli.nn.image_encoders.extract_features`, cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from attn_cli.data.base import AttnDataModule
from attn_cli.data.common import eval_loader, train_loader
from attn_cli.data.prepared import require_prepared
from attn_cli.data.vocab import BOS, EOS, PAD
from attn_cli.errors import AttnError
from attn_cli.io import read_json, read_jsonl


@dataclass(frozen=True)
class CaptionDataConfig:
    dataset: str = "glyphs-captions"  # a prepared dataset under the data dir
    n_train: int = 0  # use only the first n training images (0: all) — for CPU budgets
    n_eval: int = 0  # use only the first n images of val/test (0: all) — keeps predictions small
    captions_per_image: int = 0  # training captions per image (0: all kept)
    eval_batch_size: int = 100


class CaptionSplit:
    """One split: inputs (memory-mapped array) and the per-image records of ``{split}.jsonl``."""

    def __init__(self, x: np.ndarray, items: list[dict[str, Any]]) -> None:
        if len(x) != len(items):
            raise AttnError(f"{len(x)} inputs but {len(items)} caption records; run `attn prepare ... --force`")
        self.x, self.items = x, items

    def __len__(self) -> int:
        return len(self.items)


class TrainPairs(Dataset):
    def __init__(self, split: CaptionSplit, per_image: int) -> None:
        self.split = split
        self.pairs = [
            (i, k) for i, item in enumerate(split.items) for k in range(len(item["tokens"][: per_image or None]))
        ]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, j: int) -> dict[str, Any]:
        i, k = self.pairs[j]
        item = self.split.items[i]
        out = {"id": i, "x": self.split.x[i], "caps": [item["tokens"][k]]}
        if "boxes" in item:  # [label, x0, y0, x1, y1] per object (digit captions): attention supervision
            out["boxes"] = item["boxes"]
        return out


class EvalImages(Dataset):
    def __init__(self, split: CaptionSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"id": i, "x": self.split.x[i], "caps": self.split.items[i]["tokens"]}


def to_input(x: np.ndarray) -> torch.Tensor:
    """uint8 pixels -> [0, 1] floats; features stay as they are (float32)."""
    t = torch.from_numpy(np.array(x))  # a copy: memory-mapped arrays are read-only
    return t.float() / 255.0 if t.dtype == torch.uint8 else t.float()


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Inputs (B, ...), and every caption flattened: tok_in/tok_out (N, T) with cap_img (N,) its image row."""
    caps = [(b, c) for b, it in enumerate(items) for c in it["caps"]]
    t = max((len(c) for _, c in caps), default=0) + 1
    tok_in = torch.full((len(caps), t), PAD, dtype=torch.long)
    tok_out = torch.full((len(caps), t), PAD, dtype=torch.long)
    for n, (_, c) in enumerate(caps):
        tok_in[n, : len(c) + 1] = torch.tensor([BOS, *c])
        tok_out[n, : len(c) + 1] = torch.tensor([*c, EOS])
    batch = {
        "ids": torch.tensor([it["id"] for it in items]),
        "x": torch.stack([to_input(it["x"]) for it in items]),
        "tok_in": tok_in,
        "tok_out": tok_out,
        "cap_img": torch.tensor([b for b, _ in caps], dtype=torch.long),
    }
    if items and all("boxes" in it for it in items):
        batch["boxes"] = [it["boxes"] for it in items]  # per image (a list: not moved to the device)
    return batch


class CaptionDataModule(AttnDataModule):
    def __init__(self, cfg: CaptionDataConfig, data_dir: Path, batch_size: int, seed: int, num_workers: int) -> None:
        super().__init__()
        self.cfg, self.root = cfg, Path(data_dir) / cfg.dataset
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.manifest = require_prepared(
            Path(data_dir),
            cfg.dataset,
            f"attn prepare caption --dataset {cfg.dataset}"
            + ("" if cfg.dataset.startswith("glyphs") else " --source DIR"),
        )
        try:
            self.itos: list[str] = read_json(self.root / "vocab.json")["itos"]
        except (FileNotFoundError, KeyError, ValueError) as err:
            raise AttnError(f"{self.root}/vocab.json is missing or damaged; run `attn prepare ... --force`") from err
        self._splits: dict[str, CaptionSplit] = {}
        kind = self.manifest.get("kind", "image")
        if kind == "captions_only":
            raise AttnError(
                f"{cfg.dataset} was prepared with encoder=none (captions only); "
                "prepare it again with --set encoder=resnet50 (needs torchvision) to train on it"
            )
        train = self.dataset("train")
        longest = max((len(c) for it in train.items for c in it["tokens"]), default=1)
        self.meta: dict[str, Any] = {
            "dataset": cfg.dataset,
            "itos": self.itos,
            "vocab_size": len(self.itos),
            "pad_id": PAD,
            "bos_id": BOS,
            "eos_id": EOS,
            "input_kind": kind,
            "input_shape": list(train.x.shape[1:]),
            "max_len": int(longest) + 5,
            "has_boxes": bool(train.items) and all("boxes" in it for it in train.items),
        }

    def dataset(self, split: str) -> CaptionSplit:
        """Split ``split`` as a dataset (image or video inputs, items with references), read on first use."""
        if split not in self._splits:
            if split not in ("train", "val", "test"):
                raise AttnError(f"unknown split {split!r}; valid: train, val, test")
            items_path = self.root / f"{split}.jsonl"
            x_path = next(
                (p for p in (self.root / f"{split}_x.npy", self.root / f"{split}_feats.npy") if p.is_file()), None
            )
            if not items_path.is_file() or x_path is None:
                raise AttnError(f"{self.root}: {split} files missing; run `attn prepare caption --dataset ... --force`")
            try:
                x = np.load(x_path, mmap_mode="r")
                items = read_jsonl(items_path)
            except ValueError as err:
                raise AttnError(f"{x_path.parent}: {split} files damaged ({err}); prepare the dataset again") from err
            limit = self.cfg.n_train if split == "train" else self.cfg.n_eval
            if limit:
                x, items = x[:limit], items[:limit]
            self._splits[split] = CaptionSplit(x, items)
        return self._splits[split]

    def setup(self, stage: str | None = None) -> None:
        return None

    def train_dataloader(self) -> Any:
        pairs = TrainPairs(self.dataset("train"), self.cfg.captions_per_image)
        return train_loader(pairs, self.batch_size, self.seed, collate, num_workers=self.num_workers)

    def val_dataloader(self) -> Any:
        return self.split_loader("val")

    def split_loader(self, split: str) -> Any:
        return eval_loader(
            EvalImages(self.dataset(split)), self.cfg.eval_batch_size, collate, num_workers=self.num_workers
        )
