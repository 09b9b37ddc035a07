"""The `Renderer` every rasterizer backend provides: one object per user that owns the backend's threads,
device and warm-up, so callers (render_node, commands) know nothing backend-specific.

A backend module (registered in `core/render/__init__.py`) defines:
- `available() -> bool`: whether it can run here (cheap after the first call);
- `rasterize(means, quats, scales, opacities, colors, viewmat, K, width, height, background) -> RenderResult`
  with the conventions of `core/render/__init__.py`;
- `Renderer`: a subclass of `base.Renderer` (the default draws through `rasterize` and converts to uint8).
"""

from __future__ import annotations

import numpy as np


def to_rgb8(image) -> np.ndarray:
    """[H, W, 3] float image in [0, 1] (numpy or torch) -> [H, W, 3] uint8, clipped and rounded."""
    if not isinstance(image, np.ndarray):
        return rgb8_tensor(image).cpu().numpy()
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def rgb8_tensor(image):
    """`to_rgb8` for a torch float image, on its own device (the same float32 operations: the same pixels):
    [H, W, 3] -> torch uint8 [H, W, 3]. A GPU backend downloads this, 3 bytes a pixel, not the float frame."""
    import torch

    return (image.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def checked_threads(threads) -> int:
    """`threads` (CPU threads a renderer may use, 0: the backend decides) as an int; ValueError when it is
    negative. Renderer's rule, also FaceDisplay.set's (which makes no renderer to check it)."""
    if int(threads) < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    return int(threads)


class Renderer:
    """Draws display frames with one backend. Not for concurrent use from several threads.

    `threads`: CPU threads the backend may use (0 = the backend decides); `device`: where a torch-based
    backend runs ('cpu', 'cuda', 'cuda:N'). `threads_used` is what the last frame used (for diagnostics)."""

    name = ""

    def __init__(self, threads: int = 0, device: str = "cpu"):
        self.threads = checked_threads(threads)
        self.device = device
        self.threads_used = 0

    def warm_up(self) -> float:
        """Compile or load what the first frame would otherwise wait for; returns seconds spent."""
        return 0.0

    def rasterize(self, means, quats, scales, opacities, colors, viewmat, K, width: int, height: int, background):
        """-> RenderResult (see core/render/__init__.py); the backend's `rasterize`."""
        raise NotImplementedError

    def render_rgb8(self, means, quats, scales, opacities, colors, viewmat, K, width: int, height: int,
                    background=(0.0, 0.0, 0.0)) -> np.ndarray:
        """numpy Gaussians (means [N, 3], quats [N, 4], scales [N, 3], opacities [N], colors [N, 3]),
        viewmat [4, 4], K [3, 3] -> [H, W, 3] uint8 display frame."""
        bg = np.asarray(background, np.float32).reshape(3)
        return to_rgb8(self.rasterize(means, quats, scales, opacities, colors, viewmat, K, width, height, bg).image)
