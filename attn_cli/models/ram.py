"""Recurrent Attention Model (Mnih, Heess, Graves & Kavukcuoglu, "Recurrent Models of Visual
Attention", NIPS 2014).

§3.1: glimpse sensor ρ(x_t, l_{t-1}) (k scales of g×g, :func:`attn_cli.attention.spatial.retina`);
glimpse network g_t = Rect(Linear(h_g) + Linear(h_l)) with h_g = Rect(Linear(ρ)), h_l = Rect(Linear(l));
core network h_t = Rect(Linear(h_{t-1}) + Linear(g_t)); location network: l_t ~ N(tanh(Linear(h_t)), σ²)
with fixed σ; action network: softmax(Linear(h_T)) after the last glimpse.
§3.2: reward R = 1 if the classification is correct, else 0; REINFORCE (eq. (2)) with a learned
baseline b_t = Linear(h_t) (variance reduction, eq. (3)); the hybrid loss adds the supervised
cross-entropy of the action network and the MSE of the baseline against R.

Checked against §4 (classification experiments): the core is the rectifier RNN above with 256 units
(``core: rnn``; the paper's LSTM core is for the dynamic "catch" game only, ``core: lstm`` here);
h_g, h_l 128 and g_t 256 units; the retina is 8×8 at one scale on 28×28 and 12×12 at 3 scales (4 on
100×100) on the larger images (the recipes); the reward comes once, after the last glimpse; the
baseline is learned by regressing it on R; the gradient estimate uses one episode per image and
update (eq. (2) with M = 1: the batch supplies the average). Locations use the paper's normalised
frame, (0, 0) the image's centre and ±1 its edges, so σ is in half-image units: the recipes'
σ = 0.17 is 2.4 px on 28×28 and 5.1 px on 60×60. The paper chose σ by random search and does not
print it; the recipes used 0.1 (1.4 px on 28×28), below the 0.17-0.22 of public re-implementations,
and now use 0.17 (a short comparison with 0.22 on 28×28, docs/vision.md, did not separate them).
The translated and cluttered training images are drawn afresh every batch (``data.resample``), as
the paper generates them on the fly; the test sets stay fixed.

Deviations (stated): the location and baseline networks read h_t detached, so REINFORCE trains
only them and the supervised loss trains everything else (as in most public re-implementations);
the location mean is tanh(Linear(h_t)) (the paper: Linear(h_t)), so it stays inside the image;
the first glimpse is at the centre (``first_glimpse: uniform`` draws each sampled trajectory's first
glimpse uniformly over the image instead, as kevinzakka/recurrent-visual-attention does; the paper does
not say where its first glimpse looks; ``reinforce_weight`` scales the REINFORCE term of the hybrid
loss, 1 in the paper, 0.01 in that re-implementation); training uses Adam with the rate halved after ``lr_patience``
validations without improvement, down to 1e-5 (``lr_schedule: plateau``, stepped once per validation) (the paper:
SGD with momentum 0.9, the rate annealed linearly to 0); at evaluation the location is the policy's mean (no sampling), so evaluation
is deterministic, unless ``eval.samples`` = M > 0 averages M sampled trajectories
(:meth:`RAM.predict`); locations are clipped to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.reinforce import emit_location, reinforce_loss
from attn_cli.attention.spatial import retina
from attn_cli.registry import MODELS


class GlimpseNet(nn.Module):
    """g_t = Rect(Linear(h_g) + Linear(h_l)) (RAM §3.1, Fig. 1B)."""

    def __init__(self, in_dim: int, hg: int, hl: int, out: int) -> None:
        super().__init__()
        self.what, self.where = nn.Linear(in_dim, hg), nn.Linear(2, hl)
        self.what2, self.where2 = nn.Linear(hg, out), nn.Linear(hl, out)

    def forward(self, glimpse: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        hg = F.relu(self.what(glimpse.flatten(1)))  # (B, hg)
        hl = F.relu(self.where(loc))  # (B, hl)
        return F.relu(self.what2(hg) + self.where2(hl))  # (B, out)


@MODELS.register("ram", task="vision")
class RAM(nn.Module):
    kind = "classify"
    picture = "glimpses"  # what `attn visualize` draws: the glimpse path (Mnih et al. Fig. 2)

    @dataclass(frozen=True)
    class Config:
        glimpses: int = 6
        glimpse_size: int = 8  # g: side of each retina patch
        scales: int = 1  # k: patches of g, 2g, 4g, ... around l
        hg: int = 128
        hl: int = 128
        glimpse_dim: int = 256
        hidden: int = 256
        core: Literal["rnn", "lstm"] = "rnn"
        std: float = 0.17  # fixed σ of the Gaussian location policy, in half-image units (±1 = the edges)
        reinforce_weight: float = 1.0
        # where the first glimpse looks while locations are sampled (training, Monte-Carlo evaluation):
        # "centre", or "uniform" over the image as kevinzakka/recurrent-visual-attention draws it; the
        # policy's mean path (deterministic evaluation) always starts at the centre
        first_glimpse: Literal["centre", "uniform"] = "centre"

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        c = image_shape[0]
        self.glimpse = GlimpseNet(cfg.scales * c * cfg.glimpse_size**2, cfg.hg, cfg.hl, cfg.glimpse_dim)
        if cfg.core == "lstm":
            self.core: nn.Module = nn.LSTMCell(cfg.glimpse_dim, cfg.hidden)
        else:
            self.core_i, self.core_h = nn.Linear(cfg.glimpse_dim, cfg.hidden), nn.Linear(cfg.hidden, cfg.hidden)
        self.locator = nn.Linear(cfg.hidden, 2)
        self.baseliner = nn.Linear(cfg.hidden, 1)
        self.action = nn.Linear(cfg.hidden, classes)

    def _step(self, g: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        if self.cfg.core == "lstm":
            h, c = self.core(g, state)
            return h, (h, c)
        h = F.relu(self.core_i(g) + self.core_h(state))
        return h, h

    def forward(self, x: torch.Tensor, sample_locations: bool) -> dict[str, torch.Tensor]:
        """Run the glimpses. Returns logits (B, K), locations (B, T, 2) (where each glimpse looked),
        log π (B, T-1), baselines (B, T-1), glimpses (B, T, S, C, g, g)."""
        cfg = self.cfg
        b = x.size(0)
        loc = x.new_zeros(b, 2)  # (B, 2) first glimpse at the centre
        if sample_locations and cfg.first_glimpse == "uniform":
            loc = torch.rand(b, 2, device=x.device, dtype=x.dtype) * 2 - 1  # U[-1, 1]², anywhere in the image
        h0 = x.new_zeros(b, cfg.hidden)
        state: Any = (h0, h0.clone()) if cfg.core == "lstm" else h0
        locs, logps, bases, patches = [], [], [], []
        for t in range(cfg.glimpses):
            patch, _ = retina(x, loc, cfg.glimpse_size, cfg.scales)  # (B, S, C, g, g)
            locs.append(loc)
            patches.append(patch)
            h, state = self._step(self.glimpse(patch, loc), state)  # (B, hidden)
            if t < cfg.glimpses - 1:
                mean = torch.tanh(self.locator(h.detach()))  # (B, 2)
                loc, logp, base = emit_location(mean, cfg.std, sample_locations, self.baseliner, h)
                if logp is not None and base is not None:
                    logps.append(logp)
                    bases.append(base)
        out = {"logits": self.action(h), "locations": torch.stack(locs, 1), "glimpses": torch.stack(patches, 1)}
        if logps:
            out["log_pi"], out["baseline"] = torch.stack(logps, 1), torch.stack(bases, 1)
        return out

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        out = self(x, sample_locations=True)
        ce = F.cross_entropy(out["logits"], y)
        reward = (out["logits"].argmax(-1) == y).float()  # (B,)
        terms = {"ce": float(ce.detach()), "reward": float(reward.mean())}
        loss = ce
        if "log_pi" in out:
            rl = reinforce_loss(out["log_pi"], reward, out["baseline"])
            mse = F.mse_loss(out["baseline"], reward[:, None].expand_as(out["baseline"]))
            loss = loss + self.cfg.reinforce_weight * rl + mse
            terms["reinforce"], terms["baseline_mse"] = float(rl.detach()), float(mse.detach())
        return loss, terms

    def predict(self, x: torch.Tensor, y: torch.Tensor, samples: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
        """Classify ``x``: ``samples`` = 0 follows the policy's mean locations (deterministic); M > 0
        averages the class probabilities of M trajectories sampled from the policy as in training
        (Monte-Carlo evaluation, as in public RAM re-implementations; the paper does not say which it
        used), their noise drawn from ``seed`` without touching the global random state."""
        if samples <= 0:
            logits = self(x, sample_locations=False)["logits"]
        else:
            with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
                torch.manual_seed(seed)
                probs = torch.stack([F.softmax(self(x, sample_locations=True)["logits"], -1) for _ in range(samples)])
            logits = probs.mean(0).clamp_min(1e-12).log()  # (B, K) log of the averaged probabilities
        return {"pred": logits.argmax(-1), "loss": F.cross_entropy(logits, y, reduction="none")}
