#!/usr/bin/env python3
"""Contact sheets of avatars under each clip's strongest controls, for a person to look at (issue 11's list:
seams, holes, streaks, smears, wrong colours, teeth, mouth interior, lids, hair edge, ears, neck).

    python scripts/strong_frames.py --series /tmp/lf/full61b/pairs --controls /tmp/j54 --avatars /tmp/s61av \
        --out /tmp/strong [--yaws 0 25 -25] [--size 256] [--only tpsmm]

Per clip, the frames where the independent reader (FaceLandmarker, a living-face table's `reader_series` of the
clip's self pair, `scripts/living_face_table.py --max-frames 0`) read the driver most strongly: its largest
jawOpen, smile, pucker, brow raise and lowering, blink, and its head turn (yaw, pitch) farthest from the clip's
median. Each sheet is one clip at one extra head yaw (degrees, turned on top of the tracked pose): rows the
avatars (DIR/av_<name>.ply; `self:<clip>` rows from --self-avatars when given), columns those frames, each tile
the tracked control of that frame (--controls DIR/<clip>.jsonl, FaceControl JSON lines as `gaussian-head track`
writes them) with the head at 1 m in front of a 12 deg camera (the face fills the tile), labelled
'<avatar> <frame> <what>'. Writes OUT/<clip>_yaw<deg>.png and prints the frames chosen.

A sheet with all nine ../shared portraits and 8 frames at 256 px is 2048 x 2304 px: look at it in pieces
(an image viewer, or crop rows). Time: ~0.1-0.3 s a tile on the 2-core machine after the first (numba warm-up).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

# what each column shows: (the reader series' name, 'max' / 'min' / 'turn': farthest from its median)
STRONGEST = (("jaw", "max"), ("smile", "max"), ("pucker", "max"), ("brow", "max"), ("brow", "min"),
             ("blink", "max"), ("yaw", "turn"), ("pitch", "turn"))


def strongest_frames(series: dict) -> list[tuple[int, str]]:
    """The driver's reader series of one pair ({name: [T] floats or None}) -> [(frame index, label)] of STRONGEST,
    each frame once (the first label that picked it), in STRONGEST's order. Series missing or all None are
    skipped."""
    out, seen = [], set()
    for name, how in STRONGEST:
        v = np.array([np.nan if x is None else x for x in series.get(name) or []], np.float64)
        if not len(v) or np.all(np.isnan(v)):
            continue
        if how == "turn":
            v = np.abs(v - np.nanmedian(v))
        i = int(np.nanargmin(v) if how == "min" else np.nanargmax(v))
        if i not in seen:
            seen.add(i)
            out.append((i, f"{name} {how}"))
    return out


def turned(control, yaw_deg: float):
    """The FaceControl with its head turned by yaw_deg more (about the head's own vertical axis) and at 1 m straight
    in front of the camera."""
    from gaussian_head_ros.core.control import euler_to_quat, matrix_to_quat, quat_to_matrix

    R = quat_to_matrix(np.asarray(control.rotation, np.float64)) @ quat_to_matrix(
        euler_to_quat(yaw_deg, 0.0, 0.0).astype(np.float64))
    return replace(control, rotation=matrix_to_quat(R).astype(np.float32),
                   translation=np.array([0.0, 0.0, 1.0], np.float32))


def main(argv=None) -> int:
    import cv2

    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", required=True, help="a living-face table's pairs/ folder (self__<clip>.json)")
    ap.add_argument("--controls", required=True, help="folder of <clip>.jsonl tracked controls")
    ap.add_argument("--avatars", required=True, help="folder of av_<name>.ply")
    ap.add_argument("--self-avatars", help="folder of av_<clip>.ply: a 'self' row per clip")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--yaws", type=float, nargs="+", default=[0.0, 25.0, -25.0], help="extra head yaws, degrees")
    ap.add_argument("--size", type=int, default=256, help="tile size, pixels")
    ap.add_argument("--fov", type=float, default=12.0, help="camera field of view, degrees (12: the face fills it)")
    ap.add_argument("--only", nargs="*", default=[], help="clips whose name contains one of these")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name[3:-4] for p in Path(args.avatars).glob("av_*.ply"))
    if not names:
        print(f"no av_*.ply in {args.avatars}", file=sys.stderr)
        return 2
    drivers = {n: Driver(load_ply(Path(args.avatars) / f"av_{n}.ply")) for n in names}
    K = default_intrinsics(args.size, args.size, args.fov)
    for pair in sorted(Path(args.series).glob("self__*.json")):
        clip = pair.stem[len("self__"):]
        if args.only and not any(s in clip for s in args.only):
            continue
        frames = strongest_frames(json.loads(pair.read_text())["reader_series"]["driver"])
        lines = (Path(args.controls) / f"{clip}.jsonl").read_text().splitlines()
        print(clip, ", ".join(f"{i} ({what})" for i, what in frames), flush=True)
        rows = dict(drivers)
        own = Path(args.self_avatars or "") / f"av_{clip}.ply"
        if args.self_avatars and own.exists():
            rows[f"self:{clip}"] = Driver(load_ply(own))
        for yaw in args.yaws:
            sheet = []
            for name, driver in rows.items():
                tiles = []
                for i, what in frames:
                    c = turned(FaceControl.from_json(json.loads(lines[i])), yaw)
                    img = (np.clip(render_control(driver, c, K, args.size, args.size).image, 0, 1) * 255 + 0.5)
                    img = np.ascontiguousarray(img.astype(np.uint8))
                    cv2.putText(img, f"{name[:12]} {i} {what}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33,
                                (255, 255, 0), 1)
                    tiles.append(img)
                sheet.append(np.hstack(tiles))
            path = out / f"{clip}_yaw{yaw:+.0f}.png"
            cv2.imwrite(str(path), cv2.cvtColor(np.vstack(sheet), cv2.COLOR_RGB2BGR))
            print(f"  {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
