"""The 20 bAbI tasks (Weston et al. 2015) by number, and the ``all`` | ``1,2,4-20`` lists that select them.

Both ``attn prepare babi --set tasks=...`` and the memory task's ``data.tasks`` read these lists, so the
parser lives in the runtime and ``data_prep.babi`` imports it (docs/architecture.md).
"""

from __future__ import annotations

from attn_cli.errors import AttnError

TASK_NAMES = {
    1: "single-supporting-fact", 2: "two-supporting-facts", 3: "three-supporting-facts",
    4: "two-arg-relations", 5: "three-arg-relations", 6: "yes-no-questions", 7: "counting",
    8: "lists-sets", 9: "simple-negation", 10: "indefinite-knowledge", 11: "basic-coreference",
    12: "conjunction", 13: "compound-coreference", 14: "time-reasoning", 15: "basic-deduction",
    16: "basic-induction", 17: "positional-reasoning", 18: "size-reasoning", 19: "path-finding",
    20: "agents-motivations",
}  # fmt: skip


def parse_tasks(spec: str) -> list[int]:
    """``all`` | ``1,2,4-20`` -> sorted task numbers; unknown numbers are errors."""
    if spec.strip() == "all":
        return list(range(1, 21))
    out: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        try:
            lo, _, hi = part.partition("-")
            nums = range(int(lo), int(hi or lo) + 1)
        except ValueError as err:
            raise AttnError(f"bad task list {spec!r}; write e.g. 'all', '1', '1,2,4-20'") from err
        for n in nums:
            if n not in TASK_NAMES:
                raise AttnError(f"unknown bAbI task {n}; tasks are numbered 1-20")
            out.add(n)
    if not out:
        raise AttnError(f"empty task list {spec!r}; write e.g. 'all' or '1,2,4-20'")
    return sorted(out)


def format_tasks(tasks: list[int]) -> str:
    """[1, 2, 4, 5, 6] -> "1-2,4-6" (the inverse of :func:`parse_tasks`)."""
    parts: list[str] = []
    for t in sorted(tasks):
        if parts and int(parts[-1].split("-")[-1]) == t - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{t}"
        else:
            parts.append(str(t))
    return ",".join(parts)
