"""The lining (mesh_fit step 4, completion.photo_lining): discs in the skin's own colours just behind the photo
layer on the head's skin, so that what shows between the photo layer's discs drawn larger than the crop is skin, not
the hair-coloured back of the head or the mouth interior (MeshFitConfig.lining_*); and the face skin it leaves out,
whose photo-layer discs are widened instead (MeshFitConfig.unlined_sigma_per_stride). Maps [S, S] over the source
camera's crop (pixels, y down); `cfg` is a MeshFitConfig."""

from __future__ import annotations

import cv2
import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_FACE, PART_STATIC
from gaussian_head_ros.core.reconstruct.completion import photo_lining
from gaussian_head_ros.core.reconstruct.creases import crease_ring
from gaussian_head_ros.core.reconstruct.lighting import skin_triangle_mask
from gaussian_head_ros.core.reconstruct.lips import lip_band


def mouth_corner_masks(landmarks_px: np.ndarray, size: int, radius_px: float) -> tuple[np.ndarray, np.ndarray]:
    """landmarks_px [>= 478, 2+] FaceMesh landmarks in the square source view (pixels, x right, y down), its side
    size, a radius in pixels -> ([size, size] bool pixels above the line through the mouth's outer corners
    (lmk.MOUTH_CORNER_R / _L), [size, size] bool pixels within radius_px of either corner)."""
    (x0, y0), (x1, y1) = (np.asarray(landmarks_px[c, :2], np.float64)
                          for c in (lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L))
    y = np.arange(size, dtype=np.float64)[:, None] + 0.5
    x = np.arange(size, dtype=np.float64)[None, :] + 0.5
    dx = x1 - x0 if abs(x1 - x0) > 1e-6 else 1e-6
    above = y < y0 + (y1 - y0) * (x - x0) / dx
    near = (np.hypot(x - x0, y - y0) < radius_px) | (np.hypot(x - x1, y - y1) < radius_px)
    return above, near


def face_lining(cfg, scene, landmarks_px, face_px, mouth_px, mesh_px, head_mask, edge, covered, at, fid, bary, nrm,
                colours, hair_skin, mpp: float):
    """The lining behind the photo layer (scene: completion.Scene; face_px, mouth_px, mesh_px, head_mask and edge
    [S, S] bool; covered [F] bool the triangles the photo covers well (completion.covered_triangles); at [S, S] the
    pixels' triangle ids clipped to the template's; fid [S, S], bary [S, S, 3] the rasterized template; nrm [S, S, 3]
    head-frame normals; colours [S, S, 3] the rest colours; hair_skin (hidden_colours.hair_and_skin) or None; mpp
    metres per pixel) -> (lining GaussianBatch or None, lined_px [S, S] bool the face pixels it lines, d_lips [S, S]
    metres off the lips' red or None)."""
    S = face_px.shape[0]
    lining = None
    lined_px = np.zeros_like(face_px)
    d_lips = None  # metres off the lips' red, where the ring round them is lined or its discs widened
    if cfg.lining_upper_ring or cfg.unlined_sigma_per_stride is not None:
        lips_px = face_px & lip_band()[at] | mouth_px
        d_lips = cv2.distanceTransform((~lips_px).astype(np.uint8), cv2.DIST_L2, 3) * mpp
    if cfg.lining_spacing_m > 0:  # the face's skin and brow triangles (the brows' hair is left out as dark by
        # photo_lining; unlined, the back of the head showed through the skin above the brows as a dot grid at
        # 1024 px: 2.5 % of it on business_person, session 49), and the head's skin-coloured pixels off the mesh
        # at lining_off_mesh x the spacing; of the ring of skin round the lips only the upper part, off the
        # corners (stretched up to 2.5x with the corners' triangles at a scream, the lining's discs there reached
        # over the lips' edge into the opening); only on triangles the photo covers well (not folded:
        # lp_d9_woman_turned's scream folds the mesh round its lower lip, lip pixels on chin triangles)
        bound_px = face_px & (covered & skin_triangle_mask(brows=True))[at]
        near_lips = np.zeros_like(bound_px)
        if cfg.lining_upper_ring:  # see MeshFitConfig.lining_near_lips_m
            above, near_corners = mouth_corner_masks(landmarks_px, S, cfg.lining_corner_m / mpp)
            bound_px |= face_px & (covered & crease_ring())[at] & above & (d_lips >= cfg.lining_lip_margin_m)
            bound_px &= ~near_corners
            near_lips = bound_px & above & (d_lips < cfg.lining_near_lips_m)
        off_mesh = np.zeros_like(bound_px)
        if hair_skin is not None:
            hair_d, skin_d = (np.sum((colours - c) ** 2, -1) for c in hair_skin)
            off_mesh = head_mask & ~mesh_px & (skin_d < hair_d)
        grid = np.zeros_like(bound_px)
        sigma_px = np.zeros(bound_px.shape)
        for region, factor in ((bound_px & ~near_lips, 1.0), (near_lips, 0.5), (off_mesh, cfg.lining_off_mesh)):
            step = max(1, int(round(factor * cfg.lining_spacing_m / mpp)))
            lattice = np.zeros_like(grid)
            lattice[step // 2::step, step // 2::step] = True
            grid |= lattice & region
            sigma_px[region] = cfg.lining_sigma_per_step * step
        lined_px = bound_px
        part_px = np.where(bound_px, PART_FACE, PART_STATIC).astype(np.uint8)
        lining = photo_lining(scene, (bound_px | off_mesh) & scene.person & ~edge, grid, sigma_px, part_px, nrm, fid,
                              bary, cfg.lining_behind_m)
    return lining, lined_px, d_lips


def unlined_skin(cfg, face_px, at, lined_px, d_lips):
    """[S, S] bool: the face skin (its skin, brow and crease-ring triangles; at [S, S] the pixels' triangle ids) the
    lining leaves out (lined_px: `face_lining`'s), lining_lip_margin_m and more off the lips' red (d_lips [S, S]
    metres); None when MeshFitConfig.unlined_sigma_per_stride is None."""
    unlined = None  # the face skin the lining leaves out (MeshFitConfig.unlined_sigma_per_stride)
    if cfg.unlined_sigma_per_stride is not None:
        unlined = (face_px & (crease_ring() | skin_triangle_mask(brows=True))[at] & ~lined_px
                   & (d_lips >= cfg.lining_lip_margin_m))
    return unlined
