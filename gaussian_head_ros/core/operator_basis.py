"""A basis of the operator's own expression, learned during the session and sent once (latched).

The compact expression code (core/expression_codec.py, a fixed basis of the face template) leaves a residual
of 0.3-0.4 mm RMS that is shape, not noise: the same operator's lips, lids and nostrils miss the same way
frame after frame. The tracker therefore learns the principal components of that residual (dense expression
minus the decoded fixed code, the 468 mesh points; an uncentred PCA, so the first component also carries
the residual's mean; P = 16, fewer from fewer frames, a quarter of them over the eye contours and the rest
over the other points, see `learn`), first after a short window of tracked frames and again at growing
windows and whenever the residual of recent frames grows (`BasisLearner`: expressions not seen before), and
publishes each basis on a latched topic (ExpressionBasis, ~45 KB of float16) before its codes use it. Each
compact code then carries P int8 coefficients of the residual on that basis and the basis id
(expression_codec FLAG_OPERATOR_BASIS, +23 bytes). A receiver that holds a basis with that id adds the
components; one that does not (the basis not yet received, an older basis) decodes the fixed part only: less
exact, never wrong. The id is the CRC-32 of the float16 components, so every new basis has a new id and a
receiver can check that what it holds is what the id names. `CausalBasis` is the tracker's rule without ROS
(evaluations, scripts/bench_control_codec.py).

Method: principal component analysis of the codec's residual (the Karhunen-Loeve transform, the optimal
linear basis for a signal's second moments; Jolliffe, "Principal Component Analysis", 2002). Measured before
it was built (module docstring of expression_codec): 16 components learned on frames 60+ of a clip give the
rendered frames 0-59 a worst-frame PSNR of 41.1 dB against 36.2 dB without (sadtalker). Learned causally as the
tracker does (scripts/bench_control_codec.py --operator-basis causal --switch-delay-s 0.1, whole clips): worst
frame 46.4/40.6/37.6/43.4 dB on lp_d0/lp_d18/sadtalker/tpsmm (33 of sadtalker's 200 frames below 40 dB: new
expressions before a basis that has seen them arrives); one basis over the first 2 s gave 36.7 dB on sadtalker.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from gaussian_head_ros.core import landmarks as lmk

NUM_COMPONENTS = 16  # P principal components (16 measured enough for >= 40 dB; 32 gave +0.8 dB)
EYE_COMPONENTS = 4  # of them learned on the eye contours alone, the others on the rest (see learn)
MIN_FRAMES = 8  # a basis is learned from at least this many frames (components_for: P <= the frames)
MAX_FRAMES = 512  # residuals kept to learn from (~6 MB; learning ~0.1 s on a loaded core); beyond, every other one is dropped
MAX_WINDOW_S = 600.0  # growing windows up to this; then only a growing residual re-learns
FIRST_S_RANGE = (0.0, MAX_WINDOW_S)  # [s] tracker_node's operator_basis_s (eval --operator-basis-s); 0 = off
RECENT = 8  # frames over which the residual the current basis misses is watched
GROWTH = 1.5  # re-learn when that exceeds GROWTH x what the basis missed on most of its own frames ...
FIT_PERCENTILE = 95  # ... (this percentile of its per-frame miss: an RMS there re-learned a looping clip's
# harder stretches, which the basis had been learned from, every ~7 s to the same basis: 136 in 35 min) ...
FLOOR_M = 1e-4  # ... and 0.1 mm RMS; for a basis learned from fewer than FIT_FRAMES x its components frames, judged
# only while no window is due within MIN_INTERVAL_S: such a basis nearly reproduces each of its frames (14 frames, 14
# components: p95 0.03 mm on lp_d18 and 0.05 mm on sadtalker, while it missed the next 8 frames by 0.17 / 0.16 mm,
# 3-5 x; from 40 frames 1.3-1.6 x), and every first-window basis was re-learned for a 'growing' residual 0.2-0.35 s
# later, 0.15-0.2 s before the 1 s window re-learned it again: three bases of ~45 KB in 0.5 s at each start and
# re-calibration, the second used for 0.2 s (user51). (A face seen only a moment before it left for a while gets its
# first basis from MIN_FRAMES frames when it is back, with the next window many seconds away: watched then.)
FIT_FRAMES = 2
MIN_INTERVAL_S = 2.0  # between re-learns for a growing residual (each basis is ~45 KB on the wire: <= 180 kbit/s
# while the operator keeps making new expressions; the windows come on top, ever rarer)


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
        """P, the number of components (rows of `components`, [P, V, 3])."""
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


def learn(residuals: np.ndarray, num_components: int | None = None,
          eye_components: int | None = None) -> OperatorBasis:
    """[T, V, 3] residuals of the compact code (metres) -> the OperatorBasis of their principal directions
    (uncentred PCA: right singular vectors), in two blocks: `eye_components` learned on the eye contours alone
    and the rest on the other points, so that each block is an orthogonal projection of its own region and
    can only bring that region closer (up to quantisation). One joint basis moved the eyes to help the mouth:
    lp_d18, learned over 2 s, eye-contour RMS 0.163 -> 0.191 mm (worse on 101 of 151 later frames) and the
    reader's gaze_h r 0.67 -> 0.45; in blocks 0.163 -> 0.149 mm (sadtalker 0.244 -> 0.172), none worse, the
    rest unchanged (0.424 -> 0.219 mm). Signs fixed so that each component's largest entry is positive.
    num_components / eye_components default to components_for(T). ValueError when T < num_components or
    the residuals are all zero."""
    r = np.asarray(residuals, np.float64).reshape(len(residuals), lmk.NUM_MESH, 3)
    auto = components_for(len(r))
    num_components = auto[0] if num_components is None else int(num_components)
    eye_components = (auto[1] if num_components == auto[0] else max(1, round(num_components * EYE_COMPONENTS / NUM_COMPONENTS))) \
        if eye_components is None else int(eye_components)
    if r.shape[0] < num_components:
        raise ValueError(f"an operator basis of {num_components} components needs as many frames, got {r.shape[0]}")
    if not np.any(r):
        raise ValueError("the residuals are all zero: nothing to learn")
    eye = _eye_points()
    vt = np.zeros((num_components, lmk.NUM_MESH, 3))
    row = 0
    for region, k in ((~eye, num_components - eye_components), (eye, eye_components)):
        vt[row:row + k][:, region] = _principal_directions(r[:, region].reshape(len(r), -1), k).reshape(
            k, int(region.sum()), 3)
        row += k
    vt = vt.reshape(num_components, -1)
    vt *= np.where(vt[np.arange(len(vt)), np.abs(vt).argmax(1)] < 0, -1.0, 1.0)[:, None]
    return OperatorBasis(vt.reshape(num_components, lmk.NUM_MESH, 3))


def windows(first_s: float) -> tuple[float, ...]:
    """The growing learning windows, seconds of collected frames since (re)calibration: first_s, then doubling
    (2 x, 4 x, ...) up to MAX_WINDOW_S. After the last one only a growing residual re-learns."""
    out, w = [], float(first_s)
    while w <= MAX_WINDOW_S:
        out.append(w)
        w *= 2.0
    return tuple(out)


def miss_rms(basis: OperatorBasis, residuals: np.ndarray) -> np.ndarray:
    """[T, V, 3] residuals (metres) -> [T] RMS over the V points of what `basis` does not represent (the
    residual minus its orthogonal projection on the components; quantisation left out), metres."""
    x = np.asarray(residuals, np.float64).reshape(len(residuals), -1)
    b = basis.components.reshape(basis.num_components, -1).astype(np.float64)
    left = np.maximum((x * x).sum(1) - ((x @ b.T) ** 2).sum(1), 0.0)
    return np.sqrt(left / lmk.NUM_MESH)


def _principal_directions(x: np.ndarray, k: int) -> np.ndarray:
    """[T, D] -> [k, D] the k leading right singular vectors of x (orthonormal rows; zero rows where x has fewer
    than k non-zero singular values), from the eigenvectors of the smaller Gram matrix (x x^T or x^T x): faster
    than the SVD (1024 x 1308 on one loaded core: 0.6 s against 3.3 s), same directions to 1e-12. numpy's eigh,
    which releases the GIL while LAPACK runs: scipy.linalg.eigh (k eigenpairs only, 3x less CPU) holds it, and
    on the tracker's basis thread that stopped the whole node (its executor and frame thread) for the length of
    a learn: 0.5 s under load, no camera frame taken (bench_latency trace)."""
    t, d = x.shape
    out = np.zeros((k, d))
    k = min(k, t, d)
    if k == 0:
        return out
    small = x @ x.T if t <= d else x.T @ x
    w, v = np.linalg.eigh(small)  # ascending
    w, v = w[::-1][:k], v[:, ::-1][:, :k]
    keep = w > max(w[0], 0.0) * 1e-12
    if t <= d:  # left singular vectors u = v -> right ones u^T x / s
        v = (x.T @ v) / np.sqrt(np.where(keep, w, 1.0))
    out[:k] = np.where(keep[None, :], v, 0.0).T
    return out


@dataclass
class BasisLearner:
    """Decides when the operator basis is (re-)learned and keeps the residuals to learn it from; learning itself
    (`learn`, an SVD: 0.1 s and more) is left to the caller, off the frame thread (tracker_node's basis worker).

    Per tracked frame `add` keeps the compact code's residual (at most MAX_FRAMES: beyond, every other one is
    dropped, so a long session keeps an even sample of all of it) and says when a new basis is due:
    - growing windows: after `first_s` of frames since (re)calibration, then after 2, 4, 8 ... x that
      (`windows`): a first basis within a second, later ones from more of the session;
    - a growing residual: the mean of what the current basis misses over the last RECENT frames exceeds
      GROWTH x what it missed on FIT_PERCENTILE % of the frames it was learned from, and FLOOR_M, at most every
      MIN_INTERVAL_S
      (each basis is ~45 KB on the wire; counted between these re-learns, not from the windows'):
      expressions the operator had not made before.
    Then `take()` hands the residuals to learn from (and nothing more is due until `learned` or `failed` says
    how that went). `reset()` starts over (re-calibration, a new operator): a new basis gets a new id."""

    first_s: float = 0.5  # the first window, seconds of frames (> 0)
    max_frames: int = MAX_FRAMES
    codec: int | None = None  # the compact code whose residual is learned (expression_codec; None: CODEC_COMPACT)
    _residuals: list = field(default_factory=list, repr=False)
    _stamps: list = field(default_factory=list, repr=False)
    _first_ns: int | None = field(default=None, repr=False)
    _next_window: int = 0  # index into windows(first_s) of the next window
    _recent: list = field(default_factory=list, repr=False)  # what the current basis missed, last RECENT frames
    _fit_level: float | None = None  # FIT_PERCENTILE of what the current basis missed on its own frames
    _fit_sampled: bool = False  # ... learned from FIT_FRAMES x its components frames or more (else judged less)
    _last_grown_s: float = -np.inf  # stream time of the last re-learn for a growing residual
    _busy: bool = False  # a basis is being learned from what `take` gave
    learned_count: int = 0
    reason: str = ""  # why the last basis was due: 'window N s' or 'residual x.x mm'

    def reset(self) -> None:
        """Forget the frames' residuals and when a basis is due (a re-calibration): windows count again from
        the next frame."""
        self._residuals, self._stamps, self._first_ns, self._next_window = [], [], None, 0
        self._recent, self._fit_level, self._last_grown_s, self._busy = [], None, -np.inf, False

    @property
    def frames(self) -> int:
        """How many residuals are kept (at most MAX_FRAMES)."""
        return len(self._residuals)

    def add(self, expression: np.ndarray, eyelid_ratios: np.ndarray | None, stamp_ns: int,
            basis: OperatorBasis | None = None) -> bool:
        """One tracked frame's dense [L, 3] expression (metres), eyelid ratios and stamp; `basis` the one its
        code is sent with now. -> True when a new basis is due (then call `take`)."""
        from gaussian_head_ros.core import expression_codec

        if not np.size(expression):
            return False
        codec = expression_codec.CODEC_COMPACT if self.codec is None else self.codec
        r = expression_codec.residual(expression, eyelid_ratios, codec)
        self._residuals.append(r)
        self._stamps.append(stamp_ns)
        if len(self._residuals) > self.max_frames:  # keep an even sample of the whole session
            self._residuals, self._stamps = self._residuals[::2], self._stamps[::2]
        self._first_ns = stamp_ns if self._first_ns is None else self._first_ns
        t = (stamp_ns - self._first_ns) * 1e-9
        if basis is not None and self._fit_level is not None:
            self._recent = (self._recent + [float(miss_rms(basis, r[None])[0])])[-RECENT:]
        if self._busy or self.frames < MIN_FRAMES:
            return False
        due = windows(self.first_s)
        if self._next_window < len(due) and t >= due[self._next_window]:
            while self._next_window < len(due) and t >= due[self._next_window]:
                self._next_window += 1
            self.reason = f"window {due[self._next_window - 1]:g} s"
            return True
        window_soon = self._next_window < len(due) and due[self._next_window] - t < MIN_INTERVAL_S
        if (len(self._recent) == RECENT and self._fit_level is not None and (self._fit_sampled or not window_soon)
                and t - self._last_grown_s >= MIN_INTERVAL_S):
            recent = float(np.mean(self._recent))
            if recent > max(GROWTH * self._fit_level, FLOOR_M):
                self._last_grown_s = t
                self.reason = (f"residual {recent * 1e3:.2f} mm > {GROWTH:g} x {self._fit_level * 1e3:.2f} mm "
                               f"(p{FIT_PERCENTILE} of its frames)")
                return True
        return False

    def take(self) -> np.ndarray:
        """[T, V, 3] the residuals to learn the due basis from (`learn`); nothing more is due until `learned`
        or `failed` is called."""
        self._busy = True
        return np.stack(self._residuals)

    def learned(self, basis: OperatorBasis, residuals: np.ndarray) -> None:
        """The basis learned from `residuals` (what `take` gave) is now the one codes are sent with."""
        self._fit_level = float(np.percentile(miss_rms(basis, residuals), FIT_PERCENTILE))
        self._fit_sampled = len(residuals) >= FIT_FRAMES * basis.num_components
        self._recent, self._busy = [], False
        self.learned_count += 1

    def failed(self) -> None:
        """Learning what `take` gave did not give a basis (or it was not used): let the next one be due."""
        self._busy = False


def components_for(frames: int) -> tuple[int, int]:
    """(P, eye components) learned from `frames` frames: NUM_COMPONENTS and EYE_COMPONENTS, fewer (one
    component per frame, a quarter of them on the eyes) while fewer frames are in."""
    p = min(NUM_COMPONENTS, int(frames))
    return p, max(1, round(p * EYE_COMPONENTS / NUM_COMPONENTS))


@dataclass
class CausalBasis:
    """The operator basis as tracker_node sends its codes with, frame by frame, without ROS (evaluations,
    scripts/bench_control_codec.py): a BasisLearner fed every tracked frame with a face (calibrated or not
    yet, as tracker_node; a re-calibration there resets it); a due basis is learned
    at once and used from the first frame `delay_s` after the one that made it due (tracker_node: the
    learning on its worker thread plus the basis's delivery to the receivers; 0 = the next frame)."""

    first_s: float = 0.5  # tracker_node's operator_basis_s
    delay_s: float = 0.0
    codec: int | None = None  # the compact code the codes are sent with (expression_codec; None: CODEC_COMPACT)
    learner: BasisLearner | None = None
    current: OperatorBasis | None = None
    switches: list = field(default_factory=list)  # (stamp_ns from which it is used, basis, reason)
    _pending: tuple | None = None  # (stamp_ns from which it is used, basis, the residuals it was learned from)

    def __post_init__(self):
        self.learner = self.learner or BasisLearner(first_s=self.first_s, codec=self.codec)

    def step(self, expression: np.ndarray, eyelid_ratios: np.ndarray | None, stamp_ns: int) -> OperatorBasis | None:
        """One tracked frame (with a face) -> the basis its code is sent with (None: the fixed code only)."""
        if self._pending is not None and stamp_ns >= self._pending[0]:
            _, self.current, residuals = self._pending
            self.learner.learned(self.current, residuals)
            self._pending = None
        if self.learner.add(expression, eyelid_ratios, stamp_ns, self.current):
            residuals = self.learner.take()
            basis = learn(residuals)
            # strictly after this frame: this frame's code is sent with the basis in use now
            self._pending = (stamp_ns + max(int(self.delay_s * 1e9), 1), basis, residuals)
            self.switches.append((self._pending[0], basis, self.learner.reason))
        return self.current
