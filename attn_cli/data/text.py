"""Parallel text for NMT: vocabularies, datasets, padding collate, the datamodule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from attn_cli.data.base import AttnDataModule
from attn_cli.data.common import eval_loader, train_loader
from attn_cli.data.prepared import require_prepared
from attn_cli.data.preprocess import Preprocessor, read_parallel
from attn_cli.data.vocab import BOS, EOS, PAD, SPECIALS, UNK
from attn_cli.errors import AttnError


@dataclass(frozen=True)
class NmtDataConfig:
    dataset: str = "toy-reorder"  # a prepared dataset under the data dir
    # random: batches of train.batch_size sentences drawn at random; bucket: the same, similar lengths together (less
    # padding, but a batch of short sentences weighs as much as one of long ones); tokens: similar lengths together,
    # up to batch_tokens tokens per batch (sentences × the longest source or target), so every token weighs the same
    batching: Literal["random", "bucket", "tokens"] = "random"
    batch_tokens: int = 0  # with batching: tokens; train.batch_size then sets only the pools' size (50 × it)
    eval_batch_size: int = 64
    max_len: int = 0  # drop longer training pairs at load time (tokens); 0: keep all

    def __post_init__(self) -> None:
        if (self.batching == "tokens") != (self.batch_tokens > 0):
            raise AttnError(
                f"data.batching={self.batching} with data.batch_tokens={self.batch_tokens}: token batches need both "
                "data.batching=tokens and a positive data.batch_tokens (e.g. 960), the other batchings neither"
            )


class Vocab:
    def __init__(self, itos: list[str]) -> None:
        if tuple(itos[: len(SPECIALS)]) != SPECIALS:
            raise AttnError(f"vocabulary must start with {SPECIALS}; re-run `attn prepare`")
        self.itos = itos
        self.stoi = {t: i for i, t in enumerate(itos)}

    @classmethod
    def read(cls, path: Path) -> Vocab:
        return cls([line.split("\t", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()])

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.stoi.get(t, UNK) for t in tokens]

    def decode(self, ids: list[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def __len__(self) -> int:
        return len(self.itos)


class Detokenizer:
    """Back from model tokens to text for BLEU: Moses detokenisation, sentencepiece decoding, or spaces."""

    def __init__(self, prepared: Path, manifest: dict[str, Any]) -> None:
        self.kind = "spm" if manifest.get("subword") == "sentencepiece" else manifest.get("tokenizer", "space")
        if self.kind == "spm":
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_file=str(prepared / "spm.tgt.model"))
        if self.kind in ("moses", "spm"):
            from sacremoses import MosesDetokenizer

            self._moses = MosesDetokenizer(lang=manifest["config"]["tgt_lang"])

    def __call__(self, tokens: list[str]) -> str:
        if self.kind == "spm":
            tokens = self._sp.decode_pieces(tokens).split()
            return self._moses.detokenize(tokens)
        if self.kind == "moses":
            return self._moses.detokenize(tokens)
        return " ".join(tokens)


class ParallelDataset(Dataset):
    def __init__(
        self, src: list[list[str]], tgt: list[list[str]], refs: list[str] | None, sv: Vocab, tv: Vocab
    ) -> None:
        self.src_tokens, self.refs = src, refs
        self.src = [torch.tensor(sv.encode(s), dtype=torch.long) for s in src]
        self.tgt = [torch.tensor(tv.encode(t), dtype=torch.long) for t in tgt]

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        return i, self.src[i], self.tgt[i]


def collate(items: list[tuple[int, torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pad a batch: src (B, Tk) + lengths, tgt_in = [<s>] + y, tgt_out = y + [</s>] (B, Tq)."""
    ids = torch.tensor([i for i, _, _ in items])
    src_len = torch.tensor([max(1, len(s)) for _, s, _ in items])
    tgt_len = torch.tensor([len(t) + 1 for _, _, t in items])
    b = len(items)
    src = torch.full((b, int(src_len.max())), PAD, dtype=torch.long)
    tgt_in = torch.full((b, int(tgt_len.max())), PAD, dtype=torch.long)
    tgt_out = torch.full_like(tgt_in, PAD)
    for row, (_, s, t) in enumerate(items):
        if len(s):
            src[row, : len(s)] = s
        else:
            src[row, 0] = UNK  # an empty source line still gets one position to attend to
        tgt_in[row, 0] = BOS
        tgt_in[row, 1 : len(t) + 1] = t
        tgt_out[row, : len(t)] = t
        tgt_out[row, len(t)] = EOS
    return {"ids": ids, "src": src, "src_len": src_len, "tgt_in": tgt_in, "tgt_out": tgt_out}


def _read_tokens(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


class TextDataModule(AttnDataModule):
    def __init__(self, cfg: NmtDataConfig, data_dir: Path, batch_size: int, seed: int, num_workers: int = 0) -> None:
        super().__init__()
        self.cfg, self.batch_size, self.seed, self.num_workers = cfg, batch_size, seed, num_workers
        self.root = Path(data_dir) / cfg.dataset
        hint = (
            f"attn prepare nmt --dataset {cfg.dataset.split('-')[0]} --source DIR"
            if cfg.dataset != "toy-reorder"
            else "attn prepare toy-reorder"
        )
        self.manifest = require_prepared(Path(data_dir), cfg.dataset, hint)
        if self.manifest.get("task") != "nmt":
            raise AttnError(f"dataset {cfg.dataset!r} is a {self.manifest.get('task')} dataset, not parallel text")
        self.src_vocab = Vocab.read(self.root / "vocab.src")
        self.tgt_vocab = Vocab.read(self.root / "vocab.tgt")
        self.detok = Detokenizer(self.root, self.manifest)
        self.meta = {
            "src_vocab": len(self.src_vocab),
            "tgt_vocab": len(self.tgt_vocab),
            "pad_id": PAD,
            "vocab": {"src": self.src_vocab.itos, "tgt": self.tgt_vocab.itos},
            "lowercase": bool(self.manifest.get("lowercase", False)),
            "dataset": cfg.dataset,
        }
        self.splits: dict[str, ParallelDataset] = {}
        self.file_splits: list[str] = []  # parallel files scored with this dataset's preprocessing

    def split_names(self) -> list[str]:
        return ["train", "val", "test", *self.file_splits]

    def preprocessor(self, side: Literal["src", "tgt"]) -> Preprocessor:
        """The tokenizer, lowercasing and subwords this dataset was prepared with, for new text."""
        return Preprocessor.of_prepared(self.root, self.manifest, side)

    def add_file_split(self, name: str, src: Path, ref: Path) -> list[str]:
        """Score any parallel file pair (plain or .gz, ``attn eval nmt --src --ref``) as split ``name``: both
        sides cut by :meth:`preprocessor` as at preparation, words outside the training vocabulary mapped to
        ``<unk>`` (as the test split's are), ``ref`` kept raw as the BLEU reference. Returns the fixes made
        (byte-order marks stripped)."""
        if name in self.split_names():
            raise AttnError(f"--name {name} is a split of dataset {self.cfg.dataset}; choose another name")
        fixes: list[str] = []
        src_lines, ref_lines = read_parallel(Path(src), Path(ref), fixes)
        src_prep, tgt_prep = self.preprocessor("src"), self.preprocessor("tgt")
        self.splits[name] = ParallelDataset(
            [src_prep(line) for line in src_lines],
            [tgt_prep(line) for line in ref_lines],
            [line.strip() for line in ref_lines],
            self.src_vocab,
            self.tgt_vocab,
        )
        self.file_splits.append(name)
        return fixes

    def dataset(self, split: str) -> ParallelDataset:
        """Split ``split`` as a dataset (tokens, ids, raw references), read on first use and kept."""
        if split not in self.splits:
            src = _read_tokens(self.root / f"{split}.src")
            tgt = _read_tokens(self.root / f"{split}.tgt")
            refs = None
            ref_path = self.root / f"{split}.ref"
            if ref_path.is_file():
                refs = ref_path.read_text(encoding="utf-8").split("\n")[:-1]
            if split == "train" and self.cfg.max_len:
                keep = [
                    i for i in range(len(src)) if len(src[i]) <= self.cfg.max_len and len(tgt[i]) <= self.cfg.max_len
                ]
                src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
            self.splits[split] = ParallelDataset(src, tgt, refs, self.src_vocab, self.tgt_vocab)
        return self.splits[split]

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val") if stage == "fit" else ():
            self.dataset(split)

    def train_dataloader(self) -> Any:
        ds = self.dataset("train")
        lengths = None
        if self.cfg.batching == "bucket":
            lengths = [len(s) for s in ds.src]
        elif self.cfg.batching == "tokens":  # the padded grid a sentence needs: its source, or its target with EOS
            lengths = [max(len(s), len(t) + 1) for s, t in zip(ds.src, ds.tgt)]
        return train_loader(
            ds,
            self.batch_size,
            self.seed,
            collate,
            lengths=lengths,
            num_workers=self.num_workers,
            tokens=self.cfg.batch_tokens,
        )

    def val_dataloader(self) -> Any:
        return self.split_loader("val")

    def split_loader(self, split: str) -> Any:
        ds = self.dataset(split)
        return eval_loader(ds, self.cfg.eval_batch_size, collate, lengths=[len(s) for s in ds.src], num_workers=0)
