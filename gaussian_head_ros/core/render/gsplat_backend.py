"""gsplat (CUDA) backend: one small wrapper around `gsplat.rasterization` with our conventions.

gsplat 1.5.x compiles its CUDA kernels with nvcc on first use (minutes, once per machine; cached by
torch in ~/.cache/torch_extensions). `available()` checks CUDA, imports gsplat and draws one tiny
frame, once per process, so `auto` never picks a backend that cannot run.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from gaussian_head_ros.core.render import EPS2D, NEAR_PLANE, TILE, RenderResult, base

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """True when torch sees a CUDA device and gsplat renders a test frame on it (checked once)."""
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
    (`draw_device`)."""

    name = "gsplat"

    def __init__(self, threads: int = 0, device: str = "cpu"):
        super().__init__(threads, device)
        self.draw_device = device if device.startswith("cuda") else "cuda"

    def rasterize(self, means, quats, scales, opacities, colors, viewmat, K, width, height, background):
        import torch

        self.threads_used = 1  # the calling thread: uploads, one launch sequence, the download
        with torch.no_grad():
            return rasterize(means, quats, scales, opacities, colors, viewmat, K, width, height, background,
                             device=self.draw_device)
