"""core/idle.py: the hand-over between live control and the idle animation (ROS-free)."""

import numpy as np

from gaussian_head_ros.core.control import FaceControl, euler_to_quat, quat_to_matrix
from gaussian_head_ros.core.idle import ControlMixer, IdleAnimator


def _yaw_deg(control: FaceControl) -> float:
    r = quat_to_matrix(np.asarray(control.rotation, np.float64))
    return float(np.degrees(np.arctan2(r[0, 2], r[2, 2])))


def _frames(mixer: ControlMixer, t0: float, t1: float, fps: float = 30.0) -> list:
    """mixer.get at each frame of a display drawing at `fps` from t0 to t1 (s), as the render loop calls it."""
    return [mixer.get(t) for t in np.arange(t0, t1, 1.0 / fps)]


def _live(yaw_deg: float, jaw: float) -> FaceControl:
    return FaceControl(stamp_ns=1, face_detected=True, confidence=1.0,
                       rotation=euler_to_quat(yaw_deg, 0.0, 0.0).astype(np.float32),
                       blendshape_names=["jawOpen"], blendshapes=np.array([jaw], np.float32))


def test_a_face_back_during_the_ease_into_idle_eases_from_what_was_shown():
    # The operator turned 25 deg with the mouth open, then was lost: after idle_timeout_s (2 s) the face eases
    # into the idle animation over ease_s (0.6 s). A face back in the middle of that ease (a 2.3 s outage) must
    # ease on from the picture shown then; it used to start from the idle pose itself, so the head snapped
    # from ~19 deg to the idle sway's ~0 and the mouth shut in one frame (user27, s27), then eased back.
    mixer = ControlMixer(IdleAnimator(), idle_timeout_s=2.0, ease_s=0.6)
    live = _live(25.0, 0.8)
    for t in np.arange(0.0, 1.0, 0.1):
        mixer.update(live, 100.0 + t)
        _frames(mixer, 100.0 + t, 100.1 + t)
    _frames(mixer, 101.0, 103.25)
    shown, mode = mixer.get(103.25)  # 2.35 s after the last live control: in the ease into idle
    assert mode == "easing" and 5.0 < _yaw_deg(shown) < 24.0
    mixer.update(live, 103.25)
    back, _ = mixer.get(103.25)
    assert abs(_yaw_deg(back) - _yaw_deg(shown)) < 0.5, (_yaw_deg(shown), _yaw_deg(back))
    assert abs(back.blendshape("jawOpen") - shown.blendshape("jawOpen")) < 0.02
    # and it still reaches the live control after ease_s, without a step on the way
    yaws = [_yaw_deg(mixer.get(103.25 + dt)[0]) for dt in np.arange(0.0, 0.7, 1 / 30)]
    assert abs(yaws[-1] - 25.0) < 0.1 and max(np.abs(np.diff(yaws))) < 2.0, yaws


def test_a_face_back_from_full_idle_eases_from_the_idle_pose():
    mixer = ControlMixer(IdleAnimator(), idle_timeout_s=2.0, ease_s=0.6)
    mixer.update(_live(25.0, 0.8), 100.0)
    _frames(mixer, 100.0, 110.0)
    shown, mode = mixer.get(110.0)  # long idle
    assert mode == "idle"
    mixer.update(_live(25.0, 0.8), 110.0)
    back, mode = mixer.get(110.0)
    assert mode == "easing" and abs(_yaw_deg(back) - _yaw_deg(shown)) < 0.5

