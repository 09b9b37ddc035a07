"""reconstruction_node in its own process over DDS: the start-up photo, raw and compressed photos from
another process, late joiners get the latched avatar and status, refused photos keep the old avatar,
the newest photo wins, parameters are validated."""

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared
from rosgraph import wait_until

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def node_proc(tmp_path_factory):
    from rosgraph import Proc, executable

    home = tmp_path_factory.mktemp("home")  # `-p photo_path:=~/...`: the node expands the `~` no shell did
    shutil.copy(shared("portraits", "trump_official.png"), home)
    log = tmp_path_factory.mktemp("recon") / "reconstruction_node.log"
    proc = Proc(executable("reconstruction_node") + ["--ros-args", "-p", "photo_path:=~/trump_official.png",
                                                     "-p", "max_pixels:=4000000"], log,
                env={"HOME": str(home)})  # ROS_HOME stays the module's (conftest)
    proc.home = home
    yield proc
    rc = proc.stop()
    assert rc in (0, -2, 130), f"reconstruction_node exited with {rc}:\n{proc.output()}"


def _latched(depth=1):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope="module")
def peer(rclpy_context, node_proc):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph import spin_until
    from sensor_msgs.msg import CompressedImage, Image

    from gaussian_head_ros.msg import AvatarStatus

    node = rclpy_context.create_node("reconstruction_test_peer")
    statuses = []  # every status while we listen (volatile, deep queue)
    node.create_subscription(AvatarStatus, "avatar/status", statuses.append, QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    photo_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    raw = node.create_publisher(Image, "operator/photo", photo_qos)
    comp = node.create_publisher(CompressedImage, "operator/photo/compressed", photo_qos)
    ok = spin_until(node, lambda: raw.get_subscription_count() and comp.get_subscription_count(), 60)
    assert ok, f"reconstruction_node did not subscribe:\n{node_proc.output()}"
    yield dict(node=node, statuses=statuses, raw=raw, comp=comp, proc=node_proc)
    node.destroy_node()


def _late_join(rclpy_context, name, timeout=90, namespace=""):
    """A fresh node subscribing to the latched topics: what a late joiner gets (avatar msg, status msg)."""
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus, GaussianAvatar

    node = rclpy_context.create_node(name, namespace=namespace)
    av, st = [], []
    node.create_subscription(GaussianAvatar, "avatar", av.append, _latched())
    node.create_subscription(AvatarStatus, "avatar/status", st.append, _latched())
    try:
        spin_until(node, lambda: av and st, timeout)
        return (av[-1] if av else None), (st[-1] if st else None)
    finally:
        node.destroy_node()


def _image_msg(rgb, frame_id, encoding="rgb8"):
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.frame_id = frame_id
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = encoding
    data = rgb if encoding not in ("bgr8", "8UC3") else rgb[..., ::-1]  # 8UC3: taken as BGR (cv_bridge)
    if encoding == "mono8":
        data = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    data = np.ascontiguousarray(data)
    msg.step = msg.width * (1 if encoding == "mono8" else 3)
    msg.data = data.tobytes()
    return msg


def _compressed_msg(data: bytes, frame_id):
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    msg.header.frame_id = frame_id
    msg.format = "jpeg"
    msg.data = data
    return msg


def _wait_status(peer, frame_id, timeout=90, skip_busy=True):
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus

    def find():
        for s in peer["statuses"]:
            if s.header.frame_id == frame_id and not (skip_busy and s.code == AvatarStatus.BUSY):
                return s
        return None

    spin_until(peer["node"], lambda: find() is not None, timeout)
    s = find()
    assert s is not None, f"no status for {frame_id}:\n{peer['proc'].output()}"
    return s


def _photo(name, max_side=800):
    from gaussian_head_ros.core.imageio import read_image

    img = read_image(str(shared("portraits", name)))
    s = max_side / max(img.shape[:2])
    return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img


def test_startup_photo_reaches_a_late_joiner(rclpy_context, peer):
    from gaussian_head_ros.msg import AvatarStatus
    from gaussian_head_ros.nodes.conversions import msg_to_avatar

    av, st = _late_join(rclpy_context, "late_joiner_1", timeout=120)
    assert av is not None and st is not None, peer["proc"].output()
    assert st.code == AvatarStatus.OK and st.ok and st.operator_id == "trump_official" and st.num_gaussians > 10_000
    # the photo_path photo's status carries the frame_id photo_node sends the file under (it was empty)
    assert st.header.frame_id == "trump_official", st.header
    avatar = msg_to_avatar(av)
    avatar.validate(max_gaussians=60_000)
    assert avatar.operator_id == "trump_official" and av.header.frame_id == "head"
    assert len(bytes(av.gaussians.data)) <= 8_000_000


def test_a_late_joiner_gets_the_avatar_as_a_coloured_cloud(rclpy_context, peer):
    """avatar/cloud (latched): the avatar as the x y z rgb PointCloud2 RViz's PointCloud2 display shows, in the
    avatar's frame: one point per visible Gaussian at its rest mean, with its base colour packed as RViz reads
    it (float32 bytes = uint32 0x00RRGGBB)."""
    from rosgraph import spin_until
    from sensor_msgs.msg import PointCloud2

    from gaussian_head_ros.core.avatar import sh_dc_to_rgb
    from gaussian_head_ros.msg import GaussianAvatar
    from gaussian_head_ros.nodes.conversions import CLOUD_MIN_OPACITY, msg_to_avatar

    node = rclpy_context.create_node("late_cloud_viewer")
    clouds, avatars = [], []
    node.create_subscription(PointCloud2, "avatar/cloud", clouds.append, _latched())
    node.create_subscription(GaussianAvatar, "avatar", avatars.append, _latched())
    try:
        assert spin_until(node, lambda: clouds and avatars, 120), peer["proc"].output()
    finally:
        node.destroy_node()
    pc, avatar = clouds[-1], msg_to_avatar(avatars[-1])
    assert pc.header.frame_id == "head" and pc.header.stamp == avatars[-1].header.stamp
    assert [(f.name, f.offset, f.datatype) for f in pc.fields] == [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("rgb", 12, 7)]
    table = np.frombuffer(bytes(pc.data), "<f4").reshape(-1, 4)
    keep = 1 / (1 + np.exp(-avatar.logit_opacities)) > CLOUD_MIN_OPACITY
    assert pc.width == len(table) == keep.sum() > 0.9 * avatar.num_gaussians
    np.testing.assert_array_equal(table[:, :3], avatar.means[keep])
    packed = table[:, 3].view("<u4")
    rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], 1).astype(np.float64)
    want = np.clip(sh_dc_to_rgb(avatar.sh[keep, 0]), 0, 1) * 255
    assert np.abs(rgb - want).max() <= 0.5 + 1e-3
    assert (packed >> 24).max() == 0


def test_raw_photo_then_refusal_keeps_the_avatar(rclpy_context, peer):
    from gaussian_head_ros.msg import AvatarStatus
    from gaussian_head_ros.nodes.conversions import msg_to_avatar

    peer["raw"].publish(_image_msg(_photo("obama_official.jpg"), "alice", "8UC3"))  # BGR bytes, order unsaid
    st = _wait_status(peer, "alice")
    assert st.code == AvatarStatus.OK and st.operator_id == "alice" and st.duration_s > 0, st.message
    # the guess is in the photo's status, where its sender looks (it was in the robot's log only; user12, s12)
    assert any("8UC3" in w and "BGR" in w for w in st.warnings), list(st.warnings)
    av, st = _late_join(rclpy_context, "late_joiner_2")
    assert msg_to_avatar(av).operator_id == "alice" and st.operator_id == "alice"

    peer["raw"].publish(_image_msg(np.full((480, 640, 3), 120, np.uint8), "bob"))
    st = _wait_status(peer, "bob")
    assert st.code == AvatarStatus.NO_FACE and not st.ok and "no face" in st.message and st.num_gaussians == 0
    av, st = _late_join(rclpy_context, "late_joiner_3")
    assert msg_to_avatar(av).operator_id == "alice", "the refused photo replaced the avatar"
    assert st.code == AvatarStatus.NO_FACE and st.operator_id == "bob"

    # RGBA bytes sent as bgr8 (step 4 x width): read as a squeezed, scrambled picture, and not a word about it in
    # the status, where a face found in it made an avatar of that picture (user13, s13); now the layout is said
    rgba = np.dstack([np.full((480, 640, 3), 120, np.uint8), np.full((480, 640), 255, np.uint8)])
    msg = _image_msg(rgba[..., :3], "dora_rgba_as_bgr8", "bgr8")
    msg.step, msg.data = 4 * 640, rgba.tobytes()
    peer["raw"].publish(msg)
    st = _wait_status(peer, "dora_rgba_as_bgr8")
    assert st.code == AvatarStatus.NO_FACE and any("one more channel" in w and "bgra8" in w for w in st.warnings), \
        (st.message, list(st.warnings))


def test_a_raw_photo_without_frame_id_is_named_in_the_log_as_its_status_names_it(peer):
    """A raw photo with an empty header.frame_id (`ros2 topic pub` without a header): its operator id is 'operator'
    and its statuses' frame_id ''. The log said "photo '' received" then "photo 'operator' from operator/photo
    refused", with no word that 'operator' is the name the node gave it (user40). Now every line names it
    'operator' (no header.frame_id). A faceless photo: refused in a second, the avatar stays."""
    from gaussian_head_ros.msg import AvatarStatus

    start = len(peer["proc"].output())
    peer["raw"].publish(_image_msg(np.full((240, 320, 3), 120, np.uint8), ""))
    st = _wait_status(peer, "")
    assert st.code == AvatarStatus.NO_FACE and st.operator_id == "operator", st.message
    said = lambda: peer["proc"].output()[start:]  # noqa: E731
    assert wait_until(lambda: " refused: " in said(), 30), said()[-3000:]
    assert "photo 'operator' (no header.frame_id) received on /operator/photo" in said(), said()[-3000:]
    assert "photo 'operator' (no header.frame_id) from operator/photo refused" in said(), said()[-3000:]
    assert "photo '' " not in said(), said()[-3000:]


def test_compressed_photo_and_bad_images(rclpy_context, peer):
    from gaussian_head_ros.msg import AvatarStatus
    from gaussian_head_ros.nodes.conversions import msg_to_avatar

    jpeg = cv2.imencode(".jpg", _photo("lp_d8_man_glasses.jpg")[..., ::-1])[1].tobytes()
    peer["comp"].publish(_compressed_msg(jpeg, "carol"))
    st = _wait_status(peer, "carol")
    assert st.code == AvatarStatus.OK and st.operator_id == "carol", st.message
    av, _ = _late_join(rclpy_context, "late_joiner_4")
    assert msg_to_avatar(av).operator_id == "carol"

    bad = {
        "truncated_jpeg": _compressed_msg(jpeg[: len(jpeg) // 3], "truncated_jpeg"),
        "garbage": _compressed_msg(b"definitely not an image", "garbage"),
        "empty": _compressed_msg(b"", "empty"),
    }
    short = _image_msg(np.zeros((100, 100, 3), np.uint8), "short_raw")
    short.data = bytes(100)
    weird = _image_msg(np.zeros((100, 100, 3), np.uint8), "weird_encoding")
    weird.encoding = "32FC1"
    huge = _image_msg(np.zeros((4, 4, 3), np.uint8), "huge")
    huge.width = huge.height = 8000  # claims 64M pixels; the data does not even match
    for name, msg in bad.items():
        peer["comp"].publish(msg)
        st = _wait_status(peer, name, timeout=30)
        assert st.code == AvatarStatus.BAD_IMAGE and st.message, (name, st.message)
    for msg, word in ((short, "bytes"), (weird, "encoding"), (huge, "limit")):
        peer["raw"].publish(msg)
        st = _wait_status(peer, msg.header.frame_id, timeout=30)
        assert st.code == AvatarStatus.BAD_IMAGE and word in st.message, st.message
    # A mono8 photo is converted, not refused.
    peer["raw"].publish(_image_msg(_photo("obama_official.jpg"), "mono_dave", "mono8"))
    st = _wait_status(peer, "mono_dave")
    assert st.code == AvatarStatus.OK, st.message
    av, _ = _late_join(rclpy_context, "late_joiner_5")
    assert msg_to_avatar(av).operator_id == "mono_dave"
    assert peer["proc"].alive()


def test_a_transparent_raw_photo_is_said_as_the_same_png_is(peer):
    """A cut-out portrait (alpha 0 around the head) sent raw as rgba8 and bgra8 on operator/photo: composited onto grey
    without a word in its status, while the same pixels as a PNG on operator/photo/compressed were said transparent
    (user34's d757832; ros35). Now imageio.decode_raw_with_notes gives transparency_note's sentence as
    decode_with_format does: the same warning for each, in the photo's status."""
    import io

    from PIL import Image

    from gaussian_head_ros.msg import AvatarStatus

    rgb = _photo("obama_official.jpg")
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    inside = np.hypot((xx - w / 2) / (0.4 * w), (yy - h * 0.45) / (0.55 * h)) < 1  # head and shoulders
    rgba = np.dstack([np.where(inside[..., None], rgb, 0), np.where(inside, 255, 0)]).astype(np.uint8)
    said = f"the photo is transparent in {round(100 * (~inside).mean())} % of its pixels (0 % partly): composited onto"
    png = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(png, "PNG")
    peer["comp"].publish(_compressed_msg(png.getvalue(), "cutout_png"))
    warned = {"cutout_png": [w for w in _wait_status(peer, "cutout_png").warnings if said in w]}
    for enc, pixels in (("rgba8", rgba), ("bgra8", rgba[..., [2, 1, 0, 3]])):
        msg = _image_msg(rgb, f"cutout_{enc}")
        msg.encoding, msg.step, msg.data = enc, 4 * w, np.ascontiguousarray(pixels).tobytes()
        peer["raw"].publish(msg)
        st = _wait_status(peer, f"cutout_{enc}")
        assert st.code == AvatarStatus.OK, st.message
        warned[enc] = [w for w in st.warnings if said in w]
    assert warned["cutout_png"] and warned["rgba8"] == warned["bgra8"] == warned["cutout_png"], warned


def test_newest_photo_wins(peer):
    """Three photos, the last two during the first's reconstruction: the newest is reconstructed, the one it replaced
    while waiting is dropped. Every photo ends with one final status (any code but BUSY), matched to it by frame_id
    and photo_stamp: the replaced one got BUSY and then nothing (user12, s12; a sender waiting on its verdict waited
    forever), now SUPERSEDED. Sent compressed: the node reads those 32 deep, so all three reach it whatever the load
    (raw photos are read 1 deep: two of them within one busy moment of the node's executor and the older never arrives,
    which the next one's status then says; test_a_burst_of_photos_...)."""
    from builtin_interfaces.msg import Time as TimeMsg
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph import spin_until
    from sensor_msgs.msg import CompressedImage

    from gaussian_head_ros.msg import AvatarStatus

    a, b, c = _photo("obama_speech.jpg"), np.full((300, 300, 3), 90, np.uint8), _photo("astronaut_eileen_collins.png")
    # Run alone (user37, s37) this failed 3 runs in 3: the photos came while the node started (no reconstruction ran:
    # no BUSY), and the peer's depth-1 writer replaced 'first' before the node's reader took it (no status; a
    # writer's first sample counts no gap). Now the node is idle, its start-up photo done, and the three go through
    # a writer that keeps all three until the node has them.
    assert spin_until(peer["node"], lambda: "avatar for 'trump_official' ready" in peer["proc"].output(), 120), \
        peer["proc"].output()[-3000:]
    pub = peer["node"].create_publisher(CompressedImage, "operator/photo/compressed",
                                        QoSProfile(depth=3, reliability=ReliabilityPolicy.RELIABLE))
    assert spin_until(peer["node"], lambda: pub.get_subscription_count() > 0, 60)
    peer["statuses"].clear()
    msgs = []
    for i, (img, fid) in enumerate(((a, "first"), (b, "second"), (c, "third"))):
        msg = _compressed_msg(cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes(), fid)
        msg.header.stamp = TimeMsg(sec=1000 + i, nanosec=7)
        msgs.append(msg)
    # 'second' 0.5 s after 'first', time for the worker to take it (0.05 s after, at load 5-9 it had not: 'first' was the
    # one replaced, and the grey square was refused, no face; s52); 'third' once 'second' is said to wait (BUSY: 'first'
    # is being reconstructed then, which takes seconds).
    pub.publish(msgs[0])
    spin_until(peer["node"], lambda: False, 0.5)
    pub.publish(msgs[1])
    waits = _wait_status(peer, "second", skip_busy=False)
    assert waits.code == AvatarStatus.BUSY, waits.message
    pub.publish(msgs[2])
    last = _wait_status(peer, "third")
    assert last.code == AvatarStatus.OK and (last.photo_stamp.sec, last.photo_stamp.nanosec) == (1002, 7)
    spin_until(peer["node"], lambda: False, 1.0)
    final = {}
    for s in peer["statuses"]:
        if s.code != AvatarStatus.BUSY and s.header.frame_id in ("first", "second", "third"):  # not a late start-up one
            assert s.header.frame_id not in final, f"two final statuses for {s.header.frame_id}"
            final[s.header.frame_id] = s
    assert set(final) == {"first", "second", "third"}, {k: v.message for k, v in final.items()}
    for i, fid in enumerate(("first", "second", "third")):
        assert (final[fid].photo_stamp.sec, final[fid].photo_stamp.nanosec) == (1000 + i, 7), final[fid]
    assert final["second"].code == AvatarStatus.SUPERSEDED and "newer photo" in final["second"].message
    assert "'third'" in final["second"].message and not final["second"].ok, final["second"].message
    busy = [s.header.frame_id for s in peer["statuses"] if s.code == AvatarStatus.BUSY]
    assert busy, "photos arriving during a reconstruction get a BUSY status"
    peer["node"].destroy_publisher(pub)


def test_a_photo_that_cannot_be_decoded_is_refused_at_once_and_leaves_the_waiting_photo(peer):
    """A good photo, then another good one while the first is reconstructed, then photos that cannot be decoded (empty
    compressed bytes, a JPEG cut short, a raw Image of no pixels, one whose data is shorter than its size): each of
    those is refused BAD_IMAGE as it arrives, before the running reconstruction ends, and the good photo waiting stays
    and becomes the avatar (the node may still be busy with an earlier test's photo: 'running' then waits, and
    'waiting' replaces it, as the newest good photo). Before (user40), the empty one replaced the waiting photo
    (SUPERSEDED, 'a newer photo ... came while this one waited'), its BAD_IMAGE came only after the running
    reconstruction, and the robot kept the first face."""
    from builtin_interfaces.msg import Time as TimeMsg
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph import spin_until
    from sensor_msgs.msg import CompressedImage, Image

    from gaussian_head_ros.msg import AvatarStatus

    deep = QoSProfile(depth=8, reliability=ReliabilityPolicy.RELIABLE)  # every photo reaches the node
    comp = peer["node"].create_publisher(CompressedImage, "operator/photo/compressed", deep)
    raw = peer["node"].create_publisher(Image, "operator/photo", deep)
    assert spin_until(peer["node"], lambda: comp.get_subscription_count() and raw.get_subscription_count(), 60)
    peer["statuses"].clear()
    jpeg = {name: cv2.imencode(".jpg", _photo(name)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
            for name in ("obama_speech.jpg", "lp_d9_woman_turned.jpg")}
    empty_raw = Image()
    empty_raw.header.frame_id = "empty_raw"
    short_raw = _image_msg(np.zeros((64, 64, 3), np.uint8), "short_raw")
    short_raw.data = bytes(100)
    sends = [(comp, _compressed_msg(jpeg["obama_speech.jpg"], "running")),
             (comp, _compressed_msg(jpeg["lp_d9_woman_turned.jpg"], "waiting")),
             (comp, _compressed_msg(b"", "empty_jpeg")),
             (comp, _compressed_msg(jpeg["obama_speech.jpg"][:4000], "cut_jpeg")),
             (raw, empty_raw), (raw, short_raw)]
    for i, (pub, msg) in enumerate(sends):
        msg.header.stamp = TimeMsg(sec=2000 + i)
        pub.publish(msg)
        time.sleep(0.05)
    _wait_status(peer, "waiting", timeout=180, skip_busy=True)
    # every refusal's status in (a fixed 1 s after 'waiting' missed 'empty_raw' at load 8: CI, session 63), then 1 s
    bad_ids = {"empty_jpeg", "cut_jpeg", "empty_raw", "short_raw"}
    said_ids = lambda: {s.header.frame_id for s in peer["statuses"] if s.code != AvatarStatus.BUSY}  # noqa: E731
    spin_until(peer["node"], lambda: bad_ids <= said_ids(), 30)
    spin_until(peer["node"], lambda: False, 1.0)
    final = {}  # frame_id -> (index among the statuses, status)
    for i, s in enumerate(peer["statuses"]):
        if s.code != AvatarStatus.BUSY and s.header.frame_id in {m.header.frame_id for _, m in sends}:
            assert s.header.frame_id not in final, f"two final statuses for {s.header.frame_id}"
            final[s.header.frame_id] = (i, s)
    said = {k: (s.code, s.message) for k, (_, s) in final.items()}
    assert final["waiting"][1].code == AvatarStatus.OK, said  # 'running' too, or SUPERSEDED when the node was busy
    for bad in ("empty_jpeg", "cut_jpeg", "empty_raw", "short_raw"):  # with a photo of an earlier test
        assert final[bad][1].code == AvatarStatus.BAD_IMAGE, said
        assert final[bad][0] < final["waiting"][0], f"{bad} was refused only after a reconstruction: {said}"
    assert not [s for s in peer["statuses"] if s.code == AvatarStatus.BUSY and s.header.frame_id in
                ("empty_jpeg", "cut_jpeg", "empty_raw", "short_raw")], "a photo refused at once is not said BUSY"
    assert "empty compressed image" in final["empty_jpeg"][1].message and "cut short" in final["cut_jpeg"][1].message
    assert "empty image (0x0)" in final["empty_raw"][1].message and "bytes" in final["short_raw"][1].message
    peer["node"].destroy_publisher(comp)
    peer["node"].destroy_publisher(raw)


def test_photo_samples_are_taken_once_in_order_and_gaps_counted():
    """PublisherSequences, from rclpy's message info: a sample that reaches both readers of a topic is taken once, one
    older than a sample taken from its writer is not taken, a jump in a writer's sequence numbers counts the photos in
    between as never reached; a writer's first sample counts none; no sequence number (0): source timestamp + writer."""
    from gaussian_head_ros.nodes.reconstruction_node import PublisherSequences

    def info(writer, seq, stamp=0):
        return {"publisher_gid": {"implementation_identifier": "rmw", "data": bytes([writer]) * 16},
                "publication_sequence_number": seq, "source_timestamp": stamp}

    seq = PublisherSequences(max_writers=2)
    assert [seq.take(info(1, 7)), seq.take(info(1, 7)), seq.take(info(1, 8)), seq.take(info(1, 12))] == [0, None, 0, 3]
    assert seq.take(info(1, 11)) is None  # older than one taken (the other reader's copy, late)
    assert [seq.take(info(2, 1)), seq.take(info(2, 3)), seq.take(info(1, 13))] == [0, 1, 0]
    seq.take(info(3, 5))  # a third writer: the least recent (2) is forgotten
    assert seq.take(info(2, 9)) == 0
    assert [seq.take(info(4, 0, 5)), seq.take(info(4, 0, 5)), seq.take(info(4, 0, 6))] == [0, None, 0]
    no_gid = [{"publication_sequence_number": n, "source_timestamp": n} for n in (9, 3, 3)]  # two writers, no gid
    assert [seq.take(i) for i in no_gid] == [0, 0, None]


def _lost_before(status) -> int:
    """How many photos of its sender before it a status says never reached the node (its 'never reached' note)."""
    import re

    return sum(int(m.group(1)) for w in status.warnings
               for m in [re.match(r"(\d+) photos? that this photo's sender published .* never reached the node", w)] if m)


def test_a_burst_of_photos_each_gets_its_final_status_or_is_counted_by_the_next(peer):
    """20 compressed photos from one sender back to back while a reconstruction runs. The photo readers keep the newest
    samples while the node is busy, and a photo DDS replaced before any callback took it got no status at all: its
    sender waited forever (user14, s14; depth-1 readers). What the node guarantees now, whatever DDS coalesces: each
    photo of a sender gets exactly one final status, or none and is counted in a note ('N photos ... never reached the
    node') of the next photo the node took from that sender; and a photo's final status comes before the result (OK
    or a refusal) of any photo its sender published after it, so a sender that sees such a result with no final status
    for its photo knows it never arrived."""
    from builtin_interfaces.msg import Time as TimeMsg
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus

    grey = cv2.imencode(".jpg", np.full((200, 200, 3), 120, np.uint8))[1].tobytes()  # no face: refused at once
    n = 20
    peer["statuses"].clear()
    peer["comp"].publish(_compressed_msg(grey, "burst_known"))  # the node knows this sender from here on
    _wait_status(peer, "burst_known")
    peer["raw"].publish(_image_msg(_photo("obama_speech.jpg"), "burst_start"))  # a reconstruction of a few seconds
    spin_until(peer["node"], lambda: False, 0.5)
    for i in range(n):
        msg = _compressed_msg(grey, f"burst_{i:02d}")
        msg.header.stamp = TimeMsg(sec=2000 + i)
        peer["comp"].publish(msg)
    last = _wait_status(peer, f"burst_{n - 1:02d}")
    assert last.code == AvatarStatus.NO_FACE, last.message  # the newest photo always arrives, and gets its result
    spin_until(peer["node"], lambda: False, 1.0)
    got = [s for s in peer["statuses"] if s.header.frame_id[-2:].isdigit() and s.header.frame_id.startswith("burst_")]
    for s in got:
        assert s.photo_stamp.sec == 2000 + int(s.header.frame_id[-2:]), s
    final = {}
    for k, s in enumerate(got):
        if s.code != AvatarStatus.BUSY:
            assert s.header.frame_id not in final, f"two final statuses for {s.header.frame_id}"
            final[s.header.frame_id] = k
    seen = sorted({int(s.header.frame_id[-2:]) for s in got})
    assert {f"burst_{i:02d}" for i in seen} == set(final), "a photo with a BUSY status and no final one"
    # the photos with no status are those the next photo taken from the sender counts as never reached, and only those
    trace = [(s.header.frame_id, s.code, list(s.warnings)) for s in got]
    for before, i in zip([-1, *seen], seen):
        said = {_lost_before(s) for s in got if s.header.frame_id == f"burst_{i:02d}"}  # in each of its statuses
        assert said == {i - before - 1}, (i, before, said, trace)
    assert n - len(seen) == sum(_lost_before(s) for s in got if s.code != AvatarStatus.BUSY), trace
    results = [k for k, s in enumerate(got) if s.code not in (AvatarStatus.BUSY, AvatarStatus.SUPERSEDED)]
    for fid, k in final.items():  # the sender's rule: a photo's final status comes before any later photo's result
        later = [r for r in results if int(got[r].header.frame_id[-2:]) > int(fid[-2:])]
        assert all(k < r for r in later), (fid, [(s.header.frame_id, s.code) for s in got])


def test_a_photo_among_another_senders_burst_gets_its_final_status(peer):
    """One photo from a publisher made for it (the README's snippet: latched, one photo) sent while a reconstruction
    runs, in the middle of another sender's burst of 12. The node read compressed photos keep-last 4: the burst pushed the lone
    photo out of the reader's history before any callback took it, and its sender never got a status; the node never
    learnt of it, so no note counted it either (user15, s15: left open; user16, s16: seen 3 of 3 on the old node). What
    a sender can rely on now: a photo DDS delivered to the node is taken, and gets its final status (SUPERSEDED here,
    or a result), whatever other senders send."""
    from builtin_interfaces.msg import Time as TimeMsg
    from rosgraph import spin_until
    from sensor_msgs.msg import CompressedImage

    from gaussian_head_ros.msg import AvatarStatus

    grey = cv2.imencode(".jpg", np.full((200, 200, 3), 120, np.uint8))[1].tobytes()  # no face: refused at once
    node = peer["node"]
    lone = node.create_publisher(CompressedImage, "operator/photo/compressed", _latched())
    crowd = node.create_publisher(CompressedImage, "operator/photo/compressed", _latched())  # photo_node's QoS
    try:  # latched writers reach both of the node's readers (a volatile one only the volatile reader)
        assert spin_until(node, lambda: lone.get_subscription_count() >= 2 and crowd.get_subscription_count() >= 2, 30)
        peer["statuses"].clear()
        peer["raw"].publish(_image_msg(_photo("obama_speech.jpg"), "crowd_start"))  # a reconstruction of a few seconds
        spin_until(node, lambda: False, 0.5)
        for i in range(12):  # the lone photo in the middle of the burst
            msg = _compressed_msg(grey, f"crowd_{i:02d}")
            msg.header.stamp = TimeMsg(sec=3100 + i)
            crowd.publish(msg)
            if i == 3:
                msg = _compressed_msg(grey, "lone")
                msg.header.stamp = TimeMsg(sec=3000)
                lone.publish(msg)
        _wait_status(peer, "crowd_11")
        spin_until(node, lambda: any(s.header.frame_id == "lone" and s.code != AvatarStatus.BUSY
                                     for s in peer["statuses"]), 10)
        got = [(s.header.frame_id, s.code) for s in peer["statuses"] if s.header.frame_id == "lone"]
        assert any(code != AvatarStatus.BUSY for _, code in got), \
            ("the lone photo got no final status", [(s.header.frame_id, s.code) for s in peer["statuses"]])
        assert sum(code != AvatarStatus.BUSY for _, code in got) == 1, got
        # the log names each photo, not only its topic (several senders share one)
        out = peer["proc"].output()
        assert "photo 'crowd_11' from operator/photo/compressed refused: no face" in out, out[-3000:]
        assert "replaced the one waiting ('lone' from operator/photo/compressed)" in out, out[-3000:]
    finally:
        node.destroy_publisher(lone)
        node.destroy_publisher(crowd)


def test_the_same_photo_sent_again_is_not_reconstructed_again(rclpy_context, peer):
    """photo_node restarted with the same photo (the operator's launch restarted) publishes it again from a new writer:
    the robot reconstructed it again (17 s of its CPU at load 19, the face display 14.8 -> 9.1 Hz meanwhile, then a
    cross-fade to the same face; user16, s16, two network namespaces). Now the photo the published avatar was made
    from gets OK at once, saying so, and the avatar stays the same message; the same bytes under another frame_id
    (another operator id) are reconstructed."""
    from builtin_interfaces.msg import Time as TimeMsg
    from rosgraph import spin_until
    from sensor_msgs.msg import CompressedImage

    from gaussian_head_ros.msg import AvatarStatus

    jpeg = cv2.imencode(".jpg", _photo("obama_official.jpg", 600)[..., ::-1])[1].tobytes()
    node = peer["node"]

    def send(frame_id, sec):  # a latched publisher of its own, made for this photo, as a restarted photo_node's
        pub = node.create_publisher(CompressedImage, "operator/photo/compressed", _latched())
        try:
            assert spin_until(node, lambda: pub.get_subscription_count() >= 2, 30)
            msg = _compressed_msg(jpeg, frame_id)
            msg.header.stamp = TimeMsg(sec=sec)
            peer["statuses"].clear()
            pub.publish(msg)
            spin_until(node, lambda: any(s.header.frame_id == frame_id and s.photo_stamp.sec == sec
                                         and s.code != AvatarStatus.BUSY for s in peer["statuses"]), 90)
            return next(s for s in peer["statuses"] if s.header.frame_id == frame_id and s.photo_stamp.sec == sec
                        and s.code != AvatarStatus.BUSY)
        finally:
            node.destroy_publisher(pub)

    first = send("same_op", 4000)
    assert first.code == AvatarStatus.OK and "ready" in first.message, first.message
    av1, _ = _late_join(rclpy_context, "late_joiner_same_1")
    again = send("same_op", 4001)
    assert again.code == AvatarStatus.OK and "unchanged" in again.message, again.message
    assert again.num_gaussians == first.num_gaussians and again.operator_id == "same_op", again
    av2, _ = _late_join(rclpy_context, "late_joiner_same_2")
    assert (av2.header.stamp.sec, av2.header.stamp.nanosec) == (av1.header.stamp.sec, av1.header.stamp.nanosec)
    other = send("other_op", 4002)
    assert other.code == AvatarStatus.OK and "ready" in other.message, other.message


def test_a_photo_path_file_then_its_bytes_from_photo_node_keep_the_avatar(rclpy_context, peer, tmp_path):
    """The robot's photo_path file, then the same file sent by photo_node (user58, s58: lp_d8 set as photo_path, then
    sent from the operator's host): the node reconstructed it again (19.9 s of the robot's CPU in that soak; 3.31 s
    here at load 4, node59), the same Gaussians under a new stamp. A photo is the same photo by its decoded pixels
    (core.reconstruct.photo_key), however it comes: a file's bytes, a CompressedImage of them, a raw Image of those
    pixels. Now photo_node's photo and the raw Image are answered OK at once, saying the avatar is kept and why,
    and a late joiner still gets the avatar, the same message; a reconstructor setting changed makes it again."""
    from rosgraph import Proc, executable, spin_until

    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.msg import AvatarStatus

    node, statuses = peer["node"], peer["statuses"]
    photo = peer["proc"].home / "u59_same.jpg"
    shutil.copy(shared("portraits", "lp_s9_monalisa.jpg"), photo)

    def final(after: int):
        def find():
            return next((s for s in statuses[after:] if s.header.frame_id == "u59_same" and s.code != AvatarStatus.BUSY),
                        None)
        assert spin_until(node, lambda: find() is not None, 180), peer["proc"].output()[-4000:]
        return find()

    statuses.clear()
    assert _set_param(node, "photo_path", str(photo)).successful
    first = final(0)
    assert first.code == AvatarStatus.OK and "ready:" in first.message, first.message
    av1, _ = _late_join(rclpy_context, "late_joiner_u59_1")
    sender = Proc(executable("photo_node") + ["--ros-args", "-p", f"photo:={photo}"], tmp_path / "photo_node.log")
    try:
        n = len(statuses)
        kept = final(n)
        assert kept.code == AvatarStatus.OK and "unchanged" in kept.message and "not reconstructed again" in \
            kept.message and f"photo_path {photo}" in kept.message, kept.message
        assert kept.num_gaussians == first.num_gaussians and kept.operator_id == "u59_same"
        assert spin_until(node, lambda: "the robot accepted u59_same.jpg" in sender.output(), 30), sender.output()
    finally:
        sender.stop()
    av2, _ = _late_join(rclpy_context, "late_joiner_u59_2")
    assert av2 is not None and av2.header.stamp == av1.header.stamp, "the avatar was made again"
    n = len(statuses)
    peer["raw"].publish(_image_msg(read_image(str(photo)), "u59_same"))  # the same pixels as a raw Image
    raw = final(n)
    assert raw.code == AvatarStatus.OK and "unchanged" in raw.message, raw.message
    n = len(statuses)
    assert _set_param(node, "min_face_px", 40.0).successful  # a reconstructor setting: another avatar may come of it
    try:
        assert _set_param(node, "photo_path", str(photo)).successful
        again = final(n)
        assert again.code == AvatarStatus.OK and "ready:" in again.message, again.message
        av3, _ = _late_join(rclpy_context, "late_joiner_u59_3")
        assert av3 is not None and av3.header.stamp != av1.header.stamp
    finally:
        _set_param(node, "min_face_px", _default("min_face_px"))


def _default(name: str):
    """The reconstruction node's default value of the parameter `name`."""
    from gaussian_head_ros.nodes.reconstruction_node import PARAMS

    return PARAMS[name].default


def test_parameters_are_validated(rclpy_context, peer):
    def set_param(name, value):
        return _set_param(peer["node"], name, value)

    r = set_param("backend", "nope")
    assert not r.successful and "backend" in r.reason
    r = set_param("backend", "rar")
    assert not r.successful and "checkpoint" in r.reason
    r = set_param("min_face_px", 1.0)
    assert not r.successful and "min_face_px" in r.reason
    # an empty frame_id (or tf2's forbidden leading '/') was taken (user18, s18); a space in or around the name too (s19)
    for frame in ("", "/head", " head", "head ", "my head", "head\t"):
        r = set_param("frame_id", frame)
        assert not r.successful and "frame_id must name" in r.reason, (frame, r.reason)
    # a cache_path naming a directory was taken, said only at the next write, after a reconstruction (user18, s18)
    folder = Path(tempfile.mkdtemp())
    r = set_param("cache_path", str(folder))
    assert not r.successful and "is a directory: name a file in it" in r.reason, r.reason
    (folder / "a_file").write_bytes(b"")
    r = set_param("cache_path", str(folder / "a_file" / "avatar.cache"))
    assert not r.successful and "which is a file, not a directory" in r.reason, r.reason
    r = set_param("cache_path", str(folder / "avatar.cache"))
    assert r.successful, r.reason
    assert set_param("cache_path", "").successful  # back to the default for the next tests
    r = set_param("preset", "fast")
    assert r.successful, r.reason


def _set_param(node, name, value, target="/reconstruction_node"):
    """Set the parameter `name` of the node `target` (as `ros2 param set` does); its SetParametersResult."""
    from rosgraph import set_parameter

    return set_parameter(node, target, name, value, timeout=20)


def test_a_cache_path_set_during_a_reconstruction_is_written_once(rclpy_context, peer, tmp_path):
    """cache_path set while a photo is reconstructed names a file the worker must fill with the avatar shown
    (user39), and the avatar the reconstruction then publishes is written to it too: the same avatar was written
    twice, and a file the disk refuses said "avatar cache: cannot write" twice 50 ms apart (user40). A folder
    made a file after the parameter was checked stands for the disk's refusal."""
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus

    av, _ = _late_join(rclpy_context, "late_joiner_u41")  # an avatar is shown (a node just started has none)
    assert av is not None, peer["proc"].output()[-3000:]
    start, blocked = len(peer["proc"].output()), tmp_path / "a_file"
    said = lambda: peer["proc"].output()[start:]  # noqa: E731
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(_photo("obama_official.jpg"), cv2.COLOR_RGB2BGR))
    peer["comp"].publish(_compressed_msg(jpeg.tobytes(), "u41_cache"))
    assert spin_until(peer["node"], lambda: "photo 'u41_cache' received" in said(), 30), said()[-3000:]
    try:
        assert _set_param(peer["node"], "cache_path", str(blocked / "avatar.cache")).successful
        blocked.write_bytes(b"")
        assert not [s for s in peer["statuses"] if s.header.frame_id == "u41_cache" and s.code != AvatarStatus.BUSY], \
            "the reconstruction ended before cache_path was set: the test tells nothing"
        st = _wait_status(peer, "u41_cache")
        assert st.code == AvatarStatus.OK, st.message
        time.sleep(1.0)  # the worker's loop takes a pending cache write within 0.2 s
        lines = [ln for ln in said().splitlines() if "avatar cache: cannot write" in ln]
        assert len(lines) == 1, "\n".join(lines)
    finally:
        assert _set_param(peer["node"], "cache_path", "").successful


def test_unchanged_means_made_with_the_max_pixels_the_photo_was_decoded_with(peer):
    """A photo decoded under max_pixels A (it arrived then, and waited) and reconstructed after max_pixels was set to
    B was recorded as made under B (the key read the parameters at run time): the same photo sent again under B was
    answered "unchanged", though under B it is decoded whole and makes another avatar (review16, s16). Now the key
    holds the max_pixels each photo was decoded with. The photo must wait behind another one's reconstruction (0.9 s on
    an idle machine, which the 1 Hz /diagnostics state can miss): the pair is sent again, as another photo, until the
    operator's photo got BUSY (review20, s20: a fast machine missed the 'reconstructing' state once)."""
    from builtin_interfaces.msg import Time as TimeMsg
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus

    node, statuses = peer["node"], peer["statuses"]
    face = _photo("obama_official.jpg", 800)  # JPEG decoded at 1/2 under max_pixels A
    small_limit = face.shape[0] * face.shape[1] // 2
    jpegs = [cv2.imencode(".jpg", face[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes() for q in (95, 94, 93, 92)]
    busy_jpeg = cv2.imencode(".jpg", _photo("trump_official.png", 500)[..., ::-1])[1].tobytes()

    def send(data, frame_id, sec):
        msg = _compressed_msg(data, frame_id)
        msg.header.stamp = TimeMsg(sec=sec)
        peer["comp"].publish(msg)

    def status(frame_id, sec, final=True):
        def find():
            return next((st for st in statuses if st.header.frame_id == frame_id and st.photo_stamp.sec == sec
                         and (st.code != AvatarStatus.BUSY) == final), None)
        assert spin_until(node, lambda: find() is not None, 120), f"no status for {frame_id} {sec}:\n{peer['proc'].output()}"
        return find()

    states = []  # the module node's diagnostics 'state' (ready, reconstructing (...), loading ...)

    def on_diag(msg):
        for st in msg.status:
            if st.name.startswith("reconstruction_node:"):
                states.append({kv.key: kv.value for kv in st.values}["state"])

    diag = node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    try:
        assert _set_param(node, "max_pixels", small_limit).successful
        assert spin_until(node, lambda: states and states[-1] == "ready", 120), peer["proc"].output()  # idle
        for attempt, jpeg in enumerate(jpegs):  # another photo each time (the one before may be made under A)
            sec = 7000 + 10 * attempt
            statuses.clear()
            send(busy_jpeg, "mp_busy", sec)  # keeps the worker busy: the next photo waits, decoded under A
            spin_until(node, lambda: states[-1].startswith("reconstructing"), 0.5)  # the tick may miss it
            send(jpeg, "mp_op", sec + 1)
            def first(s=sec + 1):  # the operator's photo's first status: BUSY when it waits
                return next((st for st in statuses if st.header.frame_id == "mp_op" and st.photo_stamp.sec == s), None)
            assert spin_until(node, lambda: first() is not None, 120), peer["proc"].output()
            if first().code == AvatarStatus.BUSY:
                break  # waiting: its decode holds A
            assert status("mp_op", sec + 1) is not None  # done under A, not waiting: again
        else:
            raise AssertionError(f"the operator's photo never waited behind another:\n{peer['proc'].output()}")
        assert _set_param(node, "max_pixels", 4000000).successful  # B, before it runs
        first = status("mp_op", sec + 1)
        assert first.code == AvatarStatus.OK and "ready" in first.message, first.message
        send(jpeg, "mp_op", sec + 2)  # the same message under B
        again = status("mp_op", sec + 2)
        assert again.code == AvatarStatus.OK and "ready" in again.message, again.message  # old: "unchanged"
        send(jpeg, "mp_op", sec + 3)  # and again under B: now made under B
        assert "unchanged" in status("mp_op", sec + 3).message
    finally:
        node.destroy_subscription(diag)
        _set_param(node, "max_pixels", 4000000)  # the module's value


def test_a_checkpoint_reloaded_from_the_same_path_is_another_model(rclpy_context, tmp_path):
    """Training wrote a new checkpoint over the old one and `ros2 param set .../reconstruction_node checkpoint <the
    same path>` reloaded it: the same photo sent again was answered "unchanged" with the old model's avatar (the key
    held the path; review16, s16). Now it is reconstructed with the new weights; the same file reloaded again still
    answers "unchanged". (A tiny untrained rar model: what the weights make does not matter here.)"""
    torch = pytest.importorskip("torch")
    from builtin_interfaces.msg import Time as TimeMsg
    from rosgraph import spin_until
    from sensor_msgs.msg import CompressedImage

    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.model.rar import RARModel, preset_config, save_checkpoint
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo
    from gaussian_head_ros.core.reconstruct.template import template_faces
    from gaussian_head_ros.msg import AvatarStatus

    rgb = _photo("obama_official.jpg", 480)
    with FaceMesh() as fm:
        vertices = frame_photo(rgb, fm, FramingConfig(size=128)).vertices
    ckpt = tmp_path / "model.pt"

    def train(seed):  # "training" writes the checkpoint at the same path
        torch.manual_seed(seed)
        save_checkpoint(ckpt, RARModel(preset_config("tiny", source_size=128), vertices, template_faces()).eval())

    train(0)
    node = rclpy_context.create_node("rar_key_peer", namespace=CACHE_NS)
    statuses = []
    node.create_subscription(AvatarStatus, "avatar/status", statuses.append, _latched(depth=20))
    jpeg = cv2.imencode(".jpg", rgb[..., ::-1])[1].tobytes()
    proc = _start_node(tmp_path, "rar", "backend:=rar", f"checkpoint:={ckpt}", "device:=cpu", "cache_avatar:=false")

    def send(sec):
        pub = node.create_publisher(CompressedImage, "operator/photo/compressed", _latched())
        try:
            assert spin_until(node, lambda: pub.get_subscription_count() >= 2, 60), proc.output()
            msg = _compressed_msg(jpeg, "rar_op")
            msg.header.stamp = TimeMsg(sec=sec)
            pub.publish(msg)
            find = lambda: next((s for s in statuses if s.photo_stamp.sec == sec and s.code != AvatarStatus.BUSY),  # noqa: E731
                                None)
            assert spin_until(node, lambda: find() is not None, 180), proc.output()
            return find()
        finally:
            node.destroy_publisher(pub)

    try:
        first = send(8000)
        assert first.code == AvatarStatus.OK and "ready" in first.message, f"{first.message}\n{proc.output()}"
        train(1)
        assert _set_param(node, "checkpoint", str(ckpt), f"{CACHE_NS}/reconstruction_node").successful
        retrained = send(8001)
        assert retrained.code == AvatarStatus.OK and "ready" in retrained.message, retrained.message  # old: unchanged
        assert _set_param(node, "checkpoint", str(ckpt), f"{CACHE_NS}/reconstruction_node").successful
        assert "unchanged" in send(8002).message  # the same file loaded again
    finally:
        node.destroy_node()
        rc = proc.stop()
    assert rc in (0, -2, 130), proc.output()


def _tiny_rar_model():
    """An untrained tiny RAR model (128 px source) fitted to obama_official's face: what its weights make does not
    matter to the node tests that use it."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.model.rar import RARModel, preset_config
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo
    from gaussian_head_ros.core.reconstruct.template import template_faces

    with FaceMesh() as fm:
        vertices = frame_photo(_photo("obama_official.jpg", 480), fm, FramingConfig(size=128)).vertices
    return RARModel(preset_config("tiny", source_size=128), vertices, template_faces()).eval()


def test_a_checkpoint_whose_backbone_moved_is_said_and_backbone_weights_finds_it(rclpy_context, tmp_path):
    """A checkpoint copied to the robot without the backbone-<hash>/ folder its training wrote (user60): the node
    said 'the checkpoint's frozen backbone <the training machine's path> is missing: pass its weights directory',
    but it had no parameter to pass one (the rar option backbone_weights was `gaussian-head reconstruct`'s only).
    Now the refusal names both places looked in and how to give it, the node keeps serving nothing worse, and its
    backbone_weights parameter, set, makes the photo's avatar."""
    pytest.importorskip("torch")
    from rosgraph import spin_until

    from gaussian_head_ros.core.model.backbone import save_backbone
    from gaussian_head_ros.core.model.rar import save_checkpoint
    from gaussian_head_ros.msg import AvatarStatus

    photo = shared("portraits", "obama_official.jpg")
    model = _tiny_rar_model()
    model.backbone_source = save_backbone(model.backbone, tmp_path / "run" / "checkpoints" / "backbone")
    trained = tmp_path / "run" / "checkpoints" / "model.pt"
    save_checkpoint(trained, model)  # references the backbone folder, as training does with a random backbone
    folder = Path(model.backbone_source["path"])
    (tmp_path / "robot").mkdir()
    ckpt = tmp_path / "robot" / "model.pt"  # copied to the robot alone; the run's folder moved away
    shutil.copy(trained, ckpt)
    moved = tmp_path / "elsewhere" / folder.name
    moved.parent.mkdir()
    folder.rename(moved)

    node = rclpy_context.create_node("backbone_moved_peer", namespace=CACHE_NS)
    st = []
    node.create_subscription(AvatarStatus, "avatar/status", st.append, _latched(depth=20))
    proc = _start_node(tmp_path, "backbone_moved", "backend:=rar", f"checkpoint:={ckpt}", "device:=cpu",
                       "cache_avatar:=false", f"photo_path:={photo}")
    target = f"{CACHE_NS}/reconstruction_node"
    final = lambda: [s for s in st if s.code != AvatarStatus.BUSY]  # noqa: E731
    try:
        assert spin_until(node, final, 120), proc.output()
        refused = final()[-1]
        assert refused.code == AvatarStatus.INTERNAL_ERROR, refused.message
        log = proc.output()
        assert f"{ckpt} needs the frozen backbone it was trained with, {folder.name}/" in log, log
        assert f"neither place looked for: {folder} (where training read it) nor {ckpt.parent / folder.name} " \
               "(beside the checkpoint)" in log, log
        assert "reconstruction_node's backbone_weights parameter" in log, log
        st.clear()
        assert _set_param(node, "backbone_weights", str(moved), target).successful
        assert _set_param(node, "photo_path", str(photo), target).successful
        assert spin_until(node, final, 120), proc.output()
        assert final()[-1].code == AvatarStatus.OK and "ready" in final()[-1].message, \
            f"{final()[-1].message}\n{proc.output()}"
    finally:
        node.destroy_node()
        rc = proc.stop()
    assert rc in (0, -2, 130), proc.output()


def test_a_parameter_the_backend_does_not_take_is_said_unused_not_applied(rclpy_context, tmp_path):
    """Under backend rar, `ros2 param set .../reconstruction_node preset fast` (or max_gaussians, mesh_fit's) was said
    'preset fast: applies to the next photo reconstructed ... To remake it now, send its photo again', the reconstructor
    was loaded again, and the photo sent again as told was answered 'unchanged' (user60). Now such a parameter is said
    to be the other backend's and not used, at start-up (from a params file) and when set, and nothing is rebuilt; the
    photo sent again is still 'unchanged'."""
    pytest.importorskip("torch")
    from rosgraph import spin_until

    from gaussian_head_ros.core.model.rar import save_checkpoint
    from gaussian_head_ros.msg import AvatarStatus

    photo = shared("portraits", "obama_official.jpg")
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, _tiny_rar_model())
    node = rclpy_context.create_node("unused_param_peer", namespace=CACHE_NS)
    st = []
    node.create_subscription(AvatarStatus, "avatar/status", st.append, _latched(depth=20))
    proc = _start_node(tmp_path, "unused", "backend:=rar", f"checkpoint:={ckpt}", "device:=cpu",
                       "cache_avatar:=false", "max_gaussians:=30000", f"photo_path:={photo}")
    target = f"{CACHE_NS}/reconstruction_node"
    final = lambda: [s for s in st if s.code != AvatarStatus.BUSY]  # noqa: E731
    try:
        assert spin_until(node, final, 120), proc.output()
        assert final()[-1].code == AvatarStatus.OK, f"{final()[-1].message}\n{proc.output()}"
        said = proc.output()
        # the start-up ones (-p, as from a params file: _start_node's preset fast), then a set
        for name, value in (("preset", "fast"), ("max_gaussians", "30000"), ("preset", "dense")):
            expected = (f"{name} {value}: a parameter of the mesh_fit reconstructor, not used by rar (backend rar): the "
                        "avatars it makes do not change; it applies once backend is mesh_fit")
            if value == "dense":
                start = len(proc.output())
                assert _set_param(node, "preset", "dense", target).successful
                assert spin_until(node, lambda: expected in proc.output()[start:], 30), proc.output()[start:]
                said = proc.output()[start:]
            assert expected in said, said
        assert "applies to the next photo" not in proc.output(), proc.output()
        assert proc.output().count("rar reconstructor ready") == 1, proc.output()  # not loaded again for it
        st.clear()
        assert _set_param(node, "photo_path", str(photo), target).successful
        assert spin_until(node, final, 120), proc.output()
        assert final()[-1].code == AvatarStatus.OK and "unchanged" in final()[-1].message, final()[-1].message
        start = len(proc.output())  # and the other way round: rar's checkpoint under mesh_fit
        assert _set_param(node, "backend", "mesh_fit", target).successful
        shutil.copy(ckpt, tmp_path / "other.pt")
        assert _set_param(node, "checkpoint", str(tmp_path / "other.pt"), target).successful
        line = f"checkpoint {tmp_path / 'other.pt'}: a parameter of the rar reconstructor, not used by mesh_fit"
        assert spin_until(node, lambda: line in proc.output()[start:], 30), proc.output()[start:]
    finally:
        node.destroy_node()
        rc = proc.stop()
    assert rc in (0, -2, 130), proc.output()


def test_the_reconstructor_key_is_the_checkpoint_content_not_its_path(tmp_path, monkeypatch):
    """`ros2 param set .../reconstruction_node checkpoint <the same path>` after training wrote a new checkpoint there
    reloads the model; the "unchanged" key held the path only, so the same photo was answered "unchanged" with the
    old model's avatar (review16, s16). The key holds the checkpoint's SHA-256: same size and mtime, other bytes,
    another key; the same bytes, the same key."""
    import os

    from gaussian_head_ros.core.reconstruct import reconstructor_key

    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights-1" * 1000)
    os.utime(ckpt, ns=(1, 1))
    before = reconstructor_key("rar", checkpoint=str(ckpt), device="cpu")
    assert reconstructor_key("rar", checkpoint=str(ckpt), device="cpu") == before
    ckpt.write_bytes(b"weights-2" * 1000)
    os.utime(ckpt, ns=(1, 1))
    assert reconstructor_key("rar", checkpoint=str(ckpt), device="cpu") != before
    assert reconstructor_key("rar", checkpoint=str(ckpt), device="cuda") != reconstructor_key("rar", checkpoint=str(ckpt), device="cpu")
    assert reconstructor_key("mesh_fit", preset="fast") != reconstructor_key("mesh_fit", preset="default")
    # the digest is the file's SHA-256 (hashlib.file_digest since session 18; a hand-written 1 MiB block loop before),
    # across block boundaries and with `~` expanded
    import hashlib

    big = (b"0123456789abcdef" * 200_000)[:3_000_017]  # 2.9 MiB, not a whole number of blocks
    ckpt.write_bytes(big)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert f"checkpoint sha256 {hashlib.sha256(big).hexdigest()}\n" in reconstructor_key("rar", checkpoint="~/model.pt")


def test_setting_photo_path_swaps_the_operator(rclpy_context, peer):
    """`ros2 param set /reconstruction_node photo_path me.jpg` reconstructs that photo (the set was accepted
    and then nothing happened: the file was read at start-up only); a missing file or a directory is refused, with
    the system's reason; so are a pipe and a device, without reading them."""
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus
    from gaussian_head_ros.nodes.conversions import msg_to_avatar

    node = peer["node"]

    def set_photo(path):
        return _set_param(node, "photo_path", str(path))

    missing = set_photo("/nonexistent/me.jpg")
    assert not missing.successful and "No such file" in missing.reason, missing.reason
    # a relative path is the node's to resolve, not the shell's: said (user56, s56: photo_node's README example)
    relative = set_photo("u56_other.jpg")
    assert not relative.successful and "No such file" in relative.reason and "a relative path is read from " \
        "reconstruction_node's working directory" in relative.reason and "$PWD/u56_other.jpg" in relative.reason, \
        relative.reason
    folder = set_photo(peer["proc"].home)  # a directory was refused as 'not found' (user12, s12)
    assert not folder.successful and "Is a directory" in folder.reason, folder.reason
    # a pipe or a device: the reply read the whole file (user13, s13): a FIFO blocked the parameter service
    # until someone wrote to it (no reply; the node's callbacks stuck), /dev/zero never ended
    fifo = peer["proc"].home / "pipe.jpg"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        got = set_photo(path)
        assert not got.successful and "not a regular file" in got.reason, got.reason
    peer["statuses"].clear()
    assert not set_photo("~/business_person.png").successful  # not yet there
    # its refusal comes on avatar/status at once too (user63): taken in before the statuses are cleared, or it came
    # after the clear and was read as the copied photo's verdict (CI, session 63)
    missing = lambda: [s for s in peer["statuses"] if s.operator_id == "business_person"]  # noqa: E731
    assert spin_until(node, missing, 10) and missing()[0].code == AvatarStatus.BAD_IMAGE, missing()
    shutil.copy(shared("portraits", "business_person.png"), peer["proc"].home)
    peer["statuses"].clear()
    assert set_photo("~/business_person.png").successful  # a quoted '~/...': the node expands it
    done = lambda: [s for s in peer["statuses"] if s.operator_id == "business_person" and s.code != AvatarStatus.BUSY]
    assert spin_until(node, done, 120), peer["proc"].output()
    assert done()[0].code == AvatarStatus.OK, done()[0].message
    assert {s.header.frame_id for s in done()} == {"business_person"}  # (was empty)
    av, _ = _late_join(rclpy_context, "late_joiner_6")
    assert msg_to_avatar(av).operator_id == "business_person"


def test_volatile_photo_publishers_raise_no_incompatible_qos_warning(peer):
    """The peer's photo publishers are volatile (as `ros2 topic pub` is): the transient-local twin
    subscription used to log "offering incompatible QoS. No messages will be received from it" for each,
    although their photos arrive. A best-effort publisher, which cannot be received, is still reported: in our words
    since user64 (test_a_best_effort_photo_publisher_is_named_with_what_to_publish_with)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph import spin_until
    from sensor_msgs.msg import CompressedImage

    assert peer["comp"].get_subscription_count() == 1  # only the volatile twin matches
    assert "incompatible QoS" not in peer["proc"].output(), peer["proc"].output()
    node = peer["node"]
    start = len(peer["proc"].output())
    lossy = node.create_publisher(CompressedImage, "operator/photo/compressed",
                                  QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    try:
        assert spin_until(node, lambda: "publishes /operator/photo/compressed best effort" in
                          peer["proc"].output()[start:], 20), peer["proc"].output()[start:]
    finally:
        node.destroy_publisher(lossy)


def test_a_best_effort_photo_publisher_is_named_with_what_to_publish_with(peer):
    """A photo published best effort (rclpy's qos_profile_sensor_data, which image publishers often take) never
    reaches the node, which reads photos reliable, and the node said only rclpy's 'New publisher discovered on topic
    '/operator/photo/compressed', offering incompatible QoS. No messages will be received from it. Last incompatible
    policy: RELIABILITY', naming neither the sender nor a remedy (user64: a best-effort sender of other.jpg, beside
    robot.launch.py). Now the node names the sender's node and what to publish with, once per publisher, and lists it
    on /diagnostics (unheard_photo_publishers) while it is on the graph. A real best-effort publisher in this process."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph import spin_until
    from sensor_msgs.msg import Image

    node = peer["node"]
    unheard = []

    def on_diag(msg) -> None:
        for st in msg.status:
            if st.name.startswith("reconstruction_node:"):
                unheard.append({kv.key: kv.value for kv in st.values}.get("unheard_photo_publishers"))

    diag_sub = node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    start = len(peer["proc"].output())
    lossy = node.create_publisher(Image, "operator/photo", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    said = lambda: [ln for ln in peer["proc"].output()[start:].splitlines()  # noqa: E731
                    if "publishes /operator/photo best effort" in ln]
    try:
        assert spin_until(node, said, 30), peer["proc"].output()[start:][-3000:]
        line = said()[0]
        assert "WARN" in line and "/reconstruction_test_peer publishes /operator/photo best effort: DDS delivers none "                "of its photos to this node" in line, line
        assert "Publish them reliable (rclpy: QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)" in line, line
        assert "offering incompatible QoS" not in peer["proc"].output()[start:], peer["proc"].output()[start:]
        assert spin_until(node, lambda: unheard and unheard[-1] == "/reconstruction_test_peer on /operator/photo (RELIABILITY)", 30), \
            unheard[-3:]
    finally:
        node.destroy_publisher(lossy)
    assert spin_until(node, lambda: unheard and unheard[-1] == "", 30), unheard[-3:]  # it left: forgotten
    node.destroy_subscription(diag_sub)
    assert len(said()) == 1, said()


def test_a_photo_from_ros2_topic_pub_is_said_received_with_why_its_qos_warning_is_harmless(peer):
    """A photo published with `ros2 topic pub --once` (volatile, as by default): its process may print rclpy's
    'requesting incompatible QoS. No messages will be sent to it. Last incompatible policy: DURABILITY' (about the
    node's transient-local reader), which a new user read as the photo lost, and the robot said nothing until its
    verdict. Now the node says it received the photo, from which node, and why that warning is harmless (user33,
    s34). A real `ros2 topic pub` process; a photo without a face, so the avatar stays."""
    import subprocess

    ok, jpeg = cv2.imencode(".jpg", np.full((64, 64, 3), 120, np.uint8))
    values = "{header: {frame_id: u34_cli}, format: jpeg, data: [" + ", ".join(map(str, jpeg.ravel())) + "]}"
    start = len(peer["proc"].output())
    done = subprocess.run(["ros2", "topic", "pub", "--once", "--stdin", "--keep-alive", "1", "-w", "1",
                           "--max-wait-time-secs", "60", "/operator/photo/compressed",
                           "sensor_msgs/msg/CompressedImage"], input=values, text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    said = lambda: [ln for ln in peer["proc"].output()[start:].splitlines()  # noqa: E731
                    if "photo 'u34_cli' received on /operator/photo/compressed" in ln]
    assert wait_until(said, 30), peer["proc"].output()[start:][-3000:]
    assert "its publisher is volatile: the warning '... Last incompatible policy: DURABILITY' it may print is about " \
           "this node's transient-local reader" in said()[0], said()
    assert wait_until(lambda: "photo 'u34_cli' from operator/photo/compressed refused" in peer["proc"].output()[start:],
                      60), peer["proc"].output()[start:][-3000:]


def test_a_photo_whose_sender_the_graph_names_no_node_for_is_said_received_from_no_one():
    """The receipt line names the sender's node as the graph gives it; for a writer whose node information has not
    arrived (a `ros2 topic pub --once` that published and left first, a plain DDS writer) rmw_dds_common gives
    '_NODE_NAME_UNKNOWN_' in '_NODE_NAMESPACE_UNKNOWN_', and the line said `from
    _NODE_NAMESPACE_UNKNOWN_/_NODE_NAME_UNKNOWN_` (user43, s43). Now it names no sender there, and a known one as
    before. The node's own method on a stand-in node whose graph answers with those endpoints."""
    from types import SimpleNamespace

    from rclpy.qos import DurabilityPolicy

    from gaussian_head_ros.nodes.common import UNNAMED_NODE, endpoint_node
    from gaussian_head_ros.nodes.reconstruction_node import ReconstructionNode

    gid = bytes(range(16)) + bytes(8)
    lines = []

    def received(name, namespace):
        sender = SimpleNamespace(endpoint_gid=gid, node_name=name, node_namespace=namespace,
                                 qos_profile=SimpleNamespace(durability=DurabilityPolicy.TRANSIENT_LOCAL))
        stand_in = SimpleNamespace(
            photo_topics={}, _volatile_said=set(), _operator=lambda frame_id: frame_id,
            statuses=SimpleNamespace(publisher=SimpleNamespace(topic_name="/avatar/status")),
            get_publishers_info_by_topic=lambda topic: [sender],
            get_logger=lambda: SimpleNamespace(info=lines.append))
        ReconstructionNode._say_received(stand_in, {"publisher_gid": {"data": list(gid)}},
                                         "/operator/photo/compressed", "me", 2048)
        return lines[-1]

    unknown = received("_NODE_NAME_UNKNOWN_", "_NODE_NAMESPACE_UNKNOWN_")
    assert "UNKNOWN" not in unknown and "from" not in unknown, unknown
    assert unknown.startswith("photo 'me' received on /operator/photo/compressed (2 KB): its verdict follows"), unknown
    known = received("_ros2cli_4122", "/")
    assert "(2 KB, from /_ros2cli_4122): its verdict follows on /avatar/status" in known, known
    robot = SimpleNamespace(node_name="photo_node", node_namespace="/robot1")
    assert endpoint_node(robot) == "/robot1/photo_node"
    assert endpoint_node(SimpleNamespace(node_name="_NODE_NAME_UNKNOWN_", node_namespace="_NODE_NAMESPACE_UNKNOWN_"),
                         UNNAMED_NODE) == UNNAMED_NODE


def test_a_reader_of_the_avatar_that_cannot_get_the_latched_one_is_said(peer):
    """A subscriber of `avatar` with the default QoS (volatile: `create_subscription(..., 10)`) or of `avatar/cloud`
    best effort (a viewer's default for clouds) matches without a word on either side and never gets the avatar
    shown now (user24, s24: `ros2 topic echo --qos-durability volatile` waited in silence). Now the node says so once
    per subscription, naming the subscriber's node and the QoS to use; a latched reader is not named."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph import spin_until
    from sensor_msgs.msg import PointCloud2

    from gaussian_head_ros.msg import GaussianAvatar

    node = peer["node"]
    volatile = node.create_subscription(GaussianAvatar, "avatar", lambda m: None, 10)
    lossy = node.create_subscription(PointCloud2, "avatar/cloud", lambda m: None, QoSProfile(
        depth=1, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    good = node.create_subscription(GaussianAvatar, "avatar", lambda m: None, _latched())
    said = lambda: [ln for ln in peer["proc"].output().splitlines()  # noqa: E731
                    if "reconstruction_test_peer subscribes to" in ln]
    try:
        assert spin_until(node, lambda: len(said()) >= 2, 30), peer["proc"].output()[-3000:]
        time.sleep(4.5)  # two more checks: each subscription is said once
        lines = said()
        assert len(lines) == 2, lines
        avatar = next(ln for ln in lines if "subscribes to /avatar volatile:" in ln)
        cloud = next(ln for ln in lines if "subscribes to /avatar/cloud best effort:" in ln)
        for ln in (avatar, cloud):
            assert "does not get the avatar published before it joined" in ln and "transient local" in ln, ln
    finally:
        for s in (volatile, lossy, good):
            node.destroy_subscription(s)


def test_preset_budget_is_not_overridden_unless_asked():
    from gaussian_head_ros.core.reconstruct.mesh_fit import PRESETS
    from gaussian_head_ros.nodes.reconstruction_node import PARAMS, reconstructor_options

    values = {k: s.default for k, s in PARAMS.items()} | {"backend": "mesh_fit", "preset": "fast"}
    assert "max_gaussians" not in reconstructor_options(values)  # the preset's 30k applies
    assert PRESETS["fast"]["max_gaussians"] == 30_000
    assert reconstructor_options(values | {"max_gaussians": 40_000})["max_gaussians"] == 40_000


def test_unbuildable_reconstructor_says_why(rclpy_context, tmp_path):
    """Start-up parameters that cannot make a reconstructor (backend rar without a checkpoint): the photo's
    status and the diagnostics say why (the status read 'no reconstructor (reconstructing (photo_path
    ...))', the diagnostics stayed at 'reconstructing' with level WARN). A max_gaussians the node's range
    takes but mesh_fit does not (100: 0 or 5000..2M) goes back to 0 alone (it left the node without a
    reconstructor)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph import Proc, executable, spin_until

    from gaussian_head_ros.msg import AvatarStatus

    photo = shared("portraits", "obama_official.jpg")
    proc = Proc(executable("reconstruction_node") + ["--ros-args", "-r", "__ns:=/no_rec", "-p", "backend:=rar",
                                                     "-p", "max_gaussians:=100", "-p", f"photo_path:={photo}"],
                tmp_path / "reconstruction_node.log")
    node = rclpy_context.create_node("no_reconstructor_peer")
    st, diags = [], []
    node.create_subscription(AvatarStatus, "/no_rec/avatar/status", st.append, _latched())
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diags.extend(
        s for s in m.status if s.name.startswith("no_rec/reconstruction_node")), 10)
    try:
        # (the diagnostics' 'loading rar' tick can come after the status: the refusal is quick since rar's option
        # check imports no torch, user65; wait for the diagnostics' next word)
        assert spin_until(node, lambda: st and diags and diags[-1].message not in ("starting", "loading rar"), 60), \
            proc.output()
        assert st[-1].code == AvatarStatus.INTERNAL_ERROR and "checkpoint" in st[-1].message, st[-1].message
        assert "reconstructing" not in st[-1].message, st[-1].message
        level = diags[-1].level[0] if isinstance(diags[-1].level, bytes) else int(diags[-1].level)
        assert level == 2 and "checkpoint" in diags[-1].message, diags[-1]  # ERROR
        log = proc.output()
        assert "max_gaussians must be within 5000" in log and "using the default 0" in log, log
        assert proc.alive() and "Traceback" not in log, log
    finally:
        node.destroy_node()
        proc.stop()


def test_a_smaller_budget_set_at_run_time_says_the_avatar_shown_stays_until_its_photo_comes_again(rclpy_context,
                                                                                                   tmp_path):
    """A robot integrator sets max_gaussians (README "Reconstruction", render_node's "below the fps" warning) on a
    running node for a faster display: the set succeeded, 'mesh_fit reconstructor ready', and the display went on
    drawing the avatar shown, with no word that the budget applies to the next photo (user48b). Now the log says
    so, with the avatar shown's count and how to remake it; photo_path set again, as it says, makes the smaller one."""
    from rosgraph import Proc, executable, spin_until

    from gaussian_head_ros.msg import AvatarStatus

    photo = shared("portraits", "business_person.png")
    proc = Proc(executable("reconstruction_node") + ["--ros-args", "-r", "__ns:=/budget_set", "-p", "preset:=fast",
                                                     "-p", "cache_avatar:=false", "-p", f"photo_path:={photo}"],
                tmp_path / "reconstruction_node.log")
    node = rclpy_context.create_node("budget_set_peer")
    st = []
    node.create_subscription(AvatarStatus, "/budget_set/avatar/status", st.append, _latched(depth=20))
    target = "/budget_set/reconstruction_node"
    try:
        assert spin_until(node, lambda: [s for s in st if s.code == AvatarStatus.OK], 120), proc.output()
        first = [s for s in st if s.code == AvatarStatus.OK][-1].num_gaussians
        assert first > 10_000, first
        start = len(proc.output())
        assert _set_param(node, "max_gaussians", 10_000, target).successful
        said = lambda: proc.output()[start:]  # noqa: E731
        assert spin_until(node, lambda: "applies to the next photo" in said(), 30), said()
        line = next(ln for ln in said().splitlines() if "applies to the next photo" in ln)
        assert "max_gaussians 10000" in line and f"{first} Gaussians" in line and "photo_path" in line, line
        assert _set_param(node, "preset", "fast", target).successful  # the value it has: nothing to say
        time.sleep(1.0)
        assert said().count("applies to the next photo") == 1, said()
        st.clear()
        assert _set_param(node, "photo_path", str(photo), target).successful  # as the line says: remade
        done = lambda: [s for s in st if s.code not in (AvatarStatus.BUSY,)]  # noqa: E731
        assert spin_until(node, done, 120), proc.output()
        assert done()[-1].code == AvatarStatus.OK and 0 < done()[-1].num_gaussians <= 10_000, done()[-1]
    finally:
        node.destroy_node()
        proc.stop()


# ---------------------------------------------------------------------------------------------------
# the avatar cache: a restart without photo_path still serves the last avatar

CACHE_NS = "/cache_test"  # apart from the module's node_proc, which serves its own avatar


def _start_node(tmp_path, name, *params):
    from rosgraph import Proc, executable

    args = ["--ros-args", "-r", f"__ns:={CACHE_NS}", "-p", "preset:=fast", "-p", f"cache_path:={tmp_path / 'avatar.cache'}"]
    for p in params:
        args += ["-p", p]
    return Proc(executable("reconstruction_node") + args, tmp_path / f"{name}.log")


def test_restart_without_photo_serves_the_cached_avatar(rclpy_context, tmp_path):
    """Photo -> avatar; the node is killed (SIGKILL) and started again without a photo: a subscriber that
    joins after the restart gets the same avatar (operator id, stamp) from the new process. The photo came latched,
    as photo_node sends it, so it reaches the new node too: the key of what the avatar was made from lived in memory
    only, and that photo was reconstructed again on every robot restart (17 s of a busy robot; review16, s16). The
    cache keeps the key beside the avatar: "unchanged", no reconstruction, the restored avatar stays."""
    import signal

    from builtin_interfaces.msg import Time as TimeMsg
    from rosgraph import spin_until
    from sensor_msgs.msg import CompressedImage

    from gaussian_head_ros.msg import AvatarStatus

    node = rclpy_context.create_node("cache_test_peer", namespace=CACHE_NS)
    statuses = []
    node.create_subscription(AvatarStatus, "avatar/status", statuses.append, _latched(depth=20))
    pub = node.create_publisher(CompressedImage, "operator/photo/compressed", _latched())  # photo_node's QoS
    msg = _compressed_msg(cv2.imencode(".jpg", _photo("obama_official.jpg", 480)[..., ::-1])[1].tobytes(),
                          "cached_operator")
    msg.header.stamp = TimeMsg(sec=5000)

    def final(proc):
        def find():
            return next((s for s in statuses if s.header.frame_id == "cached_operator" and s.photo_stamp.sec == 5000
                         and s.code != AvatarStatus.BUSY), None)
        assert spin_until(node, lambda: find() is not None, 120), proc.output()
        return find()

    first = _start_node(tmp_path, "first")
    try:
        assert spin_until(node, lambda: pub.get_subscription_count() >= 2, 60), first.output()
        pub.publish(msg)
        made = final(first)
        assert made.code == AvatarStatus.OK and "ready" in made.message, made.message
        before, _ = _late_join(rclpy_context, "cache_before", timeout=120, namespace=CACHE_NS)
        assert before is not None and before.operator_id == "cached_operator", first.output()
        assert spin_until(node, lambda: "avatar cache: written" in first.output(), 30), first.output()
    finally:
        first.stop(signal.SIGKILL)
    statuses.clear()
    second = _start_node(tmp_path, "second")
    try:
        again = final(second)  # the latched photo, taken by the new node
        assert again.code == AvatarStatus.OK and "unchanged" in again.message, f"{again.message}\n{second.output()}"
        assert again.num_gaussians == made.num_gaussians and "ready:" not in second.output(), second.output()
        after, st = _late_join(rclpy_context, "cache_after", timeout=60, namespace=CACHE_NS)
        assert after is not None, f"no avatar after the restart:\n{second.output()}"
        assert after.operator_id == "cached_operator" and after.header.stamp == before.header.stamp
        assert bytes(after.gaussians.data) == bytes(before.gaussians.data)
        assert "restored from the cache" in second.output(), second.output()
        # when it was made, as a person reads it (conversions.stamp_utc_text; was the raw 'sec.nanosec' stamp)
        assert re.search(r"made \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", second.output()), second.output()
    finally:
        node.destroy_node()
        second.stop()


def test_the_default_cache_is_one_per_ros_domain(tmp_path):
    """Two robots on one host, both in the root namespace, in two ROS domains (ROS_DOMAIN_ID=A and B), each with the
    default cache_path: the cache was keyed by namespace alone, so robot B, restarted without a photo, served robot
    A's operator ('restored from the cache', user62). The default file now names the domain: B finds no cache of its
    own; A's is where A wrote it. (Only the two processes' logs are read: B joins a second private domain.)"""
    import conftest
    from rosgraph import Proc, executable, wait_until

    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    save_ply(synthetic_avatar(2000, seed=3, operator_id="robot_a_operator"), tmp_path / "a.ply")
    home = tmp_path / "ros_home"  # one host: one ROS_HOME for both robots
    domain_a, domain_b = os.environ["ROS_DOMAIN_ID"], conftest._private_domain()
    assert domain_a != domain_b

    def start(name, domain, *params):
        args = ["--ros-args", "-r", f"__ns:={CACHE_NS}"] + [a for p in params for a in ("-p", p)]
        return Proc(executable("reconstruction_node") + args, tmp_path / f"{name}.log",
                    env={"ROS_HOME": str(home), "ROS_DOMAIN_ID": domain})

    robot_a = start("robot_a", domain_a, f"photo_path:={tmp_path / 'a.ply'}")
    try:
        assert wait_until(lambda: "avatar cache: written to " in robot_a.output(), 120), robot_a.output()
    finally:
        robot_a.stop()
    written = re.search(r"avatar cache: written to (\S+)", robot_a.output()).group(1)
    robot_b = start("robot_b", domain_b)
    try:
        said = lambda: "no cached avatar at " in robot_b.output() or "restored from the cache" in robot_b.output()  # noqa: E731
        assert wait_until(said, 120), robot_b.output()
    finally:
        robot_b.stop()
    assert "restored from the cache" not in robot_b.output(), robot_b.output()
    assert f"domain{int(domain_b)}_cache_test_reconstruction_node.avatar" in robot_b.output(), robot_b.output()
    assert Path(written).exists() and written.endswith(f"domain{int(domain_a)}_cache_test_reconstruction_node.avatar")


def test_what_core_says_in_a_node_reaches_its_log_and_rosout(rclpy_context, tmp_path):
    """A photo_path JPEG above max_pixels is decoded reduced; core.imageio says so ('910x1137 JPEG decoded at 1/2
    ...') through Python logging, which a node process had no handler for: the line was dropped, as was every
    other line core logs in a node (its warnings, e.g. 'gsplat is not usable here ...; using the cpu rasterizer',
    went to stderr as bare text, under no node name, in neither /rosout nor the node's log file; user46, s46). Now
    the node says it as its own line: on the console, and on /rosout under its name. The photo is used in place."""
    from rcl_interfaces.msg import Log
    from rosgraph import spin_until

    node = rclpy_context.create_node("core_log_peer")
    said = []  # /rosout as a user's `ros2 topic echo /rosout` gets it (rcl's rosout QoS: reliable, transient local)
    node.create_subscription(Log, "/rosout", lambda m: said.append((m.name, m.level, m.msg)), _latched(depth=1000))
    proc = _start_node(tmp_path, "core_log", "max_pixels:=300000",
                       f"photo_path:={shared('portraits', 'obama_official.jpg')}")
    try:
        def reduced():
            return [s for s in said if "JPEG decoded at 1/2" in s[2]]

        assert spin_until(node, lambda: reduced(), 150), f"{said}\n{proc.output()}"
        name, level, text = reduced()[0]
        assert name == CACHE_NS.strip("/") + ".reconstruction_node" and level == Log.INFO, reduced()
        assert text.startswith("910x1137 JPEG decoded at 1/2 (455x569) to stay within 300000 pixels"), text
        assert wait_until(lambda: "[cache_test.reconstruction_node]: 910x1137 JPEG decoded at 1/2" in proc.output(),
                          10), proc.output()
    finally:
        node.destroy_node()
        proc.stop()


_NODE_PROCESS_THAT_WARNS = """
import logging, sys, warnings
import numpy as np
import rclpy
from gaussian_head_ros.nodes import common
sys.argv = ["probe"]
common.start_process([])  # as every node executable starts (common.run, avatar_pipeline)
warnings.warn("a Python warning")
np.float32(1) / np.float32(0)
core = logging.getLogger("gaussian_head_ros.core.probe")
core.info("a core info line")
core.debug("a core debug line")
core.error("a core error line")
logging.getLogger("some_library").warning("a library's warning")
rclpy.shutdown()
"""


def test_python_warnings_and_core_lines_of_each_level_are_the_nodes_lines():
    """Python warnings (a UserWarning, numpy's RuntimeWarning) raised in a node process went to stderr in Python's
    two-line form, under no node name, in neither /rosout nor the log file (user46, s46); now they are rcl WARN lines
    (the process's logger until common.log_core_under gives a one-node process its node's), and core's lines of
    several levels one after another each keep their level (rclpy ties a logging call site to one level: the first
    bridge raised 'Logger severity cannot be changed between calls' at the second)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _NODE_PROCESS_THAT_WARNS], capture_output=True, text=True, timeout=60)
    lines = [ln.split("] ", 2)[0] + "] " + ln.split("]: ", 1)[1] for ln in out.stderr.splitlines() if "]: " in ln]
    assert out.returncode == 0 and "Logging error" not in out.stderr, out.stderr
    assert lines == ["[WARN] <string>:8: UserWarning: a Python warning",
                     "[WARN] <string>:9: RuntimeWarning: divide by zero encountered in scalar divide",
                     "[INFO] a core info line", "[ERROR] a core error line", "[WARN] a library's warning"], out.stderr
    assert out.stderr.count("[probe]: ") == 5, out.stderr  # the process's logger: run_nodes then gives the node's


def test_the_cached_avatar_is_labelled_by_the_current_parameters(rclpy_context, tmp_path):
    """Started with another frame_id and operator_id than the cached avatar was made with, the node published
    the cached message as it was (frame_id 'head', the old operator id): a robot that renamed its head frame or
    its operator got the old names back after a restart. Now the restored avatar carries the current ones (the
    same Gaussians and stamp)."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from gaussian_head_ros.core import avatar_cache
    from gaussian_head_ros.core.synthetic import synthetic_avatar
    from gaussian_head_ros.nodes.conversions import avatar_to_msg, ns_to_stamp
    from gaussian_head_ros.nodes.reconstruction_node import CACHE_KIND

    cached = avatar_to_msg(synthetic_avatar(2000, seed=3, operator_id="cached_operator"),
                           Header(frame_id="head", stamp=ns_to_stamp(1_700_000_123 * 10**9)))
    avatar_cache.write(tmp_path / "avatar.cache", serialize_message(cached), CACHE_KIND)
    proc = _start_node(tmp_path, "relabelled", "frame_id:=robot_head", "operator_id:=alice")
    try:
        after, st = _late_join(rclpy_context, "cache_relabelled", timeout=60, namespace=CACHE_NS)
        assert after is not None, f"no avatar restored:\n{proc.output()}"
        assert (after.operator_id, after.header.frame_id, after.gaussians.header.frame_id) == \
            ("alice", "robot_head", "robot_head"), proc.output()
        assert after.header.stamp == cached.header.stamp and bytes(after.gaussians.data) == bytes(cached.gaussians.data)
        assert st is not None and st.ok and st.operator_id == "alice" and st.header.frame_id == "robot_head", st
    finally:
        rc = proc.stop()
    assert rc in (0, -2, 130), proc.output()


def test_corrupt_cache_is_said_and_ignored(rclpy_context, tmp_path):
    from gaussian_head_ros.core import avatar_cache
    from gaussian_head_ros.msg import AvatarStatus
    from gaussian_head_ros.nodes.reconstruction_node import CACHE_KIND

    avatar_cache.write(tmp_path / "avatar.cache", b"\x00" * 64 + b"not a message", CACHE_KIND)  # intact file, bad payload
    from rosgraph import spin_until

    from gaussian_head_ros.msg import GaussianAvatar

    proc = _start_node(tmp_path, "corrupt")
    node = rclpy_context.create_node("cache_corrupt_peer", namespace=CACHE_NS)
    av, st = [], []
    node.create_subscription(GaussianAvatar, "avatar", av.append, _latched())
    node.create_subscription(AvatarStatus, "avatar/status", st.append, _latched())
    try:
        assert spin_until(node, lambda: st, 60), proc.output()
        spin_until(node, lambda: av, 1.0)
        assert not av, "a corrupt cache was published"
        assert st[-1].code == AvatarStatus.INTERNAL_ERROR and "cached avatar" in st[-1].message, st[-1].message
        assert proc.alive() and "cached avatar ignored" in proc.output()
    finally:
        node.destroy_node()
        rc = proc.stop()
    assert rc in (0, -2, 130), proc.output()


def test_a_cache_write_that_is_refused_is_said_and_serving_goes_on(rclpy_context, tmp_path, monkeypatch):
    """avatar_cache.write raises ValueError for a note over MAX_NOTE_BYTES (the note holds the result's warnings) and
    OSError when the disk refuses; _save_cache caught OSError only, so a ValueError left the cache state saying the
    last write and went up to the worker loop as 'publishing the result failed' (review17, s17). One rule for both
    now: said (the diagnostics' avatar_cache, the log), counted, no file half-written, the next write works.
    A ValueError of the message's serialisation is a bug, not the disk: it goes up as it is, not said as "cannot
    write" (the try wrapped the serialisation too; review18, s18). In-process, the node's own _save_cache on a
    published avatar message."""
    from rclpy.parameter import Parameter
    from std_msgs.msg import Header

    from gaussian_head_ros.core import avatar_cache
    from gaussian_head_ros.core.synthetic import synthetic_avatar
    from gaussian_head_ros.nodes.conversions import avatar_to_msg
    from gaussian_head_ros.nodes.reconstruction_node import CACHE_KIND, MadeFrom, ReconstructionNode

    path = tmp_path / "avatar.cache"
    node = ReconstructionNode(namespace="cache_refused_test", parameter_overrides=[Parameter("cache_path", value=str(path))])
    try:
        deadline = time.monotonic() + 60
        while node.cache_state == "on" and time.monotonic() < deadline:  # the worker looks for a cache first
            time.sleep(0.05)
        assert node.cache_state.startswith("no cached avatar"), node.cache_state
        msg = avatar_to_msg(synthetic_avatar(500, seed=3, operator_id="noted"), Header(frame_id="head"))
        node._made_from = MadeFrom(b"\1" * 32, ("w" * avatar_cache.MAX_NOTE_BYTES,), 500)  # a note over 1 MiB
        node._save_cache(msg)
        assert node.counts["cache_errors"] == 1 and not path.exists()
        assert node.cache_state.startswith(f"cannot write {path}:") and "note" in node.cache_state, node.cache_state
        node.set_parameters([Parameter("cache_path", value=str(tmp_path / "a_file" / "avatar.cache"))])
        (tmp_path / "a_file").write_bytes(b"")  # the disk's refusal (a file where the folder should be, made after the
        # parameter was checked: avatar_cache.check_path refuses it when set): the same rule
        node._made_from = None
        node._save_cache(msg)
        assert node.counts["cache_errors"] == 2 and node.cache_state.startswith("cannot write"), node.cache_state
        node.set_parameters([Parameter("cache_path", value=str(path))])
        node._save_cache(msg)
        assert node.cache_state == f"written to {path}" and avatar_cache.read(path, CACHE_KIND) is not None

        def broken(msg):
            raise ValueError("a serialisation bug")

        monkeypatch.setattr("gaussian_head_ros.nodes.reconstruction_node.serialize_message", broken)
        with pytest.raises(ValueError, match="a serialisation bug"):
            node._save_cache(msg)
        assert node.counts["cache_errors"] == 2 and node.cache_state == f"written to {path}", node.cache_state
    finally:
        node.destroy_node()
        node._worker.join(60)


def test_a_cache_that_cannot_be_written_is_a_warning_on_diagnostics(rclpy_context, tmp_path):
    """A cache write the disk refuses (read-only or full disk, a folder gone; user20, s20: cache_path under /proc) was
    said on the log at WARN ('a restart will not serve this avatar') and in the diagnostics' avatar_cache value, but
    the status itself stayed level OK 'ready': a monitor of /diagnostics saw nothing until the robot restarted without
    a face. Now the level is WARN with the cache's state in the message, until a write succeeds. In-process, the
    node's own _save_cache and _publish_diagnostics."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.parameter import Parameter
    from std_msgs.msg import Header

    from gaussian_head_ros.core.synthetic import synthetic_avatar
    from gaussian_head_ros.nodes.conversions import avatar_to_msg
    from gaussian_head_ros.nodes.reconstruction_node import ReconstructionNode

    path = tmp_path / "gone" / "avatar.cache"
    node = ReconstructionNode(namespace="cache_diag_test", parameter_overrides=[Parameter("cache_path", value=str(path))])
    node.diag_pub = _StandInPublisher()
    sent = node.diag_pub.sent
    try:
        deadline = time.monotonic() + 60
        while node.cache_state == "on" and time.monotonic() < deadline:  # the worker looks for a cache first
            time.sleep(0.05)
        (tmp_path / "gone").write_bytes(b"")  # the disk's refusal: a file where the folder should be
        node._save_cache(avatar_to_msg(synthetic_avatar(500, seed=3, operator_id="kept"), Header(frame_id="head")))
        node._publish_diagnostics()
        status = sent[-1].status[0]
        assert status.level == DiagnosticStatus.WARN, (status.level, status.message)
        assert f"avatar cache: cannot write {path}" in status.message, status.message
        (tmp_path / "gone").unlink()
        node._save_cache(avatar_to_msg(synthetic_avatar(500, seed=3, operator_id="kept"), Header(frame_id="head")))
        node._publish_diagnostics()
        assert sent[-1].status[0].level == DiagnosticStatus.OK, sent[-1].status[0].message
    finally:
        node.destroy_node()
        node._worker.join(60)


class _StandInPublisher:
    """What InOrderLatched uses of a publisher: publish, and wait_for_all_acked (`acked`: every reader has the last)."""

    def __init__(self):
        self.acked, self.sent = True, []

    def publish(self, msg):
        self.sent.append(msg)
        self.acked = False

    def wait_for_all_acked(self, timeout):
        return self.acked


def _stand_in_latched(cls, ack_wait_s=0.3):
    """An InOrderLatched (`cls`) over a stand-in publisher (no DDS, no timer: the test calls _drain)."""
    pub = _StandInPublisher()
    node = type("Node", (), {"create_publisher": lambda self, *a: pub, "create_timer": lambda self, *a, **k: None})()
    return pub, cls(node, object, "avatar/status", ack_wait_s=ack_wait_s)


def test_statuses_go_out_in_order_each_after_the_one_before_is_acknowledged():
    """avatar/status's writer (nodes/common.InOrderLatched, depth 1 latched) publishes a status once every reader has
    acknowledged the one before, so a depth-1 writer never replaces an unrepaired sample (the DDS case:
    test_two_hosts.py::test_every_status_crosses_a_link_that_drops_them); the rule alone, with a stand-in publisher:
    the first goes out at once, the next two wait in order until the acknowledgement, and a reader that never
    acknowledges holds the next one `ack_wait_s` at most (counted as unacknowledged)."""
    from gaussian_head_ros.nodes.common import InOrderLatched

    pub, out = _stand_in_latched(InOrderLatched)
    out.publish("superseded B")
    out.publish("busy C")
    out.publish("ok A")
    assert pub.sent == ["superseded B"] and out.pending() == 2
    out._drain()
    assert pub.sent == ["superseded B"]
    pub.acked = True
    out._drain()
    assert pub.sent == ["superseded B", "busy C"] and out.pending() == 1 and out.unacked == 0
    time.sleep(0.35)  # never acknowledged: the next goes out after ack_wait_s
    out._drain()
    assert pub.sent == ["superseded B", "busy C", "ok A"] and out.pending() == 0 and out.unacked == 1


def test_a_reader_that_stops_acknowledging_holds_two_statuses_not_each():
    """A reader SIGKILLed while matched (it stays matched until its DDS lease ends) never acknowledges: it held every
    status `ack_wait_s` (5 s) each, a photo swap's statuses 10-15 s late for every live reader (user14, s14). Now two
    waits in a row that run out (one is not enough: a reader across a link that was down acknowledges only once the
    next message reaches it, test_two_hosts) and the statuses after them go out as they come, until every reader
    acknowledges again; then pacing resumes."""
    from gaussian_head_ros.nodes.common import InOrderLatched

    pub, out = _stand_in_latched(InOrderLatched)
    for m in ("busy B", "superseded B", "busy C", "ok A"):
        out.publish(m)
    time.sleep(0.35)
    out._drain()  # the first wait ran out: the next goes out, and is waited for (a reader repaired by it acks now)
    assert pub.sent == ["busy B", "superseded B"] and out.pending() == 2, pub.sent
    time.sleep(0.35)
    out._drain()  # the second ran out too: the reader is gone, the rest go out together
    assert pub.sent == ["busy B", "superseded B", "busy C", "ok A"] and out.pending() == 0, pub.sent
    out.publish("ok C")  # still unacknowledged: out at once
    assert pub.sent[-1] == "ok C" and out.pending() == 0 and out.unacked == 4
    pub.acked = True  # the dead reader left the graph (lease ended): every reader has acknowledged
    out.publish("busy D")
    out.publish("ok D")  # paced again
    assert pub.sent[-1] == "busy D" and out.pending() == 1 and out.unacked == 4


def test_a_ctrl_c_during_a_reconstruction_ends_the_node_at_once(tmp_path):
    """Ctrl-C (launch's SIGINT) while a photo is being reconstructed: the node waited up to 10 s for the running
    reconstruction before it ended, and `ros2 launch` escalated to SIGTERM after 5 s ('failed to terminate '5' seconds
    after receiving 'SIGINT'', an ERROR line; user14, s14: robot.launch.py stopped 1 s after a photo swap). Now it
    ends within ~1 s, the reconstruction abandoned (the process exits; nothing of it is published)."""
    import signal

    from rosgraph import Proc, executable, wait_until

    proc = Proc(executable("reconstruction_node") + [
        "--ros-args", "-p", f"photo_path:={shared('portraits', 'obama_official.jpg')}", "-p", "preset:=dense",
        "-p", "cache_avatar:=false"], tmp_path / "reconstruction_node.log")
    try:
        assert wait_until(lambda: "reconstructor ready" in proc.output() or not proc.alive(), 240), proc.output()
        time.sleep(0.5)  # the photo_path's reconstruction is running (dense preset: several seconds)
        assert "Gaussians in" not in proc.output(), "the reconstruction ended before the Ctrl-C: no test"
        t0 = time.monotonic()
        rc = proc.stop(signal.SIGINT, timeout=20.0)
        took = time.monotonic() - t0
    finally:
        proc.stop(signal.SIGKILL)
    assert rc == 0 and took < 3.0, f"ended {took:.1f} s after the Ctrl-C (status {rc}):\n{proc.output()[-2000:]}"


def test_a_ctrl_c_while_the_reconstructor_loads_is_not_held_by_it(tmp_path):
    """A Ctrl-C while the worker builds its reconstructor (get_reconstructor + warm_up: 2-8 s of JIT compiling nothing
    interrupts) waited STOP_WAIT_S for it, and the composed launch Ctrl-C'd in its first seconds logged 'mesh_fit
    reconstructor ready' after the Ctrl-C and ended 5-7 s later (tidy18, session 18). A worker still loading is not
    waited for (common.Loading), however long the wait allowed for an idle one (STOP_WAIT_S set to 30 s here); the
    warm-up is made to last, so the Ctrl-C always lands in it."""
    from rosgraph import ctrl_c_while_loading

    rc, took, out = ctrl_c_while_loading(
        "gaussian_head_ros.nodes.reconstruction_node:main",
        ["gaussian_head_ros.core.reconstruct.mesh_fit:MeshFitReconstructor.warm_up"],
        ["--ros-args", "-r", "__ns:=/loading_rec", "-p", "backend:=mesh_fit", "-p", "cache_avatar:=false"],
        tmp_path / "reconstruction_loading.log", count=1,
        sets={"gaussian_head_ros.nodes.reconstruction_node:STOP_WAIT_S": 30.0})
    assert rc in (0, -2, 130), out
    assert took < 5.0, f"{took:.1f} s to end after SIGINT:\n{out}"
    assert "reconstructor ready" not in out and "Traceback" not in out, out


def test_a_compressed_photos_header_is_parsed_once_by_the_worker_not_in_the_callback(monkeypatch):
    """The compressed-photo callback parsed the image's header for its animation note (imageio.animation_note: a copy
    of the message's bytes and Pillow's open, in the executor's thread), and the worker's decode parsed it again
    (s19). Now the callback only hands the bytes over; the worker's one decode gives the pixels and the note, which
    goes into this photo's notes (its statuses). The callback on a stand-in node (no ROS graph)."""
    import io
    from types import SimpleNamespace

    from PIL import Image

    from gaussian_head_ros.core import imageio
    from gaussian_head_ros.nodes.reconstruction_node import ReconstructionNode

    frames = [Image.new("RGB", (40, 30), c) for c in ((200, 30, 30), (30, 200, 30))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    opened = []
    real_open = imageio._open_header
    monkeypatch.setattr(imageio, "_open_header", lambda b: opened.append(len(b)) or real_open(b))
    jobs = []
    stand_in = SimpleNamespace(_take=lambda info, topic, frame_id, size: (), _param=lambda name: 40_000_000,
                               _submit_checked=lambda job, check: (check(), jobs.append(job)),
                               _operator=lambda frame_id: frame_id or "operator",
                               get_logger=lambda: pytest.fail("the callback has nothing to log"))
    ReconstructionNode._on_compressed(stand_in, _compressed_msg(buf.getvalue(), "waving"), None)
    assert opened == [] and len(jobs) == 1, opened  # nothing parsed in the callback
    assert jobs[0].notes == ()
    rgb, found = jobs[0].decode()
    assert opened == [len(buf.getvalue())] and tuple(rgb[15, 20]) == (200, 30, 30), opened
    assert found == ("an animated GIF: only its first frame is used as the photo",), found


def test_an_animated_photo_file_is_said_like_an_animated_photo_message(tmp_path):
    """A photo_path file that is an animated GIF was reconstructed from its first frame without a word (only photos on
    the topic were said to be animations; refuse18, s18). Its job's decode now gives the same note as a message's,
    which the worker says in the log and the photo's statuses. _submit_file and _read_file on a stand-in node (no ROS
    graph)."""
    from types import SimpleNamespace

    from PIL import Image

    from gaussian_head_ros.nodes.reconstruction_node import ReconstructionNode

    gif = tmp_path / "waving.gif"
    frames = [Image.new("RGB", (40, 30), c) for c in ((200, 30, 30), (30, 200, 30))]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    jobs = []
    stand_in = SimpleNamespace(_param=lambda name: "" if name == "operator_id" else 40_000_000,
                               _submit=lambda job, say=None: jobs.append(job))
    stand_in._file_job = lambda photo, file_budget=0: ReconstructionNode._file_job(stand_in, photo, file_budget)
    ReconstructionNode._submit_file(stand_in, str(gif))
    ReconstructionNode._read_file(stand_in, jobs[0])  # the worker reads the file (its bytes: the photo's key)
    rgb, found = jobs[0].decode()
    assert tuple(rgb[15, 20]) == (200, 30, 30) and jobs[0].operator_id == "waving"
    assert found == ("an animated GIF: only its first frame is used as the photo",), found


def test_photos_left_when_the_node_is_destroyed_get_stopped(rclpy_context):
    """A photo still waiting when the node stopped got no final status (the .msg said 'unless the node stops first'):
    a sender following its photo waited on. Destroyed by a process that goes on (a container, a test: the node can
    still publish), the node now ends each photo it leaves with STOPPED, stamped as that photo. (A Ctrl-C or SIGTERM
    shuts rclpy's context down before destroy_node runs: no status can go out then.) In-process: the photo is
    submitted while the reconstructor still loads, so it waits."""
    from builtin_interfaces.msg import Time as TimeMsg
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus
    from gaussian_head_ros.nodes.reconstruction_node import Job, ReconstructionNode

    node = ReconstructionNode(namespace="stopped_test", parameter_overrides=[])
    listener = rclpy_context.create_node("stopped_listener", namespace="stopped_test")
    got = []
    listener.create_subscription(AvatarStatus, "avatar/status", got.append, _latched())
    try:
        assert spin_until(listener, lambda: listener.count_publishers("avatar/status") == 1, 30)
        node._submit(Job(lambda: None, "alice", "alice", "operator/photo", stamp=TimeMsg(sec=77, nanosec=5)))
        node.destroy_node()
        assert spin_until(listener, lambda: any(s.code == AvatarStatus.STOPPED for s in got), 20), \
            [(s.code, s.message) for s in got]
        st = next(s for s in got if s.code == AvatarStatus.STOPPED)
        assert st.header.frame_id == "alice" and (st.photo_stamp.sec, st.photo_stamp.nanosec) == (77, 5), st
        assert "stopped while this photo waited" in st.message and not st.ok, st.message
    finally:
        listener.destroy_node()
        node._worker.join(60)  # it ends once its reconstructor has loaded (it sees the stop), before rclpy shuts down


def test_an_avatar_file_as_photo_path_is_published_as_it_is(rclpy_context, tmp_path):
    """`robot.launch.py photo:=me.ply` (the avatar `gaussian-head reconstruct` wrote, or one kept from an earlier run):
    the robot refused it, 'could not decode the compressed image (corrupt, truncated or not an image)', and came up
    with no face (user22, s22: no way to show a saved avatar on the display). Now the node publishes the file's avatar
    as it is, latched, OK 'loaded from the avatar file'; the same file without its .driving.npz is shown too, with a
    warning that it follows only the head pose. Labelled (operator_id parameter empty) by the operator id the file
    stores, else (no driving file: none stored) by its file name: user22's node labelled every file by its name
    (`gaussian-head reconstruct alice.jpg -o avatar.ply` showed as 'avatar'; review22)."""
    from gaussian_head_ros.core.avatar import driving_path, save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar
    from gaussian_head_ros.msg import AvatarStatus
    from gaussian_head_ros.nodes.conversions import msg_to_avatar

    made = synthetic_avatar(3000, seed=7, operator_id="someone")
    save_ply(made, tmp_path / "me.ply")
    proc = _start_node(tmp_path, "avatar_file", f"photo_path:={tmp_path / 'me.ply'}", "cache_avatar:=false")
    try:
        avatar, status = _late_join(rclpy_context, "avatar_file_peer", timeout=120, namespace=CACHE_NS)
        assert status is not None and status.code == AvatarStatus.OK, f"{status and status.message}\n{proc.output()}"
        assert "loaded from the avatar file" in status.message and not list(status.warnings), status.message
        assert avatar is not None and avatar.operator_id == "someone" and status.num_gaussians == 3000, avatar
        assert status.operator_id == "someone" and "avatar for 'someone'" in status.message, status.message
        assert np.array_equal(msg_to_avatar(avatar).means, made.means)
    finally:
        proc.stop()
    driving_path(tmp_path / "me.ply").unlink()
    proc = _start_node(tmp_path, "static_file", f"photo_path:={tmp_path / 'me.ply'}", "cache_avatar:=false")
    try:
        avatar, status = _late_join(rclpy_context, "static_file_peer", timeout=120, namespace=CACHE_NS)
        assert status is not None and status.code == AvatarStatus.OK, f"{status and status.message}\n{proc.output()}"
        assert "no driving file" in " ".join(status.warnings), list(status.warnings)
        assert avatar is not None and avatar.operator_id == "me" == status.operator_id, avatar
    finally:
        proc.stop()
    said = [line for line in proc.output().splitlines() if "no driving file" in line]
    assert len(said) == 1 and "[WARN]" in said[0] and "follows the head pose only" in said[0], said  # once, not twice


def _cache_kept(rclpy_context, tmp_path) -> None:
    """Start a node on an avatar file of 2000 Gaussians stored for 'kept' and stop it once it published: its cache
    (tmp_path/avatar.cache) then holds that face."""
    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    save_ply(synthetic_avatar(2000, seed=9, operator_id="kept"), tmp_path / "kept.ply")
    first = _start_node(tmp_path, "seed", f"photo_path:={tmp_path / 'kept.ply'}")
    try:
        avatar, _ = _late_join(rclpy_context, "seed_peer", timeout=120, namespace=CACHE_NS)
        assert avatar is not None and avatar.operator_id == "kept", first.output()
    finally:
        first.stop()


def test_a_start_up_photo_that_is_refused_leaves_the_cached_face(rclpy_context, tmp_path):
    """`robot.launch.py photo:=me.jpg` restarted with a photo path that is not there (misspelt, moved) or whose photo
    has no face: the start-up photo was refused and the node, which serves its cache only when started without
    photo_path, came up with no avatar at all, while the cache held the last face (user22, s22). A refused photo keeps
    the avatar published; at start-up that is the cached one: it is served, and its status says why."""
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus, GaussianAvatar

    _cache_kept(rclpy_context, tmp_path)
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((400, 300, 3), 180, np.uint8))  # a photo with no face
    for k, photo in enumerate((tmp_path / "typo.jpg", blank)):
        proc = _start_node(tmp_path, f"restart{k}", f"photo_path:={photo}")
        node = rclpy_context.create_node(f"restart_peer{k}", namespace=CACHE_NS)
        avatars, statuses = [], []
        node.create_subscription(GaussianAvatar, "avatar", avatars.append, _latched())
        node.create_subscription(AvatarStatus, "avatar/status", statuses.append, _latched(depth=10))
        try:  # the refusal, then the cache's OK (each status waits for the one before to be acknowledged)
            spin_until(node, lambda: avatars and any(s.code == AvatarStatus.OK for s in statuses), 120)
            assert avatars and avatars[-1].operator_id == "kept", f"no face after the restart:\n{proc.output()}"
            status = statuses[-1]
            assert status.code == AvatarStatus.OK and "restored from the cache" in status.message, status.message
            assert "start-up photo" in status.message and "was refused" in status.message, status.message
        finally:
            node.destroy_node()
            proc.stop()


def test_a_restart_with_the_same_start_up_photo_serves_its_cached_avatar(rclpy_context, tmp_path):
    """`robot.launch.py photo:=me.jpg` restarted with the same file: the node reconstructed it at every start (no face
    on the display meanwhile) although its cache held the avatar made of that very photo, which a start without
    photo_path serves at once (user40). Now a photo file is known by its bytes as a photo message is (_photo_key):
    the start-up photo whose avatar is cached is served from the cache (OK, 'not reconstructed again'; the cached
    message, its stamp when it was made), setting photo_path to it again is 'unchanged', and a file whose bytes
    changed (another operator's photo saved as me.jpg) is reconstructed."""
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus, GaussianAvatar

    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), _photo("obama_official.jpg", 600)[..., ::-1])
    stamps, logs = [], []
    for k, portrait in enumerate((None, None, "lp_d8_man_glasses.jpg")):
        if portrait:  # another operator's photo under the same name
            cv2.imwrite(str(photo), _photo(portrait, 600)[..., ::-1])
        proc = _start_node(tmp_path, f"same_photo{k}", f"photo_path:={photo}")
        node = rclpy_context.create_node(f"same_photo_peer{k}", namespace=CACHE_NS)
        avatars, statuses = [], []
        node.create_subscription(GaussianAvatar, "avatar", avatars.append, _latched())
        node.create_subscription(AvatarStatus, "avatar/status", statuses.append, _latched(depth=10))
        try:
            t0 = time.monotonic()
            spin_until(node, lambda: avatars and any(s.code == AvatarStatus.OK for s in statuses), 180)
            assert avatars and statuses, f"no face after start {k}:\n{proc.output()}"
            waited_s = time.monotonic() - t0
            ok = [s for s in statuses if s.code == AvatarStatus.OK][-1]
            stamps.append((avatars[-1].header.stamp.sec, avatars[-1].header.stamp.nanosec))
            print(f"start {k}: face after {waited_s:.1f} s: {ok.message}")
            assert ok.header.frame_id == "me" and avatars[-1].operator_id == "me", (ok.header.frame_id, ok.message)
            if k == 1:
                assert "restored from the cache" in ok.message and "not reconstructed again" in ok.message, ok.message
                assert "ready:" not in proc.output(), proc.output()
                statuses.clear()
                assert _set_param(node, "photo_path", str(photo), f"{CACHE_NS}/reconstruction_node").successful
                spin_until(node, lambda: statuses, 60)
                assert statuses and statuses[-1].code == AvatarStatus.OK, proc.output()
                assert "unchanged" in statuses[-1].message, statuses[-1].message
                assert len(avatars) == 1, "the same avatar published again"
            else:
                assert "ready:" in ok.message and "ready:" in proc.output(), ok.message
        finally:
            node.destroy_node()
            proc.stop()
    assert stamps[1] == stamps[0] and stamps[2] != stamps[0], stamps


def test_a_start_up_photo_served_from_the_cache_reads_the_cache_once(rclpy_context, tmp_path, monkeypatch):
    """A node started with photo_path whose cache holds the avatar of that photo read the whole cache file twice:
    once for the note naming the photo it was made from (_cached_made_from), again to serve it (_restore_cache),
    5.5 MB each for a 60k-Gaussian avatar (user43, s43). Now the entry read first is served. So is a start-up photo
    that is refused (its cached face served after all). In-process nodes; the cache written by the first."""
    from rclpy.parameter import Parameter

    from gaussian_head_ros.core import avatar_cache
    from gaussian_head_ros.nodes import reconstruction_node
    from gaussian_head_ros.nodes.reconstruction_node import ReconstructionNode

    photo, blank = tmp_path / "me.jpg", tmp_path / "wall.png"
    cv2.imwrite(str(photo), _photo("obama_official.jpg", 500)[..., ::-1])
    cv2.imwrite(str(blank), np.full((400, 300, 3), 180, np.uint8))  # no face: refused
    cache = tmp_path / "avatar.cache"
    reads = []
    real_read = avatar_cache.read_entry
    monkeypatch.setattr(reconstruction_node.avatar_cache, "read_entry", lambda *a: reads.append(a) or real_read(*a))

    def start(name, path):
        node = ReconstructionNode(namespace=f"/once_{name}", parameter_overrides=[
            Parameter("cache_path", value=str(cache)), Parameter("photo_path", value=str(path)),
            Parameter("preset", value="fast")])
        try:
            assert wait_until(lambda: node._shown is not None and not node._busy and node._pending is None, 180), \
                node.state
            return node._shown.operator_id, node.cache_state
        finally:
            node.destroy_node()

    assert start("first", photo) == ("me", f"written to {cache}")  # reconstructed: the cache had nothing
    for name, path in (("again", photo), ("refused", blank)):
        reads.clear()
        assert start(name, path) == ("me", f"restored from {cache}")
        assert len(reads) == 1, f"start with {path.name}: the cache read {len(reads)} times"


def test_a_cache_named_at_run_time_gets_the_face_shown_so_a_restart_keeps_it(rclpy_context, tmp_path):
    """`ros2 param set /reconstruction_node cache_path /var/robot_a.avatar` (two launches in one namespace shared the
    default file: give each its own) or `cache_avatar true` on a running node changed nothing on disk: the new file was
    written only with the next avatar, so a robot restarted with that cache_path before any new photo came up with no
    face (user39, s39). Now the worker writes the avatar shown into the file just named; a node started on it serves
    that face."""
    import signal

    from rosgraph import spin_until

    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    save_ply(synthetic_avatar(2000, seed=11, operator_id="moved"), tmp_path / "moved.ply")
    off, named = tmp_path / "off.avatar", tmp_path / "robot_a.avatar"
    proc = _start_node(tmp_path, "cache_named", f"photo_path:={tmp_path / 'moved.ply'}", "cache_avatar:=false",
                       f"cache_path:={off}")
    node = rclpy_context.create_node("cache_named_peer", namespace=CACHE_NS)
    try:
        before, _ = _late_join(rclpy_context, "cache_named_before", timeout=120, namespace=CACHE_NS)
        assert before is not None and before.operator_id == "moved", proc.output()
        assert not off.exists(), "cache_avatar false wrote the cache"
        assert _set_param(node, "cache_avatar", True, f"{CACHE_NS}/reconstruction_node").successful
        assert spin_until(node, lambda: f"avatar cache: written to {off}" in proc.output(), 30), proc.output()
        assert _set_param(node, "cache_path", str(named), f"{CACHE_NS}/reconstruction_node").successful
        assert spin_until(node, lambda: f"avatar cache: written to {named}" in proc.output(), 30), proc.output()
    finally:
        node.destroy_node()
        proc.stop(signal.SIGKILL)
    proc = _start_node(tmp_path, "cache_named_restart", f"cache_path:={named}")
    try:
        after, status = _late_join(rclpy_context, "cache_named_after", timeout=120, namespace=CACHE_NS)
        assert after is not None, f"no face after the restart on the cache named at run time:\n{proc.output()}"
        assert after.operator_id == "moved" and after.header.stamp == before.header.stamp
        assert bytes(after.gaussians.data) == bytes(before.gaussians.data)
        assert status is not None and "restored from the cache" in status.message, status
    finally:
        proc.stop()


def test_a_start_up_avatar_file_or_pipe_that_cannot_be_read_is_answered(rclpy_context, tmp_path):
    """photo_path at start-up: a FIFO (`photo:=` a pipe) blocked the node's constructor in open(), where the avatar-file
    check read its first bytes (the worker's read_file refuses it 'not a regular file' without opening it), and an
    avatar .ply whose .driving.npz is broken raised BadZipFile out of load_ply: no status either way, and no cached face
    (review22). Each is now refused with its reason, BAD_IMAGE."""
    from rosgraph import spin_until

    from gaussian_head_ros.core.avatar import driving_path, save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar
    from gaussian_head_ros.msg import AvatarStatus

    os.mkfifo(tmp_path / "pipe.jpg")
    save_ply(synthetic_avatar(500, seed=5), tmp_path / "me.ply")
    driving_path(tmp_path / "me.ply").write_bytes(b"PK\x03\x04 not a zip")
    for k, (photo, reason) in enumerate(((tmp_path / "pipe.jpg", "not a regular file"),
                                          (tmp_path / "me.ply", "cannot read the driving file"))):
        proc = _start_node(tmp_path, f"unreadable{k}", f"photo_path:={photo}", "cache_avatar:=false")
        node = rclpy_context.create_node(f"unreadable_peer{k}", namespace=CACHE_NS)
        statuses = []
        node.create_subscription(AvatarStatus, "avatar/status", statuses.append, _latched())
        try:
            assert spin_until(node, lambda: statuses, 60), f"no status for {photo.name}:\n{proc.output()}"
            assert statuses[0].code == AvatarStatus.BAD_IMAGE and reason in statuses[0].message, statuses[0].message
        finally:
            node.destroy_node()
            proc.stop()


def test_an_avatar_file_over_the_budget_is_refused_and_the_face_stays(rclpy_context, tmp_path):
    """An avatar .ply with more Gaussians than the display takes (a 3DGS scan) was published OK, then refused by
    render_node (review22): the operator was told OK and the robot showed no new face. The file is now counted from its
    header against max_file_gaussians (render_node's default max_gaussians) and refused, BAD_IMAGE saying its count
    and the budget (status and log); the face already published stays (here: the cached one, at start-up)."""
    from rosgraph import spin_until

    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar
    from gaussian_head_ros.msg import AvatarStatus, GaussianAvatar

    save_ply(synthetic_avatar(6000, seed=3, operator_id="scan"), tmp_path / "scan.ply")
    _cache_kept(rclpy_context, tmp_path)
    proc = _start_node(tmp_path, "over_budget", f"photo_path:={tmp_path / 'scan.ply'}", "max_file_gaussians:=5000")
    node = rclpy_context.create_node("over_budget_peer", namespace=CACHE_NS)
    avatars, statuses = [], []
    node.create_subscription(GaussianAvatar, "avatar", avatars.append, _latched())
    node.create_subscription(AvatarStatus, "avatar/status", statuses.append, _latched(depth=10))
    try:
        # the refusal's BAD_IMAGE, or the cache's OK after it that repeats it: a status subscriber joining late gets
        # the last one only (latched; this test failed once of three under load, review23)
        said = "6000 Gaussians, above the budget of 5000"
        spin_until(node, lambda: avatars and any(said in s.message for s in statuses), 120)
        refused = [s for s in statuses if said in s.message]
        assert refused, f"{[(s.code, s.message) for s in statuses]}\n{proc.output()}"
        assert refused[0].code == AvatarStatus.BAD_IMAGE or "was refused" in refused[0].message, refused[0].message
        assert [a.operator_id for a in avatars] == ["kept"], [a.operator_id for a in avatars]
        assert "6000 Gaussians, above the budget of 5000" in proc.output()
    finally:
        node.destroy_node()
        proc.stop()


def test_an_avatar_file_refused_for_its_size_is_published_once_max_file_gaussians_allows_it(rclpy_context, tmp_path):
    """A file refused for max_file_gaussians stayed refused after `ros2 param set ... max_file_gaussians <its count>`:
    the set changed nothing until photo_path was set again (render_node loads an avatar it refused for its size once
    its max_gaussians allows it; review23). Now the raise publishes it: OK with its count, the avatar on /avatar."""
    from rosgraph import spin_until

    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar
    from gaussian_head_ros.msg import AvatarStatus, GaussianAvatar

    save_ply(synthetic_avatar(6000, seed=3, operator_id="scan"), tmp_path / "scan.ply")
    proc = _start_node(tmp_path, "raise_budget", f"photo_path:={tmp_path / 'scan.ply'}", "max_file_gaussians:=5000",
                       "cache_avatar:=false")
    node = rclpy_context.create_node("raise_budget_peer", namespace=CACHE_NS)
    avatars, statuses = [], []
    node.create_subscription(GaussianAvatar, "avatar", avatars.append, _latched())
    node.create_subscription(AvatarStatus, "avatar/status", statuses.append, _latched(depth=10))
    try:
        assert spin_until(node, lambda: any(s.code == AvatarStatus.BAD_IMAGE for s in statuses), 120), (
            [(s.code, s.message) for s in statuses], proc.output())
        assert "raising max_file_gaussians to 6000 publishes it" in statuses[-1].message, statuses[-1].message
        assert not avatars
        assert _set_param(node, "max_file_gaussians", 6000, target=f"{CACHE_NS}/reconstruction_node").successful
        assert spin_until(node, lambda: avatars and statuses[-1].code == AvatarStatus.OK, 60), (
            [(s.code, s.message) for s in statuses], proc.output()[-3000:])
        assert [a.operator_id for a in avatars] == ["scan"] and statuses[-1].num_gaussians == 6000, statuses[-1]
    finally:
        node.destroy_node()
        proc.stop()


def test_an_avatar_files_default_budget_is_the_displays():
    """An avatar file is checked against render_node's default max_gaussians: one number
    (core.avatar.DISPLAY_MAX_GAUSSIANS), not two that can drift apart; its own parameter, so that showing a larger file
    does not also raise the Gaussian budget of the avatars made from photos (max_gaussians); changing it rebuilds
    no reconstructor."""
    from gaussian_head_ros.core.avatar import DISPLAY_MAX_GAUSSIANS
    from gaussian_head_ros.nodes import reconstruction_node, render_node

    assert render_node.PARAMS["max_gaussians"].default == DISPLAY_MAX_GAUSSIANS
    assert reconstruction_node.PARAMS["max_file_gaussians"].default == DISPLAY_MAX_GAUSSIANS
    assert "max_file_gaussians" not in reconstruction_node._REBUILD


def test_an_avatars_driving_file_given_as_photo_path_is_taken_as_an_avatar_file_and_named(tmp_path):
    """photo_path given `me.driving.npz` (the avatar's other file) goes the avatar-file way, whose loader says to give
    its .ply; as a photo it was refused as an image that cannot be decoded (user28, s28). A photo stays a photo."""
    from gaussian_head_ros.core.avatar import ply_count, save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar
    from gaussian_head_ros.nodes.reconstruction_node import _is_avatar_file

    written = save_ply(synthetic_avatar(500, seed=3), tmp_path / "me.ply")
    driving = next(p for p in written if p.name.endswith(".driving.npz"))
    assert _is_avatar_file(str(tmp_path / "me.ply")) and _is_avatar_file(str(driving))
    assert not _is_avatar_file(str(shared("portraits", "obama_speech.jpg")))
    with pytest.raises(ValueError, match=r"driving file, not the avatar: give its \.ply \(me\.ply"):
        ply_count(driving)


def test_no_photo_and_photo_path_set_empty_say_what_the_node_waits_for(rclpy_context, tmp_path):
    """Started without photo_path and with the cache off, the node said only 'reconstructor ready'; photo_path set
    empty at run time was taken without a word while the face stayed (user51): both say the photo topics it waits on."""
    from rosgraph import set_parameter

    from gaussian_head_ros.core.avatar import save_ply
    from gaussian_head_ros.core.synthetic import synthetic_avatar

    save_ply(synthetic_avatar(500, seed=3, operator_id="filed"), tmp_path / "filed.ply")
    node = rclpy_context.create_node("empty_photo_peer")
    proc = _start_node(tmp_path, "empty", "cache_avatar:=false", "photo_path:=''")
    waiting = f"waiting for a photo on {CACHE_NS}/operator/photo or {CACHE_NS}/operator/photo/compressed"
    try:
        assert wait_until(lambda: f"no photo_path and cache_avatar off: no avatar until a photo comes; {waiting}"
                          in proc.output(), 30), proc.output()
        target = f"{CACHE_NS}/reconstruction_node"
        assert set_parameter(node, target, "photo_path", str(tmp_path / "filed.ply")).successful
        assert wait_until(lambda: "avatar for 'filed' loaded from the avatar file" in proc.output(), 30), proc.output()
        assert set_parameter(node, target, "photo_path", "").successful
        said = (f"photo_path set empty: nothing to reconstruct, nothing taken back: the avatar shown ('filed') stays "
                f"published, latched; {waiting}")
        assert wait_until(lambda: said in proc.output(), 10), proc.output()
    finally:
        node.destroy_node()
        proc.stop()


def _wait_idle(peer):
    """Wait until the node is idle: two of its /diagnostics in a row (1 s apart) say state 'ready', no photo waiting.
    Waiting for the start-up photo's 'avatar for ...' line, a photo_path set in the ~20 ms of its cache write after it
    was said to wait for 'trump_official' (the user53 test below failed so, run alone), and a start-up photo that an
    earlier test's photo replaced never says it (user54)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph import spin_until

    ready = []

    def seen(msg):
        for st in msg.status:
            if st.name.endswith("avatar reconstruction"):
                values = {kv.key: kv.value for kv in st.values}
                ready.append(values.get("state") == "ready" and values.get("last_code", "") != "")

    sub = peer["node"].create_subscription(DiagnosticArray, "/diagnostics", seen, 10)
    try:
        assert spin_until(peer["node"], lambda: ready[-2:] == [True, True], 180), peer["proc"].output()[-3000:]
    finally:
        peer["node"].destroy_subscription(sub)


def test_a_photo_path_set_at_run_time_is_said_and_one_set_during_its_reconstruction_waits_for_it(peer, tmp_path):
    """`ros2 param set /reconstruction_node photo_path a.jpg`, then another photo_path while a.jpg was reconstructed
    (user53, two robots on one machine): 'Set parameter successful' twice, and the robot's log said nothing until
    a.jpg's avatar was ready (23 s here), nor that the second photo waited for it (BUSY on avatar/status only). Now
    each set is said: reconstructed now, or waiting for the reconstruction running (named); the face shown stays. The
    second photo here is a grey picture, refused at once as no face, so that the node is idle again soon."""
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus

    node, first, grey = peer["node"], shared("portraits", "obama_official.jpg"), tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((256, 256, 3), 128, np.uint8))
    _wait_idle(peer)  # the start-up photo's avatar and its cache write: the node idle
    start = len(peer["proc"].output())
    peer["statuses"].clear()
    assert _set_param(node, "photo_path", str(first)).successful
    spin_until(node, lambda: False, 1.0)  # the worker takes it
    assert _set_param(node, "photo_path", str(grey)).successful
    done = lambda: {s.operator_id for s in peer["statuses"]  # noqa: E731
                    if s.code != AvatarStatus.BUSY} >= {"obama_official", "grey"}
    assert spin_until(node, done, 120), peer["proc"].output()[start:]
    log = peer["proc"].output()[start:]
    running = f"'obama_official' from photo_path {first}"
    assert f"{running} reconstructed now; the avatar shown (" in log, log
    assert f"'grey' from photo_path {grey} waits for the reconstruction running now ({running}) to end, then is " \
           "reconstructed (a newer photo replaces it)" in log, log


def test_a_photo_path_refused_at_once_is_said_set_before_its_refusal(peer, tmp_path):
    """`ros2 param set /reconstruction_node photo_path` of a file refused as it is read (a few pixels) on an idle robot
    (user54): the log said the refusal first and then '... reconstructed now; the avatar shown ('x') stays until then;
    its verdict follows on /avatar/status', a verdict already given (3 of 3 such files under avatar.launch.py here):
    the worker took the photo and refused it before the parameter callback said the set. Each set's line now comes
    before anything the worker says of that photo. (Empty and cut files are refused in the set's reply now:
    test_a_photo_path_that_is_no_photo_is_refused_in_the_reply_and_the_photo_waiting_stays.)"""
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus

    node = peer["node"]
    files = []
    for i in range(3):
        files += [tmp_path / f"dot{i}.png", tmp_path / f"tiny{i}.jpg"]
        cv2.imwrite(str(files[-2]), np.full((12, 15, 3), 128, np.uint8))
        cv2.imwrite(str(files[-1]), np.full((9, 7, 3), 200, np.uint8))
    for f in files:
        start = len(peer["proc"].output())
        peer["statuses"].clear()
        assert _set_param(node, "photo_path", str(f)).successful
        done = lambda: any(s.operator_id == f.stem and s.code != AvatarStatus.BUSY  # noqa: E731
                           for s in peer["statuses"])
        assert spin_until(node, done, 120), peer["proc"].output()[start:]  # (after a reconstruction still running)
        assert spin_until(node, lambda: " refused: " in peer["proc"].output()[start:], 10)
        log = peer["proc"].output()[start:]
        said = log.find(f"'{f.stem}' from photo_path {f} ")  # reconstructed now (or waits for the one running)
        refused = log.find(f"photo '{f.stem}' from photo_path {f} refused: ")
        assert 0 <= said < refused, log


def test_a_photo_path_that_is_no_photo_is_refused_in_the_reply_and_the_photo_waiting_stays(peer, tmp_path):
    """photo_path set to an empty file, a text file named .jpg or a JPEG cut short: refused in a file's words
    ('<file> is empty (0 bytes)', '<file>: could not decode the photo ...'; user54), and now in the set's reply, as
    photo_node's `photo` is, and at once on avatar/status and in the log, while the photo waiting for the worker
    stays. Before (user63), the set was answered 'Set parameter successful', the file replaced the photo waiting
    (SUPERSEDED: a robot's start-up photo was dropped unreconstructed) and was refused only once the worker read it,
    after the reconstruction running (17 s at load 16)."""
    from rosgraph import spin_until

    from gaussian_head_ros.msg import AvatarStatus

    node = peer["node"]
    empty, text, cut = tmp_path / "nothing.jpg", tmp_path / "notes.jpg", tmp_path / "halfway.jpg"
    empty.write_bytes(b"")
    text.write_text("hello\n")
    jpeg = cv2.imencode(".jpg", _photo("obama_official.jpg", 400)[..., ::-1])[1].tobytes()
    cut.write_bytes(jpeg[:len(jpeg) // 2])
    running, waiting = tmp_path / "u63_running.png", tmp_path / "u63_waiting.png"
    cv2.imwrite(str(running), _photo("business_person.png", 600)[..., ::-1])
    cv2.imwrite(str(waiting), _photo("lp_d9_woman_turned.jpg", 600)[..., ::-1])
    peer["statuses"].clear()
    start = len(peer["proc"].output())
    assert _set_param(node, "photo_path", str(running)).successful
    assert _set_param(node, "photo_path", str(waiting)).successful  # waits for the one running
    for f, words in ((empty, f"{empty} is empty (0 bytes)"),
                     (text, f"{text}: could not decode the photo (corrupt, truncated or not an image)"),
                     (cut, f"{cut}: could not decode the photo (corrupt, truncated or not an image: a JPEG cut short, "
                           "with no end-of-image marker FF D9)")):
        got = _set_param(node, "photo_path", str(f))
        assert not got.successful and got.reason == words, got.reason
        refusal = lambda: [s for s in peer["statuses"] if s.operator_id == f.stem]  # noqa: E731
        assert spin_until(node, refusal, 10), peer["proc"].output()[start:]  # at once, not after the reconstruction
        assert refusal()[0].code == AvatarStatus.BAD_IMAGE and refusal()[0].message == words, refusal()[0].message
        said = f"photo '{f.stem}' from photo_path {f} refused: {words}"
        # the log line reaches the process's output beside the status, not before it (CI, session 63)
        assert spin_until(node, lambda: said in peer["proc"].output()[start:], 10), peer["proc"].output()[start:]
    final = lambda name: [s for s in peer["statuses"]  # noqa: E731
                          if s.operator_id == name and s.code != AvatarStatus.BUSY]
    assert spin_until(node, lambda: final("u63_waiting"), 180), peer["proc"].output()[start:]
    assert [s.code for s in final("u63_running")] == [AvatarStatus.OK], final("u63_running")
    assert [s.code for s in final("u63_waiting")] == [AvatarStatus.OK], final("u63_waiting")  # not SUPERSEDED




def test_backend_rar_set_without_a_checkpoint_is_refused_without_importing_torch(rclpy_context, tmp_path):
    """`ros2 param set /reconstruction_node backend rar` on a robot (user65, load ~20): the right refusal ('the rar
    reconstructor needs a checkpoint ...'), but 36 s after the set (5.7 s for any other): checking the option imported
    the rar module, and with it torch, in the node's executor, which heard nothing meanwhile (no photo taken, no
    /diagnostics). The module imports torch only to build or run a model now: the refusal comes without it (its
    libraries not mapped in the node)."""
    from rosgraph import Proc, executable, spin_until

    ns = "/u65_rar"
    proc = Proc(executable("reconstruction_node") + ["--ros-args", "-r", f"__ns:={ns}", "-p", "cache_avatar:=false"],
                tmp_path / "reconstruction_node.log")
    node = rclpy_context.create_node("u65_rar_setter")
    try:
        assert spin_until(node, lambda: "reconstructor ready" in proc.output() or not proc.alive(), 240), proc.output()
        r = _set_param(node, "backend", "rar", f"{ns}/reconstruction_node")
        assert not r.successful and "needs a 'checkpoint'" in r.reason, r.reason
        r = _set_param(node, "checkpoint", str(tmp_path / "none.pt"), f"{ns}/reconstruction_node")
        assert r.successful, r.reason  # (unused by mesh_fit: said so)
        assert "libtorch" not in open(f"/proc/{proc.p.pid}/maps").read(), "torch was imported to answer"
    finally:
        node.destroy_node()
        proc.stop()
