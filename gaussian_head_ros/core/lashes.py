"""The closed lids' lash line: one even line, not a row of beads (the driver's lash map).

mesh_fit carries the photo's lash band (the upper lid's strip of photo Gaussians: lashes, eyeliner and the glints
between them) down with the lid's margin in a blink and folds it onto the margin (reconstruct.eyelids:
margin_binding, carry_by_margin, fold_lashes). Each of those Gaussians keeps its photo colour and its place along
the lid, so the band's 3-6 px of dark lash clumps and light gaps close into one thin line of dark beads with light
gaps between them (lids20, session 20: with the band hidden the beads go). Smoothing the band's colours at
reconstruction cost frame 0 0.2-0.4 dB (lp_d0), at rest too.

So the driver smooths them as the lid closes, and only then: `lash_map` takes, once per avatar, each of the line's
Gaussians (`lash_rows`: the carried band, and the eye openings' rim that the falloff carries into the closed line
with it) and its colour averaged over its neighbours where a closed lid puts them (along the closed line, same eye),
minus its own colour; `lash_weights` gives, per frame, how far each eye's lid is closed (0 at rest and up to
`DriveConfig.lash_closure[0]` of the rest gap closed, 1 from [1] on); the driver adds weight x map to those colours
(core.drive, numpy and torch, one `Driver._colour_maps` with the wrinkle map). The avatar file is unchanged: the map
is made from what it holds (the carried Gaussians are the static ones bound to an upper-lid strip triangle,
core.deform), so avatars saved before it get it too, and at rest the colours are exactly the file's. Learned
avatars carry no band (their static Gaussians are unbound) and get no map. Cost per frame: the two lid gaps
(~20 us) and, in a blink, one add on the line's few hundred Gaussians.

The crease map (`crease_rows`, `crease_map`, `crease_rgb`), with the same weights: the strip's photo Gaussians by the
crease (bound to its crease-side vertices alone, part face) grow with the stretching strip in front of the closed
lid's skin; as the lid closes they take that skin's colour around where they land (session 38: obama_speech's
dark brown patch, business_person's grey smudge). Tens of Gaussians per avatar. With them, the strip's light Gaussians
the lid carries by their own weights (`spread_rows`: the made-up lid's pale band, the glints between the lashes), which
it spreads at their own size over the closed lid's skin: a half-closed lid drew them as pale and dark specks across
it, a crumpled lid (sadtalker frames 24-28, session 60). 10-150 Gaussians per avatar.

The shut lid's light (`lid_shade`, `lid_shade_rgb`, from DriveConfig.lid_shade_closure on): the photo's open eye
has no lid, and its fill was one flat patch from the lash line up to the brow, a fifth darker than the skin under
the eye (crease62). As a lid shuts its skin is lit towards the skin under the eye and shaded over its height as
real shut lids are (CLOSED_LID_SHADE: into the lash line below, the fold's shade under the brow above). Its colour
is the skin round it (LID_RING, shutlid63): the fill's own colour, the inpainting's, was a plate, a glow or a smear
against the cheek and the fold.

The same lid closure hides the eyeballs under a shut lid (`eyeball_share`, core.drive's opacities): the closed lid's
flat strip is a chord across the eyeball's bulge, and a turned iris poked through it (obama_speech, session 61).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as MplPath

from gaussian_head_ros.core import deform
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_FACE, PART_STATIC
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.deform import LID_MID, LID_UPPER
from gaussian_head_ros.core.eyes import EYEBALL_RADIUS_M

LID_UPPER_L = np.array([p[0] for p in lmk.EYELID_PAIRS_L])  # the subject's left upper lid's margin vertices


def upper_lid_strip(faces: np.ndarray) -> np.ndarray:
    """[F, 3] template triangles -> [F] bool: the strip along each upper lid, the triangles with some but not all
    of their vertices on an upper-lid margin (LID_UPPER)."""
    on = np.isin(np.asarray(faces), LID_UPPER)
    return on.any(1) & ~on.all(1)


@dataclass
class LashMap:
    """Per avatar: the colour change that evens the lash line out along each closed lid."""

    rows: np.ndarray  # [M] int64 ascending Gaussian indices (the carried band and the eye openings' rim)
    rgb: np.ndarray  # [M, 3] float32: the smoothed colour minus the own colour (rgb 0..1), added at weight 1
    eye: np.ndarray  # [M] int64 0 = the subject's right eye, 1 = left


def _opening_rings() -> list[list[int]]:
    """Each eye's (right, left) opening contour: its corners and its upper and lower lid vertices, in order."""
    return [[corners[1]] + [p[0] for p in pairs] + [corners[0]] + [p[1] for p in pairs][::-1]
            for corners, pairs in ((lmk.EYE_CORNERS[0], lmk.EYELID_PAIRS_R), (lmk.EYE_CORNERS[1], lmk.EYELID_PAIRS_L))]


def eye_openings(verts: np.ndarray) -> list[MplPath]:
    """[V >= 468, 3] template (head frame) -> each eye's (right, left) opening at rest seen along z: the polygon
    through its corners and its upper and lower lid vertices (lmk.EYELID_PAIRS_*), in x, y."""
    v = np.asarray(verts, np.float64)
    return [MplPath(v[ring, :2]) for ring in _opening_rings()]


def lash_rows(part, face_id, means, verts, faces) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussians a closed lid draws its lash line with -> (rows [M] int64 ascending, eye [M] int64: 0 the
    subject's right, 1 left); empty without a carried band or a MediaPipe template.

    part [N] uint8, face_id [N] int, means [N, 3] (rest, head frame, m), verts [V, 3], faces [F, 3]. The carried band:
    static Gaussians bound to an upper-lid strip triangle (`upper_lid_strip`), carried by its margin (core.deform;
    mesh_fit's lashes and eyeliner). With it, the eye openings' rim: static unbound Gaussians inside an eye's opening
    at rest (`eye_openings`; mesh_fit's dark band along the lids and the sclera specks in it, which the falloff
    carries with the lids: obama_speech's closed line was dotted white by them) and at most an eyeball's radius
    (eyes.EYEBALL_RADIUS_M) behind its contour's deepest vertex: seen along z, the back of the head lies inside the
    openings too (mesh_fit's completed hair, 15-17 cm behind the lids), and averaged into the closed line's colours
    (the map weighs the rows by their closed places in x and y) its dark hair darkened the lid's own light
    Gaussians that a blink spreads over the closed lid into grey specks (business_person: 14 of the map's 337 rows
    were her back hair, luma 0.14; a lid Gaussian of luma 0.78 at rest drew a 0.47 speck in a blink)."""
    v = np.asarray(verts, np.float64)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    none = np.zeros(0, np.int64)
    if not lmk.has_mediapipe_topology(len(v)) or not len(f):
        return none, none
    part, fid = np.asarray(part), np.asarray(face_id, np.int64)
    band = (part == PART_STATIC) & (fid >= 0) & (fid < len(f))
    band[band] = upper_lid_strip(f)[fid[band]]
    if not band.any():
        return none, none
    eye = np.full(len(part), -1, np.int64)
    eye[band] = np.where(np.isin(f[fid[band]], LID_UPPER_L).any(1), 1, 0)
    p = np.asarray(means, np.float64)
    loose = np.flatnonzero((part == PART_STATIC) & (fid < 0))
    for e, (opening, ring) in enumerate(zip(eye_openings(v), _opening_rings())):
        near = loose[p[loose, 2] <= v[ring, 2].max() + EYEBALL_RADIUS_M]  # z: away from the camera
        eye[near[opening.contains_points(p[near, :2])]] = e
    rows = np.flatnonzero(eye >= 0)
    return rows, eye[rows]


def lash_map(rows, eye, closed_means, colors, opacities, sigma_along_m: float, sigma_across_m: float) -> LashMap | None:
    """The lash line's Gaussians (rows [M], eye [M]: `lash_rows`) and their colour change -> LashMap, or None (no
    rows, or sigma_along_m <= 0).

    closed_means [N, 3] every Gaussian's place when each upper lid lies on its lower one (a full blink, the head
    at rest; head frame, m; core.drive.Driver), colors [N, 3] rgb in [0, 1] (the DC colours), opacities [N] in
    [0, 1]. Each row's smoothed colour: the mean of the rows' colours in the same eye, each weighed by its opacity
    and a Gaussian of the two closed places' distance, standard deviation sigma_along_m along the head frame's x
    (along the lid) and sigma_across_m along y (the folded lashes lie on the closed line; what the lid's skin
    spreads over stays apart)."""
    rows, eye = np.asarray(rows, np.int64), np.asarray(eye, np.int64)
    if sigma_along_m <= 0 or not len(rows):
        return None
    p = np.asarray(closed_means, np.float64)[rows]
    col = np.asarray(colors, np.float64)[rows]
    w = np.exp(-0.5 * ((p[:, None, 0] - p[None, :, 0]) / sigma_along_m) ** 2
               - 0.5 * ((p[:, None, 1] - p[None, :, 1]) / max(sigma_across_m, 1e-9)) ** 2)
    w *= (eye[:, None] == eye[None, :]) * np.asarray(opacities, np.float64)[rows][None, :]
    smooth = (w @ col) / np.maximum(w.sum(1, keepdims=True), 1e-12)
    return LashMap(rows, (smooth - col).astype(np.float32), eye)


def crease_rows(part, face_id, bary, faces) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The upper lids' strip Gaussians a closed lid shows above its lash line and the lid skin under them -> (rows
    [M] int64 ascending, their eye [M] int64, skin [K] int64 ascending, its eye [K]; 0 the subject's right, 1 left).

    part [N] uint8, face_id [N] int, bary [N, 3], faces [F, 3]; all empty without a MediaPipe-topology strip. rows:
    bound Gaussians (PART_FACE) on an upper-lid strip triangle (`upper_lid_strip`) with no weight on its margin
    vertices (LID_UPPER): mesh_fit's photo Gaussians on the strip's crease side (reconstruct.eyelids.margin_binding
    binds them to its crease-side vertices alone). The photo sees them in the fold between lid and brow: the crease's
    shadow, a deep-set eye's shade, eyeshadow. A closing lid stretches their triangles and grows them (up to
    deform.MAX_BOUND_GROWTH, 2.5x) in front of the closed lid's skin: obama_speech's closed lids a dark brown blotchy
    patch, business_person's left one a grey smudge (session 38). skin: the bound Gaussians on those triangles with
    weight on a margin vertex: mesh_fit's closed-lid skin (eyelids.closed_lid_skin, every weight > 0), which waits
    behind the strip and shows what the closed lid looks like there."""
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    fid = np.asarray(face_id, np.int64)
    on = (np.asarray(part) == PART_FACE) & (fid >= 0) & (fid < len(f))
    none = np.zeros(0, np.int64)
    if not len(f) or not on.any():
        return none, none, none, none
    on[on] = upper_lid_strip(f)[fid[on]]
    rows = np.flatnonzero(on)
    margin = np.isin(f[fid[rows]], LID_UPPER)  # [M, 3] which of each one's triangle corners are on the margin
    weight = (np.asarray(bary, np.float64)[rows] * margin).sum(1)
    eye = np.where(np.isin(f[fid[rows]], LID_UPPER_L).any(1), 1, 0).astype(np.int64)
    crease = weight <= 0.0
    return rows[crease], eye[crease], rows[~crease], eye[~crease]


def margin_heights(face_id, bary, means, verts, faces) -> tuple[np.ndarray, np.ndarray]:
    """How far Gaussians on upper-lid strip triangles lie above their margin point -> (d [M] float64 metres, positive
    above the margin, i.e. against its way down; h [M] float64 the lid's opening there, metres).

    face_id [M] strip triangles (`upper_lid_strip`), bary [M, 3] (weight on a margin vertex, LID_UPPER, needed), means
    [M, 3] (rest, head frame, m), verts [V >= 468, 3] rest template, faces [F, 3]. The margin point: the triangle's
    margin vertices weighed by the Gaussian's weights on them (normalised); its way down: the same weights on each
    margin vertex's way to its lower-lid partner (lmk.EYELID_PAIRS_*); d along that way, h its length."""
    f = np.asarray(faces, np.int64)[np.asarray(face_id, np.int64)]  # [M, 3]
    v = np.asarray(verts, np.float64)
    on = np.isin(f, LID_UPPER)
    lower = dict(p for pairs in (lmk.EYELID_PAIRS_R, lmk.EYELID_PAIRS_L) for p in pairs)
    partner = np.where(on, np.vectorize(lambda u: lower.get(int(u), int(u)))(f), f) if f.size else f
    w = np.asarray(bary, np.float64) * on
    w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
    margin = np.einsum("mk,mkd->md", w, v[f])
    gap = np.einsum("mk,mkd->md", w, v[partner] - v[f])  # the margin's way down to the lower lid
    h = np.linalg.norm(gap, axis=1)
    d = np.einsum("md,md->m", margin - np.asarray(means, np.float64), gap / np.maximum(h, 1e-12)[:, None])
    return d, h


def spread_rows(part, face_id, bary, means, verts, faces) -> tuple[np.ndarray, np.ndarray]:
    """The upper lids' light strip Gaussians a closing lid spreads over its skin -> (rows [M] int64 ascending, eye [M]
    int64: 0 the subject's right, 1 left); empty without a MediaPipe-topology strip.

    part [N] uint8, face_id [N] int, bary [N, 3], means [N, 3] (rest, head frame, m), verts [V, 3], faces [F, 3].
    mesh_fit's photo Gaussians on an upper-lid strip triangle (`upper_lid_strip`) that margin_binding carries by their
    own weights (reconstruct.eyelids: part static, weight on a crease-side vertex; the made-up lid's pale band and
    the glints between the lashes, as light as the lid's skin in the photo), above their margin point
    (`margin_heights`: fold_lashes gives a dark lash below its margin point weight on the crease side too, and it
    stays in the lash line). A closing lid spreads them at their own size over the closed lid's skin: sadtalker's
    half-closed lids (frames 24-28) were crumpled, pale and dark specks across them (session 60). The crease map
    gives them that skin's colour as the lid closes."""
    v, f = np.asarray(verts, np.float64), np.asarray(faces, np.int64).reshape(-1, 3)
    none = np.zeros(0, np.int64)
    if not lmk.has_mediapipe_topology(len(v)) or not len(f):
        return none, none
    fid = np.asarray(face_id, np.int64)
    on = (np.asarray(part) == PART_STATIC) & (fid >= 0) & (fid < len(f))
    on[on] = upper_lid_strip(f)[fid[on]]
    rows = np.flatnonzero(on)
    tri = f[fid[rows]]  # [M, 3]
    b = np.asarray(bary, np.float64)[rows]
    crease_side = (b * ~np.isin(tri, LID_UPPER)).sum(1)
    above = margin_heights(fid[rows], b, np.asarray(means, np.float64)[rows], v, f)[0] > 0
    keep = (crease_side > 1e-6) & above
    eye = np.where(np.isin(tri, LID_UPPER_L).any(1), 1, 0).astype(np.int64)
    return rows[keep], eye[keep]


@dataclass
class CreaseMap:
    """Per avatar: the closed lid's skin colour the upper lids' crease-side strip Gaussians take as a lid closes."""

    rows: np.ndarray  # [M] int64 ascending Gaussian indices (`crease_rows`)
    rgb: np.ndarray  # [M, 3] float32 rgb 0..1: the closed lid's skin around each one's closed place
    eye: np.ndarray  # [M] int64 0 = the subject's right eye, 1 = left


def crease_map(rows, eye, skin, skin_eye, closed_means, colors, opacities, sigma_m: float) -> CreaseMap | None:
    """The strip's crease-side Gaussians (rows [M], eye [M]: `crease_rows`) and the closed lid's skin colour around
    each -> CreaseMap, or None (no rows or skin, or sigma_m <= 0). closed_means [N, 3] every Gaussian's place in a
    full blink (head frame, m), colors [N, 3] (DC, rgb 0..1), opacities [N]: each row's colour is the mean of its
    eye's lid skin's (skin [K], skin_eye [K]), each weighed by its opacity and a Gaussian (standard deviation sigma_m)
    of the two closed places' distance in x and y: the skin's shading and texture at that scale (the photo with the
    eyes filled from around them, eyelids.closed_lid_photo), not one flat colour per lid (lids7 dropped that: a flat
    patch). A row with no skin within reach keeps no colour of its own: it is left out."""
    rows, eye = np.asarray(rows, np.int64), np.asarray(eye, np.int64)
    skin, skin_eye = np.asarray(skin, np.int64), np.asarray(skin_eye, np.int64)
    if sigma_m <= 0 or not len(rows) or not len(skin):
        return None
    p = np.asarray(closed_means, np.float64)
    d2 = ((p[rows, None, :2] - p[None, skin, :2]) ** 2).sum(-1)
    w = np.exp(-0.5 * d2 / sigma_m ** 2) * (eye[:, None] == skin_eye[None, :])
    w *= np.asarray(opacities, np.float64)[skin][None, :]
    total = w.sum(1)
    near = total > 1e-6
    if not near.any():
        return None
    target = (w[near] @ np.asarray(colors, np.float64)[skin]) / total[near, None]
    return CreaseMap(rows[near], target.astype(np.float32), eye[near])


def crease_rgb(crease: CreaseMap, weight: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """CreaseMap, [2] each eye's weight (`lash_weights`), [M, 3] its rows' colours as this frame draws them (after
    the view-dependent colour: the photo's view shows the fold's shade by it, mesh_fit's eyelids.fold_shade) ->
    [M, 3] float32 the colour they add: weight x (skin - colour)."""
    k = np.asarray(weight, np.float64)[crease.eye][:, None]
    return (k * (np.asarray(crease.rgb, np.float64) - np.asarray(colors, np.float64))).astype(np.float32)


# A real shut upper lid's luminance over its height, over the lid's own (its mean at heights 0.4-1.2): the median of
# 16 shut eyes of the ../shared driving clips (tpsmm_driving 20-21, lp_d0 65-66, lp_d18 94-96 and 186, both eyes; the
# frame's MediaPipe landmarks; along the line from each upper-lid margin vertex (height 0) over its fold-row vertex
# (lmk.UPPER_LID_ROW_*, 1) to three times as high, the middle five of the seven columns, medians over them). The lid
# rolls away into the lash line over its lowest 0.3 (0.76 at 0.1, 0.91 at 0.2); it is lit evenly up to 1.3; above
# it the fold sinks under the brow, a step at 1.4 (0.92) and darkest at 2.0 (0.75), back to the lid's level at 2.6.
# (Quartiles: 0.65 / 0.82 at 0.1, 0.82 / 1.00 at 1.4, 0.72 / 0.81 at 2.0.) Our shut lids (the nine ../shared
# portraits' avatars on those frames, same measure): 0.61 at 0.1, 1.00 up to 1.6, 0.92 at 2.0: one flat fill from
# the lash line up to the brow.
CLOSED_LID_HEIGHT = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4,
                              2.5, 2.6])
CLOSED_LID_SHADE = np.array([0.57, 0.76, 0.91, 0.94, 1.0, 1.0, 0.92, 0.93, 0.91, 0.87, 0.81, 0.77, 0.75, 0.78, 0.78,
                             0.81, 0.82, 0.90, 1.0])
# ... and the skin below the shut eye, 0.5-2 lid heights under the closed line, over the lid: 1.03 (0.96-1.08 over
# those heights); ours 1.30 (1.11-1.34): our shut lid was a patch a fifth darker than the skin round it (the
# closed-lid fill's level is the photo's skin above and below the eye, and above is the fold's shade and makeup)
UNDER_EYE_OVER_LID = 1.03
UNDER_EYE_BAND = (0.5, 2.0)  # ... those heights under the lower lid's margin, in lid heights (`lid_heights`)
# ... the lid lit at most this much towards that level: the nine portraits' avatars ask 1.10-1.68 (obama_speech 1.68,
# two_children 1.40-1.52, business_person 1.27-1.38), and lit that far their lids glowed orange-pink over the lash
# line (the fill's saturated rgb scaled); at 1.15 business_person's and astronaut_eileen_collins' lids read as lit
# skin under the fold's shade (crease62 sheets)
LID_GAIN_MAX = 1.15
# the lid is lit to its level between these heights, none below the first and above the last, linear between: the
# table's lid (its roll into the lash line ends at 0.4, its step to the fold is at 1.3-1.4). Lit down to the margin,
# the closed-lid fill's light rows just above the lash line (up to 1.4x its skin's luminance) drew a salmon streak
# along it (two_children_multiface, business_person, tpsmm_driving 20)
LID_LIFT_HEIGHTS = (0.2, 0.4, 1.3, 1.6)
# ... its rows lit from the first x its closed skin's luminance on, wholly from the second (the lash line's 0.3 x
# that skin, lash_line_shade, stays dark)
LID_SKIN_LUMA = (0.5, 0.8)
# ... measured on the middle five of each lid's seven columns (lmk.EYELID_PAIRS_*): the shade is whole from this far
# in from the eye's corners (along the line between them, shares of it) and fades to none at them
LID_SHADE_CORNER = 0.15
# A shut lid takes the person's skin round it (`_ring_colours`): a lid's closed skin is the photo with the eye filled
# from around it (mesh_fit's closed-lid fill), one patch whose colour is the inpainting's, not the skin's next to it:
# on the nine ../shared portraits' avatars a pale plate (astronaut_eileen_collins), a glowing orange lid inside the
# fold's shade (lp_s9_monalisa, lp_d9_woman_turned), a flat grey plate with an edge under the fold (trump_official),
# a dark smear (obama_speech) at the blink frames (tpsmm_driving 21, lp_d18 96, lp_d0 65; shutlid63's eye sheets).
# Over each lid row (`lid_shade`'s lift x its skin-likeness: the lashes stay) its colour goes this share of the way
# to that skin's hue, at its own luminance held within RING_LUMA of the skin's, before the shade; 0 = the lid's own
# colour lit by its gain (crease62). The nine avatars, lids shut (ratio 0.2) from the source camera at 2x
# (test_lashes.shut_lid_levels over session 63's avatars of them), 18 eyes, old -> new: lid / under-eye 0.66-1.24
# -> 0.87-1.08 (real 0.97: UNDER_EYE_OVER_LID; lp_s9_monalisa 1.24, 1.16 -> 1.07, 1.03; obama_speech 0.66 -> 0.87);
# fold / lid in the real 0.75-0.87 on 5 eyes either way. Their lid rows at a full blink
# (scripts/shut_lid_colour.py): the largest channel of the lid's chromaticity (rgb / luminance) off the
# under-eye skin's 0.007-0.079 -> 0.001-0.027; the lid's top (heights 1.0-1.3) over the fold's foot (1.3-1.6) 0.97-1.34
# -> 0.97-1.35, nearer 1 on 9 of 18 eyes (lp_s9_monalisa 1.23 -> 1.08, obama_official 1.34 -> 1.16; obama_speech
# 1.16 -> 1.35, two_children 1.04 -> 1.09: a lit lid under a photo's dark fold)
LID_RING = 1.0
RING_ABOVE = (1.3, 1.7)  # ... the skin above the lid: these heights (`lid_heights`), the fold's foot over the lid
RING_BLEND = (0.9, 1.5)  # ... a row's ring is the skin under the eye up to the first height, above from the second:
# the real lid is lit evenly up to 1.3 (CLOSED_LID_SHADE); blended from the lash line up (0 .. 1.1), the lid was a
# mix of the fold's shade and the cheek, darker than the cheek mid-lid (obama_speech, trump_official)
RING_LUMA = (0.9, 1.1)  # ... in its hue, at its own luminance (the lid's lit fill's shading) within these of the ring's
RING_ALONG = 0.08  # ... both averaged along the eye with a Gaussian this wide (shares of its corner-to-corner line)


def lid_heights(points: np.ndarray, verts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """points [M, 3] and verts [V >= 468, 3] the rest template, both in the head frame (m, y down, x < 0 the subject's
    right eye) -> (height [M]: above its eye's upper-lid margin in units of the lid's height there, 0 on the margin
    (lmk.EYELID_PAIRS_*'s upper vertices), 1 on the fold row above it (lmk.UPPER_LID_ROW_*), negative below; under
    [M]: below the lower lid's margin (EYELID_PAIRS_*'s lower vertices) in the same units; all rows linear in x and
    held past their ends; along [M]: where between its eye's corners in x, 0 and 1 at them; eye [M] int64, 0 the
    subject's right, 1 left)."""
    p = np.asarray(points, np.float64).reshape(-1, 3)
    v = np.asarray(verts, np.float64)
    height, under, along = np.zeros(len(p)), np.zeros(len(p)), np.zeros(len(p))
    eye = (p[:, 0] >= 0).astype(np.int64)
    rows = ((lmk.EYELID_PAIRS_R, lmk.UPPER_LID_ROW_R), (lmk.EYELID_PAIRS_L, lmk.UPPER_LID_ROW_L))
    for k, (pairs, fold_row) in enumerate(rows):
        sel = eye == k
        x, y = p[sel, 0], p[sel, 1]

        def row_y(ids):
            r = v[list(ids)]
            o = np.argsort(r[:, 0])
            return np.interp(x, r[o, 0], r[o, 1])

        ym, yf, yl = row_y([pr[0] for pr in pairs]), row_y(fold_row), row_y([pr[1] for pr in pairs])
        unit = np.maximum(ym - yf, 1e-9)
        height[sel], under[sel] = (ym - y) / unit, (y - yl) / unit
        cx = np.sort(v[list(lmk.EYE_CORNERS[k]), 0])
        along[sel] = (x - cx[0]) / max(cx[1] - cx[0], 1e-9)
    return height, under, along, eye


@dataclass
class LidShade:
    """Per avatar: a shut lid's skin lit to the level of the skin under the eye and shaded over its height."""

    rows: np.ndarray  # [M] int64 ascending Gaussian indices (over each upper lid, up to the brow)
    shade: np.ndarray  # [M] float32 the factor on a row's colour in a full blink (0..1) ...
    level: np.ndarray  # [M] float32 ... down to this luminance (0..1) at most: the factor x its eye's lid level
    lift: np.ndarray  # [M] float32 0..1 how far a row takes its eye's gain (the lid's rows 1, the fold's 0)
    eye: np.ndarray  # [M] int64 0 = the subject's right eye, 1 = left
    gain: np.ndarray  # [2] float32 >= 1 each eye's lid skin to its level (UNDER_EYE_OVER_LID)
    skin: np.ndarray  # [2] float32 each eye's closed lid skin's luminance as the avatar has it
    ring: np.ndarray  # [M, 3] float32 the skin round the shut lid at the row's place (`_ring_colours`), rgb 0..1


def _mean_luma(rows, luma, weight) -> float:
    """The weight-averaged luminance over rows (0 without rows)."""
    w = weight[rows]
    return float(np.sum(w * luma[rows]) / np.sum(w)) if len(rows) and np.sum(w) > 0 else 0.0


def _ring_colours(rows, part, height, under, along, eye, colors, weight) -> np.ndarray:
    """rows [M] (indices into the N Gaussians), part [N], lid_heights' height, under, along, eye [N] (rest), colors
    [N, 3] rgb 0..1, weight [N] opacities -> [M, 3] float64 rgb: the person's skin round the shut lid at each row's
    place. Per eye, the face Gaussians' colour just above the lid (RING_ABOVE heights) and under the eye (the level's
    band, UNDER_EYE_BAND, over UNDER_EYE_OVER_LID: a real shut lid's level), each an opacity-weighted average along
    the eye with a Gaussian of RING_ALONG (shares of the corner-to-corner line), blended by the row's height: the
    skin under the eye up to RING_BLEND[0], the skin above from RING_BLEND[1] (smoothstep). The rows' own colours
    (no change) where an eye has no such skin."""
    c = np.asarray(colors, np.float64)
    face = np.asarray(part) == PART_FACE
    out = np.zeros((len(rows), 3))
    up = deform.smoothstep(RING_BLEND[0], RING_BLEND[1], height[rows])[:, None]
    for k in (0, 1):
        mine = eye[rows] == k
        for band, share, scale in (((height >= RING_ABOVE[0]) & (height <= RING_ABOVE[1]), up, 1.0),
                                   ((under >= UNDER_EYE_BAND[0]) & (under <= UNDER_EYE_BAND[1]), 1.0 - up,
                                    1.0 / UNDER_EYE_OVER_LID)):
            src = np.flatnonzero(face & band & (eye == k) & (along > 0) & (along < 1))
            if not len(src):
                return c[rows]
            g = np.exp(-0.5 * ((along[rows][mine][:, None] - along[src][None, :]) / RING_ALONG) ** 2)
            g *= np.asarray(weight, np.float64)[src][None, :]
            out[mine] += share[mine] * scale * (g @ c[src]) / np.maximum(g.sum(1, keepdims=True), 1e-12)
    return out


def lid_shade(part, means, verts, colors, opacities, skin, skin_eye) -> LidShade | None:
    """How a shut lid is lit on an avatar -> LidShade, or None (no lid skin, or no skin under the eyes).

    part [N] uint8, means [N, 3] rest (head frame, m), verts [V >= 468, 3] rest template, colors [N, 3] (DC, rgb
    0..1), opacities [N]; skin [K] int64 the closed lid's skin rows (`crease_rows`' skin: mesh_fit's closed-lid skin)
    and skin_eye [K]. Rows: face and static Gaussians (photo, completion, lid skin) between the upper-lid margin and
    the top of the table's heights (`lid_heights`), inside their eye's corners. Each eye's level: its face
    Gaussians' luminance UNDER_EYE_BAND under the eye, over UNDER_EYE_OVER_LID (opacity-weighed means); gain: that
    level over its closed lid skin's, 1 (a lid lighter than the real ones' is left so) to LID_GAIN_MAX. Shade: the
    table there, faded to 1 towards the corners (LID_SHADE_CORNER); a row darkens by it but not below shade x
    level: a deep-set eye's photo (obama_official) has the fold's shade of its own. Ring: each row's skin round the
    shut lid (`_ring_colours`, from these rest colours), which its colour takes (LID_RING)."""
    skin, skin_eye = np.asarray(skin, np.int64), np.asarray(skin_eye, np.int64)
    v = np.asarray(verts, np.float64)
    if not len(skin) or not lmk.has_mediapipe_topology(len(v)):
        return None
    luma = np.asarray(colors, np.float64) @ LUMA
    w = np.asarray(opacities, np.float64)
    height, under, along, eye = lid_heights(means, v)
    part = np.asarray(part)
    inside = (along > 0.2) & (along < 0.8)  # (the middle five columns, as measured)
    below = (part == PART_FACE) & inside & (under >= UNDER_EYE_BAND[0]) & (under <= UNDER_EYE_BAND[1])
    lid = np.array([_mean_luma(skin[skin_eye == k], luma, w) for k in (0, 1)])
    level = np.array([_mean_luma(np.flatnonzero(below & (eye == k)), luma, w) for k in (0, 1)]) / UNDER_EYE_OVER_LID
    if np.any(lid <= 0) or np.any(level <= 0):
        return None
    on = (((part == PART_FACE) | (part == PART_STATIC)) & (height >= CLOSED_LID_HEIGHT[0])
          & (height <= CLOSED_LID_HEIGHT[-1]) & (along > 0) & (along < 1))
    rows = np.flatnonzero(on)
    fade = np.clip(np.minimum(along[rows], 1.0 - along[rows]) / LID_SHADE_CORNER, 0.0, 1.0)
    shade = 1.0 - fade * (1.0 - np.interp(height[rows], CLOSED_LID_HEIGHT, CLOSED_LID_SHADE))
    lift = fade * np.interp(height[rows], LID_LIFT_HEIGHTS, (0.0, 1.0, 1.0, 0.0))
    e = eye[rows]
    return LidShade(rows, shade.astype(np.float32), (shade * level[e]).astype(np.float32), lift.astype(np.float32),
                    e, np.clip(level / lid, 1.0, LID_GAIN_MAX).astype(np.float32), lid.astype(np.float32),
                    _ring_colours(rows, part, height, under, along, eye, colors, w).astype(np.float32))


def lid_shade_rgb(shade: LidShade, weight: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """LidShade, [2] each eye's weight (`lash_weights`), [M, 3] its rows' colours as this frame draws them -> [M, 3]
    float32 the colour they add: weight x (the colour lit by its eye's gain and taken LID_RING of the way to the skin
    round the lid (LidShade.ring), both as far as its lift and its luminance over the lid skin's (LID_SKIN_LUMA: the
    lashes stay) take it, then x its shade, or x what takes it to its level
    where that is more, up to 1; minus the colour)."""
    c = np.asarray(colors, np.float64)
    e = shade.eye
    skin_like = deform.smoothstep(LID_SKIN_LUMA[0], LID_SKIN_LUMA[1], (c @ LUMA) / shade.skin[e].astype(np.float64))
    lit = c * (1.0 + (shade.gain[e] - 1.0) * shade.lift * skin_like)[:, None]
    ring = shade.ring.astype(np.float64)
    ring_lum = np.maximum(ring @ LUMA, 1e-6)
    own = np.clip(lit @ LUMA, RING_LUMA[0] * ring_lum, RING_LUMA[1] * ring_lum)  # its light, near the ring's
    t = (LID_RING * shade.lift * skin_like)[:, None]
    lit = (1.0 - t) * lit + t * ring * (own / ring_lum)[:, None]  # the skin round the lid in hue (LID_RING)
    lum = lit @ LUMA
    k = np.minimum(1.0, np.maximum(shade.shade, shade.level / np.maximum(lum, 1e-6)))
    return (np.asarray(weight, np.float64)[e][:, None] * (np.clip(lit * k[:, None], 0.0, 1.0) - c)).astype(np.float32)


def closed_displacement(verts: np.ndarray) -> np.ndarray:
    """[V >= 468, 3] rest template (MediaPipe topology; head frame, metres, y down) -> [V, 3] float64 the
    displacement of a full blink (same frame, metres): each upper-lid margin vertex on its lower partner (the
    driver's lid rule at openness 0 for both eyes, `deform.retarget_eyelids`), nothing else moved."""
    v = np.asarray(verts, np.float64)
    return deform.retarget_eyelids(v, np.zeros_like(v), np.zeros(2))


def lid_closure(verts, disp) -> np.ndarray:
    """[V >= 468, 3] rest template and [V, 3] its displacement this frame (head frame, m; numpy) -> [2] (the subject's
    right, left eye) how far each upper lid has closed: 1 - the centre pair's gap over its rest gap, clipped to [0, 1]
    (0 as open as at rest or wider, 1 shut)."""
    d = np.asarray(disp, np.float64)
    ratios = deform.eyelid_ratios(np.asarray(verts, np.float64) + d, d)  # [14] each lid pair's gap / its rest gap
    return np.clip(1.0 - ratios[list(LID_MID)], 0.0, 1.0)


def eyeball_share(closure: np.ndarray, ramp: tuple[float, float]) -> np.ndarray:
    """[2] lid closure (`lid_closure`) -> [2] the opacity share each eye's eyeballs keep: 1 up to ramp[0], 0 from
    ramp[1] on (a shut lid), smoothstep between. A shut upper lid is a chord of flat strip triangles across the
    eyeball's bulge (reconstruct.eyelids.closed_lid_skin lies 0.2-1.5 mm behind them), and a turned eye's iris
    poked through it: obama_speech's closed lids showed dark spikes mid-lid (41 of his eyeball Gaussians in front
    of the closed lid's skin in a full blink, head at rest; 267 pixels at 512 px on tpsmm_driving frame 20's
    closed eye), business_person 9. Behind a shut lid nothing of the eye is to be seen."""
    return 1.0 - deform.smoothstep(ramp[0], ramp[1], np.asarray(closure, np.float64))


def lash_weights(closure: np.ndarray, ramp: tuple[float, float]) -> np.ndarray:
    """[2] lid closure (`lid_closure`) -> [2] how far each eye's lash map is in: 0 up to ramp[0], 1 from ramp[1]
    on, smoothstep between (exactly 0 at rest)."""
    return deform.smoothstep(ramp[0], ramp[1], np.asarray(closure, np.float64))
