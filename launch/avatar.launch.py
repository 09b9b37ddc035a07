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
from launch.actions import DeclareLaunchArgument, GroupAction, SetEnvironmentVariable
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node, PushRosNamespace


def generate_launch_description():
    share = get_package_share_directory("gaussian_head_ros")
    arg = LaunchConfiguration

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
        DeclareLaunchArgument("backend", default_value="auto",
                              description="render backend: auto (gsplat on CUDA, else cpu), gsplat, cpu or torch"),
        DeclareLaunchArgument("device", default_value="cuda:0", description="torch device for the gsplat/torch backends"),
        DeclareLaunchArgument("reconstructor", default_value="mesh_fit",
                              description="reconstruction backend: mesh_fit (training-free) or rar (learned)"),
        DeclareLaunchArgument("checkpoint", default_value="", description="RAR checkpoint for reconstructor:=rar"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace for all nodes and topics"),
        DeclareLaunchArgument("composed", default_value="false",
                              description="run the nodes in one process (avatar_pipeline) instead of three"),
        DeclareLaunchArgument("fastdds_profile", default_value=os.path.join(share, "config", "fastdds.xml"),
                              description="Fast DDS profile (large shared-memory segments for images); empty: defaults"),
        DeclareLaunchArgument("log_level", default_value="info", description="ros log level"),
    ]

    ros_args = ["--log-level", arg("log_level")]
    recon_params = [arg("params_file"), {"photo_path": arg("photo"), "backend": arg("reconstructor"),
                                         "checkpoint": arg("checkpoint"), "operator_id": arg("operator_id")}]
    render_params = [arg("params_file"), {"backend": arg("backend"), "device": arg("device")}]
    tracker_remaps = [("camera/image_raw", arg("camera_topic"))]
    separate = UnlessCondition(arg("composed"))
    with_video = IfCondition(PythonExpression(["'", arg("video"), "' != ''"]))

    nodes = GroupAction([
        PushRosNamespace(arg("namespace")),
        Node(package="gaussian_head_ros", executable="reconstruction_node", name="reconstruction_node",
             parameters=recon_params, ros_arguments=ros_args, output="screen", condition=separate),
        Node(package="gaussian_head_ros", executable="tracker_node", name="tracker_node",
             parameters=[arg("params_file")], remappings=tracker_remaps, ros_arguments=ros_args,
             output="screen", condition=separate),
        Node(package="gaussian_head_ros", executable="render_node", name="render_node",
             parameters=render_params, ros_arguments=ros_args, output="screen", condition=separate),
        Node(package="gaussian_head_ros", executable="avatar_pipeline", name="avatar_pipeline",
             arguments=["--params-file", arg("params_file"), "--photo", arg("photo"), "--backend", arg("backend"),
                        "--reconstructor", arg("reconstructor"), "--camera-topic", arg("camera_topic")],
             output="screen", condition=IfCondition(arg("composed"))),
        Node(package="gaussian_head_ros", executable="video_source_node", name="video_source_node",
             parameters=[arg("params_file"), {"source": arg("video"), "loop": arg("loop")}],
             remappings=[("camera/image_raw", arg("camera_topic"))], output="screen", condition=with_video),
    ])
    env = SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", arg("fastdds_profile"))
    return LaunchDescription(args + [env, nodes])
