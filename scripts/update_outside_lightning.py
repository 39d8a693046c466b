#!/usr/bin/env python3
"""One NMT training update timed outside Lightning's loop, float32 against bf16-mixed: a diagnostic, not a test.

The same module, batch, fused Adam and norm clipping as ``attn train``, run by hand: forward and loss under
``torch.autocast`` (bf16) or not, ``backward``, ``clip_grad_norm_``, ``Adam.step``. Set beside ``attn bench nmt
--set train.threads=1 --set train.precision=...`` on the same machine, it says whether a precision's speed is
lost inside the training loop or in the update itself (issue 28: bf16-mixed was slower than float32 at two
threads on an AMX Xeon). With ``--new-batches`` each timed update takes the loader's next batch, so its
matrix shapes are new in the first round, as in training, and seen before in the next.

    python scripts/update_outside_lightning.py --checkpoint RUN/checkpoints/last.ckpt --threads 1 --out F.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import torch

from attn_cli.heap import keep_freed_memory
from attn_cli.registry import TASKS
from attn_cli.tasks.base import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--updates", type=int, default=5, help="timed updates per precision and round")
    parser.add_argument("--rounds", type=int, default=2, help="float32 then bf16, this many times")
    parser.add_argument(
        "--new-batches",
        action="store_true",
        help="time the next batches of the loader (new shapes in the first round, as in training), not one batch",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    heap = keep_freed_memory()  # as the attn entry point does
    torch.set_num_threads(args.threads)
    module, rec = load_checkpoint(args.checkpoint, "nmt")
    module.train()
    dm = TASKS.get("nmt").datamodule(rec, args.data)
    dm.setup("fit")
    loader = iter(dm.train_dataloader())
    batches = [next(loader) for _ in range(args.updates + 1)]
    batch = batches[0]
    opt = torch.optim.Adam(module.parameters(), lr=rec.train.lr, fused=True)

    def update(bf16: bool, batch: dict = batch) -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            nll, ntok = module._nll(batch)
            loss = nll.sum() / ntok.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), rec.train.grad_clip or 1e9)
        opt.step()

    rows = []
    for _ in range(args.rounds):
        for bf16 in (False, True):
            update(bf16)  # untimed: allocations and first casts
            start = time.perf_counter()
            for i in range(args.updates):
                update(bf16, batches[1 + i] if args.new_batches else batch)
            ms = (time.perf_counter() - start) / args.updates * 1e3
            rows.append({"precision": "bf16-mixed" if bf16 else "32-true", "ms_per_update": round(ms, 1)})
            print(json.dumps(rows[-1]), flush=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {
        "checkpoint": str(args.checkpoint),
        "batch_sentences": int(batch["src"].size(0)),
        "threads": args.threads,
        "batches": "the loader's next ones (round 1: shapes never seen; later rounds: the same again)"
        if args.new_batches
        else "one, again and again",
        "heap": heap,
        "git_sha": sha,
        "load_1min": os.getloadavg()[0],
        "rows": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
