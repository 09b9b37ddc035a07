"""video_source_node with a source it cannot open (a wrong path): it says so once as an error, keeps
publishing its state on /diagnostics (ERROR, the reason, the next attempt), retries quietly with a growing
pause, and stays up."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.ros


def test_a_wrong_path_is_said_once_then_retried_quietly(tmp_path, rclpy_context):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rosgraph import Proc, executable

    missing = tmp_path / "no_such_clip.mp4"
    proc = Proc(executable("video_source_node") + ["--ros-args", "-p", f"source:={missing}"],
                tmp_path / "video_source_node.log")
    node = rclpy_context.create_node("video_source_fault_test")
    states = []

    def on_diag(msg):
        for st in msg.status:
            if st.name.startswith("video_source_node"):
                states.append((st.level, st.message))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    try:
        # until the third attempt failed (its pause, 2 s doubled twice: 8 s), after 2 s + 4 s of retries; a fixed 7 s
        # after the third status (~10 s in all) covered the same attempts (s40)
        third = lambda: any("next attempt in 8 s" in message for _, message in states)  # noqa: E731
        deadline = time.monotonic() + 60
        while not third() and time.monotonic() < deadline:
            rclpy_context.spin_once(node, timeout_sec=0.1)
        assert third(), (states, proc.output())
        assert proc.alive(), proc.output()
        log = proc.output()
        errors = [ln for ln in log.splitlines() if "ERROR" in ln]
        assert len(errors) == 1 and str(missing) in errors[0], log
        assert states and all(level == DiagnosticStatus.ERROR for level, _ in states), states
        assert "cannot open" in states[-1][1] and "next attempt in" in states[-1][1], states[-1]
    finally:
        node.destroy_node()
        proc.stop()


def test_an_avatar_or_controls_file_given_as_the_camera_is_named(tmp_path, capsys):
    """`avatar.launch.py video:=me.ply` (the avatar where its photo:= goes), `gaussian-head eval --video me.ply`, or a
    controls file from `gaussian-head track`: refused as 'not a video format OpenCV's FFmpeg can play (unsupported
    format, or not a video)', which sends a user looking for a codec (user47, s47). Now each is named as what it is,
    with where it goes; by the real video_source_node process (its error line) and the CLI."""
    from rosgraph import Proc, executable, wait_until

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    ply, controls = tmp_path / "me.ply", tmp_path / "controls.jsonl"
    save_ply(synthetic_avatar(500, seed=2), ply)
    controls.write_text('{"stamp_ns": 0, "face_detected": true}\n')
    proc = Proc(executable("video_source_node") + ["--ros-args", "-p", f"source:={ply}"], tmp_path / "node.log")
    said = f"cannot open video {ply}: it is an avatar .ply, not a video: a robot shows an avatar file as its " \
           "reconstruction_node's photo_path (robot.launch.py photo:=me.ply)"
    try:
        assert wait_until(lambda: "ERROR" in proc.output(), 60), proc.output()
        assert said in proc.output(), proc.output()
    finally:
        proc.stop()
    for source, what in ((ply, said), (controls, "it is a controls file (FaceControl JSON lines")):
        capsys.readouterr()
        assert main(["eval", "--video", str(source)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and what in err, err


def test_no_source_says_how_to_give_one(tmp_path, rclpy_context):
    """Started without `source`, the node says how to give one: at start-up (-p source:=...), since the parameter is
    read-only. It said "set the 'source' parameter", and `ros2 param set /video_source_node source clip.mp4` then
    failed with "Trying to set a read-only parameter"."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rosgraph import Proc, executable

    proc = Proc(executable("video_source_node") + ["--ros-args", "-r", "__ns:=/no_source"],
                tmp_path / "video_source_node.log")
    node = rclpy_context.create_node("video_source_no_source_test")
    states = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: states.extend(
        (s.level, s.message) for s in m.status if s.name.startswith("no_source/video_source_node")), 10)
    try:
        deadline = time.monotonic() + 60
        while not states and time.monotonic() < deadline:
            rclpy_context.spin_once(node, timeout_sec=0.1)
        assert states, proc.output()
        level, message = states[-1]
        assert level == DiagnosticStatus.ERROR and "-p source:=" in message, states[-1]
        errors = [ln for ln in proc.output().splitlines() if "ERROR" in ln]
        assert len(errors) == 1 and "-p source:=" in errors[0] and "read-only" in errors[0], proc.output()
        assert proc.alive(), proc.output()
    finally:
        node.destroy_node()
        proc.stop()


def _parameter_warnings(tmp_path, params_text: str, ns: str, *args: str) -> tuple[list[str], str, bool]:
    """(the "no such parameter" warnings, the log, alive) of a video_source_node (the quickest node to start; every
    node declares its parameters through common.declare_settings) started under `ns` with a parameters file holding
    `params_text` and the further --ros-args `args`, once its parameters are declared."""
    from rosgraph import Proc, executable

    params = tmp_path / "params.yaml"
    params.write_text(params_text)
    proc = Proc(executable("video_source_node") + ["--ros-args", "-r", f"__ns:={ns}", "--params-file", str(params),
                                                   *args], tmp_path / "video_source_node.log")
    try:
        deadline = time.monotonic() + 60
        while "no video source given" not in proc.output() and time.monotonic() < deadline:  # declared by then
            time.sleep(0.1)
        log = proc.output()
        return [ln for ln in log.splitlines() if "WARN" in ln and "no such parameter" in ln], log, proc.alive()
    finally:
        proc.stop()


def test_a_misspelt_parameter_is_said(tmp_path):
    """A value for a parameter the node does not have (a typo in a params file or a -p) is said as a warning naming
    the closest parameter; rclpy dropped it without a word and the node ran on its default. (common.declare_settings,
    used by every node; video_source_node is the quickest to start.)"""
    warnings, log, alive = _parameter_warnings(
        tmp_path, "/**/video_source_node:\n  ros__parameters:\n    rat: 15.0\n    loop: false\n", "/typo",
        "-p", "sourse:=clip.mp4")
    assert len(warnings) == 2, log
    assert "'rat'" in warnings[0] and "did you mean 'rate'?" in warnings[0], warnings
    assert "'sourse'" in warnings[1] and "did you mean 'source'?" in warnings[1], warnings
    assert not any("'loop'" in w for w in warnings)
    assert alive, log


def test_another_nodes_parameter_from_a_wildcard_section_is_said_as_that_nodes(tmp_path):
    """A parameters file's `/**:` section gives its values to every node (the common ROS 2 idiom): `fps: 20.0` there
    made every node but render_node warn "parameter 'fps' given, but reconstruction_node has no such parameter:
    ignored; its parameters: ..." as if the value were lost (user24, s24, `robot.launch.py params_file:=`). Now the
    warning names the node whose parameter it is and how to give it to that node only; a misspelt name is still said
    with the closest parameter."""
    warnings, log, _ = _parameter_warnings(tmp_path, "/**:\n  ros__parameters:\n    fps: 20.0\n    lopo: false\n",
                                           "/wild")
    assert len(warnings) == 2, log
    fps = next(w for w in warnings if "'fps'" in w)
    assert "ignored here; it is render_node's" in fps and "under `render_node:`" in fps, fps
    assert "its parameters:" not in fps, fps
    lopo = next(w for w in warnings if "'lopo'" in w)
    assert "did you mean 'loop'?" in lopo, lopo


def test_diagnostics_name_the_namespace(tmp_path, rclpy_context):
    """Every node publishes on the absolute /diagnostics: under a namespace (`namespace:=robot1`, two robots
    on one network) its status is named 'robot1/<node>: <task>'; it was '<node>: <task>' whatever the
    namespace, so two robots' nodes could not be told apart. (common.diagnostics, used by every node.)"""
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph import Proc, executable

    proc = Proc(executable("video_source_node") + ["--ros-args", "-r", "__ns:=/robot7"],
                tmp_path / "video_source_node.log")
    node = rclpy_context.create_node("video_source_ns_test")
    names = set()
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: names.update(s.name for s in m.status), 10)
    try:
        deadline = time.monotonic() + 60
        while not any("video_source_node" in n for n in names) and time.monotonic() < deadline:
            rclpy_context.spin_once(node, timeout_sec=0.1)
        mine = [n for n in names if "video_source_node" in n]
        assert mine == ["robot7/video_source_node: video source"], (names, proc.output())
    finally:
        node.destroy_node()
        proc.stop()


def test_integer_rate_and_bad_max_side_do_not_stop_the_camera(tmp_path, rclpy_context):
    """`-p rate:=15` (an integer for the float rate, as a YAML `rate: 15` is) killed the node at start-up
    (rclpy's type check while declaring), and `-p max_side:=-3` killed its video thread (cv2.resize) while
    the node stayed up publishing nothing. Now the rate is taken as 15.0 and max_side goes back to 0 (off)
    with an error log line; the frames flow."""
    from conftest import shared
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph import Proc, executable, spin_until
    from sensor_msgs.msg import Image

    clip = shared("driving", "lp_d0.mp4")
    proc = Proc(executable("video_source_node") + ["--ros-args", "-r", "__ns:=/vs_params", "-p", f"source:={clip}",
                                                   "-p", "rate:=15", "-p", "max_side:=-3"],
                tmp_path / "video_source_node.log")
    node = rclpy_context.create_node("video_source_params_test")
    frames = []
    node.create_subscription(Image, "/vs_params/camera/image_raw", frames.append, qos_profile_sensor_data)
    try:
        assert spin_until(node, lambda: len(frames) >= 5 or proc.p.poll() is not None, 60), proc.output()
        assert proc.alive() and len(frames) >= 5, proc.output()
        assert (frames[-1].width, frames[-1].height) == (512, 512)  # the clip's size: max_side off
        log = proc.output()
        assert "parameter max_side" in log and "Traceback" not in log, log
    finally:
        node.destroy_node()
        proc.stop()


def _playing_source(tmp_path, rclpy_context, ns: str, *params: str):
    """A video_source_node under /`ns` playing lp_d0.mp4 (512 x 512) with the extra `-p` params (e.g. 'rate:=60.0')
    -> (its Proc, a test node, the list its camera frames are appended to). The caller stops both."""
    from conftest import shared
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph import Proc, executable
    from sensor_msgs.msg import Image

    args = ["--ros-args", "-r", f"__ns:=/{ns}", "-p", f"source:={shared('driving', 'lp_d0.mp4')}"]
    for p in params:
        args += ["-p", p]
    proc = Proc(executable("video_source_node") + args, tmp_path / "video_source_node.log")
    node = rclpy_context.create_node(f"{ns}_test")
    frames = []
    node.create_subscription(Image, f"/{ns}/camera/image_raw", frames.append, qos_profile_sensor_data)
    return proc, node, frames


def test_max_side_and_loop_set_while_playing_take_effect(tmp_path, rclpy_context):
    """`ros2 param set /video_source_node max_side 200` (and `loop false`) answered 'Set parameter successful' and
    changed nothing: both were read only when the source opened, which a looping file never does again (try8).
    Now the frames shrink at once, and a file no longer looping ends. Setting `loop` true again after the end was
    accepted and changed nothing either (user19, s19: the camera stayed dark until the node was restarted, `source`
    being read-only): now the file plays again from its start."""
    from rosgraph import set_parameter, spin_until

    proc, node, frames = _playing_source(tmp_path, rclpy_context, "vs_live", "rate:=60.0")  # 78 frames at 25 fps

    def set_params(**values):
        for k, v in values.items():
            r = set_parameter(node, "/vs_live/video_source_node", k, v)
            assert r.successful, r.reason

    try:
        assert spin_until(node, lambda: len(frames) >= 3, 60), proc.output()
        assert (frames[-1].width, frames[-1].height) == (512, 512)
        set_params(max_side=200)
        assert spin_until(node, lambda: frames[-1].width == 200, 60), (frames[-1].width, proc.output())
        assert frames[-1].height == 200
        assert "max_side 200: frames sent as 200x200 from now on (the source's are 512x512)" in proc.output()
        # looped at least once before `loop` is set false: the end names the file's frames, then the plays (user25,
        # s25: 'end of video after 6192 frames' for a 516-frame file looped 12 times)
        assert spin_until(node, lambda: len(frames) >= 90, 60), (len(frames), proc.output())
        set_params(loop=False)
        assert spin_until(node, lambda: "end of video" in proc.output(), 60), proc.output()  # 78 frames at most
        line = next(ln for ln in proc.output().splitlines() if "end of video" in ln)
        assert "end of video after 78 frames (played " in line and " times, " in line, line
        assert proc.alive(), proc.output()
        spin_until(node, lambda: False, 1.0)  # frames on their way before the end
        ended = len(frames)
        set_params(loop=True)
        assert spin_until(node, lambda: len(frames) >= ended + 5, 60), (len(frames), ended, proc.output())
        assert "loop set: playing the file again from its start" in proc.output(), proc.output()
    finally:
        node.destroy_node()
        proc.stop()


def test_the_playing_line_gives_the_size_sent_under_max_side(tmp_path, rclpy_context):
    """'playing lp_d18.mp4 (480x480 at 30 fps, looping)' while max_side 240 published 240x240 frames (user25, s25)."""
    from rosgraph import spin_until

    proc, node, frames = _playing_source(tmp_path, rclpy_context, "vs_sent", "max_side:=256")
    try:
        assert spin_until(node, lambda: "playing" in proc.output() and frames, 60), proc.output()
        assert "(512x512 at 25 fps, sent as 256x256 (max_side 256), looping)" in proc.output(), proc.output()
        assert (frames[-1].width, frames[-1].height) == (256, 256)
    finally:
        node.destroy_node()
        proc.stop()


def test_a_variable_frame_rate_video_is_published_at_its_own_pace(tmp_path, rclpy_context):
    """A phone video's frames are not evenly spaced; the node published them all 1/fps apart (OpenCV's average rate):
    here 40 frames, 20 of them 1/60 s apart then 20 at 1/20 s, went out at 1/30 s each, the fast stretch in slow
    motion and the slow one too fast. Now the header stamps (the wall clock at publishing) follow the file's
    presentation times: the slow half's frames are three times as far apart as the fast half's."""
    import numpy as np
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph import Proc, executable, spin_until
    from sensor_msgs.msg import Image
    from test_tracking import vfr_clip

    clip = tmp_path / "vfr.mp4"
    vfr_clip(clip)
    proc = Proc(executable("video_source_node") + ["--ros-args", "-r", "__ns:=/vs_vfr", "-p", f"source:={clip}"],
                tmp_path / "video_source_node.log")
    node = rclpy_context.create_node("video_source_vfr_test")
    got = []  # (frame index: its grey level / 6, header stamp [s]) in arrival order; the file loops

    def on_image(msg):
        got.append((int(round(np.frombuffer(msg.data, np.uint8)[:300].mean() / 6)),
                    msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def gaps(first, last):  # between frames k and k + 1 received one after the other, first <= k < last
        return [t1 - t0 for (k0, t0), (k1, t1) in zip(got, got[1:]) if k1 == k0 + 1 and first <= k0 < last]
    node.create_subscription(Image, "/vs_vfr/camera/image_raw", on_image, qos_profile_sensor_data)
    try:
        assert spin_until(node, lambda: len(gaps(1, 19)) >= 15 and len(gaps(21, 39)) >= 15, 60), (got, proc.output())
        fast, slow = np.median(gaps(1, 19)), np.median(gaps(21, 39))
        assert slow > 2.0 * fast and abs(slow - 0.05) < 0.015, (fast, slow)
    finally:
        node.destroy_node()
        proc.stop()


def test_a_max_side_below_the_trackers_smallest_frame_is_refused(tmp_path, rclpy_context):
    """`ros2 param set /r20a/video_source_node max_side 1` (user20, s20) answered 'Set parameter successful': the node
    published 1x1 frames (8x8 with 8), said nothing, its /diagnostics stayed 'playing' at level OK, and the tracker
    skipped every frame ('need an RGB uint8 image of at least 16x16'), the face display falling into its idle
    animation. Now 1..15 is refused when set, naming the smallest (facemesh.MIN_IMAGE_SIDE), and a start-up
    `-p max_side:=4` goes back to 0 (off) with an error line; the frames keep their size."""
    from rosgraph import set_parameter, spin_until

    proc, node, frames = _playing_source(tmp_path, rclpy_context, "vs_small", "max_side:=4")

    def set_max_side(v):
        return set_parameter(node, "/vs_small/video_source_node", "max_side", v)

    try:
        assert spin_until(node, lambda: len(frames) >= 3, 60), proc.output()
        assert (frames[-1].width, frames[-1].height) == (512, 512), proc.output()  # the start-up 4: back to 0
        assert "parameter max_side must be 0 (off) or at least 16, got 4" in proc.output(), proc.output()
        r = set_max_side(8)
        assert not r.successful and "max_side must be 0 (off) or at least 16, got 8" in r.reason, r.reason
        assert set_max_side(16).successful and set_max_side(0).successful
        frames.clear()
        assert spin_until(node, lambda: len(frames) >= 3, 60) and frames[-1].width == 512, proc.output()
    finally:
        node.destroy_node()
        proc.stop()



def test_a_node_destroyed_while_playing_says_no_end_of_the_video(rclpy_context, capfd):
    """A video_source_node destroyed while its file plays in a loop (a process that goes on: a container, a test;
    or a Ctrl-C whose stop reached the playing thread between two frames, seen once under `ros2 launch`): the playing
    thread, let out of its loop by the stop, went on as if the file had ended: 'end of video after 1 frame (played
    1009 times, 1009 frames in all) (`ros2 param set /u46/video_source_node loop true` plays it again)', and after a
    Ctrl-C rcl added 'Failed to publish log message to rosout: publisher's context is invalid' (user46, s46). Now a
    stop ends the thread without a word and the state stays 'playing' (no 'finished' on /diagnostics)."""
    from conftest import shared
    from rclpy.parameter import Parameter
    from rosgraph import spin_until

    from gaussian_head_ros.nodes.video_source_node import VideoSourceNode

    node = VideoSourceNode(parameter_overrides=[Parameter("source", value=str(shared("driving", "lp_d0.mp4")))],
                           cli_args=["--ros-args", "-r", "__ns:=/vs_destroyed"])
    try:
        assert spin_until(node, lambda: node.published >= 3, 60), node.state
    finally:
        node.destroy_node()
    assert not node._thread.is_alive() and node.state == "playing", node.state
    assert "end of video" not in capfd.readouterr().err



def _ended_source(tmp_path, rclpy_context, ns: str):
    """A video_source_node under /`ns` playing lp_d0.mp4 looped (the default) at 60 Hz, then `loop` set false, as
    `ros2 param set` does: -> (its Proc, a test node, its full name, its first /diagnostics status saying the video
    ended) once it said so. The caller stops both."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph import set_parameter, spin_until

    proc, node, frames = _playing_source(tmp_path, rclpy_context, ns, "rate:=60.0")  # 78 frames, 1.3 s a play
    ended = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: ended.extend(
        s for s in m.status if s.name.startswith(f"{ns}/") and any(v.value == "true" for v in s.values)), 10)
    fqn = f"/{ns}/video_source_node"
    assert spin_until(node, lambda: len(frames) >= 3, 60), proc.output()
    assert set_parameter(node, fqn, "loop", False).successful
    assert spin_until(node, lambda: ended, 60), proc.output()
    return proc, node, fqn, ended[0]


def test_the_trackers_end_line_after_loop_set_false_at_run_time_advises_what_fits(tmp_path, rclpy_context):
    """user52: `operator.launch.py video:=...` (loop true), then `ros2 param set /video_source_node loop false`: at the
    file's end the tracker said '(played without loop: loop:=true plays it in a loop)', advising the launch argument
    already given. Now the source says how it plays again in words that fit (`loop` set false while it played: the
    `ros2 param set` line), on /diagnostics, and the tracker's line quotes it. The real node's /diagnostics, read over
    DDS, given to the tracker's own _on_diagnostics and _say_if_no_frames on a stand-in."""
    from types import SimpleNamespace

    from diagnostic_msgs.msg import DiagnosticArray

    from gaussian_head_ros.nodes.tracker_node import PARAMS, TrackerNode

    proc, node, fqn, status = _ended_source(tmp_path, rclpy_context, "vs_end53")
    try:
        said = []
        tracker = SimpleNamespace(_videos_ended={}, _ready_at=0.0, _last_frame_time=100.0, _no_frames_said=0.0,
                                  _end_said=False, image_topic="/vs_end53/camera/image_raw",
                                  get_logger=lambda: SimpleNamespace(info=said.append, warning=said.append),
                                  _param=lambda name: PARAMS[name].default)
        TrackerNode._on_diagnostics(tracker, DiagnosticArray(status=[status]))
        TrackerNode._say_if_no_frames(tracker, 103.0, next(iter(tracker._videos_ended.values()), ""))
        again = f"`ros2 param set {fqn} loop true` plays it again"
        assert len(said) == 1 and f"ended after 78 frames (loop set false while it played: {again})" in said[0], said
        assert "loop:=true" not in said[0], said[0]
        assert "end of video after 78 frames" in proc.output() and \
            f"(loop set false while it played: {again})" in proc.output(), proc.output()
    finally:
        node.destroy_node()
        proc.stop()


def test_max_side_and_rate_set_after_the_end_are_said_as_applying_when_it_plays_again(tmp_path, rclpy_context):
    """user52: a max_side or rate set (`ros2 param set`) after the video's end was accepted without a word, though it
    applies only when the file plays again (a rate set while playing was not said either). Now each is said, with
    when it applies and how the file plays again; the 'playing' line of that play shows both."""
    from rosgraph import set_parameter, spin_until

    proc, node, fqn, _ = _ended_source(tmp_path, rclpy_context, "vs_set53")
    try:
        for name, value in (("max_side", 256), ("rate", 10.0)):
            assert set_parameter(node, fqn, name, value).successful
        applies = lambda: "rate 10: frames sent at 10 Hz when the file plays again" in proc.output()  # noqa: E731
        assert spin_until(node, applies, 10), proc.output()
        assert "max_side 256: frames sent as 256x256 when the file plays again (the source's are 512x512)" in \
            proc.output(), proc.output()
        assert set_parameter(node, fqn, "loop", True).successful
        assert spin_until(node, lambda: "sent as 256x256 (max_side 256), sent at 10 Hz (rate), looping)" in
                          proc.output(), 30), proc.output()
    finally:
        node.destroy_node()
        proc.stop()


def test_a_looping_video_says_no_play_again_advice_on_diagnostics_while_it_plays(tmp_path, rclpy_context):
    """`operator.launch.py video:=lp_d18.mp4` (loop true, never set false): its /diagnostics said, while it played,
    play_again 'loop set false while it played: `ros2 param set /video_source_node loop true` plays it again' (user55,
    read with `ros2 topic echo /diagnostics`): advice for an end that had not come, on a loop never set false. The
    key is how an ended video plays again (the tracker reads it only then): empty while the file plays."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph import spin_until

    proc, node, frames = _playing_source(tmp_path, rclpy_context, "vs_loop55")
    statuses = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(
        s for s in m.status if s.name.startswith("vs_loop55/")), 10)
    try:
        assert spin_until(node, lambda: len(frames) >= 3 and len(statuses) >= 2, 60), proc.output()
        values = {v.key: v.value for v in statuses[-1].values}
        assert statuses[-1].message == "playing" and values["video_ended"] == "false", (statuses[-1], values)
        assert values["play_again"] == "", values
    finally:
        node.destroy_node()
        proc.stop()
