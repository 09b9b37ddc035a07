"""The real `ros2 launch gaussian_head_ros avatar.launch.py`, started by launch_pytest as a user would.

Three launches run side by side on this test's private graph (their startups overlap, which keeps the
module quick on two cores), each a `ros2 launch` process in its own session so that a Ctrl-C reaches it
and its nodes together, as from a terminal:
  default   the README's plain command: three nodes, the placeholder face, the shipped parameters;
            the README's photo-swap snippet, started before the nodes exist; then Ctrl-C
  video     namespace:=robot1 photo:=<portrait> video:=<clip>: face_control and the face display flow
            under /robot1, every face display stamp traced to a face_control and a camera frame stamp
  composed  namespace:=robot2 composed:=true params_file:=<custom> photo:=<missing file>: three distinct
            node names in one process, the custom file's values in effect, a clear status for the missing
            photo and the file's settings kept; then Ctrl-C
and the README's `ros2 run` line (a render node under /robot3). Every `ros2 launch`/`ros2 run` line of the
README's "Using it with ROS 2" is one of these.
Ctrl-C: every node process is gone within 5 s, `ros2 launch` exits 0, no traceback in its output.

Needs the ros2 CLI and launch_pytest (../shared/tools/ros2cli, installed by scripts/test.sh).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import ROOT, shared
from rosgraph import Graph, wait_until

launch_pytest = pytest.importorskip(
    "launch_pytest", reason="launch_pytest is not installed: run scripts/test.sh (it installs the ros2 CLI "
                            "from ../shared/tools/ros2cli) or source its prefix's setup.bash")
if shutil.which("ros2") is None:
    pytest.skip("the ros2 CLI is not on PATH (../shared/tools/ros2cli, installed by scripts/test.sh)",
                allow_module_level=True)
psutil = pytest.importorskip("psutil")

from launch import LaunchDescription  # noqa: E402
from launch.actions import ExecuteProcess  # noqa: E402

pytestmark = [pytest.mark.ros]

PORTRAIT = "astronaut_eileen_collins.png"
CLIP = "lp_d0.mp4"
MISSING_PHOTO = "/nonexistent/operator.jpg"
STARTUP_S = 150.0  # three launches starting together on two busy cores
CTRL_C_S = 5.0

# The custom parameters file of the composed launch: values unlike the shipped ones.
CUSTOM_PARAMS = """\
reconstruction_node:
  ros__parameters:
    preset: "fast"
render_node:
  ros__parameters:
    width: 256
    height: 192
    fps: 10.0
tracker_node:
  ros__parameters:
    max_faces: 1
"""


def launch_commands(custom_params: Path) -> dict[str, list[str]]:
    """Scenario -> the command line (the README's commands, with real files)."""
    base = ["ros2", "launch", "gaussian_head_ros", "avatar.launch.py"]
    return {
        "default": base,
        "video": base + ["namespace:=robot1", f"photo:={shared('portraits', PORTRAIT)}",
                         f"video:={shared('driving', CLIP)}"],
        "composed": base + ["namespace:=robot2", "composed:=true", f"params_file:={custom_params}",
                            f"photo:={MISSING_PHOTO}"],
        "run": ["ros2", "run", "gaussian_head_ros", "render_node", "--ros-args", "-r", "__ns:=/robot3",
                "-p", "width:=384", "-p", "height:=384"],
    }


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Using it with ROS 2")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def readme_commands() -> list[list[str]]:
    """The `ros2 launch` / `ros2 run` command lines of the README's "Using it with ROS 2" (comments cut)."""
    return [shlex.split(line.split("#")[0]) for line in readme_section().splitlines()
            if line.startswith(("ros2 launch ", "ros2 run "))]


def readme_photo_snippet(photo: Path) -> str:
    """The README's photo-swap shell snippet, sending `photo` as me.jpg."""
    block = re.search(r"```bash\n(python - <<'EOF'\n.*?\nEOF\n)```", readme_section(), re.S)
    assert block, "README: the photo-swap snippet (python - <<'EOF' ... EOF) is missing"
    return block.group(1).replace('"me.jpg"', f'"{photo}"')


@pytest.fixture(scope="module")
def custom_params(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("launch") / "custom.yaml"
    p.write_text(CUSTOM_PARAMS)
    return p


TMPDIRS: dict[ExecuteProcess, Path] = {}  # each scenario's process -> its TMPDIR


@pytest.fixture(scope="module")
def procs(custom_params) -> dict[str, ExecuteProcess]:
    # `setsid`: its own session and process group, so a Ctrl-C (SIGINT to the group) reaches the launch
    # and its nodes and nothing else. A process started in the background of a non-interactive shell
    # ignores SIGINT and passes that on: restore the default for the children.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    logs = custom_params.parent
    for name in launch_commands(custom_params):  # each launch's own temporary directory (left_in_tmp)
        (logs / name / "tmp").mkdir(parents=True)
    procs = {name: ExecuteProcess(cmd=["setsid"] + cmd, name=name, cached_output=True, output="log",
                                  sigterm_timeout="10", additional_env={"ROS_LOG_DIR": str(logs / name),
                                                                        "TMPDIR": str(logs / name / "tmp")})
             for name, cmd in launch_commands(custom_params).items()}
    TMPDIRS.update({proc: logs / name / "tmp" for name, proc in procs.items()})
    # The README's photo swap, started with the launches: before reconstruction_node exists.
    procs["photo_swap"] = ExecuteProcess(cmd=["bash", "-c", readme_photo_snippet(shared("portraits", PORTRAIT))],
                                         name="photo_swap", cached_output=True, output="log")
    return procs


@launch_pytest.fixture(scope="module")
def launches(procs):
    return LaunchDescription([*procs.values(), launch_pytest.actions.ReadyToTest()])


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(procs):
    """After the module, nothing of ours runs on: the launch service signals only each `ros2` process
    (a child of `ros2 run` outlives it), so a test that failed before its Ctrl-C leaves a group behind."""
    yield
    for proc in procs.values():
        pid = (proc.process_details or {}).get("pid")
        if pid is None:
            continue
        for sig in (signal.SIGINT, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(3.0 if sig == signal.SIGINT else 0)


def _pytest_84_compat(fixture) -> None:
    """launch_pytest 3.7.1 reads attributes that pytest 8.4 no longer puts on a fixture (its fixture is
    now a FixtureFunctionDefinition wrapping the function): give them back."""
    if not hasattr(fixture, "_pytestfixturefunction") and hasattr(fixture, "_fixture_function_marker"):
        fixture._pytestfixturefunction = fixture._fixture_function_marker
        fixture._launch_pytest_fixture_options = fixture._get_wrapped_function()._launch_pytest_fixture_options


_pytest_84_compat(launches)


def output(proc: ExecuteProcess) -> str:
    return proc.get_stdout() + proc.get_stderr()


def tail(proc: ExecuteProcess, n: int = 4000) -> str:
    return f"--- {proc.name} output ---\n" + output(proc)[-n:]


@pytest.fixture(scope="module")
def graph(rclpy_context):
    g = Graph()
    yield g
    g.close()


def _qos():
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    return latched, QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE), qos_profile_sensor_data


@pytest.fixture(scope="module")
def topics(graph):
    """Recorders on every scenario's topics, made before the launches' nodes appear."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from gaussian_head_ros.msg import AvatarStatus, FaceControl

    latched, reliable, sensor = _qos()
    rec = {}
    for ns in ("", "/robot1", "/robot2", "/robot3"):
        rec[ns + "/avatar/status"] = graph.record(AvatarStatus, ns + "/avatar/status", latched)
        rec[ns + "/face_display/image_raw"] = graph.record(Image, ns + "/face_display/image_raw", sensor, ImageInfo.of)
    rec["/robot1/face_control"] = graph.record(FaceControl, "/robot1/face_control", reliable, ControlInfo.of)
    rec["/diagnostics"] = graph.record(DiagnosticArray, "/diagnostics", reliable, _node_states)
    rec["/robot1/camera/image_raw"] = graph.record(Image, "/robot1/camera/image_raw", sensor, ImageInfo.of)
    return rec


def _node_states(msg) -> tuple:
    """A /diagnostics array -> ((node, its 'state' value), ...): node as '<namespace>/<name>' (nodes.common.diagnostics)."""
    return tuple((s.name.split(": ")[0], next((kv.value for kv in s.values if kv.key == "state"), "")) for s in msg.status)


class ImageInfo(NamedTuple):
    stamp_ns: int
    width: int
    height: int
    encoding: str

    @classmethod
    def of(cls, m):
        return cls(_stamp_ns(m), m.width, m.height, m.encoding)


class ControlInfo(NamedTuple):
    stamp_ns: int
    face_detected: bool

    @classmethod
    def of(cls, m):
        return cls(_stamp_ns(m), bool(m.face_detected))


NODES = ("reconstruction_node", "tracker_node", "render_node")
SCENARIO_NODES = {"video": ["/robot1/" + n for n in NODES + ("video_source_node",)], "default": ["/" + n for n in NODES],
                  "composed": ["/robot2/" + n for n in NODES], "run": ["/robot3/render_node"]}  # what each one starts


def _wait_nodes(graph, procs, scenario, expected=None):
    """Until the scenario's nodes (`expected`, else all it starts) are on the graph; fails if its process ended
    or a node died, or after STARTUP_S."""
    proc = procs[scenario]
    expected = SCENARIO_NODES[scenario] if expected is None else expected
    failed = lambda: proc.return_code is not None or "process has died" in output(proc)  # noqa: E731
    ok = wait_until(lambda: set(expected) <= graph.nodes() or failed(), STARTUP_S, 0.5)
    assert ok and not failed(), f"nodes {graph.nodes()}\n{tail(proc)}"


STARTING = ("starting", "loading")  # diagnostics states of a node still in its start-up


def _running(procs, graph, topics, scenario) -> None:
    """The scenario as the tests before its Ctrl-C or SIGTERM test leave it when the module runs in order: its nodes on
    the graph, each past its start-up (its diagnostics state neither 'starting' nor 'loading ...', and the render
    node has said 'renderer ready'). Each stop test waits here itself, so that it can run alone (`-k`): run alone,
    one found its launch not started yet (KeyError 'pid'), and a Ctrl-C in the nodes' start-up is another case
    (the tracker's and the renderer's loading: test_render_node covers the render node's)."""
    _wait_nodes(graph, procs, scenario)
    proc, names = procs[scenario], [n.lstrip("/") for n in SCENARIO_NODES[scenario]]

    def states() -> dict:
        return {node: state for _, array in list(topics["/diagnostics"]) for node, state in array}

    def ready() -> bool:
        now = states()
        return all(n in now and not now[n].startswith(STARTING) for n in names) and "renderer ready" in output(proc)

    assert wait_until(ready, STARTUP_S, 0.5), f"{ {n: states().get(n) for n in names} }\n{tail(proc)}"


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


# ------------------------------------------------------------------------------------------------------
# Ctrl-C


def left_in_tmp(proc: ExecuteProcess) -> list[str]:
    """The files the ended launch `proc` left in its TMPDIR other than its nodes' parameters file named by its content
    (launcher.node_params_file): each `ros2 launch` left a new temporary parameters file in /tmp, 3864 of them after
    a day of tests (s52)."""
    return sorted(str(p.relative_to(TMPDIRS[proc])) for p in TMPDIRS[proc].rglob("*")
                  if not (p.is_dir() or re.fullmatch(r"gaussian_head_ros-\d+/params-[0-9a-f]{16}\.yaml",
                                                      str(p.relative_to(TMPDIRS[proc])))))


def _ctrl_c(proc: ExecuteProcess) -> None:
    pid = proc.process_details["pid"]
    nodes = psutil.Process(pid).children(recursive=True)
    assert nodes, f"{proc.name}: no node processes under ros2 launch"
    t0 = time.monotonic()
    os.killpg(pid, signal.SIGINT)  # what a terminal's Ctrl-C does: SIGINT to the foreground process group
    gone, alive = psutil.wait_procs(nodes, timeout=CTRL_C_S)
    took = time.monotonic() - t0
    assert not alive, f"still running {CTRL_C_S} s after Ctrl-C: {[p.cmdline()[:2] for p in alive]}\n{tail(proc)}"
    assert wait_until(lambda: proc.return_code is not None, 10), f"ros2 launch still running\n{tail(proc)}"
    assert proc.return_code == 0, tail(proc)
    assert "Traceback" not in output(proc), tail(proc, 8000)
    assert not left_in_tmp(proc), left_in_tmp(proc)
    print(f"{proc.name}: {len(nodes)} node processes gone {took:.1f} s after Ctrl-C")


# ------------------------------------------------------------------------------------------------------
# video: namespace:=robot1 photo:=... video:=...  (first, and stopped first: it keeps both cores busy)


@pytest.mark.launch(fixture=launches)
def test_video_launch_drives_the_face_and_traces_stamps(procs, graph, topics):
    _wait_nodes(graph, procs, "video")
    statuses = topics["/robot1/avatar/status"]
    assert wait_until(lambda: any(s.ok for _, s in statuses), STARTUP_S), \
        f"{[s.message for _, s in statuses]}\n{tail(procs['video'])}"
    camera, controls, display = (topics["/robot1/" + t] for t in ("camera/image_raw", "face_control",
                                                                   "face_display/image_raw"))

    def traced():
        cam = {m.stamp_ns for _, m in list(camera)}
        ctl = {m.stamp_ns for _, m in list(controls) if m.face_detected}
        return [m.stamp_ns for _, m in list(display) if m.stamp_ns in ctl and m.stamp_ns in cam]

    assert wait_until(lambda: len(traced()) >= 10, 90), \
        f"camera {len(camera)}, face_control {len(controls)}, display {len(display)}\n{tail(procs['video'])}"
    assert {(m.width, m.height, m.encoding) for _, m in display} == {(512, 512, "rgb8")}
    robot1 = set(traced())
    assert not any(m.stamp_ns in robot1 for _, m in topics["/face_display/image_raw"]), \
        "the display outside the namespace carries robot1's stamps"


@pytest.mark.launch(fixture=launches)
def test_ctrl_c_stops_the_video_launch_cleanly(procs, graph, topics):
    _running(procs, graph, topics, "video")
    _ctrl_c(procs["video"])


# ------------------------------------------------------------------------------------------------------
# default: ros2 launch gaussian_head_ros avatar.launch.py


@pytest.mark.launch(fixture=launches)
def test_default_launch_starts_three_nodes_with_the_shipped_parameters(procs, graph, topics):
    _wait_nodes(graph, procs, "default")
    got = graph.parameters("/render_node", ["width", "height", "fps", "backend"])
    assert got == {"width": 512, "height": 512, "fps": 30.0, "backend": "auto"}, got
    assert graph.parameters("/reconstruction_node", ["preset"]) == {"preset": "default"}
    frames = topics["/face_display/image_raw"]
    assert wait_until(lambda: len(frames) >= 5, STARTUP_S), tail(procs["default"])
    assert frames[-1][1][1:] == (512, 512, "rgb8")


@pytest.mark.launch(fixture=launches)
def test_readme_photo_swap_reaches_a_node_that_starts_after_it(procs, graph, topics):
    from gaussian_head_ros.msg import AvatarStatus

    statuses = topics["/avatar/status"]
    alice = lambda: [s for _, s in list(statuses) if s.operator_id == "alice"]  # noqa: E731
    assert wait_until(lambda: any(s.ok for s in alice()), STARTUP_S), \
        f"{[s.message for s in alice()]}\n{tail(procs['photo_swap'])}\n{tail(procs['default'])}"
    assert wait_until(lambda: procs["photo_swap"].return_code is not None, 30), tail(procs["photo_swap"])
    assert procs["photo_swap"].return_code == 0, tail(procs["photo_swap"])
    # one photo, taken once (it reaches both the transient-local and the volatile subscription)
    assert [s.code for s in alice()].count(AvatarStatus.BUSY) == 0 and sum(s.ok for s in alice()) == 1, \
        [s.message for s in alice()]


@pytest.mark.launch(fixture=launches)
def test_ros2_run_starts_one_node_with_its_arguments(procs, graph, topics):
    _wait_nodes(graph, procs, "run")
    frames = topics["/robot3/face_display/image_raw"]
    assert wait_until(lambda: len(frames) >= 5, 60), tail(procs["run"])
    assert frames[-1][1][1:] == (384, 384, "rgb8")


def test_readme_commands_are_the_tested_ones(tmp_path):
    """Every `ros2 launch` / `ros2 run` line of the README's ROS 2 section is run here: its arguments, with
    its placeholder files made real, are all in one of the tested command lines."""
    custom = tmp_path / "custom.yaml"
    files = {"me.jpg": str(shared("portraits", PORTRAIT)), "/path/to/me.jpg": str(shared("portraits", PORTRAIT)),
             "clip.mp4": str(shared("driving", CLIP)), "my_params.yaml": str(custom)}
    from test_launch_hosts import host_commands  # the operator's and the robot's launches
    from test_photo_node import operator_photo_command  # the operator's launch with photo:=

    tested = list(launch_commands(custom).values()) + list(host_commands().values()) + [operator_photo_command()]
    tested.append(operator_photo_command() + ["robot_namespace:=robot1"])  # test_photo_node's namespaced robot
    commands = readme_commands()
    assert len(commands) >= 5, commands
    for cmd in commands:
        real = [re.sub(r"(?<=:=)(.*)$", lambda m: files.get(m.group(1), m.group(1)), a) for a in cmd]
        if "--show-args" in real:
            continue  # test_show_args_lists_every_argument
        assert any(t[:4] == real[:4] and set(real[4:]) <= set(t[4:]) for t in tested), \
            f"README command not run by the tests: {' '.join(cmd)}"


def test_show_args_lists_every_argument():
    out = subprocess.run(["ros2", "launch", "gaussian_head_ros", "avatar.launch.py", "--show-args"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names = re.findall(r"^    '(\w+)':", out.stdout, re.M)
    assert {"params_file", "photo", "video", "namespace", "composed", "backend", "reconstructor"} <= set(names), names


# ------------------------------------------------------------------------------------------------------
# composed: namespace:=robot2 composed:=true params_file:=custom.yaml photo:=<missing>


@pytest.mark.launch(fixture=launches)
def test_composed_launch_has_three_named_nodes_and_the_files_values(procs, graph, topics):
    _wait_nodes(graph, procs, "composed")
    names = [n for n in graph.node.get_node_names_and_namespaces() if n[1] == "/robot2"]
    assert sorted(n for n, _ in names) == sorted(NODES), names  # three distinct names, no duplicates
    assert graph.parameters("/robot2/render_node", ["width", "height", "fps"]) == \
        {"width": 256, "height": 192, "fps": 10.0}
    assert graph.parameters("/robot2/tracker_node", ["max_faces"]) == {"max_faces": 1}
    frames = topics["/robot2/face_display/image_raw"]
    assert wait_until(lambda: len(frames) >= 15, 60), tail(procs["composed"])
    assert {(m.width, m.height) for _, m in frames} == {(256, 192)}
    # the frames' stamps (idle frames: the time each was drawn), not their arrival times: a reader thread that
    # stalls on a loaded machine takes queued frames in a burst, and their arrival rate read above 13 Hz
    t = [m.stamp_ns * 1e-9 for _, m in frames[-15:]]
    assert 14 / (t[-1] - t[0]) < 13.0, "fps: 10.0 of the file is not in effect"


@pytest.mark.launch(fixture=launches)
def test_missing_photo_gives_a_clear_status_and_keeps_the_settings(procs, graph, topics):
    from gaussian_head_ros.msg import AvatarStatus

    _wait_nodes(graph, procs, "composed", ["/robot2/reconstruction_node"])
    statuses = topics["/robot2/avatar/status"]
    assert wait_until(lambda: len(statuses) > 0, 60), f"no avatar/status for a missing photo\n{tail(procs['composed'])}"
    s = statuses[-1][1]
    assert s.code == AvatarStatus.BAD_IMAGE and not s.ok, s
    assert MISSING_PHOTO in s.message and "No such file" in s.message, s.message
    assert graph.parameters("/robot2/reconstruction_node", ["preset", "backend"]) == \
        {"preset": "fast", "backend": "mesh_fit"}


def _sigterm(proc: ExecuteProcess) -> None:
    """What `kill PID`, a supervisor or a container runtime does: SIGTERM to the `ros2 launch` process only.
    launch then exits without signalling its processes; each node sees it has been adopted and ends as on a
    Ctrl-C (nodes.common.end_with_parent)."""
    pid = proc.process_details["pid"]
    nodes = psutil.Process(pid).children(recursive=True)
    assert nodes, f"{proc.name}: no node processes under ros2 launch"
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: proc.return_code is not None, 10), f"ros2 launch still running\n{tail(proc)}"
    gone, alive = psutil.wait_procs(nodes, timeout=CTRL_C_S + 2)
    took = time.monotonic() - t0
    assert not alive, f"still running {took:.0f} s after SIGTERM to ros2 launch: {[p.cmdline()[:2] for p in alive]}"
    assert not left_in_tmp(proc), left_in_tmp(proc)
    print(f"{proc.name}: {len(nodes)} node processes gone {took:.1f} s after SIGTERM to ros2 launch")


@pytest.mark.launch(fixture=launches)
def test_sigterm_to_ros2_launch_stops_the_default_launch_nodes(procs, graph, topics):
    _running(procs, graph, topics, "default")
    _sigterm(procs["default"])


@pytest.mark.launch(fixture=launches)
def test_ctrl_c_stops_the_composed_launch_cleanly(procs, graph, topics):
    _running(procs, graph, topics, "composed")
    _ctrl_c(procs["composed"])


@pytest.mark.launch(fixture=launches)
def test_ctrl_c_stops_ros2_run_cleanly(procs, graph, topics):
    _running(procs, graph, topics, "run")
    _ctrl_c(procs["run"])
