"""core.pacing: when the render loop draws (no ROS; simulated time)."""

import numpy as np

from gaussian_head_ros.core.pacing import FramePacer


def _paced(arrivals, fps, seconds, live=True, draw_s=0.004):
    """Frames (start time, arrival time of the newest control drawn or None) that a FramePacer
    starts, on simulated time, for controls arriving at `arrivals` (seconds); drawing takes draw_s."""
    pacer, t, i, fresh, newest, frames = FramePacer(0.0), 0.0, 0, False, None, []
    while t < seconds:
        while i < len(arrivals) and arrivals[i] <= t:
            fresh, newest, i = True, arrivals[i], i + 1
        wait = pacer.wait(t, fps, fresh, live)
        if wait > 0.0:
            t = min(t + wait, arrivals[i]) if not fresh and i < len(arrivals) else t + wait
            continue
        fresh = False
        pacer.drawn(t)
        frames.append((t, newest))
        t += draw_s
    return frames


def test_frames_follow_the_controls_as_they_arrive():
    """Each fresh control is drawn as it arrives (not at the next tick of a fixed clock: up to a period, on
    average half of one, of glass-to-glass latency), at most 1.2 x `fps` frames per second on average; without
    controls the idle animation runs at `fps`; a late tracker gets its last frame published again after 1.5
    periods."""
    rng = np.random.default_rng(0)
    arrivals = list(np.arange(0.5, 10.0, 1 / 30) + rng.uniform(-0.008, 0.008, 285))  # a jittery 30 Hz tracker
    frames = _paced(arrivals, 30.0, 10.0)
    delays = [t - a for t, a in frames if a is not None and t >= 0.6]
    drawn = {a for _, a in frames}
    assert sum(a in drawn for a in arrivals[3:]) >= 0.98 * len(arrivals[3:]), "controls skipped"
    assert max(delays) <= 0.004 + 1e-9, f"a control waited {max(delays) * 1e3:.1f} ms to be drawn"
    live = [t for t, a in frames if t >= 0.6]
    assert len(live) <= 30 * (10.0 - 0.6) + 2 and len(live) >= 0.97 * len(arrivals[3:])
    # controls faster than fps: at most 1.2 x fps frames per second
    fast = _paced(list(np.arange(0.0, 10.0, 1 / 60)), 30.0, 10.0)
    assert 30 * 10 <= len(fast) <= 1.2 * 30 * 10 + 2
    # no control: the idle animation at fps
    idle = _paced([], 20.0, 5.0, live=False)
    assert len(idle) in (100, 101) and np.allclose(np.diff([t for t, _ in idle]), 0.05)
    # the tracker stops: the last live frame again every REPEAT_AFTER (2.5) periods
    late = _paced([0.0], 20.0, 3.0)
    assert np.allclose(np.diff([t for t, _ in late]), 2.5 / 20)


def test_an_unevenly_paced_tracker_gets_no_repeats():
    """Controls at the camera's rate but unevenly spaced (intervals 15-55 ms at 30 Hz, as measured end to end;
    a 25 fps camera's 40 ms with the same jitter) are each drawn once: no keep-alive repeat of the previous frame
    just before the next fresh one comes (a repeat shows nothing new at the latency of an old frame)."""
    rng = np.random.default_rng(1)
    for rate in (30.0, 25.0):
        base = np.arange(0.2, 9.9, 1 / rate)
        arrivals = list(base + rng.uniform(-0.018, 0.018, len(base)))
        live = [a for _, a in _paced(arrivals, 30.0, arrivals[-1] + 0.05) if a is not None]
        assert live == arrivals, (rate, len(live) - len(set(live)), "repeats")
