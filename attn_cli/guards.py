"""Stop a diverging training run before it spoils its checkpoints (issue 24).

A learning rate that is too high sends the loss to 1e7 and then to NaN; Lightning trains on,
writes NaN weights over ``last.ckpt`` and reports perplexity ``inf`` hours later. :class:`LossGuard`
looks at every training loss before its backward pass: when it is NaN/inf, or above the recipe's
bound ``train.max_loss``, the run stops with one line saying so. The bad loss never reaches the
optimiser and no checkpoint is written after it, so ``best.ckpt`` and ``last.ckpt`` keep the last
good weights.
"""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from attn_cli.errors import AttnError


class LossGuard(Callback):
    """Raise :class:`AttnError` on a non-finite loss, or one above ``max_loss`` (0: no bound).

    Every process takes the same decision (one ``any`` reduction per step), so under DDP no rank
    waits forever in an all-reduce that another rank left.
    """

    def __init__(self, max_loss: float) -> None:
        self.max_loss = max_loss

    def bad(self, value: float) -> bool:
        return not math.isfinite(value) or (self.max_loss > 0 and value > self.max_loss)

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        value = float(loss.detach().float().cpu())
        if not trainer.strategy.reduce_boolean_decision(self.bad(value), all=False):
            return
        what = "not a number" if math.isnan(value) else f"{value:.4g}"
        bound = f" (train.max_loss={self.max_loss:g})" if math.isfinite(value) and self.bad(value) else ""
        raise AttnError(
            f"training diverged at step {trainer.global_step}: the loss is {what}{bound} on "
            f"{'this' if self.bad(value) else 'another'} process; its checkpoints keep the last good weights; "
            "train again with a smaller train.lr or with train.grad_clip"
        )
