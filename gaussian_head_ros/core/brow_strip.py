"""The brow-lid strip's shade under a driven brow raise: lit skin where a real raise would unfold it.

A photo's strip between the brows and the upper lids is often the darkest skin of the face: the brow ridge
shades it and, on low or furrowed brows, the skin lies folded there (the Obamas', trump_official's). The avatar's
strip is bound to the template, so a driven raise stretches the photo's own strip to fill it: under
tpsmm_driving's held raise (the brows ~8 mm up) obama_speech's strip became one dark, smeared band, the brow hair's
lower edge drawn down into it, and the raise read as a bruise. A real raise unfolds lid skin the photo does not
show, lit like the strip's lit parts (it faces the camera and the light once the fold opens).

The rule (the driver's, `Driver.drive`; reconstruction and the avatar format are untouched):
- Rows (`strip_rows`): the Gaussians that follow a template triangle (`deform.Rig` frames below k_head: bound or
  in the fading band) lying, at rest, between each brow's lower contour (landmarks.BROW_LOWER_R / _L) and its eye's
  upper lid (the upper points of landmarks.EYELID_PAIRS_R / _L and the corners), in the head frame's x-y: t = 0 on
  the contour, 1 on the lid margin. Weight smoothstep(0, BROW_EDGE_T, t) x (1 - smoothstep(*LID_FADE_T, t)) x the
  same fade over EDGE_X_SHARE of the brow's width at each end: the brow hair and the lash line keep their colours.
- Lit colour (`strip_rows`, from the colours the photo's view shows): per eye, the median of the strip's brightest
  LIT_SHARE (weight > 1/2, by luma), or the median of the skin under the eye (`under_eye_weights`) if that is
  lighter (a shadowed strip's brightest quarter is still shadow: obama_speech's luma 0.30 against 0.72 under his
  eyes); a side-lit face keeps its sides (each eye its own).
- Target (`strip_targets`, upper41, session 41): one lit colour per eye made the unfolded strip a flat plate, and
  the weight's faded ends kept the photo's shadowed strip, stretched, between it and the skin: a dark outline at the
  nose and temple ends (business_person, obama_speech, trump_official under tpsmm_driving's held raise, brows
  ~12 mm up). The rows are the strip's and an apron's (APRON_S of the brow's width past each end, weight 0: the
  photo's shadow runs past the brow's ends); each row's target is LIT_PIN x weight x lit + the rest a membrane
  (`membrane_fill`, a harmonic fill on the rows' nearest-neighbour graph) whose rim is the skin RIM_S past the
  apron (its lighter part: RIM_LUMA_SHARE), so the unfolded strip meets the skin beyond its ends with no step.
  Under the brow (BROW_EDGE_T) and towards the lash line (LID_FADE_T) the reach (`strip_reach`) fades: the brow
  hair's lower edge and the lash line keep their colours.
- Each frame (`unfold_rgb`), each row darker than its target as it is drawn in that frame takes
  `share x reach x (target - its colour)` (rows as light or lighter: nothing). Its colour in that frame, not the
  photo's view at rest: much of the strip is the fold the photo sees at a grazing angle, whose colour depends on
  the view (mesh_fit's fold_view_sh: the fold's shadow seen from the photo's direction only, the lid skin
  squarely), and a raise turns those discs. A change fixed from the rest colours (session 21 to 34) added the
  lift of the fold's shadow to discs that now showed their skin, and not to the discs the rest's view saw lit: on
  business_person x tpsmm_driving frame 120 (brows 12 mm up) the strip became pale and grey-purple blotches
  (issue 11, brows35).
- Share per eye (`unfold_share`): a real raise of d beyond the photo's own brows over a strip of the photo's height
  h0 shows d / (h0 + d) of it as unfolded skin; the share is `DriveConfig.brow_unfold_gain x d / (h0 + d)`, clipped
  to [0, 1]. d is the brow's lower contour's mean displacement up in the head frame (a blink, the pose, a lowered
  brow: 0) less how far the photo's brows lay above the rest (GaussianAvatar.rest_brow_shift > 0: the rest lowered
  them; a self clip's frame 0 raises them back). So the rest pose and a frame that gives the photo back are
  unchanged; a photo whose low brows the rest lifted (obama_speech, 3.8 mm) keeps its rest strip as it was.

Source of the constants and the gain 2 (DriveConfig.brow_unfold_gain): by eye on every ../shared portrait x
tpsmm_driving (frame 0: a 6 mm raise held; frames 30 and 59), crops at 3x (session 21, brow21: reports/brow21_s21.md);
gain 1 left obama_speech's band nearly as dark. APRON_S, RIM_S, LIT_PIN: by eye on the nine portraits x
tpsmm_driving frames 0, 110, 120, 135 at 2-3x (upper41): no apron left obama_speech's dark nose-end band; LIT_PIN 0
(the membrane alone) blends best by eye but its strip's middle grades from the membrane's orange to the lid's pink
(test_brow_strip's blotch line: obama_speech 0.99), 1 keeps the plate; 0.5 between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.deform import contour_y, smoothstep

BROW_EDGE_T = 0.2  # the weight rises from the brow's lower contour (t = 0) over this part of the strip
LID_FADE_T = (0.6, 0.85)  # and falls to 0 between these (the upper lid's lash line at t = 1 keeps its colour)
EDGE_X_SHARE = 0.15  # at each end of the brow the weight fades over this share of its width
LIT_SHARE = 0.25  # the lit colour: the median of the strip's brightest quarter (by luma)
UNDER_EYE_SHARE = 0.5  # or the skin under the eye, this share of the corners-to-brow height deep, if lighter
APRON_S = 0.15  # the apron: this share of the brow's width past each end of the strip goes to the membrane too
RIM_S = 0.15  # the membrane's fixed rim: the skin this share of the brow's width past the apron ...
RIM_LUMA_SHARE = 0.8  # ... at least this share of its median luma (not stray hair nor a shadowed corner)
LIT_PIN = 0.5  # each row's target: LIT_PIN x weight x lit + the rest the membrane (`strip_targets`)
MEMBRANE_K = 8  # the membrane fill's graph: each point's nearest neighbours
MEMBRANE_PRIOR = 1e-3  # and its pull to the prior per edge


@dataclass
class StripShade:
    """The rows a raise lightens, how far, and towards which colour (`strip_rows`)."""

    rows: np.ndarray  # [M] int64 indices of Gaussians, ascending
    eye: np.ndarray  # [M] int64 0 (subject's right) or 1 (left): whose share and lit colour each row takes
    weight: np.ndarray  # [M] float32 each row's strip weight (`strip_weights`), in (0, 1]
    lit: np.ndarray  # [2, 3] float32 each eye's lit colour (rgb in [0, 1])
    target: np.ndarray  # [M, 3] float32 each row's colour at full share and reach (`strip_targets`)
    reach: np.ndarray  # [M] float32 how far each row goes to its target at full share (`strip_reach`), in (0, 1]
    rest_height_m: np.ndarray  # [2] float64 each eye's corners-to-brow's-lower-contour height at rest (metres)
    photo_raise_m: np.ndarray  # [2] float64 how far the photo's brows lay above the rest's (metres, >= 0)


def _eye_sides():
    """Per eye (subject's right, left): (brow lower contour, upper lid margin, corners) landmark indices."""
    upper_r = tuple(p[0] for p in lmk.EYELID_PAIRS_R) + lmk.EYE_CORNERS[0]
    upper_l = tuple(p[0] for p in lmk.EYELID_PAIRS_L) + lmk.EYE_CORNERS[1]
    return ((lmk.BROW_LOWER_R, upper_r, lmk.EYE_CORNERS[0]), (lmk.BROW_LOWER_L, upper_l, lmk.EYE_CORNERS[1]))


def _strip_coords(verts: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[V >= 468, 3] rest template (head frame, y down, metres), [P, 3] rest points -> ([P, 2] t, [P, 2] s): per eye,
    each point's place in its brow-lid strip in the head frame's x-y: t = 0 on the brow's lower contour, 1 on the
    upper lid margin (both curves held beyond their ends); s = 0 at the brow's smaller-x end, 1 at its larger-x
    end (the brow's lower contour's x span)."""
    v, p = np.asarray(verts, np.float64), np.asarray(points, np.float64)
    t, s = np.zeros((len(p), 2)), np.zeros((len(p), 2))
    for e, (brow, lid, _) in enumerate(_eye_sides()):
        xs = v[list(brow), 0]
        x0, x1 = float(xs.min()), float(xs.max())
        yb, yl = contour_y(v, brow, p[:, 0]), contour_y(v, lid, p[:, 0])
        t[:, e] = (p[:, 1] - yb) / np.maximum(yl - yb, 1e-6)
        s[:, e] = (p[:, 0] - x0) / max(x1 - x0, 1e-9)
    return t, s


def strip_weights(verts: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[V >= 468, 3] rest template (head frame, y down, metres) and [P, 3] rest points -> [P, 2] each point's weight
    in each eye's brow-lid strip (module docstring), 0 outside it."""
    return _weights(*_strip_coords(verts, points))


def _weights(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """[P, 2] t and s (`_strip_coords`) -> [P, 2] the strip weights (`strip_weights`)."""
    w = _t_fade(t) * smoothstep(0.0, EDGE_X_SHARE, s) * (1 - smoothstep(1 - EDGE_X_SHARE, 1.0, s))
    return np.where((t > 0) & (t < 1) & (s > 0) & (s < 1), w, 0.0)


def _t_fade(t: np.ndarray) -> np.ndarray:
    """Strip coordinate t (`_strip_coords`) -> the rise over BROW_EDGE_T under the brow times the fall over
    LID_FADE_T to the lash line (float64): the weight's and the reach's profile across the strip."""
    t = np.asarray(t, np.float64)
    return smoothstep(0.0, BROW_EDGE_T, t) * (1 - smoothstep(*LID_FADE_T, t))


def under_eye_weights(verts: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[V >= 468, 3] rest template and [P, 3] rest points -> [P, 2] bool: the skin under each eye, between its
    lower lid and UNDER_EYE_SHARE of the eye's corners-to-brow height below it, within the middle of its corners'
    span (the lit reference of the strip that faces like it and that no brow ridge shades)."""
    v, p = np.asarray(verts, np.float64), np.asarray(points, np.float64)
    out = np.zeros((len(p), 2), bool)
    for e, (brow, _, corners) in enumerate(_eye_sides()):
        lower = tuple(q[1] for q in (lmk.EYELID_PAIRS_R, lmk.EYELID_PAIRS_L)[e]) + corners
        xs = v[list(corners), 0]
        x0, x1 = float(xs.min()), float(xs.max())
        height = float(np.mean(v[list(corners), 1]) - np.mean(v[list(brow), 1]))
        yl = contour_y(v, lower, p[:, 0])
        s = (p[:, 0] - x0) / max(x1 - x0, 1e-9)
        out[:, e] = (p[:, 1] > yl) & (p[:, 1] < yl + UNDER_EYE_SHARE * height) & (s > 0.15) & (s < 0.85)
    return out


def strip_rows(verts: np.ndarray, means: np.ndarray, colors: np.ndarray, bound: np.ndarray,
               rest_brow_shift=(0.0, 0.0)) -> StripShade:
    """[V, 3] rest template, [N, 3] rest means, [N, 3] colours as the photo's view shows them (rgb in [0, 1]), [N]
    bool the Gaussians that follow a template triangle, [2] or scalar the rest's shift of the photo's brows
    (GaussianAvatar.rest_brow_shift: metres, y down; > 0: the photo's brows lay higher and the rest lowered them)
    -> StripShade (module docstring). Empty (M = 0) without MediaPipe topology or without such Gaussians in a
    strip."""
    v = np.asarray(verts, np.float64)
    photo_raise = np.maximum(np.broadcast_to(np.ravel(np.asarray(rest_brow_shift, np.float64)), (2,)), 0.0)
    empty = StripShade(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32),
                       np.zeros((2, 3), np.float32), np.zeros((0, 3), np.float32), np.zeros(0, np.float32),
                       np.ones(2), photo_raise.copy())
    if not lmk.has_mediapipe_topology(v.shape[0]):
        return empty
    cand = np.flatnonzero(np.asarray(bound, bool))
    means, colors = np.asarray(means, np.float64), np.asarray(colors, np.float64)
    t, s = _strip_coords(v, means[cand])
    w2 = _weights(t, s)
    eye = np.argmax(w2, 1)
    w = w2[np.arange(len(cand)), eye]
    keep = w > 0
    rows, eye, w = cand[keep], eye[keep], w[keep]
    if not len(rows):
        return empty
    col = colors[rows]
    luma = col @ LUMA
    under = under_eye_weights(v, means[cand])
    lit = np.zeros((2, 3))
    has = np.zeros(2, bool)  # an eye without a strip core has no lit colour: its rows are left out
    for e in range(2):
        core = (eye == e) & (w > 0.5)
        if not np.any(core):
            continue
        has[e] = True
        bright = luma[core] >= np.quantile(luma[core], 1 - LIT_SHARE)
        lit[e] = np.median(col[core][bright], 0)
        below = colors[cand[under[:, e] > 0]]
        if len(below) and float(np.median(below, 0) @ LUMA) > float(lit[e] @ LUMA):
            lit[e] = np.median(below, 0)
    keep = has[eye]
    rows, eye, w = _with_apron(cand, t, s, rows[keep], eye[keep], w[keep], has)
    target = strip_targets(means, colors, cand, t, s, rows, eye, w, lit)
    at = np.searchsorted(cand, rows)
    height = np.array([np.mean(v[list(c), 1]) - np.mean(v[list(b), 1]) for b, _, c in _eye_sides()])
    return StripShade(rows, eye, w.astype(np.float32), lit.astype(np.float32), target,
                      strip_reach(t[at, eye]), np.maximum(height, 1e-6), photo_raise.copy())


def _apron_ends(t: np.ndarray, s: np.ndarray, beyond: float, width: float) -> np.ndarray:
    """[P] t, [P] s of one eye (`_strip_coords`) -> [P] bool: between the brow's lower contour and the lid's fade
    (0 < t < LID_FADE_T[1]), from `beyond` to `beyond + width` of the brow's width past either end of the strip."""
    ends = ((s > -beyond - width) & (s <= -beyond)) | ((s >= 1 + beyond) & (s < 1 + beyond + width))
    return (t > 0) & (t < LID_FADE_T[1]) & ends


def _with_apron(cand, t, s, rows, eye, w, has):
    """[C] ascending candidate indices with their [C, 2] t and s (`_strip_coords`), the strip's [M] rows (a subset of
    cand), eyes and weights, [2] bool the eyes with a lit colour -> (rows, eye, weight), ascending rows: the strip's
    and the apron's (weight 0), the free candidates within APRON_S of the brow's width past each end of an eye's strip
    (`_apron_ends`; the photo's shadow there runs past the brow's ends)."""
    free = np.ones(len(cand), bool)
    free[np.searchsorted(cand, rows)] = False
    add_rows, add_eye = [rows], [eye]
    for e in range(2):
        on = free & _apron_ends(t[:, e], s[:, e], 0.0, APRON_S) if has[e] else np.zeros(len(cand), bool)
        free &= ~on
        add_rows.append(cand[on])
        add_eye.append(np.full(int(on.sum()), e, np.int64))
    rows, eye = np.concatenate(add_rows), np.concatenate(add_eye)
    w = np.concatenate([w, np.zeros(len(rows) - len(w))])
    o = np.argsort(rows)
    return rows[o], eye[o], w[o]


def strip_targets(means: np.ndarray, colors: np.ndarray, cand: np.ndarray, t: np.ndarray, s: np.ndarray,
                  rows: np.ndarray, eye: np.ndarray, weight: np.ndarray, lit: np.ndarray) -> np.ndarray:
    """[N, 3] rest means (metres), [N, 3] colours as the photo's view shows them, [C] ascending indices of the
    Gaussians that follow a template triangle with their [C, 2] t and s (`_strip_coords`), the strip's and apron's
    [M] rows (a subset of cand), [M] eyes, [M] weights (apron 0), [2, 3] lit colours -> [M, 3] float32 each row's
    target: weight x LIT_PIN x lit + the rest the membrane (`membrane_fill`) from the skin beyond the apron
    (RIM_S of the brow's width past it), so a full unfold meets the skin around the strip with no step (no
    outline)."""
    lit_rows = np.asarray(lit, np.float64)[eye]
    taken = np.zeros(len(cand), bool)
    taken[np.searchsorted(cand, rows)] = True
    fill = lit_rows.copy()
    luma = colors[cand] @ LUMA
    for e in range(2):
        on = eye == e
        ring = _apron_ends(t[:, e], s[:, e], APRON_S, RIM_S) & ~taken
        if not np.any(on) or not np.any(ring):
            continue
        ring &= luma >= RIM_LUMA_SHARE * np.median(luma[ring])  # not hair nor a shadowed corner
        fill[on] = membrane_fill(means[rows[on], :2], means[cand[ring], :2], colors[cand[ring]], lit_rows[on])
    w = np.asarray(weight, np.float64)[:, None] * LIT_PIN
    return (w * lit_rows + (1 - w) * fill).astype(np.float32)


def membrane_fill(inner: np.ndarray, rim: np.ndarray, rim_rgb: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """[M, 2] points to fill, [R, 2] rim points with [R, 3] colours, [M, 3] a prior -> [M, 3] the membrane
    (discrete harmonic) fill: on the graph of each point's MEMBRANE_K nearest points of both sets, each inner value
    the mean of its neighbours', the rim's fixed; a weak pull (MEMBRANE_PRIOR per edge) to the prior keeps points
    cut off from the rim defined. Standard Dirichlet problem on a k-nearest-neighbour graph (graph Laplacian)."""
    from scipy.sparse import csr_matrix, diags
    from scipy.sparse.linalg import spsolve
    from scipy.spatial import cKDTree

    pts = np.concatenate([inner, rim])
    k = min(MEMBRANE_K + 1, len(pts))
    if k < 2:
        return np.asarray(prior, np.float64).copy()
    _, nb = cKDTree(pts).query(inner, k)
    nb = nb[:, 1:]  # not itself
    m = len(inner)
    r_i = np.repeat(np.arange(m), nb.shape[1])
    c_i = nb.ravel()
    a = csr_matrix((np.ones(len(r_i)), (r_i, c_i)), shape=(m, len(pts)))
    a_in, a_rim = a[:, :m], a[:, m:]
    a_in = ((a_in + a_in.T) > 0).astype(np.float64)  # symmetric among the inner points
    deg = np.asarray(a_in.sum(1)).ravel() + np.asarray(a_rim.sum(1)).ravel()
    lap = (diags(deg + MEMBRANE_PRIOR) - a_in).tocsc()
    rhs = a_rim @ rim_rgb + MEMBRANE_PRIOR * np.asarray(prior, np.float64)
    return np.column_stack([spsolve(lap, rhs[:, c]) for c in range(3)])


def strip_reach(t: np.ndarray) -> np.ndarray:
    """[M] the rows' strip coordinate t (`_strip_coords`) -> [M] float32 how far each goes to its target at full share:
    1 but for the fade to the lash line (LID_FADE_T; the lash line keeps its colour) and, under the brow, the rise
    over BROW_EDGE_T (the brow hair's lower edge keeps its colour); at the strip's ends the target itself fades to
    the skin beyond (`strip_targets`)."""
    return _t_fade(t).astype(np.float32)


def unfold_share(disp: np.ndarray, shade: StripShade, gain: float) -> np.ndarray:
    """[V, 3] the control's template displacement (head frame, y down, metres), StripShade, gain -> [2] each eye's
    share in [0, 1]: gain x d / (h0 + d), d the raise of the brow's lower contour (its mean displacement up, in the
    head frame) beyond the photo's own brows (shade.photo_raise_m; 0 below them), h0 the photo's strip height
    (shade.rest_height_m + photo_raise_m)."""
    d = np.asarray(disp, np.float64)
    out = np.zeros(2)
    if not len(shade.rows) or gain <= 0:
        return out
    for e, (brow, _, corners) in enumerate(_eye_sides()):
        raise_m = max(0.0, -float(np.mean(d[list(brow), 1])) - float(shade.photo_raise_m[e]))
        out[e] = min(1.0, gain * raise_m / (shade.rest_height_m[e] + shade.photo_raise_m[e] + raise_m))
    return out


def unfold_rgb(shade: StripShade, share: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """StripShade, [2] each eye's share (`unfold_share`), [M, 3] the strip rows' colours as this frame draws them
    (rgb in [0, 1], after the view-dependent colour and the maps before this one) -> [M, 3] float32 the colour
    they add: share x reach x (target - colour) on the rows darker than their target (by luma), 0 on the others
    (never darker)."""
    c = np.asarray(colors, np.float64)
    target = np.asarray(shade.target, np.float64)  # [M, 3]
    k = np.asarray(share, np.float64)[shade.eye] * shade.reach * (c @ LUMA < target @ LUMA)
    return (k[:, None] * (target - c)).astype(np.float32)
