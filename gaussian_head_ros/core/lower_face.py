"""Is the operator's lower face (mouth, jaw, chin) in view? And what the tracker sends when it is not.

MediaPipe's face mesh always places all 478 landmarks: with the chin outside the frame, or a hand
over the mouth, it invents a lower face (usually a closed mouth) with full confidence, and the whole
mesh tilts, so the head's pitch drifts by several degrees (measured on the ../shared driving clips:
3-12 degrees with a hand over the mouth, 1-4 with the chin cut by the frame). Two causes are checked:

- the frame's edge: the share of the lips landmarks (`landmarks.LIPS`) and of the chin's
  (`landmarks.CHIN_REGION`) inside the frame (from 0.6: missing, to 0.9: in view);
- a hand: MediaPipe Hands (its palm detector and hand landmark models ship in the mediapipe wheel, no
  download) on a crop around the lower face every `hand_every` frames (every `hand_every_near` while a
  hand is there); the share of those landmarks inside a found hand's outline (its 21 landmarks' convex
  hull, grown by a finger's width). It is the costly part: one check ~1.5x a face-mesh frame (measured
  55 vs 38 ms under a load of 21 on this 2-core machine), so ~+50% tracker time at one check in three. So it
  runs beside the frames, on a thread of its own: a check starts with its frame's crop and its result is taken
  at the next frame (one frame later than the check's own frame, the same one every time: results do not depend
  on timing). The frame that starts a check does not wait for it (it made every third frame ~2x slower:
  end-to-end glass-to-glass p90 of the tracker 20 ms against p50 10 ms), and the next frame only waits if the
  check is not done by then.

Visibility = the smaller of the two, 1 (all in view) .. 0 (none). Below `visible` the lower face is
missing, and `LowerFaceMonitor.steady` makes the control honest about it: confidence times visibility
(below tracker_node's min_confidence, 0.5), mouth_open, the lower face's expression and the jaw/mouth
blendshapes held at their last seen values and faded to neutral over `fade_s`, and the pitch kept
continuous (the fit's tilt at the moment of the loss is taken off; later nods still pass). No rclpy here.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.control import FaceControl, euler_deg, euler_to_quat
from gaussian_head_ros.core.native_log import quiet_notices

log = logging.getLogger(__name__)

LOWER_POINTS = np.asarray(sorted(set(lmk.LIPS) | set(lmk.CHIN_REGION)))  # what "the lower face" is checked by
_PARTS = (np.asarray(lmk.LIPS), np.asarray(lmk.CHIN_REGION))
HAND_CROP_PX = 224  # the crop around the lower face is scaled to this (the hand landmark model's input size)


@dataclass
class LowerFaceConfig:
    """LowerFaceMonitor settings."""

    hand_every: int = 3  # run the hand check every N frames (0: never; the frame-edge check always runs); every
    #                      6th frame halves its cost but the pitch then settles from further back (4.6 deg error)
    hand_every_near: int = 2  # ... every N frames while a hand was found near the lower face at the last check
    visible: float = 0.5  # below this visibility the lower face is missing
    fade_s: float = 1.0  # time constant of the fade of mouth/jaw to neutral while it is missing, seconds
    crop_faces: float = 1.8  # side of the hand-check crop, in face widths, centred on the lower face
    finger_frac: float = 0.12  # a hand's outline grown by this share of its size (a finger's width)


class LowerFaceMonitor:
    """Per-frame lower-face visibility and the control the tracker sends with it. One per tracker."""

    def __init__(self, config: LowerFaceConfig | None = None):
        self.config = config or LowerFaceConfig()
        self._hands = None  # MediaPipe Hands, made on first use (on the hand-check thread, which alone uses it)
        self._pool: ThreadPoolExecutor | None = None  # the hand-check thread, started with the first check
        self._pending: Future | None = None  # the check started with the last checked frame: its cover share
        self._until_check = 0  # frames until the next hand check
        self._hand_near = False  # the last hand check found a hand by the lower face
        self._hand_visibility = 1.0
        self._by_hand = False  # the last visibility came from the hand check (which lags by up to hand_every)
        self.reset()

    def reset(self) -> None:
        """Forget what was last seen (a new stream)."""
        # The last controls with the lower face in view: the oldest is the one held, since the hand check
        # runs every `hand_every` frames and its result comes a frame later, so the few frames before a detection
        # may already be covered.
        self._recent: deque[FaceControl] = deque(maxlen=max(1, self.config.hand_every) + 2)
        self._take_pending()  # a check started with the old stream's last frames: not this one's
        self._seen: FaceControl | None = None  # the control held while the lower face is missing
        self._pitch_offset = 0.0  # degrees: the fit's pitch at the loss minus the held control's
        self._lost_at: float | None = None  # stamp (s) when it went missing

    def close(self) -> None:
        """Finish a hand check still running, free MediaPipe Hands on its thread and stop that thread
        (idempotent)."""
        if self._pool is not None:
            self._take_pending()
            self._pool.submit(self._close_hands).result()
            self._pool.shutdown()
            self._pool = None

    def _close_hands(self) -> None:
        if self._hands is not None:
            self._hands.close()
            self._hands = None

    def _take_pending(self) -> float | None:
        """The cover share found by the check started with an earlier frame (waits for it), or None."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    # ------------------------------------------------------------------------------------------------
    def visibility(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> float:
        """[H, W, 3] uint8 frame + [478, 3] its face's landmarks (pixels) -> visibility of the lower face,
        1 (in view) .. 0 (cut off by the frame or covered by a hand)."""
        h, w = rgb.shape[:2]
        lm = np.asarray(landmarks_px, np.float64)
        in_frame = 1.0
        for part in _PARTS:  # the lips and the chin, each: a point or two off the edge is fine
            p = lm[part, :2]
            inside = float(np.mean((p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)))
            in_frame = min(in_frame, float(np.clip((inside - 0.6) / 0.3, 0.0, 1.0)))
        pts = lm[LOWER_POINTS, :2]
        every = self.config.hand_every
        cover = self._take_pending()  # the check started with the last checked frame
        if cover is not None:
            self._hand_visibility = 1.0 - cover
        if every > 0 and self._until_check <= 0:
            crop, crop_pts = self._hand_crop(rgb, landmarks_px, pts)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hand_check")
            self._pending = self._pool.submit(self._hand_cover, crop, crop_pts)
            self._until_check = self.config.hand_every_near if self._hand_near else every
        self._until_check -= 1
        self._by_hand = every > 0 and self._hand_visibility < in_frame
        return min(in_frame, self._hand_visibility if every > 0 else 1.0)

    def _hand_crop(self, rgb: np.ndarray, landmarks_px: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[S, S, 3] uint8 crop around the lower face (S = HAND_CROP_PX) and [P, 2] its points in the crop."""
        import cv2

        lm = np.asarray(landmarks_px, np.float64)
        face_w = float(np.linalg.norm(lm[lmk.CHEEK_R, :2] - lm[lmk.CHEEK_L, :2]))
        side = max(16.0, self.config.crop_faces * face_w)
        cx, cy = pts.mean(0)
        x0, y0 = cx - side / 2, cy - side / 2
        s = HAND_CROP_PX / side
        warp = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float32)
        crop = cv2.warpAffine(np.ascontiguousarray(rgb), warp, (HAND_CROP_PX, HAND_CROP_PX), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REPLICATE)
        return crop, ((pts - [x0, y0]) * s).astype(np.float32)

    @quiet_notices
    def _hand_cover(self, crop: np.ndarray, p: np.ndarray) -> float:
        """Share of the points `p` [P, 2] (crop pixels) inside a hand found in `crop` (the hand-check thread)."""
        import cv2

        if self._hands is None:
            import mediapipe as mp

            self._hands = mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=0,
                                                   min_detection_confidence=0.5, min_tracking_confidence=0.5)
        res = self._hands.process(crop)
        self._hand_near = bool(res.multi_hand_landmarks)
        if not res.multi_hand_landmarks:
            return 0.0
        covered = np.zeros(len(p), bool)
        for hand in res.multi_hand_landmarks:
            q = np.array([(v.x * HAND_CROP_PX, v.y * HAND_CROP_PX) for v in hand.landmark], np.float32)
            hull = cv2.convexHull(q)
            grow = self.config.finger_frac * float(np.ptp(q, axis=0).max())
            covered |= np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) >= -grow for x, y in p])
        return float(covered.mean())

    # ------------------------------------------------------------------------------------------------
    def steady(self, control: FaceControl, visibility: float) -> FaceControl:
        """The control to send: unchanged while the lower face is in view (and remembered); while it is
        missing, confidence x visibility, mouth/jaw held and faded to neutral, the pitch's jump removed."""
        c = self.config
        if visibility >= c.visible:
            self._recent.append(control)
            self._lost_at = None
            return control
        t = control.stamp_ns * 1e-9
        e = euler_deg(control.rotation)
        if self._lost_at is None:
            self._lost_at = t
            # the hand check runs every `hand_every` frames: the frames just before it may be covered already
            self._seen = (self._recent[0] if self._by_hand else self._recent[-1]) if self._recent else None
            self._recent.clear()
            # MediaPipe tilts its whole mesh when the lower face goes: keep the pitch continuous from the
            # held control and let it follow the fit's changes from there.
            self._pitch_offset = e["pitch"] - euler_deg(self._seen.rotation)["pitch"] if self._seen else 0.0
            log.info("lower face out of view (visibility %.2f): holding mouth and jaw, pitch steadied", visibility)
        out = replace(control, confidence=float(min(control.confidence, control.confidence * visibility)))
        out.rotation = euler_to_quat(e["yaw"], e["pitch"] - self._pitch_offset, e["roll"]).astype(np.float32)
        if self._seen is None:  # nothing seen yet: the neutral face
            fade, seen = 0.0, control
        else:
            fade, seen = math.exp(-(t - self._lost_at) / c.fade_s), self._seen
        out.mouth_open = float(seen.mouth_open * fade)
        if control.expression.shape == seen.expression.shape and len(control.expression) > int(LOWER_POINTS.max()):
            lower = _lower_rows(control.landmarks - control.expression)
            expr = control.expression.copy()
            expr[lower] = seen.expression[lower] * fade
            out.expression = expr
            if control.landmarks.shape == expr.shape:
                out.landmarks = (control.landmarks - control.expression + expr).astype(np.float32)
        if len(control.blendshapes) and list(seen.blendshape_names) == list(control.blendshape_names):
            bs = control.blendshapes.copy()
            for i, name in enumerate(control.blendshape_names):
                if name.startswith(("jaw", "mouth", "cheekPuff")):
                    bs[i] = seen.blendshapes[i] * fade
            out.blendshapes = bs
        return out


def _lower_rows(neutral: np.ndarray) -> np.ndarray:
    """[L] bool: the landmarks of a canonical face (head frame, y down) below its nose base: mouth, jaw, chin."""
    return neutral[:, 1] > neutral[lmk.NOSE_BASE, 1]
