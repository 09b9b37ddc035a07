"""FaceControl: the per-frame driving signal (head pose + expression), independent of ROS.

The tracker produces it, `drive()` consumes it, `nodes/conversions.py` maps it to and from the
FaceControl message, and `to_json`/`from_json` give the `gaussian-head track` JSONL lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gaussian_head_ros.core import landmarks as lmk

NUM_LID_PAIRS = len(lmk.EYELID_PAIRS_R) + len(lmk.EYELID_PAIRS_L)  # 14: FaceControl.eyelid_ratios
# Points the landmarks / expression of a FaceControl message hold (msg/FaceControl.msg): none, MediaPipe's face mesh,
# or the face mesh with the irises.
MESSAGE_POINTS = (0, lmk.NUM_MESH, lmk.NUM_LANDMARKS)
# The largest coordinate (m) a control's landmarks may hold: a face's canonical points lie within ~0.1 m of its origin,
# so a larger value is a publisher's unit slip (mm or cm sent as m) or garbage. Its expression offsets are held to the
# driver's own limit (`max_offset_m`): a wide-open jaw moves the chin ~6 cm (the ../shared clips' tracked offsets reach
# 4.2 cm, lp_d18's scream), and the driver cuts each longer offset to that length, so an expression of 1e30, of
# millimetres, or one point 0.4 m off (within this limit) was drawn, without a word, as points pushed 8 cm: a torn face.
MAX_POINT_M = 0.5
# The largest gaze angle (rad) a control may hold: an eye turns ~50 degrees at most; degrees sent as radians exceed it.
MAX_GAZE_RAD = math.pi
# The ranges a control's scalars may hold, inclusive. `gaussian-head track` with FaceLandmarker v2 on the 4 ../shared
# clips (663 frames with a face) gave blendshapes 0 .. 0.997 (MediaPipe's are sigmoids, 0..1; ARKit's the same),
# eyelid ratios 0.080 .. 1.329 (lid gap / the operator's open lid gap: wide eyes of a surprise) and mouth_open
# 0 .. 1.98 (a wide-open mouth over the inter-ocular distance). The limits leave about twice that (3 x for the lid
# ratios, which a neutral face learned with narrowed eyes raises); within them the driver clamps a small overshoot as
# before. Outside them (1e30, -5, 40: a unit slip, percent for a fraction, garbage) a control was clamped without a
# word to a plausible face (every blendshape at 1, eyes wide open: user33, s34): refused now with the reason.
BLENDSHAPE_RANGE = (-0.5, 1.5)
EYELID_RATIO_RANGE = (0.0, 4.0)
MOUTH_OPEN_RANGE = (-0.5, 4.0)


def max_offset_m() -> float:
    """The longest expression offset (m) a control may hold: the driver's limit, `deform.DriveConfig.max_offset_m`
    (the length it cuts each offset to; 0.08 m)."""
    from gaussian_head_ros.core.deform import DriveConfig  # (deform imports this module)

    return DriveConfig.max_offset_m


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """[..., 4] w x y z -> [..., 3, 3] rotation matrices (normalises each q): one quaternion [4] -> [3, 3]."""
    q = np.asarray(q, np.float64)
    w, x, y, z = np.moveaxis(q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12), -1, 0)
    return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
                    -1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """[3, 3] rotation matrix -> [4] w x y z with w >= 0."""
    r = np.asarray(r, np.float64)
    t = np.trace(r)
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
        q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif r[1, 1] > r[2, 2]:
        s = math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
    else:
        s = math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def euler_deg(q: np.ndarray) -> dict:
    """Head rotation as yaw (about the camera's vertical y axis), pitch (about x) and roll (about z), degrees.

    R = Ry(yaw) @ Rx(pitch) @ Rz(roll) in the OpenCV camera frame; positive yaw turns the face
    towards the image left (the subject's right), positive pitch tilts the nose down (the nose, along -z
    of the head frame, towards +y = image down)."""
    r = quat_to_matrix(q)
    pitch = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    yaw = math.atan2(r[0, 2], r[2, 2])
    roll = math.atan2(r[1, 0], r[1, 1])
    return {"yaw": math.degrees(yaw), "pitch": math.degrees(pitch), "roll": math.degrees(roll)}


def euler_to_quat(yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Inverse of `euler_deg`: degrees -> [4] float64 w x y z, a FaceControl's `rotation` (positive yaw turns the face
    towards the image left, positive pitch tilts the nose down, roll about the camera's z axis; 0, 0, 0: facing the
    camera)."""
    y, p, r = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return matrix_to_quat(ry @ rx @ rz)


def head_rotation_in_view(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """[3, 3] head-to-camera rotation and [3] head origin in the camera (metres, OpenCV axes) -> [3, 3] the head
    rotation relative to the line of sight (`line_of_sight_rotation`): the FaceControl.rotation (as a matrix) that
    draws the head so through a camera at [line_of_sight_rotation(translation) | translation] (the photo's own pose
    of an avatar with its source camera's viewmat)."""
    return line_of_sight_rotation(translation).T @ np.asarray(rotation, np.float64)


def line_of_sight_rotation(translation: np.ndarray) -> np.ndarray:
    """[3] head origin in the camera frame (metres, OpenCV axes) -> [3, 3] the smallest rotation taking the
    optical axis (0, 0, 1) onto the line of sight to that origin.

    Head rotations measured from landmarks (`FaceControl.rotation`, the reconstructor's head fit) are how the
    face looks in the image, i.e. relative to the line of sight: a head off the optical axis that faces the
    camera looks frontal. A pinhole camera seeing the head at `translation` therefore sees it rotated by
    line_of_sight_rotation(translation) @ rotation: render it with viewmat [this | translation] (the rule
    the reconstructor's source camera and `core.evaluate.render_control` share, so a frame's own control
    renders the frame wherever the head is in it). On the axis it is the identity."""
    t = np.asarray(translation, np.float64)
    n = float(np.linalg.norm(t))
    if n < 1e-12:
        return np.eye(3)
    d = t / n
    axis = np.array([-d[1], d[0], 0.0])  # (0, 0, 1) x d
    s, c = float(np.linalg.norm(axis)), float(d[2])
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * kx @ kx  # Rodrigues


def check_message_points(control: "FaceControl") -> None:
    """Raise ValueError unless the control's landmarks and expression each hold 0, 468 (MediaPipe's face mesh) or
    478 (with the irises) points, as a FaceControl message must (msg/FaceControl.msg: landmark i is MediaPipe
    face landmark i). The driver itself takes any count L (it moves the template's first min(V, L) vertices: a
    synthetic template has its own V), so a publisher's short or long array would otherwise drive part of the
    face, or none of it, without a word."""
    for name in ("landmarks", "expression"):
        count = int(np.shape(getattr(control, name))[0])
        if count not in MESSAGE_POINTS:
            raise ValueError(f"{name} has {count} points; a FaceControl carries {lmk.NUM_MESH} (MediaPipe face mesh) "
                             f"or {lmk.NUM_LANDMARKS} (with the irises) points, or none")


def json_shown(value, limit: int = 60) -> str:
    """A JSON value as it reads in an error message: its JSON text, cut to `limit` characters with '...'."""
    import json

    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_range(name: str, values, bounds: tuple[float, float], meaning: str) -> None:
    """Raise ValueError naming `name`, its value furthest outside `bounds` (low, high: inclusive) and `meaning`
    when any of `values` (a scalar or an array) lies outside them."""
    arr = np.asarray(values, np.float64)
    if not arr.size:
        return
    low, high = float(arr.min()), float(arr.max())
    if low < bounds[0] or high > bounds[1]:
        value = low if bounds[0] - low > high - bounds[1] else high
        raise ValueError(f"control {name} is {value:.4g}, outside {bounds[0]:g} .. {bounds[1]:g} ({meaning})")


_UNPAIRED = frozenset(("browInnerUp", "cheekPuff", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
                       "mouthFunnel", "mouthLeft", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
                       "mouthShrugLower", "mouthShrugUpper", "tongueOut"))
# ARKit's 52 blendshape names in MediaPipe FaceLandmarker's order (alphabetical), after the "_neutral" it also
# gives; FaceControl.blendshape_names are these (a name outside them drives nothing).
ARKIT_BLENDSHAPES = ("_neutral",) + tuple(
    pre + side for pre in ("browDown", "browInnerUp", "browOuterUp", "cheekPuff", "cheekSquint", "eyeBlink",
                           "eyeLookDown", "eyeLookIn", "eyeLookOut", "eyeLookUp", "eyeSquint", "eyeWide", "jawForward",
                           "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple", "mouthFrown", "mouthFunnel",
                           "mouthLeft", "mouthLowerDown", "mouthPress", "mouthPucker", "mouthRight", "mouthRollLower",
                           "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmile", "mouthStretch",
                           "mouthUpperUp", "noseSneer", "tongueOut")
    for side in (("",) if pre in _UNPAIRED else ("Left", "Right")))
_ARKIT_SET = frozenset(ARKIT_BLENDSHAPES)

def not_arkit_names(names, where=None) -> str:
    """'' when every blendshape name in `names` (an iterable of str) is one of ARKit's 52 (ARKIT_BLENDSHAPES, or
    MediaPipe's "_neutral"), else a sentence naming each other one, in the order given, with where it came from
    (`where`: name -> a phrase such as "from line 3", optional) and ARKit's spelling when only the case differs: a
    phone app's 'JawOpen' (Live Link Face writes them capitalised) or a made-up 'smile' drives nothing, and a driver
    cannot say so from one coefficient (user32, s34; user36, s36)."""
    lower = {n.lower(): n for n in ARKIT_BLENDSHAPES}
    unknown = list(dict.fromkeys(n for n in names if n not in _ARKIT_SET))
    if not unknown:
        return ""
    notes = ["; ".join(x for x in ((where or {}).get(n, ""), f"ARKit's: '{lower[n.lower()]}'" if n.lower() in lower
                                   else "") if x) for n in unknown]
    return ("these drive nothing, not ARKit blendshape names: " + ", ".join(
        f"'{n}'" + (f" ({note})" if note else "") for n, note in zip(unknown, notes))
        + f" (ARKit's 52, as MediaPipe's FaceLandmarker names them: {', '.join(ARKIT_BLENDSHAPES[1:])})")


# ARKit's range of a blendshape coefficient (MediaPipe's are sigmoids in it too): 1 is the shape at its fullest.
ARKIT_RANGE = (0.0, 1.0)


def arkit_values(values) -> np.ndarray:
    """[B] blendshape coefficients -> [B] float64 within ARKIT_RANGE, as the driver reads them (its one rule). A control
    may hold -0.5..1.5 (BLENDSHAPE_RANGE: a retargeter's or a filter's overshoot; beyond it FaceControl.validate
    refuses it): 1.3 drives as 1 and -0.2 as 0, without a word. ARKit's jawOpen 1 is its jaw fully open; a sender of
    ARKit data means no more by a value above it, and the avatar's jaw, 0.35 rad at jawOpen 1 (DriveConfig
    jaw_per_jaw_open), opened further, up to 0.5 rad at 1.43, on avatars whose jaw follows jawOpen itself
    (without the face mesh's chin: learned avatars), while the chin of a reconstructed one stopped at 1 (ros35)."""
    return np.clip(np.asarray(values, np.float64).reshape(-1), *ARKIT_RANGE)


# The fields of a `gaussian-head track` JSONL line (FaceControl.to_json / from_json).
JSON_FIELDS = frozenset(("stamp_ns", "face_detected", "confidence", "head_pose", "mouth_open", "landmarks",
                         "expression", "gaze_rad", "eyelid_ratios", "blendshapes"))


@dataclass
class FaceControl:
    """One frame of control. Arrays are float32; L landmarks, B blendshapes."""

    stamp_ns: int = 0  # the camera frame's stamp, nanoseconds
    frame_id: str = ""  # the camera's optical frame
    face_detected: bool = False
    confidence: float = 0.0  # [0, 1]
    # [4] wxyz head -> camera as the face appears: relative to the line of sight (see line_of_sight_rotation)
    rotation: np.ndarray = field(default_factory=lambda: np.array([1, 0, 0, 0], np.float32))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))  # [3] head origin in camera, m
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))  # [L, 3] canonical, m
    expression: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))  # [L, 3] minus neutral, m
    mouth_open: float = 0.0  # (inner-lip gap + 2 x the chin's drop) / eye centres' distance: msg/FaceControl.msg
    blendshape_names: list[str] = field(default_factory=list)  # [B]
    blendshapes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # [B] 0..1 (arkit_values)
    # Gaze per eye (row 0 the subject's right eye, 1 the left): (yaw, pitch) radians in the head frame,
    # direction Ry(yaw) Rx(pitch) (0, 0, -1): +yaw looks towards the image left, +pitch down (core/eyes.py).
    # Empty (0, 2) = not measured: the driver then uses eyeLook* blendshapes if present, else the rest gaze.
    # Absolute, not from the photo's gaze: the avatar's own is Driver(avatar).rig.rest_gaze [2, 2] (business_person's
    # pitch -0.27 / -0.20, up), so a hand-made (0.3, 0) also turned her eyes 0.2-0.27 rad down and the upper lids,
    # which follow the eyes' vertical turn, half closed (user59): add to rest_gaze, or send eyeLook* blendshapes
    # (eyes.gaze_from_blendshapes: 0 looks as the photo does).
    gaze: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # [2, 2] or [0, 2]
    # The operator's lid gap / their neutral lid gap for each pair of landmarks.EYELID_PAIRS_R then _L (1 = as
    # open as their neutral face, ~0.2 = closed): what the driver retargets the avatar's lids by (core/deform.py).
    # Empty = not given: the driver measures them from `landmarks` when present, else the lids follow `expression`.
    eyelid_ratios: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # [14] or [0]

    @staticmethod
    def rest() -> "FaceControl":
        """Zero control: the avatar's rest pose (no expression, facing the camera)."""
        return FaceControl()

    def validate(self) -> None:
        """Raise ValueError if the control cannot be used to drive an avatar: a field of the wrong shape, NaN or Inf,
        a zero quaternion, a landmark coordinate above MAX_POINT_M (m), an expression offset longer than the driver
        draws (`max_offset_m`, m) or a gaze angle above
        MAX_GAZE_RAD (rad) in magnitude, a blendshape, eyelid ratio or mouth_open outside BLENDSHAPE_RANGE,
        EYELID_RATIO_RANGE or MOUTH_OPEN_RANGE."""
        arrays = {"rotation": (self.rotation, (4,)), "translation": (self.translation, (3,))}
        for name, (arr, shape) in arrays.items():
            if tuple(np.shape(arr)) != shape:
                raise ValueError(f"control {name} has shape {tuple(np.shape(arr))}, expected {shape}")
        for name in ("rotation", "translation", "landmarks", "expression", "blendshapes", "gaze", "eyelid_ratios"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"control {name} contains NaN or Inf")
        if not math.isfinite(self.mouth_open) or not math.isfinite(self.confidence):
            raise ValueError("control mouth_open/confidence is NaN or Inf")
        if np.linalg.norm(self.rotation) < 1e-6:
            raise ValueError("control head rotation is a zero quaternion")
        for name in ("landmarks", "expression"):
            arr = getattr(self, name)
            if arr.size and (arr.ndim != 2 or arr.shape[1] != 3):
                raise ValueError(f"control {name} has shape {arr.shape}, expected (L, 3)")
            largest = float(np.max(np.abs(arr), initial=0.0))
            if largest > MAX_POINT_M:
                raise ValueError(f"control {name} holds a coordinate of {largest:.4g} m, above the {MAX_POINT_M} m a face "
                                 f"spans (FaceControl points are in metres: millimetres or centimetres sent as metres?)")
        if self.expression.size:
            lengths = np.linalg.norm(np.asarray(self.expression, np.float64), axis=-1)  # [L]
            point, limit = int(np.argmax(lengths)), max_offset_m()
            if lengths[point] > limit:
                raise ValueError(f"control expression moves point {point} by {lengths[point]:.4g} m, beyond the {limit:g} "
                                 f"m the driver moves a point (a wide-open jaw moves the chin ~0.06 m; FaceControl "
                                 f"expression offsets are in metres from the neutral face: the points themselves, or "
                                 f"millimetres, sent as offsets?)")
        if np.size(self.gaze) not in (0, 4):
            raise ValueError(f"control gaze has {np.size(self.gaze)} values, expected 4 (yaw, pitch per eye) or none")
        largest = float(np.max(np.abs(self.gaze), initial=0.0))
        if largest > MAX_GAZE_RAD:
            raise ValueError(f"control gaze holds an angle of {largest:.4g} rad, above pi (FaceControl gaze is in "
                             f"radians: degrees sent as radians?)")
        if np.size(self.eyelid_ratios) not in (0, NUM_LID_PAIRS):
            raise ValueError(f"control eyelid_ratios has {np.size(self.eyelid_ratios)} values, expected "
                             f"{NUM_LID_PAIRS} (lid gap / neutral lid gap per pair) or none")
        if len(self.blendshape_names) != len(self.blendshapes):
            raise ValueError(f"{len(self.blendshape_names)} blendshape names for {len(self.blendshapes)} coefficients")
        _check_range("eyelid_ratios", self.eyelid_ratios, EYELID_RATIO_RANGE, "lid gap / the operator's open lid gap, "
                     "per pair: ~0.2 shut, 1 open")
        _check_range("mouth_open", self.mouth_open, MOUTH_OPEN_RANGE, "(inner-lip gap + 2 x the chin's drop) / the "
                     "eye centres' distance: 0 closed, 1-2 wide open")
        name = "blendshapes"
        if np.size(self.blendshapes):  # the one furthest from the middle of 0..1, named
            name = f"blendshape {self.blendshape_names[int(np.argmax(np.abs(np.asarray(self.blendshapes) - 0.5)))]}"
        _check_range(name, self.blendshapes, BLENDSHAPE_RANGE, "ARKit blendshapes run 0..1: a percentage?")

    def blendshape(self, name: str, default: float = 0.0) -> float:
        """The value of the blendshape `name` (an ARKit name, e.g. 'jawOpen'; 0..1, as sent: up to BLENDSHAPE_RANGE,
        which the driver reads within ARKIT_RANGE, `arkit_values`), or `default` when this control does not carry
        it."""
        try:
            return float(self.blendshapes[self.blendshape_names.index(name)])
        except ValueError:
            return default

    def to_json(self) -> dict:
        """The `gaussian-head track` JSONL object."""
        out = {
            "stamp_ns": int(self.stamp_ns),
            "face_detected": bool(self.face_detected),
            "confidence": round(float(self.confidence), 4),
            "head_pose": {
                "euler_deg": {k: round(v, 3) for k, v in euler_deg(self.rotation).items()},
                "quaternion_wxyz": [round(float(v), 6) for v in self.rotation],
                "translation_m": [round(float(v), 5) for v in self.translation],
            },
            "mouth_open": round(float(self.mouth_open), 5),
            "landmarks": np.round(self.landmarks.astype(np.float64), 5).tolist(),
            "expression": np.round(self.expression.astype(np.float64), 5).tolist(),
        }
        if np.size(self.gaze) == 4:
            out["gaze_rad"] = np.round(np.asarray(self.gaze, np.float64).reshape(2, 2), 5).tolist()
        if np.size(self.eyelid_ratios):
            out["eyelid_ratios"] = np.round(np.asarray(self.eyelid_ratios, np.float64), 4).tolist()
        if self.blendshape_names:
            out["blendshapes"] = {n: round(float(v), 5) for n, v in zip(self.blendshape_names, self.blendshapes)}
        return out

    @staticmethod
    def from_json(obj: dict) -> "FaceControl":
        """The FaceControl of a `gaussian-head track` JSONL object (to_json's); a field left out takes its default.
        ValueError for an object with none of those fields (some other JSON: it read as one empty control)."""
        if isinstance(obj, list):
            raise ValueError("a JSON array, not one FaceControl object: one JSON object per line (JSON Lines), e.g. "
                             "{\"stamp_ns\": 0, \"face_detected\": true, \"blendshapes\": {\"jawOpen\": 0.3}}")
        if not isinstance(obj, dict) or not obj.keys() & JSON_FIELDS:
            keys = ", ".join(map(str, list(obj)[:5])) if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(f"none of a FaceControl's fields ({keys}; expected some of "
                             f"{', '.join(sorted(JSON_FIELDS))})")
        pose = obj.get("head_pose", {})
        bs = obj.get("blendshapes") or {}
        if not isinstance(pose, dict):
            raise ValueError(f"head_pose is a JSON {type(pose).__name__}; it is an object with quaternion_wxyz [w, x, "
                             f"y, z] and translation_m [x, y, z] (metres), e.g. {{\"quaternion_wxyz\": [1, 0, 0, 0], "
                             f"\"translation_m\": [0, 0, 0.5]}}")
        if not isinstance(bs, dict) or not all(isinstance(n, str) and isinstance(v, (int, float))
                                               and not isinstance(v, bool) for n, v in bs.items()):
            raise ValueError("blendshapes is an object of ARKit name: coefficient (0..1), e.g. {\"jawOpen\": 0.3, "
                             f"\"mouthSmileLeft\": 0.8}}; got {json_shown(bs)}")
        stamp = obj.get("stamp_ns", 0)
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not -2**63 <= stamp < 2**63:
            raise ValueError(f"stamp_ns is {json_shown(stamp)}; it is an integer of nanoseconds (int64)")
        detected = obj.get("face_detected", False)
        if not isinstance(detected, bool):  # bool("false") is True
            raise ValueError(f"face_detected is a JSON {type(detected).__name__} ({json_shown(detected)}); it is true "
                             f"or false")
        return FaceControl(
            stamp_ns=int(stamp),
            face_detected=detected,
            confidence=float(obj.get("confidence", 0.0)),
            rotation=np.asarray(pose.get("quaternion_wxyz", [1, 0, 0, 0]), np.float32),
            translation=np.asarray(pose.get("translation_m", [0, 0, 0]), np.float32),
            landmarks=np.asarray(obj.get("landmarks", []), np.float32).reshape(-1, 3),
            expression=np.asarray(obj.get("expression", []), np.float32).reshape(-1, 3),
            mouth_open=float(obj.get("mouth_open", 0.0)),
            blendshape_names=list(bs.keys()),
            blendshapes=np.asarray(list(bs.values()), np.float32),
            gaze=np.asarray(obj.get("gaze_rad", []), np.float32).reshape(-1, 2),
            eyelid_ratios=np.asarray(obj.get("eyelid_ratios", []), np.float32).ravel(),
        )
