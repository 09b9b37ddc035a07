"""Per-frame timing trace across processes: where glass-to-glass latency goes (scripts/bench_latency.py).

Each node that handles a camera frame, or what was made from it, marks events with the frame's camera stamp:
`FrameTrace(name).mark(event, stamp_ns)` appends one line `event stamp_ns t_ns [cpu_ns]` to
`$GHR_FRAME_TRACE/<name>-<pid>.trace` (t_ns: time.time_ns(), the system clock the stamps come from, the same on
every process of one host). Without GHR_FRAME_TRACE it does nothing (one attribute test per mark). One unbuffered
write per event (~2 us), so lines survive a process that is killed.

`breakdown` joins the traces of all processes with what the display saw and splits each displayed frame's
latency into STAGES; `repeat` is the time a frame had already been displayed before (a keep-alive repeat of an
older picture), so its stages sum to its latency like a first display's do.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ENV = "GHR_FRAME_TRACE"  # directory the trace files go to; unset = no trace

# events, in the order a frame passes them: (process, event) as marked by the nodes
CAMERA_PUBLISHED = "cam_pub"  # video_source_node: the frame's Image published (the stamp is taken just before)
TRACKER_IN = "trk_in"  # tracker_node: the Image arrived (subscription callback)
TRACKER_START = "trk_start"  # tracker_node: the worker starts on it (frames replaced before this were dropped)
TRACKER_PUBLISHED = "trk_pub"  # tracker_node: its FaceControl published
RENDER_IN = "ren_in"  # render_node: that FaceControl arrived (subscription callback)
RENDER_START = "ren_start"  # render_node: a frame driven by it begins (again for a repeat)
RENDER_DRIVEN = "ren_driven"  # render_node: the avatar driven (drive(); cpu_ns: the render thread's CPU for it)
RENDER_DRAWN = "ren_drawn"  # render_node: rasterized (cpu_ns: the render thread's CPU for drive + raster)
RENDER_PUBLISHED = "ren_pub"  # render_node: Image (+ camera_info, JPEG) published (cpu_ns: render thread, whole frame)

# (stage name, event it starts at, event it ends at); the display's arrival ends the last one
STAGES = (
    ("camera publish", None, CAMERA_PUBLISHED),  # starts at the stamp
    ("to tracker", CAMERA_PUBLISHED, TRACKER_IN),
    ("tracker queue", TRACKER_IN, TRACKER_START),
    ("tracking", TRACKER_START, TRACKER_PUBLISHED),
    ("to render", TRACKER_PUBLISHED, RENDER_IN),
    ("render wait", RENDER_IN, RENDER_START),
    ("drive", RENDER_START, RENDER_DRIVEN),
    ("raster", RENDER_DRIVEN, RENDER_DRAWN),
    ("publish", RENDER_DRAWN, RENDER_PUBLISHED),
    ("to display", RENDER_PUBLISHED, None),  # ends at the display's arrival
)


class FrameTrace:
    """Marks one process's per-frame events (see the module docstring). `enabled` is False without GHR_FRAME_TRACE."""

    def __init__(self, name: str, directory: str | os.PathLike | None = None):
        directory = directory if directory is not None else os.environ.get(ENV, "")
        self._fd = -1
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
            path = Path(directory) / f"{name}-{os.getpid()}.trace"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    @property
    def enabled(self) -> bool:
        """Whether this trace writes (GHR_FRAME_TRACE, or `directory`, was set and its file opened)."""
        return self._fd >= 0

    def mark(self, event: str, stamp_ns: int, cpu_ns: int | None = None, t_ns: int | None = None) -> None:
        """`event` happens to the frame of camera stamp `stamp_ns` (ns) now (or at `t_ns`, time.time_ns()
        clock); cpu_ns: the CPU time it took, if known."""
        if self._fd >= 0:
            extra = f" {cpu_ns}" if cpu_ns is not None else ""
            t = time.time_ns() if t_ns is None else t_ns
            os.write(self._fd, f"{event} {int(stamp_ns)} {t}{extra}\n".encode())

    def close(self) -> None:
        """Close the trace file (idempotent); marks after it are dropped."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_traces(directory: str | os.PathLike) -> dict[str, dict[int, list[tuple[int, int | None]]]]:
    """All *.trace files of `directory` -> event -> camera stamp -> [(t_ns, cpu_ns or None)] in time order."""
    events: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(Path(directory).glob("*.trace")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue  # a line cut by a killed process
            events[parts[0]][int(parts[1])].append((int(parts[2]), int(parts[3]) if len(parts) > 3 else None))
    for by_stamp in events.values():
        for times in by_stamp.values():
            times.sort()
    return events


def breakdown(events: dict, displayed: list[tuple[int, int]]) -> dict:
    """Split each display of a frame into STAGES.

    events: read_traces(); displayed: [(camera stamp ns, arrival at the display, time.time_ns() clock)] in
    arrival order. Returns {"latency_ms": [D], "stages_ms": {stage: [D] (nan where an event is missing)},
    "repeat_ms": [D] (0 for a first display), "repeats": int, "complete": int (displays with every event)}.
    For a first display each stage uses the first time its event happened to that frame; a repeat uses the
    first display's stages and adds `repeat` = its arrival - the first display's.
    """
    first = {}  # stamp -> arrival of its first display
    lat, rep = [], []
    stages = {name: [] for name, _, _ in STAGES}

    def at(event, stamp):
        t = events.get(event, {}).get(stamp)
        return t[0][0] if t else np.nan

    complete = 0
    for stamp, arrived in displayed:
        t0 = first.setdefault(stamp, arrived)
        lat.append((arrived - stamp) * 1e-6)
        rep.append((arrived - t0) * 1e-6)
        ends = [stamp] + [at(e, stamp) for _, _, e in STAGES[:-1]] + [t0]
        for (name, _, _), a, b in zip(STAGES, ends[:-1], ends[1:]):
            stages[name].append((b - a) * 1e-6)
        complete += bool(np.all(np.isfinite(ends)))
    return {"latency_ms": np.asarray(lat), "repeat_ms": np.asarray(rep),
            "stages_ms": {k: np.asarray(v, float) for k, v in stages.items()},
            "repeats": int(sum(r > 0 for r in rep)), "complete": complete}


def report(events: dict, displayed: list[tuple[int, int]], tail_q: float = 95.0) -> str:
    """A table: per stage p50 / p95 / mean over all displays and the mean over the displays at or above the
    `tail_q` latency percentile (what the slow frames spend their time on), plus drop counts."""
    b = breakdown(events, displayed)
    lat = b["latency_ms"]
    if not lat.size:
        return "no frames displayed"
    tail = lat >= np.percentile(lat, tail_q)
    rows = [f"{'stage':<16}{'p50':>8}{'p95':>8}{'mean':>8}{'tail mean':>11}   (ms; tail = the displays at or above "
            f"the p{tail_q:g} latency, {int(tail.sum())} of {lat.size})"]

    def row(name, v):
        ok = np.isfinite(v)
        if not ok.any():
            return f"{name:<16}{'-':>8}{'-':>8}{'-':>8}{'-':>11}"
        t = v[tail & ok]
        return (f"{name:<16}{np.percentile(v[ok], 50):8.1f}{np.percentile(v[ok], 95):8.1f}{v[ok].mean():8.1f}"
                f"{(t.mean() if t.size else np.nan):11.1f}")

    rows += [row(name, v) for name, v in b["stages_ms"].items()]
    rows.append(row("repeat", b["repeat_ms"]))
    rows.append(row("= latency", lat))
    lo, hi = min(s for s, _ in displayed), max(s for s, _ in displayed)  # the measured window, by camera stamp

    def count(event):
        return sum(lo <= s <= hi for s in events.get(event, {}))

    cams, started, controls, drawn = (count(e) for e in (CAMERA_PUBLISHED, TRACKER_START, RENDER_IN, RENDER_START))
    rows.append(f"frames: camera {cams}, tracked {started} ({cams - started} dropped at the tracker), controls "
                f"received {controls}, drawn {drawn} ({controls - drawn} superseded), displays {lat.size} "
                f"({b['repeats']} repeats), {b['complete']} with every event")
    cpu, cpu_draw, cpu_drive = ([c for s, ts in events.get(e, {}).items() if lo <= s <= hi for _, c in ts
                                 if c is not None] for e in (RENDER_PUBLISHED, RENDER_DRAWN, RENDER_DRIVEN))
    if cpu and cpu_draw and cpu_drive:
        rows.append(f"render thread CPU per frame drawn: drive {np.mean(cpu_drive) * 1e-6:.1f} ms, drive + raster "
                    f"{np.mean(cpu_draw) * 1e-6:.1f} ms, whole frame {np.mean(cpu) * 1e-6:.1f} ms (mean; the "
                    f"rasterizer's worker threads not included)")
    return "\n".join(rows)
