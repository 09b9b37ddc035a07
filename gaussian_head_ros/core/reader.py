"""An independent face reader for evaluation: MediaPipe FaceLandmarker (.task) on the driver and the render.

The reader is the Tasks FaceLandmarker (52 ARKit blendshapes + a 4x4 facial transformation matrix per
face), a model the tracker does not use by default and that we never train against, run on the driving
clip and, separately, on the rendered video. How well the avatar follows the operator is then the
Pearson r, over the frames where the reader finds a face in both, between the two series of each
blendshape group and of each head angle. It needs no ground truth, so it works for cross-reenactment
(another person's photo) as well as for self-reenactment. r does not see amplitude (an avatar whose jaw
opens a tenth as far as the operator's can still have r 0.9), so beside each group's r comes its slope: the
least-squares slope of the render's series against the driver's (metrics.slope), reported where r is.

Blendshape groups (MediaPipe's category names; L/R = ...Left/...Right; scores in [0, 1]):

    jaw      = jawOpen
    blink    = (eyeBlinkL + eyeBlinkR) / 2
    gaze_h   = ((eyeLookOutL - eyeLookInL) + (eyeLookInR - eyeLookOutR)) / 2
               signed horizontal gaze, both eyes turned the same way add up (towards the side of the eye
               called Left); a mirrored L/R naming only flips the sign, which r does not see
    gaze_v   = (eyeLookUpL + eyeLookUpR - eyeLookDownL - eyeLookDownR) / 2      (positive up)
    brow     = (browInnerUp + browOuterUpL + browOuterUpR) / 3 - (browDownL + browDownR) / 2
    smile    = (mouthSmileL + mouthSmileR) / 2
    pucker   = (mouthPucker + mouthFunnel) / 2

Head angles: yaw, pitch, roll in degrees from the rotation part of the facial transformation matrix
(MediaPipe's metric space: x right, y up, z towards the viewer, for the camera and the canonical face
alike), turned into the OpenCV camera and head frames (F R F with F = diag(1, -1, -1)) and decomposed
as `control.euler_deg` does, so the angles mean what they mean everywhere else in this package. Per
angle: r, and the mean absolute difference in degrees (`mae_deg`; an absolute error, so in
cross-reenactment it also contains how the reader sees two different faces at the same pose).

A correlation is reported as None (not 0) when fewer than MIN_FRAMES frames have a face in both videos,
or when the driver's series does not move clearly above the reader's own noise: there r would measure
the reader's noise, not whether the avatar follows. "Clearly" = a std of at least NOISE_MARGIN x the
group's NOISE_STD (and MIN_STD; MIN_STD_DEG for angles), and for blink a real blink: the score rises
BLINK_MIN_RISE above the clip's open-eye level (its 10th percentile) at least once. NOISE_STD is the
reader's std on a still face (median over the four ../shared clips' first frames and three portraits,
each 30 frames in video mode with fresh pixel noise of std 2 grey levels: scripts/reader_noise.py).
Measured there: lp_d0 and lp_d18 never close their eyes (blink score 0.10-0.18 throughout, std 0.02),
so their r_blink was the lids' drift with gaze; lp_d0's brow std 0.028 is 1.5 x the brow noise (its
own first frame alone reads 0.019). Frames where the reader finds no face are counted (`no_face_driver`,
`no_face_render`) and left out of every series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.control import euler_deg, matrix_to_quat
from gaussian_head_ros.core.metrics import correlation, rank_correlation, slope

GROUPS = ("jaw", "blink", "gaze_h", "gaze_v", "brow", "smile", "pucker")
ANGLES = ("yaw", "pitch", "roll")
MIN_FRAMES = 10  # fewer common frames than this: no correlation
MIN_STD = 0.01  # blendshape score units: a driver series stiller than this has nothing to follow
MIN_STD_DEG = 0.5  # the same for a head angle, degrees
# The reader's std per group on a still face (see the module docstring; scripts/reader_noise.py), and how
# far above it a driver's std must be for its r to say whether the avatar follows.
NOISE_STD = {"jaw": 0.0017, "blink": 0.0059, "gaze_h": 0.0060, "gaze_v": 0.0139, "brow": 0.0186,
             "smile": 0.0069, "pucker": 0.0002}
NOISE_MARGIN = 2.5
BLINK_MIN_RISE = 0.25  # a blink: the blink score this far above the clip's open-eye level (10th percentile)
_GL_TO_CV = np.diag([1.0, -1.0, -1.0])


def blendshape_groups(scores: dict[str, float]) -> dict[str, float]:
    """MediaPipe blendshape scores by name -> the GROUPS values (definitions in the module docstring).
    Raises KeyError when a blendshape the groups need is missing."""
    s = scores

    def pair(stem: str) -> float:
        return s[stem + "Left"] + s[stem + "Right"]

    return {
        "jaw": s["jawOpen"],
        "blink": pair("eyeBlink") / 2,
        "gaze_h": ((s["eyeLookOutLeft"] - s["eyeLookInLeft"]) + (s["eyeLookInRight"] - s["eyeLookOutRight"])) / 2,
        "gaze_v": (pair("eyeLookUp") - pair("eyeLookDown")) / 2,
        "brow": (s["browInnerUp"] + pair("browOuterUp")) / 3 - pair("browDown") / 2,
        "smile": pair("mouthSmile") / 2,
        "pucker": (s["mouthPucker"] + s["mouthFunnel"]) / 2,
    }


def head_angles_deg(matrix: np.ndarray) -> dict[str, float]:
    """[4, 4] MediaPipe facial transformation matrix -> {"yaw", "pitch", "roll"} in degrees (the
    conventions of `control.euler_deg`: OpenCV camera axes; positive yaw turns the face towards the image
    left, positive pitch tilts the nose down). Any scale in the matrix is removed (nearest rotation)."""
    m = np.asarray(matrix, np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise ValueError(f"need a finite [4, 4] matrix, got {m.shape}")
    u, _, vt = np.linalg.svd(m[:3, :3])
    r = u @ vt
    if np.linalg.det(r) < 0:
        r = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    return euler_deg(matrix_to_quat(_GL_TO_CV @ r @ _GL_TO_CV))


@dataclass
class ReaderFrame:
    """What the reader saw on one image (the largest face)."""

    blendshapes: dict[str, float]  # MediaPipe category name -> score in [0, 1]
    matrix: np.ndarray  # [4, 4] facial transformation matrix (MediaPipe metric space, cm)
    landmarks_px: np.ndarray  # [478, 3] x, y in pixels, z relative depth (pixel units)

    @property
    def groups(self) -> dict[str, float]:
        """The frame's blendshapes summed into the reader's groups (`blendshape_groups`: jaw, blink, smile ...)."""
        return blendshape_groups(self.blendshapes)

    @property
    def angles_deg(self) -> dict[str, float]:
        """The head's yaw, pitch and roll in degrees from the frame's transformation matrix (`head_angles_deg`)."""
        return head_angles_deg(self.matrix)


class FaceReader:
    """MediaPipe FaceLandmarker from a user's .task file (nothing is downloaded).

    video=True: frames of one clip in order (`read(rgb, stamp_ns)` with increasing stamps; tracks between
    frames, as the reader of a video should); video=False: unrelated images (`read(rgb)`). Raises
    ValueError when the file is missing, is not a FaceLandmarker bundle, or has no blendshape model."""

    def __init__(self, model_path: str, video: bool = True, min_confidence: float = 0.5):
        from gaussian_head_ros.core.tracking import TaskLandmarker, check_landmarker_task

        check_landmarker_task(model_path, "reader model", blendshapes=True)
        self.video = video
        self._lm = TaskLandmarker(model_path, 1, min_confidence, image_mode=not video)
        self._last_ms = -1

    def read(self, rgb: np.ndarray, stamp_ns: int | None = None) -> ReaderFrame | None:
        """[H, W, 3] uint8 RGB -> ReaderFrame, or None when no face is found."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"need an [H, W, 3] uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        ms = 0
        if self.video:
            if stamp_ns is None:
                raise ValueError("a video reader needs the frame's stamp")
            ms = max(int(stamp_ns // 1_000_000), self._last_ms + 1)  # MediaPipe wants strictly increasing ms
            self._last_ms = ms
        faces = self._lm.detect(rgb, ms)
        if not faces:
            return None
        if faces[0].blendshapes is None or not self._lm.last_matrices:
            raise ValueError("the reader model gives no blendshapes or no transformation matrix: use a "
                             "FaceLandmarker bundle with blendshapes (face_landmarker.task)")
        scores = {n: float(v) for n, v in zip(self._lm.names, faces[0].blendshapes)}
        return ReaderFrame(scores, self._lm.last_matrices[0], faces[0].landmarks_px)

    def close(self) -> None:
        """Free the FaceLandmarker."""
        self._lm.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BlendshapeModel:
    """The reader's own blendshape model run on landmarks given to it, without an image: what FaceLandmarker
    would score for a face whose landmarks were these. FaceLandmarker reads an image in two steps, landmarks
    (face_landmarks_detector.tflite) and then 52 blendshape scores from those landmarks alone
    (face_blendshapes.tflite, MediaPipe's FaceBlendshapesGraph, inputs: the landmarks and the image size); this
    runs the second step only, so a reading can be taken apart: an avatar's rest landmarks plus the operator's
    motion, one region's landmarks from another face, and so on (scripts/mouth_follow.py --swap).

    On the reader's own landmarks of a frame it gives that frame's scores (identical on lp_d18 frames; the model
    reads x and y only: z changes nothing). model_path: the same .task bundle as FaceReader; its blendshape model is
    unpacked into a temporary folder kept while this object lives. Raises ValueError when the file is missing or
    holds no face_blendshapes.tflite."""

    MEMBER = "face_blendshapes.tflite"
    _GRAPH = """
input_stream: "LANDMARKS:landmarks"
input_stream: "IMAGE:image"
output_stream: "BLENDSHAPES:blendshapes"
node { calculator: "ImagePropertiesCalculator" input_stream: "IMAGE:image" output_stream: "SIZE:size" }
node { calculator: "mediapipe.tasks.vision.face_landmarker.FaceBlendshapesGraph"
  input_stream: "LANDMARKS:landmarks" input_stream: "IMAGE_SIZE:size" output_stream: "BLENDSHAPES:blendshapes"
  options { [mediapipe.tasks.vision.face_landmarker.proto.FaceBlendshapesGraphOptions.ext] {
    base_options { model_asset { file_name: "%s" } } } } }
"""

    def __init__(self, model_path: str):
        import tempfile
        import zipfile

        import mediapipe as mp
        from mediapipe.python import packet_getter
        from mediapipe.tasks.cc.vision.face_landmarker.proto import face_blendshapes_graph_options_pb2  # noqa: F401

        from gaussian_head_ros.core.tracking import check_landmarker_task

        check_landmarker_task(model_path, "reader model", blendshapes=True)
        with zipfile.ZipFile(model_path) as z:
            self._dir = tempfile.TemporaryDirectory(prefix="blendshapes_")
            path = z.extract(self.MEMBER, self._dir.name)
        self._mp = mp
        self._graph = mp.CalculatorGraph(graph_config=self._GRAPH % path)
        self._out = []
        self._graph.observe_output_stream("blendshapes", lambda _, p: self._out.append(packet_getter.get_proto(p)))
        self._graph.start_run()
        self._t = 0
        self._blank = {}

    def scores(self, landmarks_px: np.ndarray, size: tuple[int, int]) -> dict[str, float]:
        """[478, 2 or 3] landmarks in pixels (x right, y down; z, when given, in pixel units as FaceReader gives
        them) of an image of `size` (width, height) -> {MediaPipe category name: score in [0, 1]}."""
        from mediapipe.framework.formats import landmark_pb2
        from mediapipe.python import packet_creator

        x = np.asarray(landmarks_px, np.float64)
        if x.ndim != 2 or x.shape[0] != lmk.NUM_LANDMARKS or x.shape[1] not in (2, 3) or not np.isfinite(x).all():
            raise ValueError(f"need [{lmk.NUM_LANDMARKS}, 2|3] finite landmarks, got {x.shape}")
        w, h = int(size[0]), int(size[1])
        if (w, h) not in self._blank:  # only the image's size is read from it
            self._blank[(w, h)] = self._mp.Image(image_format=self._mp.ImageFormat.SRGB,
                                                 data=np.zeros((h, w, 3), np.uint8))
        msg = landmark_pb2.NormalizedLandmarkList()
        for p in x:
            lm = msg.landmark.add()
            lm.x, lm.y, lm.z = p[0] / w, p[1] / h, (p[2] / w if len(p) > 2 else 0.0)
        self._t += 1
        n = len(self._out)
        self._graph.add_packet_to_input_stream("landmarks", packet_creator.create_proto(msg).at(self._t))
        self._graph.add_packet_to_input_stream("image", packet_creator.create_image(self._blank[(w, h)]).at(self._t))
        self._graph.wait_until_idle()
        return {c.label: float(c.score) for c in self._out[n].classification}

    def close(self) -> None:
        """Free the blendshape graph and its temporary model folder (idempotent)."""
        if self._graph is not None:
            self._graph.close()
            self._graph = None
            self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class ReaderSeries:
    """Per-frame reader values of one video: [T] lists, NaN where no face was found."""

    groups: dict[str, list[float]] = field(default_factory=lambda: {g: [] for g in GROUPS})
    angles: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ANGLES})

    def add(self, frame: ReaderFrame | None) -> None:
        """Append one frame's groups and angles (NaN for each when `frame` is None: no face found)."""
        g = frame.groups if frame is not None else {}
        a = frame.angles_deg if frame is not None else {}
        for k in GROUPS:
            self.groups[k].append(g.get(k, math.nan))
        for k in ANGLES:
            self.angles[k].append(a.get(k, math.nan))

    def __len__(self) -> int:
        return len(self.groups["jaw"])

    def found(self) -> np.ndarray:  # [T] bool
        """[T] bool: the frames with a face found."""
        return np.isfinite(np.asarray(self.groups["jaw"], np.float64))

    @classmethod
    def from_json(cls, d: dict) -> ReaderSeries:
        """The inverse of evaluate's `reader_series` entry ({group or angle: [T] values, None = no face})."""
        s = cls()
        for k in GROUPS:
            s.groups[k] = [math.nan if v is None else float(v) for v in d[k]]
        for k in ANGLES:
            s.angles[k] = [math.nan if v is None else float(v) for v in d[k]]
        return s


def min_std(group: str) -> float:
    """The driver std below which a group's r is not reported (MIN_STD, or NOISE_MARGIN x its NOISE_STD)."""
    return max(MIN_STD, NOISE_MARGIN * NOISE_STD.get(group, 0.0))


def driver_moves(group: str, driver: np.ndarray) -> bool:
    """Whether a driver's [T] series of one group moves clearly above the reader's noise (module docstring)."""
    d = np.asarray(driver, np.float64)
    if len(d) < MIN_FRAMES or float(np.std(d)) < min_std(group):
        return False
    return group != "blink" or float(d.max() - np.percentile(d, 10)) >= BLINK_MIN_RISE


def _r(driver: np.ndarray, render: np.ndarray, min_std: float) -> float | None:
    if len(driver) < MIN_FRAMES or float(np.std(driver)) < min_std:
        return None
    return round(correlation(driver, render), 4)


def compare(driver: ReaderSeries, render: ReaderSeries) -> dict:
    """Two series of the same frames -> flat metrics: r_<group>, slope_<group> (the render's least-squares
    slope against the driver's series: 1 = the same amplitude, 0.3 = a third of it; None where r is None),
    rank_<group> (Spearman's rank correlation: the render follows the driver's order along a curve Pearson's r
    calls bent; None where r is None),
    r_<angle>, mae_<angle>_deg, std_<group> and std_<angle>_deg (the driver's amplitude, for judging an r),
    reader_frames (frames with a face in both), no_face_driver, no_face_render. Raises ValueError when the
    lengths differ."""
    if len(driver) != len(render):
        raise ValueError(f"series of different lengths: driver {len(driver)}, render {len(render)}")
    both = driver.found() & render.found()
    out: dict = {"reader_frames": int(both.sum()), "no_face_driver": int((~driver.found()).sum()),
                 "no_face_render": int((~render.found()).sum())}
    for k in GROUPS:
        d = np.asarray(driver.groups[k], np.float64)[both]
        p = np.asarray(render.groups[k], np.float64)[both]
        moves = driver_moves(k, d)
        out[f"r_{k}"] = round(correlation(d, p), 4) if moves else None
        out[f"slope_{k}"] = round(slope(d, p), 4) if moves else None
        out[f"rank_{k}"] = round(rank_correlation(d, p), 4) if moves else None
        out[f"std_{k}"] = round(float(np.std(d)), 4) if d.size else None
    for k in ANGLES:
        d = np.asarray(driver.angles[k], np.float64)[both]
        p = np.asarray(render.angles[k], np.float64)[both]
        out[f"r_{k}"] = _r(d, p, MIN_STD_DEG)
        out[f"mae_{k}_deg"] = round(float(np.mean(np.abs(p - d))), 3) if d.size else None
        out[f"std_{k}_deg"] = round(float(np.std(d)), 3) if d.size else None
    return out


class ReaderComparison:
    """Feeds the driver's and the rendered frames, pair by pair, to two video readers (one per stream, so
    each tracks its own video); `summary()` gives `compare()` of the two series."""

    def __init__(self, model_path: str):
        self._readers = (FaceReader(model_path, video=True), FaceReader(model_path, video=True))
        self.driver, self.render = ReaderSeries(), ReaderSeries()

    def add(self, driver_rgb: np.ndarray, render_rgb: np.ndarray, stamp_ns: int) -> None:
        """Read one driver frame and its render ([H, W, 3] uint8 RGB each; `stamp_ns` the frame's time, for
        the video-mode readers) and append both series."""
        self.driver.add(self._readers[0].read(driver_rgb, stamp_ns))
        self.render.add(self._readers[1].read(render_rgb, stamp_ns))

    def summary(self) -> dict:
        """`compare(driver, render)` of the frames added so far."""
        return compare(self.driver, self.render)

    def close(self) -> None:
        """Free both readers."""
        for r in self._readers:
            r.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
