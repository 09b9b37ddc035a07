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
# Two workers (pytest-xdist), each module whole on one of them (--dist loadfile: a module's node processes and
# fixtures are made once, as in one process): about half the suite's time is a test waiting on another process or
# on DDS, and CI's machine has 2 cores. GHR_TEST_WORKERS=0 runs it in this one process; `-n N` in the arguments wins.
exec pytest test -p no:cacheprovider -n "${GHR_TEST_WORKERS:-2}" --dist loadfile "$@"
