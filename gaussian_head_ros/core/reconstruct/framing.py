"""From an untrusted photo to a framed head: checks, face, head frame and the source camera crop.

Shared by every reconstructor: it refuses what cannot make an avatar (with a status code and a
sentence), picks the largest face, fits the head frame (core.facemesh) and cuts the square crop that
becomes the avatar's source camera: `size` x `size` pixels covering `crop_m` metres at the head's
depth, so every avatar is framed alike whatever the photo's resolution.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from gaussian_head_ros.core import landmarks as lmk

from gaussian_head_ros.core.control import euler_deg, line_of_sight_rotation, matrix_to_quat
from gaussian_head_ros.core.facemesh import HeadFit, default_intrinsics, fit_head_frame, quarter_turns
from gaussian_head_ros.core.reconstruct.base import (BAD_IMAGE, FACE_CUT_OFF, FACE_TOO_SMALL, HEAD_TURNED_TOO_FAR,
                                                     NO_FACE, ReconstructionError)
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.settings import setting

log = logging.getLogger(__name__)


@dataclass
class FramingConfig:
    """Which photos are accepted and how the head is framed."""

    max_pixels: int = setting(40_000_000, "photos with more pixels are refused, JPEGs decoded at 1/2, 1/4 or 1/8 "
                                          "to fit (an 8000x8000 photo is 64M)",
                              range=(1024, 400_000_000))
    max_side: int = 2048  # larger photos are scaled down to this longer side before any work
    min_face_px: float = setting(60.0, "faces narrower than this (cheek to cheek, photo pixels) are refused",
                                 range=(8.0, 4096.0))
    max_yaw_deg: float = setting(45.0, "heads turned further left/right than this are refused, degrees",
                                 range=(5.0, 90.0))
    max_pitch_deg: float = 50.0  # heads tilted further up/down than this are refused
    # Heads turned further than this (as MediaPipe reads them) are taken with a warning: the side the photo hides is
    # completed from the side it shows and seams show when the avatar faces the display. MediaPipe reads a turned
    # head as less turned: business_person's and obama_official's avatars rendered turned 35 / 45 / 50 deg and
    # reconstructed again read 29-26 / 39-33 / 40-36 deg, their avatars torn across the hidden cheek from 40 deg on
    # (user25, s25); the ../shared portraits read at most 18 deg (lp_s9_monalisa).
    warn_yaw_deg: float = 25.0
    size: int = 512  # side of the source camera image, pixels
    crop_m: float = 0.42  # side of the square crop at the head's depth, metres (head, hair, top of the shoulders)
    crop_center_m: tuple[float, float] = (0.0, 0.03)  # crop centre in the head frame (x, y; y down), metres
    fov_deg: float = 50.0  # assumed field of view across the photo's longer side (photos carry no calibration)
    source_fov_deg: float = 12.0  # field of view of the source camera across the crop (a portrait lens)
    cut_margin: float = 0.02  # chin or forehead closer to the photo's edge than this x face height: cut off
    scalp_above_forehead_m: float = 0.06  # top of the skull above MediaPipe's forehead point (head height ~0.23 m)
    trim_bars: bool = True  # letterbox / pillarbox bars (border_bars) are not part of the photo: the person ends at them
    upright: bool = True  # a photo whose head lies on its side or upside down is turned upright (frame_photo)
    # With `upright`, a head rolled further than this in the photo (head_roll_deg: a phone held crooked, a selfie
    # with the head tilted) is turned upright by that angle (frame_photo), degrees. Below it the roll is the person's
    # own and left alone: the nine ../shared portraits read -3.5..+5.4 deg (twice that is left to the person);
    # operators talking in the four driving clips (every 5th frame) within 6.2 but tpsmm_driving's head tilts, p5..p95
    # -10.1..+11.0 (a photo taken mid-tilt is turned: its avatar's shoulders turn by as much the other way, the
    # neck's bend kept). A portrait rotated 15 deg reads 9.6-20 deg with its own roll; turned, the avatar drawn at
    # rest as the display draws it (PSNR to the upright photo's over the pixels shown; scripts/rolled_photos.py,
    # session 38) went from 17.7 / 18.6 dB (mean of the nine at -15 / +15) to 23.4 / 21.7, and 14.2-15.0 to 21.9-22.0
    # at +-35; obama_speech at +15 (9.6) is left as it is, two_children at +15 lost 0.5 dB.
    roll_upright_deg: float = 10.0


@dataclass
class FramedPhoto:
    """The photo seen through the avatar's source camera, and the face in it."""

    photo: np.ndarray  # [S, S, 3] uint8 crop
    K: np.ndarray  # [3, 3] intrinsics of the crop (pixel centres at integer + 0.5)
    viewmat: np.ndarray  # [4, 4] head frame -> camera: [line_of_sight_rotation(t) @ fit.rotation | t]
    landmarks_px: np.ndarray  # [478, 3] landmarks in crop pixels (x, y) and MediaPipe relative depth
    vertices: np.ndarray  # [478, 3] landmarks in the head frame, metres, projecting exactly onto landmarks_px
    fit: HeadFit  # the head frame as core.facemesh fitted it (canonical landmarks, weak perspective)
    euler: dict  # yaw / pitch / roll of the head, degrees
    face_width_px: float  # in the original photo
    num_faces: int
    warnings: list[str] = field(default_factory=list)
    valid: np.ndarray | None = None  # [S, S] bool: crop pixels inside the photo (the rest repeats its border)
    other_faces: list = field(default_factory=list)  # [478, 3] landmarks (crop pixels) of the other faces found
    source_px: float = 1.0  # photo pixels (of the photo as detected: shrunk when over max_pixels) per crop pixel:
    #                         below 1 the crop is upsampled (a 150 px wide face: 0.85; the ../shared portraits 0.55-2.6)
    bars: tuple = (0, 0, 0, 0)  # letterbox lines outside the picture found (top, bottom, left, right; border_bars)
    upright_deg: float = 0.0  # the head's roll the photo was turned back by on a canvas (roll_upright); 0: not turned


# A photo whose crop is enlarged more than this (a face under ~90 px wide) is said to make a soft avatar: there the
# hair's outline can no longer be told from a smooth backdrop by its detail (surfaces.refine_silhouette), and
# obama_official's grey crown was peeled to a tuft at 90, 75 and 62 px wide faces (enlarged 2.0-2.9x), not at 110
# (1.6x; s57); astronaut_eileen_collins' 92 px face (1.81x) keeps a clean outline and is not said. SHARP_FACE_PX: the
# face width from which the crop is not enlarged (its side is ~2.9 face widths: obama_official's 697 px for 241)
LOW_RES_UPSAMPLE, SHARP_FACE_PX = 1.9, 180


def check_image(rgb: np.ndarray, max_pixels: int) -> None:
    """Raise ReconstructionError(BAD_IMAGE) unless rgb is a usable [H, W, 3] uint8 photo."""
    if not isinstance(rgb, np.ndarray):
        raise ReconstructionError(BAD_IMAGE, f"the photo must be a numpy image, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ReconstructionError(BAD_IMAGE, f"the photo must be RGB uint8 [H, W, 3], got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if min(h, w) < 32:
        raise ReconstructionError(BAD_IMAGE, f"the photo is {w}x{h} pixels, too small to show a face")
    if h * w > max_pixels:
        from gaussian_head_ros.core.imageio import shrink_hint

        raise ReconstructionError(BAD_IMAGE, f"the photo is {w}x{h} = {w * h} pixels, above the limit of "
                                             f"{max_pixels}: {shrink_hint(w, h, max_pixels)}")


# Letterbox bars: border lines whose pixels all lie within BAR_RANGE grey levels of each other, with a mean luma
# <= BAR_MAX_LUMA, ending in a step: within BAR_EDGE_PX lines past them (a video codec's ringing) one has a mean
# luma >= BAR_STEP x BAR_MAX_LUMA (a black studio backdrop fades into dark hair; a bar's edge cuts across the
# picture); the bar and those lines are cut. At most BAR_MAX_FRAC of a side.
BAR_RANGE, BAR_MAX_LUMA, BAR_STEP, BAR_EDGE_PX, BAR_MAX_FRAC = 12, 20.0, 2.5, 3, 0.25


def border_bars(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """Letterbox / pillarbox bars of an [H, W, 3] uint8 photo (a still from a video): the number of uniform dark
    lines at its (top, bottom, left, right) border that end in a step edge (BAR_* above); 0 where there is none.
    A bar seen as part of the photo becomes a black slab on the avatar's chest that moves with it; its edge was
    47 % of lp_d0's frame-0 error (a 27-row bar under the jacket: 32.0 dB)."""
    img = np.asarray(rgb)
    out = []
    for lines in (img, img[::-1], img.transpose(1, 0, 2), img.transpose(1, 0, 2)[::-1]):  # top, bottom, left, right
        limit = int(BAR_MAX_FRAC * len(lines))
        head = lines[:limit + BAR_EDGE_PX + 1]
        rng = head.max(axis=(1, 2)).astype(np.int32) - head.min(axis=(1, 2))
        luma = (head.astype(np.float32) @ LUMA.astype(np.float32)).mean(1)  # [lines] mean luma
        dark = (rng <= BAR_RANGE) & (luma <= BAR_MAX_LUMA)
        n = int(np.argmin(dark)) if not dark.all() else len(dark)
        bright = np.flatnonzero(luma[n:n + BAR_EDGE_PX + 1] >= BAR_STEP * BAR_MAX_LUMA)
        out.append(n + int(bright[0]) if 0 < n <= limit and len(bright) else 0)
    return tuple(out)


def head_roll_deg(landmarks_px: np.ndarray) -> float:
    """The roll of a face in the image, degrees, positive clockwise as displayed: the angle from the image's x axis
    to the head's left-right axis as the image shows it (the sum over landmarks.RIGID_PAIRS of right -> left
    point, as facemesh.fit_head_frame takes its x axis; six pairs from the eye corners to the cheeks and nostrils
    rather than the eye line alone, which an eye's landmarks move). landmarks_px: [478, >=2] image pixels (x
    right, y down). Within +-45 after quarter_turns; 0 for an upright face."""
    p = np.asarray(landmarks_px, np.float64)[:, :2]
    x = sum(p[b] - p[a] for a, b in lmk.RIGID_PAIRS)
    return math.degrees(math.atan2(x[1], x[0]))


# A rotation in an image editor fills the corners it brings in with one colour (black, white): each such corner is a
# right triangle whose legs lie on the photo's border, its hypotenuse at the photo's roll. Taken as the photo, the
# black wedge above business_person rotated -45 deg cut a straight edge into her hair (its matte said: backdrop).
WEDGE_RANGE = 3  # grey levels a wedge's pixels lie within of its corner pixel (a lossless fill; JPEG: ringing)
WEDGE_MIN_PX = 4  # legs shorter than this: no wedge
WEDGE_ANGLE_DEG = 6.0  # its hypotenuse within this of the head's roll (head_roll_deg) or of 90 less it
WEDGE_UNIFORM = 0.97  # share of the triangle's pixels within WEDGE_RANGE of the corner's colour
WEDGE_EDGE_PX = 2  # the triangle taken this much larger along each leg: the fill's antialiased edge


def corner_wedges(rgb: np.ndarray, roll_deg: float) -> np.ndarray:
    """[H, W] bool: the uniform corner triangles of an [H, W, 3] uint8 photo rotated by about roll_deg in an image
    editor (WEDGE_* above): at each corner, the runs of its colour along the two borders are the legs; the triangle
    is a wedge when its hypotenuse's angle matches the roll and nearly all of it is that colour. A dark suit or hair
    reaching a corner is no straight-edged uniform triangle at the head's roll."""
    h, w = rgb.shape[:2]
    img = np.asarray(rgb, np.int16)
    out = np.zeros((h, w), bool)
    for rows, cols in ((slice(None), slice(None)), (slice(None), slice(None, None, -1)),
                       (slice(None, None, -1), slice(None)), (slice(None, None, -1), slice(None, None, -1))):
        view = img[rows, cols]  # this corner at (0, 0)
        same_row = np.all(np.abs(view[0] - view[0, 0]) <= WEDGE_RANGE, axis=1)
        same_col = np.all(np.abs(view[:, 0] - view[0, 0]) <= WEDGE_RANGE, axis=1)
        leg_x = int(np.argmin(same_row)) if not same_row.all() else w
        leg_y = int(np.argmin(same_col)) if not same_col.all() else h
        if min(leg_x, leg_y) < WEDGE_MIN_PX or (leg_x == w and leg_y == h):
            continue
        angle = math.degrees(math.atan2(leg_y, leg_x))
        roll = abs(roll_deg)
        if min(abs(angle - roll), abs(angle - (90.0 - roll))) > WEDGE_ANGLE_DEG:
            continue
        ys, xs = np.mgrid[:min(leg_y, h), :min(leg_x, w)]
        tri = xs / leg_x + ys / leg_y <= 1.0
        patch = view[:tri.shape[0], :tri.shape[1]]
        if np.mean(np.all(np.abs(patch - view[0, 0]) <= WEDGE_RANGE, axis=2)[tri]) < WEDGE_UNIFORM:
            continue
        ey, ex = min(leg_y + WEDGE_EDGE_PX, h), min(leg_x + WEDGE_EDGE_PX, w)
        ys, xs = np.mgrid[:ey, :ex]
        out[rows, cols][:ey, :ex] |= xs / (leg_x + WEDGE_EDGE_PX) + ys / (leg_y + WEDGE_EDGE_PX) <= 1.0
    return out


def fill_outside(rgb: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """[H, W, 3] with each pixel outside `inside` ([H, W] bool) given the colour of the nearest pixel inside (as the
    crop beyond the photo repeats its border): what lies beyond a photo's edge is not the backdrop's black or a
    rotation's fill. The same array when all is inside."""
    if inside.all():
        return rgb
    _, labels = cv2.distanceTransformWithLabels((inside == 0).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(inside)  # label k (1-based) is the k-th inside pixel in row-major order (OpenCV's scan)
    out = rgb.copy()
    out[~inside] = rgb[ys[labels[~inside] - 1], xs[labels[~inside] - 1]]
    return out


def roll_upright(rgb: np.ndarray, roll_deg: float, inside: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[H, W, 3] uint8 photo whose face is rolled by roll_deg (head_roll_deg) -> (the photo turned about its
    centre to make the face upright, on a canvas [H', W', 3] that holds all of it; [H', W'] bool: the canvas
    pixels that are the photo's, of `inside` ([H, W] bool, default all: the photo less its letterbox bars); [2, 3]
    the affine map from canvas pixels back to the photo's). The rest of the canvas takes the colour of the nearest
    pixel inside (fill_outside, as the source camera's crop beyond the photo repeats its border): outside
    FramedPhoto.valid, which the reconstructor takes as the photo's edge, beyond which the person goes on, not as a
    backdrop. Turning about the centre, where
    default_intrinsics puts the principal point, is the camera rolled about its axis: the same focal length."""
    h, w = rgb.shape[:2]
    a = math.radians(roll_deg)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    ww, hh = int(math.ceil(w * c + h * s)), int(math.ceil(w * s + h * c))
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), roll_deg, 1.0)  # positive: counter-clockwise as displayed
    m[:, 2] += ((ww - w) / 2.0, (hh - h) / 2.0)
    # (cv2's pixel centres are at integers: the map of centres at + 0.5 is the same rotation about the same point)
    canvas = cv2.warpAffine(rgb, m, (ww, hh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = np.full((h, w), 255, np.uint8) if inside is None else np.asarray(inside, np.uint8) * 255
    inside = cv2.warpAffine(mask, m, (ww, hh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0) >= 128
    return fill_outside(canvas, inside), inside, cv2.invertAffineTransform(m)


def frame_photo(rgb: np.ndarray, facemesh, cfg: FramingConfig, log_level: int = logging.INFO) -> FramedPhoto:
    """[H, W, 3] uint8 photo -> FramedPhoto, or ReconstructionError saying why the photo cannot be used. With
    cfg.trim_bars the photo's letterbox / pillarbox bars (border_bars) lie outside it (`valid` False, the crop
    repeats the picture's last line there); the head frame is fitted in the whole image, as a tracker sees it.
    With cfg.upright a photo whose largest face lies on its side is turned upright first by whole quarter turns
    (quarter_turns; lossless), and one whose face is upside down by half a turn (FaceMesh.upside_down), then one whose
    head is still rolled more than cfg.roll_upright_deg (head_roll_deg) by that angle on a larger canvas (roll_upright:
    the canvas beyond the photo is outside `valid`), with a warning. Each of these (bars found, a roll turned upright)
    is logged at `log_level` and kept in the FramedPhoto (`bars`, `upright_deg`): a clip's data preparation frames
    every frame at DEBUG and says them once per clip (core.train.data.prepare_clip: a line a frame, ~1.5M on VFHQ)."""
    check_image(rgb, cfg.max_pixels)
    h0, w0 = rgb.shape[:2]
    shrink = min(1.0, cfg.max_side / max(h0, w0))
    work = rgb if shrink >= 1.0 else cv2.resize(
        rgb, (max(1, round(w0 * shrink)), max(1, round(h0 * shrink))), interpolation=cv2.INTER_AREA)
    shrink = work.shape[1] / w0
    faces = facemesh.detect(np.ascontiguousarray(work))
    first = 0  # half a turn made before the mesh found a face: one upside down it finds nowhere (lp_d8_man_glasses)
    if not faces and cfg.upright:
        faces = facemesh.detect(np.ascontiguousarray(np.rot90(work, 2)))
        first, work = (2, np.ascontiguousarray(np.rot90(work, 2))) if faces else (0, work)
    if not faces:
        scaled = "" if shrink >= 1.0 else (  # a 20000x600 strip's face, 115 px wide, was searched 12 px wide
            f" (a {w0}x{h0} photo is searched at {work.shape[1]}x{work.shape[0]}, max_side {cfg.max_side}: a face in "
            f"it is {shrink:.2g} of its size there; crop the photo around the face)")
        raise ReconstructionError(NO_FACE, f"no face found in the photo{scaled}; use a well-lit photo of one person "
                                           f"facing the camera")
    warnings = []
    turns = quarter_turns(faces[0].landmarks_px) if cfg.upright else 0
    if cfg.upright and not turns and not first and facemesh.upside_down(work):
        turns = 2
    if turns:
        work = np.ascontiguousarray(np.rot90(work, turns))
        faces = facemesh.detect(work)
        if not faces:
            raise ReconstructionError(NO_FACE, "no face found in the photo turned upright; use an upright photo "
                                               "of one person facing the camera")
    turns = (turns + first) % 4
    K = default_intrinsics(work.shape[1], work.shape[0], cfg.fov_deg)  # the photo's (as turned by quarter turns)
    photo_size, bars, inside, to_photo = (work.shape[1], work.shape[0]), (0, 0, 0, 0), None, None
    roll = head_roll_deg(faces[0].landmarks_px) if cfg.upright else 0.0
    if abs(roll) > cfg.roll_upright_deg:  # turned by its roll, on a canvas: its bars found before, on its own lines
        bars = border_bars(work) if cfg.trim_bars else bars
        inside = _inside_bars(work.shape[:2], bars)
        if cfg.trim_bars:
            inside &= ~corner_wedges(work, roll)
        work, inside, to_photo = roll_upright(work, roll, inside)
        K[:2, 2] = work.shape[1] / 2.0, work.shape[0] / 2.0  # the same camera, rolled about its axis
        faces = facemesh.detect(work)
        if not faces:
            raise ReconstructionError(NO_FACE, "no face found in the photo turned upright; use an upright photo "
                                               "of one person facing the camera")
        log.log(log_level, "photo: the head is rolled %.1f deg: turned upright on a %dx%d canvas", roll,
                *work.shape[1::-1])
    rolled = (f"{abs(roll):.0f} deg {'counter-clockwise' if roll > 0 else 'clockwise'}" if to_photo is not None
              else "")  # (cv2's positive angle, a head rolled clockwise as displayed turned back counter-clockwise)
    if turns:  # one warning for both turns
        turned = ("a quarter turn counter-clockwise", "half a turn", "a quarter turn clockwise")[turns - 1]
        # the tag, when there was one, was applied before (imageio): a file whose tag does not match its pixels lands
        # here too, and was said to have none (user54)
        warnings.append(f"the head lies {'upside down' if turns == 2 else 'on its side'} in the photo (stored turned, "
                        "without an EXIF orientation, or with an EXIF orientation that does not match its pixels (an "
                        f"editor turned them and kept the camera's tag)): the photo was turned {turned}"
                        f"{' and ' + rolled if rolled else ''} to make it upright")
    elif rolled:
        warnings.append(f"the head is rolled {abs(roll):.0f} deg in the photo (a camera held crooked, or the head "
                        f"tilted): the photo was turned {rolled} to make the head upright (shoulders that were "
                        "straight lean by as much in the avatar)")
    face = faces[0]  # largest first
    width = face.width / shrink
    if len(faces) > 1:
        warnings.append(f"{len(faces)} faces found, used the largest ({width:.0f} px wide)")
    if width < cfg.min_face_px:
        # floored: rounded, a face 59.7 px wide was said to be '60 px wide, below the minimum of 60 px'
        raise ReconstructionError(FACE_TOO_SMALL, f"the face is {math.floor(width)} px wide, below the minimum of "
                                                  f"{cfg.min_face_px:g} px; use a closer or larger photo")
    hw, ww = work.shape[:2]
    try:
        fit = fit_head_frame(face.landmarks_px, K)
    except ValueError as e:
        raise ReconstructionError(NO_FACE, f"the face landmarks are unusable: {e}") from e
    euler = euler_deg(matrix_to_quat(fit.rotation))
    if abs(euler["yaw"]) > cfg.max_yaw_deg:
        raise ReconstructionError(HEAD_TURNED_TOO_FAR, f"the head is turned {abs(euler['yaw']):.0f} deg to the side, "
                                                       f"more than {cfg.max_yaw_deg:.0f}; use a more frontal photo")
    if abs(euler["pitch"]) > cfg.max_pitch_deg:
        raise ReconstructionError(HEAD_TURNED_TOO_FAR, f"the head is tilted {abs(euler['pitch']):.0f} deg up or down, "
                                                       f"more than {cfg.max_pitch_deg:.0f}; use a more frontal photo")
    if abs(euler["yaw"]) > cfg.warn_yaw_deg:
        warnings.append(f"the head is turned {abs(euler['yaw']):.0f} deg to the side (more than {cfg.warn_yaw_deg:.0f}): "
                        "the side the photo hides is filled in from the side it shows, with seams across that cheek "
                        "when the avatar faces the display; a frontal photo gives a better avatar")
    if to_photo is None:
        bars = border_bars(work) if cfg.trim_bars else (0, 0, 0, 0)
        work = _fill_bars(work, bars)
        if any(bars):
            log.log(log_level, "photo: letterbox bars outside the picture (top %d, bottom %d, left %d, right %d px)",
                    *bars)
    top, bottom, left, right = bars
    # the cut-off check in the photo's own pixels (less its bars): a rolled photo's edges are not the canvas's
    warnings += check_cut_off(face.landmarks_px, fit, photo_size[0] - left - right, photo_size[1] - top - bottom, cfg,
                              to_photo=_then_shift(to_photo, -left, -top))
    if to_photo is not None:
        top = bottom = left = right = 0  # (the canvas: its `inside` says where the photo is)
    warnings += check_colour(work, face.landmarks_px)
    warnings += check_eyes(work, face.landmarks_px)
    # The crop: `crop_m` metres at the head's depth, centred on a point of the head frame. MediaPipe's
    # landmarks are a weak-perspective reconstruction, so the crop is placed with that model
    # (pixel = origin + rotated point / metres_per_pixel) and the source camera is a long lens on
    # the crop's axis, under which the landmark shape is (nearly) undistorted.
    m_pp = fit.metres_per_pixel
    origin = 0.5 * (face.landmarks_px[lmk.CHEEK_R, :2] + face.landmarks_px[lmk.CHEEK_L, :2]).astype(np.float64)  # the head origin
    centre = origin + (fit.rotation @ np.array([cfg.crop_center_m[0], cfg.crop_center_m[1], 0.0]))[:2] / m_pp
    side = cfg.crop_m / m_pp  # work pixels
    s = cfg.size / side
    if s > LOW_RES_UPSAMPLE:
        warnings.append(f"the face is {width:.0f} px wide: the avatar is made from this photo enlarged {s:.1f}x, so "
                        f"its detail is soft and its hair's outline may be ragged; a photo with the face "
                        f"{SHARP_FACE_PX} px wide or more gives a sharper avatar")
    x0, y0 = centre[0] - side / 2, centre[1] - side / 2
    photo = _crop(work, x0, y0, s, cfg.size)
    f = 0.5 * cfg.size / math.tan(math.radians(cfg.source_fov_deg) / 2)
    Kc = np.array([[f, 0, cfg.size / 2], [0, f, cfg.size / 2], [0, 0, 1]])
    lm = face.landmarks_px.astype(np.float64)
    lm_c = np.stack([(lm[:, 0] - x0) * s, (lm[:, 1] - y0) * s, lm[:, 2] * s], 1)
    depth = f * m_pp / s  # of the head origin: there one crop pixel is m_pp / s metres
    o_c = (origin - [x0, y0]) * s
    t = np.array([(o_c[0] - Kc[0, 2]) * depth / f, (o_c[1] - Kc[1, 2]) * depth / f, depth])
    # Back-project each landmark along its pixel ray to the depth the head fit gives it, so the template
    # projects exactly onto the photo's landmarks (the shape differs from fit.canonical by a few mm).
    z = fit.canonical.astype(np.float64) @ fit.rotation[2] + depth
    cam = np.stack([(lm_c[:, 0] - Kc[0, 2]) / f * z, (lm_c[:, 1] - Kc[1, 2]) / f * z, z], 1)
    # The fitted rotation is the face as it looks, i.e. relative to the line of sight to the head (the
    # crop's axis passes crop_center_m beside it): the camera sees it turned by that line's angle too, as
    # every renderer placing a tracked head at its translation does (control.line_of_sight_rotation).
    rot = line_of_sight_rotation(t) @ fit.rotation
    vertices = (cam - t) @ rot  # R^T (X - t)
    viewmat = np.eye(4)
    viewmat[:3, :3], viewmat[:3, 3] = rot, t
    log.debug("framed face %.0f px wide, yaw %.1f pitch %.1f, crop %.0f px -> %d", width, euler["yaw"],
              euler["pitch"], side / shrink, cfg.size)
    centres = (np.arange(cfg.size) + 0.5) / s
    valid = (((centres + y0 >= top) & (centres + y0 <= hw - bottom))[:, None]
             & ((centres + x0 >= left) & (centres + x0 <= ww - right))[None, :])
    if inside is not None:
        valid &= _crop(inside.astype(np.uint8) * 255, x0, y0, s, cfg.size) >= 128
    others = [np.stack([(o.landmarks_px[:, 0] - x0) * s, (o.landmarks_px[:, 1] - y0) * s, o.landmarks_px[:, 2] * s],
                       1).astype(np.float32) for o in faces[1:]]
    return FramedPhoto(photo, Kc, viewmat, lm_c.astype(np.float32), vertices.astype(np.float32), fit, euler,
                       float(width), len(faces), warnings, valid, others, source_px=side / cfg.size,
                       bars=tuple(int(b) for b in bars), upright_deg=float(roll) if to_photo is not None else 0.0)


def _fill_bars(rgb: np.ndarray, bars: tuple[int, int, int, int]) -> np.ndarray:
    """[H, W, 3] with its letterbox bars (top, bottom, left, right lines; border_bars) repeating the picture's last
    line (the same array when there are none)."""
    top, bottom, left, right = bars
    if not any(bars):
        return rgb
    hw, ww = rgb.shape[:2]
    out = rgb.copy()
    out[:top], out[hw - bottom:] = out[top], out[hw - bottom - 1]
    out[:, :left], out[:, ww - right:] = out[:, left:left + 1], out[:, ww - right - 1:ww - right]
    return out


def _inside_bars(shape: tuple[int, int], bars: tuple[int, int, int, int]) -> np.ndarray:
    """[H, W] bool: the picture between the letterbox bars (top, bottom, left, right lines) of an H x W photo."""
    top, bottom, left, right = bars
    inside = np.zeros(shape, bool)
    inside[top:shape[0] - bottom, left:shape[1] - right] = True
    return inside


def _then_shift(affine: np.ndarray | None, dx: float, dy: float) -> np.ndarray:
    """[2, 3] affine map (None: the identity) followed by a shift of (dx, dy) pixels."""
    out = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) if affine is None else np.array(affine, np.float64)
    out[:, 2] += (dx, dy)
    return out


def check_cut_off(landmarks_px: np.ndarray, fit: HeadFit, width: int, height: int, cfg: FramingConfig,
                  to_photo: np.ndarray | None = None) -> list[str]:
    """A face cut by the photo's frame: raise ReconstructionError(FACE_CUT_OFF) when the chin or the forehead
    is outside the photo (MediaPipe places landmarks beyond the edges: it would make a chin-less or
    browless head); return a warning when only the top of the skull is (the scalp above the edge is flat).

    landmarks_px: [478, 3] in the pixels the head was fitted in (x right, y down); to_photo: [2, 3] the affine
    map from those to the photo's (None: they are the photo's: a photo turned by its roll is fitted on a canvas);
    width, height: the photo's size. The top of the skull is `scalp_above_forehead_m` above the forehead point
    along the head's up axis."""
    lm = np.asarray(landmarks_px, np.float64)
    if to_photo is not None:
        lm = np.concatenate([lm[:, :2] @ np.asarray(to_photo)[:, :2].T + np.asarray(to_photo)[:, 2], lm[:, 2:]], 1)
    face_h = float(np.linalg.norm(lm[lmk.CHIN, :2] - lm[lmk.FOREHEAD, :2]))
    margin = cfg.cut_margin * face_h
    edges = {"bottom": lambda p: p[1] > height - margin, "top": lambda p: p[1] < margin,
             "left": lambda p: p[0] < margin, "right": lambda p: p[0] > width - margin}
    for name, point in (("chin", lmk.CHIN), ("forehead", lmk.FOREHEAD)):
        cut = [e for e, outside in edges.items() if outside(lm[point, :2])]
        if cut:
            raise ReconstructionError(FACE_CUT_OFF, f"the {name} is cut off by the {cut[0]} of the photo; use a photo "
                                                    "that shows the whole head with some space around it")
    up = fit.rotation @ np.array([0.0, -cfg.scalp_above_forehead_m, 0.0]) / fit.metres_per_pixel  # pixels
    up = up[:2] if to_photo is None else np.asarray(to_photo)[:, :2] @ up[:2]
    top = lm[lmk.FOREHEAD, :2] + up
    if top[1] < 0 or not 0 <= top[0] <= width:
        missing_cm = 100 * fit.metres_per_pixel * max(-top[1], -top[0], top[0] - width, 0.0)
        return [f"the top of the head is cut off by the photo's frame (about {missing_cm:.0f} cm of it): the avatar's "
                "scalp is flat there; a photo with some space above the hair avoids it"]
    return []


def _face_box(landmarks_px: np.ndarray) -> tuple[slice, slice]:
    """The landmarks' bounding box in the photo (landmarks_px [478, >=2], pixels) as (rows, cols) slices, its
    top-left clipped to the photo (the bottom-right is clipped by slicing)."""
    lm = np.asarray(landmarks_px, np.float64)[:, :2]
    x0, y0 = np.floor(np.maximum(lm.min(0), 0)).astype(int)
    x1, y1 = np.ceil(lm.max(0)).astype(int) + 1
    return slice(y0, y1), slice(x0, x1)


GREY_CHROMA = 4.0  # mean max(R, G, B) - min(R, G, B) over the face below this (of 255): a black-and-white photo.
# Measured on the face's box: ../shared colour portraits 20-100 (business_person's pale skin the lowest); a
# greyscale JPEG/PNG 0, one saved as 3-channel JPEG <= 2.
DARK_FACE_LUMA = 45.0  # mean luma (0.299 R + 0.587 G + 0.114 B, of 255) over the face's box below this: a dark photo.
# Measured (s22, user22): the 9 ../shared portraits 87 (lp_d8_man_glasses, the dimmest) .. 186, frames of the 4 clips
# 118-138; obama_official at 12 % brightness 17, with its face at 0.2 x in a blown-out backlight 32.
SWAPPED_RB = -20.0  # median R - B over the face below this (of 255): red and blue swapped. Skin is redder than it is
# blue: the 9 ../shared portraits and frames of the 4 clips (21 faces) +38..+96, the same with R and B swapped -38..-96.


def check_colour(rgb: np.ndarray, landmarks_px: np.ndarray) -> list[str]:
    """Warnings about the colours of the face in the [H, W, 3] uint8 photo, over its landmark box, else []:
    - no colour (a black-and-white or greyscale photo: mean chroma max(R,G,B) - min(R,G,B) below GREY_CHROMA);
    - red and blue swapped (median R - B below SWAPPED_RB: a blue face): BGR pixels sent as rgb8 or RGB ones as
      bgr8, the commonest mistake with ROS images (OpenCV's are BGR); a raw photo sent so was accepted without a
      word and made a blue avatar (user13, s13);
    - a dark face (mean luma below DARK_FACE_LUMA: a dim room, a face against a bright window): the avatar is as
      dark on the display; such a photo was accepted without a word (user22, s22).
    The avatar takes its colours from the photo as given; the node still builds it."""
    box = np.asarray(rgb[_face_box(landmarks_px)], np.int16)
    if box.size == 0:
        return []
    luma = float((box @ LUMA).mean())
    dark = [f"the face is dark (mean brightness {luma:.0f} of 255): the avatar is as dark on the display; use a photo "
            "with light on the face (not against a bright window)"] if luma < DARK_FACE_LUMA else []
    if float((box.max(2) - box.min(2)).mean()) < GREY_CHROMA:
        return ["the photo has no colour (black and white): the avatar is grey too; use a colour photo for a coloured face",
                *dark]
    rb = float(np.median(box[..., 0] - box[..., 2]))
    if rb < SWAPPED_RB:
        return [f"the face is blue (its median red minus blue is {rb:.0f}): the photo's red and blue look swapped "
                f"(BGR pixels sent as rgb8, or RGB ones as bgr8; OpenCV's images are BGR); the avatar is blue too", *dark]
    return dark


EYES_HIDDEN = 0.4  # an eye opening whose brightest tenth (90th percentile luma) is under this x the face's median
# luma shows no sclera: dark glasses or a deep shade. The ../shared portraits read 0.64-1.50 (lp_d8_man_glasses'
# right eye behind its clear glasses the least, trump_official 0.66), obama_official with black lenses drawn over
# his eyes 0.13 / 0.13, a posterised cartoon of him 0.19 / 0.67 (user25, s25): both eyes must be under it.


def check_eyes(rgb: np.ndarray, landmarks_px: np.ndarray) -> list[str]:
    """A warning when neither eye shows its white in the [H, W, 3] uint8 photo (landmarks_px [478, >=2], photo
    pixels), else []: each eye opening (the convex hull of lmk.EYE_CONTOUR_R / _L) has its 90th percentile luma under
    EYES_HIDDEN x the median luma over the face's landmark box. Sunglasses were taken without a word: the avatar wore
    them painted on its eyeballs, and the driven blinks and gaze moved black lenses (user25, s25)."""
    rows, cols = _face_box(landmarks_px)
    luma = np.asarray(rgb[rows, cols], np.float32) @ LUMA  # the eye openings lie inside the face's box
    lm = np.asarray(landmarks_px, np.float64)[:, :2]
    face = float(np.median(luma)) if luma.size else 0.0
    if face <= 0:
        return []
    ratios = []
    for contour in (lmk.EYE_CONTOUR_R, lmk.EYE_CONTOUR_L):
        mask = np.zeros(luma.shape, np.uint8)
        hull = cv2.convexHull((np.round(lm[list(contour)]) - [cols.start, rows.start]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
        inside = luma[mask > 0]
        if inside.size == 0:
            return []
        ratios.append(float(np.percentile(inside, 90)) / face)
    if max(ratios) >= EYES_HIDDEN:
        return []
    return [f"the eyes are hidden (dark glasses, or a deep shade: the eye openings are at most {100 * max(ratios):.0f} % "
            "as bright as the face, no white shows): the avatar's eyes are as dark, and its blinks and gaze move that; "
            "use a photo with the eyes visible"]


def _crop(img: np.ndarray, x0: float, y0: float, s: float, size: int) -> np.ndarray:
    """The square [x0, x0 + size / s) x [y0, ...) of img (continuous coordinates) resampled to size x size;
    parts outside the photo repeat its border."""
    k = max(1, int(math.floor(1.0 / s))) if s < 0.5 else 1
    src = img
    sx = sy = 1.0
    if k > 1:  # shrink by area first so the bilinear warp does not alias
        src = cv2.resize(img, (max(1, img.shape[1] // k), max(1, img.shape[0] // k)), interpolation=cv2.INTER_AREA)
        sx, sy = src.shape[1] / img.shape[1], src.shape[0] / img.shape[0]
    # dst_index = (s / sx) * (src_index + 0.5) - s * x0 - 0.5 (pixel centres at integer + 0.5)
    m = np.array([[s / sx, 0, 0.5 * s / sx - s * x0 - 0.5], [0, s / sy, 0.5 * s / sy - s * y0 - 0.5]])
    return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
