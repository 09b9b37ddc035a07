"""Operator and robot on two 'hosts' (network namespaces joined by a veth pair, unicast DDS discovery with
config/fastdds_unicast.xml): the short run of scripts/bench_two_hosts.py. The robot follows the operator
across the link, keeps drawing through a link outage (the picture holds, then the idle animation), follows
again when the link returns, and builds the avatar of a JPEG the operator sends. Skips (saying why) where
namespaces cannot be made (not root)."""

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT, shared

pytestmark = pytest.mark.ros

RATE_MBIT = 1.0  # the link: the compact FaceControl (~0.5 KB) needs ~0.1 Mbit/s, the dense one ~2.4
SLACK_S = 1.0  # timing slack over the design values on a busy 2-core machine (the bench prints the real figures)
IDLE_TIMEOUT_S = 2.0  # the bench's render_node idle_timeout_s


def test_two_hosts_short_run(tmp_path):
    shared("driving", "lp_d0.mp4")
    out = tmp_path / "two_hosts.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_two_hosts.py"), "--quick",
                        "--rate-mbit", str(RATE_MBIT), "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode == 77:
        pytest.skip(r.stdout.strip().removeprefix("SKIP: "))
    assert r.returncode == 0, f"bench_two_hosts failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    f = json.loads(out.read_text())
    print(r.stdout)
    report = r.stdout
    assert all(f["nodes_alive"].values()), report
    assert 20 < f["link_kbit_s_operator_to_robot"] < 1000 * RATE_MBIT, report  # over the veth, under the cap
    assert f["driven_fraction"] > 0.5 and f["display_fps"] > 5, report
    # the face display frames reach a subscriber beside the render node (shared memory, whole frames: with the UDP
    # transport's 1400-byte limit the 512x512 frames went in ~590 pieces and 12-70 % arrived)
    assert f.get("display_received_fraction") is None or f["display_received_fraction"] >= 0.8, report
    assert f["controls_used_fraction"] is not None and f["controls_used_fraction"] >= 0.9, report
    assert f["outage_max_gap_s"] < SLACK_S, report  # no stall while the link is down
    assert f["outage_idle_after_last_control_s"] is not None, report
    assert f["outage_idle_after_last_control_s"] <= IDLE_TIMEOUT_S + SLACK_S, report
    # tracking resumes (the bench prints how fast: 0.1 s idle, 0.3-0.6 s at load 25-30; a starved tracker is slower)
    assert f["follows_again_after_s"] is not None and f["follows_again_after_s"] <= 2 * SLACK_S, report
    assert f["swap_status_ok"] and f["swap_displayed_s"] is not None, report


def _bench():
    """scripts/bench_two_hosts.py as a module (its Link and unicast_profile)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_two_hosts", ROOT / "scripts" / "bench_two_hosts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_status_crosses_a_link_that_drops_them(tmp_path):
    """The robot says SUPERSEDED for a dropped photo and BUSY for the newer one back to back; on a depth-1 latched
    writer the first was lost for good to a reader on the operator's host when the link dropped its datagram (the
    writer kept only the newest sample to repair; measured: 0 of 6 first ones arrived after a 0.3 s outage). Here the
    link is down while the node publishes both; once it is back, the operator's reader (depth 10, as photo_node) gets
    every photo's final status: A's and C's results and B's SUPERSEDED (the node publishes each status once the one
    before is acknowledged, nodes/common.InOrderLatched). Skips where namespaces cannot be made (not root)."""
    import random

    from gaussian_head_ros.nodes.launcher import NodeProcess, node_command

    bench = _bench()
    why = bench.namespaces_unavailable()
    if why:
        pytest.skip(why)
    photo_a, photo_c = shared("portraits", "astronaut_eileen_collins.png"), shared("portraits", "obama_official.jpg")
    profile = bench.unicast_profile(ROOT / "config" / "fastdds_unicast.xml",
                                    ["127.0.0.1", bench.OPERATOR_IP, bench.ROBOT_IP], tmp_path / "unicast.xml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_"))}
    env.update(FASTDDS_DEFAULT_PROFILES_FILE=str(profile), ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET",
               ROS_DOMAIN_ID=str(random.randint(101, 200)), ROS_HOME=str(tmp_path), ROS_LOG_DIR=str(tmp_path / "log"),
               PYTHONUNBUFFERED="1")
    env.pop("ROS_STATIC_PEERS", None)
    peer = [sys.executable, str(ROOT / "test" / "peers" / "status_link_peer.py")]
    link = bench.Link(0)
    procs = []
    try:
        # the dense preset: A's reconstruction lasts while B and C come
        procs.append(NodeProcess("reconstruction_node", link.exec_prefix("robot") + node_command(
            "reconstruction_node", params=dict(cache_avatar=False, preset="dense")), tmp_path, env=env))
        reader = NodeProcess("reader", link.exec_prefix("operator") + peer + ["reader"], tmp_path, env=env)
        robot = NodeProcess("robot", link.exec_prefix("robot") + peer + ["robot", link.dev["robot"], photo_a, photo_c],
                            tmp_path, env=env)
        procs += [reader, robot]
        deadline = time.monotonic() + 420
        while "DONE" not in robot.log() and robot.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "DONE" in robot.log(), f"the robot's side did not finish:\n{robot.log()[-3000:]}\n" \
                                      f"{procs[0].log()[-3000:]}"
        time.sleep(3.0)  # the last status across the link
        seen = [ln.split()[1:] for ln in reader.log().splitlines() if ln.startswith("STATUS ")]
        final = {}
        for frame_id, code in seen:
            if int(code) != 6:  # BUSY
                assert frame_id not in final, f"two final statuses for {frame_id}: {seen}"
                final[frame_id] = int(code)
        local = robot.log()
        assert final.get("B") == 8, f"the operator's side missed B's SUPERSEDED: {seen}\n(robot's side: {local})"
        assert "A" in final and "C" in final, f"the operator's side missed a result: {seen}\n(robot's side: {local})"
    finally:
        for p in reversed(procs):
            p.stop()
        link.close()
