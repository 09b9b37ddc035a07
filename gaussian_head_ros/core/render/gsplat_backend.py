"""gsplat (CUDA) backend: one small wrapper around `gsplat.rasterization` with our conventions.

gsplat 1.5.x compiles its CUDA kernels with nvcc on first use (minutes, once per machine; cached by
torch in ~/.cache/torch_extensions). `available()` checks CUDA, imports gsplat and draws one tiny
frame, once per process, so `auto` never picks a backend that cannot run.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys

import numpy as np

from gaussian_head_ros.core.render import EPS2D, NEAR_PLANE, TILE, RenderResult, base

log = logging.getLogger(__name__)

# The NVIDIA driver's CUDA library, by the name torch's CUDA runtime loads it (the driver installs it; a GPU
# container runtime mounts it): without it torch sees no CUDA device.
CUDA_DRIVER_LIBRARY = "libcuda.so.1"


def cuda_driver_present() -> bool:
    """Whether the NVIDIA driver's CUDA library (`CUDA_DRIVER_LIBRARY`) loads in this process; True off Linux
    (left to torch). Asked before importing torch, so that `auto` on a robot without the driver picks the cpu
    rasterizer without torch's import: 7.7 s and +208 MB resident in the render node on the loaded 2-core
    development machine (load ~45, user23, s23), its face display the 'waiting' placeholder meanwhile."""
    if not sys.platform.startswith("linux"):
        return True
    try:
        ctypes.CDLL(CUDA_DRIVER_LIBRARY)
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """True when torch sees a CUDA device and gsplat renders a test frame on it (checked once). False without
    importing torch when the CUDA driver's library is not there (`cuda_driver_present`)."""
    if not cuda_driver_present():
        log.debug("no CUDA driver here (%s does not load): gsplat not tried", CUDA_DRIVER_LIBRARY)
        return False
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        import gsplat  # noqa: F401

        n = 8
        g = torch.Generator().manual_seed(0)
        means = torch.randn(n, 3, generator=g) * 0.05 + torch.tensor([0.0, 0.0, 0.5])
        k = torch.tensor([[64.0, 0, 32], [0, 64.0, 32], [0, 0, 1]])
        _gsplat(means.cuda(), torch.randn(n, 4, generator=g).cuda(), torch.full((n, 3), 0.01).cuda(),
                torch.full((n,), 0.8).cuda(), torch.rand(n, 3, generator=g).cuda(), torch.eye(4).cuda(), k.cuda(),
                64, 64, torch.zeros(3).cuda())
        return True
    except Exception as e:  # no nvcc, wrong CUDA/torch pairing, driver problems, ...
        log.warning("gsplat is not usable here (%s: %s); using the cpu rasterizer", type(e).__name__, e)
        return False


def _gsplat(means, quats, scales, opacities, colors, viewmat, K, width, height, background):
    """torch CUDA tensors -> (image [H, W, 3], alpha [H, W]); the only call into gsplat."""
    from gsplat import rasterization

    img, alpha, _ = rasterization(
        means, quats, scales, opacities, colors,  # [N, 3], [N, 4], [N, 3], [N], [N, 3]
        viewmat[None], K[None], width, height,  # [1, 4, 4], [1, 3, 3]
        near_plane=NEAR_PLANE, eps2d=EPS2D, sh_degree=None, packed=False, tile_size=TILE,
        backgrounds=background[None], render_mode="RGB", rasterize_mode="classic")
    return img[0], alpha[0, ..., 0]  # [H, W, 3], [H, W]


def rasterize(means, quats, scales, opacities, colors, viewmat, K, width: int, height: int,
              background: np.ndarray, device: str = "cuda") -> RenderResult:
    """See `core.render.rasterize`; numpy input is drawn on `device`."""
    import torch

    as_torch = isinstance(means, torch.Tensor)
    dev = means.device if as_torch and means.is_cuda else torch.device(device)

    def t(a):
        return (a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))).to(dev, torch.float32)

    img, alpha = _gsplat(t(means), t(quats), t(scales), t(opacities), t(colors), t(viewmat), t(K), width, height,
                         t(background))
    if as_torch:
        return RenderResult(img, alpha)
    return RenderResult(img.detach().cpu().numpy(), alpha.detach().cpu().numpy())


class Renderer(base.Renderer):
    """gsplat on a CUDA device: `device` when it names one ('cuda', 'cuda:N'), else the default one
    (`draw_device`).

    `render_rgb8` (the display path) uploads the five Gaussian arrays as one copy from pinned host memory,
    converts the frame to uint8 on the GPU and downloads only that (3 bytes a pixel, into pinned memory). The
    float path (`rasterize`, then `base.to_rgb8` on the CPU) moves 16 bytes a pixel through pageable memory and
    converts on one CPU core: on an H200 (60k-Gaussian avatar, same run, 2026-11-30) 2.5-2.7 -> 1.1 ms a frame at
    512^2, 7.0-7.5 -> 1.4 ms at 1024^2, 73-76 -> 2.5 ms at 2048^2, the same pixels; gsplat's kernels take
    0.4-0.7 ms of it."""

    name = "gsplat"

    def __init__(self, threads: int = 0, device: str = "cpu"):
        super().__init__(threads, device)
        self.draw_device = device if device.startswith("cuda") else "cuda"
        self._upload = None  # pinned float32 host buffer for the Gaussians, grown as needed
        self._frame = None  # pinned uint8 host buffer [H, W, 3] of the last size

    def rasterize(self, means, quats, scales, opacities, colors, viewmat, K, width, height, background):
        """`core.render.rasterize` with gsplat on this renderer's CUDA device, no gradients -> RenderResult."""
        import torch

        self.threads_used = 1  # the calling thread: uploads, one launch sequence, the download
        with torch.no_grad():
            return rasterize(means, quats, scales, opacities, colors, viewmat, K, width, height, background,
                             device=self.draw_device)

    def render_rgb8(self, means, quats, scales, opacities, colors, viewmat, K, width: int, height: int,
                    background=(0.0, 0.0, 0.0)) -> np.ndarray:
        """See `base.Renderer.render_rgb8`; the same pixels (clip, x255, +0.5, truncate: done on the GPU).
        Returns a new array each call (the pinned buffer is reused)."""
        import torch

        self.threads_used = 1
        dev = torch.device(self.draw_device)
        pin = dev.type == "cuda"  # (the wrapper test draws on the CPU through a stand-in for gsplat)
        parts = [np.asarray(a, np.float32) for a in (means, quats, scales, opacities, colors, viewmat, K,
                                                     np.asarray(background, np.float32).reshape(3))]
        sizes = [p.size for p in parts]
        total = sum(sizes)
        if self._upload is None or self._upload.numel() < total:
            self._upload = torch.empty(total, dtype=torch.float32, pin_memory=pin)
        host = self._upload.numpy()
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for p, a, b in zip(parts, offsets[:-1], offsets[1:]):
            host[a:b] = p.reshape(-1)
        with torch.no_grad():
            flat = self._upload[:total].to(dev, non_blocking=True)
            t = [flat[a:b].view(p.shape) for p, a, b in zip(parts, offsets[:-1], offsets[1:])]
            img, _ = _gsplat(*t[:7], int(width), int(height), t[7])
            img8 = base.rgb8_tensor(img)
            if self._frame is None or tuple(self._frame.shape) != tuple(img8.shape):
                self._frame = torch.empty(tuple(img8.shape), dtype=torch.uint8, pin_memory=pin)
            self._frame.copy_(img8, non_blocking=True)
            if pin:
                torch.cuda.current_stream(dev).synchronize()  # also: the upload buffer may be written again
        return self._frame.numpy().copy()
