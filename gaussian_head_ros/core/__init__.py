"""The ROS-free core. Nothing under this package imports rclpy or message types."""

from gaussian_head_ros.core.jit import configure_numba

configure_numba()  # before any module of ours defines a numba kernel (see core/jit.py)
