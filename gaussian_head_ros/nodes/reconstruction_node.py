"""reconstruction_node: operator photo -> latched GaussianAvatar, plus a latched status saying how it went.

Subscribes `operator/photo` (sensor_msgs/Image) and `operator/photo/compressed` (sensor_msgs/CompressedImage),
reliable, raw photos keep-last 1 and compressed ones keep-last 32 (PHOTO_DEPTH), each both transient local (a photo
latched before this node started is used) and volatile (volatile publishers work too); the optional `photo_path`
parameter reconstructs a photo file at start-up and whenever it is set; an avatar file there (a .ply from `gaussian-head
reconstruct`, its .driving.npz beside it) is published as it is, not reconstructed (a robot shows an avatar made
elsewhere, or one kept from an earlier run, with no photo; it was refused as 'not an image', user22).
Publishes `avatar` (gaussian_head_ros/GaussianAvatar) and `avatar/status` (gaussian_head_ros/AvatarStatus),
both reliable + transient local, depth 1 (latched: a late joiner gets the current avatar and the result of
the last photo), and `/diagnostics` once a second. Statuses go out in order, each once every reader has
acknowledged the one before (at most 5 s later: nodes/common.InOrderLatched), so a reader across a lossy link gets
every status of its photo, not only the newest; a reader that stops acknowledging (killed, still matched) holds two
statuses 5 s each, then the next ones go out as they come until every reader acknowledges again.

Callbacks only keep the newest photo; a worker thread decodes and reconstructs it. A photo that arrives
during a reconstruction replaces any photo still waiting (newest wins, nothing queues up) and gets a BUSY
status; the photo it replaces gets a SUPERSEDED status, its final one (each status carries its photo's
header.stamp as photo_stamp, so a sender tells its photo's statuses from those of an earlier photo under the same
frame_id). Each sender's photos are taken in the order it sent them; the ones DDS dropped before the node took
them (a raw photo replaced by a newer raw one while the node was busy) get no status, and are counted (PublisherSequences) in a warning
of each status of the next photo taken from that sender, the log and /diagnostics (photos_lost). A photo that cannot
make an avatar (no face, too small, turned away, unreadable) gets a status saying why, and the avatar already published
stays published. A photo message whose fields or bytes show it cannot be decoded (empty, truncated, an unsupported
encoding, data shorter than its size: imageio.check_raw / check_compressed) is refused as it arrives, and the photo
waiting for the worker stays. A photo is the same photo by its decoded pixels (core.reconstruct.photo_key, with the
operator id, the reconstructor's parameters, checkpoint content and code, and frame_id): the photo the published
avatar was made from, sent again however it comes (a restarted photo_node's latched photo; photo_node's latched photo
reaching a restarted node whose cache holds that avatar; the robot's photo_path file, then the same file from
photo_node, or the other way round; a raw Image of its pixels), is decoded, answered OK at once saying the avatar is
kept and why (log and avatar/status; counted: kept) and not reconstructed again, and the avatar stays published as it
was (latched: a late joiner gets it). A parameter that makes avatars, set since, makes it again. The start-up
photo_path whose avatar is in the cache is served from there (it was reconstructed at every start, the display
without a face meanwhile; user40); the cache keeps the key beside the avatar.
`operator_id` is the parameter when set, else the photo's header.frame_id (for `photo_path`: else the operator id
an avatar file stores, else the file's name). A status's header.frame_id is its photo's; for `photo_path`, the one
photo_node would send the file under: `operator_id` when set, else the file's name. An avatar file with more Gaussians than `max_file_gaussians` (render
node's default max_gaussians) is refused, as the display would refuse it.

A restart keeps the face (core/avatar_cache.py): each avatar published is also written to `cache_path`
(atomically); a node started without `photo_path` publishes the cached message again, latched, byte for byte (the
same Gaussians and header stamp: when it was made), labelled by its current parameters as a new avatar would be:
header frame_id `frame_id`, and `operator_id` when that is set (else the cached one), with an OK status saying it
came from the cache; so does a node whose start-up `photo_path` photo is refused (after the refusal's status). A cache
that cannot be read,
is corrupt or is not a valid avatar is said (log, status, diagnostics) and ignored. `cache_avatar:=false` turns
both off.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image, PointCloud2
from builtin_interfaces.msg import Time as TimeMsg
from std_msgs.msg import Header

from gaussian_head_ros.core import avatar_cache, files, imageio
from gaussian_head_ros.core.avatar import DISPLAY_MAX_GAUSSIANS, driving_path, load_ply, ply_count
from gaussian_head_ros.core.files import DRIVING_SUFFIX, is_ply
from gaussian_head_ros.core.reconstruct import (BACKENDS, INTERNAL_ERROR, OK, ReconstructionError, check_options,
                                                get_reconstructor, option_names, photo_key, reconstructor_key)
from gaussian_head_ros.core.reconstruct.framing import FramingConfig
from gaussian_head_ros.core.reconstruct.mesh_fit import PRESETS as MESH_FIT_PRESETS
from gaussian_head_ros.core.reconstruct.mesh_fit import MeshFitConfig
from gaussian_head_ros.core.settings import setting, settings
from gaussian_head_ros.msg import AvatarStatus
from gaussian_head_ros.msg import GaussianAvatar as GaussianAvatarMsg
from gaussian_head_ros.nodes.common import (InOrderLatched, LatchedReaders, Loading, best_effort_publishers,
                                            companion_topic, declare_settings, diagnostics, endpoint_node,
                                            log_core_under, release_free_memory, reliable_subscription_events, run,
                                            steady_timer)
from gaussian_head_ros.nodes.conversions import avatar_to_cloud, avatar_to_msg, msg_to_avatar, stamp_utc_text, status_msg


@dataclass
class ReconstructionNodeSettings:
    """reconstruction_node's own parameters; the backends' options come from their configs (below)."""

    backend: str = setting("mesh_fit", "reconstructor: mesh_fit (training-free) or rar (learned; needs a checkpoint)",
                           choices=tuple(BACKENDS))
    preset: str = setting("default", "mesh_fit preset: fast, default or dense", choices=tuple(MESH_FIT_PRESETS))
    checkpoint: str = setting("", "rar: path of a checkpoint written by 'gaussian-head train' (never downloaded)")
    device: str = setting("auto", "rar: torch device, auto (CUDA when available), cpu or cuda")  # rar checks it
    backbone_weights: str = setting("", "rar: where the checkpoint's frozen backbone lies now (its WebSSL folder, or "
                                        "the backbone-<hash>/ folder its training wrote), when neither where training "
                                        "read it nor beside the checkpoint; empty: those two places")
    operator_id: str = setting("", "operator id for every avatar made or restored after it is set (the one published "
                                   "keeps its own); empty: the photo's header.frame_id (or the id an avatar file "
                                   "stores, or the file name)")
    photo_path: str = setting("", "a photo file reconstructed at start-up and whenever it is set, or an avatar file (.ply from "
                                  "'gaussian-head reconstruct', its .driving.npz beside it) published as it is; empty: "
                                  "wait for operator/photo")
    frame_id: str = setting("head", "header.frame_id of the avatars (and avatar/cloud) published after it is set, "
                                    "its head frame (the one published keeps its own until the next photo)", frame=True)
    cache_avatar: bool = setting(True, "keep the last published avatar in cache_path and publish it again at start-up "
                                       "when photo_path is empty (a restarted node still serves the face)")
    cache_path: str = setting("", "file of the avatar cache; empty: $ROS_HOME/gaussian_head_ros/[domain<ROS_DOMAIN_ID>_]"
                                  "<namespace>_reconstruction_node.avatar (ROS_HOME defaults to ~/.ros; no domain "
                                  "prefix in domain 0)")
    max_file_gaussians: int = setting(DISPLAY_MAX_GAUSSIANS, "an avatar file (photo_path) with more Gaussians is "
                                      "refused, as render_node's max_gaussians (this default) would refuse it",
                                      range=(1, 10_000_000))


_BUDGET = settings(MeshFitConfig, only=("max_gaussians",))["max_gaussians"]
PARAMS = {  # parameter name -> Setting
    **settings(ReconstructionNodeSettings),
    **settings(FramingConfig, only=("max_pixels", "min_face_px", "max_yaw_deg")),
    "max_gaussians": _BUDGET.replace(default=0, range=(0, _BUDGET.range[1]), description=(
        "mesh_fit: Gaussian budget of an avatar; 0 = the preset's (fast 30k, default 60k, dense 120k), else "
        f"{_BUDGET.range[0]}..{_BUDGET.range[1]} (the range describe shows starts at 0 for that 0)")),
}
NOT_GIVEN = {"max_gaussians": 0}  # parameter values that mean "the backend's own default": not passed on
_NODE_ONLY = ("backend", "operator_id", "photo_path", "frame_id", "cache_avatar", "cache_path", "max_file_gaussians")
_REBUILD = tuple(n for n in PARAMS if n not in _NODE_ONLY[1:])  # a change rebuilds the reconstructor
_MAKES_AVATAR = ("backend", "preset", "checkpoint", "max_gaussians")  # a change makes another avatar of a photo


def reconstructor_options(values: dict) -> dict:
    """Parameter values -> the options of the chosen backend: the parameters named like one of its options
    (its class's OPTIONS), whatever the backend, except values that mean "not given" (NOT_GIVEN)."""
    names = option_names(values["backend"])
    return {k: v for k, v in values.items()
            if k in names and k not in _NODE_ONLY and not (k in NOT_GIVEN and v == NOT_GIVEN[k])}


def unused_by_backend(backend: str, names) -> dict[str, tuple[str, ...]]:
    """{name: the backends that take it} for each parameter among `names` that makes avatars or builds the
    reconstructor but that `backend` does not take (not among its OPTIONS): a mesh_fit `preset` or `max_gaussians`
    under rar, a rar `checkpoint` or `device` under mesh_fit. Set at run time, such a parameter was said to apply to the
    next photo reconstructed, and the photo sent again as told was answered 'unchanged' (user60)."""
    taken = option_names(backend)
    return {n: tuple(b for b in BACKENDS if n in option_names(b)) for n in names
            if n in _REBUILD and n != "backend" and n not in taken}


def check_value(name: str, value) -> None:
    """Raise ValueError when one parameter value is outside its range or choices; max_gaussians is 0 (the
    preset's) or within mesh_fit's budget range; cache_path (when set) can be the cache file (avatar_cache.check_path);
    frame_id names a tf frame (its Setting's `frame` check)."""
    PARAMS[name].check(value)
    if name == "max_gaussians" and value != NOT_GIVEN[name]:
        _BUDGET.check(value)
    if name == "cache_path" and value:  # a directory (or below a file) was said only at the next write (user18)
        avatar_cache.check_path(value)


def check_values(values: dict) -> None:
    """Raise ValueError when a set of parameter values (name -> value, all of them) is not acceptable.
    (A photo_path that does not exist is not a bad setting: it is a photo that cannot be read.)"""
    for name, value in values.items():
        check_value(name, value)
    check_options(values["backend"], **reconstructor_options(values))


# The photo readers' history (reliable): photos a reader holds while the node's executor is held up (a reconstruction
# keeps Python busy; under load a callback waited over a second). A keep-last reader replaces its oldest sample beyond
# its depth before any callback sees it, and that photo gets no status at all (user14, s14: of three photos 1 s apart
# from one sender, the middle one). DDS keeps one history per reader, not per sender: another sender's burst pushed
# a photo out of a keep-last 4 reader, and the node never learnt of it, so nothing counted it either (user16, s16:
# a latched one-photo sender in the middle of another's burst of 12, 3 of 3). Compressed photos (photo_node's, the
# README's snippet: a phone JPEG is 1-5 MB) are read keep-last 32: every one DDS delivers waits in the reader until
# a callback takes it (a callback keeps only the newest photo, so what waits is what arrived during one hold-up),
# unless more than 32 arrive within one hold-up. Not keep-all: that let a flood of photos grow the node without
# bound (Fast DDS's default limit is 5000 samples per reader, Cyclone's none; review16, s16); 32 bounds what waits
# at 2 readers x 32 x 5 MB. Raw ones (a 1080p rgb8 photo is 6 MB, one at max_pixels
# 120 MB) are read keep-last 1. Each topic has two readers (transient local and volatile) that a latched sender's
# samples both reach.
PHOTO_DEPTH = {"compressed": 32, "raw": 1}


class PublisherSequences:
    """Which photo samples to take, and how many a publisher sent that never reached this node, from the sample's
    publication sequence number (DDS numbers each writer's samples 1, 2, 3, ...; rclpy's message info gives it with the
    writer's gid). A sample at or below the last taken from its writer was taken already (it reaches both readers of
    a topic) or is older than one taken: skipped, so each publisher's photos are taken once and in the order it
    published them. A jump in the numbers counts the samples in between as never reached: replaced in a keep-last
    history (the reader's while the node was busy, or a depth-1 writer's before a lossy link repaired it). A writer's
    samples before the first one taken from it are not counted: they may have reached an earlier run of the node
    (photo_node keeps its photo latched for a restarted robot). Where the
    middleware gives no sequence number (0), samples are told apart by source timestamp and writer, and none is
    counted as lost (also where it gives no writer gid). Remembers the last `max_writers` writers."""

    def __init__(self, max_writers: int = 64):
        self.max_writers = max_writers
        self._last: OrderedDict = OrderedDict()  # writer gid -> last sequence number taken
        self._seen = deque(maxlen=16)  # (source timestamp, writer) of recent samples without a sequence number

    def take(self, info: dict) -> int | None:
        """None when the sample of message info `info` is not to be taken; else how many samples of its writer
        before it never reached this node (0 for a writer's first sample seen: what came before is not known)."""
        gid = info.get("publisher_gid")
        writer = bytes(gid["data"]) if isinstance(gid, dict) and "data" in gid else None
        seq = info.get("publication_sequence_number") or 0
        if not seq or writer is None:  # numbers of unknown writers cannot be compared
            key = (info.get("source_timestamp"), writer)
            if key in self._seen:
                return None
            self._seen.append(key)
            return 0
        last = self._last.get(writer)
        if last is not None and seq <= last:
            return None
        self._last[writer] = seq
        self._last.move_to_end(writer)
        while len(self._last) > self.max_writers:
            self._last.popitem(last=False)
        return 0 if last is None else seq - last - 1


@dataclass
class Job:
    """One photo waiting for the worker: how to get its pixels, and whose it is."""

    decode: object  # () -> ([H, W, 3] uint8 RGB, notes found decoding it: an animation, transparency); raises ValueError
    operator_id: str
    frame_id: str
    source: str  # for log lines: topic or file
    notes: tuple = ()  # warnings about the input itself (8UC3 taken as BGR), for this photo's status
    stamp: TimeMsg | None = None  # the photo's header.stamp (its statuses' photo_stamp); None: a file or the cache
    avatar_file: str = ""  # an avatar .ply (photo_path) published as it is (_publish_file): not decoded, not reconstructed
    named_by_file: bool = False  # operator_id is the avatar file's name until the one stored in the file is read
    file_budget: int = 0  # the Gaussians an avatar file may have (0: max_file_gaussians when it is read)
    path: str = ""  # a photo file (photo_path): read by the worker (_read_file), which then sets decode
    behind: str = ""  # the photo being reconstructed when this one was submitted (its name()), else ""

    def name(self) -> str:
        """The photo in log lines: its sender's frame_id (else its operator id) and where it came from. With several
        senders on one topic the robot's log said only 'photo from operator/photo/compressed refused' (user16, s16)."""
        return f"{photo_label(self.frame_id, self.operator_id)} from {self.source}"


def photo_label(frame_id: str, operator_id: str) -> str:
    """A photo in log lines: its header.frame_id quoted; a photo without one, by the operator id its avatar and
    statuses get, said to be that (its statuses' header.frame_id stays empty). An empty frame_id was said as ''
    on receipt and as 'operator' after, with no word that this is a name the node gave it (user40, s40)."""
    return f"'{frame_id}'" if frame_id else f"'{operator_id}' (no header.frame_id)"


def _is_avatar_file(path: str) -> bool:
    """Whether the file `path` is an avatar file: a .ply (core.avatar.is_ply of its first bytes), or an avatar's
    .driving.npz given in its place (load_ply then says which .ply to give; as a photo it was "not an image");
    False when it is not a regular file or cannot be read (the photo path's own errors say why:
    imageio.check_file). Not opened unless regular: a FIFO given as the start-up photo_path blocked the node's
    constructor in open() (review22)."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return is_ply(head) or (path.endswith(DRIVING_SUFFIX) and head == b"PK\x03\x04")


def check_photo_file(path: str) -> None:
    """Raise ValueError, in the words its decode would use, when the file `path` (photo_path set at run time) can be
    neither reconstructed nor published: not there, not a regular file, unreadable (imageio.check_file), or, unless an
    avatar file (_is_avatar_file), empty, a JPEG or PNG cut short, or no image at all (imageio.check_compressed: its
    bytes are read, its pixels not decoded; milliseconds for a phone photo). What passes may still be refused by the
    worker (corrupt data inside, above max_pixels, no face). Before, an empty or cut file was accepted ('Set parameter
    successful'), replaced the photo waiting for the worker (the start-up photo: SUPERSEDED, never reconstructed) and was
    refused only when the worker read it, after the reconstructor loaded (17 s here at load 16; user63)."""
    path = imageio.check_file(path)
    if not _is_avatar_file(path):
        imageio.check_compressed(imageio.read_file(path), name=path)


def _with_notes(decoded: tuple) -> tuple:
    """imageio.decode_with_format's (rgb, format, reduction, notes) -> (rgb, notes): an animation, of which the first
    frame is used; transparent pixels, composited onto grey (said in the photo's status: the sender's photo_node
    relays it). The header is parsed there once: the callback parsed it a second time for the animation's note
    (imageio.animation_note, removed), copying the message's bytes in the executor's thread (s19)."""
    rgb, _, _, notes = decoded
    return rgb, notes


class MadeFrom(NamedTuple):
    """The photo the avatar published was made from: a photo with the same key keeps it (ReconstructionNode._kept)."""

    key: bytes  # core.reconstruct.photo_key of the photo under the reconstructor and frame_id it was made with
    warnings: tuple  # the reconstruction's warnings, said again to a photo that keeps the avatar
    num_gaussians: int
    source: str = ""  # where that photo came from, for the log ('photo_path /x/me.jpg', 'operator/photo/compressed')


def _made_from_to_note(made_from: MadeFrom | None) -> bytes:
    """The avatar cache's note (JSON) from ReconstructionNode._made_from: the key of the photo the avatar was made
    from, that result's warnings and the photo's source; b"" for an avatar made from an avatar file or restored without
    a key."""
    if made_from is None:
        return b""
    return json.dumps({"photo_key": made_from.key.hex(), "warnings": list(made_from.warnings),
                       "source": made_from.source}).encode()


def _made_from_note(note: bytes, num_gaussians: int) -> MadeFrom | None:
    """ReconstructionNode._made_from from the avatar cache's note (_made_from_to_note); None for an empty or
    unreadable one (the photo is then reconstructed again, as before there were notes). A note written before node59
    holds a key of the photo's bytes, which no photo_key equals: that photo is reconstructed once more."""
    try:
        made = json.loads(note) if note else None
        return None if not made else MadeFrom(bytes.fromhex(made["photo_key"]), tuple(map(str, made["warnings"])),
                                              num_gaussians, str(made.get("source", "")))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


STOP_WAIT_S = 1.0  # destroy_node waits this long for the worker: an idle one ends within its 0.2 s wake-up

# what the cache holds: this message definition (its fields and types) and avatar format; another one is refused
CACHE_KIND = (f"gaussian_head_ros/msg/GaussianAvatar {GaussianAvatarMsg.get_fields_and_field_types()} "
              f"v{GaussianAvatarMsg.FORMAT_VERSION}")


class ReconstructionNode(Node):
    def __init__(self, **kwargs):
        super().__init__("reconstruction_node", **kwargs)
        log_core_under(self)
        declare_settings(self, PARAMS, check_value)  # a value out of its range goes back to its default, alone
        try:
            check_values(self._values())
        except ValueError as e:  # the reconstructor cannot be built: say so (log, diagnostics, status of a photo)
            self.get_logger().error(f"parameters: {e}")
        given = [n for n in PARAMS if self._param(n) != PARAMS[n].default]  # a params file's preset under rar, ...
        self._say_unused({n: self._param(n) for n in given}, self._param("backend"))
        self.add_on_set_parameters_callback(self._on_set)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.avatar_pub = self.create_publisher(GaussianAvatarMsg, "avatar", latched)
        # the same avatar as a plain x y z rgb cloud, which RViz and Foxglove display (they do not show a
        # PointCloud2 inside another message); DDS sends it only to subscribers
        self.cloud_pub = self.create_publisher(PointCloud2, companion_topic(self, "avatar/cloud", "avatar"), latched)
        # statuses in order, each after every reader acknowledged the one before (InOrderLatched): the node publishes
        # SUPERSEDED and BUSY back to back, and of two such samples a depth-1 writer lost the first for good to a
        # reader across a link that dropped its datagram (user14, s14)
        # a subscriber of these that is volatile or best effort never gets the avatar shown now, and neither side of DDS
        # says so (a QoS they match with): said once per subscription, naming its node (user24, s24)
        self._latched_readers = LatchedReaders(self, [self.avatar_pub, self.cloud_pub], "the avatar")
        self.statuses = InOrderLatched(self, AvatarStatus, companion_topic(self, "avatar/status", "avatar"))
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Each photo topic is subscribed twice, reliable, with PHOTO_DEPTH's history: transient local, so that a photo latched
        # before this node started is used, and volatile, which a volatile publisher requires (DDS does not
        # match it with a transient-local reader). A sample that reaches both is taken once (PublisherSequences).
        # The transient-local twin does not warn about incompatible publishers: a volatile one (`ros2 topic
        # pub`) is taken by the volatile twin, which warns itself about any other incompatibility (they
        # differ in durability only); rclpy's default warning said "No messages will be received from it".
        # The volatile publisher's own process warns the same way about the transient-local twin (rclpy's default
        # publisher event: "requesting incompatible QoS ... DURABILITY"), which a node cannot silence: the photo's
        # arrival is said here instead, and to such a publisher why its warning is harmless (_say_received).
        # The volatile twin names a best-effort publisher, which neither twin hears, in our words (rclpy's default
        # line named no sender nor remedy; user64): reliable_subscription_events.
        self._sequences = PublisherSequences()
        self.photo_topics: dict[str, str] = {}  # "operator/photo", ".../compressed" -> the topic's resolved name
        self.unheard_publishers: dict = {}  # (node, topic) of photo publishers DDS delivers nothing from -> QoS policy
        raw_topic = "operator/photo"
        compressed_topic = companion_topic(self, "operator/photo/compressed", "operator/photo")
        for durability in (DurabilityPolicy.TRANSIENT_LOCAL, DurabilityPolicy.VOLATILE):
            qos = {kind: QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE, durability=durability)
                   for kind, depth in PHOTO_DEPTH.items()}
            silent = durability == DurabilityPolicy.TRANSIENT_LOCAL

            def events(topic: str):
                return (SubscriptionEventCallbacks(incompatible_qos=lambda event: None) if silent else
                        reliable_subscription_events(self, self.resolve_topic_name(topic), "photos",
                                                     self.unheard_publishers))

            self.photo_topics["operator/photo"] = self.create_subscription(
                Image, raw_topic, self._on_image, qos["raw"], event_callbacks=events(raw_topic)).topic_name
            self.photo_topics["operator/photo/compressed"] = self.create_subscription(
                CompressedImage, compressed_topic, self._on_compressed, qos["compressed"],
                event_callbacks=events(compressed_topic)).topic_name
        self._volatile_said: set[bytes] = set()  # the volatile photo publishers told why their QoS warning is harmless

        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending: Job | None = None
        self._running: Job | None = None  # the photo being reconstructed
        self._busy = False
        self._dirty = True  # the reconstructor must be (re)built from the parameters
        self._encoding_notes = imageio.EncodingNotes()  # warns once about 8UC3 taken as BGR
        self.state = "starting"
        self.counts = dict(photos=0, replaced=0, photos_lost=0, avatars=0, kept=0, refused=0, errors=0, cache_errors=0)
        self.cache_state = "on" if self._param("cache_avatar") else "off"
        self.last = {"code": "", "message": "", "duration_s": "", "num_gaussians": "", "operator_id": ""}
        self._made_from: MadeFrom | None = None  # the photo the avatar shown was made from (None: a file, or unknown)
        self._shown: GaussianAvatarMsg | None = None  # the avatar published last (latched)
        # (path, avatar_cache.read_entry's entry) read at start-up for the start-up photo (_cached_made_from), served
        # from there by _restore_cache; dropped once that photo is handled or the cache written
        self._startup_entry: tuple | None = None
        # a cache file named at run time (cache_path set, cache_avatar set true): the worker writes the avatar published
        # into it, so a restart with that cache_path keeps the face (it waited for the next avatar; user39, s39)
        self._recache: str | None = None
        self._built = ""  # reconstructor_key of the reconstructor built (worker thread)
        # (avatar file, its Gaussian count) refused for max_file_gaussians while no newer photo came: published once
        # max_file_gaussians is raised to its count, as render_node loads an avatar it refused once its budget allows
        self._over_file_budget: tuple[str, int] | None = None
        photo = self._param("photo_path")
        # the start-up photo: refused, the cache is served after all (_refuse), so a restart keeps the face
        self._startup = self._submit_file(photo) if photo else None
        if not photo and not self._param("cache_avatar"):  # (with the cache on, _restore_cache says it): it said
            # only 'reconstructor ready', no word of what it waits for (user51)
            self.get_logger().info(f"no photo_path and cache_avatar off: no avatar until a photo comes; "
                                   f"{self._waiting_for_photo()}")
        self._loading = Loading()  # the worker building a reconstructor (_rebuild): not waited for
        self._worker = threading.Thread(target=self._work_loop, name="reconstruction", daemon=True)
        self._worker.start()
        steady_timer(self, 1.0, self._publish_diagnostics)
        steady_timer(self, 2.0, self._latched_readers.check)

    # ----------------------------------------------------------------------------------------------
    # parameters

    def _param(self, name):
        return self.get_parameter(name).value

    def _values(self, changes=()) -> dict:
        values = {name: self._param(name) for name in PARAMS}
        values.update({p.name: p.value for p in changes if p.name in PARAMS})
        return values

    def _on_set(self, params) -> SetParametersResult:
        try:
            check_values(self._values(params))
        except (ValueError, TypeError) as e:
            return SetParametersResult(successful=False, reason=str(e))
        for p in params:
            if p.name == "photo_path" and p.value:  # missing, a directory, a device, empty, cut short, no image:
                try:  # said in the reply, the log and avatar/status (check_photo_file)
                    check_photo_file(p.value)
                except ValueError as e:
                    reason = f"{e}{files.relative_note(p.value, self.get_name())}"
                    self.counts["photos"] += 1
                    self._refuse(AvatarStatus.BAD_IMAGE, reason, self._file_job(p.value), 0.0)
                    return SetParametersResult(successful=False, reason=reason)
        backend = self._values(params)["backend"]
        unused = unused_by_backend(backend, [p.name for p in params])
        if any(p.name in _REBUILD and p.name not in unused for p in params):
            self._dirty = True  # the worker rebuilds before the next photo
            self._say_shown_stays([p for p in params if p.name not in unused])
        self._say_unused({p.name: p.value for p in params if p.name in unused and p.value != self._param(p.name)},
                         backend)
        if any(p.name in ("cache_path", "cache_avatar") for p in params):
            values = self._values(params)
            path = self._cache_path(values["cache_path"])
            named = path != self._cache_path() or not self._param("cache_avatar")  # another file, or turned on
            with self._lock:  # the worker writes the avatar shown there (the parameter is set after this callback)
                self._recache = path if values["cache_avatar"] and named else None
        for p in params:  # `ros2 param set .../reconstruction_node photo_path me.jpg` swaps the operator
            if p.name == "photo_path" and p.value:
                self._submit_file(p.value, say=self._say_photo_path_set)
            elif p.name == "photo_path":  # accepted without a word while the face stayed (user51); rclpy drops the
                self._say_photo_path_emptied()  # reason of a successful set: the log says it
        over = self._over_file_budget
        raised = [int(p.value) for p in params if p.name == "max_file_gaussians"]
        if over is not None and raised and over[1] <= raised[0] and not any(p.name == "photo_path" for p in params):
            self.get_logger().info(f"max_file_gaussians {raised[0]}: the avatar file {over[0]} refused for its {over[1]} "
                                   "Gaussians is published now")
            self._submit_file(over[0], file_budget=raised[0])  # (the parameter is set after this callback)
        return SetParametersResult(successful=True)

    def _waiting_for_photo(self) -> str:
        """'waiting for a photo on <the photo topics> (...)': what the node waits for while it has no photo file."""
        topics = " or ".join(dict.fromkeys(self.photo_topics.values()))
        return (f"waiting for a photo on {topics} (photo_node sends one from the operator's host; here: ros2 param set "
                f"{self.get_fully_qualified_name()} photo_path <file>)")

    def _say_photo_path_emptied(self) -> None:
        """Log what photo_path set empty does: nothing is reconstructed and nothing taken back."""
        shown = self._shown
        kept = (f"the avatar shown ('{shown.operator_id}') stays published, latched" if shown is not None
                else "no avatar is shown yet")
        self.get_logger().info(f"photo_path set empty: nothing to reconstruct, nothing taken back: {kept}; "
                               f"{self._waiting_for_photo()}")

    def _say_photo_path_set(self, job: Job) -> None:
        """Log what a photo_path set at run time does: its photo is reconstructed now, after the one being
        reconstructed (job.behind) or once the reconstructor has loaded, the face shown staying meanwhile, and where its
        verdict comes. Before, the log said nothing until the avatar was ready (23 s here), and nothing of a second
        photo_path set meanwhile, which waited (BUSY on avatar/status only; user53); a photo from a topic is said as it
        comes (_say_received)."""
        done, state = "published as it is" if job.avatar_file else "reconstructed", self.state
        if job.behind:
            when = f"waits for the reconstruction running now ({job.behind}) to end, then is {done} (a newer photo " \
                   "replaces it)"
        elif state.startswith(("starting", "loading")):
            when = f"is {done} once the reconstructor has loaded (state: {state})"
        else:
            when = f"{done} now"
        shown = self._shown
        stays = f"; the avatar shown ('{shown.operator_id}') stays until then" if shown is not None else ""
        self.get_logger().info(f"{job.name()} {when}{stays}; its verdict follows on "
                               f"{self.statuses.publisher.topic_name}")

    def _say_unused(self, values: dict, backend: str) -> None:
        """Log that the parameters in `values` (name -> value) are not used by the `backend` reconstructor, so the
        avatars it makes do not change, and which backend takes each (unused_by_backend)."""
        for name, users in unused_by_backend(backend, values).items():
            self.get_logger().warning(
                f"{name} {values[name]}: a parameter of the {' and '.join(users)} reconstructor, not used by {backend} "
                f"(backend {backend}): the avatars it makes do not change; it applies once backend is "
                f"{' or '.join(users)}")

    def _say_shown_stays(self, params) -> None:
        """Log that the avatar shown stays as it is when a parameter that makes avatars (_MAKES_AVATAR) is set to
        another value without photo_path: it applies to the next photo reconstructed. A robot integrator who set
        max_gaussians (or preset fast) as README and render_node's "below the fps" warning say, for a faster display,
        got 'Set parameter successful' and 'mesh_fit reconstructor ready', and the display went on drawing the
        60k-Gaussian avatar, no word why (user48b)."""
        shown = self._shown
        if shown is None or any(p.name == "photo_path" and p.value for p in params):
            return
        changed = [f"{p.name} {p.value}" for p in params
                   if p.name in _MAKES_AVATAR and p.value != self._param(p.name)]
        if not changed:
            return
        n = shown.gaussians.width * shown.gaussians.height
        self.get_logger().info(
            f"{', '.join(changed)}: applies to the next photo reconstructed; the avatar shown ('{shown.operator_id}', "
            f"{n} Gaussians) stays until then. To remake it now, send its photo again (the operator's host: ros2 "
            f"param set /photo_node photo <file>; here: ros2 param set {self.get_fully_qualified_name()} photo_path "
            "<file>)")

    def _submit_file(self, photo: str, file_budget: int = 0, say=None) -> Job:
        """Reconstruct the photo file `photo` (photo_path at start-up, or set later); an animation is said as for a
        photo message (its first frame is used: the log and its statuses; a file was taken without a word, refuse18).
        An avatar file is counted against file_budget (0: max_file_gaussians). `say(job)`: see `_submit`. Returns the
        job submitted."""
        job = self._file_job(photo, file_budget)
        self._submit(job, say)
        return job

    def _file_job(self, photo: str, file_budget: int = 0) -> Job:
        """The Job of the photo file or avatar file `photo` (photo_path), read by the worker; see `_submit_file`."""
        photo = imageio.photo_file(photo)  # `-p photo_path:=~/me.jpg`: no shell expanded that `~`
        # its statuses' header.frame_id: the frame_id photo_node gives the same file (operator_id, else the file's
        # name), as a photo message's statuses carry the photo's; it was empty (user37)
        name = self._param("operator_id") or Path(photo).stem
        if _is_avatar_file(photo):
            return Job(None, name, name, f"avatar file {photo}",
                       avatar_file=photo, named_by_file=not self._param("operator_id"), file_budget=file_budget)
        return Job(None, name, name, f"photo_path {photo}", path=photo)

    # ----------------------------------------------------------------------------------------------
    # callbacks: keep the newest photo, nothing heavy

    def _operator(self, frame_id: str) -> str:
        return self._param("operator_id") or frame_id or "operator"

    def _take(self, info, topic: str, frame_id: str, size: int) -> tuple | None:
        """None for a photo sample not to be taken (taken through the other reader of its topic, or older than one
        taken from its sender); else the notes for its statuses: how many photos its sender published before it
        that never reached this node (said in the log too, and counted: photos_lost). A photo taken is said in the
        log (`_say_received`; `size`: its data's bytes)."""
        with self._lock:
            lost = self._sequences.take(info)
        if lost is None:
            return None
        self._say_received(info, topic, frame_id, size)
        if not lost:
            return ()
        self.counts["photos_lost"] += lost
        them = "them" if lost > 1 else "it"
        note = (f"{lost} photo{'s' if lost > 1 else ''} that this photo's sender published on {topic} before it never "
                f"reached the node (DDS replaced {them} with newer ones before the node took {them}): no status for {them}")
        self.get_logger().warning(f"{photo_label(frame_id, self._operator(frame_id))}: {note}")
        return (note,)

    def _say_received(self, info, topic: str, frame_id: str, size: int) -> None:
        """Say in the log that the photo `frame_id` (`size` bytes) came on `topic` ("operator/photo" or
        ".../compressed"), from which node; to a volatile publisher (`ros2 topic pub` without --qos-durability), once,
        that the '... Last incompatible policy: DURABILITY' its own process printed is about this node's transient-local
        reader, and its photo came through the volatile one. Before, a new user saw only that warning, which says 'No messages
        will be sent to it', and nothing on the robot until the verdict (user33, s34)."""
        gid = info.get("publisher_gid")
        writer = bytes(gid["data"])[:16] if isinstance(gid, dict) and "data" in gid else b""
        resolved = self.photo_topics.get(topic, topic)
        sender = next((e for e in self.get_publishers_info_by_topic(resolved)
                       if writer and bytes(e.endpoint_gid)[:16] == writer), None)
        name = endpoint_node(sender) if sender is not None else None  # None: the graph names no node for it (yet)
        line = (f"photo {photo_label(frame_id, self._operator(frame_id))} received on {resolved} ({size / 1024:.0f} KB"
                f"{f', from {name}' if name else ''}): its verdict follows on "
                f"{self.statuses.publisher.topic_name}")
        if sender is not None and sender.qos_profile.durability == DurabilityPolicy.VOLATILE and \
                writer not in self._volatile_said:
            self._volatile_said = set() if len(self._volatile_said) > 64 else self._volatile_said
            self._volatile_said.add(writer)
            line += ("; its publisher is volatile: the warning '... Last incompatible policy: DURABILITY' it may print "
                     "is about this node's transient-local reader, for photos latched before the node starts; its photo "
                     "came through the volatile reader (publish with --qos-durability transient_local to latch it "
                     "for a robot that starts later)")
        self.get_logger().info(line)

    def _on_image(self, msg: Image, info) -> None:
        lost = self._take(info, "operator/photo", msg.header.frame_id, len(msg.data))
        if lost is None:
            return
        limit = int(self._param("max_pixels"))
        data, w, h, step, enc, be = msg.data, msg.width, msg.height, msg.step, msg.encoding, bool(msg.is_bigendian)
        note = imageio.encoding_note(enc)  # None for the encodings that say their channel order
        if self._encoding_notes.first(enc):  # the log once; the status of every such photo (the sender reads that)
            self.get_logger().warning(note)
        notes = (*lost, *(n for n in (note, imageio.layout_note(w, step, enc)) if n))
        job = Job(lambda: imageio.decode_raw_with_notes(data, w, h, step, enc, be, max_pixels=limit),
                  self._operator(msg.header.frame_id), msg.header.frame_id, "operator/photo", notes, msg.header.stamp)
        self._submit_checked(job, lambda: imageio.check_raw(data, w, h, step, enc, limit))

    def _on_compressed(self, msg: CompressedImage, info) -> None:
        lost = self._take(info, "operator/photo/compressed", msg.header.frame_id, len(msg.data))
        if lost is None:
            return
        limit = int(self._param("max_pixels"))
        data, fmt = msg.data, msg.format  # parsed once, by the worker's decode (an animation is said from there)
        job = Job(lambda: _with_notes(imageio.decode_with_format(data, max_pixels=limit, fmt=fmt)),
                  self._operator(msg.header.frame_id), msg.header.frame_id, "operator/photo/compressed",
                  lost, msg.header.stamp)
        self._submit_checked(job, lambda: imageio.check_compressed(data, fmt, header=False))

    def _submit_checked(self, job: Job, check) -> None:
        """Submit the photo message `job` unless `check` (imageio.check_raw or check_compressed: its fields or bytes,
        microseconds, nothing decoded) raises ValueError: then it is refused at once, BAD_IMAGE with that reason (the
        text its decode would give), and the photo waiting for the worker stays. An empty, truncated or malformed
        photo sent after a good one during a reconstruction replaced it (SUPERSEDED), and was refused only once the
        reconstruction ended: the robot kept the face before both (user40)."""
        try:
            check()
        except ValueError as e:
            self.counts["photos"] += 1
            self._refuse(AvatarStatus.BAD_IMAGE, str(e), job, 0.0)
            return
        self._submit(job)

    def _submit(self, job: Job, say=None) -> None:
        """Hand `job` to the worker (the newest photo wins). `say(job)`, once job.behind is known and before the worker is
        woken, logs what the submission does: called after the wake-up, a photo refused as it was read (an empty file, a
        few pixels, a PNG cut short) had its refusal logged before the line saying it was set (user54)."""
        with self._lock:
            replaced, self._pending = self._pending, job
            busy = self._busy
            job.behind = self._running.name() if busy and self._running is not None else ""
            self._over_file_budget = None  # a newer photo: the file refused for its size is not published later
        self.counts["photos"] += 1
        if replaced is not None:  # its final status: a sender waiting on it learns its fate (it had BUSY at most)
            self.counts["replaced"] += 1
            self.get_logger().info(f"a newer photo ({job.name()}) replaced the one waiting ({replaced.name()}): "
                                   "that one is dropped unreconstructed (SUPERSEDED)")
            self._status(AvatarStatus.SUPERSEDED, f"a newer photo (from {job.source}, '{job.operator_id}') came "
                                                  f"while this one waited: dropped unreconstructed (the newest wins)",
                         replaced, replaced.notes)
        if busy:
            self._status(AvatarStatus.BUSY, "a reconstruction is running; this photo follows it (a newer one "
                                            "replaces it)", job, job.notes)
        if say is not None:
            say(job)
        self._wake.set()

    # ----------------------------------------------------------------------------------------------
    # worker thread

    def _work_loop(self) -> None:
        rec = None
        if self._param("cache_avatar") and not self._param("photo_path"):
            self._restore_cache()  # before any photo: a photo latched for us replaces it
        elif self._param("cache_avatar"):
            self._made_from = self._cached_made_from()  # the start-up photo made it: served from the cache (_run)
        while not self._stop.is_set():
            if self._dirty:
                rec = self._rebuild(rec)
            with self._lock:  # a photo waiting to be reconstructed: its avatar is written there when published
                # (_save_cache), or the one shown after it when it is refused; the one shown now went first, and both
                # writes said "cannot write" on a refusing disk (a loaded CI, session 48)
                recache = None
                if self._pending is None:
                    recache, self._recache = self._recache, None
            if recache and self._shown is not None:
                self._save_cache(self._shown, recache)
            if not self._wake.wait(0.2):
                continue
            if self._stop.is_set():  # a Ctrl-C during the loading: do not start the waiting photo's reconstruction
                break  # (it ran on after the Ctrl-C, and launch escalated to SIGTERM, then SIGKILL; try10)
            with self._lock:
                job, self._pending = self._pending, None
                self._wake.clear()
                self._busy, self._running = job is not None, job
            if job is None:
                continue
            if self._dirty:
                rec = self._rebuild(rec)
                if self._stop.is_set():  # stopped while it loaded: the photo gets no 'no reconstructor' status
                    break
            try:
                self._run(rec, job)
            except Exception as e:  # publishing failed
                if self._stop.is_set() or not self.context.ok():
                    break  # shutting down (Ctrl-C): the publishers went away with the context
                self.counts["errors"] += 1
                self.get_logger().error(f"publishing the result failed: {type(e).__name__}: {e}")
            finally:
                self._startup_entry = None  # the start-up photo (the first job) was handled
                with self._lock:
                    self._busy, self._running = False, None
                self.state = "ready" if rec is not None else self.state
                release_free_memory()  # the photo's buffers back to the system, not held while idle
        if rec is not None:
            rec.close()

    def _cache_path(self, value: str | None = None) -> str:
        """The cache file that cache_path `value` (None: the parameter's) names: itself, or the default when empty."""
        value = self._param("cache_path") if value is None else value
        return value or str(avatar_cache.default_path(self.get_namespace(), self.get_name(), self.context.get_domain_id()))

    def _restore_cache(self, why: str = "", photo: Job | None = None) -> None:
        """Publish the cached avatar again (latched), or say why the cache is ignored; `why`, when given, ends the
        status and log line (the start-up photo that was refused, or the one the cached avatar was made from: `photo`,
        whose statuses then carry this one, as its own)."""
        path = self._cache_path()
        job = Job(lambda: None, "", "", f"cache {path}")
        kept, self._startup_entry = self._startup_entry, None
        try:
            entry = kept[1] if kept is not None and kept[0] == path else avatar_cache.read_entry(path, CACHE_KIND)
            if entry is None:
                self.cache_state = f"no cached avatar at {path}"
                self.get_logger().info(f"{self.cache_state}; {self._waiting_for_photo()}")
                return
            payload, note = entry
            msg = deserialize_message(payload, GaussianAvatarMsg)
            # labelled by this start's parameters, as an avatar made now would be (the cache keeps what it was given)
            msg.operator_id = self._param("operator_id") or msg.operator_id
            msg.header.frame_id = msg.gaussians.header.frame_id = str(self._param("frame_id"))
            job.operator_id, job.frame_id = msg.operator_id, msg.header.frame_id
            job = photo or job
            avatar = msg_to_avatar(msg)  # the checks render_node makes: refuse here what it would refuse
        except Exception as e:  # ValueError from the checks; deserialization raises its own kinds
            self.counts["cache_errors"] += 1
            self.cache_state = f"cached avatar ignored: {e}"
            self.get_logger().error(f"{self.cache_state}; waiting for a photo")
            self._status(INTERNAL_ERROR, f"the cached avatar could not be used ({e}); waiting for a photo", job)
            return
        self._publish_avatar(msg, avatar)
        self._made_from = _made_from_note(note, avatar.num_gaussians)  # the photo it was made from, sent again: unchanged
        made = stamp_utc_text(msg.header.stamp)
        self.cache_state = f"restored from {path}"
        text = f"avatar for '{msg.operator_id}' restored from the cache {path} ({avatar.num_gaussians} Gaussians, made {made})"
        text += f": {why}" if why else ""
        self.get_logger().info(text)
        self._status(OK, text, job, num_gaussians=avatar.num_gaussians)

    def _save_cache(self, msg: GaussianAvatarMsg, path: str = "") -> None:
        """Keep the avatar just published in the cache (`path`: this file, cache_avatar and cache_path just set to
        name it; else cache_path when cache_avatar is on). A write avatar_cache.write refuses (OSError: the disk;
        ValueError: a note over MAX_NOTE_BYTES) is said on the log and in the diagnostics' avatar_cache, and counted;
        serving goes on (the avatar is published already). The message and its note are made before: an error there
        is a bug, not the disk, and goes up to the worker's "publishing the result failed" (it was said as "cannot
        write", review18). A write to the file that cache_path / cache_avatar named during a reconstruction also stands
        for the worker's pending write of the avatar shown there (`_recache`): it wrote, or said "cannot write", twice
        50 ms apart (user40)."""
        if not path and not self._param("cache_avatar"):
            return
        path = path or self._cache_path()
        self._startup_entry = None  # the file it was read from is written now
        with self._lock:  # the avatar shown is this one: a file named meanwhile is written (or refused) now, once
            self._recache = None if self._recache == path else self._recache
        payload, note = serialize_message(msg), _made_from_to_note(self._made_from)
        try:
            avatar_cache.write(path, payload, CACHE_KIND, note)
        except (OSError, ValueError) as e:
            self.counts["cache_errors"] += 1
            self.cache_state = f"cannot write {path}: {getattr(e, 'strerror', None) or e}"
            self.get_logger().warning(f"avatar cache: {self.cache_state} (a restart will not serve this avatar)")
            return
        self.cache_state = f"written to {path}"
        self.get_logger().info(f"avatar cache: {self.cache_state}")

    def _rebuild(self, old):
        """A reconstructor from the current parameters (None, with a log line, when that fails)."""
        self._dirty = False
        if old is not None:
            old.close()
        values = self._values()
        self.state = f"loading {values['backend']}"
        t0 = time.perf_counter()
        self._built = ""
        self._loading.begin()
        try:
            built = reconstructor_key(values["backend"], **reconstructor_options(values))  # (reads its checkpoint)
            rec = get_reconstructor(values["backend"], **reconstructor_options(values))
            if hasattr(rec, "warm_up"):
                rec.warm_up()
        except (ValueError, OSError, RuntimeError) as e:
            if not self._loading.end():
                return None
            self.state = f"no reconstructor: {e}"
            self.get_logger().error(f"cannot start the {values['backend']} reconstructor: {e}")
            return None
        if not self._loading.end():  # stopped meanwhile: destroy_node did not wait, the node may be gone
            rec.close()
            return None
        self._built, self.state = built, "ready"
        self.get_logger().info(f"{values['backend']} reconstructor ready ({time.perf_counter() - t0:.1f} s)")
        return rec

    def _read_file(self, job: Job) -> None:
        """Read the photo file of `job` (photo_path): its decode becomes their decode under max_pixels as it is now.
        Raises ValueError (imageio.read_file: missing, unreadable, a directory)."""
        data = imageio.read_file(job.path)
        limit = int(self._param("max_pixels"))
        # named: its refusal in a file's words ('me.jpg is empty (0 bytes)'), not a message's ('empty compressed
        # image', on avatar/status of a file the user named; user54)
        job.decode = lambda: _with_notes(imageio.decode_with_format(data, max_pixels=limit, name=job.path))

    def _cached_made_from(self) -> MadeFrom | None:
        """_made_from of the avatar in the cache (its note), for a start with photo_path: that photo, made into the
        cached avatar before, is served from the cache (_run). None when there is none or it cannot be read (the
        photo is then reconstructed; _restore_cache says what is wrong with a cache it is asked to serve). The entry
        read is kept for _restore_cache, which serves it (the start-up photo is the one it was made from, or was
        refused) without reading the file again: it read the whole file twice, 5.5 MB for a 60k-Gaussian avatar
        (user43, s43)."""
        path = self._cache_path()
        try:
            entry = avatar_cache.read_entry(path, CACHE_KIND)
        except ValueError:
            return None
        if entry is None:
            return None
        self._startup_entry = (path, entry)
        return _made_from_note(entry[1], 0)

    def _run(self, rec, job: Job) -> None:
        if job.avatar_file:
            self._publish_file(job)
            return
        if rec is None:  # self.state says why (no reconstructor: ...) and stays so for the diagnostics
            self._refuse(INTERNAL_ERROR, f"{self.state}; fix the parameters", job, 0.0)
            return
        t0 = time.perf_counter()
        try:
            if job.path:
                self._read_file(job)
            rgb, found = job.decode()
        except ValueError as e:  # reading, decoding: missing, empty, corrupt, truncated, too large, unsupported encoding
            self._refuse(AvatarStatus.BAD_IMAGE, str(e), job, time.perf_counter() - t0)
            return
        except Exception as e:  # a bug: said as a reconstruction's is, below
            self._failed(e, job, t0)
            return
        for note in found:  # an animation (its first frame is the photo), transparent pixels (composited onto grey), of
            # a raw photo as of a compressed one: the log, and this photo's statuses
            self.get_logger().warning(f"photo {job.name()}: {note}")
        job.notes = (*job.notes, *found)
        # what decides its avatar: these pixels, its operator id, the reconstructor built and the avatars' frame_id
        # (a photo file was known by its bytes and a message by its bytes and format: the robot's photo_path file sent
        # again by photo_node was reconstructed again, 3.3 s here, 19.9 s in user58's soak; node59)
        key = photo_key(rgb, job.operator_id, self._built, str(self._param("frame_id")))
        if self._kept(job, key, t0):
            return
        self.state = f"reconstructing ({job.source})"
        try:
            result = rec.reconstruct(rgb, operator_id=job.operator_id)
            msg = avatar_to_msg(result.avatar, Header(stamp=self.get_clock().now().to_msg(),
                                                      frame_id=str(self._param("frame_id"))))
        except ReconstructionError as e:
            self._refuse(e.code, str(e), job, time.perf_counter() - t0)
            return
        except Exception as e:  # a bug: say so, keep serving the last avatar
            self._failed(e, job, t0)
            return
        dt = time.perf_counter() - t0
        self._publish_avatar(msg, result.avatar)
        self._made_from = MadeFrom(key, tuple(result.warnings), result.avatar.num_gaussians, job.name())
        self.counts["avatars"] += 1
        n = result.avatar.num_gaussians
        text = f"avatar for '{job.operator_id}' ready: {n} Gaussians in {dt:.2f} s"
        for w in result.warnings:
            self.get_logger().warning(f"photo {job.name()}: {w}")
        self.get_logger().info(text)
        self._status(OK, text, job, [*job.notes, *result.warnings], n, dt)
        self._save_cache(msg)

    def _kept(self, job: Job, key: bytes, t0: float) -> bool:
        """Whether `job`'s photo, of photo_key `key`, is the one the avatar shown (or, at start-up, the cached one) was
        made from: then the avatar stays as it is published (latched, the same message: a late joiner gets it), the
        photo is answered OK saying so and why, and nothing is reconstructed. A start-up photo_path whose avatar is in
        the cache is served from there (each restart of robot.launch.py photo:=me.jpg reconstructed it, 2.5-12 s here
        with no face shown; user40); one sent again (photo_node restarted with its latched photo, or the robot's
        photo_path file sent by photo_node) was reconstructed again (17 s of the robot's CPU at load 19, then a
        cross-fade to the same face; user16; user58)."""
        made = self._made_from
        if made is None or key != made.key:
            return False
        if self._shown is None:
            self._restore_cache(f"the start-up photo ({job.source}) is the one it was made from (not reconstructed "
                                "again)", job)
            if self._shown is not None:
                return True
            self._made_from = None  # the cache could not be served after all (gone, corrupt): reconstruct the photo
            return False
        came = f" ({made.source})" if made.source else ""
        text = (f"avatar for '{job.operator_id}' unchanged: this photo has the pixels of the one the published avatar was "
                f"made from{came}, and the operator id and reconstructor settings are the same: kept, not reconstructed "
                "again")
        self.counts["kept"] += 1
        self.get_logger().info(f"photo {job.name()}: {text}")
        self._status(OK, text, job, [*job.notes, *made.warnings], made.num_gaussians, time.perf_counter() - t0)
        return True

    def _failed(self, e: Exception, job: Job, t0: float) -> None:
        """A bug reading, decoding or reconstructing `job`'s photo (not a photo that cannot make an avatar): said on
        the log, counted, and the photo refused INTERNAL_ERROR; the avatar published stays."""
        self.counts["errors"] += 1
        self.get_logger().error(f"reconstruction failed: {type(e).__name__}: {e}")
        self._refuse(INTERNAL_ERROR, f"internal error: {type(e).__name__}: {e}", job, time.perf_counter() - t0)

    def _publish_file(self, job: Job) -> None:
        """Publish the avatar file of `job` as it is, with an OK status, and cache it. Labelled with this node's
        frame_id and the operator id: the parameter when set, else the one stored in the file (its driving file's:
        `gaussian-head reconstruct alice.jpg -o avatar.ply` stores 'alice'), else the file's name (user22 labelled
        every file by its name; review22). A file load_ply refuses gets BAD_IMAGE with its reason, and so does one with
        more Gaussians than max_file_gaussians (render_node's default budget: the display refused it after an OK here;
        review22), counted from its header before it is loaded; the avatar already published stays, and raising
        max_file_gaussians to the file's count publishes it (while no newer photo came; review23). render_node's own
        parameter, maybe on another host, is not read: one set lower there still refuses the avatar on avatar/status
        itself. Needs no reconstructor."""
        t0 = time.perf_counter()
        budget = job.file_budget or int(self._param("max_file_gaussians"))
        try:
            n = ply_count(job.avatar_file)
            if n <= budget:
                avatar = load_ply(job.avatar_file)
                if job.named_by_file and avatar.operator_id:
                    job.operator_id = avatar.operator_id
                avatar.operator_id = job.operator_id
                msg = avatar_to_msg(avatar, Header(stamp=self.get_clock().now().to_msg(),
                                                   frame_id=str(self._param("frame_id"))))
        except (OSError, ValueError) as e:
            self._refuse(AvatarStatus.BAD_IMAGE, f"the avatar file cannot be loaded: {e}", job, time.perf_counter() - t0)
            return
        except Exception as e:  # a bug: said as _run says one (a status, and the start-up's cache), not left unanswered
            self.counts["errors"] += 1
            self.get_logger().error(f"loading the avatar file failed: {type(e).__name__}: {e}")
            self._refuse(INTERNAL_ERROR, f"internal error: {type(e).__name__}: {e}", job, time.perf_counter() - t0)
            return
        if n > budget:
            with self._lock:  # kept for a raise of max_file_gaussians, unless a newer photo already waits
                self._over_file_budget = (job.avatar_file, n) if self._pending is None else None
            self._refuse(AvatarStatus.BAD_IMAGE, f"the avatar file has {n} Gaussians, above the budget of {budget} "
                         "(max_file_gaussians; render_node refuses avatars above its max_gaussians, by default "
                         f"{DISPLAY_MAX_GAUSSIANS}): not published; raising max_file_gaussians to {n} publishes it",
                         job, time.perf_counter() - t0)
            return
        self._publish_avatar(msg, avatar)
        self.counts["avatars"] += 1
        warnings = [] if avatar.template_vertices.size else [
            f"{job.source} has no driving file beside it ({driving_path(job.avatar_file).name}): the avatar "
            "does not follow the operator's face, only the head pose"]
        text = f"avatar for '{job.operator_id}' loaded from the {job.source}: {avatar.num_gaussians} Gaussians (not reconstructed)"
        # (not logged here: load_ply's own warning says it, under this node's name since core's lines reach the node's
        # log; both made two warning lines for one file; user47, s47)
        self.get_logger().info(text)
        self._status(OK, text, job, warnings, avatar.num_gaussians, time.perf_counter() - t0)
        self._save_cache(msg)

    def _refuse(self, code: int, reason: str, job: Job, dt: float) -> None:
        self.counts["refused"] += 1
        self.get_logger().warning(f"photo {job.name()} refused: {reason}")
        self._status(code, reason, job, job.notes, duration_s=dt)  # the input's notes may say why (a wrong layout)
        if job is self._startup:
            self._startup = None
            if self._param("cache_avatar"):
                # `photo:=` misspelt, moved, or no face in it: the robot came up with no face while the cache held the
                # last one (user22, s22); a refused photo keeps the avatar published, and at start-up that is the cached one
                self._restore_cache(f"the start-up photo ({job.source}) was refused: {reason}")

    def _publish_avatar(self, msg: GaussianAvatarMsg, avatar) -> None:
        """The avatar (latched) and its coloured cloud (avatar/cloud, latched, same header)."""
        self._made_from = None  # _run sets it again for an avatar made from a photo message
        self._shown = msg
        self.avatar_pub.publish(msg)
        self.cloud_pub.publish(avatar_to_cloud(avatar, msg.header))

    def _status(self, code: int, message: str, job: Job, warnings=(), num_gaussians: int = 0,
                duration_s: float = 0.0) -> None:
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=job.frame_id)
        self.statuses.publish(status_msg(code, message, job.operator_id, warnings, num_gaussians, duration_s, header,
                                         job.stamp))
        if code not in (AvatarStatus.BUSY, AvatarStatus.SUPERSEDED, AvatarStatus.STOPPED):  # not a result: the avatar did not change
            self.last = {"code": str(code), "message": message, "duration_s": f"{duration_s:.2f}",
                         "num_gaussians": str(num_gaussians), "operator_id": job.operator_id}

    # ----------------------------------------------------------------------------------------------
    # diagnostics

    def _publish_diagnostics(self) -> None:
        unheard = list(self.unheard_publishers)  # (a callback may add to it meanwhile)
        on_graph = {topic: best_effort_publishers(self, topic) for _, topic in unheard}  # the graph asked once a topic
        for name, topic in unheard:  # those that left are forgotten (said again if they return)
            if name not in on_graph[topic]:
                self.unheard_publishers.pop((name, topic), None)
        message = self.state
        if self.state.startswith("no reconstructor"):
            level = DiagnosticStatus.ERROR
        elif self.last["code"] not in ("", str(OK)):
            level, message = DiagnosticStatus.WARN, f"last photo refused: {self.last['message']}"
        elif self.cache_state.startswith(("cannot write", "cached avatar ignored")):
            # the face is served, but a restart will not serve it again: level OK hid it from monitors (user20, s20)
            level, message = DiagnosticStatus.WARN, f"{self.state}; avatar cache: {self.cache_state}"
        else:
            level = DiagnosticStatus.OK
        values = {"state": self.state, "backend": str(self._param("backend")), "avatar_cache": self.cache_state,
                  **{f"last_{k}": v for k, v in self.last.items()}, **{k: str(v) for k, v in self.counts.items()},
                  "statuses_waiting": str(self.statuses.pending()), "statuses_unacknowledged": str(self.statuses.unacked),
                  # photo publishers on the graph whose photos DDS never delivers here (best effort): 'node (POLICY)' 
                  "unheard_photo_publishers": "; ".join(f"{name} on {topic} ({policy})" for (name, topic), policy
                                                        in list(self.unheard_publishers.items()))}
        self.diag_pub.publish(diagnostics(self, "avatar reconstruction", level, message, str(self._param("backend")), values))

    def destroy_node(self):
        if hasattr(self, "_worker"):  # else __init__ failed before: let its error show, not one of ours
            self._stop.set()
            self._wake.set()
            # not the running reconstruction: it may take 10 s under load, and `ros2 launch` escalates a Ctrl-C to
            # SIGTERM after 5 s (it did, with an ERROR line, when the node waited up to 10 s here); the process ends
            # without it (end_process), an embedding process lets it finish unpublished (the worker sees _stop)
            # nor the worker building a reconstructor (common.Loading: 2-8 s of JIT warm-up nothing interrupts)
            if self._loading.stop():
                self._worker.join(timeout=STOP_WAIT_S)
            self._say_stopped()
        return super().destroy_node()

    def _say_stopped(self) -> None:
        """The photos this node leaves without a result (the one waiting, the one being reconstructed) get STOPPED, their
        final status from this run, when the node can still publish: destroyed by a process that goes on (a container,
        a test). A Ctrl-C or SIGTERM cannot: rclpy's signal handler has shut the context down before destroy_node runs
        (measured: 'publisher's context is invalid'); a sender that keeps its photo latched (photo_node) gets it taken
        again when the node restarts."""
        with self._lock:
            left = [j for j in (self._running, self._pending) if j is not None]
            self._pending = None
        if not left or not self.context.ok():
            return
        for job in left:
            what = "was being reconstructed" if job is self._running else "waited"
            self._status(AvatarStatus.STOPPED, f"the node stopped while this photo {what}: no avatar made from it "
                                               "(a photo kept latched is taken again when the node restarts)", job)
        self.statuses.flush(STOP_WAIT_S)


def main(args=None):
    return run(ReconstructionNode, args, blas_threads=0)  # one-off work, not the live path: BLAS as it comes
