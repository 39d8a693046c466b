"""The `attn` command's entry point, also run by `python -m attn_cli` (e.g. on a cluster node or GPU
machine that runs a copy of the source tree).

It sets the OpenMP environment before anything imports torch: the OpenMP runtime reads it once,
when torch loads it (see :func:`attn_cli.threads.quiet_thread_pools`); and it tells glibc's malloc to keep
the memory an update frees for the next one (:func:`attn_cli.heap.keep_freed_memory`).
"""

from __future__ import annotations


def main() -> None:
    from attn_cli.heap import keep_freed_memory
    from attn_cli.threads import quiet_thread_pools

    quiet_thread_pools()
    keep_freed_memory()
    from attn_cli.cli import entrypoint

    entrypoint()


if __name__ == "__main__":
    main()
