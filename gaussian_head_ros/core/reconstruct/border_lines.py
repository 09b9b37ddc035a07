"""Thin lines across the face mesh's outline (mesh_fit step 3): a glasses' rim, hinge and arm, an earring's hook, a
hair strand over the temple. The photo layer puts a pixel inside the outline on the face mesh (bound to its triangle)
and one just outside on the rounded head proxy (static), and the two surfaces meet there in a groove: at
lp_d8_man_glasses' temples the mesh's last 2-3 pixels fall back 2 cm (its edge seen edge-on) and the proxy, bent
towards the mesh by a smoothed fill of their difference (source_view.surface_points), comes forward again within 3-4
pixels outside, so a line across the groove spans 2.3 cm of depth over 5 pixels. Turned 30 deg, its pixels on the two
walls of the groove drew apart by some 10 pixels: his lens rims and hinges drawn twice (sessions 58-60).

`thin_lines` finds the photo's thin light and dark lines, `straddling` the pixels of those that go on across the
outline (within a reach either side of it), and `onto_face` puts them on one body: the groove filled under them (the
depth map's grey opening over the reach, never further from the camera than it was), and those outside the outline
bound to the face like those inside (the triangle of the nearest face pixel), so the whole line moves with the face.
Pixels are the source camera's crop ([S, S] maps)."""

from __future__ import annotations

import cv2
import numpy as np

from gaussian_head_ros.core.colour import LUMA


def thin_lines(photo: np.ndarray, width_px: int, level: float) -> np.ndarray:
    """[S, S, 3] float 0..1 photo -> [S, S] bool: pixels of lines narrower than about width_px (pixels) that are at
    least `level` (luminance, 0..1) lighter or darker than the photo around them (white / black top-hat over a
    width_px disc). Raises ValueError for a width under 3 pixels."""
    if width_px < 3:
        raise ValueError(f"a thin line's width must be at least 3 pixels, got {width_px}")
    y = np.asarray(photo, np.float32) @ LUMA.astype(np.float32)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width_px, width_px))
    return ((cv2.morphologyEx(y, cv2.MORPH_TOPHAT, disc) >= level)
            | (cv2.morphologyEx(y, cv2.MORPH_BLACKHAT, disc) >= level))


def straddling(line: np.ndarray, face: np.ndarray, outside: np.ndarray, reach_px: float) -> tuple[np.ndarray, np.ndarray]:
    """[S, S] bool line pixels (`thin_lines`), [S, S] bool the face mesh's pixels, [S, S] bool the pixels outside it
    that may move (the head's, not the torso nor the silhouette's band), reach (pixels) -> (off, on) [S, S] bool: the
    pixels within reach_px of the outline, outside it (of `outside`) and inside it, of the lines (8-connected over those
    two) that cross the outline: a rim going on into its lens, an arm into its hinge, a strand over the forehead."""
    d_in = cv2.distanceTransform(face.astype(np.uint8), cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform((~face).astype(np.uint8), cv2.DIST_L2, 5)
    off = line & outside & ~face & (d_out <= reach_px)
    on = line & face & (d_in <= reach_px)
    n, lab = cv2.connectedComponents((off | on).astype(np.uint8), connectivity=8)
    crossing = np.zeros(n, bool)
    crossing[lab[off]] = True
    crossing &= np.bincount(lab[on], minlength=n) > 0
    crossing[0] = False  # (label 0: not a line)
    return off & crossing[lab], on & crossing[lab]


def onto_face(off: np.ndarray, on: np.ndarray, face: np.ndarray, person: np.ndarray, reach_px: float,
              front: np.ndarray, pts: np.ndarray, rays: np.ndarray, R: np.ndarray, t: np.ndarray, nrm: np.ndarray,
              fid: np.ndarray, bary: np.ndarray):
    """The photo layer's surfaces with a line's pixels about the face's outline on one body (`straddling`'s off and on
    [S, S] bool; face, person [S, S] bool): both at the depth map's grey opening over a (2 reach_px + 1) square
    where that is nearer the camera (the groove between the mesh's edge and the proxy filled; front [S, S] camera z,
    metres, over the person), on their own rays (rays [S, S, 3], surfaces.pixel_rays; pts [S, S, 3] the points in the
    head frame), their normals kept (nrm [S, S, 3] head frame: the discs' footprints in the photo as they were; the
    filled surface's normals cost tpsmm_driving's frame 0 0.1 dB); `off` bound to the triangle (fid [S, S]) and
    barycentric coordinates (bary [S, S, 3]) of its nearest face pixel and joining the face. R [3, 3], t [3]: head ->
    camera. -> copies (front, pts, nrm, fid, bary, face [S, S] bool with `off`). Raises ValueError when `off` has
    pixels but the face none."""
    front, pts, nrm, fid, bary = front.copy(), pts.copy(), nrm.copy(), fid.copy(), bary.copy()
    moved = off | on
    if not moved.any():
        return front, pts, nrm, fid, bary, face.copy()
    if not face.any():
        raise ValueError("no face pixels to move the lines onto")
    k = 2 * int(np.ceil(reach_px)) + 1
    far = float(front[person].max()) if person.any() else float(front.max())
    z = np.where(person, front, far).astype(np.float32)
    opened = cv2.morphologyEx(z, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    filled = np.where(moved, np.minimum(opened, front), front)
    front[moved] = filled[moved]
    pts[moved] = (filled[moved][:, None] * rays[moved] - t) @ R
    _, labels = cv2.distanceTransformWithLabels((~face).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    fi, fj = np.nonzero(face)  # the zero pixels of the transform, labelled 1.. in this (row-major) order
    by_label = np.zeros(int(labels.max()) + 1, np.int64)
    by_label[labels[fi, fj]] = np.arange(len(fi))
    near = by_label[labels[off]]
    fid[off], bary[off] = fid[fi[near], fj[near]], bary[fi[near], fj[near]]
    return front, pts, nrm, fid, bary, face | off
