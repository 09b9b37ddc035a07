#!/usr/bin/env bash
# The real `ros2` CLI, `ros2 launch` and launch_pytest for the launch tests (test tooling, never a
# dependency of the product): installed once from ../shared/tools/ros2cli into a cache prefix beside
# the virtual environment (idempotent, ~25 s the first time). Run with the project's environment active.
# Prints the prefix's setup.bash on success; says why and exits 1 when the tools are not there.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=../shared/tools/ros2cli
PREFIX=${GHR_ROS2CLI:-${XDG_CACHE_HOME:-$HOME/.cache}/gaussian_head_ros/ros2cli}
if [ ! -f "$TOOLS/install.sh" ]; then
  echo "ros2 CLI not installed: $TOOLS/install.sh not found beside the checkout" >&2
  exit 1
fi
mkdir -p "$PREFIX"
# One installer at a time (several checkouts share the prefix).
flock "$PREFIX/.lock" bash "$TOOLS/install.sh" "$PREFIX" > "$PREFIX/install.log" 2>&1 \
  || { tail -n 20 "$PREFIX/install.log" >&2; echo "ros2 CLI install failed (log: $PREFIX/install.log)" >&2; exit 1; }
echo "$PREFIX/setup.bash"
