"""A robot integrator's first week with the package (user50): their own rclpy subscribers with the default QoS on our
latched topics, and `ros2 param set` as the README shows it, each against the real node processes."""

from __future__ import annotations

import time


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



def test_an_empty_photo_set_on_photo_node_says_the_robot_keeps_the_photo_sent(rclpy_context, tmp_path, shared_data):
    """`ros2 param set /photo_node photo ''` after a photo was sent was accepted ('Set parameter successful') without a
    word, while photo_node kept that photo latched: the robot kept the face, and a robot restarted later still got it.
    Still accepted (an operator_id set next goes with the next photo, user39), now the log says what it did not do."""
    from rosgraph import Proc, executable, set_parameter, spin_until

    photo = shared_data / "portraits" / "lp_d8_man_glasses.jpg"
    proc = Proc(executable("photo_node") + ["--ros-args", "-r", "__ns:=/empty_photo", "-p", f"photo:={photo}"],
                tmp_path / "photo_node.log")
    node = rclpy_context.create_node("empty_photo_setter")
    said = "photo set empty: nothing sent, nothing taken back: the robot keeps lp_d8_man_glasses.jpg as " \
           "'lp_d8_man_glasses', and a robot started or restarted later still gets it (latched)"
    try:
        assert spin_until(node, lambda: "sent " in proc.output(), 30), proc.output()
        assert set_parameter(node, "/empty_photo/photo_node", "photo", "").successful
        assert spin_until(node, lambda: said in proc.output(), 5), proc.output()
    finally:
        node.destroy_node()
        rc = proc.stop()
    assert rc in (0, -2, 130), f"photo_node exited with {rc}:\n{proc.output()}"


def test_a_robot_with_no_avatar_yet_says_its_display_shows_the_placeholder(tmp_path):
    """`ros2 launch gaussian_head_ros robot.launch.py` on a fresh robot (no photo, no cache) and no operator yet: 10 s in,
    the render node said 'no face_control on /face_control yet (...): the avatar plays its idle animation until the
    operator's tracker ... publishes', while there was no avatar and its display showed the placeholder. Now the line
    says the placeholder, and what it waits for."""
    from rosgraph import Proc, executable, wait_until

    proc = Proc(executable("render_node") + ["--ros-args", "-r", "__ns:=/no_avatar_yet", "-p", "no_controls_say_s:=1.0",
                                             "-p", "width:=64", "-p", "height:=64"], tmp_path / "render_node.log")
    try:
        assert wait_until(lambda: "no face_control on /no_avatar_yet/face_control" in proc.output(), 30), proc.output()
        line = next(ln for ln in proc.output().splitlines() if "no face_control on /no_avatar_yet/face_control" in ln)
        assert "the placeholder shows (waiting for an avatar on /no_avatar_yet/avatar), then the avatar's idle " \
               "animation" in line, line
        assert "the avatar plays its idle animation" not in line, line
    finally:
        rc = proc.stop()
    assert rc in (0, -2, 130), f"render_node exited with {rc}:\n{proc.output()}"


def test_a_render_node_whose_sim_clock_stands_still_says_so_and_when_it_moves_again(rclpy_context, tmp_path):
    """`robot.launch.py use_sim_time:=true` driven by a replay of the operator's controls played with --clock (an rclpy
    player standing in for ros2 bag play): at the replay's end /clock stopped, and the render node said nothing of it
    while every idle frame of its face display, each a new picture, carried the one stamp of the last /clock (179 of
    411 frames in 40 s with equal stamps here; user55), where the README tells a consumer to keep the first of equal
    stamps. Now the node says the clock has stood still (with its time and the causes), and when it moves again."""
    from rclpy.qos import qos_profile_sensor_data
    from rclpy.time import Time
    from rosgraph import Proc, executable, spin_until
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    proc = Proc(executable("render_node") + ["--ros-args", "-r", "__ns:=/sim_still", "-p", "use_sim_time:=true",
                                             "-p", "width:=64", "-p", "height:=64", "-p", "fps:=10.0"],
                tmp_path / "render_node.log")
    node = rclpy_context.create_node("sim_clock_player")
    clock = node.create_publisher(Clock, "/clock", 10)
    stamps = []
    node.create_subscription(Image, "/sim_still/face_display/image_raw",
                             lambda m: stamps.append((m.header.stamp.sec, m.header.stamp.nanosec)),
                             qos_profile_sensor_data)
    t = [100.0]

    def tick() -> None:  # the player's /clock, 0.1 s a tick
        t[0] += 0.1
        clock.publish(Clock(clock=Time(seconds=t[0]).to_msg()))

    try:
        assert spin_until(node, lambda: "renderer ready" in proc.output() and stamps, 60), proc.output()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(s[0] >= 101 for s in stamps):
            tick()
            spin_until(node, lambda: False, 0.1)
        assert any(s[0] >= 101 for s in stamps), (stamps[-5:], proc.output()[-3000:])
        n0 = len(stamps)  # the replay ends: /clock stops
        assert spin_until(node, lambda: "/clock has stood at" in proc.output(), 30), proc.output()[-3000:]
        assert len(set(stamps[n0 + 5:])) == 1, stamps[n0:]  # (what it says: the idle frames share one stamp)
        line = next(ln for ln in proc.output().splitlines() if "/clock has stood at" in ln)
        assert "[WARN]" in line and f"{t[0]:.3f} s" in line and "a bag paused or at its end" in line, line
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "/clock moves again" not in proc.output():
            tick()
            spin_until(node, lambda: False, 0.1)
        assert "/clock moves again" in proc.output(), proc.output()[-3000:]
    finally:
        node.destroy_node()
        rc = proc.stop()
    assert rc in (0, -2, 130), f"render_node exited with {rc}:\n{proc.output()}"


def test_a_node_under_use_sim_time_with_no_clock_yet_still_says_what_is_wrong(rclpy_context, tmp_path):
    """`robot.launch.py use_sim_time:=true` with the camera bag played without --clock (or not yet): the render node
    drew and published its frames, but its timers ran on the ROS clock, which stands still until the first /clock:
    no /diagnostics from any node, and not one of the lines that say what is wrong (no controls, the stamp offset
    of a bag played without --clock), for as long as no /clock came. Their timers now run on the steady clock, and
    each node says when no /clock has come 10 s after its start (common.watch_sim_clock)."""
    from rosgraph import Proc, executable, spin_until, wait_until
    from rclpy.time import Time
    from rosgraph_msgs.msg import Clock

    proc = Proc(executable("render_node") + ["--ros-args", "-r", "__ns:=/sim_no_clock", "-p", "use_sim_time:=true",
                                             "-p", "no_controls_say_s:=1.0", "-p", "width:=64", "-p", "height:=64"],
                tmp_path / "render_node.log")
    try:
        assert wait_until(lambda: "no face_control on /sim_no_clock/face_control" in proc.output(), 20), proc.output()
        # and that no /clock came, at 10 s (before: nothing, and frames stamped 0)
        assert wait_until(lambda: "use_sim_time is true and no /clock has come in 10 s" in proc.output(), 20), \
            proc.output()
        node = rclpy_context.create_node("sim_clock")
        clock = node.create_publisher(Clock, "/clock", 10)

        def tick() -> bool:
            clock.publish(Clock(clock=Time(seconds=100).to_msg()))
            return "/clock arrived: this node's time follows it now" in proc.output()
        assert spin_until(node, tick, 20), proc.output()
        node.destroy_node()
    finally:
        rc = proc.stop()
    assert rc in (0, -2, 130), f"render_node exited with {rc}:\n{proc.output()}"
