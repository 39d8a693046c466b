"""``attn generate handwriting``: write a text with a trained synthesis run (Graves 2013 §5.3-5.5), or let a
prediction run scribble (§4), into an SVG and a PNG.

Biased sampling (eqs. 61-62) with ``--bias``; ``--prime-run-line N`` primes the network with line N of the
run's test split (its offsets clamped as inputs, its text put before the requested one) so the sample takes
that writer's style; sampling is seeded, so the same command writes the same line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from attn_cli.errors import AttnError
from attn_cli.runs import check_run_dir, find_checkpoint
from attn_cli.tasks.base import load_checkpoint, read_checkpoint


def generate_handwriting(
    run: Path,
    *,
    text: str | None,
    bias: float = 0.0,
    seed: int = 0,
    prime_line: int | None = None,
    data_dir: Path,
    out: Path | None = None,
    checkpoint: Path | None = None,
) -> dict[str, Any]:
    """Sample one line; returns the SVG and PNG paths, the number of pen points and whether the window's stop
    rule ended it (synthesis) before the step budget."""
    from attn_cli.viz.handwriting import STEPS_PER_CHAR, line_png, write, write_svg

    run_dir = check_run_dir(Path(run))
    ckpt = Path(checkpoint) if checkpoint else find_checkpoint(run_dir, "best")
    found = read_checkpoint(ckpt)["attn"]["task"]
    if found != "handwriting":
        raise AttnError(f"run {run_dir} is a {found} run; `attn generate handwriting` needs a handwriting run")
    if bias < 0:
        raise AttnError(f"--bias {bias:g}: the bias is 0 (the trained density) or more (tidier lines)")
    module, recipe = load_checkpoint(ckpt, "handwriting")
    model = module.eval().model
    prime = None
    if model.conditional:
        if not text:
            raise AttnError(f'{recipe.name} is a synthesis run: give the line to write with --text "..."')
        bad = sorted({c for c in text if c not in model.alphabet})
        if bad:
            raise AttnError(
                f"--text has characters this run never saw: {''.join(bad)!r}; write with its alphabet "
                f"{model.alphabet!r}"
            )
        if prime_line is not None:
            prime = _prime(recipe, data_dir, prime_line)
    elif text or prime_line is not None:
        raise AttnError(
            f"{recipe.name} is a prediction run (no window over a text): drop --text/--prime-run-line, or "
            "generate with a graves-synthesis run"
        )
    with torch.no_grad():
        sample = write(model, text, bias=bias, seed=seed, prime=prime)
    offsets = sample["offsets"]
    if out is None:
        slug = re.sub(r"[^a-z0-9]+", "-", (text or "unconditioned").lower()).strip("-")[:40] or "line"
        primed = f"-primed{prime_line}" if prime is not None else ""
        out = run_dir / "generated" / f"{slug}-bias{bias:g}-seed{seed}{primed}".replace(".", "p")
    out = Path(out)
    if out.suffix in (".svg", ".png"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    title = f"{text!r}, bias {bias:g}, seed {seed}" if text else f"unconditioned, bias {bias:g}, seed {seed}"
    if prime is not None:
        title += f", primed with test line {prime_line} ({prime[0]!r})"
    budget = STEPS_PER_CHAR * len(text) if text else None
    return {
        "svg": write_svg(offsets, out.parent / f"{out.name}.svg", title=title),
        "png": line_png(offsets, out.parent / f"{out.name}.png", title=title),
        "points": len(offsets),
        "stopped": bool(budget is not None and len(offsets) < budget),
    }


def _prime(recipe: Any, data_dir: Path, line: int) -> tuple[str, torch.Tensor]:
    """Line ``line`` of the run's test split: its text and offsets (P, 3)."""
    from attn_cli.data.handwriting import HandwritingDataModule

    dm = HandwritingDataModule(recipe.data, data_dir, 1, 0)
    dm.setup("test")
    ds = dm.dataset("test")
    if not 0 <= line < len(ds):
        raise AttnError(f"--prime-run-line {line}: the run's test split has lines 0..{len(ds) - 1}; pick one of them")
    return ds.text(line), torch.from_numpy(ds.offsets(line).copy())
