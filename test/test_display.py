"""core/display.py: the face display's framing on panels of any aspect ratio (no ROS)."""

import math

import numpy as np
import pytest

from conftest import shared
from gaussian_head_ros.core.display import HEAD_BELOW_MIDDLE, TORSO_INSET, display_intrinsics, torso_bottom, torso_means
from gaussian_head_ros.core.render import intrinsics_from_fov

# panels of telepresence robots, tablets and monitors: portrait, square, landscape
PORTRAIT = [(480, 800), (600, 1024), (800, 1280)]
NOT_PORTRAIT = [(512, 512), (720, 720), (800, 480), (1024, 600), (1280, 800), (96, 80)]


@pytest.mark.parametrize("size", NOT_PORTRAIT)
@pytest.mark.parametrize("bottom", [None, 0.1, 0.42])
def test_square_and_landscape_displays_keep_the_vertical_field_of_view_bit_for_bit(size, bottom):
    """fov_deg across the shorter side is the vertical fov there: the render node's 512x512 (and every landscape
    panel's) K is the one it drew with before, whatever the avatar's torso."""
    w, h = size
    for fov in (30.0, 12.5, 60.0):
        k = display_intrinsics(fov, w, h, bottom)
        assert k.dtype == np.float32
        np.testing.assert_array_equal(k, intrinsics_from_fov(fov, w, h))


@pytest.mark.parametrize("size", PORTRAIT)
def test_a_portrait_panel_takes_the_field_of_view_across_its_width_and_places_the_head(size):
    w, h = size
    t = math.tan(math.radians(30.0) / 2)
    f = 0.5 * w / t
    centred = display_intrinsics(30.0, w, h)  # no torso: the head frame's origin at the middle
    np.testing.assert_allclose(centred, [[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], rtol=1e-6)
    half = 0.5 * h / f
    # a torso reaching a little below the middle's level: the panel's bottom edge TORSO_INSET inside where it ends
    bottom = half * (1 - HEAD_BELOW_MIDDLE) + TORSO_INSET
    k = display_intrinsics(30.0, w, h, bottom)
    assert (h - k[1, 2]) / k[1, 1] == pytest.approx(bottom - TORSO_INSET, rel=1e-5)
    assert k[0, 0] == k[1, 1] == pytest.approx(f, rel=1e-6) and k[0, 2] == w / 2
    # a torso reaching far down: the head square's top at the panel's top, no higher
    k = display_intrinsics(30.0, w, h, 5.0)
    assert k[1, 2] / k[1, 1] == pytest.approx(t, rel=1e-5)
    # the torso's cut brought to the bottom edge by the head's centre going HEAD_BELOW_MIDDLE below the middle
    k = display_intrinsics(30.0, w, h, half * (1 - 2 * HEAD_BELOW_MIDDLE) + 1e-6)
    assert (k[1, 2] - h / 2) / h == pytest.approx(HEAD_BELOW_MIDDLE, abs=1e-5)
    # a torso ending higher (a photo cut at the chest): no lower than that, the head centred
    for b in (half * (1 - 2 * HEAD_BELOW_MIDDLE) - 1e-3, 0.0):
        np.testing.assert_array_equal(display_intrinsics(30.0, w, h, b), centred)


def test_torso_bottom_is_the_lower_edge_of_the_torso_seen_from_the_display_camera():
    from gaussian_head_ros.core.avatar import PART_FACE, PART_TORSO

    rng = np.random.default_rng(0)
    torso = rng.uniform([-0.2, 0.1, 0.0], [0.2, 0.24, 0.0], (4000, 3))  # a flat torso at the head's depth
    means = np.concatenate([torso, rng.normal(0, 0.05, (1000, 3))])
    part = np.concatenate([np.full(4000, PART_TORSO), np.full(1000, PART_FACE)])
    logits = np.zeros(5000)
    logits[:10] = -3.0  # faint (a bust fringe's): not read
    picked = torso_means(means, part, logits)
    assert picked.shape == (3990, 3)
    assert torso_bottom(picked, 0.6) == pytest.approx(0.24 / 0.6, abs=0.004)
    assert torso_bottom(picked, 1.2) == pytest.approx(0.24 / 1.2, abs=0.004)
    assert torso_bottom(np.zeros((0, 3)), 0.6) is None
    with pytest.raises(ValueError, match="distance"):
        torso_bottom(picked, 0.0)
    with pytest.raises(ValueError, match="field of view"):
        display_intrinsics(0.5, 480, 800)


@pytest.fixture(scope="module")
def business_person():
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct import get_reconstructor

    photo = read_image(str(shared("portraits", "business_person.png")))
    with get_reconstructor("mesh_fit") as rec:
        return rec.reconstruct(photo, operator_id="business_person").avatar


def _render(avatar, k, w, h, yaw_deg=0.0, pitch_deg=0.0, head_only=False):
    """The avatar driven at yaw_deg / pitch_deg (rest otherwise) from the render node's camera (head_viewmat(0.6))
    -> alpha [H, W]; head_only: the torso's Gaussians left out."""
    from gaussian_head_ros.core.avatar import PART_TORSO
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.render import head_viewmat, rasterize

    view = head_viewmat(0.6)
    control = FaceControl(face_detected=True, confidence=1.0,
                          rotation=euler_to_quat(yaw_deg, pitch_deg, 0).astype(np.float32))
    p = Driver(avatar).drive(control, viewmat=view)
    opacities = np.where(avatar.part == PART_TORSO, 0.0, p.opacities).astype(np.float32) if head_only else p.opacities
    return rasterize(p.means, p.quats, p.scales, opacities, p.colors, view, k, w, h, backend="cpu").alpha


@pytest.mark.parametrize("size", [(480, 800), (600, 1024)])
def test_a_portrait_panel_shows_the_whole_head_with_margin_and_the_torso_down_to_its_bottom(business_person, size):
    """user23 (s23): at 480x800 the head overflowed the width (the framing was the vertical fov: ears and hair cut
    at both sides) and the torso ended in a hard edge ~100 px above the bottom. Now the head (hair and ears: every
    part but the torso) lies inside the panel with a margin of at least 4 % of its width at the sides and the top,
    at rest, turned 30 degrees and tilted 20 degrees, and the torso covers the panel's bottom row in all of them (at
    HEAD_BELOW_MIDDLE 0.05 the torso covered 79 % of the bottom row at 600x1024, yaw 30: its cut rose into view)."""
    w, h = size
    a = business_person
    k = display_intrinsics(30.0, w, h, torso_bottom(torso_means(a.means, a.part, a.logit_opacities), 0.6))
    margin = 0.04 * w
    for yaw, pitch in ((0.0, 0.0), (30.0, 0.0), (-30.0, 0.0), (35.0, -12.0), (0.0, 20.0), (0.0, -20.0)):
        alpha = _render(a, k, w, h, yaw, pitch, head_only=True)
        ys, xs = np.nonzero(alpha > 0.1)
        assert xs.min() >= margin and xs.max() <= w - 1 - margin and ys.min() >= margin, (
            f"yaw {yaw} pitch {pitch}: the head spans x {xs.min()}..{xs.max()}, y {ys.min()}.. of {w}x{h}")
        bottom_row = _render(a, k, w, h, yaw, pitch)[-1]
        assert np.mean(bottom_row > 0.5) > 0.9, (
            f"yaw {yaw} pitch {pitch}: the torso covers {np.mean(bottom_row > 0.5):.0%} of the bottom row")
