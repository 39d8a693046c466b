"""Keep freed tensor memory in the process instead of handing it back to the kernel after every update.

glibc's ``malloc`` serves a block of 128 KiB or more with its own ``mmap`` and returns it with ``munmap``
when it is freed (the threshold grows, up to 32 MiB, only after such a block is freed), and it trims the
top of the heap once 128 KiB or more lie free there. A training update allocates and frees the same
few hundred MB of activations and gradients every time, so each update maps them afresh, and the
kernel zeroes every 4 KiB page on its first touch: a 300-update ``attn bench nmt`` of ``luong-global-general``
took 4.9 million page faults and 15-17 s of system CPU time, against 0.2 million and 6-7 s with the memory kept,
and trained 1.12× as fast (``bahdanau-lstm`` 1.03×; two threads, ``results/bench/heap-ab.md``). :func:`keep_freed_memory`
raises both thresholds (``mallopt``), so freed blocks up to 32 MiB go back to malloc's free lists and
the next update reuses them without a fault. This is what the jemalloc or tcmalloc ``LD_PRELOAD``
that PyTorch's CPU performance guides recommend does, without a second allocator.

The cost: memory an update freed stays in the process (its resident size stays near its peak) rather
than going back to the system between updates. The ``attn`` entry point (:mod:`attn_cli.__main__`)
calls it before anything else. It does nothing where the C library is not glibc, where the user tuned
malloc already (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or
``GLIBC_TUNABLES`` in the environment), or with ``ATTN_MALLOC=system`` (glibc's defaults).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable, Mapping

M_TRIM_THRESHOLD = -1  # mallopt parameters, glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD = 1024 * 1024 * 1024  # free memory at the heap's top kept, up to 1 GiB
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")
KEPT = "freed memory kept (mmap threshold 32 MiB, trim threshold 1 GiB)"  # what records say when it was done
applied: str | None = None  # what keep_freed_memory did in this process (records name it); None: not called


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None where the C library is another (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (an AttributeError where the C library is not glibc)
        mallopt: Callable[[int, int], int] = libc.mallopt
    except (OSError, AttributeError):
        return None
    return mallopt


def keep_freed_memory(env: Mapping[str, str] | None = None, mallopt: Callable[[int, int], int] | None = None) -> str:
    """Raise glibc's mmap and trim thresholds (see the module docstring); returns what was done (also kept in
    :data:`applied` for the records)."""
    global applied
    applied = _keep_freed_memory(os.environ if env is None else env, mallopt)
    return applied


def _keep_freed_memory(env: Mapping[str, str], mallopt: Callable[[int, int], int] | None) -> str:
    if env.get("ATTN_MALLOC", "").strip().lower() == "system":
        return "glibc defaults (ATTN_MALLOC=system)"
    if any(name in env for name in USER_SETTINGS):
        return "the user's malloc settings"
    mallopt = mallopt or _glibc_mallopt()
    if mallopt is None:
        return "not glibc: the C library's defaults"
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return "mallopt refused: glibc defaults"
    return KEPT
