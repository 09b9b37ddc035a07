"""core/display.py: the face display's framing on panels of any aspect ratio (no ROS)."""

import math

import numpy as np
import pytest

from conftest import mesh_fit_result, shared
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

    photo = read_image(str(shared("portraits", "business_person.png")))
    return mesh_fit_result(photo, operator_id="business_person").avatar


def _render(avatar, k, w, h, yaw_deg=0.0, pitch_deg=0.0, head_only=False, keep=None):
    """The avatar driven at yaw_deg / pitch_deg (rest otherwise) from the render node's camera (head_viewmat(0.6))
    -> alpha [H, W]; head_only: the torso's Gaussians left out; keep [N] bool: only those Gaussians drawn."""
    from gaussian_head_ros.core.avatar import PART_TORSO
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.render import head_viewmat, rasterize

    view = head_viewmat(0.6)
    control = FaceControl(face_detected=True, confidence=1.0,
                          rotation=euler_to_quat(yaw_deg, pitch_deg, 0).astype(np.float32))
    p = Driver(avatar).drive(control, viewmat=view)
    opacities = np.where(avatar.part == PART_TORSO, 0.0, p.opacities).astype(np.float32) if head_only else p.opacities
    if keep is not None:
        opacities = np.where(keep, opacities, 0.0).astype(np.float32)
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


# ---------------------------------------------------------------------------------------------------------------
# framing 'head': each avatar by its own head

def test_head_points_are_the_opaque_head_gaussians_down_to_the_chin():
    """The head: not the torso, opaque, no lower than the template's lowest vertex (the chin): hair lying on the
    shoulders or a hand below the chin does not widen it."""
    from gaussian_head_ros.core.avatar import PART_FACE, PART_STATIC, PART_TORSO
    from gaussian_head_ros.core.display import HEAD_EDGE_SIGMA, head_points

    means = np.array([[0.0, -0.1, 0.0], [0.05, 0.09, 0.0], [0.2, 0.12, 0.0], [0.0, 0.0, 0.0], [0.3, 0.0, 0.0],
                      [0.0, 0.05, -0.08]])
    part = np.array([PART_STATIC, PART_STATIC, PART_STATIC, PART_TORSO, PART_STATIC, PART_FACE])
    logits = np.array([2.0, 2.0, 2.0, 2.0, -1.0, 2.0])  # the 5th faint
    scales = np.log(np.full((6, 3), 0.001))
    scales[0, 1] = np.log(0.004)  # its largest scale gives its reach
    template = np.array([[0.0, -0.05, -0.09], [0.0, 0.09, -0.05]])  # the chin at y 0.09
    pts, reach = head_points(means, part, logits, scales, template)
    np.testing.assert_array_equal(pts, means[[0, 1, 5]])  # not the hair below the chin, the torso, the faint one
    np.testing.assert_allclose(reach, HEAD_EDGE_SIGMA * np.array([0.004, 0.001, 0.001]), rtol=1e-6)
    pts, _ = head_points(means, part, logits, scales, np.zeros((0, 3)))  # no template: every row
    np.testing.assert_array_equal(pts, means[[0, 1, 2, 5]])


def test_head_box_is_the_envelope_over_the_head_turns():
    """Points at the back of the head's sides seen from 0.6 m: turned by yaw they come further out; the box is the
    extremes over HEAD_TURNS_DEG, each point widened by its reach, the bottom CHIN_DROP_M lower."""
    from gaussian_head_ros.core.control import euler_to_quat, quat_to_matrix
    from gaussian_head_ros.core.display import CHIN_DROP_M, HEAD_TURNS_DEG, head_box

    pts = np.array([[0.09, 0.0, 0.08], [-0.09, 0.0, 0.08], [0.0, -0.12, 0.0], [0.0, 0.1, -0.05]])  # ears behind
    reach = np.array([0.0, 0.0, 0.01, 0.0])
    box = head_box(pts, reach, 0.6)
    want = [np.inf, np.inf, -np.inf, -np.inf]
    for t in HEAD_TURNS_DEG:
        q = pts @ quat_to_matrix(euler_to_quat(*t).astype(np.float64)).T
        z = q[:, 2] + 0.6
        lo, hi = (q[:, :2] - reach[:, None]) / z[:, None], (q[:, :2] + reach[:, None]) / z[:, None]
        want = [min(want[0], lo[:, 0].min()), min(want[1], lo[:, 1].min()), max(want[2], hi[:, 0].max()),
                max(want[3], hi[:, 1].max())]
    want[3] += CHIN_DROP_M / 0.6
    np.testing.assert_allclose(box, want, rtol=1e-12)
    rest = head_box(pts, reach, 0.6, turns=[(0.0, 0.0, 0.0)])
    assert box[0] < rest[0] and box[1] < rest[1] and box[2] > rest[2] and box[3] > rest[3]  # turned: further out
    assert head_box(np.zeros((0, 3)), np.zeros(0), 0.6) is None
    assert head_box(np.array([[0.0, 0.0, -1.0]]), np.zeros(1), 0.6, turns=[(0, 0, 0)]) is None  # behind the camera
    with pytest.raises(ValueError, match="distance"):
        head_box(pts, reach, 0.0)


@pytest.mark.parametrize("size", PORTRAIT + NOT_PORTRAIT)
def test_head_intrinsics_fill_the_panel_with_the_box_centred_and_equal_margins(size):
    """The box fills HEAD_FILL of the tighter direction, its margins (1 - fill) / 2 of the shorter side; centred
    left-right; without a torso centred up and down."""
    from gaussian_head_ros.core.display import HEAD_FILL, head_intrinsics

    w, h = size
    box = np.array([-0.21, -0.26, 0.19, 0.20])  # a head a little right of the origin, hair above it
    k = head_intrinsics(box, w, h)
    assert k.dtype == np.float32
    left, top = k[0, 0] * box[:2] + k[[0, 1], 2]
    right, low = k[0, 0] * box[2:] + k[[0, 1], 2]
    margin = 0.5 * (1 - HEAD_FILL) * min(w, h)
    tightest = min(left, w - right, top, h - low)
    assert tightest == pytest.approx(margin, rel=1e-4)
    assert left >= margin - 1e-3 and w - right >= margin - 1e-3 and top >= margin - 1e-3 and h - low >= margin - 1e-3
    assert left == pytest.approx(w - right, abs=1e-3) and top == pytest.approx(h - low, abs=1e-3)
    assert k[0, 0] == k[1, 1]


def test_head_intrinsics_place_the_torso_cut_at_the_bottom_edge_where_they_can():
    """On a portrait panel: the box's top at the margin when the torso reaches below the bottom edge anyway; lowered
    to bring a shorter torso's cut (TORSO_INSET inside it) to the bottom edge; no lower than its centre
    HEAD_BELOW_MIDDLE below the middle (a photo cut at the chest)."""
    from gaussian_head_ros.core.display import HEAD_BELOW_MIDDLE, HEAD_FILL, TORSO_INSET, head_intrinsics

    w, h = 480, 800
    box = np.array([-0.2, -0.25, 0.2, 0.2])
    margin = 0.5 * (1 - HEAD_FILL) * w
    f = (w - 2 * margin) / 0.4
    top_row = lambda k: k[1, 1] * box[1] + k[1, 2]  # noqa: E731
    assert top_row(head_intrinsics(box, w, h, bottom=1.0)) == pytest.approx(margin, abs=1e-3)
    cut = 0.45  # the torso ends 0.45 image-plane units below the origin: the box's top lowered to bring it there
    k = head_intrinsics(box, w, h, bottom=cut)
    assert k[1, 1] * (cut - TORSO_INSET) + k[1, 2] == pytest.approx(h, abs=1e-3)
    assert top_row(k) > margin
    lowest = 0.5 * (h - f * 0.45) + HEAD_BELOW_MIDDLE * h
    for short in (0.3, 0.0):
        assert top_row(head_intrinsics(box, w, h, bottom=short)) == pytest.approx(lowest, abs=1e-3)
    assert top_row(head_intrinsics(box, w, h)) == pytest.approx(0.5 * (h - f * 0.45), abs=1e-3)  # no torso: centred


def test_head_intrinsics_refuse_what_frames_nothing():
    from gaussian_head_ros.core.display import head_intrinsics

    box = np.array([-0.2, -0.25, 0.2, 0.2])
    with pytest.raises(ValueError, match="fill"):
        head_intrinsics(box, 480, 800, fill=0.1)
    with pytest.raises(ValueError, match="size"):
        head_intrinsics(box, 0, 800)
    with pytest.raises(ValueError, match="empty"):
        head_intrinsics(np.array([0.1, 0.0, 0.1, 0.2]), 480, 800)


def test_the_command_line_framing_options_are_the_render_nodes():
    """`gaussian-head render` and `bench` write the framing's choices, range and default out (importing core loads
    numba); they are core.display's and render_node's."""
    from gaussian_head_ros.commands import FRAMING_ARGS
    from gaussian_head_ros.core.display import FRAMINGS, HEAD_FILL, HEAD_FILL_RANGE

    (choices, default), (lo, hi, fill) = FRAMING_ARGS
    assert tuple(choices) == FRAMINGS and default == FRAMINGS[0]
    assert (lo, hi, fill) == (*HEAD_FILL_RANGE, HEAD_FILL)
    pytest.importorskip("rclpy")
    from gaussian_head_ros.nodes.render_node import PARAMS

    assert PARAMS["framing"].default == default and PARAMS["head_fill"].default == fill


def test_fov_framing_is_the_framing_before_bit_for_bit(business_person):
    """framing 'fov' is display_intrinsics at fov_deg with the torso's cut, as the render node framed every avatar
    before; 'head' differs; another name is refused."""
    from gaussian_head_ros.core.display import AvatarFraming

    a = business_person
    framing = AvatarFraming.from_avatar(a)
    for w, h in PORTRAIT + NOT_PORTRAIT:
        before = display_intrinsics(30.0, w, h, torso_bottom(torso_means(a.means, a.part, a.logit_opacities), 0.6))
        np.testing.assert_array_equal(framing.intrinsics("fov", 30.0, w, h, 0.6), before)
        assert not np.array_equal(framing.intrinsics("head", 30.0, w, h, 0.6), before)
    with pytest.raises(ValueError, match="framing"):
        framing.intrinsics("fit", 30.0, 480, 800, 0.6)


@pytest.fixture(scope="module")
def framed_portraits(business_person):
    """business_person (short hair), lp_d8_man_glasses (tall curly hair: touched the top edge of 512x512 at fov 30),
    lp_d9_woman_turned (long hair over the shoulders), two_children_multiface (a child's small head)."""
    from gaussian_head_ros.core.imageio import read_image

    out = {"business_person": business_person}
    for name in ("lp_d8_man_glasses.jpg", "lp_d9_woman_turned.jpg", "two_children_multiface.jpeg"):
        photo = read_image(str(shared("portraits", name)))
        out[name.split(".")[0]] = mesh_fit_result(photo, operator_id=name.split(".")[0]).avatar
    return out


@pytest.mark.parametrize("name", ["business_person", "lp_d8_man_glasses", "lp_d9_woman_turned",
                                  "two_children_multiface"])
def test_each_head_fills_the_panel_whole_with_margins_at_every_turn(framed_portraits, name):
    """The render node's default framing ('head') on portrait panels (480x800, 600x1024), a landscape one (1024x600)
    and the default square (512x512): the head (hair and ears down to the chin: head_points' rows, every opacity)
    lies inside the panel with margins of at least 3 % of the shorter side at the sides, the top and the bottom, at
    rest, turned +-35, tilted +-20 and turned while tilted; and on a portrait panel it is not a small head in a wide
    panel: at its widest turns its side margins average at most 10 % of the width. At fov 30 (the framing before)
    business_person's were 17-18 % at 480x800 (82 px; the head spanned 57-59 % of the width), two_children_multiface's
    19-20 % (92 px), lp_d8_man_glasses's hair touched the top edge of 512x512 and 1024x600 (0 px) and lp_d9's came
    to 13 px at pitch 20 on 1024x600: those four fail on 636ca82's fov framing."""
    from gaussian_head_ros.core.avatar import PART_TORSO
    from gaussian_head_ros.core.display import AvatarFraming

    a = framed_portraits[name]
    framing = AvatarFraming.from_avatar(a)
    head = (a.part != PART_TORSO) & (a.means[:, 1] <= a.template_vertices[:, 1].max())
    for w, h in ((480, 800), (600, 1024), (1024, 600), (512, 512)):
        k = framing.intrinsics("head", 30.0, w, h, 0.6)
        least = 0.03 * min(w, h)
        margins = []
        for yaw, pitch in ((0.0, 0.0), (35.0, 0.0), (-35.0, 0.0), (0.0, 20.0), (0.0, -20.0), (35.0, -12.0)):
            ys, xs = np.nonzero(_render(a, k, w, h, yaw, pitch, keep=head) > 0.1)
            m = (int(xs.min()), int(w - 1 - xs.max()), int(ys.min()), int(h - 1 - ys.max()))
            assert min(m) >= least, (
                f"{w}x{h} yaw {yaw} pitch {pitch}: margins left/right/top/bottom {m} px, at least {least:.0f}")
            margins.append(m)
        if h > w:
            sides = (min(m[0] for m in margins) + min(m[1] for m in margins)) / 2
            assert sides <= 0.1 * w, f"{w}x{h}: side margins {sides:.0f} px at the widest turns: a small head"


def test_gaussian_head_render_and_bench_frame_an_avatar_as_the_render_node_does(tmp_path, monkeypatch):
    """`gaussian-head render --width W --height H` draws the avatar through its own head's framing by default (the
    picture's head where that K puts it; `--framing fov` as before: another picture), and `bench --avatar` measures
    the avatar's rows in that framing, drawn by FaceDisplay (what the render node draws costs what it costs)."""
    import cv2

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.commands import bench
    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.display import AvatarFraming, FaceDisplay
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    a = synthetic_avatar(3000)
    ply = tmp_path / "a.ply"
    save_ply(a, ply)
    w, h = 96, 160
    frames = {}
    for framing in ("head", "fov"):
        out = tmp_path / f"{framing}.mp4"
        assert main(["render", str(ply), "-o", str(out), "--width", str(w), "--height", str(h), "--seconds", "0.1",
                     "--background", "0", "1", "0", "--framing", framing, "--backend", "cpu"]) == 0
        ok, bgr = cv2.VideoCapture(str(out)).read()
        assert ok and bgr.shape == (h, w, 3)
        frames[framing] = np.abs(bgr.astype(np.int16) - [0, 255, 0]).max(2) > 80  # [H, W] not the background
    k = AvatarFraming.from_avatar(a).intrinsics("head", 30.0, w, h, 0.6)
    head = a.means[(a.part != 2) & (a.logit_opacities >= 0)].astype(np.float64)  # PART_TORSO 2
    rows = k[1, 1] * head[:, 1] / (head[:, 2] + 0.6) + k[1, 2]
    shown = np.flatnonzero(frames["head"].any(1))
    assert abs(shown[0] - rows.min()) < 4, (shown[0], rows.min())  # the head's top where K puts it
    assert (frames["head"] != frames["fov"]).mean() > 0.02

    want = FaceDisplay(a, 48, 48, backend="cpu").render()  # the render node's picture of it at rest
    seen, drawn = [], []
    real, raster = AvatarFraming.intrinsics, FaceDisplay.raster
    monkeypatch.setattr(AvatarFraming, "intrinsics", lambda self, *args: seen.append(args) or real(self, *args))
    monkeypatch.setattr(FaceDisplay, "raster", lambda self, posed: drawn.append(raster(self, posed)) or drawn[-1])
    bench.measure(["cpu"], [48], [], [1], [], 0.0, avatar_path=str(ply))
    assert seen == [("head", 30.0, 48, 48, 0.6, 0.9)], seen
    # timed through FaceDisplay (drive, then raster): the render node's picture, its view-dependent colours seen
    # from the display's camera (bench's own Driver drew them from a distant camera: 10539 of 512x512 pixels of
    # business_person's rest frame differed, by up to 29 levels; user61)
    assert drawn and all(np.array_equal(img, want) for img in drawn)


def test_distance_m_says_what_it_does_under_each_framing(business_person):
    """A robot builder whose face looked too large set `ros2 param set /render_node distance_m 2.0` (its description:
    'distance of the virtual camera from the head centre, metres'; config/avatar.yaml: '... (head framing)'): under the
    default framing 'head' the head kept its size (the box fills head_fill whatever the distance) and only the
    perspective changed: at 0.3 m a wide lens's nose and chin (user57). Under 'fov' it is the head's size. The head's
    box keeps its pixels over distance under 'head' (below), and the parameter's description, the yaml's comment and
    `gaussian-head render --distance` say so, and name head_fill for the size."""
    import argparse

    from conftest import ROOT
    from gaussian_head_ros.commands.render import add_arguments
    from gaussian_head_ros.core.display import AvatarFraming
    from gaussian_head_ros.nodes.render_node import PARAMS

    framing = AvatarFraming.from_avatar(business_person)
    spans = []
    for distance in (0.3, 0.6, 2.0):
        k = framing.intrinsics("head", 30.0, 512, 512, distance)
        box = framing.at(distance)[1]
        spans.append(float(k[1, 1] * (box[3] - box[1])))
    assert np.allclose(spans, 0.9 * 512, rtol=1e-3), spans  # the head's box fills head_fill at every distance
    described = PARAMS["distance_m"].description
    assert "perspective" in described and "head_fill" in described, described
    yaml_line = next(line for line in (ROOT / "config" / "avatar.yaml").read_text().splitlines()
                     if line.strip().startswith("distance_m:"))
    assert "perspective" in yaml_line and "head_fill" in yaml_line, yaml_line
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cli = next(a for a in parser._actions if "--distance" in a.option_strings)
    assert "perspective" in cli.help and "head-fill" in cli.help, cli.help


def test_cut_fade_fades_only_a_torso_cut_above_the_bottom_edge():
    """display.cut_fade / fade_rows on a 100 px high panel (f 100 px per image-plane unit, cy 50): a cut that the
    framing brought to the bottom edge (less TORSO_INSET) or below gives no fade; one 20 px higher fades from
    TORSO_FADE + TORSO_INSET above it to TORSO_INSET above it, smoothly (weights 1 .. 0, never rising), the rows
    above untouched, the rows below the background's own colour."""
    from gaussian_head_ros.core.display import TORSO_FADE, TORSO_INSET, cut_fade, fade_rows

    k = np.array([[100, 0, 40], [0, 100, 50], [0, 0, 1]], np.float32)
    assert cut_fade(k, 0.5 + TORSO_INSET, 100) is None and cut_fade(k, 0.8, 100) is None
    assert cut_fade(k, None, 100) is None
    r0, w = cut_fade(k, 0.3 + TORSO_INSET, 100)  # the fade ends at row 80
    assert r0 == int(80 - 100 * TORSO_FADE) and len(w) == 100 - r0
    assert w[0] > 0.95 and np.all(np.diff(w) <= 0) and np.all(w[80 - r0:] == 0.0)
    img = np.full((100, 80, 3), 200, np.uint8)
    out = fade_rows(img.copy(), (0.0, 0.0, 1.0), r0, w)
    assert np.array_equal(out[:r0], img[:r0]) and np.all(out[80:] == [0, 0, 255])
    assert np.all(np.diff(out[r0:80, 0, 0].astype(int)) <= 0)  # 200 -> 0 (red) row by row, never back up


def test_a_torso_cut_above_a_tall_panels_bottom_fades_out_at_every_turn(framed_portraits):
    """lp_d8_man_glasses' photo is cut high: on a 480x800 panel the head goes no lower than HEAD_BELOW_MIDDLE and
    his torso ended in a hard cut above the bottom edge, and driven (sadtalker) its cut rose in ragged wedges up to
    18 px high over up to 81 % of the bottom row, different every frame (user57, s57). Now the cut fades into the
    background above where it sways: at rest and at every turn the rows from TORSO_INSET above the rest cut down are
    the background (within 2 levels), where without the fade the torso reaches into them. business_person's torso
    reaches the bottom edge: no fade there."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.display import AvatarFraming, fade_rows
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.render import head_viewmat, rasterize

    w, h, bg = 480, 800, (0.1, 0.2, 0.3)
    assert AvatarFraming.from_avatar(framed_portraits["business_person"]).cut_fade(
        AvatarFraming.from_avatar(framed_portraits["business_person"]).intrinsics("head", 30.0, w, h, 0.6), h,
        0.6) is None
    a = framed_portraits["lp_d8_man_glasses"]
    framing = AvatarFraming.from_avatar(a)
    k = framing.intrinsics("head", 30.0, w, h, 0.6)
    r0, weights = framing.cut_fade(k, h, 0.6)
    below = r0 + int(np.argmax(weights == 0.0))  # the first row of background only
    view, driver = head_viewmat(0.6), Driver(a)
    bg8 = np.floor(np.asarray(bg) * 255 + 0.5)
    reached = []
    for yaw, pitch in ((0.0, 0.0), (35.0, 0.0), (-35.0, 0.0), (0.0, 20.0), (0.0, -20.0), (35.0, -12.0)):
        control = FaceControl(face_detected=True, confidence=1.0,
                              rotation=euler_to_quat(yaw, pitch, 0).astype(np.float32))
        p = driver.drive(control, viewmat=view)
        img = np.clip(rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view, k, w, h, bg,
                                backend="cpu").image, 0, 1)
        img = np.floor(img * 255 + 0.5).astype(np.uint8)
        reached.append(float(np.abs(img[below:].astype(float) - bg8).max()))
        faded = fade_rows(img.copy(), bg, r0, weights)
        assert np.abs(faded[below:].astype(float) - bg8).max() <= 2, (yaw, pitch)
        assert np.array_equal(faded[:r0], img[:r0])
    assert max(reached) > 30, reached  # the torso did reach into those rows: the fade hides something


def test_face_display_set_draws_as_a_display_made_with_those_settings():
    """FaceDisplay.set (the render node hands its parameters to its one FaceDisplay every frame: `ros2 param set` at
    run time; render60) draws what a FaceDisplay made with those settings draws, bit for bit; settings unchanged keep
    the camera (the same K object: the node's camera_info is not made again); a value it cannot draw with is refused
    with nothing changed; the renderer is kept across settings other than backend, threads and device (the cpu
    rasterizer's thread tuning goes on)."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.display import FaceDisplay
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    avatar = synthetic_avatar(3000, seed=5)
    control = FaceControl(face_detected=True, confidence=1.0, rotation=euler_to_quat(15, -5, 3).astype(np.float32),
                          mouth_open=0.3)
    display = FaceDisplay(avatar, 96, 80, backend="cpu", threads=1)
    display.render(control)
    renderer, k, lighting = display.renderer, display.K, "captured"
    for changes in (dict(width=64, height=112), dict(framing="fov", fov_deg=40.0), dict(head_fill=0.7),
                    dict(distance_m=0.9), dict(lighting="studio"), dict(lighting=np.full(27, 0.3)),
                    dict(background=(0.2, 0.4, 0.6)), dict(background=np.array([0.0, 1.0, 0.0], np.float32))):
        display.set(**changes)
        settings = {name: getattr(display, name) for name in ("width", "height", "framing", "head_fill", "fov_deg",
                                                              "distance_m", "background")}
        lighting = changes.get("lighting", lighting)
        fresh = FaceDisplay(avatar, **settings, lighting=lighting, backend="cpu", threads=1)
        np.testing.assert_array_equal(display.render(control), fresh.render(control), err_msg=str(changes))
        np.testing.assert_array_equal(display.K, fresh.K)
    assert display.renderer is renderer
    k = display.K
    display.set(width=display.width, framing=display.framing, background=display.background.copy())
    assert display.K is k  # nothing changed: the same camera
    before = (display.width, display.framing, display.distance_m)
    for bad in (dict(width=64, framing="tight"), dict(distance_m=0.0), dict(head_fill=0.1), dict(width=0),
                dict(lighting="sunny"), dict(background=(0.1, 0.2)), dict(backend="vulkan")):
        with pytest.raises(ValueError):
            display.set(**bad)
    with pytest.raises(TypeError, match="no setting mirror"):
        display.set(mirror=True)
    assert (display.width, display.framing, display.distance_m) == before and display.K is k
    display.set(threads=2)
    assert display.renderer is not renderer and display.renderer.threads == 2


def test_face_display_without_an_avatar_frames_by_fov_and_draws_nothing():
    """The render node's placeholder: its FaceDisplay has no avatar until the first one is loaded; camera() is then
    fov_deg across the shorter side, centred, no fade (its camera_info), and drawing is refused. A DisplayAvatar made
    once (the node's loader thread) draws what the GaussianAvatar it was made of draws."""
    from gaussian_head_ros.core.display import DisplayAvatar, FaceDisplay
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    display = FaceDisplay(None, 120, 90, fov_deg=35.0, backend="cpu", threads=1)
    k, fade = display.camera()
    np.testing.assert_array_equal(k, display_intrinsics(35.0, 120, 90))
    assert fade is None
    with pytest.raises(ValueError, match="no avatar"):
        display.render()
    avatar = synthetic_avatar(2000, seed=2)
    display.avatar = DisplayAvatar(avatar)
    assert display.driver is display.avatar.driver
    np.testing.assert_array_equal(display.render(), FaceDisplay(avatar, 120, 90, fov_deg=35.0, backend="cpu",
                                                                threads=1).render())


def test_a_backend_that_fails_a_frame_falls_back_to_cpu(monkeypatch, caplog):
    """FaceDisplay.raster: a rasterizer other than cpu that fails (a CUDA error mid-run) draws that frame and the next
    with cpu, counted in `fallbacks`, told to `on_fallback` (the render node: its log, /diagnostics' fallbacks and its
    backend parameter set to cpu), else a warning in the log; the same picture as a cpu display's. A cpu failure
    raises (nothing to fall back to). It was the render node's own code beside FaceDisplay's (render60)."""
    import logging

    from gaussian_head_ros.core import render
    from gaussian_head_ros.core.display import FaceDisplay
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    class Broken:
        name, threads_used = "torch", 0

        def render_rgb8(self, *args):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    real = render.get_renderer
    monkeypatch.setattr(render, "get_renderer", lambda name, threads=0, device="cpu": Broken() if name == "torch"
                        else real(name, threads=threads, device=device))
    avatar = synthetic_avatar(2000, seed=4)
    told = []
    display = FaceDisplay(avatar, 64, 64, backend="torch", threads=1, on_fallback=lambda *a: told.append(a))
    want = FaceDisplay(avatar, 64, 64, backend="cpu", threads=1).render()
    np.testing.assert_array_equal(display.render(), want)
    assert display.fallbacks == 1 and display.backend == "cpu" and display.renderer.name == "cpu"
    assert len(told) == 1 and told[0][0] == "torch" and "illegal memory access" in str(told[0][1])
    np.testing.assert_array_equal(display.render(), want)
    assert display.fallbacks == 1
    quiet = FaceDisplay(avatar, 64, 64, backend="torch", threads=1)
    with caplog.at_level(logging.WARNING, logger="gaussian_head_ros.core.display"):
        np.testing.assert_array_equal(quiet.render(), want)
    assert any("torch rasterizer failed" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(render, "get_renderer", lambda *a, **kw: Broken())
    cpu = FaceDisplay(avatar, 64, 64, backend="cpu", threads=1)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        cpu.render()


def test_face_display_checks_a_backend_and_threads_by_the_renderers_own_rule(capsys):
    """FaceDisplay.set checked the backend name and the thread count with its own copies of core.render's
    backend_module and render.base.Renderer's messages (two rules that could drift apart; session 60's notes). One
    rule each now, checked_backend and checked_threads, which FaceDisplay.set calls without importing a backend or
    making a renderer: the same words from the display, the registry and the Renderer; `gaussian-head bench
    --backend` (its own 'unknown backend ...; choose from cpu, torch, gsplat', and no 'auto') too."""
    import subprocess
    import sys

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.display import FaceDisplay
    from gaussian_head_ros.core.render import backend_module, checked_backend
    from gaussian_head_ros.core.render.base import Renderer, checked_threads

    display = FaceDisplay(backend="cpu")
    said = []
    for call in (lambda: display.set(backend="vulkan"), lambda: backend_module("vulkan"),
                 lambda: checked_backend("vulkan"), lambda: display.set(threads=-2), lambda: Renderer(threads=-2),
                 lambda: checked_threads(-2)):
        with pytest.raises(ValueError) as e:
            call()
        said.append(str(e.value))
    assert said[0] == said[1] == said[2] == "unknown rasterizer backend 'vulkan'; choose one of auto, cpu, torch, gsplat"
    assert said[3] == said[4] == said[5] == "threads must be >= 0, got -2"
    capsys.readouterr()
    assert main(["bench", "--backend", "vulkan"]) == 1
    assert capsys.readouterr().err.strip().endswith(f"error: {said[0]}")
    assert display.backend == "cpu" and display.threads == 0  # refused: nothing changed
    with pytest.raises(ValueError, match="unknown rasterizer backend 'auto'"):
        backend_module("auto")  # a module is a registered backend's, not auto's
    code = ("import sys; from gaussian_head_ros.core.display import FaceDisplay; d = FaceDisplay(backend='cpu'); "
            "d.set(backend='torch', threads=3); print(sorted(m for m in sys.modules if m.endswith('_backend')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch_backend" not in out.stdout, out.stdout  # set() imported no backend


def test_the_constructor_checks_every_setting_as_set_does():
    """FaceDisplay(avatar, 0, 0) was taken: the constructor held 0 before handing its values to `set`, which checks
    only what changed, so a 0 width or height, head_fill=0.0, fov_deg=0.0 and distance_m=0.0 went through unchecked
    and the first frame failed inside head_intrinsics (cli63). A width of 100.5 was drawn 100 wide without a word."""
    from gaussian_head_ros.core.display import FaceDisplay

    for kwargs, said in ((dict(width=0, height=0), "display size 0x0 is outside 1..16384"),
                         (dict(width=0), "display size 0x512 is outside"),
                         (dict(head_fill=0.0), "head fill 0.0 is outside"), (dict(fov_deg=0.0), "field of view 0.0 deg is outside"),
                         (dict(distance_m=0.0), "camera distance must be positive, got 0.0"),
                         (dict(width=100.5), "display width 100.5 is no whole number of pixels"),
                         (dict(height="96"), "display height '96' is no whole number of pixels")):
        with pytest.raises(ValueError, match=said):
            FaceDisplay(None, **{"backend": "cpu", **kwargs})
    display = FaceDisplay(None, 96.0, 80, backend="cpu")  # a whole float is a size
    assert (display.width, display.height) == (96, 80) and isinstance(display.width, int)
    assert display.K.shape == (3, 3)
