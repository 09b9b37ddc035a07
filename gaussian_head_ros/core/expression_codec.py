"""Compact expression on the wire: ~400 bytes instead of 478 x 3 float32 (5.7 KB).

The dense expression (FaceControl.expression, [L, 3] metres: landmarks minus the operator's neutral face)
is projected onto a fixed basis of the face template and quantised:

- basis: the K = 128 lowest-frequency solutions of L u = lambda M u, L = D - A the combinatorial graph
  Laplacian of the template mesh (the 468 face-mesh vertices and the edges of MediaPipe's
  FACEMESH_TESSELATION, which keeps eyes and mouth open; core/reconstruct/template.py) and M a diagonal
  mass: each vertex's degree, times OPENING_MASS = 2 on the lips, the eye contours and their neighbours.
  Laplacian eigenvectors are the mesh's Fourier basis (Taubin, "A signal processing approach to fair
  surface design", SIGGRAPH 1995; Karni & Gotsman, "Spectral compression of mesh geometry", SIGGRAPH
  2000), here applied to the displacement field; the degree mass makes them random-walk harmonics, and the
  heavier openings give lips and lids, whose motion is the least smooth over the mesh (they part and
  close), more of the basis's resolution. Derived from the template's connectivity alone, with nobody's
  face data. The same on every machine: eigenvalues are well separated (smallest gap among the first
  129 > 1e-4, against LAPACK's ~1e-13 error) and each eigenvector's sign is fixed by its first component
  larger than a tenth of its largest (test_expression_codec pins values).
  Chosen on the ../shared clips' tracked expressions (663 frames; landmark RMS per clip lp_d0/lp_d18/
  sadtalker/tpsmm at K = 128, then the largest error of an eyelid gap): plain graph Laplacian 0.42/0.52/
  0.40/0.42 mm; degree mass 0.39/0.50/0.39/0.41; + lips x2 0.33/0.41/0.39/0.38 but lid gap 2.8 mm; + lips
  and eyes x2 0.36/0.43/0.39/0.39, lid gap 1.6 mm (this one); eyes x3 0.46/0.51/0.44/0.45, lid gap 0.7 mm.
- upper lids: one more column per upper-lid vertex (the 14 of landmarks.EYELID_PAIRS_*): a closing lid moves
  those vertices ~9 mm while the lid crease above stays put, a step no smooth mode follows; fitted with the
  modes, they take that step and the modes no longer ring around the eyes (sadtalker frame 34: crease
  vertices 27/28/257/258 were 2.4 mm off, worst frame 34.6 -> 36.0 dB).
- coefficients: the least-squares C = (U^T U)^-1 U^T X ([K + 14, 3]), quantised per band with one float32
  step per band and message (step = max |c| of the band / qmax): modes 0-7, 8-23, 24-63 as int8, 64-127 as
  int4 (two per byte), the lid columns as int8.
- eyelid ratios (FaceControl.eyelid_ratios: operator lid gap / neutral gap per pair, what the driver
  retargets the lids by; absolute landmarks are off by default, so they travel here): uint8 in 0.01 steps.
- irises (landmarks 468-477, no mesh edges; the renderer never moves them, gaze has its own field): int8
  with one float32 step.

Measured (CODEC_LAPLACIAN_V2) on every ../shared clip's tracked expressions (all frames, 663): landmark RMS
0.35 (lp_d0), 0.43 (lp_d18), 0.38 (sadtalker), 0.32 (tpsmm) mm, against an expression RMS of 3.1-6.9 mm;
401 bytes of code for 478 points, a FaceControl of 536 bytes serialized (16.1 kB/s at 30 fps). Renders of
each clip's frame-0 avatar driven by the tracker's own control (landmarks, exact lid ratios) vs the compact
message (scripts/bench_control_codec.py, 60 frames per clip): PSNR mean 51.6/54.4/41.7/52.1 dB, worst frame
44.9/47.0/36.2/46.1 dB (V1 without the lid columns: 34.6 dB on sadtalker). The worst frames differ by 1-2
pixel shifts of the lip contours, the lid edges, the nostrils and hair strands near the temples: the
residual the 128 modes leave is shape, not noise (it changes 0.04-0.07 mm frame to frame against 0.35-0.43
mm in all); 256 float modes would still give 39.5 dB on sadtalker's worst frame, 400 give 50.6 dB. The
FaceLandmarker reader's correlations differ by at most 0.05/0.10/0.03/0.04 (lp_d18: gaze_h, whose r is
~-0.1 without a signal; else pitch, 0.07) against 0.03/0.03/0.005/0.015 for +-1/255 noise on the dense
renders. Gaze, mouth_open, blendshapes and the head pose travel exactly in their own fields.
The way to >= 40 dB, built (core/operator_basis.py): a basis of the operator learned during the session and
sent once, latched: 16 principal components of this code's residual; each code then carries 16 more int8
(FLAG_OPERATOR_BASIS, +25 bytes: a ~560-byte FaceControl). Measured before it was built: learned on frames 60+
of the same clip and applied to the rendered frames 0-59, landmark RMS 0.14/0.09/0.10 mm and worst frame
41.1/53.2/50.4 dB (sadtalker/lp_d18/tpsmm; 32 components: 41.9/53.4/50.9 dB). As built (two blocks, see
operator_basis.learn), learned the same way: worst frame 40.5/53.0/49.9 dB, lp_d0 48.5 dB; learned causally
as the tracker does (re-learned at growing windows and when the residual grows; whole clips): 37.6 dB on
sadtalker, 40.6-46.4 dB on the others (README, scripts/bench_control_codec.py --operator-basis causal).

Code layout (CODEC_LAPLACIAN_V2, little-endian), all of it in FaceControl.expression_code:
  uint16 number of expression points L (468 or 478), uint8 flags (1: eyelid ratios present),
  float32 step[5] (the four mode bands, the lid columns), int8 bands 0..2 coefficients (modes 0-63,
  row-major [mode, xyz]), int4 band 3 (modes 64-127, row-major, two's complement, low nibble first), int8
  lid columns [14, 3], uint8 eyelid ratios [14] (x 0.01) when flagged, then when L == 478 float32 iris step
  and int8 iris offsets [10, 3]; then when flagged FLAG_OPERATOR_BASIS: uint32 basis id, uint8 P, float32 step,
  int8 coefficients [P] of the residual (expression minus the decoded fixed part, mesh points) on that basis.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.control import NUM_LID_PAIRS

CODEC_DENSE = 0  # FaceControl.expression as float32 (no code)
CODEC_LAPLACIAN_V1 = 1  # retired (builds of 2026-11-29 before the lid ratios): refused with a clear error
CODEC_LAPLACIAN_V2 = 2  # this module
CODEC_COMPACT = CODEC_LAPLACIAN_V2
CODECS = {"dense": CODEC_DENSE, "compact": CODEC_COMPACT}

NUM_MODES = 128  # K Laplacian modes
BANDS = ((0, 8, 8), (8, 24, 8), (24, 64, 8), (64, 128, 4))  # (first mode, end, bits)
LID_BITS = 8  # the upper-lid columns' coefficients
OPENING_MASS = 2.0  # mass of the lip and eye-contour vertices and their neighbours (see the docstring)
SIGN_FRACTION = 0.1  # an eigenvector's sign: its first component above this fraction of its largest is > 0
UPPER_LIDS = tuple(p[0] for p in lmk.EYELID_PAIRS_R + lmk.EYELID_PAIRS_L)  # [14] one basis column each
RATIO_STEP = 0.01  # eyelid ratios as uint8 multiples of this (0..2.55)
FLAG_RATIOS = 1  # header flag: the 14 eyelid ratios follow the coefficients
FLAG_OPERATOR_BASIS = 2  # header flag: an operator-basis section ends the code (core/operator_basis.py)
OPERATOR_BITS = 8  # the operator-basis coefficients
OPERATOR_SECTION_BYTES = 9  # uint32 basis id, uint8 P, float32 step; then P int8 coefficients


@functools.lru_cache(maxsize=1)
def _basis_and_projector() -> tuple[np.ndarray, np.ndarray]:
    from gaussian_head_ros.core.reconstruct.template import template_faces

    v = lmk.NUM_MESH
    f = np.asarray(template_faces(), np.int64)  # [F, 3]
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [0, 2]]])  # each edge once or twice
    adj = np.zeros((v, v))
    adj[e[:, 0], e[:, 1]] = 1.0
    adj[e[:, 1], e[:, 0]] = 1.0
    degree = adj.sum(1)
    openings = np.zeros(v, bool)  # lips and eye contours
    openings[np.ravel(lmk.LIPS)] = True
    openings[np.ravel(lmk.EYE_CONTOUR_R)] = True
    openings[np.ravel(lmk.EYE_CONTOUR_L)] = True
    openings |= adj[openings].sum(0) > 0  # and their neighbours
    mass = degree * np.where(openings, OPENING_MASS, 1.0)
    # L u = lambda M u with M diagonal: the symmetric problem M^-1/2 L M^-1/2 y = lambda y, u = M^-1/2 y
    m = 1.0 / np.sqrt(mass)
    _, y = np.linalg.eigh((np.diag(degree) - adj) * m[:, None] * m[None, :])
    u = y[:, :NUM_MODES] * m[:, None]
    for k in range(NUM_MODES):
        col = u[:, k]
        first = np.flatnonzero(np.abs(col) > SIGN_FRACTION * np.abs(col).max())[0]
        if col[first] < 0:
            u[:, k] = -col
    lids = np.zeros((v, len(UPPER_LIDS)))
    lids[list(UPPER_LIDS), np.arange(len(UPPER_LIDS))] = 1.0
    u = np.concatenate([u, lids], 1)  # [V, K + 14]
    p = np.linalg.solve(u.T @ u, u.T)  # [K + 14, V]: least-squares coefficients (the smallest Euclidean landmark error)
    u.setflags(write=False)
    p.setflags(write=False)
    return u, p


def basis() -> np.ndarray:
    """[V=468, K + 14] float64: the expression basis (generalized eigenvectors, then one column per upper-lid
    vertex; see the module docstring)."""
    return _basis_and_projector()[0]


def code_size(num_points: int, eyelid_ratios: bool = True) -> int:
    """Bytes of the code for an expression of `num_points` points (with or without the eyelid ratios)."""
    coeff = sum((b - a) * 3 * bits // 8 for a, b, bits in BANDS) + len(UPPER_LIDS) * 3 * LID_BITS // 8
    return (3 + 4 * (len(BANDS) + 1) + coeff + (NUM_LID_PAIRS if eyelid_ratios else 0)
            + (4 + 3 * lmk.NUM_IRIS if num_points == lmk.NUM_LANDMARKS else 0))


def _quantise(x: np.ndarray, bits: int) -> tuple[float, np.ndarray]:
    """Values -> (step, int8 levels in +-(2^(bits-1) - 1)): step = max |x| / qmax (1 for all-zero x)."""
    qmax = 2 ** (bits - 1) - 1
    step = float(np.abs(x).max()) / qmax if x.size else 0.0
    step = step if step > 0 else 1.0
    return step, np.clip(np.rint(x / step), -qmax, qmax).astype(np.int8).ravel()


def _fixed_coefficients(x: np.ndarray) -> tuple[list[float], list[bytes], np.ndarray]:
    """[V, 3] mesh expression -> (the bands' steps, their packed levels, [K + 14, 3] dequantised coefficients)."""
    c = _basis_and_projector()[1] @ x  # [K + 14, 3]
    c_hat = np.empty_like(c)
    steps, parts = [], []
    for a, b, bits in BANDS + ((NUM_MODES, NUM_MODES + len(UPPER_LIDS), LID_BITS),):
        step, q = _quantise(c[a:b], bits)
        steps.append(step)
        c_hat[a:b] = q.reshape(b - a, 3).astype(np.float64) * np.float32(step)
        if bits == 8:
            parts.append(q.tobytes())
        else:  # int4: two's complement nibbles, low nibble first
            n = (q.astype(np.uint8) & 0x0F)
            parts.append((n[0::2] | (n[1::2] << 4)).astype(np.uint8).tobytes())
    return steps, parts, c_hat


def _check(expression, eyelid_ratios) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(expression, np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or x.shape[0] not in (lmk.NUM_MESH, lmk.NUM_LANDMARKS):
        raise ValueError(f"expression must be [{lmk.NUM_MESH} or {lmk.NUM_LANDMARKS}, 3], got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("expression contains NaN or Inf")
    r = None if eyelid_ratios is None else np.asarray(eyelid_ratios, np.float64).ravel()
    if r is not None and r.size == 0:
        r = None
    if r is not None and (r.size != NUM_LID_PAIRS or not np.all(np.isfinite(r))):
        raise ValueError(f"eyelid_ratios must be {NUM_LID_PAIRS} finite values, got {r.size}")
    return x, r


def residual(expression: np.ndarray, eyelid_ratios: np.ndarray | None = None) -> np.ndarray:
    """[L, 3] expression (metres) -> [V=468, 3] float64: what the fixed code misses on the mesh points (the
    expression minus the decoded code without an operator basis); what core/operator_basis.py learns from."""
    x, _ = _check(expression, eyelid_ratios)
    c_hat = _fixed_coefficients(x[:lmk.NUM_MESH])[2]
    return x[:lmk.NUM_MESH] - basis() @ c_hat


def encode(expression: np.ndarray, eyelid_ratios: np.ndarray | None = None, operator_basis=None) -> bytes:
    """[L, 3] float (L = 468 or 478), metres, and optionally [14] eyelid ratios (FaceControl.eyelid_ratios,
    clipped to 0..2.55) -> code bytes (CODEC_LAPLACIAN_V2). With an `operator_basis`
    (core.operator_basis.OperatorBasis) the code also carries its id and the int8 coefficients of the residual
    on it (FLAG_OPERATOR_BASIS, OPERATOR_SECTION_BYTES + P bytes). ValueError for another shape or non-finite
    values."""
    x, r = _check(expression, eyelid_ratios)
    steps, parts, c_hat = _fixed_coefficients(x[:lmk.NUM_MESH])
    if r is not None:
        parts.append(np.clip(np.rint(r / RATIO_STEP), 0, 255).astype(np.uint8).tobytes())
    flags = (FLAG_RATIOS if r is not None else 0) | (FLAG_OPERATOR_BASIS if operator_basis is not None else 0)
    out = (np.uint16(x.shape[0]).tobytes() + np.uint8(flags).tobytes()
           + np.asarray(steps, "<f4").tobytes() + b"".join(parts))
    if x.shape[0] == lmk.NUM_LANDMARKS:
        step, q = _quantise(x[lmk.NUM_MESH:], 8)
        out += np.float32(step).astype("<f4").tobytes() + q.tobytes()
    if operator_basis is not None:
        fixed = basis() @ c_hat
        step, q = _quantise(operator_basis.coefficients(x[:lmk.NUM_MESH] - fixed), OPERATOR_BITS)
        out += (np.uint32(operator_basis.id).astype("<u4").tobytes() + np.uint8(q.size).tobytes()
                + np.float32(step).astype("<f4").tobytes() + q.tobytes())
    return out


def operator_basis_id(code: bytes | memoryview) -> int:
    """The operator basis id a code refers to (0: none; the code is not validated beyond its header)."""
    buf = bytes(code)
    if len(buf) < 3 or not buf[2] & FLAG_OPERATOR_BASIS:
        return 0
    n = int(np.frombuffer(buf[:2], "<u2")[0])
    pos = code_size(n, bool(buf[2] & FLAG_RATIOS))
    return int(np.frombuffer(buf, "<u4", 1, pos)[0]) if len(buf) >= pos + OPERATOR_SECTION_BYTES else 0


def decode(code: bytes | memoryview, operator_basis=None) -> tuple[np.ndarray, np.ndarray]:
    """Code bytes (CODEC_LAPLACIAN_V2) -> ([L, 3] float32 expression, metres; [14] float32 eyelid ratios, or
    [0] when the code carries none). A code with operator-basis coefficients adds them through
    `operator_basis` (core.operator_basis.OperatorBasis) when its id is the code's; otherwise (None, another
    id, another number of components) the fixed part alone is decoded (less exact, never wrong).
    ValueError when the code is malformed (wrong length, point count, non-finite steps)."""
    buf = bytes(code)
    if len(buf) < 3:
        raise ValueError("expression code is empty")
    n, flags = int(np.frombuffer(buf[:2], "<u2")[0]), buf[2]
    if n not in (lmk.NUM_MESH, lmk.NUM_LANDMARKS):
        raise ValueError(f"expression code for {n} points; expected {lmk.NUM_MESH} or {lmk.NUM_LANDMARKS}")
    has_ratios = bool(flags & FLAG_RATIOS)
    size = code_size(n, has_ratios)
    if flags & FLAG_OPERATOR_BASIS:
        if len(buf) < size + OPERATOR_SECTION_BYTES:
            raise ValueError(f"expression code has {len(buf)} bytes, too short for its operator-basis section")
        size += OPERATOR_SECTION_BYTES + buf[size + 4]
    if len(buf) != size:
        raise ValueError(f"expression code has {len(buf)} bytes, expected {size} for {n} points")
    bands = BANDS + ((NUM_MODES, NUM_MODES + len(UPPER_LIDS), LID_BITS),)
    steps = np.frombuffer(buf, "<f4", len(bands), 3).astype(np.float64)
    if not np.all(np.isfinite(steps)):
        raise ValueError("expression code has non-finite quantisation steps")
    c = np.empty((NUM_MODES + len(UPPER_LIDS), 3))
    pos = 3 + 4 * len(bands)
    for (a, b, bits), step in zip(bands, steps):
        count = (b - a) * 3
        if bits == 8:
            q = np.frombuffer(buf, np.int8, count, pos).astype(np.float64)
            pos += count
        else:
            packed = np.frombuffer(buf, np.uint8, count // 2, pos)
            pos += count // 2
            nib = np.empty(count, np.int16)
            nib[0::2], nib[1::2] = packed & 0x0F, packed >> 4
            q = np.where(nib > 7, nib - 16, nib).astype(np.float64)
        c[a:b] = q.reshape(b - a, 3) * step
    ratios = np.zeros(0, np.float32)
    if has_ratios:
        ratios = np.frombuffer(buf, np.uint8, NUM_LID_PAIRS, pos).astype(np.float32) * np.float32(RATIO_STEP)
        pos += NUM_LID_PAIRS
    out = np.zeros((n, 3), np.float32)
    mesh = basis() @ c
    if n == lmk.NUM_LANDMARKS:
        step = float(np.frombuffer(buf, "<f4", 1, pos)[0])
        if not np.isfinite(step):
            raise ValueError("expression code has a non-finite iris step")
        out[lmk.NUM_MESH:] = np.frombuffer(buf, np.int8, 3 * lmk.NUM_IRIS, pos + 4).reshape(-1, 3) * step
        pos += 4 + 3 * lmk.NUM_IRIS
    if flags & FLAG_OPERATOR_BASIS:
        bid, p = int(np.frombuffer(buf, "<u4", 1, pos)[0]), buf[pos + 4]
        step = float(np.frombuffer(buf, "<f4", 1, pos + 5)[0])
        if not np.isfinite(step):
            raise ValueError("expression code has a non-finite operator-basis step")
        if operator_basis is not None and operator_basis.id == bid and operator_basis.num_components == p:
            q = np.frombuffer(buf, np.int8, p, pos + OPERATOR_SECTION_BYTES).astype(np.float64)
            mesh += operator_basis.expand(q * np.float32(step))
    out[:lmk.NUM_MESH] = mesh
    return out, ratios


WIRE = ("none", "dense", "compact")  # what as_received emulates: nothing, or the FaceControl message with that codec


def as_received(control, wire: str, operator_basis=None):
    """A FaceControl as a render node receives it from the tracker node with its defaults (no absolute
    landmarks: send_landmarks false) and the expression sent `wire` ('dense': float32, no eyelid ratios;
    'compact': this codec, with `operator_basis` when given, as a receiver that holds it decodes it), without
    ROS; 'none' returns it unchanged. For evaluations (gaussian-head eval
    --control-codec). ValueError for another `wire`."""
    if wire not in WIRE:
        raise ValueError(f"unknown control wire format {wire!r}; one of {', '.join(WIRE)}")
    if wire == "none":
        return control
    out = dataclasses.replace(control, landmarks=np.zeros((0, 3), np.float32),
                              eyelid_ratios=np.zeros(0, np.float32))
    if wire == "compact" and np.size(control.expression):
        code = encode(control.expression, control.eyelid_ratios, operator_basis)
        out.expression, out.eyelid_ratios = decode(code, operator_basis)
    return out
