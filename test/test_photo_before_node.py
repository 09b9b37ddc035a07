"""A photo published before reconstruction_node exists is used (issue 13, item 4): from a latched
(reliable + transient local) publisher that published once, and from a volatile publisher that keeps
publishing. Two nodes start side by side in their own namespaces, after the photos are out."""

import cv2
import pytest
from conftest import shared

pytestmark = pytest.mark.ros


def _photo_bytes(name="lp_d8_man_glasses.jpg", max_side=640) -> bytes:
    bgr = cv2.imread(str(shared("portraits", name)))
    s = max_side / max(bgr.shape[:2])
    if s < 1:
        bgr = cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", bgr)[1].tobytes()


def test_photo_published_before_the_node_starts_is_used(rclpy_context, tmp_path):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph import Proc, executable, spin_until
    from sensor_msgs.msg import CompressedImage

    from gaussian_head_ros.msg import AvatarStatus

    data = _photo_bytes()
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    volatile = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    node = rclpy_context.create_node("early_photo_sender")
    statuses = {"tl": [], "vol": []}
    for ns in statuses:
        node.create_subscription(AvatarStatus, f"/{ns}/avatar/status", statuses[ns].append, latched)
    pub_tl = node.create_publisher(CompressedImage, "/tl/operator/photo/compressed", latched)
    pub_vol = node.create_publisher(CompressedImage, "/vol/operator/photo/compressed", volatile)

    def msg(frame_id):
        m = CompressedImage(format="jpeg", data=data)
        m.header.frame_id = frame_id
        return m

    pub_tl.publish(msg("early_latched"))  # once, before any node exists
    vol_msg = msg("early_volatile")
    timer = node.create_timer(0.5, lambda: pub_vol.publish(vol_msg))  # keeps publishing
    procs = {ns: Proc(executable("reconstruction_node") + ["--ros-args", "-r", f"__ns:=/{ns}", "-p", "preset:=fast"],
                      tmp_path / f"{ns}.log") for ns in statuses}
    try:
        def ok(ns):
            return any(s.ok for s in statuses[ns])

        assert spin_until(node, lambda: ok("tl") and ok("vol"), 120), \
            {ns: ([s.message for s in statuses[ns]], procs[ns].output()[-2000:]) for ns in statuses}
        assert [s.operator_id for s in statuses["tl"] if s.ok][0] == "early_latched"
        assert [s.operator_id for s in statuses["vol"] if s.ok][0] == "early_volatile"
    finally:
        node.destroy_node()
        for p in procs.values():
            p.stop()
    for p in procs.values():
        assert "Traceback" not in p.output(), p.output()[-3000:]
