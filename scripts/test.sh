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
# One process by default. GHR_TEST_WORKERS=2 runs it on two pytest-xdist workers, each module whole on one of them
# (--dist loadfile: a module's node processes and fixtures are made once): pytest 623 s instead of ~1000 s on CI's
# 2-core machine, but the node tests that time a stream (test_end_to_end's swap gap, a restart's latched avatar, a
# parameter service's answer) then share the cores with the other worker and failed 3 of them in 1 of 2 fresh-clone
# runs (s43). `-n N` in the arguments wins.
exec pytest test -p no:cacheprovider -n "${GHR_TEST_WORKERS:-0}" --dist loadfile "$@"
