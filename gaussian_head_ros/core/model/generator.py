"""The Gaussian generator: backbone features of one photo -> the avatar's Gaussians (RAR's static and
dynamic parts), run once per photo.

Every Gaussian has a fixed anchor chosen when the model is built (stored in the checkpoint):
- dynamic part (PART_FACE): a parent triangle of the face template mesh and barycentric coordinates,
  spread over the template in proportion to triangle area; the rest position is the barycentric point
  of the photo's template plus a predicted offset, so `drive()` moves it with the mesh;
- static part (PART_STATIC): directions on the head surface (hair, ears, back of the head; not in front of
  the face). The surface is fitted to each photo's face template (an ellipsoid whose centre and radii
  scale with the face's width between the cheeks and sit on its cheek line, so it joins the face), and
  every Gaussian moves off it by a predicted offset (hair volume);
- torso (PART_TORSO): a curved sheet below the head for the neck and shoulders, scaled the same way.
Each anchor is projected into the source crop. A convolutional decoder turns the backbone's patch tokens
into a feature map at 4x the patch grid (64 x 64 at 224 px input); the Gaussian's attributes come from an
MLP shared by all Gaussians, fed with that map and the photo's colour sampled at the anchor, a learned
per-anchor code and the image's global (CLS) code.

What the photo cannot show is inferred, not copied: each anchor has a visibility in the source view,
v = sigmoid(logit(v_geo) + learned correction), where v_geo is a smooth step of how much its surface
normal faces the source camera. The photo's evidence (sampled features and colour) reaches a Gaussian
only through v_geo, and its colour is v * (photo colour, corrected) + (1 - v) * an inferred colour made
from the anchor's code and the global code alone. A Gaussian facing away from the camera (the back and
far side of the head) therefore never takes the colour of the pixel it projects to: seen from behind,
the avatar shows no ghost of the face. The head frame and metres are those of core/avatar.py; outputs are
raw parameters (log-scales, logit opacities, wxyz quats, rgb in [0, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_FACE, PART_STATIC, PART_TORSO


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes of the generated avatar and of the generator network."""

    num_face: int = 30_000  # dynamic Gaussians bound to template triangles
    num_head: int = 20_000  # static Gaussians on the head shell (hair, ears, back of the head)
    num_torso: int = 5_000  # neck and shoulders (follow the head pose only partly)
    feat_dim: int = 64  # channels of the feature map sampled at each anchor
    anchor_dim: int = 16  # learned code per anchor
    global_dim: int = 32  # per-photo code from the CLS token (also feeds the reenactment module)
    hidden: int = 128  # width of the per-Gaussian MLP
    max_offset_face: float = 0.004  # metres a face Gaussian may move off its template point
    max_offset_shell: float = 0.04  # metres a head-surface / torso Gaussian may move off its anchor
    decoder_upsample: int = 4  # feature map side = this x the patch grid (2 or 4)
    visibility_softness: float = 0.05  # width of the smooth step of n . (direction to camera) giving v_geo
    scale_fill: float = 0.8  # initial Gaussian size as a fraction of the mean anchor spacing
    surface_fill: float = 1.2  # the same for the head surface and torso (closed from behind before any training)
    seed: int = 0  # anchor sampling

    @property
    def num_gaussians(self) -> int:
        return self.num_face + self.num_head + self.num_torso


# The canonical head surface and torso sheet (head frame: x right, y down, z into the head, metres; the
# origin is between the cheeks at cheek level, the outer eye corners 9 cm apart), for a face
# SHELL_FACE_WIDTH_M wide between the cheek landmarks; each photo's surface is scaled to its own face.
SHELL_CENTRE = (0.0, -0.025, 0.035)
SHELL_RADII = (0.085, 0.115, 0.11)
SHELL_FACE_WIDTH_M = 0.14
TORSO_X = (-0.2, 0.2)
TORSO_Y = (0.1, 0.3)
TORSO_Z = 0.06


def _fibonacci_sphere(n: int) -> np.ndarray:  # [n, 3] unit vectors
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + 5 ** 0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], 1)


def sample_anchors(cfg: GeneratorConfig, ref_vertices: np.ndarray, faces: np.ndarray) -> dict[str, np.ndarray]:
    """Fixed anchors: part [N], face_id [N] (-1 unbound), bary [N, 3], shell [N, 3] (unbound positions)."""
    rng = np.random.default_rng(cfg.seed)
    tri = ref_vertices[faces]  # [F, 3, 3]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not np.all(np.isfinite(area)) or area.sum() <= 0:
        raise ValueError("template mesh has no area; cannot place the face Gaussians")
    # Deterministic area-proportional allocation, then uniform barycentric points inside each triangle.
    p = area / area.sum()
    counts = np.floor(p * cfg.num_face).astype(np.int64)
    rest = cfg.num_face - counts.sum()
    counts[np.argsort(-(p * cfg.num_face - counts))[:rest]] += 1
    face_id = np.repeat(np.arange(len(faces)), counts)
    u, v = rng.random((2, cfg.num_face))
    flip = u + v > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    bary = np.stack([1 - u - v, u, v], 1)
    # Head surface: directions that do not lie in front of the face (the face part covers that), stored
    # on the canonical surface; `head_surface` moves them onto each photo's.
    dirs = _fibonacci_sphere(cfg.num_head * 3)
    keep = (dirs[:, 2] > -0.35) | (dirs[:, 1] < -0.55)
    dirs = dirs[keep][np.linspace(0, keep.sum() - 1, cfg.num_head).astype(np.int64)]
    head = np.asarray(SHELL_CENTRE) + dirs * np.asarray(SHELL_RADII)
    # Torso: a sheet curving away from the camera at the sides.
    gx = rng.uniform(*TORSO_X, cfg.num_torso)
    gy = rng.uniform(*TORSO_Y, cfg.num_torso)
    torso = np.stack([gx, gy, TORSO_Z + 0.8 * gx ** 2 / TORSO_X[1]], 1)
    n_unbound = cfg.num_head + cfg.num_torso
    return {
        "part": np.concatenate([np.full(cfg.num_face, PART_FACE), np.full(cfg.num_head, PART_STATIC),
                                np.full(cfg.num_torso, PART_TORSO)]).astype(np.int64),
        "face_id": np.concatenate([face_id, np.full(n_unbound, -1)]).astype(np.int64),
        "bary": np.concatenate([bary, np.zeros((n_unbound, 3))]).astype(np.float32),
        "shell": np.concatenate([np.zeros((cfg.num_face, 3)), head, torso]).astype(np.float32),
        "spacing": np.array([math.sqrt(area.sum() / cfg.num_face),
                             math.sqrt(4 * math.pi * np.mean(SHELL_RADII) ** 2 / (cfg.num_head * 1.3)),
                             math.sqrt(0.4 * 0.2 / cfg.num_torso)], np.float32),
    }


def project_points(points, viewmat, K):
    """points [B, N, 3] head frame, viewmat [B, 4, 4], K [B, 3, 3] -> pixels [B, N, 2] and depth [B, N]."""
    pc = points @ viewmat[:, :3, :3].transpose(1, 2) + viewmat[:, None, :3, 3]
    z = pc[..., 2].clamp(min=1e-3)
    uv = torch.stack([K[:, None, 0, 0] * pc[..., 0] / z + K[:, None, 0, 2],
                      K[:, None, 1, 1] * pc[..., 1] / z + K[:, None, 1, 2]], -1)
    return uv, z


def sample_image(img, uv):
    """img [B, C, H, W], uv [B, N, 2] pixels (centres at +0.5) -> [B, N, C] bilinear, border-clamped."""
    h, w = img.shape[-2:]
    grid = torch.stack([2 * uv[..., 0] / w - 1, 2 * uv[..., 1] / h - 1], -1)[:, :, None]  # [B, N, 1, 2]
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)[..., 0].transpose(1, 2)


def head_surface(template):
    """template [B, V, 3] -> (origin [B, 3], scale [B]): the canonical head surface and torso are mapped
    onto a photo's as origin + scale * point. Scale = the face's width between the cheek landmarks over
    SHELL_FACE_WIDTH_M; origin = the midpoint of the cheeks (the canonical origin's definition). Templates
    of another topology (tests) keep the canonical surface."""
    if template.shape[1] < lmk.NUM_MESH:
        return torch.zeros_like(template[:, 0]), torch.ones_like(template[:, 0, 0])
    r, l = template[:, lmk.CHEEK_R], template[:, lmk.CHEEK_L]
    return 0.5 * (r + l), (l - r).norm(dim=-1) / SHELL_FACE_WIDTH_M


def anchor_normals(anchors, template, faces, face_id, part, origin, scale):
    """Outward unit normals [B, N, 3] at the anchors: triangle normals (turned to face -z, the camera side
    of the face) for bound anchors, the ellipsoid's normal on the head surface, -z on the torso sheet."""
    fid = face_id.clamp(min=0)
    tri = template[:, faces[fid]]  # [B, N, 3, 3]
    tn = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    tn = torch.where(tn[..., 2:3] > 0, -tn, tn)
    centre = origin[:, None] + scale[:, None, None] * torch.tensor(SHELL_CENTRE, device=anchors.device)
    radii = scale[:, None, None] * torch.tensor(SHELL_RADII, device=anchors.device)
    en = (anchors - centre) / radii ** 2  # gradient of the ellipsoid's implicit function
    torso = torch.tensor([0.0, 0.0, -1.0], device=anchors.device).expand_as(anchors)
    n = torch.where((face_id >= 0)[None, :, None], tn, torch.where((part == PART_TORSO)[None, :, None], torso, en))
    return F.normalize(n, dim=-1, eps=1e-12)


class GaussianGenerator(nn.Module):
    """Backbone tokens + the source crop + its template mesh and camera -> per-Gaussian raw parameters."""

    def __init__(self, cfg: GeneratorConfig, backbone_dim: int, ref_vertices: np.ndarray, faces: np.ndarray):
        super().__init__()
        self.cfg = cfg
        a = sample_anchors(cfg, np.asarray(ref_vertices, np.float64), np.asarray(faces, np.int64))
        self.register_buffer("faces", torch.as_tensor(np.asarray(faces, np.int64)))  # [F, 3]
        self.register_buffer("part", torch.as_tensor(a["part"]))  # [N]
        self.register_buffer("face_id", torch.as_tensor(a["face_id"]))  # [N]
        self.register_buffer("bary", torch.as_tensor(a["bary"]))  # [N, 3]
        self.register_buffer("shell", torch.as_tensor(a["shell"]))  # [N, 3]
        sp = torch.as_tensor(a["spacing"])
        base = torch.cat([cfg.scale_fill * sp[0].expand(cfg.num_face), cfg.surface_fill * sp[1].expand(cfg.num_head),
                          cfg.surface_fill * sp[2].expand(cfg.num_torso)])
        self.register_buffer("base_log_scale", torch.log(base))  # [N]
        n = cfg.num_gaussians
        if cfg.decoder_upsample not in (2, 4):
            raise ValueError(f"decoder_upsample must be 2 or 4, got {cfg.decoder_upsample}")
        c = cfg.feat_dim
        layers = [nn.Conv2d(backbone_dim, c, 1), nn.GELU()]
        for _ in range(cfg.decoder_upsample // 2):  # each: x2 bilinear, 3x3 conv
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(c, c, 3, padding=1), nn.GELU()]
        self.neck = nn.Sequential(*layers[:-1])  # patch tokens -> [B, C, k g, k g]
        self.global_code = nn.Linear(backbone_dim, cfg.global_dim)
        self.anchor_code = nn.Parameter(0.1 * torch.randn(n, cfg.anchor_dim))
        self.part_code = nn.Embedding(4, cfg.anchor_dim)
        d_in = cfg.feat_dim + 3 + 1 + cfg.anchor_dim + cfg.global_dim
        self.mlp = nn.Sequential(nn.Linear(d_in, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, 15))  # offset 3, colour 3, log-scale 3, opacity 1, quat 4, vis 1
        # Unseen colour: from the anchor's code and the photo's global code only (never from its pixels).
        self.inferred = nn.Sequential(nn.Linear(cfg.anchor_dim + cfg.global_dim, cfg.hidden), nn.GELU(),
                                      nn.Linear(cfg.hidden, 3))
        with torch.no_grad():
            self.mlp[-1].weight.mul_(0.01)
            self.mlp[-1].bias.zero_()
            self.mlp[-1].bias[9] = 2.0  # start fairly opaque
            self.mlp[-1].bias[10] = 1.0  # identity rotation
            self.inferred[-1].weight.mul_(0.01)
            self.inferred[-1].bias.zero_()  # mid grey until trained

    def anchor_positions(self, template, origin=None, scale=None):
        """template [B, V, 3] -> anchor points [B, N, 3] (face anchors on the template, the others on the
        photo's head surface / torso sheet: origin [B, 3] + scale [B] x canonical point, `head_surface`)."""
        if origin is None:
            origin, scale = head_surface(template)
        fid = self.face_id.clamp(min=0)
        tri = template[:, self.faces[fid]]  # [B, N, 3, 3]
        on_mesh = (self.bary[None, :, :, None] * tri).sum(2)
        bound = (self.face_id >= 0)[None, :, None]
        return torch.where(bound, on_mesh, origin[:, None] + scale[:, None, None] * self.shell[None])

    def forward(self, tokens: dict, image, template, viewmat, K) -> dict:
        """tokens: the backbone output; image [B, 3, H, W] the source crop in [0, 1] (any resolution: the
        colour prior is sampled from it); template [B, V, 3]; viewmat [B, 4, 4] head -> source camera;
        K [B, 3, 3] for `image`'s pixels. Returns raw parameters: means [B, N, 3], log_scales [B, N, 3],
        quats [B, N, 4], logit_opacities [B, N], rgb [B, N, 3], and the global code [B, global_dim]."""
        cfg = self.cfg
        fmap = self.neck(tokens["patches"].permute(0, 3, 1, 2))  # [B, C, k g, k g]
        g = self.global_code(tokens["cls"])  # [B, G]
        origin, scale = head_surface(template)
        anchors = self.anchor_positions(template, origin, scale)  # [B, N, 3]
        normals = anchor_normals(anchors, template, self.faces, self.face_id, self.part, origin, scale)
        v_geo = self.geometric_visibility(anchors, normals, viewmat)[..., None]  # [B, N, 1]
        uv, _ = project_points(anchors, viewmat, K)  # [B, N, 2] in `image` pixels
        h, w = image.shape[-2:]
        uv_f = uv * torch.tensor([fmap.shape[-1] / w, fmap.shape[-2] / h], device=uv.device)
        feat = v_geo * sample_image(fmap, uv_f)  # [B, N, C]: the photo's evidence only where it is seen
        rgb0 = sample_image(image, uv).clamp(0.02, 0.98)  # [B, N, 3] colour where the anchor projects
        b, n = anchors.shape[:2]
        code = (self.anchor_code + self.part_code(self.part))[None].expand(b, -1, -1)
        gn = g[:, None].expand(-1, n, -1)
        out = self.mlp(torch.cat([feat, v_geo * rgb0, v_geo, code, gn], -1))  # [B, N, 15]
        limit = torch.where(self.part == PART_FACE, cfg.max_offset_face, cfg.max_offset_shell)[None, :, None]
        means = anchors + limit * torch.tanh(out[..., 0:3])
        vis = torch.sigmoid(torch.logit(v_geo.clamp(1e-4, 1 - 1e-4)) + out[..., 14:15])  # [B, N, 1]
        seen = torch.sigmoid(torch.logit(rgb0) + out[..., 3:6])
        unseen = torch.sigmoid(self.inferred(torch.cat([code, gn], -1)))
        rgb = vis * seen + (1 - vis) * unseen
        log_scales = self.base_log_scale[None, :, None] + out[..., 6:9]
        return {"means": means, "rgb": rgb, "log_scales": log_scales.clamp(-12, 0),
                "logit_opacities": out[..., 9], "quats": F.normalize(out[..., 10:14], dim=-1), "global": g,
                "visibility": vis[..., 0], "normals": normals}

    def geometric_visibility(self, anchors, normals, viewmat):
        """[B, N] in [0, 1]: a smooth step of n . (unit direction from the anchor to the source camera), 0 when
        the surface faces away, 1 when it faces the camera by more than `visibility_softness`."""
        r, t = viewmat[:, :3, :3], viewmat[:, :3, 3]
        cam = -(r.transpose(1, 2) @ t[..., None])[..., 0]  # [B, 3] camera centre in the head frame
        facing = (normals * F.normalize(cam[:, None] - anchors, dim=-1)).sum(-1)
        x = (facing / self.cfg.visibility_softness).clamp(0, 1)
        return x * x * (3 - 2 * x)
