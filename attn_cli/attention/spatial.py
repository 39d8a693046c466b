"""Spatial attention, each mechanism once: STN grids + bilinear sampler, RAM's retina, DRAW's filterbank.

* Spatial transformers (Jaderberg et al. 2015, §3.2 eq. (1), §3.3 eq. (3)-(5)): a grid
  generator T_θ(G) maps every target pixel to a source location (affine, projective or
  thin-plate-spline), and the differentiable bilinear sampler reads the input there.
  Coordinates are normalised to [-1, 1] with ``align_corners=False`` (pixel centres), so an
  identity θ reproduces the input exactly.
* The retina glimpse sensor (Mnih et al. 2014, §3.1): k square patches centred on l, of
  sizes g, 2g, 4g, ..., each reduced to g×g (by average pooling of the full-resolution crop).
* DRAW's Gaussian filterbank (Gregor et al. 2015, §3.2 eq. (19)-(29)): N×N grid of Gaussian
  filters with centre (gX, gY), stride δ, variance σ² and intensity γ; ``read`` = γ Fy x Fxᵀ,
  ``write`` = (1/γ) Fyᵀ w Fx.

Every function returns its output **and** the attention parameters, for visualisation and tests.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

# --- grid generators (STN §3.2) --------------------------------------------------------------


def base_grid(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Target pixel centres in normalised coordinates (align_corners=False): (H, W, 2) as (x, y)."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) * 2 + 1) / height - 1  # (H,)
    xs = (torch.arange(width, device=device, dtype=torch.float32) * 2 + 1) / width - 1  # (W,)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)  # (H, W, 2)


def affine_grid(theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """STN eq. (1): (x_s, y_s) = A_θ (x_t, y_t, 1)ᵀ. ``theta`` (B, 2, 3) -> grid (B, H, W, 2)."""
    return F.affine_grid(theta, [theta.size(0), 1, *size], align_corners=False)


def projective_grid(h: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A homography (STN §3.2 "more constrained/general" classes): ``h`` (B, 3, 3) -> grid (B, H, W, 2)."""
    g = base_grid(*size, device=h.device).reshape(-1, 2)  # (HW, 2)
    homo = torch.cat([g, torch.ones_like(g[:, :1])], dim=1)  # (HW, 3)
    src = torch.einsum("bij,nj->bni", h, homo)  # (B, HW, 3)
    z = src[..., 2:].clamp_min(1e-3)  # a homography near the identity keeps z > 0; the guard avoids /0
    return (src[..., :2] / z).reshape(h.size(0), *size, 2)  # (B, H, W, 2)


def tps_control_points(k: int) -> torch.Tensor:
    """A k×k grid of control points spanning [-1, 1]²: (k², 2)."""
    lin = torch.linspace(-1, 1, k)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def _tps_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """U(r) = r² log r² between point sets a (..., P, 2) and b (K, 2) -> (..., P, K)."""
    d2 = ((a.unsqueeze(-2) - b) ** 2).sum(-1)
    return d2 * torch.log(d2.clamp_min(1e-9))


def tps_grid(source_points: torch.Tensor, control: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Thin-plate spline (Bookstein 1989; STN §3.2): the smooth map taking ``control`` (K, 2) target
    points to ``source_points`` (B, K, 2), evaluated at every target pixel -> grid (B, H, W, 2)."""
    k = control.size(0)
    control = control.to(source_points)
    lmat = torch.zeros(k + 3, k + 3, dtype=source_points.dtype, device=source_points.device)
    lmat[:k, :k] = _tps_kernel(control, control)
    lmat[:k, k] = 1
    lmat[:k, k + 1 :] = control
    lmat[k, :k] = 1
    lmat[k + 1 :, :k] = control.t()
    rhs = torch.cat([source_points, source_points.new_zeros(source_points.size(0), 3, 2)], dim=1)  # (B, K+3, 2)
    coef = torch.linalg.solve(lmat.unsqueeze(0).expand(source_points.size(0), -1, -1), rhs)  # (B, K+3, 2)
    g = base_grid(*size, device=source_points.device).reshape(-1, 2)  # (HW, 2)
    feats = torch.cat([_tps_kernel(g, control), torch.ones_like(g[:, :1]), g], dim=1)  # (HW, K+3)
    return torch.matmul(feats, coef).reshape(source_points.size(0), *size, 2)  # (B, H, W, 2)


def sample(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """STN eq. (5): bilinear sampling of ``image`` (B, C, H, W) at ``grid`` (B, h, w, 2); zeros outside."""
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# --- retina glimpse sensor (RAM §3.1) --------------------------------------------------------


def glimpse_theta(loc: torch.Tensor, patch: int, height: int, width: int) -> torch.Tensor:
    """The affine θ (B, 2, 3) of a ``patch``×``patch`` pixel window centred on ``loc`` (B, 2) in [-1, 1]."""
    theta = loc.new_zeros(loc.size(0), 2, 3)
    theta[:, 0, 0] = patch / width
    theta[:, 1, 1] = patch / height
    theta[:, :, 2] = loc
    return theta


def retina(image: torch.Tensor, loc: torch.Tensor, size: int, scales: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ρ(x, l): ``scales`` patches centred at ``loc`` (B, 2) (x, y in [-1, 1]) of side size·2^s, each
    average-pooled to size×size; zero outside the image. Returns (glimpse (B, S, C, g, g), thetas (B, S, 2, 3)).

    A location whose window edge falls on pixel boundaries returns the exact crop (tested).
    """
    b, c, h, w = image.shape
    patches, thetas = [], []
    for s in range(scales):
        side = size * 2**s
        theta = glimpse_theta(loc, side, h, w)  # (B, 2, 3)
        crop = sample(image, affine_grid(theta, (side, side)))  # (B, C, side, side)
        patches.append(F.avg_pool2d(crop, 2**s) if s else crop)  # (B, C, g, g)
        thetas.append(theta)
    return torch.stack(patches, 1), torch.stack(thetas, 1)


def corner_to_loc(top: float, left: float, side: int, height: int, width: int) -> tuple[float, float]:
    """The normalised (x, y) centre of the window whose top-left pixel is (top, left)."""
    return (2 * left + side) / width - 1, (2 * top + side) / height - 1


# --- DRAW's Gaussian filterbank (§3.2) -------------------------------------------------------


def _filter_grid_tensors(
    n: int, height: int, width: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The constants of eq. (19)-(20): offsets (i − N/2 − 0.5) for i = 1..N, and the 1-based pixel
    coordinates a = 1..A (width) and b = 1..B (height)."""
    offsets = torch.arange(1, n + 1, device=device, dtype=dtype) - n / 2 - 0.5  # (N,)
    a = torch.arange(1, width + 1, device=device, dtype=dtype)  # (A,)
    b = torch.arange(1, height + 1, device=device, dtype=dtype)  # (B_,)
    return offsets, a, b


@functools.lru_cache(maxsize=64)
def _filter_grid_cached(
    n: int, height: int, width: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with torch.inference_mode(False):  # a tensor first made under inference mode must stay usable in training
        return _filter_grid_tensors(n, height, width, device, dtype)


def _filter_grid(
    n: int, height: int, width: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_filter_grid_tensors`, cached per shape and device in eager mode; under torch.compile
    made in the graph (constants the compiler folds; a cache is what it cannot trace)."""
    if torch.compiler.is_compiling():
        return _filter_grid_tensors(n, height, width, device, dtype)
    return _filter_grid_cached(n, height, width, device, dtype)


def filterbank(
    gx: torch.Tensor, gy: torch.Tensor, log_var: torch.Tensor, delta: torch.Tensor, n: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (19)-(26): Fx (B, N, A) and Fy (B, N, B_) for grid centre (gx, gy) in pixels, stride δ, variance σ².

    μ^i_X = gX + (i − N/2 − 0.5) δ (eq. (19)), Fx[i, a] = exp(−(a − μ^i_X)² / 2σ²) / Z_X (eq. (25)),
    likewise in y. The normalisation Z_X = Σ_a exp(...) is computed as a softmax over a (the same
    quantity, evaluated stably): a filter whose centre lies far outside the image still sums to 1
    and keeps a gradient, where exp(...)/max(Z, ε) would underflow to an all-zero row.

    Deviation: pixels and filter indices are both 1-based (a = 1..A, i = 1..N) so that N = A,
    gX = (A+1)/2, δ = 1 puts filter i on pixel i exactly.
    """
    offsets, a, b = _filter_grid(n, height, width, gx.device, gx.dtype)
    centres = torch.stack([gx, gy], 1)  # (B, 2)
    mu = centres[:, :, None] + offsets * delta[:, None, None]  # (B, 2, N): μ_X, μ_Y
    scale = (-0.5 * log_var.neg().exp())[:, None, None, None]  # −1/(2σ²), (B, 1, 1, 1)
    if height == width:  # one (B, 2, N, A) filter tensor for both axes
        f = torch.softmax((a - mu[..., None]) ** 2 * scale, -1)
        return f[:, 0], f[:, 1]
    fx = torch.softmax((a - mu[:, 0, :, None]) ** 2 * scale[:, 0], -1)  # (B, N, A)
    fy = torch.softmax((b - mu[:, 1, :, None]) ** 2 * scale[:, 0], -1)  # (B, N, B_)
    return fx, fy


def draw_params(raw: torch.Tensor, n: int, height: int, width: int) -> dict[str, torch.Tensor]:
    """Eq. (21)-(24): (g̃X, g̃Y, log σ², log δ̃, log γ) = W(h) -> gX, gY, log σ², δ, γ (each (B,)).

    gX = (A+1)/2 (g̃X + 1) with A the width, gY = (B+1)/2 (g̃Y + 1) with B the height,
    δ = (max(A, B) − 1)/(N − 1) δ̃ (N = 1: (max(A, B) − 1) δ̃); ``log_gamma`` is returned too so
    that the write's 1/γ is exp(−log γ), never a division by a small number.
    """
    gx_, gy_, log_var, log_delta, log_gamma = raw.unbind(-1)
    return {
        "gx": (width + 1) / 2 * (gx_ + 1),
        "gy": (height + 1) / 2 * (gy_ + 1),
        "log_var": log_var,
        "delta": (max(height, width) - 1) / max(n - 1, 1) * log_delta.exp(),
        "gamma": log_gamma.exp(),
        "log_gamma": log_gamma,
    }


def window_bias(n: int, height: int, width: int, write: bool = False) -> torch.Tensor:
    """The raw (g̃X, g̃Y, log σ², log δ̃, log γ) of a window that covers the whole image: centred,
    stride δ = max(A, B)/N (the N filters tile the image), σ = δ/2, and γ = 1 for a read (a glimpse
    of local averages). For a write, γ̂ = N²/(A·B): each normalised filter spreads its unit mass
    over ≈ A/N pixels, so (1/γ̂) F̂yᵀ w F̂x paints a constant patch w ≡ v as ≈ v on the canvas
    rather than ≈ v N²/(A·B). The inverse of :func:`draw_params` at that window; DRAW's heads
    start here (:class:`attn_cli.models.draw.DRAW`)."""
    side = max(height, width)
    delta = side / n
    delta_tilde = delta * max(n - 1, 1) / max(side - 1, 1)
    log_gamma = math.log(n * n / (height * width)) if write else 0.0
    return torch.tensor([0.0, 0.0, 2 * math.log(delta / 2), math.log(delta_tilde), log_gamma])


def _log_gamma(params: dict[str, torch.Tensor]) -> torch.Tensor:
    return params["log_gamma"] if "log_gamma" in params else params["gamma"].log()


def filter_read(
    x: torch.Tensor, params: dict[str, torch.Tensor], n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. (27): γ Fy x Fxᵀ. ``x`` (B, C, H, W) -> glimpse (B, C, N, N), with (Fx, Fy).

    Channels are read with the same filters: DRAW's [x, x̂] read is one call on their concatenation."""
    fx, fy = filterbank(params["gx"], params["gy"], params["log_var"], params["delta"], n, x.size(2), x.size(3))
    glimpse = fy.unsqueeze(1) @ x @ fx.transpose(1, 2).unsqueeze(1)  # (B, C, N, N)
    return glimpse * params["gamma"][:, None, None, None], fx, fy


def filter_write(
    patch: torch.Tensor, params: dict[str, torch.Tensor], height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. (29): (1/γ) Fyᵀ w Fx. ``patch`` (B, C, N, N) -> canvas update (B, C, H, W), with (Fx, Fy).

    1/γ is computed as exp(−log γ) (no ε guard: γ = exp(log γ) > 0 by construction)."""
    n = patch.size(-1)
    fx, fy = filterbank(params["gx"], params["gy"], params["log_var"], params["delta"], n, height, width)
    inv_gamma = _log_gamma(params).neg().exp()[:, None, None, None]
    out = fy.transpose(1, 2).unsqueeze(1) @ (patch * inv_gamma) @ fx.unsqueeze(1)  # (B, C, H, W)
    return out, fx, fy
