"""What the photo does not show (mesh_fit step 4, completion): the hidden back of the head and torso and the wall
along the silhouette (`hidden_gaussians`), and their colours: the head's hair and skin, the silhouette wall's front,
the hidden back and sides with their far part, and beside the jaw and the neck the skin going round
(`hidden_colours`, `neck_colours`), the jaw's skin and its underside in shade. All maps are [S, S, 3] rgb 0..1
over the source camera's crop (S = framing.size) or [S, S] metres; `cfg` is a MeshFitConfig."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from numba import njit

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.colour import LUMA, skin_residual
from gaussian_head_ros.core.deform import smoothstep
from gaussian_head_ros.core.jit import tolerate_cache_write_errors
from gaussian_head_ros.core.reconstruct.completion import (Scene, SideLook, back_and_wall, mirrored_colours,
                                                           rim_colours)
from gaussian_head_ros.core.reconstruct.surfaces import ear_zones

tolerate_cache_write_errors()  # a full disk must not stop a kernel that compiled (core/jit.py)


# The maps' blends are numba kernels, one pass per pixel, in numpy's arithmetic and order (the float32 operands cast
# to float64 as numpy casts them, sums left to right, no fused multiply-add), so the maps are the same to the bit as
# the numpy expressions they replaced, which made a temporary [S, S, 3] float64 array per operation
# (hidden_colours and neck_colours: 0.45 -> 0.23 s a call at load 9 on the 2-core machine, rec59).
@njit(cache=True)
def _mix(w, a, b):
    """[S, S, 3] float64 (1 - w) a + w b: w [S, S] float64, a and b [S, S, 3] (float32 or float64, broadcast views
    allowed)."""
    h, wd, c = a.shape
    out = np.empty((h, wd, c), np.float64)
    for i in range(h):
        for j in range(wd):
            x = w[i, j]
            for k in range(c):
                out[i, j, k] = (1.0 - x) * np.float64(a[i, j, k]) + x * np.float64(b[i, j, k])
    return out


@njit(cache=True)
def _square_distance(a, colour, out):
    """out [S, S] <- the squared rgb distance of a [S, S, 3] to colour [3], channels summed in order, in out's
    precision's arithmetic (a float32 a and colour: float32, as numpy computes it)."""
    h, w, c = a.shape
    for i in range(h):
        for j in range(w):
            e = a[i, j, 0] - colour[0]
            s = e * e
            for k in range(1, c):
                e = a[i, j, k] - colour[k]
                s = s + e * e
            out[i, j] = s
    return out


def _sq_dist(a: np.ndarray, colour) -> np.ndarray:
    """[S, S] np.sum((a - colour) ** 2, axis=-1) of a [S, S, 3] and colour [3], in their numpy result type."""
    colour = np.asarray(colour)
    return _square_distance(a, colour, np.empty(a.shape[:2], np.result_type(a, colour)))


@njit(cache=True)
def _face_side(near, ear, side, face_rim, far):
    """hidden_colours' side where the face is the silhouette: [S, S, 3] float64 (1 - near) side + (near - top) face_rim
    + top far, top = near ear; near [S, S] float32 (1 - near in float32, as numpy), ear [S] float64, side and far
    [S, S, 3] float64, face_rim [S, S, 3] float32."""
    h, w, c = side.shape
    out = np.empty((h, w, c), np.float64)
    for i in range(h):
        for j in range(w):
            n32 = near[i, j]
            rest = np.float64(np.float32(1.0) - n32)
            n = np.float64(n32)
            top = n * ear[i]
            for k in range(c):
                out[i, j, k] = rest * side[i, j, k] + (n - top) * np.float64(face_rim[i, j, k]) + top * far[i, j, k]
    return out


@njit(cache=True)
def _neck_side_far(ks, kc, side, far, near, rim, far_gain, dark):
    """neck_colours' side and far [S, S, 3] float64: (1 - ks - kc) side + ks near + kc rim and (1 - ks - kc) far +
    (ks far_gain) near + (kc dark) rim; ks, kc [S, S] float64, near [S, S, 3] float64, rim [S, S, 3] float32."""
    h, w, c = side.shape
    s_out = np.empty((h, w, c), np.float64)
    f_out = np.empty((h, w, c), np.float64)
    for i in range(h):
        for j in range(w):
            s, t = ks[i, j], kc[i, j]
            keep = 1.0 - s - t
            s_far, t_dark = s * far_gain, t * dark
            for k in range(c):
                r = np.float64(rim[i, j, k])
                s_out[i, j, k] = keep * side[i, j, k] + s * near[i, j, k] + t * r
                f_out[i, j, k] = keep * far[i, j, k] + s_far * near[i, j, k] + t_dark * r
    return s_out, f_out


def _blend(w: np.ndarray, a, b) -> np.ndarray:
    """[S, S, 3] float64 (1 - w[..., None]) * a + w[..., None] * b as numpy computes it: w [S, S] float64, a and b
    [S, S, 3] or [3] (float32 or float64)."""
    shape = w.shape + (3,)
    return _mix(w, np.broadcast_to(a, shape), np.broadcast_to(b, shape))


def warm_up() -> None:
    """Compile (or load from numba's cache) the blend kernels for the types the maps pass, not on the first photo
    (MeshFit.warm_up)."""
    w, one = np.zeros((2, 2)), np.zeros(3, np.float32)
    for a, b in ((one, one), (np.zeros(3), np.zeros(3)), (np.zeros(3), one)):
        _blend(w, a, b)
        _sq_dist(np.zeros((2, 2, 3), a.dtype), b)
    _face_side(np.zeros((2, 2), np.float32), np.zeros(2), np.zeros((2, 2, 3)), np.zeros((2, 2, 3), np.float32),
               np.zeros((2, 2, 3)))
    _neck_side_far(w, w, np.zeros((2, 2, 3)), np.zeros((2, 2, 3)), np.zeros((2, 2, 3)),
                   np.zeros((2, 2, 3), np.float32), 0.5, 0.5)


def hair_and_skin(photo, person, lm, mesh_px, head_mask, rows) -> tuple[np.ndarray, np.ndarray] | None:
    """The head's hair colour (the median of photo [S, S, 3] over the rim above the forehead, 3..20 px inside the
    silhouette `person` [S, S] bool, within head_mask; the skin for a bald head) and the face's skin colour (the
    median over the face mesh 4 px and more inside), [3] each; None where either has 50 pixels or fewer."""
    d_in = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 3)
    top = head_mask & ~mesh_px & (d_in > 3) & (d_in < 20) & (rows < lm[lmk.FOREHEAD, 1])
    skin_px = mesh_px & person & (d_in > 4)
    if top.sum() <= 50 or skin_px.sum() <= 50:
        return None
    return np.median(photo[top], axis=0), np.median(photo[skin_px], axis=0)


def wall_colours(cfg, scene: Scene) -> np.ndarray:
    """[S, S, 3] the rim just inside the silhouette's background-mixed edge (the wall's front, the edge discs)."""
    return rim_colours(scene, np.zeros_like(scene.person), inset_px=int(np.ceil(cfg.edge_band_px)) + 1,
                       band_px=4)


def hidden_colours(cfg, scene: Scene, lm, mesh_px, head_mask, rows, wt, h_back, hair_skin=False):
    """[S, S, 3] colour maps for what the photo does not show: the back (the silhouette rim's colours,
    blurred, turning to the far colour further back), the sides (the rim; the hair where the rim looks like
    the hair rather than the face's skin, and above the forehead; the face rim where the face is the
    silhouette) and the sides' far part (SideLook.far: the hair where the sides have it and behind the ear,
    elsewhere the skin in shadow, MeshFitConfig.side_dark, never lighter than the hair; the rim's own colours
    below the head and beside it below the nose base, MeshFitConfig.shoulder_reach) and [S, S] metres behind the
    front where that far part starts (SideLook.far_from: sooner behind the ear), and [S, S] 0..1 or None the jaw's
    and neck's skin side (`neck_colours`: SideLook.far_to_back and underside there). The silhouette wall's front is
    `wall_colours`' (the photo's rim as its camera sees it, not these). `hair_skin`: the caller's
    `hair_and_skin` of the same arguments (found here when not given). Where
    the face is the silhouette in the ear's rows (above the eyes', fading out by the nose base's), the sides are
    the far colour there (the ear and the hair behind it)."""
    person = scene.person
    # The shoulders beside the head are the body wherever they stand: high shoulders (tpsmm, close to the lens)
    # rise above the chin's row, where `wt` still says "head", and their hidden side took the head's far colour
    # (the dark hair or shaded skin); when the head nods, that side shows along the shoulders' top as a dark
    # line over the shirt. Beside the face oval (|x - its centre| beyond shoulder_reach x its half-width at the
    # ear rows) and below the nose base, the hidden colours are the rim's own, as below the neck.
    cx = 0.5 * (lm[lmk.CHEEK_R, 0] + lm[lmk.CHEEK_L, 0])
    hw = max(0.5 * abs(lm[lmk.CHEEK_L, 0] - lm[lmk.CHEEK_R, 0]), 1.0)
    lo, hi = cfg.shoulder_reach
    beside = smoothstep(lo, hi, np.abs(np.arange(person.shape[1]) - cx) / hw)[None, :]
    wt = np.maximum(wt, beside * smoothstep(lm[lmk.NOSE_BASE, 1], lm[lmk.MOUTH_CORNER_R, 1], rows))
    exclude = cv2.dilate(mesh_px.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    below_chin = np.broadcast_to(rows > lm[lmk.CHIN, 1], person.shape)
    head_rim = rim_colours(scene, exclude | below_chin, inset_px=4)  # the head's back from the head's rim only
    rim = _blend(wt, head_rim, rim_colours(scene, exclude, inset_px=4))
    back = cv2.GaussianBlur(rim, (0, 0), cfg.back_blur_px)  # smooth: no streaks
    side = back
    d_in = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 3)
    far = side.copy()  # the side behind the ear: hair where the head has hair, the neck below the jaw
    far_from = np.full(person.shape, cfg.side_far_from_m, np.float32)
    if hair_skin is False:
        hair_skin = hair_and_skin(scene.photo, scene.person, lm, mesh_px, head_mask, rows)
    ear = np.zeros((person.shape[0], 1))  # [S, 1] the ear's rows, 0..1 (set with the hair's colours below)
    if hair_skin is not None:
        hair, skin = hair_skin
        # Hair where the rim beside it looks like the hair rather than the face's skin (the ear, the jaw and
        # the neck of a short-haired head are skin), always above the forehead; below, the side turns from
        # the light: the skin darkened by side_dark. A side in the hair's colour down to the collar stood
        # as a flat pale wall behind trump_official's far cheek turned 35 deg (issue 11).
        d_hair, d_skin = _sq_dist(back, hair), _sq_dist(back, skin)
        like = smoothstep(0.3, 0.7, d_skin / (d_skin + d_hair + 1e-6))
        above = 1 - smoothstep(lm[lmk.FOREHEAD, 1], lm[list(lmk.BROW_R + lmk.BROW_L), 1].mean(), rows)
        w_hair = cv2.GaussianBlur(np.maximum(like, above).astype(np.float32), (0, 0), 2 * cfg.back_blur_px) * (1 - wt)
        w_rows = 1 - smoothstep(lm[lmk.MOUTH_CORNER_R, 1], lm[lmk.CHIN, 1], rows)  # the head above the mouth
        w_back = smoothstep(0.0, 0.3, h_back / cfg.back_radius_m) * w_rows
        shadow = np.minimum((1 - cfg.side_dark) * skin, hair)  # never lighter than dark hair either
        # Behind the ear (above the eyes' row, fading out by the nose base's) a head with hair has hair, whatever
        # the rim beside it shows: a short-haired head's rim there is the ear, and obama_official's head behind
        # it was tan skin in shadow from 2 cm back (the side band before it the ear's own skin). There the far
        # side is the hair, and it starts at ear_far_from x side_far_from_m (bald: the "hair" is the skin).
        y_eyes = lm[list(lmk.OUTER_EYE), 1].mean()
        ear = 1 - smoothstep(y_eyes, lm[lmk.NOSE_BASE, 1], rows)
        w_far = cv2.GaussianBlur(np.maximum(like, np.maximum(above, ear)).astype(np.float32), (0, 0),
                                 2 * cfg.back_blur_px) * (1 - wt)
        far_from = cfg.side_far_from_m * (1 - (1 - cfg.ear_far_from) * np.clip(w_far - w_hair, 0, 1))
        hidden = _blend(w_far, shadow, hair)
        far = _blend(wt, hidden, side)
        back = _blend(w_back, back, far)
        side = _blend(w_hair, side, hair)
    # Where the face itself is the silhouette (a cheek against the background), the side behind it is the
    # cheek going on round to the ear: the face rim's own colours, not the hair's. Seen through the cheek's
    # half-transparent matte edge in a turned view, the hair colour there read as a dark jagged seam with
    # flecks (business_person turned 25 deg). In the ear's rows (above the eyes', fading out by the nose base's) it
    # is the far colour (the ear and the hair behind it, the ear rule above): the face rim there, skin fading to
    # her hair within ear_far_from x side_far_from_m, stood as a pale patch under business_person's hair turned
    # 20-35 deg (not the white backdrop's light: her far cheek's rim is as light 4 px inside as 20 px inside).
    face_edge = mesh_px & person & (d_in < 2 * (cfg.edge_band_px + 1))
    if face_edge.any():
        d_face = cv2.distanceTransform((~face_edge).astype(np.uint8), cv2.DIST_L2, 3)
        near = np.exp(-((d_face / (4 * (cfg.edge_band_px + 1))) ** 2))
        face_rim = cv2.GaussianBlur(rim_colours(scene, ~mesh_px, inset_px=4), (0, 0), cfg.back_blur_px)
        side = _face_side(near, ear[:, 0], side, face_rim, far)  # near's share the face rim's, ear's of it far
    skin_side = None
    if hair_skin is not None and cfg.neck_skin_residual is not None:
        side, far, far_from, back, skin_side = neck_colours(cfg, scene, lm, mesh_px, rows, hair_skin, side, far,
                                                            far_from, back)
    return back.astype(np.float32), side.astype(np.float32), far.astype(np.float32), far_from, skin_side


def jaw_in_shade(cfg, jaw_skin: np.ndarray) -> np.ndarray:
    """[3] rgb: the jaw's underside, the jaw's skin (`jaw_skin_colour`, [3]) darkened by MeshFitConfig.side_shade
    (0.7 x it): the jaw floor (mesh_fit, seen in an open mouth) and the head's back grid under the chin. It was the
    darkest the neck's hidden side got at its back until turn55 (session 55) darkened that side further, to
    1 - neck_far_dark (0.5 x) at its columns' backs; on the skin side the back under the chin has taken that
    column-end colour since neck56 (SideLook.back_end), so the floor is now lighter than the side's back (no step
    seen between them in open-mouth views, neck56)."""
    return (1 - cfg.side_shade) * np.asarray(jaw_skin, np.float64)


def jaw_skin_colour(scene: Scene, lm, mesh_px, rows, face_skin) -> np.ndarray:
    """[3] float64 rgb: the jaw's skin, the median of the photo's face pixels below the lower lip, 4 px and more
    inside the silhouette; face_skin [3] (the face's skin) where 50 or fewer."""
    d_in = cv2.distanceTransform(scene.person.astype(np.uint8), cv2.DIST_L2, 3)
    jaw = mesh_px & scene.person & (d_in > 4) & (rows > lm[lmk.BELOW_LOWER_LIP, 1])
    return np.asarray(np.median(scene.photo[jaw], axis=0) if jaw.sum() > 50 else face_skin, np.float64)


def neck_colours(cfg, scene: Scene, lm, mesh_px, rows, hair_skin, side, far, far_from, back):
    """hidden_colours' side, far and back maps [S, S, 3] and far_from [S, S] (metres) beside the jaw and the neck, and
    [S, S] float32 0..1 that skin side (0 elsewhere; hidden_gaussians' SideLook.far_to_back and underside there): from
    the eyes' row (none) to the nose base's (full: where the ear's rows end, `hidden_colours`) and below, within
    shoulder_reach's first x the face oval's half-width of its centre. Where the silhouette's rim there (inset 4 px)
    is skin, the hidden side is the jaw and neck going round: the jaw's skin colour (the photo's face pixels below
    the lower lip, 4 px and more inside; the face's skin where 50 or fewer) at the rim's brightness (no lighter than
    that skin, no darker than 1 - side_dark x it), SideLook.shade darkening it towards the back, and from neck_far_from_m
    behind the front the far side 1 - neck_far_dark x it (going round away from the light: the back half, all a turned
    view sees beyond the jaw, was one flat level, business_person's pale slab at sadtalker frame 37, slab35), reached
    at the back of each wall column (MeshFitConfig.neck_far_to_back; turn55: ending 2 cm after neck_far_from_m, the
    side's outer half was one flat level again past 5 cm, the strip a 25-40 deg turn sees beside her jaw and neck).
    Until neck34 (session 34) the zone began at the nose base, and the far side was 1 - side_dark x the skin: behind
    business_person's far jaw the hair rule's dark grey from 2 cm back, beside her neck the skin at half its light
    and darkened again towards the back (0.33 x the face's luminance), a grey band from the ear to the collar
    turned 25 deg (1563 px darker than 0.45 x her skin beside the jaw and neck; 2094 chin up 20 deg). Where it is
    not skin, below the chin (ramping in over the mouth-to-chin height), the
    rim's own colours (clothing, long hair), 1 - side_dark x them behind; above the chin the head's rule stays (the
    hair, its shadow). The rim is skin by how well the jaw skin, scaled by 1 - side_dark..1, fits it (squared rgb
    residual, MeshFitConfig.neck_skin_residual) and not nearer the hair's colour.

    Before, the side below the jaw took the head's rim carried down from above (astronaut_eileen_collins' khaki
    hair down to her suit), the cheek's background-lit rim and the white collar blurred into it, and behind it the
    skin in shadow never lighter than the hair (business_person turned 20-35 deg: a near-black slab beside her
    neck down to the collar with a pale smear at the jaw). The back grid's colours stay: the photo's own view sees
    them through the photo layer's gaps (the jaw skin in shade there took the self pairs' frame-0 PSNR down,
    lp_d18 39.521 -> 39.483 dB), a turned one hardly (the wall's columns stand in front), except under the chin:
    within the face oval (shoulder_reach's first x its half-width) from the eyes' row (none) to the nose base's (full)
    and down to the chin's, fading out below it over the mouth-to-chin height, the back is the jaw's skin in shadow
    (`jaw_in_shade`): what a raised chin shows of its underside is that back seen from below (from the mouth
    corners' row at 7 deg, from the nose base's at 25). Before, the head's back grid behind the chin kept the rim's
    colours blurred (the white collar, the dark suit): obama_speech driven by sadtalker (chin up ~7 deg, frames
    45-58) showed a grey patch with white squiggles and a grid of dots between the chin and the collar. That back,
    as the jaw floor, is the jaw's skin as dark as the neck's side gets (`jaw_in_shade`). On the skin side itself
    back_and_wall's back grid then takes the colour the side's columns end in (SideLook.back_end), and where the
    side's outline faces down (the jaw's underside) it turns to its far colour from the front (SideLook.underside,
    MeshFitConfig.neck_underside; neck56)."""
    person = scene.person
    hair = hair_skin[0]
    skin = jaw_skin_colour(scene, lm, mesh_px, rows, hair_skin[1])
    rim = rim_colours(scene, np.zeros_like(person), inset_px=4)
    residual = skin_residual(rim, skin, 1 - cfg.side_dark)
    lo, hi = cfg.neck_skin_residual
    is_skin = (1 - smoothstep(lo, hi, residual)) * (_sq_dist(rim, hair) > residual)  # hair of the
    # skin's hue stays hair; told pixel by pixel, then blurred as the colours are (the hair's blurred into the
    # jaw's rim made astronaut_eileen_collins' jaw "not skin")
    is_skin = cv2.GaussianBlur(is_skin.astype(np.float32), (0, 0), cfg.back_blur_px)
    rim = cv2.GaussianBlur(rim, (0, 0), cfg.back_blur_px)
    lum_s = max(float(skin @ LUMA), 1e-3)
    near = np.clip(rim @ LUMA / lum_s, 1 - cfg.side_dark, 1.0)[..., None] * skin
    cx = 0.5 * (lm[lmk.CHEEK_R, 0] + lm[lmk.CHEEK_L, 0])
    hw = max(0.5 * abs(lm[lmk.CHEEK_L, 0] - lm[lmk.CHEEK_R, 0]), 1.0)
    beside = smoothstep(cfg.shoulder_reach[0], cfg.shoulder_reach[1],
                        np.abs(np.arange(person.shape[1]) + 0.5 - cx) / hw)[None, :]
    y_mouth, y_eyes = lm[lmk.MOUTH_CORNER_R, 1], lm[list(lmk.OUTER_EYE), 1].mean()
    zone = smoothstep(y_eyes, lm[lmk.NOSE_BASE, 1], rows) * (1 - beside)
    y_chin = lm[lmk.CHIN, 1]
    ks = zone * is_skin  # the neck's (and jaw's) skin
    kc = zone * (1 - is_skin) * smoothstep(y_chin, 2 * y_chin - lm[lmk.MOUTH_CORNER_R, 1], rows)  # the
    # body's own (clothing, long hair) below the chin; above it the head's rule stays (the hair, its shadow)
    dark = 1 - cfg.side_dark
    side, far = _neck_side_far(ks, kc, side, far, near, rim, 1 - cfg.neck_far_dark, dark)  # the skin's, the body's
    far_from = (1 - ks) * far_from * (1 - (1 - cfg.ear_far_from) * kc) + ks * cfg.neck_far_from_m
    kb = zone * (1 - smoothstep(y_chin, 2 * y_chin - y_mouth, rows))  # the same zone, down to the chin's row
    back = _blend(kb, back, jaw_in_shade(cfg, skin))  # the chin's underside
    return side, far, far_from, back, ks.astype(np.float32)


def hidden_gaussians(cfg, scene: Scene, photo, backdrop_seen, lm, mesh_px, head_mask, rows, wt, h_back, hair_skin, front,
                     back, open_edge, d_edge, turn: float, mpp: float):
    """The hidden back of the head and torso and the wall joining it to the front along the silhouette
    (completion.back_and_wall between front and back [S, S] camera z; open_edge [S, S] bool the silhouette's open
    border, d_edge [S, S] pixels inside it), in `hidden_colours` taken from the rim without backdrop_seen [S, S, 3],
    the head's own detail (photo [S, S, 3]'s hair strands, MeshFitConfig.side_texture_*) on its sides, and a turned
    photo's far half (turn 0..1, `source_view.body_depth`) in the near half's colours; scene.photo the rest colours,
    lm [478, 3] landmarks (crop pixels), rows [S, 1], wt and h_back [S, S] (`body_depth`), hair_skin
    (`hair_and_skin`) or None, mpp metres per pixel -> (GaussianBatch, wall_cols [S, S, 3] the wall's front colours:
    the rim as the photo's camera sees it, `wall_colours`)."""
    colours = scene.photo
    # the hidden side's colours from the rim without the backdrop seen through it (matte_hair's own); the wall's
    # rim, the photo layer's edge discs and their matte are what the photo's camera sees: the rim as the photo has
    # it (the wall's rim without the backdrop took the first frame down 0.04 / 0.08 dB on self lp_d0 / lp_d18)
    back_cols, side_cols, far_cols, far_from, skin_side = hidden_colours(
        cfg, dataclasses.replace(scene, photo=colours - backdrop_seen), lm, mesh_px, head_mask, rows,
        wt, h_back, hair_skin)
    wall_cols = wall_colours(cfg, scene)
    side_texture = None
    if cfg.side_texture_reach > 0:  # the head's own detail (hair strands), not the face's nor the edge's
        ok = head_mask & (d_edge > 4) & ~cv2.dilate(mesh_px.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        if hair_skin is not None:  # not the skin's: a short-haired head's ear drew its rims as ribs behind it
            ok &= np.sum((colours - hair_skin[1]) ** 2, -1) > 0.25 * np.sum((colours - hair_skin[0]) ** 2, -1)
        # nor the ears' (surfaces.ear_zones): in shade (obama_speech's, rgb 0.35 0.27 0.21 against his hair's 0.22
        # 0.18 0.17) or in their folds (two_children's) they pass for hair, and the side behind them drew the ear
        # again, stretched, beside the turned head's own (turn60)
        ok &= ~ear_zones(lm, ok.shape[0])
        side_texture = (photo - cv2.GaussianBlur(photo, (0, 0), cfg.side_texture_blur_px)) * ok[..., None]
        # and the head's above the mouth, fading out by the chin's row: the neck's (the jaw's shadow, the collar)
        # drew a jagged dotted line round obama_official's turned neck above the collar
        above_chin = 1 - smoothstep(lm[lmk.MOUTH_CORNER_R, 1], lm[lmk.CHIN, 1], rows)
        side_texture *= cfg.side_texture_gain * above_chin[..., None]
    far_to_back = underside = None  # on the jaw's and neck's skin side
    if skin_side is not None:
        far_to_back, underside = cfg.neck_far_to_back * skin_side, cfg.neck_underside * skin_side
    hidden = back_and_wall(scene, front, back, back_cols, side_cols, wall_cols, open_edge, cfg.back_spacing_m,
                           cfg.torso_back_spacing_m, cfg.wall_step_m, cfg.wall_rim_m,
                           inset_px=cfg.edge_band_px + 0.5 if cfg.edge_matte else 0.0,
                           side_look=SideLook(far=far_cols, far_from_m=cfg.side_far_from_m, far_from=far_from,
                                              far_to_back=far_to_back, underside=underside, shade=cfg.side_shade,
                                              texture=side_texture,
                                              texture_px_per_m=cfg.side_texture_reach / mpp,
                                              texture_fold_px=None if cfg.side_texture_fold_m is None else
                                              tuple(m / mpp for m in cfg.side_texture_fold_m)))
    if turn > 0:  # taken from the photo 4 px and more inside the outline (not the edge band's backdrop mix)
        hidden.colors = ((1 - turn) * hidden.colors + turn * mirrored_colours(
            dataclasses.replace(scene, photo=colours - backdrop_seen), hidden.means, hidden.colors, d_edge > 4,
            blur_px=cfg.back_blur_px, hair_skin=hair_skin)).astype(hidden.colors.dtype)
    return hidden, wall_cols
