"""DRAW: A Recurrent Neural Network for Image Generation (Gregor, Danihelka, Graves, Rezende &
Wierstra, ICML 2015).

Generation (§2, eq. (3)-(8)): x̂_t = x − σ(c_{t−1}); r_t = read(x, x̂_t, h^dec_{t−1});
h^enc_t = LSTM^enc([r_t, h^dec_{t−1}]); z_t ~ Q(Z_t | h^enc_t) = N(μ_t, σ_t); h^dec_t = LSTM^dec(z_t);
c_t = c_{t−1} + write(h^dec_t). Loss (eq. (9)-(12)): L^x = −log D(x | c_T) (Bernoulli, nats)
plus L^z = ½ Σ_t (μ² + σ² − log σ² − 1); their sum bounds the NLL (Table 2).
Attention (§3.2-3.3): read = γ [Fy x Fxᵀ, Fy x̂ Fxᵀ] with an N×N Gaussian filterbank, write =
(1/γ̂) F̂yᵀ w_t F̂x; without attention read = [x, x̂] and write = Linear(h^dec) (§3.1).
Classification (§4.1, cluttered MNIST, Table 1): read attention only, the encoder LSTM looks
``steps`` times and a softmax reads its last state ("Differentiable RAM" in the paper).

Initialisation (not given in the paper; :func:`attn_cli.attention.spatial.window_bias`): the
read and write heads start with zero weights and a bias that puts the window on the whole image —
centred, stride δ = max(A, B)/N, σ = δ/2, read γ = 1 and write γ̂ = N²/(A·B) (a constant patch v
paints ≈ v). With the bias at zero instead (δ̃ = 1, σ² = 1) the N = 2 read sat on the four corner
pixels, which are 0 in MNIST: the encoder saw nothing, no gradient could move the window, and the
posterior collapsed (L^z ≈ 0.02, the canvas the mean digit); the 1/γ̂ = 1 write painted a digit at
≈ N²/(A·B) of the patch's scale.

Deviations: the evaluation bound uses one posterior sample drawn from a fixed seed per batch
(deterministic; the paper's bound is also a one-sample estimate); filterbank indices are
1-based (see :func:`attn_cli.attention.spatial.filterbank`), and the normalisation of eq. (25)-(26)
is computed as a softmax (the same value, but a filter far off the image keeps its gradient).
Training settings (the recipes; we found no optimiser, learning rate, batch size or clipping in the
paper): Adam at 10⁻³, batch 64 and a global gradient-norm clip of 10, the same with and without
attention, so that the two are compared at equal updates (``train.max_steps``); T = 16 on a CPU where
Table 3 has 64. At T = 16 the 2×2 read shows the encoder 128 filtered values over the whole sequence
against 2 · 784 per step without attention, which is why attention is behind at equal updates there
(docs/vision.md, "Equal updates").
Implementation only (same maths): x and x̂ are read with one filterbank; the write at step t and
the read at t + 1 both take h^dec_t, so the three heads share one matmul; 1/γ̂ = exp(−log γ̂).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.spatial import draw_params, filter_read, filter_write, window_bias
from attn_cli.registry import MODELS


@MODELS.register("draw", task="vision")
class DRAW(nn.Module):
    picture = "canvas"  # what `attn visualize` draws: read boxes, or the canvas over time (Gregor et al. Fig. 3, 7)

    @dataclass(frozen=True)
    class Config:
        mode: Literal["generate", "classify"] = "generate"
        attention: bool = True
        steps: int = 64  # T (glimpses for classification)
        read_n: int = 2  # read filterbank N×N
        write_n: int = 5  # write filterbank N×N
        enc: int = 256
        dec: int = 256
        z: int = 100
        # what train.compile compiles: one time step (true; the compilation does not grow with T) or the whole
        # unrolled sequence (false; on one CPU thread at T = 16: 1.40× eager against the step's 1.08×, but a
        # compilation that grows with T) — results/bench/draw-gen-train-cpu+*.json, docs/vision.md "Speed"
        compile_step: bool = True

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, **meta: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.kind = "generate" if cfg.mode == "generate" else "classify"
        self.c, self.h, self.w = image_shape
        npix = self.c * self.h * self.w
        read_dim = 2 * self.c * cfg.read_n**2 if cfg.attention else 2 * npix
        if cfg.mode == "classify":
            read_dim = self.c * cfg.read_n**2 if cfg.attention else npix
            self.encoder = nn.LSTMCell(read_dim + cfg.enc, cfg.enc)
            self.out = nn.Linear(cfg.enc, classes)
            if cfg.attention:
                self.read_head = self._window_head(cfg.enc, cfg.read_n)
            return
        self.encoder = nn.LSTMCell(read_dim + cfg.dec, cfg.enc)
        self.decoder = nn.LSTMCell(cfg.z, cfg.dec)
        self.q = nn.Linear(cfg.enc, 2 * cfg.z)
        # without attention the read is the whole image and the write a whole canvas: no window heads
        # (created before write_patch, as always, so a seed gives the initialisation it gave before)
        if cfg.attention:
            self.read_head = self._window_head(cfg.dec, cfg.read_n)
            self.write_head = self._window_head(cfg.dec, cfg.write_n, write=True)
        self.write_patch = nn.Linear(cfg.dec, self.c * (cfg.write_n**2 if cfg.attention else self.h * self.w))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Checkpoints of runs without attention written before 2026-12-06 hold the two window heads that
        such a model then built and never used: they are dropped, so those runs still evaluate and resume."""
        if not self.cfg.attention:
            for key in [k for k in state_dict if k.startswith((f"{prefix}read_head.", f"{prefix}write_head."))]:
                del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _window_head(self, hidden: int, n: int, write: bool = False) -> nn.Linear:
        """An attention head W(h) (eq. (21)) that starts on the whole image (:func:`window_bias`): zero
        weights, so every example's first window is centred, tiles the image with stride max(A, B)/N
        and σ = δ/2."""
        head = nn.Linear(hidden, 5)
        nn.init.zeros_(head.weight)
        with torch.no_grad():
            head.bias.copy_(window_bias(n, self.h, self.w, write))
        return head

    # -- the two attention heads --------------------------------------------------------------
    def read(
        self, images: list[torch.Tensor], h: torch.Tensor, raw: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """Eq. (27) on every image in ``images`` with one filterbank from W(h) (``raw`` if given)."""
        if not self.cfg.attention:
            return torch.cat([im.flatten(1) for im in images], 1), None
        raw = self.read_head(h) if raw is None else raw
        params = draw_params(raw, self.cfg.read_n, self.h, self.w)
        x = images[0] if len(images) == 1 else torch.cat(images, 1)  # (B, k·C, H, W): one filterbank for all
        return filter_read(x, params, self.cfg.read_n)[0].flatten(1), params  # (B, k·C·N·N)

    def write(
        self, h: torch.Tensor, raw: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """Eq. (29); ``raw`` (B, 5 + C·N²) = [write_head(h), write_patch(h)] if already computed."""
        b = h.size(0)
        if not self.cfg.attention:
            return self.write_patch(h).view(b, self.c, self.h, self.w), None
        raw = torch.cat([self.write_head(h), self.write_patch(h)], 1) if raw is None else raw
        params = draw_params(raw[:, :5], self.cfg.write_n, self.h, self.w)
        patch = raw[:, 5:].reshape(b, self.c, self.cfg.write_n, self.cfg.write_n)  # (B, C, N, N)
        return filter_write(patch, params, self.h, self.w)[0], params

    # -- generation -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Encode/decode ``x`` (B, C, H, W) in [0, 1]; returns per-example L^x, L^z (B,) and the canvases."""
        cfg, b = self.cfg, x.size(0)
        canvas = x.new_zeros(x.shape)  # (B, C, H, W) pre-sigmoid
        sig = torch.full_like(x, 0.5)  # σ(c_0)
        h_dec = x.new_zeros(b, cfg.dec)
        s_dec = (h_dec, h_dec.clone())
        s_enc = (x.new_zeros(b, cfg.enc), x.new_zeros(b, cfg.enc))
        # all T noise draws at once; a seeded draw is made on the CPU (the generator's device) and moved:
        # the same seed, the same noise on any device
        shape = (cfg.steps, b, cfg.z)
        noise = torch.randn(shape, generator=generator).to(x.device) if generator else x.new_empty(shape).normal_()
        weight: torch.Tensor | None = None
        bias: torch.Tensor | None = None
        raw: torch.Tensor | None = None
        if cfg.attention:  # the write at t and the read at t + 1 both read h^dec_t: one matmul for the three heads
            heads = (self.read_head, self.write_head, self.write_patch)
            weight, bias = torch.cat([m.weight for m in heads]), torch.cat([m.bias for m in heads])
            raw = bias.expand(b, -1)  # W h^dec_0 + b with h^dec_0 = 0
        canvases, reads, writes, mus, log_sigmas = [], [], [], [], []
        for t in range(cfg.steps):
            canvas, sig, s_enc, s_dec, raw, mu, log_sigma, rp, wp = self._step(
                x, canvas, sig, s_enc, s_dec, raw, noise[t], weight, bias
            )
            canvases.append(sig)
            reads.append(rp)
            writes.append(wp)
            mus.append(mu)
            log_sigmas.append(log_sigma)
        mu, log_sigma = torch.stack(mus), torch.stack(log_sigmas)  # (T, B, z)
        kl = 0.5 * (mu**2 + (2 * log_sigma).exp() - 2 * log_sigma - 1).sum((0, 2))  # eq. (11), (B,)
        lx = F.binary_cross_entropy_with_logits(canvas, x, reduction="none").flatten(1).sum(1)  # (B,) nats
        return {"lx": lx, "lz": kl, "canvases": canvases, "reads": reads, "writes": writes}

    def _step(
        self,
        x: torch.Tensor,
        canvas: torch.Tensor,
        sig: torch.Tensor,
        s_enc: tuple[torch.Tensor, torch.Tensor],
        s_dec: tuple[torch.Tensor, torch.Tensor],
        raw: torch.Tensor | None,
        eps: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
    ) -> tuple[Any, ...]:
        """One time step of eq. (3)-(8); ``raw`` = the three heads on h^dec_{t−1} (attention only).

        A function of its own so that ``train.compile`` compiles one step (its kernels fused, the
        compilation independent of T) rather than the whole unrolled sequence.
        """
        h_dec = s_dec[0]
        # eq. (3)-(4): x̂_t = x − σ(c_{t−1}); r_t = read(x, x̂_t, h^dec_{t−1})
        r, rp = self.read([x, x - sig], h_dec, None if raw is None else raw[:, :5])
        s_enc = self.encoder(torch.cat([r, h_dec], 1), s_enc)  # eq. (5)
        mu, log_sigma = self.q(s_enc[0]).chunk(2, -1)  # (B, z) each
        s_dec = self.decoder(mu + log_sigma.exp() * eps, s_dec)  # eq. (6)-(7)
        if weight is not None:
            raw = F.linear(s_dec[0], weight, bias)
        update, wp = self.write(s_dec[0], None if raw is None else raw[:, 5:])
        canvas = canvas + update  # eq. (8)
        return canvas, torch.sigmoid(canvas), s_enc, s_dec, raw, mu, log_sigma, rp, wp

    def compile_for_training(self) -> None:
        """``train.compile``: the time step (:meth:`_step`), or the whole forward with ``compile_step: false``."""
        if self.cfg.compile_step:
            self._step = torch.compile(self._step)  # type: ignore[method-assign]
        else:
            self.compile()

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Sample z_t ~ N(0, I) and run the decoder alone (§2.3)."""
        cfg = self.cfg
        dev = self.write_patch.weight.device
        canvas = torch.zeros(n, self.c, self.h, self.w, device=dev)
        s = (torch.zeros(n, cfg.dec, device=dev), torch.zeros(n, cfg.dec, device=dev))
        canvases, writes = [], []
        for _ in range(cfg.steps):
            s = self.decoder(torch.randn(n, cfg.z, generator=generator).to(dev), s)
            update, wp = self.write(s[0])
            canvas = canvas + update
            canvases.append(torch.sigmoid(canvas))
            writes.append(wp)
        return {"canvases": canvases, "writes": writes}

    # -- classification -------------------------------------------------------------------------
    def glimpses(self, x: torch.Tensor) -> tuple[torch.Tensor, list[dict[str, torch.Tensor] | None]]:
        cfg, b = self.cfg, x.size(0)
        s = (x.new_zeros(b, cfg.enc), x.new_zeros(b, cfg.enc))
        reads = []
        for _ in range(cfg.steps):
            r, rp = self.read([x], s[0])
            s = self.encoder(torch.cat([r, s[0]], 1), s)
            reads.append(rp)
        return self.out(s[0]), reads

    # -- the task contract ----------------------------------------------------------------------
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if self.cfg.mode == "classify":
            loss = F.cross_entropy(self.glimpses(x)[0], y)
            return loss, {"ce": float(loss.detach())}
        out = self(x)
        nll = (out["lx"] + out["lz"]).mean()
        return nll, {"lx": float(out["lx"].mean().detach()), "lz": float(out["lz"].mean().detach())}

    def predict(self, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
        if self.cfg.mode == "classify":
            logits = self.glimpses(x)[0]
            return {"pred": logits.argmax(-1), "loss": F.cross_entropy(logits, y, reduction="none")}
        out = self(x, generator=torch.Generator().manual_seed(seed))
        return {"nll": out["lx"] + out["lz"], "lx": out["lx"], "lz": out["lz"]}
