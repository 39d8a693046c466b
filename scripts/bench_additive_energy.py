#!/usr/bin/env python3
"""The additive score's energies, blocked (:func:`attn_cli.attention.scores.additive_energy`) beside the plain
broadcast formula, CPU seconds per call at one thread, for the shapes the models give it.

A benchmark, not a test: it records figures for results/bench/ and asserts nothing. For each shape
(B sentences, Tq queries each, Tk keys, A = attention width) it times, alternating plain and blocked
``ROUNDS`` times, the forward alone (no gradient: beam search) and forward + backward (training), and
reports the CPU seconds per call of this process (``time.process_time``: on a shared machine the figure
to compare; wall time depends on the neighbours) and the largest difference of the energies.

    nice -n 19 .venv/bin/python scripts/bench_additive_energy.py --out results/bench/speed-ab/additive-energy.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from attn_cli.attention.scores import CHUNK_ELEMENTS, additive_energy

SHAPES = {  # name: (B, Tq, Tk, A)
    "training step, Multi30k (B 64, Tk 13)": (64, 1, 13, 256),
    "beam-5 step, Multi30k mean source (Tk 13)": (64, 5, 13, 256),
    "beam-5 step, Multi30k longest test batch (Tk 25)": (64, 5, 25, 256),
    "beam-5 step, 40-word sources": (64, 5, 40, 256),
    "show-attend-tell step, 14x14 features (A 512)": (32, 1, 196, 512),
}


def plain(q: torch.Tensor, keys: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The score's formula as one broadcast tensor, as AdditiveScore computed it before the blocks."""
    return torch.nn.functional.linear(torch.tanh_(q.unsqueeze(2) + keys.unsqueeze(1)), v).squeeze(-1)


def blocked(q: torch.Tensor, keys: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return additive_energy(q, keys, v)


def backward(call: Callable[[], torch.Tensor], grad: torch.Tensor) -> None:
    call().backward(grad)


def per_call(fn: Callable[[], object], calls: int) -> float:
    fn()
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = []
    for name, (b, tq, tk, a) in SHAPES.items():
        q = torch.randn(b, tq, a, requires_grad=True)
        keys = torch.randn(b, tk, a, requires_grad=True)
        v = torch.randn(1, a, requires_grad=True)
        grad = torch.randn(b, tq, tk)
        with torch.no_grad():
            diff = (plain(q, keys, v) - blocked(q, keys, v)).abs().max().item()
        times: dict[str, list[float]] = {"plain": [], "blocked": [], "plain+backward": [], "blocked+backward": []}
        for _ in range(args.rounds):
            for label, fn in (("plain", plain), ("blocked", blocked)):
                call = functools.partial(fn, q, keys, v)
                with torch.no_grad():
                    times[label].append(per_call(call, args.calls))
                times[f"{label}+backward"].append(
                    per_call(functools.partial(backward, call, grad), max(1, args.calls // 2))
                )
        ms = {k: round(statistics.median(t) * 1e3, 3) for k, t in times.items()}
        rows.append(
            {
                "shape": name,
                "B, Tq, Tk, A": [b, tq, tk, a],
                "median ms per call": ms,
                "plain / blocked, search": round(ms["plain"] / ms["blocked"], 2),
                "plain / blocked, training": round(ms["plain+backward"] / ms["blocked+backward"], 2),
                "max |difference| of the energies": diff,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    record = {
        "command": " ".join(["python", *sys.argv]),
        "git_sha": sha,
        "torch": torch.__version__,
        "threads": 1,
        "chunk_elements": CHUNK_ELEMENTS,
        "rounds": args.rounds,
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
        "rows": rows,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
