"""The contract of the vision task's classifiers, shared by the baselines, STN and the grid CNN.

A base, not a paper's model: it lives here so that every paper's file (``models/vision_baselines.py``,
``models/stn.py``) subclasses it on equal terms. ``loss`` is the cross-entropy of the class logits;
``predict`` gives the argmax and the per-example loss the vision task scores (top-1 error, NLL).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Classifier(nn.Module):
    """The training/prediction contract every vision classifier follows."""

    kind = "classify"

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.logits(x)  # (B, K)
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": float(loss.detach())}

    def predict(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.logits(x)
        return {"pred": logits.argmax(-1), "loss": F.cross_entropy(logits, y, reduction="none")}
