"""A basis of the operator's own expression, learned during the session and sent once (latched).

The compact expression code (core/expression_codec.py, a fixed basis of the face template) leaves a residual
of 0.3-0.4 mm RMS that is shape, not noise: the same operator's lips, lids and nostrils miss the same way
frame after frame. The tracker therefore learns, over its first `duration_s` of tracked frames after the
neutral face is calibrated, the P = 16 principal components of that residual (dense expression minus the
decoded fixed code, the 468 mesh points; an uncentred SVD, so the first component also carries the residual's
mean; 12 over the face without the eye contours and 4 over the eye contours, see `learn`) and publishes them once on a latched topic (FaceControl's ExpressionBasis, ~45 KB of float16). From then
on every compact code carries P int8 coefficients of the residual on that basis and the basis id
(expression_codec FLAG_OPERATOR_BASIS, +25 bytes). A receiver that holds a basis with that id adds the
components; one that does not (the basis not yet received, an older basis) decodes the fixed part only: less
exact, never wrong. The id is the CRC-32 of the float16 components, so a new basis (re-calibration, a new
operator, a restarted tracker) has a new id and a receiver can check that what it holds is what the id names.

Method: principal component analysis of the codec's residual (the Karhunen-Loeve transform, the optimal
linear basis for a signal's second moments; Jolliffe, "Principal Component Analysis", 2002). Measured before
it was built (module docstring of expression_codec): 16 components learned on frames 60+ of a clip give the
rendered frames 0-59 a worst-frame PSNR of 41.1 dB against 36.2 dB without (sadtalker).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from gaussian_head_ros.core import landmarks as lmk

NUM_COMPONENTS = 16  # P principal components (16 measured enough for >= 40 dB; 32 gave +0.8 dB)
EYE_COMPONENTS = 4  # of them learned on the eye contours alone, the others on the rest (see learn)
MIN_FRAMES = 32  # a basis is learned from at least this many frames (2 P)


@dataclass
class OperatorBasis:
    """P orthonormal components of the compact code's residual over the V = 468 mesh points."""

    components: np.ndarray  # [P, V, 3] float32, values exactly representable in float16 (what travels)
    id: int = 0  # uint32 CRC-32 of the float16 components (0: computed here)

    def __post_init__(self):
        c = np.asarray(self.components, np.float32)
        if c.ndim != 3 or c.shape[1:] != (lmk.NUM_MESH, 3) or not 1 <= c.shape[0] <= 255:
            raise ValueError(f"operator basis components must be [1..255, {lmk.NUM_MESH}, 3], got {c.shape}")
        if not np.all(np.isfinite(c)):
            raise ValueError("operator basis components contain NaN or Inf")
        self.components = c.astype(np.float16).astype(np.float32)
        crc = basis_id(self.to_bytes())
        if self.id and self.id != crc:
            raise ValueError(f"operator basis id {self.id} does not match its components (CRC-32 {crc}); "
                             "the basis was corrupted or built by another codec")
        self.id = crc

    @property
    def num_components(self) -> int:
        return self.components.shape[0]

    def to_bytes(self) -> bytes:
        """The components as little-endian float16, row-major [P, V, 3] (ExpressionBasis.components)."""
        return self.components.astype("<f2").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, num_components: int, basis_id_: int = 0) -> "OperatorBasis":
        """Inverse of to_bytes. ValueError when the length does not match or the id does not."""
        n = num_components * lmk.NUM_MESH * 3
        if len(data) != 2 * n:
            raise ValueError(f"operator basis of {num_components} components needs {2 * n} bytes, got {len(data)}")
        c = np.frombuffer(bytes(data), "<f2").astype(np.float32).reshape(num_components, lmk.NUM_MESH, 3)
        return cls(c, basis_id_)

    def coefficients(self, residual: np.ndarray) -> np.ndarray:
        """[V, 3] metres -> [P] coefficients (the least-squares ones: the components are orthonormal up to
        float16 rounding, ~1e-3)."""
        return self.components.reshape(self.num_components, -1).astype(np.float64) @ np.asarray(residual, np.float64).ravel()

    def expand(self, coefficients: np.ndarray) -> np.ndarray:
        """[P] coefficients -> [V, 3] float64 metres."""
        return (np.asarray(coefficients, np.float64) @ self.components.reshape(self.num_components, -1)).reshape(-1, 3)


def basis_id(data: bytes) -> int:
    """The id of a basis: CRC-32 of its float16 bytes (never 0: 0 means 'no basis')."""
    return zlib.crc32(data) or 1


def _eye_points() -> np.ndarray:
    """[V] bool: the eye contours (lids and corners)."""
    eye = np.zeros(lmk.NUM_MESH, bool)
    eye[np.ravel(lmk.EYE_CONTOUR_R)] = True
    eye[np.ravel(lmk.EYE_CONTOUR_L)] = True
    return eye


def learn(residuals: np.ndarray, num_components: int = NUM_COMPONENTS,
          eye_components: int = EYE_COMPONENTS) -> OperatorBasis:
    """[T, V, 3] residuals of the compact code (metres) -> the OperatorBasis of their principal directions
    (uncentred PCA: right singular vectors), in two blocks: `eye_components` learned on the eye contours alone
    and the rest on the other points, so that each block is an orthogonal projection of its own region and
    can only bring that region closer (up to quantisation). One joint basis moved the eyes to help the mouth:
    lp_d18, learned over 2 s, eye-contour RMS 0.163 -> 0.191 mm (worse on 101 of 151 later frames) and the
    reader's gaze_h r 0.67 -> 0.45; in blocks 0.163 -> 0.149 mm (sadtalker 0.244 -> 0.172), none worse, the
    rest unchanged (0.424 -> 0.219 mm). Signs fixed so that each component's largest entry is positive.
    ValueError when T < num_components or the residuals are all zero."""
    r = np.asarray(residuals, np.float64).reshape(len(residuals), lmk.NUM_MESH, 3)
    if r.shape[0] < num_components:
        raise ValueError(f"an operator basis of {num_components} components needs as many frames, got {r.shape[0]}")
    if not np.any(r):
        raise ValueError("the residuals are all zero: nothing to learn")
    eye = _eye_points()
    blocks = []
    for region, k in ((~eye, num_components - eye_components), (eye, eye_components)):
        x = np.where(region[None, :, None], r, 0.0).reshape(len(r), -1)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        blocks.append(vt[:k] * (s[:k, None] > 0))  # a region without residual: zero components
    vt = np.concatenate(blocks)
    vt *= np.where(vt[np.arange(len(vt)), np.abs(vt).argmax(1)] < 0, -1.0, 1.0)[:, None]
    return OperatorBasis(vt.reshape(num_components, lmk.NUM_MESH, 3))


@dataclass
class BasisLearner:
    """Collects the compact code's residual of tracked frames until `duration_s` of them (by stamp) and at
    least MIN_FRAMES are in, then learns the basis once (`add` returns it that one time). `reset()` starts
    over (re-calibration, a new operator): the next basis gets a new id."""

    duration_s: float = 10.0  # seconds of tracked frames to learn from (> 0)
    num_components: int = NUM_COMPONENTS
    _residuals: list = field(default_factory=list, repr=False)
    _first_ns: int | None = field(default=None, repr=False)
    done: bool = False

    def reset(self) -> None:
        self._residuals, self._first_ns, self.done = [], None, False

    @property
    def frames(self) -> int:
        return len(self._residuals)

    def add(self, expression: np.ndarray, eyelid_ratios: np.ndarray | None, stamp_ns: int) -> OperatorBasis | None:
        """One tracked frame's dense [L, 3] expression (metres) and eyelid ratios. -> the learned basis on the
        frame that completes the window, else None (also after it: learn once per reset)."""
        from gaussian_head_ros.core import expression_codec

        if self.done or not np.size(expression):
            return None
        self._residuals.append(expression_codec.residual(expression, eyelid_ratios))
        self._first_ns = stamp_ns if self._first_ns is None else self._first_ns
        if (stamp_ns - self._first_ns) * 1e-9 < self.duration_s or self.frames < max(MIN_FRAMES, self.num_components):
            return None
        return self.finish()

    def finish(self) -> OperatorBasis:
        """Learn from what was collected now (the window not complete). ValueError when too few frames."""
        basis = learn(np.stack(self._residuals), self.num_components)
        self._residuals, self.done = [], True
        return basis
