#!/usr/bin/env python3
"""Image transport latency between two processes: a publisher sends WxH rgb8 frames at a rate,
a subscriber measures now - stamp. Prints p50/p95/max in ms.

  python scripts/bench_dds.py [--size 512] [--rate 30] [--seconds 10] [--no-profile]

--no-profile runs without config/fastdds.xml (Fast DDS defaults) for comparison.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def publisher(size: int, rate: float, seconds: float):
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_image_pub")
    pub = node.create_publisher(Image, "bench/image", qos_profile_sensor_data)
    frame = np.random.default_rng(0).integers(0, 255, (size, size, 3), np.uint8).tobytes()
    time.sleep(1.5)  # discovery
    t_end = time.monotonic() + seconds
    period = 1.0 / rate
    nxt = time.monotonic()
    while time.monotonic() < t_end:
        msg = Image(height=size, width=size, encoding="rgb8", step=size * 3)
        msg.data = frame
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        nxt += period
        time.sleep(max(0.0, nxt - time.monotonic()))
    node.destroy_node()
    rclpy.shutdown()


def subscriber(seconds: float) -> list[float]:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_image_sub")
    lat = []

    def cb(msg):
        now = node.get_clock().now().nanoseconds
        lat.append((now - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) / 1e6)

    node.create_subscription(Image, "bench/image", cb, qos_profile_sensor_data)
    t_end = time.monotonic() + seconds + 3.0
    while time.monotonic() < t_end:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
    return lat


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--role", choices=["pub"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "pub":
        publisher(a.size, a.rate, a.seconds)
        return
    env = dict(os.environ)
    if a.no_profile:
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
        env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
        os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
        os.environ.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    else:
        prof = str(Path(__file__).resolve().parents[1] / "config" / "fastdds.xml")
        for k in ("FASTDDS_DEFAULT_PROFILES_FILE",):
            env[k] = os.environ[k] = prof
    pub = subprocess.Popen([sys.executable, __file__, "--role", "pub", "--size", str(a.size), "--rate", str(a.rate),
                            "--seconds", str(a.seconds)], env=env)
    lat = subscriber(a.seconds)
    pub.wait()
    if not lat:
        print("no frames received")
        sys.exit(1)
    lat = np.array(lat)
    expected = int(a.seconds * a.rate)
    print(f"{a.size}x{a.size} rgb8 at {a.rate:g} Hz, {'Fast DDS defaults' if a.no_profile else 'config/fastdds.xml'}: "
          f"{len(lat)}/{expected} frames, latency p50 {np.percentile(lat, 50):.2f} ms, "
          f"p95 {np.percentile(lat, 95):.2f} ms, max {lat.max():.2f} ms")


if __name__ == "__main__":
    main()
