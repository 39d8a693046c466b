"""Draw the NTM tasks' learning curves (Graves et al. 2014, Fig. 3, 7, 10, 13, 18) from the recorded runs.

For each task of :data:`attn_cli.data.copy_tasks.NTM_TASKS`, the records of the NTM with an LSTM
controller, with a feed-forward controller and of the LSTM baseline that exist under
``results/memory/ntm-<task>/`` become one figure, cost per sequence (bits) against sequences seen, drawn
from each record's ``learning_curve.csv`` (nothing is re-run). N-grams get the Bayes-optimal cost of
their test set as a floor.

    python scripts/ntm_learning_curves.py [results]   # writes results/memory/figures/ntm-<task>-learning-curves.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from attn_cli.data.copy_tasks import NTM_TASKS
from attn_cli.io import read_curve, read_json
from attn_cli.viz.memory import learning_curves

MODELS = (("NTM, LSTM controller", "ntm"), ("NTM, feed-forward controller", "ntm-ff"), ("LSTM", "ntm-lstm"))


def draw_all(results: Path) -> list[Path]:
    """One figure per task with at least one record; returns the figures written."""
    paths = []
    for kind in NTM_TASKS:
        folder = results / "memory" / f"ntm-{kind}"
        records = {label: folder / f"{prefix}-{kind}" for label, prefix in MODELS}
        records = {k: v for k, v in records.items() if read_curve(v)}
        if not records:
            continue
        floor = None
        for rec in records.values():
            floor = read_json(rec / "result.json")["metrics"].get("optimal_bits_per_seq", {}).get("value", floor)
        out = results / "memory" / "figures" / f"ntm-{kind}-learning-curves.png"
        paths.append(learning_curves(records, out, title=f"NTM {kind}: cost per sequence (bits)", floor=floor))
    return paths


if __name__ == "__main__":
    for path in draw_all(Path(sys.argv[1] if len(sys.argv) > 1 else "results")):
        print(path)
