"""Image-space geometry for the training-free reconstructor: triangle rasterisation into id/bary/depth
maps, silhouette inflation, push-pull hole filling and normals from point maps.

All maps are S x S arrays in the source camera's image; pixel (i, j) has its centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import contextlib
import io
import logging

import cv2
import numpy as np
from numba import njit

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.jit import tolerate_cache_write_errors

log = logging.getLogger(__name__)

tolerate_cache_write_errors()  # a full disk must not stop a kernel that compiled (core/jit.py)


@njit(cache=True)
def _raster(uv, z, faces, size, fid, bary, depth):
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        za, zb, zc = z[a], z[b], z[c]
        if za <= 0 or zb <= 0 or zc <= 0:
            continue
        ax, ay, bx, by, cx, cy = uv[a, 0], uv[a, 1], uv[b, 0], uv[b, 1], uv[c, 0], uv[c, 1]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-9:
            continue
        x0 = max(int(np.floor(min(ax, bx, cx) - 0.5)), 0)
        x1 = min(int(np.ceil(max(ax, bx, cx) - 0.5)), size - 1)
        y0 = max(int(np.floor(min(ay, by, cy) - 0.5)), 0)
        y1 = min(int(np.ceil(max(ay, by, cy) - 0.5)), size - 1)
        for i in range(y0, y1 + 1):
            py = i + 0.5
            for j in range(x0, x1 + 1):
                px = j + 0.5
                w0 = ((bx - px) * (cy - py) - (by - py) * (cx - px)) / area
                w1 = ((cx - px) * (ay - py) - (cy - py) * (ax - px)) / area
                w2 = 1.0 - w0 - w1
                if w0 < -1e-6 or w1 < -1e-6 or w2 < -1e-6:
                    continue
                # perspective-correct barycentrics: screen weights / depth, renormalised
                q0, q1, q2 = w0 / za, w1 / zb, w2 / zc
                qs = q0 + q1 + q2
                zz = 1.0 / qs
                if zz < depth[i, j]:
                    depth[i, j] = zz
                    fid[i, j] = f
                    bary[i, j, 0] = q0 / qs
                    bary[i, j, 1] = q1 / qs
                    bary[i, j, 2] = q2 / qs


def rasterize_mesh(verts_cam: np.ndarray, faces: np.ndarray, K: np.ndarray, size: int):
    """Z-buffer a triangle mesh in camera coordinates.

    verts_cam [V, 3] (camera frame, z forward), faces [F, 3], K [3, 3] -> face id [S, S] int32 (-1 = none),
    perspective-correct barycentrics [S, S, 3] float32, depth [S, S] float32 (inf = none). Both sides drawn."""
    v = np.asarray(verts_cam, np.float64)
    z = v[:, 2]
    uv = np.stack([K[0, 0] * v[:, 0] / np.maximum(z, 1e-9) + K[0, 2], K[1, 1] * v[:, 1] / np.maximum(z, 1e-9) + K[1, 2]], 1)
    fid = np.full((size, size), -1, np.int32)
    bary = np.zeros((size, size, 3), np.float32)
    depth = np.full((size, size), np.inf, np.float64)
    _raster(uv, z, np.ascontiguousarray(faces, np.int64), size, fid, bary, depth)
    return fid, bary, depth.astype(np.float32)


def pixel_rays(K: np.ndarray, size: int) -> np.ndarray:
    """[S, S, 3] camera-frame ray directions with z = 1 through every pixel centre."""
    j, i = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    return np.stack([(j - K[0, 2]) / K[0, 0], (i - K[1, 2]) / K[1, 1], np.ones_like(j)], -1).astype(np.float32)


def inflate(mask: np.ndarray, metres_per_px: float, radius_m: float) -> np.ndarray:
    """[S, S] bool silhouette -> [S, S] height in metres of a rounded body over it: a quarter circle of
    `radius_m` rising from 0 at the silhouette, flat beyond radius_m inside."""
    d = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5) * metres_per_px
    d = np.minimum(d, radius_m)
    return np.sqrt(np.maximum(2 * radius_m * d - d * d, 0.0)).astype(np.float32)


def masked_blur(img: np.ndarray, mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """img [S, S] or [S, S, C], mask [S, S] bool -> img's shape: the Gaussian blur (sigma_px, pixels) of the masked
    pixels only, normalised by the blurred mask (a normalised convolution: each pixel the weighted mean of the masked
    pixels around it); 0 where no masked pixel is near. float32. The one masked blur (the creases' local tone, the
    completion's face light, the lips' skin fill tone). The blurs run on the rows and columns within the kernel's
    reach of the mask only (`blur_window`; the rest is 0): the same bits, at 0.4-0.8 x the pixels for a face's masks
    in a 512 px crop."""
    m = mask.astype(np.float32)
    x = np.asarray(img, np.float32)
    flat = x.reshape(mask.shape + (-1,))
    out = np.zeros(flat.shape, np.float32)
    win = blur_window(mask, sigma_px)
    if win is not None:
        mw = m[win]
        num = cv2.GaussianBlur(flat[win] * mw[..., None], (0, 0), sigma_px).reshape(mw.shape + (-1,))
        out[win] = num / np.maximum(cv2.GaussianBlur(mw, (0, 0), sigma_px), 1e-6)[..., None]
    return out.reshape(x.shape)


# OpenCV's float row filter computes a pixel in SIMD lanes from the row's start: a window whose columns start at a
# multiple of this many pixels from the image's left edge, and end at its right edge or a multiple of it after the
# start, gives each pixel the bits it has in the whole image (0 of 600 random masks, sizes and sigmas differed); a
# window at any column did not (188 of 300 random cases differed by 1-3 float32 ulp). Rows: any window (0 of 300).
BLUR_COLUMN_BLOCK_PX = 64


def blur_window(mask: np.ndarray, sigma_px: float) -> tuple[slice, slice] | None:
    """(rows, cols) slices of [S, S] the pixels within a Gaussian kernel's reach of mask [S, S] bool (cv2.GaussianBlur's
    float kernel of sigma_px, pixels: radius round(8 sigma + 1) // 2, so 4 sigma + 2 covers it and the pixel beyond,
    whose border reflection reads no masked pixel), its columns whole BLUR_COLUMN_BLOCK_PX blocks from the left edge
    (or to the right edge); None where mask is empty. cv2.GaussianBlur of an image's window gives the mask's pixels
    (and, for an image that is 0 off the mask, every pixel of the window) the bits the whole image's blur gives them:
    masked_blur's and photo_layer.refine_colours' blurs."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return None
    reach = int(np.ceil(4 * sigma_px)) + 2
    h, w = mask.shape
    block = BLUR_COLUMN_BLOCK_PX
    x0 = max(cols[0] - reach, 0) // block * block
    x1 = x0 + -(-(cols[-1] + reach + 1 - x0) // block) * block
    return slice(max(rows[0] - reach, 0), min(rows[-1] + reach + 1, h)), slice(x0, x1 if x1 + block <= w else w)


def push_pull(values: np.ndarray, weight: np.ndarray, levels: int = 10) -> np.ndarray:
    """Fill [S, S, C] values where weight [S, S] is 0 from where it is > 0 (pyramid push-pull:
    smooth, fast, extrapolates edge values outward). Known values are kept. float32 throughout (values and
    weight are read as float32); the pyramid's sums and blends are numba kernels (`_down`, `_blend`), numpy's
    float32 arithmetic in its order."""
    vals = [np.asarray(values, np.float32) * np.asarray(weight, np.float32)[..., None]]
    wts = [np.asarray(weight, np.float32)]
    for _ in range(levels):
        if min(wts[-1].shape) < 2:
            break
        vals.append(_down(vals[-1]))
        wts.append(_down(wts[-1][..., None])[..., 0])
    filled = vals[-1] / np.maximum(wts[-1][..., None], np.float32(1e-8))
    for lv in range(len(vals) - 2, -1, -1):
        h, w = wts[lv].shape
        up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
        filled = _blend(vals[lv], wts[lv], up)
    return filled


@njit(cache=True)
def _down(x):
    """2x2 box sum (odd sizes padded with zeros) of [H, W, C] float32: each output the sum, in this order, of
    x[2i, 2j], x[2i + 1, 2j], x[2i, 2j + 1], x[2i + 1, 2j + 1] (those inside)."""
    h, w, c = x.shape
    out = np.zeros(((h + 1) // 2, (w + 1) // 2, c), np.float32)
    zero = np.float32(0.0)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            for k in range(c):
                a = x[2 * i, 2 * j, k]
                b = x[2 * i + 1, 2 * j, k] if 2 * i + 1 < h else zero
                d = x[2 * i, 2 * j + 1, k] if 2 * j + 1 < w else zero
                e = x[2 * i + 1, 2 * j + 1, k] if 2 * i + 1 < h and 2 * j + 1 < w else zero
                out[i, j, k] = a + b + d + e
    return out


@njit(cache=True)
def _blend(vals, wts, up):
    """One push-pull level up: [H, W, C] weighted sums vals, [H, W] weights, [H, W, C] the coarser level resized ->
    [H, W, C] a own + (1 - a) up, own = vals / max(wts, 1e-8), a = min(wts, 1) (float32; NaN as numpy passes it)."""
    h, w, c = up.shape
    out = np.empty((h, w, c), np.float32)
    one, eps = np.float32(1.0), np.float32(1e-8)
    for i in range(h):
        for j in range(w):
            wt = wts[i, j]
            a = one if wt > one else wt
            den = eps if wt < eps else wt
            for k in range(c):
                out[i, j, k] = a * (vals[i, j, k] / den) + (one - a) * up[i, j, k]
    return out


def normals_from_points(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[S, S, 3] camera-frame point map -> [S, S, 3] float32 unit normals facing the camera (central differences;
    one-sided at the edge of `valid` [S, S] bool; (0, 0, -1) where no difference is known or the normal's length is
    1e-12 or less). One numba pass (`_normals`) in numpy's float32 arithmetic and order: the bits of the numpy
    expressions it replaced (np.roll's wrap-around neighbours, np.cross, np.linalg.norm), which made some twenty
    [S, S, 3] temporaries (rec59)."""
    return _normals(np.ascontiguousarray(points, np.float32), np.asarray(valid, bool))


@njit(cache=True)
def _difference(ahead, here, behind, ahead_ok, behind_ok):
    """One channel's difference across a pixel (float32): central where both neighbours are valid, one-sided where one
    is, 0 where none."""
    if ahead_ok and behind_ok:
        return ahead - behind
    if ahead_ok:
        return ahead - here
    if behind_ok:
        return here - behind
    return np.float32(0.0)


@njit(cache=True)
def _normals(p, valid):
    """normals_from_points of p [H, W, 3] float32 and valid [H, W] bool (the neighbours of the first and last row
    and column wrap round, as np.roll's): dx, dy the central differences where both neighbours are valid, one-sided
    where one is, 0 where none; n = dy x dx (x right, y down: towards the camera, -z, for a frontal plane), divided
    by its length (sums in channel order), flipped to face the camera at the origin (n . p <= 0)."""
    h, w, _ = p.shape
    out = np.empty((h, w, 3), np.float32)
    zero, tiny = np.float32(0.0), np.float32(1e-12)
    dx = np.empty(3, np.float32)
    dy = np.empty(3, np.float32)
    for i in range(h):
        iu, id_ = (i - 1) % h, (i + 1) % h
        for j in range(w):
            jl, jr = (j - 1) % w, (j + 1) % w
            vr, vl, vd, vu = valid[i, jr], valid[i, jl], valid[id_, j], valid[iu, j]
            for k in range(3):
                dx[k] = _difference(p[i, jr, k], p[i, j, k], p[i, jl, k], vr, vl)
                dy[k] = _difference(p[id_, j, k], p[i, j, k], p[iu, j, k], vd, vu)
            n0 = dy[1] * dx[2] - dy[2] * dx[1]
            n1 = dy[2] * dx[0] - dy[0] * dx[2]
            n2 = dy[0] * dx[1] - dy[1] * dx[0]
            norm = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
            if norm > tiny:  # numpy's n / max(norm, 1e-12) where norm > 1e-12
                n0, n1, n2 = n0 / norm, n1 / norm, n2 / norm
            else:
                n0, n1, n2 = zero, zero, np.float32(-1.0)
            if n0 * p[i, j, 0] + n1 * p[i, j, 1] + n2 * p[i, j, 2] > zero:
                n0, n1, n2 = -n0, -n1, -n2
            out[i, j, 0], out[i, j, 1], out[i, j, 2] = n0, n1, n2
    return out


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 6, eps: float = 1e-3) -> np.ndarray:
    """Edge-aware smoothing of src [S, S] float by the colour image guide [S, S, 3] float in [0, 1]
    (He et al., grey guide): snaps a coarse mask's edges to the photo's edges."""
    g = guide @ LUMA.astype(np.float32)
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x):
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    src = src.astype(np.float32)
    mg, ms = box(g), box(src)
    a = (box(g * src) - mg * ms) / (box(g * g) - mg * mg + eps)
    b = ms - a * mg
    return (box(a) * g + box(b)).astype(np.float32)


def _palette(samples: np.ndarray, k: int, rng) -> np.ndarray:
    """[M, 3] colours -> [<=k, 3] k-means centres."""
    if len(samples) > 4000:
        samples = samples[rng.choice(len(samples), 4000, replace=False)]
    k = min(k, len(samples))
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1e-3)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(np.ascontiguousarray(samples, np.float32), k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
    return centres


def nearest_distance(colours: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """[N] each of colours [N, C]'s Euclidean distance to the nearest of palette [K >= 1, C] (`edge_palettes'` k-means
    colours; any units, the same in both), in their numpy result type (float32 for float32 colours and palette). One
    numba pass (`_nearest`), the bits of np.min(np.linalg.norm(colours[:, None] - palette[None], axis=-1), axis=1)
    without its [N, K, C] temporaries (rec59); NaN where a distance is NaN. Raises ValueError for C >= 8 (numpy sums
    8 or more channels in another order) or an empty palette (as np.min did)."""
    colours, palette = np.asarray(colours), np.asarray(palette)
    if colours.shape[-1] >= 8 or len(palette) == 0:
        raise ValueError(f"nearest_distance: {colours.shape[-1]} channels, {len(palette)} palette colours; "
                         "fewer than 8 channels and at least one palette colour wanted")
    return _nearest(colours, palette, np.empty(len(colours), np.result_type(colours, palette)))


@njit(cache=True)
def _nearest(colours, palette, out):
    """out [N] <- the least over palette [K, C] of each colour's [N, C] distance, sqrt of the squares summed in channel
    order in out's precision (numpy's float32 for float32 inputs), NaN if any distance is NaN (as np.min)."""
    for n in range(colours.shape[0]):
        best = out.dtype.type(np.inf)
        for k in range(palette.shape[0]):
            e = colours[n, 0] - palette[k, 0]
            sq = e * e
            for c in range(1, colours.shape[1]):
                e = colours[n, c] - palette[k, c]
                sq = sq + e * e
            d = np.sqrt(sq)
            if np.isnan(d) or d < best:
                best = d
                if np.isnan(d):
                    break
        out[n] = best
    return out


# refine_silhouette's texture floor holds from this many photo pixels per crop pixel up: the least of the ../shared
# portraits but astronaut_eileen_collins (0.55; its rendered crown 2 px apart), lp_s9_monalisa's 1.17: the others'
# avatars are as they were
TEXTURE_FULL_PX = 1.17


def refine_silhouette(photo: np.ndarray, mask: np.ndarray, keep: np.ndarray, band_px: int = 40, deep_px: int = 25,
                      ratio: float = 0.5, k: int = 8, texture_ratio: float = 2.0,
                      texture_floor: float = 0.1, local_ring_px: tuple[int, int] = (6, 16),
                      local_reach_px: int = 12, source_px: float = TEXTURE_FULL_PX) -> np.ndarray:
    """Peel background-coloured regions off a mask's edge (a coarse segmentation often takes in a strip of
    the background). Colour palettes (k-means) of the background just outside and of the foreground deep
    inside (deep_px and more from the edge) are compared; a pixel within band_px of the edge leaves the
    mask when its colour is clearly nearer a background colour and it is as smooth as the background: its
    local detail (the photo [0, 1] less its blur, summed over RGB, averaged over a few pixels) at most
    texture_ratio x the 90th percentile of the background's just outside, or texture_floor, whichever is
    larger (grey hair against a light, defocused backdrop has the backdrop's colours but not its smoothness:
    obama_official's crown was peeled to a tuft). The floor keeps the rule off noise: on a smooth backdrop
    2 x its 90th percentile (0.066 on lp_d8 at 480 px) sits amid the detail of the hair edge the colour rule
    peels (0.036-0.057 there), so a JPEG's pixel rounding flipped whole strips of hair in or out of the mask
    (its avatar 1.1 dB apart between EXIF orientations); strands worth keeping have more (obama_official's
    crown: 0.13 median). On the ../shared portraits floors of 0.08-0.12 move the masks by at most 0.5 % of
    their area; the rule (with the floor) moves obama_official's by 2.7 % (its crown), the others' by <= 0.3 %.
    The palettes are the whole person's, so a backdrop colour that the person also wears elsewhere stays: a cream
    bump of obama_official's window above his dark-grey crown matched his white shirt and teeth, and showed as a
    pale patch on the head from every side. So, within local_reach_px of the edge, a pixel also leaves when it is
    nearer (by `ratio`) the backdrop's colour just outside than the person's just inside at that place (each
    extrapolated from its ring, the inner one local_ring_px from the edge; push_pull), and as smooth as above.
    `keep` pixels always stay.

    The floor holds for a photo sampled at TEXTURE_FULL_PX or more of its pixels per pixel of `photo` (`source_px`,
    framing.FramedPhoto.source_px); below, it falls in proportion: a small face's crop is sampled from fewer photo
    pixels, its detail spread over more of the crop's (obama_official scaled to a 150 / 110 px wide face, source_px
    0.85 / 0.62: the band's median detail 0.078 -> 0.047 -> 0.034), and at the full floor his crown was peeled to a
    tuft again (the rendered crown's silhouette IoU against the full-size photo's 0.84 / 0.82, 0.95 / 0.92 with the
    floor in proportion; the other ../shared portraits at those sizes within -0.04..+0.09 of before)."""
    kernel = np.ones((3, 3), np.uint8)
    m8 = mask.astype(np.uint8)
    found = edge_palettes(photo, mask, deep_px, k)
    if found is None:
        return mask
    d, outside, bg_pal, fg_pal = found
    bi, bj = np.nonzero(mask & (d < band_px) & ~keep)
    c = photo[bi, bj]
    drop = nearest_distance(c, bg_pal) < ratio * nearest_distance(c, fg_pal)
    if local_reach_px > 0:  # and against the colours on either side of the edge at that place
        ring_in = mask & (d >= local_ring_px[0]) & (d < local_ring_px[1])
        ring_out = outside & ~cv2.dilate(m8, kernel, iterations=2).astype(bool)
        if ring_in.any() and ring_out.any():
            fg_here = push_pull(photo, ring_in.astype(np.float32))[bi, bj]
            bg_here = push_pull(photo, ring_out.astype(np.float32))[bi, bj]
            drop |= (d[bi, bj] < local_reach_px) & (
                np.linalg.norm(c - bg_here, axis=-1) < ratio * np.linalg.norm(c - fg_here, axis=-1))
    if texture_ratio > 0:
        detail = cv2.GaussianBlur(np.abs(photo - cv2.GaussianBlur(photo, (0, 0), 1.0)).sum(-1), (0, 0), 3.0)
        ring = outside & ~cv2.dilate(m8, kernel, iterations=3).astype(bool)  # clear of the edge's own contrast
        floor = texture_floor * min(1.0, source_px / TEXTURE_FULL_PX)
        smooth = max(texture_ratio * np.percentile(detail[ring if ring.sum() >= 50 else outside], 90), floor)
        drop &= detail[bi, bj] <= smooth
    m = mask.copy()
    m[bi[drop], bj[drop]] = False
    m = (cv2.medianBlur(m.astype(np.uint8) * 255, 5) > 127) | (keep & mask)
    return m & mask


def edge_palettes(photo: np.ndarray, mask: np.ndarray, deep_px: int, k: int):
    """(d, outside, bg_pal, fg_pal) of a mask [S, S] bool on photo [S, S, 3]: d [S, S] float32 its distance transform,
    outside [S, S] bool the band 2..25 px outside it, bg_pal / fg_pal [<=k, 3] the k-means palettes of the photo
    there and from deep_px to deep_px + 40 px inside; None where either has fewer than 50 pixels."""
    kernel = np.ones((3, 3), np.uint8)
    m8 = mask.astype(np.uint8)
    d = cv2.distanceTransform(m8, cv2.DIST_L2, 3)
    outside = cv2.dilate(m8, kernel, iterations=25).astype(bool) & ~cv2.dilate(m8, kernel, iterations=1).astype(bool)
    inside = (d > deep_px) & (d < deep_px + 40)
    if outside.sum() < 50 or inside.sum() < 50:
        return None
    rng = np.random.default_rng(0)
    return d, outside, _palette(photo[outside], k, rng), _palette(photo[inside], k, rng)


def peel_unlike_rim(photo: np.ndarray, mask: np.ndarray, keep: np.ndarray, reach_px: int = 6, unlike: float = 0.25,
                    ratio: float = 0.7, deep_px: int = 25, k: int = 8, min_area_px: int = 20) -> np.ndarray:
    """Take out of a person mask the backdrop the segmentation kept along its outline in a colour the person has
    nowhere: photo [S, S, 3] float [0, 1], mask and keep [S, S] bool (keep: pixels that stay). A pixel within reach_px
    of the outline leaves when its RGB distance to the nearest colour of the person's palette (k-means from deep_px
    to deep_px + 40 px inside) is above `unlike` and its distance to the nearest of the backdrop's (2..25 px outside)
    below `ratio` x that; so do the pixels between it and the outline (as near the outline as such a pixel within
    2 px of them: the outermost pixels mix it with what lies outside), in strips of min_area_px or more (8-connected:
    specks are the edge matte's; lp_d0's first frame lost 18 green pixels in four specks of <= 8 in the notch between
    its ear and hair, and its self frame 0 0.017 dB). Returns the mask [S, S] bool, a subset.

    The segmentation keeps a 3-6 px strip of the flag's red stripe along trump_official's ear; the ear's contrast
    against it is "detail", so refine_silhouette keeps it (its texture rule saves grey hair in front of a grey
    window), and matte_hair's closed-form matte reads it as foreground. Turned 20-35 deg the photo layer's discs on
    that strip and the silhouette wall's rim colour showed as a red back of the ear, and no colour rule downstream
    can tell a flag's red in shade from the ear's skin at the rim (session 27, hair27). Run after matte_hair: before
    it, peeling part of the girl's hair clip beside two_children's boy left too small a blob for the matte to take
    the rest (783 px of her clip and hair came back). The constants by eye on the nine ../shared portraits: at 0.25 /
    0.7 / 6 px the masks lose 0-380 px (trump 376: the strip; obama_official 190: the window behind his ear and through
    the crown's side; two_children 104: the girl's clip and bits of the wall by his neck; obama_speech 93), none of
    the four driving clips' first frames; at unlike 0.2 lp_d9's and obama_official's hair outlines lost 230 and 820 px."""
    found = edge_palettes(photo, mask, deep_px, k)
    if found is None or reach_px <= 0:
        return mask
    d, _, bg_pal, fg_pal = found
    bi, bj = np.nonzero(mask & (d < reach_px) & ~keep)
    if not len(bi):
        return mask
    c = photo[bi, bj]
    far = nearest_distance(c, fg_pal)
    drop = np.zeros(mask.shape, np.uint8)
    drop[bi, bj] = toward_outline(d, bi, bj, (far > unlike) & (nearest_distance(c, bg_pal) < ratio * far))
    return mask & ~_blobs(drop, min_area_px)


def toward_outline(d: np.ndarray, bi: np.ndarray, bj: np.ndarray, alien: np.ndarray) -> np.ndarray:
    """[N] bool of the pixels (bi, bj) [N] inside a mask that lie no deeper than an `alien` [N] bool one within 2 px
    of them (a 5x5 ellipse): the alien pixels and those between them and the outline (a colour the person does not
    have goes out to the edge, not only where a pixel of it was told). d [S, S] float32 the mask's distance transform
    (pixels, >= 1 inside). peel_unlike_rim's and backdrop_rim.backdrop_share's one rule."""
    depth = np.zeros(d.shape, np.float32)
    depth[bi[alien], bj[alien]] = d[bi[alien], bj[alien]]
    depth = cv2.dilate(depth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    return (depth[bi, bj] > 0) & (d[bi, bj] <= depth[bi, bj])


def _alpha_cf(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """pymatting's estimate_alpha_cf ([H, W, 3] float64, [H, W] trimap -> [H, W] alpha), what it prints kept off the
    console: where its incomplete Cholesky preconditioner fails it prints six lines to stdout ('PERFORMANCE WARNING:
    ... Try decreasing discard_threshold or start with a larger shift') and retries with a diagonal shift, the matte
    the same. In a node they stood in the console between its log lines, in no log file, naming parameters nobody here
    sets (user54); they are one debug line now."""
    from pymatting import estimate_alpha_cf

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        alpha = estimate_alpha_cf(image, trimap)
    if printed.getvalue().strip():
        log.debug("pymatting: %s", " ".join(printed.getvalue().split()))
    return alpha


def matte_hair(photo: np.ndarray, mask: np.ndarray, keep: np.ndarray, sure_px: int = 71, outer_px: int = 11,
               alpha_cut: float = 0.3, palette_margin: float = 0.1, wall_dist: float = 0.1,
               min_area_px: int = 100, tint_reach_px: int = 20, min_alpha: float = 0.02,
               smooth_px: int = 35, k: int = 8, valid: np.ndarray | None = None,
               hair_skin: tuple[np.ndarray, np.ndarray] | None = None, rim_px: tuple[int, int] = (8, 8),
               unmix_residual: tuple[float, float] = (0.05, 0.15),
               unmix_hair: tuple[float, float] = (0.1, 0.3),
               unmix_unlike: tuple[float, float] = (0.1, 0.2)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Take the backdrop seen between strands out of a person mask, and give those strands their own colours.

    photo: (S, S, 3) float [0, 1]; mask, keep: (S, S) bool (keep: pixels that stay, e.g. the face mesh).
    Returns (mask', colours): mask' (S, S) bool, a subset of mask; colours (S, S, 3) float32, the photo but for
    the strands near what left, which take their foreground colour F of I = a F + (1 - a) B (pymatting's
    estimate_foreground_ml). Wispy hair over a bright wall (lp_d9_woman_turned) keeps the wall between its
    strands in a segmentation mask (a yellow wedge beside her face from every side), and refine_silhouette does
    not peel it (strands are not smooth). Closed-form matting (Levin et al. 2008; pymatting's estimate_alpha_cf,
    MIT) on a trimap: sure person = the mask eroded by a sure_px ellipse, less the wall (pixels within
    wall_dist, RGB, of the backdrop's palette: k-means of the 25 px outside) and 2 px around it, or keep; sure
    backdrop = outside the mask dilated by outer_px; the rest unknown. A band pixel leaves when its alpha <
    alpha_cut and its colour is nearer the backdrop's palette than the person's by palette_margin, the
    person's from sure_px / 2 .. + 45 px deep less the wall (the wedge itself is that deep): alpha alone is
    wrong where hair and backdrop share a colour (two_children's and obama_speech's dark hair on dark walls
    read ~0.6). Removed blobs under min_area_px stay (obama_official's grey crown lost a 93 px speckle at 40;
    lp_d9's wedge comes out in blobs of hundreds). When no such blob can form (the band's backdrop-coloured
    pixels, opened, hold no blob of min_area_px) the matte is not computed at all: the result is the same and
    costs no matting (five of the nine ../shared portraits; obama_official's is computed and changes nothing).
    Where blobs left (within tint_reach_px), the new outline is smoothed: the mask opened by a smooth_px
    ellipse (strand tufts and hooks narrower than it, left between removed blobs, leave: lp_d9's beak at mid
    height) and then blurred (sigma smooth_px / 4) and cut at 0.5 (no jag), never growing past the old mask.
    Strands there that a strand covers (min_alpha < alpha < 1: where alpha is 0, F is only extrapolated;
    two_children's neighbour's hair, enclosed in the boy's mask, took an orange of his skin, 35.3 -> 32.1 dB
    giving his photo back) take F when their colour is nearer the backdrop's palette than the person's (the
    pale-yellow streaks at lp_d9's outer edge; not all band pixels of the backdrop's colour: obama_official's
    grey crown, alpha ~0.3 and nearer the window's greys than his face, took darker, speckled strand colours
    all over). The values were set by eye on the nine ../shared portraits. Cost: 1-4 s per 512 px crop on 2
    cores where it runs (the first import compiles pymatting's numba kernels into its cache: minutes under
    load). Raises nothing; returns (mask, photo) as they are when the band, the outside or the inside is
    (nearly) empty or no blob can leave.

    The third output, own (S, S, 3) float32, is the colours with the backdrop seen through the outline taken out
    (what a turned view's hidden side takes from the rim; the photo's own camera sees the rim as the photo has it,
    so the photo layer keeps `colours`): on the pixels less than rim_px[0] inside mask', I = a F + (1 - a) B with F
    the colours from rim_px[0] to rim_px[0] + rim_px[1] inside (extrapolated out), B the backdrop behind the person
    there (completion.background_colours: the photo from 2 px outside the mask, within `valid` (None: everywhere),
    extrapolated in) or one of the backdrop's palette colours, whichever lies nearest the line from B to F (a striped
    backdrop's colours blur together beside the head: trump_official's flag, red pixels beside its white stripe were
    no mix of his hair and that pink), and a by least squares along F - B (completion.edge_opacity): each pixel takes
    (1 - a) of F - B more. Only as far as the mix explains it (its distance to that line fading the change out over
    unmix_residual, RGB: a dark strand off that line came out green behind trump's ear), and only where F looks
    like the hair (hair_skin: the hair's and the skin's colours, [3] each; d_skin^2 / (d_skin^2 + d_hair^2) of F
    fading in over unmix_hair: a dark hairline at a temple against a dark room is no mix, and obama_speech's turned
    temple went skin-orange; with 0.3..0.7 trump's flag-red rim stayed, 42 of 67 red pixels) or the pixel is unlike
    every colour of the person's palette (RGB distance to the nearest fading in over unmix_unlike: the flag-red strip
    the segmentation keeps beside trump's ear has the ear's skin further in). hair_skin None: no unmix, own is
    colours. trump_official's hair over a red flag: the matte reads its dark-on-red rim as hair (alpha high, 747
    flag-red pixels in the mask with or without it), and turned 20-35 deg the hidden side carried the flag as red
    specks behind his ear (back23, session 23, measured rim_px, unmix_residual and unmix_hair on the nine ../shared
    portraits; the palette's B and unmix_unlike matte25, session 25, by eye on trump and the red count)."""
    out, colours, unlike, bg_pal = _matte(photo, mask, keep, sure_px, outer_px, alpha_cut, palette_margin,
                                          wall_dist, min_area_px, tint_reach_px, min_alpha, smooth_px, k)
    if hair_skin is None:
        return out, colours, colours
    return out, colours, _without_backdrop(photo, colours, out, unlike, bg_pal, valid, hair_skin, rim_px,
                                           unmix_residual, unmix_hair, unmix_unlike)


def _without_backdrop(photo, colours, mask, unlike, bg_pal, valid, hair_skin, rim_px, residual, hair_gate,
                      unlike_gate) -> np.ndarray:
    """matte_hair's `own`: colours [S, S, 3] less the backdrop (photo [S, S, 3] outside mask [S, S]; bg_pal [K, 3] its
    palette) seen through the outline of mask (unlike [S, S]: distance to the person's palette; matte_hair's docstring
    has the rule and its constants)."""
    from gaussian_head_ros.core.deform import smoothstep
    from gaussian_head_ros.core.reconstruct.completion import background_colours, edge_opacity

    own = colours.copy()
    d_in = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    i, j = np.nonzero(mask & (d_in < rim_px[0]))
    ring = mask & (d_in >= rim_px[0]) & (d_in < rim_px[0] + rim_px[1])
    if len(i) == 0 or ring.sum() < 20:
        return own
    f = push_pull(colours, ring.astype(np.float32))[i, j]
    c = colours[i, j]
    bs = np.concatenate([background_colours(photo, mask, valid)[i, j][:, None],  # [N, 1 + K, 3]: B's candidates
                         np.broadcast_to(np.asarray(bg_pal, np.float32)[None], (len(i), len(bg_pal), 3))], 1)
    a = edge_opacity(c[:, None], f[:, None], bs)
    off = np.linalg.norm(c[:, None] - (a[..., None] * f[:, None] + (1 - a)[..., None] * bs), axis=-1)
    best = np.argmin(off, axis=1)  # the candidate nearest the line (the first of equals)
    n = np.arange(len(i))
    a, b, off = a[n, best], bs[n, best], off[n, best]
    w = 1 - smoothstep(residual[0], residual[1], off)
    d_hair, d_skin = (np.sum((f - np.asarray(x, np.float32)) ** 2, -1) for x in hair_skin)
    w = w * np.maximum(smoothstep(hair_gate[0], hair_gate[1], d_skin / (d_skin + d_hair + 1e-6)),
                       smoothstep(unlike_gate[0], unlike_gate[1], unlike[i, j]))
    own[i, j] = c + (w * (1 - a))[:, None] * (f - b)
    return own


def _matte(photo, mask, keep, sure_px, outer_px, alpha_cut, palette_margin, wall_dist, min_area_px, tint_reach_px,
           min_alpha, smooth_px, k) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """matte_hair's mask' and colours (its docstring), and [S, S] float32 its band's pixels' RGB distance to the
    person's palette (0 where it has no band), and the backdrop's palette [<=k, 3] (none where it has no outside)."""
    m8 = mask.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    outside = cv2.dilate(m8, kernel, iterations=25).astype(bool) & ~cv2.dilate(m8, kernel, iterations=1).astype(bool)
    d = cv2.distanceTransform(m8, cv2.DIST_L2, 3)
    colours = photo.astype(np.float32)
    if outside.sum() < 50:
        return mask, colours, np.zeros(mask.shape, np.float32), np.zeros((0, 3), np.float32)
    rng = np.random.default_rng(0)
    bg_pal = _palette(photo[outside], k, rng)
    wall = mask & ~keep
    wi, wj = np.nonzero(wall)
    wall[wi, wj] = nearest_distance(photo[wi, wj], bg_pal) < wall_dist
    inside = (d > sure_px / 2) & (d < sure_px / 2 + 45) & ~wall
    sure = cv2.erode(m8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (sure_px, sure_px))).astype(bool)
    sure = (sure & ~cv2.dilate(wall.astype(np.uint8), kernel, iterations=2).astype(bool)) | (keep & mask)
    back = ~cv2.dilate(m8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (outer_px, outer_px))).astype(bool)
    band = mask & ~sure
    if band.sum() < min_area_px or inside.sum() < 50:
        return mask, colours, np.zeros(mask.shape, np.float32), bg_pal
    fg_pal = _palette(photo[inside], k, rng)
    bi, bj = np.nonzero(band)
    c = photo[bi, bj]
    backdrop = np.zeros(mask.shape, bool)  # clearly nearer the backdrop's colours than the person's
    unlike = np.zeros(mask.shape, np.float32)  # how far from every colour of the person's
    unlike[bi, bj] = nearest_distance(c, fg_pal)
    backdrop[bi, bj] = unlike[bi, bj] - nearest_distance(c, bg_pal) > palette_margin
    if not _blobs(cv2.morphologyEx(backdrop.astype(np.uint8), cv2.MORPH_OPEN, kernel), min_area_px).any():
        return mask, colours, unlike, bg_pal  # what leaves is a blob of these, opened: none, nothing leaves (no matte to pay)
    from pymatting import estimate_foreground_ml  # MIT; imported here: numba compiles on import

    trimap = np.full(mask.shape, 0.5)
    trimap[sure] = 1.0
    trimap[back] = 0.0
    image = photo.astype(np.float64)
    alpha = _alpha_cf(image, trimap)
    drop = _blobs(cv2.morphologyEx((backdrop & (alpha < alpha_cut)).astype(np.uint8), cv2.MORPH_OPEN, kernel),
                  min_area_px)
    if not drop.any():
        return mask, colours, unlike, bg_pal
    near = cv2.dilate(drop.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * tint_reach_px + 1, 2 * tint_reach_px + 1))).astype(bool)
    kept = (mask & ~drop).astype(np.uint8)
    smooth = cv2.morphologyEx(kept, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (smooth_px, smooth_px)))
    smooth = cv2.GaussianBlur(smooth.astype(np.float32), (0, 0), smooth_px / 4.0) > 0.5
    out = np.where(near & ~keep, smooth & mask, kept.astype(bool))
    # the strands the wall shows through (near what left: where the wall is surely seen), and the gaps a caller
    # may refill (mesh_fit's clean_mask)
    fore = estimate_foreground_ml(image, alpha)
    tinted = backdrop & (alpha < 1.0) & (alpha > min_alpha) & near & out
    colours[tinted] = np.clip(fore[tinted], 0.0, 1.0)
    # the wall no strand covers, kept (the smoothing's refill, alpha ~0 pixels): its neighbours' colours
    fill = near & out & (drop | (backdrop & (alpha <= min_alpha)))
    if fill.any():
        unknown = (fill | ~out).astype(np.uint8)
        c8 = np.round(np.clip(colours, 0.0, 1.0) * 255).astype(np.uint8)  # 8 bit: float TELEA overshoots
        colours[fill] = cv2.inpaint(c8, unknown, 5, cv2.INPAINT_TELEA)[fill].astype(np.float32) / 255
    return out, colours, unlike, bg_pal


def _blobs(m: np.ndarray, min_area_px: int) -> np.ndarray:
    """(S, S) bool: the 8-connected components of the (S, S) uint8 mask m of min_area_px pixels or more."""
    _, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    return np.isin(lab, 1 + np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= min_area_px))


def clean_mask(mask: np.ndarray, seed: np.ndarray, max_hole: float = 0.02) -> np.ndarray:
    """Keep the components of mask that touch seed, and fill their holes smaller than max_hole of the image."""
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    keep = np.unique(lab[seed & mask])
    keep = keep[keep > 0]
    out = np.isin(lab, keep)
    n, lab, stats, _ = cv2.connectedComponentsWithStats((~out).astype(np.uint8), connectivity=4)
    s = mask.shape[0]
    for k in range(1, n):
        x, y, w, h, area = stats[k]
        if x > 0 and y > 0 and x + w < s and y + h < s and area < max_hole * s * s:
            out[lab == k] = True
    return out


def drop_thin_parts(mask: np.ndarray, width_px: int, keep: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """[S, S] bool mask without its parts narrower than width_px (a morphological opening with a disc of that
    diameter), `keep` [S, S] bool pixels always kept, then only the components touching seed (clean_mask).

    Why: the silhouette matte (mesh_fit edge_matte) gives the outermost edge_band_px of the silhouette a
    partial opacity and keeps the closed body (completion.back_and_wall) out of them; a strand of the mask
    no wider than those two bands (a hair arc the background peeling left round a notch) is then a floating,
    half-transparent sheet, and in a turned or pitched view it closes over the notch behind it as a hole
    (issue 11: obama_official pitched back, a 39 px hole at the crown)."""
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN,
                              cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width_px, width_px))).astype(bool)
    return clean_mask((opened | keep) & mask, seed)


def face_region(landmarks_px: np.ndarray, size: int, grow: float = 0.35) -> np.ndarray:
    """[S, S] bool: another person's face and the hair round it (landmark hull grown by `grow` of its size)."""
    p = landmarks_px[:, :2].astype(np.float64)
    c = p.mean(0)
    hull = cv2.convexHull(((p - c) * (1 + grow) + c).astype(np.float32)).astype(np.int32)
    out = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(out, hull, 1)
    return out.astype(bool)


# Where a face's ears lie beside its oval (ear_zones): out to this x the oval's width at the ears (CHEEK_R to CHEEK_L)
# from either side, from this x that width above the brows down to the nose base's row. two_children's boy: his left
# ear's outer rim 0.18 x his oval's 160 px beyond his cheek's landmark, its top 0.1 x above his brows, its lobe at his
# nose base's row (crop 512).
EAR_REACH = 0.2
EAR_ABOVE_BROWS = 0.1
# An ear's outer rim reaches further out on some faces: obama_speech's 0.24 x his oval's 178 px beyond his cheek's
# landmark at its widest (crop 512, rows 200-240). Where a band too narrow leaves the rim out and only the whole ear
# will do (completion.mirrored_back: the rim's fin alone, mirrored, still drew the far ear 5 cm too deep), ear_zones
# reaches this far.
EAR_RIM_REACH = 0.35


def ear_zones(landmarks_px: np.ndarray, size: int, reach: float = EAR_REACH) -> np.ndarray:
    """[S, S] bool: where the ears of the face with landmarks_px [478, >=2] (crop pixels) lie in its photo, a band
    beside each side of its oval (landmarks.CHEEK_R / CHEEK_L) `reach` x the oval's width there wide, from
    EAR_ABOVE_BROWS x that width above the brows to the nose base's row, in the face's own axes (its roll)."""
    p = landmarks_px[:, :2].astype(np.float64)
    r, l = p[lmk.CHEEK_R], p[lmk.CHEEK_L]
    width = float(np.linalg.norm(l - r))
    if width < 1.0:
        return np.zeros((size, size), bool)
    across = (l - r) / width  # towards the face's left (image right for a face looking at the camera)
    down = np.array([-across[1], across[0]])  # image y down for an upright face
    brows = p[list(lmk.BROW_R + lmk.BROW_L)]
    top = float(np.min((brows - r) @ down)) - EAR_ABOVE_BROWS * width
    bottom = float((p[lmk.NOSE_BASE] - r) @ down)
    out = np.zeros((size, size), np.uint8)
    for side, base in ((-1.0, r), (1.0, l)):
        out_dir = side * across
        corners = [base + a * out_dir + (d - float((base - r) @ down)) * down
                   for a, d in ((0.0, top), (reach * width, top), (reach * width, bottom), (0.0, bottom))]
        cv2.fillConvexPoly(out, np.round(np.array(corners)).astype(np.int32), 1)
    return out.astype(bool)


def nearer_other_faces(landmarks_px: np.ndarray, others: list, size: int, below_row: float = np.inf,
                       grow: float = 0.35) -> np.ndarray:
    """[S, S] bool: other people's face regions (face_region, grown by `grow`), and the pixels above below_row (crop
    pixel rows; this person's chin) nearer one of them than this face's region (Euclidean pixel distance, 0 inside;
    below it the body goes on: the torso is not split), but for this face's ears (`ear_zones`) outside the other face
    itself (its landmarks' hull). landmarks_px [478, >=2] this face's landmarks (fewer points, no face mesh: no ear
    zones), others a list of such arrays, crop pixels. A pixel in both regions counts as the other's (as face_region alone took it). The segmentation keeps
    whatever touches this person: two_children's second child's hair between her face and the boy's ear stood beside
    his turned head as a dark tuft (issue 11 item 2; her pink hair clip above it is nearer him and stays in the mask:
    matte_hair takes it out). Her region, grown, took 87 % of the boy's left ear's zone, and his turned head showed
    the rest as a detached, pointed sliver (turn60)."""
    own = face_region(landmarks_px, size, grow)
    d_own = cv2.distanceTransform((~own).astype(np.uint8), cv2.DIST_L2, 5)
    head = np.arange(size)[:, None] + 0.5 < below_row
    ears = ear_zones(landmarks_px, size) if len(landmarks_px) > max(lmk.CHEEK_L, lmk.NOSE_BASE) else None
    out = np.zeros((size, size), bool)
    for other in others:
        region = face_region(other, size, grow)
        theirs = region | head & (cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, 5) < d_own)
        if ears is not None:
            theirs &= ~ears | face_region(other, size, 0.0)
        out |= theirs
    return out


def open_border(person: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Person pixels at the crop border or next to a pixel outside the photo: a cut, not a silhouette."""
    border = np.zeros_like(person)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    near_cut = cv2.dilate(cut.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return person & (border | near_cut)


def rows_to_cut_below(cut: np.ndarray) -> np.ndarray:
    """[S, S] int: for each crop pixel, how many rows further down its column the photo's cut begins (the first
    pixel outside the photo, `cut` [S, S] bool; the crop's bottom border counts as one: S - i there). 0 on the cut."""
    s = cut.shape[0]
    rows = np.arange(s)[:, None]
    first = np.where(cut, rows, s)  # a cut pixel's own row, else "below the crop"
    first = np.minimum.accumulate(first[::-1], axis=0)[::-1]  # the nearest cut row at or below each pixel
    return (first - rows).astype(np.int64)
