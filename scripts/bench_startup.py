#!/usr/bin/env python3
"""Start-up time of the light `attn` commands: median of N runs, CPU seconds and wall, load average.

A benchmark, not a test: it records figures for results/bench/ and asserts nothing. Each command
runs as ``python -m attn_cli ARGS`` in a fresh interpreter with ``--tree`` as its working
directory, so the same script can time an older checkout (``git worktree add /tmp/old SHA``)
beside this one. CPU seconds (user + system of the child) are the figure to compare on a
shared machine; wall time is reported too, with the load average it was measured under.

    python scripts/bench_startup.py                       # -> results/bench/startup-cpu.json
    python scripts/bench_startup.py --tree /tmp/old --label before --out results/bench/startup-cpu-before.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = (
    ("--help",),
    ("recipes",),
    ("recipes", "nmt"),
    ("table", "xu"),
    ("table", "nmt"),
    ("table", "--list"),
    ("train", "nmtt", "--recipe", "x"),
    ("train", "nmt", "--recipe", "bahdanu"),
    ("train", "nmt", "--recipe", "tiny/seq2seq", "--set", "model.hiden=3"),
    ("eval", "nmtt", "--run", "x"),
)


def time_once(args: tuple[str, ...], tree: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the child, exit code) of one ``python -m attn_cli ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "attn_cli", *args],
        cwd=tree,
        capture_output=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def git_sha(tree: Path) -> str:
    if "ATTN_GIT_SHA" in os.environ:
        return os.environ["ATTN_GIT_SHA"]
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout whose attn_cli is timed")
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "startup-cpu.json")
    opts = parser.parse_args()

    rows, loads = [], []
    started = time.perf_counter()
    for args in COMMANDS:
        walls, cpus, codes = [], [], set()
        for _ in range(opts.runs):
            loads.append(os.getloadavg()[0])
            wall, cpu, code = time_once(args, opts.tree)
            walls.append(round(wall, 3))
            cpus.append(round(cpu, 3))
            codes.add(code)
        row = {
            "command": "attn " + shlex.join(args),
            "exit_codes": sorted(codes),
            "cpu_s_median": round(statistics.median(cpus), 3),
            "wall_s_median": round(statistics.median(walls), 3),
            "cpu_s": cpus,
            "wall_s": walls,
        }
        rows.append(row)
        print(f"{row['command']:<60} cpu {row['cpu_s_median']:6.2f} s   wall {row['wall_s_median']:6.2f} s")
    record = {
        "what": "start-up time of attn commands (python -m attn_cli ARGS, fresh interpreter each run), "
        f"median of {opts.runs}",
        "label": opts.label,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "git_sha": git_sha(opts.tree),
        "hardware": {"cpus": os.cpu_count(), "machine": platform.machine(), "processor": platform.processor()},
        "python": platform.python_version(),
        "load_average_1min": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
        "bench_wall_s": round(time.perf_counter() - started, 1),
        "note": "CPU seconds are user + system time of the child process; wall time was measured on a shared "
        "machine under the load average above, so compare CPU seconds",
        "results": rows,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
