"""The eyes and the lids (mesh_fit steps 3 and 4): the eye openings' parts (the lids' dark band, the iris that turns
with the eyeball, the sclera's light that stays on it: `eye_parts`), the eyeball behind them (`eyeball_gaussians`),
the catchlights (`catchlight_discs`), the skin a closing upper lid uncovers (`closed_lid_gaussians`) and the upper
lids' strips of the photo layer riding down with their margins in a blink, their lashes folding into a line
(`bind_lid_strips`, `lid_light`), and the share of the fold above each upper lid seen from the photo's camera only
(`fold_shares`). Maps [S, S] over the source camera's crop, points in the head frame (metres); `cfg` is a
MeshFitConfig."""

from __future__ import annotations

import cv2
import numpy as np

from gaussian_head_ros.core import eyes
from gaussian_head_ros.core.avatar import PART_EYE, PART_FACE, PART_STATIC
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.deform import DriveConfig, lid_follow
from gaussian_head_ros.core.reconstruct.builder import surface_discs
from gaussian_head_ros.core.reconstruct.eyeballs import catchlights, eyeball_completion, eyeball_parts, seen_in_turns
from gaussian_head_ros.core.reconstruct.eyelids import (carry_by_margin, closed_lid_photo, closed_lid_skin, fold_lashes,
                                                         fold_shade, margin_binding, skin_luminance, upper_orbit)


def eye_parts(cfg, photo, eye_px, person, landmarks_px, eye_cols, centre, pts):
    """photo [S, S, 3] 0..1, eye_px and person [S, S] bool, landmarks_px [478, 3] (crop pixels), eye_cols
    (eyeballs.eye_colours), centre [3] the camera in the head frame -> (eye_iris, eye_sclera, eye_core, lid_band [S, S]
    bool, eye_lag [S, S] the share of the eyeball's turn each eye pixel lags behind). Moves the lid band's points in
    pts [S, S, 3] (head frame) in front of the eyeball and the sclera's behind it, along their rays (in place)."""
    # The opening's dark band along the lids (lashes, the lids' shadow, the lid margins) stays with the lids
    # (static: the falloff band carries them with the lid vertices); the iris turns with the eyeball, the
    # sclera's pixels (its light) stay on it, behind the iris (eyeballs.eyeball_parts: lag 1, none of the turn),
    # and the sphere behind the band and the sclera is painted like the hidden part: what a turned iris uncovers.
    eye_iris, eye_sclera = (eye_px & m for m in eyeball_parts(photo, eye_px & person, landmarks_px, eye_cols,
                                                               cfg.eyeball))
    eye_core = eye_iris | eye_sclera
    lid_band = eye_px & ~eye_core
    for band, lift in ((lid_band, cfg.eyeball.band_lift_m), (eye_sclera, -cfg.eyeball.sclera_behind_m)):
        if band.any():  # the band just in front of the sphere (the painted eyeball behind never shows at rest),
            toward = centre - pts[band]  # the sclera behind it, along the pixels' rays
            pts[band] += lift * toward / np.linalg.norm(toward, axis=1, keepdims=True)
    eye_lag = np.where(eye_sclera, 1.0, 0.0)  # deform.eye_lag_level: the share of the turn each lags behind
    return eye_iris, eye_sclera, eye_core, lid_band, eye_lag


def eyeball_gaussians(cfg, scene, V, rest_gaze, eye_cols, mpp: float, eye_px, mesh_px, front, lid_band, eye_sclera,
                      eye_iris):
    """The eyeballs behind the openings (eyeballs.eyeball_completion; V [478, 3] the template as the photo shows it,
    rest_gaze its gaze, mpp metres per pixel), kept where the photo's source camera (scene: completion.Scene) does not
    see them at rest: by the lids or the sclera's light, not by the turning iris; front [S, S] the surface's camera z
    -> GaussianBatch or None."""

    seen = turn_views(cfg, scene, V, rest_gaze, mpp, eye_px, eye_sclera, eye_iris)
    # the cap also backs the photo's iris, inside its rim by as far as the inset cap slides under it at the widest turn,
    # in the photo's colours there: turned 0.45-0.6 rad, the iris's discs part along their rows and showed the eyeball's
    # dark inside through diagonal cracks (obama_speech's right eye, whose iris disc takes in its light sclera)
    slide = int(np.ceil(cfg.eyeball.cap_inset_m * np.sin(DriveConfig().gaze_max_rad) / mpp))
    deep_iris = cv2.erode(eye_iris.astype(np.uint8), np.ones((2 * slide + 1, 2 * slide + 1), np.uint8)).astype(bool)

    def hidden_at_rest(p, cap, e):  # by the lids, the sclera's light or the iris; seen in some turn
        i, j, z, inside = scene.project(p)
        behind = ~eye_px[i, j] & (z > front[i, j] + 0.0005)
        return inside & mesh_px[i, j] & (lid_band[i, j] | eye_sclera[i, j] | deep_iris[i, j] | behind) & seen(cap, e)

    def behind_the_iris(p):  # painted sclera under the iris's rim (a painted iris there trailed it as a dark arc) and
        # under the photo's sclera: a painted iris reaching past the photo's (its rest gaze's disc a little off the iris
        # pixels) came round in a far look as thin dark arcs in the white (obama_speech's right eye at 0.45-0.6 rad)
        i, j, _, inside = scene.project(p)
        return inside & ((eye_iris[i, j] & ~deep_iris[i, j]) | eye_sclera[i, j])

    eyeball = eyeball_completion(V, rest_gaze, eye_cols, mpp, cfg.eyeball, keep=hidden_at_rest,
                                 behind_iris=behind_the_iris)
    if eyeball is not None:
        i, j, _, inside = scene.project(eyeball.means)
        under = inside & deep_iris[i, j]
        eyeball.colors[under] = scene.photo[i[under], j[under]]
    return eyeball


def turn_views(cfg, scene, V, rest_gaze, mpp: float, eye_px, eye_sclera, eye_iris):
    """seen(cap [M, 3], e) -> [M] bool: which points of eye e's painted cap (head frame, at rest) some turn of the eye
    within the driver's limit brings into the source camera's view (eyeballs.seen_in_turns), the lids turning with it
    (the driver's coupling) and the upper lid opening up to its widest (deform.DriveConfig: gaze_max_rad,
    lid_follow_upper / _lower, lid_max_open, the defaults mesh_fit builds the rig with). eye_px, eye_sclera, eye_iris
    [S, S] bool over the source camera's crop (eye_parts); V [478, 3] the template as the photo shows it, rest_gaze
    [2, 2] its gaze, mpp metres per pixel. The opening is the eyeball's pixels' (iris and sclera) per column, grown by
    cfg.eyeball.turn_margin_m; the photo's sclera, which stays, hides what lies behind it (shrunk by that margin)."""
    ecfg, dcfg = cfg.eyeball, DriveConfig()
    grow = max(0, int(round(ecfg.turn_margin_m / mpp)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    core = eye_iris | eye_sclera
    rows = np.arange(core.shape[0])[:, None]
    cols = core.any(0)
    top = np.where(cols, core.argmax(0), core.shape[0])  # [S] the opening's top row per column (S: none)
    bottom = np.where(cols, core.shape[0] - 1 - core[::-1].argmax(0), -1)
    gap = np.where(eye_px.any(0), eye_px.shape[0] - eye_px[::-1].argmax(0) - eye_px.argmax(0), 0).astype(np.float64)
    rise = (dcfg.lid_max_open - 1.0) * gap  # the upper lid at its widest opening, pixels up
    upper = cv2.dilate((cols & (rows >= top - rise)).astype(np.uint8), disc).astype(bool)
    lower = cv2.dilate((cols & (rows <= bottom)).astype(np.uint8), disc).astype(bool)
    static = cv2.erode(eye_sclera.astype(np.uint8), disc).astype(bool)
    centres = eyes.eyeball_centres(np.asarray(V, np.float64), rest_gaze, ecfg.radius_m)
    _, split, _, _ = scene.project(centres.mean(0, keepdims=True))  # the column between the eyes
    side = np.arange(core.shape[1]) >= split[0]
    taper = np.zeros(core.shape[1])
    for s in (~side, side):  # each eye's gap over its widest (deform._lid_taper: the rest height over the middle's)
        if (gap[s] > 0).any():
            taper[s] = gap[s] / gap[s].max()
    n = int(np.ceil(2 * dcfg.gaze_max_rad / ecfg.turn_step_rad)) + 1
    off = np.linspace(-dcfg.gaze_max_rad, dcfg.gaze_max_rad, n)
    d = np.stack(np.meshgrid(off, off, indexing="ij"), -1).reshape(-1, 1, 2)  # [T, 1, 2] (yaw, pitch) from the rest
    rot = eyes.gaze_rotations(np.asarray(rest_gaze, np.float64) + d, rest_gaze, dcfg.gaze_max_rad, like=off)
    lids = lid_follow(d[:, 0, 1], dcfg)  # [T, 2] (upper, lower): the driver's lid-eye coupling
    camera = scene.centre

    def seen(cap, e):
        return seen_in_turns(cap, centres[e], camera, rot[:, e], lids, scene.project, upper, lower, static, taper)

    return seen


def catchlight_discs(cfg, colours, eye_core, landmarks_px, eye_cols, pts, nrm, centre, mpp: float):
    """The catchlights in the eye openings (eyeballs.catchlights on colours [S, S, 3] over eye_core [S, S] bool):
    (shine [S, S] bool their pixels, under [S, S, 3] the iris under them, shine_batch their discs (GaussianBatch, a
    little in front of the eyeball, following only part of its turn) or None, si, sj their pixel rows and columns or
    None); pts and nrm [S, S, 3] the surface's points and normals (head frame), centre [3] the camera."""
    si = sj = None
    # the catchlights (eyeballs.catchlights): their own Gaussians, a little in front of the eyeball, that follow
    # only part of its turn (deform.eye_lag_level); the photo layer there shows the iris behind them
    alpha, light, under = catchlights(colours, eye_core, landmarks_px, eye_cols, cfg.eyeball)
    shine = alpha > 0
    shine_batch = None
    if shine.any():
        si, sj = np.nonzero(shine)
        sp = pts[si, sj].astype(np.float64)
        view = sp - centre
        view /= np.linalg.norm(view, axis=1, keepdims=True)
        shine_batch = surface_discs(sp - cfg.eyeball.catchlight_lift_m * view, nrm[si, sj], light[si, sj],
                                    np.full(len(si), cfg.detail_sigma_px * mpp), view, PART_EYE,
                                    max_stretch=cfg.max_stretch,
                                    bary=np.tile([cfg.eyeball.catchlight_lag, 0.0, 0.0], (len(si), 1)))
        shine_batch.opacities[:] = cfg.opacity * alpha[si, sj]
    return shine, under, shine_batch, si, sj


def closed_lid_gaussians(cfg, scene, photo, eye_px, band, landmarks_px, skin_rgb, V, faces, centre):
    """The skin a closing upper lid uncovers (eyelids.closed_lid_skin), waiting behind the photo's lid at rest, in the
    colours of the photo with the eye openings (eye_px [S, S] bool) and the lash band (band [S, S] bool,
    eyelids.lash_band) filled from around (eyelids.closed_lid_photo), its luminance near the lid skin's (skin_rgb
    [2, 3], eyelids.lid_skin_colours) -> (lid_skin GaussianBatch or None, closed_view [S, S, 3] that fill or None)."""
    lid_skin = closed_view = None
    if cfg.lid_skin_spacing_m > 0:  # closed-lid skin: the photo with the openings and lashes filled from around
        closed_view = closed_lid_photo(photo, eye_px | band, landmarks_px, cfg.lid_fill_grow_px,
                                       cfg.lid_fill_below, cfg.lid_fill_radius_px, skin_rgb, cfg.lid_fill_not_skin)

        def closed_colour(p):  # the fill there, its luminance kept near the lid skin's (a deep lid's shadow
            i, j, _, _ = scene.project(p)  # above the eye filled a closed lid with a dark smudge: obama_speech)
            return skin_luminance(closed_view[i, j], skin_rgb, p[:, 0] >= 0, cfg.lid_fill_luma,  # x < 0: right eye
                                  cfg.lid_fill_chroma)

        found = closed_lid_skin(V, faces, closed_colour, centre, cfg.lid_skin_spacing_m, cfg.lid_skin_behind_m,
                                skin_rgb * cfg.lash_line_shade if cfg.lash_line_shade > 0 else None,
                                cfg.lash_line)
        if found is not None and np.isfinite(found[2]).all():
            m_, n_, c_, s_, f_, b_ = found
            lid_skin = surface_discs(m_, n_, c_, s_, None, PART_FACE, face_id=f_, bary=b_)
    return lid_skin, closed_view


def lid_light(cfg, skin_rgb, colors, means):
    """[M] bool: colors [M, 3] as light as their eye's lid skin (skin_rgb [2, 3]) x MeshFitConfig.lid_light_level;
    means [M, 3] head frame (x < 0: the right eye)."""
    return colors @ LUMA >= cfg.lid_light_level * (
        np.asarray(skin_rgb, np.float64)[(means[:, 0] >= 0).astype(int)] @ LUMA)


def bind_lid_strips(cfg, photo_layer, face_extra, band, pixels, skin_rgb, V, faces, centre):
    """The upper lids' strips of the photo layer (photo_layer: GaussianBatch at pixels (i, j, ...)) and of the face
    completion (face_extra or None) bound to ride with their lid margins (eyelids.margin_binding), the lash band (band
    [S, S] bool) folding onto the margin, its lashes lifted towards the camera (centre [3]); changes their part, face_id,
    bary and means in place -> (spread [n_photo] bool the photo layer's light strip rows carried by their own weights,
    lid_carried: the carried rows' numbers in the batch photo_layer + face_extra, one array per batch)."""
    # the photo's upper-lid strip rolls down with the margin in a blink (eyelids.py), its lash band folding
    # onto the margin; lid_skin fills behind
    spread = np.zeros(len(photo_layer), bool)  # the photo layer's light strip rows carried by their own weights
    lid_carried = []  # the strip rows carried with the margin, row numbers in `batch` (below)

    for b, dark in ((photo_layer, band[pixels[0], pixels[1]]), (face_extra, None)):
        if b is not None and cfg.lid_split > 0:
            rows = np.flatnonzero(b.part == PART_FACE)
            light = None
            if cfg.lid_light_level > 0:
                light = lid_light(cfg, skin_rgb, b.colors[rows], b.means[rows])
            b.bary[rows], carried = margin_binding(b.face_id[rows], b.bary[rows], faces, cfg.lid_split,
                                                   None if dark is None else dark[rows], light)
            b.part[rows[carried]] = PART_STATIC  # carried (core.deform), not stretched
            if dark is not None and light is not None:
                spread[rows[carried & light & ~dark[rows]]] = True
            if dark is not None:  # the band's part on the ring above the strip: carried by the nearest margin point
                ring = rows[dark[rows] & ~carried]
                b.face_id[ring], b.bary[ring] = carry_by_margin(b.means, b.face_id, V, faces, ring)
                b.part[ring] = PART_STATIC
                carried[np.searchsorted(rows, ring)] = True
            fold = rows[carried]
            lid_carried.append(fold + (0 if b is photo_layer else len(photo_layer)))  # rows in `batch`
            b.bary[fold] = fold_lashes(b.face_id[fold], b.bary[fold], b.means[fold], V, faces, cfg.lash_fold)
            if dark is not None:  # the lashes a little in front where the folded band overlaps
                lift = rows[carried & dark[rows]]
                toward = centre - b.means[lift]
                b.means[lift] += cfg.lash_lift_m * toward / np.linalg.norm(toward, axis=1, keepdims=True)
    return spread, lid_carried


def fold_shares(cfg, batch, n_photo: int, n_fold: int, edge_on, closed_view, skin_rgb, V, faces, centre, scene):
    """The upper orbit's share of the photo layer's (batch rows 0 .. n_photo, but the edge-on ones: edge_on
    [n_photo] bool) and the face completion's (.. n_fold) colours seen from the photo's camera only
    (MeshFitConfig.fold_facing; eyelids.fold_shade against the closed-lid fill closed_view [S, S, 3] or None at the lid
    skin's luminance, skin_rgb [2, 3]), with their |cos| to the photo's line of sight (centre [3] the camera in the
    head frame) -> (fold_up [n_fold, 3] rgb, fold_cos [n_fold])."""
    # the upper orbit's share of the photo layer's and the face completion's colours seen from the photo's
    # camera only (fold_facing), with their |cos| to the photo's line of sight
    fold_up, fold_cos = np.zeros((n_fold, 3), np.float32), np.zeros(n_fold)
    if closed_view is not None and cfg.fold_facing[0] < 1:
        fid_f = batch.face_id[:n_fold]
        on = (batch.part[:n_fold] == PART_FACE) & (fid_f >= 0) & (fid_f < len(faces))
        on[:n_photo] &= ~edge_on
        on[on] = upper_orbit(V, faces)[fid_f[on]]
        p_on = batch.means[:n_fold][on].astype(np.float64)
        look = p_on - centre
        fold_cos[on] = np.sum(batch.normals[:n_fold][on] * look, 1) / np.linalg.norm(look, axis=1)
        fi_, fj_, _, _ = scene.project(p_on)
        skin = skin_luminance(closed_view[fi_, fj_], skin_rgb, p_on[:, 0] >= 0, cfg.lid_fill_luma,  # x < 0: right eye
                              cfg.lid_fill_chroma)
        fold_up[on] = fold_shade(batch.colors[:n_fold][on], skin, np.abs(fold_cos[on]), cfg.fold_facing)
    return fold_up, fold_cos
