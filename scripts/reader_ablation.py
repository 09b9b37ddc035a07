#!/usr/bin/env python3
"""Which part of the control makes a reader group's r on a (portrait, clip) pair (issue 11).

    python scripts/reader_ablation.py PORTRAIT:CLIP [...] [--group brow|pitch|...] [--frames 60] [--out FILE.jsonl]

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
- eyes only: pose held, no expression, the tracked lid ratios and gaze,
- pose only: no expression, lids and gaze at rest, the tracked head pose.

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
    """The control `c` with ablation `name` (see the module docstring); held = (rotation, translation) of frame 0,
    forehead [L] bool: the brow and forehead landmarks."""
    ex = np.asarray(c.expression, np.float32)
    pose = dict(rotation=held[0], translation=held[1])
    if name == "full":
        return c
    if name == "pose held":
        return replace(c, **pose)
    if name == "brows only":
        return replace(c, **pose, **_at_rest_eyes_mouth(c), expression=np.where(forehead[:, None], ex, 0.0))
    if name == "no brows":
        return replace(c, expression=np.where(forehead[:, None], 0.0, ex))
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


ABLATIONS = ("full", "pose held", "brows only", "no brows", "eyes only", "pose only")


def run_pair(portrait: str, clip: str, group: str, max_frames: int, reader_model: str) -> dict:
    """One pair -> {pair, frames, std_driver, r[ablation], std[ablation], series}."""
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import render_control, source_intrinsics
    from gaussian_head_ros.core.expression import forehead_points
    from gaussian_head_ros.core.facemesh import FaceMesh, default_intrinsics
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(str(DATA / "driving" / f"{clip}.mp4"), max_frames=max_frames or None)
    src = frames[0].rgb if portrait == "self" else read_image(str(DATA / "portraits" / portrait))
    with get_reconstructor("mesh_fit") as rec:
        avatar = rec.reconstruct(src).avatar
    driver = Driver(avatar)
    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h, FOV_DEG)
    if portrait == "self":
        with FaceMesh(static_image_mode=True, max_faces=1) as mesh:
            K = source_intrinsics(avatar, mesh.detect(src)[0].landmarks_px, w, h, FOV_DEG)
    controls = []
    with FaceTracker(TrackerConfig(fov_deg=FOV_DEG)) as tracker, FaceReader(reader_model) as reader:
        for f in frames:
            c = tracker.process(f.rgb, f.stamp_ns, K)
            if c is not None and c.face_detected:
                r = reader.read(f.rgb, f.stamp_ns)
                controls.append((f.stamp_ns, c, _value(r, group)))
    if not controls:
        raise ValueError(f"no face tracked in {clip}")
    held = (controls[0][1].rotation.copy(), controls[0][1].translation.copy())
    c0 = controls[0][1]
    forehead = np.zeros(len(c0.expression), bool)
    forehead[forehead_points(np.asarray(c0.landmarks) - np.asarray(c0.expression))] = True
    drv = np.array([x[2] for x in controls])
    out = {"pair": f"{portrait}:{clip}", "group": group, "frames": len(controls),
           "std_driver": round(float(np.nanstd(drv)), 4), "r": {}, "std": {}, "series": {"driver": drv.tolist()}}
    for name in ABLATIONS:
        series = []
        with FaceReader(reader_model) as reader:  # a fresh reader per ablation (video mode tracks across frames)
            for stamp, c, _ in controls:
                img = render_control(driver, ablate(name, c, held, forehead), K, w, h).image
                r = reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), stamp)
                series.append(_value(r, group))
        s = np.array(series)
        ok = np.isfinite(s) & np.isfinite(drv)
        good = ok.sum() > 2 and np.std(s[ok]) > 0 and np.std(drv[ok]) > 0
        out["r"][name] = round(float(np.corrcoef(drv[ok], s[ok])[0, 1]), 3) if good else None
        out["std"][name] = round(float(np.nanstd(s)), 4)
        out["series"][name] = s.tolist()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", help="PORTRAIT:CLIP (portrait file name or 'self', clip stem)")
    ap.add_argument("--group", default="brow", help="reader group or head angle (core/reader.py GROUPS, ANGLES)")
    ap.add_argument("--frames", type=int, default=60, help="frames per clip (0 = all)")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--out", default="", help="append each pair's JSON line (with the series) to this file")
    a = ap.parse_args(argv)
    from gaussian_head_ros.core.reader import ANGLES, GROUPS

    if a.group not in GROUPS + ANGLES:
        ap.error(f"--group must be one of {', '.join(GROUPS + ANGLES)}")
    if not DATA.is_dir():
        print(f"no data folder {DATA}", file=sys.stderr)
        return 2
    print("pair".ljust(44), "std_drv", "  ".join(f"{n:>16s}" for n in ABLATIONS), "   (r / render std)")
    for spec in a.pairs:
        portrait, _, clip = spec.partition(":")
        if not clip:
            ap.error(f"pair {spec!r}: expected PORTRAIT:CLIP")
        res = run_pair(portrait, clip, a.group, a.frames, a.reader)
        cells = [f"{'  –  ' if res['r'][n] is None else format(res['r'][n], '+.2f')} / {res['std'][n]:.3f}".rjust(16)
                 for n in ABLATIONS]
        print(res["pair"][:44].ljust(44), f"{res['std_driver']:.3f}  ", "  ".join(cells), flush=True)
        if a.out:
            with open(a.out, "a") as f:
                f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
