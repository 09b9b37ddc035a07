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

RATE_MBIT = 0.0  # TODO(network): 1.0 once FaceControl is compact (the dense one needs ~2.5 Mbit/s at 25 fps)
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
    assert f["link_kbit_s_operator_to_robot"] > 20, report  # the controls crossed the veth (not shared memory)
    assert f["driven_fraction"] > 0.5 and f["display_fps"] > 5, report
    assert f["controls_used_fraction"] is not None and f["controls_used_fraction"] >= 0.9, report
    assert f["outage_max_gap_s"] < 0.5, report  # no stall while the link is down
    assert f["outage_idle_after_last_control_s"] is not None, report
    assert f["outage_idle_after_last_control_s"] <= IDLE_TIMEOUT_S + 0.5, report
    assert f["follows_again_after_s"] is not None and f["follows_again_after_s"] <= 1.0, report
    assert f["swap_status_ok"] and f["swap_displayed_s"] is not None, report
