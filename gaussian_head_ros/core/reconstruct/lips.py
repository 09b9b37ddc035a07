"""Closed lips at rest for a photo whose mouth is wide open.

The rest pose (rest_pose.py) takes the photo's mouth expression out of the template: the lips close, the
jaw turns up. The face Gaussians ride on their template triangles, so what the photo showed in a triangle
is what the triangle shows at rest. Where the photo's mesh is badly distorted by closing it, that goes
wrong in two ways, both read as a still-open mouth (lp_d9_woman_turned, a scream with a 44 mm opening:
the reader's jawOpen 0.78 on the avatar at rest):

- MediaPipe's mesh folds around a wide-open lower lip (the point below the lower lip, 18, lies above its
  outer edge, 17): lower-lip and shadow pixels are bound to chin triangles, which unfold at rest into a
  2-3x taller pink and brown band below the closed lips;
- the thin lips of the photo and the inner contour's strip of wet rim, teeth edges and cavity are
  stretched up to 6x to close the opening, and the discs scaled by the triangles' area (isotropically)
  leave gaps through which the mouth interior shows.

`closed_lips` (after rest_pose.to_rest_pose) re-textures the triangles the rest pose stretches (largest
singular value of the photo -> rest map from `stretch_from`), unfolds (folded: facing the other way in the
source view) or moves far (`move_from`), only for a photo whose lip gap is beyond what its lips close by
stretching (`opening_ratio`: gap / lips' heights, from `open_from`; the ../shared photos: lp_d9 5.0, every
other <= 1.09, so today only lp_d9 is touched), and the skin just beside the lips (`near_lips`, within
LipConfig.ring_m), where the scream's stretched lip corners otherwise stay as darker streaks. There:
- the covariance follows the map (anisotropic: no gaps between discs stretched one way), but none centred on
  the lower lip reaches more than 0.5 mm below its outer edge (`_above_lower_edge`: stretched tall, they hung onto
  the chin as drips), and a layer of synthesised Gaussians sits just behind the photo layer on the rest
  triangles (`fill_points`);
- each Gaussian's colour moves towards what the rest template says is there: on the lips' triangles within
  a relaxed lip's height of the line where the lips meet, the lip colour (the median of the photo's own lip
  Gaussians that are neither teeth nor cavity), darker along that line (a photo Gaussian takes the line and
  the lip's edge averaged over its own height: stretched tall across it, a centre value drew a dark vertical
  streak; in front, the synthesised layer's discs near the line in the lips' colour and overlapping discs along
  the line itself (`line_points`) draw it crisp: darkened at each disc's own centre, that layer drew it as a row
  of dots; the lower lip reaches down to a relaxed lip's curve, `lower_lip_depth`, with its shadow below it, and
  keeps none of the photo's colour nor a Gaussian longer than 3:1); elsewhere the
  skin around it (the photo's clean skin pixels, smoothly filled: `skin_fill_map`), looked up where the Gaussian's
  place was in the photo (`photo_places`: at its rest place lp_d9's chin, moved up to 30 mm, took the fill of the
  open mouth). A Gaussian whose photo colour already fits keeps it (on the lips: anything but teeth and cavity;
  on the skin: anything but those, lip colour and shadow) unless stretched into a streak (`streak_from`).
What the photo shows between its lips stays the mouth interior (mesh_fit puts it on the teeth surface); it is
pushed behind the rest face where the closed chin covers it (lp_d9's tongue showed through in specks).
The price: the photo's own pose shows the re-textured lips too (lp_d9 driven by its own expression: 38.8 ->
29.1 dB); a closed, smiling or speaking photo (ratio <= 1.5) is left exactly as it was (frame 0 unchanged).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_FACE
from gaussian_head_ros.core.deform import matrix_to_quat, smoothstep, triangle_frames
from gaussian_head_ros.core.expression import SCREAM_RATIO
from gaussian_head_ros.core.lip_body import cavity_dark, teeth_white
from gaussian_head_ros.core.lip_margin import lips_height, meeting_line
from gaussian_head_ros.core.reconstruct.builder import GaussianBatch
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.reconstruct.rest_pose import covariances, photo_growth, triangle_maps



@dataclass
class LipConfig:
    """When and how far `closed_lips` re-textures the rest pose's stretched mouth region."""

    open_from: float = SCREAM_RATIO[0]  # the photo's lip gap / its lips' heights (middle) where re-texturing starts:
    open_full: float = SCREAM_RATIO[1]  # below, the lips close by stretching as they are, up to a relaxed lip's height
    # (expression.RELAXED_UPPER_LIP_M; ../shared: <= 1.09 but lp_d9's scream, 5.0)
    stretch_from: float = 1.4  # largest singular value of a triangle's photo -> rest map where it starts
    stretch_full: float = 2.0  # ... and where the rest template's colour takes over (folded: always)
    streak_from: float = 1.2  # stretched this far, a Gaussian's own colour is a streak: it fades to the synthesised one
    streak_full: float = 1.6
    # (were 2.0 / 3.0 / 1.8 / 2.8: lp_d9's closed lips kept the photo's teeth edges and inner-rim shadow stretched
    # into dark vertical streaks along the line where they meet, which read as teeth between parted lips: the
    # reader's jawOpen on its rest face under tpsmm_driving's poses averaged 0.22, 0.10 with these; session 11)
    skin_blur_px: float = 6.0  # smoothing of the photo's skin fill
    # the fill's shadows and highlights are told against the skin's own tone around each pixel, a masked blur of this
    # sigma (photo pixels; 0: against the whole face's median, as before). A half-shaded face's shaded side is not a
    # shadow: against the median (lp_d9's shaded side ~0.6 of it) it was left out and filled from the lit side, and
    # her re-textured chin and cheek beside the closed lips were a pale patch on that side with an edge where the
    # re-texturing fades out (source view at rest, 2 x, skin within 5 mm of that edge: 1.33 x as light inside as
    # outside, 1.06 with this and `photo_places`; session 23). 20 px at the 512 px crop: ~15 mm, wider than a fold,
    # narrower than the face
    tone_px: float = 20.0
    # the skin just beside the lips (`near_lips`: fully within ring_m / 2 of the lips' band at rest, fading out by
    # ring_m) is re-textured as well, as far as its photo colour does not fit skin (`_misfit`: lip colour, shadow,
    # teeth, cavity) or is stretched into a streak: there the rest pose neither stretches (< stretch_from) nor moves
    # (< move_from) the triangles enough to re-texture them, and lp_d9's screaming lips left lip-coloured streaks
    # past her closed lips' ends, which stood out on her shaded side once the pale fill beside them was gone (the
    # reader put her left mouth corner on them, 1-2 mm low: lp_d9 x tpsmm_driving smile r 0.31, 0.54 with this;
    # session 24)
    ring_m: float = 0.005
    meet_shade: float = 0.4  # darkening of re-textured lip Gaussians at the line where the lips meet
    meet_width_m: float = 0.0007  # ... over this distance from it
    move_from: float = 0.004  # a triangle the rest pose moves this far (largest vertex move) starts taking its colours
    move_full: float = 0.010  # ... fully from this far (the folds below a wide-open lower lip move 10-30 mm)
    upper_lip_m: float = 0.0065  # at rest, lip colour reaches this far above the line where the lips meet
    lower_lip_m: float = 0.009  # ... and at most this far below it (MediaPipe's relaxed lips: 5-6 and 8-9 mm; the
    # lower lip's edge is a curve, `lower_lip_depth`); skin beyond
    fill_spacing_m: float = 0.0012  # a layer of synthesised Gaussians on the rest triangles (their photo discs leave gaps)
    fill_behind_m: float = 0.0003  # ... this far behind the photo layer
    fill_from: float = 0.5  # ... on triangles whose colour weight (`_weights`) is at least this
    meet_front_m: float = 0.0015  # ... but in front of it within this distance of the line where the lips meet
    edge_reach_m: float = 0.0005  # a re-textured Gaussian centred above the lower lip's outer edge reaches at most
    edge_sigmas: float = 2.0  # ... this far below it at this many standard deviations (`_above_lower_edge`), its
    edge_min_sigma_m: float = 0.0003  # ... vertical extent no shorter than this
    line_spacing_m: float = 0.0004  # the line where the lips meet is drawn by discs this far apart along it (`line_points`)
    line_opacity: float = 0.2  # ... each this opaque, 2 x line_spacing_m long, meet_width_m across: they overlap
    # (their alphas add up to ~1 at the line, 1 - e^-1 = 0.63 of cover)
    line_shade: float = 0.28  # ... darkening the lips' colour by this at the line (lp_d9 at 4x in the source view:
    # about as dark on average as the dots were; meet_shade's 0.4 drew it 1.6x as dark). Before, the synthesised
    # layer's discs near the line, round and 0.72 mm wide, quasi-random, each as dark as its centre was near the
    # line, drew it as a row of dots (lp_d9 at 4x, session 19)
    # The closed lower lip is drawn as a relaxed one, whatever the rest template's lower lip looks like: its outer
    # edge at rest follows the photo's scream (lp_d9: 12 mm below the line where the lips meet beside the right corner,
    # 8 in the middle, 21 left of it) and its Gaussians are the photo's thin, wet lower lip stretched up to 8:1. Lip
    # colour reaches down to a smooth curve (`lower_lip_depth`: the middle of the rest edge's depth, within
    # lower_lip_min_m .. lower_lip_m, times 1 - u^2 between the outer corners, u = -1 .. 1: a closed photo's lower
    # edge, business_person's, is within 0.1 x its middle depth of that), on any re-textured triangle (the chin's too:
    # there the rest edge is higher than the curve), skin below it; the photo's own colour is not kept there (its
    # scream's wet rim drew a bright pink smear along the closed lip's lower half), and no re-textured Gaussian there
    # is longer than lower_lip_aspect x its width (needles of 0.14 x 0.9 x 2.6 mm drew horizontal smears)
    lower_lip_min_m: float = 0.006
    lower_lip_aspect: float = 3.0
    # the skin just below the closed lower lip is shaded (the lip's own shadow; without it the lip's edge, drawn in
    # colour only, read faint against lp_d9's pale chin): darkened by this at lower_lip_shadow_m below the curve,
    # a Gaussian profile lower_lip_shadow_m wide
    lower_lip_shadow: float = 0.2
    lower_lip_shadow_m: float = 0.0015


@functools.lru_cache(maxsize=1)
def lip_band() -> np.ndarray:
    """[F] bool over template_faces: the triangles between the outer lip contour (lmk.LIP_OUTER) and the
    mouth's hole, from the topology alone: the vertices reached from the hole without crossing the contour."""
    from gaussian_head_ros.core.reconstruct.template import hole_loops, template_faces

    faces = np.asarray(template_faces(), np.int64)
    outer = set(lmk.LIP_OUTER)
    nbr: dict[int, set[int]] = {}
    for a, b in np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).tolist():
        nbr.setdefault(a, set()).add(b)
        nbr.setdefault(b, set()).add(a)
    seen = set(int(v) for v in hole_loops()["mouth"])
    todo = list(seen)
    while todo:
        for n in nbr.get(todo.pop(), ()):
            if n not in seen:
                seen.add(n)
                if n not in outer:
                    todo.append(n)
    band = np.isin(faces, sorted(seen)).all(1)
    band.setflags(write=False)
    return band


def lip_triangles(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[V, 3] template vertices (head frame, y down) -> ([F] upper-lip, [F] lower-lip) bool over
    template_faces: the lips' band (`lip_band`) split at the line through the inner lip corners."""
    from gaussian_head_ros.core.reconstruct.template import template_faces

    faces = np.asarray(template_faces(), np.int64)
    v = np.asarray(v, np.float64)
    c = v[faces].mean(1)
    (xr, yr), (xl, yl) = v[lmk.MOUTH_CORNER_R_IN, :2], v[lmk.MOUTH_CORNER_L_IN, :2]
    y_line = yr + (c[:, 0] - xr) * (yl - yr) / (xl - xr if abs(xl - xr) > 1e-9 else 1e-9)
    band = lip_band()
    return band & (c[:, 1] < y_line), band & (c[:, 1] >= y_line)


def distortion(v_photo: np.ndarray, v_rest: np.ndarray, faces: np.ndarray, R: np.ndarray, cfg: LipConfig
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle: (the photo -> rest map's largest singular value [F], weight 0..1 of the rest template's
    colour [F]: 0 below cfg.stretch_from, 1 from cfg.stretch_full or where the photo's mesh is folded, i.e.
    the triangle faces the other way in the photo than at rest, seen from the source camera (R: head ->
    camera rotation))."""
    s = np.linalg.svd(triangle_maps(v_photo, v_rest, faces), compute_uv=False)[:, 0]

    def facing(v):
        p = np.asarray(v, np.float64) @ np.asarray(R, np.float64).T
        p = p[:, :2] / np.maximum(p[:, 2:], 1e-6)
        a, b, c = p[faces[:, 0]], p[faces[:, 1]], p[faces[:, 2]]
        return np.sign((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])

    folded = facing(v_photo) != facing(v_rest)
    return s, np.where(folded, 1.0, smoothstep(cfg.stretch_from, cfg.stretch_full, s))



def _chromaticity(c):
    return c / np.maximum(c.sum(-1, keepdims=True), 1e-6)


def _misfit(c: np.ndarray, share: np.ndarray, lip: np.ndarray, skin: np.ndarray, skin_luma: float) -> np.ndarray:
    """[M, 3] photo colours of Gaussians whose rest place is a share [M] lip (the rest skin), with the lip's and
    the skin's colours there [M, 3] -> [M] 0 (fits) .. 1 (another class): teeth (brighter than 1.0-1.2 x the
    skin's luma and grey) and cavity (darker than 0.4-0.6 x the lip's) fit neither; lip colour (nearer the lip's
    chromaticity than the skin's) and shadow (darker than 0.6-0.8 x the skin) do not fit the skin."""
    luma = c @ LUMA
    teeth, cavity = teeth_white(c, skin_luma), cavity_dark(c, lip)
    d_lip = np.linalg.norm(_chromaticity(c) - _chromaticity(lip), axis=1)
    d_skin = np.linalg.norm(_chromaticity(c) - _chromaticity(skin), axis=1)
    lip_like = smoothstep(-0.3, 0.3, (d_skin - d_lip) / np.maximum(d_skin + d_lip, 1e-6))
    dark = 1 - smoothstep(0.6, 0.8, luma / np.maximum(skin @ LUMA, 1e-3))
    interior = np.maximum(teeth, cavity)
    return share * interior + (1 - share) * np.maximum(interior, np.maximum(lip_like, dark))


def lip_colour(colours: np.ndarray, skin_luma: float) -> np.ndarray | None:
    """[M, 3] colours of a lip's Gaussians in the photo -> its colour: the median of those that are lip, not
    teeth (bright and grey: above 1.1 x the skin's luma, saturation < 0.12), cavity or shadow (below 0.55 x
    the lip's median luma). None when fewer than 10 are left."""
    c = np.asarray(colours, np.float64)
    if len(c) < 10:
        return None
    luma = c @ LUMA
    sat = c.max(1) - c.min(1)
    keep = ~((luma > 1.1 * skin_luma) & (sat < 0.12)) & (luma > 0.55 * np.median(luma))
    return np.median(c[keep], 0) if keep.sum() >= 10 else None


def opening_ratio(v: np.ndarray) -> float:
    """[V, 3] template vertices (head frame, y down) -> the lips' gap at the middle (13 -> 14) over the two lips'
    heights there (0 -> 13 and 14 -> 17): how many times its own lips' height a closing must stretch them."""
    v = np.asarray(v, np.float64)
    gap = v[lmk.LOWER_LIP_IN, 1] - v[lmk.UPPER_LIP_IN, 1]
    return float(max(gap, 0.0) / max(lips_height(v), 1e-4))


def _weights(v_photo, v_rest, faces, R, cfg: LipConfig):
    """Per triangle: (largest stretch [F], shape weight [F] (`distortion`), colour weight [F]: the largest of the
    shape weight, how far the rest pose moves the triangle (cfg.move_from .. move_full) and how near the lips it lies
    (`near_lips`, cfg.ring_m)); both weights times
    how far the photo's opening is beyond what its lips close by stretching (`opening_ratio`, cfg.open_from ..
    open_full). A smile showing teeth (obama_official 1.05) keeps its photo's texture: its own pose gives the
    photo back (a re-textured photo's pose does not: lp_d9 -9.7 dB; sadtalker frame 0 lost 1.9 dB without this)."""
    gate = float(smoothstep(cfg.open_from, cfg.open_full, opening_ratio(v_photo)))
    stretch, w_shape = distortion(v_photo, v_rest, faces, R, cfg)
    move = np.linalg.norm(np.asarray(v_photo, np.float64) - np.asarray(v_rest, np.float64), axis=1)[faces].max(1)
    w_colour = np.maximum(w_shape, smoothstep(cfg.move_from, cfg.move_full, move))
    if cfg.ring_m > 0:
        w_colour = np.maximum(w_colour, near_lips(v_rest, faces, cfg.ring_m))
    return stretch, gate * w_shape, gate * w_colour


def near_lips(v_rest: np.ndarray, faces: np.ndarray, reach_m: float) -> np.ndarray:
    """[F] 0..1 over faces [F, 3] (template_faces) of the rest template v_rest [V, 3] (head frame, metres): 1 on the
    skin triangles whose centre lies within reach_m / 2 of a vertex of the lips' band (`lip_band`; in the face plane,
    x and y), fading to 0 at reach_m; 0 on the band itself and beyond."""
    v = np.asarray(v_rest, np.float64)
    faces = np.asarray(faces, np.int64)
    band = lip_band()
    if len(band) != len(faces) or not band.any():
        return np.zeros(len(faces))
    lip_v = v[np.unique(faces[band])][:, :2]
    centre = v[faces].mean(1)[:, :2]
    d = np.full(len(faces), np.inf)
    for i in range(0, len(faces), 4096):  # [chunk, band vertices] distances
        d[i:i + 4096] = np.linalg.norm(centre[i:i + 4096, None] - lip_v[None], axis=2).min(1)
    return np.where(band, 0.0, 1.0 - smoothstep(0.5 * reach_m, reach_m, d))


def fill_points(v_photo: np.ndarray, v_rest: np.ndarray, faces: np.ndarray, R: np.ndarray, rng,
                cfg: LipConfig | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where `closed_lips` adds its synthesised layer: (face index [M], bary [M, 3], [M] bool on the line where the
    lips meet): about one per cfg.fill_spacing_m^2 of the REST triangles whose colour weight is >= cfg.fill_from,
    then (where there are any) the points along the line where the lips meet (`line_points`). Known before the
    Gaussian budget is shared out."""
    cfg = cfg or LipConfig()
    from gaussian_head_ros.core.reconstruct.completion import sample_triangles

    faces = np.asarray(faces, np.int64)
    _, _, w = _weights(v_photo, v_rest, faces, R, cfg)
    todo = np.flatnonzero(w >= cfg.fill_from)
    if not todo.size:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.float32), np.zeros(0, bool)
    fid, bary = sample_triangles(np.asarray(v_rest, np.float64), faces, todo, cfg.fill_spacing_m, rng)
    lfid, lbary = line_points(v_rest, faces, cfg)
    on_line = np.r_[np.zeros(len(fid), bool), np.ones(len(lfid), bool)]
    return np.r_[fid, lfid], np.concatenate([bary, lbary]).astype(np.float32), on_line


def without_detail(v_photo: np.ndarray, v_rest: np.ndarray, faces: np.ndarray, R: np.ndarray, mouth_px: np.ndarray,
                   cfg: LipConfig | None = None) -> np.ndarray:
    """[S, S] bool: the photo's pixels that get no single-pixel detail Gaussian (mesh_fit's `detail`): its open mouth
    (mouth_px [S, S] bool) when its lips are re-textured (`_weights`' gate > 0 for v_photo, v_rest [V, 3], faces
    [F, 3], R the head -> camera rotation); else none. Such a photo's open mouth is pushed behind the closed face
    and shown only as far as a driven jaw opens, at another opening and scale than the photo's: a 0.25 px disc
    drawn larger than the photo is a point, and lp_d9's teeth and cavity edges read as bright and dark specks
    (session 19). (Also leaving out the re-textured triangles' detail moved the reader's mouth corners at rest
    1-2 mm lower, lp_d9: kept.)"""
    cfg = cfg or LipConfig()
    _, _, w = _weights(v_photo, v_rest, np.asarray(faces, np.int64), R, cfg)
    if not (w > 0).any():
        return np.zeros(np.shape(mouth_px), bool)
    return np.asarray(mouth_px, bool).copy()


def line_points(v_rest: np.ndarray, faces: np.ndarray, cfg: LipConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points cfg.line_spacing_m apart (arc length, in the face plane) along the line where the rest template's
    [V, 3] closed lips meet (`lip_margin.meeting_line`), each on the lips' triangle (`lip_triangles`; faces
    [F, 3]) that holds it seen from the front (x, y), the front-most (least z) of several: the lips' inner rim folds
    in behind their front (at lp_d9's rest the upper lip's triangles there lie ~8 mm behind the lower lip's, so the
    line rides on the lower lip: bound to both, half of it was hidden at rest). A point outside them all goes on the
    one it is most nearly inside, its bary clipped to it. -> (face index [K], bary [K, 3], >= 0, summing to 1);
    empty without lip triangles."""
    cfg = cfg or LipConfig()
    v = np.asarray(v_rest, np.float64)
    faces = np.asarray(faces, np.int64)
    x, y = meeting_line(v)
    arc = np.r_[0.0, np.cumsum(np.hypot(np.diff(x), np.diff(y)))]
    s = np.arange(0.5 * cfg.line_spacing_m, arc[-1], cfg.line_spacing_m)
    p = np.stack([np.interp(s, arc, x), np.interp(s, arc, y)], 1)  # [K, 2]
    upper, lower = lip_triangles(v)
    tri = np.flatnonzero(upper | lower)
    if not len(p) or not len(tri):
        return np.zeros(0, np.int64), np.zeros((0, 3), np.float32)
    a, b, c = (v[faces[tri, k], :2] for k in range(3))  # [T, 2]
    e1, e2 = b - a, c - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) > 1e-15, det, 1e-15)
    d = p[:, None, :] - a[None]  # [K, T, 2]
    l1 = (d[..., 0] * e2[:, 1] - d[..., 1] * e2[:, 0]) / det
    l2 = (e1[:, 0] * d[..., 1] - e1[:, 1] * d[..., 0]) / det
    bary = np.stack([1 - l1 - l2, l1, l2], -1)  # [K, T, 3]
    z = np.einsum("ktj,tj->kt", bary, v[faces[tri], 2])  # [K, T] depth at the point
    inside = bary.min(-1) >= -1e-9
    best = np.where(inside.any(1), np.argmin(np.where(inside, z, np.inf), axis=1), np.argmax(bary.min(-1), axis=1))
    bk = np.clip(bary[np.arange(len(p)), best], 0, None)
    return tri[best].astype(np.int64), (bk / np.maximum(bk.sum(1, keepdims=True), 1e-12)).astype(np.float32)


def closed_lips(batch: GaussianBatch, v_photo: np.ndarray, v_rest: np.ndarray, faces: np.ndarray,
                skin_fill, R: np.ndarray, fill=None, cfg: LipConfig | None = None) -> tuple[GaussianBatch, dict]:
    """Re-texture the rest pose's stretched or unfolded mouth region (module notes) -> (the batch with the
    synthesised layer added, counts for the reconstruction's info). The batch's own rows change in place.

    batch: Gaussians at rest (rest_pose.to_rest_pose); v_photo, v_rest [V, 3] the photo's and the rest
    template (head frame, metres); faces [F, 3]; skin_fill(points [M, 3] head frame) -> [M, 3] the photo's
    skin colour around each point (`skin_fill_map`, looked up where the point projects); R [3, 3] head ->
    source camera rotation; fill: `fill_points` (None: no added layer)."""
    from gaussian_head_ros.core.reconstruct.builder import surface_discs

    cfg = cfg or LipConfig()
    faces = np.asarray(faces, np.int64)
    v_rest = np.asarray(v_rest, np.float64)
    bound = np.flatnonzero((batch.part == PART_FACE) & (batch.face_id >= 0))
    stretch, w_shape, w_tri = _weights(v_photo, v_rest, faces, R, cfg)
    info = {"lip_retextured": 0, "lip_fill": 0, "lip_max_stretch": round(float(stretch.max()), 2)}
    if not bound.size or not (w_tri[batch.face_id[bound]] > 0).any():
        return batch, info
    upper, lower = lip_triangles(v_rest)
    all_fid = batch.face_id[bound].astype(np.int64)
    skin_luma = float(np.median(np.asarray(skin_fill(batch.means[bound].astype(np.float64)), np.float64) @ LUMA))
    lip_ref = [lip_colour(batch.colors[bound[tri[all_fid]]], skin_luma) for tri in (upper, lower)]
    w_tri = w_tri.copy()
    for tri, ref in zip((upper, lower), lip_ref):
        if ref is None:  # no lip seen: the lips stay as the photo shows them
            w_tri[tri] = 0.0

    def targets(p, fid, bary, sig_y=None, shaded=None):
        """Rest points p [M, 3] on triangles fid [M] at barycentrics bary [M, 3] -> (target colours [M, 3], lip share
        [M] 0..1, lip reference [M, 3], skin [M, 3], lower lip share [M] 0..1); sig_y [M]: the Gaussians' vertical
        extent (std, metres): the line where the lips meet is averaged over it; shaded [M] bool: which are darker
        along that line (None: all).
        The skin is the photo's around each point's own place in the photo (`photo_places`), not its rest place: the
        closing moves the chin up to 30 mm, and there lp_d9's chin took the fill of the open mouth, lighter than her
        shaded chin (its median luma 0.52 against 0.47 for the lower face's skin in the photo; 0.43 now)."""
        skin = np.asarray(skin_fill(photo_places(v_photo, faces, fid, bary)), np.float64)
        sig2 = np.zeros(len(p)) if sig_y is None else np.asarray(sig_y, np.float64) ** 2
        t, share, ref_m, low = skin.copy(), np.zeros(len(p)), skin.copy(), np.zeros(len(p))
        meet = _meeting_distance(p, v_rest)  # signed, + below
        depth = lower_lip_depth(p[:, 0], v_rest, cfg)
        for tri, ref, reach in zip((upper, lower), lip_ref, (cfg.upper_lip_m, None)):
            # the lower lip: any re-textured Gaussian below the line down to the relaxed lip's edge (`lower_lip_depth`)
            m = tri[fid] if reach is not None else (lower[fid] | (~upper[fid] & (meet > 0) & (depth > 0)))
            if ref is None or not m.any():
                continue
            # a closed mouth's lips are no taller than a relaxed one's: a wide-open photo's lip band, closed,
            # reaches further (its corners hang down to the chin): skin there
            # (the lip's edge averaged over each Gaussian's vertical extent, as the meeting line below)
            sig = np.sqrt(sig2[m])
            r = reach if reach is not None else depth[m]
            share[m] = 1.0 - smoothstep(0.0, 1.0, (np.abs(meet[m]) - r + sig) / (0.0015 + 2 * sig))
            if reach is None:
                low[m] = share[m]
                if cfg.lower_lip_shadow > 0:  # the lip's shadow on the skin below it (over each Gaussian's extent)
                    var = cfg.lower_lip_shadow_m ** 2 + sig ** 2
                    off = meet[m] - depth[m] - cfg.lower_lip_shadow_m
                    amp = (cfg.lower_lip_shadow * cfg.lower_lip_shadow_m / np.sqrt(var) * np.exp(-0.5 * off ** 2 / var)
                           * smoothstep(0.0, 2 * cfg.lower_lip_shadow_m, depth[m]))  # none beyond the lip's ends
                    skin[m] *= (1.0 - (1.0 - share[m]) * amp)[:, None]
            ref_m[m] = ref
            t[m] = share[m, None] * ref + (1 - share[m, None]) * skin[m]
            if cfg.meet_shade > 0:  # the line where the closed lips meet is darker: a Gaussian profile of width
                # meet_width_m, convolved with each Gaussian's own vertical extent (its mean colour over its footprint);
                # at the centre's value, a disc stretched 3-6x tall across the line drew a dark vertical streak
                # (lp_d9's closed lips read as a barcode, session 18)
                var = cfg.meet_width_m ** 2 + sig2[m]
                amp = cfg.meet_shade * cfg.meet_width_m / np.sqrt(var) * (1.0 if shaded is None else shaded[m])
                t[m] *= (1 - amp * np.exp(-0.5 * meet[m] ** 2 / var))[:, None]
        return t, share, ref_m, skin, low

    sel = w_tri[all_fid] > 0
    idx, fid = bound[sel], all_fid[sel]
    w, s = w_tri[fid], stretch[fid]
    w_cov = w_shape[fid]
    c = batch.colors[idx].astype(np.float64)
    sig_y = _follow_map(batch, idx, fid, v_photo, v_rest, faces, w_cov)
    sig_y = _above_lower_edge(batch, idx, v_rest, cfg, sig_y)
    p = batch.means[idx].astype(np.float64)  # their rest places (_shorten changes scales only)
    if cfg.lower_lip_aspect:  # no needles on the closed lower lip and the skin round it (the skin's shadow below)
        meet = _meeting_distance(p, v_rest)
        near = lower[fid] | (~upper[fid] & (meet > 0)
                             & (meet < lower_lip_depth(p[:, 0], v_rest, cfg) + 3 * cfg.lower_lip_shadow_m))
        rows = idx[near]
        info["lip_lower_shortened"] = _shorten(batch, rows, cfg.lower_lip_aspect)
        q = batch.quats[rows].astype(np.float64)
        sig_y[near] = np.sqrt(covariances(q / np.linalg.norm(q, axis=1, keepdims=True), batch.scales[rows])[:, 1, 1])
    target, share, ref, skin, low = targets(p, fid, batch.bary[idx].astype(np.float64), sig_y)
    # A Gaussian that already shows what is there at rest keeps its own colour (the photo's texture): on the lips
    # anything but teeth and cavity, on the skin anything but those, lip colour and shadow. Stretched so far that
    # its texture is a streak, it takes the synthesised colour anyway; on the closed lower lip it always does
    # (LipConfig.lower_lip_min_m's notes), and none there is longer than lower_lip_aspect x its width.
    keep = (1.0 - _misfit(c, share, ref, skin, skin_luma)) * (1.0 - smoothstep(cfg.streak_from, cfg.streak_full, s))
    keep *= 1.0 - low
    new = keep[:, None] * c + (1 - keep[:, None]) * target
    batch.colors[idx] = np.clip((1 - w[:, None]) * c + w[:, None] * new, 0, 1).astype(np.float32)
    info["lip_retextured"] = int(idx.size)
    if fill is None or not len(fill[0]):
        return batch, info
    ffid, fbary = np.asarray(fill[0], np.int64), np.asarray(fill[1], np.float64)
    on_line = np.asarray(fill[2], bool) if len(fill) > 2 else np.zeros(len(ffid), bool)
    ok = w_tri[ffid] > 0
    ffid, fbary, on_line = ffid[ok], fbary[ok], on_line[ok]
    tri = v_rest[faces[ffid]]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-15)
    p = np.einsum("mk,mkc->mc", fbary, tri)
    n *= np.where(n[:, 2] > 0, -1.0, 1.0)[:, None]  # outwards: the mouth region faces -z (head frame, z into the head)
    # the synthesised layer's discs (small, round) near the line where the lips meet go in front, in the lips' colour
    # (the photo layer's discs, stretched tall, can only carry that line averaged over their height) ...
    area = ~on_line
    front = area & (upper | lower)[ffid] & (np.abs(_meeting_distance(p, v_rest)) < cfg.meet_front_m)
    depth = np.where(front, -cfg.fill_behind_m, cfg.fill_behind_m)
    colour = targets(p[area], ffid[area], fbary[area], shaded=~front[area])[0]
    layer = surface_discs((p - depth[:, None] * n)[area], n[area], colour,
                          np.full(int(area.sum()), 0.6 * cfg.fill_spacing_m), None, PART_FACE, face_id=ffid[area],
                          bary=fbary[area].astype(np.float32))
    # ... and the line itself is drawn in front of them by overlapping discs along it (`line_points`): its darkening
    # (line_shade, a profile meet_width_m wide) over their cover at the line, 1 - exp(-sqrt(2 pi) x 2 x opacity)
    pl, nl, fl = p[on_line], n[on_line], ffid[on_line]
    if len(pl):
        x, y = meeting_line(v_rest)
        h = 0.5 * cfg.line_spacing_m
        along = np.stack([np.full(len(pl), 2 * h), np.interp(pl[:, 0] + h, x, y) - np.interp(pl[:, 0] - h, x, y),
                          np.zeros(len(pl))], 1)  # the line's direction, head frame
        cover = 1.0 - np.exp(-np.sqrt(2 * np.pi) * 2.0 * cfg.line_opacity)
        colour = (targets(pl, fl, fbary[on_line], shaded=np.zeros(len(pl), bool))[0]
                  * (1.0 - min(cfg.line_shade / cover, 1.0)))
        line = surface_discs(pl + 2 * cfg.fill_behind_m * nl, nl, colour, np.full(len(pl), cfg.meet_width_m), along,
                             PART_FACE, opacity=cfg.line_opacity, face_id=fl, bary=fbary[on_line].astype(np.float32))
        # surface_discs stretches a disc along view_dirs by 1 / cos(its angle to the normal): along the line (in the
        # surface, cos ~ 0) that is max_stretch; here the length is set: 2 x line_spacing_m along, meet_width_m across
        line.scales[:, 0] = 2 * cfg.line_spacing_m
        layer = GaussianBatch.concat([layer, line])
    info["lip_fill"] = len(layer)
    return GaussianBatch.concat([batch, layer]), info


def photo_places(v_photo: np.ndarray, faces: np.ndarray, fid: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """[M, 3] the places in the photo's template (v_photo [V, 3], head frame, metres; faces [F, 3]) of points on
    triangles fid [M] at barycentrics bary [M, 3]: where what a rest Gaussian bound there shows was in the photo."""
    tri = np.asarray(v_photo, np.float64)[np.asarray(faces, np.int64)[np.asarray(fid, np.int64)]]  # [M, 3, 3]
    return np.einsum("mk,mkc->mc", np.asarray(bary, np.float64), tri)


def _meeting_distance(p: np.ndarray, v_rest: np.ndarray) -> np.ndarray:
    """[M] vertical distance (metres, + below) of rest points from the closed inner lip line (rest template)."""
    x, y = meeting_line(v_rest)
    return p[:, 1] - np.interp(p[:, 0], x, y)


def lower_lip_depth(x: np.ndarray, v_rest: np.ndarray, cfg: LipConfig | None = None) -> np.ndarray:
    """[M] x (head frame, metres) -> [M] how far below the line where the rest template's [V, 3] closed lips meet a
    relaxed lower lip reaches there (metres, 0 beyond the outer corners): h (1 - u^2), u = -1 .. 1 from corner to
    corner (lmk.MOUTH_CORNER_R / _L), h the median depth of the rest lower edge's middle three points
    (lmk.LIP_LOWER_OUTER[3:6]) clipped to cfg.lower_lip_min_m .. cfg.lower_lip_m (LipConfig's notes)."""
    cfg = cfg or LipConfig()
    v = np.asarray(v_rest, np.float64)
    mid = v[list(lmk.LIP_LOWER_OUTER[3:6])]
    h = float(np.clip(np.median(_meeting_distance(mid, v)), cfg.lower_lip_min_m, cfg.lower_lip_m))
    xr, xl = v[lmk.MOUTH_CORNER_R, 0], v[lmk.MOUTH_CORNER_L, 0]
    u = (np.asarray(x, np.float64) - 0.5 * (xr + xl)) / max(0.5 * abs(xl - xr), 1e-6)
    return h * np.clip(1.0 - u ** 2, 0.0, None)


def _shorten(batch: GaussianBatch, rows: np.ndarray, aspect: float) -> int:
    """Batch rows whose longest axis is more than aspect x the middle one get it shortened to that (in place; their
    orientation and other axes kept) -> how many."""
    s = batch.scales[rows].astype(np.float64)
    order = np.argsort(s, axis=1)
    mid = np.take_along_axis(s, order[:, 1:2], 1)[:, 0]
    top = order[:, 2]
    long = s[np.arange(len(rows)), top] > aspect * mid
    s[np.flatnonzero(long), top[long]] = aspect * mid[long]
    batch.scales[rows] = s.astype(np.float32)
    return int(long.sum())


def _follow_map(batch: GaussianBatch, idx: np.ndarray, fid: np.ndarray, v_photo, v_rest, faces, w) -> np.ndarray:
    """The covariance of rows idx (bound to triangles fid) as the photo -> rest map stretches it (blended by
    w with the isotropic scaling to_rest_pose gave): no gaps between discs stretched one way only. Returns
    [M] their new vertical extent: the standard deviation (metres) along the head frame's y, sqrt(cov[1, 1])."""
    A = triangle_maps(v_photo, v_rest, faces)[fid]
    fr_p, _ = triangle_frames(np.asarray(v_photo, np.float64), faces)
    fr_r, _ = triangle_frames(np.asarray(v_rest, np.float64), faces)
    rot = (fr_r @ fr_p.transpose(0, 2, 1))[fid]
    ratio = 1.0 / photo_growth(v_photo, v_rest, faces)[fid]  # the isotropic rest scaling of to_rest_pose
    cov = covariances(batch.quats[idx], batch.scales[idx])  # at rest, area-scaled
    cov_p = rot.transpose(0, 2, 1) @ cov @ rot / ratio[:, None, None] ** 2  # as built in the photo
    cov_n = A @ cov_p @ A.transpose(0, 2, 1)
    cov_n = w[:, None, None] * cov_n + (1 - w[:, None, None]) * cov
    lam, Q = np.linalg.eigh(cov_n)
    Q[np.linalg.det(Q) < 0, :, 0] *= -1
    batch.scales[idx] = np.sqrt(np.maximum(lam, 1e-14)).astype(np.float32)
    batch.quats[idx] = matrix_to_quat(Q).astype(np.float32)
    return np.sqrt(np.maximum(cov_n[:, 1, 1], 0.0))


def _above_lower_edge(batch: GaussianBatch, idx: np.ndarray, v_rest: np.ndarray, cfg: LipConfig,
                      sig_y: np.ndarray) -> np.ndarray:
    """Rows idx of the batch whose centre is above the rest template's [V, 3] lower lip's outer edge (the corners
    and lmk.LIP_LOWER_OUTER) but whose vertical extent reaches further below it than cfg.edge_reach_m (at
    cfg.edge_sigmas standard deviations) are shortened along the head frame's y (their covariance C -> D C D,
    D = diag(1, k, 1): their width kept) to reach no further, no shorter than cfg.edge_min_sigma_m; the lower lip's
    Gaussians stretched tall by the closing hung onto the chin as drips. sig_y [M]: their vertical extent (std,
    metres; `_follow_map`) -> the same after."""
    v = np.asarray(v_rest, np.float64)
    edge = v[[lmk.MOUTH_CORNER_R, *lmk.LIP_LOWER_OUTER, lmk.MOUTH_CORNER_L]]
    order = np.argsort(edge[:, 0])
    m = batch.means[idx].astype(np.float64)
    y_edge = np.interp(m[:, 0], edge[order, 0], edge[order, 1], left=np.nan, right=np.nan)
    room = np.maximum((y_edge + cfg.edge_reach_m - m[:, 1]) / cfg.edge_sigmas, cfg.edge_min_sigma_m)
    todo = np.flatnonzero((m[:, 1] < y_edge) & (sig_y > room))
    if not todo.size:
        return sig_y
    rows = idx[todo]
    q = batch.quats[rows].astype(np.float64)
    cov = covariances(q / np.linalg.norm(q, axis=1, keepdims=True), batch.scales[rows])
    k = room[todo] / sig_y[todo]
    d = np.ones((len(rows), 3))
    d[:, 1] = k
    cov = d[:, :, None] * cov * d[:, None, :]
    lam, Q = np.linalg.eigh(cov)
    Q[np.linalg.det(Q) < 0, :, 0] *= -1
    batch.scales[rows] = np.sqrt(np.maximum(lam, 1e-14)).astype(np.float32)
    batch.quats[rows] = matrix_to_quat(Q).astype(np.float32)
    out = np.asarray(sig_y, np.float64).copy()
    out[todo] = np.sqrt(np.maximum(cov[:, 1, 1], 0.0))
    return out


def skin_fill_map(photo: np.ndarray, skin: np.ndarray, cfg: LipConfig | None = None) -> np.ndarray:
    """[S, S, 3] photo in [0, 1] and [S, S] bool skin pixels -> [S, S, 3] the skin colour everywhere: the
    skin pixels without their shadows and outliers (luma outside 0.7-1.4 x the skin's tone around them, a masked
    blur of cfg.tone_px, or of its median when that is 0; chromaticity off the median by more than 0.04), filled
    over the rest (surfaces.push_pull) and smoothed."""
    import cv2

    from gaussian_head_ros.core.reconstruct.surfaces import masked_blur, push_pull

    cfg = cfg or LipConfig()
    c = photo[skin].astype(np.float64)
    if len(c) < 50:
        return np.broadcast_to(np.median(c, 0) if len(c) else np.full(3, 0.5), photo.shape).astype(np.float32)
    luma = c @ LUMA
    med = np.median(luma)
    if cfg.tone_px > 0:  # against the skin's own tone around each pixel: a masked blur of the skin's luma, taken
        # a second time without the pixels darker than 0.7 x the first (a wide shadow does not pull its reference down)
        y = photo.astype(np.float32) @ LUMA.astype(np.float32)
        med = masked_blur(y, skin & (y > 0.7 * masked_blur(y, skin, cfg.tone_px)), cfg.tone_px)[skin].astype(np.float64)
    chroma = _chromaticity(c)
    ok = (luma > 0.7 * med) & (luma < 1.4 * med) & (np.linalg.norm(chroma - np.median(chroma, 0), axis=1)
                                                  < 0.04)
    clean = np.zeros(skin.shape, bool)
    clean[np.nonzero(skin)[0][ok], np.nonzero(skin)[1][ok]] = True
    fill = push_pull(photo.astype(np.float32), clean.astype(np.float32))
    return cv2.GaussianBlur(fill, (0, 0), cfg.skin_blur_px)
