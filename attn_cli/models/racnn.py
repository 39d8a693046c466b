"""RA-CNN, the Recurrent Attention CNN (Fu, Zheng & Mei, CVPR 2017, "Look Closer to See Better").

S scales (the paper: 3). At scale s a classification sub-network reads its input X⁽ˢ⁾ and gives
class probabilities p⁽ˢ⁾ (eq. (1)); an attention proposal network (APN: two fully connected layers on
the sub-network's last feature map, eq. (2)) gives a square (tx, ty, tl); the square is cropped by the
boxcar mask with the logistic step and zoomed to the next scale's input (eq. (5)-(7),
:mod:`attn_cli.attention.zoom`). Losses (eq. (8)): the cross-entropy of every scale, and the pairwise
ranking loss L_rank = Σ_s max(0, p_t⁽ˢ⁾ − p_t⁽ˢ⁺¹⁾ + margin) that makes each finer scale more confident
in the true class than the coarser one. The multi-scale prediction (§3.4) L2-normalises each scale's
pooled descriptor, concatenates them and classifies with a fully connected layer: one for scales 1+2,
one for 1+2+3 — the rows of the paper's Tables 1-3.

Training (§3.5): the paper alternates — the classification nets with the APNs fixed, then the APNs
with the classification nets fixed, each until convergence. Here every update does both, each loss
reaching only its own part: the cross-entropies see crops from detached boxes (they train the
classification nets, never the APNs), and the ranking loss runs the finer scales' sub-networks with
detached weights (it trains the APNs, never the classification nets). That is the alternation at the
granularity of one update; it keeps every parameter in every step's graph, which DDP needs. The fused
classifiers read detached descriptors, so they never change the scales they fuse.

Deviations: a small conv-ReLU-pool sub-network per scale instead of VGG-19 pretrained on ImageNet (no
weights here; ``channels`` and ``size`` are the recipe's); the APNs start from zero output weights (a
centred box of half side (1 + min_half)/2) instead of the paper's search for the most responsive square;
sub-networks share no weights, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from attn_cli.attention.zoom import box_from_apn, crop_zoom, ranking_loss
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS


class ScaleNet(nn.Module):
    """conv3-ReLU-maxpool per entry of ``channels``: (B, C_in, S, S) -> feature map (B, C, S/2^n, S/2^n)."""

    def __init__(self, cin: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in channels:
            layers += [nn.Conv2d(cin, width, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2)]
            cin = width
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def frozen(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with its weights detached: gradients reach ``x`` but not the module's parameters."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    out: torch.Tensor = functional_call(module, params, (x,))
    return out


@MODELS.register("racnn", task="vision")
class RACNN(nn.Module):
    kind = "classify"
    picture = "zoom"

    @dataclass(frozen=True)
    class Config:
        scales: int = 3
        size: int = 56  # every scale's input side: scale 1 resizes the image to it, the crops are zoomed to it
        channels: tuple[int, ...] = (32, 64, 64)  # each scale's sub-network
        apn_hidden: int = 64
        min_half: float = 1 / 3  # the smallest half side of a box, as a fraction of the image it crops
        sharpness: float = 1.0  # the boxcar's logistic k, per input pixel
        margin: float = 0.05  # the ranking loss's margin (the paper's)
        rank_weight: float = 1.0

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, **meta: Any) -> None:
        super().__init__()
        if cfg.scales < 2:
            raise AttnError(f"model.scales={cfg.scales}: RA-CNN needs at least 2 scales to zoom between")
        grid = cfg.size // 2 ** len(cfg.channels)
        if grid < 1:
            raise AttnError(f"model.size={cfg.size} is too small for {len(cfg.channels)} poolings; raise it")
        self.cfg = cfg
        c = cfg.channels[-1]
        self.nets = nn.ModuleList([ScaleNet(image_shape[0], tuple(cfg.channels)) for _ in range(cfg.scales)])
        self.heads = nn.ModuleList([nn.Linear(c, classes) for _ in range(cfg.scales)])
        self.apns = nn.ModuleList()
        for _ in range(cfg.scales - 1):
            last = nn.Linear(cfg.apn_hidden, 3)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.apns.append(nn.Sequential(nn.Flatten(), nn.Linear(c * grid * grid, cfg.apn_hidden), nn.Tanh(), last))
        # fused[j] classifies the concatenated descriptors of scales 1 .. j + 2
        self.fused = nn.ModuleList([nn.Linear(c * (j + 2), classes) for j in range(cfg.scales - 1)])

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """The image (B, C, H, W) as scale 1's input (B, C, size, size) (CIFAR-10 upsampled, bilinear)."""
        if x.shape[-2:] == (self.cfg.size, self.cfg.size):
            return x
        return F.interpolate(x, size=(self.cfg.size, self.cfg.size), mode="bilinear", align_corners=False)

    def scales_forward(self, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Every scale on crops from *detached* boxes (the classification pass): logits (B, K), pooled
        descriptors (B, C), boxes (B, 3) in the coordinates of the scale they crop, inputs (B, C_in, S, S)."""
        out: dict[str, list[torch.Tensor]] = {"logits": [], "desc": [], "boxes": [], "inputs": [], "fmaps": []}
        inp = self.resize(x)
        for s in range(self.cfg.scales):
            fmap: torch.Tensor = self.nets[s](inp)  # (B, C, g, g)
            desc = fmap.mean(dim=(2, 3))  # (B, C)
            out["inputs"].append(inp)
            out["fmaps"].append(fmap)
            out["desc"].append(desc)
            out["logits"].append(self.heads[s](desc))
            if s < self.cfg.scales - 1:
                with torch.no_grad():
                    box = box_from_apn(self.apns[s](fmap), self.cfg.min_half)  # (B, 3)
                out["boxes"].append(box)
                inp = crop_zoom(inp, box, self.cfg.size, self.cfg.sharpness)[0]
        return out

    def fused_logits(self, desc: list[torch.Tensor]) -> list[torch.Tensor]:
        """§3.4: L2-normalised descriptors of scales 1..j+2, concatenated, through fused[j]: (B, K) each."""
        normed = [F.normalize(d, dim=1) for d in desc]
        return [head(torch.cat(normed[: j + 2], dim=1)) for j, head in enumerate(self.fused)]

    def true_class_probs(self, first: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """The ranking pass: the APNs' boxes with gradient, the finer scales' sub-networks with detached weights.
        ``first`` holds scale 1's ``input``, ``logits`` and ``fmap`` from the classification pass (scale 1 does
        not depend on any APN). Returns p_t (B, S), the probability of the true class ``y`` at each scale."""
        probs = [F.softmax(first["logits"].detach(), dim=1).gather(1, y[:, None])]  # (B, 1)
        fmap, inp = first["fmap"].detach(), first["input"]
        for s in range(1, self.cfg.scales):
            box = box_from_apn(self.apns[s - 1](fmap), self.cfg.min_half)  # (B, 3), with gradient
            inp = crop_zoom(inp, box, self.cfg.size, self.cfg.sharpness)[0]  # (B, C_in, S, S)
            fmap = frozen(self.nets[s], inp)
            logits = frozen(self.heads[s], fmap.mean(dim=(2, 3)))
            probs.append(F.softmax(logits, dim=1).gather(1, y[:, None]))
        return torch.cat(probs, dim=1)  # (B, S)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        out = self.scales_forward(x)
        ce = torch.stack([F.cross_entropy(logits, y) for logits in out["logits"]]).sum()
        fused = torch.stack([F.cross_entropy(f, y) for f in self.fused_logits([d.detach() for d in out["desc"]])]).sum()
        first = {"input": out["inputs"][0], "logits": out["logits"][0], "fmap": out["fmaps"][0]}
        rank = ranking_loss(self.true_class_probs(first, y), self.cfg.margin)
        loss = ce + fused + self.cfg.rank_weight * rank
        return loss, {"ce": float(ce.detach()), "fused_ce": float(fused.detach()), "rank": float(rank.detach())}

    def predict(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The fused prediction of every scale as ``pred`` (what the task scores as ``error``), and each scale's
        and each fusion's own: ``pred_scale1`` …, ``pred_fused12``, ``pred_fused123`` (the paper's table rows)."""
        out = self.scales_forward(x)
        fused = self.fused_logits(out["desc"])
        preds = {f"pred_scale{s + 1}": logits.argmax(-1) for s, logits in enumerate(out["logits"])}
        names = ["".join(str(i + 1) for i in range(j + 2)) for j in range(len(fused))]
        preds.update({f"pred_fused{name}": f.argmax(-1) for name, f in zip(names, fused)})
        return {"pred": fused[-1].argmax(-1), "loss": F.cross_entropy(fused[-1], y, reduction="none"), **preds}

    def attend(self, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """What ``attn visualize racnn`` draws: each scale's input (B, C, S, S) and box (B, 3)."""
        out = self.scales_forward(x)
        return {"inputs": out["inputs"], "boxes": out["boxes"]}
