"""Graves' soft window (Graves 2013, "Generating Sequences With Recurrent Neural Networks", §5.1, eqs. 46-51):
location-based attention over a character sequence that can only move forward.

A mixture of K Gaussian bumps over character positions u = 1..U:

    (α̂ₜ, β̂ₜ, κ̂ₜ) = W h¹ₜ + b                          (48)
    αₜ = exp(α̂ₜ), βₜ = exp(β̂ₜ), κₜ = κₜ₋₁ + exp(κ̂ₜ)      (49-51)
    φ(t, u) = Σₖ αₜᵏ exp(−βₜᵏ (κₜᵏ − u)²)               (46)
    wₜ = Σᵤ φ(t, u) cᵤ                                  (47)

α sets each bump's importance, β its width and κ its location; because κ only grows by exp(κ̂) > 0, the
window slides monotonically along the text. cᵤ is the one-hot vector of character u; wₜ (the window
vector) feeds the next step of the first layer and this step of the layers above it.

Initialisation (ours; the paper does not give one): the bias of κ̂ starts at log(``init_step``), so that at
initialisation κ advances about ``init_step`` characters per pen point rather than exp(0) = 1. With a zero
bias the window crosses a whole line in as many points as it has characters, while the pen needs ~8 points
per character on ``hershey-lines`` (~25 on IAM-OnDB): the bumps run off the text within the first word and
training must first learn to pull them back before the window can carry any alignment. Eq. (51) itself is
unchanged (no scaled increment such as exp(κ̂)/C): only its starting point is.

Shapes: B batch, U characters, V alphabet (one-hot width), K bumps, H the first layer's width.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def window_weights(alpha: torch.Tensor, beta: torch.Tensor, kappa: torch.Tensor, positions: int) -> torch.Tensor:
    """φ(t, u) of eq. (46) for u = 1..``positions``: (B, K) parameters -> (B, positions)."""
    u = torch.arange(1, positions + 1, device=kappa.device, dtype=kappa.dtype)  # (U,)
    bumps = alpha[:, :, None] * torch.exp(-beta[:, :, None] * (kappa[:, :, None] - u) ** 2)  # (B, K, U)
    return bumps.sum(1)  # (B, U)


class SoftWindow(nn.Module):
    """One step of the window: first-layer state h¹ₜ and κₜ₋₁ -> window vector wₜ, weights φ(t, ·), κₜ."""

    def __init__(self, hidden: int, bumps: int, init_step: float = 1.0) -> None:
        """``init_step``: κ's initial advance per step (characters per pen point; the bias of κ̂ is its log)."""
        super().__init__()
        self.bumps = bumps
        self.proj = nn.Linear(hidden, 3 * bumps)  # eq. (48)
        with torch.no_grad():
            self.proj.bias[2 * bumps :].fill_(math.log(init_step))

    def forward(
        self, h: torch.Tensor, kappa_prev: torch.Tensor, chars: torch.Tensor, char_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``h`` (B, H), ``kappa_prev`` (B, K), ``chars`` one-hot (B, U, V), ``char_mask`` (B, U) bool (True:
        a character, False: padding) -> (w (B, V), φ (B, U), κ (B, K)). Padding positions get φ = 0."""
        a_hat, b_hat, k_hat = self.proj(h).chunk(3, dim=-1)  # (B, K) each
        kappa = kappa_prev + torch.exp(k_hat)  # (B, K), eq. (51)
        phi = window_weights(torch.exp(a_hat), torch.exp(b_hat), kappa, chars.size(1))  # (B, U)
        phi = phi * char_mask.to(phi.dtype)
        w = torch.bmm(phi[:, None, :], chars).squeeze(1)  # (B, V), eq. (47)
        return w, phi, kappa

    def past_end(self, h: torch.Tensor, kappa: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The paper's stop rule (§5.3): sampling ends once φ(t, U+1) exceeds φ(t, u) for every u ≤ U, i.e. the
        window has moved past the last character. ``h`` (B, H) the state that made ``kappa`` (B, K);
        ``lengths`` (B,) -> (B,) bool."""
        a_hat, b_hat, _ = self.proj(h).chunk(3, dim=-1)
        return window_past_end(torch.exp(a_hat), torch.exp(b_hat), kappa, lengths)


def window_past_end(
    alpha: torch.Tensor, beta: torch.Tensor, kappa: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """φ(t, U+1) > max over u ≤ U of φ(t, u), per example, with U = ``lengths`` (B,) -> (B,) bool."""
    top = int(lengths.max()) + 1
    phi = window_weights(alpha, beta, kappa, top)  # (B, U+1)
    u = torch.arange(1, top + 1, device=lengths.device)
    inside = u[None, :] <= lengths[:, None]  # (B, U+1)
    beyond = phi.gather(1, lengths[:, None].long()).squeeze(1)  # φ(t, U+1): column U (0-based)
    best_inside = phi.masked_fill(~inside, float("-inf")).max(1).values
    return beyond > best_inside
