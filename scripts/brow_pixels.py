#!/usr/bin/env python3
"""Whether the picture shows what the face mesh misses of a frown: the brows drawing together, read from pixels.

    python scripts/brow_pixels.py [CLIP ...] [--frames 60] [--reader FACE_LANDMARKER.task] [--sheet OUT.png]

The tracker's face mesh does not see lp_d18's brows drawing together (scripts/brow_follow.py: r -0.15 against the
reader's inner-brow distance, which follows the reader's browDown at r -0.95 over the first 60 frames). This looks
for it in the image. Per frame of each ../shared driving clip (default: all four), the brow band is resampled
frontal: a patch of the first frame's head frame (`facemesh.fit_head_frame`, K of a 12 deg camera), PATCH_PX pixels
a 90 mm outer eye span, from half a span above the eye corners' line to a tenth below, its depth the first frame's
landmarks' (linear), placed on the frame by the similarity fit of that head frame's rigid landmarks (less the
forehead's midline, which rises with the brows) onto the frame's face-mesh landmarks, the way the tracker's pose
fit places its neutral, and sampled with cv2.remap. On that patch, in mm of the head frame:
- flow_dist: DIS optical flow (cv2, ultrafast preset) from the first frame's patch, the inner brows' mean horizontal
  flow (subject's left minus right, 6-25 % of a span from the midline, 10-32 % above the eye line): + = apart;
- flow_lower: the brows' mean vertical flow there (+ = down); flow_lower_rel: the same less the nose bridge's;
- dark_dist: the distance between the two inner brows' centroids of darkness (column profiles of the brow band,
  less each frame's 20th percentile); dark_height: the brows' darkness centroid row (+ = down);
- furrow: the glabella's vertical-furrow energy (positive second x-derivative after a 1.5 px blur, over its std).
Each series is compared (Pearson r) with the reader's inner-brow distance (brow_follow's `dist`: its landmarks
rigid-aligned), its browDown ((L + R) / 2) and its brow group (reader.blendshape_groups), beside the face mesh's own
`dist` and `brows` (brow_follow.brow_measures), and `fused`: the face mesh's brows less dark_height (its mean taken
out), what feeding the pixels' lowering into the brow rows would give. The time per frame is patch + flow + profiles.
--sheet writes the clip's frontal patches at the reader's lowest and highest browDown and their difference (x4).

Measured (brow61, main a660894, load 15-20 on 2 cores: 1.3-5 ms a frame at PATCH_PX 200, 0.3-0.5 ms at 100; r
against the reader, first 60 frames / whole clip):
- The drawing together is not in the pixels. Against the reader's dist: flow_dist lp_d18 -0.40 / -0.22, lp_d0 -0.30
  / -0.28, sadtalker +0.27 / +0.05, tpsmm -0.20 / -0.69; dark_dist +0.60 / +0.32, +0.39 / +0.10, +0.82 / +0.42, -0.52
  / -0.67 (the face mesh's dist -0.15 / -0.26, +0.81 / +0.71, +0.78 / +0.55, +0.24 / +0.22): of either sign from clip
  to clip, and on lp_d18 flow_dist says apart where the reader says together. lp_d18's face is 143 px an eye span
  (0.63 mm a pixel); the reader's dist moves 0.69 mm (std, 60 frames), about a pixel.
- What lp_d18's frown moves is vertical, and the whole band with it: in the patch the brows, glabella, upper lids and
  nose bridge move down together (DIS medium: flow v std 0.29-0.41 mm each, r +0.75..+0.87 with browDown over 60
  frames); the
  brows less the bridge (flow_lower_rel) 0.00 against the brow group. The mean patches of the 10 lowest and 10
  highest browDown frames differ at the brows' and the lid folds' edges (--sheet). So the reader's frown there is a
  lowering of the upper face against the mesh's rigid frame, not the brows closing in; the face mesh's brows already
  follow it (+0.86 against the brow group).
- Lowering read from pixels does not beat the face mesh's brows. Against the brow group, dark_height / flow_lower /
  face mesh brows: lp_d18 -0.83 / -0.82 / +0.86 (60), -0.39 / -0.45 / +0.67 (216); lp_d0 +0.30 / -0.34 / +0.09, -0.26
  / -0.59 / +0.44; sadtalker -0.40 / +0.34 / +0.57, -0.73 / -0.33 / +0.89; tpsmm -0.79 / +0.22 / +0.44, -0.62 / -0.60 /
  +0.93. fused (the mesh's brows lowered by dark_height): lp_d18 0.86 / 0.59, lp_d0 -0.19 / 0.37, sadtalker 0.54 /
  0.87, tpsmm 0.72 / 0.86: better on tpsmm's first 60 frames only, worse on every whole clip. A 2-D variant of the
  patch (the frame's rigid landmarks fitted in the image, no depth) gave flow_lower r +0.88 with lp_d18's browDown over
  60 frames, +0.47 over the clip, and against the brow group sadtalker -0.11, tpsmm -0.20 over theirs; the same fit
  with the forehead's midline kept moved with the brows (lp_d18 flow_lower r +0.51 with browDown). Nothing here is fed to the tracker.
Measurement only; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from brow_follow import CLIPS, DATA, FOREHEAD_MIDLINE, aligned_mm, brow_measures, read_clip

PATCH_PX = 200  # patch pixels per 90 mm outer eye span (0.45 mm a pixel; 100 gave the same figures, coarser)
SPAN_M = 0.09  # the head frame's outer eye span (facemesh.fit_head_frame's CANONICAL_EYE_SPAN)
PATCH = (-0.5, 0.5, -0.5, 0.1)  # x0, x1, y0, y1 in spans: about the outer eye corners' middle and their line, y down
# Regions in spans (x from the midline, y from the eye line, y down): the inner brows (one side; mirrored), the
# brow band of the darkness profiles, the rows whose darkness centroid is dark_height, the glabella, the nose bridge
INNER_BROW, BAND_Y, HEIGHT = (0.06, 0.25, -0.32, -0.10), (-0.32, -0.10), (-0.4, 0.4, -0.4, -0.05)
GLABELLA, BRIDGE = (-0.08, 0.08, -0.30, -0.05), (-0.05, 0.05, -0.05, 0.08)
MEASURES = ("flow_dist", "flow_lower", "flow_lower_rel", "dark_dist", "dark_height", "furrow")


def frontal_grid(neutral: np.ndarray) -> np.ndarray:
    """[478, 3] a head frame (metres, y down) -> [h, w, 3] the head-frame points (metres) of the patch's pixels
    (PATCH, PATCH_PX; module notes), depth interpolated linearly from the landmarks above the eye line + 2 cm."""
    from scipy.interpolate import LinearNDInterpolator

    from gaussian_head_ros.core import landmarks as lmk

    x0, x1, y0, y1 = PATCH
    mid = neutral[list(lmk.OUTER_EYE), 0].mean()
    eye_y = neutral[[i for pair in lmk.EYE_CORNERS for i in pair], 1].mean()
    xs = mid + (x0 + (np.arange(int((x1 - x0) * PATCH_PX)) + 0.5) / PATCH_PX) * SPAN_M
    ys = eye_y + (y0 + (np.arange(int((y1 - y0) * PATCH_PX)) + 0.5) / PATCH_PX) * SPAN_M
    gx, gy = np.meshgrid(xs, ys)
    upper = neutral[:, 1] < eye_y + 0.02
    z = LinearNDInterpolator(neutral[upper, :2], neutral[upper, 2])(gx, gy)
    return np.stack([gx, gy, np.where(np.isfinite(z), z, np.nanmax(z))], -1)


def frontal_patch(gray: np.ndarray, landmarks_px: np.ndarray, neutral: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """[H, W] uint8 frame, its [478, 3] face-mesh landmarks (pixels), the [478, 3] head frame and its [h, w, 3]
    frontal_grid -> [h, w] uint8 patch: the grid placed by the similarity fit of the head frame's rigid landmarks
    (less FOREHEAD_MIDLINE) onto the frame's, sampled bilinearly."""
    import cv2

    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.tracking import similarity_fit

    rigid = [i for i in lmk.RIGID_LANDMARKS if i not in FOREHEAD_MIDLINE]
    s, rot, t, _ = similarity_fit(neutral[rigid], landmarks_px[rigid])
    q = (s * grid.reshape(-1, 3) @ rot.T + t).reshape(grid.shape).astype(np.float32)
    return cv2.remap(gray, q[..., 0], q[..., 1], cv2.INTER_LINEAR)


def _cells(x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
    """A region in spans -> the patch's (rows, columns)."""
    return (slice(int((y0 - PATCH[2]) * PATCH_PX), int((y1 - PATCH[2]) * PATCH_PX)),
            slice(int((x0 - PATCH[0]) * PATCH_PX), int((x1 - PATCH[0]) * PATCH_PX)))


def pixel_measures(frames, mesh_px: np.ndarray) -> tuple[dict[str, np.ndarray], float, list[np.ndarray]]:
    """Frames (VideoFrame) and their [T, 478, 3] face-mesh landmarks -> ({MEASURES name: [T] mm, or energy for
    furrow}, median ms a frame, the [h, w] patches)."""
    import cv2

    from gaussian_head_ros.core.facemesh import default_intrinsics, fit_head_frame

    h, w = frames[0].rgb.shape[:2]
    neutral = fit_head_frame(mesh_px[0], default_intrinsics(w, h, 12.0)).canonical.astype(np.float64)
    grid = frontal_grid(neutral)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    mm = SPAN_M * 1e3 / PATCH_PX
    a, b, y0, y1 = INNER_BROW
    right, left, bridge, glabella = _cells(-b, -a, y0, y1), _cells(a, b, y0, y1), _cells(*BRIDGE), _cells(*GLABELLA)
    band, height = _cells(PATCH[0], PATCH[1], *BAND_Y)[0], _cells(*HEIGHT)
    cols_r, cols_l = (np.arange(c.start, c.stop) for c in (right[1], left[1]))
    out, patches, took = {k: [] for k in MEASURES}, [], []
    for f, lm in zip(frames, mesh_px):
        t0 = time.perf_counter()
        p = frontal_patch(cv2.cvtColor(f.rgb, cv2.COLOR_RGB2GRAY), lm, neutral, grid)
        flow = dis.calc(patches[0] if patches else p, p, None) * mm
        u, v = flow[..., 0], flow[..., 1]
        out["flow_dist"].append(u[left].mean() - u[right].mean())
        lower = 0.5 * (v[left].mean() + v[right].mean())
        out["flow_lower"].append(lower)
        out["flow_lower_rel"].append(lower - v[bridge].mean())
        dark = 255.0 - p[band].astype(np.float64)
        prof = np.maximum(dark.mean(0) - np.percentile(dark.mean(0), 20), 0.0)
        out["dark_dist"].append(mm * (prof[cols_l] @ cols_l / max(prof[cols_l].sum(), 1e-9)
                                      - prof[cols_r] @ cols_r / max(prof[cols_r].sum(), 1e-9)))
        rows = 255.0 - p[height].mean(1).astype(np.float64)
        rows = np.maximum(rows - np.percentile(rows, 20), 0.0)
        out["dark_height"].append(mm * (rows @ np.arange(len(rows))) / max(rows.sum(), 1e-9))
        g = p[glabella].astype(np.float32)
        gxx = cv2.Sobel(cv2.GaussianBlur(g, (0, 0), 1.5), cv2.CV_32F, 2, 0)
        out["furrow"].append(float(np.maximum(gxx, 0).mean() / (g.std() + 1.0)))
        took.append(time.perf_counter() - t0)
        patches.append(p)
    return {k: np.array(v) for k, v in out.items()}, float(np.median(took) * 1e3), patches


def sheet(patches: list[np.ndarray], down: np.ndarray, path: str, n: int = 10) -> None:
    """The mean patch of the n frames of lowest and of highest browDown ([T]) and 128 + 4 x their difference, stacked
    and scaled x2, written to path (PNG)."""
    import cv2

    order = np.argsort(down)
    lo, hi = (np.mean([patches[i] for i in idx], 0) for idx in (order[:n], order[-n:]))
    img = np.vstack([lo, hi, 128 + 4 * (hi - lo)])
    cv2.imwrite(path, cv2.resize(np.clip(img, 0, 255).astype(np.uint8), None, fx=2, fy=2))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", default=list(CLIPS), help="../shared driving clip stems")
    ap.add_argument("--frames", type=int, default=60, help="also the whole clip (up to 300 frames) after these")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--sheet", default="", help="write each clip's patches sheet to this path (CLIP replaced)")
    args = ap.parse_args(argv)
    if not Path(args.reader).is_file():
        print(f"reader model {args.reader} not found (give --reader FACE_LANDMARKER.task)", file=sys.stderr)
        return 2

    def r(a, b):
        return float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 1e-9 and np.std(b) > 1e-9 else float("nan")

    for clip in args.clips:
        frames, read, mesh = read_clip(clip, 300, args.reader)
        for n in (min(args.frames, len(frames)), len(frames)):
            ref = brow_measures(aligned_mm(np.array([x.landmarks_px.astype(np.float64) for x in read[:n]])))
            seen = brow_measures(aligned_mm(mesh[:n]))
            down = np.array([(x.blendshapes["browDownLeft"] + x.blendshapes["browDownRight"]) / 2 for x in read[:n]])
            brow = np.array([x.groups["brow"] for x in read[:n]])
            px, ms, patches = pixel_measures(frames[:n], mesh[:n])
            rows = {f"face mesh {k}": seen[k] for k in ("dist", "brows")} | px
            rows["fused"] = seen["brows"] - (px["dark_height"] - px["dark_height"].mean())
            print(f"{clip} ({n} frames, {ms:.2f} ms a frame): r against the reader's dist / browDown / brow", flush=True)
            for name, x in rows.items():
                print(f"  {name:16s} std {np.std(x):6.3f}  {r(x, ref['dist']):+.2f} / {r(x, down):+.2f} / "
                      f"{r(x, brow):+.2f}", flush=True)
            if args.sheet and n == len(frames):
                sheet(patches, down, args.sheet.replace("CLIP", clip))
    return 0


if __name__ == "__main__":
    sys.exit(main())
