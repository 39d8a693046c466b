"""Keep a long run's checkpoints good: stop on a diverging loss, never split a step from its validation.

Issue 24. Two guards for runs that go on for hours and get killed.

A learning rate that is too high sends the loss to 1e7 and then to NaN; Lightning trains on,
writes NaN weights over ``last.ckpt`` and reports perplexity ``inf`` hours later. :class:`LossGuard`
looks at every training loss before its backward pass: when it is NaN/inf, or above the recipe's
bound ``train.max_loss``, the run stops with one line saying so. The bad loss never reaches the
optimiser and no checkpoint is written after it, so ``best.ckpt`` and ``last.ckpt`` keep the last
good weights.

:class:`StepCheckpoint` writes ``last.ckpt`` every N training steps (the resume granularity), except
after a batch that Lightning validates right after: a kill during that validation would resume from
weights whose validation never ran (Lightning does not replay it), so best.ckpt, a plateau schedule and
the RNG stream (validation loaders draw a seed) would part from the uninterrupted run. There the best-
checkpoint callback writes ``last.ckpt`` once the validation is done instead.
"""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

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
            f"{'this' if self.bad(value) else 'another'} process; nothing was trained on it or saved after it: "
            "train again with a smaller train.lr or with train.grad_clip"
        )


def validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning validates right after the current training batch: every ``val_check_batch``
    batches in all (step-based validation) or at the last batch of a validating epoch (epoch-based)."""
    loop = trainer.fit_loop.epoch_loop
    every = trainer.check_val_every_n_epoch
    if every is not None and (trainer.current_epoch + 1) % every != 0:
        return False
    if every is not None and loop.batch_progress.is_last_batch:
        return True
    index = loop.total_batch_idx if every is None else loop.batch_idx
    return trainer.val_check_batch != float("inf") and (index + 1) % int(trainer.val_check_batch) == 0


class StepCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` for ``last.ckpt`` every N steps that skips the steps a validation follows."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: object, **kwargs: object) -> None:
        if not validation_follows(trainer):
            super().on_train_batch_end(trainer, *args, **kwargs)

    def on_train_end(self, trainer: L.Trainer, *args: object, **kwargs: object) -> None:
        """Nothing: ``last.ckpt`` at the end is the last validation's (``BestAndLastCheckpoint``) or the final
        validation's (``attn_cli.run``). Lightning's own end-of-training save, which fires when this callback
        saved nothing in the segment (a run resumed after its last periodic checkpoint), would write it again
        with the loop's step counter one further than the uninterrupted run's."""
