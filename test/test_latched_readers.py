"""What a robot integrator's own subscriber with the default QoS gets from the package's latched topics, and whether
the node that publishes there says it (user50): standard rclpy and ROS tools against our topics."""

from __future__ import annotations


def test_a_default_qos_reader_of_the_expression_basis_is_told_it_misses_the_current_one(rclpy_context, tmp_path):
    """`create_subscription(ExpressionBasis, "face_control/expression_basis", cb, 10)` (volatile) matches the tracker's
    latched basis without a word from DDS or rclpy, and gets no basis until the tracker learns the next one (2, 4,
    8 ... x operator_basis_s later): a reader that decodes the controls' codes with it decodes them on the fixed
    basis alone meanwhile. Before, the tracker said nothing (the reconstruction node says it of `avatar`); now it
    names the subscriber's node and the QoS to use, once per subscription, and leaves a latched reader alone."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph import Proc, executable, spin_until

    from gaussian_head_ros.msg import ExpressionBasis

    proc = Proc(executable("tracker_node") + ["--ros-args", "-r", "__ns:=/basis_readers"], tmp_path / "tracker.log")
    node = rclpy_context.create_node("my_basis_reader", namespace="/basis_readers")
    topic = "face_control/expression_basis"
    volatile = node.create_subscription(ExpressionBasis, topic, lambda m: None, 10)
    latched = node.create_subscription(ExpressionBasis, topic, lambda m: None, QoSProfile(
        depth=2, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    said = lambda: [ln for ln in proc.output().splitlines() if "/basis_readers/my_basis_reader subscribes to" in ln]  # noqa: E731
    try:
        assert spin_until(node, lambda: said(), 30), proc.output()[-3000:]
        spin_until(node, lambda: False, 2.5)  # one more check: the subscription is said once, the latched one never
        lines = said()
        assert len(lines) == 1, lines
        assert ("subscribes to /basis_readers/face_control/expression_basis volatile: it does not get the operator "
                "expression basis published before it joined (the one the controls' codes name now") in lines[0], lines
        assert "subscribe reliable and transient local, depth 2" in lines[0], lines
    finally:
        for s in (volatile, latched):
            node.destroy_subscription(s)
        node.destroy_node()
        rc = proc.stop()
    assert rc in (0, -2, 130), f"tracker_node exited with {rc}:\n{proc.output()}"

