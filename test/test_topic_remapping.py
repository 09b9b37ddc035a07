"""Topics that belong with another follow its remapping, as image_transport's and RViz's do
(nodes.common.companion_topic): the camera_info beside the tracker's camera images, the expression basis and
the recalibration below face_control, the display's camera_info and JPEG stream beside / below its images, the
avatar's cloud and status below `avatar`, the compressed photo below `operator/photo`. Before (try8):
`ros2 launch ... camera_topic:=/usb_cam/image_raw` left /usb_cam/camera_info unread (a guessed field of view,
logged as 'no camera_info yet'), and render nodes remapped to another namespace's face_control never received
the operator's expression basis. The real node processes, their subscriptions and publishers as the graph
shows them. A tracker that gets no frame on its camera topic names that topic and the Image topics that are
published (a driver on usb_cam's default `/image_raw` was a silent tracker)."""

import time

import pytest

pytestmark = pytest.mark.ros


def test_companion_topics_follow_a_remapped_topic(rclpy_context, tmp_path):
    from rosgraph import Proc, executable, spin_until

    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    node = rclpy_context.create_node("remap_probe")
    # a camera driver on its own default topic (usb_cam's, v4l2_camera's): the tracker, remapped elsewhere, says so
    node.create_publisher(Image, "/image_raw", qos_profile_sensor_data)
    procs = [
        # (its no-frames line 6 s after it is ready rather than 10, as in test_tracker_node's
        # test_a_camera_topic_that_is_published_but_sends_nothing_is_said_as_such: the same rule; s40)
        Proc(executable("tracker_node") + ["--ros-args", "-r", "camera/image_raw:=/usb_cam/image_raw",
                                           "-r", "face_control:=/operator/face_control", "-p", "no_frames_say_s:=6.0"],
             tmp_path / "tracker.log"),
        Proc(executable("render_node") + ["--ros-args", "-r", "__ns:=/robot1", "-r", "face_control:=/operator/face_control",
                                          "-r", "face_display/image_raw:=/robot1/screen/image_raw",
                                          "-p", "width:=64", "-p", "height:=64", "-p", "backend:=cpu"],
             tmp_path / "render.log"),
        Proc(executable("reconstruction_node") + ["--ros-args", "-r", "__ns:=/robot1", "-r", "avatar:=/robot1/head",
                                                  "-r", "operator/photo:=/operator/photo", "-p", "cache_avatar:=false"],
             tmp_path / "reconstruction.log"),
    ]
    expected = [  # (topic, publisher or subscriber, the node's name)
        ("/usb_cam/camera_info", "sub", "tracker_node"),
        ("/operator/face_control/recalibrate", "sub", "tracker_node"),
        ("/operator/face_control/expression_basis", "pub", "tracker_node"),
        ("/operator/face_control/expression_basis", "sub", "render_node"),
        ("/robot1/screen/camera_info", "pub", "render_node"),
        ("/robot1/screen/image_raw/compressed", "pub", "render_node"),
        ("/robot1/head/cloud", "pub", "reconstruction_node"),
        ("/robot1/head/status", "pub", "reconstruction_node"),
        ("/operator/photo/compressed", "sub", "reconstruction_node"),
    ]

    def holds(topic, what, name):
        infos = (node.get_publishers_info_by_topic if what == "pub" else node.get_subscriptions_info_by_topic)(topic)
        return any(i.node_name == name for i in infos)

    def missing():
        return [e for e in expected if not holds(*e)]

    try:
        ok = spin_until(node, lambda: not missing(), 180)  # three node start-ups at load 30: 10-60 s
        assert ok, f"not on the graph: {missing()}\n" + "\n".join(p.output()[-2000:] for p in procs)
        for old in ("/usb_cam/image_raw/camera_info", "/camera/camera_info", "/robot1/face_control/expression_basis",
                    "/robot1/face_display/camera_info", "/robot1/avatar/cloud"):
            assert not node.get_publishers_info_by_topic(old) and not node.get_subscriptions_info_by_topic(old), old
        # no frame ever came on its topic: the tracker's log says where it listens and which Image topics exist
        said = lambda: [ln for ln in procs[0].output().splitlines() if "no camera frames on" in ln]  # noqa: E731
        assert spin_until(node, said, 120), procs[0].output()[-3000:]
        assert "no camera frames on /usb_cam/image_raw" in said()[0] and ": /image_raw;" in said()[0], said()
    finally:
        node.destroy_node()
        codes = {p.name: p.stop() for p in procs}
    assert all(rc in (0, -2, 130) for rc in codes.values()), codes


def test_only_topics_published_with_the_type_are_offered(rclpy_context, tmp_path):
    """The graph's topic types are its publishers' and subscribers' together: a topic where only a subscriber takes
    sensor_msgs/Image while another process publishes another type there (a node subscribed to the wrong topic, a
    raw viewer started on a compressed stream) was offered to a tracker that got no frames as an Image topic to
    remap to (user37). Real endpoints: this process's node and a second process (one participant refuses two types
    on one topic)."""
    import sys

    from rosgraph import Proc

    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from gaussian_head_ros.nodes.common import other_topics

    publisher = ("import rclpy, time\n"
                 "from sensor_msgs.msg import CompressedImage\n"
                 "rclpy.init(); n = rclpy.create_node('other_type_publisher')\n"
                 "n.create_publisher(CompressedImage, '/probe_mixed', 1)\n"
                 "time.sleep(60)\n")
    proc = Proc([sys.executable, "-c", publisher], tmp_path / "publisher.log")
    node = rclpy_context.create_node("other_topics_probe")
    try:
        node.create_publisher(Image, "/probe_cam/image_raw", qos_profile_sensor_data)
        node.create_subscription(Image, "/probe_mixed", lambda _: None, qos_profile_sensor_data)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and not node.get_publishers_info_by_topic("/probe_mixed"):
            time.sleep(0.05)
        assert node.get_publishers_info_by_topic("/probe_mixed"), proc.output()
        found = [t for t in other_topics(node, "sensor_msgs/msg/Image", "/camera/image_raw") if t.startswith("/probe")]
        assert found == ["/probe_cam/image_raw"], found  # before: also /probe_mixed
        subscribed = [t for t in other_topics(node, "sensor_msgs/msg/Image", "/camera/image_raw", subscribed=True)
                      if t.startswith("/probe")]
        assert subscribed == ["/probe_mixed"], subscribed
        assert [t for t in other_topics(node, "sensor_msgs/msg/CompressedImage", "") if t.startswith("/probe")] == [
            "/probe_mixed"]
    finally:
        node.destroy_node()
        proc.stop()
