"""The whole pipeline across real processes over DDS: photo -> reconstruction_node -> avatar (latched);
a ../shared clip -> video_source_node -> tracker_node -> face_control; render_node -> face display.

A second photo swaps the operator without a gap; the render node killed and restarted gets the
latched avatar back and resumes.
"""

import time

import numpy as np
import pytest
from conftest import shared

pytestmark = [pytest.mark.ros, pytest.mark.slow]

FPS = 15.0
SIZE = 256


def _photo_msg(path, operator):
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage(format="jpeg" if str(path).endswith("jpg") else "png", data=open(path, "rb").read())
    msg.header.frame_id = operator
    return msg


def _face(frames):
    """Mean of the central region of the kept frames: the rendered identity."""
    return np.mean([f[SIZE // 4: 3 * SIZE // 4, SIZE // 4: 3 * SIZE // 4].astype(np.float32) for _, f in frames], axis=0)


@pytest.fixture(scope="module")
def graph(rclpy_context, tmp_path_factory):
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image

    from gaussian_head_ros.msg import FaceControl

    from gaussian_head_ros.core import frametrace
    from gaussian_head_ros.nodes.launcher import FaceDisplayRecorder, NodeProcess, node_command

    logs = tmp_path_factory.mktemp("e2e")
    env = {frametrace.ENV: str(logs / "trace")}  # every node marks each frame's events (core/frametrace.py)
    clip = shared("driving", "lp_d18.mp4")
    render_cmd = node_command("render_node", {"fps": FPS, "width": SIZE, "height": SIZE, "backend": "cpu",
                                              "idle_timeout_s": 1.0, "crossfade_s": 0.3})
    procs = {
        "reconstruction_node": NodeProcess("reconstruction_node", node_command("reconstruction_node"), logs, env=env),
        "render_node": NodeProcess("render_node", render_cmd, logs, env=env),
        "tracker_node": NodeProcess("tracker_node", node_command("tracker_node"), logs, env=env),
        "video_source_node": NodeProcess("video_source_node", node_command(
            "video_source_node", {"source": str(clip), "loop": True}), logs, env=env),
    }
    recorder = FaceDisplayRecorder(keep_frames=30)
    node = rclpy_context.create_node("e2e_driver")
    camera_stamps, control_stamps = set(), set()
    node.create_subscription(Image, "camera/image_raw",
                             lambda m: camera_stamps.add(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec),
                             qos_profile_sensor_data)
    node.create_subscription(FaceControl, "face_control",
                             lambda m: control_stamps.add(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec),
                             QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    photo_pub = node.create_publisher(CompressedImage, "operator/photo/compressed", QoSProfile(depth=1))
    state = {"procs": procs, "recorder": recorder, "node": node, "camera_stamps": camera_stamps,
             "control_stamps": control_stamps,
             "photo_pub": photo_pub, "render_cmd": render_cmd, "logs": logs, "trace": env[frametrace.ENV]}
    yield state
    recorder.close()
    node.destroy_node()
    for p in procs.values():
        p.stop()


def _spin(state, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        import rclpy

        rclpy.spin_once(state["node"], timeout_sec=0.02)


def _publish_photo_and_wait(state, path, operator, timeout=60):
    rec = state["recorder"]
    n0 = len(rec.statuses)
    # Wait until the reconstruction node is subscribed, then publish once (latched-free: reliable depth 1).
    pub = state["photo_pub"]
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        _spin(state, 0.1)
    pub.publish(_photo_msg(path, operator))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _spin(state, 0.1)
        new = [s for s in rec.statuses[n0:] if s.operator_id == operator]
        if new:
            return new[-1]
    logs = "\n".join(f"--- {k}\n{p.log()[-3000:]}" for k, p in state["procs"].items())
    raise AssertionError(f"no status for {operator} within {timeout} s\n{logs}")


def test_photo_to_stream_with_traceable_stamps(graph):
    st = _publish_photo_and_wait(graph, shared("portraits", "trump_official.png"), "operator_a")
    assert st.ok, st.message
    rec = graph["recorder"]
    _spin(graph, 4.0)  # tracker calibrates, controls flow
    rec.reset()
    _spin(graph, 5.0)
    s = rec.stats
    assert s.sizes == {(SIZE, SIZE, "rgb8")}
    # live frames follow the controls as they come (core/pacing.py): a tracker slowed by a busy machine below FPS
    # sets the rate (a repeat of the last frame is only a keep-alive after 2.5 periods without one)
    t0, t1 = min(s.stamps_ns), max(s.stamps_ns)
    control_rate = sum(t0 <= t <= t1 for t in graph["control_stamps"]) / max((t1 - t0) * 1e-9, 1e-3)
    assert s.fps() >= 0.8 * min(FPS, control_rate), f"{s.fps():.1f} FPS < 0.8 x min({FPS}, {control_rate:.1f} controls/s)"
    traced = sum(1 for t in s.stamps_ns if t in graph["camera_stamps"])
    controls, camera = graph["control_stamps"], graph["camera_stamps"]
    assert traced >= 0.9 * len(s.stamps_ns), (
        f"only {traced}/{len(s.stamps_ns)} frames carry a camera stamp; "
        f"{sum(1 for t in s.stamps_ns if t in controls)} carry a face_control stamp; this test received "
        f"{len(camera)} camera frames and {len(controls)} controls, {len(controls & camera)} of them with a camera stamp")
    # the per-frame trace follows the same frames through every process (what bench_latency's breakdown reads)
    from gaussian_head_ros.core import frametrace

    displayed = [(t, t + int(ms * 1e6)) for t, ms in zip(s.stamps_ns, s.latencies_ms)]
    b = frametrace.breakdown(frametrace.read_traces(graph["trace"]), displayed)
    assert b["complete"] >= 0.9 * traced, frametrace.report(frametrace.read_traces(graph["trace"]), displayed)
    graph["identity_a"] = _face(rec.frames)


def test_second_photo_swaps_operator_without_gap(graph):
    rec = graph["recorder"]
    rec.reset()
    _spin(graph, 3.0)
    steady = rec.stats.max_gap_s()  # the longest pause without a swap, in this run (a loaded machine has some)
    rec.reset()
    st = _publish_photo_and_wait(graph, shared("portraits", "obama_official.jpg"), "operator_b")
    assert st.ok, st.message
    # The render node receives and loads the new avatar after the status: judge the frames drawn once its
    # diagnostics say it draws operator_b (from the dip's bottom, 0.15 s in) and the dip (crossfade_s 0.3) is over
    # (a fixed 3 s after the status took the last 10 frames half from before the swap on a loaded machine: identity
    # change 6.5 < 12).
    drawing = lambda: rec.node_states.get("render_node", {}).get("drawing_operator_id")  # noqa: E731
    assert rec.wait_for(lambda: drawing() == "operator_b", 60), (drawing(), graph["procs"]["render_node"].log()[-3000:])
    _spin(graph, 1.0)
    rec.frames.clear()
    deadline = time.monotonic() + 30
    while len(rec.frames) < 10 and time.monotonic() < deadline:
        _spin(graph, 0.2)
    assert len(rec.frames) >= 10, graph["procs"]["render_node"].log()[-3000:]
    assert rec.stats.max_gap_s() < max(0.5, 2.5 * steady), \
        f"the stream paused {rec.stats.max_gap_s():.2f} s during the swap ({steady:.2f} s without one)"
    identity_b = _face(rec.frames[-10:])
    graph["identity_b"] = identity_b
    changed = np.abs(identity_b - graph["identity_a"]).mean()
    print(f"identity change at the swap: {changed:.1f} (grey levels)")
    assert changed > 12, "the rendered identity did not change"


def test_render_node_restart_gets_latched_avatar(graph):
    import signal

    from gaussian_head_ros.nodes.launcher import NodeProcess

    rec = graph["recorder"]
    graph["procs"]["render_node"].stop(signal.SIGKILL)
    _spin(graph, 1.0)
    rec.reset()
    rec.frames.clear()
    rec.node_states.pop("render_node", None)  # the killed node's last diagnostics
    graph["procs"]["render_node"] = NodeProcess("render_node_2", graph["render_cmd"], graph["logs"])
    # The new node draws its idle placeholder while it loads its kernels; the latched avatar is applied after
    # that (7 s at load ~5 on 2 cores): judge the frames drawn once its diagnostics say it draws that avatar.
    render = graph["procs"]["render_node"]

    def drawing():
        return rec.node_states.get("render_node", {}).get("drawing_operator_id")

    assert rec.wait_for(lambda: drawing() == "operator_b", 60), (drawing(), render.log()[-3000:])
    rec.frames.clear()
    deadline = time.monotonic() + 30
    while len(rec.frames) < 30 and time.monotonic() < deadline:
        _spin(graph, 0.2)
    assert len(rec.frames) >= 30, render.log()[-3000:]
    again = _face(rec.frames[-10:])
    d_same = np.abs(again - graph["identity_b"]).mean()
    d_other = np.abs(again - graph["identity_a"]).mean()
    assert d_same < d_other, f"restarted render shows the wrong operator ({d_same:.1f} vs {d_other:.1f})"

