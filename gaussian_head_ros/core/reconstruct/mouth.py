"""The mouth interior (PART_MOUTH): a dark cavity and rows of upper and lower teeth behind the lips.

Everything is placed behind the inner lip contour of the (rest) template, so a closed mouth hides it
and an opening jaw reveals it. Each Gaussian says how much of the jaw's turn it follows (bary[:, 0],
see core.drive): the upper teeth none, the lower teeth and the tongue all of it, the cavity wall a
smooth step at the lip line. Where the photo itself shows the mouth open, its pixels are put on the
teeth surface and belong to the upper or the lower jaw by which lip they are nearer (`jaw_side`); the
synthetic teeth that would sit in front of or between them are left out, so the photo's own pose
still shows the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core.avatar import PART_MOUTH
from gaussian_head_ros.core.deform import axis_angle_x, lip_line_jaw_weight
from gaussian_head_ros.core.landmarks import LOWER_LIP_IN, UPPER_LIP_IN
from gaussian_head_ros.core.landmarks import MOUTH_CORNER_L_IN as CORNER_L_IN
from gaussian_head_ros.core.landmarks import MOUTH_CORNER_R_IN as CORNER_R_IN
from gaussian_head_ros.core.reconstruct.builder import GaussianBatch, surface_discs



@dataclass
class MouthConfig:
    """Geometry (metres, head frame) and look of the mouth interior."""

    teeth_depth_m: float = 0.006  # upper incisors behind the inner lip surface
    teeth_height_m: float = 0.009  # visible height of each row
    teeth_spacing_m: float = 0.0010  # Gaussian spacing on the teeth
    tooth_width_m: float = 0.0085  # central incisor width (darker seams between teeth)
    lower_teeth_behind_m: float = 0.0012  # lower incisors behind the upper ones (overjet)
    overbite_m: float = 0.002  # upper incisors' edges this far below the lip line, in front of the lower ones
    cavity_depth_m: float = 0.018  # dark back wall behind the inner lip surface
    cavity_margin_m: float = 0.012  # the cavity reaches this far beyond the inner lip corners
    cavity_drop_m: float = 0.030  # and this far below the lower lip (the widest jaw opening)
    cavity_spacing_m: float = 0.0022
    teeth_rgb: tuple[float, float, float] = (0.80, 0.76, 0.68)  # without a skin colour (x brightness)
    # Teeth from the skin (`skin_teeth_colour`), measured on the ../shared photos that show lit teeth
    # (astronaut_eileen_collins, obama_official, obama_speech, trump_official, sadtalker frame 168): teeth
    # luma 1.19-1.45 x the skin's median luma; the teeth's rgb / luma departs from grey by 0.03-0.72 (median
    # ~0.35) of the skin's rgb / luma.
    teeth_luma_per_skin: float = 1.2
    teeth_max_luma: float = 0.85
    teeth_skin_cast: float = 0.35
    gum_rgb: tuple[float, float, float] = (0.55, 0.27, 0.26)
    gum_height_m: float = 0.005  # gum above the upper / below the lower teeth (seen when the lips pull back)
    teeth_shadow: float = 0.45  # darkening of the teeth towards the gums (the lips' shadow) and the back
    cavity_rgb: tuple[float, float, float] = (0.16, 0.05, 0.05)
    tongue_rgb: tuple[float, float, float] = (0.42, 0.16, 0.16)


def _lip_depth(v: np.ndarray, loop: np.ndarray):
    """x -> z of the inner lip contour (mean of upper and lower lip at that x), as a function."""
    p = v[loop]
    order = np.argsort(p[:, 0])
    xs, zs = p[order, 0], p[order, 2]
    return lambda x: np.interp(x, xs, zs)


def teeth_surface_depth(v: np.ndarray, loop: np.ndarray, cfg: MouthConfig):
    """x -> head-frame z of the front of the upper teeth."""
    lip = _lip_depth(v, loop)
    return lambda x: lip(x) + cfg.teeth_depth_m


def _hit_teeth_surface(origin, dirs, v, loop, cfg, behind_m=0.0):
    zf = teeth_surface_depth(v, loop, cfg)
    lam = (zf(np.full(len(dirs), v[UPPER_LIP_IN, 0])) + behind_m - origin[2]) / dirs[:, 2]
    for _ in range(4):  # the surface depth depends on x only: fixed-point on the ray parameter
        x = origin[0] + lam * dirs[:, 0]
        lam = (zf(x) + behind_m - origin[2]) / dirs[:, 2]
    return origin + lam[:, None] * dirs


def place_on_teeth_surface(origin: np.ndarray, dirs: np.ndarray, v: np.ndarray, loop: np.ndarray,
                           cfg: MouthConfig, lower=None, theta: float = 0.0, pivot=None) -> np.ndarray:
    """Rays (head frame: origin [3], dirs [M, 3]) -> [M, 3] points where they meet the teeth of the rest
    template v [V, 3]. Rays marked `lower` [M] bool meet the lower teeth (cfg.lower_teeth_behind_m further
    back) with the jaw turned open by theta radians about `pivot` [3] (as drive() turns it)."""
    origin = np.asarray(origin, np.float64)
    dirs = np.asarray(dirs, np.float64)
    out = _hit_teeth_surface(origin, dirs, v, loop, cfg)
    if lower is not None and np.any(lower):
        lower = np.asarray(lower, bool)
        r_open = axis_angle_x(np.array([theta]))[0]
        o = r_open.T @ (origin - pivot) + pivot  # the camera seen from the jaw at rest
        hit = _hit_teeth_surface(o, dirs[lower] @ r_open, v, loop, cfg, cfg.lower_teeth_behind_m)
        out[lower] = (hit - pivot) @ r_open.T + pivot
    return out


def jaw_binding(w: np.ndarray) -> np.ndarray:
    """[M] jaw weights in [0, 1] -> [M, 3] the mouth part's binding row (jaw weight, 0, 1 - jaw weight)."""
    w = np.clip(np.asarray(w, np.float32), 0, 1)
    return np.stack([w, np.zeros_like(w), 1 - w], 1)


def jaw_side(pixels: np.ndarray, landmarks_px: np.ndarray, loop: np.ndarray) -> np.ndarray:
    """[M, 2] (x, y) pixels inside the photo's open mouth -> [M] 1.0 where nearer the lower lip (they turn
    with the jaw), 0.0 where nearer the upper lip: below or above the midline between the two inner lip
    contours (`loop`, the template's mouth hole, in photo pixels `landmarks_px`)."""
    lm = np.asarray(landmarks_px, np.float64)[:, :2]
    loop = [int(v) for v in loop]
    ends = (loop.index(CORNER_R_IN), loop.index(CORNER_L_IN))
    # the loop runs upper lip -> one corner -> lower lip -> other corner: split it at the corners
    a, b = sorted(ends)
    arc1, arc2 = loop[a:b + 1], loop[b:] + loop[:a + 1]
    lower, upper = (arc1, arc2) if LOWER_LIP_IN in arc1 else (arc2, arc1)

    def curve(arc):
        p = lm[arc]
        o = np.argsort(p[:, 0])
        return p[o, 0], p[o, 1]

    xu, yu = curve(upper)
    xl, yl = curve(lower)
    x = np.asarray(pixels, np.float64)[:, 0]
    mid = 0.5 * (np.interp(x, xu, yu) + np.interp(x, xl, yl))
    return (np.asarray(pixels, np.float64)[:, 1] > mid).astype(np.float32)


def _grid(x0, x1, y0, y1, step):
    xs = np.arange(x0, x1 + 1e-9, step)
    ys = np.arange(y0, y1 + 1e-9, step)
    gx, gy = np.meshgrid(xs, ys)
    return gx.ravel(), gy.ravel()


_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma weights


def skin_teeth_colour(skin_rgb, cfg: MouthConfig) -> np.ndarray:
    """[3] the photo's skin colour (median, rgb in [0, 1]) -> [3] rgb of teeth under the same light, for a photo
    that does not show its teeth: off-white carrying about a third of the skin's colour cast (the photo's white
    balance and light colour), brighter than the skin (cfg.teeth_luma_per_skin, at most cfg.teeth_max_luma).
    A fixed khaki (R ~ G > B) read as grey-green next to pink lips, worst in neutral-balanced photos."""
    skin = np.clip(np.asarray(skin_rgb, np.float64), 1e-3, 1)
    luma = float(skin @ _LUMA)
    chroma = 1.0 + cfg.teeth_skin_cast * (skin / luma - 1.0)
    return np.clip(min(cfg.teeth_luma_per_skin * luma, cfg.teeth_max_luma) * chroma, 0, 1)


def mouth_interior(v: np.ndarray, loop: np.ndarray, brightness: float, cfg: MouthConfig,
                   teeth_rgb=None, visible=None) -> GaussianBatch:
    """Cavity + teeth Gaussians for template vertices v [V, 3] and the inner lip loop [L].

    brightness scales the default colours to the photo (1 = a well-lit face); teeth_rgb overrides the
    teeth colour (measured in the photo, or `skin_teeth_colour`); visible(points [M, 3], jaw weights [M]) ->
    [M] bool marks points the photo already shows (they are left out of the teeth rows). The teeth's shading
    (seams, towards the gums and the corners) fades them towards the cavity's dark red, as the mouth's own
    reflections tint them, not towards black: a darkened off-white turns olive, read as grey-green."""
    xl, xr = v[CORNER_R_IN, 0], v[CORNER_L_IN, 0]
    if xr < xl:
        xl, xr = xr, xl
    xc = 0.5 * (xl + xr)
    y_up, y_lo = v[UPPER_LIP_IN, 1], v[LOWER_LIP_IN, 1]
    lip_y = 0.5 * (y_up + y_lo)
    lip = _lip_depth(v, loop)
    k = float(np.clip(brightness, 0.35, 1.0))  # a dim photo gets dim teeth; a bright one no glowing white
    teeth = np.asarray(teeth_rgb if teeth_rgb is not None else np.asarray(cfg.teeth_rgb) * k, np.float64)
    batches = []
    # Teeth rows as in a closed bite: the upper incisors' edges `overbite_m` below the lip line, the lower
    # ones' edges at the lip line behind them (drive turns the lower row with the jaw); slightly curved back
    # towards the corners like a dental arch. Parted lips then show the upper teeth, as a speaking mouth does
    # (with both rows ending at the lip line, lips parted by the lower lip alone showed a dark slit).
    half = 0.5 * (xr - xl) - 0.002
    s = cfg.teeth_spacing_m
    tall = cfg.teeth_height_m + cfg.gum_height_m
    rows = ((lip_y + cfg.overbite_m - tall, lip_y + cfg.overbite_m, 0.0, 0.0),
            (lip_y, lip_y + tall, cfg.lower_teeth_behind_m, 1.0))
    for y0, y1, dz, jaw in rows:
        edge_y, root_y = (y1, y0) if jaw == 0.0 else (y0, y1)  # incisal edge at the lip line, root at the gum
        gx, gy = _grid(xc - half, xc + half, y0, max(y1, y0 + s), s)
        u = (gx - xc) / max(half, 1e-6)
        # an arch: the teeth get shorter and further back towards the corners
        keep = np.abs(gy - edge_y) <= np.abs(root_y - edge_y) * (1.0 - 0.35 * u * u) + 1e-9
        gx, gy, u = gx[keep], gy[keep], u[keep]
        gz = lip(gx) + cfg.teeth_depth_m + dz + 0.004 * u * u
        pts = np.stack([gx, gy, gz], 1)
        if visible is not None and len(pts):
            pts = pts[~visible(pts, np.full(len(pts), jaw))]
            u = (pts[:, 0] - xc) / max(half, 1e-6)
        seam = np.abs(((pts[:, 0] - xc) / cfg.tooth_width_m + 0.5) % 1.0 - 0.5) * cfg.tooth_width_m  # to the nearest seam
        t = np.clip(np.abs(pts[:, 1] - edge_y) / max(cfg.teeth_height_m, 1e-6), 0, 1)  # 0 at the edge .. 1 at the gum
        shade = ((1.0 - 0.25 * np.exp(-0.5 * (seam / 0.0005) ** 2)) * (1.0 - cfg.teeth_shadow * t ** 2)
                 * (1.0 - 0.5 * np.abs(u) ** 2))
        col = shade[:, None] * teeth[None] + (1.0 - shade[:, None]) * np.asarray(cfg.cavity_rgb) * k
        gum = np.clip((np.abs(pts[:, 1] - edge_y) - cfg.teeth_height_m) / 0.001 + 1, 0, 1)[:, None]
        col = (1 - gum) * col + gum * np.asarray(cfg.gum_rgb) * k * (1.0 - 0.5 * np.abs(u) ** 2)[:, None]
        nrm = np.tile([0.0, 0.0, -1.0], (len(pts), 1))
        batches.append(surface_discs(pts, nrm, col, np.full(len(pts), 0.7 * s), None, PART_MOUTH,
                                     bary=jaw_binding(np.full(len(pts), jaw))))
    # The cavity: a dark curved wall behind everything, wider and deeper than any opening.
    s = cfg.cavity_spacing_m
    gx, gy = _grid(xl - cfg.cavity_margin_m, xr + cfg.cavity_margin_m, y_up - 0.012, y_lo + cfg.cavity_drop_m, s)
    u = (gx - xc) / max(0.5 * (xr - xl) + cfg.cavity_margin_m, 1e-6)
    lip_edge = lip(np.clip(gx, xl, xr))
    gz = lip_edge + cfg.cavity_depth_m + 0.006 * u * u
    pts = np.stack([gx, gy, gz], 1)
    t = np.clip((gy - (lip_y + 0.008)) / 0.015, 0, 1)[:, None]  # the tongue towards the floor of the mouth
    col = (1 - t) * np.asarray(cfg.cavity_rgb) + t * np.asarray(cfg.tongue_rgb)
    col = col * k * (1 - 0.4 * np.abs(u)[:, None])
    nrm = np.tile([0.0, 0.0, -1.0], (len(pts), 1))
    batches.append(surface_discs(pts, nrm, col, np.full(len(pts), 0.75 * s), None, PART_MOUTH,
                                 bary=jaw_binding(lip_line_jaw_weight(gy, v))))
    return GaussianBatch.concat(batches)


def teeth_colour(photo, mouth_px, skin_luma: float = 0.0):
    """The photo's teeth colour when an open mouth shows them (bright, unsaturated pixels), else None. Teeth
    in the lips' shadow (darker than 1.1 x skin_luma, the skin's median luma: lit teeth measured 1.19-1.45 x
    on the ../shared portraits, see MouthConfig) or with a cold cast are not taken: shaded further as
    synthetic teeth they came out grey-blue or grey-green; None then (`skin_teeth_colour` is used)."""
    if mouth_px.sum() < 30:
        return None
    c = photo[mouth_px]
    luma = c @ _LUMA
    sat = c.max(1) - c.min(1)
    teeth = (luma > max(0.45, np.percentile(luma, 70))) & (sat < 0.25)
    if teeth.sum() < 15:
        return None
    rgb = np.median(c[teeth], 0)
    if float(rgb @ _LUMA) < 1.1 * skin_luma or rgb[2] > rgb[0]:
        return None
    return rgb
