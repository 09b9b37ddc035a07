"""The photo's dark mouth corners follow the template's lip corners (the driver's corner shade).

A grinning photo (obama_official, trump_official in ../shared; lp_d8_man_glasses' pout) shows a dark line where its
lips meet that runs past the corners MediaPipe puts on it, and the rest pose (core.expression) keeps it there: on
obama_official's avatar the Gaussians darker than 0.8 x the skin beside the corner reach 8.5 / 9 mm beyond the rest
template's outer corners (61 / 291), bound to the cheek triangles there (57, 186, 212 / 287, 410, 422, 432). Under a
pucker (tpsmm_driving frame 49) the template's corners come in 3.5 / 5.6 mm, those cheek triangles carry their
Gaussians 0.3 mm in to 1.1 mm out: the dark line stays where the photo had it, the drawn mouth reads as wide as at
rest (oo61, session 61: the templates narrow 10-11.5 mm, obama_official's render 0-1 mm, trump_official's 3.5) and
the reader puts its corners at the line's outer end (pucker 0.00-0.02 where the driver's is 0.2-0.45).

The rule (`shade_rows`, once per avatar; `shift`, per control, on the driver's numpy path after the frames are
applied; zero at rest, so the rest pose is exact):
- Per outer corner c, in the rest template's head frame (x right, y down, metres): u = how far a Gaussian lies
  beyond c along x, away from the mouth, dy its height below c.
- The skin: the median luma of the bound face Gaussians 0 < u < SKIN_U_M and SKIN_DY_M[0] < |dy| < SKIN_DY_M[1]
  (above and below the lip line, beside the corner).
- The shade: those within LINE_DY_M of the corner's height darker than SHADE x that skin. Its extent: the end of its
  first unbroken run of BIN_M bins from the corner out (at most REACH_M); none below MIN_EXTENT_M (a relaxed mouth's
  corner, whose own shade the lip triangles carry: the rule leaves it alone).
- Rows: the bound face Gaussians 0 < u < extent + FADE_M and |dy| < DY_M[1] (dark or not: the skin between the
  shade's rows moves with them); weight = (1 - smoothstep(extent, extent + FADE_M, u)) x
  (1 - smoothstep(DY_M[0], DY_M[1], |dy|)). Where the weight falls off the skin is pulled apart: each row grows by
  1 + |grad weight| x how far its share moves it from its neighbours (`shift`), so no hole opens.
- Each row moves by its own triangle's rule plus weight x how far corner c comes in towards the mouth (along the
  head's x axis) past the template's displacement at its own binding point, both read off the falloff frames'
  tables: the shade comes in with the corner, the skin beyond it spreads over the fade, and each row keeps its own
  triangle's turn and stretch. Only inwards: as the corner goes out (a smile, the photo's own grin) the lips come
  over the shade and nothing moves, so the photo's own expression still draws the photo. (Taking the corner's whole
  displacement difference, out and up too, cost tpsmm_driving's self frame 0 0.18 dB: 38.4607 -> 38.2773.)
  (Rebinding the rows to weight x the corner's displacement alone, a falloff frame of the corner's triangle, left
  those with a small weight behind their neighbours as the jaw dropped: holes 3-5 mm wide beside the corners.)

Measured (corner61; the reader, FaceLandmarker in IMAGE mode, on 512 px renders of main's avatars under oo61's
tracked controls; the drawn mouth's narrowing from frame 10 / the template's, mm in the head frame): tpsmm_driving
frames 46 / 49 / 52 (template 9.5 / 9.1 / 10.8): obama_official 2.8 / 1.1 / 2.5 -> 5.4 / 3.2 / 5.8, trump_official
3.0 / 3.1 / 4.0 -> 5.4 / 5.8 / 6.1, lp_d8_man_glasses 2.3 / 3.0 / 2.4 -> 7.1 / 8.5 / 8.7 (pucker 0.86-0.94 -> 0.98),
obama_speech 3.9 / 1.9 / 3.8 -> 6.1 / 4.4 / 4.6, lp_s9_monalisa 5.0-5.5 -> 6.2-6.5, two_children_multiface 6.7-8.5
-> 8.7-10.5; lp_d18 frames 18 / 21 / 24 (template 14.2 / 16.4 / 16.6): obama_official 7.1 / 8.0 / 8.5 -> 9.3 / 10.0
/ 10.6, trump_official 8.3 / 9.7 / 9.6 -> 9.8 / 10.7 / 10.6, lp_d8_man_glasses 7.3 / 7.6 / 6.7 -> 8.9 / 10.8 /
10.2. Avatars whose shade does not reach MIN_EXTENT_M (business_person, astronaut_eileen_collins,
lp_d9_woman_turned) are driven exactly as before. trump_official's subject's left corner is still read on the grin's
crease rising towards the cheek, off the lip line this rule moves (its pucker under lp_d18 0.01-0.05 -> 0.03-0.11).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_FACE
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.deform import smoothstep, smoothstep_slope

# The skin the shade is measured against: beside the corner (out to 10 mm), 4-8 mm above and below its lip line
# (oo61's corner_exp.py: obama_official's luma there 0.61 / 0.49 right / left, the shade's rows 0.01-0.48)
SKIN_U_M = 0.010
SKIN_DY_M = (0.004, 0.008)
# A row of the corner's line is shade when darker than this share of that skin (obama_official: 62 / 61 rows within
# 3 mm of each corner's height, 0.8 x; the skin rows' luma standard deviation is 0.02-0.16 of their median on the
# nine portraits' and four clips' avatars)
SHADE = 0.8
# How far from the corner's height a row counts for the shade's extent: the line where a grin's lips meet is 1-2 mm
# high (obama_official's shade rows dy -2.9..2.6 mm, half of them within 1.2)
LINE_DY_M = 0.002
# The extent is measured in bins this long, out to REACH_M at most (obama_official 8.5 / 9 mm; a cheek crease beyond
# 15 mm is no longer the mouth's line)
BIN_M = 0.001
REACH_M = 0.015
# A shorter shade is a relaxed mouth's own corner (the lip triangles carry it): the rule leaves that avatar alone.
# The unbroken runs (mm, subject's right / left corner) on main's avatars: obama_official 3 / 3, trump_official 4 / 3,
# obama_speech 4 / 4, two_children_multiface 3 / 5, lp_s9_monalisa 4 / 1, lp_d8_man_glasses 1 / 3 (the shade's rows
# beyond have gaps: obama_official's reach 8.5 / 9 mm, which the fade takes); business_person 2 / 1,
# astronaut_eileen_collins 1 / 2, lp_d9_woman_turned 1 / 0; the clips' frame 0: lp_d0 1 / 2, sadtalker 2 / 2,
# tpsmm_driving 2 / 3, lp_d18 3 / 1. A threshold this close to the relaxed mouths' 2 mm is a measured partial
# choice (corner61), not a margin.
MIN_EXTENT_M = 0.003
# Beyond the shade the rows' share of the corner's move falls to 0 over this much skin, and within DY_M[0] of the
# corner's height they take all of it, none beyond DY_M[1]. Fading over 6 mm and 2-4 mm opened holes (the black
# backdrop) at the shade's outer end and above and below it under tpsmm_driving's pucker on obama_official and
# trump_official, even with `shift`'s growth; over 10 mm and 2-8 mm none shows (/tmp/corner61/v3.png, v4.png)
FADE_M = 0.010
DY_M = (0.002, 0.008)
# Depth band: rows more than this in front of or behind the corner (head frame z) are not the mouth's surface
DEPTH_M = 0.010


def shade_rows(verts: np.ndarray, means: np.ndarray, colours: np.ndarray, bound: np.ndarray):
    """[V >= 478, 3] rest template (MediaPipe topology, head frame, metres), [N, 3] rest means, [N, 3] rgb in [0, 1],
    [N] bool the Gaussians bound to face triangles -> (rows [M] int64, corner [M] int64 vertex each follows (61 or
    291), weight [M] float64 in (0, 1], |grad weight| [M] 1/m in the x-y plane), the module docstring's rule. Empty
    when the template is not MediaPipe's or no corner's shade reaches MIN_EXTENT_M."""
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    verts = np.asarray(verts, np.float64)
    if not lmk.has_mediapipe_topology(len(verts)):
        return empty
    m = np.asarray(means, np.float64)
    luma = np.asarray(colours, np.float64) @ LUMA
    bound = np.asarray(bound, bool)
    mid = 0.5 * (verts[lmk.MOUTH_CORNER_R, 0] + verts[lmk.MOUTH_CORNER_L, 0])
    out = []
    for c in (lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L):
        u = (m[:, 0] - verts[c, 0]) * np.sign(verts[c, 0] - mid)
        ady = np.abs(m[:, 1] - verts[c, 1])
        near = bound & (np.abs(m[:, 2] - verts[c, 2]) < DEPTH_M) & (u > 0)
        skin = near & (u < SKIN_U_M) & (ady > SKIN_DY_M[0]) & (ady < SKIN_DY_M[1])
        if not skin.any():
            continue
        shade = near & (u < REACH_M) & (ady < LINE_DY_M) & (luma < SHADE * float(np.median(luma[skin])))
        filled = np.zeros(int(round(REACH_M / BIN_M)), bool)
        filled[np.minimum((u[shade] / BIN_M).astype(np.int64), len(filled) - 1)] = True
        extent = BIN_M * (int(np.argmin(filled)) if not filled.all() else len(filled))
        if extent < MIN_EXTENT_M:
            continue
        along, across = 1.0 - smoothstep(extent, extent + FADE_M, u), 1.0 - smoothstep(DY_M[0], DY_M[1], ady)
        weight = along * across
        grad = np.hypot(smoothstep_slope(extent, extent + FADE_M, u) * across,
                        smoothstep_slope(DY_M[0], DY_M[1], ady) * along)
        rows = np.flatnonzero(near & (weight > 0))
        out.append((rows, np.full(len(rows), c, np.int64), weight[rows], grad[rows]))
    if not out:
        return empty
    return tuple(np.concatenate(x) for x in zip(*out))


@dataclass
class CornerShade:
    """`shade_rows`' rows with what `shift` needs of a deform.Rig (falloff frames: the template's displacement at a
    point, head-posed, is delta[k][:, :3] @ barycentric)."""

    rows: np.ndarray  # [M] int64 Gaussian rows (bound face Gaussians)
    side: np.ndarray  # [M] float32 +1 where the row's corner lies on the template's +x side of the mouth, else -1
    weight: np.ndarray  # [M] float32 share of the corner's move taken in place of their own triangle's
    grad: np.ndarray  # [M] float32 |grad weight| (1/m): how fast that share falls off around the row
    corner_frame: np.ndarray  # [M] int64 falloff frame of a triangle holding the row's corner vertex
    corner_bary: np.ndarray  # [M, 3] float32 that vertex's barycentric unit vector in it
    own_frame: np.ndarray  # [M] int64 falloff frame of the row's own triangle
    own_bary: np.ndarray  # [M, 3] float32 the row's barycentric coordinates on it


def corner_shade(rig, means: np.ndarray, colours: np.ndarray, part: np.ndarray) -> CornerShade | None:
    """A deform.Rig, [N, 3] rest means, [N, 3] rgb in [0, 1], [N] parts -> the avatar's CornerShade (`shade_rows` on
    its bound face Gaussians), None when no corner's shade reaches MIN_EXTENT_M. Raises ValueError if a corner vertex
    lies on no template triangle."""
    bound = (rig.tri >= 0) & (np.asarray(part) == PART_FACE)
    rows, corner, weight, grad = shade_rows(rig.verts, means, colours, bound)
    if not len(rows):
        return None
    c_frame, c_bary = np.zeros(len(rows), np.int64), np.zeros((len(rows), 3), np.float32)
    for c in np.unique(corner):
        f, k = np.nonzero(rig.faces == c)
        if not len(f):
            raise ValueError(f"template vertex {c} lies on no triangle: the corner shade has nothing to follow")
        c_frame[corner == c] = rig.k_fade + f[0]
        c_bary[corner == c, k[0]] = 1.0
    side = np.sign(rig.verts[corner, 0] - 0.5 * (rig.verts[lmk.MOUTH_CORNER_R, 0] + rig.verts[lmk.MOUTH_CORNER_L, 0]))
    return CornerShade(rows, side.astype(np.float32), weight.astype(np.float32), grad.astype(np.float32), c_frame,
                       c_bary, rig.k_fade + rig.tri[rows], np.asarray(rig.bary[rows], np.float32))


def shift(delta: np.ndarray, head_rotation: np.ndarray, shade: CornerShade) -> tuple[np.ndarray, np.ndarray]:
    """[K, 3, 6] a control's frame tables (drive.FrameTables.delta), [3, 3] the head frame's posed rotation
    (FrameTables.rot of the rig's head frame), a CornerShade -> ([M, 3] float32 what to add to its rows' posed means
    (metres, posed head frame): weight x how far the corner comes in towards the mouth (along the head's x axis)
    past the row's own binding point; [M] float32 >= 1 what to multiply their scales by: 1 + |grad weight| x that
    distance, the most the skin between rows that take different shares is pulled apart, so it stays closed). Zero
    and one at rest (zero deltas), and wherever the corner moves out or along with the row (a smile, the photo's own
    grin: the lips' Gaussians come over the shade there, and the photo's own expression draws the photo)."""
    d_corner = np.einsum("mij,mj->mi", delta[shade.corner_frame, :, :3], shade.corner_bary)
    d_own = np.einsum("mij,mj->mi", delta[shade.own_frame, :, :3], shade.own_bary)
    out = shade.side[:, None] * np.asarray(head_rotation, np.float32)[:, 0][None, :]  # [M, 3] away from the mouth
    inward = np.minimum(np.einsum("mi,mi->m", d_corner - d_own, out), 0.0)  # <= 0: the corner comes in
    growth = 1.0 - shade.grad * inward
    return ((shade.weight * inward)[:, None] * out).astype(np.float32), growth.astype(np.float32)
