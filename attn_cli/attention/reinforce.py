"""REINFORCE helpers for hard attention (Williams 1992), shared by RAM/DRAM and hard Show-Attend-Tell.

* RAM (Mnih et al. 2014, §3 eq. (2)-(3)): a Gaussian location policy with fixed σ,
  reward R = 1 for a correct classification, a learned baseline b_t, and the hybrid loss
  (supervised cross-entropy + REINFORCE for the locations + MSE for the baseline).
* Hard attention captioning (Xu et al. 2015 §4.1 eq. (11)-(12)): a categorical over the
  L grid locations, reward log p(y|a, s), a moving-average baseline and an entropy bonus.
* RL-NTM (Zaremba & Sutskever 2015 §4): categorical tape moves and output decisions at every step,
  each weighted by the reward still to come (:func:`reward_to_go`) less a learned baseline.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def gaussian_sample(mean: torch.Tensor, std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample l ~ N(mean, std²) with the sample detached; returns (l, log π(l)) summed over the last dim.

    The gradient of log π flows into ``mean`` only (the sample itself is a constant),
    as in RAM's location network.
    """
    sample = (mean + std * torch.randn_like(mean)).detach()
    log_prob = -((sample - mean) ** 2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    return sample, log_prob.sum(-1)


def emit_location(
    mean: torch.Tensor, std: float, sample: bool, baseliner: nn.Module, state: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """One location-emission step of RAM (Mnih et al. 2014 §3) and DRAM (Ba et al. 2015 §3).

    ``mean`` (B, 2) is the location network's output tanh(Linear(h)). With ``sample`` the location is
    l ~ N(mean, std²) (:func:`gaussian_sample`) and the step also returns log π(l) (B,) and the
    baseline b_t = ``baseliner``(state) (B,), read from ``state`` detached so that the baseline's
    MSE trains only the baseline network; without it (evaluation) the location is the mean and
    there is no log π nor baseline. The location is clipped to the image, [-1, 1], after log π is
    taken, so the policy's density stays a Gaussian.
    """
    if not sample:
        return mean.clamp(-1, 1), None, None
    loc, log_pi = gaussian_sample(mean, std)
    return loc.clamp(-1, 1), log_pi, baseliner(state.detach()).squeeze(1)


def categorical_sample(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample an index per row of ``probs`` (B, L); returns (index (B,), log p(index) (B,), entropy (B,))."""
    # float32: bf16 rows (autocast) miss the simplex check's tolerance, and sampling wants the precision
    dist = torch.distributions.Categorical(probs=probs.float().clamp_min(1e-12))
    index = dist.sample()
    return index, dist.log_prob(index), dist.entropy()


def reinforce_loss(log_probs: torch.Tensor, reward: torch.Tensor, baseline: torch.Tensor | None = None) -> torch.Tensor:
    """Score-function surrogate: −E[(R − b) · Σ_t log π(a_t)] with R − b treated as a constant.

    ``log_probs`` (B, T) or (B,); ``reward`` (B,); ``baseline`` (B,) or (B, T) or None.
    """
    if log_probs.dim() == 1:
        log_probs = log_probs.unsqueeze(1)
    advantage = reward.unsqueeze(1) if reward.dim() == 1 else reward
    if baseline is not None:
        advantage = advantage - (baseline.unsqueeze(1) if baseline.dim() == 1 else baseline)
    return -(advantage.detach() * log_probs).sum(1).mean()


def reward_to_go(reward: torch.Tensor) -> torch.Tensor:
    """R_t = Σ_{i≥t} r_i along the last dim of ``reward`` (B, T): an action cannot change the rewards before it,
    so only those after it weight its log π (Zaremba & Sutskever 2015 §4, "causality of reinforce")."""
    return reward.flip(-1).cumsum(-1).flip(-1)


class MovingAverageBaseline(nn.Module):
    """b ← β·b + (1−β)·mean(R) (Xu et al. §4.1, following Weaver & Tao 2001). A buffer, like BN statistics."""

    value: torch.Tensor  # () the baseline b
    initialised: torch.Tensor  # () bool: b has seen a reward

    def __init__(self, decay: float = 0.9) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("value", torch.zeros(()))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def forward(self, reward: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The baseline to subtract for this batch (the value before updating with it).

        ``mask`` (B,) bool: the rows whose reward estimates the baseline (hard captioning passes the
        captions that sampled their locations; those given the expected location are another policy's
        rewards). No masked row: the baseline is returned and left as it is.
        """
        rows = reward.detach() if mask is None else reward.detach()[mask]
        if rows.numel() == 0:
            return self.value.expand_as(reward).clone()
        mean = rows.mean()
        current = self.value.expand_as(reward).clone() if self.initialised else mean.expand_as(reward).clone()
        if self.training:
            new = torch.where(self.initialised, self.decay * self.value + (1 - self.decay) * mean, mean)
            self.value.copy_(new)
            self.initialised.fill_(True)
        return current
