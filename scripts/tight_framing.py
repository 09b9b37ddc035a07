#!/usr/bin/env python3
"""An operator framed tight: how much of each control channel the tracker still sends, per driving clip.

    python scripts/tight_framing.py [--data ../shared/data] [--clips lp_d0 ...] [--max-frames N] [--off]

Each clip of DATA/driving is cropped the same on every frame (a static framing; the camera's intrinsics moved with
the crop), the picture's top edge placed from the uncropped face mesh's landmarks: `forehead` halfway between the
forehead's top and the brows' top (its 5th percentile over the frames), `brows` through the brows' middle (median),
`above_eyes` 3 px above the eye contours' highest point over the clip, `eyes` through the eyes' middle (median);
`chin` puts the bottom edge halfway between the lower lip and the chin. FaceTracker (default config, region check
on; --off adds a run with it off: what the face mesh reads) tracks the uncropped clip and each framing. Printed per
framing: the frames on which core/face_regions.py holds each region (`(pose)`: held because the pose fit's
landmarks are out), and per channel (blink: both eyes' mean eyelid ratio; gaze across and up-down, both eyes'
mean; brows: the brow landmarks' mean expression height, mm; mouth_open; yaw, pitch, roll, deg; z, m) Pearson r,
the least-squares slope and the mean offset against the uncropped tracking of the same frames (after the first 15,
the neutral's calibration). r 0 is a channel that does not move (held). Session 58 (frame58) figures:
core/face_regions.py's FRAME58 notes. Asserts nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = 15  # frames left out of the figures: the neutral face's calibration (TrackerConfig.neutral_frames)
CHANNELS = ("blink", "gaze_h", "gaze_v", "brows", "mouth", "yaw", "pitch", "roll", "z")


def framings(lms: np.ndarray, h: int) -> dict[str, tuple[int, int]]:
    """[T, 478, 3] the uncropped clip's landmarks (pixels; NaN without a face) -> framing name -> (top row, bottom
    row) of the crop."""
    from gaussian_head_ros.core import landmarks as lmk

    eye, brow = list(lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L), list(lmk.BROW_R + lmk.BROW_L)
    brow_top = np.nanmin(lms[:, brow, 1], 1)
    lips, chin = np.nanmax(lms[:, list(lmk.LIPS), 1], 1), lms[:, lmk.CHIN, 1]
    return {"forehead": (int(np.nanpercentile((lms[:, lmk.FOREHEAD, 1] + brow_top) / 2, 5)), h),
            "brows": (int(np.nanmedian(np.nanmean(lms[:, brow, 1], 1))), h),
            "above_eyes": (int(np.nanmin(lms[:, eye, 1])) - 3, h),
            "eyes": (int(np.nanmedian(np.nanmean(lms[:, eye, 1], 1))), h),
            "chin": (0, int(np.nanmedian((lips + chin) / 2)))}


def track(frames, rows: tuple[int, int], region_check: bool) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The clip cropped to `rows` on every frame, tracked: channel name -> [T] values, and per frame
    FaceTracker.regions_out as a dict."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.control import euler_deg
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig

    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h)
    K[1, 2] -= rows[0]  # the same camera, the rows above the crop cut off
    brow = list(lmk.BROW_R + lmk.BROW_L)
    got, said = {c: [] for c in CHANNELS}, []
    with FaceTracker(TrackerConfig(region_check=region_check)) as tr:
        for k, f in enumerate(frames):
            c = tr.process(np.ascontiguousarray(f.rgb[rows[0]:rows[1]]), (k + 1) * 40_000_000, K)
            g, e = np.asarray(c.gaze, float), euler_deg(c.rotation)
            for name, v in (("blink", np.mean(c.eyelid_ratios)), ("gaze_h", g[:, 0].mean()), ("gaze_v", g[:, 1].mean()),
                            ("brows", np.mean(np.asarray(c.expression)[brow, 1]) * 1e3), ("mouth", c.mouth_open),
                            ("yaw", e["yaw"]), ("pitch", e["pitch"]), ("roll", e["roll"]), ("z", c.translation[2])):
                got[name].append(float(v))
            said.append(dict(tr.regions_out))
    return {n: np.array(v) for n, v in got.items()}, said


def against(a: np.ndarray, b: np.ndarray) -> str:
    """'r R sl S b B' of [T] a (cropped) against [T] b (uncropped): Pearson r (0 when a does not move), the
    least-squares slope of a on b, the mean of a - b."""
    if a.std() < 1e-9 or b.std() < 1e-9:
        return f"r 0.00 sl 0.00 b {np.mean(a - b):+.3g}"
    return f"r {np.corrcoef(a, b)[0, 1]:.2f} sl {np.cov(a, b)[0, 1] / b.var(ddof=1):.2f} b {np.mean(a - b):+.3g}"


def main() -> None:
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.video import read_frames

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the ../shared/data folder")
    ap.add_argument("--clips", nargs="*", help="clip names in DATA/driving without .mp4 (default: all)")
    ap.add_argument("--max-frames", type=int, default=120, help="frames of each clip")
    ap.add_argument("--framings", nargs="*", default=["forehead", "brows", "above_eyes", "eyes", "chin"])
    ap.add_argument("--off", action="store_true", help="also track with the region check off")
    args = ap.parse_args()
    clips = [Path(args.data) / "driving" / f"{c}.mp4" for c in args.clips] if args.clips else \
        sorted((Path(args.data) / "driving").glob("*.mp4"))
    for path in clips:
        frames = read_frames(str(path), max_frames=args.max_frames)
        h = frames[0].rgb.shape[0]
        with FaceMesh() as fm:
            lms = np.array([d[0].landmarks_px if (d := fm.detect(f.rgb)) else np.full((478, 3), np.nan)
                            for f in frames])
        lines = framings(lms, h)
        full, _ = track(frames, (0, h), True)
        keep = slice(CALIBRATION, None)
        print(f"== {path.name} ({len(frames)} frames, {h} rows)")
        for name in args.framings:
            for check in (True, False) if args.off else (True,):
                got, said = track(frames, lines[name], check)
                held = {}
                for s in said[keep]:
                    for region, why in s.items():
                        key = region + (" (pose)" if why.startswith("held") else "")
                        held[key] = held.get(key, 0) + 1
                print(f"  {name} rows {lines[name]} region check {'on' if check else 'off'}: held frames {held}")
                print("    " + "; ".join(f"{c} {against(got[c][keep], full[c][keep])}" for c in CHANNELS))


if __name__ == "__main__":
    main()
