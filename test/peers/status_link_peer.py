"""A process on one side of test_status_link's link (test/test_two_hosts.py).

Usage: status_link_peer.py reader
         prints 'READY', then one line per avatar/status it gets (reliable, transient local, depth 10, as photo_node
         reads it): 'STATUS <frame_id> <code>'.
       status_link_peer.py robot DEV PHOTO_A PHOTO_C
         beside the robot's reconstruction_node (its own host): once the node is ready and a second avatar/status
         reader is on the graph, sends photo 'A' (PHOTO_A), then 'B' (a grey square) once the node's diagnostics
         say it reconstructs A, takes
         its link DEV down, sends 'C' (PHOTO_C) — the node drops B (SUPERSEDED) and says BUSY for C, back to back,
         while the link is down — and brings the link up 1 s later; prints 'LOCAL <frame_id> <code>' for each status
         it gets itself, and 'DONE' once A and C have their final status.
"""

import subprocess
import sys
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage

from gaussian_head_ros.msg import AvatarStatus

STATUS_QOS = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def spin_until(node, predicate, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


def reader():
    node = rclpy.create_node("status_link_reader")
    node.create_subscription(AvatarStatus, "avatar/status",
                             lambda m: print(f"STATUS {m.header.frame_id} {m.code}", flush=True), STATUS_QOS)
    print("READY", flush=True)
    rclpy.spin(node)


def robot(dev, photo_a, photo_c):
    node = rclpy.create_node("status_link_robot")
    got = []

    def on_status(m):
        got.append((m.header.frame_id, m.code))
        print(f"LOCAL {m.header.frame_id} {m.code}", flush=True)

    node.create_subscription(AvatarStatus, "avatar/status", on_status, STATUS_QOS)
    state = {}
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: state.update(
        {kv.key: kv.value for st in m.status if "reconstruction_node" in st.name for kv in st.values}), 10)
    pub = node.create_publisher(CompressedImage, "operator/photo/compressed",
                                QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))

    def send(frame_id, data, fmt):
        msg = CompressedImage(format=fmt, data=data)
        msg.header.frame_id, msg.header.stamp = frame_id, node.get_clock().now().to_msg()
        pub.publish(msg)

    def final(frame_id):
        return any(f == frame_id and c != AvatarStatus.BUSY for f, c in got)

    assert spin_until(node, lambda: pub.get_subscription_count() and state.get("state") == "ready", 240), state
    assert spin_until(node, lambda: node.count_subscribers("avatar/status") >= 2, 60), "no reader across the link"
    spin_until(node, lambda: False, 2.0)  # the reader matched with the node's writer too
    import cv2
    import numpy as np

    grey = cv2.imencode(".png", np.full((300, 300, 3), 90, np.uint8))[1].tobytes()
    send("A", Path(photo_a).read_bytes(), Path(photo_a).suffix.lstrip(".").replace("jpg", "jpeg"))
    # B only once A is taken: the node's photo reader keeps one sample, and B sent 0.2 s after A replaced it there
    assert spin_until(node, lambda: state.get("state", "").startswith("reconstructing"), 60), state
    send("B", grey, "png")
    assert spin_until(node, lambda: ("B", AvatarStatus.BUSY) in got, 30), got  # A is being reconstructed
    subprocess.run(["ip", "link", "set", dev, "down"], check=True)
    try:
        send("C", Path(photo_c).read_bytes(), Path(photo_c).suffix.lstrip(".").replace("jpg", "jpeg"))
        assert spin_until(node, lambda: ("B", AvatarStatus.SUPERSEDED) in got, 30), got
        spin_until(node, lambda: False, 1.0)
    finally:
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)
    assert spin_until(node, lambda: final("A") and final("C"), 240), got
    print("DONE", flush=True)
    rclpy.spin(node)


if __name__ == "__main__":
    rclpy.init()
    try:
        reader() if sys.argv[1] == "reader" else robot(*sys.argv[2:5])
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
