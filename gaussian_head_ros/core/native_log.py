"""MediaPipe's native notices kept off stderr.

MediaPipe (0.10) and the TensorFlow Lite inside it write notices straight to file descriptor 2 from C++ whenever a
graph is made and runs its first frames: "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", absl's "WARNING:
All log messages before absl::InitializeLog() is called are written to STDERR" and W-lines such as
"inference_feedback_manager.cc:114] Feedback manager requires a model with a single signature inference" or
"landmark_projection_calculator.cc:186] Using NORM_RECT without IMAGE_DIMENSIONS ...": 7-12 lines for each photo
reconstructed, in `gaussian-head reconstruct` and in the reconstruction node's log at every operator swap. They read
as errors to a user, and no setting turns them off (GLOG_minloglevel=2, TF_CPP_MIN_LOG_LEVEL=3: measured, no effect
with mediapipe 0.10).

`quiet_notices` wraps the calls that make and run MediaPipe graphs (a context manager, or a decorator): while they
run, fd 2 goes to a temporary file; afterwards every line of it that is not one of NOTICES is written back to
stderr, in order: absl's E and F lines, Python's own and whatever another thread wrote meanwhile (delayed by the call,
not lost). Nested and concurrent uses share one capture. A notice a graph's own thread writes after the call has
returned still shows: a graph started in such a call and not run in it is waited for there (`opened`).
GAUSSIAN_HEAD_NATIVE_NOTICES=1 leaves stderr alone (to see what a crash inside MediaPipe
wrote: the temporary file would hold it).

`held_stderr` is the same capture for OpenCV's FFmpeg while a video file is opened: FFmpeg writes its own line
about a file it cannot read ("[png @ 0x55...] Invalid PNG signature 0x00000000.", "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x...]
moov atom not found") before the caller's sentence saying why; `drop_ffmpeg()` leaves FFmpeg's lines out when the
caller refuses the file in its own words. What else was written comes back as for `quiet_notices`.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager

# MediaPipe's and TensorFlow Lite's informational lines (absl: I = info, W = warning; E and F lines are kept).
NOTICES = re.compile(rb"(INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
                     rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                     rb"|[IW]\d{4} [\d:. ]+\d+ [\w./-]+\.cc:\d+\] .*)\r?")

# FFmpeg's av_log lines as its default callback writes them: "[<component> @ 0x<context address>] <message>"
FFMPEG_LINE = re.compile(rb"\[[\w,:.-]+ @ 0x[0-9a-f]+\] .*\r?")

_lock = threading.Lock()
_state = {"depth": 0, "saved": None, "capture": None, "drop": []}  # drop: patterns of lines left out at _end


def _begin() -> None:
    sys.stderr.flush()
    capture = tempfile.TemporaryFile()
    _state["saved"], _state["capture"] = os.dup(2), capture
    os.dup2(capture.fileno(), 2)


def _end() -> None:
    sys.stderr.flush()
    saved, capture = _state["saved"], _state["capture"]
    _state["saved"] = _state["capture"] = None
    os.dup2(saved, 2)
    os.close(saved)
    capture.seek(0)
    kept = filter_notices(capture.read(), _state["drop"])
    _state["drop"] = []
    capture.close()
    while kept:
        kept = kept[os.write(2, kept):]


def filter_notices(data: bytes, drop=()) -> bytes:
    """The bytes written to stderr -> the same without the lines (newline included) that NOTICES, or one of the
    compiled patterns `drop`, matches whole."""
    patterns = (NOTICES, *drop)
    return b"".join(line for line in data.splitlines(keepends=True)
                    if not any(p.fullmatch(line.rstrip(b"\n")) for p in patterns))


@contextmanager
def _quiet():
    if os.environ.get("GAUSSIAN_HEAD_NATIVE_NOTICES") == "1":
        yield
        return
    with _lock:
        if _state["depth"] == 0:
            _begin()
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                _end()


def opened(graph):
    """`graph`, a MediaPipe CalculatorGraph or a legacy solution that holds one (`_graph`, mediapipe 0.10's
    SolutionBase), once its calculators have opened (CalculatorGraph.wait_until_idle; 9-40 ms here). A graph's
    calculators open on its own threads after start_run has returned, and write their notices then: a graph started
    in a quiet_notices call and not run in it (the tracker's video face mesh, the iris model, the person segmenter,
    made at a node's start) printed them after the call, 8 lines at each node's start (user43, s43). Call it
    inside the quiet call. Returns `graph`."""
    wait = getattr(getattr(graph, "_graph", graph), "wait_until_idle", None)
    if wait is not None:
        wait()
    return graph


def quiet_notices(fn=None):
    """`with quiet_notices():` or `@quiet_notices` on a function: MediaPipe's NOTICES written to fd 2 while it runs
    are dropped, every other line written back to stderr after it (see the module docstring)."""
    if fn is None:
        return _quiet()

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with _quiet():
            return fn(*args, **kwargs)

    return wrapped


class Held:
    """What `held_stderr` yields."""

    def drop_ffmpeg(self) -> None:
        """Leave FFmpeg's own lines (FFMPEG_LINE) out of what the capture writes back: the caller says why the file
        was refused. In a capture shared with another thread's, FFmpeg lines that thread wrote meanwhile go too."""
        if _state["capture"] is not None:
            with _lock:
                _state["drop"].append(FFMPEG_LINE)


@contextmanager
def held_stderr():
    """`with held_stderr() as held:` fd 2 captured while the block runs (the capture `quiet_notices` uses, shared
    with it); afterwards what was written comes back, less MediaPipe's NOTICES, and less FFmpeg's lines if
    `held.drop_ffmpeg()` was called. GAUSSIAN_HEAD_NATIVE_NOTICES=1 leaves stderr alone."""
    with _quiet():
        yield Held()

