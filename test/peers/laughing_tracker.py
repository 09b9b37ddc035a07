"""A second process for the render node's hand-over tests: an operator's tracker mid-laugh.

Usage: laughing_tracker.py [--ros-args ...]. Publishes a FaceControl on face_control at 30 Hz (face detected, the head
turned 15 deg, the mouth wide open: jawOpen 0.9), stamped with the node's clock, and prints 'READY' after the first.
SIGUSR1 pauses the stream for PAUSE_S with the node still on the graph (a link hiccup), printed as 'PAUSED <the last
control's stamp, ns>'; SIGINT stops it as Ctrl-C stops a tracker (its node is destroyed and leaves the graph), printed
as 'LAST <the last control's stamp, ns>' once the node is gone.
"""

import signal
import sys
import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException

from gaussian_head_ros.core.control import FaceControl, euler_to_quat
from gaussian_head_ros.msg import FaceControl as FaceControlMsg
from gaussian_head_ros.nodes.conversions import control_to_msg

PAUSE_S = 3.0


def main():
    rclpy.init(args=sys.argv)
    node = rclpy.create_node("laughing_tracker")
    pub = node.create_publisher(FaceControlMsg, "face_control", 5)
    paused_until = [0.0]
    signal.signal(signal.SIGUSR1, lambda *_: paused_until.__setitem__(0, time.monotonic() + PAUSE_S))
    said, last = [], [0]

    def tick():
        if time.monotonic() < paused_until[0]:
            if "PAUSED" not in said:
                said.append("PAUSED")
                print("PAUSED", last[0], flush=True)
            return
        said[1:] = []
        last[0] = node.get_clock().now().nanoseconds
        pub.publish(control_to_msg(FaceControl(
            stamp_ns=last[0], face_detected=True, confidence=0.95,
            rotation=euler_to_quat(15.0, 0.0, 0.0).astype(np.float32), mouth_open=0.6,
            blendshape_names=["jawOpen", "mouthSmileLeft", "mouthSmileRight"],
            blendshapes=np.array([0.9, 0.7, 0.7], np.float32))))
        if not said:
            said.append("READY")
            print("READY", flush=True)

    node.create_timer(1 / 30, tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        print("LAST", last[0], flush=True)


if __name__ == "__main__":
    main()
