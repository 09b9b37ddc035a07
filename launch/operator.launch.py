"""The operator's host (a laptop with a camera): camera/image_raw -> tracker_node -> face_control, which the
robot's render node follows (robot.launch.py on the robot; docs/DEPLOYMENT.md); with `photo:=`, photo_node
sends the operator's photo (a file on this host) to the robot's reconstruction node and logs its verdict.

  ros2 launch gaussian_head_ros operator.launch.py                          # with your camera driver
  ros2 launch gaussian_head_ros operator.launch.py video:=/dev/video0       # no driver: the package's video source
  ros2 launch gaussian_head_ros operator.launch.py camera_topic:=/usb_cam/image_raw
  ros2 launch gaussian_head_ros operator.launch.py photo:=~/me.jpg          # and send me.jpg to the robot
  ros2 param set /photo_node photo ~/other.jpg                              # later: swap the operator
"""

from gaussian_head_ros.nodes.launch_files import launch_description


def generate_launch_description():
    return launch_description("operator")
