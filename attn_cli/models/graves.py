"""Graves (2013), "Generating Sequences With Recurrent Neural Networks" (arXiv:1308.0850): the handwriting
prediction network (§4) and the synthesis network (§5), which adds the soft window over the text
(:mod:`attn_cli.attention.window`).

Both are a stack of LSTM layers over pen offsets xₜ = (Δx, Δy, end-of-stroke) with skip connections from
the input to every layer and from every layer to the output (§2, Fig. 1), and a mixture-density output
(§4.1, eqs. 15-22): M bivariate Gaussians (π, μ, σ, ρ) for the next offset and a Bernoulli e for the pen
lifting,

    e = 1 / (1 + exp(ê)),  π = softmax(π̂),  μ = μ̂,  σ = exp(σ̂),  ρ = tanh(ρ̂)          (18-22)
    L(x) = Σₜ −log Σⱼ πⱼ N(xₜ₊₁ | μⱼ, σⱼ, ρⱼ) − log(e if pen lifts else 1 − e)       (26)

In the synthesis network the first layer also reads the previous window vector wₜ₋₁, the window is computed
from its output h¹ₜ, and wₜ feeds the layers above at step t (§5, Fig. 12). Sampling (§5.3) can be biased
(σ̂ − b, π̂ (1 + b); eqs. 61-62) and stops when the window has passed the last character; priming (§5.5)
clamps the inputs to a real line whose text is put before the text to write.

Gradient clipping (§4.2): derivatives are clipped elementwise, to [−100, 100] at the mixture outputs and to
[−10, 10] for the LSTM layers, with tensor hooks (``clip_output``, ``clip_lstm``; 0 disables). Deviation: the
paper clips the derivatives with respect to the LSTM layers' net inputs; torch's fused LSTM offers no hook
inside the cell, so here they are clipped where they leave each layer, on its hidden outputs hⁿₜ (every step
of the stepped first layer of the synthesis network, the whole sequence of the others).

The window's κ̂ bias starts at log(``window_step``) (ours; the paper gives no initialisation), so the window
starts at about the pen's pace rather than one character per point (:mod:`attn_cli.attention.window`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.window import SoftWindow
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS

RHO_LIMIT = 1 - 1e-6  # keeps 1 − ρ² > 0 in float32 when tanh saturates


@dataclass
class Mixture:
    """The output distribution of one or more steps; shapes (..., M) unless said."""

    e_logit: torch.Tensor  # (...,) logit of the pen lifting: −ê (eq. 18)
    log_pi: torch.Tensor
    mu: torch.Tensor  # (..., M, 2)
    log_sigma: torch.Tensor  # (..., M, 2)
    rho: torch.Tensor


def mixture(y: torch.Tensor, bias: float = 0.0) -> Mixture:
    """Raw outputs ``y`` (..., 1 + 6M) -> the mixture of eqs. (18-22); ``bias`` b > 0 is the paper's biased
    sampling (eqs. 61-62): σ = exp(σ̂ − b), π = softmax(π̂ (1 + b)); b = 0 is the trained density."""
    m = (y.size(-1) - 1) // 6
    e_hat = y[..., 0]
    pi_hat, mu, s_hat, rho_hat = (
        y[..., 1 : 1 + m],
        y[..., 1 + m : 1 + 3 * m],
        y[..., 1 + 3 * m : 1 + 5 * m],
        y[..., 1 + 5 * m :],
    )
    shape = (*y.shape[:-1], m, 2)
    return Mixture(
        e_logit=-e_hat,
        log_pi=torch.log_softmax(pi_hat * (1 + bias), dim=-1),
        mu=mu.reshape(shape),
        log_sigma=s_hat.reshape(shape) - bias,
        rho=torch.tanh(rho_hat).clamp(-RHO_LIMIT, RHO_LIMIT),
    )


def mixture_nll(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """−log Pr(x | y) of eq. (26) per step: ``y`` (..., 1 + 6M), ``target`` (..., 3) -> (...)."""
    mix = mixture(y)
    d = (target[..., None, :2] - mix.mu) / mix.log_sigma.exp()  # (..., M, 2) standardised offsets
    one_minus = 1 - mix.rho**2
    z = d[..., 0] ** 2 + d[..., 1] ** 2 - 2 * mix.rho * d[..., 0] * d[..., 1]  # (..., M), eq. (25)
    log_n = -math.log(2 * math.pi) - mix.log_sigma.sum(-1) - 0.5 * torch.log(one_minus) - z / (2 * one_minus)
    density = -torch.logsumexp(mix.log_pi + log_n, dim=-1)
    pen = F.binary_cross_entropy_with_logits(mix.e_logit, target[..., 2], reduction="none")
    return density + pen


def mixture_mean(y: torch.Tensor) -> torch.Tensor:
    """The expected next offset Σⱼ πⱼ μⱼ (..., 2): what the SSE column of Tables 2-3 measures against."""
    mix = mixture(y)
    return (mix.log_pi.exp()[..., None] * mix.mu).sum(-2)


def sample_mixture(y: torch.Tensor, bias: float, generator: torch.Generator | None) -> torch.Tensor:
    """One offset per row of ``y`` (B, 1 + 6M) -> (B, 3): a component from π, a correlated Gaussian draw, the
    pen lifting with probability e."""
    mix = mixture(y, bias)
    j = torch.multinomial(mix.log_pi.exp(), 1, generator=generator).squeeze(1)  # (B,)
    rows = torch.arange(y.size(0), device=y.device)
    mu, sigma, rho = mix.mu[rows, j], mix.log_sigma[rows, j].exp(), mix.rho[rows, j]  # (B, 2), (B, 2), (B,)
    z = torch.randn(y.size(0), 2, generator=generator, device=y.device)
    dx = mu[:, 0] + sigma[:, 0] * z[:, 0]
    dy = mu[:, 1] + sigma[:, 1] * (rho * z[:, 0] + torch.sqrt(1 - rho**2) * z[:, 1])
    lift = torch.rand(y.size(0), generator=generator, device=y.device) < torch.sigmoid(mix.e_logit)
    return torch.stack([dx, dy, lift.to(y.dtype)], 1)


def _clip(t: torch.Tensor, bound: float) -> torch.Tensor:
    """Clip the derivative reaching ``t`` to [−bound, bound], elementwise (§4.2); identity when not training."""
    if bound > 0 and t.requires_grad:
        t.register_hook(lambda g: g.clamp(-bound, bound))
    return t


@dataclass
class State:
    """Recurrent state between steps: each layer's (h, c) (B, H); the window's κ (B, K) and w (B, V)."""

    h: list[torch.Tensor]
    c: list[torch.Tensor]
    kappa: torch.Tensor | None = None
    w: torch.Tensor | None = None


class GravesNet(nn.Module):
    """The LSTM stack with skip connections and the mixture-density output; the window when ``window`` > 0."""

    @dataclass(frozen=True)
    class Config:
        layers: int = 3
        hidden: int = 400
        mixtures: int = 20  # M
        clip_lstm: float = 10.0  # elementwise derivative bound for the LSTM layers; 0: off
        clip_output: float = 100.0  # elementwise derivative bound at the mixture outputs; 0: off

    conditional = False
    layer1: nn.Module
    window: SoftWindow | None

    def __init__(self, cfg: Any, alphabet: str = "", window: int = 0, **meta: Any) -> None:
        super().__init__()
        for name, value in (("mixtures", cfg.mixtures), ("window", getattr(cfg, "window", 1))):
            if value < 1:
                raise AttnError(f"model.{name}={value} is invalid: it must be 1 or more; fix the recipe or its --set")
        if getattr(cfg, "window_step", 1.0) <= 0:
            raise AttnError(
                f"model.window_step={cfg.window_step} is invalid: it must be above 0 (characters per pen point)"
            )
        if min(cfg.clip_lstm, cfg.clip_output) < 0:
            raise AttnError("model.clip_lstm / model.clip_output must be 0 (off) or a positive bound")
        self.cfg = cfg
        self.alphabet = alphabet
        self.vocab = len(alphabet) + 2  # one-hot width: 0 padding, 1 unknown, then the alphabet
        w_dim = self.vocab if window else 0
        h = cfg.hidden
        if window:
            self.layer1 = nn.LSTMCell(3 + w_dim, h)
            self.window = SoftWindow(h, window, init_step=cfg.window_step)
        else:
            self.layer1 = nn.LSTM(3, h, batch_first=True)
            self.window = None
        self.upper = nn.ModuleList(nn.LSTM(3 + h + w_dim, h, batch_first=True) for _ in range(cfg.layers - 1))
        self.out = nn.Linear(cfg.layers * h, 1 + 6 * cfg.mixtures)  # y = b + Σₙ W hⁿ (eq. 4)

    # -- training --------------------------------------------------------------------------------
    def forward(self, strokes: torch.Tensor, chars: torch.Tensor, char_len: torch.Tensor) -> dict[str, torch.Tensor]:
        """``strokes`` (B, T, 3) inputs x₁..x_T, ``chars`` (B, U) ids (0 padding), ``char_len`` (B,) ->
        ``y`` (B, T, 1 + 6M) the raw outputs predicting x₂..x_{T+1}; with the window also ``phi`` (B, T, U)
        and ``kappa`` (B, T, K)."""
        b, t, _ = strokes.shape
        out: dict[str, torch.Tensor] = {}
        if self.window is None:
            h1, _ = self.layer1(strokes)  # (B, T, H)
            h1 = _clip(h1, self.cfg.clip_lstm)
            w = strokes.new_zeros(b, t, 0)
        else:
            onehot, mask = self._onehot(chars)
            state = self.init_state(b, strokes.device)
            hs, ws, phis, kappas = [], [], [], []
            for i in range(t):
                state, phi = self._first_step(strokes[:, i], state, onehot, mask)  # h¹ₜ clipped inside
                assert state.w is not None and state.kappa is not None
                hs.append(state.h[0])
                ws.append(state.w)
                phis.append(phi)
                kappas.append(state.kappa)
            h1, w = torch.stack(hs, 1), torch.stack(ws, 1)  # (B, T, H), (B, T, V)
            out["phi"], out["kappa"] = torch.stack(phis, 1), torch.stack(kappas, 1)  # (B, T, U), (B, T, K)
        layers = [h1]
        for lstm in self.upper:
            hn, _ = lstm(torch.cat([strokes, layers[-1], w], -1))  # (B, T, H)
            layers.append(_clip(hn, self.cfg.clip_lstm))
        out["y"] = _clip(self.out(torch.cat(layers, -1)), self.cfg.clip_output)  # (B, T, 1 + 6M)
        return out

    # -- stepping (sampling, priming) ---------------------------------------------------------------
    def init_state(self, b: int, device: torch.device) -> State:
        h = self.cfg.hidden
        zeros = [torch.zeros(b, h, device=device) for _ in range(self.cfg.layers)]
        state = State(h=zeros, c=[z.clone() for z in zeros])
        if self.window is not None:
            state.kappa = torch.zeros(b, self.window.bumps, device=device)
            state.w = torch.zeros(b, self.vocab, device=device)
        return state

    def _onehot(self, chars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, U) ids -> one-hot (B, U, V) float and the mask of real characters (B, U)."""
        return F.one_hot(chars, self.vocab).float(), chars > 0

    def _first_step(
        self, x: torch.Tensor, state: State, onehot: torch.Tensor, mask: torch.Tensor
    ) -> tuple[State, torch.Tensor]:
        """The synthesis network's first layer and window at one step: x (B, 3) -> new state, φ (B, U)."""
        assert self.window is not None and state.w is not None and state.kappa is not None
        h, c = self.layer1(torch.cat([x, state.w], -1), (state.h[0], state.c[0]))
        h = _clip(h, self.cfg.clip_lstm)
        w, phi, kappa = self.window(h, state.kappa, onehot, mask)
        return State(h=[h, *state.h[1:]], c=[c, *state.c[1:]], kappa=kappa, w=w), phi

    def step(
        self, x: torch.Tensor, state: State, onehot: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """One step of the whole network: x (B, 3) -> outputs y (B, 1 + 6M), the next state, φ (B, U) or None."""
        phi = None
        if self.window is None:
            _, (h, c) = self.layer1(x[:, None], (state.h[0][None], state.c[0][None]))
            state = State(h=[h[0], *state.h[1:]], c=[c[0], *state.c[1:]])
            w = x.new_zeros(x.size(0), 0)
        else:
            assert onehot is not None and mask is not None
            state, phi = self._first_step(x, state, onehot, mask)
            assert state.w is not None
            w = state.w
        hs, cs = [state.h[0]], [state.c[0]]
        for n, lstm in enumerate(self.upper, start=1):
            _, (h, c) = lstm(torch.cat([x, hs[-1], w], -1)[:, None], (state.h[n][None], state.c[n][None]))
            hs.append(h[0])
            cs.append(c[0])
        y: torch.Tensor = self.out(torch.cat(hs, -1))
        return y, State(h=hs, c=cs, kappa=state.kappa, w=state.w), phi

    @torch.no_grad()
    def sample(
        self,
        chars: torch.Tensor | None,
        *,
        steps: int,
        bias: float = 0.0,
        generator: torch.Generator | None = None,
        prime: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Write one line. ``chars`` (U,) ids of the text (with a priming line's text first when ``prime``
        (P, 3), the real line's offsets, is given); at most ``steps`` points, fewer when the window passes the
        last character (§5.3). -> ``offsets`` (T, 3) generated after the prime, ``phi`` (T, U)."""
        device = self.out.weight.device
        state = self.init_state(1, device)
        onehot = mask = None
        length = torch.zeros(1, dtype=torch.long, device=device)
        if self.window is not None:
            if chars is None:
                raise ValueError("the synthesis network writes a text: give chars")
            onehot, mask = self._onehot(chars[None].to(device))
            length = mask.sum(1)
        # training's first input is a line's first row (0, 0, e); a prime is a whole line, first row included
        inputs = [p[None].to(device) for p in prime] if prime is not None else [torch.zeros(1, 3, device=device)]
        for x in inputs:
            y, state, phi = self.step(x, state, onehot, mask)
        points, phis = [], []
        for _ in range(steps):
            x = sample_mixture(y, bias, generator)
            points.append(x[0])
            y, state, phi = self.step(x, state, onehot, mask)
            if phi is not None:
                phis.append(phi[0])
                assert self.window is not None and state.kappa is not None
                if bool(self.window.past_end(state.h[0], state.kappa, length)[0]):
                    break
        out = {"offsets": torch.stack(points) if points else torch.zeros(0, 3)}
        if phis:
            out["phi"] = torch.stack(phis)  # (T, U)
        return out


@MODELS.register("graves-prediction", task="handwriting")
class GravesPrediction(GravesNet):
    """§4: the prediction network, unconditioned (it scribbles handwriting-like strokes of no given text)."""

    def __init__(self, cfg: GravesNet.Config, **meta: Any) -> None:
        super().__init__(cfg, str(meta.get("alphabet", "")), window=0)


@MODELS.register("graves-synthesis", task="handwriting")
class GravesSynthesis(GravesNet):
    """§5: the synthesis network, the prediction network conditioned on the text through the soft window."""

    @dataclass(frozen=True)
    class Config(GravesNet.Config):
        window: int = 10  # K, the window's Gaussian bumps
        # κ's initial advance per pen point, in characters: ~1 / (points per character); 1/8 suits hershey-lines,
        # 1/25 IAM-OnDB (attn_cli.attention.window: a bias initialisation, eq. 51 unchanged)
        window_step: float = 0.125

    conditional = True

    def __init__(self, cfg: Config, **meta: Any) -> None:
        super().__init__(cfg, str(meta.get("alphabet", "")), window=cfg.window)
