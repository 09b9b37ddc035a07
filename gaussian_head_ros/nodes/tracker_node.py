"""tracker_node: operator camera frames -> FaceControl (head pose + expression), in real time.

Subscribes `camera/image_raw` (sensor_msgs/Image, best effort, keep last 1; rgb8, bgr8, mono8, rgba8,
16-bit, yuv422 ...), or with `image_transport` compressed `camera/image_raw/compressed` (sensor_msgs/CompressedImage,
JPEG or PNG as image_transport's compressed plugin publishes; decoded here as photos are, imageio.decode_with_format:
no republish node needed), and, when present, `camera/camera_info` for the intrinsics: its K, else its P when
K is all zero, else a `fov_deg` pinhole camera (core/camera_info.py; the log says once which, with the
values, and again when the source or the values change). A camera_info no real camera has (NaN, a negative or
placeholder focal length such as fx = 1 px, a principal point off the image: camera_info.check_plausible) is refused:
said once in the log (again when the refusal changes) and on /diagnostics while it is the newest camera_info, and
the intrinsics taken before it (else `fov_deg`) stay in use. Publishes `face_control` (gaussian_head_ros/FaceControl) stamped with the
camera frame's stamp (frames with a zero stamp get the arrival time).

Frames are never queued: the subscription keeps the newest frame, a worker thread processes it, and
frames that arrive meanwhile replace it (counted as dropped in /diagnostics). A frame older than the
last processed one is ignored (see core/tracking.py for streams that restart). A frame that cannot be used (empty,
an encoding not read, its step or data short, a compressed frame cut short or no image: checked as it arrives,
imageio.check_raw / check_compressed; too small to track, corrupt inside its data: when processed) is skipped, each
cause said in the log (again at most every 5 s) and named on /diagnostics for 5 s (decode_errors).

No face: messages with face_detected=false, holding the last pose and expression, at most at
`no_face_rate` Hz while frames keep coming (0 = one per frame). No frames: nothing is published and
/diagnostics warns; when their publisher is a video_source_node whose file ended (without `loop`: its status on
/diagnostics says so), the log says that once and /diagnostics says the video ended (level OK).

Re-calibrate the operator's neutral face: publish std_msgs/Empty on `face_control/recalibrate`, or call
the `~/recalibrate` service (std_srvs/Trigger, when std_srvs is installed).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, fields, replace

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Empty

from gaussian_head_ros.core import expression_codec, frametrace
from gaussian_head_ros.core.camera_info import check_camera_info, describe, intrinsics_from_camera_info, size_mismatch
from gaussian_head_ros.core.imageio import (ALPHA_PADDING_NOTE, EncodingNotes, ImageTooLarge, check_compressed,
                                            check_raw, decode_raw_with_notes, decode_with_format)
from gaussian_head_ros.core.operator_basis import FIRST_S_RANGE, BasisLearner, OperatorBasis, learn
from gaussian_head_ros.core.pacing import StampAges, display_rate
from gaussian_head_ros.core.settings import setting, settings
from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
from gaussian_head_ros.msg import ExpressionBasis as ExpressionBasisMsg
from gaussian_head_ros.msg import FaceControl as FaceControlMsg
from gaussian_head_ros.nodes.common import (FACE_CONTROL_TYPE, SHARED_TOPIC_SAY_S, UNNAMED_NODE, VIDEO_AGAIN_KEY,
                                            VIDEO_ENDED_KEY, VIDEO_FRAMES_KEY, VIDEO_SOURCE_TASK, CausesSaid,
                                            LatchedReaders, Latest, Loading, RecurringLog, SharedTopic,
                                            check_parameters, companion_topic, declare_settings, diagnostics,
                                            endpoint_node, log_core_under, other_topics, run, status_name,
                                            steady_timer, this_domain)
from gaussian_head_ros.nodes.conversions import basis_to_msg, control_to_msg, stamp_to_ns

# image_transport's names of the transports the tracker reads -> the topic each comes on (below camera/image_raw,
# as image_transport's plugins publish them: `<base topic>/compressed`)
IMAGE_TRANSPORTS = {"raw": "camera/image_raw", "compressed": "camera/image_raw/compressed"}

# No camera frame yet: said in the log this long after the tracker is ready, then again every NO_FRAMES_AGAIN_S
# (the state on /diagnostics alone left a camera driver on another topic, usb_cam's `image_raw`, unnoticed).
# Frames that stop coming (a driver that died, a camera unplugged) are said this long after the last one, the same
# way, and their return once (before: nothing in the log, and /diagnostics said 'no camera frames in the last 2 s'
# minutes later; user18, s18).
# A video file that ended (video_source_node without `loop`) is said once, as soon as its frames are STALE_S old:
# it was said as a camera that stopped, again every minute (review18, s18).
# The defaults of the parameters no_frames_say_s and no_frames_again_s.
NO_FRAMES_SAY_S, NO_FRAMES_AGAIN_S = 10.0, 60.0
# Controls sent while no node subscribes to face_control, this long: said once (the operator's host is where someone
# looks; a robot under namespace:=robot2 without control_topic:=/face_control listened on /robot2/face_control while
# this tracker published /face_control, and neither side said anything; user21, s21), and when a subscriber comes.
NO_READERS_SAY_S = 10.0  # the default of the parameter no_readers_say_s
# /diagnostics once a second by default (parameter diagnostics_period_s; a test waiting on the counts of many single
# frames sets it shorter: the same checks, more often)
DIAGNOSTICS_PERIOD_S = 1.0
# An intrinsics line (which intrinsics and their values) that a change of the frames' size brings back is said again
# at INFO at most this often, at DEBUG between: frames of two sizes in turn (two cameras on one topic) said a new line
# at every frame (user55). A change of the camera_info is said each time.
INTRINSICS_SAY_AGAIN_S = 60.0
# A part of the face out of view (the eyes cut by the picture's top as the operator stands up, a hand over the mouth:
# FaceTracker.regions_note) is said at once, then at most this often, as the tracker's other recurring lines (the
# stamp offset, no camera frames again): an operator bobbing in and out of the picture, or a hand at the mouth found
# in every third frame's check, gets one line a minute; /diagnostics says each second whether one is out.
REGIONS_AGAIN_S = 60.0  # the default of the parameter regions_again_s


@dataclass
class TrackerNodeSettings:
    """tracker_node's own parameters; the tracker's are TrackerConfig's settings (core/tracking.py)."""

    use_camera_info: bool = setting(True, "take the intrinsics from camera/camera_info when it is published")
    no_face_rate: float = setting(2.0, "rate of face_detected=false messages while no face is found, Hz "
                                       "(0 = every frame)", range=(0.0, 120.0))
    max_image_pixels: int = setting(16_777_216, "frames with more pixels are rejected (a compressed JPEG frame is "
                                                "decoded reduced to fit, as photos are)", range=(4096, 268_435_456))
    image_transport: str = setting("raw", "how the camera's frames come, named as image_transport names them (`-p "
                                          "image_transport:=compressed`, as image_view takes it): raw, "
                                          "sensor_msgs/Image on camera/image_raw; compressed, "
                                          "sensor_msgs/CompressedImage (JPEG, PNG) on camera/image_raw/compressed, "
                                          "decoded here. Read at start (read-only: give it when the tracker "
                                          "starts)", choices=IMAGE_TRANSPORTS, read_only=True)
    send_landmarks: bool = setting(False, "publish the absolute canonical landmarks too (+5.7 KB per message; the "
                                          "avatar does not need them)")
    expression_encoding: str = setting("compact", "how face_control carries the expression: compact (~0.4 KB with the eyelid ratios: "
                                                  "coefficients of a fixed template basis, core/expression_codec.py, "
                                                  "CODEC_LAPLACIAN_V5), compact_v4 (the previous code, as large, for "
                                                  "render nodes of builds before session 17, which refuse V5), "
                                                  "compact_v3 (16 B less, for builds before session 9, which refuse V4) "
                                                  "or dense (5.7 KB float32, the eyelid ratios in their own field)",
                                       choices=tuple(expression_codec.CODECS))
    operator_basis_s: float = setting(0.5, "seconds of tracked frames (since the start or a re-calibration) after "
                                           "which the operator's expression basis is first learned; it is learned "
                                           "again after 2, 4, 8 ... x that and when the residual of recent frames "
                                           "grows, each new basis published latched on face_control/expression_basis "
                                           "before codes use it; compact codes then carry up to 16 more int8 "
                                           "coefficients on it (+23 B). 0 = off (core/operator_basis.py)",
                                      range=FIRST_S_RANGE)
    no_frames_say_s: float = setting(NO_FRAMES_SAY_S, "seconds without a camera frame (after the tracker is ready, or "
                                                      "after the last frame), or of frames without a face, before the "
                                                      "log says so",
                                     range=(1.0, 3600.0))
    no_frames_again_s: float = setting(NO_FRAMES_AGAIN_S, "seconds between the log's repeats of the warning that no "
                                                          "camera frame comes (said first after no_frames_say_s) while "
                                                          "none comes", range=(1.0, 86400.0))
    no_readers_say_s: float = setting(NO_READERS_SAY_S, "seconds of controls sent with no subscriber to face_control "
                                                        "(no robot follows them) before the log says so",
                                      range=(1.0, 3600.0))
    regions_again_s: float = setting(REGIONS_AGAIN_S, "seconds before the log repeats its warning that a part of the "
                                                    "face is out of the camera picture (said at once the first "
                                                    "time, and when another part goes out)",
                                     range=(0.0, 86400.0))
    diagnostics_period_s: float = setting(DIAGNOSTICS_PERIOD_S, "seconds between the tracker's /diagnostics "
                                                                "messages, the no-frames and no-subscriber checks "
                                                                "running with them. Read at start",
                                          range=(0.1, 10.0), read_only=True)
    shared_topic_say_s: float = setting(SHARED_TOPIC_SAY_S, "seconds the camera topic has more than one publisher "
                                                            "(a camera driver beside a video file, two operators in "
                                                            "one namespace: their frames are tracked in turn) before "
                                                            "the log says so and /diagnostics warns (the default "
                                                            "outlasts Fast DDS's 20 s lease of a crashed node's stale "
                                                            "entry)", range=(1.0, 3600.0))


BASIS_ACK_TIMEOUT_S = 5.0  # a new operator basis is used once every subscriber acknowledged it, or after this
ACK_POLL_S = 0.02  # how often the basis thread checks those acknowledgements
UPSIDE_DOWN = "the operator's face is upside down in the camera frames (a camera mounted upside down?)"
SIDEWAYS = "the operator's face lies on its side in the camera frames (a camera on its side, a phone held sideways?)"
TURN_WAY = {1: "counter-clockwise", 3: "clockwise"}  # FaceTracker.side_turn -> the way to turn the image upright
STALE_S = 2.0  # frames older than this: /diagnostics says none come
# A mean brightness (of 255) of frames without a face below which the no-face line says they are nearly black: the
# bundled face mesh found lp_d0's face in its frames scaled to a mean of 3.1 (3 %), none at 2.1 (user51)
DARK_MEAN = 8.0
# ... above which it says they are nearly white (overexposed): the face mesh found no face in lp_d18's frames brightened
# to a mean of 253 nor in lp_d0's at 246; at 247 / 244 it did (user56)
BRIGHT_MEAN = 240.0
# A skipped frame's cause (empty, an encoding not read, too small ...) is said in the log at once, the same cause again
# at most this often, and /diagnostics names the causes of the last SKIPPED_SHOWN_S (common.CausesSaid). One throttle
# for every cause, and a check only when the worker took the frame, said nothing of an empty frame between good ones:
# the next good frame replaced it in the mailbox, or the previous cause's throttle held it back (user33, s34).
SKIPPED_SAY_AGAIN_S, SKIPPED_SHOWN_S = 5.0, 5.0

TRACKER_SETTINGS = settings(TrackerConfig)
PARAMS = {**TRACKER_SETTINGS, **settings(TrackerNodeSettings)}  # parameter name -> Setting
FILTER_FIELDS = ("smoothing", "min_cutoff", "beta", "d_cutoff")  # changed on the running tracker, no rebuild


class TrackerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("tracker_node", **kwargs)
        log_core_under(self)
        declare_settings(self, PARAMS)
        self.add_on_set_parameters_callback(self._on_set)
        self.pub = self.create_publisher(FaceControlMsg, "face_control",
                                         QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
        # latched, the current and the previous basis: a receiver that joins while codes still name the previous
        # one (the current one not yet acknowledged by everyone) gets both
        latched = QoSProfile(depth=2, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.basis_pub = self.create_publisher(ExpressionBasisMsg, companion_topic(
            self, "face_control/expression_basis", "face_control"), latched)
        # a reader of it with the default QoS (volatile) matches without a word from DDS or rclpy and misses the basis
        # the codes name until the next one is learned (minutes later: 2, 4, 8 ... x operator_basis_s): said once per
        # subscription, naming its node (user50)
        self._latched_readers = LatchedReaders(self, [self.basis_pub], "the operator expression basis",
                                               "the one the controls' codes name now; without it a reader decodes them "
                                               "on the fixed basis only")
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        newest = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.image_type = CompressedImage if self._param("image_transport") == "compressed" else Image
        self.image_topic = self.create_subscription(self.image_type, companion_topic(  # below a remapped camera topic
            self, IMAGE_TRANSPORTS[self._param("image_transport")], "camera/image_raw"), self._on_image,
            newest).topic_name
        # two cameras on it (a driver beside video:=, two operators in one namespace) are tracked in turn: said
        self._camera_publishers = SharedTopic(self, self.image_topic, float(self._param("shared_topic_say_s")))
        self.info_topic = companion_topic(self, "camera/camera_info", "camera/image_raw")  # beside the images
        self.create_subscription(CameraInfo, self.info_topic, self._on_info, qos_profile_sensor_data)
        recalibrate = self.create_subscription(Empty, companion_topic(self, "face_control/recalibrate", "face_control"),
                                               lambda _: self._request_recalibration(f"asked on {recalibrate}"), 1
                                               ).topic_name
        try:
            from std_srvs.srv import Trigger

            self.create_service(Trigger, "~/recalibrate", self._on_recalibrate_service)
        except ImportError:
            self.get_logger().debug("std_srvs not installed: recalibrate through the face_control/recalibrate topic")
        except Exception as e:  # std_srvs imports but its type support library does not load
            self.get_logger().warning(f"no ~/recalibrate service ({type(e).__name__}: {e}); the recalibrate "
                                      "service is off, use the face_control/recalibrate topic (std_msgs/Empty)")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._latest = Latest()  # newest (frame, its stamp in ns, arrival time)
        # camera_info: each one counted as it comes (its sequence number), the newest kept for the worker unless it is
        # not finite, which takes it if its intrinsics are plausible for the frames (else keeps the last one it took)
        self._info_seq = 0  # camera_info messages received
        self._info: tuple[int, CameraInfo] | None = None  # (sequence number, message): the newest, None if refused
        self._info_used: tuple[int, CameraInfo] | None = None  # (worker) the last one whose intrinsics were taken
        self._info_refusal: tuple[int, str, str] | None = None  # (sequence number, why, what is used instead) of the
        # newest refused one, until a later one is taken (or use_camera_info is set false)
        self._info_refusal_said = ""  # the refusal said in the log last ("" once a later camera_info is taken)
        self._intrinsics_said = None  # the last intrinsics log line (source and values)
        self._intrinsics_lines = CausesSaid(INTRINSICS_SAY_AGAIN_S)  # each line's last saying (a size flip-flop: 2)
        self._intrinsics_size = (0, 0)  # the frame size of the last intrinsics line
        self._encoding_notes = EncodingNotes()  # warns once about 8UC3 taken as BGR, and about BGRx padding
        self._upside_down_said = False  # the tracker's `upside_down` last said in the log
        self._side_turn_said = 0  # the tracker's `side_turn` last said in the log
        self._regions_out = ""  # the face regions the last control holds, and why ("" with the whole face seen)
        self._regions_said = CausesSaid(REGIONS_AGAIN_S)  # each operator's line on a region out (FaceTracker.regions_note)
        self._regions_back_owed = False  # a region out was said, and the whole face's return not yet
        self._skipped = CausesSaid(SKIPPED_SAY_AGAIN_S, SKIPPED_SHOWN_S)  # why frames were skipped (_skip)
        self._recalibrate = False
        # when to (re-)learn the operator basis, and from what (frame thread only)
        self._learner = BasisLearner(codec=expression_codec.CODEC_COMPACT)
        self.operator_basis: OperatorBasis | None = None  # the one codes are sent with (its id in each code)
        self._basis_jobs = Latest()  # residuals to learn a basis from -> the basis thread
        self._basis_done = None  # (generation, codec, basis or None if it failed, residuals) basis thread -> frame thread
        self._basis_lock = threading.Lock()
        self._generation = 0  # of the learner: + 1 at each re-calibration (results of older ones are not its own)
        self.basis_info = dict(learned=0, learn_ms="", reason="", unacknowledged=0)
        self._basis_log = RecurringLog(self.get_logger())  # a new basis every few seconds: INFO once a minute
        self._warned_zero_stamp = False
        self._stamp_ages = StampAges()  # recent frames' arrival on this node's clock - stamp
        self.trace = frametrace.FrameTrace("tracker_node")  # only with GHR_FRAME_TRACE set
        self.tracker: FaceTracker | None = None
        self._wanted: TrackerConfig | None = None  # the config the parameters ask for (the tracker may have fallen back)
        self.state = "starting"
        self.model_error = ""
        self.backend = ""
        self.calibrated = False
        self.counts = dict(received=0, dropped=0, processed=0, published=0, ignored=0, decode_errors=0, errors=0, faces=0,
                           operator_switches=0)  # another face took over from the one followed (core says it)
        self._window = deque(maxlen=300)  # (time, processing s, age s, face) of recent processed frames
        self._last_no_face_pub = 0.0
        # frames without a face (frame thread writes, diagnostics timer reads): since when (monotonic s; None while
        # faces are found), their last one's time and mean brightness (of 255), and whether the log said so
        self._no_face = (None, 0.0, 0.0)
        self._no_face_said = False
        self._last_frame_time = 0.0
        self._ready_at: float | None = None  # monotonic s when the tracker began waiting for frames
        # the two above and below: written by the image callback and the diagnostics timer only, which are in the node's
        # default (mutually exclusive) callback group: never at once, also in avatar_pipeline's multi-threaded executor
        self._no_frames_said = 0.0  # monotonic s of the last "no camera frames" line
        self._end_said = False  # the end of the frames' video file was said (once, until frames come again)
        self._videos_ended: dict[str, str] = {}  # video_source_node status name -> its video's end, from /diagnostics
        self._prev_received = (time.monotonic(), 0)
        self._unread_since = 0.0  # monotonic s since controls go out with no subscriber to face_control (0: they have one)
        self._unread_said = False
        self._published_prev = 0  # counts["published"] at the previous diagnostics tick
        self._loading = Loading(loading=True)  # the worker's start-up (MediaPipe, codec bases): not waited for
        self._worker = threading.Thread(target=self._run, name="tracker_worker", daemon=True)
        self._worker.start()
        self._basis_worker = threading.Thread(target=self._basis_loop, name="operator_basis", daemon=True)
        self._basis_worker.start()
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        steady_timer(self, float(self._param("diagnostics_period_s")), self._publish_diagnostics)
        steady_timer(self, 2.0, self._latched_readers.check)

    # ----------------------------------------------------------------------------------------------
    # parameters

    def _param(self, name):
        return self.get_parameter(name).value

    def _config(self, overrides: dict | None = None) -> TrackerConfig:
        values = {s.field: self._param(name) for name, s in TRACKER_SETTINGS.items()}
        for name, value in (overrides or {}).items():
            if name in TRACKER_SETTINGS:
                values[TRACKER_SETTINGS[name].field] = value
        return TrackerConfig(**values)

    def _on_set(self, params) -> SetParametersResult:
        overrides = {p.name: p.value for p in params}
        try:
            check_parameters(PARAMS, params)  # (image_transport is read-only: rclpy refuses it before this callback)
            self._config(overrides).validate()
        except (ValueError, TypeError) as e:
            return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------------------------------------
    # callbacks (cheap: keep the newest, wake the worker)

    def _on_image(self, msg: Image | CompressedImage) -> None:
        stamp, clock = stamp_to_ns(msg.header.stamp), self.get_clock().now().nanoseconds
        if stamp == 0:
            stamp = clock
            if not self._warned_zero_stamp:
                self._warned_zero_stamp = True
                self.get_logger().warning("camera frames carry no stamp: stamping them on arrival")
        self._stamp_ages.add(clock, stamp, f"camera frames on {self.image_topic}", self.get_logger())
        self.trace.mark(frametrace.TRACKER_IN, stamp)
        with self._lock:
            self.counts["received"] += 1
        now = time.monotonic()
        try:  # a frame that cannot be decoded is said here (microseconds), before a newer frame replaces it unread
            if isinstance(msg, Image):
                check_raw(msg.data, msg.width, msg.height, msg.step, msg.encoding, int(self._param("max_image_pixels")))
            else:  # empty, cut short (a JPEG without its end, a PNG without its image data's end), no image
                check_compressed(msg.data, msg.format)
        except ImageTooLarge as e:
            self._skip_too_large(e, now)
        except ValueError as e:
            self._skip(str(e), now)
        else:
            if self._latest.put((msg, stamp, now)):
                with self._lock:
                    self.counts["dropped"] += 1
        if self._no_frames_said:  # the frames were said to be missing: say that they came
            self._no_frames_said, self._end_said = 0.0, False
            since = now - (self._last_frame_time or self._ready_at or now)
            self.get_logger().info(f"camera frames on {self.image_topic} again, after {since:.0f} s without"
                                   if self._last_frame_time else f"camera frames arriving on {self.image_topic}")
        self._last_frame_time = now

    def _skip(self, cause: str, now: float) -> None:
        """A frame skipped for `cause` (ValueError's text) at monotonic seconds `now`: counted (decode_errors), said
        in the log per cause (SKIPPED_SAY_AGAIN_S) and on /diagnostics for SKIPPED_SHOWN_S."""
        with self._lock:
            self.counts["decode_errors"] += 1
        self.state = f"bad frame: {cause}"
        if self._skipped.add(cause, now):
            self.get_logger().warning(f"frame skipped: {cause} (each cause said again at most every "
                                      f"{SKIPPED_SAY_AGAIN_S:g} s; decode_errors on /diagnostics counts them)")

    def _skip_too_large(self, e: ImageTooLarge, now: float) -> None:
        """A frame above max_image_pixels, skipped with a camera's remedy (ImageTooLarge.camera_frame), not a photo's."""
        self._skip(e.camera_frame(f"{self.get_fully_qualified_name()} max_image_pixels"), now)

    def _on_info(self, msg: CameraInfo) -> None:
        """Keep the newest camera_info with finite, non-negative values (all zeros = uncalibrated: fine, P or fov_deg
        is used); the worker checks the rest against the frames' size (_intrinsics). A camera driver sends one per
        frame: a refusal is said once (_refuse_info)."""
        with self._lock:
            self._info_seq += 1
            seq = self._info_seq
        try:
            check_camera_info(msg.k, msg.p)
        except ValueError as e:
            self._info = None  # the worker goes back to the one it took before
            if self._param("use_camera_info"):
                self._refuse_info(seq, str(e))
            return
        self._info = (seq, msg)

    def _refuse_info(self, seq: int, why: str) -> None:
        """The camera_info number `seq` is refused for `why`: said in the log unless it is the refusal said last
        (a driver repeats its camera_info with every frame: before, a NaN one was said every 5 s and an implausible
        one, fx = 1 px, taken without a word), and on /diagnostics until a later camera_info is taken. A refusal of
        an earlier camera_info than the one refused last (the one taken before, for frames of another size) is not
        said."""
        kept = ("the intrinsics of the camera_info taken before it" if self._info_used is not None else
                f"a {float(self._param('fov_deg')):g} degree field of view (fov_deg)")
        with self._lock:
            if self._info_refusal is not None and seq < self._info_refusal[0]:
                return
            self._info_refusal = (seq, why, kept)
            say, self._info_refusal_said = why != self._info_refusal_said, why
        if say:
            self.get_logger().warning(f"camera_info refused: {why}; keeping {kept} (said again only when the refusal "
                                      "changes; /diagnostics shows it while it is the newest camera_info)")

    def _take_info(self, taken: tuple[int, CameraInfo]) -> None:
        """(worker) The camera_info `taken` (sequence number, message) gives the intrinsics: a refusal of an earlier
        one is over."""
        self._info_used = taken
        with self._lock:
            if self._info_refusal is not None and taken[0] > self._info_refusal[0]:
                self._info_refusal, self._info_refusal_said = None, ""

    def _request_recalibration(self, why: str) -> None:
        """Re-calibrate at the next frame, said in one line with why (the tracker's own line is debug: two near-same
        lines for one re-calibration, 're-calibrating ... on the next frames' and core's 'recalibrating ... from the
        next 15 frames'; user52)."""
        self._recalibrate = True
        self.get_logger().info(f"re-calibrating the neutral face ({why}): the expressions are read against it, learned "
                               f"anew from the next {int(self._param('neutral_frames'))} frames with a face, the least "
                               "expressive counting most ('neutral face calibrated' says when)")

    def _on_recalibrate_service(self, request, response):
        self._request_recalibration(f"asked by the {self.resolve_service_name('~/recalibrate', only_expand=True)} "
                                    "service")
        response.success, response.message = True, "the neutral face is re-calibrated over the next frames"
        return response

    # ----------------------------------------------------------------------------------------------
    # worker

    def _build(self, config: TrackerConfig) -> None:
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None
        try:
            self.tracker = FaceTracker(config)
            self.model_error = ""
        except ValueError as e:
            self.get_logger().error(f"{e}; falling back to the bundled face mesh")
            self.model_error = f"model not loaded, using the bundled face mesh: {e}"
            self.tracker = FaceTracker(replace(config, model_path=""))
        self.backend = self.tracker.config.model_path or "mediapipe face mesh (bundled)"
        self._wanted = config
        self._switches_seen = 0  # the new tracker's operator_switches taken (_process)

    def _new_neutral(self) -> None:
        """The tracker's neutral face starts again: a new operator basis is learned for it (the old one serves until
        then; results of jobs for the old one are not taken)."""
        self._learner.reset()
        self._generation += 1

    def _intrinsics(self, w: int, h: int) -> np.ndarray:
        """[3, 3] intrinsics for a w x h frame: camera_info K, else its P, else fov_deg (core/camera_info.py); a
        camera_info whose intrinsics are not a real camera's is refused (_refuse_info) and the one taken before it
        (else fov_deg) is used. Says once which, and again whenever the source or the values (as the log line prints
        them) change."""
        use = self._param("use_camera_info")
        fov = float(self._param("fov_deg"))
        K, source, info = intrinsics_from_camera_info(np.zeros(9), (), 0, 0, w, h, fov) + (None,)
        if not use:  # (camera_info is not read: nothing of it is refused)
            self._info_refusal, self._info_refusal_said = None, ""
        # the newest camera_info, else (refused) the one taken before it
        for taken in [t for t in (self._info, self._info_used) if t is not None] if use else []:
            seq, msg = taken
            try:
                K, source = intrinsics_from_camera_info(msg.k, msg.p, msg.width, msg.height, w, h, fov)
            except ValueError as e:  # (the one taken before may not fit frames of another size either)
                self._refuse_info(seq, str(e))
                continue
            info = msg
            self._take_info(taken)
            break
        refused = use and self._info_refusal is not None and info is None
        line = describe(K, source, fov, have_camera_info=self._info_seq > 0, use_camera_info=use, refused=refused)
        if not self._info_seq and use:
            line += f", listening for it on {self.info_topic}"
        mismatch = size_mismatch(info.width, info.height, w, h) if info is not None and source != "fov" else ""
        if mismatch:
            line += f"; {mismatch}"
        if line != self._intrinsics_said:
            resized, self._intrinsics_said, self._intrinsics_size = (w, h) != self._intrinsics_size, line, (w, h)
            if not self._intrinsics_lines.add(line, time.monotonic()) and resized:
                self.get_logger().debug(line)  # a size whose line was said less than INTRINSICS_SAY_AGAIN_S ago
            elif (info is None and not refused) or (source == "K" and not mismatch):
                self.get_logger().info(line)
            else:
                self.get_logger().warning(line)
        return K

    def _run(self) -> None:
        try:
            self._build(self._config())
            for codec in expression_codec.COMPACT_CODECS:  # computed once per process (~1 s): not on the first frame
                expression_codec.basis(codec)
            if not self._loading.end():  # stopped meanwhile: destroy_node did not wait, the node may be gone
                tracker, self.tracker = self.tracker, None  # (closed here, once: destroy_node closes a tracker left)
                tracker.close()
                return
            self.state = "waiting for frames"
            self._ready_at = time.monotonic()
            while not self._stop.is_set():
                item = self._latest.take(0.1)
                if item is None:
                    continue
                try:
                    self._process(*item)
                except Exception as e:  # one bad frame must not stop tracking
                    if not rclpy.ok():
                        return
                    self.counts["errors"] += 1
                    self.state = f"frame failed: {type(e).__name__}: {e}"
                    self.get_logger().error(self.state, throttle_duration_sec=5.0)
        except Exception as e:  # keep the node alive and say why it stopped tracking
            if rclpy.ok():
                self.state = f"tracking stopped: {type(e).__name__}: {e}"
                self.get_logger().error(self.state)

    def _process(self, msg: Image | CompressedImage, stamp: int, arrived: float) -> None:
        config = self._config()
        if config != self._wanted:
            filter_only = replace(self._wanted, **{k: getattr(config, k) for k in FILTER_FIELDS}) == config
            if filter_only:
                self.tracker.set_filter(config.min_cutoff, config.beta, config.d_cutoff, config.smoothing)
                self._wanted = config
            else:  # a new FaceTracker learns its neutral face anew: as a re-calibration, and said (it went unsaid,
                # and the operator basis learned against the old neutral went on learning; user39, s39)
                changed = sorted(f.name for f in fields(config)
                                 if getattr(config, f.name) != getattr(self._wanted, f.name))
                self._build(config)
                self._new_neutral()
                self.get_logger().info(f"tracker rebuilt for {', '.join(changed)}: the neutral face is re-calibrated "
                                       "over the next frames")
        if self._recalibrate:
            self._recalibrate = False
            self.tracker.recalibrate()
            self._new_neutral()
        self.trace.mark(frametrace.TRACKER_START, stamp)
        t0 = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):  # its notes (transparent pixels of PNG frames) said once each
                rgb, _, _, notes = decode_with_format(bytes(msg.data), int(self._param("max_image_pixels")), msg.format,
                                                      said=self._encoding_notes)  # its logged lines once too
                for note in filter(None, map(self._encoding_notes.once, notes)):
                    self.get_logger().warning(f"camera frames on {self.image_topic}: {note}")
            else:
                rgb, notes = decode_raw_with_notes(bytes(msg.data), msg.width, msg.height, msg.step, msg.encoding,
                                                   bool(msg.is_bigendian), int(self._param("max_image_pixels")))
                note = self._encoding_notes.first(msg.encoding)
                if note:
                    self.get_logger().warning(note)
                padding = ALPHA_PADDING_NOTE.format(encoding=msg.encoding.strip())
                if padding in notes and self._encoding_notes.once(padding):  # BGRx frames: said once per encoding
                    self.get_logger().warning(padding)
            control = self.tracker.process(rgb, stamp, self._intrinsics(rgb.shape[1], rgb.shape[0]))
        except ImageTooLarge as e:  # a compressed frame above the limit even decoded at 1/8, or not a JPEG
            self._skip_too_large(e, time.monotonic())
            return
        except ValueError as e:
            self._skip(str(e), time.monotonic())
            return
        busy = time.perf_counter() - t0
        if control is None:
            self.counts["ignored"] += 1
            return
        self.counts["processed"] += 1
        self.counts["faces"] += int(control.face_detected)
        if self.tracker.operator_switches != self._switches_seen:  # another person's face is followed now (core
            # warned): their neutral face is learned anew, as on a re-calibration; the previous operator's made theirs
            # read as an expression (user46, s46)
            self._switches_seen = self.tracker.operator_switches
            self.counts["operator_switches"] += 1
            self._request_recalibration("another person's face is followed now")
        self.calibrated = self.tracker.calibrated
        self.state = "tracking" if control.face_detected else "no face in view"
        self._watch_face(control.face_detected, rgb)
        if self.tracker.upside_down != self._upside_down_said:  # a camera mounted upside down: logged, /diagnostics
            self._upside_down_said = self.tracker.upside_down
            if self._upside_down_said:
                self.get_logger().warning(f"{UPSIDE_DOWN}: the face mesh reads it as an upright face and the controls "
                                          "make the avatar grimace; turn the camera, or its image half a turn (the "
                                          "camera driver's rotation or flip setting)")
            else:
                self.get_logger().info("the operator's face is upright in the camera frames again")
        if self.tracker.side_turn != self._side_turn_said:  # a camera on its side: logged, /diagnostics
            self._side_turn_said = self.tracker.side_turn
            if self._side_turn_said:
                self.get_logger().warning(f"{SIDEWAYS}: the controls roll the avatar's head a quarter turn on the "
                                          "robot's display; turn the camera upright, or its image a quarter turn "
                                          f"{TURN_WAY[self._side_turn_said]} (the camera driver's rotation setting)")
            else:
                self.get_logger().info("the operator's face is upright in the camera frames again (not on its side)")
        note = self.tracker.regions_note if control.face_detected else ""
        self._say_regions(self.tracker.regions_out if control.face_detected else (), note, control.face_detected)
        if note:
            self.state = note
        if self._upside_down_said and control.face_detected:
            self.state = UPSIDE_DOWN
        if self._side_turn_said and control.face_detected:
            self.state = SIDEWAYS
        now = time.monotonic()
        rate = float(self._param("no_face_rate"))
        if not control.face_detected and rate > 0 and now - self._last_no_face_pub < 1.0 / rate:
            self._window.append((now, busy, None, False))
            return
        if not control.face_detected:
            self._last_no_face_pub = now
        try:
            control.validate()
        except ValueError as e:  # never publish what drivers refuse; a fresh tracker clears the filters' state
            self.counts["errors"] += 1
            self.get_logger().error(f"the tracker produced an unusable control ({e}); restarting it")
            self._build(self._wanted)
            return
        control.frame_id = msg.header.frame_id
        if not self._param("send_landmarks"):
            control.landmarks = np.zeros((0, 3), np.float32)
        codec = expression_codec.CODECS.get(self._param("expression_encoding"), expression_codec.CODEC_COMPACT)
        if codec in expression_codec.COMPACT_CODECS and control.face_detected:  # (calibrated or not yet)
            self._learn_basis(control, stamp, codec)
        self.pub.publish(control_to_msg(control, codec, self.operator_basis))
        self.trace.mark(frametrace.TRACKER_PUBLISHED, stamp)
        self.counts["published"] += 1
        age = (self.get_clock().now().nanoseconds - stamp) * 1e-9
        self._window.append((now, busy, age, control.face_detected))

    def _learn_basis(self, control, stamp: int, codec: int) -> None:
        """Frame thread, cheap (~1 ms): switch to a basis the basis thread has published, keep this frame's
        residual (of compact code `codec`), and hand the residuals to the basis thread when a new basis is due
        (never waits for it). A basis is used with the code whose residual it was learned from only: when
        expression_encoding changes, the codes go without one (the fixed part) until the new code's is learned
        (operator_basis_s later), and a basis of the previous code still being learned is not taken."""
        seconds = float(self._param("operator_basis_s"))
        if seconds <= 0:
            self.operator_basis = None
            self._learner.reset()
            return
        if self._learner.codec != codec:  # expression_encoding set to another compact code: its own residuals
            self._learner.reset()
            self._learner.codec = codec
            self._generation += 1
            self.operator_basis = None  # learned on the previous code's residual: never named by this code's
        with self._basis_lock:
            done, self._basis_done = self._basis_done, None
        if done is not None:
            generation, basis_codec, basis, residuals = done
            if basis is not None and basis_codec == codec:
                self.operator_basis = basis  # published and acknowledged: codes use it from this frame on
            if generation == self._generation:  # (else the learner was reset meanwhile: not its basis)
                self._learner.learned(basis, residuals) if basis is not None else self._learner.failed()
        self._learner.first_s = seconds
        if self._learner.add(control.expression, control.eyelid_ratios, stamp, self.operator_basis):
            self._basis_jobs.put((self._generation, codec, self._learner.take(), stamp, self._learner.reason))

    def _basis_loop(self) -> None:
        """Basis thread: learn (an SVD, 0.1 s and more under load: off the frame thread), publish the basis
        latched, wait until every subscriber has acknowledged it, then let the frame thread switch its codes to
        it, so that no receiver gets a code naming a basis it does not have yet."""
        while not self._stop.is_set():
            job = self._basis_jobs.take(0.2)
            if job is None:
                continue
            generation, codec, residuals, stamp, reason = job
            try:
                t0 = time.perf_counter()
                basis = learn(residuals)
                learn_s = time.perf_counter() - t0
                self.basis_pub.publish(basis_to_msg(basis, stamp))
                acked = self._wait_acknowledged(BASIS_ACK_TIMEOUT_S)
            except Exception as e:  # keep tracking with the basis in use; the next window tries again
                if self._stop.is_set() or not rclpy.ok():
                    return
                with self._basis_lock:
                    self._basis_done = (generation, codec, None, residuals)
                self.get_logger().error(f"operator expression basis not learned: {type(e).__name__}: {e}")
                continue
            if not acked:
                self.basis_info["unacknowledged"] += 1
                self.get_logger().warning(
                    f"operator expression basis {basis.id} not acknowledged by every subscriber within "
                    f"{BASIS_ACK_TIMEOUT_S:g} s; using it now (a receiver without it decodes the fixed part)")
            self.basis_info.update(learned=self.basis_info["learned"] + 1, learn_ms=f"{learn_s * 1e3:.0f}",
                                   reason=reason)
            with self._basis_lock:
                self._basis_done = (generation, codec, basis, residuals)
            self._basis_log.say(f"operator expression basis {basis.id} learned from {len(residuals)} frames "
                                f"({basis.num_components} components, {reason}, {learn_s * 1e3:.0f} ms) and "
                                "published latched; codes use it from now on")

    def _wait_acknowledged(self, timeout_s: float) -> bool:
        """True once every subscriber of the basis topic has acknowledged what was published, False after
        timeout_s (or at shutdown). Polls: rclpy's wait_for_all_acked holds the GIL while it waits (measured: a
        2 s wait for a stopped subscriber froze every other thread of the process for 2 s), which would stop
        the frame thread for as long as a basis crosses a slow link or an outage lasts."""
        deadline = time.monotonic() + timeout_s
        while not self._stop.is_set():
            if self.basis_pub.wait_for_all_acked(Duration()):  # a zero timeout only checks
                return True
            if time.monotonic() >= deadline:
                return False
            self._stop.wait(ACK_POLL_S)
        return False

    # ----------------------------------------------------------------------------------------------
    # diagnostics

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        """Keep what the video sources on /diagnostics say of their video's end (VIDEO_ENDED_KEY)."""
        for st in msg.status:
            if st.name.endswith(f": {VIDEO_SOURCE_TASK}"):
                values = {kv.key: kv.value for kv in st.values}
                if values.get(VIDEO_ENDED_KEY) == "true":
                    self._videos_ended[st.name] = (f"{st.hardware_id} ended after "
                                                   f"{values.get(VIDEO_FRAMES_KEY, '?')} frames "
                                                   f"({values.get(VIDEO_AGAIN_KEY, 'played without loop')})")
                else:
                    self._videos_ended.pop(st.name, None)

    def _video_ended(self) -> str:
        """'<file> ended after N frames (<how it plays again>)' when a publisher of the camera topic is a
        video_source_node whose file ended (its /diagnostics: the source's own words, VideoSourceNode.again), else
        ""."""
        if not self._videos_ended:
            return ""
        for info in self.get_publishers_info_by_topic(self.image_topic):
            node = endpoint_node(info)
            ended = node is not None and self._videos_ended.get(status_name(node, VIDEO_SOURCE_TASK))
            if ended:
                return ended
        return ""

    def _say_if_no_frames(self, now: float, ended: str) -> None:
        """A warning while no camera frame comes, again every `no_frames_again_s` (`_on_image` says when they come):
        - none came yet, `no_frames_say_s` after the tracker is ready: the topic listened to, its publishers, and the
          nodes that publish it (a driver that cannot open its camera, a video_source_node that cannot decode its
          file: before, 'no sensor_msgs/Image topic on the graph: is the camera driver running?' beside '(1
          publishers)', user37), else the other Image topics on the graph (a driver publishing `/image_raw` or
          `/usb_cam/image_raw` is one remapping away);
        - frames came and stopped, `no_frames_say_s` after the last one: the topic, its publishers, how long ago;
        - their publisher is a video_source_node whose file ended, once the frames are STALE_S old: once, as
          information (the video ended, and how it plays again in the source's words);
        - the video's end was said, and no longer is while no frame comes (its source left the graph, Ctrl-C or a
          crash): as frames that stopped, `no_frames_say_s` after that (before: nothing more in the log, while
          /diagnostics warned 'no camera frames'; s20). A source that plays the file again sends frames meanwhile.
        `ended`: _video_ended() once the frames are STALE_S old, else "" (_publish_diagnostics asks the graph once a
        tick, for both)."""
        if self._ready_at is None:
            return
        say_s, again_s = float(self._param("no_frames_say_s")), float(self._param("no_frames_again_s"))
        if self._end_said:
            if ended:
                return
            self._end_said, self._no_frames_said = False, now - again_s + say_s
        if ended:
            self._no_frames_said, self._end_said = now, True
            self.get_logger().info(
                f"the video {ended}; no camera frames on {self.image_topic} and no face_control until frames come "
                "again")
            return
        if self._no_frames_said and now - self._no_frames_said < again_s:
            return
        if self._last_frame_time:
            gap = now - self._last_frame_time
            if gap >= say_s:
                self._no_frames_said = now
                self.get_logger().warning(
                    f"camera frames stopped on {self.image_topic}: the last one came {gap:.0f} s ago "
                    f"({self.count_publishers(self.image_topic)} publishers); no face_control is sent until they "
                    f"come back (render nodes play their idle animation meanwhile)")
            return
        if now - self._ready_at < say_s:
            return
        self._no_frames_said = now
        publishers = self.count_publishers(self.image_topic)
        kind = "sensor_msgs/CompressedImage" if self.image_type is CompressedImage else "sensor_msgs/Image"
        not_display = frozenset({"render_node"})  # the face display's images are no camera
        msg_type = kind.replace("/", "/msg/")
        images = other_topics(self, msg_type, self.image_topic, not_display)
        # the same camera on the other transport's topic (image_transport's compressed plugin publishes below the raw
        # topic): a tracker started on the other one (a video:= file's video_source_node publishes raw only)
        if self.image_type is Image:
            other, other_kind, transport = f"{self.image_topic}/compressed", "sensor_msgs/CompressedImage", "compressed"
        else:
            other, other_kind, transport = self.image_topic.removesuffix("/compressed"), "sensor_msgs/Image", "raw"
        infos = self.get_publishers_info_by_topic(self.image_topic)
        senders = sorted({endpoint_node(i, UNNAMED_NODE) for i in infos if i.topic_type == msg_type})
        strangers = sorted({f"{endpoint_node(i, UNNAMED_NODE)} ({i.topic_type})"
                            for i in infos if i.topic_type != msg_type})
        if strangers:  # the topic carries another type: DDS never matches it with this subscription
            hint = (f"{', '.join(strangers)} {'publishes' if len(strangers) == 1 else 'publish'} another type on it: "
                    f"the tracker reads {kind} there")
        elif senders:  # it is there and sends nothing: a driver that cannot open its camera, a file it cannot decode
            hint = (f"{', '.join(senders)} {'publishes' if len(senders) == 1 else 'publish'} it but sent no frame "
                    "that reached the tracker: see its log (a camera device it cannot open, a file it cannot decode)")
        elif other in other_topics(self, other_kind.replace("/", "/msg/"), self.image_topic, not_display):
            hint = (f"{other} ({other_kind}) is published: the tracker reads it when started with "
                    f"-p image_transport:={transport} (launch: camera_transport:={transport})")
        elif images:
            topic = "<topic without /compressed>" if self.image_type is CompressedImage else "<topic>"
            hint = (f"{kind} topics on the graph: {', '.join(images)}; to read one: camera_topic:={topic} (launch) "
                    f"or -r camera/image_raw:={topic}")
        else:
            hint = (f"no {kind} topic on the graph: is the camera driver running, in {this_domain(self)}? "
                    "(or play a camera or a file without one: video:=/dev/video0 or video:=clip.mp4)")
        self.get_logger().warning(f"no camera frames on {self.image_topic} {now - self._ready_at:.0f} s after the "
                                  f"tracker became ready ({publishers} publishers); {hint}")

    def _say_regions(self, out: tuple[tuple[str, str], ...], note: str, found: bool) -> None:
        """Frame thread: keep which regions of the face the frame's control holds (FaceTracker.regions_out:
        /diagnostics' face_regions_out; `note`, FaceTracker.regions_note, is the state) and say `note` as a warning,
        each note at most every `regions_again_s` (common.CausesSaid: a note that changes, the eyes cut after the
        brows, is said); the whole face in view again (a frame with a face, `found`, and nothing out) after a line said
        so is said too. Before, core's info lines alone said it, unthrottled and in its own terms (a lower face 'out of
        view' at visibility 1.00): the robot showed the eyes last seen, fading, and the operator did not learn why."""
        self._regions_out = "; ".join(f"{name} {why}" for name, why in out)
        self._regions_said.again_s = again_s = float(self._param("regions_again_s"))
        if out and self._regions_said.add(note, time.monotonic()):
            self._regions_back_owed = True
            self.get_logger().warning(f"{note} (said again at most every {again_s:g} s, regions_again_s; "
                                      "/diagnostics face_regions_out says it while it lasts)")
        elif found and not out and self._regions_back_owed:
            self._regions_back_owed = False
            self.get_logger().info("the whole face is in the camera picture again: the robot follows it")

    def _watch_face(self, found: bool, rgb: np.ndarray) -> None:
        """Frame thread: keep since when the frames show no face (a gap of STALE_S without frames starts it again) and
        the last one's mean brightness; say when a face is found again after `_say_if_no_face` said none was."""
        now = time.monotonic()
        since, last, _ = self._no_face
        if found:
            if self._no_face_said:
                self.get_logger().info(f"a face is in the camera frames again, after {now - since:.0f} s without: "
                                       "the robot follows it")
            self._no_face, self._no_face_said = (None, 0.0, 0.0), False
            return
        if since is None or now - last > STALE_S:
            since, self._no_face_said = now, False
        self._no_face = (since, now, float(rgb[::4, ::4].mean()))

    def _say_if_no_face(self, now: float) -> None:
        """A warning, once, when the frames have shown no face for `no_frames_say_s` (the face left, the lights went
        out, the camera points elsewhere): the tracker said nothing, its face_control said face_detected false, and
        the operator saw no word of why the robot played its idle animation (user51). Frames that stop are
        `_say_if_no_frames`'s."""
        since, last, mean = self._no_face
        if since is None or self._no_face_said or now - last > STALE_S:
            return
        if now - since < float(self._param("no_frames_say_s")):
            return
        self._no_face_said = True
        dark = (f"the frames are nearly black (mean brightness {mean:.0f} of 255): light the face, or uncover the "
                "lens; " if mean < DARK_MEAN else "")
        if mean > BRIGHT_MEAN:  # a bright window behind the operator, an exposure set too high
            dark = (f"the frames are nearly white (mean brightness {mean:.0f} of 255): the camera is overexposed (a "
                    "bright window or lamp behind you, or its exposure set too high): light the face from the front, "
                    "or lower the camera's exposure; ")
        self.get_logger().warning(
            f"no face in the camera frames on {self.image_topic} for {now - since:.0f} s: the robot plays its idle "
            f"animation until one is found; {dark}face the camera, the whole face in the picture (a face turned far "
            "away, covered, or only a few dozen pixels wide is not found)")

    def _say_if_unread(self, now: float) -> None:
        """A warning once controls have gone out for `no_readers_say_s` with no subscriber to face_control (no robot
        follows them): the FaceControl topics that render nodes do subscribe to, and how to join them; information
        when a subscriber comes after it. Called once a tick by _publish_diagnostics."""
        sent = self.counts["published"] > self._published_prev
        self._published_prev = self.counts["published"]
        if self.pub.get_subscription_count():
            if self._unread_said:
                self.get_logger().info(f"{self.pub.topic_name} has a subscriber now: a robot follows these controls")
            self._unread_since, self._unread_said = 0.0, False
            return
        if not sent or self._unread_said:
            return
        self._unread_since = self._unread_since or now
        if now - self._unread_since < float(self._param("no_readers_say_s")):
            return
        self._unread_said = True
        readers = other_topics(self, FACE_CONTROL_TYPE, self.pub.topic_name, subscribed=True)
        if readers:
            hint = (f"FaceControl is read on {', '.join(readers)}: start that robot with control_topic:="
                    f"{self.pub.topic_name} (robot.launch.py; -r face_control:={self.pub.topic_name} with ros2 run), "
                    "or this launch with control_topic:=<that topic>")
        else:
            hint = (f"no node reads FaceControl on the graph: is the robot up, in {this_domain(self)}, with "
                    "discovery between the hosts (docs/DEPLOYMENT.md)?")
        self.get_logger().warning(f"no node subscribes to {self.pub.topic_name}: the controls of the last "
                                  f"{now - self._unread_since:.0f} s went to no robot; {hint}")

    def _say_if_two_cameras(self, now: float) -> list[str]:
        """A warning, once per set of publishers, when the camera topic has had more than one for shared_topic_say_s:
        their frames are tracked in turn and the robot's face follows each camera's face by turns. Before, a camera
        driver left running beside `operator.launch.py video:=clip.mp4` drove one robot with two people's faces mixed
        frame by frame, and the log said only a new intrinsics line at every frame (user55). -> the publishers while
        the set lasts past that time, for /diagnostics ([] else)."""
        shared = self._camera_publishers
        shared.after_s = float(self._param("shared_topic_say_s"))
        names = shared.due(now)
        if names:
            self.get_logger().warning(
                f"{len(names)} publishers on {self.image_topic} for {shared.held_s(now):.0f} s ({', '.join(names)}): "
                "the tracker takes their frames in turn, so the robot's face follows each camera's face by turns (two "
                "people's poses and expressions mixed frame by frame); keep one camera on this topic: a camera driver "
                "beside video:= (leave out video:= or stop the driver), two operators launched in one namespace (give "
                "each its own namespace:=), or camera_topic:=<the other camera's topic>")
        return shared.held(now)

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        cameras = self._say_if_two_cameras(now)
        self._say_if_unread(now)
        stale = now - self._last_frame_time > STALE_S
        ended = self._video_ended() if stale else ""
        self._say_if_no_frames(now, ended)
        self._say_if_no_face(now)
        recent = [w for w in tuple(self._window) if now - w[0] <= 5.0]  # a snapshot: the worker appends meanwhile
        busy = [w[1] * 1e3 for w in recent]
        ages = [w[2] * 1e3 for w in recent if w[2] is not None]
        offset = self._stamp_ages.offset
        refusal = self._info_refusal
        if self.state.startswith("tracking stopped"):
            level, message = DiagnosticStatus.ERROR, self.state
        elif self.model_error:
            level, message = DiagnosticStatus.WARN, self.model_error
        elif ended:  # played once, as asked: nothing is wrong
            level, message = DiagnosticStatus.OK, f"the video {ended}: no camera frames on {self.image_topic}"
        elif stale:
            level, message = DiagnosticStatus.WARN, (
                f"no camera frames on {self.image_topic} for {now - self._last_frame_time:.0f} s"
                if self._last_frame_time else f"no camera frames on {self.image_topic} yet")
        elif skipped := self._skipped.recent(now):
            level, message = DiagnosticStatus.WARN, f"frames skipped in the last {SKIPPED_SHOWN_S:g} s: " + "; ".join(
                skipped)
        elif refusal is not None:
            level, message = DiagnosticStatus.WARN, f"camera_info refused: {refusal[1]}; using {refusal[2]}"
        elif cameras:
            level, message = DiagnosticStatus.WARN, (f"{len(cameras)} publishers on {self.image_topic} "
                                                     f"({', '.join(cameras)}): their frames are tracked in turn")
        elif self.state != "tracking":
            level, message = DiagnosticStatus.WARN, self.state
        else:
            level, message = DiagnosticStatus.OK, "tracking"
        c = dict(self.counts)
        waiting = "video ended" if ended else "waiting for frames"
        t_prev, received_prev = self._prev_received
        self._prev_received = (now, c["received"])
        values = {
            # no frames for STALE_S once ready: waiting (or the video ended) whatever the last frame said, unless
            # tracking stopped; 'starting' (MediaPipe loading) stays: `gaussian-head demo` and test_launch wait for its end
            "state": (waiting if stale and self._ready_at is not None and not self.state.startswith("tracking stopped")
                      else self.state),
            "input_rate_hz": f"{(c['received'] - received_prev) / max(now - t_prev, 1e-3):.1f}",
            "processed_rate_hz": f"{display_rate([w[0] for w in recent], now):.1f}",
            "processing_ms_mean": f"{np.mean(busy):.2f}" if busy else "",
            "processing_ms_max": f"{np.max(busy):.2f}" if busy else "",
            "latency_ms_mean": f"{np.mean(ages):.1f}" if ages else "",  # publication time - camera stamp
            "face_detected_ratio": f"{np.mean([w[3] for w in recent]):.2f}" if recent else "",
            "calibrated": str(self.calibrated).lower(),
            "operator_basis_id": str(self.operator_basis.id if self.operator_basis is not None else 0),
            "operator_basis_frames": str(self._learner.frames),  # residuals kept to learn the next basis from
            "operator_bases_learned": str(self.basis_info["learned"]),
            "operator_basis_learn_ms": self.basis_info["learn_ms"],  # on the basis thread, not the frame thread
            "operator_basis_reason": self.basis_info["reason"],  # why the last one was learned
            "operator_bases_unacknowledged": str(self.basis_info["unacknowledged"]),
            "backend": self.backend,
            "stamp_offset_s": "" if offset is None else f"{offset:.3f}",  # arrival - stamp (pacing.stamp_offset)
            "camera_info_refused": "" if refusal is None else refusal[1],  # why the newest camera_info was refused
            "camera_publishers": str(self._camera_publishers.count),  # on the camera topic (more than 1: said)
            # the face regions the last control holds and why, e.g. "brow region cut by the camera picture's top edge"
            "face_regions_out": "" if stale else self._regions_out,
            **{k: str(v) for k, v in c.items()},
        }
        self.diag_pub.publish(diagnostics(self, "face tracking", level, message, self.backend, values))

    def destroy_node(self):
        if hasattr(self, "_worker"):  # else __init__ failed before: let its error show, not one of ours
            self._stop.set()
            self._latest.wake()
            # not while it loads (common.Loading): MediaPipe and the codec bases took 5 s and more under load, and a
            # Ctrl-C of the composed launch in its first seconds ended it 5-7 s later (tidy18, session 18)
            if self._loading.stop():
                self._worker.join(timeout=5.0)
            self._basis_jobs.wake()
            self._basis_worker.join(timeout=BASIS_ACK_TIMEOUT_S + 1.0)
            if self.tracker is not None and not self._worker.is_alive():
                self.tracker.close()
        return super().destroy_node()


def main(args=None):
    return run(TrackerNode, args)
