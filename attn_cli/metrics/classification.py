"""Top-1 accuracy / error through torchmetrics (micro average: the fraction of examples right)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics.functional.classification import multiclass_accuracy


def top1_accuracy(predictions: Sequence[int], targets: Sequence[int], num_classes: int) -> float:
    """Fraction of ``predictions`` equal to ``targets`` (``average="micro"``, not the per-class mean)."""
    if len(predictions) != len(targets):
        raise ValueError("predictions and targets differ in length")
    if not predictions:
        return float("nan")
    preds = torch.as_tensor(list(predictions), dtype=torch.long)
    target = torch.as_tensor(list(targets), dtype=torch.long)
    return float(multiclass_accuracy(preds, target, num_classes=num_classes, average="micro"))


def top1_error_percent(predictions: Sequence[int], targets: Sequence[int], num_classes: int) -> float:
    return 100.0 * (1.0 - top1_accuracy(predictions, targets, num_classes))
