"""Reconstructors behind one interface, selected by name: one portrait photo -> a drivable GaussianAvatar.

    from gaussian_head_ros.core.reconstruct import get_reconstructor
    with get_reconstructor("mesh_fit") as rec:
        result = rec.reconstruct(rgb, operator_id="alice")  # ReconstructionResult, or ReconstructionError

Backends: `mesh_fit` (training-free, CPU, the default) and `rar` (the learned model; needs a checkpoint).
Each is imported only when asked for, so a missing optional dependency of one never breaks the other.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from pathlib import Path

import numpy as np

from gaussian_head_ros.core.reconstruct.base import (BAD_IMAGE, FACE_CUT_OFF, FACE_TOO_SMALL, HEAD_TURNED_TOO_FAR,
                                                     INTERNAL_ERROR,
                                                     NO_FACE, OK, STATUS_NAMES, ReconstructionError,
                                                     ReconstructionResult, Reconstructor)
from gaussian_head_ros.core.settings import unknown_names

DEFAULT_BACKEND = "mesh_fit"
# name -> (module, class) of each backend
BACKENDS = {
    "mesh_fit": ("gaussian_head_ros.core.reconstruct.mesh_fit", "MeshFitReconstructor"),
    "rar": ("gaussian_head_ros.core.reconstruct.rar", "RARReconstructor"),
}

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "get_reconstructor", "backend_class", "option_names", "check_options",
           "reconstructor_key", "photo_key",
           "Reconstructor", "ReconstructionResult",
           "ReconstructionError", "OK", "NO_FACE", "FACE_TOO_SMALL", "HEAD_TURNED_TOO_FAR", "BAD_IMAGE",
           "INTERNAL_ERROR", "FACE_CUT_OFF", "STATUS_NAMES"]


def backend_class(name: str) -> type:
    """The class of the backend `name` (imported now). Raises ValueError for an unknown or unavailable one."""
    if name not in BACKENDS:
        raise ValueError(f"unknown reconstruction backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"reconstruction backend {name!r} is not available here: {e}") from e
    return getattr(mod, cls)


def option_names(name: str) -> tuple[str, ...]:
    """The options the backend `name` takes (its class's OPTIONS), e.g. for routing node parameters."""
    return tuple(backend_class(name).OPTIONS)


def check_options(name: str, **options) -> None:
    """Raise ValueError when the backend `name` cannot start with `options` (nothing is loaded)."""
    cls = backend_class(name)
    unknown = set(options) - set(cls.OPTIONS)
    if unknown:
        raise ValueError(unknown_names(f"{name} options", unknown, cls.OPTIONS))
    check = getattr(cls, "check_options", None)
    if check is not None:
        check(**options)


def get_reconstructor(name: str = DEFAULT_BACKEND, **options) -> Reconstructor:
    """A reconstructor by backend name with its options (e.g. preset="fast", max_gaussians=40000 for
    mesh_fit; checkpoint="model.pt" for rar). Raises ValueError for an unknown name or bad options."""
    return backend_class(name)(**options)


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """SHA-256 of this package's core sources (every .py under core/, by relative path): the code that makes an
    avatar. Read once per process (~1 MB)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def _file_digest(path: str) -> str:
    """Hex SHA-256 of the file at `path` (`~` expanded), read in blocks. Raises OSError when it cannot be read."""
    with open(Path(path).expanduser(), "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def reconstructor_key(name: str, **options) -> str:
    """What decides the avatar a reconstructor of backend `name` built with `options` makes from a given photo, as
    text: the backend, its options (sorted), the SHA-256 of each file an option names (the backend class's
    FILE_OPTIONS: rar's checkpoint, so a checkpoint retrained at the same path is another model however its
    mtime and size came out) and of the core sources (a software update is another reconstructor). Two
    reconstructors with equal keys make the same avatar from the same pixels. Reads the files (a 1 GB
    checkpoint: a few seconds; call it where the reconstructor is built). Raises OSError when a file cannot be
    read, ValueError for an unknown backend."""
    files = backend_class(name).FILE_OPTIONS
    parts = [name, *(f"{k}={options[k]!r}" for k in sorted(options)),
             *(f"{k} sha256 {_file_digest(options[k])}" for k in sorted(files) if options.get(k)),
             f"code sha256 {_code_digest()}"]
    return "\n".join(parts)


def photo_key(rgb, operator_id: str, reconstructor: str, *labels: str) -> bytes:
    """What decides the avatar a reconstructor makes of a photo, as a 32-byte SHA-256 digest: the decoded photo it is
    given (`rgb`, [H, W, 3] uint8 RGB, upright and opaque, after any reduction for max_pixels), the operator id the
    avatar carries, the reconstructor (`reconstructor_key`'s text) and `labels` (what else the caller writes onto the
    avatar: a node's frame_id). Equal keys make the same avatar (reconstructor_key's promise), so a photo is the same
    photo by its pixels however it came: a file's bytes, a CompressedImage of those bytes, a raw Image of those
    pixels (a robot's photo_path file sent again by photo_node was reconstructed again: 3.3-20 s of the robot's CPU
    for the same Gaussians; user58, node59). A photo resized, or saved again as a JPEG, has other pixels: another photo.
    Hashing costs a few ms per megapixel (23 ms for 4 MP here at load 4). Raises ValueError for an array that is not
    [H, W, 3] uint8."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"photo_key takes a [H, W, 3] uint8 RGB photo, not {rgb.dtype} {list(rgb.shape)}")
    h = hashlib.sha256(repr((rgb.shape, operator_id, reconstructor, labels)).encode())
    h.update(memoryview(np.ascontiguousarray(rgb)).cast("B"))
    return h.digest()
