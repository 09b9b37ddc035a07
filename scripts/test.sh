#!/usr/bin/env bash
# Runs the whole test suite in the built environment. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source env.sh
# Tests find ../shared/data beside the checkout; say so when it is missing rather than skip silently.
if [ ! -d ../shared/data ]; then
  echo "[test] note: ../shared/data not found; tests that need real photos and clips will be skipped" >&2
fi
# The real ros2 CLI, `ros2 launch` and launch_pytest for test/test_launch.py (from ../shared/tools).
if ros2cli=$(bash scripts/ros2cli.sh); then
  set +u  # colcon's setup scripts read unset variables
  # shellcheck disable=SC1090
  source "$ros2cli"
  set -u
else
  echo "[test] note: the launch tests will be skipped (no ros2 CLI)" >&2
fi
exec pytest test -p no:cacheprovider "$@"
