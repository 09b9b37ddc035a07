"""render_node: drives the avatar with the newest FaceControl and draws it for the robot's face display.

Subscribes `avatar` (gaussian_head_ros/GaussianAvatar, reliable + transient local: the latched avatar) and
`face_control` (best effort, keep last 5). Publishes `face_display/image_raw` (sensor_msgs/Image rgb8, sensor-data QoS) at
`fps`, and the same frames as JPEG on `face_display/image_raw/compressed` (sensor_msgs/CompressedImage,
`jpeg_quality`; encoded only while someone subscribes: for a monitor on another machine) and
`face_display/camera_info` (sensor_msgs/CameraInfo of the virtual camera: K and P exactly as the frame was drawn,
by the `framing` parameter: the avatar's own head's box filling `head_fill` of the image, or `fov_deg`; the image size
and, on a portrait display, where the avatar's torso ends (core/display.py); each new avatar framed by its own head; no
distortion; the same header as its image, so image_view, RViz's Camera display and image_proc pair them), stamped
with the stamp of the FaceControl the frame was driven by (the capture time of the camera frame, so now - stamp is
glass-to-glass latency); a live frame published again without a new control (below) is the same picture with the
same header (stamps repeat on the topic: a consumer keeps the first of equal stamps to take each picture once); idle
and placeholder frames carry the time they were drawn (under use_sim_time the /clock's: while it stands still, they
share one stamp, which common.watch_sim_clock says).

/diagnostics (`render_node: face rendering`) says, among others, which avatar the published frames show now:
`drawing_operator_id` (empty while the placeholder shows) and `drawing_avatar_stamp` (the avatar message's stamp).

Work is kept off the executor: callbacks only store the newest message. A loader thread hands each new avatar to a
worker process (nodes/avatar_loader.py: started with the node, at a lower OS priority than the drawing, it converts the
message and builds its Driver and framing, core.display.DisplayAvatar, off this process's GIL; one that ends is started
again and said), then swaps one reference (never a half-old, half-new frame); over `crossfade_s` the display
dips (core/swap.py: the face shown fades to the background, then the new one fades in, one avatar per frame, each
frame's camera_info the framing of the avatar it shows);
a render thread draws each fresh control as it arrives (at most 1.2 x `fps` frames per second on average;
without a fresh control the last live frame again after 2.5 periods, or up to `fps` when the tracker is slower
than that: core/pacing.py) and the idle animation at `fps`. Before any avatar arrives a neutral placeholder is published at `fps`
(controls arriving meanwhile do not wake the render loop; the log says once what it waits for). Without
control for `idle_timeout_s`, idle.NO_FACE_GRACE_S (0.2 s) after the tracker said it lost the face, or as soon as the
last publisher of face_control has left the graph (a tracker stopped; its subscription's matched count), the avatar
plays an idle animation (blinks, breathing, sway) and eases back when control resumes. No face_control at all is
said in the log (`no_controls_say_s` after start: the FaceControl topics that are published, a namespace or
remapping away; or after the last one: they stopped) and, while they have stopped, on /diagnostics. A live frame
whose avatar and control content (all but the stamp) and drawing parameters are unchanged is published again,
not drawn again. Each frame is drawn by one core.display.FaceDisplay (the drawing `gaussian-head render` and
programs use: drive, framing, lighting, the rasterizer of the `backend` parameter and its fall-back to cpu, the torso
cut's fade), set to the parameters at that frame and to the avatar shown. Malformed avatars and controls are
refused with a log line (a control's once per cause) and a /diagnostics warning saying why; the node keeps what it had.
An avatar it refuses (above its `max_gaussians`, a robot-side limit the reconstructor, maybe on another host, cannot
know; malformed; of another format) is also said on `avatar/status` (beside the `avatar` topic, as reconstruction_node
publishes it; latched): INTERNAL_ERROR for the avatar's operator_id, photo_stamp zero, so the photo's sender
(photo_node), told OK by the reconstructor, learns that this robot's display does not show that face. An avatar refused only for its size is
kept (the newest one, until another avatar comes) and shown once max_gaussians is raised to its count, with an OK on
`avatar/status` that replaces the refusal (the latched avatar does not come again by itself).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from gaussian_head_ros.core import expression_codec, frametrace
from gaussian_head_ros.core.avatar import DISPLAY_MAX_GAUSSIANS
from gaussian_head_ros.core.colour import eight_bit_guess
from gaussian_head_ros.core.control import FaceControl, not_arkit_names
from gaussian_head_ros.core.display import DISTANCE_M, FOV_DEG, FRAMINGS, HEAD_FILL, HEAD_FILL_RANGE, FaceDisplay
from gaussian_head_ros.core.drive import lighting_from_spec
from gaussian_head_ros.core.idle import ControlMixer, IdleAnimator
from gaussian_head_ros.core.pacing import RATE_KEPT_UP, RATE_SHOWN_S, FramePacer, StampAges, display_rate, rate_shortfall
from gaussian_head_ros.core.render import (BACKENDS, backend_available, device_available, display_backend_note,
                                           get_renderer, placeholder_image, placeholder_text)
from gaussian_head_ros.core.render.cpu_backend import threads_note
from gaussian_head_ros.core.settings import setting, settings
from gaussian_head_ros.core.swap import Dip, fade_to_background, start_dip
from gaussian_head_ros.msg import AvatarStatus
from gaussian_head_ros.msg import ExpressionBasis as ExpressionBasisMsg
from gaussian_head_ros.msg import FaceControl as FaceControlMsg
from gaussian_head_ros.msg import GaussianAvatar as GaussianAvatarMsg
from gaussian_head_ros.nodes.avatar_loader import AvatarWorker, Loaded, Stopped, WorkerError
from gaussian_head_ros.nodes.common import (FACE_CONTROL_TYPE, SHARED_TOPIC_SAY_S, UNNAMED_NODE, CausesSaid, Latest,
                                            Loading, RecurringLog, SharedTopic, best_effort_publisher_events,
                                            companion_topic, declare_settings, diagnostics, endpoint_node,
                                            log_core_under, other_topics,
                                            package_profile_segment_bytes, run, steady_timer, this_domain)
from gaussian_head_ros.nodes.conversions import (avatar_message_key, msg_to_basis, msg_to_control,
                                                 ns_to_stamp, render_camera_info_msg, rgb_to_compressed_msg,
                                                 rgb_to_image_msg, same_avatar_made_again, stamp_text, stamp_to_ns,
                                                 status_msg)

IDLE_EASE_S = 0.6  # hand-over time between live control and the idle animation
KEEP_BASES = 2  # operator expression bases held: the tracker's current one and the previous one
REFUSAL_SHOWN_S = 5.0  # /diagnostics warns this long after a refused face_control
FRAME_HEADER_BYTES = 1024  # an Image message's bytes besides its pixels, rounded up (header, encoding, sizes)
# controls in a row naming an operator basis this node does not hold before it warns (~2 s at 30 Hz): a render node
# started after the tracker gets the latched basis within a control or two; one that never does is on another topic
BASIS_MISSING_WARN_AFTER = 60
# No face_control: said in the log this long after the node started (none came yet) or after the last one (they
# stopped: the operator's tracker ended, or the link to its host is down), again every NO_CONTROLS_AGAIN_S, and their
# return once; /diagnostics warns while they have stopped. Before, the face fell into its idle animation at level OK
# with nothing in the log, also for a robot under namespace:=robot1 without control_topic:=/face_control, which
# listened on /robot1/face_control for ever while the operator's tracker published /face_control (user21, s21).
# The defaults of the parameters no_controls_say_s and no_controls_again_s.
NO_CONTROLS_SAY_S, NO_CONTROLS_AGAIN_S = 10.0, 60.0
# A tracker stopped (Ctrl-C, a launch shut down) leaves the graph with its last control: its node is destroyed and DDS
# announces it (within 0.1 s here, d0bc8dc). One killed, crashed or cut off stays listed until its DDS lease expires
# (Fast DDS: 20 s by default). Publishers gone within LEFT_CLEANLY_S of the last control (the graph is looked at once
# a second) read as a stop; gone later, as a lease that expired (node28, s28: the line guessed "the link to its host is
# down" for a tracker that crashed, and "ended" for one that was killed).
LEFT_CLEANLY_S = 2.0

@dataclass
class RenderNodeSettings:
    """render_node's parameters (core/settings.py: each one's default, description and range)."""

    width: int = setting(512, "image width, pixels", range=(16, 4096))
    height: int = setting(512, "image height, pixels", range=(16, 4096))
    fps: float = setting(30.0, "frames published per second (idle animation, placeholder); live frames follow the "
                               "controls as they arrive, at most 1.2 x this rate; a tracker slower than this is "
                               "filled to it with the last picture again", range=(1.0, 240.0))
    background: list = setting([0.0, 0.0, 0.0], "background colour, r g b in 0..1", range=(0.0, 1.0))
    framing: str = setting("head", "how the virtual camera frames the avatar (core/display.py): 'head' sizes and "
                                   "places the view by each avatar's own head (hair and ears, turned yaw +-35, "
                                   "pitch +-20) to fill head_fill of the image, centred on it, on any display; "
                                   "'fov' uses fov_deg for every avatar (the framing before session 26)",
                           choices=FRAMINGS)
    head_fill: float = setting(HEAD_FILL, "with framing 'head': the share of the image (its tighter direction) the "
                                          "head's box fills, the rest equal margins; smaller: a smaller head",
                               range=HEAD_FILL_RANGE)
    fov_deg: float = setting(FOV_DEG, "with framing 'fov' (and for the placeholder): field of view of the virtual "
                                   "camera across the image's shorter side (the vertical one on a square or landscape "
                                   "display), degrees: the head fits the tighter of the two; a portrait display shows "
                                   "it centred left-right, the torso down to its bottom edge where the avatar's "
                                   "reaches (core/display.py); larger: a smaller head", range=(5.0, 120.0))
    distance_m: float = setting(DISTANCE_M, "distance of the virtual camera from the head centre, metres: the perspective "
                                     "(nearer: a wider lens, the nose and chin larger); with framing 'head' the head "
                                     "keeps its size (head_fill sets it), with 'fov' farther is a smaller head",
                                range=(0.1, 10.0))
    lighting: str = setting("captured", "'captured' (the photo's light), a preset (studio, soft, dramatic, warm) or "
                                        "27 SH numbers (9 coefficients x rgb, head frame) separated by commas or spaces, "
                                        "in brackets or not")
    backend: str = setting("auto", "rasterizer: auto (gsplat with CUDA, else cpu), cpu, torch or gsplat",
                           choices=tuple(BACKENDS))
    device: str = setting("cpu", "torch device for the torch backend: cpu, cuda or cuda:N")
    idle_timeout_s: float = setting(2.0, "seconds without face_control before the idle animation starts, while its "
                                    "publisher is still on the graph (one that left it: at once)", range=(0.1, 3600.0))
    crossfade_s: float = setting(0.5, "on an avatar swap, seconds the display dips: the face shown fades to the "
                                      "background in the first half, then the new one fades in (never both at "
                                      "once); 0 = cut", range=(0.0, 10.0))
    max_gaussians: int = setting(DISPLAY_MAX_GAUSSIANS, "avatars with more Gaussians are refused",
                                 range=(1, 10_000_000))
    mirror: bool = setting(False, "flip the image left-right (a mirror for the operator)")
    frame_id: str = setting("face_display", "header frame_id of face_display/image_raw, its camera_info and /compressed "
                                            "(a second display of one robot: its own, e.g. face_display_b)", frame=True)
    jpeg_quality: int = setting(80, "JPEG quality of face_display/image_raw/compressed, 1..100 (encoded only while "
                                    "someone subscribes)", range=(1, 100))
    threads: int = setting(0, "CPU threads of the cpu rasterizer; 0 = automatic (measures 1 and all cores every 10 s "
                              "and keeps the faster: all cores on an idle CPU, often 1 when other work keeps the "
                              "cores busy)", range=(0, 256))
    no_controls_say_s: float = setting(NO_CONTROLS_SAY_S, "seconds without face_control (after start, or after the "
                                                          "last one) before the log says so (and /diagnostics warns "
                                                          "once they came and stopped); controls that say no face "
                                                          "this long are said likewise", range=(1.0, 3600.0))
    no_controls_again_s: float = setting(NO_CONTROLS_AGAIN_S, "seconds between the log's repeats of the warning that "
                                                              "no face_control comes (said first after "
                                                              "no_controls_say_s) while none comes",
                                         range=(1.0, 86400.0))
    shared_topic_say_s: float = setting(SHARED_TOPIC_SAY_S, "seconds face_control or face_display has more than one "
                                                            "publisher before the log says so (the default outlasts "
                                                            "Fast DDS's 20 s lease of a crashed node's stale entry)",
                                        range=(1.0, 3600.0))


PARAMS = settings(RenderNodeSettings)  # parameter name -> Setting


@functools.lru_cache(maxsize=8)
def parse_lighting(text: str):
    """The `lighting` parameter -> None (captured) or [9, 3] SH; ValueError when it is neither."""
    text = str(text).strip()
    if text.startswith("[") and text.endswith("]"):  # `ros2 param set ... lighting "[0.5, 0, ...]"` with ints
        text = text[1:-1].strip()  # and floats mixed arrives as this string (one type only makes an array)
    if text and (text[0].isdigit() or text[0] in "+-."):
        try:
            values = [float(v) for v in text.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"lighting {text!r} is neither a preset nor 27 numbers") from None
        return lighting_from_spec(values)
    return lighting_from_spec(text or "captured")


def check_value(name: str, value) -> None:
    """Raise ValueError when a parameter value is not acceptable (its range or choices, then what they
    cannot say: the background's three values, the lighting's text, a usable gsplat, a device name). A background
    given in 8-bit values, [26, 51, 77], is refused with that colour in 0..1 (user57)."""
    try:
        PARAMS[name].check(value)
    except ValueError as e:
        guess = eight_bit_guess(value) if name == "background" else None
        if guess is None:
            raise
        raise ValueError(f"{e}: 8-bit values (0..255)? that colour in 0..1 is {guess}") from None
    if name == "background" and len(list(value)) != 3:
        raise ValueError(f"background needs 3 values in 0..1, got {list(value)}")
    elif name == "lighting":
        parse_lighting(value)
    elif name == "backend":
        if not backend_available(value):
            raise ValueError(f"backend {value}: the {value} rasterizer cannot run here"
                             + (" (it needs a working CUDA device)" if value == "gsplat" else "") + "; use cpu or auto")
    elif name == "device":
        device_available(value)  # ValueError for a name that is no device (cpu, cuda, cuda:N)


def smaller_avatar_advice(num_gaussians: int, reconstructor: str = "") -> str:
    """The part of the 'below the N FPS asked' warning that tells a CPU-only robot drawing an avatar of
    `num_gaussians` Gaussians (> 10,000) what to send instead: reconstruction_node's max_gaussians at half of it
    (not below mesh_fit's smallest budget), preset fast where that is smaller than the avatar, and that the photo is
    sent again (a budget set applies to the next photo). It said 'max_gaussians 14999 or preset fast draws faster'
    for the fast preset's own 29,998-Gaussian avatar, and not that the avatar shown stays (user48b). An avatar of the
    learned reconstructor (`reconstructor` 'rar:<preset>', the avatar's own field) has its generator's size, which
    neither parameter changes (mesh_fit's): that is said, with backend mesh_fit as the way to a budget; it was told
    'max_gaussians 6849, then the photo again' for a rar:small avatar (user60)."""
    from gaussian_head_ros.core.reconstruct.mesh_fit import PRESETS, MeshFitConfig  # here: 75 ms of imports

    smallest = settings(MeshFitConfig, only=("max_gaussians",))["max_gaussians"].range[0]
    fast = PRESETS["fast"]["max_gaussians"]
    preset = f" or preset fast ({fast})" if num_gaussians > fast else ""
    budget = f"max_gaussians {max(smallest, num_gaussians // 2)}{preset}, then the photo again"
    if reconstructor.split(":")[0] == "rar":
        return (f"or send a smaller avatar ({num_gaussians} Gaussians now, made by {reconstructor}, whose generator "
                "fixes its size: reconstruction_node's max_gaussians and preset are mesh_fit's and do not change it; "
                f"backend mesh_fit with {budget}, or a rar checkpoint trained with a smaller generator)")
    return (f"or send a smaller avatar ({num_gaussians} Gaussians now: reconstruction_node's {budget}: the budget "
            "applies to the next photo reconstructed)")


def _machine_load() -> str:
    """'load L on C CPUs': the 1-minute load average and the CPU count, as the rate lines say the machine's load."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count() or 1} CPUs"


class RenderNode(Node):
    def __init__(self, **kwargs):
        super().__init__("render_node", **kwargs)
        log_core_under(self)
        declare_settings(self, PARAMS, check_value)
        self._say_unusable_device(self._param("device"))
        self._say_slow_backend(self._param("backend"), self._param("device"))
        self._segment_bytes = package_profile_segment_bytes()  # 0: not the package's profile (limits unknown)
        self._say_large_frames(int(self._param("width")), int(self._param("height")))
        self._say_threads_beyond_cpus(int(self._param("threads")))
        self.add_on_set_parameters_callback(self._on_set)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.avatar_topic = self.create_subscription(GaussianAvatarMsg, "avatar", self._on_avatar, latched).topic_name
        # an avatar this node refuses is said where its photo's sender reads the reconstructor's verdict (_load)
        self.status_pub = self.create_publisher(AvatarStatus, companion_topic(self, "avatar/status", "avatar"), latched)
        # the tracker's operator expression bases (core/operator_basis.py) by id: the newest KEEP_BASES (the one codes
        # name now and the previous one, which codes still in flight may name); latched depth 2 like the tracker's
        self.operator_bases: dict[int, object] = {}
        self._basis_log = RecurringLog(self.get_logger())  # a new basis every few seconds: INFO once a minute
        self.basis_topic = companion_topic(self, "face_control/expression_basis", "face_control")  # follows a remap
        self._basis_missing_run = 0  # controls in a row naming a basis not held
        self._basis_missing_said: set[int] = set()
        self.create_subscription(ExpressionBasisMsg, self.basis_topic, self._on_basis,
                                 QoSProfile(depth=KEEP_BASES, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                            reliability=ReliabilityPolicy.RELIABLE))
        # best effort: a stream where the newest wins; a reliable reader would hold new controls back until a
        # lost one is repaired (after a link outage: until the writer's next heartbeat); matches reliable
        # publishers (the tracker) and best-effort ones alike; its matched count tells the mixer when the last
        # publisher left (a tracker stopped: the face eases into idle at once, not after idle_timeout_s; idle55)
        self.control_topic = self.create_subscription(
            FaceControlMsg, "face_control", self._on_control,
            QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT),
            event_callbacks=SubscriptionEventCallbacks(matched=self._on_control_publishers)).topic_name
        self._control_publishers = SharedTopic(self, self.control_topic, float(self._param("shared_topic_say_s")))
        # a reliable (or transient-local) reader of these gets nothing: said with what to subscribe with
        display = {"image": self.resolve_topic_name("face_display/image_raw"),
                   "compressed": companion_topic(self, "face_display/image_raw/compressed", "face_display/image_raw"),
                   "info": companion_topic(self, "face_display/camera_info", "face_display/image_raw")}
        self.image_pub = self.create_publisher(Image, display["image"], qos_profile_sensor_data,
                                               event_callbacks=best_effort_publisher_events(self, display["image"]))
        self.image_topic = self.image_pub.topic_name
        self._display_publishers = SharedTopic(self, self.image_topic, float(self._param("shared_topic_say_s")))
        self.compressed_pub = self.create_publisher(
            CompressedImage, display["compressed"], qos_profile_sensor_data,
            event_callbacks=best_effort_publisher_events(self, display["compressed"]))
        self.info_pub = self.create_publisher(CameraInfo, display["info"], qos_profile_sensor_data,
                                              event_callbacks=best_effort_publisher_events(self, display["info"]))
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pending_avatar = Latest()  # newest GaussianAvatar message not yet loaded
        self._unchanged_log = RecurringLog(self.get_logger())  # the shown avatar received again: a looped bag repeats it
        # the newest avatar message, refused only for its size, while no newer one came: loaded when max_gaussians
        # is raised to its count (_load_loop), as the latched avatar does not come again (user19)
        self._over_budget: tuple[GaussianAvatarMsg, int] | None = None
        self.loaded: Loaded | None = None  # swapped as one reference by the loader thread
        self._dip: Dip | None = None  # the swap's transition in progress (core/swap.py), None outside one
        self.mixer = ControlMixer(IdleAnimator(), float(self._param("idle_timeout_s")), IDLE_EASE_S)
        self.backend = "cpu"
        self.display: FaceDisplay | None = None  # draws every frame (core/display.py; render thread, made at its first)
        self.threads_used = 0
        self._last_frame: tuple | None = None  # (avatar, what else decided it, uint8 image) of the last frame
        self.no_avatar = f"waiting for an avatar on {self.avatar_topic}"
        self.state = self.waiting = self.no_avatar  # what the placeholder waits for (said in state and diagnostics)
        self._renderer_ready = False  # the loader's warm-up is over (avatars are loaded from then on)
        self._said_waiting = False  # the log said once that controls come before any avatar
        self.drawing: Loaded | None = None  # the avatar of the last published frame (None: the placeholder)
        self.last_error = ""
        self.control_refused = (0.0, "")  # (monotonic time, reason) of the last refused face_control
        self._stamp_ages = StampAges()  # recent controls' arrival on this node's clock - stamp
        self._refusals_said = CausesSaid()  # reasons already logged (each once)
        self._names_checked: tuple = ()  # the last face_control's blendshape names, checked (not_arkit_names) ...
        self._names_said: set[str] = set()  # ... and the ones outside ARKit's that the log named (each once)
        self.counts = dict(frames=0, controls=0, controls_refused=0, controls_no_face=0, avatars=0, avatars_refused=0,
                           fallbacks=0, compressed_frames=0, frames_reused=0, operator_bases=0,
                           controls_operator_basis=0, controls_basis_missing=0, avatars_unchanged=0)
        self._started = time.monotonic()  # when the render loop began (its first rate window is not judged)
        # (publish time, render seconds, control age seconds or None, the process's CPU seconds meanwhile)
        self._times = deque(maxlen=300)
        self._fresh = threading.Event()  # a live control arrived since the last frame began
        self._control_times = deque(maxlen=300)  # arrival times of face_control messages (monotonic)
        self._control_arrived = 0.0  # monotonic time the last face_control message came (refused ones too); 0: none yet
        self._no_controls_said = 0.0  # when the log last said that none come (_say_if_no_controls)
        self._waiting_said = False  # the log said (as information) that none came yet
        self._no_face_said = False  # the log said that the controls say no face (_say_if_no_face), this run of them
        self._short_said: tuple = ()  # (fps asked, backend, placeholder, size) whose shortfall the log said
        self._short_said_at = 0.0  # when it said it (monotonic s)
        self._kept_up_since: float | None = None  # since when the display keeps up after that (None: short, or unsaid)
        self._asked: tuple = ((), 0.0)  # (fps asked, backend, placeholder, size, avatar, kernels loaded), since (s)
        self._controls_looked_for = 0.0  # when _say_if_no_controls last asked the graph for FaceControl topics
        self._last_mode = "placeholder"  # the last frame's mode (see _render_once)
        self._placeholder_key = None
        self._placeholder = None
        self._info_made = (None, None, None)  # (K, mirror, CameraInfo): see _camera_info
        self.trace = frametrace.FrameTrace("render_node")  # only with GHR_FRAME_TRACE set
        self._warming = Loading(loading=True)  # the loader's warm-up (destroy_node waits for the loader only after it)
        # builds each new avatar in a process of its own (its start overlaps the loader's warm-up)
        self._builder = AvatarWorker(self.get_logger().warning)
        self._loader = threading.Thread(target=self._load_loop, name="avatar_loader", daemon=True)
        self._renderer = threading.Thread(target=self._render_loop, name="renderer", daemon=True)
        self._loader.start()
        self._renderer.start()
        steady_timer(self, 1.0, self._publish_diagnostics)

    # ----------------------------------------------------------------------------------------------
    # parameters

    def _param(self, name):
        return self.get_parameter(name).value

    def _on_set(self, params) -> SetParametersResult:
        try:
            for p in params:
                if p.name in PARAMS:
                    check_value(p.name, p.value)
        except (ValueError, TypeError) as e:
            return SetParametersResult(successful=False, reason=str(e))
        for p in params:
            if p.name == "idle_timeout_s":
                self.mixer.idle_timeout_s = float(p.value)
            elif p.name == "device":
                self._say_unusable_device(p.value)
            elif p.name == "max_gaussians":
                self._say_budget_below_shown(int(p.value))
            elif p.name == "shared_topic_say_s":
                self._control_publishers.after_s = self._display_publishers.after_s = float(p.value)
            elif p.name == "threads":
                self._say_threads_beyond_cpus(int(p.value))
        size = {p.name: int(p.value) for p in params if p.name in ("width", "height")}
        if size:
            self._say_large_frames(size.get("width", int(self._param("width"))), size.get("height", int(self._param("height"))))
        changed = {p.name: p.value for p in params if p.name in ("backend", "device")}
        if changed:
            self._say_slow_backend(changed.get("backend", self._param("backend")), changed.get("device", self._param("device")))
        return SetParametersResult(successful=True)

    def _say_slow_backend(self, backend: str, device: str) -> None:
        """Warn when `backend` on `device` cannot keep a face display going (core/render.display_backend_note)."""
        note = display_backend_note(backend, device)
        if note:
            self.get_logger().warning(note)

    def _say_threads_beyond_cpus(self, threads: int) -> None:
        """Warn when `threads` is more than the cpu rasterizer can use here (core.render.cpu_backend.threads_note)."""
        note = threads_note(threads)
        if note:
            self.get_logger().warning(note)

    def _say_large_frames(self, w: int, h: int) -> None:
        """Warn when a w x h rgb8 face_display frame does not fit the shared-memory segment of the package's Fast DDS
        profile (16 MB): it goes out in UDP fragments, and a best-effort subscriber loses many without an error on
        either side (user19, s19: at 2400x2400 a subscriber on the same host got 1.4 of the 2.8 frames a second)."""
        size = w * h * 3 + FRAME_HEADER_BYTES
        if not self._segment_bytes or size <= self._segment_bytes:
            return
        side = int(((self._segment_bytes - FRAME_HEADER_BYTES) / 3) ** 0.5)
        self.get_logger().warning(
            f"face_display frames of {w}x{h} are {size / 2**20:.1f} MB, above the {self._segment_bytes / 2**20:g} MB "
            "shared-memory segment of the package's Fast DDS profile: they go out in UDP fragments and a best-effort "
            f"subscriber loses many, with no error on either side; use {side}x{side} or less (as many pixels), "
            "face_display/image_raw/compressed, or a Fast DDS profile of your own with a larger segment_size and "
            "maxMessageSize (README, 'Fast DDS profile')")

    def _say_budget_below_shown(self, budget: int) -> None:
        """Warn when `max_gaussians` is set below the Gaussian count of the avatar on the display: the budget is checked
        as an avatar arrives, so that avatar stays shown (the node keeps what it has); 'Set parameter successful' and
        nothing else read as if the display now kept to it (user20, s20: 1000 set under a 60000-Gaussian avatar)."""
        shown = self.loaded
        if shown is not None and shown.num_gaussians > budget:
            self.get_logger().warning(
                f"max_gaussians {budget} is below the avatar on the display ('{shown.operator_id}', "
                f"{shown.num_gaussians} Gaussians): it stays shown; the budget applies to the avatars that arrive from "
                "now on (a new photo, a restarted reconstruction_node), which are refused above it")

    def _say_unusable_device(self, device: str) -> None:
        """Warn when `device` names a CUDA device torch does not see (a CPU-only robot): accepted, as a device
        that goes away at run time is, but the torch renderer falls back to cpu at its first frame."""
        if not device_available(device):
            self.get_logger().warning(f"device {device}: torch sees no such CUDA device here; a torch renderer on "
                                      "it falls back to cpu at its first frame (the cpu backend does not use it)")

    # ----------------------------------------------------------------------------------------------
    # callbacks: store the newest, nothing heavy

    def _on_avatar(self, msg: GaussianAvatarMsg) -> None:
        self._pending_avatar.put(msg)
        if self.loaded is None and not self._renderer_ready:  # a latched avatar comes at once; the warm-up takes
            # seconds (6-34 s on the loaded 2-core machine): the placeholder waits for the renderer, not for an avatar
            self.waiting = (f"avatar '{msg.operator_id}' received, shown once the renderer is ready (it loads its "
                            "kernels at start: seconds, longer on a busy machine)")

    def _on_basis(self, msg: ExpressionBasisMsg) -> None:
        try:
            basis = msg_to_basis(msg)  # small (~45 KB, one decode): fine in the callback
        except ValueError as e:
            self.get_logger().warning(f"expression basis refused (compact controls decode without it): {e}")
            return
        bases = {k: v for k, v in self.operator_bases.items() if k != basis.id}
        bases[basis.id] = basis
        self.operator_bases = dict(list(bases.items())[-KEEP_BASES:])  # one swap: the executor threads read it
        self.counts["operator_bases"] += 1
        self._basis_log.say(f"operator expression basis {msg.id} received ({msg.num_components} components)")

    def _on_control(self, msg: FaceControlMsg) -> None:
        self.trace.mark(frametrace.RENDER_IN, stamp_to_ns(msg.header.stamp))
        if not self._renderer_ready:
            # Not decoded until the loader's warm-up has computed the compact codes' bases (expression_codec.basis,
            # ~1-2 s of CPU each, 8-15 s under load): the first compact control decoded here computed them again in
            # this executor thread, beside the warm-up, and the node heard nothing meanwhile (no parameter service, no
            # diagnostics), then said 'face_control stopped ...: the last one came 14 s ago' of a tracker that never
            # stopped (user65: robot.launch.py beside a running operator, load 19). Nothing is drawn from a control
            # before then: avatars are loaded after the warm-up, and the next control (ms later) is decoded. The
            # mixer learns that the operator's controls come (the placeholder says so, user54), not their face.
            self._note_arrival()
            with self._lock:
                if msg.face_detected:
                    self.mixer.update(FaceControl(stamp_ns=stamp_to_ns(msg.header.stamp), face_detected=True),
                                      time.monotonic())
                else:
                    self.mixer.face_lost(time.monotonic())
            self._say_controls_before_avatar()
            return
        arrived = self._note_arrival()
        named = (expression_codec.operator_basis_id(msg.expression_code, msg.expression_codec)
                 if msg.expression_code and msg.expression_codec in expression_codec.COMPACT_CODECS else 0)
        held = self.operator_bases.get(named) if named else None
        try:
            control = msg_to_control(msg, held)
        except ValueError as e:
            self.counts["controls_refused"] += 1
            self.control_refused = (time.monotonic(), str(e))
            if self._refusals_said.add(str(e), arrived):  # a faulty publisher repeats its fault every frame: once
                self.get_logger().warning(f"face_control refused: {e}; keeping the last good control (each cause said "
                                          "once; /diagnostics counts controls_refused and names the last one)")
            return
        self.counts["controls"] += 1
        self._control_times.append(time.monotonic())
        if tuple(msg.blendshape_names) != self._names_checked:  # a sender's names, checked when they change: a phone
            self._names_checked = tuple(msg.blendshape_names)  # app's 'JawOpen' drove nothing without a word (user36)
            said = not_arkit_names(n for n in self._names_checked if n not in self._names_said)
            if said:
                self._names_said.update(self._names_checked)
                self.get_logger().warning(f"face_control on {self.control_topic}: {said}")
        self._stamp_ages.add(self.get_clock().now().nanoseconds, control.stamp_ns,
                             f"face_control messages on {self.control_topic}", self.get_logger())
        if named:  # decoded with the operator basis, or (not / not yet / no longer held) with the fixed basis only
            self.counts["controls_operator_basis" if held is not None else "controls_basis_missing"] += 1
            self._basis_missing_run = 0 if held is not None else self._basis_missing_run + 1
            if self._basis_missing_run == BASIS_MISSING_WARN_AFTER and named not in self._basis_missing_said:
                self._basis_missing_said.add(named)
                self.get_logger().warning(
                    f"face_control names operator expression basis {named}, which this node does not hold (none came on "
                    f"{self.basis_topic}) "
                    f"({BASIS_MISSING_WARN_AFTER} controls in a row): decoding with the fixed basis only, a little "
                    "less exact. The tracker publishes its bases latched on <its face_control topic>/expression_basis; "
                    "remapping face_control moves that topic with it (controls_basis_missing on /diagnostics)")
        if not control.face_detected:  # the tracker lost the face: the idle animation takes over after a short grace
            self.counts["controls_no_face"] += 1
            with self._lock:
                self.mixer.face_lost(time.monotonic())
            return
        with self._lock:
            self.mixer.update(control, time.monotonic())
        if self.loaded is not None:  # a fresh control wakes the render loop only when it changes the picture
            self._fresh.set()
        else:  # the placeholder does not depend on it: published at fps, not at the controls' rate (1.2 x fps,
            self._say_controls_before_avatar()  # intervals down to 2 ms; user16, s16)

    def _say_controls_before_avatar(self) -> None:
        """Say once that face_control comes while no avatar is shown, with what the placeholder waits for."""
        if not self._said_waiting:
            self._said_waiting = True
            self.get_logger().info(self._placeholder_line(f"face_control arriving on {self.control_topic}"))

    def _note_arrival(self) -> float:
        """Note that a face_control came (time.monotonic(), returned), saying it in the log when it is news: the first
        one after the node said it waits for them, or the first after it said they stopped. The arrival kept is taken
        after that line: a callback held up while it logged (the GIL taken by the rasterizer's kernels loading beside
        it, 32.6 s at load 27) kept the time from before the hold-up, and the diagnostics tick after it said 'face_control
        stopped on /robot1/face_control: the last one came 13 s ago' between two lines saying they came (user63:
        avatar.launch.py namespace:=robot1 with video:=, the four nodes starting at once)."""
        if self._no_controls_said or (self._waiting_said and not self._control_arrived):  # said: their coming, once
            now = time.monotonic()
            came = (f"face_control back on {self.control_topic} after {now - self._control_arrived:.0f} s without"
                    if self._control_arrived else f"face_control arriving on {self.control_topic}")
            if self.loaded is None and not self._said_waiting:  # with the placeholder's line, one line (it was said
                self._said_waiting = True  # twice at once: 'face_control arriving on X', then 'face_control arriving
                came = self._placeholder_line(came)  # on X, but no avatar shown yet: ...'; user52)
            self.get_logger().info(came)
        arrived = time.monotonic()
        self._control_arrived, self._no_controls_said = arrived, 0.0
        return arrived

    def _on_control_publishers(self, info) -> None:
        """A publisher of face_control matched or left (rmw matched status: `current_count` publishers now)."""
        with self._lock:
            self.mixer.sources(info.current_count, time.monotonic())

    def _placeholder_line(self, came: str) -> str:
        """`came` (the controls' arrival, as said) with what the display shows meanwhile: the placeholder, and what it
        waits for."""
        hint = (" (reconstruction_node publishes it latched once a photo is reconstructed, or from its cache)"
                if self.waiting == self.no_avatar else "")
        fps = float(self._param("fps"))
        return f"{came}, but no avatar shown yet: the placeholder at {fps:g} fps, {self.waiting}{hint}"

    # ----------------------------------------------------------------------------------------------
    # loader thread: message -> the worker process (avatar -> Driver, framing) -> one swap

    def _load_loop(self) -> None:
        from gaussian_head_ros.core import drive
        t0 = time.perf_counter()
        try:
            get_renderer(self._param("backend"), device=self._param("device")).warm_up()
        except ValueError as e:  # the render thread falls back to cpu and says so
            self.get_logger().warning(f"rasterizer warm-up: {e}")
        drive.warm_up()
        for codec in expression_codec.COMPACT_CODECS:  # to decode compact face_control (once per process)
            expression_codec.basis(codec)
        if not self._warming.end():  # stopped meanwhile: destroy_node did not wait, the node may be gone
            return
        self._renderer_ready = True
        self.get_logger().info(f"renderer ready ({time.perf_counter() - t0:.1f} s to load the kernels)")
        # from here on this thread only hands avatars to the worker process and swaps them in (~20 ms of this
        # process's CPU per 60k avatar: at the drawing's priority, so that it never holds the GIL descheduled)
        while not self._stop.is_set():
            msg = self._pending_avatar.take(0.2)
            try:
                if msg is not None:
                    self._load(msg)
                elif self._over_budget is not None and self._over_budget[1] <= int(self._param("max_gaussians")):
                    self._load(self._over_budget[0], retried=True)
                else:
                    self._builder.check()
            except Stopped:  # destroy_node ended the worker
                return

    def _load(self, msg: GaussianAvatarMsg, retried: bool = False) -> None:
        """Convert and swap in one avatar message, or refuse it (log, /diagnostics, avatar/status). `retried`: the
        message refused before for this node's max_gaussians, loaded again now that the budget allows it. An error
        other than msg_to_avatar's ValueError (a bug converting it) is refused the same way, named as one: it ended
        the loader thread, and no later avatar was loaded (the display kept the old face without a word). The build
        runs in the worker process (self._builder, nodes/avatar_loader.py); its errors come back as ValueError (the
        avatar's) or WorkerError (a bug there, or the worker ended twice while building it), said alike; Stopped
        (the node stops) is raised on."""
        t0 = time.perf_counter()
        self._over_budget = None  # this message is the newest: an older one refused for its size is dropped
        budget = int(self._param("max_gaussians"))
        key, shown = avatar_message_key(msg), self.loaded
        if shown is not None and key == shown.key and key[3] <= budget:
            # the avatar shown, sent again (a bag played with --loop, a reconstruction node restarted from its cache):
            # it was loaded again, ~1 s of this node's CPU and a cross-fade to the same face each time (user24, s24)
            self.counts["avatars_unchanged"] += 1
            self._unchanged_log.say(f"avatar '{msg.operator_id}' received again, the one shown (same stamp and "
                                    "Gaussians): kept, not loaded again")
            return
        if shown is not None and same_avatar_made_again(key, shown.key) and key[3] <= budget:
            # the same Gaussians made again from the same photo (the robot's photo_path file, then the same file from
            # photo_node): it was loaded again and the face faded out and back in to itself (user58, s58)
            with self._lock:
                shown.made, shown.key = stamp_text(msg.header.stamp), key  # its diagnostics name the newest stamp
            self.counts["avatars_unchanged"] += 1
            self._unchanged_log.say(f"avatar '{msg.operator_id}' received again, made again ({shown.made}) with the "
                                    "Gaussians shown: kept, not loaded again (no cross-fade to the same face)")
            return
        try:  # (the head's box at distance_m found there too, not when drawn)
            new = self._builder.build(msg, budget, float(self._param("distance_m")))
            new.made, new.key = stamp_text(msg.header.stamp), key
        except Stopped:
            raise
        except Exception as e:  # ValueError: malformed, another format, above the budget; else a bug (said as one)
            why = (str(e) if isinstance(e, ValueError) else f"internal error: {e}" if isinstance(e, WorkerError)
                   else f"internal error: {type(e).__name__}: {e}")
            count = int(msg.gaussians.width) * int(msg.gaussians.height)
            if isinstance(e, ValueError) and count > budget and msg.format_version == GaussianAvatarMsg.FORMAT_VERSION:
                # refused for its size (msg_to_avatar checks the format, then the size): a larger budget may take it;
                # one of another format is not kept, nor told to raise max_gaussians (no budget shows it)
                self._over_budget = (msg, count)
            self.counts["avatars_refused"] += 1
            self.last_error = f"avatar refused: {why}"
            current = self.loaded
            if current is None:  # not 'received, shown once the renderer is ready' any more
                self.waiting = self.no_avatar
            shown = f"keeping the current avatar ('{current.operator_id}')" if current else "still waiting for a usable avatar"
            if self._over_budget is not None:  # what the user can do here, where the budget is
                shown += (f"; `ros2 param set {self.get_fully_qualified_name()} max_gaussians {self._over_budget[1]}` "
                          "shows it")
            self.get_logger().error(f"{self.last_error}; {shown}")
            # the reconstructor told the photo's sender OK: this robot's display does not show that face (user18)
            self._say_on_status(AvatarStatus.INTERNAL_ERROR, msg, f"refused the avatar for '{msg.operator_id}': {why}; "
                                f"it shows {repr(current.operator_id) if current else 'no face (its placeholder)'}")
            return
        with self._lock:
            # from what the display shows now (during a dip: the face visible, from its weight) to the new avatar
            self._dip = start_dip(self._dip, self.loaded, new, time.monotonic(), float(self._param("crossfade_s")))
            self.loaded = new
            self.mixer.idle = new.idle
        self.counts["avatars"] += 1
        self.last_error = ""
        self.get_logger().info(f"avatar '{new.operator_id}' ready: {new.num_gaussians} Gaussians "
                               f"({(time.perf_counter() - t0) * 1e3:.0f} ms)"
                               + (f", refused before, shown now that max_gaussians is {budget}" if retried else ""))
        if retried:  # this writer's latched refusal of it would stay the newest word on avatar/status: replace it
            self._say_on_status(AvatarStatus.OK, msg, f"shows the avatar for '{msg.operator_id}' it refused before, now "
                                f"that its max_gaussians is {budget}", num_gaussians=new.num_gaussians)

    def _say_on_status(self, code: int, msg: GaussianAvatarMsg, what: str, **fields) -> None:
        """Publish, latched on avatar/status, what this robot's display did with the avatar message `msg` (`code`, an
        AvatarStatus code; 'the robot's display (<this node>) <what>'): under the avatar's operator id, photo_stamp zero
        (GaussianAvatar carries no photo stamp; photo_node matches it by the id). `fields`: status_msg's others."""
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=msg.operator_id)
        self.status_pub.publish(status_msg(code, f"the robot's display ({self.get_fully_qualified_name()}) {what}",
                                           msg.operator_id, header=header, **fields))

    # ----------------------------------------------------------------------------------------------
    # render thread

    def _render_loop(self) -> None:
        """Draws frames when the FramePacer says (each fresh live control as it arrives)."""
        pacer = FramePacer(time.monotonic())
        while not self._stop.is_set():
            now = time.monotonic()
            fresh = self._fresh.is_set()
            # a dip changes the picture by itself: frames at fps through it, not only at each control
            wait = pacer.wait(now, float(self._param("fps")), fresh, self._last_mode == "live" and self._dip is None)
            if wait > 0.0:
                (self._stop if fresh else self._fresh).wait(wait)  # not fresh: a control arriving wakes us
                continue
            self._fresh.clear()  # a control arriving while this frame is drawn makes the next one fresh
            pacer.drawn(now, fresh)
            try:
                self._render_once()
            except Exception as e:  # keep publishing; say what went wrong
                if self._stop.is_set() or not self.context.ok():
                    break  # shutting down: the publisher went away with the context
                self.last_error = f"{type(e).__name__}: {e}"
                self.get_logger().error(f"render failed: {self.last_error}", throttle_duration_sec=5.0)

    def _frame_key(self, loaded: Loaded, control, mode: str, w: int, h: int, bg) -> tuple | None:
        """Everything but the avatar that decides a live frame's picture (None while the picture changes by
        itself: idle animation, easing)."""
        if mode != "live":
            return None
        return (control_key(control), w, h, tuple(bg.tolist()),
                *(str(self._param(n)) for n in ("lighting", "framing", "head_fill", "fov_deg", "distance_m", "backend",
                                                "device")))

    def _display(self, w: int, h: int, bg: np.ndarray, shown: Loaded | None) -> FaceDisplay:
        """The FaceDisplay that draws this frame (core/display.py: the one drawing of an avatar for a display, shared
        with `gaussian-head render` and programs), set to the parameters now (a `ros2 param set` applies from the next
        frame) and to `shown`, the avatar this frame shows (None: the placeholder's camera)."""
        settings = dict(width=w, height=h, framing=str(self._param("framing")),
                        head_fill=float(self._param("head_fill")), fov_deg=float(self._param("fov_deg")),
                        distance_m=float(self._param("distance_m")), lighting=parse_lighting(self._param("lighting")),
                        background=bg, backend=str(self._param("backend")), threads=int(self._param("threads")),
                        device=str(self._param("device")))
        if self.display is None:
            self.display = FaceDisplay(None, **settings, on_fallback=self._fell_back)
        else:
            self.display.set(**settings)
        self.display.avatar = None if shown is None else shown.face
        return self.display

    def _fell_back(self, backend: str, error: Exception) -> None:
        """FaceDisplay's word that the `backend` rasterizer failed a frame and it drew it with cpu: said, counted, and
        the backend parameter set to cpu (what draws from now on)."""
        self.counts["fallbacks"] += 1
        self.get_logger().warning(f"{backend} rasterizer failed ({type(error).__name__}: {error}); falling back to cpu")
        self.set_parameters([Parameter("backend", value="cpu")])

    def _camera_info(self, k: np.ndarray, w: int, h: int) -> CameraInfo:
        """The CameraInfo message of the display's K k [3, 3] (its header set per frame), made again only when K (a
        new object from FaceDisplay.camera when the framing, size or avatar shown changes) or mirror changes
        (building it costs ~70 us)."""
        mirror = bool(self._param("mirror"))
        if self._info_made[0] is not k or self._info_made[1] != mirror:
            self._info_made = (k, mirror, render_camera_info_msg(k, w, h, Header(), mirror))
        return self._info_made[2]

    def _render_once(self) -> None:
        w, h = int(self._param("width")), int(self._param("height"))
        bg = np.asarray(self._param("background"), np.float32)
        t0, t0_ns, cpu0 = time.perf_counter(), time.time_ns(), time.thread_time_ns()
        process_cpu0 = time.process_time_ns()  # (every thread's: the cpu rasterizer's workers too)
        now = time.monotonic()
        driven = None  # (time.time_ns(), thread CPU ns) when drive() ended, for a frame drawn now
        with self._lock:
            loaded, dip = self.loaded, self._dip
            control, mode = self.mixer.get(now) if loaded is not None else (None, "placeholder")
            live = loaded is None and not self.mixer.ended_by(now)[0]  # the operator's controls come: said below
        shown = loaded  # the one avatar this frame shows (weighted against the background by a dip, below)
        if dip is not None:
            shown, over = dip.at(now)
            if over:
                with self._lock:
                    if self._dip is dip:  # (not a newer swap's)
                        self._dip = None
        display = self._display(w, h, bg, shown)  # in the framing of the avatar drawn (during a dip too)
        info = self._camera_info(display.camera()[0], w, h)
        if shown is None:
            key = (w, h, tuple(bg.tolist()), placeholder_text(live))
            if key != self._placeholder_key:
                self._placeholder, self._placeholder_key = placeholder_image(w, h, bg, key[3]), key
            img, stamp_ns = self._placeholder, 0
            self.state = f"{self.waiting} (placeholder)"
            self.drawing = None
        else:
            key = self._frame_key(shown, control, mode, w, h, bg)
            last = self._last_frame
            if key is not None and last is not None and last[0] is shown and last[1] == key:
                img = last[2]  # neither the avatar nor anything that decides the picture changed: publish it again
                self.counts["frames_reused"] += 1
            else:
                posed = display.drive(control)
                driven = time.time_ns(), time.thread_time_ns()  # (frame trace: drive | raster)
                img = display.raster(posed)  # (falls back to cpu: _fell_back)
                self.backend, self.threads_used = display.renderer.name, display.renderer.threads_used
                self._last_frame = (shown, key, img)  # (unweighted: a dip weighs it below)
            if dip is not None and not over:  # its weight when published (core/swap.py: Dip.weight)
                img = fade_to_background(img, bg, dip.weight(shown, time.monotonic()))
            stamp_ns = control.stamp_ns if mode != "idle" else 0
            self.state = {"live": "driven", "easing": "easing", "idle": "idle animation"}[mode]
            self.drawing = shown  # (during a dip: the old avatar fading out, then the new one fading in)
        self._last_mode = mode
        if stamp_ns:
            self.trace.mark(frametrace.RENDER_START, stamp_ns, t_ns=t0_ns)
            if driven is not None:
                self.trace.mark(frametrace.RENDER_DRIVEN, stamp_ns, cpu_ns=driven[1] - cpu0, t_ns=driven[0])
            self.trace.mark(frametrace.RENDER_DRAWN, stamp_ns, cpu_ns=time.thread_time_ns() - cpu0)
        if self._param("mirror"):
            img = img[:, ::-1]
        header = Header(frame_id=str(self._param("frame_id")))
        header.stamp = ns_to_stamp(stamp_ns) if stamp_ns else self.get_clock().now().to_msg()
        self.image_pub.publish(rgb_to_image_msg(img, header))
        info.header = header  # (published at once: serialized now, free to restamp next frame)
        self.info_pub.publish(info)
        self.counts["frames"] += 1
        if self.compressed_pub.get_subscription_count():  # ~1 us; a JPEG of 512x512 is ~2 ms
            self.compressed_pub.publish(rgb_to_compressed_msg(img, header, int(self._param("jpeg_quality"))))
            self.counts["compressed_frames"] += 1
        if stamp_ns:
            self.trace.mark(frametrace.RENDER_PUBLISHED, stamp_ns, cpu_ns=time.thread_time_ns() - cpu0)
        age = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-9 if stamp_ns else None
        self._times.append((time.monotonic(), time.perf_counter() - t0, age, (time.process_time_ns() - process_cpu0) * 1e-9))

    # ----------------------------------------------------------------------------------------------
    # diagnostics

    def _say_shared_topics(self, now: float) -> None:
        """Warnings when face_control (two operators' trackers, a replay beside a live tracker: whatever they send
        interleaves and the newest drives the face) or this node's face_display (another render node publishes
        there too: two robots launched in one namespace, a display shows both nodes' frames in turn) has had more
        than one publisher for `shared_topic_say_s`; said again when the set of publishers changes."""
        names = self._control_publishers.due(now)
        if names:
            self.get_logger().warning(
                f"{len(names)} publishers on {self.control_topic} for {self._control_publishers.held_s(now):.0f} s "
                f"({', '.join(names)}): what they send interleaves and the newest drives the face; give each operator "
                "a topic of its own (control_topic:= on the launch files, -r face_control:=<topic>) or stop the others")
        names = self._display_publishers.due(now)
        if names:
            self.get_logger().warning(
                f"{len(names)} publishers on {self.image_topic} for {self._display_publishers.held_s(now):.0f} s "
                f"({', '.join(names)}): another node publishes this face display too (two robots launched in one "
                "namespace?); a display shows their frames in turn, flickering between them; give each robot a "
                "namespace of its own (namespace:=robotN, -r __ns:=/robotN) or -r face_display/image_raw:=<topic>")

    def _say_if_no_controls(self, now: float) -> None:
        """A log line while no face_control comes (`_on_control` says when they come), again every
        `no_controls_again_s`:
        - they came and stopped, `no_controls_say_s` after the last one: a warning naming the topic, its publishers,
          how long ago, and what the graph says of the tracker: still listed, named (no camera frames, a recording's
          player paused or ended, or killed / crashed / cut off within its DDS lease), gone within LEFT_CLEANLY_S of
          its last control (stopped), or gone later (its lease expired: killed, crashed, or its host off the network);
        - none came yet, `no_controls_say_s` after the node started: a warning when other topics carry FaceControl
          (the robot's `face_control` is a namespace or a remapping away from the operator's: those topics and how to
          follow one), else once, as information, that it waits for them (a robot with no operator yet)."""
        since = self._control_arrived or self._started
        say_s, again_s = float(self._param("no_controls_say_s")), float(self._param("no_controls_again_s"))
        if now - since < say_s or (self._no_controls_said and now - self._no_controls_said < again_s):
            return
        if not self._control_arrived and now - self._controls_looked_for < say_s:
            return  # the graph asked every no_controls_say_s while none came (a robot waiting hours), not every tick
        self._controls_looked_for = now
        # one question to the graph: its count and its names (a count asked apart could say 1 and the names none)
        names = sorted(endpoint_node(i, UNNAMED_NODE) for i in self.get_publishers_info_by_topic(self.control_topic))
        publishers = len(names)
        if self._control_arrived:
            self._no_controls_said = now
            left = self.mixer.sources_left_at  # when the last one left (the matched event, as the mixer keeps it)
            # who left: the publishers the graph showed last (a replay's player ended: it was said as 'the tracker
            # left the graph ...: it was stopped'; user55); 'the tracker' where none was seen
            gone = self._control_publishers.last_names
            who = f"its publisher {', '.join(gone)}" if gone else "the tracker"
            if publishers:  # named: a recording's player is no tracker (a bag at its end was said as one; user52)
                why = ("still on the graph: the tracker gets no camera frames, or none it can use (its log says why "
                       "it skips them; without a face it still sends face_detected=false), a player of a recording "
                       "(ros2 bag play) is paused or at its end, or it was killed, crashed or cut off and its DDS lease "
                       f"has not expired; publishing it: {', '.join(names)}")
            elif left is not None and left - since <= LEFT_CLEANLY_S:
                why = (f"{who} left the graph within {LEFT_CLEANLY_S:.0f} s of its last control: it was stopped"
                       + (", or it ended (a player at the end of its recording)" if gone else ""))
            elif left is not None:
                why = (f"{who} left the graph {left - since:.0f} s after its last control, as its DDS lease "
                       "expired: it was killed or crashed, or its host went off the network")
            else:
                why = "none left on the graph: the operator's tracker ended, or its host went off the network"
            self.get_logger().warning(
                f"face_control stopped on {self.control_topic}: the last one came {now - since:.0f} s ago "
                f"({publishers} publishers, {why}); {self._uncontrolled()} until controls come back")
            return
        others = other_topics(self, FACE_CONTROL_TYPE, self.control_topic)
        if others:
            self._no_controls_said = now
            carry = "carries" if len(others) == 1 else "carry"
            self.get_logger().warning(
                f"no face_control on {self.control_topic} {now - since:.0f} s after start ({publishers} publishers), "
                f"while {', '.join(others)} {carry} FaceControl: to follow one, control_topic:=<topic> (launch) or -r "
                "face_control:=<topic> (a robot under namespace:= whose operator is in the root namespace: "
                f"control_topic:=/face_control); {self._uncontrolled()} meanwhile")
        elif not self._waiting_said:  # once: a robot waiting for its operator is no fault
            self._waiting_said = True
            self.get_logger().info(
                f"no face_control on {self.control_topic} yet ({publishers} publishers, no other FaceControl topic on "
                f"the graph): {self._uncontrolled()} until the operator's tracker, in "
                f"{this_domain(self)}, publishes")

    def _uncontrolled(self) -> str:
        """What the display shows while no control drives it, for the log lines that say why: the avatar's idle
        animation, or, with no avatar shown yet, the placeholder. Before, a robot started with no photo and no cache
        said 'the avatar plays its idle animation' while its display showed the placeholder (user50)."""
        if self.loaded is not None:
            return "the avatar plays its idle animation"
        return f"the placeholder shows ({self.waiting}), then the avatar's idle animation"

    def _idle_reason(self, now: float) -> str:
        """Why the avatar plays its idle animation (or eases into it) at monotonic `now`, for /diagnostics: the
        controls stopped (a camera, a tracker or a link gone: after idle_timeout_s), their last publisher left the graph
        (at once), the tracker finds no face, none came yet; "" while controls drive it. Before, /diagnostics said 'idle
        animation' at OK and nothing more until `no_controls_say_s` (10 s) after the controls stopped (user33, s34: a
        video source killed under the launch)."""
        with self._lock:
            cause, since_s = self.mixer.ended_by(now)
        if cause == "timeout":
            return (f"no face_control on {self.control_topic} for {since_s:.0f} s (idle after idle_timeout_s "
                    f"{self.mixer.idle_timeout_s:g} s; the operator's camera, tracker or link stopped?)")
        if cause == "no face":
            return f"the operator's tracker finds no face (face_detected false for {since_s:.0f} s)"
        if cause == "left":
            return (f"the last publisher of {self.control_topic} left the graph {since_s:.0f} s ago (the operator's "
                    "tracker stopped, or a recording's player ended: idle at once, not after idle_timeout_s)")
        return f"no face_control on {self.control_topic} yet" if cause else ""

    def _say_if_no_face(self, now: float) -> None:
        """Once per run of them, a log line when the controls have said face_detected false (no face) for
        `no_controls_say_s`: the operator's tracker finds no face, or a sender other than the tracker leaves
        face_detected false, the message's default. Before, only /diagnostics said it (`_idle_reason`): a hand-written
        lip-sync sender's `{mouth_open: 1.0}` showed the idle animation and the log said nothing (user36, s36)."""
        with self._lock:
            cause, since_s = self.mixer.ended_by(now)
        if cause != "no face" or since_s < float(self._param("no_controls_say_s")):
            self._no_face_said = self._no_face_said and cause == "no face"
            return
        if not self._no_face_said:
            self._no_face_said = True
            self.get_logger().info(
                f"face_control on {self.control_topic} has said face_detected false (no face) for {since_s:.0f} s: "
                f"{self._uncontrolled()}. The operator's tracker finds no face in its camera, or a sender "
                "other than the tracker leaves face_detected false, the message's default: a lip-sync, ARKit or "
                "hand-written sender sets it true")

    def _say_if_short(self, now: float, short: str, target_fps: float, frame_ms: list[float],
                      cpu_ms: list[float] = (), rate: float = 0.0) -> None:
        """A warning in the log, once per fps asked and backend for the placeholder and once for the avatars (a
        placeholder short of it while the robot started, kernels loading and a reconstruction beside it, used the one
        warning up, and an avatar then drawn below the fps went unsaid; user51), when the display falls short (`short`:
        rate_shortfall's sentence, '' when it keeps up), with the mean time a frame took to draw and publish
        (`frame_ms`, the rate window's) and the rate that allows. Judged only once a whole rate window (RATE_SHOWN_S)
        has passed under that fps, backend and avatar drawn (the window before holds frames paced for the old fps, or
        the placeholder's). Before, only /diagnostics said it: `ros2 param set /render_node fps 240` gave 31 FPS on
        this 2-core CPU and the log said nothing (user40, s40). Each display size is judged on its own: a 1024x600
        tablet a little short used the warning up, and a portrait monitor set after it at run time, 1080x1920 at 14.7
        FPS, went unsaid (user57). Nothing is judged while the loader loads the rasterizer's kernels (`_renderer_ready`
        false: seconds, 30 s beside three busy processes), and the window restarts when they are loaded: the placeholder
        published meanwhile shares the process with the kernels' compiling, and its figures were said as the display's
        ('rendering 18.2 FPS ...; a 512x512 frame takes 0.9 ms', 6 s after start; lead, session 61). `cpu_ms`: the
        process's CPU time during each of those frames (all its threads: the rasterizer's workers too); a frame whose
        wall time misses the period while its CPU time fits it waited for a CPU: that is said as the machine's load,
        with the load average, not as the frame's cost. Before, a loaded robot (load 26 on 2 CPUs) was told 'a 512x512
        frame takes 71.7 ms to draw and publish here (~14 FPS): lower fps or width/height, or send a smaller avatar'
        for a frame of ~20 ms of CPU (user62, user63).
        Once said, the end of the shortfall is said too (an information line, with `rate`, the display's rate, and the
        load), when the display has kept up (RATE_KEPT_UP of the fps asked) for a whole window under the settings it
        then has (the load went away, or fps, size or backend were changed as the warning advised): before, nothing
        said so, and a robot whose load came back later under the same settings was not told again (user64). A
        shortfall after that is said again, once a whole window has passed since that line."""
        size = (int(self._param("width")), int(self._param("height")))
        said_for = (target_fps, self.backend, self.drawing is None, size)
        if self._asked[0] != (*said_for, id(self.drawing), self._renderer_ready):
            self._asked = ((*said_for, id(self.drawing), self._renderer_ready), now)
        if self._short_said and self._renderer_ready and not short and rate >= RATE_KEPT_UP * target_fps:
            self._say_if_kept_up(now, target_fps, size, rate)
            return
        self._kept_up_since = None
        if (not short or not self._renderer_ready or self._short_said == said_for
                or now - self._asked[1] < RATE_SHOWN_S):
            return
        self._short_said, self._short_said_at = said_for, now
        mean_ms = float(np.mean(frame_ms)) if frame_ms else 0.0
        cpu = float(np.mean(cpu_ms)) if len(cpu_ms) else 0.0
        if mean_ms > 0 and 1e3 / mean_ms < target_fps and 0 < cpu and 1e3 / cpu >= target_fps:  # waited for a CPU
            why = (f"; a {size[0]}x{size[1]} frame takes {mean_ms:.1f} ms to draw and publish here, of which {cpu:.1f} "
                   f"ms of this node's CPU time (~{1e3 / cpu:.0f} FPS on a CPU of its own): the rest it waits for a "
                   f"CPU that the machine's other work holds ({_machine_load()}); fewer processes beside "
                   "it, or a higher priority for this node, bring the rate back")
        elif mean_ms > 0 and 1e3 / mean_ms < target_fps:
            shown = self.drawing
            if self.backend != "gsplat" and backend_available("gsplat"):
                faster = "or render on the GPU (backend gsplat)"
            elif shown is not None and shown.num_gaussians > 10_000:  # (a CPU robot: the avatar's size is the cost)
                faster = smaller_avatar_advice(shown.num_gaussians, shown.reconstructor)
            else:
                faster = "or a faster machine"
            why = (f"; a {size[0]}x{size[1]} frame takes {mean_ms:.1f} ms to draw and publish here "
                   f"(~{1e3 / mean_ms:.0f} FPS): lower fps or width/height, {faster}")
        else:  # the frames themselves would keep up
            why = (f"; a {size[0]}x{size[1]} frame takes {mean_ms:.1f} ms to draw and publish, the rest of each "
                   "period goes to this node's other threads and the machine's other work (its load)")
        self.get_logger().warning(short + why)

    def _say_if_kept_up(self, now: float, target_fps: float, size: tuple[int, int], rate: float) -> None:
        """The information line ending a shortfall said by _say_if_short, once the display has kept up (`rate` FPS
        published over the last window) for a whole window (RATE_SHOWN_S) under its settings now; the next shortfall
        is then judged afresh, from now."""
        if self._kept_up_since is None:
            self._kept_up_since = now
        if now - max(self._kept_up_since, self._asked[1]) < RATE_SHOWN_S:
            return
        self.get_logger().info(
            f"the display keeps up again: rendering {rate:.1f} FPS of the {target_fps:g} FPS asked (backend "
            f"{self.backend}, {size[0]}x{size[1]}; {_machine_load()}): the shortfall said "
            f"{now - self._short_said_at:.0f} s ago is over")
        self._short_said, self._kept_up_since = (), None
        self._asked = (self._asked[0], now)  # a shortfall from here on is said after a whole window of it

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        self._say_shared_topics(now)
        self._say_if_no_controls(now)
        self._say_if_no_face(now)
        control_gap = now - (self._control_arrived or self._started)
        say_s = float(self._param("no_controls_say_s"))
        times = tuple(self._times)  # a snapshot: the render thread appends meanwhile
        recent = [t for t in times if now - t[0] <= RATE_SHOWN_S]
        render_ms = [t[1] * 1e3 for t in recent]
        cpu_ms = [t[3] * 1e3 for t in recent]
        ages = [t[2] * 1e3 for t in recent if t[2] is not None]
        offset = self._stamp_ages.offset
        rate = display_rate([t[0] for t in recent], now)
        target = float(self._param("fps"))
        # live frames follow the controls: a tracker slower than fps is not the renderer's shortfall
        expected = (sum(now - t <= RATE_SHOWN_S for t in tuple(self._control_times)) / RATE_SHOWN_S
                    if self._last_mode == "live" else target)
        asked = str(self._param("backend"))  # (self.backend: the one that drew the last frame, before a switch too)
        short = rate_shortfall(rate, target, expected, now - self._started, now - times[-1][0] if times else 0.0,
                               self.backend if asked == "auto" else asked)
        self._say_if_short(now, short, target, render_ms, cpu_ms, rate)
        idle_reason = self._idle_reason(now) if self.loaded is not None else ""
        if self.loaded is None:
            level, message = DiagnosticStatus.WARN, self.last_error or self.waiting
        elif self.last_error:
            level, message = DiagnosticStatus.WARN, self.last_error
        elif self.control_refused[1] and now - self.control_refused[0] <= REFUSAL_SHOWN_S:
            level, message = DiagnosticStatus.WARN, f"face_control refused: {self.control_refused[1]}"
        elif self._control_arrived and control_gap >= say_s:
            level, message = DiagnosticStatus.WARN, (f"no face_control on {self.control_topic} for {control_gap:.0f} s "
                                                     f"(its publishers: {self.count_publishers(self.control_topic)}): "
                                                     f"{self.state}")
        elif short:
            level, message = DiagnosticStatus.WARN, short
        elif not self._control_arrived and control_gap >= say_s:
            level, message = DiagnosticStatus.OK, f"{self.state}: no face_control on {self.control_topic} yet"
        else:
            level, message = DiagnosticStatus.OK, self.state + (f": {idle_reason}" if idle_reason else "")
        loaded, drawing = self.loaded, self.drawing
        values = {
            "state": self.state,
            "idle_reason": idle_reason,  # why the idle animation plays ('' while driven)
            "rate_hz": f"{rate:.1f}",
            "render_ms_mean": f"{np.mean(render_ms):.2f}" if render_ms else "",
            "render_ms_max": f"{np.max(render_ms):.2f}" if render_ms else "",
            "render_cpu_ms_mean": f"{np.mean(cpu_ms):.2f}" if cpu_ms else "",  # the process's CPU time per frame
            "latency_ms_mean": f"{np.mean(ages):.1f}" if ages else "",  # publication - control stamp
            "stamp_offset_s": "" if offset is None else f"{offset:.3f}",  # arrival - stamp (pacing.stamp_offset)
            # seconds since the last face_control came ('' before the first): the operator's stream, live or not
            "control_age_s": f"{control_gap:.1f}" if self._control_arrived else "",
            "backend": self.backend,
            "cpu_threads": str(self.threads_used),
            "operator_id": loaded.operator_id if loaded else "",  # the avatar loaded (drawn from the next frame on)
            "num_gaussians": str(loaded.num_gaussians if loaded else 0),
            "operator_basis_ids": " ".join(str(k) for k in self.operator_bases),  # held, oldest first
            # the avatar in the frames published now ('' while the placeholder shows) and its header stamp
            # (when it was made: tells a new avatar of the same operator from the old one)
            "drawing_operator_id": drawing.operator_id if drawing else "",
            "drawing_avatar_stamp": drawing.made if drawing else "",
            "control_refused": self.control_refused[1],  # why the last refused face_control was refused
            "loader_restarts": str(self._builder.restarts),  # avatar loader processes started again (one ended)
            **{k: str(v) for k, v in self.counts.items()},
        }
        self.diag_pub.publish(diagnostics(self, "face rendering", level, message, self.backend, values))

    def destroy_node(self):
        if hasattr(self, "_renderer"):  # else __init__ failed before: let its error show, not one of ours
            self._stop.set()
            self._fresh.set()
            self._pending_avatar.wake()
            self._renderer.join(timeout=5.0)
            # The loader is not waited for while it warms up (common.Loading; 7-9 s to end a Ctrl-C'd start, user18);
            # after it, a build it waits for ends (Stopped) within avatar_loader.POLL_S of the worker's end
            warmed = self._warming.stop()
            self._builder.close()
            if warmed:
                self._loader.join(timeout=5.0)
        return super().destroy_node()


def control_key(control) -> tuple:
    """What of a FaceControl decides the picture (every field but its stamp, frame and confidence), as a
    comparable tuple."""
    key = []
    for f in dataclasses.fields(control):
        if f.name not in ("stamp_ns", "frame_id", "confidence"):
            v = getattr(control, f.name)
            key.append(v.tobytes() if isinstance(v, np.ndarray) else tuple(v) if isinstance(v, list) else v)
    return tuple(key)


def main(args=None):
    # One executor thread: the callbacks only store what arrived, and every extra executor thread is another hand-over
    # of the GIL before a control reaches the render thread (measured with bench_latency, two executor threads:
    # control arrival p95 8.6-9.1 ms, mean of the slowest 5 % 14 ms, render_node 16.3-16.6 ms CPU per frame; one:
    # 3.9-5.2, 2-4 ms, 14.6-15.0 ms). An avatar message is taken on it too (tens of ms, at a swap only).
    return run(RenderNode, args)
