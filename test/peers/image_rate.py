"""A plain subscriber in its own process (started without the package's Fast DDS profile, like a user's
rqt_image_view): counts sensor_msgs/Image frames on a topic.

Usage: image_rate.py TOPIC SECONDS. After the first frame and a 1 s settling time, counts frames for
SECONDS and prints one line 'RESULT <frames> <rate_hz> <width>x<height> <start> <end>' (or
'RESULT 0 0 none 0 0' when no frame came within 60 s); start/end = the counting window in
time.monotonic() seconds (CLOCK_MONOTONIC: the same clock in every process of this machine), so the
caller can compare with what the publisher published in the same window.
"""

import sys
import time

import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

SETTLE_S = 1.0
FIRST_FRAME_TIMEOUT_S = 60.0


def main():
    topic, seconds = sys.argv[1], float(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node("image_rate_peer")
    arrivals, size = [], ["none"]

    def on_image(msg):
        arrivals.append(time.monotonic())
        size[0] = f"{msg.width}x{msg.height}"

    node.create_subscription(Image, topic, on_image, qos_profile_sensor_data)
    deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
    while not arrivals and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if arrivals:
        start = arrivals[0] + SETTLE_S
        end = start + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
    counted = [t for t in arrivals if arrivals and start <= t < end] if arrivals else []
    window = f"{start:.3f} {end:.3f}" if arrivals else "0 0"
    print(f"RESULT {len(counted)} {len(counted) / seconds if arrivals else 0.0:.2f} {size[0]} {window}", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
