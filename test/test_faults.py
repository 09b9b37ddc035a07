"""Faults across the real pipeline (separate processes over DDS), in an order where each leaves the graph as the
next one needs it (so the module starts each node once), but each test stands alone: it first brings up what it
needs (`_ensure`, `_ensure_avatar`, `_ensure_driven`), which costs nothing when the test before left it so:

a photo published before the render node exists (it later gets the latched avatar); two photos in quick
succession (the newest wins, at the render node too); the tracker, the camera stream, the reconstruction
node and the render node each stopped (SIGKILL, or SIGINT for the camera) while streaming and started
again (the face display never stops: idle animation in between, then driven frames again; the restarted
render node gets the latched avatar); a rasterizer that fails at run time (torch on a CUDA device that is
not there) falls back to the cpu path with one warning.
"""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from conftest import shared
from graph_peer import latched_operator, photo, stamp_ns

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SIZE, FPS = 128, 10.0
FRAMES = "face_display/image_raw"
FALLBACK_FRAMES = "fallback/face_display/image_raw"


def _render_cmd(name="render_node", **overrides):
    from gaussian_head_ros.nodes.launcher import node_command

    params = {"width": SIZE, "height": SIZE, "fps": FPS, "backend": "cpu", "threads": 1, "idle_timeout_s": 1.0,
              "crossfade_s": 0.2, **overrides}
    remaps = {FRAMES: FALLBACK_FRAMES} if name != "render_node" else None
    return node_command("render_node", params, remaps=remaps, name=name)


COMMANDS = {
    "reconstruction_node": lambda: _cmd("reconstruction_node", {"preset": "fast"}),
    "render_node": lambda: _render_cmd(),
    "tracker_node": lambda: _cmd("tracker_node", {"neutral_frames": 5}),
    "video_source_node": lambda: _cmd("video_source_node", {"source": str(shared("driving", "lp_d18.mp4")),
                                                            "loop": True, "rate": 15.0}),
}


def _cmd(exe, params):
    from gaussian_head_ros.nodes.launcher import node_command

    return node_command(exe, params)


@pytest.fixture(scope="module")
def graph(rclpy_context, tmp_path_factory):
    from graph_peer import Peer
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image

    from gaussian_head_ros.msg import AvatarStatus
    from gaussian_head_ros.nodes.launcher import NodeProcess

    # every test here builds on the one before it: without the data each of them skips (not only the first
    # ones, after which the rest failed on a graph that had no nodes)
    shared("driving", "lp_d18.mp4")
    for name in ("obama_official.jpg", "trump_official.png", "lp_d8_man_glasses.jpg", "astronaut_eileen_collins.png"):
        shared("portraits", name)
    logs = tmp_path_factory.mktemp("faults")
    peer = Peer(rclpy_context, "faults_peer")
    peer.subscribe_frames(FRAMES)
    peer.subscribe_frames(FALLBACK_FRAMES)
    peer.subscribe_diagnostics()
    peer.subscribe("status", AvatarStatus, "avatar/status",
                   QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    peer.subscribe("camera", Image, "camera/image_raw", qos_profile_sensor_data, keep=stamp_ns)
    photo_pub = peer.publisher(CompressedImage, "operator/photo/compressed", QoSProfile(depth=1))
    peer.start()
    # operator: the operator id of the avatar the reconstruction node latched last (None before the first)
    g = dict(peer=peer, logs=logs, procs={}, starts={}, photo=photo_pub, NodeProcess=NodeProcess, operator=None)
    yield g
    peer.close()
    for name, p in g["procs"].items():
        rc = p.stop()
        log = p.log()
        assert rc in (0, -2, 130), f"{name} exited with {rc}:\n{log[-3000:]}"
        assert "Traceback" not in log and "render failed" not in log, f"{name}:\n{log[-3000:]}"


def _start(g, name, cmd=None):
    g["starts"][name] = g["starts"].get(name, 0) + 1
    label = name if g["starts"][name] == 1 else f"{name}_{g['starts'][name]}"
    g["procs"][name] = g["NodeProcess"](label, cmd or COMMANDS[name](), g["logs"])


def _kill(g, name, sig=signal.SIGKILL):
    rc = g["procs"].pop(name).stop(sig)
    assert rc == (-9 if sig == signal.SIGKILL else 0), f"{name} exited with {rc}"


def _ensure(g, *names) -> bool:
    """Start those of `names` that do not run (a test run alone, or after one that failed half-way); True if any."""
    missing = [name for name in names if name not in g["procs"]]
    for name in missing:
        _start(g, name)
    return bool(missing)


def _ensure_avatar(g) -> str:
    """The operator whose avatar is latched, after publishing the first photo if none was."""
    _ensure(g, "reconstruction_node")
    if g["operator"] is None:
        _publish_photo(g, "obama_official.jpg", "operator_a")
        _status_ok(g, "operator_a")
    return g["operator"]


def _ensure_driven(g) -> str:
    """Every node running and the render node driven by the tracker; returns the operator shown."""
    operator = _ensure_avatar(g)
    t = time.monotonic()
    if _ensure(g, *COMMANDS):
        _render_shows(g, operator, 90)
        _wait_driven(g, t)
    return operator


def _logs(g, tail=2500) -> str:
    return "\n".join(f"--- {k}\n{p.log()[-tail:]}" for k, p in g["procs"].items())


def _publish_photo(g, name, operator):
    import cv2
    from sensor_msgs.msg import CompressedImage
    from std_msgs.msg import Header

    data = cv2.imencode(".jpg", photo(name)[..., ::-1])[1].tobytes()
    assert g["peer"].wait(lambda: g["photo"].get_subscription_count() > 0, 60), _logs(g)
    msg = CompressedImage(header=Header(frame_id=operator), format="jpeg", data=data)
    g["photo"].publish(msg)
    return msg


def _status_ok(g, operator, timeout=120, republish=None):
    """Wait for the photo's status; with `republish`, publish it again every 3 s meanwhile (a photo sent
    while a restarted node is not matched yet is lost: the publisher still sees the killed one)."""
    from gaussian_head_ros.msg import AvatarStatus

    def find():
        return next((s for s in g["peer"].messages("status")
                     if s.operator_id == operator  # (a copy republished over a waiting one: SUPERSEDED)
                     and s.code not in (AvatarStatus.BUSY, AvatarStatus.SUPERSEDED)), None)
    action = (lambda: g["photo"].publish(republish)) if republish is not None else None
    assert g["peer"].wait(lambda: find() is not None, timeout, action=action, action_every=3.0), \
        f"no status for {operator}\n{_logs(g)}"
    assert find().code == AvatarStatus.OK, find().message
    g["operator"] = operator


def _render_shows(g, operator, timeout=60, node="render_node"):
    ok = g["peer"].wait(lambda: g["peer"].diag_value(node, "operator_id") == operator, timeout)
    assert ok, f"{node} shows {g['peer'].diag_value(node, 'operator_id')!r}, not {operator!r}\n{_logs(g)}"


def _driven_since(g, t) -> list:
    """Frames since t driven by the tracker (stamped with a camera frame's stamp)."""
    camera = set(g["peer"].messages("camera"))
    return [f for f in g["peer"].recent_frames(FRAMES, t) if f.stamp_ns in camera]


def _idle_since(g, t) -> list:
    """Frames since t drawn without control (stamped with the time they were drawn)."""
    camera = set(g["peer"].messages("camera"))
    return [f for f in g["peer"].recent_frames(FRAMES, t) if f.stamp_ns not in camera]


def _wait_driven(g, t, n=10, timeout=90):
    assert g["peer"].wait(lambda: len(_driven_since(g, t)) >= n, timeout), \
        f"no driven frames ({len(_driven_since(g, t))}), diag {g['peer'].diag('render_node')}\n{_logs(g)}"


def _wait_idle(g, t, n=10, timeout=30):
    peer = g["peer"]
    ok = peer.wait(lambda: len(_idle_since(g, t)) >= n and peer.diag_value("render_node", "state") == "idle animation",
                   timeout)
    assert ok, f"no idle animation: {peer.diag('render_node')}\n{_logs(g)}"


def _max_gap_s(g, t) -> float:
    arrivals = [f.arrived for f in g["peer"].recent_frames(FRAMES, t)]
    return float(np.max(np.diff(arrivals))) if len(arrivals) > 1 else float("inf")


# ---------------------------------------------------------------------------------------------------

def test_photo_before_the_render_node_exists(rclpy_context, graph):
    g = graph
    if "render_node" in g["procs"]:  # not the first test run
        _kill(g, "render_node")
        g["peer"].forget_diag("render_node")
    _ensure(g, "reconstruction_node")
    _publish_photo(g, "obama_official.jpg", "operator_a")
    _status_ok(g, "operator_a")
    t = time.monotonic()
    _ensure(g, *COMMANDS)
    _render_shows(g, "operator_a", 90)
    _wait_driven(g, t)


def test_two_photos_in_quick_succession_the_newest_wins(rclpy_context, graph):
    g = graph
    _ensure(g, "reconstruction_node", "render_node")
    _publish_photo(g, "trump_official.png", "operator_b")
    _publish_photo(g, "lp_d8_man_glasses.jpg", "operator_c")
    _status_ok(g, "operator_c")
    _render_shows(g, "operator_c", 90)
    g["peer"].wait(lambda: False, 1.5)  # nothing older comes after it
    assert g["peer"].diag_value("render_node", "operator_id") == "operator_c"
    assert latched_operator(rclpy_context, "late_joiner_c") == "operator_c"


def test_tracker_killed_and_restarted(graph):
    g = graph
    _ensure_driven(g)
    t = time.monotonic()
    _kill(g, "tracker_node")
    _wait_idle(g, t)  # the avatar keeps moving on its own
    t_restart = time.monotonic()
    _start(g, "tracker_node")
    _wait_driven(g, t_restart)  # controls resume
    assert _max_gap_s(g, t) < 2.0, "the face display stopped while the tracker was away"


def test_camera_stream_stops_and_restarts(graph):
    g, peer = graph, graph["peer"]
    _ensure_driven(g)
    t = time.monotonic()
    _kill(g, "video_source_node", signal.SIGINT)
    _wait_idle(g, t)
    assert peer.wait(lambda: "no camera frames" in (peer.diag("tracker_node") or (0, ""))[1], 30), \
        peer.diag("tracker_node")
    t_restart = time.monotonic()
    _start(g, "video_source_node")
    _wait_driven(g, t_restart)
    assert peer.wait(lambda: peer.diag_value("tracker_node", "calibrated") == "true"
                     and (peer.diag("tracker_node") or (0, ""))[1] == "tracking", 20), peer.diag("tracker_node")
    assert _max_gap_s(g, t) < 2.0, "the face display stopped while the camera was away"


def test_reconstruction_node_killed_and_restarted(rclpy_context, graph):
    g, peer = graph, graph["peer"]
    operator = _ensure_driven(g)
    t = time.monotonic()
    _kill(g, "reconstruction_node")
    peer.wait(lambda: False, 2.0)
    assert peer.diag_value("render_node", "operator_id") == operator  # the render node keeps its avatar
    assert len(_driven_since(g, t)) >= 5
    _start(g, "reconstruction_node")
    assert peer.wait(lambda: "reconstructor ready" in g["procs"]["reconstruction_node"].log(), 60), _logs(g)
    msg = _publish_photo(g, "astronaut_eileen_collins.png", "operator_d")
    _status_ok(g, "operator_d", republish=msg)
    _render_shows(g, "operator_d")
    assert _max_gap_s(g, t) < 2.0, "the face display stopped while the reconstruction node was away"


def test_render_node_killed_and_restarted(graph):
    g, peer = graph, graph["peer"]
    operator = _ensure_driven(g)
    _kill(g, "render_node")
    peer.forget_diag("render_node")
    t = time.monotonic()
    _start(g, "render_node")
    _render_shows(g, operator, 90)  # the latched avatar, back
    _wait_driven(g, t)  # and driven by the tracker again


def test_rasterizer_failing_at_run_time_falls_back_to_cpu(graph):
    """torch on device 'cuda:99' passes the parameter checks but fails at the first frame, on a CPU-only machine
    and on one with fewer than 100 GPUs alike (as when CUDA goes away; plain 'cuda' would draw on a CUDA machine):
    one warning, backend cpu, frames keep coming."""
    g, peer = graph, graph["peer"]
    operator = _ensure_avatar(g)
    name = "render_fallback"
    _start(g, name, _render_cmd(name, backend="torch", device="cuda:99"))
    _render_shows(g, operator, 90, node=name)
    assert peer.wait(lambda: "falling back to cpu" in g["procs"][name].log(), 60), _logs(g)
    t = time.monotonic()
    assert peer.wait(lambda: len(peer.recent_frames(FALLBACK_FRAMES, t)) >= 20, 30), _logs(g)
    peer.forget_diag(name)
    assert peer.wait(lambda: peer.diag(name) is not None, 30)
    values = peer.diag(name)[2]
    assert values["backend"] == "cpu" and values["fallbacks"] == "1", values
    log = g["procs"][name].log()
    assert log.count("falling back to cpu") == 1 and "WARN" in log.split("falling back to cpu")[0].splitlines()[-1]
    frame = peer.recent_frames(FALLBACK_FRAMES, t)[-1]
    assert frame.centre().mean() > 20, "the fallback frames are empty"
