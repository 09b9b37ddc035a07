#!/usr/bin/env python3
"""Glass-to-glass latency of the whole pipeline between processes: a clip is played as the camera at its
native rate (video_source_node), tracked (tracker_node), rendered (render_node), and received here; the
latency of each rendered frame is now - stamp, and the stamp is the camera frame's.

  python scripts/bench_latency.py [--video CLIP] [--seconds 20] [--fps 30] [--size 512] [--load 1]

--load N starts N busy processes (pure-Python spinning) for the run: the CPU load a robot has from its
other work. --threads N fixes the render node's rasterizer threads (default: its tuner); --trace prints the
render and tracker nodes' diagnostics once a second (rates, ms per frame, threads, age of the control).
The nodes run in a private ROS domain (ROS_DOMAIN_ID 201-230 unless set). Prints frame rate and latency
p50/p95/max, then where the latency goes: each displayed frame's latency split into stages from the nodes' per-frame
trace (core/frametrace.py: camera publish, to tracker, tracker queue, tracking, to render, render wait, drive +
raster, publish, to display, repeat) with p50/p95/mean and the mean over the slowest 5 % of displays, and the CPU
each process used per frame (less sensitive to other load on the machine than the latencies).
"""

import argparse
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gaussian_head_ros.core import frametrace

ROOT = Path(__file__).resolve().parents[1]


def _spin(stop):
    x = 0
    while not stop.is_set():
        for _ in range(100000):
            x += 1


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=str(ROOT.parent / "shared" / "data" / "driving" / "lp_d18.mp4"))
    ap.add_argument("--photo", default=None, help="operator photo (default: the demo portrait)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--load", type=int, default=0, help="busy background processes during the measurement")
    ap.add_argument("--threads", type=int, default=None,
                    help="the render node's `threads` parameter (default: the node's own, 0 = automatic)")
    ap.add_argument("--trace", action="store_true",
                    help="also print, once a second, the render and tracker nodes' diagnostics (threads, ms)")
    a = ap.parse_args()

    import rclpy

    from gaussian_head_ros.commands.demo import default_photo
    from gaussian_head_ros.nodes.launcher import FaceDisplayRecorder, NodeProcess, node_command

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    # A private graph: in the default domain another pipeline on this host (a second benchmark, a demo) feeds
    # its camera frames and controls into these nodes and its face display into the recorder (seen: tracker
    # input 60 Hz, 45 "FPS", latencies of seconds).
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(201, 230)))
    logs = Path(tempfile.mkdtemp(prefix="ghr-latency-"))
    trace_dir = logs / "trace"
    os.environ[frametrace.ENV] = str(trace_dir)  # the nodes' per-frame trace (inherited by their processes)
    render_params = {"fps": a.fps, "width": a.size, "height": a.size, "backend": a.backend}
    if a.threads is not None:
        render_params["threads"] = a.threads
    rclpy.init()
    procs = [
        NodeProcess("reconstruction_node", node_command("reconstruction_node", {"photo_path": a.photo or default_photo()}), logs),
        NodeProcess("render_node", node_command("render_node", render_params), logs),
        NodeProcess("tracker_node", node_command("tracker_node"), logs),
        NodeProcess("video_source_node", node_command("video_source_node", {"source": a.video, "loop": True}), logs),
    ]
    rec = FaceDisplayRecorder()
    stop = mp.Event()
    loaders = []
    try:
        if not rec.wait_for(lambda: any(s.ok for s in rec.statuses), 120):
            sys.exit(f"no avatar; logs in {logs}")
        time.sleep(5.0)  # tracker calibration, JIT warm-up
        loaders = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(a.load)]
        for p in loaders:
            p.start()
        rec.reset()
        cpu0 = {p.name: cpu_seconds(p.pid) for p in procs}
        self0 = time.process_time()
        t_end = time.monotonic() + a.seconds
        while (left := t_end - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            if a.trace:
                r, t = rec.node_states.get("render_node", {}), rec.node_states.get("tracker_node", {})
                print(f"  render {r.get('rate_hz')} Hz {r.get('render_ms_mean')}/{r.get('render_ms_max')} ms "
                      f"threads {r.get('cpu_threads')} | tracker in {t.get('input_rate_hz')} Hz out "
                      f"{t.get('processed_rate_hz')} Hz {t.get('processing_ms_mean')}/{t.get('processing_ms_max')} ms"
                      f" | age of the control at publication: tracker {t.get('latency_ms_mean')} ms, "
                      f"render {r.get('latency_ms_mean')} ms | load {os.getloadavg()[0]:.1f}", flush=True)
        s = rec.stats
        cpu = {p.name: cpu_seconds(p.pid) - cpu0[p.name] for p in procs}
        cpu["bench (display)"] = time.process_time() - self0
        lat = np.asarray(s.latencies_ms)
        load = os.getloadavg()[0]
        print(f"{a.size}x{a.size} at {a.fps:g} fps target, {a.backend} backend, {a.load} busy process(es), "
              f"load average {load:.1f}: {len(lat)} frames in {a.seconds:g} s = {s.fps():.1f} FPS; "
              f"glass-to-glass latency p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, "
              f"max {lat.max():.1f} ms")
        displayed = [(st, st + int(round(ms * 1e6))) for st, ms in zip(s.stamps_ns, s.latencies_ms)]
        (trace_dir / "displayed.tsv").write_text("".join(f"{st} {t}\n" for st, t in displayed))  # for later analyses
        events = frametrace.read_traces(trace_dir)
        print(frametrace.report(events, displayed))
        frames = {"video_source_node": "camera frames", "tracker_node": "tracked frames",
                  "render_node": "displayed frames", "bench (display)": "displayed frames"}
        lo, hi = min(s.stamps_ns), max(s.stamps_ns)
        count = {"camera frames": sum(lo <= t <= hi for t in events.get(frametrace.CAMERA_PUBLISHED, {})),
                 "tracked frames": sum(lo <= t <= hi for t in events.get(frametrace.TRACKER_START, {})),
                 "displayed frames": len(lat)}
        print("CPU per frame: " + ", ".join(
            f"{name} {sec * 1e3 / max(count[frames[name]], 1):.1f} ms per {frames[name][:-1]} "
            f"({sec / a.seconds * 100:.0f} % of a core)" for name, sec in cpu.items() if name in frames)
              + f" ({len(lat)} displayed, load average {os.getloadavg()[0]:.1f}; logs and traces in {logs})")
    finally:
        stop.set()
        for p in loaders:
            p.join(timeout=2)
        rec.close()
        for p in reversed(procs):
            p.stop()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
