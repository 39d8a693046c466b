"""What the memory-probe scripts share (`memn2n_hops.py`, `dmn_gates.py`): their command line and a trained
memory run loaded in eval mode beside its prepared data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from attn_cli.registry import TASKS
from attn_cli.tasks.base import load_checkpoint


def probe_run(doc: str) -> tuple[argparse.Namespace, Any, Any, Any]:
    """Parse ``RUN [--splits] [--checkpoint] [--data-dir]``; return the arguments, the run's module (eval mode),
    its recipe and its set-up datamodule. One thread: the probes are cheap and run beside trainings."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--splits", default="train,test")
    ap.add_argument("--checkpoint", default="best.ckpt")
    ap.add_argument("--data-dir", type=Path, default=Path("data"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    module, recipe = load_checkpoint(args.run / "checkpoints" / args.checkpoint, "memory")
    module.eval()
    dm = TASKS.get("memory").datamodule(recipe, args.data_dir)
    dm.setup()
    return args, module, recipe, dm
