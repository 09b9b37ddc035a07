"""The mouth (mesh_fit steps 3 and 4): the photo's own open mouth, which of its opening's pixels are teeth, which
turn with the jaw, and which are the photo's own gap (seen at its own opening only, avatar.PART_PHOTO_MOUTH), placed on
the rest template's teeth surface opened as far as the photo's jaw (`photo_mouth`); the teeth's colour
(`teeth_colour_info`); the synthetic interior behind the lips (cavity, teeth, tongue), built closed at rest, opened as
far as the photo's jaw and kept where the photo does not show it (`mouth_gaussians`); the opening's pixels kept
behind the closed rest face (`behind_rest_face`). Maps [S, S] over the source camera's crop, points [S, S, 3] in the
head frame (metres); `cfg` is a MeshFitConfig."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gaussian_head_ros.core.avatar import JAW_PARTS
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.deform import inner_lip_gap, jaw_pivot
from gaussian_head_ros.core.reconstruct.lips import lip_band
from gaussian_head_ros.core.reconstruct.mouth import (jaw_side, mouth_interior, parted_over_hidden_teeth, photo_teeth,
                                                      place_on_teeth_surface, skin_teeth_colour)
from gaussian_head_ros.core.reconstruct.rest_pose import turn_mouth, turn_points
from gaussian_head_ros.core.reconstruct.surfaces import rasterize_mesh

# How far behind the photo's upper crowns (at its pose) the interior must lie to stay: half the lower row's
# overjet behind them (MouthConfig.lower_teeth_behind_m 1.2 mm).
UPPER_CROWN_MARGIN_M = 0.0005
# The photo's own opening (avatar.PART_PHOTO_MOUTH, seen at its own jaw angle and lips' gap only) lies this far in
# front of where its pixels fall on the teeth surface, towards the camera: the synthetic rows stand whole behind it
# there, and on the same surface they showed through it in specks (its own pose).
PHOTO_MOUTH_LIFT_M = 0.0015
# How far (a square's side, px) MediaPipe's inner lip contour runs over a wide-open photo's own crowns: its teeth
# pixels on the lips' triangles this close to the opening are the opening's, and its upper row stays whole this close
LIP_TEETH_REACH_PX = 7


@dataclass
class PhotoMouth:
    """What `photo_mouth` finds in the photo's opening. Maps [S, S] bool."""

    mouth_px: np.ndarray  # the opening, with a wide one's teeth on the lips' triangles next to it
    face_px: np.ndarray  # the face mesh's triangles' pixels, without those
    lower_jaw: np.ndarray  # open mouth pixels that turn with the jaw (`jaw_side`)
    teeth_px: np.ndarray  # open mouth pixels that show teeth (`photo_teeth`)
    photo_gap: np.ndarray  # the photo's gap: a parted photo's or a wide one's whole opening, a smile's jaw side
    own_mouth: np.ndarray  # ... but lips that meet: the photo's own mouth (PART_PHOTO_MOUTH)
    lip_gap_m: float  # the photo's inner lips at the midline (deform.inner_lip_gap), metres
    parted: bool  # lips parted over hidden or shaded teeth (mouth.parted_over_hidden_teeth)
    smile: bool  # not parted and a gap up to MouthConfig.smile_gap_max_m
    wide: bool  # an opening neither parted nor a smile: the jaw's
    rays: np.ndarray | None  # [n, 3] the opening's pixels' rays in the head frame (not unit), None without an opening


def photo_mouth(cfg, photo, landmarks_px, loops, fid, nf: int, face_px, mouth_px, brightness: float, V, V_rest, theta,
                rays, R, t, centre, pts, pts_cam, front) -> PhotoMouth:
    """photo [S, S, 3] 0..1, landmarks_px [478, 3] (crop pixels), loops (template.hole_loops), fid [S, S] the
    rasterized triangle ids (nf: the template's face count), face_px and mouth_px [S, S] bool, brightness the face
    skin's median luminance / 0.55, V and V_rest [478, 3] the template as the photo shows it and at rest, theta the
    photo's jaw angle (rad), rays [S, S, 3], R [3, 3] and t [3] head -> camera, centre [3] the camera in the head frame
    -> PhotoMouth. Moves the opening's pixels in pts [S, S, 3] (head frame) onto the teeth surface (the photo's own gap
    PHOTO_MOUTH_LIFT_M towards the camera), and pts_cam [S, S, 3] and front [S, S] with them (in place)."""
    S = photo.shape[0]
    d = None
    lower_jaw = np.zeros((S, S), bool)  # open mouth pixels that turn with the jaw (`jaw_side`)
    teeth_px = np.zeros((S, S), bool)  # open mouth pixels that show teeth (`photo_teeth`)
    # Lips parted over hidden or shaded teeth (or lips that meet) show the photo's expression in their opening,
    # not its mouth: its pixels are the photo's gap, seen at its own opening only (`own_mouth` below; lips that
    # meet: none), and the synthetic interior stands for them at every other (a closed bite shows teeth there).
    # Turned with the jaw at every opening, their shaded sliver of teeth on the teeth surface and the dark gap
    # behind it stayed under the synthetic upper row's edge: every wider opening drew a dim olive-gold streak there
    # over a dark band (self sadtalker_WDA_KatieHill frames 29 / 100 / 168, where the operator shows white teeth
    # and a pink tongue; lead, session 42). A wider opening is the jaw's, and a mouth that shows its teeth shows
    # its own bite: there the teeth rows stay out of the photo's teeth (the photo given back; a smile's upper
    # crowns, `smile`; a wide opening's own, `wide`).
    lip_gap_m = inner_lip_gap(V)  # the photo's inner lips at the midline
    parted = parted_over_hidden_teeth(photo, mouth_px, 0.55 * brightness, lip_gap_m, cfg.mouth)
    photo_gap = mouth_px if parted else np.zeros_like(mouth_px)
    smile = not parted and lip_gap_m <= cfg.mouth.smile_gap_max_m  # (MouthConfig.smile_gap_max_m)
    # A wider opening is the jaw's (obama_speech 20.7 mm, lp_d9_woman_turned 42.6): its whole opening is the
    # photo's gap, its own mouth (`own_mouth` below): turned with the jaw, its teeth and tongue stood in any opening
    # in front of the synthetic rows as a second row of teeth and blocks of tongue over the cavity's dark
    wide = mouth_px.any() and not parted and not smile
    if wide:
        # MediaPipe's inner lip contour runs over the wide opening's own teeth at its edge: those lit, unsaturated
        # pixels on the lips' triangles next to the opening are the opening's (bound to the lip, obama_speech's
        # upper crowns showed at rest as a white line between the closed lips)
        near = cv2.dilate(mouth_px.astype(np.uint8), np.ones((LIP_TEETH_REACH_PX,) * 2, np.uint8)).astype(bool)
        on_lip = face_px & near & lip_band()[np.clip(fid, 0, nf - 1)]
        li, lj = np.nonzero(on_lip)
        lip_teeth = np.zeros_like(on_lip)
        lip_teeth[li, lj] = photo_teeth(photo[li, lj], 0.55 * brightness, cfg.mouth)
        mouth_px, face_px = mouth_px | lip_teeth, face_px & ~lip_teeth
        photo_gap = mouth_px
    if mouth_px.any():  # open mouth in the photo: onto the teeth of the rest template, the lower ones opened,
        # below the lower lip on the floor of the mouth
        mi, mj = np.nonzero(mouth_px)
        teeth_px[mi, mj] = photo_teeth(photo[mi, mj], 0.55 * brightness, cfg.mouth)
        lower_jaw[mi, mj] = jaw_side(np.stack([mj, mi], 1) + 0.5, landmarks_px, loops["mouth"],
                                     teeth_px[mi, mj]) > 0.5
        d = (rays[mouth_px] @ R)
        pts[mouth_px] = place_on_teeth_surface(centre, d / np.linalg.norm(d, axis=1, keepdims=True), V_rest,
                                               loops["mouth"], cfg.mouth, lower_jaw[mi, mj], theta,
                                               jaw_pivot(V_rest))
        if smile:  # what turns with the jaw in a smile's opening (the lower lip's inner rim, the dark below the
            # upper row, a few lower tips) is the photo's expression too: the synthetic lower row and cavity stand
            # there (placed on the lower row's surface, the rim's red stayed under the upper row of an opened smile
            # as red specks, obama_official, trump_official; the tips as white dots, tpsmm's frame 0)
            photo_gap = lower_jaw.copy()
    # The photo's gap (a parted photo's or a wide one's whole opening, a smile's jaw side) is its own mouth: the
    # synthetic interior is built whole behind it and stands there at every opening but the photo's own, where
    # its pixels (PART_PHOTO_MOUTH, deform.photo_mouth_share) give the photo back, PHOTO_MOUTH_LIFT_M in front of
    # the teeth surface. Left out instead, the synthetic rows stood for them at the photo's own opening too
    # (frame 0 of self tpsmm_driving, a smile: 38.38 -> 37.20 dB; sadtalker_WDA_KatieHill, parted: 29.36 -> 29.09).
    # Not the few pixels of lips that meet (MouthConfig.closed_lips_max_m): lip, not the mouth's inside.
    own_mouth = photo_gap & (lip_gap_m > cfg.mouth.closed_lips_max_m)
    if own_mouth.any():
        d_own = rays[own_mouth] @ R
        pts[own_mouth] -= PHOTO_MOUTH_LIFT_M * d_own / np.linalg.norm(d_own, axis=1, keepdims=True)
    if mouth_px.any():
        pts_cam[mouth_px] = pts[mouth_px] @ R.T + t
        front[mouth_px] = pts_cam[mouth_px][:, 2]
    return PhotoMouth(mouth_px, face_px, lower_jaw, teeth_px, photo_gap, own_mouth, lip_gap_m, parted, smile, wide, d)


def teeth_colour_info(cfg, skin, teeth_rgb, eye_cols):
    """skin [n, 3] the face skin's pixels, teeth_rgb [3] the lit teeth of the photo's open mouth or None
    (mouth.teeth_colour), eye_cols (eyeballs.eye_colours) -> (teeth_rgb [3] or None: the photo's, else one made from
    the skin and the sclera (mouth.skin_teeth_colour); info: where it came from and what it was made of)."""
    teeth_info = {"source": "photo" if teeth_rgb is not None else "default"}
    if teeth_rgb is None and len(skin):  # the sclera is the photo's own white
        teeth_rgb = skin_teeth_colour(skin, eye_cols["sclera"], cfg.mouth)
        teeth_info["source"] = "skin"
    if len(skin):
        teeth_info.update(skin_luma_median=float(np.median(skin @ LUMA)),
                          skin_luma_p95=float(np.percentile(skin @ LUMA, 95)))
    teeth_info.update(rgb=None if teeth_rgb is None else [round(float(c), 4) for c in teeth_rgb],
                      sclera_rgb=np.round(eye_cols["sclera"], 4).tolist())
    return teeth_rgb, teeth_info


def mouth_gaussians(cfg, scene, opening: PhotoMouth, V, V_rest, loops, theta, levels, brightness: float, teeth_rgb,
                    floor_rgb, mesh_px, front, lip_rgb=None):
    """The mouth interior (mouth.mouth_interior: cavity, teeth rows, tongue, jaw floor in floor_rgb [3] or None) behind
    the lips of the rest template (V_rest [478, 3]; loops: template.hole_loops), built closed, then opened as far as
    the photo's jaw (theta rad; levels: DriveConfig.levels; V the template as the photo shows it), and kept where the
    photo's source camera (scene: completion.Scene, front [S, S] the surface's camera z over mesh_px) does not see it
    but through the photo's own gap (`opening`); lip_rgb [3] the photo's lips or None (the tongue's colour,
    mouth.tongue_colour) -> GaussianBatch."""
    mouth_px, photo_gap, teeth_px, lower_jaw = opening.mouth_px, opening.photo_gap, opening.teeth_px, opening.lower_jaw
    parted, smile, wide, lip_gap_m = opening.parted, opening.smile, opening.wide, opening.lip_gap_m
    teeth_shown = cv2.dilate((mouth_px & ~photo_gap).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)

    def shown_in_photo(p, jaw_weights):  # rest points, posed as the photo shows them: its teeth (not its gap);
        # a smile's lower row whole, behind its upper crowns (left out where the photo's opening was, what was
        # left of it in an opened smile was a broken white zigzag)
        i, j, _, inside = scene.project(turn_points(p, jaw_weights, V_rest, theta, levels, V))
        return inside & teeth_shown[i, j] & ~(smile & (np.asarray(jaw_weights) > 0))

    # Built closed, at rest, then opened as far as the photo's jaw is (undone with everything else below).
    # lips parted over shaded teeth show the photo's own rows in shade: its synthetic lower row keeps that shade
    shaded = parted and lip_gap_m > cfg.mouth.closed_lips_max_m
    mouth = mouth_interior(V_rest, loops["mouth"], brightness, cfg.mouth, teeth_rgb, visible=shown_in_photo,
                           shaded=shaded, floor_rgb=floor_rgb, lip_rgb=lip_rgb)
    turn_mouth(mouth, V_rest, theta, levels, V)
    # Never in sight at rest: inside the face's outline and behind its surface (but for the photo's own gap);
    # behind the photo's own upper crowns the lower row (cfg.mouth.lower_teeth_behind_m behind them) stays: cut
    # there by the 2 mm the skin needs, what was left of it in an opened smile was a broken white zigzag
    # (astronaut_eileen_collins, trump_official)
    mi, mj, mz, inside = scene.project(mouth.means.astype(np.float64))
    behind = np.where((teeth_px & ~lower_jaw)[mi, mj], UPPER_CROWN_MARGIN_M, 0.002)
    keep = inside & mesh_px[mi, mj] & ((mz > front[mi, mj] + behind) | photo_gap[mi, mj])
    if wide:  # a wide-open photo's upper row (jaw weight 0) stays whole up under the lips' inner edge, where
        # MediaPipe's inner contour runs over the photo's own crowns: cut there, every talking opening showed holes
        # in its crowns (obama_speech: 24 Gaussians, 3.4 mm in front of to 2 mm behind the lip's surface)
        near = cv2.dilate(photo_gap.astype(np.uint8), np.ones((LIP_TEETH_REACH_PX,) * 2, np.uint8)).astype(bool)
        keep |= inside & near[mi, mj] & (mouth.bary[:, 0] == 0)
    mouth = mouth.take(keep)
    return mouth


def behind_rest_face(batch, V_rest, faces, R, t, K, S: int, scene, lip_info: dict) -> None:
    """The photo's open-mouth pixels (batch rows of avatar.JAW_PARTS, at rest) pushed back along their ray to 2 mm
    behind the rest face (V_rest [478, 3] over faces [F, 3], rasterized by the source camera: R [3, 3], t [3] head ->
    camera, K [3, 3], S pixels; scene: completion.Scene) where the closed lips were re-textured
    (lip_info["lip_retextured"], lips.closed_lips); in place, their count in lip_info["mouth_pushed_back"]."""
    # the photo's open-mouth pixels (teeth, tongue) turned back with the jaw must stay behind the rest
    # face (lp_d9's tongue poked through its closed chin in specks): pushed back along their ray (the jaw's
    # underside with them)
    rows_m = np.flatnonzero(np.isin(batch.part, JAW_PARTS))
    if rows_m.size and lip_info.get("lip_retextured"):
        _, _, z_rest = rasterize_mesh(V_rest @ R.T + t, faces, K, S)
        mi, mj, mz, inside = scene.project(batch.means[rows_m].astype(np.float64))
        zr = z_rest[mi, mj]
        front_of = inside & np.isfinite(zr) & (zr > 0) & (mz < zr + 0.002)
        if front_of.any():
            pc = batch.means[rows_m[front_of]].astype(np.float64) @ R.T + t
            pc *= ((zr[front_of] + 0.002) / pc[:, 2])[:, None]
            batch.means[rows_m[front_of]] = ((pc - t) @ R).astype(np.float32)
        lip_info["mouth_pushed_back"] = int(front_of.sum())
