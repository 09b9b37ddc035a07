"""Which regions of the operator's face are in view (the lower face: mouth, jaw, chin; the eye region: eyes and lids;
the brow region: brows and forehead), and what the tracker sends while one is not.

MediaPipe's face mesh always places all 478 landmarks: with a part of the face outside the frame, or a hand over
the mouth, it invents it with full confidence (a closed mouth; lids, gaze and brows that were never seen), and the
whole mesh tilts, so the head's pose drifts (measured on the ../shared driving clips: the pitch 3-12 degrees with a
hand over the mouth, 1-4 with the chin cut by the frame; lp_d18 slid up out of the frame's top, an operator standing
up: the pitch -3 -> -15 degrees, the lids 1.05 -> 0.84-1.35, the brows 3 mm down, the gaze 0.5 rad down, in the six
frames between the brows and the eyes leaving; user56, s56, /tmp/u56/s4/frames/00007.4.png: the avatar chin-down
with half-closed lids). Each region (`REGIONS`: its landmark parts in core/landmarks.py, and the control's channels
it owns) is checked for two causes:

- the frame's edge: the share of each of its parts' landmarks inside the frame (from 0.6: missing, to 0.9: in view),
  the smallest part's counting (the lower face: the lips and the chin; the eye region: each eye's contour, whose
  landmarks count as inside only `EYE_MARGIN` inside the frame's edges; the brow region: each brow);
- a hand (the lower face only): MediaPipe Hands (its palm detector and hand landmark models ship in the mediapipe
  wheel, no download) on a crop around the lower face every `hand_every` frames (every `hand_every_near` while a
  hand is there); the share of those landmarks inside a found hand's outline (its 21 landmarks' convex
  hull, grown by a finger's width). It is the costly part: one check ~1.5x a face-mesh frame (measured
  55 vs 38 ms under a load of 21 on this 2-core machine), so ~+50% tracker time at one check in three. So it
  runs beside the frames, on a thread of its own: a check starts with its frame's crop and its result is taken
  at the next frame (one frame later than the check's own frame, the same one every time: results do not depend
  on timing). The frame that starts a check does not wait for it (it made every third frame ~2x slower:
  end-to-end glass-to-glass p90 of the tracker 20 ms against p50 10 ms), and the next frame only waits if the
  check is not done by then.

A region's visibility = the smaller of the two, 1 (all in view) .. 0 (none). Below `visible` it is missing, and
`FaceRegionMonitor.steady` makes the control honest about it, by one rule for every region: confidence times the
smallest visibility (a held control reads below 0.5, a seen one 0.68-0.99 on the ../shared clips; nothing downstream
acts on it, a consumer may); the region's channels (the lower face: mouth_open,
its expression rows below the nose base, the jaw/mouth/cheekPuff blendshapes; the eye region: gaze, eyelid ratios,
its expression rows between the nose bridge and the skin under the brows, the eye blendshapes; the brow region: its
expression rows above that skin, the brow blendshapes) held at their last seen values and faded to
neutral over `fade_s`; the head's rotation kept continuous: the fit's tilt at the moment of the first loss is taken
off, and later turns pass in proportion to how much of the pose fit's own landmarks (`landmarks.RIGID_LANDMARKS`:
eye corners, temples, forehead, nose) is in view, inside the frame and outside every missing region, by the same
ramp as a part's share (a hand or a cut chin leave them all in view: later nods still pass; the eye and brow
regions hold half of them, so with the eyes missing the fit has nothing real to follow and the rotation stays). The
brows alone missing steady nothing of the pose (`Region.steadies_pose`: the mesh hardly tilts as they go, and a
rotation steadied until they came back drifted off the head's: FRAME58, sadtalker framed tight, the yaw's slope
0.24 steadied, 0.71 not). Below `visible` of that,
the head frame the expression is measured in is not seen, and every region is held but one whose anchors
(`Region.anchors`) are in view, each `ANCHOR_MARGIN` inside the frame: the lower face, anchored on the nose below its
bridge (`landmarks.NOSE`), keeps following while the lips, the chin and the nose are in the picture, its expression and
mouth_open still read in the pose fit's head frame, with the head's turn held (HOLD59 below).
The head's distance (the translation's z, from the pose fit's scale) follows the rotation's rule: the fit shrinks or
grows with the invented landmarks (lp_d18 slid up, the eyes cut: 0.32 m read as 0.42 m in 9 frames, the face found
again at 0.36 m; slid left 0.32 -> 0.29 m). Its x and y pass: where the seen part of the face lies in the picture
still places the head (off the moved clip's own position by at most 12 mm there; holding them as well was 80 mm off
by the last frame with a face, the head having moved on). `out` says which regions the last control holds and why
(a hand, the edge of the picture that cuts them), for the tracker node to tell the operator.
When a region comes back its channels, and the rotation once every region is back, are
handed back over `handback_s`: the difference between the held value and the live one decays, no snap. Frames with
every region in view and nothing to hand back pass unchanged. No rclpy here.

FRAME58, an operator framed tight (a laptop's webcam: the forehead and brows above the picture's top, the eyes
inside). Until session 58 the eyes and brows were one region, so the brows cut held the eyes (a staring avatar: no
blink, the gaze frozen) and, half the pose fit's landmarks counted out, the mouth and the head's turn too. The
../shared clips cropped the same on every frame (scripts/tight_framing.py --off --max-frames 150; r against the
uncropped clip's tracking of the same frames, the region check off, lp_d18 / sadtalker / lp_d0): the top edge
through the brows, blink 0.94 / 0.94 / 0.99, gaze across 0.70 / 0.95 / 1.00, up-down 0.88 / 0.86 / 0.95, mouth 1.00
/ 0.97 / 0.99, pitch 0.97 / 0.99 / 0.91, the brows 0.84 (slope 3.9) / 0.02 / 0.50: the eyes, mouth and pose are
read, the brows invented. The top edge through the eyes: blink 0.67 / 0.36 / 0.90, gaze 0.36 / 0.76 / 0.98 and 0.27
/ 0.58 / 0.60, pitch 0.93 (slope 2.3) / 0.99 / 0.05: invented. Between, by the eye contour's highest point's
distance below the top edge, in outer eye spans (the clips cropped after 20 uncropped frames, the lids' level
learned on those, ten top edges from the forehead to the eyes, the frames binned; helper frame58's
/tmp/f58/gridana.py, not kept; error against the uncropped clip, p90): lp_d18 blink 0.047-0.054 from 0.10 spans down
(gaze 0.057 at 0.10-0.15, 0.022-0.024 further in), 0.100 at 0-0.05, 0.16 past the edge; sadtalker blink 0.086 at
0.05-0.15 (0.057-0.064 from 0.2), 0.105 at 0-0.05, 0.29-0.32 past the edge, gaze 0.061 at 0.10-0.15, 0.140 at
0-0.05. hold57's slide (lp_d18 16 px a frame up, test_face_regions) agrees: the lids 0.024 and the gaze 0.052 off at
0.19 spans, the gaze 0.103 at 0.08, the lids 0.27 off at -0.03 (the lid drift hold57 saw "with the eyes inside" was
there, the contour's top already past the edge). Hence the split at the skin under the brows and the eye region's
margin. The top edge through the brows, the region check on (lp_d18 / sadtalker / lp_d0, 120 frames): blink r 0.95 /
0.88 / 0.99, gaze across 0.50 / 0.77 / 1.00, mouth 0.91 / 0.69 / 0.99 (main 2c3e6f6, 150 frames: 0 / 0.50 / 0, 0 /
0.60 / 0, 0 / 0.56 / 0), the eyes held on 64 / 23 / 0 of 105 / 105 / 63 frames (the head rising to within the
margin); through the eyes every channel stays held.

HOLD59, the mouth while the eyes are cut (an operator standing up, or leaning to the picture's top edge). Until
session 59 the lower face was held with the eyes once the pose fit's landmarks fell below `visible`: the operator
screamed, the robot showed a closed, fading mouth (track58's sheet, lp_d18 slid up, frames 33-40). What the face mesh
reads then (the four ../shared clips slid up 16-24 px a frame, test_face_regions' slide; the tracker's landmarks against
the unslid clip's, moved): the lips 0.5-1.6 px off and the lip gap within 1.7 px while the whole nose is in the
picture, however far above it the eyes are (1.3-3.7 px as it leaves); once the nose is gone, the mesh holds its
nose just inside the edge (at most 0.092 outer eye spans in) and squeezes the lips onto the picture, 5-27 px off, the lip gap read half or shut (lp_d18 frame
38: 18 px for 38; lp_d0 39: 5 for 23; sadtalker 36: 1 for 21; tpsmm 38: 5 for 12). So the nose is the lower face's
anchor. Against what the mouth is measured, against the unslid clip's tracking of the same frames (the clips cropped
through the eyes on every frame, after the neutral's calibration; lp_d18 / lp_d0 / sadtalker / tpsmm): in the pose
fit's head frame, as with the face in view, mouth_open r 1.00 / 0.99 / 0.95 / 0.97, slope 0.95 / 1.08 / 0.96 / 0.98,
the lower face's rows 3.2 / 1.8 / 4.1 / 2.1 mm rms off; in a frame re-fitted on the nose alone 0.94 / 0.81 / 0.85 / 0.97
slope, 3.6 / 3.7 / 4.1 / 3.8 mm; against the held turn (the fit's rows turned by the held rotation, the nose's
position and scale re-fitted) 5.2 / 2.7 / 11.1 / 8.5 mm (the head turns on while its turn is held). The fit keeps the
mesh's nose on the neutral's, and the lips ride with it: the pose fit's head frame it is. After (test_face_regions):
lp_d0 cropped through the eyes, mouth_open r 0 -> 0.98 (the lower lip's drop 0 -> 0.98), the lower face no longer
held on 63 of 63 frames; lp_d18 slid up, mouth_open 0.05 / 0.05 -> 0.21 / 0.38 at the frames whose eyes are cut
(the clip's 0.21 / 0.36), held again from the frame the nose nears the edge.
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

HAND_CROP_PX = 224  # the crop around the lower face is scaled to this (the hand landmark model's input size)
# A part's frame-edge visibility: its share of landmarks inside the frame, 0 at IN_FRAME_MISSING, 1 at IN_FRAME_SEEN
# (a point or two off the edge is fine)
IN_FRAME_MISSING, IN_FRAME_SEEN = 0.6, 0.9
HANDBACK_END = 0.01  # a hand-back ends when what is left of the held value's difference falls below this share
# The eye region's margin (Region.margin), outer eye spans: closer to the frame's top the face mesh's lids and gaze
# drift (FRAME58: blink p90 error 0.100 / 0.105 and gaze 0.078 / 0.140 at 0-0.05 spans on lp_d18 / sadtalker, about
# as far in as 0.2 spans from 0.10; hold57's slide, gaze 0.103 off at 0.08)
EYE_MARGIN = 0.12
# A region's anchors (Region.anchors) count as in view only if every one lies this far inside the frame's edges, in
# outer eye spans: once the nose has left the picture the face mesh keeps its nose just inside the edge, at most 0.092
# spans in, and puts the lips 5-27 px off with the lip gap read half (HOLD59: the four ../shared clips slid up and left,
# 333 frames with the lips in view; 0.10 follows none of the invented frames, 0.08 one; 0.12 holds 22 of the frames
# whose lips the mesh read within 4 px, against 17 at 0.10). All of them: by the share of them, as a part is counted,
# the bridge alone out passes a nose held at the edge (lp_d18 slid up, frame 39: its bridge 11 px inside, the lips 17 px
# off)
ANCHOR_MARGIN = 0.12


@dataclass(frozen=True)
class Region:
    """A region of the face the tracker checks, and the control channels it owns."""

    name: str
    said: str  # what it holds, in an operator's words (FaceRegionMonitor.note)
    parts: tuple[tuple[int, ...], ...]  # landmark index sets (core/landmarks.py); the least visible counts
    # its expression rows: the landmarks between these two (their heights on the neutral face; None: no bound)
    top: int | None
    bottom: int | None
    blendshapes: tuple[str, ...]  # prefixes of the ARKit blendshape names it owns
    mouth: bool = False  # owns mouth_open
    eyes: bool = False  # owns gaze and eyelid_ratios
    hand: bool = False  # the hand check looks for a hand over it
    # its parts' landmarks count as inside the frame only this far inside its edges, in outer eye spans (the eye
    # corners' distance in the picture: the face's size there)
    margin: float = 0.0
    # while it is missing the head's turn and distance are steadied (`FaceRegionMonitor._steady_pose`): MediaPipe
    # tilts its whole mesh as it goes (the lower face 1-12 deg of pitch, the eyes 3 -> 15 deg); the brows alone
    # 0.2-1.4 deg (FRAME58: the top edge through the brows, the region check off, the pitch's mean offset against
    # the uncropped clip, lp_d18 -0.46, sadtalker +0.18, lp_d0 +1.37)
    steadies_pose: bool = True
    # what keeps it measured once the pose fit's landmarks are too few (below `visible`: the eyes cut, the head's turn
    # held): while these landmarks are in view (each inside the frame by ANCHOR_MARGIN outer eye spans) it follows,
    # still read in the pose fit's head frame (HOLD59 in the module notes); () -- it is held with the turn
    anchors: tuple[int, ...] = ()


REGIONS = (
    Region("lower face", "the mouth and jaw", (lmk.LIPS, lmk.CHIN_REGION), lmk.NOSE_BASE, None,
           ("jaw", "mouth", "cheekPuff"), mouth=True, hand=True, anchors=lmk.NOSE),
    # The eyes and the brows are two regions, split at the skin under the brows (BROW_SKIN's highest point): an
    # operator framed tight, the brows above the picture's top and the eyes inside, still blinks and looks around
    # (FRAME58 below); their expression rows hold half the pose fit's landmarks between them, as the one region did
    Region("eye region", "the eyes and lids", (lmk.EYE_CONTOUR_R, lmk.EYE_CONTOUR_L), lmk.BROW_SKIN_R[2],
           lmk.NOSE_BRIDGE, ("eye",), eyes=True, margin=EYE_MARGIN),
    Region("brow region", "the brows and forehead", (lmk.BROW_R, lmk.BROW_L), None, lmk.BROW_SKIN_R[2], ("brow",),
           steadies_pose=False),
)
# What brings a region back, by what `out` says cut or covered it (FaceRegionMonitor.note)
_WHOLE = ", so the whole face is in the picture"
ADVICE = {"top": "sit lower or tilt the camera up" + _WHOLE, "bottom": "sit back or tilt the camera down" + _WHOLE,
          "left": "move towards the middle of the picture", "right": "move towards the middle of the picture",
          "hand": "take the hand away from the mouth"}
_PARTS = [p for r in REGIONS for p in r.parts]
_PART_POINTS = np.concatenate([np.asarray(p) for p in _PARTS])  # every region's parts' landmarks, one after another
_PART_STARTS = np.cumsum([0] + [len(p) for p in _PARTS])[:-1]  # where each part starts in _PART_POINTS
_PART_SIZES = np.array([len(p) for p in _PARTS], np.float64)
_PART_MARGINS = np.repeat([r.margin for r in REGIONS], [len(r.parts) for r in REGIONS])  # [parts] outer eye spans
_POINT_MARGINS = np.repeat(_PART_MARGINS, _PART_SIZES.astype(int))  # [len(_PART_POINTS)] each landmark's part's
_REGION_STARTS = np.cumsum([0] + [len(r.parts) for r in REGIONS])[:-1]  # where each region's parts start
_HAND = next(i for i, r in enumerate(REGIONS) if r.hand)
_EYES = np.array([r.eyes for r in REGIONS])  # [R] bool the regions that own the gaze and the eyelid ratios
_STEADIES = np.array([r.steadies_pose for r in REGIONS])  # [R] bool the regions whose loss steadies the pose
_ANCHORED = [i for i, r in enumerate(REGIONS) if r.anchors]  # the regions that can follow with the pose held
HAND_POINTS = np.asarray(sorted({i for p in REGIONS[_HAND].parts for i in p}))  # what the hand check covers
_RIGID = np.asarray(lmk.RIGID_LANDMARKS)


@dataclass
class FaceRegionConfig:
    """FaceRegionMonitor settings."""

    hand_every: int = 3  # run the hand check every N frames (0: never; the frame-edge check always runs); every
    #                      6th frame halves its cost but the pitch then settles from further back (4.6 deg error)
    hand_every_near: int = 2  # ... every N frames while a hand was found near the lower face at the last check
    visible: float = 0.5  # below this visibility a region is missing
    fade_s: float = 1.0  # time constant of the fade of a missing region's channels to neutral, seconds
    # time constant of the hand-back of a region that came back (and of the rotation), seconds: ~5 frames at 30 Hz;
    # lp_d18 slid back into the frame (test_face_regions): the largest step a frame 1.0 deg of pitch, 0.03 of the lids
    # (the face's return snapped them 13.3 deg and 0.43 before there was a hold and hand-back)
    handback_s: float = 0.15
    crop_faces: float = 1.8  # side of the hand-check crop, in face widths, centred on the lower face
    finger_frac: float = 0.12  # a hand's outline grown by this share of its size (a finger's width)


@dataclass
class FrameView:
    """What of the face a frame shows: per region (REGIONS' order) its visibility 1 (in view) .. 0 and whether its
    anchors (`Region.anchors`) are in view, and which of the pose fit's landmarks (`landmarks.RIGID_LANDMARKS`) lie
    inside the frame."""

    regions: np.ndarray  # [R]
    rigid_inside: np.ndarray  # [len(RIGID_LANDMARKS)] bool
    anchored: np.ndarray  # [R] 1 where a region's anchors (Region.anchors) are in view, else 0 (0 without anchors)
    edge: str | None = None  # the frame's edge ("top", "bottom", "left", "right") most landmarks outside it lie past

    def all_in_view(self, visible: float) -> bool:
        """Every region at or above `visible`."""
        return bool(np.all(self.regions >= visible))

    def eyes_in_view(self, visible: float) -> bool:
        """The regions that own the gaze and the eyelid ratios (Region.eyes) at or above `visible`."""
        return bool(np.all(self.regions[_EYES] >= visible))


class _Hold:
    """One region's state in FaceRegionMonitor."""

    def __init__(self, keep: int):
        self.recent: deque[FaceControl] = deque(maxlen=keep)  # the last controls sent with the region in view
        self.seen: FaceControl | None = None  # the control held while it is missing
        self.lost_at: float | None = None  # stamp (s) when it went missing
        self.back_at: float | None = None  # stamp (s) when it came back (the hand-back runs)
        self.delta: dict[str, np.ndarray] = {}  # held minus live channels when it came back
        self.rows: np.ndarray | None = None  # [L] bool its expression rows at the hand-back


class FaceRegionMonitor:
    """Per-frame visibility of the face's regions and the control the tracker sends with it. One per tracker."""

    def __init__(self, config: FaceRegionConfig | None = None):
        self.config = config or FaceRegionConfig()
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
        # The last controls with each region in view: the oldest is the one held when the hand check found it
        # missing, since that check runs every `hand_every` frames and its result comes a frame later, so the few
        # frames before a detection may already be covered.
        self._holds = [_Hold(max(1, self.config.hand_every) + 2) for _ in REGIONS]
        self._take_pending()  # a check started with the old stream's last frames: not this one's
        self._angles: np.ndarray | None = None  # [4] yaw, pitch, roll (deg), depth (m) last sent while steadied
        self._raw: np.ndarray | None = None  # [4] the fit's own of that frame
        self._pose_back_at: float | None = None  # stamp (s) when every region was back (the pose's hand-back)
        self._pose_delta = np.zeros(4)  # [4] deg, m: sent minus the fit's then
        self.out: tuple[tuple[str, str], ...] = ()  # the regions held at the last frame: (name, why), see `steady`
        self._pose_held = False  # ... and the head's turn and distance with them (the pose fit's landmarks not seen)

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

    def no_face(self) -> None:
        """A frame without the face: the fit's change of rotation across the gap is not the head's turn (a face found
        again with its eyes still above the frame's top came back tilted 10 degrees), so none of it passes."""
        self._raw = None
        self.out = ()

    # ------------------------------------------------------------------------------------------------
    def visibility(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> FrameView:
        """[H, W, 3] uint8 frame + [478, 3] its face's landmarks (pixels) -> FrameView: each region's visibility,
        1 (in view) .. 0 (cut off by the frame or covered by a hand), whether its anchors are in view (each
        ANCHOR_MARGIN outer eye spans inside the frame), and which of the pose fit's landmarks lie inside the frame."""
        h, w = rgb.shape[:2]
        lm = np.asarray(landmarks_px, np.float64)
        inside = _inside_by(lm, w, h, 0.0)  # [478]
        span = float(np.linalg.norm(lm[lmk.OUTER_EYE[1], :2] - lm[lmk.OUTER_EYE[0], :2]))  # outer eye span, pixels
        kept = _inside_by(lm[_PART_POINTS], w, h, _POINT_MARGINS * span)  # inside by the part's margin
        share = np.add.reduceat(kept.astype(np.float64), _PART_STARTS) / _PART_SIZES  # [parts]
        part = np.clip((share - IN_FRAME_MISSING) / (IN_FRAME_SEEN - IN_FRAME_MISSING), 0.0, 1.0)
        regions = np.minimum.reduceat(part, _REGION_STARTS)  # [R] the least visible part of each region
        anchored = np.zeros(len(REGIONS))  # [R] 1 where a region's anchors are all inside by ANCHOR_MARGIN
        for i in _ANCHORED:
            anchored[i] = float(np.all(_inside_by(lm[list(REGIONS[i].anchors)], w, h, ANCHOR_MARGIN * span)))
        every = self.config.hand_every
        cover = self._take_pending()  # the check started with the last checked frame
        if cover is not None:
            self._hand_visibility = 1.0 - cover
        if every > 0 and self._until_check <= 0:
            crop, crop_pts = self._hand_crop(rgb, landmarks_px, lm[HAND_POINTS, :2])
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hand_check")
            self._pending = self._pool.submit(self._hand_cover, crop, crop_pts)
            self._until_check = self.config.hand_every_near if self._hand_near else every
        self._until_check -= 1
        if every > 0:
            self._by_hand = self._hand_visibility < regions[_HAND]
            regions[_HAND] = min(regions[_HAND], self._hand_visibility)
        return FrameView(regions, inside[_RIGID], anchored, _edge_past(lm, w, h))

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
    def steady(self, control: FaceControl, view: FrameView) -> FaceControl:
        """The control to send: unchanged while every region is in view (and remembered); while one is missing,
        confidence x its visibility, its channels held and faded to neutral, the rotation's and the distance's jump
        removed and their later changes passed in proportion to the pose fit's landmarks in view (below `visible` of
        them, every region counts as missing but one whose anchors are in view: the head frame its expression is
        measured in is not seen; a region's anchors keep the face mesh's landmarks on the picture); a region
        back, and the pose, handed back (module notes). Sets `out`."""
        c = self.config
        missing = view.regions < c.visible
        self.out = ()
        if not missing.any() and self._angles is None and self._pose_back_at is None \
                and all(h.lost_at is None and h.back_at is None for h in self._holds):
            for h in self._holds:
                h.recent.append(control)
            return control
        t = control.stamp_ns * 1e-9
        expr = np.asarray(control.expression)
        rows = [None] * len(REGIONS)  # each region's [L] bool expression rows (None without a face mesh's expression)
        if len(expr) >= lmk.NUM_MESH and np.shape(control.landmarks) == expr.shape:
            neutral = np.asarray(control.landmarks, np.float64) - expr
            rows = [_expression_rows(r, neutral) for r in REGIONS]
        # the pose fit's landmarks in view: inside the frame and outside every missing region
        rigid = view.rigid_inside.copy()
        for r, gone in zip(rows, missing):
            if gone and r is not None:
                rigid &= ~r[_RIGID]
        pose_seen = _seen_share(rigid)
        own = missing.copy()  # missing by themselves, not for the pose fit's landmarks
        if pose_seen < c.visible:  # the head frame not seen: held unless their anchors are in view (HOLD59)
            missing |= view.anchored < c.visible
        self.out = tuple((r.name, _why(self._by_hand and r.hand, view.edge, bool(o)))
                         for r, gone, o in zip(REGIONS, missing, own) if gone)
        self._pose_held = pose_seen < c.visible
        out = replace(control, confidence=float(min(control.confidence,
                                                    control.confidence * min(min(view.regions), pose_seen))))
        first_loss = None  # the control held by a region lost at this frame
        for i, (region, hold, gone) in enumerate(zip(REGIONS, self._holds, missing)):
            if gone:
                if hold.lost_at is None:
                    hold.lost_at, hold.back_at, hold.delta = t, None, {}
                    # the hand check runs every `hand_every` frames: the frames just before it may be covered already
                    hold.seen = (hold.recent[0] if region.hand and self._by_hand else hold.recent[-1]) \
                        if hold.recent else None
                    hold.recent.clear()
                    first_loss = first_loss or (hold.seen if region.steadies_pose else None)
                    if view.regions[i] >= c.visible:  # in view, held with the rest: it read 'lower face out of view
                        # (visibility 1.00, ...)' as the operator walked out sideways (user58, s58)
                        log.debug("%s held though in view (visibility %.2f): only %.2f of the pose fit's landmarks are "
                                  "in view, too few to measure its expression against the head%s; holding it, the "
                                  "head's turn steadied", region.name, view.regions[i], pose_seen,
                                  ", nor are its anchors (Region.anchors) in view" if region.anchors else "")
                    else:
                        log.debug("%s out of view (visibility %.2f, the pose fit's landmarks %.2f): holding it%s",
                                  region.name, view.regions[i], pose_seen,
                                  ", the head's turn steadied" if region.steadies_pose else "")
                values = self._held(region, hold, control, rows[i], t)
            else:
                if hold.lost_at is not None:  # back: hand back from what the hold gives now
                    held = self._held(region, hold, control, rows[i], t)
                    hold.rows = rows[i]
                    hold.delta = {k: held[k] - v for k, v in _channels(region, control, rows[i]).items() if k in held}
                    hold.lost_at, hold.seen, hold.back_at = None, None, t
                    log.debug("%s back in view: handing it back over %.2f s", region.name, c.handback_s)
                if hold.back_at is None:
                    continue
                decay = math.exp(-(t - hold.back_at) / c.handback_s)
                values = {k: v + hold.delta[k] * decay for k, v in _channels(region, control, hold.rows).items()
                          if k in hold.delta}
                if decay < HANDBACK_END:
                    hold.back_at, hold.delta = None, {}
            _put(out, control, region, rows[i] if gone else hold.rows, values)
            if not gone and hold.back_at is None:
                hold.rows = None
        out.rotation, out.translation = self._steady_pose(control, pose_seen, bool((missing & _STEADIES).any()),
                                                          first_loss, t)
        for hold, gone in zip(self._holds, missing):
            if not gone:
                hold.recent.append(out)
        return out

    def note(self) -> str:
        """The operator's line for what the last control holds ('' when nothing): which part of the face is out of
        view and why, what the robot shows meanwhile, and what brings it back, e.g. "the operator's brow region (brows
        and forehead) is cut by the camera picture's top edge: the robot shows the brows and forehead, last seen,
        fading to neutral over 1 s, until it is back; sit lower or tilt the camera up, so the whole face is in the
        picture" (the eyes cut too: "the operator's eye region (eyes and lids) is cut by ...; brow region (brows and
        forehead) is cut by ...: the robot shows the eyes and lids, and the brows and forehead, last seen, ..., and
        holds the head's turn and distance, ..."; "..., and the mouth and jaw, last seen, ..." once the nose is cut
        as well)."""
        if not self.out:
            return ""
        why = dict(self.out)
        own = [r for r in REGIONS if r.name in why and not why[r.name].startswith("held")] or \
            [r for r in REGIONS if r.name in why]
        cut = "; ".join(f"{r.name} ({r.said.removeprefix('the ')}) is {why[r.name]}" for r in own)
        shows = ", and ".join(r.said for r in own + [r for r in REGIONS if r.name in why and r not in own])
        pose = ", and holds the head's turn and distance" if self._pose_held else ""
        edge = next((e for e in ADVICE if e in why[own[0].name]), "")
        return (f"the operator's {cut}: the robot shows {shows}, last seen, fading to neutral over "
                f"{self.config.fade_s:g} s{pose}, until it is back; {ADVICE.get(edge, 'face the camera' + _WHOLE)}")

    def _held(self, region: Region, hold: _Hold, control: FaceControl, rows: np.ndarray | None, t: float
              ) -> dict[str, np.ndarray]:
        """The missing region's channels at t: the held control's, faded to neutral over fade_s (neutral when nothing
        was seen before the loss); rows: its [L] bool expression rows."""
        neutral = _neutral_channels(region, control, _channels(region, control, rows))
        if hold.seen is None:
            return neutral
        seen = _channels(region, hold.seen, rows)
        if list(hold.seen.blendshape_names) != list(control.blendshape_names):
            seen.pop("blendshapes", None)
        fade = math.exp(-(t - hold.lost_at) / self.config.fade_s)
        return {k: neutral[k] + (v - neutral[k]) * fade for k, v in seen.items()
                if k in neutral and v.shape == neutral[k].shape}

    def _steady_pose(self, control: FaceControl, pose: float, missing: bool, first_loss: FaceControl | None,
                     t: float) -> tuple[np.ndarray, np.ndarray]:
        """([4] wxyz, [3] metres) to send: while a region is missing, the angles (yaw, pitch, roll) and the depth sent
        at the first loss (the held control's: MediaPipe tilts its whole mesh as a region goes, and shrinks or grows
        it), plus the fit's later changes x `pose`; once every region is back, the fit's plus the difference then,
        decaying over handback_s. The translation's x and y pass (module notes)."""
        raw = _pose(control)
        if missing:
            if self._angles is None:
                sent = self._handing_back(raw, t)
                if first_loss is not None and self._pose_back_at is None:
                    sent = _pose(first_loss)
                self._angles, self._pose_back_at = sent, None
            elif self._raw is not None:
                self._angles = self._angles + pose * _pose_change(raw, self._raw)
            self._raw = raw
            return self._sent(control, self._angles)
        if self._angles is not None:  # every region back: hand the pose back from here
            moved = pose * _pose_change(raw, self._raw) if self._raw is not None else 0.0
            self._pose_delta = _pose_change(self._angles + moved, raw)
            self._pose_back_at, self._angles, self._raw = t, None, None
        if self._pose_back_at is None:
            return control.rotation, control.translation
        return self._sent(control, self._handing_back(raw, t))

    @staticmethod
    def _sent(control: FaceControl, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[4] wxyz and [3] metres of `control` with the [4] (yaw, pitch, roll deg, depth m) `pose` put in."""
        translation = np.array(control.translation, np.float32)
        translation[2] = pose[3]
        return euler_to_quat(*pose[:3]).astype(np.float32), translation

    def _handing_back(self, raw: np.ndarray, t: float) -> np.ndarray:
        """[4] angles (deg) and depth (m) the pose's hand-back gives at t for the fit's raw [4] (raw itself when none
        runs)."""
        if self._pose_back_at is None:
            return raw
        decay = math.exp(-(t - self._pose_back_at) / self.config.handback_s)
        if decay < HANDBACK_END:
            self._pose_back_at = None
        return raw + self._pose_delta * decay


def _pose(control: FaceControl) -> np.ndarray:
    """[4] what of the control's pose is held: yaw, pitch, roll (deg, control.euler_deg), depth (translation z, m)."""
    e = euler_deg(control.rotation)
    return np.array([e["yaw"], e["pitch"], e["roll"], float(control.translation[2])])


def _pose_change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[4] a - b of two `_pose` vectors, the angles wrapped into -180 .. 180 deg."""
    d = np.asarray(a, np.float64) - b
    d[:3] = (d[:3] + 180.0) % 360.0 - 180.0
    return d


def _edge_past(lm: np.ndarray, w: int, h: int) -> str | None:
    """The frame edge ("top", "bottom", "left", "right") that most of the landmarks [478, 2+] (pixels) outside a
    w x h frame lie past (a corner's points count for each of its edges); None when all are inside."""
    x, y = lm[:, 0], lm[:, 1]
    past = {"top": int(np.sum(y < 0)), "bottom": int(np.sum(y >= h)), "left": int(np.sum(x < 0)),
            "right": int(np.sum(x >= w))}
    edge = max(past, key=past.get)
    return edge if past[edge] else None


def _why(by_hand: bool, edge: str | None, own: bool) -> str:
    """Why a held region is held, in words an operator can act on (FaceRegionMonitor.out): a hand over it, the
    frame's edge it is cut by, or held because the pose fit's landmarks are out of view (the head frame it is
    measured in is not seen)."""
    if own and by_hand:
        return "covered by a hand"
    if own and edge is not None:
        return f"cut by the camera picture's {edge} edge"
    if own:
        return "out of view"
    return "held: the face around it is out of view"


def _inside_by(p: np.ndarray, w: int, h: int, margin) -> np.ndarray:
    """[n] bool: the points [n, 2+] (pixels) inside a w x h frame by `margin` pixels (a number or [n])."""
    return (p[:, 0] >= margin) & (p[:, 0] < w - margin) & (p[:, 1] >= margin) & (p[:, 1] < h - margin)


def _seen_share(inside: np.ndarray) -> float:
    """[n] bool (a part's landmarks inside the frame, or otherwise seen) -> its visibility: 0 at a share of
    IN_FRAME_MISSING, 1 at IN_FRAME_SEEN, linear between."""
    return float(np.clip((np.mean(inside) - IN_FRAME_MISSING) / (IN_FRAME_SEEN - IN_FRAME_MISSING), 0.0, 1.0))


def _expression_rows(region: Region, neutral: np.ndarray) -> np.ndarray:
    """[L] bool: the region's landmarks of a canonical face [L, 3] (head frame, y down): those strictly between its
    top and bottom landmarks' heights (the lower face: below the nose base: mouth, jaw, chin; the eye region:
    between the skin under the brows and the nose bridge: lids, eyes and the skin under them; the brow region: above
    the skin under the brows: brows, forehead)."""
    y = neutral[:, 1]
    rows = np.ones(len(y), bool)
    if region.top is not None:
        rows &= y > y[region.top]
    if region.bottom is not None:
        rows &= y < y[region.bottom]
    return rows


def _blendshape_mask(region: Region, names) -> np.ndarray:
    """[B] bool: the blendshapes the region owns, by name."""
    return np.array([n.startswith(region.blendshapes) for n in names], bool)


def _channels(region: Region, control: FaceControl, rows: np.ndarray | None) -> dict[str, np.ndarray]:
    """The region's channels of `control` (name -> float64 values: mouth_open [1], gaze [2, 2], eyelid_ratios [14],
    expression [n, 3] of its [L] bool `rows` (None: none), blendshapes [b] it owns; those the control has)."""
    ch = {}
    if region.mouth:
        ch["mouth_open"] = np.array([control.mouth_open], np.float64)
    if region.eyes:
        if np.size(control.gaze):
            ch["gaze"] = np.asarray(control.gaze, np.float64)
        if np.size(control.eyelid_ratios):
            ch["eyelid_ratios"] = np.asarray(control.eyelid_ratios, np.float64)
    if rows is not None and len(rows) == len(control.expression):
        ch["expression"] = np.asarray(control.expression, np.float64)[rows]
    if np.size(control.blendshapes) and len(control.blendshape_names) == np.size(control.blendshapes):
        ch["blendshapes"] = np.asarray(control.blendshapes, np.float64)[_blendshape_mask(region,
                                                                                        control.blendshape_names)]
    return ch


def _neutral_channels(region: Region, control: FaceControl, live: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The neutral face's values of the channels in `live` (as `_channels` gives them): expression, blendshapes and
    mouth_open 0, eyelid ratios 1 (as open as the neutral's), the gaze of the control's neutral face (the tracker's
    `eyes.operator_gaze` of it; left out without the iris points, so the gaze is then not held)."""
    out = {}
    for k, v in live.items():
        if k == "eyelid_ratios":
            out[k] = np.ones_like(v)
        elif k == "gaze":
            if np.shape(control.landmarks) == (lmk.NUM_LANDMARKS, 3) and np.shape(control.expression) == (
                    lmk.NUM_LANDMARKS, 3):
                from gaussian_head_ros.core.eyes import operator_gaze

                neutral = np.asarray(control.landmarks, np.float64) - control.expression
                out[k] = operator_gaze(neutral, neutral).reshape(v.shape)
        else:
            out[k] = np.zeros_like(v)
    return out


def _put(out: FaceControl, control: FaceControl, region: Region, rows: np.ndarray | None,
         values: dict[str, np.ndarray]) -> None:
    """Write the region's channels `values` (as `_channels` gives them) into `out`, a shallow copy of `control`
    (its arrays copied before they are changed); the landmarks follow the expression."""
    if "mouth_open" in values:  # >= 0 as the tracker's (msg/FaceControl.msg): a hand-back that takes a held
        # mouth's difference off a live mouth closing again went below (lp_d18 slid up, back mid-scream: -0.24)
        out.mouth_open = max(0.0, float(values["mouth_open"][0]))
    if "gaze" in values:
        out.gaze = values["gaze"].reshape(np.shape(control.gaze)).astype(np.float32)
    if "eyelid_ratios" in values:
        out.eyelid_ratios = values["eyelid_ratios"].astype(np.float32)
    if "expression" in values and rows is not None:
        if out.expression is control.expression:
            out.expression = np.array(control.expression, np.float32)
        out.expression[rows] = values["expression"]
        out.landmarks = (control.landmarks - control.expression + out.expression).astype(np.float32)
    if "blendshapes" in values:
        if out.blendshapes is control.blendshapes:
            out.blendshapes = np.array(control.blendshapes, np.float32)
        out.blendshapes[_blendshape_mask(region, control.blendshape_names)] = values["blendshapes"]
