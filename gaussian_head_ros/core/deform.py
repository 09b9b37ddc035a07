"""The driving rules, written once for numpy and torch: the render node, the CLI and training all pose
Gaussians through these functions (`drive.Driver` on numpy arrays, `model.reenactment.pose_gaussians`
on torch tensors with gradients).

Every Gaussian n belongs to one *frame* k = frame[n] and carries 6 coefficients coef[n]; a control
gives each frame a small transform table, and the posed Gaussian is

    mean' = mean + delta[k] @ coef[n]          delta [K, 3, 6]
    quat' = quat[k] (x) quat_n                 quat [K, 4] wxyz, Hamilton product
    scale' = scale[k] * scale_n                scale [K]

so the per-Gaussian work is one table look-up and a handful of multiply-adds, whatever the rule.
The frames (K = 2 F + 1 + torso_levels + levels + 2 x the lag levels used), with R_g the head rotation:

- face triangle f (part 1, bound, coef = (bary, offset from the rest triangle point)): the barycentric
  point of the deformed triangle + the offset turned by the triangle's rotation change (local frame: first
  edge and normal); rotation composed with that change; scales times the triangle's largest in-plane
  stretch (and the square root of any shrink) (`triangle_growth`: skin stretched one way keeps its rows of
  Gaussians closed: the strip between brows and lids at a brow raise, the upper lip and the chin at a jaw
  drop), on the lips times sqrt(area ratio) (`stretch_grown_triangles`); the reconstructor divides the
  Gaussians it takes from the photo's shape to rest by the same rule;
- falloff f (parts 0 and 2 and unbound face Gaussians within `falloff_m` of the template; coef =
  (w bary of the closest template point, mean)): the head pose plus w times the template displacement
  at that point, w = 1 at the template falling smoothly to 0 at `falloff_m` (forehead, temples, jaw
  line, neck: no seam where the template ends, and the chin never parts from the neck);
  also part 0 Gaussians the reconstructor *carries* on triangle f (face_id f >= 0; coef = (its bary,
  mean)): moved by the displacement at that point, neither turned nor stretched with the triangle (the
  upper lid's lashes ride down with its margin at their own size while the strip above them stretches);
- head (part 0 beyond the falloff, and part 5 (PART_UNDER_CHIN: the skin the rest chin uncovers, which the falloff
  would carry up into the chin) wherever it is): the head pose, rotating about the head origin;
- torso levels (part 2): a fraction of the head rotation, from `torso_follow` at the shoulders to 1 at
  the neck (quantised to `torso_levels`: with 8, a head pitched or turned 20-40 deg showed the collar and neck
  in horizontal stripes, the back showing through the 7 steps between levels, each a few millimetres), and to 1
  beyond the falloff band over `torso_fade_m` (the band turns with the head: no step at its edge); each level's
  scale 1 + the spread its rows part by under the turn from the photo's (`torso_level_scales`: a chin raised 20 deg
  drew the collar and neck in rows of dots);
- jaw levels (part 3, mouth interior, and part 6, the jaw's underside): the lower part turns with the jaw about a
  hinge axis (x), the jaw angle from the deformed chin (MediaPipe topology), else the jawOpen blendshape (a
  control with mouth_open alone: the jawOpen it measures, `control_inputs`). How much of the turn a Gaussian
  follows is set by its bary[:, 0] (`jaw_level_share`: that weight
  while talking, all of a wide opening's turn for any weight > 0) (bary = (jaw weight, glide share, 1 - jaw
  weight), set by the reconstructor), or for avatars whose mouth rows are all zero a smooth step at the lip line;
  before the turn the interior widens with the lips' opening (`mouth_stretch`): coef = (1, mouth_lateral(x), g,
  mean), the frame's second column the stretch along the turned x axis, its third the level's glide forward with
  the lower lip (`interior_glide`), which a Gaussian takes g (its bary[:, 1]: 1 the lower teeth row and the tongue,
  0 the rest) of;
- eyes (part 4, eyeballs): each eyeball turns about its centre by the control's gaze relative to the rest
  gaze the photo showed (core/eyes.py); the lids' template vertices follow its vertical turn (`lid_turns`).
  A Gaussian's bary[:, 0] is the share of that turn it lags behind (0, every eyeball Gaussian's but the
  cornea's reflection: all of the turn; quantised to EYE_LAG_LEVELS, of which only those the avatar uses get
  frames, Rig.eye_levels): the photo's catchlight
  (eyeballs.catchlights) is the light's reflection on the cornea, which turns about a centre ~half as far
  from the eyeball's as the iris (the pupil-glint vector of eye trackers), so it follows half the turn.

Template deformation = rest + control.expression (first min(V, L) vertices, each offset limited to
`max_offset_m`) + the avatar's expression basis weighted by `basis_coefficients`: the driving face's
blendshapes of the same name minus those of the face the avatar rests in. Exported avatars rest at the
blendshapes' zero (MediaPipe's neutral; the rar export bakes its photo's coefficients into the rest pose),
so the driver passes the control's absolute blendshapes; training passes the source frame's as the rest.
Zero control gives each frame an exactly zero delta and identity rotation, so the rest pose exactly.

numpy arrays get float64 tables; torch tensors keep their dtype/device and gradients flow to the Gaussians,
the template and the expression basis. (numpy >= 2 and torch share the array-API names used here.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
# Imported here, not inside the function that uses it: a first import of matplotlib from two threads at once (the
# render node's avatar loader warming the driver up while its executor builds a Driver for the first avatar) left
# one of them with a partially initialised matplotlib.path ("cannot import name 'Path'"), and the node died at
# start (fresh-clone CI, test_dds_profile; ~0.14 s of import time per process).
from matplotlib.path import Path

from gaussian_head_ros.core import eyes
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.control import NUM_LID_PAIRS, arkit_values
from gaussian_head_ros.core.avatar import JAW_PARTS, PART_EYE, PART_FACE, PART_PHOTO_MOUTH, PART_STATIC, PART_TORSO


@dataclass
class DriveConfig:
    """How far each part follows the control."""

    torso_follow: float = 0.25  # fraction of the head rotation the shoulders follow
    neck_blend_m: float = 0.06  # height over which the torso blends from torso_follow (below) to 1 (top)
    # ... and from falloff_m to falloff_m + torso_fade_m from the template it rises to 1 (the head's whole turn, as the
    # falloff band's): the band's edge cut the neck where it met the torso's level below it (0.82-0.93 of the turn on
    # business_person): a head 25 deg chin up showed a stepped dark line across the neck, the back seen between them.
    # Over 3 cm the rows sheared apart instead (thin dark arcs across her neck at 25 deg up, at 64 levels as at 256)
    torso_fade_m: float = 0.06
    levels: int = 8  # frames used to quantise the jaw blend weights
    torso_levels: int = 64  # and the torso's (8 striped the collar at 20-40 deg: see the module docstring)
    expression_gain: float = 1.0  # scale on control.expression offsets
    max_offset_m: float = 0.08  # per-vertex expression offsets are limited to this length (a wide-open jaw moves the chin ~6 cm)
    falloff_m: float = 0.035  # non-face Gaussians this close to the template share its displacement (fading)
    jaw_max_rad: float = 0.5  # jaw opening limit
    jaw_per_jaw_open: float = 0.35  # rad per unit of the jawOpen blendshape (0..1: control.arkit_values), on an
    # avatar without MediaPipe's topology; with it, a blendshape-only jawOpen moves the chin as a tracked one:
    # expression.JAW_PER_JAW_OPEN_M
    # A mouth-interior level of jaw weight 0 < w < 1 turns by w x the jaw angle up to jaw_speech_rad and catches
    # up with the whole angle by jaw_wide_rad (`jaw_level_share`): the lower teeth (weight MouthConfig.
    # lower_teeth_follow) stay near the upper ones while speaking, drop with the jaw when the mouth opens wide.
    jaw_speech_rad: float = 0.08
    jaw_wide_rad: float = 0.25
    # ... but the synthetic lower levels (the lower row, the tongue) turn at least as far as takes the lower inner
    # lip's drop less lower_teeth_show_m (`interior_jaw_angle`): by the chin's angle alone, sadtalker_WDA_KatieHill's
    # laugh (frame 29: the lip 18.7 mm down, the chin 0.15 rad) left the lower row just under the upper one while
    # the lip fell below it (a tall grey slab of lower teeth and gum, no gap between the rows), and tpsmm_driving's
    # 13-14 mm openings (the lip 16-17 mm down, the chin 0.06-0.07) showed the whole lower row, edge to gum, in the
    # opening. 2 mm (mouth21, session 21, by eye on six portraits, with the angle teeth22 replaced, below): the laugh
    # showed upper teeth, a dark gap, the tongue and the lower row's edge; tpsmm's openings the tongue's band over
    # the lower row, still 2/3 of the opening (painted by part, teeth22).
    # The lip's turn less 6 mm of arc instead (its roll back counted) moved tpsmm's row 2 -> 3 mm only; the drop
    # less 4 mm left most of tpsmm's row in the opening. The photo's own lower-jaw pixels (weight 1) keep the
    # chin's angle: turned with the lip (mouth20, session 20), self tpsmm_driving's frame 0, whose lower lip is
    # turned 0.075 rad at a chin's 0, lost 2.4 dB. Until teeth22 (session 22) the turn was the angle to the point
    # straight below the lip, which the turn also takes back: the lip went ~60 % of the way (tpsmm frame 20: 9 of 15
    # mm) and the lower row filled tpsmm's openings edge to gum. On the lip's arc, 5 mm (by eye on nine portraits,
    # sadtalker frames 29-30, tpsmm frames 20 / 41, lp_d0's widest): the laugh shows a band of lower teeth under a
    # dark gap, tpsmm a dark mouth, the tongue and the lower row's edge low, as the operator's (2 mm: none at the
    # laugh; the row, 7 mm behind the lip, falls less than the lip).
    # 5 -> 2 mm (tongue62, session 62): the drivers' lower teeth above the lower inner lip at their widest
    # openings (the opening's lower third, middle 30 px columns, mm by the outer eye corners as 90 mm): lp_d18
    # frames 88 / 120 / 138 0.0 / 1.9 / 0.0 mm, sadtalker_WDA_KatieHill 168 1.7 (its laugh, frame 29, 4.6), tpsmm_driving
    # 20 / 87 2.1 / 2.5 (talking openings: the share below); at 5 mm the nine portraits showed a grey row of lower
    # teeth under the tongue at lp_d18 88 / 120 where the operator shows none (look62's sheets).
    lower_teeth_show_m: float = 0.002
    # ... and at a talking opening less: at most this share of the lip's drop (a laugh's 18.7 mm and jawOpen 0.6's
    # ~24 mm: the full 5 mm, as before; tpsmm's 12 mm at jawOpen 0.3: 2.6). At 5 mm for every drop, a closed-mouth
    # photo's talking openings were filled by the lower row, a grey slab under a 2-3 px upper row with no dark
    # cavity between them (business_person, blendshape-only jawOpen 0.3, the opening's midline: lower row 8 of 15
    # px, none darker than half the upper row's luma), where a talking mouth shows the upper edges, a dark cavity
    # and the lower row's edge in the lip's shade. 0.22 (mouth36, session 36): lower row 5 of 15 px under 3 px of
    # dark cavity and tongue; the reader's jawOpen on the nine portraits' renders at jawOpen 0.15 / 0.3 / 0.6 sums
    # 0.478 -> 0.474 / 1.684 -> 1.704 / 4.193 (equal); living-face table, tpsmm_driving 60 frames: cross jaw r mean
    # 0.641 -> 0.642, smile r mean 0.623 -> 0.585 (lp_s9_monalisa 0.43 -> 0.22, lp_d8 0.59 -> 0.47; the driver's
    # smile too still for its r, the table's "driver moves" row); frame 0 of the 4 clips equal, sadtalker's +0.10 dB.
    # 0.15 (show 1.8 mm at jawOpen 0.3): 6 px dark, but the reader's jawOpen at 0.6 fell (4.193 -> 4.061).
    lower_teeth_show_share: float = 0.22
    # ... and that turn reaches at most this (rad; the chin's own angle stays within jaw_max_rad). lp_d18's scream
    # (frames 125-150: the lower inner lip 38-40 mm down, the chin 0.14-0.16 rad) asks 0.65-0.72 rad of it; clipped at
    # jaw_max_rad (0.5) the lower row stopped ~10 mm short of the lip and stood in the opening as a tall grey slab,
    # where the operator's lower lip hides his lower teeth (lead, session 41: nine portraits x lp_d18 frame 138).
    # Beyond 0.5 rad a real mandible also glides forward and down; the turn stands in for both.
    interior_max_rad: float = 0.75
    # The photo's own open mouth (avatar.PART_PHOTO_MOUTH: its teeth, tongue and dark) is seen whole while the driven
    # mouth is the photo's: the jaw angle within photo_mouth_full_rad of the photo's own (the rows' bary[:, 2]) and the
    # inner lips' gap (`inner_lip_gap`) within photo_mouth_full_m of the photo's (bary[:, 1]); it fades out by
    # photo_mouth_gone_rad / _m (`photo_mouth_share`), and the synthetic interior stands for it at every other opening.
    # Turned with the jaw, its pixels stood as the photo showed them in any opening: a second row of teeth under the
    # synthetic upper row and blocks of the photo's tongue with the cavity's dark between them (obama_speech /
    # lp_d9_woman_turned x sadtalker_WDA_KatieHill frames 30 / 168, lp_d18 66 / 114 / 132; lead, session 44). By the jaw
    # alone lp_d9's (0.140 rad, lips 42.6 mm apart) showed at lp_d18's scream (0.123 rad, 47.9 mm) and sadtalker's laugh
    # (0.138 rad, 24.6 mm): the same blocks. Self sadtalker_WDA_KatieHill (a parted photo, its shaded gap seen near its
    # own opening; living-face table, 60 frames): 0.01 / 0.03 rad and 2 / 5 mm: clip 16.512 dB, the reader's jaw / smile
    # r 0.909 / 0.881; these: 16.559, 0.929 / 0.917 (its gap left out: 16.539, 0.932 / 0.916); its frame 0 30.09 dB
    # either way (left out: 29.09).
    photo_mouth_full_rad: float = 0.005
    photo_mouth_gone_rad: float = 0.015
    photo_mouth_full_m: float = 0.001
    photo_mouth_gone_m: float = 0.0025
    gaze_max_rad: float = 0.6  # eyeball turn limit relative to the rest gaze
    lid_closed_ratio: float = 0.2  # operator lid gap / neutral gap at which the avatar's lids meet (1 = off)
    lid_max_open: float = 1.5  # widest lid opening, as a fraction of the avatar's rest opening
    lid_follow_upper: float = 1.0  # upper lid turns this fraction of the eyeball's vertical turn (0 = off)
    lid_follow_lower: float = 0.4  # lower lid: this fraction (lid-eye coupling; see `lids_follow_gaze`)
    lid_min_gap: float = 0.3  # a following upper lid keeps at least this fraction of its rest height
    # An upper lid opened past its rest height above the lower lid (a wide-eyed operator, a look up) takes the lid skin
    # row above its margin (UPPER_LID_ROW) up by this share of that extra rise (`retarget_eyelids`; 0 = off): a real lid
    # retracts into its fold. With the row left where it was, the margin rose past it (the row lies 1.4-5 mm above
    # the margin, the margin rises 3.5 mm at 1.3x business_person's 11.6 mm gap): the lid strip's triangles turned
    # over, the lash band Gaussians bound to them spread into a dotted ring and the dark band over the iris's top
    # stood above it as a block (nine portraits at eyelid ratio 1.15-1.3; issue 11, lead38).
    lid_fold_share: float = 0.7
    # A driven brow raise takes a hooded avatar's upper lids up by this fraction of it, and a raised photo's beyond
    # its own brows (`lids_with_brow_raise`; 0 = off). Half the rest's expression.LID_WITH_BROW_LIFT (0.7):
    # living-face table, one-height rest, on the hooded portraits' 12 pairs (trump_official, obama_official,
    # obama_speech): blink 0.9145 / 0.9158 / 0.9182 (40-pair mean) at 0 / 0.35 / 0.7, gaze_v 0.8002 / 0.8003 / 0.7990 (its line 0.80: trump x lp_d0 0.902 / 0.899 / 0.846),
    # gaze_h 0.7479 / 0.7492 / 0.7500; browlid15 (session 15) also found 0.35.
    lid_with_brow_raise: float = 0.35
    # The closed lash line's colours evened out along each closing lid (core.lashes: the lash map): averaged over
    # their neighbours where a closed lid puts them, Gaussian standard deviations (along the lid, across it), metres;
    # along <= 0: off. 1.5 mm along: lids20 (session 20) smoothed the carried band at 1.5 and 3 mm, both gave a
    # continuous line (3 mm a flatter one); across: about the folded band's height, so the lid skin the light
    # Gaussians spread over stays apart from the line
    lash_smooth_m: tuple[float, float] = (0.0015, 0.0004)
    # ... not at all up to this share of each lid's rest gap closed, fully from the second: the photo's own frame
    # closes its lids 0.03-0.10 (self lp_d0, tpsmm at frame 0) and a look down ~0.2 (the lid-eye coupling). Earlier
    # ramps even a half-closed lid out further (session 60: the lid's speckle at lid ratio 0.6, source camera 2x, mean
    # |luma - 5x5 median| on the lid, right / left, sadtalker frame 0: 0.0094 / 0.0149 here, 0.0076 / 0.0084 at
    # (0.3, 0.6), 0.0080 / 0.0058 at (0.15, 0.5); obama_speech 0.0092 / 0.0113, 0.0065 / 0.0093, 0.0057 / 0.0084)
    # but the reader reads tpsmm's partial blinks on its own avatar as less closed: self tpsmm blink r 0.870 here,
    # 0.852 at (0.3, 0.6), 0.850 at (0.15, 0.5) (living-face table, 60 frames)
    lash_closure: tuple[float, float] = (0.3, 0.8)
    # ... and with it the upper lids' strip Gaussians on their crease side (mesh_fit: the fold's shade, eyeshadow),
    # which a closing lid grows in front of its closed skin, and the strip's light ones it spreads over that skin
    # (lashes.spread_rows), take that skin's colour around where the closed lid puts them, averaged with this
    # Gaussian standard deviation in metres (core.lashes.crease_map; 0 = off)
    lid_crease_skin_m: float = 0.001
    # ... and the shut lid lit towards the skin under the eye and shaded over its height as real shut lids are, up to
    # the fold's shade under the brow (core.lashes.lid_shade, CLOSED_LID_SHADE; with the crease map), this share of the
    # way: a fill of one colour from the lash line up to the brow read as a smear, not a lid (crease62:
    # business_person, astronaut_eileen_collins, trump_official; test_lashes); 0 = off
    lid_shade: float = 1.0
    # ... not at all up to this share of each lid's rest gap closed, fully from the second (smoothstep): it is the
    # shut lid's. With the lash map's ramp (0.3, 0.8) a half-shut lid (sadtalker frame 0's avatar, lid ratio 0.5: 0.625
    # closed) took it too, lit and shaded in patches: test_lashes' lid speckle 0.0077 -> 0.0093 (right eye)
    lid_shade_closure: tuple[float, float] = (0.65, 0.95)
    # The eyeballs fade out as a lid shuts (core.lashes.eyeball_share): whole up to this share of the lid's rest gap
    # closed, gone from the second. obama_speech's irises poked through his shut lids on tpsmm_driving frame 20 at
    # 0.969 closed (267 px at 512 px; at (0.95, 1.0) they kept 0.65 of their opacity and still showed); up to 0.94
    # closed (lp_d18 94, 97, tpsmm 93 on business_person) the eye's slit looks the same with them faded
    eyeball_shut_closure: tuple[float, float] = (0.9, 0.97)
    relight_max_ratio: float = 3.0  # limit on E_target / E_captured
    # The brows and the forehead above them (`brow_rows`) move this many times the control's expression there
    # when driving for display (`control_inputs`; training is unchanged). Off (1) by default. Measured
    # (reports/brow9_s9.md): a tracked brow move reads to FaceLandmarker on an avatar as ~0.3-0.7 of its height
    # change and ~1/4 of the brow score the same move gives on the operator's face, below the reader's brow
    # crosstalk from the mouth and head pitch; 1.5 raised the reader's brow r on 28 pairs 0.420 -> 0.461 (lp_d18
    # 0.335 -> 0.463) but lowered gaze_h 0.542 -> 0.523 and gaze_v 0.832 -> 0.819 (1.25: about half of each).
    # brow39 (fcead90, 60 frames, reader brow r): 2 took the lp_d18 crosses obama_speech -0.57 -> 0.70,
    # lp_s9_monalisa -0.24 -> 0.78, lp_d9_woman_turned -0.03 -> 0.83 (3: 0.73 / 0.73 / 0.91; lp_d8_man_glasses
    # 0.94 -> 0.92 / 0.84) but doubled tpsmm_driving's held raise too: lp_d8_man_glasses 0.15 -> -0.57,
    # trump_official 0.82 -> 0.31, obama_speech 0.81 -> 0.71, business_person 0.40 -> 0.34 (lp_d8's render brow
    # score mean 0.39 -> 0.81). What keeps those crosses low is the reader's crosstalk, not the brows'
    # amplitude (scripts/reader_ablation.py, brow39).
    brow_gain: float = 1.0
    # A driven brow raise lightens the strip between the brows and the upper lids towards its own lit skin by
    # this gain x the share of the strip a real raise unfolds (core/brow_strip.py; 0 = off; 2 by eye, brow21).
    brow_unfold_gain: float = 2.0
    # The parted lips' inner margins take their lips' colour, not the photo's seam (core/lip_margin.py), when driving
    # for display; training renders without it (False).
    lip_margin: bool = True
    # A grinning photo's dark mouth corners, which run past the template's, follow its lip corners (core/corner_shade.py)
    # when driving for display; training renders without it (False).
    corner_shade: bool = True
    # Each lip keeps at least this share of its rest height (red lip, inner to outer contour, column by column;
    # `lip_height_floor`; 0 = off) when driving for display. The control moves the template by the operator's own
    # millimetres, and a grinning photo's rest lips stay thin (the grin stretched them; core.expression narrows the
    # mouth, not the lips' height): under tpsmm_driving's "oo" (frame 46: the operator's lower lip 10 -> 2 mm high at
    # its sides, 14 -> 10 mm at its middle, the corners 6 mm in each) obama_official's lower lip, 5.7 mm high at its
    # sides, went to -2.3 mm: its outer edge crossed above its inner one and the lower lip drew a thin crescent rising
    # to the corners, a grin where the operator rounds the lips (pucker22). The operator's own lip thinned to 0.2 of
    # its neutral's there; 0.25 of the avatar's own keeps the lip where an "oo" leaves it, below every self clip's
    # frame 0 (the photo's own lips, given back unchanged: their thinnest column 0.97 / 0.82 / 0.45 / 0.36 of the
    # rest's on lp_d0 / lp_d18 / sadtalker / tpsmm). Not only "oo"s: tpsmm's neutral (frame 0's `neutralize`, an open
    # mouth) has a taller lower lip than its later frames, and thin-lipped avatars' lower lips folded at the sides in
    # 58-60 of its first 60 frames; lp_d0's and sadtalker's talking folded the corner columns.
    lip_min_height: float = 0.25


def namespace(x):
    """The array namespace of x: torch for tensors, numpy otherwise."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    return np


def asarray_like(value, ref):
    """`value` (a number, sequence or numpy array, any shape) as an array of `ref`'s namespace (`namespace`), dtype
    and device: a numpy array, or a torch tensor on ref's device (a copy). Same shape as `value`, values cast to
    ref's dtype (float64 -> float32 for a float32 ref). Raises what np.asarray / torch.as_tensor raise for a
    value that is not numeric."""
    if namespace(ref) is np:
        return np.asarray(value, dtype=ref.dtype)
    import torch

    return torch.as_tensor(np.array(value), dtype=ref.dtype, device=ref.device)  # a writable copy (a broadcast view is
    # read-only: torch warned "The given NumPy array is not writable")


def contour_y(verts: np.ndarray, idx, x: np.ndarray) -> np.ndarray:
    """[V, 3] vertices (head frame, y down), a landmark contour's indices, [P] x -> [P] the y of the polyline through
    verts[idx] (sorted by x) at each x (held beyond its ends)."""
    p = np.asarray(verts, np.float64)[list(idx)]
    o = np.argsort(p[:, 0])
    return np.interp(x, p[o, 0], p[o, 1])


def smoothstep(e0: float, e1: float, x):
    """Hermite step of x: 0 at or below e0, 1 at or above e1, 3t^2 - 2t^3 between (t = (x - e0) / (e1 - e0));
    numpy or torch like x."""
    t = namespace(x).clip((x - e0) / max(e1 - e0, 1e-9), 0, 1)
    return t * t * (3 - 2 * t)


def smoothstep_slope(e0: float, e1: float, x):
    """d smoothstep(e0, e1, x) / dx: 6 t (1 - t) / (e1 - e0) between e0 and e1, 0 outside; numpy like x."""
    t = np.clip((np.asarray(x, np.float64) - e0) / max(e1 - e0, 1e-9), 0, 1)
    return 6 * t * (1 - t) / max(e1 - e0, 1e-9)


def torso_spread_of(points: np.ndarray, grad_w: np.ndarray, level: np.ndarray, levels: int) -> np.ndarray:
    """Rig.torso_spread: points [M, 3] (rest means, head frame, m), grad_w [M, 3] the gradient of each one's share w of
    the head's turn (1/m), level [M] int its torso level -> [levels, 3, 3], the mean of c c^T over each level's points,
    c = p x grad w (m/m); zeros for a level without points.

    A head turn by the rotation vector a (rad) moves p by w a x p (to first order): neighbours d apart along grad w
    part by (a x p) . grad w d = a . (p x grad w) d, so rows of the photo's discs on a torso level open to
    1 + |a . c| of their rest spacing; sqrt(a^T S a) is that spread's root mean square over the level
    (`torso_level_scales`). A yaw (a along y) moves the rows along themselves (c has no y part where w changes with
    height alone); a chin raised or lowered parts them (business_person 20 deg up: up to 1.45 x at the collar)."""
    c = np.cross(np.asarray(points, np.float64), np.asarray(grad_w, np.float64))
    out = np.zeros((levels, 3, 3))
    np.add.at(out, level, c[:, :, None] * c[:, None, :])
    count = np.bincount(level, minlength=levels)[:levels]
    return out / np.maximum(count, 1)[:, None, None]


def torso_level_scales(rig: "Rig", turn_g):
    """[torso_levels] the torso frames' scale for the head rotation whose rotation vector is turn_g [3] (rad;
    `rotation_vector`): 1 + the RMS spread of each level's rows (Rig.torso_spread, `torso_spread_of`) under the
    rotation vector from the photo's (Rig.torso_turn0), so that rows parted by the levels' different shares of the
    turn stay closed (business_person chin up 20 deg: her white collar and the neck above it in rows of dots with dark
    lines between, issue 11 neck34); exactly 1 at the photo's own rotation (its frame 0 as before). rig.torso_spread
    must be set. numpy or torch like turn_g."""
    xp = namespace(turn_g)
    a = turn_g - asarray_like(rig.torso_turn0, turn_g)  # the turn from the photo's, rad (first order)
    s = asarray_like(rig.torso_spread, turn_g)
    q = xp.einsum("i,kij,j->k", a, s, a)
    return 1 + xp.where(q > 0, xp.sqrt(xp.clip(q, 1e-30, None)), xp.zeros_like(q))


# ---------------------------------------------------------------------------------------------------
# The jaw (MediaPipe topology; numpy): shared with the reconstructor, which undoes what the driver does

def jaw_pivot(verts: np.ndarray) -> np.ndarray:
    """[V >= 468, 3] template -> [3] the jaw's hinge point (between the cheeks at ear height, x = 0)."""
    p = 0.5 * (np.asarray(verts[lmk.CHEEK_R], np.float64) + np.asarray(verts[lmk.CHEEK_L], np.float64))
    p[0] = 0.0
    return p


def chin_turn(r0, r1):
    """[3] rest and [3] deformed chin, relative to the hinge -> the turn about x between them (radians,
    + = opening; numpy or torch)."""
    xp = namespace(r1)
    return xp.atan2(r1[1], -r1[2]) - xp.atan2(r0[1], -r0[2])


def interior_jaw_angle(rig: "Rig", verts, disp, cfg: DriveConfig):
    """The least turn (rad about the jaw's hinge, + = opening; clipped to [0, interior_max_rad]) of the mouth
    interior's synthetic lower levels (jaw weights 0 < w < 1: the lower teeth, the tongue; `frame_tables`): the
    turn that takes the lower inner lip (LOWER_LIP_IN; `disp` [V, 3] from template `verts` [V, 3], metres, head
    frame, y down) down by its own drop less the lower row's show (cfg.lower_teeth_show_share of the drop, at most
    cfg.lower_teeth_show_m) along its arc about the hinge (the turn takes it back as well), so the lower row's edge
    stays above a fallen lower lip (which rests on the lower incisors), just above it at a talking opening.
    Only the lip's drop counts: its displacement also holds its roll back (sadtalker_WDA_KatieHill's laugh: 18.7
    mm down and 10.8 mm back; tpsmm_driving frame 20: 17.1 mm down, 2.9 back). 0 without MediaPipe topology. The
    jaw-weight-1 level (the photo's own lower-jaw pixels) keeps the chin's angle. numpy or torch like `disp`."""
    xp = namespace(disp)
    if not rig.jaw_from_chin:
        return asarray_like(0.0, disp)
    piv = asarray_like(rig.jaw_pivot, disp)
    r0 = verts[lmk.LOWER_LIP_IN] - piv
    lip_drop = disp[lmk.LOWER_LIP_IN, 1]
    show = xp.clip(cfg.lower_teeth_show_share * lip_drop, 0.0, cfg.lower_teeth_show_m)
    drop = xp.clip(lip_drop - show, 0.0, None)
    # on the lip's own arc about the hinge (radius in the y-z plane): the turn also takes it back, so the angle
    # to the point straight below it (atan2(r0_y + drop, -r0_z)) took it down by ~60 % of the drop
    rho = xp.sqrt(r0[1] ** 2 + r0[2] ** 2)
    reach = xp.clip((r0[1] + drop) / rho, -1.0, 1.0)
    return xp.clip(xp.asin(reach) - xp.atan2(r0[1], -r0[2]), 0.0, cfg.interior_max_rad)


def interior_glide(rig: "Rig", verts, disp, turn):
    """[L] turns of the jaw levels (rad about the jaw's hinge, + = opening) -> [L] head-frame z shift (metres, <= 0:
    forward) that keeps a point of the level as far behind the lower inner lip (LOWER_LIP_IN; `disp` [V, 3] from
    template `verts` [V, 3], head frame, y down, z back) as at rest: the turn about the hinge takes the lip's point
    back by arc_z as it takes it down by arc_y, the lip itself went back by disp_z over its drop disp_y (the lower
    incisors sit just behind the lower lip as the mandible turns and glides forward): the level goes forward by
    arc_z - disp_z x arc_y / disp_y where that is > 0. The lower teeth row and the tongue take it (their bary[:, 1],
    `build_rig`). 0 without MediaPipe topology. numpy or torch like `disp`."""
    xp = namespace(disp)
    if not rig.jaw_from_chin:
        return xp.zeros_like(turn)
    r0 = verts[lmk.LOWER_LIP_IN] - asarray_like(rig.jaw_pivot, disp)
    arc = (axis_angle_x(turn) @ r0[:, None])[..., 0] - r0  # [L, 3]: the lip's rest point turned by each level
    d = disp[lmk.LOWER_LIP_IN]
    lip_back = d[2] * xp.clip(arc[:, 1] / xp.clip(d[1], 1e-6, None), 0.0, 1.0)
    return -xp.clip(arc[:, 2] - lip_back, 0.0, None)


def lip_line_jaw_weight(y: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """[M] head-frame heights of mouth-interior points -> [M] jaw weights in [0, 1]: a smooth step over
    +-4 mm about the template's lip line (inner lips): above stays with the skull, below turns with the jaw."""
    lip_y = 0.5 * (verts[lmk.UPPER_LIP_IN, 1] + verts[lmk.LOWER_LIP_IN, 1])
    return smoothstep(lip_y - 0.004, lip_y + 0.004, np.asarray(y, np.float64))


def jaw_level_share(w, theta, cfg: DriveConfig | None = None):
    """[L] (or [M]) jaw weights in [0, 1] and the jaw angle theta (rad; negative: turned back, as the
    reconstructor undoes the photo's jaw) -> the share of theta each follows: w below `jaw_speech_rad`, rising
    to 1 for every w > 0 by `jaw_wide_rad` (w ** p, p a smooth step from 1 to 0 over that range in |theta|);
    w = 0 stays 0, w = 1 stays 1. Why: the lips part before the mandible drops. On sadtalker_WDA_KatieHill's
    broad talking smiles the angle read from the chin dropped the lower teeth ~9 mm where the clip's lower
    incisors sit ~2 mm below the upper ones (session-5 measurement), leaving a black band between the rows;
    a wide-open mouth shows its lower teeth low. numpy or torch like w / theta."""
    cfg = cfg or DriveConfig()
    xp = namespace(w)
    if xp is np:
        w, theta = np.asarray(w, np.float64), np.asarray(theta, np.float64)
    p = 1.0 - smoothstep(cfg.jaw_speech_rad, cfg.jaw_wide_rad, xp.abs(theta))
    return xp.where(w > 0, xp.clip(w, 1e-12, 1.0) ** p, xp.zeros_like(w))


def quantised_jaw_weight(w: np.ndarray, levels: int) -> np.ndarray:
    """[M] jaw weights -> [M] jaw level 0..levels-1 the driver gives them (level / (levels - 1) of the turn)."""
    return np.rint(np.clip(np.asarray(w, np.float64), 0, 1) * (levels - 1)).astype(np.int64)


# ---------------------------------------------------------------------------------------------------
# Rotation helpers (numpy or torch, any leading dimensions)

# Shepperd's four candidates (`matrix_to_quat`): row i is 4 q_i q, as indices into (1 + tr, a, b, c, 1 + m00 - m11 -
# m22, d, e, 1 - m00 + m11 - m22, f, 1 - m00 - m11 + m22) (a, b, c the differences, d, e, f the sums of the
# off-diagonal pairs)
_QUAT_CANDIDATES = np.array([[0, 1, 2, 3], [1, 4, 5, 6], [2, 5, 7, 8], [3, 6, 8, 9]])


def matrix_to_quat(r):
    """[..., 3, 3] rotations -> [..., 4] wxyz with w >= 0 (Shepperd's method: the best-conditioned of four
    candidates; the identity gives exactly (1, 0, 0, 0))."""
    xp = namespace(r)
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    tr = m00 + m11 + m22
    a, b, c = r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]
    d, e, f = r[..., 0, 1] + r[..., 1, 0], r[..., 0, 2] + r[..., 2, 0], r[..., 1, 2] + r[..., 2, 1]
    # [..., 10] the distinct entries of the four candidates 4 q_i q (_QUAT_CANDIDATES)
    values = xp.stack([1 + tr, a, b, c, 1 + m00 - m11 - m22, d, e, 1 - m00 + m11 - m22, f, 1 - m00 - m11 + m22], -1)
    pick = xp.argmax(xp.stack([tr, m00, m11, m22], -1), axis=-1)
    rows = _QUAT_CANDIDATES[pick] if xp is np else xp.as_tensor(_QUAT_CANDIDATES, device=r.device)[pick]  # [..., 4]
    # (+ 0.0: a -0.0 entry is +0.0, as when the picked row was summed with the three others zeroed)
    q = (np.take_along_axis(values, rows, -1) if xp is np else xp.take_along_dim(values, rows, -1)) + 0.0
    q = q / xp.linalg.vector_norm(q, axis=-1, keepdims=True)
    return xp.where(q[..., :1] < 0, -q, q)


def quat_multiply(a, b):
    """[..., 4] x [..., 4] wxyz Hamilton product (b applied first)."""
    xp = namespace(a)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return xp.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def axis_angle_x(angles):
    """[K] angles -> [K, 3, 3] rotations about x (exact identity for angle 0)."""
    xp = namespace(angles)
    c, s = xp.cos(angles), xp.sin(angles)
    one, zero = xp.ones_like(c), xp.zeros_like(c)
    return xp.stack([one, zero, zero, zero, c, -s, zero, s, c], -1).reshape(*c.shape, 3, 3)


def rotation_axis_angle(r):
    """[3, 3] rotation -> (unit axis [3], zero for the identity; angle, radians in [0, pi]); numpy or torch like r."""
    xp = namespace(r)
    q = matrix_to_quat(r)
    vn = xp.linalg.vector_norm(q[1:])
    return q[1:] / xp.clip(vn, 1e-12, None), 2 * xp.atan2(vn, q[0])


def rotation_vector(r):
    """[3, 3] rotation -> [3] its rotation vector (unit axis x angle, radians); numpy or torch like r."""
    axis, angle = rotation_axis_angle(r)
    return axis * angle


def scaled_rotations(r, weights, axis_angle=None):
    """[3, 3] rotation, [K] weights -> [K, 3, 3] rotations by weight x its angle about the same axis. axis_angle:
    r's `rotation_axis_angle` where the caller has it already (None: found here)."""
    xp = namespace(r)
    # the axis zero for the identity: every level is then exactly I
    axis, angle = rotation_axis_angle(r) if axis_angle is None else axis_angle
    zero = xp.zeros_like(axis[0])
    kx = xp.stack([zero, -axis[2], axis[1], axis[2], zero, -axis[0], -axis[1], axis[0], zero]).reshape(3, 3)
    a = asarray_like(weights, r)[:, None, None] * angle
    eye = asarray_like(np.eye(3), r)
    return eye + xp.sin(a) * kx + (1 - xp.cos(a)) * (kx @ kx)


def _edge_dots(t):
    """[F, 3 corners, 3] -> [F, 3] e1.e1, e1.e2, e2.e2 of the edges from corner 0 (the triangle's metric)."""
    xp = namespace(t)
    a, b = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    return xp.stack([xp.einsum("fc,fc->f", a, a), xp.einsum("fc,fc->f", a, b), xp.einsum("fc,fc->f", b, b)], -1)


def inverse_metrics(t):
    """[F, 3 corners, 3] triangles -> [F, 3] the inverse of each one's metric G = [[e1.e1, e1.e2], [e1.e2,
    e2.e2]] (edges from corner 0) as its entries (00, 01, 11); degenerate triangles give zeros. numpy or torch
    like t."""
    xp = namespace(t)
    g = _edge_dots(t)
    det = g[:, 0] * g[:, 2] - g[:, 1] * g[:, 1]
    det = xp.where(det > 1e-30, det, xp.full_like(det, float("inf")))
    return xp.stack([g[:, 2], -g[:, 1], g[:, 0]], -1) / det[:, None]


def triangle_growth(g0_inv, t1, area_ratio):
    """`inverse_metrics` [F, 3] of triangles before a deformation, the triangles after it [F, 3 corners, 3]
    and their area ratios after / before [F] -> [F] the factor their bound Gaussians grow by: the larger
    in-plane stretch s1 when it is a stretch, times the square root of each shrink (s1 or s2 below 1):
    max(s1, 1) * sqrt(min(s1, 1) * min(s2, 1)).
    So skin stretched one way grows its Gaussians by the stretch (a 5 mm brow raise stretches the strip
    between brows and lids ~1.5x vertically and ~1x across: grown by the area's square root, 1.22, the rows
    of Gaussians parted into fine horizontal stripes), skin only squeezed keeps the square root of its area
    change (a lid squeezed shut), and a uniform scale gives that scale. s1 >= s2 are the singular values of
    the deformation gradient: s1^2 + s2^2 = trace(G0^-1 G1), s1 s2 = the area ratio. numpy or torch like t1."""
    xp = namespace(t1)
    g1 = _edge_dots(t1)
    tr = g0_inv[:, 0] * g1[:, 0] + 2 * g0_inv[:, 1] * g1[:, 1] + g0_inv[:, 2] * g1[:, 2]
    r = area_ratio
    gap = xp.sqrt(xp.clip(tr * tr - 4 * r * r, 0.0, None) + 1e-30)  # s1^2 - s2^2 (+ a floor: finite gradients)
    s1 = xp.sqrt(xp.clip(0.5 * (tr + gap), 1e-20, None))
    s2 = r / s1
    return xp.clip(s1, 1.0, None) * xp.sqrt(xp.clip(s1, None, 1.0) * xp.clip(s2, None, 1.0))


# The most a bound Gaussian grows by (`bound_growth`). The thin triangles round the mouth's corners (61, 62, 76, 78,
# 146, 184, 185, 191 and their mirrors) stretch 4x at jawOpen 0.3 and 11x at 0.9 (business_person; tracked clips' frames:
# the largest per frame 3-7x on 40-95 % of frames); their discs, the lips' edge red, grew into a red blur over the
# cheeks beside a wide-open mouth and a grey wedge over its corners (session 36; the wedge also in cover_rest's notes).
# Up to 2.5x the discs of skin stretched by a brow raise or a smile still close their rows (1.2-2x).
MAX_BOUND_GROWTH = 2.5


def bound_growth(g0_inv, t1, area_ratio, grow_by_stretch):
    """The factor [F] a bound Gaussian of each triangle grows by over a deformation: `triangle_growth` where
    grow_by_stretch [F] bool (`stretch_grown_triangles`), else the square root of the area ratio (the lips), at
    most MAX_BOUND_GROWTH. The one rule for drive (`frame_tables`) and its inverse at rest (rest_pose.photo_growth).
    numpy or torch like t1 (grow_by_stretch numpy: moved to t1's device)."""
    xp = namespace(t1)
    if xp is not np:
        grow_by_stretch = xp.as_tensor(grow_by_stretch, device=t1.device)
    g = xp.where(grow_by_stretch, triangle_growth(g0_inv, t1, area_ratio), xp.sqrt(area_ratio))
    return xp.clip(g, None, MAX_BOUND_GROWTH)


def triangle_frames(v, faces):
    """[V, 3], [F, 3] -> local frames [F, 3, 3] (columns: first edge, in-plane normal, normal), areas [F]."""
    return corner_frames(v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]])


def corner_frames(a, b, c):
    """The triangles' corners a, b, c [F, 3] each -> `triangle_frames`' local frames [F, 3, 3] and areas [F] (numpy
    or torch like a)."""
    xp = namespace(a)
    e1 = b - a
    if xp is np:  # the same arithmetic as np.linalg.cross and vector_norm, in fewer calls (the drive's every frame)
        cross, norm = _cross_np, lambda x: np.sqrt(x[:, 0] * x[:, 0] + x[:, 1] * x[:, 1] + x[:, 2] * x[:, 2])
    else:  # (torch: its own norm, whose gradient at zero is zero)
        cross, norm = xp.linalg.cross, lambda x: xp.linalg.vector_norm(x, axis=-1)
    nrm = cross(e1, c - a)
    nn = norm(nrm)
    area = 0.5 * nn
    e1 = e1 / xp.clip(norm(e1)[:, None], 1e-12, None)
    nrm = nrm / xp.clip(nn[:, None], 1e-12, None)
    return xp.stack([e1, cross(nrm, e1), nrm], -1), area


def _cross_np(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[F, 3] x [F, 3] -> [F, 3] float64 cross products, as np.linalg.cross computes them (each component one product
    less another: the same bits)."""
    return np.stack([x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1], x[:, 2] * y[:, 0] - x[:, 0] * y[:, 2],
                     x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]], -1)


# ---------------------------------------------------------------------------------------------------
# Per-avatar binding (once per avatar: numpy, or torch on the generated avatar's device when training)

def closest_points_on_triangles(p, a, b, c):
    """[..., 3] points, [..., 3] triangle corners -> (distance [...], barycentric [..., 3] of the closest point).
    numpy or torch like p (any leading dimensions; all four the same namespace, dtype and device). Where two
    candidates are equally close (the interior and an edge, two edges at a corner) the interior, then edges
    (a, b), (b, c), (c, a) in that order win."""
    xp = namespace(p)
    dot = lambda x, y: xp.einsum("...c,...c->...", x, y)  # noqa: E731
    ab, ac = b - a, c - a
    n = xp.linalg.cross(ab, ac)
    nn = xp.clip(dot(n, n), 1e-30, None)
    ap = p - a
    v = dot(xp.linalg.cross(ap, ac), n) / nn
    w = dot(xp.linalg.cross(ab, ap), n) / nn
    best_b = xp.stack([1 - v - w, v, w], -1)
    inside = (v >= 0) & (w >= 0) & (v + w <= 1)
    best_d = xp.where(inside, xp.abs(dot(ap, n)) / xp.sqrt(nn), xp.full_like(nn, float("inf")))
    for k, (u, e) in enumerate(((a, ab), (b, c - b), (c, a - c))):  # edge k runs from corner k to corner k + 1
        t = xp.clip(dot(p - u, e) / xp.clip(dot(e, e), 1e-30, None), 0, 1)
        d = xp.linalg.vector_norm(p - (u + t[..., None] * e), axis=-1)
        z = xp.zeros_like(t)
        bb = xp.stack([(1 - t, t, z), (z, 1 - t, t), (t, z, 1 - t)][k], -1)
        better = d < best_d
        best_d = xp.where(better, d, best_d)
        best_b = xp.where(better[..., None], bb, best_b)
    return best_d, best_b


def nearest_points(points, targets, k: int, upper: float = float("inf")):
    """[M, 3] points, [T, 3] targets -> (distances [M, k], indices [M, k] int64) of each point's k nearest targets
    (Euclidean, nearest first; k <= T); those farther than `upper` are left out: distance inf, index T (scipy's
    convention). numpy: a k-d tree (scipy; `upper` prunes its search); torch: exact squared distances on the
    points' device in blocks of ~4M pairs, then topk (a GPU does 35k x 852 in milliseconds; on a CPU the tree is
    faster)."""
    xp = namespace(points)
    if xp is np:
        from scipy.spatial import cKDTree

        d, i = cKDTree(targets).query(points, k=k, distance_upper_bound=upper)
        return np.reshape(d, (len(points), k)), np.reshape(i, (len(points), k)).astype(np.int64)
    block = max(1, (1 << 22) // max(1, len(targets)))
    d2, idx = [], []
    for s in range(0, len(points), block):
        r = xp.topk(((points[s:s + block, None] - targets[None]) ** 2).sum(-1), k, dim=1, largest=False)
        d2.append(r.values)
        idx.append(r.indices)
    if not d2:
        return xp.zeros((0, k), dtype=points.dtype, device=points.device), xp.zeros((0, k), dtype=xp.int64,
                                                                                      device=points.device)
    d, i = xp.cat(d2).sqrt(), xp.cat(idx)
    far = d > upper
    return xp.where(far, float("inf"), d), xp.where(far, len(targets), i)


def falloff_binding(points, verts, faces, falloff_m: float, candidates: int = 8,
                    closest: ClosestPoints | None = None):
    """The falloff frames' binding (module docstring): [M, 3] points, [V, 3] template, [F >= 1, 3] triangles ->
    (triangle [M] int64 each follows, weighted barycentric [M, 3] = w x the barycentric coordinates of its
    closest template point, w [M] = 1 - smoothstep(0, falloff_m, distance)); w = 0 (triangle 0, coefficients 0)
    where no triangle is within falloff_m.
    The closest point is searched on the triangles of the `candidates` nearest triangle centroids
    (`nearest_points`), the nearest centroid's winning ties. Centroids farther than falloff_m + the largest
    centroid-corner distance are skipped: no point of their triangle is within falloff_m, so they could only win
    where w = 0 (most of the hair, back and torso: 28 % of a 61k generated avatar's 25k such points are tested,
    41 % of a 60k mesh_fit avatar's 33k).
    numpy or torch like points (verts and faces the same namespace and device; torch: the whole search there).
    closest: a `ClosestPoints` of the same verts and faces (numpy) that runs the search (None: searched here)."""
    xp = namespace(points)
    best_f, best_b, best_d = (closest_template_points(points, verts, faces, falloff_m, candidates) if closest is None
                              else closest(points, falloff_m, candidates))
    w = 1 - smoothstep(0.0, falloff_m, best_d)
    keep = w > 0
    return xp.where(keep, best_f, 0), w[:, None] * xp.where(keep[:, None], best_b, 0.0), w


def closest_template_points(points, verts, faces, reach_m: float, candidates: int = 8):
    """[M, 3] points, [V, 3] template, [F >= 1, 3] triangles -> (triangle [M] int64, barycentric [M, 3] of the
    closest template point, distance [M] metres) for the points within reach_m of the template; beyond it
    (triangle 0, barycentric 0, distance inf). The search of `falloff_binding` (its docstring); numpy or torch."""
    xp = namespace(points)
    tv = verts[faces]  # [F, 3 corners, 3]
    centroids = tv.mean(1)
    reach = float(reach_m) + float(xp.linalg.vector_norm(tv - centroids[:, None], axis=-1).max()) + 1e-9
    k = min(int(candidates), len(faces))
    dist, cand = nearest_points(points, centroids, k, reach)  # [M, k]; beyond reach: inf, F
    best_d, best_b = xp.full_like(points[:, 0], float("inf")), xp.zeros_like(points)
    best_f = xp.zeros_like(cand[:, 0])
    rows = dist[:, 0] <= reach  # [M] bool: points with a candidate
    p, cand, dist = points[rows], cand[rows], dist[rows]
    sub_d, sub_b, sub_f = best_d[rows], best_b[rows], best_f[rows]
    if xp is np:  # the same search, one row at a time in a compiled loop (_closest_candidates)
        sub_f, sub_b, sub_d = _closest_candidates(np.ascontiguousarray(p, np.float64), np.ascontiguousarray(
            tv, np.float64), np.ascontiguousarray(cand, np.int64), np.ascontiguousarray(dist, np.float64), reach)
        best_d[rows], best_b[rows], best_f[rows] = sub_d, sub_b, sub_f
        return best_f, best_b, best_d
    # torch: all candidates at once, on the points' device
    f = xp.where(dist <= reach, cand, 0)  # [Mr, k]
    c = tv[f]
    d, b = closest_points_on_triangles(p[:, None], c[:, :, 0], c[:, :, 1], c[:, :, 2])  # [Mr, k], [Mr, k, 3]
    d = xp.where(dist <= reach, d, xp.full_like(d, float("inf")))
    j = xp.argmin(d, axis=1)  # the first of equal minima: the nearer centroid's
    ar = xp.arange(len(p), device=p.device)
    d, b, f = d[ar, j], b[ar, j], f[ar, j]
    better = d < sub_d
    sub_d, sub_f, sub_b = xp.where(better, d, sub_d), xp.where(better, f, sub_f), xp.where(better[:, None], b, sub_b)
    best_d[rows], best_b[rows], best_f[rows] = sub_d, sub_b, sub_f
    return best_f, best_b, best_d


from numba import njit  # noqa: E402

from gaussian_head_ros.core.jit import tolerate_cache_write_errors  # noqa: E402

tolerate_cache_write_errors()  # a full disk must not stop a kernel that compiled (core/jit.py)


@njit(cache=True, nogil=True)
def _dot3(x0, x1, x2, y0, y1, y2):
    # in the order numpy's einsum('...c,...c->...') adds a 3-vector's products (measured, numpy 2.2 here: x0 y0 + x2 y2
    # first): the compiled search then gives closest_points_on_triangles' numbers bit for bit
    return (x0 * y0 + x2 * y2) + x1 * y1


@njit(cache=True, nogil=True)
def _closest_candidates(p, tv, cand, dist, reach):
    """The numpy search of `closest_template_points` compiled: p [M, 3] points, tv [F, 3, 3] triangle corners, cand
    [M, k] candidate triangles nearest centroid first, dist [M, k] their centroids' distances (beyond `reach`: not
    searched) -> (triangle [M] int64, barycentric [M, 3], distance [M] metres; inf, 0, 0 where no candidate is in
    reach). Each candidate's closest point by `closest_points_on_triangles`'s rule and float64 operations in its
    order (interior, then edges ab, bc, ca, a later one only where strictly nearer), the first of equal distances
    winning as the column loop it replaces (0.2 s of numpy for a 60k avatar's falloff binding; rec59, render60). No
    fastmath: the same IEEE operations."""
    m, k = cand.shape
    out_f = np.zeros(m, np.int64)
    out_b = np.zeros((m, 3))
    out_d = np.full(m, np.inf)
    for i in range(m):
        px, py, pz = p[i, 0], p[i, 1], p[i, 2]
        for s in range(k):
            if not dist[i, s] <= reach:
                continue  # its distance is inf: never nearer
            f = cand[i, s]
            ax, ay, az = tv[f, 0, 0], tv[f, 0, 1], tv[f, 0, 2]
            bx, by, bz = tv[f, 1, 0], tv[f, 1, 1], tv[f, 1, 2]
            cx, cy, cz = tv[f, 2, 0], tv[f, 2, 1], tv[f, 2, 2]
            abx, aby, abz = bx - ax, by - ay, bz - az
            acx, acy, acz = cx - ax, cy - ay, cz - az
            nx, ny, nz = aby * acz - abz * acy, abz * acx - abx * acz, abx * acy - aby * acx
            nn = max(_dot3(nx, ny, nz, nx, ny, nz), 1e-30)
            apx, apy, apz = px - ax, py - ay, pz - az
            v = _dot3(apy * acz - apz * acy, apz * acx - apx * acz, apx * acy - apy * acx, nx, ny, nz) / nn
            w = _dot3(aby * apz - abz * apy, abz * apx - abx * apz, abx * apy - aby * apx, nx, ny, nz) / nn
            b0, b1, b2 = 1 - v - w, v, w
            d = np.inf
            if v >= 0 and w >= 0 and v + w <= 1:
                d = abs(_dot3(apx, apy, apz, nx, ny, nz)) / np.sqrt(nn)
            for e in range(3):  # edge e from corner e to corner e + 1
                if e == 0:
                    ux, uy, uz, ex, ey, ez = ax, ay, az, abx, aby, abz
                elif e == 1:
                    ux, uy, uz, ex, ey, ez = bx, by, bz, cx - bx, cy - by, cz - bz
                else:
                    ux, uy, uz, ex, ey, ez = cx, cy, cz, ax - cx, ay - cy, az - cz
                t = _dot3(px - ux, py - uy, pz - uz, ex, ey, ez) / max(_dot3(ex, ey, ez, ex, ey, ez), 1e-30)
                t = min(max(t, 0.0), 1.0)
                qx, qy, qz = px - (ux + t * ex), py - (uy + t * ey), pz - (uz + t * ez)
                de = np.sqrt(qx * qx + qy * qy + qz * qz)
                if de < d:
                    d = de
                    if e == 0:
                        b0, b1, b2 = 1 - t, t, 0.0
                    elif e == 1:
                        b0, b1, b2 = 0.0, 1 - t, t
                    else:
                        b0, b1, b2 = t, 0.0, 1 - t
            if d < out_d[i]:
                out_d[i], out_f[i] = d, f
                out_b[i, 0], out_b[i, 1], out_b[i, 2] = b0, b1, b2
    return out_f, out_b, out_d


class ClosestPoints:
    """`closest_template_points` on one template (numpy) for point sets searched again with a few rows moved (the
    passes of rest_pose.turn_torso's fixed point): rows equal, bit for bit, to those at the same index in the last
    search of the same reach are taken from it and only the others are searched; the same result, the search being
    row by row. turn_torso's 4 passes on four portraits' torso (6.7-11.9k rows): 0.4-3.6k rows moved after the
    first."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray):
        self.verts = np.asarray(verts, np.float64)  # [V, 3]
        self.faces = np.asarray(faces, np.int64).reshape(-1, 3)  # [F, 3]
        self._last = {}  # (reach_m, candidates) -> (points [M, 3], triangle [M], barycentric [M, 3], distance [M])

    def __call__(self, points: np.ndarray, reach_m: float, candidates: int = 8):
        """[M, 3] points -> closest_template_points(points, verts, faces, reach_m, candidates): (triangle [M] int64,
        barycentric [M, 3], distance [M] metres), arrays of the caller's own."""
        points = np.asarray(points, np.float64)
        key = (float(reach_m), int(candidates))
        last = self._last.get(key)
        if last is None or last[0].shape != points.shape:
            found = closest_template_points(points, self.verts, self.faces, reach_m, candidates)
        else:
            found = tuple(x.copy() for x in last[1:])
            redo = np.any(points != last[0], axis=1)
            if redo.any():
                for x, y in zip(found, closest_template_points(points[redo], self.verts, self.faces, reach_m,
                                                               candidates)):
                    x[redo] = y
        self._last[key] = (points.copy(), *found)
        return tuple(x.copy() for x in found)


def falloff_rows(part: np.ndarray, face_id: np.ndarray, num_faces: int, falloff_m: float):
    """[N] part, [N] face_id (-1 unbound), F triangles -> (carried [N] bool, near [N] bool): the Gaussians `build_rig`
    gives falloff frames. carried: static ones on a triangle (0 <= face_id < F), moved by its displacement at their
    own barycentric coordinates; near: those it binds to the closest template point (`falloff_binding`), static ones
    not carried, the torso and unbound face ones (none when F = 0 or falloff_m <= 0); the near ones farther than
    falloff_m from the template keep the frame their part gives them."""
    part, face_id = np.asarray(part), np.asarray(face_id, np.int64)
    carried = (part == PART_STATIC) & (face_id >= 0) & (face_id < num_faces)
    unbound_face = (part == PART_FACE) & ~((face_id >= 0) & (num_faces > 0))
    near = ((part == PART_STATIC) & ~carried) | (part == PART_TORSO) | unbound_face
    near &= (num_faces > 0) & (falloff_m > 0)
    return carried, near


@dataclass
class Rig:
    """Per-avatar constants of the driving rules (numpy; built by `build_rig`)."""

    verts: np.ndarray  # [V, 3] float64 rest template
    faces: np.ndarray  # [F, 3] int64
    frame_rest: np.ndarray  # [F, 3, 3] rest triangle frames (triangle_frames of verts)
    area_rest: np.ndarray  # [F] rest triangle areas
    frame: np.ndarray  # [N] int64 frame of each Gaussian
    bary: np.ndarray  # [N, 3] float64 coef[:3]: barycentric (bound), w x barycentric (falloff), (1, 0, 0) rigid,
    # (1, mouth_lateral, glide share) mouth interior
    tri: np.ndarray  # [N] int64 triangle of bound Gaussians (coef[3:] = mean - its rest barycentric point), else -1
    torso_weights: np.ndarray  # [torso_levels]
    jaw_weights: np.ndarray  # [levels]
    jaw_pivot: np.ndarray  # [3] hinge point (the axis is x)
    jaw_from_chin: bool  # MediaPipe topology: jaw angle from the deformed chin
    eye_centres: np.ndarray  # [2, 3] eyeball centres (subject's right, left), head frame
    rest_gaze: np.ndarray  # [2, 2] (yaw, pitch) rad of each eye in the photo
    k_fade: int
    k_head: int
    k_torso: int
    k_jaw: int
    k_eye: int
    num_frames: int
    metric_rest_inv: np.ndarray | None = None  # [F, 3] `inverse_metrics` of the rest triangles
    grow_by_stretch: np.ndarray | None = None  # [F] bool: bound Gaussians grow by `triangle_growth` (else area)
    # [2] (subject's right, left) the part of the photo's rest brow lift that uncovered a hooded lid (metres, y down,
    # <= 0; `expression.hooded_brow_lift` of GaussianAvatar.rest_brow_shift): how far a driven brow raise takes the
    # upper lid along (`lids_with_brow_raise`). None: not hooded or not known (learned avatars, training).
    brow_hood: np.ndarray | None = None
    # the eyeballs' lag levels (eye_lag_level) its PART_EYE Gaussians use, ascending: the eye frames are (right, left)
    # per level in this order. frame_tables turns only these: all EYE_LAG_LEVELS every frame cost the drive ~0.4 ms
    # for an avatar with two (the lead's figure, session 25); alternating with main at load 19-49, frame_tables on
    # business_person 7.5-10.5 -> 6.6-7.3 ms (iris25)
    eye_levels: tuple[int, ...] = (0,)
    # [torso_levels, 3, 3] the torso levels' spread (`torso_spread_of`): the mean of c c^T over each level's Gaussians,
    # c = p x grad w (p the rest mean, w its share of the head's turn); None: the levels keep their size
    torso_spread: np.ndarray | None = None
    # [3] the rotation vector (rad) of the control under which the torso's rows lie as the photo shows them (the photo's
    # own head rotation: rest_pose.turn_torso builds them so); the spread is that of the turn from it
    torso_turn0: np.ndarray = field(default_factory=lambda: np.zeros(3))
    # [2] (subject's right, left) how far the rest lowered the photo's raised brows (metres, y down, > 0; the positive
    # part of GaussianAvatar.rest_brow_shift): a driven raise up to that height gives the photo's brows back over the
    # photo's own lids, a raise beyond it takes the upper lids along (`lids_with_brow_raise`). None: none lowered.
    brow_above: np.ndarray | None = None

    @property
    def num_gaussians(self) -> int:
        """N, the number of Gaussians the rig was built for (rows of `frame`)."""
        return len(self.frame)


def build_rig(part, face_id, bary, means, verts, faces, cfg: DriveConfig, photo_points=None,
              brow_hood=None, photo_rotation=None, closest: ClosestPoints | None = None, brow_above=None) -> Rig:
    """[N] part, [N] face_id, [N, 3] bary, [N, 3] rest means, [V, 3] template, [F, 3] triangles -> Rig.
    photo_points [V, 2]: the template seen in the photo (pixels), where the rest gaze's yaw is measured (else the
    template's own x, y); its pitch is the template's own, in the head frame (`eyes.rest_gaze`). brow_hood [2]
    (metres, y down, <= 0) or None: Rig.brow_hood (all 0 is None); brow_above [2] (metres, >= 0) or None: Rig.brow_above
    (all 0 is None). photo_rotation [3, 3] or None (the identity): the
    control rotation that gives the photo back (`control.head_rotation_in_view` of its camera), where the torso's rows
    lie as the photo shows them (Rig.torso_turn0).

    means: numpy, or a torch tensor (detached: training binds each generated avatar's rest means), whose device
    then runs the falloff binding's search (`falloff_binding`). closest: a `ClosestPoints` of the same verts and
    faces that runs the searches on a CPU (a fixed point's passes: rest_pose.turn_torso), None: searched here.

    Cost: one nearest-centroid search per falloff candidate (unbound Gaussians but the mouth and eyes) and 8
    closest-point tests for those within reach; numpy, CPU time (median of 20, a loaded 2-core machine): 44 ms
    for a 61k generated avatar (25k candidates), 61 ms for a 60k mesh_fit one (33k); 115 / 144 ms when every
    candidate was tested.
    """
    part, face_id = np.asarray(part), np.asarray(face_id, np.int64)
    dev = None
    if namespace(means) is not np:
        dev = means.detach().double()
        means = dev.cpu().numpy()
        dev = None if dev.device.type == "cpu" else dev  # on a CPU numpy's k-d tree is the faster search
    means = np.asarray(means, np.float64)
    verts = np.asarray(verts, np.float64)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    n, nf = len(means), len(faces)
    levels, t_levels = max(2, int(cfg.levels)), max(2, int(cfg.torso_levels))
    k_fade, k_head = nf, 2 * nf
    k_torso, k_jaw = k_head + 1, k_head + 1 + t_levels
    k_eye = k_jaw + levels
    frame = np.full(n, k_head, np.int64)
    coef_b = np.zeros((n, 3))
    coef_b[:, 0] = 1.0
    tri = np.full(n, -1, np.int64)
    bound = (part == PART_FACE) & (face_id >= 0) & (nf > 0)
    frame[bound], tri[bound] = face_id[bound], face_id[bound]
    coef_b[bound] = np.asarray(bary, np.float64)[bound]
    carried, by_falloff = falloff_rows(part, face_id, nf, cfg.falloff_m)
    frame[carried] = k_fade + face_id[carried]
    coef_b[carried] = np.asarray(bary, np.float64)[carried]

    torso_weights = np.linspace(cfg.torso_follow, 1.0, t_levels)
    torso = part == PART_TORSO
    torso_spread = None
    if torso.any():
        p = means[torso]
        y_top = float(np.percentile(p[:, 1], 1))
        u = 1 - smoothstep(y_top, y_top + cfg.neck_blend_m, p[:, 1])  # 1 at the neck, 0 below the blend
        grad = np.zeros_like(p)  # [M, 3] grad u, 1/m
        grad[:, 1] = -smoothstep_slope(y_top, y_top + cfg.neck_blend_m, p[:, 1])
        if nf and cfg.falloff_m > 0 and cfg.torso_fade_m > 0:  # the whole turn at the falloff band's edge
            reach = cfg.falloff_m + cfg.torso_fade_m
            f, b, d = closest_template_points(p, verts, faces, reach) if closest is None else closest(p, reach)
            u_d = 1 - smoothstep(cfg.falloff_m, reach, d)
            near = u_d > u
            away = p[near] - np.einsum("mk,mkc->mc", b[near], verts[faces[f[near]]])
            grad[near] = (-smoothstep_slope(cfg.falloff_m, reach, d[near]) / np.maximum(d[near], 1e-9))[:, None] * away
            u = np.maximum(u, u_d)
        level = np.rint(u * (t_levels - 1)).astype(np.int64)
        frame[torso] = k_torso + level
        torso_spread = torso_spread_of(p, (1.0 - cfg.torso_follow) * grad, level, t_levels)

    mouth = np.isin(part, JAW_PARTS)  # the interior and the jaw's underside
    mp_topology = lmk.has_mediapipe_topology(len(verts))
    if mp_topology:  # hinge between the cheeks, lip line from the inner lips
        pivot = jaw_pivot(verts)
        w = lip_line_jaw_weight(means[mouth, 1], verts)
    else:
        centre = means[mouth].mean(0) if mouth.any() else np.array([0.0, 0.04, -0.06])
        pivot = centre + np.array([0.0, -0.03, 0.07])
        w = smoothstep(centre[1] - 0.004, centre[1] + 0.004, means[mouth, 1])
    jaw_weights = np.linspace(0.0, 1.0, levels)
    if mouth.any():
        mouth_bary = np.asarray(bary, np.float64)[mouth]
        if np.any(mouth_bary.sum(1) > 0):  # explicit jaw weights from the reconstructor
            w = mouth_bary[:, 0]
            # its share of the level's glide (frame_tables); the photo's own open mouth's bary[:, 1] is its lips' gap
            coef_b[mouth, 2] = np.where(part[mouth] == PART_PHOTO_MOUTH, 0.0, np.clip(mouth_bary[:, 1], 0.0, 1.0))
        frame[mouth] = k_jaw + quantised_jaw_weight(w, levels)
        coef_b[mouth, 1] = mouth_lateral(verts, means[mouth, 0])  # the jaw frames' sideways stretch (frame_tables)

    eyeball = part == PART_EYE
    if mp_topology and len(verts) >= lmk.NUM_LANDMARKS:
        rest_gaze = eyes.rest_gaze(verts, photo_points)  # pitch in the head frame, yaw in the photo
        eye_centres = eyes.eyeball_centres(verts, rest_gaze)
    else:
        eye_centres, rest_gaze = np.zeros((2, 3)), np.zeros((2, 2))
    eye_levels = (0,)
    if eyeball.any():
        side = (means[eyeball, 0] > 0.5 * (eye_centres[0, 0] + eye_centres[1, 0])).astype(np.int64)
        lag = eye_lag_level(np.asarray(bary, np.float64)[eyeball, 0])
        eye_levels = tuple(int(x) for x in np.unique(lag))
        frame[eyeball] = k_eye + side + 2 * np.searchsorted(eye_levels, lag)

    # Falloff: static, torso and unbound face Gaussians near the template follow its displacement, fading (not
    # PART_UNDER_CHIN: it keeps the head frame set above).
    if by_falloff.any():
        idx = np.nonzero(by_falloff)[0]
        if dev is None:
            f, b, w = falloff_binding(means[idx], verts, faces, cfg.falloff_m, closest=closest)
        else:  # the search on the means' device (a GPU: training), in float64 as numpy's
            import torch

            f, b, w = (t.cpu().numpy() for t in falloff_binding(
                dev[torch.as_tensor(idx, device=dev.device)], torch.as_tensor(verts, device=dev.device),
                torch.as_tensor(faces, device=dev.device), cfg.falloff_m))
        keep = w > 0
        frame[idx[keep]] = k_fade + f[keep]
        coef_b[idx[keep]] = b[keep]
    frame_rest, area_rest = triangle_frames(verts, faces)
    return Rig(verts, faces, frame_rest, area_rest, frame, coef_b, tri, torso_weights, jaw_weights, pivot, mp_topology,
               eye_centres, rest_gaze, k_fade, k_head, k_torso, k_jaw, k_eye, k_eye + 2 * len(eye_levels),
               inverse_metrics(verts[faces]), stretch_grown_triangles(verts, faces),
               None if brow_hood is None or not np.any(np.asarray(brow_hood) < 0)
               else np.minimum(np.asarray(brow_hood, np.float64).reshape(2), 0.0), eye_levels, torso_spread,
               np.zeros(3) if photo_rotation is None else rotation_vector(np.asarray(photo_rotation, np.float64)),
               None if brow_above is None or not np.any(np.asarray(brow_above) > 0)
               else np.maximum(np.asarray(brow_above, np.float64).reshape(2), 0.0))


def stretch_grown_triangles(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3] rest template, [F, 3] -> [F] bool: triangles whose bound Gaussians grow by `triangle_growth`
    when driven: every one but the lips' (MediaPipe topology: all three corners inside or on the outer lip
    contour, seen along z), which keep the square root of their area change. The lips unroll rather than
    stretch as the mouth opens: their thin inner triangles get 10-20x taller at a wide opening, and Gaussians
    grown by that covered the opening (lips.py maps the lips' own covariances). The reconstructor divides
    its rest-pose Gaussians by the same rule (rest_pose.photo_growth)."""
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    if not lmk.has_mediapipe_topology(len(verts)):
        return np.ones(len(faces), bool)
    v = np.asarray(verts, np.float64)[:, :2]
    loop = list(lmk.LIP_OUTER)
    lips = Path(v[loop]).contains_points(v, radius=1e-6) | Path(v[loop[::-1]]).contains_points(v, radius=1e-6)
    lips[loop] = True
    return ~lips[faces].all(1)


def coefficients(rig: Rig, means, verts):
    """[N, 6] per-Gaussian coefficients for `apply`: (rig.bary, mean - rest barycentric point for bound
    Gaussians, else mean). numpy or torch (differentiable in means and verts) like `means`."""
    xp = namespace(means)
    bary = asarray_like(rig.bary, means)
    bound = rig.tri >= 0
    if xp is np:
        offset = means.astype(np.float64).copy()
        if bound.any():
            tv = np.asarray(verts, np.float64)[rig.faces[rig.tri[bound]]]  # [Nb, 3, 3]
            offset[bound] -= np.einsum("nk,nkc->nc", rig.bary[bound], tv)
        return np.concatenate([bary, offset], 1)
    if not bound.any():  # nothing bound (a template without triangles): no face to index
        return xp.concat([bary, means], 1)
    tri = xp.as_tensor(np.maximum(rig.tri, 0), device=means.device)
    rest_point = xp.einsum("nk,nkc->nc", bary, verts[xp.as_tensor(rig.faces, device=means.device)[tri]])
    mask = xp.as_tensor(bound, device=means.device)[:, None]
    return xp.concat([bary, means - xp.where(mask, rest_point, xp.zeros_like(rest_point))], 1)


# ---------------------------------------------------------------------------------------------------
# Per-frame rules (numpy or torch)

def expression_offsets(verts, expression, basis=None, coeffs=None, cfg: DriveConfig | None = None,
                       lid_ratios=None, gaze=None, rig: "Rig | None" = None):
    """Template displacement [V, 3]: expression [L, 3] (limited to max_offset_m each, times the gain) on the
    first min(V, L) vertices, plus coeffs [E] x basis [E, V, 3]; with the operator's lid ratios [14]
    (`eyelid_ratios`) the eyelids then follow `eyelid_openness` (retargeted as a fraction of each face's own
    lid gap); with a gaze [2, 2] (numpy) and the avatar's `rig` they also follow each eyeball's vertical turn
    from its rest gaze (`lid_turns`); on a rig whose photo's low brows hooded its lids (Rig.brow_hood), or whose rest
    lowered its photo's raised brows (Rig.brow_above), the upper lids also rise with a driven brow raise
    (`lids_with_brow_raise`)."""
    cfg = cfg or DriveConfig()
    xp = namespace(verts)
    lcount = min(verts.shape[0], expression.shape[0])
    off = expression[:lcount] * cfg.expression_gain
    length = xp.linalg.vector_norm(off, axis=-1, keepdims=True)
    off = xp.where(length > cfg.max_offset_m, off * (cfg.max_offset_m / xp.clip(length, 1e-12, None)), off)
    disp = xp.concat([off, xp.zeros_like(verts[lcount:])], 0) if lcount < verts.shape[0] else off
    if basis is not None and coeffs is not None and basis.shape[0]:
        disp = disp + xp.einsum("e,evc->vc", coeffs, basis)
    if not lmk.has_mediapipe_topology(verts.shape[0]):
        return disp
    # (whatever the expression's length: a control with lid ratios and no expression had its lids left at rest,
    # and a blend of it with the idle animation's 478 offsets had them retargeted, a jump at the end of each ease)
    use_ratios = lid_ratios is not None and cfg.lid_closed_ratio < 1 and lid_ratios.shape[0] == NUM_LID_PAIRS
    turns = lid_turns(rig, gaze, cfg) if rig is not None else None
    if use_ratios or turns is not None:
        openness = eyelid_openness(lid_ratios, cfg) if use_ratios else asarray_like(np.ones(2), disp)
        disp = retarget_eyelids(verts, disp, openness, turns, None if turns is None else rig.eye_centres, cfg)
        if rig is not None and (rig.brow_hood is not None or rig.brow_above is not None):
            disp = lids_with_brow_raise(disp, openness, rig.brow_hood, xp, cfg, rig.brow_above)
    return disp


_BROWS = (list(lmk.BROW_R), list(lmk.BROW_L))  # each eye's brow (subject's right, left)


def lids_with_brow_raise(disp, openness, hood, xp, cfg: DriveConfig, above=None):
    """disp [V >= 468, 3] a displacement whose lids were retargeted (`retarget_eyelids`), openness [2] (right,
    left; `eyelid_openness`), hood [2] numpy (metres, y down, <= 0; Rig.brow_hood) or None, above [2] numpy (metres,
    >= 0; Rig.brow_above) or None -> the same with each upper lid's margin (LID_UPPER) raised by
    cfg.lid_with_brow_raise x its brow's driven raise (the mean upward displacement of lmk.BROW_R / BROW_L; a lowered
    brow: nothing), the raise counted up to -hood on a hooded avatar, and beyond `above` (the photo's own brow
    height) on one whose rest lowered its photo's raised brows, x the eye's openness (shut lids still meet). numpy
    or torch like disp.

    The drive-time counterpart of the rest's lift of a hooded lid (`expression._brow_spread`, which lifts the lids
    by expression.LID_WITH_BROW_LIFT of the brows' lift from below 14.5 mm, hood; a raise is counted up to as much
    again, at half that rate, cfg.lid_with_brow_raise): the retargeting sets
    each upper lid at a fraction of its rest height above the lower lid, so a driven raise stretched the strip
    between brows and lids and left the margin: a hooded, squinted avatar's fold came up and its slit stayed, and
    FaceLandmarker read its eyes as more closed under raised brows (trump_official x sadtalker after a blink). Only
    as far as the photo's own brows hooded the lid (hood, recorded by the reconstructor): a face whose lids were
    not hooded keeps them under a raise (every avatar's lids taken up under tpsmm_driving's held 5.7 mm raise made
    FaceLandmarker read its half-blinks less: lp_d8 x tpsmm blink 0.81 -> 0.72, session 15), and a self clip's
    frame 0 (its photo never hooded) gives the photo back. A photo whose raised brows the rest lowered (above > 0:
    tpsmm_driving's frame 0 by 6.0 mm, lp_d9_woman_turned 6.4, lp_d0's frame 0) showed its lids under those brows, so
    a raise back to them lifts nothing (frame 0 still gives the photo back) and a raise beyond them lifts the lids as
    a real raise does: self tpsmm_driving's brows rise 4-7 mm past frame 0's in frames 100-147 as the operator's eyes
    open wider (reader blink 0.12-0.22), and with its lids left the render read 0.45-0.50 (whole-clip blink r 0.628;
    0.771 with the lift; blink62)."""
    hood = np.zeros(2) if hood is None else hood
    above = np.zeros(2) if above is None else above
    # y down: a raise is < 0; a hooded lid's raise counted from the rest up to -hood, a raised photo's beyond its
    # brows (no bound), neither's not at all
    y = [xp.clip(disp[b, 1].mean() + float(a), float(h) if h < 0 else (-np.inf if a > 0 else 0.0), 0.0)
         for b, h, a in zip(_BROWS, hood, above)]
    lift = xp.stack(y) * cfg.lid_with_brow_raise * openness
    rows = lift[_LID_EYE] if xp is np else lift[xp.as_tensor(_LID_EYE, device=disp.device)]
    add = xp.stack([xp.zeros_like(rows), rows, xp.zeros_like(rows)], 1)
    if xp is np:
        disp = disp.copy()
        disp[LID_UPPER] += add
        return disp
    return disp.index_add(0, xp.as_tensor(LID_UPPER, device=disp.device), add.to(disp.dtype))


# A gaze this close to the rest gaze is the rest gaze: controls carry it as float32 (the idle animation's, a blend's)
# and the rig holds it float64, ~1e-8 rad apart. Taken for a look, it retargeted the lids to their rest opening
# and undid the idle blink's lid offsets (review30, s30). 1e-6 rad turns a lid 1e-8 m.
REST_GAZE_TOL_RAD = 1e-6


def lid_turns(rig: "Rig", gaze, cfg: DriveConfig):
    """The lids' vertical turns about each eyeball's centre for a gaze [2, 2] (numpy) -> [2, 2] numpy (upper,
    lower) rad per eye (right, left), positive downwards; None for no gaze, the rest gaze (within
    REST_GAZE_TOL_RAD), an avatar without eyes, or both follow fractions 0.

    Lid-eye coupling: the upper lid rides on the eye, keeping its margin near the top of the iris, in down-
    and upgaze alike (about 1:1 with the vertical eye turn); the lower lid follows less (about 1/3-1/2 in
    downgaze). The eyeball's vertical turn is the control's pitch minus the photo's rest pitch, limited like
    the eyeball's own (`eyes.gaze_rotations`: gaze_max_rad). Measured here: without it FaceLandmarker read
    the render's vertical gaze at 0.06-0.5 units per radian of eyeball pitch (astronaut, lp_d9, monalisa,
    obama_speech, lp_d0 frame 0) where it reads a real face's at 1.6-2.8 (lp_d0, tpsmm): with the lids
    still, an iris turned down reads as a darker eye, not a lowered gaze."""
    if gaze is None or (cfg.lid_follow_upper == 0 and cfg.lid_follow_lower == 0) or \
            not np.any(np.asarray(rig.eye_centres)):
        return None  # (also None when the gaze is the rest gaze: the rest pose stays exact)
    g = np.asarray(gaze, np.float64).reshape(2, 2)
    rest = np.asarray(rig.rest_gaze, np.float64).reshape(2, 2)
    dp = np.clip(g[:, 1] - rest[:, 1], -cfg.gaze_max_rad, cfg.gaze_max_rad)
    if not np.any(np.abs(dp) > REST_GAZE_TOL_RAD):
        return None
    return lid_follow(dp, cfg)


def lid_follow(dpitch: np.ndarray, cfg: DriveConfig) -> np.ndarray:
    """Eye turns dpitch [N] rad (down positive; N = 2, one per eye, or any number of turns) -> the lids' turns [N, 2]
    (upper, lower): the follow fractions of the lid-eye coupling (`lid_turns`, `coupled_lid_ratio`, and mesh_fit's
    painted eyeball cap: eyes_and_lids.turn_views)."""
    return np.stack([cfg.lid_follow_upper * dpitch, cfg.lid_follow_lower * dpitch], 1)


def coupled_lid_ratio(verts: np.ndarray, centres: np.ndarray, dpitch, cfg: DriveConfig | None = None) -> np.ndarray:
    """The lid-eye coupling's own lid ratio per eye (right, left) [2]: each eye's centre lid gap (`LID_MID`, as
    `eyelid_ratios` measures it) with its lids turned as `lid_turns` turns them for an eye turned dpitch [2] rad
    down (the upper lid kept `lid_min_gap` of its height above the lower one), over the gap at rest. verts [>= 478,
    3] a face in the head frame (metres, y down), centres [2, 3] its eyeball centres (`eyes.eyeball_centres`).
    The tracker divides the operator's measured ratios by it for the look down since their neutral
    (`net_lid_ratios`)."""
    cfg = cfg or DriveConfig()
    v = np.asarray(verts, np.float64)
    dp = np.asarray(dpitch, np.float64).reshape(2)
    turns = lid_follow(dp, cfg)  # as lid_turns
    moved = v + retarget_eyelids(v, np.zeros_like(v), np.ones(2), turns, centres, cfg)  # the driver's rule
    return eyelid_ratios(moved, moved - v)[list(LID_MID)]


def net_lid_ratios(lid_ratios, dpitch, verts: np.ndarray, centres: np.ndarray, cfg: DriveConfig | None = None):
    """The operator's lid ratios [14] (1 = the neutral; the tracker's are `seen_eyelid_ratios`, measured in the
    picture, since eyes15 in session 15; `eyelid_ratios` the pose-free ones) with the look down since their neutral
    counted once: dpitch [2] rad, each eye's pitch less the neutral's (down positive; a look up, <= 0, changes
    nothing); verts / centres the operator's neutral face and its eyeball centres (`coupled_lid_ratio`).

    The avatar's lids follow its eyes by themselves (`lid_turns`: the lid-eye coupling) and the measured ratios
    scale their gap (`eyelid_openness`). An operator's lids follow their look down too, and MediaPipe's lid
    points show it: multiplied, the drop was counted twice; sadtalker's looks down read as half-closed eyes and a
    squinted photo's as shut (blink13 / gazev13, session 13). So a pair's ratio is divided by the coupling's own
    ratio for that look, up to the neutral's opening: a drop the coupling explains counts once (the coupling's),
    a larger one (a closing lid) the rest of it; lids whose points did not come down keep their ratio, and the
    coupling alone lowers the avatar's. In a look up the lids' rise is
    hardly in the points (tracked centre gap / neutral against the tracked pitch, open lids: -1.59 / -0.86 /
    -0.68 per radian down, -0.07 / -0.03 / +0.57 up on sadtalker (60 frames) / tpsmm / lp_d0 (whole clips)), and
    the ratios stay. Relative to the operator's own neutral, not the photo's rest: the ratios are relative to
    the neutral, whose lids already sit where its gaze puts them (tpsmm's operator looks down from the start;
    the same rule in the driver, from the photo's rest, opened every cross avatar's lids under tpsmm and made its
    blinks shallower: living-face blink 0.8942, where this gives 0.9025; head14, session 14)."""
    r = np.asarray(lid_ratios, np.float64).reshape(-1)
    dp = np.maximum(np.asarray(dpitch, np.float64).reshape(2), 0.0)
    if not np.any(dp > 0):
        return r
    c = coupled_lid_ratio(verts, centres, dp, cfg)[_LID_EYE]
    return np.where(r <= 1.0, np.minimum(r / c, 1.0), r)


LID_UPPER = np.array([p[0] for p in lmk.EYELID_PAIRS_R + lmk.EYELID_PAIRS_L])  # [14] upper-lid landmarks
LID_LOWER = np.array([p[1] for p in lmk.EYELID_PAIRS_R + lmk.EYELID_PAIRS_L])  # [14] their lower-lid partners
LID_FOLD_ROW = np.array(lmk.UPPER_LID_ROW_R + lmk.UPPER_LID_ROW_L)  # [14] the lid skin row above each LID_UPPER
LID_MID = (lmk.EYELID_PAIRS_R.index(lmk.EYELID_MID_R),
           len(lmk.EYELID_PAIRS_R) + lmk.EYELID_PAIRS_L.index(lmk.EYELID_MID_L))  # centre pair of each eye


def eyelid_ratios(landmarks, expression):
    """[L >= 468, 3] the operator's canonical landmarks and [L, 3] expression (landmarks minus their neutral
    face) -> [14] lid gap / neutral lid gap of each pair of lmk.EYELID_PAIRS_R then EYELID_PAIRS_L (1 = as
    open as the neutral, ~0.2 = MediaPipe's full blink). numpy or torch like `landmarks`."""
    xp = namespace(landmarks)
    up, lo = LID_UPPER, LID_LOWER
    neutral = landmarks - expression[:landmarks.shape[0]]
    gap = xp.linalg.vector_norm(landmarks[up] - landmarks[lo], axis=-1)
    gap0 = xp.clip(xp.linalg.vector_norm(neutral[up] - neutral[lo], axis=-1), 1e-6, None)
    return gap / gap0


def flat_eyelid_ratios(neutral: np.ndarray, rotation: np.ndarray | None = None) -> np.ndarray:
    """[L >= 468, 3] the operator's neutral face (head frame, metres) and [3, 3] a head rotation (head-frame vector
    v -> image vector v @ R.T; None: the identity, the face seen from the front) -> [14] each lid pair's gap over its
    eye's corner distance as the image would show them with the neutral's gap and corner vectors laid flat (z = 0:
    across the front of the face) and turned by the rotation. What `seen_eyelid_ratios` divides by."""
    n = np.asarray(neutral, np.float64)
    r = np.eye(3) if rotation is None else np.asarray(rotation, np.float64)
    corners = np.asarray(lmk.EYE_CORNERS)

    def flat_seen(v):  # [K, 3] head-frame vectors laid flat and turned -> [K] lengths in the image plane
        v = v.copy()
        v[:, 2] = 0.0
        return np.linalg.norm((v @ r.T)[:, :2], axis=-1)

    width0 = flat_seen(n[corners[:, 0]] - n[corners[:, 1]])[_LID_EYE]
    return flat_seen(n[LID_UPPER] - n[LID_LOWER]) / np.clip(width0, 1e-12, None)


def seen_eyelid_ratios(points_px: np.ndarray, neutral: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """[L >= 468, 2+] this frame's landmarks in the image (pixels; x, y used), [L, 3] the operator's neutral face
    (head frame, metres) and [3, 3] the frame's head rotation (head-frame vector v -> image vector v @ R.T, as
    the tracker's similarity fit gives it) -> [14] each pair's lid gap over its eye's corner distance, in the
    image, divided by the same of the neutral's gap and corner vectors laid flat and turned by the frame's
    rotation (`flat_eyelid_ratios`), so that a turned head's foreshortening cancels. Not 1 on the neutral's own
    frame (the tracker divides by its operator's open level in these terms: `FaceTracker`, eyelid ratios): the
    head frame is pitched ~9 deg against the canonical face's front and a lid opening is not flat.

    Why the picture and not the pose-free (3D) lid gap (`eyelid_ratios`): with the head tilted back while the
    eyes look down at the camera, the pose-free gap closed to 0.78 of the neutral (sadtalker frames 40-59) where
    the picture's stays at 0.96 (FaceLandmarker's lid points; the face mesh's own in the image: 0.88), and the
    avatar's lids came down over the upper half of the iris (eyes15, session 15). The lid points' per-frame
    depths are not the cause (the gap with each lid point at the neutral's depth along its pixel ray: 0.776);
    the rigid head is: the opening turns with the eye."""
    p = np.asarray(points_px, np.float64)[:, :2]
    corners = np.asarray(lmk.EYE_CORNERS)
    width = np.linalg.norm(p[corners[:, 0]] - p[corners[:, 1]], axis=-1)[_LID_EYE]
    seen = np.linalg.norm(p[LID_UPPER] - p[LID_LOWER], axis=-1) / np.clip(width, 1e-9, None)
    return seen / np.clip(flat_eyelid_ratios(neutral, rotation), 1e-9, None)


def eyelid_openness(lid_ratios, cfg: DriveConfig):
    """[14] lid ratios (`eyelid_ratios`) -> the operator's lid opening per eye (right, left) [2]: the centre
    pair's ratio remapped so that `lid_closed_ratio` (where MediaPipe's lids stop in a full blink) reads 0;
    exactly 1 at the neutral, clipped to [0, lid_max_open]."""
    xp = namespace(lid_ratios)
    mid = lid_ratios[list(LID_MID)]
    return xp.clip((mid - cfg.lid_closed_ratio) / (1 - cfg.lid_closed_ratio), 0.0, cfg.lid_max_open)


_LID_EYE = np.repeat([0, 1], [len(lmk.EYELID_PAIRS_R), len(lmk.EYELID_PAIRS_L)])  # [14] eye of each pair


def _lid_taper(rest_dy):
    """[14] each lid pair's rest height (upper minus lower lid y, metres, y down: <= 0; numpy or torch) -> [14] the
    share of its eye's lid turn the pair takes (`retarget_eyelids`), like rest_dy: its rest height over its eye's
    centre pair's (LID_MID), clipped to [0, 1]. The lids are tied to the bone at the eye's corners (the canthal tendons), so a lid that rides on a
    turning eye moves most at its middle and not at all at the corners. Turned alike, the pairs by the corners,
    2-3 mm apart at rest, lost as much as the middle's 11.6 mm gap did: business_person x tpsmm_driving frame 120
    (the eyes 0.18 rad below the photo's) kept 0.35 / 0.66 of the inner / outer pairs' rest gaps where the middle
    kept 0.88 (1.4 / 1.0 / 1.4 mm lost); the eye read narrowed to a point and its inner corner's caruncle stood as a dark red spot with the
    lashes drawn down round it (issue 11, brows35)."""
    xp = namespace(rest_dy)
    mid = rest_dy[list(LID_MID)][list(_LID_EYE)]
    return xp.clip(rest_dy / xp.where(xp.abs(mid) > 1e-9, mid, -1e-9), 0.0, 1.0)


def retarget_eyelids(verts, disp, openness, turns=None, centres=None, cfg: DriveConfig | None = None):
    """The driver's lid rule: each upper-lid margin vertex (LID_UPPER) set openness x its rest height above its
    displaced lower-lid partner (LID_LOWER), so the avatar's lids meet when the operator's do, whatever the two
    faces' eye sizes.

    verts [V >= 468, 3] the rest template (MediaPipe topology; head frame: metres, x to the subject's left, y
    down, z into the head), disp [V, 3] its displacement this frame (same frame, metres), openness [2] each eye's
    (the subject's right, left) opening as a fraction of its rest gap (0 shut, 1 as at rest; `eyelid_openness`
    gives the operator's, up to cfg.lid_max_open). With turns [2, 2] rad (upper, lower lid of each eye, down
    positive; `lid_turns`) and centres [2, 3] (the eyeball centres, head frame, metres), each lower lid first
    turns about its eye's centre (about the head frame's x axis) by its turn, and the rest height is the one of
    the two turned lids (each pair by `_lid_taper`'s share of its eye's turns: the corners' pairs hardly), the upper
    kept at least cfg.lid_min_gap of its rest height above the lower (cfg None:
    DriveConfig's). An upper lid set higher above its lower partner than at rest takes the lid skin row above it
    (LID_FOLD_ROW) up by cfg.lid_fold_share of the extra rise (y only): the lid retracts into its fold. -> [V, 3] a
    new displacement (disp is not changed): disp with the upper-lid rows (and the lower-lid rows when turned)
    replaced and the fold rows moved. numpy or torch like disp (turns and centres numpy). At openness 1
    without turns the upper lids keep their rest height above the lower ones (no fold); at 0 they lie on them (a
    full blink: `lashes.closed_displacement`)."""
    xp = namespace(disp)
    cfg = cfg or DriveConfig()
    up, lo = LID_UPPER, LID_LOWER
    h0 = verts[up] - verts[lo]
    if xp is np:
        open_rows = openness[_LID_EYE][:, None]
    else:
        open_rows = openness[xp.as_tensor(_LID_EYE, device=disp.device)][:, None]
    if turns is None:
        idx_all, new = up, disp[lo] + (open_rows - 1) * h0
        rise = ((open_rows - 1) * h0)[:, 1]  # [14] the margin's height above its partner less the rest's (y down)
    else:
        taper = _lid_taper(h0[:, 1])  # [14] in verts' namespace (a torch driver's stays on its device)
        a = asarray_like(np.asarray(turns, np.float64)[_LID_EYE].T, taper) * taper[None]  # [2, 14] (upper, lower)

        def turned(p, k):  # [14, 3] points turned about their eye's centre by column k of a (x axis)
            q = p - c
            return c + xp.stack([q[:, 0], cs_[k] * q[:, 1] - sn_[k] * q[:, 2], sn_[k] * q[:, 1] + cs_[k] * q[:, 2]], 1)

        c = asarray_like(np.asarray(centres, np.float64)[_LID_EYE], disp)
        cs_, sn_ = xp.cos(a), xp.sin(a)
        if xp is np:  # in disp's dtype (a torch driver's verts and disp share theirs)
            cs_, sn_ = cs_.astype(disp.dtype), sn_.astype(disp.dtype)
        lo_new = turned(verts[lo] + disp[lo], 1) - verts[lo]
        h = turned(verts[up], 0) - turned(verts[lo], 1)
        hy = xp.where(h0[:, 1] < 0, xp.minimum(h[:, 1], cfg.lid_min_gap * h0[:, 1]), h[:, 1])  # y down
        h = xp.stack([h[:, 0], hy, h[:, 2]], 1)
        idx_all = np.concatenate([lo, up])
        new = xp.concat([lo_new, lo_new + verts[lo] + open_rows * h - verts[up]], 0)
        rise = (open_rows * h - h0)[:, 1]
    fold = cfg.lid_fold_share * xp.clip(rise, None, 0.0)  # [14] y down: <= 0, the row's rise
    fold = xp.stack([xp.zeros_like(fold), fold, xp.zeros_like(fold)], 1)
    if xp is np:
        disp = disp.copy()
        disp[idx_all] = new
        disp[LID_FOLD_ROW] += fold
        return disp
    idx = xp.as_tensor(idx_all, device=disp.device)
    disp = disp.index_copy(0, idx, new.to(disp.dtype))
    return disp.index_add(0, xp.as_tensor(LID_FOLD_ROW, device=disp.device), fold.to(disp.dtype))


def jaw_angle(rig: Rig, disp, jaw_open: float | None, cfg: DriveConfig):
    """Jaw opening (rad, clipped to [0, jaw_max_rad]): from the displaced chin (MediaPipe topology), else the
    jawOpen blendshape (None = absent; a control with mouth_open alone has one: `control_inputs`), else 0."""
    xp = namespace(disp)
    if rig.jaw_from_chin and bool(xp.any(disp[lmk.CHIN] != 0)):
        piv = asarray_like(rig.jaw_pivot, disp)
        r0 = asarray_like(rig.verts[lmk.CHIN], disp) - piv
        r1 = r0 + disp[lmk.CHIN]
        ang = chin_turn(r0, r1)
    else:
        ang = asarray_like(cfg.jaw_per_jaw_open * (jaw_open or 0.0), disp)
    return xp.clip(ang, 0.0, cfg.jaw_max_rad)


def inner_lip_gap(verts) -> float:
    """[V, 3] template vertices (MediaPipe topology, head frame, y down) -> the inner lips' gap at the midline
    (metres, lower inner lip's y less the upper's; about 0 or below for lips that meet)."""
    return float(verts[lmk.LOWER_LIP_IN, 1] - verts[lmk.UPPER_LIP_IN, 1])


def photo_mouth_share(theta: float, gap_m: float | None, theta_photo, gap_photo_m, cfg: DriveConfig) -> np.ndarray:
    """The driven jaw angle (rad, `jaw_angle`) and inner lips' gap (m, `inner_lip_gap`; None on a template without
    MediaPipe's topology: the angle alone), [M] the photo's own of each PART_PHOTO_MOUTH row (bary[:, 2] rad,
    bary[:, 1] m) -> [M] float32 in [0, 1], the share of their opacity those rows keep: the product of 1 -
    smoothstep(full, gone, |driven - photo's|) for the angle (cfg.photo_mouth_full_rad / _gone_rad) and the gap
    (cfg.photo_mouth_full_m / _gone_m) (DriveConfig.photo_mouth_full_rad)."""
    d_theta = np.abs(float(theta) - np.asarray(theta_photo, np.float64))
    d_gap = np.zeros_like(d_theta) if gap_m is None else np.abs(float(gap_m) - np.asarray(gap_photo_m, np.float64))
    share = ((1.0 - smoothstep(cfg.photo_mouth_full_rad, cfg.photo_mouth_gone_rad, d_theta))
             * (1.0 - smoothstep(cfg.photo_mouth_full_m, cfg.photo_mouth_gone_m, d_gap)))
    return share.astype(np.float32)


# The mouth interior (teeth, cavity) is bound to the skull and the jaw, not to the lips: built behind the rest
# template's inner lip contour, it kept the rest mouth's width when the lips widened. In a broad smile the lips' corners
# then moved ~8 mm out over the interior's sides and the teeth ended well inside them; FaceLandmarker put the render's
# mouth corners where the teeth ended (lp_s9_monalisa x sadtalker_WDA_KatieHill_000: the reader's own mouth width on
# the render followed 0.47 of the driver's, its corner lift 0.53; self tpsmm_driving 0.59 / 0.69), and the render read
# a smaller smile than the driver showed. In a real smile more of the dental arch shows as the lips stretch (the
# premolars, the dark buccal corridor beside them); the interior is stretched sideways with the lips' opening instead:
# by the inner corners' spread, within MOUTH_STRETCH_RANGE (the reconstructor undoes the photo's own stretch,
# rest_pose.stretch_points). Only its middle is scaled, MOUTH_STRETCH_SPAN of the rest inner corners' half spread
# each side; beyond, the teeth's ends and the cavity's walls shift as the middle's edge does (`mouth_lateral`).
# Scaled whole, two_children_multiface's walls went out through its cheeks under lp_d0's broad smile (dark marks
# beside the jaw line), and with the span at the corners (1.0) its interior still showed beside the lips' corners
# under sadtalker (test_the_mouth_interior_stays_behind_the_chin: 85 / 183 pixels at frames 12 / 45; 0.7: 38 / 54;
# 0.5: 11 / 0). Widen only: a pucker keeps the rest width (narrowing it too, range (0.6, 1.6), moved the
# reader's gaze_v on lp_d9_woman_turned x lp_d0 0.79 -> -0.23 through its mouth crosstalk; smile14, session 14).
MOUTH_STRETCH_RANGE = (1.0, 1.6)
MOUTH_STRETCH_SPAN = 0.5


def mouth_stretch(verts, disp):
    """[V, 3] rest template and [V, 3] its displacement -> (sx, cx): the sideways scale of the mouth interior (the
    inner lip corners' x spread after / before, within MOUTH_STRETCH_RANGE) and the head-frame x it is scaled about
    (the rest inner corners' middle, metres). (1.0, 0.0) for a template without MediaPipe topology. numpy (floats)
    or torch (0-d tensors, differentiable) like disp."""
    if not lmk.has_mediapipe_topology(verts.shape[0]):
        return 1.0, 0.0
    a, b = lmk.MOUTH_CORNER_R_IN, lmk.MOUTH_CORNER_L_IN
    w0 = verts[b, 0] - verts[a, 0]
    w1 = w0 + disp[b, 0] - disp[a, 0]
    lo, hi = MOUTH_STRETCH_RANGE
    if namespace(disp) is np:
        return float(np.clip(float(w1) / max(float(w0), 1e-9), lo, hi)), float(0.5 * (verts[a, 0] + verts[b, 0]))
    return (w1 / w0.clip(1e-9)).clip(lo, hi), 0.5 * (verts[a, 0] + verts[b, 0])


def mouth_lateral(verts, x):
    """[V, 3] rest template, [M] mouth-interior x at rest (head frame, m) -> [M] the part of each point's offset
    from the rest inner lip corners' middle that `mouth_stretch`'s scale applies to: the offset clipped to
    MOUTH_STRETCH_SPAN of half the corners' spread (the middle spreads with the lips; what lies beyond shifts as
    the middle's edge does, not further). numpy. Zeros without MediaPipe topology."""
    x = np.asarray(x, np.float64)
    if not lmk.has_mediapipe_topology(len(verts)):
        return np.zeros_like(x)
    a, b = lmk.MOUTH_CORNER_R_IN, lmk.MOUTH_CORNER_L_IN
    v = np.asarray(verts, np.float64)
    h = MOUTH_STRETCH_SPAN * 0.5 * abs(v[b, 0] - v[a, 0])
    return np.clip(x - 0.5 * (v[a, 0] + v[b, 0]), -h, h)


# The eyeball Gaussians' lag behind the turn (bary[:, 0] of PART_EYE) in this many levels: 0, 1/4 .. 1 of the turn
EYE_LAG_LEVELS = 5


def eye_lag_level(lag: np.ndarray) -> np.ndarray:
    """[M] eyeball Gaussians' lag behind the eyeball's turn (bary[:, 0], share in [0, 1]; values outside are
    clipped) -> [M] int64 level 0 .. EYE_LAG_LEVELS - 1 (level k lags k / (EYE_LAG_LEVELS - 1) of the turn)."""
    return np.rint(np.clip(np.asarray(lag, np.float64), 0.0, 1.0) * (EYE_LAG_LEVELS - 1)).astype(np.int64)


def eye_lag_gaze(gaze, rest_gaze: np.ndarray, max_rad: float, level: int):
    """The gaze [2, 2] (yaw, pitch) rad per eye (numpy, or None: the rest gaze, returned as None) that lag level
    `level` (eye_lag_level) turns to: the rest gaze plus 1 - level / (EYE_LAG_LEVELS - 1) of the turn from it,
    the turn first kept within max_rad (eyes.gaze_rotations' limit)."""
    if gaze is None or level == 0:
        return gaze
    rest = np.asarray(rest_gaze, np.float64).reshape(2, 2)
    turn = np.clip(np.asarray(gaze, np.float64).reshape(2, 2) - rest, -max_rad, max_rad)
    return rest + (1.0 - level / (EYE_LAG_LEVELS - 1)) * turn


def frame_tables(rig: Rig, verts, disp, r_g, theta, gaze=None, cfg: DriveConfig | None = None):
    """Per-frame transforms for one control -> (delta [K, 3, 6], rot [K, 3, 3], scale [K]).

    verts/disp [V, 3] rest template and its displacement, r_g [3, 3] head rotation, theta jaw angle (rad),
    gaze [2, 2] (yaw, pitch) rad per eye or None (rest gaze). numpy (float64) or torch like `disp`."""
    cfg = cfg or DriveConfig()
    xp = namespace(disp)
    eye = asarray_like(np.eye(3), disp)
    faces = rig.faces if xp is np else xp.as_tensor(rig.faces, device=disp.device)
    nf, lv = len(rig.faces), len(rig.torso_weights)
    parts_d, parts_r, parts_s = [], [], []
    if nf:
        t1 = (verts + disp)[faces]  # [F, 3 vertices, 3] the deformed triangles
        cached = xp is np and verts is rig.verts
        fr0, a0 = (rig.frame_rest, rig.area_rest) if cached else triangle_frames(verts, faces)  # (training: the
        # template may carry gradients)
        fr1, a1 = corner_frames(t1[:, 0], t1[:, 1], t1[:, 2])  # (triangle_frames of verts + disp)
        # [F]: untouched triangles stay exactly rigid (a vertex moved by a zero offset is untouched)
        moved = xp.any(xp.any(disp != 0, axis=-1)[faces], axis=-1)
        r_tri = xp.where(moved[:, None, None], fr1 @ fr0.mT, eye)
        ratio = xp.clip(a1, 1e-20, None) / xp.clip(a0, 1e-20, None)
        grow = rig.grow_by_stretch if rig.grow_by_stretch is not None else np.ones(nf, bool)
        g0_inv = rig.metric_rest_inv if cached and rig.metric_rest_inv is not None else inverse_metrics(verts[faces])
        s_tri = xp.where(moved, bound_growth(g0_inv, t1, ratio, grow), xp.ones_like(a0))
        rot_f = r_g @ r_tri
        # R_g d and (R_g - I) v + R_g d of each vertex, then each triangle's corners [F, 3, 3 vertices] (per vertex:
        # V products where the corners take 3 F; the same products, the same bits)
        fade_v = disp @ r_g.mT  # [V, 3]
        fade = fade_v[faces].mT
        lin = (verts @ (r_g - eye).mT + fade_v)[faces].mT
        parts_d.append(xp.concat([lin, rot_f - eye], -1))
        parts_r.append(rot_f)
        parts_s.append(s_tri)
        # falloff frames: the head pose plus the (weighted, via coef) displacement
        parts_d.append(xp.concat([fade, xp.broadcast_to(r_g - eye, (nf, 3, 3))], -1))
        parts_r.append(xp.broadcast_to(r_g, (nf, 3, 3)))
        parts_s.append(xp.ones_like(a0))
    # head
    zero3 = xp.zeros_like(eye)
    parts_d.append(xp.concat([zero3, r_g - eye], -1)[None])
    parts_r.append(r_g[None])
    parts_s.append(xp.ones_like(eye[0, :1]))
    # torso levels
    axis_g, angle_g = rotation_axis_angle(r_g)  # (once: the torso levels' turns and their rows' spread)
    r_t = scaled_rotations(r_g, rig.torso_weights, (axis_g, angle_g))
    parts_d.append(xp.concat([xp.zeros_like(r_t), r_t - eye], -1))
    parts_r.append(r_t)
    parts_s.append(xp.ones_like(r_t[:, 0, 0]) if rig.torso_spread is None else
                   torso_level_scales(rig, axis_g * angle_g))  # (rotation_vector's product)
    # jaw levels and eyes: p' = R_g (R (p - c) + c) -> constant column R_g c - R_g R c
    w_j = asarray_like(rig.jaw_weights, disp)
    # the synthetic lower levels: at least the lower lip's drop as a turn, all of it from the lip line down
    # (w >= 0.5, `lip_line_jaw_weight`), less above (the cavity's band behind the upper row stretches, not parts)
    floor = interior_jaw_angle(rig, verts, disp, cfg) * xp.clip(w_j / 0.5, 0.0, 1.0)
    turn = xp.where(w_j < 1, xp.maximum(jaw_level_share(w_j, theta, cfg) * theta, floor), theta)
    r_j = r_g @ axis_angle_x(turn)
    piv = asarray_like(rig.jaw_pivot, disp)
    const = (r_g @ piv)[None] - r_j @ piv
    # the interior widens with the lips' opening (before the turn): + (sx - 1) * mouth_lateral along the turned x;
    # the synthetic lower levels' Gaussians that glide (coef[2]: the lower teeth row) go forward with the lower lip
    # (`interior_glide`) along the head's z; the jaw-weight-1 level (the photo's own lower jaw) keeps the chin's turn
    sx, _ = mouth_stretch(verts, disp)
    glide = xp.where((w_j > 0) & (w_j < 1), interior_glide(rig, verts, disp, turn), xp.zeros_like(turn))
    along = (glide[:, None] * r_g[:, 2][None])[..., None]  # [L, 3, 1]: the glide along the head's z
    parts_d.append(xp.concat([const[..., None], (sx - 1.0) * r_j[..., :1], along, r_j - eye], -1))
    parts_r.append(r_j)
    parts_s.append(xp.ones_like(r_j[:, 0, 0]))
    # eyes: (right, left) per lag level the avatar uses (rig.eye_levels, eye_lag_level), each the share 1 - lag of
    # the turn
    # (all levels in one call: 0.24 -> 0.09 ms a frame)
    lagged = None if gaze is None else np.stack([eye_lag_gaze(gaze, rig.rest_gaze, cfg.gaze_max_rad, level)
                                                 for level in rig.eye_levels])  # [len(eye_levels), 2, 2]
    r_e = eyes.gaze_rotations(lagged, rig.rest_gaze, cfg.gaze_max_rad, like=disp)
    r_e = r_e.reshape(-1, 3, 3) if gaze is not None else xp.concat([r_e] * len(rig.eye_levels), 0)
    # [2 len(eye_levels), 3, 3]
    r_eg = r_g @ r_e
    c = asarray_like(np.tile(rig.eye_centres, (len(rig.eye_levels), 1)), disp)
    const = (c @ r_g.mT) - (r_eg @ c[..., None])[..., 0]
    parts_d.append(xp.concat([const[..., None], xp.zeros_like(r_eg[..., :2]), r_eg - eye], -1))
    parts_r.append(r_eg)
    parts_s.append(xp.ones_like(r_eg[:, 0, 0]))
    return xp.concat(parts_d, 0), xp.concat(parts_r, 0), xp.concat(parts_s, 0)


def frame_quats(rig: Rig, rot):
    """[K, 3, 3] frame rotations -> [K, 4] wxyz (the falloff frames all share the head's, converted once)."""
    xp = namespace(rot)
    nf = len(rig.faces)
    if not nf:
        return matrix_to_quat(rot[rig.k_head:])  # head, torso, jaw, eyes
    q = matrix_to_quat(xp.concat([rot[:nf], rot[rig.k_head:]], 0))  # (one call: row by row the same as two)
    return xp.concat([q[:nf], xp.broadcast_to(q[nf:nf + 1], (nf, 4)), q[nf:]], 0)


def apply(frame, coef, delta, quat, scale, means, quats, scales):
    """Posed (means [N, 3], quats [N, 4], scales [N, 3]) from the tables (the formula of the module
    docstring; numpy or torch; drive.Driver runs the same formula as a compiled kernel)."""
    xp = namespace(means)
    k = frame if xp is np else xp.as_tensor(frame, device=means.device)
    return (means + xp.einsum("nij,nj->ni", delta[k], coef), quat_multiply(quat[k], quats),
            scales * scale[k][:, None])


def basis_coefficients(names, blendshape_names, blendshapes, rest=None) -> np.ndarray:
    """[E] weights of an expression basis whose coefficients are `names` [E]: the driving face's blendshapes
    (blendshape_names [B], blendshapes [B], read within ARKit's 0..1, `control.arkit_values`; absent names count 0)
    minus `rest` [E], the same coefficients of
    the face the avatar rests in (None: 0, the blendshapes' own zero, where every exported avatar rests).
    The one rule for the driver (control -> basis weights) and for training (target frame, rest = the source
    frame the avatar was made from), so both weigh the basis in the same frame."""
    index = {n: i for i, n in enumerate(blendshape_names)}
    values = arkit_values(blendshapes)  # (a control's 1.3 weighs the basis as 1, as it drives the rest)
    c = np.array([values[index[n]] if n in index else 0.0 for n in names], np.float64)
    return c if rest is None else c - np.asarray(rest, np.float64).reshape(-1)


def brow_rows(verts) -> np.ndarray:
    """[V, 3] template (head frame, y down) -> indices of the MediaPipe mesh points at or above the brows: those
    higher than every point of both eyes' contours, plus lmk.BROW_R/BROW_L (the rows `brow_gain` scales; the same
    set the tracker's neutral takes as the brows, expression.forehead_points). Empty without MediaPipe topology."""
    v = np.asarray(verts, np.float64)
    if not lmk.has_mediapipe_topology(v.shape[0]):
        return np.zeros(0, np.int64)
    top = float(np.min(v[list(lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L), 1]))
    return np.union1d(np.flatnonzero(v[:lmk.NUM_MESH, 1] < top), np.array(lmk.BROW_R + lmk.BROW_L))


_LIP_COLUMNS = (  # (inner, outer) contour points of each lip, column by column, and the outer's side (y down)
    (np.array(lmk.LIP_UPPER_INNER), np.array(lmk.LIP_UPPER_OUTER), -1.0),
    (np.array(lmk.LIP_LOWER_INNER), np.array(lmk.LIP_LOWER_OUTER), 1.0))


def lip_height_floor(verts: np.ndarray, expression: np.ndarray, share: float) -> np.ndarray:
    """[V >= 468, 3] rest template (head frame, y down, metres), [L >= 468, 3] an expression (the control's offsets,
    metres) -> the expression with each lip column's outer point (landmarks.LIP_UPPER_OUTER / LIP_LOWER_OUTER over
    LIP_UPPER_INNER / LIP_LOWER_INNER) moved out along y so that the column's red-lip height (outer minus inner, on
    the template plus the expression) is at least `share` x its rest height: a lip thinned by the operator's
    millimetres never folds over itself on an avatar whose lips are thinner than the operator's (DriveConfig.
    lip_min_height). Columns at or above the floor, a share <= 0 and templates without MediaPipe topology are
    returned unchanged (the same array when nothing moves). numpy, float64."""
    ex = np.asarray(expression, np.float64)
    if share <= 0 or not lmk.has_mediapipe_topology(verts.shape[0]) or ex.shape[0] < lmk.NUM_MESH:
        return ex
    v = np.asarray(verts, np.float64)
    out = ex
    for inner, outer, side in _LIP_COLUMNS:
        rest = side * (v[outer, 1] - v[inner, 1])  # [9] rest heights (> 0 on a lip the right way up)
        now = rest + side * (ex[outer, 1] - ex[inner, 1])
        lift = np.maximum(share * np.maximum(rest, 0.0) - now, 0.0)  # how far the outer edge goes back out
        if np.any(lift > 0):
            out = out.copy() if out is ex else out
            out[outer, 1] += side * lift
    return out


# ARKit's eyeBlink of each eye, in the order of the lid ratios' eyes (lmk.EYELID_PAIRS_R, then _L: the subject's).
BLINK_BLENDSHAPES = ("eyeBlinkRight", "eyeBlinkLeft")
# The eyeBlink at which a control's lids are as open as the neutral's (lid ratio 1) and shut (lid_closed_ratio),
# linear between: the least-squares fit of the tracker's centre lid ratios to FaceLandmarker v2's eyeBlink on the 4
# ../shared clips' first 78-216 frames (1326 eyes; median ratio 0.98 at eyeBlink 0.1-0.2, 0.79 at 0.3-0.4, 0.41 at
# 0.5-0.6, 0.15 at 0.7-0.8). A linear 1 - eyeBlink map drew the open eyes of such a stream (eyeBlink 0.1-0.3) 8-24 %
# closed.
BLINK_OPEN, BLINK_SHUT = 0.16, 0.70


def control_lid_ratios(control, cfg: DriveConfig | None = None, basis_names=()) -> np.ndarray | None:
    """A FaceControl's lid ratios [14] (float64, lid gap / neutral lid gap, lmk.EYELID_PAIRS_R then _L), as the
    driver takes them: its `eyelid_ratios`, else measured from its landmarks when it has them (`eyelid_ratios`),
    else from its eyeBlinkRight / eyeBlinkLeft blendshapes when it has either (BLINK_BLENDSHAPES; an absent one 0):
    1 (the neutral opening) up to BLINK_OPEN, cfg.lid_closed_ratio (shut) from BLINK_SHUT, linear between (cfg None:
    DriveConfig's), else None (the lids follow the expression alone). `basis_names`: the avatar's expression basis'
    names; an eyeBlink among them drives the lids through that basis, and the blendshapes give no ratios.

    Without the blendshapes' ratios a blendshape-only control (a third-party tracker, a hand-written controls file)
    blinked only on an avatar with an eyeBlink expression basis (never on a reconstructed one), and the idle
    animation's blink (its lid offsets in the expression) counted as open in a blend with a live control's ratios:
    a face back at the blink's peak snapped the lids 0.15 -> 1.0 in one frame (eyes33, s33)."""
    lid = np.asarray(getattr(control, "eyelid_ratios", ()), np.float64).ravel()
    if lid.shape[0] == NUM_LID_PAIRS:
        return lid
    ex, lm = np.asarray(control.expression, np.float64), np.asarray(control.landmarks, np.float64)
    if lm.shape == ex.shape and lm.shape[0] >= lmk.NUM_MESH:
        return eyelid_ratios(lm, ex)
    names = list(control.blendshape_names)
    if not any(n in names for n in BLINK_BLENDSHAPES) or any(n in basis_names for n in BLINK_BLENDSHAPES):
        return None
    closed = (cfg or DriveConfig()).lid_closed_ratio
    blink = [control.blendshape(n) for n in BLINK_BLENDSHAPES]
    return np.repeat(np.interp(blink, [BLINK_OPEN, BLINK_SHUT], [1.0, closed]),
                     [len(lmk.EYELID_PAIRS_R), len(lmk.EYELID_PAIRS_L)])


def control_inputs(control, cfg: DriveConfig, brows=None, verts=None, basis_names=(), rest_gaze=None):
    """A FaceControl -> (expression [L, 3], jaw_open (within ARKit's 0..1: `control.arkit_values`; for a control with
    mouth_open but neither jawOpen nor an expression that moves the chin, `expression.jaw_open_of_mouth_open`, which
    also opens its lips and chin below) or None, mouth_open, gaze [2, 2] or None, lid ratios [14] or None) as the
    rules take them (numpy). The lid ratios: `control_lid_ratios`.
    `brows`: the template's `brow_rows`, whose expression rows are scaled by cfg.brow_gain (lid ratios are
    measured before that). `verts`: the [V, 3] rest template, whose jaw and brows follow the control's jawOpen and
    brow blendshapes where its expression leaves them still (`expression.blendshape_expression`) and whose lips keep
    cfg.lip_min_height of their height (`lip_height_floor`); None: neither applied. `basis_names`: the avatar's
    expression basis' names (`Driver.expr_index`): the blendshapes it drives itself are left out of those fallbacks
    (a learned avatar's jawOpen / brow / eyeBlink shapes moved it twice: test_model's twin). `rest_gaze`: the
    avatar's `Rig.rest_gaze` [2, 2] rad, which eyeLook* blendshapes turn the eyes from (`eyes.control_gaze`)."""
    from gaussian_head_ros.core.expression import (  # (expression imports this module)
        blendshape_expression, jaw_open_of_mouth_open, leaves_still)

    names = list(control.blendshape_names)
    values = np.asarray(control.blendshapes, np.float64)
    ex = np.asarray(control.expression, np.float64)
    if "jawOpen" not in names and control.mouth_open > 0 and leaves_still(ex, [lmk.CHIN]):
        # mouth_open alone: the jaw as the jawOpen it measures (lips, chin, interior); it had turned only the
        # interior, behind lips that stayed closed (an audio-driven sender, the preview's open-mouth view)
        names, values = names + ["jawOpen"], np.append(values, jaw_open_of_mouth_open(control.mouth_open))
    jaw_open = float(arkit_values([values[names.index("jawOpen")]])[0]) if "jawOpen" in names else None
    lid = control_lid_ratios(control, cfg, basis_names)
    if verts is not None:
        own = [i for i, n in enumerate(names) if n not in basis_names]  # not driven by the avatar's basis
        ex = blendshape_expression(verts, ex, [names[i] for i in own], values[own])
    if brows is not None and len(brows) and cfg.brow_gain != 1.0 and ex.shape[0] >= lmk.NUM_MESH:
        ex = ex.copy()
        ex[brows] *= cfg.brow_gain
    if verts is not None:
        ex = lip_height_floor(verts, ex, cfg.lip_min_height)
    return ex, jaw_open, float(control.mouth_open), eyes.control_gaze(control, rest_gaze), lid
