#!/usr/bin/env python3
"""How far the render's visible mouth follows the driver's, as the acceptance reader sees both.

    python scripts/mouth_follow.py --video CLIP.mp4 [--photo PORTRAIT] [--reader FACE_LANDMARKER.task]
                                   [--max-frames 60] [--stride 2] [--json OUT] [--swap] [--video-mode]

The clip drives the avatar of --photo (default: the clip's frame 0, self-reenactment, drawn through the photo's own
camera as `gaussian-head eval` does) through FaceTracker, as the living-face table does. On every --stride-th frame
the reader (core/reader.py's FaceLandmarker, IMAGE mode: each frame on its own; --video-mode: as the table) reads the
driver frame and the render; its own landmarks are put in the head frame (facemesh.fit_head_frame: canonical metres,
outer eye corners 0.09 m apart) and the mouth measured there as core/expression.py measures it: width (outer corners
61-291), corner drop (the corners' mean height below the lips' centre; negative: lifted, a smile), lip gap (inner lips
13-14), the corners' and the chin's (152) height below the nose tip. The driven template's own width, drop and lip gap
(what the control asked for) are printed too.

Printed per frame and summed up per measure: Pearson r and least-squares slope of the render's reading against
the driver's (slope 1: the visible mouth moves as much as the driver's; the reader's smile reads this geometry),
and the reader's smile on both. Session 14 (smile14): self tpsmm_driving width slope 0.59 / drop 0.69 (0.67 /
0.60 since session 15 tracks a self clip through the photo's camera, as evaluate() does),
lp_s9_monalisa x sadtalker 0.47 / 0.53 while the template followed the tracker 1:1: the visible corners lag the
template's (the teeth and the photo's creases stay where the photo had them). Measurement only; asserts nothing.

--swap takes the reader's jawOpen apart (core/reader.BlendshapeModel: the reader's own blendshape model run on
landmarks without an image). Beside the render's reading it scores two made-up faces per frame: the avatar's rest
landmarks (the render's first read frame) plus the operator's motion since the driver's first read frame, and the
operator's rest plus the avatar's motion (the motion carried over by the 2D similarity that maps the driver's first
landmarks onto the render's). Their r and slope against the driver's jawOpen say whether the reading is lost in the
avatar's motion (operator rest + avatar motion low) or in the avatar's face itself (avatar rest + operator motion
low). --video-mode reads as the living-face table does (two video-mode readers, every frame) and gives the table's
render figures. Session 15 (jaw15), business_person, 60 frames, --video-mode, jawOpen slope render / avatar rest +
operator motion / operator rest + avatar motion: x lp_d0 0.08 / 0.04 / 1.28 (its face reads shut, its motion is
whole), x lp_d18 0.17 / 0.46 / 0.67 (both); x tpsmm_driving r 0.537 / 0.811 / 0.703 (its motion). Session 40, x
lp_d18, 60 frames, --stride 2 (IMAGE mode): the chin below the nose slope 0.73 (business_person), 0.70
(two_children_multiface), 0.42 (lp_d9_woman_turned), and business_person's jawOpen slope 0.16 (--swap): at frame 34
(jaw dropped, lips pursed shut; the driver's jawOpen 0.56) business_person's driven template drops its chin 10.8 mm
and the reader's chin on the render 8.5 mm, yet its jawOpen reads 0.07 (lp_d9, whose shut rest lips part as the jaw
drops: 16.5 mm, 0.69): with the lips shut the reader wants more than the chin.
Session 58 (jaw58, main 99b8dd6), the nine ../shared portraits x four clips, 60 frames, --stride 2, --swap: the mean
over the portraits of the jawOpen slope render / avatar rest + operator motion / operator rest + avatar motion is
sadtalker_WDA_KatieHill 0.40 / 0.34 / 0.97, lp_d0 0.40 / 0.28 / 1.20, tpsmm_driving 0.55 / 0.93 / 0.59, lp_d18
0.64 / 0.92 / 0.62. On the first two the avatar's motion, read on the operator's face, is whole, and the operator's
own motion, read on the avatar's face, reads as low as the render (business_person x lp_d0: 0.06 / 0.03 / 1.44): the
reader scores those faces' jaws low whatever moves them. Their photos read so too (lp_d0's motion on the photo's own
landmarks: business_person 0.07, astronaut_eileen_collins 0.10, trump_official 0.18, two_children_multiface 0.19; on
the avatars' rest renders 0.04 / 0.09 / 0.16 / 0.13), so it is the person, not the reconstruction. On tpsmm_driving
and lp_d18 the loss is in the motion: the bundled face mesh tracker sees 0.70 of the reader's inner-lip gap and 0.77
of its chin-below-nose motion on tpsmm_driving's frames (FaceLandmarker as the tracker's model: 0.91 / 0.87), and the
driven template follows the control (business_person x tpsmm_driving chin below the nose: render 0.78, template 0.80
of the driver's).
Session 60 (jaw60, main 94faf56): tpsmm_driving's cross pairs lose their jaw r (living-face table, 60 frames: 0.47-0.71)
on its frames 44-58, a jaw dropped behind nearly shut, pursed lips ("oo"). Over frames 0-43 seven of the nine
portraits' r is 0.73-0.86; on 44-58 the driver reads jawOpen 0.25 (mean), the renders 0.02-0.18 (lp_d9_woman_turned
0.45) and the self render 0.15. There the tracker's chin (9.4-11.2 mm lower than at frame 14, head frame) is the
reader's own on the driver within 0.84-1.23 per frame (8.6-12.9 mm, frames 44-57), the driven Gaussians follow the
template 1:1 (lp_d8_man_glasses and business_person, frames 14 -> 50: 9.7 of the template chin's 9.8 mm), and with
--video-mode the reader's chin below the nose on the render moves 5.7-7.0 mm (lp_d8) / 6.5-8.1 mm (business_person)
on frames 47-52 against the driver's 9.1-12.9; drawn without the head's turn, 2.5 / 7.1 of the template's 8.6 mm at
frame 50. With the template's inner lips parted twice as far (the reader's gap on the render then 2.4-4.7 % of the
eye span, the driver's 3.5-7.7 %) its jawOpen there stays 0.02-0.09.
Session 61 (oo61, main a660894, the table's cross path: tracker and render through the clip's 12 deg camera, video-mode
readers, main's avatars of the nine portraits): on tpsmm_driving's frames 45-58 the driver's lips are nearly shut, not
a round opening drawn thin. The reader's inner-lip gap on the driver is 1.1-4.5 mm (a 90 mm eye span) at frames
46-58 (9.1 mm at frame 43, the one round "o"); the tracker's, which the template takes 1:1, 0.4-4.9 mm (the nine
avatars' templates at frame 49: 3.5-4.9 mm). The render draws its template: the reader's landmarks on the render lie
within 1-3 px of the driven template's projected ones (business_person, frames 10-58: chin, lips 13/14/17, nose
tip), its gap 70-85 % of the template's (frames 42-52) and the opening grey / the teeth, as the driver's at 49-52. What
the reader's jawOpen wants is the lower face: on business_person's render landmarks (BlendshapeModel, frames 46 / 50 /
54) the inner and outer lower lip with the jaw 2 / 4 / 6 mm lower read 0.10-0.15 / 0.19-0.24 / 0.27-0.32 (driver
0.18-0.33, render 0.01-0.03); the jaw alone 0.03-0.12 at 6 mm; the middle of the inner lower lip alone (a round
opening's drop) 0.09-0.14 at 4 mm, 0.12-0.15 at 6. A turn of the head 4 deg either way at frames 44-59 leaves the
render's jawOpen there at 0.016-0.044 (business_person, lp_d8_man_glasses). The driver's lips and jaw put on the
render's landmarks read 0.12-0.22 there: the rest is the avatar's face. What the render does not draw as its template
is the pucker's width: from frame 10 to frames 46 / 52 the templates' mouths (outer corners 61-291) narrow 10-11.5 mm
and the driver's 9-10 mm as the reader reads it, the renders' 6.5-8 mm on six portraits but 0-1 mm on obama_official,
3.5 on trump_official and 0.6-4.8 on lp_d8_man_glasses (the subject's left corner read 10-12 px outside the template's):
their photos' corners (a grin's, a pout's) stay where the photo had them. With the lips' landmarks moved to the
template's, lp_d8_man_glasses reads jawOpen 0.09 -> 0.34 / 0.02 -> 0.13 / 0.02 -> 0.09 (frames 46 / 50 / 54) and
mouthPucker 0.53-0.78 -> 0.97-0.99; business_person (which narrows) 0.02 -> 0.05-0.08.
Session 62 (jaw62, main 84bca35, whole sadtalker_WDA_KatieHill clip, 200 frames, the living-face table's series and
--max-frames 0 --video-mode --swap): the crosses' jaw r (0.62-0.82, self 0.889) is lost on frames 60-199 (astronaut /
business / lp_d8 / trump / two_children: 0.86 / 0.84 / 0.93 / 0.88 / 0.72 on frames 0-59, 0.57-0.65 after), where the
driver talks at small openings (jawOpen < 0.25 on 185 of 200 frames; lips parted 10-12 mm over the teeth, the chin
within a few mm) and those five renders read at their floor (< 0.03 on 40-84 % of the frames; slope 0.15-0.27). The
reading is monotone but convex there: Spearman 0.836 / 0.815 against Pearson 0.638 / 0.644 (business_person /
two_children_multiface); business_person's render by the driver's jawOpen bins 0-.05-.1-.15-.2-.3-.6: 0.004 0.005 0.012
0.020 0.032 0.114 (self 0.043 0.094 0.142 0.204 0.239 0.415). --swap, render / avatar rest + operator motion / operator
rest + avatar motion: business_person 0.638 / 0.773 (slope 0.044) / 0.835, astronaut 0.643 / 0.774 (0.151) / 0.862,
two_children 0.644 / 0.762 (0.125) / 0.895, trump 0.713 / 0.792 (0.304) / 0.878: the avatars' motion, on the operator's
face, reads about as well as the self pair's render; the operator's motion, on the avatars' faces, reads low and flat.
No tracking losses (0 untracked, 0 frames without a face). Not the turn: the same controls drawn facing the camera
(rotation identity) read r 0.608 / 0.686 / 0.621 / 0.819 against 0.638 / 0.651 / 0.623 / 0.767 at the clip's pose
(business_person, astronaut, lp_d9_woman_turned, obama_official). Not the teeth: business_person with the lower row at
the lower lip (lower_teeth_show_share 0) 0.637, with the lower row turning with the whole jaw 0.628. But the cross
avatars' jawOpen depends on the head's pitch where the self avatar's (made from the clip's frame 0) does not: one
control (frame 160) drawn with the head turned about its x axis by -15 .. +5 deg (the reader's pitch -5 .. +9) reads
0.28-0.32 on the self avatar, 0.21 -> 0.51 on lp_d9_woman_turned, 0.19 -> 0.38 on obama_official,
0.05 -> 0.13 on astronaut (frame 105: self 0.18-0.30, lp_d9 0.12 -> 0.43, obama 0.07 -> 0.26); at the clip's pose the
residual of lp_d9's / obama_official's reading (after gain and offset) follows the pitch at r 0.72 / 0.51 (+0.105 /
+0.034 jawOpen per 10 deg), facing the camera at 0.00 / -0.21. The tracker's One Euro filter costs the floor-bound
crosses a little (controls tracked without smoothing: business_person 0.638 -> 0.721, two_children 0.695 -> 0.715,
astronaut 0.651 -> 0.676, lp_d8 0.670 -> 0.693, same render path; still-face jitter of the expression x2.3) and d_cutoff
4 Hz less (0.693 / 0.660 / 0.682, jitter +5-9 %): not changed.
Session 63 (jaw63, main ec6e7eb, the table's cross path: tracker and render through EvalConfig's camera, two video-mode
readers; the lead's s63 avatars; tpsmm_driving 60 frames reproduces /tmp/lf/s63's nine cross jaw r to 3 decimals).
The look is not what the reader misses. 4x mouth crops, sadtalker_WDA_KatieHill frames 60-190: the operator's small
openings (jawOpen 0.12-0.24 at frames 80 / 150 / 160 / 170) show the upper teeth over a black cavity, the lower teeth
behind the lower lip; business_person shows grey upper teeth over the lower row, two_children_multiface the red tongue
right under the upper edge, no black. Drawn with the lower row and the tongue in the cavity's dark (colours only,
geometry unchanged) they look like the operator's, and read 0.02-0.03 at frames 150 / 160 (operator 0.20 / 0.22):
whole clip, nine crosses' mean jaw r 0.701 -> 0.705 (business_person 0.645 -> 0.639, two_children 0.657 -> 0.678,
lp_d9_woman_turned 0.608 -> 0.653, lp_s9_monalisa 0.754 -> 0.719); tpsmm_driving 60 frames 0.639 -> 0.646, single
pairs -0.066 (astronaut) .. +0.086 (trump_official); the upper row 1.35x brighter 0.639 -> 0.640. The reader's jawOpen
is its blendshape model on its own landmarks, and on sadtalker the render's landmarks move as the operator's (head
frame over the eye span, slope / r of the render's against the driver's, whole clip): lip gap 0.97 / 0.93, chin below
the nose 1.19 / 0.94, lower lip below the nose 1.08 / 0.95 (business_person), 1.08 / 0.95, 1.13 / 0.93, 1.11 / 0.94
(two_children), 0.95 / 0.93, 1.08 / 0.94, 0.94 / 0.94 (obama_official); lp_d9_woman_turned loses its chin and lower lip
(0.70 / 0.78, 0.59 / 0.72). What reads low there is business_person's and two_children's face: the operator's rest
with the avatar's motion read on BlendshapeModel 0.835 / 0.895, the avatar's rest with the operator's motion 0.776 /
0.765 (slope 0.046 / 0.126). No one part of the rest face does it: the operator's rest with business_person's points
above the lip line 0.802 (slope 0.110), below 0.961; its upper lip alone 0.929, the nose-to-lip band 0.962, eyes to
nose 0.928, above the eyes 0.992. business_person's render reads the opening as the upper lip rising: frame 0 -> 160
mouthUpperUpLeft 0.175 -> 0.477 and jawOpen 0.011 -> 0.046 (operator 0.001 -> 0.015, 0.198 -> 0.219). Reshaped
motion does not straighten it: the avatar's rest with the operator's motion (eyes and nose aligned) below the lip line
x1.5 reads r 0.818 -> 0.675 on business_person, the upper lip held still and its rise added to the lower lip 0.401
(slope 0.046 -> 0.272); lp_d9 0.914 -> 0.926 / 0.604, obama_official 0.956 -> 0.907 / 0.555: the slope rises, r falls
(a smile's lip rise becomes jaw). On tpsmm_driving the faces read the operator's motion (the avatar's rest with it:
0.79-0.95 on eight portraits, two_children 0.685) and the avatars' motion loses it: the operator's motion with one part
the avatar's, lower lip 0.73-0.88, chin and jaw line 0.69-0.93, upper lip 0.86-0.95, all three 0.51-0.83; the inner
lips' gap at frames 30-39 is 11.7-14.4 mm as the reader reads the operator, 7.3-9.0 in the driven template (the
bundled face mesh's tracking, session 58's 0.70) and 7.4-9.2 on business_person's render; chin below the nose, frame
14 -> frames 44-57, operator 76.6 -> 85-90 mm, render 73.6 -> 80-81 (slope 0.55). Tracking without the One Euro
filter (jaw62's) raises all nine sadtalker crosses, mean 0.701 -> 0.738 (business_person 0.645 -> 0.727), mostly the
landmarks' filter (landmarks raw 0.706 / 0.692 / 0.694 on business_person / two_children / astronaut, pose raw
0.655 / 0.689 / 0.644, the points below the nose alone at 6 Hz 0.665 / 0.645 / 0.667, raw 0.698 / 0.642), but not
tpsmm_driving (mean 0.639 -> 0.632 unsmoothed, 0.640 landmarks raw, lp_s9_monalisa 0.567 -> 0.509 / 0.520): not
changed. Measurement only; nothing in the driver changed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MEASURES = ("width_mm", "drop_mm", "gap_mm", "corners_below_nose_mm", "chin_below_nose_mm")


def mouth_geometry(x: np.ndarray) -> np.ndarray:
    """[L >= 468, 3] canonical landmarks (head frame, y down, metres) -> [4] mouth width, corner drop below the
    lips' centre (negative: lifted), inner lip gap, corners' and chin's height below the nose tip; millimetres."""
    from gaussian_head_ros.core import landmarks as lmk

    x = np.asarray(x, np.float64)
    cr, cl = lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L
    centre = 0.5 * (x[lmk.UPPER_LIP_IN] + x[lmk.LOWER_LIP_IN])
    corner_y = 0.5 * (x[cr, 1] + x[cl, 1])
    gap = x[lmk.LOWER_LIP_IN, 1] - x[lmk.UPPER_LIP_IN, 1]
    return 1000.0 * np.array([x[cl, 0] - x[cr, 0], corner_y - centre[1], gap, corner_y - x[lmk.NOSE_TIP, 1],
                              x[lmk.CHIN, 1] - x[lmk.NOSE_TIP, 1]])


def swap_jaw(driver_px: np.ndarray, render_px: np.ndarray, size_driver, size_render, model) -> dict:
    """[T, 478, 2+] reader landmarks on the driver and on the render (pixels, frames in order, the first = rest),
    the two images' (width, height) and a core/reader.BlendshapeModel -> {name: [T] jawOpen}: 'render' (the
    model on the render's own landmarks), 'avatar_rest_operator_motion', 'operator_rest_avatar_motion'. The
    motion is carried from one face to the other by the 2D similarity (rotation, scale; least squares over all
    478 points) mapping the driver's first landmarks onto the render's."""
    d, r = np.asarray(driver_px, np.float64)[..., :2], np.asarray(render_px, np.float64)[..., :2]
    a, b = d[0] - d[0].mean(0), r[0] - r[0].mean(0)
    u, sv, vt = np.linalg.svd(a.T @ b)
    rot = (u @ vt).T
    scale = sv.sum() / (a ** 2).sum()
    jaw = lambda x, size: model.scores(x, size)["jawOpen"]
    return {"render": [jaw(x, size_render) for x in r],
            "avatar_rest_operator_motion": [jaw(r[0] + scale * (x - d[0]) @ rot.T, size_render) for x in d],
            "operator_rest_avatar_motion": [jaw(d[0] + (x - r[0]) @ rot / scale, size_driver) for x in r]}


def follow(video: str, photo: str | None, reader_path: str, max_frames: int, stride: int, swap: bool = False,
           video_mode: bool = False) -> dict:
    """Drive the avatar of `photo` (None: the clip's frame 0) with `video` -> per-frame readings and the summary
    (with `swap`: also `swap_jaw`'s series and their r / slope against the driver's jawOpen). video_mode: two
    video-mode readers, one per stream, on every frame (stride ignored), as the living-face table reads."""
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import EvalConfig, default_intrinsics, render_control, source_intrinsics
    from gaussian_head_ros.core.facemesh import FaceMesh, fit_head_frame
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.metrics import correlation, slope
    from gaussian_head_ros.core.reader import FaceReader, blendshape_groups
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.render.base import to_rgb8
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(video, max_frames=max_frames or None)
    h, w = frames[0].rgb.shape[:2]
    fov = EvalConfig().fov_deg
    K = default_intrinsics(w, h, fov)
    source = frames[0].rgb if photo is None else read_image(photo)
    with get_reconstructor("mesh_fit") as rec:
        avatar = rec.reconstruct(source).avatar
    K_render = K
    if photo is None:  # self: the photo's own camera, as evaluate() draws frame 0
        with FaceMesh(static_image_mode=True, max_faces=1) as fm:
            K_render = source_intrinsics(avatar, fm.detect(source)[0].landmarks_px, w, h, fov)
        K = K_render  # evaluate() tracks the clip through that camera too
    driver = Driver(avatar)
    rows, px = [], []
    stride = 1 if video_mode else stride
    with FaceTracker(TrackerConfig(fov_deg=fov)) as tracker, FaceReader(reader_path, video=video_mode) as reader, \
            FaceReader(reader_path, video=video_mode) as render_reader:
        for i, f in enumerate(frames):
            control = tracker.process(f.rgb, f.stamp_ns, K)
            if i % stride:
                continue
            img = to_rgb8(render_control(driver, control, K_render, w, h).image)
            stamp = f.stamp_ns if video_mode else None
            a, b = reader.read(f.rgb, stamp), render_reader.read(img, stamp)
            if a is None or b is None:
                continue
            template, _ = driver.deformed_template(control)
            rows.append({"frame": i,
                         "driver": mouth_geometry(fit_head_frame(a.landmarks_px, K).canonical).tolist(),
                         "render": mouth_geometry(fit_head_frame(b.landmarks_px, K_render).canonical).tolist(),
                         "template": mouth_geometry(template)[:3].tolist(),
                         "smile_driver": blendshape_groups(a.blendshapes)["smile"],
                         "smile_render": blendshape_groups(b.blendshapes)["smile"],
                         "jaw_driver": a.blendshapes["jawOpen"], "jaw_render": b.blendshapes["jawOpen"]})
            if swap:
                px.append((a.landmarks_px, b.landmarks_px, img.shape[1::-1]))
    if len(rows) < 3:
        raise ValueError(f"{video}: the reader found a face on fewer than 3 frame pairs")
    def moving(a, b):  # r and slope only where both series move (else None: nothing to compare)
        return np.std(a) > 1e-9 and np.std(b) > 1e-9

    d, r = np.array([x["driver"] for x in rows]), np.array([x["render"] for x in rows])
    summary = {}
    for k, name in enumerate(MEASURES):
        ok = moving(d[:, k], r[:, k])
        summary[name] = {"r": correlation(d[:, k], r[:, k]) if ok else None,
                         "slope": slope(d[:, k], r[:, k]) if ok else None}
    s_d, s_r = np.array([x["smile_driver"] for x in rows]), np.array([x["smile_render"] for x in rows])
    summary["smile_r"] = correlation(s_d, s_r) if moving(s_d, s_r) else None
    j_d = np.array([x["jaw_driver"] for x in rows])
    if swap:
        from gaussian_head_ros.core.reader import BlendshapeModel

        with BlendshapeModel(reader_path) as model:
            series = swap_jaw(np.stack([p[0] for p in px]), np.stack([p[1] for p in px]), (w, h), px[0][2], model)
        for name, v in series.items():
            for x, value in zip(rows, v):
                x["jaw_" + name] = value
            ok = moving(j_d, np.asarray(v))
            summary["jaw_" + name] = {"r": correlation(j_d, np.asarray(v)) if ok else None,
                                      "slope": slope(j_d, np.asarray(v)) if ok else None}
    return {"video": video, "photo": photo, "frames": rows, "summary": summary}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", required=True, help="driving clip")
    ap.add_argument("--photo", default=None, help="portrait to drive (default: the clip's frame 0)")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--max-frames", type=int, default=60, help="frames of the clip (0 = all)")
    ap.add_argument("--stride", type=int, default=2, help="read every N-th frame (the tracker sees all)")
    ap.add_argument("--video-mode", action="store_true", help="read every frame with video-mode readers (one per "
                    "stream), as the living-face table does; the default reads each frame on its own (IMAGE mode)")
    ap.add_argument("--json", default=None, help="write the readings and the summary here")
    ap.add_argument("--swap", action="store_true", help="take the reader's jawOpen apart: avatar rest + operator "
                    "motion, operator rest + avatar motion (swap_jaw)")
    args = ap.parse_args(argv)
    res = follow(args.video, args.photo, args.reader, args.max_frames, max(1, args.stride), args.swap, args.video_mode)
    print("frame | driver: width drop gap below-nose (mm) smile | render: same | template: width drop gap")
    for x in res["frames"]:
        print(f"{x['frame']:4d} | {np.round(x['driver'], 1)} {x['smile_driver']:.3f} | {np.round(x['render'], 1)} "
              f"{x['smile_render']:.3f} | {np.round(x['template'], 1)}")
    for name in MEASURES:
        s = res["summary"][name]
        print(f"{name:22s} render vs driver: r {s['r'] if s['r'] is None else round(s['r'], 3)}, "
              f"slope {s['slope'] if s['slope'] is None else round(s['slope'], 3)}")
    print(f"smile (image mode) r {res['summary']['smile_r']}")
    for name in ("render", "avatar_rest_operator_motion", "operator_rest_avatar_motion"):
        s = res["summary"].get("jaw_" + name)
        if s is not None:
            print(f"jawOpen {name:28s} vs driver: r {s['r'] if s['r'] is None else round(s['r'], 3)}, "
                  f"slope {s['slope'] if s['slope'] is None else round(s['slope'], 3)}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
