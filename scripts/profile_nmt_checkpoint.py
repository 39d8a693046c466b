#!/usr/bin/env python3
"""torch.profiler tables of one NMT training update (forward + backward) or one beam-5 test batch, from a
trained checkpoint, at one thread: where the time goes, without training 300 updates first as
``attn bench nmt --profile`` does (the same tables; the checkpoint gives the search realistic lengths).

A benchmark, not a test: it writes a table and asserts nothing. ``train`` profiles updates 3-6 of the
recipe's own training batches (after two untimed ones; no optimizer step, so the parameters stay the
checkpoint's); ``beam`` the search of the first test batch (the longest sentences: eval batches are sorted).
The header gives the CPU seconds of the profiled work measured without the profiler, the load average and
the git sha; under load the profiler's per-op times stretch with the neighbours, so compare the shares.

    nice -n 19 .venv/bin/python scripts/profile_nmt_checkpoint.py --checkpoint RUN/checkpoints/last.ckpt \\
        --what beam --data data --out results/bench/speed-ab/profile-RECIPE-beam-SHA.txt
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from attn_cli.registry import TASKS
from attn_cli.tasks.base import load_checkpoint


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--what", choices=["train", "beam"], required=True)
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    module, rec = load_checkpoint(args.checkpoint, "nmt")
    model: Any = module  # the NMT task module: training_step returns the loss, decode the hypotheses
    dm = TASKS.get("nmt").datamodule(rec, args.data)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if args.what == "train":
        dm.setup("fit")
        loader = iter(dm.train_dataloader())
        batches = [next(loader) for _ in range(6)]
        module.train()
        for batch in batches[:2]:
            model.training_step(batch, 0).backward()
        start = cpu_seconds()
        for batch in batches[2:]:
            model.training_step(batch, 0).backward()
        cpu = (cpu_seconds() - start) / 4
        with torch.profiler.profile(activities=activities) as prof:
            for batch in batches[2:]:
                model.training_step(batch, 0).backward()
        title = f"4 training updates (forward + backward, no optimizer step) of {rec.name}: {cpu:.3f} CPU s each"
    else:
        dm.setup("test")
        batch = next(iter(dm.split_loader("test")))
        module.eval()
        with torch.no_grad():
            model.decode(batch, 5)
            start = cpu_seconds()
            hyps = model.decode(batch, 5)
            cpu = cpu_seconds() - start
            with torch.profiler.profile(activities=activities) as prof:
                model.decode(batch, 5)
        steps = max(len(h.tokens) for h in hyps) + 1
        title = (
            f"beam-5 search of the first test batch of {rec.name} ({batch['src'].size(0)} sentences, the longest;"
            f" {steps} search steps): {cpu:.3f} CPU s"
        )
    sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    head = [
        f"# {title}",
        f"# command: python {' '.join(sys.argv)}",
        f"# checkpoint {args.checkpoint}; git {sha}, 1 torch thread, load average (1 min) {os.getloadavg()[0]:.2f}",
        "# sorted by self CPU time (torch.profiler; under load its per-op times stretch: the shares matter)",
    ]
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
    args.out.write_text("\n".join(head) + "\n" + table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
