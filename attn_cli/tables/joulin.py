"""Joulin & Mikolov (2015) Table 2: RNN, LSTM, the list and the stack RNN on the counting patterns, in the paper's
layout, with binary addition (§5.1, Fig. 2 right) as a last column.

Table 2 of the NIPS version (its Table 1 lists the patterns).

The measure is the paper's: the percentage of the sizes n up to 60 at which the model predicts every
deterministic symbol of every test sequence (``solved_n``, :mod:`attn_cli.tasks.patterns`); training sees
n up to 14 (aⁿb²ⁿ and addition 19, aⁿbᵐcⁿ⁺ᵐ 9, the authors' scripts), so about a quarter to a third comes from
the training sizes alone and more means the model generalises (tests/test_stackrnn_results.py checks that every
record was tested at every n from 2 to 60). The "+ rounding" row is the stack RNN's own run evaluated with
discrete actions (``attn eval --set eval.rounding=true --record --name stack-rnn-<pattern>+rounding``); the
"chosen on rounded validation" row is the authors' protocol (their ``-hard``): its own runs
(``stack-rnn-<pattern>-rounded``) round the actions at every validation too, so the kept checkpoint is the
best rounded one. Paper
numbers: Table 2 of the NIPS 2015 version (arXiv:1503.01007), checked against a text extraction of the paper
(docs/patterns.md); its caption: trained on n < 20, tested up to n = 60, "percent of n for which the model was
able to correctly predict the sequences". The paper gives no number for binary addition: only the stack RNN
100+10's accuracy per n, averaged over runs with random restarts (Fig. 2 right); the addition column's rows
have 100 hidden units, the paper's setting for that task.
"""

from __future__ import annotations

from attn_cli.registry import TABLES
from attn_cli.tables.base import Agg, Col, Order, Ref, Row, Table, pick_lowest

PATTERNS = (
    ("anbn", "aⁿbⁿ"),
    ("anbncn", "aⁿbⁿcⁿ"),
    ("anbncndn", "aⁿbⁿcⁿdⁿ"),
    ("anb2n", "aⁿb²ⁿ"),
    ("anbmcnm", "aⁿbᵐcⁿ⁺ᵐ"),
    ("addition", "binary addition"),
)
# Table 2, in the order of PATTERNS; addition is Fig. 2 right (a curve, the stack RNN's only)
PAPER: dict[str, tuple[float | str, ...]] = {
    "rnn": (25.0, 23.3, 13.3, 23.3, 33.3, ""),
    "lstm": (100.0, 100.0, 68.3, 75.0, 100.0, ""),
    "list-rnn": (100.0, 33.3, 100.0, 100.0, 100.0, ""),
    "stack-rnn": (100.0, 100.0, 100.0, 100.0, 43.3, "Fig. 2 (curve)"),
    "stack-rnn+rounding": (100.0, 100.0, 100.0, 100.0, 100.0, ""),
}
COUNTING = ("anbn", "anbncn", "anbncndn", "anb2n")
# how many of the 59 test sizes n = 2..60 each pattern trains on (n = 2..data.max_n of its recipes): solving more
# than those means generalising
TRAINED = {"anbn": 13, "anbncn": 13, "anbncndn": 13, "anb2n": 18, "anbmcnm": 8, "addition": 18}
ADDITION_TRAINED = 100.0 * TRAINED["addition"] / 59


# The authors' restarts (their script_tasks.sh: "to reproduce the results in the paper, one needs to cycle over the
# seed and restart the ones which give entropy above average"): RESTARTS seeds of each recipe, the cell the test
# score of the one with the lowest validation entropy (``val/loss``, with rounded actions for the -hard row; never
# the test score), on the patterns listed (the rest: one seed), for the rows whose one-seed ordering failed there.
# scripts/restarts.sh trains and records them (two records each: results/ stays under its 30 MB).
RESTARTS = (1, 2, 3, 4, 5)
RESTART_PATTERNS = ("anb2n",)


def _restarts(recipe: str, pattern: str) -> Agg:
    """Best of :data:`RESTARTS` seeds of ``recipe`` on ``pattern``, by validation entropy."""
    best = pick_lowest("val", tuple(f"{recipe}-seed{s}" for s in RESTARTS), "loss")
    return Agg(tuple(Ref(dataset=pattern).merge(r) for r in best.refs), best.fn)


def _restart_row(label: str, key: str, recipe: str) -> Row:
    """``recipe`` with ``{p}`` for the pattern, its restarts on :data:`RESTART_PATTERNS`."""
    return Row(
        f"{label}, best of {len(RESTARTS)} seeds by validation entropy (the authors' restarts)",
        key=f"{key}-restarts",
        cells={p: _restarts(recipe.format(p=p), p) for p in RESTART_PATTERNS},
    )


# why the -hard row misses the paper where it does (docs/patterns.md, 'Rounding')
ROUNDED_WHY = {
    "anb2n": "this seed counts with fractional actions (on an n = 6 sequence one stack pushes with probability 0.6-0.8 "
    "at every a, two others 0.2-1.0 through the b's), which rounding breaks: the rounded validation never passed 16% "
    "while the soft one reached 100% from 1,250 updates; one seed: with the authors' restarts 3 of 5 seeds solve "
    "96.6-100% rounded (the restart row, docs/patterns.md)",
}
# why the restarts' orderings miss the paper where they do
RESTART_WHY = {
    "anb2n": "validation entropy is measured on the training sizes (n ≤ 19), where every restart of both models "
    "predicts every validation sequence: it does not see generalisation. The list RNN's restarts solve 30.5-67.8% of "
    "the sizes (the 67.8% one had the second-highest validation entropy of five), the LSTM's 30.5-33.9% (docs/patterns.md)",
}


def _at_least(
    label: str, left: str, right: str, patterns: tuple[str, ...], why: dict[str, str] | None = None
) -> tuple[Order, ...]:
    """Row ``left`` ≥ row ``right`` on each of ``patterns`` (``label`` with ``{}`` for the pattern's name), with
    the reason it fails where ``why`` has one."""
    return tuple(
        Order(label.format(header), (left, p), ">=", (right, p), why=(why or {}).get(p, ""))
        for p, header in PATTERNS
        if p in patterns
    )


def _paper(key: str) -> dict[str, float | str]:
    """The paper's numbers of row ``key`` by pattern, the columns it has no number for left out."""
    return {p: v for (p, _), v in zip(PATTERNS, PAPER[key], strict=True) if v != ""}


def _row(label: str, key: str, recipe: str) -> Row:
    """``recipe`` with ``{p}`` for the pattern: the record behind each column."""
    return Row(
        label,
        key=key,
        paper=_paper(key),
        cells={p: Ref(dataset=p, recipe=recipe.format(p=p)) for p, _ in PATTERNS},
    )


TABLES.add(
    "joulin",
    Table(
        name="joulin",
        title="Joulin & Mikolov (2015) Table 2 and binary addition: % of sizes n = 2-60 predicted correctly "
        "(trained on n ≤ 14; aⁿb²ⁿ and addition n ≤ 19, aⁿbᵐcⁿ⁺ᵐ n ≤ 9)",
        source="Joulin & Mikolov, NIPS 2015, Table 2 (verified: docs/patterns.md)",
        ref=Ref(task="patterns", split="test", metric="solved_n"),
        corner="Method",
        columns=tuple(Col(p, header) for p, header in PATTERNS),
        rows=(
            _row("RNN (40 hidden; addition 100)", "rnn", "rnn-{p}"),
            _row("LSTM (40 hidden; addition 100)", "lstm", "lstm-{p}"),
            _row("List RNN 40+5", "list-rnn", "list-rnn-{p}"),
            _row("Stack RNN 40+10 (addition 100+10)", "stack-rnn", "stack-rnn-{p}"),
            _row("Stack RNN 40+10 + rounding (addition 100+10)", "stack-rnn+rounding", "stack-rnn-{p}+rounding"),
            _restart_row("LSTM (40 hidden)", "lstm", "lstm-{p}"),
            _restart_row("List RNN 40+5", "list-rnn", "list-rnn-{p}"),
            _restart_row(
                "Stack RNN 40+10 + rounding, chosen on rounded validation", "stack-rnn-rounded", "stack-rnn-{p}-rounded"
            ),
            Row(
                "Stack RNN 40+10 + rounding, chosen on rounded validation (the authors' -hard; addition 100+10)",
                key="stack-rnn-rounded",
                paper=_paper("stack-rnn+rounding"),
                cells={p: Ref(dataset=p, recipe=f"stack-rnn-{p}-rounded") for p, _ in PATTERNS},
            ),
        ),
        # Joulin & Mikolov §5.1 and Table 2: the stack RNN generalises beyond the training sizes on the
        # counting patterns at least as well as the LSTM; on aⁿbᵐcⁿ⁺ᵐ only with discrete (rounded) actions; the
        # list RNN beats the LSTM on aⁿbⁿcⁿdⁿ and aⁿb²ⁿ and loses to the stack RNN on aⁿbⁿcⁿ;
        # on binary addition "Stack RNNs are generalizing to longer numbers" (Fig. 2 right)
        orders=(
            *_at_least("Stack RNN ≥ LSTM on {}", "stack-rnn", "lstm", COUNTING),
            Order(
                "Stack RNN + rounding ≥ Stack RNN on aⁿbᵐcⁿ⁺ᵐ",
                ("stack-rnn+rounding", "anbmcnm"),
                ">=",
                ("stack-rnn", "anbmcnm"),
                why="this row rounds the checkpoint chosen on soft validation; the authors choose it on rounded "
                "validation (-hard), as the next row does (docs/patterns.md)",
            ),
            *_at_least(
                "Stack RNN + rounding (authors' protocol) ≥ Stack RNN on {}",
                "stack-rnn-rounded",
                "stack-rnn",
                (*COUNTING, "anbmcnm"),
                ROUNDED_WHY,
            ),
            # Table 2's list RNN row: 100 % where the LSTM has 68.3 and 75 %, 33.3 % where the stack RNN has 100
            Order("List RNN ≥ LSTM on aⁿbⁿcⁿdⁿ", ("list-rnn", "anbncndn"), ">=", ("lstm", "anbncndn")),
            Order(
                "List RNN ≥ LSTM on aⁿb²ⁿ",
                ("list-rnn", "anb2n"),
                ">=",
                ("lstm", "anb2n"),
                why="one seed each, no restarts: the list RNN solves every n up to 23, the LSTM every n up to 29",
            ),
            *_at_least(
                f"List RNN ≥ LSTM on {{}}, best of {len(RESTARTS)} restarts each",
                "list-rnn-restarts",
                "lstm-restarts",
                RESTART_PATTERNS,
                RESTART_WHY,
            ),
            # the soft stack RNN has one seed (results/ room), so the restarts are checked against the paper's claim
            # itself: the rounded stack RNN generalises (Table 2: 100% of the sizes), beyond the sizes it trained on
            *(
                Order(
                    f"Stack RNN + rounding (authors' protocol), best of {len(RESTARTS)} restarts, generalises on "
                    f"{header}: more sizes solved than the {100.0 * TRAINED[p] / 59:.1f}% trained on",
                    ("stack-rnn-rounded-restarts", p),
                    ">",
                    100.0 * TRAINED[p] / 59,
                )
                for p, header in PATTERNS
                if p in RESTART_PATTERNS
            ),
            Order("Stack RNN > List RNN on aⁿbⁿcⁿ", ("stack-rnn", "anbncn"), ">", ("list-rnn", "anbncn")),
            Order(
                f"Stack RNN generalises on binary addition: more sizes solved than the {ADDITION_TRAINED:.1f}% trained on",
                ("stack-rnn", "addition"),
                ">",
                ADDITION_TRAINED,
                why="one seed at 4,000 minibatch updates never learned the sum (validation ≤ 8.2%); the paper averages "
                "runs with random restarts of a far longer SGD schedule (docs/patterns.md)",
            ),
            Order(
                "Stack RNN + rounding (authors' protocol) generalises on binary addition: more sizes solved than the "
                f"{ADDITION_TRAINED:.1f}% trained on",
                ("stack-rnn-rounded", "addition"),
                ">",
                ADDITION_TRAINED,
                why="one seed at 4,000 minibatch updates: choosing the checkpoint on rounded validation cannot help a run "
                "that never learned the sum; the paper's random restarts and longer SGD schedule are not reproduced "
                "(docs/patterns.md)",
            ),
        ),
        note="Each cell is one run (one seed), except the rows 'best of N seeds', whose cell is the test score of the "
        "restart with the lowest validation entropy (the authors' restarts, docs/patterns.md); every run of a "
        "pattern has the same updates, batch and curriculum. 'solved' needs all 20 test sequences at that n.",
    ),
)
