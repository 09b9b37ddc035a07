"""MediaPipe face mesh on photos and frames, and the head frame fitted to its landmarks.

Uses only the models bundled in the mediapipe 0.10.21 wheel (face mesh with irises, full-range face
detector), so it works offline on a fresh machine. Faces that are small in a large frame, which the
face mesh's own detector misses, are found with the full-range detector and re-meshed on a crop.

The head frame (shared with the avatar and the tracker): x image-right, y down, z into the head,
metres, origin between the two sides of the face at cheek level. It is built from symmetric, rigid
landmark pairs (eye corners, cheekbones, nose wings) and the forehead-to-nose line, so neither the
jaw nor the mouth moves it; the scale puts the outer eye corners CANONICAL_EYE_SPAN metres apart.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core.landmarks import (CHEEK_L, CHEEK_R, CHIN, FOREHEAD, NOSE_BASE, NUM_MESH, OUTER_EYE,
                                              RIGID_PAIRS)
from gaussian_head_ros.core.native_log import opened, quiet_notices

log = logging.getLogger(__name__)

MIN_IMAGE_SIDE = 16  # pixels: the shortest side of an image detect() reads (MediaPipe's graphs need some image to look at)
# FaceMesh.upside_down: how much better the face detector must score an image turned half a turn, and the least score
# of that turned image (upright faces score 0.84-0.98; a stray detection where it misses the face, less)
UPSIDE_DOWN_MARGIN, UPSIDE_DOWN_MIN_SCORE = 0.1, 0.5
CANONICAL_EYE_SPAN = 0.09  # metres between the outer eye corners (landmarks.OUTER_EYE) of the canonical head


@dataclass
class FaceDetection:
    """One face found in an image."""

    landmarks_px: np.ndarray  # [478, 3] x, y in pixels; z relative depth in pixel units (larger = farther)
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels (landmark extent)
    score: float  # detection confidence in [0, 1] (1.0 when the face mesh found it directly)
    # [32, 2] the iris model's eye outline in pixels at iris.OUTLINE (right eye's 16, then the left's); None without
    # the iris model
    eye_outline_px: np.ndarray | None = None

    @property
    def width(self) -> float:
        """The landmarks' horizontal extent, x1 - x0 of `bbox`, in pixels."""
        return self.bbox[2] - self.bbox[0]

    @property
    def area(self) -> float:
        """The landmark box's area, (x1 - x0) * (y1 - y0) of `bbox`, in square pixels."""
        return (self.bbox[2] - self.bbox[0]) * (self.bbox[3] - self.bbox[1])


@dataclass
class HeadFit:
    """The head frame fitted to one face's landmarks."""

    rotation: np.ndarray  # [3, 3] head -> camera
    translation: np.ndarray  # [3] head origin in the camera frame, metres
    metres_per_pixel: float  # at the head's depth
    canonical: np.ndarray  # [478, 3] landmarks in the head frame, metres (pose and scale removed)


def default_intrinsics(width: int, height: int, fov_deg: float = 50.0) -> np.ndarray:
    """[3, 3] a plausible pinhole camera for a photo or webcam frame whose calibration is unknown."""
    f = 0.5 * max(width, height) / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float64)


def fit_head_frame(landmarks_px: np.ndarray, K: np.ndarray) -> HeadFit:
    """[478|468, 3] pixel landmarks + [3, 3] intrinsics -> the head frame's pose and canonical landmarks."""
    p = np.asarray(landmarks_px, np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] < NUM_MESH or not np.all(np.isfinite(p)):
        raise ValueError(f"need [468|478, 3] finite landmarks, got {p.shape}")
    # x axis: mean over symmetric pairs of (subject's left - subject's right), in the image plane + depth.
    x = sum(p[b] - p[a] for a, b in RIGID_PAIRS)
    x /= np.linalg.norm(x)
    y = p[NOSE_BASE] - p[FOREHEAD]
    y -= x * (y @ x)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    rot = np.stack([x, y, z], axis=1)  # columns = head axes in camera (pixel) coordinates
    origin_px = 0.5 * (p[CHEEK_R] + p[CHEEK_L])
    span_px = np.linalg.norm(p[OUTER_EYE[1]] - p[OUTER_EYE[0]])
    if span_px < 1e-6:
        raise ValueError("degenerate landmarks (eye corners coincide)")
    m_per_px = CANONICAL_EYE_SPAN / span_px
    canonical = ((p - origin_px) @ rot) * m_per_px
    # Depth from the pinhole model: a span of span_px pixels is CANONICAL_EYE_SPAN metres at depth fx * m_per_px.
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    depth = fx * m_per_px
    t = np.array([(origin_px[0] - cx) * depth / fx, (origin_px[1] - cy) * depth / fy, depth])
    return HeadFit(rot, t, float(m_per_px), canonical.astype(np.float32))


def quarter_turns(landmarks_px: np.ndarray) -> int:
    """Quarter turns k (0..3) that make a face upright: np.rot90(image, k) (counter-clockwise as displayed) puts
    its forehead above its chin within 45 degrees. landmarks_px: [478, >=2] in the image's pixels (x right,
    y down). 1: the head's top points to the image's right, 2: the face is upside down, 3: the top points left.

    A photo stored sideways without an EXIF Orientation tag (a phone's landscape shot sent through an app that
    strips it, a scan) lies on its side; framed as it is, the avatar's head was on its side, its torso beside
    the head (try10). The tracker says a camera on its side by the same rule (tracking.FaceTracker.side_turn).
    MediaPipe finds such faces, so their landmarks say which way is up. NOT for faces upside down: MediaPipe
    0.10.21 fits those as upright faces (forehead landmarks on the chin), so this returns 0 for them (measured
    on obama_official turned 180 and 135 degrees: FaceMesh.upside_down tells the 180); turned 50 degrees gives
    3 (rightly)."""
    up = np.asarray(landmarks_px, np.float64)[FOREHEAD, :2] - np.asarray(landmarks_px, np.float64)[CHIN, :2]
    angle = math.degrees(math.atan2(up[0], -up[1]))  # 0: upright, +90: the top points to the right (x)
    return round(angle / 90.0) % 4


class FaceMesh:
    """MediaPipe face mesh (478 landmarks) with a full-range-detector fallback for small faces.

    static_image_mode=True for photos (every call detects from scratch); False for video (tracks
    between frames, faster). Not thread-safe: one instance per thread.

    Settled landmarks: MediaPipe's landmark model sees the face in a region of interest, from the face
    detector on a first frame, from the previous frame's own landmarks after that, and the two disagree:
    on the ../shared clips the landmarks of the detector's region were up to 2 % smaller than those of
    the same frame's landmark region (sadtalker frame 0: rigid-landmark spread 1.000 vs 1.012, later
    frames 1.01-1.02), so a photo's avatar and the tracker's later frames disagreed on the head's scale
    (the self-reenacted head drawn ~1.5 % too large). Every face the detector finds (a photo, a video's
    first frame, a face found again after a loss) is therefore run once more from the region its
    landmarks give: photos and video frames alike come from the landmark region (one extra landmark
    pass, ~3-5 ms, only on those frames).

    Irises: with iris_model=True (the default) each face's iris points are centred where MediaPipe's dedicated
    iris model puts the iris, run on the eyes of the full-resolution image (core/iris.py says why: the mesh's
    own iris points miss sub-pixel eye turns; IrisModel.refine keeps the mesh's ring size), and the same run's eye
    outline comes with each face (`FaceDetection.eye_outline_px`: the tracker's lid ratios); False keeps the
    mesh's own irises and gives no outline."""

    MAX_SIDE = 1280  # images are scaled down to this before detection; landmarks are mapped back

    @quiet_notices
    def __init__(self, static_image_mode: bool = True, max_faces: int = 4, min_confidence: float = 0.5,
                 iris_model: bool = True):
        import mediapipe as mp  # deferred: importing mediapipe costs ~1 s

        from gaussian_head_ros.core.iris import IrisModel

        self._mp = mp
        self._iris = IrisModel() if iris_model else None
        self.max_faces = max_faces
        self.min_confidence = min_confidence
        # MediaPipe's video graph in both modes; a photo gets a fresh one (its reset() keeps some state: the
        # same photo's landmarks moved by up to 11 px with the photo seen before), settled like a first frame.
        self.static_image_mode = static_image_mode
        self._mesh = None if static_image_mode else opened(self._video_graph())  # (a photo's: run at once)
        self._tracking = False  # the last call found faces: the graph follows them from their landmarks
        self._crop_mesh = None  # a static one-face mesh for crops, made on first need
        self._detector = None  # the full-range face detector, made on first need
        self._near_detector = None  # the short-range one (upright_score), made on first need

    def _video_graph(self):
        return self._mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=self.max_faces, refine_landmarks=True,
            min_detection_confidence=self.min_confidence, min_tracking_confidence=self.min_confidence)

    def close(self) -> None:
        """Free MediaPipe's graphs (the mesh, the crop mesh, the detector, the iris model)."""
        for m in (self._mesh, self._crop_mesh, self._detector, self._near_detector, self._iris):
            if m is not None:
                m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------------------------------------
    @quiet_notices
    def detect(self, rgb: np.ndarray) -> list[FaceDetection]:
        """[H, W, 3] uint8 RGB -> faces, largest first (empty when there is none)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < MIN_IMAGE_SIDE:
            raise ValueError(f"need an RGB uint8 image of at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}, "
                             f"got {rgb.shape} {rgb.dtype}")
        small, scale = _fit_within(rgb, self.MAX_SIDE)
        mesh = self._video_graph() if self.static_image_mode else self._mesh
        try:
            faces = self._mesh_faces(mesh, small)
            if faces and not self._tracking:  # found by the detector: settle them from their landmarks' region
                faces = self._mesh_faces(mesh, small) or faces
        finally:
            if mesh is not self._mesh:
                mesh.close()
        self._tracking = bool(faces) and not self.static_image_mode
        for f in faces:
            f.landmarks_px /= scale
            f.bbox = tuple(v / scale for v in f.bbox)
        if not faces:
            faces = self._faces_via_detector(rgb)
        elif self.static_image_mode and len(faces) < self.max_faces:  # a photo: the faces the mesh missed
            faces += self._faces_via_detector(rgb, skip=[f.bbox for f in faces])[: self.max_faces - len(faces)]
        if self._iris is not None:
            for f in faces:
                lm, outline = self._iris.refine_with_outline(rgb, f.landmarks_px)
                f.landmarks_px, f.eye_outline_px = lm.astype(np.float32), outline.astype(np.float32)
        faces.sort(key=lambda f: -f.area)
        return faces

    # ------------------------------------------------------------------------------------------------
    def _mesh_faces(self, mesh, rgb: np.ndarray) -> list[FaceDetection]:
        h, w = rgb.shape[:2]
        res = mesh.process(np.ascontiguousarray(rgb))
        out = []
        for lms in res.multi_face_landmarks or []:
            a = np.array([(lm.x * w, lm.y * h, lm.z * w) for lm in lms.landmark], np.float32)
            out.append(FaceDetection(a, _bbox(a), 1.0))
        return out

    @quiet_notices
    def upright_score(self, rgb: np.ndarray) -> float:
        """[H, W, 3] uint8 RGB (scaled to within MAX_SIDE) -> the best score in [0, 1] of MediaPipe's short-range face
        detector on it, 0.0 when it finds none. The detector reads faces the right way up: the nine ../shared
        portraits score 0.84-0.98 as they are and 0.00-0.78 turned half a turn (each at least 0.18 less), where the
        face mesh fits an upside-down face as an upright one, its forehead landmarks on the chin (upside_down)."""
        if self._near_detector is None:
            self._near_detector = self._mp.solutions.face_detection.FaceDetection(
                model_selection=0, min_detection_confidence=0.1)
        small, _ = _fit_within(rgb, self.MAX_SIDE)
        res = self._near_detector.process(np.ascontiguousarray(small))
        return max((float(d.score[0]) for d in res.detections or [] if d.score), default=0.0)

    def upside_down(self, rgb: np.ndarray) -> bool:
        """Whether the face in an [H, W, 3] uint8 RGB image (a photo, a camera frame cropped around the face) is
        upside down: upright_score rates the image turned half a turn UPSIDE_DOWN_MARGIN higher than as it is, and at
        least UPSIDE_DOWN_MIN_SCORE. The face mesh cannot tell (it fits an upside-down face as an upright one): such a
        photo, stored turned without its EXIF orientation, made an avatar whose brows and eyes were the photo's chin
        and mouth, and such a camera (mounted upside down) grimaces (user37, s37). False when the detector finds the
        face in neither (a face under ~1/6 of the image: left as it is)."""
        turned = self.upright_score(np.rot90(rgb, 2))
        return turned >= UPSIDE_DOWN_MIN_SCORE and turned > self.upright_score(rgb) + UPSIDE_DOWN_MARGIN

    def _detections(self, rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Full-range face detector -> (cx, cy, w, h, score) in pixels of rgb. When the whole frame
        shows none, it looks again in overlapping tiles (the detector sees 192x192 pixels, so a small
        face in a large frame vanishes)."""
        if self._detector is None:
            self._detector = self._mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self.min_confidence)
        h, w = rgb.shape[:2]
        windows = [(0, 0, w, h)]
        tile = max(192, int(0.5 * min(h, w)))
        if min(h, w) > 2 * 192:
            step = tile // 2
            windows += [(x, y, tile, tile) for y in range(0, max(h - tile, 0) + 1, step)
                        for x in range(0, max(w - tile, 0) + 1, step)]
        out = []
        for x0, y0, ww, hh in windows:
            res = self._detector.process(np.ascontiguousarray(rgb[y0:y0 + hh, x0:x0 + ww]))
            for det in res.detections or []:
                b = det.location_data.relative_bounding_box
                out.append((x0 + (b.xmin + b.width / 2) * ww, y0 + (b.ymin + b.height / 2) * hh,
                            b.width * ww, b.height * hh, float(det.score[0]) if det.score else 0.5))
            if out:
                break
        return out

    def _faces_via_detector(self, rgb: np.ndarray, skip=()) -> list[FaceDetection]:
        """Full-range detection on a scaled copy, then the face mesh on a full-resolution square crop. `skip`:
        boxes (x0, y0, x1, y1, pixels of rgb) of faces already found; a detection centred in one is left out.

        In a photo (static_image_mode, max_faces > 1) this also runs when the mesh found faces: the mesh's own
        detector (short range) can miss one of several; two people side by side in a 2047x1137 photo (obama_official
        beside the astronaut portrait) gave one face, so no '2 faces found' warning and the avatar of whichever
        face it saw, not the largest (user13, s13). Costs one full-range detection (~0.1 s) per photo."""
        import cv2

        small, scale = _fit_within(rgb, self.MAX_SIDE)
        if self._crop_mesh is None:
            self._crop_mesh = self._mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=self.min_confidence)
        out = []
        for cx, cy, bw, bh, score in self._detections(small)[: self.max_faces]:
            if any(b[0] <= cx / scale <= b[2] and b[1] <= cy / scale <= b[3] for b in skip):
                continue
            side = 2.2 * max(bw, bh) / scale
            x0, y0 = int(round(cx / scale - side / 2)), int(round(cy / scale - side / 2))
            s = max(int(round(side)), 16)
            target = 384
            crop = cv2.resize(crop_padded(rgb, x0, y0, s), (target, target),
                              interpolation=cv2.INTER_AREA if s > target else cv2.INTER_CUBIC)
            faces = self._mesh_faces(self._crop_mesh, crop)
            if not faces:
                continue
            f = faces[0]
            f.landmarks_px = f.landmarks_px * (s / target) + np.array([x0, y0, 0], np.float32)
            f.bbox = _bbox(f.landmarks_px)
            f.score = score
            out.append(f)
        return out


def _bbox(a: np.ndarray) -> tuple[float, float, float, float]:
    return float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 0].max()), float(a[:, 1].max())


def _fit_within(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return rgb, 1.0
    import cv2

    return cv2.resize(rgb, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_AREA), scale


def crop_padded(rgb: np.ndarray, x0: int, y0: int, s: int) -> np.ndarray:
    """[H, W, C] image -> [s, s, C] the square crop whose top-left pixel is (x0, y0) (column, row; pixels), which
    may extend past the border: what lies outside repeats the nearest edge pixel."""
    h, w = rgb.shape[:2]
    xs = np.clip(np.arange(x0, x0 + s), 0, w - 1)
    ys = np.clip(np.arange(y0, y0 + s), 0, h - 1)
    return rgb[ys][:, xs]


class PersonSegmenter:
    """MediaPipe selfie segmentation (bundled model): [H, W, 3] uint8 RGB -> [H, W] person probability."""

    @quiet_notices
    def __init__(self, landscape: bool = False):
        import mediapipe as mp

        self._seg = opened(mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1 if landscape else 0))

    @quiet_notices
    def probability(self, rgb: np.ndarray) -> np.ndarray:  # [H, W] float32 in [0, 1]
        """[H, W, 3] uint8 RGB -> [H, W] float32 person probability in [0, 1] (zeros when the model gives no
        mask)."""
        res = self._seg.process(np.ascontiguousarray(rgb))
        if res.segmentation_mask is None:
            return np.zeros(rgb.shape[:2], np.float32)
        return np.asarray(res.segmentation_mask, np.float32)

    def close(self) -> None:
        """Free MediaPipe's segmentation graph."""
        self._seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
