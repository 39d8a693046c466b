"""Corpus BLEU through sacrebleu, on detokenised strings, with its signature (DESIGN §5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics.bleu import BLEU


@dataclass(frozen=True)
class BleuResult:
    score: float
    signature: str
    precisions: tuple[float, ...]
    brevity_penalty: float
    sys_len: int
    ref_len: int


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    lowercase: bool = False,
    tokenize: str = "13a",
) -> BleuResult:
    """sacrebleu's corpus BLEU; ``references`` is one stream or several (each aligned with hypotheses)."""
    refs: list[list[str]] = (
        [[str(r) for r in references]]
        if references and isinstance(references[0], str)
        else [list(r) for r in references]
    )
    bleu = BLEU(lowercase=lowercase, tokenize=tokenize)
    result = bleu.corpus_score(list(hypotheses), refs)
    return BleuResult(
        score=float(result.score),
        signature=str(bleu.get_signature()),
        precisions=tuple(float(p) for p in result.precisions),
        brevity_penalty=float(result.bp),
        sys_len=int(result.sys_len),
        ref_len=int(result.ref_len),
    )
