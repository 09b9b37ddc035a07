#!/usr/bin/env python3
"""Whole-head check of the learned (`rar`) reconstructor: every portrait's avatar seen from the front, from
+-90 deg and from behind; MediaPipe face detection and hole count per view; a table and a contact sheet.

The issue-16 acceptance: from behind and from +-90 deg the learned avatar shows no face (MediaPipe finds
none) and no holes; from the front it is at least as good as before. Per portrait and view:
  faces   faces MediaPipe finds in the render (core/facemesh.FaceMesh: face mesh, then the full-range
          detector on a miss), composited on BACKDROP (alpha from the renders on black and on white)
  holes   see-through pixels enclosed by the head (core/holes.hole_mask, alpha < 0.5), at --size px
  psnr    (front only) PSNR of the rest render against the source crop inside the face template's outline,
          the "as good as before at rest" figure; with --mesh-fit the training-free reconstructor's too
  person  (front only) the same PSNR over the rest of the person the photo shows above the chin (its person
          mask, MediaPipe selfie segmentation, outside the face's outline): hair, ears, neck
  spill   (front only) the render's mean alpha over the photo's background within 12 px of the person, above
          the chin: how far the avatar's outline overhangs what the photo shows as empty (0 = not at all)
  grid    (default; --no-grid skips it) faces over 18 views about +-90 deg (yaw 80/90/100 x pitch -10/0/10 each
          side) and 3 behind (yaw 160/180/200), and their largest hole: whether MediaPipe fires on one render
          swings with small render changes, the fraction over these views is the steadier figure; given several
          checkpoints (one per training seed) it also prints their mean and spread
The side and back views are relative to the head's front (`head_yaw`: the photo's own head turn, up to 18 deg
on the ../shared portraits, is taken out), the front view is the photo's.

    python scripts/whole_head_views.py --checkpoint runs/tiny/checkpoints/model.pt --out /tmp/whole_head
    python scripts/whole_head_views.py --untrained tiny --out /tmp/whole_head_untrained   # what it does by construction

Writes <out>/<label>_sheet.png (rows: portraits; columns: photo, front, +90, -90, back) and
<out>/<label>_table.json; prints one row per portrait and a summary line per model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VIEWS = (("front", 0.0), ("+90", 90.0), ("-90", -90.0), ("back", 180.0))
BACKDROP = (0.25, 0.45, 0.6)  # rgb behind the renders (detection and sheet): unlike any skin, hair or the untrained grey
# --grid: the views about +-90 deg and behind (yaw, pitch in degrees, relative to the head's front). Whether MediaPipe
# fires on one render swings with small changes of the render (the count over the 18 views +-90 of 9 portraits moved
# by 3 between two rasterizer versions); the fraction over this neighbourhood is the steadier figure.
SIDE_GRID = tuple((s * y, p) for s in (1, -1) for y in (80, 90, 100) for p in (-10, 0, 10))
BACK_GRID = ((160, 0), (180, 0), (200, 0))


def head_yaw(avatar) -> float:
    """Degrees: the photo's own head turn, the source camera's direction in the head frame (x right, z into the
    head) as a yaw. The driver turns the head by a control's yaw on top of it (a control yaw y shows the face
    from y + head_yaw(avatar) off its front), so `view - head_yaw` views the head from `view` off its front
    whatever way the photo's head was turned (up to 18 deg on the ../shared portraits)."""
    vm = np.asarray(avatar.source_camera.viewmat, np.float64)
    c = -vm[:3, :3].T @ vm[:3, 3]
    return float(np.degrees(np.arctan2(c[0], -c[2])))


def face_region(avatar, size: int) -> np.ndarray:
    """[size, size] bool: the face template's outline (convex hull of its vertices) in the source view."""
    import cv2

    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics

    K, w, h = source_intrinsics(avatar, size)
    vm = avatar.source_camera.viewmat
    pc = avatar.template_vertices @ vm[:3, :3].T + vm[:3, 3]
    uv = (pc[:, :2] / pc[:, 2:3]) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(uv.astype(np.float32)).astype(np.int32), 1)
    return mask.astype(bool)


def front_regions(avatar, person: np.ndarray, size: int, reach_px: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """[size, size] bool each, in the source view: (the person outside the face's outline, above the chin; the
    background within reach_px of the person, above the chin). person [size, size] the photo's person
    probability; the chin is the lowest row of `face_region`."""
    import cv2

    face = face_region(avatar, size)
    above = np.zeros_like(face)
    rows = np.nonzero(face)[0]
    above[:rows.max() if len(rows) else size] = True
    on = person > 0.5
    near = cv2.dilate(on.astype(np.uint8), np.ones((2 * reach_px + 1,) * 2, np.uint8)) > 0
    return on & ~face & above, near & ~on & above


def check_views(avatar, photo: np.ndarray | None, detector, size: int, backend: str = "cpu",
                grid: bool = False, segmenter=None) -> tuple[dict, list]:
    """One avatar -> ({view: {faces, holes[, psnr, person, spill]}}, [tiles uint8 [size, size, 3]]). The front is
    the photo's own view; +90, -90 and back are relative to the head's front (`head_yaw`). grid: also row["grid"] =
    {"side": [views with a face, views] over SIDE_GRID, "back": the same over BACK_GRID, "holes": max px}.
    segmenter (core/facemesh.PersonSegmenter): also the front's person PSNR and spill (module docstring)."""
    import cv2

    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.holes import hole_mask
    from gaussian_head_ros.core.reconstruct.preview import source_view

    driver = Driver(avatar)
    turn = head_yaw(avatar)

    def look(yaw, pitch=0.0):  # -> (faces found, hole pixels, the render over BACKDROP uint8, on black, alpha)
        on_black, on_white = (source_view(avatar, yaw, pitch, size=size, background=bg, backend=backend, driver=driver,
                                          orbit=True) for bg in ((0, 0, 0), (1, 1, 1)))
        alpha = np.clip(1.0 - (on_white - on_black).mean(-1, keepdims=True), 0, 1)
        shown = (np.clip(on_black + (1 - alpha) * np.asarray(BACKDROP, np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
        return len(detector.detect(shown)), int(hole_mask(on_black, on_white).sum()), shown, on_black, alpha[..., 0]

    def psnr(render, ref, m):
        mse = float(np.mean((np.clip(render, 0, 1)[m] - ref[m]) ** 2)) if m.any() else 0.0
        return round(10 * np.log10(1.0 / max(mse, 1e-10)), 2)

    row, tiles = {}, []
    for name, yaw in VIEWS:
        faces, holes, shown, on_black, alpha = look(yaw - turn if name != "front" else 0.0)
        row[name] = {"faces": faces, "holes": holes}
        if name == "front" and photo is not None:
            ref = cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            row[name]["psnr"] = psnr(on_black, ref, face_region(avatar, size))
            if segmenter is not None:
                person = cv2.resize(segmenter.probability(photo), (size, size), interpolation=cv2.INTER_LINEAR)
                rest, background = front_regions(avatar, person, size)
                row[name]["person"] = psnr(on_black, ref, rest)
                row[name]["spill"] = round(float(alpha[background].mean()), 3) if background.any() else 0.0
        tiles.append(shown)
    if grid:
        side = [look(y - turn, p)[:2] for y, p in SIDE_GRID]
        back = [look(y - turn, p)[:2] for y, p in BACK_GRID]
        row["grid"] = {"side": [sum(f > 0 for f, _ in side), len(side)], "back": [sum(f > 0 for f, _ in back), len(back)],
                       "holes": max(h for _, h in side + back),
                       "views": [[y, p, f, h] for (y, p), (f, h) in zip(SIDE_GRID + BACK_GRID, side + back)]}
    return row, tiles


def faces_by_yaw(rows: dict) -> dict:
    """{"+-80": [views with a face, views], "+-90": ..., "+-100": ..., "behind": ...} over the grid views of every
    portrait's row (`check_views(grid=True)`): where round the head MediaPipe finds the faces."""
    out = {}
    for r in rows.values():
        for y, _, f, _ in r["grid"]["views"]:
            key = "behind" if abs(y) > 150 else f"+-{abs(y)}"
            n = out.setdefault(key, [0, 0])
            n[0] += f > 0
            n[1] += 1
    return out


def untrained_checkpoint(preset: str, out: Path, source_size: int, photo: Path, detector, generator: str = "") -> Path:
    """A randomly initialised model of `preset` saved as a checkpoint (what the generator does by construction),
    its reference template the face of `photo` (training takes a clip's median face); `generator`: the preset
    whose generator it gets (default its own)."""
    import cv2
    import torch

    from gaussian_head_ros.core.model.rar import RARModel, preset_config, save_checkpoint
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo
    from gaussian_head_ros.core.reconstruct.template import template_faces

    fr = frame_photo(cv2.imread(str(photo))[:, :, ::-1].copy(), detector, FramingConfig(size=source_size))
    torch.manual_seed(0)
    cfg = preset_config(preset, source_size=source_size)
    if generator:
        cfg = preset_config(preset, source_size=source_size, generator=preset_config(generator).generator)
    model = RARModel(cfg, fr.vertices, template_faces()).eval()
    path = out / f"untrained_{preset}{'_gen_' + generator if generator else ''}.pt"
    save_checkpoint(path, model)
    return path


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", action="append", default=[], help="a trained RAR checkpoint (repeatable)")
    ap.add_argument("--untrained", action="append", default=[], help="a randomly initialised preset (repeatable)")
    ap.add_argument("--mesh-fit", action="store_true", help="also the training-free mesh_fit reconstructor (reference)")
    ap.add_argument("--portraits", default=str(Path(__file__).resolve().parents[2] / "shared/data/portraits"))
    ap.add_argument("--size", type=int, default=256, help="render side, px")
    ap.add_argument("--source-size", type=int, default=256, help="crop side of --untrained models")
    ap.add_argument("--generator", default="", help="--untrained models get this preset's generator (e.g. 300m: 55k+ Gaussians)")
    ap.add_argument("--no-grid", dest="grid", action="store_false",
                    help="only the four views (default: also the 21 views of SIDE_GRID and BACK_GRID, ~5x the time)")
    ap.add_argument("--out", default="runs/whole_head")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    import cv2

    from gaussian_head_ros.core.facemesh import FaceMesh, PersonSegmenter
    from gaussian_head_ros.core.reconstruct import get_reconstructor

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = sorted(p for p in Path(args.portraits).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not photos:
        ap.error(f"no portraits in {args.portraits}")
    models = [(Path(c).stem if len(args.checkpoint) == 1 else str(Path(c)).replace("/", "_"), "rar", {"checkpoint": c})
              for c in args.checkpoint]
    if args.mesh_fit:
        models.append(("mesh_fit", "mesh_fit", {}))
    if not models and not args.untrained:
        ap.error("give --checkpoint, --untrained or --mesh-fit")
    summary = {}
    with FaceMesh(static_image_mode=True) as detector, PersonSegmenter() as segmenter:
        models += [(f"untrained_{p}" + (f"_gen_{args.generator}" if args.generator else ""), "rar",
                    {"checkpoint": str(untrained_checkpoint(p, out, args.source_size, photos[0], detector, args.generator))})
                   for p in args.untrained]
        for label, backend, options in models:
            rows, sheet = {}, []
            with get_reconstructor(backend, **options) as rec:
                for photo in photos:
                    rgb = cv2.imread(str(photo))[:, :, ::-1].copy()
                    try:
                        res = rec.reconstruct(rgb)
                    except ValueError as e:  # e.g. no usable face: reported, not fatal
                        print(f"{label:24s} {photo.stem:28s} not reconstructed: {e}")
                        continue
                    row, tiles = check_views(res.avatar, res.photo, detector, args.size, grid=args.grid, segmenter=segmenter)
                    rows[photo.stem] = row
                    first = cv2.resize(res.photo, (args.size, args.size), interpolation=cv2.INTER_AREA)
                    sheet.append(np.concatenate([first] + tiles, 1))
                    g = row.get("grid")
                    print(f"{label:24s} {photo.stem:28s} " + "  ".join(
                        f"{v}: faces {row[v]['faces']} holes {row[v]['holes']:4d}"
                        + (f" psnr {row[v]['psnr']:.2f} person {row[v]['person']:.2f} spill {row[v]['spill']:.2f}"
                           if "psnr" in row[v] else "") for v, _ in VIEWS)
                        + (f"  grid: side {g['side'][0]}/{g['side'][1]} back {g['back'][0]}/{g['back'][1]} holes {g['holes']}"
                           if g else ""), flush=True)
            cv2.imwrite(str(out / f"{label}_sheet.png"), np.concatenate(sheet)[:, :, ::-1])
            (out / f"{label}_table.json").write_text(json.dumps(rows, indent=2))
            s = {"portraits": len(rows),
                 "faces_side_back": sum(r[v]["faces"] > 0 for r in rows.values() for v in ("+90", "-90", "back")),
                 "views_side_back": 3 * len(rows),
                 "holes_side_back_max": max((r[v]["holes"] for r in rows.values() for v in ("+90", "-90", "back")), default=0),
                 "faces_front": sum(r["front"]["faces"] > 0 for r in rows.values()),
                 "front_psnr_mean": round(float(np.mean([r["front"]["psnr"] for r in rows.values()])), 2) if rows else None,
                 "front_person_psnr_mean": round(float(np.mean([r["front"]["person"] for r in rows.values()])), 2) if rows else None,
                 "front_spill_mean": round(float(np.mean([r["front"]["spill"] for r in rows.values()])), 3) if rows else None}
            if args.grid and rows:
                s.update({f"grid_{k}": [sum(r["grid"][k][i] for r in rows.values()) for i in (0, 1)] for k in ("side", "back")})
                s["grid_holes_max"] = max(r["grid"]["holes"] for r in rows.values())
                s["grid_faces_by_yaw"] = faces_by_yaw(rows)
            summary[label] = s
            print(f"== {label}: side/back views with a face {s['faces_side_back']}/{s['views_side_back']}, max holes "
                  f"{s['holes_side_back_max']} px at {args.size} px; front: face found {s['faces_front']}/{s['portraits']}, "
                  f"face-region PSNR {s['front_psnr_mean']} dB, rest of the person {s['front_person_psnr_mean']} dB, spill "
                  f"{s['front_spill_mean']}", flush=True)
            if "grid_side" in s:
                print(f"== {label} grid: views about +-90 deg with a face {s['grid_side'][0]}/{s['grid_side'][1]}, "
                      f"behind {s['grid_back'][0]}/{s['grid_back'][1]}, max holes {s['grid_holes_max']} px; by yaw: "
                      + ", ".join(f"{y}: {n[0]}/{n[1]}" for y, n in s["grid_faces_by_yaw"].items()), flush=True)
    seeds = [label for label, _, options in models if options.get("checkpoint") in args.checkpoint]
    if args.grid and len(seeds) > 1:  # the --checkpoint models, e.g. one per training seed: the spread between them
        frac = np.array([summary[k]["grid_side"][0] / max(summary[k]["grid_side"][1], 1) for k in seeds if k in summary])
        summary["spread"] = {"side_fraction_mean": round(float(frac.mean()), 4), "side_fraction_std": round(float(frac.std()), 4),
                             "models": len(frac)}
        print(f"== over the {len(frac)} checkpoints: views about +-90 deg with a face {100 * frac.mean():.1f} % "
              f"+- {100 * frac.std():.1f} % (std over models; min {100 * frac.min():.1f}, max {100 * frac.max():.1f})")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
