"""The lightweight driving module (RAR's driven avatar): (avatar, control, lighting) -> posed Gaussians.

Its cost depends only on the number of Gaussians and template triangles, never on how the avatar was
reconstructed. The rules (which frame each Gaussian follows: face triangles, the fading band around the
template, head, torso levels, jaw levels, eyeballs) are written once in core/deform.py, for numpy and
torch; `Driver` builds the per-avatar binding once and, per control, the small per-frame tables, then
applies them to every Gaussian with one compiled kernel (one table look-up and a handful of
multiply-adds per Gaussian). Avatars whose arrays are torch tensors are driven through the same rules in
torch, with gradients (training uses `model.reenactment.pose_gaussians`, the same functions batched).

Relighting: colour = captured colour * E_target(n') / E_captured(n), E the irradiance of 2nd-order SH
lighting (Ramamoorthi & Hanrahan) at the Gaussian's normal n (n' posed). `lighting_sh` rows are the
9 real SH coefficients in the order (0,0) (1,-1) (1,0) (1,1) (2,-2) (2,-1) (2,0) (2,1) (2,2), in the
head frame (x right, y down, z into the head), per rgb channel. See `sh9_basis` and `irradiance`.

Colours are the DC term (sh[:, 0]) plus, on the Gaussians whose higher SH bands are not zero, bands 1 and 2 seen
from the camera `drive(viewmat=...)` is given, summed and then clipped to [0, 1] (the learned reconstructor's head
outline: its front colour seen from the photo's direction, its side colour from the side, `core/model/generator.py`;
mesh_fit's edge-on rim: the colour its refinement made up seen from the photo's camera only, `reconstruct.builder.
edge_on_sh`); band 3 is not used. Every render backend gets these colours. Torch avatars (training) are driven with
the DC term only (training renders the same colours by `train.trainer.view_rgb`).

Six colour maps are added on top, on their own rows: the photo's creases (the wrinkle map, `wrinkle_share`), the
closed lids' lash line evened out as each lid closes (the lash map, core/lashes.py), the upper lids' crease-side strip
taking the closed lid's skin colour with it (the crease map, core/lashes.py), the lit skin a brow raise unfolds
between brow and lid (core/brow_strip.py), the lips' own colour over the teeth and skin an open photo's lips hold, at
every expression but the photo's own (core/lip_body.py), and the lips' own colour on their inner margins as they part
(core/lip_margin.py; on an avatar whose photo's mouth is open, also the line between its closed lips); none adds
anything at rest but those two of an open photo's.

A grinning photo's dark mouth corners that run past the template's (core/corner_shade.py) take the template's corner
motion in place of their cheek triangles' on the numpy path, after the frames are applied: zero at rest.

Zero control (FaceControl.rest()) and captured lighting give the rest pose exactly: each frame's delta
is exactly zero when nothing moves it, and the posed values are rest + delta.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core import brow_strip, corner_shade, deform, lashes, lip_body, lip_margin
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import (PART_EYE, PART_FACE, PART_PHOTO_MOUTH, SH_C1, SH_C2, GaussianAvatar,
                                           sh_dc_to_rgb, sh_rest_rows)
from gaussian_head_ros.core.control import FaceControl, head_rotation_in_view, quat_to_matrix
from gaussian_head_ros.core.deform import DriveConfig, axis_angle_x, scaled_rotations, triangle_frames  # noqa: F401
from gaussian_head_ros.core.expression import hooded_brow_lift

log = logging.getLogger(__name__)



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
        """N, the number of Gaussians (rows of `means`)."""
        return int(self.means.shape[0])


# ---------------------------------------------------------------------------------------------------
# Lighting: 2nd-order SH irradiance and target presets

# [9] the clamped cosine lobe's SH coefficients per band (A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4; Ramamoorthi and
# Hanrahan, "An efficient representation for irradiance environment maps", SIGGRAPH 2001): irradiance from radiance
SH_COSINE_LOBE = np.array([math.pi] + [2 * math.pi / 3] * 3 + [math.pi / 4] * 5)


def sh9_basis(n: np.ndarray) -> np.ndarray:
    """[..., 3] unit directions -> [..., 9] real SH basis values, degree <= 2."""
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    one = np.ones_like(x)
    return np.stack([0.282095 * one, 0.488603 * y, 0.488603 * z, 0.488603 * x,
                     1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1),
                     1.092548 * x * z, 0.546274 * (x * x - y * y)], -1)


def irradiance(n: np.ndarray, lighting_sh: np.ndarray) -> np.ndarray:
    """[..., 3] unit normals, [9, 3] SH radiance -> [..., 3] irradiance / pi (1.0 under unit ambient light)."""
    return sh9_basis(n) @ (np.asarray(lighting_sh, np.float64) * SH_COSINE_LOBE[:, None] / math.pi)


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
# Rotation helpers (the rules' own, numpy float64 in and out)

def matrices_to_quats(r: np.ndarray) -> np.ndarray:
    """[K, 3, 3] rotations -> [K, 4] wxyz (w >= 0); the identity gives exactly (1, 0, 0, 0)."""
    return deform.matrix_to_quat(np.asarray(r, np.float64))


# ---------------------------------------------------------------------------------------------------
# The driver

@dataclass
class FrameTables:
    """Per-control transforms, one row per frame k (see core/deform.py for the frames)."""

    delta: np.ndarray  # [K, 3, 6] float32: posed - rest position = delta[k] @ coef[n]
    quat: np.ndarray  # [K, 4] float32 wxyz rotation change of frame k
    rot: np.ndarray  # [K, 3, 3] float32 the same as a matrix (for normals)
    scale: np.ndarray  # [K] float32 scale factor
    wrinkle: float = 0.0  # how far the avatar's wrinkle map is in (`wrinkle_share`), 0..1
    lash: np.ndarray | None = None  # [2] how far each eye's (right, left) lash map is in (`lashes.lash_weights`)
    unfold: np.ndarray | None = None  # [2] each eye's brow-lid strip lit share (brow_strip.unfold_share), 0..1
    # [M] the opacity share the photo's own open mouth keeps (deform.photo_mouth_share; None: the avatar has none)
    photo_mouth: np.ndarray | None = None
    # [M, 3] how far each lip margin row takes its lip colour (lip_margin.margin_share; None: nothing this frame)
    margin: np.ndarray | None = None
    # how far an open photo's lips take their own colour (core.lip_body: 1 - the photo's own opening's share; 0: none)
    body: float = 0.0
    # [2] the opacity share each eye's (right, left) eyeballs keep under its lid (`lashes.eyeball_share`; None: all)
    eyeball: np.ndarray | None = None
    # [2] how far each eye's shut-lid shade is in (DriveConfig.lid_shade x `lashes.lash_weights` over
    # lid_shade_closure; None: none this frame)
    lid_shade: np.ndarray | None = None


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
        self.rig = deform.build_rig(avatar.part, avatar.face_id, avatar.bary, self.means, avatar.template_vertices,
                                    avatar.template_faces, self.cfg, photo_points=_photo_points(avatar),
                                    brow_hood=[hooded_brow_lift(v) for v in np.ravel(avatar.rest_brow_shift)],
                                    photo_rotation=_photo_rotation(avatar),
                                    brow_above=np.maximum(np.ravel(avatar.rest_brow_shift), 0.0))
        self.verts = self.rig.verts  # [V, 3] float64
        self.brows = deform.brow_rows(self.verts)  # expression rows DriveConfig.brow_gain scales
        self.frame = self.rig.frame  # [N] frame of each Gaussian
        self.expr_index = {name: i for i, name in enumerate(avatar.expression_names)}
        # the photo's own open mouth: its rows, the jaw angle (rad) and the lips' gap (m) it shows them at
        # (avatar.PART_PHOTO_MOUTH)
        self.photo_mouth_rows = np.flatnonzero(np.asarray(avatar.part) == PART_PHOTO_MOUTH)  # [M]
        self.photo_mouth_at = np.asarray(avatar.bary, np.float64)[self.photo_mouth_rows, 1:]  # [M, 2] gap m, rad
        # the eyeballs (avatar.PART_EYE) and their eye (0 the subject's right: x < 0 in the head frame, 1 left), which
        # a shut lid hides (`lashes.eyeball_share`); none without a MediaPipe template (no lids to read)
        self.eyeball_rows = np.flatnonzero(np.asarray(avatar.part) == PART_EYE) \
            if lmk.has_mediapipe_topology(len(self.verts)) else np.zeros(0, np.int64)  # [M]
        self.eyeball_eye = (self.means[self.eyeball_rows, 0] > 0).astype(np.int64)  # [M]
        self.basis = np.asarray(avatar.expression_basis, np.float64)  # [E, V, 3]
        self.wrinkle_rows = np.asarray(avatar.wrinkle_rows, np.int64)  # [M]
        self.wrinkle_rgb = np.asarray(avatar.wrinkle_rgb, np.float32)  # [M, 3]
        self.wrinkle_expression = np.asarray(avatar.wrinkle_expression, np.float64)  # [V, 3] or [0, 3]
        self._rest_values(avatar, np_of)
        # the photo's dark mouth corners that run past the template's follow its lip corners (core.corner_shade)
        self.corner = corner_shade.corner_shade(self.rig, self.means, self.colors, avatar.part) \
            if self.cfg.corner_shade and not self.torch else None
        self.coef = deform.coefficients(self.rig, self.means, self.verts).astype(np.float32)  # [N, 6]
        self.crease = None  # lashes.CreaseMap or None (`_lash_map`)
        self.lid_shade = None  # lashes.LidShade or None (`_lash_map`)
        self.lash = self._lash_map(avatar)  # LashMap or None
        front = self.colors if not len(self.view_rows) else _view_sh(  # the colours the photo's view shows
            self.colors, self.view_rows, self.view_dc, self.view_sh, self.frame,
            np.broadcast_to(np.eye(3, dtype=np.float32), (self.rig.num_frames, 3, 3)).copy(), self.means,
            np.zeros(3, np.float32), True, self.view_degree)
        self.strip = brow_strip.strip_rows(self.verts, self.means, front, self.frame < self.rig.k_head,
                                           avatar.rest_brow_shift)
        lip_rows = (self.frame < self.rig.k_head) & (np.asarray(avatar.part) == PART_FACE) & bool(self.cfg.lip_margin)
        photo_open = lip_margin.closing_weight(self.verts, float(np.max(self.photo_mouth_at[:, 0]))
                                               if len(self.photo_mouth_rows) else 0.0)
        # an open photo's closed lips in their own colour (core.lip_body); the margins' target is the lips so drawn
        self.body = lip_body.body_rows(self.verts, self.means, front, lip_rows, photo_open)
        self.margin = lip_margin.margin_rows(self.verts, self.means, lip_body.at_rest(self.body, front), lip_rows,
                                             photo_open=photo_open)

    def _lash_map(self, avatar) -> "lashes.LashMap | None":
        """The lash map (core.lashes), its closed places those this driver gives in a full blink, head at rest; sets
        self.crease, the crease map (lashes.crease_map, on avatars with a lash band), from the same closed places, and
        self.lid_shade (lashes.lid_shade: the shut lid's shading over its height, at its closed skin's level)."""
        if self.cfg.lash_smooth_m[0] <= 0:
            return None
        rows, eye = lashes.lash_rows(avatar.part, avatar.face_id, self.means, self.verts, self.rig.faces)
        if not len(rows):
            return None
        crease, crease_eye, skin, skin_eye = (rows[:0],) * 4
        if self.cfg.lid_crease_skin_m > 0:  # and the crease map (lashes.crease_map) with it
            crease, crease_eye, skin, skin_eye = lashes.crease_rows(avatar.part, avatar.face_id, avatar.bary,
                                                                    self.rig.faces)
            spread, spread_eye = lashes.spread_rows(avatar.part, avatar.face_id, avatar.bary, self.means, self.verts,
                                                    self.rig.faces)  # (disjoint: static, not face)
            crease, crease_eye = np.concatenate([crease, spread]), np.concatenate([crease_eye, spread_eye])
            order = np.argsort(crease, kind="stable")
            crease, crease_eye = crease[order], crease_eye[order]
        moved = np.concatenate([rows, crease, skin])
        disp = lashes.closed_displacement(self.verts)
        delta, _, scale = deform.frame_tables(self.rig, self.verts, disp, np.eye(3), 0.0, None, self.cfg)
        coef = self.coef[moved].astype(np.float64)
        closed = self.means.astype(np.float64).copy()
        closed[moved] += np.einsum("mrc,mc->mr", delta[self.frame[moved]], coef)  # `_apply`'s means, on those rows
        self.crease = lashes.crease_map(crease, crease_eye, skin, skin_eye, closed, self.colors, self.opacities,
                                        self.cfg.lid_crease_skin_m)
        self.lid_shade = None if self.cfg.lid_shade <= 0 else lashes.lid_shade(
            avatar.part, self.means, self.verts, self.colors, self.opacities, skin, skin_eye)
        return lashes.lash_map(rows, eye, closed, self.colors, self.opacities, *self.cfg.lash_smooth_m)

    def _rest_values(self, avatar, np_of) -> None:
        """Activated rest values, the captured shading, and for torch avatars the differentiable versions."""
        self.quats = np.asarray(np_of(avatar.quats), np.float32)  # [N, 4]
        self.scales = np.exp(np_of(avatar.log_scales).astype(np.float32))  # [N, 3]
        self.opacities = (1 / (1 + np.exp(-np_of(avatar.logit_opacities).astype(np.float32)))).astype(np.float32)
        self.colors = np.clip(sh_dc_to_rgb(np_of(avatar.sh)[:, 0]), 0, 1)  # [N, 3]
        sh = np_of(avatar.sh)
        self.view_degree = min(int(round(math.sqrt(sh.shape[1]))) - 1, 2)
        used = np.asarray(sh[:, :(self.view_degree + 1) ** 2], np.float32)  # [N, K', 3] DC and bands 1-2
        self.view_rows = sh_rest_rows(used)  # [M] the colour depends on the view (the avatar message's sh_rest_rows)
        self.view_sh = np.zeros((len(self.view_rows), 8, 3), np.float32)  # [M, 8, 3]: bands 1-2, zero-padded
        self.view_sh[:, :used.shape[1] - 1] = used[self.view_rows, 1:]
        self.view_dc = sh_dc_to_rgb(sh[self.view_rows, 0])  # [M, 3] not clipped: bands and DC add up, then clip
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
    def _coeffs(self, control: FaceControl) -> np.ndarray | None:
        """[E] the avatar basis' weights for the control (`deform.basis_coefficients`: the control's absolute
        blendshapes, absent names 0; avatars rest at the blendshapes' zero), None without a basis."""
        if not self.expr_index or not len(control.blendshape_names):
            return None
        return deform.basis_coefficients(self.expr_index, control.blendshape_names, control.blendshapes)

    def deformed_template(self, control: FaceControl) -> tuple[np.ndarray, np.ndarray]:
        """([V, 3] template vertices after the control's expression, [V, 3] displacement), float64."""
        ex, _, _, gaze, lid = deform.control_inputs(control, self.cfg, self.brows, self.verts, self.expr_index,
                                                    self.rig.rest_gaze)
        disp = deform.expression_offsets(self.verts, ex, self.basis, self._coeffs(control), self.cfg, lid, gaze,
                                         self.rig)
        return self.verts + disp, disp

    def tables(self, control: FaceControl) -> FrameTables:
        """The per-frame transforms for one control."""
        ex, jaw_open, _, gaze, lid = deform.control_inputs(control, self.cfg, self.brows, self.verts,
                                                                    self.expr_index, self.rig.rest_gaze)
        disp = deform.expression_offsets(self.verts, ex, self.basis, self._coeffs(control), self.cfg, lid, gaze,
                                         self.rig)
        theta = deform.jaw_angle(self.rig, disp, jaw_open, self.cfg)
        delta, rot, scale = deform.frame_tables(self.rig, self.verts, disp, quat_to_matrix(control.rotation), theta,
                                                gaze, self.cfg)
        wrinkle = wrinkle_share(disp, self.wrinkle_expression) if len(self.wrinkle_rows) else 0.0
        closure = (lashes.lid_closure(self.verts, disp)
                   if self.lash is not None or self.lid_shade is not None or len(self.eyeball_rows) else None)
        lash = None if self.lash is None else lashes.lash_weights(closure, self.cfg.lash_closure)
        shade = None
        if self.lid_shade is not None:
            shade = self.cfg.lid_shade * lashes.lash_weights(closure, self.cfg.lid_shade_closure)
            shade = shade if np.any(shade > 0) else None
        eyeball = None
        if len(self.eyeball_rows):
            eyeball = lashes.eyeball_share(closure, self.cfg.eyeball_shut_closure)
            eyeball = None if np.all(eyeball >= 1) else eyeball
        posed = self.verts + disp  # [V, 3] the template as the control moves it
        photo_mouth = None
        if len(self.photo_mouth_rows):
            gap = deform.inner_lip_gap(posed) if lmk.has_mediapipe_topology(len(self.verts)) else None
            photo_mouth = deform.photo_mouth_share(theta, gap, self.photo_mouth_at[:, 1], self.photo_mouth_at[:, 0],
                                                   self.cfg)
        body = 0.0
        if len(self.body.rows):
            body = 1.0 - (float(np.max(photo_mouth)) if photo_mouth is not None else 0.0)
        margin = None
        if len(self.margin.rows):
            margin = lip_margin.margin_share(posed, self.margin,
                                             float(np.max(photo_mouth)) if photo_mouth is not None else 0.0)
            margin = margin if np.any(margin > 0) else None
        return FrameTables(delta.astype(np.float32), deform.frame_quats(self.rig, rot).astype(np.float32),
                           rot.astype(np.float32), scale.astype(np.float32), wrinkle, lash,
                           brow_strip.unfold_share(disp, self.strip, self.cfg.brow_unfold_gain), photo_mouth, margin,
                           body, eyeball, shade)

    def _colour_maps(self, tab: FrameTables) -> list[tuple[np.ndarray, object]]:
        """The colour maps in this frame, [(rows [M] int64, add: [M, 3] float32 added to those rows' colours, or a
        function of their colours now [M, 3] giving it)], added in this order, each clipped to 0..1: the wrinkle map
        (the photo's creases, as far as the expression goes the photo's way), the lash map (the lash band evened out
        as each lid closes, with the crease map), the shut lid lit and shaded over its height (core.lashes.lid_shade),
        the brow-lid strip's lit skin as a brow raise unfolds it (core.brow_strip: towards its lit colour from the
        colour the rows have in this frame, the one that reads them), an open photo's lips towards
        their own colour away from the photo's own opening (core.lip_body, likewise) and the parted lips' inner
        margins towards their lips' colour (core.lip_margin, likewise from this frame's colours); the ones that add
        nothing are left out."""
        maps = []
        if tab.wrinkle > 0:
            maps.append((self.wrinkle_rows, np.float32(tab.wrinkle) * self.wrinkle_rgb))
        if tab.lash is not None and np.any(tab.lash > 0):
            maps.append((self.lash.rows, tab.lash.astype(np.float32)[self.lash.eye, None] * self.lash.rgb))
            if self.crease is not None:
                maps.append((self.crease.rows, lambda c, w=tab.lash: lashes.crease_rgb(self.crease, w, c)))
        if tab.lid_shade is not None:
            maps.append((self.lid_shade.rows, lambda c, w=tab.lid_shade: lashes.lid_shade_rgb(self.lid_shade, w, c)))
        if tab.unfold is not None and np.any(tab.unfold > 0):
            maps.append((self.strip.rows, lambda c, s=tab.unfold: brow_strip.unfold_rgb(self.strip, s, c)))
        if tab.body > 0:
            maps.append((self.body.rows, lambda c, s=tab.body: lip_body.body_rgb(self.body, s, c)))
        if tab.margin is not None:
            maps.append((self.margin.rows, lambda c, s=tab.margin: lip_margin.margin_rgb(self.margin, s, c)))
        return maps

    def drive(self, control: FaceControl | None = None, lighting=None, viewmat=None) -> PosedGaussians:
        """Pose the avatar. `lighting`: None/'captured', a preset name, or [9, 3] SH (target light). `viewmat`
        [4, 4] head frame -> the camera the Gaussians will be drawn through (their SH bands 1-2 are seen from
        it); None: a distant camera straight in front of the head frame (looking along +z), as the render node's
        and the tracker's cameras are. Avatars with DC colours only ignore it."""
        control = control or FaceControl.rest()
        control.validate()
        target = lighting_from_spec(lighting)
        tab = self.tables(control)
        if self.torch:
            return self._apply_torch(tab, target)
        means, quats, scales = _apply(tab.delta, tab.quat, tab.scale, self.frame, self.coef, self.means,
                                      self.quats, self.scales)
        if self.corner is not None:
            move, growth = corner_shade.shift(tab.delta, tab.rot[self.rig.k_head], self.corner)
            means[self.corner.rows] += move
            scales[self.corner.rows] *= growth[:, None]
        colors = self._view_colors(means, tab, viewmat)
        maps = self._colour_maps(tab)
        if maps:
            if colors is self.colors:  # (_view_colors gives a fresh array when the avatar has view-dependent rows)
                colors = colors.copy()
            for rows, add in maps:
                now = colors[rows]  # (gathered once: the map reads the colours it adds to)
                colors[rows] = np.clip(now + (add(now) if callable(add) else add), 0.0, 1.0)
        if target is not None and self.e_captured is not None:
            colors = _relight(colors, self.normals, self.has_normal, self.e_captured, tab.rot, self.frame,
                              (target.astype(np.float64) * SH_COSINE_LOBE[:, None] / math.pi).astype(np.float32),
                              np.float32(self.cfg.relight_max_ratio))
        return PosedGaussians(means, quats, scales, self._opacities(tab), colors)

    def _opacities(self, tab: FrameTables) -> np.ndarray:
        """[N] float32 the opacities in this frame: the rest ones, the photo's own open mouth's scaled by its share
        (tab.photo_mouth), the eyeballs under a shut lid by theirs (tab.eyeball)."""
        if tab.photo_mouth is None and tab.eyeball is None:
            return self.opacities
        opacities = self.opacities.copy()
        if tab.photo_mouth is not None:
            opacities[self.photo_mouth_rows] *= tab.photo_mouth
        if tab.eyeball is not None:
            opacities[self.eyeball_rows] *= tab.eyeball.astype(np.float32)[self.eyeball_eye]
        return opacities

    def _view_colors(self, means, tab: FrameTables, viewmat) -> np.ndarray:
        """[N, 3] the DC colours plus the SH bands 1..2 seen from viewmat's camera (`drive`) on `view_rows`: the
        direction camera -> Gaussian turned back into the Gaussian's rest frame by its frame's rotation
        (`_view_sh`, the basis of `avatar.sh_basis`)."""
        if not len(self.view_rows):
            return self.colors
        if viewmat is None:
            cam, ortho = np.zeros(3, np.float32), True
        else:
            vm = np.asarray(viewmat, np.float64)
            cam, ortho = (-vm[:3, :3].T @ vm[:3, 3]).astype(np.float32), False
        return _view_sh(self.colors, self.view_rows, self.view_dc, self.view_sh, self.frame, tab.rot, means, cam,
                        ortho, self.view_degree)

    def _apply_torch(self, tab: FrameTables, target) -> PosedGaussians:
        import torch

        dev = self.t_means.device
        coef = deform.coefficients(self.rig, self.t_means, torch.as_tensor(self.verts, dtype=self.t_means.dtype,
                                                                           device=dev))
        f = lambda a: torch.as_tensor(a, device=dev)  # noqa: E731
        means, quats, scales = deform.apply(self.frame, coef, f(tab.delta), f(tab.quat), f(tab.scale), self.t_means,
                                            self.t_quats, self.t_scales)
        colors = self.t_colors
        for rows, add in self._colour_maps(tab):
            # a map that reads the colours takes them to the host (a constant for the gradient); the others do not
            rgb = add(colors[torch.as_tensor(rows, device=dev)].detach().cpu().numpy()) if callable(add) else add
            colors = torch.clamp(colors + torch.zeros_like(colors).index_add(
                0, torch.as_tensor(rows, device=dev), torch.as_tensor(rgb, dtype=colors.dtype, device=dev)), 0, 1)
        if target is not None and self.e_captured is not None:
            n_post = np.einsum("nij,nj->ni", tab.rot[self.frame], self.normals)
            e_t = irradiance(n_post.astype(np.float64), target)
            ratio = np.clip(e_t / self.e_captured, 0, self.cfg.relight_max_ratio)
            ratio[~self.has_normal] = 1.0
            colors = torch.clamp(colors * torch.as_tensor(ratio, dtype=colors.dtype, device=dev), 0, 1)
        opacities = self.t_opac
        if tab.photo_mouth is not None:  # (`_opacities`)
            share = torch.ones_like(opacities).index_copy(0, torch.as_tensor(self.photo_mouth_rows, device=dev),
                                                         torch.as_tensor(tab.photo_mouth, dtype=opacities.dtype,
                                                                         device=dev))
            opacities = opacities * share
        if tab.eyeball is not None:
            share = torch.ones_like(opacities).index_copy(0, torch.as_tensor(self.eyeball_rows, device=dev),
                                                         torch.as_tensor(tab.eyeball[self.eyeball_eye],
                                                                         dtype=opacities.dtype, device=dev))
            opacities = opacities * share
        return PosedGaussians(means, quats, scales, opacities, colors)


def wrinkle_share(disp: np.ndarray, wrinkle_expression: np.ndarray) -> float:
    """[V, 3] the control's template displacement and [V, 3] the avatar's wrinkle_expression (head frame, m) ->
    a in [0, 1]: how far the wrinkle map is in, the projection <disp, e> / <e, e> clipped (0 at rest and for an
    expression away from the photo's, 1 for the photo's own: frame 0 gives the photo's creases back, a smile half
    the photo's gives half of them). 0 for an empty or all-zero wrinkle_expression. Source: crease14's wrinkle
    prototype (session 14)."""
    e = np.asarray(wrinkle_expression, np.float64)
    ee = float(np.sum(e * e)) if e.size else 0.0
    if ee < 1e-12:
        return 0.0
    return float(np.clip(np.sum(np.asarray(disp, np.float64) * e) / ee, 0.0, 1.0))


def _photo_rotation(avatar: GaussianAvatar) -> np.ndarray | None:
    """[3, 3] the control rotation that gives the avatar's photo back (its source camera's head rotation relative to
    the line of sight), None without a source camera."""
    cam = avatar.source_camera
    if cam is None:
        return None
    vm = np.asarray(cam.viewmat, np.float64)
    return head_rotation_in_view(vm[:3, :3], vm[:3, 3])


def _photo_points(avatar: GaussianAvatar) -> np.ndarray | None:
    """[V, 2] the template projected into its photo (pixels, `SourceCamera.project`), None without a source camera."""
    cam, v = avatar.source_camera, np.asarray(avatar.template_vertices, np.float64)
    if cam is None or len(v) == 0:
        return None
    return cam.project(v)


def drive(avatar: GaussianAvatar, control: FaceControl | None = None, lighting=None,
          config: DriveConfig | None = None) -> PosedGaussians:
    """Functional form of `Driver(avatar).drive(control, lighting)` (builds the per-avatar constants each call;
    keep a Driver when driving the same avatar repeatedly)."""
    return Driver(avatar, config).drive(control, lighting)


# ---------------------------------------------------------------------------------------------------
# Per-Gaussian kernels (numba, one thread: ~1 ms for 60k, and no barrier to wait on when the CPU is busy)

from numba import njit  # noqa: E402

from gaussian_head_ros.core.jit import tolerate_cache_write_errors  # noqa: E402

tolerate_cache_write_errors()  # a full disk must not stop a kernel that compiled (core/jit.py)


@njit(fastmath=True, cache=True, nogil=True)
def _view_sh(colors, rows, dc, sh, frame, rot, means, cam, ortho, degree):
    """colors [N, 3] with the Gaussians rows [M] replaced by their DC colour dc [M, 3] (not clipped) + their SH bands
    1..degree (<= 2) sh [M, K - 1, 3], seen along the unit direction from cam [3] to each posed mean (ortho: along
    +z) turned back by rot[frame]^T into the rest frame; clipped to [0, 1] (the sum, as 3DGS clamps it).
    avatar.sh_basis's functions, one Gaussian at a time (test_model's pose twin checks them)."""
    out = colors.copy()
    c1 = np.float32(SH_C1)
    for j in range(rows.shape[0]):
        i = rows[j]
        if ortho:
            dx, dy, dz = np.float32(0.0), np.float32(0.0), np.float32(1.0)
        else:
            dx, dy, dz = means[i, 0] - cam[0], means[i, 1] - cam[1], means[i, 2] - cam[2]
            n = np.sqrt(dx * dx + dy * dy + dz * dz)
            if n > 1e-9:
                dx, dy, dz = dx / n, dy / n, dz / n
        r = rot[frame[i]]
        x = r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz
        y = r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz
        z = r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz
        b0, b1, b2 = -c1 * y, c1 * z, -c1 * x
        for c in range(3):
            v = dc[j, c] + b0 * sh[j, 0, c] + b1 * sh[j, 1, c] + b2 * sh[j, 2, c]
            if degree >= 2:
                v += (SH_C2[0] * x * y * sh[j, 3, c] + SH_C2[1] * y * z * sh[j, 4, c]
                      + SH_C2[2] * (2 * z * z - x * x - y * y) * sh[j, 5, c] + SH_C2[3] * x * z * sh[j, 6, c]
                      + SH_C2[4] * (x * x - y * y) * sh[j, 7, c])
            out[i, c] = min(max(v, np.float32(0.0)), np.float32(1.0))
    return out


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
