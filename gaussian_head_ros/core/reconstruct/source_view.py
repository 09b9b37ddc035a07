"""Surfaces in the source view (mesh_fit step 2): the person's mask over the photo's crop (`person_mask`), the
depth of its visible front and hidden back (`body_depth`: a rounded proxy inflated from the silhouette, the skull's
back, the nape round the neck column, a turned photo's far half), and the front bent onto the face mesh with the eye
openings on their eyeballs (`surface_points`). Maps are [S, S] over the source camera's crop (S = framing.size,
pixels, y down), depths camera z in metres, points [S, S, 3] in the head frame; `cfg` is a MeshFitConfig."""

from __future__ import annotations

import cv2
import numpy as np

from gaussian_head_ros.core import eyes
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.deform import smoothstep
from gaussian_head_ros.core.reconstruct.backdrop_rim import backdrop_kept
from gaussian_head_ros.core.reconstruct.completion import mirrored_back
from gaussian_head_ros.core.reconstruct.eyeballs import eye_side, place_on_eyeballs
from gaussian_head_ros.core.reconstruct.hidden_colours import hair_and_skin
from gaussian_head_ros.core.reconstruct.surfaces import (EAR_RIM_REACH, clean_mask, drop_thin_parts, ear_zones,
                                                         guided_filter, inflate, matte_hair, nearer_other_faces,
                                                         open_border, peel_unlike_rim, push_pull, refine_silhouette)


def person_mask(cfg, fp, photo: np.ndarray, segmenter, mesh_px: np.ndarray, rows: np.ndarray):
    """The person in the framed photo `fp` (framing.FramedPhoto): photo [S, S, 3] float32 0..1 (its crop), the
    segmenter (facemesh.PersonSegmenter), mesh_px [S, S] bool the face mesh's pixels (its openings filled), rows
    [S, 1] pixel rows' centres -> (person [S, S] bool, photo [S, S, 3] with the hair matte's foreground colours in its
    edge band (the photo itself when cfg.hair_matte is off), photo_seen [S, S, 3] the photo as the camera saw it,
    backdrop_seen [S, S, 3] the backdrop's share of the rim (0 off the matte band), recoloured [S, S] bool the backdrop
    itself kept in the person in the person's own colour: in `person`, not the person).

    Segmentation (snapped to the photo's edges), plus the inside of the face mesh, only what is connected to the face;
    other people out; background peeled off the head, the hair matted, the outline's unlike backdrop peeled, strands
    thinner than the matte bands dropped (MeshFitConfig's matting_radius_px, hair_matte, unlike_rim_px, edge_matte)."""
    S = photo.shape[0]
    prob = segmenter.probability(fp.photo)
    prob = guided_filter(photo, prob, cfg.matting_radius_px) if cfg.matting_radius_px > 0 else prob
    seg = prob > cfg.segmentation_threshold
    inner_mesh = cv2.erode(mesh_px.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)  # its rim may overshoot
    person = (seg | inner_mesh) & fp.valid
    if fp.other_faces:  # other people: their face and hair, and what lies nearer them, are not this avatar's
        person &= ~nearer_other_faces(fp.landmarks_px, fp.other_faces, S, fp.landmarks_px[lmk.CHIN, 1])
    person = clean_mask(person, mesh_px)
    below_chin = np.broadcast_to(rows > fp.landmarks_px[lmk.CHIN, 1], person.shape)

    def close_notches(m):  # the notches peeling leaves would show as see-through gaps in turned views
        closed = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_CLOSE,
                                  cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))).astype(bool)
        return clean_mask(closed & fp.valid, mesh_px)

    if cfg.matting_radius_px > 0:  # peel background off the head (not the torso: suits look like backdrops)
        person = close_notches(refine_silhouette(photo, person, inner_mesh | below_chin, source_px=fp.source_px))
    recoloured = np.zeros(person.shape, bool)
    photo_seen = photo  # as the camera saw it: the edge matte's opacity gives it back over its own background
    backdrop_seen = np.zeros_like(photo, np.float32)  # the backdrop's share of the rim (matte_hair's own - colours)
    if cfg.hair_matte:  # the backdrop between strands out, the band's colours without it (from here on; the
        # gaps closing refills show those colours: matte_hair gives them too), and the backdrop seen through the
        # hair's outline, which the hidden side does not take from the rim
        hair_skin = hair_and_skin(photo, person, fp.landmarks_px, mesh_px, person, rows)
        person, photo, own = matte_hair(photo_seen, person, inner_mesh | below_chin, valid=fp.valid,
                                        hair_skin=hair_skin)
        backdrop_seen = photo - own
        person = close_notches(person)
    # what the peel and the recolouring below leave alone: the face mesh, the body below the chin and the crown above
    # the forehead's row (the outline there is the hair's, which matte_hair mattes and smooths: peeled, obama_official's
    # crown lost its pale halo unevenly, 640 px, and the window's cream bump stood out of it as a spike)
    kept_in = inner_mesh | below_chin | np.broadcast_to(rows < fp.landmarks_px[lmk.FOREHEAD, 1], person.shape)
    if cfg.unlike_rim_px > 0:  # the backdrop kept along the outline in a colour the person has nowhere (the
        # flag's red strip beside trump_official's ear: a red back to his turned ear)
        person = clean_mask(peel_unlike_rim(photo_seen, person, kept_in, cfg.unlike_rim_px), mesh_px)
    if cfg.own_backdrop_rim and cfg.backdrop_rim_px > 0:  # ... and the backdrop itself that the outline kept in a
        # colour the person has nowhere near (backdrop_rim.backdrop_kept, a nearer look than the palettes above): the
        # flag's red stripe beside obama_speech's jaw, 2-6 px of it in his mask, a red streak down his jaw in every
        # frame at rest (lead and user58, session 58), which his open mouth's red kept from peel_unlike_rim (and from
        # backdrop_kept, but for not_own: cfg.backdrop_mouth_px); told where that peel tells (not in kept_in), it
        # takes the person's own colour and stays in the mask. Peeled, a notch opened between his jaw and his collar
        # into holes in his turned head (x sadtalker: 63-180 px in rim59; 4-7 px with only the stripe told, rim60;
        # recoloured, main's 0-2)
        open_edge = cv2.dilate(open_border(person, ~fp.valid).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        mouth = np.zeros(person.shape, np.uint8)
        cv2.fillPoly(mouth, [np.round(fp.landmarks_px[list(lmk.LIP_OUTER), :2]).astype(np.int32)], 1)
        grow = 2 * cfg.backdrop_mouth_px + 1
        mouth = cv2.dilate(mouth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow))).astype(bool)
        kept, own = backdrop_kept(photo_seen, person, open_edge, fp.valid, cfg.backdrop_rim_px, cfg.backdrop_reach_px,
                                  matte_px=cfg.edge_band_px + 0.5, not_own=mouth)
        recoloured = kept & ~kept_in
        photo = np.where(recoloured[..., None], own, photo).astype(photo.dtype)
    if cfg.edge_matte:  # no strand thinner than its two matte bands (nothing of the closed body behind it) but
        # along a cut, where the body goes on (its closing columns stand on the cut's own outline)
        thin = 2 * int(np.ceil(cfg.edge_band_px + 0.5)) + 1
        at_cut = cv2.dilate(open_border(person, ~fp.valid).astype(np.uint8), np.ones((thin, thin), np.uint8))
        person = drop_thin_parts(person, thin, inner_mesh | at_cut.astype(bool), mesh_px)
    return person, photo, photo_seen, backdrop_seen, recoloured & person


def body_depth(cfg, fp, person: np.ndarray, rays: np.ndarray, rows: np.ndarray, mpp: float, K, R, t):
    """The rounded proxy of the person seen by the source camera (K [3, 3], R [3, 3] and t [3] head -> camera):
    person [S, S] bool, rays [S, S, 3] the pixels' rays (surfaces.pixel_rays), rows [S, 1] pixel rows' centres, mpp
    metres per pixel at the head origin's depth -> (front [S, S] camera z of the visible surface, back [S, S] of the
    hidden back, h_back [S, S] metres the back lies behind the skull centre, wt [S, S] 0 head .. 1 torso, turn 0..1
    how far the photo's head is turned for the far half's mirrored back, MeshFitConfig.far_side_turn_deg).

    Depth of the visible surface (camera z) and of the hidden back, over the person: the silhouette inflated (head,
    back and torso radii), blended from head to torso below the chin and beside the neck column, the skull's back in
    to the nape, and a turned photo's far half as deep as the near half's mirror image. Not yet bent onto the face
    mesh (`surface_points`)."""
    S = person.shape[0]
    cut = ~fp.valid  # beyond the photo's border the person continues: no rounding there
    z_head = float((R @ np.array([0.0, 0.0, cfg.head_centre_z_m]) + t)[2])
    hmask = person | open_border(person, cut)
    chin_v = fp.landmarks_px[lmk.CHIN, 1]
    wt = smoothstep(chin_v, chin_v + cfg.neck_blend_m / mpp, rows) * np.ones((1, S))  # 0 head .. 1 torso
    # the neck column's centre: the chin's x (the skull centre's projection lay 2 cm off it on obama_speech,
    # whose head is turned in the photo: the ellipse's narrow side under his chin, holes p95 2.05 -> 6.0 px)
    across_neck = np.abs(np.arange(S, dtype=np.float64)[None, :] + 0.5 - fp.landmarks_px[lmk.CHIN, 0]) * mpp
    if cfg.neck_beside_torso_m is not None and cfg.neck_half_width_m > 0:  # below the chin beside the column
        # the body's (the collar, the shoulders, hair), at the torso's depth
        ramp_across, ramp_down = cfg.neck_beside_torso_m
        below = np.broadcast_to(rows > chin_v, hmask.shape)
        rising = (np.cumsum(~hmask & below, axis=0) > 0).astype(np.float32)  # background above, below the chin
        rising = cv2.GaussianBlur(rising, (0, 0), cfg.neck_rising_blur_m / mpp) * below
        down = np.maximum(smoothstep(chin_v, chin_v + ramp_down / mpp, rows), np.minimum(2 * rising, 1.0))
        wt = np.maximum(wt, smoothstep(cfg.neck_half_width_m, cfg.neck_half_width_m + ramp_across, across_neck) * down)
    front = ((1 - wt) * (z_head - inflate(hmask, mpp, cfg.head_radius_m))
             + wt * (z_head + cfg.torso_offset_m - inflate(hmask, mpp, cfg.torso_radius_m)))
    h_back = inflate(hmask, mpp, cfg.back_radius_m)
    back = (1 - wt) * (z_head + h_back) + wt * (z_head + cfg.torso_offset_m + inflate(hmask, mpp, cfg.torso_radius_m))
    if cfg.nape_m > 0:  # the skull's back curves in below the ear to the nape (and out again to the shoulders):
        # in profile the back went straight down from the crown to the collar, a helmet (issue 11). From the nose
        # base's row to the chin's, back out over the neck's blend (held further down, 1 - wt^2, the see-through
        # specks under obama_speech's chin at yaw -40 pitch 20 doubled, 64 -> 142 px), across the neck only
        nape = smoothstep(fp.landmarks_px[lmk.NOSE_BASE, 1], chin_v, rows) * (1 - wt) ** 2  # 1 at the chin's row
        if cfg.neck_half_width_m > 0:  # round the neck column (neck_section_power), nape_m deep, beyond it the back as
            # it was (the section down to the skull centre there: see-through gaps round obama_speech's collar under
            # sadtalker's turns, holes p95 2.05 -> 6.0 px)
            w = cfg.neck_half_width_m
            nape = nape * (1 - smoothstep(w, w + cfg.nape_half_width_m[1] - cfg.nape_half_width_m[0], across_neck))
            reach = cfg.nape_m * np.sqrt(np.maximum(1 - (across_neck / w) ** cfg.neck_section_power, 0.0))
        else:  # flat across the neck
            nape = nape * (1 - smoothstep(cfg.nape_half_width_m[0], cfg.nape_half_width_m[1], across_neck))
            reach = cfg.nape_m
        back = back - nape * np.maximum(back - (z_head + reach), 0.0)
        h_back = h_back - nape * np.maximum(h_back - reach, 0.0)
    # a turned photo's far half, hidden behind its near one, as deep as the near half's mirror image along the
    # rays through the person (completion.mirrored_back), and in the near half's colours (below)
    cam = -R.T @ t
    turn = 0.0 if cfg.far_side_turn_deg is None else float(
        smoothstep(*cfg.far_side_turn_deg, abs(float(np.degrees(np.arctan2(cam[0], -cam[2]))))))
    if turn > 0:
        # the head's rows, fading out from the nose base's to the chin's: below, the mirror of the near half's hair
        # and shoulder stood out beside lp_s9_monalisa's neck as a pale strip (the neck is narrower than the head)
        above_jaw = 1 - smoothstep(fp.landmarks_px[lmk.NOSE_BASE, 1], chin_v, rows)  # [S, 1]
        # and not the near ear's fin (its back as deep as the head's), rim and all: mirrored, a second ear behind
        # the far one's place
        gain = turn * mirrored_back(back, person, rays, R, t, K, (1 - wt) * above_jaw,
                                    ears=ear_zones(fp.landmarks_px, S, EAR_RIM_REACH))
        back, h_back = back + gain, h_back + gain
    return front, back, h_back, wt, turn


def surface_points(cfg, fp, front, back, rays, V, mesh_px, zmesh, eye_px, fid, nf: int, eye_r, centre, rest_gaze,
                   mpp: float, R, t):
    """The proxy's front and back [S, S] (`body_depth`) bent to meet the face mesh (zmesh [S, S] its camera z over
    mesh_px) over MeshFitConfig.face_blend_m, the eye openings (eye_px [S, S] bool; fid [S, S] the rasterized triangle
    ids, nf the template's face count, eye_r the right eye's fill triangles) on the eyeballs the driver turns (centre
    [3] the camera in the head frame, rest_gaze the photo's gaze, V [478, 3] the template) -> (front [S, S] float32,
    back [S, S] float32 at least 2 cm behind it, pts_cam [S, S, 3] camera frame, pts [S, S, 3] head frame, n_eye [n, 3]
    the eye pixels' normals or None without eye pixels)."""
    n_eye = None
    delta = np.where(mesh_px, zmesh - front, 0.0).astype(np.float32)
    delta_fill = push_pull(delta[..., None], mesh_px.astype(np.float32))[..., 0]
    d_face = cv2.distanceTransform((~mesh_px).astype(np.uint8), cv2.DIST_L2, 5) * mpp
    front = front + delta_fill * np.exp(-((d_face / cfg.face_blend_m) ** 2))
    front = np.where(mesh_px, zmesh, front)
    if eye_px.any():  # the photo's eye openings: on the eyeballs the driver turns with the gaze
        d = rays[eye_px] @ R
        p_eye, n_eye = place_on_eyeballs(centre, d / np.linalg.norm(d, axis=1, keepdims=True),
                                         eye_side(fid[eye_px], nf, len(eye_r)),
                                         eyes.eyeball_centres(V, rest_gaze, cfg.eyeball.radius_m),
                                         cfg.eyeball.radius_m)
        front[eye_px] = (p_eye @ R.T + t)[:, 2]
    back = np.maximum(back, front + 0.02)
    front, back = front.astype(np.float32), back.astype(np.float32)  # finite everywhere; used on `person`
    pts_cam = front[..., None] * rays  # [S, S, 3]
    pts = (pts_cam - t) @ R  # [S, S, 3] head frame
    if eye_px.any():
        pts[eye_px] = p_eye
    return front, back, pts_cam, pts, n_eye
