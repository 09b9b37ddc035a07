#!/usr/bin/env python3
"""Operator and robot on two hosts: two network namespaces on this machine joined by a veth pair.

  operator host (netns A)                          robot host (netns B)
  video_source_node -> tracker_node --face_control--> render_node -> face_display/image_raw (-> monitor)
  photo sender  --operator/photo/compressed (JPEG)--> reconstruction_node -> avatar (stays on the robot)

DDS discovery goes by unicast to fixed peers (config/fastdds_unicast.xml with the two addresses; there is
no route for multicast between the namespaces), each direction of the link is capped with `tc ... tbf`
(--rate-mbit), each namespace has its own /etc/machine-id (as two hosts would). Phases: steady driving,
a link outage (ip link set down / up), a photo swap across the link. Prints: controls published and used
by the render node, the face display rate, glass-to-glass p50/p95 (camera stamp -> robot display, first
display of each control), link traffic, what the robot showed during the outage (frozen, then the idle
animation; stalls) and how soon it followed the operator again, the longest pause in camera frames and in
published controls on the operator host around the outage, the photo swap times, the machine's load, then
an ACCEPTANCE block: PASS/FAIL for each of issue 15's two-host figures with its rule.

Needs root (ip netns, tc). Without it, prints 'SKIP: <reason>' and exits 77.

  sudo -E python scripts/bench_two_hosts.py [--rate-mbit 1] [--clip ../shared/data/driving/lp_d0.mp4]
        [--steady-s 20] [--outage-s 3] [--preset default] [--backend auto] [--json out.json] [--quick]
        [--profile my_fastdds_unicast.xml]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SKIP_EXIT = 77
OPERATOR_IP, ROBOT_IP = "10.77.0.1", "10.77.0.2"
IDLE_TIMEOUT_S = 2.0  # render_node idle_timeout_s (its default)
THUMB_STEP = 16  # the monitor compares frames on a 1/16 grid
FROZEN_DIFF = 0.05  # mean abs grey difference (0..255) below which two frames are "the same picture"
STALL_S = 0.25  # a display gap longer than this is a stall (7.5 frames at 30 FPS)
CAMERA_STAMP_AGE_S = 0.04  # a frame older than this at arrival carries a camera stamp (idle frames: drawn now)


# ----------------------------------------------------------------------------------------------------
# the link

def _sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def namespaces_unavailable() -> str:
    """'' when network namespaces, veth pairs and tbf can be made here; else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root; run with sudo -E)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"'{tool}' (iproute2) is not installed"
    probe = f"ghrprobe{os.getpid()}"
    r = _sh("ip", "netns", "add", probe, check=False)
    if r.returncode:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    _sh("ip", "netns", "del", probe, check=False)
    return ""


class Link:
    """Two namespaces (operator, robot) joined by a veth pair with a tbf rate cap in each direction."""

    def __init__(self, rate_mbit: float):
        tag = f"{os.getpid() % 100000}"
        self.ns = {"operator": f"ghr-op-{tag}", "robot": f"ghr-rb-{tag}"}
        self.dev = {"operator": f"ghrop{tag}", "robot": f"ghrrb{tag}"}
        self.ip = {"operator": OPERATOR_IP, "robot": ROBOT_IP}
        self.rate_mbit = rate_mbit
        self._made: list[str] = []
        try:
            self._create()
        except Exception:
            self.close()
            raise

    def _create(self):
        for side, ns in self.ns.items():
            _sh("ip", "netns", "add", ns)
            self._made.append(ns)
            etc = Path("/etc/netns") / ns  # `ip netns exec` bind-mounts these over /etc: one machine-id per host
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "machine-id").write_text(os.urandom(16).hex() + "\n")
        _sh("ip", "link", "add", self.dev["operator"], "type", "veth", "peer", "name", self.dev["robot"])
        for side, ns in self.ns.items():
            dev = self.dev[side]
            _sh("ip", "link", "set", dev, "netns", ns)
            _sh("ip", "-n", ns, "addr", "add", f"{self.ip[side]}/24", "dev", dev)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            _sh("ip", "-n", ns, "link", "set", dev, "up")
            if self.rate_mbit > 0:  # burst: ~20 ms at the rate, at least a few full-size packets
                burst = max(16_000, int(self.rate_mbit * 1e6 / 8 * 0.02))
                _sh("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{self.rate_mbit}mbit",
                    "burst", str(burst), "latency", "100ms")

    def exec_prefix(self, side: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns[side]]

    def set_up(self, up: bool) -> None:
        _sh("ip", "-n", self.ns["operator"], "link", "set", self.dev["operator"], "up" if up else "down")

    def bytes_sent(self, side: str, dev: str = "") -> int:
        """Bytes sent so far on `side`'s end of the link (or on its device `dev`, e.g. lo)."""
        r = _sh("ip", "-n", self.ns[side], "-s", "-j", "link", "show", "dev", dev or self.dev[side])
        return int(json.loads(r.stdout)[0]["stats64"]["tx"]["bytes"])

    def dropped(self, side: str) -> int:
        """Datagrams the rate cap dropped so far on `side`'s way out (tbf queue full)."""
        if self.rate_mbit <= 0:
            return 0
        r = _sh("tc", "-n", self.ns[side], "-s", "-j", "qdisc", "show", "dev", self.dev[side])
        return sum(int(q.get("drops", 0)) for q in json.loads(r.stdout))

    def close(self):
        for ns in self._made:
            _sh("ip", "netns", "del", ns, check=False)  # takes the veth pair with it
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        self._made = []


def unicast_profile(template: Path, peers: list[str], out: Path, peers_range: int = 0) -> Path:
    """The shipped unicast profile with its initialPeersList replaced by `peers` (and its maxInitialPeersRange
    by `peers_range` when > 0)."""
    text = template.read_text()
    if peers_range > 0:
        text, n = re.subn(r"<maxInitialPeersRange>\d+</maxInitialPeersRange>",
                          f"<maxInitialPeersRange>{peers_range}</maxInitialPeersRange>", text)
        if n != 1:
            raise ValueError(f"{template} has no maxInitialPeersRange")
    locs = "\n".join(f"            <locator><udpv4><address>{a}</address></udpv4></locator>" for a in peers)
    new, n = re.subn(r"<initialPeersList>.*?</initialPeersList>",
                     f"<initialPeersList>\n{locs}\n          </initialPeersList>", text, flags=re.S)
    if n != 1:
        raise ValueError(f"{template} has no initialPeersList")
    out.write_text(new)
    return out


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group `pgid` (each node and
    helper runs in a session of its own: its group is its process tree)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ... utime(12) stime(13)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def machine_cpu_s() -> float:
    """CPU seconds the whole machine spent busy so far (all cores, /proc/stat: all but idle and iowait)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------------------------------
# the two helper roles, each run in its namespace by this script

def _stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def role_operator_tap():
    """Operator side: counts face_control as published (a local reader: nothing extra crosses the link),
    and on 'photo PATH ID' from stdin sends the JPEG on operator/photo/compressed and waits for the robot's
    avatar/status. 'stop' prints one JSON line and exits."""
    import threading

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage

    from gaussian_head_ros.msg import AvatarStatus, FaceControl

    rclpy.init()
    node = rclpy.create_node("two_hosts_operator_tap")
    controls, statuses, photos, camera = [], [], [], []
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    # the camera frames as the tracker gets them (arrival, stamp): tells a stalled camera from a stalled tracker
    node.create_subscription(Image, "camera/image_raw",
                             lambda m: camera.append((time.time(), _stamp_ns(m.header.stamp))), qos_profile_sensor_data)
    node.create_subscription(FaceControl, "face_control",
                             lambda m: controls.append((time.time(), _stamp_ns(m.header.stamp), m.face_detected)),
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(AvatarStatus, "avatar/status",
                             lambda m: statuses.append((time.time(), m.ok, m.operator_id, m.message)), latched)
    photo_pub = node.create_publisher(CompressedImage, "operator/photo/compressed",
                                      QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    threading.Thread(target=lambda: ex.spin(), daemon=True).start()
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd and cmd[0] == "photo":
            path, op_id = cmd[1], cmd[2]
            deadline = time.time() + 20
            while photo_pub.get_subscription_count() == 0 and time.time() < deadline:
                time.sleep(0.05)
            msg = CompressedImage(format="jpeg", data=Path(path).read_bytes())
            msg.header.frame_id = op_id
            msg.header.stamp = node.get_clock().now().to_msg()
            photo_pub.publish(msg)
            photos.append((time.time(), op_id, len(msg.data)))
            print("SENT", flush=True)
        elif cmd and cmd[0] == "stop":
            break
    print(json.dumps(dict(controls=controls, statuses=statuses, photos=photos, camera=camera)), flush=True)
    ex.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()


def role_robot_monitor():
    """Robot side: what the face display shows (arrival, stamp, change from the previous frame) and the
    render node's diagnostics. 'stop' on stdin prints one JSON line and exits."""
    import threading

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("two_hosts_robot_monitor")
    frames, diags = [], []
    prev = [None]

    def on_image(msg):
        now = time.time()
        rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
        thumb = rgb[::THUMB_STEP, ::THUMB_STEP].astype(np.float32).mean(axis=2)
        diff = float(np.abs(thumb - prev[0]).mean()) if prev[0] is not None and prev[0].shape == thumb.shape else -1.0
        prev[0] = thumb
        frames.append((now, _stamp_ns(msg.header.stamp), diff))

    last = {}  # node name -> its newest diagnostics values

    def on_diag(msg):
        for st in msg.status:
            last[st.name.split(":")[0]] = {kv.key: kv.value for kv in st.values}
            if st.name.startswith("render_node"):
                v = {kv.key: kv.value for kv in st.values}
                diags.append((time.time(), int(v.get("controls", 0)), v.get("operator_id", ""), v.get("state", ""),
                              float(v.get("rate_hz", 0) or 0), int(v.get("frames", 0))))

    node.create_subscription(Image, "face_display/image_raw", on_image, qos_profile_sensor_data)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    threading.Thread(target=lambda: ex.spin(), daemon=True).start()
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    print(json.dumps(dict(frames=frames, diags=diags, last=last)), flush=True)
    ex.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()


class Role:
    """This script in a helper role inside a namespace, talking over stdin/stdout."""

    def __init__(self, prefix: list[str], role: str, env: dict, log: Path):
        self.log = log
        self.proc = subprocess.Popen(prefix + [sys.executable, __file__, "--role", role], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "w"),
                                     start_new_session=True)

    def expect(self, word: str, timeout: float = 60.0) -> None:
        import select

        deadline = time.time() + timeout
        while time.time() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.strip() == word:
                    return
        raise RuntimeError(f"helper did not say {word}:\n{self.log.read_text()[-3000:]}")

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30.0) -> dict:
        self.send("stop")
        out, _ = self.proc.communicate(timeout=timeout)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"helper printed no result:\n{self.log.read_text()[-3000:]}")
        return json.loads(lines[-1])

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# ----------------------------------------------------------------------------------------------------
# the run

def _log_time(log: str, pattern: str) -> float | None:
    """Wall time (s) of the first ROS log line matching `pattern`."""
    m = re.search(r"\[(\d+\.\d+)\] \[[^\]]+\]: " + pattern, log)
    return float(m.group(1)) if m else None


def _wait(pred, timeout: float, what: str, procs: dict) -> None:
    """Wait until pred(); RuntimeError with the nodes' logs on timeout or when a node died."""
    deadline = time.time() + timeout
    while time.time() < deadline and all(p.alive() for p in procs.values()):
        if pred():
            return
        time.sleep(0.1)
    dead = [n for n, p in procs.items() if not p.alive()]
    tails = "\n".join(f"--- {n}\n{p.log()[-2000:]}" for n, p in procs.items())
    raise RuntimeError(f"{'node(s) died: ' + ', '.join(dead) if dead else f'timed out after {timeout:.0f} s'} "
                       f"waiting for {what}\n{tails}")


def run(a) -> dict:
    from gaussian_head_ros.nodes.launcher import NodeProcess, node_command, package_share

    work = Path(tempfile.mkdtemp(prefix="ghr-two-hosts-"))
    profile = unicast_profile(Path(a.profile) if a.profile else package_share() / "config" / "fastdds_unicast.xml",
                              ["127.0.0.1", OPERATOR_IP, ROBOT_IP], work / "fastdds_unicast.xml", a.peers_range)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_"))}
    env.update(FASTDDS_DEFAULT_PROFILES_FILE=str(profile), ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET",
               ROS_DOMAIN_ID=str(random.randint(1, 100)), ROS_HOME=str(work), ROS_LOG_DIR=str(work / "log"),
               PYTHONUNBUFFERED="1")
    env.pop("ROS_STATIC_PEERS", None)
    link = Link(a.rate_mbit)
    procs: dict[str, NodeProcess] = {}
    roles: list[Role] = []
    res: dict = dict(rate_mbit=a.rate_mbit, clip=Path(a.clip).name, preset=a.preset, outage_s=a.outage_s,
                     max_initial_peers_range=int(re.search(r"<maxInitialPeersRange>(\d+)<", profile.read_text()).group(1)))
    try:
        def node(side, name, params):
            cmd = link.exec_prefix(side) + node_command(name, params=params)
            procs[name] = NodeProcess(name, cmd, work, env=env)

        node("robot", "reconstruction_node", dict(photo_path=a.photo, preset=a.preset))
        node("robot", "render_node", dict(backend=a.backend, idle_timeout_s=IDLE_TIMEOUT_S, width=a.size,
                                          height=a.size))
        node("operator", "video_source_node", dict(source=a.clip, loop=True))
        node("operator", "tracker_node", {})
        monitor = Role(link.exec_prefix("robot"), "robot-monitor", env, work / "monitor.log")
        tap = Role(link.exec_prefix("operator"), "operator-tap", env, work / "tap.log")
        roles += [monitor, tap]
        monitor.expect("READY")
        tap.expect("READY")
        render_log = procs["render_node"].log
        first = Path(a.photo).stem
        _wait(lambda: f"avatar '{first}' ready" in render_log(), 300, "the first avatar on the robot", procs)
        time.sleep(a.warmup_s)  # discovery across the link, the tracker's neutral face, the first controls

        # steady driving
        groups = {**{n: p.pid for n, p in procs.items()}, "monitor (robot)": monitor.proc.pid,
                  "tap (operator)": tap.proc.pid}
        cpu0 = {n: group_cpu_s(g) for n, g in groups.items()}
        machine0 = machine_cpu_s()
        bytes0 = {s: link.bytes_sent(s) for s in ("operator", "robot")}
        lo0 = {s: link.bytes_sent(s, "lo") for s in ("operator", "robot")}
        drops0 = link.dropped("operator")
        t_steady = (time.time(), time.time() + a.steady_s)
        time.sleep(a.steady_s)
        bytes1 = {s: link.bytes_sent(s) for s in ("operator", "robot")}
        span = time.time() - t_steady[0]
        # within each host: UDP over loopback (the 512² images belong in shared memory: ~0 here)
        res["loopback_MB_s"] = {s: (link.bytes_sent(s, "lo") - lo0[s]) / 1e6 / span for s in lo0}
        # CPU per process as % of one core over the steady window, and the machine's (other work included)
        res["cpu_percent"] = {n: 100 * (group_cpu_s(g) - cpu0[n]) / span for n, g in groups.items()}
        res["cpu_percent_machine"] = 100 * (machine_cpu_s() - machine0) / span
        res["cpu_cores"] = os.cpu_count()
        res["link_dropped_operator_to_robot_steady"] = link.dropped("operator") - drops0

        # outage
        t_down = time.time()
        link.set_up(False)
        time.sleep(a.outage_s)
        link.set_up(True)
        t_up = time.time()
        time.sleep(a.after_outage_s)

        # photo swap across the link
        t_photo = time.time()
        tap.send(f"photo {a.swap_photo} second")
        tap.expect("SENT", 30)
        _wait(lambda: "avatar 'second' ready" in render_log(), 300, "the swapped avatar on the robot", procs)
        time.sleep(1.0)
        t_end = time.time()

        mon, tp = monitor.finish(), tap.finish()
        keys = ("rate_hz", "render_ms_mean", "frames", "frames_reused", "cpu_threads", "processed_rate_hz",
                "processing_ms_mean", "processing_ms_max", "received", "dropped", "published", "operator_bases_learned",
                "operator_basis_learn_ms")
        res["diagnostics_at_end"] = {n: {k: v[k] for k in keys if k in v} for n, v in mon.get("last", {}).items()}
        if a.raw:
            Path(a.raw).write_text(json.dumps(dict(monitor=mon, tap=tp, t_steady=t_steady, t_down=t_down, t_up=t_up,
                                                   t_photo=t_photo)))
        alive = {n: p.alive() for n, p in procs.items()}
        res.update(analyse(mon, tp, t_steady, t_down, t_up, t_photo, t_end, render_log(),
                           procs["reconstruction_node"].log(), bytes0, bytes1, a))
        res["nodes_alive"] = alive
        res["swap_photo_bytes"] = Path(a.swap_photo).stat().st_size
        ok = True
    except BaseException:
        ok = False
        raise
    finally:
        for r in roles:
            r.kill()
        for p in procs.values():
            p.stop()
        link.close()
        if ok and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)
    return res


def analyse(mon, tap, t_steady, t_down, t_up, t_photo, t_end, render_log, recon_log, bytes0, bytes1, a) -> dict:
    frames = mon["frames"]  # (arrival s, stamp ns, diff); stamps stay Python ints (float64 would round them)
    control_stamps = {int(c[1]) for c in tap["controls"]}
    ctl_t = np.array([c[0] for c in tap["controls"]])
    arrival = np.array([f[0] for f in frames], np.float64)
    stamp = np.array([int(f[1]) for f in frames], np.int64)
    diff = np.array([f[2] for f in frames], np.float64)
    driven = np.array([int(s) in control_stamps for s in stamp], bool)
    out = {}

    # steady window
    s0, s1 = t_steady
    w = (arrival >= s0) & (arrival < s1)
    out["display_fps"] = float(w.sum() / (s1 - s0))
    first_seen = {}
    for t, s, d in zip(arrival[w], stamp[w], driven[w]):
        if d and s not in first_seen:
            first_seen[s] = t
    lat = np.array([(t - s * 1e-9) * 1e3 for s, t in first_seen.items()])
    out["glass_to_glass_ms_p50"] = float(np.percentile(lat, 50)) if lat.size else None
    out["glass_to_glass_ms_p95"] = float(np.percentile(lat, 95)) if lat.size else None
    out["driven_fraction"] = float(driven[w].mean()) if w.any() else 0.0
    # new pictures: frames whose stamp differs from the frame before (the rest: the last picture again)
    out["display_new_per_s"] = float((w & np.r_[True, stamp[1:] != stamp[:-1]]).sum() / (s1 - s0))
    published = int(((ctl_t >= s0) & (ctl_t < s1)).sum())
    d = [x for x in mon["diags"]]
    used = None
    if d:
        dt = np.array([x[0] for x in d])
        cnt = np.array([x[1] for x in d])
        i0, i1 = np.searchsorted(dt, s0), np.searchsorted(dt, s1) - 1
        if 0 <= i0 < i1 < len(d):
            # controls counted by the render node between two of its diagnostics were published about one
            # transit earlier (camera stamp -> display, p50): shift the tap's window by that
            lag = (out["glass_to_glass_ms_p50"] or 0.0) / 1e3
            pub = int(((ctl_t >= dt[i0] - lag) & (ctl_t < dt[i1] - lag)).sum())
            used = (int(cnt[i1] - cnt[i0]), pub)
            # frames the render node published between those two diagnostics, and how many reached the listener
            # (a shortfall is lost between the processes: DDS, not the render node)
            made = d[i1][5] - d[i0][5]
            got = int(((arrival > dt[i0]) & (arrival <= dt[i1])).sum())
            out["render_published_per_s"] = made / (dt[i1] - dt[i0])
            out["display_received_fraction"] = got / made if made > 0 else None
    out["controls_published_per_s"] = published / (s1 - s0)
    cam_t = np.array([c[0] for c in tap.get("camera", [])])
    out["camera_frames_per_s"] = float(((cam_t >= s0) & (cam_t < s1)).sum() / (s1 - s0))  # as the tap got them
    out["controls_used"] = used[0] if used else None
    out["controls_published"] = used[1] if used else published
    out["controls_used_fraction"] = (used[0] / used[1]) if used and used[1] else None
    kbit = {s: (bytes1[s] - bytes0[s]) * 8 / 1e3 / (s1 - s0) for s in bytes0}
    out["link_kbit_s_operator_to_robot"] = kbit["operator"]
    out["link_kbit_s_robot_to_operator"] = kbit["robot"]

    # outage: frozen picture, then the idle animation; stalls; following again
    o = (arrival >= t_down) & (arrival < t_up)
    out["outage_display_fps"] = float(o.sum() / (t_up - t_down))
    oa = np.concatenate([[t_down], arrival[o], [t_up]])
    out["outage_max_gap_s"] = float(np.max(np.diff(oa)))
    # the last control that reached the display before or during the outage, then the first frame that
    # moves again without a new control: the idle animation (easing in from the frozen last pose)
    # A frame shows a control when its stamp is one the tap saw published, or when it carries a camera stamp
    # older than CAMERA_STAMP_AGE_S (idle frames are stamped when drawn; the tap, a process of its own on a
    # busy machine, has been seen to miss a control the render node got)
    shows_ctl = driven | (arrival - stamp * 1e-9 > CAMERA_STAMP_AGE_S)
    new_ctl = shows_ctl & (arrival < t_up) & np.r_[True, stamp[1:] != stamp[:-1]]
    last_new = np.flatnonzero(new_ctl)
    if last_new.size:
        i = last_new[-1]
        # the idle animation: frames stamped when drawn (no camera stamp) that move
        later = np.flatnonzero((np.arange(len(arrival)) > i) & (arrival < t_up) & ~shows_ctl & (diff > FROZEN_DIFF))
        t_last = float(arrival[i])
        out["outage_last_control_after_down_s"] = t_last - t_down
        out["outage_idle_after_last_control_s"] = float(arrival[later[0]] - t_last) if later.size else None
        froze = (arrival > t_last) & (arrival < (arrival[later[0]] if later.size else t_up))
        out["outage_frozen_frames"] = int(froze.sum())
    else:
        out["outage_last_control_after_down_s"] = out["outage_idle_after_last_control_s"] = None
        out["outage_frozen_frames"] = 0
    # the operator side itself: the longest pause between controls the tracker published and between camera
    # frames (seen on the operator host) from 1 s before the outage to the end of the after-outage phase
    def longest_gap(times, t0, t1):
        t = np.sort(np.asarray([x for x in times if t0 <= x <= t1], np.float64))
        t = np.concatenate([[t0], t, [t1]])
        i = int(np.argmax(np.diff(t)))
        return float(t[i + 1] - t[i]), float(t[i] - t_down)

    w0, w1 = t_down - 1.0, t_photo
    out["operator_longest_control_gap_s"], out["operator_control_gap_at_s"] = longest_gap(ctl_t, w0, w1)
    out["operator_longest_camera_gap_s"], out["operator_camera_gap_at_s"] = longest_gap(
        [c[0] for c in tap.get("camera", [])], w0, w1)
    back = (arrival >= t_up) & shows_ctl & (stamp * 1e-9 > t_up)
    out["follows_again_after_s"] = float(arrival[back][0] - t_up) if back.any() else None

    # photo swap
    sent = [p for p in tap["photos"]]
    t_sent = sent[0][0] if sent else t_photo
    st = [s for s in tap["statuses"] if s[2] == "second" and s[0] >= t_sent]
    out["swap_status_ok"] = bool(st and st[0][1])
    out["swap_status_at_operator_s"] = float(st[0][0] - t_sent) if st else None
    m = re.search(r"\[(\d+\.\d+)\] \[[^\]]+\]: avatar for 'second' ready: \d+ Gaussians in ([\d.]+) s", recon_log)
    # the reconstruction started when the photo had arrived (it logs its end and its duration)
    out["swap_photo_received_s"] = float(m.group(1)) - float(m.group(2)) - t_sent if m else None
    out["swap_reconstruction_s"] = float(m.group(2)) if m else None
    t_ready = _log_time(render_log, r"avatar 'second' ready")
    out["swap_displayed_s"] = float(t_ready - t_sent) if t_ready else None
    out["frames_total"] = int(len(frames))
    return out


def report(r: dict) -> str:
    def f(v, fmt="{:.1f}"):
        return "n/a" if v is None else fmt.format(v)

    lines = [
        f"two hosts (network namespaces), link {r['rate_mbit']:g} Mbit/s each way, clip {r['clip']}, "
        f"mesh_fit preset {r['preset']}",
        f"  controls: {f(r['controls_published_per_s'])}/s published by the tracker (camera frames a listener beside it "
        f"got: {f(r.get('camera_frames_per_s'))}/s); used by the render node "
        f"{r['controls_used']} of {r['controls_published']} ({f(r['controls_used_fraction'] and 100 * r['controls_used_fraction'])} %)",
        f"  link: operator->robot {f(r['link_kbit_s_operator_to_robot'])} kbit/s, robot->operator "
        f"{f(r['link_kbit_s_robot_to_operator'])} kbit/s (maxInitialPeersRange {r.get('max_initial_peers_range')}); "
        "datagrams the cap dropped operator->robot in that window: "
        f"{r.get('link_dropped_operator_to_robot_steady', 'n/a')}",
        f"  face display: {f(r['display_fps'])} FPS ({f(r.get('display_new_per_s'))} new pictures/s, the rest the last "
        f"one again), {f(100 * r['driven_fraction'])} % of frames driven by a control; the render node published "
        f"{f(r.get('render_published_per_s'))}/s, the display listener received "
        f"{f(r.get('display_received_fraction') and 100 * r['display_received_fraction'])} % of them",
        f"  glass-to-glass: p50 {f(r['glass_to_glass_ms_p50'])} ms, p95 {f(r['glass_to_glass_ms_p95'])} ms",
        f"  outage {r['outage_s']:g} s: display {f(r['outage_display_fps'])} FPS, longest gap "
        f"{f(r['outage_max_gap_s'], '{:.3f}')} s; last control shown "
        f"{f(r['outage_last_control_after_down_s'], '{:.2f}')} s after the link went down, then the picture held "
        f"({r['outage_frozen_frames']} frames) and the idle animation began "
        f"{f(r['outage_idle_after_last_control_s'], '{:.2f}')} s after that control (idle_timeout_s {IDLE_TIMEOUT_S:g})",
        f"  after the outage: the display follows the operator again {f(r['follows_again_after_s'], '{:.2f}')} s "
        f"after the link came back",
        f"  operator host around the outage: longest pause in published controls "
        f"{f(r['operator_longest_control_gap_s'], '{:.2f}')} s (from {f(r['operator_control_gap_at_s'], '{:+.2f}')} s "
        f"after the link went down), in camera frames {f(r['operator_longest_camera_gap_s'], '{:.2f}')} s (from "
        f"{f(r['operator_camera_gap_at_s'], '{:+.2f}')} s)",
        f"  photo swap ({r.get('swap_photo_bytes', 0) / 1e3:.0f} KB JPEG from the operator): received "
        f"{f(r['swap_photo_received_s'], '{:.2f}')} s, reconstructed in {f(r['swap_reconstruction_s'])} s, "
        f"status {'ok' if r['swap_status_ok'] else 'NOT ok'} at the "
        f"operator {f(r['swap_status_at_operator_s'], '{:.1f}')} s, new face on the display "
        f"{f(r['swap_displayed_s'], '{:.1f}')} s after sending",
        f"  nodes alive at the end: {', '.join(n for n, ok in r['nodes_alive'].items() if ok)}"
        + ("" if all(r["nodes_alive"].values()) else
           f"; DIED: {', '.join(n for n, ok in r['nodes_alive'].items() if not ok)}"),
        f"  within each host, UDP over loopback: " + ", ".join(f"{k} {v:.2f} MB/s" for k, v in r.get("loopback_MB_s", {}).items())
        + " (images go by shared memory: ~0 expected)",
        f"  CPU in the steady window, % of one core: "
        + ", ".join(f"{n} {v:.0f}" for n, v in sorted(r.get("cpu_percent", {}).items(), key=lambda x: -x[1]))
        + f"; these together {sum(r.get('cpu_percent', {}).values()):.0f}, the whole machine "
        f"{f(r.get('cpu_percent_machine'), '{:.0f}')} of {100 * (r.get('cpu_cores') or 0)}",
        f"  diagnostics at the end: " + "; ".join(f"{n}: " + ", ".join(f"{k} {v}" for k, v in d.items())
                                                for n, d in r.get("diagnostics_at_end", {}).items()),
        f"  machine load (uptime, 1/5/15 min): before {r.get('load_before', 'n/a')}, after {r.get('load_after', 'n/a')}",
        "ACCEPTANCE (issue 15, two hosts at 1 Mbit/s):",
    ]
    for name, value, ok, rule in acceptance(r):
        lines.append(f"  {'PASS' if ok else 'FAIL'}  {name}: {value}  ({rule})")
    return "\n".join(lines)


def acceptance(r: dict) -> list[tuple[str, str, bool, str]]:
    """(figure, its value, met, the rule) for each acceptance item of issue 15's two-host run."""
    def val(k, fmt="{:.2f}"):
        return "n/a" if r.get(k) is None else fmt.format(r[k])

    def ok(k, pred):
        return r.get(k) is not None and bool(pred(r[k]))

    idle_in = r.get("outage_idle_after_last_control_s")
    return [
        ("face display", val("display_fps", "{:.1f} FPS"), ok("display_fps", lambda v: v >= 28), ">= 28 FPS"),
        ("controls used", val("controls_used_fraction", "{:.1%}"), ok("controls_used_fraction", lambda v: v >= 0.95),
         ">= 95 %"),
        ("glass-to-glass p95", val("glass_to_glass_ms_p95", "{:.0f} ms"),
         ok("glass_to_glass_ms_p95", lambda v: v <= 120), "<= 120 ms"),
        ("outage: idle animation after the last control", val("outage_idle_after_last_control_s", "{:.2f} s"),
         idle_in is not None and idle_in <= IDLE_TIMEOUT_S + STALL_S, f"within idle_timeout_s {IDLE_TIMEOUT_S:g} s"),
        ("outage: longest display gap", val("outage_max_gap_s", "{:.3f} s"), ok("outage_max_gap_s", lambda v: v <= STALL_S),
         f"no stall: <= {STALL_S:g} s"),
        ("tracking again after the link came back", val("follows_again_after_s", "{:.2f} s"),
         ok("follows_again_after_s", lambda v: v <= 0.5), "<= 0.5 s"),
        ("photo swap across the link", f"status {'ok' if r.get('swap_status_ok') else 'NOT ok'}, new face shown "
         f"{val('swap_displayed_s', '{:.1f} s')} after sending", bool(r.get("swap_status_ok")) and
         r.get("swap_displayed_s") is not None, "completes"),
        ("nodes alive", ", ".join(n for n, a in r.get("nodes_alive", {}).items() if a) or "none",
         bool(r.get("nodes_alive")) and all(r["nodes_alive"].values()), "all"),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate-mbit", type=float, default=1.0, help="tbf cap each way, Mbit/s (0 = none)")
    ap.add_argument("--clip", default=str(SHARED / "driving" / "lp_d0.mp4"))
    ap.add_argument("--photo", default=str(SHARED / "portraits" / "obama_official.jpg"),
                    help="the robot's first avatar (reconstructed at start-up on the robot)")
    ap.add_argument("--swap-photo", default=str(SHARED / "portraits" / "lp_d8_man_glasses.jpg"),
                    help="the JPEG the operator sends across the link (~100 KB)")
    ap.add_argument("--preset", default="default", help="mesh_fit preset (fast, default, dense)")
    ap.add_argument("--backend", default="auto", help="render backend")
    ap.add_argument("--size", type=int, default=512, help="face display width and height")
    ap.add_argument("--warmup-s", type=float, default=6.0)
    ap.add_argument("--steady-s", type=float, default=20.0)
    ap.add_argument("--outage-s", type=float, default=3.0)
    ap.add_argument("--after-outage-s", type=float, default=4.0)
    ap.add_argument("--peers-range", type=int, default=0,
                    help="override the profile's maxInitialPeersRange (participants tried per peer address; 0 = "
                         "the shipped profile's)")
    ap.add_argument("--profile", default="",
                    help="the Fast DDS unicast profile to start from (its initialPeersList is replaced by the two "
                         "hosts' addresses); default: the installed config/fastdds_unicast.xml")
    ap.add_argument("--quick", action="store_true", help="short phases and the fast preset (the test's run)")
    ap.add_argument("--json", default="", help="write the figures here too")
    ap.add_argument("--keep", action="store_true", help="keep the node logs (always kept after a failure)")
    ap.add_argument("--raw", default="", help="write the raw timelines here (for debugging)")
    ap.add_argument("--role", choices=["operator-tap", "robot-monitor"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "operator-tap":
        return role_operator_tap()
    if a.role == "robot-monitor":
        return role_robot_monitor()
    if a.quick:
        a.preset, a.steady_s, a.warmup_s, a.after_outage_s = "fast", 5.0, 4.0, 2.0
    why = namespaces_unavailable()
    if why:
        print(f"SKIP: {why}")
        sys.exit(SKIP_EXIT)
    for p in (a.clip, a.photo, a.swap_photo):
        if not Path(p).is_file():
            print(f"SKIP: {p} not found (../shared/data beside the checkout)")
            sys.exit(SKIP_EXIT)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    r = run(a)
    r["load_before"] = load_before
    r["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(report(r))
    text = json.dumps(r, indent=1)
    if a.json:
        Path(a.json).write_text(text)
    print("JSON " + json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
