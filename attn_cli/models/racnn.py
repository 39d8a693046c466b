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
with the classification nets fixed, each until convergence. ``alternate`` picks how:

* ``update`` (default): every update does both, each loss reaching only its own part: the cross-entropies
  see crops from detached boxes (they train the classification nets, never the APNs), and the ranking loss
  runs the finer scales' sub-networks with detached weights (it trains the APNs, never the classification
  nets). The alternation at the granularity of one update.
* ``phases``: the paper's schedule with a fixed phase length: ``phase_updates`` updates of the
  classification nets and fused classifiers (cross-entropies only), then ``phase_updates`` of the APNs
  (ranking loss only), and so on; the phase is a function of the global step, so a resumed run continues
  in the same phase. The part at rest is held fixed by :meth:`RACNN.resting_parameters` (the task drops its
  gradients before the optimizer step, so neither the gradient nor the optimizer's momentum moves it).
  Deviation: a phase ends after a fixed number of updates, not at convergence (the paper's criterion).

Either way every parameter is in every step's graph (the resting part with weight 0), which DDP needs.
The fused classifiers read detached descriptors, so they never change the scales they fuse.

Sub-networks (``backbone``): ``conv``, a small conv-ReLU-pool stack of ``channels`` from scratch; or
``vgg19``, VGG-19's conv stages up to conv5_4 (:mod:`attn_cli.nn.vgg`, the paper's), from scratch or with
``backbone_weights``: ``imagenet`` (torchvision's weights, cached or downloaded) or a torchvision vgg19 state
dict file, loaded by :mod:`attn_cli.pretrained` before a fresh training (this module takes weights already
loaded). Deviations: the scales' classifiers are one linear layer on the pooled conv map, not VGG's fully
connected layers; the APNs start from zero output weights (a centred box of half side (1 + min_half)/2)
instead of the paper's search for the most responsive square; sub-networks share no weights, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from attn_cli.attention.zoom import box_from_apn, crop_zoom, ranking_loss
from attn_cli.errors import AttnError, unknown
from attn_cli.nn.vgg import VGG_STRIDE, VGG_WIDTH, VGGTrunk
from attn_cli.registry import MODELS

ALTERNATE = ("update", "phases")


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


def scale_nets(cfg: RACNN.Config, cin: int) -> tuple[list[nn.Module], int, int]:
    """One sub-network per scale for ``cfg.backbone``, the width C of its last map and its stride."""
    if cfg.backbone == "conv":
        return [ScaleNet(cin, tuple(cfg.channels)) for _ in range(cfg.scales)], cfg.channels[-1], 2 ** len(cfg.channels)
    if cfg.backbone == "vgg19":
        return [VGGTrunk("vgg19", cin) for _ in range(cfg.scales)], VGG_WIDTH, VGG_STRIDE
    raise unknown("RA-CNN backbone (model.backbone)", cfg.backbone, ["conv", "vgg19"])


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
        alternate: str = "update"  # "update": both parts every update; "phases": the paper's alternation (§3.5)
        phase_updates: int = 100  # with "phases": updates per phase (classification nets first, then APNs)
        backbone: str = "conv"  # "conv": conv-ReLU-pool per entry of channels; "vgg19": VGG-19 to conv5_4
        backbone_weights: str = ""  # vgg19: "" from scratch, "imagenet" (torchvision's), or a vgg19 state dict file

    def __init__(self, cfg: Config, image_shape: list[int], classes: int, **meta: Any) -> None:
        super().__init__()
        if cfg.scales < 2:
            raise AttnError(f"model.scales={cfg.scales}: RA-CNN needs at least 2 scales to zoom between")
        if cfg.alternate not in ALTERNATE:
            raise unknown("RA-CNN alternation (model.alternate)", cfg.alternate, ALTERNATE)
        if cfg.phase_updates < 1:
            raise AttnError(f"model.phase_updates={cfg.phase_updates}: give 1 or more updates per phase")
        if cfg.backbone_weights and cfg.backbone == "conv":
            raise AttnError("model.backbone_weights loads VGG-19 weights; set model.backbone=vgg19 too")
        nets, c, stride = scale_nets(cfg, image_shape[0])
        grid = cfg.size // stride
        if grid < 1:
            raise AttnError(f"model.size={cfg.size} is too small for a {cfg.backbone} stride of {stride}; raise it")
        self.cfg = cfg
        self.nets = nn.ModuleList(nets)
        self.heads = nn.ModuleList([nn.Linear(c, classes) for _ in range(cfg.scales)])
        self.apns = nn.ModuleList()
        for _ in range(cfg.scales - 1):
            last = nn.Linear(cfg.apn_hidden, 3)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.apns.append(nn.Sequential(nn.Flatten(), nn.Linear(c * grid * grid, cfg.apn_hidden), nn.Tanh(), last))
        # fused[j] classifies the concatenated descriptors of scales 1 .. j + 2
        self.fused = nn.ModuleList([nn.Linear(c * (j + 2), classes) for j in range(cfg.scales - 1)])

    def pretrained_backbones(self) -> tuple[str, str, list[VGGTrunk]] | None:
        """What :func:`attn_cli.pretrained.load_pretrained` loads before a fresh training: the backbone's name,
        ``backbone_weights`` and every scale's sub-network (the paper starts each from the same ImageNet VGG)."""
        if not self.cfg.backbone_weights:
            return None
        return self.cfg.backbone, self.cfg.backbone_weights, [net for net in self.nets if isinstance(net, VGGTrunk)]

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

    def phase(self, step: int) -> str:
        """Which part ``step`` trains: ``both`` (alternate=update), else ``classify`` or ``apn`` (§3.5)."""
        if self.cfg.alternate == "update":
            return "both"
        return ("classify", "apn")[(step // self.cfg.phase_updates) % 2]

    def resting_parameters(self, step: int) -> list[nn.Parameter]:
        """The parameters held fixed at ``step``: the APNs in a classification phase, the sub-networks, their
        classifiers and the fused classifiers in an APN phase, none with alternate=update."""
        phase = self.phase(step)
        if phase == "classify":
            return list(self.apns.parameters())
        if phase == "apn":
            return [*self.nets.parameters(), *self.heads.parameters(), *self.fused.parameters()]
        return []

    def loss(self, x: torch.Tensor, y: torch.Tensor, step: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. (8) at ``step`` (the global step: it picks the phase with alternate=phases). The part at rest
        enters with weight 0, so every parameter is in the graph (DDP) while only the phase's part learns."""
        phase = self.phase(step)
        logs: dict[str, float] = {}
        loss = torch.zeros((), device=x.device)
        if phase in ("both", "classify"):
            out = self.scales_forward(x)
            ce = torch.stack([F.cross_entropy(logits, y) for logits in out["logits"]]).sum()
            desc = [d.detach() for d in out["desc"]]
            fused = torch.stack([F.cross_entropy(f, y) for f in self.fused_logits(desc)]).sum()
            loss = loss + ce + fused
            logs |= {"ce": float(ce.detach()), "fused_ce": float(fused.detach())}
            first = {"input": out["inputs"][0], "logits": out["logits"][0], "fmap": out["fmaps"][0]}
        else:
            inp = self.resize(x)
            with torch.no_grad():
                fmap = self.nets[0](inp)  # (B, C, g, g)
            first = {"input": inp, "logits": self.heads[0](fmap.mean(dim=(2, 3))), "fmap": fmap}
        if phase in ("both", "apn"):
            rank = ranking_loss(self.true_class_probs(first, y), self.cfg.margin)
            loss = loss + self.cfg.rank_weight * rank
            logs["rank"] = float(rank.detach())
        resting = self.resting_parameters(step)
        if resting:
            loss = loss + 0.0 * sum(p.sum() for p in resting)  # in the graph for DDP; the task drops these grads
            logs["phase_apn"] = float(phase == "apn")
        return loss, logs

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
