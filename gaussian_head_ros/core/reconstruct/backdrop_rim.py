"""The backdrop's colour kept inside the head's outline (mesh_fit step 4, before the completion).

The person mask's outline takes in a few pixels of what stands behind the person: the pixels its edge mixes with the
backdrop, and where the segmentation overshoots, the backdrop itself (obama_speech's flag: 6-7 px of its red stripe
inside the mask beside his right jaw, rgb 0.61 0.18 0.20 against his skin's 0.66 0.41 0.29 8 px further in).
The photo's own view needs those colours (its camera sees them there), but a turned view sees the outline's
Gaussians squarely, and the completion behind it (the hidden side, the skin under the chin) takes its colours from
the same rim: a pink-red streak along his turned jaw (lead, session 56).

`backdrop_share` finds, for each pixel within band_px of the outline, the backdrop colour B from the photo around it
(outside the person, within reach_px) that best explains it as a mix a F + (1 - a) B with the person's own colour F
there (the photo deeper inside, at the nearest such pixel), and returns how far to move the pixel to F, by the
backdrop's share 1 - a (all of the way from share[1] on), and F. Not F plus the pixel's residual off the line F - B:
where no backdrop pixel within reach is the colour the mask took in, that residual turned the flag's pure red cyan.
It reads the photo as the camera saw it: matte_hair's foreground colours along the outline are neither the backdrop
nor a mix with it (obama_speech's red stripe became a pale pink, rgb 0.73 0.53 0.47). mesh_fit moves the colours a
turned view sees that way (MeshFitConfig.backdrop_rim_px)."""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

from gaussian_head_ros.core.deform import smoothstep
from gaussian_head_ros.core.jit import tolerate_cache_write_errors
from gaussian_head_ros.core.reconstruct.surfaces import edge_palettes, nearest_distance, toward_outline

tolerate_cache_write_errors()  # a full disk must not stop a kernel that compiled (core/jit.py)

CHROMA_FLOOR = 0.3  # chromaticity rgb / max(r + g + b, this): dark pixels' (hair's, shadows') noise not magnified
PEEL_FLOOR = 0.6  # backdrop_kept tells the backdrop itself only on pixels this bright (r + g + b): below it the
# chromaticity of dark hair at its outline strays from the hair's 8 px in by as much as a backdrop's (lp_s9_monalisa's
# hair against the landscape, r + g + b 0.29-0.64: peeled, a notched outline), the flag's red beside obama_speech's jaw
# is 0.91-1.0


@njit(cache=True)
def _best_mix(pi, pj, I, F, photo, chroma, inner, backdrop, offsets, min_contrast2, max_residual2):
    """backdrop_share's search over the offsets [O, 2] (dy, dx; in this order) for the rim pixels (pi, pj) [N]:
    -> (best [N] the least residual of a mix a F + (1 - a) B with a backdrop pixel B, inf where none; share [N] that
    mix's 1 - a; near_own [N] the chromaticity distance to the nearest inner pixel among the offsets, inf where none).
    I, F [N, 3] float64 the pixel and its own colour; photo [S, S, 3] float32; chroma [S, S, 3] float32; inner,
    backdrop [S, S] bool. The arithmetic is numpy's in the loop this replaced (float64 mixes, float32 chromaticity
    distances, sums in channel order), so the result is the same to the bit; one pass per pixel (2.5 s -> 0.29 s a
    photo at load 12 on the 2-core machine)."""
    n = pi.shape[0]
    h, w = inner.shape
    best = np.full(n, np.inf)
    share = np.zeros(n)
    near_own = np.full(n, np.inf)
    for k in range(n):
        i0, j0 = pi[k], pj[k]
        c0, c1, c2 = chroma[i0, j0, 0], chroma[i0, j0, 1], chroma[i0, j0, 2]
        for o in range(offsets.shape[0]):
            qi, qj = i0 + offsets[o, 0], j0 + offsets[o, 1]
            if qi < 0 or qi >= h or qj < 0 or qj >= w:
                continue
            if inner[qi, qj]:
                e0, e1, e2 = c0 - chroma[qi, qj, 0], c1 - chroma[qi, qj, 1], c2 - chroma[qi, qj, 2]
                dist = np.sqrt(e0 * e0 + e1 * e1 + e2 * e2)
                if dist < near_own[k]:
                    near_own[k] = dist
            if not backdrop[qi, qj]:
                continue
            b0, b1, b2 = np.float64(photo[qi, qj, 0]), np.float64(photo[qi, qj, 1]), np.float64(photo[qi, qj, 2])
            d0, d1, d2 = F[k, 0] - b0, F[k, 1] - b1, F[k, 2] - b2
            dd = d0 * d0 + d1 * d1 + d2 * d2
            a = ((I[k, 0] - b0) * d0 + (I[k, 1] - b1) * d1 + (I[k, 2] - b2) * d2) / max(dd, 1e-12)
            a = min(max(a, 0.0), 1.0)
            if not dd > min_contrast2:
                a = 1.0
            r0, r1, r2 = I[k, 0] - b0 - a * d0, I[k, 1] - b1 - a * d1, I[k, 2] - b2 - a * d2
            resid = r0 * r0 + r1 * r1 + r2 * r2
            if not resid <= max_residual2:
                a = 1.0
            if resid < best[k]:
                best[k] = resid
                share[k] = 1.0 - a
    return best, share, near_own


def warm_up() -> None:
    """Compile (or load from numba's cache) the search kernel now, not on the first photo (MeshFitConfig.warm_up)."""
    z = np.zeros((1, 2), np.int64)
    _best_mix(z[0], z[0], np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 2, 3), np.float32),
              np.zeros((2, 2, 3), np.float32), np.ones((2, 2), bool), np.ones((2, 2), bool), z, 0.01, 0.0016)


def backdrop_share(photo: np.ndarray, person: np.ndarray, open_edge: np.ndarray, valid: np.ndarray | None = None,
                   band_px: float = 8.0, reach_px: int = 40, step_px: int = 3, gap_px: float = 2.0,
                   min_contrast: float = 0.1, share: tuple[float, float] = (0.1, 0.3),
                   max_residual: float = 0.04, blur_px: float = 2.0, unlike: float = 0.06, ratio: float = 0.7,
                   deep_px: int = 25, palette_k: int = 8, grow_px: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(w [S, S] float32 0..1, own [S, S, 3] float32 rgb): how far each pixel of photo [S, S, 3] (rgb 0..1, as the
    camera saw it) within band_px of the outline of person [S, S] bool (not along open_edge [S, S] bool, a cut: the
    crop's or the photo's border, where the body goes on) moves to `own`, the person's own colour F there (w 0
    elsewhere): a colour c of that pixel becomes c + w (own - c).

    F: the photo over the person band_px and more inside, blurred within it by blur_px (sigma), at the nearest such
    pixel. B: the photo at pixels outside the person (and inside `valid` [S, S] bool, None: all), more than gap_px
    out (the edge's own mix), within reach_px of the pixel (every step_px), the one that best explains it as a F +
    (1 - a) B (least residual); F and B closer than min_contrast, or that mix further than max_residual (rgb
    distance) from the pixel: none (the skin's own shading at its outline, 0.85 x its colour, fits a mix with a red
    stripe at 0.35 to within 0.083). w goes from 0 to 1 as the backdrop's share 1 - a goes from share[0] to
    share[1]: the person's own shading and texture along F - B is left alone. And w is 1 where the pixel's
    chromaticity (rgb / max(r + g + b, CHROMA_FLOOR)) is further than `unlike` from every pixel's of the person
    band_px and more inside within reach_px, and nearer than ratio x that to the backdrop's palette's along the
    outline (surfaces.peel_unlike_rim's: palette_k colours 2..25 px outside; `deep_px` the depth of the person
    palette it finds too, unused here), and on the pixels between such a pixel and the outline; then w is 1 within
    grow_px of a pixel of w 1 on the rim. Raises ValueError on maps of different sizes."""
    found = _rim_search(photo, person, open_edge, valid, band_px, reach_px, step_px, gap_px, min_contrast,
                        max_residual, blur_px)
    if found is None:
        return np.zeros(person.shape, np.float32), np.asarray(photo, np.float32).copy()
    rim, d_in, pi, pj, best, b, near_own, own, chroma = found
    part = np.where(np.isfinite(best), smoothstep(share[0], share[1], b), 0.0)
    part = np.where(_alien(photo, person, d_in, pi, pj, chroma, near_own, unlike, ratio, deep_px, palette_k), 1.0, part)
    return _grown(rim, pi, pj, part, grow_px), own.astype(np.float32)


def backdrop_kept(photo: np.ndarray, person: np.ndarray, open_edge: np.ndarray, valid: np.ndarray | None = None,
                  band_px: float = 8.0, reach_px: int = 40, unlike: float = 0.07, ratio: float = 0.7,
                  grow_px: int = 2, max_residual: float = 0.04, most_share: float = 0.7,
                  matte_px: float = 1.5, least_px: int = 4,
                  not_own: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(kept [S, S] bool, own [S, S, 3] float32 rgb the person's own colour F as backdrop_share's): the pixels of
    person [S, S] bool within band_px of its outline (not along open_edge [S, S] bool) that are the backdrop itself,
    not a mix with it: backdrop_share's w 1 of a colour the person has nowhere within reach_px that the backdrop has
    along the outline (`unlike`, `ratio`), the pixels between such a pixel and the outline, and their neighbours on
    the rim within grow_px (the same rule and arguments as backdrop_share's; the mixes of the outline's outermost
    pixels, which backdrop_share moves by their share, are not in it). photo [S, S, 3] rgb 0..1 as the camera saw it,
    valid [S, S] bool where the photo is (None: all); not_own [S, S] bool (None: none) pixels of the person whose
    colours do not count as the person's near the outline (mesh_fit: the lips and the open mouth, whose red kept
    obama_speech's flag stripe above his jaw's corner untold). Raises ValueError on maps of different sizes. mesh_fit
    gives these `own` (source_view.person_mask): the photo's own view shows them too (rim59).

    A pixel starts such a run only if no mix a F + (1 - a) B with a backdrop pixel within reach fits it (max_residual)
    with a backdrop share under most_share (the outline's own mixes, which the photo's view needs: lp_s9_monalisa's
    hair against the landscape lost a notched 1-4 px of its outline), if it is no darker than PEEL_FLOOR, if it lies
    matte_px or more inside (the mask's distance transform: mesh_fit's edge matte band, MeshFitConfig.edge_band_px +
    0.5, which draws the colour from further in at the coverage that gives the photo back, never the backdrop's), and
    if at least least_px such pixels make one piece (the backdrop a segmentation takes in is a strip: obama_speech's
    red stripe 38 starting pixels in one piece, 2.3-5.7 px deep). Without the last two, lp_d0's frame 0 (green
    screen) peeled 617 px of its hair's and neck's outline from 91 starting pixels, all but 5 in the matte band and
    those 5 alone, each grown into a notch: over its person-free plate 30.91 -> 28.94 dB (the matte band rule alone
    28.94 -> 30.46, 151 px; the piece rule alone 326 px), and of the nine portraits five changed (two_children 63 px,
    lp_s9_monalisa 44, obama_official 58, trump_official 56 peeled: their outlines' single pixels); with both only
    obama_speech's stripe is told (144 px; 213 with his mouth in not_own) (rim60). `unlike` 0.07, not
    backdrop_share's 0.06: lp_d18's first frame's jaw in shade under the ear lies 0.061-0.075 from its skin further in
    (at 0.06 123 px of it peeled, a notch, and self frame 0 40.034 -> 39.913 dB; at 0.07 39 px, 39.986; rim59, before
    the two rules); the flag's red beside obama_speech's jaw 0.083-0.121."""
    found = _rim_search(photo, person, open_edge, valid, band_px, reach_px, not_own=not_own)
    if found is None:
        return np.zeros(person.shape, bool), np.asarray(photo, np.float32).copy()
    rim, d_in, pi, pj, best, b, near_own, own, chroma = found
    mixed = (best <= max_residual ** 2) & (b < most_share)
    dark = photo[pi, pj].sum(-1) < PEEL_FLOOR
    in_matte = d_in[pi, pj] < matte_px
    alien = _alien(photo, person, d_in, pi, pj, chroma, near_own, unlike, ratio, told=~mixed & ~dark & ~in_matte,
                   least_px=least_px)
    return _grown(rim, pi, pj, alien.astype(np.float32), grow_px) >= 1.0, own.astype(np.float32)


def _rim_search(photo, person, open_edge, valid, band_px, reach_px, step_px=3, gap_px=2.0, min_contrast=0.1,
                max_residual=0.04, blur_px=2.0, not_own=None):
    """backdrop_share's search (its arguments; not_own as backdrop_kept's: out of near_own's search) -> None where
    there is no rim, no inner person or no backdrop, else
    (rim [S, S] bool, d_in [S, S] float32 the person's distance transform, pi, pj [N] the rim's pixels, best [N],
    share [N], near_own [N] as _best_mix's, own [S, S, 3] float32 the person's own colour F, chroma [S, S, 3])."""
    s = person.shape
    if photo.shape[:2] != s or open_edge.shape != s or (valid is not None and valid.shape != s):
        raise ValueError(f"backdrop_share: photo {photo.shape[:2]}, person {s}, open_edge {open_edge.shape} and valid "
                         f"{None if valid is None else valid.shape} must be the same size")
    d_in = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform((~person).astype(np.uint8), cv2.DIST_L2, 3)
    near_cut = cv2.dilate(open_edge.astype(np.uint8), np.ones((3, 3), np.uint8),
                          iterations=int(np.ceil(band_px)) + 1).astype(bool)
    rim = person & (d_in < band_px) & ~near_cut
    inner = person & (d_in >= band_px)
    backdrop = ~person & (d_out > gap_px) & (np.ones(s, bool) if valid is None else valid)
    if not rim.any() or inner.sum() < 20 or not backdrop.any():
        return None
    # the person's colour carried out to the rim: the photo over `inner`, blurred within it (sigma blur_px), at each
    # pixel's nearest inner pixel. A push-pull's coarse levels took in what lies further off: beside obama_speech's
    # jaw the white collar 15 px below made his skin's colour a pale pink (0.70 0.54 0.47), and nothing fitted
    inner_f = inner.astype(np.float32)
    blurred = (cv2.GaussianBlur(photo.astype(np.float32) * inner_f[..., None], (0, 0), blur_px)
               / np.maximum(cv2.GaussianBlur(inner_f, (0, 0), blur_px), 1e-6)[..., None])
    _, label = cv2.distanceTransformWithLabels((~inner).astype(np.uint8), cv2.DIST_L2, 5,
                                               labelType=cv2.DIST_LABEL_PIXEL)
    ii, ij = np.nonzero(inner)  # labels number the inner pixels in raster order from 1
    own = np.where(inner[..., None], blurred, blurred[ii[label - 1], ij[label - 1]])
    pi, pj = np.nonzero(rim)
    I = photo[pi, pj].astype(np.float64)
    F = own[pi, pj].astype(np.float64)
    chroma = (photo / np.maximum(photo.sum(-1, keepdims=True), CHROMA_FLOOR)).astype(np.float32)
    steps = range(-reach_px, reach_px + 1, step_px)
    offsets = np.array([(dy, dx) for dy in steps for dx in steps if dy * dy + dx * dx <= reach_px * reach_px],
                       np.int64).reshape(-1, 2)
    best, b, near_own = _best_mix(pi.astype(np.int64), pj.astype(np.int64), I, F,
                                  np.ascontiguousarray(photo, np.float32), np.ascontiguousarray(chroma),
                                  inner if not_own is None else inner & ~not_own, backdrop, offsets,
                                  float(min_contrast) ** 2, float(max_residual) ** 2)
    return rim, d_in, pi, pj, best, b, near_own, own, chroma


def _alien(photo, person, d_in, pi, pj, chroma, near_own, unlike, ratio, deep_px=25, palette_k=8, told=None,
           least_px=1):
    """[N] bool: the rim pixels (pi, pj) [N] in the backdrop's own colour and those between them and the outline
    (backdrop_share's `unlike` / `ratio` rule; near_own [N] from _best_mix); told [N] bool (None: all) the pixels that
    may start such a run, and of those only the ones in a piece of at least least_px such pixels (8-connected, gaps
    of 1 px closed)."""
    # ... and a colour the person has nowhere near (its chromaticity further than `unlike` from every inner pixel's
    # within reach) that the backdrop has along the outline (nearer its palette than ratio x that): all of it, and
    # the pixels between it and the outline. The flag's red stripe inside obama_speech's mask shows nowhere outside
    # within 80 px (a dark blurred figure stands there), and his open mouth's red, 50 px off, kept it in
    # surfaces.peel_unlike_rim's person palette. In rgb his jaw's shadow (0.51 0.27 0.21) lies 0.15 from the
    # stripe's red (0.61 0.16 0.20); in chromaticity 0.16, his lit skin 0.21, his lips 0.08
    alien = np.zeros(len(pi), bool)
    found = edge_palettes(photo, person, deep_px, palette_k)
    if found is not None:
        pal = found[2] / np.maximum(found[2].sum(-1, keepdims=True), CHROMA_FLOOR)
        alien = (near_own > unlike) & (nearest_distance(chroma[pi, pj], pal) < ratio * near_own)
        alien &= True if told is None else told
        if least_px > 1 and alien.any():
            alien &= _piece_sizes(person.shape, pi, pj, alien) >= least_px
        alien = toward_outline(d_in, pi, pj, alien)
    return alien


def _piece_sizes(shape, pi, pj, sel):
    """[N] int: for each pixel (pi, pj) [N] how many pixels of sel [N] bool lie in its piece of the map of `shape`
    (8-connected after a 3x3 dilation: pixels 1 px apart are one piece); 0 off the pieces."""
    m = np.zeros(shape, np.uint8)
    m[pi[sel], pj[sel]] = 1
    n, label = cv2.connectedComponents(cv2.dilate(m, np.ones((3, 3), np.uint8)), connectivity=8)
    count = np.bincount(label[pi[sel], pj[sel]], minlength=n)
    return count[label[pi, pj]] * (label[pi, pj] > 0)


def _grown(rim, pi, pj, part, grow_px):
    """[S, S] float32: part [N] at the rim's pixels (pi, pj) [N], 0 off the rim, then 1 on the rim within grow_px of
    a pixel of 1 (backdrop_share's last step)."""
    w = np.zeros(rim.shape, np.float32)
    w[pi, pj] = part
    # and the neighbours of the backdrop's own pixels (w 1) on the rim alike (grow_px): told pixel by pixel, the
    # stripe's edge rows stayed pink between rows that moved, a red thread down the turned jaw
    grown = cv2.dilate((w >= 1.0).astype(np.uint8),
                       cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1, 2 * grow_px + 1)))
    w = np.where(rim, np.maximum(w, grown), 0.0).astype(np.float32)
    return w
