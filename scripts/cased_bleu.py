"""Add cased BLEU to the NMT records whose BLEU was lowercased (issue 29 #10).

Every NMT record made before cased BLEU was reported scores lowercased BLEU (the data is lowercased
at preparation, so sacreBLEU ran with ``lowercase=True``: ``case:lc`` in its signature). The papers print
cased BLEU. The records keep each hypothesis and its reference as written, so cased BLEU is recomputed
here from the recorded predictions with sacreBLEU itself and added beside the recorded number, which is
checked first (the recomputed lowercased score must equal it). Nothing else in a record changes.

    python scripts/cased_bleu.py [results/nmt]   # idempotent; prints one line per record it touched
"""

from __future__ import annotations

import sys
from pathlib import Path

import sacrebleu

from attn_cli.io import read_json, write_json
from attn_cli.tables.base import record_predictions

NOTE = "recomputed from the recorded predictions with sacreBLEU by scripts/cased_bleu.py"
UNIT = "cased BLEU (sacreBLEU's default case:mixed, 0-100, against the references as written)"


def add_cased_bleu(result_json: Path) -> float | None:
    """Add ``bleu_cased`` to one record (first among its metrics); returns it, or None when not needed."""
    rec = read_json(result_json)
    if "case:lc" not in rec.get("info", {}).get("bleu_signature", "") or "bleu_cased" in rec["metrics"]:
        return None
    rows = record_predictions(result_json)
    hyps, refs = [r["hyp"] for r in rows], [[r["ref"] for r in rows]]
    lower = sacrebleu.metrics.BLEU(lowercase=True)
    recorded = rec["metrics"]["bleu"]["value"]
    if abs(lower.corpus_score(hyps, refs).score - recorded) > 1e-9:
        raise SystemExit(f"{result_json}: the predictions do not give the recorded BLEU {recorded}; not touched")
    cased = sacrebleu.metrics.BLEU()
    value = float(cased.corpus_score(hyps, refs).score)
    rec["metrics"] = {"bleu_cased": {"value": value, "unit": UNIT}, **rec["metrics"]}
    rec["info"] = {**rec["info"], "bleu_cased_signature": str(cased.get_signature()), "bleu_cased_source": NOTE}
    write_json(result_json, rec)
    return value


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "results/nmt")
    for path in sorted(root.rglob("result.json")):
        value = add_cased_bleu(path)
        if value is not None:
            print(f"{path.parent}: cased {value:.2f}, lowercased {read_json(path)['metrics']['bleu']['value']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
