#!/usr/bin/env python3
"""Drive + render cost per frame of two package trees, measured alternately in one run (issue 11's acceptance:
"drive + render cost per frame within +15 % of today's": the tree of the day the issue was filed against main).

    python scripts/drive_render_ab.py OLD_TREE NEW_TREE \
        [--avatar synthetic:60000] [--avatar obama=OLD.ply,NEW.ply ...] [--controls clip.jsonl] \
        [--size 512x512 480x800] [--threads 1 2] [--rounds 6] [--frames 10] [--json out.json] [--save DIR]

Each tree runs in its own worker process (this file with --worker, the tree first on PYTHONPATH, numpy's BLAS at one
thread as in the live nodes), started once and kept; the parent asks them in turn, old, new, old, new ... (`--rounds`
blocks of `--frames` frames each, the same controls for both), so that both share the machine's load. Per frame the
worker times the drive step and the render step: wall (perf_counter), the calling thread's CPU time (thread_time)
and the process's CPU time (process_time: the rasterizer's other threads too). A frame is what the render node does
for one picture, at the backend `cpu` with the thread count given:
- a tree with core.display.FaceDisplay (main since session 57): FaceDisplay.drive(control) then FaceDisplay.raster
  (its default framing, 'head': the head's box filling 0.9 of the panel; and framing `fov`, 30 deg across the
  panel's shorter side, as a second row `new/fov` that separates the framing's share: the old node's camera on a
  square panel; on a tall one the old node took its 30 deg along the height, a larger head);
- an older tree: Driver.drive(control, None) then render.render_rgb8(..., backend='cpu') through the old render
  node's camera (30 deg vertical field of view, 0.6 m), numba's threads set to the count given.
Avatars: `synthetic:N` (core.synthetic.synthetic_avatar(N) of each tree, as `gaussian-head bench`'s drive rows) or
`NAME=OLD.ply,NEW.ply` (each tree's own reconstruction of the same photo; the Gaussian counts are printed).
Controls: a `gaussian-head track` JSONL (FaceControl.from_json of each tree; fields an old tree does not know are
left out by it); default: the head turned 12/-5/3 deg with mouth_open 0.2, bench's control.

Prints per (avatar, size, threads): median and p90 per frame of drive wall / thread CPU, render wall / process CPU,
and drive + render wall / CPU, for old, new (and new/fov), and new / old of the medians; the 1-minute load average
over the run (min / median / max). Figures move with the load: compare trees within one invocation only.
`--save DIR`: each tree's picture of the middle frame of each row, to see that both draw the head they are timed on.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

FIELDS = ("drive_wall", "drive_thread", "drive_proc", "render_wall", "render_thread", "render_proc")


# ------------------------------------------------------------------------------------------------- worker (one tree)

class _Tree:
    """One tree's drawing of one avatar at one size and thread count (the module notes)."""

    def __init__(self):
        import numba

        self.numba = numba
        try:
            from gaussian_head_ros.core.display import FaceDisplay  # noqa: F401
            self.kind = "display"
        except ImportError:
            self.kind = "driver"
        self.avatars, self.controls, self.state, self.made = {}, [], None, {}

    def load(self, key: str, path: str | None, n: int | None) -> int:
        from gaussian_head_ros.core.avatar import load_ply
        from gaussian_head_ros.core.synthetic import synthetic_avatar

        avatar = synthetic_avatar(n) if path is None else load_ply(path)
        avatar.validate()
        self.avatars[key] = avatar
        return int(avatar.num_gaussians)

    def kernel(self) -> str | None:
        """Path of the compiled rasterizer this tree loaded (as the process maps it), None if it has none (a tree
        from before src/raster, such as 715d95a: its cpu backend is numba's, with no `available`)."""
        from gaussian_head_ros.core.render import cpu_backend

        if not hasattr(cpu_backend, "available"):
            return None
        if not cpu_backend.available():
            return None
        cpu_backend.kernel_isa()  # loaded
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if line.rstrip().endswith(cpu_backend.KERNEL_LIB)}
        return ", ".join(sorted(os.path.realpath(p) for p in paths)) or None

    def set_controls(self, path: str | None) -> int:
        from gaussian_head_ros.core.control import FaceControl, euler_to_quat

        if path is None:
            self.controls = [FaceControl(rotation=euler_to_quat(12, -5, 3).astype(np.float32), mouth_open=0.2)]
        else:
            with open(path) as f:
                self.controls = [FaceControl.from_json(json.loads(line)) for line in f if line.strip()]
        return len(self.controls)

    def setup(self, key: str, width: int, height: int, threads: int, camera: str) -> None:
        self.numba.set_num_threads(threads)
        made = self.made.get((key, width, height, threads, camera))
        if made is not None:  # made in an earlier round: only the thread count set again
            self.state = made
            return
        avatar = self.avatars[key]
        if self.kind == "display":
            from gaussian_head_ros.core.display import FaceDisplay

            shown = FaceDisplay(avatar, width, height, framing="fov" if camera == "fov" else "head", backend="cpu",
                                threads=threads)
            self.state = (shown.drive, shown.raster)
        else:
            from gaussian_head_ros.core.drive import Driver
            from gaussian_head_ros.core.render import head_viewmat, intrinsics_from_fov, render_rgb8

            driver = Driver(avatar)
            view, k = head_viewmat(0.6), intrinsics_from_fov(30.0, width, height)
            bg = np.zeros(3, np.float32)

            def raster(p):
                return render_rgb8(p.means, p.quats, p.scales, p.opacities, p.colors, view, k, width, height, bg,
                                   "cpu")

            self.state = (lambda c: driver.drive(c, None), raster)
        self.made[(key, width, height, threads, camera)] = self.state
        for i in range(3):  # warm-up: compiled kernels loaded, caches filled
            self.frame(i)

    def save(self, i: int, path: str) -> None:
        """Write frame i's picture (as set up) to path (PNG): what was timed, for a person to look at."""
        from PIL import Image

        drive, raster = self.state
        Image.fromarray(raster(drive(self.controls[i % len(self.controls)]))).save(path)

    def frame(self, i: int) -> list[float]:
        drive, raster = self.state
        c = self.controls[i % len(self.controls)]
        w0, t0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        posed = drive(c)
        w1, t1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
        raster(posed)
        w2, t2, p2 = time.perf_counter(), time.thread_time(), time.process_time()
        return [w1 - w0, t1 - t0, p1 - p0, w2 - w1, t2 - t1, p2 - p1]


def worker() -> None:
    """Serve JSON requests on stdin, one a line, with one JSON answer a line on stdout."""
    out = sys.stdout
    sys.stdout = sys.stderr  # what the package prints must not mix into the answers
    tree = _Tree()
    for line in sys.stdin:
        req = json.loads(line)
        op = req.pop("op")
        if op == "frames":
            ans = [tree.frame(i) for i in range(req["start"], req["start"] + req["count"])]
        else:
            ans = getattr(tree, op)(**req)
        out.write(json.dumps({"kind": tree.kind, "result": ans}) + "\n")
        out.flush()


# ------------------------------------------------------------------------------------------------------- parent

class Worker:
    def __init__(self, tree: str):
        # the tree's own install space next (its compiled rasterizer: the package's __path__ is extended with every
        # gaussian_head_ros folder on sys.path, in order, and a source tree holds no library; without it both trees
        # loaded the library of the install space sourced in this shell)
        own = sorted(glob.glob(os.path.join(os.path.abspath(tree), "install", "*", "lib", "python*", "site-packages")))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(tree), *own,
                                                           os.environ.get("PYTHONPATH", "")]),
                   OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/tmp")
        self.kind = None

    def ask(self, op: str, **kw):
        self.proc.stdin.write(json.dumps(dict(op=op, **kw)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker for {op} ended (its stderr above)")
        ans = json.loads(line)
        self.kind = ans["kind"]
        return ans["result"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _stats(a: np.ndarray) -> tuple[float, float]:
    return float(np.median(a)) * 1e3, float(np.percentile(a, 90)) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("old", nargs="?", help="the older package tree (a worktree's root)")
    ap.add_argument("new", nargs="?", help="the newer package tree")
    ap.add_argument("--avatar", action="append", default=None,
                    help="synthetic:N or NAME=OLD.ply,NEW.ply (repeatable; default synthetic:60000)")
    ap.add_argument("--controls", help="a gaussian-head track JSONL (default: bench's one control)")
    ap.add_argument("--size", nargs="+", default=["512x512"], help="WxH sizes")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=6, help="old/new alternations per row")
    ap.add_argument("--frames", type=int, default=10, help="frames per tree per round")
    ap.add_argument("--no-fov", action="store_true", help="leave out the new tree's row at the old camera")
    ap.add_argument("--json", help="write every row's figures here")
    ap.add_argument("--save", help="a folder: each tree's picture of each row's middle frame (PNG) goes there")
    args = ap.parse_args()
    if args.worker:
        worker()
        return 0
    if not args.old or not args.new:
        ap.error("OLD_TREE and NEW_TREE are needed")
    old, new = Worker(args.old), Worker(args.new)
    trees = {"old": old, "new": new}
    avatars = []
    for spec in args.avatar or ["synthetic:60000"]:
        if spec.startswith("synthetic:"):
            n = int(spec.split(":", 1)[1])
            counts = {t: w.ask("load", key=spec, path=None, n=n) for t, w in trees.items()}
        else:
            name, paths = spec.split("=", 1)
            p_old, p_new = paths.split(",")
            counts = {"old": old.ask("load", key=spec, path=os.path.abspath(p_old), n=None),
                      "new": new.ask("load", key=spec, path=os.path.abspath(p_new), n=None)}
        avatars.append((spec, counts))
    nc = {t: w.ask("set_controls", path=os.path.abspath(args.controls) if args.controls else None)
          for t, w in trees.items()}
    print(f"trees: old {args.old} ({old.kind}), new {args.new} ({new.kind}); controls {args.controls or 'bench'} "
          f"({nc['old']} frames); {args.rounds} rounds x {args.frames} frames per tree and row; cpu backend",
          flush=True)
    libs = {t: w.ask("kernel") for t, w in trees.items()}
    print(f"rasterizer: old {libs['old']}, new {libs['new']}"
          + ("  (the same file: both trees draw with one library)" if libs["old"] == libs["new"] else ""), flush=True)
    for spec, counts in avatars:
        print(f"avatar {spec}: old {counts['old']} Gaussians, new {counts['new']}", flush=True)
    variants = [("old", old, "node"), ("new", new, "node")] + ([] if args.no_fov or new.kind != "display"
                                                                else [("new/fov", new, "fov")])
    loads, rows = [], []
    t_start = time.time()
    for spec, counts in avatars:
        for size in args.size:
            w, h = (int(v) for v in size.lower().split("x"))
            for t in args.threads:
                samples = {label: [] for label, _, _ in variants}
                for r in range(args.rounds):
                    for label, wk, cam in (variants if r % 2 == 0 else variants[::-1]):
                        wk.ask("setup", key=spec, width=w, height=h, threads=t, camera=cam)
                        samples[label] += wk.ask("frames", start=r * args.frames, count=args.frames)
                        loads.append(os.getloadavg()[0])
                if args.save:
                    os.makedirs(args.save, exist_ok=True)
                    for label, wk, cam in variants:
                        wk.ask("setup", key=spec, width=w, height=h, threads=t, camera=cam)
                        name = f"{spec.split('=')[0].replace(':', '')}_{size}_t{t}_{label.replace('/', '-')}.png"
                        wk.ask("save", i=args.rounds * args.frames // 2, path=os.path.abspath(os.path.join(args.save, name)))
                row = dict(avatar=spec, n_old=counts["old"], n_new=counts["new"], size=size, threads=t, figures={})
                print(f"\n{spec}  {size}  threads {t}  (load now {os.getloadavg()[0]:.1f})")
                print(f"  {'':8s} {'drive wall':>15s} {'drive thr cpu':>15s} {'render wall':>15s} "
                      f"{'render cpu':>15s} {'d+r wall':>15s} {'d+r cpu':>15s}   (ms, median / p90)")
                for label in samples:
                    a = np.asarray(samples[label])
                    cols = {"drive_wall": a[:, 0], "drive_thread": a[:, 1], "render_wall": a[:, 3],
                            "render_proc": a[:, 5], "total_wall": a[:, 0] + a[:, 3], "total_cpu": a[:, 2] + a[:, 5]}
                    row["figures"][label] = {k: _stats(v) for k, v in cols.items()}
                    print(f"  {label:8s} " + " ".join(f"{m:7.2f} /{p:6.2f}" for m, p in
                                                     row["figures"][label].values()), flush=True)
                f_old, f_new = row["figures"]["old"], row["figures"]["new"]
                ratio = {k: f_new[k][0] / f_old[k][0] for k in f_old}
                row["new_over_old"] = ratio
                print(f"  {'new/old':8s} " + " ".join(f"{ratio[k]:15.3f}" for k in f_old), flush=True)
                rows.append(row)
    for wk in trees.values():
        wk.close()
    la = np.asarray(loads)
    print(f"\nload (1-min average) during the run: min {la.min():.1f}, median {np.median(la):.1f}, max {la.max():.1f}; "
          f"{os.cpu_count()} CPUs; {time.time() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(old=args.old, new=args.new, controls=args.controls, rows=rows,
                           load=dict(min=la.min(), median=float(np.median(la)), max=la.max())), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
