"""Shared test set-up: a private ROS 2 graph per test session, paths to ../shared/data."""

from __future__ import annotations

import copy
import fcntl
import hashlib
import logging
import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

_held_domain = []  # the lock file of this session's ROS domain, open until the process exits


def _private_domain() -> str:
    """A ROS domain id in 1..100 that no other test session on this machine holds (an exclusive flock on
    <tmp>/ghr-test-domain-<id>.lock, released when this process exits; not inherited by the node processes).
    With a plain random id, two sessions run at once (several checkouts tested on one machine) had a 1 in 100
    chance per pair of sharing a graph and seeing each other's nodes and topics."""
    ids = list(range(1, 101))
    random.SystemRandom().shuffle(ids)
    for d in ids:
        fh = open(os.path.join(tempfile.gettempdir(), f"ghr-test-domain-{d}.lock"), "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            continue
        _held_domain.append(fh)
        return str(d)
    return str(ids[0])  # 100 sessions at once: share one


# A private graph: a domain of its own, localhost-only discovery, our own ROS_HOME and log dir. Set before
# anything imports rclpy, and inherited by every process the tests start.
# Under pytest-xdist (scripts/test.sh runs the suite on 2 workers) each worker is a process of its own that imports
# this file and inherits the controller's environment, its domain included: workers on one domain saw each other's
# nodes and topics (21 node tests failed with -n 2, s42). So each worker takes a free domain of its own, as does a
# process started with GHR_TEST_OWN_DOMAIN=1 (scripts/test.sh's CPU-module process, beside the node-module one).
_ros_home = tempfile.mkdtemp(prefix="ghr-test-ros-")
_own_domain = os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get("GHR_TEST_OWN_DOMAIN")
if "ROS_DOMAIN_ID" not in os.environ or _own_domain:
    os.environ["ROS_DOMAIN_ID"] = _private_domain()
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_HOME"] = _ros_home
os.environ["ROS_LOG_DIR"] = os.path.join(_ros_home, "log")
os.environ.setdefault("PYTHONUNBUFFERED", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session", autouse=True)
def _torch_threads_share_the_cores():
    """Under pytest-xdist, torch's intra-op threads in each worker are its share of the cores (cores // workers, at
    least 1) instead of all of them: two workers each training with 2 threads on a 2-core machine spun against each
    other, and test_train's test_tiny_preset_overfits_one_clip took 226 s instead of 35 s (s43). Run in one process
    (no worker count), torch keeps its default. Results do not depend on the thread count beyond the summation order
    of float reductions; tests that set their own threads (renderers, bench) still do. GHR_TEST_TORCH_THREADS sets the
    count itself: scripts/test.sh gives its CPU-module process 1, leaving a core to the node process beside it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = os.environ.get("GHR_TEST_TORCH_THREADS")
    if threads or workers > 1:
        import torch

        torch.set_num_threads(int(threads) if threads else max(1, len(os.sched_getaffinity(0)) // workers))
    yield


@pytest.fixture(scope="module", autouse=True)
def _ros_home_per_module(tmp_path_factory):
    """Each test module its own ROS_HOME (inherited by the nodes it starts): reconstruction_node keeps the last
    avatar under ROS_HOME and serves it again at start-up, which must not carry one module's avatar into another's."""
    old = os.environ["ROS_HOME"]
    os.environ["ROS_HOME"] = str(tmp_path_factory.mktemp("ros_home"))
    yield
    os.environ["ROS_HOME"] = old


def _propagating(base: type) -> type:
    """A subclass of the logger class `base` whose package loggers (gaussian_head_ros.*) propagate."""

    class PackageLogsPropagate(base):
        def __init__(self, name, *args, **kwargs):
            super().__init__(name, *args, **kwargs)
            if name.startswith("gaussian_head_ros"):
                self.propagate = True

    return PackageLogsPropagate


@pytest.fixture(autouse=True)
def _package_logs_propagate():
    """launch (imported into this process by test_launch / the launch_pytest plugin) makes every logger
    created after it a LaunchLogger with propagate=False, so our modules' log records would never reach
    pytest's caplog. Give the package's loggers back the standard behaviour before each test, and to those a test
    creates (a module imported by the command it runs: test_track_says_how_many_frames_had_no_face, run alone, got
    no record from commands.track's logger, made during the test; user37, s37). launch.logging.reset() sets its
    class again: checked before each test."""
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("gaussian_head_ros") and isinstance(logger, logging.Logger):
            logger.propagate = True
    if logging.getLoggerClass().__name__ != "PackageLogsPropagate":
        logging.setLoggerClass(_propagating(logging.getLoggerClass()))
    yield


def shared(*parts: str) -> Path:
    """A file of ../shared/data; skips the test (with the reason) when the data is not there."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"test data {p} not found (../shared/data beside the checkout)")
    return p


_tracked: dict = {}  # (clip, period_ns) -> {"tracker": the FaceTracker of that run, "raw": its output per frame so far}


def tracked_controls(clip: str, max_frames: int, period_ns: int, calibrated_only: bool = False) -> list:
    """FaceControls of the frames of ../shared/data/driving/<clip> where the bundled face mesh found a face
    (tracked with the default TrackerConfig, frame i stamped (i + 1) x period_ns); calibrated_only keeps only
    those after the tracker's neutral face is calibrated. Skips when the data is not there.

    One run per clip and period for the session: FaceTracker is online (frame i's control depends on frames 0..i
    only), so the first max_frames of a longer run are the run of max_frames; a longer request goes on with the
    same tracker from the frame where the run stopped. Each call gets deep copies (no test sees another's changes).
    Six modules track prefixes of three clips (lp_d18 216 and 131 frames, tpsmm_driving 121 and 59,
    sadtalker_WDA_KatieHill_000 110 and 1); the tracker's own life (closing, recalibrating) is tested with a
    FaceTracker of a test's own."""
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    path = shared("driving", clip)
    run = _tracked.get((clip, period_ns))
    if run is None:
        run = _tracked[(clip, period_ns)] = {"tracker": FaceTracker(TrackerConfig()), "raw": []}
    raw, tr = run["raw"], run["tracker"]
    if len(raw) < max_frames and not run.get("ended"):
        frames = read_frames(str(path), max_frames=max_frames)
        for i in range(len(raw), len(frames)):
            raw.append((tr.process(frames[i].rgb, (i + 1) * period_ns), tr.calibrated))
        run["ended"] = len(frames) < max_frames  # the clip has no more frames
    return [copy.deepcopy(c) for c, calibrated in raw[:max_frames]
            if c is not None and c.face_detected and (calibrated or not calibrated_only)]


@pytest.fixture(scope="session", autouse=True)
def _close_shared_trackers():
    """Closes the session's FaceTrackers of tracked_controls when the session ends."""
    yield
    for run in _tracked.values():
        run["tracker"].close()
    _tracked.clear()


_reconstructors: dict = {}  # options key -> a mesh_fit Reconstructor shared by the session (closed at its end)
_results: dict = {}  # (photo digest, options key) -> the ReconstructionResult it gave, never handed out itself


def _options_key(options: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in options.items()))


def mesh_fit_reconstructor(**options):
    """The session's mesh_fit Reconstructor of `options` (get_reconstructor's keyword options: preset=..., any
    MeshFitConfig field), made on first use and closed when the session ends. Read it (its cfg, its _models() for
    frame_photo), do not change it: other tests share it. A test about the reconstructor's own life (closing,
    warming up, reuse) makes its own with get_reconstructor."""
    from gaussian_head_ros.core.reconstruct import get_reconstructor

    key = _options_key(options)
    if key not in _reconstructors:
        _reconstructors[key] = get_reconstructor("mesh_fit", **options)
    return _reconstructors[key]


def mesh_fit_result(rgb, operator_id: str = "", **options):
    """mesh_fit's ReconstructionResult of the photo `rgb` ([H, W, 3] uint8) with `options` (as
    mesh_fit_reconstructor), avatar.operator_id set to `operator_id`: reconstructed once per session for each photo
    (keyed on its pixels' sha256, shape and dtype) and options, and a deep copy handed out each time, so no test sees
    another's changes. A mesh_fit reconstruction is a function of the photo and the options: the same photo gave
    bit-identical avatars, photos, masks, expressions and warnings from a fresh reconstructor and from one that had
    reconstructed another photo in between (business_person.png and obama_speech.jpg, session 39); operator_id only
    names the avatar (mesh_fit._build). Photos refused (ReconstructionError) are not kept: each call raises anew.
    Tests that reconstruct the same portraits in several modules (business_person's avatar in 9 of them) pay for
    each once (mesh_fit: ~1.4 s a reconstruction on average over the suite, 2-core machine at low load)."""
    import numpy as np

    a = np.ascontiguousarray(rgb)
    key = (hashlib.sha256(a.data).hexdigest(), a.shape, str(a.dtype), _options_key(options))
    if key not in _results:
        _results[key] = mesh_fit_reconstructor(**options).reconstruct(a)
    res = copy.deepcopy(_results[key])
    res.avatar.operator_id = operator_id
    return res


@pytest.fixture(scope="session", autouse=True)
def _close_shared_reconstructors():
    """Closes the session's mesh_fit reconstructors (mesh_fit_reconstructor) when the session ends."""
    yield
    for rec in _reconstructors.values():
        rec.close()
    _reconstructors.clear()
    _results.clear()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip(f"test data {SHARED} not found")
    return SHARED


@pytest.fixture(scope="session")
def rclpy_context():
    """rclpy initialised once for the test process (the other side of each cross-process test)."""
    rclpy = pytest.importorskip("rclpy")
    rclpy.init()
    yield rclpy
    rclpy.shutdown()


def render_in_photo_camera(driver, control, avatar):
    """[H, W, 3] float the avatar driven by `driver` with `control`, drawn through its photo's camera
    (avatar.source_camera, cpu rasterizer), and [V, 2] the driven template projected there (pixels)."""
    import numpy as np

    from gaussian_head_ros.core.render import rasterize

    cam = avatar.source_camera
    fx, fy, cx, cy = np.asarray(cam.intrinsics, np.float64)
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float32)
    vm = np.asarray(cam.viewmat, np.float32)
    p = driver.drive(control, viewmat=vm)
    img = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, vm, K, *cam.size).image
    return img, cam.project(driver.deformed_template(control)[0])


def lower_lid_columns(landmarks_px, inset: float):
    """Per eye (the subject's right, left): (xs [C] int image columns between its corners, less `inset` eye widths at
    each end; ys [C] its lower lid's row there; its eye width in pixels), from landmarks_px [478, 2+] (MediaPipe's
    lid points of the open eye). Where closed lids meet, for the tests that read the closed lash line."""
    import numpy as np

    from gaussian_head_ros.core import landmarks as lmk

    out = []
    for corners, pairs in ((lmk.EYE_CORNERS[0], lmk.EYELID_PAIRS_R), (lmk.EYE_CORNERS[1], lmk.EYELID_PAIRS_L)):
        a, b = landmarks_px[corners[0], :2], landmarks_px[corners[1], :2]
        w = float(np.linalg.norm(b - a))
        lower = landmarks_px[[corners[0]] + [p[1] for p in pairs] + [corners[1]], :2]
        lower = lower[np.argsort(lower[:, 0])]
        xs = np.arange(int(min(a[0], b[0]) + inset * w), int(max(a[0], b[0]) - inset * w))
        out.append((xs, np.interp(xs + 0.5, lower[:, 0], lower[:, 1]), w))
    return out
