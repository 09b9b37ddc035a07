"""Completing what the photo does not show, so turned views have no holes or streaks.

- Face: template triangles the photo sees badly (occluded, grazing, or outside the person) get
  Gaussians spread evenly over their 3D area, in the skin's light carried on over the template from where
  the photo shows it, with the detail of the mirror-image point of the face when the photo shows that one.
- Head and torso: the back of the inflated silhouette (a rounded proxy closing the head and
  shoulders behind the visible surface), coloured by extrapolating the colours of the silhouette's
  rim inwards (hair stays hair, a bald head stays skin), plus a wall of Gaussians along the silhouette
  joining the visible front to that back.
- A turned head's far half (mesh_fit, MeshFitConfig.far_side_turn_deg): that back as deep as the near half's mirror
  image along the rays through the person (`mirrored_back`), its hidden side in the near half's colours at its own
  light (`mirrored_colours`).
- The photo layer's lining (`photo_lining`): a coarse layer just behind the photo layer on the head's skin, in its
  colours. The photo layer lets a few per cent through midway between its discs (MeshFitConfig.sigma_per_stride),
  and behind the face lay the back of the head in the hair's colour: a display drawing the head larger than the
  photo's crop showed the layer's lattice as a grid of dark lines over the skin.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gaussian_head_ros.core.avatar import PART_FACE, PART_STATIC, PART_TORSO
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.deform import smoothstep
from gaussian_head_ros.core.reconstruct.builder import GaussianBatch, surface_discs


LINING_DARK_SHARE = 0.75  # `photo_lining` keeps off pixels darker than this share of the lined pixels around them
SEEN_DEPTH_M = 0.004  # a point this close to the depth the photo shows at its pixel is what the photo shows there
OUTLINE_SIGMAS = 2.5  # a cut's section discs reach at most this many standard deviations along the outline (_columns)


@dataclass
class Scene:
    """The source view and its maps (S x S), shared by the completion steps."""

    K: np.ndarray  # [3, 3]
    R: np.ndarray  # [3, 3] head -> camera
    t: np.ndarray  # [3]
    photo: np.ndarray  # [S, S, 3] float32 in [0, 1]
    person: np.ndarray  # [S, S] bool
    depth: np.ndarray  # [S, S] float32 camera depth of the visible surface (inf outside)
    rays: np.ndarray  # [S, S, 3] camera rays with z = 1
    torso_y: float  # head-frame y below which (larger y) Gaussians belong to the torso

    @property
    def size(self) -> int:
        """S, the side of the square source view in pixels."""
        return self.person.shape[0]

    @property
    def centre(self) -> np.ndarray:  # [3] camera centre in the head frame
        """[3] the camera centre in the head frame, metres."""
        return -self.R.T @ self.t

    def to_head(self, cam: np.ndarray) -> np.ndarray:
        """Camera-frame points [..., 3] (metres) -> the head frame."""
        return (cam - self.t) @ self.R

    def project(self, head: np.ndarray):
        """[M, 3] head-frame points -> pixel indices (i, j) [M] int, camera depth [M], inside-image [M] bool."""
        c = head @ self.R.T + self.t
        z = np.maximum(c[:, 2], 1e-6)
        u = self.K[0, 0] * c[:, 0] / z + self.K[0, 2]
        v = self.K[1, 1] * c[:, 1] / z + self.K[1, 2]
        j, i = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        inside = (i >= 0) & (i < self.size) & (j >= 0) & (j < self.size)
        return np.clip(i, 0, self.size - 1), np.clip(j, 0, self.size - 1), c[:, 2], inside

    def visible(self, head: np.ndarray, tol_m: float = SEEN_DEPTH_M) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[M, 3] -> (visible in the photo on the person [M] bool, i, j)."""
        i, j, z, inside = self.project(head)
        vis = inside & self.person[i, j] & (np.abs(self.depth[i, j] - z) < tol_m)
        return vis, i, j

    def part_of(self, head: np.ndarray, base_part: int = PART_STATIC) -> np.ndarray:
        """[N] uint8 part of head-frame points [N, 3]: PART_TORSO below `torso_y` (larger y), else `base_part`."""
        return np.where(head[:, 1] > self.torso_y, PART_TORSO, base_part).astype(np.uint8)


def sample_triangles(v: np.ndarray, faces: np.ndarray, tri_idx: np.ndarray, spacing_m: float, rng):
    """Points spread evenly over chosen triangles, about one per spacing^2 of area: (face index [M], bary [M, 3]).

    Within a triangle the points follow the R2 low-discrepancy sequence (Roberts 2018, "The unreasonable
    effectiveness of quasirandom sequences": steps 1/g and 1/g^2, g = 1.32472 the plastic number) from a random
    start, folded into the triangle: independent uniform points leave gaps (~8 % of the area with discs 0.6 x
    spacing wide, exp(-pi (1.5 sigma / spacing)^2)) where the back showed through a completed cheek as dark
    flecks; evenly spread ones leave almost none."""
    tri = v[faces[tri_idx]]  # [T, 3, 3]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    count = np.maximum(1, np.round(area / spacing_m ** 2)).astype(np.int64)
    fid = np.repeat(tri_idx, count)
    k = np.arange(len(fid)) - np.repeat(np.cumsum(count) - count, count)  # index within its triangle
    g = 1.324717957244746
    start = rng.random((len(tri_idx), 2))
    r = np.mod(np.repeat(start, count, axis=0) + (k + 1)[:, None] * np.array([1 / g, 1 / g ** 2]), 1.0)
    fold = r.sum(1) > 1  # the unit square's upper half, mirrored onto the lower (the triangle)
    r[fold] = 1 - r[fold]
    bary = np.stack([1 - r[:, 0] - r[:, 1], r[:, 0], r[:, 1]], 1)
    return fid, bary.astype(np.float32)


def fill_over_mesh(faces: np.ndarray, known: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[V, C] values at the vertices where known [V] bool, carried over the rest of the mesh (faces [F, 3]) as
    smoothly as the mesh allows: each unknown vertex the mean of its neighbours (the harmonic extension, a sparse
    solve of the graph Laplacian). Unknown vertices in a piece of the mesh with nothing known, and vertices no
    triangle uses, take the mean of the known values. Returns a new [V, C] array (values where known)."""
    from scipy.sparse import coo_matrix, diags
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import spsolve

    nv = len(known)
    values = np.asarray(values, np.float64).reshape(nv, -1)
    out = values.copy()
    fallback = values[known].mean(0) if known.any() else np.zeros(values.shape[1])
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).astype(np.int64)
    e = np.concatenate([e, e[:, ::-1]])
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(nv, nv)).tocsr()
    adj.data[:] = 1.0  # an edge shared by two triangles counts once
    _, comp = connected_components(adj, directed=False)
    reach = np.zeros(nv, bool)
    reach[np.isin(comp, np.unique(comp[known]))] = True
    todo = np.flatnonzero(~known & reach & (np.asarray(adj.sum(1)).ravel() > 0))
    out[~known] = fallback
    if len(todo):
        k = np.flatnonzero(known)
        lap = diags(np.asarray(adj.sum(1)).ravel()) - adj
        rhs = adj[todo][:, k] @ values[k]
        sol = spsolve(lap[todo][:, todo].tocsc(), rhs)
        out[todo] = np.asarray(sol).reshape(len(todo), -1)
    return out


def face_completion(scene: Scene, v: np.ndarray, faces: np.ndarray, covered: np.ndarray, mirror: np.ndarray,
                    face: np.ndarray, vertex_normals: np.ndarray, spacing_m: float, rng,
                    clean: np.ndarray | None = None, max_chroma: float = 0.08, shading_blur_px: float = 8.0,
                    partly: np.ndarray | None = None, side: GaussianBatch | None = None,
                    side_depth_m: tuple[float, float] = (0.004, 0.02),
                    side_reach_m: tuple[float, float] = (0.005, 0.015),
                    side_border_m: tuple[float, float] | None = None) -> GaussianBatch:
    """Gaussians on template triangles the photo covers badly (covered [F] bool false), and on the triangles
    `partly` [F] bool (None: none) the photo shows in part through its silhouette's matte band (mesh_fit's `edge`,
    discs as transparent as the photo's edge is mixed with its background) at the points that no clean pixel shows:
    that strip of surface, seen through the matte alone, was covered by nothing opaque, and turned toward the camera
    it opened as a crack with the dark wall behind (business_person's cheek on a 1024x600 panel; grid25 s25).

    mirror [V] mirror-image vertex of each vertex; face [S, S] bool the pixels that show the face alone (its
    template's triangles on the person, off the silhouette's edge band); clean [S, S] bool the person's pixels
    whose colour is the person's alone (None: all of scene.person). A point the photo shows on a clean pixel, or
    that lies in front of what it shows there (the rest view draws it over that pixel), keeps that pixel's colour.

    Every other point takes the face's light where the photo stops showing it, carried on over the template
    (`fill_over_mesh` of the face pixels' colours blurred by shading_blur_px among themselves, sampled at the
    vertices the photo shows on face pixels), plus the detail of its mirror-image point when the photo shows that
    one (the mirror pixel's colour less the same light there: brows, lips, freckles), as far as the photo shows
    the mirror point squarely (SEEN_COS .. 2 SEEN_COS). The completed skin therefore meets the photo's without a
    step. Taking the mirror's colour itself, or the skin colour extrapolated over the image, gave the other
    cheek's light and the face's mean skin: business_person and obama_speech turned 35-40 deg showed a darker,
    stepped band (the other cheek's shadow near its ear) and a lighter flat patch beside the photo's cheek.

    A point's own pixel whose chromaticity (rgb / sum) is further than max_chroma from the face's own colour
    there (extrapolated off the face pixels) and from its mirror pixel's is not the face (obama_speech: a strip of
    the red background the person mask took in beside the jaw, drawn as a red streak down the turned cheek): the
    mirror's colour, else the light. The points are spread evenly (sample_triangles), the discs 0.7 x spacing_m
    wide (0.9 closed the last pinholes but their tails over the silhouette cost 0.1-0.3 dB at frame 0).

    side: the hidden side already built (hidden_colours.hidden_gaussians' batch; None: none): a made-up point moves to
    the colour of its nearest side Gaussian (`toward_side`) as that lies deeper behind the front (side_depth_m) and
    as near it (side_reach_m), and as near the template's outer edge (side_border_m = (all, none) metres from it; None:
    everywhere), so the completed far cheek meets the side behind its outline at one colour."""
    partly = np.zeros(len(faces), bool) if partly is None else np.asarray(partly, bool) & covered
    todo = np.flatnonzero(~covered | partly)
    if len(todo) == 0:
        return None
    fid, bary = sample_triangles(v, faces, todo, spacing_m, rng)
    clean = scene.person if clean is None else clean
    # seen: on the surface the photo shows there, or in front of it (then the rest view draws it over that pixel)
    pts = np.einsum("mk,mkc->mc", bary, v[faces[fid]])
    i, j, z, inside = scene.project(pts)
    vis = inside & clean[i, j] & scene.person[i, j] & (z < scene.depth[i, j] + SEEN_DEPTH_M)
    keep = ~(partly[fid] & vis)  # on a triangle the photo covers in part, only what its clean pixels do not show
    fid, bary, pts, i, j, vis = fid[keep], bary[keep], pts[keep], i[keep], j[keep], vis[keep]
    if len(fid) == 0:
        return None
    tri = faces[fid]  # [M, 3]
    nrm = np.einsum("mk,mkc->mc", bary, vertex_normals[tri])
    # the face's light: the face pixels' colours blurred among themselves, taken where the photo shows the
    # template's vertices (corners of well-seen triangles) and carried over the rest of the mesh
    from gaussian_head_ros.core.reconstruct.surfaces import masked_blur

    light = masked_blur(scene.photo, face, shading_blur_px)
    vv, vi, vj = scene.visible(v)
    on_seen = np.zeros(len(v), bool)
    on_seen[faces[covered].ravel()] = True
    known = vv & on_seen & face[vi, vj]
    light_v = fill_over_mesh(faces, known, light[vi, vj]) if known.any() else np.full((len(v), 3), 0.5)
    here = np.einsum("mk,mkc->mc", bary, light_v[tri])
    mpts = np.einsum("mk,mkc->mc", bary, v[mirror[tri]])  # the same spot on the other side of the face
    mvis, mi, mj = scene.visible(mpts)
    mvis &= clean[mi, mj]
    own = scene.photo[i, j]
    detail = scene.photo[mi, mj] - np.einsum("mk,mkc->mc", bary, light_v[mirror[tri]])
    # only as much of it as the photo shows the mirror point squarely: near the other silhouette one pixel's
    # colour (its rim light) would be drawn over the whole grazing strip, a streak
    mn = np.einsum("mk,mkc->mc", bary, vertex_normals[mirror[tri]])
    view = mpts - scene.centre
    cos = np.abs(np.sum(mn * view, 1)) / np.maximum(np.linalg.norm(mn, axis=1) * np.linalg.norm(view, axis=1), 1e-12)
    mcol = here + smoothstep(SEEN_COS, 2 * SEEN_COS, cos)[:, None] * detail

    def chroma(c):
        return c / np.maximum(c.sum(-1, keepdims=True), 1e-3)

    from gaussian_head_ros.core.reconstruct.surfaces import push_pull

    fill = push_pull(scene.photo, face.astype(np.float32))[i, j]  # the face's own colour there, or the nearest
    odd = np.linalg.norm(chroma(own) - chroma(fill), axis=-1) > max_chroma
    odd &= ~(mvis & (np.linalg.norm(chroma(own) - chroma(scene.photo[mi, mj]), axis=-1) <= max_chroma))
    vis &= ~odd
    col = here.copy()
    col[vis] = own[vis]
    use = ~vis & mvis
    col[use] = mcol[use]
    if side is not None and len(side):
        share = None
        if side_border_m is not None:  # by the template's outer edge only (the face oval, its longest boundary loop)
            from gaussian_head_ros.core.deform import nearest_points
            from gaussian_head_ros.core.reconstruct.template import boundary_loops

            oval = np.asarray(max(boundary_loops(faces), key=len))
            a, b = v[oval], v[np.roll(oval, -1)]
            edge = (a[:, None] + np.linspace(0.0, 1.0, 8, endpoint=False)[None, :, None] * (b - a)[:, None]).reshape(-1, 3)
            d_edge = nearest_points(pts[~vis].astype(np.float64), edge.astype(np.float64), 1)[0][:, 0]
            share = 1 - smoothstep(side_border_m[0], side_border_m[1], d_edge)
        col[~vis] = toward_side(scene, pts[~vis], col[~vis], side, side_depth_m, side_reach_m, share)
    sigma = np.full(len(pts), 0.7 * spacing_m)
    return surface_discs(pts, nrm, np.clip(col, 0, 1), sigma, None, PART_FACE, face_id=fid, bary=bary)


def toward_side(scene: Scene, pts: np.ndarray, col: np.ndarray, side: GaussianBatch, depth_m: tuple[float, float],
                reach_m: tuple[float, float], share: np.ndarray | None = None) -> np.ndarray:
    """[M, 3] the colours col [M, 3] of made-up face points pts [M, 3] (head frame, metres) moved to the colour of
    each one's nearest Gaussian of the hidden side `side` (the wall and back behind the silhouette) by smoothstep over
    depth_m = (none, all) of how far that Gaussian lies behind the front the photo shows (camera depth; 0 off the
    person), times 1 - smoothstep over reach_m = (all, none) of the distance to it (metres).

    The face completion carries the face's light on over the far cheek to the template's edge at the ear, while the
    side behind the silhouette darkens with its depth (SideLook: side_shade, the far colour from side_far_from_m):
    turned to show that side, the completed cheek stood as a lit mask with its own outline against a dark head
    (issue 11: obama_speech at yaw -30, luminance 0.53 beside 0.20 three pixels apart, lead's session 58; two_children's
    and lp_d8_man_glasses' far side). The completed skin now goes into the side's shade as deep as the side does."""
    from gaussian_head_ros.core.deform import nearest_points

    if len(pts) == 0:
        return col
    d, nb = nearest_points(pts.astype(np.float64), side.means.astype(np.float64), 1, upper=reach_m[1])
    d, nb = d[:, 0], nb[:, 0]
    near = nb < len(side)
    i, j, z, inside = scene.project(side.means[nb[near]].astype(np.float64))
    on = inside & scene.person[i, j]
    behind = np.where(on, z - np.where(on, scene.depth[i, j], 0.0), 0.0)
    w = np.zeros(len(pts))
    w[near] = smoothstep(depth_m[0], depth_m[1], behind) * (1 - smoothstep(reach_m[0], reach_m[1], d[near]))
    if share is not None:
        w *= share
    out = col.astype(np.float64)
    out[near] += w[near, None] * (side.colors[nb[near]] - out[near])
    return out.astype(col.dtype)


def mirrored_back(back: np.ndarray, person: np.ndarray, rays: np.ndarray, R: np.ndarray, t: np.ndarray,
                  K: np.ndarray, head: np.ndarray, blur_px: float = 2.0, ears: np.ndarray | None = None) -> np.ndarray:
    """[S, S] metres: how much deeper (camera depth) the hidden back at each pixel of the head's far half lies once that
    half is the near half's mirror image. back [S, S] camera depth of the proxy's back over person [S, S] bool; rays
    [S, S, 3] camera rays with z = 1; R [3, 3], t [3] head -> camera; K [3, 3]; head [S, S] in 0..1, the share of
    each pixel's back that is the head's (0 on the torso).

    The head is near-symmetric about its mid-sagittal plane (head-frame x = 0). The near half is the one on the
    camera's side of that plane (the photo sees it more squarely); each of its back points, its x negated, is
    projected into the photo and kept where the photo shows the person: a point the photo would see against the
    background beside the far outline is not the head (the photo says so), one along a ray through the person is
    hidden by what the photo shows there. The deepest of them at each far-half pixel, less the back there, is the
    gain (0 where the far half is as deep already, beyond the person and on the near half); blurred by blur_px
    among the far half's pixels (the mirrored points land on the grid unevenly) and weighted by `head`.

    ears [S, S] bool (None: none): the near ear's pixels (surfaces.ear_zones) are not mirrored, and the far half's
    pixels their mirror images would land on take the gain of the far half above and below them (carried down each
    column: the skull's, over the ear and under it). An ear stands out
    of the outline, and the proxy's back behind it lies as deep as the head's: a fin some 6 cm deep beside the
    skull. Mirrored, its back end pushed the far half's back out by 3-5 cm at the ears' rows, and a head turned to
    show that side (obama_speech at yaw -30) showed a second ear there, behind where the far ear lies (ear61)."""
    S = person.shape[0]
    ii, jj = np.nonzero(person)
    pts = ((back[ii, jj, None] * rays[ii, jj]) - t) @ R  # head frame
    side = np.sign(float((-R.T @ t)[0])) or 1.0  # the camera's side of the mid-sagittal plane: the near half
    near = side * pts[:, 0] > 0
    far = np.zeros((S, S), bool)
    far[ii[~near], jj[~near]] = True
    ear = np.zeros(len(pts), bool) if ears is None else ears[ii, jj]
    deepest = np.zeros((S, S), np.float32)
    shadow = np.zeros((S, S), np.float32)  # where the near ear's mirror images land
    for take, out in ((near & ~ear, deepest), (near & ear, shadow)):
        v, u, z = _mirrored_pixels(pts[take], person, R, t, K)
        np.maximum.at(out, (v, u), z.astype(np.float32))
    deepest = cv2.dilate(deepest, np.ones((3, 3), np.uint8))  # the grid's gaps between mirrored points
    gain = np.where(far & (deepest > 0), np.maximum(deepest - back, 0.0), 0.0).astype(np.float32)
    shadow = far & (cv2.dilate(shadow, np.ones((3, 3), np.uint8)) > 0)
    if shadow.any():
        gain = np.where(shadow, _down_columns(gain, far & ~shadow), gain).astype(np.float32)
    if blur_px > 0:
        from gaussian_head_ros.core.reconstruct.surfaces import masked_blur

        gain = np.where(far, masked_blur(gain, far, blur_px), 0.0)
    return (gain * head).astype(np.float32)


def _down_columns(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """[S, S]: values [S, S] carried down each column from its nearest known [S, S] bool row above to the nearest
    below, linearly (one of them alone where the other is missing; 0 where the column knows none)."""
    S = values.shape[0]
    rows = np.broadcast_to(np.arange(S)[:, None], values.shape)
    above = np.maximum.accumulate(np.where(known, rows, -1), axis=0)
    below = np.minimum.accumulate(np.where(known, rows, S)[::-1], axis=0)[::-1]
    cols = np.broadcast_to(np.arange(values.shape[1])[None, :], values.shape)
    va = np.where(above >= 0, values[np.maximum(above, 0), cols], np.nan)
    vb = np.where(below < S, values[np.minimum(below, S - 1), cols], np.nan)
    w = np.where((above >= 0) & (below < S), (rows - above) / np.maximum(below - above, 1), 0.0)
    out = np.where(np.isnan(va), vb, np.where(np.isnan(vb), va, (1 - w) * va + w * vb))
    return np.nan_to_num(out, nan=0.0)


def _mirrored_pixels(pts: np.ndarray, person: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray):
    """Head-frame points pts [M, 3] mirrored across x = 0 and projected: (rows [k], columns [k], camera depths [k]) of
    those landing on person [S, S] bool."""
    S = person.shape[0]
    c = (pts * np.array([-1.0, 1.0, 1.0])) @ R.T + t
    z = np.maximum(c[:, 2], 1e-6)
    u = np.floor(K[0, 0] * c[:, 0] / z + K[0, 2]).astype(np.int64)
    v = np.floor(K[1, 1] * c[:, 1] / z + K[1, 2]).astype(np.int64)
    ok = (u >= 0) & (u < S) & (v >= 0) & (v < S)
    ok[ok] = person[v[ok], u[ok]]
    return v[ok], u[ok], z[ok]


def mirrored_colours(scene: Scene, means: np.ndarray, colors: np.ndarray, clean: np.ndarray, reach_m: float = 0.03,
                     blur_px: float = 6.0, hair_skin: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """[N, 3] rgb: colors [N, 3] of hidden Gaussians at means [N, 3] (head frame, metres), those on the head's far half
    (the side of its mid-sagittal plane x = 0 away from the camera) that the photo does not show taking the photo's
    colour at their mirror image (x negated) where the photo shows the surface at most reach_m in front of that
    mirror point (fully up to half of it) on a clean [S, S] bool pixel. That colour is brought to the far side's own
    light: scaled by the luminance of the colour it replaces over the photo's luminance there blurred by blur_px
    (the near side's pattern, its ear, skin and hair, at the far side's shade). With hair_skin ([3] rgb each, the
    head's hair and the face's skin), a colour nearer the hair's than the skin's is first balanced per channel by the
    far half's median colour over the near half's where such colours are taken (the two halves' hair in their own
    light: lp_s9_monalisa's near hair is purple-brown, her far hair orange-brown); skin keeps its own."""
    from gaussian_head_ros.core.reconstruct.lighting import LUMA

    out = np.array(colors, np.float32, copy=True)
    side = np.sign(float(scene.centre[0])) or 1.0
    i, j, z, inside = scene.project(means)
    shown = inside & scene.person[i, j] & (z < scene.depth[i, j] + SEEN_DEPTH_M)
    sel = np.flatnonzero((side * means[:, 0] < 0) & ~shown)
    if not len(sel):
        return out
    mi, mj, mz, minside = scene.project(means[sel] * np.array([-1.0, 1.0, 1.0]))
    gap = mz - scene.depth[mi, mj]  # how far behind the surface the photo shows there the mirror point lies
    w = (minside & clean[mi, mj] & (gap > -SEEN_DEPTH_M)) * (1 - smoothstep(0.5 * reach_m, reach_m, gap))
    col = scene.photo[mi, mj]
    blurred = cv2.GaussianBlur(scene.photo, (0, 0), blur_px)[mi, mj]
    balance = np.ones((len(sel), 3))
    if hair_skin is not None:
        d_hair, d_skin = (np.sum((blurred - np.asarray(c)) ** 2, -1) for c in hair_skin)
        hairy = smoothstep(0.3, 0.7, d_skin / (d_skin + d_hair + 1e-6))  # 1: the hair's colour rather than the skin's
        taken = (w > 0.5) & (hairy > 0.5)
        if taken.sum() >= 20:
            ratio = np.clip(np.median(out[sel][taken], 0) / np.maximum(np.median(col[taken], 0), 1e-3), 0.25, 4.0)
            balance = 1 + hairy[:, None] * (ratio - 1)
    level = np.sum(blurred * balance * LUMA, -1)
    gain = np.clip((out[sel] @ LUMA) / np.maximum(level, 1e-3), 0.25, 1.5)
    col = col * balance * gain[:, None]
    out[sel] = (1 - w[:, None]) * out[sel] + w[:, None] * col
    return np.clip(out, 0, 1)


def rim_colours(scene: Scene, exclude: np.ndarray, inset_px: int = 2, band_px: int = 10) -> np.ndarray:
    """[S, S, 3] the colours of the silhouette's inner rim (from inset_px to inset_px + band_px inside,
    skipping `exclude`, e.g. the face), extrapolated over the whole image."""
    from gaussian_head_ros.core.reconstruct.surfaces import push_pull

    person = scene.person.astype(np.uint8)
    inner = cv2.erode(person, np.ones((3, 3), np.uint8), iterations=inset_px).astype(bool)
    deep = cv2.erode(person, np.ones((3, 3), np.uint8), iterations=inset_px + band_px).astype(bool)
    band = inner & ~deep & ~exclude
    if band.sum() < 20:
        band = inner
    return push_pull(scene.photo, band.astype(np.float32))


# A surface the photo sees more obliquely than this (cosine between its normal and the line of sight: 72.5 deg off
# it) is seen badly: one pixel stands for more than 3 x its width of surface, and that pixel is mostly the colour
# of the silhouette's edge. Its colour comes from elsewhere: mesh_fit's face completion (covered_triangles) takes
# the mirror side or the nearest skin, the learned generator (core/model/generator.py) its inferred colour.
SEEN_COS = 0.3

WALL_GAP_PX = 2.5  # with an inset, the wall's line this far inside the inset (measured: its columns cover ~1.5 px either side)


def background_colours(photo: np.ndarray, person: np.ndarray, valid: np.ndarray | None = None,
                       gap_px: int = 2) -> np.ndarray:
    """[S, S, 3] the photo's background behind the person: its colours from gap_px outside the person
    mask (inside the photo: `valid`), extrapolated inwards (push-pull)."""
    from gaussian_head_ros.core.reconstruct.surfaces import push_pull

    d_out = cv2.distanceTransform((~person).astype(np.uint8), cv2.DIST_L2, 3)
    known = (d_out > gap_px) & (np.ones_like(person) if valid is None else valid)
    if known.sum() < 20:
        return np.zeros_like(photo, dtype=np.float32)
    return push_pull(photo, known.astype(np.float32))


def edge_opacity(observed: np.ndarray, fg: np.ndarray, bg: np.ndarray, min_contrast: float = 0.1) -> np.ndarray:
    """The coverage of a silhouette pixel from the compositing equation I = a F + (1 - a) B (least squares
    along F - B): observed I, foreground F, background B [M, 3] -> a [M] in [0, 1]. Where F and B differ by
    less than min_contrast the pixel says nothing about a: 1 (opaque)."""
    d = fg - bg
    dd = np.sum(d * d, -1)
    a = np.sum((observed - bg) * d, -1) / np.maximum(dd, 1e-12)
    return np.where(dd > min_contrast ** 2, np.clip(a, 0, 1), 1.0).astype(np.float32)


@dataclass
class SideLook:
    """How the hidden side behind the silhouette changes with depth (back_and_wall's wall columns). A side of one
    colour per outline pixel, all through its depth, showed in a turned view as a flat cut-out sheet (issue 11:
    trump's light sheet behind the head, business_person's skin beside the cheek): a real head's side goes from
    the cheek round to the ear and the hair behind it, and turns away from the light.

    far [S, S, 3]: the side's colour from far_from_m behind the front (ramping in over far_ramp_m; None: the side
    colours all through); shade: the side's colours darkened by this fraction at shade_depth_m behind the front
    and beyond (Lambert: a side facing away from a frontal light; 0 = none); texture [S, S, 3]: the photo's
    detail (its colours less their blur; 0 where it may not be taken, e.g. the face) added to the side, taken
    texture_px_per_m x the depth behind the front further inside the silhouette (the hair's strands go on round
    the side instead of one flat colour; None: none), that reach going back and forth between texture_fold_px =
    (lo, hi) pixels once past hi (fold; None: on inward, past the hair band into the face, where there is none).
    far_to_back [S, S] 0..1: how much of the way to the column's back end (its depth, `colours`' depth_m) the far
    ramp runs instead of ending far_ramp_m after far_from, darkening on to the outline a turned view sees (1 there:
    linear from far_from to the column's back, far_ramp_m at the least; None: far_ramp_m everywhere); back_and_wall's
    back grid takes that much of the colour the columns end in (`back_end`).
    underside [S, S] 0..1: how much of the far colour a side facing down (its outline's outward direction pointing
    down the image, by underside_facing = (none, all) of its downward component) takes, ramping in over
    underside_ramp_m behind the front: an underside turned from a light above (a jaw's; None: none)."""

    far: np.ndarray | None = None
    far_from_m: float = 0.012
    far_from: np.ndarray | None = None  # [S, S] metres: far_from_m per outline pixel (None: far_from_m everywhere)
    far_ramp_m: float = 0.02
    shade: float = 0.0
    shade_depth_m: float = 0.05
    texture: np.ndarray | None = None
    texture_px_per_m: float = 1000.0
    texture_fold_px: tuple[float, float] | None = None  # (lo, hi): the reach goes back and forth between them
    far_to_back: np.ndarray | None = None  # [S, S] 0..1 (see above)
    underside: np.ndarray | None = None  # [S, S] 0..1 (see above)
    # (0, 0.5) and no ramp: business_person's jaw underside 0.73 x the neck below it (yaw 40, chin up 20; underside
    # 1 there), a dark band with a hard edge where the photo's lit neck ends; (0.2, 0.8) at once: 0.90, that edge
    # still hard; over 2 cm: 0.90, the edge a soft turn into the shadow (neck56)
    underside_facing: tuple[float, float] = (0.2, 0.8)
    underside_ramp_m: float = 0.02

    def colours(self, side: np.ndarray, i: np.ndarray, j: np.ndarray, behind_m: np.ndarray,
                inward: np.ndarray | None = None, depth_m: np.ndarray | None = None) -> np.ndarray:
        """[M, 3]: the side's colour at outline pixels (i, j) [M], behind_m [M] metres behind the front; inward
        [M, 2] (image x, y; unit) the way into the silhouette there (for the texture); depth_m [M] metres from the
        front to the back of each one's column (for far_to_back; None: far_to_back unused)."""
        col = side[i, j]
        if self.far is not None:
            start = self.far_from_m if self.far_from is None else self.far_from[i, j]
            w = smoothstep(0.0, self.far_ramp_m, behind_m - start)
            if self.far_to_back is not None and depth_m is not None:
                span = np.maximum(depth_m - start, self.far_ramp_m)
                to_back = np.clip((behind_m - start) / span, 0.0, 1.0)
                k = self.far_to_back[i, j]
                w = (1 - k) * w + k * to_back
            if self.underside is not None and inward is not None:
                lo, hi = self.underside_facing
                down = smoothstep(lo, hi, -inward[:, 1]) * smoothstep(0.0, self.underside_ramp_m, behind_m)
                w = np.maximum(w, self.underside[i, j] * down)
            w = w[:, None]
            col = (1 - w) * col + w * self.far[i, j]
        if self.texture is not None and inward is not None:
            s = self.texture.shape[0]
            reach = fold(behind_m * self.texture_px_per_m, self.texture_fold_px)
            ti = np.clip(np.round(i + inward[:, 1] * reach), 0, s - 1).astype(np.int64)
            tj = np.clip(np.round(j + inward[:, 0] * reach), 0, s - 1).astype(np.int64)
            col = col + self.texture[ti, tj]
        return self.shaded(col, behind_m)

    def back_end(self, i: np.ndarray, j: np.ndarray, depth_m: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The colour [M, 3] a column at outline pixel (i, j) [M], depth_m [M] metres deep, ends in where it runs to
        the far colour on to its back (far_to_back), and that share [M] 0..1; None without far or far_to_back."""
        if self.far is None or self.far_to_back is None:
            return None
        return self.shaded(self.far[i, j], depth_m), self.far_to_back[i, j]

    def shaded(self, col, behind_m):
        """col [..., 3] darkened for points behind_m [...] metres behind the front (the back too: no step where
        the side meets it). numpy arrays or torch tensors (the learned generator's unseen head colour uses the
        same rule: core/model/generator.py, GeneratorConfig.back_shade)."""
        if self.shade <= 0:
            return col
        # gently at the front: the matte edge shows it
        return col * (1 - self.shade * smoothstep(0.0, self.shade_depth_m, behind_m))[..., None]


def fold(x: np.ndarray, band: tuple[float, float] | None) -> np.ndarray:
    """x [...] as it is up to band = (lo, hi), beyond hi reflected back and forth between hi and lo (a triangle
    wave; None: x unchanged)."""
    if band is None or band[1] <= band[0]:
        return x
    lo, hi = band
    w = hi - lo
    u = np.mod(np.maximum(x - hi, 0.0), 2 * w)
    return np.where(x <= hi, x, hi - w + np.abs(u - w))


def back_and_wall(scene: Scene, front_depth: np.ndarray, back_depth: np.ndarray, back_colours: np.ndarray,
                  side_colours: np.ndarray, wall_colours: np.ndarray, open_edge: np.ndarray, spacing_m: float, torso_spacing_m: float,
                  wall_step_m: float, wall_rim_m: float = 0.004, inset_px: float = 0.0,
                  side_look: SideLook | None = None) -> GaussianBatch:
    """The hidden back of the proxy (front_depth/back_depth [S, S] camera depths over scene.person) and
    the wall joining front and back along the silhouette, coloured from wall_colours over its first
    wall_rim_m (metres of depth behind the silhouette) to side_colours from 2 x wall_rim_m back. open_edge
    [S, S] bool marks outline pixels that are a cut (the crop border, the photo's edge): there the body goes
    on, and coarser columns (torso_spacing_m apart) close its section just inside the cut.

    The rim's own colours stay within a few millimetres of the silhouette: each wall column repeats one
    rim pixel along its depth, so a rim colour carried centimetres back shows as a streak in a turned view
    (issue 11: pale streaks over the cheek, ear and jaw of a head turned 20 deg); the side colours are
    blurred (MeshFitConfig.back_blur_px) and carry no streaks. side_look (None: side colours all through) makes
    the side change along the depth (SideLook) on the silhouette's columns, not along a cut."""
    s = scene.size
    person = scene.person
    mpp = float(np.median(back_depth[person])) / scene.K[0, 0] if person.any() else 1e-3  # metres per pixel
    out = []
    # With inset_px, the closed surface keeps out of the silhouette's outermost inset_px (not along a cut), so
    # the photo's pixels there can be a matte that lets the background through. The wall then stands WALL_GAP_PX
    # further in: its thin discs, many along each column, still cover about 1.5 px either side of its line.
    d_in = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 3)
    near_cut = cv2.dilate(open_edge.astype(np.uint8), np.ones((3, 3), np.uint8),
                          iterations=int(np.ceil(inset_px + WALL_GAP_PX)) + 1).astype(bool)
    wall_d = inset_px + WALL_GAP_PX if inset_px > 0 else 0.0  # the wall's line, pixels inside the silhouette
    core = person & ((d_in > wall_d - 0.5) | near_cut) if inset_px > 0 else person
    # Back surface: a grid of `spacing_m` on the head, `torso_spacing_m` on the torso; discs stretched where
    # it is steep, normals pointing away from the camera and outwards where the back curves round. With an
    # inset, the coarse discs (sigma 3-7 px) keep 2.5 sigma behind the wall, and a fine grid (3/4 wall_step_m
    # apart, stretched up to 10 x along the steep rim) fills the rim between, so none spill over the silhouette.
    grad_y, grad_x = np.gradient(back_depth.astype(np.float64))
    fine_px = max(1, int(round(0.75 * wall_step_m / mpp)))
    fine_d = wall_d + 1.5 * 0.6 * fine_px  # the fine grid's first discs, pixels inside the silhouette
    for spacing, torso_grid in ((spacing_m, False), (torso_spacing_m, True)):
        step = max(1, int(round(spacing / mpp)))
        clear = wall_d + 2.5 * 0.6 * step if inset_px > 0 else 0.0  # coarse discs this far inside
        gi, gj = np.meshgrid(np.arange(step // 2, s, step), np.arange(step // 2, s, step), indexing="ij")
        gi, gj = gi.ravel(), gj.ravel()
        keep = core[gi, gj] & ((d_in[gi, gj] >= clear) | near_cut[gi, gj])
        grids = [(gi[keep], gj[keep], spacing, 3.0)]
        if inset_px > 0:
            fi, fj = np.meshgrid(np.arange(0, s, fine_px), np.arange(0, s, fine_px), indexing="ij")
            fi, fj = fi.ravel(), fj.ravel()
            keep = (d_in[fi, fj] >= fine_d) & (d_in[fi, fj] < clear) & ~near_cut[fi, fj]
            grids.append((fi[keep], fj[keep], fine_px * mpp, 10.0))
        for gi, gj, sp, stretch in grids:
            pts = scene.to_head(back_depth[gi, gj, None] * scene.rays[gi, gj])
            keep = (pts[:, 1] > scene.torso_y) == torso_grid
            gi, gj, pts = gi[keep], gj[keep], pts[keep]
            gx, gy = grad_x[gi, gj] / mpp, grad_y[gi, gj] / mpp  # depth change per metre across the image
            n_cam = np.stack([-gx, -gy, np.ones_like(gx)], 1)
            nrm = (n_cam / np.linalg.norm(n_cam, axis=1, keepdims=True)) @ scene.R
            col = back_colours[gi, gj]
            if side_look is not None:  # where it turns sideways, as dark as the side it meets; not where it faces
                # away from the camera (the front view sees the back through the photo layer's gaps: -0.5 dB)
                steep = 1 - 1 / np.linalg.norm(n_cam, axis=1)
                deep = back_depth[gi, gj] - front_depth[gi, gj]
                col = col + steep[:, None] * (side_look.shaded(col, deep) - col)
                end = None if torso_grid else side_look.back_end(gi, gj, deep)
                if end is not None:  # behind a side that darkens on to its back: the colour its columns end in. A
                    # turned view sees the back's discs as the outline past the columns' back ends (the back lies
                    # deeper a few pixels in): a thin light rim round business_person's neck turned 40 deg, chin up
                    # 20 (neck56). The head's grid only: the photo's own view sees the torso's back through its
                    # unlined photo layer (both grids: self lp_d0's frame 0 35.008 -> 34.995 dB, a fringe of them
                    # below the bust's cut; faded out by the cut, lp_d18's 40.049 -> 40.034; the head's only, with
                    # MeshFitConfig.neck_underside: 35.005 / 40.034), and the rim a turned view sees is the head's
                    col = col + end[1][:, None] * (end[0] - col)
            out.append(surface_discs(pts, nrm, col, np.full(len(pts), 0.6 * sp),
                                     _view_dirs(scene, pts), scene.part_of(pts), max_stretch=stretch))
    # Wall: columns along the silhouette (every wall_step_m) from the front depth to the back depth; along a
    # cut (the crop border, the photo's own edge) coarser columns (torso_spacing_m) close the body's section,
    # or a head that turns or pitches shows its inside there (issue 11: a 67 px see-through seam between the
    # jacket and the cut at the bottom of a torso pitched 20 deg).
    contours, _ = cv2.findContours(core.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    step = max(1, int(round(wall_step_m / mpp)))
    pix = [c[::step, 0, ::-1] for c in contours if len(c) > 2 * step]  # (i, j) along each outline
    pix = np.concatenate(pix) if pix else np.zeros((0, 2), np.int64)
    cut = open_edge[pix[:, 0], pix[:, 1]]
    cut_every = max(1, int(round(torso_spacing_m / wall_step_m)))
    cut_pix = pix[cut][::cut_every]
    # Signed distance to the outline, the image border counting as outside (so a cut has a direction too).
    padded = np.pad(core, 2).astype(np.uint8)
    signed = (cv2.distanceTransform(1 - padded, cv2.DIST_L2, 3) - cv2.distanceTransform(padded, cv2.DIST_L2, 3))[2:-2, 2:-2]
    grad_y, grad_x = np.gradient(cv2.GaussianBlur(signed, (0, 0), 1.5).astype(np.float64))
    wall_back = back_depth
    if inset_px > 0:  # as deep as the back is where its fine discs begin, a few pixels further in
        r = int(np.ceil(fine_d - wall_d)) + 1
        wall_back = cv2.dilate(np.where(core, back_depth, 0).astype(np.float32), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    # half a pixel out: the very silhouette (no inset); half a pixel in along a cut: behind the photo layer's last row.
    # A cut's section is the body going on: the colour at the cut all through (the side colours, the head's hair or
    # background-lit rim when the photo ends just below the chin, drew a light line along trump's jacket bottom)
    for p, step_m, shift_px, side, look, within in (
            (pix[~cut], wall_step_m, 0.5 if inset_px == 0 else 0.0, side_colours, side_look, None),
            (cut_pix, torso_spacing_m, -0.5, wall_colours, None, core)):  # the cut's coarse discs kept within it
        out.append(_columns(scene, p, np.stack([grad_x[p[:, 0], p[:, 1]], grad_y[p[:, 0], p[:, 1]]], 1),
                            front_depth, wall_back, step_m, shift_px, wall_colours, side, wall_rim_m, look, within))
    return GaussianBatch.concat(out)


def _columns(scene: Scene, pix: np.ndarray, out_dir: np.ndarray, front_depth: np.ndarray, back_depth: np.ndarray,
             step_m: float, shift_px: float, rim_colours: np.ndarray, side_colours: np.ndarray,
             rim_m: float, look: SideLook | None = None, within: np.ndarray | None = None) -> GaussianBatch | None:
    """Columns of discs along the camera rays of outline pixels pix [M, 2] (i, j), every step_m from the
    front to the back depth, facing out_dir [M, 2] (image x, y; towards the outside), the rays moved
    shift_px along it; rim_colours over the first rim_m behind the front, side_colours from 2 x rim_m.

    With `within` ([S, S] bool, the outline's inside), each disc lies with one axis along the outline (the image
    tangent) and one along the depth, and reaches at most OUTLINE_SIGMAS standard deviations along the outline
    before leaving `within` (or the image): a cut's coarse round discs (sigma 6.3 mm) stood out past the cut's
    ends, edge-on, as dark spikes at both ends of trump's and sadtalker's shoulders (render node at fov 30,
    session 18)."""
    if not len(pix):
        return None
    ei, ej = pix[:, 0], pix[:, 1]
    out_dir = out_dir / np.maximum(np.linalg.norm(out_dir, axis=1, keepdims=True), 1e-9)
    zf, zb = front_depth[ei, ej], back_depth[ei, ej]
    n_per = np.maximum(1, np.ceil((zb - zf) / step_m)).astype(np.int64)
    idx = np.repeat(np.arange(len(ei)), n_per)
    frac = (np.arange(len(idx)) - np.repeat(np.cumsum(n_per) - n_per, n_per) + 0.5) / n_per[idx]
    z = zf[idx] + frac * (zb[idx] - zf[idx])
    rays = scene.rays[ei[idx], ej[idx]].astype(np.float64).copy()
    rays[:, :2] += shift_px * out_dir[idx] / scene.K[0, 0]
    pts = scene.to_head(z[:, None] * rays)
    nrm = np.concatenate([out_dir[idx], np.zeros((len(idx), 1))], 1) @ scene.R
    a = np.clip((z - zf[idx]) / max(rim_m, 1e-6) - 1, 0, 1)[:, None]  # rim colour at the front only
    side = (side_colours[ei[idx], ej[idx]] if look is None
            else look.colours(side_colours, ei[idx], ej[idx], z - zf[idx], -out_dir[idx], (zb - zf)[idx]))
    col = (1 - a) * rim_colours[ei[idx], ej[idx]] + a * side
    if within is None:
        return surface_discs(pts, nrm, col, np.full(len(pts), 0.7 * step_m), None, scene.part_of(pts))
    # seen along their rays, without stretch: axis 0 along the depth, axis 1 along the outline
    out = surface_discs(pts, nrm, col, np.full(len(pts), 0.7 * step_m), _view_dirs(scene, pts), scene.part_of(pts),
                        max_stretch=1.0)
    tangent = np.stack([-out_dir[:, 1], out_dir[:, 0]], 1)  # image (x, y)
    reach = int(np.ceil(OUTLINE_SIGMAS * 0.7 * step_m * scene.K[0, 0] / max(float(zf.min()), 1e-6))) + 1
    room = np.full(len(ei), float(reach))  # pixels along the outline, either way, to the first one outside
    for sign in (1.0, -1.0):
        free = np.ones(len(ei), bool)
        for k in range(1, reach + 1):
            qi = np.round(ei + 0.5 + sign * k * tangent[:, 1] - 0.5).astype(np.int64)
            qj = np.round(ej + 0.5 + sign * k * tangent[:, 0] - 0.5).astype(np.int64)
            ok = (qi >= 0) & (qi < scene.size) & (qj >= 0) & (qj < scene.size)
            ok[ok] = within[qi[ok], qj[ok]]
            room[free & ~ok] = np.minimum(room[free & ~ok], k - 0.5)
            free &= ok
    limit = np.maximum(room[idx], 0.5) / OUTLINE_SIGMAS * z / scene.K[0, 0]  # metres at each disc's depth
    out.scales[:, 1] = np.minimum(out.scales[:, 1], limit).astype(out.scales.dtype)
    return out


def _view_dirs(scene: Scene, pts: np.ndarray) -> np.ndarray:
    d = pts - scene.centre
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def covered_triangles(v, faces, fid, seen, R, t, K) -> np.ndarray:
    """[F] bool: triangles the photo shows with enough pixels for their area and slant (not more obliquely than
    SEEN_COS)."""
    nf = len(faces)
    count = np.bincount(fid[seen], minlength=nf)[:nf]
    tri = v[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(n, axis=1)
    n /= np.maximum(2 * area[:, None], 1e-12)
    c = tri.mean(1)
    cam = c @ R.T + t
    view = c - (-R.T @ t)
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    cos = np.abs(np.sum(view * n, 1))
    expected = area * cos / (cam[:, 2] / K[0, 0]) ** 2  # pixels it would cover if nothing hid it
    return (cos > SEEN_COS) & (count >= 0.6 * expected - 1)


def photo_lining(scene: Scene, lined: np.ndarray, grid: np.ndarray, sigma_px: np.ndarray, part_px: np.ndarray,
                 normals_px: np.ndarray, fid_px: np.ndarray, bary_px: np.ndarray, behind_m: float,
                 blur_px: float = 3.0) -> GaussianBatch | None:
    """The photo layer's lining: a Gaussian on each pixel of grid [S, S] bool (the source view) over lined [S, S] bool,
    behind what the photo shows there by behind_m along the pixel's ray (metres; where the photo layer lies, not the
    template's surface), tangent to it (normals_px [S, S, 3] unit, head frame, out of the surface: discs facing the
    camera stood out of a sloping cheek in turned views), round, of std-dev sigma_px [S, S] (pixels at that depth),
    coloured like the photo (blurred by blur_px among the lined pixels: it is seen only through the gaps of the layer
    in front), of part part_px [S, S] uint8: PART_FACE ones bound as the photo layer is there (triangle fid_px [S, S]
    at bary_px [S, S, 3]: they follow the skin's expressions), others placed by the rig as the photo layer's there
    are. -> GaussianBatch, or None when no grid pixel is left."""
    from gaussian_head_ros.core.reconstruct.surfaces import masked_blur

    # not the dark features (luma below LINING_DARK_SHARE of the lined pixels' around them: nostrils, creases, moles),
    # which a lining lightened through the photo's dark discs; and centred where the whole disc (2 sigma) lies on
    # what is left: tails over the silhouette, an ear's rim or a nostril drew the lining's colour in front of
    # what the photo shows there (lp_d0's frame 0: -0.6 dB; with both: -0.01)
    luma = scene.photo @ LUMA
    lined = lined & (luma >= LINING_DARK_SHARE * masked_blur(luma, lined, 8.0))
    take = np.zeros_like(lined)
    on = grid & lined & np.isfinite(scene.depth)
    for sd in np.unique(sigma_px[on]):
        r = int(np.ceil(2 * sd))
        inner = cv2.erode(lined.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        take |= on & (sigma_px == sd) & inner.astype(bool)
    i, j = np.nonzero(take)
    if len(i) == 0:
        return None
    depth = scene.depth[i, j] + behind_m
    pts = scene.to_head(scene.rays[i, j] * depth[:, None])  # rays have z = 1: camera depth along z
    part = part_px[i, j].astype(np.uint8)
    bound = part == PART_FACE
    return surface_discs(pts, normals_px[i, j], masked_blur(scene.photo, lined, blur_px)[i, j],
                         sigma_px[i, j] * depth / scene.K[0, 0], None, part,
                         face_id=np.where(bound, fid_px[i, j], -1), bary=np.where(bound[:, None], bary_px[i, j], 0.0))
