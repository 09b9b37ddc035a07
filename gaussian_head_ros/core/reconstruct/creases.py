"""The photo's expression creases: the shading its smile or frown folded into the skin, taken out of the colours.

The reconstructor removes the photo's mouth expression from the avatar's geometry (core.expression), but the
colours are the photo's: a grin's nasolabial folds and the dark creases at its old mouth corners, a frown's
folds beside the corners and its dimpled chin stay on the rest avatar's skin, where the mouth no longer is
(issue 11: obama_official's visible mouth held wide by them; lp_d8_man_glasses' grimace under every clip).

Which pixels hold expression shading (conditions multiplied; each a smooth step, so 0 leaves the photo
exactly as it is):
- where the expression was (`expression_region`): skin below the nose tip that the removal moved, or that lies
  within CreaseConfig.near_mm of skin that moved (a frown's dimpled chin between corners that moved and a chin
  that did not), near the lips (the folds beside the mouth, its corners, the chin; not the jaw's edge). Per
  template vertex, interpolated over the photo by the mesh's barycentrics. A relaxed photo moves nothing
  (lp_s9_monalisa, two_children_multiface: 0.06 / 0.14 mm) and is left untouched;
- on skin: not on the lips' red nor the mouth opening, nor within lip_margin_m of them (their rim is not a
  crease); the skin ring just outside the lips' outer contour counts (`crease_ring`: a grin's corner creases
  lie on it); not within outline_m of the face's outline (the jaw turning away is shaded, not creased);
- darker than the skin around it: the colour at the crease's scale (a masked blur, fine_m: pores and stubble
  left out of the measure) against the local skin tone (a masked blur of the skin pixels only, tone_m, taken a
  second time without the darker pixels, so a wide fold does not pull its own reference down).

The crease's colour at its own scale is then replaced by the local tone, by the blend: photo + blend x (tone -
crease-scale colour), so the finer texture rides on top unchanged. (A ratio, per channel or of the luminance,
multiplied the shadow's deeper saturation up with it: orange fringes along the folds.)

The avatar's rest colours are those of the photo without its creases; what they add to the refined photo layer
is kept as a wrinkle map (GaussianAvatar.wrinkle_rows / wrinkle_rgb), fully in at the photo's own expression
below the nose tip (wrinkle_expression) and faded with the share of it the operator's expression reaches
(core.drive.wrinkle_share): 0 at rest and under an expression away from the photo's, 1 for the photo's own, so
frame 0 still gives the photo back (without the map, driven with its own control obama_official's avatar gave
its photo back at 29.3 dB in the head region instead of 31.9; crease14, session 14).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.deform import smoothstep
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.reconstruct.surfaces import masked_blur


@dataclass
class CreaseConfig:
    """Which photo pixels count as expression creases and how far the rest face is lifted out of them
    (`crease_blend`), and what the wrinkle map keeps (distances in mm or head-frame metres as named)."""

    moved_mm: tuple[float, float] = (1.0, 3.0)  # skin the expression removal moved this far (mm): 0 .. full blend
    near_mm: float = 12.0  # ... or skin within this distance of it (rest, mm)
    lips_mm: tuple[float, float] = (25.0, 35.0)  # ... this far from the nearest lip vertex (rest, mm): full .. 0
    outline_m: float = 0.005  # nor this close to the face's outline (the jaw turning away is shaded, not creased)
    lip_margin_m: float = 0.0008  # no pixel this close to the lips or the mouth (their rim is not a crease)
    tone_m: float = 0.008  # the local skin tone: a masked Gaussian blur of this sigma (head-frame metres)
    fine_m: float = 0.0006  # the crease's own colour: blurred this much (pores and stubble left out of the measure)
    darker: tuple[float, float] = (0.06, 0.16)  # relative darkening against the tone: 0 .. full blend
    wrinkle_min: float = 1e-3  # the wrinkle map keeps the rows whose colour the creases change by more (rgb 0..1)
    # how far the rest colours go to the tone: half. The whole lift moved the reader's gaze_v on 9 probe pairs by
    # -0.52 (lp_d8 x lp_d0 0.95 -> 0.62, trump x lp_d18 0.74 -> 0.52: the crease-free rest faces read on nearly flat
    # series) for smile +0.32; half: gaze_v -0.08, smile +0.28 (smile15, session 15)
    lift: float = 0.5


def _crease_maps(photo: np.ndarray, skin: np.ndarray, mpp: float, cfg: CreaseConfig):
    """-> (darker [S, S] relative darkening of the crease-scale colour against the local tone, shift [S, S, 3]
    the local tone minus the crease-scale colour)."""
    tone = masked_blur(photo, skin, cfg.tone_m / mpp)
    fine = masked_blur(photo, skin, max(cfg.fine_m / mpp, 0.3))
    luma = LUMA.astype(np.float32)
    # the tone again without the darker pixels: a wide crease pulled the first blur down towards itself
    clean = skin & (fine @ luma >= (1.0 - cfg.darker[0]) * (tone @ luma))
    tone = masked_blur(photo, clean, cfg.tone_m / mpp)
    darker = 1.0 - (fine @ luma) / np.maximum(tone @ luma, 1e-4)
    return darker, (tone - fine).astype(np.float32)


@functools.lru_cache(maxsize=1)
def crease_ring() -> np.ndarray:
    """[F] bool over template_faces: the skin triangles just outside the lips' outer contour (a vertex on
    lmk.LIP_OUTER, none on the eyes, the brows or the lips' inner rows; lighting.skin_triangle_mask leaves them
    out as lip triangles). A grin's dark corner creases lie on them."""
    from gaussian_head_ros.core.reconstruct.lips import lip_band
    from gaussian_head_ros.core.reconstruct.template import template_faces

    faces = np.asarray(template_faces(), np.int64)
    inner_lips = sorted(set(lmk.LIPS) - set(lmk.LIP_OUTER))
    out = np.isin(faces, list(lmk.LIP_OUTER)).any(1) & ~np.isin(faces, inner_lips).any(1) & ~lip_band()
    out.setflags(write=False)
    return out


def expression_region(V: np.ndarray, V_rest: np.ndarray, cfg: CreaseConfig | None = None) -> np.ndarray:
    """V [N, 3] the template as the photo shows it, V_rest [N, 3] with its expression removed (head frame, m;
    N >= 478) -> [N] in [0, 1]: where that expression can have creased the skin: vertices below the nose tip
    (the mouth's expression; the brows' is above) that the removal moved (cfg.moved_mm), near the lips
    (cfg.lips_mm: the folds beside the mouth, its corners and the chin, not the jaw's edge). All 0 for a photo
    whose mouth is relaxed (nothing moved)."""
    cfg = cfg or CreaseConfig()
    V, V_rest = np.asarray(V, np.float64), np.asarray(V_rest, np.float64)
    moved = 1000.0 * np.linalg.norm(V - V_rest, axis=1)
    d = 1000.0 * np.linalg.norm(V_rest[:, None, :] - V_rest[None], axis=2)  # [N, N] mm
    # the most any skin within cfg.near_mm moved (a frown's dimpled chin lies between corners that moved and a
    # chin that did not)
    moved = np.max(np.where(d < cfg.near_mm, moved[None], 0.0), axis=1)
    d_lips = np.min(d[:, list(lmk.LIPS)], axis=1)
    w = smoothstep(*cfg.moved_mm, moved) * (1.0 - smoothstep(*cfg.lips_mm, d_lips))
    return np.where(V[:, 1] > V[lmk.NOSE_TIP, 1], w, 0.0)


def crease_blend(photo: np.ndarray, skin: np.ndarray, lips: np.ndarray, region: np.ndarray, mpp: float,
                 cfg: CreaseConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """photo [S, S, 3] in [0, 1]; skin [S, S] bool (face skin pixels: no lips, eyes, mouth or silhouette edge);
    lips [S, S] bool (the lips and the mouth opening: no pixel within cfg.lip_margin_m of them); region [S, S]
    in [0, 1] where the photo's expression can have creased the skin (expression_region over the face); mpp
    metres per pixel at the head's depth -> (blend [S, S] in [0, 1], shift [S, S, 3] the local tone
    minus the crease-scale colour). The blend is 0 off `skin`, outside the region, where the skin is not darker
    than around it, and on spots; see the module docstring."""
    cfg = cfg or CreaseConfig()
    S = photo.shape[:2]
    where = skin & (region > 0)
    if not where.any():
        return np.zeros(S, np.float32), np.zeros(S + (3,), np.float32)
    import cv2

    r = int(np.ceil(cfg.lip_margin_m / mpp))
    where &= ~cv2.dilate(lips.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)
                         ).astype(bool)
    darker, shift = _crease_maps(photo, skin, mpp, cfg)
    blend = (cfg.lift * region * smoothstep(*cfg.darker, darker) * where).astype(np.float32)
    return blend, shift


def without_creases(photo: np.ndarray, blend: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """[S, S, 3] photo with its creases taken to the local tone: photo + blend x shift (crease_blend's
    outputs); the photo itself where blend is 0."""
    out = photo + blend[..., None] * shift
    return np.where(blend[..., None] > 0, np.clip(out, 0, 1), photo).astype(photo.dtype)


def photo_without_creases(cfg, photo, V, V_rest, faces, fid, bary, face_px, mouth_px, person, edge, mpp: float):
    """photo [S, S, 3] 0..1 without the creases the photo's removed expression (V -> V_rest, [478, 3]) folded into the
    face's skin (crease_blend, without_creases; cfg: a MeshFitConfig, its creases a CreaseConfig): on the skin
    triangles and the crease ring, away from the lips' red and the opening (mouth_px), the face's outline and the
    silhouette's edge band (edge [S, S] bool); fid [S, S] and bary [S, S, 3] the rasterized template (faces [F, 3]),
    mpp metres per pixel -> [S, S, 3] (photo itself when the expression is kept or creases is None)."""
    import cv2

    from gaussian_head_ros.core.reconstruct.lighting import skin_triangle_mask
    from gaussian_head_ros.core.reconstruct.lips import lip_band

    nf = len(faces)
    colours = photo
    if cfg.remove_expression and cfg.creases is not None:
        at = np.clip(fid, 0, nf - 1)
        region = np.where(face_px, np.einsum("ijk,ijk->ij", bary, expression_region(V, V_rest, cfg.creases)[
            faces[at]]), 0.0)
        lips = face_px & lip_band()[at] | mouth_px  # the red of the lips and the opening (the skin ring
        # just outside the lips' outer contour is skin: a grin's corner creases lie on it)
        on_skin = (skin_triangle_mask() | crease_ring())[at] & face_px & ~lips
        r = 2 * int(np.ceil(cfg.creases.outline_m / mpp)) + 1
        inner = cv2.erode(face_px.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (r, r))).astype(bool)
        blend, lift = crease_blend(photo, inner & person & ~edge & on_skin, lips, region, mpp, cfg.creases)
        colours = without_creases(photo, blend, lift)
    return colours
