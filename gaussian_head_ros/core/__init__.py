"""The ROS-free core. Nothing under this package imports rclpy or message types."""
