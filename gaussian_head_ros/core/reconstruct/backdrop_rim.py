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

from gaussian_head_ros.core.deform import smoothstep
from gaussian_head_ros.core.reconstruct.surfaces import edge_palettes, nearest_distance

CHROMA_FLOOR = 0.3  # chromaticity rgb / max(r + g + b, this): dark pixels' (hair's, shadows') noise not magnified


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
    s = person.shape
    if photo.shape[:2] != s or open_edge.shape != s or (valid is not None and valid.shape != s):
        raise ValueError(f"backdrop_share: photo {photo.shape[:2]}, person {s}, open_edge {open_edge.shape} and valid "
                         f"{None if valid is None else valid.shape} must be the same size")
    w = np.zeros(s, np.float32)
    d_in = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform((~person).astype(np.uint8), cv2.DIST_L2, 3)
    near_cut = cv2.dilate(open_edge.astype(np.uint8), np.ones((3, 3), np.uint8),
                          iterations=int(np.ceil(band_px)) + 1).astype(bool)
    rim = person & (d_in < band_px) & ~near_cut
    inner = person & (d_in >= band_px)
    backdrop = ~person & (d_out > gap_px) & (np.ones(s, bool) if valid is None else valid)
    if not rim.any() or inner.sum() < 20 or not backdrop.any():
        return w, np.asarray(photo, np.float32).copy()
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
    best = np.full(len(pi), np.inf)
    part = np.zeros(len(pi))
    near_own = np.full(len(pi), np.inf)  # chromaticity distance to the nearest inner pixel within reach
    chroma = photo / np.maximum(photo.sum(-1, keepdims=True), CHROMA_FLOOR)
    for dy in range(-reach_px, reach_px + 1, step_px):
        for dx in range(-reach_px, reach_px + 1, step_px):
            if dy * dy + dx * dx > reach_px * reach_px:
                continue
            qi, qj = pi + dy, pj + dx
            ok = (qi >= 0) & (qi < s[0]) & (qj >= 0) & (qj < s[1])
            mine = ok.copy()
            mine[ok] = inner[qi[ok], qj[ok]]
            if mine.any():
                k = np.flatnonzero(mine)
                near_own[k] = np.minimum(near_own[k],
                                         np.linalg.norm(chroma[pi[k], pj[k]] - chroma[qi[k], qj[k]], axis=-1))
            ok[ok] = backdrop[qi[ok], qj[ok]]
            if not ok.any():
                continue
            k = np.flatnonzero(ok)
            B = photo[qi[k], qj[k]].astype(np.float64)
            d = F[k] - B
            dd = np.sum(d * d, -1)
            a = np.clip(np.sum((I[k] - B) * d, -1) / np.maximum(dd, 1e-12), 0.0, 1.0)
            a = np.where(dd > min_contrast ** 2, a, 1.0)
            resid = np.sum((I[k] - B - a[:, None] * d) ** 2, -1)
            a = np.where(resid <= max_residual ** 2, a, 1.0)
            better = resid < best[k]
            k = k[better]
            best[k] = resid[better]
            b = 1.0 - a[better]
            part[k] = smoothstep(share[0], share[1], b)
    # ... and a colour the person has nowhere near (its chromaticity further than `unlike` from every inner pixel's
    # within reach) that the backdrop has along the outline (nearer its palette than ratio x that): all of it, and
    # the pixels between it and the outline. The flag's red stripe inside obama_speech's mask shows nowhere outside
    # within 80 px (a dark blurred figure stands there), and his open mouth's red, 50 px off, kept it in
    # surfaces.peel_unlike_rim's person palette. In rgb his jaw's shadow (0.51 0.27 0.21) lies 0.15 from the
    # stripe's red (0.61 0.16 0.20); in chromaticity 0.16, his lit skin 0.21, his lips 0.08
    found = edge_palettes(photo, person, deep_px, palette_k)
    if found is not None:
        pal = found[2] / np.maximum(found[2].sum(-1, keepdims=True), CHROMA_FLOOR)
        alien = (near_own > unlike) & (nearest_distance(chroma[pi, pj], pal) < ratio * near_own)
        depth = np.zeros(s, np.float32)
        depth[pi[alien], pj[alien]] = d_in[pi[alien], pj[alien]]
        depth = cv2.dilate(depth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        part = np.where((depth[pi, pj] > 0) & (d_in[pi, pj] <= depth[pi, pj]), 1.0, part)
    w[pi, pj] = part
    # and the neighbours of the backdrop's own pixels (w 1) on the rim alike (grow_px): told pixel by pixel, the
    # stripe's edge rows stayed pink between rows that moved, a red thread down the turned jaw
    grown = cv2.dilate((w >= 1.0).astype(np.uint8),
                       cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1, 2 * grow_px + 1)))
    w = np.where(rim, np.maximum(w, grown), 0.0).astype(np.float32)
    return w, own.astype(np.float32)
