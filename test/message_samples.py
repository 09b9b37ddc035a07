"""Deterministic sample messages, built the same way in both processes of a cross-process test."""

import numpy as np

from gaussian_head_ros.core.control import FaceControl, euler_to_quat
from gaussian_head_ros.core.synthetic import synthetic_avatar


def sample_avatar(n: int, seed: int):
    return synthetic_avatar(n, seed=seed, sh_degree=1, operator_id=f"peer-{seed}")


def sample_control(seed: int) -> FaceControl:
    rng = np.random.default_rng(seed)
    names = ["jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft"]
    return FaceControl(
        stamp_ns=1_700_000_000_123_456_789, frame_id="camera_optical_frame", face_detected=True, confidence=0.93,
        rotation=euler_to_quat(12.5, -4.0, 2.0).astype(np.float32),
        translation=np.array([0.01, -0.02, 0.55], np.float32),
        landmarks=rng.normal(0, 0.05, (478, 3)).astype(np.float32),
        expression=rng.normal(0, 0.002, (478, 3)).astype(np.float32),
        mouth_open=0.31, blendshape_names=names, blendshapes=rng.uniform(0, 1, len(names)).astype(np.float32),
        gaze=np.array([[0.12, -0.05], [0.1, -0.04]], np.float32))
