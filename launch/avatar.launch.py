"""The three gaussian_head_ros nodes on one host: photo -> avatar, camera -> face control, avatar + control
-> face display. Operator and robot on different hosts: operator.launch.py and robot.launch.py.

  ros2 launch gaussian_head_ros avatar.launch.py
  ros2 launch gaussian_head_ros avatar.launch.py photo:=/path/me.jpg video:=/path/clip.mp4
  ros2 launch gaussian_head_ros avatar.launch.py composed:=true backend:=cpu

Then view `face_display/image_raw` (rqt_image_view, Foxglove) and swap operators by publishing a new
photo on `operator/photo` (sensor_msgs/Image) or `operator/photo/compressed`.
"""

from gaussian_head_ros.nodes.launch_files import launch_description


def generate_launch_description():
    return launch_description("all")
