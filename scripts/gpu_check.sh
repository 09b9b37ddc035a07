#!/usr/bin/env bash
# The GPU checks in one command, for a CUDA machine with PyTorch but without ROS or MediaPipe (a lent one):
# gsplat's CUDA build (timed, whole log kept), the rasterizer tests (gsplat against the torch reference among
# them), each backend's difference from the reference on real avatars, and `gaussian-head bench` with gsplat,
# torch on cuda and the cpu backend in the same run, then torch on the CPU (all cores) as the reference.
#
#   bash scripts/gpu_check.sh OUT_DIR AVATAR.ply [AVATAR.ply ...]
#
# Avatars: `gaussian-head reconstruct photo -o a.ply` on a machine with MediaPipe (keep a.driving.npz beside
# a.ply); the first one is also benched. The package runs from a copy of this checkout (nothing is written into
# it); the cpu backend's library is taken from the checkout or its install space, else built with g++.
# Environment: PYTHON (python3); GSPLAT_WHEELS=folder: installs its wheels (--no-index --no-deps) into a temp
# folder first, for a machine without gsplat or a network; COMPILE_TIMEOUT_S (420): limit on gsplat's first
# build (torch.utils.cpp_extension, MAX_JOBS = all cores, TORCH_CUDA_ARCH_LIST = this GPU's unless set);
# SIZES ("512 1024"), GAUSSIANS ("60000 100000"): the bench's. Without CUDA every step still runs, on the CPU.
# Writes to OUT_DIR (8 files at most): check.log (everything, with the machine), compile.log, pytest.log,
# bench.json, bench_torch_cpu.json, compare.json, compare_<avatar>.png (first two avatars).
set -uo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
OUT=$(realpath -m "$1"); shift
AVATARS=()
for a in "$@"; do AVATARS+=("$(realpath "$a")") || exit 2; done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/check.log") 2>&1
export PYTHONUNBUFFERED=1
NPROC=$(nproc)
export MAX_JOBS=${MAX_JOBS:-$NPROC}
TMP=$(mktemp -d /tmp/ghr_gpu_check.XXXXXX)
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$TMP/torch_extensions}
start=$(date +%s)
step() { echo; echo "== $(( $(date +%s) - start )) s: $*"; }

step "machine"
date -u
nvidia-smi || echo "no nvidia-smi"
uname -srm; grep -m1 "model name" /proc/cpuinfo; echo "$NPROC CPUs"; free -g | head -2
command -v nvcc >/dev/null && nvcc --version | tail -2
g++ --version | head -1
"$PY" - <<'EOF'
import sys, numpy, torch
print("python", sys.version.split()[0], "numpy", numpy.__version__, "torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("GPU", p.name, f"{p.total_memory / 2**30:.0f} GiB", f"capability {p.major}.{p.minor}", p.multi_processor_count, "SMs")
EOF
CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))")
if [ "$CUDA" = 1 ] && [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    TORCH_CUDA_ARCH_LIST=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
fi
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-}

step "the package (a copy) and the cpu backend's library"
W=$TMP/src
mkdir -p "$W"
tar -C "$ROOT" --exclude=__pycache__ -cf - gaussian_head_ros test scripts pytest.ini | tar -C "$W" -xf -
LIB=gaussian_head_ros/core/render/libghr_raster.so
if [ ! -f "$W/$LIB" ]; then
    found=$(ls "$ROOT"/install/gaussian_head_ros/lib/python3*/site-packages/$LIB 2>/dev/null | head -1)
    if [ -n "$found" ]; then
        cp "$found" "$W/$LIB"
    else
        echo "building $LIB with g++"
        S=$ROOT/src/raster
        F=(-std=c++20 -O3 -fno-math-errno -fno-trapping-math -Wno-psabi -fPIC -pthread)
        objs=("$TMP/raster.o" "$TMP/generic.o")
        g++ "${F[@]}" -c "$S/raster.cpp" -o "$TMP/raster.o" $([ "$(uname -m)" = x86_64 ] && echo -DGHR_X86) &
        g++ "${F[@]}" -c "$S/kernel_generic.cpp" -o "$TMP/generic.o" &
        if [ "$(uname -m)" = x86_64 ]; then
            g++ "${F[@]}" -DGHR_X86 -mavx2 -mfma -c "$S/kernel_avx2.cpp" -o "$TMP/avx2.o" &
            g++ "${F[@]}" -DGHR_X86 -mavx512f -mavx512dq -mavx512vl -mavx512bw -mavx2 -mfma -c "$S/kernel_avx512.cpp" \
                -o "$TMP/avx512.o" &
            objs+=("$TMP/avx2.o" "$TMP/avx512.o")
        fi
        wait
        g++ -shared -pthread "${objs[@]}" -o "$W/$LIB" || echo "the cpu backend's library did not build"
    fi
fi
export PYTHONPATH=$W

step "gsplat: install, then its CUDA build (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS)"
GS_SITE=""
if ! "$PY" -c "import gsplat" 2>/dev/null && [ -n "${GSPLAT_WHEELS:-}" ]; then
    # beside the build cache: the same source paths next time, so a second run finds the build up to date
    GS_SITE=$TORCH_EXTENSIONS_DIR/site
    [ -d "$GS_SITE/gsplat" ] || "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target "$GS_SITE" "$GSPLAT_WHEELS"/*.whl || GS_SITE=""
fi
export PYTHONPATH=$W${GS_SITE:+:$GS_SITE}
"$PY" -c "import gsplat; print('gsplat', gsplat.__version__, gsplat.__file__)" || echo "no gsplat"
t0=$(date +%s.%N)
VERBOSE=1 timeout "${COMPILE_TIMEOUT_S:-420}" "$PY" -c "
from gsplat.cuda._backend import _C
assert _C is not None, 'gsplat has no CUDA extension (no CUDA toolkit?)'
print('gsplat CUDA extension:', _C.__file__)" >"$OUT/compile.log" 2>&1
rc=$?
echo "gsplat build: exit $rc after $("$PY" -c "import time; print(round(time.time() - $t0, 1))") s (log: compile.log)"
tail -n 25 "$OUT/compile.log"
if [ $rc != 0 ] && [ -n "$GS_SITE" ]; then
    export PYTHONPATH=$W  # leave the wheel out: later steps must not start the build again
fi
"$PY" - <<'EOF'
import time
from gaussian_head_ros.core.render import backend_available, resolve_backend
t = time.perf_counter()
print("gsplat available (compiled module loaded, one test frame):", backend_available("gsplat"),
      f"{time.perf_counter() - t:.1f} s; auto ->", resolve_backend("auto"))
EOF
GS=$("$PY" -c "from gaussian_head_ros.core.render import backend_available as a; print('gsplat' if a('gsplat') else '')")
DEV=$([ "$CUDA" = 1 ] && echo cuda || echo cpu)

SIZES=${SIZES:-512 1024}
GAUSSIANS=${GAUSSIANS:-60000 100000}
step "backend differences on real avatars at ${SIZES%% *}^2 (reference: torch on the CPU)"
timeout 300 "$PY" "$W/scripts/compare_backends.py" "${AVATARS[@]:0:2}" --size "${SIZES%% *}" \
    --backend cpu $GS $([ "$CUDA" = 1 ] && echo torch@cuda) --out "$OUT" || echo "compare_backends: exit $?"

step "tests: test/test_render_backends.py (the real-avatar test needs MediaPipe: left out)"
(cd "$W" && timeout 420 "$PY" -m pytest -p no:cacheprovider -q -rA test/test_render_backends.py -k "not real_avatar" \
    2>&1 | tee "$OUT/pytest.log" | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed|error" ) || true

step "bench: cpu (1 and $NPROC threads), ${GS:-no gsplat}, torch on $DEV; sizes $SIZES"
timeout 400 "$PY" -m gaussian_head_ros.cli bench --json --backend cpu $GS torch --device $DEV --threads 1 "$NPROC" \
    --size $SIZES --gaussians $GAUSSIANS --scene face --avatar "${AVATARS[0]}" --seconds 1 >"$OUT/bench.json" \
    || echo "bench: exit $?"
step "bench: torch on the CPU ($NPROC threads), the reference of the figures above"
timeout 300 "$PY" -m gaussian_head_ros.cli bench --json --backend torch --device cpu --threads "$NPROC" \
    --size ${SIZES%% *} --gaussians ${GAUSSIANS%% *} --scene face --avatar "${AVATARS[0]}" --seconds 0 \
    >"$OUT/bench_torch_cpu.json" || echo "bench (torch cpu): exit $?"
"$PY" - "$OUT/bench.json" "$OUT/bench_torch_cpu.json" <<'EOF'
import json, sys
for path in sys.argv[1:]:
    try:
        rows = json.load(open(path))
    except (OSError, ValueError) as e:
        print(path, "unreadable:", e)
        continue
    for r in rows:
        if r["backend"] != "stages":
            print(f"{r['backend']:7} {r.get('device', ''):5} {r['scene']:9} {r['n_gaussians']:7} {str(r['size']):>5} "
                  f"threads {str(r['threads']):>4}  {r['fps']:9.1f} fps {r['ms']:8.2f} ms  cpu {r['cpu_ms']:8.2f} ms"
                  + (f"  drive+render {r['drive_render_fps']} fps" if "drive_render_fps" in r else ""))
EOF
step "done"
rm -rf "$TMP"
sleep 1  # let tee write the last lines
