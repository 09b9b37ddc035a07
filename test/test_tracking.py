"""FaceTracker on the real driving clips against MediaPipe's own FaceLandmarker (the .task model): face
found, yaw follows its head transform, mouth_open follows its jawOpen; One Euro filter lag and jitter;
neutral calibration and expression; operator selection; out-of-order frames; the `track` command."""

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED, shared

from gaussian_head_ros.core.control import euler_deg, matrix_to_quat
from gaussian_head_ros.core.filters import OneEuroConfig, OneEuroFilter, QuaternionFilter
from gaussian_head_ros.core.expression import NeutralEstimator
from gaussian_head_ros.core.tracking import RIGID, FaceTracker, TrackerConfig, similarity_fit
from gaussian_head_ros.core.video import VideoFrame, VideoSource, read_frames

CLIPS = ["lp_d0", "lp_d18", "sadtalker_WDA_KatieHill_000", "tpsmm_driving"]
MODEL = "face_landmarker.task"
TURN_STD_DEG = 3.0  # a clip "turns" when the reference yaw's standard deviation exceeds this
GL_TO_CV = np.diag([1.0, -1.0, -1.0])  # MediaPipe's metric frames (y up, z to the viewer) -> OpenCV axes


@pytest.fixture(scope="module")
def frames():
    return {n: read_frames(str(shared("driving", f"{n}.mp4"))) for n in CLIPS}


@pytest.fixture(scope="module")
def reference(frames):
    """Per clip: MediaPipe FaceLandmarker's own yaw (from its facial transformation matrix) and jawOpen."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    out = {}
    for name, clip in frames.items():
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(shared("models", MODEL))),
            running_mode=vision.RunningMode.VIDEO, output_face_blendshapes=True,
            output_facial_transformation_matrixes=True)
        yaw, jaw, gaze_h = [], [], []
        with vision.FaceLandmarker.create_from_options(opts) as lm:
            for f in clip:
                res = lm.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=f.rgb), f.stamp_ns // 1_000_000)
                if not res.face_landmarks:
                    yaw.append(np.nan)
                    jaw.append(np.nan)
                    gaze_h.append(np.nan)
                    continue
                r = GL_TO_CV @ np.asarray(res.facial_transformation_matrixes[0])[:3, :3] @ GL_TO_CV
                r /= np.cbrt(np.linalg.det(r))  # the matrix may carry a scale
                yaw.append(euler_deg(matrix_to_quat(r))["yaw"])
                bs = {c.category_name: c.score for c in res.face_blendshapes[0]}
                jaw.append(bs["jawOpen"])
                # towards the subject's right (+yaw in FaceControl.gaze): the right eye looks out, the left in
                gaze_h.append(bs["eyeLookOutRight"] - bs["eyeLookInRight"] + bs["eyeLookInLeft"] - bs["eyeLookOutLeft"])
        out[name] = {"yaw": np.array(yaw), "jaw": np.array(jaw), "gaze_h": np.array(gaze_h)}
    return out


def _track(frames, **kw):
    out = {}
    for name, clip in frames.items():
        with FaceTracker(TrackerConfig(**kw)) as tr:
            cs = [tr.process(f.rgb, f.stamp_ns) for f in clip]
        out[name] = {"controls": cs, "found": np.array([c.face_detected for c in cs]),
                     "yaw": np.array([euler_deg(c.rotation)["yaw"] for c in cs]),
                     "mouth": np.array([c.mouth_open for c in cs])}
    return out


@pytest.fixture(scope="module")
def tracked(frames):
    return _track(frames)


@pytest.fixture(scope="module")
def tracked_model(frames):
    return _track(frames, model_path=str(shared("models", MODEL)))


@pytest.fixture(scope="module")
def unsmoothed(frames):
    """clip name -> _track of that clip with smoothing=False (a fresh FaceTracker per clip, as _track makes), tracked
    on first use and kept for the module: the lag tests of the head pose (the clips that turn) and of the lids (the
    clips that blink) compare against the same unfiltered runs, and tracked each clip they share twice."""
    runs = {}

    def run(name: str) -> dict:
        if name not in runs:
            runs.update(_track({name: frames[name]}, smoothing=False))
        return runs[name]

    return run


def _corr(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _turning(reference):
    return [n for n in CLIPS if np.nanstd(reference[n]["yaw"]) > TURN_STD_DEG]


# ---------------------------------------------------------------------------------------------------
# Acceptance on the driving clips

@pytest.mark.parametrize("clip", CLIPS)
def test_face_found_in_98_percent_of_frames(tracked, clip):
    assert tracked[clip]["found"].mean() >= 0.98


def test_yaw_follows_mediapipe_head_transform(tracked, tracked_model, reference):
    turning = _turning(reference)
    assert len(turning) >= 2, {n: float(np.nanstd(reference[n]["yaw"])) for n in CLIPS}
    for run in (tracked, tracked_model):
        for n in turning:
            ours, ref = run[n]["yaw"], reference[n]["yaw"]
            assert _corr(ours, ref) >= 0.95, n  # positive too: the same sign convention
            assert abs(np.nanmedian(ours - ref)) < 5.0, n  # and no large offset


SETTLE_FRAMES = 60  # sadtalker and tpsmm start mid-sentence: their first relaxed frame comes after ~1.2 s


@pytest.mark.parametrize("clip", CLIPS)
def test_mouth_open_follows_jaw_open(tracked, tracked_model, reference, clip):
    """mouth_open's jaw term is relative to the neutral face, which is not assumed from the first frames:
    until the operator's first relaxed frame it is the first frames' estimate, so the correlation is scored
    once that has come (the first 2 s skipped); clips that start relaxed are scored whole too."""
    late = slice(SETTLE_FRAMES, None)
    for run in (tracked, tracked_model):
        assert _corr(run[clip]["mouth"][late], reference[clip]["jaw"][late]) >= 0.8
    if clip in ("lp_d0", "lp_d18"):
        assert _corr(tracked[clip]["mouth"], reference[clip]["jaw"]) >= 0.8
    assert tracked[clip]["mouth"].min() >= 0.0


def test_mouth_open_is_what_the_message_says_it_is(tracked, tracked_model, reference):
    """msg/FaceControl.msg documents mouth_open for whoever sends or reads it: its figures are the tracker's on these
    clips. It said '~0.5 wide open' while the tracker gave 1.0-2.0 where FaceLandmarker's jawOpen is above 0.6
    (ros35); a sender who followed it opened the jaw a quarter as far as the tracker's own controls describe."""
    import re

    text = (Path(__file__).resolve().parents[1] / "msg" / "FaceControl.msg").read_text()
    first, *rest = text[text.index("float32 mouth_open"):].split("\n")
    lines = [first] + [ln for ln in rest[:next((i for i, ln in enumerate(rest) if not ln.strip().startswith("#")),
                                               len(rest))]]  # its comment: the lines of comment below it
    said = " ".join(ln.split("#", 1)[1] for ln in lines)
    wide = re.search(r"(\d+\.\d+)-(\d+\.\d+) wide open", said)
    median = re.search(r"(\d+\.\d+) median", said)
    assert wide and median, said
    lo, hi = map(float, wide.groups())
    for run in (tracked, tracked_model):
        mouth = np.concatenate([run[n]["mouth"][run[n]["found"]] for n in CLIPS])
        jaw = np.concatenate([reference[n]["jaw"][run[n]["found"]] for n in CLIPS])
        assert abs(np.median(mouth) - float(median.group(1))) < 0.1, np.median(mouth)
        wide_open = mouth[jaw > 0.6]
        assert len(wide_open) > 20 and lo <= wide_open.min() and wide_open.max() <= hi, (lo, hi, wide_open)


def test_gaze_follows_the_landmarkers_eye_look(tracked, tracked_model, reference):
    """FaceControl.gaze (iris landmarks) against FaceLandmarker's eyeLookIn/Out, on the clips whose eyes
    really move (lp_d0 looks left and right; the others' swings are within the reader's noise)."""
    moving = [n for n in CLIPS if np.nanstd(reference[n]["gaze_h"]) > 0.3]
    assert "lp_d0" in moving
    for run in (tracked, tracked_model):
        for n in moving:
            yaw = np.array([c.gaze.mean(0)[0] if c.gaze.size else np.nan for c in run[n]["controls"]])
            assert _corr(yaw, reference[n]["gaze_h"]) >= 0.9, n
            assert run[n]["controls"][10].gaze.shape == (2, 2)


def test_gaze_follows_eyes_that_stay_on_the_camera(tracked, reference):
    """lp_d18's speaker turns her head and keeps her eyes on the camera: the reader's eyeLookIn/Out is that
    sub-pixel counter-rotation (gaze7). With the mesh's own irises the tracked gaze had r -0.105 with it over
    the clip; with the iris model's (core/iris.py) 0.38 (0.45 at session 11), measured in the image plane
    against each frame's own eye opening, which follows the lids and part of the way the iris; against the
    opening of the operator's neutral face in the head frame (eyes.operator_gaze) 0.66."""
    yaw = np.array([c.gaze.mean(0)[0] if c.gaze.size else np.nan for c in tracked["lp_d18"]["controls"]])
    r = _corr(yaw, reference["lp_d18"]["gaze_h"])
    assert r >= 0.55, r


def test_blendshapes_from_the_task_model(tracked_model, reference):
    c = tracked_model["lp_d18"]["controls"][100]
    assert len(c.blendshape_names) == len(c.blendshapes) == 52 and "jawOpen" in c.blendshape_names
    assert np.all((c.blendshapes >= 0) & (c.blendshapes <= 1))
    jaw = np.array([c.blendshape("jawOpen") for c in tracked_model["lp_d18"]["controls"]])
    assert _corr(jaw, reference["lp_d18"]["jaw"]) >= 0.95  # the same model, smoothed
    assert tracked_model["lp_d0"]["controls"][0].landmarks.shape == (478, 3)


def test_filter_lag_and_jitter_on_turning_clips(unsmoothed, tracked, reference):
    """The filtered yaw trails the unfiltered one by at most one frame, and is steadier."""
    raw = {n: unsmoothed(n) for n in _turning(reference)}
    for n, r in raw.items():
        y0, y = r["yaw"], tracked[n]["yaw"]
        t = np.arange(len(y0), dtype=float)
        shifts = np.arange(0.0, 3.0, 0.05)
        err = [np.mean((y[5:] - np.interp(t - s, t, y0)[5:]) ** 2) for s in shifts]
        assert shifts[int(np.argmin(err))] <= 1.0, n
        assert np.std(np.diff(y, 2)) < 0.8 * np.std(np.diff(y0, 2)), n



BLINKING = ["sadtalker_WDA_KatieHill_000", "tpsmm_driving"]


def _delay_frames(y, y0, sel):
    """The shift (frames, 0-3 in 0.05 steps) of the unfiltered series y0 that best matches y on the frames sel."""
    t = np.arange(len(y0), dtype=float)
    shifts = np.arange(0.0, 3.0, 0.05)
    return shifts[int(np.argmin([np.mean((y[sel] - np.interp(t - s, t, y0)[sel]) ** 2) for s in shifts]))]


def test_the_lids_follow_a_blink_without_trailing_it(unsmoothed, tracked):
    """The avatar's lids follow FaceControl.eyelid_ratios. Taken from the filtered landmarks (a 1 Hz speed
    estimate, too slow for lids that close in 2-3 frames) they trailed the frame's own ratios by 0.40 / 0.45
    frames around sadtalker's and tpsmm's blinks, and the render trailed the driver (the reader's blink r rose
    0.87 -> 0.89 with the render shifted a frame). Now both eyes' mean ratio has a fast filter of its own:
    0.05 frames; and each eye is still steadier than unfiltered while open (2nd-difference std 0.55-0.62 of
    unfiltered; 0.34-0.37 before)."""
    from gaussian_head_ros.core import deform

    raw = {n: unsmoothed(n) for n in BLINKING}
    for n in BLINKING:
        r0, r = (np.array([np.asarray(c.eyelid_ratios)[list(deform.LID_MID)] for c in t[n]["controls"]])
                 for t in (raw, tracked))  # [T, 2] the centre pair of each eye
        y0, y = r0.mean(1), r.mean(1)
        blink = np.convolve(y0 < 0.7, np.ones(7), "same") > 0  # frames within 3 of a lid gap below 0.7
        rest = np.convolve(y0 < 0.85, np.ones(9), "same") == 0  # lids open for 4 frames either side
        rest[:5] = False
        assert blink.sum() >= 20 and rest.sum() >= 50, n
        assert _delay_frames(y, y0, blink) <= 0.25, (n, _delay_frames(y, y0, blink))
        jitter = [np.std(np.diff(r[:, k], 2)[rest[1:-1]]) / np.std(np.diff(r0[:, k], 2)[rest[1:-1]]) for k in (0, 1)]
        assert max(jitter) < 0.75, (n, jitter)


def test_the_fused_lid_ratios_average_while_open_close_with_the_mesh_and_leave_side_looks_to_it():
    """tracking.fused_lid_ratios: the iris model's outline and the mesh's lid points, each over its own open level.
    Equal readings come back exactly; open eyes (both >= OUTLINE_OPEN[1]) get OUTLINE_SHARE of the outline's reading
    less the deadband; a closing lid the smaller of the two (the outline stops at ~0.55 in a blink), the mesh's own
    where the mesh is the smaller; a far side look (both eyes' mean yaw beyond SIDE_LOOK_RAD[1], either side) the
    mesh's alone; each eye's own rest yaw off centre does not."""
    from gaussian_head_ros.core.tracking import (OUTLINE_DEADBAND, OUTLINE_OPEN, OUTLINE_SHARE, SIDE_LOOK_RAD,
                                                 fused_lid_ratios)

    rng = np.random.default_rng(0)
    m = rng.uniform(0.2, 1.3, 14)
    np.testing.assert_array_equal(fused_lid_ratios(m, m, [0.1, -0.3]), m)
    wide, mesh = np.full(14, 1.25), np.full(14, 1.05)
    assert OUTLINE_OPEN[1] <= 1.05
    np.testing.assert_allclose(fused_lid_ratios(mesh, wide, [0.0, 0.0]),
                               1.05 + OUTLINE_SHARE * (1.25 - 1.05) - OUTLINE_DEADBAND)
    closing_mesh, closing_outline = np.full(14, 0.25), np.full(14, 0.6)
    assert 0.6 <= OUTLINE_OPEN[0]
    np.testing.assert_allclose(fused_lid_ratios(closing_mesh, closing_outline, [0.0, 0.0]), 0.25)
    np.testing.assert_allclose(fused_lid_ratios(closing_outline, closing_mesh, [0.0, 0.0]), 0.25 + OUTLINE_DEADBAND)
    side = SIDE_LOOK_RAD[1] + 0.05
    for yaw in ([side, side], [-side, -side]):
        np.testing.assert_array_equal(fused_lid_ratios(mesh, wide, yaw), mesh)
    # eyes at rest each 0.2 rad off (lp_d0's -0.15 / +0.21), their mean 0: the outline counts fully
    np.testing.assert_allclose(fused_lid_ratios(mesh, wide, [-0.2, 0.2]), fused_lid_ratios(mesh, wide, [0.0, 0.0]))


def test_the_outline_leaves_the_mesh_lids_alone_where_the_two_differ_by_less_than_the_deadband():
    """On open eyes the outline and the mesh differ by a few hundredths from frame to frame (lp_d18's first 60
    frames: 0.02-0.06), which the acceptance reader read on the avatars as gaze and brow (lp_d18's pairs, first 60
    frames, gaze_h / brow r 0.676 / 0.508 with the mesh's lids, 0.662 / 0.486 with lids64's average, 0.675 / 0.505
    with the deadband): such differences leave the mesh's ratios exactly, and a larger one moves them by its excess
    only, continuously."""
    from gaussian_head_ros.core.tracking import OUTLINE_DEADBAND, OUTLINE_SHARE, fused_lid_ratios

    assert 0.02 <= OUTLINE_DEADBAND <= 0.05
    mesh = np.linspace(1.06, 1.2, 14)
    small = mesh + np.linspace(-1.9, 1.9, 14) * OUTLINE_DEADBAND  # open (>= 1); OUTLINE_SHARE of it under the deadband
    np.testing.assert_array_equal(fused_lid_ratios(mesh, small, [0.0, 0.0]), mesh)
    gap = np.linspace(0.0, 0.4, 41)  # the outline this much wider than the mesh
    out = np.array([fused_lid_ratios(np.full(14, 1.05), np.full(14, 1.05 + g), [0.0, 0.0])[0] for g in gap])
    np.testing.assert_allclose(out, 1.05 + np.maximum(OUTLINE_SHARE * gap - OUTLINE_DEADBAND, 0.0), atol=1e-12)
    assert np.all(np.diff(out) >= 0) and np.max(np.diff(out)) <= OUTLINE_SHARE * 0.01 + 1e-12


# ---------------------------------------------------------------------------------------------------
# One Euro filter (synthetic signals)

def _delay_s(t, raw, out):
    shifts = np.arange(0.0, 0.3, 0.001)
    return shifts[int(np.argmin([np.mean((out[10:] - np.interp(t - s, t, raw)[10:]) ** 2) for s in shifts]))]


def test_one_euro_adds_at_most_one_frame_of_lag_at_30fps():
    cfg = TrackerConfig().filter_config()
    t = np.arange(0, 4, 1 / 30)
    turns = [np.radians(a) * 0.5 * (1 - np.cos(np.pi * np.clip((t - 1) / d, 0, 1))) for a, d in ((30, 0.5), (10, 0.5))]
    for y in turns + [np.radians(15) * np.sin(2 * np.pi * t)]:
        f = OneEuroFilter(cfg, unit=1.0)
        out = np.array([f(v, tt) for v, tt in zip(y, t)])
        assert _delay_s(t, y, out) <= 1 / 30


def test_one_euro_reduces_jitter_and_handles_time():
    rng = np.random.default_rng(0)
    t = np.arange(0, 4, 1 / 30)
    noise = np.radians(0.3) * rng.standard_normal((len(t), 3))
    f = OneEuroFilter(TrackerConfig().filter_config())
    out = np.array([f(v, tt) for v, tt in zip(noise, t)])
    assert out.shape == noise.shape and np.std(out[10:]) < 0.6 * np.std(noise[10:])
    before = f(np.ones(3), t[-1] + 0.1)
    np.testing.assert_array_equal(f(np.full(3, 9.0), t[-1]), before)  # an older sample changes nothing
    f.reset()
    np.testing.assert_array_equal(f(np.full(3, 9.0), 0.0), np.full(3, 9.0))  # after a reset: passes through
    with pytest.raises(ValueError):
        OneEuroConfig(min_cutoff=0).validate()


def test_quaternion_filter_is_sign_invariant():
    from gaussian_head_ros.core.control import euler_to_quat

    f = QuaternionFilter(OneEuroConfig(1.0, 0.0, 1.0))
    q = euler_to_quat(20, 0, 0)
    a = f(q, 0.0)
    b = f(-q, 1 / 30)  # the same rotation with the opposite sign
    np.testing.assert_allclose(b, a, atol=1e-9)
    assert abs(np.linalg.norm(f(euler_to_quat(25, 0, 0), 2 / 30)) - 1) < 1e-9


# ---------------------------------------------------------------------------------------------------
# Neutral face and expression

def test_expression_is_relative_to_the_operators_neutral(tracked):
    for n in ("lp_d0", "lp_d18"):  # clips that start with a relaxed face (FaceLandmarker jawOpen <= 0.03)
        e = np.array([c.expression for c in tracked[n]["controls"][:12]])
        assert np.median(np.linalg.norm(e, axis=2)) < 1e-3, n
    # this one starts mid-sentence (jawOpen 0.2): her first frame's open mouth is an expression, not her neutral
    e0 = tracked["sadtalker_WDA_KatieHill_000"]["controls"][0].expression
    assert e0[14, 1] > 0.003  # the inner lower lip 3+ mm below where it is when her mouth is closed
    cs = tracked["lp_d18"]["controls"]
    k = int(np.argmax([c.mouth_open for c in cs]))
    lip = cs[k].expression[14]  # inner lower lip of a wide-open mouth moves down (+y) by centimetres
    assert lip[1] > 0.015 and cs[k].mouth_open > 0.5
    rigid = np.sqrt(np.mean(np.sum(cs[k].expression[RIGID] ** 2, 1)))
    assert rigid < 0.2 * np.linalg.norm(lip)  # pose and scale do not leak into the expression


def test_talking_frames_do_not_replace_the_first_neutral(tracked):
    """tpsmm starts mid-sentence and talks through its first 60 frames (no frame with the lips together and the
    jaw up). The neutral must stay the first frame's `neutralize` (what the self avatar rests in) instead of
    jumping to each slightly-less-open frame: it did, its mouth width went 52.5 -> 49.2 mm by frame 16, and the
    avatar was driven 3.3 mm wider than the operator (its open mouth read as a smile: reader smile r 0.32)."""
    cs = tracked["tpsmm_driving"]["controls"][:60]
    width = np.array([(c.landmarks - c.expression)[291, 0] - (c.landmarks - c.expression)[61, 0] for c in cs])
    assert np.abs(width - width[0]).max() < 0.5e-3, np.abs(width - width[0]).max()  # metres; was 3.3 mm


def test_closed_lip_puckers_and_smiles_do_not_become_the_neutral(tracked):
    """tpsmm says "oo" with closed lips (mouth 28-42 mm wide, frames 60-140) and smiles with closed lips (56-58
    mm, frames 150+): lips together and jaw up, so they counted as relaxed and the neutral's mouth width followed
    them down to 43.5 mm and back up to 51 (every relaxed frame in between read as a 6 mm smile). `neutralize`
    now moves a pucker's corners out to the relaxed range, and a frame whose corners it moves weighs little."""
    from gaussian_head_ros.core.expression import MIN_MOUTH_WIDTH_M, neutralize

    cs = [c for c in tracked["tpsmm_driving"]["controls"] if c.face_detected]
    width = np.array([(c.landmarks - c.expression)[291, 0] - (c.landmarks - c.expression)[61, 0] for c in cs])
    assert width.min() > MIN_MOUTH_WIDTH_M, width.min()  # metres; was 43.5 mm (measured now 47.7)
    assert np.ptp(width[148:]) < 0.001, np.ptp(width[148:])  # the closed-lip smiles; was 7.6 mm (now 0.4)
    pucker = min(cs, key=lambda c: c.landmarks[291, 0] - c.landmarks[61, 0]).landmarks  # ~28 mm wide
    n = neutralize(pucker)
    assert pucker[291, 0] - pucker[61, 0] < 0.035 and n[291, 0] - n[61, 0] > MIN_MOUTH_WIDTH_M - 1e-4


def test_an_open_first_frame_gives_a_neutral_whose_lips_meet_along_a_relaxed_line(tracked):
    """tpsmm_driving and sadtalker start with the mouth 8.7 / 8.6 mm open; their neutral (frame 0's `neutralize`) closed
    each inner lip pair along the upper lip's open arch and held the inner lip's ends 1.2 / 2.3 mm below its middle,
    where their own closed frames hold them 1.3-2.3 mm above and relaxed closed lips (lp_d0, lp_d18) 0.1-0.8 above: every
    closed-lip frame of tpsmm then lifted the avatar's corners ~3 mm against the middle (a grin under its "oo",
    pucker22; now -0.5 / +0.7). The ends of a neutral's closed lips sit less than 1 mm below the middle."""
    from gaussian_head_ros.core import landmarks as lmk

    up = list(lmk.LIP_UPPER_INNER)
    for clip in ("tpsmm_driving", "sadtalker_WDA_KatieHill_000"):
        n = tracked[clip]["controls"][0].landmarks - tracked[clip]["controls"][0].expression
        ends = 0.5 * (n[up[0], 1] + n[up[-1], 1]) - n[up[len(up) // 2], 1]  # metres, y down: > 0 the ends lower
        assert ends < 1e-3, f"{clip}: the neutral's inner lip ends {ends * 1e3:.1f} mm below its middle"


def test_the_neutral_keeps_the_operators_lids_open(tracked):
    """A frame with a relaxed mouth but lids half closed (sadtalker looking down, frames 30-40) must not become
    the neutral's lids: the drive opens the avatar's lids by operator gap / neutral gap, and such a neutral
    made every later frame stare (sadtalker's neutral lid gap fell to 0.35 x her median, tpsmm's to 0.58)."""
    from gaussian_head_ros.core import landmarks as lmk

    def gap(x):
        return np.mean([np.linalg.norm(x[u] - x[d]) for u, d in (lmk.EYELID_MID_R, lmk.EYELID_MID_L)])

    for n in CLIPS:
        cs = [c for c in tracked[n]["controls"] if c.face_detected]
        op = np.array([gap(c.landmarks) for c in cs])
        ne = np.array([gap(c.landmarks - c.expression) for c in cs])
        assert ne.min() > 0.8 * np.median(op), (n, ne.min() / np.median(op))  # measured: 0.92 .. 1.06


def test_a_pause_with_raised_brows_does_not_become_the_neutral_brows():
    """The brows have their own weight in the neutral (NeutralEstimator): an operator who talks (mouth open)
    and then pauses with the mouth closed and the brows raised 2 mm keeps the brows of the talking frames as
    the neutral, so the pause reads as a raise. With the mouth's weight the closed-mouth frames became the
    neutral's brows (sadtalker: brows raised and head tilted back in a pause, every later frame read as
    brows lowered 1.5-1.8 mm); here the old rule read 0.03 mm of the 2 mm raise."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.expression import NeutralEstimator

    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float)
    face = v * np.array([0.01, -0.01, -0.01])  # metres of the head frame (y down); its lips are 5.5 mm apart
    talking = face.copy()
    pause = face.copy()
    pause[list(lmk.LIP_LOWER_INNER), 1] = pause[list(lmk.LIP_UPPER_INNER), 1]  # lips together
    brows = list(lmk.BROW_R + lmk.BROW_L)
    pause[brows, 1] -= 0.002
    est = NeutralEstimator()
    for i in range(40):
        est.update(talking, i / 30)
    for i in range(40, 60):
        neutral = est.update(pause, i / 30)
    raise_read = -np.mean((pause - neutral)[brows, 1])
    assert raise_read > 0.0018, raise_read


def _canonical_face():
    """MediaPipe's canonical face (with irises), metres of the head frame (y down)."""
    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float)
    return v * np.array([0.01, -0.01, -0.01])


def test_a_stream_that_starts_mid_blink_does_not_keep_the_blink_in_the_neutral_eyes():
    """The neutral's eyes are the frames whose lids are open as wide as the operator's usually are, judged against
    all the frames seen so far as they are now (`OpenLidAverage`): a stream that starts with the lids shut and a
    slow reopening (1 frame at 0.2 of the open gap, 5 at 0.6, then 30 open) ends with the open eyes. Judged once,
    against the frames seen up to then, the first frames weighed 1 each and stayed in the average: 0.92 of the open
    gap after the 30 open frames (a real stream started mid-blink, sadtalker frame 24: 9.1 mm after 170 frames
    where frame 0's start gives 10.5)."""
    from gaussian_head_ros.core import deform
    from gaussian_head_ros.core import landmarks as lmk

    face = _canonical_face()

    def lid_gap(x):  # the centre pairs' gap, both eyes' mean
        return np.mean([np.linalg.norm(x[u] - x[d]) for u, d in (lmk.EYELID_MID_R, lmk.EYELID_MID_L)])

    def lids(share):  # the face with every upper lid point at `share` of its gap above its lower partner
        x = face.copy()
        x[deform.LID_UPPER] = x[deform.LID_LOWER] + share * (face[deform.LID_UPPER] - face[deform.LID_LOWER])
        return x

    est = NeutralEstimator()
    stream = [lids(0.2)] + [lids(0.6)] * 5 + [face] * 30
    for i, x in enumerate(stream):
        neutral = est.update(x, i / 30)
    assert lid_gap(neutral) / lid_gap(face) > 0.99, lid_gap(neutral) / lid_gap(face)  # 0.92 with the old rule


def test_a_stream_that_starts_mid_blink_keeps_the_operators_scale():
    """The head frame's scale is set by the first frame's outer eye span (`facemesh.fit_head_frame`), and a blink
    moves MediaPipe's eye corners: a stream whose first frame is mid-blink (lids shut, the outer corners 1.6 mm
    further out each, as at sadtalker frame 24: span / rigid spread 1.036 x the clip's median) takes the span of
    its open frames instead (`FaceTracker._open_eye_scale`), so its later frames have the canonical scale of a
    stream that started with open eyes, within 1 % (old: 3.5 % smaller for the whole session, every expression
    with it). A first frame with open lids keeps its own scale exactly (the avatar's photo: frame-0 consistency),
    even where later frames' spans differ from it."""
    from gaussian_head_ros.core import deform
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.tracking import _Face

    face = _canonical_face()

    def corners_out(x, m):  # the outer eye corners m metres further out each
        x = x.copy()
        x[lmk.OUTER_EYE[0], 0] -= m
        x[lmk.OUTER_EYE[1], 0] += m
        return x

    blink = corners_out(face, 0.0016)
    blink[deform.LID_UPPER] = blink[deform.LID_LOWER]  # lids shut
    rgb = np.zeros((480, 640, 3), np.uint8)
    K = default_intrinsics(640, 480, 12.0)

    def pixels(x):  # a frontal face ~0.6 m from the camera, 1900 px per metre, MediaPipe's z in pixel units
        p = x * 1900.0 + np.array([320.0, 240.0, 0.0])
        return _Face(p.astype(np.float32), (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()), 1.0)

    def later_rigid_spread(first, later=face, kept=False):
        with FaceTracker(TrackerConfig(region_check=False, iris_model=False, fov_deg=12.0)) as tr:
            for i, x in enumerate([first] + [later] * 20):
                tr._detect = lambda rgb, x=x: [pixels(x)]
                c = tr.process(rgb, int(i * 1e9 / 30), K)
                if kept:
                    assert tr._open_eye_scale() == 1.0
        q = c.landmarks[list(lmk.RIGID_LANDMARKS)]
        return float(np.sqrt(np.mean(np.sum((q - q.mean(0)) ** 2, axis=1))))

    ratio = later_rigid_spread(blink) / later_rigid_spread(face)
    assert abs(ratio - 1.0) < 0.01, ratio  # old rule (the first frame's span throughout): 0.965
    # open lids on the first frame: its scale is kept although the later frames' spans are 1.5 % wider
    later_rigid_spread(face, corners_out(face, 0.0007), kept=True)


def test_the_open_lid_average_gives_the_first_frame_exactly_then_the_open_frames():
    """`OpenLidAverage`: its first frame alone gives that frame's value exactly (a self clip's frame 0 keeps the
    photo's lids); frames whose gap falls short of the 90th percentile by a few scales do not count; the stamps'
    age forgets with window_s."""
    from gaussian_head_ros.core.expression import OpenLidAverage

    avg = OpenLidAverage(window_s=20.0, scale=0.0015)
    assert np.array_equal(avg.add(0.0, 0.003, np.array([0.1, 0.2])), [0.1, 0.2])  # shut lids, first frame
    for i in range(1, 20):
        out = avg.add(i / 30, 0.010, np.array([0.3, 0.4]))
    np.testing.assert_allclose(out, [0.3, 0.4], atol=1e-6)
    old = OpenLidAverage(window_s=1.0, scale=0.0015)
    old.add(0.0, 0.010, np.array([1.0]))
    assert old.add(10.0, 0.010, np.array([0.0]))[0] < 1e-4  # 10 windows later the first frame is forgotten


def test_the_open_lid_averages_level_is_the_historys_percentile_after_every_frame():
    """`OpenLidAverage.shortfall` (the tracker's `_open_eye_scale`, every frame) takes the history's 90th percentile
    that `add` computed for the same frame (kept once per frame since session 18: it was computed twice, ~100 us a
    frame at load 8); after each add, past the ring's wrap and after a reset it is the percentile of the history as it
    is then, never a stale one."""
    from gaussian_head_ros.core.expression import OpenLidAverage

    rng = np.random.default_rng(1)
    avg = OpenLidAverage(window_s=20.0, scale=0.0015)
    assert avg.shortfall(0.003) == 0.0  # before the first frame
    gaps = rng.uniform(0.002, 0.012, avg.HISTORY + 50)
    for i, g in enumerate(gaps):
        avg.add(i / 30, g, np.array([g]))
        seen = gaps[max(0, i + 1 - avg.HISTORY):i + 1]
        if i % 97 == 0 or i >= avg.HISTORY - 2:
            assert avg.shortfall(0.004) == max(0.0, float(np.percentile(seen, 90)) - 0.004), i
    avg.reset()
    avg.add(0.0, 0.005, np.array([1.0]))
    assert avg.shortfall(0.003) == 0.005 - 0.003 and avg.shortfall(0.006) == 0.0


def test_the_open_lid_average_takes_a_stamp_jump_back_as_no_time():
    """A looped or replayed stream's stamps go back (`ros2 bag play --loop`): the frames after the jump are the
    newest, not frames older than every remembered one (review16, s16: with the stamps kept, a 60 s loop's new
    frames weighed exp(-60 / 20) against the old ones and the old stream's lids stayed ~30 s)."""
    from gaussian_head_ros.core.expression import OpenLidAverage

    avg = OpenLidAverage(window_s=1.0, scale=0.0015)
    for i in range(30):
        avg.add(60.0 + i / 30, 0.010, np.array([1.0]))
    for i in range(90):  # the loop starts again at 0 s: 3 s (three windows) of frames with another value
        out = avg.add(i / 30, 0.010, np.array([0.0]))
    assert out[0] < 0.1, out  # the old stream is forgotten as after 3 s of time; with its stamps kept: 1.0


def _with_brows_at(face, height_m):
    """The face with its brows (and, spread harmonically, the forehead and the strip above the lids) moved to
    `height_m` above the eye corners: the same spread the rule uses, so only the height is under test."""
    from gaussian_head_ros.core import expression as E

    out = face.copy()
    out[:E.NUM_MESH] += E._brow_spread(face, E.brow_height(face) - height_m)
    return out


def test_every_rest_takes_its_brows_to_one_height():
    """`neutralize` takes the brows to one height above the eye corners (expression.REST_BROW_HEIGHT_M) from above
    or below, and leaves the eyes, the rigid points and everything below the eyes as they are. So a photo holding a
    raise (lp_d9_woman_turned's scream: 23.9 mm above the eye corners) or a frown (the Obamas, trump_official:
    13.2-13.7 mm) rests with relaxed brows, and so does a face whose brows lie a little off that height (the old
    rule left brows within 16.5-18.5 mm where they were: 17.0 stayed 17.0)."""
    from gaussian_head_ros.core import expression as E
    from gaussian_head_ros.core import landmarks as lmk

    face = _canonical_face()
    keep = np.zeros(len(face), bool)
    keep[list(lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L + lmk.RIGID_LANDMARKS)] = True
    keep[:lmk.NUM_MESH] |= face[:lmk.NUM_MESH, 1] > face[list(lmk.EYE_CONTOUR_R + lmk.EYE_CONTOUR_L), 1].max()
    keep[lmk.NUM_MESH:] = True  # irises
    relaxed = _with_brows_at(face, E.REST_BROW_HEIGHT_M)
    mouth = E.neutralize(relaxed) - relaxed  # the canonical face's parted lips closed: the mouth's part alone
    for height in (0.0240, 0.0130, 0.0170):
        x = _with_brows_at(face, height)
        n = E.neutralize(x)
        assert E.brow_height(n) == pytest.approx(E.REST_BROW_HEIGHT_M, abs=1e-6), height
        held = keep.copy()
        held[E.LID_UPPER] = height >= E.MIN_BROW_HEIGHT_M - E.LID_LIFT_FROM_M  # a hooded lid goes along (next test)
        np.testing.assert_allclose((n - x)[held], mouth[held], atol=1e-9)
        moved = (n - x)[:, 1]
        skin = list(lmk.BROW_SKIN_R + lmk.BROW_SKIN_L)
        if height < E.REST_BROW_HEIGHT_M:  # a frown lifted: the row below the brows (the hair's lower edge) goes along
            np.testing.assert_allclose(moved[skin], moved[E.BROW_POINTS].mean(), atol=1e-9)
        else:  # a raise lowered: that row gathers, part of the way, above the lids
            assert np.all((moved[skin] > 0) & (moved[skin] < 0.9 * moved[E.BROW_POINTS].mean()))


def _closed_mouth(face):
    """The canonical face with its inner lips together (its lips are 5.5 mm apart; closed, its corners sit 3.5 mm
    below the lips' centre, beyond the relaxed range: a slight frown to `neutralize`)."""
    from gaussian_head_ros.core import landmarks as lmk

    x = face.copy()
    x[list(lmk.LIP_LOWER_INNER), 1] = x[list(lmk.LIP_UPPER_INNER), 1]
    return x


def test_a_lopsided_frown_is_levelled_and_a_relaxed_tilt_kept():
    """A frown with one corner lower than the other beyond relaxed faces' tilt (expression.MAX_CORNER_TILT_M) is
    levelled (lp_d8_man_glasses' photo: left corner 2.3 mm lower than the right; the old rule moved both corners
    alike and its avatar's rest kept the tilt), while corners within the relaxed height range keep their tilt, a
    face's own asymmetry (two_children_multiface: 2.0 mm, no smile or frown to the reader)."""
    from gaussian_head_ros.core import expression as E

    def tilt(v):
        return float(v[E.LIP_CORNERS_OUTER[1], 1] - v[E.LIP_CORNERS_OUTER[0], 1])

    face = _closed_mouth(_canonical_face())
    right, left = E.LIP_CORNERS_OUTER
    frown = face.copy()
    frown[[right, left], 1] += (0.0005, 0.0035)  # corners 4.0 / 7.0 mm below the lips' centre: tilt 3 mm
    assert tilt(E.neutralize(frown)) < 0.3 * tilt(frown)  # old: 3 mm
    relaxed = face.copy()
    relaxed[[right, left], 1] += (-0.0065, -0.0045)  # corners 3.0 / 1.0 mm above the lips' centre: relaxed
    assert tilt(E.neutralize(relaxed)) == pytest.approx(tilt(relaxed), abs=1e-9)


def test_lifted_low_brows_take_the_upper_lids_up_a_little():
    """Brows held well below the relaxed band (more than LID_LIFT_FROM_M below MIN_BROW_HEIGHT_M) are lifted with the
    upper lids' margins (expression.LID_WITH_BROW_LIFT of that part of the lift; the lower lids and eye corners stay): the skin
    a low brow pushes over the lid goes up and uncovers it. With the margins held, trump_official's squinted eyes
    rested as the same slits under brows 3.3 mm higher and FaceLandmarker read them as more closed (x tpsmm_driving,
    frame 0: eyeBlink 0.21 / 0.25 -> 0.35 / 0.29). A light frown lifted, or a raise lowered, leaves the lids."""
    from gaussian_head_ros.core import expression as E
    from gaussian_head_ros.core import landmarks as lmk

    face = _canonical_face()
    lower = [p[1] for p in lmk.EYELID_PAIRS_R + lmk.EYELID_PAIRS_L] + [c for pair in lmk.EYE_CORNERS for c in pair]
    for height in (0.0130, 0.0240):
        x = _with_brows_at(face, height)
        moved = (E.neutralize(x) - x)[:, 1]  # y down
        hooded = E.brow_height(x) - (E.MIN_BROW_HEIGHT_M - E.LID_LIFT_FROM_M)  # < 0: lifted from below 14.5 mm
        if hooded < 0.0:
            want = E.LID_WITH_BROW_LIFT * hooded
            np.testing.assert_allclose(moved[E.LID_UPPER], want, atol=1e-9)
            assert np.all(moved[E.LID_UPPER] < -0.0009)  # ~1 mm on a 3.5 mm lift; the eye's gap ~10 mm
        else:
            np.testing.assert_allclose(moved[E.LID_UPPER], 0.0, atol=1e-9)
        np.testing.assert_allclose(moved[lower], 0.0, atol=1e-9)
    light = _with_brows_at(face, E.MIN_BROW_HEIGHT_M - 0.0012)  # lp_d18's operator: a light frown, no hooded lid
    np.testing.assert_allclose((E.neutralize(light) - light)[E.LID_UPPER, 1], 0.0, atol=1e-9)


def test_an_operator_holding_a_frown_drives_it():
    """An operator whose brows sit off the common rest height the whole time (lp_d18's: 15.3 mm, FaceLandmarker's
    browDown 0.34 on every frame; tpsmm_driving's raise: 23.2 mm) carries that frown or raise in the control: the
    neutral's brows are at expression.REST_BROW_HEIGHT_M, not at the operator's own. With the operator's own brows
    as the neutral the control read 0 mm of a 2 mm frown, and an avatar with relaxed brows stayed where
    FaceLandmarker's brow scores are all ~0 (astronaut_eileen_collins x lp_d18: reader brow r -0.52)."""
    from gaussian_head_ros.core import expression as E

    face = _canonical_face()
    brows = list(E.BROW_POINTS)
    for height in (0.0153, 0.0232, 0.0182):
        x = _with_brows_at(face, height)
        est = NeutralEstimator()
        for i in range(30):
            neutral = est.update(x, i / 30)
        read = -np.mean((x - neutral)[brows, 1])  # > 0: raised
        assert read == pytest.approx(height - E.REST_BROW_HEIGHT_M, abs=1e-5), height


def test_every_avatar_shows_an_operators_brows_at_the_operators_height():
    """The avatar's rest and the operator's neutral take the brows to the same height, so the driven brows sit at
    the operator's own height above the eyes whatever the photo's. With a relaxed range (16.5-18.5 mm, brows within
    it left) astronaut_eileen_collins' photo (17.1 mm) under lp_d18's held frown (15.3 mm, taken to 16.5) came down
    to 15.9 mm, where FaceLandmarker reads no frown (reader brow r 0.44), and a photo at 16.5 mm to 15.3."""
    from gaussian_head_ros.core import expression as E

    face = _canonical_face()
    operator = _with_brows_at(face, 0.0153)
    est = NeutralEstimator()
    for i in range(30):
        neutral = est.update(operator, i / 30)
    control = operator - neutral
    for photo_height in (0.0171, 0.0165, 0.0132, 0.0239):
        photo = _with_brows_at(face, photo_height)
        driven = E.neutralize(photo) + control
        assert E.brow_height(driven) == pytest.approx(0.0153, abs=2e-5), photo_height  # old: 15.9 mm at 17.1


def test_head_turns_do_not_leak_into_the_expression(tracked):
    cs = tracked["sadtalker_WDA_KatieHill_000"]["controls"]
    yaw = np.array([abs(euler_deg(c.rotation)["yaw"]) for c in cs])
    k = int(np.argmax(yaw))
    assert yaw[k] > 15
    rigid = np.sqrt(np.mean(np.sum(cs[k].expression[RIGID] ** 2, 1)))
    assert rigid < 0.005  # metres: 5% of the eye span at a 15+ degree turn


def test_recalibrate_starts_a_new_neutral(frames):
    from gaussian_head_ros.core.expression import NOSE_BASE

    clip = frames["lp_d0"]
    with FaceTracker(TrackerConfig(neutral_frames=5)) as tr:
        for f in clip[:5]:
            tr.process(f.rgb, f.stamp_ns)
        assert tr.calibrated
        first = tr.neutral.copy()
        tr.recalibrate()
        assert not tr.calibrated
        for f in clip[30:35]:  # a smile
            c = tr.process(f.rgb, f.stamp_ns)
        assert tr.calibrated and np.abs(tr.neutral - first).max() > 2e-3
        upper = c.landmarks[:468, 1] < c.landmarks[NOSE_BASE, 1]  # what neutralizing leaves alone
        assert np.linalg.norm(c.expression[:468][upper], axis=1).mean() < 1.5e-3  # relative to the new neutral
        assert np.linalg.norm(c.expression[14]) > 1e-3  # but the smile is not taken for the neutral


def test_starting_mid_sentence_gives_the_same_expressions_later(frames, tracked):
    """An operator who starts talking mid-sentence (here: the clip entered at frame 25, mouth open) gets,
    two seconds later, nearly the expressions of one who started with a relaxed face (the clip from frame 0):
    1.6 mm apart on the mouth (the two neutrals come from different relaxed moments), where the old
    first-15-frames median kept them 5.0 mm apart for good."""
    from gaussian_head_ros.core.expression import JAW_POINTS, LIP_LOWER_INNER, LIP_UPPER_INNER

    start = 25
    ref = tracked["lp_d18"]["controls"]
    assert ref[start].mouth_open > 0.2  # the mouth is open where the late tracker starts
    with FaceTracker() as tr:
        late = {i: tr.process(f.rgb, f.stamp_ns) for i, f in enumerate(frames["lp_d18"][start:], start)}
    mouth = list(LIP_UPPER_INNER + LIP_LOWER_INNER + JAW_POINTS)
    later = [i for i in late if i >= start + 60 and late[i].face_detected and ref[i].face_detected]
    diff = np.mean([np.abs(late[i].expression[mouth] - ref[i].expression[mouth]).mean() for i in later])
    assert diff < 2.5e-3, f"{diff * 1e3:.2f} mm apart"  # the first-15-frames median left 5.0 mm
    assert np.mean([abs(late[i].mouth_open - ref[i].mouth_open) for i in later]) < 0.15  # it left 0.26


def test_similarity_fit_recovers_a_transform():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(30, 3))
    rot = cv2.Rodrigues(np.array([0.2, -0.4, 0.1]))[0]
    s, r, t, resid = similarity_fit(src, 3.0 * src @ rot.T + [1, 2, 3])
    assert s == pytest.approx(3.0) and resid < 1e-9
    np.testing.assert_allclose(r, rot, atol=1e-9)
    np.testing.assert_allclose(t, [1, 2, 3], atol=1e-9)


def test_similarity_fit_weighs_points():
    """A point with weight 0 does not pull the fit: the transform is recovered exactly with one point moved 1 unit."""
    rng = np.random.default_rng(2)
    src = rng.normal(size=(20, 3))
    rot = cv2.Rodrigues(np.array([-0.3, 0.2, 0.4]))[0]
    dst = 2.0 * src @ rot.T + [3, 2, 1]
    dst[5] += [0.0, 1.0, 0.0]
    s, r, t, _ = similarity_fit(src, dst, np.where(np.arange(20) == 5, 0.0, 1.0))
    assert s == pytest.approx(2.0, abs=1e-9)
    np.testing.assert_allclose(r, rot, atol=1e-9)
    assert abs(similarity_fit(src, dst)[0] - 2.0) > 1e-3  # equal weights: pulled


def test_rigid_landmarks_that_move_with_the_face_lose_their_pull_on_the_pose():
    """Some points of the rigid set move with the face in MediaPipe's mesh (the nose wings 98/327 rise with a smile:
    1.1-1.2 mm per sd of the reader's jaw on lp_d0, in the head frame; on lp_d18 the tracker's pitch followed the
    jaw at r -0.90 where the reader's own pitch does at -0.76). The pose fit weighs each rigid landmark by how far
    it strays from the neutral over the stream (`RigidityWeights`). MediaPipe's canonical face, held still (pitch
    10, yaw -15 deg), with the nose wings and the nose base moving 3 mm up and back every 8 frames: in the third
    second the fitted pitch stays within 0.1 deg of the first frame's and the brows within 0.1 mm (equal weights:
    0.32 deg and 0.21 mm, every time the nose moves; now 0.03 deg, 0.03 mm)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.control import euler_deg, euler_to_quat, quat_to_matrix
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.tracking import _Face

    face = _canonical_face()
    moving, brows = [98, 327, 2], list(lmk.BROW_R + lmk.BROW_L)
    rot = quat_to_matrix(euler_to_quat(pitch_deg=10.0, yaw_deg=-15.0))
    K = default_intrinsics(640, 480)

    def seen(up):
        x = face.copy()
        x[moving, 1] -= up
        return _Face((2000.0 * x @ rot.T + [320.0, 240.0, 0.0]).astype(np.float32), (0.0, 0.0, 640.0, 480.0), 1.0)

    pitch, brow = [], []
    with FaceTracker(TrackerConfig(smoothing=False)) as tracker:
        for i in range(90):
            c = tracker._control(seen(0.003 if (i // 8) % 2 else 0.0), K, (i + 1) * 33_333_333)
            if i == 0:
                first = c
            pitch.append(euler_deg(c.rotation)["pitch"] - euler_deg(first.rotation)["pitch"])
            brow.append(np.mean((c.expression - first.expression)[brows, 1]))
    assert np.abs(pitch[60:]).max() < 0.1, np.abs(pitch[60:]).max()
    assert np.abs(brow[60:]).max() < 1e-4, np.abs(brow[60:]).max()


def test_a_brow_raise_moves_neither_the_pose_nor_less_than_itself():
    """The pose is fitted to landmarks rigid with the skull: raising both brows 3 mm on MediaPipe's canonical
    face, seen turned, must leave the fitted rotation and scale as they are and the whole raise in the
    expression (with the brow ends 70/300 in the fit: 0.07 deg, scale +0.17 %, 2.71 of the 3 mm read)."""
    from gaussian_head_ros.core import landmarks as lmk

    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float)
    x = v * np.array([0.01, -0.01, -0.01])  # cm, y up, z to the viewer -> metres of the head frame (y down)
    brow = np.array(lmk.BROW_R + lmk.BROW_L)
    raised = x.copy()
    raised[brow, 1] -= 0.003
    rot = cv2.Rodrigues(np.array([0.1, -0.2, 0.05]))[0]
    p = 2000.0 * raised @ rot.T + [300.0, 250.0, 0.0]  # pixels, as the tracker fits them
    s, r, t, _ = similarity_fit(x[RIGID], p[RIGID])
    assert np.degrees(np.arccos(np.clip((np.trace(r.T @ rot) - 1) / 2, -1, 1))) < 0.005
    assert s == pytest.approx(2000.0, rel=1e-5)
    read = -np.mean(((p - t) @ r / s - x)[brow, 1])
    assert read == pytest.approx(0.003, abs=2e-5)


def test_a_head_pitch_is_not_read_as_a_look_up_or_down():
    """The tracker's eye pitch is measured in the head frame (eyes.operator_gaze, on the pose-free landmarks).
    In MediaPipe's canonical face the iris sits ~3.6 mm in front of the eye corners' line, so in the image a head
    pitched by 15 deg moved the iris ~0.08 rad against the corners, read as a look the other way (sadtalker's
    operator tilts the head back ~20 deg while looking down: about half the look was cancelled). MediaPipe's
    canonical face (eyes straight ahead) seen pitched +-15 deg keeps its first frame's gaze (< 0.005 rad; the
    image-plane pitch read 0.07-0.09 rad)."""
    from gaussian_head_ros.core.control import euler_to_quat, quat_to_matrix
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.tracking import _Face

    face = _canonical_face()
    K = default_intrinsics(640, 480)

    def seen(pitch_deg):
        p = 2000.0 * face @ quat_to_matrix(euler_to_quat(pitch_deg=pitch_deg)).T + [320.0, 240.0, 0.0]
        return _Face(p.astype(np.float32), (0.0, 0.0, 640.0, 480.0), 1.0)

    with FaceTracker(TrackerConfig(smoothing=False)) as tracker:
        first = np.asarray(tracker._control(seen(0.0), K, 33_333_333).gaze, np.float64)
        for i, pitch in enumerate((15.0, -15.0)):
            c = tracker._control(seen(pitch), K, (i + 2) * 33_333_333, learn_neutral=False)
            np.testing.assert_allclose(np.asarray(c.gaze, np.float64), first, atol=0.005, err_msg=str(pitch))


def test_a_look_down_is_counted_once_in_the_lid_ratios():
    """The operator's lids follow a look down, and MediaPipe's lid points show it; the avatar's lids follow its
    own eyes too (deform.lid_turns). The tracker's lid ratios are net of the look down since the neutral
    (deform.net_lid_ratios): lids that came down as far as the coupling puts them give ratio 1 (the coupling
    alone lowers the avatar's: once); lids that closed further keep the rest of the drop; a look up changes
    nothing. Before, the ratio held the drop (0.9) and the coupling lowered the avatar's lids again."""
    from gaussian_head_ros.core import deform, eyes
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.tracking import _Face

    face = _canonical_face()
    K = default_intrinsics(640, 480)
    iris = list(range(lmk.NUM_MESH, lmk.NUM_LANDMARKS))
    mids = [p[0] for p in (lmk.EYELID_MID_R, lmk.EYELID_MID_L)], [p[1] for p in (lmk.EYELID_MID_R, lmk.EYELID_MID_L)]

    def seen(iris_down_m, upper_factor):
        v = face.copy()
        v[iris, 1] += iris_down_m
        v[mids[0]] = v[mids[1]] + upper_factor * (face[mids[0]] - face[mids[1]])  # centre gap x upper_factor
        return _Face((2000.0 * v + [320.0, 240.0, 0.0]).astype(np.float32), (0.0, 0.0, 640.0, 480.0), 1.0)

    with FaceTracker(TrackerConfig(smoothing=False)) as tracker:
        first = tracker._control(seen(0.0, 1.0), K, 33_333_333)
        neutral = tracker.neutral
        g0 = eyes.gaze_from_landmarks(neutral)
        mid = list(deform.LID_MID)
        np.testing.assert_allclose(first.eyelid_ratios, 1.0, atol=1e-6)
        looked = tracker._control(seen(0.002, 1.0), K, 2 * 33_333_333, learn_neutral=False)
        dp = np.asarray(looked.gaze, np.float64)[:, 1] - g0[:, 1]
        assert np.all(dp > 0.1), dp  # 2 mm down: a look down of ~0.15 rad
        c = deform.coupled_lid_ratio(neutral, eyes.eyeball_centres(neutral, g0), dp)
        for k, factor in enumerate((c.mean(), 0.9 * c.mean())):  # the coupling's drop; a lid closing further
            got = tracker._control(seen(0.002, factor), K, (k + 3) * 33_333_333, learn_neutral=False).eyelid_ratios
            np.testing.assert_allclose(got[mid], factor / c, rtol=0.02)
        up = tracker._control(seen(-0.002, 0.95), K, 6 * 33_333_333, learn_neutral=False).eyelid_ratios
        np.testing.assert_allclose(up[mid], 0.95, rtol=0.01)  # a look up: the ratios as measured

# ---------------------------------------------------------------------------------------------------
# Robustness: time, no face, several faces, small faces, resolutions, grey frames

def test_out_of_order_and_restarted_streams(frames):
    clip = frames["lp_d0"]
    with FaceTracker(TrackerConfig(neutral_frames=5)) as tr:
        for f in clip[:10]:
            assert tr.process(f.rgb, f.stamp_ns + 5_000_000_000) is not None
        last = clip[9].stamp_ns + 5_000_000_000
        assert tr.process(clip[10].rgb, last) is None  # same stamp: ignored
        assert tr.process(clip[10].rgb, last - 100_000_000) is None  # 0.1 s older: ignored
        c = tr.process(clip[10].rgb, 0)  # 5 s back: a new stream, processed
        assert c is not None and c.face_detected and c.stamp_ns == 0
        assert tr.calibrated  # the neutral face survives a restart
        c = tr.process(clip[11].rgb, 3_000_000_000)  # a long gap: processed, filters restarted
        assert c.face_detected


def test_no_face_holds_the_last_pose(frames):
    grey = np.full((480, 640, 3), 127, np.uint8)
    with FaceTracker() as tr:
        c = tr.process(grey, 1)
        assert not c.face_detected and c.confidence == 0 and c.stamp_ns == 1
        np.testing.assert_array_equal(c.rotation, [1, 0, 0, 0])  # rest before any face
        seen = tr.process(frames["sadtalker_WDA_KatieHill_000"][60].rgb, 2)
        c = tr.process(grey, 3)
        assert seen.face_detected and not c.face_detected and c.stamp_ns == 3
        np.testing.assert_array_equal(c.rotation, seen.rotation)
        np.testing.assert_array_equal(c.expression, seen.expression)


def _face_crop(name):
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.imageio import read_image

    img = read_image(str(shared("portraits", name)))
    with FaceMesh() as m:
        f = m.detect(img)[0]
    cx, cy, s = (f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2, int(2 * f.width)
    ys = np.clip(np.arange(int(cy - s / 2), int(cy - s / 2) + s), 0, img.shape[0] - 1)
    xs = np.clip(np.arange(int(cx - s / 2), int(cx - s / 2) + s), 0, img.shape[1] - 1)
    return img[ys][:, xs]


def test_operator_selection_is_stable():
    """Two faces equally far from the centre: the larger is the operator; a bystander who becomes a
    little larger does not take over (hysteresis); a fresh tracker picks the larger one."""
    a, b = _face_crop("obama_official.jpg"), _face_crop("trump_official.png")

    def frame(ha, hb):  # half-sizes of the two crops (the face is about as wide as the half-size)
        img = np.full((720, 1280, 3), 120, np.uint8)
        for crop, h, x in ((a, ha, 440), (b, hb, 840)):
            img[360 - h:360 + h, x - h:x + h] = cv2.resize(crop, (2 * h, 2 * h), interpolation=cv2.INTER_AREA)
        return img

    def operator_x(tr, img, stamp):
        c = tr.process(img, stamp)
        assert c.face_detected
        return tr._operator[0]

    with FaceTracker() as tr:
        assert operator_x(tr, frame(160, 120), 1) < 640  # the larger face, on the left
        for i in range(2, 6):
            assert operator_x(tr, frame(140, 160), i * 33_000_000) < 640  # stays with the operator
    with FaceTracker() as tr:
        assert operator_x(tr, frame(140, 160), 1) > 640  # fresh: the larger one


def test_small_face_in_a_large_frame_and_any_resolution(frames, tracked):
    """A ~45 px face moving in a 1080p frame is found in every frame (then followed in a crop) with the
    same head pose as at full size."""
    clip = frames["sadtalker_WDA_KatieHill_000"]
    with FaceTracker() as tr:
        for i, f in enumerate(clip[:20]):
            big = np.full((1080, 1920, 3), 90, np.uint8)
            x = 300 + 4 * i
            big[700:790, x:x + 90] = cv2.resize(f.rgb, (90, 90), interpolation=cv2.INTER_AREA)
            c = tr.process(big, f.stamp_ns)
            assert c.face_detected, i
            full = tracked["sadtalker_WDA_KatieHill_000"]["controls"][i]
            assert abs(euler_deg(c.rotation)["yaw"] - euler_deg(full.rotation)["yaw"]) < 4, i
        assert tr._roi is not None  # followed in a crop
    face = frames["lp_d18"][0].rgb
    for h, w in ((120, 160), (480, 640), (720, 1280), (1000, 500)):
        img = np.zeros((h, w, 3), np.uint8)
        s = min(h, w)
        img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s] = cv2.resize(face, (s, s))
        with FaceTracker() as tr:
            assert tr.process(img, 1).face_detected, (h, w)


def test_grey_frames(frames):
    from gaussian_head_ros.core.imageio import decode_raw

    bgr = frames["tpsmm_driving"][0].rgb[..., ::-1]
    grey = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2GRAY)
    rgb = decode_raw(grey.tobytes(), grey.shape[1], grey.shape[0], grey.shape[1], "mono8")
    with FaceTracker() as tr:
        assert tr.process(rgb, 1).face_detected


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="not found"):
        FaceTracker(TrackerConfig(model_path="/nonexistent/face_landmarker.task"))
    with pytest.raises(ValueError):
        TrackerConfig(beta=-1).validate()
    with pytest.raises(ValueError):
        TrackerConfig(max_faces=0).validate()
    with FaceTracker() as tr, pytest.raises(ValueError):
        tr.process(np.zeros((480, 640), np.uint8), 1)


# ---------------------------------------------------------------------------------------------------
# Video reader and the `gaussian-head track` command

def test_video_source_stamps(tmp_path):
    path = str(shared("driving", "lp_d0.mp4"))
    with VideoSource(path) as src:
        assert src.fps == pytest.approx(25.0) and src.frame_count == 78 and (src.width, src.height) == (512, 512)
        first = [src.read() for _ in range(3)]
    assert [f.stamp_ns for f in first] == [0, 40_000_000, 80_000_000]
    with VideoSource(path, loop=True, start_ns=10**9) as src:
        stamps = [src.read().stamp_ns for _ in range(160)]  # two passes and a bit
    assert stamps[0] == 10**9 and np.all(np.diff(stamps) > 0)
    assert stamps[78] - stamps[77] == pytest.approx(40_000_000, abs=1_000_000)
    with pytest.raises(ValueError):
        VideoSource(str(tmp_path / "missing.mp4"))


def test_a_video_path_that_is_no_file_says_what_it_is(tmp_path):
    """`gaussian-head track /dev/null` or a named pipe said 'video file ... is not a file (a directory?)' (user43, s43):
    now a directory is said as one, anything else as 'a device or a pipe' (as a photo file is)."""
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match=r"pipe is not a file: a device or a pipe$"):
        VideoSource(str(tmp_path / "pipe"))
    with pytest.raises(ValueError, match=r"is not a file: a directory$"):
        VideoSource(str(tmp_path))


def test_a_video_file_that_is_refused_is_said_in_our_words_only(tmp_path, capfd):
    """`gaussian-head eval --video notimg.png` (a text file named .png) printed FFmpeg's own "[png @ 0x55...] Invalid
    PNG signature 0x00000000." before our 'cannot decode video' line, and a clip cut short or a text file named .mp4
    "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x...] moov atom not found" before ours (user41, user43, user45). Now what OpenCV's
    FFmpeg writes to stderr while a file is opened is dropped when the file is refused with our sentence (the same
    log in video_source_node and the tracker's `video:=`); a file that opens keeps whatever FFmpeg said."""
    clip = shared("driving", "lp_d0.mp4").read_bytes()
    files = {"notimg.png": b"hello\n", "notimg.jpg": b"hello\n", "text.mp4": b"hello world\n",
             "cut.mp4": clip[:300_000], "empty.mp4": b""}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        capfd.readouterr()
        with pytest.raises(ValueError, match=f"cannot (open|decode) video {tmp_path / name}: "):
            VideoSource(str(tmp_path / name))
        err = capfd.readouterr().err
        assert " @ 0x" not in err, (name, err)
    with VideoSource(str(shared("driving", "lp_d0.mp4"))) as src:
        assert src.read() is not None
    out = subprocess.run(["gaussian-head", "track", str(tmp_path / "notimg.png"), "-o", str(tmp_path / "c.jsonl")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.strip().splitlines() == [
        f"gaussian-head track: error: cannot decode video {tmp_path / 'notimg.png'}: OpenCV finds no frame size in it "
        "(corrupt, or not a video or image)"], out.stderr


def test_native_lines_held_while_a_file_is_opened_come_back_unless_dropped(capfd):
    """native_log.held_stderr: what native code writes to fd 2 in the block is written back after it, in order;
    `drop_ffmpeg()` leaves out FFmpeg's own lines ('[<component> @ 0x<address>] ...') and keeps the others."""
    from gaussian_head_ros.core.native_log import held_stderr

    for drop in (False, True):
        capfd.readouterr()
        with held_stderr() as held:
            os.write(2, b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55a703389580] moov atom not found\n")
            os.write(2, b"E0000 an error of another library\n")
            if drop:
                held.drop_ffmpeg()
        err = capfd.readouterr().err
        assert err == ("" if drop else "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55a703389580] moov atom not found\n") + \
            "E0000 an error of another library\n", err


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc (a directory no file can be made in)")
def test_a_video_that_cannot_be_written_there_says_why():
    """`gaussian-head render ... -o /proc/r.mp4` said 'cannot write video '/proc/r.mp4' (no mp4v encoder in this
    OpenCV?)': the encoder was there, the place was not writable (user26, s26). The system's reason now."""
    from gaussian_head_ros.core.video import VideoWriter

    with pytest.raises(ValueError, match=r"cannot write video '/proc/r.mp4': No such file or directory"):
        with VideoWriter("/proc/r.mp4", 25) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))


def test_a_stream_recorded_as_it_arrives_plays_in_real_time(tmp_path):
    """`make demo` wrote each face display frame it received to out/demo.mp4 at the display's 30 fps: received at
    9.1 FPS on the loaded machine (75 frames in 8.0 s), the 8 s played in 2.5 s, the idle animation's blinks and sway
    3.3 times too fast (user62). VideoWriter.write_at places each frame at its arrival: repeated until the next one
    (a display slower than the fps), dropped where a newer one takes its slot (faster)."""
    from gaussian_head_ros.core.video import VideoSource, VideoWriter

    path = tmp_path / "stream.mp4"
    levels = (0, 80, 160, 240)
    with VideoWriter(path, 30) as w:
        for i, level in enumerate(levels):  # 10 FPS: 0.1 s apart, 3 slots each at 30 fps
            w.write_at(np.full((32, 32, 3), level, np.uint8), 0.1 * i)
        w.write_at(np.full((32, 32, 3), 40, np.uint8), 0.31)  # the slot of 0.3 s is taken: held for the next
        w.write_at(np.full((32, 32, 3), 200, np.uint8), 0.4)
    assert w.frames == 13, w.frames  # 0.4 s at 30 fps, and the last frame's own slot
    with VideoSource(str(path), loop=False) as src:
        got = [int(round(f.rgb.mean())) for f in iter(src.read, None)]
    want = [0] * 3 + [80] * 3 + [160] * 3 + [240] + [40] * 2 + [200]
    assert len(got) == 13 and np.allclose(got, want, atol=3), got


_FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
sys.argv = ["gaussian-head"] + sys.argv[2:]
from gaussian_head_ros.cli import main
sys.exit(main())
"""


def _gaussian_head_on_a_full_disk(args: list[str], file_limit_bytes: int) -> subprocess.CompletedProcess:
    """`gaussian-head ARGS` where no file can grow past `file_limit_bytes` (RLIMIT_FSIZE): the writes beyond fail as
    on a full disk (EFBIG 'File too large' in place of ENOSPC 'No space left on device'), with no root and no mount."""
    return subprocess.run([sys.executable, "-c", _FULL_DISK, str(file_limit_bytes), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("suffix", [".avi", ".mkv", ".mov"])
def test_a_video_written_whole_in_any_container_the_cli_takes_is_kept(tmp_path, suffix):
    """`gaussian-head render me.ply -o r.avi` (or .mkv; `eval --output`, `demo --output`: the same writer) rendered
    every frame, then refused the file: 'cannot write video .../r.avi: the file was cut short at 18738 bytes while it
    was written, its index missing (83089301 KB free there: is the disk full?)' (user46, s46): the check for a whole
    file read it as an MP4, whose index an AVI or a Matroska file does not have. Now each container is read by its
    own rules: the file is kept, and its frames read back."""
    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    save_ply(synthetic_avatar(n=2000), tmp_path / "me.ply")
    out = subprocess.run([sys.executable, "-m", "gaussian_head_ros.cli", "render", str(tmp_path / "me.ply"), "-o",
                          str(tmp_path / f"r{suffix}"), "--seconds", "0.5", "--size", "64"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and f"wrote {tmp_path / f'r{suffix}'}: 15 frames" in out.stdout, (out.stdout, out.stderr)
    cap = cv2.VideoCapture(str(tmp_path / f"r{suffix}"))
    assert cap.read()[0] and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 15
    cap.release()


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_an_avi_or_mkv_that_a_full_disk_cuts_short_is_refused(tmp_path, suffix):
    """The AVI and Matroska rules of the check above: a file whose writes failed past a size limit (as on a full disk)
    counts more bytes in its header (AVI: RIFF; Matroska: its Segment) than it has, and is refused, nothing left at
    -o. (Its first frames still read back: a cut-short .mkv of 120 frames read 73.)"""
    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    save_ply(synthetic_avatar(n=2000), tmp_path / "me.ply")
    out = _gaussian_head_on_a_full_disk(["render", str(tmp_path / "me.ply"), "-o", str(tmp_path / f"r{suffix}"),
                                         "--seconds", "4"], 150_000)
    assert out.returncode == 1 and "wrote" not in out.stdout, (out.stdout, out.stderr)
    assert f"gaussian-head render: error: cannot write video {tmp_path / f'r{suffix}'}: " in out.stderr, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.driving.npz", "me.ply"]


def test_outputs_that_a_full_disk_cuts_short_are_said_naming_the_file(tmp_path):
    """On a nearly full disk (a 2 MB tmpfs, user45): `gaussian-head render me.ply -o r.mp4` printed OpenCV's
    '[ WARN ] ... write FFmpeg: Failed to write frame', then 'wrote r.mp4: 150 frames ...' and exited 0, leaving a
    151 KB r.mp4 without its index that no player opens; `track -o` and `reconstruct -o` said only 'error: No space
    left on device', no file named. Now render refuses the video it could not finish (nothing at -o, no part file),
    and a write error names the file being written (what was at -o before stays; save_ply here, as reconstruct's)."""
    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    save_ply(synthetic_avatar(n=2000), tmp_path / "me.ply")
    # (the limit is above the numba cache files a first run writes: 70-85 KB each for drive's kernels)
    out = _gaussian_head_on_a_full_disk(["render", str(tmp_path / "me.ply"), "-o", str(tmp_path / "r.mp4"),
                                         "--seconds", "4"], 150_000)
    assert out.returncode == 1 and "wrote" not in out.stdout, (out.stdout, out.stderr)
    assert f"gaussian-head render: error: cannot write video {tmp_path / 'r.mp4'}: " in out.stderr, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.driving.npz", "me.ply"]

    (tmp_path / "me.ply").write_text("ply\n")  # what -o held before: kept
    save = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, resource.RLIM_INFINITY)); "
            "from gaussian_head_ros.core.avatar import save_ply; from gaussian_head_ros.core.synthetic import "
            "synthetic_avatar\ntry: save_ply(synthetic_avatar(n=2000), sys.argv[1])\nexcept OSError as e: print(e)")
    out = subprocess.run([sys.executable, "-c", save, str(tmp_path / "me.ply")], capture_output=True, text=True,
                         timeout=120)  # (the .ply of reconstruct -o, and track -o's controls, go through WholeFile)
    assert out.stdout.strip() == f"[Errno 27] File too large: '{tmp_path / 'me.ply'}'", (out.stdout, out.stderr)
    assert (tmp_path / "me.ply").read_text() == "ply\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.driving.npz", "me.ply"]


def test_a_looped_file_counts_its_plays_and_sizes_its_frames_as_sent(tmp_path):
    """video_source_node said 'end of video after 6192 frames' for a 516-frame file looped 12 times before `loop`
    was set false, and 'playing (480x480 ...)' while max_side 240 sent 240x240 (user25, s25): the source counts its
    plays and the frames of the last one, and gives the size it hands out."""
    path = str(shared("driving", "lp_d0.mp4"))  # 78 frames, 512 x 512
    with VideoSource(path, loop=True) as src:
        assert src.sent_size() == (512, 512) and (src.plays, src.frames_this_play) == (1, 0)
        for _ in range(78 * 2 + 10):  # two plays and 10 frames of the third
            src.read()
        assert (src.plays, src.frames_this_play) == (3, 10)
        src.loop, src.max_side = False, 200
        assert src.sent_size() == (200, 200)
        n = 10
        while (f := src.read()) is not None:
            assert (f.rgb.shape[1], f.rgb.shape[0]) == src.sent_size()
            n += 1
        assert n == 78 and (src.plays, src.frames_this_play) == (3, 78)
    from PIL import Image

    still = tmp_path / "still.png"  # a still image: each repeat a play of its one frame
    Image.fromarray(np.full((60, 40, 3), 128, np.uint8)).save(still)
    with VideoSource(str(still), loop=True, max_side=30) as src:
        assert src.sent_size() == (20, 30) and src.read().rgb.shape == (30, 20, 3)
        src.read(), src.read()
        assert (src.plays, src.frames_this_play) == (3, 1)


def test_video_source_refuses_non_videos_and_loops_a_still_image(tmp_path):
    """`video:=notes.txt` (or a corrupt file) played as a 0x0 video that ended at once, said as 'playing' and
    'finished' (level OK); `video:=me.jpg` with loop published one frame and stopped (user12, s12)."""
    for name in ("clip.mp4", "photo.jpg"):  # .mp4: OpenCV does not open it; .jpg: it opens, 0x0, no frame
        junk = tmp_path / name
        junk.write_bytes(b"not a video" * 100)
        with pytest.raises(ValueError, match="cannot (open|decode) video"):
            VideoSource(str(junk))
    with pytest.raises(ValueError, match="not a file"):
        VideoSource(str(tmp_path))
    still = tmp_path / "me.png"
    cv2.imwrite(str(still), np.full((48, 64, 3), 90, np.uint8))
    with VideoSource(str(still), loop=True) as src:
        frames = [src.read() for _ in range(4)]
    assert all(f is not None and f.rgb.shape == (48, 64, 3) for f in frames), frames
    assert np.all(np.diff([f.stamp_ns for f in frames]) > 0)
    with VideoSource(str(still)) as src:  # without loop: one frame, then the end
        assert src.read() is not None and src.read() is None


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.path.exists("/dev/video97"), reason="V4L2 paths")
def test_a_camera_that_is_not_there_is_said_so():
    """`video:=/dev/video0` on a machine (or a container) without that device was refused as 'unsupported format or
    busy device' (user18, s18): now the device node is named as missing, with what to check."""
    for source in ("/dev/video97", "97"):
        with pytest.raises(ValueError, match=r"cannot open camera '(/dev/video)?97': no such device /dev/video97 "
                                             r"\(is the camera plugged in"):
            VideoSource(source)


def test_a_looping_still_image_is_decoded_once(tmp_path, monkeypatch):
    """`video:=me.jpg` looped by reopening the file's VideoCapture and decoding it again at every frame (30 times a
    second; user13, s13): now its one frame is decoded once and handed out again, a copy each time, stamps rising
    at the nominal rate."""
    import gaussian_head_ros.core.video as video

    opened, capture = [], cv2.VideoCapture

    def counting(*args):
        opened.append(args)
        return capture(*args)

    monkeypatch.setattr(video.cv2, "VideoCapture", counting)
    still = tmp_path / "me.png"
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    cv2.imwrite(str(still), img)
    with video.VideoSource(str(still), loop=True) as src:
        frames = [src.read() for _ in range(10)]
    assert len(opened) <= 1, f"the still image was opened {len(opened)} times for 10 frames"
    assert all(np.array_equal(f.rgb, img[..., ::-1]) for f in frames)
    frames[1].rgb[:] = 0  # a consumer drawing on its frame does not change the next ones
    assert np.array_equal(frames[2].rgb, img[..., ::-1])
    assert [f.index for f in frames] == list(range(10))
    assert np.allclose(np.diff([f.stamp_ns for f in frames]), 1e9 / src.fps, atol=1)


@pytest.mark.parametrize("ext", ["mp4", "hdr"])
def test_a_file_of_one_frame_only_opencv_decodes_loops_as_a_still_image_does(tmp_path, ext):
    """A file of one frame that OpenCV plays (still_image passes it on: a one-frame video, or an image Pillow does not
    know, a Radiance .hdr here) is replayed from its one decoded frame when it loops, as a still image is; it had a
    replay of its own, which kept the first frame's size whatever max_side was set while it played, and played on
    with loop set false (video_source_node sets both before each frame); a still image's follows them (s21)."""
    from gaussian_head_ros.core.video import still_image

    path = tmp_path / f"one_frame.{ext}"
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    if ext == "hdr":
        cv2.imwrite(str(path), img.astype(np.float32) / 255)
    else:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
        writer.write(img)
        writer.release()
    assert still_image(str(path)) is None  # OpenCV's to play
    with VideoSource(str(path), loop=True) as src:
        frames = [src.read() for _ in range(4)]
        assert all(f.rgb.shape == (48, 64, 3) and np.array_equal(f.rgb, frames[0].rgb) for f in frames), frames
        frames[1].rgb[:] = 0  # a consumer drawing on its frame does not change the next ones
        src.max_side = 32
        smaller = src.read()
        assert smaller.rgb.shape == (24, 32, 3), smaller.rgb.shape
        src.loop = False
        assert src.read() is None
    stamps = [f.stamp_ns for f in frames + [smaller]]
    assert np.allclose(np.diff(stamps), 1e9 / src.fps, atol=1), stamps


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_phone_photo_as_a_video_source_is_upright_and_opaque(tmp_path, fmt):
    """`video:=me.jpg` with a phone photo: OpenCV played it lying on its side (EXIF Orientation 6 ignored: the tracker
    saw a face rolled 90 degrees) and showed the colour under its transparent pixels (magenta here). A still image is
    now decoded as a photo is: upright (64 wide, 48 high, the white corner top-left) and composited onto the grey."""
    from PIL import Image

    from gaussian_head_ros.core.imageio import BACKDROP_RGB

    upright = np.zeros((48, 64, 4), np.uint8)
    upright[..., :3], upright[..., 3] = (200, 140, 110), 255
    upright[:8, :8, :3] = 255  # the top-left corner as the camera's user saw it
    upright[-8:, -8:] = (255, 0, 255, 0)  # transparent (PNG, WebP): magenta hidden under it
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # Orientation 6: turn 90 degrees clockwise to show
    exif = Image.Exif()
    exif[274] = 6
    path = tmp_path / f"me.{fmt.lower()}"
    im = Image.fromarray(stored if fmt != "JPEG" else stored[..., :3])
    im.save(path, fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {}))
    with VideoSource(str(path), loop=True) as src:
        frames = [src.read() for _ in range(3)]
        assert (src.width, src.height) == (64, 48)
    for f in frames:
        assert f.rgb.shape == (48, 64, 3)
        assert f.rgb[:6, :6].min() > 240 and f.rgb[24, 32].tolist() == pytest.approx([200, 140, 110], abs=3)
        if fmt != "JPEG":
            assert f.rgb[-4, -4].tolist() == list(BACKDROP_RGB)
    assert np.all(np.diff([f.stamp_ns for f in frames]) > 0)
    with VideoSource(str(path)) as src:  # without loop: one frame, then the end
        assert src.read() is not None and src.read() is None
    with VideoSource(str(path), loop=True, max_side=32) as src:  # max_side set while playing (video_source_node)
        assert src.read().rgb.shape == (24, 32, 3) and (src.width, src.height) == (64, 48)
        src.max_side = 16  # bounds the longer side; the shorter is kept at the tracker's smallest, 16 (was 12)
        assert src.read().rgb.shape == (16, 21, 3)


@pytest.mark.parametrize("cut", ["obama_official.jpg", "png"])
def test_a_truncated_photo_as_a_video_source_is_refused_with_the_reason(tmp_path, cut):
    """`video:=cut.jpg` with a photo file cut short (a copy that broke off): imageio refuses it, and still_image
    handed it to OpenCV, which played obama_official.jpg's first 5000 bytes as its 128x160 EXIF thumbnail, the
    lower half flat green, without a word (user20, s20); the reconstruction node refuses the same file. Now the
    source is refused naming the file and why, as video_source_node says for any source it cannot open."""
    from PIL import Image

    path = tmp_path / "cut.jpg"
    if cut == "png":
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buf, "PNG")
        path = tmp_path / "cut.png"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    else:
        path.write_bytes(shared("portraits", cut).read_bytes()[:5000])
    with pytest.raises(ValueError, match=rf"cannot decode image '{path}': .*corrupt, truncated"):
        VideoSource(str(path), loop=True)


def test_an_mpeg1_stream_cut_short_still_plays_as_a_video(tmp_path):
    """A guard of the test above: an MPEG-1 video stream (.m1v), whose header Pillow reads too (format MPEG, which it
    cannot decode), plays through OpenCV, whole or cut short, not refused as a broken photo (user20's c26c36f: the first
    form of this refusal turned a playable .m1v away as 'cannot decode image')."""
    clip = tmp_path / "clip.m1v"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"PIM1"), 25, (64, 64))
    for i in range(10):
        writer.write(np.full((64, 64, 3), 20 * i, np.uint8))
    writer.release()
    if not (clip.exists() and clip.stat().st_size):
        pytest.skip("this OpenCV writes no MPEG-1")
    cut = tmp_path / "cut.m1v"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    for path, least in ((clip, 10), (cut, 1)):
        with VideoSource(str(path)) as src:
            assert sum(1 for _ in src) >= least, path


def test_a_video_smaller_than_the_tracker_reads_is_refused(tmp_path):
    """`ros2 run gaussian_head_ros video_source_node --ros-args -p source:=tiny.png` (a 1x1 PNG; user20, s20) logged
    'playing tiny.png (1x1 at 25 fps, looping)', its /diagnostics said 'playing' at OK, and the tracker skipped every
    frame ('need an RGB uint8 image of at least 16x16'). Now a file whose frames are under facemesh.MIN_IMAGE_SIDE a
    side is refused when opened, with the sizes (the node: at ERROR, on /diagnostics): a still image (decoded as a
    photo) and a video (OpenCV) alike; 16x16 plays."""
    cases = [("png", 1, 1, True), ("png", 64, 12, True), ("png", 16, 16, False), ("avi", 48, 8, True),
             ("avi", 16, 16, False)]
    for ext, w, h, refused in cases:
        path = tmp_path / f"small_{w}x{h}.{ext}"
        if ext == "png":
            cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))
        else:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
            for i in range(3):
                writer.write(np.full((h, w, 3), 40 * i, np.uint8))
            writer.release()
        if refused:
            with pytest.raises(ValueError, match=rf"is {w}x{h}, smaller than the face tracker reads \(16x16 and more"):
                VideoSource(str(path), loop=True)
        else:
            with VideoSource(str(path), loop=True) as src:
                assert src.read().rgb.shape == (h, w, 3), path


def vfr_clip(path, n: int = 40) -> None:
    """An mp4 of `n` (even) 64x48 frames whose grey level is 6 x its index, with a variable frame rate as a phone
    records: its first half 1/60 s apart, the second half 1/20 s (written by OpenCV at 30 fps, then its `stts` box, the
    sample durations, rewritten: ISO/IEC 14496-12 8.6.1.2; the total duration, and so the edit list, unchanged)."""
    import struct

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), 6 * i, np.uint8))
    writer.release()
    data = bytearray(open(path, "rb").read())

    def child(start, end, name):
        while start < end:
            size, kind = struct.unpack(">I4s", data[start:start + 8])
            if kind == name:
                return start, size
            start += size
        raise AssertionError(f"no {name} box")

    parents, start, end = [], 0, len(data)
    for name in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
        start, size = child(start, end, name)
        parents.append(start)
        start, end = start + 8, start + size
    stts, size = child(start, end, b"stts")
    (count, delta), = [struct.unpack(">II", data[stts + 16:stts + 24])]
    assert count == n and delta % 2 == 0 and child(0, len(data), b"mdat")[0] < parents[0]  # moov last: no offsets move
    half = n // 2  # half of the frames at half the duration, half at 1.5 times: the same total
    box = struct.pack(">I4sIIIIII", 32, b"stts", 0, 2, half, delta // 2, n - half, delta * 3 // 2)
    for p in parents:
        data[p:p + 4] = struct.pack(">I", struct.unpack(">I", data[p:p + 4])[0] + len(box) - size)
    data[stts:stts + size] = box
    open(path, "wb").write(bytes(data))


def test_a_variable_frame_rate_video_plays_at_its_own_pace(tmp_path):
    """A phone video's frames are not evenly spaced: video_source_node published every frame 1/fps apart (the average
    rate OpenCV reports), a 60 fps stretch in slow motion and a 20 fps one at 1.5x. `play_interval_s` gives each frame
    its gap from the one before by their presentation times (`rate` asked: 1/rate; the first frame: 0)."""
    path = tmp_path / "vfr.mp4"
    vfr_clip(path)
    with VideoSource(str(path)) as src:
        gaps = [src.play_interval_s(f) for f in src]
        assert src.play_interval_s(VideoFrame(None, 0, 5), rate=10.0) == pytest.approx(0.1)
    assert len(gaps) == 40 and gaps[0] == 0.0
    np.testing.assert_allclose(gaps[1:21], 1 / 60, atol=1e-3)  # gap k: the duration of frame k - 1
    np.testing.assert_allclose(gaps[21:], 1 / 20, atol=1e-3)


def test_track_command_writes_jsonl(tmp_path):
    from gaussian_head_ros.cli import main

    out = tmp_path / "c.jsonl"
    assert main(["track", str(shared("driving", "lp_d18.mp4")), "-o", str(out), "--max-frames", "12"]) == 0
    lines = [json.loads(s) for s in out.read_text().splitlines()]
    assert len(lines) == 12
    obj = lines[-1]
    assert obj["face_detected"] and 0 < obj["confidence"] <= 1
    assert set(obj["head_pose"]["euler_deg"]) == {"yaw", "pitch", "roll"}
    assert len(obj["head_pose"]["quaternion_wxyz"]) == 4 and 0.1 < obj["head_pose"]["translation_m"][2] < 2
    assert np.shape(obj["landmarks"]) == (478, 3) and "mouth_open" in obj and "blendshapes" not in obj
    assert lines[1]["stamp_ns"] == pytest.approx(1e9 / 30, abs=1e6)
    out2 = tmp_path / "m.jsonl"
    assert main(["track", str(shared("driving", "lp_d0.mp4")), "-o", str(out2), "--max-frames", "3",
                 "--model", str(SHARED / "models" / MODEL)]) == 0
    obj = json.loads(out2.read_text().splitlines()[-1])
    assert len(obj["blendshapes"]) == 52 and math.isfinite(obj["blendshapes"]["jawOpen"])
    assert main(["track", str(tmp_path / "missing.mp4"), "-o", str(out2)]) == 1


def test_track_says_how_many_frames_had_no_face(tmp_path, capsys, caplog):
    """`gaussian-head track` on a clip with no face in it wrote a 'no face' line for every frame and exited 0, saying
    only 'face found in 0 (0.0%)' beside its timing: a script went on to render an avatar that never moved. Now no
    face at all is an error (exit 1, naming the clip; the -o file is not written, what was there stays) and a clip
    whose face leaves is warned about: how many frames, their share and when the first was (tracking.no_face_note).
    lp_d0's first 16 frames, then 8 grey ones."""
    from gaussian_head_ros.cli import main

    frames = read_frames(str(shared("driving", "lp_d0.mp4")), max_frames=16)
    h, w = frames[0].rgb.shape[:2]
    for name, n_face in (("empty.mp4", 0), ("leaves.mp4", 16)):
        writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
        for i in range(24):
            writer.write(frames[i].rgb[..., ::-1].copy() if i < n_face else np.full((h, w, 3), 90, np.uint8))
        writer.release()
    capsys.readouterr()
    (tmp_path / "e.jsonl").write_text("the previous controls\n")
    assert main(["track", str(tmp_path / "empty.mp4"), "-o", str(tmp_path / "e.jsonl")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert f"error: no face was found in any of the 24 frames of {tmp_path / 'empty.mp4'}" in err[-1], err
    # refused, and not written (it was, beside the exit 1: 24 'no face' lines over the file that was there)
    assert err[-1].endswith(f"; {tmp_path / 'e.jsonl'} is not written"), err
    assert (tmp_path / "e.jsonl").read_text() == "the previous controls\n"
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    caplog.clear()
    assert main(["track", str(tmp_path / "leaves.mp4"), "-o", str(tmp_path / "l.jsonl")]) == 0
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(f"no face in 8 of the 24 frames of {tmp_path / 'leaves.mp4'} (33 %, the first at 0.64 s)" in s
               for s in said), said


def test_track_says_a_face_upside_down(tmp_path, caplog):
    """`gaussian-head track` on a clip filmed upside down (lp_d0's first 30 frames turned half a turn) said 'face found
    in 30 (100.0%)' and wrote controls that make the avatar grimace (user37, s37): the face mesh fits an upside-down
    face as an upright one. Now it warns with how many frames; the clip as it is gets no such warning. Filmed on its
    side (a phone held sideways), it said nothing either, and the controls roll the avatar's head a quarter turn
    (user56, s56): now it warns so too."""
    from gaussian_head_ros.cli import main

    frames = read_frames(str(shared("driving", "lp_d0.mp4")), max_frames=30)
    h, w = frames[0].rgb.shape[:2]
    said = {}
    for name, turn in (("upright.mp4", 0), ("upside_down.mp4", 2), ("sideways.mp4", 1)):
        writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
        for f in frames:
            writer.write(np.ascontiguousarray(np.rot90(f.rgb, turn)[..., ::-1]))
        writer.release()
        caplog.clear()
        assert main(["track", str(tmp_path / name), "-o", str(tmp_path / f"{name}.jsonl")]) == 0
        said[name] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and
                      ("upside down" in r.getMessage() or "on its side" in r.getMessage())]
    assert said["upright.mp4"] == [], said
    assert len(said["sideways.mp4"]) == 1 and "lies on its side in 30 of the 30 frames with a face (100 %)" in \
        said["sideways.mp4"][0], said
    assert len(said["upside_down.mp4"]) == 1 and "upside down in 30 of the 30 frames with a face (100 %)" in \
        said["upside_down.mp4"][0], said


def test_an_unplayable_video_file_says_why(tmp_path):
    """A recording cut off before its end (an MP4 without its 'moov' index: a phone or OBS stopped, a copy broken
    off) was refused as '(unsupported format)', which sends a user looking for a codec; FFmpeg's own line says 'moov
    atom not found'. Now the source says it is an MP4 without its index, cut off, and what to do; an empty file and a
    file that is no video say so too. The whole clip opens as before."""
    whole = shared("driving", "lp_d0.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 3])  # lp_d0's index ('moov') is at its end
    with pytest.raises(ValueError, match=rf"cannot open video {cut}: an MP4/MOV file without its index \(no 'moov'"):
        VideoSource(str(cut))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="the file is empty"):
        VideoSource(str(empty))
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(ValueError, match="not a video format"):
        VideoSource(str(junk))
    with VideoSource(str(shared("driving", "lp_d0.mp4"))) as src:
        assert next(iter(src)).rgb.shape[2] == 3


def test_another_person_in_front_of_the_operator_is_said_and_counted():
    """A lone face found a frame after the operator but elsewhere (another person who steps in front of the camera and
    covers the operator) was followed without a word, against the previous operator's neutral face: a still face read
    as a 1.3 cm grimace (user51, s51). Now it is counted as an operator switch (the tracker node re-calibrates the
    neutral face on it) and said; the operator's own moves on a clip are not (lp_d0's 40 frames: none)."""
    from gaussian_head_ros.core.imageio import read_image

    frames = read_frames(str(shared("driving", "lp_d0.mp4")), max_frames=44)
    person = read_image(str(shared("portraits", "business_person.png")))
    patch = cv2.resize(person, (420, int(round(person.shape[0] * 420 / person.shape[1]))), interpolation=cv2.INTER_AREA)
    h, w = frames[0].rgb.shape[:2]
    with FaceTracker(TrackerConfig()) as tracker:
        for i, f in enumerate(frames):
            rgb = f.rgb.copy()
            if i >= 40:  # her head and shoulders over his face from frame 40 on (she is further from the camera)
                rgb[:, 90:90 + patch.shape[1]] = patch[:h]
            tracker.process(rgb, (i + 1) * 33_333_333)
            if i == 39:
                assert tracker.operator_switches == 0, "the operator's own moves were read as another person"
        assert tracker.operator_switches == 1, f"{tracker.operator_switches} switches for one person stepping in"


def test_a_new_frame_size_is_not_another_person():
    """A camera whose frames change size (video_source_node's max_side set at run time, a driver's new mode) made the
    operator's box, compared in the old frame's pixels, read as another person: 'another face replaced the operator:
    110 px wide, 0.8 face widths from where the face followed (220 px wide) was', an operator switch and a
    re-calibration at each change (user52, s52). The box is now carried to the new size: lp_d18 sent at 480, 240, 480
    and 320 px is one operator."""
    frames = read_frames(str(shared("driving", "lp_d18.mp4")), max_frames=40)
    with FaceTracker(TrackerConfig()) as tracker:
        for i, f in enumerate(frames):
            side = (480, 240, 480, 320)[i // 10]
            rgb = f.rgb if f.rgb.shape[1] == side else cv2.resize(f.rgb, (side, side), interpolation=cv2.INTER_AREA)
            c = tracker.process(rgb, (i + 1) * 33_333_333)
            assert c is not None and c.face_detected, i
        assert tracker.operator_switches == 0, f"{tracker.operator_switches} switches for one operator at 4 frame sizes"


def test_a_new_frame_shape_is_not_another_person():
    """A camera switched from a wide mode to a square one (1920x1080 -> 512x512: a driver's new mode, a crop set at
    run time) was said as 'another face replaced the operator', an operator switch and a re-calibration (user56,
    s56): the box carried to the new size as the same view scaled moved it away from the face, since a frame of
    another shape shows another part of the view. lp_d18 sent letterboxed into 16:9 frames, then as its own square
    frames, then 16:9 again, is one operator."""
    frames = read_frames(str(shared("driving", "lp_d18.mp4")), max_frames=30)
    with FaceTracker(TrackerConfig()) as tracker:
        for i, f in enumerate(frames):
            rgb = f.rgb
            if i // 10 != 1:  # the same picture in the middle of a 16:9 frame, 1.5x as large
                h, w = rgb.shape[:2]
                big = cv2.resize(rgb, (w * 3 // 2, h * 3 // 2), interpolation=cv2.INTER_LINEAR)
                wide = np.zeros((big.shape[0], big.shape[0] * 16 // 9, 3), np.uint8)
                x0 = (wide.shape[1] - big.shape[1]) // 2
                wide[:, x0:x0 + big.shape[1]] = big
                rgb = wide
            c = tracker.process(rgb, (i + 1) * 33_333_333)
            assert c is not None and c.face_detected, i
        assert tracker.operator_switches == 0, f"{tracker.operator_switches} switches for one operator at 2 shapes"


def test_an_operator_standing_up_is_not_said_to_be_upside_down():
    """An operator standing up (the face leaving the frame by its top edge) was said to be filmed upside down:
    tracker_node warned 'the operator's face is upside down in the camera frames (a camera mounted upside down?)'
    and kept it until the face came back (user56, s56; lp_d18 slid up, the mouth and chin left in view, the eyes
    above the frame: the short-range detector rated that crop turned half a turn higher). The upright check now waits
    for a face the frame does not cut; a face filmed upside down is still said (test_track_says_a_face_upside_down)."""
    frames = read_frames(str(shared("driving", "lp_d18.mp4")), max_frames=170)
    h = frames[0].rgb.shape[0]
    wall = np.empty_like(frames[0].rgb)
    wall[:] = frames[0].rgb[5:40, 5:40].reshape(-1, 3).mean(0).astype(np.uint8)  # the room once the face is gone
    tracker = FaceTracker()
    faces = 0
    for k in range(20):  # the frame's content slides up by 24 px a frame; each frame 6 s on: each is checked
        shift = h * (k + 1) // 20
        rgb = wall.copy()
        rgb[: h - shift] = frames[150 + k].rgb[shift:]
        control = tracker.process(rgb, (k + 1) * 6_000_000_000)
        faces += control.face_detected
        assert not tracker.upside_down, f"said upside down with the frame slid up {shift} px"
    assert faces >= 12, faces  # the face is followed until most of it has left
    tracker.close()


def test_a_face_on_its_side_is_told_apart_from_an_upright_or_upside_down_one():
    """A camera on its side (a phone held sideways as a webcam) rolled the avatar's head and torso a quarter turn on
    the robot's display, without a word (user56, s56). FaceTracker.side_turn now gives the quarter turns that make
    such a face upright (np.rot90(frame, k)); 0 for the face upright or upside down (upside_down says that one)."""
    frames = read_frames(str(shared("driving", "lp_d18.mp4")), max_frames=4)
    for turn, side, upside_down in ((0, 0, False), (1, 3, False), (-1, 1, False), (2, 0, True)):
        tracker = FaceTracker()
        for i, f in enumerate(frames):
            control = tracker.process(np.ascontiguousarray(np.rot90(f.rgb, turn)), (i + 1) * 33_333_333)
            assert control.face_detected, (turn, i)
        assert (tracker.side_turn, tracker.upside_down) == (side, upside_down), turn
        tracker.close()


def test_a_closed_tracker_and_a_model_cut_short_are_said_in_our_words(tmp_path):
    """`tracker.process` after `close()` (or after its with-block) said MediaPipe's '_graph is None in SolutionBase',
    and a list said "'list' object has no attribute 'ndim'"; a face_landmarker.task whose download stopped early was
    said to be 'a MediaPipe model bundle (.task), not a FaceLandmarker .task bundle', as if it were another model
    (cli63)."""
    from gaussian_head_ros.core.tracking import check_landmarker_task

    rgb = np.zeros((64, 64, 3), np.uint8)
    with FaceTracker() as tr:
        with pytest.raises(ValueError, match="got a list"):
            tr.process(rgb.tolist(), 1)
    with pytest.raises(ValueError, match="this FaceTracker is closed"):
        tr.process(rgb, 2)
    tr.close()  # a second close does nothing
    cut = tmp_path / "face_landmarker.task"
    cut.write_bytes(shared("models", "face_landmarker.task").read_bytes()[:100_000])
    with pytest.raises(ValueError, match=r"face_landmarker.task is a MediaPipe model bundle cut short \(100000 bytes"):
        check_landmarker_task(str(cut), "--model")
    with pytest.raises(ValueError, match="cut short"):
        FaceTracker(TrackerConfig(model_path=str(cut)))
