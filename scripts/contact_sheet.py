#!/usr/bin/env python3
"""Contact sheet of reconstructions, for a person to look at: per portrait one row with the photo (as the
source camera sees it), the avatar from that camera with the head turned to each yaw, and the mouth open.

    python scripts/contact_sheet.py [PHOTO ...] [-o sheet.png] [--yaws -30 -20 -10 0 10 20 30] [--size 256]

Without photos it uses every portrait in ../shared/data/portraits. Look for holes, stretched streaks,
background colours on the head's sides, and a mouth that opens onto a hole or a white patch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "portraits"


def main(argv=None) -> int:
    import cv2

    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct import ReconstructionError, get_reconstructor
    from gaussian_head_ros.core.reconstruct.preview import SHEET_YAWS, contact_sheet

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", nargs="*", help="portrait photos (default: ../shared/data/portraits/*)")
    ap.add_argument("-o", "--output", default="contact_sheet.png", help="PNG to write")
    ap.add_argument("--yaws", type=float, nargs="+", default=list(SHEET_YAWS), help="head yaws, degrees")
    ap.add_argument("--size", type=int, default=256, help="tile size, pixels")
    ap.add_argument("--mouth-open", type=float, default=0.4, help="jaw opening of the last tile (mouth_open)")
    ap.add_argument("--backend", default="mesh_fit", help="reconstructor")
    ap.add_argument("--render", default="cpu", help="rasterizer backend")
    args = ap.parse_args(argv)
    photos = args.photos or sorted(str(p) for p in DATA.glob("*"))
    if not photos:
        print("no photos given and none in ../shared/data/portraits", file=sys.stderr)
        return 2
    rows = []
    with get_reconstructor(args.backend) as rec:
        for path in photos:
            try:
                res = rec.reconstruct(read_image(path), operator_id=Path(path).stem)
            except (ReconstructionError, ValueError) as e:
                print(f"{path}: refused: {e}")
                continue
            row = contact_sheet(res.avatar, res.photo, args.yaws, args.mouth_open, args.size, args.render)
            label = f"{Path(path).name}  {res.avatar.num_gaussians} Gaussians"
            for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # outlined: legible on a white backdrop
                cv2.putText(row, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, thickness, cv2.LINE_AA)
            rows.append(row)
            print(f"{path}: {res.avatar.num_gaussians} Gaussians, yaws {args.yaws}, then mouth open")
    if not rows:
        return 1
    cv2.imwrite(args.output, np.concatenate(rows, axis=0)[..., ::-1])
    print(f"wrote {args.output} ({len(rows)} rows: photo, yaw {' '.join(f'{y:g}' for y in args.yaws)}, mouth open)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
