#!/usr/bin/env python3
"""Tracker benchmark: per-frame latency at 640x480 on this CPU, and the control stream's size.

    python scripts/bench_tracker.py [--clip CLIP.mp4] [--model FILE.task ...] [--repeat 2]

Frames: a driving clip scaled to 480x480 and centred on a 640x480 canvas (a webcam framing), stamped
at 30 fps. Latency = FaceTracker.process (MediaPipe + head frame + expression + One Euro filter), after
a warm-up; "node path" adds what tracker_node does around it (decode_raw of an rgb8 message, the
conversion to a FaceControl message and its serialisation). Stream size = the serialised
FaceControl message (rclpy.serialization.serialize_message) x 30 fps. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def frames_640x480(path: str, n: int) -> list[np.ndarray]:
    import cv2

    from gaussian_head_ros.core.video import read_frames

    out = []
    for f in read_frames(path, max_frames=n):
        canvas = np.zeros((480, 640, 3), np.uint8)
        canvas[:, 80:560] = cv2.resize(f.rgb, (480, 480), interpolation=cv2.INTER_AREA)
        out.append(canvas)
    return out


def bench(label: str, config, frames: list[np.ndarray], repeat: int) -> dict:
    from rclpy.serialization import serialize_message

    from gaussian_head_ros.core.imageio import decode_raw
    from gaussian_head_ros.core.tracking import FaceTracker
    from gaussian_head_ros.nodes.conversions import control_to_msg

    period = 1_000_000_000 // 30
    times, node_times, sizes, found = [], [], [], []
    with FaceTracker(config) as tr:
        stamp = 0
        for f in frames[:20]:  # warm-up (model load, first detection)
            stamp += period
            tr.process(f, stamp)
        for _ in range(repeat):
            for f in frames:
                stamp += period
                data = f.tobytes()
                t0 = time.perf_counter()
                rgb = decode_raw(data, 640, 480, 640 * 3, "rgb8")
                t1 = time.perf_counter()
                c = tr.process(rgb, stamp)
                t2 = time.perf_counter()
                wire = serialize_message(control_to_msg(c))
                t3 = time.perf_counter()
                times.append(t2 - t1)
                node_times.append(t3 - t0)
                sizes.append(len(wire))
                found.append(c.face_detected)
    t, nt = np.array(times) * 1e3, np.array(node_times) * 1e3
    c.landmarks = np.zeros((0, 3), np.float32)  # tracker_node send_landmarks:=false
    r = dict(label=label, median=np.median(t), p90=np.percentile(t, 90), mean=t.mean(), node_median=np.median(nt),
             bytes=int(np.median(sizes)), found=float(np.mean(found)),
             expr_bytes=len(serialize_message(control_to_msg(c))))
    print(f"{label:<44} process: median {r['median']:5.2f} ms  p90 {r['p90']:5.2f}  mean {r['mean']:5.2f}"
          f" | node path median {r['node_median']:5.2f} ms | message {r['bytes']} B"
          f" = {r['bytes'] * 30 / 1000:.1f} kB/s at 30 fps (expression only: {r['expr_bytes']} B ="
          f" {r['expr_bytes'] * 30 / 1000:.1f} kB/s) | face in {100 * r['found']:.0f}% of frames", flush=True)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default=str(DATA / "driving" / "sadtalker_WDA_KatieHill_000.mp4"))
    ap.add_argument("--model", action="append", default=None,
                    help="FaceLandmarker .task file(s) (default: the two in ../shared/data/models when present)")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2, help="passes over the frames")
    args = ap.parse_args()
    if not Path(args.clip).is_file():
        print(f"clip {args.clip} not found", file=sys.stderr)
        return 1
    models = args.model if args.model is not None else sorted(str(p) for p in (DATA / "models").glob("*.task"))

    from gaussian_head_ros.core.tracking import TrackerConfig

    frames = frames_640x480(args.clip, args.frames)
    print(f"{len(frames)} frames of {Path(args.clip).name} at 640x480, {args.repeat} passes; "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    bench("bundled face mesh (max_faces=2, default)", TrackerConfig(), frames, args.repeat)
    bench("bundled face mesh (max_faces=1)", TrackerConfig(max_faces=1), frames, args.repeat)
    bench("bundled face mesh, no smoothing", TrackerConfig(smoothing=False), frames, args.repeat)
    bench("bundled face mesh, its own irises", TrackerConfig(iris_model=False), frames, args.repeat)
    for m in models:
        bench(f"{Path(m).name} (blendshapes)", TrackerConfig(model_path=m), frames, args.repeat)
        bench(f"{Path(m).name} (blendshapes, max_faces=1)", TrackerConfig(model_path=m, max_faces=1), frames,
              args.repeat)
    from rclpy.serialization import serialize_message

    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.nodes.conversions import control_to_msg

    rest = len(serialize_message(control_to_msg(FaceControl.rest())))
    print(f"a no-face message before any face: {rest} B (after a face, no-face messages hold the last one's size; "
          f"tracker_node sends them at 2 Hz)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
