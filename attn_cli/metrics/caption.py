"""Caption metrics from pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr (the COCO caption protocol).

Captions are tokenised with pycocoevalcap's PTB tokenizer (Java), then scored against
all references. METEOR runs a Java jar: without Java it is skipped with a one-line
warning; newlines inside a caption (which make the METEOR subprocess hang) are
replaced by spaces before anything is scored.
"""

from __future__ import annotations

import shutil
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

CAPTION_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider")


def java_available() -> bool:
    return shutil.which("java") is not None


def _clean(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def caption_scores(
    hypotheses: Mapping[Any, str],
    references: Mapping[Any, Sequence[str]],
    *,
    tokenize: bool = True,
    meteor: bool = True,
) -> dict[str, float]:
    """Scores in [0, 1] (as pycocoevalcap reports them) keyed by :data:`CAPTION_METRICS`.

    ``meteor=False`` skips METEOR (its Java subprocess costs seconds; e.g. for validation during training).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    ids = sorted(hypotheses, key=str)
    missing = [i for i in ids if not references.get(i)]
    if missing:
        raise ValueError(f"no references for image id {missing[0]!r}")
    # pycocoevalcap's input: {id: [{"caption": text}]}; its tokenizer (or our fallback) turns it into {id: [text]}
    res_raw = {i: [{"caption": _clean(hypotheses[i])}] for i in ids}
    gts_raw = {i: [{"caption": _clean(r)} for r in references[i]] for i in ids}
    have_java = java_available()
    if tokenize and have_java:
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        tok = PTBTokenizer()
        gts: dict[Any, list[str]] = tok.tokenize(gts_raw)
        res: dict[Any, list[str]] = tok.tokenize(res_raw)
    else:
        if tokenize:
            warnings.warn(
                "Java not found: captions are lower-cased and split on spaces instead of PTB-tokenised", stacklevel=2
            )
        res = {i: [" ".join(c["caption"].lower().split()) for c in v] for i, v in res_raw.items()}
        gts = {i: [" ".join(c["caption"].lower().split()) for c in v] for i, v in gts_raw.items()}
    out: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)})
    if have_java and meteor:
        score = _meteor(gts, res)
        if score is not None:
            out["meteor"] = score
    elif meteor:
        warnings.warn("Java not found: METEOR skipped (install a JRE, e.g. openjdk-17-jre-headless)", stacklevel=2)
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    out["cider"] = float(Cider().compute_score(gts, res)[0])
    return out


METEOR_TIMEOUT_S = 300.0


def _meteor(gts: dict[Any, list[str]], res: dict[Any, list[str]], timeout: float = METEOR_TIMEOUT_S) -> float | None:
    """pycocoevalcap's METEOR with a watchdog: its Java subprocess can block forever (a JVM that fails to
    start, a caption it cannot parse); after ``timeout`` seconds it is killed and METEOR skipped with a warning."""
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    result: dict[str, float] = {}

    def work() -> None:
        result["meteor"] = float(scorer.compute_score(gts, res)[0])

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        scorer.meteor_p.kill()  # the blocked readline returns; the worker dies holding the scorer's lock ...
        thread.join(5.0)
        if scorer.lock.locked():
            scorer.lock.release()  # ... which pycocoevalcap's __del__ would wait for forever
        warnings.warn(f"METEOR did not answer within {timeout:.0f} s; skipped", stacklevel=3)
        return None
    if hasattr(scorer, "close"):
        scorer.close()
    if "meteor" not in result:
        warnings.warn("METEOR failed (see the error above); skipped", stacklevel=3)
    return result.get("meteor")
