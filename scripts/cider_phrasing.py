"""How much of a moving-digits CIDEr score is the choice of phrasing? (docs/caption.md)

Every video of ``moving-mnist-captions`` has five references, one per phrasing template, in the
generator's order (data_prep/moving_mnist.py). CIDEr averages the TF-IDF cosine with each reference
separately, so a caption's score depends on which template it follows, even when it is exactly
right: the oracle column scores, for each video, the reference written in the hypothesis' own
template. The ratio (CIDEr / oracle) is the share of the attainable score a model reaches in the
phrasings it chose. Reads the recorded predictions; prints one line per record.

    python scripts/cider_phrasing.py [results/caption/moving-mnist-captions]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pycocoevalcap.cider.cider import Cider

from attn_cli.tables.base import record_predictions

DIGITS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}


def template(hyp: str, refs: list[str]) -> int:
    """The template a caption follows: the reference sharing most of its non-content bigrams."""

    def frame(s: str) -> Counter:
        words = ["D" if w in DIGITS else w for w in s.split()]
        return Counter(zip(words, words[1:]))

    h = frame(hyp)
    return max(range(len(refs)), key=lambda k: sum((h & frame(refs[k])).values()))


def main(root: Path) -> None:
    for result in sorted(root.glob("*/result.json")):
        rows = record_predictions(result)
        gts = {r["id"]: r["refs"] for r in rows}
        chosen = {r["id"]: template(r["hyp"], r["refs"]) for r in rows}
        score, _ = Cider().compute_score(gts, {r["id"]: [r["hyp"]] for r in rows})
        oracle, _ = Cider().compute_score(gts, {r["id"]: [r["refs"][chosen[r["id"]]]] for r in rows})
        digits = sum([w for w in r["hyp"].split() if w in DIGITS] == [w for w in r["refs"][0].split() if w in DIGITS]
                     for r in rows) / len(rows)  # fmt: skip
        mix = Counter(chosen.values())
        print(
            f"{result.parent.name:30s} CIDEr {score:.3f}  oracle {oracle:.3f}  ratio {score / oracle:.3f}  "
            f"digits right {digits:.3f}  templates {[mix.get(k, 0) for k in range(5)]}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/caption/moving-mnist-captions"))
