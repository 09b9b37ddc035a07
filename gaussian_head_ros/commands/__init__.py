"""Subcommands of `gaussian-head` (see gaussian_head_ros/cli.py)."""
