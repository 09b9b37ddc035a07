#!/usr/bin/env python3
"""Whether the avatars' lips read shut when the operator's are: the acceptance reader's lip gap on the render against
the driven template's.

    python scripts/closed_lips.py [--clip lp_d18.mp4] [--frames 0,22,26,30,34,38] [--portraits a,b]
                                  [--avatar-dir DIR] [--real-pose] [--crops OUT.png]

The clip is tracked (FaceTracker, the bundled face mesh, through a default_intrinsics camera of --fov-deg); each
portrait's avatar (mesh_fit, or DIR/av_<stem>.ply from `gaussian-head reconstruct`) is driven by the chosen frames'
controls and drawn at 1 m, facing the camera (--real-pose: the tracked head rotation), 512 x 512, --fov-deg. The
reader (core/reader.py's FaceLandmarker, IMAGE mode) reads each render; its landmarks are put in the head frame
(facemesh.fit_head_frame: outer eye corners 0.09 m apart) and the inner lips' gap (13-14, millimetres, + apart) printed
beside the driven template's (Driver.deformed_template, scaled alike) and the reader's jawOpen. --crops writes 2x crops
of the mouth round the driven template's inner lips (rows: portraits, columns: frames).
Measurement only; asserts nothing.

Session 58 (lips58), lp_d18 frames 20-40 (the operator drops the chin ~11 mm with the lips shut and pursed: the
template's mouth 36 mm wide instead of 58, its inner lips at most 0.7 mm apart on every avatar), the reader's gap on
the render with the tracked head rotation (--real-pose) at frames 0 / 22 / 26 / 30 / 34 / 38 (mm):
  astronaut_eileen_collins 0.9 / 5.1 / 7.8 / 6.3 / 3.1 / 1.1, trump_official 1.2 / 8.6 / 8.9 / 8.3 / 6.8 / 6.2,
  lp_d9_woman_turned 0.2 / 7.5 / 5.6 / 7.6 / 5.3 / 3.8; business_person -0.2 .. 0.5, obama_official 0.5 .. 1.4;
  at frame 30 obama_speech 4.9 (1.7 at rest), the other four <= 0.5.
Facing the camera, frame 30: lp_d9 10.9, trump 8.6, astronaut 5.5, obama_speech 1.7, obama_official 1.0, the other
four <= 0.5. The operator's own frame 30 reads 0.6 mm (jawOpen 0.42, mouthClose 0.31).
What the render shows is shut: the lips' Gaussians follow the template (the line where they meet lies on the driven
inner contours at 3x), no mouth interior shows (part-coloured renders: face only, real pose too), no lip Gaussian
changes colour between frames 0 and 30 (the driver's colour maps: none over 0.02 on either lip of lp_d9; 18 / 26
upper-lip ones on astronaut / trump), and the meeting line is as dark against the lips at frame 30 as at rest (line /
lip luma within 0.04 on the three). The reading is the reader's, of the whole mouth (image edits of the facing render
at frame 30, gap mm lp_d9 / astronaut / trump): blurring any 10 px patch of the mouth region moves it by < 1.7 mm; a
darker meeting line (x 0.85, 1 px) 8.5 / 3.6 / 6.5, darker still (x 0.5-0.3, 2 px) 11-12 / 7-8 / 7-8, a lighter one
15-17 / 9-11 / 10-11; the corners' dark lifted: no better; the pixels within 3-5 px below the line lighter than the
lower lip below them (obama_speech's pale streak there, astronaut's highlights) set to it: 11.5 / 6.5-9.4 / 8.7-9.3;
the teeth-like lip Gaussians (65 on astronaut, 34 on trump) in the lips' colour 4.5 / 9.4 (astronaut / trump); the
mouth not narrowed at all (x displacement 0) 9.1 / 4.3 / 8.3; the lips shortened to 6 / 8 mm 12.4 / 5.8 / 8.5;
business_person's lips (warped on the template's lip landmarks) pasted in 6.6 / 2.8 / 7.7, two_children_multiface's
13.3 / 2.4 / 3.0; lp_d9's, astronaut's and trump's pasted into business_person 1.0 / 2.0 / 4.3; 1-3 px shifts and
0.94-1.03 rescales of the same render: lp_d9 2.8-10.9, astronaut 3.9-6.1, trump 6.2-8.6 (business_person 0.1-0.3).
Those that read open are the photos whose lips were parted over teeth and are closed at rest by stretching the photo's
thin lips over the opening (the reader on the photo, upper lip / gap / lower lip mm -> the rest template's upper /
lower: astronaut 3.8 / 9.0 / 8.2 -> 7.1 / 11.9, trump 2.0 / 9.2 / 8.3 -> 5.0 / 11.0, obama_speech 7.8 / 23.7 / 11.2 ->
7.7 / 14.2; lp_d9's scream re-textured by reconstruct/lips.py, upper 5.5 -> 10.5); the parted photo whose rest lips
kept their own heights reads shut (obama_official 5.2 / 13.7 / 10.3 -> 5.0 / 9.1).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SIZE = 512  # render width and height, pixels
DISTANCE_M = 1.0  # the head's distance from the camera


def lip_gap_mm(canonical: np.ndarray) -> float:
    """[L >= 468, 3] landmarks in the head frame (y down, outer eye corners 0.09 m apart) -> the inner lips' gap at
    the middle (lower 14 less upper 13), millimetres."""
    from gaussian_head_ros.core import landmarks as lmk

    x = np.asarray(canonical, np.float64)
    return 1000.0 * float(x[lmk.LOWER_LIP_IN, 1] - x[lmk.UPPER_LIP_IN, 1])


def tracked_controls(clip: Path, last: int, fov_deg: float) -> list:
    """The clip's first last + 1 frames tracked -> [last + 1] FaceControl (None where no face was found)."""
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(str(clip), max_frames=last + 1)
    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h, fov_deg)
    with FaceTracker(TrackerConfig(fov_deg=fov_deg)) as tracker:
        return [tracker.process(f.rgb, f.stamp_ns, K) for f in frames]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default=str(DATA / "driving" / "lp_d18.mp4"), help="driving clip")
    ap.add_argument("--frames", default="0,22,26,30,34,38", help="comma-separated frame indices")
    ap.add_argument("--portraits", default="", help="comma-separated portrait stems (default: all in ../shared)")
    ap.add_argument("--avatar-dir", default="", help="load DIR/av_<stem>.ply instead of reconstructing")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--fov-deg", type=float, default=12.0, help="the tracking and the render camera's field of view")
    ap.add_argument("--real-pose", action="store_true", help="draw the tracked head rotation (default: facing)")
    ap.add_argument("--crops", default="", help="write 2x mouth crops here (PNG)")
    args = ap.parse_args(argv)

    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.core.control import quat_to_matrix
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics, fit_head_frame
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.render.base import to_rgb8

    idx = [int(v) for v in args.frames.split(",")]
    photos = sorted((DATA / "portraits").iterdir())
    if args.portraits:
        photos = [p for p in photos if p.stem in args.portraits.split(",")]
    controls = tracked_controls(Path(args.clip), max(idx), args.fov_deg)
    K = default_intrinsics(SIZE, SIZE, args.fov_deg)
    rows = []
    with FaceReader(args.reader, video=False) as reader:
        for photo in photos:
            if args.avatar_dir:
                avatar = load_ply(str(Path(args.avatar_dir) / f"av_{photo.stem}.ply"))
            else:
                with get_reconstructor("mesh_fit") as rec:
                    avatar = rec.reconstruct(read_image(str(photo))).avatar
            driver = Driver(avatar)
            cells, crops = [], []
            for i in idx:
                c = controls[i]
                if c is None:
                    cells.append(f"{i}: no face")
                    continue
                rot = c.rotation if args.real_pose else np.array([1, 0, 0, 0], np.float32)
                c = replace(c, rotation=rot, translation=np.array([0, 0, DISTANCE_M], np.float32))
                img = to_rgb8(render_control(driver, c, K, SIZE, SIZE).image)
                t_m, _ = driver.deformed_template(c)  # [V, 3] head frame, metres
                t = np.asarray(t_m, np.float64) * 0.09 / np.linalg.norm(t_m[33] - t_m[263])
                f = reader.read(img)
                if f is None:
                    cells.append(f"{i}: unread  tmpl {lip_gap_mm(t):5.2f}")
                    continue
                cells.append(f"{i}: read {lip_gap_mm(fit_head_frame(f.landmarks_px, K).canonical):5.2f} "
                             f"tmpl {lip_gap_mm(t):5.2f} jaw {f.blendshapes['jawOpen']:.2f}")
                # the crop is centred on the driven template's upper inner lip (13) as the camera sees it
                r_head = quat_to_matrix(np.asarray(rot, np.float64))
                q = (np.asarray(t_m[13], np.float64) @ r_head.T + [0, 0, DISTANCE_M]) @ K.T
                cy, cx = int(q[1] / q[2]), int(q[0] / q[2])
                crops.append(img[max(cy - 40, 0):max(cy - 40, 0) + 80, max(cx - 60, 0):max(cx - 60, 0) + 120])
            print(f"{photo.stem[:24]:24s} " + " | ".join(cells), flush=True)
            if crops and all(x.shape == crops[0].shape for x in crops):
                rows.append(np.hstack(crops))
    if args.crops and rows:
        import cv2

        rows = [r for r in rows if r.shape == rows[0].shape]
        big = np.repeat(np.repeat(np.vstack(rows), 2, 0), 2, 1)
        cv2.imwrite(args.crops, cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
