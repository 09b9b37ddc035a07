#!/usr/bin/env python3
"""Which part of the control makes a reader group's r on a (portrait, clip) pair (issue 11).

    python scripts/reader_ablation.py PORTRAIT:CLIP [...] [--group brow|pitch|...] [--frames 60] [--out FILE.jsonl]
                                      [--regions] [--brow-heights] [--brow-sweep]

PORTRAIT is a ../shared portrait file name or `self` (the clip's frame 0, rendered with the source camera's
perspective as `gaussian-head eval` does); CLIP a ../shared driving clip stem. The avatar (mesh_fit) is driven
by the clip's tracked controls (bundled face mesh tracker, 12 deg camera, as eval) with parts of each control
kept or taken out (ABLATIONS), every render is read by MediaPipe's FaceLandmarker (core/reader.py, video mode),
and the reader's group series on the render is correlated with the same series on the driver:

- full: the control as tracked (the living-face table's r),
- pose held: head pose held at the first frame's, the face as tracked,
- brows only: pose held, only the brows and the forehead above the eyes move (`expression.forehead_points`),
  lids and gaze at rest, mouth closed,
- no brows: as tracked but the brows and forehead held at rest,
- mouth only: pose held, lids and gaze at rest, the brows and forehead held at rest: the expression below the
  eyes as tracked (what the mouth alone makes the reader read as the group),
- eyes only: pose held, no expression, the tracked lid ratios and gaze,
- pose only: no expression, lids and gaze at rest, the tracked head pose,
- gaze held: as tracked but the eyes' gaze held at the first frame's (what the eyes' turns add),
- lids held: as tracked but the lid ratios at 1, the neutral opening (what the tracked lids add; the lid-eye
  coupling still moves the lids with the gaze).

`--ablations` runs a subset (comma-separated names; `full` is always run).

A low `full` with a high `brows only` says the reader is moved by something else on that face (pose, lids,
gaze); a `pose only` r far from 0 says the reader reads the rigid head's turn as that group. Prints one line per
pair (r and the render's std per ablation, the driver's std); asserts nothing. ~6 renders + reads per frame.

--group may also be a head angle (yaw, pitch, roll, degrees, `reader.ANGLES`): then `pose only` is the head's
turn alone as the reader reads it on this avatar (tracker + render + reader, no face), and the std of `pose held`
(and of `brows only`, `eyes only`) is what the avatar's face (its brows, its eyes) alone makes the reader read as a
turn: the head never moves. Measured at fc30506 (60 frames, `--group pitch` / `--group yaw`): pitch,
astronaut_eileen_collins.png:lp_d0 full r 0.24, pose only 0.68, pose held std 1.17 deg, brows only 0.19, eyes
only 0.28 (the driver's pitch std is 0.64: the mouth moves the reader's pitch on this avatar twice as much as the
operator's head does); yaw, lp_s9_monalisa.jpg:tpsmm_driving full 0.60, pose only 0.44, pose held std 0.21 (not the
face: the reader's yaw there nets a ~2.5 deg turn against a ~2.3 deg line-of-sight shift, and the avatar's turn is
read at another balance); yaw, obama_official.jpg:lp_d18 full 0.77, pose only 0.96, pose held std 0.18 at r
-0.63, brows only 0.04, eyes only 0.06 (the mouth).

--regions (blendshape groups only) takes the reader's own reading apart by where on the face it comes from. The
reader scores its blendshapes from its landmarks alone (core/reader.BlendshapeModel), so per stream (driver and
`full` render) and frame, the stream's first landmarks are carried onto the frame by the 2D similarity that fits
the rigid landmarks (landmarks.RIGID_LANDMARKS), and each region's share is the group's score with that region's
landmarks taken from the frame minus the carried rest's score (`region_shares`; regions: `landmark_regions`).
Printed per region: its covariance with the driver's series per driver standard deviation (score units; the
regions' shares add up to about the stream's own, the model is not linear) and its r. Measured (e2157a4, lp_d18,
60 frames): the driver brows +0.129, lip corners +0.027, upper lip -0.049, lower lip +0.021, face oval -0.022, eyes
-0.015 (its whole series: std 0.097); renders: obama_speech.jpg brows +0.016, upper lip -0.135, face oval -0.026
(r -0.62), lp_s9_monalisa.jpg brows +0.024, upper lip -0.077 (r -0.43), astronaut_eileen_collins.png brows +0.003,
upper lip -0.067 (r +0.18), business_person.png brows +0.059, upper lip -0.092 (r +0.87), self brows +0.082, upper
lip -0.077 (r +0.91). So the lp_d18 crosses that read the brow backwards are not brows moving the wrong way (the
avatar's brows move as the operator's, 0.31 mm std, and every render's brow landmarks add to r): the reader reads
brows from the lips as well, and on those faces the avatar's opening mouth outweighs what it sees of the brows.

--brow-heights follows the brows themselves, reader-free where it can: the brows' height above the eye corners
(`expression.brow_height`, mm of the canonical head) in the tracker's landmarks (what the control carries), in the
driven template (`Driver.deformed_template` of the full control: what the avatar's brows are moved by), and in the
reader's landmarks of the driver and of every ablation's render with the pose taken out (`pose_free`: the tracker's
rule, an unweighted similarity fit of the rigid landmarks onto the stream's first frame's head frame). Printed
per stream: std (mm) and the covariance with the driver's reader height per its sd (mm; what of the operator's
brow move the reader sees on that stream), and the brow-hair Gaussians' share of the template's move (`hair_follow`).
Measured (brow36, 1dd1c98, 60 frames): lp_d18's brows move 0.34 mm (std) in the tracker and 0.33 in the template (r
+1.00, every portrait), the reader's on the driver 0.27 (r +0.90 with the tracker); the brow hair moves 0.82
(lp_s9_monalisa) to 1.11 of the template's move. The reader's pose-free brow height on the renders, per driver sd
(the driver's own +0.27): full self +0.33, business_person +0.35, obama_speech +0.01, lp_s9_monalisa -0.04,
lp_d9_woman_turned +0.07, trump_official +0.09, astronaut_eileen_collins +0.04; brows only +0.23, +0.22, +0.21, +0.16,
+0.20, +0.05, +0.06; no brows (mouth, lids, pose) +0.00, +0.11, -0.27, -0.21, -0.29, +0.14, -0.09. So where the
reader's brow r fails the avatar's brows move as the operator's (and the reader sees most of it where the face has
brows it can find: not on trump_official's light ones, nor astronaut_eileen_collins' under her fringe), and on
obama_speech, monalisa and lp_d9 the rest of the face moves the reader's own brow landmarks against them by as much.
tpsmm_driving: tracker 0.76, template 0.80, reader on the driver 0.80 (r +0.89); full renders +0.48 (business_person),
+0.23 (lp_d8_man_glasses). The brows' tilt (`brow_tilt`, inner ends above outer: what browInnerUp reads) differs: the
reader's on the driver moves 0.48 mm (std) and its own brow score with it (r +0.82); the tracker's 0.45 mm against it
(r -0.49; the template follows the tracker, r -0.42 with the reader's; the reader on business_person's render -0.20).
sadtalker: the tracker's tilt r +0.92 with the reader's. On tpsmm the two landmark models (the bundled face mesh,
FaceLandmarker) put the brows' ends in the image within a pixel of each other and the tilt is ~0.7 px (measured apart
from this script): the reader's 2D with the face mesh's depth keeps r +0.98, the face mesh's 2D with the reader's
depth -0.40. With the default tracker (the bundled face mesh) the avatar's brows on tpsmm tilt against the reader's.

--brow-heights also prints the brows' height above the eye corners as drawn in the image (`image_brow_height`: no
pose taken out, so a head pitch adds the brows' parallax over the eye corners) per stream, with its r against the
reader's group on the driver, and on the driver the tracker's own face mesh's image height against the reader's and
against the tracker's 3D (pose-free) height. Measured (brow39, fcead90, 60 frames; the reader's brow r):
lp_d18 crosses: on every avatar the brows as drawn follow the operator's (image height r with the driver's brow
+0.71 obama_speech ... +0.93 business_person; std 0.14-1.14 mm against the driver's 0.33), yet the brow score does
not, because the mouth moves it more: `mouth only` (brows, lids and pose held) r -0.88 obama_speech, -0.85
lp_s9_monalisa, -0.83 lp_d9_woman_turned, but +0.90 lp_d8_man_glasses, +0.62 business_person (+0.89
obama_official), std 0.04-0.06 against `brows only` 0.02-0.05. The operator opens his mouth as his frown eases
(reader jaw r +0.87 with his brow), and FaceLandmarker reads an avatar's opening mouth as a frown on some faces and
as a raise on others; the table's 0.90s on lp_d8 and business_person are that crosstalk too (lp_d8's `brows only`
+0.27). The reader's brow landmarks in its own image frame move as the template's (`region_shares` of the brows,
split into their mean shift and the rest: the driver +0.108 of +0.129 from the mean shift), and on a still frontal
avatar its brow score moves 0.04-0.15 per mm of brow height around lp_d18's frown (14.9 mm; astronaut 0.04,
trump / obama_official 0.05-0.06 near their browDown ceiling, obama_speech 0.12, business_person 0.12-0.15): none
is saturated by the rest height. tpsmm_driving: the tracker's 3D brow height r +0.47 with the reader's brow score
on the driver (the reader's own pose-free height agrees with the tracker, +0.89), its image height r +0.82: the
operator's score is brow + pitch (least squares over 60 frames: 0.070 per mm of the tracker's brow height -0.019
per degree of the reader's pitch, r 0.89), and the operator pitches as the brows rise (r +0.44). The avatar
reproduces both, each at its own face's rate: self +0.90 though its `brows only` reads +0.08; lp_d8_man_glasses
`pose only` +0.48, `brows only` -0.21 (the fringe over its brows), full +0.15. `brows only` on tpsmm: -0.21 to
+0.15 on the seven pairs measured (self +0.08, obama_speech -0.06, trump -0.04, astronaut +0.04, monalisa +0.15,
business +0.14), `mouth only` +0.32 to +0.61, `pose only` -0.45 to +0.58. So the reader's brow r on these
pairs is set by how each face turns the mouth and the pitch into a brow score, not by the avatar's brows.

--brow-sweep (instead of the ablations) reads the still avatar (the clip's first pose, no expression) with its brows
alone moved -4..+4 mm by blendshapes (`brow_sweep`): the reader's brow score per brow height on that face, where a
flat stretch says the reader is saturated there. Measured (brow39, lp_d18's pose; height mm: brow score):
obama_speech 17.9: -0.24, 14.9: -0.52, 12.9: -0.70; business_person 17.9: +0.05, 14.9: -0.25, 12.9: -0.46;
obama_official 17.9: -0.55, 14.9: -0.74, 12.9: -0.75 (browDown near its ceiling below ~15 mm); trump_official -0.23,
-0.50, -0.55; astronaut_eileen_collins +0.13, +0.01, -0.08 (her fringe: 0.04 per mm).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FOV_DEG = 12.0
REST_Q = np.array([1.0, 0.0, 0.0, 0.0], np.float32)


def _at_rest_eyes_mouth(c):
    """Lids at their neutral opening, no gaze, mouth closed, no landmarks (the lids follow the expression)."""
    return dict(eyelid_ratios=np.ones_like(np.asarray(c.eyelid_ratios, np.float32)), gaze=np.zeros((0, 2), np.float32),
                mouth_open=0.0, landmarks=np.zeros((0, 3), np.float32), blendshape_names=[],
                blendshapes=np.zeros(0, np.float32))


def ablate(name: str, c, held: tuple, forehead: np.ndarray):
    """The control `c` with ablation `name` (see the module docstring); held = (rotation, translation, gaze) of
    frame 0, forehead [L] bool: the brow and forehead landmarks."""
    ex = np.asarray(c.expression, np.float32)
    pose = dict(rotation=held[0], translation=held[1])
    if name == "full":
        return c
    if name == "gaze held":
        return replace(c, gaze=held[2])
    if name == "lids held":
        return replace(c, eyelid_ratios=np.ones_like(np.asarray(c.eyelid_ratios, np.float32)))
    if name == "pose held":
        return replace(c, **pose)
    if name == "brows only":
        return replace(c, **pose, **_at_rest_eyes_mouth(c), expression=np.where(forehead[:, None], ex, 0.0))
    if name == "no brows":
        return replace(c, expression=np.where(forehead[:, None], 0.0, ex))
    if name == "mouth only":
        lids = np.ones_like(np.asarray(c.eyelid_ratios, np.float32))
        return replace(c, **pose, eyelid_ratios=lids, gaze=np.zeros((0, 2), np.float32),
                       expression=np.where(forehead[:, None], 0.0, ex))
    if name == "eyes only":
        return replace(c, **pose, expression=np.zeros_like(ex), mouth_open=0.0, landmarks=np.zeros((0, 3), np.float32),
                       blendshape_names=[], blendshapes=np.zeros(0, np.float32))
    if name == "pose only":
        return replace(c, **_at_rest_eyes_mouth(c), expression=np.zeros_like(ex))
    raise ValueError(f"unknown ablation {name!r}")


def _value(frame, group: str) -> float:
    """The reader's `group` (a blendshape group, or a head angle in degrees) on one frame; NaN without a face."""
    if frame is None:
        return np.nan
    return frame.groups[group] if group in frame.groups else frame.angles_deg[group]


ABLATIONS = ("full", "pose held", "brows only", "no brows", "mouth only", "eyes only", "pose only", "gaze held",
             "lids held")


def landmark_regions() -> dict[str, np.ndarray]:
    """The reader's 478 landmarks in disjoint regions -> {name: [K] int64 indices}: brows (landmarks.BROW_R/L),
    eyes (contours, irises and their centres), lip corners (outer and inner), upper lip (landmarks.LIPS but the
    corners and the lower lip's), lower lip (LIP_LOWER_INNER + LIP_LOWER_OUTER), face oval (MediaPipe's
    FACEMESH_FACE_OVAL), rest (the others: nose, cheeks, forehead, chin)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    from gaussian_head_ros.core import landmarks as lmk

    lower = set(lmk.LIP_LOWER_INNER + lmk.LIP_LOWER_OUTER)
    corners = {lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L, lmk.MOUTH_CORNER_R_IN, lmk.MOUTH_CORNER_L_IN}
    parts = {"brows": set(lmk.BROW_R + lmk.BROW_L),
             "eyes": set(lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L + lmk.IRIS_R + lmk.IRIS_L)
             | {lmk.IRIS_CENTER_R, lmk.IRIS_CENTER_L},
             "lip corners": corners, "upper lip": set(lmk.LIPS) - lower - corners, "lower lip": lower,
             "face oval": {i for edge in FACEMESH_FACE_OVAL for i in edge}}
    if sum(len(v) for v in parts.values()) != len(set().union(*parts.values())):
        raise ValueError("landmark regions overlap")
    parts["rest"] = set(range(lmk.NUM_LANDMARKS)) - set().union(*parts.values())
    return {k: np.array(sorted(v), np.int64) for k, v in parts.items()}


def region_shares(landmarks_px: np.ndarray, size: tuple[int, int], group: str, model) -> dict[str, np.ndarray]:
    """[T, 478, 2+] one stream's reader landmarks (pixels, frames in order; the first is the rest), the image's
    (width, height), a blendshape group (core/reader.GROUPS) and a core/reader.BlendshapeModel -> {region: [T] the
    group's score with that region's landmarks from frame t on the rest carried onto frame t, minus the carried
    rest's own score}. The carrying: the least-squares 2D similarity (tracking.similarity_fit with z = 0) of the
    rest's landmarks.RIGID_LANDMARKS onto frame t's."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.reader import blendshape_groups
    from gaussian_head_ros.core.tracking import similarity_fit

    x = np.zeros(np.shape(landmarks_px)[:2] + (3,))
    x[..., :2] = np.asarray(landmarks_px, np.float64)[..., :2]
    rigid = list(lmk.RIGID_LANDMARKS)
    regions = landmark_regions()
    score = lambda p: blendshape_groups(model.scores(p, size))[group]
    out = {k: np.zeros(len(x)) for k in regions}
    for t, xt in enumerate(x):
        s, rot, tr, _ = similarity_fit(x[0, rigid], xt[rigid])
        rest = s * x[0] @ rot.T + tr
        base = score(rest)
        for k, idx in regions.items():
            p = rest.copy()
            p[idx] = xt[idx]
            out[k][t] = score(p) - base
    return out


def region_table(driver: np.ndarray, shares: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """[T] the driver's group series, `region_shares` of a stream -> {region: (covariance with the driver's series
    per driver standard deviation, score units; r, NaN where the share does not move)}."""
    d = np.asarray(driver, np.float64)
    z = (d - d.mean()) / max(float(d.std()), 1e-12)
    out = {}
    for k, v in shares.items():
        v = np.asarray(v, np.float64)
        r = float(np.corrcoef(d, v)[0, 1]) if v.std() > 0 else float("nan")
        out[k] = (round(float(np.mean((v - v.mean()) * z)), 4), round(r, 3))
    return out


HAIR_RADIUS_M = 0.005  # the brow hair (`hair_follow`): Gaussians within this of a brow landmark at rest (3D) ...
HAIR_DARKEST = 0.3  # ... the darkest share of them by luma


def pose_free(landmarks_px: np.ndarray, K: np.ndarray) -> np.ndarray:
    """[T, 478, 3] one stream's reader landmarks (pixels, z in pixel units, frames in order), [3, 3] intrinsics ->
    [T, 478, 3] every frame's landmarks in the head frame of the stream's first (facemesh.fit_head_frame: metres,
    outer eye corners CANONICAL_EYE_SPAN apart), carried there by the least-squares similarity of its rigid
    landmarks (landmarks.RIGID_LANDMARKS; the tracker's pose rule, unweighted)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.facemesh import fit_head_frame
    from gaussian_head_ros.core.tracking import similarity_fit

    x = np.asarray(landmarks_px, np.float64)
    ref = fit_head_frame(x[0], K).canonical.astype(np.float64)
    rigid = list(lmk.RIGID_LANDMARKS)
    out = np.empty_like(x)
    for t, p in enumerate(x):
        s, rot, tr, _ = similarity_fit(ref[rigid], p[rigid])
        out[t] = (p - tr) @ rot / s
    return out


def hair_follow(driver, low, high) -> float:
    """A drive.Driver and two FaceControls (brows lower, higher) -> the brow hair's vertical move between them (the
    darkest HAIR_DARKEST by luma of the Gaussians within HAIR_RADIUS_M of a brow landmark at rest, posed means, head
    frame) over the template brows' (landmarks.BROW_R / BROW_L) mean move: 1 when the hair follows the template.
    Give both controls the same head pose (the posed means turn with it)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.colour import LUMA

    brows = list(lmk.BROW_R + lmk.BROW_L)
    dist = np.min(np.linalg.norm(driver.means[:, None, :] - driver.verts[None, brows, :], axis=2), 1)
    near = np.flatnonzero(dist < HAIR_RADIUS_M)
    if not len(near):
        return float("nan")
    luma = driver.colors[near] @ LUMA
    hair = near[luma <= np.quantile(luma, HAIR_DARKEST)]
    moved = [float(driver.drive(c).means[hair, 1].mean()) for c in (low, high)]
    template = [float(driver.deformed_template(c)[1][brows, 1].mean()) for c in (low, high)]
    return (moved[1] - moved[0]) / (template[1] - template[0]) if template[1] != template[0] else float("nan")


def brow_tilt(x: np.ndarray) -> float:
    """[L >= 468, 3] head-frame landmarks (y down, metres) -> how far the brows' inner ends sit above their outer ends
    (metres; the lower contours' inner two points against their outer two, landmarks.BROW_LOWER_R / _L, both brows):
    the shape FaceLandmarker's browInnerUp and browDown read, where brow_height is their mean height."""
    x = np.asarray(x, np.float64)
    from gaussian_head_ros.core import landmarks as lmk

    inner = [i for c in (lmk.BROW_LOWER_R, lmk.BROW_LOWER_L) for i in c[-2:]]
    outer = [i for c in (lmk.BROW_LOWER_R, lmk.BROW_LOWER_L) for i in c[:2]]
    return float(np.mean(x[outer, 1]) - np.mean(x[inner, 1]))


def image_brow_height(landmarks_px: np.ndarray) -> np.ndarray:
    """[T, 478, 2+] one stream's landmarks in the image (pixels, y down) -> [T] the brows' mean height above the eye
    corners as drawn (landmarks.BROW_R / BROW_L vs landmarks.EYE_CORNERS, image y), over the outer eyes' distance in
    the image (landmarks.OUTER_EYE) x facemesh.CANONICAL_EYE_SPAN: metres of the canonical head, but in the image
    plane, so a head pitch adds the brows' parallax over the eye corners (the brows sit in front of them), which a
    3D height (`expression.brow_height` of pose-free landmarks) takes out."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.facemesh import CANONICAL_EYE_SPAN

    x = np.asarray(landmarks_px, np.float64)
    brows, corners = list(lmk.BROW_R + lmk.BROW_L), list(np.ravel(lmk.EYE_CORNERS))
    span = np.linalg.norm(x[:, lmk.OUTER_EYE[0], :2] - x[:, lmk.OUTER_EYE[1], :2], axis=1)
    return (x[:, corners, 1].mean(1) - x[:, brows, 1].mean(1)) / span * CANONICAL_EYE_SPAN


def height_table(driver_h: np.ndarray, h: np.ndarray) -> tuple[float, float]:
    """[T] the driver's brow heights, [T] a stream's (metres) -> (the stream's std, its covariance with the driver's
    per the driver's sd), mm."""
    d, h = np.asarray(driver_h, np.float64), np.asarray(h, np.float64)
    return (round(1000 * float(h.std()), 3),
            round(1000 * float(np.mean((h - h.mean()) * (d - d.mean())) / max(float(d.std()), 1e-12)), 3))


def clip_and_avatar(portrait: str, clip: str, max_frames: int):
    """PORTRAIT (file name or 'self'), clip stem, frames (0 = all) -> (the clip's frames, a drive.Driver of the
    portrait's mesh_fit avatar (self: the clip's frame 0), [3, 3] intrinsics: the FOV_DEG camera, or for self the
    source camera's perspective as `gaussian-head eval` renders it)."""
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import source_intrinsics
    from gaussian_head_ros.core.facemesh import FaceMesh, default_intrinsics
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(str(DATA / "driving" / f"{clip}.mp4"), max_frames=max_frames or None)
    src = frames[0].rgb if portrait == "self" else read_image(str(DATA / "portraits" / portrait))
    with get_reconstructor("mesh_fit") as rec:
        avatar = rec.reconstruct(src).avatar
    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h, FOV_DEG)
    if portrait == "self":
        with FaceMesh(static_image_mode=True, max_faces=1) as mesh:
            K = source_intrinsics(avatar, mesh.detect(src)[0].landmarks_px, w, h, FOV_DEG)
    return frames, Driver(avatar), K


def run_pair(portrait: str, clip: str, group: str, max_frames: int, reader_model: str, regions: bool = False,
             brow_heights: bool = False, ablations: tuple = ABLATIONS) -> dict:
    """One pair -> {pair, frames, std_driver, r[ablation], std[ablation], series} (+ regions: {stream: {region:
    (cov per driver sd, r)}} over the frames the reader reads in both the driver and the full render; + brow_heights:
    {tracker, template: (std mm, r with the tracker), hair_follow, streams: {driver / ablation: `height_table`}})."""
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.expression import forehead_points
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig

    frames, driver, K = clip_and_avatar(portrait, clip, max_frames)
    h, w = frames[0].rgb.shape[:2]
    controls = []
    with FaceTracker(TrackerConfig(fov_deg=FOV_DEG)) as tracker, FaceReader(reader_model) as reader:
        for f in frames:
            c = tracker.process(f.rgb, f.stamp_ns, K)
            if c is not None and c.face_detected:
                r = reader.read(f.rgb, f.stamp_ns)
                controls.append((f.stamp_ns, c, _value(r, group), None if r is None else r.landmarks_px))
    if not controls:
        raise ValueError(f"no face tracked in {clip}")
    held = (controls[0][1].rotation.copy(), controls[0][1].translation.copy(), controls[0][1].gaze.copy())
    c0 = controls[0][1]
    forehead = np.zeros(len(c0.expression), bool)
    forehead[forehead_points(np.asarray(c0.landmarks) - np.asarray(c0.expression))] = True
    drv = np.array([x[2] for x in controls])
    seen = {"driver": [x[3] for x in controls]}
    out = {"pair": f"{portrait}:{clip}", "group": group, "frames": len(controls),
           "std_driver": round(float(np.nanstd(drv)), 4), "r": {}, "std": {}, "series": {"driver": drv.tolist()}}
    for name in ablations:
        series = []
        with FaceReader(reader_model) as reader:  # a fresh reader per ablation (video mode tracks across frames)
            for stamp, c, _, _ in controls:
                img = render_control(driver, ablate(name, c, held, forehead), K, w, h).image
                r = reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), stamp)
                series.append(_value(r, group))
                seen.setdefault(name, []).append(None if r is None else r.landmarks_px)
        s = np.array(series)
        ok = np.isfinite(s) & np.isfinite(drv)
        good = ok.sum() > 2 and np.std(s[ok]) > 0 and np.std(drv[ok]) > 0
        out["r"][name] = round(float(np.corrcoef(drv[ok], s[ok])[0, 1]), 3) if good else None
        out["std"][name] = round(float(np.nanstd(s)), 4)
        out["series"][name] = s.tolist()
    if regions:
        from gaussian_head_ros.core.reader import BlendshapeModel

        both = [i for i in range(len(controls)) if seen["driver"][i] is not None and seen["full"][i] is not None]
        out["regions"] = {}
        with BlendshapeModel(reader_model) as model:
            for stream, px in (("driver", seen["driver"]), ("render", seen["full"])):
                shares = region_shares(np.stack([px[i] for i in both]), (w, h), group, model)
                out["regions"][stream] = region_table(drv[both], shares)
    if brow_heights:
        mesh_px = []  # the tracker's face mesh's own landmarks on the driver, in the image
        with FaceMesh(static_image_mode=False, max_faces=1) as mesh:
            stamps = {x[0] for x in controls}
            for f in frames:
                if f.stamp_ns in stamps:
                    found = mesh.detect(f.rgb)
                    mesh_px.append(found[0].landmarks_px if found else None)
        out["brow_heights"] = _brow_heights(driver, controls, seen, held, forehead, K, drv, mesh_px)
    return out


def _brow_heights(driver, controls, seen: dict, held: tuple, forehead: np.ndarray, K: np.ndarray,
                  group_series: np.ndarray, mesh_px: list) -> dict:
    """run_pair's brow_heights entry (the module docstring's --brow-heights); group_series [T] the reader's group on
    the driver, mesh_px [T] the tracker's face mesh's landmarks on the driver (pixels; None: no face)."""
    from gaussian_head_ros.core.expression import brow_height

    tracker = np.array([brow_height(c.landmarks) for _, c, _, _ in controls])
    shapes = [driver.deformed_template(c)[0] for _, c, _, _ in controls]
    template = np.array([brow_height(x) for x in shapes])
    order = np.argsort(tracker)
    low, high = (ablate("brows only", controls[i][1], held, forehead) for i in (order[0], order[-1]))
    res = {"tracker": round(1000 * float(tracker.std()), 3),
           "template": (round(1000 * float(template.std()), 3), round(float(np.corrcoef(tracker, template)[0, 1]), 3)),
           "hair_follow": round(hair_follow(driver, low, high), 3), "streams": {}}
    ok = [i for i in range(len(controls)) if all(px[i] is not None for px in seen.values())]
    if len(ok) < 3:
        return res
    carried = {k: pose_free(np.stack([px[i] for i in ok]), K) for k, px in seen.items()}
    heights = {k: np.array([brow_height(x) for x in v]) for k, v in carried.items()}
    res["reader_vs_tracker_r"] = round(float(np.corrcoef(heights["driver"], tracker[ok])[0, 1]), 3)
    res["streams"] = {k: height_table(heights["driver"], h) for k, h in heights.items()}
    g = np.asarray(group_series, np.float64)[ok]
    r = lambda a, b: round(float(np.corrcoef(a, b)[0, 1]), 3) if np.std(a) > 0 and np.std(b) > 0 else None
    drawn = {k: image_brow_height(np.stack([px[i] for i in ok])) for k, px in seen.items()}
    res["image"] = {k: (round(1000 * float(h.std()), 3), r(h, g)) for k, h in drawn.items()}
    both = [j for j, i in enumerate(ok) if mesh_px[i] is not None]
    if len(both) > 2:
        mesh_h = image_brow_height(np.stack([mesh_px[ok[j]] for j in both]))
        res["image_mesh"] = {"r_reader_image": r(mesh_h, drawn["driver"][both]),
                             "r_tracker": r(tracker[[ok[j] for j in both]], mesh_h), "r_group": r(mesh_h, g[both]),
                             "tracker_r_group": r(tracker[ok], g)}
    tilt = np.array([brow_tilt(x) for x in carried["driver"]])
    r = lambda a: round(float(np.corrcoef(tilt, a)[0, 1]), 3) if np.std(a) > 0 else None
    res["tilt"] = {"driver": round(1000 * float(tilt.std()), 3),
                   "tracker": (round(1000 * float(np.std([brow_tilt(controls[i][1].landmarks) for i in ok])), 3),
                               r(np.array([brow_tilt(controls[i][1].landmarks) for i in ok]))),
                   "template": r(np.array([brow_tilt(shapes[i]) for i in ok])),
                   "full": r(np.array([brow_tilt(x) for x in carried["full"]]))}
    return res


SWEEP_MM = (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0)  # --brow-sweep's brow shifts (mm, y down: < 0 raised)


def brow_sweep(portrait: str, clip: str, reader_model: str, shifts_mm=SWEEP_MM) -> dict:
    """The reader's brow reading of a still avatar as its brows alone move (--brow-sweep): the avatar of `portrait`
    (as run_pair makes it) in the head pose of `clip`'s first tracked frame, no expression, lids and gaze at rest,
    each brow shift dy of shifts_mm (mm, y down: < 0 raised) given as blendshapes only (browDownLeft / Right for a
    lowering, browInnerUp for a raise, each dy / expression.BROW_DROP_PER_DOWN_M or BROW_RISE_PER_INNER_UP_M, so
    `expression.blendshape_expression` moves the template's brows by dy), read by a fresh FaceLandmarker in image
    mode. -> {pair, height_mm [S] (the driven template's `expression.brow_height`), brow [S] (the reader's group),
    browDown [S] (mean of left, right), browInnerUp [S]}; NaN where the reader finds no face."""
    from gaussian_head_ros.core import expression as ex
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig

    frames, driver, K = clip_and_avatar(portrait, clip, 30)
    h, w = frames[0].rgb.shape[:2]
    c0 = None
    with FaceTracker(TrackerConfig(fov_deg=FOV_DEG)) as tracker:
        for f in frames:
            c = tracker.process(f.rgb, f.stamp_ns, K)
            if c is not None and c.face_detected:
                c0 = c
                break
    if c0 is None:
        raise ValueError(f"no face tracked in the first {len(frames)} frames of {clip}")
    still = replace(c0, **_at_rest_eyes_mouth(c0), expression=np.zeros_like(np.asarray(c0.expression, np.float32)))
    out = {"pair": f"{portrait}:{clip}", "shifts_mm": list(shifts_mm), "height_mm": [], "brow": [], "browDown": [],
           "browInnerUp": []}
    for dy in shifts_mm:
        names, per = (["browDownLeft", "browDownRight"], ex.BROW_DROP_PER_DOWN_M) if dy >= 0 else \
            (["browInnerUp"], ex.BROW_RISE_PER_INNER_UP_M)
        c = replace(still, blendshape_names=names, blendshapes=np.full(len(names), abs(dy) / 1000 / per, np.float32))
        img = render_control(driver, c, K, w, h).image
        with FaceReader(reader_model, video=False) as reader:
            r = reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
        b = {} if r is None else r.blendshapes
        out["height_mm"].append(round(1000 * ex.brow_height(driver.deformed_template(c)[0]), 2))
        out["brow"].append(np.nan if r is None else round(r.groups["brow"], 4))
        out["browDown"].append(np.nan if r is None else round((b["browDownLeft"] + b["browDownRight"]) / 2, 4))
        out["browInnerUp"].append(np.nan if r is None else round(b["browInnerUp"], 4))
    return out


def append_json_line(path: str, result: dict) -> None:
    """Append one pair's result as a JSON line to the file at `path` (made when missing)."""
    with open(path, "a") as f:
        f.write(json.dumps(result) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", help="PORTRAIT:CLIP (portrait file name or 'self', clip stem)")
    ap.add_argument("--group", default="brow", help="reader group or head angle (core/reader.py GROUPS, ANGLES)")
    ap.add_argument("--frames", type=int, default=60, help="frames per clip (0 = all)")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--ablations", default="", help="comma-separated subset of the ablations (full is always run)")
    ap.add_argument("--out", default="", help="append each pair's JSON line (with the series) to this file")
    ap.add_argument("--brow-heights", action="store_true", help="the brows' height above the eye corners in the "
                    "tracker, the driven template, the brow hair and the reader's pose-free landmarks of every stream")
    ap.add_argument("--brow-sweep", action="store_true", help="instead of the ablations: the reader's brow scores "
                    "on the still avatar (the clip's first pose) as its brows alone move -4..+4 mm (brow_sweep)")
    ap.add_argument("--regions", action="store_true", help="take the reader's group apart by landmark region on the "
                    "driver and the full render (region_shares; blendshape groups only)")
    a = ap.parse_args(argv)
    ablations = ABLATIONS
    if a.ablations:
        names = [n.strip() for n in a.ablations.split(",") if n.strip()]
        unknown = [n for n in names if n not in ABLATIONS]
        if unknown:
            ap.error(f"unknown ablation(s) {', '.join(unknown)}: choose from {', '.join(ABLATIONS)}")
        ablations = ("full",) + tuple(n for n in names if n != "full")
    from gaussian_head_ros.core.reader import ANGLES, GROUPS

    if a.group not in GROUPS + ANGLES:
        ap.error(f"--group must be one of {', '.join(GROUPS + ANGLES)}")
    if a.regions and a.group not in GROUPS:
        ap.error("--regions takes a blendshape group (the reader's head angles do not come from its blendshapes)")
    if not DATA.is_dir():
        print(f"no data folder {DATA}", file=sys.stderr)
        return 2
    if a.brow_sweep:
        for spec in a.pairs:
            portrait, _, clip = spec.partition(":")
            if not clip:
                ap.error(f"pair {spec!r}: expected PORTRAIT:CLIP")
            res = brow_sweep(portrait, clip, a.reader)
            print(res["pair"][:44].ljust(44), "height mm : brow (browDown / browInnerUp):  ", "  ".join(
                f"{hm:.1f}: {g:+.2f} ({d:.2f}/{u:.2f})" for hm, g, d, u in
                zip(res["height_mm"], res["brow"], res["browDown"], res["browInnerUp"])), flush=True)
            if a.out:
                append_json_line(a.out, res)
        return 0
    print("pair".ljust(44), "std_drv", "  ".join(f"{n:>16s}" for n in ablations), "   (r / render std)")
    for spec in a.pairs:
        portrait, _, clip = spec.partition(":")
        if not clip:
            ap.error(f"pair {spec!r}: expected PORTRAIT:CLIP")
        res = run_pair(portrait, clip, a.group, a.frames, a.reader, a.regions, a.brow_heights, ablations)
        cells = [f"{'  –  ' if res['r'][n] is None else format(res['r'][n], '+.2f')} / {res['std'][n]:.3f}".rjust(16)
                 for n in ablations]
        print(res["pair"][:44].ljust(44), f"{res['std_driver']:.3f}  ", "  ".join(cells), flush=True)
        for stream, table in res.get("regions", {}).items():
            print(f"  regions, {stream}:".ljust(24), "  ".join(f"{k} {c:+.3f} ({r:+.2f})" for k, (c, r) in table.items()),
                  "   (cov per driver sd (r))", flush=True)
        if "brow_heights" in res:
            b = res["brow_heights"]
            print(f"  brow heights (mm): tracker std {b['tracker']:.2f}, template std {b['template'][0]:.2f} (r "
                  f"{b['template'][1]:+.2f} with the tracker), brow hair {b['hair_follow']:.2f} of the template's move, "
                  f"reader on the driver r {b.get('reader_vs_tracker_r', float('nan')):+.2f} with the tracker", flush=True)
            print("  reader's pose-free brow height:".ljust(24), "  ".join(f"{k} {sd:.2f} ({c:+.2f})" for k, (sd, c)
                                                                      in b["streams"].items()),
                  "   (std (cov per driver sd), mm)", flush=True)
            if "image" in b:
                cells = [f"{k} {sd:.2f} ({'  –  ' if c is None else format(c, '+.2f')})"
                         for k, (sd, c) in b["image"].items()]
                print("  reader's brow height in the image:".ljust(24), "  ".join(cells),
                      f"   (std mm, r with the driver's {res['group']})", flush=True)
            m = b.get("image_mesh")
            if m:
                print(f"  on the driver: the face mesh's brow height in the image r {m['r_reader_image']} with the "
                      f"reader's, {m['r_group']} with the reader's {res['group']}; the tracker's (3D, pose-free) r "
                      f"{m['r_tracker']} with the face mesh's in the image, {m['tracker_r_group']} with the reader's "
                      f"{res['group']}", flush=True)
            t = b.get("tilt")
            if t:
                print(f"  brow tilt (inner ends above outer, mm): reader on the driver std {t['driver']:.2f}; tracker std "
                      f"{t['tracker'][0]:.2f}, r with the driver's {t['tracker'][1]}; template r {t['template']}; reader "
                      f"on the full render r {t['full']}", flush=True)
        if a.out:
            append_json_line(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
