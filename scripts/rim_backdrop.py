#!/usr/bin/env python3
"""The photo's backdrop on the avatar's outline: background-hued rim pixels of each portrait's avatar, front and turned,
and sheets on black, white and mid-grey to look at (issue 11, rim63).

    python scripts/rim_backdrop.py --out DIR [--only NAME ...] [--opt KEY=JSON ...] [--yaws -25 -12 0 12 25]
    python scripts/rim_backdrop.py --out DIR --compare OLD_DIR NEW_DIR     # old | new sheets of two runs

Each ../shared portrait is reconstructed (mesh_fit with the --opt options, e.g. own_ear_rim=true) and drawn from its
source camera with the head turned to each yaw (preview.source_view, cpu rasterizer, 512 px) on black and on white:
alpha = 1 - mean(white - black), the colour the Gaussians show = black / alpha (exact for the rasterizer's over).

The measure, per view: the rim = pixels of alpha >= 0.25 within RIM_PX of the drawn silhouette (alpha 0.5), inside
it or up to 3 px outside, not within RIM_PX of the image's border. A rim pixel is background-hued when its colour's
chromaticity (rgb / max(r + g + b, 0.3), backdrop_rim.CHROMA_FLOOR) lies further than UNLIKE from every colour of
the person's palette and nearer than RATIO x that to the backdrop's, and r + g + b > 0.45 (no dark pixel: a dark
backdrop behind dark hair is no colour to see). Palettes: surfaces.edge_palettes of the photo's crop about the
avatar's own silhouette at yaw 0 (12 k-means colours 2..25 px outside it; 8..48 px inside it). The same rule as
backdrop_rim's `unlike` / `ratio`, on the render. Writes DIR/rim.json ({portrait: {counts: {yaw: n}, total}}),
DIR/sheet_<portrait>.png (rows: black, white, grey, the counted pixels in magenta) and DIR/views_<portrait>.npz.
Figures depend only on the code (no timing): compare two trees' runs (PYTHONPATH=TREE) directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PORTRAITS = ROOT.parent / "shared" / "data" / "portraits"
YAWS = (-25, -12, 0, 12, 25)
RIM_PX = 6  # the rim's depth inside the drawn silhouette, pixels at 512
MIN_ALPHA = 0.25
UNLIKE, RATIO = 0.05, 0.7
MIN_SUM = 0.45
BACKGROUNDS = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.5, 0.5, 0.5))


def chroma(c: np.ndarray) -> np.ndarray:
    """[..., 3] rgb -> [..., 3] chromaticity as backdrop_rim's (rgb / max(r + g + b, CHROMA_FLOOR))."""
    from gaussian_head_ros.core.reconstruct.backdrop_rim import CHROMA_FLOOR

    return c / np.maximum(c.sum(-1, keepdims=True), CHROMA_FLOOR)


def turned_views(avatar, yaws, size: int = 512) -> dict:
    """{yaw: (on black [H, W, 3], on white [H, W, 3])} float32 0..1."""
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import source_view

    driver = Driver(avatar)
    return {y: tuple(source_view(avatar, y, 0, size=size, background=bg, backend="cpu", driver=driver)
                     for bg in BACKGROUNDS[:2]) for y in yaws}


def alpha_of(black: np.ndarray, white: np.ndarray) -> np.ndarray:
    """[H, W] the render's coverage from its pictures on black and on white."""
    return np.clip(1.0 - (white - black).mean(-1), 0.0, 1.0)


def palettes(photo: np.ndarray, alpha0: np.ndarray):
    """(backdrop, person) chromaticity palettes [<=12, 3] of photo [S, S, 3] 0..1 about alpha0 [S, S]'s silhouette."""
    from gaussian_head_ros.core.reconstruct.surfaces import edge_palettes

    found = edge_palettes(photo, alpha0 > 0.5, 8, 12)
    if found is None:
        raise ValueError("no backdrop or no person about the silhouette")
    return chroma(found[2]).astype(np.float32), chroma(found[3]).astype(np.float32)


def backdrop_hued(black: np.ndarray, white: np.ndarray, bg_pal: np.ndarray, fg_pal: np.ndarray) -> np.ndarray:
    """[H, W] bool: the rim pixels of a view (on black, on white) whose colour is background-hued (module notes)."""
    import cv2

    from gaussian_head_ros.core.reconstruct.surfaces import nearest_distance

    alpha = alpha_of(black, white)
    sil = (alpha > 0.5).astype(np.uint8)
    d_in = cv2.distanceTransform(sil, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(1 - sil, cv2.DIST_L2, 3)
    border = np.ones_like(sil)
    border[RIM_PX:-RIM_PX, RIM_PX:-RIM_PX] = 0
    near_border = cv2.dilate(border & sil, np.ones((2 * RIM_PX + 1,) * 2, np.uint8)).astype(bool)
    rim = np.where(sil > 0, d_in < RIM_PX, d_out < 3) & (alpha >= MIN_ALPHA) & ~near_border
    ii, jj = np.nonzero(rim)
    c = np.clip(black[ii, jj] / alpha[ii, jj, None], 0.0, 1.0)
    cc = chroma(c).astype(np.float32)
    far = nearest_distance(cc, fg_pal)
    hit = (far > UNLIKE) & (nearest_distance(cc, bg_pal) < RATIO * far) & (c.sum(-1) > MIN_SUM)
    out = np.zeros(alpha.shape, bool)
    out[ii[hit], jj[hit]] = True
    return out


def sheet(photo: np.ndarray, views: dict, hued: dict) -> np.ndarray:
    """uint8 [4 H, (1 + yaws) W, 3]: the photo's crop, then each yaw on black, white and grey; last row the counted
    pixels in magenta over the view on black, dimmed."""
    rows = []
    for bg in BACKGROUNDS:
        row = [photo.astype(np.float32) / 255.0]
        for y, (b, w) in views.items():
            row.append(b + (1.0 - alpha_of(b, w))[..., None] * np.float32(bg))
        rows.append(np.concatenate(row, 1))
    row = [np.zeros_like(rows[0][:, :photo.shape[1]])]
    for y, (b, _) in views.items():
        t = 0.35 * b
        t[hued[y]] = (1.0, 0.0, 1.0)
        row.append(t)
    rows.append(np.concatenate(row, 1))
    return (np.clip(np.concatenate(rows, 0), 0, 1) * 255 + 0.5).astype(np.uint8)


def compare(old: Path, new: Path, out: Path) -> None:
    """old | new sheets per portrait from two runs' views: rows black, white, grey, each old over new."""
    import cv2

    for f in sorted(old.glob("views_*.npz")):
        g = new / f.name
        if not g.exists():
            continue
        a, b = np.load(f), np.load(g)
        yaws = sorted(int(k[1:]) for k in a.files if k.startswith("b"))
        rows = []
        for bg in BACKGROUNDS:
            for z in (a, b):
                rows.append(np.concatenate([z[f"b{y}"] + (1.0 - alpha_of(z[f"b{y}"], z[f"w{y}"]))[..., None]
                                            * np.float32(bg) for y in yaws], 1))
        img = (np.clip(np.concatenate(rows, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
        cv2.imwrite(str(out / f"old_new_{f.stem[6:]}.png"), img[..., ::-1])


def main(argv=None) -> int:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for rim.json, sheets and views")
    ap.add_argument("--only", nargs="*", default=None, help="portraits whose file name contains one of these")
    ap.add_argument("--opt", nargs="*", default=[], help="mesh_fit options KEY=JSON")
    ap.add_argument("--yaws", type=int, nargs="+", default=list(YAWS), help="head yaws, degrees (0 first is added)")
    ap.add_argument("--compare", nargs=2, metavar=("OLD_DIR", "NEW_DIR"), help="only write old | new sheets")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.compare:
        compare(Path(args.compare[0]), Path(args.compare[1]), out)
        return 0
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct import get_reconstructor

    options = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.opt)}
    yaws = sorted(set(args.yaws) | {0})
    results = {}
    with get_reconstructor("mesh_fit", **options) as rec:
        for path in sorted(PORTRAITS.glob("*")):
            if args.only and not any(s in path.name for s in args.only):
                continue
            res = rec.reconstruct(read_image(str(path)), operator_id=path.stem)
            photo = np.asarray(res.photo)
            views = turned_views(res.avatar, yaws)
            bg_pal, fg_pal = palettes(photo.astype(np.float32) / 255.0, alpha_of(*views[0]))
            hued = {y: backdrop_hued(*views[y], bg_pal, fg_pal) for y in yaws}
            counts = {str(y): int(h.sum()) for y, h in hued.items()}
            results[path.stem] = {"counts": counts, "total": sum(counts.values())}
            cv2.imwrite(str(out / f"sheet_{path.stem}.png"), sheet(photo, views, hued)[..., ::-1])
            np.savez_compressed(out / f"views_{path.stem}.npz", photo=photo,
                                **{f"b{y}": v[0] for y, v in views.items()}, **{f"w{y}": v[1] for y, v in views.items()})
            print(path.stem, json.dumps(results[path.stem]), flush=True)
    (out / "rim.json").write_text(json.dumps(results, indent=1))
    print("total", sum(r["total"] for r in results.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
