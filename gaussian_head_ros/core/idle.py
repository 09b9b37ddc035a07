"""Idle animation and control hand-over for the renderer.

When no FaceControl has arrived for a while the avatar should not freeze: `IdleAnimator` makes a
calm, deterministic control stream (blinks through the eyelid landmarks and eyeBlink blendshapes,
slow breathing nod and sway, the eyes at the avatar's rest gaze when it is given), and `ControlMixer` eases
between live control and idle in both directions so the hand-over never jumps (head, expression, lids and gaze).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.control import NUM_LID_PAIRS, FaceControl, euler_to_quat, matrix_to_quat, quat_to_matrix
from gaussian_head_ros.core.deform import control_lid_ratios
from gaussian_head_ros.core.eyes import control_gaze

BLINK_CLOSING_SHARE = 0.4  # an idle blink closes in the first 40 % of blink_duration_s and opens in the rest

# MediaPipe face-mesh eyelid landmark pairs (upper lid, lower lid) per eye.
EYELID_PAIRS = {"right": lmk.EYELID_PAIRS_R, "left": lmk.EYELID_PAIRS_L}


@dataclass
class IdleConfig:
    """Look of the idle animation."""

    blink_interval_s: tuple[float, float] = (2.5, 6.0)  # random gap between blinks
    blink_duration_s: float = 0.18  # closing + opening
    breath_period_s: float = 4.5  # slight nod
    breath_pitch_deg: float = 1.2
    sway_period_s: float = 11.0  # slow yaw/roll sway
    sway_yaw_deg: float = 3.0
    sway_roll_deg: float = 1.0
    seed: int = 0


class IdleAnimator:
    """Deterministic idle controls: `control(t)` for t seconds since idle began."""

    def __init__(self, template_vertices: np.ndarray | None = None, config: IdleConfig | None = None,
                 rest_gaze: np.ndarray | None = None):
        """template_vertices [V, 3] (head frame, m): the avatar's rest template, for the blink's lid offsets;
        rest_gaze [2, 2] (yaw, pitch rad per eye, FaceControl.gaze's convention) or None: the avatar's rest gaze
        (core.deform.Rig.rest_gaze), carried by every idle control so that an ease between a live control's gaze
        and idle turns the eyes smoothly (with none, a blend has no gaze and the eyes jump to the rest gaze)."""
        self.cfg = cfg = config or IdleConfig()
        self.rest_gaze = None if rest_gaze is None else np.asarray(rest_gaze, np.float32).reshape(2, 2)
        rng = np.random.default_rng(cfg.seed)
        gaps = rng.uniform(*cfg.blink_interval_s, 512)
        self.blink_times = np.cumsum(gaps) - gaps[0] * 0.5  # [512] starts; the first comes soon
        self.lid_offsets = None  # [L, 3] offsets of a fully closed blink
        v = None if template_vertices is None else np.asarray(template_vertices, np.float32)
        if v is not None and v.ndim == 2 and lmk.has_mediapipe_topology(v.shape[0]):
            off = np.zeros((v.shape[0], 3), np.float32)
            for pairs in EYELID_PAIRS.values():
                for up, lo in pairs:
                    off[up] = 0.85 * (v[lo] - v[up])
            self.lid_offsets = off

    def blink(self, t: float) -> float:
        """Eyelid closure in [0, 1] at time t."""
        period = self.blink_times[-1] + self.cfg.blink_interval_s[1]
        t = t % period
        i = int(np.searchsorted(self.blink_times, t, side="right")) - 1
        if i < 0:
            return 0.0
        u = (t - self.blink_times[i]) / self.cfg.blink_duration_s
        if u >= 1.0:
            return 0.0
        c = BLINK_CLOSING_SHARE
        return float(math.sin(0.5 * math.pi * u / c) if u < c else math.cos(0.5 * math.pi * (u - c) / (1.0 - c)))

    def control(self, t: float, stamp_ns: int = 0) -> FaceControl:
        """The idle control `t` seconds after idle began: breathing pitch and sway (yaw, roll) as a head
        rotation, and the blink at t (eyeBlinkLeft / Right, which the driver's lid ratios follow:
        deform.control_lid_ratios; and the lid offsets [L, 3] times it when the animator has them), the gaze
        the rest gaze when the animator has it; face_detected False, stamped `stamp_ns`."""
        cfg = self.cfg
        pitch = cfg.breath_pitch_deg * math.sin(2 * math.pi * t / cfg.breath_period_s)
        yaw = cfg.sway_yaw_deg * math.sin(2 * math.pi * t / cfg.sway_period_s)
        roll = cfg.sway_roll_deg * math.sin(2 * math.pi * t / (cfg.sway_period_s * 1.37) + 1.0)
        b = self.blink(t)
        expr = np.zeros((0, 3), np.float32) if self.lid_offsets is None else (b * self.lid_offsets).astype(np.float32)
        return FaceControl(stamp_ns=stamp_ns, face_detected=False, confidence=0.0,
                           rotation=euler_to_quat(yaw, pitch, roll).astype(np.float32), expression=expr,
                           blendshape_names=["eyeBlinkLeft", "eyeBlinkRight"],
                           blendshapes=np.array([b, b], np.float32),
                           gaze=np.zeros((0, 2), np.float32) if self.rest_gaze is None else self.rest_gaze.copy())


def blend_controls(a: FaceControl, b: FaceControl, w: float, rest_gaze=None) -> FaceControl:
    """(1 - w) a + w b: slerped rotation, mixed expression/blendshapes, lid ratios (`mixed_lid_ratios`) and gaze
    (`mixed_gaze`, eyeLook* blendshapes turning from rest_gaze [2, 2] rad or None); stamp and detection from b."""
    w = float(np.clip(w, 0.0, 1.0))
    if w <= 0.0:
        return dataclasses.replace(a, stamp_ns=b.stamp_ns, frame_id=b.frame_id, face_detected=b.face_detected,
                                   confidence=b.confidence)
    if w >= 1.0:
        return b
    qa, qb = np.asarray(a.rotation, np.float64), np.asarray(b.rotation, np.float64)
    qa, qb = qa / np.linalg.norm(qa), qb / np.linalg.norm(qb)
    if np.dot(qa, qb) < 0:
        qb = -qb
    d = float(np.clip(np.dot(qa, qb), -1.0, 1.0))
    th = math.acos(d)
    q = qa if th < 1e-6 else (math.sin((1 - w) * th) * qa + math.sin(w * th) * qb) / math.sin(th)
    q = matrix_to_quat(quat_to_matrix(q))

    def mix(x, y):
        x, y = np.asarray(x, np.float32).reshape(-1, 3), np.asarray(y, np.float32).reshape(-1, 3)
        n = max(len(x), len(y))
        out = np.zeros((n, 3), np.float32)
        out[:len(x)] += (1 - w) * x
        out[:len(y)] += w * y
        return out

    names = list(dict.fromkeys(list(a.blendshape_names) + list(b.blendshape_names)))
    coeffs = np.array([(1 - w) * a.blendshape(n) + w * b.blendshape(n) for n in names], np.float32)
    return FaceControl(stamp_ns=b.stamp_ns, frame_id=b.frame_id, face_detected=b.face_detected,
                       confidence=b.confidence, rotation=q.astype(np.float32),
                       translation=((1 - w) * np.asarray(a.translation) + w * np.asarray(b.translation)).astype(np.float32),
                       landmarks=b.landmarks, expression=mix(a.expression, b.expression),
                       mouth_open=(1 - w) * a.mouth_open + w * b.mouth_open,
                       blendshape_names=names, blendshapes=coeffs, eyelid_ratios=mixed_lid_ratios(a, b, w),
                       gaze=mixed_gaze(a, b, w, rest_gaze))


def mixed_gaze(a: FaceControl, b: FaceControl, w: float, rest_gaze=None) -> np.ndarray:
    """[2, 2] float32 (1 - w) a's + w b's gaze (yaw, pitch rad per eye) as the driver takes it (eyes.control_gaze:
    given, else from the eyeLook* blendshapes), when both have one; else [0, 2] (the driver's rest gaze). Without
    it every blend had none: at the start of each ease into idle the eyes jumped from the operator's gaze to the
    rest gaze, and back at the end of each ease out of it (review27, s27); the idle animation carries the rest
    gaze when its animator has it (IdleAnimator's rest_gaze), so the two mix. rest_gaze [2, 2] rad or None: what
    eyeLook* blendshapes turn from (eyes.control_gaze), the avatar's rest gaze as the driver has it."""
    ga, gb = control_gaze(a, rest_gaze), control_gaze(b, rest_gaze)
    if ga is None or gb is None:
        return np.zeros((0, 2), np.float32)
    return ((1 - w) * np.asarray(ga, np.float64) + w * np.asarray(gb, np.float64)).astype(np.float32)


def mixed_lid_ratios(a: FaceControl, b: FaceControl, w: float) -> np.ndarray:
    """[14] float32 (1 - w) a's + w b's lid ratios as the driver takes them (deform.control_lid_ratios: given, else
    measured from the landmarks or the eyeBlink blendshapes: the idle animation's blink), a control with none counting
    as open (1); [0] when neither has any. Without them a blend's lids followed its mixed expression: a held blink
    opened by `open_held_blink` still carries the shut lids in its expression, and the ease into idle shut its eyes
    again (user27's leave_blink clip at +2.2 s; review27, s27)."""
    ra, rb = control_lid_ratios(a), control_lid_ratios(b)
    if ra is None and rb is None:
        return np.zeros(0, np.float32)
    ra, rb = (np.ones(NUM_LID_PAIRS) if r is None else r for r in (ra, rb))
    return ((1 - w) * ra + w * rb).astype(np.float32)


def _ease(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


# A held live control (the face lost, the link down: nothing newer for idle_timeout_s) must not hold a blink: the
# face lost mid-blink (the last frame MediaPipe found, as the operator turns or walks away) showed its eyes shut for
# the 2 s hold (user27, s27). A blink's lids are shut for 0.1-0.3 s, so an eye still shut in a control this old is a
# held blink; it opens over the idle blink's opening time. Below CLOSED_LID_RATIO of the neutral lid gap an eye is shut:
# MediaPipe's blinks read 0.2-0.45 (lp_d18, sadtalker), a smile's squint 0.64 or more (their 2nd-10th percentiles).
HELD_BLINK_S = 0.3
CLOSED_LID_RATIO = 0.5


def open_held_blink(control: FaceControl, age_s: float, open_s: float) -> FaceControl:
    """`control` held `age_s` seconds since it arrived, with a shut eye opened: each eye whose `eyelid_ratios` ([14],
    lmk.EYELID_PAIRS_R then _L; mean below CLOSED_LID_RATIO) or eyeBlinkRight / eyeBlinkLeft blendshape (above
    1 - CLOSED_LID_RATIO) says it is shut eases to the neutral opening (ratio 1, blendshape 0) over `open_s` seconds,
    starting HELD_BLINK_S after it arrived. A control changed so is stamped 0 (not the camera frame's picture: a
    display frame of it carries its drawing time, as idle frames do); one with no shut eye, or younger, is returned as
    it is."""
    w = _ease((age_s - HELD_BLINK_S) / max(open_s, 1e-6))
    if w <= 0.0:
        return control
    lids = np.asarray(control.eyelid_ratios, np.float32).copy()
    shut = False
    if lids.size == 2 * len(lmk.EYELID_PAIRS_R):
        for eye in lids.reshape(2, -1):  # (views of lids: edited in place)
            if float(eye.mean()) < CLOSED_LID_RATIO:
                eye += w * (1.0 - eye)
                shut = True
    coeffs = np.asarray(control.blendshapes, np.float32).copy()
    for i, name in enumerate(control.blendshape_names):
        if name in ("eyeBlinkLeft", "eyeBlinkRight") and coeffs[i] > 1.0 - CLOSED_LID_RATIO:
            coeffs[i] *= 1.0 - w
            shut = True
    if not shut:
        return control
    return dataclasses.replace(control, stamp_ns=0, eyelid_ratios=lids, blendshapes=coeffs)


# The tracker says "no face" (a FaceControl with face_detected false) for every camera frame in which it finds none.
# Before, the mixer held the last live control (often mid-word: the mouth open, the head turned) for the whole
# idle_timeout_s (2 s) meant for silence, a link that may come back; an explicit "no face" that lasts NO_FACE_GRACE_S
# starts the ease into idle at once (user27 / node28, s28). The grace lets one frame MediaPipe misses (motion blur, a
# hand across the face: one to five frames at 30 fps) pass without a hand-over.
NO_FACE_GRACE_S = 0.2
# A tracker stopped (Ctrl-C, a launch shut down) or a recording's player at its end leaves the graph with its last
# control, and the render node knows it within ~0.1 s (its subscription's matched count falls to 0). The mixer held that
# last control (user55's laugh: the mouth wide open) for idle_timeout_s, meant for a link that may come back, before the
# ease into idle; told that no source of live control is left (`sources`), it starts the ease at once (idle55). Silence
# with a source still there (a link hiccup, a tracker without camera frames, one killed within its DDS lease) keeps
# idle_timeout_s. A control processed behind that news (its data callback ran after the graph's) is the last one of the
# source that left when it comes within LATE_CONTROL_S of it: it does not disturb the ease; later ones are a source
# there (the graph's news of it still to come), so a lost or late word from the graph never keeps a driven face idle.
LATE_CONTROL_S = 0.5


class ControlMixer:
    """Chooses what to render: the newest live control, the idle animation after `idle_timeout_s` of silence,
    NO_FACE_GRACE_S after the tracker said it lost the face (`face_lost`) or at once when no source of live control is
    left (`sources`), and an eased blend of `ease_s` seconds at each hand-over. Times are seconds on any monotonic
    clock. A live control held past HELD_BLINK_S with a shut eye opens it (`open_held_blink`, 'easing' while it
    opens)."""

    def __init__(self, idle: IdleAnimator, idle_timeout_s: float = 2.0, ease_s: float = 0.6):
        self.idle = idle
        self.idle_timeout_s = idle_timeout_s
        self.ease_s = ease_s
        self.live: FaceControl | None = None
        self.live_time = -math.inf  # when the newest live control arrived
        self.idle_since: float | None = 0.0  # time idle began (None while live)
        self.resume_time = -math.inf  # when live control came back after idle
        self.last_idle: FaceControl | None = None  # what was shown (idle, or easing into it) when live resumed
        self.lost_since: float | None = None  # when the tracker began saying "no face" (None while it finds one)
        self.left_weight = 1.0  # how far the ease out of idle had come when live control last ended (1: all the way)
        self.sources_left_at: float | None = None  # when the last source of live control left (None: one is there)

    def update(self, control: FaceControl, now: float) -> None:
        """Take a live control that arrived at `now` (seconds, the mixer's clock); coming back from idle,
        what was shown at that moment (the idle pose, or the blend into it while easing) is kept to ease from. With no
        source left (`sources`), one that comes within LATE_CONTROL_S of that news once the ease into idle has begun is
        the last of the source that left and changes nothing; one later says a source is there again."""
        if self.sources_left_at is not None:
            if now - self.sources_left_at > LATE_CONTROL_S:
                self.sources_left_at = None
            elif self.idle_since is not None:
                return
        if self.idle_since is not None:  # coming back from idle: ease from the picture shown now (back in the
            self.last_idle = self.get(now)[0]  # middle of the ease into idle, the idle pose itself was a snap)
            self.resume_time = now
            self.idle_since = None
        self.live, self.live_time = control, now
        self.lost_since = None

    def face_lost(self, now: float) -> None:
        """The tracker reported at `now` that it finds no face (a control with face_detected false, which carries no
        expression to show): once it has said so for NO_FACE_GRACE_S with no face in between, `get` eases into the
        idle animation as after idle_timeout_s of silence. A live control (`update`) ends it."""
        if self.lost_since is None:
            self.lost_since = now

    def sources(self, count: int, now: float) -> None:
        """How many sources (publishers) of live control there are at `now`, as the graph shows each change: with none
        left, live control has ended (`get` eases into idle from then on, not after idle_timeout_s; `update`: a control
        processed behind that news); with one or more, silence waits idle_timeout_s again."""
        if count > 0:
            self.sources_left_at = None
        elif self.sources_left_at is None:
            self.sources_left_at = now

    def ended_by(self, now: float) -> tuple[str, float]:
        """Why live control has ended at `now` (the idle animation plays, or the ease into it), and since how many
        seconds: ("no face", s since the tracker said so) after NO_FACE_GRACE_S of it, before any live control too
        (controls that all say face_detected false were said as none yet: user32, s34); ("none yet", 0.0) before any
        live control, ("left", s since its last source left: `sources`), ("timeout", s since the last live control)
        after idle_timeout_s of silence; ("", 0.0) while live control goes on."""
        if self.lost_since is not None and now - self.lost_since >= NO_FACE_GRACE_S:
            return "no face", now - self.lost_since
        if self.live is None:
            return "none yet", 0.0
        if self.sources_left_at is not None and now >= self.sources_left_at:
            return "left", now - self.sources_left_at
        if now - self.live_time > self.idle_timeout_s:
            return "timeout", now - self.live_time
        return "", 0.0

    def _gone(self, now: float) -> bool:
        """Whether live control has ended at `now` (`ended_by`)."""
        return bool(self.ended_by(now)[0])

    def get(self, now: float) -> tuple[FaceControl, str]:
        """(control to draw, 'live' | 'idle' | 'easing')."""
        u = (now - self.resume_time) / self.ease_s if self.ease_s > 0 else 1.0
        if self._gone(now):
            if self.idle_since is None:  # live control ended: in the ease out of idle, only that far out of it
                self.idle_since = now
                self.left_weight = _ease(u) if self.last_idle is not None else 1.0
            t = now - self.idle_since
            ctl = self.idle.control(t)
            if self.live is not None and t < self.ease_s:  # ease from the last live pose shown into idle
                blend = blend_controls(self._shown_live(now), ctl, _ease(t / self.ease_s), self.idle.rest_gaze)
                return blend, "easing"
            return ctl, "idle"
        live = self._held(now)
        if self.last_idle is not None and u < 1.0:
            return blend_controls(self.last_idle, live, _ease(u), self.idle.rest_gaze), "easing"
        opening = live is not self.live and now - self.live_time < HELD_BLINK_S + self._open_s
        return live, "easing" if opening else "live"

    @property
    def _open_s(self) -> float:
        """How long a held blink takes to open (s): the idle blink's opening (the 60 % after its closing)."""
        return (1.0 - BLINK_CLOSING_SHARE) * self.idle.cfg.blink_duration_s

    def _held(self, now: float) -> FaceControl:
        """The newest live control as held at `now`: a shut eye opened once it is older than a blink."""
        return open_held_blink(self.live, now - self.live_time, self._open_s)

    def _shown_live(self, now: float) -> FaceControl:
        """What the ease into idle starts from at `now`: the held live control (`_held`), or, when live control ended
        in the ease out of idle, the blend that ease showed then (`left_weight` of the way from the idle pose it
        started from). A face back for a few frames and lost again (someone passing by) used to ease into idle from
        the live control itself: the head and mouth jumped the rest of the way to it in one frame (review31)."""
        held = self._held(now)
        if self.left_weight >= 1.0:
            return held
        return blend_controls(self.last_idle, held, self.left_weight, self.idle.rest_gaze)
