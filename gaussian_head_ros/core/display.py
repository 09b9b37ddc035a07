"""The face display's virtual camera: how the head is framed on a panel of any aspect ratio.

The display camera looks at the head frame's origin (the head's centre) from `distance_m` straight ahead
(core.render.head_viewmat). Its intrinsics (`display_intrinsics`) follow one rule for every panel:

- size: `fov_deg` is the field of view across the panel's SHORTER side, so the square that a 512x512 display
  shows (the whole head, hair and ears, with the margin of that view) fits the panel in both directions: the
  tighter of the two fields of view sizes the head. On a square or landscape panel (width >= height) this is the
  vertical field of view, as before: K is the same as `intrinsics_from_fov(fov_deg, width, height)`, bit for bit.
- place: centred left-right. A portrait panel (height > width) has room above and below that square; its bottom
  edge goes to where the avatar's torso ends (`torso_bottom`: the photo's crop cuts the torso there, below it
  there is only the display's background), so that no strip of background shows under a cut torso: on a panel a
  little taller than square the head rises toward the top as in a portrait photo (never past the square's top
  edge); on a taller one (480x800) it sits about centred, its centre (the head frame's origin) up to
  HEAD_BELOW_MIDDLE of the panel's height below the middle when that brings the torso's cut to the bottom edge.
  Where the torso ends higher still (a photo cut at the chest: two_children_multiface) the head is centred and
  the rest below the torso's cut is the display's background colour.

The principal point moves with the placement (cx = width / 2, cy within HEAD_BELOW_MIDDLE x height below the
middle or above it); the render node publishes this K in its camera_info, so a rectifier or an overlay projects
exactly as the picture was drawn. Measured on business_person at 480x800 (panel24, s24; rendered, alpha > 0.1,
the torso left out): head columns 82..379 (of 480), its top at row 226, the torso down to the bottom row.
"""

from __future__ import annotations

import math

import numpy as np

from gaussian_head_ros.core.avatar import PART_TORSO

TORSO_EDGE_PERCENTILE = 99.0  # of the torso Gaussians' image heights: their lower edge (1 % lie below: the cut's fuzz)
# The panel's bottom edge this far (image-plane units at depth 1: 1.2 cm at 0.6 m) above the torso's edge, so that the
# torso still reaches the bottom when it sways with the head (it follows the head's turns partly; with the edge at
# the torso's own, business_person's cut rose into view at a bottom corner when the head turned: see below)
TORSO_INSET = 0.02
# How far (a fraction of the panel's height) the head's centre may sit below the panel's middle so that the torso
# reaches the bottom edge: a strip of background a few pixels high under a cut torso looks like a glitch (at 480x800
# the torso of business_person and lp_d9_woman_turned ends ~28 px above the bottom with the head exactly centred).
# 0.07 lets TORSO_INSET apply in full at 480x800 and 600x1024 to a torso cut at mesh_fit's crop (y/z 0.416 at 0.6 m):
# driven at yaw +-35 / pitch +-12 and pitch +-20, the worst share of the bottom row showing background was 12 % /
# 42 % (480x800 / 600x1024, business_person) at 0.05, 0 % / 13 % at 0.06, 0 % / 0 % at 0.07 (lp_d9_woman_turned:
# 3 % / 3 %, its hair's tips; panel24 s24)
HEAD_BELOW_MIDDLE = 0.07


def torso_means(means: np.ndarray, part: np.ndarray, logit_opacities: np.ndarray) -> np.ndarray:
    """[M, 3] float32 rest-pose means of an avatar's torso Gaussians with an opacity of at least 0.5 (head frame,
    metres): what `torso_bottom` reads (a bust fringe, mesh_fit's bust_fringe_m, fades out below the photo's cut: it
    is not where the torso covers the panel). means [N, 3] the avatar's canonical means, part [N] its PART_* labels,
    logit_opacities [N]."""
    keep = (np.asarray(part) == PART_TORSO) & (np.asarray(logit_opacities) >= 0.0)  # sigmoid >= 0.5
    return np.asarray(means, np.float32)[keep]


def torso_bottom(torso: np.ndarray, distance_m: float) -> float | None:
    """Where the avatar's torso ends as the display camera sees the rest pose: the TORSO_EDGE_PERCENTILE of y / z
    over its torso Gaussians (image-plane units at depth 1, y down; the camera of
    core.render.head_viewmat(distance_m): the head frame's origin at depth distance_m). torso [M, 3] head frame,
    metres (`torso_means`). None when there are no torso Gaussians in front of the camera. Raises ValueError for a
    distance that is not positive."""
    if not distance_m > 0:
        raise ValueError(f"camera distance must be positive, got {distance_m}")
    torso = np.asarray(torso, np.float64).reshape(-1, 3)
    z = torso[:, 2] + distance_m
    front = z > 1e-3
    if not front.any():
        return None
    return float(np.percentile(torso[front, 1] / z[front], TORSO_EDGE_PERCENTILE))


def display_intrinsics(fov_deg: float, width: int, height: int, bottom: float | None = None) -> np.ndarray:
    """[3, 3] float32 K (pixels, pixel centres at integer + 0.5) of a width x height face display: `fov_deg`
    degrees across the shorter side, centred left-right; on a portrait panel the image's bottom edge TORSO_INSET
    above `bottom` (the torso's lower edge, image-plane y at depth 1: `torso_bottom`) when the head's centre is then
    at most HEAD_BELOW_MIDDLE below the middle (the head square at the top at most), else (or None) the head
    centred (module docstring). Raises ValueError for a field of view outside 1..170 degrees or a size below 1
    pixel."""
    if not 1.0 <= fov_deg <= 170.0:
        raise ValueError(f"field of view {fov_deg} deg is outside 1..170")
    if width < 1 or height < 1:
        raise ValueError(f"display size {width}x{height} must be at least 1x1 pixels")
    half_fov = math.tan(math.radians(fov_deg) / 2)
    f = 0.5 * min(width, height) / half_fov  # (the same expression as intrinsics_from_fov's when height <= width)
    cy = height / 2
    if height > width:
        half = 0.5 * height / f  # half the panel's height at depth 1: its bottom edge with the head centred
        highest = max(half * (1 - 2 * HEAD_BELOW_MIDDLE), half_fov)  # ... with the head lowest (its square inside)
        lowest = 2 * half - half_fov  # ... with the head square at the top
        # below the middle only as far as it brings the torso's cut to the bottom edge (TORSO_INSET inside it, the
        # head no lower than `highest`); where it cannot, centred
        edge = half if bottom is None or bottom < highest else min(max(float(bottom) - TORSO_INSET, highest), lowest)
        cy = height - edge * f
    return np.array([[f, 0, width / 2], [0, f, cy], [0, 0, 1]], np.float32)
