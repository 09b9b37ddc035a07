"""Iris landmarks from MediaPipe's dedicated iris model, on full-resolution eye crops.

The face mesh's own iris points (refine_landmarks: the attention mesh's iris head, on the 192-pixel face
crop) miss sub-pixel eye turns: on lp_d18 and tpsmm_driving the speakers keep their eyes on the camera while
the head turns (the vestibulo-ocular reflex), an iris shift of <= 0.75 px on a 40 px eye, and gaze from the
mesh's irises had r -0.12 / 0.45 with FaceLandmarker's eyeLookIn/Out over the whole clips (0.99 / 0.95 on
lp_d0 / sadtalker, whose speakers move their eyes). MediaPipe's iris landmark model
(`mediapipe/modules/iris_landmark/iris_landmark.tflite`, inside the mediapipe wheel, so nothing is
downloaded) sees each eye alone at 64 x 64 pixels, cut from the full-resolution frame; with the mesh's eye
corners its iris centres give r 0.36 / 0.68 on those two clips, 0.99 / 0.92 on the other two (measured with
the face mesh in video mode, whole clips, no filter).

The model's input and output, as MediaPipe's iris graph (iris_landmark_cpu / iris_landmark_landmarks_to_roi)
uses it: an RGB crop scaled to [0, 1], 64 x 64, square, 2.3 eye widths on a side (the distance between the eye
corners 33-133 or 362-263), centred between the corners and turned so that the corner line is horizontal;
the model was trained on the subject's left eye as it appears on the image's left (landmarks 33-133, the
subject's right eye in our naming), so the other eye's crop is mirrored. Outputs: 71 eye-contour and brow
points and 5 iris points (centre, then four on the limbus), x, y in crop pixels (and a depth). It runs in a
MediaPipe calculator graph of our own (ImageToTensor -> Inference on XNNPACK, one thread -> TensorsToLandmarks):
~1.1 ms per eye on this 2-core machine at load 26, where OpenCV's DNN module (cv2.dnn.readNetFromTFLite) gave the
same points in ~22 ms.
"""

from __future__ import annotations

import os

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.native_log import opened, quiet_notices

CROP_PX = 64  # the model's input side
CROP_EYE_WIDTHS = 2.3  # crop side / corner distance (MediaPipe's iris ROI)
IRIS_POINTS = ((lmk.IRIS_CENTER_R,) + lmk.IRIS_R, (lmk.IRIS_CENTER_L,) + lmk.IRIS_L)  # per eye: centre, 4 limbus
# The contour output's first OUTLINE_POINTS points per eye are the eye's outline at these face-mesh vertices (right
# eye's, then the left's)
OUTLINE_POINTS = len(lmk.IRIS_MODEL_OUTLINE_R)
OUTLINE = lmk.IRIS_MODEL_OUTLINE_R + lmk.IRIS_MODEL_OUTLINE_L
_UNMIRROR = [0, 3, 2, 1, 4]  # limbus order of a mirrored crop's output -> the face mesh's (474-477)
# The model's second output (5 x 3: x, y in crop pixels, depth) -> 5 landmarks normalised by the crop's side.
_GRAPH = """
input_stream: "image"
output_stream: "iris"
output_stream: "contour"
node {
  calculator: "ImageToTensorCalculator" input_stream: "IMAGE:image" output_stream: "TENSORS:input"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] {
    output_tensor_width: 64 output_tensor_height: 64 keep_aspect_ratio: false
    output_tensor_float_range { min: 0.0 max: 1.0 } } }
}
node {
  calculator: "InferenceCalculatorCpu" input_stream: "TENSORS:input" output_stream: "TENSORS:outputs"
  options { [mediapipe.InferenceCalculatorOptions.ext] {
    model_path: "MODEL_PATH" delegate { xnnpack { num_threads: 1 } } } }
}
node {
  calculator: "SplitTensorVectorCalculator" input_stream: "outputs" output_stream: "contour_tensor"
  output_stream: "iris_tensor"
  options { [mediapipe.SplitVectorCalculatorOptions.ext] {
    ranges: { begin: 0 end: 1 } ranges: { begin: 1 end: 2 } } }
}
node {
  calculator: "TensorsToLandmarksCalculator" input_stream: "TENSORS:contour_tensor"
  output_stream: "NORM_LANDMARKS:contour"
  options { [mediapipe.TensorsToLandmarksCalculatorOptions.ext] {
    num_landmarks: 71 input_image_width: 64 input_image_height: 64 } }
}
node {
  calculator: "TensorsToLandmarksCalculator" input_stream: "TENSORS:iris_tensor" output_stream: "NORM_LANDMARKS:iris"
  options { [mediapipe.TensorsToLandmarksCalculatorOptions.ext] {
    num_landmarks: 5 input_image_width: 64 input_image_height: 64 } }
}
"""


def model_path() -> str:
    """The iris landmark model inside the installed mediapipe wheel. Raises FileNotFoundError without it."""
    import mediapipe

    path = os.path.join(os.path.dirname(mediapipe.__file__), "modules", "iris_landmark", "iris_landmark.tflite")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mediapipe's iris landmark model is not at {path}")
    return path


def eye_crop(corner_a: np.ndarray, corner_b: np.ndarray, mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    """The eye crop for corners a (image-left) and b (image-right), pixels (continuous: pixel i spans [i, i+1))
    -> (A [2, 2], t [2]) with crop = A @ image + t (continuous crop pixels, 0..CROP_PX); mirror flips the crop
    left-right (the subject's left eye)."""
    a, b = np.asarray(corner_a, np.float64)[:2], np.asarray(corner_b, np.float64)[:2]
    d = b - a
    side = CROP_EYE_WIDTHS * max(abs(d[0]), abs(d[1]), 1e-3)  # MediaPipe's square ROI: the long side of the box
    ang = np.arctan2(d[1], d[0])
    c, s = np.cos(ang), np.sin(ang)
    A = (CROP_PX / side) * np.array([[c, s], [-s, c]])
    if mirror:
        A = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ A
    t = np.full(2, CROP_PX / 2) - A @ (0.5 * (a + b))
    return A, t


def centred_irises(landmarks_px: np.ndarray, centres_px: np.ndarray) -> np.ndarray:
    """[478, 2+] face-mesh landmarks (pixels) and [2, 2] iris centres (eye right, left; the iris model's) -> a copy
    whose 5 iris points per eye (IRIS_POINTS) are moved together so that their centre is the given one; the rings
    keep the mesh's size and shape, the depths and the other 468 points are the mesh's.

    Only the centre: the model's limbus ring is up to 15 % smaller than the mesh's on the ../shared
    portraits (obama_speech 8.7 vs 10.1 px; by eye the model's ring fits the dark iris better), and the
    photo's eye code was set with the mesh's ring (eyelids.EyelidConfig.iris_disc, the painted eyeballs):
    with the model's ring a closed lid on obama_speech's left eye kept 0.35 of its lash band dark
    (test_eyes' bound 0.25), with the moved mesh ring 0.08."""
    p = np.array(landmarks_px, copy=True)
    for e, idx in enumerate(IRIS_POINTS):
        p[list(idx), :2] += (np.asarray(centres_px, np.float64)[e] - p[idx[0], :2]).astype(p.dtype)
    return p


def outline_landmarks(landmarks_px: np.ndarray, outline_px: np.ndarray) -> np.ndarray:
    """[478, 2+] face-mesh landmarks (pixels) and [32, 2] the iris model's eye outline (pixels, at `OUTLINE`) -> a
    copy with those 32 points' x, y replaced by the model's (the rest, and every depth, the mesh's): the eyes as the
    iris model outlines them, for rules written on face-mesh vertices (deform.seen_eyelid_ratios)."""
    p = np.array(landmarks_px, copy=True)
    p[list(OUTLINE), :2] = np.asarray(outline_px, np.float64).reshape(len(OUTLINE), 2)
    return p


class IrisModel:
    """MediaPipe's iris landmark model in a MediaPipe graph of its own. Not thread-safe: one instance per thread."""

    @quiet_notices
    def __init__(self, path: str | None = None):
        import cv2
        import mediapipe as mp
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2

        self._cv2, self._mp = cv2, mp
        graph = text_format.Parse(_GRAPH.replace("MODEL_PATH", path or model_path()),
                                  calculator_pb2.CalculatorGraphConfig())
        self._graph = mp.CalculatorGraph(graph_config=graph)
        self._out: dict[str, list] = {"iris": [], "contour": []}
        for name in self._out:
            self._graph.observe_output_stream(
                name, lambda stream, packet: self._out[stream].append(mp.packet_getter.get_proto(packet)))
        self._graph.start_run()
        opened(self._graph)
        self._ts = 0

    @quiet_notices
    def eye_points(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[H, W, 3] uint8 RGB + [478|468, 2+] face-mesh landmarks in its pixels -> ([2, 5, 2] iris points, [2, 71, 2]
        eye-contour points), pixels, eye right, left as in IRIS_POINTS, from one run of the model on each eye's
        crop of the full-resolution image (the corners' crop, `eye_crop`). Iris: centre first, then 4 on the
        limbus in the face mesh's order. Contour: the model's first output, the same points for both eyes (the
        left eye's crop is mirrored); its first 16 are the eye's outline, face-mesh vertices
        `landmarks.IRIS_MODEL_OUTLINE_R` / `_L` (`outline_landmarks` puts them in a face-mesh array)."""
        cv2, mp = self._cv2, self._mp
        p = np.asarray(landmarks_px, np.float64)[:, :2]
        maps = []
        for v in self._out.values():
            v.clear()
        for e, (outer, inner) in enumerate(lmk.EYE_CORNERS):
            a, b = (p[outer], p[inner]) if p[outer, 0] <= p[inner, 0] else (p[inner], p[outer])
            A, t = eye_crop(a, b, mirror=e == 1)
            # warpAffine works on pixel indices (centres at integers): shift both sides by half a pixel
            M = np.hstack([A, (t + A @ np.full(2, 0.5) - 0.5)[:, None]])
            crop = cv2.warpAffine(rgb, M, (CROP_PX, CROP_PX), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            self._ts += 1
            self._graph.add_packet_to_input_stream("image", mp.packet_creator.create_image_frame(
                image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop)).at(self._ts))
            maps.append((A, t))
        self._graph.wait_until_idle()
        if any(len(v) != 2 for v in self._out.values()):
            raise RuntimeError(f"the iris graph gave {[len(v) for v in self._out.values()]} results for 2 eyes")
        out = {}
        for name, results in self._out.items():
            pts = []
            for res, (A, t) in zip(results, maps):
                crop_px = np.array([(q.x, q.y) for q in res.landmark], np.float64) * CROP_PX
                pts.append((crop_px - t) @ np.linalg.inv(A).T)
            out[name] = np.stack(pts)
        out["iris"][1] = out["iris"][1, _UNMIRROR]  # the mirrored eye's limbus points come left-right swapped
        return out["iris"], out["contour"]

    def irises(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
        """[H, W, 3] uint8 RGB + [478|468, 2+] face-mesh landmarks in its pixels -> [2, 5, 2] iris points
        (eye right, left as in IRIS_POINTS; centre first, then 4 on the limbus), pixels (`eye_points`)."""
        return self.eye_points(rgb, landmarks_px)[0]

    def refine(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
        """[478, 3] face-mesh landmarks (pixels of rgb) -> a copy whose 5 iris points per eye are moved together
        so that their centre is the iris model's (`centred_irises`). Raises ValueError without 478 points."""
        return self.refine_with_outline(rgb, landmarks_px)[0]

    def refine_with_outline(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[478, 3] face-mesh landmarks (pixels of rgb) -> (`refine`'s landmarks, [32, 2] the model's eye outline
        in pixels at `OUTLINE` (right eye's 16, then the left's)), from one run of the model per eye. Raises
        ValueError without 478 points."""
        p = np.asarray(landmarks_px)
        if p.ndim != 2 or p.shape[0] != lmk.NUM_LANDMARKS or p.shape[1] < 2:
            raise ValueError(f"need [{lmk.NUM_LANDMARKS}, 2+] landmarks, got {p.shape}")
        irises, contour = self.eye_points(rgb, p)
        return centred_irises(p, irises[:, 0]), contour[:, :OUTLINE_POINTS].reshape(-1, 2)

    def close(self) -> None:
        """Free the iris graph (idempotent)."""
        if self._graph is not None:
            self._graph.close()
            self._graph = None
