"""`python -m attn_cli ...`: the `attn` command without an installed console script
(e.g. on a cluster node or GPU machine that runs a copy of the source tree)."""

from attn_cli.cli import entrypoint

entrypoint()
