"""User-facing errors: one line saying what is wrong and what to do; the CLI exits 2."""

from __future__ import annotations

import difflib
import errno
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


# What the user can do about a failed file operation: the machine's state, not a bug (issue 24).
_OS_HINTS = {
    errno.EACCES: "make it writable for you or choose another directory (--runs-dir, --data-dir, --results-dir)",
    errno.EPERM: "make it writable for you or choose another directory (--runs-dir, --data-dir, --results-dir)",
    errno.EROFS: "the file system is read-only; choose another directory (--runs-dir, --data-dir, --results-dir)",
    errno.ENOSPC: "the disk is full; free some space and run again",
    errno.EDQUOT: "the disk quota is used up; free some space and run again",
    errno.EFBIG: "a file grew past the size this process may write (ulimit -f); raise the limit and run again",
    errno.ENOTDIR: "a file stands where a directory is needed; give a directory path",
    errno.EEXIST: "a file stands where a directory is needed; give a directory path",
    errno.EISDIR: "a directory stands where a file is needed; give a file path",
}


def from_os_error(err: OSError) -> AttnError | None:
    """The one-line user error for a file operation that the machine refused (permissions, a full disk,
    a file where a directory should be), or None for any other OSError, which stays a bug with a traceback."""
    hint = _OS_HINTS.get(err.errno) if err.errno is not None else None
    if hint is None:
        return None
    where = f"{err.filename}: " if err.filename else ""
    return AttnError(f"{where}{(err.strerror or str(err)).lower()}; {hint}")
