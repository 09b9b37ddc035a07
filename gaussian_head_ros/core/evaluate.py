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
Frames where the face mesh finds no face in the render count in `render_face_rate`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from gaussian_head_ros.core.facemesh import FaceMesh, PersonSegmenter, default_intrinsics, fit_head_frame
from gaussian_head_ros.core.metrics import correlation, landmark_error, psnr, rotation_error_deg, ssim

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    backend: str = "mesh_fit"  # reconstructor
    render_backend: str = "cpu"  # rasterizer
    max_frames: int = 0  # 0 = all frames
    stride: int = 1  # evaluate every stride-th frame (the tracker still sees every frame)
    fov_deg: float = 12.0  # camera for tracking and rendering when the avatar has no source camera (a long lens)


def head_mask(rgb: np.ndarray, landmarks_px: np.ndarray, segmenter: PersonSegmenter) -> np.ndarray:
    """[H, W] bool: person pixels within a box around the face that takes in hair, ears and the neck."""
    h, w = rgb.shape[:2]
    x0, y0 = landmarks_px[:, :2].min(0)
    x1, y1 = landmarks_px[:, :2].max(0)
    fw, fh = x1 - x0, y1 - y0
    box = np.zeros((h, w), bool)
    bx0, bx1 = int(max(0, x0 - 0.35 * fw)), int(min(w, x1 + 0.35 * fw))
    by0, by1 = int(max(0, y0 - 0.6 * fh)), int(min(h, y1 + 0.25 * fh))
    box[by0:by1, bx0:bx1] = True
    return box & (segmenter.probability(rgb) > 0.5)


def _mouth(lm: np.ndarray) -> float:
    from gaussian_head_ros.core.tracking import mouth_open

    return mouth_open(lm, None)


def evaluate(frames: list[np.ndarray], stamps_ns: list[int], source: np.ndarray | None = None,
             config: EvalConfig | None = None) -> dict:
    """[T] RGB frames of one clip (+ stamps) -> the metrics dict (see the module docstring)."""
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.render import rasterize
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig

    cfg = config or EvalConfig()
    if not frames:
        raise ValueError("no frames to evaluate")
    if cfg.max_frames:
        frames, stamps_ns = frames[: cfg.max_frames], stamps_ns[: cfg.max_frames]
    src = frames[0] if source is None else source
    t0 = time.perf_counter()
    with get_reconstructor(cfg.backend) as rec:
        avatar = rec.reconstruct(src).avatar
    t_rec = time.perf_counter() - t0
    driver = Driver(avatar)
    h, w = frames[0].shape[:2]
    K = default_intrinsics(w, h, cfg.fov_deg)
    rows = {k: [] for k in ("psnr", "ssim", "lmk", "pose_deg", "psnr_static", "ssim_static", "lmk_static",
                            "pose_deg_static", "mouth_pred", "mouth_real", "mouth_static")}
    n_eval = n_render_face = 0
    t_frame = []
    with FaceTracker(TrackerConfig(fov_deg=cfg.fov_deg)) as tracker, FaceMesh(static_image_mode=True, max_faces=1) \
            as mesh, PersonSegmenter() as seg:
        src_faces = mesh.detect(src) if source is not None else mesh.detect(frames[0])
        if not src_faces:
            raise ValueError("no face in the source frame")
        src_lm = src_faces[0].landmarks_px
        if avatar.source_camera is not None and source is None:
            # Render with the perspective the avatar was built for: a focal length that puts the head
            # at the source camera's distance (MediaPipe's landmarks fix only the image-plane scale).
            depth = float(avatar.source_camera.viewmat[2, 3])
            f = depth / fit_head_frame(src_lm, K).metres_per_pixel
            K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)
        src_img = src if source is None or src.shape == frames[0].shape else None
        bg_img = frames[0].astype(np.float32)
        for i, (rgb, stamp) in enumerate(zip(frames, stamps_ns)):
            control = tracker.process(rgb, stamp, K)
            if control is None or not control.face_detected or i % cfg.stride:
                continue
            real = mesh.detect(rgb)
            if not real:
                continue
            real_lm = real[0].landmarks_px
            ts = time.perf_counter()
            posed = driver.drive(control)
            viewmat = np.eye(4, dtype=np.float32)
            viewmat[:3, 3] = control.translation
            out = rasterize(posed.means, posed.quats, posed.scales, posed.opacities, posed.colors, viewmat,
                            K.astype(np.float32), w, h, backend=cfg.render_backend)
            t_frame.append(time.perf_counter() - ts)
            # Over the source photo, as one-shot methods do (the avatar has no background of its own).
            over = out.image + (1.0 - out.alpha[..., None]) * (bg_img / 255.0) if bg_img is not None else out.image
            pred = (np.clip(over, 0, 1) * 255 + 0.5).astype(np.uint8)
            mask = head_mask(rgb, real_lm, seg)
            if mask.sum() < 100:
                continue
            n_eval += 1
            rows["psnr"].append(psnr(pred, rgb, mask))
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
    if n_eval == 0:
        raise ValueError("no frame could be evaluated (no face tracked)")

    def mean(k):
        v = np.asarray(rows[k], np.float64)
        v = v[np.isfinite(v)]
        return round(float(v.mean()), 4) if v.size else None

    return {
        "frames": len(frames), "frames_evaluated": n_eval,
        "render_face_rate": round(n_render_face / n_eval, 4),
        "psnr": mean("psnr"), "ssim": mean("ssim"), "lmk": mean("lmk"), "pose_deg": mean("pose_deg"),
        "mouth_corr": round(correlation(rows["mouth_pred"], rows["mouth_real"]), 4),
        "psnr_static": mean("psnr_static"), "ssim_static": mean("ssim_static"), "lmk_static": mean("lmk_static"),
        "pose_deg_static": mean("pose_deg_static"),
        "mouth_corr_static": round(correlation(rows["mouth_static"], rows["mouth_real"]), 4),
        "num_gaussians": avatar.num_gaussians, "reconstruct_s": round(t_rec, 3),
        "drive_render_ms": round(1000 * float(np.median(t_frame)), 2) if t_frame else None,
        "reconstructor": cfg.backend, "render_backend": cfg.render_backend,
    }
