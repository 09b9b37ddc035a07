"""The photo layer (mesh_fit step 3) and its colour refinement (step 5): which pixels get a Gaussian within the
budget (`select_pixels`: the head and torso grids, single-pixel detail), the discs on them (`pixel_discs`), the edge
band's coverage over the photo's own background (`edge_matte`), how far a detail disc's refined colour may pass the
photo's (`detail_margins`), the refinement against the renderer (`refine_colours`, within `refine_limits`), and the
share of the refined colours seen from the photo's camera only (`photo_view_sh`). Pixels are the source camera's
crop (S = framing.size); `cfg` is a MeshFitConfig."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import PART_EYE, PART_FACE, PART_MOUTH, PART_STATIC, PART_TORSO, rgb_to_sh_dc
from gaussian_head_ros.core.colour import LUMA
from gaussian_head_ros.core.holes import HOLE_ALPHA
from gaussian_head_ros.core.reconstruct.builder import (GaussianBatch, edge_on_sh, image_shaped_discs, line_directions,
                                                          surface_discs)
from gaussian_head_ros.core.reconstruct.eyelids import lid_zone
from gaussian_head_ros.core.reconstruct.completion import background_colours, edge_opacity
from gaussian_head_ros.core.reconstruct.surfaces import blur_window

log = logging.getLogger(__name__)


def select_pixels(cfg, photo, person, head_mask, torso_px, budget: int, no_detail=None, at_cut=None):
    """Base grid (i, j, head stride, torso stride, [S, S] bool pixels on the torso's grid) and detail pixels (i, j)
    within `budget` Gaussians; no_detail [S, S] bool (None: none): pixels that get no detail Gaussian; at_cut
    [S, S] bool (None: none): the torso's last row above the photo's cut (its edge, a letterbox bar), which takes
    a row of the torso grid's columns too.

    Why at_cut: the grid's last row lay up to a stride above the cut, and its discs' coverage fell off over the
    rows between (lp_d0 frame 0, a 27-row bar under the jacket: 0.975 of the photo layer at 7 px above the cut,
    0.15 at 3 px, 0.01 at 1 px), where the closing wall behind the cut (completion.back_and_wall's cut columns)
    showed: a light line and a dark band along the bust's bottom edge."""
    S = person.shape[0]
    ii, jj = np.mgrid[0:S, 0:S]
    hs, ts = cfg.head_stride, cfg.torso_stride
    head = (person & ~torso_px).astype(np.uint8)
    while True:
        # where the two grids met, rows up to hs + ts - 1 apart left a gap the back's dark discs showed
        # through (a dark line across lp_d0's neck, 0.06 darker): the torso's first ts px take both grids
        on_t = (ii % ts == ts // 2) & (jj % ts == ts // 2)
        on_h = (ii % hs == hs // 2) & (jj % hs == hs // 2)
        near_head = cv2.dilate(head, np.ones((2 * ts + 1, 2 * ts + 1), np.uint8)).astype(bool)
        torso_grid = torso_px & on_t
        base = person & (np.where(torso_px, on_t, on_h) | (torso_px & near_head & on_h))
        if at_cut is not None:
            base |= at_cut & (jj % ts == ts // 2)
        if base.sum() <= budget or (hs >= 8 and ts >= 8):
            break
        # over the budget: the torso's stride first, then the head's. Both at once (the head's from the torso's 6
        # on) made a cliff: the fast preset's lp_d8_man_glasses went from strides 3 / 7 to 4 / 8 for a budget 105
        # Gaussians smaller (base 8806 -> 5168, detail 85 -> 3618), its mirrored photo's avatar 1.07 dB off the
        # upright one's (test_every_exif_orientation_gives_the_upright_avatar); now 3 / 8 for both, 0.1 dB apart
        ts, hs = (ts + 1, hs) if ts < 8 else (ts, min(hs + 1, 8))
    bi, bj = np.nonzero(base)
    if base.sum() > budget:  # only with absurd budgets: thin evenly
        keep = np.linspace(0, len(bi) - 1, max(budget, 1)).astype(np.int64)
        bi, bj = bi[keep], bj[keep]
    n_detail = max(0, budget - len(bi)) if cfg.detail and hs > 1 else 0
    cand = head_mask & ~base & (True if no_detail is None else ~no_detail)
    if n_detail and cand.any():
        hp = np.abs(photo - cv2.GaussianBlur(photo, (0, 0), 1.0)).sum(-1)
        ci, cj = np.nonzero(cand)
        score = hp[ci, cj]
        if len(score) > n_detail:
            top = np.argpartition(-score, n_detail - 1)[:n_detail]
            ci, cj = ci[top], cj[top]
        return (bi, bj, hs, ts, torso_grid), (ci, cj)
    return (bi, bj, hs, ts, torso_grid), (np.zeros(0, np.int64), np.zeros(0, np.int64))


def pixel_discs(cfg, base, detail, pts, nrm, front, photo, fid, bary, face_px, mouth_px, torso_px, eye_px, eye_lag,
                centre, f, R, unlined=None):
    """Gaussians on the chosen pixels (R [3, 3] the photo camera's rotation, head -> camera; eye_lag [S, S] the
    share of the eyeball's turn the eye pixels lag behind, their bary[:, 0]; unlined [S, S] bool or None: skin
    the lining leaves out, whose base discs take MeshFitConfig.unlined_sigma_per_stride; base discs of the rigid
    head (further than texture_face_gap_px from the face mesh, eyes and mouth; not the torso) where `photo_texture`
    reaches MeshFitConfig.texture_level take textured_sigma_per_stride) -> (batch, (i, j, is_detail, in-plane
    std-dev in pixels) of each)."""
    bi, bj, hs, ts, torso_grid = base
    di, dj = detail
    i = np.concatenate([bi, di])
    j = np.concatenate([bj, dj])
    is_detail = np.arange(len(i)) >= len(bi)
    stride = np.where(torso_grid[i, j], ts, hs).astype(np.float64)
    per_stride = np.where(torso_grid[i, j], cfg.torso_sigma_per_stride, cfg.sigma_per_stride)
    if unlined is not None:
        per_stride = np.where(unlined[i, j] & ~torso_grid[i, j], cfg.unlined_sigma_per_stride, per_stride)
    if cfg.textured_sigma_per_stride is not None:  # the rigid head's textured pixels (hair): sharper discs
        textured = photo_texture(photo, cfg.texture_window_px)[i, j] >= cfg.texture_level
        g = cfg.texture_face_gap_px
        moving = (face_px | mouth_px | eye_px).astype(np.uint8)
        near = cv2.dilate(moving, np.ones((2 * g + 1, 2 * g + 1), np.uint8)) if g else moving
        rigid = ~(torso_grid[i, j] | near.astype(bool)[i, j])
        per_stride = np.where(textured & rigid, cfg.textured_sigma_per_stride, per_stride)
    sigma_px = np.where(is_detail, cfg.detail_sigma_px, per_stride * stride)
    p = pts[i, j].astype(np.float64)
    view = p - centre
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    p[is_detail] -= view[is_detail] * cfg.detail_lift_m
    sigma = sigma_px * front[i, j] / f
    part = np.select([face_px[i, j], mouth_px[i, j], eye_px[i, j], torso_px[i, j]],
                     [PART_FACE, PART_MOUTH, PART_EYE, PART_TORSO], PART_STATIC)
    face_id = np.where(face_px[i, j], fid[i, j], -1)
    b = np.where(face_px[i, j][:, None], bary[i, j], 0)
    b[:, 0] = np.where(eye_px[i, j], eye_lag[i, j], b[:, 0])
    out = surface_discs(p, nrm[i, j], photo[i, j], sigma, view, part.astype(np.uint8), opacity=cfg.opacity,
                        max_stretch=cfg.max_stretch, face_id=face_id, bary=b)
    k = np.flatnonzero(is_detail)
    if cfg.detail_line_stretch > 0 and len(k):  # along the photo's lines (a wrinkle, a lash), not dots
        theta, coherence = line_directions(photo @ LUMA)
        th, c = theta[i[k], j[k]].astype(np.float64), coherence[i[k], j[k]].astype(np.float64)
        cos, sin, zero = np.cos(th), np.sin(th), np.zeros(len(k))
        cam_axes = np.stack([np.stack([cos, sin, zero], 1), np.stack([-sin, cos, zero], 1)], 1) @ R  # head frame
        sig = cfg.detail_sigma_px * np.stack([1.0 + cfg.detail_line_stretch * c, np.ones(len(k))], 1)
        out.scales[k], out.quats[k] = image_shaped_discs(out.normals[k], view[k], cam_axes, front[i[k], j[k]] / f,
                                                         sig, cfg.max_stretch)
    return out, (i, j, is_detail, sigma_px)


def photo_texture(photo: np.ndarray, window_px: int) -> np.ndarray:
    """[S, S, 3] float 0..1 photo -> [S, S] float32 0..1: the RMS over a window_px x window_px box of its luminance less
    its blur by 1 px (std-dev), the photo's fine texture: hair strands high, smooth skin low."""
    y = np.asarray(photo, np.float32) @ LUMA.astype(np.float32)
    hp = y - cv2.GaussianBlur(y, (0, 0), 1.0)
    return np.sqrt(np.maximum(cv2.blur(hp * hp, (window_px, window_px)), 0.0))  # (rounding: tiny negatives)


def detail_margins(cfg, mesh_px: np.ndarray, pixels) -> np.ndarray:
    """[S, S] bool, the face mesh's pixels (its triangles and openings) and pixels (i, j, is_detail, footprint) ->
    [n_photo] float: how far past the photo's range about its pixel (MeshFitConfig.detail_refine_px) each detail
    disc's refined colour may go (rgb, 0..1): detail_refine_margin within detail_refine_face_grow_px of the mesh
    (everywhere if that is < 0), detail_refine_margin_off_face off it; inf: no limit (not a detail disc, a
    negative off-face margin, or detail_refine_px < 0)."""
    i, j, is_detail, _ = pixels
    out = np.full(len(i), np.inf)
    if cfg.detail_refine_px < 0:
        return out
    g = cfg.detail_refine_face_grow_px
    if g < 0:
        near = np.ones(len(i), bool)
    else:
        near = (cv2.dilate(mesh_px.astype(np.uint8), np.ones((2 * g + 1, 2 * g + 1), np.uint8)).astype(bool)
                if g else mesh_px)[i, j]
    off = cfg.detail_refine_margin_off_face
    out[is_detail] = np.where(near[is_detail], cfg.detail_refine_margin, off if off >= 0 else np.inf)
    return out


def refine_colours(cfg, batch: GaussianBatch, n_photo: int, pixels, free, photo, masks: dict, viewmat, K, S,
                   background=None, coverage=None, held=None, detail_margin=None, lighten=None) -> dict:
    """Move the photo layer's colours (the first n_photo, at pixels (i, j, is_detail, footprint std-dev px), where
    free) by the rest render's residual, the render over `background` [S, S, 3] (None: black), each disc's
    taken through its own footprint (the residual blurred by its std-dev: the adjoint of drawing it; a fixed
    0.8 px blur left the stride-2 lattice over-sharpened and the stride-3 torso under-weighted: frame 0
    -0.1..-0.2 dB on every ../shared clip), a detail Gaussian's at its pixel; scale the opacities of
    the others (not free) until the render covers their pixels by `coverage` [n not free] (None: kept).
    held [n_photo] float (None: no limit anywhere): how far (rgb) each Gaussian's colour may move from its photo
    colour (inf: no limit; MeshFitConfig.lid_refine_limit on the lids, eye_refine_limit in the eye openings,
    rim_refine_limit on the edge-on discs next to the silhouette's matte band: the
    refinement pays for each disc's overlap with its neighbours' colours, up to black or white; where a lid or a
    look moves Gaussians past each other, the overlaps change and those colours showed: dark grey smudges over a
    lowered lid, black specks along the lashes, business_person x sadtalker).
    detail_margin [n_photo] float (None: no limit anywhere): how far past the photo's range about its pixel each
    disc's colour may go (`detail_margins`; inf: no limit). lighten [n_photo] float (None: no limit anywhere): how
    much lighter (rgb, each channel) than its photo colour each Gaussian may get (inf: no limit; jaw_lighten by
    the jaw's outline).
    Returns the PSNR (of the render on black) in each of `masks` after ("name") and before ("name_initial")."""
    from gaussian_head_ros.core import metrics
    from gaussian_head_ros.core.render import rasterize

    i, j, is_detail, footprint = pixels
    footprints = np.unique(footprint[~is_detail])
    vm = np.asarray(viewmat, np.float32)
    Kf = np.asarray(K, np.float32)

    def render():
        return rasterize(batch.means, batch.quats, batch.scales, batch.opacities, batch.colors, vm, Kf, S, S,
                         backend=cfg.refine_backend)

    def psnr(img, m):
        return metrics.psnr(img, photo, m) if m.any() else float("nan")

    try:
        res = render()
    except (ImportError, ValueError) as e:
        log.warning("colour refinement skipped: the %r renderer is unavailable (%s)", cfg.refine_backend, e)
        return {}
    img = res.image
    out = {f"{k}_initial": psnr(img, m) for k, m in masks.items()}
    rows_h = np.zeros(0, np.int64) if held is None else np.flatnonzero(np.isfinite(held))
    if len(rows_h):
        limit = held[rows_h, None].astype(np.float32)
        lo_h, hi_h = batch.colors[rows_h] - limit, batch.colors[rows_h] + limit
    rows_l = np.zeros(0, np.int64) if lighten is None else np.flatnonzero(np.isfinite(lighten))
    if len(rows_l):
        hi_l = batch.colors[rows_l] + lighten[rows_l, None].astype(np.float32)
    rows_d = np.zeros(0, np.int64) if detail_margin is None else np.flatnonzero(np.isfinite(detail_margin))
    if len(rows_d):  # a detail disc no darker / lighter than the photo around its pixel (see MeshFitConfig)
        kern = np.ones((2 * cfg.detail_refine_px + 1,) * 2, np.uint8)
        img32 = np.asarray(photo, np.float32)
        margin = detail_margin[rows_d, None].astype(np.float32)
        lo_d = cv2.erode(img32, kern)[i[rows_d], j[rows_d]] - margin
        hi_d = cv2.dilate(img32, kern)[i[rows_d], j[rows_d]] + margin
    blurs = []  # per footprint: its rows, and the window of the residual its blur reads (the same bits there)
    for sd in footprints:
        rows = np.flatnonzero(~is_detail & (footprint == sd))
        at = np.zeros(photo.shape[:2], bool)
        at[i[rows], j[rows]] = True
        win = blur_window(at, float(sd))
        blurs.append((float(sd), rows, win, i[rows] - win[0].start, j[rows] - win[1].start))
    for _ in range(cfg.refine_iters):
        over = img if background is None else img + (1 - res.alpha[..., None]) * background
        r = photo - over
        upd = r[i, j]
        for sd, rows, win, wi, wj in blurs:
            upd[rows] = cv2.GaussianBlur(r[win], (0, 0), sd)[wi, wj]
        upd *= free[:, None]
        batch.colors[:n_photo] = np.clip(batch.colors[:n_photo] + upd, 0, 1)
        if len(rows_h):
            batch.colors[rows_h] = np.clip(batch.colors[rows_h], lo_h, hi_h)
        if len(rows_d):
            batch.colors[rows_d] = np.clip(batch.colors[rows_d], lo_d, hi_d)
        if len(rows_l):
            batch.colors[rows_l] = np.minimum(batch.colors[rows_l], hi_l)
        if coverage is not None:  # overlapping discs and the completion's tails add up: aim at the pixel
            rows = np.flatnonzero(~free)
            ratio = coverage / np.maximum(res.alpha[i[rows], j[rows]], 1e-3)
            batch.opacities[rows] = np.clip(batch.opacities[rows] * ratio, 0.005, cfg.opacity)
        res = render()
        img = res.image
    out.update({k: psnr(img, m) for k, m in masks.items()})
    return out


def edge_matte(photo_seen, person, valid, edge, wall_cols, d_edge, pixels, frozen, opacity: float):
    """I = a F + (1 - a) B: the coverage a of the photo layer's discs on the silhouette's edge band (edge [S, S] bool;
    frozen [n_photo] bool those rows of pixels (i, j, ...)) that gives the photo as the camera saw it (photo_seen [S, S,
    3]) back over its own background (completion.background_colours over person and valid [S, S] bool), their colour
    being the rim's (wall_cols [S, S, 3]); d_edge [S, S] pixels inside the silhouette, opacity the photo layer's ->
    (background [S, S, 3], coverage [n frozen])."""
    S = edge.shape[0]
    background = background_colours(photo_seen, person, valid)
    fi, fj = pixels[0][frozen], pixels[1][frozen]
    ei, ej = np.nonzero(edge)
    a_map = np.zeros((S, S), np.float32)
    a_map[ei, ej] = edge_opacity(photo_seen[ei, ej], wall_cols[ei, ej], background[ei, ej])
    w = cv2.GaussianBlur(edge.astype(np.float32), (0, 0), 1.5)
    a_map = cv2.GaussianBlur(a_map, (0, 0), 1.5) / np.maximum(w, 1e-6)  # no single-strand dips
    coverage = a_map[fi, fj]
    # only the outermost ring may be mostly background: a see-through pixel further in, enclosed by the
    # head in a driven view, is a hole (core.holes), not an anti-aliased edge
    coverage = np.maximum(coverage, np.where(d_edge[fi, fj] >= 1.5, HOLE_ALPHA + 0.25, 0.0)) * opacity
    return background, coverage


def face_outline_band(face: np.ndarray, person: np.ndarray, width_px: float, from_row: float) -> np.ndarray:
    """[S, S] bool face mesh pixels (its eye and mouth openings filled), [S, S] bool the person's, width (pixels), a
    row (pixels, y down) -> [S, S] bool: the person's pixels below from_row within width_px of the face mesh's
    outline, inside or outside it, and further than 2 x width_px from the person's silhouette (below the mouth: the
    jaw's edge over the neck, not the cheeks' outline against the backdrop, which view_rim_px's rules hold)."""
    s = face.shape[0]
    d_in = cv2.distanceTransform(face.astype(np.uint8), cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform((~face).astype(np.uint8), cv2.DIST_L2, 5)
    below = np.arange(s, dtype=np.float64)[:, None] + 0.5 > from_row
    inside = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 5) > 2 * width_px  # not by the silhouette
    return person & inside & below & (np.where(face, d_in, d_out) < width_px)


def refine_limits(cfg, n_photo: int, pixels, fid, faces, eye_px, edge_on, d_edge, mesh_px, person, landmarks_px):
    """How far `refine_colours` may move each of the photo layer's n_photo colours (at pixels (i, j, ...)) ->
    (held [n_photo] rgb, inf: no limit: MeshFitConfig.lid_refine_limit on the lids (eyelids.lid_zone of fid [S, S] over
    faces [F, 3]), eye_refine_limit in the eye openings (eye_px [S, S] bool), rim_refine_limit on the edge-on discs
    (edge_on [n_photo] bool) within rim_refine_px of the silhouette (d_edge [S, S] pixels inside it); lighten
    [n_photo] or None: jaw_lighten either side of the jaw's outline over the neck (`face_outline_band` of mesh_px and
    person [S, S] bool below the mouth corners' row of landmarks_px), inf elsewhere)."""
    # how far the refinement may move each photo Gaussian's colour from the photo's: the lids' and the eye
    # openings', where a blink or a look moves them past each other
    held = np.full(n_photo, np.inf)
    if cfg.lid_refine_limit > 0:
        held[lid_zone(fid, faces, cfg.lid_refine_grow_px)[pixels[0], pixels[1]]] = cfg.lid_refine_limit
    if cfg.eye_refine_limit > 0:
        held[eye_px[pixels[0], pixels[1]]] = cfg.eye_refine_limit
    if cfg.rim_refine_limit > 0:
        held[edge_on & (d_edge[pixels[0], pixels[1]] < cfg.rim_refine_px)] = cfg.rim_refine_limit
    lighten = None
    if cfg.jaw_refine_px > 0:  # ... and the discs either side of the jaw's outline over the neck (jaw_refine_px)
        jaw = face_outline_band(mesh_px, person, cfg.jaw_refine_px,  # (its holes filled: not the lips' edge)
                                float(np.max(landmarks_px[[lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L], 1])))
        lighten = np.where(jaw[pixels[0], pixels[1]], cfg.jaw_lighten, np.inf)
    return held, lighten


def photo_view_sh(cfg, batch: GaussianBatch, made_up, fold_up, cos_n, fold_cos):
    """SH band 1 for the rows of batch whose made-up colour share (made_up [n_photo, 3], the edge-on discs') or fold
    share (fold_up [n_fold, 3], eyes_and_lids.fold_shares) is seen from the photo's camera only (builder.edge_on_sh
    about their normals turned towards it; cos_n [n_photo], fold_cos [n_fold] their cos to its line of sight; floors
    MeshFitConfig.view_rim_floor, fold_floor) -> (sh [N, 4, 3] or None when no row has a share, info: how many rows
    of each)."""
    view_rows = np.flatnonzero(np.any(made_up != 0, axis=1))
    fold_rows = np.flatnonzero(np.any(fold_up != 0, axis=1))
    info_view = {"edge_on_view_sh": int(len(view_rows)), "fold_view_sh": int(len(fold_rows))}
    sh = None
    if len(view_rows) or len(fold_rows):
        sh = np.zeros((len(batch), 4, 3), np.float32)
        sh[:, 0] = rgb_to_sh_dc(batch.colors)
        for rows, up, cos, floor in ((view_rows, made_up, cos_n, cfg.view_rim_floor),
                                     (fold_rows, fold_up, fold_cos, cfg.fold_floor)):
            if not len(rows):
                continue
            axes = batch.normals[rows].astype(np.float64) * np.where(cos[rows] > 0, -1.0, 1.0)[:, None]
            axes /= np.linalg.norm(axes, axis=1, keepdims=True)
            sh[rows] = edge_on_sh(batch.colors[rows], up[rows], axes, np.abs(cos[rows]), floor)
    return sh, info_view
