"""Rasterizer backends against the pure-torch reference, and the camera helpers.

Every registered backend must draw what the torch reference draws, on scenes that exercise projection
(off-centre principal point, Gaussians behind the near plane and off-screen, image sizes that are not
multiples of the tile), anisotropy and opacity (thin needles, near-transparent and opaque), depth order,
and a real avatar (mesh_fit from a ../shared portrait): the cpu backend to mean abs <= 1e-4 and max abs
<= 1/255 per channel, gsplat (CUDA, another floating-point order) to mean <= 1/255 and max <= 0.01.
"""

import math

import numpy as np
import pytest

from gaussian_head_ros.core.drive import Driver
from gaussian_head_ros.core.render import (REGISTRY, backend_available, backend_module, get_renderer, head_viewmat,
                                           intrinsics_from_fov, look_at, rasterize, resolve_backend)
from gaussian_head_ros.core.render.base import Renderer, to_rgb8
from gaussian_head_ros.core.synthetic import synthetic_avatar


def random_scene(seed, n, spread=0.12, depth=0.6, log_scale=(-6.5, -3.5), aniso=1.0, op=(0.05, 1.0)):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, spread, (n, 3)).astype(np.float32)
    means[:, 2] += depth
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    base = rng.uniform(*log_scale, (n, 1))
    scales = np.exp(base + rng.uniform(-aniso, aniso, (n, 3))).astype(np.float32)
    opac = rng.uniform(*op, n).astype(np.float32)
    colors = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    return means, quats, scales, opac, colors


def avatar_scene(n, seed=0):
    p = Driver(synthetic_avatar(n, seed=seed)).drive()
    return p.means, p.quats, p.scales, p.opacities, p.colors


def scenes():
    """(name, gaussians, viewmat, K, width, height, background)"""
    out = []
    k128 = intrinsics_from_fov(30, 128, 128)
    out.append(("avatar_20k", avatar_scene(20_000), head_viewmat(0.6), k128, 128, 128, (0, 0, 0)))
    k = intrinsics_from_fov(40, 100, 75)
    k[0, 2], k[1, 2] = 43.0, 40.5  # principal point off centre
    out.append(("random_odd_size", random_scene(1, 4000), head_viewmat(0.6), k, 100, 75, (0.2, 0.4, 0.9)))
    out.append(("needles", random_scene(2, 3000, aniso=2.5), look_at([0.15, -0.1, -0.5], [0, 0, 0.6]),
                intrinsics_from_fov(35, 96, 96), 96, 96, (1, 1, 1)))
    # Around the camera: some behind it / inside the near plane, some far off-screen.
    near = random_scene(3, 3000, spread=0.4, depth=0.2, log_scale=(-5.5, -3.0))
    out.append(("near_and_offscreen", near, np.eye(4, dtype=np.float32), intrinsics_from_fov(60, 80, 64), 80, 64,
                (0, 0, 0)))
    out.append(("faint_and_opaque", _mix(random_scene(4, 2000, op=(0.002, 0.03)), random_scene(5, 2000, op=(0.95, 1.0))),
                head_viewmat(0.5), intrinsics_from_fov(30, 64, 64), 64, 64, (0.5, 0.5, 0.5)))
    return out


def _mix(a, b):
    return tuple(np.concatenate([x, y]) for x, y in zip(a, b))


SCENES = scenes()


CPU_TOL = (1e-4, 1 / 255)  # (mean abs, max abs) per channel, cpu vs the torch reference
GSPLAT_TOL = (1 / 255, 0.01)


def _compare(a, b, what, tol):
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    for c in range(d.shape[-1] if d.ndim == 3 else 1):
        dc = d[..., c] if d.ndim == 3 else d
        assert dc.mean() <= tol[0], f"{what}: channel {c} mean abs {dc.mean():.2e} > {tol[0]:.2e}"
        assert dc.max() <= tol[1], f"{what}: channel {c} max abs {dc.max():.2e} > {tol[1]:.2e}"


@pytest.mark.parametrize("scene", SCENES, ids=[s[0] for s in SCENES])
def test_cpu_matches_torch(scene):
    name, g, viewmat, k, w, h, bg = scene
    ref = rasterize(*g, viewmat, k, w, h, background=bg, backend="torch")
    out = rasterize(*g, viewmat, k, w, h, background=bg, backend="cpu")
    assert out.image.shape == (h, w, 3) and out.image.dtype == np.float32
    assert out.alpha.shape == (h, w)
    assert ref.alpha.max() > 0.5, f"{name}: the reference drew (almost) nothing"
    _compare(out.image, ref.image, name, CPU_TOL)
    _compare(out.alpha, ref.alpha, name + " alpha", (1e-4, 0.01))


@pytest.mark.parametrize("isa", [0, 1, 2], ids=["generic", "avx2", "avx512"])
def test_cpu_kernel_instruction_sets_match_torch(isa, monkeypatch):
    """The compiled compositing kernel's builds for each instruction set (those this CPU has) draw the same."""
    from gaussian_head_ros.core.render import cpu_backend

    want = ("generic", "avx2", "avx512")[isa]
    if cpu_backend.kernel_isa(isa) != want:
        pytest.skip(f"this CPU has no {want}")
    monkeypatch.setattr(cpu_backend, "ISA", isa)
    for name, g, viewmat, k, w, h, bg in (SCENES[0], SCENES[2]):
        ref = rasterize(*g, viewmat, k, w, h, background=bg, backend="torch")
        out = rasterize(*g, viewmat, k, w, h, background=bg, backend="cpu")
        _compare(out.image, ref.image, f"{name} ({want})", CPU_TOL)


def test_cpu_backend_without_its_compiled_kernel_says_so(monkeypatch):
    """A checkout that was not built: the cpu backend is not available and says how to build it."""
    from gaussian_head_ros.core.render import cpu_backend

    monkeypatch.setattr(cpu_backend, "_find_kernel", lambda: None)
    cpu_backend._kernel.cache_clear()
    try:
        assert not cpu_backend.available()
        g = SCENES[1][1]
        with pytest.raises(RuntimeError, match="make setup"):
            cpu_backend.render_arrays(*[np.ascontiguousarray(a, np.float32) for a in g], np.eye(4, dtype=np.float32),
                                      intrinsics_from_fov(40, 32, 32), 32, 32, np.zeros(3, np.float32))
    finally:
        monkeypatch.undo()
        cpu_backend._kernel.cache_clear()
    assert cpu_backend.available()


@pytest.fixture(scope="module")
def real_avatar():
    """A 60k mesh_fit avatar of a ../shared portrait (what users see first)."""
    from conftest import mesh_fit_result, shared

    from gaussian_head_ros.core.imageio import read_image

    img = read_image(str(shared("portraits", "obama_official.jpg")))
    return mesh_fit_result(img, operator_id="test").avatar


def test_cpu_matches_torch_on_a_real_avatar(real_avatar):
    """At rest and turned with the mouth open, 256^2 (the torch reference takes seconds per frame), its SH colours
    seen from the camera drawn through (`Driver.drive(viewmat=...)` evaluates them once for every backend), to the same
    tolerance as the synthetic scenes (seen on four portraits' avatars: max 0.07/255, mean 1e-7).

    A pixel whose transmittance lands within rounding of the 1e-4 stop could still take one Gaussian more or
    less in one backend than in the other (the reference decides in float64 with an exact exp, the cpu backend
    in float32 with a polynomial whose alpha is within 2.2e-6 relative). With the earlier Taylor polynomial
    (2 % relative) such pixels were seen up to 1.3/255 and this test allowed them; a degree-4 fitted one
    (2.6e-5) still left one at 0.92/255 on trump_official; with degree 5 none was seen on the avatars of
    astronaut_eileen_collins, trump_official and lp_d9_woman_turned (max 0.07/255)."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat

    driver = Driver(real_avatar)
    assert len(driver.view_rows) > 500  # the edge-on rim's colours depend on the view (SH band 1, mesh_fit)
    k = intrinsics_from_fov(30, 256, 256)
    turned = FaceControl(rotation=euler_to_quat(20, -10, 5).astype(np.float32), mouth_open=0.5)
    for name, control in (("rest", FaceControl.rest()), ("turned", turned)):
        p = driver.drive(control, viewmat=head_viewmat(0.6))
        g = (p.means, p.quats, p.scales, p.opacities, p.colors)
        ref = rasterize(*g, head_viewmat(0.6), k, 256, 256, backend="torch")
        out = rasterize(*g, head_viewmat(0.6), k, 256, 256, backend="cpu")
        assert ref.alpha.mean() > 0.1, name
        _compare(out.image, ref.image, f"real avatar {name}", CPU_TOL)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_registered_backends_follow_the_interface(name):
    """Each backend module: available(), rasterize(), a Renderer that draws what rasterize() draws."""
    if not backend_available(name):
        pytest.skip(f"{name} cannot run here")
    module = backend_module(name)
    assert callable(module.rasterize) and issubclass(module.Renderer, Renderer)
    name_, g, viewmat, k, w, h, bg = SCENES[1]
    renderer = get_renderer(name, threads=1)
    assert renderer.name == name
    renderer.warm_up()
    rgb8 = renderer.render_rgb8(*g, viewmat, k, w, h, bg)
    assert rgb8.dtype == np.uint8 and rgb8.shape == (h, w, 3)
    ref = to_rgb8(rasterize(*g, viewmat, k, w, h, background=bg, backend=name).image)
    assert np.abs(rgb8.astype(int) - ref).max() <= 1
    assert renderer.threads_used >= 1
    with pytest.raises(ValueError, match="unknown"):
        get_renderer("vulkan")


def test_cpu_rgb8_output_matches_float():
    from gaussian_head_ros.core.render.cpu_backend import render_arrays

    name, g, viewmat, k, w, h, bg = SCENES[0]
    args = [np.ascontiguousarray(a, np.float32) for a in g] + [viewmat, k, w, h, np.asarray(bg, np.float32)]
    img, _ = render_arrays(*args)
    rgb8, _ = render_arrays(*args, rgb8=True)
    assert rgb8.dtype == np.uint8 and rgb8.shape == (h, w, 3)
    assert np.abs(rgb8.astype(np.int32) - np.round(np.clip(img, 0, 1) * 255).astype(np.int32)).max() <= 1


def test_torch_tensors_in_torch_out_and_gradients():
    torch = pytest.importorskip("torch")
    g = [torch.tensor(a, requires_grad=True) for a in random_scene(6, 300, spread=0.05)]
    k, vm = intrinsics_from_fov(30, 48, 48), head_viewmat(0.6)
    out = rasterize(*g, vm, k, 48, 48, backend="torch")
    assert isinstance(out.image, torch.Tensor) and out.image.shape == (48, 48, 3)
    out.image.sum().backward()
    for t in g:
        assert t.grad is not None and torch.isfinite(t.grad).all()
    # d(sum of image)/d(colour) is each Gaussian's total blending weight: >= 0 and > 0 for some.
    assert (g[4].grad >= 0).all() and g[4].grad.sum() > 0
    # A finite-difference check on one mean coordinate of a visible Gaussian.
    i = int(torch.argmax(g[4].grad.sum(1)))
    eps = 5e-4
    with torch.no_grad():
        base = [t.detach().clone() for t in g]
        plus, minus = [t.clone() for t in base], [t.clone() for t in base]
        plus[0][i, 0] += eps
        minus[0][i, 0] -= eps
        fd = (rasterize(*plus, vm, k, 48, 48, backend="torch").image.double().sum()
              - rasterize(*minus, vm, k, 48, 48, backend="torch").image.double().sum()) / (2 * eps)
    an = g[0].grad[i, 0]
    assert abs(float(fd) - float(an)) <= 0.1 * abs(float(an)) + 0.05, (float(fd), float(an))


def test_cpu_backend_accepts_torch_and_returns_torch():
    torch = pytest.importorskip("torch")
    g = [torch.tensor(a) for a in random_scene(7, 200, spread=0.05)]
    out = rasterize(*g, head_viewmat(0.6), intrinsics_from_fov(30, 32, 32), 32, 32, backend="cpu")
    assert isinstance(out.image, torch.Tensor) and out.image.shape == (32, 32, 3)


def test_empty_and_invisible_scenes_give_background():
    bg = (0.1, 0.2, 0.3)
    k = intrinsics_from_fov(30, 32, 32)
    for backend in ("cpu", "torch"):
        g = random_scene(8, 50)
        behind = (g[0] - [0, 0, 2.0],) + g[1:]  # all behind the camera
        out = rasterize(*behind, np.eye(4, dtype=np.float32), k, 32, 32, background=bg, backend=backend)
        assert np.allclose(np.asarray(out.image), bg) and np.allclose(np.asarray(out.alpha), 0)
        empty = tuple(np.zeros((0,) + a.shape[1:], np.float32) for a in g)
        out = rasterize(*empty, np.eye(4, dtype=np.float32), k, 32, 32, background=bg, backend=backend)
        assert np.allclose(np.asarray(out.image), bg)


def test_bad_input_raises_value_error():
    g = random_scene(9, 10)
    k, vm = intrinsics_from_fov(30, 32, 32), head_viewmat(0.6)
    with pytest.raises(ValueError, match="backend"):
        rasterize(*g, vm, k, 32, 32, backend="vulkan")
    with pytest.raises(ValueError, match="quats"):
        rasterize(g[0], g[1][:5], *g[2:], vm, k, 32, 32, backend="cpu")
    with pytest.raises(ValueError, match="size"):
        rasterize(*g, vm, k, 0, 32, backend="cpu")
    with pytest.raises(ValueError, match="background"):
        rasterize(*g, vm, k, 32, 32, background=(1, 2), backend="cpu")


def test_auto_resolves_to_an_available_backend():
    import torch

    assert resolve_backend("auto") == ("gsplat" if torch.cuda.is_available() else "cpu")


def test_auto_without_a_cuda_driver_does_not_import_torch():
    """A CPU-only robot: the render node's `auto` imported torch only to learn there is no CUDA (7.7 s and +208 MB
    resident on the loaded 2-core machine, load ~45, the face display the 'waiting' placeholder meanwhile; user23,
    s23). Without the driver's CUDA library it picks cpu and torch stays unimported (in a fresh interpreter: this
    test process has torch loaded already)."""
    import subprocess
    import sys

    from gaussian_head_ros.core.render.gsplat_backend import cuda_driver_present

    if cuda_driver_present():
        pytest.skip("the CUDA driver's library is here: auto asks torch")
    code = ("import sys; from gaussian_head_ros.core.render import get_renderer; r = get_renderer('auto'); "
            "print(type(r).__module__, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    assert out.stdout.split() == ["gaussian_head_ros.core.render.cpu_backend", "False"], out.stdout + out.stderr


def test_the_render_node_s_backend_and_device_checks_do_not_import_torch():
    """`ros2 param set /render_node backend torch` (or `device cuda:1`) on a robot: the parameter check imported torch
    in the node's executor (20 s at load 18, user65): no control was taken meanwhile, the face fell into its idle
    animation, and the node then said 'face_control stopped ... 21 s ago' of a tracker that never stopped. The torch
    backend is available where torch is installed (AVAILABLE_WHEN_INSTALLED), a CUDA device is not where the CUDA
    driver's library is not: both known without the import (in a fresh interpreter: this process has torch loaded)."""
    import subprocess
    import sys

    from gaussian_head_ros.core.render.gsplat_backend import cuda_driver_present

    code = ("import sys; from gaussian_head_ros.core.render import backend_available, device_available; "
            "print(backend_available('torch'), device_available('cuda:1'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    if cuda_driver_present():  # torch is asked which devices it sees
        assert out.stdout.split()[0] == "True", out.stdout + out.stderr
    else:
        assert out.stdout.split() == ["True", "False", "False"], out.stdout + out.stderr


def test_the_cuda_driver_check_reads_the_driver_library(monkeypatch):
    """cuda_driver_present is the driver library loading: a failed load is 'no driver', a load 'driver'."""
    import ctypes

    from gaussian_head_ros.core.render import gsplat_backend

    loaded = []

    def fails(name):
        loaded.append(name)
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", fails)
    assert not gsplat_backend.cuda_driver_present() and loaded == [gsplat_backend.CUDA_DRIVER_LIBRARY]
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())
    assert gsplat_backend.cuda_driver_present()


def test_camera_helpers():
    k = intrinsics_from_fov(90, 200, 100)
    assert k[1, 1] == pytest.approx(50) and (k[0, 2], k[1, 2]) == (100, 50)
    # A camera on -z of the head frame looking at the origin is head_viewmat(distance).
    np.testing.assert_allclose(look_at([0, 0, -0.7], [0, 0, 0]), head_viewmat(0.7), atol=1e-6)
    # A camera to the subject's right (image left) sees the origin at the image centre.
    v = look_at([-0.5, 0, -0.5], [0, 0, 0])
    p = v[:3, :3] @ np.zeros(3) + v[:3, 3]
    assert p[2] == pytest.approx(math.sqrt(0.5)) and abs(p[0]) < 1e-6 and abs(p[1]) < 1e-6
    with pytest.raises(ValueError):
        intrinsics_from_fov(0, 10, 10)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA for gsplat")
@pytest.mark.parametrize("scene", SCENES, ids=[s[0] for s in SCENES])
def test_gsplat_matches_torch(scene):
    name, g, viewmat, k, w, h, bg = scene
    ref = rasterize(*g, viewmat, k, w, h, background=bg, backend="torch")
    out = rasterize(*g, viewmat, k, w, h, background=bg, backend="gsplat")
    assert out.image.shape == (h, w, 3)
    _compare(out.image, ref.image, f"gsplat {name}", GSPLAT_TOL)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA for gsplat")
def test_gsplat_display_frames_are_the_float_frames_converted():
    """The display path (uint8 made on the GPU, pinned buffers reused across sizes) gives the pixels of the
    float path converted on the CPU, to one level (the float path's image is the same kernels' output)."""
    from gaussian_head_ros.core.render import gsplat_backend

    renderer = gsplat_backend.Renderer()
    for name, g, viewmat, k, w, h, bg in SCENES + SCENES[:1]:
        rgb8 = renderer.render_rgb8(*g, viewmat, k, w, h, bg)
        ref = to_rgb8(rasterize(*g, viewmat, k, w, h, background=bg, backend="gsplat").image)
        assert rgb8.shape == (h, w, 3) and rgb8.dtype == np.uint8, name
        assert np.abs(rgb8.astype(int) - ref).max() <= 1, name


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA for gsplat")
def test_gsplat_gradients_match_torch():
    """Training renders through gsplat on CUDA (core/train/trainer.py, render_backend auto): its gradients for
    every Gaussian attribute follow the torch reference's (direction within cos 0.99, size within 10 %).
    Written without a GPU (session 9): scripts/gpu_check.sh runs it on the next CUDA machine."""
    import torch

    g = random_scene(6, 300, spread=0.05)
    k, vm = intrinsics_from_fov(30, 48, 48), head_viewmat(0.6)
    weight = torch.rand(48, 48, 3, generator=torch.Generator().manual_seed(0))  # a loss that weighs every pixel
    grads = {}
    for backend, device in (("torch", "cpu"), ("gsplat", "cuda")):
        leaves = [torch.tensor(a, device=device, requires_grad=True) for a in g]
        out = rasterize(*leaves, vm, k, 48, 48, backend=backend)
        (out.image * weight.to(device)).sum().backward()
        grads[backend] = [t.grad.detach().cpu().double() for t in leaves]
    for name, a, b in zip(("means", "quats", "scales", "opacities", "colors"), grads["gsplat"], grads["torch"]):
        cos = float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))
        rel = float((a - b).norm() / b.norm())
        assert cos > 0.99 and rel < 0.1, f"d/d{name}: cos {cos:.4f}, relative difference {rel:.3f}"


def test_the_render_command_frames_a_display_of_another_shape_as_render_node_does(tmp_path):
    """`gaussian-head render --width W --height H` (new in s24): a portrait video framed by core/display.py, the head
    centred left-right; --width/--height equal to --size give the square video."""
    import cv2

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.avatar import save_ply

    ply = tmp_path / "a.ply"
    save_ply(synthetic_avatar(3000, seed=1), ply)
    for name, size in (("portrait", ["--width", "48", "--height", "80"]), ("square", ["--size", "64"]),
                       ("square_wh", ["--width", "64", "--height", "64"])):
        assert main(["render", str(ply), "-o", str(tmp_path / f"{name}.mp4"), "--seconds", "0.1", "--backend", "cpu",
                     *size]) == 0
    frames = {}
    for name in ("portrait", "square", "square_wh"):
        cap = cv2.VideoCapture(str(tmp_path / f"{name}.mp4"))
        frames[name] = cap.read()[1]
    assert frames["portrait"].shape == (80, 48, 3)
    np.testing.assert_array_equal(frames["square"], frames["square_wh"])
    cols = np.flatnonzero(frames["portrait"][:40].max(axis=(0, 2)) > 40)  # the head's columns in the upper half
    assert cols.min() > 0 and cols.max() < 47 and abs((cols.min() + cols.max()) / 2 - 23.5) < 4, cols


def test_render_says_the_size_it_wrote_for_odd_sides(tmp_path, capsys):
    """`gaussian-head render --width 65 --height 47`: the mp4v file holds 64x46 frames (the writer crops odd sides for
    the encoder, as OpenCV's mp4v does itself), and the command said 'wrote ...: 65x47' (user40: --width 301 --height
    199 said 301x199, the file was 300x198). Now it says the file's size and the one asked; an even size is said
    once, as before."""
    import cv2

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.avatar import save_ply

    ply = tmp_path / "a.ply"
    save_ply(synthetic_avatar(2000, seed=3), ply)
    said = {}
    for w, h in ((65, 47), (64, 48)):
        out = tmp_path / f"{w}x{h}.mp4"
        capsys.readouterr()
        assert main(["render", str(ply), "-o", str(out), "--width", str(w), "--height", str(h), "--seconds", "0.1",
                     "--backend", "cpu"]) == 0
        said[w, h] = capsys.readouterr().out
        cap = cv2.VideoCapture(str(out))
        size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        assert f", {size[0]}x{size[1]}" in said[w, h], (size, said[w, h])
    assert "64x46 (asked 65x47: the mp4v encoder takes even sides)" in said[65, 47], said
    assert "asked" not in said[64, 48], said


def test_render_and_bench_commands(tmp_path, capsys, caplog):
    import json

    import cv2

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat

    ply = tmp_path / "a.ply"
    save_ply(synthetic_avatar(3000, seed=1), ply)
    controls = tmp_path / "c.jsonl"
    with open(controls, "w") as fh:
        for i, yaw in enumerate((0.0, 10.0, 20.0)):
            c = FaceControl(stamp_ns=i * 40_000_000, face_detected=True,
                            rotation=euler_to_quat(yaw, 0, 0).astype(np.float32))
            fh.write(json.dumps(c.to_json()) + "\n")
    out = tmp_path / "out.mp4"
    assert main(["render", str(ply), "--controls", str(controls), "-o", str(out), "--size", "64",
                 "--backend", "cpu"]) == 0
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    frames = [cap.read()[1] for _ in range(3)]
    assert np.abs(frames[0].astype(int) - frames[2]).mean() > 1  # the head turned
    capsys.readouterr()
    assert main(["bench", "--json", "--backend", "cpu", "torch", "--size", "48", "--gaussians", "2000",
                 "--threads", "1", "--scene", "face", "--seconds", "0.1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["backend"] for r in rows} == {"cpu", "torch", "drive"}
    for r in rows:
        assert {"backend", "n_gaussians", "size", "threads", "fps"} <= set(r) and r["fps"] > 0
    assert [r for r in rows if r["backend"] == "cpu"][0]["vs_torch"] > 0
    assert {r["device"] for r in rows} == {"cpu"}  # torch's --device (default cpu); cpu and drive run there
    assert main(["bench", "--backend", "torch", "--device", "gpu0"]) == 1  # no device name: one line, no traceback
    assert "cpu, cuda or cuda:N" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert main(["render", str(ply), "--controls", str(bad), "-o", str(out)]) == 1
    bad.write_text('{"frame": 0, "pose": [0, 0, 0]}\n')  # JSON, but not a control: was a 1-frame rest video
    capsys.readouterr()
    assert main(["render", str(ply), "--controls", str(bad), "-o", str(out)]) == 1
    assert "bad.jsonl:1: not a FaceControl line (none of a FaceControl's fields (frame, pose;" in capsys.readouterr().err
    # a hand-written blendshape-only file: blendshapes as two lists read "'list' object has no attribute 'keys'"
    bad.write_text('{"stamp_ns": 0, "blendshape_names": ["jawOpen"], "blendshapes": [0.3]}\n')
    assert main(["render", str(ply), "--controls", str(bad), "-o", str(out)]) == 1
    assert 'bad.jsonl:1: not a FaceControl line (blendshapes is an object of ARKit name: coefficient (0..1), e.g. ' \
           '{"jawOpen": 0.3' in capsys.readouterr().err
    # ... and a misspelt field drove nothing without a word: now it is named
    bad.write_text('{"stamp_ns": 0, "face_detected": true, "blendshape": {"jawOpen": 0.3}}\n'
                   '{"stamp_ns": 40000000, "face_detected": true, "blendshapes": {"jawOpen": 0.3}}\n')
    with caplog.at_level("WARNING"):
        assert main(["render", str(ply), "--controls", str(bad), "-o", str(out), "--size", "64"]) == 0
    assert "ignored what no FaceControl has: 'blendshape' (from line 1)" in caplog.text


def test_render_of_controls_stamped_in_another_unit_draws_at_the_default_rate_and_says_so(tmp_path, capsys, caplog):
    """A hand-written controls file stamped by frame index (`"stamp_ns": 0, 1, 2 ...`) made `render` ask OpenCV for a
    video of 1e9 FPS: exit 1, "cannot write video ... (no mp4v encoder in this OpenCV?)" after OpenCV's own ERROR
    line; stamps 1 ms apart wrote a 1000 FPS video (its frames gone in 0.03 s), 10 s apart a 0.1 FPS one, both rates
    --fps refuses (user47, s47). Each is drawn at 30 FPS with a warning naming the file; --fps still sets it."""
    import json

    import cv2

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.avatar import save_ply

    ply = tmp_path / "a.ply"
    save_ply(synthetic_avatar(2000, seed=1), ply)
    out = tmp_path / "out.mp4"
    ns = "stamp_ns counts nanoseconds (frame indices or milliseconds there?)"
    for step_ns, why in ((1, ns), (1_000_000, ns),
                         (10_000_000_000, "slower than a frame a second")):
        controls = tmp_path / f"c{step_ns}.jsonl"
        controls.write_text("".join(json.dumps({"stamp_ns": i * step_ns, "face_detected": True,
                                                "blendshapes": {"jawOpen": i / 4}}) + "\n" for i in range(4)))
        caplog.clear()
        with caplog.at_level("WARNING"):
            assert main(["render", str(ply), "--controls", str(controls), "-o", str(out), "--size", "32",
                         "--backend", "cpu"]) == 0, capsys.readouterr().err
        cap = cv2.VideoCapture(str(out))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
        assert f"{controls}: its stamps are {step_ns * 1e-9:.6g} s apart" in caplog.text, caplog.text
        assert f"outside 1..240: {why}" in caplog.text, caplog.text
        assert main(["render", str(ply), "--controls", str(controls), "-o", str(out), "--size", "32",
                     "--backend", "cpu", "--fps", "12"]) == 0
        assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    # stamps with no rate in them (all 0, or one repeated) are said too: they had drawn at 30 FPS without a word
    for stamps, said in (((0, 0, 0, 0), "its stamps are all the same"),
                         ((0, 33_333_333, 33_333_333, 66_666_667), "its stamps do not rise at 1 of 3 lines")):
        controls = tmp_path / "flat.jsonl"
        controls.write_text("".join(json.dumps({"stamp_ns": s, "face_detected": True}) + "\n" for s in stamps))
        caplog.clear()
        with caplog.at_level("WARNING"):
            assert main(["render", str(ply), "--controls", str(controls), "-o", str(out), "--size", "32",
                         "--backend", "cpu"]) == 0
        assert f"{controls}: {said} (no frame rate in them); drawn at 30 FPS" in caplog.text, caplog.text


def test_bench_measures_torch_on_each_device_and_gsplat_once():
    """What `bench --backend cpu torch gsplat --threads 1 2 --device cpu cuda` measures (a CUDA machine's run,
    planned here): cpu per thread count, torch per thread count on the CPU and once on each CUDA device, gsplat once."""
    from gaussian_head_ros.commands.bench import _configs

    assert _configs(["cpu", "torch", "gsplat"], [1, 2], ["cpu", "cuda"]) == [
        ("cpu", 1, "cpu"), ("cpu", 2, "cpu"), ("torch", 1, "cpu"), ("torch", 2, "cpu"), ("torch", None, "cuda"),
        ("gsplat", None, "cuda")]


def test_gsplat_wrapper_call_matches_gsplat_api(monkeypatch):
    """Without CUDA: our one call into gsplat binds to gsplat.rasterization's real signature, with our
    conventions (batched camera, classic EWA, eps2d 0.3, rgb colours), and its outputs are unbatched."""
    import inspect

    gsplat = pytest.importorskip("gsplat")
    from gaussian_head_ros.core.render import gsplat_backend

    real = inspect.signature(gsplat.rasterization)
    seen = {}

    def fake(*args, **kwargs):
        bound = real.bind(*args, **kwargs)  # TypeError on a wrong argument name or count
        a = bound.arguments
        seen.update(a)
        n = a["means"].shape[0]
        assert a["quats"].shape == (n, 4) and a["scales"].shape == (n, 3) and a["opacities"].shape == (n,)
        assert a["colors"].shape == (n, 3) and a["viewmats"].shape == (1, 4, 4) and a["Ks"].shape == (1, 3, 3)
        assert a["backgrounds"].shape == (1, 3)
        out = rasterize(a["means"], a["quats"], a["scales"], a["opacities"], a["colors"], a["viewmats"][0],
                        a["Ks"][0], a["width"], a["height"], background=a["backgrounds"][0].numpy(), backend="torch")
        return out.image[None], out.alpha[None, ..., None], {}

    monkeypatch.setattr(gsplat, "rasterization", fake)
    g = random_scene(10, 500, spread=0.05)
    k, vm = intrinsics_from_fov(30, 40, 30), head_viewmat(0.6)
    out = gsplat_backend.rasterize(*g, vm, k, 40, 30, np.array([0.1, 0.2, 0.3], np.float32), device="cpu")
    assert out.image.shape == (30, 40, 3) and out.alpha.shape == (30, 40) and isinstance(out.image, np.ndarray)
    assert seen["eps2d"] == pytest.approx(0.3) and seen["rasterize_mode"] == "classic"
    assert seen["sh_degree"] is None and seen["render_mode"] == "RGB" and seen["near_plane"] == pytest.approx(0.01)
    ref = rasterize(*g, vm, k, 40, 30, background=(0.1, 0.2, 0.3), backend="torch")
    np.testing.assert_allclose(out.image, ref.image, atol=1e-6)
    # The Renderer the render node and bench use: draws on the default CUDA device unless told one, says it used
    # one thread (the interface test asserts >= 1; its 0 was never seen until a CUDA run), returns display frames.
    renderer = gsplat_backend.Renderer(threads=1)
    assert renderer.draw_device == "cuda" and gsplat_backend.Renderer(device="cuda:1").draw_device == "cuda:1"
    renderer.draw_device = "cpu"  # no CUDA here: the stand-in above draws on the CPU
    rgb8 = renderer.render_rgb8(*g, vm, k, 40, 30, (0.1, 0.2, 0.3))
    assert rgb8.dtype == np.uint8 and rgb8.shape == (30, 40, 3) and renderer.threads_used == 1
    assert np.abs(rgb8.astype(int) - to_rgb8(ref.image)).max() <= 1
    # The display path converts on the device: the same pixels as the float path's conversion on the CPU, also
    # with a second size and a smaller scene through the reused buffers.
    np.testing.assert_array_equal(rgb8, to_rgb8(out.image))
    g2 = [a[:200] for a in g]
    k2 = intrinsics_from_fov(30, 24, 20)
    np.testing.assert_array_equal(renderer.render_rgb8(*g2, vm, k2, 24, 20),
                                  to_rgb8(gsplat_backend.rasterize(*g2, vm, k2, 24, 20, np.zeros(3, np.float32),
                                                                   device="cpu").image))


def test_thread_tuner_keeps_the_faster_count():
    from gaussian_head_ros.core.render.cpu_backend import ThreadTuner

    tuner = ThreadTuner(max_threads=2, period_s=10.0, probe_frames=4)
    now, cost = 0.0, {1: 0.020, 2: 0.040}  # a busy CPU: one thread is faster
    used = []
    for _ in range(200):
        n = tuner.threads(now)
        used.append(n)
        tuner.record(n, cost[n], now)
        now += 0.1
    assert tuner.best == 1 and used[-1] == 1 and used.count(2) < 0.25 * len(used)
    cost = {1: 0.020, 2: 0.011}  # the CPU became idle: two threads win at the next probe
    for _ in range(200):
        n = tuner.threads(now)
        tuner.record(n, cost[n], now)
        now += 0.1
    assert tuner.best == 2
    assert ThreadTuner(max_threads=1).threads(0.0) == 1


def test_a_hand_written_controls_file_is_read_as_written_or_refused_with_the_reason(tmp_path, caplog):
    """A controls file written by hand (or by a phone app's exporter): a UTF-8 BOM (Windows Notepad) refused the
    file ('Unexpected UTF-8 BOM'); "face_detected": "false" read as True (bool of a string); a blendshape name
    outside ARKit's 52 (Live Link Face's 'MouthSmileLeft', a made-up 'smile') drove nothing without a word; one
    JSON array of objects was said as 'none of a FaceControl's fields (list; ...' (user32, s34)."""
    from gaussian_head_ros.commands.render import controls_in, read_controls

    f = tmp_path / "c.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"stamp_ns": 0, "blendshapes": {"jawOpen": 0.5}}\r\n')
    assert len(read_controls(str(f))) == 1 and next(controls_in(str(f))).blendshape("jawOpen") == pytest.approx(0.5)
    f.write_text('{"face_detected": "false", "blendshapes": {"jawOpen": 0.5}}\n')
    with pytest.raises(ValueError, match=r'c.jsonl:1: .*face_detected is a JSON str \("false"\); it is true or false'):
        read_controls(str(f))
    for array in ('[{"blendshapes": {"jawOpen": 0.5}}, {"blendshapes": {"jawOpen": 0.6}}]\n',
                  '[\n  {"blendshapes": {"jawOpen": 0.5}},\n  {"blendshapes": {"jawOpen": 0.6}}\n]\n'):  # pretty-printed
        f.write_text(array)
        with pytest.raises(ValueError, match="c.jsonl:1: .*a JSON array, not one FaceControl object: one JSON object "
                                             "per line"):
            read_controls(str(f))
    f.write_text('{"blendshapes": {"MouthSmileLeft": 0.8, "smile": 0.5, "jawOpen": 0.1, "_neutral": 0.1}}\n'
                 '{"blendshapes": {"mouthSmileRight": 0.8, "browInnerUp": 0.2, "tongueOut": 0}}\n')
    with caplog.at_level("WARNING"):
        assert len(read_controls(str(f))) == 2
    assert "drive nothing, not ARKit blendshape names: 'MouthSmileLeft' (from line 1; ARKit's: 'mouthSmileLeft'), " \
           "'smile' (from line 1)" in caplog.text
    assert "jawOpen'" not in caplog.text.split("drive nothing")[1] and "_neutral" not in caplog.text


def test_a_long_controls_file_is_checked_whole_but_not_held_in_memory(tmp_path):
    """`gaussian-head render --controls` parsed every line into a FaceControl and kept them all before the first
    frame: a 50 MB hand-written file (632911 blendshape-only lines) took 1.3 GB and 23 s, so a 1 GB one (~26 GB) was
    killed for memory before drawing anything (user32, s34). The file is still checked whole before the avatar loads
    (a bad last line said at once); then read again line by line as the frames are drawn, holding only the stamps."""
    import tracemalloc

    from gaussian_head_ros.commands.render import controls_in, read_controls

    f = tmp_path / "long.jsonl"
    line = '{{"stamp_ns": {}, "face_detected": true, "blendshapes": {{"mouthSmileLeft": 0.8, "jawOpen": 0.1}}}}\n'
    f.write_text("".join(line.format(i * 33_333_333) for i in range(20_000)))
    tracemalloc.start()
    try:
        stamps = read_controls(str(f))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(stamps) == 20_000 and stamps[-1] == 19_999 * 33_333_333
    assert peak < 4e6, peak  # was 40 MB (2 KB a control)
    got = controls_in(str(f))
    assert next(got).blendshape("mouthSmileLeft") == pytest.approx(0.8) and sum(1 for _ in got) == 19_999
    with open(f, "a") as fh:  # a stamp beyond int64 was an OverflowError's traceback
        fh.write('{"stamp_ns": 1.5e30, "blendshapes": {"jawOpen": 0.5}}\n')
    with pytest.raises(ValueError, match=r"long.jsonl:20001: not a FaceControl line \(stamp_ns is 1.5e\+30; it is an "
                                         "integer of nanoseconds"):
        read_controls(str(f))


def test_drive_render_ab_draws_each_tree_with_its_own_rasterizer():
    """scripts/drive_render_ab.py's worker for a tree loads the rasterizer of that tree's install space, and says which
    (perf64: both trees' workers loaded the library of the install space sourced in the shell, so the render figures
    compared one library with itself)."""
    import glob
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    own = glob.glob(os.path.join(root, "install", "*", "lib", "python*", "site-packages", "gaussian_head_ros", "core",
                                 "render", "libghr_raster.so"))
    if not own:
        pytest.skip("this tree's rasterizer is not built in its install space")
    sys.path.insert(0, os.path.join(root, "scripts"))
    try:
        import drive_render_ab
    finally:
        sys.path.pop(0)
    worker = drive_render_ab.Worker(root)
    try:
        assert worker.ask("kernel") == os.path.realpath(own[0])
    finally:
        worker.close()
