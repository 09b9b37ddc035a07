"""Thin ROS 2 nodes: parameters, message conversion (conversions.py), and calls into core."""
