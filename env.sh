# Source this file (bash or zsh) to get the built package, rclpy and `gaussian-head` in a shell:
#   source env.sh
# colcon's and venv's scripts read unset variables: lift `set -u` while sourcing them.
case $- in *u*) _ghr_nounset=1; set +u ;; *) _ghr_nounset= ;; esac
_ghr_root="$(cd "$(dirname "${BASH_SOURCE[0]:-${(%):-%x}}")" && pwd)"
if [ ! -f "$_ghr_root/install/setup.bash" ] || [ ! -x "$_ghr_root/.venv/bin/python" ]; then
  echo "gaussian_head_ros is not set up yet: run 'make setup' in $_ghr_root" >&2
  [ -n "$_ghr_nounset" ] && set -u
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_ghr_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
. "$_ghr_root/install/setup.bash"
# Fast DDS: shared-memory transport with segments large enough for 512x512 images.
if [ -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}${FASTRTPS_DEFAULT_PROFILES_FILE:-}" ] && [ -f "$_ghr_root/config/fastdds.xml" ]; then
  export FASTDDS_DEFAULT_PROFILES_FILE="$_ghr_root/config/fastdds.xml"
fi
unset _ghr_root
[ -n "$_ghr_nounset" ] && set -u
unset _ghr_nounset
