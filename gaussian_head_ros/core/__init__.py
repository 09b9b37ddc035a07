"""The ROS-free core. Nothing under this package imports rclpy or message types.

What a program of its own imports (README: "From Python"; each name's docstring gives shapes and errors):

- a photo file -> [H, W, 3] uint8 RGB: `core.imageio.read_image`
- photo -> avatar: `core.reconstruct.get_reconstructor` ("mesh_fit": use it as a context manager;
  `.reconstruct(rgb, operator_id=...)` -> ReconstructionResult, its `.avatar` a GaussianAvatar; a photo that makes
  no avatar raises `core.reconstruct.ReconstructionError`, a ValueError with a `code`)
- avatar files: `core.avatar.save_ply` (writes NAME.ply and NAME.driving.npz) and `core.avatar.load_ply`
- camera frames -> controls: `core.tracking.FaceTracker` (`.process(rgb, stamp_ns)`: RGB uint8 frames, stamps in
  rising nanoseconds; one per thread)
- controls: `core.control.FaceControl` (`FaceControl.rest()`; head turn `rotation` from
  `core.control.euler_to_quat`, blendshapes by ARKit name, `gaze` in radians, `eyelid_ratios`)
- the face display's picture of an avatar driven by a control: `core.display.FaceDisplay` (`.render(control)` ->
  [H, W, 3] uint8 RGB, framed as render_node frames it)
- the avatar as the photo's camera saw it: `core.reconstruct.preview.source_view` ([S, S, 3] float32 in 0..1)
- the idle animation (blinks, breathing, sway) without an operator: `core.idle.IdleAnimator`
- the parts under those: `core.drive.Driver` (control -> posed Gaussians), `core.render.get_renderer` and
  `core.render.rasterize` (Gaussians, viewmat, K -> image), `core.display.AvatarFraming` (the display's K)

Conventions: images are RGB (OpenCV's are BGR), uint8 unless said; lengths in metres, angles in radians unless
a name says `_deg`; cameras in OpenCV axes (x right, y down, z forward), `viewmat` world(head)-to-camera [4, 4], `K`
[3, 3] in pixels; the head frame x right, y down, z into the head. Trackers, reconstructors, drivers and
FaceDisplay are not thread-safe (one per thread); the cpu rasterizer keeps worker threads of its own (`threads`).
"""

from gaussian_head_ros.core.jit import configure_numba

configure_numba()  # before any module of ours defines a numba kernel (see core/jit.py)
