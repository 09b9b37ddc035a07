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
- torso (PART_TORSO): a curved sheet below the head for the neck and shoulders, scaled the same way;
- eyeballs (PART_EYE, the living-face part of core/reconstruct/eyeballs.py): a cap of points on each
  eyeball sphere about eyes.eyeball_centres of the photo's template (its own rest gaze), so the driver turns
  them with the gaze as it turns mesh_fit's;
- mouth interior (PART_MOUTH, core/reconstruct/mouth.py's `mouth_interior`: teeth rows, gums, cavity,
  tongue) built once on the reference template, each point attached to its nearest inner-lip vertex, so it
  opens with the photo's lips; the lower jaw's points carry mouth.py's jaw binding (turn with the jaw).
Each anchor is projected into the source crop. A convolutional decoder turns the backbone's patch tokens
into a feature map at 4x the patch grid (64 x 64 at 224 px input); the Gaussian's attributes come from an
MLP shared by all Gaussians, fed with that map and the photo's colour sampled at the anchor, a learned
per-anchor code and the image's global (CLS) code.

What the photo cannot show is inferred, not copied: each anchor has a visibility in the source view,
v = sigmoid(logit(v_geo) + learned correction), where v_geo is a smooth step of how much its surface
normal faces the source camera (0 when seen edge-on: mesh_fit's rule, completion.SEEN_COS), times two
occlusion gates: a head-surface or torso anchor that projects onto the face template and lies behind it
is hidden by the face (0), and an eyeball / mouth-interior anchor is seen only through the template's eye /
mouth opening (the projected hole loop). The photo's
evidence (sampled features and colour) reaches a Gaussian only through v_geo, and its colour is
v * (photo colour, corrected) + (1 - v) * an inferred colour made from the anchor's code and the global
code alone, around a prior (mid grey; iris/pupil/sclera about the rest gaze on the eyeballs; mouth.py's
teeth, gum, cavity and tongue colours in the mouth). A Gaussian facing away from the camera or hidden
behind the face therefore never takes the colour of the pixel it projects to: seen from behind or the
side, the avatar shows no ghost of the face. The head surface's inferred colour is darker further back
(`back_shade`) as seen from the side, and unshaded as seen from the photo's direction (`view_outline`, `VIEW_LOBE`:
`rgb` is the colour at right angles to the source camera's line of sight, `rgb_source` along it; the exported avatar
carries the difference as SH bands 1-2, `rar.view_sh`). The head frame and metres are those of core/avatar.py; outputs
are raw parameters (log-scales, logit opacities, wxyz quats, rgb in [0, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.path import Path  # at import, not lazily: a first import from two threads at once fails (core/deform.py)

from gaussian_head_ros.core import eyes
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_EYE, PART_FACE, PART_MOUTH, PART_STATIC, PART_TORSO
from gaussian_head_ros.core.deform import smoothstep


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
    visibility_softness: float = 0.15  # width of the smooth step of n . (direction to camera) giving v_geo, ending
    # at completion.SEEN_COS: 0 below 0.15 (81 deg off the line of sight), 1 above 0.3 (73 deg). Was a step from 0
    # to 0.05: the face's and the head surface's sides, which the photo sees nearly edge-on, took the silhouette's
    # pixels and showed them stretched over the side of the head, a second face from +-90 deg (untrained 300m
    # generator: faces in 36 of 162 views about +-90 deg, 16 now; front PSNR -0.5 dB; docs/TRAINING.md section 9)
    scale_fill: float = 0.8  # initial Gaussian size as a fraction of the mean anchor spacing
    surface_fill: float = 1.2  # the same for the head surface and torso (closed from behind before any training)
    back_fill: float = 1.5  # the same for the head surface's back half (canonical normal pointing away from the face):
    # at 1.2, tiny models trained 30 steps made those Gaussians ~8 % smaller and the dark eyeballs and mouth showed
    # through the back of the head as specks MediaPipe read as a face (obama_official, trump_official: 2 of 27 views
    # behind in 3 of 3 seeds; 0 at 1.5, side and front unchanged; docs/TRAINING.md section 9)
    torso_min_scale: float = 1.0  # torso (and neck) Gaussians may grow but never shrink below this fraction of their
    # starting size (surface_fill x spacing: what closes the sheet). The log-scale correction comes from the MLP shared
    # by every Gaussian; training on frontal views shrank them all with the face's (tiny, 30 steps: torso 19.6 -> 13.9
    # mm) and opened 60-158 px holes in the neck and shoulders seen from the side. On the head surface too the floor
    # closed them but blurred the outline (side faces 69 -> 96 of 162); on the torso alone: holes 158 -> 0 px, side
    # faces 69 -> 76, front PSNR unchanged (docs/TRAINING.md section 9)
    back_shade: float = 0.8  # the head surface's unseen colour darkens by up to this fraction with depth: smoothly from
    back_shade_from_m: float = -0.06  # this far behind the cheek line (negative: in front of it; canonical metres, the
    back_shade_depth_m: float = 0.10  # face scales them) to this much further back (completion.SideLook.shaded, the
    # rule mesh_fit darkens its hidden sides with: a head turning away from a frontal light). One flat hair colour all
    # round made the head an even oval that MediaPipe read as a face with the profile as its near edge (session-5
    # tiny seed 0: 76 of 162 views about +-90 deg; 35 with this; 0.65 from the cheek line: 69; front unchanged:
    # the photo's seen colours are not shaded; docs/TRAINING.md section 9). 0: one flat colour
    view_outline: float = 1.0  # the head surface's colour depends on the view (SH bands 1-2, `VIEW_LOBE`): seen
    # from the photo's direction it is the unshaded colour (back_shade 0), seen at right angles to it the shaded one.
    # The Gaussians that draw the head's outline from the front are the ones that fill the side view (the ear's place):
    # with one colour for every view, a light outline (better from the front) was a light band behind the profile
    # from the side, read as a face, and the shading that stopped that left a dark ring round the hair from the front
    # (docs/TRAINING.md section 9). 0: one colour from every view (the shaded one)
    view_outline_from_cos: float = -0.45  # the view dependence is nowhere where the surface's normal . (direction to
    view_outline_full_cos: float = -0.15  # the source camera) is below the first (the back half: seen from behind it
    # would show the front colour), full from the second on (the front half and the outline the photo sees edge-on)
    view_seen_cos: float = 0.6  # the head surface the photo sees at a grazing angle (normal . direction to the source
    # camera from completion.SEEN_COS to this) shows the photo's colour from the photo's direction, its inferred
    # colour seen from the side (smoothly: all of it at SEEN_COS, none from here on). The photo's colour of the temple
    # and hair beside the cheek made the lit band MediaPipe read as a face at +-80 deg: three 8-step models 12 / 13 /
    # 14 -> 4 / 6 / 11 of 162 views, front unchanged (docs/TRAINING.md section 9). 0: off
    behind_face_m: float = 0.006  # head-surface points less than this behind the face template are left out
    under_face_m: float = 0.03  # head-surface points hidden less deep than this behind the face start skin-coloured
    eye_spacing_m: float = 0.0006  # Gaussian spacing on the eyeball caps (0: no eyeballs)
    mouth_spacing_m: float = 0.001  # teeth spacing of the mouth interior (cavity 2.2x; 0: no mouth interior)
    max_offset_inner: float = 0.001  # metres an eyeball / mouth-interior Gaussian may move off its anchor
    seed: int = 0  # anchor sampling


# The canonical head surface and torso sheet (head frame: x right, y down, z into the head, metres; the
# origin is between the cheeks at cheek level, the outer eye corners 9 cm apart), for a face
# SHELL_FACE_WIDTH_M wide between the cheek landmarks; each photo's surface is scaled to its own face.
SHELL_CENTRE = (0.0, -0.025, 0.035)
SHELL_RADII = (0.085, 0.115, 0.11)
SHELL_FACE_WIDTH_M = 0.14
TORSO_X = (-0.2, 0.2)
TORSO_Y = (0.1, 0.3)
TORSO_Z = 0.06
NECK_SHARE = 0.25  # of the torso anchors
NECK_RADIUS_M = 0.055
NECK_Y = (0.04, 0.16)
NECK_Z = 0.045
IRIS_RADIUS_M = 0.0059  # adult iris: ~11.8 mm across (horizontal visible iris diameter)
PUPIL_RATIO = 0.4  # pupil radius / iris radius (eyeballs.EyeballConfig.pupil_ratio)
PUPIL_RGB = (0.05, 0.04, 0.04)
INIT_OPACITY_LOGIT = 2.0  # logit opacity every Gaussian starts from (0.88)
HIDDEN_LOGIT = -12.0  # logit opacity of head-surface Gaussians that would cover the face (opacity 6e-6)
# half-angle of the learned eyeball cap about the forward direction (mesh_fit's own cap, eyeballs.EyeballConfig.cap_deg,
# was this until session 64; it now keeps what turns bring into view, eyeballs.seen_in_turns)
EYE_CAP_DEG = 75.0
# Regions of unbound anchors whose unseen colour has its own prior (`GaussianGenerator.unseen_prior`):
REGION_CROWN = 1  # head-surface points above HAIR_Y_M (canonical, above the forehead landmark): where the photo
HAIR_Y_M = -0.065  # shows the hair colour (mesh_fit takes it from the rim above the forehead likewise)
REGION_NECK = 2  # the neck cylinder of the torso: skin, not clothes
VIEW_LOBE = (1 / 3, 0.0, 2 / 3)  # GeneratorConfig.view_outline: how the head surface's colour goes from the side colour
# (seen at right angles to the source camera's line of sight) to the front colour (seen along it), as Legendre weights
# of t = cos(view, line of sight) (`avatar.legendre`): t^2, 0 at right angles and 1 along it from in front or behind
# (SH degree 2). A linear band (degree 1, t) lit the side views 0.17-0.3 of the way (the views at +-80 deg and turned
# photos at +-90: 40 vs 41 of 486 views with a face on three 8-step models, 3 at +-90 where there were none) and
# darkened the outline seen from behind by as much


def _fibonacci_sphere(n: int) -> np.ndarray:  # [n, 3] unit vectors
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + 5 ** 0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], 1)


def _canonical_surface_placement(v: np.ndarray) -> tuple[np.ndarray, float]:
    """numpy twin of `head_surface` for one template [V, 3] -> (origin [3], scale)."""
    if len(v) < lmk.NUM_MESH:
        return np.zeros(3), 1.0
    r, l = v[lmk.CHEEK_R], v[lmk.CHEEK_L]
    return 0.5 * (r + l), float(np.linalg.norm(l - r)) / SHELL_FACE_WIDTH_M


def _behind_the_face(points: np.ndarray, v: np.ndarray, margin_m: float) -> np.ndarray:
    """[M] bool: points [M, 3] that lie outside the face template's footprint (x, y), or deeper (z) than its
    nearest vertex by margin_m: the head surface continues under the face's edge, never in front of it."""
    mesh = v[:lmk.NUM_MESH] if len(v) >= lmk.NUM_MESH else v
    k = np.empty(len(points), np.int64)
    near = np.empty(len(points))
    for i in range(0, len(points), 4096):  # [chunk, V] at a time
        d2 = ((points[i:i + 4096, None, :2] - mesh[None, :, :2]) ** 2).sum(-1)
        k[i:i + 4096] = d2.argmin(1)
        near[i:i + 4096] = np.sqrt(d2.min(1))
    spacing = np.sqrt(np.median(np.sort(((mesh[:, None, :2] - mesh[None, :, :2]) ** 2).sum(-1), 1)[:, 1]))
    return (near > 2.0 * spacing) | (points[:, 2] > mesh[k, 2] + margin_m)


def _mouth_anchors(cfg: GeneratorConfig, v: np.ndarray) -> dict | None:
    """mouth.py's interior (teeth, gums, cavity, tongue) on the reference template, each point as an offset
    from its nearest inner-lip vertex: offset [M, 3], vertex [M], jaw binding [M, 3], prior rgb [M, 3],
    sigma [M]. None without MediaPipe topology or with mouth_spacing_m = 0."""
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, mouth_interior
    from gaussian_head_ros.core.reconstruct.template import hole_loops

    if cfg.mouth_spacing_m <= 0 or not lmk.has_mediapipe_topology(len(v)):
        return None
    loop = hole_loops()["mouth"]
    # the anchors are the checkpoint's (`anchor_code` [N, anchor_dim]): the mouth's back wall (MouthConfig.back_wall)
    # would change them, so a learned avatar's cavity keeps its rows (they fan apart at a wide opening: left)
    mcfg = MouthConfig(teeth_spacing_m=cfg.mouth_spacing_m, cavity_spacing_m=2.2 * cfg.mouth_spacing_m,
                       back_wall=False, teeth_disc_aspect=1.0)  # nor their teeth's taller discs (session 55)
    b = mouth_interior(v, loop, 1.0, mcfg)
    b = b.take(_behind_the_face(b.means, v, 0.002))  # never in sight at rest: behind the face, or not at all
    k = loop[((b.means[:, None] - v[loop][None]) ** 2).sum(-1).argmin(1)]
    return {"offset": b.means - v[k], "vertex": k, "bary": b.bary, "rgb": b.colors, "sigma": b.scales[:, :2].mean(1)}


def sample_anchors(cfg: GeneratorConfig, ref_vertices: np.ndarray, faces: np.ndarray) -> dict[str, np.ndarray]:
    """Fixed anchors: region [N] (REGION_CROWN / REGION_NECK, else 0), part [N], face_id [N] (-1 unbound), bary
    [N, 3] (the jaw binding on mouth rows), shell [N, 3] (canonical head/torso point; eyeball: unit direction; mouth:
    offset from its vertex), vertex [N] (mouth: the inner-lip vertex it hangs on, else -1), prior [N, 3] rgb (mouth
    colours, else 0.5), sigma [N] initial Gaussian size in metres, normal [N, 3] canonical outward normal (unit)."""
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
    # Head surface: directions whose point on the reference photo's surface is not in front of its face
    # (the face part covers that) but continues under the face's edge (no seam from the side); stored on the
    # canonical surface; `head_surface` moves them onto each photo's.
    dirs = _fibonacci_sphere(cfg.num_head * 4)
    origin, scale = _canonical_surface_placement(ref_vertices)
    on_ref = origin + scale * (np.asarray(SHELL_CENTRE) + dirs * np.asarray(SHELL_RADII))
    keep = _behind_the_face(on_ref, ref_vertices, cfg.behind_face_m) | (dirs[:, 1] < -0.55)
    dirs = dirs[keep][np.linspace(0, keep.sum() - 1, cfg.num_head).astype(np.int64)]
    head = np.asarray(SHELL_CENTRE) + dirs * np.asarray(SHELL_RADII)
    # Torso: a sheet curving away from the camera at the sides, and a neck (a cylinder from under the head
    # surface down into the sheet; without it a gap opens between chin and shoulders seen from the side).
    n_neck = int(round(NECK_SHARE * cfg.num_torso))
    n_sheet = cfg.num_torso - n_neck
    gx = rng.uniform(*TORSO_X, n_sheet)
    gy = rng.uniform(*TORSO_Y, n_sheet)
    ang = rng.uniform(0, 2 * math.pi, n_neck)
    neck = np.stack([NECK_RADIUS_M * np.cos(ang), rng.uniform(*NECK_Y, n_neck), NECK_Z + NECK_RADIUS_M * np.sin(ang)], 1)
    torso = np.concatenate([np.stack([gx, gy, TORSO_Z + 0.8 * gx ** 2 / TORSO_X[1]], 1), neck])
    spacing = [math.sqrt(area.sum() / cfg.num_face), math.sqrt(4 * math.pi * np.mean(SHELL_RADII) ** 2 / (cfg.num_head * 1.3)),
               math.sqrt(0.4 * 0.2 / cfg.num_torso)]
    part = [np.full(cfg.num_face, PART_FACE), np.full(cfg.num_head, PART_STATIC), np.full(cfg.num_torso, PART_TORSO)]
    shell = [np.zeros((cfg.num_face, 3)), head, torso]
    neck_n = np.stack([neck[:, 0], np.zeros(n_neck), neck[:, 2] - NECK_Z], 1)
    normal = [np.tile([0.0, 0.0, -1.0], (cfg.num_face, 1)),  # (face: the template's triangles, per photo)
              dirs / np.asarray(SHELL_RADII),  # the ellipsoid's gradient
              np.concatenate([np.tile([0.0, 0.0, -1.0], (n_sheet, 1)), neck_n])]
    sigma = [np.full(cfg.num_face, cfg.scale_fill * spacing[0]),
             np.where(dirs[:, 2] > 0, cfg.back_fill, cfg.surface_fill) * spacing[1],
             np.full(cfg.num_torso, cfg.surface_fill * spacing[2])]
    extra_bary, vertex, prior = [], [], []
    if cfg.eye_spacing_m > 0 and len(ref_vertices) >= lmk.NUM_LANDMARKS:
        from gaussian_head_ros.core.reconstruct.eyeballs import cap_points

        cap = cap_points(cfg.eye_spacing_m, eyes.EYEBALL_RADIUS_M, EYE_CAP_DEG)  # [M, 3] about -z
        for side in range(2):  # subject's right eye, then left; the rig tells them apart by x
            part.append(np.full(len(cap), PART_EYE))
            shell.append(cap)
            normal.append(cap)
            sigma.append(np.full(len(cap), 0.75 * cfg.eye_spacing_m))
            extra_bary.append(np.zeros((len(cap), 3)))
            vertex.append(np.full(len(cap), eyes.IRIS_CENTRES[side]))
            prior.append(np.full((len(cap), 3), 0.5))  # per photo (about its rest gaze): `eye_prior`
    mouth = _mouth_anchors(cfg, ref_vertices)
    if mouth is not None:
        part.append(np.full(len(mouth["vertex"]), PART_MOUTH))
        shell.append(mouth["offset"])
        normal.append(np.tile([0.0, 0.0, -1.0], (len(mouth["vertex"]), 1)))
        sigma.append(mouth["sigma"])
        extra_bary.append(mouth["bary"])
        vertex.append(mouth["vertex"])
        prior.append(mouth["rgb"])
    n_main = cfg.num_face + cfg.num_head + cfg.num_torso
    part = np.concatenate(part).astype(np.int64)
    shell = np.concatenate(shell).astype(np.float32)
    n_extra = len(part) - n_main
    return {
        "region": _regions(cfg, part, shell),
        "part": part,
        "face_id": np.concatenate([face_id, np.full(n_main - cfg.num_face + n_extra, -1)]).astype(np.int64),
        "bary": np.concatenate([bary, np.zeros((n_main - cfg.num_face, 3))] + extra_bary).astype(np.float32),
        "shell": shell,
        "vertex": np.concatenate([np.full(n_main, -1)] + vertex).astype(np.int64),
        "prior": np.concatenate([np.full((n_main, 3), 0.5)] + prior).astype(np.float32),
        "sigma": np.concatenate(sigma).astype(np.float32),
        "normal": (lambda n: n / np.linalg.norm(n, axis=1, keepdims=True))(np.concatenate(normal)).astype(np.float32),
    }


def _regions(cfg: GeneratorConfig, part: np.ndarray, shell: np.ndarray) -> np.ndarray:
    """[N] REGION_CROWN on head-surface anchors above HAIR_Y_M (canonical), REGION_NECK on the torso's neck
    anchors (the last NECK_SHARE of the torso block), 0 elsewhere; from the anchors' part [N] and shell [N, 3]."""
    region = np.zeros(len(part), np.int64)
    region[(part == PART_STATIC) & (shell[:, 1] < HAIR_Y_M)] = REGION_CROWN
    n_main = cfg.num_face + cfg.num_head + cfg.num_torso
    region[n_main - int(round(NECK_SHARE * cfg.num_torso)):n_main] = REGION_NECK
    return region


def anchors_from_state(cfg: GeneratorConfig, state: dict, prefix: str = "generator.") -> dict[str, np.ndarray]:
    """The anchors a checkpoint's generator was built with (its stored buffers), in `sample_anchors`' form: a
    model is rebuilt with these, not with anchors sampled by today's code, so a checkpoint still loads after
    the mouth interior or the eyeball caps it reuses (core/reconstruct/mouth.py, eyeballs.py) change their
    point count (a mouth change of 2026-11-30 made every earlier checkpoint fail: 3,572 vs 4,076 Gaussians)."""
    g = lambda k: state[prefix + k].detach().cpu().numpy()  # noqa: E731
    part, shell = g("part").astype(np.int64), g("shell").astype(np.float32)
    return {"region": _regions(cfg, part, shell), "part": part, "face_id": g("face_id").astype(np.int64),
            "bary": g("bary").astype(np.float32), "shell": shell, "vertex": g("vertex").astype(np.int64),
            "prior": g("prior_rgb").astype(np.float32), "sigma": np.exp(g("base_log_scale")).astype(np.float32),
            "normal": g("normal0").astype(np.float32)}


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


def anchor_normals(template, faces, face_id, normal0):
    """Outward unit normals [B, N, 3] at the anchors: triangle normals (turned to face -z, the camera side of
    the face) for bound anchors, the fixed canonical normal `normal0` [N, 3] elsewhere (head surface, torso,
    neck, eyeballs, mouth: each photo's surface is the canonical one scaled uniformly, which keeps normals)."""
    fid = face_id.clamp(min=0)
    tri = template[:, faces[fid]]  # [B, N, 3, 3]
    tn = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    tn = torch.where(tn[..., 2:3] > 0, -tn, tn)
    n = torch.where((face_id >= 0)[None, :, None], tn, normal0[None].expand_as(tn))
    return F.normalize(n, dim=-1, eps=1e-12)


def eye_geometry(template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One template [V, 3] (numpy) -> (eyeball centres [2, 3], rest gaze directions [2, 3]) as the driver
    computes them (core/deform.py build_rig: eyes.rest_gaze of the template)."""
    gaze = eyes.rest_gaze(template)
    return eyes.eyeball_centres(template, gaze), eyes.gaze_directions(gaze)


def eye_prior(dirs, rest_dir, side):
    """Iris / pupil / sclera colour [B, M, 3] of eyeball points with cap directions dirs [M, 3] about each eye's
    rest gaze direction rest_dir [B, 2, 3] (side [M] 0 right, 1 left): what the lids hide is painted as
    eyeballs.eyeball_completion paints it (default colours: the generator learns the rest)."""
    from gaussian_head_ros.core.reconstruct.eyeballs import EyeballConfig

    ec = EyeballConfig()
    cosang = (dirs[None] * rest_dir[:, side]).sum(-1).clamp(-1, 1)  # [B, M]
    t = torch.arccos(cosang) / math.asin(IRIS_RADIUS_M / eyes.EYEBALL_RADIUS_M)  # 1 at the limbus
    col = lambda c: torch.tensor(c, dtype=dirs.dtype, device=dirs.device)  # noqa: E731
    return torch.where((t < PUPIL_RATIO)[..., None], col(PUPIL_RGB),
                       torch.where((t < 1)[..., None], col(ec.iris_rgb), col(ec.sclera_rgb)))


def _inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """[M] bool: 2D points [M, 2] inside the closed polygon [P, 2]."""
    return Path(polygon).contains_points(points)


class GaussianGenerator(nn.Module):
    """Backbone tokens + the source crop + its template mesh and camera -> per-Gaussian raw parameters."""

    def __init__(self, cfg: GeneratorConfig, backbone_dim: int, ref_vertices: np.ndarray, faces: np.ndarray,
                 anchors: dict | None = None):
        """anchors: `sample_anchors`' dict (None: sampled now; a checkpoint's: `anchors_from_state`)."""
        super().__init__()
        self.cfg = cfg
        a = anchors if anchors is not None else sample_anchors(cfg, np.asarray(ref_vertices, np.float64),
                                                               np.asarray(faces, np.int64))
        self.register_buffer("faces", torch.as_tensor(np.asarray(faces, np.int64)))  # [F, 3]
        self.register_buffer("part", torch.as_tensor(a["part"]))  # [N]
        self.register_buffer("face_id", torch.as_tensor(a["face_id"]))  # [N]
        self.register_buffer("bary", torch.as_tensor(a["bary"]))  # [N, 3]
        self.register_buffer("shell", torch.as_tensor(a["shell"]))  # [N, 3]
        self.register_buffer("vertex", torch.as_tensor(a["vertex"]))  # [N]
        self.register_buffer("prior_rgb", torch.as_tensor(a["prior"]))  # [N, 3]
        self.register_buffer("normal0", torch.as_tensor(a["normal"]))  # [N, 3] canonical normals of unbound anchors
        self.register_buffer("base_log_scale", torch.log(torch.as_tensor(a["sigma"])))  # [N]
        self.register_buffer("region", torch.as_tensor(a["region"]), persistent=False)  # [N], from the anchors
        n = len(a["part"])
        self.num_gaussians = n
        # The template's eye and mouth openings (vertex loops), where eyeballs and mouth interior are seen.
        # and its outline (the outer boundary loop), behind which the head surface is hidden.
        self.openings = self.outline = None
        if lmk.has_mediapipe_topology(len(ref_vertices)):
            from gaussian_head_ros.core.reconstruct.template import boundary_loops, hole_loops

            self.openings = hole_loops()
            self.outline = np.asarray(max(boundary_loops(np.asarray(faces)), key=len))
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
        self.part_code = nn.Embedding(PART_EYE + 1, cfg.anchor_dim)
        d_in = cfg.feat_dim + 3 + 1 + cfg.anchor_dim + cfg.global_dim
        self.mlp = nn.Sequential(nn.Linear(d_in, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, 15))  # offset 3, colour 3, log-scale 3, opacity 1, quat 4, vis 1
        # Unseen colour: from the anchor's code and the photo's global code only (never from its pixels),
        # a correction of the part's prior colour.
        self.inferred = nn.Sequential(nn.Linear(cfg.anchor_dim + cfg.global_dim, cfg.hidden), nn.GELU(),
                                      nn.Linear(cfg.hidden, 3))
        with torch.no_grad():
            self.mlp[-1].weight.mul_(0.01)
            self.mlp[-1].bias.zero_()
            self.mlp[-1].bias[9] = INIT_OPACITY_LOGIT  # start fairly opaque
            self.mlp[-1].bias[10] = 1.0  # identity rotation
            self.inferred[-1].weight.mul_(0.01)
            self.inferred[-1].bias.zero_()  # the prior colour until trained

    def anchor_positions(self, template, origin=None, scale=None, eye_centres=None):
        """template [B, V, 3] -> anchor points [B, N, 3]: face anchors on the template, head/torso anchors on
        the photo's head surface / torso sheet (origin [B, 3] + scale [B] x canonical point, `head_surface`),
        eyeball anchors on the spheres about eye_centres [B, 2, 3] (`eye_geometry`), mouth anchors at their
        inner-lip vertex + the fixed offset."""
        if origin is None:
            origin, scale = head_surface(template)
        fid = self.face_id.clamp(min=0)
        tri = template[:, self.faces[fid]]  # [B, N, 3, 3]
        on_mesh = (self.bary[None, :, :, None] * tri).sum(2)
        bound = (self.face_id >= 0)[None, :, None]
        pos = torch.where(bound, on_mesh, origin[:, None] + scale[:, None, None] * self.shell[None])
        mouth = (self.part == PART_MOUTH)[None, :, None]
        if bool(mouth.any()):
            pos = torch.where(mouth, template[:, self.vertex.clamp(min=0)] + self.shell[None], pos)
        eye = self.part == PART_EYE
        if bool(eye.any()):
            if eye_centres is None:
                eye_centres = self.eye_geometry(template)[0]
            side = self._eye_side()
            pos = torch.where(eye[None, :, None], eye_centres[:, side] + eyes.EYEBALL_RADIUS_M * self.shell[None], pos)
        return pos

    def _eye_side(self):  # [N] 0 right eye / 1 left eye (meaningful on PART_EYE rows)
        return (self.vertex == eyes.IRIS_CENTRES[1]).long()

    def eye_geometry(self, template):
        """template [B, V, 3] -> (eyeball centres [B, 2, 3], rest gaze directions [B, 2, 3]), see `eye_geometry`."""
        geo = [eye_geometry(t.detach().cpu().double().numpy()) for t in template]
        f = lambda i: torch.as_tensor(np.stack([g[i] for g in geo]), dtype=template.dtype, device=template.device)  # noqa: E731
        return f(0), f(1)

    def opening_gate(self, template, viewmat, K, uv):
        """[B, N] in {0, 1}: 1 where an eyeball anchor projects inside its eye's opening, or a mouth anchor
        inside the mouth opening, in the source view (uv [B, N, 2] its pixels); 1 on every other part."""
        gate = torch.ones(uv.shape[:2], dtype=uv.dtype, device=uv.device)
        if self.openings is None:
            return gate
        t_uv, _ = project_points(template, viewmat, K)  # [B, V, 2]
        side = self._eye_side().cpu().numpy()
        part = self.part.cpu().numpy()
        groups = [((part == PART_EYE) & (side == 0), "right_eye"), ((part == PART_EYE) & (side == 1), "left_eye"),
                  (part == PART_MOUTH, "mouth")]
        uv_np, t_np = uv.detach().cpu().numpy(), t_uv.detach().cpu().numpy()
        out = np.ones(uv.shape[:2], np.float32)
        for sel, name in groups:
            if sel.any():
                for b in range(len(uv_np)):
                    out[b, sel] = _inside(uv_np[b, sel], t_np[b, self.openings[name]])
        return gate * torch.as_tensor(out, dtype=uv.dtype, device=uv.device)

    def face_relation(self, anchors, template, viewmat, K, uv):
        """Head-surface / torso anchors against the face template in the source view -> (hidden [B, N] bool:
        inside the face's outline (its outer boundary loop) and deeper than the nearest projected template
        vertex by `behind_face_m`: the face hides it; under [B, N] bool: hidden and less than `under_face_m`
        deep (the surface under the face's edge, seen from the side next to the cheeks); in_front [B, N]
        bool: inside the outline and nearer than that vertex by `behind_face_m`: it would cover the face, so
        it is made transparent). All False on the other parts and without MediaPipe topology."""
        unbound = ((self.part == PART_STATIC) | (self.part == PART_TORSO)).nonzero()[:, 0]
        hidden = torch.zeros(anchors.shape[:2], dtype=torch.bool, device=anchors.device)
        in_front, under = hidden.clone(), hidden.clone()
        if not len(unbound) or self.outline is None:
            return hidden, under, in_front
        with torch.no_grad():
            t_uv, t_z = project_points(template[:, :lmk.NUM_MESH], viewmat, K)  # [B, V, 2], [B, V]
            a_uv = uv[:, unbound]
            _, a_z = project_points(anchors[:, unbound], viewmat, K)
            depth = a_z - t_z.gather(1, torch.cdist(a_uv, t_uv).argmin(-1))  # [B, M] behind the nearest vertex
            t_np, a_np = t_uv.cpu().numpy(), a_uv.cpu().numpy()
            inside = torch.as_tensor(np.stack([_inside(a_np[i], t_np[i, self.outline]) for i in range(len(a_np))]),
                                     device=anchors.device)
            rows = torch.arange(len(hidden), device=hidden.device)[:, None]
            hidden = hidden.index_put((rows, unbound[None]), inside & (depth > self.cfg.behind_face_m))
            in_front = in_front.index_put((rows, unbound[None]), inside & (depth < -self.cfg.behind_face_m))
            under = under.index_put((rows, unbound[None]), inside & (depth > self.cfg.behind_face_m)
                                    & (depth < self.cfg.under_face_m))
        return hidden, under, in_front

    def unseen_prior(self, rgb0, v_geo, under, rest_dir, scale=None, shaded: bool = True):
        """[B, N, 3] the colour an anchor the photo does not show starts from (before the learned correction):
        on the face, on head-surface points hidden just under its edge and on the neck, the visibility-weighted
        mean colour of the face anchors the photo shows (its skin); elsewhere on the head surface the hair's: that of the
        crown points (REGION_CROWN) the photo shows on the person (v_geo carries the person mask, so the
        background does not count), or of all head-surface points it shows when the crown is not seen; on the
        torso that of the torso points it shows (clothes). One colour per photo and region, so no pixel pattern (no ghost of
        the face) reaches unseen Gaussians; the head surface's is then darkened with its depth behind the cheek line
        (canonical z less back_shade_from_m, times scale [B], `head_surface`'s; None = 1) by `back_shade` (completion.SideLook.shaded:
        a head turning away from a frontal light; `shaded` False: not darkened). Mouth: mouth.py's colours; eyeballs:
        `eye_prior`."""
        def mean_of(sel, prior=None):  # [B, 3] visibility-weighted mean photo colour in sel, `prior` (grey) without any
            w = v_geo[:, sel]
            base = torch.full_like(rgb0[:, 0], 0.5) if prior is None else prior
            return ((w * rgb0[:, sel]).sum(1) + base) / (w.sum(1) + 1.0)

        b = rgb0.shape[0]
        prior = self.prior_rgb[None].expand(b, -1, -1).clone()
        face = self.part == PART_FACE
        skin = mean_of(face)
        head = self.part == PART_STATIC
        if bool(head.any()):
            crown = head & (self.region == REGION_CROWN)
            hair = mean_of(crown, mean_of(head)) if bool(crown.any()) else mean_of(head)
            prior[:, head] = hair[:, None]
        torso = self.part == PART_TORSO
        if bool(torso.any()):
            prior[:, torso] = mean_of(torso & (self.region != REGION_NECK))[:, None]
        prior[:, face] = skin[:, None]
        prior = torch.where((under | (self.region == REGION_NECK)[None])[..., None], skin[:, None].expand_as(prior), prior)
        if shaded and self.cfg.back_shade > 0 and bool(head.any()):
            from gaussian_head_ros.core.reconstruct.completion import SideLook

            look = SideLook(shade=self.cfg.back_shade, shade_depth_m=self.cfg.back_shade_depth_m)
            s = torch.ones(b, dtype=rgb0.dtype, device=rgb0.device) if scale is None else scale
            behind = (self.shell[head, 2] - self.cfg.back_shade_from_m)[None] * s[:, None]  # [B, M] metres
            prior[:, head] = look.shaded(prior[:, head], behind)
        eye = self.part == PART_EYE
        if rest_dir is not None and bool(eye.any()):
            prior[:, eye] = eye_prior(self.shell[eye], rest_dir, self._eye_side()[eye])
        return prior

    def forward(self, tokens: dict, image, template, viewmat, K, mask=None) -> dict:
        """tokens: the backbone output; image [B, 3, H, W] the source crop in [0, 1] (any resolution: the
        colour prior is sampled from it); template [B, V, 3]; viewmat [B, 4, 4] head -> source camera;
        K [B, 3, 3] for `image`'s pixels; mask [B, H', W'] the crop's person probability (MediaPipe selfie
        segmentation, any resolution; None: every pixel is the person). Returns raw parameters: means [B, N, 3],
        log_scales [B, N, 3], quats [B, N, 4], logit_opacities [B, N], rgb [B, N, 3], visibility [B, N], normals [B, N, 3], the
        global code [B, global_dim] and `departure` (the raw outputs that move a Gaussian away from what the
        untrained generator makes: offset [B, N, 3] in units of the part's limit, log_scale [B, N, 3] change,
        opacity_logit [B, N], colour [B, N, 3] logit correction of the unseen prior, visibility [B, N] logit
        correction; and hidden [B, N], not a departure: 1 on head-surface / torso Gaussians behind the face in
        the source view), read by the unseen-prior loss."""
        cfg = self.cfg
        fmap = self.neck(tokens["patches"].permute(0, 3, 1, 2))  # [B, C, k g, k g]
        g = self.global_code(tokens["cls"])  # [B, G]
        origin, scale = head_surface(template)
        eye = self.part == PART_EYE
        centres = rest_dir = None
        if bool(eye.any()):
            centres, rest_dir = self.eye_geometry(template)
        anchors = self.anchor_positions(template, origin, scale, centres)  # [B, N, 3]
        normals = anchor_normals(template, self.faces, self.face_id, self.normal0)
        uv, _ = project_points(anchors, viewmat, K)  # [B, N, 2] in `image` pixels
        hidden, under, in_front = self.face_relation(anchors, template, viewmat, K, uv)
        v_geo = (self.geometric_visibility(anchors, normals, viewmat) * self.opening_gate(template, viewmat, K, uv)
                 * (~hidden).to(uv.dtype) * self.person_gate(mask, uv, image.shape[-2:]))[..., None]  # [B, N, 1]
        h, w = image.shape[-2:]
        uv_f = uv * torch.tensor([fmap.shape[-1] / w, fmap.shape[-2] / h], device=uv.device)
        feat = v_geo * sample_image(fmap, uv_f)  # [B, N, C]: the photo's evidence only where it is seen
        rgb0 = sample_image(image, uv).clamp(0.02, 0.98)  # [B, N, 3] colour where the anchor projects
        b, n = anchors.shape[:2]
        code = (self.anchor_code + self.part_code(self.part))[None].expand(b, -1, -1)
        gn = g[:, None].expand(-1, n, -1)
        out = self.mlp(torch.cat([feat, v_geo * rgb0, v_geo, code, gn], -1))  # [B, N, 15]
        limit = torch.where(self.part == PART_FACE, cfg.max_offset_face,
                            torch.where((self.part == PART_EYE) | (self.part == PART_MOUTH), cfg.max_offset_inner,
                                        cfg.max_offset_shell))[None, :, None]
        means = anchors + limit * torch.tanh(out[..., 0:3])
        vis = torch.sigmoid(torch.logit(v_geo.clamp(1e-4, 1 - 1e-4)) + out[..., 14:15])  # [B, N, 1]
        seen = torch.sigmoid(torch.logit(rgb0) + out[..., 3:6])
        prior = self.unseen_prior(rgb0, v_geo, under, rest_dir, scale)
        inferred = self.inferred(torch.cat([code, gn], -1))  # [B, N, 3] logit correction of the prior colour
        unseen = torch.sigmoid(torch.logit(prior.clamp(0.02, 0.98)) + inferred)
        rgb = vis * seen + (1 - vis) * unseen
        rgb_source = rgb  # the colour seen from the source camera (GeneratorConfig.view_outline)
        if cfg.view_outline > 0 and cfg.back_shade > 0:
            head = (self.part == PART_STATIC)[None, :, None]
            lit = torch.sigmoid(torch.logit(self.unseen_prior(rgb0, v_geo, under, rest_dir, scale, shaded=False)
                                            .clamp(0.02, 0.98)) + inferred)
            facing = self.source_facing(anchors, normals, viewmat)  # [B, N]
            band = cfg.view_outline * head * smoothstep(cfg.view_outline_from_cos, cfg.view_outline_full_cos,
                                                        facing)[..., None]
            rgb_source = rgb + band * (1 - vis) * (lit - unseen)
            if cfg.view_seen_cos > 0:
                from gaussian_head_ros.core.reconstruct.completion import SEEN_COS

                keep = torch.where(head, smoothstep(SEEN_COS, cfg.view_seen_cos, facing)[..., None], torch.ones_like(vis))
                rgb = vis * keep * seen + (1 - vis * keep) * unseen
        d_scale = out[..., 6:9]
        if cfg.torso_min_scale > 0:  # the torso sheet stays closed (GeneratorConfig.torso_min_scale)
            torso = (self.part == PART_TORSO)[None, :, None]
            d_scale = torch.where(torso, d_scale.clamp(min=math.log(cfg.torso_min_scale)), d_scale)
        log_scales = self.base_log_scale[None, :, None] + d_scale
        # what the untrained generator starts from (the prior) and how far each Gaussian has moved away from it,
        # for the unseen-prior loss (core/train/losses.py unseen_prior_loss): zero offset, base size, opacity
        # logit INIT_OPACITY_LOGIT, no colour correction, no visibility correction
        departure = {"offset": torch.tanh(out[..., 0:3]), "log_scale": out[..., 6:9], "opacity_logit": out[..., 9],
                     "colour": inferred, "visibility": out[..., 14], "hidden": hidden.to(uv.dtype)}
        return {"means": means, "rgb": rgb, "rgb_source": rgb_source, "log_scales": log_scales.clamp(-12, 0),
                "logit_opacities": torch.where(in_front, HIDDEN_LOGIT, out[..., 9]),
                "quats": F.normalize(out[..., 10:14], dim=-1), "global": g,
                "visibility": vis[..., 0], "normals": normals, "departure": departure}

    def person_gate(self, mask, uv, image_hw):
        """[B, N] in [0, 1]: the person probability where a head-surface / torso anchor projects (uv [B, N, 2] in
        pixels of an image image_hw (H, W); mask [B, H', W'] or None = 1); 1 on the other parts. A head-surface
        point that projects onto the background is not seen by the photo: its colour is inferred (so the hair
        colour of the back and sides is the mean of the hair the photo shows, not of the wall behind it)."""
        if mask is None:
            return torch.ones(uv.shape[:2], dtype=uv.dtype, device=uv.device)
        h, w = image_hw
        scale = torch.tensor([mask.shape[-1] / w, mask.shape[-2] / h], dtype=uv.dtype, device=uv.device)
        p = sample_image(mask[:, None].to(uv.dtype), uv * scale)[..., 0].clamp(0, 1)  # [B, N]
        unbound = (self.part == PART_STATIC) | (self.part == PART_TORSO)
        return torch.where(unbound[None], p, torch.ones_like(p))

    def geometric_visibility(self, anchors, normals, viewmat):
        """[B, N] in [0, 1]: how well the source camera sees each anchor's surface, a smooth step of
        c = n . (unit direction from the anchor to the camera) from SEEN_COS - visibility_softness (0) to
        SEEN_COS (1): 0 when the surface faces away or is seen nearly edge-on (one pixel of the photo would be
        stretched over it; mesh_fit's completion rule, reconstruct/completion.SEEN_COS)."""
        from gaussian_head_ros.core.reconstruct.completion import SEEN_COS

        return smoothstep(SEEN_COS - self.cfg.visibility_softness, SEEN_COS, self.source_facing(anchors, normals, viewmat))

    @staticmethod
    def source_facing(anchors, normals, viewmat):
        """[B, N] c = n . (unit direction from the anchor to the source camera): anchors, normals [B, N, 3] head
        frame, viewmat [B, 4, 4] head -> camera. 1 facing the camera, 0 seen edge-on, -1 facing away."""
        r, t = viewmat[:, :3, :3], viewmat[:, :3, 3]
        cam = -(r.transpose(1, 2) @ t[..., None])[..., 0]  # [B, 3] camera centre in the head frame
        return (normals * F.normalize(cam[:, None] - anchors, dim=-1)).sum(-1)
