"""Which process this is in a distributed launch, read from the launcher's environment.

Its own module so that :mod:`attn_cli.run` and :mod:`attn_cli.trainer` can both ask without importing
each other (docs/architecture.md); it imports nothing heavy, so it is safe before torch is loaded.
"""

from __future__ import annotations

import os


def global_rank() -> int:
    """This process's rank as the launcher set it (0 when not distributed)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def is_rank_zero() -> bool:
    """True in the process that writes run directories, records and logs (rank 0, or no launcher)."""
    return global_rank() == 0
