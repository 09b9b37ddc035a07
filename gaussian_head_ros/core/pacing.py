"""When the render loop draws its next frame (`FramePacer`): live frames as controls arrive, idle frames on a clock.

No ROS here: render_node asks `FramePacer.wait` before each frame and says `drawn` when one begins; the test drives
it on simulated time.
"""

from __future__ import annotations

REPEAT_AFTER = 2.5  # periods without a fresh control after which the last live frame is published again (why: below)
BURST = 2.0  # frames the render loop may draw back to back (its token bucket's size)
LIVE_RATE = 1.2  # live frames per second at most, x fps (the token bucket's fill rate)


class FramePacer:
    """When render_node draws its next frame: as soon as a fresh live control arrives (when the rate allows),
    else one period after the last frame (idle animation, placeholder, easing), or REPEAT_AFTER periods after
    the last live frame when no fresh control came (the tracker is late: the last picture is published again).

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
    """

    def __init__(self, now: float):
        self.tokens, self.filled = BURST, now
        self.last = now - 1e3  # when the last frame began (monotonic seconds)

    def wait(self, now: float, fps: float, fresh: bool, live: bool) -> float:
        """Seconds until the next frame is due (0: draw it now, then call `drawn`). fresh: a live control
        arrived since the last frame; live: the last frame was drawn from live control. While not fresh, a
        control that arrives during the wait makes the frame due sooner: ask again."""
        period = 1.0 / fps
        self.tokens, self.filled = min(BURST, self.tokens + LIVE_RATE * (now - self.filled) / period), now
        if fresh:
            return 0.0 if self.tokens >= 1.0 - 1e-9 else (1.0 - self.tokens) * period / LIVE_RATE
        return max(0.0, self.last + (REPEAT_AFTER if live else 1.0) * period - now)

    def drawn(self, now: float) -> None:
        """A frame begins now."""
        self.tokens -= 1.0
        self.last = now
