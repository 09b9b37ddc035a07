"""Operator and robot on two 'hosts' (network namespaces joined by a veth pair, unicast DDS discovery with
config/fastdds_unicast.xml): the short run of scripts/bench_two_hosts.py. The robot follows the operator
across the link, keeps drawing through a link outage (the picture holds, then the idle animation), follows
again when the link returns, and builds the avatar of a JPEG the operator sends. Skips (saying why) where
namespaces cannot be made (not root)."""

import json
import subprocess
import sys

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
