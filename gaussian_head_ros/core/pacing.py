"""When the render loop draws its next frame (`FramePacer`): live frames as controls arrive, idle frames on a clock.

No ROS here: render_node asks `FramePacer.wait` before each frame and says `drawn` when one begins; the test drives
it on simulated time.
"""

from __future__ import annotations

import time
from collections import deque

REPEAT_AFTER = 2.5  # periods without a fresh control after which the last live frame is published again (why: below)
BURST = 2.0  # frames the render loop may draw back to back (its token bucket's size)
LIVE_RATE = 1.2  # live frames per second at most, x fps (the token bucket's fill rate)
FILL_BELOW = 0.93  # fresh live frames per second below this x fps (over RATE_WINDOW_S): repeats fill the display to fps
RATE_WINDOW_S = 1.0  # seconds over which the fresh live frames are counted
REPEAT_GAP = 0.5  # periods: a filling repeat comes at least this long after the frame before it
AHEAD = 2.0  # frames the display may run ahead of its fps clock and still owe none later (no catch-up burst either way)


class FramePacer:
    """When render_node draws its next frame: as soon as a fresh live control arrives (when the rate allows),
    else one period after the last frame (idle animation, placeholder, easing), or REPEAT_AFTER periods after
    the last live frame when no fresh control came (the tracker is late: the last picture is published again),
    sooner when the tracker is slower than fps (below).

    Drawing at the arrival of a control rather than at the next tick of a fixed clock saves up to a period of
    glass-to-glass latency (on average half a period: 17 ms at 30 FPS). The rate of live frames: a token bucket
    of BURST frames filled at LIVE_RATE x fps. Filled at exactly fps it would make controls that come at fps
    (a 30 Hz camera, 30 FPS asked) wait whenever the tracker's output jitters: a late control followed by an
    early one leaves the bucket short, and at equal rates it never fills up again (simulated: most controls
    then waited 4-8 ms for a token, at multiples of the period).

    The repeat is a keep-alive for a tracker that stalls, not a frame for every period: a repeat shows nothing new
    and its glass-to-glass latency is the old frame's plus the wait. A live tracker's controls do not come evenly
    (measured in scripts/bench_latency.py at 30 Hz: intervals p5 13-19 ms, p95 48-52 ms, from its per-frame work
    and the executors), so after 1.5 periods (50 ms) 3-5 % of the frames were repeats, the next fresh control
    arriving a median 7-9 ms after them: they made the latency's p95 (60 ms without them, 84-160 ms with them).

    A tracker systematically slower than fps (a 25 fps camera, a starved tracker: fewer than FILL_BELOW x fps fresh
    frames in the last RATE_WINDOW_S) would leave the face display below its rate (25 FPS for 30 asked; issue 15
    asks >= 28): then the last picture is published again whenever the display has fallen one frame behind an fps
    clock (frames owed: fps per second, minus one per frame, kept between -AHEAD and 1), at least REPEAT_GAP periods
    after the frame before. Every control is still drawn as it arrives; the repeats only fill in (25 Hz controls:
    25 new pictures and 5 repeats per second). The same fills for a tracker that stops, once its rate has dropped.
    """

    def __init__(self, now: float):
        self.tokens, self.filled = BURST, now
        self.owed, self.counted = 0.0, now  # frames the display is behind its fps clock
        self.fresh_times: deque[float] = deque()  # when the fresh live frames of the last RATE_WINDOW_S began
        self.stretch = now  # when the first of them began after none for RATE_WINDOW_S (a tracker starting)
        self.last = now - 1e3  # when the last frame began (monotonic seconds)

    def wait(self, now: float, fps: float, fresh: bool, live: bool) -> float:
        """Seconds until the next frame is due (0: draw it now, then call `drawn`). fresh: a live control
        arrived since the last frame; live: the last frame was drawn from live control. While not fresh, a
        control that arrives during the wait makes the frame due sooner: ask again."""
        period = 1.0 / fps
        self.tokens, self.filled = min(BURST, self.tokens + LIVE_RATE * (now - self.filled) / period), now
        self.owed, self.counted = min(1.0, self.owed + (now - self.counted) / period), now
        if fresh:
            return 0.0 if self.tokens >= 1.0 - 1e-9 else (1.0 - self.tokens) * period / LIVE_RATE
        if not live:
            return max(0.0, self.last + period - now)
        keep_alive = self.last + REPEAT_AFTER * period - now
        if self.fresh_rate(now) >= FILL_BELOW * fps:
            return max(0.0, keep_alive)
        owed_in = 0.0 if self.owed >= 1.0 - 1e-9 else (1.0 - self.owed) * period  # (no float crumbs: t + 1e-18 == t)
        return max(0.0, min(keep_alive, max(self.last + REPEAT_GAP * period - now, owed_in)))

    def fresh_rate(self, now: float) -> float:
        """Fresh live frames per second over the last RATE_WINDOW_S (over the time since they began, when that is
        shorter: a tracker that just started is not taken for a slow one); 0 without any."""
        while self.fresh_times and self.fresh_times[0] < now - RATE_WINDOW_S:
            self.fresh_times.popleft()
        if not self.fresh_times:
            return 0.0
        return len(self.fresh_times) / max(min(RATE_WINDOW_S, now - self.stretch), 1e-3)

    def drawn(self, now: float, fresh: bool = False) -> None:
        """A frame begins now; fresh: it draws a fresh live control (as `wait` was told). Only fresh frames take a
        token: a repeat never makes the next control wait."""
        if fresh:
            self.tokens -= 1.0
        self.owed = max(-AHEAD, self.owed - 1.0)
        if fresh:
            if not self.fresh_rate(now):
                self.stretch = now
            self.fresh_times.append(now)
        self.last = now


RATE_SHOWN_S = 5.0  # seconds over which the display's rate is measured for /diagnostics
RATE_SHORT = 0.8  # below this x what it should reach, the rate is a warning
# at or above this x the fps asked, over a whole window, a shortfall said is over (above RATE_SHORT, so that a rate
# about RATE_SHORT is not said short and over by turns; and of the fps asked, not of the controls' rate, which live
# frames follow: a render node switching between idle frames and a starved tracker's said both every 20 s; user64)
RATE_KEPT_UP = 0.9


def display_rate(frame_times, now: float, window_s: float = RATE_SHOWN_S) -> float:
    """Frames per second published over the last `window_s` seconds (over the time since the first of them, when
    that is shorter and there are two or more). `frame_times`: monotonic seconds when each frame was published."""
    recent = [t for t in frame_times if now - t <= window_s]
    if not recent:
        return 0.0
    span = min(window_s, max(now - recent[0], 1e-3)) if len(recent) > 1 else window_s
    return len(recent) / span


def rate_shortfall(rate: float, target_fps: float, expected_fps: float, running_s: float, last_frame_s: float,
                   backend: str, window_s: float = RATE_SHOWN_S) -> str:
    """The warning for a face display below its rate, or "" when it keeps up. rate: display_rate; target_fps: the
    fps asked; expected_fps: what the frames can reach (live frames follow the controls: a tracker slower than fps
    is not the renderer's shortfall); running_s: how long the render loop has run (its first window is not judged);
    last_frame_s: seconds since the last frame was published. A renderer that takes seconds a frame (the torch
    reference rasterizer on a CPU: 1 frame in 40 s at 640x480 under load) was said OK: the rule judged only
    windows of more than 10 frames (user17, s17)."""
    if running_s < window_s or rate >= RATE_SHORT * min(target_fps, expected_fps):
        return ""
    stalled = f", the last frame {last_frame_s:.1f} s ago" if last_frame_s > 1.0 else ""
    return f"rendering {rate:.1f} FPS, below the {target_fps:g} FPS asked (backend {backend}{stalled})"


# A message stamped more than this long before the receiving node's clock (s), or more than STAMP_AHEAD_S after it,
# was not stamped with that clock. Judged on the arrival nearest its stamp among the last STAMP_ARRIVALS: a clock
# offset moves every arrival, a late callback only some (a render node's first controls ran 7.8 s late while its
# kernels loaded at load 21; DDS and the nodes' queues otherwise take milliseconds). Seen (user18, s18): camera frames
# stamped 10 s behind made every latency figure 10 s (render_node latency_ms_mean 10405, level OK) without a word.
STAMP_BEHIND_S, STAMP_AHEAD_S, STAMP_ARRIVALS = 2.0, 0.5, 10


def stamp_offset(ages_s) -> float | None:
    """The clock offset the recent arrivals show: of `ages_s` (each message's arrival on the receiving node's clock
    minus its header stamp, seconds; negative: stamped in its future; the last STAMP_ARRIVALS), the one nearest zero;
    None with fewer than STAMP_ARRIVALS."""
    ages = list(ages_s)[-STAMP_ARRIVALS:]
    return min(ages, key=abs) if len(ages) >= STAMP_ARRIVALS else None


def stamp_offset_note(offset_s: float | None, what: str) -> str:
    """'' when `offset_s` (stamp_offset; None: not known yet) may be transport and queueing delay; else one sentence
    for the log naming `what` (e.g. 'camera frames on /camera/image_raw'), the offset and its usual causes: a driver
    stamping with another clock (its own, or a bag's played without --clock), use_sim_time set on one side only, or
    two hosts whose clocks disagree. The stamps are kept as they are; only latency figures include the offset."""
    if offset_s is None or -STAMP_AHEAD_S <= offset_s <= STAMP_BEHIND_S:
        return ""
    when = f"{offset_s:.1f} s before" if offset_s > 0 else f"{-offset_s:.1f} s after"
    return (f"{what} are stamped {when} this node's clock: not the same clock (a driver stamping with its own, a bag "
            f"played without --clock, use_sim_time on one side only, or hosts whose clocks disagree: chrony or NTP); "
            f"the stamps are kept, latency figures include the offset")


STAMP_NOTE_AGAIN_S = 60.0  # while the offset lasts, its note is said again at most this often (s)


class StampAges:
    """The recent arrivals' ages (arrival on the receiving node's clock minus the header stamp) of one stream, for
    `stamp_offset` / `stamp_offset_note`: one per subscribed stream (tracker_node's camera frames, render_node's
    face_control). `add` is called from the subscription callback, `offset` from the diagnostics timer.
    `monotonic`: the clock (seconds) of the note's repetition (time.monotonic; a test's own)."""

    def __init__(self, monotonic=time.monotonic):
        self._ages = deque(maxlen=STAMP_ARRIVALS)
        self._monotonic = monotonic
        self._said_at: float | None = None  # when the note was last said (monotonic s)

    def add(self, arrival_ns: int, stamp_ns: int, what: str, logger) -> None:
        """Take in one arrival (both in nanoseconds of the same clock; either 0, a clock not started yet, use_sim_time
        before the first /clock, or a message without a stamp: not taken) and say the stamp_offset_note of the offset
        now, when there is one, with `logger.warning(str)` (a node's get_logger(), a logging.Logger), at most once
        every STAMP_NOTE_AGAIN_S; `what` names the stream in that sentence (e.g. 'camera frames on /camera/image_raw')."""
        if not arrival_ns or not stamp_ns:
            return
        self._ages.append((arrival_ns - stamp_ns) * 1e-9)
        note = stamp_offset_note(stamp_offset(self._ages), what)
        now = self._monotonic()
        if note and (self._said_at is None or now - self._said_at >= STAMP_NOTE_AGAIN_S):
            self._said_at = now
            logger.warning(note)

    @property
    def offset(self) -> float | None:
        """stamp_offset of the ages now (seconds; None with fewer than STAMP_ARRIVALS)."""
        return stamp_offset(tuple(self._ages))  # (a copy: the executor thread appends meanwhile)


SIM_CLOCK_SAY_S = 10.0  # s under use_sim_time with no /clock yet, or with the clock standing still, before it is said


class SimClockWatch:
    """What a node says of its ROS clock under use_sim_time, from its readings (the node reads the clock once a second
    of the steady clock and passes `check` what it read): a warning, once, when no /clock has come `say_s` after the
    node started or use_sim_time was set (its time stands at 0: user50), and when the clock has stood still `say_s`
    after it moved (a bag paused or at its end, a simulator paused: user55); information when it comes, or moves
    again. Before, a render node launched with use_sim_time:=true and driven by a replay played with --clock said
    nothing when the replay ended, and every idle frame of its face display, each a new picture, carried the one
    stamp of the replay's last /clock for as long as it ran. `check` -> (level, line) to say now, or None; level is
    'warning' or 'info' (the logger's method)."""

    def __init__(self, say_s: float = SIM_CLOCK_SAY_S):
        self.say_s = say_s
        self._reading: int | None = None  # the ROS clock's last reading (ns; None: not under use_sim_time)
        self._since = 0.0  # monotonic s since the clock has read that
        self._said = ""  # 'none' (no /clock yet) or 'still' (it stands still): said, until it moves

    def check(self, sim_time: bool, clock_ns: int, now: float) -> tuple[str, str] | None:
        """`sim_time`: the node's use_sim_time; `clock_ns`: its ROS clock now; `now`: monotonic seconds."""
        if not sim_time:
            said, self._reading, self._said = self._said, None, ""
            return ("info", "use_sim_time is false now: this node's time is the system clock") if said else None
        if clock_ns != self._reading:
            said, since, stood = self._said, self._since, self._reading
            self._reading, self._since, self._said = clock_ns, now, ""
            if said == "none":
                return "info", "/clock arrived: this node's time follows it now"
            if said == "still":
                return "info", (f"/clock moves again, after standing at {stood * 1e-9:.3f} s for {now - since:.0f} s: "
                                "this node's time follows it now")
            return None
        if self._said or now - self._since < self.say_s:
            return None
        if clock_ns == 0:
            self._said = "none"
            return "warning", (f"use_sim_time is true and no /clock has come in {self.say_s:.0f} s: this node's time "
                               "stands at 0, and what it publishes is stamped 0 until one comes. Play the bag with "
                               "--clock (ros2 bag play --clock), start the simulator, or launch with "
                               "use_sim_time:=false")
        self._said = "still"
        return "warning", (f"use_sim_time is true and /clock has stood at {clock_ns * 1e-9:.3f} s for "
                           f"{now - self._since:.0f} s (a bag paused or at its end, a simulator paused or stopped): "
                           "this node's time stands still, and everything it stamps meanwhile carries that one time "
                           "(a render node's idle frames too, each a new picture) until /clock moves again")
