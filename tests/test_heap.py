"""glibc's malloc keeps what an update frees (attn_cli.heap): the thresholds set, and left alone where the
user chose otherwise or the C library is not glibc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attn_cli.heap import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, MMAP_THRESHOLD, TRIM_THRESHOLD, keep_freed_memory

REPO = Path(__file__).resolve().parent.parent


class FakeMallopt:
    def __init__(self, answer: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.answer


def test_raises_both_thresholds() -> None:
    mallopt = FakeMallopt()
    assert keep_freed_memory({}, mallopt).startswith("freed memory kept")
    assert mallopt.calls == [(M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)]


@pytest.mark.parametrize(
    "env",
    [
        {"ATTN_MALLOC": "system"},
        {"MALLOC_MMAP_THRESHOLD_": "131072"},
        {"MALLOC_TRIM_THRESHOLD_": "0"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
    ],
)
def test_leaves_the_users_choice_alone(env: dict[str, str]) -> None:
    mallopt = FakeMallopt()
    keep_freed_memory(env, mallopt)
    assert mallopt.calls == []


def test_says_so_when_mallopt_refuses() -> None:
    assert keep_freed_memory({}, FakeMallopt(answer=0)) == "mallopt refused: glibc defaults"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's page-fault behaviour")
def test_entry_point_keeps_freed_blocks_mapped() -> None:
    """Through the real entry point: eight 4 MiB blocks allocated, written and freed, five times over, fault
    in no new pages after the first round; with glibc's defaults (``ATTN_MALLOC=system``) the heap's top is
    trimmed after each round and every page faults again (5 × 8 × 1,024)."""
    code = (
        "import ctypes, resource, runpy, sys\n"
        "sys.argv = ['attn', '--help']\n"
        "try:\n"
        "    runpy.run_module('attn_cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "libc = ctypes.CDLL('libc.so.6')\n"
        "libc.malloc.restype = ctypes.c_void_p\n"
        "libc.free.argtypes = [ctypes.c_void_p]\n"
        "size = 4 << 20\n"
        "def one_round():\n"
        "    blocks = [libc.malloc(size) for _ in range(8)]\n"
        "    for p in blocks:\n"
        "        ctypes.memset(p, 1, size)\n"
        "    for p in blocks:\n"
        "        libc.free(p)\n"
        "one_round()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(5):\n"
        "    one_round()\n"
        "print('faults', resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    faults = {}
    for setting in ("default", "system"):
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
        if setting == "system":
            env["ATTN_MALLOC"] = "system"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        faults[setting] = int(out.stdout.split("faults")[-1])
    assert faults["system"] >= 5 * 8 * 1000
    assert faults["default"] < 500
