"""Evaluation metrics against values computed by hand."""

import math

import numpy as np
import pytest

from gaussian_head_ros.core.control import euler_to_quat, quat_to_matrix
from gaussian_head_ros.core.metrics import correlation, landmark_error, psnr, rotation_error_deg, ssim


def test_psnr_known_values_and_mask():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:5] = 10  # mse 100 on the top half
    assert psnr(b, a) == pytest.approx(10 * math.log10(255 ** 2 / 50))
    mask = np.zeros((10, 10), bool)
    mask[5:] = True
    assert psnr(b, a, mask) == float("inf")
    mask[:] = False
    with pytest.raises(ValueError, match="empty mask"):
        psnr(b, a, mask)


def test_ssim_identity_and_noise():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    assert ssim(noisy, a) < 0.9


def test_landmark_error_is_normalised():
    t = np.zeros((478, 3))
    t[468, 0], t[473, 0] = 0, 60  # iris centres 60 px apart
    p = t.copy()
    p[:, 0] += 6
    assert landmark_error(p, t) == pytest.approx(0.1)


def test_rotation_error_and_correlation():
    r1 = quat_to_matrix(euler_to_quat(10, 0, 0))
    r2 = quat_to_matrix(euler_to_quat(25, 0, 0))
    assert rotation_error_deg(r1, r2) == pytest.approx(15, abs=1e-6)
    x = np.arange(10.0)
    assert correlation(x, 2 * x + 1) == pytest.approx(1.0)
    assert correlation(x, np.ones(10)) == 0.0
