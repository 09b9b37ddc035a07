"""Inputs from the field (issue 14) through the running nodes, over real DDS: reconstruction_node and
tracker_node in their own processes, fed by this test process (graph_peer.Peer).

- operator/photo/compressed: a phone JPEG stored rotated (EXIF Orientation 6) gives the upright avatar;
  a 48 MP JPEG is decoded reduced and reconstructed; a compressedDepth image is refused, naming it.
- operator/photo: a bgra8 cut-out gives an avatar without the colour hidden under its transparent pixels;
  an 8UC3 photo is taken as BGR with one warning.
- camera/camera_info with K all zero and P filled: the tracker uses P (the same head depth as the
  equivalent K), says so once; 8UC3 camera frames are warned about once.
Every refused input leaves the latched avatar as it was, and the nodes alive.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest
from conftest import shared
from graph_peer import latched_operator, photo
from test_field_inputs import _magenta, encode_with_orientation, registered, stored_for_orientation
from test_hostile_inputs import _alive, _logs, _status

pytestmark = pytest.mark.ros

STAMP0 = 1_700_000_900 * 10**9


@pytest.fixture(scope="module")
def graph(rclpy_context, tmp_path_factory):
    from graph_peer import Peer, close_graph, latched_qos
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from gaussian_head_ros.msg import AvatarStatus, FaceControl, GaussianAvatar
    from gaussian_head_ros.nodes.launcher import NodeProcess, node_command

    logs = tmp_path_factory.mktemp("field")
    procs = {
        "recon": NodeProcess("reconstruction_node", node_command("reconstruction_node", {"preset": "fast"}), logs),
        "tracker": NodeProcess("tracker_node", node_command(
            "tracker_node", {"neutral_frames": 1, "no_face_rate": 0.0, "smoothing": False}), logs),
    }
    peer = Peer(rclpy_context, "field_peer")
    reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    peer.subscribe_diagnostics()
    peer.subscribe("status", AvatarStatus, "avatar/status", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    peer.subscribe("avatars", GaussianAvatar, "avatar", latched_qos())
    peer.subscribe("controls", FaceControl, "face_control", 100)
    g = dict(
        procs=procs, peer=peer,
        photo=peer.publisher(Image, "operator/photo", reliable),
        photo_c=peer.publisher(CompressedImage, "operator/photo/compressed", reliable),
        camera=peer.publisher(Image, "camera/image_raw", qos_profile_sensor_data),
        camera_info=peer.publisher(CameraInfo, "camera/camera_info", qos_profile_sensor_data),
    )
    peer.start()
    up = peer.wait(lambda: g["photo"].get_subscription_count() and g["photo_c"].get_subscription_count()
                   and g["camera"].get_subscription_count() and "reconstructor ready" in procs["recon"].log(), 120)
    assert up, _logs(g)
    yield g
    close_graph(peer, procs)


def _avatar(g, operator_id, timeout=30.0):
    from gaussian_head_ros.nodes.conversions import msg_to_avatar

    def find():
        return next((m for m in reversed(g["peer"].messages("avatars")) if m.operator_id == operator_id), None)
    assert g["peer"].wait(lambda: find() is not None, timeout), f"no avatar for {operator_id}\n{_logs(g)}"
    return msg_to_avatar(find())


def _compressed(frame_id, data: bytes, fmt="jpeg"):
    from sensor_msgs.msg import CompressedImage
    from std_msgs.msg import Header

    return CompressedImage(header=Header(frame_id=frame_id), format=fmt, data=data)


def _raw(frame_id, pixels: np.ndarray, encoding: str, stamp=0):
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from gaussian_head_ros.nodes.conversions import ns_to_stamp

    h, w = pixels.shape[:2]
    return Image(header=Header(frame_id=frame_id, stamp=ns_to_stamp(stamp)), width=w, height=h,
                 step=pixels.strides[0], encoding=encoding, data=np.ascontiguousarray(pixels).tobytes())


def _render(avatar, size=256) -> np.ndarray:
    from gaussian_head_ros.core.reconstruct.preview import source_view

    return (np.clip(source_view(avatar, size=size, backend="cpu"), 0, 1) * 255 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------
# reconstruction_node

def test_a_phone_jpeg_stored_rotated_gives_the_upright_avatar(graph):
    """Orientation 6 on operator/photo/compressed: the avatar (drawn from its source camera, registered onto
    the upright one's) matches the upright JPEG's avatar at > 25 dB in the head, and so do the upside-down stored
    pixels of orientation 3 without their tag (what ignoring a tag gives), turned upright with a warning."""
    from gaussian_head_ros.core.metrics import psnr
    from gaussian_head_ros.msg import AvatarStatus

    g = graph
    up = photo("lp_d8_man_glasses.jpg", 480)
    up = up[: up.shape[0] // 16 * 16, : up.shape[1] // 16 * 16]
    for o in (1, 6):
        g["photo_c"].publish(_compressed(f"exif_{o}", encode_with_orientation(up, o, quality=100)))
        st = _status(g, f"exif_{o}")
        assert st.code == AvatarStatus.OK, st.message
    r1, r6 = _render(_avatar(g, "exif_1")), _render(_avatar(g, "exif_6"))
    head = r1.max(axis=2) > 20  # the avatar, not the black background
    assert psnr(registered(r6, r6, r1), r1, head) > 25.0  # measured 29-30 dB (two reconstructions differ a little)
    # Orientation 3's stored pixels without their tag (upside down, what ignoring a tag gives) are turned upright by
    # the framing since user37 (s37: before, 'no face found' here, an upside-down avatar below 20 dB for larger
    # photos), as orientation 6's stored pixels alone (a head on its side) are since try10's bf1bcfc.
    stored = stored_for_orientation(up, 3)
    g["photo_c"].publish(_compressed("exif_ignored", cv2.imencode(".png", stored[..., ::-1])[1].tobytes(), "png"))
    st = _status(g, "exif_ignored")
    assert st.code == AvatarStatus.OK and [w for w in st.warnings if "upside down" in w], (st.message, st.warnings)
    r = _render(_avatar(g, "exif_ignored"))
    assert psnr(registered(r, r, r1), r1, head) > 25.0
    _alive(g)


def test_a_rolled_photo_is_turned_upright_with_a_warning_in_its_status(graph):
    """A photo whose head is rolled 30 degrees (a phone held crooked) on operator/photo/compressed: OK, the turn said
    in the status's warnings and the node's log (framing.roll_upright; test_field_inputs measures the avatar)."""
    from gaussian_head_ros.msg import AvatarStatus

    g = graph
    up = photo("lp_d8_man_glasses.jpg", 480)
    h, w = up.shape[:2]
    rolled = cv2.warpAffine(up, cv2.getRotationMatrix2D((w / 2, h / 2), 30.0, 1.0), (w, h))
    g["photo_c"].publish(_compressed("rolled", cv2.imencode(".png", rolled[..., ::-1])[1].tobytes(), "png"))
    st = _status(g, "rolled")
    said = [x for x in st.warnings if "the head is rolled" in x and "clockwise to make the head upright" in x]
    assert st.code == AvatarStatus.OK and said, (st.message, st.warnings)
    assert "the head is rolled" in g["procs"]["recon"].log()
    _alive(g)


def test_a_bgra8_cutout_gives_an_avatar_without_halo(graph):
    from gaussian_head_ros.core.avatar import sh_dc_to_rgb
    from gaussian_head_ros.msg import AvatarStatus

    g = graph
    rgb = photo("lp_d8_man_glasses.jpg", 480)
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((xx - w / 2) / (0.42 * w), (yy - h * 0.45) / (0.5 * h))
    a8 = np.round(np.clip((1.0 - r) / 0.2, 0, 1) * 255).astype(np.uint8)
    hidden = rgb.copy()
    hidden[a8 == 0] = (255, 0, 255)
    g["photo"].publish(_raw("cutout", np.dstack([hidden[..., ::-1], a8]), "bgra8"))
    st = _status(g, "cutout")
    assert st.code == AvatarStatus.OK, st.message
    colours = np.clip(sh_dc_to_rgb(_avatar(g, "cutout").sh[:, 0]) * 255, 0, 255)
    assert _magenta(colours[None])[0].mean() < 0.002


def test_a_48mp_jpeg_is_decoded_reduced_and_reconstructed(graph, tmp_path):
    from test_field_inputs import _phone_jpeg

    from gaussian_head_ros.msg import AvatarStatus

    g = graph
    path = tmp_path / "phone.jpg"
    _phone_jpeg(path)
    g["photo_c"].publish(_compressed("phone_48mp", path.read_bytes()))
    st = _status(g, "phone_48mp", 180)
    assert st.code == AvatarStatus.OK, st.message  # 40 MP limit: decoded at 1/2, 4000x3000
    _alive(g)


def test_compressed_depth_is_refused_naming_it_and_the_avatar_stays(rclpy_context, graph):
    from gaussian_head_ros.msg import AvatarStatus

    g = graph
    g["photo_c"].publish(_compressed("before_depth", cv2.imencode(".jpg", photo("obama_official.jpg")[..., ::-1])[1]
                                     .tobytes()))
    assert _status(g, "before_depth").code == AvatarStatus.OK
    depth = (np.random.default_rng(0).random((120, 160)) * 4000).astype(np.uint16)
    body = struct.pack("<iff", 0, 0.0, 0.0) + cv2.imencode(".png", depth)[1].tobytes()  # image_transport's layout
    g["photo_c"].publish(_compressed("depth", body, "16UC1; compressedDepth png"))
    st = _status(g, "depth")
    assert st.code == AvatarStatus.BAD_IMAGE and "compressedDepth" in st.message, st.message
    assert "compressedDepth" in g["procs"]["recon"].log()
    assert latched_operator(rclpy_context, "late_joiner_depth") == "before_depth"
    _alive(g)


def test_a_chin_cut_by_the_frame_is_refused_and_the_avatar_stays(rclpy_context, graph):
    from test_field_inputs import _face_rows

    from gaussian_head_ros.msg import AvatarStatus

    g = graph
    img = photo("lp_d8_man_glasses.jpg")
    g["photo"].publish(_raw("whole_head", img, "rgb8"))
    assert _status(g, "whole_head").code == AvatarStatus.OK
    fore, chin = _face_rows(img)
    g["photo"].publish(_raw("chin_cut", np.ascontiguousarray(img[: int(fore + 0.9 * (chin - fore))]), "rgb8"))
    st = _status(g, "chin_cut")
    assert st.code == AvatarStatus.FACE_CUT_OFF and "chin is cut off" in st.message, (st.code, st.message)
    assert latched_operator(rclpy_context, "late_joiner_chin") == "whole_head"
    _alive(g)


def test_an_8uc3_photo_is_taken_as_bgr_with_one_warning(graph):
    from gaussian_head_ros.msg import AvatarStatus

    g = graph
    bgr = np.ascontiguousarray(photo("obama_official.jpg")[..., ::-1])
    for k in range(2):
        g["photo"].publish(_raw(f"ambiguous_{k}", bgr, "8UC3"))
        assert _status(g, f"ambiguous_{k}").code == AvatarStatus.OK
    assert g["procs"]["recon"].log().count("8UC3 images carry no channel order: taken as BGR") == 1


# ---------------------------------------------------------------------------------------------------
# tracker_node

@pytest.fixture(scope="module")
def clip():
    from gaussian_head_ros.core.video import read_frames

    return read_frames(str(shared("driving", "lp_d18.mp4")), max_frames=4)


_k = [0]


def _track(g, rgb, encoding="rgb8"):
    """Send one camera frame (a fresh stamp) until the tracker answers; its FaceControl. `rgb` is sent as it is,
    except for 8UC3 (sent as its BGR bytes)."""
    from graph_peer import stamp_ns

    _k[0] += 1
    stamp = STAMP0 + _k[0] * 33_333_333
    msg = _raw("cam", np.ascontiguousarray(rgb[..., ::-1]) if encoding == "8UC3" else rgb, encoding, stamp)

    def answer():
        return next((c for c in g["peer"].messages("controls") if stamp_ns(c) == stamp), None)
    assert g["peer"].wait(lambda: answer() is not None, 60, action=lambda: g["camera"].publish(msg)), _logs(g)
    return answer()


def _camera_info(w, h, k=None, p=None):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=w, height=h)
    info.k = [float(v) for v in (k if k is not None else np.zeros(9))]
    info.p = [float(v) for v in (p if p is not None else np.zeros(12))]
    return info


def _depth_with(g, rgb, info, log_words):
    """The head depth (m) the tracker reports for `rgb` once it has taken `info` (its log says which)."""
    tracker = g["procs"]["tracker"]
    n0 = tracker.log().count(log_words)
    assert g["peer"].wait(lambda: tracker.log().count(log_words) > n0, 60,
                          action=lambda: (g["camera_info"].publish(info), _track(g, rgb))), _logs(g)
    return _track(g, rgb).head_pose.position.z


def test_camera_info_with_k_zero_uses_p_and_says_so_once(graph, clip):
    g = graph
    rgb = clip[0].rgb
    h, w = rgb.shape[:2]
    fx, cx, cy = 2.0 * w, w / 2, h / 2  # a long lens: far from the 50-degree default
    K = np.array([fx, 0, cx, 0, fx, cy, 0, 0, 1])
    P = np.array([fx, 0, cx, 0, 0, fx, cy, 0, 0, 0, 1, 0])
    z_k = _depth_with(g, rgb, _camera_info(w, h, k=K, p=P), "intrinsics from camera_info K")
    z_p = _depth_with(g, rgb, _camera_info(w, h, p=P), "intrinsics from camera_info P (its K is all zero)")
    z_fov = _depth_with(g, rgb, _camera_info(w, h), "50 degree field of view (camera_info K and P are all zero)")
    assert abs(z_p - z_k) < 0.01 * z_k, (z_p, z_k)  # P gives the depth of the equivalent K (measured 0.05% apart)
    assert abs(z_fov - z_k) > 0.2 * z_k, (z_fov, z_k)  # the default lens is 46% off: the test can fail
    for _ in range(3):  # the same camera_info again: no new line
        g["camera_info"].publish(_camera_info(w, h))
        _track(g, rgb)
    assert g["procs"]["tracker"].log().count("camera_info K and P are all zero") == 1
    # new K values from the same source (K again, then a shorter lens): a new line with the new values (the log
    # said only when the source changed, and went on showing the first K's numbers)
    _depth_with(g, rgb, _camera_info(w, h, k=K, p=P), "intrinsics from camera_info K")
    K2 = np.array([1.5 * w, 0, cx, 0, 1.5 * w, cy, 0, 0, 1])
    z_k2 = _depth_with(g, rgb, _camera_info(w, h, k=K2), f"intrinsics from camera_info K: fx {1.5 * w:.1f}")
    assert abs(z_k2 - 0.75 * z_k) < 0.02 * z_k, (z_k2, z_k)  # the depth follows the focal length
    # a camera_info made for another aspect ratio (a 16:9 calibration for these frames): said, as a warning
    _depth_with(g, rgb, _camera_info(w * 16 // 9, h, k=K2), "another aspect ratio")
    assert "[WARN]" in [line for line in g["procs"]["tracker"].log().splitlines() if "another aspect ratio" in line][0]
    _alive(g)


def test_an_implausible_camera_info_is_refused_once_and_the_previous_intrinsics_stay(graph, clip):
    """camera_info K that no camera has: fx = 1 px with the principal point on the corner (a placeholder), fx = 1e9
    px, negative, NaN, a principal point off the image. Each is refused, said once in the log however often the
    driver repeats it with its frames, and on /diagnostics while it is the newest camera_info; the head depth stays
    the one of the K taken before (before: fx = 1 and 1e9 were taken silently, the head at 1e-3 or 1e6 times its
    distance; NaN and negative were said every 5 s, and never on /diagnostics). A good camera_info after them is
    taken and clears the refusal."""
    g, peer, tracker = graph, graph["peer"], graph["procs"]["tracker"]
    rgb = clip[2].rgb
    h, w = rgb.shape[:2]
    fx, cx, cy = 1.7 * w, w / 2, h / 2
    good = _camera_info(w, h, k=[fx, 0, cx, 0, fx, cy, 0, 0, 1])
    z_good = _depth_with(g, rgb, good, f"intrinsics from camera_info K: fx {fx:.1f}")
    bad = {  # name: K, the words of its refusal
        "placeholder": ([1.0, 0, 0, 0, 1.0, 0, 0, 0, 1], "degree field of view across the"),
        "1e9": ([1e9, 0, cx, 0, 1e9, cy, 0, 0, 1], "fx 1e+09 px is a"),
        "negative": ([-fx, 0, cx, 0, -fx, cy, 0, 0, 1], "negative focal length"),
        "nan": ([float("nan"), 0, cx, 0, fx, cy, 0, 0, 1], "not finite"),
        "off the image": ([fx, 0, 5 * w, 0, fx, cy, 0, 0, 1], "principal point"),
    }
    for name, (k, words) in bad.items():
        info = _camera_info(w, h, k=k)
        n0 = tracker.log().count("camera_info refused")
        assert peer.wait(lambda: tracker.log().count("camera_info refused") > n0, 60,
                         action=lambda: (g["camera_info"].publish(info), _track(g, rgb))), (name, _logs(g))
        refused = [line for line in tracker.log().splitlines() if "camera_info refused" in line][-1]
        assert "[WARN]" in refused and words in refused and "keeping the intrinsics of the camera_info taken" in refused
        for _ in range(5):  # a driver sends it with every frame: not said again
            g["camera_info"].publish(info)
            z = _track(g, rgb).head_pose.position.z
            assert abs(z - z_good) < 0.01 * z_good, (name, z, z_good)
        assert tracker.log().count("camera_info refused") == n0 + 1, (name, _logs(g))
        peer.forget_diag("tracker_node")
        assert peer.wait(lambda: words in (peer.diag_value("tracker_node", "camera_info_refused") or ""), 30,
                         action=lambda: (g["camera_info"].publish(info), _track(g, rgb))), (name, peer.diag("tracker_node"))
        level, message, _ = peer.diag("tracker_node")
        assert level == 1 and "camera_info refused" in message and words in message, (name, message)
    # a good one again: taken (the intrinsics line did not change: not said again), the refusal is over
    peer.forget_diag("tracker_node")
    assert peer.wait(lambda: peer.diag_value("tracker_node", "camera_info_refused") == "", 30,
                     action=lambda: (g["camera_info"].publish(good), _track(g, rgb))), peer.diag("tracker_node")
    z = _track(g, rgb).head_pose.position.z
    assert abs(z - z_good) < 0.01 * z_good, (z, z_good)
    _alive(g)


def test_8uc3_camera_frames_are_bgr_with_one_warning(graph, clip):
    g = graph
    c_rgb = _track(g, clip[1].rgb)
    for _ in range(3):
        c = _track(g, clip[1].rgb, "8UC3")  # BGR bytes labelled 8UC3
        assert c.face_detected
    assert abs(c.head_pose.position.z - c_rgb.head_pose.position.z) < 0.01
    assert g["procs"]["tracker"].log().count("8UC3 images carry no channel order: taken as BGR") == 1
    _alive(g)


def test_bgrx_camera_frames_are_tracked_with_one_warning(graph, clip):
    """A camera publishing bgra8 whose fourth byte is padding, 0 in every pixel (BGRx: a screen grab, an X11 or V4L2
    XRGB source): the tracker composited each frame as wholly transparent, a flat grey picture, found no face in any
    and said only 'no face in view' (user46, s46). Now the colour is taken, and the padding said once."""
    g = graph
    c_rgb = _track(g, clip[1].rgb)
    bgrx = np.concatenate([clip[1].rgb[..., ::-1], np.zeros((*clip[1].rgb.shape[:2], 1), np.uint8)], axis=2)
    for _ in range(2):
        c = _track(g, bgrx, "bgra8")
        assert c.face_detected, _logs(g)
    assert abs(c.head_pose.position.z - c_rgb.head_pose.position.z) < 0.01 * c_rgb.head_pose.position.z
    said = [ln for ln in g["procs"]["tracker"].log().splitlines() if "alpha is 0 in every pixel" in ln]
    assert len(said) == 1 and "[WARN]" in said[0] and "taken as padding" in said[0], said
    _alive(g)


def _depth_mm(h: int = 240, w: int = 320) -> np.ndarray:
    """[H, W] uint16 depth in millimetres as an RGB-D camera sees a person: a wall at 2 m, a head-sized dome at
    0.7-0.8 m in the middle."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((xx - w / 2) / (w / 5), (yy - h / 2) / (h / 3))
    return np.where(r < 1, 700 + 100 * r**2, 2000).astype(np.uint16)


def test_depth_camera_frames_are_said_to_be_depth_once(graph, clip):
    """A tracker pointed at an RGB-D camera's depth topic (a RealSense's depth/image_rect_raw, 16UC1 in mm, beside
    its color/image_raw) read each frame as a grey picture, found no face, and said only 'no face in view' (user46,
    s46). Now the first 16UC1 frame is warned about once, naming the colour topic to read; a 32FC1 one (metres) is
    skipped saying the same (it was refused with the list of encodings alone)."""
    g = graph
    depth = _depth_mm()
    for _ in range(2):
        assert not _track(g, depth, "16UC1").face_detected
    said = [ln for ln in g["procs"]["tracker"].log().splitlines() if "16UC1 is how depth cameras publish" in ln]
    assert len(said) == 1 and "[WARN]" in said[0] and "color/image_raw" in said[0], _logs(g)
    metres = _raw("cam", depth.astype(np.float32) / 1000, "32FC1", STAMP0 + 900 * 33_333_333)
    assert g["peer"].wait(lambda: "32FC1 is how depth cameras publish depth images (REP 118, in metres)" in
                          g["procs"]["tracker"].log(), 30, action=lambda: g["camera"].publish(metres)), _logs(g)
    assert _track(g, clip[1].rgb).face_detected  # an RGB frame after them is tracked
    _alive(g)


def test_a_bayer_camera_is_demosaiced_and_tracked(graph, clip):
    """A camera driver's raw mosaic (image_raw in bayer_rggb8) was refused frame after frame as an unsupported
    encoding: the tracker found no face. Now demosaiced as cv_bridge does: the same head depth as the RGB frame."""
    g = graph
    rgb = clip[2].rgb
    c_rgb = _track(g, rgb)
    mosaic = np.zeros(rgb.shape[:2], np.uint8)  # R G / G B tiles, top-left first
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]
    c = _track(g, mosaic, "bayer_rggb8")
    assert c.face_detected and abs(c.head_pose.position.z - c_rgb.head_pose.position.z) < 0.02 * c_rgb.head_pose.position.z
    _alive(g)


def test_a_hand_over_the_mouth_lowers_confidence_and_holds_the_mouth(graph):
    """Through the running tracker: 20 frames of a clip, then the same clip with a hand over the mouth.
    Confidence drops below the node's min_confidence (0.5) and mouth_open does not snap."""
    from test_lower_face import cover_mouth, hand_rgba

    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.video import read_frames

    g = graph
    frames = read_frames(str(shared("driving", "lp_d18.mp4")), max_frames=36)
    with FaceMesh() as fm:
        lms = [fm.detect(f.rgb)[0].landmarks_px for f in frames]
    hand = hand_rgba()
    got = []
    for k, f in enumerate(frames):
        c = _track(g, cover_mouth(f.rgb, lms[k], hand) if k >= 20 else f.rgb)
        got.append((c.confidence, c.mouth_open))
    got = np.array(got)
    assert np.all(got[5:20, 0] >= 0.5), got[:20, 0]
    assert np.all(got[23:, 0] < 0.5), got[20:, 0]
    assert np.abs(np.diff(got[23:, 1])).max() < 0.05 and got[23:, 1].max() <= got[16:20, 1].max() + 0.01, got[:, 1]
    _alive(g)
