"""The intrinsics of a camera frame from the fields of a sensor_msgs/CameraInfo (no ROS types here).

sensor_msgs/CameraInfo holds the raw camera's matrix K (row-major 3x3) and the projection matrix P
(row-major 3x4) of the rectified image; an uncalibrated driver publishes them all zero. Some real
drivers fill P and leave K all zero. The rule (one implementation, used by tracker_node):

  1. K, when its focal lengths are positive;
  2. else P's left 3x3 (fx = P[0], cx = P[2], fy = P[5], cy = P[6]), when its focal lengths are positive;
  3. else the documented field of view (`fov_deg` across the frame's longer side, centred principal point).

The chosen matrix is rescaled when the camera_info was made for another resolution of the same camera
(its width/height, when given, differ from the frame's); one made for another aspect ratio is rescaled too, with a
warning (size_mismatch). Non-finite or negative values are refused (check_camera_info), and so is a matrix that no
real camera has (check_plausible: a field of view outside PLAUSIBLE_FOV_DEG, pixels far from square, or the principal
point outside the image), which intrinsics_from_camera_info raises as ValueError.

The other way, `camera_info_of_render`: a rendered image's K and P for the camera_info beside it (render_node's
`face_display/camera_info`).
"""

from __future__ import annotations

import numpy as np

from gaussian_head_ros.core.facemesh import default_intrinsics

SOURCES = ("K", "P", "fov")

# The field of view (degrees, across the frame's width for fx and its height for fy, pinhole: 2 atan(size / 2f)) of a
# matrix a real camera can have. Narrow end: the tele end of 30x PTZ conference cameras is ~2.3 degrees wide (Sony
# SRG-300H: 63.7 to 2.3 degrees horizontal); 1 leaves room below it. Wide end: the widest rectilinear lenses cover
# ~122-127 degrees across the width (a 9 mm lens on a 36 mm sensor: 2 atan(18 / 9) = 127), and a fisheye calibrated
# with ROS's `equidistant` model (r = f theta) has f = (size / 2) / theta_max, whose pinhole angle 2 atan(theta_max)
# stays below 118 degrees for up to 190 degrees of fisheye; 150 leaves room above both. A K of fx = 1 px on 640 px
# frames is 179.6 degrees (a placeholder, not a lens), fx = 1e9 px 0.00004 degrees.
PLAUSIBLE_FOV_DEG = (1.0, 150.0)
# fy / fx: square pixels are 1 within a few percent after calibration; a 2x anamorphic lens, the strongest in use,
# makes 2 (or 1/2); a camera_info for another aspect ratio, rescaled (size_mismatch), 4/3 from 16:9 to 4:3.
PLAUSIBLE_PIXEL_ASPECT = (0.5, 2.0)


def check_camera_info(k, p) -> None:
    """Raise ValueError when K ([9]) or P ([12], may be empty) holds NaN/Inf or a negative focal length."""
    k = np.asarray(k, np.float64).reshape(-1)
    p = np.asarray(p, np.float64).reshape(-1)
    if not np.all(np.isfinite(k)) or not np.all(np.isfinite(p)):
        raise ValueError("its intrinsics are not finite")
    if k.size != 9 or p.size not in (0, 12):
        raise ValueError(f"K has {k.size} values (9 expected) and P {p.size} (12 expected)")
    if k[0] < 0 or k[4] < 0 or (p.size and (p[0] < 0 or p[5] < 0)):
        raise ValueError("it has a negative focal length")


def check_plausible(K: np.ndarray, width: int, height: int) -> None:
    """Raise ValueError naming the first thing no real camera has in K ([3, 3] pixels) for width x height frames:
    a field of view outside PLAUSIBLE_FOV_DEG across the width (fx) or the height (fy), fy / fx outside
    PLAUSIBLE_PIXEL_ASPECT, or the principal point (cx, cy) not inside the image (0 < cx < width, 0 < cy < height:
    the optical axis meets the sensor, even under a shift lens; a K left as [f 0 0; 0 f 0; 0 0 1] puts it on a
    corner). K must be finite with positive focal lengths (check_camera_info)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lo, hi = PLAUSIBLE_FOV_DEG
    for axis, f, size in (("x", fx, width), ("y", fy, height)):
        fov_deg = float(np.degrees(2.0 * np.arctan2(size / 2.0, f)))
        if not lo <= fov_deg <= hi:
            across = "width" if axis == "x" else "height"
            raise ValueError(f"f{axis} {f:.6g} px is a {fov_deg:.4g} degree field of view across the {size} px "
                             f"{across}, outside the {lo:g}-{hi:g} degrees of real cameras")
    lo, hi = PLAUSIBLE_PIXEL_ASPECT
    if not lo <= fy / fx <= hi:
        raise ValueError(f"fy / fx is {fy / fx:.3g} (fx {fx:.6g}, fy {fy:.6g} px), outside {lo:g}-{hi:g}: pixels that "
                         "far from square")
    if not (0.0 < cx < width and 0.0 < cy < height):
        raise ValueError(f"the principal point ({cx:.6g}, {cy:.6g}) px is not inside the {width}x{height} image")


def intrinsics_from_camera_info(k, p, info_width: int, info_height: int, width: int, height: int,
                                fov_deg: float) -> tuple[np.ndarray, str]:
    """CameraInfo K ([9]), P ([12] or empty) and its width/height (0 = unknown) -> ([3, 3] float64 intrinsics
    in pixels for a width x height frame, which of "K", "P", "fov" gave them). Call check_camera_info first.
    Raises ValueError (check_plausible) when the matrix chosen, rescaled to the frame, is not a real camera's."""
    k = np.asarray(k, np.float64).reshape(-1)
    p = np.asarray(p, np.float64).reshape(-1)
    if k.size == 9 and k[0] > 0 and k[4] > 0:
        m, source = k.reshape(3, 3).copy(), "K"
    elif p.size == 12 and p[0] > 0 and p[5] > 0:
        m, source = p.reshape(3, 4)[:, :3].copy(), "P"
    else:
        return default_intrinsics(width, height, fov_deg), "fov"
    m[2] = (0.0, 0.0, 1.0)
    if info_width > 0 and info_height > 0:  # a camera_info for another resolution of the same camera
        m[0] *= width / info_width
        m[1] *= height / info_height
    try:
        check_plausible(m, width, height)
    except ValueError as e:
        raise ValueError(f"its {source} is not a real camera's: {e}") from None
    return m, source


ASPECT_TOLERANCE = 0.01  # relative difference of width/height ratios still taken as the same camera mode


def size_mismatch(info_width: int, info_height: int, width: int, height: int) -> str:
    """'' when a camera_info made for info_width x info_height (0 = not said) fits a width x height frame: the
    same size, or another resolution of the same camera (the same aspect ratio within ASPECT_TOLERANCE; the
    matrix is rescaled). Else a warning: a camera_info for another aspect ratio (a driver calibrated at 1280x720
    streaming 640x480: a crop or another sensor mode) is rescaled by different factors in x and y, and fx and fy
    come out unequal (1400 px -> fx 467, fy 622), which bends the head pose without a word (user16, s16)."""
    if info_width <= 0 or info_height <= 0 or (info_width, info_height) == (width, height):
        return ""
    if abs((info_width / info_height) / (width / height) - 1.0) <= ASPECT_TOLERANCE:
        return ""
    return (f"camera_info is for {info_width}x{info_height} frames but the frames are {width}x{height}, another "
            f"aspect ratio: its matrix is scaled by {width / info_width:.3f} in x and {height / info_height:.3f} in "
            "y, which is right only if the driver scales the whole sensor image; for a crop or another sensor "
            "mode, publish the camera_info of the mode streamed (or use_camera_info:=false: fov_deg)")


def describe(K: np.ndarray, source: str, fov_deg: float, have_camera_info: bool = True,
             use_camera_info: bool = True, refused: bool = False) -> str:
    """A log line saying which intrinsics a node uses: K [3, 3] (pixels), `source` as intrinsics_from_camera_info
    gives it ('K', 'P' or 'fov'), and why a field of view is used (camera_info all zero, none yet, not used:
    `use_camera_info` false, or `refused`: the camera_info that came was refused and none was taken before)."""
    why = ("use_camera_info is false" if not use_camera_info else "the camera_info was refused" if refused else
           "camera_info K and P are all zero" if have_camera_info else "no camera_info yet")
    what = {"K": "camera_info K", "P": "camera_info P (its K is all zero)",
            "fov": f"a {fov_deg:g} degree field of view ({why})"}[source]
    return f"intrinsics from {what}: fx {K[0, 0]:.1f} fy {K[1, 1]:.1f} cx {K[0, 2]:.1f} cy {K[1, 2]:.1f} px"


def camera_info_of_render(K: np.ndarray, width: int, height: int, mirror: bool = False) -> tuple[list, list]:
    """The camera_info K ([9], row-major) and P ([12]) of an image drawn by core.render with intrinsics K
    ([3, 3], pixels, pixel centres at integer + 0.5) at width x height.

    CameraInfo follows OpenCV: the centre of pixel (0, 0) is at (0, 0), so the principal point moves by
    -0.5 px (sensor_msgs/CameraInfo, REP 104; core/render/__init__.py states the renderer's convention).
    A left-right mirrored image (`mirror`) puts the principal point at width - 1 - cx. The rendered image is
    undistorted and unrectified-equals-rectified: P = [K | 0] (a monocular camera, no baseline)."""
    K = np.asarray(K, np.float64).reshape(3, 3)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2] - 0.5, K[1, 2] - 0.5
    if mirror:
        cx = width - 1 - cx
    k = [float(fx), 0.0, float(cx), 0.0, float(fy), float(cy), 0.0, 0.0, 1.0]
    p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return k, p
