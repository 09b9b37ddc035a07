"""Operator camera frames -> FaceControl (head pose + expression), with smoothing and a neutral face.

Per frame: MediaPipe finds the faces (the face mesh bundled in the wheel by default; a FaceLandmarker
`.task` model when one is given, which adds the 52 ARKit blendshapes), the operator is picked among
them, and the landmarks are turned into the shared head frame:

- pose: a similarity Procrustes fit of the rigid landmarks (eye corners, cheekbones, temples, nose
  line; `landmarks.RIGID_LANDMARKS`) of the frame onto the operator's neutral canonical face gives the
  rotation (head -> camera) and the scale, hence the depth through the pinhole camera K (a plausible
  default camera when K is unknown). On the first frame (or after `recalibrate()`) the neutral is
  that frame's own head frame (`facemesh.fit_head_frame`) with its mouth expression taken out.
  The fit weighs each rigid landmark by how still this stream shows it against the neutral (`RigidityWeights`:
  1 / its running mean square stray, 1 s; equal weights when the neutral starts): in MediaPipe's mesh some
  "rigid" points move with the face and the turn, and which ones depends on the operator (lp_d0's smile lifts
  the nose wings 98/327 1.1-1.2 mm per sd of the reader's jaw; on lp_d18 the outline and forehead points move
  with the jaw drop and the fitted pitch followed the jaw at r -0.90, the reader's own pitch at -0.76). On the
  ../shared clips (60 frames, fov 12) the tracker's pitch against the reader's: lp_d18 r 0.904 -> 0.967, lp_d0
  0.477 -> 0.456, sadtalker 0.996, tpsmm 0.974 -> 0.972; the nose's head-frame stray 0.39 -> 0.28 mm (lp_d18).
- landmarks: the frame's landmarks in the head frame with pose and scale removed by that same fit,
  so rigid motion does not leak into the expression.
- expression: landmarks minus the operator's neutral face. The first frames are not assumed neutral
  (an operator may start mid-sentence): the neutral starts as the first frame with its mouth expression
  taken out (`core.expression.neutralize`, the same rule the reconstructor applies to its photo, so
  the control of a photo's own frame re-applies exactly what the avatar was built without), then
  follows a running average of every frame's `neutralize` weighted by how relaxed the frame's mouth is
  (its eyes by how near the operator's widest its lids are open, re-judged as the stream goes:
  `core.expression.OpenLidAverage`), forgetting over `neutral_window_s` (`core.expression.NeutralEstimator`). It counts as
  calibrated after `neutral_frames` frames; `recalibrate()` starts a new one. Both are in metres of a
  canonical head whose outer eye corners are 0.09 m apart, so the displacements fit another person's
  template of the same scale: the first frame's span (the photo's rule, `facemesh.fit_head_frame`), unless its
  lids were shut (a blink moves MediaPipe's eye corners): then the span of the operator's open frames, over the
  rigid landmarks' spread (`FaceTracker._open_eye_scale`; a stream started mid-blink was 3.5-6 % smaller for the
  whole session, sadtalker from frame 24: every later expression 6 % smaller, the mouth 3.4 mm narrower).
- mouth_open: (inner-lip gap + JAW_WEIGHT x the jaw's drop below neutral) / inter-ocular distance.
  The lip gap alone misses a jaw that opens behind nearly closed lips and counts parted lips of a
  smile as an open mouth; the jaw term makes it follow the jaw (MediaPipe's jawOpen).
- a One Euro filter on rotation, translation, landmarks, mouth_open and blendshapes.
- eyelid ratios (what the avatar's lids follow): from the frame's own landmarks (before the landmark filter)
  as the image shows the lids, against the neutral laid flat and turned by the frame's pose
  (`deform.seen_eyelid_ratios`) and seen from the front, over the operator's open lids in the same terms: their
  average over the frames whose lids are open as wide as this operator's usually are (`expression.OpenLidAverage`,
  judged against the history as it is now; reset with the neutral). The first frame alone reads 1 exactly (the
  photo's own control keeps its lids); when that first frame stayed the 1 for the whole session, a stream started
  mid-blink (sadtalker frame 24) read its lids 1.12-1.24 x a stream started at frame 0 on the same frames, now
  1.01-1.08 (1.02 after 2 s). The pose-free 3D gap (`deform.eyelid_ratios`) read a head tilted back with the eyes on the
  camera as closing lids (sadtalker 0.78 where the picture shows 0.96). Filtered in two parts: their mean over both eyes (a blink
  closes both) by a One Euro filter that follows a lid closing in 2-3 frames (`lid_filter`), and each
  pair's difference from it (the landmarks' lid noise, independent between the eyes: frame-to-frame
  changes of the two eyes' ratios at rest correlate -0.15..0.10 on the ../shared clips) by a steadier one
  (`lid_shape_filter`). Taken from the filtered landmarks (a 1 Hz speed estimate) they trailed the frame's
  own ratios by 0.40-0.60 frames around blinks and stayed open: tpsmm's first blink 0.34 / 0.45 at the
  closed frame where the landmarks give 0.20 / 0.48, 0.52 / 0.58 a frame into the reopening where they give
  0.71 / 0.77; the render trailed the driver by about a frame (the reader's blink r rose when shifted one).
  Before filtering they are taken net of the look down since the neutral (`deform.net_lid_ratios`): the
  avatar's lid-eye coupling lowers its lids with its eyes by itself, and the operator's lids following their
  look down were otherwise counted twice.

The operator: the face scoring best on size x centrality; after that the face nearest the previous
operator keeps the role unless another scores `switch_ratio` times better (then a warning says so and
`operator_switches` counts it: the caller re-calibrates the neutral face). A lone face a frame after the
operator's that is not where the operator was (SAME_FACE_MOVE, SAME_FACE_SCALE) is counted and said the same way:
another person in front of the camera, covering the operator or in their place. A small operator (narrower
than SMALL_FACE of the frame) is followed in a crop around its last position, which skips the slow
full-frame search for small faces (facemesh's detector + tiles) while it stays in view.

Time: `process` takes the frame's stamp. A frame not newer than the last one is ignored (None is
returned) unless it is more than `restart_after_s` older, which is read as a new stream (a looped
video, a restarted bag): the temporal state is reset and the frame processed. Frames more than
`max_gap_s` apart, or a face that was lost, restart the filters (no smoothing across a gap).

No face: face_detected=False, confidence 0, and the last pose and expression held (rest before any).
A region of the face out of view (core/face_regions.py: the lower face cut by the frame or under a hand, the eyes or
the brows above the frame's top as the operator sits close or stands up, either by a side edge): confidence lowered
below 0.5, its expression (mouth and jaw; lids and gaze; brows) held and faded to neutral, the head's turn and distance
(translation z) held while the eyes are out (the mouth and jaw follow on while the lips, chin and nose are in the
picture), handed back smoothly when it returns; `regions_out` says which regions are held and why. The open lids'
level keeps learning while the eyes are in view (an operator framed tight, the brows cut from the start).
"""

from __future__ import annotations

import logging
import math
import os
import zipfile
from dataclasses import dataclass, replace

import numpy as np

from gaussian_head_ros.core.control import FaceControl, matrix_to_quat
from gaussian_head_ros.core import deform, eyes
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.expression import NeutralEstimator, OpenLidAverage
from gaussian_head_ros.core.face_regions import FaceRegionMonitor
from gaussian_head_ros.core.files import TASK, TFLITE, file_kind, shown
from gaussian_head_ros.core.facemesh import FaceMesh, crop_padded, default_intrinsics, fit_head_frame, quarter_turns
from gaussian_head_ros.core.filters import OneEuroConfig, OneEuroFilter, QuaternionFilter
from gaussian_head_ros.core.iris import outline_landmarks
from gaussian_head_ros.core.native_log import quiet_notices
from gaussian_head_ros.core.settings import check_settings, setting

log = logging.getLogger(__name__)

LIP_GAP = (lmk.UPPER_LIP_IN, lmk.LOWER_LIP_IN)  # inner upper lip, inner lower lip (centre)
JAW_POINT, NOSE_TIP = lmk.BELOW_LOWER_LIP, lmk.NOSE_TIP  # moves with the jaw; rigid with the skull
EYE_CORNERS = lmk.EYE_CORNERS  # outer and inner corners of each eye
JAW_WEIGHT = 2.0
RIGID = np.asarray(lmk.RIGID_LANDMARKS)
# The pose fit's weights (`RigidityWeights`): each rigid landmark's mean square stray from the neutral (mm^2) at the
# start, the floor added to it (the face mesh's jitter at rest: ~0.2 mm a point), and the running mean's time constant
RIGIDITY_START_MM2, RIGIDITY_FLOOR_MM2, RIGIDITY_TAU_S = 0.5, 0.05, 1.0
SMALL_FACE = 0.15  # a face narrower than this fraction of the frame's longer side is followed in a crop
# A lone face found a frame after the operator, SAME_FACE_MOVE of the operator's face width from where it was or
# SAME_FACE_SCALE times wider or narrower, is another person: a head does not move or scale that much in a frame. The
# four ../shared clips tracked (30 fps stamps): the box centre moves at most 0.057 of the face's width between frames
# (tpsmm_driving; lp_d0 0.007, lp_d18 0.017, sadtalker 0.037), its width changes at most 1.027 x (session 51).
SAME_FACE_MOVE = 0.75
SAME_FACE_SCALE = 1.3
# Frames of a new size whose aspect ratio is within this (|log| of the ratio of the two scale factors) show the same
# view scaled (FaceTracker._rescale_to): 0.02 takes rounding to even sizes (max_side 240 of 1280x720: 240x135 or 136)
SAME_VIEW_ASPECT = 0.02
ROI_SIDE, ROI_SIZE = 2.5, 256  # that crop's side in face sizes, and the size it is scaled to (pixels)

# Filter units (see filters.py): how much of each signal counts as one unit of speed for beta.
UNIT_RADIAN, UNIT_METRE, UNIT_MOUTH, UNIT_BLENDSHAPE = 0.5, 0.05, 0.5, 1.0
# How far below the operator's usual widest (the 90th percentile) a frame's lids may be open and still count in the
# eyelid ratios' open level (`OpenLidAverage`), in log units of the picture's gap / eye width (a relative shortfall;
# the neutral eyes' 1.5 mm of a ~10 mm 3D gap is 0.15)
LID_LEVEL_SCALE = 0.15
# A first frame's lids this far (log units, twice LID_LEVEL_SCALE: 0.74 of the widest) below the operator's usual
# widest keep its eye span for the head frame's scale; twice as far, the open frames' (`FaceTracker._open_eye_scale`)
OPEN_FIRST_SHORTFALL = 0.3
UNIT_LID = 1.0  # eyelid ratio (1 = the neutral gap; a blink runs 1 -> ~0.2 -> 1 in ~0.2-0.3 s)


# `fused_lid_ratios`: below OUTLINE_OPEN[0] (eyelid ratio units) the smaller of the mesh's and the outline's ratio
# counts, from OUTLINE_OPEN[1] up OUTLINE_SHARE of the outline's with the rest the mesh's, smoothly between; all that
# while the eyes look within SIDE_LOOK_RAD[0] of straight ahead (both eyes' mean yaw), the mesh's alone beyond
# SIDE_LOOK_RAD[1] (rad), smoothly between
OUTLINE_OPEN = (0.8, 1.0)
OUTLINE_SHARE = 0.5
SIDE_LOOK_RAD = (0.2, 0.4)
# the outline moves a ratio off the mesh's only by what its change exceeds OUTLINE_DEADBAND by (eyelid ratio units)
OUTLINE_DEADBAND = 0.03


def fused_lid_ratios(mesh_ratios: np.ndarray, outline_ratios: np.ndarray, eye_yaw_rad: np.ndarray) -> np.ndarray:
    """The eyelid ratios the tracker sends, [14] (lid pairs as deform.LID_UPPER / LID_LOWER; 1 = the operator's open
    level), from mesh_ratios [14] (the face mesh's lid points) and outline_ratios [14] (the iris model's eye outline,
    core/iris.py), each over its own open level (`deform.seen_eyelid_ratios`), and eye_yaw_rad [2] each eye's yaw
    (rad, against the operator's neutral eye openings: the tracker's gaze, `eyes.operator_gaze`).

    The two are two readings of the same lids, and their average follows the operator's better than either
    (centre pairs' gap over the eye's width in the picture against the reader's blink on the driver, FaceLandmarker,
    the acceptance reader, whole ../shared clips tpsmm / sadtalker / lp_d18, r: mesh -0.807 / -0.911 / -0.844,
    outline -0.930 / -0.923 / -0.869, mean -0.893 / -0.925 / -0.876; each over its 90th percentile). The outline shows
    wide eyes the mesh misses (tpsmm frames 128-147: the reader 1.2-1.4 x frame 0's gap, the outline 1.22-1.24, the
    mesh 0.96-1.16; lids63, session 63), but it does not close: in a blink it stops at ~0.55 of its open gap where the
    mesh's reaches ~0.23 (tpsmm), so below OUTLINE_OPEN the smaller of the two counts and a closing lid closes fully.
    The outline alone above OUTLINE_OPEN (OUTLINE_SHARE 1) reopened tpsmm's lids two frames before the reader did
    (frames 23-24, the reader's blink 0.60 / 0.53 of 0.75 at the peak) and missed the wide eyes at 44-56 on its right
    eye: tpsmm's first 60 frames' blink on the avatars 0.891 -> 0.871 (six avatars), where the average keeps 0.892.
    It reads side looks as closing lids (lp_d0, whose eyes turn 0.5-0.7 rad for most of the clip: r -0.708 against
    the mesh's -0.791), so beyond SIDE_LOOK_RAD the mesh's counts alone (gazeblink63, session 63: in a far side look
    MediaPipe's lid points tilt). Both eyes' mean yaw: each eye's own rest yaw is off straight ahead by up to 0.2 rad
    (lp_d0 -0.15 / +0.21) where their mean is 0.03; the neutral's own drifts with an operator who looks aside most
    of the time. Equal inputs give them back exactly.

    The outline's change to each mesh ratio is shrunk by OUTLINE_DEADBAND towards 0 (a soft threshold): on open
    eyes the two readings differ by a few hundredths from frame to frame (lp_d18's first 60 frames, where the
    operator does not blink: 0.02-0.06), and the acceptance reader reads such lid changes on the avatars as gaze
    and brow (the living-face table's first 60 frames, lp_d18's ten pairs, gaze_h / brow r: mesh 0.676 / 0.508,
    without the deadband 0.662 / 0.486, with 0.03 0.675 / 0.505; lids65, session 65), while a blink's or a
    reopening's change (0.1-0.4) passes less 0.03."""
    m = np.asarray(mesh_ratios, np.float64).reshape(-1)
    o = np.asarray(outline_ratios, np.float64).reshape(-1)
    w_open = deform.smoothstep(OUTLINE_OPEN[0], OUTLINE_OPEN[1], o)
    change = w_open * (OUTLINE_SHARE * o + (1.0 - OUTLINE_SHARE) * m) + (1.0 - w_open) * np.minimum(m, o) - m
    change = np.sign(change) * np.maximum(np.abs(change) - OUTLINE_DEADBAND, 0.0)
    yaw = abs(float(np.mean(np.asarray(eye_yaw_rad, np.float64))))
    w_front = 1.0 - float(deform.smoothstep(SIDE_LOOK_RAD[0], SIDE_LOOK_RAD[1], yaw))
    return m + w_front * change


def no_face_note(frames: int, found: int, source: str, first_missing_s: float | None = None) -> str | None:
    """A sentence for the person who tracked `frames` frames of `source` and found a face in `found` of them: how many
    frames had none (and the time of the first, `first_missing_s`), and what those frames' controls do; None when
    every frame had a face. `gaussian-head track` on a clip with no face in it wrote a 'no face' line for every frame
    (head pose zero, no expression) and said only 'face found in 0 (0.0%)' beside its timing."""
    missing = frames - found
    if frames <= 0 or missing <= 0:
        return None
    if found == 0:
        return (f"no face was found in any of the {frames} frames of {source}: every control says face_detected false "
                f"and drives nothing (the avatar stays at rest); use a clip in which the operator's face is visible "
                f"and lit")
    when = f", the first at {first_missing_s:.2f} s" if first_missing_s is not None else ""
    return (f"no face in {missing} of the {frames} frames of {source} ({100.0 * missing / frames:.0f} %{when}): those "
            f"controls say face_detected false, and a renderer holds the last face or eases into idle there")


# The models of a MediaPipe FaceLandmarker bundle (.task: a zip): the two it needs for landmarks, and the blendshape
# model the reader (core/reader.py) needs too
LANDMARKER_MODELS = ("face_detector.tflite", "face_landmarks_detector.tflite")
BLENDSHAPE_MODEL = "face_blendshapes.tflite"


def check_landmarker_task(path: str, what: str, blendshapes: bool = False, otherwise: str = "") -> str:
    """The absolute path of the MediaPipe FaceLandmarker bundle `path`, checked without loading it: a file, a zip
    (a .task) holding LANDMARKER_MODELS (and BLENDSHAPE_MODEL when `blendshapes`). Raises ValueError naming `what`
    (the option or parameter), the file (absolute), what it is instead (files.kind: a face detector's bare .tflite,
    a photo, an avatar ...) and the file to give (MediaPipe's face_landmarker.task; then `otherwise`, e.g. "or '' for
    the bundled face mesh"). `eval --reader` given the face_detector model or a wrong file failed only once the
    reader was made, after the avatar was reconstructed ('Unable to open zip archive')."""
    full = shown(path)
    give = f"give MediaPipe's face_landmarker.task (a FaceLandmarker bundle){otherwise}"
    if not os.path.isfile(full):
        raise ValueError(f"{what} {full} {'not found' if not os.path.exists(full) else 'is not a file'}; {give}")
    kind = file_kind(full)  # a .tflite carries its metadata as a zip at its end: is_zipfile takes it for one
    is_zip = zipfile.is_zipfile(full)  # (reads the file's end: once)
    if kind == TASK and not is_zip:  # a bundle's start without its zip directory at the end: said
        # to be 'a MediaPipe model bundle (.task), not a FaceLandmarker .task bundle' (cli63, a download stopped early)
        raise ValueError(f"{what} {full} is a MediaPipe model bundle cut short ({os.path.getsize(full)} bytes, no zip "
                         f"directory at its end: a download or copy that stopped early); download it again, or {give}")
    if kind not in (None, TASK) or not is_zip:  # a MediaPipe Tasks bundle is a zip
        single = " (one model, a face detector's maybe: the landmarker needs the bundle)" if kind == TFLITE else ""
        raise ValueError(f"{what} {full} is {kind or 'no zip of MediaPipe models'}{single}, not a FaceLandmarker .task "
                         f"bundle; {give}")
    try:
        with zipfile.ZipFile(full) as z:
            inside = set(z.namelist())
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{what} {full} cannot be read as a .task bundle ({e}); {give}") from None
    missing = [m for m in LANDMARKER_MODELS + ((BLENDSHAPE_MODEL,) if blendshapes else ()) if m not in inside]
    if missing:
        holds = ", ".join(sorted(inside)[:6]) or "nothing"
        raise ValueError(f"{what} {full} is not a FaceLandmarker bundle{' with blendshapes' if blendshapes else ''}: it "
                         f"has no {', '.join(missing)} (it holds {holds}); {give}")
    return full


@dataclass
class TrackerConfig:
    """FaceTracker settings; those made with setting() are also the tracker_node parameters (core/settings.py)."""

    model_path: str = setting("", "MediaPipe FaceLandmarker .task file: adds the 52 ARKit blendshapes (~6-12 ms/frame); "
                                  "empty = the face mesh bundled with mediapipe (~5 ms/frame)")
    max_faces: int = setting(2, "faces considered per frame when picking the operator (1 is ~1.5 ms faster)",
                             range=(1, 8))
    min_confidence: float = setting(0.5, "MediaPipe detection/tracking confidence", range=(0.05, 0.95))
    neutral_frames: int = setting(15, "frames with a face before the operator's neutral face counts as calibrated "
                                      "(it starts on the first frame and keeps refining from relaxed frames)",
                                  range=(1, 900))
    neutral_window_s: float = setting(20.0, "seconds over which the neutral face forgets older frames",
                                      range=(0.1, 3600.0))
    smoothing: bool = setting(True, "One Euro filter on pose, landmarks, mouth_open and blendshapes")
    min_cutoff: float = setting(2.0, "One Euro cutoff for a still face, Hz (lower = steadier, more lag on slow moves)",
                                range=(0.01, 30.0), param="filter_min_cutoff")
    beta: float = setting(10.0, "One Euro speed coefficient (higher = less lag on fast moves)", range=(0.0, 1000.0),
                          param="filter_beta")
    d_cutoff: float = setting(1.0, "One Euro cutoff of the speed estimate, Hz", range=(0.01, 30.0),
                              param="filter_d_cutoff")
    fov_deg: float = setting(50.0, "field of view of the camera assumed when no camera_info arrives, degrees",
                             range=(5.0, 170.0))
    max_gap_s: float = 0.5  # frames further apart than this are not smoothed together
    restart_after_s: float = 1.0  # a stamp this much older than the last one starts a new stream
    switch_ratio: float = 1.5  # another face must score this much better to take over from the operator
    # detect a region of the face cut by the frame, or the lower face covered by a hand (core/face_regions.py)
    region_check: bool = True
    # The eyelid ratios' own One Euro filters (with `smoothing`; module notes), (min_cutoff Hz, beta per ratio/s,
    # d_cutoff Hz): both eyes' mean ratio (the blink: a speed estimate that follows it within a frame), and each
    # pair's difference from that mean (steadier: the per-eye landmark noise is there).
    lid_filter: tuple[float, float, float] = (1.0, 20.0, 20.0)
    lid_shape_filter: tuple[float, float, float] = (1.0, 5.0, 10.0)
    iris_model: bool = True  # bundled face mesh: irises from MediaPipe's iris model (core/iris.py), not the mesh's
    # with iris_model: the eyelid ratios from the iris model's eye outline fused with the mesh's lids (`fused_lid_ratios`)
    outline_lids: bool = True

    def validate(self) -> None:
        """Raise ValueError for a model_path that is not a FaceLandmarker .task file, a setting out of its
        range, or filter parameters the One Euro filters refuse."""
        if self.model_path:
            check_landmarker_task(self.model_path, "FaceLandmarker model", otherwise=" or '' for the bundled face mesh")
        check_settings(self)
        if not (self.max_gap_s > 0 and self.restart_after_s > 0 and self.switch_ratio >= 1.0):
            raise ValueError("max_gap_s and restart_after_s must be > 0 and switch_ratio >= 1")
        self.filter_config().validate()
        for lid in (self.lid_filter, self.lid_shape_filter):
            OneEuroConfig(*lid).validate()

    def filter_config(self) -> OneEuroConfig:
        """The One Euro settings (min_cutoff, beta, d_cutoff) of the pose, landmarks, mouth_open and blendshapes."""
        return OneEuroConfig(self.min_cutoff, self.beta, self.d_cutoff)


@dataclass
class _Face:
    """One candidate face of a frame."""

    landmarks_px: np.ndarray  # [478, 3]
    bbox: tuple[float, float, float, float]
    score: float
    blendshapes: np.ndarray | None = None  # [B]
    eye_outline_px: np.ndarray | None = None  # [32, 2] the iris model's eye outline (FaceDetection.eye_outline_px)


class TaskLandmarker:
    """MediaPipe Tasks FaceLandmarker: landmarks, blendshapes, head transform. VIDEO mode (tracks between
    frames; `detect` needs increasing timestamps) or, with image_mode=True, IMAGE mode (each call on its own;
    the timestamp is ignored). Also the independent reader of core/reader.py."""

    @quiet_notices
    def __init__(self, model_path: str, max_faces: int, min_confidence: float, image_mode: bool = False):
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self._mp = mp
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=model_path),
            running_mode=vision.RunningMode.IMAGE if image_mode else vision.RunningMode.VIDEO,
            num_faces=max_faces, min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence, min_tracking_confidence=min_confidence,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True)
        try:
            self._lm = vision.FaceLandmarker.create_from_options(opts)
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"cannot load FaceLandmarker model {model_path!r}: {e}") from e
        self._image_mode = image_mode
        self.names: list[str] = []
        self.last_matrices: list[np.ndarray] = []  # [4, 4] per face of the last call (MediaPipe's own pose)

    @quiet_notices
    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> list[_Face]:
        """[H, W, 3] uint8 RGB frame, its time (ms, increasing in VIDEO mode) -> the faces found: each one's 478
        landmarks [478, 3] (x, y in pixels, z in pixels of width, MediaPipe's), their bounding box, and its
        blendshape scores [B] (names in `self.names`); `last_matrices` then holds MediaPipe's head pose per face."""
        h, w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        res = self._lm.detect(image) if self._image_mode else self._lm.detect_for_video(image, timestamp_ms)
        faces = []
        for i, lms in enumerate(res.face_landmarks):
            a = np.array([(p.x * w, p.y * h, p.z * w) for p in lms], np.float32)  # [478, 3]
            bs = None
            if res.face_blendshapes:
                cats = res.face_blendshapes[i]
                if not self.names:
                    self.names = [c.category_name for c in cats]
                bs = np.array([c.score for c in cats], np.float32)
            faces.append(_Face(a, _bbox(a), 1.0, bs))
        self.last_matrices = [np.asarray(m, np.float64) for m in (res.facial_transformation_matrixes or [])]
        return faces

    def close(self) -> None:
        """Free the FaceLandmarker."""
        self._lm.close()


def similarity_fit(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
                   ) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Least-squares dst ~ s R src + t (Umeyama, "Least-squares estimation of transformation parameters between two
    point patterns", PAMI 1991; with per-point weights: the weighted means and cross-covariance) for [n, 3] point
    sets and optional [n] weights >= 0 (not all 0; their scale does not matter; None = equal) -> (s, R [3, 3], t [3],
    rms residual over the points, unweighted, in src units)."""
    w = np.full(len(src), 1.0 / len(src)) if weights is None else np.asarray(weights, float) / np.sum(weights)
    ms, md = w @ src, w @ dst
    s0, d0 = src - ms, dst - md
    u, sig, vt = np.linalg.svd((d0 * w[:, None]).T @ s0)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / max(w @ np.sum(s0 ** 2, 1), 1e-12))
    t = md - scale * rot @ ms
    resid = dst - (scale * src @ rot.T + t)
    return scale, rot, t, float(np.sqrt(np.mean(np.sum(resid ** 2, 1)))) / max(scale, 1e-12)


class RigidityWeights:
    """The tracker's pose-fit weights, one per rigid landmark (`landmarks.RIGID_LANDMARKS`): 1 / (the running mean
    square of how far the landmark strays from the operator's neutral in the head frame, in mm^2, + RIGIDITY_FLOOR_MM2).

    The rigid set is rigid with the skull, not in MediaPipe's face mesh: on the operator's stream some of its points
    move with the face and with the turn (module notes), and which ones depends on the operator and the clip. A point
    that strays is weighed less, so the fit follows the points that this stream shows as rigid. Every point starts at
    RIGIDITY_START_MM2 (equal weights: the plain fit) when the neutral starts; each fitted frame moves the mean squares
    towards its strays with the time constant RIGIDITY_TAU_S (stamps; a frame not newer than the last changes nothing).
    Anchors (the tracker's: the eye corners) are never weighed below the median point: the gaze and the lids are
    measured against them, and a blink or a fast turn moves them in the mesh for a moment (sadtalker's one-eyed blink
    during a 20 deg turn, frames 31-37: weighed by their own stray, the eyes' vergence went 0.051 rad off; 0.045 with
    them anchored, 0.029 with equal weights).
    """

    def __init__(self, n: int, anchors: np.ndarray | None = None):
        """n rigid landmarks; anchors: [n] bool, the points never weighed below the median point (default none)."""
        self._n = n
        self._anchors = np.zeros(n, bool) if anchors is None else np.asarray(anchors, bool)
        self.reset()

    def reset(self) -> None:
        """Start over: every landmark's mean square stray back to RIGIDITY_START_MM2 (a re-calibration)."""
        self._ms = np.full(self._n, RIGIDITY_START_MM2)  # [n] mean square stray, mm^2
        self._t: float | None = None  # stamp of the last update, seconds

    @property
    def weights(self) -> np.ndarray:
        """[n] the fit's weights (unnormalised)."""
        return 1.0 / (np.where(self._anchors, np.minimum(self._ms, np.median(self._ms)), self._ms) + RIGIDITY_FLOOR_MM2)

    def update(self, stray: np.ndarray, t_s: float) -> None:
        """[n, 3] the rigid landmarks minus the neutral's, head frame, metres; t_s the frame's stamp, seconds."""
        sq = np.sum((np.asarray(stray, float) * 1e3) ** 2, axis=1)
        a = 1.0 - math.exp(-(t_s - self._t) / RIGIDITY_TAU_S) if self._t is not None and t_s > self._t else 0.0
        self._ms = self._ms + a * (sq - self._ms)
        self._t = t_s


def mouth_open(landmarks: np.ndarray, neutral: np.ndarray | None) -> float:
    """[L, 3] canonical landmarks (+ [L, 3] neutral) -> (inner-lip gap + JAW_WEIGHT x jaw drop) / inter-ocular
    distance, >= 0. Without a neutral only the lip gap counts."""
    eyes = [0.5 * (landmarks[a] + landmarks[b]) for a, b in EYE_CORNERS]
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    gap = float(np.linalg.norm(landmarks[LIP_GAP[1]] - landmarks[LIP_GAP[0]]))
    drop = 0.0
    if neutral is not None:
        drop = float(np.linalg.norm(landmarks[JAW_POINT] - landmarks[NOSE_TIP])
                     - np.linalg.norm(neutral[JAW_POINT] - neutral[NOSE_TIP]))
    return max(0.0, (gap + JAW_WEIGHT * drop) / max(iod, 1e-9))


UPRIGHT_CHECK_S = 5.0  # stream seconds between FaceTracker's checks that the operator's face is not upside down
UPRIGHT_CROP = 256  # pixels: the square around the face that check looks at (twice the face's landmark box)
UPRIGHT_CUT_SHARE = 0.1  # that check waits for a face whose landmark box is cut by the frame by at most this share


def _cut_share(bbox: tuple[float, float, float, float], w: int, h: int) -> float:
    """The largest share of a landmark box (x0, y0, x1, y1, pixels) that lies outside a w x h frame, along x or y."""
    x0, y0, x1, y1 = bbox
    bw, bh = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    return max((max(0.0, -x0) + max(0.0, x1 - w)) / bw, (max(0.0, -y0) + max(0.0, y1 - h)) / bh)


class FaceTracker:
    """Per-frame FaceControl from camera frames. Not thread-safe: use one instance per thread.

    `upside_down`: the operator's face looked upside down at the last check (every UPRIGHT_CHECK_S of stream time
    with a face, FaceMesh.upside_down on a crop around it, ~5 ms): a camera mounted upside down. The face mesh fits
    such a face as an upright one and the controls made the avatar grimace, 100 % of frames 'tracked' (lp_d0 turned
    half a turn; user37, s37); the frames are tracked as they come, and the caller says so. The check waits for a
    face whose landmark box the frame cuts by at most UPRIGHT_CUT_SHARE of its height and width: the mouth and chin
    of an operator standing up, the eyes above the frame's top, read upside down and were said to be a camera
    mounted upside down until the face came back (user56, s56).

    `side_turn`: at the same check, the quarter turns k (1 or 3, 0 when upright or upside down) that make the face
    upright, np.rot90(frame, k) as facemesh.quarter_turns gives them: a camera on its side (a phone held sideways as a
    webcam). The face mesh finds such a face and the controls roll the avatar's head, and its torso, a quarter turn
    on the robot's display; nothing said so (user56, s56). The frames are tracked as they come, and the caller says
    so."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.config.validate()
        self.closed = False  # close() was called: process refuses
        c = self.config
        self._task = TaskLandmarker(c.model_path, c.max_faces, c.min_confidence) if c.model_path else None
        self._mesh = None if self._task else FaceMesh(static_image_mode=False, max_faces=c.max_faces,
                                                      min_confidence=c.min_confidence, iris_model=c.iris_model)
        self._roi_mesh = None  # a one-face mesh for crops around a small operator, made on first need
        self._regions = FaceRegionMonitor() if c.region_check else None
        self._scorer = None  # a FaceMesh for upside_down (its short-range face detector only), made on first need
        self.upside_down = False
        self.side_turn = 0  # quarter turns that would make the face upright when it lies on its side (docstring)
        self.operator_switches = 0  # times another face took over from the one followed while it was in view
        self._stale_said = False  # a frame not newer than the last was said (process: once, as a warning)
        self._upright_checked: int | None = None  # the stamp (ns) of the last upside-down check
        self._neutral = NeutralEstimator(c.neutral_window_s)
        self._rigidity = RigidityWeights(len(RIGID), np.isin(RIGID, EYE_CORNERS))  # the pose fit's weights (notes)
        # [14] the operator's open lids as the picture shows them (seen from the front): the eyelid ratios' 1
        self._lid_level = OpenLidAverage(c.neutral_window_s, LID_LEVEL_SCALE)
        self._make_filters()
        self._reset_stream()

    # ------------------------------------------------------------------------------------------------
    @property
    def calibrated(self) -> bool:
        """Whether the neutral face has taken `neutral_frames` frames."""
        return self._neutral.frames >= self.config.neutral_frames

    @property
    def neutral(self) -> np.ndarray | None:
        """[478, 3] the operator's neutral face, head frame, metres (None before the first face): the controls'
        landmarks minus their expression."""
        n = self._neutral.neutral
        return None if n is None else n * self._open_eye_scale()

    @property
    def regions_out(self) -> tuple[tuple[str, str], ...]:
        """The face regions the last frame's control holds, as (name, why) pairs: name a `face_regions.REGIONS` name
        ("lower face", "eye region", "brow region"), why in words ("cut by the camera picture's top edge", "covered by
        a hand", ...); () with every region in view, without a face, or with `region_check` off."""
        return self._regions.out if self._regions is not None else ()

    @property
    def regions_note(self) -> str:
        """The operator's line for `regions_out` ('' when it is empty): which part of the face is out of view, why,
        what the robot shows meanwhile and what brings it back (FaceRegionMonitor.note)."""
        return self._regions.note() if self._regions is not None else ""

    @property
    def blendshape_names(self) -> list[str]:
        """The ARKit blendshape names the FaceLandmarker gives ([] with the bundled face mesh)."""
        return list(self._task.names) if self._task else []

    def recalibrate(self) -> None:
        """Start a new neutral face from the next frame with a face (calibrated after `neutral_frames`)."""
        self._neutral.reset()
        log.debug("recalibrating the neutral face from the next %d frames", self.config.neutral_frames)

    def set_filter(self, min_cutoff: float, beta: float, d_cutoff: float, smoothing: bool = True) -> None:
        """Change the One Euro parameters at run time (keeps the neutral face)."""
        cfg = replace(self.config, min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff, smoothing=smoothing)
        cfg.validate()
        self.config = cfg
        self._make_filters()

    def close(self) -> None:
        """Free the MediaPipe models and the face-region monitor (core/face_regions.py). A second close does nothing;
        `process` after it raises ValueError."""
        if self.closed:
            return
        self.closed = True
        for m in (self._task, self._mesh, self._roi_mesh, self._regions, self._scorer):
            if m is not None:
                m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------------------------------------
    def process(self, rgb: np.ndarray, stamp_ns: int, K: np.ndarray | None = None) -> FaceControl | None:
        """[H, W, 3] uint8 RGB frame (not OpenCV's BGR: cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)) taken at
        stamp_ns (int, nanoseconds, rising from frame to frame: time.monotonic_ns()) (+ K, the camera's [3, 3]
        intrinsics in pixels; None: TrackerConfig.fov_deg assumed) -> FaceControl, or None when the frame is not
        newer than the last one (ignored, said once as a warning; see the module notes). Raises ValueError for
        another shape or dtype."""
        if self.closed:  # MediaPipe's own words were '_graph is None in SolutionBase' (cli63)
            raise ValueError("this FaceTracker is closed (close(), or the end of its with-block): make a new one")
        if not isinstance(rgb, np.ndarray):  # a list said "'list' object has no attribute 'ndim'"
            raise ValueError(f"need an [H, W, 3] uint8 RGB frame (a numpy array), got a {type(rgb).__name__}")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"need an [H, W, 3] uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
        stamp_ns = int(stamp_ns)
        if self._last_stamp is not None and stamp_ns <= self._last_stamp:
            if self._last_stamp - stamp_ns <= self.config.restart_after_s * 1e9:
                if self._stale_said:
                    log.debug("ignoring a frame stamped %d ns, not newer than the last (%d)", stamp_ns,
                              self._last_stamp)
                else:  # once per tracker: stamp 0 for every frame, or time.time() (seconds), tracked the first frame
                    # alone, said at debug only (user59, s59)
                    self._stale_said = True
                    log.warning("ignoring a frame stamped %d ns, not newer than the last (%d): None returned, and for "
                                "every frame until the stamps rise again (stamp_ns is the frame's capture time in "
                                "nanoseconds, rising from frame to frame: time.monotonic_ns(), or a clip's frame "
                                "index x 1e9 / its fps; seconds or one stamp for every frame leave every frame after "
                                "the first untracked); said once", stamp_ns, self._last_stamp)
                return None
            log.info("stamps jumped back %.1f s: a new stream", (self._last_stamp - stamp_ns) * 1e-9)
            self._reset_stream()
        dt_s = None if self._last_stamp is None else (stamp_ns - self._last_stamp) * 1e-9
        self._last_stamp = stamp_ns
        self._mp_ms += max(0, int(round(dt_s * 1000))) if dt_s is not None else 0
        h, w = rgb.shape[:2]
        self._rescale_to(w, h)
        K = default_intrinsics(w, h, self.config.fov_deg) if K is None else np.asarray(K, np.float64)
        face = self._select(self._detect(rgb), w, h,
                            followed=self._face_seen and dt_s is not None and dt_s <= self.config.max_gap_s)
        self._follow(face, w, h)
        if face is None:
            self._face_seen = False
            if self._regions is not None:
                self._regions.no_face()
            held = self._held or FaceControl.rest()
            return replace(held, stamp_ns=stamp_ns, face_detected=False, confidence=0.0)
        if not self._face_seen or (dt_s is not None and dt_s > self.config.max_gap_s):
            self._reset_filters()
        self._face_seen = True
        if (self._upright_checked is None or abs(stamp_ns - self._upright_checked) >= UPRIGHT_CHECK_S * 1e9) \
                and _cut_share(face.bbox, w, h) <= UPRIGHT_CUT_SHARE:
            self._upright_checked = stamp_ns
            self.upside_down = self._looks_upside_down(rgb, face)
            turns = quarter_turns(face.landmarks_px)
            self.side_turn = turns if turns in (1, 3) and not self.upside_down else 0
        view = self._regions.visibility(rgb, face.landmarks_px) if self._regions is not None else None
        in_view = view is None or view.all_in_view(self._regions.config.visible)
        eyes_in_view = view is None or view.eyes_in_view(self._regions.config.visible)
        control = self._control(face, K, stamp_ns, learn_neutral=in_view, learn_lids=eyes_in_view)
        if view is not None:  # a region cut by the frame, a hand over the mouth: hold its expression and the turn
            control = self._regions.steady(control, view)
        self._held = control
        return control

    def _looks_upside_down(self, rgb: np.ndarray, face: _Face) -> bool:
        """FaceMesh.upside_down on an UPRIGHT_CROP square around `face` (twice its landmark box) in [H, W, 3] rgb."""
        import cv2

        x0, y0, x1, y1 = face.bbox
        side = int(round(2.0 * max(x1 - x0, y1 - y0)))
        if side < 16:
            return False
        crop = crop_padded(rgb, int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2)), side)
        crop = cv2.resize(crop, (UPRIGHT_CROP, UPRIGHT_CROP),
                          interpolation=cv2.INTER_AREA if side > UPRIGHT_CROP else cv2.INTER_LINEAR)
        if self._scorer is None:
            self._scorer = FaceMesh(static_image_mode=True, max_faces=1, iris_model=False)
        return self._scorer.upside_down(crop)

    # ------------------------------------------------------------------------------------------------
    def _detect(self, rgb: np.ndarray) -> list[_Face]:
        if self._roi is not None:  # a small operator last frame: look around it first (no full-frame search)
            faces = self._detect_in_roi(rgb)
            if faces:
                return faces
        if self._task is not None:
            self._mp_ms += 1  # MediaPipe VIDEO timestamps must increase with every call
            faces = self._task.detect(rgb, self._mp_ms)
            if faces:
                return faces
            if self._mesh is None:  # small faces: the bundled mesh with its full-range detector and crops
                self._mesh = FaceMesh(static_image_mode=False, max_faces=self.config.max_faces,
                                      min_confidence=self.config.min_confidence, iris_model=self.config.iris_model)
        return [_Face(f.landmarks_px, f.bbox, f.score, None, f.eye_outline_px) for f in self._mesh.detect(rgb)]

    def _detect_in_roi(self, rgb: np.ndarray) -> list[_Face]:
        """The operator's face in a square crop around where it was, scaled to ROI_SIZE pixels."""
        import cv2

        x0, y0, side = self._roi
        crop = cv2.resize(crop_padded(rgb, x0, y0, side), (ROI_SIZE, ROI_SIZE),
                          interpolation=cv2.INTER_AREA if side > ROI_SIZE else cv2.INTER_LINEAR)
        if self._task is not None:
            self._mp_ms += 1
            faces = self._task.detect(crop, self._mp_ms)
        else:
            if self._roi_mesh is None:
                self._roi_mesh = FaceMesh(static_image_mode=False, max_faces=1,
                                          min_confidence=self.config.min_confidence, iris_model=self.config.iris_model)
            faces = [_Face(f.landmarks_px, f.bbox, f.score, None, f.eye_outline_px) for f in self._roi_mesh.detect(crop)]
        out = []
        for f in faces[:1]:
            lm = f.landmarks_px * (side / ROI_SIZE) + np.array([x0, y0, 0], np.float32)  # [478, 3] frame pixels
            outline = None if f.eye_outline_px is None else f.eye_outline_px * (side / ROI_SIZE) + np.array([x0, y0],
                                                                                                             np.float32)
            out.append(_Face(lm, _bbox(lm), f.score, f.blendshapes, outline))
        return out

    def _follow(self, face: _Face | None, w: int, h: int) -> None:
        """Follow a small face in a crop on the next frame (the full-frame search for it is slow)."""
        self._roi = None
        if face is not None:
            bw, bh = face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1]
            if max(bw, bh) < SMALL_FACE * max(w, h):
                side = max(int(ROI_SIDE * max(bw, bh)), 32)
                cx, cy = (face.bbox[0] + face.bbox[2]) / 2, (face.bbox[1] + face.bbox[3]) / 2
                self._roi = (int(round(cx - side / 2)), int(round(cy - side / 2)), side)

    def _select(self, faces: list[_Face], w: int, h: int, followed: bool = False) -> _Face | None:
        """The operator: the best face by size and centrality, but the face nearest the previous one keeps
        the role unless another scores `switch_ratio` times better. followed: the operator was found in the
        previous frame, at most max_gap_s ago; then a lone face that is not where it was (SAME_FACE_MOVE of its width
        away, or SAME_FACE_SCALE times wider or narrower) is another person who stepped in front of the camera."""
        if not faces:
            return None
        if followed and self._operator is not None and len(faces) == 1:
            pw = self._operator[2]
            f = faces[0]
            fw = max(f.bbox[2] - f.bbox[0], 1.0)
            moved = self._from_operator(f)
            if moved >= SAME_FACE_MOVE or max(fw / pw, pw / fw) >= SAME_FACE_SCALE:
                # (it was followed without a word, the previous operator's neutral face making the new one's still
                # face read as a 1.3 cm grimace; user51, s51)
                self.operator_switches += 1
                log.warning("another face replaced the operator: %.0f px wide, %.1f face widths from where the face "
                            "followed (%.0f px wide) was a frame before; the avatar follows it from this frame",
                            fw, moved, pw)
        centre, half_diag = np.array([w / 2, h / 2]), 0.5 * math.hypot(w, h)

        def score(f: _Face) -> float:
            c = np.array([(f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2])
            off_centre = min(1.0, float(np.linalg.norm(c - centre)) / half_diag)
            return math.sqrt(max(_area(f.bbox), 1.0)) * (1.0 - 0.5 * off_centre)

        scores = [score(f) for f in faces]
        best = int(np.argmax(scores))
        if self._operator is not None and len(faces) > 1:
            dists = [self._from_operator(f) for f in faces]
            near = int(np.argmin(dists))
            if dists[near] < 1.5 and scores[near] * self.config.switch_ratio >= scores[best]:
                best = near
            elif dists[near] < 1.5:  # the face followed is still in view, and another takes over: said (it was
                # silent, and the robot's face went on mimicking whoever leaned in closer; user46, s46)
                self.operator_switches += 1
                log.warning("another face took over as the operator: %.0f px wide, it scores %.1f times the face "
                            "followed until now (%.0f px wide; a face scoring %.1f times the operator's, by its size "
                            "and nearness to the picture's middle, takes over); the avatar follows it from this "
                            "frame. To keep the operator followed, keep other people's faces out of the camera's "
                            "view, or farther from the camera than the operator's",
                            faces[best].bbox[2] - faces[best].bbox[0], scores[best] / max(scores[near], 1e-9),
                            faces[near].bbox[2] - faces[near].bbox[0], self.config.switch_ratio)
        f = faces[best]
        self._operator = ((f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2, max(f.bbox[2] - f.bbox[0], 1.0))
        return f

    def _rescale_to(self, w: int, h: int) -> None:
        """The operator's box (pixels) carried to a frame of w x h pixels when the frame size changes (a camera's new
        resolution, video_source_node's max_side set at run time), and the small operator's crop (_roi) dropped: the
        box compared in the old frame's pixels made every size change an operator switch ('another face replaced the
        operator: 110 px wide, 0.8 face widths from where the face followed (220 px wide) was', then a re-calibration;
        user52, s52). The same view scaled: x by the widths' ratio, y by the heights'. A frame of another shape
        (aspect ratio off by more than SAME_VIEW_ASPECT) shows another part of the view (1920x1080 -> 512x512: a crop,
        a driver's other mode), so the box is dropped and the next frame's operator is chosen as at the start, with
        no switch said (the box scaled was said as 'another face replaced the operator' and re-calibrated; user56)."""
        if self._frame_size is not None and self._frame_size != (w, h):
            sx, sy = w / self._frame_size[0], h / self._frame_size[1]
            if self._operator is not None and abs(math.log(sx / sy)) > SAME_VIEW_ASPECT:
                self._operator = None
            elif self._operator is not None:
                px, py, pw = self._operator
                self._operator = (px * sx, py * sy, pw * sx)
            self._roi = None
        self._frame_size = (w, h)

    def _from_operator(self, f: _Face) -> float:
        """How far f's box centre is from the previous operator's, in the operator's face widths."""
        px, py, pw = self._operator
        return math.hypot((f.bbox[0] + f.bbox[2]) / 2 - px, (f.bbox[1] + f.bbox[3]) / 2 - py) / pw

    def _control(self, face: _Face, K: np.ndarray, stamp_ns: int, learn_neutral: bool = True,
                 learn_lids: bool | None = None) -> FaceControl:
        """The frame's control; learn_neutral=False (a face region hidden) keeps it out of the neutral face,
        learn_lids=False (the eyes hidden; None: as learn_neutral) out of the open lids' level too (the eyes in
        view with the brows cut: an operator framed tight from the start, the level would stay the first
        frame's; lp_d18 the brows cut, the blink read +0.08 open, FRAME58 in core/face_regions.py)."""
        p = face.landmarks_px.astype(np.float64)  # [478, 3] pixels
        if p.shape[0] != lmk.NUM_LANDMARKS:
            raise ValueError(f"expected {lmk.NUM_LANDMARKS} landmarks, got {p.shape[0]}")
        t_s = stamp_ns * 1e-9
        first = self._neutral.neutral is None
        if first:  # the neutral starts from this frame's own head frame, its mouth expression taken out
            self._neutral.update(fit_head_frame(p, K).canonical, t_s)
            self._rigidity.reset()
        neutral = self._neutral.neutral
        s, rot, t, resid = similarity_fit(neutral[RIGID], p[RIGID], self._rigidity.weights)
        canonical = (p - t) @ rot / s  # [478, 3] head frame, metres (pose and scale removed)
        if first or learn_neutral:  # how far each rigid landmark strays from the neutral (this operator, this model)
            self._rigidity.update(canonical[RIGID] - neutral[RIGID], t_s)
        if not first and learn_neutral:  # this frame's expression is relative to the neutral so far; then it refines it
            n_before = self._neutral.frames
            self._neutral.update(canonical, t_s)
            if n_before < self.config.neutral_frames <= self._neutral.frames:
                log.info("neutral face calibrated from %d frames", self._neutral.frames)
        depth = K[0, 0] / s  # the neutral's metres at s pixels per metre
        trans = np.array([(t[0] - K[0, 2]) * depth / K[0, 0], (t[1] - K[1, 2]) * depth / K[1, 1], depth])
        mouth = mouth_open(canonical, neutral)
        measured = eyes.operator_gaze(canonical, neutral)  # yaw against the neutral's eyes (core/eyes.py)
        # an eye whose iris jumped away from the other's (eyes.conjugate_gaze) follows the other one; each eye's
        # last gaze kept while its lids hide the iris, turned with the other eye where that one is seen
        # (eyes.held_gaze); both before any smoothing
        # [14] this frame's own, unfiltered, as the image shows them (deform.seen_eyelid_ratios) seen from the
        # front, over the operator's open lids in the same terms (module notes; the first frame reads 1 exactly),
        # judged open by the centre pairs' mean, in log units (LID_LEVEL_SCALE)
        flat = deform.flat_eyelid_ratios(neutral)
        seen = deform.seen_eyelid_ratios(p, neutral, rot) * flat
        # the same from the iris model's eye outline where it came with the face (the mesh's otherwise: then the fused
        # ratios are the mesh's exactly)
        seen_outline = seen if face.eye_outline_px is None or not self.config.outline_lids else \
            deform.seen_eyelid_ratios(outline_landmarks(p, face.eye_outline_px), neutral, rot) * flat
        openness = math.log(max(float(np.mean(seen[list(deform.LID_MID)])), 1e-6))
        # the frame's outer eye span over its rigid landmarks' spread (pixels; pose- and distance-free): averaged with
        # the lids, over the open frames, for the head frame's scale (`_open_eye_scale`)
        span = float(np.linalg.norm(p[lmk.OUTER_EYE[1]] - p[lmk.OUTER_EYE[0]]) / max(_spread(p[RIGID]), 1e-9))
        if first:
            self._lid_level.reset()
            self._first_span = (span, openness)
        if first or (learn_neutral if learn_lids is None else learn_lids) or self._lid_level.mean is None:
            self._lid_level.add(t_s, openness, np.concatenate([seen, seen_outline, [span]]))
        n_pairs = len(seen)
        lid_ratios = seen / np.clip(self._lid_level.mean[:n_pairs], 1e-6, None)  # the mesh's (the gaze's rules)
        outline_ratios = seen_outline / np.clip(self._lid_level.mean[n_pairs:-1], 1e-6, None)
        k = self._open_eye_scale()  # the first frame's scale, taken from the open frames' eye span if its lids were shut
        canonical, neutral, trans = canonical * k, neutral * k, trans * k
        lids_now = lid_ratios[list(deform.LID_MID)]
        gaze = eyes.conjugate_gaze(measured, self._gaze_held, self._vergence, lids_now)
        gaze = eyes.held_gaze(gaze, self._gaze_held, lids_now)
        dt = 0.0 if self._gaze_t is None else t_s - self._gaze_t
        self._vergence = eyes.usual_vergence(self._vergence, measured, dt, float(eyes.iris_seen(lids_now).min()))
        self._gaze_held, self._gaze_t = gaze, t_s
        g0 = eyes.gaze_from_landmarks(neutral)
        lid_ratios = fused_lid_ratios(lid_ratios, outline_ratios, gaze[:, 0])
        # the look down since the neutral counted once in the lids: the avatar's lid-eye coupling adds its own
        lid_ratios = deform.net_lid_ratios(lid_ratios, gaze[:, 1] - g0[:, 1], neutral, eyes.eyeball_centres(neutral, g0))
        gaze = gaze.reshape(4)
        quat = matrix_to_quat(rot)
        bs = face.blendshapes
        if self.config.smoothing:
            quat = self._f_rot(quat, t_s)
            trans = self._f_trans(trans, t_s)
            canonical = self._f_lmk(canonical, t_s)
            mouth = float(self._f_mouth(mouth, t_s))
            gaze = self._f_gaze(gaze, t_s)
            blink = float(np.mean(lid_ratios))  # both eyes (module notes); each pair's own speed for the rest
            lid_ratios = np.maximum(float(self._f_blink(blink, t_s)) + self._f_lids((lid_ratios - blink)[:, None], t_s)[:, 0],
                                    0.0)
            if bs is not None:
                bs = np.clip(self._f_bs(bs, t_s), 0.0, 1.0)
        # Confidence: the detector's score, lowered when the rigid landmarks do not fit the neutral shape
        # (occlusion, extreme pose, a different person): 2 mm RMS is typical, 8 mm halves it.
        conf = face.score * math.exp(-((resid / 0.008) ** 2) * math.log(2))
        names = self.blendshape_names if bs is not None else []
        return FaceControl(
            stamp_ns=stamp_ns, face_detected=True, confidence=float(np.clip(conf, 0, 1)),
            rotation=quat.astype(np.float32), translation=trans.astype(np.float32),
            landmarks=canonical.astype(np.float32), expression=(canonical - neutral).astype(np.float32),
            mouth_open=mouth, blendshape_names=names,
            blendshapes=bs.astype(np.float32) if bs is not None and names else np.zeros(0, np.float32),
            gaze=gaze.reshape(2, 2).astype(np.float32),
            eyelid_ratios=np.asarray(lid_ratios, np.float32))

    def _open_eye_scale(self) -> float:
        """The factor that takes the head frame's metres as the first frame set them (`facemesh.fit_head_frame`:
        its outer eye corners CANONICAL_EYE_SPAN apart) to the metres the operator's open eyes give: a blink moves
        MediaPipe's eye corners (sadtalker frame 24, mid-blink: eye span / rigid spread 1.036 x the clip's median;
        tpsmm 21 1.045, lp_d18 95 1.025), and a stream started there kept every canonical landmark and expression
        of the session 3.5-6 % smaller (sadtalker's mouth 3.4 mm narrower than from frame 0). The factor is
        (first frame's span / the open frames' span)^w, spans over the rigid spread (`OpenLidAverage`'s open
        frames, with the lid level), w = 0 while the first frame's lids fall short of the operator's usual widest
        by <= OPEN_FIRST_SHORTFALL (log units; a first frame with open eyes, the avatar's photo, keeps its scale
        exactly: frame-0 consistency), rising to 1 over another OPEN_FIRST_SHORTFALL (shut: 1.1-1.2 short).
        1 on the first frame."""
        span0, open0 = self._first_span
        w = min(1.0, max(0.0, self._lid_level.shortfall(open0) / OPEN_FIRST_SHORTFALL - 1.0))
        return float((span0 / self._lid_level.mean[-1]) ** w) if w > 0 else 1.0

    # ------------------------------------------------------------------------------------------------
    def _make_filters(self) -> None:
        fc = self.config.filter_config()
        self._f_rot = QuaternionFilter(fc, UNIT_RADIAN)
        self._f_trans = OneEuroFilter(fc, UNIT_METRE)
        self._f_lmk = OneEuroFilter(fc, UNIT_METRE)
        self._f_mouth = OneEuroFilter(fc, UNIT_MOUTH)
        self._f_bs = OneEuroFilter(fc, UNIT_BLENDSHAPE)
        self._f_gaze = OneEuroFilter(fc, UNIT_RADIAN)
        self._f_blink = OneEuroFilter(OneEuroConfig(*self.config.lid_filter), UNIT_LID)
        self._f_lids = OneEuroFilter(OneEuroConfig(*self.config.lid_shape_filter), UNIT_LID)

    def _reset_filters(self) -> None:
        for f in (self._f_rot, self._f_trans, self._f_lmk, self._f_mouth, self._f_bs, self._f_gaze, self._f_blink,
                  self._f_lids):
            f.reset()
        self._gaze_held: np.ndarray | None = None  # eyes.held_gaze's state: the last gaze [2, 2] given out
        self._vergence: np.ndarray | None = None  # eyes.conjugate_gaze's state: the operator's usual vergence [2]
        self._gaze_t: float | None = None  # stamp of the last gaze, seconds

    def _reset_stream(self) -> None:
        """Forget the temporal state (not the neutral face)."""
        self._last_stamp: int | None = None
        self._mp_ms = getattr(self, "_mp_ms", 0)  # MediaPipe VIDEO timestamps must keep increasing
        self._face_seen = False
        self._operator: tuple[float, float, float] | None = None  # centre x, y and width (pixels) of the last operator
        self._frame_size: tuple[int, int] | None = None  # (w, h) of the last frame, pixels (_rescale_to)
        self._roi: tuple[int, int, int] | None = None  # x0, y0, side (pixels): crop a small operator is followed in
        self._held: FaceControl | None = None
        if getattr(self, "_regions", None) is not None:
            self._regions.reset()
        self._reset_filters()


def _spread(q: np.ndarray) -> float:
    """[n, 3] points -> RMS distance from their centroid (their units)."""
    return float(np.sqrt(np.mean(np.sum((q - q.mean(0)) ** 2, axis=1))))


def _area(b) -> float:
    return (b[2] - b[0]) * (b[3] - b[1])


def _bbox(a: np.ndarray) -> tuple[float, float, float, float]:
    return float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 0].max()), float(a[:, 1].max())

