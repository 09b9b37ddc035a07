"""The drivable Gaussian head avatar: dataclass, validation and the `.ply` file format.

An avatar is split as in RAR into a static part (rigid with the head; torso Gaussians follow the head
only partly) and a dynamic part bound to a face template mesh (parent triangle + barycentric
coordinates), so that expressions move it. Positions are stored at rest in the head frame, so the
file renders correctly in any 3DGS viewer; the binding lets `drive()` move them with the mesh.

Head frame: x to the image right, y down, z into the head (OpenCV axes of a face looking at the
camera), metres, origin near the centre of the head.

Files (`save_ply` / `load_ply`): `me.ply` is a standard vertex-only 3DGS .ply (x y z nx ny nz f_dc_*
f_rest_* (degree 3) opacity scale_* rot_*, float32, no comments) that splat viewers open as it is;
`me.driving.npz` beside it holds what driving needs (binding, template mesh, expression basis, lighting,
source camera, metadata). The GaussianAvatar message carries both in one message (PointCloud2 rows
in `gaussian_fields(0)` order, binding columns included; the SH bands above 0 sparse, on the rows that have them:
`pack_sh_rest`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gaussian_head_ros.core import files
from gaussian_head_ros.core.files import DRIVING_SUFFIX, is_ply

log = logging.getLogger(__name__)

# Layout of the avatar files (.ply + .driving.npz); the message has its own (GaussianAvatar.msg). 4: part labels may be
# PART_UNDER_CHIN (5) and PART_JAW_FLOOR (6); files of format 1-3 have none and load (and drive) as they are. 3: the
# driving file holds the photo's rest brow shift (rest_brow_shift); files of format 1-2 have none and load with 0.
# 2: the driving file may hold a wrinkle map (wrinkle_rows, wrinkle_rgb, wrinkle_expression); files of format 1 have
# none and load as they are.
FORMAT_VERSION = 4

PART_STATIC = 0  # rigid with the head
PART_FACE = 1  # bound to the template mesh, moves with expressions
PART_TORSO = 2  # neck and shoulders: follows the head pose only partly
PART_MOUTH = 3  # mouth interior (teeth, cavity): follows the jaw
PART_EYE = 4  # eyeballs (sclera, iris, pupil): turn about each eye's centre with the gaze (core/eyes.py)
# skin under the chin that the photo's opened jaw hid and the rest pose's closed chin uncovers (reconstruct.rest_pose.
# under_chin): rigid with the head, never in the template's falloff band (core.deform), so that it stays below the rest
# chin, where it was made to fill, and an opening jaw comes down over it. As PART_STATIC, the falloff carried it up into
# the chin when the rest pose closed the jaw (98 % of obama_speech's 604 discs, chinup26), where it showed as darker
# dots from below.
PART_UNDER_CHIN = 5
# the jaw's underside (reconstruct.mouth.jaw_floor): skin in shade under the mouth interior, driven as the interior is
# (turns with the jaw by its jaw weight); before format 4 it was PART_MOUTH, told from the interior by its discs' size
PART_JAW_FLOOR = 6
# the photo's own open mouth (reconstruct.mesh_fit's `own_mouth`: a wide-open or parted photo's opening, a smile's jaw
# side: its teeth, tongue and dark), driven as the interior is (turns with the jaw by its jaw weight, bary[:, 0]; no
# glide) and seen only while the driven mouth is the photo's: its jaw angle (bary[:, 2], radians) and inner lips' gap
# (bary[:, 1], metres; core.deform.photo_mouth_share fades its opacity); at every other opening the synthetic interior
# (PART_MOUTH) stands for it. Since format 4 (a receiver built before refuses such an avatar, naming the part labels
# it takes).
PART_PHOTO_MOUTH = 7
PART_LAST = PART_PHOTO_MOUTH  # the largest part label an avatar may carry
# the parts that turn with the jaw (core.deform's jaw levels)
JAW_PARTS = (PART_MOUTH, PART_JAW_FLOOR, PART_PHOTO_MOUTH)
# The largest rest brow shift an avatar may carry (metres): brows sit ~13-24 mm above the eye corners
# (core.expression), so the rest moves them well under 1 cm; more is a corrupt file or message.
MAX_REST_BROW_SHIFT_M = 0.01
# The display's Gaussian budget: render_node's `max_gaussians` default (larger avatars are refused there); what
# reconstruction_node's `max_file_gaussians` default, which an avatar file given as photo_path is checked against (a
# 3DGS scan of a million splats was published OK and then refused by the display, review22).
DISPLAY_MAX_GAUSSIANS = 200_000
PART_NAMES = {PART_STATIC: "static", PART_FACE: "face", PART_TORSO: "torso", PART_MOUTH: "mouth", PART_EYE: "eye",
              PART_UNDER_CHIN: "under_chin", PART_JAW_FLOOR: "jaw_floor", PART_PHOTO_MOUTH: "photo_mouth"}

SH_C0 = 0.28209479177387814  # 3DGS: rgb = 0.5 + SH_C0 * f_dc


def num_sh_coeffs(sh_degree: int) -> int:
    """K, the number of SH coefficients per channel for a degree."""
    return (sh_degree + 1) ** 2


def gaussian_fields(sh_degree: int) -> list[str]:
    """Names of the per-Gaussian float32 columns, in file/message order."""
    k = num_sh_coeffs(sh_degree)
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(3 * (k - 1))]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
        + ["part", "face_id", "bary_0", "bary_1", "bary_2"]
    )


def sh_degree_from_fields(names: list[str]) -> int:
    """Inverse of `gaussian_fields`: the SH degree implied by the number of f_rest columns."""
    n_rest = sum(1 for n in names if n.startswith("f_rest_"))
    for deg in range(4):
        if 3 * (num_sh_coeffs(deg) - 1) == n_rest:
            return deg
    raise ValueError(f"{n_rest} f_rest columns do not match any SH degree 0..3")


def sh_rest_columns(sh: np.ndarray) -> np.ndarray:
    """sh [N, K, 3] -> [N, 3 (K - 1)] float32 its bands above 0 as the f_rest_* columns: channel-major as in 3DGS
    (all of red's coefficients, then green's, then blue's)."""
    sh = np.asarray(sh, np.float32)
    return np.ascontiguousarray(sh[:, 1:, :].transpose(0, 2, 1).reshape(sh.shape[0], 3 * (sh.shape[1] - 1)))


def sh_from_columns(dc: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Inverse of `sh_rest_columns`: dc [N, 3] (f_dc_*) and rest [N, 3 (K - 1)] (f_rest_*) -> sh [N, K, 3] float32."""
    n, k = dc.shape[0], rest.shape[1] // 3 + 1
    return np.ascontiguousarray(np.concatenate([np.asarray(dc, np.float32)[:, None, :], np.asarray(
        rest, np.float32).reshape(n, 3, k - 1).transpose(0, 2, 1)], axis=1))


def sh_rest_rows(sh: np.ndarray) -> np.ndarray:
    """sh [N, K, 3] -> [M] int64, ascending: the Gaussians whose SH bands above 0 (sh[:, 1:]) hold any bit other
    than +0.0, the only ones whose colour depends on the view (mesh_fit: the edge-on rim, a few % of the avatar).
    A -0.0 counts, so that `pack_sh_rest` round-trips bit for bit. No rows for K = 1."""
    sh = np.asarray(sh, np.float32)
    if sh.ndim != 3 or sh.shape[1] < 2:
        return np.zeros(0, np.int64)
    bits = np.ascontiguousarray(sh[:, 1:]).view(np.uint32).reshape(sh.shape[0], -1)
    return np.flatnonzero(bits.any(axis=1))


def pack_sh_rest(sh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sh [N, K, 3] -> (rows [M] uint32 ascending (`sh_rest_rows`), values [M, 3 (K - 1)] float32: those rows'
    f_rest_* columns, `sh_rest_columns`): the sparse form of the bands above 0 that the avatar message carries
    (every other row's are zero). `unpack_sh_rest` is its inverse, bit for bit."""
    rows = sh_rest_rows(sh)
    return rows.astype(np.uint32), sh_rest_columns(np.asarray(sh, np.float32)[rows])


def unpack_sh_rest(dc: np.ndarray, sh_degree: int, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """dc [N, 3] (f_dc_*), the SH degree (0..3), rows [M] (strictly ascending, < N) and values [M x 3 (K - 1)]
    (flat or [M, 3 (K - 1)], `pack_sh_rest`) -> sh [N, K, 3] float32, zero bands on the other rows. Raises
    ValueError when the degree is not 0..3, a row is out of range, repeated or out of order, or the number of
    values is not M x 3 (K - 1)."""
    if not 0 <= int(sh_degree) <= 3:
        raise ValueError(f"SH degree {sh_degree} is not 0..3")
    n, width = dc.shape[0], 3 * (num_sh_coeffs(int(sh_degree)) - 1)
    rows = np.asarray(rows).astype(np.int64).reshape(-1)
    values = np.asarray(values, np.float32).reshape(-1)
    if values.size != rows.size * width:
        raise ValueError(f"{values.size} SH band values for {rows.size} rows, expected {rows.size} x {width} "
                         f"(SH degree {sh_degree})")
    if rows.size and (rows[0] < 0 or rows[-1] >= n or np.any(np.diff(rows) <= 0)):
        raise ValueError(f"SH band rows must be strictly ascending Gaussian indices below {n}")
    rest = np.zeros((n, width), np.float32)
    rest[rows] = values.reshape(rows.size, width)
    return sh_from_columns(dc, rest)


def rgb_to_sh_dc(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] colour in [0, 1] -> the degree-0 SH coefficient (3DGS convention)."""
    return ((np.asarray(rgb, np.float32) - 0.5) / SH_C0).astype(np.float32)


def sh_dc_to_rgb(dc: np.ndarray) -> np.ndarray:
    """[..., 3] degree-0 SH coefficient -> the colour it shows (rgb, 0..1 for coefficients made from such colours;
    not clipped): the inverse of `rgb_to_sh_dc` (3DGS convention)."""
    return (0.5 + SH_C0 * np.asarray(dc, np.float32)).astype(np.float32)


SH_C1 = 0.4886025119029199  # 3DGS's real SH of degrees 1 and 2 (orthonormal; signs as 3DGS evaluates them)
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)


def sh_basis(dirs, degree: int):
    """dirs [N, 3] unit directions (x, y, z) from the camera to each Gaussian in its rest frame -> [N, (degree + 1)^2]
    the real SH basis 3DGS evaluates colours with (degree <= 2), numpy or torch: colour = sum_k sh[:, k] * basis[:, k]
    (+ 0.5 on the DC term)."""
    x, y, z = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    cols = [x * 0 + SH_C0]
    if degree >= 1:
        cols += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        cols += [SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2 * z * z - x * x - y * y), SH_C2[3] * x * z,
                 SH_C2[4] * (x * x - y * y)]
    if degree > 2:
        raise ValueError(f"SH degree {degree} is not evaluated (at most 2)")
    if isinstance(dirs, np.ndarray):
        return np.stack(cols, 1)
    import torch

    return torch.stack(cols, 1)


def legendre(t, weights):
    """sum_l weights[l] P_l(t), the Legendre polynomials P_0..P_2 (numpy or torch t): a colour change as a function
    of the cosine t between the view and one direction (`sh_zonal`)."""
    p = (t * 0 + 1, t, 1.5 * t * t - 0.5)
    return sum(w * p[l] for l, w in enumerate(weights))


def sh_zonal(delta_rgb: np.ndarray, dirs: np.ndarray, weights) -> np.ndarray:
    """delta_rgb [N, 3], dirs [N, 3] unit directions e (camera -> Gaussian, rest frame), weights (w_0, w_1, w_2),
    each a number or [N] (one lobe per Gaussian) -> [N, K, 3] SH coefficients (K = (len(weights))^2, DC included,
    without its 0.5 offset) under which a Gaussian seen along d shows delta_rgb x `legendre`(d . e, weights) over what
    its other coefficients give: the addition theorem, P_l(d . e) = 4 pi / (2 l + 1) sum_m Y_lm(e) Y_lm(d), with
    `sh_basis` as Y."""
    e = np.asarray(dirs, np.float64)
    deg = len(weights) - 1
    y = sh_basis(e, deg)  # [N, K]
    scale = np.concatenate([np.broadcast_to(np.asarray(4 * np.pi / (2 * l + 1) * np.asarray(w, np.float64))[..., None],
                                            (len(e), 2 * l + 1)) for l, w in enumerate(weights)], 1)  # [N, K]
    return (y * scale)[:, :, None].astype(np.float32) * np.asarray(delta_rgb, np.float32)[:, None, :]


@dataclass
class SourceCamera:
    """The pinhole camera that took the photo, seen from the head frame."""

    intrinsics: np.ndarray  # [4] fx fy cx cy in pixels
    viewmat: np.ndarray  # [4, 4] world(head)-to-camera, OpenCV axes
    size: tuple[int, int]  # (width, height) in pixels

    def project(self, points: np.ndarray) -> np.ndarray:
        """[M, 3] head-frame points (metres) -> [M, 2] float64 pixels in the photo (x right, y down; depth clamped
        to 1e-6 m): where the photo shows them (the driver measures the rest gaze's yaw on the template seen so)."""
        vm = np.asarray(self.viewmat, np.float64)
        c = np.asarray(points, np.float64).reshape(-1, 3) @ vm[:3, :3].T + vm[:3, 3]
        fx, fy, cx, cy = np.asarray(self.intrinsics, np.float64).reshape(4)
        z = np.maximum(c[:, 2], 1e-6)
        return np.stack([fx * c[:, 0] / z + cx, fy * c[:, 1] / z + cy], 1)

    def to_array(self) -> np.ndarray:  # [20]
        """[20] float32: the intrinsics (fx, fy, cx, cy, pixels) then the viewmat [4, 4] row by row; the
        size travels apart (`from_array`)."""
        return np.concatenate([self.intrinsics.reshape(4), self.viewmat.reshape(16)]).astype(np.float32)

    @staticmethod
    def from_array(a: np.ndarray, size) -> "SourceCamera":
        """`to_array`'s [20] values and (width, height) in pixels -> SourceCamera (copies). Raises ValueError
        for another count of values or a size that is not two numbers."""
        a = np.asarray(a, np.float32).reshape(-1)
        if a.size != 20 or len(size) != 2:
            raise ValueError(f"source camera needs 20 values and a (width, height), got {a.size} and {len(size)}")
        return SourceCamera(a[:4].copy(), a[4:].reshape(4, 4).copy(), (int(size[0]), int(size[1])))


@dataclass
class GaussianAvatar:
    """Canonical Gaussians + everything the driving module needs. Arrays are float32 unless noted."""

    means: np.ndarray  # [N, 3] rest positions, head frame, metres
    normals: np.ndarray  # [N, 3] unit normals at rest (relighting); zeros where unknown
    sh: np.ndarray  # [N, K, 3] SH colour coefficients, K = (sh_degree + 1)^2; sh[:, 0] is f_dc
    logit_opacities: np.ndarray  # [N] logit of opacity
    log_scales: np.ndarray  # [N, 3] log standard deviations, log metres
    quats: np.ndarray  # [N, 4] rotations, w x y z (normalised at render time)
    part: np.ndarray  # [N] uint8, PART_*
    face_id: np.ndarray  # [N] int32, parent triangle in template_faces, -1 = unbound
    bary: np.ndarray  # [N, 3] barycentric coordinates in the parent triangle (0 if unbound)
    template_vertices: np.ndarray  # [V, 3] face template mesh at rest, head frame, metres
    template_faces: np.ndarray  # [F, 3] int32 vertex indices
    expression_names: list[str] = field(default_factory=list)  # [E]
    expression_basis: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.float32))  # [E, V, 3]
    lighting_sh: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))  # [9, 3] or [0, 3]
    source_camera: SourceCamera | None = None
    operator_id: str = ""
    reconstructor: str = ""
    # The wrinkle map: the colour the photo's expression folded into the skin (its creases), which the rest colours
    # leave out and `drive()` adds back as far as the control's expression goes the photo's way (core.drive).
    wrinkle_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))  # [M] ascending row indices
    wrinkle_rgb: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))  # [M, 3] rgb added at full
    wrinkle_expression: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))  # [V, 3] or [0, 3]:
    # the template displacement (head frame, m) at which the map is fully in: the photo's removed expression
    # [2] (subject's right, left brow) how far the rest moved the photo's brows (metres, head frame, y down: < 0
    # lifted; the mean of `core.expression.neutralize`'s move of lmk.BROW_R / BROW_L). 0: not moved, or not known
    # (learned avatars, files before format 3). The driver lifts a hooded photo's upper lids with a driven brow raise
    # by it (`core.drive.Driver`, `core.deform.lids_with_brow_raise`).
    rest_brow_shift: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))

    # ----------------------------------------------------------------------------------------------
    @property
    def num_gaussians(self) -> int:
        """N, the number of Gaussians (rows of `means`)."""
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        """The SH degree of `sh` ([N, K, 3], K = (degree + 1)^2): 0 for colours only, up to 3."""
        k = self.sh.shape[1]
        deg = int(round(np.sqrt(k))) - 1
        return deg

    def table(self, sh_degree: int | None = None) -> np.ndarray:
        """[N, C] float32 rows in `gaussian_fields(sh_degree)` order, sh_degree by default the avatar's: fewer bands
        are left out, more are zeros (the viewer .ply's degree 3; the message's 0, its bands go apart)."""
        n, k = self.num_gaussians, num_sh_coeffs(self.sh_degree if sh_degree is None else sh_degree)
        sh = np.zeros((n, k, 3), np.float32)
        sh[:, :min(k, self.sh.shape[1])] = self.sh[:, :k]
        cols = [
            self.means,
            self.normals,
            self.sh[:, 0, :],
            sh_rest_columns(sh),
            self.logit_opacities.reshape(n, 1),
            self.log_scales,
            self.quats,
            self.part.astype(np.float32).reshape(n, 1),
            self.face_id.astype(np.float32).reshape(n, 1),
            self.bary,
        ]
        return np.ascontiguousarray(np.concatenate([np.asarray(c, np.float32) for c in cols], axis=1))

    @staticmethod
    def columns_from_table(rows: np.ndarray, names: list[str]) -> dict:
        """[N, C] rows + their column names -> the per-Gaussian dataclass fields.

        Accepts any column order; a plain 3DGS file (no normals, no binding) gets zero normals and
        every Gaussian static."""
        rows = np.asarray(rows, np.float32)
        idx = {n: i for i, n in enumerate(names)}
        n = rows.shape[0]

        def cols(keys, default=None):
            if all(k in idx for k in keys):
                return rows[:, [idx[k] for k in keys]].copy()
            if default is not None:
                return np.full((n, len(keys)), default, np.float32)
            missing = [k for k in keys if k not in idx]
            raise ValueError(f"Gaussian table lacks the columns {missing}")

        deg = sh_degree_from_fields(names)
        k = num_sh_coeffs(deg)
        dc = cols(["f_dc_0", "f_dc_1", "f_dc_2"])
        rest = cols([f"f_rest_{i}" for i in range(3 * (k - 1))]) if k > 1 else np.zeros((n, 0), np.float32)
        return dict(
            means=cols(["x", "y", "z"]),
            normals=cols(["nx", "ny", "nz"], 0.0),
            sh=sh_from_columns(dc, rest),
            logit_opacities=cols(["opacity"])[:, 0].copy(),
            log_scales=cols(["scale_0", "scale_1", "scale_2"]),
            quats=cols(["rot_0", "rot_1", "rot_2", "rot_3"]),
            part=cols(["part"], PART_STATIC)[:, 0].astype(np.uint8),
            face_id=cols(["face_id"], -1.0)[:, 0].astype(np.int32),
            bary=cols(["bary_0", "bary_1", "bary_2"], 0.0),
        )

    # ----------------------------------------------------------------------------------------------
    def validate(self, max_gaussians: int | None = None) -> None:
        """Raise ValueError with a reason a person can act on if the avatar cannot be driven/drawn."""
        n = self.num_gaussians
        if n == 0:
            raise ValueError("avatar has zero Gaussians")
        if max_gaussians is not None and n > max_gaussians:
            raise ValueError(f"avatar has {n} Gaussians, above the budget of {max_gaussians}")
        shapes = {
            "means": (self.means, (n, 3)),
            "normals": (self.normals, (n, 3)),
            "logit_opacities": (self.logit_opacities, (n,)),
            "log_scales": (self.log_scales, (n, 3)),
            "quats": (self.quats, (n, 4)),
            "part": (self.part, (n,)),
            "face_id": (self.face_id, (n,)),
            "bary": (self.bary, (n, 3)),
        }
        for name, (arr, shape) in shapes.items():
            if tuple(arr.shape) != shape:
                raise ValueError(f"avatar field {name} has shape {tuple(arr.shape)}, expected {shape}")
        if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3 or self.sh.shape[1] not in (1, 4, 9, 16):
            raise ValueError(f"avatar SH colours have shape {tuple(self.sh.shape)}, expected ({n}, 1|4|9|16, 3)")
        for name in ("means", "normals", "sh", "logit_opacities", "log_scales", "quats", "bary"):
            arr = getattr(self, name)
            if not np.all(np.isfinite(arr)):
                bad = int((~np.isfinite(arr.reshape(n, -1))).any(axis=1).sum())
                raise ValueError(f"avatar field {name} contains NaN or Inf in {bad} of {n} Gaussians")
        if np.any(np.abs(self.log_scales) > 20):
            raise ValueError("avatar log-scales are outside [-20, 20]")
        if np.any(np.linalg.norm(self.quats, axis=1) < 1e-8):
            raise ValueError("avatar has zero-length rotation quaternions")
        if np.any(self.part > PART_LAST):
            raise ValueError(f"avatar part labels must be 0..{PART_LAST}")
        v, f = self.template_vertices, self.template_faces
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"template mesh has shapes {v.shape} / {f.shape}, expected (V, 3) / (F, 3)")
        if not np.all(np.isfinite(v)):
            raise ValueError("template vertices contain NaN or Inf")
        if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
            raise ValueError("template faces index vertices that do not exist")
        bound = self.face_id >= 0
        if np.any(self.face_id[bound] >= f.shape[0]) or np.any(self.face_id < -1):
            raise ValueError("Gaussians are bound to triangles that do not exist")
        e = len(self.expression_names)
        if e and tuple(self.expression_basis.shape) != (e, v.shape[0], 3):
            raise ValueError(
                f"expression basis has shape {tuple(self.expression_basis.shape)}, expected ({e}, {v.shape[0]}, 3)")
        if not np.all(np.isfinite(self.expression_basis)):
            raise ValueError("expression basis contains NaN or Inf")
        if self.lighting_sh.size not in (0, 27) or not np.all(np.isfinite(self.lighting_sh)):
            raise ValueError("lighting must be 9x3 finite SH coefficients or empty")
        rows, rgb, ex = self.wrinkle_rows, self.wrinkle_rgb, self.wrinkle_expression
        if rows.ndim != 1 or rgb.shape != (len(rows), 3):
            raise ValueError(f"wrinkle map has {rows.shape} rows and {rgb.shape} colours, expected (M,) and (M, 3)")
        if len(rows) and (int(rows.max()) >= n or np.any(np.diff(rows.astype(np.int64)) <= 0)):
            raise ValueError(f"wrinkle rows must be strictly ascending Gaussian indices below {n}")
        if len(rows) and ex.shape != (v.shape[0], 3):
            raise ValueError(f"wrinkle expression has shape {ex.shape}, expected ({v.shape[0]}, 3)")
        if not (np.all(np.isfinite(rgb)) and np.all(np.isfinite(ex))):
            raise ValueError("wrinkle map contains NaN or Inf")
        shift = np.asarray(self.rest_brow_shift)
        if shift.shape != (2,) or not np.all(np.isfinite(shift)) or np.any(np.abs(shift) > MAX_REST_BROW_SHIFT_M):
            raise ValueError(f"rest brow shift must be 2 finite values within +-{MAX_REST_BROW_SHIFT_M} m, "
                             f"got {shift.tolist() if shift.size <= 4 else shift.shape}")

    def equals(self, other: "GaussianAvatar") -> bool:
        """Exact (bitwise for arrays) equality, for round-trip checks."""
        if (self.operator_id, self.reconstructor, list(self.expression_names)) != (
                other.operator_id, other.reconstructor, list(other.expression_names)):
            return False
        for name in ("template_vertices", "template_faces", "expression_basis", "lighting_sh", "wrinkle_rows",
                     "wrinkle_rgb", "wrinkle_expression", "rest_brow_shift"):
            a, b = getattr(self, name), getattr(other, name)
            if a.shape != b.shape or a.tobytes() != b.tobytes():
                if not (a.size == 0 and b.size == 0):
                    return False
        if not np.array_equal(self.table().view(np.uint32), other.table().view(np.uint32)):
            return False
        a, b = self.source_camera, other.source_camera
        if (a is None) != (b is None):
            return False
        return a is None or (a.to_array().tobytes() == b.to_array().tobytes() and tuple(a.size) == tuple(b.size))

    def metadata(self) -> dict:
        """The avatar's non-array facts as JSON-able values: format_version, operator_id, reconstructor,
        sh_degree, expression_names (what save_ply's driving file stores as JSON beside the arrays)."""
        return {
            "format_version": FORMAT_VERSION,
            "operator_id": self.operator_id,
            "reconstructor": self.reconstructor,
            "sh_degree": self.sh_degree,
            "expression_names": list(self.expression_names),
        }


# ---------------------------------------------------------------------------------------------------
# Files: me.ply (for splat viewers) + me.driving.npz (what driving needs)

VIEWER_SH_DEGREE = 3  # the viewer file always has degree-3 columns (the INRIA loader asserts 45 f_rest by default)
_BINDING = ("part", "face_id", "bary_0", "bary_1", "bary_2")
_INTEGER_BINDING = ("part", "face_id")  # may be stored as integers in .ply files of ours
_PLY_MAGIC = "gaussian_head_ros"  # the JSON header comment of the single-file format (read, no longer written)


def viewer_fields() -> list[str]:
    """The columns of the viewer .ply, in order: the standard 3DGS vertex layout at SH degree 3."""
    return [n for n in gaussian_fields(VIEWER_SH_DEGREE) if n not in _BINDING]


def driving_path(path: str | Path) -> Path:
    """The driving file that goes with an avatar .ply: me.ply -> me.driving.npz."""
    p = Path(path)
    return p.with_name((p.stem if p.suffix.lower() == ".ply" else p.name) + DRIVING_SUFFIX)


def _crc(means: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(means, "<f4").tobytes())


def save_ply(avatar: GaussianAvatar, path: str | Path) -> list[Path]:
    """Write the avatar as two files and return their paths:

    - `path` (me.ply): a standard vertex-only 3DGS .ply that splat viewers open as it is: one element
      `vertex` with x y z nx ny nz f_dc_0..2 f_rest_0..44 opacity scale_0..2 rot_0..3, all float32, no
      comments (SH padded with zeros to degree 3; log-scales, logit opacities, quats wxyz as 3DGS stores them);
    - `driving_path(path)` (me.driving.npz, numpy arrays, no pickles): what driving needs and the viewer
      file lacks: binding (part, face_id, bary), template mesh, expression basis, lighting, source camera,
      the wrinkle map (format 2; empty when the avatar has none), the photo's rest brow shift (format 3),
      metadata (operator_id, reconstructor, true
      SH degree) and a checksum of the means tying it to me.ply.
    Both appear together, whole, or neither (files.WholeFile: a Ctrl-C or a full disk while writing leaves the files
    that were there). `load_ply(path)` reads both back bit-exactly. Raises ValueError when the avatar is invalid,
    OSError when a file cannot be written."""
    avatar.validate()
    path = Path(path)
    n = avatar.num_gaussians
    names = viewer_fields()
    table = avatar.table(VIEWER_SH_DEGREE)[:, :len(names)].astype("<f4")  # the binding columns are the last ones
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property float {c}" for c in names] + ["end_header"]
    cam = avatar.source_camera
    side = driving_path(path)
    ply_file, side_file = files.WholeFile(path), files.WholeFile(side)  # both appear, or neither (Ctrl-C, a full disk)
    with ply_file, side_file:
        with ply_file.writing() as fh:
            fh.write(("\n".join(header) + "\n").encode("ascii"))
            fh.write(np.ascontiguousarray(table).tobytes())
        with side_file.writing() as fh:
            np.savez(fh, metadata=np.array(json.dumps(avatar.metadata())), means_crc32=np.uint32(_crc(avatar.means)),
                     part=avatar.part.astype(np.uint8), face_id=avatar.face_id.astype(np.int32),
                     bary=avatar.bary.astype(np.float32), template_vertices=avatar.template_vertices.astype(np.float32),
                     template_faces=avatar.template_faces.astype(np.int32),
                     expression_basis=avatar.expression_basis.astype(np.float32),
                     lighting_sh=avatar.lighting_sh.astype(np.float32).reshape(-1, 3),
                     source_camera=cam.to_array() if cam else np.zeros(0, np.float32),
                     source_size=np.asarray(cam.size if cam else (0, 0), np.uint32),
                     wrinkle_rows=avatar.wrinkle_rows.astype(np.uint32),
                     wrinkle_rgb=avatar.wrinkle_rgb.astype(np.float32),
                     wrinkle_expression=avatar.wrinkle_expression.astype(np.float32).reshape(-1, 3),
                     rest_brow_shift=np.asarray(avatar.rest_brow_shift, np.float32))
    return [path, side]


# .ply type name -> numpy dtype (binary little endian)
_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "<i2", "int16": "<i2",
              "ushort": "<u2", "uint16": "<u2", "int": "<i4", "int32": "<i4", "uint": "<u4", "uint32": "<u4",
              "float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8"}


class _NotAPly(ValueError):
    """A file given as an avatar that is no .ply: its message names the file and what it is (`_not_a_ply`)."""


@contextlib.contextmanager
def _naming(path: str | Path):
    """Re-raise a ValueError from reading the avatar file `path` with the file named first (`/home/op/me.ply:
    truncated .ply: ...`): `gaussian-head render` said 'truncated .ply: element vertex is short', 'only
    binary_little_endian .ply is supported, this one is ascii 1.0' without saying which file (cli37, s37)."""
    try:
        yield
    except _NotAPly:
        raise
    except ValueError as e:
        raise ValueError(f"{files.shown(path)}: {e}") from None


def _not_a_ply(head: bytes, path: str | Path = "") -> str:
    """The error for a file that is not a .ply, naming what it is when its first bytes (files.HEAD_BYTES) say so
    (files.kind): a photo (and how to make an avatar from it), an avatar's driving file (its .ply is beside it), a
    video, a controls file (what it drives with). Users gave reconstruction_node's photo_path a .driving.npz and
    `gaussian-head render --avatar` a photo, and read only "missing 'ply' magic" (user28, s28); `gaussian-head render
    controls.jsonl --controls me.ply` too."""
    what = files.kind(head, os.fspath(path))
    name = Path(path).name if path else "the file"
    if what == files.DRIVING_FILE:
        ply = (name[: -len(DRIVING_SUFFIX)] if name.endswith(DRIVING_SUFFIX) else "ME") + ".ply"
        return (f"{name} is an avatar's driving file, not the avatar: give its .ply ({ply}, beside it; the "
                f"driving file is read with it)")
    if what is None:
        return f"{name} is not a .ply file (missing 'ply' magic)"
    hint = ""
    if what.endswith("photo"):
        hint = ("; an avatar is made from a photo with `gaussian-head reconstruct PHOTO -o me.ply`, or by giving the "
                "photo to reconstruction_node (photo_path, or operator/photo)")
    elif what.startswith("a video"):
        hint = ("; a clip drives an avatar (`gaussian-head track CLIP -o controls.jsonl`, then `gaussian-head render "
                "me.ply --controls controls.jsonl`; or video_source_node and tracker_node), it is not one")
    elif what == files.CONTROLS:
        hint = f"; it drives an avatar: `gaussian-head render ME.ply --controls {name}`"
    return f"{name} is {what}, not an avatar .ply{hint}"


def _parse_header(fh) -> tuple[list, dict]:
    """Elements [{name, count, props: [(name, dtype, type name) | (name, "list", count dtype, item dtype)]}]
    and the metadata of our single-file format ({} for others)."""
    first = fh.readline()
    if not is_ply(first):
        head = first[:files.HEAD_BYTES]
        raise _NotAPly(_not_a_ply(head + fh.read(max(0, files.HEAD_BYTES - len(head))), getattr(fh, "name", "")))
    elements, meta = [], {}
    while True:
        raw = fh.readline()
        if not raw:
            raise ValueError("truncated .ply header (no end_header)")
        line = raw.decode("ascii", "replace").strip()
        if line == "end_header":
            return elements, meta
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "format" and parts[1:2] != ["binary_little_endian"]:
            raise ValueError(f"only binary_little_endian .ply is supported, this one is {' '.join(parts[1:])}")
        if parts[0] == "comment" and len(parts) > 2 and parts[1] == _PLY_MAGIC:
            meta = json.loads(line.split(None, 2)[2])
        elif parts[0] == "element":
            if len(parts) != 3 or not parts[2].isdigit():  # a hand-edited 'element vertex' was an IndexError traceback
                raise ValueError(f".ply element line {line!r} is not 'element NAME COUNT' (element vertex 60000)")
            elements.append({"name": parts[1], "count": int(parts[2]), "props": []})
        elif parts[0] == "property":
            is_list = parts[1:2] == ["list"]
            if len(parts) < (5 if is_list else 3):  # a bare 'property' was an IndexError traceback
                raise ValueError(f".ply property line {line!r} is not 'property TYPE NAME' (property float x) or "
                                 "'property list COUNT_TYPE ITEM_TYPE NAME'")
            if not elements:
                raise ValueError(".ply property before any element")
            bad = [t for t in (parts[2:4] if is_list else parts[1:2]) if t not in _PLY_TYPES]
            if bad:
                raise ValueError(f".ply property line {line!r} has an unknown type {bad[0]!r}")
            if is_list:
                elements[-1]["props"].append((parts[4], "list", _PLY_TYPES[parts[2]], _PLY_TYPES[parts[3]]))
            else:
                elements[-1]["props"].append((parts[2], _PLY_TYPES[parts[1]], parts[1]))


def ply_count(path: str | Path) -> int:
    """The Gaussians an avatar .ply holds (its header's vertex count), read from the header only (a 3DGS scene of
    millions of splats is not loaded to be counted). Raises ValueError for a file that is not a binary little-endian
    .ply or has no vertex element, OSError when it cannot be read."""
    with _naming(path), open(path, "rb") as fh:
        elements, _ = _parse_header(fh)
        counts = [el["count"] for el in elements if el["name"] == "vertex"]
        if not counts:
            raise ValueError(".ply has no vertex element")
    return counts[0]


def _check_vertex_types(props: list) -> None:
    """Gaussian columns must be float or double: integers there are not positions, colours or scales (a
    `ushort` column holding half-float bits read as integers puts splats kilometres away)."""
    for p in props:
        if p[1] == "list":
            raise ValueError(f".ply vertex property '{p[0]}' is a list; Gaussian columns are scalars")
        name, dtype, type_name = p
        if np.dtype(dtype).kind != "f" and name not in _INTEGER_BINDING:
            hint = " (half-float bits? convert the file to float32)" if type_name in ("ushort", "uint16") else ""
            raise ValueError(f".ply vertex property '{name}' is {type_name}, not float; Gaussian columns must be "
                             f"float or double{hint}")


def load_ply(path: str | Path) -> GaussianAvatar:
    """Read an avatar: a viewer .ply written by `save_ply` with its driving file beside it, a .ply of our
    earlier single-file format, or any binary little-endian 3DGS .ply (then every Gaussian is static, and
    a warning says so). The avatar is validated. Raises ValueError saying what is wrong (not a .ply,
    truncated or counting more rows than it holds, a non-float Gaussian column with its name and type, non-finite
    splats and how many, a driving file that is not a zip of `save_ply`'s arrays or belongs to another avatar), the
    file named first (`/home/op/me.ply: truncated .ply: ...`; a file that is no .ply is named as what it is)."""
    with _naming(path):
        return _load_ply(Path(path))


def _load_ply(path: Path) -> GaussianAvatar:
    with open(path, "rb") as fh:
        elements, meta = _parse_header(fh)
        left = os.fstat(fh.fileno()).st_size - fh.tell()  # bytes after the header
        data = {}
        for el in elements:
            if el["count"] > left:  # a count no file of this size holds (10**14: MemoryError)
                raise ValueError(f"truncated .ply: element {el['name']} counts {el['count']} rows, the file has "
                                 f"{left} bytes after its header")
            if el["name"] == "vertex":
                _check_vertex_types(el["props"])
            if any(p[1] == "list" for p in el["props"]):
                if el["name"] != "template_face":
                    raise ValueError(f"unsupported list element {el['name']}")
                dt = np.dtype([("n", el["props"][0][2]), ("i", el["props"][0][3], (3,))])
                arr = np.frombuffer(fh.read(dt.itemsize * el["count"]), dt, count=el["count"])
                if el["count"] and np.any(arr["n"] != 3):
                    raise ValueError("template faces must be triangles")
                data[el["name"]] = arr["i"].astype(np.int32)
                continue
            dt = np.dtype([(p[0], p[1]) for p in el["props"]])
            buf = fh.read(dt.itemsize * el["count"])
            if len(buf) != dt.itemsize * el["count"]:
                raise ValueError(f"truncated .ply: element {el['name']} is short")
            data[el["name"]] = (np.frombuffer(buf, dt, count=el["count"]), [p[0] for p in el["props"]])
    if "vertex" not in data:
        raise ValueError(".ply has no vertex element")
    if meta and meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"avatar format version {meta['format_version']} is newer than this reader ({FORMAT_VERSION})")
    rows, names = data["vertex"]
    table = np.stack([rows[n].astype(np.float32) for n in names], axis=1) if names else np.zeros((0, 0), np.float32)
    cols = GaussianAvatar.columns_from_table(table, names)
    if "template_vertex" in data or meta:
        avatar = _single_file_avatar(cols, data, meta)
    elif driving_path(path).is_file():
        avatar = _with_driving_file(cols, driving_path(path))
    else:
        log.warning("%s has no driving file beside it (%s): every Gaussian is static, the avatar follows the head pose "
                    "only, not the face", path, driving_path(path).name)
        avatar = GaussianAvatar(**cols, template_vertices=np.zeros((0, 3), np.float32),
                                template_faces=np.zeros((0, 3), np.int32))
    avatar.validate()
    return avatar


# the arrays every driving file `save_ply` wrote holds (the wrinkle map and rest brow shift came later: optional)
_DRIVING_ARRAYS = {"means_crc32", "part", "face_id", "bary", "template_vertices", "template_faces", "expression_basis",
                   "lighting_sh", "source_camera", "source_size"}


def _with_driving_file(cols: dict, side: Path) -> GaussianAvatar:
    """The viewer file's columns + its driving file -> the avatar as it was saved."""
    try:
        with np.load(side, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        meta = json.loads(str(d["metadata"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # not a zip, or a member cut or altered
        raise ValueError(f"cannot read the driving file {side}: {e}") from e
    missing = sorted(_DRIVING_ARRAYS - set(d))
    if missing:
        raise ValueError(f"cannot read the driving file {side}: it lacks {', '.join(missing)} (not one `save_ply` wrote)")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"avatar format version {meta['format_version']} is newer than this reader ({FORMAT_VERSION})")
    n = cols["means"].shape[0]
    if d["part"].shape != (n,) or int(d["means_crc32"]) != _crc(cols["means"]):
        raise ValueError(f"{side.name} belongs to another avatar than its .ply (different Gaussians); "
                         "re-export both files together")
    k = num_sh_coeffs(int(meta.get("sh_degree", VIEWER_SH_DEGREE)))
    cols.update(sh=np.ascontiguousarray(cols["sh"][:, :k]), part=d["part"].astype(np.uint8),
                face_id=d["face_id"].astype(np.int32), bary=d["bary"].astype(np.float32))
    cam = SourceCamera.from_array(d["source_camera"], d["source_size"]) if d["source_camera"].size else None
    return GaussianAvatar(**cols, template_vertices=d["template_vertices"], template_faces=d["template_faces"],
                          expression_names=list(meta.get("expression_names", [])),
                          expression_basis=d["expression_basis"], lighting_sh=d["lighting_sh"].reshape(-1, 3),
                          source_camera=cam, operator_id=str(meta.get("operator_id", "")),
                          reconstructor=str(meta.get("reconstructor", "")),
                          **{k: d[k] for k in ("wrinkle_rows", "wrinkle_rgb", "wrinkle_expression", "rest_brow_shift")
                             if k in d})


def _single_file_avatar(cols: dict, data: dict, meta: dict) -> GaussianAvatar:
    """Our earlier format: driving data as extra .ply elements and a JSON comment."""
    def matrix(name, ncols):
        if name not in data:
            return np.zeros((0, ncols), np.float32)
        arr, names = data[name]
        return np.stack([arr[n].astype(np.float32) for n in names], axis=1) if len(arr) else np.zeros((0, ncols), np.float32)

    verts = matrix("template_vertex", 3)
    names_e = list(meta.get("expression_names", []))
    basis = matrix("expression_offset", 3)
    basis = basis.reshape(len(names_e), verts.shape[0], 3) if names_e else np.zeros((0, 0, 3), np.float32)
    cam = None
    if "source_camera" in data and len(data["source_camera"][0]):
        arr, _ = data["source_camera"]
        vals = np.array([arr[f"c{i}"][0] for i in range(20)], np.float32)
        cam = SourceCamera.from_array(vals, (int(arr["width"][0]), int(arr["height"][0])))
    return GaussianAvatar(
        **cols,
        template_vertices=verts,
        template_faces=data.get("template_face", np.zeros((0, 3), np.int32)),
        expression_names=names_e,
        expression_basis=basis.astype(np.float32),
        lighting_sh=matrix("lighting_sh", 3),
        source_camera=cam,
        operator_id=str(meta.get("operator_id", "")),
        reconstructor=str(meta.get("reconstructor", "")),
    )
