#!/usr/bin/env python3
"""Which head pitch renders the driver's own frames best? Ground truth for the tracker's pitch (issue 11, pose65).

    python scripts/pitch_truth.py --out DIR [--clips lp_d0 ...] [--step 2] [--max-frames 0] [--avatars DIR]
    python scripts/pitch_truth.py --summary DIR

The living-face table scores pitch against the reader (MediaPipe's FaceLandmarker) on the driver and on the
render; where the tracker and the reader disagree on a driver, nothing there says which one is right. In
self-reenactment there is ground truth: the driver's own frames. Measure: every --step-th frame `gaussian-head
eval` scores (its own tracking, camera, driver and composite; `evaluate.evaluate`'s on_frame) is rendered again
with the control's pitch moved by each offset in GRID_DEG (`pitched_control`: the Euler pitch of `control.euler_deg`
changed, yaw and roll kept, the neutral's rigid landmarks' centroid held where it was in the camera, so the offset
turns the head about the points the pose fit placed instead of sliding it), each render also shifted by whole
pixels up and down (SHIFTS_PX: a head drawn a pixel too high or low is a position error that a pitch offset partly
mimics; freed, it does not count as pitch), and the PSNR taken in the face (the real frame's face-mesh hull, eyes,
brows and mouth: `psnr_attribution.regions`). The reader reads the driver's frames beside it. Writes DIR/<clip>.json.

--summary: per clip, from the PSNR curves (`best_offset`: the peak of a parabola through the best grid point and
its neighbours; a peak on the grid's edge is 'clipped'):
- the per-frame best offset's mean and sd, and truth = tracker pitch + best offset (unclipped frames): its r with
  the tracker's pitch and with the reader's, and its slope on each;
- dB changes of the clip's mean face PSNR (`psnr_at`: the curve read between grid points) were the pitch
  replaced by: the tracker's scaled about its median (gain 0.6 .. 1.4), the reader's (its mean moved to the
  tracker's; at slope 1 and at the sd ratio), and the tracker's less its least-squares fit on the reader's brow
  group (the brow raise brow64 saw in tpsmm's tracked pitch), on its mouth_open, and on both.
Each with the position free (the best shift at each pitch) and held (no shift). Asserts nothing.

Measured (pose65, main 133ca7f with its self avatars /tmp/self64/new, whole clips every 4th frame: `--step 4
--avatars /tmp/self64/new`, load 20-50; position free): the tracker's pitch is the truth's on tpsmm and sadtalker,
the reader's is better nowhere but on lp_d0 (driver sd 0.6 deg):
- tpsmm: r truth-tracker 0.937, truth-reader 0.798; truth = 1.10 x tracker = 1.58 x reader (the reader reads 0.6 of
  this clip's nods); the reader's pitch in place -0.142 dB, the tracker's brow fit taken out -0.008 dB: the pitch
  that follows the brow raises (brow64) is the head's;
- sadtalker: 0.987 / 0.985, reader -0.026 dB, gain 1.1 -0.020; lp_d18: 0.850 / 0.844, reader +0.001 dB;
- lp_d0: -0.23 / 0.27 (20 frames), the best offset follows the tracker's mouth_open (r +0.78): the reader's pitch, or
  the tracker's less its mouth fit, +0.049 dB. The pose fit without the lower nose (1, 2, 98, 327), without the nose
  tip too, without the outline or without the forehead points moves lp_d0's pitch by 0.04-0.3 deg for -0.013 ..
  +0.000 dB there.
With the position held, lp_d18 wants +1.44 deg and the best whole-pixel vertical shift at the tracked pitch is +0.87 px
(lp_d0 -0.60, tpsmm +1.00; none in the first ~12 frames): +0.18 / +0.31 / +0.27 dB of face PSNR on lp_d0 / lp_d18 /
tpsmm, more than any pitch change here gives.
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
CLIPS = ("lp_d0", "lp_d18", "sadtalker_WDA_KatieHill_000", "tpsmm_driving")
GRID_DEG = (-3.2, -2.4, -1.6, -0.8, 0.0, 0.8, 1.6, 2.4, 3.2)  # pitch offsets tried, degrees (+ = nose down)
SHIFTS_PX = tuple(range(-4, 5))  # whole-pixel vertical shifts of each render (+ = down)
GAINS = (0.6, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4)


def pitched_control(control, offset_deg: float, pivot: np.ndarray):
    """A FaceControl whose head pitch (`control.euler_deg`'s, degrees, + = nose down) is `offset_deg` more, yaw and
    roll kept, and whose translation keeps the head-frame point `pivot` [3] (metres) where `control` puts it in the
    camera (a head posed X -> R X + t; t' = t + (R - R') pivot)."""
    from gaussian_head_ros.core.control import euler_deg, euler_to_quat, quat_to_matrix

    e = euler_deg(control.rotation)
    q = euler_to_quat(e["yaw"], e["pitch"] + offset_deg, e["roll"])
    t = np.asarray(control.translation, np.float64) + (quat_to_matrix(control.rotation) - quat_to_matrix(q)) @ pivot
    return replace(control, rotation=q.astype(np.float32), translation=t.astype(np.float32))


def best_offset(grid: np.ndarray, y: np.ndarray) -> tuple[float, bool]:
    """[G] offsets (evenly spaced) and [G] PSNR -> (the offset of the parabola's peak through the best point and its
    two neighbours, whether the best point is on the grid's edge (then that edge offset))."""
    i = int(np.argmax(y))
    if i in (0, len(grid) - 1):
        return float(grid[i]), True
    den = y[i - 1] - 2 * y[i] + y[i + 1]
    off = 0.5 * (y[i - 1] - y[i + 1]) / den if den < 0 else 0.0
    return float(grid[i] + off * (grid[1] - grid[0])), False


def psnr_at(grid: np.ndarray, y: np.ndarray, offset: float) -> float:
    """[G] offsets and [G] PSNR -> the PSNR at `offset` (the parabola through the three nearest grid points; held at
    the grid's edge beyond it)."""
    d = float(np.clip(offset, grid[0], grid[-1]))
    i = int(np.clip(np.searchsorted(grid, d), 1, len(grid) - 2))
    return float(np.polyval(np.polyfit(grid[i - 1:i + 2], y[i - 1:i + 2], 2), d))


def _r(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 1e-9 and b.std() > 1e-9 else float("nan")


def summarize(grid, rows: list[dict], free_position: bool = True) -> dict:
    """One clip's rows (`measure`'s) -> the --summary figures (module notes). Rows without a reader reading are
    left out."""
    grid = np.asarray(grid, float)
    rows = [x for x in rows if x["reader_pitch"] is not None]
    tables = np.array([x["psnr_face_dy"] for x in rows])  # [T, G, S]
    curves = tables.max(2) if free_position else tables[:, :, SHIFTS_PX.index(0)]  # [T, G]
    pitch = np.array([x["pitch"] for x in rows])
    reader = np.array([x["reader_pitch"] for x in rows])
    brow = np.array([x["brow"] for x in rows])
    mouth = np.array([x["mouth_open"] for x in rows])
    peaks = [best_offset(grid, y) for y in curves]
    best = np.array([p for p, _ in peaks])
    ok = ~np.array([c for _, c in peaks])
    truth = pitch + best
    n = len(rows)

    def change(offsets) -> float:
        return float(np.mean([psnr_at(grid, curves[i], offsets[i]) - psnr_at(grid, curves[i], 0.0) for i in range(n)]))

    def less_fit(*xs) -> np.ndarray:
        a = np.c_[tuple(xs) + (np.ones(n),)]
        coef = np.linalg.lstsq(a, pitch, rcond=None)[0]
        return -(a[:, :-1] @ coef[:-1] - np.mean(a[:, :-1] @ coef[:-1]))

    out = {"frames": n, "clipped": int((~ok).sum()),
           "psnr_face": float(np.mean([psnr_at(grid, y, 0.0) for y in curves])),
           "best_mean_deg": float(best[ok].mean()), "best_sd_deg": float(best[ok].std()),
           "sd_tracker": float(pitch.std()), "sd_reader": float(reader.std()), "sd_truth": float(truth[ok].std()),
           "r_truth_tracker": _r(truth[ok], pitch[ok]), "r_truth_reader": _r(truth[ok], reader[ok]),
           "r_tracker_reader": _r(pitch, reader),
           "slope_truth_on_tracker": float(np.polyfit(pitch[ok], truth[ok], 1)[0]),
           "slope_truth_on_reader": float(np.polyfit(reader[ok], truth[ok], 1)[0]),
           "r_best_brow": _r(best[ok], brow[ok]), "r_best_mouth": _r(best[ok], mouth[ok])}
    out["gain_db"] = {g: change((g - 1.0) * (pitch - np.median(pitch))) for g in GAINS}
    k = pitch.std() / max(reader.std(), 1e-9)
    out["reader_db"] = change(reader - reader.mean() + pitch.mean() - pitch)
    out["reader_scaled_db"] = change(k * (reader - reader.mean()) + pitch.mean() - pitch)
    out["less_brow_db"] = change(less_fit(brow))
    out["less_mouth_db"] = change(less_fit(mouth))
    out["less_both_db"] = change(less_fit(brow, mouth))
    return out


def measure(clip: str, out: Path, step: int, max_frames: int, avatars: str | None, reader_model: str) -> None:
    """One self clip (module notes) -> DIR/<clip>.json: per measured frame the tracker's and the reader's angles, the
    reader's brow group, mouth_open and the face PSNR [len(GRID_DEG), len(SHIFTS_PX)]."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from psnr_attribution import _over, _shifted, regions

    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.core.control import euler_deg
    from gaussian_head_ros.core.evaluate import EvalConfig, evaluate
    from gaussian_head_ros.core.metrics import psnr
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.video import read_frames

    vf = read_frames(str(DATA / "driving" / f"{clip}.mp4"), max_frames=max_frames or None)
    frames, stamps = [f.rgb for f in vf], [f.stamp_ns for f in vf]
    avatar = load_ply(f"{avatars}/av_{clip}.ply") if avatars else None
    rigid = list(lmk.RIGID_LANDMARKS)
    rows = []
    with FaceReader(reader_model) as reader:
        def on_frame(f) -> None:
            if f.index % step:
                return
            c = f.control
            pivot = (np.asarray(c.landmarks, np.float64) - np.asarray(c.expression, np.float64))[rigid].mean(0)
            reg = regions(f.landmarks_px, f.mask)
            face = reg["face"] | reg["eyes"] | reg["brows"] | reg["mouth"]
            table = []
            for d in GRID_DEG:
                o = f.render if d == 0.0 else f.render_control(pitched_control(c, d, pivot))
                table.append([psnr(_over(_shifted(o.image, 0, s), _shifted(o.alpha, 0, s), f.background), f.rgb, face)
                              for s in SHIFTS_PX])
            seen = reader.read(f.rgb, stamps[f.index])
            e = euler_deg(c.rotation)
            rows.append({"frame": f.index, "pitch": e["pitch"], "yaw": e["yaw"],
                         "reader_pitch": seen.angles_deg["pitch"] if seen else None,
                         "brow": seen.groups["brow"] if seen else None, "mouth_open": float(c.mouth_open),
                         "psnr_face_dy": table})

        evaluate(frames, stamps, frames[0], EvalConfig(holes=False), avatar, on_frame=on_frame)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{clip}.json").write_text(json.dumps({"grid": list(GRID_DEG), "shifts": list(SHIFTS_PX), "rows": rows}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="folder for <clip>.json (measure)")
    ap.add_argument("--summary", help="a folder measured before: print its figures")
    ap.add_argument("--clips", nargs="*", default=list(CLIPS), help="../shared driving clip stems")
    ap.add_argument("--step", type=int, default=2, help="measure every N-th frame")
    ap.add_argument("--max-frames", type=int, default=0, help="0 = the whole clip")
    ap.add_argument("--avatars", help="folder of av_<clip>.ply self avatars (default: reconstruct from frame 0)")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    a = ap.parse_args(argv)
    if a.out:
        for clip in a.clips:
            measure(clip, Path(a.out), a.step, a.max_frames, a.avatars, a.reader)
            print(f"{clip}: measured", flush=True)
    if a.summary:
        for clip in a.clips:
            p = Path(a.summary) / f"{clip}.json"
            if not p.is_file():
                continue
            d = json.loads(p.read_text())
            for free in (True, False):
                s = summarize(d["grid"], d["rows"], free)
                print(f"{clip} ({'position free' if free else 'position held'}; {s['frames']} frames, "
                      f"{s['clipped']} clipped) face PSNR {s['psnr_face']:.3f}: best offset {s['best_mean_deg']:+.2f} "
                      f"sd {s['best_sd_deg']:.2f} deg; sd tracker / reader / truth {s['sd_tracker']:.2f} / "
                      f"{s['sd_reader']:.2f} / {s['sd_truth']:.2f}; r truth-tracker {s['r_truth_tracker']:.3f}, "
                      f"truth-reader {s['r_truth_reader']:.3f} (tracker-reader {s['r_tracker_reader']:.3f}); slope "
                      f"truth on tracker {s['slope_truth_on_tracker']:.2f}, on reader {s['slope_truth_on_reader']:.2f}"
                      f"; best offset r brow {s['r_best_brow']:+.2f} mouth {s['r_best_mouth']:+.2f}")
                print("    dB: gain " + " ".join(f"{g}:{v:+.3f}" for g, v in s["gain_db"].items())
                      + f" | reader {s['reader_db']:+.3f} (scaled {s['reader_scaled_db']:+.3f}) | less brow "
                      f"{s['less_brow_db']:+.3f} mouth {s['less_mouth_db']:+.3f} both {s['less_both_db']:+.3f}")
    if not (a.out or a.summary):
        ap.error("give --out or --summary")
    return 0


if __name__ == "__main__":
    sys.exit(main())
