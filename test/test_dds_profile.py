"""The node executables started as `ros2 run` starts them (no env.sh, no FASTDDS_DEFAULT_PROFILES_FILE)
apply the package's Fast DDS profile themselves, say so in their log, and deliver 512x512 rgb8 frames at
30 Hz to a plain subscriber that has no profile either: at least MIN_DELIVERED of the frames the node
published in the same seconds (with Fast DDS defaults 4-8 of 30 frames a second arrive: every frame goes
through UDP fragments and best-effort loses most). Compared with what each publisher says it published, so
that a busy CPU, which slows the publishers, does not fail the transport."""

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import shared

pytestmark = pytest.mark.ros

PEERS = Path(__file__).resolve().parent / "peers"
COUNT_S = 4.0
MIN_DELIVERED = 0.85  # received / published over the same seconds
MIN_RATE_HZ = 12.0  # and never below this (the failure without the profile: 4-8 Hz)
# tracker_node keeps only the newest camera frame in its reader (depth 1, by design: never a stale frame): frames that
# arrive while its executor waits for the CPU are replaced before it counts them, so its count is the transport's AND
# its CPU share (at load 26-29 here: 25.1 of 29.7 Hz, 0.84, and 11.2 of 16.1 Hz, 0.70, while the plain subscribers got
# 100 %). The transport itself is checked by the plain subscribers (depth 5) at MIN_DELIVERED and MIN_RATE_HZ; the
# tracker's check tells the profile from the 4-8 of 30 Hz (13-27 %) without it.
MIN_TRACKER_DELIVERED = 0.5
WARM_UP_TIMEOUT_S = 240.0  # first start in a fresh checkout: kernel compilation + MediaPipe on 2 cores
ATTEMPTS = 3  # counting windows tried until one where the publishers held MIN_RATE_HZ


def _recent_rate(samples: list, span_s: float, min_samples: int = 2) -> float | None:
    """Counts per second over a node's diagnostics (arrival s, count) of the last span_s; None with fewer samples."""
    recent = [x for x in samples if x[0] >= time.monotonic() - span_s]
    if len(recent) < min_samples:
        return None
    return (recent[-1][1] - recent[0][1]) / max(recent[-1][0] - recent[0][0], 1e-3)


def _steady(samples: list, min_hz: float = MIN_RATE_HZ) -> bool:
    """A node's diagnostics (arrival s, count) show >= min_hz over their last 2 s or more."""
    rate = _recent_rate(samples, 3.5, min_samples=3)
    return rate is not None and rate >= min_hz


def _summary(counts: dict, procs: dict) -> str:
    """Per node: its diagnostics samples, the rate over the last 3.5 s and 10 s, and its log's tail (a failure's
    message must say which node was slow and why, in a few lines)."""
    lines = []
    for name, samples in counts.items():
        rates = [_recent_rate(samples, span) for span in (3.5, 10.0)]
        rates = ["-" if r is None else f"{r:.1f} Hz" for r in rates]
        last = samples[-1] if samples else None
        lines.append(f"{name}: {len(samples)} samples, last {last}, rate over 3.5 s / 10 s {rates[0]} / {rates[1]}")
    if os.path.isdir("/dev/shm"):  # Fast DDS's shared-memory transport lives there; full, frames fall back to UDP
        total, _, free = shutil.disk_usage("/dev/shm")
        lines.append(f"/dev/shm: {free / 2**20:.0f} MiB free of {total / 2**20:.0f} MiB")
    for name, proc in procs.items():
        tail = "\n    ".join(proc.output().splitlines()[-8:])
        lines.append(f"{name} alive={proc.alive()} log tail:\n    {tail}")
    return "\n".join(lines)


def _plain_env() -> dict:
    """This environment without any Fast DDS configuration: what a shell with only install/setup.bash has."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_"))}


def _rate(tmp_path, topic):
    from rosgraph import Proc

    return Proc([sys.executable, str(PEERS / "image_rate.py"), topic, str(COUNT_S)],
                tmp_path / f"rate_{topic.replace('/', '_')}.log", env=None)


def test_plain_executables_apply_the_profile_and_deliver_30_hz(tmp_path, monkeypatch, rclpy_context):
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph import Proc, executable

    clip = shared("driving", "lp_d0.mp4")  # 512x512
    monkeypatch.chdir(tmp_path)  # no DEFAULT_FASTDDS_PROFILES.xml here
    for k in [k for k in os.environ if k.startswith(("FASTDDS_", "FASTRTPS_"))]:
        monkeypatch.delenv(k)
    env = _plain_env()
    procs = {
        "render_node": Proc(executable("render_node") + ["--ros-args", "-p", "fps:=30.0", "-p", "width:=512",
                                                         "-p", "height:=512", "-p", "backend:=cpu"],
                            tmp_path / "render_node.log", env),
        "video_source_node": Proc(executable("video_source_node") + ["--ros-args", "-p", f"source:={clip}",
                                                                     "-p", "rate:=30.0"],
                                  tmp_path / "video_source_node.log", env),
        # Without the iris model (core/iris.py, ~4 ms a frame here): the tracker's CPU is not what this test measures.
        "tracker_node": Proc(executable("tracker_node") + ["--ros-args", "-p", "iris_model:=false"],
                             tmp_path / "tracker_node.log", env),
        "reconstruction_node": Proc(executable("reconstruction_node"), tmp_path / "reconstruction_node.log", env),
    }
    peers = {}
    node = rclpy_context.create_node("dds_profile_test")
    counts = {"render_node": [], "video_source_node": [], "tracker_node": []}  # (arrival s, count)
    keys = {"render_node": "frames", "video_source_node": "frames_published", "tracker_node": "received"}

    def on_diagnostics(msg):
        for st in msg.status:
            name = st.name.split(":")[0]
            v = {kv.key: kv.value for kv in st.values}
            if name in keys and keys[name] in v:
                counts[name].append((time.monotonic(), int(v[keys[name]])))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    try:
        # Count only once the nodes are warm: in a fresh checkout the first start compiles the CPU kernels and
        # loads MediaPipe on the same 2 cores, and the publishers themselves run slowly meanwhile.
        deadline = time.monotonic() + WARM_UP_TIMEOUT_S
        # The tracker's count is its CPU share too (above): it is warm once it takes what the tracker check asks of it.
        while not (_steady(counts["render_node"]) and _steady(counts["video_source_node"])
                   and _steady(counts["tracker_node"], MIN_TRACKER_DELIVERED * MIN_RATE_HZ)):
            assert time.monotonic() < deadline, f"the publishers did not reach {MIN_RATE_HZ} Hz in " \
                f"{WARM_UP_TIMEOUT_S} s: {_summary(counts, procs)}"
            rclpy_context.spin_once(node, timeout_sec=0.1)
        print(f"warm after {time.monotonic() - deadline + WARM_UP_TIMEOUT_S:.0f} s")

        def published_hz(name, t0, t1):
            c = [x for x in counts[name] if t0 - 1.0 <= x[0] <= t1 + 1.0]
            assert len(c) >= 3, f"no diagnostics from {name}:\n{procs[name].output()}"
            return (c[-1][1] - c[0][1]) / (c[-1][0] - c[0][0])

        # A counting window is a measurement of the transport only when the publishers held MIN_RATE_HZ in it: on a
        # busy machine a publisher slowed below it meanwhile (a CPU figure, not the transport's) gets another window.
        for attempt in range(1, ATTEMPTS + 1):
            for p in peers.values():
                p.stop()
            peers = {t: _rate(tmp_path / f"try{attempt}", t) for t in ("face_display/image_raw", "camera/image_raw")}
            deadline = time.monotonic() + 120
            while any(p.alive() for p in peers.values()) and time.monotonic() < deadline:
                rclpy_context.spin_once(node, timeout_sec=0.1)
            results = {}
            for topic, peer in peers.items():
                peer.proc.wait(timeout=120)
                m = re.search(r"RESULT (\d+) ([\d.]+) (\S+) ([\d.]+) ([\d.]+)", peer.output())
                assert m, f"{topic}: the subscriber printed no result:\n{peer.output()}"
                results[topic] = (int(m.group(1)), float(m.group(2)), m.group(3), float(m.group(4)), float(m.group(5)))
            for name, proc in procs.items():
                assert proc.alive(), f"{name} died:\n{proc.output()}"
            # What each publisher published in the subscriber's own counting window.
            pub = {"face_display/image_raw": published_hz("render_node", *results["face_display/image_raw"][3:]),
                   "camera/image_raw": published_hz("video_source_node", *results["camera/image_raw"][3:])}
            tracker_in = published_hz("tracker_node", *results["camera/image_raw"][3:])
            print(f"window {attempt}:", json.dumps(results), "published Hz:", pub, "tracker received Hz:", tracker_in)
            if min(pub.values()) >= MIN_RATE_HZ:
                break
        assert min(pub.values()) >= MIN_RATE_HZ, \
            f"the publishers fell below {MIN_RATE_HZ} Hz in each of {ATTEMPTS} counting windows: {pub}"
        for name, proc in procs.items():
            assert "Fast DDS profile: " in proc.output() and "the package's" in proc.output(), \
                f"{name} does not say it applied the package's Fast DDS profile:\n{proc.output()}"
        for topic, (frames, rate, size, _, _) in results.items():
            assert size == "512x512", f"{topic}: frames of {size}"
            assert rate >= MIN_DELIVERED * pub[topic] and rate >= MIN_RATE_HZ, \
                f"{topic}: {rate:.1f} Hz received of {pub[topic]:.1f} Hz published"
        assert tracker_in >= MIN_TRACKER_DELIVERED * pub["camera/image_raw"], \
            f"tracker_node received {tracker_in:.1f} Hz of {pub['camera/image_raw']:.1f}:\n{procs['tracker_node'].output()}"
    finally:
        node.destroy_node()
        for p in list(peers.values()) + list(procs.values()):
            p.stop()


def test_a_profile_file_that_is_not_there_is_a_warning_not_the_users_configuration(tmp_path, monkeypatch):
    """`ros2 launch gaussian_head_ros avatar.launch.py fastdds_profile:=/nope.xml` (or DEPLOYMENT.md's `export
    FASTDDS_DEFAULT_PROFILES_FILE=/path/to/fastdds_unicast.xml` copied as written): Fast DDS printed 'XMLPARSER Error
    realpath failed' and ran on its defaults (the 512x512 face display in UDP fragments, mostly lost best effort), and
    each node said at INFO 'Fast DDS configured by the user: FASTDDS_DEFAULT_PROFILES_FILE=/nope.xml' (user21, s21).
    Now the line says the file is not there and what that costs, as a warning."""
    from rosgraph import Proc, executable, wait_until

    from gaussian_head_ros.nodes.common import apply_fastdds_profile

    missing = tmp_path / "fastdds_unicast.xml"
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(missing))
    line = apply_fastdds_profile()
    assert line.startswith("Fast DDS defaults:") and f"={missing} is no file" in line, line
    missing.write_text("<profiles/>")  # a file of the user's: theirs, said as before
    assert apply_fastdds_profile() == f"Fast DDS configured by the user: FASTDDS_DEFAULT_PROFILES_FILE={missing}"
    missing.unlink()
    proc = Proc(executable("video_source_node") + ["--ros-args", "-r", "__ns:=/nope_profile"],
                tmp_path / "video_source.log", env={**_plain_env(), "FASTDDS_DEFAULT_PROFILES_FILE": str(missing)})
    try:
        assert wait_until(lambda: "is no file" in proc.output(), 60), proc.output()
        said = [ln for ln in proc.output().splitlines() if "is no file" in ln][0]
        assert "[WARN]" in said and "unset it for the package's" in said, said
    finally:
        rc = proc.stop()
    assert rc in (0, -2, 130), proc.output()
