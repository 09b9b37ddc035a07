"""video_source_node: a video file (or a V4L2 webcam) as the operator camera, for machines without one.

Publishes `camera/image_raw` (sensor_msgs/Image, sensor-data QoS) at the file's native rate (or `rate`): each frame
after the one before by their presentation times, so a phone's variable frame rate plays at its own pace,
each frame stamped with the wall-clock time it was published, so glass-to-glass latency downstream is
real. With `loop` a file restarts at its end; without it the node stays up and idle after the last frame, and its
status on /diagnostics says the video ended (`video_ended` true: the tracker names the end rather than a camera
that stopped), until `loop` is set true again (then the file plays again from its start).
A source that cannot be opened (a wrong path, a camera not plugged in) is said once as an error, in the log
and on /diagnostics (level ERROR, the reason and when it tries again), then retried quietly with a growing
pause (2 s doubling up to RETRY_MAX_S); when it opens, the log says so. No source at all: said once (how to give one
at start-up: `source` is read-only), no retry.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from gaussian_head_ros.core import frametrace
from gaussian_head_ros.core.facemesh import MIN_IMAGE_SIDE
from gaussian_head_ros.core.settings import setting, settings
from gaussian_head_ros.core.video import VideoSource
from gaussian_head_ros.nodes.common import (VIDEO_AGAIN_KEY, VIDEO_ENDED_KEY, VIDEO_FRAMES_KEY, VIDEO_SOURCE_TASK,
                                            check_parameters, declare_settings, diagnostics, log_core_under, run,
                                            steady_timer)
from gaussian_head_ros.nodes.conversions import rgb_to_image_msg

RETRY_FIRST_S = 2.0  # first pause before opening a source that failed again; doubles up to RETRY_MAX_S
RETRY_MAX_S = 60.0


@dataclass
class VideoSourceSettings:
    """video_source_node's parameters besides the read-only `source`."""

    loop: bool = setting(True, "restart a file at its end")
    rate: float = setting(0.0, "publish rate in Hz; 0 = the file's native rate", range=(0.0, 240.0))
    frame_id: str = setting("camera_optical_frame", "frame_id of the published images", frame=True)
    max_side: int = setting(0, "scale frames down so their longer side is at most this, the shorter never "
                                      "below 16; 0 = off, else at least 16 (facemesh.MIN_IMAGE_SIDE: the tracker "
                                      "reads no smaller frame)", range=(0, 16384))


PARAMS = settings(VideoSourceSettings)


def check_value(name: str, value) -> None:
    """Raise ValueError when a parameter value is not acceptable: its range, then what a range cannot say: a
    `max_side` is 0 (off) or at least facemesh.MIN_IMAGE_SIDE. 1..MIN_IMAGE_SIDE - 1 made frames the tracker could not
    read (it skipped each one, 'need an RGB uint8 image of at least 16x16'; user20, s20); VideoSource._fit now keeps
    the shorter side at MIN_IMAGE_SIDE or more, so such a longer side could not be kept either."""
    PARAMS[name].check(value)
    if name == "max_side" and 0 < int(value) < MIN_IMAGE_SIDE:
        raise ValueError(f"max_side must be 0 (off) or at least {MIN_IMAGE_SIDE}, got {value}: frames of fewer "
                         f"pixels a side are too small for the tracker (it reads {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} "
                         "and more, and finds faces in far larger frames)")


class VideoSourceNode(Node):
    def __init__(self, **kwargs):
        super().__init__("video_source_node", **kwargs)
        log_core_under(self)
        self.declare_parameter("source", "", ParameterDescriptor(
            description="video file path, /dev/videoN or a camera index. Read at start (read-only)", read_only=True))
        declare_settings(self, PARAMS, check_value)  # a wrong type or a value refused goes back to its default
        self._loop_at_start = bool(self._param("loop"))  # what `again` advises
        self.add_on_set_parameters_callback(self._on_set)
        self.pub = self.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.published = 0  # frames published since the node started
        self.played = 0  # ... since the source last opened (a file played again after its end: from its start)
        self.play_frames = 0  # ... since the file last began from its start (its loops each begin again)
        self.trace = frametrace.FrameTrace("video_source_node")  # only with GHR_FRAME_TRACE set
        self.state = "starting"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="video_source", daemon=True)
        self._thread.start()
        steady_timer(self, 1.0, self._publish_diagnostics)

    def _on_set(self, params) -> SetParametersResult:
        try:
            check_parameters(PARAMS, params, check_value)
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    def _param(self, name):
        return self.get_parameter(name).value

    def _open(self, failures: int) -> VideoSource | None:
        """The source, or None (state and log say why; the log only at the first of a row of failures)."""
        source = str(self._param("source"))
        try:
            src = VideoSource(source, loop=bool(self._param("loop")), max_side=int(self._param("max_side")) or None)
        except ValueError as e:
            pause = self._retry_pause(failures)
            self.state = f"cannot open: {e}; next attempt in {pause:g} s"
            if failures == 0:
                self.get_logger().error(f"{e}; retrying quietly, every {RETRY_FIRST_S:g} s growing to "
                                        f"{RETRY_MAX_S:g} s (state on /diagnostics)")
            else:
                self.get_logger().debug(f"still cannot open {source}: {e}")
            return None
        rate = float(self._param("rate"))
        paced = f", sent at {rate:g} Hz (rate)" if rate > 0 else ""
        self.get_logger().info(f"playing {source} ({src.width}x{src.height} at {src.fps:g} fps{self._sent(src)}{paced}"
                               f"{', looping' if src.loop else ''})" + (f" after {failures} failed attempts"
                                                                       if failures else ""))
        return src

    @staticmethod
    def _sent(src: VideoSource) -> str:
        """', sent as WxH (max_side N)' when max_side scales the source's frames down, else "". The 'playing' line
        gave the file's 480x480 while max_side 240 published 240x240 (user25, s25)."""
        size = src.sent_size()
        return f", sent as {size[0]}x{size[1]} (max_side {src.max_side})" if size != (src.width, src.height) else ""

    def again(self) -> str:
        """How the ended video plays again, for its end line and the tracker's (on /diagnostics, VIDEO_AGAIN_KEY):
        `ros2 param set <node> loop true`; with the launch argument loop:=true where `loop` was false from the start.
        The tracker advised loop:=true also after `loop` had been set false at run time (the launch's loop:=true
        already given; user52)."""
        now = f"`ros2 param set {self.get_fully_qualified_name()} loop true` plays it again"
        if self._loop_at_start:
            return f"loop set false while it played: {now}"
        return f"played without loop: loop:=true plays it in a loop (ros2 run: -p loop:=true); {now}"

    def _take_settings(self, src: VideoSource, rate: float, ended: bool = False) -> float:
        """Take `max_side` onto `src` and return the `rate` [Hz] set now, saying each that changed: `rate` is the one
        played so far. Read per frame, so that `ros2 param set` takes effect at once (they were read only when the
        source opened, which a looping file never does again: accepted and ignored; try8). After the video's end
        (`ended`) each is said as applying when the file plays again; before, a max_side or rate set then was
        accepted without a word, and a rate set at any time too (user52)."""
        max_side, new_rate = int(self._param("max_side")) or None, float(self._param("rate"))
        when, changed = "when the file plays again" if ended else "from now on", []
        if max_side != src.max_side:
            src.max_side = max_side
            size = src.sent_size()
            changed.append(f"max_side {max_side or 0}: frames sent as {size[0]}x{size[1]} {when} (the source's are "
                           f"{src.width}x{src.height})")
        if new_rate != rate:
            changed.append(f"rate {new_rate:g}: frames sent at {new_rate:g} Hz {when}" if new_rate > 0 else
                           f"rate 0: frames sent at the source's own pace ({src.fps:g} fps) {when}")
        if changed:
            self.get_logger().info("; ".join(changed) + (f" (the video has ended; {self.again()})" if ended else ""))
        return new_rate

    @staticmethod
    def _retry_pause(failures: int) -> float:
        return min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** failures)

    def _run(self):
        if not str(self._param("source")):
            # `source` is read-only: telling to set it sent users to `ros2 param set`, which refuses it
            self.state = "no source: start the node with -p source:=<file, /dev/videoN or camera index>"
            self.get_logger().error("no video source given: start the node with --ros-args -p source:=<file, "
                                    "/dev/videoN or camera index> (ros2 launch: video:=...); 'source' is read-only, "
                                    "it cannot be set while the node runs")
            return
        failures = 0
        while not self._stop.is_set():
            src = self._open(failures)
            if src is None:
                self._stop.wait(self._retry_pause(failures))
                failures += 1
                continue
            failures, self.played, self.play_frames = 0, 0, 0
            rate = float(self._param("rate"))
            with src:
                self.state = "playing"
                next_t = time.monotonic()
                while not self._stop.is_set():
                    src.loop = bool(self._param("loop"))  # read per frame, as max_side and rate (_take_settings)
                    rate = self._take_settings(src, rate)
                    frame = src.read()
                    if frame is None:
                        break
                    due = next_t + src.play_interval_s(frame, rate)
                    delay = due - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                    next_t = max(due, time.monotonic() - 0.5)  # no burst after a stall
                    now = self.get_clock().now()
                    header = Header(stamp=now.to_msg(), frame_id=str(self._param("frame_id")))
                    try:
                        self.pub.publish(rgb_to_image_msg(frame.rgb, header))
                    except Exception:  # the context went away under us: shutting down
                        if not rclpy.ok():
                            return
                        raise
                    self.published += 1
                    self.played += 1
                    self.play_frames = src.frames_this_play
                    self.trace.mark(frametrace.CAMERA_PUBLISHED, now.nanoseconds)
            if self._stop.is_set():  # the node is being destroyed: no end of the video to say (it said 'end of video
                return  # ... loop true plays it again' at a Ctrl-C or a destroy while playing; user46, s46)
            if src.camera:
                self.get_logger().warning("camera stopped delivering frames; reopening in 2 s")
                self._stop.wait(2.0)
                continue
            self.state = "finished"
            loops = (f" (played {src.plays} times, {self.played} frames in all)" if src.plays > 1 else "")
            self.get_logger().info(f"end of video after {self.play_frames} frame{'s' * (self.play_frames != 1)}"
                                   f"{loops} ({self.again()})")
            while not self._stop.wait(0.2):  # `loop` set true again: the file plays again from its start (it was
                if bool(self._param("loop")):  # accepted and ignored once the file had ended; user19)
                    self.get_logger().info("loop set: playing the file again from its start")
                    break
                rate = self._take_settings(src, rate, ended=True)
            else:
                return

    def _publish_diagnostics(self):
        if self.state in ("playing", "finished"):
            level = DiagnosticStatus.OK
        elif self.state.startswith(("cannot open", "no source")):
            level = DiagnosticStatus.ERROR
        else:
            level = DiagnosticStatus.WARN
        self.diag_pub.publish(diagnostics(self, VIDEO_SOURCE_TASK, level, self.state, str(self._param("source")),
                                          {"frames_published": self.published, VIDEO_FRAMES_KEY: self.play_frames,
                                           VIDEO_ENDED_KEY: str(self.state == "finished").lower(),
                                           # (how an ended video plays again: while it plays, no end to advise
                                           # on; it said 'loop set false while it played' of a loop never set false)
                                           VIDEO_AGAIN_KEY: self.again() if self.state == "finished" else ""}))

    def destroy_node(self):
        if hasattr(self, "_thread"):  # else __init__ failed before: let its error show, not one of ours
            self._stop.set()
            self._thread.join(timeout=2.0)
        return super().destroy_node()


def main(args=None):
    return run(VideoSourceNode, args)
