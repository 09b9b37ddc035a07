#!/usr/bin/env python3
"""Where the tracker loses the operator's brows: the face mesh's landmarks, the control, the driven template.

    python scripts/brow_follow.py [CLIP ...] [--frames 60] [--reader FACE_LANDMARKER.task]
                                  [--tracker-model TASK] [--avatar AVATAR.ply]

Per ../shared driving clip (default: all four), its first --frames frames are read by the reader (core/reader.py's
FaceLandmarker, video mode, as the living-face table reads the driver) and by the tracker's own face mesh
(core/facemesh.FaceMesh, the bundled model FaceTracker uses), and tracked as `gaussian-head eval` tracks them
(FaceTracker, 12 deg camera, smoothing on). Each landmark sequence of the image (reader, mesh) is rigid-aligned, a
similarity fit per frame onto the sequence's mean over the rigid landmarks less the forehead's midline (10, 151, 9,
168: in the face mesh they rise 0.9-1.7 mm per mm of inner-brow rise on lp_d18, sadtalker and tpsmm), in mm of a
90 mm outer eye span; the control's landmarks are the tracker's head frame (pose removed) in the same mm. Measured:
`dist` the inner brows' distance (55-285 and 107-336, mean; the brows drawing together in a frown), `inner` their
height above the eye corners, `brows` the height of all brow points (expression.BROW_POINTS) above them. Printed per
source: the std (mm) and Pearson r and least-squares slope against the reader's. Rows: the face mesh (what the
tracker sees), the control's landmarks (after the pose fit, the One Euro filter), the neutral's std (what the running
neutral moves: the operator's frown or raise stays in the expression when it does not), --tracker-model: the
control of a tracker running that FaceLandmarker .task instead of the bundled mesh, --avatar: the template that
avatar's Driver deforms with the control (its brows move by the control's expression).

Measured (brow59, main d74b489, 60 frames; r / slope against the reader): lp_d18 (the only clip that frowns) dist
(reader std 0.69 mm): face mesh -0.15 / -0.09, control -0.01 / -0.01, business_person's template 0.09 / 0.03, a
tracker on the reader's own FaceLandmarker model 0.89 / 1.61 (not an independent judge then); brows: face mesh 0.88 /
0.88, control 0.94 / 0.78, template 0.94 / 0.75; the neutral's brows std 0.01 mm, its dist 0.08 mm. sadtalker: dist
mesh 0.78 / 1.43, template 0.83 / 1.36; brows 0.89 / 0.94, 0.91 / 0.84. tpsmm_driving: dist 0.24 / 0.16, -0.02 /
-0.01; brows 0.88 / 1.08, 0.90 / 0.88. lp_d0 (brows barely move: reader std 0.22 mm): dist 0.81 / 1.39, 0.79 / 0.96
(its running neutral takes 0.41 of it: std 0.45 mm). The face mesh does not see lp_d18's brows drawing together;
what it sees of their height reaches the control and the template (whose brows move by the control's expression
exactly: Driver's displacement equals it at the inner brows).
Other landmark sources (same run): --tracker-model face_landmarker_v2_with_blendshapes.task (../shared: an older
FaceLandmarker landmark network beside the reader's blendshape model) lp_d18 dist 0.79 / 0.48, brows 0.96 / 1.10,
but sadtalker dist 0.28 / 0.26, brows 0.74 / 0.64; through evaluate() (lp_d18 x the nine portraits, 60 frames, as
the living-face table) the mean reader brow r 0.385 -> 0.611 with gaze_h 0.605 -> -0.346, pitch 0.928 -> 0.616, yaw
0.887 -> 0.834, smile 0.927 -> 0.892 (the same with its blendshapes taken out of the control). The wheel's face mesh
without attention (refine_landmarks False) sees less: lp_d18 dist 0.67 / 0.20, brows 0.08 / 0.03. Measurement only; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLIPS = ("lp_d18", "lp_d0", "sadtalker_WDA_KatieHill_000", "tpsmm_driving")
FOREHEAD_MIDLINE = (10, 151, 9, 168)  # rise with the brows in the face mesh (module notes): left out of the alignment
INNER_BROWS = ((55, 285), (107, 336))  # the inner ends of the brows' lower and upper contours (right, left)
EYE_SPAN_MM = 90.0


def aligned_mm(seq: np.ndarray) -> np.ndarray:
    """[T, 478, 3] image landmarks (pixels) -> [T, 478, 3] each frame fitted (similarity) onto the sequence's mean over
    the rigid landmarks less FOREHEAD_MIDLINE (twice: the mean of the fitted frames the second time), in mm of an
    outer eye span of EYE_SPAN_MM."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.tracking import similarity_fit

    rigid = [i for i in lmk.RIGID_LANDMARKS if i not in FOREHEAD_MIDLINE]
    out, ref = seq, seq.mean(0)
    for _ in range(2):
        fits = [similarity_fit(x[rigid], ref[rigid]) for x in seq]
        out = np.array([s * x @ r.T + t for x, (s, r, t, _) in zip(seq, fits)])
        ref = out.mean(0)
    return out * (EYE_SPAN_MM / np.linalg.norm(ref[lmk.OUTER_EYE[0]] - ref[lmk.OUTER_EYE[1]]))


def brow_measures(x: np.ndarray) -> dict[str, np.ndarray]:
    """[T, 478, 3] head-frame landmarks (mm, y down) -> per frame `dist`, `inner`, `brows` (module notes), mm."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.expression import BROW_POINTS

    eyes = x[:, list(lmk.EYE_CORNERS[0] + lmk.EYE_CORNERS[1]), 1].mean(1)
    inner = [i for pair in INNER_BROWS for i in pair]
    return {"dist": np.mean([np.abs(x[:, a, 0] - x[:, b, 0]) for a, b in INNER_BROWS], 0),
            "inner": eyes - x[:, inner, 1].mean(1), "brows": eyes - x[:, list(BROW_POINTS), 1].mean(1)}


def _track(frames, K, model_path: str = "", avatar: str = ""):
    """The clip's controls from FaceTracker as evaluate() makes them -> ([T, 478, 3] control landmarks mm, [T, 478, 3]
    the neutral at each frame mm, [T, 478, 3] the avatar's driven template mm or None)."""
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig

    lm, neutral = [], []
    with FaceTracker(TrackerConfig(fov_deg=12.0, model_path=model_path)) as tracker:
        controls = [tracker.process(f.rgb, f.stamp_ns, K) for f in frames]
    for c in controls:
        lm.append(np.asarray(c.landmarks, np.float64) * 1e3)
        neutral.append(lm[-1] - np.asarray(c.expression, np.float64) * 1e3)
    template = None
    if avatar:
        from gaussian_head_ros.core.avatar import load_ply
        from gaussian_head_ros.core.drive import Driver

        driver = Driver(load_ply(avatar))
        template = np.array([driver.deformed_template(c)[0][:len(lm[0])] * 1e3 for c in controls])
    return np.array(lm), np.array(neutral), template


def read_clip(clip: str, frames_max: int, reader_model: str):
    """The first frames_max frames of the ../shared driving clip `clip` read by the reader (FaceReader, video mode) and
    by the tracker's face mesh (FaceMesh, tracking) -> (frames [VideoFrame], the reader's ReaderFrame per frame, [T,
    478, 3] the face mesh's landmarks, pixels). Raises ValueError naming the frame where either finds no face."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(str(DATA / "driving" / f"{clip}.mp4"), frames_max)
    read, seen = [], []
    with FaceReader(reader_model) as reader, FaceMesh(static_image_mode=False, max_faces=1) as mesh:
        for f in frames:
            r, m = reader.read(f.rgb, f.stamp_ns), mesh.detect(f.rgb)
            if r is None or not m:
                raise ValueError(f"{clip}: no face at {f.stamp_ns} ns (reader {r is not None}, mesh {bool(m)})")
            read.append(r)
            seen.append(m[0].landmarks_px.astype(np.float64))
    return frames, read, np.array(seen)


def follow(clip: str, frames_max: int, reader_model: str, tracker_model: str = "", avatar: str = "") -> list[tuple]:
    """One clip -> rows (source, {measure: (std mm, r, slope)}) against the reader's landmarks (module notes)."""
    from gaussian_head_ros.core.facemesh import default_intrinsics

    frames, read, seen = read_clip(clip, frames_max, reader_model)
    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h, 12.0)
    ref = brow_measures(aligned_mm(np.array([r.landmarks_px.astype(np.float64) for r in read])))
    lm, neutral, template = _track(frames, K, avatar=avatar)
    sources = [("reader", ref), ("face mesh", brow_measures(aligned_mm(seen))),
               ("control", brow_measures(lm)), ("neutral", brow_measures(neutral))]
    if template is not None:
        sources.append(("template", brow_measures(template)))
    if tracker_model:
        sources.append((f"control ({Path(tracker_model).name})", brow_measures(_track(frames, K, tracker_model)[0])))

    def versus(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
        if np.std(a) < 1e-9:
            return float(np.std(a)), float("nan"), 0.0
        return float(np.std(a)), float(np.corrcoef(a, b)[0, 1]), float(np.polyfit(b, a, 1)[0])

    return [(name, {k: versus(v[k], ref[k]) for k in ref}) for name, v in sources]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", default=list(CLIPS), help="../shared driving clip stems")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--tracker-model", default="", help="also track with this FaceLandmarker .task (model_path)")
    ap.add_argument("--avatar", default="", help="also drive this avatar's template (.ply) with the controls")
    args = ap.parse_args(argv)
    if not Path(args.reader).is_file():
        print(f"reader model {args.reader} not found (give --reader FACE_LANDMARKER.task)", file=sys.stderr)
        return 2
    for clip in args.clips:
        print(f"{clip} ({args.frames} frames): std mm, r and slope against the reader", flush=True)
        for name, m in follow(clip, args.frames, args.reader, args.tracker_model, args.avatar):
            print(f"  {name:34s} " + "  ".join(f"{k} {s:.2f} r {r:+.2f} slope {sl:+.2f}" for k, (s, r, sl) in m.items()),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
