"""The lightweight reenactment module: the FaceControl signal -> offsets of the dynamic Gaussians.

RAR separates a large reconstructor (run once per photo) from a tiny driven avatar (run per frame).
Here the per-frame part is linear so that it can travel inside the unchanged avatar format:

    template'(t) = template + expression(t) + sum_e c_e(t) * basis_e          [V, 3]

- expression(t) [L, 3]: the tracker's per-landmark displacement, added to template vertex i == landmark i
  (what `drive()` does for every avatar);
- c(t) [E]: expression coefficients read from the control by name (ARKit blendshape names, which the
  MediaPipe FaceLandmarker and ARKit/lip-sync sources publish); absent names count as 0;
- basis [E, V, 3]: per-avatar vertex offsets per unit coefficient, predicted once per photo from the
  backbone's global code (a shared basis plus a low-rank personal correction). It is written to the
  avatar's `expression_names` / `expression_basis`, so `drive()` applies it with no model at hand.

Eyes and mouth are handled independently: eye coefficients only have a basis over the eye region
(lids, irises, brows' lower edge) and mouth/jaw coefficients only over the mouth region (lips, jaw,
chin); the regions are soft masks on the template. The dynamic Gaussians follow the moved template
through their parent triangle and barycentric coordinates. The per-frame cost is E * V * 3
multiply-adds (41 x 478 x 3 = 59k) whatever the backbone: it depends on no backbone dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_FACE, PART_TORSO
from gaussian_head_ros.core.control import FaceControl
from gaussian_head_ros.core.drive import DriveConfig, scaled_rotations

# ARKit blendshape names (as MediaPipe's FaceLandmarker publishes them), split by region.
EYE_NAMES = (
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight")
MOUTH_NAMES = (
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight")

# MediaPipe face-mesh landmark indices of the two regions (eye contours + irises; lips + chin).
EYE_LANDMARKS = (lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L + (lmk.IRIS_CENTER_R,) + lmk.IRIS_R
                 + (lmk.IRIS_CENTER_L,) + lmk.IRIS_L)
MOUTH_LANDMARKS = lmk.LIPS + lmk.CHIN_REGION


@dataclass(frozen=True)
class ReenactmentConfig:
    """The per-avatar linear expression basis."""

    eye_names: tuple[str, ...] = EYE_NAMES  # coefficients that move only the eye region
    mouth_names: tuple[str, ...] = MOUTH_NAMES  # coefficients that move only the mouth/jaw region
    rank: int = 4  # low-rank personal correction of the shared basis (0: one basis for everybody)
    eye_sigma: float = 0.012  # metres: softness of the eye-region mask around its landmarks
    mouth_sigma: float = 0.02  # metres: softness of the mouth-region mask (reaches the chin)
    max_offset: float = 0.02  # metres per unit coefficient (tanh-bounded)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.eye_names) + tuple(self.mouth_names)


def region_masks(ref_vertices: np.ndarray, cfg: ReenactmentConfig) -> tuple[np.ndarray, np.ndarray]:
    """Soft eye and mouth masks [V] on the template. MediaPipe topology (V >= 468) uses the landmark
    sets; another mesh (tests) splits at the middle height: upper third = eyes, lower third = mouth."""
    v = np.asarray(ref_vertices, np.float64)
    if lmk.has_mediapipe_topology(len(v)):
        eye_idx = [i for i in EYE_LANDMARKS if i < len(v)]
        mouth_idx = list(MOUTH_LANDMARKS)
    else:
        lo, hi = np.percentile(v[:, 1], [33, 67])
        eye_idx = np.nonzero(v[:, 1] <= lo)[0]
        mouth_idx = np.nonzero(v[:, 1] >= hi)[0]

    def soft(idx, sigma):
        d = np.linalg.norm(v[:, None] - v[None, idx], axis=-1).min(1)  # [V] distance to the region
        return np.exp(-(d / sigma) ** 2).astype(np.float32)

    return soft(eye_idx, cfg.eye_sigma), soft(mouth_idx, cfg.mouth_sigma)


class ReenactmentModule(nn.Module):
    """Per photo: global code -> basis [B, E, V, 3] (`personalise`). Per frame: coefficients -> vertex
    offsets (`offsets`), E * V * 3 multiply-adds."""

    def __init__(self, cfg: ReenactmentConfig, global_dim: int, ref_vertices: np.ndarray):
        super().__init__()
        self.cfg = cfg
        e, v = len(cfg.names), len(ref_vertices)
        eye, mouth = region_masks(ref_vertices, cfg)
        n_eye = len(cfg.eye_names)
        mask = np.zeros((e, v), np.float32)
        mask[:n_eye], mask[n_eye:] = eye, mouth
        self.register_buffer("mask", torch.as_tensor(mask))  # [E, V]
        self.shared = nn.Parameter(torch.zeros(e, v, 3))  # [E, V, 3] raw (pre-tanh) shared basis
        self.personal = nn.Parameter(torch.zeros(cfg.rank, e, v, 3))  # [R, E, V, 3]
        self.code = nn.Linear(global_dim, cfg.rank) if cfg.rank else None

    @property
    def names(self) -> tuple[str, ...]:
        return self.cfg.names

    def personalise(self, global_code: torch.Tensor) -> torch.Tensor:
        """global_code [B, G] -> basis [B, E, V, 3] metres per unit coefficient (once per photo)."""
        raw = self.shared[None].expand(global_code.shape[0], -1, -1, -1)
        if self.code is not None:
            z = torch.tanh(self.code(global_code))  # [B, R]
            raw = raw + torch.einsum("br,revc->bevc", z, self.personal)
        return self.cfg.max_offset * torch.tanh(raw) * self.mask[None, :, :, None]

    @staticmethod
    def offsets(basis: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """basis [B, E, V, 3], coeffs [B, E] -> template vertex offsets [B, V, 3] (the per-frame work)."""
        return torch.einsum("be,bevc->bvc", coeffs, basis)

    def per_frame_macs(self, num_vertices: int) -> int:
        """Multiply-adds of one frame's `offsets` (independent of the backbone by construction)."""
        return len(self.names) * num_vertices * 3


def control_coefficients(control: FaceControl, names) -> np.ndarray:
    """[E] coefficients of `names` read from a FaceControl's blendshapes (0 where absent): the same rule
    `drive()` applies to an avatar's expression basis."""
    return np.array([control.blendshape(n, 0.0) for n in names], np.float32)


# ------------------------------------------------------------------------------------------------------
# The differentiable twin of drive() (training): same rules, torch, gradients to the Gaussians, the
# template and the expression basis. test_model.py checks it against core.drive.Driver.

def _triangle_frames(v, faces):
    """v [B, V, 3] -> frames [B, F, 3, 3] (columns: first edge, in-plane normal, normal), areas [B, F]."""
    a, b, c = v[:, faces[:, 0]], v[:, faces[:, 1]], v[:, faces[:, 2]]
    nrm = torch.linalg.cross(b - a, c - a)
    area = 0.5 * nrm.norm(dim=-1)
    e1 = F.normalize(b - a, dim=-1, eps=1e-12)
    nrm = F.normalize(nrm, dim=-1, eps=1e-12)
    return torch.stack([e1, torch.linalg.cross(nrm, e1), nrm], -1), area


def _matrix_to_quat(r):
    """[..., 3, 3] -> [..., 4] wxyz (w >= 0), differentiable away from 180-degree turns."""
    w = 0.5 * torch.sqrt(torch.clamp(1 + r[..., 0, 0] + r[..., 1, 1] + r[..., 2, 2], min=1e-8))
    q = torch.stack([w, (r[..., 2, 1] - r[..., 1, 2]) / (4 * w), (r[..., 0, 2] - r[..., 2, 0]) / (4 * w),
                     (r[..., 1, 0] - r[..., 0, 1]) / (4 * w)], -1)
    return F.normalize(q, dim=-1)


def _quat_mul(a, b):
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def torso_rotations(torso_y: np.ndarray, rotation: np.ndarray, cfg: DriveConfig) -> np.ndarray:
    """drive()'s torso rule: [T] rest heights, head rotation [3, 3] -> [T, 3, 3] partial rotations."""
    levels = max(1, int(cfg.levels))
    if len(torso_y) == 0:
        return np.zeros((0, 3, 3), np.float32)
    y_top = float(np.percentile(torso_y, 1))
    t = np.clip((torso_y - y_top) / max(cfg.neck_blend_m, 1e-9), 0, 1)
    w = cfg.torso_follow + (1 - cfg.torso_follow) * (1 - t * t * (3 - 2 * t))
    lvl = np.rint((w - cfg.torso_follow) / max(1 - cfg.torso_follow, 1e-9) * (levels - 1)) if levels > 1 else 0 * w
    r = scaled_rotations(np.asarray(rotation, np.float64), np.linspace(cfg.torso_follow, 1.0, levels))
    return r[lvl.astype(np.int64)].astype(np.float32)


def pose_gaussians(g: dict, part, face_id, bary, faces, rotation, expression, coeffs,
                   cfg: DriveConfig | None = None) -> dict:
    """Pose a batch of avatars as drive() does, in torch.

    g: means [B, N, 3], quats [B, N, 4], log_scales [B, N, 3], template [B, V, 3], basis [B, E, V, 3];
    part/face_id [N], bary [N, 3], faces [F, 3] (long); rotation [B, 3, 3] head rotation; expression
    [B, L, 3]; coeffs [B, E]. Returns means/quats/scales [B, N, *] in drive()'s frame (rotated about the
    head origin; the camera adds the translation)."""
    cfg = cfg or DriveConfig()
    tpl = g["template"]
    b = tpl.shape[0]
    disp = torch.zeros_like(tpl)
    ll = min(tpl.shape[1], expression.shape[1])
    off = expression[:, :ll] * cfg.expression_gain
    length = off.norm(dim=-1, keepdim=True)
    disp[:, :ll] = torch.where(length > cfg.max_offset_m, off * (cfg.max_offset_m / length.clamp(min=1e-12)), off)
    disp = disp + torch.einsum("be,bevc->bvc", coeffs, g["basis"])
    fr0, a0 = _triangle_frames(tpl, faces)
    fr1, a1 = _triangle_frames(tpl + disp, faces)
    r_tri = fr1 @ fr0.transpose(-1, -2)  # [B, F, 3, 3]
    scale_tri = torch.sqrt(a1.clamp(min=1e-20) / a0.clamp(min=1e-20))  # [B, F]
    bound = (part == PART_FACE) & (face_id >= 0)
    fid = face_id.clamp(min=0)
    tri0 = tpl[:, faces[fid]]  # [B, N, 3, 3]
    u0 = (bary[None, :, :, None] * tri0).sum(2)
    u1 = u0 + (bary[None, :, :, None] * disp[:, faces[fid]]).sum(2)
    rt = r_tri[:, fid]  # [B, N, 3, 3]
    means = g["means"]
    face_pos = u1 + torch.einsum("bnij,bnj->bni", rt, means - u0)
    rot_g = rotation[:, None].expand(-1, means.shape[1], -1, -1)  # [B, N, 3, 3]
    r_n = torch.where(bound[None, :, None, None], rot_g @ rt, rot_g)
    torso = (part == PART_TORSO).cpu().numpy()
    if torso.any():
        r_n = r_n.clone()
        for i in range(b):
            y = means[i, torch.as_tensor(torso, device=means.device), 1].detach().cpu().numpy()
            r_tor = torso_rotations(y, rotation[i].detach().cpu().numpy(), cfg)
            r_n[i, torch.as_tensor(torso, device=means.device)] = torch.as_tensor(r_tor, device=means.device)
    pos = torch.where(bound[None, :, None], face_pos, means)
    rigid_pos = torch.einsum("bnij,bnj->bni", r_n, pos)
    face_out = torch.einsum("bij,bnj->bni", rotation, face_pos)
    means_out = torch.where(bound[None, :, None], face_out, rigid_pos)
    quats = _quat_mul(_matrix_to_quat(r_n), g["quats"])
    s = torch.where(bound[None], scale_tri[:, fid], torch.ones_like(scale_tri[:, fid]))
    return {"means": means_out, "quats": quats, "scales": torch.exp(g["log_scales"]) * s[..., None]}
