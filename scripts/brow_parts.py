#!/usr/bin/env python3
"""What the reader's brow score on a render is made of: the avatar's brows, or the rest of its face.

    python scripts/brow_parts.py AVATAR.ply [AVATAR.ply ...] [--clip lp_d18] [--frames 0]
                                 [--reader FACE_LANDMARKER.task] [--lid-frames 90,96] [--lid-sweep FRAME]

The clip is tracked once as `gaussian-head eval` tracks it (FaceTracker, 12 deg camera) and read by the reader (core/
reader.py, video mode). Each avatar is driven by those controls twice and each render read: as the table drives it
(`full`), and with the brows' own motion taken out (`rest`): every frame's BROW_HANDLES rows (the brows and the skin
row below them, expression.BROW_HANDLES) set, in the control's expression and landmarks, to their clip-mean height
above the eye corners (the rest of the face, the eye corners included, moves as tracked). `brow part` = full - rest:
what the brows themselves add to the reader's brow group (reader.blendshape_groups; the reader is not linear, so the
split is approximate). Printed per avatar: Pearson r and least-squares slope against the driver's brow group of full,
rest and brow part, and the std of rest and brow part; the rest's r with the render's own jaw, blink and gaze_v groups
(its crosstalk); `blink step`: the render's brow group over the driver's blink frames (blink group > BLINK_GROUP)
less over the FRAMES_BEFORE frames before each blink, beside the driver's (a real blink barely moves it).
--lid-frames OPEN,SHUT: also `lids_only` (below) on those two frames of the clip. --lid-sweep FRAME: also `lid_sweep`:
that frame's control with its lid ratios x LID_SWEEP (1 as tracked .. 0 shut), each read in image mode (brow, blink).

Measured (brow62, main 84bca35, main's avatars of the nine portraits in the living-face table (/tmp/s61av), lp_d18's
216 frames, load 15-30 on 2 cores: 1-3 min an avatar). The driver's brow group on lp_d18 is browDown alone (browDown
0.554 +- 0.079; browInnerUp 0.000, browOuterUp 0.003 +- 0.002 on every frame); it follows the driver's own jaw (r
+0.42) and pucker (+0.64); blinks at frames 94-99 and 186-189, blink step +0.040. full r is the whole-clip table's
(/tmp/lf/full61b) to the second decimal. Per avatar, r full / rest / brow part, brow part slope, std rest / brow part;
the rest's r with the render's jaw, blink; blink step (self: the operator's own avatar from the clip's frame 0,
driven here with the 12 deg camera; its table row is 0.70 too):
  astronaut_eileen_collins  0.38 / 0.23 / 0.31  0.06  0.029 / 0.017  jaw +0.04 blink -0.66  -0.082
  business_person           0.74 / 0.60 / 0.64  0.31  0.085 / 0.039  jaw +0.58 blink +0.07  +0.051
  lp_d8_man_glasses         0.79 / 0.75 / 0.62  0.30  0.096 / 0.039  jaw +0.51 blink -0.16  +0.009
  lp_d9_woman_turned        0.55 / 0.23 / 0.62  0.31  0.052 / 0.040  jaw -0.23 blink +0.05  +0.084
  lp_s9_monalisa            0.14 /-0.13 / 0.50  0.15  0.043 / 0.023  jaw +0.28 blink -0.47  -0.105
  obama_official            0.75 / 0.69 / 0.67  0.16  0.061 / 0.019  jaw +0.68 blink -0.21  -0.071
  obama_speech              0.37 / 0.17 / 0.56  0.16  0.064 / 0.023  jaw +0.23 blink -0.00  +0.025
  trump_official            0.46 / 0.32 / 0.46  0.15  0.081 / 0.026  jaw +0.51 blink -0.48  -0.227
  two_children_multiface    0.75 / 0.67 / 0.64  0.29  0.061 / 0.036  jaw +0.40 blink +0.07  +0.087
  self (lp_d18 frame 0)     0.70 / 0.56 / 0.71  0.27  0.061 / 0.030  jaw +0.29 blink -0.49  -0.063
On every avatar the rest of the face moves the reader's brow score 1.3-3.2x as much as the brows do (std), and the
brows' own part follows the driver about alike everywhere (r 0.46-0.67, but astronaut 0.31: her thin, arched brows read
browDown ~0.07, near the score's floor; a one-off sweep of her brows +-2 mm at frames 30 and 170 moved her brow group
0.04 a mm, trump_official 0.04, obama_official 0.05, the other six 0.06-0.11). A cross's whole-clip r is whether the
rest's crosstalk happens to follow the driver: on obama_official and business_person it follows the render's jaw, as the
driver's brows follow his; on monalisa it follows her blink and runs against the driver. Lids only (frame 90's control
with frame 96's shut lids, image mode): the reader moves its brow landmarks 1.1-3.6 px down on all nine while the image
above the brows' lower contour changes 0.00-0.04 grey levels (5-24 below it): the blink step is the reader reading brows
from the eyes, not brows the avatar moves. Leaving the blink frames (+-4) out raises full r astronaut 0.38 -> 0.57,
trump 0.46 -> 0.57, monalisa 0.14 -> 0.22 (nine crosses' mean 0.548 -> 0.591). Turning off the closed lid's crease map
(DriveConfig.lid_crease_skin_m 0), the lash map or its smoothing did not lower trump's or monalisa's blink step (its
browDown step trump +0.21 -> +0.22-0.23, monalisa +0.10 -> +0.14-0.15). The brow strip (core/brow_strip.py) does nothing
on lp_d18: its brows stay 1.3-3.3 mm below the rest in the control, and the strip lightens only raises above the photo's
own brows. Measurement only; asserts nothing.

Measured again on the 60-frame window of the living-face table (brow63, main ec6e7eb, the lead's avatars /tmp/s63av,
load 10-25). Where the 60-frame brow r (0.678 over 30 pairs; lp_d0's driver does not move its brows) is lost, per
clip (mean over its ten pairs, /tmp/lf/s63): lp_d18 0.513, tpsmm_driving 0.679, sadtalker_WDA_KatieHill_000 0.841; of
the 0.172 the mean lacks for 0.85, lp_d18 makes 0.112, tpsmm 0.057, sadtalker 0.003.
- lp_d18, 60 frames (`--clip lp_d18 --frames 60`; the driver's brow group follows his own jaw at r +0.87 there):
  obama_speech full -0.42 / rest -0.70 / brow part +0.86 (slope 0.27), lp_s9_monalisa -0.20 / -0.67 / +0.85 (0.20),
  lp_d9_woman_turned +0.09 / -0.67 / +0.81 (0.30); their rest follows the render's jaw at -0.74..-0.81. The brows
  themselves follow the driver on every face; the reader reads those faces' opening mouth as brows coming down, and
  at a fifth to a third of the driver's slope the brows do not outweigh it.
- tpsmm_driving, 60 frames (`--clip tpsmm_driving --frames 60 --lid-frames 16,21 --lid-sweep 16`): full / rest /
  brow part r, the rest's r with the render's blink: astronaut_eileen_collins 0.45 / 0.02 / 0.33, -0.55;
  business_person 0.46 / -0.10 / 0.57, -0.35; lp_d8_man_glasses 0.31 / 0.13 / 0.26, -0.31; lp_d9 0.79 / 0.41 / 0.46;
  monalisa 0.66 / 0.29 / 0.44; obama_official 0.76 / 0.12 / 0.44; obama_speech 0.82 / 0.34 / 0.48; trump 0.82 / 0.29
  / 0.41; two_children 0.84 / 0.35 / 0.41 (brow part slope 0.19-0.53 everywhere). The blink at frames 19-24: leaving
  frames 17-26 out of the table's series lifts astronaut 0.448 -> 0.785, lp_d8 0.312 -> 0.412, self 0.868 -> 0.927,
  the ten tpsmm pairs 0.679 -> 0.755 (the 30-pair mean +0.025); `scripts/reader_ablation.py --ablations 'lids held'`
  (lid ratios at 1): astronaut 0.45 -> 0.66, lp_d8 0.31 -> 0.62, business_person 0.46 -> 0.50, monalisa 0.66 -> 0.78.
  (BLINK_GROUP does not suit tpsmm, whose open eyes read 0.33-0.38: its `blink step` there is not a blink's.)
  Lid sweep on frame 16 (brow at lid share 1 / 0.6 / 0.45 / 0: trump +0.13 / +0.04 / +0.05 / +0.18, obama_official
  +0.08 / +0.03 / +0.07 / +0.13, lp_d9 +0.46 / +0.34 / +0.36 / +0.47, monalisa +0.21 / +0.14 / +0.17 / +0.30,
  lp_d8 +0.44 / +0.35 / +0.24 / +0.17): on six of nine faces a half-closed lid reads as lowered brows (a squint) and a
  shut one does not; lp_d8 (glasses) drops all the way. Our shut lids read blink 0.39-0.60 (the driver's 0.68-0.76).
- Tried on the blink step (frame 16's control with frame 21's lids, image mode, nine avatars; tpsmm and lp_d18 90 /
  96), no change beyond +-0.03 on any face, so nothing kept: the shut lid's shade off (DriveConfig.lid_shade 0), the
  lash map off, the crease map off, the eyeballs kept under a shut lid, and the fold row above the lid following the
  closing margin down by 0.3 / 0.6 of its fall (trump's step -0.104 -> -0.167 / -0.127 on lp_d18, lp_d8 +0.100 ->
  +0.178 / +0.194: scatter, not a cure). The upper lids closing as a curtain (each margin vertex falling by the middle
  pair's fall, none below its partner, in place of `deform.retarget_eyelids`' scaling of every pair's gap) took the
  half-closed dip away on business_person, obama_official, obama_speech, trump and two_children (lid share 0.6: +0.34
  -> +0.44, +0.03 -> +0.11, +0.22 -> +0.33, +0.04 -> +0.10, +0.51 -> +0.58) and not on lp_d8 / lp_d9, but the tracker's
  own per-pair lid ratios show real blinks closing by scaling (tpsmm 19-24, lp_d18 94-98, sadtalker 23-35, lp_d0 64-67,
  /tmp/j63: the pairs next to the corners within 0.12 of the middle pair's ratio, e.g. lp_d0 64 right 0.44 / 0.46 /
  0.51, tpsmm 19 right 0.61 / 0.59 / 0.60, where a curtain closes those pairs, 2-3 mm apart at rest against the
  middle's ~10, once the middle is half shut): not the operator's lid, not kept.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from brow_follow import DATA

BLINK_GROUP = 0.3  # the driver's blink group above this: a blink frame (lp_d18 reads 0.10-0.21 open, 0.45-0.62 shut)
FRAMES_BEFORE = 6  # the blink's baseline: this many frames, ending 2 frames before the blink starts


def brows_held(controls, handles: np.ndarray, corners: list[int]):
    """[T] FaceControls -> the same with every frame's `handles` rows set to their clip-mean height (y, head frame)
    above the mean of `corners`, in the expression and the landmarks; frames without a face left as they are."""
    seen = [c for c in controls if c is not None and c.face_detected]
    mean = np.mean([c.expression[handles, 1] - c.expression[corners, 1].mean() for c in seen], 0)
    out = []
    for c in controls:
        if c is None or not c.face_detected:
            out.append(c)
            continue
        dy = mean + c.expression[corners, 1].mean() - c.expression[handles, 1]
        ex, lm = c.expression.copy(), c.landmarks.copy()
        ex[handles, 1] += dy
        lm[handles, 1] += dy
        out.append(replace(c, expression=ex, landmarks=lm))
    return out


def read_renders(driver, controls, stamps, K, size, reader_model: str) -> list[dict]:
    """Each control rendered (core.evaluate.render_control, on black) and read (video mode) -> [T] reader group dicts,
    {} where the reader or the tracker found no face."""
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.reader import FaceReader

    out = []
    with FaceReader(reader_model) as reader:
        for c, t in zip(controls, stamps):
            if c is None or not c.face_detected:
                out.append({})
                continue
            img = render_control(driver, c, K, *size).image
            f = reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), t)
            out.append(f.groups if f is not None else {})
    return out


def series(groups: list[dict], name: str) -> np.ndarray:
    """[T] reader group dicts -> [T] one group's values, NaN where missing."""
    return np.array([g.get(name, np.nan) for g in groups], np.float64)


def r_slope(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Pearson r and least-squares slope of y on x over the frames where both are finite."""
    m = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[m], y[m])[0, 1]), float(np.polyfit(x[m], y[m], 1)[0])


def blink_step(brow: np.ndarray, blink: np.ndarray) -> float:
    """The brow group over the blink frames (blink > BLINK_GROUP) less over the FRAMES_BEFORE frames before each."""
    shut = blink > BLINK_GROUP
    starts = np.flatnonzero(shut & ~np.r_[False, shut[:-1]])
    before = sorted({i for s in starts for i in range(max(0, s - FRAMES_BEFORE - 2), max(0, s - 2))})
    if not shut.any() or not before:
        return float("nan")
    return float(np.nanmean(brow[shut]) - np.nanmean(brow[before]))


def lids_only(driver, open_control, shut_lids: np.ndarray, K, size, reader_model: str) -> dict[str, float]:
    """One frame's control rendered as it is and with only its eyelid ratios ([14], FaceControl.eyelid_ratios) replaced
    by shut_lids, both read (image mode) -> {"brow_open", "brow_shut": the reader's brow group; "landmarks_dy_px": its
    brow landmarks' (lmk.BROW_R + BROW_L) mean move down, pixels; "pixels_above", "pixels_below": the mean absolute
    change (grey levels, 0..255) of the image above the brows' lower contour (lmk.BROW_LOWER_R + _L, as the reader
    places it on the open frame) and below it, over the brows' and eyes' box}. Raises ValueError when the reader finds
    no face in either render."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.reader import FaceReader

    imgs = [(np.clip(render_control(driver, c, K, *size).image, 0, 1) * 255 + 0.5).astype(np.uint8)
            for c in (open_control, replace(open_control, eyelid_ratios=np.asarray(shut_lids, np.float32)))]
    with FaceReader(reader_model, video=False) as reader:
        read = [reader.read(i) for i in imgs]
    if any(r is None for r in read):
        raise ValueError("the reader found no face in the open or the shut render")
    brows = list(lmk.BROW_R + lmk.BROW_L)
    lm = read[0].landmarks_px
    box = lm[brows + [i for eye in lmk.EYE_CORNERS for i in eye], :2]
    (x0, y0), (x1, y1) = box.min(0).astype(int), box.max(0).astype(int) + 1
    cut = int(lm[list(lmk.BROW_LOWER_R + lmk.BROW_LOWER_L), 1].mean())
    diff = np.abs(imgs[0].astype(np.float64) - imgs[1])
    return {"brow_open": read[0].groups["brow"], "brow_shut": read[1].groups["brow"],
            "landmarks_dy_px": float(np.mean(read[1].landmarks_px[brows, 1] - lm[brows, 1])),
            "pixels_above": float(diff[y0:cut, x0:x1].mean()), "pixels_below": float(diff[cut:y1, x0:x1].mean())}


LID_SWEEP = (1.0, 0.75, 0.6, 0.45, 0.3, 0.0)  # --lid-sweep's shares of the frame's own lid ratios


def lid_sweep(driver, control, K, size, reader_model: str, shares=LID_SWEEP) -> list[tuple[float, float, float]]:
    """One frame's control rendered with its eyelid ratios ([14], FaceControl.eyelid_ratios) times each share (1: as
    tracked, 0: shut; the other channels as tracked), each render read (image mode) -> [(share, the reader's brow
    group, its blink group)], NaN where the reader finds no face."""
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.reader import FaceReader

    out = []
    with FaceReader(reader_model, video=False) as reader:
        for k in shares:
            c = replace(control, eyelid_ratios=(np.asarray(control.eyelid_ratios) * k).astype(np.float32))
            r = reader.read((np.clip(render_control(driver, c, K, *size).image, 0, 1) * 255 + 0.5).astype(np.uint8))
            out.append((k, r.groups["brow"], r.groups["blink"]) if r is not None else (k, np.nan, np.nan))
    return out


def main(argv=None) -> int:
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.expression import BROW_HANDLES
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("avatars", nargs="+", help="avatar .ply files (reconstructed once, as the table does)")
    ap.add_argument("--clip", default="lp_d18", help="../shared driving clip stem")
    ap.add_argument("--frames", type=int, default=0, help="first frames only (0: the whole clip)")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--lid-frames", default="90,96",
                    help="OPEN,SHUT: also render frame OPEN's control with frame SHUT's lids only ('' = skip)")
    ap.add_argument("--lid-sweep", type=int, default=-1, metavar="FRAME",
                    help="also render frame FRAME's control with its lids closed step by step (LID_SWEEP; -1 = skip)")
    args = ap.parse_args(argv)
    if not Path(args.reader).is_file():
        print(f"reader model {args.reader} not found (give --reader FACE_LANDMARKER.task)", file=sys.stderr)
        return 2
    frames = read_frames(str(DATA / "driving" / f"{args.clip}.mp4"), args.frames or None)
    if args.lid_sweep >= len(frames):
        print(f"--lid-sweep {args.lid_sweep} is past the clip's {len(frames)} frames read", file=sys.stderr)
        return 2
    stamps = [f.stamp_ns for f in frames]
    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h, 12.0)
    with FaceTracker(TrackerConfig(fov_deg=12.0)) as tracker:
        controls = [tracker.process(f.rgb, f.stamp_ns, K) for f in frames]
    with FaceReader(args.reader) as reader:
        driver_read = [(lambda r: r.groups if r is not None else {})(reader.read(f.rgb, f.stamp_ns)) for f in frames]
    brow, blink = series(driver_read, "brow"), series(driver_read, "blink")
    print(f"{args.clip} ({len(frames)} frames): driver brow std {np.nanstd(brow):.3f}, blink frames "
          f"{np.flatnonzero(blink > BLINK_GROUP).tolist()}, blink step {blink_step(brow, blink):+.3f}", flush=True)
    held = brows_held(controls, np.asarray(BROW_HANDLES), list(lmk.EYE_CORNERS[0] + lmk.EYE_CORNERS[1]))
    for path in args.avatars:
        drv = Driver(load_ply(path))
        full = read_renders(drv, controls, stamps, K, (w, h), args.reader)
        rest = read_renders(drv, held, stamps, K, (w, h), args.reader)
        fb, rb = series(full, "brow"), series(rest, "brow")
        cells = []
        for name, y in (("full", fb), ("rest", rb), ("brow part", fb - rb)):
            r, s = r_slope(y, brow)
            cells.append(f"{name} r {r:+.2f} slope {s:+.2f} std {np.nanstd(y):.3f}")
        cross = "  ".join(f"{g} {r_slope(rb, series(full, g))[0]:+.2f}" for g in ("jaw", "blink", "gaze_v"))
        print(f"{Path(path).stem:32s} " + " | ".join(cells) + f" | rest r with the render's {cross} | blink step "
              f"{blink_step(fb, blink):+.3f}", flush=True)
        if args.lid_frames:
            a, b = (int(v) for v in args.lid_frames.split(","))
            m = lids_only(drv, controls[a], controls[b].eyelid_ratios, K, (w, h), args.reader)
            print(f"{'':32s} lids only (frame {a}, frame {b}'s lids): brow {m['brow_open']:+.2f} -> "
                  f"{m['brow_shut']:+.2f}, "
                  f"its brow landmarks {m['landmarks_dy_px']:+.2f} px down; pixels above the brows' lower contour "
                  f"{m['pixels_above']:.2f}, below {m['pixels_below']:.2f} grey levels", flush=True)
        if args.lid_sweep >= 0:
            cells = lid_sweep(drv, controls[args.lid_sweep], K, (w, h), args.reader)
            print(f"{'':32s} lid sweep (frame {args.lid_sweep}, lid ratios x share: brow / blink): "
                  + "  ".join(f"{k:.2f}: {b:+.2f} / {k2:.2f}" for k, b, k2 in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
