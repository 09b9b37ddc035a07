"""numba set-up for the whole package: thread pool and SIMD width (imported by `core/__init__.py`, first).

numba reads its configuration when the first kernel is decorated, so this runs before any core module that
defines kernels is imported, and sets values only where the user set none (environment variables win).

- Thread pool: numba's own work queue, not OpenMP. OpenMP spins while waiting at the end of each parallel
  loop, and when other processes keep the cores busy that spinning steals the time the other worker needs
  (2 threads measured 2.5-4x slower than 1 at load 4 on the 2-core development machine).
- SIMD width: LLVM tunes Skylake-and-later server CPUs to prefer 256-bit vectors ("prefer-256-bit"), so
  numba kernels use ymm registers even where AVX-512 is present. On a CPU with AVX-512 this turns that
  preference off, so the rasterizer's 16-lane pixel rows become one zmm operation (measured on the 2-core
  Xeon development machine: compositing ~20 % less CPU time). Without AVX-512 nothing changes (AVX2 or
  SSE code as numba chooses for the host).
"""

from __future__ import annotations

import os
import sys


def configure_numba() -> None:
    """Set numba's threading layer and SIMD preference unless the user (environment) chose them."""
    settings = {}
    if "NUMBA_THREADING_LAYER" not in os.environ:
        settings["THREADING_LAYER"] = "workqueue"
    if "NUMBA_CPU_FEATURES" not in os.environ and "NUMBA_CPU_NAME" not in os.environ:
        try:
            import llvmlite.binding as llvm

            features = llvm.get_host_cpu_features().flatten()
            if "+avx512f" in features.split(","):
                settings["CPU_NAME"] = llvm.get_host_cpu_name()
                settings["CPU_FEATURES"] = features + ",-prefer-256-bit"
        except Exception:  # llvmlite missing or unable to query the host: numba's defaults
            pass
    for key, value in settings.items():
        os.environ["NUMBA_" + key] = value
        if "numba" in sys.modules:  # already imported: its config was read; kernels not decorated yet
            setattr(sys.modules["numba"].config, key, value)
