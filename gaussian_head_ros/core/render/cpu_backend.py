"""Fast CPU rasterizer (numba, forward only): the real-time path on a robot without a GPU.

Same image model as the torch reference (see `gaussian_head_ros.core.render`). Pipeline:
1. project (parallel over Gaussians): EWA 2D conic, opacity-aware pixel box, tile range;
2. one stable LSD radix sort of the visible Gaussians by depth (float bits as keys), then the few values
   compositing needs are packed contiguously in that order;
3. counting-sort binning into 16x16 tiles (parallel over slices; keeps depth order inside each tile);
4. composite (parallel over tiles, shared between threads by pair count): each Gaussian updates the
   pixel rows its box touches, 16 lanes (or the one 8-lane half it reaches), front to back, branch-free so
   rows vectorise; finished rows are skipped and a tile stops when all its pixels are done.
   alpha = exp(-(sigma - ln opacity)) = q(s / 8)^8 with q a degree-4 polynomial (the 1/255 cut-off is
   decided on the exponent exactly; rel. error < 2e-3 near it, < 1e-4 for alpha > 0.05).
JIT-compiled on first use and cached on disk (`cache=True`); `warm_up()` compiles ahead of time.
"""

from __future__ import annotations

import logging
import threading
import time

import numba
import numpy as np
from numba import njit, prange

from gaussian_head_ros.core.render import (ALPHA_MAX, ALPHA_MIN, EPS2D, EXTEND_MAX, NEAR_PLANE, T_MIN, TILE,
                                           RenderResult)

log = logging.getLogger(__name__)

# The work queue (see core/render/__init__.py) must not be entered from two threads at once: `_LOCK`
# serialises our parallel calls.
_LOCK = threading.Lock()


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _project(means, quats, scales, opacities, viewmat, K, width, height, near, eps2d, alpha_min, extend_max,
             tile, geo, box):
    """geo [N, 8] out: mean x, mean y, conic a, b, c, depth, radius x, y (px);
    box [N, 4] out: tiles x0, x1, y0, y1 (all 0 if culled)."""
    n = means.shape[0]
    one, two = np.float32(1.0), np.float32(2.0)  # float32 literals keep the arithmetic in float32
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tanx, tany = np.float32(0.5 * width / fx), np.float32(0.5 * height / fy)
    limx_p, limx_n = np.float32((width - cx) / fx + 0.3 * tanx), np.float32(cx / fx + 0.3 * tanx)
    limy_p, limy_n = np.float32((height - cy) / fy + 0.3 * tany), np.float32(cy / fy + 0.3 * tany)
    for i in prange(n):
        box[i, 0] = 0
        box[i, 1] = 0
        box[i, 2] = 0
        box[i, 3] = 0
        op = opacities[i]
        x = viewmat[0, 0] * means[i, 0] + viewmat[0, 1] * means[i, 1] + viewmat[0, 2] * means[i, 2] + viewmat[0, 3]
        y = viewmat[1, 0] * means[i, 0] + viewmat[1, 1] * means[i, 1] + viewmat[1, 2] * means[i, 2] + viewmat[1, 3]
        z = viewmat[2, 0] * means[i, 0] + viewmat[2, 1] * means[i, 1] + viewmat[2, 2] * means[i, 2] + viewmat[2, 3]
        if z <= near or not op >= alpha_min:
            continue
        qw, qx, qy, qz = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        qn = np.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        if qn < 1e-12:
            continue
        qw, qx, qy, qz = qw / qn, qx / qn, qy / qn, qz / qn
        r00, r01, r02 = one - two * (qy * qy + qz * qz), two * (qx * qy - qw * qz), two * (qx * qz + qw * qy)
        r10, r11, r12 = two * (qx * qy + qw * qz), one - two * (qx * qx + qz * qz), two * (qy * qz - qw * qx)
        r20, r21, r22 = two * (qx * qz - qw * qy), two * (qy * qz + qw * qx), one - two * (qx * qx + qy * qy)
        s0, s1, s2 = scales[i, 0], scales[i, 1], scales[i, 2]
        # M = W R S (camera rotation x Gaussian rotation x scales); camera covariance = M M^T.
        m00 = (viewmat[0, 0] * r00 + viewmat[0, 1] * r10 + viewmat[0, 2] * r20) * s0
        m01 = (viewmat[0, 0] * r01 + viewmat[0, 1] * r11 + viewmat[0, 2] * r21) * s1
        m02 = (viewmat[0, 0] * r02 + viewmat[0, 1] * r12 + viewmat[0, 2] * r22) * s2
        m10 = (viewmat[1, 0] * r00 + viewmat[1, 1] * r10 + viewmat[1, 2] * r20) * s0
        m11 = (viewmat[1, 0] * r01 + viewmat[1, 1] * r11 + viewmat[1, 2] * r21) * s1
        m12 = (viewmat[1, 0] * r02 + viewmat[1, 1] * r12 + viewmat[1, 2] * r22) * s2
        m20 = (viewmat[2, 0] * r00 + viewmat[2, 1] * r10 + viewmat[2, 2] * r20) * s0
        m21 = (viewmat[2, 0] * r01 + viewmat[2, 1] * r11 + viewmat[2, 2] * r21) * s1
        m22 = (viewmat[2, 0] * r02 + viewmat[2, 1] * r12 + viewmat[2, 2] * r22) * s2
        rz = one / z
        tx = z * min(limx_p, max(-limx_n, x * rz))
        ty = z * min(limy_p, max(-limy_n, y * rz))
        j00, j02 = fx * rz, -fx * tx * rz * rz
        j11, j12 = fy * rz, -fy * ty * rz * rz
        # T = J M (2 x 3); cov2d = T T^T
        t00, t01, t02 = j00 * m00 + j02 * m20, j00 * m01 + j02 * m21, j00 * m02 + j02 * m22
        t10, t11, t12 = j11 * m10 + j12 * m20, j11 * m11 + j12 * m21, j11 * m12 + j12 * m22
        ca = t00 * t00 + t01 * t01 + t02 * t02 + eps2d
        cb = t00 * t10 + t01 * t11 + t02 * t12
        cc = t10 * t10 + t11 * t11 + t12 * t12 + eps2d
        det = ca * cc - cb * cb
        if not det > 0:
            continue
        mx, my = fx * x * rz + cx, fy * y * rz + cy
        ext = min(extend_max, np.sqrt(two * np.log(op / alpha_min)))
        rx, ry = np.ceil(ext * np.sqrt(ca)), np.ceil(ext * np.sqrt(cc))
        if rx <= 0 and ry <= 0:
            continue
        if mx + rx <= 0 or mx - rx >= width or my + ry <= 0 or my - ry >= height:
            continue
        geo[i, 0], geo[i, 1] = mx, my
        geo[i, 2], geo[i, 3], geo[i, 4] = cc / det, -cb / det, ca / det
        geo[i, 5] = z
        geo[i, 6], geo[i, 7] = rx, ry
        tw, th = (width + tile - 1) // tile, (height + tile - 1) // tile
        box[i, 0] = min(max(0, int(np.floor((mx - rx) / tile))), tw)
        box[i, 1] = min(max(0, int(np.ceil((mx + rx) / tile))), tw)
        box[i, 2] = min(max(0, int(np.floor((my - ry) / tile))), th)
        box[i, 3] = min(max(0, int(np.ceil((my + ry) / tile))), th)


@njit(cache=True, nogil=True)
def _depth_order(geo, box):
    """Indices of the visible Gaussians in stable depth order: LSD radix sort on the float32 bits of the
    (positive) depth, 3 passes of 11 bits."""
    n = geo.shape[0]
    vis = np.empty(n, np.int32)
    nv = 0
    for i in range(n):
        if box[i, 1] > box[i, 0] and box[i, 3] > box[i, 2]:
            vis[nv] = i
            nv += 1
    vis = vis[:nv]
    keys = np.empty(nv, np.uint32)
    bits = np.ascontiguousarray(geo[:, 5]).view(np.uint32)
    for j in range(nv):
        keys[j] = bits[vis[j]]
    tmp_i = np.empty(nv, np.int32)
    tmp_k = np.empty(nv, np.uint32)
    cnt = np.empty(2049, np.int64)
    for shift in (0, 11, 22):
        cnt[:] = 0
        for j in range(nv):
            cnt[((keys[j] >> shift) & 2047) + 1] += 1
        for b in range(2048):
            cnt[b + 1] += cnt[b]
        for j in range(nv):
            b = (keys[j] >> shift) & 2047
            d = cnt[b]
            cnt[b] = d + 1
            tmp_i[d] = vis[j]
            tmp_k[d] = keys[j]
        vis, tmp_i = tmp_i, vis
        keys, tmp_k = tmp_k, keys
    return vis


@njit(parallel=True, cache=True, nogil=True)
def _pack(order, geo, box, opacities, colors):
    """Per visible Gaussian in depth order, what compositing reads, contiguous (so a tile streams through
    memory in order): [mean x, mean y, a/2, b, c/2, opacity, r, g, b, radius x, radius y, 0] and its tile box."""
    nv = order.shape[0]
    pk = np.empty((nv, 12), np.float32)
    pbox = np.empty((nv, 4), np.int32)
    for j in prange(nv):
        g = order[j]
        pk[j, 0], pk[j, 1] = geo[g, 0], geo[g, 1]
        pk[j, 2], pk[j, 3], pk[j, 4] = np.float32(0.5) * geo[g, 2], geo[g, 3], np.float32(0.5) * geo[g, 4]
        pk[j, 5] = opacities[g]
        pk[j, 6], pk[j, 7], pk[j, 8] = colors[g, 0], colors[g, 1], colors[g, 2]
        pk[j, 9], pk[j, 10], pk[j, 11] = geo[g, 6], geo[g, 7], np.log(opacities[g])
        for c in range(4):
            pbox[j, c] = box[g, c]
    return pk, pbox


@njit(parallel=True, cache=True, nogil=True)
def _bin(box, tw, th, nchunks):
    """Counting sort of the (depth-ordered, packed) Gaussians into tiles, in parallel over `nchunks` slices
    (slice c's entries go after slice c-1's in every tile, so depth order is kept).
    Returns (tile_start [T + 1], tile_gauss [P]); indices increase within a tile."""
    nv = box.shape[0]
    nt = tw * th
    counts = np.zeros((nchunks, nt), np.int64)
    for c in prange(nchunks):
        for g in range(c * nv // nchunks, (c + 1) * nv // nchunks):
            for ty in range(box[g, 2], box[g, 3]):
                for tx in range(box[g, 0], box[g, 1]):
                    counts[c, ty * tw + tx] += 1
    start = np.zeros(nt + 1, np.int64)
    offs = np.empty((nchunks, nt), np.int64)
    for t in range(nt):
        acc = start[t]
        for c in range(nchunks):
            offs[c, t] = acc
            acc += counts[c, t]
        start[t + 1] = acc
    out = np.empty(start[nt], np.int32)
    for c in prange(nchunks):
        fill = offs[c]
        for g in range(c * nv // nchunks, (c + 1) * nv // nchunks):
            for ty in range(box[g, 2], box[g, 3]):
                for tx in range(box[g, 0], box[g, 1]):
                    t = ty * tw + tx
                    out[fill[t]] = g
                    fill[t] += 1
    return start, out


@njit(fastmath=True, cache=True, nogil=True, inline="always")
def _blend_row(row, nlanes, x0, mx, ca8, by8, hy8, col_r, col_g, col_b, s8_max, alpha_max, t_min):
    """One Gaussian over `nlanes` pixels of a row starting at lane x0: transmittance at row[0:], r, g, b at
    row[16:], row[32:], row[48:]. Branch-free, so the lanes vectorise (nlanes is a constant after inlining)."""
    zero, one = np.float32(0.0), np.float32(1.0)
    for xx in range(nlanes):
        dx = mx - np.float32(x0 + xx)
        s8 = (ca8 * dx + by8) * dx + hy8
        # exp(-8 s8) = q(s8)^8, q the degree-4 Taylor polynomial of exp(-x): rel. error < 2e-3 where
        # alpha >= 1/255 (s8 < 0.7), < 1e-4 for alpha > 0.05
        x = min(max(s8, zero), np.float32(0.75))
        q = one - x * (one - x * (np.float32(0.5) - x * (np.float32(1.0 / 6.0) - x * np.float32(1.0 / 24.0))))
        q = q * q
        q = q * q
        q = q * q
        t_old = row[xx]
        a = min(q, alpha_max) if (s8 <= s8_max) & (t_old > zero) else zero
        w = a * t_old
        nt = t_old - w
        done = nt <= t_min  # this Gaussian would finish the pixel: skip it, mark the pixel done
        w = zero if done else w
        row[xx] = -abs(t_old) if done else nt
        row[16 + xx] += w * col_r
        row[32 + xx] += w * col_g
        row[48 + xx] += w * col_b


@njit(fastmath=True, cache=True, nogil=True)
def _composite_tile(t, start, gauss, pk, width, height, tw, background, alpha_min, alpha_max, t_min, img,
                    alpha_img, rgb8):
    """One 16x16 tile, front to back. State per row: 16 transmittances (negated once the pixel is done) and
    16 r, g, b sums, in one array so each Gaussian-row update is a branch-free 16-lane loop (vectorises)."""
    eighth = np.float32(0.125)
    s8_max = np.float32(np.log(255.0) / 8)  # alpha >= 1/255
    ox, oy = (t % tw) * 16, (t // tw) * 16
    fox, foy = np.float32(ox) + np.float32(0.5), np.float32(oy) + np.float32(0.5)  # pixel centres at +0.5
    zero, one = np.float32(0.0), np.float32(1.0)
    st = np.zeros((16, 64), np.float32)  # [row, T x16 | r x16 | g x16 | b x16]
    st[:, 0:16] = one
    rowlive = np.ones(16, np.bool_)
    s, e = start[t], start[t + 1]
    done_check = 0
    for k in range(s, e):
        g = gauss[k]
        mx, my = pk[g, 0] - fox, pk[g, 1] - foy
        ca, cb, cc = pk[g, 2], pk[g, 3], pk[g, 4]
        ln_op = pk[g, 11]  # ln(opacity): alpha = exp(-(sig - ln_op))
        ca8, cb8 = ca * eighth, cb * eighth
        col_r, col_g, col_b = pk[g, 6], pk[g, 7], pk[g, 8]
        ry = pk[g, 10]  # rows outside the box have alpha < 1/255
        y0 = max(0, int(np.floor(my - ry)))
        y1 = min(16, int(np.ceil(my + ry)) + 1)
        rx = pk[g, 9]
        # Lanes the box reaches in this tile: both 8-lane halves (16-lane rows) or one (8-lane rows).
        lo, hi = mx - rx, mx + rx
        if lo > np.float32(15.0) or hi < zero:  # (the box is rounded out to whole tiles)
            continue
        done_check += 1
        o = 0 if lo <= np.float32(7.0) else 8
        lanes = 16 if (o == 0 and hi >= np.float32(8.0)) else 8
        for yy in range(y0, y1):
            if not rowlive[yy]:
                continue
            dy = my - np.float32(yy)
            hy8 = (cc * dy * dy - ln_op) * eighth  # everything / 8: exp(-s) = q(s / 8)^8
            by8 = cb8 * dy
            if lanes == 16:
                _blend_row(st[yy], 16, 0, mx, ca8, by8, hy8, col_r, col_g, col_b, s8_max, alpha_max, t_min)
            else:  # lanes o..o+7 of T, r, g, b at 0, 16, 32, 48
                _blend_row(st[yy, o:], 8, o, mx, ca8, by8, hy8, col_r, col_g, col_b, s8_max, alpha_max, t_min)
        if done_check % 32 == 0:  # retire finished rows; stop when the tile is done
            alive = False
            for r in range(16):
                if rowlive[r]:
                    m = zero
                    for xx in range(16):
                        m = max(m, st[r, xx])
                    rowlive[r] = m > zero
                    alive |= rowlive[r]
            if not alive:
                break
    u8 = rgb8.shape[0] > 0
    for yy in range(min(16, height - oy)):
        py = oy + yy
        for xx in range(min(16, width - ox)):
            px = ox + xx
            tv = abs(st[yy, xx])
            r = st[yy, 16 + xx] + tv * background[0]
            g_ = st[yy, 32 + xx] + tv * background[1]
            b = st[yy, 48 + xx] + tv * background[2]
            if u8:
                rgb8[py, px, 0] = np.uint8(min(max(r, zero), one) * np.float32(255.0) + np.float32(0.5))
                rgb8[py, px, 1] = np.uint8(min(max(g_, zero), one) * np.float32(255.0) + np.float32(0.5))
                rgb8[py, px, 2] = np.uint8(min(max(b, zero), one) * np.float32(255.0) + np.float32(0.5))
            else:
                img[py, px, 0] = r
                img[py, px, 1] = g_
                img[py, px, 2] = b
                alpha_img[py, px] = one - tv


@njit(cache=True, nogil=True)
def _schedule(start, nthreads):
    """Tiles for each thread, balanced by pair count (longest first, each to the least loaded thread):
    (tiles [T], thread_start [nthreads + 1]); thread c draws tiles[thread_start[c]:thread_start[c + 1]]."""
    nt = start.shape[0] - 1
    counts = start[1:] - start[:-1]
    order = np.argsort(-counts, kind="mergesort")  # heaviest first
    owner = np.empty(nt, np.int64)
    load = np.zeros(nthreads, np.int64)
    per = np.zeros(nthreads + 1, np.int64)
    for j in range(nt):
        c = np.argmin(load)
        owner[j] = c
        load[c] += counts[order[j]] + 1
        per[c + 1] += 1
    for c in range(nthreads):
        per[c + 1] += per[c]
    tiles = np.empty(nt, np.int64)
    fill = per[:nthreads].copy()
    for j in range(nt):
        c = owner[j]
        tiles[fill[c]] = order[j]
        fill[c] += 1
    return tiles, per


@njit(parallel=True, cache=True, nogil=True)
def _composite(tiles, per, start, gauss, pk, width, height, tw, background, alpha_min, alpha_max, t_min, img,
               alpha_img, rgb8):
    """Thread c draws its share of tiles (see `_schedule`)."""
    for c in prange(per.shape[0] - 1):
        for j in range(per[c], per[c + 1]):
            _composite_tile(tiles[j], start, gauss, pk, width, height, tw, background, alpha_min, alpha_max, t_min,
                            img, alpha_img, rgb8)


def rasterize_cpu(means, quats, scales, opacities, colors, viewmat, K, width: int, height: int,
                  background: np.ndarray) -> RenderResult:
    as_torch = type(means).__module__.startswith("torch")
    if as_torch:
        import torch

        dev = means.device
        arrs = [a.detach().cpu().numpy() for a in (means, quats, scales, opacities, colors)]
    else:
        arrs = [np.asarray(a) for a in (means, quats, scales, opacities, colors)]
    f32 = [np.ascontiguousarray(a, np.float32) for a in arrs]
    vm = np.ascontiguousarray(np.asarray(viewmat.cpu() if hasattr(viewmat, "cpu") else viewmat), np.float32)
    kk = np.ascontiguousarray(np.asarray(K.cpu() if hasattr(K, "cpu") else K), np.float32)
    img, alpha = render_arrays(*f32, vm, kk, width, height, np.asarray(background, np.float32))
    if as_torch:
        return RenderResult(torch.from_numpy(img).to(dev), torch.from_numpy(alpha).to(dev))
    return RenderResult(img, alpha)


def render_arrays(means, quats, scales, opacities, colors, viewmat, K, width, height, background, rgb8=False):
    """float32 contiguous arrays in -> (image [H, W, 3], alpha [H, W]) float32, or with rgb8=True the image
    as [H, W, 3] uint8 (clipped, rounded) and no alpha. Thread-safe (calls are serialised)."""
    with _LOCK:
        return _render_locked(means, quats, scales, opacities, colors, viewmat, K, width, height, background, rgb8)


def _render_locked(means, quats, scales, opacities, colors, viewmat, K, width, height, background, rgb8):
    n = means.shape[0]
    geo = np.empty((n, 8), np.float32)
    box = np.empty((n, 4), np.int32)
    _project(means, quats, scales, opacities, viewmat, K, width, height, np.float32(NEAR_PLANE), np.float32(EPS2D),
             np.float32(ALPHA_MIN), np.float32(EXTEND_MAX), TILE, geo, box)
    tw, th = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    nthreads = numba.get_num_threads()
    pk, pbox = _pack(_depth_order(geo, box), geo, box, opacities, colors)
    start, gauss = _bin(pbox, tw, th, nthreads)
    tiles, per = _schedule(start, nthreads)
    if rgb8:
        img, alpha, out8 = np.empty((0, 0, 3), np.float32), np.empty((0, 0), np.float32), np.empty((height, width, 3), np.uint8)
    else:
        img, alpha, out8 = np.empty((height, width, 3), np.float32), np.empty((height, width), np.float32), np.empty((0, 0, 3), np.uint8)
    _composite(tiles, per, start, gauss, pk, width, height, tw, background, np.float32(ALPHA_MIN),
               np.float32(ALPHA_MAX), np.float32(T_MIN), img, alpha, out8)
    return (out8, None) if rgb8 else (img, alpha)


def warm_up() -> float:
    """Compile (or load from the cache) every kernel with a tiny scene; returns seconds spent."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    n = 64
    means = (rng.normal(0, 0.05, (n, 3)) + [0, 0, 0.5]).astype(np.float32)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    scales = np.full((n, 3), 0.01, np.float32)
    k = np.array([[64, 0, 32], [0, 64, 32], [0, 0, 1]], np.float32)
    for rgb8 in (False, True):
        render_arrays(means, quats, scales, np.full(n, 0.8, np.float32), np.full((n, 3), 0.5, np.float32),
                      np.eye(4, dtype=np.float32), k, 64, 64, np.zeros(3, np.float32), rgb8)
    dt = time.perf_counter() - t0
    log.debug("cpu rasterizer ready in %.2f s", dt)
    return dt


class ThreadTuner:
    """Chooses how many threads the cpu rasterizer uses, from measured frame times.

    Two threads draw a frame in ~55 % of the time of one on an idle 2-core machine, but when other processes
    keep the cores busy a worker often waits to be scheduled and two threads become slower than one. The
    tuner uses its best count, and every `period_s` tries each count for `probe_frames` frames again."""

    def __init__(self, max_threads: int | None = None, period_s: float = 10.0, probe_frames: int = 6):
        self.candidates = sorted({1, int(max_threads or numba.config.NUMBA_NUM_THREADS)})
        self.period_s, self.probe_frames = period_s, probe_frames
        self.best = self.candidates[-1]
        self._probe: list[int] = []  # counts still to try, in order
        self._times: dict[int, list[float]] = {}
        self._next_probe = -1.0

    def threads(self, now: float) -> int:
        """The count to use for the next frame (now: seconds on a monotonic clock)."""
        if not self._probe and now >= self._next_probe and len(self.candidates) > 1:
            self._probe = [c for c in self.candidates for _ in range(self.probe_frames)]
            self._times = {c: [] for c in self.candidates}
        return self._probe[0] if self._probe else self.best

    def record(self, threads: int, seconds: float, now: float) -> None:
        if not self._probe or threads != self._probe[0]:
            return
        self._probe.pop(0)
        self._times[threads].append(seconds)
        if not self._probe:
            medians = {c: float(np.median(t[1:] or t)) for c, t in self._times.items()}  # first frame may warm up
            fastest = min(medians, key=medians.get)
            if medians[fastest] < 0.9 * medians[self.best]:
                log.debug("cpu rasterizer: %d threads (%s)", fastest, medians)
                self.best = fastest
            self._next_probe = now + self.period_s
