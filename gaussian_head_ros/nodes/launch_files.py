"""What the package's launch files start: launch/avatar.launch.py (every node on one host),
launch/operator.launch.py (the operator's host: camera and tracker, and with `photo:=` the photo_node that sends
the operator's photo) and launch/robot.launch.py (the robot: photo -> avatar, avatar + controls -> face display).
Each launch file is one call of launch_description().

`photo:=` is a file on the host whose launch file is given it: on the robot (and in avatar.launch.py) the
reconstruction node's own `photo_path`; on the operator's host photo_node's `photo`, sent to the robot on
operator/photo/compressed (latched). Both may be given: the newest photo the robot gets wins.

One launch file per host, as TurtleBot's `robot.launch.py` on the robot's computer and its tools on the
remote PC: the command says where it runs, `--show-args` lists only what that host takes, and an argument
of the other host (`video:=` on the robot) is said, not run. The arguments, their defaults and which node
each one reaches are written once here, in ARGUMENTS.

Imports launch and launch_ros (present wherever `ros2 launch` is); the pip-only set-up never imports this.
"""

from __future__ import annotations

import os
import signal

from gaussian_head_ros.nodes.launcher import (LAUNCHED_BY_ENV, LOG_LEVELS, TOPIC_ARGUMENTS, discovery_off,
                                              domain_id_problem, log_level_arguments, log_level_problem,
                                              malloc_arena_env, namespace_argument_problem, node_params_file,
                                              params_sections_for_no_node, topic_argument_problem,
                                              unknown_launch_arguments)

# Which nodes each host runs (the camera's video_source_node comes with the operator's `video:=`, and
# photo_node only with the operator's `photo:=`: OPTIONAL_NODES).
HOST_NODES = {
    "all": ("reconstruction_node", "tracker_node", "render_node"),
    "operator": ("tracker_node", "photo_node"),
    "robot": ("reconstruction_node", "render_node"),
}
OPTIONAL_NODES = {"photo_node": "photo"}  # node -> the argument without which it is not started
LAUNCH_FILES = {"all": "avatar.launch.py", "operator": "operator.launch.py", "robot": "robot.launch.py"}
OPERATOR, ROBOT = ("all", "operator"), ("all", "robot")
EVERY = ("all", "operator", "robot")

# Launch arguments that set a node parameter: argument -> ((node, parameter), ...), each set where its node is
# started. test/test_settings.py checks them against the nodes' parameter descriptors (core/settings.py).
ARGUMENT_PARAMETERS = {
    "photo": (("reconstruction_node", "photo_path"), ("photo_node", "photo")),
    "operator_id": (("reconstruction_node", "operator_id"), ("photo_node", "operator_id")),
    "reconstructor": (("reconstruction_node", "backend"),),
    "checkpoint": (("reconstruction_node", "checkpoint"),),
    "cache_path": (("reconstruction_node", "cache_path"),),
    "backend": (("render_node", "backend"),),
    "device": (("render_node", "device"),),
    "camera_transport": (("tracker_node", "image_transport"),),
}

NAMESPACE_ARGUMENTS = ("namespace", "robot_namespace")  # refused before any node starts (namespace_argument_problem)
PATH_ARGUMENTS = ("params_file", "photo", "checkpoint", "cache_path", "video", "fastdds_profile")  # files: `~` expanded


def _share(*parts: str) -> str:
    from ament_index_python.packages import get_package_share_directory

    return os.path.join(get_package_share_directory("gaussian_head_ros"), *parts)


def _arguments_table() -> list[tuple[str, tuple, str, str]]:
    """(name, the hosts whose launch file has it, default, description), in --show-args order."""
    return [
        ("params_file", EVERY, _share("config", "avatar.yaml"),
         "YAML file with the parameters of the nodes (each launch file reads its own nodes' sections)"),
        ("photo", ROBOT, "", "operator photo reconstructed at start-up, a file on this host (empty: the last avatar "
                             "again, from the reconstruction_node's cache_path, and wait for operator/photo)"),
        ("photo", ("operator",), "", "the operator's photo, a file on this host: photo_node sends it to the robot "
                                     "on operator/photo/compressed (latched) and says the robot's verdict; "
                                     "'ros2 param set /photo_node photo other.jpg' swaps it; empty: no photo_node"),
        ("operator_id", ROBOT, "", "operator id for the start-up photo (empty: from the file name)"),
        ("operator_id", ("operator",), "", "operator id sent with the photo (empty: from the file name)"),
        ("robot_namespace", ("operator",), "",
         "the namespace the robot was started in (robot.launch.py namespace:=robot1): photo_node sends the photo "
         "to that robot (/robot1/operator/photo/compressed) and reads its verdict (/robot1/avatar/status); '/': a "
         "robot in the root namespace; empty: this launch's own namespace. The controls follow control_topic"),
        ("camera_topic", OPERATOR, "camera/image_raw",
         "the operator camera's image topic the tracker reads (its camera_info beside it)"),
        ("camera_transport", OPERATOR, "",
         "how the camera_topic's frames come: raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage on "
         "<camera_topic>/compressed, as image_transport's compressed plugin publishes: no republish node needed); "
         "empty: the parameters file's (raw)"),
        ("video", OPERATOR, "", "play this video file (or /dev/videoN) as the camera; empty: use your camera driver"),
        ("loop", OPERATOR, "true", "loop the video file (true or false; also 1/0, yes/no)"),
        ("control_topic", EVERY, "face_control",
         "the FaceControl topic (its expression_basis and recalibrate below it) the tracker publishes and the "
         "render node follows; e.g. /face_control for a robot under namespace:= that follows an operator in the "
         "root namespace"),
        ("backend", ROBOT, "", "render backend: auto (gsplat on CUDA, else cpu), gsplat, cpu or torch; "
                               "empty: the parameters file's"),
        ("device", ROBOT, "", "torch device of the torch backend (cpu, cuda:N); empty: the parameters file's"),
        ("reconstructor", ROBOT, "", "reconstruction backend: mesh_fit (training-free) or rar (learned); "
                                     "empty: the parameters file's"),
        ("checkpoint", ROBOT, "", "RAR checkpoint for reconstructor:=rar, a file on this host (from gaussian-head "
                                  "train, its backbone folder beside it); empty: the parameters file's"),
        ("cache_path", ROBOT, "", "file of the reconstruction_node's avatar cache: the last avatar, published again "
                                  "when started without photo:=; empty: the parameters file's, by default "
                                  "$ROS_HOME/gaussian_head_ros/[domain<ROS_DOMAIN_ID>_]<namespace>_reconstruction_"
                                  "node.avatar (ROS_HOME: ~/.ros; no domain prefix in domain 0), one per namespace "
                                  "and ROS domain, which every launch in that namespace and domain on this host "
                                  "shares: give each its own file to keep their faces apart"),
        ("namespace", EVERY, "", "namespace for all nodes and topics"),
        ("composed", ROBOT, "false", "run the nodes in one process (avatar_pipeline) instead of one process each "
                                             "(true or false; also 1/0, yes/no)"),
        ("fastdds_profile", EVERY, "",
         "Fast DDS profile (XML) for the nodes; empty: the one FASTDDS_DEFAULT_PROFILES_FILE names if you set it "
         "(docs/DEPLOYMENT.md's unicast profile across hosts), else the package's config/fastdds.xml (large "
         "shared-memory segments for images)"),
        ("use_sim_time", EVERY, "", "true: every node of this launch takes its time from /clock (a bag played with "
                                    "--clock: the stamps of frames drawn, statuses and avatars follow it; 0 until the "
                                    "first /clock), false: the system clock; empty: the parameters file's (false "
                                    "unless it says)"),
        ("log_level", EVERY, "info", f"the nodes' ROS log level: {', '.join(LOG_LEVELS)} (any case), or "
                                     "<logger>:=<level> for one logger (render_node:=debug: that node, under "
                                     "namespace:= too)"),
    ]


def launch_flag(name: str, value: str) -> bool | None:
    """A boolean launch argument's value: true/false (also 1/0, yes/no, any case), None when empty. ValueError for
    anything else, naming the argument (launch would pass 'ture' on as a string, and the node refuse it later)."""
    text = value.strip().lower()
    if not text:
        return None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"launch argument '{name}:={value}': true or false")


def arguments(host: str) -> list:
    """The DeclareLaunchArgument actions of `host`'s launch file ("all", "operator" or "robot")."""
    from launch.actions import DeclareLaunchArgument

    return [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, hosts, default, text in _arguments_table() if host in hosts]


def launch_description(host: str):
    """The whole launch description of `host`'s launch file: its arguments, then its nodes."""
    from launch import LaunchDescription
    from launch.actions import OpaqueFunction

    if host not in HOST_NODES:
        raise ValueError(f"host {host!r}: one of {', '.join(HOST_NODES)}")
    return LaunchDescription(arguments(host) + [OpaqueFunction(function=nodes, args=[host])])


def declared_in_tree() -> set[str]:
    """The launch argument names that the launch descriptions being run declare: the ones this call is made inside
    of (the including launch files, up to `ros2 launch`'s own, and ours) and all they include, found as `ros2
    launch --show-args` finds them (LaunchDescription.get_launch_arguments: DeclareLaunchArgument actions, in
    includes that load without a context too): every LaunchDescription among the locals of this call's callers.
    Empty when none is (a description's OpaqueFunction executed by hand); a description that cannot be read is
    passed over (this only keeps warnings unsaid: it never stops a launch).

    A launch file that includes ours hands its own arguments (a bringup's `config:=`, given on the command line or
    left at its default) to every file it includes: they are in our launch configurations, and are not mistakes.
    Neither the launch context nor the LaunchService keeps the tree it runs (no API gives it), so the descriptions are
    those on this call's stack: under `ros2 launch`, the CLI's own root (ros2launch's launch_a_launch_file holds it,
    the named file included with the command line's arguments, in a local of the frame that runs the service), so
    the whole tree is found wherever ours is included (directly, in a GroupAction or OpaqueFunction, or later by a
    TimerAction: checked, review22); a LaunchService driven from Python finds the descriptions being visited (launch
    visits an included description's entities inside its include) and those its callers hold."""
    import inspect

    from launch import LaunchDescription

    names, seen = set(), set()
    frame = inspect.currentframe()
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, LaunchDescription) and id(value) not in seen:
                seen.add(id(value))
                try:
                    names |= {a.name for a in value.get_launch_arguments()}
                except Exception:  # launch's own walk failed: a warning is not worth a failed launch
                    continue
        frame = frame.f_back
    return names


def _warnings(cfg: dict, host: str, tree: set = frozenset()) -> list[str]:
    """launcher.unknown_launch_arguments for `host`'s launch file, told which other launch file has an
    argument or starts a node this one does not. Names in `tree` (`declared_in_tree`: another launch file of the
    launch declares them) are not said."""
    own = {name for name, hosts, _, _ in _arguments_table() if host in hosts}
    cfg = {name: value for name, value in cfg.items() if name in own or name not in tree}
    other = "robot" if host == "operator" else "operator"
    elsewhere, node_homes = {}, {}
    if host != "all":
        for name, hosts, _, _ in _arguments_table():
            if name not in own:
                elsewhere[name] = f"{LAUNCH_FILES[other]} (the {other}'s nodes: {' and '.join(HOST_NODES[other])})"
        for node in HOST_NODES[other] + ("video_source_node",) * (host == "robot"):
            node_homes[node] = LAUNCH_FILES[other]
    return unknown_launch_arguments(cfg, own, _share("config", "avatar.yaml"), cfg["namespace"],
                                    elsewhere=elsewhere, node_homes=node_homes)


def sigint_ignored_problem() -> str:
    """What to say when this `ros2 launch` process ignores SIGINT, else "". A non-interactive shell starts its
    background jobs so (`ros2 launch ... &` in a robot's start script, a CI step), and launch then never sees a
    SIGINT: `kill -INT <pid>` (or the script's Ctrl-C) left the whole launch running, without a word (user53)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return ""
    return ("this ros2 launch ignores SIGINT, as the background jobs of a script do (`ros2 launch ... &`): a Ctrl-C or "
            f"`kill -INT {os.getpid()}` does not stop it; stop it with `kill {os.getpid()}` (SIGTERM), which its nodes "
            "follow within about a second")


def no_photo_node_line(namespace: str, robot_namespace: str) -> str:
    """What operator.launch.py says at start without photo:= (no photo_node): what the robot shows, and the `ros2 run`
    line that sends a photo later from this host, in the launch's `namespace` and to its `robot_namespace`. Before,
    nothing: the README's swap line, `ros2 param set /photo_node photo other.jpg`, then answered 'Node not found',
    which the README's troubleshooting reads as a stale daemon (user54)."""
    from gaussian_head_ros.nodes.photo_node import robot_remappings

    ns = namespace.strip("/")
    args = ([f"-r __ns:=/{ns}"] if ns else []) + [f"-r {a}:={b}" for a, b in robot_remappings(robot_namespace)]
    return ("no photo:= given: photo_node is not started, and the robot keeps the face it has (its own photo:=, its "
            "cached avatar or its placeholder); `ros2 param set /photo_node photo ...` finds no node. To send the "
            "operator's photo later, on this host: ros2 run gaussian_head_ros photo_node --ros-args "
            f"{' '.join(args + ['-p photo:=me.jpg'])} (or launch this file again with photo:=me.jpg)")


def nodes(context, host: str) -> list:
    """The node actions of `host`. Launch arguments left empty do not override the parameters file."""
    import launch.logging
    from launch.actions import GroupAction, SetEnvironmentVariable
    from launch_ros.actions import Node, PushRosNamespace

    given = context.launch_configurations
    # this launch file's own arguments only: another host's `video:=` given here starts no camera. A shell
    # leaves `photo:=~/me.jpg` as it is (it expands `~` only at the start of a word): the files are expanded here.
    cfg = {name: os.path.expanduser(given[name]) if name in PATH_ARGUMENTS else given[name]
           for name, hosts, _, _ in _arguments_table() if host in hosts}
    for arg in NAMESPACE_ARGUMENTS:  # before the warnings, which name the nodes under it
        if arg in cfg and (problem := namespace_argument_problem(arg, cfg[arg])):
            raise ValueError(f"launch argument {problem}")
    for line in _warnings(given, host, declared_in_tree()) + [p for p in (sigint_ignored_problem(),) if p]:
        launch.logging.get_logger(LAUNCH_FILES[host]).warning(line)

    if not os.path.isfile(cfg["params_file"]):  # read below: was open()'s bare '[Errno 2] No such file or directory'
        what = "a directory" if os.path.isdir(cfg["params_file"]) else "not found"
        raise ValueError(f"launch argument params_file:={cfg['params_file']} is {what}: give a parameters file (a "
                         f"copy of {_share('config', 'avatar.yaml')} with your values)")
    started = tuple(n for n in HOST_NODES[host] if n not in OPTIONAL_NODES or cfg[OPTIONAL_NODES[n]])
    if "photo_node" in HOST_NODES[host] and "photo_node" not in started:
        launch.logging.get_logger(LAUNCH_FILES[host]).info(no_photo_node_line(cfg["namespace"],
                                                                              cfg.get("robot_namespace", "")))
    for arg, shared_by in TOPIC_ARGUMENTS.items():  # as launch_flag: refused here, named, before any node starts
        if arg in cfg and (problem := topic_argument_problem(arg, cfg[arg], shared_by)):
            raise ValueError(f"launch argument {problem}")
    if problem := log_level_problem(cfg["log_level"]):  # every node would die at start with rcl's parse error
        raise ValueError(f"launch argument {problem}")
    if problem := domain_id_problem():  # every node would die at start in Fast DDS's words
        raise ValueError(problem)
    composed = launch_flag("composed", cfg.get("composed", ""))
    if discovery_off() and not (host == "all" and composed and not cfg.get("video", "")):  # each process alone (user48)
        launch.logging.get_logger(LAUNCH_FILES[host]).warning(
            "ROS_AUTOMATIC_DISCOVERY_RANGE=OFF: each node finds no node of another process, on this host or another "
            "(ROS_STATIC_PEERS included); unset it, or set LOCALHOST (one host) or SUBNET (operator and robot)"
            + ("; composed:=true runs the three nodes in one process" if host == "all" else ""))
    overrides: dict = {}  # node -> the parameters that launch arguments set
    for arg, targets in ARGUMENT_PARAMETERS.items():
        for node, name in targets:
            if node in started and cfg.get(arg, "") != "":
                overrides.setdefault(node, {})[name] = cfg[arg]
    video = cfg.get("video", "")
    if video:  # loop:=1 or yes played the file once, and loop:=ture too, without a word (user21, s21)
        overrides["video_source_node"] = {"source": video, "loop": launch_flag("loop", cfg["loop"]) is not False}
    sim_time = launch_flag("use_sim_time", cfg["use_sim_time"])
    if sim_time is not None:  # a parameter every ROS node has (rclpy declares it): each node of this launch
        for node in started + ("video_source_node",) * bool(video):
            overrides.setdefault(node, {})["use_sim_time"] = sim_time
    ns = "/" + cfg["namespace"].strip("/") if cfg["namespace"].strip("/") else ""
    for line in params_sections_for_no_node(cfg["params_file"], [f"{ns}/{n}" for n in started]
                                            + [f"{ns}/video_source_node"] * bool(video)):
        launch.logging.get_logger(LAUNCH_FILES[host]).warning(line)
    params_file = node_params_file(cfg["params_file"], overrides)
    ros_args = log_level_arguments(cfg["log_level"], cfg["namespace"], started + ("video_source_node",))
    camera = [("camera/image_raw", cfg["camera_topic"])] if "camera_topic" in cfg else []
    control = [("face_control", cfg["control_topic"])]
    remaps = {"tracker_node": camera + control, "render_node": control}
    if cfg.get("robot_namespace", ""):
        from gaussian_head_ros.nodes.photo_node import robot_remappings

        remaps["photo_node"] = robot_remappings(cfg["robot_namespace"])
    actions = [PushRosNamespace(cfg["namespace"])] if cfg["namespace"] else []
    actions.append(SetEnvironmentVariable(LAUNCHED_BY_ENV, str(os.getpid())))  # common.end_with_parent
    # glibc reads MALLOC_ARENA_MAX at the process's start: the whole limit, where common.limit_malloc_arenas at
    # start_process comes after the imports' threads (s58: 12 photos in one process, RSS 388 -> 414 MB and flat from the
    # 4th with it, 393 -> 454 still creeping with the mallopt alone)
    actions += [SetEnvironmentVariable(k, v) for k, v in malloc_arena_env().items()]
    if cfg["fastdds_profile"]:
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", cfg["fastdds_profile"]))
    if composed:  # composed:=ture started one process per node, silently
        # No `name=` here: a node name given to a process renames every node in it.
        pipeline = ["--host", host, "--params-file", params_file, "--params-file-said", "--control-topic",
                    cfg["control_topic"]]
        if camera:
            pipeline += ["--camera-topic", cfg["camera_topic"]]
        actions.append(Node(package="gaussian_head_ros", executable="avatar_pipeline", arguments=pipeline,
                            ros_arguments=ros_args, output="screen"))
    else:
        actions += [Node(package="gaussian_head_ros", executable=name, name=name, parameters=[params_file],
                         remappings=remaps.get(name, []), ros_arguments=ros_args, output="screen")
                    for name in started]
    if video:
        actions.append(Node(package="gaussian_head_ros", executable="video_source_node", name="video_source_node",
                            parameters=[params_file], remappings=camera, ros_arguments=ros_args, output="screen"))
    return [GroupAction(actions)]
