"""The robot's host (with the face display): reconstruction_node (photo -> avatar, kept on the robot) and
render_node (avatar + the operator's face_control -> face_display/image_raw). The operator's host runs
operator.launch.py (docs/DEPLOYMENT.md).

  ros2 launch gaussian_head_ros robot.launch.py                        # the photo from operator.launch.py photo:=
  ros2 launch gaussian_head_ros robot.launch.py photo:=/path/me.jpg    # a photo on the robot's own disk
  ros2 launch gaussian_head_ros robot.launch.py composed:=true backend:=cpu
"""

from gaussian_head_ros.nodes.launch_files import launch_description


def generate_launch_description():
    return launch_description("robot")
