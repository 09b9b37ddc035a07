"""Messages <-> core dataclasses. The only place that knows both worlds.

Speed matters here: a 100k-Gaussian avatar is ~9 MB and images are ~0.8 MB, so arrays go in
with `bytes`/`array.array` and come out with `np.frombuffer` (never per-element Python lists).
"""

from __future__ import annotations

import array
import zlib

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from gaussian_head_ros.core import expression_codec
from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.avatar import (GaussianAvatar, SourceCamera, gaussian_fields, pack_sh_rest,
                                            sh_dc_to_rgb, unpack_sh_rest)
from gaussian_head_ros.core.camera_info import camera_info_of_render
from gaussian_head_ros.core.control import FaceControl, check_message_points
from gaussian_head_ros.core.imageio import encode_jpeg
from gaussian_head_ros.msg import AvatarStatus
from gaussian_head_ros.msg import ExpressionBasis as ExpressionBasisMsg
from gaussian_head_ros.msg import FaceControl as FaceControlMsg
from gaussian_head_ros.msg import GaussianAvatar as GaussianAvatarMsg


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def stamp_text(stamp: Time) -> str:
    """A header stamp as 'sec.nanosec' (nanoseconds zero-padded to 9 digits), as logs and diagnostics print it."""
    return f"{stamp.sec}.{stamp.nanosec:09d}"


def stamp_utc_text(stamp: Time) -> str:
    """A header stamp (ROS time: seconds since the Unix epoch, UTC) as a person reads it, 'YYYY-MM-DD HH:MM:SS UTC'
    (whole seconds); a stamp before 1970-01-02 (a sim or bag clock's) as `stamp_text` gives it. The cache's
    "restored ... (made 1796461456.049211270)" was a raw stamp no user could read (user43, s43)."""
    import datetime

    if stamp.sec < 86400:
        return stamp_text(stamp)
    return datetime.datetime.fromtimestamp(stamp.sec, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def avatar_message_key(msg) -> tuple:
    """What tells one GaussianAvatar message from another (tuple; equal for the same avatar published again): its
    operator id, header stamp (when it was made), format version, Gaussian count and a CRC-32 over every other field
    of the message (its headers' stamps left out, their frame_ids in; arrays by their bytes: ~5.3 MB for 60k
    Gaussians, a few ms), so that a message differing in any field (a point_step, a template face, a wrinkle row) is
    another and goes through msg_to_avatar's checks. Not the serialized message: CDR's alignment padding is not
    zeroed (two serializations of one message differ). The same avatar comes again when a bag that holds it is
    played in a loop, or a reconstruction node restarts from its cache (README 'cache_path'); a relabelled one
    (another operator_id) is another. One that differs only in its stamp (`same_avatar_made_again`) is the same face
    made again."""
    g = msg.gaussians
    return (msg.operator_id, stamp_text(msg.header.stamp), int(msg.format_version), int(g.width) * int(g.height),
            _fields_crc(msg, stamps=False))


def same_avatar_made_again(key: tuple, shown: tuple) -> bool:
    """Whether avatar_message_key `key` names the avatar of key `shown` made again: every field the same but the
    stamp (when it was made). A deterministic reconstructor makes the same Gaussians of the same photo bytes: the
    photo a robot read from its photo_path, then sent by the operator's photo_node, was reconstructed again and the
    display faded out and back in to the same face (user58, s58)."""
    return bool(shown) and key[1] != shown[1] and key[:1] + key[2:] == shown[:1] + shown[2:]


def _fields_crc(value, crc: int = 0, stamps: bool = True) -> int:
    """CRC-32 (zlib) of a ROS message's fields, depth first in declaration order: buffers (array.array, numpy,
    bytes) by their length in bytes and then their bytes (so that bytes moved from the end of one buffer to the start
    of the next make another key), nested messages and sequences field by field, other values by repr. `stamps`
    False: the `stamp` of every std_msgs/Header in it left out."""
    if isinstance(value, (bytes, bytearray, array.array, np.ndarray)):
        data = memoryview(np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value).cast("B")
        return zlib.crc32(data, zlib.crc32(b"%d:" % data.nbytes, crc))
    if hasattr(value, "get_fields_and_field_types"):
        for name in value.get_fields_and_field_types():
            if stamps or not (name == "stamp" and isinstance(value, Header)):
                crc = _fields_crc(getattr(value, name), crc, stamps)
        return crc
    if isinstance(value, (list, tuple)):
        for v in value:
            crc = _fields_crc(v, crc, stamps)
        return zlib.crc32(b"%d" % len(value), crc)
    return zlib.crc32(repr(value).encode(), crc)


def _f32(a: np.ndarray) -> array.array:
    return array.array("f", np.ascontiguousarray(a, np.float32).tobytes())


def _np(seq, dtype) -> np.ndarray:
    """A message array field (array.array or list) -> numpy without per-element copies."""
    if isinstance(seq, array.array):
        return np.frombuffer(seq, dtype=dtype).copy() if len(seq) else np.zeros(0, dtype)
    return np.asarray(seq, dtype)


# ---------------------------------------------------------------------------------------------------
# GaussianAvatar

def avatar_to_msg(avatar: GaussianAvatar, header: Header | None = None) -> GaussianAvatarMsg:
    """The avatar as a message of format GaussianAvatar.FORMAT_VERSION: `gaussians` without f_rest columns, the SH
    bands above 0 of the rows that have any in sh_rest_rows / sh_rest (`avatar.pack_sh_rest`), the wrinkle map
    (empty when the avatar has none), the photo's rest brow shift."""
    msg = GaussianAvatarMsg()
    msg.header = header or Header()
    msg.operator_id = avatar.operator_id
    msg.format_version = GaussianAvatarMsg.FORMAT_VERSION
    msg.reconstructor = avatar.reconstructor
    msg.gaussians = _float32_cloud(gaussian_fields(0), avatar.table(0), msg.header)
    msg.sh_degree = avatar.sh_degree
    rows, values = pack_sh_rest(avatar.sh)
    msg.sh_rest_rows = array.array("I", rows.astype("<u4").tobytes())
    msg.sh_rest = _f32(values)
    msg.template_vertices = _f32(avatar.template_vertices)
    msg.template_faces = array.array("I", np.ascontiguousarray(avatar.template_faces, np.uint32).tobytes())
    msg.expression_names = list(avatar.expression_names)
    msg.expression_basis = _f32(avatar.expression_basis)
    msg.lighting_sh = _f32(avatar.lighting_sh)
    if avatar.source_camera is not None:
        msg.source_camera = _f32(avatar.source_camera.to_array())
        msg.source_size = list(avatar.source_camera.size)
    msg.wrinkle_rows = array.array("I", np.ascontiguousarray(avatar.wrinkle_rows, "<u4").tobytes())
    msg.wrinkle_rgb = _f32(avatar.wrinkle_rgb)
    msg.wrinkle_expression = _f32(avatar.wrinkle_expression)
    msg.rest_brow_shift = np.asarray(avatar.rest_brow_shift, np.float32).reshape(2)
    return msg


CLOUD_MIN_OPACITY = 0.05  # avatar/cloud leaves out Gaussians fainter than this (nearly invisible when rendered)


def avatar_to_cloud(avatar: GaussianAvatar, header: Header | None = None) -> PointCloud2:
    """The avatar at rest as a plain coloured point cloud for RViz / Foxglove / rosbag tools (topic
    avatar/cloud): one point per Gaussian at its mean (x y z, metres, head frame: `header.frame_id`), with its
    base colour in the `rgb` field as PCL and RViz's PointCloud2 display read it (float32 whose bytes are the
    uint32 0x00RRGGBB, little endian); Gaussians of opacity < CLOUD_MIN_OPACITY left out. A picture of where
    the Gaussians are, not of what they render: no sizes, shapes or view-dependent colour (those are in the
    `avatar` message's `gaussians` field, which RViz does not show: it displays PointCloud2 topics)."""
    keep = avatar.logit_opacities > np.log(CLOUD_MIN_OPACITY / (1 - CLOUD_MIN_OPACITY))
    rgb8 = np.rint(np.clip(sh_dc_to_rgb(avatar.sh[keep, 0]), 0, 1) * 255).astype(np.uint32)
    packed = (rgb8[:, 0] << 16) | (rgb8[:, 1] << 8) | rgb8[:, 2]
    table = np.empty((int(keep.sum()), 4), "<f4")
    table[:, :3] = avatar.means[keep]
    table[:, 3] = packed.astype("<u4").view("<f4")
    return _float32_cloud(("x", "y", "z", "rgb"), table, header or Header())


def _float32_cloud(names, table: np.ndarray, header: Header) -> PointCloud2:
    """[N, len(names)] values -> a dense little-endian PointCloud2 (height 1) of FLOAT32 fields `names`."""
    pc = PointCloud2()
    pc.header = header
    pc.height, pc.width = 1, table.shape[0]
    pc.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate(names)]
    pc.is_bigendian = False
    pc.point_step = 4 * len(names)
    pc.row_step = pc.point_step * pc.width
    pc.is_dense = True
    pc.data = np.ascontiguousarray(table, "<f4").tobytes()
    return pc


def msg_to_avatar(msg: GaussianAvatarMsg, max_gaussians: int | None = None) -> GaussianAvatar:
    """Raises ValueError with a reason when the message is malformed or of another format version."""
    if msg.format_version != GaussianAvatarMsg.FORMAT_VERSION:
        raise ValueError(f"avatar format_version {msg.format_version} is not supported (expected "
                         f"{GaussianAvatarMsg.FORMAT_VERSION}): publisher and subscriber run different "
                         "gaussian_head_ros versions; update the older one")
    pc = msg.gaussians
    n = int(pc.width) * int(pc.height)
    if max_gaussians is not None and n > max_gaussians:
        raise ValueError(f"avatar has {n} Gaussians, above the budget of {max_gaussians} (this node's max_gaussians)")
    names = [f.name for f in pc.fields]
    if pc.is_bigendian:
        raise ValueError("big-endian point clouds are not supported")
    for i, f in enumerate(pc.fields):
        if f.datatype != PointField.FLOAT32 or f.offset != 4 * i or f.count != 1:
            raise ValueError(f"avatar point field {f.name!r} is not a packed FLOAT32 column")
    if pc.point_step != 4 * len(names):
        raise ValueError(f"avatar point_step {pc.point_step} does not match {len(names)} float32 fields")
    if len(pc.data) != n * pc.point_step:
        raise ValueError(f"avatar point data has {len(pc.data)} bytes, expected {n} x {pc.point_step}")
    if any(name.startswith("f_rest_") for name in names):
        raise ValueError("avatar point fields hold f_rest columns; since format 2 they travel in sh_rest")
    rows = np.frombuffer(bytes(pc.data), "<f4").reshape(n, len(names)) if n else np.zeros((0, len(names)), np.float32)
    cols = GaussianAvatar.columns_from_table(rows, names)
    cols["sh"] = unpack_sh_rest(cols["sh"][:, 0], msg.sh_degree, _np(msg.sh_rest_rows, np.uint32),
                                _np(msg.sh_rest, np.float32))
    verts = _np(msg.template_vertices, np.float32)
    faces = _np(msg.template_faces, np.uint32)
    if verts.size % 3 or faces.size % 3:
        raise ValueError("template mesh arrays are not multiples of 3")
    verts, faces = verts.reshape(-1, 3), faces.reshape(-1, 3).astype(np.int64)
    if faces.size and faces.max() >= verts.shape[0]:
        raise ValueError("template faces index vertices that do not exist")
    e = len(msg.expression_names)
    basis = _np(msg.expression_basis, np.float32)
    if e and basis.size != e * verts.shape[0] * 3:
        raise ValueError(f"expression basis has {basis.size} values, expected {e} x {verts.shape[0]} x 3")
    light = _np(msg.lighting_sh, np.float32)
    if light.size not in (0, 27):
        raise ValueError(f"lighting_sh has {light.size} values, expected 27 or none")
    cam = None
    if len(msg.source_camera):
        cam = SourceCamera.from_array(_np(msg.source_camera, np.float32), list(msg.source_size))
    w_rows, w_rgb = _np(msg.wrinkle_rows, np.uint32), _np(msg.wrinkle_rgb, np.float32)
    w_ex = _np(msg.wrinkle_expression, np.float32)
    if w_rgb.size != 3 * w_rows.size or w_ex.size % 3:
        raise ValueError(f"wrinkle map has {w_rows.size} rows, {w_rgb.size} colour values and {w_ex.size} "
                         "expression values; expected M, M x 3 and V x 3")
    avatar = GaussianAvatar(
        **cols,
        wrinkle_rows=w_rows, wrinkle_rgb=w_rgb.reshape(-1, 3), wrinkle_expression=w_ex.reshape(-1, 3),
        rest_brow_shift=np.array(msg.rest_brow_shift, np.float32),
        template_vertices=verts,
        template_faces=faces.astype(np.int32),
        expression_names=list(msg.expression_names),
        expression_basis=basis.reshape(e, verts.shape[0], 3) if e else np.zeros((0, 0, 3), np.float32),
        lighting_sh=light.reshape(-1, 3),
        source_camera=cam,
        operator_id=msg.operator_id,
        reconstructor=msg.reconstructor,
    )
    avatar.validate(max_gaussians)
    return avatar


# ---------------------------------------------------------------------------------------------------
# FaceControl

def control_to_msg(c: FaceControl, codec: int = expression_codec.CODEC_DENSE, operator_basis=None) -> FaceControlMsg:
    """`codec` (expression_codec.CODEC_*): how the expression travels; a compact code (COMPACT_CODECS:
    CODEC_COMPACT = CODEC_LAPLACIAN_V5, or CODEC_LAPLACIAN_V4 / _V3 for a receiver not yet upgraded) puts it and the
    eyelid ratios in expression_code (~0.4 KB) instead of `expression` and `eyelid_ratios` (5.8 KB),
    with the residual's coefficients on `operator_basis` (core.operator_basis.OperatorBasis, published as
    ExpressionBasis) when given."""
    msg = FaceControlMsg()
    msg.header.stamp = ns_to_stamp(c.stamp_ns)
    msg.header.frame_id = c.frame_id
    msg.face_detected = bool(c.face_detected)
    msg.confidence = float(c.confidence)
    pose = Pose()
    w, x, y, z = (float(v) for v in c.rotation)
    pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = w, x, y, z
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in c.translation)
    msg.head_pose = pose
    msg.landmarks = _f32(c.landmarks)
    if codec in expression_codec.COMPACT_CODECS and c.expression.size:
        msg.expression_codec = codec
        msg.expression_code = expression_codec.encode(c.expression, c.eyelid_ratios, operator_basis, codec)
    elif codec == expression_codec.CODEC_DENSE or codec in expression_codec.COMPACT_CODECS:
        msg.expression = _f32(c.expression)
        msg.eyelid_ratios = _f32(c.eyelid_ratios)
    else:
        raise ValueError(f"unknown expression codec {codec}")
    msg.mouth_open = float(c.mouth_open)
    msg.blendshape_names = list(c.blendshape_names)
    msg.blendshapes = _f32(c.blendshapes)
    msg.gaze = _f32(c.gaze)
    return msg


def basis_to_msg(basis, stamp_ns: int = 0) -> ExpressionBasisMsg:
    """core.operator_basis.OperatorBasis -> ExpressionBasis (float16 components)."""
    msg = ExpressionBasisMsg()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.id = int(basis.id)
    msg.num_points, msg.num_components = basis.components.shape[1], basis.num_components
    msg.components = basis.to_bytes()
    return msg


def msg_to_basis(msg: ExpressionBasisMsg):
    """ExpressionBasis -> core.operator_basis.OperatorBasis. ValueError when its shape, length or id is wrong."""
    from gaussian_head_ros.core.operator_basis import OperatorBasis

    if msg.num_points != lmk.NUM_MESH:
        raise ValueError(f"expression basis over {msg.num_points} points; this node knows {lmk.NUM_MESH}")
    return OperatorBasis.from_bytes(bytes(msg.components), int(msg.num_components), int(msg.id))


_KNOWN_CODECS = "0 dense, " + ", ".join(f"{c} laplacian_v{c}" for c in expression_codec.COMPACT_CODECS)


def msg_to_control(msg: FaceControlMsg, operator_basis=None) -> FaceControl:
    """`operator_basis`: the latest ExpressionBasis received (msg_to_basis), used when the code names its id.
    Raises ValueError with a reason when the message is malformed."""
    o, p = msg.head_pose.orientation, msg.head_pose.position
    lm = _np(msg.landmarks, np.float32)
    ex = _np(msg.expression, np.float32)
    lid = _np(msg.eyelid_ratios, np.float32)
    if msg.expression_codec in expression_codec.COMPACT_CODECS:
        if ex.size or lid.size:
            raise ValueError("expression or eyelid_ratios set beside expression_code, which carries both; send one")
        ex, lid = expression_codec.decode(msg.expression_code, operator_basis, msg.expression_codec)
        ex = ex.ravel()
    elif msg.expression_codec in (expression_codec.CODEC_LAPLACIAN_V1, expression_codec.CODEC_LAPLACIAN_V2):
        raise ValueError(f"expression_codec {msg.expression_codec} (laplacian_v{msg.expression_codec}) is retired: "
                         f"the publisher runs an older gaussian_head_ros; update it (this node reads {_KNOWN_CODECS})")
    elif msg.expression_codec != expression_codec.CODEC_DENSE:
        raise ValueError(f"unknown expression_codec {msg.expression_codec} (this node knows {_KNOWN_CODECS}; "
                         "update gaussian_head_ros)")
    if lm.size % 3 or ex.size % 3:
        raise ValueError(f"landmarks ({lm.size}) and expression ({ex.size}) must hold 3 values per landmark")
    c = FaceControl(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=msg.header.frame_id,
        face_detected=bool(msg.face_detected),
        confidence=float(msg.confidence),
        rotation=np.array([o.w, o.x, o.y, o.z], np.float32),
        translation=np.array([p.x, p.y, p.z], np.float32),
        landmarks=lm.reshape(-1, 3),
        expression=ex.reshape(-1, 3),
        mouth_open=float(msg.mouth_open),
        blendshape_names=list(msg.blendshape_names),
        blendshapes=_np(msg.blendshapes, np.float32),
        eyelid_ratios=lid,
    )
    gaze = _np(msg.gaze, np.float32)
    if gaze.size not in (0, 4):
        raise ValueError(f"gaze must hold 4 values (yaw, pitch of the right then the left eye) or none, got {gaze.size}")
    c.gaze = gaze.reshape(-1, 2)
    c.validate()
    check_message_points(c)
    return c


# ---------------------------------------------------------------------------------------------------
# Status and images

def status_msg(code: int, message: str, operator_id: str = "", warnings=(), num_gaussians: int = 0,
               duration_s: float = 0.0, header: Header | None = None, photo_stamp=None) -> AvatarStatus:
    """An AvatarStatus; photo_stamp (builtin_interfaces/Time) is the header.stamp of the photo it is about
    (None: zero, a photo file or the cache)."""
    s = AvatarStatus()
    s.header = header or Header()
    if photo_stamp is not None:
        s.photo_stamp = photo_stamp
    s.code = int(code)
    s.ok = code == AvatarStatus.OK
    s.operator_id = operator_id
    s.message = message
    s.warnings = [str(w) for w in warnings]
    s.num_gaussians = int(num_gaussians)
    s.duration_s = float(duration_s)
    return s


def rgb_to_image_msg(rgb: np.ndarray, header: Header) -> Image:
    """[H, W, 3] uint8 -> rgb8 Image, with one bytes copy (no per-element conversion)."""
    img = Image()
    img.header = header
    img.height, img.width = int(rgb.shape[0]), int(rgb.shape[1])
    img.encoding = "rgb8"
    img.is_bigendian = 0
    img.step = img.width * 3
    img.data = np.ascontiguousarray(rgb, np.uint8).tobytes()
    return img


# sensor_msgs/CompressedImage.format as compressed_image_transport writes it for an rgb8 source
JPEG_FORMAT = "rgb8; jpeg compressed bgr8"


def rgb_to_compressed_msg(rgb: np.ndarray, header: Header, quality: int) -> CompressedImage:
    """[H, W, 3] uint8 RGB -> CompressedImage (JPEG at `quality` 1..100), as image_transport's
    `compressed` plugin publishes it (so rqt_image_view, Foxglove and republish decode it)."""
    msg = CompressedImage()
    msg.header = header
    msg.format = JPEG_FORMAT
    msg.data = encode_jpeg(rgb, quality)
    return msg


def render_camera_info_msg(K: np.ndarray, width: int, height: int, header: Header, mirror: bool = False) -> CameraInfo:
    """The sensor_msgs/CameraInfo of an image core.render drew with intrinsics K ([3, 3]) at width x height
    (core/camera_info.camera_info_of_render): no distortion (plumb_bob, D all zero), R identity, P = [K | 0]."""
    k, p = camera_info_of_render(K, width, height, mirror)
    return CameraInfo(header=header, width=int(width), height=int(height), distortion_model="plumb_bob",
                      d=[0.0] * 5, k=k, r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], p=p)
