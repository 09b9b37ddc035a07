"""The lightweight reenactment module: the FaceControl signal -> offsets of the dynamic Gaussians.

RAR separates a large reconstructor (run once per photo) from a tiny driven avatar (run per frame).
Here the per-frame part is linear so that it can travel inside the unchanged avatar format:

    template'(t) = template + expression(t) + sum_e c_e(t) * basis_e          [V, 3]

with c(t) = `deform.basis_coefficients`: the driving face's blendshapes minus those of the face the avatar
rests in. In training the avatar is made from the source frame, so c = blendshapes(target) -
blendshapes(source). The module also predicts the photo's own coefficients (`rest_coefficients`, trained
against the source frame's blendshapes); the export poses the avatar at -rest (`RARModel.neutral_rest`),
so an exported avatar rests at the coefficients' zero and the driver weighs the basis with the control's
absolute blendshapes: template + B (c_operator - c_photo), the training rule with the photo as the source.

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

from gaussian_head_ros.core import deform
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.control import ARKIT_BLENDSHAPES, FaceControl
from gaussian_head_ros.core.deform import DriveConfig

# ARKit blendshape names (as MediaPipe's FaceLandmarker publishes them), split by region.
EYE_NAMES = tuple(n for n in ARKIT_BLENDSHAPES if n.startswith("eye"))
MOUTH_NAMES = tuple(n for n in ARKIT_BLENDSHAPES if n.startswith(("jaw", "mouth")))

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
        """The coefficients' names: the eye ones, then the mouth ones (the order of the expression vector)."""
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
        # The photo's own coefficients (the face the avatar is made in), trained against the source frame's
        # blendshapes; the export bakes them out of the rest pose so avatars rest at the coefficients' zero.
        self.rest = nn.Linear(global_dim, e)

    @property
    def names(self) -> tuple[str, ...]:
        """The coefficients' names, as its config's `names`."""
        return self.cfg.names

    def personalise(self, global_code: torch.Tensor) -> torch.Tensor:
        """global_code [B, G] -> basis [B, E, V, 3] metres per unit coefficient (once per photo)."""
        raw = self.shared[None].expand(global_code.shape[0], -1, -1, -1)
        if self.code is not None:
            z = torch.tanh(self.code(global_code))  # [B, R]
            raw = raw + torch.einsum("br,revc->bevc", z, self.personal)
        return self.cfg.max_offset * torch.tanh(raw) * self.mask[None, :, :, None]

    def rest_coefficients(self, global_code: torch.Tensor) -> torch.Tensor:
        """global_code [B, G] -> [B, E] in [0, 1]: the photo's own blendshape coefficients (predicted)."""
        return torch.sigmoid(self.rest(global_code))

    @staticmethod
    def offsets(basis: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """basis [B, E, V, 3], coeffs [B, E] -> template vertex offsets [B, V, 3] (the per-frame work)."""
        return torch.einsum("be,bevc->bvc", coeffs, basis)

    def per_frame_macs(self, num_vertices: int) -> int:
        """Multiply-adds of one frame's `offsets` (independent of the backbone by construction)."""
        return len(self.names) * num_vertices * 3


def control_coefficients(control: FaceControl, names) -> np.ndarray:
    """[E] coefficients of `names` for a FaceControl: `deform.basis_coefficients`, the rule `drive()` applies."""
    return deform.basis_coefficients(names, control.blendshape_names, control.blendshapes).astype(np.float32)


# ------------------------------------------------------------------------------------------------------
# Training poses through the driving rules themselves (core/deform.py, in torch): what is trained is what
# drive() renders. test_model.py checks it against core.drive.Driver on the exported avatar.

def pose_gaussians(g: dict, part, face_id, bary, faces, rotation, expression, coeffs, gaze=None,
                   cfg: DriveConfig | None = None, photo_rotation=None, photo_points=None) -> dict:
    """Pose a batch of avatars as drive() does, in torch (gradients to means, quats, log-scales, template
    and basis).

    g: means [B, N, 3], quats [B, N, 4], log_scales [B, N, 3], template [B, V, 3], basis [B, E, V, 3];
    part/face_id [N], bary [N, 3], faces [F, 3] (long); rotation [B, 3, 3] head rotation; expression
    [B, L, 3]; coeffs [B, E]; gaze [B, 2, 2] (yaw, pitch) rad per eye in the head frame (core/eyes.py; None:
    the rest gaze: the eyeballs do not turn); photo_rotation [B, 3, 3] or None: the control rotation that gives each
    source photo back (`control.head_rotation_in_view` of its viewmat; Driver takes it from the exported avatar's source
    camera), from which the torso levels' rows spread (deform.torso_level_scales); photo_points [B, V, 2] or None: each
    template seen in its source photo (pixels, `source_photo_points`), where the rest gaze's yaw is measured as Driver
    measures it on the exported avatar (None: the template's own yaw, which differed: 0.59 vs 0.77 rad on the tiny
    test model's astronaut avatar, and with it the eyeballs' centres and turns). Returns means/quats/scales
    [B, N, *] in drive()'s frame (rotated about the head origin; the camera adds the translation). The binding (which
    frame each Gaussian follows) is
    built per item from its detached rest means, as `Driver` builds it for the exported avatar (`build_rig`: the
    falloff binding's search on the means' device when that is a GPU)."""
    cfg = cfg or DriveConfig()
    np_of = lambda t: t.detach().cpu().numpy()  # noqa: E731
    part_np, fid_np, bary_np, faces_np = np_of(part), np_of(face_id), np_of(bary), np_of(faces)
    out = {"means": [], "quats": [], "scales": []}
    for i in range(g["template"].shape[0]):
        means, tpl = g["means"][i], g["template"][i]
        rig = deform.build_rig(part_np, fid_np, bary_np, means.detach(), np_of(tpl), faces_np, cfg,
                               photo_rotation=None if photo_rotation is None else np_of(photo_rotation[i]),
                               photo_points=None if photo_points is None else np.asarray(photo_points[i], np.float64))
        gz = None if gaze is None else np_of(gaze[i]).astype(np.float64)
        disp = deform.expression_offsets(tpl, expression[i].to(tpl.dtype), g["basis"][i], coeffs[i], cfg, gaze=gz,
                                         rig=rig)
        theta = deform.jaw_angle(rig, disp, None, cfg)
        delta, rot, scale = deform.frame_tables(rig, tpl, disp, rotation[i].to(tpl.dtype), theta, gz, cfg)
        coef = deform.coefficients(rig, means, tpl)
        m, q, s = deform.apply(rig.frame, coef, delta, deform.frame_quats(rig, rot), scale, means, g["quats"][i],
                               torch.exp(g["log_scales"][i]))
        out["means"].append(m)
        out["quats"].append(q)
        out["scales"].append(s)
    return {k: torch.stack(v) for k, v in out.items()}
