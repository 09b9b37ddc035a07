#!/usr/bin/env python3
"""The reader (and the tracker) on the avatar turned to known head poses with its rest expression (issue 11).

    python scripts/pose_sweep.py [--portraits NAME ...] [--self] [--axes pitch yaw | --replay CLIP ... | --jaw]
                                 [--out DIR]

Separates what the avatar's geometry does from what driving does: each avatar (mesh_fit, from every
../shared portrait, and with --self from each clip's frame 0) is rendered at rest (zero expression, head
at 2 m on the optical axis, 512², 12 deg field of view as `gaussian-head eval` uses), turned about one
axis, and MediaPipe's FaceLandmarker (the reader of core/reader.py, video mode as in eval) and the
tracker (core/tracking.py, bundled face mesh, no smoothing) read every render. Two sweeps per axis,
0 -> +A -> -A -> 0 so that each angle is seen going up and going down:

- wide (+-20 deg, 2 deg steps): the reader's slope (read deg per true deg; MediaPipe reads the avatar's
  angle scaled by this), its r with the true angle, its hysteresis (largest difference between the two
  readings of one angle), and what it reads into the expression of a head that does not move its face:
  the reader's brow group (core/reader.py) and the tracker's brow displacement (mm, + = up) per degree;
  and `depth_gain`: the depth scale at which MediaPipe's face mesh landmarks turn as a rigid body (`depth_gain()`).
- small (+-2 deg, 0.25 deg steps): the reader's residual std about its straight line = its noise on this
  face at rest, and from it the highest r a driver of angle std s can reach when the avatar follows it
  exactly: r_max(s) = 1 / sqrt(1 + (noise / (slope s))^2) (the driver's own reader noise comes on top).
  `--driver-std` gives the s values (default: the ../shared clips' 60-frame reader std of that angle).
  The reader in video mode reads a turning head about one frame late (measured: residual 0.17 deg at lag
  0, 0.11 at lag 1 on obama_official); it lags the driver's frames alike, which r does not see, so the
  noise is taken at the lag (0-3 frames) that fits best (`lag_frames`), and so is the hysteresis.

--replay CLIP: instead, each avatar is driven by the clip's tracked controls (first --frames frames) with
the head pose held at the first frame's, and the reader's head angles on those renders are compared with
its angles on the driver: every degree the reader sees the still head turn is read into the avatar's
pose from its expression (r_<angle>_replay = r of those readings with the driver's, std_<angle>_replay
their std; the driver's std for scale). The tracker reads the same renders too (std_<angle>_tracker_replay):
the head never moves, so that std is what the tracker's pose takes from the face. `--region lower` drives
only the expression below the nose base (mouth, jaw), `upper` the rest. Measured at e539296 (60 frames,
lower): self lp_d0 tracker pitch std 0.80 deg vs reader 0.16; lp_d9_woman_turned by lp_d18 reader 1.51
(whole expression 1.66, upper only 0.34): the reader reads the avatar's mouth as head pitch.

--jaw: instead, how readable each avatar's own jaw is. The avatar at rest (frontal, as above) with its
lower face turned about its own jaw hinge (`deform.jaw_pivot`) by 0..--jaw-max deg (`jaw_turn_expression`:
every template point below the line where the lips meet turns, the upper lip stays, the mouth corners turn
half), and the reader's jawOpen on each render (video mode, the angle rising then falling back). Per avatar:
jaw_open_at (the mean of the two readings of each angle), onset_deg (the smallest angle read at >= 0.1) and
slope_per_deg (least squares over the whole range). The reader in video mode carries state from frame to frame,
so a reading depends on the sequence: compare runs with the same --jaw-max (at 12/1.5 instead of 15/1.5, lp_d8
read 0.033 at 12 deg instead of 0.089). The control's chin displacement is the same for every
avatar in canonical metres (outer eye corners 9 cm), so a difference between avatars is how the reader reads
that face, not how far its chin moves (jaw12, session 12: the visible chin moves as far as the template's on
self and cross avatars alike). Measured at db7338d (`--jaw --self`, 1.5-deg steps), onset_deg: the clips' own
frame 0 (self avatars) 3-6, obama_official / obama_speech 4.5, astronaut 6, trump / two_children 7.5, monalisa
9, business_person 10.5, lp_d8 13.5 (lp_d9's scream reads 0.14 at rest). jawOpen at 6 deg: self 0.13-0.27,
Obamas 0.28, business 0.018, lp_d8 0.004. Sadtalker's control turns the jaw 6.6-9.6 deg while talking (its
first 32 frames): the late-onset avatars' cross pairs have the table's lowest jaw slopes (business 0.13-0.15).

Prints one line per avatar and axis (or clip), and writes DIR/pose_sweep.json; asserts nothing. One
avatar and axis is ~30 s of CPU (a reconstruction, ~60 renders, two readers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# Reader std of the head angles over the first 60 frames of each ../shared clip (deg; the living-face
# table of main@2add236, `scripts/living_face_table.py --max-frames 60`): the amplitudes a small-motion clip gives r.
DRIVER_STD_DEG = {"pitch": {"lp_d0": 0.64, "lp_d18": 0.78, "tpsmm_driving": 2.88, "sadtalker": 7.46},
                  "yaw": {"lp_d0": 0.31, "lp_d18": 0.54, "tpsmm_driving": 0.83, "sadtalker": 7.26}}
DEPTH_M, SIZE_PX, FOV_DEG = 2.0, 512, 12.0


def angles(amp: float, step: float) -> np.ndarray:
    """0 -> +amp -> -amp -> 0 in steps of `step` degrees."""
    up = np.arange(0.0, amp + 1e-9, step)
    return np.concatenate([up, up[::-1][1:], -up[1:], -up[::-1][1:]])


def sweep(driver, axis: str, degs: np.ndarray, reader_model: str) -> list[dict]:
    """Render the driven avatar at rest turned by each angle about `axis`; read each render -> rows."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.control import FaceControl, euler_deg, euler_to_quat
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import FaceMesh, default_intrinsics
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig

    brow = np.array(lmk.BROW_R + lmk.BROW_L)
    K = default_intrinsics(SIZE_PX, SIZE_PX, FOV_DEG)
    rows = []
    with FaceReader(reader_model) as reader, FaceTracker(TrackerConfig(fov_deg=FOV_DEG, smoothing=False)) as tracker, \
            FaceMesh(static_image_mode=False, max_faces=1) as mesh:
        for i, a in enumerate(degs):
            c = FaceControl.rest()
            c.rotation = euler_to_quat(**{f"{axis}_deg": float(a)}).astype(np.float32)
            c.translation = np.array([0.0, 0.0, DEPTH_M], np.float32)
            img = (np.clip(render_control(driver, c, K, SIZE_PX, SIZE_PX).image, 0, 1) * 255 + 0.5).astype(np.uint8)
            stamp = (i + 1) * 33_333_333
            r, t = reader.read(img, stamp), tracker.process(img, stamp, K)
            row = {"true_deg": float(a), "reader_deg": None, "reader_brow": None, "tracker_brow_mm": None}
            if r is not None:
                row.update(reader_deg=r.angles_deg[axis], reader_brow=r.groups["brow"])
            if t is not None and t.face_detected and len(t.expression):
                row["tracker_brow_mm"] = float(-np.asarray(t.expression)[brow, 1].mean() * 1000)
                row["tracker_deg"] = euler_deg(t.rotation)[axis]
            faces = mesh.detect(img)  # the tracker's landmark model, for depth_gain (summarize drops these)
            row["_px"] = faces[0].landmarks_px.astype(np.float64) if faces else None
            rows.append(row)
    return rows


def depth_gain(rows: list[dict], axis: str, min_deg: float = 6.0) -> dict:
    """How deep MediaPipe's face mesh behaves: the gain k on the first (frontal) render's landmark depth (z) for which
    the first render's rigid landmarks (`landmarks.RIGID_LANDMARKS`), turned by each render's true angle (at least
    `min_deg`), land where the face mesh sees them in that render (x, y; mean x, y offset fitted per render).
    k = 1: the landmarks move as a rigid body of MediaPipe's own depth; k < 1: their x, y move as if the face were
    shallower (they under-follow the turn). Measured (brow13, session 13, astronaut / obama_official /
    business_person): pitch k 0.70 / 0.70 / 0.75 (rms 1.7-1.9 px vs 2.7-3.0 px at k = 1, 512^2 at 2 m, 12 deg fov),
    yaw 0.90 / 0.90 / 1.10 (rms 1.5-1.7 px). A pose fit that takes z at face value turns the head's pitch partly
    into expression (the tracked brow's pitch leak). -> {"k": k, "rms_px": rms at k, "rms_px_k1": rms at k = 1}."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.control import euler_to_quat, quat_to_matrix

    rigid = np.array(lmk.RIGID_LANDMARKS)
    first = next((r for r in rows if r.get("_px") is not None and r["true_deg"] == 0.0), None)
    turned = [r for r in rows if r.get("_px") is not None and abs(r["true_deg"]) >= min_deg]
    if first is None or not turned:
        return {}
    p0 = first["_px"][rigid]
    rots = [quat_to_matrix(euler_to_quat(**{f"{axis}_deg": r["true_deg"]})) for r in turned]

    def rms(k: float) -> float:
        q = (p0 - p0.mean(0)) * np.array([1.0, 1.0, k])
        err = []
        for r, rot in zip(turned, rots):
            pred = (q @ rot.T)[:, :2]
            seen = r["_px"][rigid, :2]
            err.append(np.mean(np.sum((seen - seen.mean(0) - (pred - pred.mean(0))) ** 2, 1)))
        return float(np.sqrt(np.mean(err)))

    grid = np.round(np.arange(0.3, 1.51, 0.05), 2)
    e = [rms(k) for k in grid]
    j = int(np.argmin(e))
    return {"k": float(grid[j]), "rms_px": round(e[j], 2), "rms_px_k1": round(rms(1.0), 2)}


def jaw_turn_expression(verts: np.ndarray, deg: float) -> np.ndarray:
    """[V >= 468, 3] rest template (head frame, metres, y down) and a jaw turn (deg, + = opening) -> [468, 3]
    the expression that turns the lower face about the template's jaw hinge (`deform.jaw_pivot`, about x):
    points below the line where the lips meet (mean of the inner lip midpoints) turn fully, from 1.5 mm above
    it not at all (a smooth step), the upper inner lip never, the mouth corners by half. A synthetic stimulus
    for the --jaw sweep, not a driving rule (the drive takes the tracker's measured expression)."""
    from gaussian_head_ros.core import deform
    from gaussian_head_ros.core import landmarks as lmk

    v = np.asarray(verts, np.float64)[:lmk.NUM_MESH]
    lip_y = 0.5 * (v[lmk.UPPER_LIP_IN, 1] + v[lmk.LOWER_LIP_IN, 1])
    w = deform.smoothstep(lip_y - 0.0015, lip_y - 0.0005, v[:, 1])
    w[list(lmk.LIP_UPPER_INNER)] = 0.0  # (a closed mouth's inner lips share one height)
    w[[lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L, lmk.MOUTH_CORNER_R_IN, lmk.MOUTH_CORNER_L_IN]] = 0.5
    pivot = deform.jaw_pivot(v)
    turn = deform.axis_angle_x(np.array([np.radians(deg)]))[0]
    return ((v - pivot) @ turn.T + pivot - v) * w[:, None]


def jaw_sweep(driver, max_deg: float, step: float, reader_model: str) -> dict:
    """The avatar at rest (frontal, DEPTH_M) with its jaw turned 0 -> max_deg -> 0 (`jaw_turn_expression`);
    the reader's jawOpen on each render (video mode) -> figures (see the module docstring)."""
    from dataclasses import replace

    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.reader import FaceReader

    up = np.arange(0.0, max_deg + 1e-9, step)
    degs = np.concatenate([up, up[::-1][1:]])
    K = default_intrinsics(SIZE_PX, SIZE_PX, FOV_DEG)
    rest = driver.verts
    reads = {}
    with FaceReader(reader_model) as reader:
        for i, a in enumerate(degs):
            ex = jaw_turn_expression(rest, float(a))
            c = FaceControl.rest()
            c.translation = np.array([0.0, 0.0, DEPTH_M], np.float32)
            c = replace(c, expression=ex.astype(np.float32), landmarks=(rest[:len(ex)] + ex).astype(np.float32))
            img = (np.clip(render_control(driver, c, K, SIZE_PX, SIZE_PX).image, 0, 1) * 255 + 0.5).astype(np.uint8)
            r = reader.read(img, (i + 1) * 33_333_333)
            if r is not None:
                reads.setdefault(round(float(a), 3), []).append(float(r.blendshapes["jawOpen"]))
    at = {a: round(float(np.mean(v)), 3) for a, v in sorted(reads.items())}
    x, y = np.array(list(at)), np.array(list(at.values()))
    onset = next((a for a, v in at.items() if v >= 0.1), None)
    return {"jaw_open_at": {f"{a:g}": v for a, v in at.items()}, "onset_deg": onset,
            "slope_per_deg": round(float(np.polyfit(x, y, 1)[0]), 4) if len(x) > 2 else None}


def held_region(control, first, region: str):
    """The control with the head pose of `first` (a FaceControl) and only one region of its expression: "all",
    "lower" (landmarks below the nose base in `first`'s head frame: mouth, jaw, lower cheeks; eyelids and gaze
    held at `first`'s) or "upper" (the rest; mouth_open 0)."""
    from dataclasses import replace

    from gaussian_head_ros.core import landmarks as lmk

    c = replace(control, rotation=first.rotation, translation=first.translation)
    if region == "all":
        return c
    below = np.asarray(first.landmarks)[:, 1] > float(first.landmarks[lmk.NOSE_BASE, 1])  # [L] head frame, y down
    keep = below if region == "lower" else ~below
    ex = np.where(keep[:, None], c.expression, 0.0).astype(np.float32)
    lm = np.where(keep[:, None], c.landmarks, c.landmarks - c.expression).astype(np.float32)
    if region == "lower":
        return replace(c, expression=ex, landmarks=lm, eyelid_ratios=first.eyelid_ratios, gaze=first.gaze)
    return replace(c, expression=ex, landmarks=lm, mouth_open=0.0)


def replay(driver, clip: str, max_frames: int, reader_model: str, region: str = "all") -> dict:
    """Drive with the clip's tracked expression (`region` of it: see held_region), head pose held at the first
    frame's -> reader angle figures (see the module docstring), and the tracker's (bundled face mesh, no
    smoothing) readings of the same renders, whose true pose never moves (std_<angle>_tracker_replay)."""
    from gaussian_head_ros.core.control import euler_deg
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.reader import ANGLES, FaceReader
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(clip, max_frames=max_frames or None)
    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h, FOV_DEG)
    first = None
    series = {k: {a: [] for a in ANGLES} for k in ("driver", "render", "tracker_replay")}
    with FaceTracker(TrackerConfig(fov_deg=FOV_DEG)) as tracker, FaceReader(reader_model) as rd, \
            FaceReader(reader_model) as rr, FaceTracker(TrackerConfig(fov_deg=FOV_DEG, smoothing=False)) as reread:
        for f in frames:
            c = tracker.process(f.rgb, f.stamp_ns, K)
            if c is None or not c.face_detected:
                continue
            first = first or c
            c = held_region(c, first, region)
            img = (np.clip(render_control(driver, c, K, w, h).image, 0, 1) * 255 + 0.5).astype(np.uint8)
            a, b, t = rd.read(f.rgb, f.stamp_ns), rr.read(img, f.stamp_ns), reread.process(img, f.stamp_ns, K)
            if a is None or b is None or t is None or not t.face_detected:
                continue
            tracked = euler_deg(t.rotation)
            for k in ANGLES:
                series["driver"][k].append(a.angles_deg[k])
                series["render"][k].append(b.angles_deg[k])
                series["tracker_replay"][k].append(tracked[k])
    out = {"region": region, "frames": len(series["driver"]["yaw"])}
    for k in ANGLES:
        d, r = np.array(series["driver"][k]), np.array(series["render"][k])
        out[f"std_{k}_driver"] = round(float(np.std(d)), 3)
        out[f"std_{k}_replay"] = round(float(np.std(r)), 3)
        out[f"r_{k}_replay"] = round(float(np.corrcoef(d, r)[0, 1]), 3) if len(d) > 2 and np.std(r) > 0 else None
        out[f"std_{k}_tracker_replay"] = round(float(np.std(series["tracker_replay"][k])), 3)
    return out


def _series(rows, key):
    return np.array([np.nan if r.get(key) is None else r[key] for r in rows], np.float64)


def _best_lag(x: np.ndarray, y: np.ndarray, max_lag: int = 3) -> int:
    """The lag (frames) at which reading y[i] fits the true x[i - lag] best (least residual std)."""
    best, lag_best = np.inf, 0
    for lag in range(max_lag + 1):
        xx, yy = x[:len(x) - lag], y[lag:]
        ok = np.isfinite(yy)
        if ok.sum() < 5:
            continue
        res = float(np.std(yy[ok] - np.polyval(np.polyfit(xx[ok], yy[ok], 1), xx[ok])))
        if res < best:
            best, lag_best = res, lag
    return lag_best


def summarize(wide: list[dict], small: list[dict], driver_std: dict) -> dict:
    """Figures of one avatar and axis (see the module docstring)."""
    out = {}
    x, y = _series(wide, "true_deg"), _series(wide, "reader_deg")
    lag = _best_lag(x, y)
    x, y = x[:len(x) - lag], y[lag:]
    out["lag_frames"] = lag
    ok = np.isfinite(y)
    out["found"] = f"{int(ok.sum())}/{len(y)}"
    if ok.sum() >= 5:
        slope, icpt = np.polyfit(x[ok], y[ok], 1)
        out.update(slope=round(float(slope), 3), r_wide=round(float(np.corrcoef(x[ok], y[ok])[0, 1]), 4))
        pairs = {}
        for a, v in zip(x[ok], y[ok]):
            pairs.setdefault(round(a, 3), []).append(v)
        out["hysteresis_deg"] = round(max((max(v) - min(v) for v in pairs.values() if len(v) > 1), default=0.0), 2)
        for key, name in (("reader_brow", "reader_brow_per_deg"), ("tracker_brow_mm", "tracker_brow_mm_per_deg")):
            b = _series(wide, key)[lag:]  # read at the same lag as the angle
            k = np.isfinite(b)
            if k.sum() >= 5:
                out[name] = round(float(np.polyfit(x[k], b[k], 1)[0]), 4)
                out[name.replace("_per_deg", "_ptp")] = round(float(np.ptp(b[k])), 3)
    xs, ys = _series(small, "true_deg"), _series(small, "reader_deg")
    lag_s = _best_lag(xs, ys)
    xs, ys = xs[:len(xs) - lag_s], ys[lag_s:]
    out["lag_frames_small"] = lag_s
    ok = np.isfinite(ys)
    if ok.sum() >= 5:
        slope, icpt = np.polyfit(xs[ok], ys[ok], 1)
        noise = float(np.std(ys[ok] - (slope * xs[ok] + icpt)))
        out.update(slope_small=round(float(slope), 3), r_small=round(float(np.corrcoef(xs[ok], ys[ok])[0, 1]), 4),
                   noise_deg=round(noise, 3))
        out["r_max"] = {clip: round(1.0 / float(np.sqrt(1.0 + (noise / max(abs(slope) * s, 1e-9)) ** 2)), 3)
                        for clip, s in driver_std.items()}
    return out


def main(argv=None) -> int:
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.video import read_frames

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="data folder with driving/ and portraits/")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--portraits", nargs="*", default=None, help="portrait file stems (default: all)")
    ap.add_argument("--self", dest="self_", action="store_true", help="also each clip's frame 0")
    ap.add_argument("--axes", nargs="*", default=["pitch", "yaw"], choices=["pitch", "yaw", "roll"])
    ap.add_argument("--wide", type=float, nargs=2, default=[20.0, 2.0], metavar=("AMP", "STEP"))
    ap.add_argument("--small", type=float, nargs=2, default=[2.0, 0.25], metavar=("AMP", "STEP"))
    ap.add_argument("--driver-std", type=float, nargs="*", default=None, help="driver angle std (deg) for r_max")
    ap.add_argument("--replay", nargs="*", default=[], help="clips: drive each avatar with a clip's expression, "
                    "head pose held (instead of the sweeps)")
    ap.add_argument("--frames", type=int, default=60, help="frames of each --replay clip (0 = all)")
    ap.add_argument("--region", choices=("all", "lower", "upper"), default="all",
                    help="--replay: drive only this part of the expression (lower = below the nose base)")
    ap.add_argument("--jaw", action="store_true", help="instead: the reader's jawOpen on each avatar's own jaw "
                    "turned 0..--jaw-max deg (module docstring)")
    ap.add_argument("--jaw-max", type=float, nargs=2, default=[15.0, 1.5], metavar=("MAX", "STEP"))
    ap.add_argument("--out", default="out/pose_sweep", help="output folder")
    args = ap.parse_args(argv)
    if not Path(args.reader).is_file():
        print(f"reader model {args.reader} not found (give --reader FACE_LANDMARKER.task)", file=sys.stderr)
        return 1
    data = Path(args.data)
    sources = [p for p in sorted((data / "portraits").glob("*"))
               if args.portraits is None or p.stem in args.portraits]
    if args.self_:
        sources += sorted((data / "driving").glob("*.mp4"))
    results, t0 = [], time.perf_counter()
    for src in sources:
        rgb = read_frames(str(src), max_frames=1)[0].rgb if src.suffix == ".mp4" else read_image(str(src))
        with get_reconstructor("mesh_fit") as rec:
            driver = Driver(rec.reconstruct(rgb).avatar)
        if args.jaw:
            s = jaw_sweep(driver, *args.jaw_max, args.reader)
            results.append({"source": src.name, "jaw": True, **s})
            print(f"{src.stem:28s} jaw   onset_deg={s['onset_deg']} slope_per_deg={s['slope_per_deg']} "
                  + " ".join(f"{a}:{v}" for a, v in s["jaw_open_at"].items()), flush=True)
            continue
        for clip in args.replay:
            clip_path = clip if Path(clip).is_file() else str(data / "driving" / f"{clip}.mp4")
            s = replay(driver, clip_path, args.frames, args.reader, args.region)
            results.append({"source": src.name, "replay": Path(clip_path).stem, **s})
            print(f"{src.stem:28s} {Path(clip_path).stem:12.12s} " + " ".join(f"{k}={v}" for k, v in s.items()),
                  flush=True)
        for axis in ([] if args.replay else args.axes):
            std = ({f"{s:g}deg": s for s in args.driver_std} if args.driver_std
                   else DRIVER_STD_DEG.get(axis, {"1deg": 1.0}))
            wide = sweep(driver, axis, angles(*args.wide), args.reader)
            small = sweep(driver, axis, angles(*args.small), args.reader)
            s = summarize(wide, small, std)
            s["depth_gain"] = depth_gain(wide, axis)
            for row in wide + small:
                row.pop("_px", None)
            results.append({"source": src.name, "axis": axis, **s, "wide": wide, "small": small})
            print(f"{src.stem:28s} {axis:5s} " + " ".join(f"{k}={v}" for k, v in s.items()), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "wall_s": round(time.perf_counter() - t0, 1), "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()]}
    (out / "pose_sweep.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(f"{meta['wall_s']} s, load {meta['load_avg_1_5_15']}; wrote {out / 'pose_sweep.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
