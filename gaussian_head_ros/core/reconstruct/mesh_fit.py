"""`mesh_fit`: the training-free one-shot reconstructor (CPU, about a second per photo).

1. Framing (framing.py): the largest face, its 478 MediaPipe landmarks and head frame, the 512x512
   source-camera crop. The landmarks, back-projected along their pixel rays, are the template mesh.
2. Surfaces in the source view (source_view.py): the template mesh is z-buffered into face-id / barycentric / depth
   maps (eyes and mouth are holes, filled by small patches); the person (selfie segmentation) becomes a rounded
   proxy by inflating its silhouette, bent to meet the face mesh where they touch.
3. Photo layer (photo_layer.py; the photo's open mouth: mouth_assembly.py): a Gaussian per `head_stride` pixels of
   the head (`torso_stride` on the torso) on that surface, flat discs as large as their pixel footprint, coloured
   from the photo; the rest of the Gaussian budget goes to single pixels where the photo has fine detail (eyes, hair
   strands, teeth). Face pixels are bound to their template triangle (part 1), eye pixels sit just behind the lids,
   open-mouth pixels on the teeth surface (part 3), the rest is head (part 0) or torso (part 2). A thin line across
   the face's outline (a glasses' rim or arm) lies on one surface there and rides the face (border_lines.py).
4. Completion (completion.py, hidden_colours.py, lining.py, mouth.py, mouth_assembly.py, bust_fringe.py; the
   backdrop's colour the outline took in moved to the person's own first, backdrop_rim.py): badly seen
   face triangles from the mirror side, the back of the head and torso from the silhouette's rim colours, a wall
   along the silhouette, a lining in the skin's own colours just behind the photo layer on the head's skin (what
   shows between its discs drawn larger than the crop), and a mouth interior (cavity, teeth, tongue) behind the lips
   of the rest template, opened as far as the photo's jaw.
   Eyelids (eyelids.py, eyes_and_lids.py): the template's lid vertices first move to the photo's visible lid
   margins; the upper lid's strip of pixels rides down with its margin in a blink, its lashes folding into a line
   where the lids meet, over lid skin waiting behind it (the photo with the eyes filled from the skin around, and a
   lash line along its lower edge).
5. Colour refinement (photo_layer.py): render the avatar at rest from the source camera (core.render "cpu") and move
   the photo layer's colours by the residual a few times, undoing the blur of the overlapping splats. What it
   makes up for the discs the photo sees edge-on along the silhouette is seen from the source camera only
   (SH band 1, builder.edge_on_sh): turned, they show the skin's colour, not a light seam. So is the shadow of
   the fold between each upper lid and its brow, which the photo sees at a grazing angle (eyelids.fold_shade):
   turned to the camera by a closing lid or a tilted head, the fold shows the lid's skin, not a grey smear.
6. Lighting (lighting.py): second-order SH from the face skin's shading against the template normals.
7. Rest pose (rest_pose.py): the photo's own mouth expression (core.expression: open jaw, parted lips,
   smile) is taken out of the template, and every Gaussian moved by the exact inverse of what drive()
   does, so the avatar rests with a closed, relaxed mouth and the photo's control gives the photo back.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field, fields

import cv2
import numpy as np

from gaussian_head_ros.core import eyes
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.avatar import (MAX_REST_BROW_SHIFT_M, PART_EYE, PART_FACE, PART_JAW_FLOOR, PART_MOUTH,
                                           PART_PHOTO_MOUTH, PART_STATIC, PART_TORSO, PART_UNDER_CHIN, SourceCamera)
from gaussian_head_ros.core.control import head_rotation_in_view
from gaussian_head_ros.core.reconstruct.base import INTERNAL_ERROR, ReconstructionError, ReconstructionResult, Reconstructor
from gaussian_head_ros.core.reconstruct import backdrop_rim, border_lines, hidden_colours
from gaussian_head_ros.core.reconstruct.builder import GaussianBatch, to_avatar
from gaussian_head_ros.core.reconstruct.completion import Scene, covered_triangles, face_completion
from gaussian_head_ros.core.reconstruct.eyeballs import EyeballConfig, eye_colours
from gaussian_head_ros.core.reconstruct.eyelids import (LidMarginConfig, fold_lashes, lash_band, lid_margins,
                                                         lid_skin_colours, margin_binding, skin_luminance)
from gaussian_head_ros.core.reconstruct.eyes_and_lids import (bind_lid_strips, catchlight_discs, closed_lid_gaussians,
                                                               eye_parts, eyeball_gaussians, fold_shares, lid_light)
from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo
from gaussian_head_ros.core.reconstruct.bust_fringe import with_bust_fringe
from gaussian_head_ros.core.reconstruct.hidden_colours import (hair_and_skin, hidden_gaussians, jaw_in_shade,
                                                               jaw_skin_colour)
from gaussian_head_ros.core.reconstruct.lining import face_lining, unlined_skin
from gaussian_head_ros.core.reconstruct.photo_layer import (detail_margins, edge_matte, photo_view_sh, pixel_discs,
                                                            refine_colours, refine_limits, select_pixels)
from gaussian_head_ros.core.reconstruct.lighting import estimate_lighting, skin_triangle_mask
from gaussian_head_ros.core.deform import DriveConfig
from gaussian_head_ros.core.expression import expression_of, expression_strength, squint_of
from gaussian_head_ros.core.reconstruct.creases import CreaseConfig, photo_without_creases
from gaussian_head_ros.core.reconstruct.lips import (LipConfig, closed_lips, fill_points, lip_band, lip_colour,
                                                      skin_fill_map, without_detail)
from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, jaw_binding, teeth_colour
from gaussian_head_ros.core.reconstruct.mouth_assembly import (behind_rest_face, mouth_gaussians, photo_mouth,
                                                               teeth_colour_info)
from gaussian_head_ros.core.reconstruct.rest_pose import (cover_rest, photo_jaw_angle, to_rest_pose, turn_torso,
                                                          under_chin)
from gaussian_head_ros.core.reconstruct.source_view import body_depth, person_mask, surface_points
from gaussian_head_ros.core.reconstruct.surfaces import (EAR_RIM_REACH, ear_zones, nearest_distance, normals_from_points,
                                                         open_border, pixel_rays, push_pull, rasterize_mesh,
                                                         rows_to_cut_below)
from gaussian_head_ros.core.reconstruct.template import fill_loop, hole_loops, mirror_vertices, template_faces
from gaussian_head_ros.core.settings import check_settings, setting, unknown_names

log = logging.getLogger(__name__)




@dataclass
class MeshFitConfig:
    """How the training-free reconstructor builds an avatar. Lengths in metres, strides in pixels of the
    source camera image (framing.size)."""

    framing: FramingConfig = field(default_factory=FramingConfig)
    mouth: MouthConfig = field(default_factory=MouthConfig)
    eyeball: EyeballConfig = field(default_factory=EyeballConfig)
    lips: LipConfig = field(default_factory=LipConfig)  # the closed lips of a photo with an open mouth (lips.py)
    lid_margin: LidMarginConfig | None = field(default_factory=LidMarginConfig)  # None: MediaPipe's eye contour
    lid_split: float = 0.75  # the upper-lid strip's pixels nearer the margin ride with it (eyelids.margin_binding); 0 = off
    lid_skin_spacing_m: float = 0.0005  # skin a closing upper lid uncovers (eyelids.closed_lid_skin), closed spacing; 0 = none
    # upper-lid pixels darker than this x the lid skin's luminance, connected to the margin, ride with it
    # (eyelids.lash_band)
    lash_level: float = 0.55
    lash_depth: float = 0.12  # ... up to this many eye widths from the margin
    # ... of those, the ones at least this x the lid skin's luminance ride by their own weights, not folded into the
    # lash line (eyelids.margin_binding); 0 = all folded
    lid_light_level: float = 0.85
    # ... and all carried ones no lighter than this x the lid skin's luminance (eyelids.skin_luminance, hue kept), after
    # the refinement: the strip's glints (business_person's left lid: 13 rows, rgb 0.84 0.73 0.70, hidden at rest)
    # rode onto the closed lid as a row of white flecks (session 42: 1.1 still showed them, 1.05 faintly, 0.95 not
    # at all but lp_d0's frame 0 35.030 -> 34.921 dB; 1.05: 35.023); 0 = off
    lid_carried_luma: float = 1.05
    # closed-lid skin colour: the eye openings and lash band grown by this, then filled (eyelids.closed_lid_photo)
    lid_fill_grow_px: int = 2
    lid_fill_below: float = 0.08  # ... and reaching this many eye widths further down (the lower lid's waterline)
    lid_fill_radius_px: float = 4.0  # ... from this far around (OpenCV inpaint radius)
    # ... the hole also taking what is not lid skin up to this many eye widths around it: darker than the second x
    # the lid skin's luminance, or chromaticity farther than the third from the skin's (eyelids.closed_lid_photo:
    # the lash line and crease shadow at the hole's edge streaked self tpsmm's closed left lid orange-brown); 0 = off
    lid_fill_not_skin: tuple[float, float, float] = (0.1, 0.8, 0.12)
    lid_fill_luma: tuple[float, float] = (0.85, 1.25)  # ... its luminance within these x the lid skin's (eyelids.skin_luminance)
    # ... and its chromaticity this share of the way to the lid skin's: the fill of obama_speech's deep lids came from
    # the brow's and crease's shadow, grey, and raised to the skin's luminance it showed as a grey-violet block over
    # his closed lids (session 36). 0 = the fill's own hue
    lid_fill_chroma: float = 1.0
    lash_line_shade: float = 0.3  # a lash line where closed lids meet: this x the lid skin's colour (eyelids.closed_lid_skin); 0 = none
    # ... on closed-lid skin between these weights on the crease side, fading over the third (0.06 with the
    # skin's points at random in each triangle; evenly spaced (eyelids.triangle_lattice) fewer fall in the strip
    # and the closed line at lids 0.2 lightened: test_eyes::test_closed_lids_draw_one_lash_line right eye 0.57)
    lash_line: tuple[float, float, float] = (0.04, 0.16, 0.1)
    lash_fold: float = 1.0  # a closed lid folds its carried lash band to this fraction of its height (eyelids.fold_lashes); 0 = off
    lash_lift_m: float = 0.0003  # ... its dark (lash) Gaussians this much nearer the camera: the line where the lids meet is dark
    lid_refine_limit: float = 0.2  # colour refinement moves the photo's Gaussians on the lids by at most this (rgb); 0 = no limit
    lid_refine_grow_px: int = 2  # ... on the upper lids' strips and rings (eyelids.lid_rings), grown by this
    # ... and in the eye openings by at most this: a look moves the turning iris past the sclera's light that stays
    # (eyeballs.eyeball_parts). The refinement had paid for the iris discs' brown overlap on business_person's white
    # sclera with blue (the sclera's Gaussians 0.05 bluer than the photo at the 90th percentile): the iris turned up,
    # blue flecks stayed on the white. 0.1: 0.04 bluer, still flecked; self lp_d0's eye boxes off its side looks
    # 24.24 -> 24.30 dB (eyes35, session 35)
    eye_refine_limit: float = 0.05
    lid_skin_behind_m: float = 0.0015  # and how far behind the photo's lid it waits at rest (0.3 mm: the crease showed it, -0.8 dB)
    # (below 60k the completion's spacings widen with it: budget_spacings)
    max_gaussians: int = setting(60_000, "Gaussian budget of the whole avatar", range=(5_000, 2_000_000))
    head_stride: int = 2  # photo-layer spacing on the head
    torso_stride: int = 3  # and on the torso
    detail: bool = True  # spend the rest of the budget on single-pixel Gaussians where the photo has detail
    # in-plane std-dev of a head photo-layer Gaussian, as a fraction of its spacing. 0.5 left the stride-2 lattice
    # as a dot grid in the skin wherever the avatar is drawn larger than its crop (the ../shared clips' frames:
    # 1.1-1.4x); 0.55 (torso 0.6, detail_sigma_px 0.25, refine_iters 6; were 0.5, 0.65, 0.35, 4): frame 0 of the
    # four clips +0.1..+0.7 dB, the rest fit at the crop's own scale +0.6..+1.3 dB on the nine ../shared portraits.
    # 0.55 still let ~9 % of the darker layers behind show midway between four discs (isotropic, opacity 0.99, by
    # calculation): a grid of lines over the skin of every driven frame, a corrugation where the mouth region is
    # stretched; 0.6 (~6 %): the forehead's high-pass 2.5 -> 1.7 grey levels (business_person drawn 1.3x larger),
    # frame 0 of the four clips -0.11..+0.10 dB
    sigma_per_stride: float = 0.6
    # ... and on the face's skin the lining leaves out (the ring round the lips below the line through the mouth's
    # corners, the corners, triangles the photo covers badly: `covered_triangles`), lining_lip_margin_m and more off the
    # lips' red: there the mouth interior behind showed through the lattice's gaps as a dot grid below the lower lip on
    # a face display drawing the face ~2x its crop (1024 px, head framing: business_person, astronaut_eileen_collins).
    # The interior seen 1-8 mm below the lips drawn 3x (test_photo_detail): business_person 3.48 -> 1.41 %,
    # trump_official 4.66 -> 2.17, obama_official 5.09 -> 2.26, astronaut 5.88 -> 2.91; frame 0 of the four clips
    # -0.008..-0.023 dB; the living-face table's jaw 0.8399 -> 0.8380 (lp_s9_monalisa x sadtalker 0.815 -> 0.799),
    # brow +0.006, the other groups within 0.005; 0.9 (0.69, 1.13, 1.22, 1.63 %) took lp_d0's frame 0 below 35 dB
    # (34.98) (session 50).
    # None = sigma_per_stride
    unlined_sigma_per_stride: float | None = 0.75
    # ... and on the rigid head (off the face mesh, eyes, mouth and torso: hair, ears) where the photo is textured (the
    # RMS of its luminance less its 1 px blur over texture_window_px^2 at least texture_level: hair strands, not smooth
    # skin; photo_layer.photo_texture), textured_sigma_per_stride: the lattice's discs there blurred the hair's 1 px
    # strands, the sadtalker clip's frame 0 (blond hair, the 512 crop drawn 1.41x) 30.04 dB, its error in the hair
    # (34 % above the brows, 25 % the sides) and in its finest texture (half of it in the pixels of the top 10 % of
    # high-pass). There the texture hides what shows between the sharper discs (~16 % midway between four at 0.5) and
    # no expression stretches them. Frame 0 of lp_d0 / lp_d18 / sadtalker / tpsmm: 35.07 / 40.02 / 30.04 / 38.29 dB ->
    # 35.37 / 40.24 / 30.87 / 38.53 (0.45: 35.45 / 40.31 / 31.00 / 38.59; texture level 0.03: -0.05..-0.15 dB; on
    # the face's textured pixels too (lips, brows, lids, wrinkles) +0.1..+0.2 dB more, but there the expression moves
    # and stretches them, the skin grid's reason above). None = sigma_per_stride (sad60, session 60)
    # ... not within texture_face_gap_px of the face mesh, eyes or mouth: there the window reads the face's own outline
    # (the jaw's edge over the neck), not hair, and the face moves beside those discs (obama_speech's closed chin at
    # rest over the sharper neck: test_reconstruct's grain under it 0.478 -> 0.463 x the chin's, bound 0.47; a 4 px
    # gap: 0.478, frame 0 of the four clips 35.34 / 40.17 / 30.85 / 38.46 dB)
    textured_sigma_per_stride: float | None = 0.5
    texture_level: float = 0.02
    texture_window_px: int = 7
    texture_face_gap_px: int = 4
    torso_sigma_per_stride: float = 0.6  # the same on the torso (wider: no gaps between the sparser discs)
    detail_sigma_px: float = 0.25  # std-dev of the single-pixel detail Gaussians
    detail_lift_m: float = 0.0004  # detail Gaussians sit this much in front of the base layer
    # the colour refinement keeps a detail Gaussian's colour within the photo's range (per channel) over the
    # (2 r + 1)^2 pixels about its own, widened by the margin; r < 0: unlimited. Unlimited, it paid for its 0.25 px
    # disc covering only part of its pixel by going past what the photo shows there, up to black (obama_official's
    # eye region: the darkest 5 % of detail discs luminance 0.002 where the photo's darkest 5 % are 0.14): drawn
    # larger than the photo's crop, those cores read as dark specks around his eyes (eyes20, session 20). Margin
    # 0 cost frame 0 of the four clips 0.2-1.1 dB (34.96 -> 34.19 on lp_d0); 0.05: 0.00-0.47 dB, the specks
    # still gone by eye (half as many dark pixels standing out at 2x as the unlimited refinement, 0 margin a quarter)
    detail_refine_px: int = 1
    detail_refine_margin: float = 0.05
    # ... on the face mesh (its triangles, eye and mouth openings) grown by this many pixels (< 0: everywhere); off
    # it (hair, ears, neck) the margin is detail_refine_margin_off_face (< 0: no limit). The specks were the face's
    # (eyes20); off it the 0.05 held the hair's 1 px strands short of their contrast. Frame 0 of the four clips
    # (lp_d0 / lp_d18 / sadtalker / tpsmm) with 0.05 everywhere 34.73 / 39.55 / 28.95 / 37.85 dB; off the face 0.1:
    # 34.84 / 39.59 / 29.27 / 37.85; no limit: 34.89 / 39.58 / 29.64 / 37.85, but drawn at 2x a 512 crop the hair's
    # pixels standing out of their 5x5 median by > 0.08 went 5-10x the photo's own rate (0.1: ~2x main's), and the
    # visible hair turned 35 deg took so much more high-pass than the hidden side's (obama_official 0.53 -> 0.39 x,
    # 0.1: 0.49; test_a_turned_heads_hidden_side_carries_the_hairs_detail) that the hood showed again (f027, session
    # 27). The 8 px keep the range on the face's rim (grown 0 px: lp_d0 +0.04 dB more; the rim turned not looked at)
    detail_refine_face_grow_px: int = 8
    detail_refine_margin_off_face: float = 0.1
    # a detail Gaussian on a line of the photo (a wrinkle, a lash: builder.line_directions' coherence c) is
    # stretched along it to detail_sigma_px x (1 + detail_line_stretch x c), across it detail_sigma_px: round
    # 0.25 px discs 1 px apart left ~13 % of the layer behind showing midway between neighbours (exp(-2)), so
    # drawn larger than the photo's crop (1.2-2x in the ../shared clips) obama_official's fine wrinkles under
    # his eyes read as rows of dark specks (eyes20, session 20); 0 = round
    detail_line_stretch: float = 1.5
    max_stretch: float = 3.0  # longest side / pixel footprint of a disc on a slanted surface
    opacity: float = 0.99
    refine_iters: int = 6  # colour refinement passes against the renderer (0 = off)
    refine_backend: str = "cpu"  # core.render backend for the refinement
    # The refinement makes up for the photo layer's discs along the silhouette that the photo sees edge-on: they
    # cover little of their pixel in the rest render, and their colour went up to ~0.08 lighter to give the photo's
    # pixel back. Turned and tilted they are seen face-on: a light seam down the far cheek 3-6 px inside the photo's
    # outline (sadtalker f36). Within view_rim_px of the silhouette, the share of a disc's step the refinement makes
    # up ramps from all to none as |cos| between its normal and the photo's line of sight goes view_rim_facing[0] ->
    # [1]; that share is seen from the photo's camera only (`builder.edge_on_sh`: SH band 1 about the normal, none of
    # it once seen squarely, -view_rim_floor x it face-on), so the rest render keeps it. view_rim_px 0: off
    view_rim_px: float = 8.0
    view_rim_facing: tuple[float, float] = (0.3, 0.5)
    view_rim_floor: float = 0.5
    # ... and the refinement moves those edge-on discs within rim_refine_px of the silhouette by at most
    # rim_refine_limit (rgb): a small turn (yaw ~10 deg) still shows ~2/3 of the made-up share while it shows the disc
    # far wider, and the discs next to the 1 px matte band had gone up to +0.17 luma (90th percentile, business_person
    # against her white backdrop): a light line down the cheek 2 px inside the outline under tpsmm_driving (session
    # 36). 0 = no limit
    rim_refine_limit: float = 0.04
    rim_refine_px: float = 3.5
    # ... and the photo layer within jaw_refine_px of the face mesh's outline below the mouth, either side, away from
    # the silhouette (the jaw's edge over the neck: face_outline_band) made lighter than the photo by at most
    # jaw_lighten (rgb; darker freely). The jaw turns under out of the photo's view and the neck lies 5-10 mm behind
    # its edge; the refinement lit the discs either side up towards the photo's lit rim (they cover part of their
    # pixels there), and the display's frontal view (the rest pose takes out the photo's 7 deg head turn) drew them
    # as a crisp light beaded line along business_person's jaw. Ridge along the jaw (luma over the brighter of the
    # pixels 4 px above and below, its max within 10 px of the jaw outline, mean along it; 1024 px display, fov 8,
    # 2 m) at yaw 0 / 20 / -20: 0.031 / 0.018 / 0.048 -> 0.010 / 0.007 / 0.014 (obama_official 0.007 / 0.006 /
    # 0.008 -> 0.004 / 0.003 / 0.005; halved or less on the other portraits but lp_s9_monalisa's painted outline,
    # 0.017 / 0.009 / 0.021 -> 0.014 / 0.005 / 0.018); the rest fit in the head -0.10..-0.17 dB (business_person,
    # astronaut_eileen_collins, lp_d9_woman_turned, obama_speech), frame 0 of the four clips -0.004..-0.020 dB. Held
    # both ways (no refinement there): the ridge 0.006, the rest fit up to -0.9 dB; the band by the face's own
    # outline (its mouth opening's too) cost lp_d9's closed lower lip its clean edge (test_reconstruct's screaming
    # photo) (jaw48, session 48). 0 px: off
    jaw_refine_px: float = 4.0
    jaw_lighten: float = 0.0
    # The photo layer over the fold between each upper lid and its brow, which the photo sees at a grazing angle: its
    # colour less the lid skin's (the closed-lid fill) is seen from the photo's camera only (eyelids.fold_shade, all of
    # it at |cos| <= fold_facing[0], none >= [1]; builder.edge_on_sh with fold_floor): turned to the camera by a
    # closing lid or a tilted head, it shows the lid's skin, not the crease's shadow spread over the lid. (1, 1): off
    fold_facing: tuple[float, float] = (0.6, 0.85)
    fold_floor: float = 0.1
    segmentation_threshold: float = 0.5  # person probability of the selfie segmentation
    matting_radius_px: int = 6  # guided filter snapping the (256 px) segmentation to the photo's edges; 0 = off
    hair_matte: bool = True  # closed-form matting of the mask's edge band: the backdrop seen between strands leaves
    # the mask and the band takes its foreground colours (surfaces.matte_hair; lp_d9's yellow wedge beside her face)
    unlike_rim_px: int = 6  # then the outline's pixels this deep in a backdrop colour unlike every colour of the
    # person's leave the mask (surfaces.peel_unlike_rim; the flag's red strip beside trump_official's ear); 0 = off
    head_centre_z_m: float = 0.01  # skull centre behind the head origin (the cheek contour)
    head_radius_m: float = 0.09  # front rounding of the head's silhouette
    back_radius_m: float = 0.10  # back rounding of the head
    torso_radius_m: float = 0.07  # rounding of the shoulders and chest
    torso_offset_m: float = 0.03  # the torso's middle plane lies this much behind the head's
    neck_blend_m: float = 0.06  # below the chin, the proxy blends from head to torso over this height
    # the neck column (issue 11 item 2): its half-width (an adult neck is about 11-12 cm wide, 12 cm deep), centred
    # under the chin; the nape's back (nape_m) curves round it (its section: neck_section_power) instead of a flat
    # band across nape_half_width_m (turned 20-35 deg the neck went on as wide as the jaw into the shoulder). 0 = the
    # flat band
    neck_half_width_m: float = 0.06
    # ... its section: the nape's back nape_m sqrt(1 - |x / half-width|^power) behind the skull centre. 2 (an ellipse)
    # left see-through specks under obama_speech's chin as sadtalker tilts his head back (holes p95 2.05 -> 4.0 px,
    # the back pulled in near the column's sides); 3, flatter-sided (a neck's section is wider at the back than an
    # ellipse), gives main's holes back and the turned neck's flare 4.6 px (ellipse 4.55, main 19.6; neck25b)
    neck_section_power: float = 3.0
    # ... and below the chin what lies beyond the column (collar, shoulders, hair) is the torso's, at its depth and in
    # its colours, ramping in over the first (metres across, from the column's side) and, where the body there runs on
    # from above the chin's row (long hair), the second (down from that row); where it rises into view below that
    # row (a shoulder: background above it in its column) it is the torso's from its top, that map blurred by
    # neck_rising_blur_m (no step in depth between neighbouring columns). None = off. At the neck's depth
    # obama_official's collar and shoulder beside the column turned 35 deg were a pale slab stepping out from the
    # neck's foot to the shoulder; at the torso's the jacket's shoulder rises behind the neck at its own height.
    # neck25's (0.03, 0.01) everywhere made a step in long hair at the chin's row (lp_d9, lp_s9_monalisa); a 3 cm
    # ramp everywhere left the slab (collar26, session 26)
    neck_beside_torso_m: tuple[float, float] | None = (0.03, 0.03)
    neck_rising_blur_m: float = 0.01
    torso_below_chin_m: float = 0.015  # Gaussians further below the chin belong to the torso (part 2)
    bust_fringe_m: float = 0.0  # the bust goes on this far below the photo's bottom cut, fading out (bust_fringe.py); 0 =
    # off. 0.03 ends trump's, sadtalker's and lp_d0's bust soft in the render node's view, the photo layer as it was;
    # off by default as the reader's gaze_v r over the 40-pair table fell 0.8012 -> 0.7986, under issue 11's line
    # 0.80, from 4 cross pairs whose renders change only below the chin (session 18, reports/bust18_s18.md)
    # Photo pixels this close to the silhouette take colours from further inside (and the matte's opacity, below).
    # 2 px until session 35 (never measured): 1 px gives the photo's own second ring back. Living-face table (60
    # frames): frame 0 lp_d0 / lp_d18 / sadtalker / tpsmm 34.908 / 39.661 / 29.307 / 37.861 -> 35.133 / 39.985 /
    # 29.382 / 38.488 dB, self PSNR +0.00..+0.03, holes max 6 -> 1.1 px, reader lines within their noise (gaze_v
    # 0.816 -> 0.807 from near-still drivers); the nine portraits' own pose on the 2 px masks 34.394 -> 34.441 dB;
    # turned views (yaw +-30, pitch -20 / +15) the same by eye at 3x, a few more grey specks on obama_official's
    # hair outline against its window.
    edge_band_px: float = 1.0
    # Within this many pixels of the outline (not a cut) the backdrop's colour the mask took in moves to the
    # person's own colour from further in (backdrop_rim.backdrop_share, the backdrop looked for within
    # backdrop_reach_px) in what a turned view sees: the hidden side behind the outline and the photo layer's
    # edge-on discs (their made-up share, seen from the photo's camera only). obama_speech's mask takes in 6-7 px of
    # the flag's red stripe beside his right jaw: a pink-red streak down his turned jaw (flag-red pixels beside it,
    # test_reconstruct, yaw -25 / -15 / -25 chin up 15: 458 / 432 / 392 -> 211 / 279 / 171; the white backdrop under
    # business_person's turned ear, yaw -40 / -25: 110 / 149 -> 32 / 61 pale pixels; rim57, session 57). ~1 s a
    # photo here. 0 = off
    backdrop_rim_px: float = 8.0
    backdrop_reach_px: int = 40
    # ... and beside the ears (surfaces.ear_zones to EAR_RIM_REACH) the outline's pixels move by backdrop_share's w
    # to the person's own colour in every view, the photo's own view too (their pixels leave the head PSNR's mask).
    # The photo layer's edge-on discs give the backdrop's share to the photo's camera as a band-1 colour
    # (builder.edge_on_sh) that fades only linearly as the disc turns: turned 10-30 deg 40-70 % of it showed, a
    # dotted line of the flag's red down trump_official's ear (ear61). On, his flag-red mixed pixels by the ear at
    # yaw -30 / -25 / -20 / -15 / -10: 6 / 10 / 17 / 23 / 34 -> 2 / 3 / 3 / 1 / 1
    # (test_a_turned_ears_rim_can_show_no_flag_red_mixed_into_it). Off by default: the photo's own view loses the
    # backdrop's mix along every ear's outline, and the self clips' frame 0 fell lp_d0 / lp_d18 / tpsmm 35.355 /
    # 40.168 / 38.461 -> 35.177 / 39.886 / 38.216 dB (their ears against a green screen and walls); moving only the
    # edge-on discs, refined to it, 34.374 / 38.987 (ear62)
    own_ear_rim: bool = False
    own_backdrop_rim: bool = True  # the backdrop itself within backdrop_rim_px of the head's side (a strip of a colour
    # the person has nowhere near) takes the person's own colour in every view (backdrop_rim.backdrop_kept;
    # source_view.person_mask): the photo's own view and the rest pose showed it too
    # ... the lips and the open mouth grown this far (pixels; LIP_OUTER's polygon) are not counted as the person's
    # colours near the outline: the open mouth's red 33 px from obama_speech's flag stripe (chromaticity 0.01-0.04
    # from it) kept the stripe above his jaw's corner untold: flag-red px at rest 98 / 69 / 64 growing it 0 / 3 / 6 px
    # (107 with the mouth counted; turned yaw -25 / -15 / -25 chin up 15: 54 / 87 / 61 -> 18 / 40 / 19 at 6 px)
    backdrop_mouth_px: int = 6
    edge_matte: bool = True  # ... and an opacity that gives the photo back over the background (the completion sits inside them)
    face_blend_m: float = 0.03  # the proxy bends to meet the face mesh over this distance
    # A thin line across the face mesh's outline (border_lines.py: narrower than border_line_px pixels, border_line_level
    # lighter or darker than around it; a glasses' rim or arm, a strand of hair): its photo-layer pixels within
    # border_line_reach_m either side of the outline lie on one surface, the groove between the mesh's edge and the head
    # proxy filled under them, and those outside are bound to the face. The groove was 2 cm deep within 3-4 px at
    # lp_d8_man_glasses' temples: turned 30 deg, his lens rims and hinges were drawn twice (glasses61; line pixel pairs
    # across the outline > 2 px apart 28 / 31 -> 12 / 14 of 214). 9 px: the arm and hinge are 3-6 px wide at 512 px;
    # 0.04: his far lens rim stands 0.04-0.08 from the skin and hair beside it; 4 mm (~4.5 px): 6 mm moved more hair
    # beside the faces of the self clips, frame 0 of tpsmm_driving 38.461 -> 38.382 dB (4 mm: 38.438), lp_d8's pairs
    # the same. 0 = off
    border_line_px: int = 9
    border_line_level: float = 0.04
    border_line_reach_m: float = 0.004
    face_spacing_m: float = 0.0018  # spacing of completion Gaussians on badly seen face triangles
    # The lining (completion.photo_lining): discs this far apart on the face's skin triangles (0 = none),
    # lining_off_mesh x as far on the head's skin-coloured pixels off the face mesh (forehead, temples, ears, neck),
    # this far behind the photo layer, in its colours, of std-dev lining_sigma_per_step x the spacing, so what shows
    # between the photo layer's discs is skin, not the hair-coloured back of the head: business_person on a 1080 px
    # panel (3.4 px per mm) showed a grid of dark lines over the skin. The back seen through the skin drawn at 3x
    # 1.8 % -> 0.45 % (test_photo_detail). ~2-3 k Gaussians from the detail's budget: frame 0 of the four self clips
    # -0.06..+0.04 dB; the torso lined too (1.5 k more) cost tpsmm_driving's 0.1 dB and lp_d9_woman_turned's closed
    # lips at rest their lower lip's clean edge (test_reconstruct's screaming photo) (lining47, session 47)
    lining_spacing_m: float = 0.003
    lining_behind_m: float = 0.0015
    lining_sigma_per_step: float = 0.7
    lining_off_mesh: float = 1.5
    # The upper ring of skin round the lips (creases.crease_ring above the line through the mouth's corners: the
    # philtrum and the folds beside it) is lined too (lining_upper_ring), lining_lip_margin_m off the lips, with
    # discs half as far apart (and half as large) within lining_near_lips_m of the lips' red, so they reach close to
    # it, and then no lining disc lies within lining_corner_m of the corners. Unlined, the mouth interior showed
    # through the photo layer there as a dot grid over the upper lip on a display drawing the face larger than its
    # crop (business_person at 1024 px; test_photo_detail's test_the_mouth_does_not_show_through_the_skin_round_the_
    # lips). Not the lower ring: lined, lp_d18's scream (frame 130) showed its discs as a pale rim between the lower
    # teeth and lip (the lower lip stretched thin there lets through whatever lies behind it), from 2 to 6 mm below
    # the lip alike; the finer discs below the corners' line too helped little there (3.46 -> 3.31 %) for ~200
    # Gaussians of the photo's detail, the budget's: with the brows lined as well (lining.face_lining),
    # lp_d9_woman_turned's closed lower lip went from a smear share of 0.09 to 0.18 (test_reconstruct) (session 49).
    lining_near_lips_m: float = 0.008
    lining_upper_ring: bool = True
    lining_lip_margin_m: float = 0.002
    lining_corner_m: float = 0.003
    # the face completion's made-up points (the far cheek up to the template's edge at the ear) move to the colour of
    # the nearest Gaussian of the hidden side as that lies from the first to the second behind the front, within the
    # reach's first (all) to second (none) metres of it, and within the border's first (all) to second (none) metres of
    # the template's outer edge (completion.toward_side): the completion carried the face's light on to the template's
    # edge while the side behind darkens with depth, and a turned view showed the far cheek as a lit mask with its own
    # outline against a dark head (obama_speech yaw -30: luminance 0.53 beside 0.20 3 px apart; the far face edge's
    # step over the side beside it, median per row, chin level / up 20: 2.18 / 2.13 on main, 1.47 / 1.37 now). Over the
    # whole completed cheek (no border), from 4 mm to 3 cm: 1.30 / 1.26, but business_person's completed cheek beside
    # her photo's turned 35 deg was 27 % darker than 0.9 x that cheek (main 4 %, test bound 10 %) and obama_speech's
    # rim-lit far cheek at yaw -35 red 0.541 (main 0.643, bound 0.55); border (0.01, 0.025): 12 %, (0.008, 0.022) and
    # depth to 2 cm: 8 %, red 0.589. None = off (the avatar as before)
    face_meets_side_m: tuple[float, float] | None = (0.004, 0.02)
    face_side_reach_m: tuple[float, float] = (0.005, 0.015)
    face_side_border_m: tuple[float, float] | None = (0.008, 0.022)
    back_spacing_m: float = 0.005  # spacing on the hidden back of the head
    torso_back_spacing_m: float = 0.009  # and of the torso
    wall_step_m: float = 0.003  # spacing of the wall joining front and back along the silhouette
    wall_rim_m: float = 0.004  # the wall shows the rim's colours this deep, the blurred side colours from twice that
    side_far_from_m: float = 0.02  # the side behind the silhouette turns to the hair's (or shaded skin's) colour this far back
    # the back's reach behind the skull centre at the chin's row (the nape; back_radius_m above the nose base, and again
    # at the shoulders); 0 = off
    nape_m: float = 0.05
    nape_half_width_m: tuple[float, float] = (0.05, 0.08)  # ... across the neck: this far either side of the chin, fading out by the second
    # a photo whose head is turned from its camera (yaw, degrees) by the first (not at all) to the second (fully) has its
    # far half's hidden back as deep as its near half's mirror image along the rays through the person, and that side
    # in the near half's colours at its own light (completion.mirrored_back, mirrored_colours): turned to show that
    # side, obama_speech (13.5 deg) showed a flat wall where the far ear and skull are. A frontal photo keeps its proxy
    # (the nine portraits but obama_speech and lp_s9_monalisa, 18.2, are within 8.1 deg; the clips' first frames 2.9);
    # None = off
    far_side_turn_deg: tuple[float, float] | None = (9.0, 12.0)
    ear_far_from: float = 0.4  # behind a short-haired head's ear the side turns to the hair at this x side_far_from_m
    side_dark: float = 0.5  # below the hair the hidden side is the face's skin darkened by this fraction (turned from the light)
    side_shade: float = 0.3  # and darkens by this fraction towards its back (a side turned from the light; 0 = flat)
    # beside the jaw and the neck, where the rim there is skin (a fit of the jaw's skin colour, scaled, leaves a
    # squared rgb residual below the first, none above the second) the hidden side is the photo's jaw skin at the
    # rim's brightness (side_shade darkening it towards the back); below the chin elsewhere the rim's own (clothing)
    # (hidden_colours.neck_colours); None = the rim's and the head's colours as before
    neck_skin_residual: tuple[float, float] | None = (0.004, 0.015)
    # ... and that skin side, going round the jaw and the neck away from the light, darkens further from this far behind
    # the front to 1 - neck_far_dark x its colour there: what a turned view sees of it beyond the jaw is its back half
    # (the front hidden by the cheek)
    neck_far_from_m: float = 0.03
    # ... reached at the back of each wall column, linearly (SideLook.far_to_back; the columns are 5-8 cm deep beside
    # business_person's jaw and neck), not 2 cm after neck_far_from_m at 0.2 (150456f): turned 25-40 deg a view sees
    # that side from ~3.5 cm back to its back, and past 5 cm (side_shade's end too) it was one flat level, a pale slab
    # from the jaw to the collar (turn55; per row the side's luminance 3-8 px in from its outline over that at its
    # middle 0.99-1.00 at yaw 25 / 40, chin level / up 20). 0.4 keeps the middle's level (0.53 x her cheek) and
    # shades the outline to 0.81-0.86 x it; 0.5 darkens the middle a little (0.50) and the outline to 0.76-0.82 x it.
    # neck_far_to_back 0: the old 2 cm ramp (far_ramp_m)
    neck_far_dark: float = 0.5
    neck_far_to_back: float = 1.0
    # ... and where that side's outline faces down (the jaw's underside beyond the neck), this share of the way to its
    # far colour, ramping in over ~2 cm behind the front (SideLook.underside; facing 0.2 (none) .. 0.8 (all) of its
    # outward direction's downward component). A raised chin turned 25-40 deg showed under business_person's jaw the
    # side near its front colour, a light patch lighter than the neck below it (test_reconstruct's box under the jaw
    # over the neck's below it, chin up 20: 1.33 / 1.26 at yaw 40 / 25), where a jaw's underside lies in its shadow
    # (neck56). At yaw 40: 0.5: 1.12, 0.7: 1.03, 0.9: 0.95 (yaw 25: 0.90), 1: 0.90, by eye as 0.9, but its shadow then
    # counts as that test file's grey band beside the turned jaw (pixels below 0.45 x her cheek more than 10 px inside
    # the outline, yaw 25 chin up 20: 184 on b8052f5, 321 at 0.9, 394 at 1; bound 331). 0 = off
    neck_underside: float = 0.9
    # beside the face oval (x its half-width at the ears) and below the nose base the hidden side is the body's (the
    # rim's colours), not the head's
    shoulder_reach: tuple[float, float] = (1.1, 1.4)
    side_texture_reach: float = 1.0  # the side takes the photo's detail from this x its depth further inside (0 = flat)
    side_texture_blur_px: float = 3.0  # ... the detail being the photo less its blur by this much
    # ... and deeper than the second, back and forth between these (metres inside the silhouette; None: on inward)
    side_texture_fold_m: tuple[float, float] | None = (0.004, 0.012)
    # ... times this, from the hair (pixels not far nearer the skin's colour than the hair's): the wall's discs (sigma
    # 2.1 mm, every 3 mm) keep about 0.4 of the detail in a turned view (obama_official at yaw 35: high-pass std
    # 0.017 behind the hair, 0.043 on it; 0.022 with 2, 0.026 taking the ear's too, whose rims then showed as ribs)
    side_texture_gain: float = 2.0
    back_blur_px: float = 6.0  # the hidden back's colours are the rim's, blurred this much (no streaks)
    seed: int = 0  # for the jittered completion samples (the result is deterministic)
    remove_expression: bool = True  # the avatar rests with the photo's mouth expression removed (core.expression)
    closed_lips: bool = True  # ... and its stretched or unfolded mouth region re-textured as closed lips and skin (lips.py)
    # ... and each bound skin disc there covering at least this share of what the photo's own covers, carried by its
    # triangle's photo -> rest map (rest_pose.cover_rest; 0 = off): a smiling photo's rest skin round the mouth
    # corners had a fan of radial gaps (astronaut_eileen_collins); at most rest_cover_most x the rest pose's own size
    # along any direction (where the photo folds its triangles: `cover_rest`). 0.7 (skin24, session 24): by eye at
    # 2-3x as 0.8 (astronaut, trump at rest and under tpsmm); frame 0 of the self clips -0.0016 dB at most (0.8:
    # -0.008), astronaut x sadtalker jaw 0.807 (0.8: 0.797, under the 0.80 line)
    rest_cover: float = 0.7
    rest_cover_most: float = 1.5
    # ... and the creases that expression folded into the skin taken out of the rest colours, given back by the driver
    # as a wrinkle map faded in with the operator's expression (creases.py; None = kept in the colours)
    creases: CreaseConfig | None = field(default_factory=CreaseConfig)
    # skin the rest pose's higher chin uncovers: this far behind the photo's chin (in front of the cavity)
    under_chin_behind_m: float = 0.004
    under_chin_band_px: tuple[int, int] = (3, 10)  # its colour: the neck this many pixels below the photo's face
    under_chin_sigma_per_stride: float = 0.65  # its discs' std-dev per head stride (wide: the jaw opens over them)
    # ... and the photo's own fine detail where it lies (the photo less its blur by under_chin_detail_blur_px, each
    # channel clipped to +-under_chin_detail; 0 = off): the neck's smooth fill alone drew a flat brown plate with
    # straight sides under obama_speech's closed chin, the whole time an open-mouth photo's avatar rests (lead,
    # session 42: /tmp/j42/uc1_obs.png). The clip keeps the photo's chin outline there a faint trace: +-0.08 reads as
    # his stubbled skin, +-0.04 as the plate with some grain.
    under_chin_detail: float = 0.08
    under_chin_detail_blur_px: float = 2.0


# Presets: name -> overrides of MeshFitConfig.
PRESETS = {
    "fast": dict(max_gaussians=30_000, torso_stride=4, refine_iters=2),  # its completion widened (budget_spacings)
    "default": dict(),
    "dense": dict(max_gaussians=120_000, head_stride=1, torso_stride=2, refine_iters=5),
}


# MeshFitConfig's fields that hold configs of their own: not options (`--option eyeball=3` or `creases=None` ended in an
# AttributeError traceback inside the build)
NESTED = {f.name for f in fields(MeshFitConfig) if f.default_factory is not dataclasses.MISSING
          and dataclasses.is_dataclass(f.default_factory())}


def make_config(preset: str = "default", **options) -> MeshFitConfig:
    """A MeshFitConfig from a preset plus overrides; FramingConfig fields (max_pixels, min_face_px,
    max_yaw_deg, ...) are accepted at top level too. Raises ValueError for unknown names or bad values."""
    if preset not in PRESETS:
        raise ValueError(f"unknown mesh_fit preset {preset!r}; choose one of {', '.join(PRESETS)}")
    top = {f.name for f in fields(MeshFitConfig)} - NESTED
    framing_names = {f.name for f in fields(FramingConfig)}
    unknown = set(options) - top - framing_names
    if unknown:
        raise ValueError(unknown_names("mesh_fit options", unknown, top | framing_names))
    options = dict(options)
    for f in (*fields(MeshFitConfig), *fields(FramingConfig)):  # a whole float for an integer option is that integer
        value = options.get(f.name)  # (`--option max_gaussians=5e3` reached numpy's argpartition as 5000.0 and
        if isinstance(f.default, int) and not isinstance(f.default, bool) and isinstance(value, float):  # crashed)
            if not value.is_integer():
                raise ValueError(f"{f.name} must be an integer, got {value:g}")
            options[f.name] = int(value)
    merged = {**PRESETS[preset], **options}
    framing = FramingConfig(**{k: v for k, v in merged.items() if k in framing_names})
    cfg = MeshFitConfig(framing=framing, **{k: v for k, v in merged.items() if k in top})
    check_settings(cfg)
    check_settings(cfg.framing)
    if not (1 <= cfg.head_stride <= 8 and 1 <= cfg.torso_stride <= 8):
        raise ValueError("head_stride and torso_stride must be 1..8 pixels")
    if not 0 <= cfg.refine_iters <= 20:
        raise ValueError(f"refine_iters must be 0..20, got {cfg.refine_iters}")
    if not (cfg.border_line_reach_m >= 0 and 3 <= cfg.border_line_px <= 64 and cfg.border_line_level >= 0):
        raise ValueError(f"border_line_reach_m must be >= 0 (0: off), border_line_px 3..64 pixels and "
                         f"border_line_level >= 0, got {cfg.border_line_reach_m}, {cfg.border_line_px}, "
                         f"{cfg.border_line_level}")
    lo, hi = cfg.view_rim_facing
    if not (0 <= lo <= hi < 1) or cfg.view_rim_px < 0 or not 0 <= cfg.view_rim_floor <= 2:
        raise ValueError(f"view_rim_facing must be 0 <= lo <= hi < 1, view_rim_px >= 0, view_rim_floor 0..2; got "
                         f"{cfg.view_rim_facing}, {cfg.view_rim_px}, {cfg.view_rim_floor}")
    if (not 0 <= cfg.lid_fill_chroma <= 1 or min(cfg.rim_refine_limit, cfg.rim_refine_px, cfg.jaw_refine_px,
                                                  cfg.jaw_lighten) < 0):
        raise ValueError(f"lid_fill_chroma must be 0..1, rim_refine_limit, rim_refine_px, jaw_refine_px and "
                         f"jaw_lighten >= 0; got {cfg.lid_fill_chroma}, {cfg.rim_refine_limit}, "
                         f"{cfg.rim_refine_px}, {cfg.jaw_refine_px}, {cfg.jaw_lighten}")
    lo, hi = cfg.fold_facing
    if not (0 <= lo <= hi <= 1) or not 0 <= cfg.fold_floor <= 2:
        raise ValueError(f"fold_facing must be 0 <= lo <= hi <= 1, fold_floor 0..2; got {cfg.fold_facing}, "
                         f"{cfg.fold_floor}")
    if (cfg.lining_spacing_m < 0 or not cfg.lining_behind_m > 0 or not cfg.lining_sigma_per_step > 0
            or not cfg.lining_off_mesh > 0):
        raise ValueError(f"lining_spacing_m must be >= 0, lining_behind_m, lining_sigma_per_step and lining_off_mesh "
                         f"> 0, got {cfg.lining_spacing_m}, {cfg.lining_behind_m}, {cfg.lining_sigma_per_step}, "
                         f"{cfg.lining_off_mesh}")
    if min(cfg.lining_near_lips_m, cfg.lining_lip_margin_m, cfg.lining_corner_m) < 0:
        raise ValueError(f"lining_near_lips_m, lining_lip_margin_m and lining_corner_m must be >= 0, got "
                         f"{cfg.lining_near_lips_m}, {cfg.lining_lip_margin_m}, {cfg.lining_corner_m}")
    if not (0 <= cfg.backdrop_rim_px <= 64 and 1 <= cfg.backdrop_reach_px <= 128 and 0 <= cfg.backdrop_mouth_px <= 64):
        raise ValueError(f"backdrop_rim_px and backdrop_mouth_px must be 0..64 pixels and backdrop_reach_px 1..128 "
                         f"pixels, got {cfg.backdrop_rim_px}, {cfg.backdrop_mouth_px}, {cfg.backdrop_reach_px}")
    if not 0 <= cfg.neck_underside <= 1:
        raise ValueError(f"neck_underside must be 0..1 (a share of the way to the far colour), got {cfg.neck_underside}")
    for name in ("face_meets_side_m", "face_side_reach_m", "face_side_border_m"):
        pair = getattr(cfg, name)
        if pair is not None and not (len(pair) == 2 and 0 <= pair[0] < pair[1] <= 0.2):
            raise ValueError(f"{name} must be two distances 0 <= first < second <= 0.2 m, got {pair}")
    if cfg.unlined_sigma_per_stride is not None and not 0 < cfg.unlined_sigma_per_stride <= 2:
        raise ValueError(f"unlined_sigma_per_stride must be in (0, 2] or None, got {cfg.unlined_sigma_per_stride}")
    if cfg.textured_sigma_per_stride is not None and not 0 < cfg.textured_sigma_per_stride <= 2:
        raise ValueError(f"textured_sigma_per_stride must be in (0, 2] or None, got {cfg.textured_sigma_per_stride}")
    if not (cfg.texture_level >= 0 and 1 <= cfg.texture_window_px <= 64 and 0 <= cfg.texture_face_gap_px <= 64):
        raise ValueError(f"texture_level must be >= 0, texture_window_px 1..64 and texture_face_gap_px 0..64 "
                         f"pixels, got {cfg.texture_level}, {cfg.texture_window_px}, {cfg.texture_face_gap_px}")
    if cfg.framing.size < 64 or cfg.framing.size > 2048:
        raise ValueError(f"size must be 64..2048 pixels, got {cfg.framing.size}")
    return budget_spacings(cfg, given=set(options))


# The Gaussian budget the completion's spacings (below) were chosen at: the default preset's max_gaussians, where
# the completion (hidden back and wall, face completion, lining, closed-lid skin, eyeballs, mouth interior, an
# open-mouth photo's closed-lip fill) takes ~24.5-30 k (41-50 %; business_person, obama_speech, lp_d9_woman_turned)
# and the photo layer the rest. COMPLETION_SHARE: the share it is given of a smaller budget; COMPLETION_MOST: the
# share past which a photo's completion is built again coarser (budget_spacings).
COMPLETION_BUDGET = 60_000
COMPLETION_SHARE = 0.41
COMPLETION_MOST = 0.55
# the completion's spacings (metres), by config: MeshFitConfig's own, its eyeball's, mouth's and lips'
COMPLETION_SPACINGS = {None: ("face_spacing_m", "back_spacing_m", "torso_back_spacing_m",
                              "wall_step_m", "lid_skin_spacing_m"),
                       "eyeball": ("spacing_m",),
                       "mouth": ("teeth_spacing_m", "cavity_spacing_m", "cavity_back_spacing_m", "tongue_spacing_m",
                                 "jaw_floor_spacing_m"),
                       "lips": ("fill_spacing_m",)}


def widen_completion(cfg: MeshFitConfig, scale: float, given=frozenset()) -> MeshFitConfig:
    """cfg with the completion's spacings (COMPLETION_SPACINGS) times `scale` (> 0; its Gaussians go as
    1 / scale^2), but the MeshFitConfig fields named in `given` (set by the user), which are kept."""
    if scale == 1.0:
        return cfg

    def widened(obj, names):
        return dataclasses.replace(obj, **{n: getattr(obj, n) * scale for n in names})

    own = [n for n in COMPLETION_SPACINGS[None] if n not in given]
    return dataclasses.replace(widened(cfg, own), **{k: widened(getattr(cfg, k), names)
                                                     for k, names in COMPLETION_SPACINGS.items() if k is not None})


def budget_spacings(cfg: MeshFitConfig, given=frozenset()) -> MeshFitConfig:
    """cfg with its completion's spacings widened (widen_completion) by sqrt(COMPLETION_BUDGET / max_gaussians) when
    max_gaussians is below COMPLETION_BUDGET, so that the completion keeps about the share of any budget it has of
    the default's and the photo layer (the face the display shows) the rest; at or above it, cfg itself. A photo
    whose completion still takes more than COMPLETION_MOST of the budget (an open mouth's closed-lip fill) is built
    once more with it widened to COMPLETION_SHARE (MeshFitReconstructor.reconstruct).

    Why: the completion was ~24.5 k Gaussians whatever the budget, so a max_gaussians below ~25 k (its range says
    5,000) was refused ('avatar has 24521 Gaussians, above the budget of 15000'), the fast preset (30 k) refused
    lp_d9_woman_turned's open mouth (30,286) and gave business_person's photo layer 5.8 k Gaussians (head stride
    4-5, the rest fit 27.3 dB in the head against the default's 31.0) while the hidden back kept 10.8 k; widened,
    fast gives it 17.5 k (29.6 dB) (budget48, session 48)."""
    if cfg.max_gaussians >= COMPLETION_BUDGET:
        return cfg
    return widen_completion(cfg, float(np.sqrt(COMPLETION_BUDGET / cfg.max_gaussians)), given)


class CompletionOverBudget(Exception):
    """Raised inside MeshFitReconstructor._build when a photo's completion takes more than COMPLETION_MOST of the
    budget: `scale` widens it to COMPLETION_SHARE."""

    def __init__(self, scale: float):
        super().__init__(f"completion over its share of the budget: widen its spacings {scale:.2f}x")
        self.scale = scale


def vertex_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3] area-weighted unit vertex normals (zero for unused vertices)."""
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def at_lid_margins(fp, points_px: np.ndarray):
    """The FramedPhoto with its landmarks moved to points_px [478, 2] (crop pixels; eyelids.lid_margins): the
    moved vertices slide along their pixel rays to the new pixels at their own camera depth."""
    lm = np.asarray(fp.landmarks_px, np.float64).copy()
    moved = np.any(np.abs(points_px - lm[:, :2]) > 1e-6, axis=1)
    if not moved.any():
        return fp
    R, t = np.asarray(fp.viewmat, np.float64)[:3, :3], np.asarray(fp.viewmat, np.float64)[:3, 3]
    K = np.asarray(fp.K, np.float64)
    V = np.asarray(fp.vertices, np.float64).copy()
    z = (V[moved] @ R.T + t)[:, 2]
    uv1 = np.concatenate([points_px[moved], np.ones((int(moved.sum()), 1))], 1)
    cam = (uv1 @ np.linalg.inv(K).T) * z[:, None]
    V[moved] = (cam - t) @ R
    lm[moved, :2] = points_px[moved]
    return dataclasses.replace(fp, landmarks_px=lm.astype(np.float32), vertices=V.astype(np.float32))


class MeshFitReconstructor(Reconstructor):
    """Training-free reconstruction on the CPU. Holds the MediaPipe models; not thread-safe."""

    name = "mesh_fit"
    # the options it takes: a preset, then any MeshFitConfig or FramingConfig field
    OPTIONS = ("preset",) + tuple(sorted(({f.name for f in fields(MeshFitConfig)} - NESTED)
                                         | {f.name for f in fields(FramingConfig)}))

    @classmethod
    def check_options(cls, preset: str = "default", **options) -> None:
        """Raise ValueError for an unknown preset or option, or a value out of its range (what the
        constructor would raise), without loading a model."""
        make_config(preset, **options)

    def __init__(self, preset: str = "default", **options):
        self.preset = preset
        self.cfg = make_config(preset, **options)
        self._given = frozenset(options)  # the options the user set (budget_spacings keeps them)
        self._facemesh = None
        self._segmenter = None

    def close(self) -> None:
        """Free the face mesh and the segmenter (idempotent; they are made again when needed)."""
        for m in (self._facemesh, self._segmenter):
            if m is not None:
                m.close()
        self._facemesh = self._segmenter = None

    def _models(self):
        if self._facemesh is None:
            from gaussian_head_ros.core.facemesh import FaceMesh, PersonSegmenter

            self._facemesh = FaceMesh(static_image_mode=True, max_faces=4)
            self._segmenter = PersonSegmenter()
        return self._facemesh, self._segmenter

    def warm_up(self) -> float:
        """Load the MediaPipe models and the compiled kernels now rather than on the first photo; seconds."""
        t0 = time.perf_counter()
        self._models()
        if self.cfg.hair_matte:  # surfaces.matte_hair imports pymatting only when a photo needs its matte: its numba
            # kernels load on import (2.3-2.6 s at load 15 here, cached; ~40 s of compiling the first time after an
            # install), which the first such photo paid on top of its reconstruction (review24, s24)
            import pymatting  # noqa: F401
        tri = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.1, 1.0]])
        rasterize_mesh(tri, np.array([[0, 1, 2]]), np.array([[100.0, 0, 8], [0, 100.0, 8], [0, 0, 1]]), 16)
        push_pull(np.zeros((2, 2, 1), np.float32), np.ones((2, 2), np.float32))  # its kernels
        normals_from_points(np.zeros((2, 2, 3), np.float32), np.ones((2, 2), bool))
        for dtype in (np.float32, np.float64):  # the photo's pixels (float32 or float64) to float32 palettes
            nearest_distance(np.zeros((1, 3), dtype), np.zeros((1, 3), np.float32))
        if self.cfg.backdrop_rim_px > 0:
            backdrop_rim.warm_up()
        hidden_colours.warm_up()  # the hidden maps' blend kernels
        if self.cfg.refine_iters and self.cfg.refine_backend == "cpu":
            from gaussian_head_ros.core.render import cpu_backend

            cpu_backend.warm_up()
        from gaussian_head_ros.core import drive

        drive.warm_up()
        return time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------------
    def reconstruct(self, rgb: np.ndarray, operator_id: str = "") -> ReconstructionResult:
        """[H, W, 3] uint8 RGB photo -> ReconstructionResult (avatar, warnings, timings). Raises
        ReconstructionError with its status code: a photo framing refuses (no face, too small, turned too far,
        cut off) or a failure inside the build (INTERNAL_ERROR)."""
        cfg = self.cfg
        timings = {}
        t0 = time.perf_counter()
        facemesh, segmenter = self._models()
        fp = frame_photo(rgb, facemesh, cfg.framing)
        timings["framing"] = time.perf_counter() - t0
        try:
            try:
                return self._build(fp, segmenter, operator_id, timings)
            except CompletionOverBudget as over:  # once more with the completion coarser (budget_spacings)
                kept = self.cfg
                self.cfg = widen_completion(kept, over.scale, self._given)
                try:
                    return self._build(fp, segmenter, operator_id, timings, may_widen=False)
                finally:
                    self.cfg = kept
        except ReconstructionError:
            raise
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
            log.exception("mesh_fit failed on a framed photo")
            raise ReconstructionError(INTERNAL_ERROR, f"reconstruction failed: {e}") from e

    def _build(self, fp, segmenter, operator_id: str, timings: dict, may_widen: bool = True) -> ReconstructionResult:
        cfg = self.cfg
        t0 = time.perf_counter()
        rng = np.random.default_rng(cfg.seed)
        S = fp.photo.shape[0]
        K = fp.K.astype(np.float64)
        R, t = fp.viewmat[:3, :3].astype(np.float64), fp.viewmat[:3, 3].astype(np.float64)
        photo = fp.photo.astype(np.float32) / 255.0
        if cfg.lid_margin is not None:  # the eyelid vertices on the photo's visible lid margins (eyelids.py)
            fp = at_lid_margins(fp, lid_margins(photo, fp.landmarks_px, cfg.lid_margin))
        V = fp.vertices.astype(np.float64)  # [478, 3] template vertices, head frame, as the photo shows them
        # The photo's own mouth expression: the avatar rests without it (a closed, relaxed mouth), and a
        # control carrying it (the tracker's, on this photo) gives the photo back; and a broad smile's squint (its
        # lids opened at rest; the tracker's lid ratios, against the operator's own usual opening, drive them).
        expr = (expression_of(fp.fit.canonical) + squint_of(fp.fit.canonical) if cfg.remove_expression
                else np.zeros_like(V))
        V_rest = (V - expr).astype(np.float32).astype(np.float64)  # as the avatar stores it
        drive_cfg = DriveConfig()
        levels = drive_cfg.levels
        theta = photo_jaw_angle(V_rest, V, drive_cfg.jaw_max_rad)
        faces = np.asarray(template_faces(), np.int64)
        nf = len(faces)
        loops = hole_loops()
        eye_r = fill_loop(loops["right_eye"], V)
        eye_tris = np.concatenate([eye_r, fill_loop(loops["left_eye"], V)])
        mouth_tris = fill_loop(loops["mouth"], V)
        all_tris = np.concatenate([faces, eye_tris, mouth_tris]).astype(np.int64)
        fid, bary, zmesh = rasterize_mesh(V @ R.T + t, all_tris, K, S)
        mesh_px = fid >= 0
        face_px = mesh_px & (fid < nf)
        eye_px = (fid >= nf) & (fid < nf + len(eye_tris))
        mouth_px = fid >= nf + len(eye_tris)

        rows = np.arange(S, dtype=np.float64)[:, None] + 0.5
        mpp = t[2] / K[0, 0]  # metres per pixel at the head origin's depth
        person, photo, photo_seen, backdrop_seen, recoloured = person_mask(cfg, fp, photo, segmenter, mesh_px, rows)
        timings["masks"] = time.perf_counter() - t0
        # Depth of the visible surface (camera z) and of the hidden back, over the person.
        t1 = time.perf_counter()
        f = K[0, 0]
        rays = pixel_rays(K, S)
        cut = ~fp.valid  # beyond the photo's border the person continues: no rounding there
        front, back, h_back, wt, turn = body_depth(cfg, fp, person, rays, rows, mpp, K, R, t)
        centre = -R.T @ t
        rest_gaze = eyes.rest_gaze(V, fp.landmarks_px)  # as the driver measures it (drive._photo_points)
        front, back, pts_cam, pts, n_eye = surface_points(cfg, fp, front, back, rays, V, mesh_px, zmesh, eye_px, fid, nf,
                                                          eye_r, centre, rest_gaze, mpp, R, t)
        skin_w = face_px & person & skin_triangle_mask()[np.clip(fid, 0, nf - 1)]
        skin = photo[skin_w]
        brightness = float(np.median(skin @ LUMA)) / 0.55 if len(skin) else 1.0
        teeth_rgb = teeth_colour(photo, mouth_px, 0.55 * brightness)  # lit teeth in the photo's open mouth, or None
        opening = photo_mouth(cfg, photo, fp.landmarks_px, loops, fid, nf, face_px, mouth_px, brightness, V, V_rest,
                              theta, rays, R, t, centre, pts, pts_cam, front)
        mouth_px, face_px, lower_jaw, teeth_px = opening.mouth_px, opening.face_px, opening.lower_jaw, opening.teeth_px
        photo_gap, own_mouth, lip_gap_m = opening.photo_gap, opening.own_mouth, opening.lip_gap_m
        parted, smile, wide = opening.parted, opening.smile, opening.wide
        vn = vertex_normals(V, faces)
        nrm = normals_from_points(pts_cam, person) @ R  # head frame
        nb = np.einsum("pk,pkc->pc", bary[mesh_px], vn[all_tris[fid[mesh_px]]])
        nrm[mesh_px] = nb / np.maximum(np.linalg.norm(nb, axis=1, keepdims=True), 1e-12)
        if eye_px.any():
            nrm[eye_px] = n_eye
        if mouth_px.any():  # teeth and tongue seen through the opening: discs facing the camera cover their pixels
            nrm[mouth_px] = -opening.rays / np.linalg.norm(opening.rays, axis=1, keepdims=True)
        torso_y = float(V[lmk.CHIN, 1] + cfg.torso_below_chin_m)
        torso_px = person & ~mesh_px & (pts[..., 1] > torso_y)
        head_mask = person & ~torso_px
        timings["surfaces"] = time.perf_counter() - t1

        # Completion and mouth interior first: the photo layer gets the rest of the budget.
        t2 = time.perf_counter()
        # The silhouette's outermost pixels mix in the background (white behind business_person's cheek): no
        # colour is taken from them, neither by the photo layer (below) nor by the face completion.
        open_edge = cv2.dilate(open_border(person, cut).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        d_edge = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 3)
        edge = (d_edge < cfg.edge_band_px + 0.5) & ~open_edge
        # The rest colours are taken from the photo without the creases its removed expression folded into the skin
        # (creases.py; the wrinkle map below gives them back with the expression); the masks, the teeth, the eyes
        # and the lighting are measured on the photo itself.
        colours = photo_without_creases(cfg, photo, V, V_rest, faces, fid, bary, face_px, mouth_px, person, edge, mpp)
        w_own = own = ear_w = None  # backdrop_share's (below); ear_w [S, S] how far the ears' outline moved
        if cfg.backdrop_rim_px > 0:
            w_own, own = backdrop_rim.backdrop_share(photo_seen, person, open_edge, fp.valid, cfg.backdrop_rim_px,
                                                     cfg.backdrop_reach_px)
            if cfg.own_ear_rim:  # (MeshFitConfig.own_ear_rim) in every view, not scored
                ear_w = np.where(ear_zones(fp.landmarks_px, S, EAR_RIM_REACH), w_own, 0.0).astype(np.float32)
                colours = (colours + ear_w[..., None] * (own - colours)).astype(colours.dtype)
                recoloured = recoloured | (ear_w > 0)
        scene = Scene(K, R, t, colours, person, np.where(person, front, np.inf), rays, torso_y)
        # the backdrop's colour kept inside the outline (found on the photo as the camera saw it) moves to the
        # person's own in what a turned view sees: the hidden side (with matte_hair's backdrop_seen) and the
        # made-up share of the photo layer's edge-on discs where the rim is the backdrop's own colour (w 1). Not
        # the wall's front nor the lining, which the photo's camera sees, nor the face completion: its discs
        # show through the matte band in the photo's own view (moved too, self lp_d0's frame 0 35.005 -> 34.984
        # dB, lp_d18's 40.034 -> 40.015; only where w is 1, 34.985); nor the skin under the chin (its neck
        # band's colours moved, obama_speech's flag-red pixels below 127 / 218 / 119, but
        # test_the_skin_under_a_closed_chin_has_the_skins_grain 0.475 -> 0.42, under its bound 0.47)
        hidden_seen, layer_seen = backdrop_seen, backdrop_seen
        if w_own is not None:
            hidden_seen = backdrop_seen + w_own[..., None] * (colours - backdrop_seen - own)
            layer_seen = backdrop_seen + (w_own >= 1.0)[..., None] * (colours - backdrop_seen - own)
            if ear_w is not None:  # the ears' outline moved already: what is left there of the matte's backdrop
                moved = (ear_w > 0)[..., None]
                hidden_seen = np.where(moved, (1 - ear_w[..., None]) * backdrop_seen, hidden_seen)
                layer_seen = np.where(moved, (1 - ear_w[..., None]) * backdrop_seen, layer_seen)
        # the matte band's discs are see-through: a triangle the photo shows only there is covered badly, and one it
        # shows partly there is completed where no clean pixel shows it (face_completion's `partly`)
        covered = covered_triangles(V, faces, fid, face_px & person & ~edge, R, t, K)
        mirror = np.arange(len(V))
        mirror[:lmk.NUM_MESH] = mirror_vertices(V[:lmk.NUM_MESH])
        partly = np.bincount(fid[face_px & person & edge], minlength=nf)[:nf] > 0
        hair_skin = hair_and_skin(scene.photo, scene.person, fp.landmarks_px, mesh_px, head_mask, rows)
        at = np.clip(fid, 0, nf - 1)
        lining, lined_px, d_lips = face_lining(cfg, scene, fp.landmarks_px, face_px, mouth_px, mesh_px, head_mask, edge,
                                               covered, at, fid, bary, nrm, colours, hair_skin, mpp)
        hidden, wall_cols = hidden_gaussians(cfg, scene, photo, hidden_seen, fp.landmarks_px, mesh_px, head_mask,
                                             rows, wt, h_back, hair_skin, front, back, open_edge, d_edge, turn, mpp)
        # (after the hidden side: its far cheek goes into that side's colour as deep as it lies, face_meets_side_m)
        face_extra = face_completion(scene, V, faces, covered, mirror, face_px & person & ~edge, vn, cfg.face_spacing_m, rng,
                                     clean=person & ~edge, partly=partly,
                                     side=hidden if cfg.face_meets_side_m is not None else None,
                                     side_depth_m=cfg.face_meets_side_m or (0.0, 0.0), side_reach_m=cfg.face_side_reach_m,
                                     side_border_m=cfg.face_side_border_m)
        eye_cols = eye_colours(photo, eye_px & person, fp.landmarks_px, cfg.eyeball)
        teeth_rgb, teeth_info = teeth_colour_info(cfg, skin, teeth_rgb, eye_cols)
        face_skin = hair_skin[1] if hair_skin is not None else np.median(skin, 0) if len(skin) else None
        jaw_skin = None if face_skin is None else jaw_skin_colour(scene, fp.landmarks_px, mesh_px, rows, face_skin)
        # under it the jaw's underside: its skin in shade, as the back map under the chin (neck_colours). At half its
        # light (side_dark) it stood out as a dark flick at the jaw's corner against the neck's side (neck34)
        floor_rgb = jaw_in_shade(cfg, jaw_skin) if cfg.mouth.jaw_floor and jaw_skin is not None else None
        # the photo's lips (on their triangles, not teeth nor shadow): the tongue's colour (mouth.tongue_colour)
        lip_rgb = lip_colour(photo[face_px & person & lip_band()[at]], 0.55 * brightness)
        teeth_info["lip_rgb"] = None if lip_rgb is None else [round(float(c), 4) for c in lip_rgb]
        mouth = mouth_gaussians(cfg, scene, opening, V, V_rest, loops, theta, levels, brightness, teeth_rgb, floor_rgb,
                                mesh_px, front, lip_rgb)

        eye_iris, eye_sclera, eye_core, lid_band, eye_lag = eye_parts(cfg, photo, eye_px, person, fp.landmarks_px,
                                                                      eye_cols, centre, pts)
        eyeball = eyeball_gaussians(cfg, scene, V, rest_gaze, eye_cols, mpp, eye_px, mesh_px, front, lid_band,
                                    eye_sclera, eye_iris)
        shine, under, shine_batch, si, sj = catchlight_discs(cfg, colours, eye_core, fp.landmarks_px, eye_cols, pts,
                                                             nrm, centre, mpp)
        skin_rgb = lid_skin_colours(photo, fp.landmarks_px)
        # the photo's lash band over each upper lid (eyelids.lash_band): it rolls down with the margin in a blink
        band = lash_band(photo, np.where(fid < nf, fid, -1), fp.landmarks_px, faces, skin_rgb, cfg.lash_level,
                         cfg.lash_depth, lid_band)
        lid_skin, closed_view = closed_lid_gaussians(cfg, scene, photo, eye_px, band, fp.landmarks_px, skin_rgb, V,
                                                     faces, centre)
        neck_skin = None  # the under-chin colours from the neck's skin only (not the collar below it)
        if hair_skin is not None and cfg.neck_skin_residual is not None:
            neck_skin = (jaw_skin, 1 - cfg.side_dark,
                         cfg.neck_skin_residual[1])
        chin = under_chin(scene, V, V_rest, faces, face_px & person, cfg.head_stride, cfg.under_chin_sigma_per_stride,
                          cfg.under_chin_behind_m, cfg.under_chin_band_px, neck_skin,
                          (cfg.under_chin_detail, cfg.under_chin_detail_blur_px))
        timings["completion"] = time.perf_counter() - t2

        # Photo layer within the budget.
        t3 = time.perf_counter()
        lip_fill = (fill_points(V, V_rest, faces, R, rng, cfg.lips) if cfg.remove_expression and cfg.closed_lips
                    else None)  # added at rest (closed_lips, below)
        fixed = (len(face_extra or []) + len(hidden) + len(mouth) + len(eyeball or []) + len(shine_batch or [])
                 + len(chin or [])
                 + len(lid_skin or []) + len(lining or []) + (len(lip_fill[0]) if lip_fill is not None else 0))
        if may_widen and fixed > COMPLETION_MOST * cfg.max_gaussians:
            raise CompletionOverBudget(float(np.sqrt(fixed / (COMPLETION_SHARE * cfg.max_gaussians))))
        if fixed >= cfg.max_gaussians:  # even widened: spacings the user set are kept (budget_spacings)
            finer = sorted(n for n in self._given if n in COMPLETION_SPACINGS[None])
            raise ReconstructionError(INTERNAL_ERROR, f"the avatar's completion alone takes {fixed} Gaussians, the "
                                      f"whole budget of {cfg.max_gaussians}: " + (
                                          f"{', '.join(finer)} set finer than the budget allows (leave "
                                          f"{'them' if len(finer) > 1 else 'it'} to the budget or raise "
                                          "max_gaussians)" if finer else "raise max_gaussians"))
        below_cut = rows_to_cut_below(cut)
        fringe_steps = int(np.ceil(cfg.bust_fringe_m / (cfg.torso_stride * mpp))) if cfg.bust_fringe_m > 0 else 0
        at_cut = torso_px & (below_cut <= cfg.torso_stride)  # the bust's lowest rows, where the photo cut it
        fringe_budget = fringe_steps * (int(at_cut.any(0).sum()) // cfg.torso_stride + 1) if at_cut.any() else 0
        no_detail = (without_detail(V, V_rest, faces, R, mouth_px, cfg.lips) if cfg.remove_expression and cfg.closed_lips
                     else None)
        if shine.any():  # the catchlight discs are the detail discs there
            no_detail = shine if no_detail is None else no_detail | shine
        base, detail = select_pixels(cfg, photo, person, head_mask, torso_px, cfg.max_gaussians - fixed, no_detail,
                                     torso_px & (below_cut == 1))
        layer_colours = np.where(shine[..., None], under, colours)  # the iris under the catchlights
        unlined = unlined_skin(cfg, face_px, at, lined_px, d_lips)  # (MeshFitConfig.unlined_sigma_per_stride)
        # a thin line across the face's outline: its pixels about it on one surface, bound to the face (border_lines)
        on_face, off, on = face_px, np.zeros_like(face_px), np.zeros_like(face_px)
        disc_front, disc_pts, disc_nrm, disc_fid, disc_bary = front, pts, nrm, fid, bary
        if cfg.border_line_reach_m > 0:
            reach = cfg.border_line_reach_m / mpp
            # above the mouth corners' row: below, the jaw's outline over the neck, whose shadow line and collar
            # moved onto the jaw drew obama_speech's turned jaw with a dotted seam (face_outline_band's rows)
            upper = rows < float(np.max(fp.landmarks_px[[lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L], 1]))
            off, on = border_lines.straddling(border_lines.thin_lines(photo, cfg.border_line_px, cfg.border_line_level),
                                              face_px, head_mask & ~mesh_px & ~edge & upper, reach)
            disc_front, disc_pts, disc_nrm, disc_fid, disc_bary, on_face = border_lines.onto_face(
                off, on & upper & ~eye_px & ~mouth_px, face_px, person, reach, front, pts, rays, R, t, nrm, fid, bary)
        photo_layer, pixels = pixel_discs(cfg, base, detail, disc_pts, disc_nrm, disc_front, layer_colours, disc_fid,
                                          disc_bary, on_face, mouth_px, torso_px, eye_core, eye_lag, centre, f, R,
                                          unlined)
        dropped = photo_gap & ~own_mouth
        if dropped.any():  # (above) lips that meet out of the avatar: their sliver's few pixels are lip, not the
            # mouth's inside; put behind the teeth as the photo's gap, they floated in every opened mouth as light and
            # red specks (business_person x tpsmm_driving frames 20 / 41: 3 Gaussians, the lips' seam, 15 mm behind
            # the lip in front of the dark cavity)
            keep = (photo_layer.part != PART_MOUTH) | ~dropped[pixels[0], pixels[1]]
            photo_layer, pixels = photo_layer.take(keep), tuple(x[keep] for x in pixels)
        if shine_batch is not None:  # refined with the photo layer, as its detail discs (their size): unrefined and
            # 0.6 px wide they cost self lp_d0's rest render 0.05 dB in the head, refined 0.6 / 0.4 / 0.25 px (the
            # renderer's 0.3 px^2 low-pass makes 0.25 px 0.6 px on screen) 32.024 (main) -> 31.984 / 32.018 / 32.029
            # dB, business_person 28.062 -> 28.043 / 28.067 / 28.074
            photo_layer = GaussianBatch.concat([photo_layer, shine_batch])
            pixels = (np.concatenate([pixels[0], si]), np.concatenate([pixels[1], sj]),
                      np.concatenate([pixels[2], np.ones(len(si), bool)]),
                      np.concatenate([pixels[3], np.full(len(si), cfg.detail_sigma_px)]))
        creased = np.any(photo != colours, axis=-1)[pixels[0], pixels[1]]  # [n_photo] rows the creases touch
        rows_m = np.flatnonzero(photo_layer.part == PART_MOUTH)  # the photo's open mouth: upper or lower jaw
        photo_layer.bary[rows_m] = jaw_binding(lower_jaw[pixels[0][rows_m], pixels[1][rows_m]])
        rows_own = rows_m[own_mouth[pixels[0][rows_m], pixels[1][rows_m]]]  # the photo's own mouth (`own_mouth`):
        photo_layer.part[rows_own] = PART_PHOTO_MOUTH  # seen at the photo's jaw angle and lips' gap only (its binding
        photo_layer.bary[rows_own, 1:] = (lip_gap_m, theta)  # row's 2nd and 3rd entries)
        # The silhouette's outermost pixels (`edge`) mix in the background, and turned views magnify them (they
        # lie on the steepest part of the surface): they take the colour from just inside instead.
        # the head without the silhouette's pixels mixed with the background, nor the backdrop it keeps in the person's
        # colour (person_mask's recoloured: the avatar draws obama_speech's skin, not the flag's red stripe, beside his
        # jaw; scored there, his render with the photo's expression fell 0.8 dB below the build's own figure)
        head_clean = head_mask & ~edge & ~recoloured
        frozen = edge[pixels[0], pixels[1]]
        photo_layer.colors[frozen] = wall_cols[pixels[0][frozen], pixels[1][frozen]]
        creased &= ~frozen
        background = coverage = None
        if cfg.edge_matte:  # I = a F + (1 - a) B: the coverage a that gives the photo back over its own background
            background, coverage = edge_matte(photo_seen, person, fp.valid, edge, wall_cols, d_edge, pixels, frozen,
                                              cfg.opacity)
            photo_layer.opacities[frozen] = coverage
        # the photo's upper-lid strip rolls down with the margin in a blink (eyelids.py), its lash band folding
        # onto the margin; lid_skin fills behind
        spread, lid_carried = bind_lid_strips(cfg, photo_layer, face_extra, band, pixels, skin_rgb, V, faces, centre)
        batch = GaussianBatch.concat([photo_layer, face_extra, hidden, mouth, eyeball, chin, lid_skin, lining])
        n_photo = len(photo_layer)
        timings["gaussians"] = time.perf_counter() - t3

        t4 = time.perf_counter()
        # the discs along the silhouette the photo sees edge-on: the share of their colour step that only the
        # photo's camera is to see (view_rim_facing)
        sight = pts[pixels[0], pixels[1]].astype(np.float64) - centre
        sight /= np.linalg.norm(sight, axis=1, keepdims=True)
        cos_n = np.sum(photo_layer.normals * sight, 1)  # < 0: the normal faces the camera
        lo, hi = cfg.view_rim_facing
        edge_on = ~frozen & (d_edge[pixels[0], pixels[1]] < cfg.view_rim_px) & (np.abs(cos_n) < hi)
        shown = np.where(edge_on, np.clip((np.abs(cos_n) - lo) / max(hi - lo, 1e-6), 0.0, 1.0), 1.0)
        unrefined = batch.colors[:n_photo].copy()
        held, lighten = refine_limits(cfg, n_photo, pixels, fid, faces, eye_px, edge_on, d_edge, mesh_px, person,
                                      fp.landmarks_px)
        with_creases = None
        margins = detail_margins(cfg, mesh_px, pixels)
        if creased.any():  # the photo layer refined against the photo itself too: the colours with the creases
            twin = GaussianBatch.concat([batch])  # a copy (np.concatenate); refine_colours changes colours and opacities
            refine_colours(cfg, twin, n_photo, pixels, ~frozen, photo, {}, fp.viewmat, K, S, background, coverage,
                           held, margins, lighten)
            with_creases = twin.colors[:n_photo].copy()
        psnrs = refine_colours(cfg, batch, n_photo, pixels, ~frozen, colours,
                               {"head": head_clean, "head_full": head_mask}, fp.viewmat, K, S, background, coverage,
                               held, margins, lighten)
        carried_rows = np.concatenate(lid_carried) if lid_carried else np.zeros(0, np.int64)
        if cfg.lid_carried_luma > 0 and len(carried_rows):  # no lighter than lid_carried_luma x its eye's lid skin
            batch.colors[carried_rows] = skin_luminance(batch.colors[carried_rows], skin_rgb,
                                                        batch.means[carried_rows, 0] >= 0,
                                                        (0.0, cfg.lid_carried_luma)).astype(batch.colors.dtype)
        refined = batch.colors[:n_photo].copy()
        if spread.any():  # a light strip row the refinement made darker than light (by up to lid_refine_limit, beside
            # the lashes it overlaps) spread over the closing lid at its own size as a grey speck (business_person,
            # lp_s9_monalisa): it folds onto the closed line with the lash band instead (eyelids.margin_binding's dark)
            dim = np.flatnonzero(spread & ~lid_light(cfg, skin_rgb, refined, batch.means[:n_photo]))
            batch.bary[dim], _ = margin_binding(batch.face_id[dim], batch.bary[dim], faces, cfg.lid_split,
                                                np.ones(len(dim), bool))
            batch.bary[dim] = fold_lashes(batch.face_id[dim], batch.bary[dim], batch.means[dim], V, faces, cfg.lash_fold)
        batch, n_fringe = with_bust_fringe(cfg, batch, n_photo, n_photo + len(face_extra or []), len(hidden), scene,
                                           at_cut, below_cut, fringe_steps, fringe_budget, mpp)
        # ... and the backdrop seen through the hair's outline (matte_hair's own): a turned view sees these discs
        # squarely, and trump_official's red flag showed as red specks behind his ear at yaw -35
        made_up = (1.0 - shown)[:, None] * (refined - unrefined + layer_seen[pixels[0], pixels[1]])  # [n_photo, 3]
        n_fold = n_photo + len(face_extra or [])
        fold_up, fold_cos = fold_shares(cfg, batch, n_photo, n_fold, edge_on, closed_view, skin_rgb, V, faces, centre,
                                        scene)
        timings["refine"] = time.perf_counter() - t4

        t5 = time.perf_counter()
        warnings = list(fp.warnings)
        try:
            sk = face_px & person & skin_triangle_mask()[np.clip(fid, 0, nf - 1)]
            lighting = estimate_lighting(nrm[sk], photo[sk])
        except ValueError as e:
            warnings.append(f"lighting not estimated: {e}")
            lighting = np.zeros((0, 3), np.float32)
        cam = SourceCamera(np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], np.float32),
                           np.asarray(fp.viewmat, np.float32), (S, S))
        built = batch
        batch = to_rest_pose(batch, V, V_rest, faces, theta, drive_cfg)
        lip_info = {}
        if cfg.remove_expression and cfg.closed_lips:  # what the closing stretched or unfolded: lips and skin at rest
            fill = skin_fill_map(colours, face_px & person & ~edge & skin_triangle_mask()[np.clip(fid, 0, nf - 1)])
            batch, lip_info = closed_lips(batch, V, V_rest, faces, lambda p: fill[scene.project(p)[:2]], R,
                                          lip_fill, cfg.lips)
            behind_rest_face(batch, V_rest, faces, R, t, K, S, scene, lip_info)
        if cfg.remove_expression:  # the photo's skin discs spread apart by the rest pose: widened to cover
            lip_info["rest_widened"] = cover_rest(batch, built, V, V_rest, faces, cfg.rest_cover,
                                                   cfg.rest_cover_most)
        # the photo's head rotation: drive() turns the torso by only part of it (rest_pose.turn_torso)
        lip_info["torso_level_changes"] = turn_torso(batch, head_rotation_in_view(R, t), V_rest, faces, drive_cfg)
        # the made-up share seen from the photo's camera only, about the discs' rest normals turned towards it (not
        # where the lips' re-texturing changed the colour)
        changed = np.any(batch.colors[:n_photo] != refined, axis=1)
        made_up[changed] = 0.0
        fold_up[:n_photo][changed] = 0.0
        sh, info_view = photo_view_sh(cfg, batch, made_up, fold_up, cos_n, fold_cos)
        avatar = to_avatar(batch, V_rest.astype(np.float32), faces.astype(np.int32), sh=sh, lighting_sh=lighting,
                           source_camera=cam, operator_id=operator_id, reconstructor=f"mesh_fit:{self.preset}")
        if with_creases is not None:  # the wrinkle map: what the creases add to the refined photo layer, on the
            # rows no later step recoloured, fully in at the photo's own expression below the nose tip (core.drive)
            d = with_creases - refined
            d[np.any(batch.colors[:n_photo] != refined, axis=1)] = 0.0
            rows = np.flatnonzero(np.max(np.abs(d), axis=1) > cfg.creases.wrinkle_min)
            below = V_rest[:, 1] > V_rest[lmk.NOSE_TIP, 1]
            avatar.wrinkle_rows, avatar.wrinkle_rgb = rows.astype(np.uint32), d[rows].astype(np.float32)
            avatar.wrinkle_expression = np.where(below[:, None], expr, 0.0).astype(np.float32)
        # How far the rest moved the photo's brows (the driver lifts a hooded photo's lids with a driven raise by it)
        # (clipped to what an avatar may carry: brows moved further are a landmark failure, not a reason to refuse)
        avatar.rest_brow_shift = np.clip([-expr[list(b), 1].mean() for b in (lmk.BROW_R, lmk.BROW_L)],
                                         -MAX_REST_BROW_SHIFT_M, MAX_REST_BROW_SHIFT_M).astype(np.float32)
        avatar.validate(cfg.max_gaussians)
        timings["export"] = time.perf_counter() - t5
        counts = {name: int(np.sum(batch.part == p)) for name, p in
                  (("face", PART_FACE), ("static", PART_STATIC), ("torso", PART_TORSO), ("mouth", PART_MOUTH),
                   ("eye", PART_EYE), ("under_chin", PART_UNDER_CHIN), ("jaw_floor", PART_JAW_FLOOR),
                   ("photo_mouth", PART_PHOTO_MOUTH))}
        info = {"gaussians": avatar.num_gaussians, "photo_layer": n_photo, "detail": len(detail[0]),
                "border_line_px": [int(off.sum()), int(on.sum())],  # outside, inside the face's outline
                "completion_scale": round(cfg.eyeball.spacing_m / EyeballConfig().spacing_m, 3),
                "face_completion": len(face_extra or []), "hidden": len(hidden), "mouth_interior": len(mouth),
                "under_chin": len(chin or []), "lid_skin": len(lid_skin or []), "bust_fringe": n_fringe,
                "parts": counts, "yaw_deg": fp.euler["yaw"], "pitch_deg": fp.euler["pitch"],
                "face_width_px": fp.face_width_px, "num_faces": fp.num_faces,
                "expression_removed_mm": round(1000 * expression_strength(expr), 2),
                "rest_brow_shift_mm": [round(1000 * float(v), 2) for v in avatar.rest_brow_shift],
                "photo_jaw_deg": round(float(np.degrees(theta)), 2),
                "teeth": teeth_info,  # where the teeth colour came from, and the skin / sclera it was taken from
                **lip_info, **info_view,
                **{f"psnr_{k}": round(v, 2) for k, v in psnrs.items()}}
        log.info("mesh_fit: %d Gaussians (%d photo, %d detail), head PSNR %.2f dB at rest, %.2f s",
                 avatar.num_gaussians, n_photo, len(detail[0]), psnrs.get("head", float("nan")), sum(timings.values()))
        return ReconstructionResult(avatar=avatar, warnings=warnings, photo=fp.photo, mask=head_clean,
                                    timings=timings, info=info, expression=expr.astype(np.float32))
