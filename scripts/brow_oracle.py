#!/usr/bin/env python3
"""What seeing a frown's brows draw together would be worth: the reader's own inner-brow distance fed to the avatar.

    python scripts/brow_oracle.py AVATAR.ply [AVATAR.ply ...] [--clip lp_d18] [--frames 60] [--gains 0,2,5]
                                  [--reader FACE_LANDMARKER.task]

The face mesh does not see lp_d18's brows drawing together (scripts/brow_follow.py) and the pixels do not show it
either (scripts/brow_pixels.py). This measures the ceiling of any source of it: the clip is evaluated as the
living-face table evaluates a cross pair (core.evaluate, 60 frames, reader on, no image metrics, the avatar given)
with a tracker whose every control has its brows' inner points drawn towards the midline by gain x half the reader's
own inner-brow distance below its clip mean (brow_follow's `dist`, mm of a 90 mm eye span, taken as metres / 1000 of
the head frame), weighed BROW_WEIGHTS from the inner end out; the landmarks and the expression alike. Printed per
avatar and gain: the reader's brow r and slope (render against driver) and jaw r (which must not move).

Measured (brow61, main a660894, main's avatars of the nine portraits in the living-face table, lp_d18's 60 frames;
reader brow r at gain 0 / 2 / 5): astronaut_eileen_collins 0.73 / 0.79 / 0.84, business_person 0.93 / 0.92 / 0.90,
lp_d8_man_glasses 0.92 / 0.93 / 0.92, lp_d9_woman_turned 0.07 / 0.10 / 0.24, lp_s9_monalisa 0.00 / 0.22 / 0.48,
obama_official 0.94 / 0.94 / 0.94, obama_speech 0.01 / 0.20 / 0.40, trump_official 0.51 / 0.25 / 0.10,
two_children_multiface 0.76 / 0.78 / 0.81; mean 0.540 / 0.571 / 0.624; jaw r within 0.003. The slope of the
failing ones stays 0.00-0.13 (the reader sees little brow motion on those faces whatever drives them). So even the
reader's own distance, drawn at five times its millimetres, gives lp_d18's nine crosses +0.08 (about +0.03 on the
table's brow mean over its 27 pairs with a brow r) and costs trump_official 0.41. (Gain 0 is this harness's main:
the table's rows differ, e.g. obama_speech -0.25 there, by the source photo it passes and the reader's noise.)
Measurement only; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from brow_follow import DATA, aligned_mm, brow_measures, read_clip

# The brows' inner points drawn together (subject's right, left pairs) and the share of the shift each takes: the
# inner end (55/285 lower contour, 107/336 upper) all of it, the next points along the brow less
BROW_WEIGHTS = {(55, 285): 1.0, (107, 336): 1.0, (65, 295): 0.6, (66, 296): 0.6, (52, 282): 0.3, (105, 334): 0.3}


def drawn_together(control, shift_m: float):
    """FaceControl -> the same with each brow's BROW_WEIGHTS points moved shift_m (metres, head frame; + = towards
    the midline) x their weight along x, in its landmarks and its expression."""
    lm, ex = control.landmarks.copy(), control.expression.copy()
    for (right, left), w in BROW_WEIGHTS.items():
        for i, dx in ((right, shift_m * w), (left, -shift_m * w)):  # head frame x: subject's right to left
            lm[i, 0] += dx
            ex[i, 0] += dx
    return replace(control, landmarks=lm, expression=ex)


def main(argv=None) -> int:
    from gaussian_head_ros.core import tracking
    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.core.evaluate import EvalConfig, evaluate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("avatars", nargs="+", help="avatar .ply files (reconstructed once, as the table does)")
    ap.add_argument("--clip", default="lp_d18", help="../shared driving clip stem")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--gains", default="0,2,5", help="comma-separated multiples of the reader's distance")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    args = ap.parse_args(argv)
    if not Path(args.reader).is_file():
        print(f"reader model {args.reader} not found (give --reader FACE_LANDMARKER.task)", file=sys.stderr)
        return 2
    frames, read, _ = read_clip(args.clip, args.frames, args.reader)
    dist_mm = brow_measures(aligned_mm(np.array([r.landmarks_px.astype(np.float64) for r in read])))["dist"]
    shift_m = dict(zip((f.stamp_ns for f in frames), 0.5e-3 * (dist_mm.mean() - dist_mm)))  # per brow, at gain 1
    base = tracking.FaceTracker
    gain = 0.0

    class OracleTracker(base):
        """FaceTracker whose controls have the brows drawn together by the reader's distance x gain."""

        def process(self, rgb, stamp_ns, K=None):
            """FaceTracker.process, then `drawn_together` by gain x the frame's shift (frames of the clip only)."""
            c = super().process(rgb, stamp_ns, K)
            if c is None or not c.face_detected or not gain or stamp_ns not in shift_m:
                return c
            return drawn_together(c, gain * shift_m[stamp_ns])

    tracking.FaceTracker = OracleTracker  # evaluate() imports it from the module when it runs
    try:
        for g in (float(x) for x in args.gains.split(",")):
            gain, rs = g, []
            for path in args.avatars:
                cfg = EvalConfig(max_frames=args.frames, image_metrics=False, reader_model=args.reader, holes=False)
                m = evaluate([f.rgb for f in frames], [f.stamp_ns for f in frames], None, cfg, load_ply(path))
                rs.append(m.get("r_brow"))
                print(f"{Path(path).stem:32s} gain {g:g}: brow r {m.get('r_brow')} slope {m.get('slope_brow')} "
                      f"jaw r {m.get('r_jaw')}", flush=True)
            known = [r for r in rs if r is not None]
            print(f"gain {g:g}: mean brow r {np.mean(known):.3f} over {len(known)}", flush=True)
    finally:
        tracking.FaceTracker = base
    return 0


if __name__ == "__main__":
    sys.exit(main())
