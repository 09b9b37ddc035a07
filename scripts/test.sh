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
exec pytest test -p no:cacheprovider "$@"
