"""The bust beyond the photo's bottom cut (MeshFitConfig.bust_fringe_m, mesh_fit step 4): the photo layer's torso
rows at the cut repeated down the photo camera's image, fading out (`bust_fringe`), their Gaussians traded for the
hidden back's coarse grids facing away from the camera (`back_blocks`); `cfg` is a MeshFitConfig."""

from __future__ import annotations

import numpy as np

from gaussian_head_ros.core.avatar import PART_TORSO
from gaussian_head_ros.core.control import matrix_to_quat
from gaussian_head_ros.core.deform import smoothstep
from gaussian_head_ros.core.reconstruct.builder import GaussianBatch
from gaussian_head_ros.core.reconstruct.completion import Scene

FRINGE_SIGMA = (0.8, 0.6)  # the bust fringe's discs: standard deviations across / down the image per step between
# them (the torso's own: 0.6)
FRINGE_BLUR = 3.0  # and its colours: smoothed along the cut, standard deviation in Gaussians
BACK_TRADE_COS = 0.5  # the hidden back's discs facing away from the photo's camera at least this much (cos) are
# merged 4 -> 1 for the bust fringe's Gaussians (back_blocks)
FRINGE_START = 0.3  # its first row lies this many steps beyond the cut (half its vertical sigma: it barely
# reaches back over the photo; 0.8 and 1.2 left a seam line between the photo and the fringe, the cut section)


def back_blocks(cfg, batch: GaussianBatch, lo: int, hi: int, scene: Scene) -> list[np.ndarray]:
    """The hidden back's coarse grids (back_and_wall's discs of sigma 0.6 back_spacing_m on the head, 0.6
    torso_back_spacing_m on the torso) among batch rows lo..hi, where they face away from the photo's camera
    (cos > BACK_TRADE_COS between the normal and its line of sight), in blocks of 2 x 2 grid cells: a list of
    row arrays (2..4 rows each), the blocks facing away most first.

    Merging a block into one disc at its mean with sqrt(rows) its sigma leaves that part of the back a closed
    grid twice as coarse; only a view from behind the head's side sees it (the render node, the tracker's
    turns and every test stay within +-40 deg of yaw)."""
    rows = np.arange(lo, hi)
    sight = batch.means[rows].astype(np.float64) - scene.centre
    cos = np.sum(batch.normals[rows] * sight, 1) / np.linalg.norm(sight, axis=1)
    blocks, facing = [], []
    for spacing in (cfg.back_spacing_m, cfg.torso_back_spacing_m):
        on = (np.abs(batch.scales[rows, 1] - 0.6 * spacing) < 1e-7) & (cos > BACK_TRADE_COS)
        r, c = rows[on], cos[on]
        if len(r) < 2:
            continue
        i, j, _, _ = scene.project(batch.means[r].astype(np.float64))  # the grid's own pixels
        step = max(int(np.diff(np.unique(i)).min(initial=len(i) + 1)), 1)
        key = np.stack([np.round((i - i.min()) / step) // 2, np.round((j - j.min()) / step) // 2], 1)
        _, block = np.unique(key, axis=0, return_inverse=True)
        order = np.argsort(block.ravel(), kind="stable")
        for g in np.split(order, np.flatnonzero(np.diff(block.ravel()[order])) + 1):
            if len(g) > 1:
                blocks.append(r[g])
                facing.append(c[g].mean())
    return [blocks[k] for k in np.argsort(-np.asarray(facing), kind="stable")]


def bust_fringe(cfg, batch: GaussianBatch, n_photo: int, scene: Scene, at_cut: np.ndarray,
                below_cut: np.ndarray, steps: int, budget: int, mpp: float) -> GaussianBatch | None:
    """The bust beyond the photo's bottom cut: the photo layer's torso Gaussians on its lowest rows (`at_cut`
    [S, S] bool; `below_cut` [S, S] rows_to_cut_below), repeated `steps` times down the photo camera's image from
    the cut (at its own depth): the k-th FRINGE_START + k - 1 torso strides beyond it, opacity falling to 0 with
    a squared smoothstep over `bust_fringe_m`. At most `budget` Gaussians (thinned along the cut, wider); None
    when there is no cut torso or no budget. Their part, binding and opacity are those of the rows repeated.

    Where the photo cut the body off, the avatar ended in a hard straight edge with dark corners that any
    coloured background, wider view or smaller head shows (user17, render node at fov 45, session 17); a
    bust ends soft. Everything added lies beyond the photo: its own view changes only where the first row reaches
    back over the cut (self frame 0 -0.07 .. +0.03 dB, session 18)."""
    rows = np.flatnonzero(batch.part[:n_photo] == PART_TORSO)
    i, j, z, inside = scene.project(batch.means[rows].astype(np.float64))
    on = inside & at_cut[i, j]
    rows, z, j, d = rows[on], z[on], j[on], below_cut[i[on], j[on]]
    per = budget // max(steps, 1)
    if not len(rows) or per < 1:
        return None
    # the colours smoothed along the cut, FRINGE_BLUR Gaussians (repeated as they are, the last row's detail ran
    # down in streaks)
    order = np.argsort(j, kind="stable")
    rows, z, j, d = rows[order], z[order], j[order], d[order]
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / FRINGE_BLUR) ** 2)
    colors = np.stack([np.convolve(np.pad(batch.colors[rows, c].astype(np.float64), 6, mode="edge"),
                                   kernel / kernel.sum(), "valid") for c in range(3)], 1)
    # evenly thinned along the cut to the budget (the rows nearest to evenly spaced columns), the discs as much
    # wider (thinned in their order, a column's two rows went together: stripes)
    wide, across = 1.0, np.zeros(len(rows))
    if len(rows) > per:
        target = np.linspace(j[0], j[-1], per)
        at = np.clip(np.searchsorted(j, target), 1, max(len(j) - 1, 1))
        at -= (target - j[at - 1] < j[np.minimum(at, len(j) - 1)] - target).astype(np.int64)
        keep = np.unique(at)
        wide = max(1.0, (j[-1] - j[0] + 1) / len(keep) / cfg.torso_stride)
        # moved across onto evenly spaced columns (the nearest ones lay 3 and 6 px apart: stripes)
        across = np.linspace(j[0], j[-1], len(keep)) - j[keep]
        rows, z, j, d, colors = rows[keep], z[keep], j[keep], d[keep], colors[keep]
    step_m = cfg.torso_stride * mpp  # a stride down the image at the head's depth (at each one's own depth
    # below; half strides doubled the Gaussians taken from the photo layer: frame 0 of sadtalker -0.10 dB)
    down = scene.R.T @ np.array([0.0, 1.0, 0.0])  # the photo camera's image down in the head frame
    k = np.repeat(np.arange(1, steps + 1), len(rows))
    tile = np.tile(np.arange(len(rows)), steps)
    out = batch.take(np.tile(rows, steps))
    out.colors = np.tile(colors, (steps, 1)).astype(out.colors.dtype)
    depth_scale = (z / scene.t[2])[tile]
    # from the cut on, not from each one's own row: a disc reaching back over the photo changed frame 0
    # (self lp_d0 -0.16 dB when each was repeated from its own row)
    shift = (d[tile] * mpp + (FRINGE_START + k - 1) * step_m) * depth_scale
    right = scene.R.T @ np.array([1.0, 0.0, 0.0])
    out.means = (out.means + shift[:, None] * down + (across[tile] * mpp * depth_scale)[:, None] * right).astype(
        out.means.dtype)
    # discs facing the photo camera, FRINGE_SIGMA strides wide (the photo layer's own discs lie in the surface:
    # steep at the cut, their copies left gaps between the rows, stripes)
    sigma = step_m * depth_scale
    out.scales = np.stack([FRINGE_SIGMA[0] * wide * sigma, FRINGE_SIGMA[1] * sigma, out.scales.min(1)], 1).astype(
        out.scales.dtype)
    out.quats = np.broadcast_to(matrix_to_quat(scene.R.T), out.quats.shape).astype(out.quats.dtype)
    out.normals = np.broadcast_to(-scene.R[2], out.normals.shape).astype(out.normals.dtype)
    # squared: the copies overlap (each covers ~2 steps), so their coverage falls later than each one's opacity
    out.opacities = (out.opacities * (1.0 - smoothstep(0.0, cfg.bust_fringe_m, k * step_m)) ** 2).astype(
        out.opacities.dtype)
    return out


def with_bust_fringe(cfg, batch: GaussianBatch, n_photo: int, first: int, n_hidden: int, scene: Scene,
                     at_cut: np.ndarray, below_cut: np.ndarray, fringe_steps: int, fringe_budget: int, mpp: float):
    """batch with the bust fringe (`bust_fringe`: fringe_steps rows below the cut, at most fringe_budget Gaussians;
    0: none) appended, its Gaussians traded for the hidden back's (`back_blocks` among batch rows first .. first +
    n_hidden, each block merged into its first row) -> (batch, n_fringe: the fringe's Gaussians, 0 without one)."""
    n_fringe = 0
    if fringe_budget:  # its Gaussians traded for the hidden back's (the photo layer's sampling and refinement
        # above are those of an avatar without it: taken from the photo layer, they moved lp_d9's reader
        # jawOpen 0.18 -> 0.25 and the cross brow -0.014, session 17); appended, the photo layer keeps its rows
        blocks = back_blocks(cfg, batch, first, first + n_hidden, scene)
        fringe = bust_fringe(cfg, batch, n_photo, scene, at_cut, below_cut, fringe_steps,
                             min(fringe_budget, sum(len(b) - 1 for b in blocks)), mpp)
        if fringe is not None:
            n_fringe = len(fringe)
            keep = np.ones(len(batch), bool)
            for b in blocks:  # each block's Gaussians merged into its first one, until the fringe's are freed
                if (~keep).sum() >= n_fringe:
                    break
                batch.means[b[0]] = batch.means[b].mean(0)
                batch.colors[b[0]] = batch.colors[b].mean(0)
                batch.scales[b[0], :2] *= np.sqrt(len(b))  # as much area as the block's
                keep[b[1:]] = False
            batch = GaussianBatch.concat([batch.take(keep), fringe])
    return batch, n_fringe
