"""The three gaussian_head_ros nodes: photo -> avatar, camera -> face control, avatar + control -> face display.

  ros2 launch gaussian_head_ros avatar.launch.py
  ros2 launch gaussian_head_ros avatar.launch.py photo:=/path/me.jpg video:=/path/clip.mp4
  ros2 launch gaussian_head_ros avatar.launch.py composed:=true backend:=cpu

Then view `face_display/image_raw` (rqt_image_view, Foxglove) and swap operators by publishing a new
photo on `operator/photo` (sensor_msgs/Image) or `operator/photo/compressed`.
"""

import os

import launch.logging
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction, SetEnvironmentVariable
from launch_ros.actions import Node, PushRosNamespace

# (the demo binds its parameters files the same way)
from gaussian_head_ros.nodes.launcher import node_params_file, unknown_launch_arguments


# Launch arguments that set a node parameter: argument -> (node, parameter). test/test_settings.py checks
# them against the nodes' parameter descriptors (core/settings.py).
ARGUMENT_PARAMETERS = {
    "photo": ("reconstruction_node", "photo_path"),
    "operator_id": ("reconstruction_node", "operator_id"),
    "reconstructor": ("reconstruction_node", "backend"),
    "checkpoint": ("reconstruction_node", "checkpoint"),
    "backend": ("render_node", "backend"),
    "device": ("render_node", "device"),
}


def generate_launch_description():
    return LaunchDescription(_arguments() + [OpaqueFunction(function=_nodes)])


def _arguments() -> list:
    share = get_package_share_directory("gaussian_head_ros")
    return [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "avatar.yaml"),
                              description="YAML file with the parameters of all nodes"),
        DeclareLaunchArgument("photo", default_value="",
                              description="operator photo reconstructed at start-up (empty: the last avatar again, from the "
                                          "reconstruction_node's cache_path, and wait for operator/photo)"),
        DeclareLaunchArgument("operator_id", default_value="",
                              description="operator id for the start-up photo (empty: from the file name)"),
        DeclareLaunchArgument("camera_topic", default_value="camera/image_raw",
                              description="the operator camera's image topic the tracker reads (its camera_info beside it)"),
        DeclareLaunchArgument("video", default_value="",
                              description="play this video file (or /dev/videoN) as the camera; empty: use your camera driver"),
        DeclareLaunchArgument("loop", default_value="true", description="loop the video file"),
        DeclareLaunchArgument("backend", default_value="",
                              description="render backend: auto (gsplat on CUDA, else cpu), gsplat, cpu or torch; "
                                          "empty: the parameters file's"),
        DeclareLaunchArgument("device", default_value="",
                              description="torch device of the torch backend (cpu, cuda:N); empty: the parameters file's"),
        DeclareLaunchArgument("reconstructor", default_value="",
                              description="reconstruction backend: mesh_fit (training-free) or rar (learned); "
                                          "empty: the parameters file's"),
        DeclareLaunchArgument("checkpoint", default_value="", description="RAR checkpoint for reconstructor:=rar"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace for all nodes and topics"),
        DeclareLaunchArgument("composed", default_value="false",
                              description="run the nodes in one process (avatar_pipeline) instead of three"),
        DeclareLaunchArgument("fastdds_profile", default_value=os.path.join(share, "config", "fastdds.xml"),
                              description="Fast DDS profile (large shared-memory segments for images); empty: defaults"),
        DeclareLaunchArgument("log_level", default_value="info", description="ros log level"),
    ]


def _nodes(context):
    """The node actions. Launch arguments left empty do not override the parameters file."""
    cfg = context.launch_configurations
    shipped = os.path.join(get_package_share_directory("gaussian_head_ros"), "config", "avatar.yaml")
    for line in unknown_launch_arguments(cfg, {a.name for a in _arguments()}, shipped, cfg["namespace"]):
        launch.logging.get_logger("avatar.launch.py").warning(line)

    def given(**kv):
        return {k: v for k, v in kv.items() if v != ""}

    overrides: dict = {}  # node -> the parameters that launch arguments set
    for arg, (node, name) in ARGUMENT_PARAMETERS.items():
        overrides.setdefault(node, {}).update(given(**{name: cfg[arg]}))
    if cfg["video"]:
        overrides["video_source_node"] = {"source": cfg["video"], "loop": cfg["loop"].lower() == "true"}
    params_file = node_params_file(cfg["params_file"], overrides)
    ros_args = ["--log-level", cfg["log_level"]]
    camera = [("camera/image_raw", cfg["camera_topic"])]
    actions = [PushRosNamespace(cfg["namespace"])] if cfg["namespace"] else []
    if cfg["fastdds_profile"]:
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", cfg["fastdds_profile"]))
    if cfg["composed"].lower() in ("true", "1", "yes"):
        # No `name=` here: a node name given to a process renames every node in it.
        actions.append(Node(package="gaussian_head_ros", executable="avatar_pipeline",
                            arguments=["--params-file", params_file, "--camera-topic", cfg["camera_topic"]],
                            ros_arguments=ros_args, output="screen"))
    else:
        actions += [Node(package="gaussian_head_ros", executable=name, name=name, parameters=[params_file],
                         remappings=camera if name == "tracker_node" else [], ros_arguments=ros_args, output="screen")
                    for name in ("reconstruction_node", "tracker_node", "render_node")]
    if cfg["video"]:
        actions.append(Node(package="gaussian_head_ros", executable="video_source_node", name="video_source_node",
                            parameters=[params_file], remappings=camera, ros_arguments=ros_args, output="screen"))
    return [GroupAction(actions)]
