"""The lightweight driving module (RAR's driven avatar): (avatar, control, lighting) -> posed Gaussians.

Its cost depends only on the number of Gaussians and template triangles, never on how the avatar was
reconstructed. Every Gaussian belongs to one *frame*, a small rigid-or-triangle transform rebuilt per
control; the per-Gaussian work is one table look-up and a handful of multiply-adds:

- static (part 0, and unbound face Gaussians): the head pose, rotating about the head origin;
- torso (part 2): a fraction of the head rotation, blending smoothly from `torso_follow` at the
  shoulders to 1 at the neck (quantised to `levels` frames);
- face (part 1, bound): its parent triangle of the deformed template. Position = barycentric point of
  the deformed triangle + the rest offset turned by the triangle's rotation change (local frame from
  the first edge and the normal); rotation composed with that change; scales times sqrt(area ratio);
- mouth interior (part 3): the lower part turns with the jaw about a hinge axis (x), the jaw angle
  taken from the deformed chin (MediaPipe topology), the jawOpen blendshape or `mouth_open`.

Template deformation = rest + control.expression (first min(V, L) vertices, each offset limited to
`max_offset_m`) + the avatar's expression basis weighted by the control's blendshapes of the same name.

Relighting: colour = captured colour * E_target(n') / E_captured(n), E the irradiance of 2nd-order SH
lighting (Ramamoorthi & Hanrahan) at the Gaussian's normal n (n' posed). `lighting_sh` rows are the
9 real SH coefficients in the order (0,0) (1,-1) (1,0) (1,1) (2,-2) (2,-1) (2,0) (2,1) (2,2), in the
head frame (x right, y down, z into the head), per rgb channel. See `sh9_basis` and `irradiance`.

Colours are the view-independent DC term (sh[:, 0]); higher SH bands, when an avatar has them, are not used.

Zero control (FaceControl.rest()) and captured lighting give the rest pose exactly: each frame's delta
is exactly zero when nothing moves it, and the posed values are rest + delta.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_FACE, PART_MOUTH, PART_TORSO, GaussianAvatar, sh_dc_to_rgb
from gaussian_head_ros.core.control import FaceControl, quat_to_matrix

log = logging.getLogger(__name__)



@dataclass
class DriveConfig:
    """How far each part follows the control."""

    torso_follow: float = 0.25  # fraction of the head rotation the shoulders follow
    neck_blend_m: float = 0.06  # height over which the torso blends from torso_follow (below) to 1 (top)
    levels: int = 8  # frames used to quantise the torso / jaw blend weights
    expression_gain: float = 1.0  # scale on control.expression offsets
    max_offset_m: float = 0.03  # per-vertex expression offsets are limited to this length
    jaw_max_rad: float = 0.5  # jaw opening limit
    jaw_per_jaw_open: float = 0.35  # rad per unit of the jawOpen blendshape
    jaw_per_mouth_open: float = 0.7  # rad per unit of mouth_open (lip gap / inter-ocular distance)
    relight_max_ratio: float = 3.0  # limit on E_target / E_captured


@dataclass
class PosedGaussians:
    """Activated Gaussians in the head frame, ready for `rasterize()` (numpy, or torch when driven with tensors)."""

    means: object  # [N, 3]
    quats: object  # [N, 4] wxyz (not normalised)
    scales: object  # [N, 3] linear
    opacities: object  # [N] post-sigmoid
    colors: object  # [N, 3] rgb in [0, 1]

    @property
    def num_gaussians(self) -> int:
        return int(self.means.shape[0])


# ---------------------------------------------------------------------------------------------------
# Lighting: 2nd-order SH irradiance and target presets

_SH_A = np.array([math.pi] + [2 * math.pi / 3] * 3 + [math.pi / 4] * 5)  # [9] cosine-lobe convolution


def sh9_basis(n: np.ndarray) -> np.ndarray:
    """[..., 3] unit directions -> [..., 9] real SH basis values, degree <= 2."""
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    one = np.ones_like(x)
    return np.stack([0.282095 * one, 0.488603 * y, 0.488603 * z, 0.488603 * x,
                     1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1),
                     1.092548 * x * z, 0.546274 * (x * x - y * y)], -1)


def irradiance(n: np.ndarray, lighting_sh: np.ndarray) -> np.ndarray:
    """[..., 3] unit normals, [9, 3] SH radiance -> [..., 3] irradiance / pi (1.0 under unit ambient light)."""
    return sh9_basis(n) @ (np.asarray(lighting_sh, np.float64) * _SH_A[:, None] / math.pi)


def sh_from_lights(ambient, lights) -> np.ndarray:
    """[9, 3] SH radiance of a uniform `ambient` rgb plus directional lights [(direction to light, rgb)]."""
    sh = np.zeros((9, 3))
    sh[0] = np.asarray(ambient, np.float64) / 0.282095
    for d, rgb in lights:
        d = np.asarray(d, np.float64)
        sh += np.outer(sh9_basis(d / np.linalg.norm(d)), rgb)
    return sh.astype(np.float32)


# Target lighting presets, head frame (y down: "above" is -y; the camera side is -z).
LIGHTING_PRESETS = {
    "studio": dict(ambient=(0.55, 0.55, 0.55), lights=[((-0.5, -0.5, -1.0), (1.1, 1.05, 1.0))]),
    "soft": dict(ambient=(0.8, 0.8, 0.8), lights=[((0.0, -0.4, -1.0), (0.5, 0.5, 0.5))]),
    "dramatic": dict(ambient=(0.15, 0.15, 0.17), lights=[((-1.0, -0.4, -0.5), (2.4, 2.2, 1.9))]),
    "warm": dict(ambient=(0.6, 0.5, 0.4), lights=[((0.3, -0.5, -1.0), (1.0, 0.85, 0.6))]),
}


def lighting_from_spec(spec) -> np.ndarray | None:
    """'captured' / None -> None (keep the captured look); a preset name or 27 numbers -> [9, 3] SH."""
    if spec is None or (isinstance(spec, str) and spec in ("", "captured")):
        return None
    if isinstance(spec, str):
        if spec not in LIGHTING_PRESETS:
            raise ValueError(f"unknown lighting {spec!r}: use 'captured', one of {sorted(LIGHTING_PRESETS)}, "
                             "or 27 SH numbers")
        return sh_from_lights(**LIGHTING_PRESETS[spec])
    arr = np.asarray(spec, np.float32).reshape(-1)
    if arr.size != 27 or not np.all(np.isfinite(arr)):
        raise ValueError(f"lighting needs 27 finite SH numbers (9 coefficients x rgb), got {arr.size}")
    return arr.reshape(9, 3)


# ---------------------------------------------------------------------------------------------------
# Small batched rotation helpers (numpy, float64)

def matrices_to_quats(r: np.ndarray) -> np.ndarray:
    """[K, 3, 3] rotations -> [K, 4] wxyz; the identity gives exactly (1, 0, 0, 0)."""
    r = np.asarray(r, np.float64)
    k = r.shape[0]
    q = np.empty((k, 4))
    tr = r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    diag = np.stack([tr, r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]], 1)
    case = np.argmax(diag, 1)
    s0 = np.sqrt(np.maximum(1 + tr, 1e-12)) * 2
    m = case == 0
    q[m] = np.stack([0.25 * s0[m], (r[m, 2, 1] - r[m, 1, 2]) / s0[m], (r[m, 0, 2] - r[m, 2, 0]) / s0[m],
                     (r[m, 1, 0] - r[m, 0, 1]) / s0[m]], 1)
    for c, (i, j, l) in ((1, (0, 1, 2)), (2, (1, 2, 0)), (3, (2, 0, 1))):
        m = case == c
        if not m.any():
            continue
        s = np.sqrt(np.maximum(1 + r[m, i, i] - r[m, j, j] - r[m, l, l], 1e-12)) * 2
        qi = np.empty((m.sum(), 4))
        qi[:, 0] = (r[m, l, j] - r[m, j, l]) / s
        qi[:, 1 + i] = 0.25 * s
        qi[:, 1 + j] = (r[m, j, i] + r[m, i, j]) / s
        qi[:, 1 + l] = (r[m, l, i] + r[m, i, l]) / s
        q[m] = qi
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.where(q[:, :1] < 0, -q, q)


def axis_angle_x(angles: np.ndarray) -> np.ndarray:
    """[K] angles -> [K, 3, 3] rotations about x (exact identity for angle 0)."""
    c, s = np.cos(angles), np.sin(angles)
    r = np.zeros((len(angles), 3, 3))
    r[:, 0, 0] = 1
    r[:, 1, 1], r[:, 1, 2], r[:, 2, 1], r[:, 2, 2] = c, -s, s, c
    return r


def scaled_rotations(r: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[3, 3] rotation, [K] weights -> [K, 3, 3] rotations by weight x its angle about the same axis."""
    q = matrices_to_quats(r[None])[0]
    angle = 2 * math.atan2(np.linalg.norm(q[1:]), q[0])
    if angle == 0.0:
        return np.broadcast_to(np.eye(3), (len(weights), 3, 3)).copy()
    axis = q[1:] / np.linalg.norm(q[1:])
    kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.asarray(weights, np.float64)[:, None, None] * angle
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * (kx @ kx)


def triangle_frames(v: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[V, 3], [F, 3] -> local frames [F, 3, 3] (columns: first edge, in-plane normal, normal), areas [F]."""
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    e1 = b - a
    nrm = np.cross(e1, c - a)
    area = 0.5 * np.linalg.norm(nrm, axis=1)
    e1 = e1 / np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-12)
    nrm = nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    e2 = np.cross(nrm, e1)
    return np.stack([e1, e2, nrm], axis=2), area


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / max(e1 - e0, 1e-9), 0, 1)
    return t * t * (3 - 2 * t)


# ---------------------------------------------------------------------------------------------------
# The driver

@dataclass
class FrameTables:
    """Per-control transforms, one row per frame k (K = F triangles + 1 head + levels torso + levels jaw)."""

    delta: np.ndarray  # [K, 3, 6] float32: posed - rest position = delta[k] @ coef[n]
    quat: np.ndarray  # [K, 4] float32 wxyz rotation change of frame k
    rot: np.ndarray  # [K, 3, 3] float32 the same as a matrix (for normals)
    scale: np.ndarray  # [K] float32 scale factor


class Driver:
    """Per-avatar constants, built once; `drive(control, lighting)` per frame (numpy, ~1 ms for 60k).

    Give it an avatar whose Gaussian arrays (means, quats, log_scales, logit_opacities, sh) are torch
    tensors and `drive()` returns torch tensors with gradients for them (training)."""

    def __init__(self, avatar: GaussianAvatar, config: DriveConfig | None = None):
        self.cfg = config or DriveConfig()
        self.torch = type(avatar.means).__module__.startswith("torch")
        np_of = (lambda a: a.detach().cpu().numpy()) if self.torch else np.asarray
        self.means = np_of(avatar.means).astype(np.float32)  # [N, 3]
        self.n = self.means.shape[0]
        self.verts = np.asarray(avatar.template_vertices, np.float64)  # [V, 3]
        self.faces = np.asarray(avatar.template_faces, np.int64)  # [F, 3]
        self.frame_rest, self.area_rest = triangle_frames(self.verts, self.faces)  # [F, 3, 3], [F]
        levels = max(2, int(self.cfg.levels))
        nf = len(self.faces)
        self.k_head, self.k_torso, self.k_jaw = nf, nf + 1, nf + 1 + levels  # first frame of each group
        self.num_frames = nf + 1 + 2 * levels
        part = np.asarray(avatar.part)
        self.frame = np.full(self.n, self.k_head, np.int64)  # [N] frame of each Gaussian
        self.coef = self._bind(part, np.asarray(avatar.face_id, np.int64), np.asarray(avatar.bary, np.float64))
        self.torso_weights = np.linspace(self.cfg.torso_follow, 1.0, levels)  # [levels]
        self.jaw_weights = np.linspace(0.0, 1.0, levels)  # [levels]
        self._assign_torso(part == PART_TORSO)
        self._assign_mouth(part == PART_MOUTH)
        self.expr_index = {name: i for i, name in enumerate(avatar.expression_names)}
        self.basis = np.asarray(avatar.expression_basis, np.float64)  # [E, V, 3]
        self._rest_values(avatar, np_of)

    def _bind(self, part, face_id, bary) -> np.ndarray:
        """Face Gaussians to their triangles; [N, 6] coefficients: (1, 0, 0, p) rigid, (bary, offset) bound."""
        bound = (part == PART_FACE) & (face_id >= 0) & (len(self.faces) > 0)
        self.frame[bound] = face_id[bound]
        coef = np.zeros((self.n, 6), np.float64)
        coef[:, 0] = 1.0
        coef[:, 3:] = self.means
        if bound.any():
            tri = self.verts[self.faces[face_id[bound]]]  # [Nb, 3, 3]
            coef[bound, :3] = bary[bound]
            coef[bound, 3:] = self.means[bound] - np.einsum("nk,nkc->nc", bary[bound], tri)
        return coef.astype(np.float32)

    def _assign_torso(self, torso) -> None:
        """Torso weight: torso_follow at the shoulders rising to 1 at the top of the neck, quantised."""
        if not torso.any():
            return
        levels = len(self.torso_weights)
        y = self.means[torso, 1]
        y_top = float(np.percentile(y, 1))
        u = 1 - _smoothstep(y_top, y_top + self.cfg.neck_blend_m, y)  # 1 at the neck, 0 below the blend
        self.frame[torso] = self.k_torso + np.rint(u * (levels - 1)).astype(np.int64)

    def _assign_mouth(self, mouth) -> None:
        """Mouth interior: below the lip line it turns with the jaw about a hinge axis (x) at the pivot."""
        if lmk.has_mediapipe_topology(len(self.verts)):  # MediaPipe topology: hinge between the cheeks, lip line from the inner lips
            self.jaw_pivot = 0.5 * (self.verts[lmk.CHEEK_R] + self.verts[lmk.CHEEK_L])
            self.jaw_pivot[0] = 0.0
            lip_y = 0.5 * (self.verts[lmk.UPPER_LIP_IN, 1] + self.verts[lmk.LOWER_LIP_IN, 1])
        else:
            centre = self.means[mouth].mean(0) if mouth.any() else np.array([0.0, 0.04, -0.06])
            self.jaw_pivot = centre + np.array([0.0, -0.03, 0.07])
            lip_y = float(centre[1])
        self.jaw_from_chin = lmk.has_mediapipe_topology(len(self.verts))
        if mouth.any():
            w = _smoothstep(lip_y - 0.004, lip_y + 0.004, self.means[mouth, 1])
            self.frame[mouth] = self.k_jaw + np.rint(w * (len(self.jaw_weights) - 1)).astype(np.int64)

    def _rest_values(self, avatar, np_of) -> None:
        """Activated rest values, the captured shading, and for torch avatars the differentiable versions."""
        self.quats = np.asarray(np_of(avatar.quats), np.float32)  # [N, 4]
        self.scales = np.exp(np_of(avatar.log_scales).astype(np.float32))  # [N, 3]
        self.opacities = (1 / (1 + np.exp(-np_of(avatar.logit_opacities).astype(np.float32)))).astype(np.float32)
        self.colors = np.clip(sh_dc_to_rgb(np_of(avatar.sh)[:, 0]), 0, 1)  # [N, 3]
        self.normals = np.asarray(avatar.normals, np.float32)  # [N, 3]
        self.has_normal = np.linalg.norm(self.normals, axis=1) > 0.5
        self.lighting = np.asarray(avatar.lighting_sh, np.float32)
        self.e_captured = None  # [N, 3] irradiance of the captured light at the rest normals
        if self.lighting.size == 27:
            e = irradiance(self.normals.astype(np.float64), self.lighting)
            floor = max(0.05, 0.1 * float(np.median(e))) if len(e) else 0.05
            self.e_captured = np.maximum(e, floor).astype(np.float32)
        if self.torch:
            import torch

            self.t_means, self.t_quats = avatar.means, avatar.quats
            self.t_scales = torch.exp(avatar.log_scales)
            self.t_opac = torch.sigmoid(avatar.logit_opacities)
            self.t_colors = torch.clamp(0.5 + 0.28209479177387814 * avatar.sh[:, 0], 0, 1)

    # ------------------------------------------------------------------------------------------------
    def deformed_template(self, control: FaceControl) -> np.ndarray:
        """[V, 3] template vertices after the control's expression (float64)."""
        d = np.zeros_like(self.verts)
        ex = np.asarray(control.expression, np.float64)
        lcount = min(len(d), len(ex))
        if lcount:
            off = ex[:lcount] * self.cfg.expression_gain
            length = np.linalg.norm(off, axis=1, keepdims=True)
            off = np.where(length > self.cfg.max_offset_m, off * (self.cfg.max_offset_m / np.maximum(length, 1e-12)), off)
            d[:lcount] = off
        if self.expr_index and len(control.blendshape_names):
            for name, w in zip(control.blendshape_names, np.asarray(control.blendshapes, np.float64)):
                e = self.expr_index.get(name)
                if e is not None and w != 0.0:
                    d += w * self.basis[e]
        return self.verts + d, d

    def jaw_angle(self, control: FaceControl, v_def: np.ndarray, disp: np.ndarray) -> float:
        cfg = self.cfg
        if self.jaw_from_chin and np.any(disp[lmk.CHIN] != 0):
            r0, r1 = self.verts[lmk.CHIN] - self.jaw_pivot, v_def[lmk.CHIN] - self.jaw_pivot
            ang = math.atan2(r1[1], -r1[2]) - math.atan2(r0[1], -r0[2])
        elif "jawOpen" in control.blendshape_names:
            ang = cfg.jaw_per_jaw_open * control.blendshape("jawOpen")
        else:
            ang = cfg.jaw_per_mouth_open * float(control.mouth_open)
        return float(np.clip(ang, 0.0, cfg.jaw_max_rad))

    def tables(self, control: FaceControl) -> FrameTables:
        """The per-frame transforms for one control."""
        r_g = quat_to_matrix(control.rotation)  # [3, 3] head -> camera-aligned
        eye = np.eye(3)
        kf = len(self.faces)
        delta = np.zeros((self.num_frames, 3, 6))
        rot = np.broadcast_to(eye, (self.num_frames, 3, 3)).copy()
        scale = np.ones(self.num_frames)
        v_def, disp = self.deformed_template(control)
        if kf:
            d_tri = disp[self.faces]  # [F, 3 vertices, 3]
            moved = np.any(d_tri != 0, axis=(1, 2))
            r_tri = np.broadcast_to(eye, (kf, 3, 3)).copy()
            if moved.any():
                fr, area = triangle_frames(v_def, self.faces[moved])
                r_tri[moved] = fr @ self.frame_rest[moved].transpose(0, 2, 1)
                scale[:kf][moved] = np.sqrt(np.maximum(area, 1e-20) / np.maximum(self.area_rest[moved], 1e-20))
            vt = self.verts[self.faces]  # [F, 3, 3]
            delta[:kf, :, :3] = np.einsum("ij,fkj->fik", r_g - eye, vt) + np.einsum("ij,fkj->fik", r_g, d_tri)
            rot[:kf] = r_g @ r_tri
            delta[:kf, :, 3:] = rot[:kf] - eye
        rot[self.k_head] = r_g
        delta[self.k_head, :, 3:] = r_g - eye
        lv = len(self.torso_weights)
        r_t = scaled_rotations(r_g, self.torso_weights)  # [levels, 3, 3]
        rot[self.k_torso:self.k_torso + lv] = r_t
        delta[self.k_torso:self.k_torso + lv, :, 3:] = r_t - eye
        theta = self.jaw_angle(control, v_def, disp)
        r_j = r_g @ axis_angle_x(self.jaw_weights * theta)  # [levels, 3, 3]
        piv = self.jaw_pivot
        rot[self.k_jaw:self.k_jaw + lv] = r_j
        delta[self.k_jaw:self.k_jaw + lv, :, 3:] = r_j - eye
        # p' = R_g (R_j (p - c) + c) -> constant term R_g c - R_g R_j c
        delta[self.k_jaw:self.k_jaw + lv, :, 0] = (r_g @ piv)[None] - r_j @ piv
        return FrameTables(delta.astype(np.float32), matrices_to_quats(rot).astype(np.float32),
                           rot.astype(np.float32), scale.astype(np.float32))

    def drive(self, control: FaceControl | None = None, lighting=None) -> PosedGaussians:
        """Pose the avatar. `lighting`: None/'captured', a preset name, or [9, 3] SH (target light)."""
        control = control or FaceControl.rest()
        control.validate()
        target = lighting_from_spec(lighting)
        tab = self.tables(control)
        if self.torch:
            return self._apply_torch(tab, target)
        means, quats, scales = _apply(tab.delta, tab.quat, tab.scale, self.frame, self.coef, self.means,
                                      self.quats, self.scales)
        colors = self.colors
        if target is not None and self.e_captured is not None:
            colors = _relight(self.colors, self.normals, self.has_normal, self.e_captured, tab.rot, self.frame,
                              (target.astype(np.float64) * _SH_A[:, None] / math.pi).astype(np.float32),
                              np.float32(self.cfg.relight_max_ratio))
        return PosedGaussians(means, quats, scales, self.opacities, colors)

    def _apply_torch(self, tab: FrameTables, target) -> PosedGaussians:
        import torch

        dev = self.t_means.device
        k = torch.as_tensor(self.frame, device=dev)
        delta = torch.as_tensor(tab.delta, device=dev)[k]  # [N, 3, 6]
        coef = torch.cat([torch.as_tensor(self.coef[:, :3], device=dev),
                          self.t_means - torch.as_tensor(self.means - self.coef[:, 3:], device=dev)], 1)  # [N, 6]
        means = self.t_means + torch.einsum("nij,nj->ni", delta, coef)
        q = torch.as_tensor(tab.quat, device=dev)[k]
        quats = quat_multiply_torch(q, self.t_quats)
        scales = self.t_scales * torch.as_tensor(tab.scale, device=dev)[k][:, None]
        colors = self.t_colors
        if target is not None and self.e_captured is not None:
            n = torch.as_tensor(self.normals, device=dev)
            n_post = torch.einsum("nij,nj->ni", torch.as_tensor(tab.rot, device=dev)[k], n).cpu().numpy()
            e_t = irradiance(n_post.astype(np.float64), target)
            ratio = np.clip(e_t / self.e_captured, 0, self.cfg.relight_max_ratio)
            ratio[~self.has_normal] = 1.0
            colors = torch.clamp(colors * torch.as_tensor(ratio, dtype=colors.dtype, device=dev), 0, 1)
        return PosedGaussians(means, quats, scales, self.t_opac, colors)


def quat_multiply_torch(a, b):
    """[N, 4] x [N, 4] wxyz Hamilton product (a then b applied first)."""
    import torch

    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def drive(avatar: GaussianAvatar, control: FaceControl | None = None, lighting=None,
          config: DriveConfig | None = None) -> PosedGaussians:
    """Functional form of `Driver(avatar).drive(control, lighting)` (builds the per-avatar constants each call;
    keep a Driver when driving the same avatar repeatedly)."""
    return Driver(avatar, config).drive(control, lighting)


# ---------------------------------------------------------------------------------------------------
# Per-Gaussian kernels (numba, one thread: ~1 ms for 60k, and no barrier to wait on when the CPU is busy)

from numba import njit  # noqa: E402


@njit(fastmath=True, cache=True, nogil=True)
def _apply(delta, quat, scale, frame, coef, means, quats, scales):
    n = means.shape[0]
    out_m = np.empty_like(means)
    out_q = np.empty_like(quats)
    out_s = np.empty_like(scales)
    for i in range(n):
        k = frame[i]
        for r in range(3):
            acc = np.float32(0.0)
            for c in range(6):
                acc += delta[k, r, c] * coef[i, c]
            out_m[i, r] = means[i, r] + acc
        aw, ax, ay, az = quat[k, 0], quat[k, 1], quat[k, 2], quat[k, 3]
        bw, bx, by, bz = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        out_q[i, 0] = aw * bw - ax * bx - ay * by - az * bz
        out_q[i, 1] = aw * bx + ax * bw + ay * bz - az * by
        out_q[i, 2] = aw * by - ax * bz + ay * bw + az * bx
        out_q[i, 3] = aw * bz + ax * by - ay * bx + az * bw
        s = scale[k]
        out_s[i, 0] = scales[i, 0] * s
        out_s[i, 1] = scales[i, 1] * s
        out_s[i, 2] = scales[i, 2] * s
    return out_m, out_q, out_s


@njit(fastmath=True, cache=True, nogil=True)
def _relight(colors, normals, has_normal, e_cap, rot, frame, sh_t, max_ratio):
    """colors * E_target(R_k n) / E_captured(n); sh_t [9, 3] already convolved and divided by pi."""
    n = colors.shape[0]
    out = np.empty_like(colors)
    for i in range(n):
        if not has_normal[i]:
            for c in range(3):
                out[i, c] = colors[i, c]
            continue
        k = frame[i]
        x = rot[k, 0, 0] * normals[i, 0] + rot[k, 0, 1] * normals[i, 1] + rot[k, 0, 2] * normals[i, 2]
        y = rot[k, 1, 0] * normals[i, 0] + rot[k, 1, 1] * normals[i, 1] + rot[k, 1, 2] * normals[i, 2]
        z = rot[k, 2, 0] * normals[i, 0] + rot[k, 2, 1] * normals[i, 1] + rot[k, 2, 2] * normals[i, 2]
        b = (0.282095, 0.488603 * y, 0.488603 * z, 0.488603 * x, 1.092548 * x * y, 1.092548 * y * z,
             0.315392 * (3 * z * z - 1), 1.092548 * x * z, 0.546274 * (x * x - y * y))
        for c in range(3):
            e = np.float32(0.0)
            for j in range(9):
                e += np.float32(b[j]) * sh_t[j, c]
            ratio = min(max(e / e_cap[i, c], np.float32(0.0)), max_ratio)
            out[i, c] = min(colors[i, c] * ratio, np.float32(1.0))
    return out


def warm_up() -> None:
    """Compile (or load from the cache) the per-Gaussian kernels."""
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    Driver(synthetic_avatar(64, seed=0)).drive(FaceControl(mouth_open=0.1), lighting="studio")
