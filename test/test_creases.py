"""The photo's expression creases taken out of the avatar's colours (core/reconstruct/creases.py)."""

import numpy as np
import pytest
from conftest import shared

MPP = 0.0008  # metres per pixel, about mesh_fit's at the head's depth (512 px photos)


def _canonical_face():
    """[478, 3] MediaPipe's canonical face (with irises), metres of the head frame (y down)."""
    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float)
    return v * np.array([0.01, -0.01, -0.01])


def _skin(seed=0, size=128):
    """[S, S, 3] a skin patch with a fine texture (pores: +-0.02) and two vertical creases 3 px wide, 30 % darker,
    at x = 40 and x = 100."""
    rng = np.random.default_rng(seed)
    img = np.array([0.8, 0.6, 0.5], np.float32) * (1 + 0.025 * rng.standard_normal((size, size, 1))).astype(np.float32)
    for x in (40, 100):
        img[:, x - 1:x + 2] *= 0.7
    return np.clip(img, 0, 1)


def test_a_crease_where_the_expression_was_takes_the_skin_tone_and_keeps_its_texture():
    """The crease inside the expression's region takes the local tone (its colour at the crease's scale, not its
    pores) with the whole lift, half way with the default CreaseConfig.lift 0.5; the same crease outside the
    region, and every pixel off the creases, stay exactly as they were."""
    import cv2

    from gaussian_head_ros.core.reconstruct.creases import CreaseConfig, crease_blend, without_creases
    from gaussian_head_ros.core.colour import LUMA

    photo = _skin()
    skin = np.ones(photo.shape[:2], bool)
    region = np.zeros(photo.shape[:2], np.float32)
    region[:, :70] = 1.0  # the expression moved the left half's skin
    blend, shift = crease_blend(photo, skin, np.zeros_like(skin), region, MPP, CreaseConfig(lift=1.0))
    out = without_creases(photo, blend, shift)
    half = without_creases(photo, *crease_blend(photo, skin, np.zeros_like(skin), region, MPP, CreaseConfig()))
    rows = slice(20, 108)
    tone = float(np.median(photo[rows, 50:60] @ LUMA))

    def crease_luma(img, x):
        return float(np.mean(cv2.GaussianBlur(img, (0, 0), 1.0)[rows, x] @ LUMA))

    assert crease_luma(photo, 40) < 0.8 * tone  # the photo's crease
    assert crease_luma(out, 40) == pytest.approx(tone, rel=0.04)  # lifted to the tone
    assert crease_luma(half, 40) == pytest.approx(0.5 * (tone + crease_luma(photo, 40)), rel=0.04)  # half way
    assert np.array_equal(out[:, 75:], photo[:, 75:])  # outside the region: the photo itself
    assert np.array_equal(out[:, 50:60], photo[:, 50:60])  # plain skin between: untouched
    # the pores ride on top: the crease's fine texture is the photo's
    fine = lambda img: img[rows, 40] - cv2.GaussianBlur(img, (0, 0), 1.0)[rows, 40]  # noqa: E731
    assert np.corrcoef(fine(out)[:, 1], fine(photo)[:, 1])[0, 1] > 0.9


def test_a_relaxed_photo_and_the_lips_rim_are_left_as_they_are():
    """Nothing moved (a relaxed mouth: expression_region all 0) -> the photo exactly; the lips (darker, red) are
    not creases, and neither is the skin right at their rim."""
    from gaussian_head_ros.core.reconstruct.creases import (CreaseConfig, crease_blend, expression_region,
                                                            without_creases)

    V = _canonical_face()
    assert not expression_region(V, V).any()
    photo = _skin(1)
    skin = np.ones(photo.shape[:2], bool)
    lips = np.zeros_like(skin)
    lips[60:80, 20:60] = True
    photo[lips] = [0.6, 0.3, 0.3]
    skin &= ~lips
    blend, shift = crease_blend(photo, skin, lips, np.zeros(skin.shape, np.float32), MPP)
    assert np.array_equal(without_creases(photo, blend, shift), photo)
    blend, shift = crease_blend(photo, skin, lips, np.ones(skin.shape, np.float32), MPP, CreaseConfig())
    assert blend[lips].max() == 0 and blend[59, 25:55].max() == 0 and blend[80, 25:55].max() == 0  # lip_margin_m
    assert blend[:, 40].mean() > 0.25  # the crease above and below the lips is still found (half lift)


def test_the_region_is_the_moved_skin_round_the_mouth_below_the_nose():
    """A smile's displacement (mouth corners out and up, spread over the cheeks) gives a region near the lips,
    below the nose tip; the brows' skin, which the brows' expression moves, is not in it."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.reconstruct.creases import expression_region

    rest = _canonical_face()
    photo = rest.copy()
    for c in (lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L):  # corners 6 mm out and up, the skin within 15 mm with them
        d = np.linalg.norm(rest - rest[c], axis=1)
        photo += np.clip(1 - d / 0.015, 0, 1)[:, None] * np.array([np.sign(rest[c, 0]) * 0.005, -0.003, 0.0])
    brow = list(lmk.BROW_R + lmk.BROW_L)
    photo[brow, 1] -= 0.004  # raised brows
    w = expression_region(photo, rest)
    assert w[[lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L]].min() > 0.9
    assert w[brow].max() == 0 and w[lmk.NOSE_TIP] == 0 and w[rest[:, 1] < rest[lmk.NOSE_TIP, 1]].max() == 0


def test_the_masked_blur_is_the_mean_of_the_masked_pixels_around_each_pixel():
    """surfaces.masked_blur, the one normalised masked blur (creases' tone, lips' skin tone, completion's face light;
    lips23 wrote a third copy inline, review23): inside the mask a flat colour stays that colour however sharp the
    mask's edge, pixels outside the mask do not leak in (a black band beside it), a pixel far from every masked one is
    0, and the shape follows the image's ([S, S] and [S, S, 3]). The old code had no such function (ImportError)."""
    from gaussian_head_ros.core.reconstruct.surfaces import masked_blur

    mask = np.zeros((64, 64), bool)
    mask[:, :20] = True
    img = np.zeros((64, 64, 3), np.float32)
    img[mask] = (0.8, 0.6, 0.5)
    out = masked_blur(img, mask, 4.0)
    assert out.shape == img.shape and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :24], np.broadcast_to([0.8, 0.6, 0.5], (64, 24, 3)), atol=1e-5)
    assert np.all(out[:, 60:] == 0.0)  # no masked pixel within 10 sigma
    lum = masked_blur(img[..., 0], mask, 4.0)
    assert lum.shape == (64, 64)
    np.testing.assert_allclose(lum, out[..., 0], atol=1e-7)


def test_the_masked_blur_is_the_whole_images_blur_to_the_bit():
    """masked_blur blurs only the rows and columns within its kernel's reach of the mask (rec59: 0.4-0.8 x the pixels
    of a face's masks in a 512 px crop, an avatar byte for byte the same): the result is, byte for byte, the
    normalised convolution of the whole image (cv2.GaussianBlur over all of it), for masks anywhere (at the edges
    too), images of either shape, sizes not a multiple of the column block, and small and large sigmas; and any
    image's blur over that window (blur_window) is the whole image's at the mask's pixels (refine_colours' residual).
    A window starting at any column gave 1-3 ulp differences (OpenCV's SIMD lanes run from the row's start)."""
    import cv2

    from gaussian_head_ros.core.reconstruct.surfaces import blur_window, masked_blur

    rng = np.random.default_rng(5)
    for size, channels, sigma in ((512, 3, 9.8), (512, 1, 20.0), (300, 3, 0.7), (197, 1, 3.0), (130, 3, 1.5),
                                  (512, 3, 8.0), (77, 1, 6.3)):
        shape = (size, size, channels) if channels == 3 else (size, size)
        img = rng.random(shape).astype(np.float32)
        for _ in range(3):
            mask = np.zeros((size, size), bool)
            y, x = rng.integers(0, size, 2)
            h, w = rng.integers(1, size // 2, 2)
            mask[y:y + h, x:x + w] = rng.random((min(h, size - y), min(w, size - x))) < 0.7
            m = mask.astype(np.float32)
            num = cv2.GaussianBlur(img.reshape(size, size, -1) * m[..., None], (0, 0), sigma).reshape(size, size, -1)
            whole = (num / np.maximum(cv2.GaussianBlur(m, (0, 0), sigma), 1e-6)[..., None]).reshape(shape)
            out = masked_blur(img, mask, sigma)
            assert out.dtype == np.float32 and out.tobytes() == whole.tobytes(), (size, channels, sigma)
            win = blur_window(mask, sigma)  # any image: its blur over the window at the mask's pixels (refine_colours)
            at = np.nonzero(mask[win])
            seen = cv2.GaussianBlur(img[win], (0, 0), sigma)[at]
            assert seen.tobytes() == cv2.GaussianBlur(img, (0, 0), sigma)[np.nonzero(mask)].tobytes()
