"""Compact expression on the wire: 419 bytes (CODEC_LAPLACIAN_V5) instead of 478 x 3 float32 (5.7 KB).

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
  A metric Laplacian (edge weights 1/length^2, area mass, on a tracked neutral face) was worse: render PSNR
  on sadtalker's frames 30-75 mean 32.7 against 38.4 dB.
- upper lids: one more column per upper-lid vertex (the 14 of landmarks.EYELID_PAIRS_*): a closing lid moves
  those vertices ~9 mm while the lid crease above stays put, a step no smooth mode follows; fitted with the
  modes, they take that step and the modes no longer ring around the eyes (sadtalker frame 34: crease
  vertices 27/28/257/258 were 2.4 mm off, worst frame 34.6 -> 36.0 dB).
- face oval (since CODEC_LAPLACIAN_V3): in x and y one more column per point of the template mesh's outer
  boundary (the face oval) and its neighbours (`edge_points`, 72 points). MediaPipe's oval points slide along
  the silhouette, and in a render they carry the hair and the face's outline by the falloff: the worst
  frames' error sat there. Measured on sadtalker's hard frames (30-75, fixed part only, unquantised): exact x/y
  on the oval and its neighbours alone 38.4 -> 40.8 dB mean, exact z everywhere only 38.8, exact brows 39.1,
  lips 38.6, eyes 39.0; the 72 columns 41.8 dB (36 oval points alone 40.2; 36 smooth modes of the strip
  41.1). z has no such columns (the head seen turned makes z matter too: dropping z from modes 24-127 cost
  3 dB on sadtalker's turned frames).
- brows (since CODEC_LAPLACIAN_V4, session 9): in x and y one more column per brow point (landmarks.BROW_R/L,
  20 points). sadtalker's new-expression frame 37 (the first frames of an expression the operator basis has
  not seen yet) was 39.85 dB with V3, and V3's fit itself capped it at 40.41 dB even unquantised (so more bits,
  e.g. modes 64-127 at 5 bits for +24 B, could not reach 40.5 there); exact points, unquantised, on that frame:
  brows and their neighbours +1.4 dB, eyes +0.9, oval +0.7, lips +0.7; brow columns in x, y, z +1.9 dB
  (x, y +1.5) against +0.9 for 16 more modes (48 coefficients). A point column fitted jointly with the modes
  lets them go anywhere at its point and takes whole brow moves (coefficients up to 7.5 mm, which 4 bits
  could not carry: sadtalker worst frame 36.9 dB); while the mode blocks are fitted the brow columns therefore
  cost Layout.brow_ridge x their squared coefficient (ridge regression, encoder only), so that they take what the
  modes leave at the brows (ridge 0/0.01/0.03/0.05/0.1/0.3/1/infinite: sadtalker worst frame 36.9/40.2/41.6/
  41.6/41.5/41.0/40.8/40.2 dB, brows x, y, z at 4 bits, the rest as V3). Paid for in part by modes 8-23 at 7
  bits instead of 8 (+16 B in all). Tried (sadtalker worst frame): brows x, y, z at 4 bits, 435 B, 41.5 dB;
  with the lid columns at 4 bits too, 423 B, 41.7 dB (x, y only 413 B, 41.4) but the upper lids' error x2.5;
  the oval columns at 4 bits 38.5 dB.
- the brows' rest height (since CODEC_LAPLACIAN_V5, session 17): every rest takes the brows to one height
  (expression.REST_BROW_HEIGHT_M, 80f0562), so every frame's expression holds the operator's brow height above
  it, the same shift of brows, forehead and the strip down to the lids frame after frame (lp_d18 2.2 mm down,
  tpsmm 6 mm up), which V4 coded with the modes and the brow columns, and its oval columns took up what they
  left in quantisation (lp_d18's 60 test frames: oval x/y 0.094 -> 0.133 mm with 80f0562). V5 codes it first,
  as one signed level (Layout.rest_bits 6, fixed step rest_step 0.3 mm: +-9.3 mm) on one of two columns (y) of the
  template's rest shift of the brows 1 down (expression.template_brow_shift: the rest's harmonic shift on the
  template's connectivity, no face data): level > 0 that of low brows lifted at rest (with the row below
  them), < 0 of high brows lowered. The level is the column's least-squares coefficient fitted with every
  column that carries y (the brow columns with the ridge), chosen by where the brows' mean y lies; the blocks
  then code what it leaves (closed loop). It costs no byte: V5 packs all levels into one bitstream (V4 padded
  each block to a byte, 6 bits of them in the lid block). With it the brow columns' ridge while the modes are
  fitted is 0.2 (V4: 0.1; on V5 ridge 0.1/0.2/0.3/1 gave worst frames lp_d0/lp_d18/sadtalker/tpsmm
  50.0/43.1/41.1/48.2, 50.3/43.2/40.9/48.4, 49.2/43.1/40.5/48.3, 50.7/42.3/40.5/48.0 dB and lp_d18's 60 test
  frames an oval x/y RMS of 0.080/0.070/0.068/0.064 mm). Tried: one column (high brows') for both signs
  (lp_d18, whose low brows the rest lifts, 0.199 mm landmark RMS against 0.194 with two), the level from the
  brows' mean y alone instead of the joint fit (same means, lp_d18's worst frame 41.9 against 43.1 dB), one
  level per brow (no better), the template's "below the eyes" left free (a little worse on lp_d0's oval).
  bench_control_codec (below), V4 (0f29886) -> V5, the same day and load: landmark RMS lp_d0/lp_d18/sadtalker/
  tpsmm 0.200/0.201/0.252/0.258 -> 0.169/0.194/0.247/0.206 mm, mean rendered PSNR compact vs dense
  51.0/53.3/45.6/48.6 -> 56.9/55.9/46.7/54.0 dB, worst frame 47.2/41.8/40.6/45.1 -> 50.3/43.2/40.9/48.4 dB
  (b9026fb, V4 before the one-height rest: 0.188/0.194/0.249/0.246 mm, 52.2/54.9/46.0/49.8 and
  47.3/43.0/40.6/45.6 dB), the same 575-578 B.
- coefficients: per channel the least-squares coefficients on the columns that channel carries, quantised
  in blocks with one bfloat16 step each (LAYOUTS): modes 0-7 7 bits, 8-23 7 bits (V3: 8), 24-63 6 bits (x, y)
  and 5 bits (z), 64-127 4 bits, V4's and V5's brow columns 4 bits (x, y), lid columns 5 bits, oval columns
  5 bits (x, y), packed as two's complement fields little-endian bit order. Each block's step is the one of
  STEP_FRACTIONS x max |c| / qmax with the smallest squared error (clipping the few largest): max-scaling alone made
  quantisation the larger error once the oval columns were in (sadtalker worst frame 38.8 -> 39.5 dB at the same bytes).
  The encoder quantises in closed loop (session 8, same decoder): block after block in code order, each fitted with the
  blocks still to come to what the quantised ones left, so that the later blocks take up the earlier ones' quantisation
  error (the lid and oval columns, last, exactly at their points). Quantising each block of one joint fit on its own had
  left 0.7 dB of sadtalker's new-expression frame 36 to quantisation (39.97 dB; unquantised 40.69), most of it the 4-bit
  modes 64-127; closed loop 40.34 dB, mean +1.0-1.6 dB on every clip. Not better: a later step choice that looks at what
  the remaining blocks can still fit, more step candidates, refinement passes over the blocks (all within 0.1 dB),
  weighting brows, lips or eyes in the fit (worse).
- eyelid ratios (FaceControl.eyelid_ratios: operator lid gap / neutral gap per pair, what the driver
  retargets the lids by; absolute landmarks are off by default, so they travel here): uint8 in 0.01 steps.
- irises (landmarks 468-477, no mesh edges; the renderer never moves them, gaze has its own field): the
  mean offset of each eye's 5 iris points, 6 bits (the points of an eye decode to that mean; 0.04-0.14 mm
  more landmark RMS over 478 points than coding each; V2 spent 34 bytes on them, V3 7).

Measured (scripts/bench_control_codec.py --max-frames 1000 --operator-basis causal --switch-delay-s 0.1,
every ../shared clip whole, old and new in the same run): see the README's compact control stream section and
docs/DEPLOYMENT.md for the figures; worst-frame render PSNR compact vs dense lp_d0/lp_d18/sadtalker/tpsmm was
46.3/41.7/37.4/42.4 dB with V2 (sadtalker 33 frames < 40 dB), 49.3/44.9/39.9/47.2 with V3 at session 9's
start, V4 48.8/44.6/41.4/46.3 (session 9; 47.2/41.8/40.6/45.1 at session 17's start, after 80f0562), V5
50.3/43.2/40.9/48.4.
The operator basis (core/operator_basis.py): a basis of the operator learned during the session and sent
once, latched: 16 principal components of this code's residual; each code then carries 16 more int8
(FLAG_OPERATOR_BASIS, +23 bytes). A causal operator basis cannot code an expression before it has seen it
(even learned on the very frame a new expression starts, with one frame's delay, sadtalker's frames 36-39
stayed at 37.3 dB with V2): the fixed part has to be good enough on its own for the first frames of a new
expression, which the oval columns and the quantiser made it.

Code layout (CODEC_LAPLACIAN_V5, _V4 and _V3, little-endian), all of it in FaceControl.expression_code:
  uint8 flags (1: eyelid ratios present, 2: operator-basis section, 4: 478 points (irises) else 468),
  bfloat16 step[8] (V3: 7; one per block of _code_bands, in that order: the mode bands, V4's and V5's brows,
  the lids, the oval), the blocks' levels (each block row-major [row, channel] over its channels, `bits` bits
  per value; V3, V4: each block padded to a whole byte; V5: first the 6-bit brow rest level, then every block,
  one bitstream padded to a whole byte at its end), uint8 eyelid ratios [14]
  (x 0.01) when flagged, then when flagged 4: bfloat16 iris step and 6-bit mean iris offsets [2, 3] (right
  eye, left eye); then when flagged 2: uint32 basis id, uint8 P, bfloat16 step, int8 coefficients [P] of the
  residual (expression minus the decoded fixed part, mesh points) on that basis.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.control import NUM_LID_PAIRS
from gaussian_head_ros.core.expression import template_brow_shift

CODEC_DENSE = 0  # FaceControl.expression as float32 (no code)
CODEC_LAPLACIAN_V1 = 1  # retired (builds of 2026-11-29 before the lid ratios): refused with a clear error
CODEC_LAPLACIAN_V2 = 2  # retired (builds of session 5, before the face-oval columns): refused with a clear error
CODEC_LAPLACIAN_V3 = 3  # sessions 6-8: still decoded (operator hosts not yet upgraded); sent with compact_v3
CODEC_LAPLACIAN_V4 = 4  # sessions 9-16: V3 + the brow columns; still decoded, sent with compact_v4
CODEC_LAPLACIAN_V5 = 5  # session 17: V4 + the brows' rest height (this module's default; same size as V4)
CODEC_COMPACT = CODEC_LAPLACIAN_V5  # what the tracker sends by default
COMPACT_CODECS = (CODEC_LAPLACIAN_V3, CODEC_LAPLACIAN_V4, CODEC_LAPLACIAN_V5)  # what this build decodes (and can send)
CODECS = {"dense": CODEC_DENSE, "compact": CODEC_COMPACT, "compact_v4": CODEC_LAPLACIAN_V4,
          "compact_v3": CODEC_LAPLACIAN_V3}  # tracker names

NUM_MODES = 128  # K Laplacian modes
XYZ, XY, Z = (0, 1, 2), (0, 1), (2,)
BROWS = tuple(sorted(lmk.BROW_R + lmk.BROW_L))  # [20] the brow points, one column each in x and y (V4)


@dataclasses.dataclass(frozen=True)
class Layout:
    """The quantised blocks of one compact code: `bands` (first mode, end, bits, channels) of the modes, the
    bits of the upper-lid columns (x, y, z), of the face-oval columns (x, y) and of the brow columns
    (`brow_channels`; none: brow_bits 0); the bits and fixed step (metres) of the brows' rest level (none:
    rest_bits 0); `packed`: every level in one bitstream, padded to a byte once at its end (else each block
    is padded on its own)."""

    bands: tuple
    lid_bits: int
    edge_bits: int
    brow_bits: int = 0
    brow_channels: tuple = ()
    rest_bits: int = 0
    rest_step: float = 0.0
    packed: bool = False
    brow_ridge: float = 0.0  # encoder only: the brow columns' penalty while the modes are fitted (docstring)


LAYOUTS = {
    CODEC_LAPLACIAN_V3: Layout(((0, 8, 7, XYZ), (8, 24, 8, XYZ), (24, 64, 6, XY), (24, 64, 5, Z), (64, 128, 4, XYZ)),
                               lid_bits=5, edge_bits=5),
    CODEC_LAPLACIAN_V4: Layout(((0, 8, 7, XYZ), (8, 24, 7, XYZ), (24, 64, 6, XY), (24, 64, 5, Z), (64, 128, 4, XYZ)),
                               lid_bits=5, edge_bits=5, brow_bits=4, brow_channels=XY, brow_ridge=0.1),
    CODEC_LAPLACIAN_V5: Layout(((0, 8, 7, XYZ), (8, 24, 7, XYZ), (24, 64, 6, XY), (24, 64, 5, Z), (64, 128, 4, XYZ)),
                               lid_bits=5, edge_bits=5, brow_bits=4, brow_channels=XY, rest_bits=6, rest_step=3e-4,
                               packed=True, brow_ridge=0.2),
}
EDGE_RINGS = 2  # the face oval (the template mesh's outer boundary) and its neighbours get those columns
OPENING_MASS = 2.0  # mass of the lip and eye-contour vertices and their neighbours (see the docstring)
SIGN_FRACTION = 0.1  # an eigenvector's sign: its first component above this fraction of its largest is > 0
UPPER_LIDS = tuple(p[0] for p in lmk.EYELID_PAIRS_R + lmk.EYELID_PAIRS_L)  # [14] one basis column each
RATIO_STEP = 0.01  # eyelid ratios as uint8 multiples of this (0..2.55)
FLAG_RATIOS = 1  # header flag: the 14 eyelid ratios follow the coefficients
FLAG_OPERATOR_BASIS = 2  # header flag: an operator-basis section ends the code (core/operator_basis.py)
FLAG_IRISES = 4  # header flag: 478 points, each eye's mean iris offset follows (IRIS_BITS), else 468
IRIS_BITS = 6  # the two mean iris offsets [2, 3]
IRIS_EYES = ((lmk.IRIS_CENTER_R, *lmk.IRIS_R), (lmk.IRIS_CENTER_L, *lmk.IRIS_L))  # 5 iris points per eye (468-477)
OPERATOR_BITS = 8  # the operator-basis coefficients
OPERATOR_SECTION_BYTES = 7  # uint32 basis id, uint8 P, bfloat16 step; then P int8 coefficients


@functools.lru_cache(maxsize=1)
def _mesh() -> tuple[np.ndarray, np.ndarray]:
    """(adjacency [V, V] float64 of the template's edges, [E] int64 the EDGE_RINGS rings of the face oval)."""
    from gaussian_head_ros.core.reconstruct.template import boundary_loops, template_faces

    v = lmk.NUM_MESH
    f = np.asarray(template_faces(), np.int64)  # [F, 3]
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [0, 2]]])  # each edge once or twice
    adj = np.zeros((v, v))
    adj[e[:, 0], e[:, 1]] = 1.0
    adj[e[:, 1], e[:, 0]] = 1.0
    ring = np.zeros(v, bool)
    ring[[lp for lp in boundary_loops(f) if lmk.OVAL_ANCHORS[0] in lp][0]] = True  # the face oval
    for _ in range(EDGE_RINGS - 1):
        ring |= adj[ring].sum(0) > 0
    adj.setflags(write=False)
    return adj, np.flatnonzero(ring)


def edge_points() -> np.ndarray:
    """[E] int64, ascending: the face-oval points with one column each in x and y (the template mesh's outer
    boundary loop and its neighbours, EDGE_RINGS rings; 72 points)."""
    return _mesh()[1]


def _columns(points) -> np.ndarray:
    out = np.zeros((lmk.NUM_MESH, len(points)))
    out[list(points), np.arange(len(points))] = 1.0
    return out


@functools.lru_cache(maxsize=1)
def _modes() -> np.ndarray:
    """[V, K] float64 read-only: the K generalized Laplacian eigenvectors (the module docstring), signs fixed."""
    v = lmk.NUM_MESH
    adj, _ = _mesh()
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
    u.setflags(write=False)
    return u


def _check_codec(codec: int) -> int:
    if codec not in COMPACT_CODECS:
        raise ValueError(f"unknown compact expression codec {codec} (this build knows "
                         + ", ".join(f"{c} laplacian_v{c}" for c in COMPACT_CODECS) + ")")
    return int(codec)


@functools.lru_cache(maxsize=len(COMPACT_CODECS))
def _basis_and_projectors(codec: int = CODEC_COMPACT) -> tuple[np.ndarray, tuple[tuple[np.ndarray, ...], ...]]:
    """(U [V, R]: the modes, the lid columns, the oval columns, for V4 and V5 the brow columns and for V5 the
    two brow-rest columns (y), R = K + 14 + E (+ 20 (+ 2)); for each block s of _code_bands(codec) and each
    channel x, y, z the [R, V] least-squares projector onto the columns of blocks s, s + 1, ... that carry that
    channel, zero rows for the others: what `_fixed_coefficients` fits block s from)."""
    layout = LAYOUTS[codec]
    groups = [_modes(), _columns(UPPER_LIDS), _columns(edge_points())]
    if layout.brow_bits:
        groups.append(_columns(BROWS))
    if layout.rest_bits:  # y of the rest shifts of low brows lifted, high brows lowered (a brow 1 down each)
        groups.append(np.stack([template_brow_shift(lifted)[:, 1] for lifted in (True, False)], 1))
    u = np.concatenate(groups, 1)
    bands = _code_bands(codec)
    stages = []
    for s in range(len(bands)):
        per_channel = []
        for ch in range(3):
            p = np.zeros((u.shape[1], lmk.NUM_MESH))
            held = [np.arange(a, b) for a, b, _, chs in bands[s:] if ch in chs]
            if held:
                rows = np.concatenate(held)
                uc = u[:, rows]
                ridge = np.zeros(len(rows))  # the brow columns, while the modes are still to fit, cost brow_ridge
                if bands[s][0] < NUM_MODES:
                    ridge[np.isin(rows, _brow_rows(codec))] = layout.brow_ridge
                # the smallest Euclidean landmark error (+ the ridge on the brow columns)
                p[rows] = np.linalg.solve(uc.T @ uc + np.diag(ridge), uc.T)
            p.setflags(write=False)
            per_channel.append(p)
        stages.append(tuple(per_channel))
    u.setflags(write=False)
    return u, tuple(stages)


def basis(codec: int = CODEC_COMPACT) -> np.ndarray:
    """[V=468, K + 14 + E (+ 20 for V4, + 22 for V5)] float64: the expression basis of compact code `codec`
    (generalized eigenvectors, one column per upper-lid vertex, one per `edge_points`, for V4 and V5 one per
    brow point, for V5 the brow-rest columns of low and high brows, y only; see the module docstring). Channel ch
    uses the rows of the blocks whose channels hold it (_code_bands). ValueError for a codec this build does not
    know."""
    return _basis_and_projectors(_check_codec(codec))[0]


@functools.lru_cache(maxsize=len(COMPACT_CODECS))
def _rest_projectors(codec: int) -> np.ndarray:
    """[2, V] for V5: the brow-rest coefficient of the y channel when the rest column of low brows (row 0) or of
    high brows (row 1) is fitted jointly with every column of the code's blocks that carries y (least squares,
    the brow columns with the layout's brow_ridge, as while the modes are fitted)."""
    u = basis(codec)
    rest = u.shape[1] - 2 + np.arange(2)
    rows = np.concatenate([np.arange(a, b) for a, b, _, chs in _code_bands(codec) if 1 in chs])
    ridge = np.where(np.isin(rows, _brow_rows(codec)), LAYOUTS[codec].brow_ridge, 0.0)
    out = []
    for r in rest:
        uc = u[:, np.concatenate([[r], rows])]
        out.append(np.linalg.solve(uc.T @ uc + np.diag(np.concatenate([[0.0], ridge])), uc.T)[0])
    out = np.stack(out)
    out.setflags(write=False)
    return out


def _rest_level(x: np.ndarray, codec: int) -> tuple[int, int]:
    """[V, 3] mesh expression -> (the signed level of V5's brow-rest coefficient, the basis row it multiplies):
    the column of low brows when the brows' mean y in x is down (> 0: the rest lifted them), else of high
    brows, fitted with the other columns (`_rest_projectors`), in steps of Layout.rest_step clipped to
    rest_bits. The decoder takes the row from the level's sign (> 0: low brows, < 0: high brows), so a level is
    sent only on the column it was fitted on: when that column's fit has the other column's sign, the other
    column is fitted instead, and when neither fit has its own column's sign the level is 0 (the blocks code it
    all). Before session 18 such a level was sent on the other column (a coefficient of one column multiplying
    the other: a worse code, never a misread); on the ../shared clips' 663 tracked frames neither case happens."""
    layout, u = LAYOUTS[codec], basis(codec)
    qmax = 2 ** (layout.rest_bits - 1) - 1
    levels = np.clip(np.rint(_rest_projectors(codec) @ x[:, 1] / layout.rest_step), -qmax, qmax).astype(int)  # [2]
    which = 0 if float(np.mean(x[list(BROWS), 1])) > 0.0 else 1
    level = int(levels[which])
    if level and (level > 0) != (which == 0):  # its sign names the other column: that column's own fit, if its sign
        level = int(levels[1 - which]) if (levels[1 - which] > 0) == (which == 1) else 0  # names it, else nothing
    return level, u.shape[1] - (2 if level > 0 else 1)


def _code_bands(codec: int = CODEC_COMPACT) -> tuple:
    """(first row, end row, bits, channels) of each quantised block of the coefficients of `codec`, in code
    order: the mode bands, (V4, V5: the brow columns over brow_channels,) the lid columns over x, y, z, the oval
    columns over x, y. V5's brow-rest level (fixed step) comes before them and is no block."""
    layout = LAYOUTS[codec]
    k, lids, e = NUM_MODES, len(UPPER_LIDS), len(edge_points())
    b = _brow_rows(codec)
    brows = ((int(b[0]), int(b[-1]) + 1, layout.brow_bits, layout.brow_channels),) if b.size else ()
    return (tuple(layout.bands) + brows
            + ((k, k + lids, layout.lid_bits, XYZ), (k + lids, k + lids + e, layout.edge_bits, XY)))


def _brow_rows(codec: int) -> np.ndarray:
    """[20] int64 for V4 and V5, [0] for V3: the basis rows of `codec`'s brow columns (one per BROWS point), which
    follow the modes', the lids' and the oval's (`_basis_and_projectors`' column order)."""
    if not LAYOUTS[codec].brow_bits:
        return np.zeros(0, np.int64)
    b0 = NUM_MODES + len(UPPER_LIDS) + len(edge_points())
    return np.arange(b0, b0 + len(BROWS))


def code_size(eyelid_ratios: bool = True, irises: bool = True, codec: int = CODEC_COMPACT) -> int:
    """Bytes of a code of `codec` without its operator-basis section, with or without the eyelid ratios and
    the irises (an expression of 478 or 468 points)."""
    bands = _code_bands(_check_codec(codec))
    layout = LAYOUTS[codec]
    if layout.packed:
        coeff = -(-(layout.rest_bits + sum((b - a) * len(chs) * bits for a, b, bits, chs in bands)) // 8)
    else:
        coeff = sum(-(-(b - a) * len(chs) * bits // 8) for a, b, bits, chs in bands)
    return (1 + 2 * len(bands) + coeff + (NUM_LID_PAIRS if eyelid_ratios else 0)
            + (2 + -(-2 * 3 * IRIS_BITS // 8) if irises else 0))


STEP_FRACTIONS = (1.0, 0.85, 0.7, 0.55, 0.4, 0.3)  # of max |x| / qmax: the steps _quantise tries


def _quantise(x: np.ndarray, bits: int) -> tuple[float, np.ndarray]:
    """Values -> (step, int8 levels in +-(2^(bits-1) - 1)): of the steps STEP_FRACTIONS x max |x| / qmax
    (each as its bfloat16 value, what the decoder reads) the one with the smallest squared error (levels
    clipped to +-qmax; the first of equal ones): a block's largest value no longer sets a step too coarse for
    all the others (1 for all-zero x). The candidates are tried at once (one array op per step, not a loop)."""
    qmax = 2 ** (bits - 1) - 1
    top = float(np.abs(x).max()) / qmax if x.size else 0.0
    if not top > 0:
        return 1.0, np.zeros(x.size, np.int8)
    steps = _from_bf16(_bf16(top * np.asarray(STEP_FRACTIONS)), 0, len(STEP_FRACTIONS))  # [S]
    col = steps.reshape(-1, *([1] * x.ndim))
    q = np.clip(np.rint(x[None] / col), -qmax, qmax)  # [S, *x.shape]
    err = ((q * col - x[None]) ** 2).reshape(len(steps), -1).sum(1)
    best = int(np.argmin(err))
    return float(steps[best]), q[best].astype(np.int8).ravel()


def _bf16(x) -> bytes:
    """Positive finite floats -> little-endian bfloat16 (the upper 16 bits of the float32, rounded to nearest):
    float32's range with a 0.4 % step; the encoder uses exactly the rounded value (_quantise)."""
    b = np.asarray(x, "<f4").reshape(-1).view("<u4").astype(np.uint64)
    return ((b + 0x8000) >> 16).astype("<u2").tobytes()


def _from_bf16(buf: bytes, pos: int, count: int) -> np.ndarray:
    """`count` little-endian bfloat16 at buf[pos:] -> float64."""
    return (np.frombuffer(buf, "<u2", count, pos).astype("<u4") << 16).view("<f4").astype(np.float64)


def _pack(q: np.ndarray, bits: int) -> bytes:
    """int8 levels -> `bits`-bit two's complement fields, little-endian bit order (first value in the lowest
    bits of the first byte; for 4 bits: low nibble first), padded with zero bits to a whole byte."""
    if bits == 8:
        return q.astype(np.int8).tobytes()
    return np.packbits(_bits(q, bits), bitorder="little").tobytes()


def _bits(q: np.ndarray, bits: int) -> np.ndarray:
    """int levels -> [count x bits] uint8 0/1: each as a `bits`-bit two's complement field, lowest bit first."""
    fields = (np.asarray(q).astype(np.int64).ravel() & ((1 << bits) - 1))[:, None] >> np.arange(bits)
    return (fields & 1).astype(np.uint8).ravel()


def _pack_all(levels: list, packed: bool) -> list:
    """[(int levels, bits)] in code order -> the bytes of each (each padded to a byte), or with `packed` one
    bytes of all of them in one bitstream (_pack's fields, padded once at its end)."""
    if not packed:
        return [_pack(q, bits) for q, bits in levels]
    return [np.packbits(np.concatenate([_bits(q, bits) for q, bits in levels]), bitorder="little").tobytes()]


def _unpack(buf: bytes, pos: int, count: int, bits: int) -> np.ndarray:
    """Inverse of _pack: `count` signed `bits`-bit fields from buf[pos:] -> float64 levels."""
    if bits == 8:
        return np.frombuffer(buf, np.int8, count, pos).astype(np.float64)
    return _from_bits(np.unpackbits(np.frombuffer(buf, np.uint8, -(-count * bits // 8), pos), bitorder="little"),
                      count, bits)


def _from_bits(b: np.ndarray, count: int, bits: int) -> np.ndarray:
    """The first `count` `bits`-bit two's complement fields of a 0/1 array, lowest bit first -> float64 levels."""
    b = b[:count * bits].reshape(count, bits).astype(np.int64)
    v = (b << np.arange(bits)).sum(1)
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v).astype(np.float64)


_last_fixed: tuple = (None, None)  # ((codec, the last expression's bytes), its _fixed_coefficients result)


def _fixed_coefficients(x: np.ndarray,
                        codec: int = CODEC_COMPACT) -> tuple[tuple[float, ...], tuple[bytes, ...], np.ndarray]:
    """[V, 3] mesh expression -> (the blocks' steps, their packed levels, [R, 3] dequantised
    coefficients, read-only; zero where a channel does not carry a row). Closed loop: the blocks are quantised
    one after the other in code order, each fitted (least squares) together with the blocks still to come to
    what the blocks already quantised left, so that later blocks take up the earlier ones' quantisation error
    (the lid and oval columns, last, take it up at their points exactly). The decoder is the same as for
    fitting all blocks at once and quantising each on its own (the code before session 8, same layout), which
    left sadtalker's new-expression frame 36 at 39.97 dB; closed loop 40.34 (see the module docstring).
    The tracker asks twice per frame for the same expression (operator_basis.BasisLearner's `residual`, then
    `encode` for the message): the last result is kept and returned again for identical input and codec."""
    global _last_fixed
    x = np.ascontiguousarray(x, np.float64)
    key = (codec, x.tobytes())
    last_key, last = _last_fixed
    if key == last_key:
        return last
    u, stages = _basis_and_projectors(codec)
    layout = LAYOUTS[codec]
    left = x.copy()  # what the blocks quantised so far leave
    c_hat = np.zeros((u.shape[1], 3))
    steps, levels = [], []
    if layout.rest_bits:  # V5: the brows' height above the common rest, first (its fixed step: no block)
        level, row = _rest_level(x, codec)
        c_hat[row, 1] = level * layout.rest_step
        left[:, 1] -= u[:, row] * c_hat[row, 1]
        levels.append((np.array([level]), layout.rest_bits))
    for (a, b, bits, chs), projectors in zip(_code_bands(codec), stages):
        chs = list(chs)
        c = np.stack([projectors[ch][a:b] @ left[:, ch] for ch in chs], 1)  # [b - a, len(chs)]
        step, q = _quantise(c, bits)
        steps.append(step)
        c_hat[a:b, chs] = q.reshape(b - a, len(chs)).astype(np.float64) * np.float32(step)
        left[:, chs] -= u[:, a:b] @ c_hat[a:b, chs]
        levels.append((q, bits))
    c_hat.setflags(write=False)
    result = (tuple(steps), tuple(_pack_all(levels, layout.packed)), c_hat)  # immutable: callers share it
    _last_fixed = (key, result)  # one assignment: a reader on another thread sees the old or the new pair
    return result


def _expand(c: np.ndarray, codec: int = CODEC_COMPACT) -> np.ndarray:
    """[R, 3] coefficients of `codec` -> [V, 3] float64 mesh expression."""
    return _basis_and_projectors(codec)[0] @ c


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


def residual(expression: np.ndarray, eyelid_ratios: np.ndarray | None = None,
             codec: int = CODEC_COMPACT) -> np.ndarray:
    """[L, 3] expression (metres) -> [V=468, 3] float64: what the fixed code of `codec` misses on the mesh
    points (the expression minus the decoded code without an operator basis); what core/operator_basis.py
    learns from."""
    x, _ = _check(expression, eyelid_ratios)
    c_hat = _fixed_coefficients(x[:lmk.NUM_MESH], _check_codec(codec))[2]
    return x[:lmk.NUM_MESH] - _expand(c_hat, codec)


def encode(expression: np.ndarray, eyelid_ratios: np.ndarray | None = None, operator_basis=None,
           codec: int = CODEC_COMPACT) -> bytes:
    """[L, 3] float (L = 468 or 478), metres, and optionally [14] eyelid ratios (FaceControl.eyelid_ratios,
    clipped to 0..2.55) -> code bytes of `codec` (one of COMPACT_CODECS; CODEC_LAPLACIAN_V4 / _V3 for a
    receiver not yet upgraded, which refuses V5 / V4). The iris points (L = 478) are not coded: the code says L and decodes them as zero
    offsets. With an `operator_basis` (core.operator_basis.OperatorBasis) the code also carries its id and the
    int8 coefficients of the residual on it (FLAG_OPERATOR_BASIS, OPERATOR_SECTION_BYTES + P bytes).
    ValueError for another shape, non-finite values or an unknown codec."""
    x, r = _check(expression, eyelid_ratios)
    steps, fixed_parts, c_hat = _fixed_coefficients(x[:lmk.NUM_MESH], _check_codec(codec))
    parts = list(fixed_parts)
    if r is not None:
        parts.append(np.clip(np.rint(r / RATIO_STEP), 0, 255).astype(np.uint8).tobytes())
    flags = (FLAG_RATIOS if r is not None else 0) | (FLAG_OPERATOR_BASIS if operator_basis is not None else 0)
    if x.shape[0] == lmk.NUM_LANDMARKS:  # each eye's 5 iris points by their mean offset
        flags |= FLAG_IRISES
        step, q = _quantise(np.stack([x[list(eye)].mean(0) for eye in IRIS_EYES]), IRIS_BITS)
        parts.append(_bf16(step) + _pack(q, IRIS_BITS))
    out = np.uint8(flags).tobytes() + _bf16(steps) + b"".join(parts)
    if operator_basis is not None:
        fixed = _expand(c_hat, codec)
        step, q = _quantise(operator_basis.coefficients(x[:lmk.NUM_MESH] - fixed), OPERATOR_BITS)
        out += (np.uint32(operator_basis.id).astype("<u4").tobytes() + np.uint8(q.size).tobytes()
                + _bf16(step) + q.tobytes())
    return out


def operator_basis_id(code: bytes | memoryview, codec: int = CODEC_COMPACT) -> int:
    """The operator basis id a code of `codec` refers to (0: none; the code is not validated beyond its
    header)."""
    buf = bytes(code)
    if len(buf) < 1 or not buf[0] & FLAG_OPERATOR_BASIS:
        return 0
    pos = code_size(bool(buf[0] & FLAG_RATIOS), bool(buf[0] & FLAG_IRISES), codec)
    return int(np.frombuffer(buf, "<u4", 1, pos)[0]) if len(buf) >= pos + OPERATOR_SECTION_BYTES else 0


def decode(code: bytes | memoryview, operator_basis=None,
           codec: int = CODEC_COMPACT) -> tuple[np.ndarray, np.ndarray]:
    """Code bytes of `codec` (FaceControl.expression_codec, one of COMPACT_CODECS) -> ([L, 3] float32
    expression, metres, the iris points zero; [14] float32 eyelid ratios, or [0] when the code carries none). A code
    with operator-basis coefficients adds them through `operator_basis` (core.operator_basis.OperatorBasis) when its id
    is the code's; otherwise (None, another id, another number of components) the fixed part alone is decoded (less
    exact, never wrong). ValueError when the code is malformed (wrong length, point count, non-finite steps) or the
    codec unknown."""
    _check_codec(codec)
    buf = bytes(code)
    if len(buf) < 1:
        raise ValueError("expression code is empty")
    flags = buf[0]
    if flags & ~(FLAG_RATIOS | FLAG_OPERATOR_BASIS | FLAG_IRISES):
        raise ValueError(f"expression code has unknown header flags {flags:#04x}")
    n = lmk.NUM_LANDMARKS if flags & FLAG_IRISES else lmk.NUM_MESH
    has_ratios = bool(flags & FLAG_RATIOS)
    size = code_size(has_ratios, n == lmk.NUM_LANDMARKS, codec)
    if flags & FLAG_OPERATOR_BASIS:
        if len(buf) < size + OPERATOR_SECTION_BYTES:
            raise ValueError(f"expression code has {len(buf)} bytes, too short for its operator-basis section")
        size += OPERATOR_SECTION_BYTES + buf[size + 4]
    if len(buf) != size:
        raise ValueError(f"expression code has {len(buf)} bytes, expected {size}")
    bands = _code_bands(codec)
    steps = _from_bf16(buf, 1, len(bands))
    if not np.all(np.isfinite(steps)):
        raise ValueError("expression code has non-finite quantisation steps")
    layout = LAYOUTS[codec]
    c = np.zeros((basis(codec).shape[1], 3))
    pos = 1 + 2 * len(bands)
    if layout.packed:  # one bitstream: V5's brow-rest level, then the blocks
        end = code_size(False, False, codec)
        stream, at = np.unpackbits(np.frombuffer(buf, np.uint8, end - pos, pos), bitorder="little"), 0
        level = int(_from_bits(stream, 1, layout.rest_bits)[0])
        c[c.shape[0] - (2 if level > 0 else 1), 1] = level * layout.rest_step
        at += layout.rest_bits
        for (a, b, bits, chs), step in zip(bands, steps):
            count = (b - a) * len(chs)
            c[a:b, list(chs)] = _from_bits(stream[at:], count, bits).reshape(b - a, len(chs)) * step
            at += count * bits
        pos = end
    else:
        for (a, b, bits, chs), step in zip(bands, steps):
            count = (b - a) * len(chs)
            c[a:b, list(chs)] = _unpack(buf, pos, count, bits).reshape(b - a, len(chs)) * step
            pos += -(-count * bits // 8)
    ratios = np.zeros(0, np.float32)
    if has_ratios:
        ratios = np.frombuffer(buf, np.uint8, NUM_LID_PAIRS, pos).astype(np.float32) * np.float32(RATIO_STEP)
        pos += NUM_LID_PAIRS
    out = np.zeros((n, 3), np.float32)
    mesh = _expand(c, codec)
    if n == lmk.NUM_LANDMARKS:
        step = float(_from_bf16(buf, pos, 1)[0])
        if not np.isfinite(step):
            raise ValueError("expression code has a non-finite iris step")
        mean = _unpack(buf, pos + 2, 6, IRIS_BITS).reshape(2, 3) * step
        for eye, m in zip(IRIS_EYES, mean):
            out[list(eye)] = m
        pos += 2 + -(-6 * IRIS_BITS // 8)
    if flags & FLAG_OPERATOR_BASIS:
        bid, p = int(np.frombuffer(buf, "<u4", 1, pos)[0]), buf[pos + 4]
        step = float(_from_bf16(buf, pos + 5, 1)[0])
        if not np.isfinite(step):
            raise ValueError("expression code has a non-finite operator-basis step")
        if operator_basis is not None and operator_basis.id == bid and operator_basis.num_components == p:
            q = np.frombuffer(buf, np.int8, p, pos + OPERATOR_SECTION_BYTES).astype(np.float64)
            mesh += operator_basis.expand(q * step)
    out[:lmk.NUM_MESH] = mesh
    return out, ratios


WIRE = ("none", "dense", "compact")  # what as_received emulates: nothing, or the FaceControl message with that codec


def as_received(control, wire: str, operator_basis=None):
    """A FaceControl as a render node receives it from the tracker node with its defaults (no absolute
    landmarks: send_landmarks false) and the expression sent `wire` ('dense': float32, eyelid ratios as they are;
    'compact': this codec, with `operator_basis` when given, as a receiver that holds it decodes it), without
    ROS; 'none' returns it unchanged. For evaluations (gaussian-head eval
    --control-codec). ValueError for another `wire`."""
    if wire not in WIRE:
        raise ValueError(f"unknown control wire format {wire!r}; one of {', '.join(WIRE)}")
    if wire == "none":
        return control
    out = dataclasses.replace(control, landmarks=np.zeros((0, 3), np.float32))
    if wire == "compact" and np.size(control.expression):
        code = encode(control.expression, control.eyelid_ratios, operator_basis)
        out.expression, out.eyelid_ratios = decode(code, operator_basis)
    return out
