"""Sets of surface Gaussians (flat discs on a surface) and their assembly into a GaussianAvatar."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from gaussian_head_ros.core.avatar import (JAW_PARTS, PART_EYE, PART_FACE, PART_STATIC, GaussianAvatar, rgb_to_sh_dc,
                                         sh_zonal)
from gaussian_head_ros.core.drive import matrices_to_quats


@dataclass
class GaussianBatch:
    """N Gaussians in the head frame before activation (linear scales, plain opacities)."""

    means: np.ndarray  # [N, 3] head frame, metres
    normals: np.ndarray  # [N, 3] unit, pointing out of the surface
    colors: np.ndarray  # [N, 3] rgb in [0, 1]
    scales: np.ndarray  # [N, 3] linear standard deviations, metres
    quats: np.ndarray  # [N, 4] wxyz
    opacities: np.ndarray  # [N] in (0, 1)
    part: np.ndarray  # [N] uint8 PART_*
    face_id: np.ndarray  # [N] int32, -1 unbound
    bary: np.ndarray  # [N, 3]

    def __len__(self) -> int:
        return int(self.means.shape[0])

    def take(self, idx) -> "GaussianBatch":
        """The Gaussians `idx` selects (an index array or boolean mask over N), every field alike."""
        return GaussianBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(batches: list["GaussianBatch"]) -> "GaussianBatch":
        """One batch of the given ones in order; None and empty batches are skipped. Raises ValueError when
        nothing is left (numpy.concatenate of nothing)."""
        batches = [b for b in batches if b is not None and len(b)]
        return GaussianBatch(**{f.name: np.concatenate([getattr(b, f.name) for b in batches])
                                for f in fields(GaussianBatch)})


def surface_discs(means: np.ndarray, normals: np.ndarray, colors: np.ndarray, sigma: np.ndarray,
                  view_dirs: np.ndarray | None, part, opacity: float = 0.99, max_stretch: float = 3.0,
                  thickness: float = 0.15, face_id=None, bary=None, along=None, aspect: float = 1.0) -> GaussianBatch:
    """Flat Gaussians tangent to a surface.

    means/normals/colors [N, 3], sigma [N] the in-plane standard deviation seen along view_dirs [N, 3]
    (unit, camera -> point). With view_dirs, each disc is stretched along the surface's slope by
    1 / cos(angle to the view), up to max_stretch, so a pixel's footprint on a slanted surface is
    covered; without, discs are round, or, given `along` ([3] or [N, 3], a direction not along the normal;
    view_dirs None), `aspect` x sigma along it (its part in the surface's plane) and sigma across.
    Thickness is a fraction of sigma."""
    n = np.asarray(normals, np.float64)
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    m = len(n)
    if view_dirs is not None:
        v = np.asarray(view_dirs, np.float64)
        cos = np.abs(np.sum(v * n, 1))
        e1 = v - np.sum(v * n, 1, keepdims=True) * n
        stretch = 1.0 / np.maximum(cos, 1.0 / max_stretch)
    elif along is not None:
        t = np.broadcast_to(np.asarray(along, np.float64), (m, 3))
        e1 = t - np.sum(t * n, 1, keepdims=True) * n
        stretch = np.full(m, float(aspect))
    else:
        e1 = np.zeros((m, 3))
        stretch = np.ones(m)
    # Where the view is along the normal (or none given), any tangent will do.
    weak = np.linalg.norm(e1, axis=1) < 1e-6
    helper = np.where(np.abs(n[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    e1 = np.where(weak[:, None], np.cross(n, helper), e1)
    e1 /= np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-12)
    e2 = np.cross(n, e1)
    rot = np.stack([e1, e2, n], axis=2)  # [N, 3, 3] columns: local axes
    sigma = np.asarray(sigma, np.float64).reshape(m)
    scales = np.stack([sigma * stretch, sigma, np.maximum(sigma * thickness, 1e-5)], 1)
    part = np.broadcast_to(np.asarray(part, np.uint8), (m,)).copy()
    return GaussianBatch(
        means=np.asarray(means, np.float32), normals=n.astype(np.float32),
        colors=np.clip(np.asarray(colors, np.float32), 0, 1), scales=scales.astype(np.float32),
        quats=matrices_to_quats(rot).astype(np.float32) if m else np.zeros((0, 4), np.float32),
        opacities=np.full(m, opacity, np.float32), part=part,
        face_id=(np.full(m, -1, np.int32) if face_id is None else np.asarray(face_id, np.int32)),
        bary=(np.zeros((m, 3), np.float32) if bary is None else np.asarray(bary, np.float32)))


def line_directions(luma: np.ndarray, sigma_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """luma [S, S] an image's luminance -> (theta [S, S] radians, coherence [S, S] in [0, 1]): the direction
    (cos theta, sin theta) in pixel (x = column, y = row) coordinates along which the image varies least (along a
    line: a wrinkle, a lash, a hair strand) and how much more it varies across it, from the structure tensor of
    its Scharr gradients integrated over a Gaussian of sigma_px: (l1 - l2) / (l1 + l2) of its eigenvalues, 0
    for a dot or flat skin, 1 for a straight line or edge."""
    import cv2

    img = np.asarray(luma, np.float32)
    gx = cv2.Scharr(img, cv2.CV_32F, 1, 0) / 32.0
    gy = cv2.Scharr(img, cv2.CV_32F, 0, 1) / 32.0
    jxx, jxy, jyy = (cv2.GaussianBlur(a, (0, 0), sigma_px) for a in (gx * gx, gx * gy, gy * gy))
    across = 0.5 * np.arctan2(2.0 * jxy, jxx - jyy)  # the dominant gradient's direction
    coherence = np.sqrt((jxx - jyy) ** 2 + 4.0 * jxy ** 2) / np.maximum(jxx + jyy, 1e-12)
    return (across + 0.5 * np.pi).astype(np.float32), np.clip(coherence, 0.0, 1.0).astype(np.float32)


def image_shaped_discs(normals: np.ndarray, view_dirs: np.ndarray, cam_axes: np.ndarray, pixel_m: np.ndarray,
                       sigma_px: np.ndarray, max_stretch: float = 3.0, thickness: float = 0.15
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Flat Gaussians on a surface whose footprint in the photo is a given ellipse: normals [N, 3] (unit),
    view_dirs [N, 3] (unit, camera -> point), cam_axes [N, 2, 3] the unit head-frame directions of the ellipse's
    two image axes (in the photo's image plane), pixel_m [N] one photo pixel at the point's depth (metres),
    sigma_px [N, 2] the ellipse's standard deviations along those axes (photo pixels) -> (scales [N, 3] metres,
    quats [N, 4] wxyz; axes: the disc's two in-plane axes, then the normal). Each image axis is carried onto the
    tangent plane along the view ray (a slanted surface stretches it); no in-plane axis beyond max_stretch x its
    image length. Thickness is a fraction of the smaller in-plane axis (as surface_discs)."""
    n = np.asarray(normals, np.float64)
    v = np.asarray(view_dirs, np.float64)
    a = np.asarray(cam_axes, np.float64) * np.asarray(pixel_m, np.float64)[:, None, None]  # [N, 2, 3]
    vn = np.sum(v * n, 1)
    vn = np.where(np.abs(vn) < 1.0 / max_stretch, np.copysign(1.0 / max_stretch, vn), vn)
    d = a - (np.einsum("nkc,nc->nk", a, n) / vn[:, None])[..., None] * v[:, None, :]  # [N, 2, 3] on the tangent plane
    helper = np.where(np.abs(n[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(n, e1)
    A = np.stack([np.einsum("nkc,nc->nk", d, e1), np.einsum("nkc,nc->nk", d, e2)], 1)  # [N, 2 (e), 2 (image)]
    s2 = np.asarray(sigma_px, np.float64) ** 2
    cov = np.einsum("nik,nk,njk->nij", A, s2, A)
    lam, u = np.linalg.eigh(cov)  # ascending
    lam = np.maximum(lam, 1e-18)
    cap = (max_stretch * np.sqrt(s2.max(1)) * np.asarray(pixel_m, np.float64)) ** 2
    lam = np.minimum(lam, cap[:, None])
    ax1 = u[:, 0, 1, None] * e1 + u[:, 1, 1, None] * e2  # the longer axis
    ax1 /= np.linalg.norm(ax1, axis=1, keepdims=True)
    ax2 = np.cross(n, ax1)
    rot = np.stack([ax1, ax2, n], axis=2)
    s_long, s_short = np.sqrt(lam[:, 1]), np.sqrt(lam[:, 0])
    scales = np.stack([s_long, s_short, np.maximum(s_short * thickness, 1e-5)], 1)
    return scales.astype(np.float32), matrices_to_quats(rot).astype(np.float32)


def edge_on_sh(colors: np.ndarray, made_up: np.ndarray, axes: np.ndarray, facing: np.ndarray,
               floor: float) -> np.ndarray:
    """SH colours [N, K, 3] of discs whose colour seen from the photo's camera is colors [N, 3] in [0, 1], of which
    made_up [N, 3] makes up for how little of its pixel an edge-on disc covers there (mesh_fit's colour
    refinement): seen along d the disc shows colors - made_up + made_up x g, g = 1 - k (u - facing), u = -d . axis,
    k = (1 + floor) / (1 - facing): the whole made-up part from the photo's camera, none once seen
    (1 - facing) / (1 + floor) more squarely, -floor x it face-on (a linear band can only tilt, so it overshoots;
    `floor` bounds that). axes [N, 3] unit disc normals, turned towards the photo's camera, in the Gaussians' rest
    frame; facing [N] in [0, 1) |cos| between the normal and the photo's line of sight to the disc. A disc's share
    of a pixel grows with |d . normal|. SH degree 1 (K = 4: 3DGS's band 1, `avatar.sh_zonal`) where any made_up
    is not zero, else the DC term alone (K = 1)."""
    colors = np.asarray(colors, np.float32)
    made_up = np.asarray(made_up, np.float32)
    dc = rgb_to_sh_dc(colors - made_up)[:, None, :]
    if not np.any(made_up):
        return rgb_to_sh_dc(colors)[:, None, :]
    f = np.clip(np.asarray(facing, np.float64), 0.0, 0.999)
    k = (1.0 + float(floor)) / (1.0 - f)
    sh = sh_zonal(made_up, axes, (1.0 + k * f, k))  # legendre(t) = 1 + k (t + facing), t = d . axis = -u
    sh[:, 0] += dc[:, 0]
    return sh


def to_avatar(batch: GaussianBatch, template_vertices: np.ndarray, template_faces: np.ndarray, sh=None,
              **kw) -> GaussianAvatar:
    """Raw (log-scale, logit-opacity, SH) avatar from a batch; only PART_FACE Gaussians and the PART_STATIC ones
    carried on a triangle keep a triangle binding, JAW_PARTS ones their jaw weights and PART_EYE ones their lag
    behind the eyeball's turn (bary, see core.deform).
    sh [N, K, 3]: the SH colours (`edge_on_sh`); None: the batch's colours as the DC term."""
    bound = ((batch.part == PART_FACE) | (batch.part == PART_STATIC)) & (batch.face_id >= 0)
    keep_bary = bound | np.isin(batch.part, JAW_PARTS) | (batch.part == PART_EYE)
    op = np.clip(batch.opacities.astype(np.float64), 1e-4, 1 - 1e-4)
    return GaussianAvatar(
        means=np.ascontiguousarray(batch.means, np.float32),
        normals=np.ascontiguousarray(batch.normals, np.float32),
        sh=rgb_to_sh_dc(batch.colors)[:, None, :] if sh is None else np.ascontiguousarray(sh, np.float32),
        logit_opacities=np.log(op / (1 - op)).astype(np.float32),
        log_scales=np.log(np.maximum(batch.scales, 1e-7)).astype(np.float32),
        quats=np.ascontiguousarray(batch.quats, np.float32),
        part=batch.part.astype(np.uint8),
        face_id=np.where(bound, batch.face_id, -1).astype(np.int32),
        bary=np.where(keep_bary[:, None], batch.bary, 0).astype(np.float32),
        template_vertices=np.asarray(template_vertices, np.float32),
        template_faces=np.asarray(template_faces, np.int32), **kw)
