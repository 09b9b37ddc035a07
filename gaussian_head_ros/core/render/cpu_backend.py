"""Fast CPU rasterizer (a compiled library, forward only): the real-time path on a robot without a GPU.

Same image model as the torch reference (see `gaussian_head_ros.core.render`); the pixels a Gaussian reaches
are those where alpha >= 1/255, i.e. inside its ellipse sigma <= ln(255 opacity). A frame is one call into
src/raster (C++, built by `make setup`, loaded with ctypes; AVX-512, AVX2 or generic code chosen at run time),
whose threads go through the whole pipeline together (src/raster/raster.cpp):
1. projection (branch-free, vectorised): EWA 2D conic, culling threshold, depth (a sentinel for culled ones);
2. a stable LSD radix sort of the visible Gaussians by depth (float bits as keys);
3. packing and binning: what compositing reads is packed contiguously in depth order, and every Gaussian is
   binned into exactly the 16x16 tiles its ellipse's bounding box reaches, by a counting sort that keeps depth
   order;
4. compositing (threads take tiles heaviest first; one thread row by row): per tile, its Gaussians are listed in each
   cell of 8 x 2 pixels their ellipse's box reaches, and each cell is blended front to back with its 16 pixels' state
   (transmittance and r, g, b) in vector registers, branch-free over the lanes; a cell stops when all its
   pixels are done. alpha = exp(-(sigma - ln opacity)) = q(s / 8)^8 with q a degree-5 polynomial fitted for
   relative error (the 1/255 cut-off is decided on the exponent exactly; alpha's rel. error 2.2e-6).
Why one compiled call: stages 1-3 were numba parallel loops before; on the 2-core development machine their
thread pool's wake-ups cost ~40 voluntary context switches and ~1.9 ms of wall time per 512^2 frame at 2
threads beyond the stages' own time.
Culling (tiles, rows, lanes) is conservative (a margin of `CULL_MARGIN` on sigma and `SPAN_EPS_PX` pixels):
it only skips pixels whose alpha is below 1/255, so it changes no pixel. Work buffers are kept between frames
by the library (first touches of fresh memory are page faults: ~2000 per 512^2 frame of a 60k avatar).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import threading
import time

import numpy as np

from gaussian_head_ros.core.render import ALPHA_MAX, ALPHA_MIN, EPS2D, NEAR_PLANE, T_MIN, RenderResult
from gaussian_head_ros.core.render import base

log = logging.getLogger(__name__)

# One workspace, one frame at a time: `_LOCK` serialises our calls.
_LOCK = threading.Lock()

CULL_MARGIN = 1e-3  # added to the alpha >= 1/255 threshold when culling tiles, rows and lanes (sigma units)
SPAN_EPS_PX = 0.02  # and to every culling extent (pixels): rounding never drops a contributing pixel (raster.h)
KERNEL_LIB = "libghr_raster.so"  # the compiled rasterizer (src/raster)
ISA = -1  # instruction set of the compiled kernels: -1 the best the CPU has, 0/1/2 generic/avx2/avx512 (tests)
STAGES = ("project", "sort", "bin", "composite")


def cpu_threads() -> int:
    """The most CPU threads a frame uses: numba's thread limit (NUMBA_NUM_THREADS, by default the CPUs this
    process may run on), the package's one setting for CPU threads (scripts set it to 1 per parallel job)."""
    import numba

    return max(int(numba.config.NUMBA_NUM_THREADS), 1)


def threads_note(threads: int) -> str:
    """'' when the cpu rasterizer can draw with `threads` here (0: it picks), else what it draws with instead: a frame
    takes at most `cpu_threads()` (a render node's `threads` 64 on a 2-core robot drew with 2, unsaid; user57)."""
    most = cpu_threads()
    if threads <= most:
        return ""
    return (f"threads {threads}: this process may run on {most} CPU{'s' if most != 1 else ''} (its affinity, or "
            f"NUMBA_NUM_THREADS), so the cpu rasterizer uses {most}; 0 lets it pick the faster of 1 and {most}")


def _find_kernel() -> str | None:
    """Path of the compiled rasterizer (src/raster, built by `make setup` / colcon into the package's
    core/render folder of the install space), looked for in every folder the package is imported from."""
    import gaussian_head_ros

    for root in gaussian_head_ros.__path__:
        path = os.path.join(root, "core", "render", KERNEL_LIB)
        if os.path.exists(path):
            return path
    return None


@functools.lru_cache(maxsize=1)
def _kernel():
    """The ctypes handle of the compiled rasterizer, or None when it is not built (see `available`)."""
    path = _find_kernel()
    if path is None:
        return None
    lib = ctypes.CDLL(path)
    ptr, i64, f32, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
    lib.ghr_render.argtypes = [ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, i64, i64, i64, f32, f32, f32, f32, ptr, f32,
                               f32, ptr, ptr, ptr, i32, i32, ptr]
    lib.ghr_render.restype = i32
    lib.ghr_raster_isa.argtypes = [i32]
    lib.ghr_raster_isa.restype = ctypes.c_char_p
    lib.ghr_workspace_new.argtypes = []
    lib.ghr_workspace_new.restype = ptr
    lib.ghr_workspace_free.argtypes = [ptr]
    lib.ghr_workspace_free.restype = None
    return lib


def kernel_isa(isa: int = -1) -> str:
    """The instruction set the compiled kernels run with on this CPU ("avx512", "avx2" or "generic"); `isa`
    0/1/2 asks for generic/avx2/avx512, granted up to what the CPU has (-1: the best). RuntimeError if the
    library is not built."""
    return _require_kernel().ghr_raster_isa(isa).decode()


def _require_kernel():
    lib = _kernel()
    if lib is None:
        raise RuntimeError(f"the cpu rasterizer's compiled kernel ({KERNEL_LIB}) was not found next to "
                           "gaussian_head_ros/core/render in the install space: build the package (make setup, or "
                           "colcon build) and source its setup file")
    return lib


def available() -> bool:
    """The compiled rasterizer is built."""
    return _kernel() is not None


_WORKSPACE: list = []  # [(library handle, workspace pointer)]: the library's buffers, kept between frames


def _workspace(lib) -> int:
    if not _WORKSPACE or _WORKSPACE[0][0] is not lib:
        ws = lib.ghr_workspace_new()
        if not ws:
            raise MemoryError("cpu rasterizer: no memory for its workspace")
        _WORKSPACE[:] = [(lib, ws)]
    return _WORKSPACE[0][1]


def rasterize(means, quats, scales, opacities, colors, viewmat, K, width: int, height: int,
              background: np.ndarray, threads: int = 0) -> RenderResult:
    """See `core.render.rasterize` (numpy or torch in, the same kind out; no gradients); `threads` 0 = all."""
    as_torch = type(means).__module__.startswith("torch")
    if as_torch:
        import torch

        dev = means.device
        arrs = [a.detach().cpu().numpy() for a in (means, quats, scales, opacities, colors)]
    else:
        arrs = [np.asarray(a) for a in (means, quats, scales, opacities, colors)]
    f32 = [np.ascontiguousarray(a, np.float32) for a in arrs]
    vm = np.ascontiguousarray(np.asarray(viewmat.cpu() if hasattr(viewmat, "cpu") else viewmat), np.float32)
    kk = np.ascontiguousarray(np.asarray(K.cpu() if hasattr(K, "cpu") else K), np.float32)
    img, alpha = render_arrays(*f32, vm, kk, width, height, np.asarray(background, np.float32), threads=threads)
    if as_torch:
        return RenderResult(torch.from_numpy(img).to(dev), torch.from_numpy(alpha).to(dev))
    return RenderResult(img, alpha)


def render_arrays(means, quats, scales, opacities, colors, viewmat, K, width, height, background, rgb8=False,
                  stages: dict | None = None, threads: int = 0):
    """float32 contiguous arrays in (means [N, 3], quats [N, 4], scales [N, 3], opacities [N], colors [N, 3],
    viewmat [4, 4], K [3, 3]) -> (image [H, W, 3], alpha [H, W]) float32, or with rgb8=True the image as
    [H, W, 3] uint8 (clipped, rounded) and no alpha. `threads`: CPU threads for this frame (0 = all of
    `cpu_threads()`). Thread-safe (calls are serialised). RuntimeError when the library is not built,
    MemoryError when its buffers cannot be had.

    `stages`, when given, receives the seconds of each of STAGES (as the calling thread sees them: a stage
    includes waiting for the other threads to finish the one before) and the counts 'visible' (Gaussians
    drawn), 'pairs' (tile-Gaussian pairs) and 'evaluations' (Gaussian-pixel pairs with alpha >= 1/255: the
    drawn Gaussians' ellipse areas, 2 pi ln(255 opacity) / sqrt(det conic), off-screen parts included)."""
    lib = _require_kernel()
    width, height = int(width), int(height)
    threads = int(threads) if threads and threads > 0 else cpu_threads()
    arrays = [means, quats, scales, opacities, colors, viewmat, K]
    for a in arrays:
        if a.dtype != np.float32 or not a.flags.c_contiguous:
            raise ValueError("render_arrays: inputs must be C-contiguous float32 arrays")
    bg = np.ascontiguousarray(background, np.float32).reshape(3)
    if rgb8:
        img, alpha, out8 = None, None, np.empty((height, width, 3), np.uint8)
    else:
        img, alpha, out8 = np.empty((height, width, 3), np.float32), np.empty((height, width), np.float32), None
    ptr = lambda a: None if a is None or a.size == 0 else a.ctypes.data  # noqa: E731
    st = np.zeros(7, np.float64) if stages is not None else None
    with _LOCK:
        rc = lib.ghr_render(_workspace(lib), *(ptr(a) for a in arrays), int(means.shape[0]), width, height,
                            NEAR_PLANE, EPS2D, ALPHA_MIN, CULL_MARGIN, ptr(bg), ALPHA_MAX, T_MIN, ptr(img),
                            ptr(alpha), ptr(out8), threads, ISA, ptr(st))
    if rc != 0:
        raise MemoryError(f"cpu rasterizer: no memory for a {width}x{height} frame of {means.shape[0]} Gaussians")
    if stages is not None:
        stages.update(zip(STAGES, st[:4].tolist()))
        stages["visible"], stages["pairs"], stages["evaluations"] = int(st[4]), int(st[5]), float(st[6])
    return (out8, None) if rgb8 else (img, alpha)


def warm_up() -> float:
    """Load the library and size its buffers with a tiny scene; returns seconds spent."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    n = 64
    means = (rng.normal(0, 0.05, (n, 3)) + [0, 0, 0.5]).astype(np.float32)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    scales = np.full((n, 3), 0.01, np.float32)
    k = np.array([[64, 0, 32], [0, 64, 32], [0, 0, 1]], np.float32)
    for rgb8 in (False, True):
        render_arrays(means, quats, scales, np.full(n, 0.8, np.float32), np.full((n, 3), 0.5, np.float32),
                      np.eye(4, dtype=np.float32), k, 64, 64, np.zeros(3, np.float32), rgb8)
    dt = time.perf_counter() - t0
    log.debug("cpu rasterizer ready in %.2f s", dt)
    return dt


class ThreadTuner:
    """Chooses how many threads the cpu rasterizer uses, from measured frame times.

    Two threads draw a frame in ~55 % of the time of one on an idle 2-core machine, but when other processes
    keep the cores busy a worker often waits to be scheduled and two threads become slower than one. The
    tuner uses its best count, and every `period_s` tries each count for `probe_frames` frames again."""

    def __init__(self, max_threads: int | None = None, period_s: float = 10.0, probe_frames: int = 6):
        self.candidates = sorted({1, int(max_threads or cpu_threads())})
        self.period_s, self.probe_frames = period_s, probe_frames
        self.best = self.candidates[-1]
        self._probe: list[int] = []  # counts still to try, in order
        self._times: dict[int, list[float]] = {}
        self._next_probe = -1.0

    def threads(self, now: float) -> int:
        """The count to use for the next frame (now: seconds on a monotonic clock)."""
        if not self._probe and now >= self._next_probe and len(self.candidates) > 1:
            self._probe = [c for c in self.candidates for _ in range(self.probe_frames)]
            self._times = {c: [] for c in self.candidates}
        return self._probe[0] if self._probe else self.best

    def record(self, threads: int, seconds: float, now: float) -> None:
        """Note how long a frame drawn with `threads` took (`seconds`; `now` a monotonic clock, seconds);
        once a probe round is done, the fastest count (10 % better than the current best) becomes the best."""
        if not self._probe or threads != self._probe[0]:
            return
        self._probe.pop(0)
        self._times[threads].append(seconds)
        if not self._probe:
            medians = {c: float(np.median(t[1:] or t)) for c, t in self._times.items()}  # first frame may warm up
            fastest = min(medians, key=medians.get)
            if medians[fastest] < 0.9 * medians[self.best]:
                log.debug("cpu rasterizer: %d threads (%s)", fastest, medians)
                self.best = fastest
            self._next_probe = now + self.period_s


class Renderer(base.Renderer):
    """The cpu rasterizer for one caller: `threads` fixed, or 0 = a ThreadTuner picks 1 or all cores from
    measured frame times. Draws uint8 directly (no float image)."""

    name = "cpu"

    def __init__(self, threads: int = 0, device: str = "cpu"):
        super().__init__(threads, device)
        self.tuner = ThreadTuner()

    def warm_up(self) -> float:
        """Load the compiled rasterizer and size its buffers with a tiny scene (`warm_up`); seconds spent."""
        return warm_up()

    def rasterize(self, means, quats, scales, opacities, colors, viewmat, K, width, height, background):
        """`core.render.rasterize` on the CPU with this renderer's thread count (fixed, or the tuner's)
        -> RenderResult."""
        with self.frame_threads() as n:
            return rasterize(means, quats, scales, opacities, colors, viewmat, K, width, height, background, n)

    def render_rgb8(self, means, quats, scales, opacities, colors, viewmat, K, width, height,
                    background=(0.0, 0.0, 0.0)) -> np.ndarray:
        """As base.Renderer.render_rgb8 (numpy Gaussians -> [H, W, 3] uint8), rounded to uint8 inside the
        compiled rasterizer."""
        f32 = [np.ascontiguousarray(a, np.float32) for a in (means, quats, scales, opacities, colors, viewmat, K)]
        with self.frame_threads() as n:
            img, _ = render_arrays(*f32, int(width), int(height), np.asarray(background, np.float32).reshape(3),
                                   rgb8=True, threads=n)
        return img

    @contextlib.contextmanager
    def frame_threads(self):
        """Yields the thread count for this frame (fixed, or the tuner's), timed for the tuner."""
        n = min(self.threads, cpu_threads()) if self.threads else self.tuner.threads(time.monotonic())
        self.threads_used = n
        t0 = time.perf_counter()
        yield n
        if not self.threads:
            self.tuner.record(n, time.perf_counter() - t0, time.monotonic())
