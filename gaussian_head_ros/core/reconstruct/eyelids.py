"""The photo's visible lid margins: where the template's eyelid vertices go (mesh_fit).

MediaPipe's eye contour (lmk.EYELID_PAIRS_*) lies inside the visible eye opening, by 1-5 px at 512 px on the
../shared portraits (the upper contour often crosses the iris). Pixels between the contour and the true margin
(sclera, iris, lashes) are then bound to the lid triangles, and a closing lid stretches them into a dark
smear with a white strip of sclera along the lower lid (the reader takes it for a downward look, not a
closed eye). `lid_margins` moves each lid vertex outward, across the eye, as long as the photo shows the
eye there: pixels whose colour is nearer the eye's sclera than the lid skin, or within the iris disc and
nearer the iris colour than the skin. The eye corners and the irises stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gaussian_head_ros.core import colour
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.lashes import margin_heights, upper_lid_strip
from gaussian_head_ros.core.reconstruct.eyeballs import iris_distance, opening_colours


LUMA = colour.LUMA.astype(np.float32)  # (float32 like the photos it weighs)
MIN_REFERENCE_PX = 8  # an eye's sclera / iris reference needs this many pixels of its opening


@dataclass
class LidMarginConfig:
    """How `lid_margins` finds the lid margins in the photo: searched outward from the landmarks' lids for
    the sclera's edge, in eye widths or photo pixels as named, with luminance thresholds relative to the
    skin's and the sclera's."""

    max_shift: float = 0.09  # farthest a lid vertex moves, in eye widths (corner to corner)
    sclera_level: float = 0.6  # sclera: luminance at least this far from the skin's to the sclera's
    min_contrast: float = 0.06  # sclera luminance - skin luminance below this: the sclera is not told from skin
    step_px: float = 0.5  # search step along the outward direction
    across_px: float = 1.0  # colours averaged over the ray and this far either side of it
    skin_band: tuple[float, float] = (0.30, 0.45)  # lid-skin reference: this far below the corners' line (eye widths)
    iris_disc: float = 0.95  # iris disc radius / the iris landmarks' radius


def _sample(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear colours [M, 3] at pixel positions xy [M, 2] (pixel centres at +0.5)."""
    m = xy.astype(np.float32) - 0.5
    return cv2.remap(img, m[:, 0].reshape(-1, 1), m[:, 1].reshape(-1, 1), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).reshape(-1, 3)


def _eye_references(photo: np.ndarray, lm: np.ndarray, contour, centre: int, ring, corners, cfg: LidMarginConfig):
    """(sclera, iris, skin) rgb of one eye (sclera and iris measured in its contour by eyeballs.opening_colours,
    the rule the painted eyeballs use), iris centre [2] and radius (px), corner axis, eye width."""
    h, w = photo.shape[:2]
    a, b = lm[corners[0], :2], lm[corners[1], :2]
    width = float(np.linalg.norm(b - a))
    axis = (b - a) / max(width, 1e-9)
    c = lm[centre, :2]
    r = float(np.mean(np.linalg.norm(lm[list(ring), :2] - c, axis=1)))
    mask = np.zeros((h, w), np.uint8)
    order = np.argsort(np.arctan2(*(lm[list(contour), :2] - lm[list(contour), :2].mean(0)).T[::-1]))
    cv2.fillPoly(mask, [np.round(lm[list(contour), :2][order] * 16).astype(np.int32)], 1, shift=4)
    sclera, iris, _ = opening_colours(photo, mask.astype(bool), iris_distance((h, w), c, r), MIN_REFERENCE_PX)
    # lid skin: a band under the eye, between the corners (cheek skin of the lower lid)
    down = np.array([-axis[1], axis[0]])
    if down[1] < 0:
        down = -down
    rows, cols = np.mgrid[0:h, 0:w]
    rel = np.stack([cols + 0.5 - 0.5 * (a[0] + b[0]), rows + 0.5 - 0.5 * (a[1] + b[1])], -1)
    along, across = rel @ axis, rel @ down
    band = (np.abs(along) < 0.35 * width) & (across > cfg.skin_band[0] * width) & (across < cfg.skin_band[1] * width)
    skin = np.median(photo[band], 0) if band.sum() >= 8 else None
    return sclera, iris, skin, c, r, axis, down, width


def lid_margins(photo: np.ndarray, landmarks_px: np.ndarray, cfg: LidMarginConfig | None = None) -> np.ndarray:
    """photo [S, S, 3] float in [0, 1], landmarks_px [478, 2+] (pixels, x right, y down) -> [478, 2] the landmarks
    with each eyelid vertex (lmk.EYELID_PAIRS_R/L: upper ones moved up, lower ones down, across the eye) moved to
    the photo's visible lid margin; every other point unchanged. An eye whose references (sclera, iris, skin)
    cannot be measured keeps its contour."""
    cfg = cfg or LidMarginConfig()
    img = np.ascontiguousarray(photo, np.float32)
    lm = np.asarray(landmarks_px, np.float64)
    out = lm[:, :2].copy()
    for contour, centre, ring, corners, pairs in (
            (lmk.EYE_CONTOUR_R, lmk.IRIS_CENTER_R, lmk.IRIS_R, lmk.EYE_CORNERS[0], lmk.EYELID_PAIRS_R),
            (lmk.EYE_CONTOUR_L, lmk.IRIS_CENTER_L, lmk.IRIS_L, lmk.EYE_CORNERS[1], lmk.EYELID_PAIRS_L)):
        sclera, iris, skin, c, r, axis, down, width = _eye_references(img, lm, contour, centre, ring, corners, cfg)
        if sclera is None or skin is None or width < 4:
            continue
        l_skin, l_scl = float(skin @ LUMA), float(sclera @ LUMA)
        lum_min = l_skin + cfg.sclera_level * (l_scl - l_skin) if l_scl - l_skin >= cfg.min_contrast else None
        steps = np.arange(0.0, cfg.max_shift * width + 1e-9, cfg.step_px)
        for k, (up_v, lo_v) in enumerate(pairs):
            for v, direction in ((up_v, -down), (lo_v, down)):
                p = lm[v, :2][None] + steps[:, None] * direction[None]
                cols = np.mean([_sample(img, p + s * axis[None]) for s in (-cfg.across_px, 0.0, cfg.across_px)], 0)
                d_skin = np.linalg.norm(cols - skin, axis=1)
                lum = cols @ LUMA
                eye = (np.linalg.norm(cols - sclera, axis=1) < d_skin) & (lum >= lum_min) if lum_min is not None \
                    else np.zeros(len(cols), bool)
                if iris is not None:
                    eye |= (np.linalg.norm(p - c, axis=1) < cfg.iris_disc * r) & (np.linalg.norm(cols - iris, axis=1) < d_skin)
                n = int(np.argmin(eye)) if not eye.all() else len(eye)  # the first sample that is not the eye
                if n > 0:
                    out[v] = p[n - 1]
    return out


UPPER_LID = np.array([p[0] for p in lmk.EYELID_PAIRS_R + lmk.EYELID_PAIRS_L])  # the vertices a blink moves


def lid_rings(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[F, 3] template triangles -> ([F] bool the strip along each upper lid: triangles with some but not all
    vertices in UPPER_LID, [F] bool the ring of triangles just above it: touching the strip's crease-side
    vertices, not in the strip)."""
    f = np.asarray(faces)
    on = np.isin(f, UPPER_LID)
    strip = upper_lid_strip(f)
    crease = np.unique(f[strip][~on[strip]])
    return strip, np.isin(f, crease).any(1) & ~strip


def upper_orbit(vertices: np.ndarray, faces: np.ndarray, rings: int = 2) -> np.ndarray:
    """[V, 3] template (head frame, y down), [F, 3] -> [F] bool: the upper lids' strip (`lid_rings`) and `rings`
    rings of triangles around it (each: the triangles touching the previous one's vertices), those whose centre
    lies above both eyes' corners: the upper lid and the fold under the brow, up to the brow's lower edge at 2
    rings on MediaPipe's mesh (the third takes in the brows and the glabella)."""
    f = np.asarray(faces)
    v = np.asarray(vertices, np.float64)
    strip, ring = lid_rings(f)
    seen, last = strip | ring, ring
    for _ in range(max(0, int(rings)) - 1):
        last = np.isin(f, np.unique(f[last])).any(1) & ~seen
        seen |= last
    corners_y = v[[k for pair in lmk.EYE_CORNERS for k in pair], 1].max()
    return seen & (v[f, 1].mean(1) < corners_y)


def fold_shade(colours: np.ndarray, skin: np.ndarray, facing: np.ndarray, facing_range: tuple[float, float]) -> np.ndarray:
    """colours [M, 3] photo-layer discs of the upper orbit (`upper_orbit`) as the photo shows them, skin [M, 3] the
    lid skin each would show seen squarely (mesh_fit: the closed-lid fill there, `skin_luminance`), facing [M]
    |cos| between each disc's normal and the photo's line of sight -> [M, 3] the share of each colour only the
    photo's view is to show (builder.edge_on_sh turns it into view-dependent colour): all of colours - skin at
    facing <= facing_range[0], none at >= facing_range[1], linear between.

    The photo sees the fold between the upper lid and the brow at a grazing angle (|cos| 0.4-0.7 on
    business_person): a 1-3 px line of the crease's shadow and the brow's lower edge spread over discs up to 3x
    longer on the steep template (builder.surface_discs). A closing lid or a head tilted back turns that surface
    to the camera (|cos| 0.85-1.0 at sadtalker f25-46) while the strip's stretch grows the discs 1.2-3.6x: the
    line of shadow became a grey band over the lid up to the brow (issue 11). The shadow is the fold's, seen
    from the photo; the skin under it is the lid's."""
    lo, hi = facing_range
    w = np.clip((hi - np.asarray(facing, np.float64)) / max(hi - lo, 1e-6), 0.0, 1.0)
    return (w[:, None] * (np.asarray(colours, np.float64) - np.asarray(skin, np.float64))).astype(np.float32)


def lid_zone(fid: np.ndarray, faces: np.ndarray, grow_px: int) -> np.ndarray:
    """[S, S] bool: the photo's pixels on the upper lids' strips and the rings above them (`lid_rings`; fid
    [S, S] each pixel's template triangle, < 0 or >= len(faces) for none), grown by grow_px: where a blink or a
    squint moves the photo's Gaussians past each other."""
    zone = _lid_ring_pixels(fid, faces)
    return cv2.dilate(zone.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=int(grow_px)).astype(bool)


def _lid_ring_pixels(fid: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[S, S] bool: pixels whose template triangle (fid, < 0 or >= len(faces) for none) is on an upper lid's strip
    or the ring above it (`lid_rings`)."""
    f = np.asarray(faces)
    strip, above = lid_rings(f)
    fid = np.asarray(fid)
    ok = (fid >= 0) & (fid < len(f))
    out = np.zeros(fid.shape, bool)
    out[ok] = (strip | above)[fid[ok]]
    return out


def lash_band(photo: np.ndarray, fid: np.ndarray, landmarks_px: np.ndarray, faces: np.ndarray, skin_rgb: np.ndarray,
              level: float = 0.55, depth: float = 0.12, opening: np.ndarray | None = None) -> np.ndarray:
    """[S, S] bool: the photo's lash band over each upper lid: pixels on the upper lid's strip or the ring above it
    (`lid_rings`; fid [S, S] each pixel's triangle, >= len(faces) or < 0 for none) darker than `level` x their
    eye's lid-skin luminance (skin_rgb [2, 3], lid_skin_colours), connected through such pixels to the upper lid's
    margin (landmarks_px [478, 2+] after lid_margins: the corners and the upper-lid points), at most `depth` eye
    widths from it (further, a lid's shadow carried down covered the closed lid: obama_speech's dark fraction 0.27 ->
    0.43 at 0.16 eye widths, as dark as eyeliner, so luminance does not tell them apart). These are the lashes
    and eyeliner, which a closing lid carries down with its margin. opening [S, S] bool (optional): pixels of the eye
    openings that stay with the lids (the rim: mesh_fit's lid band) may be in the band too, on the margin's other
    side (sadtalker's eyeliner lies inside MediaPipe's contour; left to the falloff it went behind the closed lid's
    skin, and the closed eye showed no lash line at all). A made-up eye's dark band reaches above
    MediaPipe's ring over the upper lid (sadtalker: up to 6 mm above the margin); left in place, it drew the open
    eye's outline around the closed lid. Dark parts apart from the band (a crease, wrinkles: obama_official) stay."""
    fid = np.asarray(fid)
    region = _lid_ring_pixels(fid, faces)
    if opening is not None:
        region |= np.asarray(opening, bool)
    lum = np.asarray(photo, np.float32) @ LUMA
    lm = np.asarray(landmarks_px, np.float64)[:, :2]
    out = np.zeros(fid.shape, bool)
    for e, (corners, pairs) in enumerate(((lmk.EYE_CORNERS[0], lmk.EYELID_PAIRS_R), (lmk.EYE_CORNERS[1], lmk.EYELID_PAIRS_L))):
        sk = float(np.asarray(skin_rgb, np.float64)[e] @ LUMA)
        if not np.isfinite(sk):
            continue
        line = np.zeros(fid.shape, np.uint8)
        pts = lm[[corners[1]] + [p[0] for p in pairs] + [corners[0]]]  # inner corner, upper lid, outer corner
        cv2.polylines(line, [np.round(pts * 16).astype(np.int32)], False, 1, thickness=2, shift=4)
        line = line.astype(bool)
        cand = (region & (lum < level * sk)) | line
        n, lab = cv2.connectedComponents(cand.astype(np.uint8), connectivity=8)
        keep = np.zeros(n, bool)
        keep[np.unique(lab[line])] = True
        keep[0] = False
        width = float(np.linalg.norm(lm[corners[1]] - lm[corners[0]]))
        dist = cv2.distanceTransform((~line).astype(np.uint8), cv2.DIST_L2, 3) / max(width, 1e-9)
        out |= keep[lab] & region & (lum < level * sk) & (dist <= depth)
    return out


def carry_by_margin(means: np.ndarray, face_id: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                    rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bindings (face_id [M], bary [M, 3]) that carry Gaussians `rows` (means [N, 3], head frame) by the upper-lid
    vertex nearest each: a strip triangle holding that vertex, weight 1 on it (core.deform: part static with a
    face_id moves by that point's displacement)."""
    f = np.asarray(faces)
    strip, _ = lid_rings(f)
    v = np.asarray(vertices, np.float64)
    d = np.linalg.norm(np.asarray(means, np.float64)[rows][:, None] - v[UPPER_LID][None], axis=2)
    vert = UPPER_LID[np.argmin(d, 1)]
    tris = np.flatnonzero(strip)
    fid, bary = np.zeros(len(rows), np.int64), np.zeros((len(rows), 3))
    for k, u in enumerate(vert):
        t = tris[np.any(f[tris] == u, 1)][0]
        fid[k] = t
        bary[k, int(np.flatnonzero(f[t] == u)[0])] = 1.0
    return fid, bary


def margin_binding(face_id: np.ndarray, bary: np.ndarray, faces: np.ndarray, split: float, dark=None, light=None):
    """Rebinding of Gaussians bound to face triangles (face_id [N], -1 unbound; bary [N, 3]; faces [F, 3]) that
    makes the upper lid's strip roll down with its margin in a blink instead of stretching -> (bary [N, 3],
    carried [N] bool).

    A blink moves the upper-lid vertices (UPPER_LID) down to the lower lid while the ring above stays, so the
    thin strip of triangles between them (2-4 px at 512 px, mostly lashes and the lid's dark line) stretches
    several times over the eye. Bound by their plain weights, the strip's pixels spread over the whole closed
    lid: a dark smear with the eyeball glinting through; bound to the triangle at all, they grow with its area
    (lash lines twice as thick mid-blink) and turn with it. With s the weight on a strip triangle's other
    (crease-side) vertices, a Gaussian with s < split is *carried* (core.deform: part static with a face_id,
    moved by the displacement of its point on the triangle, neither turned nor stretched) by the margin
    vertices alone (in the same proportions), and so is a dark one (dark [N] bool: lashes, eyeliner; `lash_band`)
    wherever it lies on the strip: in a blink the lashes ride down with the margin at their own size while the
    skin between (closed_lid_skin) fills the stretch. A light one (light [N] bool: as light as the lid's skin; not
    dark) that the split would carry is carried by its own weights instead (moved by the displacement of its point
    on the triangle, not folded: fold_lashes leaves it): the made-up lid's pale band between the eyeliner and the
    crease (sadtalker) and the glints between the lashes, carried and folded with the lashes, closed into a pale,
    dotted line with dark specks where the lids meet (each self-sadtalker sheet; a white line on lp_s9_monalisa,
    lp_d8, obama_official; issue 11); they now spread over the closing lid as its skin does and the lashes close
    into one dark line. The others are bound to the crease-side vertices alone; the offset from that barycentric
    point (kept in the triangle's frame) makes up the difference, so nothing moves at rest. Other Gaussians
    unchanged (carried False)."""
    out = np.asarray(bary, np.float64).copy()
    carried = np.zeros(len(out), bool)
    rows = np.flatnonzero(np.asarray(face_id) >= 0)
    if not rows.size:
        return out.astype(np.asarray(bary).dtype), carried
    on_margin = np.isin(np.asarray(faces)[np.asarray(face_id)[rows]], UPPER_LID)  # [M, 3]
    use = on_margin.any(1) & ~on_margin.all(1)
    rows, m = rows[use], on_margin[use]
    b = out[rows]
    s = np.clip((b * ~m).sum(1), 0.0, 1.0)
    to_margin = s < split
    if dark is not None:
        to_margin |= np.asarray(dark, bool)[rows]
    own = to_margin & (np.asarray(light, bool)[rows] if light is not None else False)  # carried by its own weights
    if dark is not None:
        own &= ~np.asarray(dark, bool)[rows]
    to_margin &= ~own
    keep = np.where(own[:, None], True, np.where(to_margin[:, None], m, ~m))  # the vertices it stays bound to
    w = b * keep
    total = w.sum(1, keepdims=True)
    even = keep / np.maximum(keep.sum(1, keepdims=True), 1)  # all its weight was on the other side
    out[rows] = np.where(total > 1e-9, w / np.maximum(total, 1e-9), even)
    carried[rows] = to_margin | own
    return out.astype(np.asarray(bary).dtype), carried


def lid_skin_colours(photo: np.ndarray, landmarks_px: np.ndarray, band=(0.15, 0.3)) -> np.ndarray:
    """[2, 3] rgb in [0, 1] of each eye's (right, left) closed-lid skin: the mean of the medians of the photo
    between `band` eye widths above the upper contour and as far below the lower one. Above alone is often the
    brow's shadow or a bright lid; the lid lies between the two in a closed eye."""
    lm = np.asarray(landmarks_px, np.float64)[:, :2]
    h, w = photo.shape[:2]
    img = np.ascontiguousarray(photo, np.float32)
    out = []
    for corners, pairs in ((lmk.EYE_CORNERS[0], lmk.EYELID_PAIRS_R), (lmk.EYE_CORNERS[1], lmk.EYELID_PAIRS_L)):
        a, b = lm[corners[0]], lm[corners[1]]
        width = float(np.linalg.norm(b - a))
        up = np.array([(b - a)[1], -(b - a)[0]]) / max(width, 1e-9)
        up = up if up[1] < 0 else -up
        s = np.linspace(band[0], band[1], 5) * width
        sides = []
        for k, direction in ((0, up), (1, -up)):  # above the upper contour, below the lower one
            base = lm[[p[k] for p in pairs[1:-1]]]  # away from the corners
            q = (base[:, None, :] + s[None, :, None] * direction).reshape(-1, 2)
            q = q[(q[:, 0] >= 0) & (q[:, 0] < w) & (q[:, 1] >= 0) & (q[:, 1] < h)]
            if len(q):
                sides.append(np.median(_sample(img, q), 0))
        out.append(np.mean(sides, 0) if sides else np.full(3, np.nan))
    return np.asarray(out, np.float64)


def closed_vertices(vertices: np.ndarray) -> np.ndarray:
    """[V, 3] template -> [V, 3] the same with each upper-lid vertex (UPPER_LID) on its lower partner: the lids
    closed, as a full blink (core.deform's lid retarget at openness 0, no gaze turn) leaves them."""
    closed = np.asarray(vertices, np.float64).copy()
    for pairs in (lmk.EYELID_PAIRS_R, lmk.EYELID_PAIRS_L):
        for up, lo in pairs:
            closed[up] = closed[lo]
    return closed


def closed_lid_photo(photo: np.ndarray, eyes: np.ndarray, landmarks_px: np.ndarray, grow_px: int = 2,
                     below: float = 0.08, radius_px: float = 4.0, skin_rgb: np.ndarray | None = None,
                     not_skin: tuple[float, float, float] = (0.0, 0.8, 0.12)) -> np.ndarray:
    """photo [S, S, 3] float in [0, 1], eyes [S, S] bool (the eye openings and the upper lids' lash band),
    landmarks_px [478, 2+] -> [S, S, 3] float: the photo with a hole filled from the skin around it (OpenCV's
    fast-marching inpainting, Telea 2004): what the skin of a closed lid looks like where it covers the eye,
    shaded as the lid above and below it is. The hole is `eyes` grown by `grow_px` and reaching `below` eye widths
    further down (the lower lid's bright waterline and its lashes: filled from them, the closed lid's lower edge
    was a white line). A flat colour per eye read as a pale patch inside the open eye's outline (the reader scored
    our closed lids 0.27-0.55 closed, real closed eyes 0.68-0.75).
    skin_rgb [2, 3] (lid_skin_colours: right, left eye; optional) and not_skin (reach, luma, chroma): the hole also
    takes what around it is not lid skin, up to reach eye widths from it, through pixels that are: darker than luma
    x its eye's lid skin, or whose chromaticity (rgb / luminance) is more than chroma (in any channel) from the lid
    skin's: the lash line, eyeliner, the iris's top and the crease's shadow that the eye mask left at its edge.
    Filled from, they streaked the closed lid brown, and `skin_luminance` raised that brown to the skin's
    luminance as an orange-brown patch (self tpsmm_driving's left lid in a blink). reach 0: the hole as above."""
    hole = cv2.dilate(np.asarray(eyes, np.uint8), np.ones((3, 3), np.uint8), iterations=int(grow_px)).astype(bool)
    lm = np.asarray(landmarks_px, np.float64)[:, :2]
    h = hole.shape[0]
    img = np.asarray(photo, np.float32)
    lum = img @ LUMA if skin_rgb is not None and not_skin[0] > 0 else None
    for k, corners in enumerate(lmk.EYE_CORNERS):
        width = float(np.linalg.norm(lm[corners[1]] - lm[corners[0]]))
        xs = np.sort(lm[list(corners), 0])
        side = np.zeros_like(hole)
        side[:, max(0, int(xs[0])):max(0, int(np.ceil(xs[1])) + 1)] = True  # this eye's columns
        own = hole & side
        for s in range(1, int(round(below * width)) + 1):
            hole[s:] |= own[:h - s]
        reach = int(round(not_skin[0] * width))
        if skin_rgb is None or reach < 1 or not np.isfinite(skin_rgb[k]).all():
            continue
        sk = np.asarray(skin_rgb[k], np.float32)
        chroma = np.abs(img / np.maximum(lum, 1e-3)[..., None] - sk / max(float(sk @ LUMA), 1e-3)).max(-1)
        other = (lum < not_skin[1] * float(sk @ LUMA)) | (chroma > not_skin[2])
        near = cv2.dilate(own.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=reach).astype(bool)
        grown = own.copy()
        for _ in range(reach):  # through such pixels only, from this eye's hole
            step = cv2.dilate(grown.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & other & near
            if not (step & ~grown).any():
                break
            grown |= step
        hole |= grown
    img = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    filled = cv2.inpaint(img, hole.astype(np.uint8), float(radius_px), cv2.INPAINT_TELEA)
    return filled.astype(np.float32) / 255


def skin_luminance(rgb: np.ndarray, skin_rgb: np.ndarray, eye: np.ndarray, luma: tuple[float, float],
                   chroma: float = 0.0) -> np.ndarray:
    """rgb [M, 3] in [0, 1], skin_rgb [2, 3] (lid_skin_colours: right, left eye), eye [M] 0/1 (which eye's skin)
    -> [M, 3]: each colour's chromaticity (rgb / luminance) moved `chroma` (0..1) of the way to its eye's lid skin's,
    then scaled so that its luminance lies within luma[0]..luma[1] x that skin's luminance (shading kept; a NaN skin
    leaves the colour as it is). chroma 0 keeps the hue: a fill from the brow's and crease's shadow raised to the
    skin's luminance kept their grey and read as a grey-violet block over obama_speech's closed lids."""
    rgb = np.asarray(rgb, np.float64)
    skin = np.asarray(skin_rgb, np.float64)[np.asarray(eye, np.int64)]
    sk = skin @ LUMA.astype(np.float64)
    lum = rgb @ LUMA.astype(np.float64)
    if chroma > 0:
        toward = skin * (lum / np.maximum(sk, 1e-6))[:, None]  # the skin's hue at this luminance
        rgb = np.where(np.isfinite(toward), (1.0 - chroma) * rgb + chroma * toward, rgb)
    target = np.clip(lum, luma[0] * sk, luma[1] * sk)
    k = np.where(np.isfinite(target) & (lum > 1e-6), target / np.maximum(lum, 1e-6), 1.0)
    return np.clip(rgb * k[:, None], 0.0, 1.0)


def fold_lashes(face_id: np.ndarray, bary: np.ndarray, means: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                fold: float) -> np.ndarray:
    """Bindings (bary [M, 3]) for Gaussians carried by the upper-lid margin (face_id [M] strip triangles, bary [M, 3]
    weights on the triangle's margin vertices only: margin_binding / carry_by_margin; means [M, 3] head frame)
    that fold the lash band onto the margin as the lid closes: a Gaussian a height d above its margin point (below
    it: d < 0), where the lid's opening is H, moves by (1 + e) x the margin's displacement minus e x the crease
    side's (e = fold x d / H, |e| at most `fold`): in a full blink it lands (1 - fold) d from the lower lid instead
    of d, so a 3-6 px band of lashes and eyeliner closes into a thin dark line where the lids meet (as a real
    closed eye's lashes are), where carried at its own height it drew a thick jagged band across the closed lid. The
    weights sum to 1 and nothing moves at rest; an opening lid spreads the band by the same factor. fold 0, or a
    Gaussian with weight on a crease-side vertex (margin_binding's light ones): the bindings unchanged."""
    b = np.asarray(bary, np.float64).copy()
    if fold <= 0 or not len(b):
        return b
    on = np.isin(np.asarray(faces, np.int64)[np.asarray(face_id, np.int64)], UPPER_LID)  # [M, 3]
    d, h = margin_heights(face_id, b, means, vertices, faces)  # (b's margin weights sum to 1: carried)
    e = fold * np.clip(d / np.maximum(h, 1e-12), -1.0, 1.0) * (h > 1e-9) * ~(b * ~on).any(1)
    crease = ~on / np.maximum((~on).sum(1, keepdims=True), 1)
    return (1 + e)[:, None] * b - e[:, None] * crease


def triangle_lattice(n: int) -> np.ndarray:
    """About n (at least 1) evenly spaced points in a triangle -> barycentric weights [k (k + 1) / 2, 3], k the
    whole number nearest the root of k (k + 1) / 2 = n: the centroids of the k^2 / 2 upward sub-triangles of the
    triangle cut k times along each side. Evenly spaced, not uniformly at random: closed_lid_skin's lash line is
    a thin strip of weights (its `line`), and the random points that fell on it were bunched and gapped, a row
    of beads where the lids meet in a blink (lids20)."""
    k = max(1, int(round((np.sqrt(8.0 * n + 1.0) - 1.0) / 2.0)))
    i, j = np.triu_indices(k)  # i <= j < k: k (k + 1) / 2 pairs
    a, b = (i + 1.0 / 3.0) / k, (k - 1 - j + 1.0 / 3.0) / k  # a + b <= (k - 1 + 2 / 3) / k < 1
    return np.stack([1.0 - a - b, a, b], 1)


def closed_lid_skin(vertices: np.ndarray, faces: np.ndarray, colour_of, centre: np.ndarray,
                    spacing_m: float, behind_m: float, line_rgb: np.ndarray | None = None,
                    line: tuple[float, float, float] = (0.04, 0.16, 0.06)):
    """Bound skin (PART_FACE) for what a closing upper lid uncovers: (means [M, 3], normals [M, 3], colours
    [M, 3], sigma [M] at rest, face_id [M], bary [M, 3]) on the triangles of the strip along each upper lid
    (those with some but not all vertices in UPPER_LID), spaced `spacing_m` apart as they are when the lid
    is closed (`closed_vertices`), behind the strip (seen from `centre`, the camera centre in the same frame),
    under the photo's Gaussians at rest: `behind_m` at the crease side (where the fold is concave and a
    shallower layer showed through the lashes at rest), a fifth of it at the margin (the part that covers the
    eyeball's bulge when closed; deeper, the eyeball showed through). The driver scales a bound Gaussian by the
    square root of its triangle's area change, so the sigma at rest is the closed one over that factor.
    colour_of: closed positions [M, 3] (head frame) -> rgb [M, 3] in [0, 1], the colour the closed lid shows
    there (mesh_fit: `closed_lid_photo` where the point projects in the photo). line_rgb [2, 3] (per eye, right
    and left; optional): a lash line just above where the closed lids meet: the skin whose weight on the
    crease-side vertices is between line[0] and line[1] takes that colour, fading into the skin's over line[2]
    (about 1-2 px at 512 px in a full blink; hidden under the photo's lid strip at rest, kept off its margin
    edge, where it showed through at rest). The reader (FaceLandmarker) finds a closed eye by that line: a
    closed lid of smooth skin read as less closed than a 20 %-open one (tpsmm self 0.39 -> 0.22). Also the ring
    of triangles above the strip (`lid_rings`) gets skin behind it: the lash band that left it (lash_band)
    uncovers it."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    closed = closed_vertices(v)
    on = np.isin(f, UPPER_LID)
    strip, above = lid_rings(f)
    tris = np.flatnonzero(strip | above)

    def area(x, t):
        return 0.5 * np.linalg.norm(np.cross(x[f[t, 1]] - x[f[t, 0]], x[f[t, 2]] - x[f[t, 0]]), axis=-1)

    out = {k: [] for k in ("means", "normals", "closed", "sigma", "face_id", "bary", "crease", "eye")}
    for t in tris:
        a_rest, a_closed = float(area(v, t)), float(area(closed, t))
        if a_rest <= 1e-12 or a_closed <= 1e-12:
            continue
        bary = triangle_lattice(max(3, int(np.ceil(a_closed / spacing_m ** 2))))
        n = len(bary)
        p = bary @ v[f[t]]
        nrm = np.cross(v[f[t, 1]] - v[f[t, 0]], v[f[t, 2]] - v[f[t, 0]])
        nrm /= np.linalg.norm(nrm)
        if nrm @ (centre - p.mean(0)) < 0:
            nrm = -nrm  # towards the camera
        crease = (bary * ~on[t]).sum(1)  # weight on the crease-side vertices (1 on the ring above)
        out["means"].append(p - (behind_m * (0.2 + 0.8 * crease ** 2))[:, None] * nrm)
        out["normals"].append(np.repeat(nrm[None], n, 0))
        out["closed"].append(bary @ closed[f[t]])
        out["sigma"].append(np.full(n, 0.8 * spacing_m / np.sqrt(a_closed / a_rest)))
        out["face_id"].append(np.full(n, t))
        out["bary"].append(bary)
        out["crease"].append(crease)
        out["eye"].append(np.full(n, 0 if v[f[t]][:, 0].mean() < 0 else 1))  # the subject's right eye: image left
    if not out["means"]:
        return None
    cat = {k: np.concatenate(x) for k, x in out.items()}
    colours = np.asarray(colour_of(cat["closed"]), np.float64)
    if line_rgb is not None:
        c = cat["crease"]
        k = np.clip(np.minimum(c - line[0] + line[2], line[1] + line[2] - c) / max(line[2], 1e-9), 0.0, 1.0)[:, None]
        colours = (1 - k) * colours + k * np.asarray(line_rgb, np.float64)[cat["eye"]]
    return cat["means"], cat["normals"], colours, cat["sigma"], cat["face_id"], cat["bary"]
