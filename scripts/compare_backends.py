"""Do the rasterizer backends draw the same driven avatar? Per avatar and pose, each backend's difference from
the torch reference (and from the cpu backend), and a picture to look at.

    python scripts/compare_backends.py a.ply [b.ply ...] [--size 512] [--backend cpu gsplat torch@cuda] [--out DIR]

A backend is a registered name (core/render REGISTRY), optionally @device for a torch-based one (torch@cuda).

Poses: rest, and turned (yaw 20, pitch -10, roll 5 deg) with the mouth half open, framed as the render node
frames a head (30 deg field of view, 0.6 m). Per backend and pose: mean and max absolute difference per channel
(the worst channel), pixels over 1/255 and over 0.01, and alpha's mean/max, against the torch reference (float64
transmittance; seconds per frame on a CPU) and against the cpu backend. The test suite holds cpu to mean 1e-4 /
max 1/255 and gsplat to mean 1/255 / max 0.01 (test/test_render_backends.py). `--out` writes one JSON and, per
avatar, a PNG: rows = poses; columns = reference, then each backend and its |difference| x 20.

Backends (or devices) that cannot run here are left out with a line saying so (gsplat or @cuda without CUDA).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def _diff(a, b) -> dict:
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    per = d.reshape(-1, d.shape[-1]) if d.ndim == 3 else d.reshape(-1, 1)
    worst = d.max(axis=-1) if d.ndim == 3 else d
    return dict(mean=float(per.mean(axis=0).max()), max=float(per.max()), px_over_1_255=int((worst > 1 / 255).sum()),
                px_over_0_01=int((worst > 0.01).sum()))


def _numpy(x) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("avatars", nargs="+", help="avatar .ply files (gaussian-head reconstruct)")
    p.add_argument("--size", type=int, default=512, help="square image size (default 512)")
    p.add_argument("--backend", nargs="+", default=["cpu", "gsplat"], help="backends to compare with the reference")
    p.add_argument("--reference", default="torch", help="the reference backend (default torch, on the CPU)")
    p.add_argument("--out", help="folder for compare.json and one PNG per avatar")
    args = p.parse_args(argv)

    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.render import (backend_available, device_available, get_renderer, head_viewmat,
                                               intrinsics_from_fov, rasterize)

    renderers = {}
    for spec in args.backend:
        name, _, device = spec.partition("@")
        if backend_available(name) and device_available(device or "cpu"):
            renderers[spec] = get_renderer(name, device=device or "cpu")
        else:
            print(f"# {spec}: cannot run here, left out", flush=True)
    poses = {"rest": FaceControl.rest(),
             "turned": FaceControl(rotation=euler_to_quat(20, -10, 5).astype(np.float32), mouth_open=0.5)}
    k, view, size = intrinsics_from_fov(30, args.size, args.size), head_viewmat(0.6), args.size
    rows = []
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    for path in args.avatars:
        driver = Driver(load_ply(path))
        name = os.path.splitext(os.path.basename(path))[0]
        sheet = []
        for pose, control in poses.items():
            posed = driver.drive(control, viewmat=view)  # view-dependent colours seen from this camera
            g = (posed.means, posed.quats, posed.scales, posed.opacities, posed.colors)
            t0 = time.perf_counter()
            ref = rasterize(*g, view, k, size, size, backend=args.reference)
            ref_s = time.perf_counter() - t0
            bg = np.zeros(3, np.float32)
            outs = {b: r.rasterize(*g, view, k, size, size, bg) for b, r in renderers.items()}
            outs = {b: (_numpy(o.image), _numpy(o.alpha)) for b, o in outs.items()}
            line = [np.clip(ref.image, 0, 1)]
            for b, (image, alpha) in outs.items():
                row = dict(avatar=name, n_gaussians=driver.n, pose=pose, size=size, backend=b,
                           reference=args.reference, reference_s=round(ref_s, 2),
                           vs_reference=_diff(image, ref.image), alpha_vs_reference=_diff(alpha, ref.alpha))
                if b != "cpu" and "cpu" in outs:
                    row["vs_cpu"] = _diff(image, outs["cpu"][0])
                rows.append(row)
                v = row["vs_reference"]
                print(f"{name:28} {pose:7} {b:10} vs {args.reference}: mean {v['mean']:.2e} max {v['max']:.2e} "
                      f"(x255: {v['max'] * 255:.2f}), px > 1/255 {v['px_over_1_255']}, > 0.01 {v['px_over_0_01']}"
                      + (f"; vs cpu: mean {row['vs_cpu']['mean']:.2e} max {row['vs_cpu']['max']:.2e}"
                         if "vs_cpu" in row else ""), flush=True)
                line += [np.clip(image, 0, 1), np.clip(20 * np.abs(image - ref.image), 0, 1)]
            sheet.append(np.concatenate(line, axis=1))
        if args.out:
            import cv2

            img = (np.concatenate(sheet, axis=0) * 255 + 0.5).astype(np.uint8)
            cv2.imwrite(os.path.join(args.out, f"compare_{name}.png"), img[..., ::-1])
    if args.out:
        with open(os.path.join(args.out, "compare.json"), "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
