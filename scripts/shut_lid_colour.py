#!/usr/bin/env python3
"""How a shut lid's colour sits against the skin round it, per avatar, old (lashes.LID_RING 0) and new.

    python scripts/shut_lid_colour.py AVATAR.ply [AVATAR.ply ...]

Per avatar (its Driver, default DriveConfig) and eye: the lid rows of core.lashes.lid_shade (lift >= 0.5) as a full
blink draws them (lid_shade_rgb at weight 1), opacity-weighted, against the face Gaussians under the eye (heights
0.5-2.0 under the lower lid, the middle 0.2-0.8 along the eye: lid_shade's level band) at rest, printed with
lashes.LID_RING 0 (crease62's lit fill) and as the module has it: the lid's luminance over the under-eye skin's
(a real shut lid 1 / UNDER_EYE_OVER_LID), the largest channel of the lid's chromaticity (rgb / luminance) off the
under-eye skin's (a glow or a grey plate: large), the lid's top (heights 1.0-1.3) over the fold's foot (1.3-1.6)
(an edge under the fold: far from 1) and the lid's luminance spread (standard deviation over mean). The shut lid's
geometry is not drawn: colours only, at the Gaussians' rest places. Asserts nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def eye_stats(driver, part, colours, k: int) -> tuple[float, float, float, float]:
    """One eye's (k: 0 the subject's right) figures for the shut-lid colours `colours` [N, 3] of the avatar's Gaussians
    (part [N] its part labels) -> (lid / under-eye luminance, chromaticity off, lid top / fold foot, spread)."""
    from gaussian_head_ros.core import lashes
    from gaussian_head_ros.core.avatar import PART_FACE
    from gaussian_head_ros.core.colour import LUMA

    sh = driver.lid_shade
    h, u, al, e = lashes.lid_heights(driver.means, driver.verts)
    w = driver.opacities.astype(np.float64)
    c0 = driver.colors.astype(np.float64)
    und = (al > 0.2) & (al < 0.8) & (np.asarray(part) == PART_FACE) & (u >= 0.5) & (u <= 2.0) & (e == k)
    uc = (w[und] @ c0[und]) / w[und].sum()
    lid = sh.rows[(sh.eye == k) & (sh.lift >= 0.5)]
    lc = (w[lid] @ colours[lid]) / w[lid].sum()
    mid = (sh.eye == k) & (al[sh.rows] > 0.2) & (al[sh.rows] < 0.8)

    def band_luma(lo, hi):
        r = sh.rows[mid & (h[sh.rows] >= lo) & (h[sh.rows] < hi)]
        return float(w[r] @ (colours[r] @ LUMA) / w[r].sum())

    lum = colours[lid] @ LUMA
    return (float(lc @ LUMA / (uc @ LUMA)), float(np.abs(lc / (lc @ LUMA) - uc / (uc @ LUMA)).max()),
            band_luma(1.0, 1.3) / band_luma(1.3, 1.6), float(np.sqrt(np.cov(lum, aweights=w[lid])) / (lc @ LUMA)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("avatars", nargs="+", help="avatar .ply files (with their .driving.npz)")
    args = ap.parse_args()
    from gaussian_head_ros.core import lashes
    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.core.drive import Driver

    ring = lashes.LID_RING
    print("avatar eye | lid/under-eye L old new | chroma off under-eye old new | lid top/fold foot L old new | "
          "lid L std/mean old new")
    for path in args.avatars:
        avatar = load_ply(path)
        d = Driver(avatar)
        if d.lid_shade is None:
            print(f"{Path(path).stem}: no shut-lid shade")
            continue
        drawn = []
        for r in (0.0, ring):
            lashes.LID_RING = r
            c = d.colors.astype(np.float64).copy()
            c[d.lid_shade.rows] += lashes.lid_shade_rgb(d.lid_shade, np.ones(2), c[d.lid_shade.rows])
            drawn.append(c)
        lashes.LID_RING = ring
        for k in (0, 1):
            a, b = eye_stats(d, avatar.part, drawn[0], k), eye_stats(d, avatar.part, drawn[1], k)
            print(f"{Path(path).stem[:18]:18s} e{k} | " + " | ".join(f"{x:.3f} {y:.3f}" for x, y in zip(a, b)))


if __name__ == "__main__":
    main()
