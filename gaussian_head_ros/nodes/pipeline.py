"""avatar_pipeline: the three nodes (and optionally a video source) composed in one process.

For set-ups without `ros2 launch` (the pip-only install) and for robots that prefer one process. The
nodes are the same classes as the separate executables, read the same parameters file, and talk over
the same topics, so anything else on the ROS graph sees no difference. `--host robot` runs only the
robot's two (reconstruction and render), `--host operator` only the tracker (and the video source, and with
`--photo` the photo_node that sends the operator's photo to the robot), as robot.launch.py and operator.launch.py
do (docs/DEPLOYMENT.md). `--photo` is a file on this host: the reconstruction node's `photo_path` where it runs
here (all, robot), photo_node's `photo` on the operator's host. The `--params-file` is read as the launch files
read theirs: a node name without a leading '/' (`render_node:`) applies in any namespace (`--ros-args -r
__ns:=/robot1`; launcher.node_params_file), and a section that names none of the nodes started (`/render_node:`
under a namespace) or a misspelt node (`rendr_node:`) is warned about (launcher.params_sections_for_no_node).

  avatar_pipeline [--host all|operator|robot] [--params-file config/avatar.yaml] [--photo me.jpg]
                  [--video clip.mp4] [--camera-transport compressed] [--backend cpu] [--ros-args ...]
"""

from __future__ import annotations

import argparse
import os
import sys

import rclpy
from rclpy.parameter import Parameter

from gaussian_head_ros.nodes.common import run_nodes, say_fastdds_profile, start_process
from gaussian_head_ros.nodes.launcher import (TOPIC_ARGUMENTS, namespace_argument_problem, node_params_file,
                                              params_sections_for_no_node, topic_argument_problem)


def parse_args(argv: list[str]):
    ros_args: list[str] = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="avatar_pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("--params-file", default="", help="parameters of all nodes (default: the package's config/avatar.yaml)")
    p.add_argument("--params-file-said", action="store_true",
                   help="do not warn about the parameters file's sections (a launch file has said them)")
    p.add_argument("--photo", default="", help="operator photo: reconstructed at start-up (all, robot), or sent to "
                                               "the robot on operator/photo/compressed (--host operator)")
    p.add_argument("--video", default="", help="play this file (or /dev/videoN) as the camera")
    p.add_argument("--loop", default="true", choices=["true", "false"], help="loop the video file")
    p.add_argument("--backend", default="", help="render backend (auto, cpu, torch, gsplat); default: params file")
    p.add_argument("--reconstructor", default="", help="reconstruction backend (mesh_fit, rar); default: params file")
    p.add_argument("--camera-topic", default="camera/image_raw", help="the operator camera topic")
    p.add_argument("--camera-transport", default="", choices=["", "raw", "compressed"],
                   help="raw: sensor_msgs/Image on the camera topic; compressed: sensor_msgs/CompressedImage on "
                        "<camera topic>/compressed; default: params file")
    p.add_argument("--control-topic", default="face_control",
                   help="the FaceControl topic the tracker publishes and the render node follows")
    p.add_argument("--robot-namespace", default="",
                   help="--host operator: the namespace the robot was started in (e.g. robot1); the photo is sent "
                        "to that robot and its verdict read from it ('/': a robot in the root namespace)")
    p.add_argument("--host", default="all", choices=["all", "operator", "robot"],
                   help="the nodes of one host: operator (tracker; --video) or robot (reconstruction, render)")
    args = p.parse_args(argv)
    for name in ("params_file", "photo", "video"):  # `--photo=~/me.jpg`: the shell leaves that `~` alone
        setattr(args, name, os.path.expanduser(getattr(args, name)))
    misplaced = {"operator": ("backend", "reconstructor"),
                 "robot": ("video", "camera_topic", "camera_transport", "robot_namespace"),
                 "all": ("robot_namespace",)}
    for name, shared_by in TOPIC_ARGUMENTS.items():
        if problem := topic_argument_problem(f"--{name.replace('_', '-')}", getattr(args, name), shared_by):
            p.error(problem.replace(":=", " ", 1))
    if problem := namespace_argument_problem("--robot-namespace", args.robot_namespace):
        p.error(problem.replace(":=", " ", 1))
    defaults = vars(p.parse_args([]))
    for name in misplaced.get(args.host, ()):
        if getattr(args, name) != defaults[name]:
            other = "robot" if args.host == "operator" else "operator"
            p.error(f"--{name.replace('_', '-')} is for the {other}'s nodes, not --host {args.host}'s")
    return args, ros_args


def default_params_file() -> str:
    from ament_index_python.packages import get_package_share_directory

    return os.path.join(get_package_share_directory("gaussian_head_ros"), "config", "avatar.yaml")


def main(argv: list[str] | None = None) -> int:
    """avatar_pipeline: 2 when the parameters file is missing or not one rcl would read (bin/avatar_pipeline exits
    with it); otherwise the nodes run until Ctrl-C or shutdown and the process ends there (common.run_nodes never
    returns)."""
    args, ros_args = parse_args(list(sys.argv[1:] if argv is None else argv))
    params_file = args.params_file or default_params_file()
    if not os.path.isfile(params_file):
        print(f"avatar_pipeline: parameters file {params_file} not found", file=sys.stderr)
        return 2
    try:  # its node names for any namespace, as the launch files give theirs (rcl: the root namespace only)
        any_namespace = node_params_file(params_file, {})
    except ValueError as e:
        print(f"avatar_pipeline: cannot start: {e}", file=sys.stderr)
        return 2
    # BLAS limited to 1 thread as in every live node (the reconstruction's one-off work shares the process)
    dds = start_process(["avatar_pipeline", "--ros-args", "--params-file", any_namespace] + ros_args, blas_threads=1)

    say_fastdds_profile(rclpy.logging.get_logger("avatar_pipeline"), dds)
    from gaussian_head_ros.nodes.photo_node import PhotoNode, robot_remappings
    from gaussian_head_ros.nodes.reconstruction_node import ReconstructionNode
    from gaussian_head_ros.nodes.render_node import RenderNode
    from gaussian_head_ros.nodes.tracker_node import TrackerNode
    from gaussian_head_ros.nodes.video_source_node import VideoSourceNode

    def overrides(**kv):
        return [Parameter(k, value=v) for k, v in kv.items() if v not in ("", None)]

    camera_remap = ["--ros-args", "-r", f"camera/image_raw:={args.camera_topic}"]
    control_remap = ["-r", f"face_control:={args.control_topic}"] if args.control_topic != "face_control" else []
    robot, operator = args.host in ("all", "robot"), args.host in ("all", "operator")

    def make(nodes: list) -> None:
        if robot:
            nodes.append(ReconstructionNode(parameter_overrides=overrides(photo_path=args.photo,
                                                                          backend=args.reconstructor)))
        if operator:
            nodes.append(TrackerNode(cli_args=camera_remap + control_remap,
                                     parameter_overrides=overrides(image_transport=args.camera_transport)))
        if robot:
            nodes.append(RenderNode(cli_args=["--ros-args"] + control_remap if control_remap else None,
                                    parameter_overrides=overrides(backend=args.backend)))
        if args.host == "operator" and args.photo:
            robot_remap = [x for a, b in robot_remappings(args.robot_namespace) for x in ("-r", f"{a}:={b}")]
            nodes.append(PhotoNode(cli_args=["--ros-args"] + robot_remap if robot_remap else None,
                                   parameter_overrides=overrides(photo=args.photo)))
        if args.video:
            nodes.append(VideoSourceNode(cli_args=camera_remap, parameter_overrides=overrides(
                source=args.video, loop=args.loop == "true")))
        if not args.params_file_said:
            for line in params_sections_for_no_node(params_file, [n.get_fully_qualified_name() for n in nodes]):
                rclpy.logging.get_logger("avatar_pipeline").warning(line)

    run_nodes(make, threads=6)
