"""The three gaussian_head_ros nodes: photo -> avatar, camera -> face control, avatar + control -> face display.

  ros2 launch gaussian_head_ros avatar.launch.py
  ros2 launch gaussian_head_ros avatar.launch.py photo:=/path/me.jpg video:=/path/clip.mp4
  ros2 launch gaussian_head_ros avatar.launch.py composed:=true backend:=cpu

Then view `face_display/image_raw` (rqt_image_view, Foxglove) and swap operators by publishing a new
photo on `operator/photo` (sensor_msgs/Image) or `operator/photo/compressed`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction, SetEnvironmentVariable
from launch_ros.actions import Node, PushRosNamespace


def generate_launch_description():
    share = get_package_share_directory("gaussian_head_ros")

    args = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "avatar.yaml"),
                              description="YAML file with the parameters of all nodes"),
        DeclareLaunchArgument("photo", default_value="",
                              description="operator photo reconstructed at start-up (empty: wait for operator/photo)"),
        DeclareLaunchArgument("operator_id", default_value="",
                              description="operator id for the start-up photo (empty: from the file name)"),
        DeclareLaunchArgument("camera_topic", default_value="camera/image_raw",
                              description="the operator camera's image topic the tracker reads"),
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

    return LaunchDescription(args + [OpaqueFunction(function=_nodes)])


def _nodes(context):
    """The node actions. Launch arguments left empty do not override the parameters file."""
    cfg = context.launch_configurations
    params_file = cfg["params_file"]

    def given(**kv):
        return {k: v for k, v in kv.items() if v != ""}

    ros_args = ["--log-level", cfg["log_level"]]
    camera = [("camera/image_raw", cfg["camera_topic"])]
    recon = given(photo_path=cfg["photo"], backend=cfg["reconstructor"], checkpoint=cfg["checkpoint"],
                  operator_id=cfg["operator_id"])
    render = given(backend=cfg["backend"], device=cfg["device"])
    actions = [PushRosNamespace(cfg["namespace"])] if cfg["namespace"] else []
    if cfg["fastdds_profile"]:
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", cfg["fastdds_profile"]))
    if cfg["composed"].lower() in ("true", "1", "yes"):
        argv = ["--params-file", params_file, "--camera-topic", cfg["camera_topic"]]
        for flag, key in (("--photo", "photo"), ("--backend", "backend"), ("--reconstructor", "reconstructor")):
            if cfg[key]:
                argv += [flag, cfg[key]]
        actions.append(Node(package="gaussian_head_ros", executable="avatar_pipeline", name="avatar_pipeline",
                            arguments=argv, ros_arguments=ros_args, output="screen"))
    else:
        actions += [
            Node(package="gaussian_head_ros", executable="reconstruction_node", name="reconstruction_node",
                 parameters=[params_file, recon], ros_arguments=ros_args, output="screen"),
            Node(package="gaussian_head_ros", executable="tracker_node", name="tracker_node",
                 parameters=[params_file], remappings=camera, ros_arguments=ros_args, output="screen"),
            Node(package="gaussian_head_ros", executable="render_node", name="render_node",
                 parameters=[params_file, render], ros_arguments=ros_args, output="screen"),
        ]
    if cfg["video"]:
        actions.append(Node(package="gaussian_head_ros", executable="video_source_node", name="video_source_node",
                            parameters=[params_file, {"source": cfg["video"], "loop": cfg["loop"].lower() == "true"}],
                            remappings=camera, ros_arguments=ros_args, output="screen"))
    return [GroupAction(actions)]
