#!/usr/bin/env python3
"""Does the tracked head pitch follow the operator's mouth? (pitch37)

    python scripts/pitch_follow.py [CLIP ...] [--frames 120] [--reader FACE_LANDMARKER.task]

Per ../shared driving clip (default: all four), the first --frames frames are tracked as `gaussian-head eval`
tracks them (core/tracking.py, bundled face mesh, 12 deg camera, smoothing on) and read by MediaPipe's
FaceLandmarker (core/reader.py, video mode: the reader of the living-face table). Printed per clip:

- r_pitch: the tracker's pitch (control.euler_deg, degrees) against the reader's pitch on the driver;
- the residual (tracker pitch - reader pitch, each about its own mean, degrees): its std and its r with the
  tracker's mouth_open. A pose fit that takes jaw-moved points for rigid nods with the mouth: a residual that
  follows mouth_open;
- the tracker's and the reader's pitch std, and the tracker's yaw r for scale;
- what the pose fit does to the skull: `skull` the RMS stray of the upper face's outline, forehead, temples, eye
  corners and nose bridge (SKULL) from the operator's neutral in the head frame (mm; what a head that moves in the
  image against the avatar's shows as), and `eyes` the eye corners' mean vertical stray's r with mouth_open (the
  eyes dropping in the head frame as the mouth opens: the gaze and lids are measured against them).

Measured (pitch37, 120 frames, lp_d0 / lp_d18 / sadtalker / tpsmm; lp_d0 has 78): the tracker at 3ff1873 pitch r
0.497 / 0.858 / 0.988 / 0.909, residual r with mouth_open -0.70 / +0.06 / -0.37 / -0.14, its pitch r with mouth_open
on lp_d0 -0.75 (the reader's 0.00). Fitted instead on MediaPipe's own head-pose basis with its weights less the 6
points `expression.neutralize` moves (3d2b8c2, reverted): pitch r 0.795 / 0.883 / 0.990 / 0.945, residual r -0.53 /
-0.01 / -0.35 / -0.22, lp_d0 pitch r with mouth_open -0.36; but that basis weighs the nose sides 129/358 and cheeks
205/425 most, which rise with a smile, so the skull strayed further (skull 0.98 / 1.21 / 2.02 / 2.60 -> 1.88 / 1.69 /
2.32 / 2.26 mm) and the eyes dropped with the mouth (eyes r lp_d0 +0.54 -> +0.92, sadtalker +0.16 -> +0.50): in the
living-face table (60 frames) self PSNR lp_d0 27.47 -> 26.85, lp_d18 31.46 -> 31.03 dB, gaze_v r mean 0.809 -> 0.720,
pitch r 0.838 -> 0.846. A fit on the skull's points alone (SKULL with the stream's RigidityWeights) keeps it nearest
the neutral (skull 0.85 / 1.01 / 1.45 / 1.45 mm, eyes r lp_d0 +0.28) and pitches with lp_d0's mouth even more (its
residual's r -0.80, lp_d18 -0.39): in MediaPipe's mesh the whole upper face moves with that opening, and the reader,
on its cheek-weighted basis, does not read it as pitch. In the table: self PSNR +0.09 / +0.16 / +0.06 / -0.09 dB,
gaze_v r 0.809 -> 0.833, but pitch r 0.838 -> 0.835, yaw 0.905 -> 0.899, gaze_h 0.717 -> 0.692 (not taken).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLIPS = ("lp_d0", "lp_d18", "sadtalker_WDA_KatieHill_000", "tpsmm_driving")
# the skull's points in the face mesh: forehead and hairline, temples, the outline at the ears, eye corners, nose bridge
SKULL = (10, 54, 67, 284, 297, 109, 338, 21, 251, 162, 389, 127, 356, 234, 454, 33, 133, 263, 362, 168, 6, 151, 9)
EYE_CORNERS = (33, 133, 263, 362)


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 1e-9 and np.std(b) > 1e-9 else float("nan")


def follow(clip: str, frames: int, reader_model: str) -> dict:
    """The tracker's and the reader's head angles and the tracker's mouth_open on `clip`'s first `frames` frames ->
    the figures the module notes list."""
    from gaussian_head_ros.core.control import euler_deg
    from gaussian_head_ros.core.evaluate import EvalConfig
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    fov = EvalConfig().fov_deg
    rows = []
    with FaceTracker(TrackerConfig(fov_deg=fov)) as tracker, FaceReader(reader_model) as reader:
        for f in read_frames(str(DATA / "driving" / f"{clip}.mp4"), frames):
            h, w = f.rgb.shape[:2]
            c = tracker.process(f.rgb, f.stamp_ns, default_intrinsics(w, h, fov))
            seen = reader.read(f.rgb, f.stamp_ns)
            if c is None or not c.face_detected or seen is None:
                continue
            t, r = euler_deg(c.rotation), seen.angles_deg
            stray = (np.asarray(c.landmarks, np.float64) - tracker.neutral) * 1e3  # [478, 3] head frame, mm
            skull = float(np.mean(np.sum(stray[list(SKULL)] ** 2, 1)))
            rows.append((t["pitch"], r["pitch"], t["yaw"], r["yaw"], c.mouth_open, skull,
                         float(np.mean(stray[list(EYE_CORNERS), 1]))))
    a = np.asarray(rows, np.float64)
    pitch, rpitch, yaw, ryaw, mouth, skull, eye_y = a.T
    resid = (pitch - pitch.mean()) - (rpitch - rpitch.mean())
    return {"clip": clip, "frames": len(a), "r_pitch": _r(pitch, rpitch), "resid_sd": float(resid.std()),
            "r_resid_mouth": _r(resid, mouth), "sd_pitch": float(pitch.std()), "sd_reader": float(rpitch.std()),
            "r_yaw": _r(yaw, ryaw), "skull_mm": float(np.sqrt(np.mean(skull))), "r_eyes_mouth": _r(eye_y, mouth)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", default=list(CLIPS), help="../shared driving clip stems")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    args = ap.parse_args(argv)
    if not Path(args.reader).is_file():
        print(f"reader model {args.reader} not found (give --reader FACE_LANDMARKER.task)", file=sys.stderr)
        return 2
    out = []
    for clip in args.clips:
        d = follow(clip, args.frames, args.reader)
        out.append(d)
        print(f"{clip:30s} n {d['frames']:3d}  pitch r {d['r_pitch']:+.3f}  residual sd {d['resid_sd']:.3f} deg, "
              f"r with mouth_open {d['r_resid_mouth']:+.3f}  pitch sd tracker {d['sd_pitch']:.3f} reader "
              f"{d['sd_reader']:.3f}  yaw r {d['r_yaw']:+.3f}  skull {d['skull_mm']:.2f} mm  eyes r "
              f"{d['r_eyes_mouth']:+.2f}", flush=True)
    print(f"{'mean':30s}        pitch r {np.mean([d['r_pitch'] for d in out]):+.3f}  |residual r| "
          f"{np.mean([abs(d['r_resid_mouth']) for d in out]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
