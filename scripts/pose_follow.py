#!/usr/bin/env python3
"""Does the avatar's head follow the operator's yaw and pitch, and where is the reader's r lost? (issue 11, pose61)

    python scripts/pose_follow.py PORTRAIT:CLIP [...] [--frames 60] [--reader FACE_LANDMARKER.task] [--out FILE.jsonl]
                                  [--image-mode]

PORTRAIT is a ../shared portrait file name or `self` (the clip's frame 0, drawn through its source camera as
`gaussian-head eval` does); CLIP a ../shared driving clip stem. The clip is tracked as eval tracks it (bundled face
mesh, 12 deg camera, smoothing on) and, beside it, by a tracker with smoothing off. Series per frame, head angles in
degrees (yaw, pitch; core/reader.py's convention):

- driver: MediaPipe FaceLandmarker (core/reader.py, video mode as the living-face table) on the clip;
- tracker, tracker raw: the control's head rotation as the camera sees it (line_of_sight_rotation(translation) @
  rotation, `control.euler_deg`), smoothing on / off;
- full: the reader on the avatar driven by the control (the table's render);
- full raw: the same with the unsmoothed pose (the tracker's One Euro lag taken out);
- pose only: the control's pose with the rest face (reader_ablation.ablate): the pose path alone;
- pose held: the control's face with frame 0's pose: what the avatar's face alone makes the reader read as a turn.

Printed per pair and angle, for each stream against the driver's reading (and the renders against the tracker's
pose): r, slope (deg per deg), the lag in frames at the cross-correlation's peak (+: the stream late) with r there,
and the residual sd about the fitted line against the reference's sd. --image-mode reads the driver and the full
render frame by frame (FaceLandmarker IMAGE mode, no tracking between frames) as well.

Measured (pose61, main a660894, 60 frames unless said; r / slope / lag):
- the pose path is faithful: pose only vs the tracker r 0.985-0.997 where the clip turns (sadtalker 0.996, tpsmm
  pitch 0.995, lp_d18 0.985 / 0.975); read back by the tracker itself (a second tracker on the pose-only renders of
  sadtalker) the avatar turns by 0.987 (yaw) / 0.996 (pitch) of the control on obama_official, 0.909 / 0.806 on the
  self avatar; the reader reads the avatar's turn at 0.73-0.85 of the control's (lp_d18, sadtalker; pose only against
  the tracker), 0.57-0.82 in pitch on tpsmm, whose head also moves across the picture. No camera follows the head.
- the tracker's One Euro lag is about half a frame: tracker vs tracker raw peaks at lag 0 (r 0.986-0.998);
  the full render with the raw pose over 8 pairs: yaw r +0.016 on the mean (obama_official:tpsmm 0.828 -> 0.872,
  lp_d8:tpsmm 0.512 -> 0.471), pitch -0.003 (obama_official:lp_d18 0.952 -> 0.935).
- the reader's own noise on a still frame with 2 grey levels of pixel noise: 0.02-0.04 deg sd in video mode,
  0.06-0.14 in image mode (the clips' first frames), far under the clips' 0.31-0.83 deg; but the same reader in
  IMAGE and VIDEO mode on the same driver frames agrees only at r 0.53 (lp_d18 yaw, residual 0.46 deg) to 0.98.
- where r is lost is expression read as head turn, in two places. (1) the tracker's pose fit: tracker vs driver yaw
  r 0.70-0.73 on tpsmm, pitch 0.48 on lp_d0 (its pitch follows the mouth); on the whole of lp_d18 (216 frames) yaw
  0.74: from frame 155 on, the mouth pulled to one side, the tracker reads -1.3 deg where the reader reads +0.3, and
  the pose-only render follows the tracker (r 0.977 with it, 0.69 with the driver). (2) the reader on the avatar's
  face: pose held, the head still, the reader reads yaw sd 0.47 / pitch 0.74 deg on self lp_d18 (216 frames; the
  driver's own 0.73 / 1.29), pitch 0.74 on astronaut_eileen_collins:lp_d0 (the driver's 0.64), yaw -0.63 r
  against the driver on obama_official:lp_d18 (full yaw r 0.69 where pose only gives 0.96). Its whole clip (216
  frames): pitch pose only 0.940, full 0.747; the held head is read at pitch sd 1.50 deg, the driver's own 1.29.
- more frames do not lift r: the living-face table on whole clips (main a660894, /tmp/lf/full61) against its first 60
  frames: yaw 0.903 -> 0.899, pitch 0.839 -> 0.793; where the clip turns, r is high (tpsmm's whole clip turns yaw
  sd 4.4 deg: r 0.970-0.992 on its 10 pairs; sadtalker 0.99), where it turns <= 1.3 deg it is not (lp_d18 yaw 0.72,
  pitch 0.82; lp_d0 pitch 0.47). A shift of the render by its best lag (<= 2 frames) would add 0.011 / 0.022 (60
  frames), 0.001 / 0.003 (whole clips).
- a quicker pose filter (One Euro on the raw pose, min_cutoff / beta 2 / 40 or 6 / 10 instead of 2 / 10) over 4
  pairs: yaw r +0.014 (two_children_multiface:tpsmm 0.917 -> 0.943), pitch -0.001, the pose's frame-to-frame jitter
  (sd of its second difference) +33-45 %; not taken.

Prints figures; asserts nothing. One pair of 60 frames is ~2.5-4 min of CPU at load ~20 (7 renders and reads a
frame, two trackers).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from reader_ablation import FOV_DEG, ablate, append_json_line, clip_and_avatar

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ANGLES = ("yaw", "pitch")
MAX_LAG = 8  # frames either way searched for the cross-correlation's peak
RENDERS = ("full", "full raw", "pose only", "pose held")


def view_angles_deg(control) -> dict[str, float]:
    """A FaceControl -> its head's yaw, pitch, roll in degrees as the camera sees it (the rotation relative to the line
    of sight turned back onto the camera's axes: what the reader's angles are measured against)."""
    from gaussian_head_ros.core.control import euler_deg, line_of_sight_rotation, matrix_to_quat, quat_to_matrix

    r = line_of_sight_rotation(np.asarray(control.translation, np.float64)) @ quat_to_matrix(
        np.asarray(control.rotation, np.float64))
    return euler_deg(matrix_to_quat(r))


def lagged_r(ref: np.ndarray, x: np.ndarray, lag: int) -> float:
    """Pearson r of x[t] against ref[t - lag] over the frames where both are finite ([T] each; lag in frames, + = x
    late); NaN with fewer than 10 such frames."""
    from gaussian_head_ros.core.metrics import correlation

    a, b = (ref[:len(ref) - lag], x[lag:]) if lag >= 0 else (ref[-lag:], x[:len(x) + lag])
    ok = np.isfinite(a) & np.isfinite(b)
    return correlation(a[ok], b[ok]) if ok.sum() >= 10 else float("nan")


def follow(ref, x) -> dict | None:
    """[T] reference and [T] follower series (degrees, NaN = no reading) -> {r, slope, lag, r_lag, sd_ref, sd,
    residual_sd} (lag: frames at the cross-correlation's peak within +-MAX_LAG, + = the follower late; residual_sd:
    the follower about its least-squares line on the reference, degrees), None with fewer than 10 common frames."""
    from gaussian_head_ros.core.metrics import correlation, slope

    ref, x = np.asarray(ref, np.float64), np.asarray(x, np.float64)
    ok = np.isfinite(ref) & np.isfinite(x)
    if ok.sum() < 10:
        return None
    k = slope(ref[ok], x[ok])
    resid = (x[ok] - x[ok].mean()) - k * (ref[ok] - ref[ok].mean())
    lags = {lag: lagged_r(ref, x, lag) for lag in range(-MAX_LAG, MAX_LAG + 1)}
    best = max((lag for lag in lags if np.isfinite(lags[lag])), key=lambda lag: lags[lag])
    return {"r": round(correlation(ref[ok], x[ok]), 3), "slope": round(k, 2), "lag": best,
            "r_lag": round(lags[best], 3), "sd_ref": round(float(ref[ok].std()), 2), "sd": round(float(x[ok].std()), 2),
            "residual_sd": round(float(resid.std()), 2)}


def run_pair(portrait: str, clip: str, max_frames: int, reader_model: str, image_mode: bool = False) -> dict:
    """One pair -> {pair, frames, series: {stream: {angle: [T] degrees}}} (streams: see the module docstring)."""
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig

    frames, driver, K = clip_and_avatar(portrait, clip, max_frames)
    h, w = frames[0].rgb.shape[:2]

    def angles(frame) -> dict:
        return {a: (frame.angles_deg[a] if frame is not None else float("nan")) for a in ANGLES}

    series = {s: {a: [] for a in ANGLES} for s in ("driver", "tracker", "tracker raw")}
    tracked = []  # (stamp, smoothed control, raw control)
    with FaceTracker(TrackerConfig(fov_deg=FOV_DEG)) as smooth, \
            FaceTracker(TrackerConfig(fov_deg=FOV_DEG, smoothing=False)) as raw, FaceReader(reader_model) as reader:
        for f in frames:
            c, c_raw = smooth.process(f.rgb, f.stamp_ns, K), raw.process(f.rgb, f.stamp_ns, K)
            if c is None or not c.face_detected or c_raw is None or not c_raw.face_detected:
                continue
            tracked.append((f, c, c_raw))
            for stream, v in (("driver", angles(reader.read(f.rgb, f.stamp_ns))), ("tracker", view_angles_deg(c)),
                              ("tracker raw", view_angles_deg(c_raw))):
                for a in ANGLES:
                    series[stream][a].append(v[a])
    if not tracked:
        raise ValueError(f"no face tracked in {clip}")
    first = tracked[0][1]
    held = (first.rotation.copy(), first.translation.copy())

    def control(name: str, c, c_raw):
        if name == "full raw":
            return replace(c, rotation=c_raw.rotation, translation=c_raw.translation)
        return ablate({"pose only": "pose only", "pose held": "pose held"}.get(name, "full"), c, held, None)

    for name in RENDERS:
        series[name] = {a: [] for a in ANGLES}
        with FaceReader(reader_model) as reader:  # a fresh reader per stream (video mode tracks across frames)
            for f, c, c_raw in tracked:
                img = render_control(driver, control(name, c, c_raw), K, w, h).image
                v = angles(reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), f.stamp_ns))
                for a in ANGLES:
                    series[name][a].append(v[a])
    if image_mode:
        for name in ("driver image", "full image"):
            series[name] = {a: [] for a in ANGLES}
        with FaceReader(reader_model, video=False) as reader:
            for f, c, _ in tracked:
                img = (np.clip(render_control(driver, c, K, w, h).image, 0, 1) * 255 + 0.5).astype(np.uint8)
                for name, rgb in (("driver image", f.rgb), ("full image", img)):
                    v = angles(reader.read(rgb))
                    for a in ANGLES:
                        series[name][a].append(v[a])
    return {"pair": f"{portrait}:{clip}", "frames": len(tracked), "series": series}


def table(res: dict) -> list[str]:
    """`run_pair`'s result -> printable lines: every stream against the driver's reading, the renders against the
    tracker's pose, and (with --image-mode) the image-mode full render against the image-mode driver."""
    s = res["series"]
    against = [(x, "driver") for x in s if x != "driver" and "image" not in x]
    against += [(x, "tracker") for x in RENDERS] + [("tracker raw", "tracker")]
    if "full image" in s:
        against += [("full image", "driver image"), ("driver image", "driver")]
    lines = []
    for a in ANGLES:
        for x, ref in against:
            f = follow(s[ref][a], s[x][a])
            cell = "no reading" if f is None else (
                f"r {f['r']:+.3f}  slope {f['slope']:+.2f}  lag {f['lag']:+d} (r {f['r_lag']:+.3f})  "
                f"sd {f['sd']:.2f} vs {f['sd_ref']:.2f}  residual {f['residual_sd']:.2f} deg")
            lines.append(f"  {a:5s} {x:12s} vs {ref:12s} {cell}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", help="PORTRAIT:CLIP (portrait file name or 'self', clip stem)")
    ap.add_argument("--frames", type=int, default=60, help="frames per clip (0 = all)")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--out", default="", help="append each pair's JSON line (with the series) to this file")
    ap.add_argument("--image-mode", action="store_true", help="also read the driver and the full render frame by frame")
    a = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"no data folder {DATA}", file=sys.stderr)
        return 2
    for spec in a.pairs:
        portrait, _, clip = spec.partition(":")
        if not clip:
            ap.error(f"pair {spec!r}: expected PORTRAIT:CLIP")
        res = run_pair(portrait, clip, a.frames, a.reader, a.image_mode)
        print(f"{res['pair']} ({res['frames']} frames)")
        print("\n".join(table(res)), flush=True)
        if a.out:
            append_json_line(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
