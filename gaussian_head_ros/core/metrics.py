"""Image and face metrics for self-reenactment evaluation (all computed inside a head mask)."""

from __future__ import annotations

import math

import numpy as np

from gaussian_head_ros.core import landmarks as lmk


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """[H, W, 3] images in [0, 255] or [0, 1] (same range for both) -> PSNR in dB over the mask's pixels (the range
    told by the whole images' largest value). Only the mask's pixels are cast to float64 and compared (the same
    figure, to the bit: rec59)."""
    p, t = np.asarray(pred), np.asarray(target)
    peak = 255.0 if max(float(p.max(initial=0)), float(t.max(initial=0))) > 1.5 else 1.0
    if mask is not None:
        m = np.asarray(mask, bool)
        if not m.any():
            raise ValueError("empty mask: no pixels to compare")
        p, t = p[m], t[m]
    mse = float(((np.asarray(p, np.float64) - np.asarray(t, np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean structural similarity (Gaussian window, sigma 1.5) of [H, W, 3] images, averaged over the mask."""
    from skimage.metrics import structural_similarity

    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    rng = 255.0 if max(p.max(initial=0), t.max(initial=0)) > 1.5 else 1.0
    _, smap = structural_similarity(p, t, channel_axis=2, data_range=rng, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, full=True)
    smap = smap.mean(axis=2)
    if mask is not None:
        m = np.asarray(mask, bool)
        if not m.any():
            raise ValueError("empty mask: no pixels to compare")
        return float(smap[m].mean())
    return float(smap.mean())


def landmark_error(pred_px: np.ndarray, target_px: np.ndarray, left_eye: int = lmk.IRIS_CENTER_R,
                   right_eye: int = lmk.IRIS_CENTER_L) -> float:
    """Mean 2D landmark distance normalised by the target's inter-ocular distance (iris centres by default)."""
    p, t = np.asarray(pred_px, np.float64)[:, :2], np.asarray(target_px, np.float64)[:, :2]
    n = min(len(p), len(t))
    iod = (np.linalg.norm(t[left_eye] - t[right_eye]) if max(left_eye, right_eye) < n
           else np.linalg.norm(t[lmk.EYE_OUTER_L] - t[lmk.EYE_OUTER_R]))
    return float(np.linalg.norm(p[:n] - t[:n], axis=1).mean() / max(iod, 1e-6))


def rotation_error_deg(r_pred: np.ndarray, r_target: np.ndarray) -> float:
    """Geodesic angle between two [3, 3] rotations, degrees."""
    c = (np.trace(np.asarray(r_pred).T @ np.asarray(r_target)) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def correlation(a, b) -> float:
    """Pearson correlation; 0 when either series is constant (nothing to follow)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation (Pearson r of the two series' ranks, ties averaged: scipy.stats.rankdata)
    over the frames where both are finite: 1 when b rises whenever a does, however bent the curve between them
    (a render whose jaw follows the operator's in order but reads small openings at a floor: Pearson 0.64,
    Spearman 0.84 on business_person x sadtalker, session 62). 0 when either series is constant or fewer than
    3 frames are finite, as `correlation`."""
    from scipy.stats import rankdata

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    return correlation(rankdata(a[ok]), rankdata(b[ok]))


def slope(x, y) -> float:
    """Least-squares slope b of y ~ a + b x over the frames where both are finite: how far y moves per
    unit of x (an amplitude, which Pearson r does not see; y following x at half the size has r 1, slope
    0.5). 0 when y is constant; raises ValueError when x is constant (nothing to fit against) or fewer
    than 3 frames are finite."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or x.std() < 1e-9:
        raise ValueError(f"no slope: {len(x)} finite frames, x std {x.std() if len(x) else 0.0:.2g}")
    xc = x - x.mean()
    return float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))
