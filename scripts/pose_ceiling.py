#!/usr/bin/env python3
"""How high can the living-face table's yaw / pitch r go? The independent reader (MediaPipe FaceLandmarker, video
mode as the table runs it) reads each driving clip twice: as it is, and as a second view of the same motion (the
frame scaled, shifted or mirrored). The r between the two readings is the ceiling of the table's r_yaw / r_pitch for
that clip: a render that moved exactly as the driver would, seen by the same reader at another framing, scores about
this (issue 11, pitch64).

    python scripts/pose_ceiling.py [--frames 60] [--clips lp_d0 ...] [--data ../shared/data] [--out FILE.json]

Views (each a fresh video reader over the whole window; the first is the reference the others are compared with):
- as_is: the frame as the table reads it;
- scale_0.8: the frame scaled by 0.8 about its centre, the border filled with the frame's edge pixels;
- zoom_1.2_shift: a crop of 1/1.2 of the frame, its centre shifted by 5 % of the width and height, resized back;
- mirror: the frame flipped left-right (yaw and roll negated before comparing);
- noise_2: the frame with fresh pixel noise of 2 grey levels sd (a camera's sensor noise).

Printed per clip and angle: the driver's sd (degrees), then per view r and slope against as_is and the residual sd
(degrees); and the r the table would reach if the render's reading carried the same reading error as a second view
(the mean of the views' r). Asserts nothing; prints figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCALE, ZOOM, SHIFT, NOISE_GREY = 0.8, 1.2, 0.05, 2.0  # the views' parameters (module docstring)


def views(rgb: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """[H, W, 3] uint8 frame -> {view name: [H, W, 3] uint8} (module docstring)."""
    import cv2

    h, w = rgb.shape[:2]
    c = (w / 2.0, h / 2.0)
    m_scale = cv2.getRotationMatrix2D(c, 0.0, SCALE)
    scaled = cv2.warpAffine(rgb, m_scale, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    cw, ch = w / ZOOM, h / ZOOM
    x0, y0 = c[0] + SHIFT * w - cw / 2, c[1] + SHIFT * h - ch / 2
    m_zoom = np.array([[ZOOM, 0, -x0 * ZOOM], [0, ZOOM, -y0 * ZOOM]], np.float64)
    zoomed = cv2.warpAffine(rgb, m_zoom, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    noisy = np.clip(rgb.astype(np.float32) + rng.normal(0, NOISE_GREY, rgb.shape), 0, 255).astype(np.uint8)
    return {"as_is": rgb, "scale_0.8": scaled, "zoom_1.2_shift": zoomed, "mirror": np.ascontiguousarray(rgb[:, ::-1]),
            "noise_2": noisy}


def read_clip(path: str, frames: int, model: str) -> dict[str, dict[str, np.ndarray]]:
    """A clip's first `frames` frames (0: all) -> {view: {"yaw", "pitch", "roll": [T] degrees, NaN where no face}}."""
    from gaussian_head_ros.core.reader import ANGLES, FaceReader
    from gaussian_head_ros.core.video import read_frames

    clip = read_frames(path, max_frames=frames or None)
    rng = np.random.default_rng(0)
    names = list(views(clip[0].rgb, rng))
    readers = {n: FaceReader(model, video=True) for n in names}
    out = {n: {k: [] for k in ANGLES} for n in names}
    try:
        for i, f in enumerate(clip):
            stamp = int(getattr(f, "stamp_ns", i * 40_000_000))
            for n, img in views(f.rgb, rng).items():
                fr = readers[n].read(img, stamp)
                a = fr.angles_deg if fr is not None else {k: np.nan for k in ANGLES}
                for k in ANGLES:
                    out[n][k].append(a[k])
    finally:
        for r in readers.values():
            r.close()
    res = {n: {k: np.asarray(v, np.float64) for k, v in d.items()} for n, d in out.items()}
    for k in ("yaw", "roll"):
        res["mirror"][k] = -res["mirror"][k]
    return res


def compare(ref: np.ndarray, other: np.ndarray) -> dict:
    """Two [T] angle series -> r, slope (other per ref), residual sd (degrees) over the frames both read."""
    ok = np.isfinite(ref) & np.isfinite(other)
    a, b = ref[ok], other[ok]
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return {"r": None, "slope": None, "resid_sd_deg": None, "frames": int(ok.sum())}
    r = float(np.corrcoef(a, b)[0, 1])
    slope = float(np.polyfit(a, b, 1)[0])
    resid = b - np.polyval(np.polyfit(a, b, 1), a)
    return {"r": round(r, 4), "slope": round(slope, 3), "resid_sd_deg": round(float(np.std(resid)), 3),
            "frames": int(ok.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--frames", type=int, default=60, help="frames from the start of each clip (0: whole clips)")
    ap.add_argument("--clips", nargs="*", help="clip stems (default: every clip in <data>/driving)")
    ap.add_argument("--reader", default="", help="FaceLandmarker .task (default <data>/models/face_landmarker.task)")
    ap.add_argument("--out", default="", help="write the figures and series as JSON here")
    a = ap.parse_args()
    data = Path(a.data)
    model = a.reader or str(data / "models" / "face_landmarker.task")
    clips = sorted((data / "driving").glob("*.mp4"))
    if a.clips:
        clips = [c for c in clips if c.stem in a.clips]
    report = {}
    for clip in clips:
        series = read_clip(str(clip), a.frames, model)
        ref = series["as_is"]
        rows = {}
        for k in ("yaw", "pitch"):
            sd = float(np.nanstd(ref[k]))
            per = {n: compare(ref[k], s[k]) for n, s in series.items() if n != "as_is"}
            rs = [v["r"] for v in per.values() if v["r"] is not None]
            rows[k] = {"driver_sd_deg": round(sd, 3), "views": per,
                       "ceiling_r": round(float(np.mean(rs)), 4) if rs else None}
            print(f"{clip.stem[:28]:28s} {k:5s} sd {sd:5.2f} deg  ceiling r {rows[k]['ceiling_r']}  " + "  ".join(
                f"{n} r {v['r']} slope {v['slope']} resid {v['resid_sd_deg']}" for n, v in per.items()), flush=True)
        report[clip.stem] = {"frames": int(len(ref["yaw"])), **rows,
                             "series": {n: {k: [None if not np.isfinite(x) else round(float(x), 4) for x in v]
                                            for k, v in s.items()} for n, s in series.items()}}
    for k in ("yaw", "pitch"):
        cs = [v[k]["ceiling_r"] for v in report.values() if v[k]["ceiling_r"] is not None]
        print(f"mean ceiling r {k}: {np.mean(cs):.4f} over {len(cs)} clips" if cs else f"no {k} ceiling")
    if a.out:
        Path(a.out).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
