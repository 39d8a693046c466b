"""The best of N restarts of a bAbI recipe, picked from the records scripts/babi_seeds.sh makes.

Sukhbaatar et al. 2015, §4.2: "repeated each training 10 times with different random initializations, and
picked the one with the lowest training error"; issue 29 asks for the pick by validation error (never by test).
Each seed S has three records of one run, RECIPE-seedS (test), RECIPE-seedS-val and RECIPE-seedS-train; this
prints each seed's errors, the spread of test error over the seeds, and the seed each rule picks with its test
error and failed tasks. The pick is :func:`attn_cli.tables.base.lowest`, as in the tables' best-of-N cells.

    python scripts/babi_best_of.py memn2n-pe-ls-rn-joint-sgd "1 2 3"                  # joint: dataset babi-1k
    python scripts/babi_best_of.py memn2n-pe-ls-rn "42 1 2" --dataset babi-1k-qa16    # one task's restarts

A missing or mismatched record is a one-line error (exit 2) naming the command that makes it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from attn_cli.errors import AttnError
from attn_cli.tables.base import load_results, lowest

SPLITS = ("train", "val", "test")
RULES = (("val", "validation error (issue 29)"), ("train", "training error (the paper's rule, §4.2)"))


def seed_records(
    results: dict[tuple[str, str, str, str], dict[str, Any]], recipe: str, seeds: list[int], dataset: str
) -> dict[int, dict[str, dict[str, Any]]]:
    """Each seed's three records, checked to come from one run."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for s in seeds:
        name = f"{recipe.replace('/', '-')}-seed{s}"
        recs = {}
        for split in SPLITS:
            rec = results.get(("memory", dataset, name, split))
            if rec is None:
                raise AttnError(
                    f"no {split} record of {name} under memory/{dataset}; "
                    f'run scripts/babi_seeds.sh {recipe} "{s}" first (or check --dataset)'
                )
            recs[split] = rec
        runs = sorted({str(rec.get("run_dir")) for rec in recs.values()})
        if len(runs) > 1:
            raise AttnError(
                f"the records of {name} come from different runs ({', '.join(runs)}); "
                "remove them and record all three splits from one run"
            )
        out[s] = recs
    return out


def metric(rec: dict[str, Any], key: str) -> float:
    if key not in rec["metrics"]:
        raise AttnError(f"{rec['_path']} has no {key}; record it again with `attn eval memory --record`")
    value = rec["metrics"][key]
    return float(value["value"] if isinstance(value, dict) else value)


def report(recs: dict[int, dict[str, dict[str, Any]]], key: str) -> list[str]:
    """The lines printed: one per seed, the spread over seeds, each rule's pick."""
    seeds = list(recs)
    err = {split: [metric(recs[s][split], key) for s in seeds] for split in SPLITS}
    failed = [metric(recs[s]["test"], "failed_tasks") for s in seeds]
    steps = sorted({recs[s]["test"].get("steps") for s in seeds}, key=str)
    lines = [f"{'seed':>6} {'train':>7} {'val':>7} {'test':>7} {'failed':>6}"]
    lines += [
        f"{s:>6} {err['train'][i]:7.1f} {err['val'][i]:7.1f} {err['test'][i]:7.1f} {failed[i]:6.0f}"
        for i, s in enumerate(seeds)
    ]
    test = err["test"]
    lines.append(
        f"N = {len(seeds)} runs ({'/'.join(map(str, steps))} updates each); test {key} over seeds: "
        f"min {min(test):.1f}, median {statistics.median(test):.1f}, max {max(test):.1f}; "
        f"failed tasks {min(failed):.0f}-{max(failed):.0f}"
    )
    for split, rule in RULES:
        i = lowest(err[split])
        lines.append(
            f"best of {len(seeds)} by {rule}: seed {seeds[i]} ({split} {err[split][i]:.1f}): "
            f"test {test[i]:.1f}, {failed[i]:.0f} failed"
        )
    return lines


def parse_seeds(text: str) -> list[int]:
    words = text.split()
    if not words or not all(w.isdigit() for w in words):
        raise AttnError(f'seeds {text!r} are not whole numbers; give them as "1 2 3"')
    seeds = [int(w) for w in words]
    if len(set(seeds)) != len(seeds):
        raise AttnError(f"seeds {text!r} repeat a seed; give each seed once")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="the recipe scripts/babi_seeds.sh ran (its records are RECIPE-seedS)")
    parser.add_argument("seeds", help='the seeds, "1 2 3"')
    parser.add_argument("--dataset", default="babi-1k", help="where the records are (babi-1k-qaN for one task)")
    parser.add_argument("--metric", default="mean_error", help="the error the rules and the spread compare")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent.parent / "results")
    args = parser.parse_args(argv)
    try:
        recs = seed_records(load_results(args.results), args.recipe, parse_seeds(args.seeds), args.dataset)
        lines = report(recs, args.metric)
    except AttnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
