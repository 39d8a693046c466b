"""What every captioning dataset shares: caption preprocessing, the vocabulary, the prepared layout.

Preprocessing follows the papers (Xu et al. 2015 §5.1 and Karpathy & Fei-Fei's split files
that it uses): lower-case, PTB-style tokens (clitics and punctuation split off, as the PTB
tokenizer of the COCO caption toolkit does), punctuation-only tokens dropped, a vocabulary of
the words seen at least ``min_freq`` times in the *training* captions (most frequent first,
capped at ``max_vocab``), training captions longer than ``max_len`` tokens dropped. Every
reference is kept untouched for evaluation, where pycocoevalcap tokenises it itself.

Prepared layout (``<data-dir>/<name>/``)::

    vocab.json            {"itos": ["<pad>", "<unk>", "<s>", "</s>", word, ...]}
    {split}.jsonl         one image (or video) per line: {"id", "refs": [raw captions],
                          "tokens": [[word ids] per kept caption], optional "file", "boxes",
                          "cells", "segments"}
    {split}_x.npy         uint8 pixels (N, C, H, W) or (N, T, C, H, W), for generated data
    {split}_feats.npy     float16 features (N, L, D) or (N, T, D), for real data with features
    manifest.json         written last by data_prep.base.run_prepare; ``kind`` says which input
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from attn_cli.data.vocab import SPECIALS, UNK
from attn_cli.errors import AttnError
from attn_cli.io import write_json, write_jsonl

SPLITS = ("train", "val", "test")

# PTB conventions: split clitics ('s n't 're ...), split every punctuation mark off its word
_CLITICS = re.compile(r"(?i)(\w)('s|'re|'ve|'ll|'d|'m|n't)\b")
_PUNCT = re.compile(r"([^\w\s'])")
_WORD = re.compile(r"\w")


def ptb_tokenize(text: str) -> list[str]:
    """Lower-cased PTB-style tokens without punctuation: ``"A man's hat."`` -> ``["a", "man", "'s", "hat"]``."""
    text = " ".join(text.lower().replace("\r", " ").replace("\n", " ").split())
    text = _CLITICS.sub(r"\1 \2", text)
    text = _PUNCT.sub(r" \1 ", text)
    return [tok for tok in text.split() if _WORD.search(tok)]


def build_vocab(captions: Iterable[Sequence[str]], min_freq: int = 1, max_vocab: int = 0) -> list[str]:
    """``itos``: the specials, then words by descending training frequency (ties alphabetical)."""
    counts = Counter(tok for cap in captions for tok in cap)
    words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    if max_vocab:
        words = words[: max(0, max_vocab - len(SPECIALS))]
    return [*SPECIALS, *words]


def encode(tokens: Sequence[str], stoi: dict[str, int]) -> list[int]:
    return [stoi.get(t, UNK) for t in tokens]


def write_caption_splits(
    out: Path,
    splits: dict[str, list[dict[str, Any]]],
    *,
    min_freq: int = 1,
    max_vocab: int = 0,
    max_len: int = 0,
) -> dict[str, Any]:
    """Tokenise every item's ``refs``, build the vocabulary on train, write ``{split}.jsonl`` + ``vocab.json``.

    ``splits[split]`` is a list of items ``{"id": int, "refs": [str, ...], ...}`` (other keys are kept).
    Returns manifest facts (counts, vocabulary size, captions dropped for length).
    """
    if not splits.get("train"):
        raise AttnError("the training split has no images with captions; check --source")
    tokenised = {s: [[ptb_tokenize(r) for r in item["refs"]] for item in items] for s, items in splits.items()}
    itos = build_vocab((c for caps in tokenised["train"] for c in caps), min_freq, max_vocab)
    stoi = {w: i for i, w in enumerate(itos)}
    facts: dict[str, Any] = {"counts": {}, "captions": {}, "vocab_size": len(itos), "too_long_dropped": 0}
    for split, items in splits.items():
        rows = []
        for item, caps in zip(items, tokenised[split]):
            if not item["refs"]:
                raise AttnError(f"{split} image {item.get('file', item['id'])} has no caption; every image needs one")
            kept = [c for c in caps if c and (not max_len or len(c) <= max_len or split != "train")]
            facts["too_long_dropped"] += len(caps) - len(kept)
            rows.append({**item, "tokens": [encode(c, stoi) for c in kept]})
        write_jsonl(out / f"{split}.jsonl", rows)
        facts["counts"][split] = len(rows)
        facts["captions"][split] = sum(len(r["refs"]) for r in rows)
    write_json(out / "vocab.json", {"itos": itos})
    return facts
