"""core.frametrace: per-frame events written by several processes, joined into a latency breakdown (no ROS)."""

import os
import subprocess
import sys
import time

import numpy as np

from gaussian_head_ros.core import frametrace as ft

MS = 1_000_000


def _marks(tmp_path, name, marks):
    """Write `marks` [(event, stamp, t_ns, cpu_ns or None)] as process `name` does."""
    trace = ft.FrameTrace(name, tmp_path)
    for event, stamp, t, cpu in marks:
        trace.mark(event, stamp, cpu_ns=cpu, t_ns=t)
    trace.close()


def test_without_the_environment_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(ft.ENV, raising=False)
    trace = ft.FrameTrace("render_node")
    assert not trace.enabled
    trace.mark(ft.RENDER_START, 1)  # a no-op
    monkeypatch.setenv(ft.ENV, str(tmp_path / "t"))
    trace = ft.FrameTrace("render_node")
    trace.mark(ft.RENDER_START, 5)
    trace.close()
    (path,) = (tmp_path / "t").glob("render_node-*.trace")
    event, stamp, t = path.read_text().split()
    assert (event, stamp) == (ft.RENDER_START, "5") and abs(int(t) - time.time_ns()) < 60e9


def test_the_stages_of_each_display_add_up_to_its_latency_across_processes(tmp_path):
    s0, s1 = 1_000 * MS, 1_033 * MS  # two camera frames
    _marks(tmp_path, "video_source_node", [(ft.CAMERA_PUBLISHED, s0, s0 + 1 * MS, None),
                                           (ft.CAMERA_PUBLISHED, s1, s1 + 1 * MS, None)])
    _marks(tmp_path, "tracker_node", [(ft.TRACKER_IN, s0, s0 + 2 * MS, None), (ft.TRACKER_START, s0, s0 + 2 * MS, None),
                                      (ft.TRACKER_PUBLISHED, s0, s0 + 20 * MS, None),
                                      (ft.TRACKER_IN, s1, s1 + 2 * MS, None)])  # s1: dropped at the tracker
    _marks(tmp_path, "render_node", [(ft.RENDER_IN, s0, s0 + 21 * MS, None), (ft.RENDER_START, s0, s0 + 25 * MS, None),
                                     (ft.RENDER_DRIVEN, s0, s0 + 27 * MS, 2 * MS),
                                     (ft.RENDER_DRAWN, s0, s0 + 33 * MS, 7 * MS),
                                     (ft.RENDER_PUBLISHED, s0, s0 + 34 * MS, 8 * MS),
                                     (ft.RENDER_START, s0, s0 + 75 * MS, None)])  # a repeat
    # a second process of the same name (a restarted node) and a line cut by a killed process are read too
    with open(tmp_path / "render_node-999999.trace", "w") as f:
        f.write(f"{ft.RENDER_IN} {s1}\n")
    events = ft.read_traces(tmp_path)
    displayed = [(s0, s0 + 36 * MS), (s0, s0 + 77 * MS)]  # the frame and its repeat, as the display saw them
    b = ft.breakdown(events, displayed)
    np.testing.assert_allclose(b["latency_ms"], [36, 77])
    np.testing.assert_allclose(b["repeat_ms"], [0, 41])
    stages = np.array([b["stages_ms"][name] for name, _, _ in ft.STAGES])  # [stages, displays]
    np.testing.assert_allclose(stages[:, 0], [1, 1, 0, 18, 1, 4, 2, 6, 1, 2])
    np.testing.assert_allclose(stages.sum(0) + b["repeat_ms"], b["latency_ms"])
    assert b["repeats"] == 1 and b["complete"] == 2
    text = ft.report(events, displayed)
    # counted over the camera stamps of the displays (s1 is after the last one displayed)
    assert "tracking" in text and "1 repeats" in text and "camera 1, tracked 1 (0 dropped at the tracker)" in text
    assert "drive 2.0 ms, drive + raster 7.0 ms, whole frame 8.0 ms" in text


def test_marks_from_another_process_are_read(tmp_path):
    """What the nodes do: the environment variable names the directory, each process writes its own file."""
    code = ("from gaussian_head_ros.core import frametrace as ft; t = ft.FrameTrace('tracker_node'); "
            "t.mark(ft.TRACKER_IN, 42); t.mark(ft.TRACKER_START, 42)")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, ft.ENV: str(tmp_path)}, timeout=120)
    events = ft.read_traces(tmp_path)
    assert set(events) == {ft.TRACKER_IN, ft.TRACKER_START} and list(events[ft.TRACKER_IN]) == [42]
