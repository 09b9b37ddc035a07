"""Pure-PyTorch rasterizer: the differentiable reference (tests, training on CPU).

Tile-based like gsplat: Gaussians are projected once, binned into 16x16 tiles, and every (tile, Gaussian)
pair is evaluated on the tile's 256 pixels. Pairs are processed in chunks of whole tiles so memory stays
bounded; with gradients on, each chunk is checkpointed (recomputed in backward) so memory does not grow
with the number of chunks. Transmittance is a segmented cumulative sum of log(1 - alpha) per tile,
in float64 (exact enough to match the sequential product of the CUDA/numba kernels).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from gaussian_head_ros.core.render import base
from gaussian_head_ros.core.render import (ALPHA_MAX, ALPHA_MIN, EPS2D, EXTEND_MAX, NEAR_PLANE, T_MIN, TILE,
                                           RenderResult)

CHUNK_ELEMS = 1 << 21  # (pair, pixel) elements evaluated at once


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """[N, 4] wxyz (any length) -> [N, 3, 3]."""
    w, x, y, z = F.normalize(q, dim=-1).unbind(-1)
    r = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)
    return r.reshape(q.shape[:-1] + (3, 3))


def project(means, quats, scales, opacities, viewmat, K, width: int, height: int):
    """EWA projection as in gsplat ("classic", eps2d 0.3).

    Returns mean2d [N, 2], conic [N, 3] (a, b, c of the inverse 2D covariance), depth [N],
    radius [N, 2] (int pixels, no grad) and valid [N] bool."""
    r, t = viewmat[:3, :3], viewmat[:3, 3]
    pc = means @ r.T + t  # [N, 3]
    m = quat_to_rotmat(quats) * scales[:, None, :]  # [N, 3, 3] R S
    cov_w = m @ m.transpose(1, 2)  # [N, 3, 3]
    cov_c = r @ cov_w @ r.T  # [N, 3, 3]
    x, y, z = pc.unbind(-1)
    valid = z > NEAR_PLANE
    zs = torch.where(valid, z, torch.ones_like(z))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tanx, tany = 0.5 * width / fx, 0.5 * height / fy
    limx_p, limx_n = (width - cx) / fx + 0.3 * tanx, cx / fx + 0.3 * tanx
    limy_p, limy_n = (height - cy) / fy + 0.3 * tany, cy / fy + 0.3 * tany
    tx = zs * torch.minimum(limx_p, torch.maximum(-limx_n, x / zs))
    ty = zs * torch.minimum(limy_p, torch.maximum(-limy_n, y / zs))
    rz = 1.0 / zs
    zero = torch.zeros_like(zs)
    j = torch.stack([fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], -1).reshape(-1, 2, 3)
    cov2 = j @ cov_c @ j.transpose(1, 2)  # [N, 2, 2]
    a = cov2[:, 0, 0] + EPS2D
    b = cov2[:, 0, 1]
    c = cov2[:, 1, 1] + EPS2D
    det = a * c - b * b
    valid = valid & (det > 0)
    dets = torch.where(valid, det, torch.ones_like(det))
    conic = torch.stack([c / dets, -b / dets, a / dets], -1)  # [N, 3]
    mean2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], -1)  # [N, 2]
    with torch.no_grad():
        op = opacities.detach()
        valid = valid & (op >= ALPHA_MIN)
        extend = torch.clamp(torch.sqrt(2.0 * torch.log(torch.clamp(op, min=ALPHA_MIN) / ALPHA_MIN)), max=EXTEND_MAX)
        rad = torch.stack([torch.ceil(extend * torch.sqrt(torch.clamp(a, min=0))),
                           torch.ceil(extend * torch.sqrt(torch.clamp(c, min=0)))], -1)  # [N, 2]
        md = mean2d.detach()
        valid = valid & ~((md[:, 0] + rad[:, 0] <= 0) | (md[:, 0] - rad[:, 0] >= width)
                   | (md[:, 1] + rad[:, 1] <= 0) | (md[:, 1] - rad[:, 1] >= height))
        valid = valid & ((rad[:, 0] > 0) | (rad[:, 1] > 0))
    return mean2d, conic, z, rad, valid


def tile_pairs(mean2d, rad, depth, valid, width: int, height: int):
    """Depth-sorted (tile, Gaussian) pairs, grouped by tile: (tile_id [P], gauss [P]) int64."""
    tw, th = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    with torch.no_grad():
        idx = torch.nonzero(valid).squeeze(1)
        idx = idx[torch.argsort(depth.detach()[idx], stable=True)]
        md, r = mean2d.detach()[idx], rad[idx]
        x0 = torch.clamp(torch.floor((md[:, 0] - r[:, 0]) / TILE), 0, tw).long()
        x1 = torch.clamp(torch.ceil((md[:, 0] + r[:, 0]) / TILE), 0, tw).long()
        y0 = torch.clamp(torch.floor((md[:, 1] - r[:, 1]) / TILE), 0, th).long()
        y1 = torch.clamp(torch.ceil((md[:, 1] + r[:, 1]) / TILE), 0, th).long()
        wx = x1 - x0
        counts = wx * (y1 - y0)
        g = torch.repeat_interleave(torch.arange(len(idx), device=idx.device), counts)
        start = torch.cumsum(counts, 0) - counts
        local = torch.arange(int(counts.sum()), device=idx.device) - start[g]
        tile = (y0[g] + local // wx[g]) * tw + x0[g] + local % wx[g]
        order = torch.argsort(tile, stable=True)
        return tile[order], idx[g[order]]


def _chunk(mean2d, conic, opac, colors, tiles_local, tile_xy, gauss, seg_start, n_tiles: int):
    """Composite one chunk of whole tiles: (rgb [n_tiles, 256, 3], log transmittance [n_tiles, 256])."""
    dev = mean2d.device
    ly, lx = torch.meshgrid(torch.arange(TILE, device=dev), torch.arange(TILE, device=dev), indexing="ij")
    lx, ly = lx.reshape(-1).to(mean2d.dtype), ly.reshape(-1).to(mean2d.dtype)  # [256]
    m = mean2d[gauss]  # [P, 2]
    dx = (m[:, 0] - tile_xy[:, 0] - 0.5)[:, None] - lx  # [P, 256]
    dy = (m[:, 1] - tile_xy[:, 1] - 0.5)[:, None] - ly
    cn = conic[gauss]
    sigma = 0.5 * (cn[:, 0:1] * dx * dx + cn[:, 2:3] * dy * dy) + cn[:, 1:2] * dx * dy
    alpha = torch.clamp(opac[gauss][:, None] * torch.exp(-sigma), max=ALPHA_MAX)
    alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
    # Inclusive transmittance decides where each pixel stops (no grad through the decision).
    with torch.no_grad():
        lg = torch.log1p(-alpha.double())
        cs = torch.cumsum(lg, 0)
        base = (cs - lg)[seg_start]  # [P, 256] exclusive sum at the first pair of each tile
        keep = torch.exp(cs - base) > T_MIN
    alpha = alpha * keep
    lg = torch.log1p(-alpha.double())
    cs = torch.cumsum(lg, 0)
    excl = cs - lg
    excl = excl - excl[seg_start]
    w = (alpha * torch.exp(excl).to(alpha.dtype))  # [P, 256]
    rgb = torch.zeros(n_tiles, TILE * TILE, 3, dtype=alpha.dtype, device=dev).index_add(
        0, tiles_local, w[:, :, None] * colors[gauss][:, None, :])
    logt = torch.zeros(n_tiles, TILE * TILE, dtype=torch.float64, device=dev).index_add(0, tiles_local, lg)
    return rgb, logt


def available() -> bool:
    """True: this backend runs wherever this module imports (it imports torch; core.render's registry takes an
    ImportError as not available)."""
    return True


def rasterize(means, quats, scales, opacities, colors, viewmat, K, width: int, height: int,
              background: np.ndarray) -> RenderResult:
    """See `core.render.rasterize`; differentiable for torch input."""
    as_numpy = not isinstance(means, torch.Tensor)
    t = [torch.as_tensor(np.asarray(a) if as_numpy else a, dtype=torch.float32)
         for a in (means, quats, scales, opacities, colors)]
    means, quats, scales, opacities, colors = t
    dev = means.device
    viewmat = torch.as_tensor(viewmat, dtype=torch.float32, device=dev)
    K = torch.as_tensor(K, dtype=torch.float32, device=dev)
    mean2d, conic, depth, rad, valid = project(means, quats, scales, opacities, viewmat, K, width, height)
    tile, gauss = tile_pairs(mean2d, rad, depth, valid, width, height)
    tw, th = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    n_tiles = tw * th
    counts = torch.bincount(tile, minlength=n_tiles)  # [T]
    ends = torch.cumsum(counts, 0)
    # Chunks of whole tiles with at most CHUNK_ELEMS (pair, pixel) elements (one big tile may exceed it).
    budget = max(1, CHUNK_ELEMS // (TILE * TILE))
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (means, quats, scales, opacities, colors))
    ends_l = ends.tolist()
    rgb_parts, logt_parts = [], []
    t0 = 0
    while t0 < n_tiles:
        p0 = ends_l[t0 - 1] if t0 else 0
        t1 = t0 + 1
        while t1 < n_tiles and ends_l[t1] - p0 <= budget:
            t1 += 1
        p1 = ends_l[t1 - 1]
        if p1 == p0:  # empty tiles
            rgb_parts.append(torch.zeros(t1 - t0, TILE * TILE, 3, device=dev))
            logt_parts.append(torch.zeros(t1 - t0, TILE * TILE, dtype=torch.float64, device=dev))
        else:
            tid = tile[p0:p1]
            tl = tid - t0
            seg_start = (torch.cat([torch.zeros(1, dtype=torch.long, device=dev), ends[t0:t1 - 1] - p0]))[tl]
            tile_xy = torch.stack([(tid % tw) * TILE, (tid // tw) * TILE], -1).to(torch.float32)
            args = (mean2d, conic, opacities, colors, tl, tile_xy, gauss[p0:p1], seg_start, t1 - t0)
            rgb, logt = checkpoint(_chunk, *args, use_reentrant=False) if grad else _chunk(*args)
            rgb_parts.append(rgb)
            logt_parts.append(logt)
        t0 = t1
    rgb_tiles, logt_tiles = torch.cat(rgb_parts), torch.cat(logt_parts)
    trans = torch.exp(logt_tiles).to(torch.float32)  # [T, 256]
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    img = rgb_tiles + trans[:, :, None] * bg
    img = img.reshape(th, tw, TILE, TILE, 3).permute(0, 2, 1, 3, 4).reshape(th * TILE, tw * TILE, 3)[:height, :width]
    alpha = (1 - trans).reshape(th, tw, TILE, TILE).permute(0, 2, 1, 3).reshape(th * TILE, tw * TILE)[:height, :width]
    if as_numpy:
        return RenderResult(img.detach().cpu().numpy().astype(np.float32), alpha.detach().cpu().numpy().astype(np.float32))
    return RenderResult(img, alpha)



class Renderer(base.Renderer):
    """The torch reference for display frames: no gradients, on `device`; `threads` > 0 sets torch's
    intra-op threads for each frame."""

    name = "torch"

    def rasterize(self, means, quats, scales, opacities, colors, viewmat, K, width, height, background):
        """`core.render.rasterize` in torch on this renderer's device and thread count (the process's torch
        thread count is restored after), no gradients -> RenderResult."""
        args = [torch.as_tensor(np.asarray(a, np.float32), device=self.device)
                for a in (means, quats, scales, opacities, colors)]
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        self.threads_used = torch.get_num_threads()
        try:
            with torch.no_grad():
                return rasterize(*args, viewmat, K, width, height, background)
        finally:
            torch.set_num_threads(previous)
