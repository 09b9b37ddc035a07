"""Rolled photos: how close the avatar of a portrait rotated in the image plane is to the upright portrait's avatar.

Each portrait of ../shared/data/portraits is rotated by each angle (degrees, counter-clockwise as displayed for
positive; the same W x H frame, the corners it brings in black, as an image editor's rotate leaves them) and
reconstructed (mesh_fit, the default preset) twice: with the roll left as it is (roll_upright_deg 90: the code of
before the roll correction, framing.roll_upright never runs) and as the product does it (the default
roll_upright_deg). Each avatar is drawn as the robot's display draws it (core.display framing 'head', the upright
avatar's camera for all, 256 px) at rest and driven by the first frames of a clip, and compared with the upright
portrait's avatar drawn the same way: PSNR over the pixels where either drawing shows the avatar (the rest is the
display's black). A contact sheet per portrait and angle: upright avatar | rolled photo | before | after, at rest
and on the last driven frame.

    python scripts/rolled_photos.py --out out/rolled [--angles 15 25 35 45] [--portraits business_person.png ...]

Prints one line per portrait and angle and a summary per angle (mean PSNR before -> after). Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OFF_DEG = 90.0  # roll_upright_deg that never turns a photo (head_roll_deg is within +-45 after quarter turns)


def rotated(rgb: np.ndarray, angle_deg: float) -> np.ndarray:
    """[H, W, 3] rotated by angle_deg about its centre (counter-clockwise as displayed), same size, black corners."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def draw(avatar, controls, K, view, size: int) -> list[np.ndarray]:
    """[size, size, 3] uint8 drawings of `avatar` for each control (display camera K, view)."""
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.render import rasterize

    driver = Driver(avatar)
    out = []
    for c in controls:
        p = driver.drive(c, viewmat=view)
        img = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view.astype(np.float32),
                        K.astype(np.float32), size, size, backend="cpu").image
        out.append((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    return out


def psnr_shown(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 drawings over the pixels where either is not the black background."""
    from gaussian_head_ros.core.metrics import psnr

    shown = (a.max(axis=2) > 8) | (b.max(axis=2) > 8)
    return float(psnr(a, b, shown))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the contact sheets")
    ap.add_argument("--angles", type=float, nargs="+", default=[15, 25, 35, 45], help="each also negated")
    ap.add_argument("--portraits", nargs="+", default=None, help="file names in ../shared/data/portraits")
    ap.add_argument("--clip", default="lp_d18.mp4", help="driving clip in ../shared/data/driving")
    ap.add_argument("--frames", type=int, default=3, help="driven frames (the clip's first, every 10th)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--turn-above", type=float, default=None,
                    help="roll_upright_deg of 'after' (default: the product's); 0 turns every photo by its roll")
    ap.add_argument("--preset", default="default", help="mesh_fit preset")
    args = ap.parse_args()

    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.display import AvatarFraming
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.reconstruct.base import ReconstructionError
    from gaussian_head_ros.core.render import head_viewmat
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = read_frames(str(SHARED / "driving" / args.clip), max_frames=10 * args.frames)[::10]
    tracker = FaceTracker(TrackerConfig(neutral_frames=1, smoothing=False))
    controls = [FaceControl.rest()] + [tracker.process(f.rgb, (i + 1) * 333_333_333) for i, f in enumerate(frames)]
    tracker.close()
    after = {} if args.turn_above is None else {"roll_upright_deg": args.turn_above}
    recs = {"before": get_reconstructor("mesh_fit", preset=args.preset, roll_upright_deg=OFF_DEG),
            "after": get_reconstructor("mesh_fit", preset=args.preset, **after)}
    names = args.portraits or sorted(p.name for p in (SHARED / "portraits").iterdir())
    angles = list(dict.fromkeys(a for x in args.angles for a in (x, -x)))
    table = {}  # (angle, kind) -> [rest PSNR], [driven PSNR]
    for name in names:
        photo = read_image(str(SHARED / "portraits" / name))
        upright = recs["before"].reconstruct(photo).avatar  # (as it is: the same with the default roll_upright_deg)
        K = AvatarFraming.from_avatar(upright).intrinsics("head", 30.0, args.size, args.size, 0.6, 0.9)
        view = head_viewmat(0.6)
        ref = draw(upright, controls, K, view, args.size)
        for angle in angles:
            turned = rotated(photo, angle)
            got, warned = {}, ""
            for kind, rec in recs.items():
                try:
                    result = rec.reconstruct(turned)
                except ReconstructionError as e:
                    got[kind] = None
                    warned += f" {kind}: refused ({e})"
                    continue
                got[kind] = draw(result.avatar, controls, K, view, args.size)
                warned += "".join(f" [{kind}: {w[:60]}]" for w in result.warnings if "rolled" in w)
            line = [f"{name:30s} {angle:+5.0f}"]
            for kind in recs:
                if got[kind] is None:
                    line.append(f"{kind} refused")
                    continue
                rest = psnr_shown(got[kind][0], ref[0])
                driven = float(np.mean([psnr_shown(g, r) for g, r in zip(got[kind][1:], ref[1:])]))
                table.setdefault((angle, kind), ([], []))
                table[(angle, kind)][0].append(rest)
                table[(angle, kind)][1].append(driven)
                line.append(f"{kind} rest {rest:5.2f} driven {driven:5.2f} dB")
            print("  ".join(line) + warned, flush=True)
            blank = np.zeros_like(ref[0])
            shown_photo = cv2.resize(turned, (args.size, args.size), interpolation=cv2.INTER_AREA)  # (squeezed square)
            rows = []
            for k in (0, len(controls) - 1):
                rows.append(np.concatenate([ref[k], shown_photo if k == 0 else blank] +
                                           [got[kind][k] if got[kind] is not None else blank for kind in recs], 1))
            sheet = np.concatenate(rows, 0)
            cv2.imwrite(str(out / f"{Path(name).stem}_{angle:+03.0f}.png"), sheet[..., ::-1])
    print("\nangle  kind    rest PSNR (mean, min)   driven PSNR (mean)   n")
    for (angle, kind), (rest, driven) in sorted(table.items()):
        print(f"{angle:+5.0f}  {kind:6s}  {np.mean(rest):6.2f} {np.min(rest):6.2f}        {np.mean(driven):6.2f}"
              f"             {len(rest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
