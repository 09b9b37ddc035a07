"""Eyes: gaze from landmarks or blendshapes, eyeball geometry, and the eyeball rotation the driver applies.

Gaze convention (FaceControl.gaze, msg FaceControl.gaze): per eye (row 0 the subject's right eye, row 1
the left), (yaw, pitch) in radians in the head frame (x image-right, y down, z into the head), with the
head pose's own convention (control.euler_deg): the gaze direction is Ry(yaw) Rx(pitch) (0, 0, -1), so
positive yaw looks towards the image left (the subject's right) and positive pitch looks down; (0, 0)
looks straight out of the face (along -z).

From landmarks (MediaPipe refine_landmarks, 478 points) in the image (pixels) or any frame whose x points
image-right and y image-down: each eye's iris centre (468, 473) relative to its two corners, along the
corner-to-corner axis and across it, in eye widths, times EYE_WIDTH_M, on an eyeball of radius
EYEBALL_RADIUS_M: sin(pitch) = dy / r, sin(yaw) cos(pitch) = -dx / r. In the image plane, not in the
pose-free 3D landmarks: MediaPipe's depth of the iris points is poor, and de-rotating a turned head mixes
it into x (on the ../shared clips the image-plane measure follows FaceLandmarker's eyeLookIn/Out with
|r| 0.97-0.998, the 3D one 0.21-0.99). MediaPipe's canonical face (which looks straight ahead) has its
irises within 1.2 % of the eye width of the corners' midpoint, so no offset is applied. The eyeball's
centre is the iris centre moved back by r against the gaze direction.

While the lids hide the iris (a blink, a squint) MediaPipe's iris points are guesses: on tpsmm_driving's
blink (lid gap 0.31-0.45 of the neutral) they put the left eye 11-21 deg off for three frames, the One Euro
filter spread that over the next ones, and the avatar's eyes darted sideways under closing lids. The
tracker therefore keeps each eye's last gaze while its lids are nearly closed (`held_gaze`): the measured
gaze counts fully from a centre lid gap of IRIS_SEEN_RATIO x the neutral gap, not at all below
IRIS_HIDDEN_RATIO (the iris centre is then behind the upper lid), linearly between.

From ARKit blendshapes (eyeLookIn/Out/Up/Down per eye, 0..1; other drivers): yaw and pitch are their
differences times ARKIT_YAW_RAD / ARKIT_PITCH_RAD (ARKit documents no angle for a coefficient of 1;
these are our estimate of where MediaPipe's FaceLandmarker saturates).
"""

from __future__ import annotations

import numpy as np

from gaussian_head_ros.core import landmarks as lmk

EYEBALL_RADIUS_M = 0.012  # adult eyeball: ~24 mm axial length
EYE_WIDTH_M = 0.027  # corner to corner, MediaPipe's canonical face at the head frame's scale
ARKIT_YAW_RAD = 0.5  # eyeLookOut - eyeLookIn = 1 -> this many radians
ARKIT_PITCH_RAD = 0.4  # eyeLookDown - eyeLookUp = 1 -> this many radians
IRIS_CENTRES = (lmk.IRIS_CENTER_R, lmk.IRIS_CENTER_L)
IRIS_HIDDEN_RATIO, IRIS_SEEN_RATIO = 0.4, 0.7  # centre lid gap / neutral gap: iris gaze ignored .. fully used


def gaze_from_landmarks(points: np.ndarray, radius_m: float = EYEBALL_RADIUS_M) -> np.ndarray:
    """[478, 2+] landmarks (x image-right, y image-down: pixels or the head frame) -> gaze [2, 2] (yaw, pitch)
    rad per eye (right, left). Raises ValueError without the 10 iris points."""
    v = np.asarray(points, np.float64)
    if v.ndim != 2 or v.shape[0] < lmk.NUM_LANDMARKS or v.shape[1] < 2:
        raise ValueError(f"gaze needs {lmk.NUM_LANDMARKS} landmarks (with the irises), got {v.shape}")
    v = v[:, :2]
    out = np.zeros((2, 2))
    for e, ((outer, inner), iris) in enumerate(zip(lmk.EYE_CORNERS, IRIS_CENTRES)):
        a, b = (v[outer], v[inner]) if v[outer, 0] <= v[inner, 0] else (v[inner], v[outer])  # a: the image-left one
        axis = b - a
        width2 = max(float(axis @ axis), 1e-12)
        d = v[iris] - 0.5 * (a + b)
        dx = float(d @ axis) / width2 * EYE_WIDTH_M  # along the eye, towards image-right
        dy = float(d @ np.array([-axis[1], axis[0]])) / width2 * EYE_WIDTH_M  # across it, downwards
        pitch = np.arcsin(np.clip(dy / radius_m, -1, 1))
        yaw = np.arcsin(np.clip(-dx / (radius_m * max(np.cos(pitch), 1e-6)), -1, 1))
        out[e] = yaw, pitch
    return out


def held_gaze(measured: np.ndarray, held: np.ndarray | None, lid_mid_ratios) -> np.ndarray:
    """This frame's gaze [2, 2] (yaw, pitch) rad per eye from the measured one and the one held so far (None: the
    measured one), weighted per eye by how open its lids are: lid_mid_ratios [2] = each eye's centre lid gap /
    its neutral gap (1 = the neutral; `deform.eyelid_ratios` at `deform.LID_MID`). Weight 0 at or below
    IRIS_HIDDEN_RATIO (the held gaze stays), 1 at or above IRIS_SEEN_RATIO (the measured gaze)."""
    g = np.asarray(measured, np.float64).reshape(2, 2)
    if held is None:
        return g.copy()
    r = np.asarray(lid_mid_ratios, np.float64).reshape(2)
    w = np.clip((r - IRIS_HIDDEN_RATIO) / (IRIS_SEEN_RATIO - IRIS_HIDDEN_RATIO), 0.0, 1.0)
    w = np.where(np.isfinite(w), w, 1.0)
    h = np.asarray(held, np.float64).reshape(2, 2)
    return h + w[:, None] * (g - h)


def gaze_directions(gaze: np.ndarray) -> np.ndarray:
    """[..., 2] (yaw, pitch) -> [..., 3] unit gaze directions in the head frame."""
    g = np.asarray(gaze, np.float64)
    yaw, pitch = g[..., 0], g[..., 1]
    return np.stack([-np.sin(yaw) * np.cos(pitch), np.sin(pitch), -np.cos(yaw) * np.cos(pitch)], -1)


def eyeball_centres(landmarks: np.ndarray, gaze: np.ndarray, radius_m: float = EYEBALL_RADIUS_M) -> np.ndarray:
    """[478, 3] head-frame landmarks, their gaze [2, 2] -> [2, 3] eyeball centres (right, left): each iris
    centre moved back by the radius against its gaze."""
    v = np.asarray(landmarks, np.float64)
    return v[list(IRIS_CENTRES)] - radius_m * gaze_directions(gaze)


def gaze_from_blendshapes(names, values) -> np.ndarray | None:
    """ARKit eyeLook* coefficients -> gaze [2, 2] (yaw, pitch) rad per eye, or None when none is given."""
    d = dict(zip(names, np.asarray(values, np.float64)))
    if not any(n.startswith("eyeLook") for n in d):
        return None
    g = np.zeros((2, 2))
    for e, side in enumerate(("Right", "Left")):
        out, inn = d.get(f"eyeLookOut{side}", 0.0), d.get(f"eyeLookIn{side}", 0.0)
        # the right eye looks out towards the subject's right (+yaw), the left eye out towards -yaw
        g[e, 0] = ARKIT_YAW_RAD * ((out - inn) if side == "Right" else (inn - out))
        g[e, 1] = ARKIT_PITCH_RAD * (d.get(f"eyeLookDown{side}", 0.0) - d.get(f"eyeLookUp{side}", 0.0))
    return g


def control_gaze(control) -> np.ndarray | None:
    """A FaceControl's gaze [2, 2]: its explicit gaze, else from its eyeLook* blendshapes, else None (rest)."""
    g = np.asarray(control.gaze, np.float64)
    if g.size == 4:
        return g.reshape(2, 2)
    return gaze_from_blendshapes(control.blendshape_names, control.blendshapes)


def _yaw_pitch_matrices(yaw, pitch, xp):
    """[2] yaw, [2] pitch -> [2, 3, 3] Ry(yaw) @ Rx(pitch)."""
    cy, sy, cp, sp = xp.cos(yaw), xp.sin(yaw), xp.cos(pitch), xp.sin(pitch)
    zero, one = xp.zeros_like(cy), xp.ones_like(cy)
    ry = xp.stack([xp.stack([cy, zero, sy], -1), xp.stack([zero, one, zero], -1), xp.stack([-sy, zero, cy], -1)], -2)
    rx = xp.stack([xp.stack([one, zero, zero], -1), xp.stack([zero, cp, -sp], -1), xp.stack([zero, sp, cp], -1)], -2)
    return ry @ rx


def gaze_rotations(gaze, rest_gaze: np.ndarray, max_rad: float, like):
    """Eyeball rotations [2, 3, 3] (head frame, about each eye's centre) that turn the rest gaze into `gaze`
    (each angle kept within max_rad of the rest); exactly the identity for gaze None. Array type of `like`."""
    from gaussian_head_ros.core.deform import _like, namespace

    xp = namespace(like)
    eye = _like(xp, np.broadcast_to(np.eye(3), (2, 3, 3)), like)
    if gaze is None:
        return eye
    rest = np.asarray(rest_gaze, np.float64)
    g = np.clip(np.asarray(gaze, np.float64), rest - max_rad, rest + max_rad)
    r_to = _yaw_pitch_matrices(g[:, 0], g[:, 1], np)
    r_from = _yaw_pitch_matrices(rest[:, 0], rest[:, 1], np)
    return _like(xp, r_to @ r_from.transpose(0, 2, 1), like)
