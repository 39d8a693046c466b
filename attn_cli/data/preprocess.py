"""Source and target text cut into tokens exactly as ``attn prepare`` cut the training text.

``attn prepare`` writes an NMT dataset through these functions and ``attn translate`` / ``attn eval nmt
--src`` rebuild them from the manifest; they live in the runtime so that the preparation layer imports
them and not the reverse (docs/architecture.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from attn_cli.errors import AttnError
from attn_cli.io import read_text_lines


class Tokenizer:
    """Moses tokenisation (sacremoses, no escaping) or plain whitespace splitting; optional lowercasing."""

    def __init__(self, kind: str, lang: str, lowercase: bool) -> None:
        self.kind, self.lowercase = kind, lowercase
        if kind == "moses":
            from sacremoses import MosesTokenizer

            self._moses = MosesTokenizer(lang=lang)

    def __call__(self, line: str) -> list[str]:
        text = line.strip()
        if self.lowercase:
            text = text.lower()
        if self.kind == "moses":
            return self._moses.tokenize(text, escape=False)
        return text.split()


def segment(tokens: list[str], sp: Any | None) -> list[str]:
    """Split words into the sentencepiece pieces of a prepared dataset (``sp``), or keep them (``None``)."""
    return sp.encode(" ".join(tokens), out_type=str) if sp is not None else tokens


class Preprocessor:
    """One side's preprocessing as its prepared dataset applied it: :class:`Tokenizer` (Moses or spaces,
    lowercasing), then :func:`segment` with the side's sentencepiece model. ``attn prepare`` writes the
    dataset through these functions and ``attn translate`` / ``attn eval nmt --src`` rebuild them from the
    manifest, so new text is cut exactly as the training text was."""

    def __init__(self, tokenizer: Tokenizer, sp: Any | None) -> None:
        self.tokenizer, self.sp = tokenizer, sp

    @classmethod
    def of_prepared(cls, prepared: Path, manifest: dict[str, Any], side: Literal["src", "tgt"]) -> Preprocessor:
        config = manifest.get("config") or {}
        lang = config.get(f"{side}_lang", "en")
        tokenizer = Tokenizer(manifest.get("tokenizer", "space"), lang, bool(manifest.get("lowercase", False)))
        sp = None
        if manifest.get("subword") == "sentencepiece":
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=str(prepared / f"spm.{side}.model"))
        return cls(tokenizer, sp)

    def __call__(self, line: str) -> list[str]:
        return segment(self.tokenizer(line), self.sp)


def read_parallel(src: Path, tgt: Path, fixes: list[str]) -> tuple[list[str], list[str]]:
    """Both sides of a parallel corpus, checked for alignment; BOMs stripped and noted in ``fixes``."""
    sides = []
    for path in (src, tgt):
        head = path.read_bytes()[:3] if path.suffix != ".gz" and path.is_file() else b""
        lines = read_text_lines(path)
        if not lines:
            raise AttnError(f"{path} is empty; a parallel corpus needs at least one sentence per side")
        if head == b"\xef\xbb\xbf" or (path.suffix == ".gz" and lines and lines[0].startswith("\ufeff")):
            fixes.append(f"stripped a UTF-8 byte-order mark from {path.name}")
        sides.append([ln.lstrip("\ufeff") if i == 0 else ln for i, ln in enumerate(lines)])
    if len(sides[0]) != len(sides[1]):
        raise AttnError(
            f"{src.name} has {len(sides[0])} lines but {tgt.name} has {len(sides[1])}; "
            "the two sides must be aligned line by line"
        )
    return sides[0], sides[1]
