"""One `rasterize()` for 3D Gaussians, with interchangeable backends, plus camera helpers.

Conventions (as gsplat, see ../shared/DESIGN.md section 4): world-to-camera 4x4 `viewmat`, OpenCV
camera axes (x right, y down, z forward), `K` [3, 3] in pixels with pixel centres at integer + 0.5,
quaternions w x y z, linear scales, post-sigmoid opacities, colours [N, 3] rgb in [0, 1].

Every backend draws the same picture (tested against each other):
- projection: EWA splatting with the Jacobian clamped to 1.3x the field of view, a 0.3 px^2 low-pass
  dilation of the 2D covariance ("classic" 3DGS/gsplat), near plane 0.01;
- bounds: an opacity-aware box of min(3.33, sqrt(2 ln(255 opacity))) standard deviations per axis
  (outside it alpha < 1/255), binned to 16x16 tiles;
- compositing: front to back in depth order, alpha = min(0.999, opacity * exp(-d^2/2)), skipped below
  1/255, a pixel stops before the Gaussian that would take its transmittance to <= 1e-4.

Backends (a registry: name -> module; each module defines `available()`, `rasterize()` and a `Renderer`,
see core/render/base.py; adding one is one file, one line in `REGISTRY` and one test):
- "torch": pure PyTorch, differentiable (the reference, and training on CPU); tile-chunked so memory
  stays bounded.
- "cpu": compiled C++ (src/raster), SIMD (AVX-512/AVX2 as the host has), tile-parallel, forward only: the real-time path on
  a robot without a GPU.
- "gsplat": gsplat's CUDA rasterizer.
- "auto": the first available of `AUTO_ORDER` (gsplat when CUDA works, else cpu).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# name -> module of each backend (imported only when asked for)
REGISTRY = {
    "cpu": "gaussian_head_ros.core.render.cpu_backend",
    "torch": "gaussian_head_ros.core.render.torch_backend",
    "gsplat": "gaussian_head_ros.core.render.gsplat_backend",
}
BACKENDS = ("auto", *REGISTRY)
# Backends that run wherever the packages their module imports are installed: `backend_available` answers for them
# from the packages' presence, without importing the module (torch's import took 20 s at load 18 in the render node's
# executor, which `ros2 param set /render_node backend torch` held meanwhile: no controls taken, the face went idle
# and then 'face_control stopped ... 21 s ago' was said of a tracker that never stopped; user65).
AVAILABLE_WHEN_INSTALLED = {"torch": ("torch",)}
AUTO_ORDER = ("gsplat", "cpu")  # what "auto" tries, best first

# Shared constants of the image model (every backend uses these).
NEAR_PLANE = 0.01
EPS2D = 0.3  # px^2 added to the 2D covariance diagonal (anti-aliasing low-pass)
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4  # transmittance at which a pixel is done
EXTEND_MAX = 3.33  # standard deviations of the bounding box at full opacity
TILE = 16


@dataclass
class RenderResult:
    """One rasterized frame: the image and its accumulated opacity (numpy, or torch for torch inputs / the
    torch backend)."""

    image: Any  # [H, W, 3] float32 in [0, 1] (numpy, or torch when given torch / the torch backend)
    alpha: Any  # [H, W] float32 accumulated opacity


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _check_inputs(means, quats, scales, opacities, colors, viewmat, K, width, height) -> int:
    n = int(means.shape[0])
    shapes = {"means": (means, (n, 3)), "quats": (quats, (n, 4)), "scales": (scales, (n, 3)),
              "opacities": (opacities, (n,)), "colors": (colors, (n, 3)), "viewmat": (viewmat, (4, 4)),
              "K": (K, (3, 3))}
    for name, (arr, shape) in shapes.items():
        if tuple(arr.shape) != shape:
            raise ValueError(f"rasterize: {name} has shape {tuple(arr.shape)}, expected {shape}")
    if int(width) < 1 or int(height) < 1 or int(width) > 16384 or int(height) > 16384:
        raise ValueError(f"rasterize: image size {width}x{height} is outside 1..16384")
    return n


def rasterize(means, quats, scales, opacities, colors, viewmat, K, width: int, height: int,
              background=(0.0, 0.0, 0.0), backend: str = "auto") -> RenderResult:
    """Draw N Gaussians into an H x W image.

    means [N, 3] world, quats [N, 4] wxyz (any length), scales [N, 3] linear std-devs, opacities [N]
    in [0, 1], colors [N, 3] rgb, viewmat [4, 4] world-to-camera, K [3, 3]. Numpy arrays or torch
    tensors; the result is numpy for numpy input and torch for torch input (the torch backend keeps
    gradients). Raises ValueError on bad shapes or an unknown backend.
    """
    module = backend_module(resolve_backend(backend))
    _check_inputs(means, quats, scales, opacities, colors, viewmat, K, width, height)
    bg = np.asarray(background, np.float32).reshape(-1)
    if bg.size != 3:
        raise ValueError(f"rasterize: background needs 3 values, got {bg.size}")
    return module.rasterize(means, quats, scales, opacities, colors, viewmat, K, int(width), int(height), bg)


def checked_backend(name, auto: bool = True) -> str:
    """`name` if it is a rasterizer backend's (one of BACKENDS; with auto=False one of REGISTRY, 'auto' refused);
    ValueError naming the choices otherwise. Imports no backend: FaceDisplay.set checks a name with it at every
    change, backend_module before importing one."""
    if name not in (BACKENDS if auto else REGISTRY):
        raise ValueError(f"unknown rasterizer backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return str(name)


def backend_module(name: str):
    """The module of a registered backend (not "auto"); ValueError for an unknown name (checked_backend)."""
    return importlib.import_module(REGISTRY[checked_backend(name, auto=False)])


def backend_available(name: str) -> bool:
    """Whether a backend can run here ("auto" always can: cpu is the last resort); ValueError if unknown. A backend
    of AVAILABLE_WHEN_INSTALLED is answered from its packages' presence, without importing them."""
    if name == "auto":
        return True
    if name not in REGISTRY:
        backend_module(name)  # raises
    if name in AVAILABLE_WHEN_INSTALLED:
        return all(importlib.util.find_spec(p) is not None for p in AVAILABLE_WHEN_INSTALLED[name])
    try:
        return bool(backend_module(name).available())
    except ImportError as e:  # an optional dependency (torch, gsplat) is missing
        log.debug("rasterizer %s is not available: %s", name, e)
        return False


def device_available(device: str) -> bool:
    """Whether a torch device name ('cpu', 'cuda', 'cuda:N') can be used here: 'cpu' always; 'cuda' when
    torch sees a CUDA device; 'cuda:N' when it sees more than N (False without importing torch where the CUDA driver's
    library is not: gsplat_backend.cuda_driver_present). ValueError for any other name."""
    if device == "cpu":
        return True
    index = 0 if device == "cuda" else (int(device[5:]) if device.startswith("cuda:") and device[5:].isdigit() else None)
    if index is None:
        raise ValueError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    from gaussian_head_ros.core.render.gsplat_backend import cuda_driver_present

    if not cuda_driver_present():  # no CUDA device, known without torch's import (seconds; see AVAILABLE_WHEN_INSTALLED)
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available()) and index < torch.cuda.device_count()


def display_backend_note(name: str, device: str) -> str:
    """A warning for a rasterizer that cannot keep a face display going on `device` (a torch device name), "" for
    one that can: the torch backend on a CPU (`device` cpu, or a CUDA device torch does not see: it falls back to
    cpu) is the differentiable reference, seconds a frame (25-40 s at 640x480 with 60k Gaussians on 2 loaded cores,
    user17, s17: the display froze); the cpu backend (numba) is the one for a CPU. Raises ValueError for a device
    name that is no device (device_available)."""
    if name != "torch" or (device != "cpu" and device_available(device)):
        return ""
    return (f"backend torch on {'cpu' if device == 'cpu' else f'{device} (not seen here: cpu)'}: the differentiable "
            "reference rasterizer takes seconds a frame on a CPU (25-40 s at 640x480, 60k Gaussians, 2 cores), the "
            "face display all but stops; use backend cpu (or auto) for the display")


def resolve_backend(name: str) -> str:
    """'auto' -> the first available of AUTO_ORDER; other names are returned checked (ValueError if unknown)."""
    if name != "auto":
        backend_module(name)
        return name
    return next(b for b in AUTO_ORDER if backend_available(b))


def runnable_backend(name: str) -> str:
    """The backend `name` resolved ('auto' -> the one it picks here); ValueError naming it when it is unknown or cannot
    run here (gsplat without a working CUDA device). `eval --render-backend gsplat` on a CPU machine found out only at
    its first frame, in torch's 'Torch not compiled with CUDA enabled' traceback (user48)."""
    name = resolve_backend(name)
    if not backend_available(name):
        raise ValueError(f"the {name} rasterizer cannot run here"
                         + (" (it needs a working CUDA device)" if name == "gsplat" else ""))
    return name


def get_renderer(name: str = "auto", threads: int = 0, device: str = "cpu"):
    """A `Renderer` (core/render/base.py) of the backend `name` ('auto' resolved here): it owns the backend's
    threads (`threads`, 0 = the backend decides) and device; ValueError when the backend cannot run here."""
    return backend_module(runnable_backend(name)).Renderer(threads=threads, device=device)


# ---------------------------------------------------------------------------------------------------
# Camera helpers (numpy, float32)

def intrinsics_from_fov(fov_deg: float, width: int, height: int) -> np.ndarray:
    """[3, 3] pinhole K with the given vertical field of view and the principal point at the centre."""
    if not 1.0 <= fov_deg <= 170.0:
        raise ValueError(f"field of view {fov_deg} deg is outside 1..170")
    f = 0.5 * height / math.tan(math.radians(fov_deg) / 2)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float32)


def look_at(eye, target, up=(0.0, -1.0, 0.0)) -> np.ndarray:
    """[4, 4] world-to-camera viewmat (OpenCV axes) of a camera at `eye` looking at `target`.

    `up` is the world direction that should appear up in the image (-y in the head frame)."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    z = target - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(-up, z)  # image right (camera y, down, is -up; x = y cross z)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: up is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])  # rows: camera axes in world coordinates
    v = np.eye(4)
    v[:3, :3] = r
    v[:3, 3] = -r @ eye
    return v.astype(np.float32)


def head_viewmat(distance_m: float, rotation: np.ndarray | None = None, center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """[4, 4] viewmat framing the head: the head-frame point `center` straight ahead at `distance_m`.

    `rotation` [3, 3] optionally turns the head frame first (head -> camera), as a FaceControl does."""
    if not distance_m > 0:
        raise ValueError(f"camera distance must be positive, got {distance_m}")
    r = np.eye(3) if rotation is None else np.asarray(rotation, np.float64)
    v = np.eye(4)
    v[:3, :3] = r
    v[:3, 3] = np.array([0.0, 0.0, distance_m]) - r @ np.asarray(center, np.float64)
    return v.astype(np.float32)


def frame_fit(means: np.ndarray, fov_deg: float, fill: float = 0.8) -> tuple[np.ndarray, float]:
    """(centre [3], distance) that fit a cloud's robust extent into `fill` of the vertical view."""
    lo, hi = np.percentile(means, 2, axis=0), np.percentile(means, 98, axis=0)
    centre = (lo + hi) / 2
    half = 0.5 * max(hi[0] - lo[0], hi[1] - lo[1])
    dist = half / (fill * math.tan(math.radians(fov_deg) / 2)) + 0.5 * (hi[2] - lo[2])
    return centre.astype(np.float32), float(max(dist, 0.05))


# ---------------------------------------------------------------------------------------------------
# Helpers for nodes and commands

def render_rgb8(means, quats, scales, opacities, colors, viewmat, K, width: int, height: int,
                background=(0.0, 0.0, 0.0), backend: str = "cpu", device: str = "cpu") -> np.ndarray:
    """One frame as [H, W, 3] uint8 (the display format) through a fresh `get_renderer(backend, device=device)`;
    numpy in. For many frames keep a Renderer instead (it keeps its thread tuning)."""
    _check_inputs(means, quats, scales, opacities, colors, viewmat, K, width, height)
    return get_renderer(backend, device=device).render_rgb8(means, quats, scales, opacities, colors, viewmat, K,
                                                            int(width), int(height), background)


# The placeholder's line for the person in front of the robot: no operator's controls come, or they come (the
# operator is there) while the avatar is still being made. It said 'waiting for operator' through a reconstruction
# with the operator already driving the robot (user54).
PLACEHOLDER_TEXT = "waiting for operator"
PLACEHOLDER_LIVE_TEXT = "waiting for the operator's face"


def placeholder_text(operator_live: bool) -> str:
    """The placeholder's line: PLACEHOLDER_LIVE_TEXT while the operator's live controls come, else PLACEHOLDER_TEXT."""
    return PLACEHOLDER_LIVE_TEXT if operator_live else PLACEHOLDER_TEXT


def placeholder_image(width: int, height: int, background=(0.0, 0.0, 0.0), text: str = PLACEHOLDER_TEXT
                      ) -> np.ndarray:
    """[H, W, 3] uint8 neutral frame shown before any avatar: a soft head-and-shoulders silhouette, `text` below."""
    bg = np.asarray(background, np.float32).reshape(3)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    s = min(width, height)
    cx, cy = width / 2, height * 0.45
    head = ((x - cx) / (0.2 * s)) ** 2 + ((y - cy) / (0.26 * s)) ** 2
    body = ((x - cx) / (0.42 * s)) ** 2 + ((y - (cy + 0.62 * s)) / (0.32 * s)) ** 2
    d = np.minimum(head, body)
    alpha = 0.35 * np.clip(1.5 - d, 0, 1) ** 0.7  # [H, W] soft edge
    grey = np.full(3, 0.55 if bg.mean() < 0.5 else 0.35, np.float32)
    img = bg * (1 - alpha[..., None]) + grey * alpha[..., None]
    out = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if text:
        try:
            import cv2

            scale = s / 700
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            colour = tuple(int(v) for v in (grey * 255 * 1.3).clip(0, 255))
            cv2.putText(out, text, ((width - tw) // 2, int(height * 0.93)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                        1, cv2.LINE_AA)
        except ImportError:  # the silhouette alone is fine
            pass
    return out
