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
        pacer.drawn(t, fresh)
        fresh = False
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
    # the tracker stops: the last live frame again after REPEAT_AFTER (2.5) periods, then at fps (its rate has dropped)
    late = np.diff([t for t, _ in _paced([0.0], 20.0, 3.0)])
    assert np.isclose(late[0], 2.5 / 20) and np.allclose(late[1:], 1 / 20)


def test_an_unevenly_paced_tracker_gets_no_repeats():
    """Controls at the camera's rate but unevenly spaced (intervals 15-55 ms at 30 Hz, as measured end to end) are
    each drawn once: no keep-alive repeat of the previous frame just before the next fresh one comes (a repeat
    shows nothing new at the latency of an old frame)."""
    rng = np.random.default_rng(1)
    base = np.arange(0.2, 9.9, 1 / 30)
    arrivals = list(base + rng.uniform(-0.018, 0.018, len(base)))
    live = [a for _, a in _paced(arrivals, 30.0, arrivals[-1] + 0.05) if a is not None]
    assert live == arrivals, (len(live) - len(set(live)), "repeats")


def test_a_tracker_slower_than_fps_is_filled_to_fps():
    """A 25 fps camera with the same jitter (issue 15: the face display >= 28 FPS with lp_d0's 25 fps): every
    control is drawn once, as it arrives, and repeats of the last picture fill the display to 30 FPS, none
    sooner than half a period after the frame before it. Controls at 20 Hz likewise."""
    rng = np.random.default_rng(2)
    for rate in (25.0, 20.0):
        base = np.arange(0.2, 9.9, 1 / rate)
        arrivals = list(base + rng.uniform(-0.018, 0.018, len(base)))
        frames = _paced(arrivals, 30.0, arrivals[-1] + 0.05)
        first = {}
        for t, a in frames:
            if a is not None:
                first.setdefault(a, t)
        assert list(first) == arrivals, (rate, "a control skipped")
        assert max(first[a] - a for a in arrivals) <= 0.004 + 1e-9, (rate, "a control waited")
        steady = np.array([t for t, a in frames if 1.2 <= t < 9.2])
        assert 29.0 <= len(steady) / 8.0 <= 30.5, (rate, len(steady) / 8.0)
        assert np.diff(steady).max() <= 2.5 / 30 + 1e-9, rate  # never longer than the keep-alive
        repeats = [t1 - t0 for (t0, _), (t1, a1) in zip(frames, frames[1:]) if a1 is not None and first[a1] < t1]
        assert len(repeats) > 3 * 8 and min(repeats) >= 0.5 / 30 - 1e-9, rate


def test_a_display_of_a_few_frames_a_window_is_warned_about():
    """render_node's /diagnostics judged the display's rate only over windows of more than 10 frames: a renderer
    taking seconds a frame (`ros2 param set /render_node backend torch` on a CPU robot: 1 frame in 40 s at 640x480,
    load 12; user17, s17) was said OK, 'driven', rate_hz 0.0. Now any window after the first is judged."""
    from gaussian_head_ros.core.pacing import display_rate, rate_shortfall

    now = 100.0
    assert display_rate([], now) == 0.0
    assert display_rate([now - 3.0], now) == 1 / 5.0  # one frame: over the whole window
    assert abs(display_rate([now - 2.0 + 0.1 * i for i in range(20)], now) - 10.0) < 0.1  # since the first of them
    stalled = rate_shortfall(0.0, 10.0, 25.0, running_s=60.0, last_frame_s=40.0, backend="torch")
    assert "rendering 0.0 FPS, below the 10 FPS asked" in stalled and "torch" in stalled and "40.0 s ago" in stalled
    assert rate_shortfall(display_rate([now - 4.0, now - 2.0], now), 30.0, 30.0, 60.0, 2.0, "cpu")  # 2 frames in 5 s
    assert rate_shortfall(9.5, 10.0, 25.0, 60.0, 0.1, "cpu") == ""  # keeps up
    assert rate_shortfall(12.0, 30.0, 12.0, 60.0, 0.1, "cpu") == ""  # follows a 12 Hz tracker: not its shortfall
    assert rate_shortfall(0.0, 30.0, 30.0, 3.0, 3.0, "cpu") == ""  # its first window: not judged


def test_a_stamp_from_another_clock_is_told_from_transport_delay():
    """pacing.stamp_offset / stamp_offset_note: the arrival nearest its stamp of the last STAMP_ARRIVALS (late
    callbacks do not count, a clock offset does), silent within STAMP_BEHIND_S behind / STAMP_AHEAD_S ahead, else
    one sentence naming what and by how much (render_node and tracker_node log it)."""
    from gaussian_head_ros.core.pacing import (STAMP_AHEAD_S, STAMP_ARRIVALS, STAMP_BEHIND_S, stamp_offset,
                                               stamp_offset_note)

    assert stamp_offset([10.4] * (STAMP_ARRIVALS - 1)) is None and stamp_offset_note(None, "x") == ""
    late_callbacks = [7.8, 5.0, 3.0] + [0.02] * (STAMP_ARRIVALS - 3)  # a node's first controls while it loads
    assert stamp_offset(late_callbacks) == 0.02 and stamp_offset_note(stamp_offset(late_callbacks), "x") == ""
    assert stamp_offset_note(STAMP_BEHIND_S, "x") == "" and stamp_offset_note(-STAMP_AHEAD_S, "x") == ""
    behind = stamp_offset([10.4, 17.8] + [10.5] * (STAMP_ARRIVALS - 2))
    assert stamp_offset_note(behind, "camera frames").startswith("camera frames are stamped 10.4 s before this node's")
    assert "3.0 s after this node's clock" in stamp_offset_note(stamp_offset([-3.0] * STAMP_ARRIVALS), "controls")


def test_stamp_ages_say_an_offset_once_a_minute_on_the_logger():
    """pacing.StampAges.add: the one place that says a stream's clock offset (tracker_node's camera frames and
    render_node's face_control each wrote the same 'note -> warning, throttled 60 s' block). Silent before
    STAMP_ARRIVALS arrivals and for transport delay; an offset said at once, then at most every STAMP_NOTE_AGAIN_S;
    arrivals without a clock or a stamp (0) are not taken. Simulated clocks, arrivals every 0.1 s."""
    from types import SimpleNamespace

    from gaussian_head_ros.core.pacing import STAMP_ARRIVALS, STAMP_NOTE_AGAIN_S, StampAges

    said, t = [], [0.0]
    logger = SimpleNamespace(warning=said.append)
    ages = StampAges(monotonic=lambda: t[0])
    ns = lambda s: int(round(s * 1e9))  # noqa: E731
    for i in range(3 * STAMP_ARRIVALS):  # 20 ms of transport delay: nothing to say
        t[0] = i * 0.1
        ages.add(ns(1000 + t[0] + 0.02), ns(1000 + t[0]), "camera frames", logger)
    assert said == [] and abs(ages.offset - 0.02) < 1e-6, (said, ages.offset)
    ages.add(0, ns(1000), "camera frames", logger)  # use_sim_time before the first /clock
    ages.add(ns(1000), 0, "camera frames", logger)  # a driver that does not stamp
    assert abs(ages.offset - 0.02) < 1e-6, ages.offset
    for i in range(int(2.5 * STAMP_NOTE_AGAIN_S / 0.1)):  # stamped 10 s behind from now on, for 150 s
        t[0] = 10.0 + i * 0.1
        ages.add(ns(1000 + t[0] + 10.0), ns(1000 + t[0]), "camera frames", logger)
    assert len(said) == 3 and all(s.startswith("camera frames are stamped 10.0 s before") for s in said), said


def test_a_sim_clock_that_stands_still_is_said_once_and_its_moving_again():
    """core.pacing.SimClockWatch on readings a second apart: no /clock for 10 s (said), its arrival, the clock
    standing still after it moved (a replay at its end: said once, with the time it stands at), moving again; a clock
    that moves says nothing; off use_sim_time nothing is said."""
    from gaussian_head_ros.core.pacing import SimClockWatch

    watch, said = SimClockWatch(), []

    def run(sim, readings, t0):
        for k, ns in enumerate(readings):
            line = watch.check(sim, ns, t0 + k)
            if line:
                said.append((t0 + k, *line))

    run(True, [0] * 12, 0.0)  # no /clock: said at 10 s
    run(True, [int((100 + 0.1 * k) * 1e9) for k in range(20)], 12.0)  # it comes and moves: said once, at its arrival
    run(True, [int(102.5e9)] * 15, 32.0)  # it stands still: said at 10 s, once
    run(True, [int(103e9)], 47.0)  # it moves again
    run(False, [int(1e18)] * 3, 48.0)  # use_sim_time off: nothing more
    assert [(t, level) for t, level, _ in said] == [(10.0, "warning"), (12.0, "info"), (42.0, "warning"),
                                                    (47.0, "info")], said
    assert "no /clock has come in 10 s" in said[0][2] and "/clock arrived" in said[1][2]
    assert "/clock has stood at 102.500 s for 10 s" in said[2][2] and "a bag paused or at its end" in said[2][2]
    assert "/clock moves again, after standing at 102.500 s for 15 s" in said[3][2]
