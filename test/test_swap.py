"""core/swap.py, the face display's transition on an operator swap (a dip), without ROS: never two faces in one
frame, each face's weight continuous (a swap during a dip too), a cut where asked, and the weighting of one frame
against the background as the rasterizer draws it."""

import numpy as np
import pytest

from gaussian_head_ros.core.swap import Dip, ease, fade_to_background, start_dip

OLD, MID, NEW = "old", "mid", "new"  # avatars are opaque to the rule


def _weights(dip: Dip, avatars, t0: float, t1: float, step_s: float = 1e-3) -> np.ndarray:
    """[T, len(avatars)] the weight each avatar is shown with, every step_s from t0 to t1."""
    return np.array([[dip.weight(a, t) for a in avatars] for t in np.arange(t0, t1, step_s)])


def _cross_fade_weights(t, start_s: float, duration_s: float) -> tuple[float, float]:
    """render_node's rule before swap56, for comparison: (old, new) weights of a pixel-by-pixel blend."""
    u = min(max((t - start_s) / duration_s, 0.0), 1.0)
    return 1.0 - u, u


def test_a_dip_never_shows_two_faces_at_once_and_is_continuous():
    """The swap's figure: over the whole transition, max of min(old's weight, new's weight) is 0 (a cross-fade, the
    rule before swap56: 0.5, the frame halfway through showing both faces half and half: the ghosted double face seen
    on business_person -> obama_official). Each weight changes by at most ~1.5 x the step's share of a half (no jump:
    smoothstep's steepest slope), the old face is full at the swap, the new one full at the end, and the bottom
    (neither) is one instant."""
    dip = start_dip(None, OLD, NEW, now_s=10.0, duration_s=0.5)
    w = _weights(dip, (OLD, NEW), 9.9, 10.7)
    assert w.min(1).max() == 0.0, "a frame of the dip shows both faces"
    before = np.array([_cross_fade_weights(t, 10.0, 0.5) for t in np.arange(9.9, 10.7, 1e-3)])
    assert before.min(1).max() == pytest.approx(0.5, abs=1e-3)  # what the figure says of a cross-fade
    assert np.abs(np.diff(w, axis=0)).max() <= 1.5 * 1e-3 / 0.25 + 1e-9, "a face's weight jumps"
    assert dip.weight(OLD, 10.0) == 1.0 and dip.weight(NEW, 10.0) == 0.0
    assert dip.weight(OLD, 10.125) == pytest.approx(0.5) and dip.weight(NEW, 10.375) == pytest.approx(0.5)
    assert dip.bottom_s == pytest.approx(10.25) and dip.end_s == pytest.approx(10.5)
    assert dip.at(10.2) == (OLD, False) and dip.at(10.3) == (NEW, False) and dip.at(10.5) == (NEW, True)
    assert dip.weight(NEW, 10.5) == 1.0 and dip.weight(MID, 10.3) == 0.0  # an avatar not in the dip: never shown


@pytest.mark.parametrize("swap_again_s", [0.05, 0.2, 0.25, 0.3, 0.45])
def test_a_swap_during_a_dip_fades_out_what_is_shown_from_its_weight(swap_again_s):
    """A third avatar arrives `swap_again_s` into a 0.5 s dip from OLD to MID: the face shown then (OLD while it fades
    out, MID once it fades in) goes on from its weight without a jump and fades out, the newest fades in, never two
    at once; an avatar never shown (MID, when the swap comes before the bottom) is never drawn."""
    first = start_dip(None, OLD, MID, 0.0, 0.5)
    shown, _ = first.at(swap_again_s)
    level = first.weight(shown, swap_again_s)
    second = start_dip(first, MID, NEW, swap_again_s, 0.5)  # (render_node passes the newest loaded: MID)
    assert second.old is shown and second.new is NEW
    assert second.weight(shown, swap_again_s) == pytest.approx(level, abs=1e-9), "the face shown jumps at the swap"
    w = _weights(second, (OLD, MID, NEW), swap_again_s, swap_again_s + 0.6)
    assert (np.sort(w, 1)[:, -2] == 0.0).all(), "a frame shows two faces"
    if shown is OLD:
        assert w[:, 1].max() == 0.0, "the avatar swapped past before it was shown is drawn"
    assert second.end_s <= swap_again_s + 0.5 + 1e-9 and second.weight(NEW, second.end_s) == 1.0


def test_a_cut_where_asked_or_from_the_placeholder():
    """crossfade_s 0: a cut (no dip); the first avatar after the placeholder (nothing shown): a cut too; a swap after
    a dip is over: a full dip from the avatar shown."""
    assert start_dip(None, OLD, NEW, 1.0, 0.0) is None
    assert start_dip(None, None, NEW, 1.0, 0.5) is None
    over = start_dip(None, OLD, MID, 0.0, 0.5)
    again = start_dip(over, MID, NEW, 2.0, 0.5)
    assert again.old is MID and again.level0 == 1.0 and again.start_s == 2.0


def test_ease_is_a_smoothstep_from_0_to_1():
    assert ease(-1.0) == 0.0 and ease(0.0) == 0.0 and ease(0.5) == 0.5 and ease(1.0) == 1.0 and ease(2.0) == 1.0
    x = np.linspace(0, 1, 101)
    assert (np.diff([ease(v) for v in x]) >= 0).all()


def test_fade_to_background_weighs_one_frame_against_the_background_the_rasterizer_draws():
    """Weight 1: the frame itself (no copy); 0: the background exactly as the rasterizer fills it (render.base's
    to_rgb8 of the `background` parameter); between: background + weight x (frame - background), rounded, per
    channel; a weight outside 0..1 is refused with the value."""
    from gaussian_head_ros.core.render.base import to_rgb8

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    bg = np.array([0.1, 1.0, 0.502], np.float32)
    assert fade_to_background(img, bg, 1.0) is img
    empty = to_rgb8(np.broadcast_to(bg, (24, 32, 3)))
    assert np.array_equal(fade_to_background(img, bg, 0.0), empty)
    bg8 = empty[0, 0].astype(np.float64)
    for weight in (0.01, 0.3, 0.5, 0.99):
        want = np.floor(bg8 + (img.astype(np.float64) - bg8) * weight + 0.5)
        got = fade_to_background(img, bg, weight)
        assert got.dtype == np.uint8 and got.shape == img.shape
        assert np.abs(got - want).max() <= 1, weight  # (float32 table: a half may round the other way)
    for weight in (-0.1, 1.5):
        with pytest.raises(ValueError, match=str(weight)):
            fade_to_background(img, bg, weight)


def test_every_frame_of_a_dip_shows_one_avatar_where_a_cross_fade_showed_two():
    """A render-based figure: two synthetic avatars of different colour drawn as render_node draws a dip (Dip.at: the
    one avatar, fade_to_background by Dip.weight) at 30 FPS through a 0.5 s swap; each frame, less the background,
    split by least squares on the two avatars' full pictures: the smaller share is below 0.02 in every frame of the
    dip (measured 0.000-0.004), and above 0.4 halfway through the cross-fade render_node drew before swap56 (both
    drawn, blended pixel by pixel)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.display import display_intrinsics
    from gaussian_head_ros.core.render import head_viewmat, rasterize
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    w = h = 64
    bg = np.array([0.0, 0.0, 0.0], np.float32)
    view, k = head_viewmat(0.6), display_intrinsics(30.0, w, h)

    def picture(avatar):  # [H, W, 3] uint8 at rest
        p = Driver(avatar).drive(FaceControl(face_detected=True, confidence=1.0), viewmat=view)
        out = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view, k, w, h, bg, backend="cpu").image
        return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)

    a, b = synthetic_avatar(3000, seed=1, operator_id="a"), synthetic_avatar(3000, seed=2, operator_id="b")
    b.sh[:, 0, 0] += 1.5  # a redder face: far from a's picture
    pictures = {"a": picture(a), "b": picture(b)}
    basis = np.stack([pictures["a"].reshape(-1), pictures["b"].reshape(-1)], 1).astype(np.float64)
    dip = start_dip(None, "a", "b", 0.0, 0.5)
    times = np.arange(0.0, 0.5 + 1e-9, 1 / 30)
    shares = []
    for t in times:
        shown, _ = dip.at(t)
        frame = fade_to_background(pictures[shown], bg, dip.weight(shown, t))
        shares.append(np.linalg.lstsq(basis, frame.reshape(-1).astype(np.float64), rcond=None)[0])
    shares = np.array(shares)  # [T, 2]
    assert shares.min(1).max() < 0.02, shares.round(3).tolist()
    assert shares[0] == pytest.approx([1, 0], abs=0.02) and shares[-1] == pytest.approx([0, 1], abs=0.02)
    u = 0.5  # halfway through a cross-fade
    blend = (pictures["a"] * (1 - u) + pictures["b"] * u + 0.5).astype(np.uint8)
    ghost = np.linalg.lstsq(basis, blend.reshape(-1).astype(np.float64), rcond=None)[0]
    assert ghost.min() > 0.4, ghost
