"""A second process for the message tests: publishes a latched avatar, controls and a status.

Usage: message_peer.py N_GAUSSIANS SEED [AVATAR_PLY]. Prints 'READY <sha256 of the avatar point data>' once the
latched avatar is published, then keeps publishing controls until killed. With AVATAR_PLY it publishes that avatar
file instead, latched on test/avatar_file, and prints 'READY <sha256> <serialized message bytes>'.
"""

import hashlib
import sys

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from gaussian_head_ros.msg import AvatarStatus, FaceControl, GaussianAvatar
from gaussian_head_ros.nodes.conversions import avatar_to_msg, control_to_msg, status_msg

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from message_samples import sample_avatar, sample_control  # noqa: E402


def main():
    n, seed = int(sys.argv[1]), int(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node("message_peer")
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    if len(sys.argv) > 3:
        _publish_file(node, sys.argv[3], latched)
    else:
        _publish_samples(node, n, seed, latched)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _publish_samples(node, n: int, seed: int, latched) -> None:
    pub_avatar = node.create_publisher(GaussianAvatar, "test/avatar", latched)
    pub_status = node.create_publisher(AvatarStatus, "test/avatar/status", latched)
    pub_control = node.create_publisher(FaceControl, "test/face_control", 10)
    msg = avatar_to_msg(sample_avatar(n, seed))
    pub_avatar.publish(msg)
    pub_status.publish(status_msg(AvatarStatus.OK, "avatar ready", operator_id="peer", warnings=["2 faces found"],
                                  num_gaussians=n, duration_s=1.25))
    print("READY", hashlib.sha256(bytes(msg.gaussians.data)).hexdigest(), flush=True)
    control = control_to_msg(sample_control(seed))
    node.create_timer(0.05, lambda: pub_control.publish(control))


def _publish_file(node, path: str, latched) -> None:
    from rclpy.serialization import serialize_message

    from gaussian_head_ros.core.avatar import load_ply

    pub = node.create_publisher(GaussianAvatar, "test/avatar_file", latched)
    msg = avatar_to_msg(load_ply(path))
    pub.publish(msg)
    print("READY", hashlib.sha256(bytes(msg.gaussians.data)).hexdigest(), len(serialize_message(msg)), flush=True)


if __name__ == "__main__":
    main()
