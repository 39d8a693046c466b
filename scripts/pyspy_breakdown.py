#!/usr/bin/env python3
"""Where an `attn bench nmt` run's CPU time goes, by kind of code, from a sampling profiler (py-spy).

torch.profiler charges everything that happens between two recorded operators (Python, the dispatcher, the
autograd engine, malloc, and its own per-operator bookkeeping) to the innermost open frame: in a Lightning
training step that is ``Optimizer.step#Adam.step``, because Lightning runs the forward and backward as a
closure inside ``optimizer.step`` (``profile-*-train.txt`` shows it at about a fifth of the update). py-spy
samples the native and Python stacks of the running process from outside, without adding work per operator,
so it can say what that share is made of. This script runs py-spy (``--native``) over ``python -m attn_cli
bench nmt`` (or reads a raw file it wrote before) and sorts the samples of the training updates and of the
beam search by the innermost frame's kind:

* MKL GEMM/BLAS (``mkl_*``) — the matrix products;
* oneDNN — its named kernels, plus JIT code (py-spy cannot name it; a frame without a symbol);
* ATen kernels — torch's element-wise, reduction and indexing loops (``at::native``);
* torch dispatch and autograd — the rest of libtorch/libc10 (operator dispatch, the autograd engine,
  tensor bookkeeping);
* Python — the interpreter running our model code, Lightning and torch's Python layers;
* libc — malloc/free and memory copies outside torch.

A benchmark, not a test: it writes ``results/bench/pyspy-<recipe>.txt`` and asserts nothing.

    python scripts/pyspy_breakdown.py --recipe luong-global-general --steps 120 --threads 1
    python scripts/pyspy_breakdown.py --recipe bahdanau-lstm --from-raw /tmp/bahd.raw --command '...'
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PHASES = {  # a sample belongs to a phase when one of these names is on its stack
    "training updates (forward, backward, optimizer step)": ("training_step", "_engine_run_backward", "optimizer_step"),
    "beam-5 search": ("_beam (",),
}
JIT = "oneDNN JIT code (no symbol)"


def kind(frame: str) -> str:
    """The kind of code the innermost frame of a py-spy ``--native`` stack is in."""
    if "mkl_" in frame:
        return "MKL GEMM/BLAS"
    if "dnnl" in frame:
        return "oneDNN (named kernels)"
    if re.search(r"\.py:\d+\)$", frame) or "libpython" in frame:
        return "Python"
    if re.match(r"0x[0-9a-f]+ \(\?\)$", frame):
        return JIT
    if "at::native" in frame or "function_ref<void (char**" in frame or "Vectorized" in frame:
        return "ATen kernels"
    if "libtorch" in frame or "libc10" in frame or "torch::" in frame or "c10::" in frame or "at::" in frame:
        return "torch dispatch and autograd"
    if "libc.so" in frame or "ld-linux" in frame or re.match(r"(malloc|free|memcpy|memset)\b", frame):
        return "libc (malloc, copies)"
    if "gomp" in frame:
        return "OpenMP runtime"
    return "other"


def breakdown(raw: Path) -> dict[str, collections.Counter[str]]:
    """Samples per phase and kind. A raw line is ``frame;frame;...;innermost count`` (outermost first)."""
    out: dict[str, collections.Counter[str]] = {phase: collections.Counter() for phase in PHASES}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        for phase, keys in PHASES.items():
            if any(k in f for f in frames for k in keys):
                out[phase][kind(frames[-1])] += int(count)
                break
    return out


def render(counts: dict[str, collections.Counter[str]], head: list[str]) -> str:
    lines = [f"# {h}" for h in head] + [""]
    for phase, c in counts.items():
        total = sum(c.values())
        lines.append(f"{phase}: {total} samples")
        for k, n in c.most_common():
            lines.append(f"  {100 * n / max(total, 1):5.1f}%  {n:6d}  {k}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--from-raw", type=Path, help="a py-spy raw file written before (no new run)")
    ap.add_argument("--command", default="", help="with --from-raw: the command that made it, for the header")
    ap.add_argument("--out", type=Path, default=Path("results/bench"))
    a = ap.parse_args(argv)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "attn_cli"], capture_output=True, text=True).stdout
    load = os.getloadavg()[0]
    if a.from_raw:
        raw, command = a.from_raw, a.command or "(not given)"
    else:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            print("error: py-spy not found; pip install py-spy", file=sys.stderr)
            return 2
        tmp = Path(tempfile.mkdtemp(prefix="pyspy-"))
        raw = tmp / f"{a.recipe}.raw"
        bench = [sys.executable, "-m", "attn_cli", "--data-dir", a.data_dir, "bench", "nmt", "--recipe", a.recipe]
        bench += ["--steps", str(a.steps), "--set", f"train.threads={a.threads}", "--out", str(tmp / "bench")]
        cmd = [spy, "record", "--native", "-r", str(a.rate), "-f", "raw", "-o", str(raw), "--", *bench]
        command = " ".join(cmd[:8] + ["<raw>", "--", "python", "-m", "attn_cli", *bench[3:-1], "<tmp>"])
        env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    head = [
        f"py-spy --native samples of attn bench nmt --recipe {a.recipe} ({a.steps} updates, then the beam-5 test decode)",
        f"command: {command}",
        f"git {sha}{' (attn_cli modified)' if dirty else ''}, {a.threads} torch thread(s), load average (1 min) "
        f"{load:.2f} before, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.uname().nodename}",
        "innermost frame's kind per sample (scripts/pyspy_breakdown.py); no per-operator overhead is added",
    ]
    text = render(breakdown(raw), head)
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"pyspy-{a.recipe}.txt"
    path.write_text(text)
    print(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
