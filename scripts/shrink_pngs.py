"""Re-encode the tracked pictures under results/ that are over ``RECORD_PNG_OVER`` with a 256-colour palette,
as `attn record` now does when it copies them (attn_cli.records.palette_png); keeps results/ under its 30 MB.

usage: python scripts/shrink_pngs.py   (from the repository root; prints what it shrank)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from attn_cli.io import atomic_write
from attn_cli.records import RECORD_PNG_OVER, palette_png


def main() -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "results"], capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        path = Path(name)
        if path.suffix != ".png" or not path.is_file() or path.stat().st_size <= RECORD_PNG_OVER:
            continue
        data = path.read_bytes()
        smaller = palette_png(data)
        if len(smaller) < len(data):
            atomic_write(path, smaller)
            print(f"{name}: {len(data)} -> {len(smaller)} bytes")


if __name__ == "__main__":
    main()
