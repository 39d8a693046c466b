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

Deviations: the evaluation bound uses one posterior sample drawn from a fixed seed per batch
(deterministic; the paper's bound is also a one-sample estimate); filterbank indices are
1-based (see :func:`attn_cli.attention.spatial.filterbank`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from attn_cli.attention.spatial import draw_params, filter_read, filter_write
from attn_cli.registry import MODELS


@MODELS.register("draw")
class DRAW(nn.Module):
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
            self.read_head = nn.Linear(cfg.enc, 5)
            self.out = nn.Linear(cfg.enc, classes)
            return
        self.encoder = nn.LSTMCell(read_dim + cfg.dec, cfg.enc)
        self.decoder = nn.LSTMCell(cfg.z, cfg.dec)
        self.q = nn.Linear(cfg.enc, 2 * cfg.z)
        self.read_head = nn.Linear(cfg.dec, 5)
        self.write_head = nn.Linear(cfg.dec, 5)
        self.write_patch = nn.Linear(cfg.dec, self.c * (cfg.write_n**2 if cfg.attention else self.h * self.w))

    # -- the two attention heads --------------------------------------------------------------
    def read(self, images: list[torch.Tensor], h: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        if not self.cfg.attention:
            return torch.cat([im.flatten(1) for im in images], 1), None
        params = draw_params(self.read_head(h), self.cfg.read_n, self.h, self.w)
        glimpses = [filter_read(im, params, self.cfg.read_n)[0].flatten(1) for im in images]  # each (B, C·N·N)
        return torch.cat(glimpses, 1), params

    def write(self, h: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        b = h.size(0)
        if not self.cfg.attention:
            return self.write_patch(h).view(b, self.c, self.h, self.w), None
        params = draw_params(self.write_head(h), self.cfg.write_n, self.h, self.w)
        patch = self.write_patch(h).view(b, self.c, self.cfg.write_n, self.cfg.write_n)  # (B, C, N, N)
        return filter_write(patch, params, self.h, self.w)[0], params

    # -- generation -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Encode/decode ``x`` (B, C, H, W) in [0, 1]; returns per-example L^x, L^z (B,) and the canvases."""
        cfg, b = self.cfg, x.size(0)
        canvas = x.new_zeros(x.shape)  # (B, C, H, W) pre-sigmoid
        h_dec = x.new_zeros(b, cfg.dec)
        s_dec = (h_dec, h_dec.clone())
        s_enc = (x.new_zeros(b, cfg.enc), x.new_zeros(b, cfg.enc))
        kl = x.new_zeros(b)
        canvases, reads, writes = [], [], []
        for _ in range(cfg.steps):
            x_hat = x - torch.sigmoid(canvas)
            r, rp = self.read([x, x_hat], h_dec)
            s_enc = self.encoder(torch.cat([r, h_dec], 1), s_enc)
            mu, log_sigma = self.q(s_enc[0]).chunk(2, -1)  # (B, z) each
            # a seeded draw is made on the CPU (the generator's device) and moved: the same seed, the same noise on any device
            eps = torch.randn(mu.shape, generator=generator).to(mu.device) if generator else torch.randn_like(mu)
            z = mu + log_sigma.exp() * eps
            s_dec = self.decoder(z, s_dec)
            h_dec = s_dec[0]
            update, wp = self.write(h_dec)
            canvas = canvas + update
            kl = kl + 0.5 * (mu**2 + (2 * log_sigma).exp() - 2 * log_sigma - 1).sum(-1)
            canvases.append(torch.sigmoid(canvas))
            reads.append(rp)
            writes.append(wp)
        lx = F.binary_cross_entropy_with_logits(canvas, x, reduction="none").flatten(1).sum(1)  # (B,) nats
        return {"lx": lx, "lz": kl, "canvases": canvases, "reads": reads, "writes": writes}

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
