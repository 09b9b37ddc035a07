"""From the photo's pose of the face to the avatar's rest pose: the photo's own expression taken out.

The reconstructor builds its Gaussians where the photo shows them, on the photo's template V_photo. The
avatar's rest template is V_rest = V_photo - expression (core.expression), and `drive()` with the
control whose expression is that same displacement must give the photo back. So every Gaussian is
moved by the exact inverse of what `drive()` will do to it (same formulas, same frames):

- face Gaussians (bound to a template triangle): the triangle's rigid change of frame from V_photo to
  V_rest, offset and orientation rotated with it, scales divided by the growth `drive()` gives them from
  V_rest to V_photo (`photo_growth`, core.deform.triangle_growth); then (`cover_rest`, the one exception to the
  exact inverse) skin discs the photo's expression spread apart, widened to cover at rest;
- mouth interior Gaussians: turned back about the jaw hinge by their (quantised) share of the photo's
  jaw angle, and narrowed back by the sideways stretch the photo's lip opening gives them
  (core.deform.mouth_stretch);
- static, torso and unbound face Gaussians within the falloff band of the template (core.deform): moved
  back by the share of the template's displacement the band gives them;
- everything else does not move with expressions (`under_chin`'s skin, PART_UNDER_CHIN, stays where it is built).

The head pose too (`turn_torso`): `drive()` turns the torso by only a fraction of the head rotation, so the
torso is turned back by the rest of the photo's own head rotation.
"""

from __future__ import annotations

import cv2
import numpy as np

from gaussian_head_ros.core.avatar import JAW_PARTS, PART_FACE, PART_STATIC, PART_TORSO, PART_UNDER_CHIN
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.deform import (ClosestPoints, DriveConfig, axis_angle_x, bound_growth, build_rig,
                                           chin_turn, falloff_binding, falloff_rows, inverse_metrics,
                                           jaw_level_share, jaw_pivot, matrix_to_quat, mouth_lateral, mouth_stretch,
                                           quantised_jaw_weight, quat_multiply, scaled_rotations,
                                           stretch_grown_triangles, triangle_frames)
from gaussian_head_ros.core.control import quat_to_matrix
from gaussian_head_ros.core.reconstruct.builder import GaussianBatch


def photo_jaw_angle(v_rest: np.ndarray, v_photo: np.ndarray, max_rad: float) -> float:
    """The jaw angle `drive()` will read from the chin when the photo's expression is applied (radians)."""
    piv = jaw_pivot(v_rest)
    ang = chin_turn(np.asarray(v_rest, np.float64)[lmk.CHIN] - piv, np.asarray(v_photo, np.float64)[lmk.CHIN] - piv)
    return float(np.clip(ang, 0.0, max_rad))


def photo_growth(v_photo: np.ndarray, v_rest: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3] photo and rest templates, [F, 3] -> [F] the factor `drive()` grows a bound Gaussian of each
    triangle by when the photo's expression is applied to the rest template (core.deform.triangle_growth of
    the rest -> photo deformation, on the lips the square root of the area ratio; 1 where the two agree). The rest pose
    divides by it, so frame 0 gives back the Gaussians as built."""
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    t_r, t_p = np.asarray(v_rest, np.float64)[faces], np.asarray(v_photo, np.float64)[faces]
    _, area_p = triangle_frames(np.asarray(v_photo, np.float64), faces)
    _, area_r = triangle_frames(np.asarray(v_rest, np.float64), faces)
    ratio = np.maximum(area_p, 1e-20) / np.maximum(area_r, 1e-20)
    g = bound_growth(inverse_metrics(t_r), t_p, ratio, stretch_grown_triangles(v_rest, faces))
    return np.where(np.all(t_r == t_p, axis=(1, 2)), 1.0, g)


def triangle_maps(v_photo: np.ndarray, v_rest: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[F, 3, 3] linear maps taking each triangle's photo edge vectors (and unit normal) to its rest ones."""
    def basis(v):
        a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
        n = np.cross(b - a, c - a)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-15)
        return np.stack([b - a, c - a, n], 2)

    bp = basis(np.asarray(v_photo, np.float64))
    ok = np.abs(np.linalg.det(bp)) > 1e-18
    out = np.tile(np.eye(3), (len(faces), 1, 1))
    out[ok] = basis(np.asarray(v_rest, np.float64))[ok] @ np.linalg.inv(bp[ok])
    return out


def covariances(quats: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """[M, 4] wxyz (any length), [M, 3] linear std-devs -> [M, 3, 3] float64 covariances R diag(s^2) R^T."""
    rot = quat_to_matrix(quats)
    s2 = np.asarray(scales, np.float64) ** 2
    return rot @ (s2[:, :, None] * rot.transpose(0, 2, 1))


def cover_rest(rest: GaussianBatch, photo: GaussianBatch, v_photo: np.ndarray, v_rest: np.ndarray,
               faces: np.ndarray, share: float, most: float = 1.5) -> int:
    """Widen the rest pose's bound skin Gaussians (the first len(photo) rows of `rest`, `to_rest_pose` of `photo`,
    possibly changed since) so that each covers, along every direction, at least `share` of what the photo's own
    disc covers carried by its triangle's photo -> rest map (`triangle_maps`: their rest covariance C becomes the
    smallest that holds both C and share^2 A C_photo A^T, but no more than `most` times C's extent along any
    direction). In place; returns the number of rows widened.

    Why: `to_rest_pose` divides a bound Gaussian by the one isotropic factor `drive()` grows it by (core.deform.
    triangle_growth: the largest stretch, so stretched skin keeps its rows closed). Where the photo's expression
    stretched the skin one way and squeezed it the other (a smile round the mouth corners, an opened jaw's chin), the
    rest pose spreads the discs' centres apart along the squeezed direction (by 1 / s2) while it shrinks them all by
    s1 sqrt(s2): astronaut_eileen_collins' smiling photo left a fan of radial gaps in her rest skin round the mouth
    (the back wall and the cavity seen through them as dark specks and light streaks at every tpsmm frame). Rows a
    triangle distorts less than 1 / share (largest stretch over the root of the squeeze) are left exactly as they
    are, so `drive()` with the photo's expression gives them back as built (frame 0); wider ones come back wider
    along the direction the photo squeezed. Not the lips (core.deform.stretch_grown_triangles: they unroll, and
    widened across they covered the opened mouth's corners under tpsmm's and sadtalker's openings: trump_official).
    The limit: where the photo folds a triangle almost flat (the smile's corners) the map spreads it 3-7x; widened
    that far, the corners' discs, grown again by a wide opening, drew a grey wedge over the mouth's corner
    (astronaut_eileen_collins and trump_official under sadtalker's laugh, frame 29); 1.5 keeps the widening of 9 in
    10 of the widened rows whole (astronaut: median 1.07, 90th percentile 1.34). share <= 0: nothing changes."""
    n = len(photo)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    skin = stretch_grown_triangles(np.asarray(v_rest, np.float64), faces)
    bound = np.flatnonzero((rest.part[:n] == PART_FACE) & (rest.face_id[:n] >= 0))
    bound = bound[skin[rest.face_id[bound].astype(np.int64)]]
    if share <= 0 or not bound.size:
        return 0
    a = triangle_maps(v_photo, v_rest, faces)[rest.face_id[bound].astype(np.int64)]
    c_rest = covariances(rest.quats[bound], rest.scales[bound])
    c_want = share ** 2 * (a @ covariances(photo.quats[bound], photo.scales[bound]) @ a.transpose(0, 2, 1))
    # whiten by the rest covariance: the wanted one's eigenvalues above 1 are where it reaches further
    lam, q = np.linalg.eigh(c_rest)
    half = q * np.sqrt(np.maximum(lam, 1e-30))[:, None, :]  # C_rest = half half^T
    inv = q / np.sqrt(np.maximum(lam, 1e-30))[:, None, :]  # inv^T C_rest inv = I
    mu, u = np.linalg.eigh(inv.transpose(0, 2, 1) @ c_want @ inv)
    wide = mu[:, -1] > 1.0 + 1e-6
    if not wide.any():
        return 0
    hu = half[wide] @ u[wide]
    cov = hu @ (np.clip(mu[wide], 1.0, most ** 2)[:, :, None] * hu.transpose(0, 2, 1))
    lam2, axes = np.linalg.eigh(cov)
    axes[np.linalg.det(axes) < 0, :, 0] *= -1
    rows = bound[wide]
    rest.scales[rows] = np.sqrt(np.maximum(lam2, 1e-14)).astype(np.float32)
    rest.quats[rows] = matrix_to_quat(axes).astype(np.float32)
    return int(wide.sum())


def stretch_points(points: np.ndarray, v_rest: np.ndarray, v_posed: np.ndarray | None,
                   inverse: bool = False) -> np.ndarray:
    """[M, 3] mouth-interior points at rest -> [M, 3] stretched sideways as `drive()` stretches them when the rest
    template v_rest [V, 3] is deformed to v_posed [V, 3]: x + (sx - 1) * mouth_lateral(x) (core.deform.mouth_stretch,
    mouth_lateral; inverse: narrowed back from there, the same piecewise-linear map undone). v_posed None:
    unchanged. Sideways only, so it commutes with the jaw's turn about the x axis."""
    p = np.array(points, np.float64)
    if v_posed is None:
        return p
    v_rest = np.asarray(v_rest, np.float64)
    sx, cx = mouth_stretch(v_rest, np.asarray(v_posed, np.float64) - v_rest)
    if inverse:  # y = x + (sx - 1) u(x), u the clipped offset: inside the corners u = (y - cx) / sx
        p[:, 0] -= (sx - 1.0) * mouth_lateral(v_rest, cx + (p[:, 0] - cx) / sx)
    else:
        p[:, 0] += (sx - 1.0) * mouth_lateral(v_rest, p[:, 0])
    return p


def turn_points(points: np.ndarray, jaw_weights: np.ndarray, v_rest: np.ndarray, theta: float,
                levels: int, v_posed: np.ndarray | None = None) -> np.ndarray:
    """[M, 3] mouth-interior points with [M] jaw weights -> [M, 3] turned as `drive()` turns them for the jaw
    angle theta (radians) on the rest template v_rest, and stretched sideways as it does for the template v_posed
    (`stretch_points`; None: not stretched)."""
    share = jaw_level_share(quantised_jaw_weight(jaw_weights, levels) / (levels - 1), theta)
    c = jaw_pivot(v_rest)
    p = stretch_points(points, v_rest, v_posed)
    return np.einsum("mij,mj->mi", axis_angle_x(share * theta), p - c) + c


def _rotate(batch: GaussianBatch, idx: np.ndarray, rot: np.ndarray, centre: np.ndarray) -> None:
    """Rigidly turn batch rows idx by rot [M, 3, 3] about centre [3] (in place)."""
    p = batch.means[idx].astype(np.float64) - centre
    batch.means[idx] = (np.einsum("mij,mj->mi", rot, p) + centre).astype(np.float32)
    batch.normals[idx] = np.einsum("mij,mj->mi", rot, batch.normals[idx].astype(np.float64)).astype(np.float32)
    batch.quats[idx] = quat_multiply(matrix_to_quat(rot), batch.quats[idx]).astype(np.float32)


def turn_mouth(batch: GaussianBatch, v_rest: np.ndarray, theta: float, levels: int,
               v_posed: np.ndarray | None = None, inverse: bool = False) -> None:
    """Turn the mouth interior and the jaw's underside (rows with a part in JAW_PARTS, jaw weight bary[:, 0]) by
    its quantised share of the jaw angle theta about the hinge of v_rest, as `drive()` does (negative theta: back),
    and stretch it sideways as `drive()` does for the template v_posed (`stretch_points`; inverse: narrow it back).
    In place."""
    idx = np.flatnonzero(np.isin(batch.part, JAW_PARTS))
    if idx.size and v_posed is not None:
        batch.means[idx] = stretch_points(batch.means[idx], v_rest, v_posed, inverse).astype(np.float32)
    if not idx.size or theta == 0.0:
        return
    share = jaw_level_share(quantised_jaw_weight(batch.bary[idx, 0], levels) / (levels - 1), theta)
    _rotate(batch, idx, axis_angle_x(share * theta), jaw_pivot(v_rest))


def to_rest_pose(batch: GaussianBatch, v_photo: np.ndarray, v_rest: np.ndarray, faces: np.ndarray,
                 theta: float, cfg: DriveConfig) -> GaussianBatch:
    """Gaussians built on the photo's template v_photo [V, 3] -> the same at rest on v_rest [V, 3]
    (faces [F, 3]), the mouth interior turned back by the photo's jaw angle theta (radians), the Gaussians
    in the template's falloff band moved back. A copy."""
    levels = max(2, int(cfg.levels))
    out = batch.take(np.arange(len(batch)))
    bound = np.flatnonzero((out.part == PART_FACE) & (out.face_id >= 0))
    if bound.size:
        fid = out.face_id[bound].astype(np.int64)
        fr_p, _ = triangle_frames(np.asarray(v_photo, np.float64), faces)
        fr_r, _ = triangle_frames(np.asarray(v_rest, np.float64), faces)
        rot = (fr_r @ fr_p.transpose(0, 2, 1))[fid]  # [M, 3, 3] photo -> rest change of each parent
        b = out.bary[bound].astype(np.float64)
        on_p = np.einsum("mk,mkc->mc", b, np.asarray(v_photo, np.float64)[faces[fid]])
        on_r = np.einsum("mk,mkc->mc", b, np.asarray(v_rest, np.float64)[faces[fid]])
        off = out.means[bound].astype(np.float64) - on_p
        out.means[bound] = (on_r + np.einsum("mij,mj->mi", rot, off)).astype(np.float32)
        out.normals[bound] = np.einsum("mij,mj->mi", rot, out.normals[bound].astype(np.float64)).astype(np.float32)
        out.quats[bound] = quat_multiply(matrix_to_quat(rot), out.quats[bound]).astype(np.float32)
        out.scales[bound] = (out.scales[bound] / photo_growth(v_photo, v_rest, faces)[fid, None]).astype(np.float32)
    turn_mouth(out, v_rest, -theta, levels, v_photo, inverse=True)
    undo_falloff(out, v_photo, v_rest, faces, cfg)
    return out


def undo_falloff(batch: GaussianBatch, v_photo: np.ndarray, v_rest: np.ndarray, faces: np.ndarray,
                 cfg: DriveConfig, iters: int = 6) -> float:
    """Static, torso and unbound face Gaussians near the template share its displacement in `drive()`
    (core.deform's falloff, bound by their rest position): move them to the rest positions that the
    displacement v_photo - v_rest carries back to where they are now (fixed-point iterations). In place;
    returns the largest remaining error, metres.

    Each pass searches again only the rows the last one moved (deform.ClosestPoints, as turn_torso; the carried
    rows' binding is their own): 2.9-5.0k of 14-21k candidates after the first pass on four portraits, the same
    binding as the whole `build_rig` of every pass, bit for bit."""
    from scipy.spatial import cKDTree

    d = np.asarray(v_photo, np.float64) - np.asarray(v_rest, np.float64)  # [V, 3]
    moved = np.linalg.norm(d, axis=1)
    if not moved.any() or cfg.falloff_m <= 0:
        return 0.0
    part = batch.part
    cand = np.flatnonzero((part == PART_STATIC) | (part == PART_TORSO) | ((part == PART_FACE) & (batch.face_id < 0)))
    target = batch.means[cand].astype(np.float64)
    gap, _ = cKDTree(np.asarray(v_photo, np.float64)).query(target, distance_upper_bound=cfg.falloff_m + moved.max() + 0.01)
    keep = np.isfinite(gap)
    cand, target = cand[keep], target[keep]
    v_rest = np.asarray(v_rest, np.float64)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    face_id = batch.face_id[cand].astype(np.int64)
    carried, near = falloff_rows(part[cand], face_id, len(faces), cfg.falloff_m)
    # build_rig's falloff frames of the candidates: fade [M] bool, their triangle tri [M] and coefficients coef [M, 3]
    fade, tri, coef = carried.copy(), np.where(carried, face_id, 0), np.zeros((len(cand), 3))
    coef[carried] = np.asarray(batch.bary[cand], np.float64)[carried]
    closest = ClosestPoints(v_rest, faces)  # a pass searches again only the rows the last one moved
    p, err = target.copy(), 0.0
    for _ in range(iters):
        if near.any():
            f, b, w = falloff_binding(p[near], v_rest, faces, cfg.falloff_m, closest=closest)
            fade[near], tri[near], coef[near] = w > 0, f, b
        shift = np.zeros_like(p)
        shift[fade] = np.einsum("mk,mkc->mc", coef[fade], d[faces[tri[fade]]])
        new = target - shift
        err = float(np.abs(new - p).max()) if len(p) else 0.0
        p = new
    batch.means[cand] = p.astype(np.float32)
    return err


def turn_torso(batch: GaussianBatch, head_rotation: np.ndarray, v_rest: np.ndarray, faces: np.ndarray,
               cfg: DriveConfig, iters: int = 4) -> int:
    """The torso (PART_TORSO rows) as the photo shows it -> at rest, for the photo's head rotation
    `head_rotation` [3, 3] (head frame -> camera relative to the line of sight, as a control's rotation).

    The avatar's frame is the photo's head frame, so the photo shows every Gaussian under that whole
    rotation R; `drive()` turns a torso Gaussian by only its level's fraction w of the control's rotation
    (core.deform torso levels, about the head origin). Each is turned by R^(1 - w) here, so the photo's own
    control turns it back to where the photo shows it (before, frame 0 drew the torso (1 - w) R off the photo:
    tpsmm's pitched head put its collar ~2 px low, 62 % of its frame-0 error) and the zero control shows
    the torso turned by w of the photo's head rotation less, the shoulders as a body facing the camera.
    Torso Gaussians in the template's falloff band turn with the head and are left as they are. The levels
    depend on where the Gaussians end up, so the turn is repeated until none changes level (at most `iters`
    passes). In place; returns the number of Gaussians whose level still changed on the last pass (0: the
    photo's control gives the torso back exactly)."""
    idx = np.flatnonzero(batch.part == PART_TORSO)
    r = np.asarray(head_rotation, np.float64)
    if not idx.size or np.allclose(r, np.eye(3)):
        return 0
    built = batch.take(idx)
    weight, changed = None, len(idx)
    closest = ClosestPoints(v_rest, faces)  # a pass searches again only the rows the last one moved
    for _ in range(iters):
        rig = build_rig(batch.part[idx], batch.face_id[idx], batch.bary[idx], batch.means[idx], v_rest, faces, cfg,
                        closest=closest)
        level = rig.frame - rig.k_torso
        on_level = (level >= 0) & (level < len(rig.torso_weights))
        w = np.where(on_level, rig.torso_weights[np.clip(level, 0, len(rig.torso_weights) - 1)], 1.0)
        changed = len(idx) if weight is None else int(np.sum(w != weight))
        if changed == 0:
            break
        weight = w
        for name in ("means", "normals", "quats"):
            getattr(batch, name)[idx] = getattr(built, name)
        _rotate(batch, idx, scaled_rotations(r, 1.0 - w), np.zeros(3))
    return changed


def under_chin(scene, v_photo: np.ndarray, v_rest: np.ndarray, faces: np.ndarray, face_px: np.ndarray,
               stride: int, sigma_per_stride: float, behind_m: float, band_px: tuple[int, int],
               neck_skin: tuple | None = None, detail: tuple[float, float] = (0.0, 2.0)) -> GaussianBatch | None:
    """Skin for what an opened jaw in the photo hides and the rest pose shows: pixels of the photo's face
    below the mouth that the rest template (chin higher) no longer covers get Gaussians
    `behind_m` behind the photo's face surface (hidden by the chin in the photo's pose), coloured like
    the neck just below the photo's chin (rows band_px below the face in the same column, filled
    smoothly). They are PART_UNDER_CHIN: rigid with the head, outside the template's falloff band, so that the rest
    pose leaves them where they are built (below the closed chin) and an opening jaw comes down over them; as static
    Gaussians the falloff carried them up into the rest chin (98 % of obama_speech's, 11.7 mm down and 22 mm forward
    of their rest places when driven with the photo's own expression, chinup26), darker dots under a raised chin.
    scene: completion.Scene of the source view; face_px [S, S] the photo's face mesh pixels.
    neck_skin (skin [3] rgb, dark, residual): only the band's pixels within `residual` of the skin at dark..1 x its
    brightness (core.colour.skin_residual), all of them where none is (None: every band pixel). The band below
    obama_speech's chin runs into his white collar at the jaw's corner: light dots under his raised chin.
    detail (amplitude, blur_px): the photo's own fine detail at each pixel (the photo less its Gaussian blur of
    blur_px, each channel clipped to +-amplitude; 0: none) added to that smooth colour, so it reads as skin.
    None when the rest template covers the same."""
    from gaussian_head_ros.core.reconstruct.builder import surface_discs
    from gaussian_head_ros.core.reconstruct.surfaces import push_pull, rasterize_mesh

    S = face_px.shape[0]
    fid_rest, _, _ = rasterize_mesh(np.asarray(v_rest, np.float64) @ scene.R.T + scene.t, faces, scene.K, S)
    i0 = scene.project(np.asarray(v_photo, np.float64)[[lmk.UPPER_LIP_IN, lmk.LOWER_LIP_IN]])[0].mean()  # the mouth's row
    rows = np.arange(S)[:, None]
    revealed = face_px & (fid_rest < 0) & (rows > i0)
    ii, jj = np.nonzero(revealed & (rows % stride == stride // 2) & (np.arange(S)[None, :] % stride == stride // 2))
    if not len(ii):
        return None
    # the neck just below the face, per column, spread sideways and upwards
    last = np.where(face_px.any(0), S - 1 - np.argmax(face_px[::-1], 0), -1)  # [S] lowest face row per column
    band = (rows > last[None, :] + band_px[0]) & (rows <= last[None, :] + band_px[1]) & (last[None, :] >= 0) & scene.person
    if neck_skin is not None:
        from gaussian_head_ros.core.colour import skin_residual

        skin_band = band & (skin_residual(scene.photo, neck_skin[0], neck_skin[1]) < neck_skin[2])
        band = skin_band if skin_band.any() else band
    cols = push_pull(scene.photo, band.astype(np.float32))
    depth = scene.depth[ii, jj] + behind_m
    pts = scene.to_head(depth[:, None] * scene.rays[ii, jj])
    view = pts - scene.centre
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    sigma = sigma_per_stride * stride * depth / scene.K[0, 0]
    rgb = cols[ii, jj]
    if detail[0] > 0:
        fine = scene.photo[ii, jj] - cv2.GaussianBlur(scene.photo, (0, 0), detail[1])[ii, jj]
        rgb = np.clip(rgb + np.clip(fine, -detail[0], detail[0]), 0.0, 1.0)
    return surface_discs(pts, -view, rgb, sigma, view, PART_UNDER_CHIN)
