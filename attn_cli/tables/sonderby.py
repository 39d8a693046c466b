"""Sønderby et al. (2015): the RNN-SPN against a CNN on cluttered MNIST sequences, in the paper's layout
(one row per model, the single-digit test error), with DRAM added at the same updates.

Paper numbers: the abstract of arXiv:1509.05329 (RNN-SPN 1.5%, CNN 2.9%, CNN-SPN 2.0% single digit
error; docs/references.md). The paper has no DRAM number that we could verify, and we build no CNN-SPN
(a feed-forward spatial transformer with one softmax per digit): that row holds the paper's number only.
Ours: ``recipes/vision/{rst,seq-cnn,dram}-sequence.yaml`` on ``mnist-sequence-100``
(:mod:`attn_cli.data.sequences`), every row trained for the same number of updates at the same batch.
"""

from __future__ import annotations

from attn_cli.registry import TABLES
from attn_cli.tables.base import Col, Order, Ref, Row, Table

DATASET = "mnist-sequence-100"


def _c(recipe: str) -> Ref:
    return Ref(dataset=DATASET, recipe=recipe)


TABLES.add(
    "sonderby",
    Table(
        name="sonderby",
        title="Sønderby et al. (2015): single-digit error (%) on cluttered MNIST sequences (3 digits, 100×100)",
        source="Sønderby, Sønderby, Maaløe & Winther, arXiv:1509.05329, abstract (verified: docs/references.md)",
        ref=Ref(task="vision", split="test", metric="digit_error"),
        corner="Model",
        columns=(
            Col("digit", "Digit error", better="min", digits=2, unit="%"),
            Col("seq", "Sequence error", ref=Ref(metric="seq_error"), better="min", digits=2, unit="%", paper=False),
        ),
        rows=(
            Row("CNN, one softmax per digit", key="cnn", ref=_c("seq-cnn-sequence"), paper={"digit": 2.9}),
            Row("CNN-SPN (not built here)", key="cnn-spn", paper={"digit": 2.0}),
            Row(
                "RNN-SPN (GRU, affine glimpse 33×33 per digit, loc_scale 0.1)",
                key="rst",
                ref=_c("rst-sequence"),
                paper={"digit": 1.5},
            ),
            Row(
                "RNN-SPN, loc_scale 1: its glimpses left the image (docs/vision.md)",
                key="rst-unscaled",
                ref=_c("rst-sequence@loc-scale-1"),
            ),
            Row("DRAM, 3 glimpses per digit (not in the paper)", key="dram", ref=_c("dram-sequence")),
        ),
        # the abstract: the RNN-SPN's 1.5% against the CNN's 2.9%, attributed to attending to one region per digit
        orders=(
            Order(
                "RNN-SPN < CNN",
                ("rst", "digit"),
                "<",
                ("cnn", "digit"),
                why="at 800 updates of 64 (under one epoch; the paper trains up to 300) every row still predicts the "
                "commonest digit; the RNN-SPN's three steps still emit nearly the same transform (docs/vision.md)",
            ),
        ),
        note="Sequence error: a sequence counts as wrong when any of its three digits is (ours only; the paper "
        "reports digit error). Training draws fresh sequences every batch from the training digits; val and test "
        "are fixed draws from the validation and test digits (docs/vision.md, 'Recurrent spatial transformer').",
    ),
)
