"""Looking at a reconstruction: the avatar drawn from its source camera (at rest, turned, or with the
mouth open), contact sheets, and the `--preview` files of `gaussian-head reconstruct`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaussian_head_ros.core.avatar import GaussianAvatar

SHEET_YAWS = (-30, -20, -10, 0, 10, 20, 30)


def source_intrinsics(avatar: GaussianAvatar, size: int | None = None) -> tuple[np.ndarray, int, int]:
    """([3, 3] K, width, height) of the avatar's source camera, optionally rescaled to a square `size`."""
    cam = avatar.source_camera
    if cam is None:
        raise ValueError("the avatar has no source camera to render from")
    fx, fy, cx, cy = (float(v) for v in cam.intrinsics)
    w, h = cam.size
    if size is not None:
        s = size / max(w, h)
        fx, fy, cx, cy, w, h = fx * s, fy * s, cx * s, cy * s, round(w * s), round(h * s)
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float32), int(w), int(h)


def photo_pose(avatar: GaussianAvatar) -> tuple[np.ndarray, np.ndarray]:
    """The photo's own head pose as a control gives it: ([3, 3] the head rotation relative to the line of sight,
    FaceControl.rotation's matrix; [4, 4] the camera it is seen through, [line_of_sight_rotation(t) | t], the
    head origin at t). Their product is the source camera's viewmat, but the driver turns the torso by only a
    fraction of the control's rotation (core.deform), so the photo's pose must come through the control
    (reconstruct.rest_pose.turn_torso builds the torso for that), not the camera."""
    from gaussian_head_ros.core.control import head_rotation_in_view, line_of_sight_rotation

    if avatar.source_camera is None:
        raise ValueError("the avatar has no source camera to render from")
    vm = np.asarray(avatar.source_camera.viewmat, np.float64)
    view = np.eye(4)
    view[:3, :3], view[:3, 3] = line_of_sight_rotation(vm[:3, 3]), vm[:3, 3]
    return head_rotation_in_view(vm[:3, :3], vm[:3, 3]), view


def source_view(avatar: GaussianAvatar, yaw_deg: float = 0.0, pitch_deg: float = 0.0, mouth_open: float = 0.0,
                size: int | None = None, background=(0.0, 0.0, 0.0), backend: str = "auto", driver=None,
                orbit: bool = False) -> np.ndarray:
    """[H, W, 3] float32 in [0, 1]: the avatar from its source camera, the head turned by yaw/pitch (degrees,
    as FaceControl, from the photo's pose) and the jaw opened by mouth_open; all zero = the photo's pose
    (`photo_pose`), which reproduces the photo. The pose goes through the control, as the render node draws
    an operator turned so, the torso following part of the turn; `orbit`: the camera turns about the head
    origin instead, the avatar staying in the photo's pose (views from around the whole avatar)."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat, matrix_to_quat, quat_to_matrix
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.render import rasterize

    K, w, h = source_intrinsics(avatar, size)
    rot, view = photo_pose(avatar)
    turn = quat_to_matrix(euler_to_quat(yaw_deg, pitch_deg, 0.0).astype(np.float64))
    control = FaceControl.rest()
    if orbit:
        view[:3, :3] = view[:3, :3] @ rot @ turn @ rot.T  # the head drawn at L R turn, the rest with it
        control.rotation = matrix_to_quat(rot).astype(np.float32)
    else:
        control.rotation = matrix_to_quat(rot @ turn).astype(np.float32)
    control.mouth_open = float(mouth_open)
    p = (driver or Driver(avatar)).drive(control, viewmat=view)
    return rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view.astype(np.float32), K, w, h,
                     background=background, backend=backend).image


def contact_sheet(avatar: GaussianAvatar, photo: np.ndarray | None = None, yaws=SHEET_YAWS, mouth_open: float = 0.4,
                  size: int = 256, backend: str = "auto") -> np.ndarray:
    """[size, (n + 2) * size, 3] uint8: the photo (if given), the avatar at each yaw, and with the mouth open."""
    import cv2

    from gaussian_head_ros.core.drive import Driver

    driver = Driver(avatar)
    tiles = []
    if photo is not None:
        tiles.append(cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)
    tiles += [source_view(avatar, yaw, size=size, backend=backend, driver=driver) for yaw in yaws]
    tiles.append(source_view(avatar, 0.0, mouth_open=mouth_open, size=size, backend=backend, driver=driver))
    return (np.clip(np.concatenate(tiles, axis=1), 0, 1) * 255 + 0.5).astype(np.uint8)


PREVIEW_FILES = ("photo.png", "render.png", "mask.png")  # what write_preview writes in its directory


def write_preview(result, directory: str | Path, backend: str = "auto") -> list[Path]:
    """DIR/photo.png (the photo as the source camera sees it), DIR/render.png (the avatar at rest from the
    same camera) and DIR/mask.png (the head region, white: mesh_fit's; a rar result has no mask), at the source
    camera's size (a rar model's crop: its last training stage's resolution, 96 px for config/train_tiny_cpu.yaml);
    DIR is made when missing. Returns the paths written.
    Raises OSError when DIR cannot be made, ValueError when a file cannot be written (OpenCV's imwrite only returns
    False: a preview that was not written was listed as written)."""
    import cv2

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    render = source_view(result.avatar, backend=backend)
    photo_png, render_png, mask_png = PREVIEW_FILES
    images = {render_png: (np.clip(render, 0, 1)[..., ::-1] * 255 + 0.5).astype(np.uint8)}
    if result.photo is not None:
        images = {photo_png: np.ascontiguousarray(result.photo[..., ::-1]), **images}
    if result.mask is not None:
        images[mask_png] = result.mask.astype(np.uint8) * 255
    out = []
    for name, image in images.items():
        out.append(d / name)
        if not cv2.imwrite(str(out[-1]), image):
            raise ValueError(f"cannot write the preview {out[-1].resolve()}")
    return out

