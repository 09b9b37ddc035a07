#!/usr/bin/env python3
"""The composed pipeline (avatar_pipeline: tracker, reconstruction and render nodes in one process) at several GIL
switch intervals (sys.setswitchinterval; nodes.common.GIL_SWITCH_INTERVAL_S is what the nodes use).

For each interval: avatar_pipeline is started with --photo and --video (a clip played as the camera), and a
FaceDisplayRecorder in this process reports the seconds until the avatar's OK status (with the status's own
reconstruction time) and the face display's frame rate over --window seconds after a --settle pause. Each interval
runs in a fresh process, one after the other. CPython's default interval is 5 ms; at it, on the 2-core CI machine,
the reconstruction waited for the GIL behind the tracker and the renderer (the convoy effect).

  python scripts/bench_composed_pipeline.py [--intervals 0.0005 0.005] [--photo P.jpg] [--video C.mp4]
        [--backend cpu] [--window 20] [--settle 8] [--timeout 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# run in the child: the pipeline's main with the interval under test in place of the nodes' own
_CHILD = """import sys
from gaussian_head_ros.nodes import common
common.GIL_SWITCH_INTERVAL_S = float(sys.argv.pop(1))
from gaussian_head_ros.nodes.pipeline import main
sys.argv[0] = "avatar_pipeline"
sys.exit(main())
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--intervals", type=float, nargs="+", default=[0.0005, 0.005], help="seconds")
    p.add_argument("--photo", default=str(SHARED / "portraits" / "lp_d8_man_glasses.jpg"))
    p.add_argument("--video", default=str(SHARED / "driving" / "lp_d0.mp4"))
    p.add_argument("--backend", default="cpu")
    p.add_argument("--window", type=float, default=20.0, help="seconds the display rate is counted over")
    p.add_argument("--settle", type=float, default=8.0, help="seconds after the avatar before counting")
    p.add_argument("--timeout", type=float, default=200.0, help="seconds to wait for the avatar")
    args = p.parse_args()

    import rclpy

    from gaussian_head_ros.nodes.launcher import FaceDisplayRecorder, NodeProcess, package_share

    rclpy.init()
    work = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    child = work / "child.py"
    child.write_text(_CHILD)
    for sw in args.intervals:
        proc = NodeProcess(f"pipeline_{sw}", [sys.executable, str(child), str(sw), "--params-file",
                                              str(package_share() / "config" / "avatar.yaml"), "--photo", args.photo,
                                              "--video", args.video, "--backend", args.backend], work)
        rec = FaceDisplayRecorder()
        try:
            t0 = time.monotonic()
            ok = rec.wait_for(lambda: any(s.ok for s in rec.statuses), args.timeout)
            t_ok = time.monotonic() - t0
            if not ok:
                print(f"switch interval {sw * 1e3:g} ms: no avatar within {args.timeout:.0f} s (log {proc.log_path})")
                continue
            said = next(s.message for s in rec.statuses if s.ok)
            time.sleep(args.settle)
            n0, t1 = len(rec.stats.arrivals), time.monotonic()
            time.sleep(args.window)
            fps = (len(rec.stats.arrivals) - n0) / (time.monotonic() - t1)
            print(f"switch interval {sw * 1e3:g} ms: avatar OK after {t_ok:.1f} s ({said}); face display "
                  f"{fps:.1f} fps over {args.window:.0f} s", flush=True)
        finally:
            rec.close()
            proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
