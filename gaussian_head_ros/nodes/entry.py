"""The start of every node executable (bin/*): a Ctrl-C while Python imports the node ends it quietly.

A terminal's Ctrl-C signals `ros2 launch` and all its nodes at once. A node spends its first seconds importing
rclpy, numpy, torch, MediaPipe (1.5-3 s each here at load 40) before `common.note_interrupts` takes SIGINT
over; Python's own handler then raised KeyboardInterrupt in the middle of an import: a traceback per node and
'process has died ... exit code -2' in launch's log, and an interrupted numpy import gave an ImportError and
exit status 1 instead (try10: `ros2 launch gaussian_head_ros avatar.launch.py` given Ctrl-C 2.5, 5 and 9 s
after its start at load 50 printed 6, 4 and 2 tracebacks). Until note_interrupts, SIGINT now ends the process
at once with status 0, as a Ctrl-C of a running node does. Nothing heavy is imported here.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time

# The process that started this one, read first thing, before the seconds of imports: a launcher stopped meanwhile
# (SIGTERM to `ros2 launch` in its first 2 s) has left this process adopted by then (common.end_with_parent).
STARTED_BY = os.getppid()


def ignores_sighup(pid: int) -> bool | None:
    """Whether process `pid` ignores SIGHUP (Linux: SigIgn in /proc/<pid>/status); None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return bool(mask & (1 << (signal.SIGHUP - 1)))


# Whether that process ignored SIGHUP, read at the same moment (common.started_detached's `nohup` rule): read later,
# the parent of a node adopted meanwhile is init, which does not ignore it, and every node of a launch run under
# `nohup` (a CI job, a start script) then read as started with nohup on itself and did not end with its launcher (s53).
STARTER_IGNORES_SIGHUP = ignores_sighup(STARTED_BY)


def watch_parent(parent_pid: int, poll_s: float, on_gone, name: str) -> None:
    """Call `on_gone()` once, from a daemon thread named `name`, within `poll_s` seconds of this process's parent no
    longer being `parent_pid` (it ended and this process was adopted: getppid changes; at once when it is not that
    process already). The one watch of a parent: a node's (common.end_with_parent: it says why and stops as on
    Ctrl-C) and the render node's avatar loader process's (nodes/avatar_loader.py: it ends with its node)."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        on_gone()

    threading.Thread(target=watch, name=name, daemon=True).start()


def quiet_exit(signum, frame):
    """SIGINT before the node started: nothing to tear down yet (no ROS context, nothing written)."""
    os._exit(0)


def main(node_module: str):
    """Run gaussian_head_ros.nodes.<node_module>.main() with SIGINT ending the process quietly until the node
    installs its own Ctrl-C handling (common.note_interrupts). A SIGINT that is ignored (a background job of a
    script) stays ignored."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, quiet_exit)
    return importlib.import_module(f"gaussian_head_ros.nodes.{node_module}").main()
