#!/usr/bin/env python3
"""How high can the living-face table's yaw / pitch r go? The independent reader (MediaPipe FaceLandmarker, video
mode as the table runs it) reads each driving clip twice: as it is, and as a second view of the same motion (the
frame scaled, shifted or mirrored). The r between the two readings is the ceiling of the table's r_yaw / r_pitch for
that clip: a render that moved exactly as the driver would, seen by the same reader at another framing, scores about
this (issue 11, pitch64).

    python scripts/pose_ceiling.py [--frames 60] [--clips lp_d0 ...] [--data ../shared/data] [--out FILE.json]
                                   [--table DIR]

Views (each a fresh video reader over the whole window; the first is the reference the others are compared with):
- as_is: the frame as the table reads it;
- scale_0.8: the frame scaled by 0.8 about its centre, the border filled with the frame's edge pixels;
- zoom_1.2_shift: a crop of 1/1.2 of the frame, its centre shifted by 5 % of the width and height, resized back;
- mirror: the frame flipped left-right (yaw and roll negated before comparing);
- noise_2: the frame with fresh pixel noise of 2 grey levels sd (a camera's sensor noise).

Printed per clip and angle: the driver's sd (degrees), then per view r and slope against as_is and the residual sd
(degrees); and the r the table would reach if the render's reading carried the same reading error as a second view
(the mean over the three views of the same pixels: scale, zoom, noise; and the mirror's r: the same motion on a face
that looks different to the reader). Asserts nothing; prints figures.

--table DIR (a living-face table's folder, its pairs/*.json with their reader series; same --frames): per pair and
angle, where the table's r is lost against its clip's ceiling: r; the render's slope; the lag (frames, +: the
render late, within LAG_MAX) at which r peaks and r there; the mean offset (render minus driver, degrees); and the
r of the residual (render minus slope x driver) with the driver's jaw and smile and the render's jaw (expression
read as a turn). Then per clip the mean table r beside the mirror and crop ceilings.

Measured (pitch64, main 4b2a5f4, the clips' first 60 frames; whole clips in brackets). The same pixels read again
(scaled, zoomed and shifted, noisy) agree at r >= 0.99 on every clip and angle (tpsmm yaw zoomed 0.944 [0.998]): the
reader is not noisy. The mirror (the same motion on a face the reader sees differently) agrees at: yaw lp_d0 0.445
[0.508] (sd 0.31 deg: no r in the table), lp_d18 0.955 [0.585], sadtalker 0.998 [0.999], tpsmm 0.950 [0.995]; pitch
lp_d0 0.905 [0.911], lp_d18 0.975 [0.968], sadtalker 0.999 [0.997], tpsmm 0.992 [0.956]. Over the clips the table
counts: yaw 0.968 [0.859], pitch 0.968 [0.958], at or under issue 11's 0.97. The table (/tmp/lf/s64, 60 frames) per
clip, r (at the best lag within 3 frames): pitch lp_d0 0.477 (0.580), lp_d18 0.933, sadtalker 0.984, tpsmm 0.951
(0.965); yaw lp_d18 0.924, sadtalker 0.994, tpsmm 0.809 (0.830; lp_d8 x tpsmm 0.474). On lp_d0's crosses the
residual follows the driver's smile (|r| 0.78 mean, business_person 0.975): the reader reads lp_d0's smile and side
looks as pitch on the driver and differently on each face; by eye no nod in either (look sheets in the note).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCALE, ZOOM, SHIFT, NOISE_GREY = 0.8, 1.2, 0.05, 2.0  # the views' parameters (module docstring)
LAG_MAX = 3  # frames searched each way for the render's lag (--table)


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
    from gaussian_head_ros.core.metrics import correlation, slope

    ok = np.isfinite(ref) & np.isfinite(other)
    a, b = ref[ok], other[ok]
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return {"r": None, "slope": None, "resid_sd_deg": None, "frames": int(ok.sum())}
    k = slope(a, b)
    resid = (b - b.mean()) - k * (a - a.mean())
    return {"r": round(correlation(a, b), 4), "slope": round(k, 3), "resid_sd_deg": round(float(np.std(resid)), 3),
            "frames": int(ok.sum())}


def _r(a: np.ndarray, b: np.ndarray) -> float:
    from gaussian_head_ros.core.metrics import correlation

    return correlation(a, b)


def split_pair(ser: dict, angle: str) -> dict | None:
    """One pair's reader series ({"driver", "render"}: evaluate's `reader_series`) -> where its r_<angle> is lost
    (module docstring: r, slope, lag, r at the lag, offset, residual r with the expression); None where the driver's
    series is flat (the table's rule: no r_<angle> there)."""
    from gaussian_head_ros.core.metrics import slope
    from gaussian_head_ros.core.reader import MIN_FRAMES, MIN_STD_DEG

    d = np.array([np.nan if v is None else v for v in ser["driver"][angle]], np.float64)
    p = np.array([np.nan if v is None else v for v in ser["render"][angle]], np.float64)
    ok = np.isfinite(d) & np.isfinite(p)
    if ok.sum() < MIN_FRAMES or np.std(d[ok]) < MIN_STD_DEG:  # the table's rule (core/reader.py `_r`)
        return None
    b = slope(d, p)
    lags = {}
    for k in range(-LAG_MAX, LAG_MAX + 1):  # p[t] against d[t - k]: k > 0 the render late
        if k >= 0:
            lags[k] = _r(d[: len(d) - k], p[k:])
        else:
            lags[k] = _r(d[-k:], p[: len(p) + k])
    lag = max(lags, key=lags.get)
    resid = p - b * d
    expr = {f"resid_r_{who}_{g}": round(_r(np.array([np.nan if v is None else v for v in ser[who][g]], np.float64),
                                           resid), 3)
            for who, g in (("driver", "jaw"), ("driver", "smile"), ("render", "jaw"))}
    return {"r": round(_r(d, p), 4), "sd_deg": round(float(np.std(d[ok])), 3), "slope": round(b, 3), "lag": lag,
            "r_at_lag": round(lags[lag], 4), "offset_deg": round(float(np.mean(p[ok] - d[ok])), 2), **expr}


def table_split(table_dir: Path, report: dict, frames: int) -> None:
    """Print `split_pair` for every pair of a living-face table folder, and per clip its mean against the ceiling."""
    rows = {}
    for f in sorted((table_dir / "pairs").glob("*.json")):
        row = json.loads(f.read_text())
        ser = row.get("reader_series")
        if not ser or "error" in row:
            continue
        if frames and row.get("max_frames") not in (frames, None):
            print(f"{row['pair']}: table of {row.get('max_frames')} frames, not {frames}: skipped")
            continue
        clip = Path(row["video"]).stem
        for angle in ("yaw", "pitch"):
            s = split_pair(ser, angle)
            if s is None:
                continue
            rows.setdefault((clip, angle), []).append(s)
            print(f"{row['pair'][:44]:44s} {angle:5s} " + " ".join(f"{k} {v}" for k, v in s.items()))
    for (clip, angle), rs in sorted(rows.items()):
        c = report.get(clip, {}).get(angle, {})
        views = c.get("views", {})
        print(f"{clip[:28]:28s} {angle:5s} table r {np.mean([x['r'] for x in rs]):.4f} (min {min(x['r'] for x in rs):.3f}) "
              f"at best lag {np.mean([x['r_at_lag'] for x in rs]):.4f}; slope {np.mean([x['slope'] for x in rs]):.2f}; "
              f"driver sd {c.get('driver_sd_deg')} deg; ceiling: mirror {views.get('mirror', {}).get('r')} "
              f"crop {views.get('zoom_1.2_shift', {}).get('r')} scale {views.get('scale_0.8', {}).get('r')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--frames", type=int, default=60, help="frames from the start of each clip (0: whole clips)")
    ap.add_argument("--clips", nargs="*", help="clip stems (default: every clip in <data>/driving)")
    ap.add_argument("--reader", default="", help="FaceLandmarker .task (default <data>/models/face_landmarker.task)")
    ap.add_argument("--out", default="", help="write the figures and series as JSON here")
    ap.add_argument("--table", default="", help="a living-face table folder: split its pairs' yaw / pitch r")
    ap.add_argument("--ceiling", default="", help="reuse an earlier --out JSON instead of reading the clips again")
    a = ap.parse_args()
    data = Path(a.data)
    model = a.reader or str(data / "models" / "face_landmarker.task")
    clips = sorted((data / "driving").glob("*.mp4"))
    if a.clips:
        clips = [c for c in clips if c.stem in a.clips]
    report = json.loads(Path(a.ceiling).read_text()) if a.ceiling else {}
    for clip in [] if a.ceiling else clips:
        series = read_clip(str(clip), a.frames, model)
        ref = series["as_is"]
        rows = {}
        for k in ("yaw", "pitch"):
            sd = float(np.nanstd(ref[k]))
            per = {n: compare(ref[k], s[k]) for n, s in series.items() if n != "as_is"}
            same = [v["r"] for n, v in per.items() if n != "mirror" and v["r"] is not None]
            rows[k] = {"driver_sd_deg": round(sd, 3), "views": per,
                       "ceiling_same_pixels_r": round(float(np.mean(same)), 4) if same else None,
                       "ceiling_mirror_r": per["mirror"]["r"]}
            print(f"{clip.stem[:28]:28s} {k:5s} sd {sd:5.2f} deg  ceiling r same pixels "
                  f"{rows[k]['ceiling_same_pixels_r']} mirror {rows[k]['ceiling_mirror_r']}  " + "  ".join(
                f"{n} r {v['r']} slope {v['slope']} resid {v['resid_sd_deg']}" for n, v in per.items()), flush=True)
        report[clip.stem] = {"frames": int(len(ref["yaw"])), **rows,
                             "series": {n: {k: [None if not np.isfinite(x) else round(float(x), 4) for x in v]
                                            for k, v in s.items()} for n, s in series.items()}}
    from gaussian_head_ros.core.reader import MIN_STD_DEG

    for k in ("yaw", "pitch"):
        for c in ("ceiling_same_pixels_r", "ceiling_mirror_r"):  # over the clips the table counts (driver sd)
            cs = [v[k][c] for v in report.values() if v[k][c] is not None and v[k]["driver_sd_deg"] >= MIN_STD_DEG]
            print(f"mean {c} {k}: {np.mean(cs):.4f} over {len(cs)} clips with driver sd >= {MIN_STD_DEG} deg"
                  if cs else f"no {k} {c}")
    if a.out and not a.ceiling:
        Path(a.out).write_text(json.dumps(report))
    if a.table:
        table_split(Path(a.table), report, a.frames)


if __name__ == "__main__":
    main()
