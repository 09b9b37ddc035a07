"""gaussian_head_ros: one portrait photo -> a drivable 3D Gaussian head avatar, driven in real time.

`gaussian_head_ros.core` holds everything that works without ROS (avatar format, reconstruction,
tracking, driving, rendering, the learned model and its training). `gaussian_head_ros.nodes` holds
the thin ROS 2 nodes; `gaussian_head_ros.msg` is generated from msg/*.msg by the colcon build.
"""

from pkgutil import extend_path

# Imported from a source checkout (the repo root on sys.path), this package still finds the message
# module that the colcon build generated into the install space, and vice versa.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
