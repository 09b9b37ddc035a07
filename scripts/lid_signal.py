#!/usr/bin/env python3
"""The tracker's lid signal against the acceptance reader's blink, per driving clip.

    python scripts/lid_signal.py [--data ../shared/data] [--reader FACE_LANDMARKER.task] [--max-frames N] [--json OUT]

Per clip of DATA/driving: FaceTracker (default config, the bundled face mesh) gives FaceControl.eyelid_ratios;
the signal is both eyes' centre pair (deform.LID_MID), as sent, i.e. filtered. The reader (core/reader.py, the
FaceLandmarker .task in VIDEO mode, independent of the tracker) gives (eyeBlinkLeft + eyeBlinkRight) / 2 on the
same frames. Printed per clip, over the whole clip and over its first --max-frames (the living-face table's
length): Pearson r of -ratio with the blink (the reader's blink r on the render cannot beat what the control
carries), the lag in frames (-3..3) where r peaks (positive: the ratio trails the reader), the least-squares
slope of the ratio against the blink (ratio units per blink unit), the mean ratio on frames the reader calls
closed (blink > 0.5) and the smallest ratio (the avatar's lids meet at DriveConfig.lid_closed_ratio).
Also the r against the reader's vertical gaze (eyeLookUp - eyeLookDown): lids that follow the gaze are read
back as gaze on the avatar. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LAGS = range(-3, 4)


def lagged_r(x: np.ndarray, y: np.ndarray) -> dict[int, float]:
    """Pearson r of x[t] with y[t + lag] for each lag (frames), over the frames where both are finite."""
    out = {}
    for lag in LAGS:
        a, b = (x[:len(x) - lag], y[lag:]) if lag >= 0 else (x[-lag:], y[:len(y) + lag])
        ok = np.isfinite(a) & np.isfinite(b)
        out[lag] = float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    return out


def series(clip: str, reader_path: str) -> dict[str, np.ndarray]:
    """[T] per frame: the tracker's centre lid ratio, the reader's blink and vertical gaze (NaN: no face)."""
    from gaussian_head_ros.core import deform
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.tracking import FaceTracker
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(clip)
    ratio, blink, gaze_v = (np.full(len(frames), np.nan) for _ in range(3))
    with FaceReader(reader_path) as rd, FaceTracker() as tr:
        for i, f in enumerate(frames):
            r = rd.read(f.rgb, f.stamp_ns)
            if r is not None:
                blink[i], gaze_v[i] = r.groups["blink"], r.groups["gaze_v"]
            c = tr.process(f.rgb, f.stamp_ns)
            if c is not None and c.face_detected and len(c.eyelid_ratios):
                ratio[i] = float(np.mean(np.asarray(c.eyelid_ratios)[list(deform.LID_MID)]))
    return {"ratio": ratio, "blink": blink, "gaze_v": gaze_v}


def summary(s: dict[str, np.ndarray], n: int) -> dict:
    x, b, g = (s[k][:n] for k in ("ratio", "blink", "gaze_v"))
    lr = lagged_r(-x, b)
    best = max(lr, key=lambda k: -np.inf if np.isnan(lr[k]) else lr[k])
    ok = np.isfinite(x) & np.isfinite(b)
    closed = ok & (b > 0.5)
    return {"frames": int(ok.sum()), "r": lr[0], "best_lag": best, "r_best_lag": lr[best],
            "slope": float(np.polyfit(b[ok], x[ok], 1)[0]) if ok.sum() > 2 else None,
            "closed_frames": int(closed.sum()), "ratio_closed": float(np.mean(x[closed])) if closed.any() else None,
            "ratio_min": float(np.nanmin(x)), "r_gaze_v": lagged_r(x, g)[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--reader", default=None, help="FaceLandmarker .task (default DATA/models/face_landmarker.task)")
    ap.add_argument("--max-frames", type=int, default=60, help="also summarise the first N frames")
    ap.add_argument("--json", default=None, help="write the per-frame series and summaries here")
    a = ap.parse_args()
    reader = a.reader or str(Path(a.data) / "models" / "face_landmarker.task")
    out = {}
    for clip in sorted((Path(a.data) / "driving").glob("*.mp4")):
        s = series(str(clip), reader)
        out[clip.stem] = {"whole": summary(s, len(s["ratio"])), "first": summary(s, a.max_frames),
                          "series": {k: [None if np.isnan(v) else round(float(v), 4) for v in x] for k, x in s.items()}}
        for part in ("whole", "first"):
            m = out[clip.stem][part]
            closed = "–" if m["ratio_closed"] is None else f"{m['ratio_closed']:.2f}"
            print(f"{clip.stem:34s} {part:5s} {m['frames']:4d} fr  r {m['r']:.3f}  peak lag {m['best_lag']:+d} "
                  f"(r {m['r_best_lag']:.3f})  slope {m['slope']:.2f}  ratio closed {closed} "
                  f"({m['closed_frames']} fr) min {m['ratio_min']:.2f}  r with gaze_v {m['r_gaze_v']:.3f}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
