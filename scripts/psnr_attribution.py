#!/usr/bin/env python3
"""Where the self-reenactment PSNR goes, frame by frame (issue 11's "+2 dB over the original" line).

    python scripts/psnr_attribution.py --out DIR [--clips lp_d0 ...] [--max-frames 60] [--worst 2]

For each ../shared driving clip (self: frame 0 is the photo; mesh_fit avatar), every frame `gaussian-head eval`
scores (its own loop, `evaluate.evaluate`'s on_frame: bundled face-mesh tracker, the source camera's perspective,
the render over frame 0, `evaluate.head_mask` of the real frame) gets:

- psnr (eval's figure), psnr_plate (over the person-free plate), psnr_static (frame 0 itself as the prediction);
- per region of the head mask, its share of the squared error, its share of the pixels and `ifperfect_<region>`,
  the frame's PSNR were that region exact (REGIONS: face interior, eyes, brows, mouth = inside the outer lips,
  hair = above the brows, sides = ears / hair / jaw band between brows and chin, torso = below the chin,
  outline = the mask's 4 px inner edge, taken first);
- psnr_shift: the best PSNR over whole-pixel shifts of the render (image and alpha together, +-6 px in steps of
  2) - what a better head position alone could give;
- psnr_face_held: the face interior's PSNR with the expression, lids and gaze held at frame 0's control and the
  head pose as tracked, beside psnr_face (as driven) and psnr_face_static - what the driven expression gives.

Writes DIR/<clip>.json (the per-frame rows) and DIR/<clip>_f<i>.png for the `--worst` frames of lowest PSNR
(driver | render | error x4 | regions); prints one summary per clip. Asserts nothing; ~2 s a frame.
Measured at b9026fb (60 frames; psnr16's report, /work/coord/reports/psnr16_s16.md, says what it showed): the
error sits in the sides, torso and outline (49-78 % of it), not the face interior (10-17 %), and a better head
position alone gives at most +0.3 dB.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CLIPS = ("lp_d0", "lp_d18", "sadtalker_WDA_KatieHill_000", "tpsmm_driving")
REGIONS = ("face", "eyes", "brows", "mouth", "hair", "sides", "torso", "outline")
REGION_RGB = {"face": (255, 0, 0), "eyes": (0, 255, 255), "brows": (128, 0, 255), "mouth": (0, 255, 0),
              "hair": (0, 0, 255), "sides": (255, 128, 0), "torso": (255, 255, 0), "outline": (255, 0, 255)}
OUTLINE_PX = 4  # the mask's inner edge band
SHIFT_PX, SHIFT_STEP = 6, 2


def _hull(shape, points: np.ndarray, grow_px: int = 0) -> np.ndarray:
    import cv2

    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.asarray(points)[:, :2].astype(np.int32)), 1)
    if grow_px:
        m = cv2.dilate(m, np.ones((2 * grow_px + 1,) * 2, np.uint8))
    return m.astype(bool)


def regions(landmarks_px: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """[478, 3] real-frame landmarks (px) and the [H, W] head mask -> {region: [H, W] bool}, disjoint, covering
    the mask (the module docstring's REGIONS)."""
    import cv2

    from gaussian_head_ros.core import landmarks as lmk

    lm, shape = landmarks_px, mask.shape
    face = _hull(shape, lm[: lmk.NUM_MESH])
    eyes = _hull(shape, lm[list(lmk.EYE_CONTOUR_R)], 3) | _hull(shape, lm[list(lmk.EYE_CONTOUR_L)], 3)
    brows = _hull(shape, lm[list(lmk.BROW_R)], 3) | _hull(shape, lm[list(lmk.BROW_L)], 3)
    mouth = _hull(shape, lm[list(lmk.LIP_OUTER)], 2)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3) >= OUTLINE_PX
    rows = np.arange(shape[0])[:, None]
    brow_y = lm[list(lmk.BROW_R) + list(lmk.BROW_L), 1].min()
    r = {"outline": mask & ~inside}
    r["mouth"] = mask & inside & mouth
    r["eyes"] = mask & inside & eyes & ~r["mouth"]
    r["brows"] = mask & inside & brows & ~r["eyes"] & ~r["mouth"]
    r["face"] = mask & inside & face & ~mouth & ~eyes & ~brows
    rest = mask & inside & ~face & ~mouth & ~eyes & ~brows
    r["hair"] = rest & (rows < brow_y)
    r["torso"] = rest & (rows > lm[lmk.CHIN, 1])
    r["sides"] = rest & ~r["hair"] & ~r["torso"]
    return r


def _over(image: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The render (float on black, [H, W] alpha) over a float [0, 1] background -> uint8, as eval composites."""
    return (np.clip(image + (1.0 - alpha[..., None]) * background, 0, 1) * 255 + 0.5).astype(np.uint8)


def _shifted(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """a [H, W, ...] moved by (dx, dy) whole pixels, zeros where it leaves."""
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    dst = (slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0)))
    out[dst] = a[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def _sheet(path: Path, rgb, pred, err, mask, reg) -> None:
    import cv2

    e = cv2.applyColorMap(np.clip(np.sqrt(err) * 4, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1].copy()
    e[~mask] //= 3
    col = rgb // 3
    for k, c in REGION_RGB.items():
        col[reg[k]] = c
    cv2.imwrite(str(path), np.concatenate([rgb, pred, e, col], 1)[..., ::-1])


def attribute_clip(clip: str, out: Path, max_frames: int, worst: int) -> list[dict]:
    """One self clip -> its per-frame rows (module docstring); writes DIR/<clip>.json and the worst frames' PNGs.
    The frames are eval's own (`evaluate.evaluate`'s on_frame: its tracking, camera, render, composite and mask);
    this adds the regions, the shifts and the held expression."""
    from gaussian_head_ros.core.evaluate import EvalConfig, evaluate
    from gaussian_head_ros.core.metrics import psnr
    from gaussian_head_ros.core.video import read_frames

    vf = read_frames(str(DATA / "driving" / f"{clip}.mp4"), max_frames=max_frames or None)
    frames, stamps = [f.rgb for f in vf], [f.stamp_ns for f in vf]
    rows, kept, first = [], {}, []

    def measure(f) -> None:
        i, rgb, o, pred, mask, bg0 = f.index, f.rgb, f.render, f.pred, f.mask, f.background
        if not first:  # the expression, lids and gaze psnr_face_held keeps: frame 0's
            first.append(f.control)
        err = ((pred.astype(np.float64) - rgb) ** 2).mean(-1)
        reg = regions(f.landmarks_px, mask)
        row = {"frame": i, "psnr": f.psnr, "psnr_plate": f.psnr_plate,
               "psnr_static": psnr(frames[0], rgb, mask) if i else None}
        total = err[mask].sum()
        for k in REGIONS:
            rest = err[mask & ~reg[k]].sum() / mask.sum()
            row[f"share_{k}"] = float(err[reg[k]].sum() / total)
            row[f"pixels_{k}"] = float(reg[k].sum() / mask.sum())
            row[f"ifperfect_{k}"] = float(10 * np.log10(255.0 ** 2 / max(rest, 1e-9)))
        best = row["psnr"]
        for dy in range(-SHIFT_PX, SHIFT_PX + 1, SHIFT_STEP):
            for dx in range(-SHIFT_PX, SHIFT_PX + 1, SHIFT_STEP):
                if dx or dy:
                    moved = _over(_shifted(o.image, dx, dy), _shifted(o.alpha, dx, dy), bg0)
                    best = max(best, psnr(moved, rgb, mask))
        row["psnr_shift"] = best
        face = reg["face"] | reg["eyes"] | reg["brows"] | reg["mouth"]
        held = replace(f.control, expression=first[0].expression, landmarks=first[0].landmarks, gaze=first[0].gaze,
                       eyelid_ratios=first[0].eyelid_ratios, blendshapes=first[0].blendshapes,
                       blendshape_names=first[0].blendshape_names, mouth_open=first[0].mouth_open)
        oh = f.render_control(held)
        row.update(psnr_face=psnr(pred, rgb, face),
                   psnr_face_held=psnr(_over(oh.image, oh.alpha, bg0), rgb, face),
                   psnr_face_static=psnr(frames[0], rgb, face) if i else None)
        rows.append(row)
        kept[i] = (rgb, pred, err, mask, reg)

    m = evaluate(frames, stamps, config=EvalConfig(holes=False), on_frame=measure)
    assert abs(m["psnr"] - np.mean([r["psnr"] for r in rows])) < 1e-3, "not eval's frames"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{clip}.json").write_text(json.dumps(rows, indent=0))
    for r in sorted(rows, key=lambda r: r["psnr"])[:worst]:
        _sheet(out / f"{clip}_f{r['frame']}.png", *kept[r["frame"]])
    return rows


def summary(clip: str, rows: list[dict]) -> str:
    """Means over the frames (frame 0 included, as eval's psnr; psnr_static and the static face from frame 1)."""
    def mean(k):
        v = [r[k] for r in rows if r.get(k) is not None]
        return float(np.mean(v)) if v else float("nan")

    lines = [f"{clip} ({len(rows)} frames): psnr {mean('psnr'):.2f} plate {mean('psnr_plate'):.2f} "
             f"static photo {mean('psnr_static'):.2f} (frames 1..) | best shift {mean('psnr_shift'):.2f} "
             f"({mean('psnr_shift') - mean('psnr'):+.2f} dB) | face {mean('psnr_face'):.2f}, expression held "
             f"{mean('psnr_face_held'):.2f}, static {mean('psnr_face_static'):.2f}"]
    lines += [f"  {k:8s} error {100 * mean('share_' + k):5.1f} %  pixels {100 * mean('pixels_' + k):5.1f} %  "
              f"if exact {mean('ifperfect_' + k):.2f} dB" for k in REGIONS]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for <clip>.json and the worst frames' PNGs")
    ap.add_argument("--clips", nargs="*", default=list(CLIPS), help="../shared driving clip stems")
    ap.add_argument("--max-frames", type=int, default=60, help="0 = the whole clip (the table uses 60)")
    ap.add_argument("--worst", type=int, default=2, help="PNG sheets of this many lowest-PSNR frames per clip")
    a = ap.parse_args()
    for clip in a.clips:
        print(summary(clip, attribute_clip(clip, Path(a.out), a.max_frames, a.worst)), flush=True)


if __name__ == "__main__":
    main()
