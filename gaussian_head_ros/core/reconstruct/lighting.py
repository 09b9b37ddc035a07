"""The photo's lighting as 2nd-order spherical harmonics, estimated from the shading of the face skin.

Model (Lambertian, as core.drive relights): pixel colour = albedo * E(n), E the irradiance of SH
radiance L at the surface normal n. Skin albedo is taken as constant per channel, so each channel's
intensities divided by their median are E(n) up to a scale: a small ridge-regularised least-squares
fit of the 9 irradiance coefficients against the template normals (a face shows only the front
hemisphere of normals, so the higher bands are damped), then converted to radiance with the cosine-
lobe factors. The result is in the head frame, per rgb channel, scaled so that the mean irradiance
over the fitted normals is 1 (what `drive()` divides by when relighting).
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np

from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.drive import SH_COSINE_LOBE, irradiance, sh9_basis

log = logging.getLogger(__name__)

# Ridge weights per SH band (0, 1, 2): the ambient term is free, the directional terms are damped.
_RIDGE = np.array([0.0] + [0.05] * 3 + [0.5] * 5)


@functools.lru_cache(maxsize=2)
def skin_triangle_mask(brows: bool = False) -> np.ndarray:
    """[F] bool: template triangles on skin (no vertex on the lips, eyes, eyebrows or irises); with brows, the
    triangles on the eyebrows count as skin too (the brows are hairs on skin: a caller that wants the skin between
    them leaves their dark pixels out itself, as completion.photo_lining does)."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    from gaussian_head_ros.core.reconstruct.template import template_faces

    non_skin = set()
    for conn in (fmc.FACEMESH_LIPS, fmc.FACEMESH_LEFT_EYE, fmc.FACEMESH_RIGHT_EYE, fmc.FACEMESH_IRISES) + (
            () if brows else (fmc.FACEMESH_LEFT_EYEBROW, fmc.FACEMESH_RIGHT_EYEBROW)):
        non_skin |= {v for e in conn for v in e}
    faces = template_faces()
    out = ~np.isin(faces, sorted(non_skin)).any(axis=1)
    out.setflags(write=False)
    return out


def estimate_lighting(normals: np.ndarray, colors: np.ndarray, min_samples: int = 200) -> np.ndarray:
    """normals [M, 3] (unit, head frame), colors [M, 3] in [0, 1] of skin samples -> [9, 3] SH radiance.

    Raises ValueError when there are too few usable samples to say anything about the light."""
    n = np.asarray(normals, np.float64)
    c = np.asarray(colors, np.float64)
    ok = np.all(np.isfinite(n), 1) & np.all(np.isfinite(c), 1) & (np.linalg.norm(n, axis=1) > 0.5)
    luma = c @ LUMA
    if ok.sum() >= min_samples:
        lo, hi = np.percentile(luma[ok], [10, 97])  # drop shadows in creases, stubble and highlights
        ok &= (luma >= lo) & (luma <= hi) & (luma > 0.02)
    if ok.sum() < min_samples:
        raise ValueError(f"only {int(ok.sum())} usable skin samples to estimate the lighting (need {min_samples})")
    n, c = n[ok] / np.linalg.norm(n[ok], axis=1, keepdims=True), c[ok]
    y = c / np.maximum(np.median(c, axis=0), 1e-3)  # [M, 3] irradiance up to the albedo
    b = sh9_basis(n)  # [M, 9]
    m = len(b)
    ata = b.T @ b / m + np.diag(_RIDGE)
    # Ridge pulls the directional terms to 0 and the ambient to the mean, not to zero.
    e = np.linalg.solve(ata, b.T @ y / m)  # [9, 3] irradiance / pi coefficients
    e /= np.maximum((b @ e).mean(0), 1e-6)  # mean irradiance over the samples = 1 per channel
    radiance = e * math.pi / SH_COSINE_LOBE[:, None]
    return radiance.astype(np.float32)


def shading(normals: np.ndarray, lighting_sh: np.ndarray) -> np.ndarray:
    """[..., 3] normals, [9, 3] radiance -> [..., 3] irradiance / pi (the factor drive() relights by)."""
    return irradiance(np.asarray(normals, np.float64), lighting_sh)
