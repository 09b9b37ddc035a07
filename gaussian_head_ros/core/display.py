"""The face display's virtual camera: how the head is framed on a panel of any aspect ratio.

The display camera looks at the head frame's origin (the head's centre) from `distance_m` straight ahead
(core.render.head_viewmat). Its intrinsics (`display_intrinsics`) follow one rule for every panel:

- size: `fov_deg` is the field of view across the panel's SHORTER side, so the square that a 512x512 display
  shows (the whole head, hair and ears, with the margin of that view) fits the panel in both directions: the
  tighter of the two fields of view sizes the head. On a square or landscape panel (width >= height) this is the
  vertical field of view, as before: K is the same as `intrinsics_from_fov(fov_deg, width, height)`, bit for bit.
- place: centred left-right. A portrait panel (height > width) has room above and below that square; its bottom
  edge goes to where the avatar's torso ends (`torso_bottom`: the photo's crop cuts the torso there, below it
  there is only the display's background), so that no strip of background shows under a cut torso: on a panel a
  little taller than square the head rises toward the top as in a portrait photo (never past the square's top
  edge); on a taller one (480x800) it sits about centred, its centre (the head frame's origin) up to
  HEAD_BELOW_MIDDLE of the panel's height below the middle when that brings the torso's cut to the bottom edge.
  Where the torso ends higher still (a photo cut at the chest: two_children_multiface) the head is centred and
  the rest below the torso's cut is the display's background colour, the cut fading into it (`cut_fade`, on any
  panel where the cut stays above the bottom edge: a hard edge that the head's turns made ragged).

The principal point moves with the placement (cx = width / 2, cy within HEAD_BELOW_MIDDLE x height below the
middle or above it); the render node publishes this K in its camera_info, so a rectifier or an overlay projects
exactly as the picture was drawn. Measured on business_person at 480x800 (panel24, s24; rendered, alpha > 0.1,
the torso left out): head columns 82..379 (of 480), its top at row 226, the torso down to the bottom row.

That is the `fov` framing (`display_intrinsics` without a head box): one field of view for every avatar. No one
fov_deg suits every head on a portrait panel (480x800, grid25 s25: business_person's short hair would take 24
deg, lp_d9_woman_turned's long hair reaches the side at 30; at 30 the child of two_children_multiface spans 53-56 %
of the width, business_person 57-59 %), nor on a square one (512x512 at 30: lp_d8_man_glasses's hair touches the
top edge). The `head` framing (the render node's default) sizes and places the view by the
avatar's own head instead, on every panel:

- the head: its Gaussians that are not the torso's (face, hair, ears, eyes, mouth: `head_points`), opaque
  (opacity >= 0.5), in the rows from the hair's top down to the chin (the face template's lowest point): hair
  that falls onto the shoulders or a neighbour's hand below the chin does not widen it.
- its box (`head_box`): where those Gaussians (each out to HEAD_EDGE_SIGMA of its largest scale) reach in the
  display camera's image plane over the head turns HEAD_TURNS_DEG (yaw -35..35 with pitch -20..20, roll +-12),
  its bottom CHIN_DROP_M lower for an open jaw: the envelope of what the head shows as the operator turns.
- the view (`head_intrinsics`): the box fills `fill` (HEAD_FILL) of the panel in the tighter direction with equal
  margins of (1 - fill) / 2 of the shorter side, centred left-right on the box; up and down, the box's top at that
  margin (the panel's room goes below the chin, to the neck and torso), lowered where the torso's cut
  (`torso_bottom`) would leave a strip of background under it, at most until the box's centre is
  HEAD_BELOW_MIDDLE of the height below the middle (a photo cut at the chest keeps its strip).

`AvatarFraming` holds what these read of one avatar (made once per avatar: the render node when it loads one,
`gaussian-head render` and `bench`) and gives the K of either framing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from gaussian_head_ros.core.avatar import PART_TORSO
from gaussian_head_ros.core.control import euler_to_quat, quat_to_matrix
from gaussian_head_ros.core.render.base import checked_threads, to_rgb8

log = logging.getLogger(__name__)

FRAMINGS = ("head", "fov")  # each avatar by its own head (default) | one field of view for all (before session 26)

TORSO_EDGE_PERCENTILE = 99.0  # of the torso Gaussians' image heights: their lower edge (1 % lie below: the cut's fuzz)
# The panel's bottom edge this far (image-plane units at depth 1: 1.2 cm at 0.6 m) above the torso's edge, so that the
# torso still reaches the bottom when it sways with the head (it follows the head's turns partly; with the edge at
# the torso's own, business_person's cut rose into view at a bottom corner when the head turned: see below)
TORSO_INSET = 0.02
# How far (a fraction of the panel's height) the head's centre may sit below the panel's middle so that the torso
# reaches the bottom edge: a strip of background a few pixels high under a cut torso looks like a glitch (at 480x800
# the torso of business_person and lp_d9_woman_turned ends ~28 px above the bottom with the head exactly centred).
# 0.07 lets TORSO_INSET apply in full at 480x800 and 600x1024 to a torso cut at mesh_fit's crop (y/z 0.416 at 0.6 m):
# driven at yaw +-35 / pitch +-12 and pitch +-20, the worst share of the bottom row showing background was 12 % /
# 42 % (480x800 / 600x1024, business_person) at 0.05, 0 % / 13 % at 0.06, 0 % / 0 % at 0.07 (lp_d9_woman_turned:
# 3 % / 3 %, its hair's tips; panel24 s24)
HEAD_BELOW_MIDDLE = 0.07
# Where the torso's cut still lies above the panel's bottom edge (a photo cut high on a tall portrait panel: the head
# goes no lower than HEAD_BELOW_MIDDLE; a photo cut at the chest), the torso fades into the background over this
# height (image-plane units at depth 1: 3 cm at 0.6 m), the fade ending TORSO_INSET above the cut, as far as the cut
# sways with the head's turns: a hard cut with a strip of background under it, and while driven ragged wedges of
# the cut up to 18 px high over up to 81 % of the bottom row, different every frame (lp_d8_man_glasses at 480x800
# driven by sadtalker; at rest 5.6 px of background under it at 480x800, 64 px at 1080x1920; user57, s57)
TORSO_FADE = 0.05

# The `head` framing (module docstring). The head's box spans its envelope over these turns (yaw, pitch, roll deg,
# core.control.euler_to_quat): yaw -35..35 (an operator looking aside; the turns panel24's and grid25's framing
# checks drove), pitch -20..20 and roll +-12 (the living-face table's driving clips reach yaw +-21, pitch -22..3,
# roll +-12: sadtalker, tpsmm). Rolled alone: rolled while turned far is rare, and each extra turn shrinks every head.
HEAD_TURNS_DEG = tuple((yaw, pitch, 0.0) for yaw in (-35.0, -20.0, 0.0, 20.0, 35.0) for pitch in (-20.0, 0.0, 20.0)) + (
    (0.0, 0.0, -12.0), (0.0, 0.0, 12.0))
HEAD_FILL = 0.9  # share of the panel (its tighter direction) the head's box fills: 5 % margins at the widest turn
HEAD_FILL_RANGE = (0.3, 1.0)
# How far below its rest the chin goes with the jaw open: the chin's lowest head Gaussian driven by the tracked
# clips (60 k avatars of business_person and obama_official): tpsmm 1.4 cm, sadtalker 0.8 cm, lp_d0 0.4 cm
CHIN_DROP_M = 0.015
# A Gaussian's reach beyond its mean, in its largest standard deviation: an opaque disc's alpha falls to 0.1 at
# sqrt(2 ln 10) = 2.15 sigma (the box from the means alone lay 0.002-0.007 image-plane units inside the rendered
# alpha > 0.1 extent of the same Gaussians, 9 portraits at 15 turns)
HEAD_EDGE_SIGMA = 2.0


def torso_means(means: np.ndarray, part: np.ndarray, logit_opacities: np.ndarray) -> np.ndarray:
    """[M, 3] float32 rest-pose means of an avatar's torso Gaussians with an opacity of at least 0.5 (head frame,
    metres): what `torso_bottom` reads (a bust fringe, mesh_fit's bust_fringe_m, fades out below the photo's cut: it
    is not where the torso covers the panel). means [N, 3] the avatar's canonical means, part [N] its PART_* labels,
    logit_opacities [N]."""
    keep = (np.asarray(part) == PART_TORSO) & (np.asarray(logit_opacities) >= 0.0)  # sigmoid >= 0.5
    return np.asarray(means, np.float32)[keep]


def torso_bottom(torso: np.ndarray, distance_m: float) -> float | None:
    """Where the avatar's torso ends as the display camera sees the rest pose: the TORSO_EDGE_PERCENTILE of y / z
    over its torso Gaussians (image-plane units at depth 1, y down; the camera of
    core.render.head_viewmat(distance_m): the head frame's origin at depth distance_m). torso [M, 3] head frame,
    metres (`torso_means`). None when there are no torso Gaussians in front of the camera. Raises ValueError for a
    distance that is not positive."""
    if not distance_m > 0:
        raise ValueError(f"camera distance must be positive, got {distance_m}")
    torso = np.asarray(torso, np.float64).reshape(-1, 3)
    z = torso[:, 2] + distance_m
    front = z > 1e-3
    if not front.any():
        return None
    return float(np.percentile(torso[front, 1] / z[front], TORSO_EDGE_PERCENTILE))


def _checked_framing(framing) -> str:
    """`framing` if it is one of FRAMINGS; ValueError otherwise."""
    if framing not in FRAMINGS:
        raise ValueError(f"framing {framing!r} is not one of {', '.join(FRAMINGS)}")
    return str(framing)


def _checked_fill(fill) -> float:
    """`fill` as a float if it lies in HEAD_FILL_RANGE; ValueError otherwise."""
    if not HEAD_FILL_RANGE[0] <= float(fill) <= HEAD_FILL_RANGE[1]:
        raise ValueError(f"head fill {fill} is outside {HEAD_FILL_RANGE[0]}..{HEAD_FILL_RANGE[1]}")
    return float(fill)


def _checked_fov(fov_deg) -> float:
    """`fov_deg` as a float if it lies in 1..170 degrees; ValueError otherwise."""
    if not 1.0 <= float(fov_deg) <= 170.0:
        raise ValueError(f"field of view {fov_deg} deg is outside 1..170")
    return float(fov_deg)


def display_intrinsics(fov_deg: float, width: int, height: int, bottom: float | None = None) -> np.ndarray:
    """[3, 3] float32 K (pixels, pixel centres at integer + 0.5) of a width x height face display: `fov_deg`
    degrees across the shorter side, centred left-right; on a portrait panel the image's bottom edge TORSO_INSET
    above `bottom` (the torso's lower edge, image-plane y at depth 1: `torso_bottom`) when the head's centre is then
    at most HEAD_BELOW_MIDDLE below the middle (the head square at the top at most), else (or None) the head
    centred (module docstring). Raises ValueError for a field of view outside 1..170 degrees or a size below 1
    pixel."""
    _checked_fov(fov_deg)
    if width < 1 or height < 1:
        raise ValueError(f"display size {width}x{height} must be at least 1x1 pixels")
    half_fov = math.tan(math.radians(fov_deg) / 2)
    f = 0.5 * min(width, height) / half_fov  # (the same expression as intrinsics_from_fov's when height <= width)
    cy = height / 2
    if height > width:
        half = 0.5 * height / f  # half the panel's height at depth 1: its bottom edge with the head centred
        highest = max(half * (1 - 2 * HEAD_BELOW_MIDDLE), half_fov)  # ... with the head lowest (its square inside)
        lowest = 2 * half - half_fov  # ... with the head square at the top
        # below the middle only as far as it brings the torso's cut to the bottom edge (TORSO_INSET inside it, the
        # head no lower than `highest`); where it cannot, centred
        edge = half if bottom is None or bottom < highest else min(max(float(bottom) - TORSO_INSET, highest), lowest)
        cy = height - edge * f
    return np.array([[f, 0, width / 2], [0, f, cy], [0, 0, 1]], np.float32)


def cut_fade(k: np.ndarray, bottom: float | None, height: int) -> tuple[int, np.ndarray] | None:
    """How a display's picture fades the torso's cut into the background where the cut lies above the bottom edge:
    (r0, weights [height - r0] float32), row r0 and below weighted against the background by `weights` (1: the
    picture, 0: the background), smoothstep from 1 at TORSO_INSET + TORSO_FADE above the cut to 0 at TORSO_INSET
    above it; None where the cut (less TORSO_INSET) is within a pixel of the bottom edge or below it (the framing
    brought it there), or `bottom` is None. k [3, 3] the display's K (pixels, pixel centres at integer + 0.5),
    bottom the torso's lower edge (`torso_bottom`, image-plane y at depth 1), height in pixels (module docstring)."""
    if bottom is None:
        return None
    f, cy = float(k[1, 1]), float(k[1, 2])
    end = cy + f * (float(bottom) - TORSO_INSET)  # pixel coordinate, y down
    if end >= height - 1.0:
        return None
    start = end - f * TORSO_FADE
    r0 = min(max(int(math.floor(start)), 0), height)
    x = np.clip((np.arange(r0, height) + 0.5 - start) / max(end - start, 1e-6), 0.0, 1.0)
    return r0, (1.0 - x * x * (3.0 - 2.0 * x)).astype(np.float32)


def fade_rows(img: np.ndarray, background, r0: int, weights: np.ndarray) -> np.ndarray:
    """img [H, W, 3] uint8 with rows r0.. weighted against the background (`cut_fade`'s), in place, and returned:
    background + weight x (pixel - background), rounded; the rows above r0 untouched. background [3] r g b in 0..1,
    taken as the rasterizer fills it (render.base's to_rgb8). ~10 ms for the 206 rows of a 1080x1920 panel on the loaded
    2-core machine (where its frame takes ~245 ms), ~1.6 ms at 480x800."""
    if r0 >= img.shape[0]:
        return img
    bg = to_rgb8(np.asarray(background, np.float32).reshape(3)).astype(np.float32)  # the level the rasterizer fills
    rows = img[r0:].astype(np.float32)
    rows -= bg
    rows *= weights[:, None, None]
    rows += bg + 0.5
    np.floor(rows, out=rows)
    img[r0:] = rows  # within 0..255: a weighted mean of two levels in it
    return img


def head_points(means: np.ndarray, part: np.ndarray, logit_opacities: np.ndarray, log_scales: np.ndarray,
                template_vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The avatar's head as `head_box` reads it: ([P, 3] float64 rest means, head frame, metres; [P] their reach,
    metres: HEAD_EDGE_SIGMA x the largest scale) of the opaque (opacity >= 0.5) Gaussians that are not the torso's
    and lie no lower than the chin (the lowest template vertex; every row when the template is empty). means
    [N, 3], part [N] PART_*, logit_opacities [N], log_scales [N, 3] log metres, template_vertices [V, 3]."""
    means = np.asarray(means, np.float64)
    keep = (np.asarray(part) != PART_TORSO) & (np.asarray(logit_opacities) >= 0.0)  # sigmoid >= 0.5
    template = np.asarray(template_vertices, np.float64).reshape(-1, 3)
    if len(template):
        keep &= means[:, 1] <= template[:, 1].max()  # y down: above the chin's lowest point
    reach = HEAD_EDGE_SIGMA * np.exp(np.asarray(log_scales, np.float64)[keep].max(axis=1))
    return means[keep], reach


def head_box(points: np.ndarray, reach: np.ndarray, distance_m: float,
             turns=HEAD_TURNS_DEG) -> np.ndarray | None:
    """[4] float64 (left, top, right, bottom) of the head's box: image-plane units at depth 1 (x right, y down) of the
    display camera (core.render.head_viewmat(distance_m)), the envelope of `points` [P, 3] (`head_points`, rest
    pose, head frame, metres) each widened by its `reach` [P] (metres) turned rigidly about the head frame's origin
    by each of `turns` ((yaw, pitch, roll) degrees; the head's Gaussians turn so at rest expression, core.deform),
    the bottom CHIN_DROP_M lower. None when there are no points in front of the camera. Raises ValueError for a
    distance that is not positive."""
    if not distance_m > 0:
        raise ValueError(f"camera distance must be positive, got {distance_m}")
    points = np.asarray(points, np.float64).reshape(-1, 3)
    reach = np.asarray(reach, np.float64).reshape(-1)
    box = np.array([np.inf, np.inf, -np.inf, -np.inf])
    for yaw, pitch, roll in turns:
        turned = points @ quat_to_matrix(euler_to_quat(yaw, pitch, roll).astype(np.float64)).T
        z = turned[:, 2] + distance_m
        front = z > 1e-3
        if not front.any():
            continue
        z, xy, r = z[front, None], turned[front, :2], reach[front, None]
        box[:2] = np.minimum(box[:2], ((xy - r) / z).min(axis=0))
        box[2:] = np.maximum(box[2:], ((xy + r) / z).max(axis=0))
    if not np.isfinite(box).all():
        return None
    box[3] += CHIN_DROP_M / distance_m
    return box


def head_intrinsics(head: np.ndarray, width: int, height: int, bottom: float | None = None,
                    fill: float = HEAD_FILL) -> np.ndarray:
    """[3, 3] float32 K (pixels, pixel centres at integer + 0.5) of a width x height face display framed by the
    head: `head` the head's box (`head_box`: left, top, right, bottom, image-plane units at depth 1) filling `fill`
    of the panel in its tighter direction, margins of (1 - fill) / 2 of the shorter side, centred left-right on the
    box; its top at the top margin, lowered while `bottom` (the torso's lower edge, `torso_bottom`; None: unknown)
    less TORSO_INSET lies above the panel's bottom edge, at most until the box's centre is HEAD_BELOW_MIDDLE of the
    height below the middle, and never past the bottom margin (module docstring). Raises ValueError for a fill
    outside HEAD_FILL_RANGE, a size below 1 pixel or an empty box."""
    _checked_fill(fill)
    if width < 1 or height < 1:
        raise ValueError(f"display size {width}x{height} must be at least 1x1 pixels")
    left, top, right, low = (float(v) for v in head)
    if not (right > left and low > top):
        raise ValueError(f"head box {list(head)} is empty")
    margin = 0.5 * (1.0 - fill) * min(width, height)
    f = min((width - 2 * margin) / (right - left), (height - 2 * margin) / (low - top))
    span = f * (low - top)  # the box's height, pixels
    centred = 0.5 * (height - span)  # the box's top row with the box centred up and down
    # lowest: the box's centre HEAD_BELOW_MIDDLE below the middle, its bottom inside the margin
    lowest = min(centred + HEAD_BELOW_MIDDLE * height, height - margin - span)
    # the box's top row that brings the torso's cut (TORSO_INSET inside it) to the panel's bottom edge
    cut = None if bottom is None else height - f * (float(bottom) - TORSO_INSET - top)
    # as high as the margin lets it (the room below to the neck and torso) where the torso reaches the bottom edge
    # so, lower as far as it takes to bring the cut there (no lower than `lowest`); centred without a torso
    y_top = centred if cut is None else min(max(cut, margin), lowest)
    cx = 0.5 * width - f * 0.5 * (left + right)
    return np.array([[f, 0, cx], [0, f, y_top - f * top], [0, 0, 1]], np.float32)


@dataclass
class AvatarFraming:
    """What the display's framing reads of one avatar (made once per avatar, `from_avatar`): its opaque torso
    Gaussians (`torso_means`) and its head (`head_points`); `intrinsics` gives the K of either framing. Where the
    torso ends and the head's box are computed once per camera distance (`at`: ~65 ms of one core for 45k head
    Gaussians at 17 turns, measured at load ~25 on the 2-core machine; a distance_m changed later costs the render
    thread that once)."""

    torso: np.ndarray  # [M, 3] rest means of the opaque torso Gaussians, head frame, metres
    head: np.ndarray  # [P, 3] rest means of the head's Gaussians (head_points), head frame, metres
    reach: np.ndarray  # [P] their reach, metres
    _at: dict = field(default_factory=dict, repr=False)  # distance_m -> (torso_bottom, head_box)

    @staticmethod
    def from_avatar(avatar) -> "AvatarFraming":
        """The framing inputs of a core.avatar.GaussianAvatar."""
        head, reach = head_points(avatar.means, avatar.part, avatar.logit_opacities, avatar.log_scales,
                                  avatar.template_vertices)
        return AvatarFraming(torso_means(avatar.means, avatar.part, avatar.logit_opacities), head, reach)

    def at(self, distance_m: float) -> tuple[float | None, np.ndarray | None]:
        """(`torso_bottom`, `head_box`) of this avatar seen from `distance_m` (either None where the avatar has no
        such Gaussians), kept per distance. Raises ValueError for a distance that is not positive."""
        key = float(distance_m)
        if key not in self._at:
            self._at[key] = (torso_bottom(self.torso, key), head_box(self.head, self.reach, key))
        return self._at[key]

    def intrinsics(self, framing: str, fov_deg: float, width: int, height: int, distance_m: float,
                   fill: float = HEAD_FILL) -> np.ndarray:
        """[3, 3] float32 K of this avatar on a width x height display seen from `distance_m`: framing 'head'
        (`head_intrinsics` of its head's box, `fill`; `fov_deg` unused; an avatar without head Gaussians falls back
        to 'fov') or 'fov' (`display_intrinsics` at `fov_deg`; `fill` unused); both place a portrait panel's bottom
        edge by the torso's cut (`torso_bottom`). Raises ValueError for another framing or what those raise."""
        _checked_framing(framing)
        bottom, box = self.at(distance_m)
        if framing == "fov" or box is None:
            return display_intrinsics(fov_deg, width, height, bottom)
        return head_intrinsics(box, width, height, bottom, fill)

    def cut_fade(self, k: np.ndarray, height: int, distance_m: float) -> tuple[int, np.ndarray] | None:
        """`cut_fade` of this avatar's torso seen from `distance_m` through the display's K k [3, 3], `height`
        pixels high. Raises ValueError for a distance that is not positive."""
        return cut_fade(k, self.at(distance_m)[0], height)


# The face display's own defaults (render_node's fov_deg and distance_m parameters, `gaussian-head render`'s --fov and
# --distance): 30 deg across the shorter side showed the whole head with hair and ears on the 512x512 display (sessions
# 1-25, before the `head` framing); 0.6 m is a person across a desk from a screen (a video call's perspective)
FOV_DEG = 30.0
DISTANCE_M = 0.6


class DisplayAvatar:
    """One avatar made ready for the face display, once per avatar: its core.drive.Driver (`driver`) and its
    AvatarFraming (`framing`) with the head's box at `distance_m` already found. The render node's avatar loader
    process makes it (nodes/avatar_loader.py: ~0.3 s of one core for 60k Gaussians, the framing ~65 ms of it; it
    pickles), then the node hands it to the render thread's FaceDisplay (`FaceDisplay.avatar`). avatar: a core.avatar.GaussianAvatar. Raises
    ValueError for an avatar the Driver cannot drive or a distance that is not positive."""

    def __init__(self, avatar, distance_m: float = DISTANCE_M):
        from gaussian_head_ros.core.drive import Driver

        self.driver = Driver(avatar)
        self.framing = AvatarFraming.from_avatar(avatar)
        self.framing.at(distance_m)  # its head's box here (the loader), not at the first frame (the drawing)


# What a FaceDisplay is drawn with (its constructor's keywords and `set`'s): the render node's parameters of the same
# names, changed at run time with `set`
SETTINGS = ("width", "height", "framing", "head_fill", "fov_deg", "distance_m", "lighting", "background", "backend",
            "threads", "device")
MAX_SIDE = 16384  # pixels: a display side FaceDisplay draws (the render node's width/height stop at 4096)


def _same(a, b) -> bool:
    """Whether a setting's value `b` equals the one held, `a` (arrays by value; the render node hands the same
    lighting array again while its parameter is unchanged: `is` first)."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b))
    return type(a) is type(b) and a == b


class FaceDisplay:
    """One avatar drawn as the robot's face display draws it (render_node's picture, `gaussian-head render`'s
    frames, a program's without ROS): a FaceControl in, an [H, W, 3] uint8 RGB picture out. The render node draws
    every frame through one of these: this is the one place where an avatar is driven, framed, lit and drawn for a
    display.

        display = FaceDisplay(avatar, 480, 800)   # a core.avatar.GaussianAvatar on a 480 x 800 (W x H) panel
        rgb = display.render(control)             # [800, 480, 3] uint8 RGB (OpenCV's imwrite wants rgb[..., ::-1])

    `control`: a core.control.FaceControl (core.tracking.FaceTracker.process's, or made by hand), None = the rest
    pose. The camera looks at the head frame's origin from `distance_m` metres straight ahead (`viewmat`, [4, 4]
    float32 world(head)-to-camera, OpenCV axes: x right, y down, z forward), through `K` ([3, 3] float32, pixels, as
    the render node's camera_info): framing 'head' (the default) sizes the view by the avatar's own head, turned as an
    operator turns, to fill `head_fill` of the panel's tighter side; 'fov' takes `fov_deg` across its shorter side
    (the module notes). A torso cut above the bottom edge fades into `background` (r, g, b in 0..1). `lighting`:
    'captured' (the photo's light), a preset (studio, soft, dramatic, warm) or 27 SH numbers (drive.lighting_from_spec).
    `backend` ('auto': gsplat with CUDA, else the compiled cpu rasterizer), `threads` (0: the backend decides) and
    `device`: core.render.get_renderer's; a backend other than cpu that fails drawing a frame falls back to cpu for
    that frame and after (`fallbacks` counts them; `on_fallback(backend, error)` is told, else a warning is logged).
    render mirrors nothing (the node's `mirror` flips the picture after).

    The two steps of `render` are public for a caller that times or traces them: `drive(control)` (posed
    Gaussians) and `raster(posed)` (the picture). What it draws with changes at run time with `set(**settings)` (any
    of SETTINGS; the render node's `ros2 param set`): the camera is made again when the size, framing, head_fill,
    fov_deg, distance_m or the avatar changes, the renderer when backend, threads or device do (`renderer`, one for
    every avatar shown). `avatar` is the DisplayAvatar drawn (made from a GaussianAvatar given to the constructor;
    assign another to swap, None to draw nothing: `camera()` then frames by fov_deg, as the node's placeholder).
    `driver` is its Driver. Not thread-safe: one per thread. Raises ValueError for a framing, lighting, backend,
    distance or size (1..MAX_SIDE pixels a side) it cannot draw with (the constructor and `set`)."""

    def __init__(self, avatar=None, width: int = 512, height: int = 512, *, framing: str = "head",
                 head_fill: float = HEAD_FILL, fov_deg: float = FOV_DEG, distance_m: float = DISTANCE_M,
                 lighting="captured", background=(0.0, 0.0, 0.0), backend: str = "auto", threads: int = 0,
                 device: str = "cpu", on_fallback=None):
        from gaussian_head_ros.core.render import runnable_backend

        # None: nothing held yet, so `set` checks every value given (a held 0 let FaceDisplay(avatar, 0, 0) and
        # head_fill=0.0 through unchecked as 'unchanged': its first frame failed in head_intrinsics; cli63)
        self.width = self.height = self.threads = None
        self.framing = self.backend = self.device = None
        self.head_fill = self.fov_deg = self.distance_m = None
        self.lighting = self._lighting_spec = None
        self.background = None
        self.viewmat = None
        self.set(width=width, height=height, framing=framing, head_fill=head_fill, fov_deg=fov_deg,
                 distance_m=distance_m, lighting=lighting, background=background, backend=backend, threads=threads,
                 device=device)
        runnable_backend(self.backend)  # one that cannot run here is said now, not at the first frame
        self.avatar = avatar if avatar is None or isinstance(avatar, DisplayAvatar) else DisplayAvatar(avatar,
                                                                                                      distance_m)
        self.on_fallback = on_fallback
        self.fallbacks = 0
        self._camera_key, self._camera = None, None
        self._renderer_key, self._renderer = None, None

    def set(self, **settings) -> None:
        """Draw with these settings from the next frame on (keywords: SETTINGS, the constructor's meanings); the
        others stay. Checks only what changed (the render node hands all of them every frame: ~10 us). Raises
        ValueError (nothing changed then) for a value it cannot draw with, or TypeError for another keyword."""
        from gaussian_head_ros.core.drive import lighting_from_spec
        from gaussian_head_ros.core.render import checked_backend, head_viewmat

        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(f"FaceDisplay has no setting {', '.join(unknown)}: {', '.join(SETTINGS)}")
        held = {k: (self._lighting_spec if k == "lighting" else getattr(self, k)) for k in settings}
        changed = {k: v for k, v in settings.items() if not _same(held[k], v)}
        if not changed:
            return
        new = {}
        for k, v in changed.items():
            if k in ("width", "height"):
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float, np.floating)) or \
                        not np.isfinite(v) or int(v) != v:  # 100.5 was drawn 100 wide, '100' said in int()'s words
                    raise ValueError(f"display {k} {v!r} is no whole number of pixels")
                if not 1 <= int(v) <= MAX_SIDE:
                    raise ValueError(f"display size {settings.get('width', self.width)}x"
                                     f"{settings.get('height', self.height)} is outside 1..{MAX_SIDE} pixels a side")
                new[k] = int(v)
            elif k == "framing":
                new[k] = _checked_framing(v)
            elif k == "head_fill":
                new[k] = _checked_fill(v)
            elif k == "fov_deg":
                new[k] = _checked_fov(v)
            elif k == "distance_m":
                new["viewmat"] = head_viewmat(float(v))  # ValueError for one that is not positive
                new[k] = float(v)
            elif k == "lighting":
                new["lighting"] = lighting_from_spec(v)  # [9, 3] SH, None: captured; ValueError for neither
                new["_lighting_spec"] = v
            elif k == "background":
                bg = np.asarray(v, np.float32).reshape(-1)
                if bg.size != 3:
                    raise ValueError(f"background needs 3 values r g b in 0..1, got {list(bg)}")
                new[k] = bg
            elif k == "backend":
                new[k] = checked_backend(v)  # no backend imported here
            elif k == "threads":
                new[k] = checked_threads(v)
            else:  # device
                new[k] = str(v)
        for k, v in new.items():
            setattr(self, k, v)

    @property
    def driver(self):
        """The core.drive.Driver of the avatar drawn (`avatar`). Raises ValueError while there is none."""
        return self._shown().driver

    @property
    def renderer(self):
        """The core.render Renderer of the backend, threads and device set (made again when they change, kept for
        every avatar shown: the cpu rasterizer's thread tuning goes on across a swap). Raises ValueError for a
        backend that cannot run here."""
        from gaussian_head_ros.core.render import get_renderer

        key = (self.backend, self.threads, self.device)
        if self._renderer is None or key != self._renderer_key:
            self._renderer = get_renderer(self.backend, threads=self.threads, device=self.device)
            self._renderer_key = key
        return self._renderer

    @property
    def K(self) -> np.ndarray:
        """[3, 3] float32 intrinsics (pixels) the next frame is drawn through: `camera()`'s."""
        return self.camera()[0]

    def camera(self) -> tuple[np.ndarray, tuple[int, np.ndarray] | None]:
        """(K [3, 3] float32, pixels, pixel centres at integer + 0.5; the torso cut's fade, `cut_fade`'s, None: no
        fade) of the avatar drawn on this display by its framing settings; without an avatar K by fov_deg across the
        shorter side, centred, and no fade (the render node's placeholder). The same objects while the size, framing,
        head_fill, fov_deg, distance_m and the avatar stay (made again when one changes)."""
        key = (self.avatar, self.framing, self.head_fill, self.fov_deg, self.distance_m, self.width, self.height)
        if key != self._camera_key:
            if self.avatar is None:
                made = (display_intrinsics(self.fov_deg, self.width, self.height), None)
            else:
                framed = self.avatar.framing
                k = framed.intrinsics(self.framing, self.fov_deg, self.width, self.height, self.distance_m,
                                      self.head_fill)
                made = (k, framed.cut_fade(k, self.height, self.distance_m))
            self._camera, self._camera_key = made, key
        return self._camera

    def _shown(self) -> DisplayAvatar:
        if self.avatar is None:
            raise ValueError("this FaceDisplay has no avatar to draw (assign FaceDisplay.avatar)")
        return self.avatar

    def drive(self, control=None):
        """The drive step of `render`: the avatar drawn posed by `control` (a FaceControl; None: the rest pose), lit
        by the lighting set, seen from the display's camera -> core.drive's posed Gaussians (means [N, 3], quats
        [N, 4], scales [N, 3], opacities [N], colors [N, 3], camera frame of `viewmat`'s world). Raises ValueError
        for a control that cannot drive it (FaceControl.validate) or no avatar."""
        return self._shown().driver.drive(control, self.lighting, viewmat=self.viewmat)

    def raster(self, posed) -> np.ndarray:
        """The raster step of `render`: `posed` (`drive`'s) drawn through `camera()` on the background with the
        torso cut's fade -> [H, W, 3] uint8 RGB. A backend other than cpu that fails falls back to cpu (the class
        notes); a cpu failure raises."""
        k, fade = self.camera()
        args = (posed.means, posed.quats, posed.scales, posed.opacities, posed.colors, self.viewmat, k, self.width,
                self.height, self.background)
        try:
            img = self.renderer.render_rgb8(*args)
        except Exception as e:
            if self.backend == "cpu":
                raise
            failed = self.backend
            self.fallbacks += 1
            self.set(backend="cpu")
            if self.on_fallback is not None:
                self.on_fallback(failed, e)
            else:
                log.warning("%s rasterizer failed (%s: %s); falling back to cpu", failed, type(e).__name__, e)
            img = self.renderer.render_rgb8(*args)
        return img if fade is None else fade_rows(img, self.background, *fade)

    def render(self, control=None) -> np.ndarray:
        """[H, W, 3] uint8 RGB: the avatar driven by `control` (a FaceControl; None: the rest pose), framed and lit as
        set: `raster(drive(control))`. Raises ValueError for a control that cannot drive it (FaceControl.validate)
        or no avatar."""
        return self.raster(self.drive(control))
