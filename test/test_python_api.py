"""The core used from a Python program without ROS (user59): the README's "From Python" program run as written, the
map of gaussian_head_ros.core's docstring, FaceDisplay (the render node's picture in one object), and a tracker fed
stamps that do not rise. No ROS node is started."""

import importlib
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import shared

ROOT = Path(__file__).resolve().parents[1]


def readme_python_block() -> str:
    """The first ```python block under the README's "### From Python"."""
    text = (ROOT / "README.md").read_text()
    start = text.find("### From Python")
    assert start >= 0, "README: no '### From Python' part"
    end = text.find("\n## ", start)
    block = re.search(r"```python\n(.*?)```", text[start:end], re.S)
    assert block, "README: the 'From Python' program (a ```python block) is missing"
    return block.group(1)


def test_the_readme_python_program_runs_as_written(tmp_path, monkeypatch):
    """The README's program, run as a user pastes it (its photo and clip the ../shared ones it names): photo ->
    avatar on disk, a clip read with OpenCV -> controls -> frames of the face display in a video, hand-made
    controls -> pictures. It cannot go stale."""
    code = readme_python_block()
    for name in ("portraits/business_person.png", "driving/lp_d0.mp4"):
        assert f'"../shared/data/{name}"' in code, f"the README's program no longer reads ../shared/data/{name}"
        code = code.replace(f'"../shared/data/{name}"', repr(str(shared(*name.split("/")))))
    monkeypatch.chdir(tmp_path)
    scope = {"__name__": "__main__"}
    exec(compile(code, "README.md (From Python)", "exec"), scope)  # noqa: S102 (the README's own code)
    import cv2

    assert (tmp_path / "me.ply").is_file() and (tmp_path / "me.driving.npz").is_file()
    video = cv2.VideoCapture(str(tmp_path / "me.mp4"))
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    size = int(video.get(cv2.CAP_PROP_FRAME_WIDTH)), int(video.get(cv2.CAP_PROP_FRAME_HEIGHT))
    video.release()
    assert frames >= 20 and size == (480, 800), (frames, size)
    for name in ("smile", "blink", "turn", "gaze_left"):
        img = cv2.imread(str(tmp_path / f"{name}.png"))
        assert img is not None and img.shape == (800, 480, 3), name
        assert img.mean() > 20, f"{name}.png is (nearly) black"


def core_map_names() -> list[str]:
    """The `module.name` entries of gaussian_head_ros.core's docstring map."""
    import gaussian_head_ros.core as core

    return re.findall(r"`(core\.[\w.]+)`", core.__doc__ or "")


def test_the_core_docstring_maps_what_a_program_imports():
    """help(gaussian_head_ros.core) listed 43 modules and one line ('The ROS-free core. ...'): which ones read a photo,
    reconstruct, track, drive and draw was found by reading the nodes' sources (user59). Its docstring names them
    now; each name it gives must exist."""
    names = core_map_names()
    for must in ("core.imageio.read_image", "core.reconstruct.get_reconstructor", "core.avatar.save_ply",
                 "core.avatar.load_ply", "core.tracking.FaceTracker", "core.control.FaceControl",
                 "core.display.FaceDisplay", "core.reconstruct.preview.source_view"):
        assert must in names, f"gaussian_head_ros.core's docstring does not name {must}"
    for name in names:
        module, _, attr = name.rpartition(".")
        try:
            mod = importlib.import_module("gaussian_head_ros." + module)
        except ImportError:  # the name is a module itself
            importlib.import_module("gaussian_head_ros." + name)
            continue
        assert hasattr(mod, attr), f"gaussian_head_ros.core's docstring names {name}, which does not exist"


def test_face_display_draws_what_the_render_node_and_the_cli_draw():
    """FaceDisplay is the render node's composition (framing K, head_viewmat, drive with the viewmat, render_rgb8,
    the torso cut's fade) in one object: before it a program wrote those eight calls from four modules itself, or drew
    through intrinsics_from_fov and cut a long-haired head's top off. Same picture, bit for bit, as those calls."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.display import AvatarFraming, FaceDisplay, fade_rows
    from gaussian_head_ros.core.drive import Driver, lighting_from_spec
    from gaussian_head_ros.core.render import get_renderer, head_viewmat
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    avatar = synthetic_avatar(4000, seed=3)
    control = FaceControl.rest()
    control.rotation = euler_to_quat(yaw_deg=20.0).astype(np.float32)
    w, h, bg = 96, 160, (0.1, 0.2, 0.3)
    display = FaceDisplay(avatar, w, h, lighting="studio", background=bg, backend="cpu", threads=1)
    got = display.render(control)
    assert got.shape == (h, w, 3) and got.dtype == np.uint8
    assert display.K.shape == (3, 3) and display.viewmat.shape == (4, 4)

    framing = AvatarFraming.from_avatar(avatar)
    k = framing.intrinsics("head", 30.0, w, h, 0.6)
    view = head_viewmat(0.6)
    p = Driver(avatar).drive(control, lighting_from_spec("studio"), viewmat=view)
    want = get_renderer("cpu", threads=1).render_rgb8(p.means, p.quats, p.scales, p.opacities, p.colors, view, k, w, h,
                                                      bg)
    fade = framing.cut_fade(k, h, 0.6)
    want = want if fade is None else fade_rows(want, bg, *fade)
    np.testing.assert_array_equal(display.K, k)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(display.render(), display.render(FaceControl.rest()))  # None: the rest pose
    with pytest.raises(ValueError, match="framing 'tight'"):
        FaceDisplay(avatar, w, h, framing="tight")
    with pytest.raises(ValueError, match="lighting"):
        FaceDisplay(avatar, w, h, lighting="sunny")


def test_stamps_that_do_not_rise_are_said(caplog):
    """A program that fed the tracker stamp 0 for every frame, or time.time() (seconds, the same integer nanosecond
    for a whole second), got a control for the first frame and None for every other, said at debug level only
    (user59: 'stamp 0 each frame: [True, None, None, None, None, None, None, None]'). Said once now, as a warning
    naming nanoseconds."""
    from gaussian_head_ros.core.tracking import FaceTracker

    frame = np.zeros((64, 64, 3), np.uint8)
    with FaceTracker() as tracker, caplog.at_level(logging.DEBUG, logger="gaussian_head_ros.core.tracking"):
        assert tracker.process(frame, 0) is not None
        for _ in range(3):
            assert tracker.process(frame, 0) is None  # ignored, as before
        warned = [r for r in caplog.records if r.levelno >= logging.WARNING and "not newer" in r.getMessage()]
        assert len(warned) == 1, [r.getMessage() for r in caplog.records]
        assert "nanoseconds" in warned[0].getMessage() and "time.monotonic_ns()" in warned[0].getMessage()


def test_the_cli_s_display_defaults_are_core_s():
    """`gaussian-head render` writes --fov's and --distance's defaults out (importing core loads numba, and --help
    imports every command): they are core.display's, which render_node and FaceDisplay take."""
    from gaussian_head_ros.commands import render
    from gaussian_head_ros.core import display

    assert (render.FOV_DEG, render.DISTANCE_M) == (display.FOV_DEG, display.DISTANCE_M)
