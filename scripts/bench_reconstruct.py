#!/usr/bin/env python3
"""Reconstruction benchmark: seconds per photo on this CPU, Gaussian count, avatar message size, and the
head-region PSNR of the rest render from the source camera (512x512), per portrait.

    python scripts/bench_reconstruct.py [PHOTO ...] [--backend mesh_fit] [--preset default] [--repeat 2]

Time = Reconstructor.reconstruct on the decoded photo, after a warm-up (models loaded, kernels compiled);
the warm-up itself is printed as the cold-start cost. Message size = the serialised GaussianAvatar message
(rclpy.serialization) when rclpy is available, else the Gaussian table + template bytes. PSNR is measured
here with the cpu rasterizer in the reconstructor's head mask (the silhouette's 2-pixel background-mixed
band excluded) and in the whole head region. Prints figures; asserts nothing. Other work on the machine
makes the times noisy: run it more than once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "portraits"


def message_bytes(avatar) -> tuple[int, str]:
    try:
        from rclpy.serialization import serialize_message

        from gaussian_head_ros.nodes.conversions import avatar_to_msg

        return len(serialize_message(avatar_to_msg(avatar))), "serialised message"
    except ImportError:  # what the message carries: the table without f_rest, the SH bands on their rows only
        from gaussian_head_ros.core.avatar import pack_sh_rest

        band = sum(a.nbytes for a in pack_sh_rest(avatar.sh))
        mesh = avatar.template_vertices.nbytes + avatar.template_faces.nbytes
        return avatar.table(0).nbytes + band + mesh, "table bytes"


def main(argv=None) -> int:
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.metrics import psnr
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.reconstruct.preview import source_view

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", nargs="*", help="portrait photos (default: ../shared/data/portraits/*)")
    ap.add_argument("--backend", default="mesh_fit")
    ap.add_argument("--preset", default=None, help="mesh_fit preset: fast, default, dense")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per photo (the best is reported too)")
    args = ap.parse_args(argv)
    photos = args.photos or sorted(str(p) for p in DATA.glob("*"))
    opts = {"preset": args.preset} if args.preset else {}
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; backend {args.backend} {opts}")
    t0 = time.perf_counter()
    rec = get_reconstructor(args.backend, **opts)
    warm = rec.warm_up() if hasattr(rec, "warm_up") else 0.0
    print(f"cold start: {time.perf_counter() - t0:.2f} s (import + models + kernels; warm_up {warm:.2f} s)")
    print(f"{'photo':32s} {'mean s':>7s} {'best s':>7s} {'gauss':>7s} {'msg MB':>7s} {'PSNR head':>9s} {'full':>6s}")
    rows = []
    for path in photos:
        img = read_image(path)
        times = []
        for _ in range(max(1, args.repeat)):
            t = time.perf_counter()
            res = rec.reconstruct(img)
            times.append(time.perf_counter() - t)
        a = res.avatar
        size, how = message_bytes(a)
        ref = res.photo.astype(np.float32) / 255
        img_r = source_view(a, backend="cpu")
        p = psnr(img_r, ref, res.mask)
        full = res.info.get("psnr_head_full", float("nan"))
        rows.append((np.mean(times), min(times), a.num_gaussians, size / 1e6, p))
        print(f"{Path(path).name:32s} {np.mean(times):7.2f} {min(times):7.2f} {a.num_gaussians:7d} {size / 1e6:7.2f} "
              f"{p:9.2f} {full:6.2f}")
    if rows:
        r = np.array(rows)
        print(f"{'mean':32s} {r[:, 0].mean():7.2f} {r[:, 1].mean():7.2f} {int(r[:, 2].mean()):7d} {r[:, 3].mean():7.2f} "
              f"{r[:, 4].mean():9.2f}")
        print(f"max seconds per photo {r[:, 0].max():.2f}; max message {r[:, 3].max():.2f} MB ({how}); "
              f"min PSNR {r[:, 4].min():.2f} dB")
    rec.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
