"""Start the package's node executables as separate processes and record the face display stream.

Used by `gaussian-head demo`, the end-to-end tests and the soak script: the nodes talk over real DDS,
exactly as under `ros2 launch`, but this works in the pip-only set-up where `ros2 launch` is absent.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def package_prefix() -> Path:
    from ament_index_python.packages import get_package_prefix

    return Path(get_package_prefix("gaussian_head_ros"))


def package_share() -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("gaussian_head_ros"))


def node_command(executable: str, params: dict | None = None, params_file: str | Path | None = None,
                 remaps: dict | None = None, name: str | None = None, namespace: str = "") -> list[str]:
    """The command line of one installed node with --ros-args parameters and remappings, in `namespace` (''
    = the root namespace; a params_file must then name its nodes for any namespace: node_params_file)."""
    exe = package_prefix() / "lib" / "gaussian_head_ros" / executable
    if not exe.exists():
        raise FileNotFoundError(f"{exe} is not installed; run 'make setup'")
    cmd = [sys.executable, str(exe), "--ros-args"]
    if name:
        cmd += ["-r", f"__node:={name}"]
    if namespace.strip("/"):
        cmd += ["-r", f"__ns:=/{namespace.strip('/')}"]
    if params_file:
        cmd += ["--params-file", str(params_file)]
    for k, v in (params or {}).items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, (list, tuple)):
            v = "[" + ",".join(str(x) for x in v) + "]"
        cmd += ["-p", f"{k}:={v}"]
    for a, b in (remaps or {}).items():
        cmd += ["-r", f"{a}:={b}"]
    return cmd


def node_params_file(path: str, overrides: dict) -> str:
    """The parameters file as the nodes get it (a copy named by its content, _content_file; avatar.launch.py,
    avatar_pipeline and `gaussian-head demo`):
    a node name without a leading '/' (`render_node:`, as in config/avatar.yaml) matches that node in any
    namespace (`/**/render_node`; in ROS 2 it would match only the root namespace, so `namespace:=` would
    silently drop the file), and `overrides` (node name -> {parameter: value}: the launch arguments' values)
    are added per node (`-p` cannot address a namespaced node). A list of numbers that mixes integers and floats
    (`background: [1, 0.5, 0.5]`) is written as floats: rcl's parser refuses a list of two types, and every node
    ended at start with 'Sequence should be of same type' (user46, s46; `ros2 param set` takes the same list).
    ValueError for a file rcl would refuse (not YAML, no `ros__parameters:` level)."""
    import yaml

    with open(path) as fh:
        try:
            doc = yaml.safe_load(fh) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"parameters file {path} is not YAML: {e}") from e
    if not isinstance(doc, dict):
        raise ValueError(f"parameters file {path}: expected node names at the top level")
    for key, value in doc.items():  # rcl refuses such a file; dropping its values here would be silent
        if value is not None and not isinstance(value, dict) and (said := _parameter_without_node(path, key, value)):
            raise ValueError(said)
        if value is not None and not (isinstance(value, dict) and isinstance(value.get("ros__parameters"), dict)):
            raise ValueError(f"parameters file {path}: '{key}' needs a 'ros__parameters:' level "
                             f"({key}: ros__parameters: name: value; a namespace goes in the key: /robot1/{key})")
    out: dict = {}
    for key, value in list(doc.items()) + [(k, {"ros__parameters": v}) for k, v in overrides.items() if v]:
        key = key if str(key).startswith("/") else f"/**/{key}"
        params = out.setdefault(key, {}).setdefault("ros__parameters", {})
        params.update((value or {}).get("ros__parameters", {}))
        params.update((name, [float(v) for v in v_]) for name, v_ in params.items() if _mixed_numbers(v_))
    return _content_file(yaml.safe_dump(out, sort_keys=False))


def _content_file(text: str) -> str:
    """The path of a file holding `text`, named by its content (`params-<sha256 prefix>.yaml`) in this user's own
    directory under the temporary directory (`$TMPDIR/gaussian_head_ros-<uid>`, mode 0700): the same parameters
    give the same file, so nothing piles up however the launches end. Each launch wrote a new temporary file and
    left it there, since its nodes read it whenever they start and a SIGTERM to `ros2 launch` (systemd, a container
    runtime) ends it at once (exit 143, no atexit, no Shutdown event): 3864 of them in /tmp after a day of tests
    (s52). Written under a temporary name and renamed over it (atomic), so another launch's node never reads it
    half written; never deleted here (another launch's node may be about to read the same file)."""
    folder = Path(tempfile.gettempdir()) / f"gaussian_head_ros-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:  # not ours alone (another
        folder = Path(tempfile.mkdtemp(prefix="gaussian_head_ros-"))  # user made it first, a link): a new one
    path = folder / f"params-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    if not path.is_file() or path.read_text() != text:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    return str(path)


def _parameter_without_node(path: str, key, value) -> str:
    """The error for a parameters file whose top level holds a parameter (`width: 640`), not a node's section: it was
    said as "'width' needs a 'ros__parameters:' level (width: ros__parameters: name: value; a namespace goes in the key:
    /robot1/width)", a parameter taken for a node (user47, s47). Names the node(s) that have it (the package's
    config/avatar.yaml), else NODE; '' for a key that names one of the package's nodes (`render_node: 640`)."""
    try:
        owners = parameter_owners(package_share() / "config" / "avatar.yaml")
    except (OSError, LookupError):  # the package not installed (a source checkout): no owner named
        owners = {}
    if str(key).strip("/").split("/")[-1] in {n for names in owners.values() for n in names}:
        return ""
    nodes = owners.get(str(key), [])
    which = f" ({' and '.join(nodes)} {'has' if len(nodes) == 1 else 'have'} it)" if nodes else ""
    return (f"parameters file {path}: '{key}: {value}' is a parameter at the top level, where rcl reads node names: "
            f"write it under its node's name and a ros__parameters: level{which}: "
            f"{nodes[0] if nodes else 'NODE'}: ros__parameters: {key}: {value}")


def _mixed_numbers(value) -> bool:
    """Whether `value` is a list of numbers with both integers and floats in it (no bools)."""
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return False
    return {type(v) for v in value} == {int, float}


def _node_key_matches(key: str, node: str) -> bool:
    """Whether the node-name key `key` of a parameters file (`/robot1/render_node`, with rcl's wildcards: `*` one
    name token, `**` any number of them) names the node of fully qualified name `node` (`/robot1/render_node`)."""
    def match(k: list, n: list) -> bool:
        if not k:
            return not n
        if k[0] == "**":
            return any(match(k[1:], n[i:]) for i in range(len(n) + 1))
        return bool(n) and (k[0] == "*" or k[0] == n[0]) and match(k[1:], n[1:])

    return match([t for t in key.split("/") if t], [t for t in node.split("/") if t])


# Every node name of the package (each node class's name; launch_files.HOST_NODES places them on the hosts, the
# camera's video_source_node with `video:=`): a parameters-file section close to one of them is a misspelt one.
PACKAGE_NODES = ("reconstruction_node", "tracker_node", "render_node", "photo_node", "video_source_node")


def params_sections_for_no_node(path: str | Path, nodes: list[str]) -> list[str]:
    """One warning line per node-name key of the parameters file `path` that names, with its leading '/', none of
    `nodes` (the fully qualified names a launch or avatar_pipeline starts, `/robot1/render_node`). rcl reads such a
    key only for a node of that exact name, so its values were dropped without a word: `ros2 param dump
    /render_node` writes `/render_node:`, and that file given to `namespace:=robot1` left every node on its defaults
    (user16, s16). Keys without the '/' match the node in any namespace (node_params_file), and are not said; nor
    are keys for a node this launch does not start (a file shared by both hosts: '/robot1/tracker_node' is the
    operator's). A key whose node name is none of PACKAGE_NODES (every node name of the package) but close to one, a
    misspelt section (`rendr_node:`, `render_nodes:`), is said too, with the name it is close to: its values were
    dropped without a word as well (user20, s20); names far from all of them (another package's node, `/**`) are
    not."""
    import difflib

    import yaml

    with open(path) as fh:
        doc = yaml.safe_load(fh) or {}
    lines = []
    for key in doc if isinstance(doc, dict) else ():
        key = str(key)
        name = key.rstrip("/").rsplit("/", 1)[-1]
        if (key.startswith("/") and name in {n.rsplit("/", 1)[-1] for n in nodes}
                and not any(_node_key_matches(key, n) for n in nodes)):
            lines.append(f"parameters file {path}: '{key}' names no node this launch starts ({', '.join(nodes)}): "
                         f"its values are not used; write '{name}:' (no leading '/') to give them to {name} in any "
                         f"namespace (`ros2 param dump` writes full names)")
        elif name not in PACKAGE_NODES:
            close = difflib.get_close_matches(name, sorted(PACKAGE_NODES), n=1, cutoff=0.75)
            if close:
                lines.append(f"parameters file {path}: '{key}' names no node of gaussian_head_ros (did you mean "
                             f"'{close[0]}'?): its values are not used; the nodes: {', '.join(sorted(PACKAGE_NODES))}")
    return lines


# Names other ROS 2 launch files give what ours call otherwise (nav2's `use_composition`, many files' `ns`), not close
# enough in spelling for difflib: `robot.launch.py ns:=robot1` ran the robot in the root namespace without a word
# (user21, s21). Said as "did you mean" when the launch file has the argument on the right.
ARGUMENT_ALIASES = {"ns": "namespace", "robot_ns": "robot_namespace", "use_composition": "composed",
                    "image_topic": "camera_topic", "video_device": "video", "params": "params_file",
                    "config": "params_file", "sim_time": "use_sim_time"}


def unknown_launch_arguments(given: dict, declared: set, params_path: str | Path, namespace: str = "",
                             elsewhere: dict | None = None, node_homes: dict | None = None) -> list[str]:
    """One warning line per launch argument in `given` (the launch's configurations: name -> value) that is
    not in `declared` (the launch file's DeclareLaunchArgument names). `ros2 launch` takes any `name:=value`
    without a word, so `expression_encoding:=dense` or `width:=384` (node parameters, not arguments) did
    nothing and the nodes ran on their defaults. A name that is a node parameter in `params_path` (the
    package's config/avatar.yaml: every parameter of every node) is said with the `ros2 param set` line for
    its node(s) under `namespace`; another name with the closest argument when there is one (`vidoe` ->
    `video`; ARGUMENT_ALIASES: `ns` -> `namespace`). `elsewhere` (argument -> the launch file that has it, e.g. "robot.launch.py (...)") names the
    other host's launch file for its arguments (`photo:=` given to operator.launch.py), and `node_homes` (node
    -> launch file) the one that starts a node this launch does not (`width:=` given to operator.launch.py is
    render_node's, which robot.launch.py starts). A launch file that includes ours passes its own
    configurations too: only names that look like ours are said, and the caller leaves out of `given` the names
    another launch file of the launch declares (launch_files.declared_in_tree: a bringup's own `config:=`)."""
    import difflib

    owners = parameter_owners(params_path)
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    elsewhere, node_homes = elsewhere or {}, node_homes or {}
    lines = []
    for name in sorted(set(given) - set(declared)):
        value = given[name]
        if name in elsewhere:
            lines.append(f"launch argument '{name}:={value}' ignored: this launch file has no argument '{name}'; "
                         f"{elsewhere[name]} has it (--show-args lists this one's)")
        elif name in owners:
            sets = " or ".join(f"'ros2 param set {ns}/{node} {name} {value}'" for node in owners[name])
            away = "; ".join(f"{n} is started by {node_homes[n]}" for n in owners[name] if n in node_homes)
            away = f" ({away})" if away else ""
            lines.append(f"launch argument '{name}:={value}' ignored: {name} is a parameter of "
                         f"{' and '.join(owners[name])}{away}, not an argument of this launch file (--show-args "
                         f"lists those); set it in a copy of config/avatar.yaml given as params_file:=, or on the "
                         f"running node: {sets}")
        else:
            alias = ARGUMENT_ALIASES.get(name)
            close = [alias] if alias in declared else difflib.get_close_matches(name, sorted(declared), n=1, cutoff=0.8)
            if close:
                lines.append(f"launch argument '{name}:={value}' ignored: this launch file has no argument "
                             f"'{name}' (did you mean '{close[0]}'? --show-args lists them)")
    return lines


# The topic arguments of the launch files (camera_topic:=) and of avatar_pipeline (--camera-topic), each with the
# nodes that meet on it (topic_argument_problem).
TOPIC_ARGUMENTS = {"camera_topic": "the camera (driver or video_source_node) and the tracker",
                   "control_topic": "the tracker and the render node"}


def topic_argument_problem(name: str, value: str, shared_by: str) -> str:
    """'' when `value` can be the topic of the argument `name` (a launch file's `camera_topic:=`, `control_topic:=`;
    avatar_pipeline's `--camera-topic`, `--control-topic`), else why not, naming the argument. rcl refuses a remapping
    to a name that is no ROS topic name ('face-control', a trailing '/' as in '/usb_cam/image_raw/', empty): each node
    given it died at start with rcl's "Couldn't parse remap rule ... Expected lexeme type (19)" (or "error not set"),
    the launch ran on without it (user37, s37). A private name ('~/fc') is each node's own topic:
    `shared_by` (e.g. 'the tracker and the render node') would never meet on it."""
    from rclpy.exceptions import InvalidTopicNameException
    from rclpy.validate_full_topic_name import validate_full_topic_name

    if not value.strip():
        return f"'{name}:=' is empty: give it a topic name, or leave it out for its default"
    if value == "~" or value.startswith("~/"):
        return (f"'{name}:={value}' names a private topic, each node's own: {shared_by} would not meet on it; "
                "give a relative (face_control) or an absolute (/face_control) name")
    try:  # a relative name as it is under the root namespace (rcl's checks of both are the same but for the '/')
        validate_full_topic_name(value if value.startswith("/") else "/" + value)
    except InvalidTopicNameException as e:
        why = str(e).split(":", 1)[-1].split(":")[0].strip()  # 'topic name must not end with a forward slash'
        return f"'{name}:={value}' is no ROS topic name ({why}): each node given it would die at start"
    return ""


def namespace_argument_problem(name: str, value: str) -> str:
    """'' when `value` can be the ROS namespace of the argument `name` (a launch file's `namespace:=`,
    `robot_namespace:=`; `gaussian-head demo --namespace`, avatar_pipeline's `--robot-namespace`; '' and '/' are the
    root namespace, leading and trailing '/' are dropped as those take them), else why not, naming the argument.
    A hostname-like `namespace:=robot-1` ended the launch in launch's words only ('The resulting namespace is invalid:
    [previous_namespace='None', pushed_namespace='robot-1']') after a warning that proposed `ros2 param set
    /robot-1/...`; `robot_namespace:=robot-1` let photo_node die at start with rcl's "Couldn't parse remap rule" while
    the launch ran on without it; `demo --namespace robot-1` ended in rclpy's InvalidNamespaceException traceback
    (user47, s47)."""
    from rclpy.exceptions import InvalidNamespaceException
    from rclpy.validate_namespace import validate_namespace

    ns = value.strip("/")
    if not ns:
        return ""
    try:
        validate_namespace("/" + ns)
    except InvalidNamespaceException as e:
        why = str(e).split(":", 1)[-1].split(":")[0].strip()  # 'namespace must not contain repeated '/''
        return (f"'{name}:={value}' is no ROS namespace ({why}): ROS names take letters, digits and '_', each part "
                "after a '/' starting with a letter or '_' (robot_1, not robot-1 or 1robot)")
    return ""


# The largest ROS_DOMAIN_ID a DDS participant has ports for: DDSI-RTPS 2.5 section 9.6.1.1 maps domain d to the UDP
# port 7400 + 250 d (+ offsets), which passes 65535 above d = 232. ROS 2's "About Domain ID" page gives the same
# bound, and 0-101 as the range clear of Linux's ephemeral ports (32768-60999).
MAX_DDS_DOMAIN_ID = 232
SAFE_DOMAIN_IDS = "0-101"


def domain_id_problem(environ=None) -> str:
    """'' when the ROS_DOMAIN_ID of `environ` (default os.environ) can start a node, else why not and what to give.
    Fast DDS ends the process from C++ (exit status 1) at the first node of a domain above MAX_DDS_DOMAIN_ID,
    printing only its own "Calculated port number is too high. Probably the domainId is over 232 or portBase is
    too high.": every node of `robot.launch.py` died so, and `gaussian-head demo` after its first lines (user45,
    s45: ROS_DOMAIN_ID=250). An id that is not a number is left to rcl, whose error the nodes already say
    ("ROS_DOMAIN_ID is not an integral number"); so is any id under rmw_zenoh, which has no DDS ports."""
    env = os.environ if environ is None else environ
    value = env.get("ROS_DOMAIN_ID", "").strip()
    if not value.isdigit() or "zenoh" in env.get("RMW_IMPLEMENTATION", ""):
        return ""
    if int(value) > MAX_DDS_DOMAIN_ID:
        return (f"ROS_DOMAIN_ID={value} is above {MAX_DDS_DOMAIN_ID}, the largest domain DDS has ports for "
                f"(7400 + 250 x the id must stay a UDP port): no node can start in it; export a ROS_DOMAIN_ID of "
                f"{SAFE_DOMAIN_IDS} (ROS 2's range on Linux), the same on every host of the robot")
    return ""


def discovery_off(environ=None) -> bool:
    """Whether a node started with `environ` (default os.environ) discovers no node of another process, on its host or
    another: ROS_AUTOMATIC_DISCOVERY_RANGE exactly 'OFF' (rcl takes another spelling, 'off', as LOCALHOST and warns;
    ROS_STATIC_PEERS are not contacted then either). Said by the nodes' waiting lines, the launch files and the demo
    (user48)."""
    return (os.environ if environ is None else environ).get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "OFF"


LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")  # rcutils' severities (any case; 'unset' too)


def log_level_problem(value: str) -> str:
    """'' when rcl takes `value` as a `--log-level` (a launch file's `log_level:=`: a severity, any case, or
    `<logger>:=<severity>`), else why not. rcl refuses 'warning' (Python's name for warn), an empty value or a space
    around it: every node of the launch died at start with rcl's "Couldn't parse log level: '--log-level warning'"
    and the launch ended without a face (user39, s39). rcl's own parser is asked (rclpy's remove_ros_args: it parses
    the arguments without starting a context)."""
    from rclpy.utilities import remove_ros_args

    try:
        remove_ros_args(["log_level_check", "--ros-args", "--log-level", value])
    except RuntimeError as e:  # rclpy's RCLInvalidROSArgsError
        why = str(e).split("Error: ", 1)[-1].split(",")[0].strip().rstrip(".")  # 'Argument does not use a valid ...'
        return (f"'log_level:={value}' is no ROS log level ({why}): each node given it would die at start; give one "
                f"of {', '.join(LOG_LEVELS)} (any case), or <logger>:=<level> for one logger (render_node:=debug)")
    return ""


def log_level_arguments(value: str, namespace: str, nodes) -> list[str]:
    """The `--log-level` arguments of a launch file's `log_level:=value` for `nodes` (their names) started under
    `namespace` ('', 'robot1' or '/fleet/robot1'). A node's logger under a namespace is named by the namespace's parts
    and the node's name joined by '.' (`robot1.render_node`), so `render_node:=warn` there set only the logger its
    process says its first lines under, before the node exists: `namespace:=robot1 log_level:=render_node:=warn` left
    every INFO line of the render node shown (user47, s47). A level for one of `nodes` is given for both loggers."""
    args = ["--log-level", value]
    name, sep, level = value.partition(":=")
    ns = namespace.strip("/")
    if sep and ns and name in nodes:
        args += ["--log-level", f"{ns.replace('/', '.')}.{name}:={level}"]
    return args


def parameter_owners(params_path: str | Path) -> dict[str, list[str]]:
    """Parameter name -> the nodes that have it, in the order of the parameters file `params_path` (the package's
    config/avatar.yaml names every parameter of every node under its node's section)."""
    import yaml

    with open(params_path) as fh:
        doc = yaml.safe_load(fh) or {}
    owners: dict[str, list[str]] = {}
    for node, value in doc.items():
        for name in (value or {}).get("ros__parameters", {}):
            owners.setdefault(name, []).append(str(node))
    return owners


# Set (to "1") in the environment of a node started in a session of its own by a process that stops it itself
# (NodeProcess: the demo, tests): the node ends when that process is gone, as under `ros2 launch`, though setsid alone
# reads as detached on purpose (common.end_with_parent). A killed demo left its two nodes running (user48).
END_WITH_PARENT_ENV = "GAUSSIAN_HEAD_END_WITH_PARENT"
# The pid of the `ros2 launch` process, in the environment of the nodes our launch files start: a node adopted before it
# could read its parent (launch SIGTERMed in its first moments, the node's Python still starting) knows it ended
# (common.end_with_parent).
LAUNCHED_BY_ENV = "GAUSSIAN_HEAD_LAUNCHED_BY"
# glibc malloc arenas a node process may use (its default: 8 per core): the launch files and NodeProcess set
# MALLOC_ARENA_MAX to it unless the user did, and common.limit_malloc_arenas sets it at start_process otherwise. A long
# day of photo swaps kept growing the reconstruction node by ~10 MB a photo in the default arenas (user58, s58)
MALLOC_ARENAS = 2


def malloc_arena_env() -> dict[str, str]:
    """{'MALLOC_ARENA_MAX': str(MALLOC_ARENAS)} for a node process's environment, or {} when the user set it."""
    return {} if "MALLOC_ARENA_MAX" in os.environ else {"MALLOC_ARENA_MAX": str(MALLOC_ARENAS)}


class NodeProcess:
    """One node in its own process (a session of its own; it ends when this process is gone: END_WITH_PARENT_ENV);
    its output goes to a log file."""

    def __init__(self, name: str, cmd: list[str], log_dir: Path, env: dict | None = None,
                 log_path: Path | None = None):
        self.name, self.cmd = name, cmd
        self.log_path = Path(log_path) if log_path else Path(log_dir) / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **malloc_arena_env(), END_WITH_PARENT_ENV: "1",
                                          **(env or {})})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        self._fh.close()
        return self.proc.returncode


@dataclass
class StreamStats:
    """What a recorder saw on the face display topic."""

    arrivals: list = field(default_factory=list)  # monotonic seconds of each frame's arrival
    latencies_ms: list = field(default_factory=list)  # now - header.stamp for each frame
    stamps_ns: list = field(default_factory=list)
    sizes: set = field(default_factory=set)  # (width, height, encoding)

    def fps(self, skip: int = 5) -> float:
        t = self.arrivals[skip:]
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 2 and t[-1] > t[0] else 0.0

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def max_gap_s(self) -> float:
        return float(np.max(np.diff(self.arrivals))) if len(self.arrivals) > 1 else float("inf")


class FaceDisplayRecorder:
    """Subscribes to the face display (and the avatar status), keeps statistics, optionally writes an mp4.
    Relative topics are those of `namespace`; node_states is keyed by the diagnostics' node names
    ('<namespace>/render_node' under a namespace).

    Spins its own node in a background thread; call close() when done."""

    def __init__(self, topic: str = "face_display/image_raw", video_path: str | Path | None = None,
                 fps: float = 30.0, keep_frames: int = 0, namespace: str = ""):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image

        from gaussian_head_ros.msg import AvatarStatus

        self.stats = StreamStats()
        self.statuses: list = []
        self.node_states: dict[str, dict] = {}  # node name -> its newest /diagnostics values (+ "message")
        self.frames: list = []  # the last keep_frames frames as (stamp_ns, rgb)
        self.keep_frames = keep_frames
        self.recording = video_path is not None
        self._writer = None
        self.video_error = ""  # why frames were not recorded (the first reason)
        self._video_path = str(video_path) if video_path else None
        self._fps = fps
        self._lock = threading.Lock()
        self.node = rclpy.create_node("face_display_recorder", namespace=f"/{namespace.strip('/')}")
        self.node.create_subscription(Image, topic, self._on_image, qos_profile_sensor_data)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(AvatarStatus, "avatar/status", self.statuses.append, latched)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._running = True
        self._thread.start()

    def _spin(self):
        while self._running:
            self._executor.spin_once(timeout_sec=0.05)

    def _on_diagnostics(self, msg):
        for st in msg.status:  # named '<node>: <task>' (nodes.common.diagnostics)
            self.node_states[st.name.split(":")[0]] = {**{kv.key: kv.value for kv in st.values}, "message": st.message}

    def _on_image(self, msg):
        now = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self._lock:
            self.stats.arrivals.append(time.monotonic())
            self.stats.latencies_ms.append((now - stamp) / 1e6)
            self.stats.stamps_ns.append(stamp)
            self.stats.sizes.add((msg.width, msg.height, msg.encoding))
            if not (self.recording or self.keep_frames) or msg.encoding != "rgb8":
                return
            rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
            if self.keep_frames:
                self.frames.append((stamp, rgb))
                del self.frames[:-self.keep_frames]
            if self.recording:
                from gaussian_head_ros.core.video import VideoWriter

                if self._writer is None:
                    self._writer = VideoWriter(self._video_path, self._fps)
                try:
                    self._writer.write_at(rgb, time.monotonic())  # in real time (a slow display's frames repeated)
                except ValueError as e:  # cannot open the file, or the frame size changed: not recorded
                    self.video_error = self.video_error or str(e)

    def reset(self):
        with self._lock:
            self.stats = StreamStats()

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self, keep_video: bool = True):
        """Stop spinning and close the video: written into place when `keep_video`, else dropped (an interrupted
        recording: whatever was at video_path stays)."""
        self._running = False
        self._thread.join(timeout=2)
        with self._lock:
            if self._writer is not None:
                self._writer.close(keep=keep_video)
                self._writer = None
        self.node.destroy_node()
