#!/usr/bin/env python3
"""Beam-search speed of two checkouts side by side: CPU seconds of decoding a split, A B A B ...

A benchmark, not a test: it records figures for results/bench/ and asserts nothing. Each run is a
fresh interpreter with TREE first on its path (so an older checkout, e.g. a clone of main, decodes
with its own code; each run checks where attn_cli came from) that loads the checkpoint, then times ``module.decode`` over every batch of the split
alone (no checkpoint loading, no scoring) in CPU seconds of that process (user + system; on a
shared machine the figure to compare, wall time depends on the neighbours). Runs alternate between
the trees so that a change of load hits both; the ratio is taken within each pair. Each run also
reports a digest of every hypothesis's tokens, so that identical output is checked, not assumed.

    python scripts/bench_decode_ab.py --checkpoint RUN/checkpoints/best.ckpt --tree /tmp/base --tree . \\
        --pairs 3 --out results/bench/decode-ab.json

With ``--threads 1 --threads-b 2 --tree . --tree .`` it compares thread counts on one checkout instead
(``speedup_wall``, A's wall time over B's, is then the figure: CPU seconds grow with the threads); with
``--threads 2 --workers-b 2`` one batch at a time on two threads against two batches at once on one thread
each (``eval.workers``: :class:`attn_cli.tasks.base.PredictWorkers`, as ``attn eval`` runs them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import hashlib, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[6])  # before `python -c`'s working directory, which may be another checkout
import torch
import attn_cli
from attn_cli.registry import TASKS
from attn_cli.tasks.base import load_checkpoint

ckpt, data_dir, split, beam, threads = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
workers = int(sys.argv[7])
torch.set_num_threads(threads)
module, rec = load_checkpoint(Path(ckpt), "nmt")
module.eval()
dm = TASKS.get("nmt").datamodule(rec, data_dir)
dm.setup("test")
batches = list(dm.split_loader(split))
digest, n, log_prob = hashlib.sha256(), 0, 0.0
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu0, wall0 = usage.ru_utime + usage.ru_stime, time.perf_counter()
outputs = []
with torch.no_grad():
    if workers > 1:
        from attn_cli.tasks.base import PredictWorkers
        pool = PredictWorkers(workers, max(1, threads // workers))
        for batch in batches:
            pool.submit(lambda b=batch: [module.decode(b, beam)])
        outputs = pool.finish()
    else:
        for batch in batches:
            outputs.append(module.decode(batch, beam))
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu, wall = usage.ru_utime + usage.ru_stime - cpu0, time.perf_counter() - wall0
for hyps in outputs:
    for h in hyps:
        digest.update(json.dumps(h.tokens).encode())
        n += 1
        log_prob += h.log_prob
print(json.dumps({"cpu_s": cpu, "wall_s": wall, "sentences": n, "tokens_sha256": digest.hexdigest(),
                  "sum_log_prob": log_prob, "code": str(Path(attn_cli.__file__).parent.parent)}))
"""


def run(tree: Path, args: argparse.Namespace, threads: int, workers: int = 1) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}  # for anything the child spawns
    cmd = [sys.executable, "-c", CHILD, str(args.checkpoint), str(args.data), args.split, str(args.beam)]
    cmd += [str(threads), str(tree.resolve()), str(workers)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    row: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(str(row["code"])) != tree.resolve():
        raise SystemExit(f"{tree}: the child imported attn_cli from {row['code']}")
    sha = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
    row.update(tree=str(tree), git=sha.stdout.strip(), threads=threads, workers=workers, load_1min=os.getloadavg()[0])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--tree", type=Path, action="append", required=True, help="twice: A (baseline), then B")
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--threads-b", type=int, help="B's thread count, when it differs from A's (--threads)")
    parser.add_argument("--workers", type=int, default=1, help="batches searched at once (threads // workers each)")
    parser.add_argument("--workers-b", type=int, help="B's worker count, when it differs from A's (--workers)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    base, new = args.tree
    threads_b = args.threads_b or args.threads
    workers_b = args.workers_b or args.workers
    runs = []
    for _ in range(args.pairs):
        pair = [run(base, args, args.threads, args.workers), run(new, args, threads_b, workers_b)]
        runs.append(pair)
        print(json.dumps(pair), flush=True)
    ratios = [a["cpu_s"] / b["cpu_s"] for a, b in runs]  # type: ignore[operator]
    wall = [a["wall_s"] / b["wall_s"] for a, b in runs]  # type: ignore[operator]
    summary = {
        "checkpoint": str(args.checkpoint),
        "beam": args.beam,
        "threads": [args.threads, threads_b],
        "workers": [args.workers, workers_b],
        "split": args.split,
        "pairs": runs,
        "speedup_cpu": {"min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)},
        "speedup_wall": {"min": min(wall), "median": statistics.median(wall), "max": max(wall)},
        "identical_output": len({r["tokens_sha256"] for pair in runs for r in pair}) == 1,
    }
    args.out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: summary[k] for k in ("speedup_cpu", "speedup_wall", "identical_output")}))


if __name__ == "__main__":
    main()
