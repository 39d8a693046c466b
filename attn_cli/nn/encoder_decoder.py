"""What every NMT model shares (Bahdanau et al. 2015, Luong et al. 2015, the seq2seq baseline).

A base, not a paper's model: it lives here so that ``models/bahdanau.py`` and ``models/luong.py``
subclass it on equal terms. ``encode`` turns the source into the batch-first memory dict that beam
search and ensembles index; ``step`` is the one-step decoder protocol of
:class:`attn_cli.tasks.nmt.NmtModel` on top of a subclass's ``step_logits``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attn_cli.attention.core import lengths_to_mask


def output_layer(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``layer(x)`` for the vocabulary projection (..., V). On the CPU as x Wᵀ, then the bias added in place:
    torch's CPU ``addmm`` with a broadcast bias measured 4-20% slower than ``mm`` + ``add_`` for these shapes
    (20% at a beam batch of 320 rows × 5921 words, one thread), and this product is the largest of a beam
    step. Elsewhere (a GPU fuses the bias into the GEMM) and without a bias, ``layer(x)`` itself."""
    if x.device.type != "cpu" or layer.bias is None:
        out: torch.Tensor = layer(x)
        return out
    return x.matmul(layer.weight.t()).add_(layer.bias)


def uniform_init(module: nn.Module, init_range: float) -> None:
    for p in module.parameters():
        nn.init.uniform_(p, -init_range, init_range)


class EncoderDecoder(nn.Module):
    """What every NMT model shares: the encoder, the memory dict and the step-decoder protocol."""

    encoder: nn.Module  # src (B, Tk), src_len (B,) -> memory (B, Tk, Dk), h, c (L, B, Dk)
    attn: Any  # the attention module, or None for the models without attention (seq2seq, RNNencdec)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> dict[str, Any]:
        memory, h, c = self.encoder(src, src_len)  # (B, Tk, Dk), (L, B, Dk)
        # every tensor batch-first, so search can index and expand rows (final states: (B, L, Dk))
        out = {
            "memory": memory,
            "mask": lengths_to_mask(src_len, src.size(1)),
            "src_len": src_len,
            "h": h.transpose(0, 1),
            "c": c.transpose(0, 1) if c is not None else None,
        }
        if getattr(self, "attn", None) is not None:
            out["keys"] = self.attn.keys(memory)
        return out

    def step(
        self, y_prev: torch.Tensor, state: dict[str, torch.Tensor], mem: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """One decoder step: log p(y_t | y_<t, x) (B, V), the new state, the attention weights (B, Tk) or None.

        Subclasses implement :meth:`step_logits` (the same before the softmax), which search uses."""
        logits, new, attn = self.step_logits(y_prev, state, mem)
        return torch.log_softmax(logits, dim=-1), new, attn

    def step_logits(
        self, y_prev: torch.Tensor, state: dict[str, torch.Tensor], mem: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """:meth:`step` before the softmax; each model implements it."""
        raise NotImplementedError
