"""The test's side of a graph of node processes, for the hostile-input and fault tests.

`Peer` is one rclpy node spun in a background thread: it records what it subscribes to (thread-safe
lists), publishes, reads the other nodes' /diagnostics, and waits for conditions. `rss_mb(pid)` reads a
process's resident memory. No timed assertions: every wait has a generous deadline and returns a bool.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict, deque

import numpy as np


def latched_qos():
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def rss_mb(pid: int) -> float:
    """Resident memory of a process (the resident pages of /proc/<pid>/statm, = VmRSS), MiB; nan when gone."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, IndexError, ValueError):
        return float("nan")


class Frame:
    """One face display image as the peer saw it."""

    __slots__ = ("stamp_ns", "arrived", "rgb")

    def __init__(self, msg):
        self.stamp_ns = stamp_ns(msg)
        self.arrived = time.monotonic()
        self.rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)

    def centre(self) -> np.ndarray:
        """[3] mean colour of the central quarter of the image."""
        h, w = self.rgb.shape[:2]
        return self.rgb[h // 4: 3 * h // 4, w // 4: 3 * w // 4].reshape(-1, 3).mean(0)


class Peer:
    """A node in the test process that records messages; call start() after subscribing, close() at the end."""

    def __init__(self, rclpy, name: str):
        from rclpy.executors import SingleThreadedExecutor

        self.node = rclpy.create_node(name)
        self.got = defaultdict(list)  # key -> messages (or Frames), oldest first
        self.frames = defaultdict(lambda: deque(maxlen=400))  # topic -> recent Frames
        self.diags = {}  # status name -> (level, message, values dict), the latest of each
        self._lock = threading.Lock()
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._running = False
        self._thread = threading.Thread(target=self._spin, daemon=True)

    # ----------------------------------------------------------------------------------------------
    def subscribe(self, key: str, msg_type, topic: str, qos, keep=None) -> None:
        """Record the messages of a topic under `key`, or keep(msg) of each (e.g. only its stamp)."""
        def cb(msg):
            item = msg if keep is None else keep(msg)
            with self._lock:
                self.got[key].append(item)
        self.node.create_subscription(msg_type, topic, cb, qos)

    def subscribe_frames(self, topic: str) -> None:
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        def cb(msg):
            f = Frame(msg)
            with self._lock:
                self.frames[topic].append(f)
        self.node.create_subscription(Image, topic, cb, qos_profile_sensor_data)

    def subscribe_diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        def cb(arr):
            with self._lock:
                for s in arr.status:
                    level = s.level[0] if isinstance(s.level, bytes) else int(s.level)  # byte in rclpy
                    self.diags[s.name] = (level, s.message, {kv.key: kv.value for kv in s.values})
        self.node.create_subscription(DiagnosticArray, "/diagnostics", cb, 50)

    def publisher(self, msg_type, topic: str, qos):
        return self.node.create_publisher(msg_type, topic, qos)

    def start(self) -> "Peer":
        self._running = True
        self._thread.start()
        return self

    def _spin(self):
        while self._running:
            self._executor.spin_once(timeout_sec=0.05)

    def close(self):
        self._running = False
        self._thread.join(timeout=2)
        self.node.destroy_node()

    # ----------------------------------------------------------------------------------------------
    def messages(self, key: str) -> list:
        with self._lock:
            return list(self.got[key])

    def recent_frames(self, topic: str, since: float = 0.0) -> list:
        """Frames of a topic that arrived after monotonic time `since`."""
        with self._lock:
            return [f for f in self.frames[topic] if f.arrived > since]

    def diag(self, node_name: str):
        """(level as int: 0 OK, 1 WARN, 2 ERROR; message; values) of a node's latest diagnostics, or None."""
        with self._lock:
            for name, st in self.diags.items():
                if name.startswith(f"{node_name}:"):
                    return st
        return None

    def diag_value(self, node_name: str, key: str, default=None):
        st = self.diag(node_name)
        return st[2].get(key, default) if st else default

    def forget_diag(self, node_name: str) -> None:
        """Drop a node's last diagnostics, so that the next wait sees fresh ones."""
        with self._lock:
            for name in [n for n in self.diags if n.startswith(f"{node_name}:")]:
                del self.diags[name]

    @staticmethod
    def wait(predicate, timeout: float, every: float = 0.05, action=None, action_every: float = 0.5) -> bool:
        """Poll predicate() until true or timeout s; call action() (e.g. a re-publish) every action_every s."""
        deadline, last = time.monotonic() + timeout, 0.0
        while time.monotonic() < deadline:
            if action is not None and time.monotonic() - last >= action_every:
                action()
                last = time.monotonic()
            if predicate():
                return True
            time.sleep(every)
        return bool(predicate())


def photo(name: str, max_side: int = 480) -> np.ndarray:
    """[H, W, 3] uint8 RGB: a ../shared portrait scaled so that its longer side is max_side."""
    import cv2
    from conftest import shared

    from gaussian_head_ros.core.imageio import read_image

    img = read_image(str(shared("portraits", name)))
    s = max_side / max(img.shape[:2])
    inter = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(img, None, fx=s, fy=s, interpolation=inter))


def latched_operator(rclpy, node_name: str, timeout: float = 30.0) -> str:
    """The operator_id of what a late joiner gets on the latched `avatar` topic ('' when nothing)."""
    from rosgraph import spin_until

    from gaussian_head_ros.msg import GaussianAvatar

    node = rclpy.create_node(node_name)
    got = []
    node.create_subscription(GaussianAvatar, "avatar", got.append, latched_qos())
    try:
        spin_until(node, lambda: got, timeout)
        return got[-1].operator_id if got else ""
    finally:
        node.destroy_node()


def close_graph(peer, procs: dict) -> None:
    """End of a graph fixture: close the peer, stop every node process, and check that each exited cleanly
    with no Python traceback in its log."""
    peer.close()
    for name, p in procs.items():
        rc = p.stop()
        assert rc in (0, -2, 130), f"{name} exited with {rc}:\n{p.log()[-3000:]}"
        assert "Traceback" not in p.log(), f"{name}:\n{p.log()[-3000:]}"
