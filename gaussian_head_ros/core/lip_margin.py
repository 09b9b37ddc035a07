"""The lips' inner margins: the lips' own colour as they part, and a meeting line when an open photo's lips close
(the driver's lip margin map).

A photo of closed lips shows a dark line where they meet (the seam's shadow, a painting's brown stroke). mesh_fit
binds those pixels to the lips' triangles next to the meeting line, so at rest they draw the line between the
closed lips, as they should. As the operator's lips part, those triangles become the parted lips' inner margins,
and the seam's pixels went with them: a brown ring round every opening on lp_s9_monalisa, black dots along
trump_official's and two_children_multiface's, dark red bands along business_person's and lp_d8_man_glasses's inner
lips (../shared portraits x lp_d18 frames 66 / 132, sadtalker_WDA_KatieHill_000 29, tpsmm_driving 20, crops 3x;
session 45). A parted lip's inner margin is lip, lit like the rest of it.

The rule (the driver's, `core.drive.Driver._colour_maps`, numpy and torch; reconstruction and the avatar file are
untouched, so avatars saved before get it too, and a closed-lips photo's rest pose draws exactly the file's colours):
- Rows (`margin_rows`, once per avatar): the face Gaussians that follow a template triangle (bound or in the fading
  band: `deform.Rig` frames below k_head) whose rest place lies within REACH_M of the line where the rest template's
  lips meet (`meeting_line`, the head frame's x-y), in the mouth's middle. Reach (how far each goes to its target at
  full share): 1 within half of REACH_M of the line, smoothly 0 at REACH_M, times a fade from MIDDLE_TO[0] to
  MIDDLE_TO[1] of the half width between the inner corners, from the middle out.
- Target: the lip body beside each row: the mean colour, weighted by a Gaussian of the x distance (SIGMA_X_M), of
  the same lip's face Gaussians between REACH_M from the line and that lip's outer contour (the upper lip's for rows
  above the line, the lower's below), within the inner corners; the colours as the photo's view shows them. A lip
  with no such body (lips thinner than the reach) takes the other lip's.
- Share per row and frame (`margin_share`): smoothstep(GAP_FROM_M, GAP_FULL_M, the inner lips' gap at the row's x
  beyond the rest template's there), the gap taken between the pairs of lmk.LIP_UPPER_INNER / LIP_LOWER_INNER as the
  control moves them and held beyond the outermost pair; times 1 - the photo's own opening's share (the largest of
  `deform.photo_mouth_share`'s), so a control that gives a parted or smiling photo back draws its margins as the
  photo did.
- Colour (`margin_rgb`): each row darker than its target (by luma) as it is drawn in that frame adds share x reach x
  (target - its colour); rows as light or lighter are left as they are (never darker).

Closing a photo whose own mouth is open (`MarginShade.photo_open`, `closing_weight`: the avatar has the photo's opening,
PART_PHOTO_MOUTH rows, and its lips were not re-textured by the reconstructor, CLOSING_RATIO). Its closed lips are made
by the reconstructor; the rows by their meeting line hold what the photo showed at its inner lips, the teeth's white
and the opening's edge, and no line between the lips: at rest FaceMesh read the lips of
astronaut_eileen_collins, obama_speech, trump_official and tpsmm_driving's frame 0 0.066 / 0.061 / 0.026 / 0.020
inter-ocular distances apart (the nine portraits' and the clips' closed-lips photos: 0.001-0.006), a white line
between obama_speech's lips (session 46). For such an avatar a second share, `closed` = (1 - the photo's own opening's
share) x (1 - smoothstep(0, GAP_FROM_M, the local gap beyond the rest's)), draws the line a closed-lips photo shows
while the lips are within GAP_FROM_M of closed (faded out as the parting share rises, over 1-3 mm, the line
showed at small openings too and the reader read lp_d9_woman_turned's, astronaut's and trump's openings under
tpsmm_driving smaller: jaw r 40-pair mean 0.8410 -> 0.8382, with the 1 mm fade 0.8397): each row's target darkened
by (1 - LINE_DARK) x exp(-(dy / LINE_SIGMA_M)^2 / 2) x closed / (parted + closed) (dy its rest distance from the line;
closed includes the weight photo_open),
and the rows lighter than that target go to it by (parted + closed) x reach; darker rows as above (by parted). An
avatar of a closed-lips photo has closed = 0 everywhere: its rest draws exactly the file's colours.

The corners keep the photo's shade while the mouth smiles or speaks. Recoloured with the middle's share (rows up to
5 mm from the line towards the corners and 4 mm past the inner corners), a smile's dark buccal corridors left
astronaut_eileen_collins's corners and trump_official's dark blotches went, but the acceptance reader (FaceLandmarker)
read the driven smiles weaker: 40-pair living-face table (60 frames, this machine) smile r 0.869 -> 0.841, jaw 0.843
-> 0.834; with the middle alone 0.860 / 0.839, self PSNR 24.806 -> 24.817 dB. A mouth's corners are shaded when it
opens, and the reader places them by it. A wide opening (a scream, a yawn) though stretched that shade over the
sides of the opening: a black ring round trump_official's, dark red bands beside business_person's (lp_d18 frame 130,
session 51). So the corners' rows (`MarginShade.corner`: within CORNER_REACH_M of the line, in the lips, from
MIDDLE_TO out to CORNER_TO) that are darker than their lip in shade (CORNER_SHADE x the middle's target) are lifted
to it, with a share that rises only with the corners' own opening (the outermost inner pairs' gap, CORNER_GAP_M):
none in the ../shared speech and smiles. Not to the lip's full colour: that drew the cleanest lips by eye, but the
reader then read lp_d18's scream as less of a stretch (its smile r over the whole clip, business_person 0.941 ->
0.883, trump_official 0.893 -> 0.869; in shade 0.920 / 0.875: the reader finds a stretched mouth's corners by their
shade, and the avatar's opening is not as wide as its lips there).

Source of the constants: REACH_M by eye on the nine ../shared portraits (rows painted over the openings above: the
seam's dark lies within 2-2.5 mm of the meeting line); MIDDLE_TO as above. GAP_FROM_M / GAP_FULL_M: lips 1 mm
apart still show the line's shadow between them (the cavity's dark shows through the gap itself), 3 mm apart show
their margins whole. SIGMA_X_M: a lip's colour changes over ~1 cm along it (lit middle, shaded corners).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.deform import contour_y, smoothstep

REACH_M = 0.0025  # rows lie within this of the rest meeting line (metres, head frame x-y) ...
MIDDLE_TO = (0.5, 0.8)  # ... their reach fading out between these shares of the half width from the middle out
GAP_FROM_M, GAP_FULL_M = 0.001, 0.003  # the share rises as the lips' local gap goes from the first to the second
# The corners (module docstring): rows within CORNER_REACH_M of the line, in the lips (between their outer contours),
# from MIDDLE_TO's fade on out to CORNER_TO (shares of the half width: fading out past the inner corners), whose
# share rises only as the gap between the outermost inner lip pairs (the corners' own opening, beyond the rest's)
# goes from CORNER_GAP_M[0] to [1]: a scream's or a yawn's corners, not a smile's nor speech's. The tracked ../shared
# clips on trump_official's avatar: lp_d18's scream (frame 130) 19 mm; tpsmm_driving's speech at most 5.3 mm,
# sadtalker_WDA_KatieHill_000's 9.3 (90th percentile 5.5), lp_d0's smiles 7.3 (session 51). Those rows darker than
# CORNER_SHADE x their lip's colour (a lip in shade) are lifted to it; lighter ones are left as they are.
CORNER_REACH_M = 0.005
CORNER_TO = (1.1, 1.3)
CORNER_SHADE = 0.6
CORNER_GAP_M = (0.008, 0.016)
SIGMA_X_M = 0.005  # the target: the lip body's colour averaged along the lip with this Gaussian (metres of x)
# Closing an open photo's lips: the meeting line's shade, LINE_DARK x the lip's colour at the line, fading across it
# with a Gaussian of LINE_SIGMA_M. The closed-lips photos' own rows within 0.5 mm of the line (business_person,
# lp_s9_monalisa, lp_d18 and lp_d0's frame 0): median luma 0.60-0.96 x their lip's (session 46).
LINE_DARK = 0.65
LINE_SIGMA_M = 0.0005
# ... not where the reconstructor re-textured the closed lips and drew their line itself (reconstruct/lips.py, from a
# photo lip gap 1.5 x its own lips' heights): the photo's gap over the rest lips' heights (`lips_height`, which that
# re-texture makes a relaxed lip's: lp_d9_woman_turned 5.0 on the photo, 2.27 at rest) from the first (the line
# whole) to the second (none). The ../shared open photos but lp_d9 read 0.46-0.97.
CLOSING_RATIO = (1.0, 1.5)


@dataclass
class MarginShade:
    """The rows the parting lips recolour, how far, and towards which colour (`margin_rows`)."""

    rows: np.ndarray  # [M] int64 indices of Gaussians, ascending
    x: np.ndarray  # [M] float64 each row's rest x (head frame, metres): where its lips' gap is read
    reach: np.ndarray  # [M] float32 how far each row goes to its target at full share, in (0, 1]
    target: np.ndarray  # [M, 3] float32 each row's lip colour (rgb in [0, 1])
    pair_x: np.ndarray  # [P] float64 the rest x of each inner lip pair's midpoint, ascending
    pair_order: np.ndarray  # [P] int64 the pairs (lmk.LIP_UPPER_INNER / LIP_LOWER_INNER index) in that order
    rest_gap: np.ndarray  # [P] float64 each pair's gap in the rest template (metres, y down: lower - upper)
    dy: np.ndarray  # [M] float64 each row's rest distance from the meeting line (metres, y down: + below it)
    corner: np.ndarray  # [M] float32 in [0, 1] each row's share of the corners' rule (its corner reach / its reach)
    # in [0, 1] (`closing_weight`): 1 when the photo's mouth is open and the reconstructor closed its lips without
    # re-texturing them: they get the meeting line (module docstring); 0 for a closed-lips photo or a re-textured one
    photo_open: float = 0.0


def meeting_line(verts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[V >= 468, 3] template vertices (head frame, y down, metres) -> (x [K] ascending, y [K]): the line where the
    lips meet, through the inner corners (lmk.MOUTH_CORNER_R_IN / _L_IN) and the midpoints of the inner lips' pairs
    (lmk.LIP_UPPER_INNER / LIP_LOWER_INNER)."""
    v = np.asarray(verts, np.float64)
    line = 0.5 * (v[list(lmk.LIP_UPPER_INNER)] + v[list(lmk.LIP_LOWER_INNER)])
    x = np.concatenate([[v[lmk.MOUTH_CORNER_R_IN, 0]], line[:, 0], [v[lmk.MOUTH_CORNER_L_IN, 0]]])
    y = np.concatenate([[v[lmk.MOUTH_CORNER_R_IN, 1]], line[:, 1], [v[lmk.MOUTH_CORNER_L_IN, 1]]])
    order = np.argsort(x)
    return x[order], y[order]


def lips_height(verts: np.ndarray) -> float:
    """[V >= 468, 3] template vertices (head frame, y down, metres) -> the two lips' heights at the middle (outer to
    inner contour: lmk.LIP_OUTER[15] -> UPPER_LIP_IN and LOWER_LIP_IN -> LIP_LOWER_OUTER[4]), metres."""
    v = np.asarray(verts, np.float64)
    upper = v[lmk.UPPER_LIP_IN, 1] - v[lmk.LIP_OUTER[15], 1]
    return float(upper + (v[lmk.LIP_LOWER_OUTER[4], 1] - v[lmk.LOWER_LIP_IN, 1]))


def closing_weight(verts: np.ndarray, photo_gap_m: float) -> float:
    """[V >= 468, 3] the rest template (head frame, y down, metres) and the photo's own lip gap (metres; 0: closed
    lips) -> MarginShade.photo_open in [0, 1]: 1 - smoothstep(CLOSING_RATIO, the gap over the rest `lips_height`); 0
    for a closed photo (gap <= 0)."""
    if photo_gap_m <= 0:
        return 0.0
    return float(1.0 - smoothstep(*CLOSING_RATIO, photo_gap_m / max(lips_height(verts), 1e-4)))


def _empty() -> MarginShade:
    return MarginShade(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.float32), np.zeros((0, 3), np.float32),
                       np.zeros(0), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.float32))


def margin_rows(verts: np.ndarray, means: np.ndarray, colors: np.ndarray, candidates: np.ndarray,
                photo_open: float = 0.0) -> MarginShade:
    """[V, 3] rest template (head frame, y down, metres), [N, 3] rest means (same frame), [N, 3] colours as the
    photo's view shows them (rgb in [0, 1]), [N] bool the Gaussians that may be rows (face Gaussians that follow a
    template triangle), photo_open in [0, 1] (`closing_weight`; 0: a closed-lips photo) -> MarginShade
    (module docstring). Empty (M = 0) without MediaPipe topology or without such Gaussians by the meeting line."""
    v = np.asarray(verts, np.float64)
    if not lmk.has_mediapipe_topology(v.shape[0]):
        return _empty()
    cand = np.flatnonzero(np.asarray(candidates, bool))
    p = np.asarray(means, np.float64)[cand]
    lx, ly = meeting_line(v)
    dy = p[:, 1] - np.interp(p[:, 0], lx, ly)  # + below the line
    u = np.abs(p[:, 0] - 0.5 * (lx[0] + lx[-1])) / max(0.5 * (lx[-1] - lx[0]), 1e-6)  # 0 mid .. 1 at a corner
    # the lips: between their outer contours
    in_lips = ((p[:, 1] > contour_y(v, lmk.LIP_UPPER_OUTER, p[:, 0]))
               & (p[:, 1] < contour_y(v, lmk.LIP_LOWER_OUTER, p[:, 0])))
    out = smoothstep(*MIDDLE_TO, u)
    middle = (1.0 - smoothstep(0.5 * REACH_M, REACH_M, np.abs(dy))) * (1.0 - out)
    corner = ((1.0 - smoothstep(0.5 * CORNER_REACH_M, CORNER_REACH_M, np.abs(dy))) * out
              * (1.0 - smoothstep(*CORNER_TO, u)) * in_lips)
    reach = middle + corner
    near = reach > 0
    if not np.any(near):
        return _empty()
    col = np.asarray(colors, np.float64)[cand]
    # the lip bodies: between REACH_M from the line and each lip's outer contour, within the inner corners
    inside = (p[:, 0] > lx[0]) & (p[:, 0] < lx[-1]) & (np.abs(dy) >= REACH_M) & in_lips
    upper_body, lower_body = inside & (dy < 0), inside & (dy > 0)
    if not (np.any(upper_body) or np.any(lower_body)):
        return _empty()
    rows_x, rows_dy = p[near, 0], dy[near]
    target = np.zeros((int(near.sum()), 3))
    for side, body, other in ((rows_dy < 0, upper_body, lower_body), (rows_dy >= 0, lower_body, upper_body)):
        src = body if np.any(body) else other
        w = np.exp(-0.5 * ((rows_x[side, None] - p[src, 0][None]) / SIGMA_X_M) ** 2) + 1e-12  # [m, b]
        target[side] = (w @ col[src]) / w.sum(1, keepdims=True)
    pairs = 0.5 * (v[list(lmk.LIP_UPPER_INNER), 0] + v[list(lmk.LIP_LOWER_INNER), 0])
    order = np.argsort(pairs)
    rest_gap = (v[list(lmk.LIP_LOWER_INNER), 1] - v[list(lmk.LIP_UPPER_INNER), 1])[order]
    return MarginShade(cand[near], rows_x, reach[near].astype(np.float32), target.astype(np.float32),
                       pairs[order], order.astype(np.int64), rest_gap, rows_dy,
                       (corner[near] / reach[near]).astype(np.float32), float(photo_open))


def margin_share(verts: np.ndarray, shade: MarginShade, photo_share: float = 0.0) -> np.ndarray:
    """[V, 3] the template as the control moves it (head frame, y down, metres), MarginShade, the photo's own
    opening's share in this frame (the largest `deform.photo_mouth_share`; 0 without one) -> [M, 3] float64 each
    row's shares in [0, 1]: parted = smoothstep(GAP_FROM_M, GAP_FULL_M, the inner lips' gap at the row's x beyond the
    rest's) x (1 - photo_share), and closed = (1 - photo_share) x (1 - smoothstep(0, GAP_FROM_M, that gap)) x
    shade.photo_open: the module docstring's two shares, each x (1 - shade.corner); and corner = shade.corner x
    smoothstep(CORNER_GAP_M, the outermost inner pairs' mean gap beyond the rest's) x (1 - photo_share)."""
    if not len(shade.rows):
        return np.zeros((0, 2))
    v = np.asarray(verts, np.float64)
    gap = (v[list(lmk.LIP_LOWER_INNER), 1] - v[list(lmk.LIP_UPPER_INNER), 1])[shade.pair_order] - shade.rest_gap
    local = np.interp(shade.x, shade.pair_x, gap)
    keep = 1.0 - float(np.clip(photo_share, 0.0, 1.0))
    w = shade.corner.astype(np.float64)
    closed = (1.0 - smoothstep(0.0, GAP_FROM_M, local)) * keep * shade.photo_open * (1.0 - w)
    parted = smoothstep(GAP_FROM_M, GAP_FULL_M, local) * keep * (1.0 - w)
    wide = smoothstep(*CORNER_GAP_M, 0.5 * (gap[0] + gap[-1]))  # the outermost pairs' gap: the corners' own opening
    return np.stack([parted, closed, w * wide * keep], 1)


def margin_rgb(shade: MarginShade, share: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """MarginShade, [M, 3] each row's shares (`margin_share`: parted, closed, corner), [M, 3] the rows' colours as
    this frame draws them (rgb in [0, 1], after the view-dependent colour and the maps before this one) -> [M, 3]
    float32 the colour they add (module docstring): parted x reach x (target - colour) on the rows darker than their
    target (by luma); on a photo_open shade (parted + closed) x reach x (line target - colour) on the rows lighter than
    their target with the meeting line's shade (closed / (parted + closed) of it); plus corner x reach x
    (CORNER_SHADE x target - colour) on the rows darker than that; 0 on the others."""
    c = np.asarray(colors, np.float64)
    s = np.asarray(share, np.float64).reshape(-1, 3)
    parted, closed, corner = s[:, 0], s[:, 1], s[:, 2]
    both = parted + closed
    line = np.exp(-0.5 * (shade.dy / LINE_SIGMA_M) ** 2) * closed / np.maximum(both, 1e-12)
    target = np.asarray(shade.target, np.float64)
    lined = target * (1.0 - (1.0 - LINE_DARK) * line)[:, None]
    luma = c @ LUMA
    k = np.where(luma < target @ LUMA, parted, 0.0)
    opened = shade.photo_open > 0
    k = np.where(luma > lined @ LUMA, both, k) if opened else k
    goal = np.where((luma > lined @ LUMA)[:, None] & opened, lined, target)
    shaded = CORNER_SHADE * target  # the corners: no darker than their lip in shade
    lift = np.where(luma < shaded @ LUMA, corner, 0.0)
    return (shade.reach[:, None] * (k[:, None] * (goal - c) + lift[:, None] * (shaded - c))).astype(np.float32)
