"""The mouth interior (PART_MOUTH): a dark cavity and rows of upper and lower teeth behind the lips.

Everything is placed behind the inner lip contour of the (rest) template, so a closed mouth hides it
and an opening jaw reveals it. Each Gaussian says how much of the jaw's turn it follows (bary[:, 0],
see core.drive): the upper teeth none, the lower teeth and the tongue behind them `lower_teeth_follow` of a
talking jaw's turn (all of a wide one's), the cavity wall a smooth step at the lip line (its back wall none). The
lower teeth row also glides forward with the lower lip as the jaw turns (bary[:, 1], core.deform.interior_glide),
as real lower incisors stay just behind the lower lip, and the tongue behind them with it.
The synthetic teeth are shaded like a mouth, not tiled like a block: they fade into the cavity's dark red towards
the corners (the buccal corridor) and towards the gums, their incisal edges are rounded, follow the smile arc and
are translucent against the cavity, and the lower row lies in the lower lip's shadow. Where the photo itself shows
the mouth open, its pixels are put on the teeth surface and belong to the upper or the lower jaw by which lip they
are nearer, the upper row's lit crowns whole to the upper (`jaw_side`); the synthetic teeth that would sit in front
of or between them are left out, so the photo's own pose still shows the photo. A smile's opening
(`MouthConfig.smile_gap_max_m`) keeps only what stays with the upper jaw: the synthetic lower row and cavity stand
for the rest, so its crowns show once in an opened mouth, over a whole lower row. Lips parted over hidden or shaded
teeth (`MouthConfig.parted_lips_max_m`, `parted_teeth_max`) are the exception: their opening is the photo's
expression, none of its pixels go in the avatar and the synthetic interior stands for them, so a closed bite, a
broad smile or a wide opening shows teeth, at the price of teeth in that gap in the photo's own pose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from gaussian_head_ros.core.avatar import PART_JAW_FLOOR, PART_MOUTH
from gaussian_head_ros.core.deform import axis_angle_x, lip_line_jaw_weight, smoothstep
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.landmarks import EYE_OUTER_L, EYE_OUTER_R, JAW_EDGE, LOWER_LIP_IN, UPPER_LIP_IN
from gaussian_head_ros.core.landmarks import MOUTH_CORNER_L_IN as CORNER_L_IN
from gaussian_head_ros.core.landmarks import MOUTH_CORNER_R_IN as CORNER_R_IN
from gaussian_head_ros.core.reconstruct.builder import GaussianBatch, surface_discs
from gaussian_head_ros.core.colour import LUMA, saturation



@dataclass
class MouthConfig:
    """Geometry (metres, head frame) and look of the mouth interior."""

    teeth_depth_m: float = 0.006  # upper incisors behind the inner lip surface
    teeth_height_m: float = 0.009  # visible height of each row
    teeth_spacing_m: float = 0.0010  # Gaussian spacing on the teeth
    # Their discs' extent up the crowns: this x their extent across (0.7 x teeth_spacing_m). Round opaque discs on
    # the square grid let the dark cavity through midway between four of them (0.99 x exp(-(0.5 / 0.7)^2) = 0.61
    # alpha each): every synthetic row showed a dark dot grid over its crowns wherever it is drawn larger than
    # ~1 px a millimetre (business_person and two_children_multiface under sadtalker_WDA_KatieHill frame 28 and
    # tpsmm_driving frame 20 at 1024 px; lead, session 54). 1.4: what shows of the cavity inside the upper row at
    # 2048 px (90th percentile) 0.0118 -> 0.0031 on business_person, 0.0252 -> 0.0073 on lp_s9_monalisa (1.2:
    # 0.0054 / 0.0132), and no grid by eye, for no more Gaussians. Taller, not wider: the seams run up the crowns,
    # so they stay as sharp; round discs 1.0 x the spacing blurred them (test_the_synthetic_teeth_are_teeth_not_a_
    # band: a seam 0.83 x the teeth's light, bound 0.75), and rows twice as dense (+1.2 k Gaussians) took the
    # detail budget of lp_d9_woman_turned's lips (session 54). Lead, session 55.
    teeth_disc_aspect: float = 1.4
    lower_teeth_behind_m: float = 0.0012  # lower incisors behind the upper ones (overjet)
    overbite_m: float = 0.002  # upper incisors' edges this far below the lip line, in front of the lower ones
    cavity_depth_m: float = 0.018  # dark back wall behind the inner lip surface
    cavity_margin_m: float = 0.012  # the cavity reaches this far beyond the inner lip corners
    cavity_drop_m: float = 0.030  # and this far below the lower lip (the widest jaw opening)
    cavity_spacing_m: float = 0.0022
    # The back of the mouth (the pharynx's wall) stays with the skull: a dark wall this far behind the cavity's, at
    # jaw weight 0, from where the cavity's jaw weight starts to rise (`lip_line_jaw_weight`) down; the cavity's rows
    # of jaw weight 0 < w < 0.5 are left out (it stands in for them). Those rows turn by their levels' shares of the
    # jaw (up to `deform.interior_jaw_angle`'s turn from w = 0.5), rows of one disc size: at a wide opening they
    # fanned apart and the head's inside showed between them (blendshape-only jawOpen 0.6 at the photo's pose, the
    # interior alone: 0.064 / 0.001 / 0.045 / 0.179 of the inner lips' polygon below 0.9 alpha on business_person /
    # two_children / lp_s9_monalisa / lp_d8_man_glasses, now 0.000 on all four; at 0.8 0.148 / 0.219 / 0.099 /
    # 0.206, now 0.000 / 0.124 / 0.000 / 0.000. sadtalker_WDA_KatieHill frame 168 on business_person: a grey band
    # (0.29, 0.25, 0.24), the static part's, 10 px tall under the upper teeth, now the cavity's dark).
    back_wall: bool = True  # False: no back wall, the cavity's rows all kept (the learned model's anchors)
    cavity_back_m: float = 0.004
    # ... its discs this far apart (flat and dark: coarse; each is one the photo layer does not get, max_gaussians:
    # on the cavity's 2.2 mm grid, +470 on business_person, frame 0 of the 4 clips fell 0.003-0.012 dB; at 4.4 mm
    # with the fanning rows left out, +60: 0.001-0.003 dB)
    cavity_back_spacing_m: float = 0.0044
    teeth_rgb: tuple[float, float, float] = (0.80, 0.76, 0.68)  # without a skin colour (x brightness)
    # Teeth from the skin (`skin_teeth_colour`), measured on the ../shared photos that show lit teeth
    # (astronaut_eileen_collins, obama_official, obama_speech, trump_official, sadtalker frame 168): teeth
    # luma 1.19-1.45 x the skin's median luma; the teeth's rgb / luma departs from grey by 0.03-0.72 (median
    # ~0.35) of the skin's rgb / luma.
    teeth_luma_per_skin: float = 1.35
    teeth_max_luma: float = 0.9
    teeth_skin_cast: float = 0.25  # without a white reference (no sclera measured)
    # ... but never brighter than the face's bright skin (this percentile of its luma): lp_s9_monalisa's teeth
    # at 1.35 x its median skin glowed above the whole face.
    teeth_skin_percentile: float = 95.0
    # Their tint is the photo's own white, the sclera's (eyeballs.opening_colours; its rgb / luma is within
    # 0.01-0.06 of the photo's own lit teeth on astronaut_eileen_collins and obama_speech), tilted this much
    # warmer (teeth are a little yellower than the eye's white) and at most `teeth_max_cast` of the skin's
    # departure from grey. The skin's cast alone (0.25) left them blue-white in lp_s9_monalisa's varnish and
    # grey-blue against the lips of lp_d8_man_glasses. At 0.8 monalisa's teeth took its yellow sclera and
    # faded into the face: the reader's jaw on lp_s9_monalisa x sadtalker fell 0.78 -> 0.71 (teeth9,
    # living-face table 60 frames stride 2; at 0.5 within 0.01 on all 40 pairs).
    teeth_warm: tuple[float, float, float] = (1.02, 1.0, 0.92)
    teeth_max_cast: float = 0.5
    gum_rgb: tuple[float, float, float] = (0.55, 0.27, 0.26)
    gum_height_m: float = 0.005  # gum above the upper / below the lower teeth (seen when the lips pull back)
    teeth_shadow: float = 0.3  # darkening of the teeth towards the gums (the lips' shadow) and the back
    # The gap between two teeth: a dark line (the seam's column `_tooth_grid`, teeth_gap_m either side) that
    # darkens by teeth_seam where the teeth touch and opens into a V (teeth_embrasure_m wider either side,
    # teeth_gap_shade dark) at the incisal edge (the embrasure: the cavity seen between two rounded crowns),
    # fading over teeth_gap_edge_m from the edge. At 0.15 with the seam painted on a 1 mm grid blind to where
    # the seams were (a 0.4 mm line, hit or missed), the rows rendered as one even band with a single midline
    # seam (lp_d8, two_children under lp_d0 / sadtalker); dark over the whole height, piano keys.
    teeth_seam: float = 0.18
    teeth_gap_shade: float = 0.6
    teeth_gap_edge_m: float = 0.0025
    teeth_gap_m: float = 0.0004
    teeth_embrasure_m: float = 0.0008
    # The lower row's seams and embrasures darken by this share of the upper row's: its incisors are narrow
    # (5.3-5.9 mm against 8.5 / 6.5), and the upper row's gaps on them drew a dark column over a quarter of each
    # tooth, a row of grey blocks with big seams (teeth21, session 21: tpsmm_driving frame 20 and
    # sadtalker_WDA_KatieHill frame 29 on business_person, lp_s9_monalisa, two_children). Not where the photo shows
    # its own rows in shade (`mouth_interior`'s shaded: sadtalker's frame 0, whose shaded sliver the seams match:
    # thinner there, its frame 0 lost 0.014 dB).
    lower_teeth_seam: float = 0.5
    # each tooth's labial face is convex: darker towards its sides by this much
    tooth_round: float = 0.12
    # each tooth's light by its place from the midline (central / lateral incisor, canine, premolars): the arch
    # turns them away from the light; less up to tooth_jitter (a fixed pattern, left and right not alike)
    tooth_light: tuple[float, ...] = (1.0, 0.93, 0.86, 0.8, 0.75, 0.7)
    tooth_jitter: float = 0.05
    canine_tint: tuple[float, float, float] = (1.0, 0.97, 0.9)
    # The buccal corridor: beyond the canines the rows turn back into the cheeks' shade, so the teeth fade
    # into the cavity's colour from |u| = corner_from (u: -1 .. 1 across the row) to the corners, by
    # corner_shade. Dimmed by 0.5 u^2 only (session 11), both rows ran at full width to the inner lip corners
    # and ended there against the black cavity: a light-grey box in a black frame (business_person x
    # sadtalker frame 27).
    corner_from: float = 0.45
    corner_shade: float = 0.8
    # Each tooth's incisal edge is rounded (its corners this much shorter, mm at the tooth's sides) and the
    # row's edge follows the smile arc (the upper row's edge this much higher at the corners, the lower row's
    # this much lower): one straight edge along the whole row read as a ruler-cut block.
    incisal_round_m: float = 0.0009
    smile_arc_m: float = 0.0015
    # The incisal edge is translucent: its last `incisal_m` take on the cavity behind by `incisal_shade`.
    incisal_m: float = 0.0012
    incisal_shade: float = 0.15
    # The lower row, in the shade of the upper one and the lower lip, takes this share of the light. At 0.85
    # an opening showed one evenly lit slab of both rows (tpsmm_driving on business_person, lp_s9_monalisa);
    # 0.6 (mouth9, living-face table 60 frames, stride 2, same run): sadtalker frame 0 27.80 -> 28.29 dB (its
    # parted lips over the shaded rows), self PSNR lp_d0 26.92 -> 26.94; darkening the upper row towards its
    # gum as well (teeth_shadow 0.6) cost lp_d0 0.06 dB.
    lower_teeth_light: float = 0.6
    # ... and darkens from its edge down (the lower lip's and the upper row's shadow) by this much at its gum
    # (linearly; the upper row by teeth_shadow, quadratically): lit evenly like the upper one, an opening
    # showed a grey slab of lower teeth as tall as the upper row (business_person x sadtalker frame 27).
    lower_teeth_shadow: float = 0.6
    # ... where the photo's own parted lips show its rows in that shade (sadtalker's frame 0: a shaded sliver); a
    # photo that shows no teeth of its own (closed lips) or its own lit bite gets a lower row lit this much, its
    # shadow falling towards the gum quadratically like the upper row's, the crown lit (teeth21, session 21: lit
    # 0.6 and linear, the lower row of tpsmm_driving's 13-14 mm openings and sadtalker's laugh read as grey blocks
    # where the operator shows white teeth; 0.75 for every photo cost sadtalker's own frame 0 0.16 dB; 0.72 and
    # 0.85 read lighter still but test_the_lower_teeth_sit_in_the_shade, a talking opening, read 0.86 / 0.90 on
    # two_children, its bound 0.82; 0.62: 0.818: that measure held the lower lip's inside, alike by eye at 4x.
    # By the rows themselves (teeth22, session 22: the lower row's light at most 0.9 x the upper row's where each
    # shows) 0.75 reads 0.79 / 0.87 on business_person / two_children, and since deform.interior_jaw_angle takes
    # the row down with the lip, only its crown shows at tpsmm's openings.) 0.75 -> 0.8 (session 41): the rendered
    # rows' median luma, lower / upper, at the clips' widest frames (lp_d0 65, lp_d18 138, sadtalker 27 / 168) on
    # business_person, two_children, lp_d8_man_glasses, lp_s9_monalisa 0.70-0.83 (median 0.78) -> 0.78-0.87
    # (0.83); the operators' real rows read 0.73-1.0 (median 0.98; the lower row grey beside them at 0.75).
    lower_teeth_lit: float = 0.8
    # The rows of a photo that shows none of its own in shade (`mouth_interior`'s shaded=False: closed lips, its own
    # lit bite) are lit like teeth at a smile: crowns this tall (both rows; an upper central incisor's crown is
    # 10.5-11 mm), the seams' dark this share of teeth_seam, the embrasure's V fading over this length from the
    # edge, each tooth's sides this much darker (tooth_round) and the upper row this much darker at its gum
    # (teeth_shadow). With the shaded look (9 mm, 0.18, 2.5 mm, 0.12, 0.3) lp_d0's closed-bite smiles (frames
    # 48 / 50) showed a grey upper row like dentures beside the operator's white teeth: dark seams over the whole
    # crown (canonical face, upper row, 10 px/mm: 0.58-0.74 of the teeth's light 2 mm above the edge, 0.68-0.81
    # 3.5 mm up; lit: 0.78-0.86, 0.88-0.95), and the upper lip, raised above a 9 mm crown, showed its gum as a dark
    # band over the teeth (9 mm up 0.52 x the crown's light 2 mm up; lit 0.91) (business_person, two_children,
    # lp_d8; teeth23, session 23, 4-5x crops).
    # Sadtalker's frame 0 (lips parted over shaded rows) keeps the shaded look: its photo shows it.
    lit_teeth_height_m: float = 0.011
    lit_teeth_seam: float = 0.08
    lit_gap_edge_m: float = 0.001
    lit_tooth_round: float = 0.05
    lit_teeth_shadow: float = 0.15
    # ... and the lower row darker at its gum by this much (quadratically; the shaded look: lower_teeth_shadow,
    # linearly). At 0.6 (lower_teeth_shadow) a wide opening, which shows the lower crowns down towards their gum
    # (lp_d18 frame 138), showed them greyer than at talking openings: the rendered rows' median luma, lower /
    # upper, 0.70 / 0.74 / 0.72 on business_person / two_children / lp_d8_man_glasses against 0.77-0.83 at
    # sadtalker_WDA_KatieHill frames 27 / 168; at 0.25 (with lower_teeth_lit 0.75) 0.74 / 0.76 / 0.75.
    lit_lower_teeth_shadow: float = 0.25
    # the lower row's jaw weight: its share of a talking jaw's turn (all of a wide one's: deform.jaw_level_share)
    lower_teeth_follow: float = 0.55
    # seams from the midline (mm): upper central / lateral incisor, canine, premolars; lower the same
    upper_teeth_mm: tuple[float, ...] = (0.0, 8.5, 15.0, 22.5, 29.5, 36.5)
    lower_teeth_mm: tuple[float, ...] = (0.0, 5.3, 11.2, 18.1, 25.1, 32.1)
    cavity_rgb: tuple[float, float, float] = (0.16, 0.05, 0.05)
    # The photo's open mouth: its pixels go on the teeth surface and the synthetic rows stay out of its teeth; none
    # go in the avatar (the synthetic interior stands for them) for a photo whose lips are parted at most this much
    # (inner lips at the midline): sadtalker / tpsmm
    # frame 0 8.6 / 8.7 mm, trump 9.7, astronaut 10.3; a wider opening (obama_official 13.4, obama_speech 21.3,
    # lp_d9 43.7 mm) is the jaw's: its gap stays the photo's (teeth in front of it cost lp_d9 9 dB of its own
    # photo back, obama_speech 2.5 dB); a wide one's (below) only at its own opening (avatar.PART_PHOTO_MOUTH)
    parted_lips_max_m: float = 0.012
    # ... and whose opening is at most this share bright (> photo_teeth_luma x skin): sadtalker frame 0 0.10, a
    # shaded sliver; tpsmm frame 0 shows its bite, 0.77 (teeth in front of its gap cost it 0.8 dB at frame 0)
    parted_teeth_max: float = 0.4
    # ... and lips parted at most this much meet: the few pixels of their inner contour's polygon are lip, also
    # when pale (lp_d8_man_glasses: 7 px, lips -0.17 mm apart, most brighter than photo_teeth_luma x skin: taken
    # for its bite, they cut ~30 synthetic teeth Gaussians out of the rows, black dots in every opened mouth)
    closed_lips_max_m: float = 0.001
    # A photo's opening whose lips are parted at most this (and not `parted_over_hidden_teeth`) is a smile's: its
    # pixels that turn with the jaw (`jaw_side`) are left out of the avatar (mesh_fit; the ../shared smiles
    # astronaut_eileen_collins / trump_official / obama_official / tpsmm_driving frame 0: 10.1 / 9.6 / 13.0 / 8.5 mm;
    # the open mouths obama_speech / lp_d9_woman_turned 20.7 / 42.6 mm keep theirs, their tongue and lower teeth, as
    # avatar.PART_PHOTO_MOUTH: seen at their own opening only, the synthetic interior at every other)
    smile_gap_max_m: float = 0.016
    photo_teeth_luma: float = 0.75  # a bright (teeth) pixel of the opening: luma above this x the skin's median luma
    # (was 0.42, 0.16, 0.16 lit at 0.55-1.0 from the tip down: between parted rows it read as the black wall)
    tongue_rgb: tuple[float, float, float] = (0.69, 0.46, 0.46)
    # its light: tongue_light[0] + tongue_light[1] at its tip, fading down (behind the teeth, in the mouth's
    # shade; at 0.5 + 0.4 a talking mouth showed a pink band between the rows as lit as the lips). At 0.3 + 0.3
    # with its tip 3 mm above the lower row's edge, sadtalker_WDA_KatieHill's laugh (frames 29-30, the rows
    # parted by deform.interior_jaw_angle) showed no tongue, a dark band between the rows where the operator
    # shows a pink tongue behind the lower teeth; 0.3 + 0.43 with its tip 6 mm up (mouth21, session 21): a red
    # tongue above the lower row's edge, still behind the upper row at rest and at talking openings (0.3 + 0.65
    # read better still at the laugh, but its tip is then as light as the lips: test_the_synthetic_teeth_are_
    # teeth_not_a_band kept the tongue at most 0.35 x the teeth's luma; 0.43: 0.34). Now the profile only: its tip's
    # light is tongue_per_teeth's.
    tongue_light: tuple[float, float] = (0.3, 0.43)
    # ... and its lit tip (light tongue_light[0] + [1]) this x the teeth colour's luma, in tongue_rgb's hue. Where the
    # ../shared operators show the tongue's top (its middle, a 30 px column) it reads 0.59 / 0.65 x the upper teeth's
    # luma at sadtalker_WDA_KatieHill frames 29 / 168, 0.67-0.75 at lp_d18 frame 138, 0.74 at tpsmm_driving frame
    # 20; tongue_rgb is those four tongues' mean colour. The rendered rows show ~0.8 of their colour (shading, seams),
    # so 0.47 reads ~0.67 x the upper row (0.6 read 0.85 at a talking opening). Before (tongue_rgb (0.57, 0.25, 0.31)
    # x the photo's brightness, its tip 0.30 x the teeth colour's) the laugh showed a maroon band between the rows
    # where the operator shows a pink tongue (lead, session 41: /tmp/j41/zT3.png). Raising the tongue as well (its
    # own jaw level, 0.43 of the turn) filled talking openings' cavity with it (dark share 0.20 -> 0.00): it stays
    # low behind the lower row there.
    tongue_per_teeth: float = 0.47
    # A photo whose lips are measured (`mouth_interior`'s lip_rgb) gets a tongue from its own lips' colour instead, in
    # CIE Lab (`tongue_colour`): its lit tip's L* this x the lips', its a* the lips' within tongue_a, its b* this x
    # the lips'. tongue_rgb's mauve at tongue_per_teeth read grey at the widest openings (median a* of the opening's
    # lower half: the drivers' real mouths 21.4-23.1, the nine portraits' avatars 7.6-17.6; look62, session 62). The
    # drivers' tongues (the opening's lower half, HSV saturation > 0.25 and luma > half the lips') over their lips
    # (outer minus inner lip contour), L* / a* / b*: lp_d18 frame 88 35.2 / 23.0 / 8.8 over 47.7 / 27.1 / 11.1,
    # frame 120 42.7 / 24.2 / 12.3 over 50.8 / 25.5 / 12.0, tpsmm_driving frame 87 48.0 / 21.1 / 3.7 over 50.3 / 25.8
    # / 7.2, sadtalker_WDA_KatieHill frame 168 59.4 / 22.2 / 13.4 under lipstick (41.2 / 37.1 / 21.6, left out of the
    # ratios): L* 0.74 / 0.84 / 0.95 (median 0.84), b* 0.79 / 1.02 / 0.51 (median 0.79); a* 21.1-24.2 under lips of
    # 25.5-37.1, whatever the lips' (the portraits' lips: 9.6 lp_s9_monalisa, 15.5 astronaut_eileen_collins to 43.4
    # two_children_multiface; a tongue as pale or as red as those read as no tongue, or as lipstick).
    tongue_lip_lightness: float = 0.84
    tongue_a: tuple[float, float] = (21.0, 24.0)
    tongue_lip_b: float = 0.79
    # ... its light falls off (tongue_light[1]'s share) over this from the tip down. 6 mm lit only the tip a talking
    # opening shows; since the tongue glides forward with the lower row (below) a scream shows its top too, lit as
    # the operator's (lp_d18 frame 138: a pink tongue over the lower half of the opening): 12 mm (lead, session
    # 42; 30 mm read as a flat mauve plate at jawOpen 0.6).
    tongue_lit_m: float = 0.012
    # The tongue's front behind the inner lip surface (behind the lower teeth). It glides forward with the lower lip
    # as the lower row does (mouth.jaw_binding, deform.interior_glide): turned with the row alone it went back behind
    # the back wall at a wide opening (business_person, blendshape-only jawOpen 0.6 / 1.0: 34.5 / 62.9 mm behind
    # the lower inner lip, 20.0 at rest), and lp_d18's scream showed the cavity's dark from the upper teeth to the
    # lower row where the operator shows a pink tongue (lead, session 42). Gliding at 11 mm its tip, turned ~0.7 rad
    # with the row, came through the lower teeth (dark patches on them); at 15 mm it stays behind them: 24.0 / 24.9
    # / 25.5 / 25.1 mm behind the lip at rest / 0.3 / 0.6 / 1.0 (25.9 at 0.3 before: a talking opening shows it as
    # before).
    tongue_depth_m: float = 0.015
    tongue_rise_m: float = 0.006  # its tip above the lip line (the lower teeth's edge), behind the upper teeth at rest
    tongue_dome_m: float = 0.006  # its sides this much lower than the tip
    tongue_width: float = 0.8  # x the inner lip corners' distance
    tongue_spacing_m: float = 0.0015
    # The floor of the mouth: cavity wall, tongue and the lower row's roots and gum below `floor_from_m` under the
    # lower inner lip slope back this many metres per metre of depth below it. Upright (the old wall) they stood
    # 7-18 mm behind the lip surface down to 14-30 mm below it, where a child's or a receding chin's skin is nearer
    # than that: an opened jaw (two_children x sadtalker) showed dark-red tongue patches through the chin.
    floor_slope: float = 1.0
    floor_from_m: float = 0.004
    # The jaw's underside (`mouth_interior`'s floor_rgb): a sheet of skin under the interior, from the jaw's lower
    # edge (lmk.JAW_EDGE) `jaw_floor_lift_m` up and `jaw_floor_inset_m` behind it, back to `jaw_floor_reach_m`
    # beyond the interior's deepest point and as far beside it, turning with the jaw; interior points below it are
    # left out. 3 mm up and 4 mm in it showed below obama_speech's chin in a closed mouth's front view (142 px), at
    # 5 and 8 mm still as a dark flick along business_person's jaw line as sadtalker tilts her head back (frames
    # 45-56): the driven chin's skin follows the template, the sheet the jaw's turn about its hinge. Without it
    # a raised chin showed the cavity and the teeth from below (obama_speech at 25 deg chin up: a maroon patch with
    # white dots left of the chin, seen through the missing underside of the jaw).
    jaw_floor: bool = True  # the reconstructor gives mouth_interior a floor_rgb (False: none)
    jaw_floor_lift_m: float = 0.008
    jaw_floor_inset_m: float = 0.012
    jaw_floor_reach_m: float = 0.008
    # a flat colour: coarse. Each Gaussian it takes is one the photo layer's detail does not get (max_gaussians):
    # at 2.5 mm (~630 on obama_speech) the self pairs' frame 0 fell 0.002-0.008 dB; at 5 mm (~170) 0.0002-0.0016
    jaw_floor_spacing_m: float = 0.005

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise ValueError, naming the field, for a config the interior cannot be built from: seams that do
        not start at 0 and rise (the rows continue past the last one with the last tooth's width: a
        non-rising pair never got there), or a spacing, a length that is divided by or stepped with, or the teeth
        discs' aspect that is not > 0. Checked when made and again by `mouth_interior` (a field set later)."""
        for name in ("upper_teeth_mm", "lower_teeth_mm"):
            b = np.asarray(getattr(self, name), np.float64)
            if b.ndim != 1 or len(b) < 2 or not np.all(np.isfinite(b)) or b[0] != 0.0 or np.any(np.diff(b) <= 0):
                raise ValueError(f"MouthConfig.{name} must be two or more seams (mm from the midline) that start "
                                 f"at 0 and rise, got {getattr(self, name)!r}")
        for name in ("teeth_spacing_m", "cavity_spacing_m", "tongue_spacing_m", "teeth_height_m", "jaw_floor_spacing_m",
                     "teeth_gap_m", "teeth_gap_edge_m", "incisal_m", "lit_teeth_height_m", "lit_gap_edge_m",
                     "cavity_back_spacing_m"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"MouthConfig.{name} must be > 0 (metres), got {v!r}")
        if not (np.isfinite(self.teeth_disc_aspect) and self.teeth_disc_aspect > 0):
            raise ValueError(f"MouthConfig.teeth_disc_aspect must be > 0 (a ratio), got {self.teeth_disc_aspect!r}")


def _lip_depth(v: np.ndarray, loop: np.ndarray):
    """x -> z of the inner lip contour (mean of upper and lower lip at that x), as a function: each contour
    (lmk.LIP_UPPER_INNER, LIP_LOWER_INNER with the inner corners) interpolated along x on its own, then averaged.
    `loop` (the mouth hole's vertices) is not read. Interpolating the whole loop sorted by x zigzagged between the
    two contours' depths where they differ (lp_d9_woman_turned's rest: the upper lip 9.1 mm behind the lower at the
    middle): its teeth and tongue columns stood at depths up to that far apart, the tongue in front of the lower
    crowns in columns (session 45)."""
    v = np.asarray(v, np.float64)
    ends = [lmk.MOUTH_CORNER_R_IN, lmk.MOUTH_CORNER_L_IN]
    curves = []
    for contour in (lmk.LIP_UPPER_INNER, lmk.LIP_LOWER_INNER):
        p = v[list(contour) + ends]
        order = np.argsort(p[:, 0])
        curves.append((p[order, 0], p[order, 2]))
    return lambda x: 0.5 * (np.interp(x, *curves[0]) + np.interp(x, *curves[1]))


def teeth_surface_depth(v: np.ndarray, loop: np.ndarray, cfg: MouthConfig):
    """x -> head-frame z of the front of the upper teeth."""
    lip = _lip_depth(v, loop)
    return lambda x: lip(x) + cfg.teeth_depth_m


def _hit_teeth_surface(origin, dirs, v, loop, cfg, behind_m=0.0):  # behind_m: scalar or [M]
    zf = teeth_surface_depth(v, loop, cfg)
    lam = (zf(np.full(len(dirs), v[UPPER_LIP_IN, 0])) + behind_m - origin[2]) / dirs[:, 2]
    for _ in range(4):  # the surface depth depends on x only: fixed-point on the ray parameter
        x = origin[0] + lam * dirs[:, 0]
        lam = (zf(x) + behind_m - origin[2]) / dirs[:, 2]
    return origin + lam[:, None] * dirs


def place_on_teeth_surface(origin: np.ndarray, dirs: np.ndarray, v: np.ndarray, loop: np.ndarray,
                           cfg: MouthConfig, lower=None, theta: float = 0.0, pivot=None) -> np.ndarray:
    """Rays (head frame: origin [3], dirs [M, 3]) -> [M, 3] points where they meet the teeth of the rest
    template v [V, 3]. Rays marked `lower` [M] bool meet the lower teeth (cfg.lower_teeth_behind_m further back)
    with the jaw turned open by theta radians about
    `pivot` [3] (as drive() turns it). Points that land more than cfg.floor_from_m below the lower inner lip (in
    the jaw's rest frame) go further back along their ray by `_floor_back`, on the floor of the mouth like the
    synthetic cavity: the photo sees them where it saw them, a driven jaw does not bring them through the chin."""
    origin = np.asarray(origin, np.float64)
    dirs = np.asarray(dirs, np.float64)
    y_lo = v[LOWER_LIP_IN, 1]
    out = _hit_teeth_surface(origin, dirs, v, loop, cfg)
    floor = _floor_back(out[:, 1], y_lo, cfg)  # below the lower lip: on the floor of the mouth (`floor_slope`)
    if np.any(floor):
        out = _hit_teeth_surface(origin, dirs, v, loop, cfg, floor)
    if lower is not None and np.any(lower):
        lower = np.asarray(lower, bool)
        r_open = axis_angle_x(np.array([theta]))[0]
        o = r_open.T @ (origin - pivot) + pivot  # the camera seen from the jaw at rest
        d_lo, b_lo = dirs[lower] @ r_open, cfg.lower_teeth_behind_m
        hit = _hit_teeth_surface(o, d_lo, v, loop, cfg, b_lo)
        floor = _floor_back(hit[:, 1], y_lo, cfg)
        if np.any(floor):
            hit = _hit_teeth_surface(o, d_lo, v, loop, cfg, b_lo + floor)
        out[lower] = (hit - pivot) @ r_open.T + pivot
    return out


def _floor_back(y: np.ndarray, y_lower_lip: float, cfg: MouthConfig) -> np.ndarray:
    """[M] head-frame heights (y down) -> [M] metres further back for the floor of the mouth (`floor_slope`)."""
    return cfg.floor_slope * np.maximum(np.asarray(y, np.float64) - (y_lower_lip + cfg.floor_from_m), 0.0)


def jaw_binding(w: np.ndarray, glide: float = 0.0) -> np.ndarray:
    """[M] jaw weights in [0, 1] -> [M, 3] the mouth part's binding row (jaw weight, glide, 1 - jaw weight): glide
    in [0, 1] the share of its level's glide forward with the lower lip it takes (core.deform.interior_glide: 1 the
    lower teeth row and the tongue, 0 the rest)."""
    w = np.clip(np.asarray(w, np.float32), 0, 1)
    return np.stack([w, np.full_like(w, np.clip(glide, 0.0, 1.0)), 1 - w], 1)


# Half an incisor's width in inter-ocular distances (the central incisor ~8.5 mm, MouthConfig.upper_teeth_mm, over
# the outer eye corners' ~90 mm of the template's head frame).
ROW_SMOOTH_IOD = 0.05


def jaw_side(pixels: np.ndarray, landmarks_px: np.ndarray, loop: np.ndarray, teeth=None) -> np.ndarray:
    """[M, 2] (x, y) pixels inside the photo's open mouth -> [M] 1.0 where they turn with the jaw, 0.0 where they
    stay with the upper row: below or above the midline between the two inner lip contours (`loop`, the template's
    mouth hole, in photo pixels `landmarks_px`), or, given which of the pixels are teeth (`teeth` [M] bool,
    `photo_teeth`), below the end of the upper row's lit run: in each column of pixels (x) the run of teeth pixels
    that starts above the midline and reaches down past it without a break is the upper incisors' crown, whole (a
    smile shows the upper row down to the lower lip, its lower teeth hidden: split at the midline, the crown's lower
    half went down with an opening jaw as a second upper row, astronaut_eileen_collins and trump_official at a
    scream). The run's end is taken as the median over half an incisor's width either side (ROW_SMOOTH_IOD: one
    lower tooth that touches the upper row, a gap or a glint does not move it; obama_official's lower incisors
    joined the upper row's run in 3 columns)."""
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
    px = np.asarray(pixels, np.float64)
    x, y = px[:, 0], px[:, 1]
    split = 0.5 * (np.interp(x, xu, yu) + np.interp(x, xl, yl))
    if teeth is not None and len(px):
        smooth_px = int(round(ROW_SMOOTH_IOD * np.linalg.norm(lm[EYE_OUTER_R] - lm[EYE_OUTER_L])))
        split = np.maximum(split, _upper_run_end(x, y, split, np.asarray(teeth, bool), smooth_px))
    return (y > split).astype(np.float32)


def _upper_run_end(x, y, mid, bright, smooth_px: int) -> np.ndarray:
    """[M] pixel centres x, y, the midline at each, which are teeth -> [M] the y (pixel edge) where each column's
    run of teeth from above the midline ends, when it reaches past the midline (else -inf), median-smoothed over
    +-smooth_px columns (`jaw_side`)."""
    col = np.floor(x).astype(np.int64)
    c0 = int(col.min())
    n = int(col.max()) - c0 + 1
    end = np.full(n, -np.inf)
    order = np.lexsort((y, col))
    cs, ys, bs, ms = col[order], y[order], bright[order], mid[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    for k, s0 in enumerate(starts):
        s1 = starts[k + 1] if k + 1 < len(starts) else len(cs)
        yy, bb, mm = ys[s0:s1], bs[s0:s1], ms[s0:s1]
        lit = np.flatnonzero(bb & (yy <= mm))
        if not len(lit):
            continue
        i = lit[0]  # the first teeth pixel above the midline, and down from it while teeth, row by row
        while i + 1 < len(yy) and bb[i + 1] and yy[i + 1] - yy[i] <= 1.5:
            i += 1
        if yy[i] > mm[i]:
            end[cs[s0] - c0] = yy[i] + 0.5
    if smooth_px > 0:  # -inf counts as "no run": most of a window without one keeps its midline; never past the
        # column's own run (its red lip rim or gum below taken for the upper row stayed in an opened mouth as specks)
        pad = np.pad(end, smooth_px, constant_values=-np.inf)
        end = np.minimum(end, np.median(np.lib.stride_tricks.sliding_window_view(pad, 2 * smooth_px + 1), axis=1))
    return end[col - c0]


def _grid(x0, x1, y0, y1, step):
    xs = np.arange(x0, x1 + 1e-9, step)
    ys = np.arange(y0, y1 + 1e-9, step)
    gx, gy = np.meshgrid(xs, ys)
    return gx.ravel(), gy.ravel()


def _tooth_bounds(bounds: np.ndarray, reach: float) -> np.ndarray:
    """Seams from the midline (metres, starting at 0) continued beyond the last given one with the last tooth's
    width until they pass `reach` metres."""
    b = list(np.asarray(bounds, np.float64))
    step = b[-1] - b[-2]
    while b[-1] < reach:
        b.append(b[-1] + step)
    return np.asarray(b)


def _tooth_at(ax: np.ndarray, bounds: np.ndarray):
    """[M] distances from the midline (metres) -> ([M] int the tooth's index from the midline (0 = central
    incisor), [M] -1 .. 1 across that tooth, 0 at its middle)."""
    b = _tooth_bounds(bounds, float(np.max(ax, initial=0.0)) + 1e-6)
    k = np.clip(np.searchsorted(b, ax, side="right"), 1, len(b) - 1)
    across = np.clip((ax - b[k - 1]) / np.maximum(b[k] - b[k - 1], 1e-9), 0, 1) * 2 - 1
    return k - 1, across


def _tooth_width(tooth: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """[M] tooth indices (`_tooth_at`) -> [M] their widths (metres)."""
    b = _tooth_bounds(bounds, 0.0)
    w = np.diff(b)
    return np.where(tooth < len(w), w[np.minimum(tooth, len(w) - 1)], w[-1])


def _tooth_grid(xc: float, half: float, bounds: np.ndarray, y0: float, y1: float, step: float):
    """A teeth row's grid: columns no further apart than `step`, one on every seam between two teeth (the dark
    gap is a column's colour, not a blur between two), within xc +- half; rows from y0 to y1. -> (x [M], y [M])."""
    b = _tooth_bounds(bounds, half)
    cols = [np.zeros(1)]
    for lo, hi in zip(b[:-1], b[1:]):
        n = max(int(np.ceil((hi - lo) / step - 1e-9)), 1)
        cols.append(lo + (hi - lo) * np.arange(1, n + 1) / n)
    ax = np.concatenate(cols)
    ax = ax[ax <= half + 1e-9]
    xs = xc + np.concatenate([-ax[:0:-1], ax])
    ys = np.arange(y0, y1 + 1e-9, step)
    gx, gy = np.meshgrid(xs, ys)
    return gx.ravel(), gy.ravel()


def _tooth_light(tooth: np.ndarray, side: np.ndarray, cfg: MouthConfig) -> np.ndarray:
    """[M] tooth indices from the midline and [M] side (-1 / +1) -> [M] each tooth's own share of the light:
    cfg.tooth_light by index (the arch turns the teeth beyond the incisors away from the light), less a fixed
    small amount per tooth, 0 .. cfg.tooth_jitter (left and right not mirror images): no two alike, none
    brighter than the teeth colour (`skin_teeth_colour`'s bound)."""
    base = np.asarray(cfg.tooth_light, np.float64)
    lit = base[np.minimum(tooth, len(base) - 1)]
    pattern = np.sin(2.39996 * (tooth + 1) + 1.3 * (np.asarray(side) > 0))  # -1 .. 1, fixed
    return lit * (1.0 - cfg.tooth_jitter * 0.5 * (1.0 - pattern))


def skin_teeth_colour(skin_px, sclera_rgb, cfg: MouthConfig) -> np.ndarray:
    """The colour of teeth under the photo's light, for a photo that does not show its teeth.

    skin_px [N, 3] the face's skin pixels (rgb in [0, 1]); sclera_rgb [E, 3] the eyes' measured sclera (the
    photo's own white; eyeballs.eye_colours), or None / empty -> [3] rgb in [0, 1]:
    - luminance: cfg.teeth_luma_per_skin x the skin's median (lit teeth on the ../shared photos: 1.19-1.45 x),
      at most the skin's cfg.teeth_skin_percentile (never brighter than the face's bright skin) and
      cfg.teeth_max_luma;
    - tint (rgb / luma): the brighter eye's sclera x cfg.teeth_warm, its departure from grey at most
      cfg.teeth_max_cast of the skin's (a sclera the landmarks mixed with skin is no whiter than the skin);
      without a sclera, cfg.teeth_skin_cast of the skin's tint."""
    skin = np.clip(np.asarray(skin_px, np.float64).reshape(-1, 3), 1e-3, 1)
    med = np.median(skin, 0)
    luma = float(med @ LUMA)
    skin_tint = med / luma - 1.0
    bright = float(np.percentile(skin @ LUMA, cfg.teeth_skin_percentile))
    target = min(cfg.teeth_luma_per_skin * luma, bright, cfg.teeth_max_luma)
    sc = None if sclera_rgb is None else np.asarray(sclera_rgb, np.float64).reshape(-1, 3)
    if sc is None or not len(sc):
        tint = cfg.teeth_skin_cast * skin_tint
    else:
        white = np.clip(sc[np.argmax(sc @ LUMA)], 1e-3, 1) * np.asarray(cfg.teeth_warm)
        tint = white / float(white @ LUMA) - 1.0
        limit = cfg.teeth_max_cast * np.linalg.norm(skin_tint)
        tint = tint * min(1.0, limit / max(float(np.linalg.norm(tint)), 1e-9))
    rgb = target * (1.0 + tint)
    return np.clip(rgb / max(1.0, float(rgb.max())), 0, 1)  # dimmed, not clipped: clipping whitens the tint


def mouth_interior(v: np.ndarray, loop: np.ndarray, brightness: float, cfg: MouthConfig,
                   teeth_rgb=None, visible=None, shaded: bool = True, floor_rgb=None, lip_rgb=None) -> GaussianBatch:
    """Cavity (its back wall, `MouthConfig.cavity_back_m`, with the skull) + teeth + tongue Gaussians for template
    vertices v [V, 3] and the inner lip loop [L].

    brightness scales the default colours to the photo (1 = a well-lit face); teeth_rgb overrides the
    teeth colour (measured in the photo, or `skin_teeth_colour`); visible(points [M, 3], jaw weights [M]) ->
    [M] bool marks points where the photo shows its own teeth (they are left out of the teeth rows: the
    photo's pixels are the teeth there). Where the photo shows the dark gap of its open mouth the rows stay:
    that gap belongs to the photo's expression, and a closed bite (a broad smile) shows teeth there, not the
    photo's gap as a dark band (the photo's gap pixels lie behind the teeth, see `MouthConfig`). The teeth's
    shading (seams, towards the gums and the corners) fades them towards the cavity's dark red, as the
    mouth's own reflections tint them, not towards black: a darkened off-white turns olive, read as
    grey-green. `shaded`: the photo shows its own rows in shade (its lips parted over shaded teeth,
    `parted_over_hidden_teeth`): the lower row takes cfg.lower_teeth_light, its linear shadow and the upper row's
    seams (the default: as before); else cfg.lower_teeth_lit, a quadratic shadow (cfg.lit_lower_teeth_shadow) and
    cfg.lower_teeth_seam of the seams, and both rows the lit look (cfg.lit_*: taller crowns, thinner seams, lighter
    towards the gum).
    floor_rgb [3] (None: none): the jaw's underside under it all in that colour (`jaw_floor`), the interior's
    points below it left out. lip_rgb [3] (None: not measured): the photo's lips, the tongue's colour (`tongue_colour`).
    Raises ValueError for a config `MouthConfig.validate` refuses."""
    cfg.validate()
    if not shaded:
        cfg = replace(cfg, teeth_height_m=cfg.lit_teeth_height_m, teeth_seam=cfg.lit_teeth_seam,
                      teeth_gap_edge_m=cfg.lit_gap_edge_m, tooth_round=cfg.lit_tooth_round,
                      teeth_shadow=cfg.lit_teeth_shadow, lower_teeth_shadow=cfg.lit_lower_teeth_shadow)
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
            (lip_y, lip_y + tall, cfg.lower_teeth_behind_m, float(cfg.lower_teeth_follow)))
    for y0, y1, dz, jaw in rows:
        edge_y, root_y = (y1, y0) if jaw == 0.0 else (y0, y1)  # incisal edge at the lip line, root at the gum
        b0 = np.asarray(cfg.upper_teeth_mm if jaw == 0.0 else cfg.lower_teeth_mm) * 1e-3
        gx, gy = _tooth_grid(xc, half, b0, y0, max(y1, y0 + s), s)
        u = (gx - xc) / max(half, 1e-6)
        # an arch: the teeth get shorter and further back towards the corners
        keep = np.abs(gy - edge_y) <= np.abs(root_y - edge_y) * (1.0 - 0.35 * u * u) + 1e-9
        # rounded incisal corners and the smile arc: the edge recedes towards the root at each tooth's sides
        # and towards the row's corners
        _, side = _tooth_at(np.abs(gx - xc), b0)
        recede = cfg.incisal_round_m * side ** 6 + cfg.smile_arc_m * u * u
        gy = gy + np.sign(root_y - edge_y) * recede  # the crown moved towards its root, the edge with it
        gx, gy, u, recede = gx[keep], gy[keep], u[keep], recede[keep]
        gz = lip(gx) + cfg.teeth_depth_m + dz + 0.004 * u * u + (_floor_back(gy, y_lo, cfg) if jaw else 0.0)
        pts = np.stack([gx, gy, gz], 1)
        if visible is not None and len(pts):
            shown = visible(pts, np.full(len(pts), jaw))
            pts, recede = pts[~shown], recede[~shown]
            u = (pts[:, 0] - xc) / max(half, 1e-6)
        # each tooth a rounded face (darker towards its sides) parted from the next by a dark gap; widths of the
        # upper / lower incisors, canines and premolars (mm, from the midline; mean adult crown widths)
        tooth, across = _tooth_at(np.abs(pts[:, 0] - xc), b0)  # index from the midline; -1 .. 1 over the tooth
        corner = 1.0 - cfg.corner_shade * smoothstep(cfg.corner_from, 1.0, np.abs(u))  # the buccal corridor
        from_edge = np.abs(pts[:, 1] - edge_y) - recede  # metres from the (rounded, arched) incisal edge
        t = np.clip(from_edge / max(cfg.teeth_height_m, 1e-6), 0, 1)  # 0 at the edge .. 1 at the gum
        # the gap between two teeth: an open V-shaped embrasure at the edge (the cavity behind), a closed
        # contact higher up; the seam is a column of its own (`_tooth_grid`)
        opening = np.exp(-from_edge / cfg.teeth_gap_edge_m)  # 1 at the incisal edge .. 0 towards the gum
        seam_k = ((cfg.teeth_seam + (cfg.teeth_gap_shade - cfg.teeth_seam) * opening)
                  * (1.0 if jaw == 0.0 or shaded else cfg.lower_teeth_seam))
        gap_w = cfg.teeth_gap_m + cfg.teeth_embrasure_m * opening  # the gap's half width
        gap = np.clip(1.0 - (1.0 - np.abs(across)) * 0.5 * _tooth_width(tooth, b0) / gap_w, 0, 1)
        light = _tooth_light(tooth, np.sign(pts[:, 0] - xc), cfg)  # [M] each tooth its own light
        shade = ((1.0 - seam_k * gap) * (1.0 - cfg.tooth_round * across ** 2)
                 * (1.0 - (cfg.teeth_shadow if jaw == 0.0 else cfg.lower_teeth_shadow)
                    * t ** (1.0 if jaw != 0.0 and shaded else 2.0))
                 * (1.0 - cfg.incisal_shade * np.clip(1.0 - from_edge / cfg.incisal_m, 0, 1) ** 2)
                 * corner * light
                 * (1.0 if jaw == 0.0 else cfg.lower_teeth_light if shaded else cfg.lower_teeth_lit))
        tint = np.where((tooth == 2)[:, None], np.asarray(cfg.canine_tint), 1.0)  # the canines a little yellower
        col = shade[:, None] * teeth[None] * tint + (1.0 - shade[:, None]) * np.asarray(cfg.cavity_rgb) * k
        gum = np.clip((from_edge - cfg.teeth_height_m) / 0.001 + 1, 0, 1)[:, None]
        col = (1 - gum) * col + gum * np.asarray(cfg.gum_rgb) * k * corner[:, None]
        nrm = np.tile([0.0, 0.0, -1.0], (len(pts), 1))
        batches.append(surface_discs(pts, nrm, col, np.full(len(pts), 0.7 * s), None, PART_MOUTH,
                                     bary=jaw_binding(np.full(len(pts), jaw), glide=float(jaw > 0)),
                                     along=(0.0, 1.0, 0.0), aspect=cfg.teeth_disc_aspect))
    # The cavity: a dark curved wall behind everything, wider and deeper than any opening.
    def cavity_wall(spacing: float, behind: float = 0.0):
        """The cavity's wall on a grid `spacing` apart, `behind` it (metres): x, y, u (-1..1 across), z."""
        gx, gy = _grid(xl - cfg.cavity_margin_m, xr + cfg.cavity_margin_m, y_up - 0.012, y_lo + cfg.cavity_drop_m,
                       spacing)
        u = (gx - xc) / max(0.5 * (xr - xl) + cfg.cavity_margin_m, 1e-6)
        return gx, gy, u, lip(np.clip(gx, xl, xr)) + cfg.cavity_depth_m + behind + 0.006 * u * u + _floor_back(
            gy, y_lo, cfg)

    s = cfg.cavity_spacing_m
    gx, gy, u, gz = cavity_wall(s)
    pts = np.stack([gx, gy, gz], 1)
    t = np.clip((gy - (lip_y + 0.008)) / 0.015, 0, 1)[:, None]  # the tongue towards the floor of the mouth
    col = (1 - t) * np.asarray(cfg.cavity_rgb) + t * np.asarray(cfg.tongue_rgb)
    col = col * k * (1 - 0.4 * np.abs(u)[:, None])
    w = lip_line_jaw_weight(gy, v)
    keep = (w == 0) | (w >= 0.5) | (not cfg.back_wall)  # the rows that would fan apart are the back wall's
    nrm = np.tile([0.0, 0.0, -1.0], (int(keep.sum()), 1))
    batches.append(surface_discs(pts[keep], nrm, col[keep], np.full(len(nrm), 0.75 * s), None, PART_MOUTH,
                                 bary=jaw_binding(w[keep])))
    # the back wall behind the rows that turn (`cavity_back_m`), in the cavity's dark, staying with the skull
    s = cfg.cavity_back_spacing_m
    gx, gy, u, gz = cavity_wall(s, cfg.cavity_back_m)
    turns = (lip_line_jaw_weight(gy, v) > 0) & cfg.back_wall
    col = np.asarray(cfg.cavity_rgb)[None] * k * (1 - 0.4 * np.abs(u[turns]))[:, None]
    batches.append(surface_discs(np.stack([gx, gy, gz], 1)[turns], np.tile([0.0, 0.0, -1.0], (int(turns.sum()), 1)),
                                 col, np.full(int(turns.sum()), 0.75 * s), None, PART_MOUTH,
                                 bary=jaw_binding(np.zeros(int(turns.sum())))))
    # The tongue: a dome on the floor of the mouth behind the lower teeth, turning and gliding with them (all of the
    # jaw's turn, it sank below the lower row's edge as the jaw opened: a black band between the rows); its tip rises
    # just above the lower row's edge, so a jaw opened beyond the bite shows dark red behind the lower teeth,
    # not the black wall. Lit from the front: its top brighter, lower down and the sides in the mouth's shade.
    s = cfg.tongue_spacing_m
    t_half = cfg.tongue_width * 0.5 * (xr - xl)
    gx, gy = _grid(xc - t_half, xc + t_half, lip_y - cfg.tongue_rise_m, lip_y + cfg.cavity_drop_m, s)
    u = (gx - xc) / max(t_half, 1e-6)
    top = lip_y - cfg.tongue_rise_m + cfg.tongue_dome_m * u * u
    keep = gy >= top
    gx, gy, u, top = gx[keep], gy[keep], u[keep], top[keep]
    gz = lip(np.clip(gx, xl, xr)) + cfg.tongue_depth_m + 0.004 * u * u + _floor_back(gy, y_lo, cfg)
    pts = np.stack([gx, gy, gz], 1)
    # its top catches the light
    light = (cfg.tongue_light[0] + cfg.tongue_light[1] * np.exp(-(gy - top) / cfg.tongue_lit_m)) * (1 - 0.45 * u * u)
    share = light / sum(cfg.tongue_light)  # 1 at the lit tip
    lit = tongue_colour(teeth, lip_rgb, cfg)  # the tip's colour
    col = share[:, None] * lit + (1 - share[:, None]) * np.asarray(cfg.cavity_rgb) * k
    nrm = np.tile([0.0, 0.0, -1.0], (len(pts), 1))
    batches.append(surface_discs(pts, nrm, col, np.full(len(pts), 0.75 * s), None, PART_MOUTH,
                                 bary=jaw_binding(np.full(len(pts), float(cfg.lower_teeth_follow)), glide=1.0)))
    out = GaussianBatch.concat(batches)
    if floor_rgb is None:
        return out
    floor, above = jaw_floor(v, out.means, floor_rgb, cfg)
    return GaussianBatch.concat([out.take(np.flatnonzero(above(out.means))), floor])


def tongue_colour(teeth_rgb, lip_rgb, cfg: MouthConfig) -> np.ndarray:
    """The tongue's lit tip: teeth_rgb [3] (the synthetic rows' colour) and lip_rgb [3] (the photo's lips, rgb in
    [0, 1], or None) -> [3] rgb in [0, 1]. From the lips in CIE Lab (sRGB, D65): L* cfg.tongue_lip_lightness x the
    lips', a* the lips' clipped to cfg.tongue_a (a tongue is as red under pale lips as under lipstick), b*
    cfg.tongue_lip_b x the lips' (the photo's cast kept); without lips, cfg.tongue_rgb's hue at cfg.tongue_per_teeth
    x the teeth's luma."""
    if lip_rgb is None:
        hue = np.asarray(cfg.tongue_rgb, np.float64)
        return hue * (cfg.tongue_per_teeth * float(np.asarray(teeth_rgb, np.float64) @ LUMA) / float(hue @ LUMA))
    lip = np.clip(np.asarray(lip_rgb, np.float32).reshape(1, 1, 3), 0, 1)
    lab = cv2.cvtColor(lip, cv2.COLOR_RGB2Lab)[0, 0].astype(np.float64)
    lab = np.array([lab[0] * cfg.tongue_lip_lightness, np.clip(lab[1], *cfg.tongue_a), lab[2] * cfg.tongue_lip_b])
    rgb = cv2.cvtColor(lab.astype(np.float32).reshape(1, 1, 3), cv2.COLOR_Lab2RGB)[0, 0]
    return np.clip(rgb.astype(np.float64), 0, 1)


def jaw_floor(v: np.ndarray, interior: np.ndarray, rgb, cfg: MouthConfig):
    """The jaw's underside under the mouth interior, for template vertices v [V, 3] (head frame, metres, y down,
    z back) and the interior's points [M, 3]: ([K] Gaussians, a function points [P, 3] -> [P] bool, above it). A
    level sheet (normals down) from the jaw's lower edge (lmk.JAW_EDGE, interpolated in x) cfg.jaw_floor_lift_m up
    and cfg.jaw_floor_inset_m behind it, back to cfg.jaw_floor_reach_m beyond the interior's deepest point, at its
    height in each column, as wide as the interior and cfg.jaw_floor_reach_m either side (within the edge's ends,
    where the jaw line rises to the ears); rgb [3] in [0, 1] (the jaw's skin in shade), jaw weight 1 (it turns with
    the chin; PART_JAW_FLOOR, driven as the interior). A closed mouth seen from under the chin shows this skin, not the
    cavity and the teeth behind the lips."""
    edge = np.asarray(v, np.float64)[list(JAW_EDGE)]
    edge = edge[np.argsort(edge[:, 0])]
    interior = np.asarray(interior, np.float64).reshape(-1, 3)
    deepest_z = float(interior[:, 2].max())
    x0 = max(edge[0, 0], float(interior[:, 0].min()) - cfg.jaw_floor_reach_m)
    x1 = min(edge[-1, 0], float(interior[:, 0].max()) + cfg.jaw_floor_reach_m)
    s = cfg.jaw_floor_spacing_m

    def level(x):  # the sheet's height and front in each column
        return (np.interp(x, edge[:, 0], edge[:, 1]) - cfg.jaw_floor_lift_m,
                np.interp(x, edge[:, 0], edge[:, 2]) + cfg.jaw_floor_inset_m)

    xs = np.arange(x0, x1 + 1e-9, s)
    y, z0 = level(xs)
    z1 = deepest_z + cfg.jaw_floor_reach_m
    cols = [np.stack([np.full(n, x), np.full(n, yy), zf + (z1 - zf) * np.arange(n) / max(n - 1, 1)], 1)
            for x, yy, zf in zip(xs, y, z0) if (n := int(np.ceil((z1 - zf) / s)) + 1) > 1]
    pts = np.concatenate(cols) if cols else np.zeros((0, 3))
    nrm = np.tile([0.0, 1.0, 0.0], (len(pts), 1))
    col = np.tile(np.clip(np.asarray(rgb, np.float64), 0, 1), (len(pts), 1))
    batch = surface_discs(pts, nrm, col, np.full(len(pts), 0.75 * s), None, PART_JAW_FLOOR,
                          bary=jaw_binding(np.ones(len(pts))))

    def above(p):
        p = np.asarray(p, np.float64)
        inside = (p[:, 0] >= x0) & (p[:, 0] <= x1)
        return ~inside | (p[:, 1] <= level(p[:, 0])[0])

    return batch, above


def parted_over_hidden_teeth(photo: np.ndarray, mouth_px: np.ndarray, skin_luma: float, lip_gap_m: float,
                             cfg: MouthConfig) -> bool:
    """Whether the photo's open mouth (`mouth_px` [S, S] bool, photo rgb [S, S, 3] in [0, 1]) is lips parted
    `lip_gap_m` (inner lips at the midline, metres) at most cfg.parted_lips_max_m over teeth it hides or
    shades: at most cfg.parted_teeth_max of the opening brighter than cfg.photo_teeth_luma x `skin_luma`.
    Such a dark gap is the photo's expression, not its bite (`mouth_interior`). Lips that meet (parted at
    most cfg.closed_lips_max_m) show no teeth whatever their sliver's brightness: its pixels are lip."""
    if not mouth_px.any() or lip_gap_m > cfg.parted_lips_max_m:
        return False
    if lip_gap_m <= cfg.closed_lips_max_m:
        return True
    bright = photo[mouth_px] @ LUMA > cfg.photo_teeth_luma * skin_luma
    return float(np.mean(bright)) <= cfg.parted_teeth_max


def photo_teeth(rgb: np.ndarray, skin_luma: float, cfg: MouthConfig) -> np.ndarray:
    """[M, 3] RGB in [0, 1] of the photo's open-mouth pixels -> [M] bool: teeth, lit (luma above
    cfg.photo_teeth_luma x `skin_luma`, the skin's median) and unsaturated (TEETH_MAX_SAT): the inner rims of the
    lips and the gums are as light but red (trump_official's lower lip rim, taken for teeth of the upper row, stayed
    in an opened mouth as red specks)."""
    c = np.asarray(rgb, np.float64).reshape(-1, 3)
    return (c @ LUMA > cfg.photo_teeth_luma * skin_luma) & (saturation(c) < TEETH_MAX_SAT)


TEETH_MAX_SAT = 0.25  # HSV saturation above which a light pixel of the opening is lip or gum, not teeth


def teeth_colour(photo, mouth_px, skin_luma: float = 0.0):
    """The photo's teeth colour when an open mouth shows them (bright, unsaturated pixels), else None. Teeth
    in the lips' shadow (darker than 1.19 x skin_luma, the skin's median luma: lit teeth measured 1.19-1.45 x
    on the ../shared portraits, see MouthConfig; sadtalker's frame 0 shows a shaded sliver at 1.12 x) or with
    a cold cast are not taken: shaded further as
    synthetic teeth they came out grey-blue or grey-green; None then (`skin_teeth_colour` is used)."""
    if mouth_px.sum() < 30:
        return None
    c = photo[mouth_px]
    luma = c @ LUMA
    teeth = (luma > max(0.45, np.percentile(luma, 70))) & (saturation(c) < TEETH_MAX_SAT)  # relative: pink lip rims are
    # not teeth
    if teeth.sum() < 15:
        return None
    rgb = np.median(c[teeth], 0)
    if float(rgb @ LUMA) < 1.19 * skin_luma or rgb[2] > rgb[0]:
        return None
    return rgb
