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
- Kernel cache writes: numba compiles a `cache=True` kernel, puts it in use, and then writes it to its cache; a
  write the disk refuses (full: ENOSPC) raised out of the kernel's first call, so the render node's avatar loader
  died in `drive.warm_up` (its display kept the placeholder) and `gaussian-head render` ended with 'File too
  large' on a full disk (user45, s45). `tolerate_cache_write_errors`, called by each module that defines cached
  kernels (drive.py, reconstruct/surfaces.py) once it imports numba, makes such a write a warning (once per
  process): the kernel runs, compiled again at the next start.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)


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


_cache_warned = threading.Event()


def tolerate_cache_write_errors() -> None:
    """Make numba's cache write of a compiled kernel (numba.core.caching.Cache.save_overload, numba 0.68) log a
    warning, once per process, instead of raising OSError: the kernel was compiled and added to its dispatcher
    before the write (Dispatcher.compile), so it runs; a later start compiles it again (seconds). numba's own
    read of an index whose data file is missing is a cache miss, so a half-written cache is harmless. Idempotent."""
    from numba.core import caching

    save = caching.Cache.save_overload
    if getattr(save, "tolerant", False):
        return

    def save_overload(self, sig, data):
        try:
            save(self, sig, data)
        except OSError as e:
            if not _cache_warned.is_set():
                _cache_warned.set()
                log.warning("numba could not write the cache of its compiled kernels in %s (%s): they run, and are "
                            "compiled again at the next start (seconds); free space there, or set NUMBA_CACHE_DIR "
                            "to a writable directory", getattr(self, "_cache_path", "its cache directory"),
                            e.strerror or e)

    save_overload.tolerant = True
    caching.Cache.save_overload = save_overload

