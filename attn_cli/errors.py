"""User-facing errors: one line saying what is wrong and what to do; the CLI exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AttnError(Exception):
    """A problem with the user's input (not a bug). The CLI prints ``str(err)`` and exits 2."""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice most similar to ``name``, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown(kind: str, name: str, choices: Iterable[str]) -> AttnError:
    """An error for an unknown ``name`` of ``kind``, listing the valid ones and the closest match."""
    choices = sorted(choices)
    hint = closest(name, choices)
    msg = f"unknown {kind} {name!r}"
    if hint:
        msg += f" (did you mean {hint!r}?)"
    msg += f"; valid: {', '.join(choices) if choices else '(none)'}"
    return AttnError(msg)
