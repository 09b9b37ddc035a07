"""A face's own mouth and brow expression, estimated from the shape of one set of landmarks (person-independent).

`neutralize(x)` returns the same face with the mouth closed, a smile relaxed and a held raise or frown of the
brows taken to the common rest height; `x - neutralize(x)` is
the expression it carries. One function serves both sides of the product, so they agree exactly:

- the reconstructor removes the photo's expression from the avatar's template (an open-mouth or smiling
  photo gives an avatar whose rest pose is a closed, relaxed mouth);
- the tracker starts its operator's neutral face from the first frame's `neutralize` and refines it
  slowly from frames with little expression (`NeutralEstimator`), so the control of the photo's own
  frame re-applies exactly what the reconstructor removed, and an operator who starts mid-sentence
  does not shift every later expression.

Method (geometry only, no learned model): handles on the mouth get target displacements, and a
harmonic interpolation on the face template (uniform graph Laplacian; the lips' opening is a hole, so
upper and lower lip move independently) spreads them over the lower face, with everything above the
nose base held fixed.

- Lips: where the inner upper and lower lip contours are apart, they are brought together. The upper
  lip takes the part of the gap by which it sits higher above the nose tip than a relaxed upper lip
  does (smiles and snarls lift it), the lower lip the rest. The jaw (lower lip and chin) turns up about
  the hinge `drive()` turns it about (so the jaw angle `drive()` reads from the chin is the one removed)
  as far as the chin lies below the relaxed range, never past closing the lips; the lower lip closes
  what the turn leaves (lips parted with the jaw still, as in a smile showing teeth), by stretching
  itself: its outer edge and the skin below turn with the jaw, up to LIP_STRETCH x the lip's height. Lips that
  were parted (a smile showing teeth, speech) stretch only up to a relaxed lip's height (RELAXED_UPPER_LIP_M,
  RELAXED_LOWER_LIP_M): beyond it each lip's outer edge follows its inner edge, so a parted photo's thin lips
  rest as relaxed lips, not stretched over the opening (`_stretch_allowance`, `_upper_lip_follows`; not a
  scream's, SCREAM_RATIO: the reconstructor re-textures those lips).
  Closed pair by pair, a wide-open mouth's lips meet along its upper lip's arch, a frown drawn in the closed
  lips (the reader put lp_d9_woman_turned's mouth corners on it, 4-5 mm low, and read no smile under any
  driver's); so the pairs meet along a relaxed lip line (`_lip_line_sag`), as far as the mouth is open.
- Smile: mouth corners further apart, higher (relative to the lips' centre) or further back than the
  range of relaxed faces are moved back past the edge of that range by as much again as they exceeded
  it, at most PAST_MEAN x (edge - mean) past the relaxed mean (`_beyond`: continuous, a face within the
  range is left as it is, a clear smile rests past the mean, which offsets the grin its colours keep);
  the inner lip contour follows them in proportion to its distance from
  the middle, and the skin just beyond each corner (CORNER_SKIN_*) moves with it (spread from the corners
  alone it moved about half as far, and a grinning photo's creases there still read as a smile at rest: the
  reader's smile on obama_official's / trump_official's rest render 0.71 / 0.84, with the skin 0.33 / 0.58).
  At the edge, obama_official's and trump_official's avatars still grinned under every clip; at the mean
  their rest renders still read smile 0.33 / 0.55 (PAST_MEAN). A mouth wider than the range smiles even
  when its corners are lifted less than the range's edge (a closed-lip smile): by its width's smile share
  (`_smile_share`) its corners go where a clear smile's go (SMILE_CORNER_DROP_M).
  A mouth open wider than OPEN_MEAN_UP_TO_M goes less far (to the edge only from OPEN_EDGE_ONLY_M on).
  Frown: corners lower than that range are raised the same way, at most to the mean (lp_d8_man_glasses'
  photo: 4.7 mm below the lips' centre; its avatar kept the frown under every clip).
  Pucker (or lips pressed together): corners nearer each other than that range are moved out to it
  (tpsmm_driving's "oo" frames: 28-42 mm, with the lips closed and the jaw up).
  Lopsided: corners that smile or frown with one higher than the other by more than relaxed faces' tilt
  (MAX_CORNER_TILT_M) are levelled as far again (`_beyond`); a relaxed face's own tilt is left (`_tilt_share`).
- Pout: closed lips that meet higher below the nose tip than a relaxed upper lip sits (the chin's muscle pushing
  the lower lip up and it the upper, lp_d8_man_glasses' photo: 29.5 mm) go down to that range's edge, as an open
  mouth's lifted upper lip does (`pout_push`), the whole mouth at once (`_pout_spread`: the chin and jaw line held),
  unless the corners smile (a closed smile lifts its lips: its own rules take it).

- Brows: every rest takes the brows to one height above the eye corners, REST_BROW_HEIGHT_M (`brow_excess`); the
  forehead and the strip down to the lids follow harmonically, with the eyes' contours, the face's outline, the
  rigid landmarks and everything below the eyes held (`_brow_spread`); a lift of brows held below
  MIN_BROW_HEIGHT_M - LID_LIFT_FROM_M (14.5 mm: a hooded lid) takes the upper lids' margins along by
  LID_WITH_BROW_LIFT of its part from there (`hooded_brow_lift`: the hooded lid uncovered). So a photo's
  raised or furrowed brows are not the avatar's rest, and an operator who holds a frown or a raise (lp_d18:
  FaceLandmarker's browDown 0.34 on every frame; tpsmm_driving: browInnerUp 0.39) drives it as one: with the
  operator's own brows as the neutral, the avatar's brows stayed where the reader's brow scores are all ~0 and its
  brow reading was the crosstalk of the mouth, lids and head pitch (astronaut_eileen_collins x lp_d18: r -0.52).
- Lids (`squint_of`, the reconstructor's only, not part of `neutralize`): a broad smile's squint rests with the lids
  opened towards REST_LID_OPENING (the tracker's lid ratios are against the operator's own usual opening).

The relaxed ranges are in metres of the canonical head (outer eye corners 0.09 m apart). They were
measured here with MediaPipe's FaceLandmarker as the judge of "relaxed" (jawOpen < 0.06, smile < 0.1):
77 frames of the four ../shared driving clips and three neutral portraits: mouth width (61-291)
49.8 +- 3.1 mm (smiles > 0.6: 63.8), corner height above the lips' centre 1.5 +- 1.7 mm (8.0), corner
depth behind the lips' centre 13.4 +- 0.7 mm (16.1), inner upper lip below the nose tip 34.8 +- 2.3 mm
(28.1), chin below the nose tip 78.2 +- 3.1 mm (correlation with jawOpen over all 341 frames: 0.78).
Each limit sits about one standard deviation beyond the mean, so a relaxed face is left (nearly) as it
is and only clear expressions are removed (a smile or frown down to the mean); the chin's only a quarter
of one (a jaw left open in the neutral would shift every later jaw reading).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.control import arkit_values
from gaussian_head_ros.core.deform import (LID_LOWER, LID_UPPER, DriveConfig, axis_angle_x, brow_rows, jaw_pivot,
                                           smoothstep)
from gaussian_head_ros.core.lip_margin import lips_height

LIP_UPPER_INNER, LIP_LOWER_INNER, LIP_LOWER_OUTER = lmk.LIP_UPPER_INNER, lmk.LIP_LOWER_INNER, lmk.LIP_LOWER_OUTER
LIP_CORNERS_INNER = (lmk.MOUTH_CORNER_R_IN, lmk.MOUTH_CORNER_L_IN)
LIP_CORNERS_OUTER = (lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L)
UPPER_LIP_MID, LOWER_LIP_MID, CHIN = lmk.UPPER_LIP_IN, lmk.LOWER_LIP_IN, lmk.CHIN
JAW_POINTS = lmk.JAW_LINE
NOSE_TIP, NOSE_BASE, NUM_MESH = lmk.NOSE_TIP, lmk.NOSE_BASE, lmk.NUM_MESH

# Relaxed-face limits (see the module docstring), metres of the canonical head.
MAX_MOUTH_WIDTH_M = 0.0525  # outer corners 61-291
MIN_MOUTH_WIDTH_M = 0.0467  # ... and at least this (a pucker or pressed lips narrow it; mean - 1 sd of the relaxed)
MIN_CORNER_DROP_M = -0.0030  # corners' height below the lips' centre (negative: above)
MAX_CORNER_DROP_M = 0.0002  # ... and at most this far below it (a frown's corners, mean - 1 sd of the relaxed)
MAX_CORNER_DEPTH_M = 0.0141  # corners behind the lips' centre
MIN_UPPER_LIP_DROP_M = 0.0315  # inner upper lip below the nose tip (an open mouth's lifted upper lip and a pout's
# closed lips are taken down to it, `handle_targets`, `pout_push`)
MAX_CHIN_DROP_M = 0.0790  # chin (152) below the nose tip
MAX_LIP_SAG_M = 0.001  # closed lips meet at most this far below the relaxed lip line (`_lip_line_sag`)
# ... for lips open this far (lip gap) or more; closed lips are left (handle_targets). Only past OPEN_MEAN_UP_TO_M
# (15 mm) before: tpsmm_driving's and sadtalker's first frames (8.7 / 8.6 mm open) closed along their upper lips'
# arch, and the operators' neutrals (frame 0's `neutralize`) held the inner lip's ends 1.2 / 2.3 mm below its middle,
# where their closed frames hold them 1.3-2.3 mm above (lp_d0's, lp_d18's relaxed lips: 0.5-0.7 above); every
# closed-lip frame of tpsmm then lifted every avatar's corners ~3 mm against the middle, a grin under its "oo"
# (pucker22). With this: -0.5 / +0.7 mm.
LIP_LINE_OPEN_M = 0.005
LIP_STRETCH = 0.5  # the lower lip takes its own closing up to this fraction of its height (handle_targets)
# ... and, lips parted (smoothstep(*PARTED_GAP_M, the middle's gap)), each lip only up to a relaxed lip's height at
# the middle (`_stretch_allowance`): beyond it the lip's outer edge follows its inner edge (`handle_targets` for the
# lower lip, `_upper_lip_follows` for the upper). A parted photo's lips are thin, pulled back over the teeth, and
# closed by stretching they rested taller than any relaxed lip, a still-open mouth to the reader (template upper /
# lower lip at the middle, photo -> rest, mm: astronaut_eileen_collins 4.4 / 7.6 -> 6.9 / 11.6, trump_official
# 3.1 / 7.0 -> 4.8 / 10.7, lp_d9_woman_turned's upper 3.4 -> 10.2; FaceLandmarker on the rest render, upper + lower
# over the photo's: astronaut 1.62, lp_d9 1.32; session 59). The relaxed heights: the middle of MediaPipe's relaxed
# lips (reconstruct/lips.py: 5-6 and 8-9 mm; the ../shared closed-lip portraits' templates 4.4-6.2 / 6.3-9.6 mm).
RELAXED_UPPER_LIP_M = 0.0055
RELAXED_LOWER_LIP_M = 0.0085
PARTED_GAP_M = (0.001, 0.003)  # lips this far apart (middle gap) are parted: closed lips (<= 0.06 mm) are left
# ... but not a scream's: lips apart this many times their own heights at the middle (the gap over
# lip_margin.lips_height) have their closed lips re-textured by the reconstructor (reconstruct/lips.py: LipConfig's
# open_from / open_full are these), lip colour painted up to a relaxed lip's height of the line where they meet on
# the stretched lips; the rule fades out over this range. With it lp_d9_woman_turned (4.9) rested with a shorter
# upper lip whose ragged edge and a red spot above it the reader read, under lp_d18's closed-lip jaw drop (frames
# 22-38), as lips 11.5-14.3 mm apart (jawOpen 0.40-0.51; 3.8-7.6 mm, 0.22-0.30 without; session 59). The ../shared
# parted photos: 0.84-1.09.
SCREAM_RATIO = (1.5, 3.0)
# The relaxed faces' means (module docstring): a smile or frown beyond a limit is taken past it towards the mean
# by as much again as it exceeds the limit, at most PAST_MEAN x (limit - mean) past the mean (`_beyond`).
MEAN_MOUTH_WIDTH_M = 0.0498
MEAN_CORNER_DROP_M = -0.0015
MEAN_CORNER_DEPTH_M = 0.0134
# How far past the relaxed mean a clear smile is taken (`_beyond`; a frown goes to the mean), in units of the
# limit's distance from the mean. A grinning photo's colours keep its grin where geometry cannot take it (raised
# cheeks, folds and creases beside the corners): with its corners only at the mean, trump_official's /
# obama_official's / astronaut_eileen_collins' rest render read smile 0.55 / 0.32 / 0.53 (the reader,
# FaceLandmarker), and under a driver who barely smiles (lp_d18's, tpsmm_driving's first 60 frames) their
# render's smile was that rest grin modulated by head pitch and the driver's pucker. One such distance past the
# mean (mouth 2.7 mm narrower than the relaxed mean, corners at the lips' centre's height at most): 0.30 / 0.15 /
# 0.34. Two (0.03 / 0.02 / 0.06 at rest) went too far: a moderate smile no longer showed (astronaut under
# sadtalker's smile 0.5 frames read 0.05-0.07; reader smile r 0.95 -> 0.86, jaw r 0.87 -> 0.72; 28 pairs: smile r
# 0.782 -> 0.774). The operator's neutral uses the same rule (NeutralEstimator's first frame), so the control of
# the photo's own frame still gives the photo back. Not for a frown: lp_d8_man_glasses' frowning photo, its
# corners taken two distances past the mean (4.3 mm above the lips' centre), read smile 0.14 under lp_d0's
# neutral frame (0.00 with them at the mean).
PAST_MEAN = 1.0
# Where a clear smile's corners go (PAST_MEAN past the relaxed mean height); a mouth wider than the relaxed range
# takes its corners there too, by its width's smile share (`_smile_share`), however little they are lifted: a
# closed-lip smile lifts them less than one standard deviation (business_person: 56.1 mm wide, corners 3.0 mm
# above the lips' centre), and with its width alone taken out its avatar rested with the smile (the reader,
# FaceLandmarker: smile 0.33 at rest; 0.04 with this, its smile curve under lp_d0's smile scaled by 0.1 / 0.2 /
# 0.3: 0.49 / 0.62 / 0.71 -> 0.16 / 0.45 / 0.62).
SMILE_CORNER_DROP_M = MEAN_CORNER_DROP_M + PAST_MEAN * (MEAN_CORNER_DROP_M - MIN_CORNER_DROP_M)
# ... for lips that (nearly) meet or part in a smile: a mouth open wider than this (lip gap) still goes to the
# edge only, and fully so from OPEN_EDGE_ONLY_M on (the corners of a scream sit high above the lips' centre by
# the opening, not by a smile: lp_d9_woman_turned, gap 44 mm, read as a more open jaw when taken to the mean)
OPEN_MEAN_UP_TO_M = 0.015
OPEN_EDGE_ONLY_M = 0.025
# Lopsided corners: one corner higher than the other (relative to the lips' centre) by more than this is a one-sided
# frown, smile or purse, and the difference beyond it is taken back (`_beyond`: mirrored about the limit, at most to
# level corners). Relaxed faces are not level: FaceLandmarker-relaxed frames of the four ../shared clips (jawOpen <
# 0.06, smile / frown / shrug / pucker / mouthLeft / mouthRight < 0.1-0.15, 121 frames) have left minus right corner
# heights -0.46 +- 0.98 mm (per clip -1.46 .. +0.49 mm: each person's own asymmetry); the limit is their mean's
# size plus one standard deviation. lp_d8_man_glasses' pursed photo: +2.3 mm (the left corner lower).
MAX_CORNER_TILT_M = 0.0015
# Skin just beyond each outer corner (beside it, above-beside it), moved with the corners (`handle_targets`).
CORNER_SKIN_R, CORNER_SKIN_L = lmk.MOUTH_CORNER_SKIN_R, lmk.MOUTH_CORNER_SKIN_L


@functools.lru_cache(maxsize=1)
def _laplacian():
    """Uniform graph Laplacian of the face template (468 mesh vertices), scipy CSR."""
    import scipy.sparse as sp

    from gaussian_head_ros.core.reconstruct.template import template_faces

    f = np.asarray(template_faces(), np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e = np.unique(np.sort(e, 1), axis=0)
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(NUM_MESH, NUM_MESH)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    return (sp.diags(np.asarray(a.sum(1)).ravel()) - a).tocsr()


@functools.lru_cache(maxsize=64)
def _solver(known_bits: bytes):
    """The factorised Laplacian of the free vertices for one set of known (fixed or handle) vertices:
    (free indices, known indices, solve(rhs), coupling matrix). One face keeps one set: cached."""
    from scipy.sparse.linalg import splu

    known = np.unpackbits(np.frombuffer(known_bits, np.uint8))[:NUM_MESH].astype(bool)
    lap = _laplacian()
    free, kn = np.flatnonzero(~known), np.flatnonzero(known)
    lu = splu(lap[free][:, free].tocsc()) if free.size else None
    return free, kn, lu, lap[free][:, kn]


@functools.lru_cache(maxsize=1)
def _outline() -> np.ndarray:
    """Indices of the face template's outer border: its boundary loop that is not one of the eyes' or the mouth's
    holes (`template.boundary_loops`, `template.hole_loops`)."""
    from gaussian_head_ros.core.reconstruct.template import boundary_loops, hole_loops, template_faces

    holes = [set(h.tolist()) for h in hole_loops().values()]
    outer = [loop for loop in boundary_loops(np.asarray(template_faces())) if set(loop) not in holes]
    if len(outer) != 1:
        raise ValueError(f"the face template has {len(outer)} outer borders, expected 1")
    return np.sort(np.asarray(outer[0], np.int64))


def _turn_to_raise(r: np.ndarray, rise: float) -> float:
    """The closing turn (radians, >= 0, about x) that raises the point r [3] (relative to the hinge) by rise."""
    if rise <= 0.0:
        return 0.0
    rho = math.hypot(r[1], r[2])
    phi = math.atan2(r[1], -r[2])
    return max(0.0, phi - math.asin(float(np.clip((r[1] - rise) / max(rho, 1e-9), -1.0, 1.0))))


def _beyond(excess: float, limit_to_mean: float, past_mean: float = 0.0) -> float:
    """How far a measure `excess` (>= 0) past a relaxed limit is taken back: the excess, and as much again
    towards the relaxed mean, at most to the mean and `past_mean` x `limit_to_mean` (the limit's distance
    from the mean) beyond it. Continuous: a face at the limit stays as it is; a clear smile or frown is
    mirrored about the limit, at most to the mean (a smile left at the edge still read as one:
    obama_official/trump_official grinned under every clip), a smile further (PAST_MEAN)."""
    e = max(0.0, excess)
    return e + min(e, (1.0 + max(0.0, past_mean)) * max(0.0, limit_to_mean))


def _mean_share(x: np.ndarray) -> float:
    """How far (0..1) a smile or frown is taken past the relaxed edge towards the mean, by the lip gap of the
    canonical landmarks x: 1 up to OPEN_MEAN_UP_TO_M, 0 from OPEN_EDGE_ONLY_M on (module docstring)."""
    g_mid = max(float(x[LOWER_LIP_MID, 1] - x[UPPER_LIP_MID, 1]), 0.0)
    return float(np.clip((OPEN_EDGE_ONLY_M - g_mid) / (OPEN_EDGE_ONLY_M - OPEN_MEAN_UP_TO_M), 0.0, 1.0))


def _lip_line_sag(x: np.ndarray, y_meet: np.ndarray) -> np.ndarray:
    """[478|468, 3] canonical landmarks and [9] the heights (metres, y down) where the inner lip pairs
    (LIP_UPPER_INNER / LIP_LOWER_INNER) meet once closed -> [9] how far (>= 0) each meets below a relaxed lip line
    beyond MAX_LIP_SAG_M. The relaxed line: the parabola through the middle pair's meeting point and the inner
    corners (moved by the middle's closing), u^2 of the way to the corner on each side (u: the pair's offset from
    the middle over the corners' half-width). Closed and relaxed faces sag -0.9 .. +0.5 mm (the ../shared portraits
    and the clips' first frames); closed pair by pair, a wide-open mouth's pairs meet along its upper lip's arch:
    lp_d9_woman_turned's scream 8.6 / 8.9 mm below it next to the corners, obama_speech's 6.1 / 6.2 mm."""
    up, lo = np.asarray(LIP_UPPER_INNER), np.asarray(LIP_LOWER_INNER)
    mid = len(up) // 2
    closing = 0.5 * ((y_meet[mid] - x[up[mid], 1]) + (y_meet[mid] - x[lo[mid], 1]))
    cr, cl = x[LIP_CORNERS_INNER[0]], x[LIP_CORNERS_INNER[1]]
    xc, half = 0.5 * (cr[0] + cl[0]), max(0.5 * abs(cl[0] - cr[0]), 1e-6)
    u = np.clip((0.5 * (x[up, 0] + x[lo, 0]) - xc) / half, -1.0, 1.0)
    corner_y = np.where(u < 0, cr[1], cl[1]) + closing
    line = y_meet[mid] + (corner_y - y_meet[mid]) * u ** 2
    return np.maximum(0.0, y_meet - line - MAX_LIP_SAG_M)


def _smile_share(width: float) -> float:
    """How much (0..1) a mouth `width` (metres, outer corners) says it smiles: 0 within the relaxed range, 1 from
    one range's half-width (limit - mean) beyond its limit on (module docstring: a wide closed smile)."""
    return float(np.clip((width - MAX_MOUTH_WIDTH_M) / (MAX_MOUTH_WIDTH_M - MEAN_MOUTH_WIDTH_M), 0.0, 1.0))


def _tilt_share(drop: float, width: float) -> float:
    """How much (0..1) of a lopsided mouth's tilt beyond MAX_CORNER_TILT_M is expression, by the corners' mean
    `drop` below the lips' centre and the mouth's `width` (metres): 0 for corners within their relaxed height range
    (a relaxed face's tilt is its own: two_children_multiface, no smile or frown to the reader, tilts 2.0 mm),
    1 once they sit that range's width (MAX - MIN_CORNER_DROP_M) beyond it, or the mouth is a clear smile's width
    (`_smile_share`)."""
    out = max(MIN_CORNER_DROP_M - drop, drop - MAX_CORNER_DROP_M, 0.0) / (MAX_CORNER_DROP_M - MIN_CORNER_DROP_M)
    return float(min(1.0, max(out, _smile_share(width))))


def _parted_share(x: np.ndarray) -> float:
    """How parted (0..1) the lips of [478|468, 3] canonical landmarks x are: smoothstep over PARTED_GAP_M of their gap
    at the middle, times 1 - smoothstep over SCREAM_RATIO of that gap over their heights (`lip_margin.lips_height`)."""
    gap = max(float(x[LOWER_LIP_MID, 1] - x[UPPER_LIP_MID, 1]), 0.0)
    ratio = gap / max(lips_height(x), 1e-4)
    return float(smoothstep(*PARTED_GAP_M, gap) * (1.0 - smoothstep(*SCREAM_RATIO, ratio)))


def _stretch_allowance(height_m: float, relaxed_m: float, parted: float) -> float:
    """How far (a fraction of its own height, >= 0) a closing lip may stretch: LIP_STRETCH for closed lips, and as
    they part (`parted`, `_parted_share`) up to the relaxed height `relaxed_m` only (none for a lip already as tall),
    never beyond LIP_STRETCH; `height_m` the lip's height at the middle (metres)."""
    to_relaxed = float(np.clip(relaxed_m / max(height_m, 1e-6) - 1.0, 0.0, LIP_STRETCH))
    return (1.0 - parted) * LIP_STRETCH + parted * to_relaxed


def _upper_lip_follows(x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """[478|468, 3] canonical landmarks and [468, 3] the mouth's displacement as spread (`expression_of`) -> the upper
    lip's outer edge (lmk.LIP_UPPER_OUTER) as handles (indices [9], displacements [9, 3]) where the closing stretches
    the lip beyond its allowance (`_stretch_allowance`, RELAXED_UPPER_LIP_M): there the edge follows the inner lip's
    move less that allowance x the lip's height at its x, as far as the lips are parted (`_parted_share`); None
    where it stretches no further, and for closed lips and a scream's."""
    up, out = np.asarray(LIP_UPPER_INNER), np.asarray(lmk.LIP_UPPER_OUTER)
    parted = _parted_share(x)
    allow = _stretch_allowance(float(x[UPPER_LIP_MID, 1] - x[lmk.LIP_OUTER[15], 1]), RELAXED_UPPER_LIP_M, parted)
    order = np.argsort(x[up, 0])
    inner_y = np.interp(x[out, 0], x[up[order], 0], x[up[order], 1])
    inner_d = np.interp(x[out, 0], x[up[order], 0], d[up[order], 1])
    height = np.maximum(inner_y - x[out, 1], 0.0)
    follow = inner_d - allow * height  # the edge's move (y down) that keeps the lip within its allowance
    more = parted * np.maximum(follow - d[out, 1], 0.0)  # closed lips and a scream's: none
    if not np.any(more > 0.0):
        return None
    disp = d[out].copy()
    disp[:, 1] += more
    return out.astype(np.int64), disp


def handle_targets(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[478|468, 3] canonical landmarks (head frame, metres) -> (handle indices [H], displacements [H, 3])
    that take the mouth to its relaxed, closed shape; the last len(CORNER_SKIN_R + CORNER_SKIN_L) handles are
    the skin beside the corners (`expression_of` weighs them by `_mean_share`)."""
    x = np.asarray(x, np.float64)
    up = np.asarray(LIP_UPPER_INNER)
    lo = np.asarray(LIP_LOWER_INNER)
    jaw = np.asarray(JAW_POINTS)
    d_up = np.zeros((len(up), 3))
    # Lips: close the gap; the upper lip takes the part by which it is lifted above a relaxed upper lip,
    # the jaw (lower lip and chin, turning about the hinge `drive()` turns it about) the rest.
    gap = x[lo, 1] - x[up, 1]  # [9] y down: lower below upper = open
    g_mid = max(float(x[LOWER_LIP_MID, 1] - x[UPPER_LIP_MID, 1]), 0.0)
    lift = max(0.0, MIN_UPPER_LIP_DROP_M - float(x[UPPER_LIP_MID, 1] - x[NOSE_TIP, 1]))
    share = min(1.0, lift / g_mid) if g_mid > 1e-6 else 0.0
    d_up[:, 1] = share * np.maximum(gap, 0.0)
    pivot = jaw_pivot(x)
    chin_excess = max(0.0, float(x[CHIN, 1] - x[NOSE_TIP, 1]) - MAX_CHIN_DROP_M)  # a dropped jaw lowers the chin
    theta = min(_turn_to_raise(x[CHIN] - pivot, chin_excess),  # the jaw turns up until the chin is in range,
                _turn_to_raise(x[LOWER_LIP_MID] - pivot, (1.0 - share) * g_mid))  # not past closing the lips
    closed = np.einsum("ij,mj->mi", axis_angle_x(np.array([-theta]))[0], x[np.concatenate([lo, jaw])] - pivot)
    d_jaw = closed + pivot - x[np.concatenate([lo, jaw])]
    d_lo, d_chin = d_jaw[:len(lo)], d_jaw[len(lo):]
    # what the turn leaves of each pair's gap (or overlap beyond the one it had) the lower lip closes
    y_meet = x[up, 1] + d_up[:, 1] + np.minimum(gap, 0.0)
    # ... along a relaxed lip line, as far as the mouth is open (a wide-open mouth's pairs met along its upper lip's
    # arch: lp_d9_woman_turned's closed lips drew a frown; `_lip_line_sag`), fully from LIP_LINE_OPEN_M on; closed
    # lips (every clip's relaxed frames) are left as they were
    sag = _lip_line_sag(x, y_meet) * max(1.0 - _mean_share(x), min(1.0, g_mid / LIP_LINE_OPEN_M))
    y_meet -= sag
    d_up[:, 1] -= sag
    rest_lo = y_meet - x[lo, 1] - d_lo[:, 1]  # [9] the lower lip's own closing beyond the turn (<= 0: up)
    d_lo[:, 1] = y_meet - x[lo, 1]
    # The lower lip's own closing stays in the lip: its outer edge (and the skin below it) turns with the
    # jaw only, and follows the inner edge only beyond LIP_STRETCH x the lip's height. Spread harmonically
    # down to the chin, the closing stretched the skin between lip and chin upwards with the lip's (and an
    # open mouth's tongue's) colours: obama_speech at rest read as a still-open mouth (jawOpen 0.23, and the
    # reader's jaw r driven by lp_d0 was -0.8; 0.86 with this rule).
    lo_out = np.asarray(LIP_LOWER_OUTER)
    d_out = np.einsum("ij,mj->mi", axis_angle_x(np.array([-theta]))[0], x[lo_out] - pivot) + pivot - x[lo_out]
    order = np.argsort(x[lo, 0])
    own = np.interp(x[lo_out, 0], x[lo[order], 0], rest_lo[order])
    height = np.maximum(x[lo_out, 1] - np.interp(x[lo_out, 0], x[lo[order], 0], x[lo[order], 1]), 0.0)
    allow = _stretch_allowance(float(x[LIP_LOWER_OUTER[4], 1] - x[LOWER_LIP_MID, 1]), RELAXED_LOWER_LIP_M,
                               _parted_share(x))
    d_out[:, 1] += np.minimum(0.0, own + allow * height)
    centre = 0.5 * (x[UPPER_LIP_MID] + x[LOWER_LIP_MID])  # the lips' centre (as the limits were measured)
    closing = 0.5 * (d_up[4] + d_lo[4])  # how far closing moves it; the corners go along
    # Smile: corners back into the relaxed range.
    cr, cl = LIP_CORNERS_OUTER
    to_mean = _mean_share(x)
    width = float(x[cl, 0] - x[cr, 0])
    inward = 0.5 * (_beyond(width - MAX_MOUTH_WIDTH_M, to_mean * (MAX_MOUTH_WIDTH_M - MEAN_MOUTH_WIDTH_M),
                            PAST_MEAN)  # smile
                    - max(0.0, MIN_MOUTH_WIDTH_M - width))  # pucker: to the edge only
    corner = 0.5 * (x[cr] + x[cl])
    drop = float(corner[1] - centre[1])
    # A mouth wider than relaxed smiles, and its corners' lift belongs to that smile even within the relaxed
    # range: they go where a clear smile's go (SMILE_CORNER_DROP_M), by the width's smile share.
    raise_taken = max(_beyond(MIN_CORNER_DROP_M - drop, to_mean * (MEAN_CORNER_DROP_M - MIN_CORNER_DROP_M), PAST_MEAN),
                      to_mean * _smile_share(width) * max(0.0, SMILE_CORNER_DROP_M - drop))
    down = (closing[1] + raise_taken  # smile
            - _beyond(drop - MAX_CORNER_DROP_M, to_mean * (MAX_CORNER_DROP_M - MEAN_CORNER_DROP_M)))  # frown: to the mean
    forward = _beyond(float(corner[2] - centre[2]) - MAX_CORNER_DEPTH_M,
                      to_mean * (MAX_CORNER_DEPTH_M - MEAN_CORNER_DEPTH_M))
    # One corner lower than the other beyond the relaxed tilt, with corners that smile or frown: each corner takes
    # half the difference taken back.
    tilt = float(x[cl, 1] - x[cr, 1])  # > 0: the left corner lower
    level = _tilt_share(drop, width) * math.copysign(
        _beyond(abs(tilt) - MAX_CORNER_TILT_M, to_mean * MAX_CORNER_TILT_M), tilt)
    d_corner_r = np.array([inward, down + 0.5 * level, closing[2] - forward])
    d_corner_l = np.array([-inward, down - 0.5 * level, closing[2] - forward])
    # The inner contour follows the corners in proportion to its distance from the middle.
    xc = 0.5 * (x[LIP_CORNERS_INNER[0], 0] + x[LIP_CORNERS_INNER[1], 0])
    half = max(0.5 * abs(x[LIP_CORNERS_INNER[1], 0] - x[LIP_CORNERS_INNER[0], 0]), 1e-6)
    for idx, d in ((up, d_up), (lo, d_lo), (lo_out, d_out)):
        u = np.clip((x[idx, 0] - xc) / half, -1.0, 1.0)[:, None]
        smile_r, smile_l = d_corner_r - closing, d_corner_l - closing
        d += np.where(u < 0, -u, 0.0) ** 2 * smile_r + np.where(u > 0, u, 0.0) ** 2 * smile_l
    # The skin just beyond each corner goes with it (the corner's smile or frown move; the one beside it also
    # its share of the closing): spread harmonically from the corner alone, it moved about half as far, and a
    # smiling photo's creases there kept reading as a smile at rest (trump_official: template corners at the
    # relaxed mean, the reader's 0.16 IOD wider on the render).
    skin = [(d_corner_r if k == 0 else d_corner_r - closing) for k in range(len(CORNER_SKIN_R))] + \
        [(d_corner_l if k == 0 else d_corner_l - closing) for k in range(len(CORNER_SKIN_L))]
    idx = np.concatenate([up, lo, lo_out, jaw, LIP_CORNERS_INNER, LIP_CORNERS_OUTER, CORNER_SKIN_R, CORNER_SKIN_L])
    disp = np.concatenate([d_up, d_lo, d_out, d_chin, [d_corner_r, d_corner_l, d_corner_r, d_corner_l], skin])
    return idx.astype(np.int64), disp


def pout_push(x: np.ndarray, y_meet: float) -> float:
    """How far (metres, >= 0, y down) a pout's closed lips are taken down, from [478|468, 3] canonical landmarks x
    (head frame) and the height `y_meet` (metres, y down, head frame) where their middle pair meets once closed and
    relaxed by `handle_targets`: as far as that lies above the relaxed upper lip's range (MIN_UPPER_LIP_DROP_M below
    the nose tip), to the range's edge as an open mouth's lifted upper lip goes (`handle_targets`; an open mouth
    closes there at most and is left); none where the corners smile (lifted above the relaxed range, or the mouth
    wider, `_smile_share`: a closed smile lifts its lips and its own rules take it; business_person's lips meet
    28.2 mm below the nose tip). A pout (the chin's muscle pushing the lower lip up and it the upper:
    FaceLandmarker's mouthShrugLower / Upper 0.28 / 0.21 on lp_d8_man_glasses' photo, whose lips meet 29.5 mm below
    the nose tip, 3.1 sd above the relaxed faces' 35.3 +- 1.9 mm, the upper lip's outer edge 21.4 against
    29.4 +- 1.5) kept its lips that high on the avatar under every clip. Not past the edge: mirrored about it
    (`_beyond`, to 33.5 mm) the whole table's reader smile fell 0.8606 -> 0.8478, under its line (lp_d8's four
    pairs; pout22's report), at the edge 0.8586."""
    centre = 0.5 * (x[UPPER_LIP_MID] + x[LOWER_LIP_MID])
    cr, cl = LIP_CORNERS_OUTER
    lift = MIN_CORNER_DROP_M - float(0.5 * (x[cr, 1] + x[cl, 1]) - centre[1])  # corners above the relaxed range
    smile = max(_smile_share(float(x[cl, 0] - x[cr, 0])),
                float(np.clip(lift / (MEAN_CORNER_DROP_M - MIN_CORNER_DROP_M), 0.0, 1.0)))
    excess = MIN_UPPER_LIP_DROP_M - (float(y_meet) - float(x[NOSE_TIP, 1]))
    return (1.0 - smile) * max(0.0, excess)


def _pout_spread(fixed: np.ndarray, push: float) -> np.ndarray:
    """[NUM_MESH, 3] the displacement that moves the lips (every point of landmarks.LIPS, so the whole mouth: both
    lips' inner and outer edges and the corners) down by `push` (metres, y down, `pout_push`), spread harmonically
    over the skin around them with `fixed` ([NUM_MESH] bool: the nose base and above, the pose fit's points) and the
    chin and jaw line (JAW_POINTS: the jaw does not turn) held: the skin between the nose and the upper lip stretches,
    that between the lower lip and the chin gathers. Zeros for push 0 (a face that does not pout is left exactly)."""
    d = np.zeros((NUM_MESH, 3))
    if push <= 0.0:
        return d
    lips = np.asarray(lmk.LIPS)
    known = fixed.copy()
    known[lips] = True
    known[np.asarray(JAW_POINTS)] = True
    d[lips, 1] = push
    free, kn, lu, coupling = _solver(np.packbits(known).tobytes())
    if lu is not None:
        d[free] = lu.solve(-(coupling @ d[kn]))
    return d


def _canonical(x: np.ndarray) -> np.ndarray:
    """x as [478|468, 3] float64 canonical landmarks; raises ValueError for another shape or non-finite values."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or x.shape[0] < NUM_MESH or not np.all(np.isfinite(x)):
        raise ValueError(f"need [468|478, 3] finite landmarks, got {x.shape}")
    return x


def expression_of(x: np.ndarray) -> np.ndarray:
    """[478|468, 3] canonical landmarks (head frame, metres) -> [same, 3] the mouth and brow expression they
    carry: x - expression_of(x) is the same face with the mouth closed and relaxed and the brows within the relaxed
    range (`neutralize`). Zero between the eyes and the nose base, on the eyes' contours, the rigid landmarks and the
    irises. Raises ValueError for fewer than 468 or non-finite landmarks."""
    x = _canonical(x)
    idx, disp = handle_targets(x)
    fixed = x[:NUM_MESH, 1] <= x[NOSE_BASE, 1]  # the nose base and everything above it stay
    fixed[list(lmk.RIGID_LANDMARKS)] = True  # as do the landmarks the head pose is fitted to

    def spread(n: int) -> np.ndarray:  # the first n handles held, the rest of the face harmonic
        known = fixed.copy()
        known[idx[:n]] = True
        d = np.zeros((NUM_MESH, 3))
        d[idx[:n]] = disp[:n]
        free, kn, lu, coupling = _solver(np.packbits(known).tobytes())
        if lu is not None:
            d[free] = lu.solve(-(coupling @ d[kn]))
        return d

    # The corner skin held only where the smile goes to the mean (lips nearly closed); fading to the
    # corners alone by OPEN_EDGE_ONLY_M (a scream's corners: lp_d9_woman_turned's jaw read lower with it).
    def mouth() -> np.ndarray:
        share = _mean_share(x)
        d = spread(len(idx)) if share > 0.0 else 0.0
        if share < 1.0:
            d = spread(len(idx) - len(CORNER_SKIN_R) - len(CORNER_SKIN_L)) * (1.0 - share) + d * share
        return d

    d = mouth()
    follows = _upper_lip_follows(x, d)
    if follows is not None:  # a parted photo's upper lip stretched beyond a relaxed one's: its edge held, again
        idx, disp = np.concatenate([follows[0], idx]), np.concatenate([follows[1], disp])
        d = mouth()
    meet = 0.5 * (x[UPPER_LIP_MID, 1] + x[LOWER_LIP_MID, 1] + d[UPPER_LIP_MID, 1] + d[LOWER_LIP_MID, 1])
    d = d + _pout_spread(fixed, pout_push(x, meet))  # a pout's lips, pushed up, down
    d = d + _brow_spread(x, brow_excess(x))  # brows to the common rest height
    out = np.zeros_like(x)
    out[:NUM_MESH] = -d  # the expression is what neutralizing takes away
    return out


# Brows: their mean height above the eye corners (BROW_POINTS vs landmarks.EYE_CORNERS, metres of the canonical
# head). Measured here with FaceLandmarker as the judge: its brow scores are ~0 (browDown, browInnerUp, browOuterUp
# < ~0.15) between ~15.5 and ~19.5 mm, on the 9 ../shared portraits and the 4 clips' first 60 frames (13.2-13.7 mm:
# browDown 0.56-0.84, trump / both Obamas; 23.2-23.9 mm: browInnerUp 0.24-0.44, tpsmm_driving / lp_d9).
# Every rest (photo or operator) takes its brows to one height, the middle of that band, REST_BROW_HEIGHT_M
# (`brow_excess`), as a clear smile rests at the relaxed faces' mean: so the control carries the operator's brows
# as a height above that common rest and every avatar shows them at the operator's own height above its eyes. With
# a relaxed range (16.5-18.5 mm, brows within it left where they were) an avatar resting anywhere in it took an
# operator's held frown from its own height: astronaut_eileen_collins (17.1 mm) under lp_d18's frown (15.3 mm, the
# neutral at 16.5) came down to 15.9 mm, where FaceLandmarker reads no frown (browDown 0.05 +- 0.007 against the
# driver's 0.54 +- 0.10: reader brow r 0.44), and obama_speech (lifted to 16.5) stayed 2.5 mm below sadtalker's
# talking brows (18.2-19.3 mm, within the range: nothing sent) and read as frowning (browDown 0.30, r 0.36).
# MIN_BROW_HEIGHT_M stays the low edge of the relaxed band: only brows lifted from more than LID_LIFT_FROM_M below
# it (a hooded lid) take the upper lids along.
MIN_BROW_HEIGHT_M = 0.0165
REST_BROW_HEIGHT_M = 0.0175


# What `_brow_spread` moves by the whole of a raise: the brows and the mesh row below them, which on low brows lies
# on the hair's lower edge (with the brows alone, the hair below their lower contour stayed and the brows of
# obama_official / obama_speech came out a third thicker, smeared down, when taken up to the rest height). Not
# when lowering: that row lies 0.1-5 mm above the upper lid (lp_d9_woman_turned's, lowered 6.4 mm, would cross
# it); the strip below the brows then gathers between the brows and the lids (harmonic).
BROW_HANDLES = np.array(lmk.BROW_R + lmk.BROW_L + lmk.BROW_SKIN_R + lmk.BROW_SKIN_L)

# A lift of brows held below MIN_BROW_HEIGHT_M - LID_LIFT_FROM_M (14.5 mm) takes the upper lids' margins
# (deform.LID_UPPER) up by LID_WITH_BROW_LIFT of its part from there: the skin such a low brow pushes down over the
# lid (a hooded lid) goes up with the brow and uncovers the margin, so the eye opens a little. Held where they were
# (the eyes' contours fixed), a furrowed photo's squinted eyes rested as the same slits under brows lifted 3.3 mm
# (to the old relaxed range's edge; 4.3 mm to the rest height now), and
# FaceLandmarker read them as more closed (trump_official x tpsmm_driving, frame 0: eyeBlink 0.21 / 0.25 before the
# lift, 0.35 / 0.29 lifted; the lid gap's share of the eye's width in the reader's landmarks 0.199 / 0.185 before,
# 0.176 / 0.130 lifted). Judgements, as the brow band is: the whole free (harmonic) margin rose 0.8 of the lift,
# half the eye's gap again; an operator's light frown (lp_d18's 0.7-1.7 mm) is no hooded lid, and lifting its
# neutral's lids narrowed every avatar's eyes under it (its ratios are against that neutral). Not when lowering a raise.
# The part of the lift that uncovers the lid is `hooded_brow_lift`; the avatar carries the whole lift
# (GaussianAvatar.rest_brow_shift), and the driver lets a driven raise take such lids further
# (deform.lids_with_brow_raise).
LID_WITH_BROW_LIFT = 0.7
LID_LIFT_FROM_M = 0.002


def brow_height(x: np.ndarray) -> float:
    """[L >= 468, 3] canonical landmarks (head frame, y down, metres) -> the brows' mean height above the eye
    corners, metres (BROW_POINTS vs landmarks.EYE_CORNERS; > 0: brows above the corners)."""
    x = np.asarray(x, np.float64)
    return float(np.mean(x[list(lmk.EYE_CORNERS[0] + lmk.EYE_CORNERS[1]), 1]) - np.mean(x[BROW_POINTS, 1]))


def brow_excess(x: np.ndarray) -> float:
    """How far (metres, y down) the brows of canonical landmarks x are taken to the rest height
    REST_BROW_HEIGHT_M: > 0 lowers brows above it, < 0 lifts brows below it."""
    return brow_height(x) - REST_BROW_HEIGHT_M


def hooded_brow_lift(dy: float) -> float:
    """A rest brow shift dy (metres, y down, `brow_excess`: < 0 lifted) -> its part that uncovers a hooded lid
    (metres, <= 0): the lift from below MIN_BROW_HEIGHT_M - LID_LIFT_FROM_M (14.5 mm above the eye corners; brows
    held that low push skin over the lids); 0 for a light frown lifted or a raise lowered. The rest takes the upper
    lids up by LID_WITH_BROW_LIFT of it (`_brow_spread`), and the driver lets a driven brow raise, counted up to as
    much again, take them further (deform.lids_with_brow_raise, from GaussianAvatar.rest_brow_shift)."""
    return min(0.0, float(dy) + (REST_BROW_HEIGHT_M - MIN_BROW_HEIGHT_M) + LID_LIFT_FROM_M)


def _brow_spread(x: np.ndarray, dy: float) -> np.ndarray:
    """[NUM_MESH, 3] the displacement that moves the brows down by dy (metres; < 0: up; with the row below them,
    BROW_HANDLES, and the upper lids' margins by LID_WITH_BROW_LIFT of its hooded part, `hooded_brow_lift`, when up),
    spread harmonically over the forehead and the strip down to the lids, with the rest of the eyes' contours, the
    face's outline (the hairline), the pose fit's rigid points and everything below the eyes held."""
    d = np.zeros((NUM_MESH, 3))
    if dy == 0.0:
        return d
    hood = hooded_brow_lift(dy)
    if hood < 0.0:  # a brow lifted well up uncovers the margin of a hooded lid
        d[LID_UPPER, 1] = LID_WITH_BROW_LIFT * hood
    return _brow_move(x, dy, d)


def _brow_move(x: np.ndarray, dy: float, d: np.ndarray | None = None) -> np.ndarray:
    """[NUM_MESH, 3] the displacement that moves the brows of template / landmarks x [>= 468, 3] down by dy (metres,
    y down; < 0: up), with the row below them (BROW_HANDLES) when up, spread harmonically (`_brow_fill`); d: rows
    held as they are set there besides (None: none)."""
    d = np.zeros((NUM_MESH, 3)) if d is None else d
    handles = _brow_handles(dy)
    d[handles, 1] = dy
    return _brow_fill(d, _below_eyes(x), handles)


def _brow_handles(dy: float) -> np.ndarray:
    """The rows `_brow_move` holds at a rest brow shift dy (metres, y down): lifted, the brows and the row below them
    (BROW_HANDLES); lowered (or none), the brows alone (BROW_POINTS: the skin below them gathers, free)."""
    return BROW_HANDLES if dy < 0.0 else BROW_POINTS


def _below_eyes(x: np.ndarray) -> np.ndarray:
    """[NUM_MESH] bool: the points of template / landmarks x [>= 468, 3] lower (larger y) than every point of both
    eyes' contours."""
    v = np.asarray(x, np.float64)[:NUM_MESH]
    return v[:, 1] > float(np.max(v[list(lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L), 1]))


# A smile's squint. A broad smile narrows the eyes (the cheeks push the lower lids up, the upper lids come down), and
# the rest pose took the smile out of the mouth only: obama_official's and trump_official's avatars looked at the
# robot's user through their photos' squint with a relaxed mouth (FaceLandmarker on the photos: eyeBlink 0.20 / 0.36,
# eyeSquint 0.60 / 0.75; the seven other portraits' eyeBlink <= 0.12). The lids' opening (`lid_opening`: the centre
# pairs' gap over the eye corners' distance, the tracker's canonical landmarks) of those seven is 0.316-0.377, the
# four ../shared clips' medians 0.289-0.334 (lp_d18's 10th percentile 0.255, tpsmm's 0.182: blinks), obama_official's
# 0.224 and trump_official's 0.196. A face whose mouth smiles broadly (wider than SQUINT_SMILE_WIDTH_M) and whose
# lids are narrower than REST_LID_OPENING rests with its lids opened to it, as far as it smiles (`squint_of`); a
# face with narrow eyes and no broad smile keeps them (they are the person's: lp_d18's frame 0, 0.273 with a 57.9 mm
# mouth, is left). The upper lids alone (up to 0.30) moved FaceLandmarker's eyeBlink on trump_official's rest render
# 0.27 -> 0.22 and its eyeSquint not at all: a smile pushes the lower lids up. Reconstructor only: the tracker's lid
# ratios are against the operator's own usual opening (tracking.py), which a squint at the start does not fix.
REST_LID_OPENING = 0.30
SQUINT_LOWER_SHARE = 0.5  # the share of the opening the lower lids take (down; the upper lids take the rest)
# Mouth widths (outer corners, metres) from which a smile narrows the eyes, and from which fully: the relaxed mean
# plus 3 standard deviations (49.8 + 3 x 3.1 mm) and the mean width of FaceLandmarker's smiles > 0.6 (module notes).
SQUINT_SMILE_WIDTH_M = (0.0591, 0.0638)


def lid_opening(x: np.ndarray) -> float:
    """[L >= 468, 3] canonical landmarks (head frame, metres) -> the lids' opening: `lid_gap` over the mean distance
    between each eye's corners (landmarks.EYE_INNER_* / EYE_OUTER_*), unitless (~0.3 for open, relaxed eyes)."""
    x = np.asarray(x, np.float64)
    width = np.mean([np.linalg.norm(x[a] - x[b]) for a, b in ((lmk.EYE_INNER_R, lmk.EYE_OUTER_R),
                                                               (lmk.EYE_INNER_L, lmk.EYE_OUTER_L))])
    return lid_gap(x) / max(float(width), 1e-9)


def squint_of(x: np.ndarray) -> np.ndarray:
    """[478|468, 3] canonical landmarks (head frame, metres) -> [same, 3] the squint a broad smile holds in the lids
    (module notes at REST_LID_OPENING): x - expression_of(x) - squint_of(x) is the rest with each lid
    pair (deform.LID_UPPER / LID_LOWER) opened so that its gap grows by REST_LID_OPENING / `lid_opening` (at most
    deform.DriveConfig.lid_max_open) times the smile's share (the mouth's width within SQUINT_SMILE_WIDTH_M): the
    lower lid down by SQUINT_LOWER_SHARE of the growth, the upper up by the rest less what the rest's lift of a
    hooded lid gives it (`_brow_spread`); spread harmonically over the strip up to the brows and the cheeks down to
    the nose base (the brows' handles, the rest of the eyes' contours, the face's outline and the pose fit's rigid
    points held). Zeros when the lids are that open or the mouth does not smile broadly. Raises ValueError as
    `expression_of` does."""
    x = _canonical(x)
    out = np.zeros_like(x)
    lo, hi = SQUINT_SMILE_WIDTH_M
    share = float(np.clip((np.linalg.norm(x[lmk.MOUTH_CORNER_R] - x[lmk.MOUTH_CORNER_L]) - lo) / (hi - lo), 0.0, 1.0))
    opening = lid_opening(x)
    if share <= 0.0 or opening >= REST_LID_OPENING:
        return out
    grow = share * (min(REST_LID_OPENING / max(opening, 1e-9), DriveConfig().lid_max_open) - 1.0)
    gaps = np.maximum(x[LID_LOWER, 1] - x[LID_UPPER, 1], 0.0)  # [14] y down: each pair's gap
    dy = brow_excess(x)
    d = np.zeros((NUM_MESH, 3))
    lower = SQUINT_LOWER_SHARE * grow * gaps
    d[LID_UPPER, 1] = np.minimum(0.0, -(grow * gaps - lower) - LID_WITH_BROW_LIFT * hooded_brow_lift(dy))
    d[LID_LOWER, 1] = lower
    v = x[:NUM_MESH]
    held = v[:, 1] >= v[NOSE_BASE, 1]  # the nose base and everything below it: the cheeks between take the lower lid's
    out[:NUM_MESH] = -_brow_fill(d, held, _brow_handles(dy))  # the squint is what the rest takes away
    return out


# Blendshape-only controls (a third-party tracker, a hand-written controls file: ARKit coefficients and no dense
# expression) move the brows and the jaw as a tracked expression does (`blendshape_expression`). The brows' mean rise
# (BROW_POINTS, metres) per unit of each coefficient: a least-squares fit of the tracker's expression against
# FaceLandmarker v2's blendshapes on the 4 ../shared clips' first 78-216 frames (663 frames; browInnerUp 0-0.9,
# browOuterUp 0-0.71, browDown 0-0.67; r 0.95, with an intercept of 1.8 mm, the operators' own brow height).
BROW_RISE_PER_INNER_UP_M = 0.0085
BROW_RISE_PER_OUTER_UP_M = 0.0012  # (mean of browOuterUpLeft / Right)
BROW_DROP_PER_DOWN_M = 0.0063  # (mean of browDownLeft / Right)
# The jaw of such a control moves the lower lip, the chin and the jaw line as a tracked jaw does: per unit of jawOpen
# each group's midline moves by JAW_PER_JAW_OPEN_M (metres, x, y down, z into the head), a handle off the midline by s
# mouth half-widths (squared) by (1 - k s) of it (the mouth's corners drop less), the upper lip and everything from
# the nose base up held, the cheeks between harmonic (the lips' opening is a hole: the lips part). A least-squares fit
# of the tracker's expression against FaceLandmarker v2's jawOpen, mean smile and mouthPucker on the 4 ../shared
# clips' first 78-120 calibrated frames (382 frames, jawOpen 0-0.88): the lower lip's midline (14, 17) 40.1 mm down
# and 9.3 back per unit (y r 0.95), the chin's (152, 175, 199, 200) 20.4 down and 13.3 back (r 0.92); k 0.5 / 0.2
# (residual 1.6 / 1.5 mm). Before, they turned about the driver's hinge (`jaw_pivot`, the head's origin) by
# jaw_per_jaw_open x jawOpen: at jawOpen 1 the chin went 13.5 mm down and 33 back, the lower lip 21 down and 20 back
# into the mouth, which showed a dark red hole with no lower teeth (issue 11, eyes35).
JAW_HANDLES = np.array(sorted(set(lmk.LIP_LOWER_INNER + lmk.LIP_LOWER_OUTER + lmk.CHIN_REGION + lmk.JAW_LINE)))
# The lips of such a control follow its smile and pucker: the mouth corners (outer and inner) and the lips' midline
# (upper: 0, 13; lower: 14, 17) move by these displacements per unit of each coefficient, metres, (x away from the
# face's midline, y down, z into the head); the cheeks and the rest of the lips follow harmonically, the nose base up,
# the outline and the pose fit's rigid points held. The same fit as the brows' (663 frames, the tracked expression
# against mean(mouthSmileLeft, Right) 0-0.92, mouthPucker 0-1.0 and jawOpen together; corners r 0.94 / 0.96 / 0.87 in
# x / y / z, the midlines' y r 0.83-0.95 and z 0.60-0.84; their x, r < 0.66, left out); each corner follows its own
# side's smile (the fit's own-side slope 8.1-10.9 mm up, the other side's 0.6-3.6 mm). A smile draws the corners
# out, up and back and lifts the upper lip; a pucker draws them in and forward and closes the lips forward.
JAW_LIP_HANDLES = np.array(sorted(set(lmk.LIP_LOWER_INNER + lmk.LIP_LOWER_OUTER)))
JAW_PER_JAW_OPEN_M = {"lip": ((0.0, 0.0401, 0.0093), 0.5), "chin": ((0.0, 0.0204, 0.0133), 0.2)}  # (midline, k)
MOUTH_CORNERS = ((lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_R_IN), (lmk.MOUTH_CORNER_L, lmk.MOUTH_CORNER_L_IN))
UPPER_LIP_MIDLINE, LOWER_LIP_MIDLINE = (0, 13), (14, 17)
MOUTH_HANDLES = np.array(sorted(set(sum(MOUTH_CORNERS, ()) + UPPER_LIP_MIDLINE + LOWER_LIP_MIDLINE)))
MOUTH_PER_BLENDSHAPE_M = {  # handle group -> (per unit of smile, per unit of mouthPucker)
    "corner": ((0.0097, -0.0116, 0.0078), (-0.0072, 0.0045, -0.0051)),
    "upper": ((0.0, -0.0081, 0.0022), (0.0, 0.0063, -0.0017)),
    "lower": ((0.0, -0.0005, 0.0052), (0.0, -0.0022, -0.0046)),
}


def blendshape_brow_shift(names, values) -> float:
    """ARKit blendshape names [B] and values [B] (each clipped to 0..1; absent ones 0) -> the brows' shift they
    say (metres, y down; < 0: raised): BROW_DROP_PER_DOWN_M x mean(browDownLeft, browDownRight)
    - BROW_RISE_PER_INNER_UP_M x browInnerUp - BROW_RISE_PER_OUTER_UP_M x mean(browOuterUpLeft, browOuterUpRight)."""
    b = dict(zip(list(names), arkit_values(values).tolist()))
    mean = lambda a, c: 0.5 * (b.get(a, 0.0) + b.get(c, 0.0))  # noqa: E731
    return (BROW_DROP_PER_DOWN_M * mean("browDownLeft", "browDownRight")
            - BROW_RISE_PER_INNER_UP_M * b.get("browInnerUp", 0.0)
            - BROW_RISE_PER_OUTER_UP_M * mean("browOuterUpLeft", "browOuterUpRight"))


# A control that says only mouth_open (neither an expression that moves the chin nor jawOpen: an audio-driven or
# hand-written sender, the reconstruction preview's open-mouth view) opens the jaw as jawOpen = mouth_open / this.
# Measured (session 35, ros35): the tracker's mouth_open is 1.7-2.1 x FaceLandmarker v2's jawOpen on the ../shared
# clips' frames (its wide-open frames, jawOpen > 0.6, read 1.0-2.0).
MOUTH_OPEN_PER_JAW_OPEN = 1.9


def jaw_open_of_mouth_open(mouth_open: float) -> float:
    """The ARKit jawOpen (0..1) of a control that says only mouth_open (msg/FaceControl.msg's measure: (inner-lip gap
    + 2 x the chin's drop) / the eye centres' distance, >= 0): mouth_open / MOUTH_OPEN_PER_JAW_OPEN, read within 0..1
    as a jawOpen is (`control.arkit_values`)."""
    return float(arkit_values([float(mouth_open) / MOUTH_OPEN_PER_JAW_OPEN])[0])


def leaves_still(expression: np.ndarray, rows) -> bool:
    """Whether an expression [L, 3] (metres; may be empty) leaves the template rows `rows` (indices) still: it does
    not reach them, or holds exactly 0 there (a blendshape-only or mouth_open-only control; a tracked one never is)."""
    ex = np.asarray(expression)
    return ex.shape[0] <= int(np.max(rows)) or not np.any(ex[rows])


def jaw_drop_spread(x: np.ndarray, jaw_open: float) -> np.ndarray:
    """[NUM_MESH, 3] the displacement (metres, head frame, y down) that opens the jaw of template x [>= 468, 3] by
    jaw_open (ARKit jawOpen, read within 0..1: `control.arkit_values`): JAW_HANDLES moved by JAW_PER_JAW_OPEN_M (the lower lip's handles by
    "lip", the chin's and the jaw line's by "chin", each (1 - k s) of its midline's move, s the handle's squared
    distance from the lips' midline in mouth half-widths, at least 0), the upper lips (inner and outer), the rigid
    landmarks and everything from the nose base up held, the rest harmonic."""
    v = np.asarray(x, np.float64)[:NUM_MESH]
    d = np.zeros((NUM_MESH, 3))
    j = float(arkit_values([jaw_open])[0])
    if j == 0.0:
        return d
    mid_x = float(np.mean(v[list(UPPER_LIP_MIDLINE + LOWER_LIP_MIDLINE), 0]))
    half = 0.5 * (abs(v[lmk.MOUTH_CORNER_R, 0] - mid_x) + abs(v[lmk.MOUTH_CORNER_L, 0] - mid_x))
    s = ((v[JAW_HANDLES, 0] - mid_x) / max(half, 1e-6)) ** 2
    lip = np.isin(JAW_HANDLES, JAW_LIP_HANDLES)
    (lip_m, lip_k), (chin_m, chin_k) = JAW_PER_JAW_OPEN_M["lip"], JAW_PER_JAW_OPEN_M["chin"]
    share = np.clip(1.0 - np.where(lip, lip_k, chin_k) * s, 0.0, None)
    d[JAW_HANDLES] = j * share[:, None] * np.where(lip[:, None], np.asarray(lip_m), np.asarray(chin_m))
    known = v[:, 1] <= v[NOSE_BASE, 1]
    known[list(lmk.RIGID_LANDMARKS) + list(lmk.LIP_UPPER_INNER + lmk.LIP_UPPER_OUTER)] = True
    known[JAW_HANDLES] = True
    free, kn, lu, coupling = _solver(np.packbits(known).tobytes())
    if lu is not None:
        d[free] = lu.solve(-(coupling @ d[kn]))
    return d


def blendshape_expression(x: np.ndarray, expression: np.ndarray, names, values):
    """The driver's expression for a control (deform.control_inputs): expression [L, 3] (metres, head frame; may be
    empty) with each part it leaves still taken from the control's ARKit blendshapes (names [B], values [B], read
    within 0..1: `control.arkit_values`): the jaw (its chin row, lmk.CHIN, absent or 0) by `jaw_drop_spread` of
    jawOpen, the brows (BROW_POINTS absent or all 0) by `blendshape_brow_shift`, the lips (MOUTH_HANDLES absent or
    all 0) by `blendshape_lip_handles` spread by `lip_spread` (smile, pucker). x [V >= 468, 3] the rest
    template. -> [max(L, V), 3] float64 (the parts added), or `expression` itself when there is nothing to add.
    Without it a blendshape-only control (a third-party tracker, a hand-written controls file) opened only the
    mouth's interior behind closed lips and never moved the brows (eyes33, s33)."""
    ex = np.asarray(expression, np.float64)
    names = list(names)
    if not lmk.has_mediapipe_topology(np.shape(x)[0]) or not names:
        return expression
    jaw = float(arkit_values(values)[names.index("jawOpen")]) \
        if "jawOpen" in names and leaves_still(ex, [lmk.CHIN]) else 0.0
    dy = blendshape_brow_shift(names, values) if leaves_still(ex, BROW_POINTS) else 0.0
    lips = blendshape_lip_handles(x, names, values) if leaves_still(ex, MOUTH_HANDLES) else None
    if jaw == 0.0 and dy == 0.0 and lips is None:
        return expression
    out = np.zeros((max(ex.shape[0], np.shape(x)[0]), 3))
    out[:ex.shape[0]] = ex
    out[:NUM_MESH] += jaw_drop_spread(x, jaw) + (_brow_move(x, dy) if dy != 0.0 else 0.0)
    if lips is not None:
        out[:NUM_MESH] += lip_spread(x, lips)
    return out


def blendshape_lip_handles(x: np.ndarray, names, values) -> np.ndarray | None:
    """[len(MOUTH_HANDLES), 3] the displacement (metres, head frame, y down, z into the head) of MOUTH_HANDLES that
    ARKit blendshapes names [B] / values [B] (each clipped to 0..1; absent ones 0) say by MOUTH_PER_BLENDSHAPE_M:
    each side's corners by its own mouthSmileLeft / mouthSmileRight (the subject's left: MediaPipe's and ARKit's
    naming; the fit's own-side slope) and mouthPucker, the midlines by the mean smile and mouthPucker; x [>= 468, 3]
    the rest template (which side each corner is on). None when the smile and the pucker are 0."""
    b = dict(zip(list(names), arkit_values(values).tolist()))
    smile = (b.get("mouthSmileRight", 0.0), b.get("mouthSmileLeft", 0.0))  # the corners' order: R, L
    pucker = b.get("mouthPucker", 0.0)
    if not any(smile) and pucker == 0.0:
        return None
    v = np.asarray(x, np.float64)
    mid_x = float(np.mean(v[list(UPPER_LIP_MIDLINE + LOWER_LIP_MIDLINE), 0]))
    rows = {int(r): i for i, r in enumerate(MOUTH_HANDLES)}
    d = np.zeros((len(MOUTH_HANDLES), 3))
    (cs, cp), (us, up), (ls, lp) = (np.asarray(MOUTH_PER_BLENDSHAPE_M[k], np.float64)
                                    for k in ("corner", "upper", "lower"))
    for side, pair in enumerate(MOUTH_CORNERS):
        for r in pair:
            out = np.array([np.sign(v[r, 0] - mid_x), 1.0, 1.0])  # x away from the midline
            d[rows[r]] = out * (smile[side] * cs + pucker * cp)
    mean_smile = 0.5 * (smile[0] + smile[1])
    for group, (s, p) in ((UPPER_LIP_MIDLINE, (us, up)), (LOWER_LIP_MIDLINE, (ls, lp))):
        for r in group:
            d[rows[r]] = mean_smile * s + pucker * p
    return d


def lip_spread(x: np.ndarray, handles: np.ndarray) -> np.ndarray:
    """[NUM_MESH, 3] the displacement that moves MOUTH_HANDLES of template x [>= 468, 3] by handles
    [len(MOUTH_HANDLES), 3] (metres), spread harmonically over the lips, the cheeks and the chin, with everything
    from the nose base up, the face's outline, the eyes' contours and the pose fit's rigid points held."""
    v = np.asarray(x, np.float64)[:NUM_MESH]
    d = np.zeros((NUM_MESH, 3))
    d[MOUTH_HANDLES] = handles
    known = v[:, 1] <= v[NOSE_BASE, 1]
    known[_outline()] = True
    known[list(lmk.RIGID_LANDMARKS + lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L)] = True
    known[MOUTH_HANDLES] = True
    free, kn, lu, coupling = _solver(np.packbits(known).tobytes())
    if lu is not None:
        d[free] = lu.solve(-(coupling @ d[kn]))
    return d


def _brow_fill(d: np.ndarray, below: np.ndarray, handles: np.ndarray) -> np.ndarray:
    """[NUM_MESH, 3] d with its held rows set -> d with the others filled harmonically (in place): held are
    `below` ([NUM_MESH] bool: below the eyes for a brow shift, from the nose base down for `squint_of`), the eyes'
    contours, the face's outline (the hairline), the pose fit's rigid points and `handles` (what `_brow_spread`
    holds)."""
    known = below.copy()
    known[list(lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L)] = True
    known[_outline()] = True
    known[list(lmk.RIGID_LANDMARKS)] = True
    known[handles] = True
    free, kn, lu, coupling = _solver(np.packbits(known).tobytes())
    if lu is not None:
        d[free] = lu.solve(-(coupling @ d[kn]))
    return d


@functools.lru_cache(maxsize=2)
def template_brow_shift(lifted: bool) -> np.ndarray:
    """[NUM_MESH, 3] float64, read-only: `_brow_spread`'s displacement for a rest shift of the brows 1 down (y
    down; times a shift in metres), on the face template's connectivity alone, with no face's geometry: what
    the compact expression code (expression_codec CODEC_LAPLACIAN_V5) carries an operator's brow height above
    the common rest by, every frame's expression holding it (`REST_BROW_HEIGHT_M`). `lifted`: the handles of a
    rest that lifted low brows (BROW_HANDLES; such an operator's expression holds them lowered), else those of
    one that lowered high brows (BROW_POINTS). "Below the eyes", which `_brow_spread` takes from the face's
    geometry, is here the points fewer mesh edges from the lips than from the brows. No hooded-lid lift (the
    code's lid columns carry the lids)."""
    from scipy.sparse.csgraph import dijkstra

    graph = _laplacian() != 0
    hops = [dijkstra(graph, unweighted=True, indices=np.ravel(src), min_only=True) for src in (lmk.LIPS, BROW_POINTS)]
    handles = BROW_HANDLES if lifted else BROW_POINTS
    d = np.zeros((NUM_MESH, 3))
    d[handles, 1] = 1.0
    d = _brow_fill(d, hops[0] < hops[1], handles)
    d.setflags(write=False)
    return d


def neutralize(x: np.ndarray) -> np.ndarray:
    """[478|468, 3] canonical landmarks -> the same face with the mouth closed and relaxed and the brows at
    REST_BROW_HEIGHT_M (see module notes)."""
    x = np.asarray(x, np.float64)
    return x - expression_of(x)


def expression_strength(expression: np.ndarray) -> float:
    """[L, 3] an expression (as `expression_of` gives) -> its largest displacement, metres."""
    e = np.asarray(expression, np.float64)
    return float(np.sqrt(np.max(np.sum(e * e, 1)))) if e.size else 0.0


BROW_POINTS = np.array(lmk.BROW_R + lmk.BROW_L)


def forehead_points(x: np.ndarray) -> np.ndarray:
    """[L >= 468, 3] canonical landmarks -> indices of the mesh points higher (smaller y) than every point of
    both eyes' contours: the brows and the forehead above them (they move together when the brows do).
    The same rows the driver's brow gain scales (`deform.brow_rows`)."""
    return brow_rows(x)


def lid_gap(x: np.ndarray) -> float:
    """[L >= 468, 3] canonical landmarks (head frame, metres) -> the lids' gap, the mean of both eyes' centre
    pair (`landmarks.EYELID_MID_R` / `_L`), metres: what "how open the eyes are" means for the neutral's eyes."""
    x = np.asarray(x, np.float64)
    return float(np.mean([np.linalg.norm(x[u] - x[d]) for u, d in (lmk.EYELID_MID_R, lmk.EYELID_MID_L)]))


class OpenLidAverage:
    """A per-frame value (the neutral's eye points, the tracker's lid ratios in the picture) averaged over the
    frames whose lids are open as wide as this operator's usually are: weight exp(-(shortfall / scale)^2), the
    shortfall being the frame's openness below the 90th percentile of the openness in the history, times
    exp(-age / window_s). Openness is the caller's measure in the units of `scale` (the neutral's eyes: the lid gap,
    `lid_gap`, metres; the tracker's lid ratios: the log of their centre pairs' mean). Every frame in the history (the
    last HISTORY) is judged against the percentile as it is NOW, so a stream that starts mid-blink or squinting loses
    those first frames' weight as soon as wider frames come in: judged once, against the percentile of the frames seen
    so far, the first frame of a stream weighs 1 whatever its lids and a reopening after it as much (a running average
    of sadtalker started at its blink, frame 24: the neutral's lid gap 3.5 mm at the start, 6 mm after 10 frames, 9.1 mm
    after 170, where frame 0's start gives 10.5-11.3; the avatar's lids then opened ~12 % wider than from frame 0 for
    the whole clip, 60 % at first). The first frame alone gives its own value exactly (a self clip's frame 0, the
    avatar's photo, keeps its lids)."""

    HISTORY = 900  # frames remembered (30 s at 30 fps)

    def __init__(self, window_s: float = 20.0, scale: float = 0.0015):
        if not (window_s > 0 and scale > 0):
            raise ValueError("window_s and scale must be > 0")
        self.window_s, self.scale = float(window_s), float(scale)
        self.reset()

    def reset(self) -> None:
        """Forget every frame: the history, the openness level and the average (None until the next `add`)."""
        self._t = np.zeros(self.HISTORY)  # stamps, seconds: a ring, the first `_n` slots filled
        self._gaps = np.zeros(self.HISTORY)  # openness (`add`)
        self._values: np.ndarray | None = None  # [HISTORY, D] the values, flattened
        self._n = 0  # frames taken in (the ring's next slot is _n % HISTORY)
        self._level: float | None = None  # the openness' 90th percentile over the history (`open_level`), once per add
        self.mean: np.ndarray | None = None  # the weighted average, the values' shape; None before the first

    def weights(self) -> np.ndarray:
        """[min(n, HISTORY)] each remembered frame's weight now (in the ring's order; not normalised)."""
        m = min(self._n, self.HISTORY)
        gaps, t = self._gaps[:m], self._t[:m]
        short = np.maximum(0.0, self.open_level() - gaps)
        return np.exp(-(short / self.scale) ** 2 - np.maximum(0.0, t.max() - t) / self.window_s)

    def open_level(self) -> float:
        """The 90th percentile of the openness in the history now (the units of `scale`): the operator's usual widest.
        Computed once per frame taken in (`add` and the tracker's `shortfall` in the same frame share it: a percentile
        of up to HISTORY values, ~100 us a frame on this 2-core box at load 8, tidy18's bench_openlid.py).
        ValueError before the first frame."""
        if self._level is None:
            m = min(self._n, self.HISTORY)
            if not m:
                raise ValueError("no frame taken in yet")
            self._level = float(np.percentile(self._gaps[:m], 90))
        return self._level

    def shortfall(self, gap: float) -> float:
        """How far `gap` (openness, the units of `scale`) falls below the 90th percentile of the history now, >= 0;
        0 before the first frame."""
        return max(0.0, self.open_level() - float(gap)) if self._n else 0.0

    def add(self, t_s: float, gap: float, value: np.ndarray) -> np.ndarray:
        """Take in one frame (stamp seconds, openness in the units of `scale`, value of any fixed shape; a new shape
        starts over) -> the average now, the value's shape. A stamp earlier than the newest taken in (a looped bag) shifts
        the remembered stamps back with it, so the frames after the jump are not taken for old ones."""
        v = np.asarray(value, np.float64)
        if self.mean is not None and v.shape != self.mean.shape:
            self.reset()
        if self._values is None:
            self._values = np.zeros((self.HISTORY, v.size))
        m = min(self._n, self.HISTORY)
        if m and float(t_s) < self._t[:m].max():  # stamps went back (a replayed or looped stream): the jump counts
            self._t[:m] += float(t_s) - self._t[:m].max()  # as no time, as NeutralEstimator's dt >= 0 does
        k = self._n % self.HISTORY
        self._t[k], self._gaps[k], self._values[k] = float(t_s), float(gap), v.ravel()
        self._n += 1
        self._level = None  # the history changed
        w = self.weights()
        if not w.sum() > 1e-300:  # every frame forgotten or far from open: the newest alone
            w = np.zeros_like(w)
            w[k] = 1.0
        self.mean = (w @ self._values[:len(w)] / w.sum()).reshape(v.shape)
        return self.mean


class NeutralEstimator:
    """The operator's neutral face over time: started from the first frame's `neutralize`, then a running
    average of each frame's `neutralize`, weighted by how relaxed the frame's mouth is, forgetting with
    time constant `window_s`. Relaxed = lips together and the jaw up, judged against this operator
    (not a population): weight exp(-(lip gap / scale_m)^2) x exp(-(chin drop above the operator's
    highest chin so far (5th percentile of the chin drops seen) / scale_m)^2) x exp(-(how far `neutralize`
    moves the mouth corners / scale_m)^2). A talking frame hardly counts, whatever the population limits
    say about the operator's mouth, and neither does a smile or a pucker with closed lips: without the
    corners' term tpsmm_driving's neutral mouth width followed its closed-lip "oo" frames down to 43.5 mm,
    then its closed-lip smiles back up to 51 (the avatar's later puckers and smiles came out a third to
    two thirds smaller, and every relaxed frame after the "oo" read as a 6 mm smile). The eyes (lid contours and
    irises, `EYE_POINTS`) are averaged with their own weight, since a relaxed mouth says nothing about the
    lids: open = the lid gap (mean of both eyes' centre pair) near this operator's widest, the 90th
    percentile of the gaps in the history, weight exp(-(shortfall / scale_m)^2), every remembered frame re-judged
    against the percentile as it is now (`OpenLidAverage`: a stream that starts mid-blink drops its first frames
    once wider ones come); a frame looking down with half-closed
    lids and a closed mouth would otherwise become the neutral's lids (seen on sadtalker: 10 -> 2.8 mm at
    frame 36), and the drive, which opens the avatar's lids by the operator's gap / neutral gap, stared.
    The brows and the forehead above them (`BROW_POINTS`: mesh points higher than the eyes' upper lids)
    have their own weight too, since a relaxed mouth says nothing about the brows either: relaxed = the
    brows' height above the eye corners near this operator's median height, weight
    exp(-(difference / BROW_SCALE_M)^2). With the mouth's weight the neutral brows were those of whichever
    closed-mouth frames came after talking: sadtalker talks for 30 frames, then raises her brows and tilts
    her head back with her mouth closed, those frames became the neutral's brows, and every later frame
    read as brows lowered by 1.5-1.8 mm (tracked brows vs the reader's on the driver: r -0.01; 0.51 now).
    Frames whose landmarks are in the head frame of the current neutral (the tracker aligns them to it)
    keep the estimate in one frame.

    The first frame's `neutralize` counts at least as much as a frame whose lips are `scale_m` apart
    (weight FIRST_WEIGHT = exp(-1)), whatever its own mouth: an operator who starts mid-sentence gives only
    talking frames, each weighing ~1e-15 .. 1e-3, and a running average of such weights alone is a soft
    argmax that jumped to each slightly-less-open frame's `neutralize` in turn. That carried whatever
    `neutralize` leaves (a mouth narrowed by speech, a pucker) into the neutral: on tpsmm_driving the
    neutral's mouth width went 52.5 -> 49.2 mm over 16 talking frames, so the avatar (built from frame 0's
    `neutralize`) was driven 3.3 mm wider than the operator throughout and its open mouth read as a smile
    (reader smile r 0.32). Now only frames that are really relaxed (weight near 1) replace it.

    So a stream that starts mid-sentence keeps its first frame's jaw and mouth width until a relaxed frame comes:
    tpsmm_driving's controls tracked from frame 10 differ from those of the same frames tracked from frame 0 by 1.1 mm
    at the chin (frame 0's chin 1.5 mm below its most closed frames' in the neutral), 2.6 mm in mouth width (its
    speaking mouth is wider) and 0.08 in mouth_open. Re-judging the mouth's weights against the operator's own most
    closed frames, as `OpenLidAverage` does the lids (session 60, branch jaw60-rejudged), took that to 0.1 / 0.2 mm /
    0.01, but a causal neutral then follows tpsmm's closing over its first 13 frames (each the most closed so far),
    wiping out their expression, and drives the self avatar, which rests in frame 0's `neutralize`, off its photo:
    tpsmm's 60-frame living-face pairs, cross jaw r 0.627 -> 0.594, smile 0.630 -> 0.289; self jaw 0.87 -> 0.74."""

    HISTORY = 900  # chin drops / brow heights remembered for the operator's own "jaw up" / brows (30 s at 30 fps)
    FIRST_WEIGHT = math.exp(-1.0)  # the least weight of the first frame (see the class notes)
    EYE_POINTS = np.array(lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L + (lmk.IRIS_CENTER_R,) + lmk.IRIS_R
                          + (lmk.IRIS_CENTER_L,) + lmk.IRIS_L)
    # The brows' range on the ../shared clips (tracked brow height above the eye corners: std 0.2-0.8 mm,
    # a visible raise ~0.7 mm) is a third of the lips': their own scale, a third of scale_m's default.
    BROW_SCALE_M = 0.0005

    def __init__(self, window_s: float = 20.0, scale_m: float = 0.0015):
        if not (window_s > 0 and scale_m > 0):
            raise ValueError("window_s and scale_m must be > 0")
        self.window_s, self.scale_m = float(window_s), float(scale_m)
        self.reset()

    def reset(self) -> None:
        """Forget the neutral and every frame taken in (a re-calibration): the next frame starts it again."""
        self.neutral: np.ndarray | None = None  # [L, 3]
        self.weight = 0.0  # sum of the (decayed) weights so far
        self.weight_brows = 0.0  # the same for the brows' weights
        self.frames = 0  # frames taken in
        self._t_s: float | None = None
        self._chins: list[float] = []  # recent chin drops below the nose tip, metres
        self._brows: list[float] = []  # recent brow heights above the eye corners, metres
        self._eyes = OpenLidAverage(self.window_s, self.scale_m)  # the eye points, over the open frames

    def update(self, x: np.ndarray, t_s: float) -> np.ndarray:
        """Take in one frame's [L, 3] canonical landmarks at time t_s (seconds) -> the neutral face [L, 3]."""
        x = np.asarray(x, np.float64)
        n = neutralize(x)
        chin = float(x[CHIN, 1] - x[NOSE_TIP, 1])
        self._chins = (self._chins + [chin])[-self.HISTORY:]
        gap = max(0.0, float(x[LOWER_LIP_MID, 1] - x[UPPER_LIP_MID, 1]))
        drop = max(0.0, chin - float(np.percentile(self._chins, 5)))
        corners = float(np.max(np.linalg.norm((x - n)[list(LIP_CORNERS_OUTER)], axis=1)))
        w = math.exp(-(gap / self.scale_m) ** 2 - (drop / self.scale_m) ** 2 - (corners / self.scale_m) ** 2)
        eyes = self.EYE_POINTS[self.EYE_POINTS < x.shape[0]]
        w_brows, eye_mean = w, None
        brows = np.zeros(0, np.int64)
        if x.shape[0] >= lmk.NUM_MESH:
            eye_mean = self._eyes.add(t_s, lid_gap(x), n[eyes])
            height = float(np.mean(x[list(lmk.EYE_CORNERS[0] + lmk.EYE_CORNERS[1]), 1]) - np.mean(x[BROW_POINTS, 1]))
            self._brows = (self._brows + [height])[-self.HISTORY:]
            w_brows = math.exp(-((height - float(np.median(self._brows))) / self.BROW_SCALE_M) ** 2)
            brows = forehead_points(self.neutral if self.neutral is not None else n)
        if self.neutral is None or self.neutral.shape != n.shape:
            self.neutral, self.weight, self.frames = n, max(w, self.FIRST_WEIGHT), 1
            self.weight_brows = max(w_brows, self.FIRST_WEIGHT)
        else:
            dt = max(0.0, t_s - self._t_s) if self._t_s is not None else 0.0
            decay = math.exp(-dt / self.window_s)
            self.weight = self.weight * decay + w
            self.weight_brows = self.weight_brows * decay + w_brows
            before = self.neutral.copy()
            if self.weight > 0:
                self.neutral = self.neutral + (w / self.weight) * (n - self.neutral)
            self.neutral[brows] = before[brows]
            if self.weight_brows > 0:
                self.neutral[brows] = before[brows] + (w_brows / self.weight_brows) * (n[brows] - before[brows])
            self.frames += 1
        if eye_mean is not None:
            self.neutral[eyes] = eye_mean
        self._t_s = t_s
        return self.neutral
