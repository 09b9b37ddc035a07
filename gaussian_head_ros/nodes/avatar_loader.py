"""The render node's avatar loader: a GaussianAvatar message -> a `Loaded` avatar (its Driver, framing and idle
animation, ready to draw), built in a process of its own.

`build` is the work (message -> core.avatar.GaussianAvatar -> core.display.DisplayAvatar + core.idle.IdleAnimator).
`AvatarWorker` runs it in a worker process started with the node (`python -m gaussian_head_ros.nodes.avatar_loader`,
a session of its own, at OS priority LOADER_NICE): the node sends the serialized message, the worker sends the
pickled `Loaded` back. Built in a thread of the node's process, as before, the build (~0.2-0.3 s of one core for
60k Gaussians; numpy, scipy and Python) held the GIL that the drawing needs between its kernels, and at a low priority
on a busy CPU it was descheduled while holding it: the display drew through 2.8-13 s of it per swap at 85 % of its rate,
gaps up to 0.6 s (scripts/swap_bench.py, 2-core machine at load 21-33). In the worker the new avatar is ready in 1.3-3.6
s, and the node's process spends 19-22 ms of CPU on it (60k Gaussians: serializing the message 1.2 ms, unpickling the
answer, 11 MB, 1.2-2.4 ms, the rest the pipes' copies), the worker the CPU the scheduler gives it. The worker ends
when its request pipe closes (the node destroyed), or within PARENT_POLL_S of its node's process ending any other way
(SIGKILL, a crash: it watches the node's pid, also while it starts up or builds); one that ends otherwise (killed,
crashed) is said and started again (`AvatarWorker.check` between builds, or the build that finds it gone; the avatar it
was building is built again in the new one).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from gaussian_head_ros.core.display import DisplayAvatar
from gaussian_head_ros.core.idle import IdleAnimator
from gaussian_head_ros.nodes import entry

# The worker's OS priority (nice; the node's drawing keeps 0): the build runs in the time the drawing leaves. Built at 0
# in a thread of the node the display kept 55-58 % of its rate through a swap, at 10 74-83 % (node59, 2-core machine at
# load 22-24); in this process at 10, 85 % for 1.3-3.6 s a swap (scripts/swap_bench.py, load 21-33). At 19 no better:
# 67 % against 82 % at 10, its builds 1.5-3.1 s against 1.7-4.3 s (the same bench, both in one run, at load ~50).
LOADER_NICE = 10
# A worker's start (Python, numpy, scipy, numba kernels from their cache) took 2-10 s on the busy 2-core machine; one
# that has not said it is ready by then is taken as hung: killed, and the avatar refused (a later one starts another)
READY_TIMEOUT_S = 300.0
POLL_S = 0.1  # how often a wait for the worker looks whether the node stops or the worker ended
# How often the worker looks whether its node's process still runs (s). Its request pipe tells it only between builds:
# a node SIGKILLed left it running through the build in progress (2.75 s for business_person at load 13) or its
# start-up (5.2 s, then a BrokenPipeError traceback in the node's log as it said 'ready'; lead, session 61). A look is
# one getppid call in a thread that sleeps between them.
PARENT_POLL_S = 0.2
# A worker that ended between builds is started again by `check` this long after its start at the soonest, doubled for
# each one in a row that ended before it was ready (a broken install: its error said at most every 10 s growing to 10
# min, not in a loop); a build starts one in any case
RESTART_AFTER_S, RESTART_AFTER_MAX_S = 10.0, 600.0


@dataclass
class Loaded:
    """One ready-to-draw avatar (swapped as a whole)."""

    face: DisplayAvatar  # its Driver and framing (core/display.py), drawn by the render thread's FaceDisplay
    idle: IdleAnimator
    operator_id: str
    num_gaussians: int
    made: str = ""  # the avatar message's header stamp 'sec.nanosec' (when it was made): tells two avatars of one operator apart
    key: tuple = ()  # conversions.avatar_message_key of its message: the same avatar sent again is not loaded again
    reconstructor: str = ""  # the avatar's reconstructor field ('mesh_fit:default', 'rar:small'): what sets its size


class WorkerError(RuntimeError):
    """The worker could not build an avatar for a reason other than the avatar's own (it ended, or the build raised
    an error other than ValueError: a bug, named 'IndexError: ...')."""


class Stopped(Exception):
    """The node stops: a build waiting for the worker gives up."""


def build(msg, max_gaussians: int, distance_m: float) -> Loaded:
    """The Loaded avatar of a GaussianAvatar message `msg` (made and key left for the node), its framing's head box
    seen from `distance_m` metres. Raises ValueError for a message conversions.msg_to_avatar refuses (malformed,
    another format, above `max_gaussians`) or an avatar the Driver cannot drive."""
    from gaussian_head_ros.nodes.conversions import msg_to_avatar

    avatar = msg_to_avatar(msg, max_gaussians=max_gaussians)
    face = DisplayAvatar(avatar, distance_m)
    idle = IdleAnimator(avatar.template_vertices, rest_gaze=face.driver.rig.rest_gaze)
    return Loaded(face, idle, avatar.operator_id, avatar.num_gaussians, reconstructor=avatar.reconstructor)


class AvatarWorker:
    """The worker process that builds avatars (`build`) for the render node, started at once (it warms up while the
    node does). `build(msg, max_gaussians, distance_m)` from one thread at a time (the node's loader thread).
    `warn(text)`: where its lines go (the node's logger). `work`: the function the worker runs per message
    ('module:function' with `build`'s signature; tests give one that fails). `restarts`: workers started again."""

    def __init__(self, warn, nice: int = LOADER_NICE, work: str = f"{__name__}:build"):
        self._warn, self._nice, self._work = warn, nice, work
        self._stop = threading.Event()
        self._busy = threading.Lock()  # held by a build: close() waits for it to give up before closing the pipes
        self._proc: subprocess.Popen | None = None
        self._ready = False
        self._started = 0.0  # monotonic time of the last start
        self._restart_after_s = RESTART_AFTER_S
        self.restarts = 0
        self._start()

    @property
    def pid(self) -> int | None:
        """The worker's process id (None before the first start)."""
        return self._proc.pid if self._proc else None

    def _start(self) -> None:
        """A new worker process, reading requests on one pipe and answering on another."""
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        cmd = [sys.executable, "-m", __name__, str(req_r), str(ans_w), str(self._nice), self._work, str(os.getpid())]
        try:
            self._proc = subprocess.Popen(cmd, pass_fds=(req_r, ans_w), start_new_session=True, stdin=subprocess.DEVNULL)
        finally:
            os.close(req_r)
            os.close(ans_w)
        # (its own session: a Ctrl-C in the node's terminal reaches the node, which ends it, not the worker)
        self._send = Connection(req_w, readable=False)
        self._recv = Connection(ans_r, writable=False)
        self._ready = False
        self._started = time.monotonic()

    def _ended(self) -> str:
        """How the worker ended, for the log ('exit code 1', 'killed by signal 9'); '' while it runs."""
        code = self._proc.poll() if self._proc else None
        if code is None:
            return ""
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def _restart(self, why: str) -> None:
        old = self._proc.pid if self._proc else None
        self._restart_after_s = (RESTART_AFTER_S if self._ready else
                                 min(2 * self._restart_after_s, RESTART_AFTER_MAX_S))
        self._close_pipes()
        self._start()
        self.restarts += 1
        self._warn(f"avatar loader process (pid {old}) {why}: started again (pid {self._proc.pid})")

    def check(self) -> None:
        """Between builds: a worker that ended (killed, crashed) is said and started again (RESTART_AFTER_S after its
        start at the soonest; a build starts one in any case), so that the next swap does not wait for its start.
        Nothing once `close` is called."""
        if self._stop.is_set() or not self._busy.acquire(blocking=False):
            return
        try:
            if not self._ready and self._recv.poll(0):
                self._wait()  # its start-up's 'ready'
                self._ready = True
            how = self._ended()
            if how and time.monotonic() - self._started >= self._restart_after_s:
                self._restart(f"ended ({how})")
        except (WorkerError, OSError):  # it ended as it said ready: the next check or build starts another
            pass
        finally:
            self._busy.release()

    def _wait(self, timeout_s: float | None = None) -> object:
        """The worker's next answer, unpickled; WorkerError when it ends first or none comes in `timeout_s` (None:
        no limit; the worker is killed then), Stopped when `close` is called."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._recv.poll(POLL_S):
            if self._stop.is_set():
                raise Stopped()
            if self._ended() and not self._recv.poll(0):
                raise WorkerError(f"the avatar loader process ended ({self._ended()})")
            if deadline is not None and time.monotonic() > deadline:
                self._proc.kill()
                self._proc.wait(timeout=5.0)
                raise WorkerError(f"the avatar loader process did not start in {timeout_s:.0f} s: killed")
        try:
            return pickle.loads(self._recv.recv_bytes())
        except (EOFError, OSError) as e:
            raise WorkerError(f"the avatar loader process ended ({self._ended() or type(e).__name__})") from None

    def build(self, msg, max_gaussians: int, distance_m: float) -> Loaded:
        """`build` of `msg` in the worker. Raises ValueError as `build` does (the avatar's fault), WorkerError when the
        worker raised another error or ended twice while building it (started again each time: said), Stopped once
        `close` is called."""
        from rclpy.serialization import serialize_message

        request = pickle.dumps((serialize_message(msg), int(max_gaussians), float(distance_m)), protocol=5)
        with self._busy:
            return self._build(request, msg.operator_id)

    def _build(self, request: bytes, operator_id: str) -> Loaded:
        for attempt in (1, 2):  # a worker killed by something else (the OOM killer) builds it again in the next one
            if self._ended():
                self._restart(f"ended ({self._ended()})")
            try:
                if not self._ready:
                    self._wait(READY_TIMEOUT_S)  # its start-up's 'ready'
                    self._ready = True
                self._send.send_bytes(request)
                kind, value = self._wait()
            except (WorkerError, OSError) as e:  # (OSError: BrokenPipeError, a pipe closed)
                if self._stop.is_set():
                    raise Stopped() from None
                if attempt == 2:
                    raise WorkerError(f"{e}, and so did the one started again for it") from None
                self._restart(f"ended while building '{operator_id}' ({self._ended() or e})")
                continue
            if kind == "ok":
                return value
            if kind == "ValueError":
                raise ValueError(value)
            raise WorkerError(value)

    def _close_pipes(self) -> None:
        for conn in (getattr(self, "_send", None), getattr(self, "_recv", None)):
            if conn is not None:
                conn.close()

    def close(self, timeout_s: float = 0.5) -> None:
        """End the worker: its pipe closed (an idle worker ends at once), killed after `timeout_s` if it has not (a
        build or its start-up in progress: it holds nothing to save). A build waiting in another thread raises
        Stopped."""
        self._stop.set()
        held = self._busy.acquire(timeout=POLL_S + 1.0)  # a build in another thread gives up within POLL_S
        try:
            self._close_pipes()
        finally:
            if held:
                self._busy.release()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5.0)


def _serve(read_fd: int, write_fd: int, nice: int, work: str, parent_pid: int) -> None:
    """The worker process: builds each request with `work` and answers ('ok', Loaded), ('ValueError', reason) or
    (error type, 'Type: reason'); ends when the request pipe closes or the process `parent_pid` (its node) ends."""
    import importlib
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (its own session already; a kill -INT to it too: the node ends it)
    os.setpriority(os.PRIO_PROCESS, 0, nice)  # before numba's and the BLAS threads start: they inherit it
    # ends at once (it holds nothing to save) within PARENT_POLL_S of its node's end, before the imports: seconds
    entry.watch_parent(parent_pid, PARENT_POLL_S, lambda: os._exit(0), "parent_watch")
    from rclpy.serialization import deserialize_message

    from gaussian_head_ros.core import drive
    from gaussian_head_ros.msg import GaussianAvatar as GaussianAvatarMsg
    from gaussian_head_ros.nodes.common import limit_blas_threads, limit_malloc_arenas

    limit_malloc_arenas()
    limit_blas_threads(1)
    module, name = work.split(":")
    fn = getattr(importlib.import_module(module), name)
    drive.warm_up()
    requests, answers = Connection(read_fd, writable=False), Connection(write_fd, readable=False)

    def answer(value) -> None:
        answers.send_bytes(pickle.dumps(value, protocol=5))

    try:
        answer("ready")
    except OSError:  # (BrokenPipeError) the node closed the pipes or ended meanwhile: nothing to say, to no one
        return
    while True:
        try:
            raw, max_gaussians, distance_m = pickle.loads(requests.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            reply = ("ok", fn(deserialize_message(raw, GaussianAvatarMsg), max_gaussians, distance_m))
        except ValueError as e:
            reply = ("ValueError", str(e))
        except Exception as e:  # a bug: named by its type, as the node says it
            reply = (type(e).__name__, f"{type(e).__name__}: {e}")
        try:
            answer(reply)
        except (BrokenPipeError, OSError):
            return


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
