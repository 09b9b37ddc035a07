#!/usr/bin/env python3
"""Does swapping the operator stall the face display? A real render_node process over DDS draws a 60k avatar
driven by controls at 30 Hz; avatars are swapped in, in turn, and every face display frame's arrival is recorded here.
Prints, per package tree and round, the display's frame rate and frame gaps (median, p90, max) in three windows:

- steady: --steady-s seconds with the first avatar shown before the first swap, and --between-s seconds after each
  swap's dip before the next swap (the reference, in the same run, interleaved with the swaps: the same load);
- loading: from the new avatar's publication to the node's 'avatar ... ready' log line (the message's transfer, its
  conversion and the Driver and framing build: what the display must draw through);
- dip: the crossfade that follows (crossfade_s, 0.5 s: the display dips to the new face).

  python scripts/swap_bench.py --avatars a.ply b.ply c.ply [--tree before=/tmp/old --tree after=this]
      [--swaps 6] [--steady-s 8] [--between-s 4] [--rounds 2] [--fps 30] [--size 512] [--out DIR]

--tree LABEL=DIR runs the render node with the `gaussian_head_ros` package in DIR first on PYTHONPATH (`this`: the
package this Python imports, the colcon install space); trees run in turn within each round, so that their figures
share the machine's load. A package of another commit, with this build's generated messages:
  mkdir /tmp/old && cp -r install/gaussian_head_ros/lib/python3.11/site-packages/gaussian_head_ros /tmp/old/ &&
  git archive main gaussian_head_ros | tar -x -C /tmp/old
Avatars: .ply files of `gaussian-head reconstruct` (60k Gaussians with the default preset). The node runs in a
private ROS domain (ROS_DOMAIN_ID 201-230 unless set), with the package's Fast DDS profile, backend cpu. Writes each
run's frames and log under --out (default a temporary folder). Figures vary with the machine's load: compare trees
within one invocation only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

READY = re.compile(r"\[INFO\] \[(\d+\.\d+)\] \[render_node\]: avatar '([^']*)' ready: \d+ Gaussians \((\d+) ms\)")
CONTROL_HZ = 30.0  # the tracker's rate on a 30 fps camera


def run_once(tree: str, pkg: str | None, avatars: list, a, out: Path) -> dict:
    """One render_node process of package dir `pkg` (None: this one): the first avatar, a steady window, then
    `a.swaps` swaps. Returns its frame arrivals (time.time_ns), the windows and the node's ready lines."""
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.msg import FaceControl as FaceControlMsg
    from gaussian_head_ros.msg import GaussianAvatar as GaussianAvatarMsg
    from gaussian_head_ros.nodes.conversions import control_to_msg
    from gaussian_head_ros.nodes.launcher import NodeProcess, node_command

    out.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONPATH": f"{pkg}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"} if pkg else {}
    params = {"width": a.size, "height": a.size, "fps": a.fps, "crossfade_s": a.crossfade_s, "backend": "cpu"}
    proc = NodeProcess("render_node", node_command("render_node", params), out, env=env)
    node = rclpy.create_node("swap_bench")
    frames = []
    node.create_subscription(Image, "face_display/image_raw", lambda m: frames.append(time.time_ns()),
                             qos_profile_sensor_data)
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    avatar_pub = node.create_publisher(GaussianAvatarMsg, "avatar", latched)
    control_pub = node.create_publisher(FaceControlMsg, "face_control", 5)
    due = [time.monotonic()]

    def spin_for(seconds: float) -> None:  # controls at CONTROL_HZ (a turning head, a talking mouth) meanwhile
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if time.monotonic() >= due[0]:
                t = time.time_ns()
                control_pub.publish(control_to_msg(FaceControl(
                    stamp_ns=t, face_detected=True, confidence=0.9,
                    rotation=euler_to_quat(0.2 * np.sin(t * 2e-9), 0, 0).astype(np.float32),
                    mouth_open=0.3 + 0.3 * np.sin(t * 5e-9))))
                due[0] += 1 / CONTROL_HZ
            rclpy.spin_once(node, timeout_sec=max(0.0, min(0.005, due[0] - time.monotonic())))

    def wait_log(count: int, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and len(READY.findall(proc.log())) < count:
            if proc.proc.poll() is not None:
                raise RuntimeError(f"render_node ended ({proc.proc.returncode}): {proc.log()[-2000:]}")
            spin_for(0.25)
        return len(READY.findall(proc.log())) >= count

    try:
        avatar_pub.publish(avatars[0])
        if not wait_log(1, 300.0):
            raise RuntimeError(f"no first avatar in 300 s: {proc.log()[-2000:]}")
        spin_for(2.0)  # its dip and the rasterizer's thread tuning

        def steady_for(seconds: float) -> None:
            start = time.time_ns()
            spin_for(seconds)
            steady.append((start, time.time_ns()))

        steady, published = [], []
        steady_for(a.steady_s)
        for k in range(1, a.swaps + 1):
            published.append(time.time_ns())
            avatar_pub.publish(avatars[k % len(avatars)])
            if not wait_log(k + 1, 300.0):
                raise RuntimeError(f"swap {k} not ready in 300 s")
            spin_for(a.crossfade_s + 0.5)
            steady_for(a.between_s)
        load = os.getloadavg()[0]
    finally:
        node.destroy_node()
        proc.stop()
    ready = [(int(float(t) * 1e9), name, int(ms)) for t, name, ms in READY.findall(proc.log())]
    run = dict(tree=tree, frames=frames, steady=steady, published=published, ready=ready, load=load)
    (out / "run.json").write_text(json.dumps(run))
    return run


def windows(run: dict, crossfade_s: float) -> dict:
    """name -> [(start_ns, end_ns)] of the run's steady, loading and dip windows."""
    ready = [r[0] for r in run["ready"][1:]]
    return {"steady": [tuple(s) for s in run["steady"]],
            "loading": list(zip(run["published"], ready)),
            "dip": [(r, r + int(crossfade_s * 1e9)) for r in ready]}


def figures(run: dict, spans: list) -> tuple:
    """(frames per second, gaps ms [n]) of the frames arriving within `spans`; the gap before a window's first frame
    is its first gap (a stall at the window's start counts)."""
    t = np.asarray(run["frames"], np.int64)
    gaps, count, seconds = [], 0, 0.0
    for s, e in spans:
        inside = t[(t > s) & (t <= e)]
        before = t[t <= s]
        edge = np.concatenate([before[-1:], inside])
        gaps.extend((np.diff(edge) / 1e6).tolist())
        count += len(inside)
        seconds += (e - s) / 1e9
    return count / max(seconds, 1e-9), np.asarray(gaps)


def summary(label: str, runs: list, crossfade_s: float) -> str:
    """One line of a tree's runs pooled: each window's frame rate and gaps, the loads' mean duration and the frames
    the display lost per swap while loading (steady FPS - loading FPS) x that duration."""
    line, fps = [], {}
    for name in ("steady", "loading", "dip"):
        rates, gaps = zip(*(figures(run, windows(run, crossfade_s)[name]) for run in runs))
        gaps = np.concatenate(gaps)
        fps[name] = float(np.mean(rates))
        line.append(f"{name} {fps[name]:5.1f} FPS, max gap {gaps.max():4.0f} ms, p90 {np.percentile(gaps, 90):4.0f}")
    loads = [ms / 1e3 for run in runs for _, _, ms in run["ready"][1:]]
    lost = (fps["steady"] - fps["loading"]) * float(np.mean(loads))
    return (f"{label}, {len(runs)} runs: " + "; ".join(line) + f"; loading {fps['loading'] / fps['steady']:.0%} of "
            f"steady for {np.mean(loads):.1f} s a swap ({min(loads):.1f}-{max(loads):.1f}): {lost:.1f} frames lost")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--avatars", nargs="+", required=True, help=".ply avatars swapped in turn (two or more)")
    ap.add_argument("--tree", action="append", default=[], help="LABEL=DIR (a folder holding gaussian_head_ros) "
                                                                "or LABEL=this; repeatable (default: this=this)")
    ap.add_argument("--swaps", type=int, default=6)
    ap.add_argument("--steady-s", type=float, default=8.0, help="steady seconds before the first swap")
    ap.add_argument("--between-s", type=float, default=4.0, help="steady seconds after each swap's dip")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--crossfade-s", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    if len(a.avatars) < 2:
        ap.error("give two avatars or more")
    trees = [t.split("=", 1) for t in (a.tree or ["this=this"])]
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(201, 230)))
    out = a.out or Path(tempfile.mkdtemp(prefix="ghr-swap-bench-"))

    import rclpy

    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.nodes.conversions import avatar_to_msg

    avatars = [avatar_to_msg(load_ply(p)) for p in a.avatars]
    rclpy.init()
    done = {label: [] for label, _ in trees}
    try:
        for r in range(a.rounds):
            for label, pkg in trees:
                run = run_once(label, None if pkg == "this" else pkg, avatars, a, out / f"{label}_{r}")
                done[label].append(run)
                line = []
                for name, spans in windows(run, a.crossfade_s).items():
                    fps, gaps = figures(run, spans)
                    if len(gaps):
                        line.append(f"{name} {fps:5.1f} FPS, gaps median {np.median(gaps):4.0f} p90 "
                                    f"{np.percentile(gaps, 90):4.0f} max {gaps.max():4.0f} ms")
                loads = ", ".join(f"{ms}" for _, _, ms in run["ready"][1:])
                print(f"{label} round {r} (load {run['load']:.1f}; loads {loads} ms): " + "; ".join(line), flush=True)
    finally:
        rclpy.try_shutdown()
    for label, runs in done.items():
        if runs:
            print(summary(label, runs, a.crossfade_s))
    print(f"frames and logs: {out}")


if __name__ == "__main__":
    sys.exit(main())
