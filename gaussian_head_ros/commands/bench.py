"""`gaussian-head bench`: rasterizer and driving speed on this machine.

    gaussian-head bench                       # table: cpu (1 and all threads), torch reference, drive()
    gaussian-head bench --json > bench.json   # the same as a list of objects
    gaussian-head bench --backend cpu torch --size 512 1024 --gaussians 60000 100000 --threads 1 2
    gaussian-head bench --avatar me.ply --stages   # also a real avatar; cpu time per pipeline stage
    gaussian-head bench --backend gsplat cpu torch --device cuda --avatar me.ply   # on a CUDA machine

Every row is timed through core.display.FaceDisplay, the render node's own drawing (one display per backend,
thread count and device): its `drive` step (the drive rows) and its `raster` step (the others). Scenes:
`synthetic` (core.synthetic.synthetic_avatar: face cap, head shell, torso) and `face` (a dense head-shaped surface
of flat, nearly opaque discs, as a trained 3DGS head looks), at a 30 deg field of view from 0.6 m; `--avatar`
framed as the render node frames it (`--framing`, default its own head's box filling `--head-fill` of the square:
core/display.py), so that its rows cost what the render node's frames cost. Per figure: the median wall time per frame after warm-up
(`fps`, `ms`), the process CPU time per frame (`cpu_ms`, all threads), the speed-up over the torch
reference measured in the same run with the same threads (`vs_torch`; on `--device cpu` when measured
there, else the torch row of the first device), Gaussian-pixel evaluations per
second (`gevals_s`, 1e9/s: pixels inside the drawn Gaussians' alpha >= 1/255 ellipses per frame x fps, the
same count for every backend), and the 1-minute load average, because other work on the machine moves the
wall-clock numbers. `device` says where a row ran (gsplat: cuda; torch: each of `--device`). With
`--avatar`, the avatar's rows also give `drive_render_fps`: one frame's drive (numpy, 1 thread) plus that
row's render, as the render node spends them one after the other. `--stages` adds the cpu backend's median time per
stage (project, sort, bin, composite) and its pair counts.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from gaussian_head_ros.commands import IMAGE_SIZES, framing_arguments, framing_of, int_range

SCENES = ("synthetic", "face")


def add_arguments(p):
    p.add_argument("--backend", nargs="+", default=None,
                   help="backends to measure: auto (the one the face display picks here), cpu, torch, gsplat "
                        "(default: cpu, torch, and gsplat when CUDA works)")
    p.add_argument("--size", type=int_range(*IMAGE_SIZES), nargs="+", default=[512], help="square image sizes")
    p.add_argument("--gaussians", type=int_range(0), nargs="+", default=[60_000, 100_000], help="Gaussian counts")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="CPU thread counts for cpu/torch (default: 1 and all cores)")
    p.add_argument("--device", nargs="+", default=["cpu"],
                   help="torch devices the torch backend runs on: cpu, cuda, cuda:N (default: cpu)")
    p.add_argument("--scene", nargs="+", choices=SCENES, default=list(SCENES), help="scenes to draw")
    p.add_argument("--avatar", help="also measure this avatar .ply (at its own size), e.g. from gaussian-head reconstruct")
    p.add_argument("--seconds", type=float, default=1.5, help="measuring time per figure (fast backends)")
    p.add_argument("--stages", action="store_true", help="also the cpu backend's time per pipeline stage")
    framing_arguments(p, "a 30 deg field of view across the frame")  # the --avatar rows' (core/display.py)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def face_cloud(n: int, seed: int = 0):
    """A dense head-sized surface of flat discs: (means, quats, scales, opacities, colors), head frame."""
    from gaussian_head_ros.core.drive import matrices_to_quats

    rng = np.random.default_rng(seed)
    n_neck = n // 8
    n_head = n - n_neck
    d = rng.normal(size=(n_head, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    axes = np.array([0.078, 0.105, 0.095])
    head = d * axes + [0, -0.01, 0.01]
    nrm = d / axes
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    th = rng.uniform(0, 2 * np.pi, n_neck)
    hy = rng.uniform(0.07, 0.2, n_neck)
    neck = np.stack([0.05 * np.cos(th), hy, 0.03 + 0.05 * np.sin(th)], 1)
    nrm_neck = np.stack([np.cos(th), np.zeros(n_neck), np.sin(th)], 1)
    means = np.concatenate([head, neck]).astype(np.float32)
    normals = np.concatenate([nrm, nrm_neck])
    area = 4 * np.pi * (np.prod(axes) ** (2 / 3)) + 2 * np.pi * 0.05 * 0.13
    disc = np.sqrt(area / n) * 0.9  # tangent std-dev: neighbouring discs overlap
    scales = np.stack([disc * rng.uniform(0.6, 1.4, n), disc * rng.uniform(0.6, 1.4, n),
                       np.full(n, 2e-4)], 1).astype(np.float32)
    # Rotation whose third axis is the normal.
    t1 = np.cross(normals, rng.normal(size=(n, 3)))
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(normals, t1)
    rot = np.stack([t1, t2, normals], axis=2)
    quats = matrices_to_quats(rot).astype(np.float32)
    opac = rng.uniform(0.7, 0.99, n).astype(np.float32)
    skin = np.array([0.85, 0.62, 0.5]) * (0.8 + 0.2 * rng.random((n, 1)))
    colors = np.clip(skin + 0.1 * normals[:, :1], 0, 1).astype(np.float32)
    return means, quats, scales, opac, colors


def _time(fn, seconds: float, min_runs: int = 3, max_runs: int = 2000) -> tuple[float, float]:
    """(median wall seconds per call, process CPU seconds per call) after one warm-up call."""
    fn()
    times, t_end = [], time.perf_counter() + seconds
    cpu0 = time.process_time()
    while len(times) < min_runs or (time.perf_counter() < t_end and len(times) < max_runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), (time.process_time() - cpu0) / len(times)


def _stages(g, view, k, size, seconds, threads) -> dict:
    """Median seconds per stage of the cpu backend (`threads` threads) and its counts for one frame."""
    from gaussian_head_ros.core.render.cpu_backend import STAGES, render_arrays

    f32 = [np.ascontiguousarray(a, np.float32) for a in g] + [view, k]
    runs, t_end = [], time.perf_counter() + seconds
    while len(runs) < 3 or time.perf_counter() < t_end:
        st = {}
        render_arrays(*f32, size, size, np.zeros(3, np.float32), rgb8=True, stages=st, threads=threads)
        runs.append(st)
    out = {name: float(np.median([r[name] for r in runs])) for name in STAGES}
    out.update({c: runs[0][c] for c in ("visible", "pairs", "evaluations")})
    return out


def _configs(backends, threads, devices) -> list[tuple[str, int | None, str]]:
    """(backend, threads, device) of each renderer to measure: cpu per thread count; torch per device, per thread
    count on cpu (one row on a CUDA device, where threads do not matter); gsplat once, on cuda."""
    out = []
    for b in backends:
        if b == "cpu":
            out += [(b, t, "cpu") for t in threads]
        elif b == "torch":
            out += [(b, t, d) for d in devices for t in (threads if d == "cpu" else [None])]
        else:
            out.append((b, None, "cuda"))
    return out


def _refuse_fallback(backend: str, error: Exception):
    """FaceDisplay's on_fallback for a bench: a backend that fails a frame is an error here, not timed as cpu."""
    raise error


def measure(backends, sizes, counts, threads, scenes, seconds, avatar_path=None, stages=False, devices=("cpu",),
            framing=("head", 0.9)) -> list[dict]:
    """The rows of `gaussian-head bench` (module docstring), each timed through a core.display.FaceDisplay, the
    render node's drawing: one display per (backend, threads, device) of `_configs`, its `drive` (the drive rows,
    posing an avatar's Gaussians) and its `raster` (every other row: the frame's K, the torso cut's fade) at its
    defaults FOV_DEG 30 and DISTANCE_M 0.6. The avatar's rows are framed by `framing` (framing, head fill); the
    scenes (not avatars: no framing of their own) by the 30 deg field of view. Sizes in pixels (square), counts
    in Gaussians, `seconds` of measuring per row. Raises ValueError for what FaceDisplay or the avatar file
    refuse."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.display import DisplayAvatar, FaceDisplay
    from gaussian_head_ros.core.drive import PosedGaussians
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    displays = {(b, t, d): FaceDisplay(backend=b, threads=t or 0, device=d, on_fallback=_refuse_fallback)
                for b, t, d in _configs(backends, threads, devices)}
    for shown in displays.values():
        shown.renderer.warm_up()
    first = next(iter(displays.values()))
    rows = []
    jobs = [(n, name) for n in counts for name in scenes]
    if avatar_path:
        from gaussian_head_ros.core.avatar import load_ply

        avatar = load_ply(avatar_path)
        avatar.validate()
        jobs.append((avatar.num_gaussians, "avatar"))
    load = lambda: round(os.getloadavg()[0], 2)  # noqa: E731
    for n in sorted({n for n, _ in jobs}):
        drawn = DisplayAvatar(avatar if (n, "avatar") in jobs else synthetic_avatar(n))  # its head's box once
        first.avatar = drawn
        control = FaceControl(rotation=euler_to_quat(12, -5, 3).astype(np.float32), mouth_open=0.2)
        s, cpu = _time(lambda: first.drive(control), seconds)
        drive_s = s
        rows.append(dict(backend="drive", device="cpu", scene="avatar" if (n, "avatar") in jobs else "synthetic", n_gaussians=n,
                         size=None, threads=1, fps=round(1 / s, 1), ms=round(s * 1e3, 3), cpu_ms=round(cpu * 1e3, 3),
                         load_1min=load()))
        for name in [name for m, name in jobs if m == n]:
            # the avatar and the synthetic avatar (core.synthetic) driven at rest; the face scene is no avatar
            one = None if name == "face" else drawn if name == "avatar" or (n, "avatar") not in jobs else (
                DisplayAvatar(synthetic_avatar(n)))
            for shown in displays.values():
                shown.avatar = one
                shown.set(framing=framing[0] if name == "avatar" else "fov", head_fill=framing[1])
            posed = PosedGaussians(*face_cloud(n)) if one is None else first.drive()
            g = (posed.means, posed.quats, posed.scales, posed.opacities, posed.colors)
            for size in sizes:
                for shown in displays.values():
                    shown.set(width=size, height=size)
                st = _stages(g, first.viewmat, first.K, size, seconds if stages else 0.0, threads[-1])
                evals = st["evaluations"]
                torch_fps, here = {}, []
                for (backend, t, device), shown in displays.items():
                    slow = backend == "torch" and device == "cpu"
                    s, cpu = _time(lambda: shown.raster(posed), 0.0 if slow else seconds, min_runs=2 if slow else 5)
                    row = dict(backend=backend, device=device, scene=name, n_gaussians=n, size=size, threads=t,
                               fps=round(1 / s, 2), ms=round(s * 1e3, 2), cpu_ms=round(cpu * 1e3, 2),
                               gevals_s=round(evals / s / 1e9, 3), load_1min=load())
                    if name == "avatar":
                        row["drive_render_fps"] = round(1 / (drive_s + s), 2)
                    if backend == "torch":
                        torch_fps.setdefault(device, {})[t] = 1 / s
                    here.append(row)
                ref_fps = torch_fps.get("cpu") or next(iter(torch_fps.values()), {})
                for row in here:
                    if row["backend"] != "torch" and (row["threads"] in ref_fps or len(ref_fps) == 1):
                        ref = ref_fps.get(row["threads"], next(iter(ref_fps.values()), None))
                        row["vs_torch"] = round(row["fps"] / ref, 1)
                rows.extend(here)
                if stages:
                    rows.append(dict(backend="stages", scene=name, n_gaussians=n, size=size, threads=threads[-1],
                                     **{f"{k_}_ms": round(v * 1e3, 3) for k_, v in st.items() if k_ not in
                                        ("visible", "pairs", "evaluations")},
                                     visible=st["visible"], pairs=st["pairs"], evaluations=int(evals),
                                     load_1min=load()))
    return rows


def run(args) -> int:
    import torch

    from gaussian_head_ros.core.files import check_exists
    from gaussian_head_ros.core.render import backend_available, device_available, runnable_backend
    from gaussian_head_ros.core.render.cpu_backend import cpu_threads

    asked = args.backend or (["cpu", "torch"] + (["gsplat"] if backend_available("gsplat") else []))
    # 'auto' as the face display resolves it here; ValueError for an unknown name (core.render.checked_backend's
    # words, as render's and eval's) or gsplat without a working CUDA device
    backends = list(dict.fromkeys(runnable_backend(b) for b in asked))
    for d in args.device:
        if not device_available(d):  # ValueError for a name that is no device
            raise ValueError(f"--device {d}: torch sees no such device here")
    if args.avatar:
        check_exists(args.avatar, "--avatar")  # before the backends warm up; a URL said as given
    threads = args.threads or sorted({1, cpu_threads()})
    if any(not 1 <= t <= cpu_threads() for t in threads):
        raise ValueError(f"--threads must be within 1..{cpu_threads()}")
    torch_threads = torch.get_num_threads()
    try:
        rows = measure(backends, args.size, args.gaussians, threads, args.scene, args.seconds, args.avatar,
                       args.stages, args.device, framing_of(args))
    finally:
        torch.set_num_threads(torch_threads)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    cpu_name = _cpu_name()
    print(f"# {cpu_name}, {os.cpu_count()} logical CPUs; gaussian-head bench {' '.join(_argv_tail())}")
    print(f"{'backend':8} {'device':6} {'scene':10} {'gaussians':>9} {'size':>5} {'threads':>7} {'fps':>8} {'ms':>8} "
          f"{'cpu ms':>8} {'vs torch':>8} {'Gevals/s':>8} {'d+r fps':>8} {'load':>5}")
    for r in rows:
        if r["backend"] == "stages":
            continue
        print(f"{r['backend']:8} {r.get('device', 'cpu'):6} {r['scene']:10} {r['n_gaussians']:9d} "
              f"{str(r['size'] or '-'):>5} {str(r['threads'] or '-'):>7} {r['fps']:8.1f} {r['ms']:8.2f} "
              f"{r['cpu_ms']:8.2f} {str(r.get('vs_torch', '')):>8} {str(r.get('gevals_s', '')):>8} "
              f"{str(r.get('drive_render_fps', '')):>8} {r['load_1min']:5.2f}")
    stage_rows = [r for r in rows if r["backend"] == "stages"]
    if stage_rows:
        print("\ncpu stages (median ms per frame at the last thread count)")
        print(f"{'scene':10} {'gaussians':>9} {'size':>5} {'threads':>7} {'project':>8} {'sort':>8} {'bin':>8} "
              f"{'composite':>9} {'visible':>8} {'pairs':>8} {'evals':>9}")
        for r in stage_rows:
            print(f"{r['scene']:10} {r['n_gaussians']:9d} {r['size']:5d} {r['threads']:7d} {r['project_ms']:8.2f} "
                  f"{r['sort_ms']:8.2f} {r['bin_ms']:8.2f} {r['composite_ms']:9.2f} {r['visible']:8d} "
                  f"{r['pairs']:8d} {r['evaluations']:9d}")
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def _argv_tail() -> list[str]:
    import sys

    argv = sys.argv[1:]
    return argv[argv.index("bench") + 1:] if "bench" in argv else argv
