"""RA-CNN's attention: a square box from the attention proposal network (APN), cropped by a
differentiable boxcar mask and zoomed (Fu, Zheng & Mei, CVPR 2017, "Look Closer to See Better", §3.2),
and the pairwise ranking loss between scales (§3.3, eq. (8)).

Coordinates are normalised to [-1, 1] over the image's width and height (pixel centres,
``align_corners=False``, as :mod:`attn_cli.attention.spatial`): a box is its centre (tx, ty) and its
half side tl, so tl = 1 is the whole image.

* :func:`box_from_apn`: the APN's three raw outputs -> (tx, ty, tl), tl between ``min_half`` and 1
  (the paper keeps tl above a third of the previous scale's side) and the centre inside the image;
* :func:`boxcar_mask`, eq. (5)-(6): M(x, y) = [h(x − t_x(tl)) − h(x − t_x(br))] · [h(y − t_y(tl)) −
  h(y − t_y(br))] with the logistic h(z) = 1 / (1 + exp(−k z)); ``sharpness`` is k per pixel, so the
  step is as steep at every image size;
* :func:`crop_zoom`: X_att = X ⊙ M(tx, ty, tl), then bilinear interpolation of the box to the next
  scale's ``size``×``size`` input (eq. (7)). Deviation: the paper derives the APN's gradient through M
  only (eq. (9)-(10)); here the sampling positions of the zoom carry gradient as well (they depend on the
  box through ``F.grid_sample``). Both are exact derivatives of the function computed — the finite-
  difference test in tests/test_racnn.py checks ours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attn_cli.attention.spatial import base_grid


def box_from_apn(raw: torch.Tensor, min_half: float) -> torch.Tensor:
    """APN outputs (B, 3) -> boxes (B, 3) as (tx, ty, tl): tl = min_half + (1 − min_half)·σ(raw₂), the centre
    (1 − tl)·tanh(raw₀,₁) so the square stays inside the image. Zero outputs give a centred box of half side
    (1 + min_half) / 2."""
    tl = min_half + (1.0 - min_half) * torch.sigmoid(raw[:, 2])  # (B,)
    centre = (1.0 - tl)[:, None] * torch.tanh(raw[:, :2])  # (B, 2)
    return torch.cat([centre, tl[:, None]], dim=1)  # (B, 3)


def boxcar_mask(box: torch.Tensor, height: int, width: int, sharpness: float) -> torch.Tensor:
    """Eq. (5)-(6): the soft square of ``box`` (B, 3) on the H×W pixel centres -> (B, 1, H, W) in (0, 1).

    ``sharpness`` is the logistic's k in pixels⁻¹; a normalised unit is W/2 pixels, hence the scaling."""
    grid = base_grid(height, width, box.device)  # (H, W, 2) as (x, y)
    tx, ty, tl = (box[:, i, None] for i in range(3))  # each (B, 1)
    kx, ky = sharpness * width / 2.0, sharpness * height / 2.0
    xs, ys = grid[0, :, 0][None], grid[:, 0, 1][None]  # (1, W), (1, H)
    mx = torch.sigmoid(kx * (xs - (tx - tl))) - torch.sigmoid(kx * (xs - (tx + tl)))  # (B, W)
    my = torch.sigmoid(ky * (ys - (ty - tl))) - torch.sigmoid(ky * (ys - (ty + tl)))  # (B, H)
    return (my[:, :, None] * mx[:, None, :])[:, None]  # (B, 1, H, W)


def crop_zoom(image: torch.Tensor, box: torch.Tensor, size: int, sharpness: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (7): mask ``image`` (B, C, H, W) with the boxcar of ``box`` (B, 3) and zoom the box to size×size
    (bilinear). Returns the zoomed crop (B, C, size, size) and the mask (B, 1, H, W)."""
    b, c, h, w = image.shape
    mask = boxcar_mask(box, h, w, sharpness)  # (B, 1, H, W)
    zeros = torch.zeros_like(box[:, 0])
    theta = torch.stack(  # the output's [-1, 1] square maps onto [tx − tl, tx + tl] × [ty − tl, ty + tl]
        [
            torch.stack([box[:, 2], zeros, box[:, 0]], dim=1),
            torch.stack([zeros, box[:, 2], box[:, 1]], dim=1),
        ],
        dim=1,
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)  # (B, size, size, 2)
    zoomed = F.grid_sample(image * mask, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return zoomed, mask


def ranking_loss(p_true: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. (8): L_rank = Σ_s max(0, p_t⁽ˢ⁾ − p_t⁽ˢ⁺¹⁾ + margin), averaged over the batch.

    ``p_true`` (B, S): the probability each scale gives the true class. A finer scale is pushed to be more
    confident than the coarser one by at least ``margin`` (the paper: 0.05)."""
    gaps = p_true[:, :-1] - p_true[:, 1:] + margin  # (B, S − 1)
    return gaps.clamp(min=0.0).sum(dim=1).mean()
