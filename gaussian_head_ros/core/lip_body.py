"""The closed lips' own colour on an avatar whose photo shows its teeth (the driver's lip body map).

A smile that shows the teeth (astronaut_eileen_collins, trump_official, obama_official, obama_speech in ../shared)
has thin lips stretched over them, and MediaPipe's lip band holds what lies between its contours: the thin lip, skin
past the lip's outer edge and the teeth past its inner one. The rest pose closes the lips to a relaxed lip's height
(core.expression.handle_targets), but each Gaussian keeps the colour the photo showed on its triangle: trump_official's
upper lip at rest was the skin above it (its rows' chromaticity that of the skin within 4 mm above its outer contour,
0.90 x its luma, where a closed upper lip is 0.40-0.78 x: the closed-lips portraits' rows), and the upper teeth's
white stood on obama_official's and astronaut_eileen_collins's closed lower lips (session 60). The reconstructor
re-textures closed lips only for a scream (reconstruct/lips.py, a gap 1.5 x the lips' heights); there the photo's own
pose shows the re-texture too (lp_d9_woman_turned 38.8 -> 29.1 dB). Here the photo's own expression keeps the photo.

The rule (the driver's, `core.drive.Driver._colour_maps`, numpy and torch; reconstruction and the avatar file are
untouched, so a closed-lips photo's avatar draws exactly the file's colours):
- Only on an avatar whose photo's mouth is open and whose lips the reconstructor did not re-texture
  (`lip_margin.closing_weight`, MarginShade.photo_open); its weight scales everything below.
- Rows (`body_rows`, once per avatar): the face Gaussians that follow a template triangle whose rest place lies in
  the lips (between the rest template's outer contours, lmk.LIP_UPPER_OUTER / LIP_LOWER_OUTER, and between the outer
  corners), the upper lip above the line where the lips meet (`lip_margin.meeting_line`), the lower below.
- The skin: the median colour of those Gaussians within SKIN_RING_M outside either outer contour, in the mouth's
  middle half. The lip: the median of the lower lip's rows (a smile shows the lower lip whole) that are neither teeth
  (`teeth_white`) nor the cavity (`cavity_dark`): plain rows.
- The upper lip is shown (0..1) unless its plain rows in the middle half are as light as the skin above it
  (SHOWN_UPPER): then they are that skin; the lower lip is shown.
- Each row's weight: teeth, or its lip not shown (the larger), unless it is dark (a shadow: the line where the lips
  meet and the corners' shade stay, lip_margin draws them).
- Each row's target: as far as its lip is shown, its lip's plain rows averaged along it (lip_margin.SIGMA_X_M); as far
  as not, the lip's colour (the upper lip's `upper_lip`: redder, in shade) with the row's own shading (its luma over
  its lip's median, within SHADING).
- Per frame the rows take weight x share of (target - colour), share = photo_open x (1 - the photo's own opening's
  share, `deform.photo_mouth_share`): the photo's own expression draws the photo (frame 0, the reconstruction's
  check), every other draws lips of lip colour.
lip_margin's rows (the meeting line's shade, the parted margins) take their target from the colours this rule gives
at rest (`at_rest`), not the photo's teeth and skin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.deform import contour_y, smoothstep
from gaussian_head_ros.core.lip_margin import SIGMA_X_M, meeting_line

# The skin's colour is read within this of the lips' outer contours (metres, head frame y): past the vermilion's
# edge, short of the nose's shadow and the chin's fold.
SKIN_RING_M = 0.004
# A closed upper lip faces down: in shade. Its rows' median luma in the mouth's middle half over the lower lip's, on
# the closed-lips portraits (business_person, lp_d8_man_glasses, lp_s9_monalisa, two_children_multiface): 0.75 / 0.91 /
# 0.68 / 0.48, median 0.72. (At 0.7 x the mean of the lip's and the skin's luma, as dark as those over the skin
# above, 0.69 / 0.78 / 0.73 / 0.40, trump_official's made upper lip was 0.62 x his lower lip: parted at jawOpen 0.3,
# 0.123 of his lips' middle read as the seam's dark, test_lip_margin's bound 0.04; 0.014 at this.)
UPPER_SHADE = 0.72
# ... and it is redder: its HSV saturation over the lower lip's (the rows' median chromaticity), closed-lips portraits
# 1.8 / 1.08 / 1.08 / 1.25, the open ones' own upper lips (obama_official, astronaut_eileen_collins, obama_speech) 1.03 /
# 1.13 / 1.3: median 1.13.
UPPER_SATURATION = 1.13
# The upper lip the photo shows (its median luma in the mouth's middle half over the skin's within SKIN_RING_M above
# it): 0.40-0.78 on the closed-lips portraits (above), 0.56-0.76 on the open ones but trump_official's, 0.90, whose
# rows there have that skin's chromaticity (r, g, b shares 0.502 / 0.301 / 0.202 against 0.502 / 0.301 / 0.197): its
# thin lip is rolled in over the teeth. Shown fully below the first, not at all from the second.
SHOWN_UPPER = (0.8, 0.9)
# A made lip keeps its rows' own shading: their luma over the lip's median, within these (trump_official's upper lip,
# the skin above his lip in the photo: 0.75-1.25 kept more of its stubble, 0.146 of the rest upper lip's pixels
# nearer the skin's colour than the lips' against 0.115; none, a flat lip, 0.27 of the parted lips read dark)
SHADING = (0.85, 1.15)


@dataclass
class LipBody:
    """The lips' rows the lip body map recolours, how far, and towards which colour (`body_rows`)."""

    rows: np.ndarray  # [M] int64 indices of Gaussians, ascending
    weight: np.ndarray  # [M] float32 in (0, 1]: how far each row goes at share 1 (x the avatar's photo_open)
    target: np.ndarray  # [M, 3] float32 each row's lip colour (rgb in [0, 1])


def teeth_white(c: np.ndarray, skin_luma) -> np.ndarray:
    """[M, 3] rgb in [0, 1], the skin's luma (a float or [M]) -> [M] 0..1 how much each is teeth: brighter than
    1.0-1.2 x the skin's luma and grey (max - min below 0.08-0.16)."""
    c = np.asarray(c, np.float64)
    sat = c.max(-1) - c.min(-1)
    return smoothstep(1.0, 1.2, (c @ LUMA) / np.maximum(skin_luma, 1e-3)) * (1 - smoothstep(0.08, 0.16, sat))


def cavity_dark(c: np.ndarray, lip: np.ndarray) -> np.ndarray:
    """[M, 3] rgb, the lip's colour [3] or [M, 3] -> [M] 0..1 how much each is the mouth's dark: darker than
    0.6-0.4 x the lip's luma."""
    return 1 - smoothstep(0.4, 0.6, (np.asarray(c, np.float64) @ LUMA) / np.maximum(np.asarray(lip) @ LUMA, 1e-3))


def upper_lip(lip: np.ndarray) -> np.ndarray:
    """The lip's colour [3] (rgb in [0, 1], the lower lip's) -> [3] a closed upper lip's: redder (UPPER_SATURATION:
    each channel's distance below the largest times it) at UPPER_SHADE x the lip's luma."""
    lip = np.asarray(lip, np.float64)
    top = float(lip.max())
    red = np.clip(top - UPPER_SATURATION * (top - lip), 0.0, None)
    return np.clip(red * UPPER_SHADE * float(lip @ LUMA) / max(float(red @ LUMA), 1e-3), 0.0, 1.0)


def _empty() -> LipBody:
    return LipBody(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, 3), np.float32))


def body_rows(verts: np.ndarray, means: np.ndarray, colors: np.ndarray, candidates: np.ndarray,
              photo_open: float) -> LipBody:
    """[V, 3] rest template (head frame, y down, metres), [N, 3] rest means (same frame), [N, 3] colours as the
    photo's view shows them (rgb in [0, 1]), [N] bool the Gaussians that may be rows (face Gaussians that follow a
    template triangle), photo_open in [0, 1] (`lip_margin.closing_weight`) -> LipBody (module docstring). Empty (M = 0)
    for photo_open 0 (a closed-lips photo, a re-textured scream), without MediaPipe topology, or with fewer than 10
    lip-coloured rows on the lower lip."""
    v = np.asarray(verts, np.float64)
    if photo_open <= 0 or not lmk.has_mediapipe_topology(v.shape[0]):
        return _empty()
    cand = np.flatnonzero(np.asarray(candidates, bool))
    p = np.asarray(means, np.float64)[cand]
    col = np.asarray(colors, np.float64)[cand]
    luma = col @ LUMA
    lx, ly = meeting_line(v)
    dy = p[:, 1] - np.interp(p[:, 0], lx, ly)  # + below the line
    y_up, y_lo = contour_y(v, lmk.LIP_UPPER_OUTER, p[:, 0]), contour_y(v, lmk.LIP_LOWER_OUTER, p[:, 0])
    xr, xl = sorted((v[lmk.MOUTH_CORNER_R, 0], v[lmk.MOUTH_CORNER_L, 0]))
    in_lips = (p[:, 0] > xr) & (p[:, 0] < xl) & (p[:, 1] > y_up) & (p[:, 1] < y_lo)
    middle = np.abs(p[:, 0] - 0.5 * (xr + xl)) < 0.25 * (xl - xr)
    above = middle & (p[:, 1] <= y_up) & (p[:, 1] > y_up - SKIN_RING_M)
    below = middle & (p[:, 1] >= y_lo) & (p[:, 1] < y_lo + SKIN_RING_M)
    upper, lower = in_lips & (dy < 0), in_lips & (dy >= 0)
    if (above | below).sum() < 10 or lower.sum() < 10:
        return _empty()
    skin = np.median(col[above | below], 0)
    teeth = teeth_white(col, float(skin @ LUMA))
    first = np.median(col[lower], 0)  # the lower lip with its teeth and dark: a first lip colour to tell them by
    plain = (teeth < 0.5) & (cavity_dark(col, first) < 0.5)
    if (plain & lower).sum() < 10:
        return _empty()
    lip = np.median(col[plain & lower], 0)
    dark = cavity_dark(col, lip)
    target, weight = np.zeros((len(cand), 3)), np.zeros(len(cand))
    for side in (upper, lower):
        own = side & plain & middle
        if not side.any() or not own.any():
            continue
        shown = 1.0
        if side is upper and above.sum() >= 10:  # an upper lip as light as the skin above it is that skin (SHOWN_UPPER)
            shown = 1.0 - float(smoothstep(*SHOWN_UPPER, np.median(luma[own]) / max(np.median(luma[above]), 1e-3)))
        # its own colour: its plain rows averaged along it ...
        src = side & plain
        g = np.exp(-0.5 * ((p[side, 0][:, None] - p[src, 0][None]) / SIGMA_X_M) ** 2) + 1e-12  # [m, s]
        mine = (g @ col[src]) / g.sum(1, keepdims=True)
        # ... or, not shown, the lip's colour in its shade with the row's own shading (its luma over its lip's median)
        tone = lip if side is lower else upper_lip(lip)
        made = tone[None] * np.clip(luma[side] / max(float(np.median(luma[own])), 1e-3), *SHADING)[:, None]
        target[side] = shown * mine + (1.0 - shown) * made
        weight[side] = np.maximum(teeth[side], 1.0 - shown) * (1.0 - dark[side])
    weight *= float(photo_open)
    keep = weight > 0
    idx = cand[keep]
    return LipBody(idx, weight[keep].astype(np.float32), np.clip(target[keep], 0.0, 1.0).astype(np.float32))


def at_rest(body: LipBody, colors: np.ndarray) -> np.ndarray:
    """[N, 3] colours -> a copy with the body rows taken their full weight towards their target (the lips as the rule
    draws them closed)."""
    out = np.array(colors, np.float32, copy=True)
    out[body.rows] += body.weight[:, None] * (body.target - out[body.rows])
    return out


def body_rgb(body: LipBody, share: float, colors: np.ndarray) -> np.ndarray:
    """LipBody, this frame's share in [0, 1] (photo_open is in body.weight: 1 - the photo's own opening's share), [M, 3]
    the rows' colours as this frame draws them -> [M, 3] float32 the colour they add: share x weight x (target -
    colour)."""
    return (float(share) * body.weight[:, None] * (body.target - np.asarray(colors, np.float32))).astype(np.float32)
